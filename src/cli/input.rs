//! Reading events from JSON Lines, and pointing errors back at the line they came from.

use super::UsageError;
use chronicle::Error;
use chronicle::model::{Origin, ProposedEvent, parse_event};
use std::path::{Path, PathBuf};

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
    /// Parses JSON Lines. Blank lines and lines starting with `//` are skipped. A line
    /// that carries the fields the store sets (`position`, `hash`…) is read as an
    /// export line when `allow_export` is set.
    pub fn add_text(&mut self, file: &str, bytes: &[u8], allow_export: bool) -> anyhow::Result<()> {
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let located = |e: chronicle::model::ValidationError| -> anyhow::Error {
                anyhow::Error::new(Error::Invalid {
                    index: None,
                    error: e.at_line(line),
                })
                .context(file.to_owned())
            };
            let text = std::str::from_utf8(raw).map_err(|e| {
                located(chronicle::model::ValidationError {
                    line: None,
                    field: None,
                    message: format!("not valid UTF-8 ({e}); save the file as UTF-8"),
                })
            })?;
            let text = text.strip_suffix('\r').unwrap_or(text);
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with("//") {
                continue;
            }
            let origin = if allow_export && looks_exported(trimmed) {
                Origin::Export
            } else {
                Origin::New
            };
            let event = parse_event(trimmed, origin).map_err(located)?;
            self.events.push(event);
            self.locations.push(Location {
                file: Some(file.to_owned()),
                line,
            });
        }
        Ok(())
    }

    /// Reads a file, or stdin for `-`.
    pub fn add_file(&mut self, path: &Path, allow_export: bool) -> anyhow::Result<()> {
        let (name, bytes) = if path == Path::new("-") {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|e| anyhow::anyhow!("reading stdin: {e}"))?;
            ("stdin".to_owned(), bytes)
        } else {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            (path.display().to_string(), bytes)
        };
        self.add_text(&name, &bytes, allow_export)
    }

    /// Attributes an error from the store about the event at some index to its line.
    pub fn locate(&self, err: Error) -> anyhow::Error {
        match err {
            Error::Invalid {
                index: Some(i),
                error,
            } => match self.locations.get(i) {
                Some(Location {
                    file: Some(file),
                    line,
                }) => anyhow::Error::new(Error::Invalid {
                    index: None,
                    error: error.at_line(*line),
                })
                .context(file.clone()),
                _ => anyhow::Error::new(Error::Invalid { index: None, error }),
            },
            Error::Conflict { index, .. } => match self.locations.get(index) {
                Some(Location {
                    file: Some(file),
                    line,
                }) => anyhow::Error::new(err).context(format!("{file}: line {line}")),
                _ => anyhow::Error::new(err),
            },
            other => anyhow::Error::new(other),
        }
    }
}

/// An exported line carries the store's fields; new events never do.
fn looks_exported(line: &str) -> bool {
    line.contains("\"hash\"") && line.contains("\"position\"")
}

/// The `.jsonl` files of the given paths: files as given, folders searched recursively,
/// each folder's files in name order.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            files.extend(found);
        } else if path.exists() || path == Path::new("-") {
            files.push(path.clone());
        } else {
            return Err(UsageError(format!(
                "{} does not exist; pass .jsonl files or folders of them",
                path.display()
            ))
            .into());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("cannot read folder {}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|x| x == "jsonl") {
            found.push(path);
        }
    }
    Ok(())
}
