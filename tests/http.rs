//! The HTTP API on a real socket: appends and reads, conflicts, live subscriptions,
//! tokens, body limits, graceful shutdown; and the command line working through a
//! running `chronicle serve`.

mod common;

use chronicle::server::{self, Config};
use chronicle::store::{EventStore, SledStore};
use common::sse::SseReader;
use common::{Chronicle, Serve, person, trip_started};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

/// A server on 127.0.0.1 with a port of its own, run by `server::run_with` on a tokio
/// runtime of the test; requests go through ureq, a plain blocking client.
struct Server {
    url: String,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    agent: ureq::Agent,
}

impl Server {
    fn start(db: &Path, config: Config) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = SledStore::open(db).unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(server::run_with(listener, store, config, async move {
            let _ = stopped.await;
        }));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Server {
            url,
            runtime,
            stop: Some(stop),
            served: Some(served),
            agent,
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let response = self.agent.get(format!("{}{path}", self.url)).call();
        read(response)
    }

    /// A GET that the views answer: asked again while they lag past the server's wait
    /// (a 503, as on a loaded machine after a large append), for at most a minute.
    fn get_caught_up(&self, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.get(path) {
                (503, body) if Instant::now() < deadline => {
                    assert!(body.to_string().contains("views"), "{body}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                (status, body) => {
                    assert_eq!(status, 200, "{path}: {body}");
                    return body;
                }
            }
        }
    }

    fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        read(request.send(body.to_string()))
    }

    /// Triggers the shutdown and waits for `run_with` to return.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let result = self.runtime.block_on(served).unwrap();
            result.unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shut_down();
        }
    }
}

fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut response = response.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
    (status, body)
}

fn new_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    (dir, db)
}

fn started(occurred: &str) -> Value {
    json!({"type": "trip.started", "occurred": occurred, "data": {}})
}

#[test]
fn append_then_read_back() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());

    // One event, its stream from the path.
    let (status, body) = server.post("/streams/trip:t/events", &started("2025-01-05"), None);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["events"][0]["position"], 1);
    assert_eq!(body["events"][0]["version"], 1);
    assert_eq!(body["events"][0]["new"], true);

    // An array, atomically, across streams on POST /events.
    let batch = json!([
        person("ann"),
        trip_started("trip:u"),
        trip_started("trip:t")
    ]);
    let (status, body) = server.post("/events", &batch, None);
    assert_eq!(status, 201, "{body}");
    let positions: Vec<u64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [2, 3, 4]);
    assert_eq!(body["events"][2]["version"], 2);

    let (status, body) = server.get("/streams/trip:t");
    assert_eq!(status, 200);
    assert_eq!(body["version"], 2);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "trip.started");
    assert_eq!(events[0]["occurred"], "2025-01-05");
    assert_eq!(events[1]["position"], 4);
    assert_eq!(events[1]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(body["next"], Value::Null);

    // Pages by position, with a cursor.
    let (_, page) = server.get("/events?limit=3");
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert_eq!(page["next"], 4);
    let (_, page) = server.get("/events?from=4&limit=3");
    assert_eq!(page["events"][0]["position"], 4);
    assert_eq!(page["next"], Value::Null);
    let (_, page) = server.get("/events?type=entity.registered");
    assert_eq!(page["events"][0]["stream"], "person:ann");
    let (_, page) = server.get("/streams/trip:t?from_version=2&limit=1");
    assert_eq!(page["events"][0]["version"], 2);

    // The event format is the CLI's: the same fields in the same order.
    let text = server
        .agent
        .get(format!("{}/events?limit=1", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        text.starts_with(r#"{"events":[{"position":1,"version":1,"id":"#),
        "{text}"
    );

    // Bad input: the same messages as the CLI, and the right statuses.
    let (status, body) = server.post(
        "/streams/trip:t/events",
        &json!({"type": "trip.arrived", "occurred": "2025-01-06", "data": {"place": "Seoul"}}),
        None,
    );
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("event at index 0: field `data.place`: `Seoul` is not an entity id: an entity is named by its id, <kind>:<slug>, such as place:seoul"),
        "{body}"
    );
    assert_eq!(body["field"], "data.place");
    // An arrival at a place that is not a stop of the trip: 422, the stops listed.
    let (status, body) = server.post(
        "/streams/trip:t/events",
        &json!({"type": "trip.arrived", "occurred": "2025-01-06", "data": {"place": "country:KR"}}),
        None,
    );
    assert_eq!(status, 422);
    assert_eq!(body["field"], "data.place", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`trip:t` has no stops yet; add this one first with trip.stop_added"),
        "{body}"
    );
    assert_eq!(
        server.get("/streams/trip:t").1["version"],
        2,
        "nothing written"
    );
    let (status, body) = server.post("/streams/trip:t/events", &trip_started("trip:u"), None);
    assert_eq!(status, 422);
    assert_eq!(body["field"], "stream", "{body}");
    let response = server
        .agent
        .post(format!("{}/events", server.url))
        .header("Content-Type", "application/json")
        .send("{\"stream\": ");
    assert_eq!(read(response).0, 400);
    let response = server
        .agent
        .post(format!("{}/events", server.url))
        .header("Content-Type", "application/json")
        .send(r#"{"stream": "trip:t", "stream": "trip:u", "type": "trip.started", "occurred": "2025", "data": {}}"#);
    let (status, body) = read(response);
    assert_eq!(status, 400, "duplicate keys are ambiguous: {body}");
    let response = server
        .agent
        .post(format!("{}/events", server.url))
        .send(trip_started("trip:t").to_string());
    assert_eq!(read(response).0, 415, "a body not declared JSON");
    assert_eq!(server.get("/streams/trip:none").0, 404);
    assert_eq!(server.get("/events?limit=5000").0, 400);
    assert_eq!(server.get("/events?frm=3").0, 400, "unknown parameters");
    // Writes too: `?expect=1` ignored would be a write its sender thought was checked.
    for path in [
        "/events?stream=trip:u",
        "/streams/trip:t/events?expect=1",
        "/streams/trip:t/events?dry_run=true",
    ] {
        let (status, body) = server.post(path, &trip_started("trip:t"), None);
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains("unknown parameter"), "{path}: {body}");
    }
    assert_eq!(server.get("/nowhere").0, 404);
    // Nothing of the refused writes landed.
    let (_, health) = server.get("/healthz");
    assert_eq!(health["head"], 4);
    assert!(health["views"].as_u64().is_some_and(|v| v <= 4), "{health}");
}

#[test]
fn a_conflict_gives_409_with_expected_and_actual_versions() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    let mut first = started("2025-01-05");
    first["expect"] = json!("none");
    assert_eq!(server.post("/streams/trip:t/events", &first, None).0, 201);

    let (status, body) = server.post("/streams/trip:t/events", &first, None);
    assert_eq!(status, 409);
    assert_eq!(body["expected"], "none");
    assert_eq!(body["actual"], 1);
    assert_eq!(body["stream"], "trip:t");
    assert!(
        body["error"].as_str().unwrap().contains("is at version 1"),
        "{body}"
    );

    // If-Match is the first event's check.
    let send = |if_match: &str| {
        let response = server
            .agent
            .post(format!("{}/streams/trip:t/events", server.url))
            .header("Content-Type", "application/json")
            .header("If-Match", if_match)
            .send(started("2025-01-06").to_string());
        read(response)
    };
    let (status, body) = send("7");
    assert_eq!(status, 409);
    assert_eq!(body["expected"], 7);
    assert_eq!(body["actual"], 1);
    assert_eq!(send("\"1\"").0, 201);
    assert_eq!(send("*").0, 201, "* means the stream exists");
    assert_eq!(send("soon").0, 400);
    assert_eq!(server.get("/streams/trip:t").1["version"], 3);
    // `"expect": null` is no check, as everywhere: it does not disagree with If-Match
    // (found by Schemathesis: it was a 400 "If-Match says 3 but expect says any").
    let mut body = started("2025-01-07");
    body["expect"] = Value::Null;
    let response = server
        .agent
        .post(format!("{}/streams/trip:t/events", server.url))
        .header("Content-Type", "application/json")
        .header("If-Match", "3")
        .send(body.to_string());
    assert_eq!(read(response).0, 201);

    // A request whose first event is in the log already is a retry only if that event
    // was written as the version after If-Match; otherwise the events after it would
    // be written unchecked.
    let batch = |if_match: &str, events: Value| {
        let response = server
            .agent
            .post(format!("{}/streams/trip:t/events", server.url))
            .header("Content-Type", "application/json")
            .header("If-Match", if_match)
            .send(events.to_string());
        read(response)
    };
    let mut known = started("2025-01-08");
    known["id"] = json!("0198e000-0000-7000-8000-000000000001");
    assert_eq!(batch("4", json!([known])).0, 201, "version 5");
    let (status, body) = batch("4", json!([known]));
    assert_eq!((status, &body["events"][0]["new"]), (201, &json!(false)));
    let (status, body) = batch("1", json!([known, started("2025-01-09")]));
    assert_eq!(status, 409, "{body}");
    assert_eq!((&body["written"], &body["actual"]), (&json!(5), &json!(5)));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("check the events after it against version 5"),
        "{body}"
    );
    assert_eq!(server.get("/streams/trip:t").1["version"], 5);
}

#[test]
fn live_events_arrive_and_resume_from_last_event_id_without_loss_or_duplicates() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    for day in 1..=3 {
        let event = started(&format!("2025-01-0{day}"));
        assert_eq!(server.post("/streams/trip:t/events", &event, None).0, 201);
    }

    // Past the end (the log ends at 3): refused; right after the end: new events only.
    let (status, body) = server.get("/events/live?from=5");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("past the end of the log (position 3)")),
        "{body}"
    );
    // So is a Last-Event-ID of an event this log never held: waiting for it would skip
    // every event up to it.
    let (status, body) = read(
        server
            .agent
            .get(format!("{}/events/live", server.url))
            .header("Last-Event-ID", "4")
            .call(),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.starts_with(
            "Last-Event-ID 4 is past the end of the log (position 3): this log never held that event"
        )),
        "{body}"
    );

    // Catch up from position 2, then follow.
    let mut live = SseReader::open(&format!("{}/events/live?from=2", server.url), None);
    let url = server.url.clone();
    let writer = std::thread::spawn(move || {
        let agent = ureq::Agent::new_with_defaults();
        for day in 4..=9 {
            let response = agent
                .post(format!("{url}/streams/trip:t/events"))
                .header("Content-Type", "application/json")
                .send(started(&format!("2025-01-0{day}")).to_string())
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = live.next().expect("the stream stays open");
        assert_eq!(event.event, None, "{event:?}");
        let recorded: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(
            event.id.as_deref(),
            Some(recorded["position"].to_string().as_str())
        );
        seen.push(recorded["position"].as_u64().unwrap());
    }
    assert_eq!(seen, [2, 3, 4, 5, 6]);
    let last = *seen.last().unwrap();
    drop(live);
    writer.join().unwrap();

    // Reconnect with Last-Event-ID: everything after it, once.
    let mut live = SseReader::open(&format!("{}/events/live?from=1", server.url), Some(last));
    for expected in 7..=9 {
        let event = live.next().unwrap();
        assert_eq!(event.id, Some(expected.to_string()));
    }
    assert_eq!(
        server
            .post("/streams/trip:t/events", &started("2025-01-10"), None)
            .0,
        201
    );
    assert_eq!(live.next().unwrap().id.as_deref(), Some("10"));

    // Without `from`, only what comes next; filters apply.
    let mut live = SseReader::open(&format!("{}/events/live?stream=trip:u", server.url), None);
    server.post("/streams/trip:t/events", &started("2025-01-11"), None);
    server.post("/streams/trip:u/events", &started("2025-01-11"), None);
    assert_eq!(live.next().unwrap().id.as_deref(), Some("12"));
}

#[test]
fn a_stalled_subscriber_is_dropped_with_a_message_and_writers_go_on() {
    let (_dir, db) = new_store();
    let config = Config {
        live_buffer: 8,
        live_grace: Duration::from_millis(200),
        // This test is about the drop message, not the watchdog that closes a
        // connection making no progress: on a loaded machine the writes below can
        // take longer than the watchdog's default.
        send_timeout: Duration::from_secs(120),
        ..Config::default()
    };
    let server = Server::start(&db, config);
    let live = SseReader::open(&format!("{}/events/live?from=1", server.url), None);
    // Big events fill the socket buffers quickly while the subscriber reads nothing.
    let note = |i: usize| {
        json!({"type": "note.reported", "occurred": "2025-01-05",
               "data": {"summary": format!("{i} {}", "x".repeat(30_000)), "entities": []}})
    };
    let started = Instant::now();
    for batch in 0..40 {
        let events: Vec<Value> = (0..20).map(|i| note(batch * 20 + i)).collect();
        let (status, body) = server.post("/streams/note:n/events", &json!(events), None);
        assert_eq!(status, 201, "{body}");
    }
    // About a second on an idle machine; held up by the subscriber, the writes would
    // wait for its 120 s send timeout. (20 s was missed once under a loaded machine.)
    let writing = started.elapsed();
    assert!(
        writing < Duration::from_secs(60),
        "writers were held up: {writing:?}"
    );
    std::thread::sleep(Duration::from_millis(600));
    let mut live = live;
    let mut received = 0;
    let last = loop {
        let event = live.next().expect("the stream ends with a message");
        if event.event.as_deref() == Some("error") {
            break event;
        }
        received += 1;
    };
    assert!(received < 800, "the subscriber was dropped early");
    let message: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(message["last_event_id"], received);
    assert!(
        message["error"]
            .as_str()
            .unwrap()
            .contains(&format!("Last-Event-ID: {received}")),
        "{message}"
    );
    assert!(live.next().is_none(), "the stream ends after the message");
}

#[test]
fn a_shutdown_tells_a_subscriber_that_got_nothing_where_to_resume() {
    let (_dir, db) = new_store();
    let mut server = Server::start(&db, Config::default());
    for day in 1..=3 {
        let event = started(&format!("2025-01-0{day}"));
        assert_eq!(server.post("/streams/trip:t/events", &event, None).0, 201);
    }
    // A filter nothing matches: the stream reads past positions 1-3 and sends nothing.
    let mut live = SseReader::open(
        &format!("{}/events/live?from=1&stream=trip:none", server.url),
        None,
    );
    std::thread::sleep(Duration::from_millis(300));
    server.shut_down();
    let last = live.next().expect("the stream ends with a message");
    assert_eq!(last.event.as_deref(), Some("error"), "{last:?}");
    let message: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(message["last_event_id"], Value::Null);
    assert!(
        message["error"].as_str().unwrap().contains("`from=4`"),
        "{message}"
    );
}

#[test]
fn writes_need_the_token_when_one_is_set() {
    let (_dir, db) = new_store();
    let config = Config {
        token: Some("s3cret-token".into()),
        ..Config::default()
    };
    let server = Server::start(&db, config);
    let event = started("2025-01-05");
    let (status, body) = server.post("/streams/trip:t/events", &event, None);
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(
        server
            .post("/streams/trip:t/events", &event, Some("s3cret-tokeN"))
            .0,
        401
    );
    assert_eq!(server.post("/events", &json!([]), Some("wrong")).0, 401);
    assert_eq!(server.get("/healthz").1["head"], 0, "nothing was written");
    assert_eq!(
        server
            .post("/streams/trip:t/events", &event, Some("s3cret-token"))
            .0,
        201
    );
    assert_eq!(server.get("/streams/trip:t").0, 200, "reads are open");
    // A header that decides the request, given twice, is refused whichever copy is
    // right: the first copy is not taken on trust.
    let addr = server.url.trim_start_matches("http://");
    let body = r#"{"type":"trip.started","occurred":"2025-01-06","data":{}}"#;
    for (twice, name) in [
        (
            "Authorization: Bearer s3cret-token\r\nAuthorization: Bearer wrong",
            "authorization",
        ),
        (
            "Authorization: Bearer s3cret-token\r\nIf-Match: 1\r\nIf-Match: 5",
            "if-match",
        ),
    ] {
        let request = format!(
            "POST /streams/trip:t/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{twice}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, answer) =
            common::raw_http(std::net::TcpStream::connect(addr).unwrap(), &request);
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer.contains(&format!("the `{name}` header is given twice")),
            "{answer}"
        );
    }
    assert_eq!(
        server.get("/streams/trip:t").1["version"],
        1,
        "nothing more was written"
    );
}

#[test]
fn bodies_above_the_limit_get_413() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    let big = format!(
        r#"{{"type": "note.reported", "occurred": "2025", "data": {{"summary": "{}", "entities": []}}}}"#,
        "x".repeat(2_000_000)
    );
    let response = server
        .agent
        .post(format!("{}/streams/note:n/events", server.url))
        .header("Content-Type", "application/json")
        .send(big);
    let (status, body) = read(response);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("1048576"),
        "{body}"
    );

    // Under the body limit but above the event limit: refused, by event.
    let event = json!({"type": "note.reported", "occurred": "2025",
                       "data": {"summary": "y".repeat(70_000), "entities": []}});
    let small = json!({"type": "note.reported", "occurred": "2025",
                       "data": {"summary": "y", "entities": []}});
    let (status, body) = server.post("/streams/note:n/events", &json!([small, event]), None);
    assert_eq!(status, 422);
    assert_eq!(body["index"], 1);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("more than the limit of 65536")
    );
    assert_eq!(server.get("/healthz").1["head"], 0);
}

#[test]
fn shutdown_loses_no_acknowledged_append() {
    let (_dir, db) = new_store();
    let mut server = Server::start(&db, Config::default());
    let url = server.url.clone();
    // Writers append until the server stops answering; each keeps what was acknowledged.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                let mut acknowledged = Vec::new();
                for _ in 0..10_000 {
                    let id = uuid::Uuid::now_v7();
                    let mut event = started("2025-01-05");
                    event["id"] = json!(id);
                    let response = agent
                        .post(format!("{url}/streams/trip:w{w}/events"))
                        .header("Content-Type", "application/json")
                        .send(event.to_string());
                    match response {
                        Ok(mut r) if r.status() == 201 => {
                            let body: Value = r.body_mut().read_json().unwrap();
                            acknowledged
                                .push((id, body["events"][0]["position"].as_u64().unwrap()));
                        }
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    server.shut_down();
    let acknowledged: Vec<(uuid::Uuid, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acknowledged.len() > 10, "the writers got going");

    // `run_with` returned: the store is closed and opens again at once.
    let store = SledStore::open(&db).unwrap();
    for (id, position) in &acknowledged {
        let event = store
            .get(chronicle::model::Position(*position))
            .unwrap()
            .expect("an acknowledged append is in the log");
        assert_eq!(&event.id, id);
    }
}

#[test]
fn stats_as_of_a_position_count_the_log_up_to_it_with_and_without_a_server() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let stats = |args: &[&str]| -> Value { serde_json::from_str(&c.run(args).ok()).unwrap() };
    let now = stats(&["--json", "stats"]);
    let then = stats(&["--json", "stats", "--as-of", "20"]);
    assert_eq!(
        (then["as_of"].as_u64(), then["events"].as_u64()),
        (Some(20), Some(20))
    );
    assert_eq!(then["head"]["position"], 20);
    let counted: u64 = then["per_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[1].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 20);
    assert!(
        then["streams"].as_u64() < now["streams"].as_u64(),
        "{then} {now}"
    );
    assert!(then.get("checkpoints").is_none() && now.get("checkpoints").is_some());
    let at_time = stats(&[
        "--json",
        "stats",
        "--as-of",
        then["head"]["recorded"].as_str().unwrap(),
    ]);
    assert_eq!(
        at_time["events"], now["events"],
        "the demo records its events within one instant or a few"
    );
    let table = c.run(&["stats", "--as-of", "20"]).ok();
    assert!(table.contains("as of:        position 20"), "{table}");
    c.run(&["stats", "--as-of", "999"])
        .fails(2, "past the end of the log");
    c.run(&["stats", "--as-of", "2025-01-04"])
        .fails(2, "chronicle timeline --known-at 2025-01-04");
    // The same through a server.
    let serve = Serve::start(&c, &[]);
    let remote = stats(&["--server", &serve.url, "--json", "stats", "--as-of", "20"]);
    for field in ["as_of", "events", "streams", "per_type", "head"] {
        assert_eq!(remote[field], then[field], "{field}");
    }
    // It names the server's store as the server, not this folder's default.
    let table = c.run(&["--server", &serve.url, "stats"]).ok();
    assert!(
        table.contains("store:        the server at http://127.0.0.1:"),
        "{table}"
    );
    c.run(&["--server", &serve.url, "stats", "--as-of", "999"])
        .fails(2, "past the end of the log");
    assert_eq!(serve.terminate(), 0);
}

/// A store named with `--db` beside a server must be the one the server holds: a write
/// meant for another store is refused, not put in the server's.
#[test]
fn a_store_given_beside_a_server_must_be_the_one_it_serves() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let serve = Serve::start(&c, &[]);
    let other = c.dir.path().join("other.db");
    let note = [
        "append",
        "--stream",
        "note:x",
        "--type",
        "note.reported",
        "--occurred",
        "2025",
        "--data",
        r#"{"entities": ["country:JP"], "summary": "meant for other.db"}"#,
    ];
    let with_server = |db: &Path, url: &str, args: &[&str]| {
        let mut command = common::command_at(db, args);
        command.env("CHRONICLE_SERVER", url);
        common::Run::from_output(command.output().unwrap())
    };
    with_server(&other, &serve.url, &note)
        .fails(2, "is not the store of the server at http://127.0.0.1:");
    common::run_at(&other, &[&["--server", &serve.url][..], &note].concat())
        .fails(2, "(no server holds it); leave out --db");
    assert!(!other.exists(), "nothing was created");
    // The server's own store, by the address it gave or by `localhost`, is taken.
    let local = serve.url.replace("127.0.0.1", "localhost");
    let stats = with_server(&c.db(), &format!("{local}/"), &["--json", "stats"]).ok();
    assert!(
        stats.contains("\"events\":43"),
        "nothing was appended: {stats}"
    );
    // A `.server.json` naming the server, left in a store no process holds (as a server
    // killed with -9 leaves it), does not make that store the server's.
    common::run_at(&other, &note).ok();
    let announced = std::fs::read(c.dir.path().join("store.server.json")).unwrap();
    std::fs::write(c.dir.path().join("other.db.server.json"), announced).unwrap();
    with_server(&other, &serve.url, &note).fails(2, "(no server holds it)");
    assert_eq!(
        common::run_at(&other, &["--json", "log"])
            .ok()
            .lines()
            .count(),
        1
    );
    // CHRONICLE_DB, a setting, gives way to the server named (43 events, not 1).
    let mut command = std::process::Command::new(common::bin());
    command
        .args(["--server", &serve.url, "--json", "stats"])
        .env("CHRONICLE_DB", &other)
        .env_remove("CHRONICLE_SERVER");
    let stats = common::Run::from_output(command.output().unwrap()).ok();
    assert!(stats.contains("\"events\":43"), "{stats}");
    // Another loopback address (Linux answers on all of 127.0.0.0/8) at the same port
    // is not this server, which listens on 127.0.0.1 alone: another could listen there.
    let elsewhere = serve.url.replace("127.0.0.1", "127.0.0.2");
    with_server(&c.db(), &elsewhere, &["--json", "stats"])
        .fails(2, "is not the store of the server at http://127.0.0.2:");
    assert_eq!(serve.terminate(), 0);
    // A server listening on every address announces 127.0.0.1: another address of this
    // machine reaches that server, and the store given is its own.
    let mut command = c.command(&["serve", "--addr", "0.0.0.0:0"]);
    command.env("CHRONICLE_TOKEN", "token-of-this-test");
    let everywhere = Serve::spawn(command, &c.dir.path().join("store.server.json"));
    assert!(
        everywhere.url.starts_with("http://127.0.0.1:"),
        "{}",
        everywhere.url
    );
    let other_name = everywhere.url.replace("127.0.0.1", "127.0.0.2");
    let stats = with_server(&c.db(), &other_name, &["--json", "stats"]).ok();
    assert!(stats.contains("\"events\":43"), "{stats}");
    with_server(&other, &other_name, &note).fails(2, "is not the store of the server at");
    assert_eq!(everywhere.terminate(), 0);
}

#[test]
fn a_method_an_endpoint_does_not_take_is_a_405_that_points_the_way() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Server::start(&c.db(), Config::default());
    let (status, body) = server.get("/streams/trip:blinken-final-tour-2025/events");
    assert_eq!(status, 405);
    assert_eq!(
        body["error"],
        "/streams/trip:blinken-final-tour-2025/events does not take GET; to read the stream's events, GET /streams/trip:blinken-final-tour-2025; GET /openapi.json lists the endpoints and their methods"
    );
    let (status, body) = server.get("/streams/trip:blinken-final-tour-2025");
    assert_eq!(status, 200, "{body}");
}

/// Asks for an entity as of a position before it: a 404 naming `entity` that says it
/// comes later.
fn comes_later(server: &Server, path: &str, says: &str) {
    let (status, body) = server.get(path);
    assert_eq!((status, &body["field"]), (404, &json!("entity")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with(says), "{body}");
}

#[test]
fn views_answer_at_the_head_and_as_of_a_position() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Server::start(&c.db(), Config::default());

    let (status, trips) = server.get("/trips");
    assert_eq!(status, 200);
    assert_eq!(trips["as_of"], 43);
    assert_eq!(trips["trips"][0]["stream"], "trip:blinken-final-tour-2025");
    assert_eq!(trips["names"]["person:antony-blinken"], "Antony Blinken");
    let (_, trip) = server.get("/trips/trip:blinken-final-tour-2025?as_of=20");
    assert_eq!(trip["as_of"], 20);
    assert_eq!(trip["trip"]["version"], 2);
    let (status, nowhere) = server.get("/trips/trip:nowhere");
    assert_eq!(status, 404, "{nowhere}");
    assert_eq!(nowhere["field"], "stream", "{nowhere}");
    let (status, early) = server.get("/trips/trip:blinken-final-tour-2025?as_of=3");
    assert_eq!(status, 404, "{early}");
    assert!(
        early["error"]
            .as_str()
            .unwrap()
            .contains("had no events yet at position 3: its first is at position 19; ask as of that position or later"),
        "{early}"
    );
    let (status, typo) = server.get("/timeline?type=trip.arived");
    assert_eq!(status, 400, "{typo}");
    assert!(
        typo.to_string().contains("did you mean `trip.arrived`?"),
        "{typo}"
    );
    // An append that names an entity by its alias, or by an id with a typo, is refused
    // with the id meant, as on the command line.
    for (place, says) in [
        (
            "Seoul",
            "`Seoul` is not an entity id: it names place:seoul; give that id",
        ),
        (
            "place:seol",
            "entity `place:seol` is not registered: did you mean `place:seoul`?",
        ),
    ] {
        let arrival = json!({"stream": "trip:blinken-final-tour-2025", "type": "trip.arrived",
            "occurred": "2025-01-06", "data": {"place": place}});
        let (status, body) = server.post("/events", &arrival, None);
        assert_eq!(
            (status, &body["field"]),
            (422, &json!("data.place")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().starts_with(says),
            "{body}"
        );
    }
    // An entity as of a position before its registration: said to come later.
    let early =
        "`place:seoul` was not registered yet at position 5: its registration is at position 10";
    comes_later(&server, "/entities/Seoul?as_of=5", early);
    // So in a timeline.
    comes_later(&server, "/timeline?entity=Seoul&as_of=5", early);
    // A trip by its traveler's name, as on the command line.
    let (status, by_name) = server.get("/trips/the%20US%20Secretary%20of%20State?as_of=20");
    assert_eq!(status, 200, "{by_name}");
    assert_eq!(by_name["trip"]["stream"], "trip:blinken-final-tour-2025");
    // A name that is no trip's, and a traveler with no trip: the same field as above.
    for text in ["Nobody", "country:FR"] {
        let (status, body) = server.get(&format!("/trips/{text}"));
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["field"], "stream", "{body}");
    }
    // Past the end of the log, and names of no entity: nothing to answer about (404).
    assert_eq!(server.get("/trips?as_of=999").0, 404);
    assert_eq!(server.get("/stats?as_of=999").0, 404);

    let (_, entity) = server.get("/entities/the%20us%20secretary%20of%20state");
    assert_eq!(entity["entity"]["id"], "person:antony-blinken");
    let (status, nobody) = server.get("/entities/nobody");
    assert_eq!(status, 404);
    // The advice names the API's own route, and no field is sent as null.
    assert!(
        nobody["error"]
            .as_str()
            .unwrap()
            .contains("`GET /entities`"),
        "{nobody}"
    );
    assert!(
        nobody.as_object().unwrap().values().all(|v| !v.is_null()),
        "{nobody}"
    );
    let (_, entities) = server.get("/entities");
    assert!(entities["entities"].as_array().unwrap().len() > 10);

    let (_, timeline) = server.get("/timeline?entity=Blinken&limit=2");
    assert_eq!(timeline["entries"].as_array().unwrap().len(), 2);
    // A city: the facts at the trip's stop there, which name it by its country.
    let (status, seoul) = server.get("/timeline?entity=Seoul");
    assert_eq!(status, 200, "{seoul}");
    let types: Vec<&str> = seoul["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["trip.announced", "trip.agenda_item_added"],
        "{seoul}"
    );
    assert_eq!(server.get("/timeline?entity=Nobody%20Known").0, 404);
    // An id no entity has is a 404 too; an empty parameter is a bad request.
    let (status, typo) = server.get("/timeline?entity=person:antony-blinkn");
    assert_eq!(status, 404, "{typo}");
    assert!(typo.to_string().contains("no entity has the id"), "{typo}");
    let (status, empty) = server.get("/timeline?entity=");
    assert_eq!(status, 400, "{empty}");
    assert!(empty.to_string().contains("`entity` is empty"), "{empty}");
    // A tag no event could have (events' tags are 1 to 64 characters) is no filter.
    for tag in ["", "%20", &"t".repeat(65)] {
        let (status, refused) = server.get(&format!("/timeline?tag={tag}"));
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused
                .to_string()
                .contains("`tag`: a tag is 1 to 64 characters"),
            "{refused}"
        );
    }
    // A tag matches in any case, and without white space at its ends.
    let tagged = |tag: &str| server.get(&format!("/timeline?tag={tag}")).1["entries"].clone();
    let indo = tagged("indo-pacific");
    assert!(!indo.as_array().unwrap().is_empty(), "{indo}");
    assert_eq!(tagged("%20Indo-Pacific%20"), indo);
    // A long value is quoted short.
    let (status, long) = server.get(&format!("/timeline?entity={}", "a".repeat(20_000)));
    assert_eq!(status, 404);
    assert!(long.to_string().len() < 1_000, "{}", long.to_string().len());
    let (status, nobody) = server.get("/sales?seller=Nobody");
    assert_eq!(status, 404);
    assert!(
        nobody.to_string().contains("seller"),
        "names the parameter: {nobody}"
    );

    let (_, sales) = server.get("/sales?buyer=Japan");
    assert_eq!(sales["sales"][0]["buyer"], "country:JP");
    assert_eq!(sales["by_buyer"][0]["currency"], "USD");
    assert_eq!(sales["names"]["country:JP"], "Japan");
    let (_, before) = server.get("/sales?as_of=2");
    assert_eq!(before["sales"], json!([]));

    let (_, stats) = server.get("/stats");
    assert_eq!(stats["events"], 43);
    assert!(stats["checkpoints"].as_array().unwrap().len() >= 4);
    let (_, past) = server.get("/stats?as_of=10");
    assert_eq!(past["events"], 10);
    assert_eq!(past["head"]["position"], 10);
    let (_, ten) = server.get("/events?from=10&limit=1");
    assert_eq!(past["head"]["hash"], ten["events"][0]["hash"]);
    let recorded = ten["events"][0]["recorded"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    assert_eq!(
        server.get(&format!("/trips?as_of={recorded}")).1["as_of"],
        43
    );
    // Retracted facts only on request, marked with why.
    let (status, _) = server.post(
        "/events",
        &json!({"stream": "trip:blinken-final-tour-2025", "type": "event.retracted",
            "data": {"target": "01942100-0000-7000-8000-000002000004", "reason": "not in the article"}}),
        None,
    );
    assert_eq!(status, 201);
    let (_, trip) =
        server.get("/trips/trip:blinken-final-tour-2025?include_retracted=true&min_position=44");
    assert_eq!(trip["retracted"][0]["retracted"], "not in the article");
    let (_, trip) = server.get("/trips/trip:blinken-final-tour-2025?min_position=44");
    assert_eq!(trip.get("retracted"), None);
    let (_, all) =
        server.get("/timeline?stream=trip:blinken-final-tour-2025&include_retracted=true");
    let (_, current) = server.get("/timeline?stream=trip:blinken-final-tour-2025");
    assert_eq!(
        all["entries"].as_array().unwrap().len(),
        current["entries"].as_array().unwrap().len() + 1
    );
    assert_eq!(server.get("/timeline?include_retracted=yes").0, 400);
    assert_eq!(server.get("/sales?include_retracted=true").0, 200);
    // The reported clock: nothing of the article was published before 2025-01-04.
    let (status, early) = server.get("/timeline?known_at=2025-01-03");
    assert_eq!(status, 200, "{early}");
    assert_eq!(early["entries"], json!([]));
    let (_, known) = server.get("/timeline?known_at=2025-01-04&as_of=43");
    let (_, then) = server.get("/timeline?as_of=43");
    assert_eq!(known["entries"], then["entries"]);
    assert_eq!(server.get("/trips?known_at=someday").0, 400);
    let (status, approximate) = server.get("/trips?known_at=2025-01-04~");
    assert_eq!(status, 400);
    assert!(
        approximate["error"]
            .as_str()
            .unwrap()
            .contains("without the ~, like 2025-01-04"),
        "{approximate}"
    );
    // An amendment is no timeline entry: asking for its type is refused, with where it
    // shows; a source added to a fact shows among the fact's evidence.
    let (status, refused) = server.get("/timeline?type=event.retracted");
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("event.retracted is an amendment, not a timeline entry"),
        "{refused}"
    );
    assert_eq!(server.get("/timeline?type=entity.registered").0, 400);
    let (status, _) = server.post(
        "/streams/arms-sale:us-japan-2025-01/events",
        &json!({"type": "evidence.added", "data": {"target": "01942100-0000-7000-8000-000003000001",
            "source": {"publisher": "Second Wire", "published": "2025-01-05"}}}),
        None,
    );
    assert_eq!(status, 201);
    let (_, sale) = server.get(
        "/timeline?stream=arms-sale:us-japan-2025-01&type=arms_sale.announced&min_position=45",
    );
    assert_eq!(sale["entries"][0]["sources"], 2, "{sale}");
    assert_eq!(
        sale["entries"][0]["evidence"][0]["publisher"], "Second Wire",
        "{sale}"
    );
    // A stop's city as of before the trip planned it: said to come later.
    let osaka = json!({"stream": "trip:blinken-final-tour-2025", "type": "trip.stop_added",
        "occurred": "2025-01-09", "data": {"place": "country:JP", "city": "Osaka"}});
    assert_eq!(server.post("/events", &osaka, None).0, 201);
    comes_later(
        &server,
        "/timeline?entity=Osaka&as_of=5",
        "`Osaka` was not yet the city of a trip's stop at position 5 (it is now, as place:osaka)",
    );
}

#[test]
fn the_openapi_document_describes_every_route() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    let (status, doc) = server.get("/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/openapi.json", "get"),
        ("/events", "get"),
        ("/events", "post"),
        ("/events/live", "get"),
        ("/streams/{stream}", "get"),
        ("/streams/{stream}/events", "post"),
        ("/trips", "get"),
        ("/trips/{stream}", "get"),
        ("/timeline", "get"),
        ("/entities", "get"),
        ("/entities/{entity}", "get"),
        ("/sales", "get"),
        ("/stats", "get"),
        ("/types", "get"),
        ("/types/{name}", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    assert_eq!(
        paths.len(),
        16,
        "a path is described that the server does not have"
    );
    // Every `$ref` points at something.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} points at nothing");
    }
}

/// The event schemas are the type definitions: one per type, with its data's fields,
/// and each type's example is a write the demo store accepts.
#[test]
fn the_openapi_event_schemas_follow_the_type_definitions() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Server::start(&c.db(), Config::default());
    let (_, doc) = server.get("/openapi.json");
    let schemas = &doc["components"]["schemas"];
    let one_of = schemas["Event"]["oneOf"].as_array().unwrap();
    assert_eq!(one_of.len(), chronicle::model::EventType::ALL.len());
    for def in chronicle::model::fields::definitions() {
        let name = def.event_type.as_str();
        let event = &schemas[format!("Event.{name}")];
        assert_eq!(event["properties"]["type"]["enum"], json!([name]));
        let data = &schemas[format!("Data.{name}")];
        let mut required: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        required.sort_unstable();
        let mut documented: Vec<&str> = data["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        documented.sort_unstable();
        assert_eq!(documented, required, "{name}");
        for field in def.fields {
            assert!(
                data["properties"][field.name].is_object(),
                "{name}: {} is not documented",
                field.name
            );
        }
        assert_eq!(data["additionalProperties"], false, "{name}");
        let (status, body) = server.post("/events", &event["example"], None);
        assert_eq!(status, 201, "{name}: {body}");
        // `GET /types/{name}` gives what `chronicle types show` does, from the same table.
        let (status, body) = server.get(&format!("/types/{name}"));
        assert_eq!(status, 200, "{name}: {body}");
        let described = &body["type"];
        assert_eq!(described["name"], name);
        assert_eq!(described["fields"], json!(def.field_docs()), "{name}");
        assert_eq!(
            described["template"],
            serde_json::from_str::<Value>(&def.template_line()).unwrap()
        );
    }
    let (status, body) = server.get("/types");
    assert_eq!(status, 200);
    let listed: Vec<&str> = body["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let all: Vec<&str> = chronicle::model::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(listed, all);
    let (status, body) = server.get("/types/trip.teleported");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("GET /types"));
    let (status, body) = server.get("/types/trip.arived");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `trip.arrived`?"),
        "{body}"
    );
    let (status, _) = server.get("/types?x=1");
    assert_eq!(status, 400);
}

#[test]
fn the_cli_works_through_a_running_server_and_sigterm_exits_0() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let local = |args: &[&str]| c.run(args).ok();
    let trip_list = local(&["trip", "list"]);
    let trip_show = local(&[
        "trip",
        "show",
        "trip:blinken-final-tour-2025",
        "--as-of",
        "30",
    ]);
    let timeline = local(&["timeline", "--entity", "Blinken", "--format", "timelinejs"]);
    let entity = local(&["entity", "show", "Blinken"]);
    let sales = local(&["sales", "--buyer", "Japan"]);
    let sales_json = local(&["--json", "sales"]);
    let log = local(&["log", "--from", "40"]);
    // Why nothing was shown, server or not.
    let empty_logs: [&[&str]; 3] = [
        &["log", "--from", "999"],
        &["log", "--stream", "trip:no-such-trip"],
        &["log", "--category", "trips"],
    ];
    let notes: Vec<String> = empty_logs
        .iter()
        .map(|args| {
            let run = c.run(args);
            let note = run.stderr.clone();
            assert_eq!(run.ok(), "");
            note
        })
        .collect();
    // A timeline of a stream the log does not hold says so; one with nothing dated
    // there, not.
    let no_stream = c.run(&["timeline", "--stream", "trip:no-such-trip"]);
    assert_eq!(no_stream.code, 0);
    assert!(no_stream.stdout.starts_with("No timeline entries match"));
    assert!(
        no_stream
            .stderr
            .starts_with("note: the log holds no stream `trip:no-such-trip`"),
        "{}",
        no_stream.stderr
    );
    // With the trip it most likely meant.
    let typo = c.run(&["timeline", "--stream", "trip:blinken-final-tour-2052"]);
    assert!(
        typo.stderr.starts_with("note: the log holds no stream `trip:blinken-final-tour-2052`; did you mean `trip:blinken-final-tour-2025`?"),
        "{}",
        typo.stderr
    );
    // A time to come as --as-of answers as of the head, and says so once.
    let to_come = ["timeline", "--as-of", "2999-01-01T00:00:00Z"];
    let future = c.run(&to_come);
    assert_eq!(
        future.stderr,
        "note: --as-of 2999-01-01T00:00:00Z is later than now, so the answer is as of the log's last event; a date of the news is --known-at's\n"
    );
    assert_eq!(
        (future.code, &future.stdout),
        (0, &c.run(&["timeline"]).ok())
    );
    // A time before the first event answers as of the empty log, and says so.
    let past = c.run(&["trip", "show", "Blinken", "--as-of", "2001-01-01T00:00:00Z"]);
    let first = c.log()[0]["recorded"].as_str().unwrap().to_owned();
    assert!(
        past.stderr.starts_with(&format!(
            "note: --as-of 2001-01-01T00:00:00Z is before the log's first event (recorded {first}), so the answer is as of position 0, the empty log\n"
        )),
        "{}",
        past.stderr
    );
    assert_eq!(
        past.stderr.matches("before the log's first event").count(),
        1
    );
    assert_eq!(past.code, 2, "{}", past.stderr);
    // So does one of a category the log holds no stream of.
    let no_category = c.run(&["timeline", "--category", "trips"]);
    assert!(
        no_category
            .stderr
            .starts_with("note: the log holds no stream of category `trips`"),
        "{}",
        no_category.stderr
    );
    // Not one whose streams have nothing in the window.
    let later = c.run(&["timeline", "--category", "trip", "--from", "2099"]);
    assert_eq!((later.stderr.as_str(), later.code), ("", 0));
    let nothing_dated = c.run(&[
        "timeline",
        "--stream",
        "trip:blinken-final-tour-2025",
        "--type",
        "trip.completed",
    ]);
    assert_eq!(nothing_dated.stderr, "");
    // A trip asked about as of before its first event: not "no trip".
    let too_early = |args: &[&str]| {
        c.run(args)
            .fails(
                2,
                "`trip:blinken-final-tour-2025` had no events yet at position 5: its first is at position 19",
            )
            .stderr
    };
    let early = too_early(&[
        "trip",
        "show",
        "trip:blinken-final-tour-2025",
        "--as-of",
        "5",
    ]);
    assert!(
        early.contains("ask as of that position or later"),
        "{early}"
    );
    assert!(
        notes[0].starts_with("note: the log ends at position"),
        "{}",
        notes[0]
    );
    assert!(
        notes[1].starts_with("note: the log holds no stream"),
        "{}",
        notes[1]
    );
    assert!(
        notes[2].starts_with("note: the log holds no stream of category `trips`"),
        "{}",
        notes[2]
    );
    // A mistake in --as-of or --known-at is told in the CLI's words, server or not.
    let mistakes: [&[&str]; 12] = [
        &["sales", "--buyer", "Mars"],
        &["trip", "show", "blinken-final-tour-2052"],
        &["entity", "show", "Mars"],
        &["timeline", "--as-of", "2025-01-04"],
        &["sales", "--as-of", "2025-01-04"],
        &["trip", "list", "--as-of", "2025-01-04"],
        &["entity", "show", "Blinken", "--as-of", "2025-01-04"],
        &["timeline", "--known-at", "soon"],
        &["timeline", "--as-of", "999"],
        &["stats", "--as-of", "999"],
        &["entity", "show", " "],
        &["timeline", "--entity", " "],
    ];
    let mistaken = |args: &[&str]| {
        let run = c.run(args).fails(2, "");
        assert!(
            !run.stderr.contains("as_of") && !run.stderr.contains("known_at"),
            "{}",
            run.stderr
        );
        run.stderr
    };
    let told: Vec<String> = mistakes.iter().map(|args| mistaken(args)).collect();
    assert!(
        told[0].starts_with("error: --buyer: no entity"),
        "{}",
        told[0]
    );
    assert!(
        told[1].contains("(did you mean `trip:blinken-final-tour-2025`?)"),
        "{}",
        told[1]
    );
    assert!(told[3].contains("use --known-at 2025-01-04"), "{}", told[3]);
    assert!(
        told[10].starts_with("error: no entity is named by a blank text"),
        "{}",
        told[10]
    );
    c.run(&["timeline", "--type", "trip.landed"]).fails(
        2,
        "unknown event type `trip.landed`; `chronicle types` lists them",
    );
    c.run(&["log", "--type", "trip.arived"]).fails(
        2,
        "--type: unknown event type `trip.arived`; did you mean `trip.arrived`?",
    );
    c.run(&["timeline", "--type", "event.corrected"]).fails(
        2,
        "--type: event.corrected is an amendment, not a timeline entry",
    );

    let serve = Serve::start(&c, &[]);
    for (args, before) in mistakes.iter().zip(&told) {
        assert_eq!(&mistaken(args), before, "{args:?} through the server");
    }
    // The API answers at the server's root: a path in --server is refused, not sent.
    c.run(&["--server", &format!("{}/api", serve.url), "trip", "list"])
        .fails(
            2,
            "give the server's URL as http://HOST:PORT, with no path after it",
        );
    c.run(&["--server", "https://127.0.0.1:1", "trip", "list"])
        .fails(
            2,
            "--server `https://127.0.0.1:1`: the CLI speaks plain http only",
        );
    // Every query prints what it printed without the server.
    assert_eq!(local(&["trip", "list"]), trip_list);
    assert_eq!(
        local(&[
            "trip",
            "show",
            "trip:blinken-final-tour-2025",
            "--as-of",
            "30"
        ]),
        trip_show
    );
    assert_eq!(
        local(&["timeline", "--entity", "Blinken", "--format", "timelinejs"]),
        timeline
    );
    assert_eq!(local(&["entity", "show", "Blinken"]), entity);
    assert_eq!(local(&["sales", "--buyer", "Japan"]), sales);
    assert_eq!(local(&["--json", "sales"]), sales_json);
    assert_eq!(local(&["log", "--from", "40"]), log);
    for (args, note) in empty_logs.iter().zip(&notes) {
        let run = c.run(args);
        assert_eq!(&run.stderr, note, "{args:?} through the server");
        assert_eq!(run.ok(), "");
    }
    let remote_no_stream = c.run(&["timeline", "--stream", "trip:no-such-trip"]);
    assert_eq!(remote_no_stream.stderr, no_stream.stderr);
    assert_eq!(remote_no_stream.ok(), no_stream.stdout);
    let remote_typo = c.run(&["timeline", "--stream", "trip:blinken-final-tour-2052"]);
    assert_eq!(remote_typo.stderr, typo.stderr);
    assert_eq!(remote_typo.ok(), typo.stdout);
    let remote_future = c.run(&to_come);
    assert_eq!(remote_future.stderr, future.stderr);
    assert_eq!(remote_future.ok(), future.stdout);
    let remote_past = c.run(&["trip", "show", "Blinken", "--as-of", "2001-01-01T00:00:00Z"]);
    assert_eq!(
        (remote_past.code, &remote_past.stderr),
        (past.code, &past.stderr)
    );
    let remote_later = c.run(&["timeline", "--category", "trip", "--from", "2099"]);
    assert_eq!((remote_later.stderr.as_str(), remote_later.code), ("", 0));
    let remote_no_category = c.run(&["timeline", "--category", "trips"]);
    assert_eq!(remote_no_category.stderr, no_category.stderr);
    assert_eq!(remote_no_category.ok(), no_category.stdout);
    too_early(&[
        "trip",
        "show",
        "trip:blinken-final-tour-2025",
        "--as-of",
        "5",
    ]);
    assert!(local(&["stats"]).contains("events:       43"));

    // Appends go through the server, with the CLI's messages and exit codes.
    let out = c
        .run(&[
            "append",
            "--stream",
            "trip:blinken-final-tour-2025",
            "--type",
            "trip.arrived",
            "--occurred",
            "2025-01-06",
            "--data",
            r#"{"place": "country:KR"}"#,
            "--expect",
            "9",
        ])
        .ok();
    assert!(out.contains("appended 1 event"), "{out}");
    assert!(
        out.contains("44        trip:blinken-final-tour-2025  10"),
        "{out}"
    );
    c.run(&[
        "append",
        "--stream",
        "trip:blinken-final-tour-2025",
        "--type",
        "trip.departed",
        "--occurred",
        "2025-01-07",
        "--data",
        r#"{"place": "country:KR"}"#,
        "--expect",
        "9",
    ])
    .fails(3, "is at version 10, but the append expected version 9");
    let bad = c.file(
        "bad.jsonl",
        &format!("{}\n{}\n", trip_started("trip:x"), json!({"stream": "trip:x", "type": "trip.arrived", "occurred": "2025", "data": {"place": "person:nobody"}})),
    );
    c.run(&["append", "--file", common::path_str(&bad)])
        .fails(2, "line 2");
    assert!(
        local(&["trip", "list"]).contains("underway"),
        "the arrival shows"
    );
    assert!(local(&["log", "--from", "44"]).contains("trip.arrived"));
    // What cannot go through the API says to stop the server.
    c.run(&["replay"]).fails(5, "stop the server");
    // A backup needs no downtime: the export goes through the API, and restores.
    let backup = c.dir.path().join("hot.jsonl");
    c.run(&["export", "--out", common::path_str(&backup)]).ok();
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        c.run(&["--json", "log"]).ok()
    );
    assert_eq!(c.run(&["export"]).ok(), c.run(&["--json", "log"]).ok());
    let restored = Chronicle::new();
    restored.run(&["import", common::path_str(&backup)]).ok();
    restored.run(&["verify"]).ok();
    // An explicit --server, too.
    let out = c
        .run(&["--server", &serve.url, "--json", "log", "--from", "44"])
        .ok();
    assert_eq!(out.lines().count(), 1);

    assert_eq!(serve.terminate(), 0, "SIGTERM stops the server cleanly");
    assert!(
        !c.dir.path().join("store.server.json").exists(),
        "the server file is removed"
    );
    // The store is free again and holds the append made through the server.
    assert!(local(&["log", "--from", "44"]).contains("trip.arrived"));
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let c = Chronicle::new();
    c.run(&["serve", "--addr", "0.0.0.0:0"])
        .fails(2, "without a token");
    assert!(!c.db().exists(), "nothing was created");
    c.run(&["serve", "--addr", "127.0.0.1:0", "--token", ""])
        .fails(2, "--token (or CHRONICLE_TOKEN) is empty");
    // A blank token would let no one write; one with spaces could not be sent back.
    c.run(&["serve", "--addr", "0.0.0.0:0", "--token", " "])
        .fails(2, "--token (or CHRONICLE_TOKEN) is empty or blank");
    c.run(&["serve", "--addr", "127.0.0.1:0", "--token", "two words"])
        .fails(2, "--token (or CHRONICLE_TOKEN) must be visible ASCII");
    // An empty CHRONICLE_TOKEN, as `CHRONICLE_TOKEN=${TOKEN:-}` sets it, is no token:
    // refused on a public address as none is, not as an empty one.
    let mut command = c.command(&["serve", "--addr", "0.0.0.0:0"]);
    command.env("CHRONICLE_TOKEN", "");
    common::Run::from_output(command.output().unwrap()).fails(2, "without a token");
    assert!(!c.db().exists(), "nothing was created");
    assert!(c.run(&["serve", "--help"]).ok().contains("Examples:"));
}

#[test]
fn log_follow_carries_on_while_a_server_comes_and_goes() {
    let c = Chronicle::new();
    c.append(&[trip_started("trip:t")]).ok();
    let mut follower = c
        .command(&["--json", "log", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(next_line().contains("trip:t"));

    // A server takes the store (the follower lets go between polls); the follower
    // carries on through it.
    let serve = Serve::start(&c, &[]);
    c.append(&[trip_started("trip:served")]).ok();
    assert!(next_line().contains("trip:served"));
    assert_eq!(serve.terminate(), 0);
    // And on the store again once the server is gone.
    c.append(&[trip_started("trip:after")]).ok();
    assert!(next_line().contains("trip:after"));
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert!(lines.try_recv().is_err(), "no event was printed twice");
}

/// Read-your-writes: a query reflects at least the head as of the request, or the
/// `min_position` it names; past a bounded wait it answers 503 with `Retry-After`.
#[test]
fn queries_reflect_the_writes_before_them_or_say_when_they_cannot() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    for i in 0..20 {
        let (status, body) = server.post(
            &format!("/streams/trip:t{i}/events"),
            &started("2025-01-05"),
            None,
        );
        assert_eq!(status, 201, "{body}");
        let position = body["events"][0]["position"].as_u64().unwrap();
        // Right after the append, with no min_position: the head as of the request.
        let (status, trips) = server.get("/trips");
        assert_eq!(status, 200, "{trips}");
        assert!(trips["as_of"].as_u64().unwrap() >= position, "{trips}");
        assert_eq!(trips["trips"].as_array().unwrap().len(), i + 1);
        let (status, trip) = server.get(&format!("/trips/trip:t{i}?min_position={position}"));
        assert_eq!(status, 200, "{trip}");
    }
    // Past the end of the log: no append returned it, so it is refused at once rather
    // than waited for (which would hold a thread of the blocking pool for 5 s each).
    let started_at = Instant::now();
    let (status, body) = server.get("/timeline?min_position=1000");
    assert_eq!(status, 404, "{body}");
    assert!(started_at.elapsed() < Duration::from_secs(2));
    assert_eq!(server.get("/timeline?min_position=-1").0, 400);
}

/// Views that lag behind the log past the wait are a 503 with `Retry-After`.
#[test]
fn views_that_lag_past_the_wait_answer_503() {
    let (_dir, db) = new_store();
    let config = Config {
        views_wait: Duration::ZERO,
        ..Config::default()
    };
    let server = Server::start(&db, config);
    // A large append, then at once a read that must reflect it: with no wait, the
    // projector folding 500 events is seen behind at least once.
    for round in 0..50 {
        let batch: Vec<Value> = (0..500)
            .map(|i| {
                let mut e = started("2025-01-05");
                e["stream"] = json!(format!("trip:r{round}-{i}"));
                e
            })
            .collect();
        let (status, body) = server.post("/events", &json!(batch), None);
        assert_eq!(status, 201, "{body}");
        let last = body["events"][499]["position"].as_u64().unwrap();
        let response = server
            .agent
            .get(format!("{}/trips?min_position={last}", server.url))
            .call()
            .unwrap();
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
            let (_, body) = read(Ok(response));
            assert_eq!(body["wanted"], last, "{body}");
            assert!(body["reflects"].as_u64().unwrap() < last, "{body}");
            // A command through the server asks again while the views make progress,
            // as one on the store itself waits for them, rather than failing.
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
                .args(["--server", &server.url, "--json", "trip", "list"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{stderr}");
            let trips: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(trips.as_array().unwrap().len(), 500 * (round + 1));
            return;
        }
        assert_eq!(response.status(), 200);
    }
    panic!("the views never lagged behind a 500-event append");
}

/// Checks `value` against a schema of the OpenAPI document `doc`, with the keywords the
/// document uses: `$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `type`, `nullable`, `enum`,
/// `required`, `properties`, `additionalProperties: false`, `items`, `minItems`,
/// `maxItems`, `minimum`, `maximum`, `minLength`. (`pattern` and `format` are left to
/// the fuzz run, `.ci/fuzz-api`.) The error names the first mismatch by its path.
fn conforms(doc: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let fail = |why: String| Err(format!("{path}: {why}"));
    if let Some(Value::String(r)) = schema.get("$ref") {
        let target = doc
            .pointer(r.strip_prefix('#').unwrap())
            .unwrap_or_else(|| panic!("{r} points at nothing"));
        return conforms(doc, target, value, path);
    }
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(doc, s, value, path)?;
        }
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|s| conforms(doc, s, value, path).is_ok())
    {
        return fail(format!("fits none of anyOf: {value}"));
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let fits = one
            .iter()
            .filter(|s| conforms(doc, s, value, path).is_ok())
            .count();
        if fits != 1 {
            return fail(format!("fits {fits} of oneOf, not 1: {value}"));
        }
    }
    if let Some(not) = schema.get("not")
        && conforms(doc, not, value, path).is_ok()
    {
        return fail(format!("fits what `not` excludes: {value}"));
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("type {other} is not checked"),
        };
        if !ok {
            return fail(format!("expected {t}, found {value}"));
        }
    }
    if let Some(choices) = schema["enum"].as_array()
        && !choices.contains(value)
    {
        return fail(format!("{value} is not one of {choices:?}"));
    }
    if let Some(n) = schema["minimum"].as_f64()
        && value.as_f64().is_some_and(|v| v < n)
    {
        return fail(format!("{value} is below {n}"));
    }
    if let Some(n) = schema["maximum"].as_f64()
        && value.as_f64().is_some_and(|v| v > n)
    {
        return fail(format!("{value} is above {n}"));
    }
    if let (Some(n), Some(s)) = (schema["minLength"].as_u64(), value.as_str())
        && (s.chars().count() as u64) < n
    {
        return fail(format!("{value} is shorter than {n}"));
    }
    if let Value::Object(fields) = value {
        for name in schema["required"].as_array().into_iter().flatten() {
            if !fields.contains_key(name.as_str().unwrap()) {
                return fail(format!("`{name}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (k, v) in fields {
            match properties.and_then(|p| p.get(k)) {
                Some(s) => conforms(doc, s, v, &format!("{path}.{k}"))?,
                None if schema["additionalProperties"] == false => {
                    return fail(format!("`{k}` is not described"));
                }
                None => {}
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(n) = schema["minItems"].as_u64()
            && (items.len() as u64) < n
        {
            return fail(format!("fewer than {n} items"));
        }
        if let Some(n) = schema["maxItems"].as_u64()
            && (items.len() as u64) > n
        {
            return fail(format!("more than {n} items"));
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, s, item, &format!("{path}[{i}]"))?;
            }
        }
    }
    Ok(())
}

/// The contract: every endpoint's live answers (successes and errors) fit what the
/// OpenAPI document says of that path, method and status.
#[test]
fn every_endpoint_answers_as_its_openapi_document_says() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Server::start(&c.db(), Config::default());
    let (_, doc) = server.get("/openapi.json");
    // Wherever the server listens, the document names it: relative to where it is read.
    assert_eq!(doc["servers"][0]["url"], "/");
    let mut covered = std::collections::BTreeSet::new();
    let mut check =
        |method: &str, template: &str, path: &str, body: Option<&Value>, expected: u16| {
            let (status, answer) = match body {
                Some(body) => server.post(path, body, None),
                None => server.get(path),
            };
            assert_eq!(status, expected, "{method} {path}: {answer}");
            let schema = doc["paths"][template][method]["responses"][status.to_string()]["content"]
                ["application/json"]["schema"]
                .clone();
            assert!(
                schema.is_object(),
                "{method} {template} does not describe {status}"
            );
            if let Err(e) = conforms(&doc, &schema, &answer, "answer") {
                panic!("{method} {path} ({status}) differs from the document: {e}");
            }
            covered.insert((method.to_owned(), template.to_owned()));
        };
    let trip = "trip:blinken-final-tour-2025";
    // Amend first, so that the answers carry corrections and retractions.
    let correction = json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
        "data": {"target": "01942100-0000-7000-8000-000003000001", "reason": "a later report", "data": {"value": {"amount": 3_500_000_000_u64}}}});
    check("post", "/events", "/events", Some(&correction), 201);
    let retraction = json!({"type": "event.retracted",
        "data": {"target": "01942100-0000-7000-8000-000002000004", "reason": "not in the article"}});
    check(
        "post",
        "/streams/{stream}/events",
        &format!("/streams/{trip}/events"),
        Some(&retraction),
        201,
    );
    // A trip's fact and an entity's registration corrected: both views list corrections.
    for (stream, target, data) in [
        (
            trip,
            "01942100-0000-7000-8000-000002000001",
            json!({"title": "Blinken's last tour"}),
        ),
        (
            "person:antony-blinken",
            "01942100-0000-7000-8000-000001000001",
            json!({"description": "Secretary of State"}),
        ),
    ] {
        let fix = json!({"stream": stream, "type": "event.corrected",
            "data": {"target": target, "reason": "a later report", "data": data}});
        check("post", "/events", "/events", Some(&fix), 201);
    }
    let conflict = json!({"stream": trip, "type": "trip.started", "occurred": "2025-01-05", "data": {}, "expect": 1});
    check("post", "/events", "/events", Some(&conflict), 409);
    let invalid = json!({"stream": trip, "type": "trip.started", "data": {}});
    check("post", "/events", "/events", Some(&invalid), 422);
    check("get", "/healthz", "/healthz", None, 200);
    check("get", "/openapi.json", "/openapi.json", None, 200);
    check("get", "/events", "/events?limit=50", None, 200);
    check("get", "/events", "/events?limit=0", None, 400);
    check(
        "get",
        "/streams/{stream}",
        &format!("/streams/{trip}"),
        None,
        200,
    );
    check(
        "get",
        "/streams/{stream}",
        "/streams/trip:nowhere",
        None,
        404,
    );
    check("get", "/trips", "/trips", None, 200);
    check("get", "/trips", "/trips?known_at=2025-01-04", None, 200);
    for path in [
        format!("/trips/{trip}"),
        format!("/trips/{trip}?include_retracted=true"),
        "/trips/Blinken?as_of=20".to_owned(),
    ] {
        check("get", "/trips/{stream}", &path, None, 200);
    }
    check("get", "/trips/{stream}", "/trips/Nobody", None, 404);
    for path in [
        "/timeline",
        "/timeline?include_retracted=true",
        "/timeline?entity=Japan&known_at=2025-01-04",
        "/timeline?type=arms_sale.announced",
    ] {
        check("get", "/timeline", path, None, 200);
    }
    check("get", "/timeline", "/timeline?from=someday", None, 400);
    check("get", "/entities", "/entities", None, 200);
    check("get", "/entities/{entity}", "/entities/Blinken", None, 200);
    let (_, blinken) = server.get("/entities/Blinken");
    assert_eq!(
        blinken["entity"]["corrections"][0]["reason"], "a later report",
        "{blinken}"
    );
    let (_, tour) = server.get(&format!("/trips/{trip}"));
    assert_eq!(
        tour["trip"]["corrections"][0]["reason"], "a later report",
        "{tour}"
    );
    check("get", "/entities/{entity}", "/entities/Nobody", None, 404);
    check("get", "/sales", "/sales", None, 200);
    check(
        "get",
        "/sales",
        "/sales?include_retracted=true&buyer=Japan",
        None,
        200,
    );
    check("get", "/stats", "/stats", None, 200);
    check("get", "/stats", "/stats?as_of=10", None, 200);
    check("get", "/types", "/types", None, 200);
    for t in chronicle::model::EventType::ALL {
        check("get", "/types/{name}", &format!("/types/{t}"), None, 200);
    }
    check("get", "/types/{name}", "/types/trip.teleported", None, 404);
    // The check itself refuses what does not fit.
    let entry = json!({"$ref": "#/components/schemas/TimelineEntry"});
    assert!(conforms(&doc, &entry, &json!({"position": "one"}), "x").is_err());
    let (_, timeline) = server.get("/timeline?limit=1");
    let mut wrong = timeline["entries"][0].clone();
    assert!(conforms(&doc, &entry, &wrong, "x").is_ok());
    wrong["changes"] = json!([{"field": "x"}]);
    assert!(conforms(&doc, &entry, &wrong, "x").is_err());
    let summary = json!({"$ref": "#/components/schemas/TypeSummary"});
    let (_, types) = server.get("/types");
    let mut extra = types["types"][0].clone();
    extra["zzz"] = json!(1);
    assert!(conforms(&doc, &summary, &extra, "x").is_err());
    // Every path and method of the document was called, but the live feed and the
    // metrics, whose answers are not JSON (`live_events_…` and `metrics_…` cover them).
    let mut described = std::collections::BTreeSet::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            if path != "/events/live" && path != "/metrics" {
                described.insert((method.clone(), path.clone()));
            }
        }
    }
    assert_eq!(covered, described);
}

/// `GET /metrics` counts what the server did (appends, refusals, commits and their
/// latency, requests by route and status, the projector's lag), and the server logs one
/// line per request and per commit; `RUST_LOG` picks the levels.
#[test]
fn metrics_count_appends_commits_and_requests_and_the_log_has_a_line_for_each() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Serve::start(&c, &[]);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let post = |body: Value| {
        agent
            .post(format!("{}/events", server.url))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap()
            .status()
            .as_u16()
    };
    for i in 0..3 {
        assert_eq!(post(trip_started(&format!("trip:m{i}"))), 201);
    }
    // A failed `expect`: refused by the log's rules.
    let mut conflict = trip_started("trip:m0");
    conflict["expect"] = json!(7);
    assert_eq!(post(conflict), 409);
    // A read waits for the views to reach the head, so the lag is 0 after it (the
    // projector may let a few events settle while nobody reads).
    let stats = agent.get(format!("{}/stats", server.url)).call().unwrap();
    assert_eq!(stats.status().as_u16(), 200);
    let mut response = agent.get(format!("{}/metrics", server.url)).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.body_mut().read_to_string().unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no `{line_start}` in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("chronicle_appends_total "), 3.0);
    assert_eq!(value("chronicle_appends_refused_total "), 1.0);
    assert_eq!(value("chronicle_events_appended_total "), 3.0);
    let commits = value("chronicle_commits_total ");
    assert!((1.0..=3.0).contains(&commits), "{commits} commits");
    assert_eq!(value("chronicle_commit_seconds_count "), commits);
    assert_eq!(value("chronicle_log_head_position "), 46.0);
    assert_eq!(value("chronicle_log_up "), 1.0);
    assert_eq!(value("chronicle_projector_lag_events "), 0.0);
    assert_eq!(value("chronicle_live_subscribers "), 0.0);
    assert_eq!(
        value(r#"chronicle_http_requests_total{method="POST",route="/events",status="201"}"#),
        3.0
    );
    assert_eq!(
        value(r#"chronicle_http_requests_total{method="POST",route="/events",status="409"}"#),
        1.0
    );
    assert!(
        text.contains(r#"chronicle_http_request_seconds_count{method="POST",route="/events"} 4"#)
    );
    assert!(text.trim_end().ends_with("# EOF"));
    // The log: one line per request and per commit, on stderr; a request's line has its
    // query, so that a refusal about a parameter can be traced.
    let _ = ureq::get(format!("{}/timeline?limit=0", server.url)).call();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.stderr.lock().unwrap().clone();
        let requests = log
            .lines()
            .filter(|l| l.contains("chronicle::http") && l.contains("status=201"))
            .count();
        let commit_lines = log
            .lines()
            .filter(|l| l.contains("chronicle::commit"))
            .count();
        if requests == 3
            && commit_lines as f64 == commits
            && log.contains("client=127.0.0.1 method=GET path=/timeline?limit=0 status=400")
        {
            assert!(log.contains("path=/events"), "{log}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{requests} request lines, {commit_lines} commit lines:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    // A filter that is not one: exit 2 before anything starts.
    let run = c
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "chronicle=[")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("RUST_LOG"));
}

/// A hangup (the terminal that started the server closed, an ssh session ended) stops
/// the server as SIGTERM does: exit 0, the server file removed, the store free. A server
/// killed with -9 leaves its file, which the next command to open the store removes.
#[test]
fn sighup_stops_the_server_cleanly() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let serve = Serve::start(&c, &[]);
    c.append(&[common::person("hung-up")]).ok();
    assert_eq!(
        serve.stop_with("-HUP"),
        0,
        "SIGHUP stops the server cleanly"
    );
    assert!(!c.dir.path().join("store.server.json").exists());
    assert!(
        c.run(&["log", "--stream", "person:hung-up"])
            .ok()
            .contains("entity.registered")
    );
    // A server killed with -9 cannot remove its file; the next command that opens the
    // store (and so holds what a server would hold) does.
    let serve = Serve::start(&c, &[]);
    let file = c.dir.path().join("store.server.json");
    assert!(file.exists());
    assert_eq!(serve.stop_with("-KILL"), -1);
    assert!(file.exists(), "left behind by the killed server");
    c.run(&["stats"]).ok();
    assert!(!file.exists(), "removed by the next command");
}

/// `serve` on a folder that holds no store makes one, as a first write does, and its
/// first line says so: a mistyped `--db` would otherwise serve an empty log unnoticed.
#[test]
fn serve_says_when_it_made_a_new_store() {
    let c = Chronicle::new();
    let first_line = || {
        let mut child = c
            .command(&["serve", "--addr", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        line
    };
    let line = first_line();
    assert!(
        line.starts_with("chronicle serving a new, empty store at "),
        "{line}"
    );
    let line = first_line();
    assert!(
        line.starts_with("chronicle serving ") && !line.contains("new"),
        "{line}"
    );
}

/// Views rebuilt when the server starts (lost, or built by another version) are logged
/// at the start and at the end: queries wait or get 503s meanwhile, and the log says why.
#[test]
fn a_rebuild_of_the_views_is_logged() {
    let c = Chronicle::new();
    // More than a chunk of events, which views that lack them rebuild rather than fold.
    let events: Vec<Value> = (0..5000)
        .map(|i| trip_started(&format!("trip:t{}", i % 50)))
        .collect();
    c.append(&events).ok();
    for entry in std::fs::read_dir(c.db()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("views")
        {
            match path.is_dir() {
                true => std::fs::remove_dir_all(&path).unwrap(),
                false => std::fs::remove_file(&path).unwrap(),
            }
        }
    }
    let serve = Serve::start(&c, &[]);
    // Queries answer 503 while the rebuild outlasts their wait (a debug build's does).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match ureq::get(format!("{}/trips", serve.url)).call() {
            Ok(_) => break,
            Err(ureq::Error::StatusCode(503)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Once the views answer, /healthz says they reached the head.
    let (_, health) = read(ureq::get(format!("{}/healthz", serve.url)).call());
    assert_eq!(
        (&health["head"], &health["views"]),
        (&json!(5000), &json!(5000))
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = serve.stderr.lock().unwrap().clone();
        if log.contains("the views are rebuilt up to position 5000") {
            assert!(
                log.contains(
                    "the views lack 5000 events: rebuilding them from the log up to position 5000"
                ),
                "{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A timeline answer holds at most a page of entries; `next` is the `after` of the
/// page that follows, and the pages together are the whole timeline, for an entity's
/// too.
#[test]
fn a_long_timeline_comes_in_pages() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let server = Server::start(&c.db(), Config::default());
    // The whole timeline, an entity's listed entries, and a place's with its stops'.
    for filter in ["", "&entity=person:antony-blinken", "&entity=place:seoul"] {
        let (status, whole) = server.get(&format!("/timeline?include_retracted=true{filter}"));
        assert_eq!(status, 200, "{whole}");
        assert!(whole.get("next").is_none(), "{whole}");
        let whole = whole["entries"].as_array().unwrap().clone();
        assert!(whole.len() > 1, "{filter}: {}", whole.len());
        let mut paged = Vec::new();
        let mut after = String::new();
        loop {
            let (status, page) = server.get(&format!(
                "/timeline?include_retracted=true{filter}&limit=1{after}"
            ));
            assert_eq!(status, 200, "{page}");
            paged.extend(page["entries"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
        assert_eq!(paged, whole, "{filter}");
    }
    for bad in ["xyz", &"g".repeat(48), &"+f".repeat(24)] {
        let (status, body) = server.get(&format!("/timeline?after={bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("`after` must be the `next`")
        );
    }
    let (status, body) = server.get("/timeline?limit=10001");
    assert_eq!(status, 400, "{body}");
}

/// `chronicle timeline` through a server reads every page of a timeline longer than
/// one, as one answer.
#[test]
fn the_cli_reads_every_page_of_a_long_timeline() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    let total = 10_050;
    for first in (0..total).step_by(2_010) {
        let batch: Vec<Value> = (first..first + 2_010)
            .map(|i| json!({"stream": format!("conflict:c{i}"), "type": "note.reported",
                "occurred": "2025-01-05", "data": {"summary": format!("note {i}"), "entities": ["country:US"]}}))
            .collect();
        let (status, body) = server.post("/events", &json!(batch), None);
        assert_eq!(status, 201, "{body}");
    }
    let first = server.get_caught_up("/timeline");
    assert_eq!(first["entries"].as_array().unwrap().len(), 10_000);
    assert!(first["next"].is_string(), "a full page has `next`");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chronicle"))
            .args(["--server", &server.url, "--json", "timeline"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
        entries.as_array().unwrap().len()
    };
    assert_eq!(cli(&[]), total);
    assert_eq!(cli(&["--limit", "10010"]), 10_010);
    assert_eq!(cli(&["--limit", "7"]), 7);
}

/// Pages asked for as of the position the first page reflected make one answer while a
/// writer moves entries around the timeline: every full read holds each dated fact
/// exactly once, in timeline order.
#[test]
fn pages_as_of_one_position_make_one_answer_under_writes() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    const NOTES: u64 = 1_500;
    let id = |i: u64| format!("01942100-0000-7000-8000-{i:012x}");
    let day = |d: u64| format!("2025-01-{:02}", d % 28 + 1);
    let notes: Vec<Value> = (0..NOTES)
        .map(|i| json!({"id": id(i), "stream": format!("conflict:c{i}"), "type": "note.reported",
            "occurred": day(i), "data": {"summary": format!("note {i}"), "entities": ["country:US"]}}))
        .collect();
    let (status, body) = server.post("/events", &json!(notes), None);
    assert_eq!(status, 201, "{body}");
    let stop = std::sync::atomic::AtomicBool::new(false);
    /// Stops the writer however the reads end: a failed assertion too.
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        let stopping = StopOnDrop(&stop);
        let writer = scope.spawn(|| {
            // Each correction moves a note to another day: out of one page into another.
            let (mut tries, mut corrections) = (0u64, 0u64);
            let mut rng = 0x2545_f491_4f6c_dd1d_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = rng % NOTES;
                tries += 1;
                let correction = json!({"stream": format!("conflict:c{i}"), "type": "event.corrected",
                    "data": {"target": id(i), "occurred": day(i + tries), "reason": "moved"}});
                match server.post("/events", &correction, None) {
                    (201, _) => corrections += 1,
                    // The day the note has already is refused as changing nothing.
                    (422, body) if body.to_string().contains("changes nothing") => {}
                    (status, body) => panic!("{status}: {body}"),
                }
                // Other tests share the machine: a writer, not a flood.
                std::thread::sleep(Duration::from_millis(2));
            }
            corrections
        });
        for read in 0..40 {
            let first = server.get_caught_up("/timeline?limit=100");
            let at = first["as_of"].as_u64().expect("a page says its position");
            let (mut ids, mut days) = (Vec::new(), Vec::new());
            let mut after = String::new();
            loop {
                let (status, page) = server.get(&format!("/timeline?limit=100&as_of={at}{after}"));
                assert_eq!(status, 200, "{page}");
                assert_eq!(page["as_of"], at, "{page}");
                for entry in page["entries"].as_array().unwrap() {
                    ids.push(entry["id"].as_str().unwrap().to_owned());
                    days.push(entry["occurred"].as_str().unwrap().to_owned());
                }
                match page["next"].as_str() {
                    Some(next) => after = format!("&after={next}"),
                    None => break,
                }
            }
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                (ids.len(), unique.len()),
                (NOTES as usize, NOTES as usize),
                "read {read} as of {at}: every note once"
            );
            assert!(
                days.is_sorted(),
                "read {read} as of {at}: in timeline order"
            );
        }
        drop(stopping);
        let corrections = writer.join().unwrap();
        assert!(corrections > 40, "the writer kept writing: {corrections}");
    });
}

/// Odd but harmless input is read as meant; malformed input is a 400 that says so.
#[test]
fn odd_input_is_read_as_meant_or_refused_with_a_400() {
    let (_dir, db) = new_store();
    let server = Server::start(&db, Config::default());
    let post = |body: Vec<u8>, if_match: Option<&str>| {
        let mut request = server
            .agent
            .post(format!("{}/streams/trip:t/events", server.url))
            .header("Content-Type", "application/json");
        if let Some(value) = if_match {
            request = request.header("If-Match", value);
        }
        read(request.send(body))
    };
    // A byte order mark before the JSON, as some editors write it.
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend(started("2025-01-05").to_string().into_bytes());
    let (status, answer) = post(body, None);
    assert_eq!(status, 201, "{answer}");
    // An entity tag, quoted, is the version.
    let event = || started("2025-01-06").to_string().into_bytes();
    assert_eq!(post(event(), Some("\"1\"")).0, 201);
    // A time zone's `+` left unescaped arrives as a space: every date parameter says so.
    for query in [
        "as_of=2026-12-07T11:23:56+00:00",
        "from=2025-01-01T00:00:00+02:00",
        "to=2025-01-01T00:00:00+02:00",
        "known_at=2025-01-01T00:00:00+02:00",
    ] {
        let (status, answer) = server.get(&format!("/timeline?{query}"));
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.ends_with("write the + of a time zone as %2B"),
            "{query}: {error}"
        );
    }
    // A query value that is not UTF-8 once decoded.
    let (status, answer) = server.get("/timeline?entity=%C3%28");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("`entity` is not UTF-8"),
        "{answer}"
    );
    // A long unknown type gets no suggestion, and no time spent finding one.
    let (status, answer) = server.get(&format!("/timeline?type={}", "x".repeat(5000)));
    assert_eq!(status, 400, "{answer}");
    assert!(
        !answer["error"].as_str().unwrap().contains("did you mean"),
        "{answer}"
    );
}

/// A correction's marks name the entities it changed, in the timeline's table and in
/// its TimelineJS export, the same locally and through a server; a name two entities
/// share comes with its id once.
#[test]
fn correction_marks_name_the_entities_a_correction_changed_with_or_without_a_server() {
    let c = Chronicle::new();
    let named = |slug: &str, name: &str| {
        json!({"stream": format!("person:{slug}"), "type": "entity.registered",
               "data": {"name": name, "aliases": []}})
    };
    c.append(&[
        named("ali-1", "Mohamed Ali"),
        named("ali-2", "Mohamed Ali"),
        named("lena", "Lena Vogt"),
    ])
    .ok();
    c.append(&[
        json!({"stream": "trip:t", "type": "trip.announced", "occurred": "2025-02-01",
               "data": {"traveler": "person:ali-1", "stops": [{"place": "country:JP"}]}}),
        json!({"stream": "trip:u", "type": "trip.announced", "occurred": "2025-02-02",
               "data": {"traveler": "person:lena", "stops": [{"place": "country:FR"}]}}),
    ])
    .ok();
    let log = c.log();
    let fix = |n: usize, traveler: &str| {
        json!({"stream": log[n]["stream"], "type": "event.corrected",
               "data": {"target": log[n]["id"], "reason": "misreported", "data": {"traveler": traveler}}})
    };
    c.append(&[fix(3, "person:ali-2"), fix(4, "person:ali-1")])
        .ok();
    let table = c.run(&["timeline"]).ok();
    let shared = "traveler: Mohamed Ali (person:ali-1) → Mohamed Ali (person:ali-2)]";
    let other = "traveler: Lena Vogt (person:lena) → Mohamed Ali (person:ali-1)]";
    for mark in [shared, other] {
        assert!(table.contains(mark), "{table}");
    }
    let export = c.run(&["timeline", "--format", "timelinejs"]).ok();
    assert!(
        export.contains("traveler: Lena Vogt (person:lena) → Mohamed Ali (person:ali-1)."),
        "{export}"
    );
    let serve = Serve::start(&c, &[]);
    assert_eq!(c.run(&["--server", &serve.url, "timeline"]).ok(), table);
    let remote = ["--server", &serve.url, "timeline", "--format", "timelinejs"];
    assert_eq!(c.run(&remote).ok(), export);
    // An entity's own corrected facts: what its name and country were before.
    c.append(&[json!({"stream": "person:lena", "type": "event.corrected",
                      "data": {"target": log[2]["id"], "reason": "misspelled",
                               "data": {"name": "Lena Voigt", "country": "country:DE"}}})])
        .ok();
    let shown = c
        .run(&["--server", &serve.url, "entity", "show", "person:lena"])
        .ok();
    assert_eq!(serve.terminate(), 0);
    for line in [
        "    - entity.registered: misspelled",
        "        country: (none) → Germany (country:DE)",
        "        name: Lena Vogt → Lena Voigt",
    ] {
        assert!(shown.contains(line), "{shown}");
    }
    assert_eq!(c.run(&["entity", "show", "person:lena"]).ok(), shown);
    let json = c.run(&["entity", "show", "person:lena", "--json"]).ok();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["corrections"][0]["changes"][1]["after"], "Lena Voigt");
}
