//! The append rules, as a pure decider: given what the log already holds (through the
//! small read-only [`LogIndex`]) and the appends accepted before it in the same group
//! commit, decide whether a proposed append is accepted and where each event lands.
//!
//! Checked, in this order for each event: idempotency by id (a retry with the same
//! content is a no-op, with other content an error; before the concurrency check, with
//! no time window), the stream's `expect`, entity references (registered earlier in the
//! log or the same append), amendment targets (an earlier event of the same stream, not
//! itself an amendment; a correction's data, a merge patch, applied to the target's
//! current data gives data that fits the target's type), an event at a place of a trip
//! (arrival, departure, meeting, agenda item, a stop's cancellation) being at one of the
//! trip's stops, a new `trip.stop_added` not repeating a stop the trip has, an
//! amendment of a trip's plan leaving each event at a place on its stop (the trip's
//! view folded with and without it), and for restored exports the exact place and hash.
//!
//! Two kinds of accepted event come back with a note for the user: an amendment of a
//! fact retracted before it (it changes no view), and the first event of a trip's
//! stream when it is not `trip.announced` (a trip with no traveler: a mistyped id?).
//!
//! The stop rule folds the trip's stream (from the log and the pending appends) through
//! the facts layer's own fold, keeps the facts that plan or cancel stops, and finds the
//! stop with the trip view's own matcher (`projection::trips::stop_index`), reading the
//! streams of the registered places involved: one read of the trip's stream (short) and
//! of each place's per event at a place, never a scan of the log. A stop is added only
//! by `trip.announced` or `trip.stop_added`; a cancelled stop is still a stop. Restored
//! exports are not checked: they hold what their store accepted, under older rules too.
//!
//! An amendment without `occurred` gets the day it is recorded, here, so that the stored
//! event (and its hash) carries it. No IO, no clock: the time comes in as an argument,
//! so the rules are tested without sled. A retry is compared with the event it repeats
//! by their content digests; a new event's is computed only when a retry asks (from
//! its record while it is pending, from the stored event once it is in the log).

use super::AppendedEvent;
use super::keys::{HeadEntry, IdEntry};
use crate::model::event::{GENESIS_HASH, parse_hash, to_hex};
use crate::model::patch::merge_patch;
use crate::model::types::{CategoryRule, EventData, TripStopAdded};
use crate::model::{
    EntityId, EventType, Expect, Extent, Position, ProposedEvent, RecordedEvent, StreamId,
    ValidationError, Version,
};
use crate::projection::facts::{self, Fact};
use crate::projection::trips;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What the rules need to read of the log. Lookups see only committed events; the
/// decider layers the pending group on top.
pub trait LogIndex {
    /// The stream's current version, 0 when it has no events.
    fn stream_version(&self, stream: &StreamId) -> Result<u64>;

    /// Where an event id landed, with its stream, type and hash; `None` when the log
    /// does not hold it.
    fn id(&self, id: &Uuid) -> Result<Option<IdInfo>>;

    /// The events of a stream from version `from` on, in order. The rules read it to
    /// find a fact's current data before a correction (the fact and every amendment of
    /// it are in the fact's stream, after it), and, for the stop rule, a trip's whole
    /// stream and the streams of the places its events name. On sled the writer serves
    /// it from `stream_cache::Cached`, which reads each stream once; on
    /// PostgreSQL each call is one query.
    fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>>;

    /// A trip's itinerary as the committed log alone leaves it, when an earlier check
    /// left it here ([`LogIndex::remember_itinerary`]) and no commit has changed it since.
    fn itinerary(&self, _trip: &StreamId) -> Option<Itinerary> {
        None
    }

    /// Keeps a trip's itinerary as the committed log alone leaves it, for the checks
    /// of later commits; an index that cannot tell when a commit changes it keeps
    /// nothing.
    fn remember_itinerary(&self, _trip: &StreamId, _itinerary: &Itinerary) {}
}

/// Where the log ends, as the writer tracks it.
#[derive(Debug, Clone, Copy)]
pub struct Tail {
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
pub struct IdInfo {
    pub entry: IdEntry,
    /// The event's content digest, which a retry with the same id must match. `None`
    /// for an event accepted earlier in this group: it is computed from the event's
    /// [`Record`] only when a retry asks, so that a new event costs no digest.
    pub digest: Option<[u8; 32]>,
    pub stream: StreamId,
    pub event_type: EventType,
    pub hash: String,
    /// As stored: for an amendment written without one, the day it was recorded. A
    /// retry that leaves it out again is the same event.
    pub occurred: Option<Extent>,
}

/// A fact's data as the log and the pending appends leave it, as the facts layer
/// (`projection::facts`) folds it: corrections merged in log order, none after a
/// retraction.
#[derive(Debug, Clone)]
pub struct Current {
    pub data: Value,
    pub occurred: Option<Extent>,
    pub retracted: bool,
}

/// Log changes not yet in sled: those of the group so far, or of the job being checked.
#[derive(Debug, Clone)]
pub struct Pending {
    pub tail: Tail,
    pub versions: HashMap<StreamId, u64>,
    pub ids: HashMap<Uuid, IdInfo>,
    /// The current data of the facts the pending events amend (and, in a dry run, of
    /// those they add; otherwise an added fact's data is its record's), so that a
    /// correction can be checked against a fact appended or corrected earlier in the
    /// group or the same append. `import`'s check sets it aside after every batch
    /// ([`Pending::set_facts_aside`]), so that its memory does not grow with the input.
    pub facts: HashMap<Uuid, Current>,
    /// Whether `facts` was set aside: a pending fact missing from it is then not an
    /// inconsistency, and a correction of it cannot be checked against it (the checker
    /// notes that, and `import` checks its input again keeping the amended facts).
    pub facts_set_aside: bool,
    /// The accepted events, in position order.
    pub records: Vec<Record>,
    /// The accepted events the stop rule reads, by stream, in order: of a `trip:` stream
    /// those that plan or cancel stops and the amendments, of a `place:` stream all; it
    /// folds them on top of the log's. When the facts are set aside, they move to
    /// [`SetAside`], a trip's without its arrivals and the like, and with no source.
    pub streams: HashMap<StreamId, Vec<RecordedEvent>>,
    /// Whether `streams` (or, once set aside, [`SetAside`]) holds a `place:` stream's
    /// events, which change every trip's itinerary.
    pub places: bool,
    /// The trips with events at a place (arrivals and the like) pending here, which
    /// `streams` does not hold: with no `records` (a dry run), an amendment of such a
    /// trip's plan cannot be weighed against them ([`check_stops_kept`]).
    pub at_place: HashSet<StreamId>,
    /// The itineraries the job's checks folded, until one of its events changes them;
    /// not kept in the group.
    pub itineraries: HashMap<StreamId, Itinerary>,
    /// The ids and versions of the pending events, once their facts were set aside: the
    /// same as `ids` and `versions` hold, packed (see [`SetAside`]).
    pub set_aside: SetAside,
    /// Facts of the log that pending events amended, whose data was set aside: an
    /// amendment of one cannot be checked against the log's data.
    pub amended_set_aside: HashSet<Uuid>,
}

/// An accepted event as the writer writes it.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: RecordedEvent,
    /// Its id index entry.
    pub entry: IdEntry,
    /// The event as the log stores it, made while hashing it ([`RecordedEvent::seal`]).
    pub json: Vec<u8>,
}

/// The ids and stream versions of a long dry run (`import`'s check of its whole input),
/// packed so that a million events take about 150 MB rather than a map of [`IdInfo`]:
/// each stream name is kept once and referred to by number, hashes as bytes, and of the
/// events' dates only those of the types whose date the store fills in (the one use of
/// [`IdInfo::occurred`]).
#[derive(Debug, Clone, Default)]
pub struct SetAside {
    streams: Vec<StreamId>,
    /// Each stream's number in `streams`, and its version.
    versions: HashMap<StreamId, (u32, u64)>,
    ids: HashMap<Uuid, u32>,
    records: Vec<IdRecord>,
    occurred: HashMap<u32, Extent>,
    /// What the stop rule folds ([`Pending::streams`]), each event as its stored JSON.
    kept: HashMap<StreamId, Kept>,
    /// [`Pending::at_place`], once set aside.
    at_place: HashSet<StreamId>,
}

/// The events of a stream the stop rule folds, set aside as their stored bytes (a tenth
/// of the memory of the parsed events).
#[derive(Debug, Clone, Default)]
struct Kept {
    events: Vec<Box<[u8]>>,
}

/// An [`IdInfo`] in [`SetAside`].
#[derive(Debug, Clone)]
struct IdRecord {
    position: u64,
    version: u64,
    digest: [u8; 32],
    hash: [u8; 32],
    stream: u32,
    event_type: EventType,
}

impl SetAside {
    fn version(&self, stream: &StreamId) -> Option<u64> {
        self.versions.get(stream).map(|&(_, v)| v)
    }

    fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains_key(id)
    }

    fn id(&self, id: &Uuid) -> Option<IdInfo> {
        let n = *self.ids.get(id)?;
        let r = self.records.get(n as usize)?;
        Some(IdInfo {
            entry: IdEntry {
                position: Position(r.position),
                version: Version(r.version),
            },
            digest: Some(r.digest),
            stream: self.streams.get(r.stream as usize)?.clone(),
            event_type: r.event_type,
            hash: to_hex(&r.hash),
            occurred: self.occurred.get(&n).copied(),
        })
    }

    fn stream_number(&mut self, stream: &StreamId) -> u32 {
        if let Some(&(n, _)) = self.versions.get(stream) {
            return n;
        }
        let n = u32::try_from(self.streams.len()).expect("fewer than 2^32 streams in one import");
        self.streams.push(stream.clone());
        self.versions.insert(stream.clone(), (n, 0));
        n
    }

    fn set_version(&mut self, stream: StreamId, version: u64) {
        let n = self.stream_number(&stream);
        self.versions.insert(stream, (n, version));
    }

    /// The events of `stream` set aside for the stop rule, in order.
    fn kept(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>> {
        let Some(kept) = self.kept.get(stream) else {
            return Ok(Vec::new());
        };
        kept.events
            .iter()
            .map(|bytes| {
                serde_json::from_slice(bytes).map_err(|e| {
                    Error::Storage(format!("reading an event the check set aside: {e}"))
                })
            })
            .collect()
    }

    /// Sets aside a stream's pending events that the stop rule folds: of a trip, those
    /// that plan stops and every amendment, without what the rule does not read.
    fn keep(&mut self, stream: StreamId, events: Vec<RecordedEvent>) {
        let trip = stream.category() == "trip";
        let kept = self.kept.entry(stream).or_default();
        for mut event in events {
            if trip {
                // Every amendment: one of an event already in the log changes its trip
                // as much as one of a pending event.
                let keep = plans_stops(event.event_type) || event.event_type.is_amendment();
                if !keep {
                    continue;
                }
                event.source = None;
                event.tags = Vec::new();
                event.occurred_text = None;
                event.meta = None;
            }
            let bytes = serde_json::to_vec(&event).expect("an event always serializes");
            kept.events.push(bytes.into_boxed_slice());
        }
    }

    /// Keeps an id given its content digest (see [`Pending::digest_of`]).
    fn add(&mut self, id: Uuid, info: IdInfo, digest: [u8; 32]) {
        let stream = self.stream_number(&info.stream);
        let n = u32::try_from(self.records.len()).expect("fewer than 2^32 events in one import");
        if info.event_type.occurred_defaults_to_recorded()
            && let Some(occurred) = info.occurred
        {
            self.occurred.insert(n, occurred);
        }
        self.records.push(IdRecord {
            position: info.entry.position.0,
            version: info.entry.version.0,
            digest,
            hash: parse_hash(&info.hash).expect("chain_hash returns 64 hex digits"),
            stream,
            event_type: info.event_type,
        });
        self.ids.insert(id, n);
    }
}

impl Pending {
    pub fn new(tail: Tail) -> Pending {
        Pending {
            tail,
            versions: HashMap::new(),
            ids: HashMap::new(),
            facts: HashMap::new(),
            facts_set_aside: false,
            records: Vec::new(),
            streams: HashMap::new(),
            places: false,
            at_place: HashSet::new(),
            itineraries: HashMap::new(),
            set_aside: SetAside::default(),
            amended_set_aside: HashSet::new(),
        }
    }

    /// Forgets the pending facts' data but that of `keep` (keeping their ids and
    /// versions, packed): for a long dry run, whose memory must grow with its input as
    /// little as can be.
    ///
    /// # Panics
    /// When an id of the group has no digest and no record: the rules give every id
    /// one or the other.
    pub fn set_facts_aside(&mut self, keep: &HashSet<Uuid>) {
        // Those not added here are of the log, amended here.
        let of_the_log = |id: &Uuid| !self.ids.contains_key(id) && !self.set_aside.contains(id);
        let amended: Vec<Uuid> = (self.facts.keys())
            .filter(|id| !keep.contains(*id) && of_the_log(id))
            .copied()
            .collect();
        self.amended_set_aside.extend(amended);
        if keep.is_empty() {
            self.facts = HashMap::new();
        } else {
            self.facts.retain(|id, _| keep.contains(id));
        }
        for (stream, version) in self.versions.drain() {
            self.set_aside.set_version(stream, version);
        }
        for (id, info) in std::mem::take(&mut self.ids) {
            let digest = self
                .digest_of(&info)
                .expect("a pending id has a digest or a record");
            self.set_aside.add(id, info, digest);
        }
        for (stream, events) in self.streams.drain() {
            self.set_aside.keep(stream, events);
        }
        self.set_aside.at_place.extend(self.at_place.drain());
        self.facts_set_aside = true;
    }

    /// Whether the data of a pending fact was set aside ([`Pending::set_facts_aside`]),
    /// so that an amendment of it cannot be checked against it.
    pub fn forgot(&self, id: &Uuid) -> bool {
        self.facts_set_aside
            && !self.facts.contains_key(id)
            && (self.ids.contains_key(id)
                || self.set_aside.contains(id)
                || self.amended_set_aside.contains(id))
    }

    /// The content digest of the event `info` describes: its own, or computed from its
    /// record here. `None` when this group holds no such record.
    fn digest_of(&self, info: &IdInfo) -> Option<[u8; 32]> {
        info.digest
            .or_else(|| pending_record(self, info.entry.position).map(|r| r.event.content_digest()))
    }

    /// Whether an event pending here changes what the stop rule folds for `trip`: one
    /// of the trip's own that it folds, or any place's. Two lookups and a flag, not a
    /// scan: `import`'s check asks this of a group holding every stream of its input.
    fn changes_itinerary(&self, trip: &StreamId) -> bool {
        self.places || self.streams.contains_key(trip) || self.set_aside.kept.contains_key(trip)
    }

    /// Adds an accepted job's changes to the group (taking them whole into a group that
    /// has none yet: most groups are one job).
    pub fn absorb(&mut self, job: Pending) {
        fn take<K: std::hash::Hash + Eq, V>(into: &mut HashMap<K, V>, from: HashMap<K, V>) {
            match into.is_empty() {
                true => *into = from,
                false => into.extend(from),
            }
        }
        self.tail = job.tail;
        take(&mut self.versions, job.versions);
        take(&mut self.ids, job.ids);
        take(&mut self.facts, job.facts);
        self.facts_set_aside |= job.facts_set_aside;
        self.places |= job.places;
        match self.records.is_empty() {
            true => self.records = job.records,
            false => self.records.extend(job.records),
        }
        for (stream, events) in job.streams {
            self.streams.entry(stream).or_default().extend(events);
        }
        self.at_place.extend(job.at_place);
    }
}

/// The types of the events at a place of a trip that do not plan its stops.
fn at_place(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::TripArrived
            | EventType::TripDeparted
            | EventType::TripMeetingHeld
            | EventType::TripMeetingPlanned
            | EventType::TripAgendaItemAdded
    )
}

/// The types whose facts make a trip's stops, as far as the stop rule is concerned.
fn plans_stops(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::TripAnnounced | EventType::TripStopAdded | EventType::TripStopCancelled
    )
}

/// Whether the stop rule folds `event` into an itinerary: of a `trip:` stream the events
/// that plan or cancel stops and the amendments (of those, as far as it can tell from
/// the event alone), of a `place:` stream all.
pub(super) fn stop_rule_folds(event: &RecordedEvent) -> bool {
    match event.stream.category() {
        "trip" => plans_stops(event.event_type) || event.event_type.is_amendment(),
        "place" => true,
        _ => false,
    }
}

/// What the rules say of an entity id no registration has, after the id.
const NOT_REGISTERED: &str = "` is not registered; append an entity.registered event for it first";

/// The entity an append was refused for naming unregistered, from its error's message:
/// the views may know the id it was meant to be.
pub fn unregistered_entity(message: &str) -> Option<EntityId> {
    let (id, _) = message
        .strip_prefix("entity `")?
        .split_once(NOT_REGISTERED)?;
    EntityId::parse(id).ok()
}

fn invalid(index: usize, field: &str, message: String) -> Error {
    Error::invalid(index, ValidationError::field(field, message))
}

/// Decides one job on top of the pending group: its changes (to absorb into the group
/// when it is to be written) and where each event landed. `keep_records: false` for a
/// dry run.
pub fn check_job(
    db: &dyn LogIndex,
    group: &Pending,
    events: Vec<ProposedEvent>,
    now: DateTime<Utc>,
    keep_records: bool,
) -> Result<(Pending, Vec<AppendedEvent>)> {
    let mut job = Pending::new(group.tail);
    job.ids.reserve(events.len());
    if keep_records {
        job.records.reserve(events.len());
    }
    let mut appended = Vec::with_capacity(events.len());
    // The first retry whose expectation its event's version does not follow.
    let mut stale_retry = None;
    for (index, mut proposed) in events.into_iter().enumerate() {
        // Idempotency first: a retry of an event already in the log is a no-op.
        if let Some(id) = proposed.id
            && let Some(known) = lookup_id(db, group, &job, &id)?
        {
            let digest = if proposed.occurred.is_none()
                && proposed.event_type.occurred_defaults_to_recorded()
            {
                // The store gave the first one its date; without one, the retry is the
                // same amendment whenever it comes.
                let mut same = proposed.clone();
                same.occurred = known.occurred;
                same.content_digest()
            } else {
                proposed.content_digest()
            };
            let known_digest = job
                .digest_of(&known)
                .or_else(|| group.digest_of(&known))
                .ok_or_else(|| {
                    Error::Integrity(format!(
                        "event {id} (position {}) is pending with no record of its content",
                        known.entry.position
                    ))
                })?;
            if known_digest != digest {
                let position = known.entry.position;
                let message = if job.ids.contains_key(&id) {
                    format!(
                        "id {id} is already used, with different content, by an earlier event given with it; give each event its own id"
                    )
                } else if group.ids.contains_key(&id) || group.set_aside.id(&id).is_some() {
                    format!(
                        "id {id} is already used, with different content, by an event not yet written (it would be position {position}): earlier in this input, or in an append committed beside it; use a new id"
                    )
                } else {
                    format!(
                        "id {id} is already in the log (position {position}) with different content; use a new id, or amend that event with event.corrected"
                    )
                };
                return Err(invalid(index, "id", message));
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
            // A retry's expectation held when its event was written, if it is a retry
            // of the same append: the version it was written as must follow it. When
            // it does not, and the append writes new events, those would go in
            // unchecked: refused. An append of known events alone changes nothing.
            let written = known.entry.version;
            let followed = match proposed.expect {
                Expect::Any => true,
                Expect::NoStream => written.0 == 1,
                Expect::Exists => written.0 > 1,
                Expect::Version(v) => written.0 == v.0 + 1,
            };
            if !followed && stale_retry.is_none() && !job.ids.contains_key(&id) {
                stale_retry = Some(Error::Conflict {
                    index,
                    actual: Version(lookup_version(db, group, &job, &known.stream)?),
                    stream: known.stream.clone(),
                    expected: proposed.expect,
                    written: Some(written),
                });
            }
            appended.push(AppendedEvent {
                id,
                stream: known.stream,
                position: known.entry.position,
                version: written,
                new: false,
                note: None,
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
                written: None,
            });
        }
        let opens_unannounced_trip = current == 0 && opens_trip_unannounced(&proposed);
        let Amendment {
            amended,
            retracted_target,
        } = check_references(db, group, &job, index, &proposed)?;
        if proposed.restored.is_none() {
            // A restored export keeps what its store accepted, under any older rules.
            check_about(db, group, &job, index, &proposed)?;
            check_stop(
                db,
                group,
                &mut job,
                index,
                &proposed,
                amended.as_ref(),
                current == 0,
            )?;
        }

        let position = job.tail.position + 1;
        let version = current + 1;
        let id = proposed.id.unwrap_or_else(Uuid::now_v7);
        let restored = proposed.restored.take();
        let recorded = match &restored {
            Some(r) => r.recorded,
            None => job.tail.recorded.map_or(now, |last| last.max(now)),
        };
        if let Some(r) = &restored {
            check_restored_place(index, r, position, version, job.tail.recorded)?;
        }
        let mut event = proposed.into_recorded(id, Position(position), Version(version), recorded);
        if event.occurred.is_none() && event.event_type.occurred_defaults_to_recorded() {
            // Filled in before hashing, so that the log, its hashes and an export all
            // carry the date, and a restore reproduces them.
            event.occurred = Some(Extent::day(recorded.date_naive()));
        }
        // A dry run keeps no record to compute it from when a retry asks.
        let digest = (!keep_records).then(|| event.content_digest());
        let (json, hash) = event.seal(&job.tail.hash);
        if let Some(r) = &restored
            && r.hash != event.hash
        {
            return Err(invalid(
                index,
                "hash",
                format!(
                    "does not match this exported event's content and the hash of the event before it (position {position}); the export was altered or is incomplete: import an unaltered export"
                ),
            ));
        }
        let entry = IdEntry {
            position: Position(position),
            version: Version(version),
        };
        job.tail = Tail {
            position,
            hash,
            recorded: Some(recorded),
        };
        match job.versions.get_mut(&event.stream) {
            Some(v) => *v = version,
            None => drop(job.versions.insert(event.stream.clone(), version)),
        }
        job.ids.insert(
            id,
            IdInfo {
                entry,
                digest,
                stream: event.stream.clone(),
                event_type: event.event_type,
                hash: event.hash.clone(),
                occurred: event.occurred,
            },
        );
        match amended {
            Some((target, current)) => {
                job.facts.insert(target, current);
            }
            // A new fact kept for the writer is found among the records
            // ([`pending_record`]); a dry run keeps no records, so its data.
            None if !event.event_type.is_amendment() && !keep_records => {
                let current = Current {
                    data: event.data.clone(),
                    occurred: event.occurred,
                    retracted: false,
                };
                job.facts.insert(id, current);
            }
            None => {}
        }
        appended.push(AppendedEvent {
            id,
            stream: event.stream.clone(),
            position: Position(position),
            version: Version(version),
            new: true,
            // A restored export's events were noted when first appended.
            note: match retracted_target {
                Some(target) if restored.is_none() => Some(format!(
                    "its target {target} was retracted before: the {} is in the log and changes no view (on `--known-at` dates, the reported clock, it counts from when it was published)",
                    event.event_type
                )),
                None if opens_unannounced_trip => Some(format!(
                    "`{}` had no events, and a trip's stream begins with trip.announced: this trip has no traveler or stops until it is announced; if the stream id is mistyped, `chronicle trip list` (or `GET /trips`) lists the trips",
                    event.stream
                )),
                None if restored.is_none() => reported_before_it_happened(&event),
                // The recorded clock never goes back: past an export's time ahead of
                // this machine's, new events are recorded at it.
                _ if recorded > now + chrono::Duration::minutes(5) => Some(format!(
                    "it was recorded at {}, later than this machine's clock ({}): events appended after it are recorded at that time too, until the clock passes it",
                    recorded.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )),
                _ => None,
            },
        });
        if event.stream.category() == "trip" && at_place(event.event_type) {
            job.at_place.insert(event.stream.clone());
        }
        if stop_rule_folds(&event) {
            if event.stream.category() == "place" {
                job.itineraries.clear();
            } else if let Some(mut itinerary) = job.itineraries.remove(&event.stream)
                && let Ok(EventData::TripStopAdded(added)) =
                    EventData::parse(event.event_type, &event.data)
            {
                // A stop added to a trip the job keeps: added to it as the view adds
                // it, rather than folded again (many stops in one input stay linear).
                itinerary.learn(db, group, &job, &added.place)?;
                let Itinerary { stops, places } = &mut itinerary;
                trips::add_stop(stops, added, event.occurred, &|p| places.get(p).cloned());
                job.itineraries.insert(event.stream.clone(), itinerary);
            }
            job.places |= event.stream.category() == "place";
            let events = job.streams.entry(event.stream.clone()).or_default();
            events.push(event.clone());
        }
        if keep_records {
            job.records.push(Record { event, entry, json });
        }
    }
    if let Some(conflict) = stale_retry
        && appended.iter().any(|a| a.new)
    {
        return Err(conflict);
    }
    Ok((job, appended))
}

/// For a new event of what has happened (an arrival, a meeting held, an impeachment)
/// whose source was published before it happened: a note that the date or the type is
/// likely wrong (a source reused from an earlier fact, or a plan reported as done). The
/// reported clock (`--known-at`) would count it as known before it happened.
fn reported_before_it_happened(event: &RecordedEvent) -> Option<String> {
    let happened = matches!(
        event.event_type,
        EventType::TripArrived
            | EventType::TripDeparted
            | EventType::TripMeetingHeld
            | EventType::TripStarted
            | EventType::TripCompleted
            | EventType::OfficialImpeached
            | EventType::MartialLawDeclared
    );
    let occurred = event.occurred?;
    let published = event.source.as_ref()?.published?;
    (happened && published.latest() <= occurred.earliest()).then(|| {
        format!(
            "its source was published {published}, before it happened ({occurred}), so `--known-at` counts it as known before it happened: check the source's `published` and the date, or report a plan with its planned type (trip.meeting_planned, the trip's stops and dates)"
        )
    })
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
                "this exported event is at position {}, but the store's next position is {position}; restore an export into an empty store, or into one whose log ends at position {} (the export's lines before it already in)",
                r.position,
                r.position.0.saturating_sub(1)
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

/// What [`check_references`] found out about an amendment.
#[derive(Default)]
struct Amendment {
    /// The target's data after a correction or a retraction, for the pending overlay.
    amended: Option<(Uuid, Current)>,
    /// The target, when it was retracted before: the amendment then changes no view.
    retracted_target: Option<Uuid>,
}

/// Entities must be registered before they are referred to; amendments must point at
/// an earlier event of the same stream, and a correction's data merged into the
/// target's current data must fit the target's type.
fn check_references(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    index: usize,
    proposed: &ProposedEvent,
) -> Result<Amendment> {
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
                format!("entity `{}{NOT_REGISTERED}", proposed.stream),
            ));
        }
        _ => {}
    }
    check_entities(db, group, job, index, "data.", &proposed.typed).map_err(|e| {
        match (proposed.stream.category(), unregistered_place(&e)) {
            ("trip", Some(place)) => match city_stop(db, group, job, &proposed.stream, &place) {
                Ok(Some(hint)) => with_hint(e, &hint),
                Ok(None) => e,
                Err(other) => other,
            },
            _ => e,
        }
    })?;

    let Some(target) = proposed.typed.target() else {
        return Ok(Amendment::default());
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
    if known.event_type == EventType::EntityRegistered
        && proposed.event_type == EventType::EventRetracted
        && proposed.restored.is_none()
    {
        // The entity would stay, referred to by the log, with no name, and could not be
        // registered again.
        return Err(invalid(
            index,
            "data.target",
            format!(
                "the target {target} is the registration of `{}`, which the log's references keep: an entity cannot be unregistered; fix its name or country with event.corrected, or add a name with entity.alias_added",
                known.stream
            ),
        ));
    }
    if known.event_type.category_rule() == CategoryRule::TargetStream {
        return Err(invalid(
            index,
            "data.target",
            format!(
                "the target {target} is itself an {}; amend the original event instead{}",
                known.event_type,
                match known.event_type {
                    EventType::EventCorrected =>
                        " (to undo this correction, correct the original back to what it said)",
                    EventType::EventRetracted =>
                        " (a retraction is final: append the fact again as a new event, citing its source)",
                    _ => "",
                }
            ),
        ));
    }
    // `None`: a long dry run set the target's data aside; its checker notes that, and
    // the input is checked again keeping the target's data (`Checker::missed_targets`).
    let current = current_data(db, group, job, &known, target)?;
    let mut amended = None;
    let retracted_target = current.as_ref().filter(|c| c.retracted).map(|_| target);
    if let EventData::EventRetracted(_) = &proposed.typed
        && let Some(mut current) = current.clone()
    {
        if proposed.restored.is_none() && !current.retracted {
            check_stops_kept(db, group, job, index, &known, target, &current.data, None)?;
        }
        current.retracted = true;
        amended = Some((target, current));
    }
    if let EventData::EventCorrected(correction) = &proposed.typed
        && correction.occurred.is_some()
        && !known.event_type.needs_occurred()
    {
        return Err(invalid(
            index,
            "data.occurred",
            format!("`{}` events have no date to correct", known.event_type),
        ));
    }
    if let EventData::EventCorrected(correction) = &proposed.typed
        && let Some(mut current) = current
    {
        // A new correction must change something (its date, or its data). Dates are
        // compared as written, as the data is: `…T09:00:00+03:00` is shown as such.
        let written = |o: &Option<Extent>| o.as_ref().map(ToString::to_string);
        let unchanged = (proposed.restored.is_none() && !current.retracted)
            .then(|| (current.data.clone(), written(&current.occurred)));
        if let Some(occurred) = correction.occurred {
            current.occurred = Some(occurred);
        }
        let same_date = unchanged
            .as_ref()
            .is_some_and(|u| u.1 == written(&current.occurred));
        if correction.data.is_none() && same_date {
            return Err(invalid(
                index,
                "data.occurred",
                "the correction changes nothing: the target's date is already this one; nothing was written (to cite another source for it, append an evidence.added)".into(),
            ));
        }
        if let Some(patch) = &correction.data {
            // A trip's plan before the correction, for the check of its stops.
            let plan = matches!(
                known.event_type,
                EventType::TripAnnounced | EventType::TripStopAdded
            )
            .then(|| current.data.clone());
            merge_patch(&mut current.data, patch);
            let typed = EventData::parse(known.event_type, &current.data).map_err(|e| {
                let path = if e.path.is_empty() {
                    String::new()
                } else {
                    format!(".{}", e.path)
                };
                invalid(
                    index,
                    &format!("data.data{path}"),
                    format!(
                        "{} (`data` is a merge patch of the target's data: its fields replace the target's, null removes one, and the result must fit the target's type `{}`)",
                        e.message, known.event_type
                    ),
                )
            })?;
            // Compared as JSON: typed data would take `…T09:00:00+03:00` for the same
            // instant as `…T06:00:00Z`, though the fact shows the time as written.
            if same_date && unchanged.as_ref().is_some_and(|u| u.0 == current.data) {
                return Err(invalid(
                    index,
                    "data.data",
                    format!(
                        "the correction changes nothing: the target's data already has these values{}; nothing was written (to cite another source for it, append an evidence.added)",
                        match correction.occurred {
                            Some(_) => ", and its date is already this one",
                            None => "",
                        }
                    ),
                ));
            }
            check_entities(db, group, job, index, "data.data.", &typed)?;
            if proposed.restored.is_none() {
                check_patched(db, group, job, index, &known.stream, patch, &typed)?;
                if let Some(plan) = plan.filter(|_| !current.retracted) {
                    let corrected = Some(&current.data);
                    check_stops_kept(db, group, job, index, &known, target, &plan, corrected)?;
                }
            }
        }
        // The facts layer ignores amendments of a retracted fact; so does the data.
        if !current.retracted {
            amended = Some((target, current));
        }
    }
    Ok(Amendment {
        amended,
        retracted_target,
    })
}

/// The target's data as it stands before this event: from the pending appends when one
/// of them added or amended it, or else folded from its stream in the log. `None` when
/// the group set its pending facts aside and the target is one of them.
fn current_data(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    known: &IdInfo,
    target: Uuid,
) -> Result<Option<Current>> {
    if let Some(current) = job.facts.get(&target).or_else(|| group.facts.get(&target)) {
        return Ok(Some(current.clone()));
    }
    if let Some(record) = pending_record(job, known.entry.position)
        .or_else(|| pending_record(group, known.entry.position))
    {
        // Added by a pending event and not amended since.
        return Ok(Some(Current {
            data: record.event.data.clone(),
            occurred: record.event.occurred,
            retracted: false,
        }));
    }
    if group.forgot(&target) {
        return Ok(None);
    }
    let events = db.stream_events(&known.stream, known.entry.version)?;
    let current = facts::fold(&events)
        .into_iter()
        .find(|fact| fact.id == target)
        .map(|fact| Current {
            data: fact.data,
            occurred: fact.occurred,
            retracted: fact.retracted,
        });
    current.map(Some).ok_or_else(|| {
        Error::Integrity(format!(
            "event {target} is indexed at version {} of `{}`, which does not hold it; run `chronicle verify`",
            known.entry.version, known.stream
        ))
    })
}

/// The pending record at `position`, if `pending` holds it.
fn pending_record(pending: &Pending, position: Position) -> Option<&Record> {
    let first = pending.records.first()?.event.position.0;
    let record = pending
        .records
        .get(usize::try_from(position.0.checked_sub(first)?).ok()?)?;
    (record.event.position == position).then_some(record)
}

/// Whether the event would begin a trip's stream with something other than its
/// announcement (the traveler and the stops): most likely a mistyped stream id. It is
/// appended, with a note; events restored from an export get none.
fn opens_trip_unannounced(proposed: &ProposedEvent) -> bool {
    proposed.stream.category() == "trip"
        && proposed.event_type != EventType::TripAnnounced
        && proposed.restored.is_none()
}

/// An event at a place of a trip (an arrival, a departure, a meeting held or planned, an
/// agenda item, a stop's cancellation), or a correction that moves one, must name one
/// of the trip's stops, as the trip's view folds them from its current facts (its
/// announcements' stops and `trip.stop_added`, after their corrections and
/// retractions) and matches places to them ([`trips::stop_index`]). A cancelled stop is
/// still a stop: an arrival there is news, not a mistake.
fn check_stop(
    db: &dyn LogIndex,
    group: &Pending,
    job: &mut Pending,
    index: usize,
    proposed: &ProposedEvent,
    amended: Option<&(Uuid, Current)>,
    opens_stream: bool,
) -> Result<()> {
    let corrected;
    let (event_type, data) = match amended {
        Some((target, current)) if proposed.stream.category() == "trip" && !current.retracted => {
            let event_type = lookup_id(db, group, job, target)?
                .map(|known| known.event_type)
                .expect("check_references found the target");
            match EventData::parse(event_type, &current.data) {
                Ok(data) => {
                    corrected = data;
                    (event_type, &corrected)
                }
                Err(_) => return Ok(()),
            }
        }
        _ => (proposed.event_type, &proposed.typed),
    };
    // The stop an event is at, or the one a new stop is to follow.
    let named = match (trips::at_stop(data), data) {
        (Some(place), _) => Some((place, "place")),
        (
            None,
            EventData::TripStopAdded(TripStopAdded {
                after: Some(after), ..
            }),
        ) => Some((after, "after")),
        _ => None,
    };
    // A new stop that the trip already has.
    let added = match (amended, data) {
        (None, EventData::TripStopAdded(added)) => Some(added),
        _ => None,
    };
    if named.is_none() && added.is_none() {
        return Ok(());
    }
    let mut itinerary = match job.itineraries.remove(&proposed.stream) {
        Some(known) => known,
        None => Itinerary::of(db, group, job, &proposed.stream)?,
    };
    if let Some(added) = added {
        itinerary.learn(db, group, job, &added.place)?;
    }
    let repeated = added.and_then(|added| itinerary.repeated_stop(&proposed.stream, added));
    let (Some((place, named_by)), None) = (named, &repeated) else {
        job.itineraries.insert(proposed.stream.clone(), itinerary);
        return repeated.map_or(Ok(()), |message| Err(invalid(index, "data.place", message)));
    };
    itinerary.learn(db, group, job, place)?;
    let found = {
        let places = |p: &EntityId| itinerary.places.get(p).cloned();
        trips::stop_index(&itinerary.stops, place, &places).is_some()
    };
    let stops = if found {
        None
    } else {
        let places = |p: &EntityId| itinerary.places.get(p).cloned();
        let labels: Vec<String> = itinerary
            .stops
            .iter()
            .map(|s| trips::stop_label(s, &places))
            .collect();
        Some(labels)
    };
    job.itineraries.insert(proposed.stream.clone(), itinerary);
    let Some(stops) = stops else {
        return Ok(());
    };
    let field = match amended {
        Some(_) => format!("data.data.{named_by}"),
        // A trip's stream with no events: most likely a mistyped stream id.
        None if opens_stream => "stream".to_owned(),
        None => format!("data.{named_by}"),
    };
    let relation = if named_by == "after" { "after" } else { "at" };
    let what = match amended {
        Some(_) => format!("the corrected {event_type} {relation}"),
        None => format!("{event_type} {relation}"),
    };
    let fix = match named_by {
        "after" => "name one of these in `after`, or leave `after` out to add the stop last",
        _ => "name one of these, or add it first with trip.stop_added",
    };
    let message = if opens_stream {
        format!(
            "{what} {place}: `{}` has no events yet, and a trip's stream begins with trip.announced (its traveler and stops); append that first, or check the stream id (`chronicle trip list` (or `GET /trips`) lists the trips)",
            proposed.stream
        )
    } else if stops.is_empty() {
        format!(
            "{what} {place}: `{}` has no stops yet; add this one first with trip.stop_added (or list the stops in trip.announced)",
            proposed.stream
        )
    } else {
        format!(
            "{what} {place}: not a stop of `{}` (stops: {}); {fix}",
            proposed.stream,
            stops.join(", ")
        )
    };
    Err(invalid(index, &field, message))
}

/// A trip's stops as the stop rule sees them, with what it knows of the registered
/// places involved: kept by the job until an event changes the trip (or a place).
#[derive(Debug, Clone)]
pub struct Itinerary {
    stops: Vec<trips::Stop>,
    places: HashMap<EntityId, trips::PlaceInfo>,
}

/// What to do instead of adding a stop again.
const ONE_STOP: &str = "another report of it is evidence.added, and new dates or a new place in the order a correction, each with `target` the event that planned the stop";

impl Itinerary {
    /// Adds what the log and the pending appends say of a registered place (its
    /// country, its names) to what the itinerary knows, for matching it to a stop.
    fn learn(
        &mut self,
        db: &dyn LogIndex,
        group: &Pending,
        job: &Pending,
        place: &EntityId,
    ) -> Result<()> {
        if place.kind() == "place" && !self.places.contains_key(place) {
            let own = stream_facts(db, group, job, place.stream())?;
            if let Some(info) = trips::place_info(&own) {
                self.places.insert(place.clone(), info);
            }
        }
        Ok(())
    }

    /// Why a `trip.stop_added` of a stop the trip already has is refused: the same
    /// place and city (not called off: that one it puts back on the plan), or the same
    /// place where one of the two has no city. Events that name the place would all go
    /// to the first, and a second report of a stop is evidence for the first.
    fn repeated_stop(&self, trip: &StreamId, added: &TripStopAdded) -> Option<String> {
        let city = added.city.as_deref();
        let names = |p: &EntityId, name: &str| {
            self.places.get(p).is_some_and(|info| {
                (info.names.iter()).any(|n| n.trim().eq_ignore_ascii_case(name.trim()))
            })
        };
        let country = |p: &EntityId| self.places.get(p).and_then(|info| info.country.clone());
        // The same stop under another name: a registered place and its country with
        // its name as the city (`place:seoul` and `country:KR`, "Seoul").
        let same_by_name = |s: &trips::Stop| match (&s.city, city) {
            (Some(c), None) => {
                country(&added.place).as_ref() == Some(&s.place) && names(&added.place, c)
            }
            (None, Some(c)) => {
                country(&s.place).as_ref() == Some(&added.place) && names(&s.place, c)
            }
            _ => false,
        };
        let (i, stop) = (self.stops.iter().enumerate()).find(|(_, s)| {
            (s.place == added.place
                && (s.city.is_none() != city.is_none() || s.is_at(&added.place, city)))
                || same_by_name(s)
        })?;
        let called_off = stop.called_off();
        if called_off && stop.is_at(&added.place, city) {
            return None;
        }
        let places = |p: &EntityId| self.places.get(p).cloned();
        let new = trips::Stop::planned(added.place.clone(), added.city.clone(), added.dates);
        let (new, existing) = (
            trips::stop_label(&new, &places),
            trips::stop_label(stop, &places),
        );
        let at = format!("stop {} of {}", i + 1, self.stops.len());
        Some(match (stop.is_at(&added.place, city), same_by_name(stop)) {
            (true, _) => format!(
                "trip.stop_added of {existing}: `{trip}` already has this stop ({at}), and a second would get none of its events; {ONE_STOP}"
            ),
            (false, true) if called_off => format!(
                "trip.stop_added of {new}: `{trip}` has this stop as {existing} ({at}); to put it back on the plan, add it as that: `place` {}{}",
                stop.place,
                stop.city
                    .as_ref()
                    .map_or_else(String::new, |c| format!(", `city` \"{c}\"")),
            ),
            (false, true) => format!(
                "trip.stop_added of {new}: `{trip}` already has this stop as {existing} ({at}), and a second would split its events; {ONE_STOP}"
            ),
            (false, false) => format!(
                "trip.stop_added of {new}: `{trip}` already has a stop at {}, {existing} ({at}), which events that name {} go to, so this one would get none of them; if the two are one stop, {}; if not, give each its own city",
                added.place,
                added.place,
                match called_off {
                    true =>
                        "add it again as that one (its place and city) to put it back on the plan",
                    false =>
                        "correct the event that planned it (to give it its city) or add this report with evidence.added",
                },
            ),
        })
    }

    /// Folds the trip's stops from the log and the pending appends (or, when no
    /// pending event changes them, takes them from `db` if it kept them).
    fn of(db: &dyn LogIndex, group: &Pending, job: &Pending, trip: &StreamId) -> Result<Itinerary> {
        let committed_only = !group.changes_itinerary(trip) && !job.changes_itinerary(trip);
        if committed_only && let Some(known) = db.itinerary(trip) {
            return Ok(known);
        }
        // Only the facts that plan or cancel stops (`stream_facts` keeps no other): the
        // view adds a stop for an event at a place it does not know, but that is for
        // logs written before this rule, and a retracted stop must not come back
        // through an arrival there.
        let facts: Vec<Fact> = stream_facts(db, group, job, trip)?
            .into_iter()
            .filter(|f| !f.retracted)
            .collect();
        let places = places_of(db, group, job, &facts)?;
        let doc = trips::TripDoc {
            stream: trip.clone(),
            version: Version(0),
            last_position: Position(0),
            travelers: Vec::new(),
        };
        let stops = trips::view(&doc, &facts, &|p| places.get(p).cloned()).stops;
        let itinerary = Itinerary { stops, places };
        if committed_only {
            db.remember_itinerary(trip, &itinerary);
        }
        Ok(itinerary)
    }
}

/// The facts of a `trip:` or `place:` stream as the log and the pending appends leave
/// them, retracted ones marked; of a trip, only the facts that plan or cancel stops.
fn stream_facts(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    stream: &StreamId,
) -> Result<Vec<Fact>> {
    stream_facts_of(db, group, job, stream, true)
}

/// [`stream_facts`], or of a trip every fact when not `stops_only`: of the pending ones,
/// those of the records (a dry run keeps none: then only those [`stream_facts`] folds,
/// and [`Pending::at_place`] says which trips have others).
fn stream_facts_of(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    stream: &StreamId,
    stops_only: bool,
) -> Result<Vec<Fact>> {
    let logged = db.stream_events(stream, Version(1))?;
    let set_aside = group.set_aside.kept(stream)?;
    let pending = [group, job].into_iter().flat_map(|p| {
        let (records, folded) = match stops_only || p.records.is_empty() {
            true => (None, p.streams.get(stream)),
            false => (Some(p.records.iter().map(|r| &r.event)), None),
        };
        let records = records
            .into_iter()
            .flatten()
            .filter(|e| &e.stream == stream);
        folded.into_iter().flatten().chain(records)
    });
    let trip = stops_only && stream.category() == "trip";
    Ok(facts::fold(
        logged
            .iter()
            .chain(&set_aside)
            .chain(pending)
            .filter(|e| !trip || stop_rule_folds(e)),
    ))
}

/// What the log says of the registered places among `facts`' entities.
fn places_of<'a>(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    facts: impl IntoIterator<Item = &'a Fact>,
) -> Result<HashMap<EntityId, trips::PlaceInfo>> {
    let mut places = HashMap::new();
    for entity in facts.into_iter().flat_map(Fact::entities) {
        if entity.kind() != "place" || places.contains_key(&entity) {
            continue;
        }
        let own = stream_facts(db, group, job, entity.stream())?;
        if let Some(info) = trips::place_info(&own) {
            places.insert(entity, info);
        }
    }
    Ok(places)
}

/// An amendment of a trip's plan (a `trip.announced` or `trip.stop_added` retracted, or
/// corrected so that its data becomes `corrected`) is refused when an event at one of
/// the trip's stops would then land on another stop: the trip's view folds the trip
/// with and without it ([`trips::fold`]) and compares where each event at a place
/// landed. A stop counts as the same when it comes from the same plan fact and no stop
/// of the amended plan has its old place and city (a city fixed), or when it has the
/// same place and city (a re-announcement lists it too). An event left at no stop of
/// the plan is refused too: the view would list its place as a stop of its own, as if
/// planned. Reads the trip's whole stream, only for an amendment that changes stops
/// (`data` the target's data before it).
#[allow(clippy::too_many_arguments)]
fn check_stops_kept(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    index: usize,
    known: &IdInfo,
    target: Uuid,
    data: &Value,
    corrected: Option<&Value>,
) -> Result<()> {
    let plan = |d: &Value| match known.event_type {
        EventType::TripAnnounced => vec![d.get("stops").cloned()],
        EventType::TripStopAdded => ["place", "city", "after"]
            .iter()
            .map(|f| d.get(*f).cloned())
            .collect(),
        _ => Vec::new(),
    };
    if plan(data).is_empty() || corrected.is_some_and(|c| plan(c) == plan(data)) {
        return Ok(());
    }
    let trip = &known.stream;
    let unseen = [group, job]
        .iter()
        .any(|p| p.records.is_empty() && p.at_place.contains(trip))
        || group.set_aside.at_place.contains(trip);
    if unseen {
        return Err(invalid(
            index,
            "data.target",
            format!(
                "this amends the plan of `{trip}`, and the same input files events at its stops before it, which the check of a long input cannot weigh against it: append or import the amendment on its own, in a later command"
            ),
        ));
    }
    let before: Vec<Fact> = stream_facts_of(db, group, job, trip, false)?
        .into_iter()
        .filter(|f| !f.retracted)
        .collect();
    let amended: Vec<Fact> = before
        .iter()
        .filter_map(|f| match (f.id == target, corrected) {
            (false, _) => Some(f.clone()),
            (true, Some(data)) => Some(Fact {
                data: data.clone(),
                ..f.clone()
            }),
            (true, None) => None,
        })
        .collect();
    let places = places_of(db, group, job, before.iter().chain(&amended))?;
    let places = |p: &EntityId| places.get(p).cloned();
    let doc = trips::TripDoc {
        stream: trip.clone(),
        version: Version(0),
        last_position: Position(0),
        travelers: Vec::new(),
    };
    let was = trips::fold(&doc, &before, &places);
    let now = trips::fold(&doc, &amended, &places);
    let same_place = |a: &trips::Stop, b: &trips::Stop| a.is_at(&b.place, b.city.as_deref());
    let landed_now: HashMap<Uuid, usize> = now.landed.iter().copied().collect();
    let mut moved = Vec::new();
    for (id, b) in &was.landed {
        let Some(&a) = landed_now.get(id) else {
            continue;
        };
        let (from, to) = (&was.view.stops[*b], &now.view.stops[a]);
        let still_planned = |stop: &trips::Stop| {
            (now.view.stops.iter().zip(&now.planned)).any(|(s, p)| *p && same_place(s, stop))
        };
        let kept = match (was.origins[*b] == now.origins[a], same_place(from, to)) {
            _ if !was.planned[*b] => true,
            _ if !now.planned[a] => false,
            (_, true) => true,
            // The same plan fact's stop with another place or city: its city fixed,
            // unless the old one is still planned (the stops listed in another order).
            (true, false) => !still_planned(from),
            (false, false) => false,
        };
        if !kept {
            moved.push((*id, from, to, now.planned[a]));
        }
    }
    let Some((id, from, to, planned)) = moved.first() else {
        return Ok(());
    };
    let fact = before.iter().find(|f| f.id == *id).expect("a folded fact");
    let whither = match planned {
        true => format!("would move to the stop {}", trips::stop_label(to, &places)),
        false => "would be at no stop of the plan".into(),
    };
    // A stop already called off needs no advice to call it off.
    let instead = match fact.event_type {
        EventType::TripStopCancelled => "",
        _ => " (to call a stop off and keep its history, append trip.stop_cancelled instead)",
    };
    let more = match moved.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more event)".into(),
        n => format!(" (and {n} more events)"),
    };
    Err(invalid(
        index,
        "data.target",
        format!(
            "the {} {} at position {} is at the stop {}, and {whither}{more}: retract or correct it first, then amend the plan{instead}",
            fact.event_type,
            fact.id,
            fact.position,
            trips::stop_label(from, &places),
        ),
    ))
}

/// The unregistered `place:` id an error of [`check_entities`] is about.
fn unregistered_place(error: &Error) -> Option<EntityId> {
    match error {
        Error::Invalid { error, .. } => {
            unregistered_entity(&error.message).filter(|id| id.kind() == "place")
        }
        _ => None,
    }
}

/// For an unregistered `place:` id that is the slug of the city of one of `trip`'s
/// stops (`place:doha` beside `country:QA`, "Doha"): how the trip names that stop.
fn city_stop(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    trip: &StreamId,
    place: &EntityId,
) -> Result<Option<String>> {
    let itinerary = Itinerary::of(db, group, job, trip)?;
    let slug = |city: &str| crate::model::ids::slug_of(city);
    let stop = itinerary
        .stops
        .iter()
        .find(|s| s.city.as_deref().and_then(slug).as_deref() == Some(place.stream().slug()));
    Ok(stop.map(|s| {
        format!(
            "; `{trip}` has the stop `{}`, \"{}\": name it so (`place` {}), or register `{place}` with `country` {} to name it by that id",
            s.place,
            s.city.as_deref().unwrap_or_default(),
            s.place,
            s.place,
        )
    }))
}

/// `error` with `hint` after its message.
fn with_hint(error: Error, hint: &str) -> Error {
    match error {
        Error::Invalid { index, mut error } => {
            error.message.push_str(hint);
            Error::Invalid { index, error }
        }
        other => other,
    }
}

fn check_entities(
    db: &dyn LogIndex,
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
                format!("entity `{entity}{NOT_REGISTERED} (countries are built in as country:XX)"),
            ));
        }
    }
    Ok(())
}

/// A new statement is about entities (checked as every entity reference is) and streams
/// the log holds, or its own: a stream id with a typo would leave it about nothing.
fn check_about(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    index: usize,
    proposed: &ProposedEvent,
) -> Result<()> {
    match &proposed.typed {
        EventData::StatementIssued(statement) => {
            let own = &proposed.stream;
            check_about_streams(db, group, job, index, "data.", own, &statement.about)
        }
        _ => Ok(()),
    }
}

fn check_about_streams(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    index: usize,
    prefix: &str,
    own: &StreamId,
    about: &[StreamId],
) -> Result<()> {
    for (i, stream) in about.iter().enumerate() {
        if stream.is_entity() || stream == own {
            continue;
        }
        if lookup_version(db, group, job, stream)? == 0 {
            return Err(invalid(
                index,
                &format!("{prefix}about[{i}]"),
                format!(
                    "the log holds no stream `{stream}`; a statement is about entities and streams with events (check the id; `chronicle log --category {0}`, or `GET /events?category={0}`, lists that category's events)",
                    stream.category()
                ),
            ));
        }
    }
    Ok(())
}

/// A correction is held to a new event's rules for the fields its patch sets (a
/// registration's aliases, a sale's parties and items, a statement's `about`), so that
/// it cannot make what a new event could not; the fields it leaves keep what an older
/// log accepted.
fn check_patched(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    index: usize,
    stream: &StreamId,
    patch: &serde_json::Value,
    typed: &EventData,
) -> Result<()> {
    let sets = |field: &str| patch.get(field).is_some();
    match typed {
        EventData::ArmsSaleAnnounced(sale) => {
            let parties = sets("seller") || sets("buyer");
            crate::model::event::check_sale(sale, "data.data.", parties, sets("items"))
                .map_err(|e| Error::invalid(index, e))
        }
        EventData::EntityRegistered(registration) if sets("aliases") => {
            crate::model::event::check_aliases(&registration.aliases, "data.data.")
                .map_err(|e| Error::invalid(index, e))
        }
        EventData::StatementIssued(statement) if sets("about") => check_about_streams(
            db,
            group,
            job,
            index,
            "data.data.",
            stream,
            &statement.about,
        ),
        _ => Ok(()),
    }
}

fn lookup_version(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    stream: &StreamId,
) -> Result<u64> {
    match job
        .versions
        .get(stream)
        .or_else(|| group.versions.get(stream))
        .copied()
        .or_else(|| group.set_aside.version(stream))
    {
        Some(v) => Ok(v),
        None => db.stream_version(stream),
    }
}

fn lookup_id(
    db: &dyn LogIndex,
    group: &Pending,
    job: &Pending,
    id: &Uuid,
) -> Result<Option<IdInfo>> {
    match job.ids.get(id).or_else(|| group.ids.get(id)) {
        Some(info) => Ok(Some(info.clone())),
        None => match group.set_aside.id(id) {
            Some(info) => Ok(Some(info)),
            None => db.id(id),
        },
    }
}

#[cfg(test)]
mod tests {
    //! The rules without sled: a log index in memory, and the decider over it.

    use super::super::stream_cache::{Cached, StreamCache};
    use super::*;
    use crate::model::{Origin, parse_event_value};
    use serde_json::{Value, json};

    /// The committed log, as far as the rules read it.
    #[derive(Default)]
    struct MemIndex {
        versions: HashMap<StreamId, u64>,
        ids: HashMap<Uuid, IdInfo>,
        events: Vec<RecordedEvent>,
        tail: Option<Tail>,
        /// Read through the writer's cache, told of each commit as the writer tells it.
        cache: Option<StreamCache>,
    }

    impl LogIndex for MemIndex {
        fn stream_version(&self, stream: &StreamId) -> Result<u64> {
            Ok(self.versions.get(stream).copied().unwrap_or(0))
        }

        fn id(&self, id: &Uuid) -> Result<Option<IdInfo>> {
            // As sled's index answers: with the digest of the stored event.
            Ok(self.ids.get(id).cloned().map(|mut info| {
                info.digest = self
                    .events
                    .iter()
                    .find(|e| e.position == info.entry.position)
                    .map(RecordedEvent::content_digest);
                info
            }))
        }

        fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
            Ok(self
                .events
                .iter()
                .filter(|e| &e.stream == stream && e.version >= from)
                .cloned()
                .collect())
        }
    }

    impl MemIndex {
        /// Decides one append and, when accepted, commits it to the index.
        fn append(&mut self, events: &[Value]) -> Result<Vec<AppendedEvent>> {
            self.append_at(events, Utc::now())
        }

        fn append_at(
            &mut self,
            events: &[Value],
            now: DateTime<Utc>,
        ) -> Result<Vec<AppendedEvent>> {
            let group = Pending::new(self.tail.unwrap_or_else(|| Tail::from_head(None)));
            let (job, appended) = self.decide(&group, events, now)?;
            self.versions.extend(job.versions);
            self.ids.extend(job.ids);
            let committed: Vec<RecordedEvent> = job.records.into_iter().map(|r| r.event).collect();
            if let Some(cache) = &self.cache {
                cache.committed(&committed);
            }
            self.events.extend(committed);
            self.tail = Some(job.tail);
            Ok(appended)
        }

        /// Decides one job against the log and `group`, read through the writer's
        /// cache when this index has one.
        fn decide(
            &self,
            group: &Pending,
            events: &[Value],
            now: DateTime<Utc>,
        ) -> Result<(Pending, Vec<AppendedEvent>)> {
            let proposed: Vec<ProposedEvent> = events
                .iter()
                .map(|v| parse_event_value(v.clone(), Origin::New).expect("a valid event"))
                .collect();
            match &self.cache {
                Some(cache) => {
                    let cached = Cached { index: self, cache };
                    check_job(&cached, group, proposed, now, true)
                }
                None => check_job(self, group, proposed, now, true),
            }
        }

        /// Decides appends as one group of the writer, each job against the jobs
        /// before it, without committing them; with `set_aside`, the group's facts are
        /// set aside after each job, as `import`'s check does after each batch.
        fn check_group(&self, jobs: &[&[Value]], set_aside: bool) -> Result<()> {
            let mut group = Pending::new(self.tail.unwrap_or_else(|| Tail::from_head(None)));
            for events in jobs {
                let (job, _) = self.decide(&group, events, Utc::now())?;
                group.absorb(job);
                if set_aside {
                    group.set_facts_aside(&HashSet::new());
                }
            }
            Ok(())
        }

        /// An empty log read directly, and one read through the writer's cache: the
        /// rules must answer the same over both.
        fn both() -> [MemIndex; 2] {
            let cached = MemIndex {
                cache: Some(StreamCache::default()),
                ..MemIndex::default()
            };
            [MemIndex::default(), cached]
        }

        fn event(&self, id: &str) -> &RecordedEvent {
            let id = Uuid::parse_str(id).unwrap();
            self.events.iter().find(|e| e.id == id).unwrap()
        }
    }

    fn started(stream: &str, id: Option<&str>, expect: Value) -> Value {
        let mut e = json!({"stream": stream, "type": "trip.started", "occurred": "2025-01-05",
                           "data": {}, "expect": expect});
        if let Some(id) = id {
            e["id"] = json!(id);
        }
        e
    }

    const ID: &str = "0194210c-7d2e-7c4e-9c51-1b3f4a5d6e70";

    #[test]
    fn positions_and_versions_continue_from_the_log() {
        let mut log = MemIndex::default();
        let a = log
            .append(&[
                started("trip:a", None, json!("any")),
                started("trip:b", None, json!("any")),
            ])
            .unwrap();
        assert_eq!((a[0].position, a[0].version), (Position(1), Version(1)));
        assert_eq!((a[1].position, a[1].version), (Position(2), Version(1)));
        let b = log.append(&[started("trip:a", None, json!(1))]).unwrap();
        assert_eq!((b[0].position, b[0].version), (Position(3), Version(2)));
    }

    #[test]
    fn a_retry_by_id_is_a_no_op_and_other_content_is_refused() {
        let mut log = MemIndex::default();
        let first = log
            .append(&[started("trip:a", Some(ID), json!("none"))])
            .unwrap();
        // The retry's `expect: none` no longer holds, but idempotency is checked first.
        let retry = log
            .append(&[started("trip:a", Some(ID), json!("none"))])
            .unwrap();
        assert_eq!(retry[0].position, first[0].position);
        assert!(!retry[0].new);
        let mut other = started("trip:a", Some(ID), json!("none"));
        other["occurred"] = json!("2025-01-06");
        let err = log.append(&[other]).unwrap_err();
        assert!(err.to_string().contains("different content"), "{err}");
    }

    #[test]
    fn a_retry_is_checked_against_the_version_it_was_written_as() {
        let mut log = MemIndex::default();
        log.append(&[started("trip:a", Some(ID), json!("none"))])
            .unwrap();
        log.append(&[started("trip:a", None, json!(1))]).unwrap();
        // The same append again: its expectation held when it was written.
        let retry = log
            .append(&[started("trip:a", Some(ID), json!(0))])
            .unwrap();
        assert!(!retry[0].new);
        // Alone, it changes nothing, whatever it expects.
        for expect in [json!(1), json!("exists"), json!(5)] {
            let retry = log
                .append(&[started("trip:a", Some(ID), expect.clone())])
                .unwrap();
            assert!(!retry[0].new, "{expect}");
        }
        // Another append that begins with it: version 1 does not follow version 1, so
        // the event after it would land unchecked; refused, nothing written.
        let err = log
            .append(&[
                started("trip:a", Some(ID), json!(1)),
                started("trip:a", None, json!("any")),
            ])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    index: 0,
                    actual: Version(2),
                    written: Some(Version(1)),
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("as version 1 of `trip:a`"),
            "{err}"
        );
        assert_eq!(
            log.append(&[started("trip:a", None, json!(2))]).unwrap()[0].version,
            Version(3)
        );
    }

    #[test]
    fn expectations_are_checked_against_the_log_and_the_same_append() {
        let mut log = MemIndex::default();
        let err = log
            .append(&[started("trip:a", None, json!("exists"))])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    actual: Version(0),
                    ..
                }
            ),
            "{err}"
        );
        // The second event sees the first one of the same append.
        log.append(&[
            started("trip:a", None, json!("none")),
            started("trip:a", None, json!(1)),
        ])
        .unwrap();
        let err = log
            .append(&[started("trip:a", None, json!(1))])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    index: 0,
                    actual: Version(2),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn entities_must_be_registered_first_even_in_the_same_append() {
        let mut log = MemIndex::default();
        let arrival = json!({"stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-05",
                             "data": {"place": "place:seoul"}});
        let err = log.append(std::slice::from_ref(&arrival)).unwrap_err();
        assert!(err.to_string().contains("data.place"), "{err}");
        let register = json!({"stream": "place:seoul", "type": "entity.registered",
                              "data": {"name": "Seoul", "aliases": []}});
        log.append(&[register, arrival]).unwrap();
    }

    #[test]
    fn amendments_point_at_an_earlier_event_of_the_same_stream() {
        let mut log = MemIndex::default();
        log.append(&[started("trip:a", Some(ID), json!("any"))])
            .unwrap();
        let retract = |stream: &str| {
            json!({"stream": stream, "type": "event.retracted", "occurred": "2025-01-06",
                   "data": {"target": ID, "reason": "wrong"}})
        };
        let err = log.append(&[retract("trip:b")]).unwrap_err();
        assert!(err.to_string().contains("is in stream `trip:a`"), "{err}");
        log.append(&[retract("trip:a")]).unwrap();
        let unknown = json!({"stream": "trip:a", "type": "event.retracted", "occurred": "2025-01-06",
                             "data": {"target": "0194210c-0000-7000-8000-000000000000", "reason": "x"}});
        let err = log.append(&[unknown]).unwrap_err();
        assert!(err.to_string().contains("no event with id"), "{err}");
    }

    const SALE: &str = "0194210c-0000-7000-8000-0000000000a1";

    fn sale() -> Value {
        json!({"id": SALE, "stream": "arms-sale:us-jp", "type": "arms_sale.announced",
               "occurred": "2025-01-02",
               "data": {"seller": "country:US", "buyer": "country:JP",
                        "value": {"amount": 3640000000_u64, "currency": "USD"},
                        "items": ["missiles"]}})
    }

    fn correct(patch: Value) -> Value {
        json!({"stream": "arms-sale:us-jp", "type": "event.corrected",
               "data": {"target": SALE, "data": patch, "reason": "a later report"}})
    }

    #[test]
    fn a_retry_in_the_same_append_or_group_is_compared_with_the_pending_event() {
        let mut log = MemIndex::default();
        let event = started("trip:a", Some(ID), json!("any"));
        let mut changed = event.clone();
        changed["occurred"] = json!("2025-01-06");
        let twice = log.append(&[event.clone(), event.clone()]).unwrap();
        assert!(twice[0].new && !twice[1].new, "{twice:?}");
        assert_eq!(twice[0].position, twice[1].position);
        let mut fresh = event.clone();
        fresh["id"] = json!("0194210c-7d2e-7c4e-9c51-1b3f4a5d6e71");
        let mut fresh_changed = fresh.clone();
        fresh_changed["occurred"] = json!("2025-01-06");
        let err = log
            .append(&[fresh.clone(), fresh_changed.clone()])
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "is already used, with different content, by an earlier event given with it"
            ),
            "{err}"
        );
        // Jobs of one group, with the group's facts kept or set aside (as `import`'s
        // check does between batches).
        for set_aside in [false, true] {
            log.check_group(&[&[fresh.clone()], &[fresh.clone()]], set_aside)
                .unwrap();
            let err = log
                .check_group(&[&[fresh.clone()], &[fresh_changed.clone()]], set_aside)
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("by an event not yet written (it would be position 2)"),
                "{err}"
            );
        }
        // And the committed event, against a retry with other content.
        let err = log.append(&[changed]).unwrap_err();
        assert!(
            err.to_string()
                .contains("is already in the log (position 1) with different content"),
            "{err}"
        );
    }

    #[test]
    fn a_large_append_is_idempotent_and_a_changed_line_in_it_is_refused() {
        let n = 257;
        let mut events: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": format!("0194210c-0000-7000-9000-{i:012x}"),
                       "stream": format!("org:o{i}"), "type": "entity.registered",
                       "data": {"name": format!("Org {i}"), "aliases": []}})
            })
            .collect();
        // An undated amendment, which the store dates, near the end.
        events.insert(
            n - 2,
            json!({"id": "0194210c-0000-7000-8000-0000000000c1", "stream": "arms-sale:us-jp",
                   "type": "event.corrected",
                   "data": {"target": SALE, "data": {"approximate": true}, "reason": "a later report"}}),
        );
        let mut log = MemIndex::default();
        log.append(&[sale()]).unwrap();
        let first = log.append(&events).unwrap();
        assert!(first.iter().all(|a| a.new));
        let again = log.append(&events).unwrap();
        assert!(again.iter().all(|a| !a.new));
        assert_eq!(
            first.iter().map(|a| a.position).collect::<Vec<_>>(),
            again.iter().map(|a| a.position).collect::<Vec<_>>()
        );
        for event in &log.events {
            let entry = log.ids[&event.id].entry;
            assert_eq!(
                (entry.position, entry.version),
                (event.position, event.version)
            );
        }
        for changed in [3, n - 3] {
            let mut altered = events.clone();
            altered[changed]["data"]["name"] = json!("Another name");
            match log.append(&altered).unwrap_err() {
                Error::Invalid { index, error } => {
                    assert_eq!(index, Some(changed));
                    assert!(error.message.contains("with different content"), "{error}");
                }
                other => panic!("expected a validation error, got {other}"),
            }
        }
    }

    /// The error's field and message, for an append that must be refused.
    fn refused(log: &mut MemIndex, events: &[Value]) -> (String, String) {
        match log.append(events).unwrap_err() {
            Error::Invalid { error, .. } => (error.field.unwrap_or_default(), error.message),
            other => panic!("expected a validation error, got {other}"),
        }
    }

    #[test]
    fn a_correction_names_only_the_changed_fields() {
        let mut log = MemIndex::default();
        log.append(&[sale()]).unwrap();
        log.append(&[correct(json!({"approximate": true}))])
            .unwrap();
        let (field, message) = refused(&mut log, &[correct(json!({"seller": null}))]);
        assert_eq!(field, "data.data.seller");
        assert!(message.contains("`seller` is missing"), "{message}");
        let (field, _) = refused(&mut log, &[correct(json!({"value": {"amount": -1}}))]);
        assert_eq!(field, "data.data.value.amount");
        let (field, _) = refused(&mut log, &[correct(json!({"buyer": "person:nobody"}))]);
        assert_eq!(field, "data.data.buyer");
    }

    #[test]
    fn a_correction_is_checked_against_the_corrections_before_it() {
        // In the log, in the same append, and in the group before it.
        let mut log = MemIndex::default();
        log.append(&[sale()]).unwrap();
        log.append(&[correct(json!({"value": {"currency": "EUR"}}))])
            .unwrap();
        // Removing `approximate` is fine only once it is there; `items: null` never.
        log.append(&[
            correct(json!({"approximate": true})),
            correct(json!({"approximate": null})),
        ])
        .unwrap();
        let (field, _) = refused(
            &mut log,
            &[
                correct(json!({"items": ["a"]})),
                correct(json!({"items": null})),
            ],
        );
        assert_eq!(field, "data.data.items");

        let proposed = |v: Value| parse_event_value(v, Origin::New).unwrap();
        let group = Pending::new(log.tail.unwrap());
        let (first, _) = check_job(
            &log,
            &group,
            vec![proposed(correct(json!({"value": {"amount": 5}})))],
            Utc::now(),
            true,
        )
        .unwrap();
        let mut group = group;
        group.absorb(first);
        assert_eq!(
            group.facts[&Uuid::parse_str(SALE).unwrap()].data["value"],
            json!({"amount": 5, "currency": "EUR"})
        );
        // A patch of the fact and one of the sale appended in the same job.
        let (_, appended) = check_job(
            &log,
            &group,
            vec![proposed(correct(json!({"value": {"currency": "JPY"}})))],
            Utc::now(),
            true,
        )
        .unwrap();
        assert_eq!(appended.len(), 1);
        let mut other = sale();
        other["id"] = json!(ID);
        other["stream"] = json!("arms-sale:other");
        let fix = json!({"stream": "arms-sale:other", "type": "event.corrected",
                         "data": {"target": ID, "data": {"seller": null}, "reason": "x"}});
        let err = check_job(
            &log,
            &group,
            vec![proposed(other), proposed(fix)],
            Utc::now(),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("data.data.seller"), "{err}");
    }

    #[test]
    fn corrections_after_a_retraction_are_checked_against_the_retracted_data() {
        let mut log = MemIndex::default();
        log.append(&[sale()]).unwrap();
        let retract = json!({"stream": "arms-sale:us-jp", "type": "event.retracted",
                             "data": {"target": SALE, "reason": "wrong"}});
        log.append(&[correct(json!({"approximate": true})), retract])
            .unwrap();
        let (field, _) = refused(&mut log, &[correct(json!({"buyer": null}))]);
        assert_eq!(field, "data.data.buyer");
    }

    #[test]
    fn an_amendment_without_a_date_gets_the_day_it_is_recorded() {
        let mut log = MemIndex::default();
        let now = "2025-03-04T23:59:00Z".parse::<DateTime<Utc>>().unwrap();
        log.append_at(&[sale()], now - chrono::Duration::days(1))
            .unwrap();
        let mut fix = correct(json!({"approximate": true}));
        fix["id"] = json!(ID);
        let first = log.append_at(std::slice::from_ref(&fix), now).unwrap();
        let stored = log.event(ID);
        assert_eq!(stored.occurred.unwrap().to_string(), "2025-03-04");
        // A retry on another day, with or without the date, is the same event.
        let later = now + chrono::Duration::days(3);
        let retry = log.append_at(std::slice::from_ref(&fix), later).unwrap();
        assert_eq!(
            (retry[0].position, retry[0].new),
            (first[0].position, false)
        );
        fix["occurred"] = json!("2025-03-04");
        let retry = log.append_at(std::slice::from_ref(&fix), later).unwrap();
        assert!(!retry[0].new);
        fix["occurred"] = json!("2025-03-05");
        let (field, _) = refused(&mut log, &[fix]);
        assert_eq!(field, "id");
    }

    fn place(id: &str, name: &str, country: &str) -> Value {
        json!({"stream": id, "type": "entity.registered",
               "data": {"name": name, "aliases": [], "country": country}})
    }

    fn at(event_type: &str, place: &str) -> Value {
        let data = match event_type {
            "trip.meeting_held" => json!({"place": place, "with": ["country:US"]}),
            "trip.meeting_planned" => json!({"place": place, "with": ["country:US"]}),
            "trip.agenda_item_added" => json!({"place": place, "topic": "trade"}),
            _ => json!({"place": place}),
        };
        json!({"stream": "trip:a", "type": event_type, "occurred": "2025-01-05", "data": data})
    }

    const ANNOUNCED: &str = "0194210c-0000-7000-8000-0000000000b1";

    /// A trip to Seoul and Tokyo, announced with their countries and cities.
    fn announced() -> Value {
        json!({"id": ANNOUNCED, "stream": "trip:a", "type": "trip.announced", "occurred": "2025-01-03",
               "data": {"traveler": "country:US",
                        "stops": [{"place": "country:KR", "city": "Seoul"},
                                  {"place": "country:JP", "city": "Tokyo"}]}})
    }

    #[test]
    fn an_event_at_a_place_must_be_at_a_stop_of_its_trip() {
        for mut log in MemIndex::both() {
            let types = [
                "trip.arrived",
                "trip.departed",
                "trip.meeting_held",
                "trip.meeting_planned",
                "trip.agenda_item_added",
                "trip.stop_cancelled",
            ];
            // No events at all yet: most likely a mistyped stream id.
            let (field, message) = refused(&mut log, &[at("trip.arrived", "country:KR")]);
            assert_eq!(field, "stream");
            assert!(
                message.contains(
                    "`trip:a` has no events yet, and a trip's stream begins with trip.announced"
                ),
                "{message}"
            );
            // Events, but no stops.
            let completed = json!({"stream": "trip:a", "type": "trip.completed", "occurred": "2025-01-05", "data": {}});
            log.append(&[completed]).unwrap();
            let (_, message) = refused(&mut log, &[at("trip.arrived", "country:KR")]);
            assert!(message.contains("has no stops yet"), "{message}");
            log.append(&[announced(), place("place:busan", "Busan", "country:KR")])
                .unwrap();
            for t in types {
                let (field, message) = refused(&mut log, &[at(t, "country:FR")]);
                assert_eq!(field, "data.place");
                assert_eq!(
                    message,
                    format!(
                        "{t} at country:FR: not a stop of `trip:a` (stops: Seoul (country:KR), Tokyo (country:JP)); name one of these, or add it first with trip.stop_added"
                    )
                );
                log.append(&[at(t, "country:JP")]).unwrap();
            }
            // A registered city of a stop's country is not that stop unless it is its city.
            refused(&mut log, &[at("trip.arrived", "place:busan")]);
            // Added earlier in the same append, it is a stop; a cancelled stop still is one.
            let added = json!({"stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-04",
                               "data": {"place": "country:FR", "city": "Paris"}});
            let cancelled = json!({"stream": "trip:a", "type": "trip.stop_cancelled", "occurred": "2025-01-04",
                                   "data": {"place": "country:FR"}});
            log.append(&[added, cancelled, at("trip.arrived", "country:FR")])
                .unwrap();
            let (_, message) = refused(&mut log, &[at("trip.arrived", "country:DE")]);
            assert!(
                message.contains("Tokyo (country:JP, called off), Paris (country:FR, called off)"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_trip_stream_begun_without_its_announcement_is_noted() {
        for mut log in MemIndex::both() {
            let started = json!({"stream": "trip:a", "type": "trip.started", "occurred": "2025-01-05", "data": {}});
            let first = log.append(std::slice::from_ref(&started)).unwrap();
            assert_eq!(
                first[0].note.as_deref(),
                Some(
                    "`trip:a` had no events, and a trip's stream begins with trip.announced: this trip has no traveler or stops until it is announced; if the stream id is mistyped, `chronicle trip list` (or `GET /trips`) lists the trips"
                )
            );
            // Only the first event of the stream, and never an announcement.
            let later = log.append(&[started.clone(), announced()]).unwrap();
            assert!(later.iter().all(|e| e.note.is_none()), "{later:?}");
            let mut other = announced();
            other["stream"] = json!("trip:b");
            other["id"] = json!("0194210c-0000-7000-8000-0000000000b2");
            let mut elsewhere = started;
            elsewhere["stream"] = json!("trip:b");
            let opened = log.append(&[other, elsewhere]).unwrap();
            assert!(opened.iter().all(|e| e.note.is_none()), "{opened:?}");
        }
    }

    #[test]
    fn a_new_stop_follows_a_stop_of_its_trip() {
        for mut log in MemIndex::both() {
            log.append(&[announced()]).unwrap();
            let added = |after: &str| {
                json!({"stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-04",
                       "data": {"place": "country:FR", "city": "Paris", "after": after}})
            };
            let (field, message) = refused(&mut log, &[added("country:DE")]);
            assert_eq!(field, "data.after");
            assert_eq!(
                message,
                "trip.stop_added after country:DE: not a stop of `trip:a` (stops: Seoul (country:KR), Tokyo (country:JP)); name one of these in `after`, or leave `after` out to add the stop last"
            );
            log.append(&[added("country:KR")]).unwrap();
        }
    }

    #[test]
    fn a_registered_place_is_the_stop_that_names_its_city_in_its_country() {
        for mut log in MemIndex::both() {
            let trip = json!({"stream": "trip:a", "type": "trip.announced", "occurred": "2025-01-03",
                              "data": {"traveler": "country:US",
                                       "stops": [{"place": "country:IL", "city": "Jerusalem"},
                                                 {"place": "country:IL", "city": "Tel Aviv"},
                                                 {"place": "place:riyadh"}]}});
            log.append(&[
                place("place:jerusalem", "Jerusalem", "country:IL"),
                place("place:haifa", "Haifa", "country:IL"),
                place("place:riyadh", "Riyadh", "country:SA"),
                trip,
            ])
            .unwrap();
            log.append(&[at("trip.arrived", "place:jerusalem")])
                .unwrap();
            let (_, message) = refused(&mut log, &[at("trip.arrived", "place:haifa")]);
            assert!(
                message.contains(
                    "stops: Jerusalem (country:IL), Tel Aviv (country:IL), Riyadh (place:riyadh)"
                ),
                "{message}"
            );
            // Saudi Arabia has one stop, a registered place in it; Israel has two.
            log.append(&[at("trip.arrived", "country:SA")]).unwrap();
            log.append(&[at("trip.arrived", "country:IL")]).unwrap();
            // An alias added later names the stop too.
            let alias = json!({"stream": "place:haifa", "type": "entity.alias_added",
                               "data": {"alias": "Tel Aviv"}});
            log.append(&[alias, at("trip.departed", "place:haifa")])
                .unwrap();
        }
    }

    #[test]
    fn a_place_corrected_later_is_the_stop_it_now_names() {
        for mut log in MemIndex::both() {
            const RIYADH: &str = "0194210c-0000-7000-8000-0000000000b3";
            let mut riyadh = place("place:riyadh", "Riyadh", "country:SA");
            riyadh["id"] = json!(RIYADH);
            let trip = json!({"stream": "trip:a", "type": "trip.announced", "occurred": "2025-01-03",
                              "data": {"traveler": "country:US", "stops": [{"place": "place:riyadh"}]}});
            log.append(&[riyadh, trip]).unwrap();
            log.append(&[at("trip.arrived", "country:SA")]).unwrap();
            let departed = at("trip.departed", "country:AE");
            refused(&mut log, std::slice::from_ref(&departed));
            let moved = json!({"stream": "place:riyadh", "type": "event.corrected",
                               "data": {"target": RIYADH, "reason": "wrong country",
                                        "data": {"country": "country:AE"}}});
            // Earlier in the same append, in an earlier job of the writer's group, or
            // set aside by import's check: the stops the writer's cache keeps (folded
            // by the arrival) are not used once a place's event is pending.
            let (one, other) = (
                std::slice::from_ref(&moved),
                std::slice::from_ref(&departed),
            );
            log.check_group(&[&[moved.clone(), departed.clone()]], false)
                .unwrap();
            for set_aside in [false, true] {
                log.check_group(&[one, other], set_aside).unwrap();
            }
            // In an append of its own: the writer's cache must not keep the old country.
            log.append(&[moved]).unwrap();
            log.append(&[departed]).unwrap();
        }
    }

    #[test]
    fn the_stops_are_those_of_the_current_facts() {
        for mut log in MemIndex::both() {
            const ADDED: &str = "0194210c-0000-7000-8000-0000000000b2";
            let added = json!({"id": ADDED, "stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-04",
                               "data": {"place": "country:FR", "city": "Paris"}});
            const ARRIVED: &str = "0194210c-0000-7000-8000-0000000000b3";
            log.append(&[announced(), added]).unwrap();
            let mut arrived = at("trip.arrived", "country:FR");
            arrived["id"] = json!(ARRIVED);
            log.append(&[arrived]).unwrap();
            // A retracted stop_added no longer makes a stop; it cannot be retracted from
            // under the arrival there, which would be at no stop of the plan.
            let retract = |target: &str| {
                json!({"stream": "trip:a", "type": "event.retracted",
                       "data": {"target": target, "reason": "not going"}})
            };
            let (field, message) = refused(&mut log, &[retract(ADDED)]);
            assert_eq!(field, "data.target");
            assert!(
                message.contains(
                    "is at the stop Paris (country:FR), and would be at no stop of the plan"
                ),
                "{message}"
            );
            log.append(&[retract(ARRIVED), retract(ADDED)]).unwrap();
            refused(&mut log, &[at("trip.departed", "country:FR")]);
            // A correction of the announcement that drops Tokyo, in the same append.
            let drop_tokyo = json!({"stream": "trip:a", "type": "event.corrected",
                                    "data": {"target": ANNOUNCED, "reason": "only Seoul",
                                             "data": {"stops": [{"place": "country:KR", "city": "Seoul"}]}}});
            let (field, message) = refused(
                &mut log,
                &[drop_tokyo.clone(), at("trip.arrived", "country:JP")],
            );
            assert_eq!(field, "data.place");
            assert!(message.contains("(stops: Seoul (country:KR))"), "{message}");
            log.append(&[drop_tokyo]).unwrap();
            refused(&mut log, &[at("trip.arrived", "country:JP")]);
            log.append(&[at("trip.arrived", "country:KR")]).unwrap();
        }
    }

    #[test]
    fn a_correction_cannot_move_an_event_off_the_stops() {
        for mut log in MemIndex::both() {
            let mut arrival = at("trip.arrived", "country:KR");
            arrival["id"] = json!(ID);
            log.append(&[announced(), arrival]).unwrap();
            let fix = |place: &str| {
                json!({"stream": "trip:a", "type": "event.corrected",
                       "data": {"target": ID, "reason": "wrong city", "data": {"place": place}}})
            };
            let (field, message) = refused(&mut log, &[fix("country:FR")]);
            assert_eq!(field, "data.data.place");
            assert!(
                message.starts_with("the corrected trip.arrived at country:FR"),
                "{message}"
            );
            log.append(&[fix("country:JP")]).unwrap();
        }
    }

    #[test]
    fn a_restored_export_keeps_events_older_rules_accepted() {
        let mut old = MemIndex::default();
        // As an older store accepted them: no stop rule, statements about any stream.
        let arrival = at("trip.arrived", "country:KR");
        let statement = json!({"stream": "statement:s", "type": "statement.issued", "occurred": "2025-01-06",
            "data": {"speaker": "country:CN", "stance": "opposes", "about": ["trip:nope"], "summary": "no"}});
        for older in [arrival, statement] {
            let proposed = parse_event_value(older, Origin::New).unwrap();
            let group = Pending::new(Tail::from_head(None));
            assert!(check_job(&old, &group, vec![proposed.clone()], Utc::now(), true).is_err());
            let event = proposed.into_recorded(Uuid::now_v7(), Position(1), Version(1), Utc::now());
            let mut event = event;
            event.hash = event.chain_hash(&GENESIS_HASH);
            let exported = serde_json::to_value(&event).unwrap();
            let restored = parse_event_value(exported, Origin::Export).unwrap();
            check_job(&old, &group, vec![restored], Utc::now(), true).unwrap();
        }
        old.append(&[announced()]).unwrap();
    }

    #[test]
    fn a_long_dry_run_keeps_the_stops_of_the_trips_it_set_aside() {
        // As `import` checks its input: batch by batch, setting the facts aside after
        // each, with nothing written.
        let log = MemIndex::default();
        let mut group = Pending::new(Tail::from_head(None));
        let mut check = |events: &[Value]| -> Result<()> {
            let proposed: Vec<ProposedEvent> = events
                .iter()
                .map(|v| parse_event_value(v.clone(), Origin::New).unwrap())
                .collect();
            let (job, _) = check_job(&log, &group, proposed, Utc::now(), false)?;
            group.absorb(job);
            group.set_facts_aside(&HashSet::new());
            Ok(())
        };
        const ADDED: &str = "0194210c-0000-7000-8000-0000000000b3";
        let added = json!({"id": ADDED, "stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-04",
                           "data": {"place": "country:FR"}});
        check(&[announced(), at("trip.arrived", "country:KR")]).unwrap();
        check(&[added, at("trip.departed", "country:KR")]).unwrap();
        check(&[at("trip.arrived", "country:FR")]).unwrap();
        let retract = json!({"stream": "trip:a", "type": "event.retracted",
                             "data": {"target": ADDED, "reason": "not going"}});
        check(&[retract]).unwrap();
        let err = check(&[at("trip.departed", "country:FR")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("(stops: Seoul (country:KR), Tokyo (country:JP))"),
            "{err}"
        );
        let trip = StreamId::parse("trip:a").unwrap();
        let kept = group.set_aside.kept(&trip).unwrap();
        assert!(kept.iter().all(|e| e.source.is_none()));
        assert_eq!(kept.len(), 3, "the arrivals were set aside");
    }

    /// Stops added to a trip the job keeps are added to its itinerary as the trip's
    /// view adds them, after a registered place, a country or at the end: the same
    /// stops as the itinerary folded from the log once they are in it.
    #[test]
    fn stops_added_in_one_job_keep_the_itinerary_the_view_folds() {
        let mut log = MemIndex::default();
        let trip = StreamId::parse("trip:a").unwrap();
        log.append(&[
            json!({"stream": "person:x", "type": "entity.registered",
                   "data": {"name": "X", "aliases": []}}),
            json!({"stream": "place:osaka", "type": "entity.registered",
                   "data": {"name": "Osaka", "aliases": [], "country": "country:JP"}}),
            json!({"stream": "trip:a", "type": "trip.announced", "occurred": "2025-01-01",
                   "data": {"traveler": "person:x", "stops": [{"place": "country:KR"}]}}),
        ])
        .unwrap();
        let added = |data: Value| {
            json!({"stream": "trip:a", "type": "trip.stop_added", "occurred": "2025-01-02",
                   "data": data})
        };
        let events = [
            added(json!({"place": "country:JP", "city": "Tokyo"})),
            added(json!({"place": "place:osaka", "after": "country:KR"})),
            added(json!({"place": "country:JP", "city": "Kyoto", "after": "place:osaka"})),
            added(json!({"place": "country:FR"})),
            added(json!({"place": "country:JP", "city": "Nara", "after": "country:JP"})),
        ];
        let group = Pending::new(log.tail.unwrap());
        let (job, _) = log.decide(&group, &events, Utc::now()).unwrap();
        let kept = job
            .itineraries
            .get(&trip)
            .expect("kept by the job")
            .stops
            .clone();
        log.append(&events).unwrap();
        let empty = Pending::new(log.tail.unwrap());
        let folded = Itinerary::of(&log, &empty, &empty, &trip).unwrap().stops;
        assert_eq!(kept, folded);
        let cities: Vec<_> = folded
            .iter()
            .map(|s| s.city.as_deref().unwrap_or(s.place.as_str()))
            .collect();
        assert_eq!(
            cities,
            [
                "country:KR",
                "place:osaka",
                "Kyoto",
                "Nara",
                "Tokyo",
                "country:FR"
            ]
        );
    }
}
