//! `chronicle recover` on stores a crash or a bad disk damaged: it makes them open again
//! with every event, moves files aside instead of deleting them, says clearly what it
//! cannot fix, and never touches a store another process holds.

mod common;

use common::{Chronicle, path_str, trip_started};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A store with `n` events, closed, and the events' ids in order.
fn seeded(n: usize) -> (Chronicle, Vec<String>) {
    let c = Chronicle::new();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({"stream": format!("trip:t{}", i % 3), "type": "note.reported",
                "occurred": "2025-01-06", "data": {"summary": format!("note {i} {}", "x".repeat(3000)), "entities": []}})
        })
        .collect();
    c.append(&events).ok();
    // Waits for the views to take in every event, so that a later open has nothing
    // left to fold (and reads no event it is not asked for).
    c.run(&["stats"]).ok();
    let ids = ids(&c.log());
    (c, ids)
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The `recovered-*` folders in the store.
fn aside_folders(db: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(db)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("recovered-"))
        .map(|e| e.path())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_sound_store_needs_nothing_and_nothing_is_moved() {
    let (c, ids_before) = seeded(5);
    let out = c.run(&["recover"]).ok();
    assert!(out.contains("the store opens: 5 events"), "{out}");
    assert!(out.contains("verify: ok"), "{out}");
    assert!(aside_folders(&c.db()).is_empty());
    assert_eq!(ids(&c.log()), ids_before);
}

#[test]
fn a_torn_settings_file_is_moved_aside_and_every_event_stays() {
    let (c, ids_before) = seeded(20);
    // What a kill while sled writes `conf` leaves: the settings without their checksum.
    let conf = std::fs::read(c.db().join("conf")).unwrap();
    std::fs::write(c.db().join("conf"), &conf[..conf.len() - 4]).unwrap();
    let refused = c.run(&["log"]).fails(4, "recover");
    assert!(
        refused
            .stderr
            .contains(&format!("chronicle recover --db {}", path_str(&c.db()))),
        "the error says what to run: {}",
        refused.stderr
    );
    let out = c.run(&["recover"]).ok();
    assert!(out.contains("moved aside into"), "{out}");
    assert!(out.contains("the store opens: 20 events"), "{out}");
    let folders = aside_folders(&c.db());
    assert_eq!(folders.len(), 1);
    assert_eq!(names(&folders[0]), ["conf"], "kept, not deleted");
    assert_eq!(ids(&c.log()), ids_before);
    c.run(&["verify"]).ok();
    c.append(&[trip_started("trip:after")]).ok();
}

#[test]
fn a_store_that_lost_its_settings_file_is_refused_not_started_afresh() {
    let (c, ids_before) = seeded(20);
    let size = std::fs::metadata(c.db().join("db")).unwrap().len();
    std::fs::remove_file(c.db().join("conf")).unwrap();
    // A write must not take it for a creation cut short and begin a new store.
    c.append(&[trip_started("trip:after")])
        .fails(4, "no settings file (conf); run `chronicle recover");
    // Nor does any other command take it for no store at all; `import` does not check
    // its input against an empty log (the line expects the stream's seven events).
    for args in [&["stats"][..], &["verify"], &["log"], &["trip", "list"]] {
        c.run(args)
            .fails(4, "no settings file (conf); run `chronicle recover");
    }
    let line = r#"{"stream": "trip:t0", "type": "note.reported", "occurred": "2025-01-07", "expect": 7, "data": {"summary": "later", "entities": []}}"#;
    let input = c.file("later.jsonl", line);
    c.run(&["import", path_str(&input)])
        .fails(4, "no settings file (conf); run `chronicle recover");
    assert_eq!(std::fs::metadata(c.db().join("db")).unwrap().len(), size);
    let out = c.run(&["recover"]).ok();
    assert!(out.contains("the store opens: 20 events"), "{out}");
    assert_eq!(
        aside_folders(&c.db()),
        Vec::<PathBuf>::new(),
        "nothing went aside"
    );
    assert_eq!(ids(&c.log()), ids_before);
    c.run(&["verify"]).ok();
}

#[test]
fn an_unfinished_snapshot_is_set_aside_and_every_event_stays() {
    let (c, ids_before) = seeded(20);
    let stray = c.db().join("snap.00000000FFFFFFFF.generating");
    std::fs::write(&stray, b"").unwrap();
    let out = c.run(&["--json", "recover", "--out"]).code;
    assert_eq!(out, 2, "--out needs a file");
    let file = c.dir.path().join("rescued.jsonl");
    let report: Value =
        serde_json::from_str(&c.run(&["--json", "recover", "--out", path_str(&file)]).ok())
            .unwrap();
    assert_eq!(report["events"], 20);
    assert_eq!(report["exported"], 20);
    // Once the store's open removes such leftovers itself (issue 9), there is nothing
    // left for recover to move; either way the stray file is out of sled's way.
    assert!(!stray.exists());
    assert_eq!(ids(&c.log()), ids_before);
    // The file restores the same log into a new store.
    let fresh = Chronicle::new();
    fresh.run(&["import", path_str(&file)]).ok();
    assert_eq!(ids(&fresh.log()), ids_before);
    fresh.run(&["verify"]).ok();
}

/// Overwrites every copy of `needle` in the store's data file; returns how many.
fn scribble_over(db: &Path, needle: &str) -> usize {
    let path = db.join("db");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut n = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..]
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
    {
        let start = at + i;
        bytes[start..start + needle.len()].fill(b'#');
        at = start + needle.len();
        n += 1;
    }
    std::fs::write(&path, bytes).unwrap();
    n
}

/// Copies a closed store's files (the log's and the views' databases) into another
/// `Chronicle`'s store.
fn copy_store(from: &Path, to: &Chronicle) {
    copy_dir(from, &to.db());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in names(from) {
        let path = from.join(&name);
        if path.is_file() {
            std::fs::copy(&path, to.join(&name)).unwrap();
        } else if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        }
    }
}

#[test]
fn a_damaged_page_keeps_every_event_before_it_in_the_out_file() {
    let (seed, ids_before) = seeded(300);
    // Events of 3 KB fill several of sled's 512 KiB segments; damage to the stored
    // bytes of one event (its summary) makes sled's checksum of its page fail. Some
    // pages sled reads while opening (then recover cannot help, as the next test
    // shows): take the first event from the 100th on whose damage leaves the store
    // opening.
    assert!(std::fs::metadata(seed.db().join("db")).unwrap().len() > 1 << 20);
    let (c, victim) = (100..300)
        .step_by(20)
        .find_map(|victim| {
            let c = Chronicle::new();
            copy_store(&seed.db(), &c);
            assert!(scribble_over(&c.db(), &format!("note {victim} x")) > 0);
            (c.run(&["stats"]).code == 0).then_some((c, victim))
        })
        .expect("some damage leaves the store opening");
    let file = c.dir.path().join("rescued.jsonl");
    let run = c.run(&["recover", "--out", path_str(&file)]);
    let run = run.fails(4, "cannot read");
    assert!(
        run.stdout.contains("the store opens: 300 events"),
        "{}",
        run.stdout
    );
    let rescued: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rescued.len() <= victim, "{} rescued", rescued.len());
    assert_eq!(ids(&rescued), ids_before[..rescued.len()]);
    assert!(
        run.stderr
            .contains(&format!("position {}", rescued.len() + 1)),
        "{}",
        run.stderr
    );
    // What was rescued restores into a new store, chain and all.
    let fresh = Chronicle::new();
    fresh.run(&["import", path_str(&file)]).ok();
    assert_eq!(ids(&fresh.log()), ids_before[..rescued.len()]);
    fresh.run(&["verify"]).ok();
}

#[test]
fn a_store_sled_cannot_open_is_left_as_it_was_and_the_message_says_so() {
    let (c, _) = seeded(20);
    let len = std::fs::metadata(c.db().join("db")).unwrap().len();
    // Not sled's data at all.
    std::fs::write(
        c.db().join("db"),
        vec![0x5Au8; usize::try_from(len).unwrap()],
    )
    .unwrap();
    let before = names(&c.db());
    let conf = std::fs::read(c.db().join("conf")).unwrap();
    c.run(&["recover"])
        .fails(4, "every file is where it was; restore from an export");
    assert_eq!(names(&c.db()), before);
    assert_eq!(std::fs::read(c.db().join("conf")).unwrap(), conf);
}

#[test]
fn a_store_in_use_is_not_touched() {
    let (c, _) = seeded(3);
    let mut server = c
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://"), "{line}");
    let run = c.run(&["recover"]);
    server.kill().unwrap();
    server.wait().unwrap();
    run.fails(5, "in use by another process");
    assert!(aside_folders(&c.db()).is_empty());
}

#[test]
fn no_store_is_bad_usage() {
    let c = Chronicle::new();
    c.run(&["recover"]).fails(2, "no store at");
}
