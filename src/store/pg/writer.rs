//! The PostgreSQL log's writer thread: the queue, group commit, and one transaction
//! per group.
//!
//! As in the sled writer (`store::writer`), appends from every thread of a process
//! queue on one channel; the writer takes the first waiting job and every job queued
//! behind it, and after a group of several appends waits a little (at most half a
//! commit) for that group's writers to append again (`gather`), so that concurrent
//! writers share one commit instead of alternating between two. Each group is one
//! transaction: it locks the head row (`SELECT … FOR UPDATE`), so that writers of
//! other processes and hosts wait for it, and reads what the group's events name, in
//! one pipeline with the `BEGIN` (one round trip); decides every job with the same
//! pure rules (`store::rules`) over a [`LogIndex`] that queries the log inside the
//! transaction; then inserts the accepted events, moves the head and commits with
//! `synchronous_commit = on`, in a second pipeline. Only after the `COMMIT` returns are the jobs
//! answered. Positions are the head's plus one, under the head's lock, so they have no
//! gaps across writers; a failed transaction writes nothing, and its jobs get an error.
//!
//! Every pipeline waits at most the connection's bound (`client`). When one does not
//! answer, the connection is dropped and the group answered: with
//! [`Error::Unavailable`] ("nothing was written") when the `COMMIT` was not sent yet,
//! with [`Error::Indeterminate`] and the group's event ids when it was (it may have
//! committed: the second pipeline carries the `COMMIT`, so a stall or a broken
//! connection anywhere in it is answered so). The appends queued behind fail at once while the writer waits to
//! reconnect, so no append waits much longer than the bound.

use super::client::{Client, Failure, Reply, Request, Session};
use super::{Durable, STALL_BOUND, Statements, pg_error, to_i64, to_u64};
use crate::model::event::GENESIS_HASH;
use crate::model::{EventData, Position, RecordedEvent, StreamId, Version};
use crate::store::StoreMetrics;
use crate::store::keys::IdEntry;
use crate::store::rules::{IdInfo, LogIndex, Pending, Record, Tail};
use crate::store::writer::{Answer, Job, MAX_GROUP_JOBS, decide};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The longest the writer waits for the writers of the last group to append again
/// (see [`gather`]).
const MAX_GATHER: Duration = Duration::from_millis(2);

/// Most rows in one `INSERT … SELECT unnest(…)`.
const ROWS_PER_INSERT: usize = 1000;

/// The writer's connection, opened again after it breaks. While the server cannot be
/// reached, connecting is tried again after a pause that doubles from
/// [`FIRST_BACKOFF`] to [`MAX_BACKOFF`]; appends in between fail at once with the last
/// error, instead of each waiting on a connection attempt. With a multi-host URL
/// (`target_session_attrs=read-write`) each attempt finds whichever host is the primary.
pub(super) struct Connection {
    config: tokio_postgres::Config,
    client: Option<(Client, Statements)>,
    /// After a failed attempt: when to try again, the pause after that, and the error.
    retry: Option<(Instant, Duration, Error)>,
}

/// The first pause after a failed connection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Connection {
    pub fn new(config: tokio_postgres::Config, client: Client, statements: Statements) -> Self {
        Connection {
            config,
            client: Some((client, statements)),
            retry: None,
        }
    }

    fn get(&mut self) -> Result<&mut (Client, Statements)> {
        if self.client.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.forget();
        }
        if self.client.is_none() {
            if let Some((at, _, e)) = &self.retry
                && Instant::now() < *at
            {
                return Err(copy(e));
            }
            match super::connect(&self.config)
                .and_then(|mut c| Statements::prepare(&mut c).map(|s| (c, s)))
            {
                Ok(opened) => {
                    self.client = Some(opened);
                    self.retry = None;
                }
                Err(e) => {
                    let pause = self
                        .retry
                        .as_ref()
                        .map_or(FIRST_BACKOFF, |(_, p, _)| (*p * 2).min(MAX_BACKOFF));
                    self.retry = Some((Instant::now() + pause, pause, copy(&e)));
                    return Err(e);
                }
            }
        }
        Ok(self.client.as_mut().expect("set just above"))
    }

    /// Forgets the connection, so that the next append opens another. After a stall,
    /// not at once: the appends queued behind the one that waited fail at once instead
    /// of waiting as long again on a new connection, and the next attempt comes after
    /// the first pause.
    fn forget(&mut self) {
        if let Some((client, _)) = self.client.take()
            && client.stalled()
        {
            self.retry = Some((
                Instant::now() + FIRST_BACKOFF,
                FIRST_BACKOFF,
                Error::Unavailable(format!(
                    "the PostgreSQL log did not answer within {} s; nothing was written, retry later",
                    STALL_BOUND.as_secs()
                )),
            ));
        }
    }

    /// Forgets a connection that failed (see [`Connection::forget`]).
    fn broken(&mut self) {
        self.forget();
    }
}

/// The same error again, for the appends that fail while the writer waits to reconnect.
fn copy(e: &Error) -> Error {
    match e {
        Error::Integrity(m) => Error::Integrity(m.clone()),
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::Indeterminate { message, ids } => Error::Indeterminate {
            message: message.clone(),
            ids: ids.clone(),
        },
        other => Error::Storage(other.to_string()),
    }
}

/// Runs until every sender is gone. After each commit it publishes the new head on
/// `durable`, before answering the group's appends.
pub(super) fn run(
    mut connection: Connection,
    queue: Receiver<Job>,
    metrics: StoreMetrics,
    durable: Arc<Durable>,
) {
    // Jobs that came while the last group committed, taken before its answers went out.
    let mut waiting: Vec<Job> = Vec::new();
    // How many jobs the next group may expect, and how long to wait for them.
    let mut expected: Option<(usize, Duration)> = None;
    loop {
        let mut group: Vec<Job> = if waiting.len() > MAX_GROUP_JOBS {
            waiting.drain(..MAX_GROUP_JOBS).collect()
        } else {
            std::mem::take(&mut waiting)
        };
        if group.is_empty() {
            match queue.recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        take_queued(&queue, &mut group);
        if let Some((count, wait)) = expected.take() {
            gather(&queue, &mut group, count, wait);
        }
        let size = group.len();
        let started_at = Instant::now();
        // A connection the server dropped while idle (a restart, a failover, an
        // administrator) shows only when used: if the transaction cannot even start,
        // nothing was decided or sent, so the group is tried once more on a new one.
        let mut failure = None;
        for _attempt in 0..2 {
            let jobs = std::mem::take(&mut group);
            let started = match connection.get() {
                Ok((client, statements)) => commit_group(
                    client,
                    statements,
                    jobs,
                    &metrics,
                    &durable,
                    (&queue, &mut waiting),
                ),
                Err(e) => NotStarted(jobs, e),
            };
            match started {
                Answered => {
                    failure = None;
                    // The writers just answered likely append again at once: the next
                    // group waits a little for them, beside the jobs already waiting.
                    if size > 1 {
                        let took = started_at.elapsed();
                        expected = Some((size + waiting.len(), (took / 2).min(MAX_GATHER)));
                    }
                    break;
                }
                NotStarted(jobs, e) => {
                    connection.broken();
                    group = jobs;
                    failure = Some(e);
                }
            }
        }
        if let Some(e) = failure {
            for job in group {
                // A damaged head row is not a connection problem: `copy` keeps its kind.
                let _ = job.reply.send(Err(copy(&e)));
            }
        }
    }
}

/// Moves every queued job into `waiting`.
fn take_all(queue: &Receiver<Job>, waiting: &mut Vec<Job>) {
    while let Ok(job) = queue.try_recv() {
        waiting.push(job);
    }
}

/// Moves the jobs queued behind into `group`, up to [`MAX_GROUP_JOBS`].
fn take_queued(queue: &Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP_JOBS {
        match queue.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// Waits up to `wait` for `group` to hold `count` jobs (at most [`MAX_GROUP_JOBS`]).
///
/// After a group of several appends is answered, its writers usually append again
/// within a fraction of a commit; without this wait the next group would start with
/// the few already queued, and the others would wait for it to commit before theirs
/// starts, so groups would alternate between two halves of the writers, each paying
/// a whole commit. The wait is bounded by half the last commit's time (at most
/// [`MAX_GATHER`]) and ends as soon as the expected jobs are there: the writers of the
/// last group plus those that queued while it committed. After a group of one (a lone
/// writer), there is no wait.
fn gather(queue: &Receiver<Job>, group: &mut Vec<Job>, count: usize, wait: Duration) {
    let count = count.min(MAX_GROUP_JOBS);
    let deadline = Instant::now() + wait;
    while group.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match queue.recv_timeout(left) {
            Ok(job) => {
                group.push(job);
                take_queued(queue, group);
            }
            Err(_) => break,
        }
    }
}

/// What became of a group.
enum Outcome {
    /// Every job was answered.
    Answered,
    /// The transaction could not start: no job was answered and nothing was written.
    NotStarted(Vec<Job>, Error),
}
use Outcome::{Answered, NotStarted};

/// The committed log as the rules read it: queries inside the group's transaction,
/// which holds the head's lock, so they see every event committed before it. The ids
/// and stream versions the group's events name are fetched up front, in the same round
/// trip as the `BEGIN` and the head's lock, which shortens the time the head stays
/// locked; anything else is asked for when the rules ask.
struct PgIndex<'a> {
    client: RefCell<&'a mut Client>,
    statements: &'a Statements,
    known: Known,
}

/// What the group's events name, read up front: their ids with their committed rows,
/// and their streams with their committed versions.
struct Known {
    ids: HashMap<Uuid, Option<IdInfo>>,
    versions: HashMap<StreamId, u64>,
}

/// The ids and the streams a group's events name, for the queries that prefetch them:
/// each event's stream, and the streams its rules read (the entities it refers to, and a
/// statement's `about`), so that deciding asks PostgreSQL nothing more under the lock.
fn named(jobs: &[Job]) -> (Vec<Uuid>, Vec<StreamId>) {
    let events = || jobs.iter().flat_map(|j| &j.events);
    let ids: Vec<Uuid> = events().filter_map(|e| e.id).collect();
    let mut streams: Vec<StreamId> = Vec::new();
    for event in events() {
        streams.push(event.stream.clone());
        let refs = event.typed.entity_refs().into_iter();
        streams.extend(refs.map(|(_, entity)| entity.stream().clone()));
        if let EventData::StatementIssued(statement) = &event.typed {
            streams.extend(statement.about.iter().cloned());
        }
    }
    streams.sort_unstable();
    streams.dedup();
    (ids, streams)
}

/// [`Known`] from the answers to `by_ids` and `stream_versions` about what `jobs` name.
fn known(
    jobs: &[Job],
    streams: &[StreamId],
    id_rows: &[tokio_postgres::Row],
    version_rows: &[tokio_postgres::Row],
) -> Result<Known> {
    let events = || jobs.iter().flat_map(|j| &j.events);
    let mut known: HashMap<Uuid, Option<IdInfo>> =
        events().filter_map(|e| e.id).map(|id| (id, None)).collect();
    for row in id_rows {
        let id: Uuid = row.get(4);
        known.insert(id, Some(id_info(&id, row)?));
    }
    let mut versions: HashMap<StreamId, u64> = streams.iter().map(|s| (s.clone(), 0)).collect();
    for row in version_rows {
        let stream = StreamId::parse(row.get(0)).map_err(|e| {
            Error::Integrity(format!("the PostgreSQL log holds a bad stream id ({e})"))
        })?;
        versions.insert(stream, to_u64(row.get(1))?);
    }
    Ok(Known {
        ids: known,
        versions,
    })
}

impl LogIndex for PgIndex<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        if let Some(version) = self.known.versions.get(stream) {
            return Ok(*version);
        }
        let row = self
            .client
            .borrow_mut()
            .query_one(&self.statements.stream_version, &[&stream.as_str()])
            .map_err(pg_error)?;
        to_u64(row.get(0))
    }

    fn id(&self, id: &Uuid) -> Result<Option<IdInfo>> {
        if let Some(known) = self.known.ids.get(id) {
            return Ok(known.clone());
        }
        let row = self
            .client
            .borrow_mut()
            .query_opt(&self.statements.by_id, &[id])
            .map_err(pg_error)?;
        row.map(|row| id_info(id, &row)).transpose()
    }

    fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                &self.statements.stream_events,
                &[&stream.as_str(), &to_i64(from.0)?],
            )
            .map_err(pg_error)?;
        events_from_rows(&rows)
    }
}

/// An id's row (`position, version, digest, body`) as the rules read it.
pub(super) fn id_info(id: &Uuid, row: &tokio_postgres::Row) -> Result<IdInfo> {
    let position = Position(to_u64(row.get(0))?);
    let digest: Vec<u8> = row.get(2);
    let digest = digest.try_into().map_err(|_| {
        Error::Integrity(format!(
            "the content digest of event {id} (position {position}) is malformed"
        ))
    })?;
    let event = super::decode_event(position, row.get(3))?;
    Ok(IdInfo {
        entry: IdEntry {
            position,
            version: Version(to_u64(row.get(1))?),
        },
        digest: Some(digest),
        stream: event.stream,
        event_type: event.event_type,
        hash: event.hash,
        occurred: event.occurred,
    })
}

/// Rows of `position, body` as events.
pub(super) fn events_from_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<RecordedEvent>> {
    rows.iter()
        .map(|row| super::decode_event(Position(to_u64(row.get(0))?), row.get(1)))
        .collect()
}

fn commit_group(
    client: &mut Client,
    statements: &Statements,
    jobs: Vec<Job>,
    metrics: &StoreMetrics,
    durable: &Durable,
    (queue, waiting): (&Receiver<Job>, &mut Vec<Job>),
) -> Outcome {
    let started = std::time::Instant::now();
    let (tail, known) = match begin(client, statements, &jobs) {
        Ok(begun) => begun,
        Err(e) => {
            end_transaction(client);
            return NotStarted(jobs, e);
        }
    };
    let mut answers = Vec::with_capacity(jobs.len());
    let result = decide_and_write(client, statements, tail, jobs, known, &mut answers, metrics);
    let failure = result.as_ref().err();
    if let Ok(Some(head)) = result {
        durable.publish(Position(head));
    }
    match &result {
        Ok(head) => {
            metrics.appends.inc_by(answers.len() as u64);
            let events = new_events(&answers);
            if events > 0 {
                let seconds = started.elapsed().as_secs_f64();
                metrics.committed(answers.len(), events, head.unwrap_or_default(), seconds);
            }
        }
        Err(Failed::BeforeCommit(e) | Failed::AtCommit(e)) => metrics.failed(answers.len(), e),
    }
    // What queued while this group committed, before its writers are answered: they
    // are not among the jobs that will come back (see `gather`).
    take_all(queue, waiting);
    for (reply, answer) in answers {
        let _ = reply.send(match &failure {
            None => Ok(answer),
            Some(Failed::BeforeCommit(e @ Error::Unavailable(_))) => Err(copy(e)),
            Some(Failed::BeforeCommit(e)) => Err(Error::Storage(format!(
                "the append could not be written to PostgreSQL ({e}); nothing was written"
            ))),
            Some(Failed::AtCommit(e)) => Err(at_commit(e, &answer)),
        });
    }
    Answered
}

/// The answer to an append whose `COMMIT` failed with `e`. When the connection broke or
/// stopped answering, the `COMMIT` may have been carried out: the answer says so, with
/// the append's ids (the ones the store generated too), so that the client can retry
/// with the same ids, which finds them if they are in the log and appends them if not.
/// An error PostgreSQL answered to the `COMMIT` means it rolled back.
fn at_commit(e: &Error, appended: &[crate::store::AppendedEvent]) -> Error {
    let ids: Vec<Uuid> = appended.iter().map(|a| a.id).collect();
    match e {
        Error::Unavailable(_) => {
            const SHOWN: usize = 10;
            let mut listed = ids
                .iter()
                .take(SHOWN)
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if ids.len() > SHOWN {
                listed.push_str(&format!(" and {} more", ids.len() - SHOWN));
            }
            Error::Indeterminate {
                message: format!(
                    "the connection to the PostgreSQL log failed during the COMMIT of the append ({e}), so it may or may not have been written: retry it with the same event ids ({listed}); a retry by id is idempotent"
                ),
                ids,
            }
        }
        _ => Error::Storage(format!(
            "PostgreSQL refused the COMMIT of the append ({e}); nothing was written"
        )),
    }
}

/// Where a group's transaction failed, which says whether its appends may be in the log.
enum Failed {
    /// Before the `COMMIT` was sent: the transaction is rolled back, nothing written.
    BeforeCommit(Error),
    /// During the `COMMIT`: its outcome is unknown.
    AtCommit(Error),
}

/// New events among the accepted appends (retries of events in the log are not new).
fn new_events(answers: &[Answer]) -> usize {
    answers
        .iter()
        .map(|(_, appended)| appended.iter().filter(|a| a.new).count())
        .sum()
}

/// `BEGIN`, the head's lock and the prefetch of what the group's events name, in one
/// round trip. PostgreSQL runs them in order, each to its end, so the prefetch runs
/// once the lock is held and sees every event committed before it.
fn begin(client: &mut Client, statements: &Statements, jobs: &[Job]) -> Result<(Tail, Known)> {
    let (ids, streams) = named(jobs);
    let names: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
    let replies = client
        .pipeline(&[
            Request::Simple("BEGIN"),
            Request::Query(&statements.lock_head, vec![]),
            Request::Query(&statements.by_ids, vec![&ids]),
            Request::Query(&statements.stream_versions, vec![&names]),
        ])
        .map_err(pg_error)?;
    let [begun, head, id_rows, version_rows]: [Reply; 4] = replies
        .try_into()
        .map_err(|_| Error::Storage("postgresql: a pipeline lost an answer".into()))?;
    begun.map_err(pg_error)?;
    let head = head.map_err(pg_error)?;
    let [row] = head.as_slice() else {
        return Err(Error::Integrity(format!(
            "the PostgreSQL log's head table holds {} rows instead of one",
            head.len()
        )));
    };
    let tail = tail_from_row(row)?;
    let known = known(
        jobs,
        &streams,
        &id_rows.map_err(pg_error)?,
        &version_rows.map_err(pg_error)?,
    )?;
    Ok((tail, known))
}

/// Ends a transaction that will not commit: `ROLLBACK`, or, when that fails, the
/// connection is closed (its server then rolls back), so that no later `BEGIN` runs
/// inside it.
fn end_transaction(client: &mut Client) {
    if !client.is_closed() && client.batch_execute("ROLLBACK").is_err() {
        client.discard();
    }
}

/// Decides every job in the transaction, which holds the head's lock; answers the
/// rejected ones and the dry runs at once, and leaves in `answers` the accepted ones,
/// to be answered once the outcome of the `COMMIT` is known.
fn decide_and_write(
    client: &mut Client,
    statements: &Statements,
    tail: Tail,
    jobs: Vec<Job>,
    known: Known,
    answers: &mut Vec<Answer>,
    metrics: &StoreMetrics,
) -> std::result::Result<Option<u64>, Failed> {
    let pending = {
        let index = PgIndex {
            client: RefCell::new(&mut *client),
            statements,
            known,
        };
        let (pending, accepted) = decide(&index, tail, jobs, Utc::now(), metrics);
        answers.extend(accepted);
        pending
    };
    if pending.records.is_empty() {
        // Only retries, dry runs and rejections: nothing to write.
        return match client.batch_execute("ROLLBACK") {
            Ok(()) => Ok(None),
            Err(e) => {
                client.discard();
                Err(Failed::BeforeCommit(pg_error(e)))
            }
        };
    }
    write_and_commit(client, statements, &pending)?;
    Ok(Some(pending.tail.position))
}

/// The head row (`position, hash, recorded_micros`) as the rules' [`Tail`].
pub(super) fn tail_from_row(row: &tokio_postgres::Row) -> Result<Tail> {
    let position = to_u64(row.get(0))?;
    if position == 0 {
        return Ok(Tail {
            position: 0,
            hash: GENESIS_HASH,
            recorded: None,
        });
    }
    let hash: Vec<u8> = row.get(1);
    let hash = hash
        .try_into()
        .map_err(|_| Error::Integrity("the head row's hash is malformed".into()))?;
    let micros: Option<i64> = row.get(2);
    Ok(Tail {
        position,
        hash,
        recorded: micros.and_then(DateTime::from_timestamp_micros),
    })
}

/// The columns of up to [`ROWS_PER_INSERT`] events, for one `INSERT … unnest`.
struct Columns<'a> {
    positions: Vec<i64>,
    ids: Vec<Uuid>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    categories: Vec<&'a str>,
    types: Vec<&'a str>,
    /// Computed here: the rules compute a new event's only when a retry asks.
    digests: Vec<Vec<u8>>,
    bodies: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn new(chunk: &'a [Record]) -> Result<Columns<'a>> {
        let mut c = Columns {
            positions: Vec::with_capacity(chunk.len()),
            ids: Vec::with_capacity(chunk.len()),
            streams: Vec::with_capacity(chunk.len()),
            versions: Vec::with_capacity(chunk.len()),
            categories: Vec::with_capacity(chunk.len()),
            types: Vec::with_capacity(chunk.len()),
            digests: Vec::with_capacity(chunk.len()),
            bodies: Vec::with_capacity(chunk.len()),
        };
        for Record { event, json, .. } in chunk {
            c.positions.push(to_i64(event.position.0)?);
            c.ids.push(event.id);
            c.streams.push(event.stream.as_str());
            c.versions.push(to_i64(event.version.0)?);
            c.categories.push(event.stream.category());
            c.types.push(event.event_type.as_str());
            c.digests.push(event.content_digest().to_vec());
            c.bodies.push(
                std::str::from_utf8(json)
                    .map_err(|e| Error::Storage(format!("an event's JSON is not UTF-8: {e}")))?,
            );
        }
        Ok(c)
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.positions,
            &self.ids,
            &self.streams,
            &self.versions,
            &self.categories,
            &self.types,
            &self.digests,
            &self.bodies,
        ]
    }
}

/// Inserts the group's events, moves the head, notifies and commits, in one round
/// trip. PostgreSQL runs them in order; when it refuses one, the transaction is
/// aborted, the statements after it are refused too and the `COMMIT` rolls back, so
/// nothing was written. When the connection fails or stops answering instead, the
/// `COMMIT` was sent and may have been carried out.
fn write_and_commit(
    client: &mut Client,
    statements: &Statements,
    pending: &Pending,
) -> std::result::Result<(), Failed> {
    let before = Failed::BeforeCommit;
    let chunks: Vec<Columns> = pending
        .records
        .chunks(ROWS_PER_INSERT)
        .map(Columns::new)
        .collect::<Result<_>>()
        .map_err(before)?;
    let tail = pending.tail;
    let position = to_i64(tail.position).map_err(before)?;
    let hash = &tail.hash[..];
    let micros = tail.recorded.map(|t| t.timestamp_micros());
    let head = tail.position.to_string();
    let mut requests: Vec<Request> = chunks
        .iter()
        .map(|c| Request::Query(&statements.insert_events, c.params()))
        .collect();
    requests.push(Request::Query(
        &statements.move_head,
        vec![&position, &hash, &micros],
    ));
    // Delivered to every `LISTEN chronicle_head` once the transaction commits (and never
    // if it does not): other servers' projectors wake at once instead of at their next poll.
    requests.push(Request::Query(&statements.notify, vec![&head]));
    requests.push(Request::Simple("COMMIT"));
    let mut replies = match client.pipeline(&requests) {
        Ok(replies) => replies.into_iter(),
        // Closed before anything was sent.
        Err(e @ Failure::Closed) => return Err(Failed::BeforeCommit(pg_error(e))),
        Err(e) => return Err(Failed::AtCommit(pg_error(e))),
    };
    let commit = replies.next_back();
    for reply in replies {
        if let Err(e) = reply {
            return Err(if e.as_db_error().is_some() {
                // Refused: the transaction was aborted and the COMMIT rolled it back.
                Failed::BeforeCommit(pg_error(e))
            } else {
                Failed::AtCommit(pg_error(e))
            });
        }
    }
    match commit {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(Failed::AtCommit(pg_error(e))),
        None => Err(Failed::AtCommit(Error::Unavailable(
            "postgresql: the COMMIT got no answer".into(),
        ))),
    }
}
