//! `chronicle sales`: the arms-sale ledger with totals.

use super::as_of::AsOfArgs;
use super::output::{self, Table};
use super::remote::{self, Names};
use super::{App, Backend};
use chronicle::model::types::Money;
use chronicle::query::{Query, SalesReport, Total, format_money, noun, statement_line};
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle sales
  chronicle sales --buyer Japan
  chronicle sales --seller country:US --json
  chronicle sales --include-retracted                retracted sales too, with why";

/// Arms sales with their value, items and the statements about them, and totals per
/// currency by buyer and by seller.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only sales to this buyer (id, name or alias).
    #[arg(long)]
    buyer: Option<String>,
    /// Only sales by this seller (id, name or alias).
    #[arg(long)]
    seller: Option<String>,
    /// Also retracted sales (in no total), with why they were retracted.
    #[arg(long)]
    include_retracted: bool,
    #[command(flatten)]
    as_of: AsOfArgs,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let store = match app.open_or_server(true)? {
        Backend::Store(store) => store,
        Backend::Server(api) => return run_remote(args, app, &api),
    };
    let views = args.as_of.views(&store)?;
    let q = Query::new(views.docs());
    let buyer = args
        .buyer
        .as_deref()
        .map(|b| q.resolve_entity("buyer", b))
        .transpose()?;
    let seller = args
        .seller
        .as_deref()
        .map(|s| q.resolve_entity("seller", s))
        .transpose()?;
    let report = q.sales(buyer.as_ref(), seller.as_ref(), args.include_retracted)?;
    let mut out = output::stdout();
    if app.json {
        output::json_line(&mut out, &report)?;
    } else {
        print_report(
            &q,
            &report,
            args.as_of.is_past(),
            args.include_retracted,
            &mut out,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `sales` through a server's API.
fn run_remote(args: Args, app: &App, api: &remote::Api) -> anyhow::Result<()> {
    let query = [
        ("buyer", args.buyer),
        ("seller", args.seller),
        (
            "include_retracted",
            args.include_retracted.then(|| "true".to_owned()),
        ),
    ];
    let past = args.as_of.is_past();
    let query: Vec<_> = query.into_iter().chain(args.as_of.params(api)?).collect();
    let mut answer: serde_json::Value = api.get("/sales", &query)?;
    let names = remote::names(&mut answer);
    let report: SalesReport = serde_json::from_value(answer)
        .map_err(|e| anyhow::anyhow!("the server's answer is not a sales report ({e})"))?;
    let mut out = output::stdout();
    if app.json {
        output::json_line(&mut out, &report)?;
    } else {
        print_report(&names, &report, past, args.include_retracted, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Prints the sales and their totals for a person to read; `past` when they are as of
/// an earlier point (`--as-of`, `--known-at`), `with_retracted` when retracted sales
/// were asked for too.
pub fn print_report(
    q: &dyn Names,
    report: &SalesReport,
    past: bool,
    with_retracted: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if report.sales.is_empty() && report.retracted.is_empty() && past {
        writeln!(
            out,
            "No arms sales match then; without --as-of and --known-at, `chronicle sales` lists today's."
        )?;
        return Ok(());
    }
    if report.sales.is_empty() && report.retracted.is_empty() {
        let left_out = match with_retracted {
            true => "",
            false => " Retracted sales are left out (`--include-retracted` lists them);",
        };
        writeln!(
            out,
            "No arms sales match.{left_out} `chronicle types show arms_sale.announced` shows how to record one; other deals are on `chronicle timeline`."
        )?;
        return Ok(());
    }
    if report.sales.is_empty() {
        // Only retracted sales: listed below, with no empty tables around them.
        writeln!(
            out,
            "No current arms sales match; every one found was retracted."
        )?;
    }
    let mut table = Table::new(&[
        "OCCURRED",
        "SELLER",
        "BUYER",
        "VALUE",
        "ITEMS",
        "STATEMENTS",
        "STREAM",
    ]);
    for s in &report.sales {
        let about = if s.approximate { "~" } else { "" };
        let mark = if s.corrected { " [corrected]" } else { "" };
        table.row(vec![
            s.occurred.map(|o| o.to_string()).unwrap_or_default(),
            q.name(&s.seller)?,
            q.name(&s.buyer)?,
            format!("{about}{}{mark}", format_money(&s.value)),
            s.items.join(", "),
            s.statements.len().to_string(),
            s.stream.to_string(),
        ]);
    }
    if !report.sales.is_empty() {
        table.write(out)?;
    }
    for s in report.sales.iter().filter(|s| !s.statements.is_empty()) {
        let seller = q.name(&s.seller)?;
        let buyer = q.name(&s.buyer)?;
        writeln!(out)?;
        output::wrapped_line(
            out,
            "",
            2,
            &format!(
                "Statements about the arms sale from {} to {} ({}):",
                noun(&s.seller, &seller),
                noun(&s.buyer, &buyer),
                s.stream
            ),
        )?;
        let parties = [s.seller.clone(), s.buyer.clone()];
        let positions = chronicle::query::positions(
            s.statements
                .iter()
                .map(|st| (st.speaker.clone(), st.stance)),
        );
        for st in &s.statements {
            let line = statement_line(&|id| q.name(id), st, "the sale", &parties, &positions)?;
            let when = st.occurred.map(|o| format!("{o}: ")).unwrap_or_default();
            let mark = if st.corrected { " [corrected]" } else { "" };
            output::wrapped_line(out, "  - ", 0, &format!("{when}{line}{mark}"))?;
            output::wrapped_line(out, "      ", 0, &st.summary)?;
            if let Some(quote) = &st.quote {
                output::wrapped_line(out, "      ", 0, &format!("“{quote}”"))?;
            }
        }
    }
    for s in report.sales.iter().filter(|s| !s.corrections.is_empty()) {
        // A stream with two sales says which one.
        let which = match report.sales.iter().filter(|o| o.stream == s.stream).count() {
            1 => String::new(),
            _ => {
                let when = s.occurred.map(|o| format!(" of {o}")).unwrap_or_default();
                format!(" (the sale{when}, {})", s.id)
            }
        };
        writeln!(out, "\nCorrections of {}{which}:", s.stream)?;
        for c in &s.corrections {
            writeln!(out, "  - {}", chronicle::query::describe_correction(c))?;
            for change in &c.changes {
                writeln!(out, "      {}", super::remote::describe_change(q, change)?)?;
            }
        }
    }
    if !report.retracted.is_empty() {
        writeln!(out, "\nRetracted sales (in no total):")?;
        for e in &report.retracted {
            writeln!(
                out,
                "  - {}: {} ({}) [retracted: {}]",
                e.occurred,
                e.summary,
                e.stream,
                e.retracted.as_deref().unwrap_or_default()
            )?;
        }
    }
    for (title, totals) in [("buyer", &report.by_buyer), ("seller", &report.by_seller)] {
        if totals.is_empty() {
            continue;
        }
        writeln!(out)?;
        print_totals(q, title, totals, out)?;
    }
    Ok(())
}

fn print_totals(
    q: &dyn Names,
    title: &str,
    totals: &[Total],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let header = format!("TOTAL BY {}", title.to_uppercase());
    let mut table = Table::new(&[&header, "VALUE", "SALES"]);
    for t in totals {
        let money = Money {
            amount: t.amount,
            currency: t.currency.clone(),
        };
        let about = if t.approximate { "~" } else { "" };
        table.row(vec![
            q.name(&t.party)?,
            format!("{about}{}", format_money(&money)),
            t.sales.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(())
}
