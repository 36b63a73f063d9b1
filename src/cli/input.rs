//! Reading events from JSON Lines, and pointing errors back at the line they came from.
//!
//! Input is read a line at a time, and each line is size-checked while it is read: a
//! line longer than an event may be is refused as soon as its first bytes past the limit
//! arrive, so memory stays bounded on any input (`chronicle import /dev/zero` exits 2 at
//! once). Every line then goes through [`parse_event`], the one validation path that the
//! command-line flags and the HTTP API use too.

use super::UsageError;
use chronicle::Error;
use chronicle::error::{ExpectGiven, conflict_message};
use chronicle::model::event::max_event_bytes;
use chronicle::model::{Origin, ProposedEvent, ValidationError, parse_event};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Room on a line beyond the event itself, for a line ending and surrounding spaces.
const LINE_SLACK: usize = 64;

/// Where an event came from: a file (or stdin) and a line.
#[derive(Debug, Clone)]
pub struct Location {
    /// `None` for an event given as flags.
    pub file: Option<String>,
    pub line: usize,
}

/// Events read from input, each with its location.
#[derive(Default)]
pub struct Parsed {
    pub events: Vec<ProposedEvent>,
    pub locations: Vec<Location>,
}

impl Parsed {
    /// Parses JSON Lines from a reader, a line at a time (see [`read_events`]). A line
    /// that carries the fields the store sets (`position`, `hash`…) is read as an
    /// export line when `allow_export` is set.
    pub fn add_reader(
        &mut self,
        file: &str,
        reader: impl BufRead,
        allow_export: bool,
    ) -> anyhow::Result<()> {
        read_events(file, reader, allow_export, |_, event, line| {
            self.events.push(event);
            self.locations.push(Location {
                file: Some(file.to_owned()),
                line,
            });
            Ok(())
        })
    }

    /// Reads a file, or stdin for `-`, a line at a time.
    pub fn add_file(&mut self, path: &Path, allow_export: bool) -> anyhow::Result<()> {
        let name = if path == Path::new("-") {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        self.add_reader(&name, open_input(path)?, allow_export)
    }

    /// Attributes an error from the store about the event at some index to its line.
    pub fn locate(&self, err: Error) -> anyhow::Error {
        locate(err, |i| {
            let found = self.locations.get(i)?;
            Some((found.file.clone()?, found.line))
        })
    }
}

/// A conflict of an event read from a JSON line, whose message says to change that line's
/// `expect` (a `--expect` flag is refused with such input). Exit 3, as any conflict.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConflictOnLine(String);

/// Attributes an error from the store about the event at some index to the file and line
/// `at(index)` gives.
pub fn locate(err: Error, at: impl Fn(usize) -> Option<(String, usize)>) -> anyhow::Error {
    match err {
        Error::Invalid {
            index: Some(i),
            error,
        } => match at(i) {
            Some((file, line)) => anyhow::Error::new(Error::Invalid {
                index: None,
                error: error.at_line(line),
            })
            .context(file),
            None => anyhow::Error::new(Error::Invalid { index: None, error }),
        },
        Error::Conflict {
            index,
            ref stream,
            ref expected,
            actual,
            written,
        } => match at(index) {
            Some((file, line)) => anyhow::Error::new(ConflictOnLine(format!(
                "{file}: line {line}: {}",
                conflict_message(stream, expected, actual, written, ExpectGiven::Line)
            ))),
            None => anyhow::Error::new(err),
        },
        other => anyhow::Error::new(other),
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads JSON Lines a line at a time and calls `each(raw line, event, line number)` for
/// every event; blank lines and `//` comments are skipped. A line longer than the
/// largest event is refused before the rest of it is read. Errors name the file and
/// the line.
pub fn read_events(
    file: &str,
    mut reader: impl BufRead,
    allow_export: bool,
    mut each: impl FnMut(&[u8], ProposedEvent, usize) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let origin = if allow_export {
        Origin::Export
    } else {
        Origin::New
    };
    let max_line = max_event_bytes(origin) + LINE_SLACK;
    let mut raw = Vec::new();
    for line in 1.. {
        let located = |e: ValidationError| -> anyhow::Error {
            anyhow::Error::new(Error::Invalid {
                index: None,
                error: e.at_line(line),
            })
            .context(file.to_owned())
        };
        raw.clear();
        let ended = read_line(&mut reader, &mut raw, max_line)
            .map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?;
        // A byte order mark, as some editors on Windows write one: not part of the JSON.
        if line == 1 && raw.starts_with(UTF8_BOM) {
            raw.drain(..UTF8_BOM.len());
        }
        if raw.len() > max_line {
            return Err(located(ValidationError {
                line: None,
                field: None,
                message: format!(
                    "the event is over {max_line} bytes (reading stopped there), more than the limit of {}{}; split it or shorten its texts",
                    max_event_bytes(Origin::New),
                    match origin {
                        Origin::New => String::new(),
                        Origin::Export => format!(
                            " ({} for a line of `chronicle export`)",
                            max_event_bytes(origin)
                        ),
                    }
                ),
            }));
        }
        if let Some(event) = parse_line(&raw, allow_export).map_err(located)? {
            each(&raw, event, line)?;
        }
        if ended {
            break;
        }
    }
    Ok(())
}

/// Opens a file, or stdin for `-`, to read it a line at a time.
pub fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    if path.is_dir() {
        return Err(UsageError(format!(
            "{} is a folder; give a JSON Lines file (`chronicle import` reads folders)",
            path.display()
        ))
        .into());
    }
    let file = std::fs::File::open(path).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e}; check the path (JSON Lines, one event per line)",
            path.display()
        ))
    })?;
    Ok(Box::new(std::io::BufReader::new(file)))
}

/// Parses one line (without its `\n`): `None` for a blank line or a comment.
fn parse_line(raw: &[u8], allow_export: bool) -> Result<Option<ProposedEvent>, ValidationError> {
    let text = std::str::from_utf8(raw).map_err(|e| ValidationError {
        line: None,
        field: None,
        message: format!("not valid UTF-8 ({e}); save the file as UTF-8"),
    })?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim_start().starts_with('\u{FEFF}') {
        // Only the first line's is skipped: here it is most likely a second file's, put
        // after the first with `cat`.
        return Err(ValidationError {
            line: None,
            field: None,
            message: "the line starts with a byte order mark (U+FEFF), which only a file's first line may have (files joined with `cat` keep theirs); remove it".into(),
        });
    }
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with("//") {
        return Ok(None);
    }
    let origin = if allow_export && looks_exported(trimmed) {
        Origin::Export
    } else {
        Origin::New
    };
    parse_event(trimmed, origin).map(Some)
}

/// Reads one line into `line` (without its `\n`), stopping as soon as it holds more than
/// `max` bytes. Returns whether the input ended.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(true);
        }
        let room = (max + 1).saturating_sub(line.len());
        match available.iter().position(|b| *b == b'\n') {
            Some(end) if end <= room => {
                line.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                return Ok(false);
            }
            _ => {
                let take = available.len().min(room);
                line.extend_from_slice(&available[..take]);
                reader.consume(take);
                if line.len() > max {
                    return Ok(false);
                }
            }
        }
    }
}

/// An exported line carries the store's fields; new events never do.
fn looks_exported(line: &str) -> bool {
    line.contains("\"hash\"") && line.contains("\"position\"")
}

/// The `.jsonl` files of the given paths: files as given, folders searched recursively
/// (not through links to folders) for names ending in `.jsonl` (in any case), each
/// folder's files in name order. Other files a folder holds are named in a note;
/// stdin (`-`) is read once.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, &mut skipped)?;
            if found.is_empty() {
                return Err(UsageError(format!(
                    "{} holds no .jsonl files (searched with its subfolders); pass .jsonl files or folders of them",
                    path.display()
                ))
                .into());
            }
            found.sort();
            files.extend(found);
        } else if path == Path::new("-") {
            if files.iter().any(|f: &PathBuf| f == path) {
                return Err(UsageError(
                    "`-` (stdin) is given twice; stdin is read once, so give it once".into(),
                )
                .into());
            }
            files.push(path.clone());
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(UsageError(format!(
                "{} does not exist; pass .jsonl files or folders of them",
                path.display()
            ))
            .into());
        }
    }
    skipped.sort();
    if let Some(first) = skipped.first() {
        let (count, does, more) = match skipped.len() {
            1 => ("1 file".to_owned(), "does", String::new()),
            n => (format!("{n} files"), "do", format!(" and {} more", n - 1)),
        };
        note!(
            "note: skipped {count} that {does} not end in .jsonl: {}{more}; a folder's files are read when they are JSON Lines named .jsonl (rename them, or pass a file by its name)",
            first.display()
        );
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, skipped: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("cannot read folder {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        // A link to a folder is not followed: one to a folder above would loop.
        if entry.file_type()?.is_symlink() && path.is_dir() {
            continue;
        }
        // Hidden files and folders (`.git/`, `.DS_Store`) are not input, nor worth a note.
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        if path.is_dir() {
            walk(&path, found, skipped)?;
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("jsonl"))
        {
            found.push(path);
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}
