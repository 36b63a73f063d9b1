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
//! own later one.
//! Pure: the caller reads the events.

use super::MemDocs;
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

/// The views folded from the events known by `date` (see [`known`]), in log order.
/// A fact known by `date` only through evidence is shown without its own source when
/// that was published later: by then only the evidence's sources had reported it.
pub fn fold(events: &[RecordedEvent], date: &Extent) -> Result<MemDocs> {
    let evidenced = evidenced(events, date);
    Runner::default().fold(
        events
            .iter()
            .filter(|e| known(e, date, &evidenced))
            .map(|e| {
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
            }),
    )
}
