//! The single writer thread: checks appends against the log, assigns positions,
//! versions and hashes, and commits them with group commit.
//!
//! Appends from every thread queue on one channel. The writer takes the first waiting
//! job and every job queued behind it, checks each on top of the ones before it, writes
//! all the accepted ones as one sled batch, flushes once, and only then answers them.
//! One fsync thus acknowledges many appends, and a rejected job never touches the
//! others. Because one thread assigns positions, positions and versions have no gaps.

use super::AppendedEvent;
use super::disk::Disk;
use super::keys::{self, HeadEntry, IdEntry};
use super::views;
use crate::model::event::{GENESIS_HASH, parse_hash};
use crate::model::types::{CategoryRule, EventData};
use crate::model::{
    EventType, Expect, Position, ProposedEvent, RecordedEvent, StreamId, ValidationError, Version,
};
use crate::projection::runner::Runner;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use uuid::Uuid;

/// Most jobs committed in one group; bounds the latency a group adds to its first job.
const MAX_GROUP_JOBS: usize = 512;

/// One call to append (or check).
pub(super) struct Job {
    pub events: Vec<ProposedEvent>,
    /// `false` for a dry run: check everything, write nothing.
    pub commit: bool,
    pub reply: SyncSender<Result<Vec<AppendedEvent>>>,
}

/// A request to rebuild projections from the log, run between commits.
pub(super) struct Rebuild {
    /// Indexes into the runner's projections.
    pub selected: Vec<usize>,
    pub progress: Box<dyn FnMut(u64, u64) + Send>,
    pub reply: SyncSender<Result<()>>,
}

/// What the writer thread is asked to do.
pub(super) enum Request {
    Append(Job),
    Rebuild(Rebuild),
}

/// Where the log ends, as the writer tracks it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tail {
    pub position: u64,
    pub hash: [u8; 32],
    pub recorded: Option<DateTime<Utc>>,
}

impl Tail {
    pub fn from_head(head: Option<HeadEntry>) -> Tail {
        match head {
            None => Tail {
                position: 0,
                hash: GENESIS_HASH,
                recorded: None,
            },
            Some(h) => Tail {
                position: h.position.0,
                hash: h.hash,
                recorded: DateTime::from_timestamp_micros(h.recorded_micros),
            },
        }
    }
}

/// What the writer knows about an id appended in this group.
#[derive(Debug, Clone)]
struct IdInfo {
    entry: IdEntry,
    stream: StreamId,
    event_type: EventType,
    hash: String,
}

/// Log changes not yet in sled: those of the group so far, or of the job being checked.
#[derive(Debug, Clone)]
struct Pending {
    tail: Tail,
    versions: HashMap<StreamId, u64>,
    ids: HashMap<Uuid, IdInfo>,
    records: Vec<(RecordedEvent, IdEntry)>,
}

impl Pending {
    fn new(tail: Tail) -> Pending {
        Pending {
            tail,
            versions: HashMap::new(),
            ids: HashMap::new(),
            records: Vec::new(),
        }
    }

    fn absorb(&mut self, job: Pending) {
        self.tail = job.tail;
        self.versions.extend(job.versions);
        self.ids.extend(job.ids);
        self.records.extend(job.records);
    }
}

/// Runs until every sender is gone. After each durable commit it publishes the new
/// head position on `durable`.
pub(super) fn run(
    db: sled::Db,
    runner: Arc<Runner>,
    mut tail: Tail,
    requests: Receiver<Request>,
    durable: tokio::sync::watch::Sender<Position>,
    disk: Disk,
) {
    let mut next = requests.recv().ok();
    while let Some(request) = next.take() {
        match request {
            Request::Rebuild(mut r) => {
                let head = Position(tail.position);
                let result =
                    views::rebuild(&db, &disk, &runner, &r.selected, head, &mut *r.progress);
                let _ = r.reply.send(result);
            }
            Request::Append(first) => {
                let mut group = vec![first];
                while group.len() < MAX_GROUP_JOBS {
                    match requests.try_recv() {
                        Ok(Request::Append(job)) => group.push(job),
                        Ok(rebuild) => {
                            // Commit what came before it, then rebuild.
                            next = Some(rebuild);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                tail = commit_group(&db, &disk, &runner, tail, group);
                durable.send_replace(Position(tail.position));
            }
        }
        if next.is_none() {
            next = requests.recv().ok();
        }
    }
}

fn commit_group(db: &sled::Db, disk: &Disk, runner: &Runner, tail: Tail, jobs: Vec<Job>) -> Tail {
    let now = Utc::now();
    let mut pending = Pending::new(tail);
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let checked = check_job(db, &pending, &job.events, now, job.commit);
        match checked {
            Ok((overlay, appended)) => {
                if job.commit {
                    pending.absorb(overlay);
                    answers.push((job.reply, Ok(appended), true));
                } else {
                    let _ = job.reply.send(Ok(appended));
                }
            }
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    if pending.records.is_empty() {
        for (reply, answer, _) in answers {
            let _ = reply.send(answer);
        }
        return pending.tail;
    }
    match write(db, disk, runner, &pending) {
        Ok(()) => {
            for (reply, answer, _) in answers {
                let _ = reply.send(answer);
            }
            pending.tail
        }
        Err(e) => {
            for (reply, _, _) in answers {
                let _ = reply.send(Err(Error::Storage(format!(
                    "the append could not be made durable ({e}); check free disk space and run `chronicle verify`"
                ))));
            }
            // Whatever reached sled is the truth now.
            let head = db.get(keys::HEAD).ok().flatten();
            Tail::from_head(head.and_then(|h| HeadEntry::decode(&h)))
        }
    }
}

/// Writes the group, and what it changes in the projections, as one atomic batch and
/// flushes it to disk.
fn write(db: &sled::Db, disk: &Disk, runner: &Runner, pending: &Pending) -> Result<()> {
    let mut batch = sled::Batch::default();
    let mut docs = views::Overlay::new(db);
    for (event, _) in &pending.records {
        runner.apply(event, &mut docs, None)?;
    }
    docs.into_batch(&mut batch);
    views::checkpoints_to(&mut batch, runner, None, Position(pending.tail.position));
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (event, id_entry) in &pending.records {
        let json = serde_json::to_vec(event).expect("an event always serializes");
        batch.insert(&keys::event(event.position)[..], json);
        batch.insert(
            keys::stream_event(&event.stream, event.version),
            &event.position.0.to_be_bytes()[..],
        );
        batch.insert(&keys::id(&event.id)[..], &id_entry.encode()[..]);
        let ty = event.event_type.as_str();
        batch.insert(keys::by_type_at(ty, event.position), &[][..]);
        batch.insert(
            keys::by_category_at(event.stream.category(), event.position),
            &[][..],
        );
        *counts.entry(ty).or_default() += 1;
    }
    for (stream, version) in &pending.versions {
        batch.insert(keys::stream_version(stream), &version.to_be_bytes()[..]);
    }
    for (ty, added) in counts {
        let key = keys::count(ty);
        let before = db
            .get(&key)
            .map_err(storage)?
            .and_then(|v| keys::u64_be(&v))
            .unwrap_or(0);
        batch.insert(key, &(before + added).to_be_bytes()[..]);
    }
    let head = HeadEntry {
        position: Position(pending.tail.position),
        hash: pending.tail.hash,
        recorded_micros: pending.tail.recorded.map_or(0, |t| t.timestamp_micros()),
    };
    batch.insert(keys::HEAD, &head.encode()[..]);
    db.apply_batch(batch).map_err(storage)?;
    disk.flush(db)
}

fn storage(e: sled::Error) -> Error {
    Error::Storage(e.to_string())
}

fn invalid(index: usize, field: &str, message: String) -> Error {
    Error::invalid(index, ValidationError::field(field, message))
}

/// Checks one job on top of the pending group and returns its changes and answers.
fn check_job(
    db: &sled::Db,
    group: &Pending,
    events: &[ProposedEvent],
    now: DateTime<Utc>,
    keep_records: bool,
) -> Result<(Pending, Vec<AppendedEvent>)> {
    let mut job = Pending::new(group.tail);
    let mut appended = Vec::with_capacity(events.len());
    for (index, proposed) in events.iter().enumerate() {
        let digest = proposed.content_digest();
        // Idempotency first: a retry of an event already in the log is a no-op.
        if let Some(id) = proposed.id
            && let Some(known) = lookup_id(db, group, &job, &id)?
        {
            if known.entry.digest != digest {
                return Err(invalid(
                    index,
                    "id",
                    format!(
                        "id {id} is already in the log (position {}) with different content; use a new id, or amend that event with event.corrected",
                        known.entry.position
                    ),
                ));
            }
            if let Some(r) = &proposed.restored
                && (r.hash != known.hash || r.position != known.entry.position)
            {
                // The same fact, recorded at another place or time: this store's history
                // is not the export's, so the export cannot continue it.
                return Err(invalid(
                    index,
                    "position",
                    format!(
                        "this store already holds event {id}, recorded at position {} with another history than the export's; restore an export into an empty store",
                        known.entry.position
                    ),
                ));
            }
            appended.push(AppendedEvent {
                id,
                stream: known.stream,
                position: known.entry.position,
                version: known.entry.version,
                new: false,
            });
            continue;
        }

        let current = lookup_version(db, group, &job, &proposed.stream)?;
        let expect_ok = match proposed.expect {
            Expect::Any => true,
            Expect::NoStream => current == 0,
            Expect::Exists => current > 0,
            Expect::Version(v) => current == v.0,
        };
        if !expect_ok {
            return Err(Error::Conflict {
                index,
                stream: proposed.stream.clone(),
                expected: proposed.expect,
                actual: Version(current),
            });
        }
        check_references(db, group, &job, index, proposed)?;

        let position = job.tail.position + 1;
        let version = current + 1;
        let id = proposed.id.unwrap_or_else(Uuid::now_v7);
        let recorded = match &proposed.restored {
            Some(r) => r.recorded,
            None => job.tail.recorded.map_or(now, |last| last.max(now)),
        };
        if let Some(r) = &proposed.restored {
            check_restored_place(index, r, position, version, job.tail.recorded)?;
        }
        let mut event =
            proposed
                .clone()
                .into_recorded(id, Position(position), Version(version), recorded);
        event.hash = event.chain_hash(&job.tail.hash);
        if let Some(r) = &proposed.restored
            && r.hash != event.hash
        {
            return Err(Error::Integrity(format!(
                "event {} (position {position}): its hash does not match its content and the hash before it; the export was altered or is incomplete",
                index + 1
            )));
        }
        let entry = IdEntry {
            position: Position(position),
            version: Version(version),
            digest,
        };
        job.tail = Tail {
            position,
            hash: parse_hash(&event.hash).expect("chain_hash returns 64 hex digits"),
            recorded: Some(recorded),
        };
        job.versions.insert(proposed.stream.clone(), version);
        job.ids.insert(
            id,
            IdInfo {
                entry,
                stream: proposed.stream.clone(),
                event_type: proposed.event_type,
                hash: event.hash.clone(),
            },
        );
        appended.push(AppendedEvent {
            id,
            stream: proposed.stream.clone(),
            position: Position(position),
            version: Version(version),
            new: true,
        });
        if keep_records {
            job.records.push((event, entry));
        }
    }
    Ok((job, appended))
}

fn check_restored_place(
    index: usize,
    r: &crate::model::event::Restored,
    position: u64,
    version: u64,
    last_recorded: Option<DateTime<Utc>>,
) -> Result<()> {
    if r.position.0 != position {
        return Err(invalid(
            index,
            "position",
            format!(
                "this exported event is at position {}, but the store's next position is {position}; restore an export into an empty store",
                r.position
            ),
        ));
    }
    if r.version.0 != version {
        return Err(invalid(
            index,
            "version",
            format!(
                "this exported event is version {} of its stream, but the store would make it version {version}; the export is incomplete",
                r.version
            ),
        ));
    }
    if last_recorded.is_some_and(|last| r.recorded < last) {
        return Err(invalid(
            index,
            "recorded",
            "goes back in time from the event before it; the export was altered".into(),
        ));
    }
    Ok(())
}

/// Entities must be registered before they are referred to; amendments must point at
/// an earlier event of the same stream.
fn check_references(
    db: &sled::Db,
    group: &Pending,
    job: &Pending,
    index: usize,
    proposed: &ProposedEvent,
) -> Result<()> {
    let registered =
        |stream: &StreamId| -> Result<bool> { Ok(lookup_version(db, group, job, stream)? > 0) };
    match proposed.event_type {
        EventType::EntityRegistered if registered(&proposed.stream)? => {
            return Err(invalid(
                index,
                "stream",
                format!(
                    "entity `{}` is already registered; add names with entity.alias_added or fix it with event.corrected",
                    proposed.stream
                ),
            ));
        }
        EventType::EntityAliasAdded
            if proposed.stream.category() != "country" && !registered(&proposed.stream)? =>
        {
            return Err(invalid(
                index,
                "stream",
                format!(
                    "entity `{}` is not registered; append an entity.registered event for it first",
                    proposed.stream
                ),
            ));
        }
        _ => {}
    }
    check_entities(db, group, job, index, "data.", &proposed.typed)?;

    let Some(target) = proposed.typed.target() else {
        return Ok(());
    };
    let Some(known) = lookup_id(db, group, job, &target)? else {
        return Err(invalid(
            index,
            "data.target",
            format!(
                "no event with id {target} is in the log; an amendment must point at an event already appended"
            ),
        ));
    };
    if known.stream != proposed.stream {
        return Err(invalid(
            index,
            "stream",
            format!(
                "the target {target} is in stream `{}`; append the {} to that stream",
                known.stream, proposed.event_type
            ),
        ));
    }
    if known.event_type.category_rule() == CategoryRule::TargetStream {
        return Err(invalid(
            index,
            "data.target",
            format!(
                "the target {target} is itself a {}; amend the original event instead",
                known.event_type
            ),
        ));
    }
    if let EventData::EventCorrected(correction) = &proposed.typed {
        if let Some(data) = &correction.data {
            let typed = EventData::parse(known.event_type, data).map_err(|e| {
                let path = if e.path.is_empty() {
                    String::new()
                } else {
                    format!(".{}", e.path)
                };
                invalid(
                    index,
                    &format!("data.data{path}"),
                    format!(
                        "{} (the corrected data must fit the target's type `{}`)",
                        e.message, known.event_type
                    ),
                )
            })?;
            check_entities(db, group, job, index, "data.data.", &typed)?;
        }
        if correction.occurred.is_some() && !known.event_type.needs_occurred() {
            return Err(invalid(
                index,
                "data.occurred",
                format!("`{}` events have no date to correct", known.event_type),
            ));
        }
    }
    Ok(())
}

fn check_entities(
    db: &sled::Db,
    group: &Pending,
    job: &Pending,
    index: usize,
    prefix: &str,
    typed: &EventData,
) -> Result<()> {
    for (field, entity) in typed.entity_refs() {
        if entity.is_country() {
            continue;
        }
        if lookup_version(db, group, job, entity.stream())? == 0 {
            return Err(invalid(
                index,
                &format!("{prefix}{field}"),
                format!(
                    "entity `{entity}` is not registered; append an entity.registered event for it first (countries are built in as country:XX)"
                ),
            ));
        }
    }
    Ok(())
}

fn lookup_version(db: &sled::Db, group: &Pending, job: &Pending, stream: &StreamId) -> Result<u64> {
    if let Some(v) = job
        .versions
        .get(stream)
        .or_else(|| group.versions.get(stream))
    {
        return Ok(*v);
    }
    let stored = db.get(keys::stream_version(stream)).map_err(storage)?;
    Ok(stored.and_then(|v| keys::u64_be(&v)).unwrap_or(0))
}

fn lookup_id(db: &sled::Db, group: &Pending, job: &Pending, id: &Uuid) -> Result<Option<IdInfo>> {
    if let Some(info) = job.ids.get(id).or_else(|| group.ids.get(id)) {
        return Ok(Some(info.clone()));
    }
    let Some(bytes) = db.get(keys::id(id)).map_err(storage)? else {
        return Ok(None);
    };
    let entry = IdEntry::decode(&bytes)
        .ok_or_else(|| Error::Integrity(format!("the id index entry of {id} is malformed")))?;
    let event = super::sled_store::read_event(db, entry.position)?.ok_or_else(|| {
        Error::Integrity(format!(
            "the id index points {id} at position {}, which holds no event",
            entry.position
        ))
    })?;
    Ok(Some(IdInfo {
        entry,
        stream: event.stream,
        event_type: event.event_type,
        hash: event.hash,
    }))
}
