//! Making writes durable. sled's `flush` writes its log with `sync_file_range` on Linux,
//! which waits for the pages to reach the drive but neither flushes the drive's write
//! cache nor records the file's new size; a power cut could still lose an acknowledged
//! append. So every flush is followed by an `fdatasync` of sled's file.

use crate::{Error, Result};
use std::fs::File;
use std::path::Path;

/// sled's data file, held open to sync it.
pub(super) struct Disk {
    file: File,
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
        Ok(Disk { file })
    }

    /// Returns once everything written to `db` is on disk.
    pub fn flush(&self, db: &sled::Db) -> Result<()> {
        db.flush().map_err(|e| Error::Storage(e.to_string()))?;
        self.file
            .sync_data()
            .map_err(|e| Error::Storage(format!("syncing the store to disk: {e}")))
    }
}
