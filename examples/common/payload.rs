//! Realistic synthetic events for measurements: registered officials, trips with
//! itineraries, agendas, meetings, arrivals and departures, arms sales, statements
//! about them, and notes, each with a source and a quote (about 300 to 600 bytes of
//! JSON per event). Deterministic, so that runs are comparable.
//!
//! Shared by `examples/generate.rs` and `examples/bench/` through `#[path]`.

#![allow(dead_code)]

use serde_json::{Value, json};

pub const COUNTRIES: &[&str] = &[
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

/// Events per generated trip: its 15 trip events, a sale, a statement about the sale,
/// and a note.
pub const EVENTS_PER_TRIP: u64 = 18;

/// Notes go to this many `note:` streams, by trip number.
pub const NOTE_STREAMS: u64 = 64;

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How many officials a log of `total` events registers.
pub fn people_for(total: u64) -> u64 {
    200.min(total / 10 + 1)
}

/// The entity id of official `p`.
pub fn person(p: u64) -> String {
    format!("person:official-{p}")
}

/// The stream of trip number `trip`.
pub fn trip_stream(trip: u64) -> String {
    format!("trip:tour-{trip}")
}

/// The `entity.registered` events of `people` officials.
pub fn registrations(people: u64) -> Vec<Value> {
    (0..people)
        .map(|p| {
            json!({"id": format!("00000000-0000-7000-8000-{p:012}"), "stream": person(p),
            "type": "entity.registered",
            "data": {"name": format!("Official Number {p}"), "aliases": [format!("Official {p}"), format!("O{p}")],
                     "country": COUNTRIES[(p % 16) as usize], "description": "A senior foreign-policy official"}})
        })
        .collect()
}

/// Trips and what surrounds them, for a log whose officials are already registered.
pub struct Trips {
    rng: Rng,
    people: u64,
    /// Source numbers count the events made so far.
    made: u64,
}

impl Trips {
    /// Trips among `people` registered officials; `seed` picks a different sequence.
    pub fn new(people: u64, seed: u64) -> Trips {
        Trips {
            rng: Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            people,
            made: 0,
        }
    }

    fn source(&mut self) -> Value {
        let n = self.made;
        let rng = &mut self.rng;
        let publisher = ["Example Wire", "Daily Ledger", "Morning Herald"][(n % 3) as usize];
        json!({
            "publisher": publisher,
            "title": format!("Diplomatic round-up number {n}: talks on {}", rng.pick(TOPICS)),
            "url": format!("https://news.example/{n}"),
            "published": format!("2025-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
            "quote": format!("We will continue to work closely with our partners on {}.", rng.pick(TOPICS)),
        })
    }

    /// The [`EVENTS_PER_TRIP`] events of trip number `trip`, in order. Each trip has
    /// its own `trip:` and `arms-sale:` streams; its note goes to
    /// `note:context-<trip mod NOTE_STREAMS>`.
    pub fn trip(&mut self, trip: u64) -> Vec<Value> {
        let people = self.people;
        let rng = &mut self.rng;
        let stream = trip_stream(trip);
        let traveler = person(trip % people);
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
                "data": {"place": s, "with": [person(rng.below(people))], "topic": rng.pick(TOPICS)}}));
            events.push(json!({"stream": stream, "type": "trip.departed", "occurred": day(trip + 3), "data": {"place": s}}));
        }
        events.push(json!({"stream": stream, "type": "trip.completed", "occurred": day(trip + 4), "data": {}}));
        let sale = format!("arms-sale:sale-{trip}");
        let (seller, mut buyer) = (rng.pick(COUNTRIES), rng.pick(COUNTRIES));
        if buyer == seller {
            // A sale is between two parties: the next country in the list.
            let at = COUNTRIES.iter().position(|c| *c == seller).unwrap_or(0);
            buyer = COUNTRIES[(at + 1) % COUNTRIES.len()];
        }
        events.push(json!({"stream": sale, "type": "arms_sale.announced", "occurred": day(trip),
            "data": {"seller": seller, "buyer": buyer, "value": {"amount": (rng.below(5000) + 1) as f64 * 1e6, "currency": "USD"},
                     "items": ["missiles", "training", "related equipment"]}}));
        events.push(json!({"stream": sale, "type": "statement.issued", "occurred": day(trip + 1),
            "data": {"speaker": rng.pick(COUNTRIES), "stance": "opposes", "about": [sale, buyer], "summary": "Objected to the sale as destabilising."}}));
        events.push(json!({"stream": format!("note:context-{}", trip % NOTE_STREAMS), "type": "note.reported",
            "occurred": format!("2025-{:02}", 1 + trip % 12),
            "data": {"summary": format!("Context on {} for tour {trip}", rng.pick(TOPICS)), "entities": [traveler, buyer]}}));
        for e in &mut events {
            e["source"] = self.source();
            e["tags"] = json!([self.rng.pick(&["diplomacy", "defence", "trade"])]);
            self.made += 1;
        }
        events
    }
}

/// A whole log of `total` events: the registrations, then trips 0, 1, 2… (the last
/// one cut short at `total`).
pub fn log(total: u64) -> impl Iterator<Item = Value> {
    let people = people_for(total);
    let mut trips = Trips::new(people, 0);
    registrations(people)
        .into_iter()
        .chain((0..).flat_map(move |trip| trips.trip(trip)))
        .take(total as usize)
}

/// Trips in a log of `total` events (the last may be partial).
pub fn trips_in(total: u64) -> u64 {
    total
        .saturating_sub(people_for(total))
        .div_ceil(EVENTS_PER_TRIP)
}
