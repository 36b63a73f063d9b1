//! `chronicle demo`: imports the bundled article's events (embedded in the binary) and
//! shows what the store now holds.

use super::import::{Input, import, print_summary};
use super::output;
use super::sales::print_report;
use super::timeline::print_table;
use super::trip::print_trip;
use super::{App, UsageError};
use chronicle::model::{Position, StreamId};
use chronicle::query::{Query, TimelineFilter};
use chronicle::store::{EventStore, StoreLocation};
use std::io::Write;

/// The trip the bundled article is about.
const DEMO_TRIP: &str = "trip:blinken-final-tour-2025";

include!(concat!(env!("OUT_DIR"), "/bundled_events.rs"));

const EXAMPLES: &str = "\
Examples:
  chronicle demo                        into ./chronicle.db
  chronicle --db /tmp/news.db demo      anywhere else; running it again adds nothing";

/// The demo goes into an empty store, or one it started (run again, it adds nothing):
/// into a store that holds other events its events would stay for good, as everything
/// in a log does.
fn refuse_a_store_of_other_events(store: &dyn EventStore, app: &App) -> anyhow::Result<()> {
    let head = store.head()?.position.0;
    if head == 0
        || store
            .get(Position(1))?
            .is_some_and(|e| Some(e.id) == first_bundled_id())
    {
        return Ok(());
    }
    Err(UsageError(format!(
        "{} already holds {head} event{} that the demo did not write, and the demo's would stay among them for good; nothing was written: run the demo into a new store, such as `chronicle --db demo.db demo`",
        app.describe(),
        if head == 1 { "" } else { "s" }
    ))
    .into())
}

/// The id of the first bundled event, which a store the demo started holds first.
fn first_bundled_id() -> Option<uuid::Uuid> {
    let (_, text) = BUNDLED_EVENTS.first()?;
    let line = text.lines().find(|l| l.trim_start().starts_with('{'))?;
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    event["id"].as_str()?.parse().ok()
}

/// Import the bundled events of the seed article and show them.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {}

pub fn run(_args: Args, app: &App) -> anyhow::Result<()> {
    let inputs: Vec<Input> = BUNDLED_EVENTS
        .iter()
        .map(|(name, text)| Input::Text(format!("events/{name}"), text))
        .collect();
    let store = app.open_store()?;
    refuse_a_store_of_other_events(&store, app)?;
    let summary = import(&store, &inputs, 1000)?;
    if app.json {
        return print_summary(&summary, true);
    }
    let mut out = output::stdout();
    writeln!(out, "Imported the bundled events into {}:", app.describe())?;
    out.flush()?;
    print_summary(&summary, false)?;
    let views = super::as_of::live_views(&store)?;
    let q = Query::new(&views);
    let trip = StreamId::parse(DEMO_TRIP).expect("the demo trip id is valid");
    writeln!(out, "\n== The trip ==\n")?;
    print_trip(&q, &q.trip(&trip)?, &mut out)?;
    writeln!(out, "\n== The timeline ==\n")?;
    print_table(&q, &q.timeline(&TimelineFilter::default())?, &mut out)?;
    writeln!(out, "\n== Arms sales ==\n")?;
    print_report(&q, &q.sales(None, None, false)?, false, false, &mut out)?;
    // A PostgreSQL URL is not repeated: it may hold a password, and is shown without one.
    let db = match &app.location {
        StoreLocation::Dir(dir) => format!("--db {} ", dir.display()),
        StoreLocation::Postgres(_) => "--db <the same URL> ".into(),
    };
    writeln!(out, "\nNext, try:")?;
    writeln!(out, "  chronicle {db}timeline --entity Japan")?;
    writeln!(out, "  chronicle {db}entity show Blinken")?;
    out.flush()?;
    Ok(())
}
