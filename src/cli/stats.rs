//! `chronicle stats`: what the store holds.

use super::output::{self, Table};
use super::{App, Backend};
use chronicle::store::{EventStore, Stats};
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle stats
  chronicle stats --json | jq .events";

/// Count events, streams and types; show the head of the log and the size on disk.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {}

pub fn run(_args: Args, app: &App) -> anyhow::Result<()> {
    let (stats, checkpoints) = match app.open_or_server(true)? {
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
            (stats, checkpoints)
        }
        Backend::Server(api) => {
            let mut answer: serde_json::Value = api.get("/stats", &[])?;
            let checkpoints = super::remote::part(&mut answer, "checkpoints")?;
            let stats: Stats = serde_json::from_value(answer)
                .map_err(|e| anyhow::anyhow!("the server's answer is not stats ({e})"))?;
            (stats, checkpoints)
        }
    };
    let mut out = output::stdout();
    if app.json {
        let mut report = serde_json::to_value(&stats)?;
        report["checkpoints"] = checkpoints.into();
        output::json_line(&mut out, &report)?;
    } else {
        writeln!(out, "store:        {}", app.describe())?;
        writeln!(out, "events:       {}", stats.events)?;
        writeln!(out, "streams:      {}", stats.streams)?;
        writeln!(
            out,
            "head:         position {} hash {}",
            stats.head.position, stats.head.hash
        )?;
        writeln!(out, "size on disk: {} bytes", stats.size_on_disk)?;
        writeln!(out)?;
        let mut table = Table::new(&["TYPE", "EVENTS"]);
        for (ty, n) in &stats.per_type {
            table.row(vec![ty.clone(), n.to_string()]);
        }
        table.write(&mut out)?;
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
