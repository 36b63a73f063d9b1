//! Crash safety of the real binary under `kill -9`, and stores that crashes left behind.
//!
//! `kill_9_at_random_moments_of_every_phase` starts `chronicle` processes on many small
//! stores and kills them with SIGKILL at random moments of every phase of their life:
//! while they open the store (sled's recovery and the snapshot it writes on every open),
//! while they append single events and batches (`append`, `append -`), while they import
//! (`import --batch N`), while they replay the projections (`replay`), and while a
//! `chronicle serve` answers HTTP appends from two clients. After every kill the store
//! must open, `chronicle verify` must pass (exit 0), every acknowledged event must be in
//! `chronicle log` (acknowledged: the process exited 0, or the server answered 201), and
//! no batch may be partial: every event carries its batch as `meta.correlation_id`
//! (`<batch>/<size>`), and each batch in the log must be whole and at consecutive positions.
//!
//! Knobs (environment):
//! - `CHRONICLE_KILLS`: how many kills (default 200, so that `cargo test` stays quick;
//!   `.ci/run` asks for 3,000).
//! - `CHRONICLE_KILL_THREADS`: stores driven side by side (default 2).
//! - `CHRONICLE_KILL_SEED`: the seed of the random choices (printed with the totals). The
//!   moments of the kills depend on timing, so a run is never repeated exactly.
//!
//! The totals (kills per phase, acknowledged events checked, failures) are written
//! straight to stderr, past the test harness's capture, so that they show in the CI log.
//! A store that fails a check is kept on disk and its path is in the failure message.
//!
//! The other tests here build the damage a kill leaves by hand: an unfinished sled
//! snapshot (`snap.<lsn>.generating`) beside the real one must not stop the store opening.

mod common;

use common::Chronicle;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Kills per store before the test moves on to a new one, or fewer once it holds
/// `EVENTS_PER_STORE` acknowledged events: small stores keep every check cheap (`verify`
/// replays every projection), and each new store's creation is a moment to kill too.
const KILLS_PER_STORE: usize = 20;
const EVENTS_PER_STORE: usize = 250;
/// After this many failed checks the test stops early and reports them.
const MAX_FAILURES: usize = 3;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// What the killed process was doing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// A fresh process killed within its first moments: opening the store (sled's
    /// recovery, the snapshot it writes, chronicle's checks), or creating it.
    Open,
    /// `chronicle append --stream … --type …`, one event per process.
    Single,
    /// `chronicle append -` with a batch of 2 to 40 events on stdin.
    Batch,
    /// `chronicle import FILE --batch N`, sometimes re-running an interrupted import.
    Import,
    /// `chronicle replay`.
    Replay,
    /// `chronicle serve` with two clients appending singles and batches over HTTP.
    Serve,
}

const PHASES: [Phase; 6] = [
    Phase::Open,
    Phase::Single,
    Phase::Batch,
    Phase::Import,
    Phase::Replay,
    Phase::Serve,
];

impl Phase {
    fn index(self) -> usize {
        PHASES.iter().position(|p| *p == self).expect("listed")
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Single => "append",
            Phase::Batch => "append-batch",
            Phase::Import => "import",
            Phase::Replay => "replay",
            Phase::Serve => "serve",
        }
    }

    /// How often each phase is picked, out of the sum.
    fn weight(self) -> u64 {
        match self {
            Phase::Open | Phase::Single | Phase::Batch => 3,
            Phase::Import | Phase::Replay | Phase::Serve => 2,
        }
    }
}

/// splitmix64: small, good enough to pick delays and sizes, and seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// A duration up to `max`, uniformly.
    fn upto(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(self.next() % micros)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Counts over the whole run, shared by the worker threads.
#[derive(Default)]
struct Totals {
    kills: [AtomicU64; 6],
    /// Processes that finished before their kill came (each was checked for exit 0).
    finished: AtomicU64,
    /// Acknowledged events (each one checked after every later kill of its store).
    acked: AtomicU64,
    /// Sum over the kills of the acknowledged events checked after it.
    ack_checks: AtomicU64,
    /// Batches (and import chunks) seen whole in the log, summed over the checks.
    batch_checks: AtomicU64,
    verified: AtomicU64,
    /// Kills that left an unfinished sled snapshot (`snap.*.generating`) behind.
    generating_left: AtomicU64,
    /// … of which an empty one: the damage that made sled 0.34.7 refuse to open.
    empty_generating_left: AtomicU64,
    stores: AtomicU64,
    /// Milliseconds spent in trials and in checks, over all threads.
    trial_ms: AtomicU64,
    check_ms: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Totals {
    fn failed(&self) -> usize {
        self.failures.lock().unwrap().len()
    }
}

/// How a process ended.
struct Outcome {
    killed: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn reader(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for the child until `deadline`, then kills it with SIGKILL if it still runs.
fn finish_or_kill(mut child: Child, started: Instant, deadline: Instant) -> Outcome {
    let out = reader(child.stdout.take().expect("piped"));
    let err = reader(child.stderr.take().expect("piped"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        let now = Instant::now();
        if now >= deadline {
            child.kill().expect("SIGKILL");
            break child.wait().expect("reaping the child");
        }
        std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
    };
    let elapsed = started.elapsed();
    Outcome {
        // The child may have ended on its own just before the signal: only a death by
        // SIGKILL counts as a kill.
        killed: status.signal() == Some(9),
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

/// Runs `chronicle --db DB ARGS` (with `stdin`), killing it after `delay`.
fn run_killed_after(db: &Path, args: &[&str], stdin: Option<&str>, delay: Duration) -> Outcome {
    let started = Instant::now();
    let mut child = command(db, args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(text) = stdin {
        // Small enough for the pipe's buffer; a child killed before reading is fine.
        let mut pipe = child.stdin.take().expect("piped");
        let _ = pipe.write_all(text.as_bytes());
    }
    finish_or_kill(child, started, started + delay)
}

fn command(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::bin());
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CHRONICLE_DB")
        .env_remove("CHRONICLE_SERVER")
        .env_remove("CHRONICLE_TOKEN");
    cmd
}

/// An event of the test's own, tagged with its batch.
fn event(id: Uuid, stream: &str, tag: &str, n: u64) -> Value {
    if n.is_multiple_of(2) {
        json!({"id": id, "stream": stream, "type": "trip.started", "occurred": "2025-01-05",
               "data": {}, "meta": {"correlation_id": tag}})
    } else {
        json!({"id": id, "stream": stream, "type": "note.reported", "occurred": "2025-01-06",
               "data": {"summary": format!("note {n}"), "entities": ["country:KR"]},
               "tags": ["crash"], "meta": {"correlation_id": tag}})
    }
}

fn json_lines(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn ids_of(events: &[Value]) -> Vec<Uuid> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// An import file written by the test, kept until an import of it finishes.
struct ImportFile {
    path: PathBuf,
    batch: usize,
    ids: Vec<Uuid>,
}

/// One small store and what the test knows about it.
struct Store {
    dir: tempfile::TempDir,
    rng: Rng,
    acked: HashSet<Uuid>,
    batches: u64,
    /// Typical run time of each phase's process (for `serve`, until it listens),
    /// learned from the runs that finished: kill delays are drawn up to twice it, so
    /// that they land anywhere in a process's life, whatever the build and the
    /// machine, and about half the runs finish and are acknowledged.
    typical: [Duration; 6],
    /// Imports that a kill interrupted, to be finished by running them again.
    unfinished: Vec<ImportFile>,
    /// What the last trial did, for the failure message.
    last: String,
}

impl Store {
    fn new(seed: u64) -> Store {
        Store {
            dir: tempfile::tempdir().expect("a temp dir"),
            rng: Rng(seed),
            acked: HashSet::new(),
            batches: 0,
            typical: [
                Duration::from_millis(100),
                Duration::from_millis(100),
                Duration::from_millis(120),
                Duration::from_millis(400),
                Duration::from_millis(200),
                Duration::from_millis(150),
            ],
            unfinished: Vec::new(),
            last: String::new(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn learn(&mut self, phase: Phase, took: Duration) {
        let t = &mut self.typical[phase.index()];
        *t = (*t * 3 + took) / 4;
    }

    fn tag(&mut self, size: usize) -> String {
        self.batches += 1;
        format!("b{}/{size}", self.batches)
    }

    fn pick_phase(&mut self) -> Phase {
        let total: u64 = PHASES.iter().map(|p| p.weight()).sum();
        let mut n = self.rng.next() % total;
        for p in PHASES {
            if n < p.weight() {
                return p;
            }
            n -= p.weight();
        }
        unreachable!()
    }

    /// A process that ended on its own must have succeeded.
    fn finished_ok(&self, what: &str, outcome: &Outcome) -> Result<(), String> {
        if outcome.code == Some(0) {
            Ok(())
        } else {
            Err(format!(
                "`chronicle {what}` ended by itself with {:?} after {:?}: {}",
                outcome.code,
                outcome.elapsed,
                outcome.stderr.trim()
            ))
        }
    }

    /// Runs processes of `phase` until one is killed; returns the acknowledged ids.
    fn trial(&mut self, phase: Phase, totals: &Totals) -> Result<(), String> {
        loop {
            let killed = match phase {
                Phase::Serve => self.serve_trial(totals)?,
                Phase::Import => self.import_trial(totals)?,
                _ => self.process_trial(phase, totals)?,
            };
            if killed {
                return Ok(());
            }
            totals.finished.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One `append`, `append -` or `replay` process; `true` when it was killed.
    fn process_trial(&mut self, phase: Phase, totals: &Totals) -> Result<bool, String> {
        let db = self.db();
        let stream = format!("trip:c{}", self.rng.range(0, 3));
        let n = self.rng.next();
        let (args, stdin, ids): (Vec<String>, Option<String>, Vec<Uuid>) = match phase {
            Phase::Replay => (vec!["replay".into()], None, vec![]),
            Phase::Single | Phase::Open if self.rng.chance(50) || phase == Phase::Single => {
                let id = Uuid::now_v7();
                let args = vec![
                    "append".into(),
                    "--stream".into(),
                    stream,
                    "--type".into(),
                    "trip.started".into(),
                    "--occurred".into(),
                    "2025-01-05".into(),
                    "--id".into(),
                    id.to_string(),
                    "--tag".into(),
                    format!("single-{n}"),
                ];
                (args, None, vec![id])
            }
            _ => {
                let size = usize::try_from(self.rng.range(2, 40)).unwrap();
                let tag = self.tag(size);
                let events: Vec<Value> = (0..size as u64)
                    .map(|i| event(Uuid::now_v7(), &stream, &tag, n.wrapping_add(i)))
                    .collect();
                let ids = ids_of(&events);
                (
                    vec!["--json".into(), "append".into(), "-".into()],
                    Some(json_lines(&events)),
                    ids,
                )
            }
        };
        // An opening kill comes within the first part of a process's life; the others
        // anywhere in it.
        let delay = if phase == Phase::Open {
            self.rng.upto(self.typical[Phase::Single.index()] / 2)
        } else {
            self.rng.upto(self.typical[phase.index()] * 2)
        };
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let outcome = run_killed_after(&db, &arg_refs, stdin.as_deref(), delay);
        self.last = format!("{} after {delay:?}: {}", phase.name(), args.join(" "));
        if outcome.killed {
            totals.kills[phase.index()].fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.finished_ok(&args.join(" "), &outcome)?;
        if phase != Phase::Open {
            self.learn(phase, outcome.elapsed);
        }
        if phase == Phase::Batch || stdin.is_some() {
            // The answer names every event: the acknowledgement is the whole batch.
            let answer: Value = serde_json::from_str(&outcome.stdout)
                .map_err(|e| format!("append --json printed no JSON ({e}): {}", outcome.stdout))?;
            let answered = answer["events"].as_array().map_or(0, Vec::len);
            if answered != ids.len() {
                return Err(format!(
                    "append acknowledged {answered} of {} events",
                    ids.len()
                ));
            }
        }
        totals.acked.fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.acked.extend(ids);
        Ok(false)
    }

    /// One `import`, of a new file or of one a kill interrupted; `true` when killed.
    fn import_trial(&mut self, totals: &Totals) -> Result<bool, String> {
        let file = if !self.unfinished.is_empty() && self.rng.chance(50) {
            self.unfinished.remove(0)
        } else {
            let size = self.rng.range(20, 150);
            let batch = usize::try_from(self.rng.range(5, 60)).unwrap();
            self.batches += 1;
            let import = self.batches;
            let n = self.rng.next();
            let mut events = Vec::new();
            for (chunk, start) in (0..size).step_by(batch).enumerate() {
                let len = (size - start).min(batch as u64);
                let tag = format!("i{import}.{chunk}/{len}");
                for i in start..start + len {
                    let stream = format!("trip:c{}", i % 4);
                    events.push(event(Uuid::now_v7(), &stream, &tag, n.wrapping_add(i)));
                }
            }
            let path = self.dir.path().join(format!("import-{import}.jsonl"));
            std::fs::write(&path, json_lines(&events)).expect("writing the import file");
            ImportFile {
                path,
                batch,
                ids: ids_of(&events),
            }
        };
        let delay = self.rng.upto(self.typical[Phase::Import.index()] * 2);
        let batch = file.batch.to_string();
        let path = file.path.to_str().expect("UTF-8 temp path").to_owned();
        let args = ["import", path.as_str(), "--batch", batch.as_str()];
        let outcome = run_killed_after(&self.db(), &args, None, delay);
        self.last = format!("import after {delay:?}: {}", args.join(" "));
        if outcome.killed {
            totals.kills[Phase::Import.index()].fetch_add(1, Ordering::Relaxed);
            self.unfinished.push(file);
            return Ok(true);
        }
        self.finished_ok(&args.join(" "), &outcome)?;
        self.learn(Phase::Import, outcome.elapsed);
        totals
            .acked
            .fetch_add(file.ids.len() as u64, Ordering::Relaxed);
        self.acked.extend(file.ids);
        Ok(false)
    }

    /// One `chronicle serve` with two clients appending over HTTP, killed at a random
    /// moment of its start or its serving; `true` when it was killed.
    fn serve_trial(&mut self, totals: &Totals) -> Result<bool, String> {
        let started = Instant::now();
        let typical = self.typical[Phase::Serve.index()];
        let delay = self.rng.upto(typical * 2 + Duration::from_millis(400));
        let mut child = command(&self.db(), &["serve", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // The first line of stdout names the URL; the reader then drains the rest.
        let stdout = child.stdout.take().expect("piped");
        let (url_tx, url_rx) = mpsc::channel::<String>();
        let url_reader = std::thread::spawn(move || {
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
            if let Some(Ok(line)) = lines.next()
                && let Some((_, url)) = line.rsplit_once(" at ")
            {
                let _ = url_tx.send(url.trim().to_owned());
            }
            lines.for_each(drop);
        });
        let err = reader(child.stderr.take().expect("piped"));
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::<Uuid>::new()));
        let problems = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut clients = Vec::new();
        let deadline = started + delay;
        let mut url_rx = Some(url_rx);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                break status;
            }
            let now = Instant::now();
            if now >= deadline {
                child.kill().expect("SIGKILL");
                break child.wait().expect("reaping the server");
            }
            if let Some(rx) = &url_rx
                && let Ok(url) = rx.try_recv()
            {
                url_rx = None;
                self.learn(Phase::Serve, started.elapsed());
                for c in 0..2u64 {
                    let seed = self.rng.next();
                    let first_batch = self.batches + 1;
                    // Each client numbers its own batches; the prefix keeps tags unique.
                    self.batches += 1_000_000;
                    let (url, stop) = (url.clone(), stop.clone());
                    let (acked, problems) = (acked.clone(), problems.clone());
                    clients.push(std::thread::spawn(move || {
                        http_client(&url, c, seed, first_batch, &stop, &acked, &problems)
                    }));
                }
            }
            std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
        };
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client thread");
        }
        let _ = url_reader.join();
        let stderr = err.join().expect("stderr reader");
        self.last = format!("serve killed after {delay:?}");
        let problems = problems.lock().unwrap().clone();
        if let Some(problem) = problems.first() {
            return Err(format!("an HTTP append failed: {problem}"));
        }
        if status.signal() != Some(9) {
            return Err(format!(
                "`chronicle serve` ended by itself with {:?}: {}",
                status.code(),
                stderr.trim()
            ));
        }
        totals.kills[Phase::Serve.index()].fetch_add(1, Ordering::Relaxed);
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        totals
            .acked
            .fetch_add(acked.len() as u64, Ordering::Relaxed);
        self.acked.extend(acked);
        Ok(true)
    }

    /// After a kill: the store opens, `verify` passes, every acknowledged event is in
    /// the log, and every batch in the log is whole and contiguous.
    fn check(&mut self, totals: &Totals) -> Result<(), String> {
        let db = self.db();
        let generating: Vec<u64> = std::fs::read_dir(&db)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".generating"))
                    .map(|e| e.metadata().map_or(0, |m| m.len()))
                    .collect()
            })
            .unwrap_or_default();
        if !generating.is_empty() {
            totals.generating_left.fetch_add(1, Ordering::Relaxed);
        }
        if generating.contains(&0) {
            totals.empty_generating_left.fetch_add(1, Ordering::Relaxed);
        }
        if !db.join("conf").exists() && self.acked.is_empty() {
            // Killed before sled wrote the store's first file: there is nothing to
            // check yet, and the next process must still be able to create the store.
            return Ok(());
        }
        let verify = command(&db, &["--json", "verify"])
            .output()
            .expect("verify runs");
        if verify.status.code() != Some(0) {
            return Err(format!(
                "`chronicle verify` exited {:?}: {}",
                verify.status.code(),
                String::from_utf8_lossy(&verify.stderr).trim()
            ));
        }
        totals.verified.fetch_add(1, Ordering::Relaxed);
        let log = command(&db, &["--json", "log"]).output().expect("log runs");
        if log.status.code() != Some(0) {
            return Err(format!(
                "`chronicle log` exited {:?}: {}",
                log.status.code(),
                String::from_utf8_lossy(&log.stderr).trim()
            ));
        }
        let mut present = HashSet::new();
        let mut batches: HashMap<String, Vec<u64>> = HashMap::new();
        for (i, line) in String::from_utf8_lossy(&log.stdout).lines().enumerate() {
            let e: Value = serde_json::from_str(line).map_err(|e| format!("log line: {e}"))?;
            let position = e["position"].as_u64().unwrap_or(0);
            if position != i as u64 + 1 {
                return Err(format!("position {position} at line {}", i + 1));
            }
            let id: Uuid = e["id"].as_str().unwrap_or("").parse().map_err(|_| "id")?;
            if !present.insert(id) {
                return Err(format!("event {id} is in the log twice"));
            }
            if let Some(tag) = e["meta"]["correlation_id"].as_str() {
                batches.entry(tag.to_owned()).or_default().push(position);
            }
        }
        let lost: Vec<_> = self.acked.difference(&present).collect();
        if !lost.is_empty() {
            return Err(format!(
                "{} acknowledged events are missing, e.g. {}",
                lost.len(),
                lost[0]
            ));
        }
        totals
            .ack_checks
            .fetch_add(self.acked.len() as u64, Ordering::Relaxed);
        for (tag, positions) in &batches {
            let size: usize = tag
                .rsplit_once('/')
                .and_then(|(_, n)| n.parse().ok())
                .ok_or_else(|| format!("tag {tag}"))?;
            if positions.len() != size {
                return Err(format!(
                    "batch {tag} is partial: {} of {size} events, at {positions:?}",
                    positions.len()
                ));
            }
            if !positions.windows(2).all(|w| w[1] == w[0] + 1) {
                return Err(format!("batch {tag} is not contiguous: {positions:?}"));
            }
        }
        totals
            .batch_checks
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps the store on disk and describes it, for a failure message.
    fn keep(self) -> String {
        let path = self.dir.keep();
        let listing = list(&path.join("store"));
        format!("store kept at {} ({listing})", path.display())
    }
}

/// The files of a directory with their sizes.
fn list(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!("{} {len} B", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}

/// Appends over HTTP until told to stop or the server goes away: singles to a stream's
/// route and tagged batches to `POST /events`. An event is acknowledged by a 201.
fn http_client(
    url: &str,
    client: u64,
    seed: u64,
    first_batch: u64,
    stop: &AtomicBool,
    acked: &Mutex<Vec<Uuid>>,
    problems: &Mutex<Vec<String>>,
) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent();
    let mut rng = Rng(seed);
    let mut batch = first_batch;
    while !stop.load(Ordering::Relaxed) {
        let stream = format!("trip:h{client}");
        let size = if rng.chance(50) { 1 } else { rng.range(2, 30) };
        let tag = format!("h{batch}/{size}");
        batch += 1;
        let events: Vec<Value> = (0..size)
            .map(|i| event(Uuid::now_v7(), &stream, &tag, rng.next().wrapping_add(i)))
            .collect();
        let ids = ids_of(&events);
        let response = if size == 1 {
            agent
                .post(format!("{url}/streams/{stream}/events"))
                .header("Content-Type", "application/json")
                .send(events[0].to_string())
        } else {
            agent
                .post(format!("{url}/events"))
                .header("Content-Type", "application/json")
                .send(Value::Array(events).to_string())
        };
        match response {
            Ok(r) if r.status().as_u16() == 201 => {
                acked.lock().unwrap().extend(ids);
            }
            Ok(mut r) => {
                let status = r.status();
                let body = r.body_mut().read_to_string().unwrap_or_default();
                problems
                    .lock()
                    .unwrap()
                    .push(format!("status {status}: {body}"));
                return;
            }
            // The server was killed: the connection is gone.
            Err(_) => return,
        }
    }
}

/// Runs stores one after another, taking kills from the shared budget, until the
/// budget is spent or too many checks failed.
fn worker(seed: u64, budget: &AtomicI64, totals: &Totals) {
    let mut rng = Rng(seed);
    while budget.load(Ordering::Relaxed) > 0 && totals.failed() < MAX_FAILURES {
        totals.stores.fetch_add(1, Ordering::Relaxed);
        let mut store = Store::new(rng.next());
        for kill in 0..KILLS_PER_STORE {
            if store.acked.len() >= EVENTS_PER_STORE {
                break;
            }
            if budget.fetch_sub(1, Ordering::Relaxed) <= 0 || totals.failed() >= MAX_FAILURES {
                return;
            }
            // A new store's first process is killed as it creates the store; until
            // a store exists, only appends (which create it) make sense.
            let phase = if kill == 0 {
                Phase::Open
            } else if !store.db().join("conf").exists() {
                Phase::Single
            } else {
                store.pick_phase()
            };
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let started = Instant::now();
            let result = store.trial(phase, totals).and_then(|()| {
                let killed = Instant::now();
                totals
                    .trial_ms
                    .fetch_add(ms(killed - started), Ordering::Relaxed);
                let checked = store.check(totals);
                totals
                    .check_ms
                    .fetch_add(ms(killed.elapsed()), Ordering::Relaxed);
                checked
            });
            if let Err(problem) = result {
                let kills: u64 = totals.kills.iter().map(|k| k.load(Ordering::Relaxed)).sum();
                let last = store.last.clone();
                let kept = store.keep();
                totals.failures.lock().unwrap().push(format!(
                    "after kill {} of the run ({kill} of this store; last: {last}): {problem}; {kept}",
                    kills
                ));
                break;
            }
        }
    }
}

#[test]
fn kill_9_at_random_moments_of_every_phase() {
    let kills = env_number("CHRONICLE_KILLS", 200);
    let threads = env_number("CHRONICLE_KILL_THREADS", 2).max(1);
    let seed = env_number(
        "CHRONICLE_KILL_SEED",
        u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        ),
    );
    let budget = AtomicI64::new(i64::try_from(kills).unwrap());
    let totals = Totals::default();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (budget, totals) = (&budget, &totals);
            scope.spawn(move || {
                worker(
                    seed.wrapping_add(t.wrapping_mul(0x1234_5678_9ABC)),
                    budget,
                    totals,
                )
            });
        }
    });
    let per_phase: Vec<String> = PHASES
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.name(),
                totals.kills[p.index()].load(Ordering::Relaxed)
            )
        })
        .collect();
    let done: u64 = totals.kills.iter().map(|k| k.load(Ordering::Relaxed)).sum();
    let failures = totals.failures.lock().unwrap().clone();
    let summary = format!(
        "crash test: {done} kills -9 in {:.0?} ({threads} threads, seed {seed}, {} stores): {}; \
         {} runs finished before their kill, all exit 0; {} acknowledged events, {} presence checks after kills, all present; \
         {} batch checks, none partial; verify passed {} times; {} kills left a snap.*.generating file ({} an empty one); {} s in trials, {} s in checks; {} failures",
        started.elapsed(),
        totals.stores.load(Ordering::Relaxed),
        per_phase.join(", "),
        totals.finished.load(Ordering::Relaxed),
        totals.acked.load(Ordering::Relaxed),
        totals.ack_checks.load(Ordering::Relaxed),
        totals.batch_checks.load(Ordering::Relaxed),
        totals.verified.load(Ordering::Relaxed),
        totals.generating_left.load(Ordering::Relaxed),
        totals.empty_generating_left.load(Ordering::Relaxed),
        totals.trial_ms.load(Ordering::Relaxed) / 1000,
        totals.check_ms.load(Ordering::Relaxed) / 1000,
        failures.len(),
    );
    // Past the harness's capture, so that the CI log shows it on success too.
    let _ = writeln!(std::io::stderr(), "{summary}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(done >= kills, "only {done} of {kills} kills were made");
    assert!(
        totals.acked.load(Ordering::Relaxed) > 0,
        "no append was ever acknowledged: the kills came too early"
    );
}

/// The store's files after seeding it with `n` events through the binary and closing it.
fn seeded_store(n: usize) -> (Chronicle, Vec<Value>) {
    let c = Chronicle::new();
    let events: Vec<Value> = (0..n)
        .map(|i| event(Uuid::now_v7(), "trip:seed", &format!("s{i}/1"), i as u64))
        .collect();
    c.append(&events).ok();
    // A second open writes a snapshot of the whole log.
    c.run(&["stats"]).ok();
    (c, events)
}

/// The real snapshot sled wrote, `snap.<lsn>`.
fn real_snapshot(db: &Path) -> (PathBuf, u64) {
    std::fs::read_dir(db)
        .unwrap()
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let lsn = name.strip_prefix("snap.")?;
            let lsn = u64::from_str_radix(lsn, 16).ok()?;
            Some((e.path(), lsn))
        })
        .expect("sled wrote a snapshot")
}

fn assert_every_event_readable(c: &Chronicle, events: &[Value]) {
    let log = c.log();
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected, "every event, in order");
    c.run(&["verify"]).ok();
    // And the store still takes appends.
    c.append(&[common::trip_started("trip:after")]).ok();
}

#[test]
fn an_empty_unfinished_snapshot_does_not_stop_the_store_opening() {
    let (c, events) = seeded_store(30);
    std::fs::write(c.db().join("snap.00000000FFFFFFFF.generating"), b"").unwrap();
    assert_every_event_readable(&c, &events);
}

#[test]
fn a_torn_unfinished_snapshot_with_a_higher_lsn_does_not_stop_the_store_opening() {
    let (c, events) = seeded_store(30);
    let (snap, lsn) = real_snapshot(&c.db());
    let bytes = std::fs::read(&snap).unwrap();
    assert!(bytes.len() > 24, "a real snapshot has content");
    let torn = c
        .db()
        .join(format!("snap.{:016X}.generating", lsn + 1_000_000));
    std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
    assert_every_event_readable(&c, &events);
}
