//! Generates a realistic synthetic log as JSON Lines on stdout, for measuring
//! `chronicle` at scale: registered people, trips with itineraries, agendas, meetings
//! and arrivals, arms sales, statements about them, and notes, each with a source and
//! a quote (about 300 to 600 bytes of JSON per event).
//!
//! `cargo run --release --example generate -- 1000000 > big.jsonl`

use serde_json::{Value, json};
use std::io::{BufWriter, Write};

const COUNTRIES: &[&str] = &[
    "country:KR",
    "country:JP",
    "country:FR",
    "country:DE",
    "country:US",
    "country:CN",
    "country:GB",
    "country:IN",
    "country:BR",
    "country:ZA",
    "country:UA",
    "country:PL",
    "country:IT",
    "country:ES",
    "country:CA",
    "country:AU",
];
const TOPICS: &[&str] = &[
    "regional security",
    "trade and tariffs",
    "climate finance",
    "humanitarian aid",
    "energy supplies",
    "defence cooperation",
    "nuclear non-proliferation",
    "cyber security",
];

/// A small deterministic generator, so that runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn source(rng: &mut Rng, n: u64) -> Value {
    let publisher = ["Example Wire", "Daily Ledger", "Morning Herald"][(n % 3) as usize];
    json!({
        "publisher": publisher,
        "title": format!("Diplomatic round-up number {n}: talks on {}", rng.pick(TOPICS)),
        "url": format!("https://news.example/{n}"),
        "published": format!("2025-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
        "quote": format!("We will continue to work closely with our partners on {}.", rng.pick(TOPICS)),
    })
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let people = 200.min(total / 10 + 1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut written = 0u64;
    let emit = |out: &mut BufWriter<_>, v: Value| {
        serde_json::to_writer(&mut *out, &v).expect("stdout");
        out.write_all(b"\n").expect("stdout");
    };
    for p in 0..people {
        emit(
            &mut out,
            json!({"id": format!("00000000-0000-7000-8000-{p:012}"), "stream": format!("person:official-{p}"),
            "type": "entity.registered",
            "data": {"name": format!("Official Number {p}"), "aliases": [format!("Official {p}"), format!("O{p}")],
                     "country": COUNTRIES[(p % 16) as usize], "description": "A senior foreign-policy official"}}),
        );
        written += 1;
    }
    let mut trip = 0u64;
    while written < total {
        let stream = format!("trip:tour-{trip}");
        let traveler = format!("person:official-{}", trip % people);
        let day = |d: u64| format!("2025-{:02}-{:02}", 1 + (trip / 28) % 12, 1 + (d % 28));
        let stops: Vec<&str> = (0..3).map(|_| rng.pick(COUNTRIES)).collect();
        let mut events = vec![
            json!({"stream": stream, "type": "trip.announced", "occurred": day(trip), "occurred_text": "announced this week",
                "data": {"traveler": traveler, "title": format!("Tour number {trip}"), "purpose": format!("Talks on {}", rng.pick(TOPICS)),
                         "stops": stops.iter().map(|s| json!({"place": s, "agenda": [rng.pick(TOPICS)]})).collect::<Vec<_>>()}}),
            json!({"stream": stream, "type": "trip.started", "occurred": day(trip + 1), "data": {}}),
        ];
        for s in &stops {
            events.push(json!({"stream": stream, "type": "trip.agenda_item_added", "occurred": day(trip + 1),
                "data": {"place": s, "topic": rng.pick(TOPICS), "detail": "Officials expect detailed discussions over two days."}}));
            events.push(json!({"stream": stream, "type": "trip.arrived", "occurred": day(trip + 2), "data": {"place": s}}));
            events.push(json!({"stream": stream, "type": "trip.meeting_held", "occurred": day(trip + 2),
                "data": {"place": s, "with": [format!("person:official-{}", rng.next() % people)], "topic": rng.pick(TOPICS)}}));
            events.push(json!({"stream": stream, "type": "trip.departed", "occurred": day(trip + 3), "data": {"place": s}}));
        }
        events.push(json!({"stream": stream, "type": "trip.completed", "occurred": day(trip + 4), "data": {}}));
        let sale = format!("arms-sale:sale-{trip}");
        let (seller, buyer) = (rng.pick(COUNTRIES), rng.pick(COUNTRIES));
        events.push(json!({"stream": sale, "type": "arms_sale.announced", "occurred": day(trip), "approximate": null,
            "data": {"seller": seller, "buyer": buyer, "value": {"amount": (rng.next() % 5000 + 1) as f64 * 1e6, "currency": "USD"},
                     "items": ["missiles", "training", "related equipment"]}}));
        events.push(json!({"stream": sale, "type": "statement.issued", "occurred": day(trip + 1),
            "data": {"speaker": rng.pick(COUNTRIES), "stance": "opposes", "about": [sale, buyer], "summary": "Objected to the sale as destabilising."}}));
        events.push(json!({"stream": "note:context", "type": "note.reported", "occurred": format!("2025-{:02}", 1 + trip % 12),
            "data": {"summary": format!("Context on {} for tour {trip}", rng.pick(TOPICS)), "entities": [traveler, buyer]}}));
        for mut e in events {
            if written >= total {
                break;
            }
            if let Some(obj) = e.as_object_mut() {
                obj.remove("approximate");
            }
            e["source"] = source(&mut rng, written);
            e["tags"] = json!([rng.pick(&["diplomacy", "defence", "trade"])]);
            emit(&mut out, e);
            written += 1;
        }
        trip += 1;
    }
    out.flush().expect("stdout");
}
