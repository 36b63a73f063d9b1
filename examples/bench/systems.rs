//! The logs under test, behind one small interface, all with the same durability
//! (an append returns once its events are fsynced):
//!
//! - chronicle (`SledStore`);
//! - chronicle on PostgreSQL (`PgStore`), with `--postgres`: acknowledged after
//!   `COMMIT` with `synchronous_commit = on`, so once PostgreSQL fsynced its WAL;
//! - raw sled writing the keys chronicle's log writes (`E` position → the event,
//!   `S` stream `\0` version → position, `I` uuid → position and version,
//!   and `Mhead` once per append), in one batch, then `flush()` and an `fdatasync` of
//!   its `db` file, as `src/store/disk.rs` does: the storage engine's limit for this log;
//! - SQLite as an event table with the same guarantees (WAL, `synchronous=FULL`,
//!   `UNIQUE(stream, version)`, `UNIQUE(id)`).

use crate::payload;
use anyhow::{Context, Result};
use chronicle::model::{Origin, Position, ProposedEvent, StreamId, parse_event_value};
use chronicle::query::{Query, TimelineFilter};
use chronicle::store::{EventStore, PgStore, SledStore};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Chronicle,
    Sled,
    Sqlite,
    /// chronicle's PostgreSQL log: measured only when a server is given, so not one of
    /// [`SYSTEMS`].
    Postgres,
}

/// The logs every run measures, in the order of the table's columns.
pub const SYSTEMS: [System; 3] = [System::Chronicle, System::Sled, System::Sqlite];

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Chronicle => "chronicle",
            System::Sled => "sled",
            System::Sqlite => "sqlite",
            System::Postgres => "postgres",
        }
    }

    pub fn parse(name: &str) -> Result<System> {
        SYSTEMS
            .into_iter()
            .chain([System::Postgres])
            .find(|s| s.name() == name)
            .with_context(|| format!("no system `{name}`"))
    }

    /// What an acknowledged write has reached when the call returns: an fsync, for the
    /// three local logs (chronicle and raw sled `fdatasync` sled's file after its
    /// `flush`, SQLite fsyncs its write-ahead log); on PostgreSQL, a `COMMIT` with
    /// `synchronous_commit = on` (the server fsyncs its WAL before it answers).
    pub fn durability(self) -> &'static str {
        match self {
            System::Postgres => "commit",
            _ => "fsync",
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
    /// The id the event carries, if any (the others get one when appended).
    pub id: Option<Uuid>,
    pub proposed: ProposedEvent,
}

impl Payload {
    pub fn new(value: Value) -> Payload {
        let json = serde_json::to_vec(&value).expect("JSON");
        let stream = value["stream"].as_str().unwrap_or_default().to_owned();
        let event_type = value["type"].as_str().unwrap_or_default().to_owned();
        let id = value["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
        let proposed = parse_event_value(value, Origin::New)
            .unwrap_or_else(|e| panic!("a generated event is invalid: {e}"));
        Payload {
            json,
            stream,
            event_type,
            id,
            proposed,
        }
    }

    /// The event as raw sled stores it: the input with what a log adds (position,
    /// version, id, the time it was recorded, the schema and a hash), in the layout and
    /// about the size of chronicle's stored event (`store::event_value`: the hash, the
    /// time and the schema as bytes, the position only in the key). Built by
    /// concatenation: the baseline does no JSON work.
    fn stored(&self, position: u64, version: u64, id: &Uuid) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.json.len() + 120);
        v.push(chronicle::store::event_value::COMPACT);
        // A hash's 32 bytes look random: four rounds of splitmix64 of the position.
        let mut x = position;
        for _ in 0..4 {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            v.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
        }
        v.extend_from_slice(&1_736_157_600_000_000i64.to_be_bytes());
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(format!("\"version\":{version},").as_bytes());
        if self.id.is_none() {
            // An input with an id holds it already.
            v.extend_from_slice(format!("\"id\":\"{id}\",").as_bytes());
        }
        v.extend_from_slice(&self.json[1..self.json.len() - 1]);
        v
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

    /// The same, given the events to keep: chronicle's writer takes them over instead of
    /// copying them (a program appending what it made itself would not copy them).
    fn append_owned(&mut self, events: Vec<Payload>) -> Result<()> {
        self.append(&events)
    }
}

/// Opens a writer on an existing (or new) store. Each writer of SQLite has its own
/// connection; those of chronicle (on either log) and sled share one open store, so
/// chronicle's writers are group-committed by its one writer thread.
pub enum Log {
    Chronicle(SledStore),
    Sled(Arc<SledLog>),
    Sqlite(PathBuf),
    Postgres(PgStore),
}

impl Log {
    /// A local log in `dir` (not [`System::Postgres`]: see [`Log::open_pg`]).
    pub fn open(system: System, dir: &Path) -> Result<Log> {
        std::fs::create_dir_all(dir)?;
        Ok(match system {
            System::Chronicle => Log::Chronicle(SledStore::open(dir)?),
            System::Sled => Log::Sled(Arc::new(SledLog::open(dir)?)),
            System::Sqlite => {
                let path = dir.join("events.db");
                sqlite_open(&path)?;
                Log::Sqlite(path)
            }
            System::Postgres => anyhow::bail!("the PostgreSQL log is opened by its URL"),
        })
    }

    /// chronicle's log in the PostgreSQL database `url` names.
    pub fn open_pg(url: &str) -> Result<Log> {
        Ok(Log::Postgres(PgStore::open(url)?))
    }

    pub fn system(&self) -> System {
        match self {
            Log::Chronicle(_) => System::Chronicle,
            Log::Sled(_) => System::Sled,
            Log::Sqlite(_) => System::Sqlite,
            Log::Postgres(_) => System::Postgres,
        }
    }

    /// Waits until chronicle's views reflect its head (nothing for the other logs: the
    /// PostgreSQL log is measured here without views).
    pub fn views_caught_up(&self) -> Result<()> {
        if let Log::Chronicle(store) = self {
            store.live_views()?;
        }
        Ok(())
    }

    pub fn writer(&self) -> Result<Box<dyn Writer>> {
        Ok(match self {
            Log::Chronicle(store) => Box::new(ChronicleWriter(store.clone())),
            Log::Sled(log) => Box::new(SledWriter(log.clone())),
            Log::Sqlite(path) => Box::new(SqliteWriter(sqlite_open(path)?)),
            Log::Postgres(store) => Box::new(ChronicleWriter(store.clone())),
        })
    }
}

/// chronicle's own append, on either log.
struct ChronicleWriter<S>(S);

impl<S: EventStore + Send> Writer for ChronicleWriter<S> {
    fn append(&mut self, events: &[Payload]) -> Result<()> {
        let proposed = events.iter().map(|p| p.proposed.clone()).collect();
        self.0.append(proposed)?;
        Ok(())
    }

    fn append_owned(&mut self, events: Vec<Payload>) -> Result<()> {
        self.0
            .append(events.into_iter().map(|p| p.proposed).collect())?;
        Ok(())
    }
}

// chronicle's log keys (`src/store/keys.rs`), which the library does not export.
const EVENT: u8 = b'E';
const STREAM_EVENT: u8 = b'S';
const ID: u8 = b'I';
const HEAD: &[u8] = b"Mhead";

fn event_key(position: u64) -> [u8; 9] {
    let mut key = [EVENT; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 10);
    key.push(STREAM_EVENT);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key
}

/// sled with chronicle's settings (no background flusher: every append flushes).
pub fn sled_config(dir: &Path) -> sled::Config {
    sled::Config::new().path(dir).flush_every_ms(None)
}

/// sled's settings for raw sled writing what chronicle's views hold: `temporary`, as the
/// projector opens the views (`projector::open_sled`), so without sled's
/// `sync_file_range` after each of its buffer writes; sled removes the folder when the
/// database is dropped.
fn views_baseline_config(dir: &Path) -> sled::Config {
    sled_config(dir).temporary(true)
}

/// sled's flush and an `fdatasync` of its file, as a replay ends before it names its
/// new views.
fn flush_and_sync(db: &sled::Db, dir: &Path) -> Result<()> {
    db.flush()?;
    std::fs::File::open(dir.join("db"))?.sync_data()?;
    Ok(())
}

/// Raw sled keeping chronicle's log keys. Positions and versions are assigned under a
/// lock held until the batch is applied (so the head never goes back); the flush and
/// the fdatasync happen outside it, so that concurrent appends can share a flush.
pub struct SledLog {
    db: sled::Db,
    /// sled's data file, to `fdatasync` after each flush.
    file: std::fs::File,
    state: Mutex<SledState>,
}

struct SledState {
    next: u64,
    /// The current version of every stream appended to since open.
    versions: HashMap<String, u64>,
}

impl SledLog {
    fn open(dir: &Path) -> Result<SledLog> {
        let db = sled_config(dir).open()?;
        let head = db.get(HEAD)?.map_or(0, |v| {
            u64::from_be_bytes(v[..8].try_into().expect("8 bytes"))
        });
        let file = std::fs::File::open(dir.join("db"))?;
        Ok(SledLog {
            db,
            file,
            state: Mutex::new(SledState {
                next: head + 1,
                versions: HashMap::new(),
            }),
        })
    }

    fn append(&self, events: &[Payload]) -> Result<()> {
        {
            let mut state = self.state.lock().expect("no writer panicked");
            let mut batch = sled::Batch::default();
            for p in events {
                let position = state.next;
                state.next += 1;
                let version = match state.versions.get_mut(&p.stream) {
                    Some(v) => {
                        *v += 1;
                        *v
                    }
                    None => {
                        // The stream's last `S` key, as chronicle's writer reads it.
                        let prefix = stream_prefix(&p.stream);
                        let current = self
                            .db
                            .scan_prefix(&prefix)
                            .keys()
                            .next_back()
                            .transpose()?
                            .map_or(0, |k| {
                                u64::from_be_bytes(k[prefix.len()..].try_into().expect("8 bytes"))
                            });
                        state.versions.insert(p.stream.clone(), current + 1);
                        current + 1
                    }
                };
                let id = p.id.unwrap_or_else(Uuid::now_v7);
                batch.insert(&event_key(position)[..], p.stored(position, version, &id));
                let mut key = stream_prefix(&p.stream);
                key.extend_from_slice(&version.to_be_bytes());
                batch.insert(key, &position.to_be_bytes()[..]);
                let mut id_key = vec![ID];
                id_key.extend_from_slice(id.as_bytes());
                let mut value = [0u8; 16];
                value[..8].copy_from_slice(&position.to_be_bytes());
                value[8..].copy_from_slice(&version.to_be_bytes());
                batch.insert(id_key, &value[..]);
            }
            let mut head = [0u8; 48];
            head[..8].copy_from_slice(&(state.next - 1).to_be_bytes());
            batch.insert(HEAD, &head[..]);
            self.db.apply_batch(batch)?;
        }
        self.db.flush()?;
        self.file.sync_data()?;
        Ok(())
    }
}

struct SledWriter(Arc<SledLog>);

impl Writer for SledWriter {
    fn append(&mut self, events: &[Payload]) -> Result<()> {
        self.0.append(events)
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
                let id = p.id.unwrap_or_else(Uuid::now_v7);
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

/// W4: reads the whole log back. chronicle rebuilds every view (`chronicle replay`);
/// the baselines scan every event and parse its JSON. Returns the events seen.
pub fn replay(system: System, dir: &Path) -> Result<(u64, Duration)> {
    match system {
        System::Chronicle => {
            // As `chronicle replay` opens the store.
            chronicle::store::use_replay_caches();
            let store = SledStore::open(dir)?;
            // Start from views that are current, so that only the rebuild is timed.
            store.live_views()?;
            let started = Instant::now();
            store.rebuild(&[], Box::new(|_, _| {}))?;
            let elapsed = started.elapsed();
            Ok((store.head()?.position.0, elapsed))
        }
        System::Sled => {
            let db = sled_config(dir).open()?;
            let started = Instant::now();
            let mut n = 0;
            for item in db.scan_prefix([EVENT]) {
                let (k, v) = item?;
                // As chronicle reads its stored events: their JSON made again, parsed.
                let position = Position(u64::from_be_bytes(k[1..9].try_into()?));
                let json = chronicle::store::event_value::to_json(&v, position)
                    .context("a stored event that is not one")?;
                let _: Value = serde_json::from_slice(&json)?;
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
        System::Postgres => anyhow::bail!("replay is not measured on PostgreSQL"),
    }
}

/// W6: what opening a store costs, in ms.
pub struct Opened {
    /// Until appends can start.
    pub open_ms: f64,
    /// chronicle: then until the views reflect the head (`live_views`), and how many
    /// events the projector had to fold to get there.
    pub views_ms: f64,
    pub lag: u64,
}

/// W6: opens the store as a program starting up would, ready to append (and, for
/// chronicle, then ready to answer a query: the views caught up).
pub fn open_time(system: System, dir: &Path) -> Result<Opened> {
    let started = Instant::now();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match system {
        System::Chronicle => {
            let store = SledStore::open(dir)?;
            let open_ms = ms(started.elapsed());
            let lag = store.head()?.position.0 - store.projected().0;
            let t = Instant::now();
            store.live_views()?;
            let views_ms = ms(t.elapsed());
            // Opening ends once appends can start; what closing costs is not opening.
            drop(store);
            Ok(Opened {
                open_ms,
                views_ms,
                lag,
            })
        }
        System::Sled => {
            let db = sled_config(dir).open()?;
            let _ = db.get(HEAD)?;
            Ok(Opened {
                open_ms: ms(started.elapsed()),
                views_ms: 0.0,
                lag: 0,
            })
        }
        System::Sqlite => {
            let conn = sqlite_open(&dir.join("events.db"))?;
            let _: Option<i64> =
                conn.query_row("SELECT max(position) FROM events", [], |r| r.get(0))?;
            Ok(Opened {
                open_ms: ms(started.elapsed()),
                views_ms: 0.0,
                lag: 0,
            })
        }
        System::Postgres => anyhow::bail!("opens are not measured on PostgreSQL"),
    }
}

/// W5: the questions asked of a store, now (`at` = `None`) or as of a position.
pub enum Reader {
    Chronicle(SledStore),
    Sqlite(Connection),
}

impl Reader {
    /// `trip show`: chronicle reads the trip's view (as of `at`: the stored history
    /// plus up to 63 events folded); SQLite reads the trip stream's events (up to
    /// `at`) through the `(stream, version)` index and parses them.
    pub fn trip(&self, stream: &str, at: Option<u64>) -> Result<usize> {
        match self {
            Reader::Chronicle(store) => {
                let id = StreamId::parse(stream).map_err(anyhow::Error::msg)?;
                Ok(match at {
                    None => Query::new(&store.live_views()?).trip(&id)?.stops.len(),
                    Some(p) => Query::new(&store.views_at(Position(p))?)
                        .trip(&id)?
                        .stops
                        .len(),
                })
            }
            Reader::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT json FROM events WHERE stream = ?1 AND position <= ?2 ORDER BY version",
                )?;
                let limit = at.map_or(i64::MAX, |p| i64::try_from(p).unwrap_or(i64::MAX));
                let mut rows = stmt.query(params![stream, limit])?;
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
    pub fn timeline(&self, entity: &str, at: Option<u64>) -> Result<usize> {
        match self {
            Reader::Chronicle(store) => {
                let filter = TimelineFilter {
                    entity: Some(
                        chronicle::model::EntityId::parse(entity).map_err(anyhow::Error::msg)?,
                    ),
                    limit: Some(50),
                    ..TimelineFilter::default()
                };
                Ok(match at {
                    None => Query::new(&store.live_views()?).timeline(&filter)?.len(),
                    Some(p) => Query::new(&store.views_at(Position(p))?)
                        .timeline(&filter)?
                        .len(),
                })
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

/// The bytes of a store without its views: chronicle's log (its folder less the
/// `views` folders a store keeps its views in), or all of a baseline's.
pub fn log_size(dir: &Path) -> Result<u64> {
    let mut total = dir_size(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("views") && entry.metadata()?.is_dir() {
            total -= dir_size(&entry.path())?;
        }
    }
    Ok(total)
}

/// What a store's trees hold: keys and live bytes (keys + values).
#[derive(Debug, Default, serde::Serialize)]
pub struct TreeSizes {
    /// sled's default tree: chronicle's log (or raw sled's keys).
    pub log_keys: u64,
    pub log_bytes: u64,
    /// The views trees (`views.<n>`): all of it, and the history (`H`) part.
    pub views_keys: u64,
    pub views_bytes: u64,
    pub history_keys: u64,
    pub history_bytes: u64,
}

/// The keys and live bytes of a store, per database. Opens the log's and the views'
/// databases with sled directly, so run it on a store no one else has open, after the
/// measurements of its opens.
pub fn tree_sizes(dir: &Path) -> Result<TreeSizes> {
    let mut sizes = TreeSizes::default();
    {
        let db = sled_config(dir).open()?;
        for item in db.iter() {
            let (k, v) = item?;
            sizes.log_keys += 1;
            sizes.log_bytes += (k.len() + v.len()) as u64;
        }
    }
    let views_dir = chronicle::store::active_views_dir(dir);
    if !views_dir.is_dir() {
        return Ok(sizes);
    }
    let db = sled_config(&views_dir).open()?;
    for name in db.tree_names() {
        if !name.starts_with(b"views.") {
            continue;
        }
        for item in db.open_tree(name)?.iter() {
            let (k, v) = item?;
            let bytes = (k.len() + v.len()) as u64;
            sizes.views_keys += 1;
            sizes.views_bytes += bytes;
            if k.first() == Some(&b'H') {
                sizes.history_keys += 1;
                sizes.history_bytes += bytes;
            }
        }
    }
    Ok(sizes)
}

/// W4's fair baseline for the projector: raw sled writing what chronicle's views hold.
/// Copies the current documents of a chronicle store's active views tree (keys and
/// values as stored, the history left out) into a fresh sled database next to it, in
/// batches of the projector's size and without sled's syncs, as the projector writes,
/// then flushes and syncs it, as a replay ends.
/// Only the batches' application is timed, not reading the source. Returns the keys
/// written and the time.
pub fn write_view_keys(dir: &Path) -> Result<(u64, Duration)> {
    const BATCH: usize = 2_000;
    let source = sled_config(&chronicle::store::active_views_dir(dir)).open()?;
    let name = source
        .get(b"Mviews")?
        .ok_or_else(|| anyhow::anyhow!("{} has no active views tree", dir.display()))?;
    let tree = source.open_tree(name)?;
    let target_dir = dir.with_extension("view-keys");
    let _ = std::fs::remove_dir_all(&target_dir);
    let target = views_baseline_config(&target_dir).open()?;
    let mut elapsed = Duration::ZERO;
    let mut keys = 0;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in tree.scan_prefix(b"D") {
        let (k, v) = item?;
        batch.insert(k, v);
        in_batch += 1;
        keys += 1;
        if in_batch == BATCH {
            let started = Instant::now();
            target.apply_batch(std::mem::take(&mut batch))?;
            elapsed += started.elapsed();
            in_batch = 0;
        }
    }
    let started = Instant::now();
    target.apply_batch(batch)?;
    flush_and_sync(&target, &target_dir)?;
    elapsed += started.elapsed();
    drop(target);
    let _ = std::fs::remove_dir_all(&target_dir);
    Ok((keys, elapsed))
}

/// W4's baseline of the same writes: raw sled applying exactly what a replay of a
/// chronicle store writes. Replays the store once, untimed, recording every views batch
/// (keys, values, removals, in order; [`chronicle::store::record_view_writes`]), then
/// applies those batches to a fresh sled database with the replay's cache and without
/// sled's syncs, as the replay writes, and flushes and syncs it at the end, as the
/// replay does. Only the
/// batches' application and the flush are timed, not reading the recording. Returns
/// the writes, the batches and the time.
pub fn apply_replay_writes(dir: &Path) -> Result<(u64, u64, Duration)> {
    use std::io::Read;
    let recording = dir.with_extension("replay-writes");
    chronicle::store::use_replay_caches();
    {
        let store = SledStore::open(dir)?;
        store.live_views()?;
        chronicle::store::record_view_writes(Some(std::fs::File::create(&recording)?))?;
        store.rebuild(&[], Box::new(|_, _| {}))?;
        chronicle::store::record_view_writes(None)?;
    }
    let target_dir = dir.with_extension("same-writes");
    let _ = std::fs::remove_dir_all(&target_dir);
    let target = views_baseline_config(&target_dir)
        .cache_capacity(chronicle::store::REPLAY_CACHE_BYTES)
        .open()?;
    let mut input = std::io::BufReader::new(std::fs::File::open(&recording)?);
    let u32_le = |input: &mut std::io::BufReader<std::fs::File>| -> Result<Option<u32>> {
        let mut b = [0; 4];
        match input.read_exact(&mut b) {
            Ok(()) => Ok(Some(u32::from_le_bytes(b))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    let bytes = |input: &mut std::io::BufReader<std::fs::File>, len: u32| -> Result<Vec<u8>> {
        let mut v = vec![0; len as usize];
        input.read_exact(&mut v)?;
        Ok(v)
    };
    let (mut writes, mut batches, mut elapsed) = (0, 0, Duration::ZERO);
    while let Some(count) = u32_le(&mut input)? {
        let mut batch = sled::Batch::default();
        for _ in 0..count {
            let key_len = u32_le(&mut input)?.context("a recorded write is cut short")?;
            let key = bytes(&mut input, key_len)?;
            match u32_le(&mut input)?.context("a recorded write is cut short")? {
                u32::MAX => batch.remove(key),
                len => batch.insert(key, bytes(&mut input, len)?),
            }
        }
        writes += u64::from(count);
        batches += 1;
        let started = Instant::now();
        target.apply_batch(batch)?;
        elapsed += started.elapsed();
    }
    let started = Instant::now();
    flush_and_sync(&target, &target_dir)?;
    elapsed += started.elapsed();
    drop(target);
    let _ = std::fs::remove_dir_all(&target_dir);
    let _ = std::fs::remove_file(&recording);
    Ok((writes, batches, elapsed))
}
