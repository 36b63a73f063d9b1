//! Durable appends side by side, to see where an append's time goes: chronicle, chronicle
//! with no projections (its log alone, the projector idle), and raw sled writing the
//! log's keys with the same flush and `fdatasync` (the benchmark's baseline), each on a
//! fresh store, alternating in rounds so that the machine's noise spreads over all.
//!
//! ```sh
//! # single appends (the benchmark's W1), 1,200 per store in 6 rounds
//! cargo run --release --example appends -- --dir target/appends
//! # batches of 1,000 (W3)
//! cargo run --release --example appends -- --dir target/appends --events 60000 --batch 1000 --rounds 3
//! ```
//!
//! Prints events/s, p50 and p99 per append for each, and each one's ratio to raw sled.
//! The three stores share this process, and so sled's one lock per process: after each
//! chronicle store's share of a round, its views catch up (untimed) before the next
//! store appends.

#[path = "common/payload.rs"]
mod payload;
#[path = "bench/systems.rs"]
#[allow(dead_code)]
mod systems;

use anyhow::Result;
use chronicle::projection::runner::Runner;
use chronicle::store::SledStore;
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;
use systems::{Log, Payload, System};

#[derive(Parser)]
struct Args {
    /// Where the stores are made (on the disk to measure); emptied first.
    #[arg(long, default_value = "target/appends")]
    dir: PathBuf,
    /// Events appended to each store.
    #[arg(long, default_value_t = 1200)]
    events: usize,
    /// Events per append.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 6)]
    rounds: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let people = 200;
    let registrations: Vec<Payload> = payload::registrations(people)
        .into_iter()
        .map(Payload::new)
        .collect();
    let systems = ["chronicle", "chronicle, no projections", "raw sled"];
    let mut logs = Vec::new();
    for (n, name) in systems.iter().enumerate() {
        let dir = args.dir.join(n.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let log = match n {
            0 => Log::open(System::Chronicle, &dir)?,
            1 => Log::Chronicle(SledStore::open_with(&dir, Runner::new(vec![]))?),
            _ => Log::open(System::Sled, &dir)?,
        };
        log.writer()?.append(&registrations)?;
        eprintln!("{name}: {}", dir.display());
        logs.push(log);
    }
    let per_round = args.events / args.rounds;
    let trips = args.events as u64 / payload::EVENTS_PER_TRIP + 1;
    let events = systems::trips(people, 1, 2_000_000_000, trips);
    let mut writers: Vec<_> = logs.iter().map(|l| l.writer()).collect::<Result<_>>()?;
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); logs.len()];
    for round in 0..args.rounds {
        for ((writer, latencies), log) in writers.iter_mut().zip(&mut latencies).zip(&logs) {
            let chunk = &events[round * per_round..(round + 1) * per_round];
            for batch in chunk.chunks(args.batch) {
                // Each store gets its own copy, made before the clock starts.
                let owned = batch
                    .iter()
                    .map(|p| Payload::new(serde_json::from_slice(&p.json).expect("JSON")))
                    .collect();
                let t = Instant::now();
                writer.append_owned(owned)?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            // sled 0.34.7 has one lock for every tree of a process: a projector still
            // folding would hold up the next store's batches. Its views catch up here,
            // untimed, as the benchmark's W3 leaves them behind when its build ends.
            if let Log::Chronicle(store) = log {
                store.live_views()?;
            }
        }
    }
    let rate = |l: &[f64]| (l.len() * args.batch) as f64 / (l.iter().sum::<f64>() / 1000.0);
    let sled = rate(&latencies[2]);
    println!(
        "{:<26} {:>10} {:>9} {:>9} {:>8}",
        "SYSTEM", "EVENTS/S", "P50 MS", "P99 MS", "÷ SLED"
    );
    for (name, l) in systems.iter().zip(&mut latencies) {
        l.sort_by(f64::total_cmp);
        println!(
            "{name:<26} {:>10.0} {:>9.3} {:>9.3} {:>7.2}×",
            rate(l),
            l[l.len() / 2],
            l[l.len() * 99 / 100],
            rate(l) / sled
        );
    }
    Ok(())
}
