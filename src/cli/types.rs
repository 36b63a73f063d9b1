//! `chronicle types` and `chronicle types show TYPE`: every event type, and one type's
//! fields, a template and an example, all from `model::fields`. No store is opened.

use super::UsageError;
use super::output::{self, Table};
use chronicle::model::EventType;
use chronicle::model::fields::{self, TypeDef};
use clap::Subcommand;
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle types                                  every event type and where it goes
  chronicle types show statement.issued            its fields, a template and an example
  chronicle types show trip.arrived --json         the same as JSON (GET /types/trip.arrived)";

/// The event types: what each states, its fields, a template to fill in.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    command: Option<TypesCommand>,
}

#[derive(Subcommand)]
enum TypesCommand {
    /// One type: its fields (kind, required or optional, meaning), a JSON template
    /// with every field, and an example.
    #[command(after_help = EXAMPLES)]
    Show {
        /// The type's name, such as statement.issued.
        name: String,
    },
}

pub fn run(args: Args, app: &super::App) -> anyhow::Result<()> {
    let mut out = output::stdout();
    match args.command {
        None => {
            let types: Vec<_> = fields::definitions().map(|d| d.summary()).collect();
            if app.json {
                output::json_line(&mut out, &types)?;
            } else {
                let mut table = Table::new(&["TYPE", "STREAM", "STATES"]);
                for t in &types {
                    table.row(vec![t.name.into(), t.stream.clone(), t.about.into()]);
                }
                table.write(&mut out)?;
                writeln!(
                    out,
                    "\n`chronicle types show TYPE` gives a type's fields and a template to fill in."
                )?;
            }
        }
        Some(TypesCommand::Show { name }) => {
            let def = find(&name)?;
            if app.json {
                output::json_line(&mut out, &def.description())?;
            } else {
                show(&def, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The type named `name`, or a usage error that suggests the closest name.
fn find(name: &str) -> anyhow::Result<TypeDef> {
    match EventType::parse(name) {
        Some(t) => Ok(fields::definition(t)),
        None => {
            let closest = EventType::did_you_mean(name);
            Err(UsageError(format!(
                "unknown event type `{name}`; {closest}`chronicle types` lists them"
            ))
            .into())
        }
    }
}

/// Quotes a word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn show(def: &TypeDef, out: &mut impl Write) -> std::io::Result<()> {
    let summary = def.summary();
    writeln!(out, "{}: {}", summary.name, summary.about)?;
    writeln!(out, "stream:   {}", summary.stream)?;
    writeln!(out, "occurred: {}", def.occurred_rule())?;
    if !def.at_least_one_of.is_empty() {
        writeln!(
            out,
            "give at least one of: {}",
            def.at_least_one_of.join(", ")
        )?;
    }
    writeln!(out)?;
    let docs = def.field_docs();
    if docs.is_empty() {
        writeln!(out, "data: {{}} (no fields)")?;
    } else {
        let mut table = Table::new(&["FIELD", "KIND", "REQUIRED", "MEANING"]);
        for f in &docs {
            let required = if f.required { "required" } else { "optional" };
            table.row(vec![
                format!("data.{}", f.name),
                f.kind.clone(),
                required.into(),
                f.about.clone(),
            ]);
        }
        table.write(out)?;
    }
    writeln!(out)?;
    let also = if def.event_type.needs_occurred() {
        "Every event also takes: occurred_text (the article's words for the date), source \
         {publisher, title, url, published, quote, speaker}, tags, id (generated when absent), expect."
    } else {
        "Every event also takes: source {publisher, title, url, published, quote, speaker}, \
         tags, id (generated when absent), expect."
    };
    output::wrapped_line(out, "", 0, also)?;
    if def.event_type == EventType::EvidenceAdded {
        output::wrapped_line(
            out,
            "",
            0,
            "The source this adds goes in data.source, and counts on the reported clock from \
             its `published`; the event's own `source` (where you read of it) may be left out.",
        )?;
    }
    writeln!(out)?;
    output::wrapped_line(
        out,
        "",
        0,
        "Template (every field; replace the <…> and the ids, then `chronicle append -` or \
         a line of a .jsonl file):",
    )?;
    // The template and the example stay one line each, whatever the width: they are
    // copied as they are.
    writeln!(out, "{}", def.template_line())?;
    let data = def.example.data;
    let mut command = format!(
        "chronicle append --stream {} --type {}",
        def.example.stream, summary.name
    );
    if let Some(occurred) = def.example.occurred {
        command.push_str(&format!(" --occurred {occurred}"));
    }
    command.push_str(&format!(" --data {}", shell_quote(data)));
    writeln!(out, "\nExample:\n{command}")?;
    Ok(())
}
