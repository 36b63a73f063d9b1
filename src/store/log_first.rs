//! The log goes first: the projector does not write the views while a log writer of
//! this process is deciding or writing a commit, for a bounded time.
//!
//! sled 0.34.7 guards every tree of every database in a process with one lock
//! (`concurrency_control`; sled issue #1326): each `apply_batch` takes it exclusively,
//! each read shares it. A views batch being written (thousands of keys) therefore stops
//! the log writer's reads (ids, stream versions) and its own batch until it ends,
//! although the two databases share nothing. Timed in the benchmark's W3 (100,000
//! events in batches of 1,000), the writer spent 2.7-3.1 s deciding, of which 1.3 s on
//! its CPU: the rest was spent waiting for the views' batches. The projector now waits
//! for the commits in progress to end before it writes ([`wait_for_commits`]), and
//! writes while the writer is flushing, waiting for the disk, or idle.
//!
//! The wait is bounded ([`MOST_DEFERRED`]), so a log that is written without a pause
//! (many writers) still lets the views follow; and it is skipped when a reader waits
//! for the views. Nothing here is needed for correctness: it only orders two threads
//! that sled would otherwise serialize in whatever order they came.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Log writers of this process deciding or writing a commit now.
static COMMITTING: AtomicUsize = AtomicUsize::new(0);

/// The longest the projector defers one batch. A commit of 1,000 events takes some
/// 30-60 ms on the 2-core machine; this lets such a commit finish first, while the
/// views still follow a log written without pause at some 4,096 events per 100 ms.
pub const MOST_DEFERRED: Duration = Duration::from_millis(100);

/// How often the projector looks again while it defers.
const POLL: Duration = Duration::from_micros(200);

/// When the last commit of this process left sled's lock, in milliseconds since
/// [`since`]'s start.
static LAST_COMMIT_MS: AtomicU64 = AtomicU64::new(0);

/// A log that committed this recently is busy ([`log_busy`]).
const BUSY_WITHIN: Duration = Duration::from_millis(200);

fn since() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// A commit in progress, from the moment the writer starts deciding it until its
/// batch is in sled (before the flush, which shares the lock for moments only).
pub struct Committing(());

impl Committing {
    pub fn start() -> Committing {
        COMMITTING.fetch_add(1, Ordering::AcqRel);
        Committing(())
    }
}

impl Drop for Committing {
    fn drop(&mut self) {
        LAST_COMMIT_MS.store(since().as_millis() as u64 + 1, Ordering::Release);
        COMMITTING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a log writer of this process is committing or committed in the last
/// moments (200 ms): then the projector writes smaller batches, which hold up the
/// writer's next commit for less time when it comes during one.
pub fn log_busy() -> bool {
    let last = LAST_COMMIT_MS.load(Ordering::Acquire);
    COMMITTING.load(Ordering::Acquire) > 0
        || (last > 0 && since().as_millis() as u64 + 1 < last + BUSY_WITHIN.as_millis() as u64)
}

/// Waits until no log writer of this process is committing, or `most` has passed.
/// Returns how long it waited.
pub fn wait_for_commits(most: Duration) -> Duration {
    let started = Instant::now();
    while COMMITTING.load(Ordering::Acquire) > 0 && started.elapsed() < most {
        std::thread::sleep(POLL);
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_commit_and_no_longer_than_allowed() {
        // Idle: no wait.
        assert!(wait_for_commits(Duration::from_secs(5)) < Duration::from_secs(1));
        // A commit that never ends: waits the bound, then goes ahead.
        let commit = Committing::start();
        let waited = wait_for_commits(Duration::from_millis(30));
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        // A commit that ends: the wait ends with it.
        let ender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(commit);
        });
        let waited = wait_for_commits(Duration::from_secs(5));
        ender.join().unwrap();
        assert!(waited >= Duration::from_millis(15), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }
}
