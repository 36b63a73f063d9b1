//! [`PgStore`]: the log in PostgreSQL, behind the same [`EventStore`] trait as the sled
//! log, with the same guarantees:
//!
//! - positions start at 1 and have no gaps, and each stream's versions start at 1 and
//!   have no gaps, across every process and host writing the same database: each
//!   append transaction locks the one-row head table first, and positions follow it;
//! - `expect` (any, none, exists, a version) and idempotency by id with no time window
//!   are decided by the same pure rules as the sled log (`store::rules`), over queries
//!   made inside the append's transaction;
//! - the stored event is byte for byte what the sled log stores, with the same hash
//!   chain, so an export of one restores into the other with its positions and hashes;
//! - an append is one transaction (all of its events or none) and is acknowledged only
//!   after its `COMMIT` returned with `synchronous_commit = on` (set on every
//!   connection), so a `kill -9` of the appending process loses nothing acknowledged;
//! - the schema is created and migrated by chronicle (`schema`), and a newer one is
//!   refused with [`Error::Incompatible`].
//!
//! Appends go through one writer thread per store (`writer`), which commits every
//! append queued behind the first in one transaction (group commit). Reads use a small
//! pool of connections and read the log in pages, never whole. The client is the
//! synchronous `postgres` crate: the [`EventStore`] trait is synchronous and the writer
//! is a plain thread. It runs its own small tokio runtime per connection, so it must
//! not be called on an async task; the server calls the store on tokio's blocking pool
//! (`spawn_blocking`), where it works. No TLS: the log is meant to be on loopback or a
//! trusted network for now.

mod schema;
mod writer;

pub use schema::SCHEMA_VERSION;

use super::writer::Job;
use super::{AppendedEvent, EventStore, Events, Head, ReadFilter, Stats, StoreMetrics};
use crate::model::event::{GENESIS_HASH, parse_hash};
use crate::model::{Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::{Error, Result};
use chrono::DateTime;
use postgres::types::ToSql;
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Events fetched per query when reading.
const PAGE: i64 = 500;

/// Most connections a store opens for reads (the writer has one more).
const MAX_READERS: usize = 4;

/// How many of the last events open checks the chain of (as the sled log does).
const TAIL_CHECKED: u64 = 64;

/// A failure reported by PostgreSQL or the connection to it.
fn pg_error(e: postgres::Error) -> Error {
    Error::Storage(format!("postgresql: {e}"))
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Storage(format!("{n} is too large for PostgreSQL")))
}

fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n)
        .map_err(|_| Error::Integrity(format!("the PostgreSQL log holds a negative number ({n})")))
}

/// The stored form of an event: the bytes the chain hash covers.
fn encode_event(event: &RecordedEvent) -> String {
    serde_json::to_string(event).expect("an event always serializes")
}

fn decode_event(position: Position, body: &str) -> Result<RecordedEvent> {
    serde_json::from_str(body).map_err(|e| {
        Error::Integrity(format!(
            "the event at position {position} cannot be read ({e}); run `chronicle verify`"
        ))
    })
}

/// Opens a connection with the settings every connection of the store has.
fn connect(config: &postgres::Config) -> Result<postgres::Client> {
    let mut client = config.connect(postgres::NoTls).map_err(pg_error)?;
    // Acknowledge only what the server has flushed, whatever the server's default.
    client
        .batch_execute("SET synchronous_commit = on")
        .map_err(pg_error)?;
    Ok(client)
}

/// The writer's statements, prepared once per connection.
struct Statements {
    lock_head: postgres::Statement,
    stream_version: postgres::Statement,
    by_id: postgres::Statement,
    stream_events: postgres::Statement,
    insert_events: postgres::Statement,
    move_head: postgres::Statement,
}

impl Statements {
    fn prepare(client: &mut postgres::Client) -> Result<Statements> {
        let mut p = |sql: &str| client.prepare(sql).map_err(pg_error);
        Ok(Statements {
            lock_head: p("SELECT position, hash, recorded_micros FROM chronicle_head FOR UPDATE")?,
            stream_version: p(
                "SELECT coalesce(max(version), 0) FROM chronicle_events WHERE stream = $1",
            )?,
            by_id: p("SELECT position, version, digest, body FROM chronicle_events WHERE id = $1")?,
            stream_events: p(
                "SELECT position, body FROM chronicle_events WHERE stream = $1 AND version >= $2 ORDER BY version",
            )?,
            insert_events: p(
                "INSERT INTO chronicle_events (position, id, stream, version, category, event_type, digest, body)
                 SELECT * FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::bytea[], $8::text[])",
            )?,
            move_head: p(
                "UPDATE chronicle_head SET position = $1, hash = $2, recorded_micros = $3",
            )?,
        })
    }
}

/// An error after which the server closes the connection (as when it shuts down or
/// an administrator ends the session).
fn is_fatal(e: &postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| matches!(d.severity(), "FATAL" | "PANIC"))
}

/// Connections for reads: at most [`MAX_READERS`] open at once, opened on demand and
/// kept while idle; a read waits for one to be free. Each read holds its connection
/// for one query (a page of a long read), so no read holds one for long.
struct Pool {
    config: postgres::Config,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<postgres::Client>,
    /// Connections open, idle or in use.
    open: usize,
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<postgres::Client>,
}

impl Pool {
    fn new(config: postgres::Config) -> Pool {
        Pool {
            config,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state stays consistent even if a holder panicked: every change is one step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a read on a pooled connection. A connection the server dropped while it was
    /// idle shows only when used, so a read that fails on a closed connection is run
    /// once more on a new one (reads change nothing, so running one twice is safe); the
    /// other idle connections are likely stale too, and are let go.
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut postgres::Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut client = self.get()?;
        match f(&mut client) {
            Err(e) if e.is_closed() || client.is_closed() || is_fatal(&e) => {
                client.broken();
                drop(client);
                let stale = std::mem::take(&mut self.state().idle);
                for _ in stale {
                    self.release();
                }
                let mut fresh = self.get()?;
                f(&mut fresh).map_err(pg_error)
            }
            other => other.map_err(pg_error),
        }
    }

    fn get(&self) -> Result<Pooled<'_>> {
        let mut state = self.state();
        loop {
            if let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < MAX_READERS {
                state.open += 1;
                break;
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        drop(state);
        match connect(&self.config) {
            Ok(client) => Ok(Pooled {
                pool: self,
                client: Some(client),
            }),
            Err(e) => {
                self.release();
                Err(e)
            }
        }
    }

    /// One connection fewer is open.
    fn release(&self) {
        self.state().open -= 1;
        self.freed.notify_one();
    }
}

impl Pooled<'_> {
    /// Closes the connection instead of keeping it.
    fn broken(&mut self) {
        if self.client.take().is_some() {
            self.pool.release();
        }
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() {
            self.pool.release();
        } else {
            self.pool.state().idle.push(client);
            self.pool.freed.notify_one();
        }
    }
}

/// The event log in PostgreSQL. Cheap to clone; clones share one writer and one pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL without its password, for messages.
    what: String,
    pool: Pool,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    metrics: StoreMetrics,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has answered every queued job.
        self.jobs.take();
        if let Ok(mut handle) = self.writer.lock()
            && let Some(handle) = handle.take()
        {
            let _ = handle.join();
        }
    }
}

impl PgStore {
    /// Opens the log in the PostgreSQL database the URL names (`postgres://…`),
    /// creating its tables when absent.
    ///
    /// Fails with [`Error::Incompatible`] when a newer chronicle made the schema, with
    /// [`Error::Integrity`] when the end of the log does not chain or disagrees with
    /// the head, and with [`Error::Storage`] when the server cannot be reached.
    pub fn open(url: &str) -> Result<PgStore> {
        let config = postgres::Config::from_str(url).map_err(|e| Error::Invalid {
            index: None,
            error: crate::model::ValidationError {
                line: None,
                field: None,
                message: format!("not a PostgreSQL connection URL ({e})"),
            },
        })?;
        let what = describe(&config);
        let mut client = connect(&config).map_err(|e| {
            Error::Storage(format!("connecting to the PostgreSQL log at {what}: {e}"))
        })?;
        schema::migrate(&mut client, &what)?;
        check_tail(&mut client)?;
        let statements = Statements::prepare(&mut client)?;
        let connection = writer::Connection {
            config: config.clone(),
            client: Some((client, statements)),
        };
        let (jobs, queue) = mpsc::channel();
        let metrics = StoreMetrics::default();
        let writer_metrics = metrics.clone();
        let writer = std::thread::Builder::new()
            .name("chronicle-pg-writer".into())
            .spawn(move || writer::run(connection, queue, writer_metrics))
            .map_err(|e| Error::Storage(format!("starting the writer thread: {e}")))?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                what,
                pool: Pool::new(config),
                jobs: Some(jobs),
                writer: Mutex::new(Some(writer)),
                metrics,
            }),
        })
    }

    /// Where the log is, without the password: `host:port/dbname`.
    pub fn describe(&self) -> &str {
        &self.inner.what
    }

    fn submit(&self, events: Vec<ProposedEvent>, commit: bool) -> Result<Vec<AppendedEvent>> {
        super::writer::submit(self.inner.jobs.as_ref(), events, commit)
    }

    /// One page of a read: up to [`PAGE`] events matching the filter from `from` on.
    fn page(
        &self,
        filter: &ReadFilter,
        from: Position,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let mut sql =
            String::from("SELECT position, body FROM chronicle_events WHERE position >= $1");
        let from = to_i64(from.0)?;
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(from)];
        let order = if let Some(stream) = &filter.stream {
            params.push(Box::new(stream.as_str().to_owned()));
            sql.push_str(&format!(" AND stream = ${}", params.len()));
            params.push(Box::new(to_i64(from_version)?));
            sql.push_str(&format!(" AND version >= ${}", params.len()));
            "version"
        } else {
            "position"
        };
        if let Some(category) = &filter.category {
            params.push(Box::new(category.clone()));
            sql.push_str(&format!(" AND category = ${}", params.len()));
        }
        if let Some(event_type) = filter.event_type {
            params.push(Box::new(event_type.as_str()));
            sql.push_str(&format!(" AND event_type = ${}", params.len()));
        }
        sql.push_str(&format!(" ORDER BY {order} LIMIT {PAGE}"));
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p).collect();
        let rows = self
            .inner
            .pool
            .get()?
            .query(&sql, &params)
            .map_err(pg_error)?;
        rows.iter()
            .map(|row| decode_event(Position(to_u64(row.get(0))?), row.get(1)))
            .collect()
    }
}

/// `host:port/dbname` of a connection's settings, for messages (never the password).
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = config
        .get_ports()
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{host}:{port}/{db}")
}

/// The head row must agree with the last event, and the last [`TAIL_CHECKED`] events
/// must chain (as the sled log checks on open); `verify` walks the rest.
///
/// Other servers may append meanwhile, so everything is read in one snapshot.
fn check_tail(client: &mut postgres::Client) -> Result<()> {
    let inspect =
        "run `chronicle verify` to find the first bad position, and restore from an export";
    let mut client = snapshot(client)?;
    let head = client
        .query_one(
            "SELECT position, hash, (SELECT coalesce(max(position), 0) FROM chronicle_events) FROM chronicle_head",
            &[],
        )
        .map_err(pg_error)?;
    let head_position = to_u64(head.get(0))?;
    let last = to_u64(head.get(2))?;
    if last != head_position {
        return Err(Error::Integrity(format!(
            "the log ends at position {last} but its head says {head_position}; {inspect}"
        )));
    }
    if head_position == 0 {
        return Ok(());
    }
    let first = head_position.saturating_sub(TAIL_CHECKED).max(1);
    let rows = client
        .query(
            "SELECT position, body FROM chronicle_events WHERE position >= $1 ORDER BY position",
            &[&to_i64(first)?],
        )
        .map_err(pg_error)?;
    let mut previous: Option<[u8; 32]> = (first == 1).then_some(GENESIS_HASH);
    for (expected, row) in (first..).zip(rows.iter()) {
        let position = to_u64(row.get(0))?;
        if position != expected {
            return Err(Error::Integrity(format!(
                "position {expected} is missing; {inspect}"
            )));
        }
        let event = decode_event(Position(position), row.get(1))?;
        if let Some(previous) = previous
            && event.chain_hash(&previous) != event.hash
        {
            return Err(Error::Integrity(format!(
                "the hash chain is broken at position {position}; {inspect}"
            )));
        }
        previous = Some(parse_hash(&event.hash).unwrap_or_default());
    }
    let head_hash: Vec<u8> = head.get(1);
    if previous.map(|p| p.to_vec()) != Some(head_hash) {
        return Err(Error::Integrity(format!(
            "the head row does not match the last event's hash; {inspect}"
        )));
    }
    client.commit().map_err(pg_error)
}

/// A read-only transaction that sees one snapshot of the log for all its statements,
/// so that reads made in several statements agree while others append.
fn snapshot(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg_error)
}

/// The head row (`position, hash, recorded_micros`) as a [`Head`].
fn head_from_row(row: &postgres::Row) -> Result<Head> {
    let position = Position(to_u64(row.get(0))?);
    let hash: Vec<u8> = row.get(1);
    let micros: Option<i64> = row.get(2);
    Ok(Head {
        position,
        hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        recorded: if position.0 == 0 {
            None
        } else {
            micros.and_then(DateTime::from_timestamp_micros)
        },
    })
}

/// A read in pages of [`PAGE`] events.
struct Pages<'a> {
    store: &'a PgStore,
    filter: ReadFilter,
    next_position: Position,
    next_version: u64,
    buffer: VecDeque<RecordedEvent>,
    done: bool,
}

impl Iterator for Pages<'_> {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Result<RecordedEvent>> {
        if self.buffer.is_empty() && !self.done {
            match self
                .store
                .page(&self.filter, self.next_position, self.next_version)
            {
                Ok(page) => {
                    self.done = i64::try_from(page.len()).map_or(true, |n| n < PAGE);
                    if let Some(last) = page.last() {
                        self.next_position = Position(last.position.0 + 1);
                        self.next_version = last.version.0 + 1;
                    }
                    self.buffer = page.into();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

impl EventStore for PgStore {
    fn append(&self, events: Vec<ProposedEvent>) -> Result<Vec<AppendedEvent>> {
        self.submit(events, true)
    }

    fn check(&self, events: Vec<ProposedEvent>) -> Result<()> {
        self.submit(events, false).map(|_| ())
    }

    fn read(&self, filter: &ReadFilter) -> Events<'_> {
        Box::new(Pages {
            store: self,
            filter: filter.clone(),
            next_position: filter.from.unwrap_or(Position(1)),
            next_version: filter.from_version.unwrap_or(Version(1)).0,
            buffer: VecDeque::new(),
            done: false,
        })
    }

    fn get(&self, position: Position) -> Result<Option<RecordedEvent>> {
        let at = to_i64(position.0)?;
        let row = self.inner.pool.read(|c| {
            c.query_opt(
                "SELECT body FROM chronicle_events WHERE position = $1",
                &[&at],
            )
        })?;
        row.map(|row| decode_event(position, row.get(0)))
            .transpose()
    }

    fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>> {
        let row = self.inner.pool.read(|c| {
            c.query_one(
                "SELECT max(version) FROM chronicle_events WHERE stream = $1",
                &[&stream.as_str()],
            )
        })?;
        let version: Option<i64> = row.get(0);
        version.map(|v| to_u64(v).map(Version)).transpose()
    }

    fn head(&self) -> Result<Head> {
        let row = self.inner.pool.read(|c| {
            c.query_one(
                "SELECT position, hash, recorded_micros FROM chronicle_head",
                &[],
            )
        })?;
        head_from_row(&row)
    }

    fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    fn stats(&self) -> Result<Stats> {
        // One snapshot, so that the counts agree with the head while others append.
        let (head, per_type, row) = self.inner.pool.read(|c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let head = tx.query_one(
                "SELECT position, hash, recorded_micros FROM chronicle_head",
                &[],
            )?;
            let per_type = tx.query(
                "SELECT event_type, count(*) FROM chronicle_events GROUP BY event_type ORDER BY event_type",
                &[],
            )?;
            let row = tx.query_one(
                "SELECT (SELECT count(DISTINCT stream) FROM chronicle_events),
                        pg_total_relation_size('chronicle_events')
                        + pg_total_relation_size('chronicle_head')
                        + pg_total_relation_size('chronicle_migrations')",
                &[],
            )?;
            tx.commit()?;
            Ok((head, per_type, row))
        })?;
        let head = head_from_row(&head)?;
        let per_type = per_type
            .iter()
            .map(|row| Ok((row.get::<_, String>(0), to_u64(row.get(1))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Stats {
            events: head.position.0,
            streams: to_u64(row.get(0))?,
            per_type,
            head,
            size_on_disk: to_u64(row.get(1))?,
        })
    }
}
