//! `chronicle log`: the raw events, filtered, as a table or JSON Lines, optionally
//! following the log as it grows.

use super::output::{self, Table};
use super::remote::{self, Api};
use super::{App, Backend, UsageError};
use chronicle::Error;
use chronicle::model::{EventType, Position, RecordedEvent, StreamId};
use chronicle::store::{EventStore, ReadFilter, Store};
use std::io::Write;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  chronicle log                                    the whole log
  chronicle log --stream trip:blinken-final-tour-2025
  chronicle log --category arms-sale --type statement.issued
  chronicle log --json --from 100 --limit 10       JSON Lines, the export format
  chronicle log --follow                           keep printing new events (Ctrl-C stops)";

/// Show the events of the log, in position order.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only this stream.
    #[arg(long)]
    stream: Option<String>,
    /// Only streams of this category (the part before the colon).
    #[arg(long, value_parser = super::category)]
    category: Option<String>,
    /// Only this event type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Start at this position.
    #[arg(long, value_name = "POS", value_parser = super::position, allow_negative_numbers = true)]
    from: Option<u64>,
    /// Show at most this many events.
    #[arg(long, value_parser = super::limit, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// After the current end, wait for new events and print them as they arrive.
    #[arg(long, conflicts_with = "limit")]
    follow: bool,
}

fn filter(args: &Args) -> anyhow::Result<ReadFilter> {
    let stream = args
        .stream
        .as_deref()
        .map(StreamId::parse)
        .transpose()
        .map_err(|e| UsageError(format!("--stream: {e}")))?;
    let event_type = args
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
        .transpose()?;
    Ok(ReadFilter {
        from: args.from.map(Position),
        stream,
        category: args.category.clone(),
        event_type,
        ..ReadFilter::default()
    })
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let mut filter = filter(&args)?;
    let store = match app.open_or_server(true)? {
        Backend::Store(store) => store,
        Backend::Server(api) => return run_remote(&args, &filter, app, &api),
    };
    let mut out = output::stdout();
    let events = store.read(&filter).take(args.limit.unwrap_or(usize::MAX));
    let mut columns = Columns::for_follow(args.follow);
    let last = print_events(
        events.map(|e| e.map_err(Into::into)),
        app.json,
        &mut columns,
        &mut out,
    )?;
    out.flush()?;
    if !args.follow {
        if last.is_none() {
            let head = store.head()?.position.0;
            note_nothing_shown(&filter, head, |stream| {
                Ok(store.stream_version(stream)?.is_some())
            })?;
        }
        return Ok(());
    }
    refuse_following_past_the_end(&filter, store.head()?.position.0)?;
    // Hold a sled store only while reading, so that other processes can append; a
    // PostgreSQL log is shared by every process, so its handle is kept.
    let kept = store.sled().is_none().then_some(store);
    let next = last.map_or(filter.from.unwrap_or(Position(1)), |p| Position(p.0 + 1));
    filter.from = Some(next);
    follow(app, filter, None, kept.as_ref(), &mut columns, &mut out)
}

/// `--follow` from past the end of the log (not merely at it, where a script waiting for
/// new events starts) would wait for an event it then skips every one before: refused,
/// as the API refuses `from` there.
fn refuse_following_past_the_end(filter: &ReadFilter, head: u64) -> anyhow::Result<()> {
    match filter.from.filter(|from| from.0 > head + 1) {
        Some(from) => Err(UsageError(format!(
            "--from {from} is past the end of the log (it ends at position {head}), so --follow would skip every event before {from}; give --from {} or less",
            head + 1
        ))
        .into()),
        None => Ok(()),
    }
}

/// When nothing was printed, says why if the likely reason is a mistake: `--from` past
/// the end of the log (not merely at it, where a script polling for new events starts),
/// as `--as-of` would, or a stream or a category with no events at all (most likely a
/// mistyped name).
fn note_nothing_shown(
    filter: &ReadFilter,
    head: u64,
    stream_exists: impl FnOnce(&StreamId) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    if let Some(from) = filter.from.filter(|from| from.0 > head + 1) {
        note!(
            "note: the log ends at position {head}; --from {} is past it, so there is nothing to show",
            from.0
        );
    } else if let Some(stream) = &filter.stream
        && filter.from.is_none()
        && filter.from_version.is_none()
        && !stream_exists(stream)?
    {
        note!(
            "note: the log holds no stream `{stream}`; check its name (`chronicle stats` counts the streams, `chronicle log --category {}` lists that category's events)",
            stream.category()
        );
    } else if let Some(category) = &filter.category
        && filter.stream.is_none()
        && filter.event_type.is_none()
        && filter.from.is_none()
    {
        // Nothing of the whole category: most likely a mistyped one (`trips`).
        note_no_category(category);
    }
    Ok(())
}

/// An empty answer for a category no stream of the log has: most likely a mistyped
/// name (`trips`).
pub(super) fn note_no_category(category: &str) {
    note!(
        "note: the log holds no stream of category `{category}`; a category is what a stream id has before its colon, like `trip` in trip:blinken-final-tour-2025 (`chronicle log` shows the streams)"
    );
}

/// `log` through a server's API: the same pages, printed the same way.
fn run_remote(args: &Args, filter: &ReadFilter, app: &App, api: &Api) -> anyhow::Result<()> {
    let mut out = output::stdout();
    let events = Pages::new(api, filter.clone(), args.limit);
    let mut columns = Columns::for_follow(args.follow);
    let last = print_events(events, app.json, &mut columns, &mut out)?;
    out.flush()?;
    if !args.follow {
        if last.is_none() {
            let health: serde_json::Value = api.get("/healthz", &[])?;
            let head = health["head"].as_u64().unwrap_or(0);
            note_nothing_shown(filter, head, |stream| remote::stream_exists(api, stream))?;
        }
        return Ok(());
    }
    if last.is_none() {
        let health: serde_json::Value = api.get("/healthz", &[])?;
        refuse_following_past_the_end(filter, health["head"].as_u64().unwrap_or(0))?;
    }
    let mut filter = filter.clone();
    filter.from = Some(last.map_or(filter.from.unwrap_or(Position(1)), |p| Position(p.0 + 1)));
    // A server named by --server is followed; a discovered one only while it holds the store.
    follow(
        app,
        filter,
        app.server.is_some().then_some(api),
        None,
        &mut columns,
        &mut out,
    )
}

/// `log --follow`: every 0.5 s prints the events from `filter.from` on, read from
/// `kept` (a shared log), from the store when it is free, or through the server that
/// holds it (or `server`).
fn follow(
    app: &App,
    mut filter: ReadFilter,
    server: Option<&Api>,
    kept: Option<&Store>,
    columns: &mut Columns,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if super::output::stdout_closed() {
            return Ok(());
        }
        let last = if let Some(api) = server {
            print_events(
                Pages::new(api, filter.clone(), None),
                app.json,
                columns,
                out,
            )?
        } else if let Some(store) = kept {
            let events = store.read(&filter).map(|e| e.map_err(Into::into));
            print_events(events, app.json, columns, out)?
        } else {
            match app.open_raw() {
                Ok(store) => {
                    let events = store.read(&filter).map(|e| e.map_err(Into::into));
                    print_events(events, app.json, columns, out)?
                }
                Err(Error::Locked { .. }) => match app.discover() {
                    Some(api) => {
                        // Fetch before printing: a server that stops half-way through
                        // is read again from the store on the next round, with nothing
                        // printed twice.
                        let fetched: anyhow::Result<Vec<RecordedEvent>> =
                            Pages::new(&api, filter.clone(), None).collect();
                        match fetched {
                            Ok(events) => {
                                print_events(events.into_iter().map(Ok), app.json, columns, out)?
                            }
                            Err(_) => continue,
                        }
                    }
                    None => continue,
                },
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(last) = last {
            filter.from = Some(Position(last.0 + 1));
        }
        out.flush()?;
    }
}

/// The events of `GET /events`, fetched a page at a time as they are read.
pub(super) struct Pages<'a> {
    api: &'a Api,
    filter: ReadFilter,
    /// Events still wanted; `None` for all.
    remaining: Option<usize>,
    page: std::vec::IntoIter<RecordedEvent>,
    done: bool,
}

impl<'a> Pages<'a> {
    pub(super) fn new(api: &'a Api, filter: ReadFilter, limit: Option<usize>) -> Pages<'a> {
        Pages {
            api,
            filter,
            remaining: limit,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    fn fetch(&mut self) -> anyhow::Result<()> {
        let size = self.remaining.unwrap_or(usize::MAX).min(1000);
        let query = [
            ("from", self.filter.from.map(|p| p.to_string())),
            ("stream", self.filter.stream.as_ref().map(|s| s.to_string())),
            ("category", self.filter.category.clone()),
            ("type", self.filter.event_type.map(|t| t.to_string())),
            ("limit", Some(size.to_string())),
        ];
        let mut answer: serde_json::Value = self.api.get("/events", &query)?;
        let events: Vec<RecordedEvent> = remote::part(&mut answer, "events")?;
        match answer["next"].as_u64() {
            Some(next) => self.filter.from = Some(Position(next)),
            None => self.done = true,
        }
        self.page = events.into_iter();
        Ok(())
    }
}

impl Iterator for Pages<'_> {
    type Item = anyhow::Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == Some(0) {
            return None;
        }
        let event = match self.page.next() {
            Some(event) => event,
            None if self.done => return None,
            None => {
                if let Err(e) = self.fetch() {
                    self.done = true;
                    return Some(Err(e));
                }
                self.page.next()?
            }
        };
        if let Some(n) = &mut self.remaining {
            *n -= 1;
        }
        Some(Ok(event))
    }
}

/// Prints events and returns the last position printed.
/// What the table of events keeps from one page to the next (and one round of
/// `--follow` to the next): whether its header is out, and its columns' widths, which
/// only grow, so that later rows line up with earlier ones.
#[derive(Default)]
struct Columns {
    header_written: bool,
    widths: Vec<usize>,
}

impl Columns {
    /// For `--follow`, whose later rows are not known when the first are printed: wide
    /// enough from the start for most streams, every type and a range of two dates.
    fn for_follow(follow: bool) -> Columns {
        let widest_type = EventType::ALL
            .iter()
            .map(|t| t.as_str().len())
            .max()
            .unwrap_or(0);
        Columns {
            header_written: false,
            widths: if follow {
                vec![8, 32, 7, widest_type, 21, 36]
            } else {
                Vec::new()
            },
        }
    }
}

fn print_events(
    events: impl Iterator<Item = anyhow::Result<RecordedEvent>>,
    json: bool,
    columns: &mut Columns,
    out: &mut impl Write,
) -> anyhow::Result<Option<Position>> {
    let mut last = None;
    if json {
        for event in events {
            let event = event?;
            output::json_line(out, &event)?;
            last = Some(event.position);
        }
    } else {
        // A table needs its widths, so it is built in pages.
        let mut page = Vec::with_capacity(256);
        for event in events {
            let event = event?;
            last = Some(event.position);
            page.push(event);
            if page.len() == 256 {
                write_table(&page, columns, out)?;
                page.clear();
            }
        }
        if !page.is_empty() {
            write_table(&page, columns, out)?;
        }
    }
    Ok(last)
}

fn write_table(
    events: &[RecordedEvent],
    columns: &mut Columns,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut table = Table::new(&["POSITION", "STREAM", "VERSION", "TYPE", "OCCURRED", "ID"]);
    table.at_least(&columns.widths);
    for e in events {
        table.row(vec![
            e.position.to_string(),
            e.stream.to_string(),
            e.version.to_string(),
            e.event_type.to_string(),
            e.occurred
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into()),
            e.id.to_string(),
        ]);
    }
    columns.widths = table.widths();
    let mut text = Vec::new();
    table.write(&mut text)?;
    let body = if !std::mem::replace(&mut columns.header_written, true) {
        &text[..]
    } else {
        // Drop the header line of continuation pages.
        let first_newline = text.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        &text[first_newline..]
    };
    out.write_all(body)?;
    Ok(())
}
