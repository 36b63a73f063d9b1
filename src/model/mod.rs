//! The event model: pure data and validation, no IO, no clock.
//!
//! - [`extent`]: dates at their precision (`2025`, `2025-01-05`, intervals, `~`).
//! - [`ids`]: stream ids, entity ids, positions, versions.
//! - [`countries`]: the built-in ISO 3166-1 country list.
//! - [`types`]: the schema-1 event types and their typed data.
//! - [`fields`]: what each type's data carries, as a table (for documents and help).
//! - [`event`]: the envelope in and out, parsing, validation, digests.
//! - [`as_of`]: what an `--as-of` value names (a position or a `recorded` time).
//! - [`patch`]: JSON merge patch (RFC 7396), how a correction changes a fact's data.

pub mod as_of;
pub mod countries;
pub mod currencies;
pub mod event;
pub mod extent;
pub mod fields;
pub mod ids;
pub mod patch;
pub mod types;

pub use event::{
    Expect, Meta, Origin, ProposedEvent, RecordedEvent, Source, ValidationError, parse_event,
    parse_event_value,
};
pub use extent::Extent;
pub use ids::{EntityId, Position, StreamId, Version};
pub use types::{EventData, EventType};
