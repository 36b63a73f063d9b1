//! How small sled 0.34.7 keeps a database's data when it is written once, in key order:
//! copies every tree of a sled database (a store's `views` folder, or its log) into a
//! fresh one in key order, in batches of 2,000 keys and one flush at the end, and prints
//! the live keys and values, the source's files and the copy's.
//!
//! ```sh
//! target/release/chronicle --db d import in.jsonl
//! cargo run --release --example sled_floor -- d/views target/floor
//! ```
//!
//! The views are in `d/views`, or after a `replay` in the `views.<n>` folder that
//! `d/views.current` names. Run it on a store that no process holds: it opens the
//! database as sled does, without chronicle's lock. The copy is the least a sled database of those
//! keys takes on disk: a store's folder holds more, since its views are rewritten as the
//! log is folded (docs/performance.md "Each target", the whole store).

use anyhow::{Context, Result, bail};
use std::path::Path;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        bail!("usage: sled_floor FROM_DATABASE TO_NEW_FOLDER");
    };
    if !Path::new(from).join("db").is_file() {
        bail!("{from} holds no sled database (no `db` file)");
    }
    if Path::new(to).exists() {
        bail!("{to} exists; give a folder to create");
    }
    let source = sled::Config::new()
        .path(from)
        .cache_capacity(64 << 20)
        .open()
        .with_context(|| format!("opening {from}"))?;
    let copy = sled::Config::new()
        .path(to)
        .cache_capacity(64 << 20)
        .flush_every_ms(None)
        .open()?;
    let (mut keys, mut live) = (0u64, 0u64);
    for name in source.tree_names() {
        let (from_tree, to_tree) = (source.open_tree(&name)?, copy.open_tree(&name)?);
        let mut batch = sled::Batch::default();
        for (i, item) in from_tree.iter().enumerate() {
            let (k, v) = item?;
            keys += 1;
            live += (k.len() + v.len()) as u64;
            batch.insert(k, v);
            if i % 2000 == 1999 {
                to_tree.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        to_tree.apply_batch(batch)?;
    }
    copy.flush()?;
    drop((source, copy));
    let (before, after) = (folder_bytes(Path::new(from))?, folder_bytes(Path::new(to))?);
    println!("keys:                    {keys}");
    println!("live keys and values:    {live} bytes");
    println!(
        "the database:            {before} bytes ({:.2}x the live bytes)",
        before as f64 / live as f64
    );
    println!(
        "written once, key order: {after} bytes ({:.2}x the live bytes)",
        after as f64 / live as f64
    );
    Ok(())
}

/// The bytes of every file under `dir`.
fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += match meta.is_dir() {
            true => folder_bytes(&entry.path())?,
            false => meta.len(),
        };
    }
    Ok(total)
}
