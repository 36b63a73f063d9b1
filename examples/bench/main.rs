//! Benchmarks chronicle side by side with what a user would pick instead, in the same
//! run, on the same payloads and with the same durability (issue 10, item 7):
//!
//! - raw sled writing the keys chronicle's log writes (the event, its stream/version and
//!   id index entries, the head once per append) in one batch, then `flush()` and an
//!   `fdatasync` of its file: the storage engine's limit for this log;
//! - SQLite (bundled, through rusqlite) as an event table with chronicle's guarantees:
//!   WAL, `synchronous=FULL`, `UNIQUE(stream, version)`, `UNIQUE(id)`;
//! - for `chronicle import`, a plain Python script (`sqlite_import.py`: Python's
//!   `sqlite3`, the same table, batches of 1,000), run with `python3`.
//!
//! Workloads: W1 single durable appends from one writer; W2 the same from 16 writers on
//! different streams; W3 batches of 1,000; W4 replay (chronicle rebuilds every view,
//! the baselines scan and parse every event; then raw sled writing what a replay
//! writes, to tell sled's share) and the projector's catch-up; W5 `trip
//! show` and a 50-entry entity timeline, now and `--as-of` random positions; W6 open
//! time (clean, first after an import, after `kill -9` of an appending process), disk
//! per event and peak memory; W7 `chronicle import` of a generated file, end to end
//! with the views caught up, beside the Python script.
//!
//! With `--postgres URL` (or `CHRONICLE_BENCH_PG`), chronicle's PostgreSQL log joins
//! the same run, in a column of its own: W1, W2 and W3 through `PgStore` in this
//! process (a database made for each log size, dropped after), W7 through the release
//! binary's `import --db URL --views DIR` into another fresh database; and W8, the
//! release `chronicle serve`: reads from one server and from two servers on the same
//! log (each with its own views), and appends from 16 writers through one and two
//! servers, beside one server on the sled store; with 2 CPUs or more, the reads again
//! with each PostgreSQL server confined to a CPU of its own (one server on one CPU,
//! two servers on one CPU each), printed beside the unconfined figures. Builds, replays, opens and
//! imports run in child processes (this program run again with `--child`, or the
//! release binary `chronicle`), so that each starts cold and its peak memory
//! (`VmHWM`) is its own.
//!
//! ```sh
//! cargo run --release --example bench -- --events 100000,1000000 --json bench.json
//! cargo run --release --example bench -- --quick
//! cargo run --release --example bench -- --events 20000 --postgres postgres://chronicle@127.0.0.1:54329/postgres
//! ```

#[path = "../common/payload.rs"]
mod payload;
mod report;
mod servers;
mod systems;

use anyhow::{Context, Result, bail};
use clap::Parser;
use report::{Row, median, number, percentile};
use serde::Serialize;
use serde_json::{Value, json};
use servers::{Database, Server};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use systems::{Log, Payload, Reader, SYSTEMS, System};

/// The allocator the `chronicle` binary uses (`src/main.rs`), so that chronicle runs in
/// this process as it runs for users; the baselines in the same process share it.
#[global_allocator]
static ALLOCATOR: chronicle::alloc::Allocator = chronicle::alloc::Allocator;

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
    /// Keep the stores and the generated input afterwards.
    #[arg(long)]
    keep: bool,
    /// The `chronicle` binary W7 and W8 run [default: built with cargo next to this program].
    #[arg(long, env = "CHRONICLE_BIN")]
    chronicle: Option<PathBuf>,
    /// Also measure chronicle's PostgreSQL log on this server (`postgres://…`; its user
    /// must be allowed to CREATE DATABASE: each log size gets fresh databases, dropped
    /// after unless --keep).
    #[arg(long, env = "CHRONICLE_BENCH_PG")]
    postgres: Option<String>,
    /// Internal: run one measurement in this process (build, replay, open, loop, …).
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
    /// W1: single appends per system, in `append_rounds`.
    w1_appends: usize,
    /// W2: concurrent writers, and appends per writer, in `append_rounds`.
    w2_writers: usize,
    w2_appends_per_writer: usize,
    /// W1 and W2 alternate between the systems in this many rounds, so that noise on
    /// the shared machine spreads over all of them; their rates are the medians of the
    /// rounds' rates. A round of chronicle's is long enough for its projector to fold
    /// in it more than once (every 500 ms, or each 4,096 events), and its views catch
    /// up before the next system's round, which its projector would slow: the rates
    /// leave that catch-up out, the rows "views caught up" count it in.
    append_rounds: usize,
    /// W8 (with --postgres): appends per writer, in `rounds`.
    w8_appends_per_writer: usize,
    /// W5 and W8 alternate between the systems in this many rounds.
    rounds: usize,
    /// W3: each system builds this many fresh stores, alternating; its rate is the
    /// median of theirs, and the first round's stores are the ones later workloads read.
    build_rounds: usize,
    /// W5: queries of each kind (now, and as of a random position).
    queries: usize,
    /// W6: clean opens (the first after the build; later ones start from the snapshot
    /// sled writes on open), and kill -9 cycles, per system; how long the child
    /// appends before it is killed.
    opens: usize,
    kills: usize,
    kill_after_ms: u64,
    /// W8 (with --postgres): reading clients, and how long each round reads.
    w8_clients: usize,
    w8_read_seconds: f64,
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
            w1_appends: if quick { 60 } else { 12_000 },
            w2_writers: 16,
            w2_appends_per_writer: if quick { 9 } else { 3_000 },
            append_rounds: if quick { 2 } else { 3 },
            w8_appends_per_writer: if quick { 9 } else { 126 },
            rounds: if quick { 2 } else { 6 },
            build_rounds: if quick { 1 } else { 3 },
            queries: if quick { 100 } else { 1000 },
            opens: if quick { 2 } else { 4 },
            kills: if quick { 1 } else { 3 },
            kill_after_ms: if quick { 300 } else { 1500 },
            w8_clients: 8,
            w8_read_seconds: if quick { 0.5 } else { 3.0 },
        }
    }
}

/// First trip numbers of the events appended after a store is built. Multiples of
/// `NOTE_STREAMS`, so that W2's writers (trips `first + w + 16k`) never share a note
/// stream, and far above any built store's trips.
const W1_FIRST_TRIP: u64 = 2_000_000_000;
const W2_FIRST_TRIP: u64 = 3_000_000_000;
const KILL_FIRST_TRIP: u64 = 4_000_000_000;
const W8_FIRST_TRIP: u64 = 5_000_000_000;
const W8_BATCH_FIRST_TRIP: u64 = 5_500_000_000;

/// The programs W7 runs.
struct Tools {
    chronicle: PathBuf,
    /// `python3`, when there is one.
    python: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(mode) = &args.child {
        return child(mode, &args);
    }
    let settings = Settings::new(&args);
    // A server that cannot be reached fails the run before anything is measured.
    let postgres = match &args.postgres {
        Some(url) => Some(postgres_server(url)?),
        None => None,
    };
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    std::fs::create_dir_all(&root)?;
    let started = Instant::now();

    let tools = Tools {
        chronicle: match &args.chronicle {
            Some(path) => path.clone(),
            None => build_chronicle()?,
        },
        python: python3(),
    };
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
    if let Some(pg) = &postgres {
        println!(
            "PostgreSQL {} at {} (fsync={}, synchronous_commit={}), a database per log size",
            pg["version"].as_str().unwrap_or("?"),
            pg["server"].as_str().unwrap_or("?"),
            pg["fsync"].as_str().unwrap_or("?"),
            pg["synchronous_commit"].as_str().unwrap_or("?"),
        );
    }
    match &tools.python {
        Some(version) => println!("W7 runs {} and {version}", tools.chronicle.display()),
        None => println!(
            "W7 runs {}; python3 was not found, so the Python + SQLite import beside it is skipped",
            tools.chronicle.display()
        ),
    }

    let mut runs = Vec::new();
    for &n in &settings.sizes {
        let run = run_size(
            &root,
            n,
            &settings,
            &tools,
            args.keep,
            args.postgres.as_deref(),
        )?;
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
    if postgres.is_some() {
        println!("{}", legend_postgres());
    }
    println!("total time {:.0} s", started.elapsed().as_secs_f64());

    if let Some(path) = &args.json {
        let report = json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "machine": machine,
            "disk": {"fdatasync_4k_p50_ms": disk.0, "fdatasync_4k_p99_ms": disk.1},
            "settings": settings,
            "postgres": postgres,
            "durability": {
                "fsync": "acknowledged after an fsync: chronicle and raw sled fdatasync sled's file after sled's flush; SQLite fsyncs its WAL (synchronous=FULL)",
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

/// Builds the `chronicle` binary with the profile this program was built with, and
/// returns its path (next to `examples/`), so that W7 never runs a stale binary.
fn build_chronicle() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("this program is not in a cargo target directory; pass --chronicle")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--locked", "--bin", "chronicle"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .context("running cargo to build chronicle; pass --chronicle")?;
    anyhow::ensure!(status.success(), "building chronicle failed ({status})");
    let bin = profile_dir.join("chronicle");
    anyhow::ensure!(bin.is_file(), "no {} after the build", bin.display());
    Ok(bin)
}

/// `python3 --version`, when python3 runs and has its sqlite3 module.
fn python3() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print('Python', sys.version.split()[0], 'with SQLite', sqlite3.sqlite_version)",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn legend_postgres() -> &'static str {
    "(commit) chronicle on PostgreSQL: acknowledged after COMMIT with synchronous_commit=on
      (PostgreSQL fsyncs its WAL first). PG/CHR is chronicle on PostgreSQL ÷ chronicle
      on sled. W8's CHRONICLE column is one `chronicle serve` on the sled store."
}

/// The PostgreSQL server `--postgres` names: its version and durability settings
/// (the URL without its password).
fn postgres_server(url: &str) -> Result<Value> {
    let mut client = servers::admin(url)?;
    let mut setting = |name: &str| -> Result<String> {
        Ok(client
            .query_one(&format!("SHOW {name}"), &[])?
            .get::<_, String>(0))
    };
    Ok(json!({
        "server": servers::describe(url),
        "version": setting("server_version")?,
        "fsync": setting("fsync")?,
        "synchronous_commit": setting("synchronous_commit")?,
    }))
}

fn legend() -> &'static str {
    "
(fsync) acknowledged after an fsync: chronicle and raw sled fdatasync sled's file after
      sled's flush(); SQLite fsyncs its write-ahead log (synchronous=FULL).
Ratios are chronicle ÷ baseline: above 1 is better for events/s, below 1 for times,
sizes and memory. Latencies are per append call (per query for W5). Raw sled writes
chronicle's log keys; W7's SQLite column is the Python script, its raw sled column W3's."
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

/// The value of a child's JSON field, NaN when missing.
fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn run_size(
    root: &Path,
    n: u64,
    settings: &Settings,
    tools: &Tools,
    keep: bool,
    postgres: Option<&str>,
) -> Result<Run> {
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

    // W3, and (the first round's) the stores every later workload reads.
    let mut builds = Vec::new();
    let mut build_seconds: Vec<Vec<f64>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.build_rounds {
        for (i, s) in SYSTEMS.into_iter().enumerate() {
            let dir = match round {
                0 => s.dir(root, n),
                r => root.join(format!("{}-{n}-build{r}", s.name())),
            };
            eprint!(
                "  building {} ({} events, round {})… ",
                s.name(),
                n,
                round + 1
            );
            let b = spawn_child("build", s, &dir, n, None)?;
            eprintln!("{:.1} s", f(&b, "seconds"));
            build_seconds[i].push(f(&b, "seconds"));
            if round == 0 {
                builds.push(b);
            } else {
                std::fs::remove_dir_all(&dir)?;
            }
        }
    }
    // The same build on PostgreSQL, into a database of its own that W1, W2 and W8 use.
    let pg_log = match postgres {
        Some(server) => {
            let db = Database::create(server, &format!("log_{n}"), keep)?;
            eprint!(
                "  building on PostgreSQL ({n} events, database {})… ",
                db.name()
            );
            let mut cmd = child_command("build", System::Postgres, root, n, None);
            cmd.arg("--postgres").arg(&db.url);
            let b = run_child(cmd, "build", System::Postgres)?;
            eprintln!("{:.1} s", f(&b, "seconds"));
            Some((db, b))
        }
        None => None,
    };
    let input_bytes = f(&builds[0], "input_bytes") / n as f64;
    let w3: Vec<_> = build_seconds
        .iter()
        .zip(SYSTEMS)
        .map(|(seconds, s)| Some((n as f64 / median(seconds), s.durability())))
        .collect();
    let sled_batch_rate = w3[1].map_or(f64::NAN, |r| r.0);
    let row = Row::new(
        "W3",
        "appends in batches of 1,000",
        "events/s",
        [w3[0], w3[1], w3[2]],
    )
    .postgres(
        pg_log
            .as_ref()
            .map(|(_, b)| (n as f64 / f(b, "seconds"), System::Postgres.durability())),
    );
    rows.push(over_sled(row, 0.7));
    let events = |v: f64| Some((v, "none"));
    rows.push(Row::new(
        "W3",
        "views behind the log when the build ended",
        "events",
        [events(n as f64 - f(&builds[0], "projected")), None, None],
    ));
    let sizes: Vec<f64> = SYSTEMS
        .iter()
        .map(|s| systems::dir_size(&s.dir(root, n)).map(|b| b as f64 / n as f64))
        .collect::<Result<_>>()?;
    // chronicle's log alone: its W3 store without the views (which were behind).
    let log_sizes: Vec<f64> = SYSTEMS[..2]
        .iter()
        .map(|s| systems::log_size(&s.dir(root, n)).map(|b| b as f64 / n as f64))
        .collect::<Result<_>>()?;

    // W6: open time, clean. chronicle's first open also folds what the projector had
    // not folded when the build ended.
    let mut first_open = Vec::new();
    let mut opens = Vec::new();
    for s in SYSTEMS {
        let mut times = Vec::new();
        for _ in 0..settings.opens {
            times.push(spawn_child("open", s, &s.dir(root, n), n, None)?);
        }
        first_open.push(times[0].clone());
        let ready: Vec<f64> = times[1..]
            .iter()
            .map(|o| f(o, "open_ms") + f(o, "views_ms"))
            .collect();
        opens.push(median(&ready));
    }
    let sled_trees = tree_sizes(&System::Sled.dir(root, n))?;

    // W7: `chronicle import` of the same events, end to end, and the Python script.
    let import = import(root, n, tools, keep, postgres)?;

    // W4: replay (the catch-up's figure comes from the first open above).
    let mut replays = Vec::new();
    for s in SYSTEMS {
        eprint!("  replaying {}… ", s.name());
        let r = spawn_child("replay", s, &s.dir(root, n), n, None)?;
        eprintln!("{:.1} s", f(&r, "seconds"));
        replays.push(r);
    }
    let stored_bytes = f(&replays[0], "stored_bytes_mean");
    let w4: Vec<_> = replays
        .iter()
        .map(|r| Some((f(r, "events") / f(r, "seconds"), "none")))
        .collect();
    let row = Row::new(
        "W4",
        "replay: rebuild all views (baselines: scan + parse)",
        "events/s",
        [w4[0], w4[1], w4[2]],
    );
    rows.push(over_sled(row, 0.25));
    // What of the replay is sled's own cost: raw sled writing the current documents the
    // replay leaves (the same keys and values, once each, in key order, in batches of
    // the projector's size, no history, synced once at the end), a lower bound for any
    // fold of them.
    eprint!("  raw sled writing chronicle's view documents… ");
    let copied = spawn_child(
        "view-keys",
        System::Chronicle,
        &System::Chronicle.dir(root, n),
        n,
        None,
    )?;
    eprintln!("{:.1} s", f(&copied, "seconds"));
    rows.push(Row::new(
        "W4",
        "replay beside raw sled writing its final view documents once (key order, no history, synced at the end)",
        "events/s",
        [
            w4[0],
            Some((n as f64 / f(&copied, "seconds"), "none")),
            None,
        ],
    ));
    // And raw sled applying exactly what a replay writes (a replay of its own, recorded:
    // every document, each time it is rewritten, the history, the removals, in the
    // replay's order and batches), which leaves out only chronicle's reading and folding.
    eprint!("  raw sled applying a replay's own writes… ");
    let same = spawn_child(
        "replay-writes",
        System::Chronicle,
        &System::Chronicle.dir(root, n),
        n,
        None,
    )?;
    eprintln!("{:.1} s", f(&same, "seconds"));
    rows.push(Row::new(
        "W4",
        "replay beside raw sled applying the replay's own writes (same keys, values, order and batches, synced at the end)",
        "events/s",
        [
            w4[0],
            Some((n as f64 / f(&same, "seconds"), "none")),
            None,
        ],
    ));

    // W5, W1, W2 on the stores, opened here.
    eprintln!("  queries and single appends…");
    let mut logs: Vec<Log> = SYSTEMS
        .iter()
        .map(|s| Log::open(*s, &s.dir(root, n)))
        .collect::<Result<_>>()?;
    if let Some((db, _)) = &pg_log {
        logs.push(Log::open_pg(&db.url)?);
    }
    rows.extend(queries(&logs, n, people, settings)?);
    let w1_rows = single_appends(&logs, people, settings)?;
    rows.extend(concurrent_appends(&logs, people, settings, &w1_rows[0])?);
    rows.extend(w1_rows);
    drop(logs);

    // W8: servers, on the sled store and on the PostgreSQL log.
    if let Some((db, _)) = &pg_log {
        rows.extend(serve_load(root, n, people, settings, tools, &db.url, keep)?);
    }
    drop(pg_log);

    // W6: open after kill -9 of a process that was appending.
    let mut killed = Vec::new();
    for s in [System::Chronicle, System::Sled] {
        let mut times = Vec::new();
        for cycle in 0..settings.kills {
            let dir = s.dir(root, n);
            kill_while_appending(s, &dir, n, cycle as u64, settings.kill_after_ms)?;
            times.push(spawn_child("open", s, &dir, n, None)?);
        }
        killed.push(times);
    }

    // W4: the projector catching up: what the build left unfolded, on the first open
    // after it (the same fold as a replay, into the live tree, in chunks).
    let behind = f(&first_open[0], "lag");
    let row = Row::new(
        "W4",
        "projector catch-up on the first open after the build (baselines: scan + parse)",
        "events/s",
        [
            Some((behind / (f(&first_open[0], "views_ms") / 1000.0), "none")),
            w4[1],
            w4[2],
        ],
    );
    rows.push(over_sled(row, 0.25));

    // W7's rows.
    {
        let c = &import.chronicle;
        let pg = import.postgres.as_ref();
        let rate = |v: f64| Some((v, "fsync"));
        let pg_rate = |v: f64| Some((v, System::Postgres.durability()));
        let row = Row::new(
            "W7",
            "chronicle import, end to end with views caught up (sled: W3; SQLite: Python script)",
            "events/s",
            [
                rate(n as f64 / c.end_to_end),
                rate(sled_batch_rate),
                import
                    .python
                    .as_ref()
                    .and_then(|p| rate(n as f64 / p.seconds)),
            ],
        )
        .postgres(pg.and_then(|p| pg_rate(n as f64 / p.end_to_end)));
        let over_sled = row.chronicle_over_sled.unwrap_or(f64::NAN);
        let over_python = row.chronicle_over_sqlite;
        let met = over_sled >= 0.5 && over_python.is_none_or(|r| r >= 1.0);
        let text = match over_python {
            Some(p) => format!("≥0.5× sled (is {over_sled:.2}×), ≥1× the script (is {p:.2}×)"),
            None => format!("≥0.5× sled (is {over_sled:.2}×); no python3 for the script"),
        };
        rows.push(row.target(text, met));
        let secs = |v: f64| Some((v, "none"));
        rows.push(
            Row::new(
                "W7",
                "import: the `chronicle import` process (SQLite: the script)",
                "s",
                [
                    secs(c.seconds),
                    None,
                    import.python.as_ref().and_then(|p| secs(p.seconds)),
                ],
            )
            .postgres(pg.and_then(|p| secs(p.import.seconds))),
        );
        rows.push(Row::new(
            "W7",
            "import: then the views catching up on the next open",
            "s",
            [secs(c.opened.views_ms / 1000.0), None, None],
        ));
        if let Some(p) = pg {
            // Not the same step as the row above (a sled import folds its views as it
            // goes), so in a row of its own.
            rows.push(
                Row::new(
                    "W7",
                    "import on PostgreSQL: then `chronicle stats` folding all views into a fresh folder",
                    "s",
                    [None; 3],
                )
                .postgres(secs(p.views_seconds)),
            );
        }
        rows.push(Row::new(
            "W7",
            "import: views behind the log when the import ended",
            "events",
            [events(c.opened.lag as f64), None, None],
        ));
        let mib = |kib: u64| Some((kib as f64 / 1024.0, "none"));
        let row = Row::new(
            "W7",
            "import: peak memory (VmHWM) of the process (SQLite: the script)",
            "MiB",
            [
                mib(c.peak_kib),
                None,
                import.python.as_ref().and_then(|p| mib(p.peak_kib)),
            ],
        )
        .postgres(pg.and_then(|p| mib(p.import.peak_kib)));
        let peak = c.peak_kib as f64 / 1024.0;
        rows.push(row.target(format!("≤512 MiB (is {})", number(peak)), peak <= 512.0));
    }

    // W6's rows.
    let ms = |v: f64| Some((v, "none"));
    let under_1s = |row: Row| {
        let v = row.chronicle.as_ref().map_or(f64::NAN, |f| f.value);
        row.target(format!("<1 s (is {} ms)", number(v)), v < 1000.0)
    };
    rows.push(under_1s(Row::new(
        "W6",
        "open, first after the build",
        "ms",
        [0, 1, 2].map(|i| ms(f(&first_open[i], "open_ms"))),
    )));
    rows.push(Row::new(
        "W6",
        "open, first after the build: then the views catching up",
        "ms",
        [ms(f(&first_open[0], "views_ms")), None, None],
    ));
    rows.push(under_1s(Row::new(
        "W6",
        "open, first after `chronicle import`",
        "ms",
        [ms(import.chronicle.opened.open_ms), None, None],
    )));
    rows.push(under_1s(Row::new(
        "W6",
        "open, clean shutdown, later opens (views current, included)",
        "ms",
        [ms(opens[0]), ms(opens[1]), ms(opens[2])],
    )));
    let killed_median =
        |i: usize, key: &str| median(&killed[i].iter().map(|o| f(o, key)).collect::<Vec<_>>());
    rows.push(under_1s(Row::new(
        "W6",
        "open after kill -9 while appending",
        "ms",
        [
            ms(killed_median(0, "open_ms")),
            ms(killed_median(1, "open_ms")),
            None,
        ],
    )));
    rows.push(Row::new(
        "W6",
        "open after kill -9: then the views catching up",
        "ms",
        [ms(killed_median(0, "views_ms")), None, None],
    ));

    // Disk: chronicle's store is the one `chronicle import` made (views caught up,
    // nothing else appended); raw sled's (the log's keys alone) and SQLite's are W3's.
    let chronicle_size = import.chronicle.store_bytes;
    let bytes = |v: f64| Some((v, "none"));
    rows.push(Row::new(
        "W6",
        "disk per event: the whole store (chronicle: after import, views caught up)",
        "bytes",
        [bytes(chronicle_size), bytes(sizes[1]), bytes(sizes[2])],
    ));
    let times = |v: f64| Some((v / input_bytes, "none"));
    let row = Row::new(
        "W6",
        format!("disk per event ÷ input JSON ({input_bytes:.0} B): the whole store"),
        "×",
        [times(chronicle_size), times(sizes[1]), times(sizes[2])],
    );
    let whole = chronicle_size / input_bytes;
    rows.push(row.target(format!("≤5× (is {whole:.2}×)"), whole <= 5.0));
    let row = Row::new(
        "W6",
        "disk per event ÷ input JSON: the log alone (W3's stores; chronicle's without its views)",
        "×",
        [times(log_sizes[0]), times(log_sizes[1]), None],
    );
    let log = log_sizes[0] / input_bytes;
    rows.push(row.target(format!("≤2.5× (is {log:.2}×)"), log <= 2.5));
    // What the trees hold, per event: chronicle's (the imported store) and raw sled's.
    let trees = &import.chronicle.trees;
    let per_event = |v: &Value, key: &str, scale: f64| Some((f(v, key) / n as f64 / scale, "none"));
    rows.push(Row::new(
        "W6",
        "live bytes (keys + values) per event ÷ input JSON: the log tree",
        "×",
        [
            per_event(trees, "log_bytes", input_bytes),
            per_event(&sled_trees, "log_bytes", input_bytes),
            None,
        ],
    ));
    rows.push(Row::new(
        "W6",
        "live bytes (keys + values) per event ÷ input JSON: the views tree",
        "×",
        [per_event(trees, "views_bytes", input_bytes), None, None],
    ));
    rows.push(Row::new(
        "W6",
        "live bytes (keys + values) per event ÷ input JSON: of which history",
        "×",
        [per_event(trees, "history_bytes", input_bytes), None, None],
    ));
    rows.push(Row::new(
        "W6",
        "keys per event: the log tree",
        "keys",
        [
            per_event(trees, "log_keys", 1.0),
            per_event(&sled_trees, "log_keys", 1.0),
            None,
        ],
    ));
    rows.push(Row::new(
        "W6",
        "keys per event: the views tree",
        "keys",
        [per_event(trees, "views_keys", 1.0), None, None],
    ));
    rows.push(Row::new(
        "W6",
        "keys per event: of which history",
        "keys",
        [per_event(trees, "history_keys", 1.0), None, None],
    ));
    let mib = |v: &Value, key: &str| Some((f(v, key) / 1024.0, "none"));
    rows.push(Row::new(
        "W6",
        "peak memory (VmHWM) of the build (W3)",
        "MiB",
        [0, 1, 2].map(|i| mib(&builds[i], "vmhwm_kib")),
    ));
    rows.push(Row::new(
        "W6",
        "peak memory (VmHWM) of the replay (W4)",
        "MiB",
        [0, 1, 2].map(|i| mib(&replays[i], "vmhwm_kib")),
    ));
    rows.sort_by_key(|r| r.workload);
    println!(
        "input JSON {input_bytes:.0} B/event, stored chronicle JSON {stored_bytes:.0} B/event\n"
    );
    print!("{}", report::table(&rows));
    println!("\nTargets at N = {}:\n", number(n as f64));
    print!("{}", report::targets(&rows));
    Ok(Run {
        events: n,
        input_json_bytes_mean: input_bytes,
        stored_json_bytes_mean: stored_bytes,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Marks a row's target: chronicle at least `want` × raw sled.
fn over_sled(row: Row, want: f64) -> Row {
    let r = row.chronicle_over_sled.unwrap_or(f64::NAN);
    row.target(format!("≥{want}× sled (is {r:.2}×)"), r >= want)
}

/// The keys and live bytes of a store's log tree and views trees
/// ([`systems::TreeSizes`]; in a child, so that sled's memory is not this process's).
fn tree_sizes(dir: &Path) -> Result<Value> {
    spawn_child("trees", System::Chronicle, dir, 0, None)
}

/// W7's measurements of one program.
struct Imported {
    /// Wall time of the importing process.
    seconds: f64,
    /// Its peak resident memory (`VmHWM`, see [`run_measured`]).
    peak_kib: u64,
}

/// W7 for chronicle: the import, the next open, and the store it made.
struct ChronicleImport {
    seconds: f64,
    peak_kib: u64,
    /// The first open after the import (a child of this program).
    opened: systems::Opened,
    /// The import, then the open and the views catching up: until a query answers.
    end_to_end: f64,
    store_bytes: f64,
    /// [`systems::TreeSizes`] of the store.
    trees: Value,
}

/// W7 on PostgreSQL: `chronicle import` into a fresh database, then the views.
struct PgImport {
    import: Imported,
    /// `chronicle stats` right after: its views (a fresh folder) catching up with the
    /// imported log, and the process around it.
    views_seconds: f64,
    end_to_end: f64,
}

struct Imports {
    chronicle: ChronicleImport,
    python: Option<Imported>,
    postgres: Option<PgImport>,
}

/// W7: the generated log of `n` events as a JSON Lines file, imported into an empty
/// store by the real `chronicle import`, then opened until the views are caught up
/// (what the user's next command does); beside it, the Python script into SQLite.
fn import(
    root: &Path,
    n: u64,
    tools: &Tools,
    keep: bool,
    postgres: Option<&str>,
) -> Result<Imports> {
    let input = root.join(format!("input-{n}.jsonl"));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for event in payload::log(n) {
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let dir = root.join(format!("chronicle-import-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    eprint!("  chronicle import ({n} events)… ");
    let mut cmd = Command::new(&tools.chronicle);
    cmd.arg("--db").arg(&dir).arg("import").arg(&input);
    let (run, _) = run_measured(cmd, root)?;
    eprint!("{:.1} s, then opening… ", run.seconds);
    let o = spawn_child("open", System::Chronicle, &dir, n, None)?;
    let opened = systems::Opened {
        open_ms: f(&o, "open_ms"),
        views_ms: f(&o, "views_ms"),
        lag: o["lag"].as_u64().unwrap_or(0),
    };
    let end_to_end = run.seconds + (opened.open_ms + opened.views_ms) / 1000.0;
    eprintln!("{:.1} s end to end", end_to_end);
    // The real binary agrees that every event is in and every view caught up.
    let mut stats = Command::new(&tools.chronicle);
    stats.arg("--db").arg(&dir).args(["--json", "stats"]);
    let (_, out) = run_measured(stats, root)?;
    let stats: Value = serde_json::from_str(&out).context("`chronicle stats --json`")?;
    anyhow::ensure!(
        stats["events"].as_u64() == Some(n),
        "the import holds {} events, not {n}",
        stats["events"]
    );
    let store_bytes = systems::dir_size(&dir)? as f64 / n as f64;
    let trees = tree_sizes(&dir)?;
    let chronicle = ChronicleImport {
        seconds: run.seconds,
        peak_kib: run.peak_kib,
        opened,
        end_to_end,
        store_bytes,
        trees,
    };

    let python = match &tools.python {
        None => {
            println!("  python3 not found: skipping the Python + SQLite import");
            None
        }
        Some(_) => {
            let db = root.join(format!("python-sqlite-{n}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            eprint!("  python3 sqlite_import.py ({n} events)… ");
            let mut cmd = Command::new("python3");
            cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench/sqlite_import.py"))
                .arg(&input)
                .arg(&db);
            let (run, out) = run_measured(cmd, root)?;
            eprintln!("{:.1} s", run.seconds);
            anyhow::ensure!(
                out.trim() == n.to_string(),
                "the Python script imported {} events, not {n}",
                out.trim()
            );
            if !keep {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                }
            }
            Some(run)
        }
    };
    let postgres = match postgres {
        Some(server) => Some(import_pg(root, n, &input, tools, server, keep)?),
        None => None,
    };
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&input);
    }
    Ok(Imports {
        chronicle,
        python,
        postgres,
    })
}

/// W7 on PostgreSQL: the release binary imports `input` into a fresh database, then
/// `chronicle stats` folds it into a fresh views folder (what the next query, or a new
/// server, does) and must count every event.
fn import_pg(
    root: &Path,
    n: u64,
    input: &Path,
    tools: &Tools,
    server: &str,
    keep: bool,
) -> Result<PgImport> {
    let db = Database::create(server, &format!("import_{n}"), keep)?;
    let views = root.join(format!("pg-import-views-{n}"));
    let _ = std::fs::remove_dir_all(&views);
    let command = |args: &[&str]| {
        let mut cmd = Command::new(&tools.chronicle);
        cmd.arg("--db")
            .arg(&db.url)
            .arg("--views")
            .arg(&views)
            .args(args)
            .env_remove("CHRONICLE_SERVER");
        cmd
    };
    eprint!("  chronicle import on PostgreSQL ({n} events)… ");
    let mut cmd = command(&["import"]);
    cmd.arg(input);
    let (import, _) = run_measured(cmd, root)?;
    eprint!("{:.1} s, then the views… ", import.seconds);
    let (views_run, out) = run_measured(command(&["--json", "stats"]), root)?;
    let stats: Value = serde_json::from_str(&out).context("`chronicle stats --json`")?;
    anyhow::ensure!(
        stats["events"].as_u64() == Some(n),
        "the import into PostgreSQL holds {} events, not {n}",
        stats["events"]
    );
    let end_to_end = import.seconds + views_run.seconds;
    eprintln!("{end_to_end:.1} s end to end");
    if !keep {
        let _ = std::fs::remove_dir_all(&views);
    }
    Ok(PgImport {
        import,
        views_seconds: views_run.seconds,
        end_to_end,
    })
}

/// Runs a program to its end and returns its wall time, its peak memory and what it
/// printed. The peak is the child's `VmHWM`, read from `/proc` every 10 ms while it
/// runs (the last reading is at most 10 ms old). Not `ru_maxrss` from `wait4`: a child
/// started by `posix_spawn` (vfork) carries this process's own peak into it at
/// `exec`, so at 1,000,000 events both the import and the script measured 521 MiB,
/// this process's peak, where `/usr/bin/time -v` gave the import's own.
fn run_measured(mut cmd: Command, root: &Path) -> Result<(Imported, String)> {
    let out_path = root.join("child.stdout");
    let err_path = root.join("child.stderr");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("a pid")?;
    let mut status = 0;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, exited) = (peak.clone(), exited.clone());
        std::thread::spawn(move || {
            let status = format!("/proc/{pid}/status");
            while !exited.load(std::sync::atomic::Ordering::Acquire) {
                if let Some(kib) = std::fs::read_to_string(&status)
                    .ok()
                    .and_then(|s| vmhwm_of(&s))
                {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::AcqRel);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // SAFETY: `wait4` writes only into `status`, which lives until it returns, and
    // takes no `rusage` here.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, std::ptr::null_mut()) };
    let seconds = started.elapsed().as_secs_f64();
    exited.store(true, std::sync::atomic::Ordering::Release);
    watcher.join().expect("the memory watcher panicked");
    // The child is reaped: dropping its handle neither waits nor kills.
    drop(child);
    anyhow::ensure!(reaped == pid, "waiting for {cmd:?} failed");
    let stdout = std::fs::read_to_string(&out_path)?;
    let stderr = std::fs::read_to_string(&err_path)?;
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (wait status {status}): {stderr}");
    }
    let peak_kib = peak.load(std::sync::atomic::Ordering::Acquire);
    Ok((Imported { seconds, peak_kib }, stdout))
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

/// W1's and W2's rates with the views' catch-up after each round counted in: the appends
/// and the folding of them into chronicle's views, as under a load that goes on (the
/// other logs have no views: theirs are the rates of their rounds).
const CAUGHT_UP_W1: &str = "single appends, 1 writer, views caught up";
const CAUGHT_UP_W2: &str = "single appends, 16 writers, views caught up";

/// W1: one writer, one event per durable append.
fn single_appends(logs: &[Log], people: u64, settings: &Settings) -> Result<Vec<Row>> {
    let per_round = settings.w1_appends.div_ceil(settings.append_rounds);
    let trips = (per_round * settings.append_rounds) as u64 / payload::EVENTS_PER_TRIP + 1;
    let events = systems::trips(people, 1, W1_FIRST_TRIP, trips);
    let mut writers: Vec<_> = logs.iter().map(|l| l.writer()).collect::<Result<_>>()?;
    let all_logs: Vec<usize> = (0..logs.len()).collect();
    let results = rounds(&all_logs, settings.append_rounds, |s, round| {
        let chunk = &events[round * per_round..(round + 1) * per_round];
        let mut latencies = Vec::with_capacity(chunk.len());
        let started = Instant::now();
        for e in chunk {
            let t = Instant::now();
            writers[s].append(std::slice::from_ref(e))?;
            latencies.push(t.elapsed());
        }
        logs[s].views_caught_up()?;
        Ok((latencies, started.elapsed()))
    })?;
    let (mut rate, mut caught_up, mut p50, mut p99) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (log, per_round) in logs.iter().zip(results) {
        let rates: Vec<f64> = per_round
            .iter()
            .map(|(l, _)| l.len() as f64 / l.iter().map(Duration::as_secs_f64).sum::<f64>())
            .collect();
        let caught_up_rates: Vec<f64> = per_round
            .iter()
            .map(|(l, until_caught_up)| l.len() as f64 / until_caught_up.as_secs_f64())
            .collect();
        let all = sorted_ms(per_round.into_iter().flat_map(|(l, _)| l));
        let d = log.system().durability();
        rate.push(Some((median(&rates), d)));
        caught_up.push(Some((median(&caught_up_rates), d)));
        p50.push(Some((percentile(&all, 50.0), d)));
        p99.push(Some((percentile(&all, 99.0), d)));
    }
    let row = row_of_logs("W1", "single appends, 1 writer", "events/s", logs, rate);
    Ok(vec![
        over_sled(row, 0.8),
        row_of_logs("W1", CAUGHT_UP_W1, "events/s", logs, caught_up),
        row_of_logs("W1", "single appends, 1 writer: p50", "ms", logs, p50),
        row_of_logs("W1", "single appends, 1 writer: p99", "ms", logs, p99),
    ])
}

/// A row of one figure per log, given in the order of `logs` (which is [`SYSTEMS`],
/// then PostgreSQL when it is measured).
fn row_of_logs(
    workload: &'static str,
    metric: &str,
    unit: &'static str,
    logs: &[Log],
    values: Vec<Option<(f64, &'static str)>>,
) -> Row {
    let mut local = [None; 3];
    let mut postgres = None;
    for (log, value) in logs.iter().zip(values) {
        match log.system() {
            System::Postgres => postgres = value,
            s => {
                let column = SYSTEMS.iter().position(|c| *c == s);
                local[column.expect("a local log is one of SYSTEMS")] = value;
            }
        }
    }
    Row::new(workload, metric, unit, local).postgres(postgres)
}

/// W2: 16 writers on different streams, one event per durable append.
fn concurrent_appends(
    logs: &[Log],
    people: u64,
    settings: &Settings,
    w1: &Row,
) -> Result<Vec<Row>> {
    let writers_n = settings.w2_writers;
    let per_round = settings
        .w2_appends_per_writer
        .div_ceil(settings.append_rounds);
    // Writer w appends trips W2_FIRST_TRIP + w + 16k: its own trip, sale and note streams.
    let per_writer = writer_events(
        people,
        2,
        W2_FIRST_TRIP,
        writers_n,
        per_round * settings.append_rounds,
    );
    let mut writers: Vec<Vec<Box<dyn systems::Writer>>> = logs
        .iter()
        .map(|l| (0..writers_n).map(|_| l.writer()).collect::<Result<_>>())
        .collect::<Result<_>>()?;
    let all_logs: Vec<usize> = (0..logs.len()).collect();
    let results = rounds(&all_logs, settings.append_rounds, |s, round| {
        let barrier = std::sync::Barrier::new(writers_n + 1);
        let (latencies, started) = std::thread::scope(|scope| -> Result<_> {
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
            Ok((latencies, started))
        })?;
        let wall = started.elapsed();
        logs[s].views_caught_up()?;
        Ok((latencies, wall, started.elapsed()))
    })?;
    let (mut rate, mut caught_up, mut p50, mut p99) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (log, per_round) in logs.iter().zip(results) {
        let rates: Vec<f64> = per_round
            .iter()
            .map(|(l, wall, _)| l.len() as f64 / wall.as_secs_f64())
            .collect();
        let caught_up_rates: Vec<f64> = per_round
            .iter()
            .map(|(l, _, until_caught_up)| l.len() as f64 / until_caught_up.as_secs_f64())
            .collect();
        let all = sorted_ms(per_round.into_iter().flat_map(|(l, _, _)| l));
        let d = log.system().durability();
        rate.push(Some((median(&rates), d)));
        caught_up.push(Some((median(&caught_up_rates), d)));
        p50.push(Some((percentile(&all, 50.0), d)));
        p99.push(Some((percentile(&all, 99.0), d)));
    }
    let row = row_of_logs("W2", "single appends, 16 writers", "events/s", logs, rate);
    let value = |f: &Option<report::Figure>| f.as_ref().map_or(f64::NAN, |f| f.value);
    let over_w1 = value(&row.chronicle) / value(&w1.chronicle);
    let over_sqlite = row.chronicle_over_sqlite.unwrap_or(f64::NAN);
    let met = over_w1 >= 5.0 && over_sqlite >= 2.0;
    // Group commit over the network: PostgreSQL's own 16 writers ÷ its 1 writer.
    let pg_over_w1 = (row.postgres.is_some())
        .then(|| value(&row.postgres) / value(&w1.postgres))
        .map(|r| {
            Row::new(
                "W2",
                "16 writers ÷ 1 writer (W1)",
                "×",
                [Some((over_w1, "none")), None, None],
            )
            .postgres(Some((r, "none")))
            .target(format!("PostgreSQL ≥5× W1 (is {r:.2}×)"), r >= 5.0)
        });
    let mut rows = vec![
        row.target(
            format!("≥5× W1 (is {over_w1:.2}×), ≥2× SQLite (is {over_sqlite:.2}×)"),
            met,
        ),
        row_of_logs("W2", CAUGHT_UP_W2, "events/s", logs, caught_up),
        row_of_logs("W2", "single appends, 16 writers: p50", "ms", logs, p50),
        row_of_logs("W2", "single appends, 16 writers: p99", "ms", logs, p99),
    ];
    rows.extend(pg_over_w1);
    Ok(rows)
}

/// W8: the release `chronicle serve`, on the sled store (one server: a sled store has
/// one) and on the PostgreSQL log `url` (one server, then two, each with its own views
/// folder). In each round: `clients` readers for a fixed time through one sled server,
/// one PostgreSQL server and both PostgreSQL servers; then 16 writers appending single
/// events through the same three, and 2 writers appending batches of 1,000. Rates are
/// medians over the rounds; the two-server ratios are medians of each round's ratio.
fn serve_load(
    root: &Path,
    n: u64,
    people: u64,
    settings: &Settings,
    tools: &Tools,
    url: &str,
    keep: bool,
) -> Result<Vec<Row>> {
    eprintln!("  servers: starting one on sled and two on PostgreSQL (views catching up)…");
    let log = |name: &str| root.join(format!("serve-{name}-{n}.log"));
    let sled_store = System::Chronicle.dir(root, n);
    let sled = Server::start(
        &tools.chronicle,
        sled_store.to_str().context("a UTF-8 store path")?,
        None,
        &log("sled"),
    )?;
    let views: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|v| root.join(format!("pg-views-{v}-{n}")))
        .collect();
    for v in &views {
        let _ = std::fs::remove_dir_all(v);
    }
    let a = Server::start(&tools.chronicle, url, Some(&views[0]), &log("pg-a"))?;
    let b = Server::start(&tools.chronicle, url, Some(&views[1]), &log("pg-b"))?;
    let setups: [&[&Server]; 3] = [&[&sled], &[&a], &[&a, &b]];

    let questions = servers::Questions {
        trips: (0..payload::trips_in(n).max(1))
            .map(payload::trip_stream)
            .collect(),
        entities: (0..people).map(payload::person).collect(),
    };
    let duration = Duration::from_secs_f64(settings.w8_read_seconds);
    let mut reads: [Vec<servers::Load>; 3] = Default::default();
    // Where the CPU went during the reads, per setup and round.
    let mut cpu: [Vec<servers::Cpu>; 3] = Default::default();
    for round in 0..settings.rounds {
        for (i, setup) in setups.iter().enumerate() {
            let seed = (round * 3 + i) as u64;
            let backends = if i == 0 {
                Vec::new()
            } else {
                servers::backends(url)?
            };
            let (load, used) = servers::with_cpu(setup, &backends, || {
                servers::read_load(setup, settings.w8_clients, duration, &questions, seed)
            })?;
            reads[i].push(load);
            cpu[i].push(used);
        }
    }
    // The same reads with each PostgreSQL server confined to a CPU of its own, as two
    // hosts would each bring their own: server a alone on the first CPU, then a and b,
    // b on the second. PostgreSQL and the clients are not confined (they run on both
    // CPUs). Only with 2 CPUs or more.
    let mut confined: [Vec<servers::Load>; 2] = Default::default();
    let mut confined_cpu: [Vec<servers::Cpu>; 2] = Default::default();
    let allowed = servers::allowed_cpus();
    if allowed.len() >= 2 {
        servers::confine(a.pid(), Some(&allowed[0..1]))?;
        servers::confine(b.pid(), Some(&allowed[1..2]))?;
        for round in 0..settings.rounds {
            for (k, setup) in setups[1..].iter().enumerate() {
                let seed = (1000 + round * 2 + k) as u64;
                let backends = servers::backends(url)?;
                let (load, used) = servers::with_cpu(setup, &backends, || {
                    servers::read_load(setup, settings.w8_clients, duration, &questions, seed)
                })?;
                confined[k].push(load);
                confined_cpu[k].push(used);
            }
        }
        servers::confine(a.pid(), None)?;
        servers::confine(b.pid(), None)?;
    }

    // Appends: each round and setup takes `per_round` events of every writer, `batch`
    // to a request. Each (round, setup) has trips of its own, cut to `per_round`, so
    // that every trip starts with its announcement: an arrival at a trip the log has
    // not seen announced (given to another setup) would be refused.
    let append_rounds = |seed: u64, first: u64, writers: usize, per_round: usize, batch: usize| {
        let mut loads: [Vec<servers::Load>; 3] = Default::default();
        for round in 0..settings.rounds {
            for (i, setup) in setups.iter().enumerate() {
                let chunk = (round * setups.len() + i) as u64;
                let per_writer = writer_events(
                    people,
                    seed + chunk,
                    first + chunk * W8_CHUNK_TRIPS,
                    writers,
                    per_round,
                );
                let slices: Vec<&[Payload]> = per_writer
                    .iter()
                    .map(|events| &events[..per_round])
                    .collect();
                loads[i].push(servers::append_load(setup, &slices, batch)?);
            }
        }
        anyhow::Ok(loads)
    };
    let writers_n = settings.w2_writers;
    let per_round = settings.w8_appends_per_writer.div_ceil(settings.rounds);
    let appends = append_rounds(80, W8_FIRST_TRIP, writers_n, per_round, 1)?;
    // Batches of 1,000 from two writers (one per server when there are two).
    let batches = append_rounds(90, W8_BATCH_FIRST_TRIP, 2, W8_BATCH, W8_BATCH)?;
    drop((sled, a, b));
    // The servers' logs are kept when a server fails (the error names them).
    if !keep {
        for v in &views {
            let _ = std::fs::remove_dir_all(v);
        }
        for name in ["sled", "pg-a", "pg-b"] {
            let _ = std::fs::remove_file(log(name));
        }
    }

    let rate =
        |loads: &[servers::Load]| median(&loads.iter().map(|l| l.rate()).collect::<Vec<_>>());
    let latency = |loads: &[servers::Load], p: f64| {
        let all: Vec<f64> = loads.iter().flat_map(|l| l.latencies_ms.clone()).collect();
        let mut all = all;
        all.sort_by(f64::total_cmp);
        percentile(&all, p)
    };
    let two_over_one = |loads: &[Vec<servers::Load>; 3]| {
        let ratios: Vec<f64> = loads[2]
            .iter()
            .zip(&loads[1])
            .map(|(two, one)| two.rate() / one.rate())
            .collect();
        median(&ratios)
    };
    let none = |v: f64| Some((v, "none"));
    let clients = settings.w8_clients;
    let mut rows = vec![
        Row::new(
            "W8",
            format!("reads through 1 server, {clients} clients (GET /trips/{{id}}, /timeline?entity=…&limit=50)"),
            "requests/s",
            [none(rate(&reads[0])), None, None],
        )
        .postgres(none(rate(&reads[1]))),
        Row::new(
            "W8",
            "reads through 1 server: p50",
            "ms",
            [none(latency(&reads[0], 50.0)), None, None],
        )
        .postgres(none(latency(&reads[1], 50.0))),
        Row::new(
            "W8",
            "reads through 1 server: p99",
            "ms",
            [none(latency(&reads[0], 99.0)), None, None],
        )
        .postgres(none(latency(&reads[1], 99.0))),
        Row::new(
            "W8",
            format!("reads through 2 servers, {clients} clients split"),
            "requests/s",
            [None; 3],
        )
        .postgres(none(rate(&reads[2]))),
    ];
    // Cores busy during the reads (medians over the rounds): what a read costs where.
    let busy = |setup: usize, part: usize| {
        none(median(
            &cpu[setup].iter().map(|c| c.0[part]).collect::<Vec<_>>(),
        ))
    };
    for (part, name) in servers::Cpu::PARTS.into_iter().enumerate() {
        // The sled server has no PostgreSQL.
        let sled = (part != 1).then(|| busy(0, part)).flatten();
        rows.push(
            Row::new(
                "W8",
                format!("reads through 1 server: cores busy in {name}"),
                "cores",
                [sled, None, None],
            )
            .postgres(busy(1, part)),
        );
    }
    for (part, name) in servers::Cpu::PARTS.into_iter().enumerate() {
        rows.push(
            Row::new(
                "W8",
                format!("reads through 2 servers: cores busy in {name}"),
                "cores",
                [None; 3],
            )
            .postgres(busy(2, part)),
        );
    }
    let r = two_over_one(&reads);
    rows.push(
        Row::new("W8", "reads: 2 servers ÷ 1 server", "×", [None; 3])
            .postgres(none(r))
            .target(format!("PostgreSQL >1× (is {r:.2}×)"), r > 1.0),
    );
    if !confined[0].is_empty() {
        let label = [
            "reads, each server confined to a CPU of its own: through 1 server (1 CPU)",
            "reads, each server confined to a CPU of its own: through 2 servers (2 CPUs)",
        ];
        for (k, label) in label.iter().enumerate() {
            rows.push(
                Row::new("W8", *label, "requests/s", [None; 3]).postgres(none(rate(&confined[k]))),
            );
        }
        for (k, servers_n) in ["1 server", "2 servers"].iter().enumerate() {
            for (part, name) in servers::Cpu::PARTS.into_iter().enumerate() {
                let used: Vec<f64> = confined_cpu[k].iter().map(|c| c.0[part]).collect();
                rows.push(
                    Row::new(
                        "W8",
                        format!("reads confined, {servers_n}: cores busy in {name}"),
                        "cores",
                        [None; 3],
                    )
                    .postgres(none(median(&used))),
                );
            }
        }
        let ratios: Vec<f64> = confined[1]
            .iter()
            .zip(&confined[0])
            .map(|(two, one)| two.rate() / one.rate())
            .collect();
        rows.push(
            Row::new(
                "W8",
                "reads confined: 2 servers (a CPU each) ÷ 1 server (1 CPU)",
                "×",
                [None; 3],
            )
            .postgres(none(median(&ratios))),
        );
    }
    let fsync = |v: f64| Some((v, System::Chronicle.durability()));
    let commit = |v: f64| Some((v, System::Postgres.durability()));
    rows.push(
        Row::new(
            "W8",
            format!("appends through 1 server, {writers_n} writers (POST /events, one event each)"),
            "events/s",
            [fsync(rate(&appends[0])), None, None],
        )
        .postgres(commit(rate(&appends[1]))),
    );
    rows.push(
        Row::new(
            "W8",
            "appends through 1 server: p99",
            "ms",
            [fsync(latency(&appends[0], 99.0)), None, None],
        )
        .postgres(commit(latency(&appends[1], 99.0))),
    );
    rows.push(
        Row::new(
            "W8",
            format!("appends through 2 servers, {writers_n} writers split"),
            "events/s",
            [None; 3],
        )
        .postgres(commit(rate(&appends[2]))),
    );
    rows.push(
        Row::new("W8", "appends: 2 servers ÷ 1 server", "×", [None; 3])
            .postgres(none(two_over_one(&appends))),
    );
    let events = |loads: &[servers::Load]| rate(loads) * W8_BATCH as f64;
    rows.push(
        Row::new(
            "W8",
            "batches of 1,000 through 1 server, 2 writers (POST /events, an array)",
            "events/s",
            [fsync(events(&batches[0])), None, None],
        )
        .postgres(commit(events(&batches[1]))),
    );
    rows.push(
        Row::new(
            "W8",
            "batches of 1,000 through 2 servers, 2 writers split",
            "events/s",
            [None; 3],
        )
        .postgres(commit(events(&batches[2]))),
    );
    rows.push(
        Row::new("W8", "batches: 2 servers ÷ 1 server", "×", [None; 3])
            .postgres(none(two_over_one(&batches))),
    );
    Ok(rows)
}

/// W8's batches: events per `POST /events`.
const W8_BATCH: usize = 1000;
/// Trip numbers set aside for each (round, setup) of W8's appends.
const W8_CHUNK_TRIPS: u64 = 1_000_000;

/// `events_each` events for each of `writers` writers, in order: writer `w` appends
/// trips `first + w + writers·k`, so that writers never share a trip, sale or note
/// stream (with `first` a multiple of `NOTE_STREAMS` and `writers` dividing it).
fn writer_events(
    people: u64,
    seed: u64,
    first: u64,
    writers: usize,
    events_each: usize,
) -> Vec<Vec<Payload>> {
    let trips_each = events_each as u64 / payload::EVENTS_PER_TRIP + 1;
    let mut generator = payload::Trips::new(people, seed);
    let mut per_writer: Vec<Vec<Payload>> = (0..writers).map(|_| Vec::new()).collect();
    for k in 0..trips_each {
        for (w, events) in per_writer.iter_mut().enumerate() {
            let trip = first + w as u64 + writers as u64 * k;
            events.extend(generator.trip(trip).into_iter().map(Payload::new));
        }
    }
    per_writer
}

/// One W5 question: a trip and an official, now (`None`) or as of a position.
struct Pick {
    trip: String,
    trip_at: Option<u64>,
    person: String,
    person_at: Option<u64>,
}

/// W5: `trip show` and a 50-entry entity timeline, on random trips and officials: now,
/// and as of random positions (each trip asked of a position where it exists). The
/// same queries run twice: first right after the store was opened (each reads
/// documents no query has read yet: from the file), then again (from sled's cache),
/// which is the figure the targets are about.
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
    let mut picks: Vec<Pick> = (0..settings.queries)
        .map(|_| Pick {
            trip: payload::trip_stream(rng.below(trips)),
            trip_at: None,
            person: payload::person(rng.below(people)),
            person_at: None,
        })
        .collect();
    // As of a position: after every official's registration; a trip among those
    // announced by then (trip t starts at position people + 18t + 1).
    let after_people = n.saturating_sub(people).max(1);
    picks.extend((0..settings.queries).map(|_| {
        let trip_at = people + 1 + rng.below(after_people);
        let announced = (trip_at - people - 1) / payload::EVENTS_PER_TRIP + 1;
        Pick {
            trip: payload::trip_stream(rng.below(announced)),
            trip_at: Some(trip_at.min(n)),
            person: payload::person(rng.below(people)),
            person_at: Some(people + rng.below(after_people)),
        }
    }));
    // Interleave: each round asks both kinds.
    let (now, past): (Vec<_>, Vec<_>) = picks.into_iter().partition(|p| p.trip_at.is_none());
    let picks: Vec<Pick> = now
        .into_iter()
        .zip(past)
        .flat_map(|(a, b)| [a, b])
        .collect();
    let per_round = picks.len().div_ceil(settings.rounds);
    // Samples: [trip now, timeline now, trip as-of, timeline as-of] × [chronicle, -, SQLite].
    type Samples = [[Vec<f64>; 3]; 4];
    let pass = || -> Result<Samples> {
        let results = rounds(&[0, 1], settings.rounds, |r, round| {
            let end = ((round + 1) * per_round).min(picks.len());
            let chunk = &picks[(round * per_round).min(end)..end];
            let mut times: [Vec<Duration>; 4] = Default::default();
            for p in chunk {
                let past = usize::from(p.trip_at.is_some()) * 2;
                let t = Instant::now();
                let found = readers[r].trip(&p.trip, p.trip_at)?;
                times[past].push(t.elapsed());
                anyhow::ensure!(found > 0, "trip {} is empty at {:?}", p.trip, p.trip_at);
                if r == 0 {
                    let t = Instant::now();
                    readers[r].timeline(&p.person, p.person_at)?;
                    times[past + 1].push(t.elapsed());
                }
            }
            Ok(times)
        })?;
        let mut samples: Samples = Default::default();
        for (r, per_round) in results.into_iter().enumerate() {
            let slot = if r == 0 { 0 } else { 2 };
            let mut kinds: [Vec<Duration>; 4] = Default::default();
            for times in per_round {
                for (kind, t) in times.into_iter().enumerate() {
                    kinds[kind].extend(t);
                }
            }
            for (kind, t) in kinds.into_iter().enumerate() {
                samples[kind][slot] = sorted_ms(t);
            }
        }
        Ok(samples)
    };
    let cold = pass()?;
    let warm = pass()?;
    let at = |samples: &[Vec<f64>; 3], p: f64| {
        [0, 1, 2].map(|i| (!samples[i].is_empty()).then(|| (percentile(&samples[i], p), "none")))
    };
    let under = |row: Row, limit: f64| {
        let v = row.chronicle.as_ref().map_or(f64::NAN, |f| f.value);
        row.target(format!("<{limit} ms (is {})", number(v)), v < limit)
    };
    let names = [
        "trip show",
        "timeline, 50 entries of an entity",
        "trip show --as-of a random position",
        "timeline --as-of a random position",
    ];
    let mut rows = Vec::new();
    for (kind, name) in names.into_iter().enumerate() {
        let limit = if kind < 2 { 1.0 } else { 10.0 };
        rows.push(Row::new(
            "W5",
            format!("{name}: p50"),
            "ms",
            at(&warm[kind], 50.0),
        ));
        rows.push(under(
            Row::new("W5", format!("{name}: p99"), "ms", at(&warm[kind], 99.0)),
            limit,
        ));
        rows.push(Row::new(
            "W5",
            format!("{name}, first read after open: p99"),
            "ms",
            at(&cold[kind], 99.0),
        ));
    }
    Ok(rows)
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
    run_child(child_command(mode, s, dir, n, seed), mode, s)
}

/// Runs a child made by [`child_command`] and returns what it printed.
fn run_child(mut cmd: Command, mode: &str, s: System) -> Result<Value> {
    let out = cmd.output()?;
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
        "build" => {
            let log = match system {
                System::Postgres => Log::open_pg(args.postgres.as_deref().context("--postgres")?)?,
                local => Log::open(local, &dir)?,
            };
            build(log, n)?
        }
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
        "open" => {
            let o = systems::open_time(system, &dir)?;
            json!({"open_ms": o.open_ms, "views_ms": o.views_ms, "lag": o.lag})
        }
        "trees" => serde_json::to_value(systems::tree_sizes(&dir)?)?,
        "view-keys" => {
            let (keys, elapsed) = systems::write_view_keys(&dir)?;
            json!({"keys": keys, "seconds": elapsed.as_secs_f64()})
        }
        "replay-writes" => {
            let (writes, batches, elapsed) = systems::apply_replay_writes(&dir)?;
            json!({"writes": writes, "batches": batches, "seconds": elapsed.as_secs_f64()})
        }
        "loop" => append_forever(system, &dir, n, args.seed.unwrap_or(0))?,
        other => bail!("unknown child mode {other}"),
    };
    println!("{result}");
    Ok(())
}

/// W3: a fresh store of the first `n` events of the generated log, appended in atomic
/// durable batches of 1,000. Only the appends are timed (not generating or parsing, nor
/// dropping the batch: chronicle's writer takes the events over).
/// chronicle's projector folds beside it, as it would; how far it got is reported.
fn build(log: Log, n: u64) -> Result<Value> {
    let mut writer = log.writer()?;
    let mut events = payload::log(n).peekable();
    let mut elapsed = Duration::ZERO;
    let mut input_bytes = 0;
    while events.peek().is_some() {
        let batch: Vec<Payload> = events.by_ref().take(1000).map(Payload::new).collect();
        input_bytes += batch.iter().map(|p| p.json.len()).sum::<usize>();
        let t = Instant::now();
        writer.append_owned(batch)?;
        elapsed += t.elapsed();
    }
    let projected = match &log {
        Log::Chronicle(store) => store.projected().0,
        _ => n,
    };
    drop(writer);
    drop(log);
    Ok(
        json!({"seconds": elapsed.as_secs_f64(), "events": n, "input_bytes": input_bytes,
              "projected": projected, "vmhwm_kib": vmhwm_kib()}),
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
        .and_then(|s| vmhwm_of(&s))
        .unwrap_or(0)
}

/// The `VmHWM` of a `/proc/<pid>/status` (none for a process that has exited).
fn vmhwm_of(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
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

/// How chronicle's figures change with the size of the log.
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
        ("W3", "appends in batches of 1,000"),
        (
            "W7",
            "chronicle import, end to end with views caught up (sled: W3; SQLite: Python script)",
        ),
        (
            "W7",
            "import: peak memory (VmHWM) of the process (SQLite: the script)",
        ),
        ("W4", "replay: rebuild all views (baselines: scan + parse)"),
        (
            "W4",
            "projector catch-up on the first open after the build (baselines: scan + parse)",
        ),
        ("W5", "trip show: p99"),
        ("W5", "timeline, 50 entries of an entity: p99"),
        ("W5", "trip show --as-of a random position: p99"),
        ("W5", "timeline --as-of a random position: p99"),
        (
            "W6",
            "open, clean shutdown, later opens (views current, included)",
        ),
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
            unit = row.map_or(unit, |r| r.unit);
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
        if metric.contains("--as-of") {
            g.target = Some(format!("≤2× from the smallest log (is {ratio:.2}×)"));
            g.met = Some(ratio <= 2.0);
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
