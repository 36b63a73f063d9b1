//! Bad input: every malformed event is refused through the command line with exit code 2
//! and one line on stderr that names the line and the field, and leaves the log exactly
//! as it was (the same `log --json`, the export format). The table runs against a store
//! filled by `chronicle demo`, so "unchanged" means something: a half-written batch or a
//! stray event would show.
//!
//! Then the parser on its own: a subset of the table through `parse_event`, asserting
//! `ValidationError::field`, and a fuzz-style property test that feeds random bytes and
//! random mutations of valid events to `parse_event` and asserts it never panics.
//! The fuzz runs a few hundred cases of each kind; `CHRONICLE_FUZZ_CASES` sets another number.

mod common;

use chronicle::model::{Origin, parse_event, parse_event_value};
use common::{Chronicle, Run, command_at, path_str};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use std::io::Write;
use std::process::Stdio;

// Streams and events of the demo store (`events/`), which the rows refer to.
const TRIP: &str = "trip:blinken-final-tour-2025";
const SALE: &str = "arms-sale:us-japan-2025-01";
/// The `arms_sale.announced` event of `SALE`.
const SALE_EVENT: &str = "01942100-0000-7000-8000-000003000001";
/// The `entity.registered` event of `person:antony-blinken`.
const BLINKEN_REGISTERED: &str = "01942100-0000-7000-8000-000001000001";
/// An id the demo does not use.
const NEW_ID: &str = "0194a000-0000-7000-8000-00000000b001";
/// Largest event accepted, in bytes (README "Limits").
const LIMIT: usize = 64 * 1024;

// Valid events, one of each shape the rows break. `base_events_are_valid` proves that
// each is accepted by the demo store, so a row fails only because of what it changes.

fn arrived() -> Value {
    json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-06",
           "data": {"place": "country:KR"}})
}

fn announced() -> Value {
    json!({"stream": "trip:test-tour", "type": "trip.announced", "occurred": "2025-01-03",
           "data": {"traveler": "person:antony-blinken", "starts": "2025-01-05",
                    "stops": [{"place": "country:KR", "city": "Seoul", "dates": "2025-01-05/2025-01-07"},
                              {"place": "place:tokyo", "agenda": ["alliance"]}]},
           "source": {"publisher": "Example Wire", "published": "2025-01-04"},
           "tags": ["test"]})
}

fn sale() -> Value {
    json!({"stream": "arms-sale:test-sale", "type": "arms_sale.announced", "occurred": "2025-01-03",
           "data": {"seller": "country:US", "buyer": "country:JP",
                    "value": {"amount": 3_640_000_000_u64, "currency": "USD"},
                    "approximate": true, "items": ["missiles"]}})
}

fn statement() -> Value {
    json!({"stream": SALE, "type": "statement.issued", "occurred": "2025-01-04",
           "data": {"speaker": "country:CN", "stance": "opposes", "about": [SALE, "country:JP"],
                    "summary": "China opposed the sale"}})
}

fn registered() -> Value {
    json!({"stream": "person:new-person", "type": "entity.registered",
           "data": {"name": "New Person", "aliases": ["NP"]}})
}

fn correction() -> Value {
    let mut data = sale()["data"].clone();
    data["value"]["amount"] = json!(3_500_000_000_u64);
    json!({"stream": SALE, "type": "event.corrected", "occurred": "2025-01-03",
           "data": {"target": SALE_EVENT, "reason": "a later report", "data": data}})
}

fn retraction() -> Value {
    json!({"stream": SALE, "type": "event.retracted", "occurred": "2025-01-05",
           "data": {"target": SALE_EVENT, "reason": "the report was withdrawn"}})
}

fn evidence() -> Value {
    json!({"stream": SALE, "type": "evidence.added", "occurred": "2025-01-05",
           "data": {"target": SALE_EVENT, "source": {"publisher": "Other Wire"}}})
}

/// A line shaped like `log --json` output, but of an event the store does not hold.
fn export_line() -> Value {
    let mut e = arrived();
    e["position"] = json!(1);
    e["version"] = json!(1);
    e["id"] = json!(NEW_ID);
    e["recorded"] = json!("2025-01-06T00:00:00.000000Z");
    e["schema"] = json!(1);
    e["hash"] = json!("0".repeat(64));
    e
}

fn base_events() -> Vec<Value> {
    vec![
        arrived(),
        announced(),
        sale(),
        statement(),
        registered(),
        correction(),
        retraction(),
        evidence(),
    ]
}

/// The value at a dotted path (`data.stops.0.place`); array indexes are numbers.
fn slot<'a>(event: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('.')
        .fold(event, |v, key| match key.parse::<usize>() {
            Ok(i) => &mut v[i],
            Err(_) => &mut v[key],
        })
}

/// `event` with the field at `path` set to `value`.
fn set(mut event: Value, path: &str, value: Value) -> Value {
    *slot(&mut event, path) = value;
    event
}

/// `event` without the field at `path`.
fn without(mut event: Value, path: &str) -> Value {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let object = if parent.is_empty() {
        &mut event
    } else {
        slot(&mut event, parent)
    };
    object
        .as_object_mut()
        .and_then(|o| o.remove(key))
        .unwrap_or_else(|| panic!("the row removes a field that exists: {path}"));
    event
}

/// One JSON Lines line.
fn line(event: Value) -> Vec<u8> {
    format!("{event}\n").into_bytes()
}

/// Several lines as one input.
fn lines(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The event's text with `from` replaced by `to` once, for what `json!` cannot write
/// (duplicate keys, bare words, escapes). Panics if `from` is not there, so a row cannot
/// silently test the unmodified event.
fn edit(event: Value, from: &str, to: &str) -> Vec<u8> {
    edit_bytes(event, from, to.as_bytes())
}

/// [`edit`] with bytes that need not be UTF-8.
fn edit_bytes(event: Value, from: &str, to: &[u8]) -> Vec<u8> {
    let text = event.to_string();
    let (before, after) = text
        .split_once(from)
        .unwrap_or_else(|| panic!("`{from}` is not in {text}"));
    [before.as_bytes(), to, after.as_bytes(), b"\n"].concat()
}

/// The input with every line ending written as CRLF.
fn crlf(input: Vec<u8>) -> Vec<u8> {
    input
        .into_iter()
        .flat_map(|b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect()
}

/// A valid event padded to `bytes` bytes with a long source quote.
fn padded(bytes: usize) -> String {
    // A stop added, which a fresh store accepts (an arrival needs the stop first).
    let mut event = set(
        set(arrived(), "type", json!("trip.stop_added")),
        "source",
        json!({"publisher": "Example Wire", "quote": ""}),
    );
    let short = event.to_string().len();
    event["source"]["quote"] = json!("a".repeat(bytes - short));
    let text = event.to_string();
    assert_eq!(text.len(), bytes);
    text
}

/// Every malformed input, with what the message must say: `line N: ` and then a fragment
/// that names the field (`field `occurred``) or, for a line that is not an event at all,
/// what is wrong with it.
#[rustfmt::skip]
fn table() -> Vec<(Vec<u8>, &'static str)> {
    let long_stream = format!("trip:{}", "a".repeat(200));
    vec![
        // Not JSON, or not one object.
        (b"{\"stream\": \"trip:x\", \"type\": \"trip.started\"\n".to_vec(), "line 1: not valid JSON"),
        (b"{nope}\n".to_vec(), "line 1: not valid JSON"),
        // The line is the file's; the column is the only place the parser adds.
        (lines(&[&line(arrived()), b"{nope}\n"]), "line 2: not valid JSON (key must be a string at column 2)"),
        (b"{'stream': 'trip:x', 'type': 'trip.started'}\n".to_vec(), "line 1: not valid JSON"),
        (format!("{} trailing\n", arrived()).into_bytes(), "line 1: not valid JSON"),
        (format!("{}{}\n", arrived(), arrived()).into_bytes(), "line 1: not valid JSON"),
        (b"[1, 2]\n".to_vec(), "line 1: expected a JSON object"),
        (b"\"trip.started\"\n".to_vec(), "line 1: expected a JSON object"),
        (b"null\n".to_vec(), "line 1: expected a JSON object"),
        (edit(arrived(), "\"country:KR\"", "\"\\ud800\""), "line 1: not valid JSON"),
        (edit(sale(), "3640000000", "NaN"), "line 1: not valid JSON"),
        (edit(sale(), "3640000000", "1e400"), "line 1: not valid JSON"),
        // Wrong types.
        (line(set(arrived(), "stream", json!([TRIP]))), "line 1: field `stream`"),
        (line(set(arrived(), "type", json!(7))), "line 1: field `type`"),
        (line(set(arrived(), "occurred", json!(2025))), "line 1: field `occurred`"),
        (line(set(arrived(), "tags", json!("indo-pacific"))), "line 1: field `tags`"),
        (line(set(arrived(), "tags", json!([1]))), "line 1: field `tags[0]`"),
        (line(set(arrived(), "occurred_text", json!(5))), "line 1: field `occurred_text`"),
        (line(set(arrived(), "data", json!(null))), "line 1: field `data`"),
        (line(set(arrived(), "data", json!("country:KR"))), "line 1: field `data`"),
        (line(set(arrived(), "data", json!(["country:KR"]))), "line 1: field `data`"),
        (line(set(arrived(), "data", json!([]))), "line 1: field `data`"),
        (line(json!({"stream": TRIP, "type": "trip.started", "occurred": "2025-01-05", "data": []})), "line 1: field `data`"),
        (line(set(arrived(), "source", json!(["Example Wire"]))), "line 1: field `source`"),
        (line(set(arrived(), "source", json!({"publisher": 5}))), "line 1: field `source.publisher`"),
        (line(set(arrived(), "source", json!({"publisher": "p", "url": 80}))), "line 1: field `source.url`"),
        (line(set(arrived(), "meta", json!({"author": 1}))), "line 1: field `meta.author`"),
        (line(set(sale(), "data.value.amount", json!("3.64 billion"))), "line 1: field `data.value.amount`"),
        (line(set(sale(), "data.value", json!([3_640_000_000_u64, "USD"]))), "line 1: field `data.value`"),
        (line(set(sale(), "data.approximate", json!("yes"))), "line 1: field `data.approximate`"),
        (line(set(sale(), "data.items", json!("missiles"))), "line 1: field `data.items`"),
        // What a schema cannot say, or says only on new events.
        (line(set(sale(), "data.items", json!([]))), "line 1: field `data.items`: name at least one item sold"),
        (line(set(sale(), "data.buyer", json!("country:US"))), "line 1: field `data.buyer`: the buyer is the seller (`country:US`); a sale is between two parties"),
        (line(set(registered(), "occurred", json!("2025-02-01"))), "line 1: field `occurred`: `entity.registered` takes no `occurred`: entities are not dated"),
        (line(set(registered(), "occurred_text", json!("last week"))), "line 1: field `occurred_text`: `entity.registered` takes no `occurred_text`"),
        (line(set(registered(), "data.name", json!("<name>"))), "line 1: field `data.name`: `<name>` is a placeholder of a `chronicle types show` template"),
        (line(set(arrived(), "source", json!({"publisher": "Wire", "url": "https://example.org/<article>"}))), "line 1: field `source.url`: `https://example.org/<article>` is a placeholder"),
        (line(set(arrived(), "tags", json!(["asia", "<tag>"]))), "line 1: field `tags[1]`: `<tag>` is a placeholder"),
        (line(set(registered(), "stream", json!("country:KE"))), "line 1: field `stream`: `country:KE` is built in (Kenya) and is not registered; give it another name it is known by with entity.alias_added"),
        (line(set(registered(), "data.aliases", json!(["NP", " "]))), "line 1: field `data.aliases[1]`: an alias must not be empty or blank"),
        (line(json!({"stream": "person:antony-blinken", "type": "event.corrected",
                     "data": {"target": "01942100-0000-7000-8000-000001000001", "reason": "another alias",
                              "data": {"aliases": ["Tony", ""]}}})),
         "line 1: field `data.data.aliases[1]`: an alias must not be empty or blank"),
        (line(set(correction(), "data.reason", json!(""))), "line 1: field `data.reason`: the reason must not be empty or blank"),
        (line(set(retraction(), "data.reason", json!("\t"))), "line 1: field `data.reason`: the reason must not be empty or blank"),
        (line(set(arrived(), "source", json!({"publisher": "W", "url": "javascript:alert(1)"}))),
         "line 1: field `source.url`: `javascript:alert(1)` is not a web address: it does not start with https:// or http://; give the address the source can be read at, or leave `url` out"),
        (line(set(evidence(), "data.source.url", json!("https://news.example/a b"))),
         "line 1: field `data.source.url`: `https://news.example/a b` has a space at character 23: a web address has no white space or control character; write a space inside an address as %20"),
        (line(set(arrived(), "source", json!({"publisher": "W", "url": " https://news.example/a"}))),
         "line 1: field `source.url`: ` https://news.example/a` has a space at character 1: a web address has no white space or control character; remove it"),
        (line(set(arrived(), "source", json!({"publisher": "W", "url": ""}))),
         "line 1: field `source.url`: is empty; leave `url` out when the source has no address"),
        (line(set(announced(), "data.stops", json!({"place": "country:KR"}))), "line 1: field `data.stops`"),
        (line(set(statement(), "data.stance", json!("angry"))), "line 1: field `data.stance`"),
        // Missing required fields.
        (line(without(arrived(), "stream")), "line 1: field `stream`: `stream` is missing"),
        (line(without(arrived(), "type")), "line 1: field `type`: `type` is missing"),
        (line(without(arrived(), "data")), "line 1: field `data`: `data` is missing"),
        (line(without(arrived(), "occurred")), "line 1: field `occurred`"),
        (line(without(announced(), "data.traveler")), "line 1: field `data.traveler`: `traveler` is missing"),
        (line(without(sale(), "data.value.currency")), "line 1: field `data.value.currency`: `currency` is missing"),
        (line(without(registered(), "data.name")), "line 1: field `data.name`: `name` is missing"),
        // Unknown fields.
        (line(set(arrived(), "colour", json!("red"))), "line 1: field `colour`"),
        (line(set(without(arrived(), "occurred"), "occured", json!("2025-01-06"))), "line 1: field `occured`"),
        (line(set(arrived(), "data.city", json!("Seoul"))), "line 1: field `data.city`"),
        (line(set(announced(), "data.stops.0.country", json!("country:KR"))), "line 1: field `data.stops[0].country`"),
        (line(set(arrived(), "source", json!({"publisher": "p", "author": "a"}))), "line 1: field `source.author`"),
        // Bad and impossible dates and extents.
        (line(set(arrived(), "occurred", json!("2025-02-30"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-02-29"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-13"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-1-5"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-09/2025-01-06"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-06~x"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-06/2025-01-12~~"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025/2026/2027"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-06/"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-05T25:00:00Z"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("2025-01-05T09:30:00"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("0000"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!(""))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("~"))), "line 1: field `occurred`"),
        (line(set(arrived(), "occurred", json!("next week"))), "line 1: field `occurred`"),
        (line(set(announced(), "data.starts", json!("2025-13"))), "line 1: field `data.starts`"),
        (line(set(announced(), "data.stops.0.dates", json!("2025-01-07/2025-01-05"))), "line 1: field `data.stops[0].dates`"),
        (line(set(arrived(), "source", json!({"publisher": "p", "published": "yesterday"}))), "line 1: field `source.published`"),
        (line(set(correction(), "data.occurred", json!("2025-02-30"))), "line 1: field `data.occurred`"),
        // Unknown event types.
        (line(set(arrived(), "type", json!("trip.flew"))), "line 1: field `type`"),
        (line(set(arrived(), "type", json!("Trip.Arrived"))), "line 1: field `type`"),
        (line(set(arrived(), "type", json!(""))), "line 1: field `type`"),
        // Malformed stream and entity ids.
        (line(set(arrived(), "stream", json!("Trip:x"))), "line 1: field `stream`"),
        (line(set(arrived(), "stream", json!("trip:"))), "line 1: field `stream`"),
        (line(set(arrived(), "stream", json!("trip blinken"))), "line 1: field `stream`"),
        (line(set(arrived(), "stream", json!(long_stream))), "line 1: field `stream`"),
        (line(set(arrived(), "data.place", json!("Seoul"))), "line 1: field `data.place`"),
        (line(set(sale(), "data.seller", json!("Norway"))), "line 1: field `data.seller`: `Norway` is not an entity id: a country is named by its id, here country:NO"),
        (line(set(sale(), "data.buyer", json!("The United States"))), "line 1: field `data.buyer`: `The United States` is not an entity id: a country is named by its id, here country:US"),
        (line(set(arrived(), "data.place", json!("country:XX"))), "line 1: field `data.place`"),
        (line(set(arrived(), "data.place", json!("country:kr"))), "line 1: field `data.place`"),
        (line(set(arrived(), "data.place", json!(TRIP))), "line 1: field `data.place`"),
        (line(set(announced(), "data.traveler", json!("person:Antony-Blinken"))), "line 1: field `data.traveler`"),
        (line(set(announced(), "data.stops.1.place", json!("Tokyo"))), "line 1: field `data.stops[1].place`"),
        // Unregistered entities (only the store knows).
        (line(set(arrived(), "data.place", json!("place:atlantis"))), "line 1: field `data.place`"),
        (line(set(announced(), "data.stops.1.place", json!("place:atlantis"))), "line 1: field `data.stops[1].place`"),
        (line(set(statement(), "data.about.1", json!("person:nobody"))), "line 1: field `data.about[1]`"),
        (line(set(correction(), "data.data.seller", json!("org:nobody"))), "line 1: field `data.data.seller`"),
        (line(json!({"stream": "person:nobody", "type": "entity.alias_added", "data": {"alias": "Nobody"}})), "line 1: field `stream`"),
        (line(set(registered(), "stream", json!("person:antony-blinken"))), "line 1: field `stream`"),
        // Event types in the wrong stream category.
        (line(set(arrived(), "stream", json!(SALE))), "line 1: field `stream`"),
        (line(set(sale(), "stream", json!("trip:test-sale"))), "line 1: field `stream`"),
        (line(set(registered(), "stream", json!("trip:new-person"))), "line 1: field `stream`"),
        (line(json!({"stream": "crisis:x", "type": "entity.alias_added", "data": {"alias": "X"}})), "line 1: field `stream`"),
        // Oversize events.
        (format!("{}\n", padded(LIMIT + 1)).into_bytes(), "line 1: the event is"),
        (format!("{}\n{}\n", arrived(), padded(1 << 20)).into_bytes(), "line 2: the event is"),
        // Invalid UTF-8.
        (edit_bytes(arrived(), "KR", b"K\xff"), "line 1: not valid UTF-8"),
        (lines(&[b"// a comment\n\n", b"{\"stream\": \"trip:x\xc0\xaf\"}\n"]), "line 3: not valid UTF-8"),
        (lines(&[&line(arrived()), b"{\"stream\": \"\xed\xa0\x80\"}\n"]), "line 2: not valid UTF-8"),
        (lines(&[&line(arrived()), b"{\"stream\": \"caf\xc3"]), "line 2: not valid UTF-8"),
        // One bad line in the middle of a file: nothing before it is written either.
        (lines(&[b"// later reporting\n", &line(registered()), b"\n", &line(set(arrived(), "occurred", json!("2025-02-30"))), &line(arrived())]), "line 4: field `occurred`"),
        (lines(&[&line(registered()), &line(arrived()), &line(set(arrived(), "data.place", json!("place:atlantis"))), &line(arrived())]), "line 3: field `data.place`"),
        (crlf(lines(&[&line(arrived()), b"\n", &line(set(arrived(), "kind", json!("x")))])), "line 3: field `kind`"),
        (lines(&[&line(registered()), &line(registered())]), "line 2: field `stream`"),
        // Amendments of events that are missing, elsewhere, or amendments themselves.
        (line(set(retraction(), "data.target", json!(NEW_ID))), "line 1: field `data.target`"),
        (line(set(correction(), "data.target", json!(NEW_ID))), "line 1: field `data.target`"),
        (line(set(evidence(), "data.target", json!(NEW_ID))), "line 1: field `data.target`"),
        (line(set(retraction(), "data.target", json!("the sale"))), "line 1: field `data.target`"),
        (line(set(retraction(), "stream", json!(TRIP))), "line 1: field `stream`"),
        (lines(&[&line(set(retraction(), "id", json!(NEW_ID))), &line(set(correction(), "data.target", json!(NEW_ID)))]), "line 2: field `data.target`"),
        // A correction's data is a merge patch: the merged result must fit the type.
        (line(set(correction(), "data.data", json!({"seller": null}))), "line 1: field `data.data.seller`"),
        (line(set(correction(), "data.data", json!({"value": {"amount": -1}}))), "line 1: field `data.data.value.amount`"),
        (line(set(correction(), "data.data", json!({"items": "missiles"}))), "line 1: field `data.data.items`"),
        (line(set(correction(), "data.data", json!("a new sale"))), "line 1: field `data.data`"),
        (line(set(correction(), "data.data.colour", json!("red"))), "line 1: field `data.data.colour`"),
        (line(without(correction(), "data.data")), "line 1: field `data`"),
        (line(json!({"stream": "person:antony-blinken", "type": "event.corrected", "occurred": "2025",
                     "data": {"target": BLINKEN_REGISTERED, "reason": "r", "occurred": "2025"}})), "line 1: field `data.occurred`"),
        // Ids.
        (line(set(arrived(), "id", json!("not-a-uuid"))), "line 1: field `id`"),
        (line(set(arrived(), "id", json!(&NEW_ID[..35]))), "line 1: field `id`"),
        (line(set(arrived(), "id", json!(42))), "line 1: field `id`"),
        (line(set(arrived(), "id", json!(BLINKEN_REGISTERED))), "line 1: field `id`"),
        (lines(&[&line(set(arrived(), "id", json!(NEW_ID))), &line(set(set(arrived(), "id", json!(NEW_ID)), "occurred", json!("2025-01-07")))]), "line 2: field `id`"),
        // Bad `expect`.
        (line(set(arrived(), "expect", json!("maybe"))), "line 1: field `expect`"),
        (line(set(arrived(), "expect", json!(-1))), "line 1: field `expect`"),
        (line(set(arrived(), "expect", json!(1.5))), "line 1: field `expect`"),
        (line(set(arrived(), "expect", json!(true))), "line 1: field `expect`"),
        // Fields only the store sets. A line with both `position` and `hash` is an
        // export line to `import`, which restores only into an empty store.
        (line(set(arrived(), "position", json!(44))), "line 1: field `position`"),
        (line(set(arrived(), "version", json!(10))), "line 1: field `version`"),
        (line(set(arrived(), "recorded", json!("2025-01-06T00:00:00Z"))), "line 1: field `recorded`"),
        (line(set(arrived(), "schema", json!(1))), "line 1: field `schema`"),
        (line(set(arrived(), "hash", json!("0".repeat(64)))), "line 1: field `hash`"),
        (line(export_line()), "line 1: field `position`"),
        // Money, and lists that must not be empty.
        (line(set(sale(), "data.value.currency", json!("usd"))), "line 1: field `data.value.currency`"),
        (line(set(sale(), "data.value.currency", json!("US$"))), "line 1: field `data.value.currency`"),
        (line(set(sale(), "data.value.currency", json!("DOLLARS"))), "line 1: field `data.value.currency`"),
        (line(set(sale(), "data.value.currency", json!("UDS"))), "line 1: field `data.value.currency`: `UDS` is not an ISO 4217 currency code; did you mean USD?"),
        (line(set(sale(), "data.value.currency", json!("QQQ"))), "line 1: field `data.value.currency`: `QQQ` is not an ISO 4217 currency code; give one like USD"),
        (line(set(sale(), "data.value.currency", json!("eur"))), "line 1: field `data.value.currency`: expected an ISO 4217 currency code in capitals, like USD; did you mean EUR?"),
        (line(set(sale(), "data.value.currency", json!("EURO"))), "line 1: field `data.value.currency`: expected an ISO 4217 currency code in capitals, like USD; did you mean EUR?"),
        (line(set(sale(), "data.value.currency", json!("dollars"))), "line 1: field `data.value.currency`: expected an ISO 4217 currency code in capitals, like USD"),
        (line(set(sale(), "data.value.amount", json!(0))), "line 1: field `data.value.amount`"),
        (line(set(sale(), "data.value.amount", json!(-5))), "line 1: field `data.value.amount`"),
        (line(set(announced(), "data.stops", json!([]))), "line 1: field `data.stops`"),
        (line(set(statement(), "data.about", json!([]))), "line 1: field `data.about`"),
        (line(json!({"stream": "conflict:x", "type": "conflict.reported", "occurred": "2025", "data": {"parties": [], "summary": "s"}})), "line 1: field `data.parties`"),
        (line(set(registered(), "data.name", json!("  "))), "line 1: field `data.name`"),
        (line(set(arrived(), "tags", json!([""]))), "line 1: field `tags[0]`"),
        (line(set(arrived(), "tags", json!(["x".repeat(65)]))), "line 1: field `tags[0]`"),
        // A value that echoes a line break must not break the one-line message.
        (line(set(arrived(), "stream", json!("trip:a\nb"))), "line 1: field `stream`"),
        (line(set(arrived(), "type", json!("trip.\narrived"))), "line 1: field `type`"),
        (line(set(arrived(), "occurred", json!("2025\n-01"))), "line 1: field `occurred`"),
        (line(set(arrived(), "data.place", json!("Seoul\nKR"))), "line 1: field `data.place`"),
        (line(set(arrived(), "expect", json!("any\nnone"))), "line 1: field `expect`"),
        // Duplicate keys: which one counts is up to the parser, so neither may.
        (edit(arrived(), "{\"data\"", &format!("{{\"stream\":\"{SALE}\",\"data\"")), "line 1: field `stream`"),
        (edit(arrived(), "{\"place\"", "{\"place\":\"place:atlantis\",\"place\""), "line 1: duplicate field `place`"),
    ]
}

/// Runs `chronicle append -` with `input` on stdin.
fn append_stdin(c: &Chronicle, input: &[u8]) -> common::Run {
    let mut child = c
        .command(&["append", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // A writer thread, so that a child that stops reading cannot block the test.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("the binary ends");
    writer.join().expect("the writer ends");
    common::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The whole log, in the export format.
fn export(c: &Chronicle) -> String {
    c.run(&["--json", "log"]).ok()
}

/// A store filled by `chronicle demo`, and its log in the export format.
struct Demo {
    c: Chronicle,
    before: String,
}

impl Demo {
    fn new() -> Demo {
        let c = Chronicle::new();
        c.run(&["demo"]).ok();
        let before = export(&c);
        assert_eq!(before.lines().count(), 43, "the demo imported its events");
        Demo { c, before }
    }
}

/// Feeds `input` to `append -` and to `import FILE` and checks that each exits 2 with one
/// line on stderr, `error: <stdin or FILE>: line N: …` containing the fragment of
/// `expected` (`"line N: fragment"`), and leaves the log as it was. Returns what went
/// wrong, so that the table reports every failing row at once. A row that wrote
/// something gets a fresh store afterwards, so that it cannot spoil the rows after it.
fn check(demo: &mut Demo, input: &[u8], expected: &str) -> Result<(), String> {
    let (line, fragment) = expected
        .split_once(": ")
        .expect("expected is `line N: fragment`");
    let mut problems = Vec::new();
    for how in ["append -", "import FILE"] {
        let c = &demo.c;
        let (source, run) = if how == "append -" {
            ("stdin".to_owned(), append_stdin(c, input))
        } else {
            let file = c.dir.path().join("bad-input.jsonl");
            std::fs::write(&file, input).expect("write the input file");
            let file = path_str(&file).to_owned();
            let run = c.run(&["import", &file]);
            (file, run)
        };
        let prefix = format!("error: {source}: {line}: ");
        let stderr = run.stderr.trim_end();
        let mut wrong = Vec::new();
        if run.code != 2 {
            wrong.push(format!("exit code {} (want 2)", run.code));
        }
        if stderr.lines().count() != 1 {
            wrong.push(format!(
                "{} lines on stderr (want 1)",
                stderr.lines().count()
            ));
        }
        if stderr.contains("panicked") {
            wrong.push("a panic".to_owned());
        }
        if !stderr.starts_with(&prefix) {
            wrong.push(format!("stderr does not start with `{prefix}`"));
        }
        if !stderr.contains(fragment) {
            wrong.push(format!("stderr lacks `{fragment}`"));
        }
        if !run.stdout.is_empty() {
            wrong.push(format!("stdout is not empty: {:?}", run.stdout.trim_end()));
        }
        let after = export(c);
        if after != demo.before {
            wrong.push(format!(
                "the log changed ({} events before, {} after)",
                demo.before.lines().count(),
                after.lines().count()
            ));
            *demo = Demo::new();
        }
        if !wrong.is_empty() {
            problems.push(format!(
                "  {how}: {}\n    stderr: {stderr:?}",
                wrong.join("; ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A short, printable form of an input for failure reports.
fn shown(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push_str(&format!("… ({} bytes)", input.len()));
    }
    format!("{short:?}")
}

#[test]
fn every_bad_input_exits_2_with_one_line_and_writes_nothing() {
    let rows = table();
    assert!(rows.len() >= 45, "the table has {} rows", rows.len());
    // The rows are independent, so they run on a few demo stores at once.
    let workers = 4;
    let mut failures: Vec<(usize, String)> = std::thread::scope(|scope| {
        let rows = &rows;
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    let mut demo = Demo::new();
                    rows.iter()
                        .enumerate()
                        .skip(worker)
                        .step_by(workers)
                        .filter_map(|(i, (input, expected))| {
                            check(&mut demo, input, expected).err().map(|problem| {
                                let report = format!(
                                    "row {i}: {}\n  expected: {expected}\n{problem}",
                                    shown(input)
                                );
                                (i, report)
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker ends"))
            .collect()
    });
    failures.sort();
    let reports: Vec<String> = failures.into_iter().map(|(_, report)| report).collect();
    assert!(
        reports.is_empty(),
        "{} of {} rows failed:\n{}",
        reports.len(),
        rows.len(),
        reports.join("\n")
    );
}

#[test]
fn base_events_are_valid() {
    // Each row breaks one thing of one of these; they must be accepted as they are.
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    for event in base_events() {
        c.append(std::slice::from_ref(&event)).ok();
    }
    assert_eq!(c.log().len(), 43 + base_events().len());
}

/// Parses `text` and returns what is wrong when it is not refused for `field`
/// (`None`: the line as a whole).
fn check_parse(text: &str, origin: Origin, field: Option<&str>) -> Result<(), String> {
    match parse_event(text, origin) {
        Ok(_) => Err(format!("accepted: {text}")),
        Err(e) if e.field.as_deref() == field => Ok(()),
        Err(e) => Err(format!(
            "field {:?}, want {field:?}: {text}\n  {e}",
            e.field
        )),
    }
}

#[test]
#[rustfmt::skip]
fn the_library_names_the_field() {
    let rows: Vec<(Value, Origin, Option<&str>)> = vec![
        (set(arrived(), "occurred", json!("2025-02-30")), Origin::New, Some("occurred")),
        (set(arrived(), "occurred", json!("2025-01-09/2025-01-06")), Origin::New, Some("occurred")),
        (without(arrived(), "occurred"), Origin::New, Some("occurred")),
        (set(arrived(), "type", json!("trip.flew")), Origin::New, Some("type")),
        (set(arrived(), "stream", json!(SALE)), Origin::New, Some("stream")),
        (set(registered(), "stream", json!("trip:x")), Origin::New, Some("stream")),
        (set(arrived(), "colour", json!("red")), Origin::New, Some("colour")),
        (set(arrived(), "data.city", json!("Seoul")), Origin::New, Some("data.city")),
        (set(arrived(), "data.place", json!("Seoul")), Origin::New, Some("data.place")),
        (set(announced(), "data.stops.1.place", json!("country:XX")), Origin::New, Some("data.stops[1].place")),
        (set(announced(), "data.stops", json!([])), Origin::New, Some("data.stops")),
        (set(sale(), "data.value.currency", json!("usd")), Origin::New, Some("data.value.currency")),
        (set(sale(), "data.value.currency", json!("UDS")), Origin::New, Some("data.value.currency")),
        (set(sale(), "data.value.amount", json!("3.64 billion")), Origin::New, Some("data.value.amount")),
        (set(arrived(), "source", json!({"publisher": 5})), Origin::New, Some("source.publisher")),
        // A source's address is a web address, on a new event.
        (set(arrived(), "source", json!({"publisher": "W", "url": "javascript:alert(1)"})), Origin::New, Some("source.url")),
        (set(arrived(), "source", json!({"publisher": "W", "url": "news.example/a"})), Origin::New, Some("source.url")),
        (set(arrived(), "source", json!({"publisher": "W", "url": "https://"})), Origin::New, Some("source.url")),
        (set(arrived(), "source", json!({"publisher": "W", "url": "https://news.example/a b"})), Origin::New, Some("source.url")),
        (set(arrived(), "source", json!({"publisher": "W", "url": "https://news.example/\u{7}"})), Origin::New, Some("source.url")),
        (set(evidence(), "data.source.url", json!("ftp://news.example/a")), Origin::New, Some("data.source.url")),
        (set(arrived(), "tags", json!("x")), Origin::New, Some("tags")),
        (set(arrived(), "id", json!("not-a-uuid")), Origin::New, Some("id")),
        (set(arrived(), "id", json!("00000000-0000-0000-0000-000000000000")), Origin::New, Some("id")),
        (set(arrived(), "expect", json!("maybe")), Origin::New, Some("expect")),
        (set(arrived(), "position", json!(44)), Origin::New, Some("position")),
        (set(arrived(), "hash", json!("0".repeat(64))), Origin::New, Some("hash")),
        (set(retraction(), "data.target", json!("the sale")), Origin::New, Some("data.target")),
        (without(correction(), "data.data"), Origin::New, Some("data")),
        (set(arrived(), "data", json!(["country:KR"])), Origin::New, Some("data")),
        // A missing field is the offending field, named by its path like any other.
        (without(arrived(), "stream"), Origin::New, Some("stream")),
        (without(arrived(), "type"), Origin::New, Some("type")),
        (without(arrived(), "data"), Origin::New, Some("data")),
        (without(announced(), "data.traveler"), Origin::New, Some("data.traveler")),
        // An export line: every store field must be there and well-formed.
        (without(export_line(), "recorded"), Origin::Export, Some("recorded")),
        (set(export_line(), "recorded", json!("yesterday")), Origin::Export, Some("recorded")),
        (set(export_line(), "hash", json!("xyz")), Origin::Export, Some("hash")),
        (set(export_line(), "schema", json!(2)), Origin::Export, Some("schema")),
        (without(export_line(), "id"), Origin::Export, Some("id")),
    ];
    let mut texts: Vec<(String, Origin, Option<&str>)> = rows
        .into_iter()
        .map(|(event, origin, field)| (event.to_string(), origin, field))
        .collect();
    // Not an event at all: the line as a whole.
    texts.push(("{nope".to_owned(), Origin::New, None));
    texts.push(("[1]".to_owned(), Origin::New, None));
    texts.push((padded(LIMIT + 1), Origin::New, None));
    let failures: Vec<String> = texts
        .iter()
        .filter_map(|(text, origin, field)| check_parse(text, *origin, *field).err())
        .collect();
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), texts.len(), failures.join("\n"));
    assert!(parse_event(&export_line().to_string(), Origin::Export).is_ok());
    // The rules held only to new events (an ISO currency, a country never registered, a
    // sale between two parties of at least one item, no blank alias or reason, a source's
    // web address) do not stop an older log's export
    // from being restored.
    let exported = |mut event: Value| {
        let line = export_line();
        for field in ["position", "version", "id", "recorded", "schema", "hash"] {
            event[field] = line[field].clone();
        }
        event.to_string()
    };
    for old in [
        set(sale(), "data.value.currency", json!("UDS")),
        set(sale(), "data.buyer", json!("country:US")),
        set(sale(), "data.items", json!([])),
        set(registered(), "stream", json!("country:KE")),
        set(registered(), "data.aliases", json!([""])),
        set(correction(), "data.reason", json!(" ")),
        set(arrived(), "source", json!({"publisher": "W", "url": "javascript:alert(1)"})),
        set(evidence(), "data.source.url", json!("ftp://news.example/a")),
    ] {
        assert!(parse_event(&old.to_string(), Origin::New).is_err(), "{old}");
        let restored = exported(old);
        assert!(parse_event(&restored, Origin::Export).is_ok(), "{restored}");
    }
}

#[test]
fn an_event_at_the_size_limit_is_accepted_and_its_export_restores() {
    // The limit is on the line as written; the export adds position, id, time and hash.
    let c = Chronicle::new();
    let event = padded(LIMIT);
    c.run_stdin(&["append", "-"], &format!("{event}\n")).ok();
    let exported = export(&c);
    let restored = Chronicle::new();
    let file = restored.file("export.jsonl", &exported);
    restored.run(&["import", path_str(&file)]).ok();
    assert_eq!(export(&restored), exported);
}

// Fuzzing the parser: no input may make it panic.

/// Valid events to mutate: the demo's, the base events of the table, and an export line.
fn seeds() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the events folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut seeds: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("a readable events file")
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("//"))
                .map(|l| serde_json::from_str(l).expect("the demo events are JSON"))
                .collect::<Vec<Value>>()
        })
        .collect();
    seeds.extend(base_events());
    let golden = include_str!("golden/recorded-event-v1.json");
    seeds.push(serde_json::from_str(golden).expect("the golden event is JSON"));
    seeds
}

/// Stands in for a value that JSON text can hold but `serde_json::Value` cannot build
/// (a huge number, deep nesting); replaced in the text after serializing.
const SENTINEL: &str = "\u{1}sentinel\u{1}";

/// One change to a valid event. Indexes pick among what the event has when it is applied.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove a field of some object.
    Drop(Index),
    /// Replace some value by one of another type.
    Retype(Index, Value),
    /// Replace some string by arbitrary text.
    Restring(Index, String),
    /// Rename a field.
    Rename(Index, String),
    /// Replace some value by a number JSON can write but few parsers hold.
    HugeNumber(Index, &'static str),
    /// Replace some value by arrays (or objects) nested `depth` deep.
    Nest(Index, usize, bool),
    /// Repeat a key at the start of the object, with another value.
    DuplicateKey(&'static str, Value),
    /// Replace one character of the text.
    Flip(Index, char),
    /// Cut the text short.
    Truncate(Index),
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!(["country:KR", 1])),
        Just(json!({"place": "country:KR"})),
        Just(json!("2025-01-05")),
        Just(json!("person:antony-blinken")),
    ]
}

/// Text that tends to reach the parser's edges: ids, dates, odd Unicode.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z]{1,8}:[a-zA-Z0-9-]{0,8}",
        "[0-9]{1,5}(-[0-9]{1,3}){0,2}(T[0-9:]{0,9}(Z|[+-][0-9:]{0,6})?)?(/[0-9-]{0,10})?~?",
        prop::sample::select(vec![
            "",
            "\u{0}",
            "\u{202e}trip:x",
            "🦀",
            "e\u{301}",
            "\u{2028}",
            "ǅ",
            "İ",
            "\u{feff}",
            "country:KR\u{0}",
            "trip:ß",
            "２０２５",
            "2025-01-0５",
            "person:a\u{200b}",
            "9999-12-31T23:59:60Z",
            "0001-01-01T00:00:00+23:59",
            "9999/0001",
            "2025-00",
            "2025-02-29T00:00:00Z",
            "\\",
            "\"",
        ])
        .prop_map(str::to_owned),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    const KEYS: &[&str] = &[
        "stream", "type", "data", "occurred", "id", "position", "hash", "expect",
    ];
    const HUGE: &[&str] = &[
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551616",
        "18446744073709551615",
        "-9223372036854775809",
        "-0",
        "123456789012345678901234567890.5",
        "0.000000000000000000000000000001",
        "4294967296",
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Drop),
        (any::<Index>(), any_value()).prop_map(|(i, v)| Mutation::Retype(i, v)),
        (any::<Index>(), nasty_string()).prop_map(|(i, s)| Mutation::Restring(i, s)),
        (any::<Index>(), nasty_string()).prop_map(|(i, s)| Mutation::Rename(i, s)),
        (any::<Index>(), prop::sample::select(HUGE)).prop_map(|(i, n)| Mutation::HugeNumber(i, n)),
        (any::<Index>(), 1usize..400, any::<bool>()).prop_map(|(i, d, o)| Mutation::Nest(i, d, o)),
        (prop::sample::select(KEYS), any_value()).prop_map(|(k, v)| Mutation::DuplicateKey(k, v)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Flip(i, c)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Every value of `v` as a path of keys and indexes, the root first.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    let children: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, c)| (k.clone(), c)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        at.push(key);
        paths(child, at, out);
        at.pop();
    }
}

fn at_path<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, key| match v {
        Value::Array(a) => &mut a[key.parse::<usize>().expect("an index")],
        _ => &mut v[key.as_str()],
    })
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, key| match v {
        Value::Array(a) => &a[key.parse::<usize>().expect("an index")],
        _ => &v[key.as_str()],
    })
}

/// A path picked by `i` among those of `v` (the root excluded) whose value `want`s.
fn pick(v: &Value, i: &Index, want: impl Fn(&Value) -> bool) -> Option<Vec<String>> {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let fitting: Vec<Vec<String>> = all
        .into_iter()
        .filter(|p| !p.is_empty() && want(get_path(v, p)))
        .collect();
    (!fitting.is_empty()).then(|| fitting[i.index(fitting.len())].clone())
}

/// Applies the mutations: first those on the value, then those on its text.
fn mutate(mut event: Value, mutations: &[Mutation]) -> String {
    let mut raw = Vec::new();
    for m in mutations {
        match m {
            Mutation::Drop(i) => {
                if let Some(mut p) = pick(&event, i, |_| true) {
                    let key = p.pop().expect("not the root");
                    match at_path(&mut event, &p) {
                        Value::Object(o) => {
                            o.remove(&key);
                        }
                        Value::Array(a) => {
                            a.remove(key.parse::<usize>().expect("an index"));
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Retype(i, value) => {
                if let Some(p) = pick(&event, i, |_| true) {
                    *at_path(&mut event, &p) = value.clone();
                }
            }
            Mutation::Restring(i, s) => {
                if let Some(p) = pick(&event, i, Value::is_string) {
                    *at_path(&mut event, &p) = json!(s);
                }
            }
            Mutation::Rename(i, name) => {
                // The field at the picked path, renamed in its object.
                if let Some(mut p) = pick(&event, i, |_| true) {
                    let key = p.pop().expect("not the root");
                    if let Value::Object(o) = at_path(&mut event, &p)
                        && let Some(v) = o.remove(&key)
                    {
                        o.insert(name.clone(), v);
                    }
                }
            }
            Mutation::HugeNumber(i, number) => {
                if let Some(p) = pick(&event, i, |_| true) {
                    *at_path(&mut event, &p) = json!(SENTINEL);
                    raw.push(number.to_string());
                }
            }
            Mutation::Nest(i, depth, objects) => {
                if let Some(p) = pick(&event, i, |_| true) {
                    *at_path(&mut event, &p) = json!(SENTINEL);
                    raw.push(if *objects {
                        format!("{}1{}", "{\"a\":".repeat(*depth), "}".repeat(*depth))
                    } else {
                        format!("{}1{}", "[".repeat(*depth), "]".repeat(*depth))
                    });
                }
            }
            Mutation::DuplicateKey(..) | Mutation::Flip(..) | Mutation::Truncate(_) => {}
        }
    }
    let mut text = event.to_string();
    let sentinel = serde_json::to_string(SENTINEL).expect("a string serializes");
    for replacement in raw {
        text = text.replacen(&sentinel, &replacement, 1);
    }
    for m in mutations {
        match m {
            // A truncation before it may have cut the text to nothing.
            Mutation::DuplicateKey(key, value) if text.starts_with('{') => {
                text.insert_str(1, &format!("{}:{value},", json!(key)));
            }
            Mutation::Flip(i, c) => {
                let chars: Vec<char> = text.chars().collect();
                if !chars.is_empty() {
                    let at = i.index(chars.len());
                    text = chars[..at]
                        .iter()
                        .chain(std::iter::once(c))
                        .chain(&chars[at + 1..])
                        .collect();
                }
            }
            Mutation::Truncate(i) => {
                let chars: Vec<char> = text.chars().collect();
                text = chars[..i.index(chars.len() + 1)].iter().collect();
            }
            _ => {}
        }
    }
    text
}

/// Parses `text` both as a new event and as an export line. Either may fail; neither
/// may panic. What is accepted is also touched the way the store touches it.
fn parse_both(text: &str) {
    for origin in [Origin::New, Origin::Export] {
        match parse_event(text, origin) {
            Ok(event) => {
                let _ = event.content_digest();
                let _ = event.typed.entity_refs();
                let _ = event.typed.target();
                if let Some(extent) = &event.occurred {
                    let _ = (extent.earliest(), extent.latest(), extent.to_string());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

fn fuzz_config() -> ProptestConfig {
    let cases = std::env::var("CHRONICLE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_both(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_json_tokens_never_panic(tokens in prop::collection::vec(prop::sample::select(vec![
        "{", "}", "[", "]", ":", ",", "\"stream\"", "\"type\"", "\"data\"", "\"occurred\"",
        "\"trip:x\"", "\"trip.started\"", "\"2025\"", "\"person:a\"", "\"place\"", "null",
        "0", "-1", "1e999", "true", "\"\\u0000\"", "\"\\ud800\"", " ",
    ]), 0..64)) {
        parse_both(&tokens.concat());
    }

    #[test]
    fn mutated_events_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let seeds = seeds();
        let event = seeds[seed.index(seeds.len())].clone();
        let text = mutate(event, &mutations);
        parse_both(&text);
        // The value-level parser too, without the text limits.
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = parse_event_value(value.clone(), Origin::New);
            let _ = parse_event_value(value, Origin::Export);
        }
    }
}

#[test]
fn a_command_line_clap_refuses_is_one_line_naming_the_help_to_read() {
    let c = Chronicle::new();
    for (args, fragment) in [
        (
            &["append", "--bogus"][..],
            "unexpected argument '--bogus' found; see `chronicle append --help`",
        ),
        (
            &["tripp"][..],
            "unrecognized subcommand 'tripp' (a similar subcommand exists: 'trip'); see `chronicle --help`",
        ),
        (
            &["timeline", "--limit", "x"][..],
            "see `chronicle timeline --help`",
        ),
        (
            &["trip", "show"][..],
            "<TRIP>; see `chronicle trip show --help`",
        ),
    ] {
        c.run(args).fails(2, fragment);
    }
    assert!(!c.db().exists(), "a refused command line wrote nothing");
    // Help is still clap's own, on stdout, exit 0.
    let help = c.run(&["trip", "--help"]).ok();
    assert!(help.contains("Usage: chronicle trip"), "{help}");
}

#[test]
fn usage_mistakes_say_what_to_do() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let head = c.log().len();
    // A folder where a file is expected: bad usage, nothing written.
    let folder = tempfile::tempdir().unwrap();
    c.run(&["append", "--file", path_str(folder.path())])
        .fails(2, "is a folder; give a JSON Lines file");
    assert_eq!(c.log().len(), head);
    // An empty answer says so, and how to get one.
    let none = c.run(&["trip", "list", "--known-at", "1990-01-01"]).ok();
    assert!(
        none.starts_with("No trips then; without --as-of and --known-at"),
        "{none}"
    );
    c.run(&["--json", "timeline", "--format", "table"]).fails(
        2,
        "--json asks for JSON and --format table for a table: give one of them",
    );
    // The reported clock needs a date, not an approximate one.
    c.run(&["timeline", "--known-at", "2025-01-04~"]).fails(
        2,
        "--known-at: `2025-01-04~` is approximate (~), and the reported clock needs a date: give it without the ~, like 2025-01-04",
    );
    // Any name given to replay rebuilds (and reports) every projection.
    let replayed = c
        .run(&["--json", "replay", "--projection", "timeline"])
        .ok();
    let report: Value = serde_json::from_str(&replayed).unwrap();
    let names = report["projections"].as_array().unwrap();
    assert!(
        names.len() > 1 && names.contains(&json!("trips")),
        "{report}"
    );
    // The same list as `stats` gives, the facts layer first.
    let stats: Value = serde_json::from_str(&c.run(&["--json", "stats"]).ok()).unwrap();
    let listed: Vec<&Value> = stats["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["projection"])
        .collect();
    assert_eq!(listed, names.iter().collect::<Vec<_>>(), "{stats}");
    // A negative number is a bad value, not an unknown flag.
    c.run(&["log", "--limit", "-3"])
        .fails(2, "`-3` is not a whole number from 1");
    c.run(&["trip", "list", "--as-of", "-1"]).fails(2, "-1");
    c.run(&["log", "--from", "-1"])
        .fails(2, "invalid value '-1'");
    c.run(&["log", "--from", "abc"])
        .fails(2, "`abc` is not a position: give a whole number");
    c.run(&["log", "--limit", "99999999999999999999"])
        .fails(2, "is too large; leave --limit out for all");
    c.run(&["timeline", "--as-of", "99999999999999999999999"])
        .fails(2, "is past the end of any log; `chronicle stats`");
    c.run(&["import", "--batch", "-1", "x.jsonl"])
        .fails(2, "`-1` is not a batch size");
    let append = |extra: &[&str]| {
        let mut args = vec!["append", "--stream", "trip:x", "--type", "trip.started"];
        args.extend(extra);
        c.run(&args)
    };
    append(&["--occurred", "2025-01-06", "--data", "{}", "--expect", "-1"])
        .fails(2, "`-1` is not an expectation");
    append(&["--occurred", "2025-01-06", "--data", "{}", "--id", "nope"]).fails(
        2,
        "; give a UUID like 0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70, or leave `id` out",
    );
    append(&["--occurred", "2025-01-06T25:00:00Z", "--data", "{}"])
        .fails(2, "(input is out of range): expected a date like 2025");
    // An entity filter names the option it came from, in the CLI's words; the
    // command's own argument needs no name.
    c.run(&["sales", "--buyer", "Mars"])
        .fails(2, "error: --buyer: no entity is named or aliased `Mars`");
    c.run(&["timeline", "--entity", "Mars"])
        .fails(2, "error: --entity: no entity is named or aliased `Mars`");
    c.run(&["entity", "show", "Mars"])
        .fails(2, "error: no entity is named or aliased `Mars`");
    c.run(&["trip", "show", "Mars"])
        .fails(2, "error: no trip is `Mars`");
    // A folder with nothing to import is a mistake, not an empty import.
    c.run(&["import", path_str(folder.path())])
        .fails(2, "holds no .jsonl files");
    // So is a file with no events in it, as `append` says too; nor does it create a store.
    let empty = c.file("empty.jsonl", "\n\n");
    c.run(&["import", path_str(&empty)])
        .fails(2, "empty.jsonl holds no events; nothing was written");
    c.run(&["append", "--file", path_str(&empty)])
        .fails(2, "the input holds no events; nothing was written");
    let elsewhere = Chronicle::new();
    elsewhere
        .run(&["import", path_str(&empty)])
        .fails(2, "holds no events");
    assert!(!elsewhere.db().exists(), "no store created");
    assert_eq!(c.log().len(), head);
    // An address already taken: what to do instead, not only the OS's words.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    c.run(&["serve", "--addr", &addr]).fails(
        1,
        "already listens there; choose another address with --addr",
    );
    // ... and, for a store not made yet, leaves none behind.
    let fresh = c.dir.path().join("never-made");
    let output = command_at(&fresh, &["serve", "--addr", &addr])
        .output()
        .expect("the binary runs");
    Run::from_output(output).fails(1, "already listens there");
    assert!(
        !fresh.exists(),
        "a server that could not start made a store"
    );
}

/// The check of an import forgets each batch's facts to bound its memory; an amendment
/// in a later batch of a fact from an earlier one is still checked in full before
/// anything is written (it was found only when written, after the batches before it).
#[test]
fn an_amendment_in_a_later_batch_is_checked_before_anything_is_written() {
    const NOTE: &str = "0198e000-0000-7000-8000-0000000000a1";
    let note = json!({"id": NOTE, "stream": "conflict:x", "type": "note.reported", "occurred": "2025-01-01",
        "data": {"summary": "first", "entities": ["country:US"]}});
    let filler = json!({"stream": "conflict:y", "type": "note.reported", "occurred": "2025-01-02",
        "data": {"summary": "filler", "entities": ["country:US"]}});
    let correct = |data: Value| {
        json!({"stream": "conflict:x", "type": "event.corrected", "occurred": "2025-01-03",
            "data": {"target": NOTE, "reason": "a later report", "data": data}})
    };
    let input = |c: &Chronicle, name: &str, fix: Value| {
        let text: String = [note.clone(), filler.clone(), correct(fix)]
            .iter()
            .map(|e| format!("{e}\n"))
            .collect();
        path_str(&c.file(name, &text)).to_owned()
    };
    let fresh = Chronicle::new();
    let demo = Chronicle::new();
    demo.run(&["demo"]).ok();
    let before = export(&demo);
    for (name, fix, says) in [
        (
            "same.jsonl",
            json!({"summary": "first"}),
            "line 3: field `data.data`: the correction changes nothing",
        ),
        (
            "type.jsonl",
            json!({"summary": 5}),
            "line 3: field `data.data.summary`: invalid type: integer `5`",
        ),
    ] {
        let file = input(&fresh, name, fix.clone());
        fresh.run(&["import", "--batch", "1", &file]).fails(2, says);
        assert!(
            !fresh.db().exists(),
            "{name}: a refused import creates no store"
        );
        let file = input(&demo, name, fix);
        demo.run(&["import", "--batch", "1", &file]).fails(2, says);
        assert_eq!(export(&demo), before, "{name}: nothing written");
    }
    let file = input(&fresh, "good.jsonl", json!({"summary": "second"}));
    fresh.run(&["import", "--batch", "1", &file]).ok();
    let shown = fresh.run(&["timeline", "--stream", "conflict:x"]).ok();
    assert!(shown.contains("second"), "{shown}");
    // A fact of the log corrected in one batch and again in a later one: checked
    // against the first correction, not the log's data.
    let amount = |a: u64| {
        let mut fix = correction();
        fix["data"]["data"]["value"]["amount"] = json!(a);
        format!("{fix}\n")
    };
    let twice = demo.file(
        "twice.jsonl",
        &(amount(3_500_000_000) + &amount(3_500_000_000)),
    );
    demo.run(&["import", "--batch", "1", path_str(&twice)])
        .fails(
            2,
            "line 2: field `data.data`: the correction changes nothing",
        );
    assert_eq!(export(&demo), before, "nothing written");
    let back = demo.file(
        "back.jsonl",
        &(amount(3_500_000_000) + &amount(3_640_000_000)),
    );
    demo.run(&["import", "--batch", "1", path_str(&back)]).ok();
    assert_eq!(export(&demo).lines().count(), before.lines().count() + 2);
    // A correction back to the log's own data, a batch after another: valid, as the
    // lines before it leave the fact (it was refused as changing nothing).
    let c = Chronicle::new();
    c.append(std::slice::from_ref(&note)).ok();
    let summary = |text: &str| format!("{}\n", correct(json!({"summary": text})));
    let lines = summary("changed") + &format!("{filler}\n") + &summary("first");
    let file = c.file("back-again.jsonl", &lines);
    c.run(&["import", "--batch", "1", path_str(&file)]).ok();
    assert_eq!(c.log().len(), 4);
}

/// A link to a folder is not followed by `import`'s walk: one back to a folder above
/// read the same file again and again (41 times, until the system's limit on links).
#[cfg(unix)]
#[test]
fn import_does_not_follow_a_link_to_a_folder() {
    let c = Chronicle::new();
    let folder = c.dir.path().join("in");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    let event = json!({"stream": "conflict:x", "type": "note.reported", "occurred": "2025-01-01",
        "data": {"summary": "once", "entities": ["country:US"]}});
    std::fs::write(folder.join("sub/a.jsonl"), format!("{event}\n")).unwrap();
    std::os::unix::fs::symlink("..", folder.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub", folder.join("also")).unwrap();
    c.run(&["import", path_str(&folder)]).ok();
    assert_eq!(c.log().len(), 1);
}

/// A folder's `.JSONL` files are read as `.jsonl` ones; its other files are named in a
/// note, not passed over in silence; stdin is read once.
#[test]
fn import_of_a_folder_names_the_files_it_skips() {
    let c = Chronicle::new();
    let folder = c.dir.path().join("in");
    std::fs::create_dir_all(&folder).unwrap();
    let note = |summary: &str| {
        json!({"stream": "conflict:x", "type": "note.reported", "occurred": "2025-01-01",
            "data": {"summary": summary, "entities": ["country:US"]}})
    };
    std::fs::write(folder.join("a.jsonl"), format!("{}\n", note("a"))).unwrap();
    std::fs::write(folder.join("b.JSONL"), format!("{}\n", note("b"))).unwrap();
    std::fs::write(folder.join("c.json"), format!("{}\n", note("c"))).unwrap();
    std::fs::write(folder.join("d.txt"), "notes\n").unwrap();
    let run = c.run(&["import", path_str(&folder)]);
    assert!(
        run.stderr
            .contains("note: skipped 2 files that do not end in .jsonl: ")
            && run.stderr.contains("c.json and 1 more"),
        "{}",
        run.stderr
    );
    run.ok();
    assert_eq!(c.log().len(), 2);
    c.run_stdin(&["import", "-", "-"], "")
        .fails(2, "`-` (stdin) is given twice");
}
