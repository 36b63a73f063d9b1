//! The three logs under test, behind one small interface: chronicle (`SledStore`), raw
//! sled doing the minimum (key = position, value = the event's JSON, `flush()` for
//! durability), and SQLite as an event table with the same guarantees as chronicle's
//! log (WAL, `synchronous=FULL`, `UNIQUE(stream, version)`, `UNIQUE(id)`).

use crate::payload;
use anyhow::{Context, Result};
use chronicle::model::{Origin, ProposedEvent, parse_event_value};
use chronicle::query::{Query, TimelineFilter};
use chronicle::store::{EventStore, SledStore};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Chronicle,
    Sled,
    Sqlite,
}

pub const SYSTEMS: [System; 3] = [System::Chronicle, System::Sled, System::Sqlite];

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Chronicle => "chronicle",
            System::Sled => "sled",
            System::Sqlite => "sqlite",
        }
    }

    pub fn parse(name: &str) -> Result<System> {
        SYSTEMS
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| format!("no system `{name}`"))
    }

    /// What an acknowledged write has reached when the call returns.
    pub fn durability(self) -> &'static str {
        match self {
            // sled 0.34's `flush` ends in sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)
            // on the written log range; chronicle follows it with an fdatasync.
            System::Sled => "sfr",
            System::Chronicle | System::Sqlite => "fsync",
        }
    }

    /// The directory of this system's store of `events` events under `root`.
    pub fn dir(self, root: &Path, events: u64) -> PathBuf {
        root.join(format!("{}-{events}", self.name()))
    }
}

/// One event, in the forms the three logs take it.
pub struct Payload {
    /// The event as a user would send it: one line of JSON.
    pub json: Vec<u8>,
    pub stream: String,
    pub event_type: String,
    pub proposed: ProposedEvent,
}

impl Payload {
    pub fn new(value: Value) -> Payload {
        let json = serde_json::to_vec(&value).expect("JSON");
        let stream = value["stream"].as_str().unwrap_or_default().to_owned();
        let event_type = value["type"].as_str().unwrap_or_default().to_owned();
        let proposed = parse_event_value(value, Origin::New)
            .unwrap_or_else(|e| panic!("a generated event is invalid: {e}"));
        Payload {
            json,
            stream,
            event_type,
            proposed,
        }
    }
}

/// `trips` whole trips, numbered from `first`, as payloads, in order.
pub fn trips(people: u64, seed: u64, first: u64, trips: u64) -> Vec<Payload> {
    let mut generator = payload::Trips::new(people, seed);
    (first..first + trips)
        .flat_map(|t| generator.trip(t))
        .map(Payload::new)
        .collect()
}

/// Appends to one log. One writer per thread.
pub trait Writer: Send {
    /// Appends the events atomically and returns once they are durable.
    fn append(&mut self, events: &[Payload]) -> Result<()>;
}

/// Opens a writer on an existing (or new) store. Each writer of SQLite has its own
/// connection; those of chronicle and sled share one open database.
pub enum Log {
    Chronicle(SledStore),
    Sled { db: sled::Db, next: Arc<AtomicU64> },
    Sqlite(PathBuf),
}

impl Log {
    pub fn open(system: System, dir: &Path) -> Result<Log> {
        std::fs::create_dir_all(dir)?;
        Ok(match system {
            System::Chronicle => Log::Chronicle(SledStore::open(dir)?),
            System::Sled => {
                let db = sled::open(dir)?;
                let last = db
                    .last()?
                    .map_or(0, |(k, _)| u64::from_be_bytes(k[..8].try_into().unwrap()));
                Log::Sled {
                    db,
                    next: Arc::new(AtomicU64::new(last + 1)),
                }
            }
            System::Sqlite => {
                let path = dir.join("events.db");
                sqlite_open(&path)?;
                Log::Sqlite(path)
            }
        })
    }

    pub fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(match self {
            Log::Chronicle(store) => Box::new(ChronicleWriter(store.clone())),
            Log::Sled { db, next } => Box::new(SledWriter {
                db: db.clone(),
                next: next.clone(),
            }),
            Log::Sqlite(path) => Box::new(SqliteWriter(sqlite_open(path)?)),
        })
    }
}

struct ChronicleWriter(SledStore);

impl Writer for ChronicleWriter {
    fn append(&mut self, events: &[Payload]) -> Result<()> {
        let proposed = events.iter().map(|p| p.proposed.clone()).collect();
        self.0.append(proposed)?;
        Ok(())
    }
}

struct SledWriter {
    db: sled::Db,
    next: Arc<AtomicU64>,
}

impl Writer for SledWriter {
    fn append(&mut self, events: &[Payload]) -> Result<()> {
        let first = self.next.fetch_add(events.len() as u64, Ordering::SeqCst);
        if let [one] = events {
            self.db.insert(first.to_be_bytes(), one.json.as_slice())?;
        } else {
            let mut batch = sled::Batch::default();
            for (i, p) in events.iter().enumerate() {
                batch.insert(&(first + i as u64).to_be_bytes()[..], p.json.as_slice());
            }
            self.db.apply_batch(batch)?;
        }
        self.db.flush()?;
        Ok(())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (stream, version)
);";

/// A connection with chronicle's guarantees: every commit fsynced (WAL, FULL).
pub fn sqlite_open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode == "wal", "SQLite refused WAL mode ({mode})");
    conn.execute_batch("PRAGMA synchronous=FULL;")?;
    conn.busy_timeout(Duration::from_secs(60))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

struct SqliteWriter(Connection);

impl Writer for SqliteWriter {
    /// One transaction: each event gets its stream's next version, as an event store
    /// on SQLite would (the unique index makes a racing writer fail, not duplicate).
    fn append(&mut self, events: &[Payload]) -> Result<()> {
        let tx = self
            .0
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut version = tx
                .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, stream, version, type, json) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in events {
                let current: i64 = version.query_row([&p.stream], |r| r.get(0))?;
                let id = uuid::Uuid::now_v7();
                insert.execute(params![
                    &id.as_bytes()[..],
                    p.stream,
                    current + 1,
                    p.event_type,
                    std::str::from_utf8(&p.json)?,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// W4: reads the whole log back. chronicle rebuilds every projection; the baselines
/// scan every event and parse its JSON. Returns the events seen.
pub fn replay(system: System, dir: &Path) -> Result<(u64, Duration)> {
    match system {
        System::Chronicle => {
            let store = SledStore::open(dir)?;
            let started = Instant::now();
            store.rebuild(&[], Box::new(|_, _| {}))?;
            let elapsed = started.elapsed();
            Ok((store.head()?.position.0, elapsed))
        }
        System::Sled => {
            let db = sled::open(dir)?;
            let started = Instant::now();
            let mut n = 0;
            for item in db.iter() {
                let (_, v) = item?;
                let _: Value = serde_json::from_slice(&v)?;
                n += 1;
            }
            Ok((n, started.elapsed()))
        }
        System::Sqlite => {
            let conn = sqlite_open(&dir.join("events.db"))?;
            let started = Instant::now();
            let mut n = 0;
            let mut stmt = conn.prepare("SELECT json FROM events ORDER BY position")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let text = row.get_ref(0)?.as_str()?;
                let _: Value = serde_json::from_str(text)?;
                n += 1;
            }
            Ok((n, started.elapsed()))
        }
    }
}

/// W6: opens the store as a program starting up would, ready to append.
pub fn open_time(system: System, dir: &Path) -> Result<Duration> {
    let started = Instant::now();
    match system {
        System::Chronicle => {
            let store = SledStore::open(dir)?;
            let elapsed = started.elapsed();
            // Opening ends once appends can start; what closing costs is not opening.
            drop(store);
            Ok(elapsed)
        }
        System::Sled => {
            let db = sled::open(dir)?;
            let _ = db.last()?;
            Ok(started.elapsed())
        }
        System::Sqlite => {
            let conn = sqlite_open(&dir.join("events.db"))?;
            let _: Option<i64> =
                conn.query_row("SELECT max(position) FROM events", [], |r| r.get(0))?;
            Ok(started.elapsed())
        }
    }
}

/// W5: the questions asked of a store.
pub enum Reader {
    Chronicle(SledStore),
    Sqlite(Connection),
}

impl Reader {
    /// `trip show`: chronicle folds the trip's view; SQLite reads the trip stream's
    /// events through the `(stream, version)` index and parses them.
    pub fn trip(&self, stream: &str) -> Result<usize> {
        match self {
            Reader::Chronicle(store) => {
                let docs = store.live_views()?;
                let id = chronicle::model::StreamId::parse(stream).map_err(anyhow::Error::msg)?;
                Ok(Query::new(&docs).trip(&id)?.stops.len())
            }
            Reader::Sqlite(conn) => {
                let mut stmt = conn
                    .prepare_cached("SELECT json FROM events WHERE stream = ?1 ORDER BY version")?;
                let mut rows = stmt.query([stream])?;
                let mut n = 0;
                while let Some(row) = rows.next()? {
                    let _: Value = serde_json::from_str(row.get_ref(0)?.as_str()?)?;
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    /// The first 50 entries of one entity's timeline (chronicle only: SQLite has no
    /// index of the entities an event involves).
    pub fn timeline(&self, entity: &str) -> Result<usize> {
        match self {
            Reader::Chronicle(store) => {
                let docs = store.live_views()?;
                let filter = TimelineFilter {
                    entity: Some(
                        chronicle::model::EntityId::parse(entity).map_err(anyhow::Error::msg)?,
                    ),
                    limit: Some(50),
                    ..TimelineFilter::default()
                };
                Ok(Query::new(&docs).timeline(&filter)?.len())
            }
            Reader::Sqlite(_) => anyhow::bail!("no timeline in SQLite"),
        }
    }
}

/// Apparent size of the files below `dir`.
pub fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
