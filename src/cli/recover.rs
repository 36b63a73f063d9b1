//! `chronicle recover`: the way back for a store that will not open. Replaces a damaged
//! settings file (moving the old one aside, never deleting it), reopens the store,
//! checks it like `verify`, rebuilds the views when only they are wrong, and with
//! `--out` writes every event that can be read and chains as JSON Lines that `import`
//! restores.

use super::output;
use super::{App, UsageError};
use chronicle::Error;
use chronicle::model::Position;
use chronicle::store::{EventStore, ReadFilter, SledStore, recover};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

const EXAMPLES: &str = "\
Examples:
  chronicle --db news.db recover                      make news.db open again
  chronicle --db news.db recover --out rescued.jsonl  and write every readable event
  chronicle --db fresh.db import rescued.jsonl        restore them into a new store

What it does:
  1. opens the store as it is (every open already removes the unfinished sled
     snapshots, snap.*.generating, that a kill -9 can leave): a store that opens
     and verifies needs nothing;
  2. when sled cannot open it, replaces a damaged settings file `conf` with the one
     chronicle's settings give (the same for every store); the old one is moved to a
     recovered-<time>/ folder inside the store. Nothing is deleted. If sled still
     cannot open the store, the file is put back and the message says so;
  3. checks the store like `verify`, and rebuilds the views if only they are wrong;
  4. with --out, writes the events up to the first one that cannot be read or does
     not chain: a file that `import` restores into a new store.

Exit codes: 0 the store opens and verifies; 4 it cannot be recovered (restore from an
export); 5 another process has the store open (stop it first).";

/// Make a store that will not open usable again, keeping every event that can be read.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Also write every event that can be read (and chains) to FILE as JSON Lines, the
    /// format `import` restores with positions, times and hashes.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let db = app.sled_dir(
        "`chronicle recover` works on a sled store folder; a PostgreSQL log is recovered with PostgreSQL's own tools (and `chronicle verify` checks it)",
    )?;
    if let Some(path) = &args.out {
        super::out_file::refuse_inside(path, &app.own_folders())?;
    }
    if !db.join("conf").is_file() && !db.join("db").is_file() {
        return Err(UsageError(format!(
            "no store at {}; pass --db the store's folder",
            db.display()
        ))
        .into());
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let recovered = recover(db, &stamp)
        .map_err(|e| anyhow::Error::new(e).context(format!("recovering {}", db.display())))?;
    let mut notes: Vec<String> = Vec::new();
    if let Some(error) = &recovered.failed_with {
        notes.push(format!("the store did not open: {error}"));
    }
    if let Some(aside) = &recovered.aside {
        notes.push(format!(
            "moved aside into {}: {}",
            aside.display(),
            recovered.moved.join(", ")
        ));
    }
    let store = recovered.store;
    let mut problem = check(&store)?;
    if let Some((0, _)) = problem {
        // Not about an event: the views or indexes derived from the log. Rebuild them.
        if store.rebuild(&[], Box::new(|_, _| {})).is_ok() {
            notes.push("the views did not match the log: rebuilt them from the log".into());
            problem = check(&store)?;
        }
    }
    let head = store.head()?;
    notes.push(format!(
        "the store opens: {} events, head {}:{}",
        head.position, head.position, head.hash
    ));
    let exported = match &args.out {
        Some(path) => {
            // Stop before the first event that does not chain, so that the file imports.
            let before = problem.as_ref().map(|(p, _)| *p).filter(|p| *p > 0);
            let n = export(&store, path, before)?;
            notes.push(format!("wrote {n} events to {}", path.display()));
            Some(n)
        }
        None => None,
    };
    match &problem {
        None => notes.push("verify: ok".into()),
        Some((position, text)) => notes.push(format!("verify: position {position}: {text}")),
    }
    let mut out = output::stdout();
    if app.json {
        output::json_line(
            &mut out,
            &json!({
                "failed_with": recovered.failed_with,
                "aside": recovered.aside,
                "moved": recovered.moved,
                "events": head.position.0,
                "head": format!("{}:{}", head.position, head.hash),
                "exported": exported,
                "problem": problem.as_ref().map(|(p, t)| json!({"position": p, "problem": t})),
            }),
        )?;
    } else {
        for note in &notes {
            writeln!(out, "{note}")?;
        }
    }
    out.flush()?;
    if let Some((position, text)) = problem {
        let rescue = match &args.out {
            Some(path) => format!(
                "the {} events before it are in {}: import them into a new store (`chronicle --db NEW import {}`)",
                exported.unwrap_or(0),
                path.display(),
                path.display()
            ),
            None => "`chronicle recover --out FILE` writes the events before it to FILE, which `import` restores into a new store".into(),
        };
        let later = readable_after(&store, position, head.position.0);
        let rest = match later.first() {
            Some(first) => format!(
                "; {} later events can still be read (`chronicle log --from {first}`), but not restored with their positions, since the chain has a hole",
                later.len()
            ),
            None => String::new(),
        };
        return Err(Error::Integrity(format!(
            "the store opens, but position {position}: {text}; {rescue}{rest}"
        ))
        .into());
    }
    Ok(())
}

/// The positions after `from` (and after the unreadable ones) whose events can be read.
fn readable_after(store: &SledStore, from: u64, head: u64) -> Vec<u64> {
    if from == 0 {
        return Vec::new();
    }
    let unreadable_until = (from..=head)
        .find(|p| matches!(store.get(Position(*p)), Ok(Some(_))))
        .unwrap_or(head + 1);
    // The event at `from` may itself be readable (one that does not chain).
    let start = if unreadable_until == from {
        from + 1
    } else {
        unreadable_until
    };
    (start..=head)
        .filter(|p| matches!(store.get(Position(*p)), Ok(Some(_))))
        .collect()
}

/// Runs `verify`; the first problem, by position (0 when it is not one event's). When
/// sled cannot read part of the log, the first position it cannot read.
fn check(store: &SledStore) -> anyhow::Result<Option<(u64, String)>> {
    match store.verify(&mut |_, _| {}) {
        // verify's own advice is to run this command.
        Ok(report) => Ok(report.problem.map(|(p, text)| {
            let text = match text.split_once("; run `chronicle recover") {
                Some((before, _)) => before.to_owned(),
                None => text,
            };
            (p.0, text)
        })),
        Err(error) => {
            let head = store.head()?.position.0;
            for p in 1..=head {
                if let Err(e) = store.get(Position(p)) {
                    return Ok(Some((p, format!("the event cannot be read ({e})"))));
                }
            }
            Ok(Some((0, error.to_string())))
        }
    }
}

/// Writes the events before position `before` (all when `None`) that can be read, in
/// order, stopping at the first that cannot, to `path` whole or not at all (`OutFile`).
fn export(store: &SledStore, path: &Path, before: Option<u64>) -> anyhow::Result<u64> {
    let mut out = super::out_file::OutFile::create(path)?;
    let mut n = 0;
    for event in store.read(&ReadFilter::default()) {
        let Ok(event) = event else { break };
        if before.is_some_and(|b| event.position.0 >= b) {
            break;
        }
        output::json_line(&mut out, &event)?;
        n += 1;
    }
    out.finish()?;
    Ok(n)
}
