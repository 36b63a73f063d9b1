//! The single writer thread: the queue, group commit and the IO of the log.
//!
//! Appends from every thread queue on one channel. The writer takes the first waiting
//! job and the jobs queued behind it (at most [`MAX_GROUP_JOBS`] in all), decides each
//! on top of the ones before it ([`rules`](super::rules)), writes all the accepted ones
//! as one sled batch (three keys per event, the head once), flushes and `fdatasync`s
//! once, and only then publishes the new durable head and answers them. One sync thus
//! acknowledges many appends, and a rejected job never touches the others. A commit
//! that fails halts the writer until the store is opened again (see [`run`]). Because one
//! thread assigns positions, positions and versions have no gaps. Nothing but the log
//! is written here: the views follow the durable head in the projector.

use super::AppendedEvent;
use super::StoreMetrics;
use super::disk::Disk;
use super::event_value;
use super::keys::{self, HeadEntry, IdEntry};
use super::log_first::Committing;
use super::projector::Shared;
use super::rules::{self, IdInfo, LogIndex, Pending, Record, Tail};
use super::storage;
use super::stream_cache::{Cached, StreamCache};
use crate::model::event::parse_hash;
use crate::model::{Position, ProposedEvent, RecordedEvent, StreamId, Version};
use crate::{Error, Result};
use chrono::{SubsecRound, Utc};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// Most jobs committed in one group, by either log's writer; bounds the latency a
/// group adds to its first job.
pub(super) const MAX_GROUP_JOBS: usize = 512;

/// One call to append (or check).
pub(super) struct Job {
    pub events: Vec<ProposedEvent>,
    /// `false` for a dry run: check everything, write nothing.
    pub commit: bool,
    pub reply: SyncSender<Result<Vec<AppendedEvent>>>,
}

/// An accepted append's reply and its answer, sent once the group is durable.
pub(super) type Answer = (SyncSender<Result<Vec<AppendedEvent>>>, Vec<AppendedEvent>);

/// Hands a job to a writer thread (sled's or PostgreSQL's) and waits for its answer.
pub(super) fn submit(
    jobs: Option<&std::sync::mpsc::Sender<Job>>,
    events: Vec<ProposedEvent>,
    commit: bool,
) -> Result<Vec<AppendedEvent>> {
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    let jobs = jobs.expect("the job channel lives as long as the store");
    jobs.send(Job {
        events,
        commit,
        reply,
    })
    .map_err(|_| Error::Storage("the writer thread has stopped".into()))?;
    answer
        .recv()
        .map_err(|_| Error::Storage("the writer thread stopped before answering".into()))?
}

/// Decides every job of a group on top of the log (`index`) and the jobs before it.
/// Dry runs and refused jobs are answered at once; the accepted appends are gathered in
/// the returned [`Pending`], with the answers to send once they are durable.
pub(super) fn decide(
    index: &dyn LogIndex,
    tail: Tail,
    jobs: Vec<Job>,
    now: chrono::DateTime<Utc>,
    metrics: &StoreMetrics,
) -> (Pending, Vec<Answer>) {
    let mut pending = Pending::new(tail);
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        match rules::check_job(index, &pending, job.events, now, job.commit) {
            Ok((overlay, appended)) if job.commit => {
                pending.absorb(overlay);
                answers.push((job.reply, appended));
            }
            Ok((_, appended)) => {
                let _ = job.reply.send(Ok(appended));
            }
            Err(e) => {
                metrics.appends_refused.inc();
                let _ = job.reply.send(Err(e));
            }
        }
    }
    (pending, answers)
}

/// The committed log as the rules read it.
pub(super) struct SledIndex<'a>(pub &'a sled::Db);

impl LogIndex for SledIndex<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        stream_version(self.0, stream).map(|v| v.map_or(0, |v| v.0))
    }

    fn id(&self, id: &Uuid) -> Result<Option<IdInfo>> {
        let Some(bytes) = self.0.get(keys::id(id)).map_err(storage)? else {
            return Ok(None);
        };
        let entry = IdEntry::decode(&bytes)
            .ok_or_else(|| Error::Integrity(format!("the id index entry of {id} is malformed")))?;
        let event = super::sled_store::read_event(self.0, entry.position)?.ok_or_else(|| {
            Error::Integrity(format!(
                "the id index points {id} at position {}, which holds no event",
                entry.position
            ))
        })?;
        Ok(Some(IdInfo {
            entry,
            digest: Some(event.content_digest()),
            stream: event.stream,
            event_type: event.event_type,
            hash: event.hash,
            occurred: event.occurred,
        }))
    }

    fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
        let prefix = keys::stream_events(stream);
        let mut events = Vec::new();
        for entry in self.0.range(keys::stream_event(stream, from)..) {
            let (key, position) = entry.map_err(storage)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let position = keys::u64_be(&position).map(Position).ok_or_else(|| {
                Error::Integrity(format!(
                    "the stream index entry {key:?} of `{stream}` is malformed; run `chronicle verify`"
                ))
            })?;
            let event = super::sled_store::read_event(self.0, position)?.ok_or_else(|| {
                Error::Integrity(format!(
                    "the stream index of `{stream}` points at position {position}, which holds no event; run `chronicle verify`"
                ))
            })?;
            events.push(event);
        }
        Ok(events)
    }
}

/// A stream's current version: the last key of its `S` index.
pub(super) fn stream_version(db: &sled::Db, stream: &StreamId) -> Result<Option<Version>> {
    let prefix = keys::stream_events(stream);
    let last = db.scan_prefix(&prefix).keys().next_back().transpose();
    Ok(last
        .map_err(storage)?
        .and_then(|k| keys::u64_be(&k[prefix.len()..]))
        .map(Version))
}

/// Runs until every sender is gone. Each durable commit's new head is published on
/// [`Writer::durable`] before its appends are answered (reads stop there: see
/// [`SledStore::visible`](super::SledStore)), then handed to the projector when the
/// store keeps its views open.
///
/// A commit that fails halts the writer: sled takes no write after an IO error, and
/// what the failed batch left in its memory may or may not reach the disk. That
/// group's appends are answered [`Error::Halted`] with their ids, every later one is
/// refused the same way, the durable head stays where the last good commit left it,
/// and [`Writer::halted`] holds the reason, until the store is opened again.
pub(super) fn run(writer: Writer, mut tail: Tail, jobs: Receiver<Job>) {
    let cache = StreamCache::default();
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP_JOBS {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = writer.halted.get() {
            for job in group {
                let _ = job.reply.send(Err(halted(
                    reason,
                    "takes no appends",
                    "; nothing of this append was written",
                )));
            }
            continue;
        }
        match commit_group(&writer, &cache, tail, group) {
            Ok(new_tail) => tail = new_tail,
            Err(Halted) => continue,
        }
        if let Some(projector) = &writer.projector {
            projector.durable(Position(tail.position));
        }
    }
}

/// What a store whose writer halted since `reason` answers what it no longer does, with
/// `detail` about the call refused.
pub(super) fn halted(reason: &str, no_longer: &str, detail: &str) -> Error {
    Error::Halted {
        message: format!(
            "this store {no_longer} since a write of its log to disk failed ({reason}){detail}: {} and restart chronicle",
            super::halt::first_step(reason)
        ),
        ids: Vec::new(),
    }
}

/// What the writer thread writes to and tells.
pub(super) struct Writer {
    /// The store's folder, where a halt is noted ([`halt`](super::halt)).
    pub dir: std::path::PathBuf,
    pub db: sled::Db,
    pub disk: Disk,
    /// Where each durable commit's head is published.
    pub durable: tokio::sync::watch::Sender<Position>,
    /// The projector the commits are handed to, when the store keeps its views open.
    pub projector: Option<Arc<Shared>>,
    pub metrics: StoreMetrics,
    /// Why the writer halted, once a commit failed.
    pub halted: Arc<OnceLock<String>>,
}

/// The writer halted: a commit failed ([`Writer::halted`] says why).
struct Halted;

/// Decides and commits one group; its new tail, or, when the commit failed, [`Halted`],
/// set before the group is answered (so that an answer is never read before it).
fn commit_group(
    w: &Writer,
    cache: &StreamCache,
    tail: Tail,
    jobs: Vec<Job>,
) -> std::result::Result<Tail, Halted> {
    let started = std::time::Instant::now();
    let committing = Committing::start();
    // The log keeps microseconds: the events handed to the projector keep no more.
    let now = Utc::now().trunc_subsecs(6);
    let index = Cached {
        index: &SledIndex(&w.db),
        cache,
    };
    let (mut pending, answers) = decide(&index, tail, jobs, now, &w.metrics);
    w.metrics.appends.inc_by(answers.len() as u64);
    if pending.records.is_empty() {
        for (reply, answer) in answers {
            let _ = reply.send(Ok(answer));
        }
        return Ok(pending.tail);
    }
    match write(&w.db, &w.disk, &pending, committing) {
        Ok(()) => {
            // Durable: visible, answered, then the bookkeeping (before the next group).
            w.durable.send_replace(Position(pending.tail.position));
            let seconds = started.elapsed().as_secs_f64();
            let appends = answers.len();
            for (reply, answer) in answers {
                let _ = reply.send(Ok(answer));
            }
            w.metrics.committed(
                appends,
                pending.records.len(),
                pending.tail.position,
                seconds,
            );
            cache.committed(pending.records.iter().map(|r| &r.event));
            let tail = pending.tail;
            let records = std::mem::take(&mut pending.records);
            let first = records.first().map(|r| r.event.position);
            let not_handed = match w.projector.as_deref() {
                Some(p) if first.is_some_and(|f| p.takes(f, records.len())) => {
                    p.hand_over(records.into_iter().map(|r| r.event).collect());
                    Vec::new()
                }
                _ => records,
            };
            let events = pending.ids.len();
            drop_after_answering((not_handed, pending), events);
            Ok(tail)
        }
        Err(e) => {
            w.metrics.failed(answers.len(), &e);
            let reason = match e {
                Error::Storage(reason) => reason,
                other => other.to_string(),
            };
            let _ = w.halted.set(reason.clone());
            // Part of the batch may reach the disk all the same: noted, the next open
            // clears it, and then the append is certainly not in the log.
            let note = super::halt::Note {
                durable: Position(tail.position),
                durable_hash: tail.hash,
                failed_to: Position(pending.tail.position),
                failed_first_hash: pending
                    .records
                    .first()
                    .and_then(|r| parse_hash(&r.event.hash))
                    .unwrap_or_default(),
            };
            let fate = match super::halt::note(&w.dir, &note) {
                Ok(()) => "was not written",
                Err(e) => {
                    tracing::error!(
                        target: "chronicle::commit",
                        "could not note in {} that the log ends at position {} ({e}): run `chronicle verify` once the store is opened again",
                        w.dir.join("halted").display(),
                        tail.position
                    );
                    "may or may not be in the log once the store is opened again"
                }
            };
            for (reply, answer) in answers {
                let _ = reply.send(Err(Error::Halted {
                    message: format!(
                        "the append could not be made durable ({reason}) and {fate}; this store takes no more appends: {}, restart chronicle, then append the same events again with the same ids (a retry by id is idempotent)",
                        super::halt::first_step(&reason)
                    ),
                    ids: answer.iter().map(|a| a.id).collect(),
                }));
            }
            // Live subscribers look again, and find the halt.
            w.durable.send_replace(Position(tail.position));
            Err(Halted)
        }
    }
}

/// Groups of at least this many events are dropped on another thread.
const DROPPED_ELSEWHERE: usize = 64;

/// Drops what a large group leaves once it is answered (its events, when the projector
/// does not take them, and their indexes: one value, one send) on a thread of its own, so that the writer
/// goes on to the next group: in the benchmark's W3 at 1,000,000 events (batches of
/// 1,000), freeing them took 3.4% of the writer's time. A small group is dropped
/// here, which costs less than waking that thread; so is a large one when two are
/// already waiting to be dropped, which bounds the memory they hold.
fn drop_after_answering<T: Send + 'static>(value: T, events: usize) {
    type Sender = std::sync::mpsc::SyncSender<Box<dyn Send>>;
    static DROPPER: std::sync::OnceLock<Option<Sender>> = std::sync::OnceLock::new();
    if events < DROPPED_ELSEWHERE {
        return;
    }
    let dropper = DROPPER.get_or_init(|| {
        let (sender, received) = std::sync::mpsc::sync_channel::<Box<dyn Send>>(2);
        std::thread::Builder::new()
            .name("chronicle-drop".into())
            .spawn(move || received.into_iter().for_each(drop))
            .ok()
            .map(|_| sender)
    });
    if let Some(sender) = dropper {
        // Full or gone: the value comes back in the error and is dropped here.
        let _ = sender.try_send(Box::new(value));
    }
}

/// Writes the group as one sled batch (atomic unless an IO error breaks it: see
/// [`halt`](super::halt)) and makes it durable; the commit stops keeping
/// the projector's writes back once its batch is in sled.
fn write(db: &sled::Db, disk: &Disk, pending: &Pending, committing: Committing) -> Result<()> {
    let mut batch = sled::Batch::default();
    for Record { event, entry, json } in &pending.records {
        batch.insert(
            &keys::event(event.position)[..],
            event_value::encode(json, event.position).as_ref(),
        );
        batch.insert(
            keys::stream_event(&event.stream, event.version),
            &event.position.0.to_be_bytes()[..],
        );
        batch.insert(&keys::id(&event.id)[..], &entry.encode()[..]);
    }
    let head = HeadEntry {
        position: Position(pending.tail.position),
        hash: pending.tail.hash,
        recorded_micros: pending.tail.recorded.map_or(0, |t| t.timestamp_micros()),
    };
    batch.insert(keys::HEAD, &head.encode()[..]);
    let applied = db.apply_batch(batch).map_err(storage);
    drop(committing);
    applied?;
    disk.flush(db)
}
