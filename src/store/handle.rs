//! [`Store`]: a log with this process's views of it, over either log. What the command
//! line and the server work with, so that each is written once for both.
//!
//! - On sled, it is a [`SledStore`]: the log and its views (`<store>/views/`) in one
//!   folder, held by one process.
//! - On PostgreSQL, it is a [`PgStore`] and, when the caller needs views, a projector
//!   keeping them in a local folder of this process's own (see [`Store::open_pg`]).
//!   Every server keeps its own views and follows the shared log by position: this
//!   process's commits wake the projector at once, other processes' and hosts' through
//!   a [`HeadFollower`] (`LISTEN chronicle_head`, and a read of the head every
//!   [`FOLLOW_POLL`] as the fallback) once [`Store::follow_other_writers`] started it,
//!   as the server does; a reader that waits for the views first reads the head itself
//!   and tells the projector, so a command needs no follower. The views folder is locked while open (a second
//!   process gets [`Error::Locked`]), and remembers which log it describes (the position
//!   and hash of the last event folded, written when the views close): views built
//!   from another log, or a log that went another way since, are dropped and rebuilt.
//!
//! Guarantees: the same as each log's, and the same reads-see-writes rule on both: a
//! caller that waits for the views (`live_views`, `views_at_least`) gets views that
//! reflect at least the head it read, whoever appended it.

use super::lock::StoreLock;
use super::pg::HeadFollower;
use super::projector::Projector;
use super::views::LiveDocs;
use super::{
    AppendedEvent, Checker, EventStore, Events, Head, PastDocs, PgStore, ReadFilter, SledStore,
    Stats, StoreMetrics, VerifyReport,
};
use crate::model::event::to_hex;
use crate::model::{Extent, Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::projection::{DocsRead, MemDocs, known};
use crate::{Error, Result};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often, at most, a process with views on a PostgreSQL log reads the head when no
/// notification came: the longest another host's commit takes to reach its views when
/// `LISTEN` does not work.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The file of a views folder that names the log it describes.
const IDENTITY_FILE: &str = "log-identity";

/// A log and this process's views of it. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Store {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Sled(SledStore),
    Pg(Arc<PgParts>),
}

/// The log, the views when they were asked for, and the follower of other writers'
/// commits once [`Store::follow_other_writers`] started it.
struct PgParts {
    log: Option<PgStore>,
    views: Option<PgViews>,
    follower: std::sync::Mutex<Option<HeadFollower>>,
}

impl PgParts {
    fn log(&self) -> &PgStore {
        self.log.as_ref().expect("present until dropped")
    }
}

impl Drop for PgParts {
    /// The PostgreSQL client blocks on a runtime of its own, which tokio forbids on an
    /// async task: a handle whose last clone goes away there (the server's state at
    /// shutdown) is closed on a thread of its own.
    fn drop(&mut self) {
        let follower = self
            .follower
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (log, views) = (self.log.take(), self.views.take());
        let close = move || {
            drop(follower);
            drop(views);
            drop(log);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(close).join();
        } else {
            close();
        }
    }
}

/// A process's views of a PostgreSQL log. Fields drop in order: the projector stops
/// (flushing the views), then the folder's lock is let go.
struct PgViews {
    projector: Projector,
    log: PgStore,
    dir: PathBuf,
    _lock: StoreLock,
}

impl From<SledStore> for Store {
    fn from(store: SledStore) -> Store {
        Store {
            kind: Kind::Sled(store),
        }
    }
}

/// The default folder of a process's views of the PostgreSQL log at `url`:
/// `chronicle-views/<16 hex digits>` in the current folder, the digits a hash of the
/// URL without user and password (`postgres://host:port/dbname`), so that each
/// database gets its own views and no secret shows in a path.
pub fn default_views_dir(url: &str) -> Result<PathBuf> {
    let what = super::pg::describe_url(url)?;
    let digest = sha2::Sha256::digest(what.as_bytes());
    Ok(PathBuf::from("chronicle-views").join(to_hex(&digest[..8])))
}

/// The documents a query reads: the live views, those of a past position, or views
/// folded in memory on the reported clock ([`Store::known_views`]).
pub enum Views {
    Live(LiveDocs),
    Past(PastDocs),
    Known(MemDocs),
}

impl Views {
    pub fn docs(&self) -> &dyn DocsRead {
        match self {
            Views::Live(d) => d,
            Views::Past(d) => d,
            Views::Known(d) => d,
        }
    }
}

impl Store {
    /// Opens the PostgreSQL log at `url` (see [`PgStore::open`]) and, with `views`, this
    /// process's views of it in that folder (created when missing): they are caught up
    /// from the log and then follow it. Without `views` the handle serves the log only
    /// (append, read, export, stats); asking it for views is an error.
    ///
    /// Fails with [`Error::Locked`] when another process holds the views folder.
    pub fn open_pg(url: &str, views: Option<&Path>) -> Result<Store> {
        Store::open_pg_as(url, views, false)
    }

    /// [`Store::open_pg`], or with `inspect` a log whose chain end is broken, to find
    /// out what is wrong ([`PgStore::open_to_inspect`]). Not for writing.
    pub fn open_pg_as(url: &str, views: Option<&Path>, inspect: bool) -> Result<Store> {
        let log = match inspect {
            true => PgStore::open_to_inspect(url)?,
            false => PgStore::open(url)?,
        };
        let views = match views {
            None => None,
            Some(dir) => Some(PgViews::open(&log, dir)?),
        };
        Ok(Store {
            kind: Kind::Pg(Arc::new(PgParts {
                log: Some(log),
                views,
                follower: std::sync::Mutex::new(None),
            })),
        })
    }

    /// The log.
    pub fn log(&self) -> &dyn EventStore {
        match &self.kind {
            Kind::Sled(s) => s,
            Kind::Pg(p) => p.log(),
        }
    }

    /// The sled store, when the log is one.
    pub fn sled(&self) -> Option<&SledStore> {
        match &self.kind {
            Kind::Sled(s) => Some(s),
            Kind::Pg(_) => None,
        }
    }

    /// Where the log is, for people: the sled folder, or the PostgreSQL URL without
    /// user and password.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Sled(s) => s.path().display().to_string(),
            Kind::Pg(p) => p.log().describe().to_owned(),
        }
    }

    /// The folder this process holds: the sled store's, or the PostgreSQL views' (none
    /// for a handle without views).
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Sled(s) => Some(s.path()),
            Kind::Pg(p) => p.views.as_ref().map(|v| v.dir.as_path()),
        }
    }

    fn projector(&self) -> Result<&Projector> {
        match &self.kind {
            Kind::Sled(s) => s.views(),
            Kind::Pg(p) => p.views.as_ref().map(|v| &v.projector).ok_or_else(|| {
                Error::Storage("this handle on the PostgreSQL log was opened without views".into())
            }),
        }
    }

    /// On PostgreSQL, starts following the commits of other processes and hosts (see
    /// [`HeadFollower`]): from then on [`Store::subscribe`] and the views move with
    /// every writer's commits, not only this process's. What a server does; a command
    /// reads the head itself when it needs it. Nothing to do on sled (one process) or
    /// when already following.
    pub fn follow_other_writers(&self) -> Result<()> {
        if let Kind::Pg(p) = &self.kind {
            let mut follower = p.follower.lock().unwrap_or_else(|e| e.into_inner());
            if follower.is_none() {
                *follower = Some(p.log().follow(FOLLOW_POLL)?);
            }
        }
        Ok(())
    }

    /// Watches the last durable position this process knows of: after each commit of
    /// this process, and, on PostgreSQL once [`Store::follow_other_writers`] was called,
    /// of every other writer too. Live subscriptions wait on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Position> {
        match &self.kind {
            Kind::Sled(s) => s.subscribe(),
            Kind::Pg(p) => p.log().subscribe(),
        }
    }

    /// The names of the projections the views hold.
    pub fn projection_names(&self) -> Vec<&'static str> {
        self.projector().map_or_else(
            |_| crate::projection::runner::Runner::default().names(),
            |p| p.runner().names(),
        )
    }

    /// See [`SledStore::rebuild`].
    pub fn rebuild(
        &self,
        names: &[String],
        progress: Box<dyn FnMut(u64, u64) + Send>,
    ) -> Result<()> {
        self.projector()?.rebuild_all(names, progress)
    }

    /// See [`SledStore::checkpoints`].
    pub fn checkpoints(&self) -> Result<Vec<(String, u32, Position)>> {
        Ok(self.projector()?.checkpoints())
    }

    /// The views with every append acknowledged before this call folded in (by any
    /// writer of the log). What every CLI query reads.
    pub fn live_views(&self) -> Result<LiveDocs> {
        self.views_with_progress(&mut |_, _| {})
    }

    /// [`Store::live_views`], reporting the projector's progress while it waits.
    pub fn views_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<LiveDocs> {
        let projector = self.projector()?;
        let head = self.head()?.position;
        self.follow_to(head);
        projector.live(head, progress)
    }

    /// See [`SledStore::views_at_least`]. On PostgreSQL the position may have been
    /// appended by another server: the views wait for this one's projector to fold it.
    pub fn views_at_least(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<Option<(LiveDocs, Position)>> {
        let projector = self.projector()?;
        self.follow_to(position);
        projector.at_least(position, timeout)
    }

    /// Tells the projector that the log reaches at least `head`, read by the caller
    /// (and so durable): it need not wait for the follower's next round.
    fn follow_to(&self, head: Position) {
        if let Kind::Pg(p) = &self.kind
            && let Some(views) = &p.views
        {
            views.projector.shared().durable_at_least(head);
        }
    }

    /// Why this store takes no more appends, since a write of its sled log failed
    /// ([`Error::Halted`](crate::Error::Halted)). A PostgreSQL log is never halted: it
    /// refuses each append while its server cannot take it.
    pub fn halted(&self) -> Option<&str> {
        match &self.kind {
            Kind::Sled(sled) => sled.halted(),
            Kind::Pg(_) => None,
        }
    }

    /// The last position folded into the views (0 without views).
    pub fn projected(&self) -> Position {
        self.projector().map_or(Position(0), |p| p.projected())
    }

    /// See [`SledStore::views_at`].
    pub fn views_at(&self, position: Position) -> Result<PastDocs> {
        let projector = self.projector()?;
        self.follow_to(position);
        projector.past(position)
    }

    /// The views on the reported clock: folded in memory from the log's first `upto`
    /// events, those known by `date` ([`crate::projection::known`]). Nothing stored
    /// answers this: it reads the log up to `upto`, and holds those events and the
    /// views they fold into while it works.
    pub fn known_views(&self, upto: Position, date: &Extent) -> Result<MemDocs> {
        let events = self.read_through(upto).collect::<Result<Vec<_>>>()?;
        known::fold(&events, date)
    }

    /// The log's events from the first to position `upto`, in order.
    fn read_through(&self, upto: Position) -> impl Iterator<Item = Result<RecordedEvent>> {
        self.read(&ReadFilter::default())
            .take_while(move |e| e.as_ref().map_or(true, |e| e.position <= upto))
    }

    /// The last position recorded at or before `time` (0 when none was).
    pub fn position_at(&self, time: chrono::DateTime<chrono::Utc>) -> Result<Position> {
        super::position_at(self.log(), time)
    }

    /// The stats of the log's first `at` events: their counts and head, found by
    /// reading the log up to `at`; the size on disk is today's.
    pub fn stats_as_of(&self, at: Position) -> Result<Stats> {
        let mut per_type: std::collections::BTreeMap<String, u64> = Default::default();
        let mut streams = std::collections::HashSet::new();
        let mut last = None;
        for event in self.read_through(at) {
            let event = event?;
            *per_type.entry(event.event_type.to_string()).or_default() += 1;
            streams.insert(event.stream.clone());
            last = Some(event);
        }
        Ok(Stats {
            events: at.0,
            streams: u64::try_from(streams.len()).unwrap_or(u64::MAX),
            per_type: per_type.into_iter().collect(),
            head: match last {
                Some(e) => Head {
                    position: at,
                    hash: e.hash,
                    recorded: Some(e.recorded),
                },
                None => Head::empty(),
            },
            size_on_disk: self.size_on_disk()?,
            views_size_on_disk: match self.projector() {
                Ok(views) => views.size_on_disk()?,
                Err(_) => 0,
            },
        })
    }

    /// See [`SledStore::checker`].
    pub fn checker(&self) -> Result<Checker<'_>> {
        match &self.kind {
            Kind::Sled(s) => s.checker(),
            Kind::Pg(p) => p.log().checker(),
        }
    }

    /// Read connections to PostgreSQL, open and in use (`None` on sled).
    pub fn pool_state(&self) -> Option<(usize, usize)> {
        match &self.kind {
            Kind::Sled(_) => None,
            Kind::Pg(p) => Some(p.log().pool_state()),
        }
    }

    /// Walks the whole log and checks the chain, positions and versions, the log's own
    /// indexes (sled's `S` and `I` keys; PostgreSQL's columns beside each stored event),
    /// and that the views equal a fresh replay (see `verify`).
    ///
    /// On PostgreSQL other servers may append meanwhile: the walk goes up to the head
    /// read at its start, and the views are compared once they stand exactly there;
    /// when appends keep moving them on, the walk extends to the new head (a few
    /// times), and failing that compares the views as of the walked head.
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport> {
        let (log, projector) = match &self.kind {
            Kind::Sled(s) => return s.verify(progress),
            Kind::Pg(p) => (p.log(), self.projector()?),
        };
        let mut walker = super::verify::Walker::new(projector.runner());
        let mut head = log.head()?.position.0;
        for _round in 0..3 {
            walk_pg(log, &mut walker, head, progress)?;
            if walker.failed() || walker.events() != head {
                return walker.finish(head, &projector.views());
            }
            self.follow_to(Position(head));
            let views = projector.live(Position(head), &mut |_, _| {})?;
            if projector.projected() == Position(head) {
                let docs: Vec<_> = crate::projection::DocsRead::scan(&views, b"", None, false)
                    .collect::<Result<_>>()?;
                if projector.projected() == Position(head) {
                    return walker.finish(
                        head,
                        &crate::projection::MemDocs {
                            map: docs.into_iter().collect(),
                        },
                    );
                }
            }
            head = log.head()?.position.0;
        }
        let past = projector.past(Position(walker.events()))?;
        let walked = walker.events();
        walker.finish(walked, &past)
    }
}

/// Walks the PostgreSQL log from where `walker` is up to `head`.
fn walk_pg(
    log: &PgStore,
    walker: &mut super::verify::Walker<'_>,
    head: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut failure = None;
    log.walk(walker.events() + 1, &mut |event, columns| {
        let position = match &event {
            Ok(e) => e.position.0,
            Err(_) => walker.events() + 1,
        };
        if position > head {
            return false;
        }
        match walker.event(position, event) {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(e) => {
                failure = Some(e);
                return false;
            }
        }
        walker.count("rows agreeing with their events");
        if let Some(problem) = columns {
            walker.fail(position, problem);
            return false;
        }
        if position.is_multiple_of(1000) {
            progress(position, head);
        }
        true
    })?;
    progress(walker.events(), head);
    failure.map_or(Ok(()), Err)
}

impl PgViews {
    fn open(log: &PgStore, dir: &Path) -> Result<PgViews> {
        let lock = StoreLock::acquire(dir).map_err(|e| match e {
            Error::Locked { path, holder, .. } => Error::Locked {
                path,
                views: true,
                holder,
            },
            other => other,
        })?;
        forget_views_of_another_log(log, dir)?;
        let head = log.head()?.position;
        let projector = Projector::open(
            dir,
            Arc::new(crate::projection::runner::Runner::default()),
            Arc::new(log.clone()),
            head,
        )?;
        let shared = projector.shared();
        log.on_durable(move |head| shared.durable_at_least(head));
        Ok(PgViews {
            projector,
            log: log.clone(),
            dir: dir.to_owned(),
            _lock: lock,
        })
    }
}

impl Drop for PgViews {
    /// Records which log the views describe, as of their checkpoint, for the next open
    /// (see [`forget_views_of_another_log`]).
    fn drop(&mut self) {
        let projected = self.projector.projected();
        if projected.0 >= 1
            && let Ok(Some(event)) = self.log.get(projected)
        {
            let _ = write_identity(&self.dir, projected, &event.hash);
        }
    }
}

/// Records in `dir` that its views were folded from a log whose event at `position`
/// has `hash`: by the hash chain, that names every event up to it.
fn write_identity(dir: &Path, position: Position, hash: &str) -> Result<()> {
    let file = dir.join(IDENTITY_FILE);
    let temp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let io = |p: &Path, e: std::io::Error| Error::Storage(format!("writing {}: {e}", p.display()));
    std::fs::write(&temp, format!("{position} {hash}\n")).map_err(|e| io(&temp, e))?;
    std::fs::rename(&temp, &file).map_err(|e| io(&file, e))
}

/// Removes the views in `dir` unless they were folded from this log: the event at the
/// position the folder names must have the hash it names (so, by the chain, every
/// event before it is the same too). Views of unknown origin (no record: the process
/// that built them was killed before it wrote one) are removed as well; either way the
/// projector rebuilds them from this log. Call under the folder's lock.
fn forget_views_of_another_log(log: &PgStore, dir: &Path) -> Result<()> {
    let views = super::projector::current_dir(dir);
    if !views.exists() {
        return Ok(());
    }
    let known = std::fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap_or_default();
    let recorded = known
        .trim()
        .split_once(' ')
        .and_then(|(position, hash)| Some((Position(position.parse().ok()?), hash.to_owned())));
    if let Some((position, hash)) = recorded
        && log.get(position)?.is_some_and(|event| event.hash == hash)
    {
        return Ok(());
    }
    std::fs::remove_dir_all(&views)
        .map_err(|e| Error::Storage(format!("removing {}: {e}", views.display())))
}

impl EventStore for Store {
    fn append(&self, events: Vec<ProposedEvent>) -> Result<Vec<AppendedEvent>> {
        self.log().append(events)
    }

    fn check(&self, events: Vec<ProposedEvent>) -> Result<()> {
        self.log().check(events)
    }

    fn read(&self, filter: &ReadFilter) -> Events<'_> {
        self.log().read(filter)
    }

    fn get(&self, position: Position) -> Result<Option<RecordedEvent>> {
        self.log().get(position)
    }

    fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>> {
        self.log().stream_version(stream)
    }

    fn has_category(&self, category: &str) -> Result<bool> {
        self.log().has_category(category)
    }

    fn head(&self) -> Result<Head> {
        self.log().head()
    }

    /// On PostgreSQL with views, the views are brought up to the head the counts
    /// describe (as on sled, whose counts come from them), and the size is the log's
    /// tables plus the views.
    fn stats(&self) -> Result<Stats> {
        let mut stats = self.log().stats()?;
        if let Kind::Pg(p) = &self.kind
            && let Some(views) = &p.views
        {
            self.follow_to(stats.head.position);
            views.projector.live(stats.head.position, &mut |_, _| {})?;
            stats.views_size_on_disk = views.projector.size_on_disk()?;
            stats.size_on_disk += stats.views_size_on_disk;
        }
        Ok(stats)
    }

    fn size_on_disk(&self) -> Result<u64> {
        let mut size = self.log().size_on_disk()?;
        if let Kind::Pg(p) = &self.kind
            && let Some(views) = &p.views
        {
            size += views.projector.size_on_disk()?;
        }
        Ok(size)
    }

    fn metrics(&self) -> &StoreMetrics {
        self.log().metrics()
    }
}
