//! Trips: one document per `trip:` stream (where its stream stands, the travelers of
//! its announcements), an entry per current fact of the trip (its own `trip.*` events
//! and the statements about it), and the fold of those facts into a [`TripView`]:
//! status, stops in order with their status, agenda and meetings, the planned return,
//! the statements.
//!
//! Documents: `trips/<stream>` → [`TripDoc`]; `trips-f/<stream>\0<position>` → the id
//! of a current fact of the trip at that position, written once and deleted when the
//! fact leaves the trip, so that a trip of many facts costs each new one a key, not a
//! rewrite of a list of them all; `trips-r/<stream>\0<position>` → the id of a fact of
//! the trip since retracted (a place's timeline shows them on request without a scan).
//! The view is folded when read, from the facts layer,
//! so a correction anywhere in a trip shows without rewriting others. The document
//! keeps the travelers of the trip's announcements, which every other fact of the trip
//! needs (its summary, the entities it involves) without reading the trip's facts.

use super::facts::FactCorrection;
use super::{Change, Docs, DocsRead, Fact, FactEntries, Projection, get_json, key, put_json};
use crate::Result;
use crate::model::ids::in_views;
use crate::model::types::{EventData, Stance, TripStopAdded};
use crate::model::{EntityId, EventType, Extent, Position, StreamId, Version};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub struct Trips;

/// The prefix of every trip document.
pub const DOCS: &str = "trips/";

/// The trips' current facts.
pub const FACTS: FactEntries = FactEntries("trips-f/");

/// The trips' retracted facts: a retraction moves a fact from [`FACTS`] to here.
pub const RETRACTED: FactEntries = FactEntries("trips-r/");

/// A trip's document: where its stream stands, and who travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripDoc {
    pub stream: StreamId,
    pub version: Version,
    pub last_position: Position,
    /// The traveler of each current `trip.announced` fact of the trip, in position order.
    pub travelers: Vec<(Position, Uuid, EntityId)>,
}

impl TripDoc {
    /// The traveler as the view has it: that of the last current announcement.
    pub fn traveler(&self) -> Option<&EntityId> {
        self.travelers.last().map(|(_, _, t)| t)
    }
}

fn doc_key(stream: &StreamId) -> Vec<u8> {
    key(DOCS, stream.as_str().as_bytes())
}

/// A trip's document, if the trip has any event.
pub fn get(docs: &(impl DocsRead + ?Sized), stream: &StreamId) -> Result<Option<TripDoc>> {
    get_json(docs, &doc_key(stream))
}

/// The travelers of a trip's announcements (see [`TripDoc::travelers`]), if the trip
/// has a document.
pub fn travelers(
    docs: &(impl DocsRead + ?Sized),
    stream: &StreamId,
) -> Result<Option<Vec<(Position, Uuid, EntityId)>>> {
    /// Only the travelers of a trip's document: the rest is skipped, not built (a
    /// timeline page asks this of every trip fact it shows).
    #[derive(Deserialize)]
    struct Travelers {
        travelers: Vec<(Position, Uuid, in_views::Entity)>,
    }
    Ok(get_json::<Travelers>(docs, &doc_key(stream))?.map(|d| {
        d.travelers
            .into_iter()
            .map(|(p, id, e)| (p, id, e.into_inner()))
            .collect()
    }))
}

/// The trips a fact (with its typed data) belongs to: its own trip stream, and trips a
/// statement is about.
fn trips_of(fact: &Fact, typed: &Option<EventData>) -> Vec<StreamId> {
    let mut trips = Vec::new();
    match typed {
        Some(EventData::StatementIssued(s)) => {
            trips.extend(s.about.iter().filter(|a| a.category() == "trip").cloned());
        }
        Some(_) if fact.stream.category() == "trip" => trips.push(fact.stream.clone()),
        _ => {}
    }
    trips.sort();
    trips.dedup();
    trips
}

fn update(docs: &mut dyn Docs, stream: &StreamId, edit: impl FnOnce(&mut TripDoc)) -> Result<()> {
    let mut doc = get(docs, stream)?.unwrap_or_else(|| TripDoc {
        stream: stream.clone(),
        version: Version(0),
        last_position: Position(0),
        travelers: Vec::new(),
    });
    edit(&mut doc);
    put_json(docs, doc_key(stream), &doc);
    Ok(())
}

impl Projection for Trips {
    fn name(&self) -> &'static str {
        "trips"
    }

    fn version(&self) -> u32 {
        // 2: the document keeps the travelers of the announcements.
        // 3: the facts are entries of their own, not a list in the document.
        // 4: the retracted facts are entries too; a stop called off and added again
        //    is back on the plan, not a second stop; the status follows `occurred`.
        4
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        let event = change.event;
        if event.stream.category() == "trip" {
            update(docs, &event.stream, |doc| {
                doc.version = event.version;
                doc.last_position = event.position;
            })?;
        }
        let before = change.before.map(|f| (f, f.typed()));
        let after = change.after.map(|f| (f, f.typed()));
        let before_trips = before
            .as_ref()
            .map_or_else(Vec::new, |(f, t)| trips_of(f, t));
        let after_trips = after
            .as_ref()
            .map_or_else(Vec::new, |(f, t)| trips_of(f, t));
        if let Some((fact, typed)) = &before {
            let announced = matches!(typed, Some(EventData::TripAnnounced(_)));
            for trip in &before_trips {
                if !after_trips.contains(trip) {
                    FACTS.remove(docs, trip, fact);
                    if after.is_none() {
                        RETRACTED.add(docs, trip, fact, true);
                    }
                }
                if announced {
                    update(docs, trip, |doc| {
                        doc.travelers.retain(|(_, id, _)| *id != fact.id);
                    })?;
                }
            }
        }
        if let Some((fact, typed)) = &after {
            for trip in &after_trips {
                if !before_trips.contains(trip) {
                    FACTS.add(docs, trip, fact, before.is_none());
                }
                match typed {
                    Some(EventData::TripAnnounced(a)) => update(docs, trip, |doc| {
                        if !doc.travelers.iter().any(|(_, id, _)| *id == fact.id) {
                            doc.travelers
                                .push((fact.position, fact.id, a.traveler.clone()));
                            doc.travelers.sort();
                        }
                    })?,
                    // A trip only statements are about has a document too.
                    _ if event.stream != *trip && get(docs, trip)?.is_none() => {
                        update(docs, trip, |_| {})?
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Where a trip stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TripStatus {
    /// Only statements about it are known.
    Reported,
    Announced,
    Underway,
    Completed,
    Postponed,
    Cancelled,
}

impl TripStatus {
    /// The status as a word (`underway`).
    pub fn as_str(self) -> &'static str {
        match self {
            TripStatus::Reported => "reported",
            TripStatus::Announced => "announced",
            TripStatus::Underway => "underway",
            TripStatus::Completed => "completed",
            TripStatus::Postponed => "postponed",
            TripStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a stop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopStatus {
    Planned,
    Visited,
    Cancelled,
}

/// One agenda topic of a stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgendaItem {
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who takes part, beside the traveler.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<EntityId>,
    /// When it is to be discussed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Extent>,
}

/// A meeting held at a stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub with: Vec<EntityId>,
    pub topic: Option<String>,
    pub occurred: Option<Extent>,
}

/// One stop of a trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    pub place: EntityId,
    pub city: Option<String>,
    pub dates: Option<Extent>,
    pub status: StopStatus,
    pub arrived: Option<Extent>,
    pub departed: Option<Extent>,
    pub cancel_reason: Option<String>,
    pub agenda: Vec<AgendaItem>,
    pub meetings: Vec<Meeting>,
    /// Meetings expected, not yet held; `occurred` is when they are to take place.
    #[serde(default)]
    pub planned_meetings: Vec<Meeting>,
    /// While [`fold`] runs: the arrivals, departures, cancellations and re-plans of this
    /// stop, each with when it happened, from which its status is worked out at the end
    /// ([`Stop::settle`]). Empty in a view.
    #[serde(skip)]
    steps: Vec<(Option<Extent>, StopStep)>,
    /// Whether the plan has it called off: a `trip.stop_cancelled` since it was last
    /// planned, whatever was reported at it since. A stop called off is put back on the
    /// plan by a `trip.stop_added` of it ([`add_stop`]); the store's rules, which fold
    /// only the plan, decide the same from it.
    #[serde(skip)]
    called_off: bool,
}

/// What an event at a stop says of it.
#[derive(Debug, Clone, PartialEq)]
enum StopStep {
    Visited,
    Cancelled(Option<String>),
    Planned,
}

impl Stop {
    /// Whether this stop is the one at `place` with `city`: the same place, and the same
    /// city (compared as a reader would: case and outer spaces aside) or neither has one.
    pub fn is_at(&self, place: &EntityId, city: Option<&str>) -> bool {
        self.place == *place
            && match (self.city.as_deref(), city) {
                (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
                (a, b) => a.is_none() && b.is_none(),
            }
    }

    /// A stop as first planned: no arrival, departure or cancellation yet.
    pub fn planned(place: EntityId, city: Option<String>, dates: Option<Extent>) -> Stop {
        Stop {
            place,
            city,
            dates,
            status: StopStatus::Planned,
            arrived: None,
            departed: None,
            cancel_reason: None,
            agenda: Vec::new(),
            meetings: Vec::new(),
            planned_meetings: Vec::new(),
            steps: Vec::new(),
            called_off: false,
        }
    }

    /// Whether the plan has this stop called off (see the field).
    pub fn called_off(&self) -> bool {
        self.called_off
    }

    /// The stop's status from its arrivals, departures, cancellations and re-plans in
    /// the order they happened (a cancellation reported late of a stop visited since
    /// leaves it visited); the reason stays only on a stop that stands cancelled.
    fn settle(&mut self) {
        let steps = std::mem::take(&mut self.steps);
        let last = happened_in_order(steps.iter().map(|(at, step)| (at.as_ref(), step))).pop();
        (self.status, self.cancel_reason) = match last {
            Some(StopStep::Visited) => (StopStatus::Visited, None),
            Some(StopStep::Cancelled(reason)) => (StopStatus::Cancelled, reason.clone()),
            Some(StopStep::Planned) | None => (StopStatus::Planned, None),
        };
    }
}

/// Items in the order they happened, not the order they were filed: an item goes after
/// every item that happened wholly before it (its extent over before the other's
/// began), and otherwise in filing order, the first filed first of those free to go.
/// Items whose extents overlap (a month and a day in it, a day and a time that day), or
/// with no extent, keep filing order among themselves, without holding others back: a
/// cancellation of March 2 reported after an arrival of March 15 and a departure dated
/// only "March" goes before the arrival.
fn happened_in_order<'a, T>(items: impl Iterator<Item = (Option<&'a Extent>, T)>) -> Vec<T> {
    let mut items: Vec<(Option<&Extent>, Option<T>)> =
        items.map(|(at, item)| (at, Some(item))).collect();
    // `a` happened wholly before `b`. An instant (earliest = latest) is not before
    // itself or an equal one, so the relation has no cycle.
    let before = |a: Option<&Extent>, b: Option<&Extent>| matches!((a, b), (Some(a), Some(b)) if a.latest() <= b.earliest() && a.earliest() < b.earliest());
    let n = items.len();
    let mut waiting: Vec<usize> = (0..n)
        .map(|i| (0..n).filter(|&j| before(items[j].0, items[i].0)).count())
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        out.extend(items[i].1.take());
        for k in 0..n {
            if items[k].1.is_some() && before(items[i].0, items[k].0) {
                waiting[k] -= 1;
                if waiting[k] == 0 {
                    ready.insert(k);
                }
            }
        }
    }
    out
}

/// The planned return of a trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedReturn {
    pub to: EntityId,
    pub reason: Option<String>,
    pub related: Option<StreamId>,
    pub occurred: Option<Extent>,
}

/// A statement about a trip or a sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub id: Uuid,
    pub speaker: EntityId,
    pub stance: Stance,
    /// What it is about: entity ids and stream ids.
    #[serde(default)]
    pub about: Vec<StreamId>,
    pub summary: String,
    /// The statement's own words (`quote`), else its source's excerpt.
    pub quote: Option<String>,
    pub occurred: Option<Extent>,
    pub corrected: bool,
}

impl Statement {
    /// The statement in a fact, if it is one.
    pub fn from_fact(fact: &Fact) -> Option<Statement> {
        match fact.typed()? {
            EventData::StatementIssued(s) => Some(Statement {
                id: fact.id,
                speaker: s.speaker,
                stance: s.stance,
                about: s.about,
                summary: s.summary,
                quote: s
                    .quote
                    .or_else(|| fact.source.as_ref().and_then(|s| s.quote.clone())),
                occurred: fact.occurred,
                corrected: fact.corrected(),
            }),
            _ => None,
        }
    }
}

/// A trip as its current facts describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripView {
    pub stream: StreamId,
    pub traveler: Option<EntityId>,
    pub role: Option<EntityId>,
    pub title: Option<String>,
    pub purpose: Option<String>,
    pub status: TripStatus,
    /// When it is to start, as announced (or postponed to).
    pub starts: Option<Extent>,
    /// When it started, as a `trip.started` reported it (the last one filed).
    pub started: Option<Extent>,
    pub stops: Vec<Stop>,
    pub planned_return: Option<PlannedReturn>,
    pub statements: Vec<Statement>,
    /// Distinct sources across every current fact of the trip: one article is one
    /// source however many facts it gave.
    pub sources: usize,
    /// Whether any of its facts was corrected.
    pub corrected: bool,
    /// The corrections of its facts, in the facts' order: the type of the fact
    /// corrected, why, and each value before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<FactCorrection>,
    pub version: Version,
    pub last_position: Position,
}

/// What the fold knows of a registered place (`place:seoul`): its names and its
/// country, to find the stop it is.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceInfo {
    /// Its name and aliases.
    pub names: Vec<String>,
    pub country: Option<EntityId>,
}

/// What a place's own current facts (its `entity.registered` and `entity.alias_added`,
/// in order, retracted ones skipped) say of it, as the entity registry folds them;
/// `None` when it is not registered.
pub fn place_info(own: &[Fact]) -> Option<PlaceInfo> {
    let mut info: Option<PlaceInfo> = None;
    let mut aliases = Vec::new();
    for fact in own.iter().filter(|f| !f.retracted) {
        match fact.typed() {
            Some(EventData::EntityRegistered(r)) => {
                let mut names = vec![r.name];
                names.extend(r.aliases);
                info = Some(PlaceInfo {
                    names,
                    country: r.country,
                });
            }
            Some(EventData::EntityAliasAdded(a)) => aliases.push(a.alias),
            _ => {}
        }
    }
    info.map(|mut info| {
        info.names.extend(aliases);
        info
    })
}

/// The place a trip fact happens at, for the facts that need it to be a stop of the
/// trip: arrivals, departures, meetings held or planned, agenda items, a stop's
/// cancellation.
pub fn at_stop(data: &EventData) -> Option<&EntityId> {
    match data {
        EventData::TripArrived(a) | EventData::TripDeparted(a) => Some(&a.place),
        EventData::TripMeetingHeld(m) => Some(&m.place),
        EventData::TripMeetingPlanned(m) => Some(&m.place),
        EventData::TripAgendaItemAdded(a) => Some(&a.place),
        EventData::TripStopCancelled(s) => Some(&s.place),
        _ => None,
    }
}

/// What a `trip.stop_added` did to the stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new stop, at this index.
    New(usize),
    /// The stop at this index, called off, is planned again.
    BackOn(usize),
}

/// Adds the stop a `trip.stop_added` (of `occurred`) plans: after the stop its `after`
/// names ([`stop_index`]), else last; or, when the plan has that very stop (its place
/// and city) called off, puts it back on the plan, with its new dates if any.
pub fn add_stop(
    stops: &mut Vec<Stop>,
    added: TripStopAdded,
    occurred: Option<Extent>,
    places: &dyn Fn(&EntityId) -> Option<PlaceInfo>,
) -> Added {
    let called_off =
        (stops.iter()).position(|s| s.called_off && s.is_at(&added.place, added.city.as_deref()));
    if let Some(i) = called_off {
        let stop = &mut stops[i];
        stop.called_off = false;
        // Planned again from then on; [`fold`] settles its status among its steps.
        (stop.status, stop.cancel_reason) = (StopStatus::Planned, None);
        stop.steps.push((occurred, StopStep::Planned));
        stop.dates = added.dates.or(stop.dates);
        return Added::BackOn(i);
    }
    let at = (added.after)
        .and_then(|after| stop_index(stops, &after, places))
        .map_or(stops.len(), |i| i + 1);
    stops.insert(at, Stop::planned(added.place, added.city, added.dates));
    Added::New(at)
}

/// A stop as a person reads it, with the id that names it: `Seoul (country:KR)`,
/// `South Korea (country:KR)`, `Jerusalem (place:jerusalem, called off)`. "Called off"
/// is the plan's word ([`Stop::called_off`]), not the stop's status: the store's rules
/// use these labels, and they know the plan, not the arrivals that may show the stop
/// visited after all.
pub fn stop_label(stop: &Stop, places: &dyn Fn(&EntityId) -> Option<PlaceInfo>) -> String {
    let name = stop
        .city
        .clone()
        .or_else(|| places(&stop.place).and_then(|i| i.names.into_iter().next()))
        .or_else(|| stop.place.country_name().map(str::to_owned))
        .unwrap_or_else(|| stop.place.to_string());
    let called_off = if stop.called_off() {
        ", called off"
    } else {
        ""
    };
    format!("{name} ({}{called_off})", stop.place)
}

/// The stop a place names: the stop of that very place; else, for a registered place,
/// the stop in its country whose city has its name or an alias (`place:jerusalem` is
/// the stop `country:IL`, "Jerusalem"); else, for a country, the one stop at a place in
/// that country, when there is exactly one. Two stops in one country are told apart by
/// their places (or cities), never merged. The store's rules use it too, to refuse an
/// event at a place that is no stop of its trip.
pub fn stop_index(
    stops: &[Stop],
    place: &EntityId,
    places: &dyn Fn(&EntityId) -> Option<PlaceInfo>,
) -> Option<usize> {
    if let Some(i) = stops.iter().position(|s| &s.place == place) {
        return Some(i);
    }
    if let Some(info) = places(place).filter(|_| !place.is_country()) {
        let named = |city: &Option<String>| {
            city.as_deref().is_some_and(|c| {
                info.names
                    .iter()
                    .any(|n| n.trim().eq_ignore_ascii_case(c.trim()))
            })
        };
        return stops
            .iter()
            .position(|s| Some(&s.place) == info.country.as_ref() && named(&s.city));
    }
    if place.is_country() {
        let in_country: Vec<usize> = stops
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                !s.place.is_country()
                    && places(&s.place).and_then(|i| i.country).as_ref() == Some(place)
            })
            .map(|(i, _)| i)
            .collect();
        if let [one] = in_country[..] {
            return Some(one);
        }
    }
    None
}

/// Where a stop of a folded trip comes from: the `i`-th stop an announcement listed (or
/// a `trip.stop_added`, `i` 0) that first planned it, or an event at a place no stop
/// stood for (logs written before the stop rule may hold such events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOrigin {
    Planned(Uuid, usize),
    Unplanned(Uuid),
}

/// A trip's view with where its facts landed: the fold matches each event at a place
/// to a stop as the plan stands when the event comes (in position order), so an event
/// stays at the stop it was filed at when a later stop is added.
#[derive(Debug, Clone)]
pub struct Folded {
    pub view: TripView,
    /// Where each of `view.stops` comes from.
    pub origins: Vec<StopOrigin>,
    /// Whether each of `view.stops` is in the plan: planned by an announcement or a
    /// `trip.stop_added`, or an event's stop a later announcement listed.
    pub planned: Vec<bool>,
    /// Each event at a place (arrivals, departures, meetings, agenda items, a stop's
    /// cancellation) and the index in `view.stops` of the stop it landed on.
    pub landed: Vec<(Uuid, usize)>,
}

/// Folds a trip's current facts (in position order) into its view, with `places`
/// telling what a registered place is (see [`stop_index`]). Pure.
pub fn view(
    doc: &TripDoc,
    facts: &[Fact],
    places: &dyn Fn(&EntityId) -> Option<PlaceInfo>,
) -> TripView {
    fold(doc, facts, places).view
}

/// A trip's status, from the facts that change it taken in the order they happened
/// ([`happened_in_order`]), not the order they were filed: a late report of the trip's
/// start does not take a completed trip back to under way.
fn status(facts: &[Fact]) -> TripStatus {
    let current = facts
        .iter()
        .filter(|f| !f.retracted && f.stream.category() == "trip")
        .filter_map(|f| Some((Some(f.occurred.as_ref()?), f.event_type)));
    let mut status = TripStatus::Reported;
    for event_type in happened_in_order(current) {
        status = match (event_type, status) {
            (EventType::TripAnnounced, TripStatus::Reported) => TripStatus::Announced,
            (EventType::TripStarted, _) => TripStatus::Underway,
            (EventType::TripCompleted, _) => TripStatus::Completed,
            // An arrival, a departure or a meeting shows the trip under way, unless it
            // was already done with.
            (
                EventType::TripArrived | EventType::TripDeparted | EventType::TripMeetingHeld,
                TripStatus::Announced | TripStatus::Reported | TripStatus::Postponed,
            ) => TripStatus::Underway,
            (EventType::TripPostponed, _) => TripStatus::Postponed,
            (EventType::TripCancelled, _) => TripStatus::Cancelled,
            (_, unchanged) => unchanged,
        };
    }
    status
}

/// [`view`], with where each stop comes from and where each event at a place landed.
pub fn fold(
    doc: &TripDoc,
    facts: &[Fact],
    places: &dyn Fn(&EntityId) -> Option<PlaceInfo>,
) -> Folded {
    // `origins[i]` is where `trip.stops[i]` comes from; `landed` holds origins until
    // the end, as later stops shift the indexes.
    let mut origins: Vec<StopOrigin> = Vec::new();
    let mut landed: Vec<(Uuid, StopOrigin)> = Vec::new();
    // The stops announcements listed (which plans an event's stop listed later).
    let mut listed: Vec<StopOrigin> = Vec::new();
    let mut trip = TripView {
        stream: doc.stream.clone(),
        traveler: None,
        role: None,
        title: None,
        purpose: None,
        status: TripStatus::Reported,
        starts: None,
        started: None,
        stops: Vec::new(),
        planned_return: None,
        statements: Vec::new(),
        sources: 0,
        corrected: false,
        corrections: Vec::new(),
        version: doc.version,
        last_position: doc.last_position,
    };
    trip.sources = super::facts::distinct_sources(facts.iter().flat_map(Fact::all_sources));
    for fact in facts {
        trip.corrected |= fact.corrected();
        trip.corrections
            .extend(fact.corrections.iter().map(|c| FactCorrection {
                id: fact.id,
                event_type: fact.event_type,
                correction: c.clone(),
            }));
        if let Some(statement) = Statement::from_fact(fact) {
            trip.statements.push(statement);
            continue;
        }
        let Some(data) = fact.typed() else { continue };
        let stop_for = |trip: &mut TripView,
                        origins: &mut Vec<StopOrigin>,
                        place: &EntityId,
                        origin: StopOrigin|
         -> usize {
            stop_index(&trip.stops, place, places).unwrap_or_else(|| {
                trip.stops.push(Stop::planned(place.clone(), None, None));
                origins.push(origin);
                trip.stops.len() - 1
            })
        };
        // The stop of an event at a place. One the itinerary did not have is added: the
        // store refuses such events now (`store::rules`), but logs written before it
        // may hold them.
        let mut stop_mut = |trip: &mut TripView, place: &EntityId| -> usize {
            let i = stop_for(trip, &mut origins, place, StopOrigin::Unplanned(fact.id));
            landed.push((fact.id, origins[i]));
            i
        };
        match data {
            EventData::TripAnnounced(a) => {
                trip.traveler = Some(a.traveler);
                trip.role = a.role.or(trip.role.take());
                trip.title = a.title.or(trip.title.take());
                trip.purpose = a.purpose.or(trip.purpose.take());
                trip.starts = a.starts.or(trip.starts);
                for (k, planned) in a.stops.into_iter().enumerate() {
                    let origin = StopOrigin::Planned(fact.id, k);
                    // A stop with a city is the stop of that place with that city (or
                    // none yet): two cities of one country are two stops.
                    let same_city = |s: &Stop| {
                        s.place == planned.place
                            && match (&s.city, &planned.city) {
                                (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
                                _ => true,
                            }
                    };
                    let i = match (trip.stops.iter().position(same_city), &planned.city) {
                        (Some(i), _) => i,
                        (None, None) => stop_for(&mut trip, &mut origins, &planned.place, origin),
                        // Else a registered place of that name there (`place:seoul`
                        // stands for `country:KR`, "Seoul"), or a new stop.
                        (None, Some(city)) => stop_index(&trip.stops, &planned.place, places)
                            .filter(|i| {
                                let stop = &trip.stops[*i];
                                stop.place != planned.place
                                    && places(&stop.place).is_some_and(|info| {
                                        info.names
                                            .iter()
                                            .any(|n| n.trim().eq_ignore_ascii_case(city.trim()))
                                    })
                            })
                            .unwrap_or_else(|| {
                                trip.stops
                                    .push(Stop::planned(planned.place.clone(), None, None));
                                origins.push(origin);
                                trip.stops.len() - 1
                            }),
                    };
                    listed.push(origins[i]);
                    let stop = &mut trip.stops[i];
                    stop.city = planned.city.or(stop.city.take());
                    stop.dates = planned.dates.or(stop.dates);
                    for topic in planned.agenda.unwrap_or_default() {
                        stop.agenda.push(AgendaItem {
                            topic,
                            detail: None,
                            participants: Vec::new(),
                            dates: None,
                        });
                    }
                }
            }
            EventData::TripStopAdded(s) => {
                if let Added::New(at) = add_stop(&mut trip.stops, s, fact.occurred, places) {
                    origins.insert(at, StopOrigin::Planned(fact.id, 0));
                }
            }
            EventData::TripStopCancelled(s) => {
                let i = stop_mut(&mut trip, &s.place);
                trip.stops[i].called_off = true;
                (trip.stops[i].steps).push((fact.occurred, StopStep::Cancelled(s.reason)));
            }
            EventData::TripAgendaItemAdded(a) => {
                let i = stop_mut(&mut trip, &a.place);
                trip.stops[i].agenda.push(AgendaItem {
                    topic: a.topic,
                    detail: a.detail,
                    participants: a.participants.unwrap_or_default(),
                    dates: a.dates,
                });
            }
            EventData::TripMeetingHeld(m) => {
                let i = stop_mut(&mut trip, &m.place);
                trip.stops[i].meetings.push(Meeting {
                    with: m.with,
                    topic: m.topic,
                    occurred: fact.occurred,
                });
            }
            EventData::TripMeetingPlanned(m) => {
                let i = stop_mut(&mut trip, &m.place);
                trip.stops[i].planned_meetings.push(Meeting {
                    with: m.with,
                    topic: m.topic,
                    occurred: m.dates,
                });
            }
            EventData::TripArrived(a) => {
                let i = stop_mut(&mut trip, &a.place);
                trip.stops[i].arrived = fact.occurred;
                (trip.stops[i].steps).push((fact.occurred, StopStep::Visited));
            }
            EventData::TripDeparted(d) => {
                let i = stop_mut(&mut trip, &d.place);
                trip.stops[i].departed = fact.occurred;
                (trip.stops[i].steps).push((fact.occurred, StopStep::Visited));
            }
            EventData::TripPostponed(p) => trip.starts = p.starts.or(trip.starts),
            EventData::TripStarted(_) => trip.started = fact.occurred.or(trip.started),
            EventData::TripReturnPlanned(r) => {
                trip.planned_return = Some(PlannedReturn {
                    to: r.to,
                    reason: r.reason,
                    related: r.related,
                    occurred: fact.occurred,
                });
            }
            _ => {}
        }
    }
    trip.stops.iter_mut().for_each(Stop::settle);
    trip.status = status(facts);
    let landed = landed
        .into_iter()
        .filter_map(|(id, origin)| Some((id, origins.iter().position(|o| *o == origin)?)))
        .collect();
    let planned = origins
        .iter()
        .map(|o| matches!(o, StopOrigin::Planned(..)) || listed.contains(o))
        .collect();
    Folded {
        view: trip,
        origins,
        planned,
        landed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, parse_event_value};
    use serde_json::{Value, json};

    /// The stops of a trip whose facts are these events, with Seoul a registered place.
    fn stops(events: &[Value]) -> Vec<(String, Option<String>)> {
        trip(events)
            .stops
            .into_iter()
            .map(|s| (s.place.to_string(), s.city))
            .collect()
    }

    /// The view of a trip whose facts are these events, with Seoul a registered place.
    fn trip(events: &[Value]) -> TripView {
        let recorded: Vec<_> = events
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut v = v.clone();
                v["stream"] = json!("trip:t");
                let position = Position(i as u64 + 1);
                parse_event_value(v, Origin::New).unwrap().into_recorded(
                    Uuid::now_v7(),
                    position,
                    Version(position.0),
                    chrono::Utc::now(),
                )
            })
            .collect();
        let facts = super::super::facts::fold(&recorded);
        let doc = TripDoc {
            stream: StreamId::parse("trip:t").unwrap(),
            version: Version(0),
            last_position: Position(0),
            travelers: Vec::new(),
        };
        let places = |p: &EntityId| {
            (p.as_str() == "place:seoul").then(|| PlaceInfo {
                names: vec!["Seoul".into()],
                country: EntityId::parse("country:KR").ok(),
            })
        };
        view(&doc, &facts, &places)
    }

    /// The status follows when things happened, not when they were filed.
    #[test]
    fn a_late_report_does_not_turn_the_status_back() {
        let status = |steps: &[(&str, &str)]| {
            let mut events = vec![announced(json!([{"place": "country:KR"}]))];
            for (ty, occurred) in steps {
                events.push(json!({"type": ty, "occurred": occurred, "data": {}}));
            }
            trip(&events).status
        };
        use TripStatus::*;
        let cases: [(&[(&str, &str)], TripStatus); 8] = [
            (
                &[
                    ("trip.completed", "2025-01-10"),
                    ("trip.started", "2025-01-05"),
                ],
                Completed,
            ),
            (
                &[
                    ("trip.started", "2025-01-05"),
                    ("trip.completed", "2025-01-10"),
                ],
                Completed,
            ),
            (
                &[
                    ("trip.started", "2025-01-05"),
                    ("trip.postponed", "2025-01-02"),
                ],
                Underway,
            ),
            (
                &[
                    ("trip.postponed", "2025-01-02"),
                    ("trip.started", "2025-01-05"),
                ],
                Underway,
            ),
            // Dates that overlap keep filing order: a month and a day in it, a day and
            // a time that day.
            (
                &[
                    ("trip.started", "2025-01"),
                    ("trip.completed", "2025-01-10"),
                ],
                Completed,
            ),
            (
                &[
                    ("trip.completed", "2025-01"),
                    ("trip.started", "2025-01-05"),
                ],
                Underway,
            ),
            (
                &[
                    ("trip.started", "2025-01-06"),
                    ("trip.completed", "2025-01-06T22:00:00Z"),
                ],
                Completed,
            ),
            (
                &[
                    ("trip.started", "2025-01-05"),
                    ("trip.cancelled", "2025-01-05"),
                ],
                Cancelled,
            ),
        ];
        for (steps, expected) in cases {
            assert_eq!(status(steps), expected, "{steps:?}");
        }
        // An arrival filed after the completion, dated before it, leaves it completed.
        let mut events = vec![announced(json!([{"place": "country:KR"}]))];
        events.push(json!({"type": "trip.completed", "occurred": "2025-01-10", "data": {}}));
        events.push(json!({"type": "trip.arrived", "occurred": "2025-01-05",
                           "data": {"place": "country:KR"}}));
        assert_eq!(trip(&events).status, Completed);
        assert_eq!(trip(&events[..1]).status, Announced);
        // A departure or a meeting, like an arrival, shows the trip under way.
        for ty in ["trip.arrived", "trip.departed", "trip.meeting_held"] {
            let mut data = json!({"place": "country:KR"});
            if ty == "trip.meeting_held" {
                data["with"] = json!(["country:KR"]);
            }
            let at = json!({"type": ty, "occurred": "2025-01-05", "data": data});
            assert_eq!(
                trip(&[events[0].clone(), at.clone()]).status,
                Underway,
                "{ty}"
            );
            let done = json!({"type": "trip.completed", "occurred": "2025-01-09", "data": {}});
            assert_eq!(
                trip(&[events[0].clone(), done, at]).status,
                Completed,
                "{ty}"
            );
        }
    }

    fn announced(stops: Value) -> Value {
        json!({"type": "trip.announced", "occurred": "2025-01-03",
               "data": {"traveler": "country:US", "stops": stops}})
    }

    /// When a trip started is the last `trip.started` filed, beside when it was to start.
    #[test]
    fn a_trip_keeps_when_it_started_beside_when_it_was_to() {
        let started =
            |occurred: &str| json!({"type": "trip.started", "occurred": occurred, "data": {}});
        let alone = trip(&[started("2025-01-05")]);
        assert_eq!(
            (alone.starts, alone.started.map(|s| s.to_string())),
            (None, Some("2025-01-05".into()))
        );
        let mut plan = announced(json!([{"place": "country:KR"}]));
        plan["data"]["starts"] = json!("2025-01-04");
        let late = trip(&[plan, started("2025-01-05"), started("2025-01-06")]);
        let text = |e: Option<Extent>| e.map(|e| e.to_string());
        assert_eq!(
            (text(late.starts), text(late.started)),
            (Some("2025-01-04".into()), Some("2025-01-06".into()))
        );
    }

    /// A trip's document does not grow with its facts: each is an entry of its own, so
    /// that a fact costs a key, not a rewrite of every fact before it.
    #[test]
    fn a_trip_of_many_facts_keeps_a_small_document() {
        let mut events = vec![announced(json!([{"place": "country:KR"}]))];
        for i in 0..500 {
            events.push(
                json!({"type": "trip.agenda_item_added", "occurred": "2025-01-04",
                               "data": {"place": "country:KR", "topic": format!("t{i}")}}),
            );
        }
        let recorded = events.into_iter().enumerate().map(|(i, mut v)| {
            v["stream"] = json!("trip:t");
            let position = Position(i as u64 + 1);
            Ok(parse_event_value(v, Origin::New).unwrap().into_recorded(
                Uuid::now_v7(),
                position,
                Version(position.0),
                chrono::Utc::now(),
            ))
        });
        let docs = crate::projection::runner::Runner::default()
            .fold(recorded)
            .unwrap();
        let stream = StreamId::parse("trip:t").unwrap();
        let doc = docs.map.get(&doc_key(&stream)).unwrap();
        assert!(doc.len() < 300, "{}", String::from_utf8_lossy(doc));
        let facts = FACTS.list(&docs, &stream).unwrap();
        assert_eq!(facts.len(), 501);
        assert_eq!(facts[500].0, Position(501));
    }

    #[test]
    fn an_announcement_keeps_two_cities_of_one_country_apart() {
        let city = |p: &str, c: &str| (p.to_owned(), Some(c.to_owned()));
        let two = announced(json!([{"place": "country:IL", "city": "Tel Aviv"},
                                   {"place": "country:IL", "city": "Jerusalem"}]));
        assert_eq!(
            stops(std::slice::from_ref(&two)),
            [
                city("country:IL", "Tel Aviv"),
                city("country:IL", "Jerusalem")
            ]
        );
        // Announced again, with a stop's city given for the first time: the same stops.
        let first = announced(json!([{"place": "country:IL"}]));
        assert_eq!(
            stops(&[first, two]),
            [
                city("country:IL", "Tel Aviv"),
                city("country:IL", "Jerusalem")
            ]
        );
        // A registered place stands for its city in its country; another city is new.
        let added = json!({"type": "trip.stop_added", "occurred": "2025-01-02", "data": {"place": "place:seoul"}});
        let korea = announced(json!([{"place": "country:KR", "city": "Seoul"},
                                     {"place": "country:KR", "city": "Busan"}]));
        assert_eq!(
            stops(&[added, korea]),
            [city("place:seoul", "Seoul"), city("country:KR", "Busan")]
        );
    }
}
