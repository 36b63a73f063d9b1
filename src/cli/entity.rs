//! `chronicle entity list` and `chronicle entity show`.

use super::as_of::{AsOfArgs, live_views};
use super::output::{self, Table};
use super::remote::{self, Names};
use super::{App, Backend};
use chronicle::query::{EntityView, Query};
use clap::Subcommand;
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle entity list
  chronicle entity show Blinken                 by alias
  chronicle entity show person:yoon-suk-yeol --json";

/// The entity registry: people, organisations, offices, places and countries.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: EntityCommand,
}

#[derive(Subcommand)]
enum EntityCommand {
    /// Every entity with how many facts involve it.
    #[command(after_help = EXAMPLES)]
    List {
        #[command(flatten)]
        as_of: AsOfArgs,
    },
    /// One entity, by id, name or alias.
    #[command(after_help = EXAMPLES)]
    Show {
        /// An id (person:antony-blinken), a name or an alias (Blinken).
        entity: String,
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
        EntityCommand::List { as_of } => {
            let views = as_of.views(&store)?;
            let list = Query::new(views.docs()).entities()?;
            if app.json {
                output::json_line(&mut out, &list)?;
            } else {
                print_list(&list, &mut out)?;
            }
        }
        EntityCommand::Show { entity, as_of } => {
            // The position before the views, which then hold at least what it does.
            let at = as_of.position(&store)?;
            let views = as_of.views(&store)?;
            let q = Query::new(views.docs());
            let e = match q.entity(&entity) {
                Ok(e) => e,
                Err(missing) if as_of.is_past() => {
                    let now = live_views(&store)?;
                    let why = Query::new(&now).not_registered_yet(&entity, missing, at, &store);
                    return Err(why.into());
                }
                Err(missing) => return Err(missing.into()),
            };
            if app.json {
                output::json_line(&mut out, &e)?;
            } else {
                print_entity(&q, &e, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `entity list` and `entity show` through a server's API.
fn run_remote(args: Args, app: &App, api: &remote::Api) -> anyhow::Result<()> {
    let mut out = output::stdout();
    match args.command {
        EntityCommand::List { as_of } => {
            let mut answer: serde_json::Value = api.get("/entities", &as_of.params(api)?)?;
            let list: Vec<EntityView> = remote::part(&mut answer, "entities")?;
            if app.json {
                output::json_line(&mut out, &list)?;
            } else {
                print_list(&list, &mut out)?;
            }
        }
        EntityCommand::Show { entity, as_of } => {
            let path = format!("/entities/{}", remote::encode(&entity));
            let mut answer: serde_json::Value = api.get(&path, &as_of.params(api)?)?;
            let e: EntityView = remote::part(&mut answer, "entity")?;
            if app.json {
                output::json_line(&mut out, &e)?;
            } else {
                print_entity(&remote::names(&mut answer), &e, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn print_list(list: &[EntityView], out: &mut impl Write) -> anyhow::Result<()> {
    let mut table = Table::new(&["ID", "NAME", "KIND", "EVENTS", "FIRST", "LAST"]);
    for e in list {
        table.row(vec![
            e.id.to_string(),
            e.name.clone(),
            e.kind.clone(),
            e.events.to_string(),
            e.first.map(|f| f.to_string()).unwrap_or_default(),
            e.last.map(|l| l.to_string()).unwrap_or_default(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

fn print_entity(q: &dyn Names, e: &EntityView, out: &mut impl Write) -> anyhow::Result<()> {
    output::wrapped_line(out, "", 2, &format!("{} ({})", e.name, e.id))?;
    writeln!(out, "  kind:        {}", e.kind)?;
    if !e.aliases.is_empty() {
        output::wrapped_line(out, "  aliases:     ", 0, &e.aliases.join("; "))?;
    }
    if let Some(d) = &e.description {
        output::wrapped_line(out, "  description: ", 0, d)?;
    }
    if let Some(c) = &e.country {
        writeln!(out, "  country:     {}", q.name(c)?)?;
    }
    if let Some(w) = &e.wikidata {
        writeln!(out, "  wikidata:    {w}")?;
    }
    if e.kind == "place" {
        // A city's timeline also holds the trips' stops in it, which name its country.
        output::wrapped_line(
            out,
            "  events:      ",
            0,
            &format!(
                "{} naming it; its timeline adds the trips' stops in it (`chronicle timeline --entity {}`)",
                e.events, e.id
            ),
        )?;
    } else {
        writeln!(out, "  events:      {}", e.events)?;
    }
    if let (Some(first), Some(last)) = (e.first, e.last) {
        writeln!(out, "  first:       {first}")?;
        writeln!(out, "  last:        {last}")?;
    }
    for s in &e.status {
        let when = s.occurred.map(|o| format!(" ({o})")).unwrap_or_default();
        output::wrapped_line(out, "  status:      ", 0, &format!("{}{when}", s.summary))?;
    }
    remote::print_corrections(q, &e.corrections, out)
}
