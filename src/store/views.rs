//! The views in sled: a tree of their own (`views.<n>`), written only by the projector,
//! holding the current documents, their history by epoch, and the checkpoint.
//!
//! A chunk of the log is folded in memory ([`Layered`]) and written as one batch with
//! the checkpoint (the last position folded) that describes it, so after a crash the
//! documents and the checkpoint agree. The history keeps, for every document written in
//! an epoch (the positions `(e-1)·EPOCH+1 ..= e·EPOCH`), its value at the end of that
//! epoch. As-of queries read the history at the last epoch boundary at or before the
//! position asked for and fold the few events after it ([`past`]), so their cost does
//! not grow with the log.

use super::keys::{self, Checkpoint};
use crate::model::{Position, RecordedEvent};
use crate::projection::runner::Runner;
use crate::projection::{DocIter, DocsRead, Layered};
use crate::{Error, Result};

/// Positions per epoch of history. An as-of query folds at most `EPOCH - 1` events on
/// top of the history; a document rewritten often keeps one version per epoch.
pub const EPOCH: u64 = 64;

/// The epoch a position belongs to (position 0, the empty log, is epoch 0).
pub fn epoch_of(position: u64) -> u64 {
    position.div_ceil(EPOCH)
}

fn storage(e: sled::Error) -> Error {
    Error::Storage(e.to_string())
}

/// The current documents: what queries at the projector's checkpoint read.
#[derive(Clone)]
pub struct LiveDocs {
    pub(super) tree: sled::Tree,
}

impl DocsRead for LiveDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(keys::doc(key))
            .map_err(storage)?
            .map(|v| v.to_vec()))
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        let full_prefix = keys::doc(prefix);
        let strip = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(storage)?;
            Ok((k[1..].to_vec(), v.to_vec()))
        };
        let Some(start) = start else {
            let iter = self.tree.scan_prefix(&full_prefix).map(strip);
            return if reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            };
        };
        let start = keys::doc(start);
        if reverse {
            Box::new(self.tree.range(full_prefix..=start).rev().map(strip))
        } else {
            Box::new(
                self.tree
                    .range(start..)
                    .take_while(move |i| {
                        i.as_ref()
                            .map_or(true, |(k, _)| k.starts_with(&full_prefix))
                    })
                    .map(strip),
            )
        }
    }
}

/// The documents as they stood at the end of an epoch, read from the history.
pub struct HistoryDocs {
    tree: sled::Tree,
    epoch: u64,
}

fn decode_version(bytes: &[u8]) -> Option<Vec<u8>> {
    match bytes.split_first() {
        Some((1, value)) => Some(value.to_vec()),
        _ => None,
    }
}

impl HistoryDocs {
    /// The value of the document at `key` at the end of the epoch.
    fn at(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let last = self
            .tree
            .range(keys::history(key, 0)..=keys::history(key, self.epoch))
            .next_back()
            .transpose()
            .map_err(storage)?;
        Ok(last.and_then(|(_, v)| decode_version(&v)))
    }
}

impl DocsRead for HistoryDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.at(key)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        // Step from document to document, reading each one's version at the epoch; a
        // document with no version yet, or deleted by then, is skipped.
        let all = keys::history_prefix(prefix);
        let mut lower = match (start, reverse) {
            (Some(s), false) => keys::history_of(s),
            _ => all.clone(),
        };
        let mut upper: Option<Vec<u8>> = match (start, reverse) {
            (Some(s), true) => {
                let mut k = keys::history_of(s);
                k.extend_from_slice(&[0xff; 9]);
                Some(k)
            }
            _ => None,
        };
        Box::new(std::iter::from_fn(move || {
            loop {
                let item = if reverse {
                    match &upper {
                        Some(u) => self.tree.range(lower.clone()..u.clone()).next_back(),
                        None => self.tree.scan_prefix(&all).next_back(),
                    }
                } else {
                    self.tree.range(lower.clone()..).next()
                };
                let (k, _) = match item? {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(storage(e))),
                };
                if !k.starts_with(&all) {
                    return None;
                }
                let Some((doc, len)) = keys::parse_history(&k) else {
                    return Some(Err(Error::Integrity(
                        "a view history key is malformed; run `chronicle replay`".into(),
                    )));
                };
                if reverse {
                    // Everything before this document's history.
                    upper = Some(k[..len - 2].to_vec());
                } else {
                    // Everything after this document's history.
                    let mut next = k[..len].to_vec();
                    *next.last_mut().expect("ends with the end mark") = 1;
                    lower = next;
                }
                match self.at(&doc) {
                    Ok(Some(v)) => return Some(Ok((doc, v))),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
        }))
    }
}

/// The documents as they stood after `position`: the history at the epoch boundary at
/// or before it, with the events after that boundary folded on top. `events(from)`
/// must return the events `from ..= position`, in order.
pub fn past(
    tree: &sled::Tree,
    runner: &Runner,
    position: Position,
    events: impl FnOnce(Position) -> Result<Vec<RecordedEvent>>,
) -> Result<Layered<HistoryDocs>> {
    let epoch = position.0 / EPOCH;
    let history = HistoryDocs {
        tree: tree.clone(),
        epoch,
    };
    let mut docs = Layered::new(history);
    for event in events(Position(epoch * EPOCH + 1))? {
        runner.apply(&event, &mut docs)?;
    }
    Ok(docs)
}

/// Reads the checkpoint of a views tree.
pub fn checkpoint(tree: &sled::Tree) -> Result<Option<Checkpoint>> {
    Ok(tree
        .get(keys::CHECKPOINT)
        .map_err(storage)?
        .and_then(|v| Checkpoint::decode(&v)))
}

/// Folds `events` (the positions right after the tree's checkpoint, in order) into the
/// tree and writes the documents, their history and the new checkpoint as one batch.
/// Returns the new checkpoint position, or `None` when there was no event.
pub fn fold_chunk(
    tree: &sled::Tree,
    runner: &Runner,
    events: impl Iterator<Item = Result<RecordedEvent>>,
) -> Result<Option<Position>> {
    let mut docs = Layered::new(LiveDocs { tree: tree.clone() });
    let mut history: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut last = None;
    // The value at the end of the epoch of every document written since the last call.
    let mut record = |docs: &mut Layered<LiveDocs>, position: u64| {
        let epoch = epoch_of(position);
        for key in docs.take_touched() {
            let value = docs.pending().get(&key).cloned().flatten();
            history.push((keys::history(&key, epoch), value));
        }
    };
    for event in events {
        let event = event?;
        let position = event.position.0;
        runner.apply(&event, &mut docs)?;
        if position.is_multiple_of(EPOCH) {
            record(&mut docs, position);
        }
        last = Some(position);
    }
    let Some(last) = last else { return Ok(None) };
    record(&mut docs, last);
    let mut batch = sled::Batch::default();
    for (key, value) in docs.take_pending() {
        match value {
            Some(v) => batch.insert(keys::doc(&key), v),
            None => batch.remove(keys::doc(&key)),
        }
    }
    for (key, value) in history {
        let mut v = Vec::with_capacity(value.as_ref().map_or(1, |v| v.len() + 1));
        match value {
            Some(value) => {
                v.push(1);
                v.extend_from_slice(&value);
            }
            None => v.push(0),
        }
        batch.insert(key, v);
    }
    let checkpoint = Checkpoint {
        position: Position(last),
        versions: runner.versions(),
    };
    batch.insert(keys::CHECKPOINT, checkpoint.encode());
    tree.apply_batch(batch).map_err(storage)?;
    Ok(Some(Position(last)))
}
