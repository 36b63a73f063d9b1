//! What a failed commit of the sled log leaves, cleared at the next open.
//!
//! A commit that fails to reach the disk (a full disk) halts the writer
//! ([`Error::Halted`]), and sled may have made part of that commit durable all the same:
//! after an IO error its batches are not atomic (seen as a stream index entry for an
//! event the reopened log did not have). As it halts, the writer notes the last
//! durable position in `<store>/halted`. The next open of the store removes whatever
//! lies past that position (events, stream and id index entries, a head), none of which
//! was ever acknowledged, and then the note; until then every open does it again.
//!
//! Guarantee: after the open, the log ends exactly where the note says, as it did for
//! every reader before the failure.

use super::keys::{self, HeadEntry, IdEntry};
use super::sled_store::read_event;
use super::storage;
use crate::model::Position;
use crate::model::event::parse_hash;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The note's file name, in the store's folder.
const NOTE: &str = "halted";

/// A file the size of a note, made when the writer starts, so that the note can be
/// written where the disk is full: over bytes already on disk, then renamed.
const RESERVE: &str = "halted.reserve";

/// A note: the position, in a fixed width.
fn note_text(durable: Position) -> String {
    format!("{:020}\n", durable.0)
}

/// Makes the reserve for a note, when it is missing (best effort: without it the note
/// is written as a new file, which a full disk may refuse).
pub(super) fn reserve(dir: &Path) {
    let path = dir.join(RESERVE);
    if !path.exists() {
        let _ = std::fs::write(&path, note_text(Position(0)))
            .and_then(|()| std::fs::File::open(&path)?.sync_all());
    }
}

/// Notes that the log is durable up to `durable` and nothing past it is to be kept.
pub(super) fn note(dir: &Path, durable: Position) -> std::io::Result<()> {
    let text = note_text(durable);
    let reserve = dir.join(RESERVE);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&reserve)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&reserve, dir.join(NOTE)));
    if written.is_err() {
        let mut file = std::fs::File::create(dir.join(NOTE))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Clears what a failed commit left past the noted position, when there is a note;
/// returns how many keys were removed. A note that holds no position refuses the open,
/// unless it is to `inspect` the store (`verify`, `log`, `export`).
pub(super) fn clear(db: &sled::Db, dir: &Path, inspect: bool) -> Result<Option<usize>> {
    let path = dir.join(NOTE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Storage(format!("reading {}: {e}", path.display()))),
    };
    let Ok(durable) = text.trim().parse::<u64>() else {
        // Written on a full disk, the note may be empty: where the log ended is unknown.
        return match inspect {
            true => Ok(None),
            false => Err(Error::Integrity(format!(
                "the last commit to this store failed, and where its log ended could not be noted ({} holds no position): run `chronicle verify`; when it passes, remove that file, otherwise save the log with `chronicle recover`",
                path.display()
            ))),
        };
    };
    let mut batch = sled::Batch::default();
    let mut removed = 0;
    let mut remove = |batch: &mut sled::Batch, key: &[u8]| {
        batch.remove(key);
        removed += 1;
    };
    for item in db.range(keys::event(Position(durable.saturating_add(1)))..) {
        let (key, _) = item.map_err(storage)?;
        if key.first() != Some(&keys::EVENT) {
            break;
        }
        remove(&mut batch, &key);
    }
    for item in db.scan_prefix([keys::STREAM_EVENT]) {
        let (key, value) = item.map_err(storage)?;
        if keys::u64_be(&value).is_some_and(|p| p > durable) {
            remove(&mut batch, &key);
        }
    }
    for item in db.scan_prefix([keys::ID]) {
        let (key, value) = item.map_err(storage)?;
        if IdEntry::decode(&value).is_some_and(|e| e.position.0 > durable) {
            remove(&mut batch, &key);
        }
    }
    let head = db.get(keys::HEAD).map_err(storage)?;
    if head
        .and_then(|h| HeadEntry::decode(&h))
        .is_some_and(|h| h.position.0 > durable)
    {
        match read_event(db, Position(durable))? {
            Some(last) => {
                let entry = HeadEntry {
                    position: last.position,
                    hash: parse_hash(&last.hash).ok_or_else(|| {
                        Error::Integrity(format!(
                            "the event at position {durable} has a malformed hash; run `chronicle verify`"
                        ))
                    })?,
                    recorded_micros: last.recorded.timestamp_micros(),
                };
                batch.insert(keys::HEAD, &entry.encode()[..]);
            }
            None if durable == 0 => batch.remove(keys::HEAD),
            None => {
                return Err(Error::Integrity(format!(
                    "{} says the log was durable up to position {durable}, which holds no event; run `chronicle verify`",
                    path.display()
                )));
            }
        }
        removed += 1;
    }
    db.apply_batch(batch).map_err(storage)?;
    db.flush().map_err(storage)?;
    std::fs::remove_file(&path)
        .map_err(|e| Error::Storage(format!("removing {}: {e}", path.display())))?;
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(Some(removed))
}
