//! Counts of the log for `chronicle stats`: events per type and the number of streams.
//! Every event counts, amendments included, whatever it does to the facts.
//!
//! Documents: `counts/type/<type>` → the number of events of that type;
//! `counts/streams` → the number of streams (a stream counts at its version 1).

use super::{Change, Docs, DocsRead, Projection, key};
use crate::Result;

pub struct Counts;

/// The prefix of the per-type counts.
pub const TYPES: &str = "counts/type/";
const STREAMS: &[u8] = b"counts/streams";

/// Decodes a stored count.
pub fn decode(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn bump(docs: &mut dyn Docs, key: Vec<u8>) -> Result<()> {
    let n = docs.get(&key)?.map_or(0, |v| decode(&v));
    docs.put(key, (n + 1).to_be_bytes().to_vec());
    Ok(())
}

/// The number of streams in the log.
pub fn streams(docs: &(impl DocsRead + ?Sized)) -> Result<u64> {
    Ok(docs.get(STREAMS)?.map_or(0, |v| decode(&v)))
}

impl Projection for Counts {
    fn name(&self) -> &'static str {
        "counts"
    }

    fn version(&self) -> u32 {
        1
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        let event = change.event;
        bump(docs, key(TYPES, event.event_type.as_str().as_bytes()))?;
        if event.version.0 == 1 {
            bump(docs, STREAMS.to_vec())?;
        }
        Ok(())
    }
}
