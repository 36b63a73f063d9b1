//! `chronicle verify`: prove the log was not rewritten and every index and view is
//! what the log implies.

use super::output::{self, Table};
use super::{App, UsageError};
use chronicle::Error;
use chronicle::model::Position;
use chronicle::store::{EventStore, Head, ReadFilter};
use std::io::Write;

const EXAMPLES: &str = "\
Examples:
  chronicle verify                                   check everything; exit 4 at the first problem
  chronicle verify --head > head.txt                 save POSITION:HASH, a digest to publish
  chronicle verify --expect-head \"$(cat head.txt)\"   later: prove the log up to it is unchanged";

/// Check the hash chain, positions, versions, indexes, and that every projection
/// equals a fresh replay.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only print the last position and its hash, as POSITION:HASH.
    #[arg(long)]
    head: bool,
    /// Also check that the event at POSITION still has HASH (a head published earlier).
    #[arg(long, value_name = "POSITION:HASH")]
    expect_head: Option<String>,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let expected = args.expect_head.as_deref().map(parse_head).transpose()?;
    let store = app.open_existing_store()?;
    let mut out = output::stdout();
    if args.head {
        let head = store.head()?;
        if app.json {
            output::json_line(&mut out, &head)?;
        } else {
            writeln!(out, "{}:{}", head.position, head.hash)?;
        }
        out.flush()?;
        return Ok(());
    }
    let bar = output::progress(0, "verifying");
    let report = store.verify(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    // The hash of the last position verified, not of the head now: on PostgreSQL others
    // may have appended since.
    let verified_hash = || -> anyhow::Result<String> {
        Ok(match store.get(report.head)? {
            Some(event) => event.hash,
            None => Head::empty().hash,
        })
    };
    // A published head is checked once the chain holds; a mismatch is the problem.
    let head_problem = match (&report.problem, &expected) {
        (None, Some((position, hash))) => {
            let position = *position;
            // Position 0 is the empty log's head, as `--head` prints it for one.
            let found = match position.0 {
                0 => Some(Head::empty().hash),
                _ => store.get(position)?.map(|event| event.hash),
            };
            // A hash the log has at another position is a mistyped position.
            let elsewhere = || -> anyhow::Result<Option<Position>> {
                for event in store.read(&ReadFilter::default()) {
                    let event = event?;
                    if event.position > report.head {
                        break;
                    }
                    if &event.hash == hash {
                        return Ok(Some(event.position));
                    }
                }
                Ok(None)
            };
            match &found {
                Some(found) if found == hash => None,
                _ => Some((
                    position,
                    match (elsewhere()?, &found) {
                        (Some(at), _) => format!(
                            "the log has {hash} at position {at}, not {position}: check the position given"
                        ),
                        (None, None) => format!(
                            "the log has no position {position} (it ends at {}): it was truncated, unless that head is another store's",
                            report.events
                        ),
                        (None, Some(found)) => format!(
                            "position {position} has hash {found} but {hash} was published: the log up to it was rewritten, unless that head is another store's"
                        ),
                    },
                )),
            }
        }
        _ => None,
    };
    if app.json {
        // With the head's hash, as `--head` prints it, when the chain holds.
        let mut json = serde_json::to_value(&report)?;
        if head_problem.is_some() {
            json["problem"] = serde_json::to_value(&head_problem)?;
        } else if report.problem.is_none() {
            json["hash"] = verified_hash()?.into();
        }
        output::json_line(&mut out, &json)?;
    } else {
        let mut table = Table::new(&["CHECK", "ITEMS"]);
        for (check, n) in &report.checks {
            table.row(vec![check.clone(), n.to_string()]);
        }
        table.write(&mut out)?;
    }
    out.flush()?;
    if let Some((position, problem)) = &report.problem {
        let at = if position.0 == 0 {
            String::new()
        } else {
            format!("position {position}: ")
        };
        return Err(Error::Integrity(format!(
            "{at}{problem}; inspect it with `chronicle log --from {}` and restore from an export if history was altered",
            position.0.max(1)
        ))
        .into());
    }
    if let Some((_, problem)) = head_problem {
        return Err(Error::Integrity(problem).into());
    }
    if !app.json {
        let proof = expected
            .map(|(p, _)| format!("; unchanged up to published head {p}"))
            .unwrap_or_default();
        writeln!(
            out,
            "ok: {} events verified, head {}:{}{proof}",
            report.events,
            report.head,
            verified_hash()?
        )?;
        out.flush()?;
    }
    Ok(())
}

fn parse_head(text: &str) -> anyhow::Result<(Position, String)> {
    let bad = || {
        UsageError(format!(
            "--expect-head `{text}`: expected POSITION:HASH as printed by `chronicle verify --head`"
        ))
    };
    let (p, h) = text.split_once(':').ok_or_else(bad)?;
    let position = p.parse::<u64>().map_err(|_| bad())?;
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad().into());
    }
    Ok((Position(position), h.to_ascii_lowercase()))
}
