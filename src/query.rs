//! The read API over the projections: trips, the timeline, entities and sales, as
//! plain view structs, with entity names resolved and one-line summaries written.
//!
//! A [`Query`] reads any [`DocsRead`]: the live documents of a store (the head of the
//! log) or documents folded in memory up to a position (as-of), so every question is
//! answered the same way at every point of the log.

use crate::model::types::{EventData, Money, Stance};
use crate::model::{EntityId, EventType, Extent, Position, Source, StreamId, ValidationError};
use crate::projection::entities::{self, EntityDoc};
use crate::projection::sales::{self, SaleView};
use crate::projection::timeline;
use crate::projection::trips::{self, TripView};
use crate::projection::{DocsRead, Fact, decode, facts};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Questions about the views, answered from one set of documents.
pub struct Query<'a> {
    docs: &'a dyn DocsRead,
    /// Entity names and trip travelers this query has already looked up: a page of the
    /// timeline names the same few entities and trips again and again.
    names: RefCell<HashMap<EntityId, String>>,
    travelers: RefCell<HashMap<StreamId, Option<EntityId>>>,
}

/// Which timeline entries to return. Filters combine with "and".
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    pub entity: Option<EntityId>,
    pub stream: Option<StreamId>,
    pub category: Option<String>,
    pub event_type: Option<EventType>,
    pub tag: Option<String>,
    /// Entries whose extent overlaps `[from.earliest, to.latest)`.
    pub from: Option<Extent>,
    pub to: Option<Extent>,
    pub limit: Option<usize>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub position: Position,
    pub id: Uuid,
    pub occurred: Extent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_text: Option<String>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub stream: StreamId,
    pub summary: String,
    pub entities: Vec<EntityId>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub sources: usize,
    pub corrected: bool,
    /// The reasons of the corrections applied, oldest first (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<String>,
}

/// A status fact about an entity, with its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStatus {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred: Option<Extent>,
    pub summary: String,
}

/// An entity of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityView {
    pub id: EntityId,
    pub kind: String,
    pub name: String,
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<EntityId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wikidata: Option<String>,
    pub registered: bool,
    /// Current facts that involve it.
    pub events: u64,
    pub first: Option<Extent>,
    pub last: Option<Extent>,
    pub status: Vec<EntityStatus>,
}

/// A total value of sales in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    pub party: EntityId,
    pub currency: String,
    #[serde(serialize_with = "crate::model::types::serialize_amount")]
    pub amount: f64,
    pub sales: usize,
}

/// The arms-sale ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesReport {
    pub sales: Vec<SaleView>,
    pub by_buyer: Vec<Total>,
    pub by_seller: Vec<Total>,
}

fn not_found(field: &str, message: String) -> Error {
    Error::Invalid {
        index: None,
        error: ValidationError::field(field, message),
    }
}

/// "A", "A and B", "A, B and C".
pub fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "$3.64 billion", "12.5 million EUR".
pub fn format_money(value: &Money) -> String {
    let (scaled, unit) = match value.amount {
        a if a >= 1e12 => (a / 1e12, " trillion"),
        a if a >= 1e9 => (a / 1e9, " billion"),
        a if a >= 1e6 => (a / 1e6, " million"),
        a => (a, ""),
    };
    let number = format!("{scaled:.2}");
    let number = number.trim_end_matches('0').trim_end_matches('.');
    match value.currency.as_str() {
        "USD" => format!("${number}{unit}"),
        other => format!("{number}{unit} {other}"),
    }
}

impl<'a> Query<'a> {
    pub fn new(docs: &'a dyn DocsRead) -> Query<'a> {
        Query {
            docs,
            names: RefCell::default(),
            travelers: RefCell::default(),
        }
    }

    /// The current version of a fact, unless retracted.
    pub fn fact(&self, id: &Uuid) -> Result<Option<Fact>> {
        Ok(facts::get(self.docs, id)?.filter(|f| !f.retracted))
    }

    fn facts(&self, ids: &[(Position, Uuid)]) -> Result<Vec<Fact>> {
        let mut found = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            found.extend(self.fact(id)?);
        }
        Ok(found)
    }

    /// The display name of an entity: its registered name, a country's built-in name,
    /// or its id.
    pub fn name(&self, id: &EntityId) -> Result<String> {
        if let Some(name) = self.names.borrow().get(id) {
            return Ok(name.clone());
        }
        let name = match entities::get(self.docs, id)? {
            Some(doc) => doc.name,
            None => id
                .country_name()
                .map_or_else(|| id.to_string(), str::to_owned),
        };
        self.names.borrow_mut().insert(id.clone(), name.clone());
        Ok(name)
    }

    /// The traveler of a trip: that of its last current announcement.
    fn trip_traveler(&self, stream: &StreamId) -> Result<Option<EntityId>> {
        if let Some(traveler) = self.travelers.borrow().get(stream) {
            return Ok(traveler.clone());
        }
        let traveler = trips::travelers(self.docs, stream)?
            .and_then(|mut t| t.pop())
            .map(|(_, _, traveler)| traveler);
        self.travelers
            .borrow_mut()
            .insert(stream.clone(), traveler.clone());
        Ok(traveler)
    }

    fn names(&self, ids: &[EntityId]) -> Result<Vec<String>> {
        ids.iter().map(|id| self.name(id)).collect()
    }

    /// Resolves an entity id, a name or an alias (case-insensitive) to one entity.
    pub fn resolve_entity(&self, text: &str) -> Result<EntityId> {
        if let Ok(id) = EntityId::parse(text) {
            return Ok(id);
        }
        let mut ids = entities::by_name(self.docs, text)?;
        match ids.len() {
            0 => Err(not_found(
                "entity",
                format!("no entity is named or aliased `{text}`; see `chronicle entity list`"),
            )),
            1 => Ok(ids.remove(0)),
            _ => Err(not_found(
                "entity",
                format!(
                    "`{text}` could be {}; pass one of these ids",
                    ids.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Every trip, by stream id.
    pub fn trips(&self) -> Result<Vec<TripView>> {
        let mut out = Vec::new();
        for item in self.docs.scan(trips::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: trips::TripDoc = decode(&k, &v)?;
            out.push(trips::view(&doc, &self.facts(&doc.facts)?));
        }
        Ok(out)
    }

    /// One trip.
    pub fn trip(&self, stream: &StreamId) -> Result<TripView> {
        let doc = trips::get(self.docs, stream)?.ok_or_else(|| {
            not_found(
                "stream",
                format!("no trip `{stream}`; see `chronicle trip list`"),
            )
        })?;
        Ok(trips::view(&doc, &self.facts(&doc.facts)?))
    }

    /// Timeline entries in timeline order.
    pub fn timeline(&self, filter: &TimelineFilter) -> Result<Vec<TimelineEntry>> {
        let prefix = match &filter.entity {
            Some(e) => timeline::entity_prefix(e),
            None => timeline::ENTRIES.as_bytes().to_vec(),
        };
        let window_start = filter.from.map(|f| f.earliest());
        let window_end = filter.to.map(|t| t.latest());
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for item in self.docs.scan(&prefix, None, false) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let id = Uuid::from_slice(&v)
                .map_err(|_| Error::Integrity(format!("timeline entry {k:?} is malformed")))?;
            let Some(fact) = self.fact(&id)? else {
                continue;
            };
            let Some(occurred) = fact.occurred else {
                continue;
            };
            if window_end.is_some_and(|end| occurred.earliest() >= end) {
                break; // Entries are sorted by earliest instant: none later can overlap.
            }
            if window_start.is_some_and(|start| occurred.latest() <= start)
                || filter.stream.as_ref().is_some_and(|s| &fact.stream != s)
                || filter
                    .category
                    .as_deref()
                    .is_some_and(|c| fact.stream.category() != c)
                || filter.event_type.is_some_and(|t| fact.event_type != t)
                || filter.tag.as_ref().is_some_and(|t| !fact.tags.contains(t))
            {
                continue;
            }
            out.push(TimelineEntry {
                position: fact.position,
                id: fact.id,
                occurred,
                occurred_text: fact.occurred_text.clone(),
                event_type: fact.event_type,
                stream: fact.stream.clone(),
                summary: self.summary(&fact)?,
                entities: fact.entities(),
                tags: fact.tags.clone(),
                source: fact.source.clone(),
                sources: fact.sources(),
                corrected: fact.corrected(),
                corrections: fact.corrections.clone(),
            });
        }
        Ok(out)
    }

    fn entity_view(&self, doc: EntityDoc) -> Result<EntityView> {
        let prefix = entities::involvement_prefix(&doc.id);
        let extent_at = |reverse: bool| -> Result<Option<Extent>> {
            match self.docs.scan(&prefix, None, reverse).next() {
                None => Ok(None),
                Some(item) => {
                    let (_, v) = item?;
                    Ok(String::from_utf8_lossy(&v).parse().ok())
                }
            }
        };
        let mut status = Vec::new();
        for s in &doc.status {
            let fact = self.fact(&s.id)?;
            status.push(EntityStatus {
                event_type: s.event_type,
                occurred: s.occurred,
                summary: match fact {
                    Some(f) => self.summary(&f)?,
                    None => s.event_type.to_string(),
                },
            });
        }
        Ok(EntityView {
            kind: doc.id.kind().to_owned(),
            first: extent_at(false)?,
            last: extent_at(true)?,
            id: doc.id,
            name: doc.name,
            aliases: doc.aliases,
            description: doc.description,
            country: doc.country,
            wikidata: doc.wikidata,
            registered: doc.registered,
            events: doc.events,
            status,
        })
    }

    /// Every entity that is registered or involved in a current fact, by id.
    pub fn entities(&self) -> Result<Vec<EntityView>> {
        let mut out = Vec::new();
        for item in self.docs.scan(entities::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: EntityDoc = decode(&k, &v)?;
            if doc.registered || doc.events > 0 {
                out.push(self.entity_view(doc)?);
            }
        }
        Ok(out)
    }

    /// One entity, by id, name or alias.
    pub fn entity(&self, text: &str) -> Result<EntityView> {
        let id = self.resolve_entity(text)?;
        let doc = entities::get(self.docs, &id)?
            .filter(|d| d.registered || d.events > 0)
            .ok_or_else(|| {
                not_found(
                    "entity",
                    format!("no fact involves `{id}`; see `chronicle entity list`"),
                )
            })?;
        self.entity_view(doc)
    }

    /// The arms sales, optionally only those with this buyer and/or seller, with totals.
    pub fn sales(
        &self,
        buyer: Option<&EntityId>,
        seller: Option<&EntityId>,
    ) -> Result<SalesReport> {
        let mut all = Vec::new();
        for item in self.docs.scan(sales::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: sales::SaleDoc = decode(&k, &v)?;
            all.extend(sales::view(&self.facts(&doc.facts)?));
        }
        all.retain(|s| {
            buyer.is_none_or(|b| &s.buyer == b) && seller.is_none_or(|x| &s.seller == x)
        });
        let totals = |party: fn(&SaleView) -> &EntityId| {
            let mut sums: BTreeMap<(EntityId, String), (f64, usize)> = BTreeMap::new();
            for s in &all {
                let entry = sums
                    .entry((party(s).clone(), s.value.currency.clone()))
                    .or_default();
                entry.0 += s.value.amount;
                entry.1 += 1;
            }
            sums.into_iter()
                .map(|((party, currency), (amount, sales))| Total {
                    party,
                    currency,
                    amount,
                    sales,
                })
                .collect()
        };
        Ok(SalesReport {
            by_buyer: totals(|s| &s.buyer),
            by_seller: totals(|s| &s.seller),
            sales: all,
        })
    }

    /// How a statement's `about` reads: entity names, and trips and sales described.
    fn about(&self, about: &[StreamId]) -> Result<String> {
        let mut parts = Vec::new();
        for stream in about {
            let part = if stream.is_entity() {
                self.name(&EntityId::parse(stream.as_str()).expect("is_entity was checked"))?
            } else if stream.category() == "trip" {
                match self.trip_traveler(stream)? {
                    Some(t) => format!("{}'s trip", self.name(&t)?),
                    None => format!("the trip {stream}"),
                }
            } else if stream.category() == "arms-sale" {
                let report = sales::get(self.docs, stream)?
                    .map(|doc| self.facts(&doc.facts))
                    .transpose()?
                    .map(|f| sales::view(&f));
                match report.as_deref() {
                    Some([sale, ..]) => format!(
                        "the arms sale from {} to {}",
                        self.name(&sale.seller)?,
                        self.name(&sale.buyer)?
                    ),
                    _ => format!("the arms sale {stream}"),
                }
            } else {
                stream.to_string()
            };
            parts.push(part);
        }
        Ok(join_names(&parts))
    }

    /// The name of a trip's traveler, from its document (not from a fold of its facts).
    fn traveler(&self, stream: &StreamId) -> Result<String> {
        Ok(match self.trip_traveler(stream)? {
            Some(t) => self.name(&t)?,
            None => "The traveler".into(),
        })
    }

    fn place(&self, place: &EntityId, city: Option<&String>) -> Result<String> {
        let name = self.name(place)?;
        Ok(match city {
            Some(city) if place.is_country() => format!("{city}, {name}"),
            Some(city) => city.clone(),
            None => name,
        })
    }

    /// A one-line summary of a fact, from entity names, as a person would write it.
    pub fn summary(&self, fact: &Fact) -> Result<String> {
        let Some(data) = fact.typed() else {
            return Ok(fact.event_type.to_string());
        };
        let s = match data {
            EventData::EntityRegistered(r) => format!("{} registered", r.name),
            EventData::EntityAliasAdded(a) => {
                format!("{} is also known as {}", fact.stream, a.alias)
            }
            EventData::TripAnnounced(a) => {
                let places: Vec<EntityId> = a.stops.iter().map(|s| s.place.clone()).collect();
                format!(
                    "{} announced a trip to {}",
                    self.name(&a.traveler)?,
                    join_names(&self.names(&places)?)
                )
            }
            EventData::TripStopAdded(s) => format!(
                "{} added a stop in {}",
                self.traveler(&fact.stream)?,
                self.place(&s.place, s.city.as_ref())?
            ),
            EventData::TripStopCancelled(s) => format!(
                "{} cancelled the stop in {}",
                self.traveler(&fact.stream)?,
                self.name(&s.place)?
            ),
            EventData::TripAgendaItemAdded(a) => format!(
                "{}'s agenda in {}: {}",
                self.traveler(&fact.stream)?,
                self.name(&a.place)?,
                a.topic
            ),
            EventData::TripMeetingHeld(m) => {
                let with = join_names(&self.names(&m.with)?);
                let topic = m.topic.map(|t| format!(" ({t})")).unwrap_or_default();
                format!(
                    "{} met {with} in {}{topic}",
                    self.traveler(&fact.stream)?,
                    self.name(&m.place)?
                )
            }
            EventData::TripStarted(_) => format!("{} set off", self.traveler(&fact.stream)?),
            EventData::TripCompleted(_) => {
                format!("{} completed the trip", self.traveler(&fact.stream)?)
            }
            EventData::TripArrived(a) => {
                format!(
                    "{} arrived in {}",
                    self.traveler(&fact.stream)?,
                    self.name(&a.place)?
                )
            }
            EventData::TripDeparted(d) => {
                format!(
                    "{} left {}",
                    self.traveler(&fact.stream)?,
                    self.name(&d.place)?
                )
            }
            EventData::TripPostponed(_) => {
                format!("{} postponed the trip", self.traveler(&fact.stream)?)
            }
            EventData::TripCancelled(_) => {
                format!("{} cancelled the trip", self.traveler(&fact.stream)?)
            }
            EventData::TripReturnPlanned(r) => {
                let reason = r.reason.map(|r| format!(" ({r})")).unwrap_or_default();
                format!(
                    "{} plans to return to {}{reason}",
                    self.traveler(&fact.stream)?,
                    self.name(&r.to)?
                )
            }
            EventData::ArmsSaleAnnounced(a) => format!(
                "{} announced an arms sale to {} worth {}{}",
                self.name(&a.seller)?,
                self.name(&a.buyer)?,
                if a.approximate == Some(true) {
                    "about "
                } else {
                    ""
                },
                format_money(&a.value)
            ),
            EventData::StatementIssued(st) => {
                let verb = match st.stance {
                    Stance::Supports => "backed",
                    Stance::Opposes => "opposed",
                    Stance::Rejects => "rejected",
                    Stance::Neutral => "commented on",
                };
                let about = self.about(&st.about)?;
                match st.stance {
                    // One rejects what others said about a thing, not the thing itself.
                    Stance::Rejects => {
                        format!("{} rejected claims about {about}", self.name(&st.speaker)?)
                    }
                    _ => format!("{} {verb} {about}", self.name(&st.speaker)?),
                }
            }
            EventData::MartialLawDeclared(m) => {
                format!(
                    "{} declared martial law in {}",
                    self.name(&m.by)?,
                    self.name(&m.country)?
                )
            }
            EventData::OfficialImpeached(i) => format!(
                "{} was impeached as {}",
                self.name(&i.official)?,
                self.name(&i.office)?
            ),
            EventData::FuneralScheduled(f) => {
                let place = match &f.place {
                    Some(p) => format!(" in {}", self.name(p)?),
                    None => String::new(),
                };
                format!("Funeral of {} scheduled{place}", self.name(&f.person)?)
            }
            EventData::ConflictReported(c) => {
                format!(
                    "Conflict involving {}",
                    join_names(&self.names(&c.parties)?)
                )
            }
            EventData::NoteReported(n) => n.summary,
            EventData::EventCorrected(_)
            | EventData::EventRetracted(_)
            | EventData::EvidenceAdded(_) => fact.event_type.to_string(),
        };
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_money_read_naturally() {
        let names = |n: &[&str]| join_names(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            names(&["South Korea", "Japan", "France"]),
            "South Korea, Japan and France"
        );
        assert_eq!(names(&["Japan"]), "Japan");
        let usd = Money {
            amount: 3.64e9,
            currency: "USD".into(),
        };
        assert_eq!(format_money(&usd), "$3.64 billion");
        let eur = Money {
            amount: 12_500_000.0,
            currency: "EUR".into(),
        };
        assert_eq!(format_money(&eur), "12.5 million EUR");
    }
}
