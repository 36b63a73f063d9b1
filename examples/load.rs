//! A bounded load test of the HTTP API on loopback: a server in this process over a
//! fresh store (seeded with the bundled article's events), `--appenders` clients
//! appending, `--readers` clients reading the log and every view, and `--live`
//! Server-Sent Events subscribers, for `--seconds` (at most 600). It reports requests
//! per second and latency percentiles per endpoint, and the number of failed requests,
//! which must be 0 (the exit code is 1 otherwise).
//!
//! `cargo run --release --example load -- --seconds 30`
//!
//! Every client is a thread with a blocking keep-alive connection (ureq), so the numbers
//! include the clients' own cost on the same machine.

use chronicle::model::{Origin, parse_event};
use chronicle::store::{EventStore, SledStore};
use clap::Parser;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// How long to run (1 to 600 seconds).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Concurrent clients appending.
    #[arg(long, default_value_t = 64)]
    appenders: usize,
    /// Concurrent clients reading.
    #[arg(long, default_value_t = 64)]
    readers: usize,
    /// Live subscribers following the log.
    #[arg(long, default_value_t = 4)]
    live: usize,
}

/// Latencies of one endpoint, and its failures.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    failed: u64,
}

type Results = BTreeMap<&'static str, Samples>;

fn record(results: &mut Results, endpoint: &'static str, started: Instant, ok: bool) {
    let samples = results.entry(endpoint).or_default();
    samples.latencies.push(started.elapsed());
    if !ok {
        samples.failed += 1;
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// Sends a request and reads the whole answer; `true` when it succeeded.
fn exchange(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    expected: u16,
) -> bool {
    match response {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body = r.body_mut().with_config().limit(64 << 20).read_to_vec();
            if status != expected {
                eprintln!("unexpected status {status}");
            }
            status == expected && body.is_ok()
        }
        Err(e) => {
            eprintln!("request failed: {e}");
            false
        }
    }
}

fn appender(url: String, n: usize, stop: Arc<AtomicBool>, appended: Arc<AtomicU64>) -> Results {
    let agent = agent();
    let mut results = Results::new();
    let target = format!("{url}/streams/note:load-{n}/events");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let event = json!({
            "type": "note.reported",
            "occurred": "2025-01-06",
            "data": {"summary": format!("load client {n}, note {i}: a short fact reported for the measurement"), "entities": ["country:KR"]},
            "source": {"publisher": "Load Wire", "published": "2025-01-06"},
            "tags": ["load"],
        });
        let started = Instant::now();
        let response = agent
            .post(&target)
            .header("Content-Type", "application/json")
            .send(event.to_string());
        let ok = exchange(response, 201);
        record(&mut results, "POST /streams/{s}/events", started, ok);
        if ok {
            appended.fetch_add(1, Ordering::Relaxed);
        }
    }
    results
}

fn reader(url: String, n: usize, stop: Arc<AtomicBool>, appenders: usize) -> Results {
    let agent = agent();
    let mut results = Results::new();
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (endpoint, path): (&'static str, String) = match i % 8 {
            0 => (
                "GET /events",
                format!("/events?from={}&limit=100", 1 + (i * 37) % 2000),
            ),
            1 => (
                "GET /streams/{s}",
                format!("/streams/note:load-{}?limit=100", i % appenders.max(1)),
            ),
            2 => ("GET /trips", "/trips".into()),
            3 => ("GET /timeline", "/timeline?entity=Blinken&limit=50".into()),
            4 => ("GET /entities/{e}", "/entities/Blinken".into()),
            5 => ("GET /sales", "/sales".into()),
            6 => ("GET /stats", "/stats".into()),
            _ => (
                "GET /trips/{s} as_of",
                "/trips/trip:blinken-final-tour-2025?as_of=30".into(),
            ),
        };
        // A stream that has no events yet answers 404; anything else must be 200.
        let started = Instant::now();
        let response = agent.get(format!("{url}{path}")).call();
        let ok = match response {
            Ok(mut r) if r.status() == 404 && endpoint == "GET /streams/{s}" => {
                let _ = r.body_mut().read_to_vec();
                true
            }
            other => exchange(other, 200),
        };
        record(&mut results, endpoint, started, ok);
    }
    results
}

/// Follows the live stream from the start; returns the events received and whether the
/// stream ended with an error other than the shutdown.
fn subscriber(url: String) -> (u64, Option<String>) {
    let response = match ureq::Agent::new_with_defaults()
        .get(format!("{url}/events/live?from=1"))
        .call()
    {
        Ok(r) => r,
        Err(e) => return (0, Some(e.to_string())),
    };
    let mut lines = BufReader::new(response.into_body().into_reader());
    let (mut received, mut last, mut error_next) = (0u64, 0u64, false);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return (received, None),
            Ok(_) => {}
        }
        if let Some(id) = line.strip_prefix("id: ") {
            let id: u64 = id.trim().parse().unwrap_or(0);
            if id != last + 1 {
                return (received, Some(format!("position {id} came after {last}")));
            }
            last = id;
            received += 1;
        } else if line.starts_with("event: error") {
            error_next = true;
        } else if error_next && line.starts_with("data: ") {
            if line.contains("shutting down") {
                return (received, None);
            }
            return (received, Some(line.trim().to_owned()));
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store = SledStore::open(&dir.path().join("load.db"))?;
    // Seed with the bundled article, so that the views have something to show.
    let events_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut files: Vec<_> = std::fs::read_dir(events_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut seed = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file)?.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with("//") {
                seed.push(parse_event(line, Origin::New)?);
            }
        }
    }
    store.append(seed)?;
    let head_before = store.head()?.position.0;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(chronicle::server::run(listener, store, None, async move {
        let _ = stopped.await;
    }));
    println!(
        "load: {} appenders, {} readers, {} live subscribers, {} s against {url}",
        args.appenders, args.readers, args.live, args.seconds
    );

    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let subscribers: Vec<_> = (0..args.live)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || subscriber(url))
        })
        .collect();
    let mut clients = Vec::new();
    for n in 0..args.appenders {
        let (url, stop, appended) = (url.clone(), stop.clone(), appended.clone());
        clients.push(std::thread::spawn(move || appender(url, n, stop, appended)));
    }
    for n in 0..args.readers {
        let (url, stop, appenders) = (url.clone(), stop.clone(), args.appenders);
        clients.push(std::thread::spawn(move || reader(url, n, stop, appenders)));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut results = Results::new();
    for client in clients {
        let part = client
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))?;
        for (endpoint, samples) in part {
            let all = results.entry(endpoint).or_default();
            all.latencies.extend(samples.latencies);
            all.failed += samples.failed;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_server.send(());
    runtime.block_on(server)??;
    let live: Vec<_> = subscribers
        .into_iter()
        .map(|s| {
            s.join()
                .unwrap_or((0, Some("the subscriber panicked".into())))
        })
        .collect();

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "ENDPOINT", "REQUESTS", "REQ/S", "P50 MS", "P99 MS", "MAX MS", "FAILED"
    );
    let (mut total, mut failed) = (0usize, 0u64);
    for (endpoint, samples) in &mut results {
        samples.latencies.sort();
        let count = samples.latencies.len();
        total += count;
        failed += samples.failed;
        println!(
            "{:<28} {:>9} {:>9.0} {:>9} {:>9} {:>9} {:>7}",
            endpoint,
            count,
            count as f64 / elapsed,
            ms(percentile(&samples.latencies, 0.50)),
            ms(percentile(&samples.latencies, 0.99)),
            ms(percentile(&samples.latencies, 1.0)),
            samples.failed
        );
    }
    println!(
        "{:<28} {:>9} {:>9.0} {:>39}",
        "all",
        total,
        total as f64 / elapsed,
        failed
    );
    let appended = appended.load(Ordering::Relaxed);
    println!();
    println!(
        "appended {appended} events ({:.0}/s)",
        appended as f64 / elapsed
    );
    let expected = head_before + appended;
    let mut live_ok = true;
    for (i, (received, problem)) in live.iter().enumerate() {
        match problem {
            None => {
                println!("live subscriber {i}: received {received} of {expected} events in order")
            }
            Some(p) => {
                live_ok = false;
                println!("live subscriber {i}: received {received} events, then: {p}");
            }
        }
    }
    if failed > 0 || !live_ok {
        anyhow::bail!("{failed} requests failed");
    }
    println!("failed requests: 0");
    Ok(())
}
