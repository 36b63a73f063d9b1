//! The reported clock: the views as they stand from what had been published by a date
//! (`--known-at DATE`, `known_at=`), folded in memory from the log.
//!
//! Which events count (see [`known`]): entity registrations and aliases always (the
//! registry is not news); a fact when its `source.published` is over by the end of the
//! date, or when an `evidence.added` for it was (its first publication); evidence by
//! the source it adds; a correction or a retraction by its own `source.published`, or,
//! without one, by its `occurred` (when the amendment was made, which the store sets
//! when it is left out).
//! A fact with no publication date is not on the reported clock and is left out. A
//! fact known only through evidence shows the sources published by the date, not its
//! own later one. A fact's amendments apply in the order they were published, not
//! filed, where its data fits its type at every step that way (see
//! `in_order_of_publication` for when it does not).
//! Pure: the caller reads the events.

use super::MemDocs;
use super::facts::{self, Fact};
use super::runner::Runner;
use crate::Result;
use crate::model::types::EventData;
use crate::model::{Extent, RecordedEvent};
use std::collections::HashSet;
use uuid::Uuid;

/// Whether `when` is over by the end of `date`: `2025-01-03` is by `2025-01-04`, and
/// `2025-01` is not (the month may end after it).
fn by(when: &Extent, date: &Extent) -> bool {
    when.latest() <= date.latest()
}

/// Whether the event is part of what was known on the reported clock by `date`;
/// `evidenced` holds the facts some evidence published by then reports.
pub fn known(event: &RecordedEvent, date: &Extent, evidenced: &HashSet<Uuid>) -> bool {
    let published = event
        .source
        .as_ref()
        .and_then(|s| s.published)
        .is_some_and(|p| by(&p, date));
    let t = event.event_type;
    if let Ok(EventData::EvidenceAdded(ev)) = event.typed()
        && let Some(p) = ev.source.published
    {
        // Evidence is known when the source it adds was published.
        return by(&p, date);
    }
    if !t.needs_occurred() {
        true
    } else if t.is_amendment() {
        match (&event.source, &event.occurred) {
            (Some(s), _) if s.published.is_some() => published,
            (_, Some(occurred)) => by(occurred, date),
            _ => false,
        }
    } else {
        published || evidenced.contains(&event.id)
    }
}

/// The facts that evidence published by `date` reports: known by then even when their
/// own source is later or undated.
pub fn evidenced(events: &[RecordedEvent], date: &Extent) -> HashSet<Uuid> {
    events
        .iter()
        .filter_map(|e| match e.typed() {
            Ok(EventData::EvidenceAdded(ev))
                if ev.source.published.is_some_and(|p| by(&p, date)) =>
            {
                Some(ev.target)
            }
            _ => None,
        })
        .collect()
}

/// The events with each fact's amendments in the order they were published (their
/// `published`, else their `occurred`; log order between equals), each in a slot one of
/// them had, so all stay after their fact: on the reported clock, a correction filed
/// late but published before another is overtaken by it, as the news overtook it.
///
/// Each correction was checked against the data left by those filed before it, and on
/// a date some of those may not be known yet, or come later in this order: a patch
/// may then leave data its type does not take (a value without its currency). So the
/// order of publication is kept only when the data fits at every step; else the order
/// they were filed, if it does; else, in that order, an amendment that would leave data
/// that does not fit is left out on that date.
fn in_order_of_publication(events: Vec<&RecordedEvent>) -> Vec<&RecordedEvent> {
    let mut slots: std::collections::HashMap<Uuid, Vec<usize>> = Default::default();
    for (i, e) in events.iter().enumerate() {
        // Only amendments (evidence too) have a target: no other event is parsed here.
        if e.event_type.is_amendment()
            && let Ok(typed) = e.typed()
            && let Some(target) = typed.target()
        {
            slots.entry(target).or_default().push(i);
        }
    }
    let facts: std::collections::HashMap<Uuid, &RecordedEvent> = events
        .iter()
        .filter(|e| slots.contains_key(&e.id))
        .map(|e| (e.id, *e))
        .collect();
    let mut placed: Vec<Option<&RecordedEvent>> = events.iter().copied().map(Some).collect();
    for (target, slots) in &slots {
        let filed: Vec<&RecordedEvent> = slots.iter().map(|&i| events[i]).collect();
        let mut published_order = filed.clone();
        // Stable: log order between amendments published alike.
        published_order.sort_by_key(|e| published(e).map(|p| p.latest()));
        let chosen: Vec<&RecordedEvent> = match facts.get(target) {
            // Without its fact, an amendment changes nothing: any order does.
            None => published_order,
            Some(fact) => match fitting(fact, &published_order) {
                (kept, true) => kept,
                _ => fitting(fact, &filed).0,
            },
        };
        for (i, &slot) in slots.iter().enumerate() {
            placed[slot] = chosen.get(i).copied();
        }
    }
    placed.into_iter().flatten().collect()
}

/// The fact's amendments, in turn, that leave its data fitting its type (each checked
/// on the fact as those before it left it), and whether all do.
fn fitting<'a>(
    fact: &RecordedEvent,
    amendments: &[&'a RecordedEvent],
) -> (Vec<&'a RecordedEvent>, bool) {
    let mut now = Fact::from_event(fact);
    let mut kept = Vec::with_capacity(amendments.len());
    for &a in amendments {
        match amended(&now, a) {
            Amended::Unfit => continue,
            Amended::To(next) => now = *next,
            Amended::Unchanged => {}
        }
        kept.push(a);
    }
    let all = kept.len() == amendments.len();
    (kept, all)
}

/// What an amendment does to a fact, as the facts layer folds it.
enum Amended {
    To(Box<Fact>),
    /// A retracted fact, or an amendment not read: nothing amends it.
    Unchanged,
    /// Its data would then not fit its type.
    Unfit,
}

fn amended(fact: &Fact, amendment: &RecordedEvent) -> Amended {
    let Ok(typed) = amendment.typed() else {
        return Amended::Unchanged;
    };
    if fact.retracted {
        return Amended::Unchanged;
    }
    let after = facts::amend(fact, typed, amendment.source.as_ref());
    match after.retracted || after.typed().is_some() {
        true => Amended::To(Box::new(after)),
        false => Amended::Unfit,
    }
}

/// When an amendment came out: the source it adds (evidence), its own source, else the
/// day it was made.
fn published(e: &RecordedEvent) -> Option<Extent> {
    if let Ok(EventData::EvidenceAdded(ev)) = e.typed()
        && let Some(p) = ev.source.published
    {
        return Some(p);
    }
    e.source.as_ref().and_then(|s| s.published).or(e.occurred)
}

/// The views folded from the events known by `date` (see [`known`]), in log order but
/// for each fact's amendments, in order of publication.
/// A fact known by `date` only through evidence is shown without its own source when
/// that was published later: by then only the evidence's sources had reported it.
pub fn fold(events: &[RecordedEvent], date: &Extent) -> Result<MemDocs> {
    let evidenced = evidenced(events, date);
    let known: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| known(e, date, &evidenced))
        .collect();
    Runner::default().fold(in_order_of_publication(known).into_iter().map(|e| {
        let mut e = e.clone();
        let later = e
            .source
            .as_ref()
            .and_then(|s| s.published)
            .is_some_and(|p| !by(&p, date));
        if later && !e.event_type.is_amendment() && evidenced.contains(&e.id) {
            e.source = None;
        }
        Ok(e)
    }))
}
