//! The timeline: every fact that has a date, in timeline order (earliest
//! instant, then latest, then position), with an index per entity.
//!
//! A retracted fact keeps its entries: the query skips it unless asked to show it.
//!
//! Documents: `timeline/e/<sort key>` → fact id; `timeline/x/<entity id>\0<sort key>`
//! → fact id; `timeline/f/<fact id>` → the entities whose timelines got the fact, so
//! that a correction or retraction removes exactly those entries (the sort key is that
//! of the fact as it was, which the change carries as `before`). Entries point at the
//! facts layer, so a correction shows without copying the data twice. Summaries are
//! written at query time from the entities' current names.
//!
//! Each entity a fact involves ([`super::involved`]) has the fact on its timeline:
//! China's objection to a sale to Japan is on Japan's, an arrival on the traveler's.

use super::{Change, Docs, Fact, Projection, get_json, involved, key, put_json, sort_key};
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

fn written_key(fact: &Fact) -> Vec<u8> {
    key("timeline/f/", fact.id.as_bytes())
}

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn version(&self) -> u32 {
        // 2: `timeline/f/` keeps the entities, not every key written.
        // 3: a retracted fact keeps its entries (queries skip it unless asked).
        3
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        if change.event.event_type == EventType::EventRetracted && change.after.is_none() {
            // A retracted fact stays where it was, for the timelines that show it with
            // its reason; nothing amends it after this (the facts layer ignores it).
            return Ok(());
        }
        if let Some(before) = change.before {
            let written: Option<Vec<EntityId>> = get_json(docs, &written_key(before))?;
            if let (Some(entities), Some(occurred)) = (written, &before.occurred) {
                let sk = sort_key(occurred, before.position);
                docs.delete(key(ENTRIES, &sk));
                for entity in entities {
                    let mut k = entity_prefix(&entity);
                    k.extend_from_slice(&sk);
                    docs.delete(k);
                }
                docs.delete(written_key(before));
            }
        }
        if let Some(after) = change.after
            && let Some(occurred) = &after.occurred
        {
            let sk = sort_key(occurred, after.position);
            let id = after.id.as_bytes().to_vec();
            docs.put(key(ENTRIES, &sk), id.clone());
            let entities = involved(after, docs)?;
            for entity in &entities {
                let mut k = entity_prefix(entity);
                k.extend_from_slice(&sk);
                docs.put(k, id.clone());
            }
            put_json(docs, written_key(after), &entities);
        }
        Ok(())
    }
}
