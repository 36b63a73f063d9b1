//! `chronicle export`: the whole log as JSON Lines, streamed, for backups, restores
//! and migrations across storage versions.

use super::log::Pages;
use super::output;
use super::{App, Backend};
use chronicle::model::RecordedEvent;
use chronicle::store::{EventStore, ReadFilter};
use std::io::{BufWriter, Write};
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
    let write_all = |out: &mut dyn Write| -> anyhow::Result<u64> {
        let mut n: u64 = 0;
        for event in events {
            output::json_line(out, &event?)?;
            n += 1;
            if n.is_multiple_of(1000) {
                bar.set_position(n);
            }
        }
        out.flush()?;
        Ok(n)
    };
    match &args.out {
        None => {
            write_all(&mut output::stdout())?;
        }
        Some(path) => {
            if path.is_dir() {
                return Err(super::UsageError(format!(
                    "--out {} is a folder; give a file in it, such as {}",
                    path.display(),
                    path.join("backup.jsonl").display()
                ))
                .into());
            }
            // A crash mid-export must not leave a truncated file where a backup was:
            // the events go to `<file>.partial` beside it, renamed when complete.
            let mut partial = path.clone().into_os_string();
            partial.push(".partial");
            let partial = std::path::PathBuf::from(partial);
            let file = std::fs::File::create(&partial).map_err(|e| {
                super::UsageError(format!(
                    "cannot write {} (through {}): {e}; check that its folder exists and is writable",
                    path.display(),
                    partial.display()
                ))
            })?;
            let mut out = BufWriter::new(file);
            let n = write_all(&mut out)?;
            out.into_inner()
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?
                .sync_all()?;
            std::fs::rename(&partial, path)?;
            bar.finish_and_clear();
            if !app.json {
                note!("exported {n} events to {}", path.display());
            }
        }
    }
    bar.finish_and_clear();
    Ok(())
}
