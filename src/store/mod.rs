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

mod disk;
mod keys;
mod lock;
mod projector;
mod rules;
mod sled_store;
mod verify;
mod views;
mod writer;

pub use lock::LOCK_FILE;
pub use rules::{IdInfo, LogIndex, Pending, Tail, check_job};
pub use sled_store::{PastDocs, SledStore};
pub use verify::VerifyReport;
pub use views::{HistoryDocs, LiveDocs};

use crate::Result;
use crate::model::{EventType, Position, ProposedEvent, RecordedEvent, StreamId, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where one appended event landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedEvent {
    pub id: Uuid,
    pub stream: StreamId,
    pub position: Position,
    pub version: Version,
    /// `false` when the id was already in the log with the same content (a retry).
    pub new: bool,
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
    pub size_on_disk: u64,
}

/// An iterator over stored events.
pub type Events<'a> = Box<dyn Iterator<Item = Result<RecordedEvent>> + 'a>;

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

    /// Where the log ends.
    fn head(&self) -> Result<Head>;

    /// Counts for `chronicle stats`.
    fn stats(&self) -> Result<Stats>;
}
