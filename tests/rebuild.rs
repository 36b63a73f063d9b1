//! Projections whose code changed are rebuilt on open; new projections catch up.

use chronicle::model::{Origin, parse_event_value};
use chronicle::projection::runner::Runner;
use chronicle::projection::{Change, Docs, Projection, get_json, put_json};
use chronicle::store::{EventStore, SledStore};
use serde_json::json;

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
    get_json(&store.live_views(), b"counter/n")
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
    // A new version is rebuilt from the log before the store is handed out.
    let v2 = SledStore::open_with(
        dir.path(),
        Runner::new(vec![Box::new(Counter {
            version: 2,
            factor: 10,
        })]),
    )
    .unwrap();
    assert_eq!(count(&v2), 50);
    append(&v2, 1);
    assert_eq!(count(&v2), 60);
    let checkpoints = v2.checkpoints().unwrap();
    assert!(
        checkpoints.contains(&("counter".into(), 2, chronicle::model::Position(6))),
        "{checkpoints:?}"
    );
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
