//! The event log through the real binary: append and its concurrency checks,
//! idempotency, atomic batches, import, log, export round trip, exit codes.

mod common;

use common::{Chronicle, path_str, person, trip_started};
use serde_json::{Value, json};

fn with(mut event: Value, key: &str, value: Value) -> Value {
    event[key] = value;
    event
}

#[test]
fn append_with_each_concurrency_mode() {
    let c = Chronicle::new();
    let t = "trip:t";
    // Most likely a mistyped name: not "retry with version 0", which would start it.
    let missing = c
        .append(&[with(trip_started(t), "expect", json!("exists"))])
        .fails(3, "is at version 0");
    assert!(
        missing.stderr.contains("check the stream's name")
            && missing
                .stderr
                .contains(r#"leave out "expect": "exists" on that line"#)
            && !missing.stderr.contains("expect\": 0"),
        "{}",
        missing.stderr
    );
    c.append(&[with(trip_started(t), "expect", json!("none"))])
        .ok();
    // A JSON line's conflict says to change the line: `--expect` is refused with `-`.
    let line = c
        .append(&[with(trip_started(t), "expect", json!("none"))])
        .fails(3, r#"stdin: line 1: stream `trip:t` is at version 1"#);
    assert!(
        line.stderr
            .contains(r#"set "expect": 1 on that line and retry"#)
            && !line.stderr.contains("--expect"),
        "{}",
        line.stderr
    );
    c.append(&[with(trip_started(t), "expect", json!("exists"))])
        .ok();
    c.append(&[with(trip_started(t), "expect", json!(2))]).ok();
    c.append(&[with(trip_started(t), "expect", json!(2))])
        .fails(3, "is at version 3, but the append expected version 2");
    c.append(&[with(trip_started(t), "expect", json!("any"))])
        .ok();
    // The flag form, too.
    c.run(&[
        "append",
        "--stream",
        t,
        "--type",
        "trip.started",
        "--occurred",
        "2025",
        "--expect",
        "1",
    ])
    .fails(3, "is at version 4, but the append expected version 1; nothing was written: read the stream and retry with --expect 4");
    let log = c.log();
    assert_eq!(log.len(), 4, "a mismatch writes nothing");
    let versions: Vec<u64> = log.iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}

/// An amount of 17 significant digits that a double holds comes back as written, in the
/// log and in a sale's value (serde_json's default parsing was one step off).
#[test]
fn an_amount_is_stored_as_the_nearest_double() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let data = r#"{"seller": "country:US", "buyer": "country:KR", "items": ["x"], "value": {"amount": 102151093291115.61, "currency": "USD"}}"#;
    c.run(&[
        "append",
        "--stream",
        "arms-sale:big",
        "--type",
        "arms_sale.announced",
        "--occurred",
        "2025-01-01",
        "--data",
        data,
    ])
    .ok();
    let log = c.run(&["log", "--json", "--stream", "arms-sale:big"]).ok();
    assert!(log.contains(r#""amount":102151093291115.61"#), "{log}");
    let sales = c.run(&["--json", "sales"]).ok();
    assert!(sales.contains("102151093291115.61"), "{sales}");
}

#[test]
fn retry_by_id_is_idempotent_and_other_content_is_refused() {
    let c = Chronicle::new();
    let id = "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70";
    let event = with(trip_started("trip:t"), "id", json!(id));
    let first = c.append(std::slice::from_ref(&event)).ok();
    assert!(first.contains("appended 1 event"), "{first}");
    // The retry carries an expectation that no longer holds: the id check comes first.
    let retry = c
        .append(&[with(event.clone(), "expect", json!("none"))])
        .ok();
    assert!(retry.contains("already present"), "{retry}");
    c.append(&[with(event.clone(), "occurred", json!("2025-01-06"))])
        .fails(2, "already in the log (position 1) with different content");
    // The event's own fields given empty are the same as left out; `data`'s are not.
    let empty = with(
        with(event.clone(), "tags", json!([])),
        "source",
        Value::Null,
    );
    assert!(c.append(&[empty]).ok().contains("already present"));
    let note = json!({"id": "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e71", "stream": "note:n",
        "type": "note.reported", "occurred": "2025-01-05", "data": {"summary": "s", "entities": []}});
    c.append(std::slice::from_ref(&note)).ok();
    let mut left_out = note.clone();
    left_out["data"].as_object_mut().unwrap().remove("entities");
    c.append(&[left_out])
        .fails(2, "field `data.entities`: `entities` is missing");
    let mut null = note;
    null["data"]["entities"] = Value::Null;
    c.append(&[null]).fails(2, "field `data.entities`");
    let zed = json!({"id": "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e72", "stream": "person:zed",
        "type": "entity.registered", "data": {"name": "Zed", "aliases": [], "country": null}});
    c.append(std::slice::from_ref(&zed)).ok();
    let mut no_country = zed;
    no_country["data"]
        .as_object_mut()
        .unwrap()
        .remove("country");
    c.append(&[no_country])
        .fails(2, "already in the log (position 3) with different content");
    assert_eq!(c.log().len(), 3);
}

#[test]
fn a_batch_that_fails_on_its_last_event_writes_nothing() {
    let c = Chronicle::new();
    // A store with one event, so that "nothing" is more than no store at all.
    c.append(&[person("z")]).ok();
    let bad_last = [
        person("a"),
        trip_started("trip:t"),
        json!({"stream": "trip:t", "type": "trip.arrived", "occurred": "2025-01-06", "data": {"place": "place:unregistered"}}),
    ];
    c.append(&bad_last).fails(
        2,
        "stdin: line 3: field `data.place`: entity `place:unregistered` is not registered",
    );
    let bad_date = [
        person("a"),
        with(trip_started("trip:t"), "occurred", json!("2025-02-30")),
    ];
    c.append(&bad_date).fails(2, "line 2: field `occurred`");
    let conflict = [
        person("a"),
        with(trip_started("trip:t"), "expect", json!(5)),
    ];
    c.append(&conflict).fails(3, "stdin: line 2");
    assert!(c.run(&["--json", "stats"]).ok().contains("\"events\":1"));
}

#[test]
fn entities_must_be_registered_first_even_within_one_append() {
    let c = Chronicle::new();
    let meeting = json!({"stream": "trip:t", "type": "trip.meeting_held", "occurred": "2025-01-06",
        "data": {"place": "country:KR", "with": ["person:a"]}});
    c.append(std::slice::from_ref(&meeting))
        .fails(2, "field `data.with[0]`");
    let stop = json!({"stream": "trip:t", "type": "trip.stop_added", "occurred": "2025-01-05",
        "data": {"place": "country:KR"}});
    c.append(&[person("a"), stop, meeting]).ok();
    c.append(&[person("a")]).fails(2, "already registered");
}

#[test]
fn a_statement_is_about_streams_the_log_holds_and_a_sale_has_two_parties() {
    let c = Chronicle::new();
    let about = |streams: Value| {
        json!({"stream": "statement:s", "type": "statement.issued", "occurred": "2025-01-06",
            "data": {"speaker": "country:CN", "stance": "opposes", "about": streams, "summary": "no"}})
    };
    c.append(&[about(json!(["country:JP", "trip:nope"]))]).fails(
        2,
        "field `data.about[1]`: the log holds no stream `trip:nope`; a statement is about entities and streams with events",
    );
    assert!(!c.db().exists(), "nothing written");
    // A stream that an earlier event of the same append opens, and the statement's own.
    let sale = json!({"id": SALE, "stream": "arms-sale:x", "type": "arms_sale.announced", "occurred": "2025-01-05",
        "data": {"seller": "country:US", "buyer": "country:JP", "value": {"amount": 1, "currency": "USD"}, "items": ["radars"]}});
    let said = with(
        about(json!(["arms-sale:x", "statement:s"])),
        "id",
        json!(STATEMENT),
    );
    c.append(&[sale, said]).ok();
    // A correction is held to the same rules for the fields it sets.
    let correct = |target: &str, stream: &str, data: Value| json!({"stream": stream, "type": "event.corrected", "data": {"target": target, "data": data, "reason": "fix"}});
    c.append(&[correct(
        STATEMENT,
        "statement:s",
        json!({"about": ["trip:nope"]}),
    )])
    .fails(
        2,
        "field `data.data.about[0]`: the log holds no stream `trip:nope`",
    );
    c.append(&[correct(SALE, "arms-sale:x", json!({"buyer": "country:US"}))])
        .fails(
            2,
            "field `data.data.buyer`: the buyer is the seller (`country:US`)",
        );
    c.append(&[correct(SALE, "arms-sale:x", json!({"items": []}))])
        .fails(2, "field `data.data.items`: name at least one item sold");
    c.append(&[correct(
        SALE,
        "arms-sale:x",
        json!({"items": ["radars", "training"]}),
    )])
    .ok();
}

const STATEMENT: &str = "0194210c-0000-7000-8000-00000000a002";
const SALE: &str = "0194210c-0000-7000-8000-00000000a001";

#[test]
fn import_twice_adds_nothing_and_reads_folders_in_name_order() {
    let c = Chronicle::new();
    c.file(
        "in/02-later.jsonl",
        &format!("{}\n", trip_started("trip:t")),
    );
    c.file(
        "in/01-first.jsonl",
        &format!(
            "// entities first\n\n{}\n",
            with(
                person("a"),
                "id",
                json!("0194210c-0000-7000-8000-000000000001")
            )
        ),
    );
    let folder = c.dir.path().join("in");
    let run = c.run(&["--json", "import", path_str(&folder)]);
    // The one event without an id would be added again by another import: said.
    assert!(
        run.stderr.contains(
            "note: 1 of these events had no `id`, so importing this input again would add it again"
        ),
        "{}",
        run.stderr
    );
    let first = run.ok();
    let summary: Value = serde_json::from_str(first.trim()).unwrap();
    assert_eq!(summary["new"], 2);
    assert_eq!(
        c.log()[0]["stream"],
        "person:a",
        "01-first.jsonl comes first"
    );
    // The trip event has no id, so it is a new event each time: give it one to be idempotent.
    let c = Chronicle::new();
    let file = c.file(
        "facts.jsonl",
        &format!(
            "{}\n{}\n",
            with(
                person("a"),
                "id",
                json!("0194210c-0000-7000-8000-000000000001")
            ),
            with(
                trip_started("trip:t"),
                "id",
                json!("0194210c-0000-7000-8000-000000000002")
            )
        ),
    );
    let run = c.run(&["import", path_str(&file)]);
    assert!(!run.stderr.contains("had no `id`"), "{}", run.stderr);
    run.ok();
    let again: Value =
        serde_json::from_str(c.run(&["--json", "import", path_str(&file)]).ok().trim()).unwrap();
    assert_eq!(
        (again["new"].as_u64(), again["already_present"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(c.log().len(), 2);
    // A registration without an id makes a re-run refused, not added again: said so.
    let file = c.file("more.jsonl", &format!("{}\n", person("b")));
    let run = c.run(&["import", path_str(&file)]);
    assert!(
        run.stderr.contains("note: 1 of these events had no `id`, 1 of them `entity.registered`, so importing this input again would be refused"),
        "{}",
        run.stderr
    );
    c.run(&["import", path_str(&file)])
        .fails(2, "is already registered");
}

#[test]
fn import_checks_everything_before_writing() {
    let c = Chronicle::new();
    let mut lines: Vec<String> = (0..2500)
        .map(|i| {
            with(
                trip_started(&format!("trip:t{i}")),
                "id",
                json!(format!("0194210c-0000-7000-8000-{i:012}")),
            )
            .to_string()
        })
        .collect();
    lines.push("{\"stream\": \"trip:x\", \"type\": \"trip.started\", \"data\": {}}".into());
    let file = c.file("big.jsonl", &(lines.join("\n") + "\n"));
    c.run(&["import", path_str(&file)])
        .fails(2, "big.jsonl: line 2501: field `occurred`");
    assert!(
        !c.db().exists(),
        "invalid input is found before the store is opened"
    );
    // A problem only the store can see (an unregistered entity) in the last batch also writes nothing.
    lines.pop();
    lines.push(json!({"stream": "trip:x", "type": "trip.arrived", "occurred": "2025", "data": {"place": "person:nobody"}}).to_string());
    let file = c.file("big.jsonl", &(lines.join("\n") + "\n"));
    c.run(&["import", "--batch", "1000", path_str(&file)])
        .fails(2, "big.jsonl: line 2501: field `data.place`");
    assert!(!c.db().exists(), "nothing was created");
    // Into an existing store, the same: the last batch's problem writes nothing.
    c.append(&[trip_started("trip:existing")]).ok();
    c.run(&["import", "--batch", "1000", path_str(&file)])
        .fails(2, "big.jsonl: line 2501: field `data.place`");
    assert!(c.run(&["--json", "stats"]).ok().contains("\"events\":1"));
}

/// Ctrl-C or SIGTERM while an import writes stops it at the end of a batch, and it
/// says how far it got and how to finish: run it again when every event has an id,
/// else import the rest from the line it names. Tried at growing sizes, and later
/// delays (on a loaded machine the first batch may come late), until a signal lands
/// while the batches are written.
#[test]
fn an_import_stopped_by_a_signal_says_how_far_it_got_and_how_to_finish() {
    for (signal, ids) in [(libc::SIGTERM, false), (libc::SIGINT, true)] {
        let mut stopped = false;
        // Too early (before the first batch) waits longer; too late (done) takes a
        // larger input: a loaded machine moves both.
        let (mut size, mut delay_ms) = (4_000usize, 100u64);
        let mut tried = Vec::new();
        for _ in 0..8 {
            tried.push(format!("{size} events, {delay_ms} ms"));
            let c = Chronicle::new();
            let lines: Vec<String> = (0..size)
                .map(|i| {
                    let event = trip_started(&format!("trip:t{i}"));
                    let event = match ids {
                        true => with(
                            event,
                            "id",
                            json!(format!("0194210c-0000-7000-8000-{i:012}")),
                        ),
                        false => event,
                    };
                    event.to_string() + "\n"
                })
                .collect();
            let file = c.file("big.jsonl", &lines.concat());
            let mut child = c
                .command(&["import", "--batch", "20", path_str(&file)])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the binary runs");
            // The store is made once the input is checked: the batches start then.
            while !c.db().join("db").exists() && child.try_wait().unwrap().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            unsafe { libc::kill(child.id() as i32, signal) };
            let output = child.wait_with_output().unwrap();
            // It says how far it got, then ends by the signal, as a shell expects.
            let by = std::os::unix::process::ExitStatusExt::signal(&output.status);
            let run = common::Run::from_output(output);
            if run.code == 0 {
                // It was done before the signal came: a larger input, up to 256,000
                // events (a starved test thread must not grow it to gigabytes).
                size = (size * 4).min(256_000);
                continue;
            }
            let message = run.stderr.trim();
            assert!(!message.contains("panicked"), "{message}");
            assert_eq!(by, Some(signal), "{message}");
            let head = c.log().len();
            assert_eq!(head % 20, 0, "whole batches: {head}");
            if head == 0 || !message.contains("interrupted") {
                delay_ms *= 3; // Before the first batch or the handler.
                continue;
            }
            if head == size {
                size = (size * 4).min(256_000); // In the views' catch-up after the last batch.
                continue;
            }
            stopped = true;
            assert!(
                message.starts_with(&format!(
                    "error: interrupted by {}: the import stopped with {head} of its {size} events in the log ({head} new), in whole batches (the log ends at position {head})",
                    if ids { "Ctrl-C (SIGINT)" } else { "SIGTERM" }
                )),
                "{message}"
            );
            let rest = if ids {
                assert!(message.ends_with("run the same import again to finish it: the events already in the log are skipped"), "{message}");
                file
            } else {
                let line = head + 1;
                assert!(
                    message.ends_with(&format!(
                        "import the rest, from {} line {line} on",
                        path_str(&file)
                    )),
                    "{message}"
                );
                c.file("rest.jsonl", &lines[head..].concat())
            };
            c.run(&["import", path_str(&rest)]).ok();
            let log = c.log();
            assert_eq!(log.len(), size, "the rest imported once");
            assert_eq!(log[size - 1]["stream"], format!("trip:t{}", size - 1));
            c.run(&["verify"]).ok();
            break;
        }
        assert!(
            stopped,
            "no signal came while the batches were written; tried {tried:?}"
        );
    }
}

/// A stop signal while an import checks its input ends it there, saying that nothing
/// was written (no store is made); tried with growing delays until one lands then.
#[test]
fn an_import_stopped_while_checking_says_nothing_was_written() {
    let lines: Vec<String> = (0..200_000)
        .map(|i| trip_started(&format!("trip:t{i}")).to_string() + "\n")
        .collect();
    let mut stopped = false;
    // Too early (before the handler) waits longer, too late (past the check) less.
    let (mut delay_ms, mut tried) = (150u64, Vec::new());
    for _ in 0..8 {
        let c = Chronicle::new();
        let file = c.file("big.jsonl", &lines.concat());
        let child = c
            .command(&["import", path_str(&file)])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let output = child.wait_with_output().unwrap();
        let by = std::os::unix::process::ExitStatusExt::signal(&output.status);
        let run = common::Run::from_output(output);
        tried.push(format!("{delay_ms} ms: {:?}", run.stderr.lines().next()));
        if !run.stderr.contains("while checking") {
            delay_ms = match run.code != 0 && run.stderr.trim().is_empty() {
                true => delay_ms * 2,      // Before the handler.
                false => delay_ms * 2 / 5, // After the check.
            };
            continue;
        }
        assert!(!c.db().join("db").exists(), "{}", run.stderr);
        assert_eq!(by, Some(libc::SIGINT), "{}", run.stderr);
        assert!(
            run.stderr.starts_with("error: interrupted by Ctrl-C (SIGINT): the import stopped while checking its input ("),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("events read): nothing was written; run it again to import it"),
            "{}",
            run.stderr
        );
        stopped = true;
        break;
    }
    assert!(
        stopped,
        "no signal landed while the input was checked; tried {tried:?}"
    );
}

#[test]
fn log_json_round_trips_through_import_with_the_same_ids_and_hashes() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    c.append(&[trip_started("trip:blinken-final-tour-2025")])
        .ok();
    let exported = c.run(&["--json", "log"]).ok();
    let other = Chronicle::new();
    let file = other.file("export.jsonl", &exported);
    other.run(&["import", path_str(&file)]).ok();
    assert_eq!(other.run(&["--json", "log"]).ok(), exported);
    // Restoring again is idempotent; restoring into a store with other events is refused.
    other.run(&["import", path_str(&file)]).ok();
    let third = Chronicle::new();
    third.append(&[trip_started("trip:x")]).ok();
    third
        .run(&["import", path_str(&file)])
        .fails(2, "restore an export into an empty store");
    // A tampered export is caught by the hash chain.
    let tampered = exported.replacen("Antony Blinken", "Anthony Blinken", 1);
    let fourth = Chronicle::new();
    let file = fourth.file("tampered.jsonl", &tampered);
    fourth
        .run(&["import", path_str(&file)])
        .fails(2, "tampered.jsonl: line 1: field `hash`: does not match");
}

#[test]
fn log_filters_and_pipes() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let trip = c
        .run(&["--json", "log", "--stream", "trip:blinken-final-tour-2025"])
        .ok();
    assert!(
        trip.lines()
            .all(|l| l.contains("\"stream\":\"trip:blinken-final-tour-2025\""))
    );
    let statements = c
        .run(&[
            "--json",
            "log",
            "--type",
            "statement.issued",
            "--category",
            "arms-sale",
        ])
        .ok();
    assert!(statements.lines().count() >= 2, "{statements}");
    // A stream the log does not hold: nothing on stdout, a note on stderr, exit 0.
    let missing = c.run(&["--json", "log", "--stream", "trip:no-such-trip"]);
    assert_eq!((missing.code, missing.stdout.as_str()), (0, ""));
    assert!(
        missing
            .stderr
            .contains("holds no stream `trip:no-such-trip`"),
        "{}",
        missing.stderr
    );
    // So does a category with no stream, but not one whose events another filter left out.
    let plural = c.run(&["log", "--category", "trips"]);
    assert_eq!((plural.code, plural.stdout.as_str()), (0, ""));
    assert!(
        plural.stderr.contains("no stream of category `trips`"),
        "{}",
        plural.stderr
    );
    let none_of_type = c.run(&["log", "--category", "trip", "--type", "event.retracted"]);
    assert_eq!((none_of_type.code, none_of_type.stderr.as_str()), (0, ""));
    let limited = c
        .run(&["--json", "log", "--from", "5", "--limit", "3"])
        .ok();
    let positions: Vec<u64> = limited
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, [5, 6, 7]);
    // Past the end: nothing, and a note that says where the log ends; at the end (where
    // a script polling for new events starts), nothing and no note.
    let head = c.log().len();
    let past = c.run(&["log", "--from", &(head + 2).to_string()]);
    assert_eq!((past.code, past.stdout.as_str()), (0, ""));
    assert!(
        past.stderr
            .contains(&format!("the log ends at position {head}")),
        "{}",
        past.stderr
    );
    let at_end = c.run(&["log", "--from", &(head + 1).to_string()]);
    assert_eq!(
        (at_end.code, at_end.stdout.as_str(), at_end.stderr.as_str()),
        (0, "", "")
    );
    // Following from past the end would skip the events before it: refused at once.
    c.run(&["log", "--follow", "--from", &(head + 2).to_string()]).fails(
        2,
        &format!(
            "is past the end of the log (it ends at position {head}), so --follow would skip every event before {}; give --from {} or less",
            head + 2,
            head + 1
        ),
    );
    c.run(&["log", "--type", "trip.teleported"])
        .fails(2, "unknown event type");
    // `chronicle log | head -1`: the closed pipe ends the command with 0.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --db '{}' log | head -1 >/dev/null; exit ${{PIPESTATUS:-0}}",
            common::bin(),
            path_str(&c.db())
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // A reader gone before the first line, for each command that streams lines.
    for args in [&["log"][..], &["--json", "log"], &["export"]] {
        let mut child = c
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}");
    }
}

/// `--version` tells builds apart (the commit, `-dirty` when built from changed sources) and names the store format they write.
#[test]
fn version_names_the_commit_and_the_store_format() {
    let out = Chronicle::new().run(&["--version"]).ok();
    let rest = out
        .trim_end()
        .strip_prefix(concat!(
            "chronicle ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        ))
        .unwrap_or_else(|| panic!("{out}"));
    let (commit, format) = rest.split_once(", store format ").expect(&out);
    // A build of a changed tree is marked.
    let commit = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{out}"
    );
    assert_eq!(
        format,
        format!("{})", chronicle::store::FORMAT_VERSION),
        "{out}"
    );
}

#[test]
fn every_command_has_help_with_examples() {
    let c = Chronicle::new();
    for cmd in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["append", "--help"],
        vec!["import", "--help"],
        vec!["log", "--help"],
        vec!["stats", "--help"],
    ] {
        let out = c.run(&cmd).ok();
        assert!(out.contains("Examples:"), "{cmd:?}: {out}");
    }
}

/// The examples of `append --help`, pasted in order after `chronicle demo`, append (the
/// file of corrections aside: the user has to write it).
#[test]
fn the_examples_of_append_help_work_after_the_demo() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let help = c.run(&["append", "--help"]).ok();
    let examples = help
        .split("Examples:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no examples: {help}"));
    // Lines continued with `\`, without the notes in parentheses beside them.
    let commands: Vec<String> = examples
        .replace("\\\n", " ")
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("chronicle ") || l.starts_with("echo "))
        .collect();
    // A shell's words for these lines: separated by spaces, '…' quoted.
    let words = |line: &str| -> Vec<String> {
        let mut words = vec![String::new()];
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '\'' => quoted = !quoted,
                ' ' if !quoted => {
                    if !words.last().unwrap().is_empty() {
                        words.push(String::new());
                    }
                }
                c => words.last_mut().unwrap().push(c),
            }
        }
        words
    };
    let mut ran = 0;
    for command in &commands {
        if command.contains("--file corrections.jsonl") {
            continue;
        }
        let before = c.log().len();
        if let Some((echo, append)) = command.split_once(" | ") {
            let line = words(echo).remove(1);
            let args = words(append);
            assert_eq!(args[..2], ["chronicle", "append"], "{command}");
            let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            c.run_stdin(&args, &format!("{line}\n")).ok();
        } else {
            let args = words(command);
            let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            c.run(&args).ok();
        }
        assert_eq!(c.log().len(), before + 1, "{command}");
        ran += 1;
    }
    assert_eq!(ran, 3, "{commands:#?}");
}

/// An empty `CHRONICLE_DB` or `CHRONICLE_SERVER` is taken as unset, as a shell user
/// means it: the default store, no server (it was "a value is required for --db").
#[test]
fn empty_environment_variables_are_unset_ones() {
    let c = Chronicle::new();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(["--json", "stats"])
            .current_dir(c.dir.path())
            .env_remove("CHRONICLE_DB")
            .env_remove("CHRONICLE_SERVER")
            .env_remove("CHRONICLE_VIEWS");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        common::Run::from_output(cmd.output().unwrap())
    };
    std::process::Command::new(common::bin())
        .arg("demo")
        .current_dir(c.dir.path())
        .env_remove("CHRONICLE_DB")
        .env_remove("CHRONICLE_SERVER")
        .output()
        .unwrap();
    let events =
        |run: common::Run| serde_json::from_str::<Value>(&run.ok()).unwrap()["events"].clone();
    let expected = events(run(&[]));
    assert!(expected.as_u64().is_some_and(|n| n > 0), "{expected}");
    for envs in [
        &[("CHRONICLE_DB", "")][..],
        &[("CHRONICLE_SERVER", "")],
        &[("CHRONICLE_VIEWS", "")],
        &[("CHRONICLE_DB", ""), ("CHRONICLE_SERVER", "")],
    ] {
        assert_eq!(events(run(envs)), expected, "{envs:?}");
    }
}

#[test]
fn a_store_held_by_another_process_exits_5() {
    let c = Chronicle::new();
    c.append(&[trip_started("trip:t")]).ok();
    let mut follower = c
        .command(&["log", "--follow"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // `log --follow` lets go of the store between polls, so appends still get through.
    std::thread::sleep(std::time::Duration::from_millis(700));
    c.append(&[trip_started("trip:t")]).ok();
    follower.kill().unwrap();
    follower.wait().unwrap();
    // A store held for good: a library user keeps it open.
    let held = chronicle::store::SledStore::open(&c.db()).unwrap();
    // It names the process holding it (this one).
    c.run(&["stats"]).fails(
        5,
        &format!("in use by another process (pid {})", std::process::id()),
    );
    drop(held);
    let stats = c.run(&["stats"]).ok();
    // The size in people's units, and how much of it the views are.
    let size = stats
        .lines()
        .find(|l| l.starts_with("size on disk: "))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        size.contains(" bytes): the log ") && size.contains(", the views ") && size.contains("iB"),
        "{size}"
    );
}

#[test]
fn a_db_that_is_a_file_is_said_before_the_input_is_checked() {
    let c = Chronicle::new();
    std::fs::create_dir_all(c.db().parent().unwrap()).unwrap();
    std::fs::write(c.db(), "a file").unwrap();
    // An arrival with no trip: invalid against an empty log, but --db is the problem.
    let input = c.file(
        "in.jsonl",
        r#"{"stream":"trip:t","type":"trip.arrived","occurred":"2025-01-06","data":{"place":"country:KR"}}"#,
    );
    c.run(&["import", path_str(&input)])
        .fails(2, "is a file; --db takes the store's folder");
    assert_eq!(std::fs::read_to_string(c.db()).unwrap(), "a file");
}

#[test]
fn errors_in_flags_and_paths_say_what_to_do() {
    let c = Chronicle::new();
    let arrival = ["append", "--stream", "trip:t", "--type", "trip.started"];
    let bad_data = [&arrival[..], &["--occurred", "2025", "--data", "{bad"]].concat();
    c.run(&bad_data)
        .fails(2, "--data is not valid JSON")
        .fails(2, "write a JSON object in single quotes");
    let missing = c.dir.path().join("missing.jsonl");
    c.run(&["append", "--file", path_str(&missing)])
        .fails(2, "cannot read")
        .fails(2, "check the path");
    let file = c.file("a-file", "not a folder");
    let inside = file.join("store");
    common::run_at(&inside, &["demo"]).fails(2, "which is a file; pass --db a folder");
    assert!(!c.db().exists(), "nothing was created");
}

#[test]
fn reading_commands_do_not_create_a_store() {
    let c = Chronicle::new();
    c.run(&["log"]).fails(2, "no store at");
    assert!(!c.db().exists());
    c.run(&["append", "--stream", "trip:t", "--type", "trip.started"])
        .fails(2, "field `occurred`");
    assert!(!c.db().exists(), "invalid input creates nothing");
}

#[test]
fn an_append_the_log_refuses_creates_no_store() {
    let c = Chronicle::new();
    let arrived = [
        "append",
        "--stream",
        "trip:t",
        "--type",
        "trip.arrived",
        "--occurred",
        "2025-01-06",
        "--data",
        r#"{"place": "country:KR"}"#,
    ];
    // Well-formed, refused by the stop rule (exit 2) and by --expect (exit 3).
    c.run(&arrived).fails(2, "has no events yet");
    assert!(!c.db().exists(), "a refused append creates nothing");
    c.run(&[&arrived[..], &["--expect", "3"]].concat())
        .fails(3, "nothing was written");
    assert!(!c.db().exists(), "a conflicting append creates nothing");
    // Nor the folders on the way to a --db that does not exist.
    let deep = c.db().join("a").join("b");
    common::run_at(&deep, &arrived).fails(2, "has no events yet");
    assert!(!c.db().exists(), "no folder was made");
    // An accepted one creates the store.
    c.append(&[person("a")]).ok();
    assert_eq!(c.log().len(), 1);
}

#[test]
fn a_flag_for_one_event_is_refused_with_a_file_or_stdin() {
    // Each flag that describes a single event would be silently left out of the events
    // of a file or stdin: `--expect` would then skip the check it asks for.
    let c = Chronicle::new();
    c.append(&[person("a")]).ok();
    let line = format!("{}\n", person("b"));
    let file = c.db().with_extension("jsonl");
    std::fs::write(&file, &line).unwrap();
    let file = file.to_str().unwrap();
    for (flag, value, field) in [
        ("--expect", "3", "expect"),
        ("--type", "entity.registered", "type"),
        ("--data", "{}", "data"),
        ("--occurred", "2025-01-06", "occurred"),
        ("--occurred-text", "Monday", "occurred_text"),
        ("--id", "0194210c-0000-7000-8000-000000000001", "id"),
        ("--source", r#"{"publisher": "Wire"}"#, "source"),
        ("--tag", "x", "tags"),
    ] {
        let said = format!("{flag} describes the one event given by flags");
        c.run_stdin(&["append", "-", flag, value], &line)
            .fails(2, &said)
            .fails(2, &format!("its own `{field}`"));
        c.run(&["append", "--file", file, flag, value])
            .fails(2, &said);
    }
    assert_eq!(c.log().len(), 1, "nothing was written");
    // Without them, the same input is appended.
    c.run(&["append", "--file", file]).ok();
    assert_eq!(c.log().len(), 2);
}

#[test]
fn the_demo_goes_only_into_a_store_it_started() {
    // Into a store of other events the demo's would stay for good.
    let c = Chronicle::new();
    c.append(&[person("a")]).ok();
    c.run(&["demo"])
        .fails(2, "already holds 1 event that the demo did not write");
    assert_eq!(c.log().len(), 1, "nothing was written");
    // Its own store takes more events, and running it again adds nothing.
    let d = Chronicle::new();
    d.run(&["demo"]).ok();
    let head = d.log().len();
    d.append(&[person("a")]).ok();
    d.run(&["demo"]).ok();
    assert_eq!(d.log().len(), head + 1);
}

#[test]
fn an_empty_timeline_and_a_db_one_folder_up_say_what_to_do() {
    let c = Chronicle::new();
    c.append(&[person("a")]).ok();
    let empty = c.run(&["timeline"]).ok();
    assert!(empty.starts_with("No timeline entries match."), "{empty}");
    // `--db news` where the store is news/chronicle.db.
    let news = c.db().with_file_name("news");
    std::fs::rename(c.db(), &news).unwrap();
    std::fs::create_dir(c.db()).unwrap();
    std::fs::rename(&news, c.db().join("chronicle.db")).unwrap();
    let named = c.db().join("chronicle.db");
    c.run(&["log"]).fails(
        2,
        &format!(
            "but {} is one; pass --db {}",
            named.display(),
            named.display()
        ),
    );
}

#[test]
fn a_stores_views_folder_as_db_is_refused_and_left_as_it_was() {
    let c = Chronicle::new();
    c.append(&[person("a")]).ok();
    // The store's views are a sled database, but not a store: sled would write to it.
    c.run(&["timeline"]).ok();
    let views = c.db().join("views");
    assert!(views.join("conf").is_file());
    let files = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files(&views);
    common::run_at(&views, &["log"]).fails(
        2,
        &format!("is the views folder of the store at {}", c.db().display()),
    );
    assert_eq!(
        files(&views),
        before,
        "the refused command left nothing behind"
    );
    // Another program's sled database: refused, without chronicle's lock file left in
    // it (sled itself may write on open).
    let other = c.db().with_file_name("other");
    let db = sled::open(&other).unwrap();
    db.insert(b"k", b"v").unwrap();
    db.flush().unwrap();
    drop(db);
    common::run_at(&other, &["log"]).fails(1, "is not a chronicle store");
    assert!(!other.join("chronicle.lock").exists(), "no lock file left");
}

/// Runs `chronicle ARGS` (a `log --follow`), appends each of `later` 300 ms apart, and

#[test]
fn append_log_and_export_open_the_log_alone_and_the_views_catch_up_later() {
    let c = Chronicle::new();
    c.append(&[person("a")]).ok();
    c.run(&["entity", "list"]).ok();
    // Views that cannot be opened stop the commands that show them, not those that
    // only append to the log or read it.
    let views = c.db().join("views");
    let aside = c.db().with_file_name("views-aside");
    std::fs::rename(&views, &aside).unwrap();
    std::fs::write(&views, "not the views").unwrap();
    c.run(&["entity", "list"]).fails(
        1,
        "views is not a folder, where chronicle keeps this store's views; move it away",
    );
    c.append(&[person("b")]).ok();
    assert_eq!(c.log().len(), 2);
    let exported = c.run(&["export"]).ok();
    assert_eq!(exported.lines().count(), 2);
    // Put back, the views fold from their checkpoint what was appended without them.
    std::fs::remove_file(&views).unwrap();
    std::fs::rename(&aside, &views).unwrap();
    c.append(&[person("c")]).ok();
    let listed = c.run(&["--json", "entity", "list"]).ok();
    for slug in ["person:a", "person:b", "person:c"] {
        assert!(listed.contains(slug), "{slug} missing from {listed}");
    }
    c.run(&["verify"]).ok();
}
/// returns the first `lines` lines it printed (waiting up to 10 s for them).
fn follow_lines(c: &Chronicle, args: &[&str], later: &[Value], lines: usize) -> Vec<String> {
    let mut follower = c
        .command(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for event in later {
        std::thread::sleep(std::time::Duration::from_millis(300));
        c.append(std::slice::from_ref(event)).ok();
    }
    let stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(lines)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn follow_prints_events_appended_later() {
    let c = Chronicle::new();
    c.append(&[trip_started("trip:t")]).ok();
    let lines = follow_lines(
        &c,
        &["--json", "log", "--follow"],
        &[trip_started("trip:later")],
        2,
    );
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains("trip:later"), "{lines:?}");
}

#[test]
fn follow_ends_when_its_reader_does() {
    // `chronicle log --follow | head -1`: once head has its line and goes, the follower
    // ends (exit 0) without waiting for another event to write.
    let c = Chronicle::new();
    c.append(&[trip_started("trip:t")]).ok();
    let mut child = c
        .command(&["--json", "log", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.contains("trip:t"), "{first}");
    drop(reader);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("log --follow kept running after its reader closed the pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn follow_keeps_the_tables_columns_where_they_started() {
    let c = Chronicle::new();
    c.append(&[trip_started("trip:t")]).ok();
    let later = [
        trip_started("trip:a-rather-longer-stream-name"),
        trip_started("trip:t"),
    ];
    let lines = follow_lines(&c, &["log", "--follow"], &later, 4);
    assert_eq!(lines.len(), 4, "{lines:?}");
    // The header, then three rounds of rows: each column starts where the header's does.
    let version_at = lines[0].find("VERSION").unwrap();
    for row in &lines[1..] {
        let before = &row[..version_at];
        assert!(
            before.ends_with("  ") && row[version_at..].starts_with(char::is_numeric),
            "columns moved: {lines:#?}"
        );
    }
}

/// A new user learns a type from `chronicle types show` alone: every type is listed,
/// each shows its fields, and its template, refused while it holds a `<placeholder>`,
/// is a write that a store holding the demo accepts once they are filled in.
#[test]
fn every_type_is_listed_and_its_template_is_accepted_once_filled_in() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let list = c.run(&["types"]).ok();
    let listed: Value = serde_json::from_str(&c.run(&["--json", "types"]).ok()).unwrap();
    let types = chronicle::model::EventType::ALL;
    assert_eq!(listed.as_array().unwrap().len(), types.len());
    let before = c.log().len();
    for t in types {
        let name = t.as_str();
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} is not listed: {list}"
        );
        let shown = c.run(&["types", "show", name]).ok();
        for field in chronicle::model::fields::definition(*t).fields {
            assert!(
                shown.contains(&format!("data.{} ", field.name)),
                "{name}: `{}` is not shown: {shown}",
                field.name
            );
        }
        let template = shown
            .lines()
            .skip_while(|l| !l.starts_with("Template"))
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no template: {shown}"));
        c.run_stdin(&["append", "-"], &format!("{template}\n"))
            .fails(
                2,
                "is a placeholder of a `chronicle types show` template; put the real value",
            );
        // Each `<placeholder>` replaced by its words: taken, with no note that its source
        // was published before it happened.
        let filled: String = template
            .split('<')
            .enumerate()
            .map(|(i, part)| match (i, part.split_once('>')) {
                (0, _) | (_, None) => part.to_owned(),
                (_, Some((words, rest))) => format!("{}{rest}", words.replace(' ', "-")),
            })
            .collect();
        let run = c.run_stdin(&["append", "-"], &format!("{filled}\n"));
        assert!(
            !run.stderr.contains("before it happened"),
            "{name}: {}",
            run.stderr
        );
        run.ok();
        let json: Value =
            serde_json::from_str(&c.run(&["--json", "types", "show", name]).ok()).unwrap();
        assert_eq!(json["name"], name);
        assert_eq!(
            json["template"],
            serde_json::from_str::<Value>(template).unwrap()
        );
    }
    assert_eq!(c.log().len(), before + types.len());
    // Text that only holds a placeholder's word is not one.
    let quoted = json!({"stream": "conflict:x", "type": "note.reported", "occurred": "2025-01-05",
        "data": {"summary": "The ministry's site showed <title>Hacked</title> for an hour", "entities": ["country:US"]},
        "source": {"publisher": "Wire", "quote": "he wrote <reason> in the form"}});
    c.run_stdin(&["append", "-"], &format!("{quoted}\n")).ok();
    c.run(&["types", "show", "statement.issue"])
        .fails(2, "did you mean `statement.issued`");
    c.run(&["types", "show", "TRIP.ARRIVED"])
        .fails(2, "did you mean `trip.arrived`");
    let help = c.run(&["append", "--help"]).ok();
    assert!(help.contains("chronicle types show TYPE"), "{help}");
}

/// Output that cannot be written (`chronicle log > /dev/full`) is an error that says
/// where it went wrong, exit 1, for tables, JSON, exports and help alike.
#[test]
fn a_full_output_is_named_in_the_error() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        println!("skipped: this system has no /dev/full");
        return;
    }
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    for args in [
        &["log"][..],
        &["--json", "log"],
        &["timeline"],
        &["export"],
        &["--help"],
        &["--version"],
        &["trip", "--help"],
    ] {
        let out = c
            .command(args)
            .stdout(std::fs::File::create(full).unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: writing to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn a_byte_order_mark_before_the_first_line_is_not_taken_for_json() {
    let c = Chronicle::new();
    let bom = |name: &str, a: &str, b: &str| {
        c.file(name, &format!("\u{feff}{}\n{}\n", person(a), person(b)))
    };
    c.run(&["append", "--file", path_str(&bom("one.jsonl", "a", "b"))])
        .ok();
    c.run(&["import", path_str(&bom("two.jsonl", "c", "d"))])
        .ok();
    assert_eq!(c.log().len(), 4);
    // Anywhere else it is still an error.
    let inside = c.file(
        "inside.jsonl",
        &format!("{}\n\u{feff}{}\n", person("e"), person("f")),
    );
    c.run(&["append", "--file", path_str(&inside)])
        .fails(2, "line 2: the line starts with a byte order mark (U+FEFF)");
    assert_eq!(c.log().len(), 4);
}

/// The commands that work on the store's files refuse `--server` before any work: an
/// import does not check its input against a store the user did not mean.
#[test]
fn commands_on_the_files_refuse_a_server_at_once() {
    let c = Chronicle::new();
    let bad = c.file("bad.jsonl", "{\"stream\": \"trip:x\"}\n");
    let server = "http://127.0.0.1:9";
    for args in [
        vec!["import", path_str(&bad)],
        vec!["verify"],
        vec!["replay"],
        vec!["demo"],
        vec!["recover"],
    ] {
        let mut all = vec!["--server", server];
        all.extend(args);
        c.run(&all)
            .fails(2, "works on the store itself, not through a server");
    }
    assert!(!c.db().exists(), "nothing was created");
}
