//! One conformance suite for every log behind `EventStore`: each test is written once
//! against the trait and run on the sled log (a temp dir) and on the PostgreSQL log (a
//! fresh database per test, made on the server `CHRONICLE_TEST_PG` names, dropped after).
//!
//! Without `CHRONICLE_TEST_PG` the PostgreSQL half prints one line saying it is skipped
//! and passes; with `CHRONICLE_REQUIRE_PG=1` (which `.ci/run` sets) it fails instead.
//! `CHRONICLE_CONFORMANCE_KILLS` sets the number of `kill -9` cycles per backend
//! (default 50).

mod common;

use chronicle::Error;
use chronicle::model::event::{GENESIS_HASH, parse_hash};
use chronicle::model::{
    EventType, Origin, Position, ProposedEvent, RecordedEvent, StreamId, Version, parse_event,
    parse_event_value,
};
use chronicle::store::{AppendedEvent, EventStore, PgStore, ReadFilter, SledStore};
use common::pg::Pg;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// The backends.

/// A fresh, empty log that a test can open, close and open again.
trait Backend {
    /// Opens the log (a second open after the first is dropped is a reopen).
    fn open(&self) -> Arc<dyn EventStore>;
    /// What a child process passes to [`open_location`].
    fn location(&self) -> String;
    /// Another fresh, empty log of the same kind.
    fn another(&self) -> Box<dyn Backend>;
}

fn open_location(location: &str) -> chronicle::Result<Arc<dyn EventStore>> {
    if location.starts_with("postgres://") {
        Ok(Arc::new(PgStore::open(location)?))
    } else {
        Ok(Arc::new(SledStore::open(std::path::Path::new(location))?))
    }
}

struct Sled(tempfile::TempDir);

impl Sled {
    fn fresh() -> Sled {
        Sled(tempfile::tempdir().unwrap())
    }
}

impl Backend for Sled {
    fn open(&self) -> Arc<dyn EventStore> {
        Arc::new(SledStore::open(self.0.path()).unwrap())
    }
    fn location(&self) -> String {
        self.0.path().to_str().unwrap().to_owned()
    }
    fn another(&self) -> Box<dyn Backend> {
        Box::new(Sled::fresh())
    }
}

impl Backend for Pg {
    fn open(&self) -> Arc<dyn EventStore> {
        Arc::new(PgStore::open(&self.url).unwrap_or_else(|e| panic!("opening {}: {e}", self.url)))
    }
    fn location(&self) -> String {
        self.url.clone()
    }
    fn another(&self) -> Box<dyn Backend> {
        Box::new(Pg::fresh().expect("a server, since this one exists"))
    }
}

/// Every test of the list, once per backend: `on_sled::NAME` and `on_postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $( #[test] fn $name() { super::child_mode(); super::$name(&super::Sled::fresh()); } )*
        }
        mod on_postgres {
            $( #[test] fn $name() {
                super::child_mode();
                if let Some(pg) = super::Pg::fresh() { super::$name(&pg); }
            } )*
        }
    };
}

conformance!(
    expect_any_none_exists_and_versions,
    idempotent_by_id_with_no_window,
    batches_are_all_or_nothing,
    gapless_under_sixteen_writer_threads,
    sixteen_writers_racing_with_exact_expect_each_win_a_version_once,
    hash_chain_continues_across_reopen,
    bad_input_writes_nothing,
    reads_filter_and_page,
    export_then_restore_keeps_positions_and_hashes,
    kill_9_loses_no_acknowledged_append,
    metrics_count_appends_refusals_and_commits,
    events_at_a_place_must_be_at_a_stop,
    references_are_to_what_the_log_holds,
);

// ---------------------------------------------------------------------------------
// Events.

fn proposed(value: Value) -> ProposedEvent {
    parse_event_value(value, Origin::New).expect("a valid event")
}

/// A `trip.started` on the stream, with `expect` and an optional id.
fn started(stream: &str, id: Option<Uuid>, expect: Value) -> ProposedEvent {
    let mut v = json!({"stream": stream, "type": "trip.started", "occurred": "2025-01-05",
                       "data": {}, "expect": expect});
    if let Some(id) = id {
        v["id"] = json!(id);
    }
    proposed(v)
}

fn registered(entity: &str, id: Uuid) -> ProposedEvent {
    proposed(
        json!({"id": id, "stream": entity, "type": "entity.registered",
                    "data": {"name": entity, "aliases": []}}),
    )
}

fn note(stream: &str, id: Uuid, summary: &str, entities: &[&str]) -> ProposedEvent {
    proposed(
        json!({"id": id, "stream": stream, "type": "note.reported", "occurred": "2025-01-06",
                    "data": {"summary": summary, "entities": entities}}),
    )
}

fn all(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read(&ReadFilter::default())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Positions 1..=n without gaps, versions 1..=k per stream, an unbroken chain ending at
/// the head.
fn assert_sound(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let events = all(store);
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut previous = GENESIS_HASH;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position.0, i as u64 + 1, "positions have no gaps");
        let v = versions.entry(e.stream.as_str()).or_default();
        *v += 1;
        assert_eq!(e.version.0, *v, "versions of {} have no gaps", e.stream);
        assert_eq!(e.chain_hash(&previous), e.hash, "chain at {}", e.position);
        previous = parse_hash(&e.hash).unwrap();
    }
    let head = store.head().unwrap();
    assert_eq!(head.position.0, events.len() as u64);
    assert_eq!(
        parse_hash(&head.hash).unwrap(),
        previous,
        "the head seals the chain"
    );
    events
}

fn exit_code(result: chronicle::Result<Vec<AppendedEvent>>) -> i32 {
    result.expect_err("the append must be refused").exit_code()
}

// ---------------------------------------------------------------------------------
// The tests, once.

fn expect_any_none_exists_and_versions(b: &dyn Backend) {
    let store = b.open();
    let s = "trip:expect";
    let missing = |e: Value| exit_code(store.append(vec![started(s, None, e)]));
    assert_eq!(missing(json!("exists")), 3, "exists on a missing stream");
    assert_eq!(missing(json!(1)), 3, "a version on a missing stream");
    let first = store.append(vec![started(s, None, json!("none"))]).unwrap();
    assert_eq!(
        (first[0].position, first[0].version),
        (Position(1), Version(1))
    );
    match store.append(vec![started(s, None, json!("none"))]) {
        Err(Error::Conflict { index, actual, .. }) => assert_eq!((index, actual), (0, Version(1))),
        other => panic!("none on an existing stream: {other:?}"),
    }
    store
        .append(vec![started(s, None, json!("exists"))])
        .unwrap();
    store.append(vec![started(s, None, json!(2))]).unwrap();
    match store.append(vec![started(s, None, json!(2))]) {
        Err(e @ Error::Conflict { .. }) => {
            assert_eq!(e.exit_code(), 3);
            assert!(e.to_string().contains("version 3"), "{e}");
        }
        other => panic!("a stale version: {other:?}"),
    }
    let last = store.append(vec![started(s, None, json!("any"))]).unwrap();
    assert_eq!(
        (last[0].position, last[0].version),
        (Position(4), Version(4))
    );
    // The version the batch itself builds counts: the second event expects the first.
    let batch = store
        .append(vec![
            started("trip:other", None, json!("none")),
            started("trip:other", None, json!(1)),
        ])
        .unwrap();
    assert_eq!(batch[1].version, Version(2));
    assert_eq!(
        store.stream_version(&StreamId::parse(s).unwrap()).unwrap(),
        Some(Version(4))
    );
    assert_eq!(
        store
            .stream_version(&StreamId::parse("trip:none").unwrap())
            .unwrap(),
        None
    );
    assert_eq!(assert_sound(&*store).len(), 6);
}

/// Both logs count the same way: an append answered as durable (a retry too), a
/// refusal by the rules, a commit with its latency, the new events.
fn metrics_count_appends_refusals_and_commits(b: &dyn Backend) {
    let store = b.open();
    let id = Uuid::now_v7();
    store
        .append(vec![
            started("trip:m", Some(id), json!("none")),
            started("trip:m", None, json!(1)),
        ])
        .unwrap();
    store
        .append(vec![started("trip:m", Some(id), json!("none"))])
        .unwrap();
    assert!(
        store
            .append(vec![started("trip:m", None, json!(7))])
            .is_err()
    );
    store
        .check(vec![started("trip:m", None, json!(2))])
        .unwrap();
    let m = store.metrics();
    assert_eq!(m.appends.get(), 2, "two appends answered as durable");
    assert_eq!(m.appends_refused.get(), 1);
    assert_eq!(m.events_appended.get(), 2, "the retry adds no event");
    assert_eq!(m.commits.get(), 1, "the retry needs no commit");
}

fn idempotent_by_id_with_no_window(b: &dyn Backend) {
    let store = b.open();
    let id = Uuid::now_v7();
    let first = store
        .append(vec![started("trip:idem", Some(id), json!("none"))])
        .unwrap();
    assert!(first[0].new);
    store
        .append(vec![started("trip:idem", None, json!("any"))])
        .unwrap();
    let head = store.head().unwrap();
    // The retry comes before the concurrency check: `none` no longer holds, yet the
    // retry succeeds and changes nothing.
    let retry = store
        .append(vec![started("trip:idem", Some(id), json!("none"))])
        .unwrap();
    assert_eq!(
        (retry[0].position, retry[0].version, retry[0].new),
        (Position(1), Version(1), false)
    );
    assert_eq!(store.head().unwrap(), head);
    // After a reopen too: there is no window.
    drop(store);
    let store = b.open();
    let retry = store
        .append(vec![started("trip:idem", Some(id), json!("any"))])
        .unwrap();
    assert_eq!((retry[0].position, retry[0].new), (Position(1), false));
    // The same id with other content: refused, exit 2, nothing written.
    let mut other = started("trip:idem", Some(id), json!("any"));
    other.occurred_text = Some("another phrase".into());
    match store.append(vec![other]) {
        Err(e @ Error::Invalid { .. }) => {
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("different content"), "{e}");
        }
        other => panic!("same id, other content: {other:?}"),
    }
    // A batch mixing a retry and a new event: the retry lands where it was.
    let fresh = Uuid::now_v7();
    let mixed = store
        .append(vec![
            started("trip:idem", Some(id), json!("any")),
            started("trip:idem", Some(fresh), json!("any")),
        ])
        .unwrap();
    assert_eq!((mixed[0].position, mixed[0].new), (Position(1), false));
    assert_eq!((mixed[1].position, mixed[1].new), (Position(3), true));
    // The same new id twice in one batch is one event.
    let twice = Uuid::now_v7();
    let dup = store
        .append(vec![
            started("trip:idem", Some(twice), json!("any")),
            started("trip:idem", Some(twice), json!("any")),
        ])
        .unwrap();
    assert_eq!(dup[0].position, dup[1].position);
    assert!(dup[0].new && !dup[1].new);
    assert_eq!(assert_sound(&*store).len(), 4);
}

fn batches_are_all_or_nothing(b: &dyn Backend) {
    let store = b.open();
    store
        .append(vec![registered("person:known", Uuid::now_v7())])
        .unwrap();
    let head = store.head().unwrap();
    let (a, bb) = (Uuid::now_v7(), Uuid::now_v7());
    // The third event is invalid against the log: nothing of the batch is written.
    let bad = vec![
        note("note:batch", a, "one", &["person:known"]),
        note("note:batch", bb, "two", &[]),
        note("note:batch", Uuid::now_v7(), "three", &["person:nobody"]),
    ];
    match store.append(bad) {
        Err(Error::Invalid { index, .. }) => assert_eq!(index, Some(2)),
        other => panic!("an unregistered entity: {other:?}"),
    }
    // The second conflicts: nothing written either.
    let conflicting = vec![
        note("note:batch", a, "one", &["person:known"]),
        started("trip:batch", None, json!("exists")),
    ];
    match store.append(conflicting) {
        Err(Error::Conflict { index, .. }) => assert_eq!(index, 1),
        other => panic!("a conflict in a batch: {other:?}"),
    }
    assert_eq!(store.head().unwrap(), head);
    assert!(all(&*store).iter().all(|e| e.id != a && e.id != bb));
    // An entity registered earlier in the same batch may be referred to.
    let ok = store
        .append(vec![
            registered("person:new", Uuid::now_v7()),
            note("note:batch", a, "one", &["person:new", "person:known"]),
            note("note:batch", bb, "two", &[]),
        ])
        .unwrap();
    let positions: Vec<u64> = ok.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, [2, 3, 4]);
    assert_eq!(assert_sound(&*store).len(), 4);
}

fn gapless_under_sixteen_writer_threads(b: &dyn Backend) {
    let store = b.open();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..15 {
                    // Half the threads share one stream, so versions interleave.
                    let stream = if t % 2 == 0 {
                        "trip:shared".to_owned()
                    } else {
                        format!("trip:own-{t}")
                    };
                    let batch: Vec<_> = (0..=(i % 3))
                        .map(|_| started(&stream, Some(Uuid::now_v7()), json!("any")))
                        .collect();
                    acked.extend(store.append(batch).unwrap());
                }
                acked
            })
        })
        .collect();
    let acked: Vec<AppendedEvent> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let events = assert_sound(&*store);
    assert_eq!(events.len(), 16 * (5 + 5 * 2 + 5 * 3));
    assert_eq!(acked.len(), events.len());
    for a in &acked {
        let e = &events[usize::try_from(a.position.0 - 1).unwrap()];
        assert_eq!((e.id, e.version, &e.stream), (a.id, a.version, &a.stream));
    }
}

fn sixteen_writers_racing_with_exact_expect_each_win_a_version_once(b: &dyn Backend) {
    let store = b.open();
    let stream = StreamId::parse("trip:race").unwrap();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (store, stream) = (store.clone(), stream.clone());
            std::thread::spawn(move || {
                let (mut won, mut lost) = (Vec::new(), 0);
                while won.len() < 3 {
                    let current = store.stream_version(&stream).unwrap().map_or(0, |v| v.0);
                    let event = started(stream.as_str(), None, json!(current));
                    match store.append(vec![event]) {
                        Ok(a) => {
                            assert_eq!(a[0].version.0, current + 1);
                            won.push(a[0].version.0);
                        }
                        Err(Error::Conflict { actual, .. }) => {
                            assert!(actual.0 > current, "a conflict names a newer version");
                            lost += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (won, lost)
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in threads {
        versions.extend(t.join().unwrap().0);
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=48).collect::<Vec<u64>>(),
        "each version won once"
    );
    assert_eq!(assert_sound(&*store).len(), 48);
}

fn hash_chain_continues_across_reopen(b: &dyn Backend) {
    let store = b.open();
    for i in 0..5 {
        store
            .append(vec![started(
                &format!("trip:r{}", i % 2),
                None,
                json!("any"),
            )])
            .unwrap();
    }
    let head = store.head().unwrap();
    assert!(head.recorded.is_some());
    drop(store);
    let store = b.open();
    assert_eq!(store.head().unwrap(), head, "the head survives a reopen");
    for i in 0..5 {
        store
            .append(vec![started(
                &format!("trip:r{}", i % 2),
                None,
                json!("any"),
            )])
            .unwrap();
    }
    let events = assert_sound(&*store);
    assert_eq!(events.len(), 10);
    assert_eq!(events[4].hash, head.hash);
    drop(store);
    assert_eq!(assert_sound(&*b.open()).len(), 10);
}

fn bad_input_writes_nothing(b: &dyn Backend) {
    let store = b.open();
    let fact = Uuid::now_v7();
    store
        .append(vec![
            registered("person:p", Uuid::now_v7()),
            note("note:n", fact, "a fact", &["person:p"]),
        ])
        .unwrap();
    let head = store.head().unwrap();
    let cases: Vec<(&str, ProposedEvent)> = vec![
        (
            "an amendment of an unknown event",
            proposed(json!({"stream": "note:n", "type": "event.retracted",
                            "data": {"target": Uuid::now_v7(), "reason": "r"}})),
        ),
        (
            "an amendment in another stream",
            proposed(json!({"stream": "note:m", "type": "event.retracted",
                            "data": {"target": fact, "reason": "r"}})),
        ),
        (
            "a correction that does not fit the type",
            proposed(json!({"stream": "note:n", "type": "event.corrected",
                            "data": {"target": fact, "reason": "r", "data": {"entities": "x"}}})),
        ),
        (
            "a second registration",
            registered("person:p", Uuid::now_v7()),
        ),
        (
            "an alias of an unregistered entity",
            proposed(json!({"stream": "person:q", "type": "entity.alias_added",
                            "data": {"alias": "Q"}})),
        ),
        (
            "an unregistered entity",
            note("note:n", Uuid::now_v7(), "x", &["org:none"]),
        ),
    ];
    for (what, event) in cases {
        match store.append(vec![event.clone()]) {
            Err(e @ Error::Invalid { .. }) => assert_eq!(e.exit_code(), 2, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            store.check(vec![event]).is_err(),
            "{what}: the dry run agrees"
        );
        assert_eq!(store.head().unwrap(), head, "{what}: nothing written");
    }
    // A dry run of valid events writes nothing either.
    store
        .check(vec![note("note:n", Uuid::now_v7(), "fine", &["person:p"])])
        .unwrap();
    assert_eq!(store.head().unwrap(), head);
    // And a valid correction is accepted (the refusal above was about its data).
    store
        .append(vec![proposed(json!({"stream": "note:n", "type": "event.corrected",
                                     "data": {"target": fact, "reason": "r", "data": {"summary": "better"}}}))])
        .unwrap();
    assert_eq!(assert_sound(&*store).len(), 3);
}

/// An arrival (or departure, meeting, agenda item) at a place that is not a stop of its
/// trip is refused, with the trip's stops in the message, and writes nothing; a
/// `trip.stop_added` before it, in the log or the same append, makes it a stop; a
/// registered place is the stop that names its city in its country; a correction of
/// the announcement that drops a stop counts.
/// An entity referred to is registered, and a statement is about streams the log
/// holds: earlier in the log, or earlier in the same append (which PostgreSQL's writer
/// prefetches with the group's own streams).
fn references_are_to_what_the_log_holds(b: &dyn Backend) {
    let store = b.open();
    let statement = |about: Value| {
        proposed(
            json!({"stream": "statement:s", "type": "statement.issued", "occurred": "2025-01-06",
                        "data": {"speaker": "person:a", "stance": "opposes", "about": about, "summary": "no"}}),
        )
    };
    store
        .append(vec![registered("person:a", Uuid::now_v7())])
        .unwrap();
    let refused = |events: Vec<ProposedEvent>, field: &str| match store.append(events) {
        Err(Error::Invalid { error, .. }) => assert_eq!(error.field.as_deref(), Some(field)),
        other => panic!("{field}: {other:?}"),
    };
    refused(vec![statement(json!(["person:b"]))], "data.about[0]");
    refused(
        vec![statement(json!(["country:JP", "trip:nope"]))],
        "data.about[1]",
    );
    assert_eq!(store.head().unwrap().position.0, 1, "nothing written");
    // What the same append holds first counts, in either order of streams.
    store
        .append(vec![
            registered("person:b", Uuid::now_v7()),
            started("trip:t", None, json!(null)),
            statement(json!(["person:b", "trip:t", "statement:s"])),
        ])
        .unwrap();
    store
        .append(vec![statement(json!(["trip:t", "person:a"]))])
        .unwrap();
    assert_sound(&*store);
}

fn events_at_a_place_must_be_at_a_stop(b: &dyn Backend) {
    let store = b.open();
    let trip = "trip:stops";
    let announced = Uuid::now_v7();
    store
        .append(vec![
            proposed(json!({"stream": "place:jerusalem", "type": "entity.registered",
                            "data": {"name": "Jerusalem", "aliases": [], "country": "country:IL"}})),
            proposed(json!({"id": announced, "stream": trip, "type": "trip.announced", "occurred": "2025-01-03",
                            "data": {"traveler": "country:US",
                                     "stops": [{"place": "country:KR", "city": "Seoul"},
                                               {"place": "country:IL", "city": "Tel Aviv"},
                                               {"place": "country:IL", "city": "Jerusalem"}]}})),
        ])
        .unwrap();
    let at = |ty: &str, place: &str| {
        let mut data = json!({"place": place});
        if ty == "trip.meeting_held" {
            data["with"] = json!(["country:US"]);
        }
        proposed(json!({"stream": trip, "type": ty, "occurred": "2025-01-05", "data": data}))
    };
    let head = store.head().unwrap();
    for ty in ["trip.arrived", "trip.departed", "trip.meeting_held"] {
        match store.append(vec![at(ty, "country:FR")]) {
            Err(e @ Error::Invalid { .. }) => {
                assert_eq!(e.exit_code(), 2);
                let message = e.to_string();
                assert!(
                    message.contains(&format!("{ty} at country:FR: not a stop of `{trip}` (stops: Seoul (country:KR), Tel Aviv (country:IL), Jerusalem (country:IL)); name one of these, or add it first with trip.stop_added")),
                    "{message}"
                );
            }
            other => panic!("{ty}: {other:?}"),
        }
        assert!(store.check(vec![at(ty, "country:FR")]).is_err());
    }
    assert_eq!(store.head().unwrap(), head, "nothing written");
    // The registered place is the Jerusalem stop, not a fourth one.
    store
        .append(vec![at("trip.arrived", "place:jerusalem")])
        .unwrap();
    // Added in the same append, then in the log.
    let added = proposed(
        json!({"stream": trip, "type": "trip.stop_added", "occurred": "2025-01-04",
                                "data": {"place": "country:FR", "city": "Paris"}}),
    );
    store
        .append(vec![added, at("trip.arrived", "country:FR")])
        .unwrap();
    store
        .append(vec![at("trip.departed", "country:FR")])
        .unwrap();
    // A correction of the announcement that drops Seoul.
    store
        .append(vec![proposed(
            json!({"stream": trip, "type": "event.corrected",
            "data": {"target": announced, "reason": "Seoul was dropped",
                     "data": {"stops": [{"place": "country:IL", "city": "Tel Aviv"},
                                        {"place": "country:IL", "city": "Jerusalem"}]}}}),
        )])
        .unwrap();
    let head = store.head().unwrap();
    let refused = store.append(vec![at("trip.arrived", "country:KR")]);
    assert_eq!(exit_code(refused), 2);
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(assert_sound(&*store).len(), 7);
}

fn reads_filter_and_page(b: &dyn Backend) {
    let store = b.open();
    store
        .append(vec![registered("person:reader", Uuid::now_v7())])
        .unwrap();
    // More than one page of the PostgreSQL reader (500), in a few batches.
    for round in 0..4 {
        let batch: Vec<_> = (0..300)
            .map(|i| {
                if i % 3 == 0 {
                    note(
                        &format!("note:r{}", i % 2),
                        Uuid::now_v7(),
                        "n",
                        &["person:reader"],
                    )
                } else {
                    started(&format!("trip:t{round}"), None, json!("any"))
                }
            })
            .collect();
        store.append(batch).unwrap();
    }
    let events = assert_sound(&*store);
    assert_eq!(events.len(), 1201);
    let read =
        |f: ReadFilter| -> Vec<u64> { store.read(&f).map(|e| e.unwrap().position.0).collect() };
    let expected = |keep: &dyn Fn(&RecordedEvent) -> bool| -> Vec<u64> {
        events
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.position.0)
            .collect()
    };
    let trip = StreamId::parse("trip:t2").unwrap();
    assert_eq!(
        read(ReadFilter {
            from: Some(Position(700)),
            ..Default::default()
        }),
        expected(&|e| e.position.0 >= 700)
    );
    assert_eq!(
        read(ReadFilter {
            stream: Some(trip.clone()),
            from_version: Some(Version(50)),
            ..Default::default()
        }),
        expected(&|e| e.stream == trip && e.version.0 >= 50)
    );
    assert_eq!(
        read(ReadFilter {
            category: Some("note".into()),
            ..Default::default()
        }),
        expected(&|e| e.stream.category() == "note")
    );
    assert_eq!(
        read(ReadFilter {
            event_type: Some(EventType::TripStarted),
            from: Some(Position(350)),
            ..Default::default()
        }),
        expected(&|e| e.event_type == EventType::TripStarted && e.position.0 >= 350)
    );
    assert_eq!(
        store.get(Position(600)).unwrap().as_ref(),
        Some(&events[599])
    );
    assert_eq!(store.get(Position(1202)).unwrap(), None);
    assert_eq!(store.stream_version(&trip).unwrap(), Some(Version(200)));
    // Categories are whole: what a stream id has before its colon.
    for (category, held) in [("trip", true), ("note", true), ("person", true)] {
        assert_eq!(store.has_category(category).unwrap(), held, "{category}");
    }
    for category in ["tri", "trips", "t", "not", "arms-sale"] {
        assert!(!store.has_category(category).unwrap(), "{category}");
        let none = ReadFilter {
            category: Some(category.into()),
            ..Default::default()
        };
        assert_eq!(read(none), Vec::<u64>::new(), "{category}");
    }
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.streams), (1201, 7));
    let mut per_type = stats.per_type.clone();
    per_type.sort();
    assert_eq!(
        per_type,
        [
            ("entity.registered".to_owned(), 1),
            ("note.reported".to_owned(), 400),
            ("trip.started".to_owned(), 800)
        ]
    );
    assert!(stats.size_on_disk > 0);
    assert!(stats.views_size_on_disk <= stats.size_on_disk);
}

/// A log with a little of everything: entities, facts, a correction and a retraction
/// (both store-dated), on a few streams.
fn fill(store: &dyn EventStore) {
    let fact = Uuid::now_v7();
    store
        .append(vec![
            registered("person:x", Uuid::now_v7()),
            note("note:f", fact, "a fact", &["person:x"]),
            note("note:f", Uuid::now_v7(), "another", &["country:KR"]),
        ])
        .unwrap();
    for i in 0..20 {
        store
            .append(vec![started(
                &format!("trip:e{}", i % 3),
                None,
                json!("any"),
            )])
            .unwrap();
    }
    store
        .append(vec![proposed(json!({"stream": "note:f", "type": "event.corrected",
                                     "data": {"target": fact, "reason": "r", "data": {"summary": "fixed"}}}))])
        .unwrap();
}

/// Every event as `export` writes it.
fn export(store: &dyn EventStore) -> Vec<String> {
    all(store)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

/// Restores export lines into a store, in batches, as `import` does.
fn restore(store: &dyn EventStore, lines: &[String]) -> Vec<AppendedEvent> {
    let mut appended = Vec::new();
    for chunk in lines.chunks(7) {
        let batch = chunk
            .iter()
            .map(|l| parse_event(l, Origin::Export).expect("an export line parses"))
            .collect();
        appended.extend(store.append(batch).unwrap());
    }
    appended
}

fn export_then_restore_keeps_positions_and_hashes(b: &dyn Backend) {
    let source = b.open();
    fill(&*source);
    let lines = export(&*source);
    let target_backend = b.another();
    let target = target_backend.open();
    let appended = restore(&*target, &lines);
    assert!(appended.iter().all(|a| a.new));
    assert_eq!(export(&*target), lines, "the same events, byte for byte");
    assert_eq!(target.head().unwrap(), source.head().unwrap());
    // Restoring again changes nothing; a tampered line is refused with nothing written.
    assert!(restore(&*target, &lines).iter().all(|a| !a.new));
    let mut tampered: Value = serde_json::from_str(&lines[3]).unwrap();
    tampered["id"] = json!(Uuid::now_v7());
    let event = parse_event(&tampered.to_string(), Origin::Export).unwrap();
    let fresh = b.another();
    let empty = fresh.open();
    assert!(empty.append(vec![event]).is_err());
    assert_eq!(empty.head().unwrap().position, Position(0));
    // The chain continues after a restore.
    target
        .append(vec![started("trip:after", None, json!("none"))])
        .unwrap();
    assert_eq!(assert_sound(&*target).len(), lines.len() + 1);
}

/// The child side of the kill test: appends forever from 4 threads, batches of 1 and
/// 10, printing `position:id …` once each append is acknowledged.
fn appending_child(location: &str) -> ! {
    let store = match open_location(location) {
        Ok(store) => store,
        // Killed mid-open before: the parent checks the log, not the child's exit.
        Err(e) => {
            eprintln!("child: open: {e}");
            std::process::exit(3)
        }
    };
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let n = if i % 4 == 0 { 10 } else { 1 };
                    let batch: Vec<_> = (0..n)
                        .map(|_| started(&format!("trip:k{t}"), Some(Uuid::now_v7()), json!("any")))
                        .collect();
                    let Ok(appended) = store.append(batch) else {
                        std::process::exit(4)
                    };
                    let line: Vec<String> = appended
                        .iter()
                        .map(|a| format!("{}:{}", a.position.0, a.id))
                        .collect();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "{}", line.join(" ")).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0)
}

/// Starts this test binary again as the appending child of `test`, kills it with
/// SIGKILL after `run_for`, and returns the batches it acknowledged.
fn append_then_kill(test: &str, location: &str, run_for: Duration) -> Vec<Vec<(u64, Uuid)>> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env("CHRONICLE_KILL_CHILD", location)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let batch: Option<Vec<(u64, Uuid)>> = line
                .split(' ')
                .map(|item| {
                    let (p, id) = item.split_once(':')?;
                    Some((p.parse().ok()?, id.parse().ok()?))
                })
                .collect();
            // The test harness prints its own lines; only whole ack lines count.
            if let Some(batch) = batch {
                acked.push(batch);
            }
        }
        acked
    });
    std::thread::sleep(run_for);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

fn kill_9_loses_no_acknowledged_append(b: &dyn Backend) {
    let test = std::thread::current()
        .name()
        .expect("the harness names test threads")
        .to_owned();
    let kills: u64 = std::env::var("CHRONICLE_CONFORMANCE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let location = b.location();
    let mut seen: HashMap<Uuid, u64> = HashMap::new();
    let mut acked_total = 0usize;
    let (mut checked_to, mut previous) = (0u64, GENESIS_HASH);
    for cycle in 0..kills {
        // Vary the moment: every fifth kill lands while the child opens the log.
        let run_for = if cycle % 5 == 4 {
            Duration::from_millis(2 + cycle % 30)
        } else {
            Duration::from_millis(80 + (cycle * 37) % 200)
        };
        let batches = append_then_kill(&test, &location, run_for);
        let store = b.open();
        // The events since the last cycle continue the chain without gaps.
        for e in store.read(&ReadFilter {
            from: Some(Position(checked_to + 1)),
            ..Default::default()
        }) {
            let e = e.unwrap();
            assert_eq!(e.position.0, checked_to + 1, "cycle {cycle}: no gap");
            assert_eq!(
                e.chain_hash(&previous),
                e.hash,
                "cycle {cycle}: chain at {}",
                e.position
            );
            previous = parse_hash(&e.hash).unwrap();
            checked_to = e.position.0;
            seen.insert(e.id, e.position.0);
        }
        for batch in &batches {
            for (position, id) in batch {
                assert_eq!(
                    seen.get(id),
                    Some(position),
                    "cycle {cycle}: acknowledged {id} at {position} was lost"
                );
            }
            // A batch is whole: consecutive positions.
            let first = batch[0].0;
            assert!(
                batch
                    .iter()
                    .enumerate()
                    .all(|(i, (p, _))| *p == first + i as u64)
            );
        }
        acked_total += batches.iter().map(Vec::len).sum::<usize>();
    }
    let store = b.open();
    let events = assert_sound(&*store);
    assert_eq!(events.len(), seen.len());
    assert!(acked_total > 0, "the child acknowledged appends");
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {kills} kills, {acked_total} acknowledged events all found, {} events in the log",
        events.len()
    );
}

// ---------------------------------------------------------------------------------
// The child of the kill tests, and what only one backend has.

/// Every test starts here: run as the kill test's child (the parent passes
/// `CHRONICLE_KILL_CHILD` and runs only that test), it does the child's work instead.
fn child_mode() {
    if let Ok(location) = std::env::var("CHRONICLE_KILL_CHILD") {
        appending_child(&location);
    }
}

/// A schema newer than this binary is refused, as sled refuses a newer format.
#[test]
fn postgres_schema_newer_than_the_binary_is_refused() {
    let Some(pg) = Pg::fresh() else { return };
    drop(pg.open());
    let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let newer = chronicle::store::PG_SCHEMA_VERSION + 1;
    client
        .execute(
            "INSERT INTO chronicle_migrations (version, description) VALUES ($1, 'from the future')",
            &[&newer],
        )
        .unwrap();
    match PgStore::open(&pg.url) {
        Err(e @ Error::Incompatible(_)) => {
            assert!(e.to_string().contains("newer than this chronicle"), "{e}")
        }
        Err(other) => panic!("a newer schema: {other}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

/// Two stores on one database, as two servers on two hosts: each has its own writer
/// thread and group commit, and they take turns on the head row.
#[test]
fn postgres_two_writers_on_one_database_stay_gapless() {
    let Some(pg) = Pg::fresh() else { return };
    let (one, two) = (pg.open(), pg.open());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = if t % 2 == 0 { one.clone() } else { two.clone() };
            std::thread::spawn(move || {
                for _ in 0..20 {
                    store
                        .append(vec![started("trip:both", None, json!("any"))])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(assert_sound(&*one).len(), 160);
    assert_eq!(one.head().unwrap(), two.head().unwrap());
    // Optimistic concurrency across them: a stale version from the other is refused.
    let v = two
        .stream_version(&StreamId::parse("trip:both").unwrap())
        .unwrap()
        .unwrap();
    one.append(vec![started("trip:both", None, json!(v.0))])
        .unwrap();
    assert_eq!(
        exit_code(two.append(vec![started("trip:both", None, json!(v.0))])),
        3
    );
}

/// A server opening the log while another one appends to it: the tail check on open
/// reads one consistent end of the log, whatever is committed meanwhile.
#[test]
fn postgres_opens_while_another_writer_appends() {
    let Some(pg) = Pg::fresh() else { return };
    let writer = pg.open();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop) = (writer.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .append(vec![started(&format!("trip:w{t}"), None, json!("any"))])
                        .unwrap();
                }
            })
        })
        .collect();
    for _ in 0..40 {
        let other = PgStore::open(&pg.url).expect("open beside a writer");
        other.stats().expect("stats beside a writer");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let stats = writer.stats().unwrap();
    let counted: u64 = stats.per_type.iter().map(|(_, n)| n).sum();
    assert_eq!(counted, stats.events);
    assert!(assert_sound(&*writer).len() > 40);
}

/// Many threads reading at once share at most 4 connections (plus the writer's): a
/// busy server cannot exhaust the database's connections.
#[test]
fn postgres_reads_share_a_bounded_pool() {
    let Some(pg) = Pg::fresh() else { return };
    let store = pg.open();
    store
        .append(vec![started("trip:pool", None, json!("none"))])
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (server, name, stop) = (pg.server.clone(), pg.name.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
            let mut most = 0;
            // Sample at least once after the readers are done: their idle connections
            // stay open until the store is dropped.
            loop {
                let done = stop.load(std::sync::atomic::Ordering::Relaxed);
                let n: i64 = admin
                    .query_one(
                        // Client connections only: an autovacuum worker busy in the
                        // database shows there too.
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
                        &[&name],
                    )
                    .unwrap()
                    .get(0);
                most = most.max(n);
                if done {
                    break;
                }
            }
            most
        })
    };
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    assert_eq!(store.head().unwrap().position, Position(1));
                    assert!(store.get(Position(1)).unwrap().is_some());
                    assert_eq!(all(&*store).len(), 1);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.join().unwrap();
    assert!(
        (2..=5).contains(&most),
        "{most} connections at most (4 readers and the writer)"
    );
}

/// The server calls the store on tokio's blocking pool: the synchronous client works
/// there (it must not be called on an async task).
#[test]
fn postgres_store_works_from_spawn_blocking() {
    let Some(pg) = Pg::fresh() else { return };
    let url = pg.url.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let head = runtime.block_on(async move {
        let store = tokio::task::spawn_blocking(move || PgStore::open(&url).unwrap())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    store
                        .append(vec![started("trip:async", None, json!("any"))])
                        .unwrap();
                    store.head().unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        tokio::task::spawn_blocking(move || store.head().unwrap())
            .await
            .unwrap()
    });
    assert_eq!(head.position, Position(8));
}

/// Connections the server drops (a restart, an administrator) are replaced: the next
/// append and the next read work without an error, and nothing is lost or doubled.
#[test]
fn postgres_connections_dropped_by_the_server_are_replaced() {
    let Some(pg) = Pg::fresh() else { return };
    let store = pg.open();
    store
        .append(vec![started("trip:drop", None, json!("none"))])
        .unwrap();
    assert_eq!(store.head().unwrap().position, Position(1));
    let mut admin = postgres::Client::connect(&pg.server, postgres::NoTls).unwrap();
    for round in 0..3 {
        let ended: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                &[&pg.name],
            )
            .unwrap()
            .get(0);
        assert!(
            ended >= 2,
            "round {round}: the writer's and a reader's connections ended"
        );
        std::thread::sleep(Duration::from_millis(100));
        let appended = store
            .append(vec![started("trip:drop", None, json!(round + 1))])
            .unwrap();
        assert_eq!(appended[0].position, Position(round + 2));
        assert_eq!(store.head().unwrap().position, Position(round + 2));
    }
    assert_eq!(assert_sound(&*store).len(), 4);
}

/// An export of the sled log restores into PostgreSQL, and back, byte for byte.
#[test]
fn postgres_restores_a_sled_export_and_back() {
    let Some(pg) = Pg::fresh() else { return };
    let sled = Sled::fresh();
    let source = sled.open();
    fill(&*source);
    let lines = export(&*source);
    let on_pg = pg.open();
    restore(&*on_pg, &lines);
    assert_eq!(export(&*on_pg), lines);
    assert_eq!(on_pg.head().unwrap(), source.head().unwrap());
    // The chain goes on in PostgreSQL, and comes back to sled intact.
    on_pg
        .append(vec![started("trip:moved", None, json!("none"))])
        .unwrap();
    let moved = export(&*on_pg);
    let back = Sled::fresh();
    let back_store = back.open();
    restore(&*back_store, &moved);
    assert_eq!(export(&*back_store), moved);
    assert_sound(&*back_store);
}

/// `--db postgres://…` is never taken for a folder: with no server there, every
/// command (one that shows views too) fails with one line that names the server but not
/// the password (exit 1) and creates nothing; a URL of another scheme is exit 2.
#[test]
fn a_url_given_as_db_creates_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    for (url, code) in [
        ("postgres://u:hunter2@127.0.0.1:1/news", 1),
        ("mysql://u@h/news", 2),
        // No database: not the user's name, as libpq would take, without a word.
        ("postgres://u:hunter2@127.0.0.1:1", 2),
        ("postgres://u:hunter2@127.0.0.1:1/", 2),
        // No host: this client has no local socket to fall back on.
        ("postgres://u:hunter2@/news", 2),
    ] {
        for command in [
            &["stats"][..],
            &["trip", "list"][..],
            &[
                "append",
                "--stream",
                "trip:x",
                "--type",
                "trip.started",
                "--occurred",
                "2025",
                "--data",
                "{}",
            ],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
                .current_dir(dir.path())
                .env_remove("CHRONICLE_DB")
                .env_remove("CHRONICLE_SERVER")
                .env_remove("CHRONICLE_VIEWS")
                .arg("--db")
                .arg(url)
                .args(command)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{url} {command:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(!stderr.contains("hunter2"), "the password shows: {stderr}");
            if code == 1 {
                assert!(
                    stderr.contains(
                        "cannot connect to the PostgreSQL log at postgres://127.0.0.1:1/news"
                    ),
                    "{stderr}"
                );
            }
            if url.starts_with("postgres://") && code == 2 {
                assert!(
                    stderr.contains("names no database") || stderr.contains("names no host"),
                    "{stderr}"
                );
            }
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_chronicle"))
        .current_dir(dir.path())
        .env("CHRONICLE_DB", "postgres://u@127.0.0.1:1/news")
        .env_remove("CHRONICLE_SERVER")
        .env_remove("CHRONICLE_VIEWS")
        .arg("stats")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "CHRONICLE_DB as a URL");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

/// A malformed URL, or a server that is not there, is a clear error.
#[test]
fn postgres_bad_urls_and_absent_servers_are_clear_errors() {
    match PgStore::open("postgres://u@127.0.0.1:1/news?connect_timeout=2") {
        Err(e @ Error::Storage(_)) => {
            let message = e.to_string();
            assert!(
                message.contains(
                    "cannot connect to the PostgreSQL log at postgres://127.0.0.1:1/news"
                ),
                "{message}"
            );
            assert_eq!(e.exit_code(), 1);
        }
        Err(other) => panic!("an absent server: {other}"),
        Ok(_) => panic!("opened a log on port 1"),
    }
    match PgStore::open("postgres://u@h/db?sslmode=nonsense") {
        Err(e) => assert_eq!(e.exit_code(), 2, "{e}"),
        Ok(_) => panic!("a malformed URL was accepted"),
    }
}
