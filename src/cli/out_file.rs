//! The file an `--out` names (`export`, `recover`), written whole or not at all.
//!
//! Guarantees: a crash never leaves a truncated backup where one was. The events go to
//! `<file>.partial` beside it, synced, renamed over it, and the folder synced. Through a
//! symbolic link, the file it points to is replaced and the link kept (a `latest.jsonl`
//! link keeps naming the fresh backup). What is not a regular file (a pipe,
//! `/dev/stdout`) is written to as it is, never replaced.

use super::UsageError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct OutFile {
    /// As the user gave it, for errors.
    name: PathBuf,
    writer: BufWriter<File>,
    /// The partial file and the file it becomes; none when written in place.
    rename: Option<(PathBuf, PathBuf)>,
}

impl OutFile {
    /// Opens `path` for writing, as the module says.
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
        let target = match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| cannot(e, path))?;
                return Ok(OutFile {
                    name: path.to_owned(),
                    writer: BufWriter::new(file),
                    rename: None,
                });
            }
            // A regular file, through any links.
            Ok(_) => std::fs::canonicalize(path).map_err(|e| cannot(e, path))?,
            // Not there yet, or named by a link to where it will be.
            Err(_) => resolve_links(path),
        };
        let mut partial = target.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| cannot(e, &partial))?;
        Ok(OutFile {
            name: path.to_owned(),
            writer: BufWriter::new(file),
            rename: Some((partial, target)),
        })
    }

    /// Makes what was written durable and puts it in place.
    pub fn finish(self) -> anyhow::Result<()> {
        let Some((partial, target)) = self.rename else {
            self.writer
                .into_inner()
                .map_err(|e| anyhow::anyhow!("writing {}: {}", self.name.display(), e.error()))?;
            return Ok(());
        };
        let file = self
            .writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {}", partial.display(), e.error()))?;
        file.sync_all()
            .map_err(|e| anyhow::anyhow!("syncing {}: {e}", partial.display()))?;
        std::fs::rename(&partial, &target).map_err(|e| {
            anyhow::anyhow!(
                "renaming {} to {}: {e}",
                partial.display(),
                target.display()
            )
        })?;
        // The rename itself survives a crash once its folder is synced.
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| anyhow::anyhow!("syncing the folder {}: {e}", folder.display()))?;
        Ok(())
    }
}

/// Its failed writes name the file ("writing /dev/full: No space left on device").
impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let name = &self.name;
        self.writer.write(buf).map_err(|e| writing(name, e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let name = &self.name;
        self.writer.flush().map_err(|e| writing(name, e))
    }
}

fn writing(name: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("writing {}: {e}", name.display()))
}

/// The file `path` names once its symbolic links are followed: the link's target,
/// whether or not it exists yet. At most 40 links, as the kernel allows.
fn resolve_links(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(to) => {
                path = match path.parent() {
                    Some(folder) => folder.join(to),
                    None => to,
                }
            }
            Err(_) => break,
        }
    }
    path
}
