//! [`SledStore`]: the log in one sled tree, laid out as `keys` describes.
//!
//! Opening takes chronicle's exclusive lock on the directory (another process gets
//! [`Error::Locked`]; see `lock`), removes sled's unfinished snapshots, opens sled
//! (and the views' database beside it, unless [`Opening::log_only`] says not to),
//! checks the layout's format version, and checks that the last event still chains to
//! the one before it, after clearing what a commit that failed before left (`halt`).
//! Appends go through the writer thread (`writer`); reads go straight to sled, end at
//! the durable head (never showing a commit before it is durable), and stop once the
//! writer halted.

use super::disk::Disk;
use super::keys::{self, HeadEntry};
use super::lock::StoreLock;
use super::projector::Projector;
use super::rules::{Pending, Tail};
use super::storage;
use super::views::{HistoryDocs, LiveDocs};
use super::writer::{self, Job};
use super::{AppendedEvent, EventStore, Events, Head, LogRead, ReadFilter, Stats, StoreMetrics};
use crate::model::event::{GENESIS_HASH, to_hex};
use crate::model::{Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::projection::runner::Runner;
use crate::projection::{Layered, counts};
use crate::{Error, Result};
use chrono::DateTime;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The documents of an as-of query: the history at an epoch boundary, with the few
/// events after it folded on top.
pub type PastDocs = Layered<HistoryDocs>;

/// See [`SledStore::checker`].
///
/// To keep its memory from growing with the input, a checker forgets the data of the
/// facts of each batch once it is checked. An amendment of such a fact in a later batch
/// cannot then be checked against it: the checker notes that
/// ([`Checker::missed_targets`]), and the caller checks the input again with a checker
/// that keeps the data of every target it saw ([`Checker::keeping`]).
pub struct Checker<'a> {
    index: Box<dyn super::rules::LogIndex + 'a>,
    pending: Pending,
    /// The facts whose data is kept across batches.
    keep: HashSet<uuid::Uuid>,
    /// Every fact the input amends.
    targets: HashSet<uuid::Uuid>,
    /// Whether an amendment's target had its data forgotten.
    missed: bool,
}

/// The log of a store that does not exist yet.
struct EmptyLog;

impl super::rules::LogIndex for EmptyLog {
    fn stream_version(&self, _: &StreamId) -> Result<u64> {
        Ok(0)
    }

    fn id(&self, _: &uuid::Uuid) -> Result<Option<super::rules::IdInfo>> {
        Ok(None)
    }

    fn stream_events(
        &self,
        _: &StreamId,
        _: crate::model::Version,
    ) -> Result<Vec<crate::model::RecordedEvent>> {
        Ok(Vec::new())
    }
}

impl<'a> Checker<'a> {
    /// A checker over a log's index, from where the log ends.
    pub(super) fn new(index: Box<dyn super::rules::LogIndex + 'a>, tail: Tail) -> Checker<'a> {
        Checker {
            index,
            pending: Pending::new(tail),
            keep: HashSet::new(),
            targets: HashSet::new(),
            missed: false,
        }
    }
}

impl Checker<'_> {
    /// A checker against an empty log: for input bound for a store that does not exist
    /// yet, so that bad input is found before anything is created.
    pub fn for_empty_log() -> Checker<'static> {
        Checker::new(Box::new(EmptyLog), Tail::from_head(None))
    }

    /// The same checker, keeping the data of the facts `targets` names across batches:
    /// for a second check of an input whose amendments the first could not check
    /// ([`Checker::missed_targets`]). Its memory grows with the facts the input amends.
    pub fn keeping(mut self, targets: HashSet<uuid::Uuid>) -> Self {
        self.keep = targets;
        self
    }

    /// Checks the next batch; an error's index is within `events`.
    pub fn check(&mut self, events: Vec<ProposedEvent>) -> Result<()> {
        // A target an earlier batch added, or amended (one of the log too), had its
        // data forgotten since, unless kept; the rules then leave out the checks that
        // need it. Evidence is checked without the data.
        let batch: HashSet<uuid::Uuid> = (events.iter())
            .filter(|e| e.event_type != crate::model::EventType::EvidenceAdded)
            .filter_map(|e| e.typed.target())
            .collect();
        self.missed |= (batch.iter()).any(|t| !self.keep.contains(t) && self.pending.forgot(t));
        self.targets.extend(batch);
        let (job, _) = super::rules::check_job(
            &*self.index,
            &self.pending,
            events,
            chrono::Utc::now(),
            false,
        )?;
        self.pending.absorb(job);
        // Keep ids and versions, not data: memory must not grow with the input.
        self.pending.set_facts_aside(&self.keep);
        Ok(())
    }

    /// The facts the input amends, when an amendment's target had its data forgotten
    /// (it was added or amended in an earlier batch): the input must then be checked
    /// again by a checker [`keeping`](Checker::keeping) them. `None` when every
    /// amendment was checked in full.
    pub fn missed_targets(&self) -> Option<HashSet<uuid::Uuid>> {
        self.missed.then(|| self.targets.clone())
    }
}

/// How [`SledStore::open_as`] opens a store; the default is for any work.
#[derive(Clone, Copy, Debug, Default)]
pub struct Opening {
    /// Open the log alone, without the views: for work that appends to the log or reads
    /// it and shows no view (`append`, `log`, `export`). Opening the views' database is
    /// most of the time and memory of a large store's open, and none of it is needed
    /// there. Appends are as durable as any; the views fold them in from their
    /// checkpoint at the next open with views. The methods that read the views fail
    /// with [`Error::Storage`].
    pub log_only: bool,
    /// Open even when the end of the hash chain is broken, to find out what is wrong
    /// (`verify`, `log`, `export`). Not for writing.
    pub inspect: bool,
}

/// The event log on sled. Cheap to clone; clones share one store and one writer.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    path: PathBuf,
    runner: Arc<Runner>,
    jobs: Option<mpsc::Sender<Job>>,
    /// The last durable position, published by the writer before it answers a commit.
    durable: tokio::sync::watch::Receiver<Position>,
    /// Why the writer stopped taking appends, once a commit failed.
    halted: Halt,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The views: their own database and the thread that folds the log into them.
    /// `None` when opened for the log alone ([`Opening::log_only`]).
    views: Option<Projector>,
    metrics: StoreMetrics,
    /// The head and the views' checkpoint when the store was opened.
    opened_at: (Position, Position),
    /// Declared after every sled handle, so dropped after them (see [`LockRelease`]).
    _release: LockRelease,
    /// chronicle's own lock, taken before sled opened; declared last, so released last.
    _lock: StoreLock,
}

/// sled's background threads let go of the directory lock a moment after the database
/// is dropped. Dropped right after it, this waits (up to a second) until the lock is
/// free, so that a store closed in this process can be reopened at once.
///
/// Then, when this process wrote much to a database, it opens that database once more
/// and closes it: sled 0.34.7 writes its recovery snapshot only on open, and otherwise
/// the next open replays everything written since this one's (seconds after a large
/// build or catch-up).
struct LockRelease {
    dir: PathBuf,
    /// Set on close: the log's and the views' databases took many writes.
    snapshot_log: bool,
    snapshot_views: bool,
    /// Set on close of a halted store, whose sled handle is never dropped: no wait for
    /// sled's lock, no snapshot.
    halted: bool,
}

/// Events written to a database since it was opened past which closing it writes its
/// recovery snapshot (see [`LockRelease`]).
const SNAPSHOT_AFTER_EVENTS: u64 = 20_000;

fn wait_for_sled_lock(db_file: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while let Ok(file) = std::fs::File::open(db_file) {
        // Dropping `file` releases the lock taken here.
        if file.try_lock().is_ok() || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl Drop for LockRelease {
    fn drop(&mut self) {
        if self.halted {
            return;
        }
        wait_for_sled_lock(&self.dir.join("db"));
        // One attempt each: a handle still open elsewhere in this process holds sled's
        // lock, and then the snapshot is left to the next open.
        // Never where the store's files are gone: sled would make a new database.
        if self.snapshot_log && self.dir.join("conf").is_file() {
            drop(sled_config(&self.dir).open());
            wait_for_sled_lock(&self.dir.join("db"));
        }
        if self.snapshot_views
            && super::projector::current_dir(&self.dir)
                .join("conf")
                .is_file()
        {
            drop(super::projector::views_config(&self.dir).open());
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has answered every queued job;
        // then `views` (dropped with the other fields) stops the projector after its
        // current chunk (the next open catches up).
        self.jobs.take();
        if let Ok(mut handle) = self.writer.lock()
            && let Some(handle) = handle.take()
        {
            let _ = handle.join();
        }
        // After a failed write, sled's flush can wait forever for a write that will
        // not come, holding sled's process-wide lock, and sled flushes a database when
        // its last handle is dropped: write nothing more, keep one handle that is never
        // dropped, and let the next open recover what reached the disk.
        if self.halted.get().is_some() {
            std::mem::forget(self.db.clone());
            self._release.halted = true;
            return;
        }
        let _ = self.db.flush();
        let (head, projected) = self.opened_at;
        self._release.snapshot_log =
            self.durable.borrow().0.saturating_sub(head.0) >= SNAPSHOT_AFTER_EVENTS;
        self._release.snapshot_views = self.views.as_ref().is_some_and(|views| {
            views.projected().0.saturating_sub(projected.0) >= SNAPSHOT_AFTER_EVENTS
        });
    }
}

/// The sled log as the projector reads it.
struct SledLog {
    db: sled::Db,
    halted: Halt,
}

impl LogRead for SledLog {
    fn range(&self, from: Position, to: Position) -> Events<'_> {
        let events = self
            .db
            .range(keys::event(from)..=keys::event(to))
            .map(|item| {
                let (k, v) = item.map_err(storage)?;
                decode_event(Position(keys::u64_be(&k[1..]).unwrap_or(0)), &v)
            });
        until_halted(&self.halted, Box::new(events))
    }
}

/// Why the writer halted, once a commit failed; shared by everything that reads the log.
type Halt = Arc<std::sync::OnceLock<String>>;

/// Nothing is read from the log once the writer halted: sled keeps the failed batch in
/// memory, and a read may rewrite a node holding part of it, which a later write of
/// sled's could make durable without the rest of the batch (seen as a stream index
/// entry for an event the reopened log did not have).
fn readable(halted: &Halt) -> Result<()> {
    match halted.get() {
        Some(reason) => Err(writer::halted(
            reason,
            "reads nothing more from its log",
            "",
        )),
        None => Ok(()),
    }
}

/// `events`, ending with the halt's error as soon as the writer halts.
fn until_halted<'a>(halted: &Halt, mut events: Events<'a>) -> Events<'a> {
    let halted = halted.clone();
    let mut ended = false;
    Box::new(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        if let Err(e) = readable(&halted) {
            ended = true;
            return Some(Err(e));
        }
        events.next()
    }))
}

/// Reads and decodes the event at a position.
pub(super) fn read_event(db: &sled::Db, position: Position) -> Result<Option<RecordedEvent>> {
    match db.get(keys::event(position)).map_err(storage)? {
        None => Ok(None),
        Some(bytes) => decode_event(position, &bytes).map(Some),
    }
}

pub(super) fn decode_event(position: Position, bytes: &[u8]) -> Result<RecordedEvent> {
    let unreadable = |why: String| {
        Error::Integrity(format!(
            "the event at position {position} cannot be read ({why}); run `chronicle verify`"
        ))
    };
    let json = super::event_value::to_json(bytes, position)
        .ok_or_else(|| unreadable("it is neither JSON nor a compact event".into()))?;
    serde_json::from_slice(&json).map_err(|e| unreadable(e.to_string()))
}

impl SledStore {
    /// Opens the store in `path`, creating it when absent.
    ///
    /// Fails with [`Error::Locked`] when another process has it open, with
    /// [`Error::Incompatible`] when a newer chronicle wrote it, and with
    /// [`Error::Integrity`] when the end of the log does not chain.
    pub fn open(path: &Path) -> Result<SledStore> {
        SledStore::open_with(path, Runner::default())
    }

    /// Opens the store with other projections than the default ones
    /// ([`crate::projection::all`]). Views whose projections' versions differ from the
    /// stored ones, or that the store has not seen, start afresh as empty views, which
    /// the projector rebuilds from the log after this returns; a reader that waits for
    /// the views (`live_views`) sees them rebuilt.
    pub fn open_with(path: &Path, runner: Runner) -> Result<SledStore> {
        SledStore::open_inner(path, runner, Opening::default())
    }

    /// Opens the store even when the end of its hash chain is broken, to find out what
    /// is wrong (`verify`, `log`, `export`). Use [`SledStore::open`] to write.
    pub fn open_to_inspect(path: &Path) -> Result<SledStore> {
        SledStore::open_as(
            path,
            Opening {
                inspect: true,
                ..Opening::default()
            },
        )
    }

    /// Opens the store as `opening` says, with the default projections.
    pub fn open_as(path: &Path, opening: Opening) -> Result<SledStore> {
        SledStore::open_inner(path, Runner::default(), opening)
    }

    fn open_inner(path: &Path, runner: Runner, opening: Opening) -> Result<SledStore> {
        let check_chain_tail = !opening.inspect;
        if path.is_file() {
            return Err(Error::Storage(format!(
                "{} is a file, not a store; pass --db a directory (it is created when missing)",
                path.display()
            )));
        }
        // Our lock first, then the clean-up of what a killed process left, then sled.
        let lock = StoreLock::acquire(path)?;
        // sled's open reads its snapshot and replays its log since: the views' database
        // is opened beside the log's (on another core), not after it. Not while the
        // store is created: its folder then holds nothing but what creation puts there.
        let (opened, views_db) = if opening.log_only {
            (open_log(path, check_chain_tail), None)
        } else if path.join("conf").is_file() {
            std::thread::scope(|scope| {
                let views = std::thread::Builder::new()
                    .name("chronicle-views-open".into())
                    .spawn_scoped(scope, || super::projector::open_db(path));
                let opened = open_log(path, check_chain_tail);
                let views_db = match views {
                    Ok(views) => views.join().unwrap_or_else(|_| {
                        Err(Error::Storage("opening the views panicked".into()))
                    }),
                    Err(_) => super::projector::open_db(path),
                };
                (opened, Some(views_db))
            })
        } else {
            let opened = open_log(path, check_chain_tail);
            let views_db = match &opened {
                Ok(_) => super::projector::open_db(path),
                Err(_) => Err(Error::Storage("not opened".into())),
            };
            (opened, Some(views_db))
        };
        let (db, head) = match opened {
            Ok(opened) => opened,
            Err(e @ Error::Incompatible(_)) => {
                lock.abandon();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let runner = Arc::new(runner);
        let head_position = head.map_or(Position(0), |h| h.position);
        let halted = Halt::default();
        let views = match views_db {
            Some(views_db) => Some(Projector::start(
                path,
                views_db?,
                runner.clone(),
                Arc::new(SledLog {
                    db: db.clone(),
                    halted: halted.clone(),
                }),
                head_position,
            )?),
            None => None,
        };
        let disk = Disk::open(path)?;
        let (jobs, queue) = mpsc::channel();
        let (durable_tx, durable) = tokio::sync::watch::channel(head_position);
        let metrics = StoreMetrics::default();
        let writer = {
            super::halt::reserve(path);
            let writer = writer::Writer {
                dir: path.to_owned(),
                db: db.clone(),
                disk,
                durable: durable_tx,
                projector: views.as_ref().map(Projector::shared),
                metrics: metrics.clone(),
                halted: halted.clone(),
            };
            let tail = Tail::from_head(head);
            std::thread::Builder::new()
                .name("chronicle-writer".into())
                .spawn(move || writer::run(writer, tail, queue))
                .map_err(|e| Error::Storage(format!("starting the writer thread: {e}")))?
        };
        Ok(SledStore {
            inner: Arc::new(Inner {
                db,
                // sled's lock is on the file `db` inside the store's directory.
                _release: LockRelease {
                    dir: path.to_owned(),
                    snapshot_log: false,
                    snapshot_views: false,
                    halted: false,
                },
                opened_at: (
                    head_position,
                    views.as_ref().map_or(Position(0), Projector::projected),
                ),
                _lock: lock,
                path: path.to_owned(),
                runner,
                jobs: Some(jobs),
                durable,
                halted,
                writer: Mutex::new(Some(writer)),
                views,
                metrics,
            }),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn submit(&self, events: Vec<ProposedEvent>, commit: bool) -> Result<Vec<AppendedEvent>> {
        writer::submit(self.inner.jobs.as_ref(), events, commit)
    }

    /// Walks the whole log and checks the chain, positions, versions, every index and
    /// every projection against a fresh replay (see `verify`). Reads only; runs
    /// beside appends, so call it on a quiet store for a consistent answer.
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<super::VerifyReport> {
        readable(&self.inner.halted)?;
        let views = self.live_views()?;
        super::verify::verify(&self.inner.db, &views, &self.inner.runner, progress)
    }

    /// A dry run of many appends in a row, without holding them: each call checks a
    /// batch exactly as [`EventStore::append`] would, on top of the log and of the
    /// batches checked before it, and remembers only their ids and stream versions.
    /// What `import` uses to check a whole input before writing any of it. It reads the
    /// log as it is; appends made by others meanwhile are caught when the batches are
    /// appended. One gap, to keep memory flat: a correction of an event from an earlier
    /// batch of the same run is checked against its target's data when it is appended.
    pub fn checker(&self) -> Result<Checker<'_>> {
        readable(&self.inner.halted)?;
        let head = read_head(&self.inner.db)?;
        Ok(Checker::new(
            Box::new(writer::SledIndex(&self.inner.db)),
            Tail::from_head(head),
        ))
    }

    /// Where reads of the log end: the last durable position. An event a commit has put
    /// in sled is not read before the commit is durable, nor ever when the commit
    /// failed (see [`Error::Halted`]).
    fn visible(&self) -> Position {
        *self.inner.durable.borrow()
    }

    /// Why this store takes no more appends (a write of its log failed), if it does not.
    pub fn halted(&self) -> Option<&str> {
        self.inner.halted.get().map(String::as_str)
    }

    /// Watches the last durable position: it changes after every commit, once the
    /// commit's events are on disk. Live subscriptions wait on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Position> {
        self.inner.durable.clone()
    }

    /// The names of the projections this store keeps.
    pub fn projection_names(&self) -> Vec<&'static str> {
        self.inner.runner.names()
    }

    /// Rebuilds every projection from the whole log into a fresh database in the next
    /// views folder, named in `views.current` once complete (all of them together: see `projection::runner`). `names`, when given, must be
    /// projection names; they are rebuilt with the rest. Calls `progress(done, total)`
    /// as it goes; returns once the new views are in place.
    pub fn rebuild(
        &self,
        names: &[String],
        progress: Box<dyn FnMut(u64, u64) + Send>,
    ) -> Result<()> {
        self.views()?.rebuild_all(names, progress)
    }

    /// Each projection's name, code version and checkpoint (the last position folded
    /// into the views, the same for all: they are folded together), the facts layer
    /// first.
    pub fn checkpoints(&self) -> Result<Vec<(String, u32, Position)>> {
        Ok(self.views()?.checkpoints())
    }

    /// The views with every append acknowledged before this call folded in: waits for
    /// the projector to reach the head (showing `progress(projected, head)` while it
    /// waits). What every CLI query reads.
    pub fn live_views(&self) -> Result<LiveDocs> {
        self.views_with_progress(&mut |_, _| {})
    }

    /// [`SledStore::live_views`], reporting the projector's progress while it waits.
    pub fn views_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<LiveDocs> {
        self.views()?.live(self.head()?.position, progress)
    }

    /// The views once they reflect at least `position`, waiting at most `timeout`; with
    /// the position they reflect. `Ok(None)` when the projector did not get there in
    /// time. What HTTP queries read (read-your-writes across requests).
    pub fn views_at_least(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<Option<(LiveDocs, Position)>> {
        self.views()?.at_least(position, timeout)
    }

    /// The last position folded into the views (0 when opened without them).
    pub fn projected(&self) -> Position {
        self.projector().map_or(Position(0), Projector::projected)
    }

    /// The views as they stood after `position`: the stored history at the epoch
    /// boundary at or before it, and the few events after it folded in memory. Waits
    /// for the projector to reach `position` first.
    pub fn views_at(&self, position: Position) -> Result<PastDocs> {
        self.views()?.past(position)
    }

    /// The last position recorded at or before `time` (0 when none was).
    pub fn position_at(&self, time: chrono::DateTime<chrono::Utc>) -> Result<Position> {
        super::position_at(self, time)
    }

    /// The views and the projector that keeps them (`None` when opened for the log
    /// alone).
    fn projector(&self) -> Option<&Projector> {
        self.inner.views.as_ref()
    }

    /// The views and their projector; an error when opened for the log alone.
    pub(super) fn views(&self) -> Result<&Projector> {
        self.projector().ok_or_else(|| {
            Error::Storage(
                "this handle on the store was opened for its log alone, without its views".into(),
            )
        })
    }

    fn events_at<'a>(
        &'a self,
        positions: impl Iterator<Item = Result<Position>> + 'a,
    ) -> Events<'a> {
        Box::new(positions.map(move |p| {
            let p = p?;
            read_event(&self.inner.db, p)?.ok_or_else(|| {
                Error::Integrity(format!(
                    "an index points at position {p}, which holds no event"
                ))
            })
        }))
    }
}

/// Opens the log's sled database, checks its format (migrating an older one) and, when
/// asked, the end of its chain; with its head.
fn open_log(path: &Path, check_chain_tail: bool) -> Result<(sled::Db, Option<HeadEntry>)> {
    let db = open_sled(path)?;
    check_format(&db, path)?;
    if let Some(removed) = super::halt::clear(&db, path, !check_chain_tail)? {
        tracing::warn!(
            target: "chronicle::store",
            "the last commit before this open failed; {removed} of its keys had reached the disk and were removed"
        );
    }
    let head = read_head(&db)?;
    if check_chain_tail {
        check_tail(&db, head)?;
    }
    Ok((db, head))
}

fn check_format(db: &sled::Db, path: &Path) -> Result<()> {
    match db.get(keys::FORMAT).map_err(storage)? {
        Some(v) => {
            let found = keys::u64_be(&v).unwrap_or(u64::MAX);
            if found > keys::FORMAT_VERSION {
                return Err(Error::Incompatible(format!(
                    "the store at {} has format version {found}, newer than this chronicle reads ({}); upgrade chronicle, or restore an export of it",
                    path.display(),
                    keys::FORMAT_VERSION
                )));
            }
            if found < keys::FORMAT_VERSION {
                migrate(db, found)?;
            }
            Ok(())
        }
        // A store made by a chronicle older than staged creation, before its first
        // append finished: it holds nothing yet.
        None if db.is_empty() => {
            db.insert(keys::FORMAT, &keys::FORMAT_VERSION.to_be_bytes()[..])
                .map_err(storage)?;
            db.flush().map_err(storage)?;
            Ok(())
        }
        None => Err(Error::Incompatible(format!(
            "{} holds a sled database that is not a chronicle store; pass --db another directory",
            path.display()
        ))),
    }
}

/// The log's keys (events, stream and id indexes, head) are the same in every format;
/// what changed is what was kept beside them. Format 1 kept the views and four more
/// indexes in the default tree; format 2 kept the views in trees of the log's database
/// (`views.<n>`, named by `Mviews`). Both are removed (in batches, each a whole step:
/// a crash midway leaves a store that the next open migrates on), and the projector
/// builds the views in their own database. Format 5 reads the events and index entries
/// of every earlier format as they are, so from 3 or 4 only the number changes.
fn migrate(db: &sled::Db, from: u64) -> Result<()> {
    if from == 1 {
        for prefix in keys::FORMAT_1_ONLY {
            loop {
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for key in db.scan_prefix([prefix]).keys().take(10_000) {
                    batch.remove(key.map_err(storage)?);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                db.apply_batch(batch).map_err(storage)?;
            }
        }
    }
    for name in db.tree_names() {
        if name.starts_with(b"views.") {
            db.drop_tree(&name).map_err(storage)?;
        }
    }
    db.remove(keys::VIEWS).map_err(storage)?;
    db.insert(keys::FORMAT, &keys::FORMAT_VERSION.to_be_bytes()[..])
        .map_err(storage)?;
    db.flush().map_err(storage)?;
    Ok(())
}

/// sled's settings for a store. Every commit flushes before it is acknowledged, so
/// sled's own flusher thread adds nothing; without it, dropping the store releases the
/// directory lock at once instead of when that thread next wakes up.
pub(super) fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .cache_capacity(CACHE_BYTES)
}

/// sled's page cache for the log. Its default (1 GiB) made a large import's memory grow
/// with the store; appends read only the index pages of the streams and ids they touch.
/// sled 0.34.7 holds about twice what it counts against this; 16 MiB (was 64) took a
/// quarter off a large import's peak memory without slowing it.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Whether `path` holds a sled store: a whole one (`conf` present), or one that lost
/// its settings file, which opening refuses (pointing at `chronicle recover`) rather
/// than start afresh.
pub fn holds_store(path: &Path) -> bool {
    path.join("conf").is_file() || lost_its_conf(path)
}

/// sled's data without its settings file. A creation cut short keeps its staging
/// folder until `conf` is in place (and `create` removes a leftover `db` before the
/// folder), so sled's data without both is a store that lost its `conf`: starting
/// afresh would delete its log.
fn lost_its_conf(path: &Path) -> bool {
    !path.join("conf").is_file() && path.join("db").is_file() && !path.join(".creating").exists()
}

/// Opens sled in the store's directory, creating the store there first when it has
/// none. Call only under the store's lock.
fn open_sled(path: &Path) -> Result<sled::Db> {
    let existed = path.join("conf").is_file();
    if !existed {
        if lost_its_conf(path) {
            return Err(Error::Integrity(format!(
                "{} holds sled's data but no settings file (conf); run `chronicle recover --db {}` to write it again, or restore from an export",
                path.display(),
                path.display()
            )));
        }
        create(path)?;
    }
    let db = open_waiting_for_its_lock(sled_config(path)).map_err(|e| match e {
        sled::Error::Io(io) if is_sled_lock_busy(&io) => {
            Error::Locked {
                path: path.to_owned(),
                views: false,
                holder: None,
            }
        }
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => Error::Integrity(format!(
            "the storage files in {} are damaged or were not written by chronicle ({}); run `chronicle recover --db {}` to save every readable event, or restore from an export",
            path.display(),
            super::sled_reason(&e),
            path.display()
        )),
        other => {
            let reason = super::sled_reason(&other);
            Error::Storage(format!(
                "opening {}: {reason}; {} and run the command again",
                path.display(),
                super::halt::first_step(&reason)
            ))
        }
    })?;
    if !db.was_recovered() {
        // sled starts an empty database when it finds no readable log; for a store
        // that exists, that would silently hide its events.
        return Err(Error::Integrity(format!(
            "sled found no readable log in {}, which holds a store; run `chronicle recover --db {}` to save every readable event, or restore from an export",
            path.display(),
            path.display()
        )));
    }
    Ok(db)
}

/// Opens sled, waiting a moment when its lock on `db` is still held. We hold chronicle's
/// own lock, so no other chronicle process has the store open: a busy sled lock is
/// transient — a store closed in this process whose sled threads have not let go yet,
/// or a child process forked by this one (e.g. by `std::process::Command`) that still
/// shares the file between its fork and its exec.
pub(super) fn open_waiting_for_its_lock(config: sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match config.open() {
            Err(sled::Error::Io(io))
                if is_sled_lock_busy(&io) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

pub(super) fn is_sled_lock_busy(io: &std::io::Error) -> bool {
    io.to_string().contains("could not acquire lock")
}

/// Creates an empty store in `path` so that a kill at any moment leaves either no store
/// or a whole one: sled writes its `conf` in two steps, and a `conf` torn between them
/// makes every later open fail. So the store is made in a staging folder, and its
/// files are moved in with `conf` last; `conf` present means the store is whole, and
/// sled's files without it are the leftovers of a creation that was cut short (they
/// hold no event: nothing is appended before creation ends).
fn create(path: &Path) -> Result<()> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::Storage(format!("{what} {}: {e}", p.display()))
    };
    let staging = path.join(".creating");
    for leftover in ["db", "blobs", ".creating"] {
        let p = path.join(leftover);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(|e| io("removing", &p, e))?;
        } else if p.exists() {
            std::fs::remove_file(&p).map_err(|e| io("removing", &p, e))?;
        }
    }
    {
        let db = sled_config(&staging)
            .open()
            .map_err(|e| Error::Storage(format!("creating a store in {}: {e}", path.display())))?;
        db.insert(keys::FORMAT, &keys::FORMAT_VERSION.to_be_bytes()[..])
            .map_err(storage)?;
        db.flush().map_err(storage)?;
    }
    let entries = std::fs::read_dir(&staging).map_err(|e| io("listing", &staging, e))?;
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n != "conf")
        .collect();
    names.push("conf".into());
    for name in names {
        let from = staging.join(&name);
        if let Ok(file) = std::fs::File::open(&from) {
            let _ = file.sync_all();
        }
        std::fs::rename(&from, path.join(&name)).map_err(|e| io("moving", &from, e))?;
        sync_dir(path);
    }
    std::fs::remove_dir_all(&staging).map_err(|e| io("removing", &staging, e))?;
    Ok(())
}

/// Makes renames in a directory durable (best effort: not every file system can).
fn sync_dir(path: &Path) {
    if let Ok(dir) = std::fs::File::open(path) {
        let _ = dir.sync_all();
    }
}

fn read_head(db: &sled::Db) -> Result<Option<HeadEntry>> {
    match db.get(keys::HEAD).map_err(storage)? {
        None => Ok(None),
        Some(bytes) => HeadEntry::decode(&bytes)
            .map(Some)
            .ok_or_else(|| Error::Integrity("the head record is malformed".into())),
    }
}

/// [`super::verify::check_tail`] of the sled log: its last `E` key, its head record
/// and its last events.
fn check_tail(db: &sled::Db, head: Option<HeadEntry>) -> Result<()> {
    let last_key = db
        .scan_prefix([keys::EVENT])
        .next_back()
        .transpose()
        .map_err(storage)?;
    let last = last_key
        .map(|(k, _)| keys::u64_be(&k[1..]).unwrap_or(0))
        .unwrap_or(0);
    let (position, hash) = head.map_or((0, GENESIS_HASH), |h| (h.position.0, h.hash));
    let tail = (super::verify::tail_start(position)..=position)
        .map_while(|p| read_event(db, Position(p)).transpose());
    super::verify::check_tail(last, position, &hash, tail)
}

impl EventStore for SledStore {
    fn append(&self, events: Vec<ProposedEvent>) -> Result<Vec<AppendedEvent>> {
        self.submit(events, true)
    }

    fn check(&self, events: Vec<ProposedEvent>) -> Result<()> {
        self.submit(events, false).map(|_| ())
    }

    fn read(&self, filter: &ReadFilter) -> Events<'_> {
        // A category no stream has (a mistyped one) is answered from the stream index,
        // not by passing over the whole log.
        if let (Some(category), None) = (&filter.category, &filter.stream) {
            match self.has_category(category) {
                Ok(true) => {}
                Ok(false) => return Box::new(std::iter::empty()),
                Err(e) => return Box::new(std::iter::once(Err(e))),
            }
        }
        let from = filter.from.unwrap_or(Position(1));
        let filter_owned = filter.clone();
        let matches = move |e: &RecordedEvent| {
            e.position >= from
                && filter_owned.stream.as_ref().is_none_or(|s| &e.stream == s)
                && filter_owned.from_version.is_none_or(|v| e.version >= v)
                && filter_owned
                    .category
                    .as_deref()
                    .is_none_or(|c| e.stream.category() == c)
                && filter_owned.event_type.is_none_or(|t| e.event_type == t)
        };
        // The stream index when a stream is asked for; otherwise the log in order,
        // with the remaining filters checked on each event. Either way in position
        // order, so the read ends at the first event past what is visible.
        let visible = self.visible();
        let events: Events<'_> = if let Some(stream) = &filter.stream {
            let prefix = keys::stream_events(stream);
            let first = filter.from_version.unwrap_or(Version(1)).0;
            let positions = self
                .scan_prefix_positions_values(prefix, first)
                .take_while(move |p| p.as_ref().map_or(true, |p| *p <= visible));
            self.events_at(positions)
        } else {
            let db = &self.inner.db;
            Box::new(
                db.range(keys::event(from)..keys::event(Position(visible.0.saturating_add(1))))
                    .map(|item| {
                        let (k, v) = item.map_err(storage)?;
                        decode_event(Position(keys::u64_be(&k[1..]).unwrap_or(0)), &v)
                    }),
            )
        };
        // The halt is looked for before each read of sled, not after the filter.
        let events = until_halted(&self.inner.halted, events);
        Box::new(events.filter(move |r| r.as_ref().map_or(true, &matches)))
    }

    fn get(&self, position: Position) -> Result<Option<RecordedEvent>> {
        readable(&self.inner.halted)?;
        if position > self.visible() {
            return Ok(None);
        }
        read_event(&self.inner.db, position)
    }

    /// From the stream index: its keys begin with the category, so this reads the
    /// streams of that category only, not the log.
    fn has_category(&self, category: &str) -> Result<bool> {
        readable(&self.inner.halted)?;
        let visible = self.visible();
        for item in self.inner.db.scan_prefix(keys::category_streams(category)) {
            let (_, value) = item.map_err(storage)?;
            if keys::u64_be(&value).is_some_and(|p| p <= visible.0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>> {
        readable(&self.inner.halted)?;
        let visible = self.visible();
        let prefix = keys::stream_events(stream);
        for item in self.inner.db.scan_prefix(&prefix).rev() {
            let (key, value) = item.map_err(storage)?;
            if keys::u64_be(&value).is_some_and(|p| p <= visible.0) {
                return Ok(keys::u64_be(&key[prefix.len()..]).map(Version));
            }
        }
        Ok(None)
    }

    fn head(&self) -> Result<Head> {
        readable(&self.inner.halted)?;
        let visible = self.visible();
        let head = read_head(&self.inner.db)?;
        Ok(match head {
            Some(h) if h.position == visible => Head {
                position: h.position,
                hash: to_hex(&h.hash),
                recorded: DateTime::from_timestamp_micros(h.recorded_micros),
            },
            // A commit not durable yet, or one that failed: the head is its last event.
            _ => match read_event(&self.inner.db, visible)? {
                Some(e) => Head {
                    position: e.position,
                    hash: e.hash.clone(),
                    recorded: Some(e.recorded),
                },
                None => Head::empty(),
            },
        })
    }

    fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    fn stats(&self) -> Result<Stats> {
        let counts = counts::read(&self.live_views()?)?;
        // By name, as PostgreSQL's log lists them.
        let mut per_type: Vec<(String, u64)> = counts
            .per_type
            .into_iter()
            .map(|(t, n)| (t.as_str().to_owned(), n))
            .collect();
        per_type.sort();
        let head = self.head()?;
        Ok(Stats {
            events: head.position.0,
            streams: counts.streams,
            per_type,
            head,
            size_on_disk: self.size_on_disk()?,
            views_size_on_disk: self.views()?.size_on_disk()?,
        })
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner.db.size_on_disk().map_err(storage)? + self.views()?.size_on_disk()?)
    }
}

impl SledStore {
    /// Positions of a stream's events from a version: the `S` index maps version to
    /// position in its value.
    fn scan_prefix_positions_values<'a>(
        &'a self,
        prefix: Vec<u8>,
        from_version: u64,
    ) -> impl Iterator<Item = Result<Position>> + 'a {
        let mut start = prefix.clone();
        start.extend_from_slice(&from_version.to_be_bytes());
        self.inner
            .db
            .range(start..)
            .take_while(move |item| match item {
                Ok((k, _)) => k.starts_with(&prefix),
                Err(_) => true,
            })
            .map(|item| {
                let (_, v) = item.map_err(storage)?;
                keys::u64_be(&v)
                    .map(Position)
                    .ok_or_else(|| Error::Integrity("a stream index entry is malformed".into()))
            })
    }
}
