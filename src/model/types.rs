//! The event types of schema 1 and their typed data.
//!
//! Each type lives in one stream category ([`EventType::category_rule`]) and has a data
//! struct that accepts exactly its fields ([`super::fields`]), no more. [`EventData::parse`]
//! turns a JSON `data` object into the typed value and names the offending field
//! (`data.stops[1].place`) when it does not fit.

use super::event::Source;
use super::extent::Extent;
use super::ids::{EntityId, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Which streams a type may be appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryRule {
    /// The entity's own stream (`person:…`, `org:…`, `country:XX`, …).
    Entity,
    /// Streams of exactly this category.
    Exactly(&'static str),
    /// Any stream.
    Any,
    /// The stream of the target event (checked by the store, which knows the target).
    TargetStream,
}

macro_rules! event_types {
    ($($variant:ident => $name:literal, $rule:expr;)*) => {
        /// Every event type of schema 1.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),* }

        impl EventType {
            /// Every type, in the order `chronicle types` lists them.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The type's name as written in events (`trip.announced`).
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            /// Which streams the type may be appended to.
            pub fn category_rule(self) -> CategoryRule {
                match self { $(EventType::$variant => $rule),* }
            }
        }
    };
}

event_types! {
    EntityRegistered => "entity.registered", CategoryRule::Entity;
    EntityAliasAdded => "entity.alias_added", CategoryRule::Entity;
    TripAnnounced => "trip.announced", CategoryRule::Exactly("trip");
    TripStopAdded => "trip.stop_added", CategoryRule::Exactly("trip");
    TripStopCancelled => "trip.stop_cancelled", CategoryRule::Exactly("trip");
    TripAgendaItemAdded => "trip.agenda_item_added", CategoryRule::Exactly("trip");
    TripMeetingHeld => "trip.meeting_held", CategoryRule::Exactly("trip");
    TripStarted => "trip.started", CategoryRule::Exactly("trip");
    TripCompleted => "trip.completed", CategoryRule::Exactly("trip");
    TripArrived => "trip.arrived", CategoryRule::Exactly("trip");
    TripDeparted => "trip.departed", CategoryRule::Exactly("trip");
    TripPostponed => "trip.postponed", CategoryRule::Exactly("trip");
    TripCancelled => "trip.cancelled", CategoryRule::Exactly("trip");
    TripReturnPlanned => "trip.return_planned", CategoryRule::Exactly("trip");
    ArmsSaleAnnounced => "arms_sale.announced", CategoryRule::Exactly("arms-sale");
    AgreementReported => "agreement.reported", CategoryRule::Exactly("deal");
    TripMeetingPlanned => "trip.meeting_planned", CategoryRule::Exactly("trip");
    StatementIssued => "statement.issued", CategoryRule::Any;
    MartialLawDeclared => "martial_law.declared", CategoryRule::Any;
    OfficialImpeached => "official.impeached", CategoryRule::Any;
    FuneralScheduled => "funeral.scheduled", CategoryRule::Any;
    ConflictReported => "conflict.reported", CategoryRule::Any;
    NoteReported => "note.reported", CategoryRule::Any;
    EventCorrected => "event.corrected", CategoryRule::TargetStream;
    EventRetracted => "event.retracted", CategoryRule::TargetStream;
    EvidenceAdded => "evidence.added", CategoryRule::TargetStream;
}

impl EventType {
    /// Looks a type up by name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == name)
    }

    /// For a name that is no type, "did you mean `…`? " naming the closest type (at
    /// most three edits away), or nothing: the start of an unknown type's message.
    pub fn did_you_mean(name: &str) -> String {
        // No type is longer than 25 characters: a longer name is more than three
        // edits from all of them, and measuring it would cost its length squared.
        if name.len() > 40 {
            return String::new();
        }
        let name = name.to_lowercase();
        EventType::ALL
            .iter()
            .map(|t| (strsim::levenshtein(t.as_str(), &name), t))
            .min_by_key(|(distance, _)| *distance)
            .filter(|(distance, _)| *distance <= 3)
            .map(|(_, t)| format!("did you mean `{t}`? "))
            .unwrap_or_default()
    }

    /// The schema version of the type's data. Every type is at 1.
    pub fn schema(self) -> u32 {
        1
    }

    /// `entity.*` types have no `occurred`: every other type dates what it reports.
    pub fn needs_occurred(self) -> bool {
        self.category_rule() != CategoryRule::Entity
    }

    /// Whether a fact of this type is a line of the timeline: every dated fact, not a
    /// registration (undated) or an amendment (which changes the fact it amends).
    pub fn is_timeline_entry(self) -> bool {
        self.needs_occurred() && !self.is_amendment()
    }

    /// Amendments may leave out `occurred`: the store then records the day it accepts
    /// them (see `store::rules`).
    pub fn occurred_defaults_to_recorded(self) -> bool {
        self.is_amendment()
    }

    /// Corrections, retractions and evidence point at an earlier event.
    pub fn is_amendment(self) -> bool {
        self.category_rule() == CategoryRule::TargetStream
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `entity.registered`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRegistered {
    pub name: String,
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wikidata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `entity.alias_added`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityAliasAdded {
    pub alias: String,
}

/// One stop of a trip, as announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedStop {
    pub place: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Extent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agenda: Option<Vec<String>>,
}

/// `trip.announced`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripAnnounced {
    pub traveler: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<Extent>,
    pub stops: Vec<PlannedStop>,
}

/// `trip.stop_added`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripStopAdded {
    pub place: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Extent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EntityId>,
}

/// `trip.stop_cancelled`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripStopCancelled {
    pub place: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `trip.agenda_item_added`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripAgendaItemAdded {
    pub place: EntityId,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Who takes part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<EntityId>>,
    /// When it is to be discussed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Extent>,
}

/// `trip.meeting_planned`: a meeting expected at a stop, not yet held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripMeetingPlanned {
    pub place: EntityId,
    pub with: Vec<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Extent>,
}

/// `trip.meeting_held`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripMeetingHeld {
    pub place: EntityId,
    pub with: Vec<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// Data of types that carry none (`trip.started`, `trip.completed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoData {}

/// `trip.arrived` / `trip.departed`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtPlace {
    pub place: EntityId,
}

/// `trip.postponed`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripPostponed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<Extent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `trip.cancelled`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripCancelled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `trip.return_planned`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripReturnPlanned {
    pub to: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<StreamId>,
}

/// The smallest amount of money an event may state: one hundredth of a unit, the minor
/// unit of most currencies. Smaller positive numbers (down to `5e-324`) are not sums of
/// money, and would show as `0`.
pub const MIN_AMOUNT: f64 = 0.01;

/// The largest amount of money an event may state: 10^15 (a thousand trillion), beyond
/// any arms sale on record by orders of magnitude. With every amount at most this, a
/// total of up to 10^290 sales stays finite, and totals of whole amounts are exact while
/// they stay below 2^53 (about 9.007 × 10^15).
pub const MAX_AMOUNT: f64 = 1e15;

/// A sum of money in an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    #[serde(serialize_with = "serialize_amount")]
    pub amount: f64,
    pub currency: String,
}

/// Writes a whole amount as an integer (`3640000000`, not `3640000000.0`), as it was
/// most likely written.
pub fn serialize_amount<S: serde::Serializer>(amount: &f64, s: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact.
    if amount.fract() == 0.0 && amount.abs() < EXACT {
        // The check above makes the conversion exact.
        #[allow(clippy::cast_possible_truncation)]
        return s.serialize_i64(*amount as i64);
    }
    s.serialize_f64(*amount)
}

/// `arms_sale.announced`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmsSaleAnnounced {
    pub seller: EntityId,
    pub buyer: EntityId,
    pub value: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate: Option<bool>,
    pub items: Vec<String>,
    /// Who announced it, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_by: Option<EntityId>,
}

/// Where an agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Proposed,
    LetterOfIntent,
    Signed,
    InForce,
    Cancelled,
}

impl AgreementStatus {
    /// Every status, in the order an agreement goes through them.
    pub const ALL: [AgreementStatus; 5] = [
        AgreementStatus::Proposed,
        AgreementStatus::LetterOfIntent,
        AgreementStatus::Signed,
        AgreementStatus::InForce,
        AgreementStatus::Cancelled,
    ];

    /// The status as written in events (`letter_of_intent`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementStatus::Proposed => "proposed",
            AgreementStatus::LetterOfIntent => "letter_of_intent",
            AgreementStatus::Signed => "signed",
            AgreementStatus::InForce => "in_force",
            AgreementStatus::Cancelled => "cancelled",
        }
    }

    /// The status in words ("a letter of intent").
    pub fn words(self) -> &'static str {
        match self {
            AgreementStatus::Proposed => "proposed",
            AgreementStatus::LetterOfIntent => "agreed in a letter of intent",
            AgreementStatus::Signed => "signed",
            AgreementStatus::InForce => "in force",
            AgreementStatus::Cancelled => "cancelled",
        }
    }
}

/// `agreement.reported`: a deal or agreement other than an arms sale (an investment,
/// a trade deal, a memorandum), with its parties and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementReported {
    pub parties: Vec<EntityId>,
    /// What kind of agreement, in the source's words ("investment deal").
    pub kind: String,
    pub status: AgreementStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_by: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// A speaker's position on what a statement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    Supports,
    Opposes,
    Rejects,
    Neutral,
}

impl Stance {
    /// The stance as written in events (`opposes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stance::Supports => "supports",
            Stance::Opposes => "opposes",
            Stance::Rejects => "rejects",
            Stance::Neutral => "neutral",
        }
    }
}

/// `statement.issued`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementIssued {
    pub speaker: EntityId,
    pub stance: Stance,
    /// Entity ids or stream ids.
    pub about: Vec<StreamId>,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `martial_law.declared`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MartialLawDeclared {
    pub by: EntityId,
    pub country: EntityId,
}

/// `official.impeached`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficialImpeached {
    pub official: EntityId,
    pub office: EntityId,
    pub country: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// `funeral.scheduled`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuneralScheduled {
    pub person: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<EntityId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<EntityId>,
}

/// `conflict.reported`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictReported {
    pub parties: Vec<EntityId>,
    pub summary: String,
}

/// `note.reported`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteReported {
    pub summary: String,
    pub entities: Vec<EntityId>,
}

/// `event.corrected`: `data` is a JSON merge patch (RFC 7396, [`super::patch`]) of the
/// target's current data, naming only the fields that change; `occurred` replaces the
/// target's extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCorrected {
    pub target: Uuid,
    /// The changed fields; `null` removes an optional field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// The corrected extent of the target (not when the correction was made: that is
    /// the correction event's own `occurred`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<Extent>,
    pub reason: String,
}

/// `event.retracted`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRetracted {
    pub target: Uuid,
    pub reason: String,
}

/// `evidence.added`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceAdded {
    pub target: Uuid,
    pub source: Source,
}

/// The typed data of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    EntityRegistered(EntityRegistered),
    EntityAliasAdded(EntityAliasAdded),
    TripAnnounced(TripAnnounced),
    TripStopAdded(TripStopAdded),
    TripStopCancelled(TripStopCancelled),
    TripAgendaItemAdded(TripAgendaItemAdded),
    TripMeetingHeld(TripMeetingHeld),
    TripMeetingPlanned(TripMeetingPlanned),
    TripStarted(NoData),
    TripCompleted(NoData),
    TripArrived(AtPlace),
    TripDeparted(AtPlace),
    TripPostponed(TripPostponed),
    TripCancelled(TripCancelled),
    TripReturnPlanned(TripReturnPlanned),
    ArmsSaleAnnounced(ArmsSaleAnnounced),
    AgreementReported(AgreementReported),
    StatementIssued(StatementIssued),
    MartialLawDeclared(MartialLawDeclared),
    OfficialImpeached(OfficialImpeached),
    FuneralScheduled(FuneralScheduled),
    ConflictReported(ConflictReported),
    NoteReported(NoteReported),
    EventCorrected(EventCorrected),
    EventRetracted(EventRetracted),
    EvidenceAdded(EvidenceAdded),
}

/// Why a `data` object does not fit its type: the path of the field and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    /// Path below `data`, such as `stops[1].place`; empty for `data` itself.
    pub path: String,
    pub message: String,
}

fn typed<T: serde::de::DeserializeOwned>(data: &Value) -> Result<T, DataError> {
    // Data that fits, the common case (every event the projector folds), is read
    // without tracking the path; only an error is read again to name the field.
    T::deserialize(data).or_else(|_| {
        serde_path_to_error::deserialize(data).map_err(|e| {
            let (path, message) = explain(e);
            DataError { path, message }
        })
    })
}

/// The path and a readable message of a serde error: a missing field is named in the
/// path, and Rust type names become the JSON a writer should give.
pub(crate) fn explain(e: serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let mut path = e.path().to_string();
    if path == "." {
        path.clear();
    }
    let mut message = e.into_inner().to_string();
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        path = if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        message = match field {
            "aliases" => {
                "`aliases` is missing; this field is required (give [] for none)".to_owned()
            }
            _ => format!("`{field}` is missing; this field is required"),
        };
    }
    for (rust, json) in [
        ("struct NoData", "an empty object {}"),
        ("f64", "a number"),
        ("u64", "a whole number, 0 or more"),
        ("u32", "a whole number, 0 or more"),
        ("a string", "a string"),
    ] {
        message = message.replace(&format!("expected {rust}"), &format!("expected {json}"));
    }
    if let Some(start) = message.find("expected struct ") {
        // "expected struct Money" and the like: the writer needs an object there.
        let end = message[start + 16..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(message.len(), |i| start + 16 + i);
        message.replace_range(start..end, "expected a JSON object");
    }
    if message.starts_with("UUID parsing failed") {
        // uuid's own words name the fault; the next step is ours.
        message.push_str("; give a UUID like 0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70");
        if path == "id" {
            message.push_str(", or leave `id` out and one is made");
        }
    }
    (path, message)
}

/// Serde's derived structs also accept an array of their fields in order; events must
/// be written with named fields, so every place a struct goes must hold an object.
fn require_objects(ty: EventType, data: &Value) -> Result<(), DataError> {
    let object = |path: &str, v: &Value| {
        if v.is_object() {
            Ok(())
        } else {
            Err(DataError {
                path: path.to_owned(),
                message: format!("expected a JSON object, found {}", json_kind(v)),
            })
        }
    };
    object("", data)?;
    match ty {
        EventType::TripAnnounced => {
            if let Some(Value::Array(stops)) = data.get("stops") {
                for (i, stop) in stops.iter().enumerate() {
                    object(&format!("stops[{i}]"), stop)?;
                }
            }
        }
        EventType::ArmsSaleAnnounced | EventType::AgreementReported => {
            if let Some(value) = data.get("value").filter(|v| !v.is_null()) {
                object("value", value)?;
            }
        }
        EventType::EvidenceAdded => {
            if let Some(source) = data.get("source") {
                object("source", source)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A sum of money is in an ISO 4217 currency and within the amounts an event may state.
fn check_money(value: &Money) -> Result<(), DataError> {
    let fail = |path: &str, message: &str| {
        Err(DataError {
            path: path.to_owned(),
            message: message.to_owned(),
        })
    };
    let c = &value.currency;
    if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        let expected = "expected an ISO 4217 currency code in capitals, like USD";
        match super::currencies::closest(c) {
            Some(meant) => fail(
                "value.currency",
                &format!("{expected}; did you mean {meant}?"),
            ),
            None => fail("value.currency", expected),
        }
    } else if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&value.amount) {
        fail(
            "value.amount",
            "expected an amount from 0.01 to 1000000000000000 (10^15)",
        )
    } else {
        Ok(())
    }
}

/// What kind of JSON value this is, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl EventData {
    /// Parses `data` as the data of `ty`.
    pub fn parse(ty: EventType, data: &Value) -> Result<EventData, DataError> {
        use EventData as D;
        use EventType as T;
        require_objects(ty, data)?;
        let parsed = match ty {
            T::EntityRegistered => D::EntityRegistered(typed(data)?),
            T::EntityAliasAdded => D::EntityAliasAdded(typed(data)?),
            T::TripAnnounced => D::TripAnnounced(typed(data)?),
            T::TripStopAdded => D::TripStopAdded(typed(data)?),
            T::TripStopCancelled => D::TripStopCancelled(typed(data)?),
            T::TripAgendaItemAdded => D::TripAgendaItemAdded(typed(data)?),
            T::TripMeetingHeld => D::TripMeetingHeld(typed(data)?),
            T::TripMeetingPlanned => D::TripMeetingPlanned(typed(data)?),
            T::TripStarted => D::TripStarted(typed(data)?),
            T::TripCompleted => D::TripCompleted(typed(data)?),
            T::TripArrived => D::TripArrived(typed(data)?),
            T::TripDeparted => D::TripDeparted(typed(data)?),
            T::TripPostponed => D::TripPostponed(typed(data)?),
            T::TripCancelled => D::TripCancelled(typed(data)?),
            T::TripReturnPlanned => D::TripReturnPlanned(typed(data)?),
            T::ArmsSaleAnnounced => D::ArmsSaleAnnounced(typed(data)?),
            T::AgreementReported => D::AgreementReported(typed(data)?),
            T::StatementIssued => D::StatementIssued(typed(data)?),
            T::MartialLawDeclared => D::MartialLawDeclared(typed(data)?),
            T::OfficialImpeached => D::OfficialImpeached(typed(data)?),
            T::FuneralScheduled => D::FuneralScheduled(typed(data)?),
            T::ConflictReported => D::ConflictReported(typed(data)?),
            T::NoteReported => D::NoteReported(typed(data)?),
            T::EventCorrected => D::EventCorrected(typed(data)?),
            T::EventRetracted => D::EventRetracted(typed(data)?),
            T::EvidenceAdded => D::EvidenceAdded(typed(data)?),
        };
        parsed.check()?;
        Ok(parsed)
    }

    /// Checks beyond the shape: non-empty names, known currencies, sane amounts.
    fn check(&self) -> Result<(), DataError> {
        let fail = |path: &str, message: &str| {
            Err(DataError {
                path: path.to_owned(),
                message: message.to_owned(),
            })
        };
        match self {
            EventData::EntityRegistered(d) if d.name.trim().is_empty() => {
                fail("name", "the name must not be empty")
            }
            EventData::EntityRegistered(d)
                if d.country.as_ref().is_some_and(|c| !c.is_country()) =>
            {
                fail("country", "expected a country id like country:US")
            }
            EventData::EntityAliasAdded(d) if d.alias.trim().is_empty() => {
                fail("alias", "the alias must not be empty")
            }
            EventData::TripAnnounced(d) if d.stops.is_empty() => {
                fail("stops", "a trip needs at least one stop")
            }
            EventData::ArmsSaleAnnounced(d) => check_money(&d.value),
            EventData::AgreementReported(d) if d.parties.is_empty() => {
                fail("parties", "an agreement has at least one party")
            }
            EventData::AgreementReported(d) if d.kind.trim().is_empty() => fail(
                "kind",
                "the kind must not be empty, like \"investment deal\"",
            ),
            EventData::AgreementReported(AgreementReported {
                value: Some(value), ..
            }) => check_money(value),
            EventData::TripMeetingPlanned(d) if d.with.is_empty() => fail(
                "with",
                "a planned meeting names at least one person or party to meet",
            ),
            EventData::StatementIssued(d) if d.about.is_empty() => fail(
                "about",
                "a statement is about at least one entity or stream",
            ),
            EventData::ConflictReported(d) if d.parties.is_empty() => {
                fail("parties", "a conflict has at least one party")
            }
            EventData::EventCorrected(d) if d.data.is_none() && d.occurred.is_none() => fail(
                "",
                "a correction needs `data` (the changed fields of the target's data) or `data.occurred` (the corrected date; the event's own `occurred`, `--occurred` on the command line, is when the correction was made)",
            ),
            _ => Ok(()),
        }
    }

    /// Every entity this event's data refers to, in order of appearance, with the field
    /// each one came from.
    pub fn entity_refs(&self) -> Vec<(String, EntityId)> {
        let mut refs = Vec::new();
        let mut add = |field: &str, e: &EntityId| refs.push((field.to_owned(), e.clone()));
        match self {
            EventData::EntityRegistered(d) => {
                if let Some(c) = &d.country {
                    add("country", c)
                }
            }
            EventData::TripAnnounced(d) => {
                add("traveler", &d.traveler);
                if let Some(r) = &d.role {
                    add("role", r)
                }
                for (i, s) in d.stops.iter().enumerate() {
                    add(&format!("stops[{i}].place"), &s.place);
                }
            }
            EventData::TripStopAdded(d) => {
                add("place", &d.place);
                if let Some(a) = &d.after {
                    add("after", a)
                }
            }
            EventData::TripStopCancelled(d) => add("place", &d.place),
            EventData::TripAgendaItemAdded(d) => {
                add("place", &d.place);
                for (i, p) in d.participants.iter().flatten().enumerate() {
                    add(&format!("participants[{i}]"), p);
                }
            }
            EventData::TripMeetingPlanned(d) => {
                add("place", &d.place);
                for (i, w) in d.with.iter().enumerate() {
                    add(&format!("with[{i}]"), w);
                }
            }
            EventData::TripMeetingHeld(d) => {
                add("place", &d.place);
                for (i, w) in d.with.iter().enumerate() {
                    add(&format!("with[{i}]"), w);
                }
            }
            EventData::TripArrived(d) | EventData::TripDeparted(d) => add("place", &d.place),
            EventData::TripReturnPlanned(d) => add("to", &d.to),
            EventData::ArmsSaleAnnounced(d) => {
                add("seller", &d.seller);
                add("buyer", &d.buyer);
                if let Some(a) = &d.announced_by {
                    add("announced_by", a)
                }
            }
            EventData::AgreementReported(d) => {
                for (i, p) in d.parties.iter().enumerate() {
                    add(&format!("parties[{i}]"), p);
                }
                if let Some(a) = &d.announced_by {
                    add("announced_by", a)
                }
            }
            EventData::StatementIssued(d) => {
                add("speaker", &d.speaker);
                for (i, a) in d.about.iter().enumerate() {
                    if a.is_entity() {
                        let e = EntityId::parse(a.as_str()).expect("is_entity was checked");
                        add(&format!("about[{i}]"), &e);
                    }
                }
            }
            EventData::MartialLawDeclared(d) => {
                add("by", &d.by);
                add("country", &d.country);
            }
            EventData::OfficialImpeached(d) => {
                add("official", &d.official);
                add("office", &d.office);
                add("country", &d.country);
            }
            EventData::FuneralScheduled(d) => {
                add("person", &d.person);
                if let Some(r) = &d.role {
                    add("role", r)
                }
                if let Some(p) = &d.place {
                    add("place", p)
                }
            }
            EventData::ConflictReported(d) => {
                for (i, p) in d.parties.iter().enumerate() {
                    add(&format!("parties[{i}]"), p);
                }
            }
            EventData::NoteReported(d) => {
                for (i, e) in d.entities.iter().enumerate() {
                    add(&format!("entities[{i}]"), e);
                }
            }
            EventData::EntityAliasAdded(_)
            | EventData::TripStarted(_)
            | EventData::TripCompleted(_)
            | EventData::TripPostponed(_)
            | EventData::TripCancelled(_)
            | EventData::EventCorrected(_)
            | EventData::EventRetracted(_)
            | EventData::EvidenceAdded(_) => {}
        }
        refs
    }

    /// The event an amendment (`event.corrected`, `event.retracted`, `evidence.added`)
    /// points at.
    pub fn target(&self) -> Option<Uuid> {
        match self {
            EventData::EventCorrected(d) => Some(d.target),
            EventData::EventRetracted(d) => Some(d.target),
            EventData::EvidenceAdded(d) => Some(d.target),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::ALL.len(), 26);
        assert_eq!(EventType::parse("trip.teleported"), None);
    }

    #[test]
    fn data_errors_name_the_field() {
        let err = EventData::parse(
            EventType::TripAnnounced,
            &json!({"traveler": "person:a", "stops": [{"place": "country:KR"}, {"place": "Tokyo"}]}),
        )
        .unwrap_err();
        assert_eq!(err.path, "stops[1].place");
        let err = EventData::parse(EventType::TripStarted, &json!({"x": 1})).unwrap_err();
        assert!(err.message.contains("unknown field `x`"), "{}", err.message);
        let err = EventData::parse(
            EventType::ArmsSaleAnnounced,
            &json!({"seller": "country:US", "buyer": "country:JP", "value": {"amount": 1, "currency": "usd"}, "items": []}),
        )
        .unwrap_err();
        assert_eq!(err.path, "value.currency");
    }
}
