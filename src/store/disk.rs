//! Making writes durable. sled's `flush` writes its log with `sync_file_range` on Linux,
//! which waits for the pages to reach the drive but neither flushes the drive's write
//! cache nor records the file's new size; a power cut could still lose an acknowledged
//! append. So every flush is followed by an `fdatasync` of sled's file, and of every
//! blob file sled wrote since the last flush (sled stores pages over a quarter of a
//! segment as files in `blobs/` and never syncs them).
//!
//! Listing `blobs/` after every flush took some 10 µs of a 300 µs single append, while
//! sled rarely makes a blob, so the folder is listed only when an inotify watch on it
//! saw a file created there since the last flush (and at the first flush, and every
//! time where the watch cannot be had or was lost).

use crate::{Error, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// sled's data file, held open to sync it, and the blob files already synced.
pub(super) struct Disk {
    file: File,
    blobs: std::path::PathBuf,
    synced_blobs: std::sync::Mutex<std::collections::HashSet<std::ffi::OsString>>,
    /// Files created in `blobs/` since the last look; `None` where inotify is not
    /// available (then the folder is listed at every flush).
    watch: Option<BlobWatch>,
    /// Whether `blobs/` was listed since the store opened (blobs older than the watch).
    listed: AtomicBool,
}

impl Disk {
    /// Opens the data file of the store in `dir` (sled keeps everything in `dir/db`).
    pub fn open(dir: &Path) -> Result<Disk> {
        let file = File::open(dir.join("db")).map_err(|e| {
            Error::Storage(format!(
                "opening {} to sync it: {e}",
                dir.join("db").display()
            ))
        })?;
        let blobs = dir.join("blobs");
        Ok(Disk {
            file,
            watch: BlobWatch::new(&blobs),
            blobs,
            synced_blobs: Default::default(),
            listed: AtomicBool::new(false),
        })
    }

    /// Returns once everything written to `db` is on disk.
    pub fn flush(&self, db: &sled::Db) -> Result<()> {
        db.flush().map_err(super::storage)?;
        self.file
            .sync_data()
            .map_err(|e| Error::Storage(format!("syncing the store to disk: {e}")))?;
        self.sync_new_blobs()
    }

    /// Whether `blobs/` may hold a file not synced yet.
    fn blobs_may_be_new(&self) -> bool {
        let first = !self.listed.swap(true, Ordering::Relaxed);
        match &self.watch {
            Some(watch) => watch.saw_changes() || first,
            None => true,
        }
    }

    fn sync_new_blobs(&self) -> Result<()> {
        if !self.blobs_may_be_new() {
            return Ok(());
        }
        let synced = self.sync_listed_blobs();
        if synced.is_err() {
            // The watch's news were spent on this listing: the next flush lists again.
            self.listed.store(false, Ordering::Relaxed);
        }
        synced
    }

    /// Lists `blobs/` and syncs the files in it not synced yet.
    fn sync_listed_blobs(&self) -> Result<()> {
        let fail = |e: std::io::Error| Error::Storage(format!("syncing sled's blob files: {e}"));
        let Ok(entries) = std::fs::read_dir(&self.blobs) else {
            return Ok(());
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        let mut present = std::collections::HashSet::new();
        for entry in entries {
            let entry = entry.map_err(fail)?;
            present.insert(entry.file_name());
            if synced.contains(&entry.file_name()) {
                continue;
            }
            // A blob that sled removed meanwhile needs no sync.
            if let Ok(file) = File::open(entry.path()) {
                file.sync_data().map_err(fail)?;
            }
            synced.insert(entry.file_name());
            any = true;
        }
        // Forget the blobs sled has removed since.
        synced.retain(|name| present.contains(name));
        if any {
            File::open(&self.blobs)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

/// An inotify watch on sled's `blobs/` folder, read without blocking.
struct BlobWatch {
    fd: OwnedFd,
    /// Set once the watch ended (the folder was removed or moved) or the kernel's
    /// queue overflowed: from then on every look says "changed".
    lost: AtomicBool,
}

impl BlobWatch {
    fn new(folder: &Path) -> Option<BlobWatch> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(folder.as_os_str().as_bytes()).ok()?;
        // SAFETY: plain system calls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
        // SAFETY: `path` is a valid C string for the duration of the call.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } < 0 {
            return None;
        }
        Some(BlobWatch {
            fd,
            lost: AtomicBool::new(false),
        })
    }

    /// Whether a file was created in the folder since the last call (or the watch can
    /// no longer tell). Empties the kernel's queue.
    fn saw_changes(&self) -> bool {
        const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
        const LOST: u32 = libc::IN_IGNORED
            | libc::IN_Q_OVERFLOW
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_UNMOUNT;
        let mut any = false;
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: reads at most `buffer.len()` bytes into `buffer`.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n <= 0 {
                let error = std::io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EAGAIN) if n < 0 => break,
                    Some(libc::EINTR) if n < 0 => continue,
                    _ => {
                        self.lost.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
            any = true;
            let read = &buffer[..n as usize];
            let mut at = 0;
            while at + HEADER <= read.len() {
                let field = |offset: usize| {
                    let b = &read[at + offset..at + offset + 4];
                    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                };
                // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
                if field(4) & LOST != 0 {
                    self.lost.store(true, Ordering::Relaxed);
                }
                at += HEADER + field(12) as usize;
            }
        }
        any || self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_folder_is_listed_first_and_then_only_after_a_file_appears_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        std::fs::write(dir.path().join("blobs/1"), b"older than the watch").unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        assert!(disk.watch.is_some(), "inotify is available on this machine");
        let synced = |disk: &Disk| {
            let mut names: Vec<_> = disk.synced_blobs.lock().unwrap().iter().cloned().collect();
            names.sort();
            names
        };
        // Blobs sled wrote before the watch: the first flush lists the folder.
        disk.sync_new_blobs().unwrap();
        assert_eq!(synced(&disk), ["1"]);
        assert!(
            !disk.blobs_may_be_new(),
            "nothing new: the folder is not listed"
        );
        std::fs::write(dir.path().join("blobs/2"), b"new").unwrap();
        disk.sync_new_blobs().unwrap();
        assert_eq!(synced(&disk), ["1", "2"]);
        assert!(!disk.blobs_may_be_new());
        // A blob moved in counts too.
        std::fs::write(dir.path().join("elsewhere"), b"moved").unwrap();
        std::fs::rename(dir.path().join("elsewhere"), dir.path().join("blobs/3")).unwrap();
        assert!(disk.blobs_may_be_new());
        // The folder gone and made again: the watch is lost, so every flush lists it.
        std::fs::remove_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        assert!(disk.blobs_may_be_new());
        assert!(disk.blobs_may_be_new());
        assert!(disk.blobs_may_be_new());
    }

    #[test]
    fn every_flush_lists_the_folder_without_a_watch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"").unwrap();
        // No `blobs/` folder: no watch.
        let disk = Disk::open(dir.path()).unwrap();
        assert!(disk.watch.is_none());
        assert!(disk.blobs_may_be_new());
        assert!(disk.blobs_may_be_new());
    }
}
