//! `chronicle demo`: imports the bundled article's events (embedded in the binary) and
//! shows what the store now holds.

use super::App;
use super::import::{import, print_summary};
use super::input::Parsed;
use super::output::{self, Table};
use chronicle::store::{EventStore, ReadFilter};
use std::io::Write;

include!(concat!(env!("OUT_DIR"), "/bundled_events.rs"));

const EXAMPLES: &str = "\
Examples:
  chronicle demo                        into ./chronicle.db
  chronicle --db /tmp/news.db demo      anywhere else; running it again adds nothing";

/// Import the bundled events of the seed article and show them.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {}

pub fn run(_args: Args, app: &App) -> anyhow::Result<()> {
    let mut parsed = Parsed::default();
    for (name, text) in BUNDLED_EVENTS {
        parsed.add_text(&format!("events/{name}"), text.as_bytes(), false)?;
    }
    let store = app.open_store()?;
    let summary = import(&store, parsed, BUNDLED_EVENTS.len(), 1000)?;
    if app.json {
        return print_summary(&summary, true);
    }
    let mut out = output::stdout();
    writeln!(
        out,
        "Imported the bundled events into {}:",
        app.db.display()
    )?;
    out.flush()?;
    print_summary(&summary, false)?;
    writeln!(out, "\nThe log, in the order the facts happened:")?;
    let mut events: Vec<_> = store
        .read(&ReadFilter::default())
        .filter(|e| e.as_ref().map_or(true, |e| e.occurred.is_some()))
        .collect::<Result<_, _>>()?;
    events.sort_by_key(|e| {
        let o = e.occurred.expect("filtered to dated events");
        (o.earliest(), o.latest(), e.position)
    });
    let mut table = Table::new(&["OCCURRED", "TYPE", "STREAM", "POSITION"]);
    for e in &events {
        table.row(vec![
            e.occurred.map(|o| o.to_string()).unwrap_or_default(),
            e.event_type.to_string(),
            e.stream.to_string(),
            e.position.to_string(),
        ]);
    }
    table.write(&mut out)?;
    writeln!(
        out,
        "\nTry: chronicle --db {} log --stream trip:blinken-final-tour-2025",
        app.db.display()
    )?;
    out.flush()?;
    Ok(())
}
