//! The views in sled: a tree of their own (`views.<n>`), written only by the projector,
//! holding the current documents, their history by epoch, and the checkpoint.
//!
//! A chunk of the log is folded in memory ([`Layered`]) and written as one batch with
//! the checkpoint (the last position folded) that describes it, so after a crash the
//! documents and the checkpoint agree. A rebuild, whose tree no one reads until it is
//! complete, instead writes each chunk while it folds the next ([`fold`], reading the
//! chunk in flight from [`InFlight`]).
//!
//! History, for `--as-of`, is kept by epoch (positions `(e-1)·EPOCH+1 ..= e·EPOCH`) as an
//! undo log: each current document carries the epoch since which it has existed, and
//! when a document that existed at the start of an epoch is changed or deleted in it,
//! its value from before is kept under (document, epoch). Most documents are written
//! once (a fact, a timeline entry), so they cost no history at all. The value of a
//! document at the end of epoch `m` is the first undo record after `m` if there is one,
//! else the current value; either only if it existed by then. As-of queries read that
//! at the last epoch boundary at or before the position asked for and fold the few
//! events after it ([`past`]), so their cost does not grow with the log.

use super::keys::{self, Checkpoint};
use super::storage;
use crate::model::{Position, RecordedEvent};
use crate::projection::runner::Runner;
use crate::projection::{DocIter, DocsRead, Layered};
use crate::{Error, Result};

/// Positions per epoch of history. An as-of query folds at most `EPOCH - 1` events on
/// top of the history; a document rewritten often keeps one version per epoch. (64
/// before: at 100k events, 32 made as-of queries 1.3-1.7x faster for 5% more keys.)
pub const EPOCH: u64 = 32;

/// What built a views tree: the code versions of the facts layer and each projection,
/// and the epoch of its history. Stored in the checkpoint; a tree built otherwise is
/// rebuilt.
pub fn built_by(runner: &Runner) -> String {
    format!("{},history={EPOCH}", runner.versions())
}

/// The epoch a position belongs to (position 0, the empty log, is epoch 0).
pub fn epoch_of(position: u64) -> u64 {
    position.div_ceil(EPOCH)
}

/// A stored document: the epoch since which it exists, and its bytes.
fn encode(created: u64, doc: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(doc.len() + 8);
    v.extend_from_slice(&created.to_be_bytes());
    v.extend_from_slice(doc);
    v
}

fn decode(stored: &[u8]) -> Result<(u64, &[u8])> {
    match (keys::u64_be(stored), stored.get(8..)) {
        (Some(created), Some(doc)) => Ok((created, doc)),
        _ => Err(Error::Integrity(
            "a view document is malformed; run `chronicle replay` to rebuild the views".into(),
        )),
    }
}

/// The current documents: what queries at the projector's checkpoint read.
#[derive(Clone)]
pub struct LiveDocs {
    pub(super) tree: sled::Tree,
}

impl LiveDocs {
    /// Current documents in key order from `start` (or the prefix's first), keys and
    /// stored values as they are in the tree, without the `D`.
    fn raw_scan<'a>(
        &'a self,
        prefix: &[u8],
        start: Option<&[u8]>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<(Vec<u8>, sled::IVec)>> + 'a> {
        let full_prefix = keys::doc(prefix);
        let strip = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = item.map_err(storage)?;
            Ok((k[1..].to_vec(), v))
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

    /// The epoch since which a current document exists.
    fn created(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.tree.get(keys::doc(key)).map_err(storage)? {
            Some(stored) => Ok(Some(decode(&stored)?.0)),
            None => Ok(None),
        }
    }
}

impl DocsRead for LiveDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.tree.get(keys::doc(key)).map_err(storage)? {
            Some(stored) => Ok(Some(decode(&stored)?.1.to_vec())),
            None => Ok(None),
        }
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        Box::new(self.raw_scan(prefix, start, reverse).map(|item| {
            let (k, stored) = item?;
            Ok((k, decode(&stored)?.1.to_vec()))
        }))
    }
}

/// The documents as they stood at the end of an epoch.
pub struct HistoryDocs {
    live: LiveDocs,
    epoch: u64,
}

impl HistoryDocs {
    /// The value of the document at `key` at the end of the epoch.
    fn at(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tree = &self.live.tree;
        let undo = tree
            .range(keys::history(key, self.epoch + 1)..=keys::history(key, u64::MAX))
            .next()
            .transpose()
            .map_err(storage)?;
        let stored = match undo {
            Some((_, stored)) => stored,
            None => match tree.get(keys::doc(key)).map_err(storage)? {
                Some(stored) => stored,
                None => return Ok(None),
            },
        };
        let (created, doc) = decode(&stored)?;
        Ok((created <= self.epoch).then(|| doc.to_vec()))
    }

    /// The keys of the documents with undo records, under `prefix`, in key order from
    /// `start`, each once.
    fn undone_keys<'a>(
        &'a self,
        prefix: &[u8],
        start: Option<&[u8]>,
        reverse: bool,
    ) -> impl Iterator<Item = Result<Vec<u8>>> + 'a {
        let tree = &self.live.tree;
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
        std::iter::from_fn(move || {
            let item = if reverse {
                match &upper {
                    Some(u) => tree.range(lower.clone()..u.clone()).next_back(),
                    None => tree.scan_prefix(&all).next_back(),
                }
            } else {
                tree.range(lower.clone()..).next()
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
            Some(Ok(doc))
        })
    }
}

impl DocsRead for HistoryDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.at(key)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        // The documents that exist now and those deleted since, merged in key order. A
        // current document without undo records is what it was at the epoch if it
        // existed then: its stored value says, without another read (an as-of timeline
        // passes over every later entry of its entity this way). The others are read as
        // they were at the epoch, and skipped when they did not exist.
        let mut current = self.live.raw_scan(prefix, start, reverse).peekable();
        let mut undone = self.undone_keys(prefix, start, reverse).peekable();
        Box::new(std::iter::from_fn(move || {
            loop {
                let next = match (current.peek(), undone.peek()) {
                    (None, None) => return None,
                    (Some(Err(_)), _) => {
                        return current.next().map(|r| r.map(|(k, _)| (k, vec![])));
                    }
                    (_, Some(Err(_))) => return undone.next().map(|r| r.map(|k| (k, vec![]))),
                    (Some(Ok(_)), None) => current.next().map(|r| r.map(|(k, v)| (k, Some(v))))?,
                    (None, Some(Ok(_))) => undone.next()?.map(|k| (k, None)),
                    (Some(Ok((c, _))), Some(Ok(u))) => {
                        let c_first = if reverse { c >= u } else { c <= u };
                        if c == u {
                            // Both: the undo records decide.
                            undone.next();
                            current.next()?.map(|(k, _)| (k, None))
                        } else if c_first {
                            current.next()?.map(|(k, v)| (k, Some(v)))
                        } else {
                            undone.next()?.map(|k| (k, None))
                        }
                    }
                };
                let (key, stored) = match next {
                    Ok(next) => next,
                    Err(e) => return Some(Err(e)),
                };
                let found = match stored {
                    Some(stored) => decode(&stored)
                        .map(|(created, doc)| (created <= self.epoch).then(|| doc.to_vec())),
                    None => self.at(&key),
                };
                match found {
                    Ok(Some(v)) => return Some(Ok((key, v))),
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
        live: LiveDocs { tree: tree.clone() },
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
/// tree, stopping early once it has written `max_keys` documents, and writes the
/// documents, their undo records and the new checkpoint as one batch, calling
/// `before_write` just before. Returns the new checkpoint position, or `None` when
/// there was no event.
pub fn fold_chunk(
    tree: &sled::Tree,
    runner: &Runner,
    events: impl Iterator<Item = Result<RecordedEvent>>,
    max_keys: usize,
    before_write: impl FnOnce(),
) -> Result<Option<Position>> {
    let nothing = InFlight::nothing(tree);
    let Some(folded) = fold(tree, runner, events, max_keys, &nothing)? else {
        return Ok(None);
    };
    before_write();
    tree.apply_batch(Folded::batch(folded.writes))
        .map_err(storage)?;
    Ok(Some(folded.position))
}

/// A chunk folded but not yet written: the batch to apply to the tree (the documents,
/// their undo records, the checkpoint), and the same writes as the fold of the next
/// chunk reads them while the batch is being applied.
pub struct Folded {
    pub position: Position,
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub in_flight: InFlight,
}

impl Folded {
    /// The writes as one sled batch, applied atomically.
    pub fn batch(writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch
    }
}

/// The writes of a batch not yet applied to the tree, read in its place: the
/// documents written (without their creation epochs), the epoch since which each
/// existing one exists (its fold's `created`, else `last_epoch`), and the undo records'
/// keys.
pub struct InFlight {
    docs: Layered<LiveDocs>,
    created: std::collections::HashMap<Vec<u8>, u64>,
    last_epoch: u64,
    history: std::collections::HashSet<Vec<u8>>,
}

impl InFlight {
    /// No batch in flight: reads go to the tree.
    pub fn nothing(tree: &sled::Tree) -> InFlight {
        InFlight {
            docs: Layered::new(LiveDocs { tree: tree.clone() }),
            created: Default::default(),
            last_epoch: 0,
            history: Default::default(),
        }
    }

    /// The epoch since which a current document exists (see [`LiveDocs::created`]).
    fn created(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.docs.pending().get(key) {
            Some(Some(_)) => Ok(Some(
                self.created.get(key).copied().unwrap_or(self.last_epoch),
            )),
            Some(None) => Ok(None),
            None => self.docs_base().created(key),
        }
    }

    fn has_history(&self, key: Vec<u8>) -> Result<bool> {
        if self.history.contains(&key) {
            return Ok(true);
        }
        self.docs_base().tree.contains_key(key).map_err(storage)
    }

    fn docs_base(&self) -> &LiveDocs {
        self.docs.base()
    }
}

impl DocsRead for InFlight {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.docs.get(key)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        // Nothing in flight (a catch-up's every chunk): the tree's scan, unmerged.
        match self.docs.pending().is_empty() {
            true => self.docs_base().scan(prefix, start, reverse),
            false => self.docs.scan(prefix, start, reverse),
        }
    }
}

/// Folds `events` as [`fold_chunk`] does, reading the tree as it will be once the batch
/// `in_flight` describes is applied, and returns the batch to write (after that one)
/// instead of writing it.
pub fn fold(
    tree: &sled::Tree,
    runner: &Runner,
    events: impl Iterator<Item = Result<RecordedEvent>>,
    max_keys: usize,
    in_flight: &InFlight,
) -> Result<Option<Folded>> {
    let mut docs = Layered::tracking(in_flight);
    // The epoch since which each document written in this chunk exists.
    let mut created: std::collections::HashMap<Vec<u8>, u64> = Default::default();
    let mut undo: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // The epoch the chunk starts in: an earlier chunk may have ended inside it.
    let mut first_epoch = None;
    // At the end of each epoch (and of the chunk): a document created in it records
    // when; one that existed at the epoch's start and changed keeps its value from then.
    let mut close_epoch = |docs: &mut Layered<&InFlight>, epoch: u64, first: bool| -> Result<()> {
        for (key, before) in docs.take_touched()? {
            let exists = matches!(docs.pending().get(&key), Some(Some(_)));
            let Some(before) = before else {
                if exists {
                    created.insert(key, epoch);
                }
                continue;
            };
            let since = match created.get(&key) {
                Some(&since) => since,
                None => in_flight.created(&key)?.unwrap_or(0),
            };
            // Created in this very epoch (by an earlier chunk), it did not exist at
            // the epoch's start; changed in it by an earlier chunk, the value from
            // the epoch's start is already kept.
            let kept = first && in_flight.has_history(keys::history(&key, epoch))?;
            if since != epoch && !kept {
                undo.push((keys::history(&key, epoch), encode(since, &before)));
            }
            if exists {
                created.insert(key, since);
            } else {
                created.remove(&key);
            }
        }
        Ok(())
    };
    let mut last = None;
    for event in events {
        let event = event?;
        let position = event.position.0;
        let first = *first_epoch.get_or_insert(epoch_of(position));
        runner.apply(&event, &mut docs)?;
        if position.is_multiple_of(EPOCH) {
            close_epoch(&mut docs, epoch_of(position), epoch_of(position) == first)?;
        }
        last = Some(position);
        if docs.pending().len() >= max_keys {
            break;
        }
    }
    let Some(last) = last else { return Ok(None) };
    close_epoch(
        &mut docs,
        epoch_of(last),
        Some(epoch_of(last)) == first_epoch,
    )?;
    let mut batch = Vec::new();
    let mut recording = Recording::start();
    let writes = docs.take_pending();
    for (key, value) in &writes {
        let stored_key = keys::doc(key);
        match value {
            Some(v) => {
                let epoch = created.get(key).copied().unwrap_or(epoch_of(last));
                let stored = encode(epoch, v);
                recording.write(&stored_key, Some(&stored));
                batch.push((stored_key, Some(stored)));
            }
            None => {
                recording.write(&stored_key, None);
                batch.push((stored_key, None));
            }
        }
    }
    let mut history = std::collections::HashSet::with_capacity(undo.len());
    for (key, value) in undo {
        recording.write(&key, Some(&value));
        history.insert(key.clone());
        batch.push((key, Some(value)));
    }
    let checkpoint = Checkpoint {
        position: Position(last),
        versions: built_by(runner),
    }
    .encode();
    recording.write(keys::CHECKPOINT, Some(&checkpoint));
    recording.end_batch()?;
    batch.push((keys::CHECKPOINT.to_vec(), Some(checkpoint)));
    Ok(Some(Folded {
        position: Position(last),
        writes: batch,
        in_flight: InFlight {
            docs: Layered::over(LiveDocs { tree: tree.clone() }, writes),
            created,
            last_epoch: epoch_of(last),
            history,
        },
    }))
}

/// Where the views' batches this process writes are recorded, when they are.
static RECORDER: std::sync::Mutex<Option<std::io::BufWriter<std::fs::File>>> =
    std::sync::Mutex::new(None);

/// Records every views batch this process writes from now on into `file` (or stops, and
/// flushes what was recorded, given `None`): for the benchmark's baseline of raw sled
/// applying exactly the writes a replay makes. Each write is a key and a value (a
/// removal has none), each length a little-endian `u32` before its bytes (`u32::MAX`
/// for no value); a batch is its number of writes, then its writes.
#[doc(hidden)]
pub fn record_writes(file: Option<std::fs::File>) -> Result<()> {
    let mut recorder = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut old) = recorder.take() {
        use std::io::Write;
        old.flush()
            .map_err(|e| Error::Storage(format!("recording the views' writes: {e}")))?;
    }
    *recorder = file.map(std::io::BufWriter::new);
    Ok(())
}

/// One batch's writes as they are recorded, when [`record_writes`] asked for it.
struct Recording {
    writes: Option<Vec<u8>>,
    count: u32,
}

impl Recording {
    fn start() -> Self {
        let on = RECORDER.lock().is_ok_and(|r| r.is_some());
        Recording {
            writes: on.then(Vec::new),
            count: 0,
        }
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(out) = &mut self.writes else { return };
        self.count += 1;
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }

    fn end_batch(self) -> Result<()> {
        use std::io::Write;
        let Some(writes) = self.writes else {
            return Ok(());
        };
        let mut recorder = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
        let Some(out) = recorder.as_mut() else {
            return Ok(());
        };
        out.write_all(&self.count.to_le_bytes())
            .and_then(|()| out.write_all(&writes))
            .map_err(|e| Error::Storage(format!("recording the views' writes: {e}")))
    }
}
