//! `chronicle import`: files and folders of JSON Lines, checked in full before anything
//! is written, then appended in atomic batches. Idempotent: importing twice adds nothing,
//! and an interrupted import is finished by running it again. An `export` restores
//! with its positions, times and hashes into an empty store.

use super::App;
use super::input::{Parsed, collect_files};
use super::output::{self, Table};
use chronicle::store::{EventStore, SledStore};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  chronicle import events/                 every .jsonl below events/, in name order
  chronicle import a.jsonl b.jsonl
  chronicle export --out backup.jsonl && chronicle --db restored.db import backup.jsonl

Nothing is written unless every line is valid. Running the same import again adds nothing.";

/// Import JSON Lines files or folders of them.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Files or folders (`.jsonl`, searched recursively, in name order); `-` for stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Events per atomic batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch: u64,
}

/// What an import did.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub files: usize,
    pub read: usize,
    pub new: usize,
    pub already_present: usize,
    pub head: u64,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let files = collect_files(&args.paths)?;
    let mut parsed = Parsed::default();
    for file in &files {
        parsed.add_file(file, true)?;
    }
    let store = app.open_store()?;
    let batch = usize::try_from(args.batch).unwrap_or(1000);
    let summary = import(&store, parsed, files.len(), batch)?;
    print_summary(&summary, app.json)
}

/// Checks every event against the store, then appends them in batches.
pub fn import(
    store: &SledStore,
    parsed: Parsed,
    files: usize,
    batch: usize,
) -> anyhow::Result<Summary> {
    let checking = output::spinner(&format!(
        "checking {} events against the log",
        parsed.events.len()
    ));
    store
        .check(parsed.events.clone())
        .map_err(|e| parsed.locate(e))?;
    checking.finish_and_clear();
    let bar = output::progress(parsed.events.len() as u64, "importing");
    let mut new = 0;
    for (chunk_index, chunk) in parsed.events.chunks(batch).enumerate() {
        let appended = store.append(chunk.to_vec()).map_err(|e| {
            // Point the error at the right line: indexes are relative to the chunk.
            let offset = chunk_index * batch;
            parsed.locate(shift_index(e, offset))
        })?;
        new += appended.iter().filter(|e| e.new).count();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(Summary {
        files,
        read: parsed.events.len(),
        new,
        already_present: parsed.events.len() - new,
        head: store.head()?.position.0,
    })
}

fn shift_index(err: chronicle::Error, offset: usize) -> chronicle::Error {
    use chronicle::Error;
    match err {
        Error::Invalid {
            index: Some(i),
            error,
        } => Error::Invalid {
            index: Some(i + offset),
            error,
        },
        Error::Conflict {
            index,
            stream,
            expected,
            actual,
        } => Error::Conflict {
            index: index + offset,
            stream,
            expected,
            actual,
        },
        other => other,
    }
}

pub fn print_summary(summary: &Summary, json: bool) -> anyhow::Result<()> {
    let mut out = output::stdout();
    if json {
        output::json_line(&mut out, summary)?;
    } else {
        let mut table = Table::new(&[
            "FILES",
            "EVENTS READ",
            "NEW",
            "ALREADY PRESENT",
            "LOG ENDS AT",
        ]);
        table.row(vec![
            summary.files.to_string(),
            summary.read.to_string(),
            summary.new.to_string(),
            summary.already_present.to_string(),
            summary.head.to_string(),
        ]);
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
