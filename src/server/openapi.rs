//! The OpenAPI document the server publishes at `GET /openapi.json`.
//!
//! The paths, parameters and answers are written by hand in `openapi.json`; the
//! schemas of what goes in are generated here from the model, so that they cannot
//! drift from it: one schema per event type (its `type`, the streams it goes in, its
//! `data` from [`crate::model::fields`]), and the ids, dates, tags and amounts with the
//! patterns and ranges the parser accepts. The hand-written part refers to these by
//! `$ref` (`#/components/schemas/Event`, `StreamId`, `Extent`, …).
//!
//! Guarantees: a value the generated schemas accept is accepted by the parser, except
//! where the rule depends on the log (entities must be registered, amendments must
//! point at an event of the stream, an id may not be reused for other content) or
//! relates two values (an interval must not end before it starts); the tests below
//! generate strings from each pattern and parse them.

use crate::model::countries::COUNTRIES;
use crate::model::currencies::CODES;
use crate::model::fields::{self, Field, Kind, META_FIELDS, SOURCE_FIELDS, STOP_FIELDS, TypeDef};
use crate::model::ids::{ENTITY_KINDS, MAX_STREAM_ID_LEN};
use crate::model::types::{CategoryRule, EventType, MAX_AMOUNT, MIN_AMOUNT, Stance};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The hand-written part of the document.
const BASE: &str = include_str!("openapi.json");

/// The whole document, as served.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc: Value = serde_json::from_str(BASE).expect("openapi.json is valid JSON");
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("openapi.json has components.schemas");
    schemas.extend(generated_schemas());
    serde_json::to_string_pretty(&doc).expect("a JSON value always serializes")
});

/// The largest u64, the range of positions and versions.
const U64_MAX: u64 = u64::MAX;

/// Lowercase letters, digits and `-`: the characters of categories and slugs.
const TOKEN_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789-";
const TOKEN: &str = "[a-z0-9-]+";

/// A regex for any token but `word` (no look-around: every regex dialect takes it).
fn token_except(word: &str) -> String {
    let n = word.len();
    let mut alternatives = vec![
        format!("[a-z0-9-]{{1,{}}}", n - 1),
        format!("[a-z0-9-]{{{},}}", n + 1),
    ];
    for (i, c) in word.char_indices() {
        let others: String = TOKEN_CHARS
            .chars()
            .filter(|&x| x != c)
            .map(|x| {
                if x == '-' {
                    "\\-".to_owned()
                } else {
                    x.to_string()
                }
            })
            .collect();
        alternatives.push(format!(
            "{}[{others}][a-z0-9-]{{{}}}",
            &word[..i],
            n - i - 1
        ));
    }
    format!("(?:{})", alternatives.join("|"))
}

/// `country:XX` for every built-in code.
fn country_regex() -> String {
    let codes: Vec<&str> = COUNTRIES.iter().map(|(code, _)| *code).collect();
    format!("country:(?:{})", codes.join("|"))
}

/// The kinds of entity that are registered (all but countries): `person|org|…`.
fn registered_kinds() -> String {
    let kinds: Vec<&str> = ENTITY_KINDS
        .iter()
        .copied()
        .filter(|k| *k != "country")
        .collect();
    kinds.join("|")
}

/// Entity ids: `person:`, `org:`, `office:`, `place:` with a slug, or a country.
pub fn entity_id_pattern() -> String {
    format!(
        "^(?:(?:{}):{TOKEN}|{})$",
        registered_kinds(),
        country_regex()
    )
}

/// The ids an `entity.registered` may register: any entity's but a country's.
pub fn registered_entity_pattern() -> String {
    format!("^(?:{}):{TOKEN}$", registered_kinds())
}

/// Stream ids: `category:slug`, or a country.
pub fn stream_id_pattern() -> String {
    format!(
        "^(?:{}:{TOKEN}|{})$",
        token_except("country"),
        country_regex()
    )
}

/// Streams of one category.
pub fn category_stream_pattern(category: &str) -> String {
    format!("^{category}:{TOKEN}$")
}

const YEAR: &str = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})";
const MONTH: &str = "(?:0[1-9]|1[0-2])";
/// A month and a day that every year has (29 February is in [`LEAP_DAY`]).
const MONTH_DAY: &str = "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)";
/// 29 February of a leap year.
const LEAP_DAY: &str =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29";
const TIME: &str = "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";

fn date() -> String {
    format!("(?:{YEAR}-{MONTH_DAY}|{LEAP_DAY})")
}

/// An RFC 3339 instant, as `occurred`, `as_of` and the like take it.
pub fn instant() -> String {
    format!("{}{TIME}", date())
}

/// One point of an extent: a year, a month, a day or an instant.
fn point() -> String {
    format!("(?:{YEAR}|{YEAR}-{MONTH}|{}|{})", date(), instant())
}

/// An extent: a point or an interval of two, optionally approximate.
pub fn extent_pattern() -> String {
    let p = point();
    format!("^{p}(?:/{p})?~?$")
}

/// `known_at`: an extent that is not approximate.
pub fn known_at_pattern() -> String {
    let p = point();
    format!("^{p}(?:/{p})?$")
}

/// `as_of`: a position or an RFC 3339 time.
pub fn as_of_pattern() -> String {
    format!("^(?:[0-9]{{1,19}}|{})$", instant())
}

/// At least one character that is not white space (as Rust's `char::is_whitespace`).
pub const NOT_BLANK: &str =
    "[^\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

/// A web address as a new event's `source.url` must be (see
/// `model::event::check_url`): `http://` or `https://`, in any case, then at least one
/// character that is neither white space (as Rust's `char::is_whitespace`) nor a
/// control character.
pub const URL: &str = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\x00-\\x20\\x7F-\\x9F\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]+$";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The schema, also taking `null` (which the parser reads as absent).
fn nullable(schema: Value) -> Value {
    if schema.get("$ref").is_some() {
        json!({ "allOf": [schema], "nullable": true })
    } else {
        let mut schema = schema;
        schema["nullable"] = Value::Bool(true);
        schema
    }
}

fn with_description(mut schema: Value, about: &str) -> Value {
    if schema.get("$ref").is_some() {
        schema = json!({ "allOf": [schema] });
    }
    schema["description"] = about.into();
    schema
}

fn kind_schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({ "type": "string" }),
        Kind::Name => json!({ "type": "string", "pattern": NOT_BLANK }),
        Kind::Url => json!({ "type": "string", "pattern": URL }),
        Kind::Texts { at_least } => {
            json!({ "type": "array", "items": { "type": "string" }, "minItems": at_least })
        }
        Kind::Names => {
            json!({ "type": "array", "items": { "type": "string", "pattern": NOT_BLANK } })
        }
        Kind::Entity => reference("EntityId"),
        Kind::Country => reference("CountryId"),
        Kind::Entities { at_least } => {
            json!({ "type": "array", "items": reference("EntityId"), "minItems": at_least })
        }
        Kind::Streams { at_least } => {
            json!({ "type": "array", "items": reference("StreamId"), "minItems": at_least })
        }
        Kind::Stream => reference("StreamId"),
        Kind::Extent => reference("Extent"),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Money => reference("Money"),
        Kind::Stance => reference("Stance"),
        Kind::AgreementStatus => json!({
            "type": "string",
            "enum": crate::model::types::AgreementStatus::ALL.map(|s| s.as_str()),
        }),
        Kind::EventId => reference("Uuid"),
        Kind::Source => reference("SourceIn"),
        Kind::Stops => json!({ "type": "array", "items": reference("Stop"), "minItems": 1 }),
        Kind::Object => json!({ "type": "object" }),
        Kind::Number => json!({ "type": "number" }),
    }
}

/// An object schema of these fields: no others, the required ones required, the
/// optional ones also `null`.
fn object_schema(fields: &[Field], description: &str) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let schema = with_description(kind_schema(f.kind), f.about);
        let schema = if f.required {
            required.push(f.name);
            schema
        } else {
            nullable(schema)
        };
        properties.insert(f.name.to_owned(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The schema of a type's `data`.
fn data_schema(def: &TypeDef) -> Value {
    let mut schema = object_schema(
        def.fields,
        &format!("The data of `{}`: {}", def.event_type, def.about),
    );
    if !def.at_least_one_of.is_empty() {
        // A given field that is null counts as absent, so "given" means "not null".
        let choices: Vec<Value> = def
            .at_least_one_of
            .iter()
            .map(|name| {
                json!({ "required": [name], "properties": { *name: { "not": { "nullable": true, "enum": [null] } } } })
            })
            .collect();
        schema["anyOf"] = json!(choices);
    }
    schema["example"] = serde_json::from_str(def.example.data).expect("examples are JSON");
    schema
}

/// The schema of the streams a type goes in.
fn stream_schema(t: EventType) -> Value {
    match t.category_rule() {
        CategoryRule::Entity if t == EventType::EntityRegistered => json!({
            "type": "string",
            "pattern": registered_entity_pattern(),
            "maxLength": MAX_STREAM_ID_LEN,
            "description": "The entity's own id: `person:`, `org:`, `office:` or `place:` (countries are built in; give one another name with `entity.alias_added`).",
        }),
        CategoryRule::Entity => with_description(reference("EntityId"), "The entity's own id."),
        CategoryRule::Exactly(category) => json!({
            "type": "string",
            "pattern": category_stream_pattern(category),
            "maxLength": MAX_STREAM_ID_LEN,
            "description": format!("A `{category}:` stream."),
        }),
        CategoryRule::Any => with_description(reference("StreamId"), "Any stream."),
        CategoryRule::TargetStream => {
            with_description(reference("StreamId"), "The stream of the target event.")
        }
    }
}

/// The schema of one event of a type going in; `stream_required` is false on a
/// stream's route, where the path names it.
fn event_schema(def: &TypeDef, stream_required: bool) -> Value {
    let t = def.event_type;
    let name = t.as_str();
    let occurred = with_description(
        reference("Extent"),
        if t.is_amendment() {
            "When the amendment was made or reported."
        } else {
            "When it happened in the world."
        },
    );
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        nullable(with_description(
            json!({
                "allOf": [reference("Uuid")],
                "not": { "enum": ["00000000-0000-0000-0000-000000000000"] },
            }),
            "Generated (UUIDv7) when absent; appending an id again with the same content is a no-op, with other content an error (422). Not the nil UUID.",
        )),
    );
    let mut stream = stream_schema(t);
    if !stream_required {
        stream["description"] =
            "On a stream's route it may be left out; when given, it is the path's.".into();
    }
    properties.insert("stream".into(), stream);
    properties.insert(
        "type".into(),
        json!({ "type": "string", "enum": [name], "description": def.about }),
    );
    properties.insert(
        "occurred".into(),
        if !t.needs_occurred() {
            json!({ "type": "string", "nullable": true, "enum": [null], "description": "Entities are not dated: leave it out." })
        } else if !t.occurred_defaults_to_recorded() {
            occurred
        } else {
            nullable(occurred)
        },
    );
    properties.insert(
        "occurred_text".into(),
        if t.needs_occurred() {
            nullable(
                json!({ "type": "string", "description": "The article's own words for the date." }),
            )
        } else {
            json!({ "type": "string", "nullable": true, "enum": [null], "description": "Entities are not dated: leave it out." })
        },
    );
    properties.insert("data".into(), reference(&format!("Data.{name}")));
    properties.insert("source".into(), nullable(reference("SourceIn")));
    properties.insert(
        "tags".into(),
        nullable(json!({ "type": "array", "items": reference("Tag") })),
    );
    properties.insert("meta".into(), nullable(reference("Meta")));
    properties.insert("expect".into(), nullable(reference("Expect")));
    let mut required = vec!["type", "data"];
    if stream_required {
        required.insert(0, "stream");
    }
    if t.needs_occurred() && !t.occurred_defaults_to_recorded() {
        required.push("occurred");
    }
    let mut example = Map::new();
    if stream_required {
        example.insert("stream".into(), def.example.stream.into());
    }
    example.insert("type".into(), name.into());
    if let Some(occurred) = def.example.occurred {
        example.insert("occurred".into(), occurred.into());
    }
    example.insert(
        "data".into(),
        serde_json::from_str(def.example.data).expect("examples are JSON"),
    );
    json!({
        "type": "object",
        "description": format!("A `{name}` event, in {}.", def.stream_rule()),
        "additionalProperties": false,
        "required": required,
        "properties": properties,
        "example": example,
    })
}

/// Every generated schema, by component name.
pub fn generated_schemas() -> Map<String, Value> {
    let mut s = Map::new();
    let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    s.insert(
        "EventType".into(),
        json!({ "type": "string", "enum": names, "description": "An event type of schema 1." }),
    );
    let dated: Vec<&str> = EventType::ALL
        .iter()
        .filter(|t| t.is_timeline_entry())
        .map(|t| t.as_str())
        .collect();
    s.insert(
        "TimelineEventType".into(),
        json!({ "type": "string", "enum": dated, "description": "An event type whose facts are timeline entries: not a registration or an amendment." }),
    );
    s.insert(
        "StreamId".into(),
        json!({
            "type": "string",
            "pattern": stream_id_pattern(),
            "maxLength": MAX_STREAM_ID_LEN,
            "description": "A stream id `<category>:<slug>` in lowercase letters, digits and `-`; the category `country` takes an ISO 3166-1 alpha-2 code in capitals.",
            "example": "trip:blinken-final-tour-2025",
        }),
    );
    s.insert(
        "EntityId".into(),
        json!({
            "type": "string",
            "pattern": entity_id_pattern(),
            "maxLength": MAX_STREAM_ID_LEN,
            "description": "An entity id: `person:`, `org:`, `office:` or `place:` with a slug, registered by an `entity.registered` event before anything refers to it (else 422), or a built-in country `country:XX`.",
            "example": "person:antony-blinken",
        }),
    );
    s.insert(
        "CountryId".into(),
        json!({
            "type": "string",
            "pattern": format!("^{}$", country_regex()),
            "description": "A built-in country: `country:` and its ISO 3166-1 alpha-2 code.",
            "example": "country:KR",
        }),
    );
    s.insert(
        "Extent".into(),
        json!({
            "type": "string",
            "pattern": extent_pattern(),
            "description": "An extent: `2025`, `2025-01`, `2025-01-05`, an RFC 3339 instant, `A/B` for an interval (which must not end before it starts), a trailing `~` when approximate.",
            "example": "2025-01-06/2025-01-11~",
        }),
    );
    s.insert(
        "KnownAt".into(),
        json!({
            "type": "string",
            "pattern": known_at_pattern(),
            "description": "A date of the reported clock: `2025`, `2025-01`, `2025-01-05`, an RFC 3339 instant, or `A/B` for an interval (which must not end before it starts); not approximate.",
            "example": "2025-01-04",
        }),
    );
    s.insert(
        "AsOf".into(),
        json!({
            "type": "string",
            "pattern": as_of_pattern(),
            "description": "A position (digits), or an RFC 3339 time of the `recorded` clock.",
            "example": "30",
        }),
    );
    s.insert(
        "Uuid".into(),
        json!({
            "type": "string",
            "format": "uuid",
            "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            "example": "01942100-0000-7000-8000-000002000001",
        }),
    );
    s.insert(
        "Tag".into(),
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": crate::model::event::MAX_TAG_CHARS,
            "pattern": format!("^{NOT_BLANK}(?:[\\s\\S]*{NOT_BLANK})?$"),
            "description": "A tag: 1 to 64 characters, with no white space at its ends (filters match it in any case).",
            "example": "indo-pacific",
        }),
    );
    s.insert(
        "TagFilter".into(),
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": crate::model::event::MAX_TAG_CHARS,
            "pattern": NOT_BLANK,
            "description": "A tag to filter by: 1 to 64 characters, not all white space, matched in any case and without the white space at its ends.",
            "example": "indo-pacific",
        }),
    );
    let stances = [
        Stance::Supports,
        Stance::Opposes,
        Stance::Rejects,
        Stance::Neutral,
    ]
    .map(Stance::as_str);
    s.insert(
        "Stance".into(),
        json!({ "type": "string", "enum": stances }),
    );
    s.insert(
        "Money".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["amount", "currency"],
            "properties": {
                "amount": { "type": "number", "minimum": MIN_AMOUNT, "maximum": MAX_AMOUNT },
                "currency": { "type": "string", "enum": CODES, "description": "An ISO 4217 code: a current one, or one replaced since 1999.", "example": "USD" },
            },
        }),
    );
    s.insert(
        "Expect".into(),
        json!({
            "description": "The concurrency check on the stream: `any` (default), `none` (the stream must not exist), `exists`, or its current version (a number, or its digits as a string). A failed check is 409.",
            "anyOf": [
                { "type": "integer", "minimum": 0, "maximum": U64_MAX },
                { "type": "string", "pattern": "^(?:any|none|exists|\\+?[0-9]{1,19})$" },
            ],
        }),
    );
    // A new event's source must have a web address; one read from the log may not
    // (a log written before that rule, restored from its export).
    let source_in = object_schema(
        SOURCE_FIELDS,
        "Where a fact was reported (in a new event: its `url`, when given, is an http(s) address).",
    );
    let mut source = source_in.clone();
    source["properties"]["url"]
        .as_object_mut()
        .expect("a source has a url")
        .remove("pattern");
    source["properties"]["url"]["description"] = "Where it can be read.".into();
    source["description"] = "Where a fact was reported.".into();
    s.insert("SourceIn".into(), source_in);
    s.insert("Source".into(), source);
    s.insert(
        "Meta".into(),
        object_schema(META_FIELDS, "Who wrote an event and why, for tracing."),
    );
    s.insert(
        "Stop".into(),
        object_schema(STOP_FIELDS, "One stop of a trip as announced."),
    );
    let events: Vec<Value> = fields::definitions()
        .map(|def| reference(&format!("Event.{}", def.event_type)))
        .collect();
    let stream_events: Vec<Value> = fields::definitions()
        .map(|def| reference(&format!("StreamEvent.{}", def.event_type)))
        .collect();
    s.insert(
        "Event".into(),
        json!({
            "description": "An event going in: the format of `chronicle append`, one schema per type. Unknown fields are refused; `position`, `version`, `recorded`, `schema` and `hash` are set by the store.",
            "oneOf": events,
        }),
    );
    s.insert(
        "StreamEvent".into(),
        json!({
            "description": "An event going in on a stream's route: `stream` may be left out.",
            "oneOf": stream_events,
        }),
    );
    for def in fields::definitions() {
        let name = def.event_type.as_str();
        s.insert(format!("Data.{name}"), data_schema(&def));
        s.insert(format!("Event.{name}"), event_schema(&def, true));
        s.insert(format!("StreamEvent.{name}"), event_schema(&def, false));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::check_url;
    use crate::model::{EntityId, Extent, StreamId};
    use proptest::prelude::*;
    use proptest::string::string_regex;

    /// Strings generated from a documented pattern (without its anchors).
    fn from(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
        let inner = pattern
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .expect("anchored");
        string_regex(inner).expect("proptest reads the pattern")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_stream_ids_parse(s in from(&stream_id_pattern())) {
            prop_assume!(s.len() <= MAX_STREAM_ID_LEN);
            prop_assert!(StreamId::parse(&s).is_ok(), "{s}");
        }

        #[test]
        fn generated_registered_entity_ids_are_registrable(s in from(&registered_entity_pattern())) {
            prop_assume!(s.len() <= MAX_STREAM_ID_LEN);
            let id = EntityId::parse(&s);
            prop_assert!(id.as_ref().is_ok_and(|id| id.country_name().is_none()), "{s}: {id:?}");
        }

        #[test]
        fn generated_entity_ids_parse(s in from(&entity_id_pattern())) {
            prop_assume!(s.len() <= MAX_STREAM_ID_LEN);
            prop_assert!(EntityId::parse(&s).is_ok(), "{s}");
        }

        #[test]
        fn generated_category_streams_parse(s in from(&category_stream_pattern("arms-sale"))) {
            prop_assume!(s.len() <= MAX_STREAM_ID_LEN);
            prop_assert_eq!(StreamId::parse(&s).map(|s| s.category().to_owned()), Ok("arms-sale".to_owned()));
        }

        #[test]
        fn generated_extents_parse(s in from(&extent_pattern())) {
            match s.parse::<Extent>() {
                Ok(_) => {}
                // The one rule a pattern cannot state: the end is not before the start.
                Err(e) => prop_assert!(
                    e.0.contains("ends before it starts") || e.0.contains("end begins before its start"),
                    "{s}: {e}"
                ),
            }
        }

        #[test]
        fn generated_known_at_dates_parse(s in from(&known_at_pattern())) {
            match Extent::known_at(&s) {
                Ok(_) => {}
                Err(e) => prop_assert!(
                    e.0.contains("ends before it starts") || e.0.contains("end begins before its start"),
                    "{s}: {e}"
                ),
            }
        }

        #[test]
        fn generated_urls_are_web_addresses(s in from(URL)) {
            prop_assert!(check_url(&source(&s), "source.").is_ok(), "{s:?}");
        }

        #[test]
        fn generated_as_of_times_parse(s in from(&as_of_pattern())) {
            let ok = super::super::params::digits(&s).is_some()
                || chrono::DateTime::parse_from_rfc3339(&s).is_ok();
            prop_assert!(ok, "{s}");
        }
    }

    fn source(url: &str) -> crate::model::event::Source {
        crate::model::event::Source {
            publisher: "p".into(),
            title: None,
            url: Some(url.into()),
            published: None,
            quote: None,
            speaker: None,
        }
    }

    /// The characters at the edges of what [`URL`] leaves out are those `check_url`
    /// refuses, and those just past them it takes.
    #[test]
    fn a_web_address_is_refused_for_what_the_pattern_leaves_out() {
        for c in [
            '\x00', '\x1F', ' ', '\x7F', '\u{85}', '\u{9F}', '\u{A0}', '\u{1680}', '\u{2000}',
            '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}', '\t', '\n',
        ] {
            let url = format!("https://news.example/a{c}b");
            assert!(check_url(&source(&url), "source.").is_err(), "{url:?}");
        }
        for url in [
            "https://news.example/a\u{200B}b",
            "https://news.example/a\u{180E}b",
            "https://news.example/\u{FEFF}",
            "https://例え.jp/",
            "HTTP://x",
            "hTtPs://x",
            "http:///",
        ] {
            assert!(check_url(&source(url), "source.").is_ok(), "{url:?}");
        }
        for url in [
            "https://",
            "http:/x",
            "ftp://x",
            "javascript:alert(1)",
            "news.example",
        ] {
            assert!(check_url(&source(url), "source.").is_err(), "{url:?}");
        }
    }

    #[test]
    fn every_type_has_an_event_schema_with_its_data() {
        let schemas = generated_schemas();
        for def in fields::definitions() {
            let name = def.event_type.as_str();
            let event = &schemas[&format!("Event.{name}")];
            assert_eq!(event["properties"]["type"]["enum"], json!([name]));
            let data = &schemas[&format!("Data.{name}")];
            let props: Vec<&String> = data["properties"].as_object().unwrap().keys().collect();
            let mut names: Vec<&str> = def.fields.iter().map(|f| f.name).collect();
            names.sort_unstable();
            assert_eq!(props, names, "{name}");
        }
    }
}
