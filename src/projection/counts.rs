//! Counts of the log for `chronicle stats`: events per type and the number of streams.
//! Every event counts, amendments included, whatever it does to the facts.
//!
//! Document: `counts` → the number of streams (a stream counts at its version 1), then
//! the number of events of each type in the order of [`EventType::ALL`], each a
//! big-endian `u64`. One document, so that an epoch of the log keeps one version of it
//! in the history, not one per type.

use super::{Change, Docs, DocsRead, Projection};
use crate::Result;
use crate::model::EventType;

pub struct Counts;

const KEY: &[u8] = b"counts";

/// The counts of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCounts {
    pub streams: u64,
    /// Events per type, for the types with at least one, in the order of
    /// [`EventType::ALL`].
    pub per_type: Vec<(EventType, u64)>,
}

fn numbers(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|b| u64::from_be_bytes(b.try_into().expect("chunks of 8")))
}

/// The counts, as the views stand.
pub fn read(docs: &(impl DocsRead + ?Sized)) -> Result<LogCounts> {
    let bytes = docs.get(KEY)?.unwrap_or_default();
    let mut numbers = numbers(&bytes);
    let streams = numbers.next().unwrap_or(0);
    let per_type = EventType::ALL
        .iter()
        .copied()
        .zip(numbers)
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(LogCounts { streams, per_type })
}

impl Projection for Counts {
    fn name(&self) -> &'static str {
        "counts"
    }

    fn version(&self) -> u32 {
        // 2: one document, not a key per type.
        2
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        let event = change.event;
        let mut counts: Vec<u64> = match docs.get(KEY)? {
            Some(bytes) => numbers(&bytes).collect(),
            None => Vec::new(),
        };
        counts.resize(1 + EventType::ALL.len(), 0);
        if event.version.0 == 1 {
            counts[0] += 1;
        }
        let index = EventType::ALL
            .iter()
            .position(|t| *t == event.event_type)
            .expect("every type is in ALL");
        counts[1 + index] += 1;
        docs.put(
            KEY.to_vec(),
            counts.iter().flat_map(|n| n.to_be_bytes()).collect(),
        );
        Ok(())
    }
}
