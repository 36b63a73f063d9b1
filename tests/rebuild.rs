//! Projections whose code changed are rebuilt on open; new projections catch up; a
//! rebuild of one projection rebuilds them all, so it never leaves them inconsistent;
//! a reader that waits for the views does not wait for new events to settle.

use chronicle::model::{Origin, parse_event_value};
use chronicle::projection::runner::Runner;
use chronicle::projection::{Change, Docs, Projection, get_json, put_json};
use chronicle::store::{EventStore, SledStore};
use serde_json::json;
use std::time::{Duration, Instant};

/// Counts facts, times a factor that stands for "what this version of the code does".
struct Counter {
    version: u32,
    factor: u64,
}

impl Projection for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> chronicle::Result<()> {
        if change.after.is_some() && change.before.is_none() {
            let n: u64 = get_json(&*docs, b"counter/n")?.unwrap_or(0);
            put_json(docs, b"counter/n".to_vec(), &(n + self.factor));
        }
        Ok(())
    }
}

fn count(store: &SledStore) -> u64 {
    get_json(&store.live_views().unwrap(), b"counter/n")
        .unwrap()
        .unwrap_or(0)
}

fn append(store: &SledStore, n: usize) {
    let events = (0..n)
        .map(|_| {
            parse_event_value(
                json!({"stream": "trip:t", "type": "trip.started", "occurred": "2025", "data": {}}),
                Origin::New,
            )
            .unwrap()
        })
        .collect();
    store.append(events).unwrap();
}

#[test]
fn a_changed_projection_version_rebuilds_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = || {
        Runner::new(vec![Box::new(Counter {
            version: 1,
            factor: 1,
        })])
    };
    let store = SledStore::open_with(dir.path(), v1()).unwrap();
    append(&store, 5);
    assert_eq!(count(&store), 5);
    drop(store);
    // Same version: the stored state is kept as it is, even by code that would differ.
    let same = SledStore::open_with(
        dir.path(),
        Runner::new(vec![Box::new(Counter {
            version: 1,
            factor: 10,
        })]),
    )
    .unwrap();
    assert_eq!(count(&same), 5);
    drop(same);
    // A new version starts from empty views, rebuilt from the log: a reader waiting for
    // the views sees them whole.
    let v2 = SledStore::open_with(
        dir.path(),
        Runner::new(vec![Box::new(Counter {
            version: 2,
            factor: 10,
        })]),
    )
    .unwrap();
    assert_eq!(count(&v2), 50);
    // In a folder of its own, as a replay's; the old one is gone.
    let folders: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("views"))
        .collect();
    assert_eq!(
        std::collections::BTreeSet::from_iter(folders),
        ["views.1".to_owned(), "views.current".to_owned()].into()
    );
    append(&v2, 1);
    assert_eq!(count(&v2), 60);
    let checkpoints = v2.checkpoints().unwrap();
    assert!(
        checkpoints.contains(&("counter".into(), 2, chronicle::model::Position(6))),
        "{checkpoints:?}"
    );
}

/// Views that lack more than a chunk of the log, and more than twice what they hold,
/// are rebuilt into a folder of their own rather than caught up (a rebuild overlaps its
/// folding with sled's writes): here the views of a new version, which start empty.
#[test]
fn views_far_behind_the_log_are_rebuilt_in_a_folder_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let version = |version| {
        Runner::new(vec![Box::new(Counter {
            version,
            factor: u64::from(version),
        })])
    };
    let store = SledStore::open_with(dir.path(), version(1)).unwrap();
    for _ in 0..9 {
        append(&store, 500);
    }
    assert_eq!(count(&store), 4500);
    drop(store);
    let store = SledStore::open_with(dir.path(), version(2)).unwrap();
    assert_eq!(count(&store), 9000);
    // The new version's empty views in `views.1`, the rebuild's in `views.2`.
    let named = std::fs::read_to_string(dir.path().join("views.current")).unwrap();
    assert_eq!(named.trim(), "views.2");
    append(&store, 1);
    assert_eq!(count(&store), 9002);
    let report = store.verify(&mut |_, _| {}).unwrap();
    assert_eq!(report.problem, None);
}

#[test]
fn a_new_projection_catches_up_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    append(&store, 7);
    drop(store);
    let mut projections = chronicle::projection::all();
    projections.push(Box::new(Counter {
        version: 1,
        factor: 1,
    }));
    let store = SledStore::open_with(dir.path(), Runner::new(projections)).unwrap();
    assert_eq!(count(&store), 7);
}

/// The timeline files a trip's facts under its traveler, read from the trips
/// projection's documents; rebuilding the timeline alone once produced a different
/// timeline from the incremental one when the traveler changed, and `verify` failed.
#[test]
fn rebuilding_one_projection_after_a_traveler_change_equals_the_incremental_views() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let events = [
        json!({"stream": "person:a", "type": "entity.registered", "data": {"name": "A", "aliases": []}}),
        json!({"stream": "person:b", "type": "entity.registered", "data": {"name": "B", "aliases": []}}),
        json!({"stream": "trip:t", "type": "trip.announced", "occurred": "2025-01-01",
               "data": {"traveler": "person:a", "stops": [{"place": "country:KR"}]}}),
        json!({"stream": "trip:t", "type": "trip.arrived", "occurred": "2025-01-02",
               "data": {"place": "country:KR"}}),
        json!({"stream": "trip:t", "type": "trip.announced", "occurred": "2025-01-03",
               "data": {"traveler": "person:b", "stops": [{"place": "country:KR"}]}}),
    ];
    for event in events {
        store
            .append(vec![parse_event_value(event, Origin::New).unwrap()])
            .unwrap();
    }
    let before: Vec<_> = dump(&store);
    store
        .rebuild(&["timeline".to_owned()], Box::new(|_, _| {}))
        .unwrap();
    assert_eq!(dump(&store), before);
    let report = store.verify(&mut |_, _| {}).unwrap();
    assert_eq!(report.problem, None);
}

fn dump(store: &SledStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    use chronicle::projection::DocsRead;
    let views = store.live_views().unwrap();
    views.scan(b"", None, false).map(|r| r.unwrap()).collect()
}

/// `replay` builds the views in a new folder beside the old one and names it in
/// `views.current`: replays do not add up on disk, and a rebuild cut short (its folder
/// left beside the views) changes nothing and is cleared on the next open.
#[test]
fn replays_leave_one_copy_of_the_views_and_a_cut_short_one_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let folders = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("views") && n != "views.current")
            .collect();
        names.sort();
        names
    };
    let size = |name: &str| -> u64 {
        std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let store = SledStore::open(dir.path()).unwrap();
    for _ in 0..5 {
        append(&store, 100);
    }
    let before = dump(&store);
    let replay = |store: &SledStore| store.rebuild(&[], Box::new(|_, _| {})).unwrap();
    replay(&store);
    assert_eq!(dump(&store), before);
    assert_eq!(folders(), ["views.1"]);
    let first = size("views.1");
    for _ in 0..4 {
        replay(&store);
    }
    assert_eq!(
        folders(),
        ["views.5"],
        "each replay removes the views it replaced"
    );
    assert_eq!(dump(&store), before);
    assert!(
        size("views.5") <= first + first / 2,
        "the fifth replay's views take {} bytes, the first's {first}",
        size("views.5")
    );
    drop(store);

    // What a kill during a rebuild leaves: the next folder, half made.
    std::fs::create_dir(dir.path().join("views.6")).unwrap();
    std::fs::write(dir.path().join("views.6/db"), b"half a database").unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        folders(),
        ["views.5"],
        "a cut-short rebuild's folder is removed on open"
    );
    assert_eq!(dump(&store), before);
    assert_eq!(store.verify(&mut |_, _| {}).unwrap().problem, None);
    replay(&store);
    assert_eq!(folders(), ["views.6"]);
    assert_eq!(dump(&store), before);
}

/// While no one reads, new events wait up to 500 ms to be folded together (and a new
/// head does not wake the projector meanwhile); a reader that waits for the views ends
/// that wait at once.
#[test]
fn a_reader_does_not_wait_for_new_events_to_settle() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(vec![Box::new(Counter {
        version: 1,
        factor: 1,
    })]);
    let store = SledStore::open_with(dir.path(), runner).unwrap();
    append(&store, 1);
    assert_eq!(count(&store), 1);
    for n in 2..=6 {
        append(&store, 1);
        // A second append while the projector lets the first settle.
        std::thread::sleep(Duration::from_millis(20));
        append(&store, 1);
        let asked = Instant::now();
        assert_eq!(count(&store), 2 * n - 1);
        let waited = asked.elapsed();
        assert!(
            waited < Duration::from_millis(250),
            "the reader waited {waited:?} for the views"
        );
    }
}
