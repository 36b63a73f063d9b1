//! The timeline: every current fact that has a date, in timeline order (earliest
//! instant, then latest, then position), with an index per entity.
//!
//! Documents: `timeline/e/<sort key>` → fact id; `timeline/x/<entity id>\0<sort key>`
//! → fact id; `timeline/f/<fact id>` → the index keys written for the fact, so that a
//! correction or retraction removes exactly those. Entries point at the facts layer,
//! so a correction shows without copying the data twice. Summaries are written at
//! query time from the entities' current names.
//!
//! A fact involves the entities its data names, and, for a statement, the parties of
//! the sales and the travelers of the trips it is about: China's objection to a sale to
//! Japan is on Japan's timeline.

use super::{Change, Docs, Fact, Projection, get_json, key, put_json, sales, sort_key, trips};
use crate::Result;
use crate::model::EntityId;
use crate::model::types::EventData;

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

/// The entities a fact involves on the timeline.
fn involved(fact: &Fact, docs: &dyn Docs) -> Result<Vec<EntityId>> {
    let mut found = fact.entities();
    let mut add = |e: EntityId| {
        if !found.contains(&e) {
            found.push(e);
        }
    };
    if let Some(EventData::StatementIssued(s)) = fact.typed() {
        for stream in &s.about {
            if let Some(doc) = sales::get(docs, stream)? {
                for (_, id) in doc.facts {
                    if let Some(EventData::ArmsSaleAnnounced(sale)) =
                        super::facts::get(docs, &id)?.and_then(|f| f.typed())
                    {
                        add(sale.seller);
                        add(sale.buyer);
                    }
                }
            }
            if let Some(doc) = trips::get(docs, stream)? {
                for (_, id) in doc.facts {
                    if let Some(EventData::TripAnnounced(trip)) =
                        super::facts::get(docs, &id)?.and_then(|f| f.typed())
                    {
                        add(trip.traveler);
                    }
                }
            }
        }
    }
    Ok(found)
}

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        if let Some(before) = change.before {
            let written: Vec<Vec<u8>> = get_json(docs, &written_key(before))?.unwrap_or_default();
            for k in written {
                docs.delete(k);
            }
            docs.delete(written_key(before));
        }
        if let Some(after) = change.after
            && let Some(occurred) = &after.occurred
        {
            let sk = sort_key(occurred, after.position);
            let id = after.id.as_bytes().to_vec();
            let mut written = vec![key(ENTRIES, &sk)];
            for entity in involved(after, docs)? {
                let mut k = entity_prefix(&entity);
                k.extend_from_slice(&sk);
                written.push(k);
            }
            for k in &written {
                docs.put(k.clone(), id.clone());
            }
            put_json(docs, written_key(after), &written);
        }
        Ok(())
    }
}
