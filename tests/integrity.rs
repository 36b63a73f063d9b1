//! Integrity: `verify` finds rewritten history and broken indexes, open refuses a log
//! whose end does not chain, corrupt and foreign stores give clear errors, export and
//! import reproduce a store exactly, and racing writers each win a version once.

mod common;

use common::{Chronicle, path_str, run_at, trip_started};
use serde_json::{Value, json};

/// Opens the store's sled database directly, as an attacker or a bad disk would.
fn raw(c: &Chronicle) -> sled::Db {
    sled::open(c.db()).expect("the store is a sled database")
}

fn event_key(position: u64) -> Vec<u8> {
    let mut k = vec![b'E'];
    k.extend_from_slice(&position.to_be_bytes());
    k
}

/// The event stored at `position`, as its JSON (the log stores it compactly).
fn stored_json(db: &sled::Db, position: u64) -> Vec<u8> {
    let bytes = db
        .get(event_key(position))
        .unwrap()
        .expect("the event exists");
    chronicle::store::event_value::to_json(&bytes, chronicle::model::Position(position))
        .expect("a stored event")
        .into_owned()
}

fn rewrite_event(c: &Chronicle, position: u64, edit: impl FnOnce(&mut Value)) {
    let db = raw(c);
    let mut event: Value = serde_json::from_slice(&stored_json(&db, position)).unwrap();
    edit(&mut event);
    db.insert(event_key(position), serde_json::to_vec(&event).unwrap())
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn verify_passes_on_a_sound_store_and_publishes_its_head() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let out = c.run(&["verify"]).ok();
    assert!(out.contains("ok: 43 events verified"), "{out}");
    assert!(
        out.contains("view documents equal to a fresh replay"),
        "{out}"
    );
    let head = c.run(&["verify", "--head"]).ok().trim().to_owned();
    assert!(head.starts_with("43:") && head.len() == 3 + 64, "{head}");
    let report: Value = serde_json::from_str(&c.run(&["--json", "verify"]).ok()).unwrap();
    assert_eq!(
        format!("{}:{}", report["head"], report["hash"].as_str().unwrap()),
        head
    );
    c.append(&[trip_started("trip:later")]).ok();
    c.run(&["verify", "--expect-head", &head]).ok();
    c.run(&["verify", "--expect-head", "43:zz"])
        .fails(2, "expected POSITION:HASH");
    let wrong = format!("43:{}", "0".repeat(64));
    c.run(&["verify", "--expect-head", &wrong])
        .fails(4, "was rewritten");
    // A script reading the JSON sees the same problem, and no hash of a proved head.
    let run = c.run(&["--json", "verify", "--expect-head", &wrong]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["problem"][0], 43, "{report}");
    assert!(
        report["problem"][1]
            .as_str()
            .unwrap()
            .contains("was rewritten"),
        "{report}"
    );
    assert!(report.get("hash").is_none(), "{report}");
    run.fails(4, "was rewritten");
    // The head `--head` prints for an empty log (position 0, the genesis hash) is where
    // every log starts.
    c.run(&["verify", "--expect-head", &format!("0:{}", "0".repeat(64))])
        .ok();
    c.run(&["verify", "--expect-head", &format!("0:{}", "1".repeat(64))])
        .fails(4, "position 0 has hash");
}

/// `verify --help`'s examples, run by a shell as a user pastes them, in the store's folder:
/// the saved head is then proved after a later append.
#[test]
fn the_examples_of_verify_help_run_in_a_shell() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let help = c.run(&["verify", "--help"]).ok();
    let commands: Vec<&str> = help
        .split("Examples:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no examples: {help}"))
        .lines()
        .map(|l| l.trim().split("  ").next().unwrap_or_default())
        .filter(|l| l.starts_with("chronicle verify"))
        .collect();
    assert_eq!(commands.len(), 3, "{help}");
    let bin_dir = std::path::Path::new(common::bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |command: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(c.dir.path())
            .env("PATH", &path)
            .env("CHRONICLE_DB", c.db())
            .env_remove("CHRONICLE_SERVER")
            .env_remove("CHRONICLE_VIEWS")
            .output()
            .expect("sh runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
    };
    shell(commands[0]);
    shell(commands[1]);
    c.append(&[trip_started("trip:later")]).ok();
    shell(commands[2]);
    let saved = std::fs::read_to_string(c.dir.path().join("head.txt")).unwrap();
    assert!(saved.starts_with("43:"), "{saved}");
}

#[test]
fn a_rewritten_event_in_the_middle_is_found_at_its_position() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let head = c.run(&["verify", "--head"]).ok().trim().to_owned();
    // Change the sale's value but keep the stored hash: a quiet rewrite of history.
    rewrite_event(&c, 26, |e| e["data"]["value"]["amount"] = json!(1.0));
    let run = c
        .run(&["verify"])
        .fails(4, "position 26: the hash does not match");
    assert!(
        run.stderr.contains("chronicle log --from 26"),
        "{}",
        run.stderr
    );
    // Re-hashing the changed event does not help: the next event's link breaks, and the
    // published head no longer matches.
    c.run(&["verify", "--expect-head", &head])
        .fails(4, "position 26");
}

#[test]
fn open_refuses_a_log_whose_last_event_does_not_chain() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    rewrite_event(&c, 43, |e| e["data"]["summary"] = json!("rewritten"));
    c.run(&["stats"]).fails(
        4,
        "the hash chain is broken at position 43; run `chronicle verify`",
    );
    c.append(&[trip_started("trip:x")])
        .fails(4, "hash chain is broken");
}

#[test]
fn broken_indexes_and_views_are_found() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    {
        let db = raw(&c);
        let mut key = vec![b'S'];
        key.extend_from_slice(b"trip:blinken-final-tour-2025\0");
        key.extend_from_slice(&1u64.to_be_bytes());
        assert!(db.remove(key).unwrap().is_some());
        db.flush().unwrap();
    }
    c.run(&["verify"])
        .fails(4, "position 19: the stream index has no entry");

    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    {
        let db = sled::open(c.db().join("views")).unwrap();
        let views = db.open_tree(db.get(b"Mviews").unwrap().unwrap()).unwrap();
        // A stored document is the epoch it exists since (8 bytes), then its JSON.
        let (k, v) = views.scan_prefix(b"Dtrips/").next().unwrap().unwrap();
        let mut changed = v[..8].to_vec();
        changed.extend_from_slice(b"{}");
        views.insert(k, changed).unwrap();
        db.flush().unwrap();
    }
    c.run(&["verify"])
        .fails(4, "differs from a fresh replay; run `chronicle replay`");
    c.run(&["replay"]).ok();
    c.run(&["verify"]).ok();
}

#[test]
fn export_then_import_reproduces_positions_versions_and_hashes() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    c.append(&[
        trip_started("trip:blinken-final-tour-2025"),
        trip_started("trip:other"),
    ])
    .ok();
    let backup = c.dir.path().join("backup.jsonl");
    let run = c.run(&["export", "--out", path_str(&backup)]);
    // It names its last event's position and hash, which prove a restore whole: a copy
    // cut between two lines imports, and `verify --expect-head` tells it is short.
    let head = c.run(&["verify", "--head"]).ok().trim().to_owned();
    assert!(
        run.stderr.contains(&format!(
            "exported 45 events to {}, the last {head}; after restoring it, `chronicle verify --expect-head {head}` proves the restore whole",
            path_str(&backup)
        )),
        "{}",
        run.stderr
    );
    run.ok();
    let exported = std::fs::read_to_string(&backup).unwrap();
    assert_eq!(exported, c.run(&["export"]).ok());
    // For scripts, the same in JSON.
    let summary = c
        .run(&["--json", "export", "--out", path_str(&backup)])
        .ok();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"events": 45, "file": path_str(&backup), "last": head})
    );
    let cut = c.dir.path().join("cut.jsonl");
    let first_44: String = exported
        .lines()
        .take(44)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&cut, first_44).unwrap();
    let short = c.dir.path().join("short.db");
    run_at(&short, &["import", path_str(&cut)]).ok();
    run_at(&short, &["verify", "--expect-head", &head]).fails(
        4,
        "the log has no position 45 (it ends at 44): it was truncated, unless that head is another store's",
    );
    // A head with a mistyped position: the log has its hash elsewhere.
    let (_, hash) = head.split_once(':').unwrap();
    let mistyped = format!("20:{hash}");
    c.run(&["verify", "--expect-head", &mistyped]).fails(
        4,
        &format!("the log has {hash} at position 45, not 20: check the position given"),
    );
    let past = format!("60:{hash}");
    c.run(&["verify", "--expect-head", &past]).fails(
        4,
        &format!("the log has {hash} at position 45, not 60: check the position given"),
    );
    let other = format!("20:{}", "1".repeat(64));
    c.run(&["verify", "--expect-head", &other]).fails(
        4,
        "but 1111111111111111111111111111111111111111111111111111111111111111 was published: the log up to it was rewritten, unless that head is another store's",
    );
    // A folder, or a file in a folder that does not exist, is a mistake in the call: exit
    // 2, naming it, and nothing written beside it.
    let folder = c.dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    c.run(&["export", "--out", path_str(&folder)])
        .fails(2, "is a folder; give a file in it");
    let nowhere = c.dir.path().join("missing").join("backup.jsonl");
    c.run(&["export", "--out", path_str(&nowhere)])
        .fails(2, "check that its folder exists");
    // The store's own folder, a file of it or a link into it would replace the store's
    // files: refused, the store untouched, and the suggestion is outside it.
    let into_store = c.dir.path().join("into-store.jsonl");
    std::os::unix::fs::symlink(c.db().join("new.jsonl"), &into_store).unwrap();
    for out in [
        c.db(),
        c.db().join("db"),
        c.db().join("conf"),
        into_store.clone(),
    ] {
        let refused = c
            .run(&["export", "--out", path_str(&out)])
            .fails(2, "is in the store's own folder");
        assert!(
            refused.stderr.contains("store-backup.jsonl"),
            "{}",
            refused.stderr
        );
        c.run(&["recover", "--out", path_str(&out)])
            .fails(2, "is in the store's own folder");
    }
    std::fs::remove_file(&into_store).unwrap();
    assert!(!c.db().join("new.jsonl").exists());
    c.run(&["verify"]).ok();
    let names: Vec<_> = std::fs::read_dir(c.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".partial")),
        "{names:?}"
    );
    assert_eq!(exported.lines().count(), 45);
    // Through a link, the file it names is replaced and the link kept: a `latest.jsonl`
    // link to a dated backup, or to one not made yet.
    let dated = folder.join("2026-12-06.jsonl");
    std::fs::write(&dated, "an older backup\n").unwrap();
    let latest = c.dir.path().join("latest.jsonl");
    std::os::unix::fs::symlink("backups/2026-12-06.jsonl", &latest).unwrap();
    c.run(&["export", "--out", path_str(&latest)]).ok();
    assert!(std::fs::symlink_metadata(&latest).unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(&dated).unwrap(), exported);
    let ahead = c.dir.path().join("ahead.jsonl");
    std::os::unix::fs::symlink("backups/not-yet.jsonl", &ahead).unwrap();
    c.run(&["export", "--out", path_str(&ahead)]).ok();
    assert!(std::fs::symlink_metadata(&ahead).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_to_string(folder.join("not-yet.jsonl")).unwrap(),
        exported
    );
    // What is not a file (a pipe) is written to, not replaced.
    let pipe = c.dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read_to_string(pipe).unwrap())
    };
    c.run(&["export", "--out", path_str(&pipe)]).ok();
    assert_eq!(reader.join().unwrap(), exported);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
    // `/dev/stdout` is whatever stdout is: a file opened to append to keeps what it had.
    let log = c.dir.path().join("log.txt");
    std::fs::write(&log, "a header\n").unwrap();
    let appending = std::fs::File::options().append(true).open(&log).unwrap();
    let status = c
        .command(&["export", "--out", "/dev/stdout"])
        .stdout(appending)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("a header\n{exported}")
    );
    // A file replaced keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dated, std::fs::Permissions::from_mode(0o600)).unwrap();
    c.run(&["export", "--out", path_str(&latest)]).ok();
    assert_eq!(
        std::fs::metadata(&dated).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Links in a loop are refused, and left as they are.
    let (one, two) = (c.dir.path().join("one"), c.dir.path().join("two"));
    std::os::unix::fs::symlink(&two, &one).unwrap();
    std::os::unix::fs::symlink(&one, &two).unwrap();
    c.run(&["export", "--out", path_str(&one)])
        .fails(2, "its symbolic links go round in a loop");
    assert!(std::fs::symlink_metadata(&one).unwrap().is_symlink());
    let restored = Chronicle::new();
    restored.run(&["import", path_str(&backup)]).ok();
    assert_eq!(restored.run(&["export"]).ok(), exported);
    assert_eq!(
        restored.run(&["verify", "--head"]).ok(),
        c.run(&["verify", "--head"]).ok()
    );
    restored.run(&["verify"]).ok();
    // Removing a line from the middle breaks the restore's chain check: nothing is written.
    let mut lines: Vec<&str> = exported.lines().collect();
    lines.remove(10);
    let gap = Chronicle::new();
    let file = gap.file("gap.jsonl", &(lines.join("\n") + "\n"));
    gap.run(&["import", path_str(&file)])
        .fails(2, "line 11: field `position`");
    // Bad input into no store creates none.
    gap.run(&["--json", "stats"]).fails(2, "no store at");
    // So does an altered line, named by its file and line.
    let mut lines: Vec<String> = exported.lines().map(str::to_owned).collect();
    let mut altered: Value = serde_json::from_str(&lines[10]).unwrap();
    altered["source"]["quote"] = json!("words it never had");
    lines[10] = altered.to_string();
    let tampered = Chronicle::new();
    let file = tampered.file("tampered.jsonl", &(lines.join("\n") + "\n"));
    tampered
        .run(&["import", path_str(&file)])
        .fails(2, "tampered.jsonl: line 11: field `hash`");
    tampered.run(&["--json", "stats"]).fails(2, "no store at");
}

#[test]
fn corrupt_and_foreign_stores_are_clear_errors() {
    // A path that is a file.
    let c = Chronicle::new();
    std::fs::write(c.db(), b"not a store").unwrap();
    c.run(&["stats"])
        .fails(2, "is a file; --db takes the store's folder");
    // A folder of other files is not turned into a store, not even by a reading command.
    let c = Chronicle::new();
    std::fs::create_dir(c.db()).unwrap();
    std::fs::write(c.db().join("notes.txt"), b"mine").unwrap();
    // Said as such to a reading command too, not "create one with `chronicle demo`",
    // which would refuse the folder in turn.
    c.run(&["stats"]).fails(
        2,
        "is a folder of other files, not a chronicle store; pass --db an existing store",
    );
    c.append(&[trip_started("trip:t")])
        .fails(2, "not a chronicle store; pass --db a new or empty folder");
    assert_eq!(
        std::fs::read_dir(c.db()).unwrap().count(),
        1,
        "nothing was written there"
    );
    // A sled database that is not a chronicle store.
    let c = Chronicle::new();
    {
        let db = sled::open(c.db()).unwrap();
        db.insert(b"hello", b"world").unwrap();
        db.flush().unwrap();
    }
    c.run(&["stats"]).fails(1, "not a chronicle store");
    // A store's views folder, given for the store; after a replay, `views.1`.
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    c.run(&["replay"]).ok();
    let views = c.db().join("views.1");
    assert!(views.is_dir());
    common::run_at(&views, &["stats"]).fails(
        2,
        &format!(
            "is the views folder of the store at {}; pass --db {}",
            c.db().display(),
            c.db().display()
        ),
    );
    // A store of a newer format.
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    {
        let db = raw(&c);
        db.insert(b"Mformat", &99u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    c.run(&["stats"])
        .fails(1, "format version 99, newer than this chronicle reads");
    // Files overwritten with garbage or truncated: an error with an exit code, never a panic.
    for damage in ["garbage", "truncate"] {
        let c = Chronicle::new();
        c.run(&["demo"]).ok();
        for entry in walk(&c.db()) {
            let len = std::fs::metadata(&entry).unwrap().len();
            if len == 0 {
                continue;
            }
            match damage {
                "garbage" => {
                    std::fs::write(&entry, vec![0xA5u8; usize::try_from(len).unwrap()]).unwrap()
                }
                _ => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&entry)
                    .unwrap()
                    .set_len(len / 3)
                    .unwrap(),
            }
        }
        let run = c.run(&["verify"]);
        assert_ne!(run.code, 0, "{damage}: a damaged store must not verify");
        assert!(!run.stderr.contains("panicked"), "{damage}: {}", run.stderr);
        // One line of error; the views, opened beside the log, may be said to be
        // rebuilt (they are removed when sled cannot open them).
        let (warnings, errors): (Vec<&str>, Vec<&str>) = run
            .stderr
            .trim_end()
            .lines()
            .partition(|l| l.starts_with("warning: removing the views in "));
        assert!(
            errors.len() == 1 && warnings.len() <= 1,
            "{damage}: {}",
            run.stderr
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn sixteen_writers_racing_on_one_stream_each_win_a_version_once() {
    use chronicle::model::{Expect, Origin, StreamId, Version, parse_event_value};
    use chronicle::store::{EventStore, ReadFilter, SledStore};
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rounds = 20;
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut won = Vec::new();
                let mut conflicts = 0;
                while won.len() < rounds {
                    let stream = StreamId::parse("trip:race").unwrap();
                    let current = store.stream_version(&stream).unwrap().map_or(0, |v| v.0);
                    let mut event = parse_event_value(
                        json!({"stream": "trip:race", "type": "trip.started", "occurred": "2025",
                               "data": {}, "meta": {"author": format!("w{w}")}}),
                        Origin::New,
                    )
                    .unwrap();
                    event.expect = Expect::Version(Version(current));
                    match store.append(vec![event]) {
                        Ok(appended) => won.push(appended[0].version.0),
                        Err(chronicle::Error::Conflict {
                            expected, actual, ..
                        }) => {
                            assert_eq!(expected, Expect::Version(Version(current)));
                            assert!(actual.0 > current, "the loser sees a newer version");
                            conflicts += 1;
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                (won, conflicts)
            })
        })
        .collect();
    let mut all_won = Vec::new();
    let mut conflicts = 0;
    for w in writers {
        let (won, c) = w.join().unwrap();
        all_won.extend(won);
        conflicts += c;
    }
    all_won.sort();
    let expected: Vec<u64> = (1..=16 * rounds as u64).collect();
    assert_eq!(all_won, expected, "every version won exactly once");
    assert!(conflicts > 0, "the writers really raced");
    let events: Vec<_> = store
        .read(&ReadFilter::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(events.len(), 16 * rounds);
}

/// Runs `test` with a 4 MiB tmpfs mounted at a new folder, unmounted afterwards; or
/// not at all unless CHRONICLE_DISK_FULL_TEST=1 (mounting needs root: `.ci/run` sets it
/// where mounting works).
fn with_a_small_disk(c: &Chronicle, test: impl FnOnce(&std::path::Path)) {
    if std::env::var("CHRONICLE_DISK_FULL_TEST").as_deref() != Ok("1") {
        return;
    }
    let mount = c.dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs", path_str(&mount)])
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "CHRONICLE_DISK_FULL_TEST=1 needs `mount -t tmpfs` to work"
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&mount)));
    let _ = std::process::Command::new("umount").arg(&mount).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Frees the space `filler` took and grows the tmpfs at `mount`, as an operator would:
/// more than the failed writes needed, as reopening writes sled's snapshot and the
/// views catch up on what was logged.
fn free_space(mount: &std::path::Path, filler: &std::path::Path) {
    std::fs::remove_file(filler).unwrap();
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m", path_str(mount)])
        .status()
        .unwrap();
    assert!(grown.success(), "remounting the tmpfs larger failed");
}

/// A full disk: the append that does not fit fails with a clear error, whole batches
/// before it stay, and once space is freed the store opens and verifies.
#[test]
fn a_full_disk_fails_the_append_and_leaves_nothing_half_written() {
    let c = Chronicle::new();
    with_a_small_disk(&c, |mount| {
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0u8; 1_000_000]).unwrap();
        let db = mount.join("store");
        let run = |args: &[&str]| {
            let mut cmd = std::process::Command::new(common::bin());
            cmd.arg("--db").arg(&db).args(args);
            cmd.output().unwrap()
        };
        assert!(run(&["demo"]).status.success());
        let lines: String = (0..3000)
            .map(|i| format!("{}\n", json!({"stream": format!("trip:t{i}"), "type": "trip.started", "occurred": "2025",
                "data": {}, "source": {"publisher": "x".repeat(300)}})))
            .collect();
        let file = c.file("many.jsonl", &lines);
        let full = run(&["import", "--batch", "100", path_str(&file)]);
        assert_eq!(full.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&full.stderr);
        assert!(
            stderr.contains("could not be made durable") && stderr.contains("free disk space"),
            "{stderr}"
        );
        assert!(!stderr.contains("Os {"), "no debug text: {stderr}");
        // A command on the still full disk, if it cannot open the store, says what to do.
        let stuck = run(&["stats"]);
        if !stuck.status.success() {
            let stderr = String::from_utf8_lossy(&stuck.stderr);
            assert!(
                stderr.contains("No space left on device (os error 28); free disk space and run the command again"),
                "{stderr}"
            );
        }
        free_space(mount, &filler);
        let verify = run(&["verify"]);
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let stats = run(&["--json", "stats"]);
        assert!(
            stats.status.success(),
            "stats after freeing space: {}",
            String::from_utf8_lossy(&stats.stderr)
        );
        let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
        let events = stats["events"].as_u64().unwrap();
        assert_eq!(
            (events - 43) % 100,
            0,
            "only whole batches of 100 are in the log: {events}"
        );
        // The error said how far the import got, when it got anywhere: a re-run adds
        // again what has no id.
        assert_eq!(
            stderr.contains(&format!(
                "the import stopped after writing {} of its 3000 events, in whole batches (the log ends at position {events})",
                events - 43
            )),
            events > 43,
            "{events} events: {stderr}"
        );
    });
}

/// A server whose disk fills: the append that meets the full disk is answered 503 with
/// its ids (it may or may not be in the log), every later one 503 until a restart,
/// `/healthz` and `/metrics` say so, the log is not read any more, SIGTERM still stops
/// the server cleanly, and after the restart the log holds every acknowledged append
/// and verifies.
#[test]
fn a_full_disk_halts_a_server_until_it_restarts() {
    let c = Chronicle::new();
    with_a_small_disk(&c, |mount| {
        let db = mount.join("store");
        let at = |args: &[&str]| common::run_at(&db, args);
        at(&["demo"]).ok();
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0u8; 2_400_000]).unwrap();
        let serve = common::Serve::spawn(
            common::command_at(&db, &["serve", "--addr", "127.0.0.1:0"]),
            &mount.join("store.server.json"),
        );
        let post = |stream: &str, body: &Value| {
            let body = body.to_string();
            serve.raw(&format!(
                "POST /streams/{stream}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ))
        };
        let get = |path: &str| {
            let (status, body) = serve.raw(&format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            ));
            (status, serde_json::from_str::<Value>(&body).unwrap())
        };
        let big = json!({"type": "trip.started", "occurred": "2025", "data": {},
            "source": {"publisher": "x".repeat(20_000)}});
        let mut acknowledged = 43;
        let failed = loop {
            let (status, body) = post(&format!("trip:x{acknowledged}"), &big);
            let body: Value = serde_json::from_str(&body).unwrap();
            match status {
                201 => acknowledged += 1,
                503 => break body,
                other => panic!("{other} {body}"),
            }
            assert!(acknowledged < 500, "the disk never filled");
        };
        assert!(acknowledged > 43, "some appends fit before the disk filled");
        let message = failed["error"].as_str().unwrap();
        assert!(
            message.contains("could not be made durable")
                && message.contains("was not written")
                && message.contains("restart"),
            "{failed}"
        );
        // Where the log ended is noted, for the next open to clear what lies past it.
        let note = std::fs::read_to_string(db.join("halted")).unwrap();
        assert!(
            note.starts_with(&format!(
                "chronicle halted commit durable {acknowledged:020} "
            )),
            "{note}"
        );
        assert_eq!(failed["ids"].as_array().unwrap().len(), 1, "{failed}");
        // Not healthy, and why; the head is the last durable one.
        let (status, health) = get("/healthz");
        assert_eq!(status, 503, "{health}");
        assert_eq!(health["status"], "halted");
        assert_eq!(health["head"], acknowledged, "{health}");
        assert!(health["error"].as_str().unwrap().contains("restart"));
        let (status, metrics) =
            serve.raw("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        assert_eq!(status, 200, "{metrics}");
        assert!(metrics.contains("chronicle_log_up 0"), "{metrics}");
        assert!(
            metrics.contains(&format!("chronicle_log_head_position {acknowledged}")),
            "{metrics}"
        );
        // Freeing space is not enough: sled writes nothing after an IO error.
        free_space(mount, &filler);
        let (status, refused) = post("trip:after", &big);
        assert_eq!(status, 503, "{refused}");
        assert!(
            refused.contains("nothing of this append was written"),
            "{refused}"
        );
        // The log is not read any more (sled may rewrite a node holding part of the
        // failed batch on a read, and a later write of its could make that durable).
        let (status, events) = get("/events?limit=1000");
        assert_eq!(status, 503, "{events}");
        let message = events["error"].as_str().unwrap();
        assert!(
            message.contains("reads nothing more from its log") && message.contains("restart"),
            "{events}"
        );
        let (status, live) = get("/events/live");
        assert_eq!(status, 503, "{live}");
        // SIGTERM stops it, within a bound, though its store cannot be written.
        let pid = serve.pid();
        let stopper = std::thread::spawn(move || serve.terminate());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !stopper.is_finished() {
            if std::time::Instant::now() > deadline {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                panic!("the halted server did not stop on SIGTERM within 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(stopper.join().unwrap(), 0);
        // Restarted: every acknowledged append is there, the failed one is not (what
        // of it reached the disk is cleared as the store opens), and the log verifies.
        at(&["verify"]).ok();
        assert!(!db.join("halted").exists());
        let stats: Value = serde_json::from_str(&at(&["--json", "stats"]).ok()).unwrap();
        let events = stats["events"].as_u64().unwrap();
        assert_eq!(events, acknowledged);
        at(&[
            "append",
            "--file",
            path_str(&c.file("one.jsonl", &trip_started("trip:later").to_string())),
        ])
        .ok();
    });
}

/// What a commit that failed on a full disk may leave on disk (sled's batch is not
/// atomic after an IO error): parts of it past the last acknowledged append. With the
/// writer's note of where the log ended, the next open clears them, whatever part
/// reached the disk, and the log verifies and takes the same appends again. A note the
/// log has moved past clears nothing and refuses the open; so does a torn one.
#[test]
fn what_a_failed_commit_left_is_cleared_at_the_next_open() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let exported = c.run(&["export"]).ok();
    let hash_at = |c: &Chronicle, position: u64| -> String {
        let event: Value = serde_json::from_slice(&stored_json(&raw(c), position)).unwrap();
        event["hash"].as_str().unwrap().to_owned()
    };
    let head = raw(&c).get(b"Mhead").unwrap().unwrap();
    let one = trip_started("trip:after");
    let file = c.file("one.jsonl", &format!("{one}\n"));
    // The same append, made, then its keys put back by hand in every combination a
    // torn batch may leave: its event, its stream index entry, its id entry, the head.
    c.run(&["append", "--file", path_str(&file)]).ok();
    let note = format!(
        "chronicle halted commit durable {:020} {} failed-to {:020} {}\n",
        43,
        hash_at(&c, 43),
        44,
        hash_at(&c, 44)
    );
    let keys: Vec<(Vec<u8>, Vec<u8>)> = {
        let db = raw(&c);
        let mut keys: Vec<_> = db
            .iter()
            .map(Result::unwrap)
            .filter(|(k, _)| {
                k.as_ref() == event_key(44).as_slice()
                    || k.starts_with(b"Strip:after\0")
                    || k.as_ref() == b"Mhead"
            })
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let event: Value = serde_json::from_slice(&stored_json(&db, 44)).unwrap();
        let id = uuid::Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
        let mut id_key = vec![b'I'];
        id_key.extend_from_slice(id.as_bytes());
        keys.push((id_key.clone(), db.get(&id_key).unwrap().unwrap().to_vec()));
        keys
    };
    assert_eq!(
        keys.len(),
        4,
        "the event, its two index entries and the head"
    );
    for left in 1..(1u32 << keys.len()) {
        let c = Chronicle::new();
        c.run_stdin(&["import", "-"], &exported).ok();
        {
            let db = raw(&c);
            for (i, (k, v)) in keys.iter().enumerate() {
                if left & (1 << i) != 0 {
                    db.insert(k, v.as_slice()).unwrap();
                }
            }
            db.flush().unwrap();
        }
        std::fs::write(c.db().join("halted"), &note).unwrap();
        c.run(&["verify"]).ok();
        assert!(
            !c.db().join("halted").exists(),
            "the note is removed once cleared"
        );
        assert_eq!(c.run(&["export"]).ok(), exported, "keys left {left:#b}");
        assert_eq!(raw(&c).get(b"Mhead").unwrap().unwrap(), head);
        c.run(&["append", "--file", path_str(&file)]).ok();
        c.run(&["verify"]).ok();
        if left == 1 {
            // The note again (come back after a crash, say): position 44 now holds an
            // acknowledged event, so nothing is removed and the open refuses.
            let before = c.run(&["export"]).ok();
            std::fs::write(c.db().join("halted"), &note).unwrap();
            c.run(&["stats"]).fails(
                4,
                "the log has moved on since: position 44 holds another event",
            );
            std::fs::remove_file(c.db().join("halted")).unwrap();
            assert_eq!(c.run(&["export"]).ok(), before);
            // A torn note refuses the open too, and clears nothing.
            std::fs::write(c.db().join("halted"), &note[..40]).unwrap();
            c.run(&["stats"]).fails(4, "the note is not whole");
            std::fs::remove_file(c.db().join("halted")).unwrap();
            assert_eq!(c.run(&["export"]).ok(), before);
        }
    }
}

/// Format 1 kept the views and four more indexes in the log's tree, format 2 the views
/// in trees of the log's database; opening such a store removes them, keeps every
/// event, and builds the views in their own database.
#[test]
fn an_older_format_store_is_migrated_on_open() {
    for format in [1u64, 2] {
        let c = Chronicle::new();
        c.run(&["demo"]).ok();
        let exported = c.run(&["export"]).ok();
        let timeline = c.run(&["timeline", "--json"]).ok();
        std::fs::remove_dir_all(c.db().join("views")).unwrap();
        {
            let db = raw(&c);
            let old_views = db.open_tree(b"views.3").unwrap();
            old_views.insert(b"Dtrips/x", &b"stale"[..]).unwrap();
            db.insert(b"Mviews", &b"views.3"[..]).unwrap();
            if format == 1 {
                for (i, prefix) in [b'V', b'T', b'C', b'N', b'P', b'K'].into_iter().enumerate() {
                    let mut key = vec![prefix];
                    key.extend_from_slice(format!("format-1 entry {i}").as_bytes());
                    db.insert(key, &b"x"[..]).unwrap();
                }
            }
            db.insert(b"Mformat", &format.to_be_bytes()[..]).unwrap();
            db.flush().unwrap();
        }
        c.run(&["verify"]).ok();
        assert_eq!(c.run(&["export"]).ok(), exported);
        assert_eq!(c.run(&["timeline", "--json"]).ok(), timeline);
        let db = raw(&c);
        for prefix in [b'V', b'T', b'C', b'N', b'P', b'K'] {
            assert_eq!(db.scan_prefix([prefix]).count(), 0, "{}", prefix as char);
        }
        assert!(db.get(b"Mviews").unwrap().is_none());
        assert!(
            !db.tree_names().iter().any(|n| n.starts_with(b"views.")),
            "format {format}: the old views trees are dropped"
        );
        assert_eq!(
            db.get(b"Mformat").unwrap().unwrap().as_ref(),
            &chronicle::store::FORMAT_VERSION.to_be_bytes()[..]
        );
    }
}

/// Formats 1 to 3 kept each event's content digest in its id index entry (48 bytes);
/// format 4 writes 16. A store whose entries still hold digests reads the same: verify
/// checks them, a retry is recognised and other content under the same id refused.
#[test]
fn a_format_3_store_with_digests_in_its_id_index_is_read_and_upgraded() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let export = c.file("export.jsonl", &c.run(&["export"]).ok());
    let first_id = {
        let db = raw(&c);
        let mut first_id = None;
        for entry in db.scan_prefix(b"I") {
            let (key, value) = entry.unwrap();
            assert_eq!(value.len(), 16, "format 4 writes position and version");
            let position = u64::from_be_bytes(value[..8].try_into().unwrap());
            let event: chronicle::model::RecordedEvent =
                serde_json::from_slice(&stored_json(&db, position)).unwrap();
            let mut old = value.to_vec();
            old.extend_from_slice(&event.content_digest());
            db.insert(key, old).unwrap();
            if position == 1 {
                first_id = Some(event.id);
            }
        }
        db.insert(b"Mformat", &3u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
        first_id.unwrap()
    };
    let out = c.run(&["verify"]).ok();
    assert!(out.contains("ok: 43 events verified"), "{out}");
    assert_eq!(
        raw(&c).get(b"Mformat").unwrap().unwrap().as_ref(),
        &chronicle::store::FORMAT_VERSION.to_be_bytes()[..]
    );
    // The whole export again: every event a retry of its own.
    let again = c.run(&["--json", "import", path_str(&export)]).ok();
    let summary: Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(summary["new"], 0, "{again}");
    // The first event's id with other content.
    let first = c.log()[0].clone();
    let mut other = json!({"id": first_id.to_string(), "stream": first["stream"],
                           "type": first["type"], "data": first["data"]});
    other["tags"] = json!(["another-tag"]);
    c.run_stdin(&["append", "-"], &other.to_string())
        .fails(2, "different content");
    // A digest that does not match its event is found.
    {
        let db = raw(&c);
        let key = [&b"I"[..], first_id.as_bytes()].concat();
        let mut value = db.get(&key).unwrap().unwrap().to_vec();
        value[47] ^= 1;
        db.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    c.run(&["verify"]).fails(
        4,
        &format!("the id index entry of {first_id} is missing or wrong"),
    );
}

/// Formats 1 to 4 stored each event as its JSON; format 5 stores it compactly (about
/// 100 bytes less). A store of format 4 reads the same: verify passes, the export is
/// byte for byte the same, and the events appended after the upgrade are compact.
#[test]
fn a_format_4_store_with_events_as_json_is_read_and_upgraded() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let exported = c.run(&["export"]).ok();
    let first_bytes =
        |db: &sled::Db, position: u64| db.get(event_key(position)).unwrap().unwrap()[0];
    {
        let db = raw(&c);
        for position in 1..=43 {
            assert_eq!(first_bytes(&db, position), 1, "stored compactly");
            let json = stored_json(&db, position);
            assert_eq!(json[0], b'{');
            db.insert(event_key(position), json).unwrap();
        }
        db.insert(b"Mformat", &4u64.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    let out = c.run(&["verify"]).ok();
    assert!(out.contains("ok: 43 events verified"), "{out}");
    assert_eq!(c.run(&["export"]).ok(), exported);
    c.append(&[trip_started("trip:after-the-upgrade")]).ok();
    c.run(&["verify"]).ok();
    let db = raw(&c);
    assert_eq!(
        db.get(b"Mformat").unwrap().unwrap().as_ref(),
        &chronicle::store::FORMAT_VERSION.to_be_bytes()[..]
    );
    assert_eq!(first_bytes(&db, 43), b'{', "an old event is left as it was");
    assert_eq!(first_bytes(&db, 44), 1, "a new one is compact");
}

/// The views' database holds nothing the log does not: one that is missing, or that
/// sled cannot open, is built again from the log, and every view reads as before.
#[test]
fn lost_or_damaged_views_are_built_again_from_the_log() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let timeline = c.run(&["timeline", "--json"]).ok();
    let sales = c.run(&["sales", "--json"]).ok();
    let views = c.db().join("views");
    std::fs::remove_dir_all(&views).unwrap();
    assert_eq!(c.run(&["timeline", "--json"]).ok(), timeline);
    // sled's settings file torn, then its data cut to nothing.
    std::fs::write(views.join("conf"), b"segment_size: ").unwrap();
    let run = c.run(&["sales", "--json"]);
    // Said to the user, in words rather than sled's debug text.
    assert!(
        run.stderr.starts_with("warning: removing the views in ")
            && run.stderr.contains(
                "(sled read data whose checksum does not match); they are rebuilt from the log"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(run.ok(), sales);
    let data = views.join("db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(c.run(&["timeline", "--json"]).ok(), timeline);
    c.run(&["verify"]).ok();
}

/// Bytes damaged under sled (a page whose checksum no longer matches) are an integrity
/// failure, exit 4, with the positions affected; not a storage failure. Where sled put
/// the damaged page decides which message comes: in the part of its log that opening
/// reads back, the open itself fails (exit 4, the store named damaged); elsewhere the
/// reads of those positions do. Which part that is depends on when sled's snapshot on
/// close was taken (about one store in five here), so the test damages fresh stores
/// until one shows the second case, checking the first on the way.
#[test]
fn data_sled_cannot_read_is_exit_4_with_the_positions() {
    for _ in 0..8 {
        let (c, run) = damaged_store();
        if run.stderr.contains("error: opening store at") {
            let run = run.fails(4, "are damaged or were not written by chronicle");
            assert!(run.stderr.contains("chronicle recover"), "{}", run.stderr);
            continue;
        }
        let run = run.fails(4, "sled cannot read the stored data of positions");
        assert!(run.stderr.contains("chronicle recover"), "{}", run.stderr);
        c.run(&["log", "--from", "140"])
            .fails(4, "sled cannot read part of the stored data");
        return;
    }
    panic!("in eight stores the damaged page was always read back on open");
}

/// A store of 3,300 events with one event's hash flipped wherever sled wrote it, and
/// what `verify` then did.
fn damaged_store() -> (Chronicle, common::Run) {
    let c = Chronicle::new();
    let events: Vec<Value> = (0..300)
        .map(|i| trip_started(&format!("trip:t{}", i % 7)))
        .collect();
    c.append(&events).ok();
    // More events after, so that the damaged page is less likely to be in the part of
    // sled's log that opening reads back.
    let more: Vec<Value> = (0..3000)
        .map(|i| trip_started(&format!("trip:u{}", i % 7)))
        .collect();
    c.append(&more).ok();
    c.run(&["stats"]).ok();
    let line = c
        .run(&["log", "--from", "150", "--limit", "1", "--json"])
        .ok();
    let hash = serde_json::from_str::<Value>(&line).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // The log stores the hash as its 32 bytes.
    let hash = chronicle::model::event::parse_hash(&hash).unwrap();
    // Flip the bytes of one event's hash wherever sled wrote them.
    let path = c.db().join("db");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut found = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(hash.len()).position(|w| w == hash) {
        for b in &mut bytes[at + i..at + i + hash.len()] {
            *b ^= 0x20;
        }
        found += 1;
        at += i + hash.len();
    }
    assert!(found > 0, "the event's bytes are in sled's file");
    std::fs::write(&path, bytes).unwrap();
    let run = c.run(&["verify"]);
    (c, run)
}

/// An export recorded ahead of this machine's clock restores, with a note on its
/// events: the recorded clock never goes back, so events appended after them are
/// recorded at their time until the clock passes it.
#[test]
fn a_restored_export_ahead_of_the_clock_is_noted() {
    let c = Chronicle::new();
    c.append(&[
        json!({"stream": "note:first", "type": "note.reported", "occurred": "2025-01-04",
        "data": {"summary": "first", "entities": []}}),
    ])
    .ok();
    let ahead = json!({"stream": "note:ahead", "type": "note.reported", "occurred": "2025-01-05",
        "recorded": "2999-01-01T00:00:00.000000Z",
        "data": {"summary": "from a machine whose clock was ahead", "entities": []}});
    let (restored, run) = c.restore_with(&[ahead]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "it was recorded at 2999-01-01T00:00:00.000000Z, later than this machine's clock"
        ),
        "{}",
        run.stderr
    );
    let appended = json!({"stream": "note:later", "type": "note.reported", "occurred": "2025-01-06",
        "data": {"summary": "appended after", "entities": []}});
    restored.append(&[appended]).ok();
    assert_eq!(restored.log()[2]["recorded"], "2999-01-01T00:00:00.000000Z");
}
