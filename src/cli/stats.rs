//! `chronicle stats`: what the store holds.

use super::output::{self, Table};
use super::{App, Backend, UsageError};
use chronicle::model::Position;
use chronicle::model::as_of::AsOf;
use chronicle::store::{EventStore, Stats};
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle stats
  chronicle stats --json | jq .events
  chronicle stats --as-of 40
  chronicle stats --as-of 2026-11-30T10:00:00Z";

/// Counts have no publication date: a query's `--known-at` asks by that.
const KNOWN_AT: &str = "a query's --known-at, like chronicle timeline --known-at ";

/// Count events, streams and types; show the head of the log and the size on disk.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Count the log as it stood at this position, or at this time of the `recorded`
    /// clock (RFC 3339, e.g. 2026-11-30T10:00:00Z); the size on disk stays today's.
    #[arg(long, value_name = "POSITION|TIME", allow_negative_numbers = true)]
    as_of: Option<String>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let as_of = args.as_of.as_deref();
    let backend = app.open_or_server(true)?;
    let store_name = match &backend {
        Backend::Store(_) => app.describe(),
        Backend::Server(api) => format!("the server at {}", api.url()),
    };
    let (stats, checkpoints, at) = match backend {
        Backend::Store(store) if as_of.is_some() => {
            let at = super::as_of::position(&store, as_of, KNOWN_AT)?;
            (store.stats_as_of(at)?, Vec::new(), Some(at))
        }
        Backend::Store(store) => {
            // The stats first: they bring the views up to the head they count.
            let stats = store.stats()?;
            let checkpoints: Vec<_> = store
                .checkpoints()?
                .into_iter()
                .map(|(projection, version, position)| {
                    serde_json::json!({"projection": projection, "version": version, "position": position})
                })
                .collect();
            (stats, checkpoints, None)
        }
        Backend::Server(api) => {
            if let Some(text) = as_of {
                // Checked here, so that a mistake is told in the CLI's words.
                AsOf::parse(text, "--as-of", KNOWN_AT).map_err(UsageError)?;
            }
            let query = [("as_of", args.as_of.clone())];
            let mut answer: serde_json::Value = api.get("/stats", &query)?;
            let checkpoints = match as_of {
                Some(_) => Vec::new(),
                None => super::remote::part(&mut answer, "checkpoints")?,
            };
            let at = as_of.and(answer["as_of"].as_u64()).map(Position);
            let stats: Stats = serde_json::from_value(answer)
                .map_err(|e| anyhow::anyhow!("the server's answer is not stats ({e})"))?;
            (stats, checkpoints, at)
        }
    };
    let mut out = output::stdout();
    if app.json {
        let mut report = serde_json::to_value(&stats)?;
        match at {
            Some(at) => report["as_of"] = at.0.into(),
            None => report["checkpoints"] = checkpoints.into(),
        }
        output::json_line(&mut out, &report)?;
    } else {
        writeln!(out, "store:        {store_name}")?;
        if let Some(at) = at {
            writeln!(
                out,
                "as of:        position {at} (the size on disk is today's)"
            )?;
        }
        writeln!(out, "events:       {}", stats.events)?;
        writeln!(out, "streams:      {}", stats.streams)?;
        writeln!(
            out,
            "head:         position {} hash {}",
            stats.head.position, stats.head.hash
        )?;
        writeln!(
            out,
            "size on disk: {} ({} bytes): the log {}, the views {} (rebuilt from the log by `chronicle replay`)",
            output::size(stats.size_on_disk),
            stats.size_on_disk,
            output::size(stats.size_on_disk - stats.views_size_on_disk.min(stats.size_on_disk)),
            output::size(stats.views_size_on_disk)
        )?;
        writeln!(out)?;
        let mut table = Table::new(&["TYPE", "EVENTS"]);
        for (ty, n) in &stats.per_type {
            table.row(vec![ty.clone(), n.to_string()]);
        }
        table.write(&mut out)?;
        if at.is_some() {
            out.flush()?;
            return Ok(());
        }
        writeln!(out)?;
        let mut table = Table::new(&["PROJECTION", "VERSION", "CHECKPOINT"]);
        for c in &checkpoints {
            table.row(vec![
                c["projection"].as_str().unwrap_or_default().to_owned(),
                c["version"].to_string(),
                c["position"].to_string(),
            ]);
        }
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
