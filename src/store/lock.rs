//! The store's own lock, taken before sled touches the directory, and the clean-up that
//! only its holder may do.
//!
//! sled 0.34.7 takes its lock on `db` inside `sled::Config::open`, after it has already
//! listed and read the snapshot files. A process killed while sled writes a snapshot
//! (sled writes one on every open) leaves an unfinished `snap.<lsn>.generating` file,
//! and sled's next open picks the highest-named snapshot file, unfinished or not, and
//! fails with `Corruption { at: None }` (sled issues #1527, #1533): one kill at the
//! wrong moment would brick the store. So [`StoreLock::acquire`] takes an exclusive
//! `flock` on `chronicle.lock` first, and only then removes leftover `.generating`
//! files: while we hold the lock no other chronicle process has the store open, so no
//! live snapshot writer can be disturbed. The lock lives as long as the store handle.
//!
//! Guarantees: at most one process holds a store's `StoreLock`; a second one gets
//! [`Error::Locked`] before anything in the directory is read or changed; the kernel
//! releases the lock when the holder dies, even by `kill -9`.

use crate::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// The name of the lock file in a store's directory.
pub const LOCK_FILE: &str = "chronicle.lock";

/// How long an open waits for a lock that this same process held last (see
/// [`StoreLock::acquire`]); a lock held by another process is refused at once.
const OWN_LOCK_LINGERS: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a process holds the store in `dir` (a server, or any command): its lock file
/// is locked. Checked without waiting and without creating anything.
pub fn is_held(dir: &Path) -> bool {
    match File::open(dir.join(LOCK_FILE)) {
        Ok(file) => matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// An exclusive hold on a store's directory; released when dropped.
#[derive(Debug)]
pub(super) struct StoreLock {
    _file: File,
    /// The lock file, when this lock created it: a refused open removes it again
    /// ([`StoreLock::abandon`]).
    created: Option<std::path::PathBuf>,
}

impl StoreLock {
    /// Creates the directory when missing, takes the lock without waiting for another
    /// process (only, briefly, for this one's own: see [`OWN_LOCK_LINGERS`]), and removes
    /// what a killed process can leave behind that sled would misread.
    pub fn acquire(dir: &Path) -> Result<StoreLock> {
        // What to do when this user may not write here (a read-only copy, a snapshot).
        let failed = |what: String, e: std::io::Error| {
            let next = match e.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    "; chronicle needs to write in this folder, even to read (its lock file, and the views it keeps current): give this user write access to it, or use a copy made somewhere writable (for a PostgreSQL log, a --views folder this user can write)"
                }
                _ => "",
            };
            Error::Storage(format!("{what}: {e}{next}"))
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("creating {}", dir.display()), e))?;
        let path = dir.join(LOCK_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| failed(format!("opening {}", path.display()), e))?;
        let deadline = std::time::Instant::now() + OWN_LOCK_LINGERS;
        loop {
            match file.try_lock() {
                // The holder's pid, for whoever finds the store locked (best effort).
                Ok(()) => {
                    let _ = file.set_len(0).and_then(|()| {
                        (&file).write_all(std::process::id().to_string().as_bytes())
                    });
                    break;
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|pid| pid.trim().parse().ok());
                    // This process's own lock, closed a moment ago, can still be held
                    // by a child that another thread forked and that has not exec'd
                    // yet (the lock belongs to the open file, which the fork shares).
                    if holder == Some(std::process::id()) && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                    return Err(Error::Locked {
                        path: dir.to_owned(),
                        views: false,
                        holder,
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::Storage(format!("locking {}: {e}", path.display())));
                }
            }
        }
        remove_unfinished_snapshots(dir)?;
        Ok(StoreLock {
            _file: file,
            created: (!existed).then_some(path),
        })
    }

    /// Lets go of a folder that turned out not to be a store chronicle may open,
    /// leaving it as it was found: without the lock file, when this lock created it.
    pub fn abandon(self) {
        if let Some(path) = &self.created {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether a file name is one of sled's unfinished snapshots (`snap.<lsn>.generating`).
pub fn is_unfinished_snapshot(name: &str) -> bool {
    name.starts_with("snap.") && name.ends_with(".generating")
}

/// Removes sled's unfinished snapshot files. sled recovers from its log alone when no
/// finished snapshot is newer, so nothing is lost by removing them (they were never
/// renamed into place, so sled never relied on them). Call only under [`StoreLock`].
pub(super) fn remove_unfinished_snapshots(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Storage(format!("listing {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::Storage(format!("listing {}: {e}", dir.display())))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(is_unfinished_snapshot)
        {
            std::fs::remove_file(entry.path()).map_err(|e| {
                Error::Storage(format!(
                    "removing sled's unfinished snapshot {}: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    Ok(())
}
