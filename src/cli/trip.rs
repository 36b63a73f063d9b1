//! `chronicle trip list` and `chronicle trip show`.

use super::as_of::{AsOfArgs, live_views};
use super::output::{self, Table};
use super::remote::{self, Names};
use super::{App, Backend};
use chronicle::projection::trips::{StopStatus, TripView};
use chronicle::query::{Query, TimelineEntry};
use clap::Subcommand;
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle trip list
  chronicle trip show trip:blinken-final-tour-2025
  chronicle trip show trip:blinken-final-tour-2025 --as-of 20 --json
  chronicle trip show trip:blinken-final-tour-2025 --include-retracted
  chronicle trip show Blinken                      by the traveler's name or alias";

/// Trips: itinerary, status, agenda, statements.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: TripCommand,
}

#[derive(Subcommand)]
enum TripCommand {
    /// Every trip with its status and stops.
    #[command(after_help = EXAMPLES)]
    List {
        #[command(flatten)]
        as_of: AsOfArgs,
    },
    /// One trip in full.
    #[command(after_help = EXAMPLES)]
    Show {
        /// The trip: its stream (trip:blinken-final-tour-2025), its slug, or its
        /// traveler's name or alias when they have one trip.
        #[arg(value_name = "TRIP")]
        stream: String,
        /// Also the trip's retracted facts, with why they were retracted.
        #[arg(long)]
        include_retracted: bool,
        #[command(flatten)]
        as_of: AsOfArgs,
    },
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let store = match app.open_or_server(true)? {
        Backend::Store(store) => store,
        Backend::Server(api) => return run_remote(args, app, &api),
    };
    let mut out = output::stdout();
    match args.command {
        TripCommand::List { as_of } => {
            let views = as_of.views(&store)?;
            let q = Query::new(views.docs());
            let trips = q.trips()?;
            if app.json {
                output::json_line(&mut out, &trips)?;
            } else {
                print_list(&q, &trips, as_of.is_past(), &mut out)?;
            }
        }
        TripCommand::Show {
            stream,
            include_retracted,
            as_of,
        } => {
            // The position before the views, which then hold at least what it does.
            let at = as_of.position(&store)?;
            let views = as_of.views(&store)?;
            let q = Query::new(views.docs());
            let now = match as_of.is_past() {
                true => Some(live_views(&store)?),
                false => None,
            };
            let now = now.as_ref().map(|now| Query::new(now));
            let known_at = as_of.known_at_date()?;
            let (stream, trip) =
                q.trip_named(&stream, now.as_ref(), at, known_at.as_ref(), &store)?;
            let retracted = if include_retracted {
                Some(q.retracted(&stream)?)
            } else {
                None
            };
            show(&q, app, &trip, retracted.as_deref(), &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `trip list` and `trip show` through a server's API.
fn run_remote(args: Args, app: &App, api: &remote::Api) -> anyhow::Result<()> {
    let mut out = output::stdout();
    match args.command {
        TripCommand::List { as_of } => {
            let mut answer: serde_json::Value = api.get("/trips", &as_of.params(api)?)?;
            let trips: Vec<TripView> = remote::part(&mut answer, "trips")?;
            if app.json {
                output::json_line(&mut out, &trips)?;
            } else {
                print_list(
                    &remote::names(&mut answer),
                    &trips,
                    as_of.is_past(),
                    &mut out,
                )?;
            }
        }
        TripCommand::Show {
            stream,
            include_retracted,
            as_of,
        } => {
            let path = format!("/trips/{}", remote::encode(&stream));
            let flag = include_retracted.then(|| "true".to_owned());
            let [as_of, known_at] = as_of.params(api)?;
            let mut answer: serde_json::Value =
                api.get(&path, &[("include_retracted", flag), as_of, known_at])?;
            let trip: TripView = remote::part(&mut answer, "trip")?;
            let retracted: Option<Vec<TimelineEntry>> = if include_retracted {
                Some(remote::part(&mut answer, "retracted")?)
            } else {
                None
            };
            let names = remote::names(&mut answer);
            show(&names, app, &trip, retracted.as_deref(), &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints one trip: JSON (with `retracted` when asked for) or for a person.
fn show(
    q: &dyn Names,
    app: &App,
    trip: &TripView,
    retracted: Option<&[TimelineEntry]>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if app.json {
        match retracted {
            None => output::json_line(out, trip)?,
            Some(retracted) => {
                // The trip's fields in their usual order, then its retracted facts.
                #[derive(serde::Serialize)]
                struct WithRetracted<'a> {
                    #[serde(flatten)]
                    trip: &'a TripView,
                    retracted: &'a [TimelineEntry],
                }
                output::json_line(out, &WithRetracted { trip, retracted })?;
            }
        }
        return Ok(());
    }
    print_trip(q, trip, out)?;
    if let Some(retracted) = retracted {
        if retracted.is_empty() {
            writeln!(out, "  retracted: none")?;
        } else {
            writeln!(out, "  retracted:")?;
            for e in retracted {
                output::wrapped_line(
                    out,
                    "    - ",
                    0,
                    // Marked as the timeline marks it: corrected before, if it was.
                    &format!(
                        "{}: {}{}",
                        e.occurred,
                        e.summary,
                        remote::marks(
                            q,
                            &e.corrections,
                            &e.changes,
                            Some(e.retracted.as_deref().unwrap_or_default())
                        )?
                    ),
                )?;
            }
        }
    }
    Ok(())
}

/// Prints trips as a table, one line each; `past` when they are as of an earlier point.
fn print_list(
    q: &dyn Names,
    trips: &[TripView],
    past: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if trips.is_empty() {
        let hint = match past {
            true => {
                "No trips then; without --as-of and --known-at, `chronicle trip list` lists today's."
            }
            false => {
                "No trips match. A trip whose every fact was retracted is left out (`chronicle trip show STREAM --include-retracted` shows it); `chronicle types show trip.announced` shows how to record one."
            }
        };
        writeln!(out, "{hint}")?;
        return Ok(());
    }
    let mut table = Table::new(&["STREAM", "TRAVELER", "STATUS", "STARTS", "STOPS", "SOURCES"]);
    for t in trips {
        // A cancelled stop stays in the route, marked, as `trip show` lists it.
        let stops: Vec<String> = t
            .stops
            .iter()
            .map(|s| {
                let name = stop_name(q, s)?;
                anyhow::Ok(match s.status {
                    StopStatus::Cancelled => format!("{name} (cancelled)"),
                    _ => name,
                })
            })
            .collect::<Result<_, _>>()?;
        table.row(vec![
            t.stream.to_string(),
            t.traveler
                .as_ref()
                .map(|p| q.name(p))
                .transpose()?
                // Not announced yet: a `trip.started` (or a stop's event) came first.
                .unwrap_or_else(|| "-".into()),
            t.status.as_str().to_owned(),
            // When it started, once a `trip.started` says; when it is to start before.
            t.started
                .or(t.starts)
                .map_or_else(|| "-".into(), |s| s.to_string()),
            if stops.is_empty() {
                "-".into()
            } else {
                stops.join(" → ")
            },
            t.sources.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

fn stop_name(
    q: &dyn Names,
    stop: &chronicle::projection::trips::Stop,
) -> chronicle::Result<String> {
    let country = q.name(&stop.place)?;
    Ok(match &stop.city {
        Some(city) => format!("{city} ({country})"),
        None => country,
    })
}

/// Prints one trip for a person to read.
pub fn print_trip(q: &dyn Names, trip: &TripView, out: &mut impl Write) -> anyhow::Result<()> {
    output::wrapped_line(
        out,
        "",
        0,
        trip.title.as_deref().unwrap_or(trip.stream.as_str()),
    )?;
    writeln!(
        out,
        "  stream:    {} (version {}, last position {})",
        trip.stream, trip.version, trip.last_position
    )?;
    if let Some(t) = &trip.traveler {
        let role = trip.role.as_ref().map(|r| q.name(r)).transpose()?;
        let role = role.map(|r| format!(", {r}")).unwrap_or_default();
        writeln!(out, "  traveler:  {}{role}", q.name(t)?)?;
    } else {
        writeln!(
            out,
            "  traveler:  not known until a trip.announced names one"
        )?;
    }
    // What was corrected is listed under `corrections:`, not marked on the status,
    // which a correction of a date or a title did not change.
    writeln!(out, "  status:    {}", trip.status.as_str())?;
    if let Some(s) = trip.starts {
        writeln!(out, "  starts:    {s}")?;
    }
    if let Some(s) = trip.started.filter(|s| Some(*s) != trip.starts) {
        writeln!(out, "  started:   {s}")?;
    }
    if let Some(p) = &trip.purpose {
        output::wrapped_line(out, "  purpose:   ", 0, p)?;
    }
    writeln!(out, "  sources:   {}", trip.sources)?;
    if trip.stops.is_empty() {
        writeln!(
            out,
            "  stops:     none yet (trip.announced lists them, trip.stop_added adds one)"
        )?;
    } else {
        writeln!(out, "  stops:")?;
    }
    for (i, stop) in trip.stops.iter().enumerate() {
        let status = match stop.status {
            StopStatus::Planned => "planned",
            StopStatus::Visited => "visited",
            StopStatus::Cancelled => "cancelled",
        };
        let dates = stop.dates.map(|d| format!(", {d}")).unwrap_or_default();
        writeln!(
            out,
            "    {}. {} — {status}{dates}",
            i + 1,
            stop_name(q, stop)?
        )?;
        if let Some(a) = stop.arrived {
            writeln!(out, "         arrived {a}")?;
        }
        if let Some(d) = stop.departed {
            writeln!(out, "         departed {d}")?;
        }
        if let Some(r) = &stop.cancel_reason {
            writeln!(out, "         cancelled: {r}")?;
        }
        for item in &stop.agenda {
            let detail = item
                .detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let with: Vec<String> = item
                .participants
                .iter()
                .map(|w| q.name(w))
                .collect::<Result<_, _>>()?;
            let with = if with.is_empty() {
                String::new()
            } else {
                format!(", with {}", chronicle::query::join_names(&with))
            };
            let when = item.dates.map(|d| format!(", {d}")).unwrap_or_default();
            output::wrapped_line(
                out,
                "         agenda: ",
                0,
                &format!("{}{detail}{with}{when}", item.topic),
            )?;
        }
        let meetings = [
            ("         to meet ", &stop.planned_meetings),
            ("         met ", &stop.meetings),
        ];
        for (lead, list) in meetings {
            for m in list {
                let with: Vec<String> =
                    m.with.iter().map(|w| q.name(w)).collect::<Result<_, _>>()?;
                let topic = m
                    .topic
                    .as_ref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default();
                let when = m.occurred.map(|d| format!(", {d}")).unwrap_or_default();
                let who = chronicle::query::join_names(&with);
                output::wrapped_line(out, lead, 0, &format!("{who}{topic}{when}"))?;
            }
        }
    }
    if let Some(r) = &trip.planned_return {
        let when = r.occurred.map(|o| format!(", {o}")).unwrap_or_default();
        let why = r
            .reason
            .as_ref()
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        output::wrapped_line(
            out,
            "  return:    ",
            0,
            &format!("to {}{when}{why}", q.name(&r.to)?),
        )?;
    }
    remote::print_corrections(q, &trip.corrections, out)?;
    if !trip.statements.is_empty() {
        writeln!(out, "  statements:")?;
        let parties: Vec<_> = trip.traveler.iter().cloned().collect();
        let positions = chronicle::query::positions(
            (trip.statements.iter()).map(|s| (s.speaker.clone(), s.stance)),
        );
        for s in &trip.statements {
            let line = chronicle::query::statement_line(
                &|id| q.name(id),
                s,
                "the trip",
                &parties,
                &positions,
            )?;
            let when = s.occurred.map(|o| format!("{o}: ")).unwrap_or_default();
            let mark = if s.corrected { " [corrected]" } else { "" };
            output::wrapped_line(out, "    - ", 0, &format!("{when}{line}{mark}"))?;
            output::wrapped_line(out, "      ", 0, &s.summary)?;
            if let Some(quote) = &s.quote {
                output::wrapped_line(out, "      ", 0, &format!("“{quote}”"))?;
            }
        }
    }
    Ok(())
}
