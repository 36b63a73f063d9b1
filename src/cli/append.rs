//! `chronicle append`: one event from flags, or JSON Lines from a file or stdin, as one
//! atomic append.

use super::input::Parsed;
use super::output::{self, Table};
use super::remote;
use super::{App, Backend, UsageError};
use chronicle::model::{Origin, parse_event_value};
use chronicle::store::{AppendedEvent, Checker, EventStore};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  chronicle append --stream trip:blinken-final-tour-2025 --type trip.arrived \\
      --occurred 2025-01-06 --data '{\"place\": \"country:KR\"}' --expect 9
                                    (after `chronicle demo`, the trip is at version 9)
  chronicle append --stream arms-sale:us-japan-2025-01 --type event.corrected \\
      --data '{\"target\": \"01942100-0000-7000-8000-000003000001\", \"reason\": \"a later report\", \"data\": {\"value\": {\"amount\": 3500000000}}}'
  chronicle append --file corrections.jsonl
  echo '{\"stream\":\"trip:blinken-final-tour-2025\",\"type\":\"trip.departed\",\"occurred\":\"2025-01-07\",\"data\":{\"place\":\"country:KR\"},\"expect\":10}' | chronicle append -

All events of one call are appended atomically, and only once they are on disk.
A correction's `data` names only the fields that change (a JSON merge patch of the
target's data; null removes a field); amendments without --occurred are dated the day
they are recorded.
Exit codes: 2 invalid input, 3 --expect did not match (nothing written), 5 store in use.";

/// The examples, then every event type with the stream it belongs in, and where to
/// find a type's fields.
fn help() -> String {
    let mut text = format!(
        "{EXAMPLES}\n\nEvent types (schema 1); `chronicle types show TYPE` gives a type's fields,\na JSON template with every field, and an example:\n"
    );
    for def in chronicle::model::fields::definitions() {
        text.push_str(&format!(
            "  {:<24} {}\n",
            def.event_type.as_str(),
            def.stream_rule()
        ));
    }
    text
}

/// Append events: from flags, `--file F`, or `-` for stdin (JSON Lines).
#[derive(clap::Args)]
#[command(after_help = help())]
pub struct Args {
    /// `-` to read JSON Lines from stdin.
    #[arg(value_name = "-")]
    stdin: Option<PathBuf>,
    /// A JSON Lines file of events.
    #[arg(long, short, conflicts_with_all = ["stream", "stdin"])]
    file: Option<PathBuf>,
    /// The stream, such as trip:blinken-final-tour-2025.
    #[arg(long, conflicts_with = "stdin")]
    stream: Option<String>,
    /// The event type, such as trip.arrived.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// The event's data as a JSON object (default `{}`).
    #[arg(long)]
    data: Option<String>,
    /// When it happened: 2025, 2025-01, 2025-01-05, an instant, A/B, with ~ if approximate.
    #[arg(long)]
    occurred: Option<String>,
    /// The source's own words for the date ("this Sunday").
    #[arg(long)]
    occurred_text: Option<String>,
    /// The event id (a UUID); generated when absent.
    #[arg(long)]
    id: Option<String>,
    /// The source as a JSON object: {"publisher": …, "title": …, "url": …, "published": …,
    /// "quote": …, "speaker": …}; only publisher is required.
    #[arg(long)]
    source: Option<String>,
    /// A tag; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Concurrency check: any, none, exists, or the stream's current version.
    #[arg(long, allow_negative_numbers = true)]
    expect: Option<String>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let parsed = read_input(&args).map_err(|e| app.with_entity_hint(e, None))?;
    if parsed.events.is_empty() {
        return Err(UsageError(
            "the input holds no events; nothing was written: give one event per line as a JSON object (`chronicle types show TYPE` has a template)".into(),
        ).into());
    }
    if app.server.is_none() && !app.store_exists() {
        // Into a store that does not exist yet, the events are checked against an empty
        // log first (as `import` checks its input), so that a refused append creates
        // nothing: no store, no folder.
        app.check_db_path(false)?;
        Checker::for_empty_log()
            .check(parsed.events.clone())
            .map_err(|e| parsed.locate(e))?;
    }
    let appended = match app.open_or_server(false)? {
        Backend::Store(store) => match store.append(parsed.events.clone()) {
            Ok(appended) => appended,
            Err(e) => return Err(app.with_entity_hint(parsed.locate(e), Some(store))),
        },
        Backend::Server(api) => {
            let body: Vec<Value> = parsed.events.iter().map(remote::event_json).collect();
            let mut answer: Value = api.post("/events", &Value::Array(body)).map_err(|e| {
                match e.downcast::<chronicle::Error>() {
                    Ok(error) => parsed.locate(error),
                    Err(other) => other,
                }
            })?;
            remote::part(&mut answer, "events")?
        }
    };
    print_appended(&appended, app.json)
}

impl Args {
    /// The first flag given that describes a single event, with its field in a JSON
    /// line: with `--file` or `-` it would otherwise be silently left out.
    fn event_flag(&self) -> Option<(&'static str, &'static str)> {
        [
            (self.event_type.is_some(), "--type", "type"),
            (self.data.is_some(), "--data", "data"),
            (self.occurred.is_some(), "--occurred", "occurred"),
            (
                self.occurred_text.is_some(),
                "--occurred-text",
                "occurred_text",
            ),
            (self.id.is_some(), "--id", "id"),
            (self.source.is_some(), "--source", "source"),
            (!self.tags.is_empty(), "--tag", "tags"),
            (self.expect.is_some(), "--expect", "expect"),
        ]
        .into_iter()
        .find_map(|(given, flag, field)| given.then_some((flag, field)))
    }
}

fn read_input(args: &Args) -> anyhow::Result<Parsed> {
    let mut parsed = Parsed::default();
    if let Some(path) = args.file.as_ref().or(args.stdin.as_ref()) {
        if args.stdin.as_ref().is_some_and(|p| p.as_os_str() != "-") {
            return Err(UsageError(
                "the only argument append takes is `-` (stdin); use --file for a file".into(),
            )
            .into());
        }
        if let Some((flag, field)) = args.event_flag() {
            return Err(UsageError(format!(
                "{flag} describes the one event given by flags, not the events of --file or -; give each JSON line its own `{field}`; nothing was written"
            ))
            .into());
        }
        parsed.add_file(path, false)?;
        return Ok(parsed);
    }
    let (Some(stream), Some(event_type)) = (&args.stream, &args.event_type) else {
        return Err(UsageError(
            "give --stream and --type (with --data and --occurred), or --file F, or - for stdin; see `chronicle append --help`".into(),
        )
        .into());
    };
    // The same strict JSON as every other path: a key given twice is refused.
    let json_arg = |flag: &str, text: &str| -> anyhow::Result<Value> {
        chronicle::model::event::parse_json_strict(text.as_bytes()).map_err(|e| {
            let hint = if e.to_string().starts_with("duplicate field") {
                "; give each field once"
            } else if flag == "source" {
                "; write a JSON object in single quotes, such as '{\"publisher\": \"Reuters\", \"published\": \"2025-01-06\"}'"
            } else {
                // Most often the shell ate the quotes.
                "; write a JSON object in single quotes, such as '{\"place\": \"country:KR\"}'"
            };
            UsageError(format!("--{flag} is not valid JSON ({e}){hint}")).into()
        })
    };
    let mut event = Map::new();
    let mut put = |k: &str, v: Value| {
        event.insert(k.to_owned(), v);
    };
    put("stream", stream.clone().into());
    put("type", event_type.clone().into());
    put(
        "data",
        json_arg("data", args.data.as_deref().unwrap_or("{}"))?,
    );
    if let Some(v) = &args.occurred {
        put("occurred", v.clone().into());
    }
    if let Some(v) = &args.occurred_text {
        put("occurred_text", v.clone().into());
    }
    if let Some(v) = &args.id {
        put("id", v.clone().into());
    }
    if let Some(v) = &args.source {
        put("source", json_arg("source", v)?);
    }
    if !args.tags.is_empty() {
        put("tags", args.tags.clone().into());
    }
    if let Some(v) = &args.expect {
        let value = v
            .parse::<u64>()
            .map_or_else(|_| Value::from(v.clone()), Value::from);
        put("expect", value);
    }
    let proposed = parse_event_value(Value::Object(event), Origin::New).map_err(|e| {
        chronicle::Error::Invalid {
            index: None,
            error: e,
        }
    })?;
    parsed.events.push(proposed);
    parsed.locations.push(super::input::Location {
        file: None,
        line: 1,
    });
    Ok(parsed)
}

/// Prints where each event landed.
pub fn print_appended(appended: &[AppendedEvent], json: bool) -> anyhow::Result<()> {
    let mut out = output::stdout();
    if json {
        output::json_line(&mut out, &serde_json::json!({ "events": appended }))?;
    } else {
        let new = appended.iter().filter(|e| e.new).count();
        writeln!(
            out,
            "appended {new} event{} ({} already present)",
            if new == 1 { "" } else { "s" },
            appended.len() - new
        )?;
        let mut table = Table::new(&["POSITION", "STREAM", "VERSION", "ID", "STATUS"]);
        for e in appended {
            table.row(vec![
                e.position.to_string(),
                e.stream.to_string(),
                e.version.to_string(),
                e.id.to_string(),
                if e.new { "new" } else { "already present" }.into(),
            ]);
        }
        table.write(&mut out)?;
    }
    out.flush()?;
    for e in appended {
        if let Some(note) = &e.note {
            note!("note: event {} (position {}): {note}", e.id, e.position);
        }
    }
    Ok(())
}
