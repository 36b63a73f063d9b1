//! The byte layout of the store.
//!
//! The log lives in the default tree of the store's sled database, three keys per event
//! and one per commit:
//!
//! | key                                   | value                                 |
//! |---------------------------------------|---------------------------------------|
//! | `E` position                          | the event ([`event_value`])           |
//! | `S` stream `\0` version               | position                              |
//! | `I` uuid (16 bytes)                   | position, version                     |
//! | `Mhead`                               | last position, its hash, its recorded |
//! | `Mformat`                             | the layout's format version           |
//!
//! The views live in a database of their own (`views/`, or the `views.<n>` folder a
//! rebuild made, named in `views.current`), written only by the projector:
//! its default tree holds `Mviews`, the name of the active views tree (`views.<n>`),
//! which holds:
//!
//! | key                                   | value                                 |
//! |---------------------------------------|---------------------------------------|
//! | `D` document key                      | the document as it stands now         |
//! | `H` escaped document key, epoch       | the document at the end of that epoch |
//! | `Kcheckpoint`                         | last position folded, code versions   |
//!
//! Numbers are big-endian u64 so that keys sort in numeric order. Stream ids never
//! contain `\0`, so the separator keeps prefixes unambiguous. History keys escape
//! the document key (`\0` becomes `\0\xff`) and end it with `\0\0`, so that they sort
//! by document, then epoch, and a document key's prefix is a prefix of its escape.
//!
//! Format 1 kept the views and four more indexes in the log's default tree, format 2
//! the views in trees of the log's database; opening such a store removes them
//! (`sled_store::migrate`) and the projector builds the views in their own database.
//! Formats 1 to 3 also kept each event's content digest after the position and version
//! of its `I` value (48 bytes); format 4 reads those as they are and writes 16 bytes:
//! a retry is compared with the stored event itself. Formats 1 to 4 stored each event
//! as its JSON; format 5 stores it compactly ([`event_value`]) and reads both.
//!
//! [`event_value`]: super::event_value
//!
//! [`RecordedEvent`]: crate::model::RecordedEvent

use crate::model::{Position, StreamId, Version};
use uuid::Uuid;

/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u64 = 5;

pub const EVENT: u8 = b'E';
pub const STREAM_EVENT: u8 = b'S';
pub const ID: u8 = b'I';
pub const HEAD: &[u8] = b"Mhead";
pub const FORMAT: &[u8] = b"Mformat";
/// In the views' database: the name of the active views tree. (Format 2 kept it, and
/// the views, in the log's database.)
pub const VIEWS: &[u8] = b"Mviews";
/// Prefixes of format 1 that format 2 no longer keeps in the default tree.
pub const FORMAT_1_ONLY: [u8; 6] = [b'V', b'T', b'C', b'N', b'P', b'K'];

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

/// The prefix of every `S` key of the streams of one category (`trip` in `trip:x`).
pub fn category_streams(category: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(category.len() + 2);
    key.push(STREAM_EVENT);
    key.extend_from_slice(category.as_bytes());
    key.push(b':');
    key
}

pub fn stream_event(stream: &StreamId, version: Version) -> Vec<u8> {
    prefixed(STREAM_EVENT, stream.as_str(), Some(version.0))
}

pub fn id(id: &Uuid) -> [u8; 17] {
    let mut key = [ID; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// The value of an `I` key: where the event with that id landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdEntry {
    pub position: Position,
    pub version: Version,
}

/// The length of an `I` value written before format 4: the entry, then the event's
/// content digest (32 bytes), which nothing reads any more.
pub const OLD_ID_ENTRY_LEN: usize = 48;

impl IdEntry {
    pub fn encode(&self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&self.position.0.to_be_bytes());
        v[8..].copy_from_slice(&self.version.0.to_be_bytes());
        v
    }

    /// Reads a value of either length (format 4's, or an older format's).
    pub fn decode(bytes: &[u8]) -> Option<IdEntry> {
        if bytes.len() != 16 && bytes.len() != OLD_ID_ENTRY_LEN {
            return None;
        }
        Some(IdEntry {
            position: Position(u64_be(bytes)?),
            version: Version(u64_be(bytes.get(8..)?)?),
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

pub const DOC: u8 = b'D';
pub const HISTORY: u8 = b'H';
pub const CHECKPOINT: &[u8] = b"Kcheckpoint";

/// The views tree's key of a current document.
pub fn doc(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DOC);
    k.extend_from_slice(key);
    k
}

/// `H` and the escaped document key, without its end: the prefix of the history of
/// every document whose key starts with `key`.
pub fn history_prefix(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 12);
    k.push(HISTORY);
    for &b in key {
        k.push(b);
        if b == 0 {
            k.push(0xff);
        }
    }
    k
}

/// The prefix of one document's history: its escaped key and the end mark.
pub fn history_of(key: &[u8]) -> Vec<u8> {
    let mut k = history_prefix(key);
    k.extend_from_slice(&[0, 0]);
    k
}

/// The history key of a document at the end of an epoch.
pub fn history(key: &[u8], epoch: u64) -> Vec<u8> {
    let mut k = history_of(key);
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

/// The document key of a history key, and the length of the history key's part that
/// names the document (up to and including the end mark).
pub fn parse_history(k: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut doc = Vec::new();
    let mut i = 1;
    loop {
        match (*k.get(i)?, k.get(i + 1).copied()) {
            (0, Some(0)) => return Some((doc, i + 2)),
            (0, Some(0xff)) => {
                doc.push(0);
                i += 2;
            }
            (b, _) => {
                doc.push(b);
                i += 1;
            }
        }
    }
}

/// The value of the `Kcheckpoint` key: the last position folded into the views, and
/// the code that folded them ([`crate::store::views::built_by`]: versions and history epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: Position,
    pub versions: String,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.position.0.to_be_bytes().to_vec();
        v.extend_from_slice(self.versions.as_bytes());
        v
    }

    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        Some(Checkpoint {
            position: Position(u64_be(bytes)?),
            versions: String::from_utf8(bytes.get(8..)?.to_vec()).ok()?,
        })
    }
}
