//! Benchmarks chronicle side by side with what a user would pick instead, in the same
//! run and on the same payloads (issue 5):
//!
//! - raw sled doing the minimum each workload needs (key = position, value = the
//!   event's JSON; `flush()` for durability): the storage engine's limit;
//! - SQLite (bundled, through rusqlite) as an event table with chronicle's guarantees:
//!   WAL, `synchronous=FULL`, `UNIQUE(stream, version)`, `UNIQUE(id)`.
//!
//! Workloads: W1 single durable appends from one writer; W2 the same from 16 writers on
//! different streams; W3 batches of 1,000; W4 replay (chronicle rebuilds every
//! projection, the baselines scan and parse every event); W5 `trip show` and a 50-entry
//! entity timeline; W6 open time (clean, and after `kill -9` of an appending process),
//! disk per event and peak memory. Builds, replays and opens run in child processes
//! (this program run again with `--child`), so that each starts cold and its peak
//! memory (`VmHWM`) is its own.
//!
//! ```sh
//! cargo run --release --example bench -- --events 100000,1000000 --json bench.json
//! cargo run --release --example bench -- --quick
//! ```

#[path = "../common/payload.rs"]
mod payload;
mod report;
mod systems;

use anyhow::{Context, Result, bail};
use clap::Parser;
use report::{Row, median, number, percentile};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use systems::{Log, Payload, Reader, SYSTEMS, System};

/// Benchmark chronicle against raw sled and SQLite.
#[derive(Parser)]
struct Args {
    /// Log sizes to measure, comma-separated [default: 100000,1000000; 3000 with --quick]
    #[arg(long, value_delimiter = ',')]
    events: Vec<u64>,
    /// Small logs and few iterations: a smoke test that finishes in seconds (CI).
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the stores are made (on the disk to measure; not a tmpfs)
    /// [default: target/bench-data].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the stores afterwards.
    #[arg(long)]
    keep: bool,
    /// Internal: run one measurement in this process (build, replay, open, loop).
    #[arg(long, hide = true)]
    child: Option<String>,
    #[arg(long, hide = true)]
    system: Option<String>,
    #[arg(long, hide = true)]
    seed: Option<u64>,
}

/// How much of each workload to run.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    sizes: Vec<u64>,
    /// W1: single appends per system.
    w1_appends: usize,
    /// W2: concurrent writers, and appends per writer.
    w2_writers: usize,
    w2_appends_per_writer: usize,
    /// W1, W2 and W5 alternate between the systems in this many rounds, so that noise
    /// on the shared machine spreads over all of them.
    rounds: usize,
    /// W5: queries of each kind.
    queries: usize,
    /// W6: clean opens (the first replays what the build wrote; later ones start from
    /// the snapshot sled writes on open), and kill -9 cycles, per system; how long the
    /// child appends before it is killed.
    opens: usize,
    kills: usize,
    kill_after_ms: u64,
}

impl Settings {
    fn new(args: &Args) -> Settings {
        let quick = args.quick;
        let sizes = if !args.events.is_empty() {
            args.events.clone()
        } else if quick {
            vec![3000]
        } else {
            vec![100_000, 1_000_000]
        };
        Settings {
            sizes,
            w1_appends: if quick { 60 } else { 1200 },
            w2_writers: 16,
            w2_appends_per_writer: if quick { 9 } else { 126 },
            rounds: if quick { 2 } else { 6 },
            queries: if quick { 100 } else { 1000 },
            opens: if quick { 2 } else { 4 },
            kills: if quick { 1 } else { 3 },
            kill_after_ms: if quick { 300 } else { 1500 },
        }
    }
}

/// First trip numbers of the events appended after a store is built. Multiples of
/// `NOTE_STREAMS`, so that W2's writers (trips `first + w + 16k`) never share a note
/// stream, and far above any built store's trips.
const W1_FIRST_TRIP: u64 = 2_000_000_000;
const W2_FIRST_TRIP: u64 = 3_000_000_000;
const KILL_FIRST_TRIP: u64 = 4_000_000_000;

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(mode) = &args.child {
        return child(mode, &args);
    }
    let settings = Settings::new(&args);
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    std::fs::create_dir_all(&root)?;
    let started = Instant::now();

    let machine = machine();
    let disk = disk_probe(&root, if args.quick { 20 } else { 200 })?;
    println!(
        "chronicle benchmark: {} CPUs ({}), kernel {}; stores in {}",
        machine["cpus"],
        machine["cpu"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
        root.display()
    );
    println!(
        "disk: 4 KiB write + fdatasync p50 {} ms, p99 {} ms",
        number(disk.0),
        number(disk.1)
    );

    let mut runs = Vec::new();
    for &n in &settings.sizes {
        let run = run_size(&root, n, &settings)?;
        runs.push(run);
        if !args.keep {
            for s in SYSTEMS {
                let _ = std::fs::remove_dir_all(s.dir(&root, n));
            }
        }
    }
    let growth = growth(&runs);
    if !growth.is_empty() {
        println!("\n== Growth ==\n");
        print!("{}", growth_table(&growth, &settings.sizes));
    }
    println!("{}", legend());
    println!("total time {:.0} s", started.elapsed().as_secs_f64());

    if let Some(path) = &args.json {
        let report = json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "machine": machine,
            "disk": {"fdatasync_4k_p50_ms": disk.0, "fdatasync_4k_p99_ms": disk.1},
            "settings": settings,
            "durability": {
                "sfr": "acknowledged after sled's flush(): the written log range is on the device (sync_file_range WAIT_BEFORE|WRITE|WAIT_AFTER), no fsync. Survives kill -9, not necessarily a power cut.",
                "fsync": "acknowledged after an fsync: chronicle's fdatasync of sled's file after sled's flush; SQLite's fsync of its WAL (synchronous=FULL)",
                "none": "not an acknowledged write",
            },
            "runs": runs,
            "growth": growth,
            "seconds": started.elapsed().as_secs_f64(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn legend() -> &'static str {
    "
(sfr) acknowledged after sled's flush(): the log range written is on the device
      (sync_file_range), but no fsync: file metadata and the device's cache may not
      be. Survives kill -9, not necessarily a power cut.
(fsync) acknowledged after an fsync: chronicle fdatasyncs sled's file after sled's
      flush; SQLite fsyncs its write-ahead log (synchronous=FULL).
Ratios are chronicle ÷ baseline: above 1 is better for events/s, below 1 for times,
sizes and memory. Latencies are per append call (per query for W5)."
}

/// Everything measured at one log size.
#[derive(Serialize)]
struct Run {
    events: u64,
    input_json_bytes_mean: f64,
    stored_json_bytes_mean: f64,
    rows: Vec<Row>,
    seconds: f64,
}

fn run_size(root: &Path, n: u64, settings: &Settings) -> Result<Run> {
    let started = Instant::now();
    println!("\n== N = {} events ==", number(n as f64));
    for s in SYSTEMS {
        let dir = s.dir(root, n);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let mut rows = Vec::new();
    let people = payload::people_for(n);

    // W3, and the stores every later workload reads.
    let mut builds = Vec::new();
    for s in SYSTEMS {
        eprint!("  building {} ({} events)… ", s.name(), n);
        let b = spawn_child("build", s, &s.dir(root, n), n, None)?;
        eprintln!("{:.1} s", b["seconds"].as_f64().unwrap_or(0.0));
        builds.push(b);
    }
    let input_bytes = builds[0]["input_bytes"].as_f64().unwrap_or(0.0) / n as f64;
    let w3: Vec<_> = builds
        .iter()
        .zip(SYSTEMS)
        .map(|(b, s)| {
            Some((
                n as f64 / b["seconds"].as_f64().unwrap_or(f64::NAN),
                s.durability(),
            ))
        })
        .collect();
    let row = Row::new(
        "W3",
        "appends in batches of 1,000",
        "events/s",
        [w3[0], w3[1], w3[2]],
    );
    let met = row.chronicle_over_sled.is_some_and(|r| r >= 0.7)
        && row.chronicle_over_sqlite.is_some_and(|r| r >= 1.0);
    rows.push(row.target("≥0.7× sled, ≥1× SQLite", met));

    let sizes: Vec<f64> = SYSTEMS
        .iter()
        .map(|s| systems::dir_size(&s.dir(root, n)).map(|b| b as f64 / n as f64))
        .collect::<Result<_>>()?;

    // W6: open time, clean.
    let mut first_open = Vec::new();
    let mut opens = Vec::new();
    for s in SYSTEMS {
        let mut times = Vec::new();
        for _ in 0..settings.opens {
            let o = spawn_child("open", s, &s.dir(root, n), n, None)?;
            times.push(o["seconds"].as_f64().unwrap_or(f64::NAN) * 1000.0);
        }
        first_open.push(times[0]);
        opens.push(median(&times[1..]));
    }

    // W4: replay.
    let mut replays = Vec::new();
    for s in SYSTEMS {
        eprint!("  replaying {}… ", s.name());
        let r = spawn_child("replay", s, &s.dir(root, n), n, None)?;
        eprintln!("{:.1} s", r["seconds"].as_f64().unwrap_or(0.0));
        replays.push(r);
    }
    let stored_bytes = replays[0]["stored_bytes_mean"].as_f64().unwrap_or(f64::NAN);
    let w4: Vec<_> = replays
        .iter()
        .map(|r| {
            let events = r["events"].as_f64().unwrap_or(f64::NAN);
            Some((events / r["seconds"].as_f64().unwrap_or(f64::NAN), "none"))
        })
        .collect();
    let row = Row::new(
        "W4",
        "replay: rebuild all projections (baselines: scan + parse)",
        "events/s",
        [w4[0], w4[1], w4[2]],
    );
    let met = row.chronicle_over_sled.is_some_and(|r| r >= 0.5);
    rows.push(row.target("≥0.5× sled", met));
    // What the rebuild costs without writing its documents: the fold an as-of query
    // at the head does, in memory.
    eprint!("  folding chronicle in memory… ");
    let fold = spawn_child(
        "fold",
        System::Chronicle,
        &System::Chronicle.dir(root, n),
        n,
        None,
    )?;
    eprintln!("{:.1} s", fold["seconds"].as_f64().unwrap_or(0.0));
    let fold_rate =
        fold["events"].as_f64().unwrap_or(f64::NAN) / fold["seconds"].as_f64().unwrap_or(f64::NAN);
    rows.push(Row::new(
        "W4",
        "fold in memory, no writes (as-of the head)",
        "events/s",
        [Some((fold_rate, "none")), w4[1], w4[2]],
    ));

    // W5, W1, W2 on the stores, opened here.
    eprintln!("  queries and single appends…");
    let logs: Vec<Log> = SYSTEMS
        .iter()
        .map(|s| Log::open(*s, &s.dir(root, n)))
        .collect::<Result<_>>()?;
    rows.extend(queries(&logs, n, people, settings)?);
    let (w1_rows, w1_chronicle_rate) = single_appends(&logs, people, settings)?;
    rows.extend(w1_rows);
    rows.extend(concurrent_appends(
        &logs,
        people,
        settings,
        w1_chronicle_rate,
    )?);
    drop(logs);

    // W6: open after kill -9 of a process that was appending.
    let mut killed = Vec::new();
    for s in [System::Chronicle, System::Sled] {
        let mut times = Vec::new();
        for cycle in 0..settings.kills {
            let dir = s.dir(root, n);
            kill_while_appending(s, &dir, n, cycle as u64, settings.kill_after_ms)?;
            let o = spawn_child("open", s, &dir, n, None)?;
            times.push(o["seconds"].as_f64().unwrap_or(f64::NAN) * 1000.0);
        }
        killed.push(median(&times));
    }

    let ms = |v: f64| Some((v, "none"));
    let row = Row::new(
        "W6",
        "open, first after the build (replays the whole log)",
        "ms",
        [ms(first_open[0]), ms(first_open[1]), ms(first_open[2])],
    );
    let met = first_open[0] < 1000.0;
    rows.push(row.target("<1 s", met));
    let row = Row::new(
        "W6",
        "open, clean shutdown, later opens",
        "ms",
        [ms(opens[0]), ms(opens[1]), ms(opens[2])],
    );
    let met = opens[0] < 1000.0;
    rows.push(row.target("<1 s", met));
    let row = Row::new(
        "W6",
        "open after kill -9 while appending",
        "ms",
        [ms(killed[0]), ms(killed[1]), None],
    );
    let met = killed[0] < 1000.0;
    rows.push(row.target("<1 s", met));
    let bytes = |v: f64| Some((v, "none"));
    rows.push(Row::new(
        "W6",
        "disk per event after the build",
        "bytes",
        [bytes(sizes[0]), bytes(sizes[1]), bytes(sizes[2])],
    ));
    let ratio = |v: f64| Some((v / input_bytes, "none"));
    let row = Row::new(
        "W6",
        format!("disk per event ÷ input JSON ({input_bytes:.0} B)"),
        "×",
        [ratio(sizes[0]), ratio(sizes[1]), ratio(sizes[2])],
    );
    let met = sizes[0] / input_bytes <= 2.5;
    rows.push(row.target("≤2.5×", met));
    let mib = |v: &Value, key: &str| Some((v[key].as_f64().unwrap_or(f64::NAN) / 1024.0, "none"));
    rows.push(Row::new(
        "W6",
        "peak memory (VmHWM) of the build (W3)",
        "MiB",
        [
            mib(&builds[0], "vmhwm_kib"),
            mib(&builds[1], "vmhwm_kib"),
            mib(&builds[2], "vmhwm_kib"),
        ],
    ));
    rows.push(Row::new(
        "W6",
        "peak memory (VmHWM) of the replay (W4)",
        "MiB",
        [
            mib(&replays[0], "vmhwm_kib"),
            mib(&replays[1], "vmhwm_kib"),
            mib(&replays[2], "vmhwm_kib"),
        ],
    ));

    rows.push(Row::new(
        "W6",
        "peak memory (VmHWM) of the fold in memory (W4)",
        "MiB",
        [mib(&fold, "vmhwm_kib"), None, None],
    ));

    rows.sort_by_key(|r| r.workload);
    println!(
        "input JSON {input_bytes:.0} B/event, stored chronicle JSON {stored_bytes:.0} B/event\n"
    );
    print!("{}", report::table(&rows));
    Ok(Run {
        events: n,
        input_json_bytes_mean: input_bytes,
        stored_json_bytes_mean: stored_bytes,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs `job(system, round)` for every round, each round going through every system.
fn rounds<T>(
    systems: &[usize],
    rounds: usize,
    mut job: impl FnMut(usize, usize) -> Result<T>,
) -> Result<Vec<Vec<T>>> {
    let mut out: Vec<Vec<T>> = systems.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (slot, &s) in systems.iter().enumerate() {
            out[slot].push(job(s, round)?);
        }
    }
    Ok(out)
}

fn sorted_ms(samples: impl IntoIterator<Item = Duration>) -> Vec<f64> {
    let mut v: Vec<f64> = samples
        .into_iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// W1: one writer, one event per durable append.
fn single_appends(logs: &[Log], people: u64, settings: &Settings) -> Result<(Vec<Row>, f64)> {
    let per_round = settings.w1_appends.div_ceil(settings.rounds);
    let trips = (per_round * settings.rounds) as u64 / payload::EVENTS_PER_TRIP + 1;
    let events = systems::trips(people, 1, W1_FIRST_TRIP, trips);
    let mut writers: Vec<_> = logs.iter().map(|l| l.writer()).collect::<Result<_>>()?;
    let results = rounds(&[0, 1, 2], settings.rounds, |s, round| {
        let chunk = &events[round * per_round..(round + 1) * per_round];
        let mut latencies = Vec::with_capacity(chunk.len());
        for e in chunk {
            let t = Instant::now();
            writers[s].append(std::slice::from_ref(e))?;
            latencies.push(t.elapsed());
        }
        Ok(latencies)
    })?;
    let mut rate = [None; 3];
    let mut p50 = [None; 3];
    let mut p99 = [None; 3];
    for (s, per_round) in results.into_iter().enumerate() {
        let all = sorted_ms(per_round.into_iter().flatten());
        let total: f64 = all.iter().sum();
        let d = SYSTEMS[s].durability();
        rate[s] = Some((all.len() as f64 / (total / 1000.0), d));
        p50[s] = Some((percentile(&all, 50.0), d));
        p99[s] = Some((percentile(&all, 99.0), d));
    }
    let chronicle_rate = rate[0].map_or(f64::NAN, |r| r.0);
    let row = Row::new("W1", "single appends, 1 writer", "events/s", rate);
    let met = row.chronicle_over_sled.is_some_and(|r| r >= 0.9);
    Ok((
        vec![
            row.target("≥0.9× sled", met),
            Row::new("W1", "single appends, 1 writer: p50", "ms", p50),
            Row::new("W1", "single appends, 1 writer: p99", "ms", p99),
        ],
        chronicle_rate,
    ))
}

/// W2: 16 writers on different streams, one event per durable append.
fn concurrent_appends(
    logs: &[Log],
    people: u64,
    settings: &Settings,
    w1_rate: f64,
) -> Result<Vec<Row>> {
    let writers_n = settings.w2_writers;
    let per_round = settings.w2_appends_per_writer.div_ceil(settings.rounds);
    let trips_per_writer = (per_round * settings.rounds) as u64 / payload::EVENTS_PER_TRIP + 1;
    // Writer w appends trips W2_FIRST_TRIP + w + 16k: its own trip, sale and note streams.
    let mut generator = payload::Trips::new(people, 2);
    let mut per_writer: Vec<Vec<Payload>> = (0..writers_n).map(|_| Vec::new()).collect();
    for k in 0..trips_per_writer {
        for (w, events) in per_writer.iter_mut().enumerate() {
            let trip = W2_FIRST_TRIP + w as u64 + writers_n as u64 * k;
            events.extend(generator.trip(trip).into_iter().map(Payload::new));
        }
    }
    let mut writers: Vec<Vec<Box<dyn systems::Writer>>> = logs
        .iter()
        .map(|l| (0..writers_n).map(|_| l.writer()).collect::<Result<_>>())
        .collect::<Result<_>>()?;
    let results = rounds(&[0, 1, 2], settings.rounds, |s, round| {
        let barrier = std::sync::Barrier::new(writers_n + 1);
        let (latencies, wall) = std::thread::scope(|scope| -> Result<_> {
            let handles: Vec<_> = writers[s]
                .iter_mut()
                .zip(&per_writer)
                .map(|(writer, events)| {
                    let barrier = &barrier;
                    scope.spawn(move || -> Result<Vec<Duration>> {
                        let chunk = &events[round * per_round..(round + 1) * per_round];
                        let mut latencies = Vec::with_capacity(chunk.len());
                        barrier.wait();
                        for e in chunk {
                            let t = Instant::now();
                            writer.append(std::slice::from_ref(e))?;
                            latencies.push(t.elapsed());
                        }
                        Ok(latencies)
                    })
                })
                .collect();
            barrier.wait();
            let started = Instant::now();
            let mut latencies = Vec::new();
            for h in handles {
                latencies.extend(h.join().expect("a writer thread panicked")?);
            }
            Ok((latencies, started.elapsed()))
        })?;
        Ok((latencies, wall))
    })?;
    let mut rate = [None; 3];
    let mut p50 = [None; 3];
    let mut p99 = [None; 3];
    for (s, per_round) in results.into_iter().enumerate() {
        let wall: f64 = per_round.iter().map(|(_, w)| w.as_secs_f64()).sum();
        let all = sorted_ms(per_round.into_iter().flat_map(|(l, _)| l));
        let d = SYSTEMS[s].durability();
        rate[s] = Some((all.len() as f64 / wall, d));
        p50[s] = Some((percentile(&all, 50.0), d));
        p99[s] = Some((percentile(&all, 99.0), d));
    }
    let row = Row::new("W2", "single appends, 16 writers", "events/s", rate);
    let over_w1 = rate[0].map_or(f64::NAN, |r| r.0) / w1_rate;
    let met = over_w1 >= 10.0 && row.chronicle_over_sqlite.is_some_and(|r| r >= 2.0);
    Ok(vec![
        row.target(format!("≥10× W1 (is {over_w1:.1}×), ≥2× SQLite"), met),
        Row::new("W2", "single appends, 16 writers: p50", "ms", p50),
        Row::new("W2", "single appends, 16 writers: p99", "ms", p99),
    ])
}

/// W5: `trip show` and a 50-entry entity timeline, on random trips and officials.
/// The same queries run twice: first right after the store was opened (each reads
/// documents no query has read yet: from the file), then again (from sled's cache),
/// which is the figure the target is about.
fn queries(logs: &[Log], n: u64, people: u64, settings: &Settings) -> Result<Vec<Row>> {
    let trips = payload::trips_in(n).max(1);
    let readers = [
        match &logs[0] {
            Log::Chronicle(store) => Reader::Chronicle(store.clone()),
            _ => bail!("the first log is chronicle's"),
        },
        match &logs[2] {
            Log::Sqlite(path) => Reader::Sqlite(systems::sqlite_open(path)?),
            _ => bail!("the third log is SQLite's"),
        },
    ];
    let mut rng = payload::Rng(0x5eed);
    let picks: Vec<(String, String)> = (0..settings.queries)
        .map(|_| {
            (
                payload::trip_stream(rng.below(trips)),
                payload::person(rng.below(people)),
            )
        })
        .collect();
    let per_round = settings.queries.div_ceil(settings.rounds);
    let pass = || {
        let results = rounds(&[0, 1], settings.rounds, |r, round| {
            let end = ((round + 1) * per_round).min(picks.len());
            let chunk = &picks[(round * per_round).min(end)..end];
            let mut trip_times = Vec::new();
            let mut timeline_times = Vec::new();
            for (trip, person) in chunk {
                let t = Instant::now();
                let found = readers[r].trip(trip)?;
                trip_times.push(t.elapsed());
                anyhow::ensure!(found > 0, "trip {trip} is empty");
                if r == 0 {
                    let t = Instant::now();
                    readers[r].timeline(person)?;
                    timeline_times.push(t.elapsed());
                }
            }
            Ok((trip_times, timeline_times))
        })?;
        // Per kind of query, per reader: the sorted latencies.
        let mut trip = [Vec::new(), Vec::new(), Vec::new()];
        let mut timeline = [Vec::new(), Vec::new(), Vec::new()];
        for (r, per_round) in results.into_iter().enumerate() {
            let slot = if r == 0 { 0 } else { 2 };
            let (trips, timelines): (Vec<_>, Vec<_>) = per_round.into_iter().unzip();
            trip[slot] = sorted_ms(trips.into_iter().flatten());
            timeline[slot] = sorted_ms(timelines.into_iter().flatten());
        }
        anyhow::Ok((trip, timeline))
    };
    let (cold_trip, cold_timeline) = pass()?;
    let (trip, timeline) = pass()?;
    let at = |samples: &[Vec<f64>; 3], p: f64| {
        [0, 1, 2].map(|i| (!samples[i].is_empty()).then(|| (percentile(&samples[i], p), "none")))
    };
    let under_1ms = |row: Row| {
        let met = row.chronicle.as_ref().is_some_and(|f| f.value < 1.0);
        row.target("<1 ms", met)
    };
    Ok(vec![
        Row::new("W5", "trip show: p50", "ms", at(&trip, 50.0)),
        under_1ms(Row::new("W5", "trip show: p99", "ms", at(&trip, 99.0))),
        Row::new(
            "W5",
            "trip show, first read after open: p99",
            "ms",
            at(&cold_trip, 99.0),
        ),
        Row::new(
            "W5",
            "timeline, 50 entries of an entity: p50",
            "ms",
            at(&timeline, 50.0),
        ),
        under_1ms(Row::new(
            "W5",
            "timeline, 50 entries of an entity: p99",
            "ms",
            at(&timeline, 99.0),
        )),
        Row::new(
            "W5",
            "timeline, first read after open: p99",
            "ms",
            at(&cold_timeline, 99.0),
        ),
    ])
}

/// Starts a child appending to the store, waits until it is under way, and kills it.
fn kill_while_appending(s: System, dir: &Path, n: u64, cycle: u64, after_ms: u64) -> Result<()> {
    let mut child = child_command("loop", s, dir, n, Some(cycle))
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    anyhow::ensure!(
        line.trim() == "ready",
        "the appending child did not start: {line}"
    );
    std::thread::sleep(Duration::from_millis(after_ms));
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(())
}

fn child_command(mode: &str, s: System, dir: &Path, n: u64, seed: Option<u64>) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the benchmark's own path"));
    cmd.args([
        "--child",
        mode,
        "--system",
        s.name(),
        "--events",
        &n.to_string(),
    ])
    .arg("--dir")
    .arg(dir)
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    if let Some(seed) = seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    cmd
}

/// Runs one measurement in a fresh process and returns what it printed.
fn spawn_child(mode: &str, s: System, dir: &Path, n: u64, seed: Option<u64>) -> Result<Value> {
    let out = child_command(mode, s, dir, n, seed).output()?;
    if !out.status.success() {
        bail!("the {mode} child for {} failed ({})", s.name(), out.status);
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the {mode} child for {} printed no result", s.name()))
}

/// The child side: one measurement, printed as one JSON object.
fn child(mode: &str, args: &Args) -> Result<()> {
    let system = System::parse(args.system.as_deref().context("--system")?)?;
    let dir = args.dir.clone().context("--dir")?;
    let n = *args.events.first().context("--events")?;
    let result = match mode {
        "build" => build(system, &dir, n)?,
        "replay" => {
            let (events, elapsed) = systems::replay(system, &dir)?;
            let stored = if system == System::Chronicle {
                stored_json_mean(&dir)?
            } else {
                f64::NAN
            };
            json!({"events": events, "seconds": elapsed.as_secs_f64(), "vmhwm_kib": vmhwm_kib(),
                   "stored_bytes_mean": stored})
        }
        "open" => json!({"seconds": systems::open_time(system, &dir)?.as_secs_f64()}),
        "fold" => {
            use chronicle::store::{EventStore, SledStore};
            let store = SledStore::open(&dir)?;
            let head = store.head()?.position;
            let started = Instant::now();
            let _docs = store.views_at(head)?;
            let elapsed = started.elapsed();
            json!({"events": head.0, "seconds": elapsed.as_secs_f64(),
                   "vmhwm_kib": vmhwm_kib()})
        }
        "loop" => append_forever(system, &dir, n, args.seed.unwrap_or(0))?,
        other => bail!("unknown child mode {other}"),
    };
    println!("{result}");
    Ok(())
}

/// W3: a fresh store of the first `n` events of the generated log, appended in atomic
/// durable batches of 1,000. Only the appends are timed (not generating or parsing).
fn build(system: System, dir: &Path, n: u64) -> Result<Value> {
    let log = Log::open(system, dir)?;
    let mut writer = log.writer()?;
    let mut events = payload::log(n).peekable();
    let mut elapsed = Duration::ZERO;
    let mut input_bytes = 0;
    while events.peek().is_some() {
        let batch: Vec<Payload> = events.by_ref().take(1000).map(Payload::new).collect();
        input_bytes += batch.iter().map(|p| p.json.len()).sum::<usize>();
        let t = Instant::now();
        writer.append(&batch)?;
        elapsed += t.elapsed();
    }
    drop(writer);
    drop(log);
    Ok(
        json!({"seconds": elapsed.as_secs_f64(), "events": n, "input_bytes": input_bytes,
              "vmhwm_kib": vmhwm_kib()}),
    )
}

/// The mean size of chronicle's stored events (the export format), from a sample of
/// about 2,000.
fn stored_json_mean(dir: &Path) -> Result<f64> {
    use chronicle::model::Position;
    use chronicle::store::{EventStore, SledStore};
    let store = SledStore::open(dir)?;
    let head = store.head()?.position.0;
    // A step prime to the generator's 18 events per trip samples every kind of event.
    let mut step = (head / 2000).max(1) | 1;
    while step % 3 == 0 {
        step += 2;
    }
    let (mut total, mut count) = (0usize, 0usize);
    for p in (1..=head).step_by(step as usize) {
        if let Some(e) = store.get(Position(p))? {
            total += serde_json::to_vec(&e)?.len();
            count += 1;
        }
    }
    Ok(total as f64 / count.max(1) as f64)
}

/// Appends batches of 100 until killed; prints `ready` once the first is durable.
fn append_forever(system: System, dir: &Path, n: u64, cycle: u64) -> Result<Value> {
    let log = Log::open(system, dir)?;
    let mut writer = log.writer()?;
    let mut generator = payload::Trips::new(payload::people_for(n), 100 + cycle);
    let mut trip = KILL_FIRST_TRIP + cycle * 10_000_000;
    let mut ready = false;
    loop {
        let mut batch = Vec::new();
        while batch.len() < 100 {
            batch.extend(generator.trip(trip).into_iter().map(Payload::new));
            trip += 1;
        }
        writer.append(&batch)?;
        if !ready {
            println!("ready");
            std::io::stdout().flush()?;
            ready = true;
        }
    }
}

/// This process's peak resident memory, in KiB.
fn vmhwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({"cpus": cpus, "cpu": cpu, "kernel": kernel})
}

/// What one 4 KiB write + fdatasync costs on the disk under `root`: p50 and p99 in ms.
fn disk_probe(root: &Path, samples: usize) -> Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let path = root.join("fsync-probe");
    let file = std::fs::File::create(&path)?;
    let block = vec![7u8; 4096];
    let mut times = Vec::new();
    for i in 0..samples {
        let t = Instant::now();
        file.write_all_at(&block, (i * 4096) as u64)?;
        file.sync_data()?;
        times.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    let sorted = sorted_ms(times);
    Ok((percentile(&sorted, 50.0), percentile(&sorted, 99.0)))
}

/// How W1, W4 and W5 change with the size of the log.
#[derive(Serialize)]
struct Growth {
    metric: String,
    unit: &'static str,
    /// chronicle's figure at each size, in the order of `--events`.
    values: Vec<f64>,
    /// Largest size ÷ smallest.
    ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    met: Option<bool>,
}

fn growth(runs: &[Run]) -> Vec<Growth> {
    if runs.len() < 2 {
        return Vec::new();
    }
    let wanted = [
        ("W1", "single appends, 1 writer"),
        ("W1", "single appends, 1 writer: p99"),
        (
            "W4",
            "replay: rebuild all projections (baselines: scan + parse)",
        ),
        ("W5", "trip show: p50"),
        ("W5", "trip show: p99"),
        ("W5", "timeline, 50 entries of an entity: p50"),
        ("W5", "timeline, 50 entries of an entity: p99"),
    ];
    let mut out = Vec::new();
    for (workload, metric) in wanted {
        let mut values = Vec::new();
        let mut unit = "";
        for run in runs {
            let row = run
                .rows
                .iter()
                .find(|r| r.workload == workload && r.metric == metric);
            unit = row.map_or("", |r| r.unit);
            values.push(
                row.and_then(|r| r.chronicle.as_ref())
                    .map_or(f64::NAN, |f| f.value),
            );
        }
        let ratio = values[values.len() - 1] / values[0];
        let mut g = Growth {
            metric: format!("{workload} {metric}"),
            unit,
            values,
            ratio,
            target: None,
            met: None,
        };
        if workload == "W5" && metric.ends_with("p99") {
            g.target = Some("≤1.5× from the smallest to the largest log".into());
            g.met = Some(ratio <= 1.5);
        }
        out.push(g);
    }
    out
}

fn growth_table(rows: &[Growth], sizes: &[u64]) -> String {
    let mut header = vec!["CHRONICLE".to_string()];
    header.extend(sizes.iter().map(|n| format!("N={}", number(*n as f64))));
    header.push("LARGEST/SMALLEST".into());
    header.push("TARGET".into());
    let mut cells = vec![header];
    for g in rows {
        let mut line = vec![format!("{} ({})", g.metric, g.unit)];
        line.extend(g.values.iter().map(|v| number(*v)));
        line.push(format!("{:.2}×", g.ratio));
        line.push(match (&g.target, g.met) {
            (Some(t), Some(true)) => format!("{t}: met"),
            (Some(t), Some(false)) => format!("{t}: MISSED"),
            _ => String::new(),
        });
        cells.push(line);
    }
    let columns = cells[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i == 0 || i == columns - 1 {
                line.push_str(&format!("{cell}{pad}  "));
            } else {
                line.push_str(&format!("{pad}{cell}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
