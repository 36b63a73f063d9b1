//! What a failed commit of the sled log leaves, cleared at the next open.
//!
//! A commit that fails to reach the disk (a full disk) halts the writer
//! ([`Error::Halted`]), and sled may have made part of that commit durable all the same:
//! after an IO error its batches are not atomic (seen as a stream index entry for an
//! event the reopened log did not have). As it halts, the writer notes in
//! `<store>/halted` where the log ended (the position and its event's hash) and what
//! the failed commit would have written (its positions and its first event's hash).
//! The next open removes what of that commit is there (events, stream and id index
//! entries, a head), then the note; until then every open does it again.
//!
//! Guarantees: nothing is removed unless the log still ends, as far as acknowledged
//! appends go, where the note says: the event at the noted position has the noted hash,
//! and the one after it is missing or is the failed commit's own (its hash). A note
//! that does not hold exactly that, or that the log has moved past (a note that came
//! back after its removal, a store restored beside it), refuses the open instead: no
//! acknowledged append is ever removed.

use super::keys::{self, HeadEntry, IdEntry};
use super::sled_store::read_event;
use super::storage;
use crate::model::Position;
use crate::model::event::{GENESIS_HASH, parse_hash, to_hex};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The note's file name, in the store's folder.
const NOTE: &str = "halted";

/// What to do about a failed write of the log, given why it failed (the store's
/// `Error::Storage` text): free disk space when the disk or a quota was full, otherwise
/// mend what the system reported. Then restart: the open clears what the failed commit
/// left.
pub fn first_step(reason: &str) -> &'static str {
    // ENOSPC, EDQUOT, and the kinds sled reports without an errno.
    const FULL: [&str; 4] = ["(os error 28)", "(os error 122)", "storage space", "quota"];
    if FULL.iter().any(|sign| reason.contains(sign)) {
        "free disk space"
    } else {
        "mend what the system reported (its log may say more about the disk)"
    }
}

/// A file the size of a note, made when the writer starts, so that the note can be
/// written where the disk is full: over bytes already on disk, then renamed.
const RESERVE: &str = "halted.reserve";

/// What the note says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Note {
    /// The last durable position, and the hash of its event (the chain's genesis hash
    /// for an empty log).
    pub durable: Position,
    pub durable_hash: [u8; 32],
    /// The failed commit's last position, and its first event's hash.
    pub failed_to: Position,
    pub failed_first_hash: [u8; 32],
}

const MAGIC: &str = "chronicle halted commit";

impl Note {
    /// One line of a fixed length, so that it fits its reserve exactly.
    fn text(&self) -> String {
        format!(
            "{MAGIC} durable {:020} {} failed-to {:020} {}\n",
            self.durable.0,
            to_hex(&self.durable_hash),
            self.failed_to.0,
            to_hex(&self.failed_first_hash)
        )
    }

    /// Reads a note written whole, and nothing else (a torn or padded one is `None`).
    fn parse(text: &str) -> Option<Note> {
        let line = text.strip_suffix('\n')?.strip_prefix(MAGIC)?;
        let parts: Vec<&str> = line.split(' ').collect();
        let position = |s: &str| {
            (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok().map(Position))
                .flatten()
        };
        match parts[..] {
            ["", "durable", durable, hash, "failed-to", to, first] => Some(Note {
                durable: position(durable)?,
                durable_hash: parse_hash(hash)?,
                failed_to: position(to)?,
                failed_first_hash: parse_hash(first)?,
            }),
            _ => None,
        }
    }
}

/// Makes the reserve for a note, when it is missing (best effort: without it the note
/// is written as a new file, which a full disk may refuse).
pub(super) fn reserve(dir: &Path) {
    let path = dir.join(RESERVE);
    if !path.exists() {
        let blank = " ".repeat(Note::text(&placeholder()).len());
        let _ = std::fs::write(&path, blank).and_then(|()| std::fs::File::open(&path)?.sync_all());
    }
}

fn placeholder() -> Note {
    Note {
        durable: Position(0),
        durable_hash: GENESIS_HASH,
        failed_to: Position(0),
        failed_first_hash: GENESIS_HASH,
    }
}

/// Writes the note durably: over the reserve when there is one, else into a new file;
/// either way under another name, renamed once synced, so that `halted` is whole.
pub(super) fn note(dir: &Path, note: &Note) -> std::io::Result<()> {
    let text = note.text();
    let write = |path: &Path, create: bool| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(path, dir.join(NOTE))
    };
    let reserve = dir.join(RESERVE);
    if write(&reserve, false).is_err() {
        write(&dir.join("halted.new"), true)?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Clears what a failed commit left, when there is a note; returns how many of its
/// keys were removed (a head put back counts as one). A note that cannot be read, or that the log contradicts, refuses the open,
/// unless it is to `inspect` the store (`verify`, `log`, `export`), which reads the log
/// as it is.
pub(super) fn clear(db: &sled::Db, dir: &Path, inspect: bool) -> Result<Option<usize>> {
    let path = dir.join(NOTE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Storage(format!("reading {}: {e}", path.display()))),
    };
    let refuse = |why: String| match inspect {
        true => Ok(None),
        false => Err(Error::Integrity(format!(
            "{} notes a commit that failed, but {why}: run `chronicle verify`; when it passes, remove that file",
            path.display()
        ))),
    };
    let Some(note) = Note::parse(&text) else {
        return refuse("the note is not whole".into());
    };
    let (durable, to) = (note.durable.0, note.failed_to.0);
    let hash_at = |position: u64| -> Result<Option<[u8; 32]>> {
        Ok(read_event(db, Position(position))?.and_then(|e| parse_hash(&e.hash)))
    };
    let durable_hash = match durable {
        0 => Some(GENESIS_HASH),
        p => hash_at(p)?,
    };
    if durable_hash != Some(note.durable_hash) {
        return refuse(format!(
            "the log's event at position {durable} is not the one noted"
        ));
    }
    if hash_at(durable + 1)?.is_some_and(|h| h != note.failed_first_hash) {
        return refuse(format!(
            "the log has moved on since: position {} holds another event",
            durable + 1
        ));
    }
    let failed = |p: u64| p > durable && p <= to;
    let mut batch = sled::Batch::default();
    let mut removed = 0;
    for item in db.range(keys::event(Position(durable + 1))..=keys::event(Position(to))) {
        batch.remove(item.map_err(storage)?.0);
        removed += 1;
    }
    for item in db.scan_prefix([keys::STREAM_EVENT]) {
        let (key, value) = item.map_err(storage)?;
        if keys::u64_be(&value).is_some_and(failed) {
            batch.remove(key);
            removed += 1;
        }
    }
    for item in db.scan_prefix([keys::ID]) {
        let (key, value) = item.map_err(storage)?;
        if IdEntry::decode(&value).is_some_and(|e| failed(e.position.0)) {
            batch.remove(key);
            removed += 1;
        }
    }
    let head = db.get(keys::HEAD).map_err(storage)?;
    if head
        .and_then(|h| HeadEntry::decode(&h))
        .is_some_and(|h| failed(h.position.0))
    {
        match read_event(db, note.durable)? {
            Some(last) => {
                let entry = HeadEntry {
                    position: last.position,
                    hash: note.durable_hash,
                    recorded_micros: last.recorded.timestamp_micros(),
                };
                batch.insert(keys::HEAD, &entry.encode()[..]);
            }
            None => batch.remove(keys::HEAD),
        }
        removed += 1;
    }
    db.apply_batch(batch).map_err(storage)?;
    db.flush().map_err(storage)?;
    std::fs::remove_file(&path)
        .map_err(|e| Error::Storage(format!("removing {}: {e}", path.display())))?;
    // Best effort: a note that comes back after a crash is refused once the log has
    // moved on, and clears nothing twice.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(Some(removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Note {
        Note {
            durable: Position(43),
            durable_hash: [7; 32],
            failed_to: Position(45),
            failed_first_hash: [9; 32],
        }
    }

    #[test]
    fn only_a_full_disk_or_quota_is_told_to_free_space() {
        let full = std::io::Error::from_raw_os_error(28).to_string();
        let quota = std::io::Error::from_raw_os_error(122).to_string();
        let kind = std::io::ErrorKind::StorageFull.to_string();
        for reason in [full, quota, kind] {
            assert_eq!(first_step(&reason), "free disk space", "{reason}");
        }
        for errno in [5, 13, 30] {
            let reason = std::io::Error::from_raw_os_error(errno).to_string();
            assert!(first_step(&reason).starts_with("mend"), "{reason}");
        }
    }

    #[test]
    fn a_note_reads_back_and_fits_its_reserve() {
        let text = note().text();
        assert_eq!(Note::parse(&text), Some(note()));
        assert_eq!(text.len(), placeholder().text().len());
    }

    #[test]
    fn a_torn_or_blank_note_is_not_read() {
        let text = note().text();
        for end in 0..text.len() {
            assert_eq!(Note::parse(&text[..end]), None, "{:?}", &text[..end]);
        }
        assert_eq!(Note::parse(&" ".repeat(text.len())), None);
        let mixed = format!("{}{}", &text[..60], &" ".repeat(text.len() - 60));
        assert_eq!(Note::parse(&mixed), None);
    }

    #[test]
    fn a_note_is_written_over_its_reserve_and_without_one() {
        for reserved in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            if reserved {
                reserve(dir.path());
            }
            super::note(dir.path(), &note()).unwrap();
            let text = std::fs::read_to_string(dir.path().join(NOTE)).unwrap();
            assert_eq!(Note::parse(&text), Some(note()));
            assert!(!dir.path().join(RESERVE).exists());
        }
    }
}
