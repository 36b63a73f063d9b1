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
//!   refused with [`Error::Incompatible`];
//! - no call waits on PostgreSQL without bound: opening a connection and every
//!   statement wait at most [`STALL_BOUND`] ([`SLOW_BOUND`] for `stats` and
//!   migrations), after which the connection is dropped and the call fails with
//!   [`Error::Unavailable`] (see `client`). An append is never acknowledged unless its
//!   `COMMIT` returned; one whose `COMMIT` broke or stalled may have been written and
//!   fails with [`Error::Indeterminate`], naming its event ids, so that a retry with
//!   them (idempotent) settles it; any other failed append wrote nothing and says so;
//! - a session left idle inside a transaction (its client stalled or vanished
//!   mid-append, holding the head row's lock) is ended by the server after
//!   [`IDLE_IN_TRANSACTION`], so other writers wait no longer than that for the head.
//!
//! Appends go through one writer thread per store (`writer`), which commits every
//! append queued behind the first in one transaction (group commit). Reads use a small
//! pool of connections and read the log in pages, never whole. The client
//! (`client::Client`) is synchronous over `tokio-postgres`, as the `postgres` crate
//! is, with a bound on every wait: the [`EventStore`] trait is synchronous and the
//! writer is a plain thread. It runs its own small tokio runtime per connection, so it
//! must not be called on an async task; the server calls the store on tokio's blocking
//! pool (`spawn_blocking`), where it works. No TLS: the log is meant to be on loopback
//! or a trusted network for now.

mod client;
mod follow;
mod schema;
mod writer;

pub use client::{SLOW_BOUND, STALL_BOUND};

pub use follow::HeadFollower;

pub use schema::SCHEMA_VERSION;

use super::rules::{IdInfo, LogIndex};
use super::sled_store::Checker;
use super::writer::Job;
use super::{AppendedEvent, EventStore, Events, Head, LogRead, ReadFilter, Stats, StoreMetrics};
use crate::model::event::to_hex;
use crate::model::{Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::{Error, Result};
use chrono::DateTime;
use client::{Client, Failure, Session};
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;

/// Events fetched per query when reading.
const PAGE: i64 = 500;

/// Most connections a store opens for reads (the writer has one more).
const MAX_READERS: usize = 4;

/// A failure reported by PostgreSQL or the connection to it.
fn pg_error(e: impl Into<Failure>) -> Error {
    let e = e.into();
    // A closed connection, a reset or refused one (an I/O error), one that stopped
    // answering, or a server shutting down: the server, not the request, is the trouble.
    let io = matches!(&e, Failure::Pg(p)
        if std::error::Error::source(p).is_some_and(|c| c.is::<std::io::Error>()));
    if e.lost_connection() || io || is_fatal(&e) {
        return unreachable(&e);
    }
    Error::Storage(format!("postgresql: {}", pg_detail(&e)))
}

/// The log's server cannot be reached, dropped the connection, or stopped answering:
/// nothing was written by the call that failed, and the same call may succeed once a
/// server is back.
fn unreachable(e: &Failure) -> Error {
    Error::Unavailable(format!(
        "cannot reach the PostgreSQL log ({}); retry later (a write that failed this way was not made)",
        pg_detail(e)
    ))
}

/// What PostgreSQL or the connection said, with the cause the client's own message
/// leaves out ("db error", "error connecting to server").
fn pg_detail(e: &Failure) -> String {
    if let Failure::Pg(e) = e
        && let Some(db) = e.as_db_error()
    {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    e.to_string()
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Storage(format!("{n} is too large for PostgreSQL")))
}

fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n)
        .map_err(|_| Error::Integrity(format!("the PostgreSQL log holds a negative number ({n})")))
}

/// The stored form of an event: the bytes the chain hash covers.
fn decode_event(position: Position, body: &str) -> Result<RecordedEvent> {
    serde_json::from_str(body).map_err(|e| {
        Error::Integrity(format!(
            "the event at position {position} cannot be read ({e}); run `chronicle verify`"
        ))
    })
}

/// The server ends a session that stays idle inside a transaction this long (set on
/// every connection): a client that stalled or vanished mid-append then holds the head
/// row's lock, which every writer of the log waits for, no longer than this.
/// chronicle's own transactions never wait between statements beyond deciding a group.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// Opens a connection with the settings every connection of the store has, within
/// [`STALL_BOUND`]: acknowledge only what the server has flushed, whatever its
/// default, and [`IDLE_IN_TRANSACTION`].
fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let mut client = client::connect(config, STALL_BOUND).map_err(|e| unreachable(&e))?;
    client
        .batch_execute(&session_settings())
        .map_err(pg_error)?;
    Ok(client)
}

fn session_settings() -> String {
    format!(
        "SET synchronous_commit = on; SET idle_in_transaction_session_timeout = {}",
        IDLE_IN_TRANSACTION.as_millis()
    )
}

/// The writer's statements, prepared once per connection.
struct Statements {
    lock_head: tokio_postgres::Statement,
    stream_version: tokio_postgres::Statement,
    by_id: tokio_postgres::Statement,
    by_ids: tokio_postgres::Statement,
    stream_versions: tokio_postgres::Statement,
    stream_events: tokio_postgres::Statement,
    insert_events: tokio_postgres::Statement,
    move_head: tokio_postgres::Statement,
    notify: tokio_postgres::Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements> {
        let mut p = |sql: &str| client.prepare(sql).map_err(pg_error);
        Ok(Statements {
            lock_head: p("SELECT position, hash, recorded_micros FROM chronicle_head FOR UPDATE")?,
            stream_version: p(
                "SELECT coalesce(max(version), 0) FROM chronicle_events WHERE stream = $1",
            )?,
            by_id: p("SELECT position, version, digest, body FROM chronicle_events WHERE id = $1")?,
            by_ids: p(
                "SELECT position, version, digest, body, id FROM chronicle_events WHERE id = ANY($1)",
            )?,
            stream_versions: p(
                "SELECT stream, max(version) FROM chronicle_events WHERE stream = ANY($1) GROUP BY stream",
            )?,
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
            notify: p("SELECT pg_notify('chronicle_head', $1)")?,
        })
    }
}

/// An error after which the server closes the connection (as when it shuts down or
/// an administrator ends the session).
fn is_fatal(e: &Failure) -> bool {
    matches!(e, Failure::Pg(e) if e
        .as_db_error()
        .is_some_and(|d| matches!(d.severity(), "FATAL" | "PANIC")))
}

/// Connections for reads: at most [`MAX_READERS`] open at once, opened on demand and
/// kept while idle; a read waits for one to be free, for at most [`STALL_BOUND`]. Each
/// read holds its connection for one query (a page of a long read), so no read holds
/// one for long.
struct Pool {
    config: tokio_postgres::Config,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Client>,
    /// Connections open, idle or in use.
    open: usize,
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Pool {
    fn new(config: tokio_postgres::Config) -> Pool {
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
    /// other idle connections are likely stale too, and are let go. A read that got no
    /// answer within the bound is not run again (another connection would likely wait
    /// as long): it fails as [`Error::Unavailable`], and the idle connections, which
    /// likely go the same stalled way, are let go too.
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut client = self.get()?;
        match f(&mut client) {
            Err(e) if e.stalled() => {
                client.broken();
                drop(client);
                self.forget_idle();
                Err(pg_error(e))
            }
            Err(e) if e.lost_connection() || client.is_closed() || is_fatal(&e) => {
                client.broken();
                drop(client);
                self.forget_idle();
                let mut fresh = self.get()?;
                let again = f(&mut fresh);
                if again.as_ref().is_err_and(Failure::stalled) {
                    fresh.broken();
                    drop(fresh);
                    self.forget_idle();
                }
                again.map_err(pg_error)
            }
            other => other.map_err(pg_error),
        }
    }

    /// Closes the idle connections.
    fn forget_idle(&self) {
        let stale = std::mem::take(&mut self.state().idle);
        for _ in stale {
            self.release();
        }
    }

    fn get(&self) -> Result<Pooled<'_>> {
        let deadline = Instant::now() + STALL_BOUND;
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
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Unavailable(format!(
                    "all {MAX_READERS} connections to the PostgreSQL log stayed busy for {} s; retry later",
                    STALL_BOUND.as_secs()
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
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
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
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
    durable: Arc<Durable>,
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
        PgStore::open_as(url, false)
    }

    /// Opens the log even when the end of its hash chain is broken, to find out what
    /// is wrong (`verify`, `log`, `export`), as [`super::SledStore::open_to_inspect`]
    /// does. Not for writing.
    pub fn open_to_inspect(url: &str) -> Result<PgStore> {
        PgStore::open_as(url, true)
    }

    fn open_as(url: &str, inspect: bool) -> Result<PgStore> {
        let config = parse_url(url)?;
        let what = describe(&config);
        let mut client = client::connect(&config, STALL_BOUND)
            .and_then(|mut client| {
                client.batch_execute(&session_settings())?;
                Ok(client)
            })
            .map_err(|e| {
                // chronicle makes its tables, not the database: say how to make it.
                let missing = matches!(&e, Failure::Pg(e) if e.as_db_error().is_some_and(|d| {
                    d.code() == &tokio_postgres::error::SqlState::INVALID_CATALOG_NAME
                }));
                let next = if missing {
                    format!(
                        "create the database first (`createdb {}`, or `CREATE DATABASE` as a user who may); chronicle then makes its tables",
                        config.get_dbname().unwrap_or("NAME")
                    )
                } else {
                    "check that the server is up and the URL's host, port, user, password and database".into()
                };
                Error::Storage(format!(
                    "cannot connect to the PostgreSQL log at {what} ({}); {next}",
                    pg_detail(&e)
                ))
            })?;
        // Migrations may wait for another process's, or build an index.
        client.with_bound(SLOW_BOUND, |client| schema::migrate(client, &what))?;
        let head = match check_tail(&mut client) {
            Ok(head) => head,
            Err(Error::Integrity(_)) if inspect => {
                let row = client
                    .query_one("SELECT position FROM chronicle_head", &[])
                    .map_err(pg_error)?;
                Position(to_u64(row.get(0))?)
            }
            Err(e) => return Err(e),
        };
        let durable = Arc::new(Durable::new(head));
        let statements = Statements::prepare(&mut client)?;
        let connection = writer::Connection::new(config.clone(), client, statements);
        let (jobs, queue) = mpsc::channel();
        let metrics = StoreMetrics::default();
        let (writer_metrics, writer_durable) = (metrics.clone(), durable.clone());
        let writer = std::thread::Builder::new()
            .name("chronicle-pg-writer".into())
            .spawn(move || writer::run(connection, queue, writer_metrics, writer_durable))
            .map_err(|e| Error::Storage(format!("starting the writer thread: {e}")))?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                what,
                pool: Pool::new(config),
                durable,
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

    /// Watches the last durable position this process knows of: it moves after each
    /// of this store's commits, and, while a [`HeadFollower`] runs, after commits of
    /// other processes and hosts too. Live subscriptions wait on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Position> {
        self.inner.durable.head.subscribe()
    }

    /// Calls `listener` with the new durable head each time it moves (see
    /// [`PgStore::subscribe`]); what keeps a projector following this log.
    pub fn on_durable(&self, listener: impl Fn(Position) + Send + Sync + 'static) {
        self.inner.durable.listen(Box::new(listener));
    }

    /// Starts following the commits of other processes and hosts (see
    /// [`HeadFollower`]) until the follower is dropped.
    pub fn follow(&self, poll: std::time::Duration) -> Result<HeadFollower> {
        HeadFollower::start(self.clone(), poll)
    }

    /// Read connections: how many are open and how many are in use now.
    pub fn pool_state(&self) -> (usize, usize) {
        let state = self.inner.pool.state();
        (state.open, state.open - state.idle.len())
    }

    /// The most read connections the store opens.
    pub const MAX_READ_CONNECTIONS: usize = MAX_READERS;

    /// A dry run of many appends in a row against the log as it is (see
    /// [`crate::store::SledStore::checker`]): what `import` checks a whole input with.
    pub fn checker(&self) -> Result<Checker<'_>> {
        let row = self.inner.pool.read(|c| {
            c.query_one(
                "SELECT position, hash, recorded_micros FROM chronicle_head",
                &[],
            )
        })?;
        let tail = writer::tail_from_row(&row)?;
        Ok(Checker::new(Box::new(PoolIndex(&self.inner.pool)), tail))
    }

    /// Walks the log from position `from` on, in position order, in pages, calling `visit` with each event
    /// and whether its row's columns (`id`, `stream`, `version`, `category`,
    /// `event_type`, `digest`) agree with its stored body. Stops early when `visit`
    /// returns `false`.
    pub(crate) fn walk(
        &self,
        from: u64,
        visit: &mut dyn FnMut(Result<RecordedEvent>, Option<String>) -> bool,
    ) -> Result<()> {
        let mut from = to_i64(from)?;
        loop {
            let rows = self.inner.pool.read(|c| {
                c.query(
                    "SELECT position, body, id, stream, version, category, event_type, digest
                     FROM chronicle_events WHERE position >= $1 ORDER BY position LIMIT $2",
                    &[&from, &PAGE],
                )
            })?;
            for row in &rows {
                let position: i64 = row.get(0);
                from = position.saturating_add(1);
                let event = to_u64(position).and_then(|p| decode_event(Position(p), row.get(1)));
                let problem = event.as_ref().ok().and_then(|e| columns_problem(e, row));
                if !visit(event, problem) {
                    return Ok(());
                }
            }
            if i64::try_from(rows.len()).map_or(true, |n| n < PAGE) {
                return Ok(());
            }
        }
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
        let rows = self.inner.pool.read(|c| c.query(&sql, &params))?;
        rows.iter()
            .map(|row| decode_event(Position(to_u64(row.get(0))?), row.get(1)))
            .collect()
    }
}

/// `host:port/dbname` of a connection's settings, for messages (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
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

/// [`super::verify::check_tail`] of the PostgreSQL log: its head row, its last
/// position and its last events, read in one snapshot (other servers may append
/// meanwhile). Returns where the log ends.
fn check_tail(client: &mut Client) -> Result<Position> {
    let mut client = snapshot(client)?;
    let head = client
        .query_one(
            "SELECT position, hash, (SELECT coalesce(max(position), 0) FROM chronicle_events) FROM chronicle_head",
            &[],
        )
        .map_err(pg_error)?;
    let head_position = to_u64(head.get(0))?;
    let last = to_u64(head.get(2))?;
    let head_hash: Vec<u8> = head.get(1);
    let rows = match last == head_position && head_position > 0 {
        true => client
            .query(
                "SELECT position, body FROM chronicle_events WHERE position >= $1 ORDER BY position",
                &[&to_i64(super::verify::tail_start(head_position))?],
            )
            .map_err(pg_error)?,
        false => Vec::new(),
    };
    let tail = rows.iter().map(|row| {
        let position = to_u64(row.get(0))?;
        decode_event(Position(position), row.get(1))
    });
    super::verify::check_tail(last, head_position, &head_hash, tail)?;
    client.commit().map_err(pg_error)?;
    Ok(Position(head_position))
}

/// A read-only transaction that sees one snapshot of the log for all its statements,
/// so that reads made in several statements agree while others append.
fn snapshot(client: &mut Client) -> Result<client::Transaction<'_>> {
    client.snapshot().map_err(pg_error)
}

/// The head row (`position, hash, recorded_micros`) as a [`Head`].
fn head_from_row(row: &tokio_postgres::Row) -> Result<Head> {
    let position = Position(to_u64(row.get(0))?);
    let hash: Vec<u8> = row.get(1);
    let micros: Option<i64> = row.get(2);
    Ok(Head {
        position,
        hash: to_hex(&hash),
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

    /// One lookup in the `(category, position)` index.
    fn has_category(&self, category: &str) -> Result<bool> {
        let row = self.inner.pool.read(|c| {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM chronicle_events WHERE category = $1)",
                &[&category],
            )
        })?;
        Ok(row.get(0))
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
        // Counting every row takes longer as the log grows: the slow bound.
        let (head, per_type, row) = self.inner.pool.read(|c| c.with_bound(SLOW_BOUND, |c| {
            let mut tx = c.snapshot()?;
            let head = tx.query_one(
                "SELECT position, hash, recorded_micros FROM chronicle_head",
                &[],
            )?;
            let per_type = tx.query(
                "SELECT event_type, count(*) FROM chronicle_events GROUP BY event_type ORDER BY event_type",
                &[],
            )?;
            let row = tx.query_one(
                &format!("SELECT (SELECT count(DISTINCT stream) FROM chronicle_events), {SIZE_ON_DISK}"),
                &[],
            )?;
            tx.commit()?;
            Ok((head, per_type, row))
        }))?;
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
            // No views of its own: a `Store` adds those of its process.
            views_size_on_disk: 0,
        })
    }

    fn size_on_disk(&self) -> Result<u64> {
        let row = self
            .inner
            .pool
            .read(|c| c.query_one(&format!("SELECT {SIZE_ON_DISK}"), &[]))?;
        to_u64(row.get(0))
    }
}

/// The bytes of the log's tables and their indexes, as an SQL expression.
const SIZE_ON_DISK: &str = "pg_total_relation_size('chronicle_events')
    + pg_total_relation_size('chronicle_head')
    + pg_total_relation_size('chronicle_migrations')";

impl LogRead for PgStore {
    fn range(&self, from: Position, to: Position) -> Events<'_> {
        let filter = ReadFilter {
            from: Some(from),
            ..ReadFilter::default()
        };
        Box::new(
            self.read(&filter)
                .take_while(move |e| e.as_ref().map_or(true, |e| e.position <= to)),
        )
    }
}

/// Told of each new durable head.
type Listener = Box<dyn Fn(Position) + Send + Sync>;

/// The durable head as this process knows it, and who is told when it moves.
pub(super) struct Durable {
    head: tokio::sync::watch::Sender<Position>,
    listeners: Mutex<Vec<Listener>>,
}

impl Durable {
    fn new(head: Position) -> Durable {
        Durable {
            head: tokio::sync::watch::Sender::new(head),
            listeners: Mutex::new(Vec::new()),
        }
    }

    fn listen(&self, listener: Listener) {
        let head = *self.head.borrow();
        listener(head);
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    /// Records that the log is durable up to `head`; a head behind the known one (a
    /// commit read late) changes nothing.
    pub(super) fn publish(&self, head: Position) {
        let moved = self.head.send_if_modified(|known| {
            let moved = head > *known;
            if moved {
                *known = head;
            }
            moved
        });
        if moved {
            for listener in self
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                listener(head);
            }
        }
    }
}

/// The committed log as the rules read it for a dry run, through the read pool.
struct PoolIndex<'a>(&'a Pool);

impl LogIndex for PoolIndex<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        let row = self.0.read(|c| {
            c.query_one(
                "SELECT coalesce(max(version), 0) FROM chronicle_events WHERE stream = $1",
                &[&stream.as_str()],
            )
        })?;
        to_u64(row.get(0))
    }

    fn id(&self, id: &uuid::Uuid) -> Result<Option<IdInfo>> {
        let row = self.0.read(|c| {
            c.query_opt(
                "SELECT position, version, digest, body FROM chronicle_events WHERE id = $1",
                &[id],
            )
        })?;
        row.map(|row| writer::id_info(id, &row)).transpose()
    }

    fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
        let from = to_i64(from.0)?;
        let rows = self.0.read(|c| {
            c.query(
                "SELECT position, body FROM chronicle_events WHERE stream = $1 AND version >= $2 ORDER BY version",
                &[&stream.as_str(), &from],
            )
        })?;
        writer::events_from_rows(&rows)
    }
}

/// What is wrong with an event's row beside its body, if anything: the columns reads
/// and the rules rely on must say what the body says.
fn columns_problem(event: &RecordedEvent, row: &tokio_postgres::Row) -> Option<String> {
    let id: uuid::Uuid = row.get(2);
    let stream: &str = row.get(3);
    let version: i64 = row.get(4);
    let category: &str = row.get(5);
    let event_type: &str = row.get(6);
    let digest: &[u8] = row.get(7);
    let wrong = |column: &str| {
        Some(format!(
            "the row's `{column}` column disagrees with the stored event"
        ))
    };
    if id != event.id {
        wrong("id")
    } else if stream != event.stream.as_str() {
        wrong("stream")
    } else if to_u64(version).ok() != Some(event.version.0) {
        wrong("version")
    } else if category != event.stream.category() {
        wrong("category")
    } else if event_type != event.event_type.as_str() {
        wrong("event_type")
    } else if digest != event.content_digest() {
        wrong("digest")
    } else {
        None
    }
}

/// `postgres://host:port/dbname` of a connection URL, without user or password: for
/// messages, and to name the folder of a server's views. A URL PostgreSQL's client
/// cannot parse is [`Error::Invalid`].
pub fn describe_url(url: &str) -> Result<String> {
    parse_url(url).map(|config| describe(&config))
}

/// The same connection URL naming database `name` instead: what the tests and the
/// benchmark use to give each run a database of its own on one server.
pub fn url_with_database(url: &str, name: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Invalid {
        index: None,
        error: crate::model::ValidationError {
            line: None,
            field: None,
            message: format!(
                "not a PostgreSQL connection URL ({e}); write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ),
        },
    })?;
    if config.get_dbname().is_none_or(str::is_empty) {
        // libpq would take the user's name for it, which no message would explain.
        return Err(Error::Invalid {
            index: None,
            error: crate::model::ValidationError {
                line: None,
                field: None,
                message: "the PostgreSQL URL names no database; write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".to_owned(),
            },
        });
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        // libpq would try its local socket; this client has no default to try.
        return Err(Error::Invalid {
            index: None,
            error: crate::model::ValidationError {
                line: None,
                field: None,
                message: "the PostgreSQL URL names no host; write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (a local socket's folder as HOST, percent-encoded: postgres://USER@%2Fvar%2Frun%2Fpostgresql/DATABASE)".to_owned(),
            },
        });
    }
    Ok(with_network_defaults(config))
}

/// How long a connection attempt to one host may take at the TCP level (unless the URL
/// says `connect_timeout`), so that a host of a multi-host URL that drops packets does
/// not use up the whole [`STALL_BOUND`] of the attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The operating system's own checks of a connection, unless the URL sets them: TCP
/// keepalives after 10 s of silence, and data left unacknowledged for 20 s ends the
/// connection (`tcp_user_timeout`). They end a connection whose peer is gone (packets
/// dropped), even while nothing is asked of it (an idle read connection, the `LISTEN`
/// one); they cannot see a stall where something in between keeps acknowledging, which
/// [`STALL_BOUND`] covers for every statement.
fn with_network_defaults(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(20));
    }
    // The client's default idle time before a keepalive is two hours.
    if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(2);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn a_url_names_another_database_and_keeps_the_rest() {
        for (url, expected) in [
            (
                "postgres://u:p@h:5432/db?sslmode=disable",
                "postgres://u:p@h:5432/other?sslmode=disable",
            ),
            ("postgres://h:1", "postgres://h:1/other"),
            ("postgres://h/db", "postgres://h/other"),
            (
                "postgresql://a,b/db?target_session_attrs=read-write",
                "postgresql://a,b/other?target_session_attrs=read-write",
            ),
        ] {
            assert_eq!(url_with_database(url, "other"), expected);
        }
    }
}
