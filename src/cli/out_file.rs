//! The file an `--out` names (`export`, `recover`), written whole or not at all.
//!
//! Guarantees: a crash never leaves a truncated backup where one was. The events go to
//! `<file>.partial` beside it, synced, renamed over it (keeping the old file's mode and,
//! where allowed, its owner), and the folder synced; a write that fails removes the
//! partial file. Through a symbolic link, the file it points to is replaced and the
//! link kept (a `latest.jsonl` link keeps naming the fresh backup). What is not a
//! regular file (a pipe, a device), and anything named under `/dev/` or `/proc/`
//! (`/dev/stdout`, whatever it is redirected to), is appended to as it is, never
//! replaced. A pipe whose reader went away is an error, not the quiet end it is on
//! stdout (`chronicle log | head`). A path in the store's own folders is refused.

use super::UsageError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct OutFile {
    /// As the user gave it, for errors.
    name: PathBuf,
    /// Taken by [`OutFile::finish`].
    writer: Option<BufWriter<File>>,
    /// The partial file and the file it becomes; none when written in place.
    rename: Option<Rename>,
}

struct Rename {
    partial: PathBuf,
    target: PathBuf,
    /// The file replaced, whose mode and owner the new one takes.
    replaced: Option<std::fs::Metadata>,
}

/// Refuses a `path` in one of the store's own `folders` (its sled folder, a views
/// folder), or one of them: written there, it could replace the store's own files.
pub fn refuse_inside(path: &Path, folders: &[PathBuf]) -> anyhow::Result<()> {
    let Some(at) = resolved(path) else {
        return Ok(());
    };
    for folder in folders {
        if let Ok(folder) = std::fs::canonicalize(folder)
            && at.starts_with(&folder)
        {
            let name = folder.file_name().unwrap_or_default().to_string_lossy();
            let beside = folder.with_file_name(format!("{name}-backup.jsonl"));
            return Err(UsageError(format!(
                "--out {} is in the store's own folder {}, where it could replace the store's files; give a file outside it, such as {}",
                path.display(),
                folder.display(),
                beside.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Where `path` is, links resolved: itself when it exists, else its folder's place
/// with its name (for a link to a file not made yet, where the link points).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(at) = std::fs::canonicalize(path) {
        return Some(at);
    }
    let target = resolve_links(path).ok()?;
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(
        std::fs::canonicalize(folder)
            .ok()?
            .join(target.file_name()?),
    )
}

impl OutFile {
    /// Opens `path` for writing, as the module says. (The command refuses a path in
    /// the store's folders first, with [`refuse_inside`], before it opens the store.)
    pub fn create(path: &Path) -> anyhow::Result<OutFile> {
        if path.is_dir() {
            return Err(UsageError(format!(
                "--out {} is a folder; give a file in it, such as {}",
                path.display(),
                path.join("backup.jsonl").display()
            ))
            .into());
        }
        let cannot = |e: std::io::Error, through: &Path| {
            UsageError(format!(
                "cannot write {} (through {}): {e}; check that its folder exists and is writable",
                path.display(),
                through.display()
            ))
        };
        let in_place = path.starts_with("/dev") || path.starts_with("/proc");
        let (target, replaced) = match std::fs::metadata(path) {
            Ok(m) if in_place || !m.is_file() => {
                let file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| cannot(e, path))?;
                return Ok(OutFile {
                    name: path.to_owned(),
                    writer: Some(BufWriter::new(file)),
                    rename: None,
                });
            }
            // A regular file, through any links.
            Ok(m) => (
                std::fs::canonicalize(path).map_err(|e| cannot(e, path))?,
                Some(m),
            ),
            // Not there yet, or named by a link to where it will be.
            Err(_) => (resolve_links(path)?, None),
        };
        let mut partial = target.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| cannot(e, &partial))?;
        Ok(OutFile {
            name: path.to_owned(),
            writer: Some(BufWriter::new(file)),
            rename: Some(Rename {
                partial,
                target,
                replaced,
            }),
        })
    }

    /// Makes what was written durable and puts it in place.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let file = writer
            .into_inner()
            .map_err(|e| writing(&self.name, e.into_error()))?;
        let Some(rename) = &self.rename else {
            return Ok(());
        };
        let Rename {
            partial,
            target,
            replaced,
        } = rename;
        file.sync_all()
            .map_err(|e| anyhow::anyhow!("syncing {}: {e}", partial.display()))?;
        if let Some(old) = replaced {
            use std::os::unix::fs::MetadataExt;
            // The owner only where this user may give it (root, or the same owner).
            let _ = std::os::unix::fs::chown(partial, Some(old.uid()), Some(old.gid()));
            std::fs::set_permissions(partial, old.permissions())
                .map_err(|e| anyhow::anyhow!("setting the mode of {}: {e}", partial.display()))?;
        }
        std::fs::rename(partial, target).map_err(|e| {
            anyhow::anyhow!(
                "renaming {} to {}: {e}",
                partial.display(),
                target.display()
            )
        })?;
        let target = target.clone();
        // In place: nothing to remove on drop.
        self.rename = None;
        // The rename itself survives a crash once its folder is synced.
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| {
                anyhow::anyhow!(
                    "syncing the folder {} after writing {}: {e}",
                    folder.display(),
                    target.display()
                )
            })?;
        Ok(())
    }
}

/// A partial file that was not put in place is removed.
impl Drop for OutFile {
    fn drop(&mut self) {
        if let Some(rename) = &self.rename {
            drop(self.writer.take());
            let _ = std::fs::remove_file(&rename.partial);
        }
    }
}

/// Its failed writes name the file ("writing /dev/full: No space left on device").
impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.writer {
            Some(w) => w.write(buf).map_err(|e| writing(&self.name, e)),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush().map_err(|e| writing(&self.name, e)),
            None => Ok(()),
        }
    }
}

/// A failed write, naming the file. A pipe whose reader went away is not `BrokenPipe`
/// here, which the command line takes for a reader that had all it wanted.
fn writing(name: &Path, e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return std::io::Error::other(format!(
            "writing {}: its reader went away before the end ({e}); nothing more was written",
            name.display()
        ));
    }
    std::io::Error::new(e.kind(), format!("writing {}: {e}", name.display()))
}

/// The file `path` names once its symbolic links are followed: the link's target,
/// whether or not it exists yet. More than 40 links (a loop) is refused, as the kernel
/// refuses them.
fn resolve_links(path: &Path) -> anyhow::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&at) {
            Ok(to) => {
                at = match at.parent() {
                    Some(folder) => folder.join(to),
                    None => to,
                }
            }
            Err(_) => return Ok(at),
        }
    }
    Err(UsageError(format!(
        "--out {}: its symbolic links go round in a loop, or past 40; give the file itself",
        path.display()
    ))
    .into())
}
