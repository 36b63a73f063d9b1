//! `chronicle export`: the whole log as JSON Lines, streamed, for backups, restores
//! and migrations across storage versions.

use super::log::Pages;
use super::output;
use super::{App, Backend};
use chronicle::model::RecordedEvent;
use chronicle::store::{EventStore, ReadFilter};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  chronicle export --out backup.jsonl
  chronicle export | gzip > backup.jsonl.gz
  chronicle --db restored.db import backup.jsonl     restore: same positions, times and hashes";

/// Write every event, in position order, as JSON Lines (the format `import` restores).
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Write to this file instead of stdout (written beside it, then renamed into place).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    // A store held by a server is exported through its API, page by page: a backup that
    // needs no downtime. Appends made meanwhile may or may not be in it; it is the log
    // up to some position, as any export is.
    if let Some(path) = &args.out {
        super::out_file::refuse_inside(path, &app.own_folders())?;
    }
    match app.open_or_server(true)? {
        Backend::Store(store) => {
            let total = store.head()?.position.0;
            let events = store
                .read(&ReadFilter::default())
                .map(|e| e.map_err(anyhow::Error::from));
            export(&args, app, total, events)
        }
        Backend::Server(api) => {
            let health: serde_json::Value = api.get("/healthz", &[])?;
            let total = health["head"].as_u64().unwrap_or(0);
            export(
                &args,
                app,
                total,
                Pages::new(&api, ReadFilter::default(), None),
            )
        }
    }
}

fn export(
    args: &Args,
    app: &App,
    total: u64,
    events: impl Iterator<Item = anyhow::Result<RecordedEvent>>,
) -> anyhow::Result<()> {
    let bar = output::progress(total, "exporting");
    // The count and the last event's `POSITION:HASH`, which proves a restore whole.
    let write_all = |out: &mut dyn Write| -> anyhow::Result<(u64, Option<String>)> {
        let (mut n, mut last) = (0u64, None);
        for event in events {
            let event = event?;
            output::json_line(out, &event)?;
            last = Some((event.position, event.hash));
            n += 1;
            if n.is_multiple_of(1000) {
                bar.set_position(n);
            }
        }
        out.flush()?;
        Ok((n, last.map(|(position, hash)| format!("{position}:{hash}"))))
    };
    let (n, last, to) = match &args.out {
        None => {
            let (n, last) = write_all(&mut output::stdout())?;
            bar.finish_and_clear();
            // Told on a terminal only: stdout carries the export itself.
            if app.json || !std::io::stderr().is_terminal() {
                return Ok(());
            }
            (n, last, "stdout".to_owned())
        }
        Some(path) => {
            let mut out = super::out_file::OutFile::create(path)?;
            let (n, last) = write_all(&mut out)?;
            out.finish()?;
            bar.finish_and_clear();
            if app.json {
                let summary = serde_json::json!({"events": n, "file": path, "last": last});
                output::json_line(&mut output::stdout(), &summary)?;
                return Ok(());
            }
            (n, last, path.display().to_string())
        }
    };
    match last {
        // A copy cut between two lines would still import: the last event tells.
        Some(head) => note!(
            "exported {n} event{} to {to}, the last {head}; after restoring it, `chronicle verify --expect-head {head}` proves the restore whole",
            if n == 1 { "" } else { "s" },
        ),
        None => note!("exported no events to {to}: the log is empty"),
    }
    Ok(())
}
