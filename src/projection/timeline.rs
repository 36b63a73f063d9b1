//! The timeline: every fact that has a date, in timeline order (earliest
//! instant, then latest, then position), with an index per entity.
//!
//! A retracted fact keeps its entries: the query skips it unless asked to show it.
//!
//! Documents: `timeline/e/<sort key>` → fact id; `timeline/x/<entity id>\0<sort key>`
//! → fact id. A correction removes exactly the entries the fact as it was got: its sort
//! key is that of `before`, and its entities are those the entity registry recorded for
//! it ([`entities::counted_for`], which this projection reads before the registry, next
//! in the runner, replaces it). Entries point at the facts layer, so a correction shows
//! without copying the data twice. Summaries are written at query time from the
//! entities' current names. The per-entity entries also give an entity's first and last
//! dated fact (the registry keeps no index of its own).
//!
//! Each entity a fact involves ([`super::involved`]) has the fact on its timeline:
//! China's objection to a sale to Japan is on Japan's, an arrival on the traveler's.

use super::{Change, Docs, Projection, entities, involved, key, sort_key};
use crate::Result;
use crate::model::{EntityId, EventType};

pub struct Timeline;

/// The prefix of the entries in timeline order.
pub const ENTRIES: &str = "timeline/e/";

/// The prefix of one entity's entries in timeline order.
pub fn entity_prefix(entity: &EntityId) -> Vec<u8> {
    let mut k = key("timeline/x/", entity.as_str().as_bytes());
    k.push(0);
    k
}

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn version(&self) -> u32 {
        // 2: `timeline/f/` keeps the entities, not every key written.
        // 3: a retracted fact keeps its entries (queries skip it unless asked).
        // 4: no `timeline/f/`; the registry's record of a fact's entities serves both.
        4
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        if change.event.event_type == EventType::EventRetracted && change.after.is_none() {
            // A retracted fact stays where it was, for the timelines that show it with
            // its reason; nothing amends it after this (the facts layer ignores it).
            return Ok(());
        }
        if let Some(before) = change.before
            && let Some(occurred) = &before.occurred
        {
            let sk = sort_key(occurred, before.position);
            docs.delete(key(ENTRIES, &sk));
            for entity in entities::counted_for(docs, before)? {
                let mut k = entity_prefix(&entity);
                k.extend_from_slice(&sk);
                docs.delete(k);
            }
        }
        if let Some(after) = change.after
            && let Some(occurred) = &after.occurred
        {
            let sk = sort_key(occurred, after.position);
            let id = after.id.as_bytes().to_vec();
            // A new fact's entries are new keys: its position is in each of them.
            let new = change.before.is_none();
            let put = |docs: &mut dyn Docs, k: Vec<u8>| match new {
                true => docs.put_new(k, id.clone()),
                false => docs.put(k, id.clone()),
            };
            put(docs, key(ENTRIES, &sk));
            for entity in involved(after, docs)? {
                let mut k = entity_prefix(&entity);
                k.extend_from_slice(&sk);
                put(docs, k);
            }
        }
        Ok(())
    }
}
