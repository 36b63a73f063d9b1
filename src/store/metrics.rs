//! What a store counts for operators (`GET /metrics`): appends and group commits, with
//! their latency. The writer thread updates them with atomics, off any lock, so counting
//! costs an append nothing it would notice; whoever renders them reads the same values.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The store's counters. Cheap to clone: clones share the values.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// New events made durable (retries of events already in the log not counted).
    pub events_appended: Counter,
    /// Append calls answered as durable (a retry of events already in the log too).
    pub appends: Counter,
    /// Append calls refused by the log's rules (a failed `expect`, an unknown entity).
    pub appends_refused: Counter,
    /// Group commits: one batch written and synced for every append queued together.
    pub commits: Counter,
    /// Seconds from a group commit's start (its appends checked) to its sync's end.
    pub commit_seconds: Histogram,
    /// Appends per group commit.
    pub commit_appends: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            events_appended: Counter::default(),
            appends: Counter::default(),
            appends_refused: Counter::default(),
            commits: Counter::default(),
            // 50 µs to about 3 s.
            commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 17)),
            // 1 to 256.
            commit_appends: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
        }
    }
}

impl StoreMetrics {
    /// Counts a group commit made durable and logs it (`chronicle::commit`): `appends`
    /// answered, `events` new, the log's `head` after it, `seconds` from its start.
    pub fn committed(&self, appends: usize, events: usize, head: u64, seconds: f64) {
        self.commits.inc();
        self.events_appended.inc_by(events as u64);
        self.commit_seconds.observe(seconds);
        self.commit_appends.observe(appends as f64);
        tracing::info!(
            target: "chronicle::commit",
            appends,
            events,
            head,
            ms = %format_args!("{:.3}", seconds * 1000.0),
            "commit"
        );
    }

    /// Logs a group commit that failed, and why.
    pub fn failed(&self, appends: usize, error: &dyn std::fmt::Display) {
        tracing::error!(target: "chronicle::commit", appends, error = %error, "commit failed");
    }
}
