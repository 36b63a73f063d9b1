//! The commands and `chronicle serve` on a PostgreSQL log (`--db postgres://…`): every
//! command through the real binary, a sled export restored into PostgreSQL and back,
//! and two servers on one database, each with views of its own, reading each other's
//! writes and following them live.
//!
//! Each test makes a fresh database on the server `CHRONICLE_TEST_PG` names; without
//! it the tests print one line and pass, and with `CHRONICLE_REQUIRE_PG=1` they fail.

mod common;

use common::pg::{Pg, chronicle, serve};
use common::sse::SseReader;
use common::{Run, Serve, bin, person, trip_started};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(url: &str, views: &Path, args: &[&str]) -> Run {
    Run::from_output(
        chronicle(url, views, args)
            .output()
            .expect("the binary runs"),
    )
}

/// `append` of a `trip.started` event from flags.
fn append_started(stream: &str) -> [&str; 9] {
    [
        "append",
        "--stream",
        stream,
        "--type",
        "trip.started",
        "--occurred",
        "2025-01-05",
        "--data",
        "{}",
    ]
}

/// The binary on a sled store.
fn run_sled(db: &Path, args: &[&str]) -> Run {
    let output = Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CHRONICLE_DB")
        .env_remove("CHRONICLE_VIEWS")
        .env_remove("CHRONICLE_SERVER")
        .output()
        .expect("the binary runs");
    Run::from_output(output)
}

/// A temp dir by its canonical path (the server file is written beside the canonical
/// views folder).
fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn get(server: &Serve, path: &str) -> (u16, Value) {
    let mut response = agent()
        .get(format!("{}{path}", server.url))
        .call()
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn post(server: &Serve, path: &str, body: &Value) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{path}", server.url))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

/// Appends one trip event to `stream` through `server`; returns its position.
fn append_trip(server: &Serve, stream: &str) -> u64 {
    let (status, body) = post(
        server,
        &format!("/streams/{stream}/events"),
        &json!({"type": "trip.started", "occurred": "2025-01-05", "data": {}}),
    );
    assert_eq!(status, 201, "{body}");
    body["events"][0]["position"].as_u64().unwrap()
}

/// The next `n` live events: their positions, checked against their data.
fn next_positions(live: &mut SseReader, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let event = live.next().expect("the live feed goes on");
            assert_eq!(event.event, None, "{}", event.data);
            let data: Value = serde_json::from_str(&event.data).unwrap();
            let id: u64 = event.id.expect("an id").parse().unwrap();
            assert_eq!(data["position"].as_u64(), Some(id));
            id
        })
        .collect()
}

/// Two servers on one database, each with its own views: appends on either are read on
/// the other with `min_position` (and with none: the head as of the request), and the
/// live feed of one delivers every event appended on the other, in order, resuming
/// after `Last-Event-ID`.
#[test]
fn two_servers_on_one_log_read_each_others_writes_and_follow_them_live() {
    let Some(pg) = Pg::fresh() else { return };
    let (_dir, root) = temp();
    let a = serve(&pg.url, &root.join("views-a"));
    let b = serve(&pg.url, &root.join("views-b"));
    let mut live = SseReader::open(&format!("{}/events/live?from=1", b.url), None);
    let mut positions = Vec::new();
    for i in 0..12 {
        let (writer, reader) = if i % 3 == 2 { (&b, &a) } else { (&a, &b) };
        let stream = format!("trip:t{i}");
        let position = append_trip(writer, &stream);
        positions.push(position);
        let (status, trip) = get(reader, &format!("/trips/{stream}?min_position={position}"));
        assert_eq!(status, 200, "{trip}");
        assert!(trip["as_of"].as_u64().unwrap() >= position, "{trip}");
        // No min_position: the head as of the request, which another server moved.
        let (status, trips) = get(reader, "/trips");
        assert_eq!(status, 200, "{trips}");
        assert_eq!(trips["trips"].as_array().unwrap().len(), i + 1, "{trips}");
    }
    assert_eq!(positions, (1..=12).collect::<Vec<u64>>());
    assert_eq!(next_positions(&mut live, 12), positions);
    // Resume after the 9th event: the 10th on, then what is appended later, once each.
    drop(live);
    let mut resumed = SseReader::open(&format!("{}/events/live", b.url), Some(9));
    assert_eq!(next_positions(&mut resumed, 3), vec![10, 11, 12]);
    let later = append_trip(&a, "trip:later");
    assert_eq!(next_positions(&mut resumed, 1), vec![later]);
    // Both logs' views agree, and say what they reflect.
    for server in [&a, &b] {
        let (status, timeline) = get(server, &format!("/timeline?min_position={later}"));
        assert_eq!(status, 200, "{timeline}");
        assert_eq!(
            timeline["entries"].as_array().unwrap().len(),
            13,
            "{timeline}"
        );
    }
    // The operator's view: the views' position and the read pool.
    let (status, metrics) = get(&b, "/metrics");
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    for name in [
        "chronicle_views_position 13",
        "chronicle_log_head_position 13",
        "chronicle_pg_pool_connections ",
        "chronicle_pg_pool_connections_in_use ",
        "chronicle_pg_pool_connections_max 4",
    ] {
        assert!(metrics.contains(name), "/metrics lacks `{name}`: {metrics}");
    }
    // A command given a server's views folder works through that server's API.
    let listed = run(&pg.url, &root.join("views-a"), &["--json", "trip", "list"]).ok();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 13, "{listed}");
    // One that cannot work through the API is told whose the folder is and what to do.
    run(&pg.url, &root.join("views-a"), &["replay"])
        .fails(5, "the views folder")
        .fails(5, "pass --views with another folder");
    for server in [a, b] {
        let stderr = server.stderr.clone();
        let code = server.terminate();
        assert_eq!(code, 0, "{}", stderr.lock().unwrap());
    }
}

/// Every command on `--db postgres://…`: append, import, the views (with `--as-of` and
/// `--known-at`), log, stats, verify, replay, export; `recover` says it is for sled.
#[test]
fn every_command_works_on_a_postgres_log() {
    let Some(pg) = Pg::fresh() else { return };
    let (_dir, root) = temp();
    let views = root.join("views");
    let demo = run(&pg.url, &views, &["demo"]).ok();
    assert!(demo.contains("== The trip =="), "{demo}");
    let no_views = root.join("no-views");
    let appended = run(&pg.url, &no_views, &append_started("trip:cli")).ok();
    assert!(appended.contains("appended 1 event"), "{appended}");
    assert!(
        !no_views.exists(),
        "a command that shows no views makes no views folder"
    );
    // Run again, the demo adds nothing; into a log it did not start, it is refused.
    run(&pg.url, &views, &["demo"]).ok();
    let other = Pg::fresh().expect("a second database on the same server");
    run(
        &other.url,
        &root.join("other"),
        &append_started("trip:other"),
    )
    .ok();
    run(&other.url, &root.join("other"), &["demo"]).fails(2, "that the demo did not write");
    let head = 44;
    let trip = run(
        &pg.url,
        &views,
        &["trip", "show", "trip:blinken-final-tour-2025"],
    )
    .ok();
    assert!(trip.contains("Seoul"), "{trip}");
    let trips: Value =
        serde_json::from_str(&run(&pg.url, &views, &["--json", "trip", "list"]).ok()).unwrap();
    assert_eq!(trips.as_array().unwrap().len(), 2, "{trips}");
    assert!(
        run(&pg.url, &views, &["entity", "show", "Blinken"])
            .ok()
            .contains("person:antony-blinken")
    );
    assert!(
        run(&pg.url, &views, &["sales", "--buyer", "Japan"])
            .ok()
            .contains("3.64")
    );
    let japan = run(&pg.url, &views, &["timeline", "--entity", "Japan"]).ok();
    assert!(japan.contains("arms-sale"), "{japan}");
    // As of the demo's last event, the timeline lacks the trip appended after it.
    let timeline = |args: &[&str]| -> Vec<Value> {
        let out = run(&pg.url, &views, &[&["--json", "timeline"], args].concat()).ok();
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let (now, early) = (timeline(&[]), timeline(&["--as-of", "43"]));
    assert_eq!(early.len() + 1, now.len(), "{early:?}");
    assert!(now.iter().any(|e| e["stream"] == "trip:cli"), "{now:?}");
    assert!(
        !early.iter().any(|e| e["stream"] == "trip:cli"),
        "{early:?}"
    );
    let known: Value = serde_json::from_str(
        &run(
            &pg.url,
            &views,
            &["--json", "timeline", "--known-at", "2024-01-01"],
        )
        .ok(),
    )
    .unwrap();
    assert_eq!(known.as_array().unwrap().len(), 0, "{known}");
    let log = run(&pg.url, &views, &["--json", "log"]).ok();
    assert_eq!(log.lines().count(), head);
    let stats: Value =
        serde_json::from_str(&run(&pg.url, &views, &["--json", "stats"]).ok()).unwrap();
    assert_eq!(stats["events"], head);
    assert!(
        stats["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["position"] == head),
        "{stats}"
    );
    let verified = run(&pg.url, &views, &["verify"]).ok();
    assert!(
        verified.contains(&format!("ok: {head} events verified")),
        "{verified}"
    );
    assert!(
        verified.contains("view documents equal to a fresh replay"),
        "{verified}"
    );
    run(&pg.url, &views, &["replay"]).ok();
    let out = root.join("export.jsonl");
    run(&pg.url, &views, &["export", "--out", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), log);
    // Appending a file of events, one of them bad: nothing is written (exit 2).
    let bad = root.join("bad.jsonl");
    let lines = [
        person("ann"),
        trip_started("trip:x"),
        json!({"stream": "trip:x"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&bad, text).unwrap();
    run(&pg.url, &views, &["import", bad.to_str().unwrap()]).fails(2, "line 3");
    assert_eq!(
        run(&pg.url, &views, &["--json", "log"])
            .ok()
            .lines()
            .count(),
        head
    );
    run(&pg.url, &views, &["recover"]).fails(2, "recovered with PostgreSQL's own tools");
    // A views folder that holds other files is refused, and left as it was.
    let elsewhere = root.join("papers");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("notes.txt"), "mine").unwrap();
    run(&pg.url, &elsewhere, &["trip", "list"]).fails(2, "a folder of other files");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1);
    // `log --follow` prints what another process appends.
    let mut follow = chronicle(
        &pg.url,
        &views,
        &["--json", "log", "--follow", "--from", "45"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let position = run(
        &pg.url,
        &views,
        &[
            "--json",
            "append",
            "--stream",
            "trip:cli",
            "--type",
            "trip.completed",
            "--occurred",
            "2025-01-09",
            "--data",
            "{}",
        ],
    )
    .ok();
    let position: Value = serde_json::from_str(&position).unwrap();
    assert_eq!(position["events"][0]["position"], 45);
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let _ = follow.kill();
    let _ = follow.wait();
    let line = line.expect("log --follow printed the new event within 20 s");
    let followed: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(followed["position"], 45, "{line}");
}

/// A sled store's export goes into PostgreSQL with `import` and comes back out
/// identical, and into a new sled store again: positions, times and hashes kept.
#[test]
fn a_sled_export_restores_into_postgres_and_back_through_the_command_line() {
    let Some(pg) = Pg::fresh() else { return };
    let (_dir, root) = temp();
    let sled = root.join("sled.db");
    run_sled(&sled, &["demo"]).ok();
    let from_sled = root.join("sled.jsonl");
    run_sled(&sled, &["export", "--out", from_sled.to_str().unwrap()]).ok();
    let views = root.join("views");
    run(&pg.url, &views, &["import", from_sled.to_str().unwrap()]).ok();
    let from_pg = root.join("pg.jsonl");
    run(
        &pg.url,
        &views,
        &["export", "--out", from_pg.to_str().unwrap()],
    )
    .ok();
    let sled_text = std::fs::read_to_string(&from_sled).unwrap();
    assert_eq!(sled_text.lines().count(), 43);
    assert_eq!(std::fs::read_to_string(&from_pg).unwrap(), sled_text);
    run(&pg.url, &views, &["verify"]).ok();
    let back = root.join("back.db");
    run_sled(&back, &["import", from_pg.to_str().unwrap()]).ok();
    let from_back = root.join("back.jsonl");
    run_sled(&back, &["export", "--out", from_back.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&from_back).unwrap(), sled_text);
    // Importing it again adds nothing.
    let again = run(
        &pg.url,
        &views,
        &["--json", "import", from_sled.to_str().unwrap()],
    )
    .ok();
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["new"], 0, "{again}");
}

/// A views folder holds the views of one log: pointed at another database, or at a
/// restore of the same export that went another way since, its views are dropped and
/// rebuilt from that log rather than shown.
#[test]
fn views_of_another_log_are_rebuilt_not_shown() {
    let (Some(first), Some(second)) = (Pg::fresh(), Pg::fresh()) else {
        return;
    };
    let (_dir, root) = temp();
    let views = root.join("views");
    let trips = |pg: &Pg| -> Vec<String> {
        let listed: Value =
            serde_json::from_str(&run(&pg.url, &views, &["--json", "trip", "list"]).ok()).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["stream"].as_str().unwrap().to_owned())
            .collect()
    };
    run(&first.url, &views, &["demo"]).ok();
    let tour = "trip:blinken-final-tour-2025";
    assert_eq!(trips(&first), [tour]);
    // The second database: another log altogether.
    run(&second.url, &views, &append_started("trip:other")).ok();
    assert_eq!(trips(&second), ["trip:other"]);
    run(&second.url, &views, &["verify"]).ok();
    assert_eq!(trips(&first), [tour]);
    // The second database made a restore of the first, then both go on differently:
    // the same 43 first events, another 44th.
    let export = root.join("first.jsonl");
    run(
        &first.url,
        &views,
        &["export", "--out", export.to_str().unwrap()],
    )
    .ok();
    let Some(restored) = Pg::fresh() else { return };
    run(&restored.url, &views, &["import", export.to_str().unwrap()]).ok();
    assert_eq!(trips(&restored), [tour]);
    run(&first.url, &views, &append_started("trip:a")).ok();
    run(&restored.url, &views, &append_started("trip:b")).ok();
    assert_eq!(trips(&first), ["trip:a", tour]);
    assert_eq!(trips(&restored), ["trip:b", tour]);
    run(&restored.url, &views, &["verify"]).ok();
}

/// Another writer's commit reaches a follower through `LISTEN`/`NOTIFY`, long before
/// its next poll of the head; and the head it publishes is the one read from the log.
#[test]
fn another_writers_commit_wakes_a_follower_at_once() {
    use chronicle::store::{EventStore, PgStore};
    let Some(pg) = Pg::fresh() else { return };
    let follower_side = PgStore::open(&pg.url).unwrap();
    let writer = PgStore::open(&pg.url).unwrap();
    let mut head = follower_side.subscribe();
    let _follower = follower_side.follow(Duration::from_secs(60)).unwrap();
    // The follower reads the head once as it starts, then waits on its notifications.
    std::thread::sleep(Duration::from_millis(500));
    let event = chronicle::model::parse_event(
        &trip_started("trip:far").to_string(),
        chronicle::model::Origin::New,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let appended = writer.append(vec![event]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            head.wait_for(|p| *p >= appended[0].position),
        )
        .await
        .expect("the follower saw the commit well before its 60 s poll")
        .unwrap();
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(*head.borrow(), writer.head().unwrap().position);
}

/// `verify` on a log that another server keeps appending to walks up to the head it
/// read first and compares the views there: it passes, each time.
#[test]
fn verify_passes_while_another_server_appends() {
    let Some(pg) = Pg::fresh() else { return };
    let (_dir, root) = temp();
    let server = serve(&pg.url, &root.join("server-views"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, stop) = (server.url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"type": "trip.started", "occurred": "2025-01-05", "data": {}});
                let response = agent()
                    .post(format!("{url}/streams/trip:w{n}/events"))
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
                    .unwrap();
                assert_eq!(response.status(), 201);
                n += 1;
            }
            n
        })
    };
    let views = root.join("verifier-views");
    for _ in 0..3 {
        let verified = run(&pg.url, &views, &["verify"]).ok();
        assert!(verified.contains("ok: "), "{verified}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let verified = run(&pg.url, &views, &["verify"]).ok();
    assert!(
        verified.contains("view documents equal to a fresh replay"),
        "{verified}"
    );
}

/// A database that does not exist is one line saying so (exit 1); a URL PostgreSQL's
/// client cannot read is exit 2; neither creates anything.
#[test]
fn a_missing_database_and_a_malformed_url_are_one_line_errors() {
    let Some(pg) = Pg::fresh() else { return };
    let (_dir, root) = temp();
    let views = root.join("views");
    let missing = pg.url.replace(&pg.name, "chronicle_no_such_database");
    run(&missing, &views, &["trip", "list"]).fails(1, "does not exist); create the database first");
    let malformed = "postgres://u@127.0.0.1:5432/db?sslmode=nonsense";
    run(malformed, &views, &["stats"]).fails(2, "not a PostgreSQL connection URL");
    assert!(!views.exists());
}

/// A PostgreSQL log whose last event was rewritten refuses to open for work (exit 4),
/// but `verify`, `log` and `export` open it to show what is wrong, as on sled: the
/// message of every other command sends the user to `verify`, which must then answer.
#[test]
fn a_broken_chain_end_on_postgres_can_be_inspected() {
    let Some(pg) = Pg::fresh() else { return };
    let work = tempfile::tempdir().unwrap();
    let views = work.path().join("views");
    for slug in ["a", "b", "c"] {
        let file = work.path().join(format!("{slug}.jsonl"));
        std::fs::write(&file, format!("{}\n", person(slug))).unwrap();
        run(
            &pg.url,
            &views,
            &["append", "--file", file.to_str().unwrap()],
        )
        .ok();
    }
    let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    client
        .execute(
            "UPDATE chronicle_events SET body = replace(body, '\"c\"', '\"C\"') WHERE position = 3",
            &[],
        )
        .unwrap();
    run(&pg.url, &views, &["stats"]).fails(4, "the hash chain is broken at position 3");
    run(&pg.url, &views, &["verify"]).fails(4, "position 3");
    let log = run(&pg.url, &views, &["--json", "log"]).ok();
    assert_eq!(log.lines().count(), 3, "{log}");
    let out = work.path().join("rescued.jsonl");
    run(&pg.url, &views, &["export", "--out", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), log);
}
