//! What each event type's `data` carries, as one table: every field with its kind,
//! whether it is required, and what it means, plus an example of the whole event.
//!
//! The typed structs of [`super::types`] parse `data`; this table describes them for
//! everything that is produced rather than parsed: the OpenAPI schemas the server
//! publishes (`server::openapi`), and the documentation. The tests below hold the two
//! together: every example parses, dropping any required field is refused with that
//! field named, dropping any optional one is not, and the parser knows no field the
//! table does not list.

use super::types::{CategoryRule, EventType};

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string.
    Text,
    /// A string with at least one character that is not white space.
    Name,
    /// A web address: `http://` or `https://` and at least one more character, with no
    /// white space or control character (on a new event: see
    /// [`super::event::check_url`]).
    Url,
    /// An array of strings, with at least this many (on a new event: see
    /// [`super::event::check_new`]).
    Texts { at_least: usize },
    /// An array of strings, each with at least one character that is not white space.
    Names,
    /// An entity id (`person:…`, `org:…`, `office:…`, `place:…`, or a built-in
    /// `country:XX`); all but countries must be registered before they are referred to.
    Entity,
    /// A built-in country id (`country:KR`).
    Country,
    /// An array of entity ids, with at least this many.
    Entities { at_least: usize },
    /// An array of entity or stream ids, with at least this many.
    Streams { at_least: usize },
    /// A stream id.
    Stream,
    /// An extent (`2025`, `2025-01-05`, `2025-01-06/2025-01-09~`, …).
    Extent,
    /// `true` or `false`.
    Bool,
    /// A JSON number.
    Number,
    /// A sum of money: `amount` (from [`super::types::MIN_AMOUNT`] to
    /// [`super::types::MAX_AMOUNT`]) and an ISO 4217 `currency` in capitals.
    Money,
    /// `supports`, `opposes`, `rejects` or `neutral`.
    Stance,
    /// `proposed`, `letter_of_intent`, `signed`, `in_force` or `cancelled`.
    AgreementStatus,
    /// The id (a UUID) of an event already in the log.
    EventId,
    /// Where a fact was reported (the envelope's `source`).
    Source,
    /// A trip's stops: at least one, each with the fields of [`STOP_FIELDS`].
    Stops,
    /// A JSON object: the target's corrected data.
    Object,
}

/// One field of a type's `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// What it means, in one sentence.
    pub about: &'static str,
}

const fn req(name: &'static str, kind: Kind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        about,
    }
}

const fn opt(name: &'static str, kind: Kind, about: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        about,
    }
}

/// An event of one type, complete, that a store holding the bundled demo (`chronicle
/// demo`) accepts as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    pub stream: &'static str,
    pub occurred: Option<&'static str>,
    /// The `data`, as JSON text; it gives every field of the type.
    pub data: &'static str,
}

/// One event type, described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeDef {
    pub event_type: EventType,
    /// What an event of this type states, in one sentence.
    pub about: &'static str,
    pub fields: &'static [Field],
    /// Fields of which at least one must be given (beside the required ones).
    pub at_least_one_of: &'static [&'static str],
    pub example: Example,
}

/// The fields of one stop of `trip.announced`.
pub const STOP_FIELDS: &[Field] = &[
    req(
        "place",
        Kind::Entity,
        "Where the stop is: a country or a registered place.",
    ),
    opt("city", Kind::Text, "The city, as the source names it."),
    opt(
        "dates",
        Kind::Extent,
        "When the traveler is expected there.",
    ),
    opt(
        "agenda",
        Kind::Texts { at_least: 0 },
        "Topics planned for the stop.",
    ),
];

/// The fields of an event's `source`.
pub const SOURCE_FIELDS: &[Field] = &[
    req("publisher", Kind::Text, "Who published it."),
    opt("title", Kind::Text, "The headline."),
    opt(
        "url",
        Kind::Url,
        "Where it can be read: a web address (http:// or https://).",
    ),
    opt(
        "published",
        Kind::Extent,
        "When it was published: the `reported` clock.",
    ),
    opt("quote", Kind::Text, "A verbatim excerpt."),
    opt(
        "speaker",
        Kind::Text,
        "Who spoke when the source does not name them (\"a White House official\"); the outlet is the publisher.",
    ),
];

/// The fields of an event's `meta`.
pub const META_FIELDS: &[Field] = &[
    opt(
        "correlation_id",
        Kind::Text,
        "Ties the events of one piece of work together.",
    ),
    opt(
        "causation_id",
        Kind::Text,
        "The event or command that caused this one.",
    ),
    opt("author", Kind::Text, "Who wrote the event."),
];

/// A `&'static` table of fields, from calls of the `const fn`s above.
macro_rules! fields {
    ($($field:expr),* $(,)?) => {{
        const FIELDS: &[Field] = &[$($field),*];
        FIELDS
    }};
}

/// One event type's description.
pub fn definition(t: EventType) -> TypeDef {
    use EventType as T;
    use Kind::*;
    let def = |about, fields, example| TypeDef {
        event_type: t,
        about,
        fields,
        at_least_one_of: &[],
        example,
    };
    let ex = |stream, occurred, data| Example {
        stream,
        occurred,
        data,
    };
    const TRIP: &str = "trip:blinken-final-tour-2025";
    match t {
        T::EntityRegistered => def(
            "A person, organisation, office or place is known to the log by this id (the stream).",
            fields![
                req("name", Name, "The display name."),
                req("aliases", Names, "Other names that resolve to it in queries."),
                opt("country", Country, "The country it belongs to."),
                opt("wikidata", Text, "Its Wikidata item, like Q4306."),
                opt("description", Text, "One line about it."),
            ],
            ex(
                "person:kamala-harris",
                None,
                r#"{"name": "Kamala Harris", "aliases": ["Harris", "the US Vice President"], "country": "country:US", "wikidata": "Q10853588", "description": "Vice President of the United States"}"#,
            ),
        ),
        T::EntityAliasAdded => def(
            "The entity (the stream) is also known by another name.",
            fields![req("alias", Name, "The other name.")],
            ex(
                "person:antony-blinken",
                None,
                r#"{"alias": "Tony Blinken"}"#,
            ),
        ),
        T::TripAnnounced => def(
            "A trip was announced, with its traveler and stops.",
            fields![
                req("traveler", Entity, "Who travels."),
                opt("role", Entity, "The office they travel in."),
                opt("title", Text, "A headline for the trip."),
                opt("purpose", Text, "Why they travel."),
                opt("starts", Extent, "When the trip begins."),
                req("stops", Stops, "The stops in order."),
            ],
            ex(
                "trip:blinken-g7-2025",
                Some("2025-01-10"),
                r#"{"traveler": "person:antony-blinken", "role": "office:us-secretary-of-state", "title": "Blinken to Rome", "purpose": "G7 foreign ministers' meeting", "starts": "2025-01-20", "stops": [{"place": "country:IT", "city": "Rome", "dates": "2025-01-20/2025-01-22", "agenda": ["G7 ministers' meeting"]}]}"#,
            ),
        ),
        T::TripStopAdded => def(
            "A stop was added to the trip.",
            fields![
                req("place", Entity, "Where."),
                opt("city", Text, "The city, as the source names it."),
                opt("dates", Extent, "When the traveler is expected there."),
                opt("after", Entity, "The stop it follows; at the end when absent."),
            ],
            ex(
                TRIP,
                Some("2025-01-05"),
                r#"{"place": "country:DE", "city": "Berlin", "dates": "2025-01-09", "after": "country:JP"}"#,
            ),
        ),
        T::TripStopCancelled => def(
            "A planned stop was dropped.",
            fields![
                req("place", Entity, "Which stop."),
                opt("reason", Text, "Why."),
            ],
            ex(
                TRIP,
                Some("2025-01-05"),
                r#"{"place": "country:FR", "reason": "schedule change"}"#,
            ),
        ),
        T::TripAgendaItemAdded => def(
            "A topic was put on the agenda of a stop.",
            fields![
                req("place", Entity, "Which stop."),
                req("topic", Text, "The topic."),
                opt("detail", Text, "More about it."),
                opt(
                    "participants",
                    Entities { at_least: 0 },
                    "Who takes part, beside the traveler.",
                ),
                opt("dates", Extent, "When it is to be discussed."),
            ],
            ex(
                TRIP,
                Some("2025-01-05"),
                r#"{"place": "country:KR", "topic": "North Korea", "detail": "Missile launches", "participants": ["person:yoon-suk-yeol"], "dates": "2025-01-06"}"#,
            ),
        ),
        T::TripMeetingPlanned => def(
            "A meeting at a stop is expected, with named people; `trip.meeting_held` says it took place.",
            fields![
                req("place", Entity, "Which stop."),
                req("with", Entities { at_least: 1 }, "Whom the traveler is to meet."),
                opt("topic", Text, "What about."),
                opt("dates", Extent, "When it is to take place."),
            ],
            ex(
                TRIP,
                Some("2025-01-04"),
                r#"{"place": "country:KR", "with": ["person:yoon-suk-yeol"], "topic": "the alliance", "dates": "2025-01-06"}"#,
            ),
        ),
        T::TripMeetingHeld => def(
            "The traveler met someone at a stop.",
            fields![
                req("place", Entity, "Which stop."),
                req("with", Entities { at_least: 0 }, "Whom they met."),
                opt("topic", Text, "What about."),
            ],
            ex(
                TRIP,
                Some("2025-01-06"),
                r#"{"place": "country:KR", "with": ["person:yoon-suk-yeol"], "topic": "the alliance"}"#,
            ),
        ),
        T::TripStarted => def(
            "The trip began.",
            fields![],
            ex(TRIP, Some("2025-01-05"), "{}"),
        ),
        T::TripCompleted => def(
            "The trip ended.",
            fields![],
            ex(TRIP, Some("2025-01-09"), "{}"),
        ),
        T::TripArrived => def(
            "The traveler arrived at a stop.",
            fields![req("place", Entity, "Which stop.")],
            ex(TRIP, Some("2025-01-06"), r#"{"place": "country:KR"}"#),
        ),
        T::TripDeparted => def(
            "The traveler left a stop.",
            fields![req("place", Entity, "Which stop.")],
            ex(TRIP, Some("2025-01-07"), r#"{"place": "country:KR"}"#),
        ),
        T::TripPostponed => def(
            "The trip was put off.",
            fields![
                opt("starts", Extent, "When it now begins, if known."),
                opt("reason", Text, "Why."),
            ],
            ex(
                TRIP,
                Some("2025-01-04"),
                r#"{"starts": "2025-02", "reason": "weather"}"#,
            ),
        ),
        T::TripCancelled => def(
            "The trip was called off.",
            fields![opt("reason", Text, "Why.")],
            ex(TRIP, Some("2025-01-04"), r#"{"reason": "a crisis at home"}"#),
        ),
        T::TripReturnPlanned => def(
            "The traveler is to return somewhere, possibly for another event.",
            fields![
                req("to", Entity, "Where to."),
                opt("reason", Text, "Why."),
                opt("related", Stream, "The stream of the event it is for."),
            ],
            ex(
                TRIP,
                Some("2025-01-04"),
                r#"{"to": "place:washington", "reason": "the funeral", "related": "funeral:jimmy-carter-2025"}"#,
            ),
        ),
        T::ArmsSaleAnnounced => def(
            "An arms sale was announced, with its parties and value.",
            fields![
                req("seller", Entity, "Who sells."),
                req("buyer", Entity, "Who buys: not the seller."),
                req("value", Money, "What it is worth."),
                opt("approximate", Bool, "Whether the value is approximate."),
                req("items", Texts { at_least: 1 }, "What is sold."),
                opt(
                    "announced_by",
                    Entity,
                    "Who announced it, when the source says; views never guess it.",
                ),
            ],
            ex(
                "arms-sale:us-korea-2025-01",
                Some("2025-01-06"),
                r#"{"seller": "country:US", "buyer": "country:KR", "value": {"amount": 1500000000.5, "currency": "USD"}, "approximate": true, "items": ["air defence systems"], "announced_by": "org:us-state-department"}"#,
            ),
        ),
        T::AgreementReported => def(
            "A deal or agreement other than an arms sale (an investment, a trade deal, a memorandum) and where it stands.",
            fields![
                req("parties", Entities { at_least: 1 }, "Who is party to it."),
                req("kind", Name, "What kind of agreement, in the source's words."),
                req("status", AgreementStatus, "Where it stands."),
                opt("value", Money, "What it is worth, when the source says."),
                opt("approximate", Bool, "Whether the value is approximate."),
                opt("announced_by", Entity, "Who announced it, when the source says."),
                opt("summary", Text, "What it provides, in a line."),
            ],
            ex(
                "deal:us-japan-investment-2025",
                Some("2025-01-07"),
                r#"{"parties": ["country:US", "country:JP"], "kind": "investment deal", "status": "letter_of_intent", "value": {"amount": 1000000000, "currency": "USD"}, "approximate": true, "announced_by": "org:us-state-department", "summary": "Japanese investment in US shipbuilding"}"#,
            ),
        ),
        T::StatementIssued => def(
            "Someone took a position on entities or streams.",
            fields![
                req("speaker", Entity, "Who spoke."),
                req("stance", Stance, "Their position."),
                req(
                    "about",
                    Streams { at_least: 1 },
                    "What it is about: entity ids, or ids of streams the log holds.",
                ),
                req("summary", Text, "What was said, in a line."),
                opt("quote", Text, "The words, verbatim."),
            ],
            ex(
                TRIP,
                Some("2025-01-06"),
                r#"{"speaker": "country:KR", "stance": "supports", "about": ["trip:blinken-final-tour-2025", "org:us-south-korea-alliance"], "summary": "Seoul welcomed the visit", "quote": "a timely visit"}"#,
            ),
        ),
        T::MartialLawDeclared => def(
            "Martial law was declared in a country.",
            fields![
                req("by", Entity, "Who declared it."),
                req("country", Entity, "Where."),
            ],
            ex(
                "crisis:south-korea-2024",
                Some("2024-12-03"),
                r#"{"by": "person:yoon-suk-yeol", "country": "country:KR"}"#,
            ),
        ),
        T::OfficialImpeached => def(
            "An official was impeached.",
            fields![
                req("official", Entity, "Who."),
                req("office", Entity, "In which office."),
                req("country", Entity, "Where."),
                opt("cause", Text, "What for."),
            ],
            ex(
                "crisis:south-korea-2024",
                Some("2024-12-14"),
                r#"{"official": "person:yoon-suk-yeol", "office": "office:president-of-south-korea", "country": "country:KR", "cause": "the martial law declaration"}"#,
            ),
        ),
        T::FuneralScheduled => def(
            "A funeral was scheduled.",
            fields![
                req("person", Entity, "Whose."),
                opt("role", Entity, "The office they held."),
                opt("place", Entity, "Where."),
            ],
            ex(
                "funeral:jimmy-carter-2025",
                Some("2025-01-09"),
                r#"{"person": "person:jimmy-carter", "role": "office:president-of-the-united-states", "place": "place:washington"}"#,
            ),
        ),
        T::ConflictReported => def(
            "A conflict between parties was reported.",
            fields![
                req("parties", Entities { at_least: 1 }, "Who is involved."),
                req("summary", Text, "What is happening, in a line."),
            ],
            ex(
                "conflict:israel-hamas",
                Some("2025-01"),
                r#"{"parties": ["country:IL", "org:hamas"], "summary": "Fighting continues in Gaza"}"#,
            ),
        ),
        T::NoteReported => def(
            "A fact that fits no other type.",
            fields![
                req("summary", Text, "The fact, in a line."),
                req("entities", Entities { at_least: 0 }, "Whom it involves."),
            ],
            ex(
                "policy:us-indo-pacific-strategy",
                Some("2025-01-04"),
                r#"{"summary": "The strategy is under review", "entities": ["country:US"]}"#,
            ),
        ),
        T::EventCorrected => def(
            "An earlier event of the stream is corrected: its data, its date, or both.",
            fields![
                req("target", EventId, "The event corrected."),
                opt(
                    "data",
                    Object,
                    "The changed fields of the target's data, as a JSON merge patch (RFC 7396): only what changes, `null` removes a field; the merged result must fit the target's type, and differ from its data (a correction that changes nothing is refused).",
                ),
                opt("occurred", Extent, "The target's corrected date."),
                req("reason", Name, "Why."),
            ],
            ex(
                "arms-sale:us-japan-2025-01",
                Some("2025-01-05"),
                r#"{"target": "01942100-0000-7000-8000-000003000001", "data": {"value": {"amount": 3500000000}}, "occurred": "2025-01-03", "reason": "a later report put the value at $3.5 billion, announced on 3 January"}"#,
            ),
        ),
        T::EventRetracted => def(
            "An earlier event of the stream is withdrawn: it drops out of the current views. An entity's registration cannot be withdrawn.",
            fields![
                req("target", EventId, "The event withdrawn."),
                req("reason", Name, "Why."),
            ],
            ex(
                "conflict:russia-ukraine-war",
                Some("2025-01-05"),
                r#"{"target": "01942100-0000-7000-8000-000005000003", "reason": "not in the article"}"#,
            ),
        ),
        T::EvidenceAdded => def(
            "Another source reports an earlier event of the stream.",
            fields![
                req("target", EventId, "The event reported."),
                req("source", Source, "The other source."),
            ],
            ex(
                "crisis:south-korea-2024",
                Some("2024-12-04"),
                r#"{"target": "01942100-0000-7000-8000-000004000001", "source": {"publisher": "Example Wire", "title": "Martial law in Seoul", "url": "https://example.org/a", "published": "2024-12-03", "quote": "declared martial law"}}"#,
            ),
        ),
    }
    .with_at_least_one_of(match t {
        T::EventCorrected => &["data", "occurred"],
        _ => &[],
    })
}

impl TypeDef {
    const fn with_at_least_one_of(mut self, names: &'static [&'static str]) -> TypeDef {
        self.at_least_one_of = names;
        self
    }

    /// Which streams the type goes in, in words.
    pub fn stream_rule(&self) -> String {
        match self.event_type.category_rule() {
            CategoryRule::Entity => "the entity's own id".to_owned(),
            CategoryRule::Exactly(c) => {
                format!("{} `{c}:` stream", crate::model::event::article(c))
            }
            CategoryRule::Any => "any stream".to_owned(),
            CategoryRule::TargetStream => "the target event's stream".to_owned(),
        }
    }
}

impl Kind {
    /// What the kind takes, in words, for `chronicle types show` and `GET /types/{name}`.
    pub fn describe(self) -> String {
        match self {
            Kind::Text => "text".into(),
            Kind::Name => "text, not blank".into(),
            Kind::Url => "web address (http:// or https://)".into(),
            Kind::Texts { at_least: 0 } => "[text]".into(),
            Kind::Texts { at_least } => format!("[text], at least {at_least}"),
            Kind::Names => "[text, not blank]".into(),
            Kind::Entity => "entity id".into(),
            Kind::Country => "country id (country:XX)".into(),
            Kind::Entities { at_least: 0 } => "[entity id]".into(),
            Kind::Entities { at_least } => format!("[entity id], at least {at_least}"),
            Kind::Streams { at_least: 0 } => "[entity or stream id]".into(),
            Kind::Streams { at_least } => {
                format!("[entity or stream id], at least {at_least}")
            }
            Kind::Stream => "stream id".into(),
            Kind::Extent => "date (extent)".into(),
            Kind::Bool => "true or false".into(),
            Kind::Number => "number".into(),
            Kind::Money => "money {amount, currency}".into(),
            Kind::Stance => "supports, opposes, rejects or neutral".into(),
            Kind::AgreementStatus => {
                "proposed, letter_of_intent, signed, in_force or cancelled".into()
            }
            Kind::EventId => "event id (UUID)".into(),
            Kind::Source => "source {publisher, title, url, published, quote, speaker}".into(),
            Kind::Stops => "[stop], at least 1".into(),
            Kind::Object => "JSON object (merge patch)".into(),
        }
    }

    /// The fields inside a value of this kind, when it is an object (or an array of
    /// them) whose fields are described here.
    pub fn inner_fields(self) -> &'static [Field] {
        match self {
            Kind::Stops => STOP_FIELDS,
            Kind::Source => SOURCE_FIELDS,
            Kind::Money => MONEY_FIELDS,
            _ => &[],
        }
    }
}

/// The fields of a sum of money.
pub const MONEY_FIELDS: &[Field] = &[
    req(
        "amount",
        Kind::Number,
        "A number from 0.01 to 10^15, in units of the currency.",
    ),
    req(
        "currency",
        Kind::Text,
        "An ISO 4217 code in capitals, like USD.",
    ),
];

/// One row of a type's field list: nested fields are named by their path
/// (`stops[].place`, `value.currency`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldDoc {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub about: String,
}

/// A type in the list of types: `chronicle types`, `GET /types`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TypeSummary {
    pub name: &'static str,
    /// The stream category it goes in (`trip`), or `entity`, `any`, `target`.
    pub category: &'static str,
    /// Which streams it goes in, in words.
    pub stream: String,
    pub about: &'static str,
}

/// Everything about one type: `chronicle types show TYPE`, `GET /types/{name}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TypeDescription {
    #[serde(flatten)]
    pub summary: TypeSummary,
    /// Whether the event needs `occurred` (amendments default to the day recorded).
    pub occurred: &'static str,
    pub fields: Vec<FieldDoc>,
    /// Fields of which at least one must be given.
    pub at_least_one_of: &'static [&'static str],
    /// A whole event with every field, free text as `<placeholders>` (refused until
    /// replaced); filled in, a store holding the demo accepts it.
    pub template: serde_json::Value,
    /// A realistic event of the type.
    pub example: serde_json::Value,
}

/// Writes `value` as compact JSON with the keys of objects described by `fields` in
/// the order of `fields` (serde_json's maps sort their keys, which hides the order
/// that reads best: required fields first, as the table has them).
fn ordered_json(fields: &[Field], value: &serde_json::Value) -> String {
    use serde_json::Value;
    let Value::Object(map) = value else {
        return value.to_string();
    };
    let mut parts = Vec::new();
    for f in fields {
        let Some(v) = map.get(f.name) else { continue };
        let inner = f.kind.inner_fields();
        let text = match v {
            Value::Array(items) if !inner.is_empty() => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| ordered_json(inner, i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ if !inner.is_empty() => ordered_json(inner, v),
            _ => v.to_string(),
        };
        parts.push(format!("{}: {text}", Value::from(f.name)));
    }
    format!("{{{}}}", parts.join(", "))
}

/// A placeholder for a free-text field: `<summary>`.
fn placeholder(field: &Field, example: Option<&serde_json::Value>) -> serde_json::Value {
    use serde_json::Value;
    match field.kind {
        Kind::Text | Kind::Name => Value::from(format!("<{}>", field.name)),
        Kind::Texts { .. } | Kind::Names => Value::from(vec![format!("<{}>", field.name)]),
        // As the envelope's source reads in every template, on the example's date.
        Kind::Source => {
            let mut source: Value =
                serde_json::from_str(TEMPLATE_SOURCE).expect("the template's source is JSON");
            if let Some(published) = example.and_then(|e| e.get("published")) {
                source["published"] = published.clone();
            }
            source
        }
        Kind::Stops => match example {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| fill(field.kind.inner_fields(), i))
                .collect(),
            Some(v) => fill(field.kind.inner_fields(), v),
            None => Value::Null,
        },
        _ => example.cloned().unwrap_or(Value::Null),
    }
}

/// The example's object with every free-text field replaced by a placeholder.
fn fill(fields: &[Field], example: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for f in fields {
        let v = placeholder(f, example.get(f.name));
        if !v.is_null() {
            out.insert(f.name.to_owned(), v);
        }
    }
    serde_json::Value::Object(out)
}

/// Whether `text` is, as a whole, a value `chronicle types show` prints in a template
/// for the user to replace (`<name>`, `https://example.org/<article>`): an event that
/// still carries one was appended before it was filled in. Text that merely holds
/// such a word (`<title>Hacked</title>`) is not one.
pub fn is_template_placeholder(text: &str) -> bool {
    static PLACEHOLDERS: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    if !text.ends_with('>') {
        return false;
    }
    PLACEHOLDERS
        .get_or_init(|| {
            fn strings(value: &serde_json::Value, found: &mut std::collections::HashSet<String>) {
                match value {
                    serde_json::Value::String(s) if s.contains('<') => {
                        found.insert(s.clone());
                    }
                    serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
                    serde_json::Value::Object(fields) => {
                        fields.values().for_each(|v| strings(v, found))
                    }
                    _ => {}
                }
            }
            let mut found = std::collections::HashSet::new();
            for def in definitions() {
                let template =
                    serde_json::from_str(&def.template_line()).expect("templates are JSON");
                strings(&template, &mut found);
            }
            found
        })
        .contains(text)
}

/// The source every template carries, with placeholders.
const TEMPLATE_SOURCE: &str = r#"{"publisher": "<publisher>", "title": "<title>", "url": "https://example.org/<article>", "published": "2025-01-04", "quote": "<a verbatim excerpt>", "speaker": "<who spoke, if the source does not name them>"}"#;

impl TypeDef {
    /// The type in the list of types.
    pub fn summary(&self) -> TypeSummary {
        TypeSummary {
            name: self.event_type.as_str(),
            category: match self.event_type.category_rule() {
                CategoryRule::Entity => "entity",
                CategoryRule::Exactly(c) => c,
                CategoryRule::Any => "any",
                CategoryRule::TargetStream => "target",
            },
            stream: self.stream_rule(),
            about: self.about,
        }
    }

    /// Every field, nested ones after their parent, named by path.
    pub fn field_docs(&self) -> Vec<FieldDoc> {
        fn add(out: &mut Vec<FieldDoc>, prefix: &str, fields: &[Field]) {
            for f in fields {
                let name = format!("{prefix}{}", f.name);
                out.push(FieldDoc {
                    name: name.clone(),
                    kind: f.kind.describe(),
                    required: f.required,
                    about: f.about.to_owned(),
                });
                let inner = f.kind.inner_fields();
                if !inner.is_empty() {
                    let sep = if f.kind == Kind::Stops { "[]." } else { "." };
                    add(out, &format!("{name}{sep}"), inner);
                }
            }
        }
        let mut out = Vec::new();
        add(&mut out, "", self.fields);
        out
    }

    /// When `occurred` is needed, in words.
    pub fn occurred_rule(&self) -> &'static str {
        let t = self.event_type;
        if !t.needs_occurred() {
            "not used: entities are not dated"
        } else if t.occurred_defaults_to_recorded() {
            "optional: the day the amendment is recorded when absent"
        } else if let Some(planned) = self
            .fields
            .iter()
            .find(|f| matches!(f.name, "starts" | "dates"))
        {
            // A plan is news when it is made: its own time is in the data.
            match planned.name {
                "starts" => {
                    "required: when it was announced (when the trip begins goes in `starts`)"
                }
                _ => {
                    "required: when it was announced or reported (when it is to happen goes in `dates`)"
                }
            }
        } else {
            "required: when it happened in the world"
        }
    }

    /// A whole event of the type as one line of JSON Lines, with every field: free text
    /// as `<placeholders>`, ids, dates and amounts from the example. An append refuses
    /// it while it holds a placeholder; filled in, a store holding the bundled demo
    /// accepts it (`chronicle append -`).
    pub fn template_line(&self) -> String {
        let data: serde_json::Value =
            serde_json::from_str(self.example.data).expect("examples are JSON");
        let data = ordered_json(self.fields, &fill(self.fields, &data));
        // Evidence is its `data.source`: a second source beside it would only confuse.
        // The source is published the day the example happened (or from), not before:
        // a report of an arrival published before it would be taken for a plan.
        let source = (self.event_type != EventType::EvidenceAdded).then(|| {
            match self
                .example
                .occurred
                .and_then(|o| o.split(['T', '/', '~']).next())
            {
                Some(day) => TEMPLATE_SOURCE.replace("2025-01-04", day),
                None => TEMPLATE_SOURCE.to_owned(),
            }
        });
        self.line(&data, source.as_deref(), true)
    }

    /// The example as one line of JSON Lines.
    pub fn example_line(&self) -> String {
        let data: serde_json::Value =
            serde_json::from_str(self.example.data).expect("examples are JSON");
        self.line(&ordered_json(self.fields, &data), None, false)
    }

    fn line(&self, data: &str, source: Option<&str>, placeholders: bool) -> String {
        let value = |s: &str| serde_json::Value::from(s).to_string();
        let mut parts = vec![
            format!("\"stream\": {}", value(self.example.stream)),
            format!("\"type\": {}", value(self.event_type.as_str())),
        ];
        if let Some(occurred) = self.example.occurred {
            parts.push(format!("\"occurred\": {}", value(occurred)));
            if placeholders {
                parts.push("\"occurred_text\": \"<the article's words for the date>\"".into());
            }
        }
        parts.push(format!("\"data\": {data}"));
        if let Some(source) = source {
            parts.push(format!("\"source\": {source}"));
        }
        if placeholders {
            parts.push("\"tags\": [\"<tag>\"]".into());
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// Everything about the type, for `chronicle types show` and `GET /types/{name}`.
    pub fn description(&self) -> TypeDescription {
        TypeDescription {
            summary: self.summary(),
            occurred: self.occurred_rule(),
            fields: self.field_docs(),
            at_least_one_of: self.at_least_one_of,
            template: serde_json::from_str(&self.template_line()).expect("templates are JSON"),
            example: serde_json::from_str(&self.example_line()).expect("examples are JSON"),
        }
    }
}

/// Every type's description, in the order of [`EventType::ALL`].
pub fn definitions() -> impl Iterator<Item = TypeDef> {
    EventType::ALL.iter().map(|t| definition(*t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::types::EventData;
    use serde_json::Value;

    fn data(def: &TypeDef) -> serde_json::Map<String, Value> {
        match serde_json::from_str(def.example.data) {
            Ok(Value::Object(m)) => m,
            other => panic!(
                "{}: the example is not an object: {other:?}",
                def.event_type
            ),
        }
    }

    /// The field names the parser knows, from its answer to an unknown field.
    fn parser_fields(t: EventType, example: &serde_json::Map<String, Value>) -> Vec<String> {
        let mut with_unknown = example.clone();
        with_unknown.insert("zzz".into(), Value::Bool(true));
        let err = EventData::parse(t, &Value::Object(with_unknown)).unwrap_err();
        let msg = err.message;
        assert!(msg.contains("unknown field `zzz`"), "{t}: {msg}");
        let mut names: Vec<String> = msg
            .split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_table_describes_exactly_what_the_parser_takes() {
        for def in definitions() {
            let t = def.event_type;
            let example = data(&def);
            EventData::parse(t, &Value::Object(example.clone()))
                .unwrap_or_else(|e| panic!("{t}: the example does not parse: {e:?}"));
            let mut names: Vec<String> = def.fields.iter().map(|f| f.name.to_owned()).collect();
            names.sort();
            assert_eq!(parser_fields(t, &example), names, "{t}: fields differ");
            let mut given: Vec<&String> = example.keys().collect();
            given.sort();
            assert_eq!(
                given,
                names.iter().collect::<Vec<_>>(),
                "{t}: the example gives every field"
            );
            for field in def.fields {
                let mut without = example.clone();
                without.remove(field.name);
                let parsed = EventData::parse(t, &Value::Object(without));
                let alone = def.at_least_one_of.contains(&field.name);
                match parsed {
                    Ok(_) => assert!(!field.required, "{t}: `{}` is required", field.name),
                    Err(e) if field.required => assert_eq!(e.path, field.name, "{t}: {e:?}"),
                    Err(e) => assert!(alone, "{t}: `{}` is optional: {e:?}", field.name),
                }
                if !field.required && !alone {
                    // Optional fields also take null, as absent.
                    let mut null = example.clone();
                    null.insert(field.name.into(), Value::Null);
                    EventData::parse(t, &Value::Object(null))
                        .unwrap_or_else(|e| panic!("{t}: `{}`: null: {e:?}", field.name));
                }
            }
            if !def.at_least_one_of.is_empty() {
                let mut none = example.clone();
                for name in def.at_least_one_of {
                    none.remove(*name);
                }
                assert!(EventData::parse(t, &Value::Object(none)).is_err(), "{t}");
            }
        }
    }

    /// The type's example with `field` set to `value`, as a new event of it is read:
    /// parsed, then held to the rules only new events are.
    fn new_with(def: &TypeDef, field: &str, value: Value) -> Result<EventData, String> {
        let stream = crate::model::StreamId::parse(def.example.stream).unwrap();
        let mut example = data(def);
        example.insert(field.to_owned(), value);
        let typed =
            EventData::parse(def.event_type, &Value::Object(example)).map_err(|e| e.message)?;
        crate::model::event::check_new(&stream, &typed).map_err(|e| e.message)?;
        Ok(typed)
    }

    /// A text the document says is not blank (and each text of such a list) is refused
    /// blank on a new event: the schema's pattern is the parser's.
    #[test]
    fn texts_that_must_not_be_blank_are_refused_blank() {
        for def in definitions() {
            for field in def.fields {
                let blank = match field.kind {
                    Kind::Name => Value::from(" \t"),
                    Kind::Names => Value::from(vec!["fine", " "]),
                    _ => continue,
                };
                let t = def.event_type;
                let accepted = new_with(&def, field.name, blank);
                assert!(
                    accepted.is_err(),
                    "{t}: `{}` blank was accepted",
                    field.name
                );
            }
        }
    }

    /// A list the document says has at least one item is refused empty by the parser
    /// (a list of texts, on a new event), and one it allows empty is taken empty: the
    /// schema's `minItems` is the parser's.
    #[test]
    fn lists_that_need_an_item_are_refused_empty() {
        for def in definitions() {
            let t = def.event_type;
            for field in def.fields {
                let at_least = match field.kind {
                    Kind::Entities { at_least }
                    | Kind::Streams { at_least }
                    | Kind::Texts { at_least } => at_least,
                    Kind::Stops => 1,
                    _ => continue,
                };
                let parsed = new_with(&def, field.name, Value::Array(Vec::new()));
                assert_eq!(
                    parsed.is_ok(),
                    at_least == 0,
                    "{t}: `{}` empty: {parsed:?}",
                    field.name
                );
            }
        }
    }

    #[test]
    fn sources_and_meta_are_described_too() {
        use crate::model::event::{Meta, Source};
        let source = serde_json::json!({"publisher": "p", "title": "t", "url": "u", "published": "2025", "quote": "q", "speaker": "an official"});
        let meta = serde_json::json!({"correlation_id": "c", "causation_id": "c", "author": "a"});
        for (fields, value, parses) in [
            (
                SOURCE_FIELDS,
                source,
                (|v: Value| serde_json::from_value::<Source>(v).is_ok()) as fn(Value) -> bool,
            ),
            (META_FIELDS, meta, |v: Value| {
                serde_json::from_value::<Meta>(v).is_ok()
            }),
        ] {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let mut given: Vec<&str> = value
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            given.sort_unstable();
            assert_eq!(given, sorted);
            assert!(parses(value.clone()));
            let mut extra = value.clone();
            extra["zzz"] = Value::Null;
            assert!(!parses(extra));
            for field in fields {
                let mut without = value.clone();
                without.as_object_mut().unwrap().remove(field.name);
                assert_eq!(parses(without), !field.required, "{}", field.name);
            }
        }
    }

    /// A template with each `<placeholder>` replaced by its words, joined by hyphens.
    fn fill_in(template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('<') {
            let end = at + rest[at..].find('>').unwrap();
            out.push_str(&rest[..at]);
            out.push_str(&rest[at + 1..end].replace(' ', "-"));
            rest = &rest[end + 1..];
        }
        out + rest
    }

    #[test]
    fn templates_and_examples_are_whole_events_with_every_field() {
        use crate::model::event::{Origin, parse_event_value};
        for def in definitions() {
            let t = def.event_type;
            // A template as printed is refused, naming a placeholder; filled in, taken.
            let template = def.template_line();
            let refused = parse_event_value(serde_json::from_str(&template).unwrap(), Origin::New)
                .expect_err(&format!("{t}: the template is taken with its placeholders"));
            assert!(
                refused
                    .to_string()
                    .contains("is a placeholder of a `chronicle types show` template"),
                "{t}: {refused}"
            );
            for (what, line) in [
                ("template, filled in", fill_in(&template)),
                ("example", def.example_line()),
            ] {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{t}: the {what} is not JSON: {e}: {line}"));
                let event = parse_event_value(value.clone(), Origin::New)
                    .unwrap_or_else(|e| panic!("{t}: the {what} does not parse: {e:?}: {line}"));
                assert_eq!(event.event_type, t);
                for field in def.fields {
                    assert!(
                        value["data"].get(field.name).is_some(),
                        "{t}: the {what} leaves out `{}`",
                        field.name
                    );
                }
            }
            let template = def.template_line();
            assert!(template.contains("\"source\""), "{t}");
            // Required fields come first in the data, as the table lists them.
            let data_at = template.find("\"data\": ").unwrap() + 8;
            let mut last = data_at;
            for field in def.fields {
                let at = template[data_at..]
                    .find(&format!("\"{}\":", field.name))
                    .map(|i| i + data_at)
                    .unwrap();
                assert!(at >= last, "{t}: `{}` is out of order", field.name);
                last = at;
            }
            let docs = def.field_docs();
            for field in def.fields {
                assert!(docs.iter().any(|d| d.name == field.name), "{t}");
            }
        }
        let stops = definition(EventType::TripAnnounced).field_docs();
        assert!(
            stops
                .iter()
                .any(|d| d.name == "stops[].place" && d.required)
        );
        let sale = definition(EventType::ArmsSaleAnnounced).field_docs();
        assert!(sale.iter().any(|d| d.name == "value.currency"));
    }

    #[test]
    fn stops_are_described_too() {
        let def = definition(EventType::TripAnnounced);
        let example = data(&def);
        let stop = example["stops"][0].as_object().unwrap().clone();
        let mut names: Vec<&str> = STOP_FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let mut given: Vec<&str> = stop.keys().map(String::as_str).collect();
        given.sort_unstable();
        assert_eq!(given, names);
        for field in STOP_FIELDS {
            let mut without = example.clone();
            let mut s = stop.clone();
            s.remove(field.name);
            without.insert("stops".into(), Value::Array(vec![Value::Object(s)]));
            let parsed = EventData::parse(EventType::TripAnnounced, &Value::Object(without));
            assert_eq!(parsed.is_ok(), !field.required, "stops[0].{}", field.name);
        }
    }
}
