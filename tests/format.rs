//! The stored and exported event format is a compatibility boundary: this golden test
//! fails when a change would alter the bytes of a stored event or its hash. If the
//! change is intended, it needs a new store format version and a migration path.

use chronicle::model::event::GENESIS_HASH;
use chronicle::model::{Origin, Position, Version, parse_event};
use uuid::Uuid;

const INPUT: &str = r#"{"id":"0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70","stream":"trip:blinken-final-tour-2025","type":"trip.announced","occurred":"2025-01-03/2025-01-04","occurred_text":"announced before the trip began on Sunday","data":{"traveler":"person:antony-blinken","role":"office:us-secretary-of-state","stops":[{"place":"country:KR","city":"Seoul"},{"place":"country:JP","city":"Tokyo"},{"place":"country:FR","city":"Paris"}]},"source":{"publisher":"Example Wire","title":"Blinken to visit Seoul, Tokyo and Paris","published":"2025-01-04","quote":"Beginning this Sunday"},"tags":["indo-pacific"],"meta":{"author":"desk"},"expect":"any"}"#;

#[test]
fn a_recorded_event_serializes_and_hashes_exactly_as_golden() {
    let proposed = parse_event(INPUT, Origin::New).unwrap();
    let id: Uuid = "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70".parse().unwrap();
    let recorded = "2025-01-04T12:00:00.123456Z".parse().unwrap();
    let mut event = proposed.into_recorded(id, Position(1), Version(1), recorded);
    event.hash = event.chain_hash(&GENESIS_HASH);
    let json = serde_json::to_string(&event).unwrap();
    let golden = include_str!("golden/recorded-event-v1.json").trim_end();
    assert_eq!(json, golden);
    // And it reads back as the same event.
    let back: chronicle::model::RecordedEvent = serde_json::from_str(golden).unwrap();
    assert_eq!(back, event);
}
