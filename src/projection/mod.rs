//! Projections: pure folds of the log into views, kept as keyed documents.
//!
//! A projection never sees the log directly. The [`runner`] first folds each event
//! into the current version of the fact it is about (the [`facts`] layer: an
//! `event.corrected` replaces a fact's data, an `event.retracted` removes it,
//! `evidence.added` adds a source) and hands every projection the fact as it was
//! before and after the event ([`Change`]). The projection updates its documents
//! through [`Docs`]; the store's projector backs them with sled, folding chunks of the
//! log in memory ([`Layered`]) and writing each chunk as one batch.
//!
//! Guarantees: folds are deterministic and do no IO of their own, so a projection
//! rebuilt by replay is byte-for-byte the one built incrementally. Each projection
//! carries a [`Projection::version`]; a store whose views were built by other versions
//! rebuilds them all. Projections never write to the log.

pub mod counts;
pub mod entities;
pub mod facts;
pub mod known;
pub mod runner;
pub mod sales;
pub mod timeline;
pub mod trips;

pub use facts::Fact;

use crate::model::types::EventData;
use crate::model::{EntityId, EventType, Extent, Position, RecordedEvent, StreamId};
use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use uuid::Uuid;

/// What one event did to one fact: the fact before and after it. A new fact has no
/// `before`; a retracted one has no `after`.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The event being applied (the fact's own event, or an amendment of it).
    pub event: &'a RecordedEvent,
    pub before: Option<&'a Fact>,
    pub after: Option<&'a Fact>,
    /// The other facts the change moves ([`Change::moved`]), found once for every
    /// projection.
    pub moves: &'a OnceCell<Vec<(Fact, Vec<EntityId>)>>,
}

impl<'a> Change<'a> {
    /// The facts this change moves to other entities ([`moved`]), found by the first
    /// projection that asks. The trips and the sales must have applied the change (they
    /// are first), and the registry, which records the moved facts' new entities, asks
    /// before it does: so every projection gets what each would have found alone.
    pub fn moved(&self, docs: &dyn DocsRead) -> Result<&'a [(Fact, Vec<EntityId>)]> {
        if let Some(found) = self.moves.get() {
            return Ok(found);
        }
        let found = moved(self, docs)?;
        Ok(self.moves.get_or_init(|| found))
    }
}

/// A projection: a named, versioned fold of fact changes into documents.
pub trait Projection: Send + Sync {
    /// The name users pass to `replay --projection`; also the prefix of its keys (the
    /// entity registry also completes the facts layer's documents: `Fact::counted_for`).
    fn name(&self) -> &'static str;

    /// Bump when a change to the code changes the state it builds.
    fn version(&self) -> u32;

    /// Folds one change into the documents.
    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()>;
}

/// Every projection, in the order they are applied.
pub fn all() -> Vec<Box<dyn Projection>> {
    // Trips and sales come first: the others read their documents (see `involved`).
    vec![
        Box::new(trips::Trips),
        Box::new(sales::Sales),
        Box::new(timeline::Timeline),
        Box::new(entities::Entities),
        Box::new(counts::Counts),
    ]
}

/// Documents from a scan: (key, value) pairs in key order.
pub type DocIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// Key-value documents as a projection reads them.
pub trait DocsRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Entries whose key starts with `prefix`, in key order (reversed when `reverse`),
    /// starting at `start` (inclusive) when given.
    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a>;
}

impl<T: DocsRead + ?Sized> DocsRead for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        (**self).scan(prefix, start, reverse)
    }
}

/// Key-value documents as a projection writes them.
pub trait Docs: DocsRead {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, key: Vec<u8>);

    /// Writes a key that cannot exist yet, because it names a new fact's own id or
    /// position: a layer that keeps history then need not read its value before.
    fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.put(key, value);
    }
}

/// Documents in memory: the views of a `--known-at` query, `verify`'s fresh fold, and
/// tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemDocs {
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn upper_bound(prefix: &[u8]) -> Bound<Vec<u8>> {
    // The first key after every key with this prefix.
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

impl DocsRead for MemDocs {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
        let end = upper_bound(prefix);
        let iter = match (start, reverse) {
            (Some(s), false) => self.map.range((Bound::Included(s.to_vec()), end)),
            (Some(s), true) => self.map.range((
                Bound::Included(prefix.to_vec()),
                Bound::Included(s.to_vec()),
            )),
            (None, _) => self.map.range((Bound::Included(prefix.to_vec()), end)),
        };
        let items = iter.map(|(k, v)| Ok((k.clone(), v.clone())));
        if reverse {
            Box::new(items.rev())
        } else {
            Box::new(items)
        }
    }
}

impl Docs for MemDocs {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(key, value);
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.map.remove(&key);
    }
}

/// Writes over a base that is only read: reads see the pending writes first. The
/// projector folds a chunk of the log into one of these before writing it as one
/// batch, and as-of queries fold the last few events over stored history with one.
pub struct Layered<B> {
    base: B,
    /// Every key written, with its value after the last write (`None`: deleted).
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// When tracking: each key written since [`Layered::take_touched`] was last called,
    /// with its value before the first of those writes.
    touched: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// The first error met while reading a value before a tracked write.
    error: Option<Error>,
    /// When tracking: the base's values read so far, so that the value before a
    /// write, usually just read by the fold, is not read twice.
    read: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<B: DocsRead> Layered<B> {
    pub fn new(base: B) -> Layered<B> {
        Layered {
            base,
            pending: BTreeMap::new(),
            touched: None,
            error: None,
            read: Default::default(),
        }
    }

    /// A layer with `writes` already pending over `base` (a batch written but not yet
    /// applied to `base`, as the fold of the chunk after it reads it).
    pub fn over(base: B, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Layered<B> {
        Layered {
            pending: writes,
            ..Layered::new(base)
        }
    }

    /// A layer that also remembers, for each key it writes, the value it had before
    /// (see [`Layered::take_touched`]): what the views' history keeps.
    pub fn tracking(base: B) -> Layered<B> {
        Layered {
            touched: Some(BTreeMap::new()),
            ..Layered::new(base)
        }
    }

    /// The keys written since the last call, in key order, each with the value it had
    /// before the first of those writes. Fails with the error met while reading one.
    pub fn take_touched(&mut self) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        Ok(self
            .touched
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default())
    }

    /// What this layer is over.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The writes so far, in key order.
    pub fn pending(&self) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.pending
    }

    /// Takes the writes so far, leaving none pending (and forgetting the base's
    /// values read, which the caller is about to change).
    pub fn take_pending(&mut self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.read.get_mut().clear();
        std::mem::take(&mut self.pending)
    }

    /// Remembers the value `key` has before a write, the first time it is written since
    /// the last [`Layered::take_touched`].
    fn touch(&mut self, key: &[u8]) {
        let first = self.touched.as_ref().is_some_and(|t| !t.contains_key(key));
        if !first {
            return;
        }
        let before = match self.get(key) {
            Ok(v) => v,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        };
        if let Some(touched) = self.touched.as_mut() {
            touched.insert(key.to_vec(), before);
        }
    }
}

impl<B: DocsRead> DocsRead for Layered<B> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(key) {
            return Ok(v.clone());
        }
        if self.touched.is_none() {
            return self.base.get(key);
        }
        if let Some(v) = self.read.borrow().get(key) {
            return Ok(v.clone());
        }
        let v = self.base.get(key)?;
        self.read.borrow_mut().insert(key.to_vec(), v.clone());
        Ok(v)
    }

    fn scan<'b>(&'b self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'b> {
        // The pending writes in range, in the scan's order, merged lazily with the base's
        // entries: a pending write replaces (or, as `None`, hides) the base's entry.
        let lower = Bound::Included(prefix.to_vec());
        let upper = upper_bound(prefix);
        let range = match (start, reverse) {
            (None, _) => (lower, upper),
            (Some(s), false) => (Bound::Included(s.to_vec()), upper),
            (Some(s), true) => (lower, Bound::Included(s.to_vec())),
        };
        let pending: PendingIter<'b> = if reverse {
            Box::new(self.pending.range(range).rev())
        } else {
            Box::new(self.pending.range(range))
        };
        Box::new(Merge {
            base: self.base.scan(prefix, start, reverse).peekable(),
            pending: pending.peekable(),
            reverse,
        })
    }
}

/// Pending writes in a scan's order.
type PendingIter<'b> = Box<dyn Iterator<Item = (&'b Vec<u8>, &'b Option<Vec<u8>>)> + 'b>;

/// Two sorted streams of entries as one; on equal keys the pending one wins.
struct Merge<'b> {
    base: std::iter::Peekable<DocIter<'b>>,
    pending: std::iter::Peekable<PendingIter<'b>>,
    reverse: bool,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let base_key = match self.base.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => return self.base.next(),
                None => None,
            };
            let pending_first = match (&base_key, self.pending.peek()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(b), Some((p, _))) => {
                    if self.reverse {
                        p.as_slice() >= b.as_slice()
                    } else {
                        p.as_slice() <= b.as_slice()
                    }
                }
            };
            if !pending_first {
                return self.base.next();
            }
            let (k, v) = self.pending.next().expect("peeked");
            if base_key.as_deref() == Some(k.as_slice()) {
                self.base.next();
            }
            if let Some(v) = v {
                return Some(Ok((k.clone(), v.clone())));
            }
        }
    }
}

impl<B: DocsRead> Docs for Layered<B> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.touch(&key);
        self.pending.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.touch(&key);
        self.pending.insert(key, None);
    }

    fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) {
        debug_assert!(
            matches!(self.get(&key), Ok(None)),
            "put_new of a key that exists: {key:?}"
        );
        if let Some(touched) = self.touched.as_mut() {
            touched.entry(key.clone()).or_insert(None);
        }
        self.pending.insert(key, Some(value));
    }
}

/// Reads a JSON document.
pub fn get_json<T: DeserializeOwned>(
    docs: &(impl DocsRead + ?Sized),
    key: &[u8],
) -> Result<Option<T>> {
    match docs.get(key)? {
        None => Ok(None),
        Some(bytes) => decode(key, &bytes).map(Some),
    }
}

/// Decodes a JSON document read from `key`.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Integrity(format!(
            "the view document {} cannot be read ({e}); run `chronicle replay` to rebuild the views",
            String::from_utf8_lossy(key)
        ))
    })
}

/// Writes a JSON document.
pub fn put_json(docs: &mut (impl Docs + ?Sized), key: Vec<u8>, value: &impl Serialize) {
    docs.put(key, encode(value));
}

/// Writes a JSON document under a key that cannot exist yet ([`Docs::put_new`]).
pub fn put_new_json(docs: &mut (impl Docs + ?Sized), key: Vec<u8>, value: &impl Serialize) {
    docs.put_new(key, encode(value));
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("a view document always serializes")
}

/// A key that sorts facts in timeline order: by the extent's earliest instant, then its
/// latest, then position.
pub fn sort_key(occurred: &Extent, position: Position) -> [u8; 24] {
    // Flipping the sign bit makes signed microseconds sort as unsigned bytes.
    let flip = |micros: i64| micros.cast_unsigned() ^ (1 << 63);
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&flip(occurred.earliest().timestamp_micros()).to_be_bytes());
    key[8..16].copy_from_slice(&flip(occurred.latest().timestamp_micros()).to_be_bytes());
    key[16..].copy_from_slice(&position.0.to_be_bytes());
    key
}

/// The entities a fact involves: those its data names and whose stream it is in
/// ([`Fact::entities`]); for a fact of a trip (not a statement filed in its stream),
/// every traveler of the trip's announcements; for a statement, the travelers of the
/// trips and the parties of the sales it is about. Reads the trips and sales documents,
/// so those projections are applied before the ones that call it.
pub fn involved(fact: &Fact, docs: &dyn DocsRead) -> Result<Vec<EntityId>> {
    involved_with(fact, docs, &mut HashMap::new())
}

/// [`involved`], with the parties of the trips and sales already read.
fn involved_with(
    fact: &Fact,
    docs: &dyn DocsRead,
    read: &mut HashMap<StreamId, Vec<EntityId>>,
) -> Result<Vec<EntityId>> {
    let typed = fact.typed();
    let mut found = fact.entities_in(typed.as_ref());
    let related = match typed {
        Some(EventData::StatementIssued(s)) => s.about,
        Some(_) if fact.stream.category() == "trip" => vec![fact.stream.clone()],
        _ => Vec::new(),
    };
    for stream in related {
        if !read.contains_key(&stream) {
            let parties = parties(&stream, docs)?.into_iter().map(|(_, p)| p);
            read.insert(stream.clone(), parties.collect());
        }
        for p in &read[&stream] {
            if !found.contains(p) {
                found.push(p.clone());
            }
        }
    }
    Ok(found)
}

/// The parties of a trip (the traveler of each current announcement) or a sale (the
/// seller and the buyer of each), each with the announcement that names it; none for
/// a stream of another category.
fn parties(stream: &StreamId, docs: &dyn DocsRead) -> Result<Vec<(Uuid, EntityId)>> {
    let mut found = Vec::new();
    match stream.category() {
        "trip" => {
            let travelers = trips::travelers(docs, stream)?.unwrap_or_default();
            found.extend(travelers.into_iter().map(|(_, id, t)| (id, t)));
        }
        "arms-sale" => {
            let parties = sales::get(docs, stream)?.map(|d| d.parties);
            for (_, id, seller, buyer) in parties.unwrap_or_default() {
                found.extend([(id, seller), (id, buyer)]);
            }
        }
        _ => {}
    }
    Ok(found)
}

/// The trip or sale whose parties ([`parties`]) a change changed, with the entries
/// that list its current and its retracted facts: when an announcement of it came,
/// went or changed, and the trip's travelers or the sale's parties are not the ones
/// they were. Its other facts and the statements about it involve those parties
/// ([`involved`]), so the timeline and the registry move them ([`moved`]).
fn reparented(
    change: &Change<'_>,
    docs: &dyn DocsRead,
) -> Result<Option<([FactEntries; 2], StreamId)>> {
    fn named(fact: &Fact) -> Option<Vec<EntityId>> {
        // Checked by type first: a change of any other fact moves nothing.
        match (fact.event_type, fact.stream.category()) {
            (EventType::TripAnnounced, "trip") | (EventType::ArmsSaleAnnounced, "arms-sale") => {}
            _ => return None,
        }
        match fact.typed()? {
            EventData::TripAnnounced(a) => Some(vec![a.traveler]),
            EventData::ArmsSaleAnnounced(s) => Some(vec![s.seller, s.buyer]),
            _ => None,
        }
    }
    let (before, after) = (change.before.and_then(named), change.after.and_then(named));
    let Some(fact) = change.after.or(change.before).filter(|_| before != after) else {
        return Ok(None);
    };
    // The parties now, and before the change: the same but for this announcement's.
    let now = parties(&fact.stream, docs)?;
    let mut then: Vec<&EntityId> = now
        .iter()
        .filter(|(id, _)| *id != fact.id)
        .map(|(_, p)| p)
        .collect();
    then.extend(before.iter().flatten());
    let same = now.iter().all(|(_, p)| then.contains(&p))
        && then.iter().all(|p| now.iter().any(|(_, q)| q == *p));
    if same {
        return Ok(None);
    }
    let lists = match fact.stream.category() {
        "trip" => [trips::FACTS, trips::RETRACTED],
        _ => [sales::FACTS, sales::RETRACTED],
    };
    Ok(Some((lists, fact.stream.clone())))
}

/// The facts of a trip or sale whose parties changed ([`reparented`]), current and
/// retracted, other than the changed fact itself, that involve other entities now than
/// those they were counted for ([`Fact::counted_for`]), or the same in another order:
/// each with the entities it involves now. The timeline moves their entries, then the
/// registry their counts (a retracted fact's count was taken back) and records the new
/// entities in the fact, so that the same facts give the same timelines and counts in
/// any filing order, and an entry is on the timelines of the entities its line names.
fn moved(change: &Change<'_>, docs: &dyn DocsRead) -> Result<Vec<(Fact, Vec<EntityId>)>> {
    let Some((lists, stream)) = reparented(change, docs)? else {
        return Ok(Vec::new());
    };
    let own = change.after.or(change.before).map(|f| f.id);
    let (mut found, mut read) = (Vec::new(), HashMap::new());
    for entries in lists {
        for (_, id) in entries.list(docs, &stream)? {
            if Some(id) == own {
                continue;
            }
            let Some(fact) = facts::get(docs, &id)? else {
                continue;
            };
            let now = involved_with(&fact, docs, &mut read)?;
            if now != fact.counted_for {
                found.push((fact, now));
            }
        }
    }
    Ok(found)
}

/// A list of a trip's or a sale's facts (its current ones, or its retracted ones, by
/// the prefix), one entry each: `<prefix><stream>\0<position>` → the fact's id. An entry
/// is written once and deleted when the fact leaves the list, so a list of many facts
/// costs each new one a key, not a rewrite of a list of them all.
#[derive(Debug, Clone, Copy)]
pub struct FactEntries(pub &'static str);

impl FactEntries {
    fn prefix(&self, stream: &StreamId) -> Vec<u8> {
        let mut k = key(self.0, stream.as_str().as_bytes());
        k.push(0);
        k
    }

    fn key(&self, stream: &StreamId, position: Position) -> Vec<u8> {
        let mut k = self.prefix(stream);
        k.extend_from_slice(&position.0.to_be_bytes());
        k
    }

    /// The stream's facts, in position order.
    pub fn list(
        &self,
        docs: &(impl DocsRead + ?Sized),
        stream: &StreamId,
    ) -> Result<Vec<(Position, Uuid)>> {
        docs.scan(&self.prefix(stream), None, false)
            .map(|item| {
                let (k, v) = item?;
                let position = k
                    .len()
                    .checked_sub(8)
                    .and_then(|at| k[at..].try_into().ok())
                    .map(u64::from_be_bytes);
                match (position, Uuid::from_slice(&v)) {
                    (Some(p), Ok(id)) => Ok((Position(p), id)),
                    _ => Err(Error::Integrity(format!(
                        "a fact entry of {stream} is malformed; run `chronicle replay`"
                    ))),
                }
            })
            .collect()
    }

    /// Whether the stream has any current fact.
    pub fn any(&self, docs: &(impl DocsRead + ?Sized), stream: &StreamId) -> Result<bool> {
        let first = docs.scan(&self.prefix(stream), None, false).next();
        Ok(first.transpose()?.is_some())
    }

    /// Adds a fact; a new one (`new`) without reading: its position is in the key.
    pub fn add(&self, docs: &mut dyn Docs, stream: &StreamId, fact: &Fact, new: bool) {
        let (k, id) = (self.key(stream, fact.position), fact.id.as_bytes().to_vec());
        match new {
            true => docs.put_new(k, id),
            false => docs.put(k, id),
        }
    }

    /// Takes a fact away.
    pub fn remove(&self, docs: &mut dyn Docs, stream: &StreamId, fact: &Fact) {
        docs.delete(self.key(stream, fact.position));
    }
}

/// `prefix` followed by `rest`.
pub fn key(prefix: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + rest.len());
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(rest);
    k
}
