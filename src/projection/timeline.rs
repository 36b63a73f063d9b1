//! The timeline: every fact that has a date, in timeline order (earliest
//! instant, then latest, then position), with an index per entity.
//!
//! A retracted fact keeps its entries: the query skips it unless asked to show it.
//!
//! Documents: `timeline/e/<sort key>` → fact id; `timeline/x/<entity id>\0<sort key>`
//! → fact id. A correction removes exactly the entries the fact as it was got: its sort
//! key is that of `before`, and its entities are those the entity registry recorded in
//! it ([`super::Fact::counted_for`]). Entries point at the facts layer, so a correction shows
//! without copying the data twice. Summaries are written at query time from the
//! entities' current names. The per-entity entries also give an entity's first and last
//! dated fact (the registry keeps no index of its own).
//!
//! Each entity a fact involves ([`super::involved`]) has the fact on its timeline:
//! China's objection to a sale to Japan is on Japan's, an arrival on the traveler's.
//! When a trip's travelers or a sale's parties change, its facts (current and
//! retracted) move to the timelines of the entities they involve now
//! ([`super::Change::moved`]).
//!
//! While an entity has had at most [`FEW`] entries, `timeline/n/<entity id>` also lists
//! them (sort keys and fact ids, in timeline order), so that a timeline as of a position
//! where the entity had few facts reads them from one document instead of passing over
//! every later entry of its index. Past [`FEW`] the list says so and is never written
//! again; an entity with no list has never had an entry. The list and the index change
//! together, in [`put_entry`] and [`delete_entry`].

use super::{Change, Docs, DocsRead, Projection, involved, key, sort_key};
use crate::model::{EntityId, EventType};
use crate::{Error, Result};

pub struct Timeline;

/// The prefix of the entries in timeline order.
pub const ENTRIES: &str = "timeline/e/";

/// The prefix of one entity's entries in timeline order.
pub fn entity_prefix(entity: &EntityId) -> Vec<u8> {
    let mut k = key("timeline/x/", entity.as_str().as_bytes());
    k.push(0);
    k
}

/// How many entries an entity's list holds at most (see the module's doc).
pub const FEW: usize = 64;

/// The list of an entity that has had more than [`FEW`] entries.
const MANY: &[u8] = b"+";

/// One listed entry: its sort key and its fact's id.
const LISTED: usize = 24 + 16;

fn list_key(entity: &EntityId) -> Vec<u8> {
    key("timeline/n/", entity.as_str().as_bytes())
}

/// An entry of an entity's index: its key and its fact's id.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An entity's entries in timeline order, as a scan of [`entity_prefix`] returns them
/// (keys with the prefix, fact ids), read from its list while it has had few (none
/// when it has no list: no entry was ever written for it); `None` once it has had more
/// than [`FEW`]: then scan the index.
pub fn few_entries(
    docs: &(impl DocsRead + ?Sized),
    entity: &EntityId,
) -> Result<Option<Vec<Entry>>> {
    let list = docs.get(&list_key(entity))?.unwrap_or_default();
    if list == MANY {
        return Ok(None);
    }
    if !list.len().is_multiple_of(LISTED) {
        return Err(Error::Integrity(format!(
            "the timeline list of {entity} is malformed; run `chronicle replay`"
        )));
    }
    let prefix = entity_prefix(entity);
    Ok(Some(
        list.chunks_exact(LISTED)
            .map(|entry| {
                let mut k = prefix.clone();
                k.extend_from_slice(&entry[..24]);
                (k, entry[24..].to_vec())
            })
            .collect(),
    ))
}

/// Changes an entity's list: removes the entry with sort key `sk`, then adds
/// `(sk, id)` when given.
fn relist(docs: &mut dyn Docs, entity: &EntityId, sk: &[u8; 24], id: Option<&[u8]>) -> Result<()> {
    let k = list_key(entity);
    let list = docs.get(&k)?.unwrap_or_default();
    if list == MANY {
        return Ok(());
    }
    let added = id.map(|id| [&sk[..], id].concat());
    let mut entries: Vec<&[u8]> = list
        .chunks_exact(LISTED)
        .filter(|e| e[..24] != sk[..])
        .collect();
    if let Some(added) = &added {
        let at = entries.partition_point(|e| e[..24] < sk[..]);
        entries.insert(at, added);
    }
    let value = match entries.len() > FEW {
        true => MANY.to_vec(),
        false => entries.concat(),
    };
    docs.put(k, value);
    Ok(())
}

/// Writes a fact's id at `k`; a new fact's with `put_new`: its position is in the key.
fn put_id(docs: &mut dyn Docs, k: Vec<u8>, id: &[u8], new: bool) {
    match new {
        true => docs.put_new(k, id.to_vec()),
        false => docs.put(k, id.to_vec()),
    }
}

/// Writes an entity's entry and lists it.
fn put_entry(
    docs: &mut dyn Docs,
    entity: &EntityId,
    sk: &[u8; 24],
    id: &[u8],
    new: bool,
) -> Result<()> {
    let mut k = entity_prefix(entity);
    k.extend_from_slice(sk);
    put_id(docs, k, id, new);
    relist(docs, entity, sk, Some(id))
}

/// Deletes an entity's entry and takes it off the list.
fn delete_entry(docs: &mut dyn Docs, entity: &EntityId, sk: &[u8; 24]) -> Result<()> {
    let mut k = entity_prefix(entity);
    k.extend_from_slice(sk);
    docs.delete(k);
    relist(docs, entity, sk, None)
}

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn version(&self) -> u32 {
        // 2: `timeline/f/` keeps the entities, not every key written.
        // 3: a retracted fact keeps its entries (queries skip it unless asked).
        // 4: no `timeline/f/`; the registry's record of a fact's entities serves both.
        // 5: `timeline/n/`, the entries of an entity that has had few.
        // 6: no entry for an entity's event, even one a log took with a date.
        // 7: a change of a trip's traveler or a sale's parties moves its other facts.
        7
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        self.move_entries(&change, docs)?;
        if change.event.event_type == EventType::EventRetracted && change.after.is_none() {
            // A retracted fact stays where it was, for the timelines that show it with
            // its reason; nothing amends it after this (the facts layer ignores it).
            return Ok(());
        }
        // Registrations are not dated; a log written before that was refused may still
        // hold one with an `occurred`.
        let fact = change.after.or(change.before);
        if fact.is_some_and(|f| !f.event_type.is_timeline_entry()) {
            return Ok(());
        }
        if let Some(before) = change.before
            && let Some(occurred) = &before.occurred
        {
            let sk = sort_key(occurred, before.position);
            docs.delete(key(ENTRIES, &sk));
            for entity in &before.counted_for {
                delete_entry(docs, entity, &sk)?;
            }
        }
        if let Some(after) = change.after
            && let Some(occurred) = &after.occurred
        {
            let sk = sort_key(occurred, after.position);
            let id = after.id.as_bytes();
            let new = change.before.is_none();
            put_id(docs, key(ENTRIES, &sk), id, new);
            for entity in involved(after, docs)? {
                put_entry(docs, &entity, &sk, id, new)?;
            }
        }
        Ok(())
    }
}

impl Timeline {
    /// Moves the entries of the facts of a trip whose traveler, or a sale whose
    /// parties, the change changed ([`Change::moved`]).
    fn move_entries(&self, change: &Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        for (fact, now) in change.moved(docs)? {
            let Some(occurred) = fact
                .occurred
                .filter(|_| fact.event_type.is_timeline_entry())
            else {
                continue;
            };
            let sk = sort_key(&occurred, fact.position);
            for entity in fact.counted_for.iter().filter(|e| !now.contains(e)) {
                delete_entry(docs, entity, &sk)?;
            }
            for entity in now.iter().filter(|e| !fact.counted_for.contains(e)) {
                put_entry(docs, entity, &sk, fact.id.as_bytes(), false)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Position, Version, parse_event_value};
    use crate::projection::MemDocs;
    use crate::projection::runner::Runner;
    use serde_json::{Value, json};
    use uuid::Uuid;

    /// Applies `event` as the next position of the log and returns its id.
    fn apply(docs: &mut MemDocs, position: &mut u64, event: Value) -> Uuid {
        *position += 1;
        let id = Uuid::now_v7();
        let recorded = parse_event_value(event, Origin::New)
            .unwrap()
            .into_recorded(id, Position(*position), Version(1), chrono::Utc::now());
        Runner::default().apply(&recorded, docs).unwrap();
        id
    }

    fn scanned(docs: &MemDocs, entity: &EntityId) -> Vec<Entry> {
        let scan = docs.scan(&entity_prefix(entity), None, false);
        scan.map(|e| e.unwrap()).collect()
    }

    #[test]
    fn an_entity_lists_its_entries_until_it_has_had_more_than_a_few() {
        let (japan, korea) = (
            EntityId::parse("country:JP").unwrap(),
            EntityId::parse("country:KR").unwrap(),
        );
        let note = |n: usize, entities: Value| {
            json!({"stream": format!("note:n{n}"), "type": "note.reported",
                   "occurred": format!("2025-{:02}-{:02}", n % 12 + 1, n % 28 + 1),
                   "data": {"summary": "a report", "entities": entities}})
        };
        let (mut docs, mut position) = (MemDocs::default(), 0);
        let mut ids = Vec::new();
        for n in 0..FEW {
            ids.push(apply(
                &mut docs,
                &mut position,
                note(n, json!(["country:JP"])),
            ));
            assert_eq!(
                few_entries(&docs, &japan).unwrap(),
                Some(scanned(&docs, &japan))
            );
        }
        // Corrections and a retraction move entries between the two lists and the indexes.
        for (n, id) in ids.iter().enumerate().take(3) {
            apply(
                &mut docs,
                &mut position,
                json!({"stream": format!("note:n{n}"), "type": "event.corrected",
                "data": {"target": id, "reason": "it was Korea", "data": {"entities": ["country:KR"]}}}),
            );
        }
        apply(
            &mut docs,
            &mut position,
            json!({"stream": "note:n3", "type": "event.retracted",
            "data": {"target": ids[3], "reason": "not reported after all"}}),
        );
        apply(
            &mut docs,
            &mut position,
            json!({"stream": "note:n4", "type": "event.corrected",
            "data": {"target": ids[4], "reason": "a day later", "occurred": "2026-01-01"}}),
        );
        for entity in [&japan, &korea] {
            let listed = few_entries(&docs, entity).unwrap();
            assert_eq!(listed, Some(scanned(&docs, entity)), "{entity}");
        }
        assert_eq!(scanned(&docs, &korea).len(), 3);
        // Past `FEW` at once, the index alone answers, even once it has fewer again.
        for n in FEW..FEW + 4 {
            apply(
                &mut docs,
                &mut position,
                note(n, json!(["country:JP", "country:KR"])),
            );
        }
        assert_eq!(scanned(&docs, &japan).len(), FEW + 1);
        assert_eq!(few_entries(&docs, &japan).unwrap(), None);
        assert_eq!(
            few_entries(&docs, &korea).unwrap(),
            Some(scanned(&docs, &korea))
        );
        apply(
            &mut docs,
            &mut position,
            json!({"stream": "note:n5", "type": "event.corrected",
            "data": {"target": ids[5], "reason": "it was Korea", "data": {"entities": ["country:KR"]}}}),
        );
        assert_eq!(few_entries(&docs, &japan).unwrap(), None);
        assert_eq!(scanned(&docs, &japan).len(), FEW);
    }
}
