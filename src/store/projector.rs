//! The projector: the views' own sled database, and a thread that follows the durable
//! head of a log and folds it into them, in chunks, off the acknowledgement path.
//!
//! The views live in a sled database apart from the log's, in `<store>/views/` (or the
//! `views.<n>` folder that `views.current` names, once a rebuild has made one), so the
//! writer's `fdatasync` of the log never carries the views' pages. resume → project →
//! checkpoint: on start the projector reads the checkpoint of the active views tree and
//! folds from there; then it waits for a new durable head and folds up to it. Each
//! chunk is one sled batch holding the documents and their checkpoint, so a crash
//! leaves views that agree with their checkpoint. It never syncs: it hands the views'
//! writes to the kernel when it goes idle and while it folds (each at most once a
//! second), without sled's own `sync_file_range` after each of its buffers
//! (`open_sled`), so a kill costs at most a short catch-up; a close leaves them synced.
//! The views can always be rebuilt from the log, which the writer syncs. A views
//! database whose files sled cannot open is removed and built again from the log (it
//! holds nothing the log does not); an error of the machine (a full disk, too many open
//! files) is returned instead. Views built by other versions of the projections (or
//! ahead of the log) are replaced on open by an empty database in the next folder,
//! which the projector then fills.
//!
//! The log is read through [`LogRead`], so the same projector follows the sled log or
//! any other. sled's writer also hands over the events it just committed
//! ([`Shared::hand_over`]), which the projector folds without reading them again.
//!
//! A rebuild (`chronicle replay`) folds the whole log into a new database in a folder
//! of its own (`views.<n+1>`), syncs it, then names that folder in `views.current` with
//! one synced rename and switches to it; a crash before the rename leaves the old views,
//! after it the new ones, never a mix. The old folder is removed at once (or by the next
//! open, which removes every views folder but the active one), so replays never add up
//! on disk, and no tree of old documents is dropped page by page.

use super::keys;
use super::log_first;
use super::storage;
use super::views::{self, LiveDocs};
use super::{Events, LogRead, PastDocs};
use crate::model::{Position, RecordedEvent};
use crate::projection::runner::Runner;
use crate::{Error, Result};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The views' database, in this folder of the store's directory.
const VIEWS_DIR: &str = "views";

/// sled's page cache for the views of a process that reads them: a query reads documents
/// from all over the views (a 50-entry timeline page, the 50 facts' documents), and at
/// 1,000,000 events a 32 MiB cache left the page's p99 at 2.3 ms where 256 MiB gave 0.7.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The same for bulk work ([`use_bulk_caches`]): a chunk's reads are of the documents its
/// events touch, mostly written by the chunks just before it, and sled 0.34.7 holds
/// about twice what it counts against this, so a small cache keeps a 1,000,000-event
/// import under 512 MiB (peaks of 462 and 472 MiB with 16 MiB, 491-507 with 32, for
/// about 4% more time).
pub const BULK_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The same for `chronicle replay` ([`use_replay_caches`]), whose memory has no bound to
/// keep and whose writes go past a small cache to the disk: a replay of 1,000,000
/// events took 89.1 and 89.6 s with 16 MiB, 68.2 and 67.9 s with 64 MiB (peaks 650 and
/// 750 MiB); 128 and 256 MiB were no faster (98.5 and 134 s, one run each).
pub const REPLAY_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// What the views of this process are opened for: [`QUERIES`], [`BULK_WRITES`] or
/// [`REPLAY`].
static WORK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(QUERIES);
const QUERIES: u8 = 0;
const BULK_WRITES: u8 = 1;
const REPLAY: u8 = 2;

/// Makes the stores this process opens from now on use small caches for their views:
/// for `chronicle import`, which writes much and reads little.
pub fn use_bulk_caches() {
    WORK.store(BULK_WRITES, std::sync::atomic::Ordering::Relaxed);
}

/// Like [`use_bulk_caches`], for `chronicle replay`, with [`REPLAY_CACHE_BYTES`].
pub fn use_replay_caches() {
    WORK.store(REPLAY, std::sync::atomic::Ordering::Relaxed);
}

fn cache_bytes() -> u64 {
    match WORK.load(std::sync::atomic::Ordering::Relaxed) {
        BULK_WRITES => BULK_CACHE_BYTES,
        REPLAY => REPLAY_CACHE_BYTES,
        _ => CACHE_BYTES,
    }
}

/// How often, at most, the projector flushes the views' database: when it goes idle,
/// and every so often while it folds a long stretch of the log.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Most events folded into one batch.
const CHUNK: u64 = 4_096;

/// How long new events may wait to be folded while no reader waits for them and fewer
/// than a chunk are pending. Under a stream of single appends this folds many events per
/// batch instead of one (a trip's document is then written once, not once per event),
/// which keeps the projector's work off the cores the writer needs; a reader that waits
/// for the views cuts the wait short, so no answer is late because of it. Each fold's
/// writes slow the one or two appends that come while they are applied (sled's lock,
/// and the views' new pages that the log's `fdatasync` carries on ext4), so fewer folds
/// cost the writer less: single appends on a 1,000,000-event store
/// (`examples/appends --base 1000000 --events 12000 --rounds 3`, three runs each) ran
/// at 0.74-0.78x of raw sled with 50 ms, p99 1.9-2.0 ms, and at 0.82-0.87x with 500 ms,
/// p99 0.50-0.67 ms.
const SETTLE: Duration = Duration::from_millis(500);

/// Most committed events the writer hands over to the projector ([`Shared::hand_over`])
/// before the projector takes them: past it (the projector is behind) the writer keeps
/// handing nothing until the projector has caught up, which then reads the log.
const MAX_HANDED: usize = 2 * CHUNK as usize;

/// No events are handed over in bulk work ([`use_bulk_caches`], [`use_replay_caches`]):
/// there the projector is behind most of the time and reads the log anyway, and the
/// queue only added to the peak memory (a 1,000,000-event import: 513 MiB with it, 491 MiB without, in 1:41 and
/// 1:42).
fn max_handed() -> usize {
    match WORK.load(std::sync::atomic::Ordering::Relaxed) {
        QUERIES => MAX_HANDED,
        _ => 0,
    }
}

/// Most keys written in one batch (a chunk ends early once its documents and history
/// pass this). sled 0.34.7 applies a batch under a lock that every tree of the process
/// shares, so a large batch holds up the writer and every reader while it applies;
/// small batches keep that wait short.
const MAX_BATCH_KEYS: usize = 2_000;

/// The same while the log is being written ([`log_first::log_busy`]) and no reader
/// waits for the views: a commit that comes while a batch applies waits for it, so the
/// batch should end about when the writer's flush and `fdatasync` do. In the benchmark's
/// W3 build (100,000 events in batches of 1,000, three alternating runs) chronicle ran
/// at 0.61-0.67x of raw sled with 500 keys and 0.70-0.77x with 100; 1,200 single
/// appends (`examples/appends`) at 0.72-0.79x and 0.82-0.84x, p99 1.1-2.5 ms and
/// 0.6-0.9 ms. 16 writers (`appends --base 100000 --events 48000 --rounds 3 --writers
/// 16`, alternating) reached 11,903 and 11,492 events/s with 100 keys, 16,964, 14,596,
/// 15,354 and 15,007 with 30, with the views caught up about the same (6,886-6,996 and
/// 6,853-7,777), while single appends and batches of 1,000 kept their rates; see
/// docs/performance-history.md, "Views batches of 30 keys while the log is busy". The
/// projector folds more slowly meanwhile, and catches up with larger batches once the
/// log is quiet or a reader waits.
const BUSY_BATCH_KEYS: usize = 30;

/// A rebuild asked for by `chronicle replay`.
pub(super) struct Rebuild {
    pub progress: Box<dyn FnMut(u64, u64) + Send>,
    pub reply: std::sync::mpsc::SyncSender<Result<()>>,
}

/// What the projector is told, and what it tells.
#[derive(Default)]
struct State {
    /// The durable head of the log, as the writer published it.
    durable: u64,
    /// Whether the durable head moved since the store opened.
    grew: bool,
    /// The last position folded into the active views.
    projected: u64,
    /// How far the projector got rebuilding the views to catch up ([`far_behind`]).
    rebuilding: Option<u64>,
    rebuild: Option<Rebuild>,
    /// Readers waiting for the views to reach a position.
    readers: usize,
    /// The projector is letting new events settle ([`SETTLE`]): a new head need not
    /// wake it until a chunk is pending.
    settling: bool,
    closed: bool,
    /// Why the projector stopped, when it failed.
    failed: Option<String>,
}

impl State {
    /// Whether a new durable head should wake the projector: not while it lets fewer
    /// than a chunk of new events settle, which it ends on its own (one wake per commit
    /// of a stream of single appends, for nothing, otherwise).
    fn needs_waking(&self) -> bool {
        !self.settling || self.durable.saturating_sub(self.projected) >= CHUNK
    }
}

/// The state shared between the store's handles and the projector thread.
pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the projector (new head, rebuild, close) and the readers waiting for it.
    changed: Condvar,
    /// The active views (a rebuild switches to new ones).
    active: RwLock<Active>,
    /// Events the writer just committed, in position order with no gap, so that the
    /// projector folds them without reading and parsing them again.
    handed: Mutex<VecDeque<RecordedEvent>>,
}

/// The active views tree and the database that holds it.
struct Active {
    db: sled::Db,
    tree: sled::Tree,
}

impl Shared {
    pub fn new(
        db: sled::Db,
        views: sled::Tree,
        projected: Position,
        durable: Position,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                durable: durable.0,
                projected: projected.0,
                ..State::default()
            }),
            changed: Condvar::new(),
            active: RwLock::new(Active { db, tree: views }),
            handed: Mutex::new(VecDeque::new()),
        })
    }

    fn active(&self) -> std::sync::RwLockReadGuard<'_, Active> {
        self.active.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The active views' database.
    fn db(&self) -> sled::Db {
        self.active().db.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the writer after every durable commit.
    pub fn durable(&self, head: Position) {
        let mut state = self.lock();
        state.durable = head.0;
        state.grew = true;
        let wake = state.needs_waking();
        drop(state);
        if wake {
            self.changed.notify_all();
        }
    }

    /// Whether [`Shared::hand_over`] would keep `count` events from position `first`:
    /// the writer asks before it takes a large commit's events apart.
    pub fn takes(&self, first: Position, count: usize) -> bool {
        fits(&self.handed(), first, count)
    }

    /// Hands the events of a durable commit (in position order) to the projector, when
    /// they follow those it holds and it holds few enough ([`max_handed`]); otherwise
    /// they are dropped, and the projector reads them from the log.
    pub fn hand_over(&self, events: Vec<RecordedEvent>) {
        let mut handed = self.handed();
        if let Some(first) = events.first()
            && fits(&handed, first.position, events.len())
        {
            handed.extend(events);
        }
    }

    fn handed(&self) -> std::sync::MutexGuard<'_, VecDeque<RecordedEvent>> {
        self.handed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event at `position` if it was handed over, after dropping those before it;
    /// otherwise the first position handed over after it, if any.
    fn take_handed(&self, position: u64) -> Result<RecordedEvent, Option<u64>> {
        let mut handed = self.handed();
        while handed.front().is_some_and(|e| e.position.0 < position) {
            handed.pop_front();
        }
        match handed.front() {
            Some(e) if e.position.0 == position => Ok(handed.pop_front().expect("a front")),
            Some(e) => Err(Some(e.position.0)),
            None => Err(None),
        }
    }

    /// Tells the projector that the log is durable at least up to `head` (read from
    /// the log by someone else than the writer, such as another host's commit).
    pub fn durable_at_least(&self, head: Position) {
        let mut state = self.lock();
        if head.0 > state.durable {
            state.durable = head.0;
            state.grew = true;
            let wake = state.needs_waking();
            drop(state);
            if wake {
                self.changed.notify_all();
            }
        }
    }

    /// Marks the projector failed, for `e`: readers waiting for the views get it.
    fn fail(&self, e: Error) {
        self.lock().failed.get_or_insert_with(|| e.to_string());
        self.changed.notify_all();
    }

    /// Tells the projector to stop after its current chunk.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Asks for a rebuild; the reply comes through `rebuild.reply`.
    pub fn rebuild(&self, rebuild: Rebuild) {
        self.lock().rebuild = Some(rebuild);
        self.changed.notify_all();
    }

    /// The last position folded into the views.
    pub fn projected(&self) -> Position {
        Position(self.lock().projected)
    }

    /// The active views.
    fn views(&self) -> LiveDocs {
        LiveDocs {
            tree: self.active().tree.clone(),
        }
    }

    /// Waits until the views reflect at least `position`, at most `timeout` (`None`:
    /// as long as it takes), calling `progress(projected)` as they advance. Returns the
    /// position they reflect, or `None` on timeout.
    pub fn wait(
        &self,
        position: Position,
        timeout: Option<Duration>,
        progress: &mut dyn FnMut(Position),
    ) -> Result<Option<Position>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        if state.projected >= position.0 && state.failed.is_none() {
            return Ok(Some(Position(state.projected)));
        }
        // Counted while waiting, so that the projector folds at once for it.
        state.readers += 1;
        self.changed.notify_all();
        let outcome = self.waiting(state, position, deadline, progress);
        self.lock().readers -= 1;
        outcome
    }

    fn waiting(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        position: Position,
        deadline: Option<Instant>,
        progress: &mut dyn FnMut(Position),
    ) -> Result<Option<Position>> {
        loop {
            if let Some(why) = &state.failed {
                return Err(Error::Storage(format!(
                    "the views could not be brought up to date ({why}); run `chronicle replay`"
                )));
            }
            if state.projected >= position.0 {
                return Ok(Some(Position(state.projected)));
            }
            progress(Position(state.projected.max(state.rebuilding.unwrap_or(0))));
            let wait = match deadline {
                None => Duration::from_millis(200),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left.min(Duration::from_millis(200)),
                    None => return Ok(None),
                },
            };
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Marks the projector failed when its thread panics (a bug), so that readers waiting
/// for the views get an error instead of waiting forever.
struct FailOnPanic(Arc<Shared>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .lock()
                .failed
                .get_or_insert_with(|| "the projector thread panicked".into());
            self.0.changed.notify_all();
        }
    }
}

/// Runs until the store closes.
fn run(store_dir: &Path, log: Arc<dyn LogRead>, runner: Arc<Runner>, shared: Arc<Shared>) {
    let mut last_flush = Instant::now();
    let mut dirty = false;
    // Since when new events have been waiting to be folded.
    let mut pending_since: Option<Instant> = None;
    // The pause before trying again while the log cannot be reached.
    let mut pause: Option<Duration> = None;
    loop {
        let (target, projected, log_grew, rebuild) = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                if state.rebuild.is_some() {
                    break;
                }
                if state.durable > state.projected {
                    let since = *pending_since.get_or_insert_with(Instant::now);
                    let settled = since.elapsed() >= SETTLE;
                    if settled || state.readers > 0 || state.durable - state.projected >= CHUNK {
                        pending_since = None;
                        break;
                    }
                    let left = SETTLE.saturating_sub(since.elapsed());
                    state.settling = true;
                    state = shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    state.settling = false;
                    continue;
                }
                // Idle: write what was folded to disk, so a kill costs a short catch-up.
                if dirty && last_flush.elapsed() >= FLUSH_EVERY {
                    drop(state);
                    if let Err(e) = shared.db().flush() {
                        shared.fail(storage(e));
                        return;
                    }
                    (dirty, last_flush) = (false, Instant::now());
                    state = shared.lock();
                    continue;
                }
                let wait = if dirty {
                    FLUSH_EVERY
                } else {
                    Duration::from_secs(3600)
                };
                state = shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            (
                state.durable,
                state.projected,
                state.grew,
                state.rebuild.take(),
            )
        };
        let result = match rebuild {
            Some(mut r) => {
                let result =
                    rebuild_views(store_dir, &*log, &runner, &shared, target, &mut *r.progress);
                let outcome =
                    result.map_err(|e| Error::Storage(format!("rebuilding the views: {e}")));
                let _ = r.reply.send(outcome);
                Ok(())
            }
            None if !log_grew && far_behind(projected, target) => {
                // Queries wait (or a server answers 503) until this ends: say why.
                tracing::info!(
                    target: "chronicle::projector",
                    "the views lack {} events: rebuilding them from the log up to position {target}",
                    target - projected
                );
                let started = Instant::now();
                let mut progress = |done, _| {
                    shared.lock().rebuilding = Some(done);
                    shared.changed.notify_all();
                };
                let rebuilt =
                    rebuild_views(store_dir, &*log, &runner, &shared, target, &mut progress);
                shared.lock().rebuilding = None;
                if rebuilt.is_ok() {
                    tracing::info!(
                        target: "chronicle::projector",
                        "the views are rebuilt up to position {target}, in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                rebuilt
            }
            None => {
                let tree = shared.active().tree.clone();
                let end = target.min(projected + CHUNK);
                dirty = true;
                fold_range(&*log, &shared, &runner, &tree, projected + 1, end).and_then(|folded| {
                    shared.lock().projected = folded;
                    shared.changed.notify_all();
                    // Busy for long: write out what was folded now and then too.
                    if last_flush.elapsed() >= FLUSH_EVERY {
                        shared.db().flush().map_err(storage)?;
                        (dirty, last_flush) = (false, Instant::now());
                    }
                    Ok(())
                })
            }
        };
        match result {
            Ok(()) => pause = None,
            // The log's server is down or failing over: nothing was folded; try again
            // after a pause (doubling up to 2 s) rather than give up on the views.
            Err(Error::Unavailable(why)) => {
                let wait = pause.map_or(Duration::from_millis(100), |p: Duration| {
                    (p * 2).min(Duration::from_secs(2))
                });
                pause = Some(wait);
                tracing::warn!(target: "chronicle::projector", "{why}; trying again in {wait:?}");
                let state = shared.lock();
                if !state.closed {
                    drop(shared.changed.wait_timeout(state, wait));
                }
            }
            Err(e) => {
                shared.fail(e);
                return;
            }
        }
    }
}

/// The fewest events the views must lack before the projector catches up by rebuilding
/// (below it, making a new database for them costs more than it saves).
const FAR_BEHIND: u64 = CHUNK;

/// Whether views at `projected` are better rebuilt than caught up to `target`, as the
/// store opens (the first open after a large write by another process, after an
/// upgrade; not once the log has grown since, by this process's writes or another
/// host's commits: then, as in an import, the views have folded beside the writes, and
/// a rebuild would run in a process whose memory the writes already grew): they lack at least [`FAR_BEHIND`] events and more
/// than twice what they hold. A rebuild folds the whole log, but overlaps its folding
/// with sled's writes ([`fold_unread`]), which a catch-up into the views readers see
/// cannot.
fn far_behind(projected: u64, target: u64) -> bool {
    let lack = target.saturating_sub(projected);
    lack >= FAR_BEHIND && lack > 2 * projected
}

/// Folds positions from `from` on, up to `to` or until the batch is full, into `tree`;
/// returns the last position folded.
fn fold_range(
    log: &dyn LogRead,
    shared: &Shared,
    runner: &Runner,
    tree: &sled::Tree,
    from: u64,
    to: u64,
) -> Result<u64> {
    let defer = || defer_to_the_log(shared);
    let events = in_order(log, shared, from, to);
    let folded = views::fold_chunk(tree, runner, events, batch_keys(shared), defer)?;
    folded.map(|p| p.0).ok_or_else(|| missing(from))
}

/// The events `from..=to` for a fold, failing at a gap in their positions.
fn in_order<'a>(
    log: &'a dyn LogRead,
    shared: &'a Shared,
    from: u64,
    to: u64,
) -> impl Iterator<Item = Result<RecordedEvent>> + 'a {
    let mut expected = from;
    Handed::new(log, shared, from, to).map(move |event| {
        let event = event?;
        if event.position.0 != expected {
            return Err(missing(expected));
        }
        expected += 1;
        Ok(event)
    })
}

fn missing(position: u64) -> Error {
    Error::Integrity(format!(
        "position {position} is missing; run `chronicle verify`"
    ))
}

/// The log's commits first (see `log_first`), unless a reader waits for the views.
fn defer_to_the_log(shared: &Shared) {
    if shared.lock().readers == 0 {
        log_first::wait_for_commits(log_first::MOST_DEFERRED);
    }
}

/// Most documents written in one views batch of a catch-up: fewer while the log is
/// busy, unless a reader waits for the views.
fn batch_keys(shared: &Shared) -> usize {
    match log_first::log_busy() && shared.lock().readers == 0 {
        true => BUSY_BATCH_KEYS,
        false => MAX_BATCH_KEYS,
    }
}

/// Folds positions `from..=to` into `tree`, the tree of a rebuild (which nothing reads
/// and a crash discards: its folder is named in `views.current` only once complete),
/// two chunks at a time: each chunk's writes are applied on another thread while the
/// next chunk is folded, reading those writes in place of the tree
/// ([`views::InFlight`]). They are applied key by key, not as one batch: sled's batch
/// holds its process-wide lock, which every read takes too, for the whole batch, so the
/// fold would wait; key by key, the fold's reads and sled's writes overlap (a 100,000-event
/// replay in 5.5-7.2 s instead of 9.3-13.0). A crash midway leaves documents without the
/// checkpoint that describes them, which is why only a rebuild does this. Its chunks
/// stay large while the log is busy, since a write holds the lock for one key only. Calls
/// `applied` with each chunk's last position once its writes are applied.
fn fold_unread(
    log: &dyn LogRead,
    shared: &Shared,
    runner: &Runner,
    tree: &sled::Tree,
    from: u64,
    to: u64,
    applied: &mut dyn FnMut(u64),
) -> Result<()> {
    std::thread::scope(|scope| {
        let mut applying: Option<(u64, std::thread::ScopedJoinHandle<'_, Result<()>>)> = None;
        let mut in_flight = views::InFlight::nothing(tree);
        let mut done = from - 1;
        while done < to {
            let end = to.min(done + CHUNK);
            let events = in_order(log, shared, done + 1, end);
            let folded = views::fold(tree, runner, events, MAX_BATCH_KEYS, &in_flight)?
                .ok_or_else(|| missing(done + 1))?;
            if let Some((position, batch)) = applying.take() {
                join(batch)?;
                applied(position);
            }
            done = folded.position.0;
            in_flight = folded.in_flight;
            let writes = folded.writes;
            applying = Some((
                done,
                scope.spawn(move || {
                    for (key, value) in writes {
                        match value {
                            Some(v) => tree.insert(key, v).map_err(storage)?,
                            None => tree.remove(key).map_err(storage)?,
                        };
                    }
                    Ok(())
                }),
            ));
        }
        if let Some((position, batch)) = applying {
            join(batch)?;
            applied(position);
        }
        Ok(())
    })
}

fn join(batch: std::thread::ScopedJoinHandle<'_, Result<()>>) -> Result<()> {
    batch
        .join()
        .unwrap_or_else(|_| Err(Error::Storage("writing a views batch failed".into())))
}

/// Whether `count` events from position `first` may join those `handed` holds: they
/// follow them, and there are few enough.
fn fits(handed: &VecDeque<RecordedEvent>, first: Position, count: usize) -> bool {
    let follows = handed
        .back()
        .is_none_or(|last| first.0 == last.position.0 + 1);
    follows && handed.len() + count <= max_handed()
}

/// The events at positions `from..=to`: those the writer handed over
/// ([`Shared::hand_over`]), the others read from the log.
struct Handed<'a> {
    log: &'a dyn LogRead,
    shared: &'a Shared,
    next: u64,
    to: u64,
    /// Reading the log up to this position, where the events handed over start again.
    reading: Option<(Events<'a>, u64)>,
}

impl<'a> Handed<'a> {
    fn new(log: &'a dyn LogRead, shared: &'a Shared, from: u64, to: u64) -> Self {
        Handed {
            log,
            shared,
            next: from,
            to,
            reading: None,
        }
    }
}

impl Iterator for Handed<'_> {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.to {
            return None;
        }
        if let Some((events, end)) = &mut self.reading {
            if self.next <= *end {
                self.next += 1;
                return events.next();
            }
            self.reading = None;
        }
        match self.shared.take_handed(self.next) {
            Ok(event) => {
                // What was handed over is what the log holds (checked in tests).
                #[cfg(debug_assertions)]
                if let Some(Ok(stored)) = self.log.range(event.position, event.position).next() {
                    assert_eq!(stored, event, "an event handed over differs from the log's");
                }
                self.next += 1;
                Some(Ok(event))
            }
            Err(handed_from) => {
                let end = handed_from.map_or(self.to, |p| (p - 1).min(self.to));
                let events = self.log.range(Position(self.next), Position(end));
                self.reading = Some((events, end));
                self.next()
            }
        }
    }
}

/// Builds the views of positions `1..=head` into a new database in a folder of its own
/// beside the active one (`views.<n+1>`), then names it in `views.current` (one atomic
/// rename), switches to it and removes the old folder. A crash before the rename leaves
/// the old views (the next open removes the new folder), after it the new ones (it
/// removes the old): never a mix. Each database keeps the folder it was opened in, which
/// sled's blob files and snapshots are named by. A query still reading the old views
/// reads what sled has open; a page sled kept in a blob file (over 128 KiB) it can no
/// longer read, and it fails, to be asked again.
fn rebuild_views(
    store_dir: &Path,
    log: &dyn LogRead,
    runner: &Runner,
    shared: &Shared,
    head: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let current = current_dir(store_dir);
    let (next, db) = create_next(store_dir, &current)?;
    let built = (|| {
        let tree = open_fresh(&db)?;
        db.insert(keys::VIEWS, tree.name()).map_err(storage)?;
        progress(0, head);
        if head > 0 {
            fold_unread(log, shared, runner, &tree, 1, head, &mut |done| {
                progress(done, head)
            })?;
        }
        sync_views(&next, &db)?;
        Ok(tree)
    })();
    let tree = match built {
        Ok(tree) => tree,
        Err(e @ Error::Storage(_)) => {
            // A write failed: never flushed again (see `Projector`'s drop). The folder
            // is removed by the next rebuild or open.
            std::mem::forget(db);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    point_at(store_dir, &next)?;
    let old = std::mem::replace(
        &mut *shared.active.write().unwrap_or_else(|e| e.into_inner()),
        Active { db, tree },
    );
    shared.lock().projected = head;
    shared.changed.notify_all();
    drop(old);
    if let Err(e) = remove_dir(&current) {
        tracing::warn!(target: "chronicle::projector", "{e}; the next open removes it");
    }
    Ok(())
}

/// Creates the empty database of the next views folder after `current`, removing what
/// a rebuild cut short left there.
fn create_next(store_dir: &Path, current: &Path) -> Result<(PathBuf, sled::Db)> {
    let next = next_dir(store_dir, current);
    remove_dir(&next)?;
    let db = open_sled(&next).map_err(|e| {
        Error::Storage(format!(
            "creating the new views in {}: {}",
            next.display(),
            e.reason()
        ))
    })?;
    Ok((next, db))
}

/// Replaces views that cannot be kept (see [`usable`]) by an empty database in the next
/// folder, named in `views.current` before the old folder is removed, as a replay does
/// (a crash in between leaves one of the two). Dropping their tree inside the old
/// database instead would make sled walk every page of it, holding each in memory until
/// the walk ends (gigabytes at a million events).
fn start_afresh(store_dir: &Path, old: sled::Db) -> Result<sled::Db> {
    let current = current_dir(store_dir);
    let (next, db) = create_next(store_dir, &current)?;
    sync_views(&next, &db)?;
    point_at(store_dir, &next)?;
    drop(old);
    if let Err(e) = remove_dir(&current) {
        tracing::warn!(target: "chronicle::projector", "{e}; the next open removes it");
    }
    Ok(db)
}

/// The file in a store's folder that names its active views folder; without it, the
/// views are in `views` (as every store had them before rebuilds made new folders).
const CURRENT_FILE: &str = "views.current";

/// A views folder's name: `views`, or `views.<n>` for the n-th rebuild's.
fn is_views_name(name: &str) -> bool {
    name == VIEWS_DIR
        || name
            .strip_prefix("views.")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The folder of the active views of the store (or `--views` folder) `store_dir`:
/// `views`, or the `views.<n>` a replay made, as `views.current` names it.
pub fn current_dir(store_dir: &Path) -> PathBuf {
    let named = std::fs::read_to_string(store_dir.join(CURRENT_FILE)).unwrap_or_default();
    let name = Some(named.trim())
        .filter(|n| is_views_name(n))
        .unwrap_or(VIEWS_DIR);
    store_dir.join(name)
}

/// The folder the next rebuild writes to.
fn next_dir(store_dir: &Path, current: &Path) -> PathBuf {
    let n = current
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("views."))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    store_dir.join(format!("views.{}", n + 1))
}

/// Names `dir` in `views.current`, durably: written beside it, synced, renamed over it,
/// and the folder synced.
fn point_at(store_dir: &Path, dir: &Path) -> Result<()> {
    use std::io::Write;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(VIEWS_DIR);
    let file = store_dir.join(CURRENT_FILE);
    let temp = store_dir.join(format!("{CURRENT_FILE}.tmp"));
    let fail = |e: std::io::Error| Error::Storage(format!("writing {}: {e}", file.display()));
    let mut out = std::fs::File::create(&temp).map_err(fail)?;
    out.write_all(format!("{name}\n").as_bytes())
        .map_err(fail)?;
    out.sync_all().map_err(fail)?;
    std::fs::rename(&temp, &file).map_err(fail)?;
    std::fs::File::open(store_dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)
}

/// Removes every views folder of `store_dir` but `current`: a rebuild cut short, or the
/// views a rebuild replaced.
fn remove_other_views(store_dir: &Path, current: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(store_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_str().is_some_and(is_views_name) && path != current && path.is_dir() {
            remove_dir(&path)?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::Storage(format!("removing {}: {e}", dir.display())))
        }
        _ => Ok(()),
    }
}

/// A new, empty views tree with a name no other tree has.
fn open_fresh(db: &sled::Db) -> Result<sled::Tree> {
    let taken: Vec<_> = db.tree_names();
    let mut n = 1u64;
    loop {
        let name = format!("views.{n}");
        if !taken.iter().any(|t| t.as_ref() == name.as_bytes()) {
            return db.open_tree(name).map_err(storage);
        }
        n += 1;
    }
}

/// Whether the views in `db` can be kept: none yet, or built by this code's versions of
/// the projections and not ahead of the log.
fn usable(db: &sled::Db, runner: &Runner, head: Position) -> Result<bool> {
    let Some(name) = db.get(keys::VIEWS).map_err(storage)? else {
        return Ok(true);
    };
    let tree = db.open_tree(name).map_err(storage)?;
    Ok(views::checkpoint(&tree)?
        .is_none_or(|c| c.versions == views::built_by(runner) && c.position <= head))
}

/// Opens the active views tree (creating it in a new database), dropping any other (left
/// by versions that rebuilt inside the database).
fn open_active(db: &sled::Db) -> Result<(sled::Tree, Position)> {
    let active = db.get(keys::VIEWS).map_err(storage)?;
    let tree = match &active {
        Some(name) => db.open_tree(name).map_err(storage)?,
        None => open_fresh(db)?,
    };
    if active.as_deref() != Some(&*tree.name()) {
        db.insert(keys::VIEWS, tree.name()).map_err(storage)?;
    }
    for name in db.tree_names() {
        if name.starts_with(b"views.") && name != tree.name() {
            db.drop_tree(&name).map_err(storage)?;
        }
    }
    let projected = views::checkpoint(&tree)?.map_or(Position(0), |c| c.position);
    Ok((tree, projected))
}

/// The views of one store: their database, the projector thread that keeps them, and
/// the waits of readers. Dropping it stops the thread after its current chunk and
/// flushes the views' database.
pub(super) struct Projector {
    /// The store's folder (on PostgreSQL, the views' folder), where `views.current` is.
    dir: PathBuf,
    runner: Arc<Runner>,
    log: Arc<dyn LogRead>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Projector {
    /// Opens the views' database in `store_dir` (removing and starting afresh one that
    /// sled cannot open), picks the active views, and starts the thread that folds the
    /// log from their checkpoint up to `head` and on. Call only under the store's lock.
    pub fn open(
        store_dir: &Path,
        runner: Arc<Runner>,
        log: Arc<dyn LogRead>,
        head: Position,
    ) -> Result<Projector> {
        let db = open_db(store_dir)?;
        Projector::start(store_dir, db, runner, log, head)
    }

    /// [`Projector::open`] on a views database already opened with [`open_db`].
    pub fn start(
        store_dir: &Path,
        db: sled::Db,
        runner: Arc<Runner>,
        log: Arc<dyn LogRead>,
        head: Position,
    ) -> Result<Projector> {
        let db = match usable(&db, &runner, head)? {
            true => db,
            false => start_afresh(store_dir, db)?,
        };
        let (tree, projected) = open_active(&db)?;
        let shared = Shared::new(db, tree, projected, head);
        let thread = {
            let (dir, log, runner, shared) = (
                store_dir.to_owned(),
                log.clone(),
                runner.clone(),
                shared.clone(),
            );
            std::thread::Builder::new()
                .name("chronicle-projector".into())
                .spawn(move || {
                    let _failed = FailOnPanic(shared.clone());
                    run(&dir, log, runner, shared)
                })
                .map_err(|e| Error::Storage(format!("starting the projector thread: {e}")))?
        };
        Ok(Projector {
            dir: store_dir.to_owned(),
            runner,
            log,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// What the writer tells of every durable commit.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// See [`Shared::wait`].
    pub fn wait(
        &self,
        position: Position,
        timeout: Option<Duration>,
        progress: &mut dyn FnMut(Position),
    ) -> Result<Option<Position>> {
        self.shared.wait(position, timeout, progress)
    }

    /// The active views, as they are now.
    pub fn views(&self) -> LiveDocs {
        self.shared.views()
    }

    /// The last position folded into the views.
    pub fn projected(&self) -> Position {
        self.shared.projected()
    }

    /// Asks for a rebuild; the reply comes through `rebuild.reply`.
    pub fn rebuild(&self, rebuild: Rebuild) {
        self.shared.rebuild(rebuild)
    }

    /// The views as they stood after `position` (see [`views::past`]); waits for the
    /// projector to reach it first.
    pub fn past(&self, position: Position) -> Result<PastDocs> {
        self.shared.wait(position, None, &mut |_| {})?;
        let tree = self.shared.views().tree;
        views::past(&tree, &self.runner, position, |from| {
            self.log.range(from, position).collect()
        })
    }

    /// The projections folded into these views.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// The views with every event up to `head` folded in: waits for the projector to
    /// reach it, showing `progress(projected, head)` while it waits.
    pub fn live(&self, head: Position, progress: &mut dyn FnMut(u64, u64)) -> Result<LiveDocs> {
        self.wait(head, None, &mut |p| progress(p.0, head.0))?;
        Ok(self.views())
    }

    /// The views once they reflect at least `position`, waiting at most `timeout`; with
    /// the position they reflect. `Ok(None)` when the projector did not get there in
    /// time.
    pub fn at_least(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<Option<(LiveDocs, Position)>> {
        let reached = self.wait(position, Some(timeout), &mut |_| {})?;
        // Read the tree after the wait, so a rebuild that swapped it is seen.
        Ok(reached.map(|p| (self.views(), p)))
    }

    /// Each projection's name, code version and checkpoint (the same for all: they are
    /// folded together), the facts layer first.
    pub fn checkpoints(&self) -> Vec<(String, u32, Position)> {
        let projected = self.projected();
        let mut out = vec![(
            crate::projection::runner::FACTS.to_owned(),
            crate::projection::facts::VERSION,
            projected,
        )];
        for p in self.runner.projections() {
            out.push((p.name().to_owned(), p.version(), projected));
        }
        out
    }

    /// Rebuilds every projection from the whole log into a fresh database in the next
    /// views folder and names it in `views.current` once complete;
    /// `names`, when given, must be projection names (they are rebuilt with the rest).
    /// Returns once the new views are in place.
    pub fn rebuild_all(
        &self,
        names: &[String],
        progress: Box<dyn FnMut(u64, u64) + Send>,
    ) -> Result<()> {
        // `stats` lists the facts layer beside the projections: its name is accepted too.
        let mut all = vec![crate::projection::runner::FACTS];
        all.extend(self.runner.names());
        if let Some(name) = names.iter().find(|n| !all.contains(&n.as_str())) {
            return Err(Error::Invalid {
                index: None,
                error: crate::model::ValidationError::field(
                    "projection",
                    format!(
                        "no projection is named `{name}`; the projections are {} (they are always rebuilt together)",
                        all.join(", ")
                    ),
                ),
            });
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.rebuild(Rebuild { progress, reply });
        answer
            .recv()
            .map_err(|_| Error::Storage("the projector stopped before answering".into()))?
    }

    /// Bytes the views' database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.shared.db().size_on_disk().map_err(storage)
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.shared.close();
        if let Ok(mut handle) = self.thread.lock()
            && let Some(handle) = handle.take()
        {
            let _ = handle.join();
        }
        // Views that failed a write are never written again: after an IO error sled's
        // flush can wait forever, holding its process-wide lock (see the log's
        // `Halted`), and sled flushes a database when its last handle goes, so one
        // handle is kept. The next open rebuilds or catches up the views.
        if self.shared.lock().failed.is_some() {
            std::mem::forget(self.shared.db());
            return;
        }
        let _ = sync_views(&current_dir(&self.dir), &self.shared.db());
    }
}

/// Makes a views database durable (sled's flush, then an `fdatasync` of its file and of
/// its blob files, as the log's commits do): before a rename names it in
/// `views.current`, and on close, since its writes are otherwise never synced
/// ([`open_sled`]).
fn sync_views(folder: &Path, db: &sled::Db) -> Result<()> {
    super::disk::Disk::open(folder)?.flush(db)
}

/// Opens the views' database in `store_dir` (see [`Projector::open`]), to start a
/// projector on it with [`Projector::start`]. Call only under the store's lock.
pub fn open_db(store_dir: &Path) -> Result<sled::Db> {
    let current = current_dir(store_dir);
    remove_other_views(store_dir, &current)?;
    open_views_db(&current)
}

/// Opens the views' database, creating it when missing. One that sled cannot open (a
/// kill while it was made, damaged files) is removed, with a warning that says why, and
/// made again: the projector rebuilds it from the log. An error of the machine rather
/// than of the files ([`is_of_the_machine`]: a full disk, too many open files, no
/// permission) is returned instead: removing the views would not cure it, and would
/// cost a rebuild once it is cured.
fn open_views_db(path: &Path) -> Result<sled::Db> {
    if path.is_dir() {
        super::lock::remove_unfinished_snapshots(path)?;
    } else if path.exists() {
        // Not chronicle's: never removed.
        return Err(Error::Storage(format!(
            "{} is not a folder, where chronicle keeps this store's views; move it away and run the command again (the views are rebuilt from the log)",
            path.display()
        )));
    }
    match open_sled(path) {
        Ok(db) => Ok(db),
        Err(OpenError::Busy) => Err(Error::Locked {
            path: path.to_owned(),
            views: true,
            holder: None,
        }),
        Err(OpenError::Other(sled::Error::Io(io))) if is_of_the_machine(&io) => {
            Err(Error::Storage(format!(
                "opening the views in {}: {io}; free what it names (disk space, open files, permissions) and run the command again",
                path.display()
            )))
        }
        Err(OpenError::Other(e)) => {
            tracing::warn!(
                target: "chronicle::projector",
                "removing the views in {}, which sled cannot open ({}); they are rebuilt from the log",
                path.display(),
                super::sled_reason(&e)
            );
            std::fs::remove_dir_all(path).map_err(|e| {
                Error::Storage(format!(
                    "removing the unreadable views in {}: {e}",
                    path.display()
                ))
            })?;
            open_sled(path).map_err(|e| {
                Error::Storage(format!(
                    "creating the views in {}: {}",
                    path.display(),
                    e.reason()
                ))
            })
        }
    }
}

#[derive(Debug)]
enum OpenError {
    Busy,
    Other(sled::Error),
}

impl OpenError {
    fn reason(&self) -> String {
        match self {
            OpenError::Busy => "another process holds them".into(),
            OpenError::Other(e) => super::sled_reason(e),
        }
    }
}

/// Whether an error opening files is the machine's (a full disk or quota, too many
/// open files, no memory, no permission, a read-only file system), not the files'.
fn is_of_the_machine(io: &std::io::Error) -> bool {
    matches!(
        io.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EMFILE
                | libc::ENFILE
                | libc::ENOMEM
                | libc::EACCES
                | libc::EPERM
                | libc::EROFS
        )
    )
}

/// sled's settings for the active views' database of the store in `store_dir`, as a
/// store's close reopens it to leave a fresh snapshot: with sled's syncs, so that a
/// clean close leaves the views on the disk.
pub(super) fn views_config(store_dir: &Path) -> sled::Config {
    sled::Config::new()
        .path(current_dir(store_dir))
        .flush_every_ms(None)
        .cache_capacity(cache_bytes())
}

/// Opens a views database without sled's syncs. sled 0.34.7 follows every write of one
/// of its buffers with a `sync_file_range` that waits until the data reached the drive
/// (and syncs the file when it recovers a torn segment and when it closes), unless the
/// database is `temporary`; `temporary` also removes the folder when the last handle of
/// its config is dropped. The views want the first and not the second: nothing about
/// them needs to survive a power loss (the next open rebuilds views sled cannot open,
/// and `verify` compares every document with a fresh fold of the log), and a kill
/// keeps what reached the kernel. So the config is `temporary` and one handle of it is
/// kept forever (`mem::forget`: a few hundred bytes per open, no file), so that the
/// folder is never removed by sled. A rebuild of a 1M-event store ran 8% faster for it.
fn open_sled(path: &Path) -> std::result::Result<sled::Db, OpenError> {
    let config = sled::Config::new()
        .path(PathBuf::from(path))
        .flush_every_ms(None)
        .cache_capacity(cache_bytes())
        .temporary(true);
    std::mem::forget(config.clone());
    match super::sled_store::open_waiting_for_its_lock(config) {
        Ok(db) => Ok(db),
        Err(sled::Error::Io(io)) if super::sled_store::is_sled_lock_busy(&io) => {
            Err(OpenError::Busy)
        }
        Err(e) => Err(OpenError::Other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StreamId;

    fn event(position: u64) -> RecordedEvent {
        let trip = StreamId::parse("trip:a").unwrap();
        RecordedEvent::for_test(position, position, &trip, serde_json::json!({}))
    }

    fn events(positions: std::ops::RangeInclusive<u64>) -> Vec<RecordedEvent> {
        positions.map(event).collect()
    }

    #[test]
    fn only_views_the_files_make_unreadable_are_removed() {
        use std::io::{Error as IoError, ErrorKind};
        for errno in [libc::ENOSPC, libc::EMFILE, libc::EACCES, libc::EROFS] {
            assert!(
                is_of_the_machine(&IoError::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        // What torn or damaged files give: sled cannot read them, and a rebuild cures it.
        assert!(!is_of_the_machine(&IoError::from(ErrorKind::UnexpectedEof)));
        assert!(!is_of_the_machine(&IoError::from(ErrorKind::InvalidData)));
        assert!(!is_of_the_machine(&IoError::from_raw_os_error(
            libc::ENOENT
        )));
    }

    #[test]
    fn takes_what_hand_over_keeps_and_nothing_else() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("views").unwrap();
        let shared = Shared::new(db, tree, Position(0), Position(0));
        let held = |shared: &Shared| shared.handed().len();

        assert!(shared.takes(Position(1), 3));
        shared.hand_over(events(1..=3));
        assert_eq!(held(&shared), 3);

        // Not following what is held: refused, and nothing is kept.
        assert!(!shared.takes(Position(5), 1));
        shared.hand_over(events(5..=5));
        assert_eq!(held(&shared), 3);

        // Following, up to the most held, and not one more.
        let room = max_handed() - 3;
        assert!(!shared.takes(Position(4), room + 1));
        assert!(shared.takes(Position(4), room));
        shared.hand_over(events(4..=4 + room as u64 - 1));
        assert_eq!(held(&shared), max_handed());
        assert!(!shared.takes(Position(4 + room as u64), 1));

        // Once the projector took them, the next commit follows again.
        assert_eq!(
            shared.take_handed(max_handed() as u64).unwrap().position.0,
            max_handed() as u64
        );
        assert!(shared.takes(Position(max_handed() as u64 + 1), 1));
        assert_eq!(shared.take_handed(7), Err(None));
    }
}
