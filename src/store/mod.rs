//! The log: append and read, behind the [`EventStore`] trait.
//!
//! Guarantees of every implementation:
//! - an append is all-or-nothing, and returns only once its events are durable;
//! - positions start at 1 and have no gaps; each stream's versions start at 1 and have
//!   no gaps; both are assigned inside the commit;
//! - an event id is appended at most once: a retry with the same content is a no-op,
//!   with other content an error; this check comes before the concurrency check;
//! - each event's hash chains it to the one before, so a rewrite of history shows.
//!
//! [`SledStore`] is the implementation on sled; only this module knows sled.
//! [`PgStore`] (`pg`) is the same log in PostgreSQL, with the same rules and stored
//! format; only `pg` knows PostgreSQL. [`StoreLocation`] tells the two apart, and
//! [`Store`] (`handle`) is either with this process's views (or without them, for work
//! on the log alone: [`Opening::log_only`]), so that the command line and the server
//! are written once for both. The log
//! (`writer`, with the append rules as a pure decider in `rules`) is the only thing on
//! the acknowledgement path; the views are derived state that the `projector` folds
//! from the durable log into a tree of their own (`views`).
//!
//! # Crashes, and the bugs of sled 0.34.7 we inherit
//!
//! A process can be killed at any moment; what sled's recovery does then, and how the
//! store guards against each known failure (from sled's `config.rs`,
//! `pagecache/{snapshot,iterator,logger}.rs` and its issue tracker):
//!
//! - **Unfinished snapshot** (#1527, #1533): sled writes `snap.<lsn>.generating` on every
//!   open and renames it when complete, but picks the highest-named snapshot file,
//!   unfinished or not, so a kill while it writes bricks the store. Guarded: `lock`
//!   takes our own `flock` before sled reads anything and removes `.generating` files
//!   (never a finished `snap.*`, which is the only record of where the last recovery
//!   ended: #851).
//! - **Torn `conf`** on the very first open: sled writes it in two steps without a
//!   sync, and a `conf` cut between them fails every later open. Guarded: a store is
//!   created in a staging folder and its files moved in with `conf` last
//!   (`sled_store::create`); sled files without `conf` are a cut-short creation, which
//!   held no event, and are made again.
//! - **Unreadable log opens empty**: when sled finds no readable log it silently starts
//!   an empty database. Guarded: a store that exists (`conf`) must open as recovered,
//!   or open fails with exit 4 and points at `chronicle recover`.
//! - **Torn batch** (#977, fixed before 0.34): recovery stops at a batch whose end is
//!   past the intact log, so a kill mid-`apply_batch` drops the batch whole. Nothing
//!   to guard; the kill test checks that no batch is ever partial.
//! - **Segment zeroing before a durable snapshot** (#851, fixed in 0.32 by #1041): the
//!   order sled now follows is safe as long as finished snapshots are kept, which we do.
//! - **Corrupt page found on read** (#1509, open, cause unknown): shows on a read, not
//!   on open. Open checks the last 64 links of the chain; `verify` reads every event
//!   and reports positions sled cannot read as a range (exit 4), and `recover` saves
//!   what can be read.
//! - **"Corrupted" zeroed segment headers in logs** (#1358): an all-zero header of a
//!   free segment, harmless.
//! - **`flush` is `sync_file_range`** (#1351, #1452): not a drive-cache flush, and blob
//!   files are never synced. Guarded: `disk` adds an `fdatasync` of `db` and syncs new
//!   blob files (sled stores a page over ~128 KiB, such as a leaf of several large
//!   events, in `blobs/`; an inotify watch tells when one appeared) before an append
//!   is acknowledged. sled also follows every
//!   write of one of its buffers with that `sync_file_range`, waiting for the drive,
//!   unless the database is `temporary`, which also removes its folder when the last
//!   handle of its config drops: the views' databases, which need not survive a power
//!   loss, are opened `temporary` with one handle kept forever (`projector::open_sled`).
//! - **The directory lock lingers** a moment after a `Db` is dropped (#1234): handled by
//!   waiting for it on close, so the same process can reopen at once (not a store
//!   that halted, below: its handle is kept, so only another process can reopen it).
//! - **`generate_id` jumps after a crash**: not used; positions come from the log.
//! - **One lock for every tree of a process** (#1326, open): `apply_batch` takes
//!   `concurrency_control` exclusively, every read shares it, whatever the database, so
//!   the views' batches stop the log writer. Not a correctness matter; `log_first`
//!   orders the two for speed.
//! - **Nothing written after an IO error** (a full disk): sled then fails every write,
//!   may fail reads that would tidy a node, keeps the failed batch in memory, and a
//!   later `flush` (also the one sled makes when a database's last handle is dropped)
//!   can wait forever, holding the lock above. So a failed commit halts the writer
//!   ([`Error::Halted`]: that append may or may not be in the log, later ones are
//!   refused until the store is opened again); reads end at the last durable position
//!   (never showing the failed batch); and neither that database nor views that failed
//!   a write are flushed or closed again: one handle is kept, and the next open
//!   recovers what reached the disk. An IO error also breaks the atomicity of sled's
//!   batch: part of the failed commit may be on disk, which the next open clears
//!   (`halt`).

mod disk;
pub mod event_value;
mod halt;
mod handle;
mod keys;
mod location;
mod lock;
mod log_first;
mod metrics;
mod pg;
mod projector;
mod recover;
mod rules;
mod sled_store;
mod stream_cache;
mod verify;
mod views;
mod writer;

pub use halt::first_step as first_step_after_a_failed_write;
pub use handle::{FOLLOW_POLL, Store, Views, default_views_dir};
pub use keys::FORMAT_VERSION;
pub use location::StoreLocation;
pub use lock::{LOCK_FILE, is_held as is_held_by_a_process};
pub use metrics::StoreMetrics;
pub use pg::{
    HeadFollower, PgStore, SCHEMA_VERSION as PG_SCHEMA_VERSION, STALL_BOUND as PG_STALL_BOUND,
    describe_url, url_with_database,
};
pub use projector::{
    BULK_CACHE_BYTES, REPLAY_CACHE_BYTES, current_dir as active_views_dir, use_bulk_caches,
    use_replay_caches,
};
pub use recover::{Recovered, recover};
pub use rules::{IdInfo, LogIndex, Pending, Tail, check_job, unregistered_entity};
pub use sled_store::{Checker, Opening, PastDocs, SledStore, holds_store};
pub use verify::VerifyReport;
pub use views::{HistoryDocs, LiveDocs, record_writes as record_view_writes};

use crate::model::event::{GENESIS_HASH, to_hex};
use crate::model::{EventType, Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An IO error as people read it: "No space left on device (os error 28)", or the
/// kind of one sled wrapped ("no storage space"), never sled's debug form of it.
fn io_reason(io: &std::io::Error) -> String {
    match io.kind() {
        _ if io.raw_os_error().is_some() => io.to_string(),
        std::io::ErrorKind::Other => io.to_string(),
        kind => kind.to_string(),
    }
}

/// A sled error as people read it: an IO error's reason, or what a corruption means,
/// never sled's debug form of it (`Read corrupted data at file offset None backtrace ()`).
fn sled_reason(e: &sled::Error) -> String {
    match e {
        sled::Error::Io(io) => io_reason(io),
        sled::Error::Corruption { .. } => "sled read data whose checksum does not match".into(),
        sled::Error::Unsupported(what) => what.clone(),
        other => other.to_string(),
    }
}

/// A failure reported by sled. Data sled cannot read back (a checksum mismatch) is an
/// integrity failure (exit 4), with the way to find and save what can still be read;
/// anything else (the disk, the OS) is a storage failure.
fn storage(e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { .. } => Error::Integrity(format!(
            "sled cannot read part of the stored data ({}); run `chronicle verify` to find the positions affected, and `chronicle recover` to save every readable event",
            sled_reason(&e)
        )),
        sled::Error::Io(io) => Error::Storage(io_reason(&io)),
        other => Error::Storage(other.to_string()),
    }
}

/// Where one appended event landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedEvent {
    pub id: Uuid,
    pub stream: StreamId,
    pub position: Position,
    pub version: Version,
    /// `false` when the id was already in the log with the same content (a retry).
    pub new: bool,
    /// What a user should know about an event that was appended but is likely not what
    /// they meant: an amendment of a fact retracted before it (it changes nothing), or
    /// the first event of a trip's stream that is not its announcement (a mistyped id?).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The end of the log: the last position and the hash that seals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub position: Position,
    /// Hex hash of the last event; 64 zeros for an empty log.
    pub hash: String,
    /// `recorded` of the last event; `None` for an empty log.
    pub recorded: Option<DateTime<Utc>>,
}

impl Head {
    /// The head of an empty log.
    pub fn empty() -> Head {
        Head {
            position: Position(0),
            hash: to_hex(&GENESIS_HASH),
            recorded: None,
        }
    }
}

/// Which events a read returns, in position order. Filters combine with "and".
#[derive(Debug, Clone, Default)]
pub struct ReadFilter {
    /// First position to return (inclusive). Default: the start of the log.
    pub from: Option<Position>,
    pub stream: Option<StreamId>,
    /// Within `stream`, the first version to return.
    pub from_version: Option<Version>,
    pub category: Option<String>,
    pub event_type: Option<EventType>,
}

/// Counts that describe a store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub events: u64,
    pub streams: u64,
    /// Events per type, for types that have any, by name.
    pub per_type: Vec<(String, u64)>,
    pub head: Head,
    /// The whole store's files: the log, and this process's views.
    pub size_on_disk: u64,
    /// Of `size_on_disk`, the views': what a rebuild from the log makes again.
    pub views_size_on_disk: u64,
}

/// An iterator over stored events.
pub type Events<'a> = Box<dyn Iterator<Item = Result<RecordedEvent>> + 'a>;

/// The durable log as the projector reads it. Implemented by every log backend, so the
/// same projector and views follow any of them.
pub trait LogRead: Send + Sync {
    /// The events at positions `from..=to`, in position order; fewer when the log ends
    /// before `to`. Only durable events: the projector never asks past the durable head.
    fn range(&self, from: Position, to: Position) -> Events<'_>;
}

/// The log. Implementations are shared between threads; appends from many threads are
/// committed together (group commit).
pub trait EventStore: Send + Sync {
    /// Appends the events as one atomic commit and returns where each landed. Events
    /// without an id get a new UUIDv7. Returns only once the events are durable.
    fn append(&self, events: Vec<ProposedEvent>) -> Result<Vec<AppendedEvent>>;

    /// Checks the events against the log exactly as [`EventStore::append`] would,
    /// without writing anything.
    fn check(&self, events: Vec<ProposedEvent>) -> Result<()>;

    /// Reads events matching the filter, in position order.
    fn read(&self, filter: &ReadFilter) -> Events<'_>;

    /// The event at a position, if the log has it.
    fn get(&self, position: Position) -> Result<Option<RecordedEvent>>;

    /// The stream's current version, `None` when it has no events.
    fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>>;

    /// Whether any stream of `category` has an event.
    fn has_category(&self, category: &str) -> Result<bool> {
        let filter = ReadFilter {
            category: Some(category.to_owned()),
            ..ReadFilter::default()
        };
        Ok(self.read(&filter).next().transpose()?.is_some())
    }

    /// Where the log ends.
    fn head(&self) -> Result<Head>;

    /// Counts for `chronicle stats`.
    fn stats(&self) -> Result<Stats>;

    /// The bytes the store takes on disk (of `stats`), without counting anything.
    fn size_on_disk(&self) -> Result<u64>;

    /// What the log counts for operators: appends, refusals, commits and their latency.
    fn metrics(&self) -> &StoreMetrics;
}

/// The last position of `log` recorded at or before `time` (0 when none was).
pub fn position_at(log: &dyn EventStore, time: DateTime<Utc>) -> Result<Position> {
    // `recorded` never decreases along the log, so the positions can be bisected.
    let (mut low, mut high) = (0, log.head()?.position.0);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        let event = log.get(Position(mid))?.ok_or_else(|| {
            Error::Integrity(format!("position {mid} is missing; run `chronicle verify`"))
        })?;
        if event.recorded <= time {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Ok(Position(low))
}
