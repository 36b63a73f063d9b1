//! The projector: a thread that follows the durable head of the log and folds it into
//! the views, in chunks, off the acknowledgement path.
//!
//! resume → project → checkpoint: on start it reads the checkpoint of the active views
//! tree and folds from there; then it waits for the writer to publish a new durable
//! head and folds up to it. Each chunk is one sled batch holding the documents and
//! their checkpoint, so a crash leaves views that agree with their checkpoint. It
//! never syncs: the views can always be rebuilt from the log, which the writer syncs.
//!
//! A rebuild (`chronicle replay`) folds the whole log into a fresh tree and then points
//! the store at it with one write to the log tree (`Mviews`); a crash before that
//! write leaves the old views, after it the new ones, never a mix. The old tree is
//! dropped once no reader holds it (or on the next open).

use super::keys;
use super::storage;
use super::views::{self, LiveDocs};
use crate::model::{Position, RecordedEvent};
use crate::projection::runner::Runner;
use crate::{Error, Result};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Most events folded into one batch.
const CHUNK: u64 = 4_096;

/// Most keys written in one batch (a chunk ends early once its documents and history
/// pass this). sled 0.34.7 applies a batch under a lock that every tree of the process
/// shares, so a large batch holds up the writer and every reader while it applies;
/// small batches keep that wait short.
const MAX_BATCH_KEYS: usize = 2_000;

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
    /// The last position folded into the active views.
    projected: u64,
    rebuild: Option<Rebuild>,
    closed: bool,
    /// Why the projector stopped, when it failed.
    failed: Option<String>,
}

/// The state shared between the store's handles and the projector thread.
pub(super) struct Shared {
    state: Mutex<State>,
    /// Wakes the projector (new head, rebuild, close) and the readers waiting for it.
    changed: Condvar,
    /// The active views tree.
    views: RwLock<Arc<sled::Tree>>,
}

impl Shared {
    pub fn new(views: sled::Tree, projected: Position, durable: Position) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                durable: durable.0,
                projected: projected.0,
                ..State::default()
            }),
            changed: Condvar::new(),
            views: RwLock::new(Arc::new(views)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the writer after every durable commit.
    pub fn durable(&self, head: Position) {
        self.lock().durable = head.0;
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
    pub fn views(&self) -> LiveDocs {
        let tree = self.views.read().unwrap_or_else(|e| e.into_inner());
        LiveDocs {
            tree: (**tree).clone(),
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
        loop {
            if let Some(why) = &state.failed {
                return Err(Error::Storage(format!(
                    "the views could not be brought up to date ({why}); run `chronicle replay`"
                )));
            }
            if state.projected >= position.0 {
                return Ok(Some(Position(state.projected)));
            }
            progress(Position(state.projected));
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

/// Runs until the store closes.
pub(super) fn run(db: sled::Db, runner: Arc<Runner>, shared: Arc<Shared>) {
    let mut retired: Vec<Arc<sled::Tree>> = Vec::new();
    loop {
        // Drop the trees a rebuild replaced once no reader holds them.
        retired.retain(|tree| {
            if Arc::strong_count(tree) > 1 {
                return true;
            }
            let _ = db.drop_tree(tree.name());
            false
        });
        let (target, projected, rebuild) = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                if state.rebuild.is_some() || state.durable > state.projected {
                    break;
                }
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            (state.durable, state.projected, state.rebuild.take())
        };
        let result = match rebuild {
            Some(mut r) => {
                let result = rebuild_views(&db, &runner, &shared, target, &mut *r.progress);
                let outcome = result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| Error::Storage(format!("rebuilding the views: {e}")));
                if let Ok(old) = result {
                    retired.push(old);
                }
                let _ = r.reply.send(outcome);
                Ok(())
            }
            None => {
                let tree = shared
                    .views
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let end = target.min(projected + CHUNK);
                fold_range(&db, &runner, &tree, projected + 1, end).map(|folded| {
                    shared.lock().projected = folded;
                    shared.changed.notify_all();
                })
            }
        };
        if let Err(e) = result {
            shared.lock().failed = Some(e.to_string());
            shared.changed.notify_all();
            return;
        }
    }
}

/// Folds positions `from..=to` of the log into `tree`, one chunk.
/// Folds positions from `from` on, up to `to` or until the batch is full, into `tree`;
/// returns the last position folded.
fn fold_range(
    db: &sled::Db,
    runner: &Runner,
    tree: &sled::Tree,
    from: u64,
    to: u64,
) -> Result<u64> {
    let events = (from..=to).map(|p| read(db, p));
    let folded = views::fold_chunk(tree, runner, events, MAX_BATCH_KEYS)?;
    Ok(folded.map_or(from - 1, |p| p.0))
}

fn read(db: &sled::Db, position: u64) -> Result<RecordedEvent> {
    super::sled_store::read_event(db, Position(position))?.ok_or_else(|| {
        Error::Integrity(format!(
            "position {position} is missing; run `chronicle verify`"
        ))
    })
}

/// Builds the views of positions `1..=head` into a fresh tree, points the store at it,
/// and returns the tree it replaced.
fn rebuild_views(
    db: &sled::Db,
    runner: &Runner,
    shared: &Shared,
    head: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Arc<sled::Tree>> {
    let tree = open_fresh(db)?;
    let mut done = 0;
    progress(0, head);
    while done < head {
        let end = head.min(done + CHUNK);
        done = fold_range(db, runner, &tree, done + 1, end)?;
        progress(done, head);
    }
    // The swap: one write to the log tree names the new views. Flushed, so that a
    // crash after `replay` answered never brings the old views back.
    db.insert(keys::VIEWS, tree.name()).map_err(storage)?;
    db.flush().map_err(storage)?;
    let old = {
        let mut active = shared.views.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *active, Arc::new(tree))
    };
    shared.lock().projected = head;
    shared.changed.notify_all();
    Ok(old)
}

/// A new, empty views tree with a name no other tree has.
pub(super) fn open_fresh(db: &sled::Db) -> Result<sled::Tree> {
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

/// Opens the active views tree, dropping any other (a rebuild that a crash cut short,
/// or a tree that a rebuild replaced). A tree built by other code versions, or ahead of
/// the log, is replaced by an empty one, which the projector then fills.
pub(super) fn open_active(
    db: &sled::Db,
    runner: &Runner,
    head: Position,
) -> Result<(sled::Tree, Position)> {
    let active = db.get(keys::VIEWS).map_err(storage)?;
    let mut tree = match &active {
        Some(name) => db.open_tree(name).map_err(storage)?,
        None => open_fresh(db)?,
    };
    let checkpoint = views::checkpoint(&tree)?;
    let usable = checkpoint
        .as_ref()
        .is_none_or(|c| c.versions == runner.versions() && c.position <= head);
    if !usable {
        tree = open_fresh(db)?;
    }
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
