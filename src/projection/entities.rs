//! The entity registry: names, aliases, how many facts involve each entity, when, and
//! status facts (an impeachment, a declaration of martial law, a funeral).
//!
//! Documents: `entities/d/<id>` → [`EntityDoc`]; `entities/n/<id>` → how many current
//! facts involve it ([`events`]; kept apart, so that the document, with its history,
//! changes only when the entity does, not with every fact about it);
//! `entities/a/<normalized name>` → the ids known by that name or alias. The entities a
//! fact was counted for are kept in the fact's own document ([`Fact::counted_for`]; the
//! timeline reads them too). An entity's first and last dated facts are the ends of its
//! timeline (`timeline::entity_prefix`).

use super::{Change, Docs, DocsRead, Fact, Projection, facts, get_json, key, put_json};
use crate::Result;
use crate::model::ids::in_views;
use crate::model::types::EventData;
use crate::model::{EntityId, EventType, Extent, Position};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub struct Entities;

/// A fact that says something about an entity's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFact {
    pub id: Uuid,
    pub position: Position,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred: Option<Extent>,
    pub data: Value,
}

/// One entity's document. Read from view documents only: its id is not checked again
/// as it is read ([`crate::model::ids`]' `in_views`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityDoc {
    #[serde(deserialize_with = "in_views::entity")]
    pub id: EntityId,
    pub name: String,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    pub country: Option<EntityId>,
    pub wikidata: Option<String>,
    /// Whether a current `entity.registered` defines it (countries are built in).
    pub registered: bool,
    pub status: Vec<StatusFact>,
    /// The entity's own `entity.*` facts, in position order.
    own: Vec<(Position, Uuid)>,
}

impl EntityDoc {
    fn new(id: &EntityId) -> EntityDoc {
        EntityDoc {
            id: id.clone(),
            name: id
                .country_name()
                .map_or_else(|| id.to_string(), str::to_owned),
            aliases: Vec::new(),
            description: None,
            country: None,
            wikidata: None,
            registered: false,
            status: Vec::new(),
            own: Vec::new(),
        }
    }

    /// The entity's own current `entity.*` facts, in position order.
    pub fn own_facts(&self) -> &[(Position, Uuid)] {
        &self.own
    }

    /// The name and every alias.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(self.name.clone())
            .chain(self.aliases.iter().cloned())
            .collect()
    }
}

fn doc_key(id: &EntityId) -> Vec<u8> {
    key("entities/d/", id.as_str().as_bytes())
}

/// The prefix of every entity document.
pub const DOCS: &str = "entities/d/";

/// The prefix of the index of names and aliases (normalized, see [`normalize`]).
pub const ALIASES: &str = "entities/a/";

fn alias_key(name: &str) -> Vec<u8> {
    key(ALIASES, normalize(name).as_bytes())
}

/// How names are compared: in one Unicode form (NFKC: an accent typed as its own
/// character is the accented letter, a full-width letter the letter),
/// case-insensitively, with spaces collapsed.
pub fn normalize(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let name: String = name.nfkc().collect();
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn count_key(id: &EntityId) -> Vec<u8> {
    key("entities/n/", id.as_str().as_bytes())
}

/// How many current facts involve the entity.
pub fn events(docs: &(impl DocsRead + ?Sized), id: &EntityId) -> Result<u64> {
    Ok(docs
        .get(&count_key(id))?
        .and_then(|v| Some(u64::from_be_bytes(v.as_slice().try_into().ok()?)))
        .unwrap_or(0))
}

/// The document of an entity, if any fact has involved it.
pub fn get(docs: &(impl DocsRead + ?Sized), id: &EntityId) -> Result<Option<EntityDoc>> {
    get_json(docs, &doc_key(id))
}

/// An entity's name, and whether a current `entity.registered` defines it: the two
/// fields of its [`EntityDoc`] a headline needs.
#[derive(Deserialize)]
pub struct NameDoc {
    pub name: String,
    pub registered: bool,
}

/// The name of an entity that has a document, read without building the document's
/// other fields (a timeline page names many entities).
pub fn name_doc(docs: &(impl DocsRead + ?Sized), id: &EntityId) -> Result<Option<NameDoc>> {
    get_json(docs, &doc_key(id))
}

/// The ids known by a name or alias.
pub fn by_name(docs: &(impl DocsRead + ?Sized), name: &str) -> Result<Vec<EntityId>> {
    let ids: Option<Vec<in_views::Entity>> = get_json(docs, &alias_key(name))?;
    Ok(ids
        .into_iter()
        .flatten()
        .map(in_views::Entity::into_inner)
        .collect())
}

fn status_subject(fact: &Fact) -> Option<EntityId> {
    match fact.typed()? {
        EventData::OfficialImpeached(d) => Some(d.official),
        EventData::MartialLawDeclared(d) => Some(d.by),
        EventData::FuneralScheduled(d) => Some(d.person),
        _ => None,
    }
}

fn is_own(fact: &Fact) -> bool {
    matches!(
        fact.event_type,
        EventType::EntityRegistered | EventType::EntityAliasAdded
    )
}

/// Recomputes name and aliases from the entity's own current facts, and moves the
/// alias index from the old names to the new ones.
fn rename(doc: &mut EntityDoc, docs: &mut dyn Docs) -> Result<()> {
    let old_names = doc.names();
    let fresh = EntityDoc::new(&doc.id);
    (doc.name, doc.aliases, doc.registered) = (fresh.name, Vec::new(), false);
    (doc.description, doc.country, doc.wikidata) = (None, None, None);
    for (_, id) in doc.own.clone() {
        let Some(fact) = facts::get(docs, &id)? else {
            continue;
        };
        if fact.retracted {
            continue;
        }
        match fact.typed() {
            Some(EventData::EntityRegistered(r)) => {
                doc.registered = true;
                doc.name = r.name;
                doc.aliases.extend(r.aliases);
                doc.description = r.description;
                doc.country = r.country;
                doc.wikidata = r.wikidata;
            }
            Some(EventData::EntityAliasAdded(a)) => doc.aliases.push(a.alias),
            _ => {}
        }
    }
    let mut seen = vec![normalize(&doc.name)];
    doc.aliases.retain(|a| {
        let n = normalize(a);
        let new = !seen.contains(&n);
        seen.push(n);
        new
    });
    let new_names = doc.names();
    for name in &old_names {
        let k = alias_key(name);
        let mut ids: Vec<EntityId> = get_json(docs, &k)?.unwrap_or_default();
        ids.retain(|i| i != &doc.id);
        if ids.is_empty() {
            docs.delete(k);
        } else {
            put_json(docs, k, &ids);
        }
    }
    for name in &new_names {
        let k = alias_key(name);
        let mut ids: Vec<EntityId> = get_json(docs, &k)?.unwrap_or_default();
        if !ids.contains(&doc.id) {
            ids.push(doc.id.clone());
            ids.sort();
            put_json(docs, k, &ids);
        }
    }
    Ok(())
}

impl Entities {
    /// Counts `fact` for its entities (`added`) or takes back what it was counted for.
    fn fold(&self, fact: &Fact, added: bool, docs: &mut dyn Docs) -> Result<()> {
        // Remove exactly what was added, even if the trips or sales it was derived
        // from have changed since.
        let involved: Vec<EntityId> = if added {
            let found = super::involved(fact, docs)?;
            if !found.is_empty() {
                // The fact's document, just written by the facts layer, records them.
                let counted = Fact {
                    counted_for: found.clone(),
                    ..fact.clone()
                };
                facts::complete(docs, &counted);
            }
            found
        } else {
            fact.counted_for.clone()
        };
        self.count(fact, &involved, added, docs)
    }

    /// Counts `fact` for `entities` (`added`), or takes it back from them.
    fn count(
        &self,
        fact: &Fact,
        entities: &[EntityId],
        added: bool,
        docs: &mut dyn Docs,
    ) -> Result<()> {
        let subject = status_subject(fact);
        for id in entities {
            let stored = get(docs, id)?;
            let mut doc = stored.clone().unwrap_or_else(|| EntityDoc::new(id));
            let count = events(docs, id)?;
            if doc.own.is_empty() && count == 0 {
                // A new document: index its built-in name (countries).
                rename(&mut doc, docs)?;
            }
            if is_own(fact) && fact.stream.as_str() == id.as_str() {
                doc.own.retain(|(_, f)| *f != fact.id);
                if added {
                    doc.own.push((fact.position, fact.id));
                    doc.own.sort();
                }
                rename(&mut doc, docs)?;
            }
            match (added, count) {
                (true, n) => docs.put(count_key(id), (n + 1).to_be_bytes().to_vec()),
                (false, 0 | 1) => docs.delete(count_key(id)),
                (false, n) => docs.put(count_key(id), (n - 1).to_be_bytes().to_vec()),
            }
            doc.status.retain(|s| s.id != fact.id);
            if added && subject.as_ref() == Some(id) {
                doc.status.push(StatusFact {
                    id: fact.id,
                    position: fact.position,
                    event_type: fact.event_type,
                    occurred: fact.occurred,
                    data: fact.data.clone(),
                });
                doc.status.sort_by_key(|s| s.position);
            }
            if stored.as_ref() != Some(&doc) {
                put_json(docs, doc_key(id), &doc);
            }
        }
        Ok(())
    }
}

impl Projection for Entities {
    fn name(&self) -> &'static str {
        "entities"
    }

    fn version(&self) -> u32 {
        // 2: no `entities/i/` index; first and last come from the timeline. 3: the
        // count of facts under `entities/n/`, out of the document. 4: a change of a
        // trip's traveler or a sale's parties moves its other facts. 5: names are
        // indexed in NFKC.
        5
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        if let Some(before) = change.before {
            self.fold(before, false, docs)?;
        }
        if let Some(after) = change.after {
            self.fold(after, true, docs)?;
        }
        // A trip's traveler or a sale's parties changed: its other facts are counted
        // for the entities they involve now, and record them (the timeline, before
        // this, moved their entries from those they were counted for).
        for (fact, now) in change.moved(docs)? {
            let gone: Vec<EntityId> = (fact.counted_for.iter())
                .filter(|e| !now.contains(e))
                .cloned()
                .collect();
            let new: Vec<EntityId> = now
                .iter()
                .filter(|e| !fact.counted_for.contains(e))
                .cloned()
                .collect();
            if !fact.retracted {
                self.count(fact, &gone, false, docs)?;
                self.count(fact, &new, true, docs)?;
            }
            facts::complete(
                docs,
                &Fact {
                    counted_for: now.clone(),
                    ..fact.clone()
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names_match_in_any_unicode_form_case_and_spacing() {
        let precomposed = "Jos\u{e9}  Mar\u{ed}a";
        let combining = "jose\u{301} MARI\u{301}A";
        assert_eq!(normalize(precomposed), normalize(combining));
        assert_eq!(normalize(precomposed), "jos\u{e9} mar\u{ed}a");
        // Full-width letters, as some input methods type them.
        assert_eq!(normalize("\u{ff2e}\u{ff21}\u{ff34}\u{ff2f}"), "nato");
        assert_ne!(normalize("Jose"), normalize(precomposed));
    }
}
