//! The sled writer's memory of the streams the append rules read.
//!
//! The stop rule folds a trip's stream (and its places') for every event at a stop, a
//! correction folds its target's stream, and every entity an event names is looked up
//! by its stream's version; reading (and decoding) those from sled for every append
//! cost more than the append's own encoding and hashing. A stream's committed events
//! never change and only grow at the end, so [`Cached`] reads a stream once and then
//! answers from memory; the writer adds each group's events once they are durable
//! ([`StreamCache::committed`]), so what it holds is always the whole committed stream.
//! It also keeps the trips' itineraries the stop rule folds from those streams
//! ([`Itinerary`]), until a commit adds an event they are folded from (one of the trip's
//! that plans or cancels stops, an amendment in it, any place's own event): an arrival,
//! a meeting and a departure at each stop then read the trip's stops without folding
//! its announcement again. It forgets everything when it would hold more than [`MAX_EVENTS`] events,
//! [`MAX_VERSIONS`] versions or [`MAX_ITINERARIES`] itineraries; a stream longer than
//! [`MAX_EVENTS`] is answered and not kept, and a held stream that grows to the bound
//! is let go.
//!
//! Guarantees: every answer is the index's own. Only for a log with one writer that
//! never loses a committed event (sled's, which one process holds): on PostgreSQL other
//! servers append too, and after a failover a promoted replica may lack what the old
//! primary committed.

use super::rules::{IdInfo, Itinerary, LogIndex, stop_rule_folds};
use crate::Result;
use crate::model::{RecordedEvent, StreamId, Version};
use std::cell::RefCell;
use std::collections::HashMap;
use uuid::Uuid;

/// The most events kept, over all streams (a trip has about 20).
const MAX_EVENTS: usize = 16_384;
/// The most stream versions kept (entities, mostly).
const MAX_VERSIONS: usize = 65_536;
/// The most itineraries kept.
const MAX_ITINERARIES: usize = 4_096;

/// What the writer knows of the committed log.
#[derive(Default)]
pub(super) struct StreamCache {
    inner: RefCell<Held>,
}

#[derive(Default)]
struct Held {
    /// The version of every stream looked up (0: no events yet).
    versions: HashMap<StreamId, u64>,
    /// The events of the streams read whole, from version 1, in order.
    streams: HashMap<StreamId, Vec<RecordedEvent>>,
    /// How many events `streams` holds.
    events: usize,
    /// Trips' itineraries as the committed log leaves them.
    itineraries: HashMap<StreamId, Itinerary>,
}

impl StreamCache {
    /// Adds a durable group's events (in position order) to what is held. Called by the
    /// one writer after each commit.
    pub fn committed<'e>(&self, events: impl IntoIterator<Item = &'e RecordedEvent>) {
        let held = &mut *self.inner.borrow_mut();
        for event in events {
            if stop_rule_folds(event) {
                match event.stream.category() {
                    "place" => held.itineraries.clear(),
                    _ => drop(held.itineraries.remove(&event.stream)),
                }
            }
            let next = event.version.0;
            if let Some(version) = held.versions.get_mut(&event.stream) {
                if *version + 1 == next {
                    *version = next;
                } else {
                    // Cannot happen with one writer; forget the stream rather than guess.
                    held.versions.remove(&event.stream);
                }
            }
            if let Some(stream) = held.streams.get_mut(&event.stream) {
                if stream.len() as u64 + 1 == next && held.events < MAX_EVENTS {
                    stream.push(event.clone());
                    held.events += 1;
                } else {
                    // Out of order (cannot happen with one writer), or the bound
                    // reached by a stream that keeps growing: forget the stream.
                    let gone = held.streams.remove(&event.stream).map_or(0, |s| s.len());
                    held.events -= gone;
                }
            }
        }
    }
}

/// A [`LogIndex`] that answers streams' versions and events from a [`StreamCache`],
/// reading `index` for what it does not hold yet.
pub(super) struct Cached<'a> {
    pub index: &'a dyn LogIndex,
    pub cache: &'a StreamCache,
}

impl LogIndex for Cached<'_> {
    fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        if let Some(version) = self.cache.inner.borrow().versions.get(stream) {
            return Ok(*version);
        }
        let version = self.index.stream_version(stream)?;
        let held = &mut *self.cache.inner.borrow_mut();
        if held.versions.len() >= MAX_VERSIONS {
            held.versions.clear();
        }
        held.versions.insert(stream.clone(), version);
        Ok(version)
    }

    fn id(&self, id: &Uuid) -> Result<Option<IdInfo>> {
        self.index.id(id)
    }

    fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
        let start = (from.0.max(1) - 1) as usize;
        let tail = |events: &[RecordedEvent]| events.get(start..).map(<[_]>::to_vec);
        {
            let held = self.cache.inner.borrow();
            if let Some(events) = held.streams.get(stream) {
                return Ok(tail(events).unwrap_or_default());
            }
            if held
                .versions
                .get(stream)
                .is_some_and(|&v| v < from.0.max(1))
            {
                // No event of the stream at `from` or later (a stream new in this
                // group, say): nothing to read.
                return Ok(Vec::new());
            }
        }
        let events = self.index.stream_events(stream, Version(1))?;
        let whole = events.iter().zip(1..).all(|(e, v)| e.version.0 == v);
        if !whole {
            // The index is damaged (verify says how): answer as it does, keep nothing.
            return self.index.stream_events(stream, from);
        }
        let answer = tail(&events).unwrap_or_default();
        if events.is_empty() || events.len() > MAX_EVENTS {
            // Nothing to keep (a place never registered, say), or more than is kept.
            return Ok(answer);
        }
        let held = &mut *self.cache.inner.borrow_mut();
        if held.events + events.len() > MAX_EVENTS {
            held.streams.clear();
            held.events = 0;
        }
        if held.versions.len() >= MAX_VERSIONS {
            held.versions.clear();
        }
        held.events += events.len();
        held.versions.insert(stream.clone(), events.len() as u64);
        held.streams.insert(stream.clone(), events);
        Ok(answer)
    }

    fn itinerary(&self, trip: &StreamId) -> Option<Itinerary> {
        self.cache.inner.borrow().itineraries.get(trip).cloned()
    }

    fn remember_itinerary(&self, trip: &StreamId, itinerary: &Itinerary) {
        let held = &mut *self.cache.inner.borrow_mut();
        if held.itineraries.len() >= MAX_ITINERARIES {
            held.itineraries.clear();
        }
        held.itineraries.insert(trip.clone(), itinerary.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::Cell;

    /// A committed log in memory that counts the reads made of it.
    #[derive(Default)]
    struct Log {
        events: Vec<RecordedEvent>,
        reads: Cell<usize>,
    }

    impl LogIndex for Log {
        fn stream_version(&self, stream: &StreamId) -> Result<u64> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.events.iter().filter(|e| &e.stream == stream).count() as u64)
        }

        fn id(&self, _: &Uuid) -> Result<Option<IdInfo>> {
            Ok(None)
        }

        fn stream_events(&self, stream: &StreamId, from: Version) -> Result<Vec<RecordedEvent>> {
            self.reads.set(self.reads.get() + 1);
            Ok(self
                .events
                .iter()
                .filter(|e| &e.stream == stream && e.version >= from)
                .cloned()
                .collect())
        }
    }

    impl Log {
        /// Appends an event to `stream` and tells `cache`, as the writer does.
        fn commit(&mut self, cache: &StreamCache, stream: &StreamId) {
            let version = self.stream_version(stream).unwrap() + 1;
            let position = self.events.len() as u64 + 1;
            let event = RecordedEvent::for_test(position, version, stream, json!({"n": version}));
            self.events.push(event.clone());
            cache.committed([&event]);
        }
    }

    #[test]
    fn answers_as_the_index_does_and_reads_each_stream_once() {
        let mut log = Log::default();
        let cache = StreamCache::default();
        let (a, b) = (
            StreamId::parse("trip:a").unwrap(),
            StreamId::parse("trip:b").unwrap(),
        );
        log.commit(&cache, &a);
        log.commit(&cache, &a);
        let cached = |log: &Log| {
            let c = Cached {
                index: log,
                cache: &cache,
            };
            let answers = (
                c.stream_version(&a).unwrap(),
                c.stream_version(&b).unwrap(),
                c.stream_events(&a, Version(1)).unwrap(),
                c.stream_events(&a, Version(2)).unwrap(),
                c.stream_events(&b, Version(1)).unwrap(),
            );
            let direct = (
                log.stream_version(&a).unwrap(),
                log.stream_version(&b).unwrap(),
                log.stream_events(&a, Version(1)).unwrap(),
                log.stream_events(&a, Version(2)).unwrap(),
                log.stream_events(&b, Version(1)).unwrap(),
            );
            let ids = |e: &[RecordedEvent]| e.iter().map(|e| e.id).collect::<Vec<_>>();
            assert_eq!(
                (
                    answers.0,
                    answers.1,
                    ids(&answers.2),
                    ids(&answers.3),
                    ids(&answers.4)
                ),
                (
                    direct.0,
                    direct.1,
                    ids(&direct.2),
                    ids(&direct.3),
                    ids(&direct.4)
                ),
            );
        };
        cached(&log);
        // `b`'s version says it has no events: they are not read.
        let reads = log.reads.get();
        let c = Cached {
            index: &log,
            cache: &cache,
        };
        assert!(c.stream_events(&b, Version(1)).unwrap().is_empty());
        assert_eq!(log.reads.get(), reads, "an empty stream is not read");
        // Later commits are seen without reading the streams again.
        let reads = log.reads.get();
        log.commit(&cache, &a);
        log.commit(&cache, &b);
        log.reads.set(reads);
        let c = Cached {
            index: &log,
            cache: &cache,
        };
        assert_eq!(c.stream_version(&a).unwrap(), 3);
        assert_eq!(c.stream_version(&b).unwrap(), 1);
        assert_eq!(
            c.stream_events(&a, Version(3)).unwrap()[0].version,
            Version(3)
        );
        assert_eq!(log.reads.get(), reads, "a held stream is not read again");
        // `b` had no events when read: its version was kept (and followed the commit),
        // its events are read now.
        cached(&log);
    }

    #[test]
    fn holds_no_more_events_than_its_bound() {
        let mut log = Log::default();
        let cache = StreamCache::default();
        let (a, b) = (
            StreamId::parse("trip:a").unwrap(),
            StreamId::parse("trip:b").unwrap(),
        );
        log.commit(&cache, &a);
        let c = |log: &Log| {
            let c = Cached {
                index: log,
                cache: &cache,
            };
            (
                c.stream_events(&a, Version(1)).unwrap().len(),
                c.stream_version(&a).unwrap(),
            )
        };
        assert_eq!(c(&log), (1, 1));
        // A held stream that keeps growing is dropped at the bound, not kept whole.
        for _ in 0..MAX_EVENTS + 10 {
            log.commit(&cache, &a);
            assert!(cache.inner.borrow().events <= MAX_EVENTS);
        }
        assert_eq!(c(&log), (MAX_EVENTS + 11, MAX_EVENTS as u64 + 11));
        // A stream longer than the bound is answered, not kept.
        assert_eq!(cache.inner.borrow().events, 0);
        log.commit(&cache, &b);
        let held = Cached {
            index: &log,
            cache: &cache,
        };
        assert_eq!(held.stream_events(&b, Version(1)).unwrap().len(), 1);
        assert_eq!(cache.inner.borrow().events, 1);
    }
}
