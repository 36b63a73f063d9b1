//! `verify`: walks the whole log and checks everything the store promises.
//!
//! Checked: every event decodes and sits at its own position; positions run from 1 with
//! no gap to the head record; each stream's versions run from 1 with no gap; each
//! event's hash chains it to the one before; both indexes (`S`, `I`) hold exactly the
//! entries the events imply, no more; and every view document equals a fresh fold of
//! the log (the caller lets the projector reach the head first). The report names the
//! first position found wrong. When sled itself cannot read part of the log, the walk
//! goes on event by event and reports the unreadable positions as a range.

use super::keys::{self, HeadEntry, IdEntry};
use super::sled_store::decode_event;
use super::storage;
use super::views::LiveDocs;
use crate::Result;
use crate::model::event::{GENESIS_HASH, parse_hash};
use crate::model::{Position, RecordedEvent};
use crate::projection::DocsRead;
use crate::projection::runner::Runner;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// How many of the last events opening a log checks the chain of ([`check_tail`]).
pub(super) const TAIL_CHECKED: u64 = 64;

/// What an integrity failure found on open tells the user to do.
const INSPECT: &str =
    "run `chronicle verify` to find the first bad position, and restore from an export";

/// The first position [`check_tail`] reads for a log whose head is at `head` (> 0): the
/// event before the last [`TAIL_CHECKED`], whose hash the first of them chains from,
/// or position 1.
pub(super) fn tail_start(head: u64) -> u64 {
    head.saturating_sub(TAIL_CHECKED).max(1)
}

/// The check every log makes on open, cheaply, of what a crash or a tampering at the
/// end of the log would show; `verify` walks the rest. `last` is the last position the
/// log holds, `head` and `head_hash` what its head record says, and `events` the events
/// from [`tail_start`] to the head, in order: the log must end where its head says, the
/// last [`TAIL_CHECKED`] events must chain, and the last hash must be the head's.
pub(super) fn check_tail(
    last: u64,
    head: u64,
    head_hash: &[u8],
    events: impl IntoIterator<Item = Result<RecordedEvent>>,
) -> Result<()> {
    let integrity = |what: String| crate::Error::Integrity(format!("{what}; {INSPECT}"));
    if last != head {
        return Err(integrity(format!(
            "the log ends at position {last} but its head says {head}"
        )));
    }
    if head == 0 {
        return Ok(());
    }
    let first = tail_start(head);
    let mut previous = (first == 1).then_some(GENESIS_HASH);
    let mut expected = first;
    for event in events {
        let event = event?;
        if event.position.0 != expected {
            break;
        }
        if let Some(previous) = previous
            && event.chain_hash(&previous) != event.hash
        {
            return Err(integrity(format!(
                "the hash chain is broken at position {expected}"
            )));
        }
        previous = Some(parse_hash(&event.hash).unwrap_or_default());
        expected += 1;
    }
    if expected <= head {
        return Err(integrity(format!("position {expected} is missing")));
    }
    if previous.map(|p| p.to_vec()).as_deref() != Some(head_hash) {
        return Err(integrity(
            "the head record does not match the last event's hash".into(),
        ));
    }
    Ok(())
}

/// What `verify` checked and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Each check with the number of items it covered.
    pub checks: Vec<(String, u64)>,
    pub events: u64,
    pub head: Position,
    /// The first problem: the position it concerns (0 when it is not one event's) and
    /// what is wrong.
    pub problem: Option<(Position, String)>,
}

struct Walk {
    checks: BTreeMap<&'static str, u64>,
    problem: Option<(Position, String)>,
}

impl Walk {
    fn fail(&mut self, position: u64, message: String) {
        if self.problem.is_none() {
            self.problem = Some((Position(position), message));
        }
    }

    fn count(&mut self, check: &'static str) {
        *self.checks.entry(check).or_default() += 1;
    }
}

fn count_prefix(db: &sled::Db, prefix: &[u8]) -> Result<u64> {
    let mut n = 0;
    for item in db.scan_prefix(prefix).keys() {
        item.map_err(storage)?;
        n += 1;
    }
    Ok(n)
}

/// The checks every log gets, event by event: positions from 1 without a gap, the
/// hash chain, each stream's versions, and a fresh fold of every projection to compare
/// with the stored views at the end. The sled walk adds its indexes; the PostgreSQL walk
/// its columns.
pub(super) struct Walker<'a> {
    walk: Walk,
    runner: &'a Runner,
    previous_hash: [u8; 32],
    versions: HashMap<String, u64>,
    /// The next position expected.
    next: u64,
    fold: crate::projection::MemDocs,
}

impl<'a> Walker<'a> {
    pub fn new(runner: &'a Runner) -> Walker<'a> {
        Walker {
            walk: Walk {
                checks: BTreeMap::new(),
                problem: None,
            },
            runner,
            previous_hash: GENESIS_HASH,
            versions: HashMap::new(),
            next: 1,
            fold: crate::projection::MemDocs::default(),
        }
    }

    /// Events walked so far.
    pub fn events(&self) -> u64 {
        self.next - 1
    }

    /// Whether a problem was found.
    pub fn failed(&self) -> bool {
        self.walk.problem.is_some()
    }

    /// Records a problem the caller found (the first one wins).
    pub fn fail(&mut self, position: u64, message: String) {
        self.walk.fail(position, message);
    }

    /// Counts one item of a check the caller made.
    pub fn count(&mut self, check: &'static str) {
        self.walk.count(check);
    }

    /// Checks the event stored at `position` and folds it. Returns it, or `None` when
    /// the walk cannot go on (a gap, an unreadable event, a broken chain).
    pub fn event(
        &mut self,
        position: u64,
        event: Result<RecordedEvent>,
    ) -> Result<Option<RecordedEvent>> {
        let walk = &mut self.walk;
        if position != self.next {
            walk.fail(
                self.next,
                format!(
                    "position {} is missing (the next event is at {position})",
                    self.next
                ),
            );
            return Ok(None);
        }
        self.next += 1;
        walk.count("positions without gaps");
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                walk.fail(position, e.to_string());
                return Ok(None);
            }
        };
        if event.position.0 != position {
            walk.fail(
                position,
                format!(
                    "the event stored at position {position} says it is at {}",
                    event.position
                ),
            );
        }
        if event.chain_hash(&self.previous_hash) != event.hash {
            walk.fail(position, "the hash does not match the event's content and the hash before it: history was rewritten here".into());
            return Ok(None);
        }
        walk.count("hash chain links");
        self.previous_hash = parse_hash(&event.hash).unwrap_or_default();
        let version = self.versions.entry(event.stream.to_string()).or_default();
        *version += 1;
        if event.version.0 != *version {
            walk.fail(
                position,
                format!(
                    "stream `{}` jumps to version {} after {}",
                    event.stream,
                    event.version,
                    *version - 1
                ),
            );
        }
        walk.count("stream versions without gaps");
        self.runner.apply(&event, &mut self.fold)?;
        Ok(Some(event))
    }

    /// Checks that the walk reached `head`, then compares `views` (describing the log
    /// up to `head`) with the fresh fold.
    pub fn finish(mut self, head: u64, views: &dyn DocsRead) -> Result<VerifyReport> {
        let events = self.events();
        if self.walk.problem.is_none() && events != head {
            self.walk.fail(
                events + 1,
                format!("the head record says the log ends at {head}, but it ends at {events}"),
            );
        }
        if self.walk.problem.is_none() {
            check_projections(views, &self.fold, &mut self.walk)?;
        }
        Ok(VerifyReport {
            checks: self
                .walk
                .checks
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            events,
            head: Position(head),
            problem: self.walk.problem,
        })
    }
}

/// Runs every check on the sled log. `progress(done, total)` is called as events are
/// walked.
pub(super) fn verify(
    db: &sled::Db,
    views: &LiveDocs,
    runner: &Runner,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport> {
    let head = db
        .get(keys::HEAD)
        .map_err(storage)?
        .and_then(|h| HeadEntry::decode(&h))
        .map_or(0, |h| h.position.0);
    let mut walker = Walker::new(runner);
    for item in db.scan_prefix([keys::EVENT]) {
        let (k, v) = match item {
            Ok(kv) => kv,
            Err(e) => {
                let (first, last) = unreadable(db, walker.next, head);
                walker.fail(
                    first,
                    format!(
                        "sled cannot read the stored data of positions {first}..={last} ({}); run `chronicle recover` to save every readable event",
                        super::sled_reason(&e)
                    ),
                );
                break;
            }
        };
        let position = keys::u64_be(&k[1..]).unwrap_or(0);
        let Some(event) = walker.event(position, decode_event(Position(position), &v))? else {
            break;
        };
        check_indexes(db, &event, &mut walker.walk)?;
        if position.is_multiple_of(1000) {
            progress(position, head);
        }
    }
    progress(walker.events(), head);
    if !walker.failed() && walker.events() == head {
        check_no_extra_entries(db, walker.events(), &mut walker.walk)?;
    }
    walker.finish(head, views)
}

/// The indexes of one event point back at it.
fn check_indexes(db: &sled::Db, e: &RecordedEvent, walk: &mut Walk) -> Result<()> {
    let p = e.position.0;
    let at = |bytes: Option<sled::IVec>| bytes.and_then(|b| keys::u64_be(&b));
    if at(db
        .get(keys::stream_event(&e.stream, e.version))
        .map_err(storage)?)
        != Some(p)
    {
        walk.fail(
            p,
            format!(
                "the stream index has no entry for `{}` version {}",
                e.stream, e.version
            ),
        );
    }
    let bytes = db.get(keys::id(&e.id)).map_err(storage)?;
    let id = bytes.as_deref().and_then(IdEntry::decode);
    let want = IdEntry {
        position: e.position,
        version: e.version,
    };
    // An older format's entry also holds the event's content digest.
    let digest_right = bytes
        .as_deref()
        .is_none_or(|b| b.len() != keys::OLD_ID_ENTRY_LEN || b[16..] == e.content_digest()[..]);
    if id != Some(want) || !digest_right {
        walk.fail(
            p,
            format!("the id index entry of {} is missing or wrong", e.id),
        );
    }
    walk.count("index entries");
    Ok(())
}

/// No index holds an entry that no event implies.
fn check_no_extra_entries(db: &sled::Db, events: u64, walk: &mut Walk) -> Result<()> {
    for (prefix, name) in [(keys::STREAM_EVENT, "stream"), (keys::ID, "id")] {
        let n = count_prefix(db, &[prefix])?;
        if n != events {
            walk.fail(
                0,
                format!("the {name} index has {n} entries for {events} events"),
            );
            return Ok(());
        }
    }
    Ok(())
}

/// The positions from `from` on that sled cannot read, as the first and last of them
/// (reading each position on its own, so that one bad page does not hide the rest).
fn unreadable(db: &sled::Db, from: u64, head: u64) -> (u64, u64) {
    let mut bad = (from..=head.max(from)).filter(|&p| db.get(keys::event(Position(p))).is_err());
    let first = bad.next().unwrap_or(from);
    let last = bad.next_back().unwrap_or(first);
    (first, last)
}

/// Every projection document equals the fresh fold, and nothing else is stored.
fn check_projections(
    live: &dyn DocsRead,
    fold: &crate::projection::MemDocs,
    walk: &mut Walk,
) -> Result<()> {
    let mut stored = live.scan(b"", None, false);
    let mut fresh = fold.map.iter();
    let mut n = 0u64;
    loop {
        match (stored.next().transpose()?, fresh.next()) {
            (None, None) => break,
            (Some((k, v)), Some((fk, fv))) if &k == fk && &v == fv => n += 1,
            (stored, fresh) => {
                let key = stored
                    .map(|(k, _)| k)
                    .or(fresh.map(|(k, _)| k.clone()))
                    .unwrap_or_default();
                walk.fail(0, format!(
                    "the view document `{}` differs from a fresh replay; run `chronicle replay` to rebuild the views",
                    String::from_utf8_lossy(&key)
                ));
                return Ok(());
            }
        }
    }
    walk.checks
        .insert("view documents equal to a fresh replay", n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StreamId;

    /// A chained log of `n` events.
    fn log(n: u64) -> Vec<RecordedEvent> {
        let stream = StreamId::parse("trip:a").unwrap();
        let mut previous = GENESIS_HASH;
        (1..=n)
            .map(|p| {
                let mut event = RecordedEvent::for_test(p, p, &stream, serde_json::json!({"n": p}));
                event.hash = event.chain_hash(&previous);
                previous = parse_hash(&event.hash).unwrap();
                event
            })
            .collect()
    }

    fn check(events: &[RecordedEvent], last: u64, head: u64, head_hash: &str) -> Result<()> {
        let from = if head == 0 { 1 } else { tail_start(head) } as usize;
        let tail = events.iter().skip(from - 1).cloned().map(Ok);
        check_tail(last, head, &parse_hash(head_hash).unwrap_or_default(), tail)
    }

    fn fails(result: Result<()>, message: &str) {
        let error = result.unwrap_err().to_string();
        assert!(error.contains(message), "{error}");
        assert!(error.contains("run `chronicle verify`"), "{error}");
    }

    #[test]
    fn the_tail_must_end_at_the_head_chain_and_match_it() {
        for n in [1, 5, TAIL_CHECKED, TAIL_CHECKED + 1, 200] {
            let events = log(n);
            let hash = events.last().unwrap().hash.clone();
            check(&events, n, n, &hash).unwrap();
            fails(check(&events, n, n - 1, &hash), "ends at position");
            // A rewritten event in the tail no longer chains to the one after it.
            let mut rewritten = events.clone();
            let at = (n - n.min(TAIL_CHECKED) / 2).max(1);
            rewritten[(at - 1) as usize].data = serde_json::json!({"n": "rewritten"});
            fails(
                check(&rewritten, n, n, &hash),
                &format!("the hash chain is broken at position {at}"),
            );
            // An event missing from the tail.
            let mut gap = events.clone();
            gap.remove((n - 1) as usize);
            fails(
                check(&gap, n, n, &hash),
                &format!("position {n} is missing"),
            );
            fails(
                check(&events, n, n, &"ab".repeat(32)),
                "the head record does not match",
            );
        }
        check(&[], 0, 0, "").unwrap();
    }
}
