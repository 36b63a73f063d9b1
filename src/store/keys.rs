//! The byte layout of the store: one sled tree, one key prefix per kind of record.
//!
//! | key                                   | value                                 |
//! |---------------------------------------|---------------------------------------|
//! | `E` position                          | the event as JSON ([`RecordedEvent`]) |
//! | `S` stream `\0` version               | position                              |
//! | `V` stream                            | current version of the stream         |
//! | `I` uuid (16 bytes)                   | position, version, content digest     |
//! | `T` type `\0` position                | (empty)                               |
//! | `C` category `\0` position            | (empty)                               |
//! | `N` type                              | number of events of that type         |
//! | `Mhead`                               | last position, its hash, its recorded |
//! | `Mformat`                             | the layout's format version           |
//! | `P` projection key                    | a projection document                 |
//! | `K` projection name                   | its version and checkpoint position   |
//!
//! Numbers are big-endian u64 so that keys sort in numeric order. Stream ids, types and
//! categories never contain `\0`, so the separator keeps prefixes unambiguous.
//!
//! [`RecordedEvent`]: crate::model::RecordedEvent

use crate::model::{Position, StreamId, Version};
use uuid::Uuid;

/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

pub const EVENT: u8 = b'E';
pub const STREAM_EVENT: u8 = b'S';
pub const STREAM_VERSION: u8 = b'V';
pub const ID: u8 = b'I';
pub const TYPE: u8 = b'T';
pub const CATEGORY: u8 = b'C';
pub const COUNT: u8 = b'N';
pub const HEAD: &[u8] = b"Mhead";
pub const FORMAT: &[u8] = b"Mformat";

pub fn u64_be(bytes: &[u8]) -> Option<u64> {
    bytes.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

pub fn event(position: Position) -> [u8; 9] {
    let mut key = [EVENT; 9];
    key[1..].copy_from_slice(&position.0.to_be_bytes());
    key
}

fn prefixed(tag: u8, name: &str, number: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 10);
    key.push(tag);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    if let Some(n) = number {
        key.extend_from_slice(&n.to_be_bytes());
    }
    key
}

/// The prefix of every `S` key of one stream.
pub fn stream_events(stream: &StreamId) -> Vec<u8> {
    prefixed(STREAM_EVENT, stream.as_str(), None)
}

pub fn stream_event(stream: &StreamId, version: Version) -> Vec<u8> {
    prefixed(STREAM_EVENT, stream.as_str(), Some(version.0))
}

pub fn stream_version(stream: &StreamId) -> Vec<u8> {
    let mut key = vec![STREAM_VERSION];
    key.extend_from_slice(stream.as_str().as_bytes());
    key
}

pub fn id(id: &Uuid) -> [u8; 17] {
    let mut key = [ID; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// The prefix of every `T` key of one type.
pub fn by_type(name: &str) -> Vec<u8> {
    prefixed(TYPE, name, None)
}

pub fn by_type_at(name: &str, position: Position) -> Vec<u8> {
    prefixed(TYPE, name, Some(position.0))
}

/// The prefix of every `C` key of one category.
pub fn by_category(category: &str) -> Vec<u8> {
    prefixed(CATEGORY, category, None)
}

pub fn by_category_at(category: &str, position: Position) -> Vec<u8> {
    prefixed(CATEGORY, category, Some(position.0))
}

pub fn count(name: &str) -> Vec<u8> {
    let mut key = vec![COUNT];
    key.extend_from_slice(name.as_bytes());
    key
}

/// The value of an `I` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdEntry {
    pub position: Position,
    pub version: Version,
    pub digest: [u8; 32],
}

impl IdEntry {
    pub fn encode(&self) -> [u8; 48] {
        let mut v = [0u8; 48];
        v[..8].copy_from_slice(&self.position.0.to_be_bytes());
        v[8..16].copy_from_slice(&self.version.0.to_be_bytes());
        v[16..].copy_from_slice(&self.digest);
        v
    }

    pub fn decode(bytes: &[u8]) -> Option<IdEntry> {
        Some(IdEntry {
            position: Position(u64_be(bytes)?),
            version: Version(u64_be(bytes.get(8..)?)?),
            digest: bytes.get(16..48)?.try_into().ok()?,
        })
    }
}

/// The value of the `Mhead` key: where the log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadEntry {
    pub position: Position,
    pub hash: [u8; 32],
    /// Microseconds since the Unix epoch of the last event's `recorded`.
    pub recorded_micros: i64,
}

impl HeadEntry {
    pub fn encode(&self) -> [u8; 48] {
        let mut v = [0u8; 48];
        v[..8].copy_from_slice(&self.position.0.to_be_bytes());
        v[8..40].copy_from_slice(&self.hash);
        v[40..].copy_from_slice(&self.recorded_micros.to_be_bytes());
        v
    }

    pub fn decode(bytes: &[u8]) -> Option<HeadEntry> {
        Some(HeadEntry {
            position: Position(u64_be(bytes)?),
            hash: bytes.get(8..40)?.try_into().ok()?,
            recorded_micros: i64::from_be_bytes(bytes.get(40..48)?.try_into().ok()?),
        })
    }
}

pub const DOC: u8 = b'P';
pub const CHECKPOINT: u8 = b'K';

/// The sled key of a projection document.
pub fn doc(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DOC);
    k.extend_from_slice(key);
    k
}

pub fn checkpoint(name: &str) -> Vec<u8> {
    let mut k = vec![CHECKPOINT];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The value of a `K` key: the projection's code version and the last position it
/// applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub version: u32,
    pub position: Position,
}

impl Checkpoint {
    pub fn encode(&self) -> [u8; 12] {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&self.version.to_be_bytes());
        v[4..].copy_from_slice(&self.position.0.to_be_bytes());
        v
    }

    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        Some(Checkpoint {
            version: u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?),
            position: Position(u64_be(bytes.get(4..)?)?),
        })
    }
}
