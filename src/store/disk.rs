//! Making writes durable. sled's `flush` writes its log with `sync_file_range` on Linux,
//! which waits for the pages to reach the drive but neither flushes the drive's write
//! cache nor records the file's new size; a power cut could still lose an acknowledged
//! append. So every flush is followed by an `fdatasync` of sled's file, and of every
//! blob file sled wrote since the last flush (sled stores pages over a quarter of a
//! segment as files in `blobs/` and never syncs them).

use crate::{Error, Result};
use std::fs::File;
use std::path::Path;

/// sled's data file, held open to sync it, and the blob files already synced.
pub(super) struct Disk {
    file: File,
    blobs: std::path::PathBuf,
    synced_blobs: std::sync::Mutex<std::collections::HashSet<std::ffi::OsString>>,
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
        Ok(Disk {
            file,
            blobs: dir.join("blobs"),
            synced_blobs: Default::default(),
        })
    }

    /// Returns once everything written to `db` is on disk.
    pub fn flush(&self, db: &sled::Db) -> Result<()> {
        db.flush().map_err(|e| Error::Storage(e.to_string()))?;
        self.file
            .sync_data()
            .map_err(|e| Error::Storage(format!("syncing the store to disk: {e}")))?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&self) -> Result<()> {
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
