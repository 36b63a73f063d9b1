//! `chronicle replay`: rebuild projections from the whole log.

use super::App;
use super::output::{self, Table};
use chronicle::store::EventStore;
use std::io::Write;
use std::time::Instant;

const EXAMPLES: &str = "\
Examples:
  chronicle replay                          rebuild every view from the log
  chronicle --json replay                   the same, reporting the rate as JSON

The projections fold together and are always rebuilt together, so that no rebuild can
leave one inconsistent with another.";

/// Rebuild the views from nothing, by folding the whole log again (all of them, always).
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// A projection to check the name of (facts, trips, sales, timeline, entities, counts);
    /// every projection is rebuilt whatever is named.
    #[arg(long, value_name = "NAME")]
    projection: Vec<String>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    // Bulk writing: the views' cache sized for a rebuild, not for queries.
    chronicle::store::use_replay_caches();
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
    // The facts layer is rebuilt with them, and `stats` lists it beside them.
    let names: Vec<String> = std::iter::once(chronicle::projection::runner::FACTS)
        .chain(store.projection_names())
        .map(str::to_owned)
        .collect();
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
