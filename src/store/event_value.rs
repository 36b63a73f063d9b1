//! The value of an `E` key: an event's JSON, stored compactly.
//!
//! An event's JSON ([`RecordedEvent::seal`]) begins with its position, which the key
//! already holds, and ends with three fields the store writes itself, always in the
//! same form: `recorded` (27 characters with microseconds), `schema` and the 64-digit
//! hash. Since format 5 the sled log stores the JSON between those as it is, with the
//! rest as numbers and bytes, about 100 bytes less an event:
//!
//! | bytes | what                                                               |
//! |-------|--------------------------------------------------------------------|
//! | 1     | [`COMPACT`]                                                        |
//! | 32    | the hash                                                           |
//! | 8     | `recorded`, microseconds since 1970 (big-endian i64)               |
//! | 4     | `schema` (big-endian u32)                                          |
//! | rest  | the JSON from `"version"` to the field before `recorded`           |
//!
//! Guarantee: [`to_json`] gives back exactly the bytes given to [`encode`], which the hash
//! chain covers. JSON that is not in that form (any other field order or spelling) is
//! stored as it is, which is also how formats 1 to 4 stored every event: a value that
//! begins with `{` is JSON, so a store of format 4 reads as it did.
//!
//! [`RecordedEvent::seal`]: crate::model::RecordedEvent::seal

use crate::model::Position;
use crate::model::event::{micros_text, to_hex};
use chrono::{DateTime, NaiveDate};
use std::borrow::Cow;
use std::io::Write;

/// The first byte of a compact value (a JSON value begins with `{`).
pub const COMPACT: u8 = 1;

const HASH: &[u8] = b",\"hash\":\"";
const SCHEMA: &[u8] = b",\"schema\":";
const RECORDED: &[u8] = b",\"recorded\":\"";
/// Hash, recorded and schema after the tag.
const FIXED: usize = 1 + 32 + 8 + 4;

/// The value to store for `json`, the event at `position`: compact when the JSON has
/// the form the store writes, else the JSON itself.
pub fn encode(json: &[u8], position: Position) -> Cow<'_, [u8]> {
    match compact(json, position) {
        Some(value) => Cow::Owned(value),
        None => Cow::Borrowed(json),
    }
}

fn compact(json: &[u8], position: Position) -> Option<Vec<u8>> {
    let start = format!("{{\"position\":{},", position.0);
    let rest = json.strip_prefix(start.as_bytes())?;
    // ...,"recorded":"<27>","schema":<digits>,"hash":"<64>"}
    let rest = rest.strip_suffix(b"\"}")?;
    let (rest, hex) = rest.split_at_checked(rest.len().checked_sub(64)?)?;
    let hash = lower_hex(hex)?;
    let rest = rest.strip_suffix(HASH)?;
    let digits = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (rest, schema) = rest.split_at(rest.len() - digits);
    let schema: u32 = std::str::from_utf8(schema).ok()?.parse().ok()?;
    if schema.to_string().len() != digits {
        return None;
    }
    let rest = rest.strip_suffix(SCHEMA)?.strip_suffix(b"\"")?;
    let (rest, recorded) = rest.split_at_checked(rest.len().checked_sub(27)?)?;
    let micros = micros_of(recorded)?;
    let middle = rest.strip_suffix(RECORDED)?;
    let mut value = Vec::with_capacity(FIXED + middle.len());
    value.push(COMPACT);
    value.extend_from_slice(&hash);
    value.extend_from_slice(&micros.to_be_bytes());
    value.extend_from_slice(&schema.to_be_bytes());
    value.extend_from_slice(middle);
    Some(value)
}

/// The event's JSON from a stored value; `None` when the value is neither JSON nor
/// compact.
pub fn to_json(value: &[u8], position: Position) -> Option<Cow<'_, [u8]>> {
    match value.first()? {
        b'{' => Some(Cow::Borrowed(value)),
        &COMPACT if value.len() >= FIXED => {
            let hash = &value[1..33];
            let micros = i64::from_be_bytes(value[33..41].try_into().ok()?);
            let schema = u32::from_be_bytes(value[41..45].try_into().ok()?);
            let recorded = micros_text(&DateTime::from_timestamp_micros(micros)?)?;
            let middle = &value[FIXED..];
            let mut json = Vec::with_capacity(middle.len() + 160);
            write!(json, "{{\"position\":{},", position.0).ok()?;
            json.extend_from_slice(middle);
            json.extend_from_slice(RECORDED);
            json.extend_from_slice(&recorded);
            json.push(b'"');
            json.extend_from_slice(SCHEMA);
            write!(json, "{schema}").ok()?;
            json.extend_from_slice(HASH);
            json.extend_from_slice(to_hex(hash).as_bytes());
            json.extend_from_slice(b"\"}");
            Some(Cow::Owned(json))
        }
        _ => None,
    }
}

/// 64 lowercase hex digits as 32 bytes, as the store writes hashes.
fn lower_hex(hex: &[u8]) -> Option<[u8; 32]> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = digit(hex[2 * i])? << 4 | digit(hex[2 * i + 1])?;
    }
    Some(out)
}

/// The microseconds of a `recorded` written as the store writes it
/// (`2025-01-04T12:00:00.123456Z`), when writing them again gives the same text.
fn micros_of(text: &[u8]) -> Option<i64> {
    let number = |from: usize, to: usize| -> Option<u32> {
        std::str::from_utf8(text.get(from..to)?).ok()?.parse().ok()
    };
    let time = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?
        .and_hms_micro_opt(
            number(11, 13)?,
            number(14, 16)?,
            number(17, 19)?,
            number(20, 26)?,
        )?
        .and_utc();
    let micros = time.timestamp_micros();
    (micros_text(&DateTime::from_timestamp_micros(micros)?)?.as_slice() == text).then_some(micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RecordedEvent;

    const GOLDEN: &str = include_str!("../../tests/golden/recorded-event-v1.json");

    #[test]
    fn the_golden_event_round_trips_96_bytes_smaller() {
        let json = GOLDEN.trim_end().as_bytes();
        let value = encode(json, Position(1));
        assert_eq!(value[0], COMPACT);
        assert_eq!(value.len() + 96, json.len());
        assert_eq!(to_json(&value, Position(1)).unwrap().as_ref(), json);
    }

    #[test]
    fn sealed_events_round_trip_at_any_position_time_and_schema() {
        let stream = crate::model::StreamId::parse("trip:t").unwrap();
        let times = [
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999Z",
        ];
        for (i, position) in [1, 9, 10, 99_999, 1 << 40, u64::MAX]
            .into_iter()
            .enumerate()
        {
            let mut event =
                RecordedEvent::for_test(position, 1, &stream, serde_json::json!({"n": i}));
            event.schema = [0, 1, 7, 10, u32::MAX, 2][i];
            if let Some(time) = times.get(i) {
                event.recorded = time.parse().unwrap();
            }
            let (json, _) = event.seal(&[i as u8; 32]);
            let value = encode(&json, Position(position));
            assert_eq!(value[0], COMPACT, "{}", String::from_utf8_lossy(&json));
            assert_eq!(
                to_json(&value, Position(position)).unwrap().as_ref(),
                json.as_slice()
            );
        }
    }

    #[test]
    fn json_in_another_form_is_stored_as_it_is() {
        let golden = GOLDEN.trim_end();
        let others = [
            // Another position than the key's.
            golden.to_owned(),
            golden.replace("\"schema\":1", "\"schema\":01"),
            golden.replace(".123456Z", ".123456+00:00"),
            {
                let at = golden.find("\"hash\":\"").unwrap() + 8;
                format!("{}A{}", &golden[..at], &golden[at + 1..])
            },
            golden.replace("\"recorded\"", "\"Recorded\""),
            golden.replace("2025-01-04T12", "2025-02-30T12"),
        ];
        for (i, other) in others.iter().enumerate() {
            let position = Position(if i == 0 { 2 } else { 1 });
            let value = encode(other.as_bytes(), position);
            assert_eq!(value.as_ref(), other.as_bytes(), "{other}");
            assert_eq!(
                to_json(&value, position).unwrap().as_ref(),
                other.as_bytes()
            );
        }
    }

    #[test]
    fn other_values_are_not_events() {
        for value in [&b""[..], b"[1]", &[COMPACT; 10]] {
            assert!(to_json(value, Position(1)).is_none());
        }
    }
}
