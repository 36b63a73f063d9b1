//! [`HeadFollower`]: how a process learns of commits made by other processes and hosts
//! on the same PostgreSQL log.
//!
//! Every append transaction sends `NOTIFY chronicle_head, '<position>'`, which
//! PostgreSQL delivers to listeners only once the transaction has committed. The
//! follower holds one connection that `LISTEN`s on that channel and, woken by a
//! notification or every `poll` at the latest, reads the head row and publishes it as
//! the store's durable head ([`super::PgStore::subscribe`], [`super::PgStore::on_durable`]).
//! The notification only wakes it: the position published is always the one read
//! from the head row, so a stray `NOTIFY` cannot make a reader look past the log's end.
//! When the listening connection breaks (a restart, a failover), the follower keeps
//! polling and tries to listen again every few seconds: notifications are an
//! optimisation, polling is what the guarantee rests on. A head read that fails (the
//! server away, or not answering within the bound) makes it listen again too, since a
//! stalled listening connection would wait for notifications that never come. Every
//! wait is bounded, so dropping the follower takes at most the bound of the statement
//! it is in.

use super::client::{Client, Session};
use super::{PgStore, connect};
use crate::store::EventStore;
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a follower waits before it tries to listen again after a failure.
const RELISTEN_AFTER: Duration = Duration::from_secs(3);

/// A thread that follows other writers' commits; stopped when dropped (within a
/// quarter of a second, or the bound of the statement it is waiting on).
pub struct HeadFollower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HeadFollower {
    pub(super) fn start(store: PgStore, poll: Duration) -> Result<HeadFollower> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("chronicle-pg-follower".into())
                .spawn(move || run(&store, poll, &stop))
                .map_err(|e| Error::Storage(format!("starting the head follower: {e}")))?
        };
        Ok(HeadFollower {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for HeadFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long the follower waits at a time, at most, so that dropping it is quick.
const SLICE: Duration = Duration::from_millis(250);

fn run(store: &PgStore, poll: Duration, stop: &AtomicBool) {
    let mut listener: Option<Client> = None;
    let mut last_try: Option<Instant> = None;
    let mut last_read: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if listener.is_none() && last_try.is_none_or(|t| t.elapsed() >= RELISTEN_AFTER) {
            last_try = Some(Instant::now());
            listener = listen(store);
            if listener.is_none() {
                tracing::warn!(
                    target: "chronicle::follow",
                    "cannot LISTEN on the PostgreSQL log; reading its head every {} ms until it can",
                    poll.as_millis()
                );
            }
        }
        let slice = poll.min(SLICE);
        let notified = match &mut listener {
            Some(client) => match wait_for_notification(client, slice) {
                Some(notified) => notified,
                None => {
                    tracing::warn!(
                        target: "chronicle::follow",
                        "the LISTEN connection to the PostgreSQL log broke; reading its head every {} ms while it is made again",
                        poll.as_millis()
                    );
                    listener = None;
                    false
                }
            },
            None => {
                std::thread::sleep(slice);
                false
            }
        };
        if notified || last_read.is_none_or(|t| t.elapsed() >= poll) {
            last_read = Some(Instant::now());
            // A failed read (the server away, or not answering) is tried again at the
            // next round. The listening connection likely went the same way, and a
            // stalled one would wait for notifications that never come: it is made
            // again.
            match store.head() {
                Ok(head) => store.inner.durable.publish(head.position),
                Err(_) => listener = None,
            }
        }
    }
}

/// A connection listening on `chronicle_head`, or `None` when the server cannot be
/// reached now (within the connection's bound).
fn listen(store: &PgStore) -> Option<Client> {
    let mut client = connect(&store.inner.pool.config).ok()?;
    client.batch_execute("LISTEN chronicle_head").ok()?;
    Some(client)
}

/// Waits up to `timeout` for a notification and takes every one already queued.
/// Returns whether one came, or `None` when the connection broke.
fn wait_for_notification(client: &mut Client, timeout: Duration) -> Option<bool> {
    client.notified(timeout).ok()
}
