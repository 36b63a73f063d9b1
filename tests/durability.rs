//! The store under concurrency and crashes: gapless positions and versions with many
//! writers, and every acknowledged append surviving `kill -9`.

use chronicle::model::{Origin, ProposedEvent, parse_event_value};
use chronicle::store::{EventStore, ReadFilter, SledStore};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn event(stream: &str, id: Uuid) -> ProposedEvent {
    batch_event(stream, id, "single/1")
}

/// An event that names its batch in `meta.correlation_id`, so that a reader of the log
/// can tell whether a batch is whole.
fn batch_event(stream: &str, id: Uuid, batch: &str) -> ProposedEvent {
    parse_event_value(
        json!({"id": id, "stream": stream, "type": "trip.started", "occurred": "2025-01-05", "data": {},
               "meta": {"correlation_id": batch}}),
        Origin::New,
    )
    .expect("a valid event")
}

/// Checks positions 1..=n with no gaps, versions 1..=k per stream, and the hash chain.
fn assert_log_is_sound(store: &SledStore) -> Vec<chronicle::model::RecordedEvent> {
    let events: Vec<_> = store
        .read(&ReadFilter::default())
        .collect::<Result<_, _>>()
        .unwrap();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut previous = [0u8; 32];
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position.0, i as u64 + 1, "positions have no gaps");
        let v = versions.entry(e.stream.to_string()).or_default();
        *v += 1;
        assert_eq!(e.version.0, *v, "versions of {} have no gaps", e.stream);
        assert_eq!(
            e.chain_hash(&previous),
            e.hash,
            "the chain holds at {}",
            e.position
        );
        previous = chronicle::model::event::parse_hash(&e.hash).unwrap();
    }
    assert_eq!(store.head().unwrap().position.0, events.len() as u64);
    events
}

#[test]
fn eight_threads_appending_get_gapless_positions_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    // Half the threads share one stream, so versions interleave.
                    let stream = if t % 2 == 0 {
                        "trip:shared".to_owned()
                    } else {
                        format!("trip:own-{t}")
                    };
                    let batch: Vec<_> = (0..=(i % 3))
                        .map(|_| event(&stream, Uuid::now_v7()))
                        .collect();
                    store.append(batch).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let events = assert_log_is_sound(&store);
    assert_eq!(events.len(), 8 * (34 + 33 * 2 + 33 * 3));
    drop(store);
    let reopened = SledStore::open(dir.path()).unwrap();
    assert_log_is_sound(&reopened);
}

/// The child side of the crash test: appends forever from several threads, printing
/// each id once its append is acknowledged.
fn run_appending_child(path: &Path) -> ! {
    let store = SledStore::open(path).expect("the child opens the store");
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let n = if i % 5 == 0 { 20 } else { 1 };
                    let tag = format!("{}/{n}", Uuid::now_v7());
                    let batch: Vec<_> = (0..n)
                        .map(|_| batch_event(&format!("trip:w{t}"), Uuid::now_v7(), &tag))
                        .collect();
                    let ids: Vec<_> = batch.iter().map(|e| e.id.unwrap()).collect();
                    store.append(batch).expect("append");
                    let mut out = out.lock().unwrap();
                    let line: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
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

#[test]
fn crash_child() {
    // Only does something when the crash test starts this binary as its child.
    if let Ok(path) = std::env::var("CHRONICLE_CRASH_CHILD") {
        run_appending_child(Path::new(&path));
    }
}

/// Starts the child, lets it append for a while, kills it with SIGKILL, and returns the
/// batches it acknowledged.
fn append_then_kill(path: &Path, run_for: Duration) -> Vec<Vec<Uuid>> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CHRONICLE_CRASH_CHILD", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let ids: Result<Vec<Uuid>, _> = line.split(' ').map(|s| s.parse()).collect();
            // The test harness prints its own lines; only whole id lines are acks.
            if let Ok(ids) = ids {
                acked.push(ids);
            }
        }
        acked
    });
    std::thread::sleep(run_for);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn acknowledged_appends_survive_kill_9() {
    let cycles: usize = std::env::var("CHRONICLE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let mut all_acked: HashSet<Uuid> = HashSet::new();
    let start = Instant::now();
    for cycle in 0..cycles {
        // Vary the moment of the kill: some land mid-flush, some right after an ack, and
        // every third cycle kills the child again almost at once, while it reopens the
        // store that the previous kill left behind and makes its first appends.
        let run_for = if cycle % 3 == 2 {
            Duration::from_millis(5 + (cycle as u64 * 13) % 40)
        } else {
            Duration::from_millis(150 + (cycle as u64 * 37) % 250)
        };
        let batches = append_then_kill(dir.path(), run_for);
        let store = SledStore::open(dir.path()).expect("the store reopens after kill -9");
        let events = assert_log_is_sound(&store);
        let report = store.verify(&mut |_, _| {}).unwrap();
        assert_eq!(report.problem, None, "cycle {cycle}: verify after kill -9");
        let present: HashMap<Uuid, u64> = events.iter().map(|e| (e.id, e.position.0)).collect();
        for batch in &batches {
            for id in batch {
                assert!(
                    present.contains_key(id),
                    "cycle {cycle}: acknowledged {id} was lost"
                );
            }
        }
        all_acked.extend(batches.iter().flatten());
        for id in &all_acked {
            assert!(
                present.contains_key(id),
                "cycle {cycle}: an earlier ack {id} was lost"
            );
        }
        // No partial batch: every batch in the log is whole and at consecutive positions.
        let mut batches_in_log: HashMap<String, Vec<u64>> = HashMap::new();
        for e in &events {
            let tag = e
                .meta
                .as_ref()
                .and_then(|m| m.correlation_id.clone())
                .unwrap();
            batches_in_log.entry(tag).or_default().push(e.position.0);
        }
        for (tag, positions) in batches_in_log {
            let Some((_, size)) = tag.split_once('/') else {
                continue;
            };
            assert_eq!(
                positions.len().to_string(),
                size,
                "cycle {cycle}: batch {tag} is partial"
            );
            assert!(
                positions.windows(2).all(|w| w[1] == w[0] + 1),
                "batch {tag} is not contiguous"
            );
        }
        drop(store);
    }
    assert!(!all_acked.is_empty(), "the child acknowledged appends");
    eprintln!(
        "{cycles} kill -9 cycles, {} acknowledged events, {:?}",
        all_acked.len(),
        start.elapsed()
    );
}
