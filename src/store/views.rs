//! Projection documents in sled: reading them, writing them in the same batch as the
//! events, checkpoints, and rebuilding (on open when a projection's code version
//! changed or it lags the log, and on `chronicle replay`).

use super::disk::Disk;
use super::keys::{self, Checkpoint};
use super::sled_store::read_event;
use crate::model::{Position, RecordedEvent};
use crate::projection::runner::{FACTS, Runner};
use crate::projection::{DocIter, Docs, DocsRead, facts};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};

/// Events folded per batch while rebuilding: bounds the memory a rebuild uses.
const REBUILD_CHUNK: u64 = 2_000;

fn storage(e: sled::Error) -> Error {
    Error::Storage(e.to_string())
}

fn scan_db<'a>(
    db: &'a sled::Db,
    prefix: &[u8],
    start: Option<&[u8]>,
    reverse: bool,
) -> DocIter<'a> {
    let full_prefix = keys::doc(prefix);
    let strip = |item: sled::Result<(sled::IVec, sled::IVec)>| {
        let (k, v) = item.map_err(storage)?;
        Ok((k[1..].to_vec(), v.to_vec()))
    };
    match start {
        None => {
            let iter = db.scan_prefix(&full_prefix).map(strip);
            if reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            }
        }
        Some(start) => {
            let start = keys::doc(start);
            if reverse {
                Box::new(db.range(full_prefix..=start).rev().map(strip))
            } else {
                let p = full_prefix.clone();
                Box::new(
                    db.range(start..)
                        .take_while(move |i| i.as_ref().map_or(true, |(k, _)| k.starts_with(&p)))
                        .map(strip),
                )
            }
        }
    }
}

/// The documents as committed: what queries at the head read.
pub struct LiveDocs {
    pub(super) db: sled::Db,
}

impl DocsRead for LiveDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get(keys::doc(key))
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        scan_db(&self.db, prefix, start, reverse)
    }
}

/// Documents being changed by a commit: reads see the pending writes, which go to
/// sled in the commit's batch.
pub(super) struct Overlay<'a> {
    db: &'a sled::Db,
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    pub fn new(db: &'a sled::Db) -> Overlay<'a> {
        Overlay {
            db,
            pending: HashMap::new(),
        }
    }

    /// Adds the pending writes to a batch.
    pub fn into_batch(self, batch: &mut sled::Batch) {
        for (k, v) in self.pending {
            match v {
                Some(v) => batch.insert(keys::doc(&k), v),
                None => batch.remove(keys::doc(&k)),
            }
        }
    }
}

impl DocsRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self
                .db
                .get(keys::doc(key))
                .map_err(storage)?
                .map(|v| v.to_vec())),
        }
    }

    fn scan<'b>(&'b self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'b> {
        // Merge the committed documents with the pending writes.
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in scan_db(self.db, prefix, None, false) {
            match item {
                Ok((k, v)) => {
                    merged.insert(k, v);
                }
                Err(e) => return Box::new(std::iter::once(Err(e))),
            }
        }
        for (k, v) in &self.pending {
            if k.starts_with(prefix) {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
        }
        let in_range = |k: &Vec<u8>| match start {
            None => true,
            Some(s) if reverse => k.as_slice() <= s,
            Some(s) => k.as_slice() >= s,
        };
        let items: Vec<_> = merged
            .into_iter()
            .filter(|(k, _)| in_range(k))
            .map(Ok)
            .collect();
        if reverse {
            Box::new(items.into_iter().rev())
        } else {
            Box::new(items.into_iter())
        }
    }
}

impl Docs for Overlay<'_> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.pending.insert(key, None);
    }
}

/// Reads a projection's checkpoint.
pub fn checkpoint(db: &sled::Db, name: &str) -> Result<Option<Checkpoint>> {
    Ok(db
        .get(keys::checkpoint(name))
        .map_err(storage)?
        .and_then(|v| Checkpoint::decode(&v)))
}

/// Adds every projection's (and the facts layer's) checkpoint at `position` to a batch.
pub fn checkpoints_to(
    batch: &mut sled::Batch,
    runner: &Runner,
    selected: Option<&[usize]>,
    position: Position,
) {
    let mut put = |name: &str, version: u32| {
        batch.insert(
            keys::checkpoint(name),
            &Checkpoint { version, position }.encode()[..],
        );
    };
    put(FACTS, facts::VERSION);
    for (i, p) in runner.projections().iter().enumerate() {
        if selected.is_none_or(|s| s.contains(&i)) {
            put(p.name(), p.version());
        }
    }
}

/// Which projections need rebuilding when the store opens: those whose stored version
/// differs from the code's, or whose checkpoint is not the head. Every projection when
/// the facts layer itself is stale.
pub fn stale(db: &sled::Db, runner: &Runner, head: Position) -> Result<Vec<usize>> {
    let current = |name: &str, version: u32| -> Result<bool> {
        Ok(checkpoint(db, name)?.is_some_and(|c| c.version == version && c.position == head))
    };
    if !current(FACTS, facts::VERSION)? {
        return Ok((0..runner.projections().len()).collect());
    }
    let mut stale = Vec::new();
    for (i, p) in runner.projections().iter().enumerate() {
        if !current(p.name(), p.version())? {
            stale.push(i);
        }
    }
    Ok(stale)
}

fn clear_prefix(db: &sled::Db, prefix: &[u8]) -> Result<()> {
    let full = keys::doc(prefix);
    loop {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in db.scan_prefix(&full).keys().take(10_000) {
            batch.remove(item.map_err(storage)?);
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        db.apply_batch(batch).map_err(storage)?;
    }
}

/// Rebuilds the selected projections (and the facts layer they read) from the first
/// event to `head`, in chunks so that memory stays bounded by one chunk's documents.
/// Calls `progress(done, total)` as it goes. Must run where no append can interleave:
/// on open, or in the writer thread.
pub fn rebuild(
    db: &sled::Db,
    disk: &Disk,
    runner: &Runner,
    selected: &[usize],
    head: Position,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    clear_prefix(db, b"facts/")?;
    for &i in selected {
        let name = runner.projections()[i].name();
        clear_prefix(db, format!("{name}/").as_bytes())?;
    }
    let mut next = 1;
    progress(0, head.0);
    while next <= head.0 {
        let end = (next + REBUILD_CHUNK - 1).min(head.0);
        let mut overlay = Overlay::new(db);
        for position in next..=end {
            let event: RecordedEvent = read_event(db, Position(position))?.ok_or_else(|| {
                Error::Integrity(format!(
                    "position {position} is missing; run `chronicle verify`"
                ))
            })?;
            runner.apply(&event, &mut overlay, Some(selected))?;
        }
        let mut batch = sled::Batch::default();
        overlay.into_batch(&mut batch);
        db.apply_batch(batch).map_err(storage)?;
        progress(end, head.0);
        next = end + 1;
    }
    let mut batch = sled::Batch::default();
    checkpoints_to(&mut batch, runner, Some(selected), head);
    db.apply_batch(batch).map_err(storage)?;
    disk.flush(db)
}
