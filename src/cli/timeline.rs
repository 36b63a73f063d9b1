//! `chronicle timeline`: every current fact in the order it happened.

use super::as_of::{AsOfArgs, live_views};
use super::output::{self, Table};
use super::remote::{self, Names};
use super::{App, Backend, UsageError};
use chronicle::model::{EventType, Extent, Source, StreamId};
use chronicle::query::{Query, TimelineEntry, TimelineFilter};
use chronicle::server::TIMELINE_PAGE;
use chronicle::store::EventStore;
use clap::ValueEnum;
use serde_json::json;
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle timeline
  chronicle timeline --entity Japan                 an id, a name or an alias
  chronicle timeline --entity Blinken --from 2025-01 --to 2025-01-31
  chronicle timeline --format timelinejs > timeline.json
  chronicle timeline --as-of 30 --type statement.issued
  chronicle timeline --include-retracted             retracted facts too, with why

Dates read as the sources give them: 2025-01-03 a day, 2025-01 a month, 2025 a year;
A/B between A and B (2025-01-06/2025-01-11 a span; 2024/2025-01-04 some time from 2024
until the report of 2025-01-04); a trailing ~ approximate; (ongoing) a situation that
was still going on when reported.";

/// How the timeline is printed.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    /// The JSON the TimelineJS journalism tool reads.
    Timelinejs,
}

/// Show the timeline of current facts, sorted by when they happened.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only facts involving this entity (id, name or alias); a place, or the city of a
    /// trip's stop, also has the facts at the stops it stands for.
    #[arg(long)]
    entity: Option<String>,
    /// Only this stream.
    #[arg(long)]
    stream: Option<String>,
    /// Only streams of this category.
    #[arg(long, value_parser = super::category)]
    category: Option<String>,
    /// Only this event type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Only facts with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only facts that overlap this date or later (any extent: 2025, 2025-01, …).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Only facts that overlap this date or earlier.
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// At most this many entries.
    #[arg(long, value_parser = super::limit, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Also retracted facts, marked with why they were retracted.
    #[arg(long)]
    include_retracted: bool,
    /// table, json or timelinejs (default: table, or json with --json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    as_of: AsOfArgs,
}

fn extent(flag: &str, text: &Option<String>) -> anyhow::Result<Option<Extent>> {
    text.as_deref()
        .map(|t| {
            t.parse::<Extent>()
                .map_err(|e| UsageError(format!("--{flag}: {e}")).into())
        })
        .transpose()
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    if app.json && args.format == Some(Format::Table) {
        return Err(UsageError(
            "--json asks for JSON and --format table for a table: give one of them".into(),
        )
        .into());
    }
    let mut filter = TimelineFilter {
        stream: args
            .stream
            .as_deref()
            .map(StreamId::parse)
            .transpose()
            .map_err(|e| UsageError(format!("--stream: {e}")))?,
        category: args.category.clone(),
        event_type: args
            .event_type
            .as_deref()
            .map(|t| {
                EventType::parse(t).ok_or_else(|| {
                    UsageError(format!(
                        "--type: unknown event type `{t}`; {}`chronicle types` lists them",
                        EventType::did_you_mean(t)
                    ))
                })
            })
            .transpose()?,
        tag: args
            .tag
            .as_deref()
            .map(|t| match chronicle::model::event::check_tag(t) {
                Ok(()) => Ok(t.to_owned()),
                Err(e) => Err(UsageError(format!(
                    "--tag: {e}; give one, or leave --tag out"
                ))),
            })
            .transpose()?,
        from: extent("from", &args.from)?,
        to: extent("to", &args.to)?,
        limit: args.limit,
        after: None,
        entity: None,
        include_retracted: args.include_retracted,
    };
    filter
        .check_window()
        .map_err(|e| UsageError(format!("--from/--to: {e}")))?;
    filter
        .check_type()
        .map_err(|e| UsageError(format!("--type: {e}")))?;
    filter
        .check_category()
        .map_err(|e| UsageError(format!("--stream and --category: {e}")))?;
    // The entries, with the names of the entities their corrections changed.
    let (entries, names) = match app.open_or_server(true)? {
        Backend::Store(store) => {
            // The position before the views, which then hold at least what it does.
            let at = args.as_of.position(&store)?;
            let views = args.as_of.views(&store)?;
            let q = Query::new(views.docs());
            if let Some(e) = &args.entity {
                filter.entity = Some(match q.resolve_entity("entity", e) {
                    Ok(id) => id,
                    Err(missing) if args.as_of.is_past() => {
                        let now = live_views(&store)?;
                        let why = Query::new(&now).not_registered_yet(e, missing, at, &store);
                        return Err(why.into());
                    }
                    Err(missing) => return Err(missing.into()),
                });
            }
            let entries = q.timeline(&filter)?;
            if entries.is_empty()
                && let Some(stream) = &filter.stream
                && store.stream_version(stream)?.is_none()
            {
                note_no_stream(stream, q.closest_stream(stream)?);
            } else if entries.is_empty()
                && let Some(category) = &filter.category
                && !store.has_category(category)?
            {
                super::log::note_no_category(category);
            }
            let names = remote::NameMap::of_changes(&q, entries.iter().flat_map(|e| &e.changes))?;
            (entries, names)
        }
        Backend::Server(api) => {
            let query = [
                ("entity", args.entity.clone()),
                ("stream", args.stream.clone()),
                ("category", args.category.clone()),
                ("type", args.event_type.clone()),
                ("tag", args.tag.clone()),
                ("from", args.from.clone()),
                ("to", args.to.clone()),
                (
                    "include_retracted",
                    args.include_retracted.then(|| "true".to_owned()),
                ),
            ];
            let mut query: Vec<_> = query.into_iter().chain(args.as_of.params(&api)?).collect();
            // The server answers a long timeline in pages. When there is more than one,
            // every page, the first read again, is asked as of the position the first
            // reflected (the server answers a position from the views' history), so
            // that together they are one answer however the log grows meanwhile.
            let mut entries: Vec<TimelineEntry> = Vec::new();
            let mut names = remote::NameMap::default();
            let mut pinned = false;
            loop {
                let left = args.limit.map_or(TIMELINE_PAGE, |l| l - entries.len());
                let page = [("limit", Some(left.min(TIMELINE_PAGE).to_string()))];
                let paged: Vec<_> = query.iter().cloned().chain(page).collect();
                let mut answer: serde_json::Value = api.get("/timeline", &paged)?;
                let next = answer["next"].as_str().map(str::to_owned);
                if !pinned && next.is_some() {
                    pinned = true;
                    query.retain(|(key, _)| *key != "as_of");
                    query.push(("as_of", answer["as_of"].as_u64().map(|p| p.to_string())));
                    continue;
                }
                entries.extend(remote::part::<Vec<TimelineEntry>>(&mut answer, "entries")?);
                names.extend(remote::names(&mut answer));
                if next.is_none() || args.limit.is_some_and(|l| entries.len() >= l) {
                    break;
                }
                query.retain(|(key, _)| *key != "after");
                query.push(("after", next));
            }
            if entries.is_empty()
                && let Some(stream) = &filter.stream
                && !remote::stream_exists(&api, stream)?
            {
                note_no_stream(stream, remote::closest_stream(&api, stream)?);
            } else if entries.is_empty()
                && let Some(category) = &filter.category
                && !remote::category_exists(&api, category)?
            {
                super::log::note_no_category(category);
            }
            (entries, names)
        }
    };
    let format = args.format.unwrap_or(if app.json {
        Format::Json
    } else {
        Format::Table
    });
    let mut out = output::stdout();
    match format {
        Format::Table => print_table(&names, &entries, &mut out)?,
        Format::Json => output::json_line(&mut out, &entries)?,
        Format::Timelinejs => output::json_line(&mut out, &timelinejs(&names, &entries)?)?,
    }
    out.flush()?;
    Ok(())
}

/// An empty answer for a stream the log does not hold: most likely a mistyped name, of
/// the stream `close` when known.
fn note_no_stream(stream: &StreamId, close: Option<String>) {
    let hint = match close {
        Some(close) => format!("did you mean `{close}`?"),
        None => "check its name".to_owned(),
    };
    note!(
        "note: the log holds no stream `{stream}`; {hint} (`chronicle log --category {}` lists that category's events)",
        stream.category()
    );
}

/// Prints timeline entries as a table.
pub fn print_table(
    q: &dyn Names,
    entries: &[TimelineEntry],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if entries.is_empty() {
        writeln!(
            out,
            "No timeline entries match. Without filters, --as-of or --known-at it lists every dated fact; `chronicle log` lists every event."
        )?;
        return Ok(());
    }
    let mut table = Table::new(&["OCCURRED", "SUMMARY", "STREAM", "POSITION"]);
    for e in entries {
        let mark = remote::marks(q, &e.corrections, &e.changes, e.retracted.as_deref())?;
        // A situation is reported as going on at its date, not as an event of it.
        let ongoing = if e.ongoing { " (ongoing)" } else { "" };
        table.row(vec![
            format!("{}{ongoing}", e.occurred),
            format!("{}{mark}", e.summary),
            e.stream.to_string(),
            e.position.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

fn date(point: &chronicle::model::extent::Point) -> serde_json::Value {
    let (year, month, day) = point.ymd();
    let mut d = json!({ "year": year });
    if let Some(m) = month {
        d["month"] = m.into();
    }
    if let Some(dd) = day {
        d["day"] = dd.into();
    }
    // An instant has its time too, in UTC, as the timeline orders it (its day too):
    // TimelineJS takes no offset. `display_date` shows it as written.
    if let chronicle::model::extent::Point::Instant(t) = point {
        use chrono::{Datelike, Timelike};
        let t = t.with_timezone(&chrono::Utc);
        d["year"] = t.year().into();
        d["month"] = t.month().into();
        d["day"] = t.day().into();
        d["hour"] = t.hour().into();
        d["minute"] = t.minute().into();
        d["second"] = t.second().into();
        if t.nanosecond() >= 1_000_000 {
            d["millisecond"] = (t.nanosecond() / 1_000_000 % 1000).into();
        }
    }
    d
}

/// Text for HTML: `&`, `<`, `>` and quotes escaped.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The date as TimelineJS should print it, when its own dates would say more than the
/// source does: "about …" for an approximate extent (TimelineJS would show an exact
/// day), "…, ongoing" for a situation.
fn display_date(e: &TimelineEntry) -> Option<String> {
    let exact = |p: chronicle::model::extent::Point| {
        chronicle::model::Extent {
            start: p,
            end: None,
            approximate: false,
        }
        .to_string()
    };
    let range = match e.occurred.end {
        Some(end) => format!("{} to {}", exact(e.occurred.start), exact(end)),
        None => exact(e.occurred.start),
    };
    let instant = |p: &chronicle::model::extent::Point| {
        matches!(p, chronicle::model::extent::Point::Instant(_))
    };
    if e.occurred.approximate {
        Some(format!("about {range}"))
    } else if e.ongoing {
        Some(format!("{range}, ongoing"))
    } else if instant(&e.occurred.start) || e.occurred.end.as_ref().is_some_and(instant) {
        // Its dates are in UTC, which orders the chart; the time as written says more.
        Some(range)
    } else {
        None
    }
}

/// A source as HTML: its title (or publisher), a link to it when its `url` is a web
/// address (`http:` or `https:`; any other, such as `javascript:`, is left out of a page
/// that will be published), the publisher, the date, and who spoke.
fn source_html(s: &Source) -> String {
    let title = s.title.as_deref().unwrap_or(&s.publisher);
    let web = |url: &str| {
        let scheme = url
            .trim_start()
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase());
        matches!(scheme.as_deref(), Some("http" | "https"))
    };
    let title = match &s.url {
        Some(url) if web(url) => format!("<a href=\"{}\">{}</a>", html(url), html(title)),
        _ => html(title),
    };
    let published = s.published.map(|p| format!(", {p}")).unwrap_or_default();
    let publisher = if s.title.is_some() {
        format!(", {}", html(&s.publisher))
    } else {
        String::new()
    };
    let speaker = s
        .speaker
        .as_ref()
        .map(|who| format!("{}, in ", html(who)))
        .unwrap_or_default();
    format!("{speaker}{title}{publisher}{published}")
}

/// The TimelineJS JSON: `events` with `start_date` (and `end_date` for intervals) at
/// the extent's own precision and a `display_date` where those would be too exact,
/// `text` {headline, text} with the source's words, its sources (each linked when it
/// can be, see [`source_html`]) and the correction or retraction marks with their
/// reasons, and `group` (the category).
pub fn timelinejs(q: &dyn Names, entries: &[TimelineEntry]) -> anyhow::Result<serde_json::Value> {
    let events = entries
        .iter()
        .map(|e| -> anyhow::Result<serde_json::Value> {
            let mut paragraphs = Vec::new();
            if let Some(when) = &e.occurred_text {
                paragraphs.push(format!("<p><em>{}</em></p>", html(when)));
            }
            if let Some(quote) = &e.quote {
                paragraphs.push(format!("<blockquote>“{}”</blockquote>", html(quote)));
            }
            if let Some(s) = &e.source {
                paragraphs.push(format!("<p>Source: {}</p>", source_html(s)));
            }
            for s in &e.evidence {
                paragraphs.push(format!("<p>Also reported by: {}</p>", source_html(s)));
            }
            let mut headline = e.summary.clone();
            if e.corrected {
                headline.push_str(" [corrected]");
                let mut why: Vec<String> = e.corrections.iter().map(|r| html(r)).collect();
                for change in &e.changes {
                    why.push(html(&remote::describe_change(q, change)?));
                }
                paragraphs.push(format!("<p>Corrected: {}.</p>", why.join("; ")));
            }
            if let Some(why) = &e.retracted {
                headline.push_str(" [retracted]");
                paragraphs.push(format!("<p>Retracted: {}.</p>", html(why)));
            }
            let mut event = json!({
                "unique_id": e.id.to_string(),
                "start_date": date(&e.occurred.start),
                "text": { "headline": html(&headline), "text": paragraphs.join("") },
                "group": e.stream.category(),
            });
            if let Some(end) = &e.occurred.end {
                event["end_date"] = date(end);
            }
            if let Some(display) = display_date(e) {
                event["display_date"] = display.into();
            }
            Ok(event)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({ "events": events }))
}
