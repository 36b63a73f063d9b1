//! `chronicle replay`: rebuild projections from the whole log.

use super::App;
use super::output::{self, Table};
use chronicle::store::EventStore;
use std::io::Write;
use std::time::Instant;

const EXAMPLES: &str = "\
Examples:
  chronicle replay                          rebuild every projection
  chronicle replay --projection timeline    rebuild one";

/// Rebuild the views from nothing, by folding the whole log again (all of them, or
/// those named with --projection).
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only this projection: trips, timeline, entities or sales.
    #[arg(long)]
    projection: Vec<String>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    // Bulk writing: small caches keep the replay's memory bounded.
    chronicle::store::use_bulk_caches();
    let store = app.open_existing_store()?;
    let bar = output::progress(0, "replaying");
    let reporter = bar.clone();
    let started = Instant::now();
    store.rebuild(
        &args.projection,
        Box::new(move |done, total| {
            reporter.set_length(total);
            reporter.set_position(done);
        }),
    )?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let events = store.stats()?.events;
    let rate = events as f64 / elapsed.as_secs_f64().max(1e-9);
    let names = if args.projection.is_empty() {
        store
            .projection_names()
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.projection.clone()
    };
    let mut out = output::stdout();
    if app.json {
        let report = serde_json::json!({
            "projections": names, "events": events,
            "seconds": elapsed.as_secs_f64(), "events_per_second": rate.round(),
        });
        output::json_line(&mut out, &report)?;
    } else {
        let mut table = Table::new(&["PROJECTIONS", "EVENTS", "SECONDS", "EVENTS/S"]);
        table.row(vec![
            names.join(", "),
            events.to_string(),
            format!("{:.3}", elapsed.as_secs_f64()),
            format!("{rate:.0}"),
        ]);
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
