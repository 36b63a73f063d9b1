//! `chronicle import`: files and folders of JSON Lines, checked in full before anything
//! is written, then appended in atomic batches. Idempotent: importing twice adds nothing,
//! and an interrupted import is finished by running it again (Ctrl-C or SIGTERM stops
//! it at the end of a batch, and it says how far it got). An `export` restores
//! with its positions, times and hashes into an empty store.
//!
//! chronicle's memory does not grow with the input: a first pass reads every line, checks
//! it against the log and the lines before it (remembering only ids and stream
//! versions), and copies it to an anonymous temporary file; the second pass appends
//! from that file. Stdin is read once, like a file. Then the command waits for the
//! views to take the new events in, and closes the store, which after a large write
//! writes sled's recovery snapshots now rather than at the user's next command.

use super::input::{collect_files, locate, open_input, read_events};
use super::interrupt::{Catching, Interrupted};
use super::output::{self, Table};
use super::{App, UsageError};
use chronicle::model::{EventType, ProposedEvent};
use chronicle::store::{Checker, EventStore, Store};
use serde::Serialize;
use std::collections::HashSet;
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const EXAMPLES: &str = "\
Examples:
  chronicle import events/                 every .jsonl below events/, in name order
  chronicle import a.jsonl b.jsonl
  chronicle export --out backup.jsonl && chronicle --db restored.db import backup.jsonl

Nothing is written unless every line is valid. Running the same import again adds nothing.
Ctrl-C stops it at the end of a batch, and it says how far it got and how to finish.";

/// Import JSON Lines files or folders of them.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Files or folders (`.jsonl`, searched recursively, in name order); `-` for stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Events per atomic batch.
    #[arg(long, default_value_t = 1000, value_parser = batch_size, allow_negative_numbers = true)]
    batch: u64,
}

/// A `--batch` value: from 1 to 100,000 events.
fn batch_size(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a batch size: give a whole number of events from 1 to 100000"
        )),
    }
}

/// What an import did.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub files: usize,
    pub read: usize,
    pub new: usize,
    pub already_present: usize,
    pub head: u64,
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let files = collect_files(&args.paths)?;
    let inputs: Vec<Input> = files.iter().map(|f| Input::File(f.clone())).collect();
    let batch = usize::try_from(args.batch).unwrap_or(1000);
    // Bulk writing: small caches keep a large import's memory bounded.
    chronicle::store::use_bulk_caches();
    // Into a store that does not exist yet, the input is checked before the store is
    // created, so that bad input creates nothing; a --db that cannot hold a store is
    // said first.
    app.check_db_path(false)?;
    let store = if app.store_exists() {
        Some(app.open_store()?)
    } else {
        None
    };
    // Ctrl-C or SIGTERM while checking stops before anything is written, and says so
    // (not while reading stdin, where the signal must end a read that waits for a
    // line); while writing, at a batch's end, saying how far it got.
    let reads_stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    let catching = (!reads_stdin).then(Catching::start);
    let checked = match check(store.as_ref(), &inputs, batch, catching.as_ref()) {
        Ok(checked) => checked,
        Err(refused) => return Err(app.with_entity_hint(refused, store)),
    };
    let catching = catching.unwrap_or_else(Catching::start);
    if checked.origins.lines.is_empty() {
        // As `append` answers: most likely the wrong file (and no store is created).
        let named: Vec<String> = args
            .paths
            .iter()
            .map(|p| match p.to_str() {
                Some("-") => "stdin".to_owned(),
                _ => p.display().to_string(),
            })
            .collect();
        return Err(UsageError(format!(
            "{} {} no events; nothing was written: give one event per line as a JSON object (an export, or `chronicle types show TYPE` for a template)",
            named.join(", "),
            if named.len() == 1 { "holds" } else { "hold" }
        ))
        .into());
    }
    let store = match store {
        Some(store) => store,
        None => app.open_store()?,
    };
    let summary = write(&store, checked, inputs.len(), batch, Some(&catching))?;
    let late = catching.caught().is_some();
    drop(catching);
    if late {
        // Come during the last batch: every event is in; the views can wait.
        note!(
            "note: every event was written when the signal came; the views take them in at the next command"
        );
    } else {
        settle(store)?;
    }
    print_summary(&summary, app.json)
}

/// One input of an import.
pub enum Input {
    /// A file, or stdin for `-`.
    File(PathBuf),
    /// Text compiled into the binary (the demo's events), with the name to report.
    Text(String, &'static str),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(p) if p == Path::new("-") => "stdin".into(),
            Input::File(p) => p.display().to_string(),
            Input::Text(name, _) => name.clone(),
        }
    }

    fn open(&self) -> anyhow::Result<Box<dyn BufRead>> {
        match self {
            Input::File(p) => open_input(p),
            Input::Text(_, text) => Ok(Box::new(text.as_bytes())),
        }
    }
}

/// Where each event read came from: an input's index and a line, 8 bytes an event.
struct Origins {
    names: Vec<String>,
    lines: Vec<(u32, u32)>,
}

impl Origins {
    /// Attributes an error about the event at `offset + index` to its file and line.
    fn locate(&self, err: chronicle::Error, offset: usize) -> anyhow::Error {
        locate(err, |i| {
            let (input, line) = *self.lines.get(offset + i)?;
            let name = self.names.get(usize::try_from(input).ok()?)?.clone();
            Some((name, usize::try_from(line).ok()?))
        })
    }
}

/// Checks every event of the inputs against the store, then appends them in batches.
pub fn import(store: &Store, inputs: &[Input], batch: usize) -> anyhow::Result<Summary> {
    let checked = check(Some(store), inputs, batch, None)?;
    write(store, checked, inputs.len(), batch, None)
}

/// Input that passed every check, copied to a temporary file, with where each event
/// came from.
pub struct Checked {
    copy: std::fs::File,
    origins: Origins,
}

fn spill_error(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "writing the import's temporary copy of its input: {e}; check free space in the temporary folder (TMPDIR)"
    )
}

/// Pass 1: reads every line, checks it against the store (an empty log when there is no
/// store yet) and the lines before it, and copies it to a temporary file. Writes
/// nothing to the store.
///
/// The check forgets each batch's facts once checked, so that its memory does not grow
/// with the input. When an amendment's target was one of them, it checks the copy
/// again, keeping the data of the facts the input amends.
pub fn check(
    store: Option<&Store>,
    inputs: &[Input],
    batch: usize,
    catching: Option<&Catching>,
) -> anyhow::Result<Checked> {
    let mut origins = Origins {
        names: inputs.iter().map(Input::name).collect(),
        lines: Vec::new(),
    };
    let mut spill = std::io::BufWriter::new(tempfile::tempfile().map_err(spill_error)?);
    let checking = output::spinner("checking the input against the log");
    let checker = |keeping| -> anyhow::Result<Batches<'_>> {
        let checker = match store {
            Some(store) => store.checker()?,
            None => Checker::for_empty_log(),
        };
        Ok(Batches::new(checker.keeping(keeping), batch))
    };
    let mut batches = checker(HashSet::new())?;
    for (i, input) in inputs.iter().enumerate() {
        let input_index = u32::try_from(i).unwrap_or(u32::MAX);
        read_events(&input.name(), input.open()?, true, |raw, event, line| {
            spill.write_all(raw).map_err(spill_error)?;
            spill.write_all(b"\n").map_err(spill_error)?;
            origins
                .lines
                .push((input_index, u32::try_from(line).unwrap_or(u32::MAX)));
            stop_if_caught(catching, origins.lines.len(), false)?;
            batches.push(event, &origins)
        })?;
    }
    let missed = batches.finish(&origins)?;
    let mut copy = spill
        .into_inner()
        .map_err(|e| spill_error(e.into_error()))?;
    copy.rewind().map_err(spill_error)?;
    if let Some(targets) = missed {
        let mut batches = checker(targets)?;
        let name = "the import's copy of its input";
        read_events(name, std::io::BufReader::new(&copy), true, |_, event, _| {
            stop_if_caught(catching, batches.read(), true)?;
            batches.push(event, &origins)
        })?;
        batches.finish(&origins)?;
        copy.rewind().map_err(spill_error)?;
    }
    checking.finish_and_clear();
    Ok(Checked { copy, origins })
}

/// A stop signal caught while checking ends the import: nothing is written yet.
fn stop_if_caught(catching: Option<&Catching>, read: usize, again: bool) -> anyhow::Result<()> {
    let reading = if again { "its second reading, " } else { "" };
    match catching.and_then(Catching::caught) {
        Some(signal) => Err(Interrupted {
            signal,
            what: format!("the import stopped while checking its input ({reading}{read} events read): nothing was written; run it again to import it"),
        }
        .into()),
        None => Ok(()),
    }
}

/// The events being checked, handed to the checker a batch at a time.
struct Batches<'a> {
    checker: Checker<'a>,
    chunk: Vec<ProposedEvent>,
    /// Events checked before `chunk`: where an error's index starts.
    checked: usize,
    batch: usize,
}

impl<'a> Batches<'a> {
    fn new(checker: Checker<'a>, batch: usize) -> Batches<'a> {
        Batches {
            checker,
            chunk: Vec::with_capacity(batch),
            checked: 0,
            batch,
        }
    }

    /// How many events it was given.
    fn read(&self) -> usize {
        self.checked + self.chunk.len()
    }

    fn push(&mut self, event: ProposedEvent, origins: &Origins) -> anyhow::Result<()> {
        self.chunk.push(event);
        if self.chunk.len() == self.batch {
            self.check(origins)?;
        }
        Ok(())
    }

    fn check(&mut self, origins: &Origins) -> anyhow::Result<()> {
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(self.batch));
        let len = full.len();
        (self.checker)
            .check(full)
            .map_err(|e| origins.locate(e, self.checked))?;
        self.checked += len;
        Ok(())
    }

    /// Checks the last batch; returns the facts the input amends when an amendment
    /// could not be checked in full ([`Checker::missed_targets`]).
    fn finish(mut self, origins: &Origins) -> anyhow::Result<Option<HashSet<Uuid>>> {
        self.check(origins)?;
        Ok(self.checker.missed_targets())
    }
}

/// Pass 2: appends the checked input from its copy, in atomic batches. A stop signal
/// `catching` caught ends it before the next batch, with an error that says how far it
/// got and how to finish.
pub fn write(
    store: &Store,
    checked: Checked,
    files: usize,
    batch: usize,
    catching: Option<&Catching>,
) -> anyhow::Result<Summary> {
    let Checked { copy, origins } = checked;
    let read = origins.lines.len();
    let bar = output::progress(read as u64, "importing");
    let mut new = 0;
    // Events appended with a note (see `AppendedEvent::note`): how many, and the first.
    let (mut noted, mut first_noted) = (0, None);
    let mut appended = 0;
    // Events with no id of their own, which an import of the same input again would
    // add again (the store gives each a new id).
    let mut without_id = 0;
    // Of those, entity registrations: a re-run refuses them, as registered already.
    let mut registrations_without_id = 0;
    // Where the log ended after the last batch made durable (read then: after a failed
    // commit the store's head may show events that never became durable).
    let mut durable_head = None;
    let mut chunk = Vec::with_capacity(batch);
    // Before each batch: a stop signal caught ends the import there, saying how far it
    // got and how to finish. After the last batch there is nothing left to stop.
    let stopped = |appended: usize, new: usize, without_id: usize| -> anyhow::Result<()> {
        let Some(signal) = catching.and_then(Catching::caught) else {
            return Ok(());
        };
        if appended == 0 {
            return Err(Interrupted {
                signal,
                what: "nothing was written".into(),
            }
            .into());
        }
        let head = store.head()?.position;
        let (input, line) = origins.lines[appended];
        let input = input as usize;
        let and_after = match input + 1 < origins.names.len() {
            true => ", and the files after it",
            false => "",
        };
        let next = if without_id == 0 {
            "run the same import again to finish it: the events already in the log are skipped"
                .to_owned()
        } else {
            format!(
                "{without_id} of the events written had no `id`, so the same import run again would not skip them: import the rest, from {} line {line} on{and_after}",
                origins.names[input]
            )
        };
        Err(Interrupted {
            signal,
            what: format!(
                "the import stopped with {appended} of its {read} events in the log ({new} new), in whole batches (the log ends at position {head}); {next}"
            ),
        }
        .into())
    };
    let mut append = |chunk: &mut Vec<ProposedEvent>, appended: &mut usize| -> anyhow::Result<()> {
        stopped(*appended, new, without_id)?;
        without_id += chunk.iter().filter(|e| e.id.is_none()).count();
        registrations_without_id += chunk
            .iter()
            .filter(|e| e.id.is_none() && e.event_type == EventType::EntityRegistered)
            .count();
        let done = store.append(std::mem::take(chunk)).map_err(|e| {
            let e = origins.locate(e, *appended);
            // Batches before this one are in the log: say so, since a re-run adds
            // again what has no id.
            match durable_head {
                None => e,
                Some(head) => e.context(format!(
                    "the import stopped after writing {appended} of its {read} events, in whole batches (the log ends at position {head})"
                )),
            }
        })?;
        durable_head = Some(store.head()?.position);
        new += done.iter().filter(|e| e.new).count();
        for e in done.iter().filter(|e| e.note.is_some()) {
            noted += 1;
            first_noted.get_or_insert_with(|| e.clone());
        }
        *appended += done.len();
        bar.set_position(*appended as u64);
        Ok(())
    };
    read_events(
        "the import's temporary copy",
        std::io::BufReader::new(copy),
        true,
        |_, event, _| {
            chunk.push(event);
            if chunk.len() == batch {
                append(&mut chunk, &mut appended)?;
            }
            Ok(())
        },
    )?;
    if !chunk.is_empty() {
        append(&mut chunk, &mut appended)?;
    }
    bar.finish_and_clear();
    if registrations_without_id > 0 {
        note!(
            "note: {without_id} of these events had no `id`, {registrations_without_id} of them `entity.registered`, so importing this input again would be refused (those entities are registered now); events with ids (as an export has) make a re-run safe"
        );
    } else if without_id > 0 {
        note!(
            "note: {without_id} of these events had no `id`, so importing this input again would add {} again; events with ids (as an export has) make a re-run safe",
            if without_id == 1 { "it" } else { "them" }
        );
    }
    if let Some(first) = first_noted {
        note!(
            "note: {noted} event{} of the input {} appended with a note; the first, event {} (position {}): {}",
            if noted == 1 { "" } else { "s" },
            if noted == 1 { "was" } else { "were" },
            first.id,
            first.position,
            first.note.unwrap_or_default(),
        );
    }
    Ok(Summary {
        files,
        read,
        new,
        already_present: read - new,
        head: store.head()?.position.0,
    })
}

/// On sled, waits for the views to take in what was just written (with a progress
/// bar), then closes the store: after a large write, closing writes sled's recovery
/// snapshots, so the cost of replaying it falls here, not on the next command. A
/// PostgreSQL log has neither cost here: each process's views catch up when it next
/// reads them.
pub fn settle(store: Store) -> anyhow::Result<()> {
    if store.sled().is_none() {
        return Ok(());
    }
    super::as_of::live_views(&store)?;
    drop(store);
    Ok(())
}

pub fn print_summary(summary: &Summary, json: bool) -> anyhow::Result<()> {
    let mut out = output::stdout();
    if json {
        output::json_line(&mut out, summary)?;
    } else {
        let mut table = Table::new(&[
            "FILES",
            "EVENTS READ",
            "NEW",
            "ALREADY PRESENT",
            "LOG ENDS AT",
        ]);
        table.row(vec![
            summary.files.to_string(),
            summary.read.to_string(),
            summary.new.to_string(),
            summary.already_present.to_string(),
            summary.head.to_string(),
        ]);
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
