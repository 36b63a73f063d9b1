//! The facts layer: the current version of every fact, after its amendments.
//!
//! Every event that is not an amendment is a fact. `event.corrected` merges its data,
//! a JSON merge patch (RFC 7396, [`crate::model::patch`]), into the fact's current data
//! and/or replaces its extent, and marks it corrected; `event.retracted` marks it
//! retracted (it leaves every current view); `evidence.added` adds a source. Amending a
//! retracted fact changes nothing. Documents: `facts/<uuid>` → [`Fact`], which the
//! entity registry completes with the entities it counted the fact for
//! ([`Fact::counted_for`]).

use super::{Docs, DocsRead, get_json, put_json, put_new_json};
use crate::Result;
use crate::model::ids::in_views;
use crate::model::patch::merge_patch;
use crate::model::types::EventData;
use crate::model::{EntityId, EventType, Extent, Position, RecordedEvent, Source, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Bump when the layer's documents change shape or meaning; every projection then
/// rebuilds. 2: corrections are merge patches (they replaced the data whole before; the
/// same for a restatement of every field, unless it left out an optional field).
/// 3: a correction keeps what it changed (old and new values), a retraction its reason.
/// 4: a correction keeps its own source.
/// 5: a current fact keeps the entities it was counted for (`entities/f/` before).
/// 6: a retracted fact keeps them too, as the timelines keep its entries.
/// 7: a correction of the date drops the words the source dated it with.
/// 8: and names them among the values it changed.
pub const VERSION: u32 = 8;

/// One value a correction changed: the field (a path in the data such as
/// `value.amount`, `occurred` for the date, or `occurred_text` for the source's words
/// for the date, which a new date drops), and its value before and after (`null` when
/// absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// A correction applied to a fact: why, what it changed, and who reported it (the
/// correction's own `source`, when it has one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// A correction of one fact of a view (a trip's, an entity's own), with the fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactCorrection {
    /// The fact corrected.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(flatten)]
    pub correction: Correction,
}

/// The values that differ between two versions of a fact's data, by path: objects are
/// compared field by field, arrays of the same length item by item (`stops[1].dates`),
/// anything else whole.
pub fn changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
        match (before, after) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let field = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let none = Value::Null;
                    walk(
                        &field,
                        a.get(k).unwrap_or(&none),
                        b.get(k).unwrap_or(&none),
                        out,
                    );
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(&format!("{path}[{i}]"), x, y, out);
                }
            }
            _ if before != after => out.push(FieldChange {
                field: path.to_owned(),
                before: before.clone(),
                after: after.clone(),
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// A fact as it currently stands. Read from view documents only: its ids are not
/// checked again as it is read ([`crate::model::ids`]' `in_views`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub id: Uuid,
    /// The position of the fact's own event.
    pub position: Position,
    #[serde(deserialize_with = "in_views::stream")]
    pub stream: StreamId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<Extent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_text: Option<String>,
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Sources added later by `evidence.added`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Source>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The corrections applied, oldest first; empty when never corrected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    #[serde(default)]
    pub retracted: bool,
    /// Why it was retracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraction: Option<String>,
    /// The entities whose counts and timelines have this fact: what the entity
    /// registry found when it folded the fact in, or when a change of its trip's
    /// traveler or its sale's parties moved it ([`super::Change::moved`]), so that an
    /// amendment takes back exactly those. The facts layer leaves a new fact's empty, and a
    /// correction or evidence empties it; the registry, later in the same change (after
    /// the timeline), fills it for a current fact. A retraction keeps it: the timelines
    /// keep a retracted fact's entries, for `--include-retracted` (and move them with
    /// its trip's traveler or its sale's parties). Empty in the pure [`fold`].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "in_views::entities"
    )]
    pub counted_for: Vec<EntityId>,
}

impl Fact {
    pub(super) fn from_event(e: &RecordedEvent) -> Fact {
        Fact {
            id: e.id,
            position: e.position,
            stream: e.stream.clone(),
            event_type: e.event_type,
            occurred: e.occurred,
            occurred_text: e.occurred_text.clone(),
            data: e.data.clone(),
            source: e.source.clone(),
            evidence: Vec::new(),
            tags: e.tags.clone(),
            corrections: Vec::new(),
            retracted: false,
            retraction: None,
            counted_for: Vec::new(),
        }
    }

    /// The typed data. The store validated it (and any corrected data against the
    /// target's type) on the way in, so `None` means a store from another version.
    pub fn typed(&self) -> Option<EventData> {
        EventData::parse(self.event_type, &self.data).ok()
    }

    /// Every source that reports it: its own, then the evidence added later.
    pub fn all_sources(&self) -> impl Iterator<Item = &Source> {
        self.source.iter().chain(&self.evidence)
    }

    /// How many distinct sources report it (see [`same_source`]).
    pub fn sources(&self) -> usize {
        distinct_sources(self.all_sources())
    }

    /// The entities it involves, each once, in order of appearance: those its data
    /// refers to, and the entity whose own stream it is in.
    pub fn entities(&self) -> Vec<EntityId> {
        self.entities_in(self.typed().as_ref())
    }

    /// [`Fact::entities`] given its typed data, parsed once by the caller.
    pub fn entities_in(&self, typed: Option<&EventData>) -> Vec<EntityId> {
        let mut found: Vec<EntityId> = Vec::new();
        if self.stream.is_entity()
            && let Ok(own) = EntityId::parse(self.stream.as_str())
        {
            found.push(own);
        }
        for (_, e) in typed.map(EventData::entity_refs).unwrap_or_default() {
            if !found.contains(&e) {
                found.push(e);
            }
        }
        found
    }

    /// Whether an `event.corrected` changed it.
    pub fn corrected(&self) -> bool {
        !self.corrections.is_empty()
    }

    /// The reasons of its corrections, oldest first.
    pub fn correction_reasons(&self) -> Vec<String> {
        self.corrections.iter().map(|c| c.reason.clone()).collect()
    }

    /// Every value its corrections changed, oldest first.
    pub fn changes(&self) -> Vec<FieldChange> {
        self.corrections
            .iter()
            .flat_map(|c| c.changes.iter().cloned())
            .collect()
    }
}

/// Whether two sources are one: the same publisher, title, url and date. Two facts
/// taken from one article, each with its own quote, have one source.
pub fn same_source(a: &Source, b: &Source) -> bool {
    a.publisher == b.publisher && a.title == b.title && a.url == b.url && a.published == b.published
}

/// How many distinct sources these are.
pub fn distinct_sources<'a>(sources: impl IntoIterator<Item = &'a Source>) -> usize {
    let mut seen: Vec<&Source> = Vec::new();
    for s in sources {
        if !seen.iter().any(|x| same_source(x, s)) {
            seen.push(s);
        }
    }
    seen.len()
}

fn fact_key(id: &Uuid) -> Vec<u8> {
    super::key("facts/", id.as_bytes())
}

/// Reads the current version of a fact, retracted or not.
pub fn get(docs: &(impl DocsRead + ?Sized), id: &Uuid) -> Result<Option<Fact>> {
    get_json(docs, &fact_key(id))
}

/// Writes a fact again with what the entity registry completes it with
/// ([`Fact::counted_for`]): in the change that wrote it, or in one that moved it.
pub(super) fn complete(docs: &mut dyn Docs, fact: &Fact) {
    put_json(docs, fact_key(&fact.id), fact);
}

/// Folds one event into the facts layer and returns the change it made to a fact
/// (before, after), or `None` when it changed no current fact.
pub fn apply(
    event: &RecordedEvent,
    docs: &mut dyn Docs,
) -> Result<Option<(Option<Fact>, Option<Fact>)>> {
    let Ok(typed) = event.typed() else {
        return Ok(None);
    };
    let Some(target) = typed.target() else {
        let fact = Fact::from_event(event);
        // Ids are unique in the log: a new fact's document is new.
        put_new_json(docs, fact_key(&fact.id), &fact);
        return Ok(Some((None, Some(fact))));
    };
    let Some(before) = get(docs, &target)? else {
        return Ok(None);
    };
    if before.retracted {
        return Ok(None);
    }
    let after = amend(&before, typed, event.source.as_ref());
    put_json(docs, fact_key(&target), &after);
    let after = (!after.retracted).then_some(after);
    Ok(Some((Some(before), after)))
}

/// A fact after one amendment of it (`typed`, the amendment's data, `source` its own
/// source), as the facts layer keeps it. The fact must not be retracted: nothing amends
/// a retracted fact.
pub(super) fn amend(before: &Fact, typed: EventData, source: Option<&Source>) -> Fact {
    let mut after = before.clone();
    if !matches!(typed, EventData::EventRetracted(_)) {
        after.counted_for.clear();
    }
    match typed {
        EventData::EventCorrected(c) => {
            if let Some(patch) = &c.data {
                merge_patch(&mut after.data, patch);
            }
            let mut changed = changes(&before.data, &after.data);
            if let Some(occurred) = c.occurred {
                after.occurred = Some(occurred);
                if before.occurred != after.occurred {
                    // The source's words for the date ("later in the week") were of
                    // the date corrected.
                    after.occurred_text = None;
                    let text =
                        |o: &Option<Extent>| o.map_or(Value::Null, |o| Value::from(o.to_string()));
                    changed.push(FieldChange {
                        field: "occurred".into(),
                        before: text(&before.occurred),
                        after: text(&after.occurred),
                    });
                    if let Some(words) = &before.occurred_text {
                        changed.push(FieldChange {
                            field: "occurred_text".into(),
                            before: Value::from(words.as_str()),
                            after: Value::Null,
                        });
                    }
                }
            }
            after.corrections.push(Correction {
                reason: c.reason,
                changes: changed,
                source: source.cloned(),
            });
        }
        EventData::EventRetracted(r) => {
            after.retracted = true;
            after.retraction = Some(r.reason);
        }
        EventData::EvidenceAdded(e) => after.evidence.push(e.source),
        _ => unreachable!("only amendments have a target"),
    }
    after
}

/// The facts of a run of events (a stream's, in log order) after their amendments, as
/// [`apply`] folds them, in the order of their own events; retracted ones are kept,
/// marked. An amendment whose target is not in the run changes nothing. Pure: the
/// store's rules fold a stream with it, so they see its facts as the views do.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Vec<Fact> {
    let mut facts: Vec<Fact> = Vec::new();
    for event in events {
        let Ok(typed) = event.typed() else {
            continue;
        };
        match typed.target() {
            None => facts.push(Fact::from_event(event)),
            Some(target) => {
                if let Some(fact) = facts.iter_mut().find(|f| f.id == target)
                    && !fact.retracted
                {
                    *fact = amend(fact, typed, event.source.as_ref());
                }
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_each_value_by_its_path() {
        let before = json!({"value": {"amount": 1, "currency": "USD"}, "stops": [{"place": "a", "dates": "2025~"}], "items": ["x"]});
        let after = json!({"value": {"amount": 2, "currency": "USD"}, "stops": [{"place": "a", "dates": "2025"}], "items": ["x", "y"], "approximate": true});
        let fields: Vec<(String, Value, Value)> = changes(&before, &after)
            .into_iter()
            .map(|c| (c.field, c.before, c.after))
            .collect();
        assert_eq!(
            fields,
            [
                ("approximate".into(), Value::Null, json!(true)),
                ("items".into(), json!(["x"]), json!(["x", "y"])),
                ("stops[0].dates".into(), json!("2025~"), json!("2025")),
                ("value.amount".into(), json!(1), json!(2)),
            ]
        );
        assert!(changes(&before, &before).is_empty());
    }
}
