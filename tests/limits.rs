//! The same limits on every way in: command-line flags, stdin, files, `import` and HTTP.
//! Oversized lines are refused while they are read (memory stays bounded, checked under
//! `ulimit -v`), duplicate keys are refused everywhere, amounts of money are bounded so
//! that totals stay finite, and the largest event accepted on any path restores from its
//! export.

mod common;

use common::{Chronicle, Serve, path_str, raw_http};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The event limit, in bytes of compact JSON.
const LIMIT: usize = 64 * 1024;

/// Address space allowed to a command fed an endless line: far below the line's size.
const ULIMIT_KIB: u64 = 100_000;

/// Runs the binary under `ulimit -v`, with `feed` writing its stdin (until it stops
/// reading), and returns the exit code, stderr and how long it took.
fn bounded(c: &Chronicle, args: &[&str], feed: Option<usize>) -> (i32, String, Duration) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -v {ULIMIT_KIB}; exec \"$0\" \"$@\""))
        .arg(common::bin())
        .arg("--db")
        .arg(c.db())
        .args(args)
        .env_remove("CHRONICLE_SERVER")
        .stdin(if feed.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let writer = feed.map(|bytes| {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let block = vec![b'a'; 1 << 20];
            let mut sent = 0;
            while sent < bytes {
                if stdin.write_all(&block).is_err() {
                    break; // the command stopped reading: what we want
                }
                sent += block.len();
            }
        })
    });
    let output = child.wait_with_output().unwrap();
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn endless_and_huge_lines_exit_2_at_once_with_bounded_memory_on_every_input_path() {
    let c = Chronicle::new();
    // A 200 MB line of NUL bytes, sparse: it costs no disk.
    let huge = c.dir.path().join("huge.jsonl");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let huge = path_str(&huge);
    let cases: Vec<(Vec<&str>, Option<usize>)> = vec![
        (vec!["import", "/dev/zero"], None),
        (vec!["import", huge], None),
        (vec!["import", "-"], Some(200 << 20)),
        (vec!["append", "-"], Some(200 << 20)),
        (vec!["append", "--file", huge], None),
        (vec!["append", "--file", "/dev/zero"], None),
    ];
    for (args, feed) in cases {
        let (code, stderr, took) = bounded(&c, &args, feed);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("line 1: the event is over"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    assert!(!c.db().exists(), "nothing was written");
}

/// A `trip.started` event of exactly `size` bytes of compact JSON, padded in
/// `occurred_text`: the fields the command line builds from flags.
fn sized(stream: &str, size: usize) -> Value {
    let mut event = json!({"stream": stream, "type": "trip.started", "data": {},
                           "occurred": "2025-01-05", "occurred_text": ""});
    let base = event.to_string().len();
    event["occurred_text"] = json!("a".repeat(size - base));
    assert_eq!(event.to_string().len(), size);
    event
}

/// `append` from flags for a [`sized`] event.
fn append_flags(c: &Chronicle, event: &Value, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "append",
        "--stream",
        event["stream"].as_str().unwrap(),
        "--type",
        "trip.started",
        "--occurred",
        "2025-01-05",
        "--occurred-text",
        event["occurred_text"].as_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    c.run(&args)
}

fn post(serve: &Serve, event: &Value) -> (u16, String) {
    let body = event.to_string();
    serve.raw(&format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        serve.addr,
        body.len()
    ))
}

#[test]
fn the_largest_event_is_accepted_on_every_path_one_byte_more_nowhere_and_the_export_restores() {
    let c = Chronicle::new();
    // Through a running server: HTTP, and the command line working through it.
    let serve = Serve::start(&c, &[]);
    let (status, body) = post(&serve, &sized("trip:http", LIMIT));
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&serve, &sized("trip:http", LIMIT + 1));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("the event is 65537 bytes"), "{body}");
    append_flags(&c, &sized("trip:remote-flags", LIMIT), &[]).ok();
    append_flags(&c, &sized("trip:remote-flags", LIMIT + 1), &[])
        .fails(2, "the event is 65537 bytes");
    // A file of events that one request cannot hold: the CLI says how to get them in.
    let many: String = (0..20)
        .map(|_| format!("{}\n", sized("trip:many", 60_000)))
        .collect();
    let file = c.file("many.jsonl", &many);
    let run = c
        .run(&["append", "--file", path_str(&file)])
        .fails(2, "these events are more than the server at http://");
    assert!(
        run.stderr.contains("several smaller files") && run.stderr.contains("chronicle import"),
        "{}",
        run.stderr
    );
    assert_eq!(serve.terminate(), 0);

    // On the store: flags, stdin, a file, an import.
    append_flags(&c, &sized("trip:flags", LIMIT), &[]).ok();
    append_flags(&c, &sized("trip:flags", LIMIT + 1), &[]).fails(2, "the event is 65537 bytes");
    let line = |stream: &str, size: usize| format!("{}\n", sized(stream, size));
    c.run_stdin(&["append", "-"], &line("trip:stdin", LIMIT))
        .ok();
    c.run_stdin(&["append", "-"], &line("trip:stdin", LIMIT + 1))
        .fails(2, "the event is 65537 bytes");
    let file = c.file("largest.jsonl", &line("trip:file", LIMIT));
    c.run(&["append", "--file", path_str(&file)]).ok();
    let file = c.file("too-large.jsonl", &line("trip:file", LIMIT + 1));
    c.run(&["append", "--file", path_str(&file)])
        .fails(2, "the event is 65537 bytes");
    let file = c.file("import.jsonl", &line("trip:import", LIMIT));
    c.run(&["import", path_str(&file)]).ok();
    let file = c.file("import-too-large.jsonl", &line("trip:import", LIMIT + 1));
    c.run(&["import", path_str(&file)])
        .fails(2, "the event is 65537 bytes");

    let exported = c.run(&["--json", "log"]).ok();
    assert_eq!(exported.lines().count(), 6, "one event from each path");
    let backup = c.dir.path().join("backup.jsonl");
    c.run(&["export", "--out", path_str(&backup)]).ok();
    let restored = Chronicle::new();
    restored.run(&["import", path_str(&backup)]).ok();
    assert_eq!(restored.run(&["--json", "log"]).ok(), exported);
    restored.run(&["verify"]).ok();

    // An exported line grown past what an export holds was edited: the message says so,
    // with the export's limit, not a new event's.
    let backup = std::fs::read_to_string(&backup).unwrap();
    let first = backup.lines().next().unwrap();
    let pad = " ".repeat(66_600 - first.len());
    let grown = c.file(
        "grown.jsonl",
        &format!("{}\n", first.replacen(',', &format!(",{pad}"), 1)),
    );
    let run = Chronicle::new()
        .run(&["import", path_str(&grown)])
        .fails(2, "the exported event is");
    assert!(
        run.stderr
            .contains("more than an exported event can be (66560:")
            && run.stderr.contains("not written by `chronicle export`"),
        "{}",
        run.stderr
    );
    // Past what the reader reads of a line, both limits are named.
    let pad = " ".repeat(70_000 - first.len());
    let longer = c.file(
        "longer.jsonl",
        &format!("{}\n", first.replacen(',', &format!(",{pad}"), 1)),
    );
    Chronicle::new().run(&["import", path_str(&longer)]).fails(
        2,
        "more than the limit of 65536 (66560 for a line of `chronicle export`)",
    );
}

#[test]
fn duplicate_keys_are_refused_on_every_path() {
    let c = Chronicle::new();
    let flags = |data: &str| {
        c.run(&[
            "append",
            "--stream",
            "trip:t",
            "--type",
            "trip.arrived",
            "--occurred",
            "2025-01-06",
            "--data",
            data,
        ])
    };
    flags(r#"{"place":"country:KR","place":"country:JP"}"#).fails(2, "duplicate field `place`");
    c.run(&[
        "append",
        "--stream",
        "trip:t",
        "--type",
        "trip.started",
        "--occurred",
        "2025-01-06",
        "--source",
        r#"{"publisher":"A","publisher":"B"}"#,
    ])
    .fails(2, "duplicate field `publisher`");
    let line = r#"{"stream":"trip:t","type":"trip.arrived","occurred":"2025-01-06","data":{"place":"country:KR","place":"country:JP"}}"#;
    c.run_stdin(&["append", "-"], &format!("{line}\n"))
        .fails(2, "duplicate field `place`");
    let serve = Serve::start(&c, &[]);
    let (status, body) = serve.raw(&format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{line}",
        serve.addr,
        line.len()
    ));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("duplicate field"), "{body}");
    // Through the server, the flags are checked before anything is sent.
    flags(r#"{"place":"country:KR","place":"country:JP"}"#).fails(2, "duplicate field `place`");
    assert_eq!(serve.terminate(), 0);
    assert!(
        c.run(&["--json", "log"]).ok().is_empty(),
        "nothing was written"
    );
}

fn sale(slug: &str, amount: &str) -> String {
    format!(
        r#"{{"stream":"arms-sale:{slug}","type":"arms_sale.announced","occurred":"2025-01-03","data":{{"seller":"country:US","buyer":"country:JP","value":{{"amount":{amount},"currency":"USD"}},"items":["missiles"]}}}}"#
    )
}

#[test]
fn amounts_are_bounded_so_that_totals_never_overflow() {
    let c = Chronicle::new();
    for amount in [
        "1.79e308",
        "1e16",
        "1000000000000000.5",
        "5e-324",
        "0.001",
        "0",
        "-5",
    ] {
        c.run_stdin(&["append", "-"], &format!("{}\n", sale("big", amount)))
            .fails(
                2,
                "field `data.value.amount`: expected an amount from 0.01 to",
            );
    }
    // The bounds themselves are accepted, and many sales at the top stay finite.
    let mut lines = String::new();
    for i in 0..20 {
        lines.push_str(&sale(&format!("max-{i}"), "1e15"));
        lines.push('\n');
    }
    lines.push_str(&sale("min", "0.01"));
    lines.push('\n');
    c.run_stdin(&["append", "-"], &lines).ok();
    // A correction cannot push an amount out of bounds either.
    let id = c.log()[0]["id"].as_str().unwrap().to_owned();
    let correction = json!({"stream": "arms-sale:max-0", "type": "event.corrected", "occurred": "2025-01-04",
        "data": {"target": id, "reason": "typo", "data": {"seller": "country:US", "buyer": "country:JP",
            "value": {"amount": 1.79e308, "currency": "USD"}, "items": ["missiles"]}}});
    c.append(&[correction])
        .fails(2, "expected an amount from 0.01 to");

    let report: Value = serde_json::from_str(&c.run(&["--json", "sales"]).ok()).unwrap();
    let total = &report["by_buyer"][0];
    let amount = total["amount"].as_f64().expect("a finite total");
    assert!((amount - 2e16).abs() <= 4.0, "{report}");
    let table = c.run(&["sales"]).ok();
    assert!(!table.contains("inf") && !table.contains("NaN"), "{table}");

    // Over HTTP the same bounds are a 422, and the totals are numbers.
    let serve = Serve::start(&c, &[]);
    let body = sale("http", "1.79e308");
    let (status, answer) = serve.raw(&format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        serve.addr,
        body.len()
    ));
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = raw_http(
        std::net::TcpStream::connect(serve.addr).unwrap(),
        &format!(
            "GET /sales HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            serve.addr
        ),
    );
    assert_eq!(status, 200);
    let sales: Value = serde_json::from_str(&answer).unwrap();
    assert!(sales["by_buyer"][0]["amount"].is_number(), "{sales}");
    assert_eq!(serve.terminate(), 0);
}
