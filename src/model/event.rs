//! The event envelope going in ([`ProposedEvent`], parsed by [`parse_event`]) and coming
//! out ([`RecordedEvent`]), and the two digests over it.
//!
//! Parsing is pure: no clock, no store. What needs the store (is the entity registered,
//! does the stream have the expected version, is the id new) is checked by the store.
//! The serialized [`RecordedEvent`] is the stored format and the export format: field
//! names and order are a compatibility boundary, guarded by a golden test.

use super::extent::Extent;
use super::ids::{Position, StreamId, Version};
use super::types::{CategoryRule, EventData, EventType};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

/// Largest event accepted, as one line of JSON, in bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// A tag is 1 to 64 characters, not all white space.
pub fn check_tag(tag: &str) -> Result<(), &'static str> {
    match tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        true => Err("a tag is 1 to 64 characters, not all white space"),
        false => Ok(()),
    }
}

/// Room for the fields the store adds (`position`, `id`, `recorded`, `hash`…), so that
/// the export of an event of the largest size restores.
pub const EXPORT_ALLOWANCE: usize = 1024;

/// The largest event of this origin, in bytes of compact JSON: [`MAX_EVENT_BYTES`] for a
/// new event, plus [`EXPORT_ALLOWANCE`] for an exported one.
pub fn max_event_bytes(origin: Origin) -> usize {
    match origin {
        Origin::New => MAX_EVENT_BYTES,
        Origin::Export => MAX_EVENT_BYTES + EXPORT_ALLOWANCE,
    }
}

/// The message for an event of `size` bytes above the limit of its origin. An exported
/// event is what a log stored, which was under the limit: one above it was edited or
/// made elsewhere.
pub fn too_large_message(size: usize, origin: Origin) -> String {
    match origin {
        Origin::New => format!(
            "the event is {size} bytes, more than the limit of {MAX_EVENT_BYTES}; split it or shorten its texts"
        ),
        Origin::Export => format!(
            "the exported event is {size} bytes, more than an exported event can be ({}: the limit of {MAX_EVENT_BYTES} and {EXPORT_ALLOWANCE} for what the log adds); the line was edited or not written by `chronicle export`",
            max_event_bytes(origin)
        ),
    }
}

/// The size of a value as compact JSON, which is how the log stores it.
fn compact_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a counter cannot fail: it holds no non-string keys.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Where a fact was reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub publisher: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The `reported` clock: when the source published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Extent>,
    /// A verbatim excerpt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Who spoke, when the source does not name them ("a White House official"); the
    /// outlet is the `publisher`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// Who wrote an event and why, for tracing chains of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// The optimistic-concurrency check on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// No check.
    #[default]
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist.
    Exists,
    /// The stream's current version must be exactly this.
    Version(Version),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Any => f.write_str("any"),
            Expect::NoStream => f.write_str("none"),
            Expect::Exists => f.write_str("exists"),
            Expect::Version(v) => write!(f, "{v}"),
        }
    }
}

impl std::str::FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(Expect::Any),
            "none" => Ok(Expect::NoStream),
            "exists" => Ok(Expect::Exists),
            n => n
                .parse::<u64>()
                .map(|v| Expect::Version(Version(v)))
                .map_err(|_| {
                    format!(
                        "`{s}` is not an expectation: use any, none, exists or a version number"
                    )
                }),
        }
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            Value::Number(n) => n
                .as_u64()
                .map(|v| Expect::Version(Version(v)))
                .ok_or_else(|| serde::de::Error::custom("expected a version number (0 or more)")),
            _ => Err(serde::de::Error::custom(
                "expected \"any\", \"none\", \"exists\" or a version number",
            )),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        EventType::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown event type `{name}`; `chronicle types` (or `GET /types`) lists them"
            ))
        })
    }
}

/// The fields an export carries that the store sets: kept only when restoring an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub position: Position,
    pub version: Version,
    pub recorded: DateTime<Utc>,
    pub hash: String,
}

/// A validated event on its way into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedEvent {
    /// `None` asks the store to generate a UUIDv7.
    pub id: Option<Uuid>,
    pub stream: StreamId,
    pub event_type: EventType,
    /// `None` only for a type without a date (`entity.*`) or an amendment, to which the
    /// store gives the day it records it.
    pub occurred: Option<Extent>,
    pub occurred_text: Option<String>,
    /// The data as written (numbers keep their form); `typed` is the same, parsed.
    pub data: Value,
    pub typed: EventData,
    pub source: Option<Source>,
    pub tags: Vec<String>,
    pub meta: Option<Meta>,
    pub expect: Expect,
    /// Present when the line came from an export.
    pub restored: Option<Restored>,
}

/// An event as the log holds it and as every reader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedEvent {
    pub position: Position,
    pub version: Version,
    pub id: Uuid,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(with = "recorded_format")]
    pub recorded: DateTime<Utc>,
    pub schema: u32,
    /// Hex SHA-256 over the previous event's hash and this event without its hash.
    /// Empty only while the hash is being computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

pub(crate) use recorded_format::micros_text;

/// The `recorded` clock is written with microseconds in UTC, so that it round-trips
/// exactly through an export.
mod recorded_format {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        match micros_text(t) {
            Some(text) => s.serialize_str(std::str::from_utf8(&text).expect("ASCII digits")),
            None => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }

    /// `t` as `to_rfc3339_opts(SecondsFormat::Micros, true)` writes it, without parsing a
    /// pattern or allocating (every event's is written as it is sealed), for the years
    /// 1 to 9999 and no leap second; `None` otherwise.
    pub fn micros_text(t: &DateTime<Utc>) -> Option<[u8; 27]> {
        use chrono::{Datelike, Timelike};
        let (year, nanos) = (t.year(), t.nanosecond());
        if !(1..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 6, nanos / 1000);
        Some(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}

/// The hash that precedes the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Bytes as lowercase hex, as hashes are written.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)].into());
        s.push(DIGITS[usize::from(b & 0xf)].into());
    }
    s
}

/// Parses a 64-digit hex hash.
pub fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Room for most events' JSON from the start, rather than growing a buffer from nothing
/// (in steps of 8, 16, ... bytes) for every event the writer seals and digests.
const SERIALIZED_CAPACITY: usize = 2048;

impl RecordedEvent {
    /// The chain hash of this event given the previous event's hash. Covers every field
    /// but `hash` itself, so changing any of them, or any earlier event, changes it.
    pub fn chain_hash(&self, previous: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.body_without_hash());
        to_hex(&h.finalize())
    }

    /// Sets this event's chain hash given the previous event's hash, and returns the
    /// event as the log stores it (compact JSON, `hash` last) and the hash's bytes: one
    /// serialization for both, where [`RecordedEvent::chain_hash`] and a `to_vec` would
    /// make two.
    pub fn seal(&mut self, previous: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
        self.hash.clear();
        let mut json = Vec::with_capacity(SERIALIZED_CAPACITY);
        serde_json::to_writer(&mut json, self).expect("an event always serializes");
        let mut h = Sha256::new();
        h.update(previous);
        h.update(&json);
        let hash: [u8; 32] = h.finalize().into();
        self.hash = to_hex(&hash);
        // `hash` is the last field, and hex digits need no escaping.
        json.pop();
        json.extend_from_slice(b",\"hash\":\"");
        json.extend_from_slice(self.hash.as_bytes());
        json.extend_from_slice(b"\"}");
        debug_assert_eq!(
            json,
            serde_json::to_vec(self).expect("an event always serializes")
        );
        (json, hash)
    }

    /// The event as JSON without its `hash`, which is its last field and is left out
    /// when empty: cut from the end of the whole event rather than cloning it.
    fn body_without_hash(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec(self).expect("an event always serializes");
        if self.hash.is_empty() {
            return body;
        }
        let field = format!(
            ",\"hash\":{}}}",
            serde_json::to_string(&self.hash).expect("a string serializes")
        );
        if body.ends_with(field.as_bytes()) {
            body.truncate(body.len() - field.len());
            body.push(b'}');
            return body;
        }
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        serde_json::to_vec(&unhashed).expect("an event always serializes")
    }

    /// The digest of what the writer said (not what the store added): two appends with
    /// the same id are the same event exactly when their content digests agree.
    pub fn content_digest(&self) -> [u8; 32] {
        content_digest(
            &self.stream,
            self.event_type,
            &self.occurred,
            &self.occurred_text,
            &self.data,
            &self.source,
            &self.tags,
            &self.meta,
        )
    }
}

impl ProposedEvent {
    /// See [`RecordedEvent::content_digest`].
    pub fn content_digest(&self) -> [u8; 32] {
        content_digest(
            &self.stream,
            self.event_type,
            &self.occurred,
            &self.occurred_text,
            &self.data,
            &self.source,
            &self.tags,
            &self.meta,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn content_digest(
    stream: &StreamId,
    event_type: EventType,
    occurred: &Option<Extent>,
    occurred_text: &Option<String>,
    data: &Value,
    source: &Option<Source>,
    tags: &[String],
    meta: &Option<Meta>,
) -> [u8; 32] {
    // The bytes of a JSON object of these fields as serde_json's `Value` writes it: keys
    // sorted, nested objects too (the small structs are written through copies of
    // themselves with their fields in sorted order), and `data`, already a `Value`,
    // written where it is instead of copied into one. An extent is a string.
    #[derive(Serialize)]
    struct Content<'a> {
        data: &'a Value,
        meta: Option<SortedMeta<'a>>,
        occurred: &'a Option<Extent>,
        occurred_text: &'a Option<String>,
        source: Option<SortedSource<'a>>,
        stream: &'a StreamId,
        tags: &'a [String],
        #[serde(rename = "type")]
        event_type: EventType,
    }
    #[derive(Serialize)]
    struct SortedMeta<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        author: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        causation_id: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a String>,
    }
    #[derive(Serialize)]
    struct SortedSource<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        published: Option<&'a Extent>,
        publisher: &'a String,
        #[serde(skip_serializing_if = "Option::is_none")]
        quote: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        speaker: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a String>,
    }
    let content = Content {
        data,
        meta: meta.as_ref().map(|m| SortedMeta {
            author: m.author.as_ref(),
            causation_id: m.causation_id.as_ref(),
            correlation_id: m.correlation_id.as_ref(),
        }),
        occurred,
        occurred_text,
        source: source.as_ref().map(|s| SortedSource {
            published: s.published.as_ref(),
            publisher: &s.publisher,
            quote: s.quote.as_ref(),
            speaker: s.speaker.as_ref(),
            title: s.title.as_ref(),
            url: s.url.as_ref(),
        }),
        stream,
        tags,
        event_type,
    };
    let mut bytes = Vec::with_capacity(SERIALIZED_CAPACITY);
    serde_json::to_writer(&mut bytes, &content).expect("a JSON value always serializes");
    Sha256::digest(&bytes).into()
}

/// Why an input is not a valid event: the line (when known), the field, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// 1-based line in the input; `None` for a single event given on the command line.
    pub line: Option<usize>,
    /// The offending field, as a path (`data.stops[1].place`); `None` for the whole line.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl ValidationError {
    /// An error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            line: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The same error, attributed to a line of the input.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
}

/// The fields a new event may have, as the end of an "unknown field" message.
const NEW_EVENT_FIELDS: &str = ", expected one of `id`, `stream`, `type`, `occurred`, `occurred_text`, `data`, `source`, `tags`, `meta`, `expect`";

/// The envelope as written, before its parts are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    #[serde(default)]
    id: Option<Uuid>,
    stream: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    occurred: Option<String>,
    #[serde(default)]
    occurred_text: Option<String>,
    data: Value,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(default)]
    expect: Option<Expect>,
    // Set by the store; accepted only from an export being restored.
    #[serde(default)]
    position: Option<Position>,
    #[serde(default)]
    version: Option<Version>,
    #[serde(default)]
    recorded: Option<String>,
    #[serde(default)]
    schema: Option<u32>,
    #[serde(default)]
    hash: Option<String>,
}

/// Whether a line may carry the fields the store sets (`position`, `recorded`, `hash`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written by a person or a program: the store sets those fields.
    New,
    /// A line of `export` output, restored into a store.
    Export,
}

/// The rules only a new event is held to; what is stored or exported is read as it is,
/// so that a log written before a rule was added still reads and restores:
/// - a sum of money, or a correction's new currency, names an ISO 4217 code
///   ([`super::currencies`]);
/// - a country is built in, never registered (`entity.registered` on `country:XX`);
/// - a sale is between two parties and sells at least one item ([`check_sale`]; a
///   correction is held to it for the fields its patch sets, by the store's rules);
/// - no alias of a registration is blank, nor the reason of a correction or a
///   retraction;
/// - an event's `id` is not the nil UUID (checked by the parser);
/// - a source's `url` is a web address ([`check_url`]; the envelope's source is checked
///   by the parser, the source `evidence.added` adds here);
/// - no text is a template's `<placeholder>` left unreplaced, and an entity's event has
///   no `occurred` or `occurred_text` (checked by the parser).
pub fn check_new(stream: &StreamId, typed: &EventData) -> Result<(), ValidationError> {
    let blank = |text: &str| text.trim().is_empty();
    match typed {
        EventData::EntityRegistered(r) => check_aliases(&r.aliases, "data.")?,
        EventData::EvidenceAdded(e) => check_url(&e.source, "data.source.")?,
        EventData::EventCorrected(super::types::EventCorrected { reason, .. })
        | EventData::EventRetracted(super::types::EventRetracted { reason, .. })
            if blank(reason) =>
        {
            return Err(ValidationError::field(
                "data.reason",
                "the reason must not be empty or blank; say why, as the source does",
            ));
        }
        _ => {}
    }
    if let EventData::EntityRegistered(_) = typed
        && let Some(name) =
            super::countries::country_name(stream.slug()).filter(|_| stream.category() == "country")
    {
        return Err(ValidationError::field(
            "stream",
            format!(
                "`{stream}` is built in ({name}) and is not registered; give it another name it is known by with entity.alias_added"
            ),
        ));
    }
    if let EventData::ArmsSaleAnnounced(sale) = typed {
        check_sale(sale, "data.", true, true)?;
    }
    check_currency(typed)
}

/// Refuses a new event whose text still holds a `<placeholder>` of a template from
/// `chronicle types show`: appended as is, it would stay in the log for good.
fn check_no_placeholder(raw: &RawEvent) -> Result<(), ValidationError> {
    use super::fields::is_template_placeholder;
    /// The first string of `value` that is a placeholder, with its path in `value`
    /// (built only for it: every new event goes through here).
    fn find(value: &Value) -> Option<(String, String)> {
        match value {
            Value::String(text) if is_template_placeholder(text) => {
                Some((String::new(), text.clone()))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| find(v).map(|(path, text)| (format!("[{i}]{path}"), text))),
            Value::Object(fields) => fields
                .iter()
                .find_map(|(k, v)| find(v).map(|(path, text)| (format!(".{k}{path}"), text))),
            _ => None,
        }
    }
    let source = raw.source.as_ref();
    let texts = [
        ("occurred_text", raw.occurred_text.as_deref()),
        ("source.publisher", source.map(|s| s.publisher.as_str())),
        ("source.title", source.and_then(|s| s.title.as_deref())),
        ("source.url", source.and_then(|s| s.url.as_deref())),
        ("source.quote", source.and_then(|s| s.quote.as_deref())),
        ("source.speaker", source.and_then(|s| s.speaker.as_deref())),
    ];
    let tags = raw.tags.as_deref().unwrap_or_default();
    let found = texts
        .into_iter()
        .find_map(|(field, text)| {
            text.filter(|t| is_template_placeholder(t))
                .map(|t| (field.to_owned(), t.to_owned()))
        })
        .or_else(|| {
            let i = tags.iter().position(|t| is_template_placeholder(t))?;
            Some((format!("tags[{i}]"), tags[i].clone()))
        })
        .or_else(|| find(&raw.data).map(|(path, text)| (format!("data{path}"), text)));
    match found {
        Some((field, placeholder)) => Err(ValidationError::field(
            field,
            format!(
                "`{placeholder}` is a placeholder of a `chronicle types show` template; put the real value in its place, or leave the field out when it is optional"
            ),
        )),
        None => Ok(()),
    }
}

/// A source's `url`, when it has one, is a web address: `http://` or `https://` (in any
/// case) and at least one more character, none of them white space or a control
/// character. A page shows a source as a link only then, and a `javascript:` address
/// pasted by mistake or malice is refused at the door rather than stored. `prefix` is
/// where the source is (`source.`, or `data.source.` in `evidence.added`).
pub fn check_url(source: &Source, prefix: &str) -> Result<(), ValidationError> {
    let Some(url) = &source.url else {
        return Ok(());
    };
    let refuse = |what: String| Err(ValidationError::field(format!("{prefix}url"), what));
    if url.is_empty() {
        return refuse("is empty; leave `url` out when the source has no address".into());
    }
    // The value as the message shows it: as written, but for control characters (shown
    // escaped, so that the message stays one line), and cut when long.
    let mut shown = String::new();
    for (i, c) in url.chars().enumerate() {
        if i == 120 {
            shown.push('…');
            break;
        }
        match c.is_control() {
            true => shown.extend(c.escape_debug()),
            false => shown.push(c),
        }
    }
    let odd = url
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_whitespace() || c.is_control());
    if let Some((at, c)) = odd {
        let what = match c {
            ' ' => "a space".to_owned(),
            c => format!("U+{:04X}", u32::from(c)),
        };
        let advice = match (at, c) {
            (0, _) => "remove it",
            _ if at + 1 == url.chars().count() => "remove it",
            (_, ' ') => "write a space inside an address as %20",
            _ => "remove it, or write it percent-encoded",
        };
        return refuse(format!(
            "`{shown}` has {what} at character {}: a web address has no white space or control character; {advice}",
            at + 1
        ));
    }
    let rest = ["http://", "https://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|start| start.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    match rest {
        None => refuse(format!(
            "`{shown}` is not a web address: it does not start with https:// or http://; give the address the source can be read at, or leave `url` out"
        )),
        Some("") => refuse(format!(
            "`{shown}` names no address after the scheme; give the address the source can be read at, or leave `url` out"
        )),
        Some(_) => Ok(()),
    }
}

/// A registration's aliases are not blank; `prefix` is where its data is (`data.`, or
/// `data.data.` in a correction, which is held to it when its patch sets them).
pub fn check_aliases(aliases: &[String], prefix: &str) -> Result<(), ValidationError> {
    match aliases.iter().position(|a| a.trim().is_empty()) {
        Some(i) => Err(ValidationError::field(
            format!("{prefix}aliases[{i}]"),
            "an alias must not be empty or blank; leave it out",
        )),
        None => Ok(()),
    }
}

/// A sale's rules: two parties (when `parties`), at least one item (when `items`).
/// Checked on a new sale, and on a corrected one for the fields its patch sets;
/// `prefix` is where the sale's data is (`data.`, or `data.data.` in a correction).
pub fn check_sale(
    sale: &super::types::ArmsSaleAnnounced,
    prefix: &str,
    parties: bool,
    items: bool,
) -> Result<(), ValidationError> {
    if parties && sale.seller == sale.buyer {
        return Err(ValidationError::field(
            format!("{prefix}buyer"),
            format!(
                "the buyer is the seller (`{}`); a sale is between two parties",
                sale.buyer
            ),
        ));
    }
    if items && sale.items.is_empty() {
        return Err(ValidationError::field(
            format!("{prefix}items"),
            "name at least one item sold, like [\"air defence systems\"]",
        ));
    }
    Ok(())
}

fn check_currency(typed: &EventData) -> Result<(), ValidationError> {
    let (code, field) = match typed {
        EventData::ArmsSaleAnnounced(d) => (Some(d.value.currency.as_str()), "data.value.currency"),
        EventData::AgreementReported(d) => (
            d.value.as_ref().map(|v| v.currency.as_str()),
            "data.value.currency",
        ),
        EventData::EventCorrected(c) => (
            c.data
                .as_ref()
                .and_then(|patch| patch.get("value")?.get("currency")?.as_str()),
            "data.data.value.currency",
        ),
        _ => (None, ""),
    };
    match code {
        Some(code) if !super::currencies::is_currency(code) => Err(ValidationError::field(
            field,
            super::currencies::not_a_currency(code),
        )),
        _ => Ok(()),
    }
}

/// Parses and validates one event from its JSON text. Pure: it checks the shape, the
/// types, the dates, the ids and the stream category, but nothing that needs the store.
pub fn parse_event(text: &str, origin: Origin) -> Result<ProposedEvent, ValidationError> {
    let whole = |message: String| ValidationError {
        line: None,
        field: None,
        message,
    };
    if text.len() > max_event_bytes(origin) {
        return Err(whole(too_large_message(text.len(), origin)));
    }
    let value = serde_json::from_str::<StrictValue>(text).map_err(|e| {
        // The text is one line of its file, whose number the caller adds: serde_json's
        // "at line 1 column 9" would contradict it, so only the column is kept.
        let said = e.to_string();
        let at = format!(" at line 1 column {}", e.column());
        let said = match said.strip_suffix(&at) {
            Some(what) => format!("{what} at column {}", e.column()),
            None => said,
        };
        if said.starts_with("duplicate field") {
            whole(format!("{said}; each field may appear once"))
        } else {
            whole(format!(
                "not valid JSON ({said}); each line must be one JSON object"
            ))
        }
    })?;
    parse_event_value(value.0, origin)
}

/// Parses JSON, refusing duplicate keys in any object (see [`parse_event`]): for
/// writers that take several events in one document, such as the HTTP API.
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|v| v.0)
}

/// A JSON value that refuses duplicate keys in any object: `{"stream": "a", "stream":
/// "b"}` is ambiguous, and the log keeps what it accepts forever.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// [`parse_event`] for an already parsed JSON value.
///
/// Every way into the log goes through here (lines, command-line flags, HTTP bodies), so
/// this is where the limits live: the event as compact JSON, which is how the log keeps
/// it, is at most [`MAX_EVENT_BYTES`] ([`max_event_bytes`] for an export); the checks of
/// each field are those of [`EventData::parse`] and of the envelope below. Duplicate keys
/// cannot reach a `Value`: parse text with [`parse_event`] or [`parse_json_strict`].
pub fn parse_event_value(value: Value, origin: Origin) -> Result<ProposedEvent, ValidationError> {
    if !value.is_object() {
        return Err(ValidationError {
            line: None,
            field: None,
            message: "expected a JSON object with stream, type and data".into(),
        });
    }
    let size = compact_size(&value);
    if size > max_event_bytes(origin) {
        return Err(ValidationError {
            line: None,
            field: None,
            message: too_large_message(size, origin),
        });
    }
    for field in ["source", "meta"] {
        if let Some(v) = value.get(field).filter(|v| !v.is_object() && !v.is_null()) {
            return Err(ValidationError::field(
                field,
                format!(
                    "expected a JSON object, found {}",
                    super::types::json_kind(v)
                ),
            ));
        }
    }
    let raw: RawEvent = serde_path_to_error::deserialize(value).map_err(|e| {
        let (path, mut message) = super::types::explain(e);
        // serde lists every field of the envelope, those only an export may carry too
        // (the list of a field inside it, like `source`, is that field's own).
        if matches!(origin, Origin::New)
            && !path.contains('.')
            && message.starts_with("unknown field")
            && let Some(at) = message.find(", expected one of")
        {
            message.truncate(at);
            message.push_str(NEW_EVENT_FIELDS);
        }
        ValidationError {
            line: None,
            field: (!path.is_empty()).then_some(path),
            message,
        }
    })?;

    let stream = StreamId::parse(&raw.stream).map_err(|m| ValidationError::field("stream", m))?;
    let event_type = EventType::parse(&raw.event_type).ok_or_else(|| {
        let closest = EventType::did_you_mean(&raw.event_type);
        ValidationError::field(
            "type",
            format!(
                "unknown event type `{}`; {closest}`chronicle types` (or `GET /types`) lists them",
                raw.event_type,
            ),
        )
    })?;
    check_category(event_type, &stream)?;

    let occurred = raw
        .occurred
        .as_deref()
        .map(|text| text.parse::<Extent>())
        .transpose()
        .map_err(|e| ValidationError::field("occurred", e.0))?;
    if occurred.is_none()
        && event_type.needs_occurred()
        && !event_type.occurred_defaults_to_recorded()
    {
        return Err(ValidationError::field(
            "occurred",
            format!(
                "`{event_type}` needs `occurred`, the date it happened (like 2025-01-05, or 2025-01 when only the month is known)"
            ),
        ));
    }
    let typed = EventData::parse(event_type, &raw.data).map_err(|e| {
        let field = if e.path.is_empty() {
            "data".to_owned()
        } else {
            format!("data.{}", e.path)
        };
        ValidationError::field(field, e.message)
    })?;
    if matches!(origin, Origin::New) {
        if raw.id.is_some_and(|id| id.is_nil()) {
            return Err(ValidationError::field(
                "id",
                "the nil UUID (all zeros) is a placeholder, not an id; leave `id` out to have one generated, or give a UUID of your own",
            ));
        }
        if let Some(source) = &raw.source {
            check_url(source, "source.")?;
        }
        check_no_placeholder(&raw)?;
        if !event_type.needs_occurred() {
            let dated = [
                ("occurred", raw.occurred.is_some()),
                ("occurred_text", raw.occurred_text.is_some()),
            ];
            if let Some((field, _)) = dated.into_iter().find(|(_, given)| *given) {
                return Err(ValidationError::field(
                    field,
                    format!(
                        "`{event_type}` takes no `{field}`: entities are not dated (a date would put the event on the timeline); leave it out"
                    ),
                ));
            }
        }
        check_new(&stream, &typed)?;
    }
    let tags = raw.tags.clone().unwrap_or_default();
    for (i, tag) in tags.iter().enumerate() {
        check_tag(tag).map_err(|e| ValidationError::field(format!("tags[{i}]"), e))?;
        // Filters match a tag as written, in any case: one with white space at an end
        // would be found only by a filter with the same white space.
        if origin == Origin::New && tag.trim() != tag {
            return Err(ValidationError::field(
                format!("tags[{i}]"),
                format!(
                    "a tag has no white space at its ends; write `{}`",
                    tag.trim()
                ),
            ));
        }
    }

    let store_fields = raw.position.is_some()
        || raw.version.is_some()
        || raw.recorded.is_some()
        || raw.schema.is_some()
        || raw.hash.is_some();
    let restored = match origin {
        Origin::New if store_fields => {
            return Err(ValidationError::field(
                first_store_field(&raw),
                "is set by the store; remove it (only an export restored with `chronicle import` may carry it)",
            ));
        }
        Origin::New => None,
        Origin::Export => Some(restored_fields(&raw, event_type)?),
    };
    if restored.is_some() && raw.id.is_none() {
        return Err(ValidationError::field(
            "id",
            "an exported event must carry its id",
        ));
    }

    Ok(ProposedEvent {
        id: raw.id,
        stream,
        event_type,
        occurred,
        occurred_text: raw.occurred_text,
        data: raw.data,
        typed,
        source: raw.source,
        tags,
        meta: raw.meta,
        expect: raw.expect.unwrap_or_default(),
        restored,
    })
}

fn first_store_field(raw: &RawEvent) -> &'static str {
    if raw.position.is_some() {
        "position"
    } else if raw.version.is_some() {
        "version"
    } else if raw.recorded.is_some() {
        "recorded"
    } else if raw.schema.is_some() {
        "schema"
    } else {
        "hash"
    }
}

fn restored_fields(raw: &RawEvent, event_type: EventType) -> Result<Restored, ValidationError> {
    let missing = |f: &str| ValidationError::field(f, "an exported event must carry it");
    let position = raw.position.ok_or_else(|| missing("position"))?;
    let version = raw.version.ok_or_else(|| missing("version"))?;
    let recorded = raw.recorded.as_deref().ok_or_else(|| missing("recorded"))?;
    let recorded = DateTime::parse_from_rfc3339(recorded)
        .map_err(|e| ValidationError::field("recorded", format!("not an RFC 3339 time ({e})")))?
        .with_timezone(&Utc);
    let schema = raw.schema.ok_or_else(|| missing("schema"))?;
    if schema != event_type.schema() {
        return Err(ValidationError::field(
            "schema",
            format!(
                "`{event_type}` is at schema {}, this event has {schema}; upgrade chronicle to read it",
                event_type.schema()
            ),
        ));
    }
    let hash = raw.hash.clone().ok_or_else(|| missing("hash"))?;
    if parse_hash(&hash).is_none() {
        return Err(ValidationError::field("hash", "expected 64 hex digits"));
    }
    Ok(Restored {
        position,
        version,
        recorded,
        hash,
    })
}

fn check_category(event_type: EventType, stream: &StreamId) -> Result<(), ValidationError> {
    let ok = match event_type.category_rule() {
        CategoryRule::Entity => stream.is_entity(),
        CategoryRule::Exactly(category) => stream.category() == category,
        CategoryRule::Any | CategoryRule::TargetStream => true,
    };
    if ok {
        return Ok(());
    }
    let expected = match event_type.category_rule() {
        CategoryRule::Entity => {
            "the entity's own stream (person:…, org:…, office:…, place:… or country:XX)".to_owned()
        }
        CategoryRule::Exactly(category) => format!("{} `{category}:` stream", article(category)),
        _ => unreachable!("Any and TargetStream accept every stream"),
    };
    Err(ValidationError::field(
        "stream",
        format!("`{event_type}` belongs in {expected}, not `{stream}`"),
    ))
}

impl ProposedEvent {
    /// The event as the store will hold it, once it has a position, version, time and id.
    pub fn into_recorded(
        self,
        id: Uuid,
        position: Position,
        version: Version,
        recorded: DateTime<Utc>,
    ) -> RecordedEvent {
        RecordedEvent {
            position,
            version,
            id,
            stream: self.stream,
            event_type: self.event_type,
            occurred: self.occurred,
            occurred_text: self.occurred_text,
            data: self.data,
            source: self.source,
            tags: self.tags,
            meta: self.meta,
            recorded,
            schema: self.event_type.schema(),
            hash: String::new(),
        }
    }
}

impl RecordedEvent {
    /// The typed data. Stored events were validated on the way in, so this fails only
    /// for a store written by an incompatible version.
    pub fn typed(&self) -> Result<EventData, ValidationError> {
        EventData::parse(self.event_type, &self.data)
            .map_err(|e| ValidationError::field(format!("data.{}", e.path), e.message))
    }
}

/// "a" or "an" before a word, by its first letter (good enough for category names).
pub fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
impl RecordedEvent {
    /// A `trip.stop_added` at `position`, version `version` of `stream`, with `data`,
    /// unsealed: for the store's unit tests.
    pub(crate) fn for_test(position: u64, version: u64, stream: &StreamId, data: Value) -> Self {
        RecordedEvent {
            position: Position(position),
            version: Version(version),
            id: Uuid::now_v7(),
            stream: stream.clone(),
            event_type: EventType::TripStopAdded,
            occurred: None,
            occurred_text: None,
            data,
            source: None,
            tags: Vec::new(),
            meta: None,
            recorded: Utc::now(),
            schema: 1,
            hash: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        #[test]
        fn recorded_times_are_written_as_chrono_writes_them(
            micros in -62_135_596_800_000_000i64..253_402_300_800_000_000i64,
        ) {
            let t = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            let mine = recorded_format::micros_text(&t).expect("years 1..=9999");
            proptest::prop_assert_eq!(
                std::str::from_utf8(&mine).unwrap(),
                t.to_rfc3339_opts(SecondsFormat::Micros, true)
            );
        }

        #[test]
        fn days_are_written_as_chrono_writes_them(days in 0i32..3_652_059) {
            let day = chrono::NaiveDate::from_num_days_from_ce_opt(days + 1).unwrap();
            proptest::prop_assert_eq!(
                Extent::day(day).to_string(),
                day.format("%Y-%m-%d").to_string()
            );
        }
    }

    fn check(input: Value, expected_error: Option<(&str, &str)>) {
        let result = parse_event_value(input.clone(), Origin::New);
        match (result, expected_error) {
            (Ok(_), None) => {}
            (Err(e), Some((field, fragment))) => {
                assert_eq!(e.field.as_deref().unwrap_or(""), field, "{input}: {e}");
                assert!(e.message.contains(fragment), "{input}: {e}");
            }
            (got, want) => panic!("{input}: got {got:?}, want error {want:?}"),
        }
    }

    fn trip(extra: Value) -> Value {
        let mut base = json!({"stream": "trip:t", "type": "trip.started", "occurred": "2025-01-05", "data": {}});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn validation_names_the_field() {
        check(trip(json!({})), None);
        check(
            trip(json!({"stream": "arms-sale:x"})),
            Some(("stream", "belongs in a `trip:` stream")),
        );
        check(
            trip(json!({"type": "trip.flew"})),
            Some(("type", "unknown event type")),
        );
        check(
            trip(json!({"type": "trip.startd"})),
            Some(("type", "did you mean `trip.started`?")),
        );
        check(
            trip(json!({"occurred": "2025-02-30"})),
            Some(("occurred", "no such day")),
        );
        check(
            trip(json!({"occurred": null})),
            Some(("occurred", "needs `occurred`")),
        );
        // Amendments may leave their date to the store.
        check(
            json!({"stream": "trip:t", "type": "event.retracted",
                   "data": {"target": "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70", "reason": "wrong"}}),
            None,
        );
        check(
            trip(json!({"data": {"x": 1}})),
            Some(("data.x", "unknown field `x`")),
        );
        check(
            trip(json!({"colour": "red"})),
            Some(("colour", "unknown field `colour`")),
        );
        // A field inside `source` lists the source's fields, not the envelope's.
        check(
            trip(json!({"source": {"publsher": "X"}})),
            Some((
                "source.publsher",
                "unknown field `publsher`, expected one of `publisher`, `title`, `url`",
            )),
        );
        // A new event is not offered the fields only an export may carry.
        let err = parse_event_value(trip(json!({"colour": "red"})), Origin::New).unwrap_err();
        assert!(err.message.ends_with(NEW_EVENT_FIELDS), "{}", err.message);
        assert!(!err.message.contains("position"), "{}", err.message);
        check(trip(json!({"id": "not-a-uuid"})), Some(("id", "UUID")));
        check(
            trip(json!({"expect": "maybe"})),
            Some(("expect", "not an expectation")),
        );
        check(
            trip(json!({"position": 3})),
            Some(("position", "set by the store")),
        );
        check(trip(json!({"tags": [""]})), Some(("tags[0]", "1 to 64")));
        check(
            trip(json!({"tags": ["ok", " padded "]})),
            Some(("tags[1]", "no white space at its ends; write `padded`")),
        );
        check(
            json!({"stream": "person:a", "type": "entity.registered", "data": {"name": "A", "aliases": []}}),
            None,
        );
    }

    #[test]
    fn oversize_and_non_json_are_rejected() {
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(MAX_EVENT_BYTES));
        assert!(
            parse_event(&big, Origin::New)
                .unwrap_err()
                .message
                .contains("limit")
        );
        assert!(
            parse_event("{nope", Origin::New)
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
        assert!(
            parse_event("[1]", Origin::New)
                .unwrap_err()
                .message
                .contains("JSON object")
        );
    }

    /// The digests as first written (through a `Value` holding a copy of everything), to
    /// check that the faster ones write the same bytes: stored hashes depend on them.
    fn digests_as_first_written(e: &RecordedEvent, previous: &[u8; 32]) -> ([u8; 32], String) {
        let content = json!({
            "stream": e.stream, "type": e.event_type, "occurred": e.occurred,
            "occurred_text": e.occurred_text, "data": e.data, "source": e.source,
            "tags": e.tags, "meta": e.meta,
        });
        let digest = Sha256::digest(serde_json::to_vec(&content).unwrap()).into();
        let mut unhashed = e.clone();
        unhashed.hash.clear();
        let mut h = Sha256::new();
        h.update(previous);
        h.update(serde_json::to_vec(&unhashed).unwrap());
        let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        (digest, hex)
    }

    #[test]
    fn digests_are_the_bytes_they_always_were() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut previous = GENESIS_HASH;
        let mut checked = 0;
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                if line.trim().is_empty() || line.starts_with("//") {
                    continue;
                }
                let value: Value = serde_json::from_str(line).unwrap();
                let proposed = parse_event_value(value, Origin::New).unwrap();
                let mut event = proposed.clone().into_recorded(
                    Uuid::now_v7(),
                    Position(checked + 1),
                    Version(1),
                    Utc::now(),
                );
                // What the writer said digests the same before and after it is recorded.
                assert_eq!(proposed.content_digest(), event.content_digest(), "{line}");
                event.tags = vec!["b".into(), "a \"quoted\"".into()];
                if checked % 2 == 0 {
                    event.meta = Some(Meta {
                        correlation_id: Some("c-1".into()),
                        causation_id: None,
                        author: Some("desk".into()),
                    });
                    if let Some(source) = &mut event.source {
                        source.url = Some("https://example.org/a?b=\"c\"".into());
                    }
                } else if checked % 3 == 0 {
                    event.meta = Some(Meta {
                        correlation_id: Some("c-2".into()),
                        causation_id: Some("e-\u{e9}".into()),
                        author: None,
                    });
                    event.source = Some(Source {
                        publisher: "Wire".into(),
                        title: None,
                        url: None,
                        published: None,
                        quote: None,
                        speaker: Some("an official".into()),
                    });
                }
                let (digest, hash) = digests_as_first_written(&event, &previous);
                assert_eq!(event.content_digest(), digest, "{line}");
                assert_eq!(event.chain_hash(&previous), hash, "{line}");
                // Sealed as the writer does: the same hash, and the bytes of the event.
                let mut sealed = event.clone();
                let (stored, raw) = sealed.seal(&previous);
                assert_eq!(sealed.hash, hash, "{line}");
                assert_eq!(Some(raw), parse_hash(&hash), "{line}");
                assert_eq!(stored, serde_json::to_vec(&sealed).unwrap(), "{line}");
                // With its hash set (as verify reads it), the same hash.
                event.hash = hash.clone();
                assert_eq!(event.chain_hash(&previous), hash, "{line}");
                previous = parse_hash(&hash).unwrap();
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} events checked");
    }
}
