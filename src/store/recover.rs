//! [`recover`]: getting a store that will not open back into service, keeping every
//! event that can be read. Nothing of the store is deleted: a file in the way is moved
//! aside into a `recovered-<stamp>/` folder inside the store, and put back when that
//! did not make the store open.
//!
//! What can stop an open, and what is done about it:
//! - an unfinished snapshot (`snap.*.generating`, sled issues #1527, #1533): every open
//!   removes those under the store's lock (`lock`), so the first attempt, a plain open,
//!   already gets past it;
//! - a damaged `conf` (a store created by a chronicle that wrote it in place, where a
//!   kill could tear it, or a damaged disk): it is moved aside and replaced by the one
//!   sled writes for chronicle's settings, which are the same for every store. A store
//!   with `db` but no `conf` gets one too: a plain open would take it for a creation
//!   cut short and start it afresh.
//!
//! The finished snapshot is never moved. Tried on a store whose log segments had been
//! reused: sled 0.34.7 then rebuilds its page table from the log, zeroes segments it
//! wrongly takes for free, and panics; with the snapshot put back, the store no longer
//! opened. A snapshot is written whole and synced before it is renamed into place.
//!
//! Files are moved only while this process holds the store's lock (`lock`), so a
//! process that has the store open is never disturbed: that gives [`Error::Locked`].

use super::SledStore;
use super::lock::StoreLock;
use super::sled_store::sled_config;
use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What [`recover`] did to a store that now opens.
pub struct Recovered {
    /// The store, open (for inspection: see [`SledStore::open_to_inspect`]).
    pub store: SledStore,
    /// Why the store did not open as it was; `None` when it did and nothing was done.
    pub failed_with: Option<String>,
    /// The folder the moved files are in, when files were moved.
    pub aside: Option<PathBuf>,
    /// The files moved aside (their names in the store), in the order they were moved.
    pub moved: Vec<String>,
}

/// Opens the store in `path`, replacing a damaged `conf` (see the module's doc).
/// `stamp` names the folder moved files go to (`recovered-<stamp>`).
///
/// Fails with [`Error::Locked`] when another process holds the store, and with
/// [`Error::Integrity`] when sled cannot open it even so; every file is then back
/// where it was.
pub fn recover(path: &Path, stamp: &str) -> Result<Recovered> {
    let conf = path.join("conf");
    let failed_with = if conf.is_file() {
        match SledStore::open_to_inspect(path) {
            Ok(store) => {
                return Ok(Recovered {
                    store,
                    failed_with: None,
                    aside: None,
                    moved: Vec::new(),
                });
            }
            Err(e @ (Error::Integrity(_) | Error::Storage(_))) => without_hint(&e),
            Err(other) => return Err(other),
        }
    } else {
        format!("{} is missing", conf.display())
    };
    let aside = aside_folder(path, stamp);
    let lock = StoreLock::acquire(path)?;
    let fresh = fresh_conf(&aside)?;
    let moved = if conf.is_file() {
        let current = std::fs::read(&conf).map_err(|e| io("reading", &conf, e))?;
        if current == fresh {
            // The settings are sound: nothing here can help.
            drop(lock);
            let _ = std::fs::remove_dir(&aside);
            return Err(unrecoverable(path, &failed_with));
        }
        std::fs::rename(&conf, aside.join("conf")).map_err(|e| io("moving", &conf, e))?;
        vec!["conf".to_owned()]
    } else {
        Vec::new()
    };
    write_synced(&conf, &fresh)?;
    sync_dir(path)?;
    if moved.is_empty() {
        // Only a missing `conf` was written: nothing goes aside.
        let _ = std::fs::remove_dir(&aside);
    }
    // The open takes the lock itself.
    drop(lock);
    match SledStore::open_to_inspect(path) {
        Ok(store) => Ok(Recovered {
            store,
            failed_with: Some(failed_with),
            aside: (!moved.is_empty()).then_some(aside),
            moved,
        }),
        Err(e @ (Error::Integrity(_) | Error::Storage(_))) => {
            // Leave the store as it was found.
            let _lock = StoreLock::acquire(path)?;
            if moved.is_empty() {
                std::fs::remove_file(&conf).map_err(|e| io("removing", &conf, e))?;
            } else {
                let from = aside.join("conf");
                std::fs::rename(&from, &conf).map_err(|e| io("moving back", &from, e))?;
            }
            sync_dir(path)?;
            let _ = std::fs::remove_dir(&aside);
            Err(unrecoverable(
                path,
                &format!("{failed_with}; then {}", without_hint(&e)),
            ))
        }
        Err(other) => Err(other),
    }
}

fn unrecoverable(path: &Path, why: &str) -> Error {
    Error::Integrity(format!(
        "sled cannot open the store at {} ({why}), and replacing its settings file does not help; \
         every file is where it was; restore from an export into a new store \
         (`chronicle --db NEW import backup.jsonl`)",
        path.display(),
    ))
}

/// The `conf` sled writes for chronicle's settings: made in a scratch store inside
/// `aside` (created here), which is removed again.
fn fresh_conf(aside: &Path) -> Result<Vec<u8>> {
    let scratch = aside.join(".scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| io("creating", &scratch, e))?;
    let db = sled_config(&scratch)
        .open()
        .map_err(|e| Error::Storage(format!("making settings in {}: {e}", scratch.display())))?;
    drop(db);
    let conf = scratch.join("conf");
    let bytes = std::fs::read(&conf).map_err(|e| io("reading", &conf, e))?;
    std::fs::remove_dir_all(&scratch).map_err(|e| io("removing", &scratch, e))?;
    Ok(bytes)
}

/// An error's text without its advice to run `chronicle recover`, which this is.
fn without_hint(error: &Error) -> String {
    let text = error.to_string();
    match text.split_once("; run `chronicle") {
        Some((before, _)) => before.to_owned(),
        None => text,
    }
}

/// `recovered-<stamp>` in the store, or `recovered-<stamp>-2`, … when that exists.
fn aside_folder(path: &Path, stamp: &str) -> PathBuf {
    let mut folder = path.join(format!("recovered-{stamp}"));
    let mut n = 2;
    while folder.exists() {
        folder = path.join(format!("recovered-{stamp}-{n}"));
        n += 1;
    }
    folder
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| io("creating", path, e))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| io("writing", path, e))?;
    file.sync_all().map_err(|e| io("syncing", path, e))
}

/// Makes the moves durable.
fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", path, e))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}
