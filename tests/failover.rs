//! Failover of the PostgreSQL log: a primary with a synchronous streaming replica
//! (`.ci/postgres start` and `replica`), two `chronicle serve` on a multi-host URL
//! (`target_session_attrs=read-write`) taking appends from 16 clients; the primary is
//! killed with `kill -9` and the replica promoted while they write. Every append that
//! got a 201 must be in the promoted log exactly once, positions without gaps, `verify`
//! passing; while no primary is reachable the servers answer 503 with `Retry-After`,
//! never 500, and they take appends again once the replica is promoted.
//!
//! The test starts its own clusters (it kills one), so it needs PostgreSQL's programs
//! (`.ci/postgres` installs Debian's package when they are missing, if it may); where
//! they are missing it prints one line and passes, and with `CHRONICLE_REQUIRE_PG=1`
//! (which `.ci/run` sets) it fails instead.

mod common;

use common::pg::{chronicle, serve};
use common::{Run, Serve};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `.ci/postgres` with these arguments; its standard output (a URL, for `start`).
fn script(args: &[&str]) -> String {
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres"))
        .args(args)
        .output()
        .expect(".ci/postgres runs");
    assert!(
        output.status.success(),
        ".ci/postgres {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// PostgreSQL's programs, as `.ci/postgres` finds them.
fn postgres_installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions
            .flatten()
            .any(|v| v.path().join("bin/pg_ctl").is_file())
    })
}

/// A cluster started for this test, stopped and removed when dropped.
struct Cluster {
    dir: PathBuf,
    url: String,
}

impl Cluster {
    fn dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "chronicle-failover-{name}-{}",
            Uuid::new_v4().simple()
        ))
    }

    fn primary() -> Cluster {
        let dir = Cluster::dir("primary");
        let url = script(&["start", dir.to_str().unwrap()]);
        Cluster { dir, url }
    }

    fn replica_of(primary: &Cluster) -> Cluster {
        let dir = Cluster::dir("replica");
        let url = script(&[
            "replica",
            dir.to_str().unwrap(),
            primary.dir.to_str().unwrap(),
        ]);
        Cluster { dir, url }
    }

    /// `host:port` of the cluster.
    fn address(&self) -> &str {
        let rest = self.url.split_once('@').unwrap().1;
        rest.split_once('/').unwrap().0
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres"))
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
    }
}

/// What a client saw: acknowledged ids with their positions, and every refusal.
#[derive(Default)]
struct Seen {
    acknowledged: Vec<(Uuid, u64)>,
    /// Status → count, for every answer that was not a 201.
    refused: HashMap<u16, u64>,
    /// 503s without `Retry-After`.
    no_retry_after: u64,
    /// Transport errors (the server itself must stay up: there should be none).
    transport: Vec<String>,
}

fn note(stream: &str, id: Uuid) -> Value {
    json!({"id": id, "stream": stream, "type": "note.reported", "occurred": "2025-01-06",
           "data": {"summary": "a note written during the failover test", "entities": ["country:US"]}})
}

/// Whether the test can run (PostgreSQL's programs are needed to start and kill
/// clusters of its own): a guard to hold while it does, or `None` after printing one
/// line (a failure under `CHRONICLE_REQUIRE_PG=1`).
fn can_run(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    // One test at a time: each starts clusters on the first free ports, and two
    // starting at once could pick the same one.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if postgres_installed() {
        return Some(ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()));
    }
    if std::env::var("CHRONICLE_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!(
            "CHRONICLE_REQUIRE_PG=1 but PostgreSQL's programs are not installed: {test} cannot run (run .ci/postgres start once to install them)"
        );
    }
    eprintln!("skipped: PostgreSQL is not installed ({test})");
    None
}

/// 16 clients posting notes to the servers in turn, each with a new id, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(urls: &[String]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let clients = (0..16)
            .map(|c| {
                let (stop, seen, urls) = (stop.clone(), seen.clone(), urls.to_vec());
                std::thread::spawn(move || client(c, &urls, &stop, &seen))
            })
            .collect();
        Load {
            stop,
            seen,
            clients,
        }
    }

    fn acknowledged(&self) -> usize {
        self.seen.lock().unwrap().acknowledged.len()
    }

    /// Waits until `more` appends were acknowledged after this call (at most 30 s);
    /// returns how long that took.
    fn wait_for(&self, more: usize) -> Duration {
        let (from, started) = (self.acknowledged(), Instant::now());
        while self.acknowledged() < from + more && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        Arc::try_unwrap(self.seen)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn client(c: usize, urls: &[String], stop: &AtomicBool, seen: &Mutex<Seen>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = Uuid::new_v4();
        let server = &urls[n % urls.len()];
        n += 1;
        let answer = agent
            .post(format!("{server}/events"))
            .header("Content-Type", "application/json")
            .send(note(&format!("note:client-{c}"), id).to_string());
        let mut response = match answer {
            Ok(r) => r,
            Err(e) => {
                seen.lock()
                    .unwrap()
                    .transport
                    .push(format!("{server}: {e}"));
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                .unwrap_or(Value::Null);
        let mut seen = seen.lock().unwrap();
        if status == 201 {
            let position = body["events"][0]["position"].as_u64().unwrap();
            seen.acknowledged.push((id, position));
        } else {
            *seen.refused.entry(status).or_default() += 1;
            if status == 503 && !retry_after {
                seen.no_retry_after += 1;
            }
            drop(seen);
            // A client backs off as Retry-After asks, a little.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Checks the log at `url` against what the clients saw: every acknowledged id once,
/// at the position it was acknowledged with; positions without gaps; `verify` passing;
/// every server's views holding exactly the log. Returns (events in the log, lost).
fn check(url: &str, work: &Path, seen: &Seen, servers: &[&Serve]) -> (usize, usize) {
    let views = work.join("check");
    let export =
        Run::from_output(chronicle(url, &views, &["log", "--json"]).output().unwrap()).ok();
    let events: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut found: HashMap<String, Vec<u64>> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        let position = event["position"].as_u64().unwrap();
        assert_eq!(position, i as u64 + 1, "positions have no gaps");
        found
            .entry(event["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(position);
    }
    let mut lost = 0;
    for (id, position) in &seen.acknowledged {
        match found.get(&id.to_string()).map(Vec::as_slice) {
            Some([p]) => assert_eq!(p, position, "{id} moved"),
            Some(more) => panic!("{id} is in the log {} times", more.len()),
            None => lost += 1,
        }
    }
    let verify = Run::from_output(chronicle(url, &views, &["verify"]).output().unwrap());
    assert_eq!(verify.code, 0, "verify: {}", verify.stderr);
    // Each server's views took in exactly this log: none kept an event that a lost
    // primary had shown before it went.
    let head = events.len();
    for server in servers {
        let caught_up = ureq::get(format!("{}/trips?min_position={head}", server.url)).call();
        assert!(
            caught_up.is_ok(),
            "{}: {caught_up:?}; its log:\n{}",
            server.url,
            server.stderr.lock().unwrap()
        );
        let stats: Value = ureq::get(format!("{}/stats", server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        assert_eq!(stats["events"], head, "{}: {stats}", server.url);
    }
    (head, lost)
}

/// The servers always answered, and refused only with 503 and `Retry-After` (while the
/// log could not be reached).
fn assert_only_503(seen: &Seen) {
    assert!(
        seen.transport.is_empty(),
        "the servers stopped answering: {:?}",
        &seen.transport[..seen.transport.len().min(3)]
    );
    assert!(
        seen.refused.keys().all(|s| *s == 503),
        "only 503 while the log cannot be reached, got {:?}",
        seen.refused
    );
    assert_eq!(seen.no_retry_after, 0, "a 503 without Retry-After");
}

#[test]
fn failover_to_a_synchronous_replica_loses_no_acknowledged_append() {
    let Some(_one_at_a_time) = can_run("the failover test") else {
        return;
    };
    let primary = Cluster::primary();
    let replica = Cluster::replica_of(&primary);
    let url = format!(
        "postgres://chronicle@{},{}/postgres?target_session_attrs=read-write",
        primary.address(),
        replica.address()
    );
    let work = tempfile::tempdir().unwrap();
    let root = work.path().canonicalize().unwrap();
    let servers = [serve(&url, &root.join("a")), serve(&url, &root.join("b"))];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let load = Load::start(&urls);
    std::thread::sleep(Duration::from_millis(1500));
    let before = load.acknowledged();
    script(&["kill", primary.dir.to_str().unwrap()]);
    // No primary for a moment: the servers must say so, not fail; their metrics still
    // answer, and say that the log cannot be reached.
    std::thread::sleep(Duration::from_millis(300));
    let metrics = ureq::get(format!("{}/metrics", servers[0].url))
        .call()
        .expect("/metrics answers while the log is down")
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("chronicle_log_up 0"),
        "{}",
        &metrics[..metrics.len().min(2000)]
    );
    std::thread::sleep(Duration::from_millis(400));
    script(&["promote", replica.dir.to_str().unwrap()]);
    let at_promotion = load.acknowledged();
    let resumed = load.wait_for(200);
    let seen = load.stop();
    let after = seen.acknowledged.len() - at_promotion;
    let (events, lost) = check(&replica.url, &root, &seen, &[&servers[0], &servers[1]]);
    // Straight to stderr, past the test harness's capture, so the CI log shows it.
    let _ = writeln!(
        std::io::stderr(),
        "failover test: 16 clients, 2 servers; {} appends acknowledged ({before} before the kill of the primary, {after} after the promotion, the 200th {:.1} s after it), {} found, {lost} lost; refused: {:?}; {events} events in the promoted log",
        seen.acknowledged.len(),
        resumed.as_secs_f64(),
        seen.acknowledged.len() - lost,
        seen.refused,
    );
    assert_eq!(lost, 0, "acknowledged appends lost in the failover");
    assert!(before > 0, "nothing was acknowledged before the kill");
    assert!(
        after >= 200,
        "the servers did not resume after the promotion ({after} appends in {resumed:?})"
    );
    assert_only_503(&seen);
    assert!(
        seen.refused.get(&503).is_some_and(|n| *n > 0),
        "no 503 while no primary was reachable"
    );
    for server in servers {
        assert_eq!(server.terminate(), 0);
    }
}

#[test]
fn a_postgres_restart_under_load_loses_no_acknowledged_append() {
    let Some(_one_at_a_time) = can_run("the PostgreSQL restart test") else {
        return;
    };
    let primary = Cluster::primary();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().canonicalize().unwrap();
    let servers = [
        serve(&primary.url, &root.join("a")),
        serve(&primary.url, &root.join("b")),
    ];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let load = Load::start(&urls);
    std::thread::sleep(Duration::from_millis(1000));
    let before = load.acknowledged();
    script(&["restart", primary.dir.to_str().unwrap()]);
    let at_restart = load.acknowledged();
    let resumed = load.wait_for(200);
    let seen = load.stop();
    let (events, lost) = check(&primary.url, &root, &seen, &[&servers[0], &servers[1]]);
    // Straight to stderr, past the test harness's capture, so the CI log shows it.
    let _ = writeln!(
        std::io::stderr(),
        "restart test: 16 clients, 2 servers; {} appends acknowledged ({before} before the restart, {} after it), {lost} lost; refused: {:?}; {events} events in the log",
        seen.acknowledged.len(),
        seen.acknowledged.len() - at_restart,
        seen.refused,
    );
    assert_eq!(lost, 0, "acknowledged appends lost in the restart");
    assert!(
        before > 0 && seen.acknowledged.len() >= at_restart + 200,
        "the servers did not resume after the restart ({resumed:?})"
    );
    assert_only_503(&seen);
    for server in servers {
        assert_eq!(server.terminate(), 0);
    }
}

#[test]
fn a_server_killed_mid_commit_loses_no_acknowledged_append() {
    let Some(_one_at_a_time) = can_run("the server kill test") else {
        return;
    };
    let primary = Cluster::primary();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().canonicalize().unwrap();
    let survivor = serve(&primary.url, &root.join("b"));
    let mut kills = 0;
    let mut all = Seen::default();
    // A server taking appends from 16 clients is killed at a random moment, five times;
    // the clients of the other server go on.
    for round in 0..5u64 {
        let victim = serve(&primary.url, &root.join(format!("a{round}")));
        let load = Load::start(&[victim.url.clone(), survivor.url.clone()]);
        std::thread::sleep(Duration::from_millis(300 + (round * 137) % 400));
        let pid = victim.pid();
        let killed = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        kills += 1;
        load.wait_for(100);
        let seen = load.stop();
        drop(victim);
        all.acknowledged.extend(seen.acknowledged);
        for (status, n) in seen.refused {
            *all.refused.entry(status).or_default() += n;
        }
    }
    let (events, lost) = check(&primary.url, &root, &all, &[&survivor]);
    // Straight to stderr, past the test harness's capture, so the CI log shows it.
    let _ = writeln!(
        std::io::stderr(),
        "server kill test: {kills} kills -9 of a server under 16 clients; {} appends acknowledged, {lost} lost; {events} events in the log",
        all.acknowledged.len()
    );
    assert_eq!(
        lost, 0,
        "acknowledged appends lost when a server was killed"
    );
    assert!(all.refused.is_empty(), "refusals: {:?}", all.refused);
    assert_eq!(survivor.terminate(), 0);
}

/// A TCP proxy on loopback between chronicle and PostgreSQL that can stall: stop
/// forwarding in both directions while keeping every socket open, as a network path
/// or a middlebox that stops passing packets while its kernel still acknowledges them
/// (so TCP keepalives and `tcp_user_timeout` see nothing wrong).
struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    /// Stall once the next `COMMIT` has been passed on to the server.
    armed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let armed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let (upstream, accept_stalled, accept_armed, accept_stop, accept_sockets) = (
            upstream.to_owned(),
            stalled.clone(),
            armed.clone(),
            stop.clone(),
            sockets.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let mut held = accept_sockets.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                drop(held);
                for (from, to, armed) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        Some(accept_armed.clone()),
                    ),
                    (server, client, None),
                ] {
                    let stalled = accept_stalled.clone();
                    std::thread::spawn(move || pump(from, to, &stalled, armed.as_deref()));
                }
            }
        });
        Proxy {
            port,
            stalled,
            armed,
            stop,
            sockets,
        }
    }

    /// Stalls now, or (`at_commit`) once the next `COMMIT` has reached the server, so
    /// that it commits and its answer is held back: the writer cannot know the outcome.
    /// Returns when the stall began (within 10 s).
    fn stall(&self, at_commit: bool) {
        if !at_commit {
            self.stalled.store(true, Ordering::SeqCst);
            return;
        }
        self.armed.store(true, Ordering::SeqCst);
        let started = Instant::now();
        while !self.stalled.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no COMMIT went through the proxy"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.resume();
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` until either ends; while the proxy is stalled, reads and
/// writes nothing (what was read before the stall waits in the buffer). With `armed`
/// (from the client to the server), the proxy stalls after passing on a `COMMIT` while
/// it is set.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    stalled: &AtomicBool,
    armed: Option<&AtomicBool>,
) {
    use std::io::Read;
    let wait = || {
        while stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut buffer = vec![0; 64 * 1024];
    loop {
        wait();
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => {
                wait();
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        wait();
        if to.write_all(&buffer[..n]).is_err() {
            let _ = from.shutdown(std::net::Shutdown::Both);
            return;
        }
        if let Some(armed) = armed
            && buffer[..n].windows(6).any(|w| w == b"COMMIT")
            && armed.swap(false, Ordering::SeqCst)
        {
            stalled.store(true, Ordering::SeqCst);
        }
    }
}

/// What the clients of the stall test saw.
#[derive(Default)]
struct Answers {
    /// Acknowledged ids, their positions, and whether the acknowledging answer was a
    /// retry that found the append already written (`new: false`).
    acknowledged: Vec<(Uuid, u64, bool)>,
    /// When each acknowledgement came.
    acknowledged_at: Vec<Instant>,
    /// Every id a client sent.
    sent: Vec<Uuid>,
    refused: HashMap<u16, u64>,
    no_retry_after: u64,
    /// 503s saying the append may have been written (an `ids` list).
    possibly_written: u64,
    transport: Vec<String>,
    /// The slowest answer, and when it was asked.
    slowest: (Duration, Option<Instant>),
}

/// Clients appending notes through `server`, each with its own id, retried with the
/// same id after a 503 until acknowledged.
struct RetryingLoad {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl RetryingLoad {
    fn start(server: &str, clients: usize) -> RetryingLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Answers::default()));
        let clients = (0..clients)
            .map(|c| {
                let (stop, answers, server) = (stop.clone(), answers.clone(), server.to_owned());
                std::thread::spawn(move || retrying_client(c, &server, &stop, &answers))
            })
            .collect();
        RetryingLoad {
            stop,
            answers,
            clients,
        }
    }

    fn acknowledged(&self) -> usize {
        self.answers.lock().unwrap().acknowledged.len()
    }

    fn stop(self) -> Answers {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        Arc::try_unwrap(self.answers)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn retrying_client(c: usize, server: &str, stop: &AtomicBool, answers: &Mutex<Answers>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    // Once stopped, a client still settles the id it is retrying (for up to 20 s), so
    // that every id sent is either acknowledged or known not to be.
    let mut settle_until: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let id = Uuid::new_v4();
        answers.lock().unwrap().sent.push(id);
        loop {
            if stop.load(Ordering::Relaxed) {
                let until =
                    *settle_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(20));
                if Instant::now() > until {
                    return;
                }
            }
            let asked = Instant::now();
            let answer = agent
                .post(format!("{server}/events"))
                .header("Content-Type", "application/json")
                .send(note(&format!("note:client-{c}"), id).to_string());
            let took = asked.elapsed();
            let mut response = match answer {
                Ok(r) => r,
                Err(e) => {
                    let mut answers = answers.lock().unwrap();
                    answers.transport.push(format!("after {took:?}: {e}"));
                    drop(answers);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default())
                    .unwrap_or(Value::Null);
            let mut answers = answers.lock().unwrap();
            if took > answers.slowest.0 {
                answers.slowest = (took, Some(asked));
            }
            if status == 201 {
                let event = &body["events"][0];
                answers.acknowledged.push((
                    id,
                    event["position"].as_u64().unwrap(),
                    event["new"] == false,
                ));
                answers.acknowledged_at.push(Instant::now());
                break;
            }
            *answers.refused.entry(status).or_default() += 1;
            if status == 503 && !retry_after {
                answers.no_retry_after += 1;
            }
            if status == 503 && body["ids"].is_array() {
                answers.possibly_written += 1;
                assert_eq!(
                    body["ids"][0],
                    id.to_string(),
                    "the ids of a possibly written append"
                );
            }
            drop(answers);
            if status != 503 {
                break;
            }
            // Retry-After says a second; a client retrying sooner probes the stall
            // more often, which is what this test wants.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// What one stall did: appends acknowledged while it lasted, and how long after the
/// resume the first one was acknowledged.
struct Stalled {
    during: usize,
    first_after: Option<Duration>,
}

/// Stalls the proxy (now, or just after a `COMMIT` reached the server) for `stall`,
/// resumes it, and waits until 100 more appends were acknowledged (at most 30 s).
fn stall_once(proxy: &Proxy, load: &RetryingLoad, at_commit: bool, stall: Duration) -> Stalled {
    proxy.stall(at_commit);
    let before = load.acknowledged();
    std::thread::sleep(stall);
    let during = load.acknowledged() - before;
    proxy.resume();
    let resumed_at = Instant::now();
    while load.acknowledged() < before + during + 100
        && resumed_at.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let answers = load.answers.lock().unwrap();
    let first_after = answers
        .acknowledged_at
        .iter()
        .find(|at| **at > resumed_at)
        .map(|at| at.duration_since(resumed_at));
    Stalled {
        during,
        first_after,
    }
}

#[test]
fn a_stalled_connection_to_postgres_answers_503_within_the_bound_and_loses_nothing() {
    let Some(_one_at_a_time) = can_run("the network stall test") else {
        return;
    };
    const CLIENTS: usize = 8;
    const STALL: Duration = Duration::from_secs(8);
    let bound = chronicle::store::PG_STALL_BOUND;
    // The longest an answer may take: one statement's bound, plus room for a machine
    // busy with other work.
    let slowest_allowed = bound + Duration::from_secs(4);
    let primary = Cluster::primary();
    let proxy = Proxy::start(primary.address());
    let through_proxy = format!("postgres://chronicle@127.0.0.1:{}/postgres", proxy.port);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().canonicalize().unwrap();
    let server = serve(&through_proxy, &root.join("a"));
    let load = RetryingLoad::start(&server.url, CLIENTS);
    std::thread::sleep(Duration::from_millis(1500));
    let before = load.acknowledged();
    // Two stalls: one at whatever the connections are doing, then one just after a
    // COMMIT reached the server, whose answer it holds back (the append is in the log,
    // the server cannot know it).
    let anywhere = stall_once(&proxy, &load, false, STALL);
    let at_commit = stall_once(&proxy, &load, true, STALL);
    let answers = load.stop();
    let refused_503 = answers.refused.get(&503).copied().unwrap_or(0);
    let deduplicated = answers.acknowledged.iter().filter(|a| a.2).count();
    let seen = Seen {
        acknowledged: answers.acknowledged.iter().map(|a| (a.0, a.1)).collect(),
        refused: answers.refused.clone(),
        no_retry_after: answers.no_retry_after,
        transport: answers.transport.clone(),
    };
    let (events, lost) = check(&primary.url, &root, &seen, &[&server]);
    // Every event in the log is one a client sent, once.
    let log = Run::from_output(
        chronicle(&primary.url, &root.join("check"), &["log", "--json"])
            .output()
            .unwrap(),
    )
    .ok();
    let sent: std::collections::HashSet<String> =
        answers.sent.iter().map(Uuid::to_string).collect();
    let strays = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| !sent.contains(e["id"].as_str().unwrap()))
        .count();
    let first = |s: &Stalled| {
        s.first_after
            .map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
    };
    // Straight to stderr, past the test harness's capture, so the CI log shows it.
    let _ = writeln!(
        std::io::stderr(),
        "network stall test: {CLIENTS} clients retrying with the same id, 1 server through a proxy stalled twice for {:.0} s (bound {:.0} s), once anywhere and once just after a COMMIT reached the server; {} appends acknowledged ({before} before the stalls, {} and {} during them, the first after each resume in {} and {}), {deduplicated} of them by a retry that found the append already written, {} found, {lost} lost; refused: {:?} ({} saying possibly written); slowest answer {:.2} s; {events} events in the log, {strays} not sent by a client",
        STALL.as_secs_f64(),
        bound.as_secs_f64(),
        answers.acknowledged.len(),
        anywhere.during,
        at_commit.during,
        first(&anywhere),
        first(&at_commit),
        answers.acknowledged.len() - lost,
        answers.refused,
        answers.possibly_written,
        answers.slowest.0.as_secs_f64(),
    );
    assert_eq!(lost, 0, "acknowledged appends lost in the stalls");
    assert_eq!(strays, 0, "events in the log that no client sent");
    assert_only_503(&seen);
    assert!(before > 0, "nothing was acknowledged before the stalls");
    assert!(refused_503 > 0, "no 503 while the connection was stalled");
    assert!(
        answers.slowest.0 <= slowest_allowed,
        "an answer took {:?}, more than the bound {bound:?} and a margin",
        answers.slowest.0
    );
    // The stalled COMMIT committed: its appends were answered as possibly written,
    // and their retries found them.
    assert!(
        answers.possibly_written > 0 && deduplicated > 0,
        "the COMMIT stalled after reaching the server was not answered as possibly written ({} such 503s) and found by a retry ({deduplicated})",
        answers.possibly_written
    );
    for stalled in [&anywhere, &at_commit] {
        assert!(
            stalled
                .first_after
                .is_some_and(|d| d <= bound + Duration::from_secs(5)),
            "appends were not acknowledged again soon after a stall ({:?})",
            stalled.first_after
        );
    }
    assert!(
        answers.acknowledged.len() >= before + anywhere.during + at_commit.during + 200,
        "the server did not resume after the stalls"
    );
    assert_eq!(server.terminate(), 0);
    drop(proxy);
}
