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
//! # single appends on stores that already hold 1,000,000 events (the benchmark's W1),
//! # and by 16 writers (W2); --keep reuses the stores the first command built
//! cargo run --release --example appends -- --dir target/appends --base 1000000 --events 12000 --rounds 3
//! cargo run --release --example appends -- --dir target/appends --base 1000000 --keep --events 48000 --rounds 3 --writers 16
//! ```
//!
//! Prints events/s, p50 and p99 per append for each, and each one's ratio to raw sled.
//! The three stores share this process, and so sled's one lock per process: after each
//! chronicle store's share of a round, its views catch up before the next store appends.
//! EVENTS/S leaves that catch-up out (the appends as acknowledged); CAUGHT UP counts it
//! in (the appends and the views that fold them).

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

/// The allocator of the `chronicle` binary and of the benchmark (`chronicle::alloc`).
/// (This probe used the system allocator before; its figures in
/// docs/performance-history.md up to "W2's rounds, and 16 writers with the views
/// following" were measured so.)
#[global_allocator]
static ALLOCATOR: chronicle::alloc::Allocator = chronicle::alloc::Allocator;

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
    /// Threads appending side by side, each to its own trips (the benchmark's W2 with
    /// 16); events/s is then the events over each round's wall time.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Events of the generated log each store holds before the timed appends (built in
    /// untimed batches of 1,000, as the benchmark's W3 builds its stores); 0 starts
    /// each store with the people only.
    #[arg(long, default_value_t = 0)]
    base: u64,
    /// Reuses the stores a run with the same `--base` left in `--dir` (their timed
    /// appends are made on new trips), instead of building them again.
    #[arg(long)]
    keep: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let people = if args.base == 0 {
        200
    } else {
        payload::people_for(args.base)
    };
    let systems = ["chronicle", "chronicle, no projections", "raw sled"];
    let mut logs = Vec::new();
    for (n, name) in systems.iter().enumerate() {
        let dir = args.dir.join(n.to_string());
        let kept = args.keep && dir.exists();
        if !kept {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
        }
        let log = match n {
            0 => Log::open(System::Chronicle, &dir)?,
            1 => Log::Chronicle(SledStore::open_with(&dir, Runner::new(vec![]))?),
            _ => Log::open(System::Sled, &dir)?,
        };
        let mut writer = log.writer()?;
        if kept {
            // Nothing to build.
        } else if args.base == 0 {
            let registrations = payload::registrations(people).into_iter();
            writer.append_owned(registrations.map(Payload::new).collect())?;
        }
        let mut base = payload::log(if kept { 0 } else { args.base }).peekable();
        while base.peek().is_some() {
            writer.append_owned(base.by_ref().take(1000).map(Payload::new).collect())?;
        }
        drop(writer);
        if let Log::Chronicle(store) = &log {
            store.live_views()?;
        }
        eprintln!("{name}: {}", dir.display());
        logs.push(log);
    }
    let per_round = args.events / args.rounds;
    let trips = args.events as u64 / payload::EVENTS_PER_TRIP + 1;
    // New trips on every run, so that a kept store takes them too.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let first_trip = 2_000_000_000 + run.as_secs() % 100_000 * 10_000;
    // Writer w appends trips first_trip + w + writers·k, its own streams.
    let mut per_writer: Vec<Vec<Payload>> = (0..args.writers).map(|_| Vec::new()).collect();
    for (i, p) in systems::trips(people, 1, first_trip, trips * args.writers as u64)
        .into_iter()
        .enumerate()
    {
        let trip = i as u64 / payload::EVENTS_PER_TRIP;
        per_writer[(trip % args.writers as u64) as usize].push(p);
    }
    let per_round = per_round / args.writers;
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); logs.len()];
    let mut walls: Vec<f64> = vec![0.0; logs.len()];
    let mut caught_up: Vec<f64> = vec![0.0; logs.len()];
    for round in 0..args.rounds {
        for (s, log) in logs.iter().enumerate() {
            // Each store gets its own copy of the round's events, made before the clock
            // starts (parsing them in the writers' threads took the cores the appends use).
            let owned: Vec<Vec<Vec<Payload>>> = per_writer
                .iter()
                .map(|events| {
                    events[round * per_round..(round + 1) * per_round]
                        .chunks(args.batch)
                        .map(|batch| {
                            batch
                                .iter()
                                .map(|p| {
                                    Payload::new(serde_json::from_slice(&p.json).expect("JSON"))
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let barrier = std::sync::Barrier::new(args.writers + 1);
            let mut started = Instant::now();
            let timed = std::thread::scope(|scope| -> Result<Vec<f64>> {
                let threads: Vec<_> = owned
                    .into_iter()
                    .map(|batches| {
                        let mut writer = log.writer()?;
                        let barrier = &barrier;
                        Ok(scope.spawn(move || -> Result<Vec<f64>> {
                            let mut latencies = Vec::new();
                            barrier.wait();
                            for batch in batches {
                                let t = Instant::now();
                                writer.append_owned(batch)?;
                                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                            Ok(latencies)
                        }))
                    })
                    .collect::<Result<_>>()?;
                barrier.wait();
                started = Instant::now();
                let mut all = Vec::new();
                for t in threads {
                    all.extend(t.join().expect("a writer thread panicked")?);
                }
                Ok(all)
            })?;
            walls[s] += started.elapsed().as_secs_f64();
            latencies[s].extend(timed);
            // sled 0.34.7 has one lock for every tree of a process: a projector still
            // folding would hold up the next store's batches. Its views catch up here,
            // timed apart: the rate "caught up" counts it in.
            if let Log::Chronicle(store) = log {
                store.live_views()?;
            }
            caught_up[s] += started.elapsed().as_secs_f64();
        }
    }
    let rates: Vec<f64> = latencies
        .iter()
        .zip(&walls)
        .map(|(l, wall)| match args.writers {
            1 => (l.len() * args.batch) as f64 / (l.iter().sum::<f64>() / 1000.0),
            _ => (l.len() * args.batch) as f64 / wall,
        })
        .collect();
    let sled = rates[2];
    println!(
        "{:<26} {:>10} {:>9} {:>9} {:>8} {:>10}",
        "SYSTEM", "EVENTS/S", "P50 MS", "P99 MS", "÷ SLED", "CAUGHT UP"
    );
    for (((name, l), rate), caught_up) in
        systems.iter().zip(&mut latencies).zip(rates).zip(caught_up)
    {
        l.sort_by(f64::total_cmp);
        println!(
            "{name:<26} {:>10.0} {:>9.3} {:>9.3} {:>7.2}× {:>10.0}",
            rate,
            l[l.len() / 2],
            l[l.len() * 99 / 100],
            rate / sled,
            (l.len() * args.batch) as f64 / caught_up,
        );
    }
    Ok(())
}
