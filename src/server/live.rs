//! `GET /events/live`: the log as Server-Sent Events, caught up from a position and then
//! followed as new events become durable.
//!
//! Each event is sent with `id:` = its position, so a client that reconnects with
//! `Last-Event-ID` resumes right after the last event it received: nothing is lost and
//! nothing repeats. Without `from` or `Last-Event-ID` the stream starts after the
//! current end of the log.
//!
//! Each subscriber has its own reader task. It waits on the store's durable position
//! ([`crate::store::Store::subscribe`]), reads what is new straight from the store,
//! and puts it into the subscriber's bounded buffer. Writers never wait for it. A
//! subscriber whose buffer stays full for [`super::Config::live_grace`] is dropped: its
//! stream ends with `event: error`, whose data says to reconnect with `Last-Event-ID`.
//! A shutdown ends every stream the same way.
//!
//! What a subscriber costs is bounded in bytes, not only in events: its reader holds at
//! most [`CHUNK_BYTES`] (plus one event) read from the store, and its buffer at most
//! [`super::Config::live_buffer_bytes`] of encoded events (and at most
//! [`super::Config::live_buffer`] of them). A subscriber that stopped reading is dropped
//! after the grace period, and its connection is closed once its writes have waited
//! [`super::Config::send_timeout`] (see `listen`), which frees what it held.

use super::AppState;
use super::error::ApiError;
use super::error::halted_log_message;
use super::params::Params;
use crate::model::Position;
use crate::store::{EventStore, ReadFilter};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Events read from the store at a time, at most.
const CHUNK: usize = 256;

/// Bytes of encoded events read from the store at a time: a read stops after the event
/// that reaches this.
const CHUNK_BYTES: usize = 256 * 1024;

/// An event in a subscriber's buffer, with the share of its byte budget it holds.
type Buffered = (Event, Option<OwnedSemaphorePermit>);

/// `GET /events/live?from=&type=&category=&stream=`, with an optional `Last-Event-ID`.
pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Response, ApiError> {
    let from = params.position("from")?;
    let filter = ReadFilter {
        stream: params.stream("stream")?,
        category: params.category("category")?,
        event_type: params.event_type("type")?,
        ..ReadFilter::default()
    };
    params.finish("from, type, category and stream")?;
    let last_seen = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| super::params::digits(t.trim()))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Last-Event-ID must be the position of the last event received",
                    )
                })
        })
        .transpose()?;
    let permit = state.live_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server has as many live subscribers as it serves; retry later",
        )
    })?;
    if let Some(reason) = state.store.halted() {
        return Err(ApiError::halted_log(reason));
    }
    // Watch before reading the head, so no commit can fall between the two.
    let mut durable = state.store.subscribe();
    let head = durable.borrow_and_update().0;
    let next = match (last_seen, from) {
        (Some(id), _) => id.saturating_add(1),
        (None, Some(p)) => p.0.max(1),
        (None, None) => head + 1,
    };
    if next > head + 1 {
        // Past the end as this process knows it: read the log's own head (on PostgreSQL
        // another server may have appended it) before saying so, as `as_of` does. Waiting
        // there instead would skip every event up to it without a word.
        let logged = state.blocking(|store| Ok(store.head()?.position.0)).await?;
        if next > logged + 1 {
            return Err(ApiError::not_found(match last_seen {
                Some(id) => format!(
                    "Last-Event-ID {id} is past the end of the log (position {logged}): this log never held that event (another store, or one restored from an older copy?); subscribe again with `from` (1 to {}) or without it",
                    logged + 1
                ),
                None => format!(
                    "from {next} is past the end of the log (position {logged}); subscribe from {} (or without `from`) for the events appended from now on",
                    logged + 1
                ),
            }));
        }
    }
    let (tx, rx) = mpsc::channel(state.config.live_buffer.max(1) + 1);
    let budget = state
        .config
        .live_buffer_bytes
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    tokio::spawn(
        Reader {
            state: state.clone(),
            filter,
            next,
            last_sent: last_seen,
            tx,
            budget: Arc::new(Semaphore::new(budget)),
            budget_size: budget,
            _permit: permit,
        }
        .run(durable),
    );
    // An event leaves the budget when it is handed to the connection.
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|(event, _bytes)| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One subscriber's reader: from the store into the subscriber's buffer.
struct Reader {
    state: AppState,
    filter: ReadFilter,
    /// The next position to look at.
    next: u64,
    last_sent: Option<u64>,
    /// The buffer holds `live_buffer` events plus one slot kept for the last message.
    tx: mpsc::Sender<Buffered>,
    /// Bytes of encoded events the buffer may hold: one permit a byte.
    budget: Arc<Semaphore>,
    budget_size: usize,
    _permit: OwnedSemaphorePermit,
}

/// Why a stream ends.
enum End {
    /// The subscriber went away, or the store closed.
    Gone,
    /// The stream ends with this message as `event: error`.
    Say(String),
}

impl Reader {
    async fn run(mut self, mut durable: watch::Receiver<Position>) {
        let mut stopping = self.state.stopping.clone();
        let end = loop {
            if *stopping.borrow_and_update() {
                break End::Say(self.message("the server is shutting down"));
            }
            if let Some(reason) = self.state.store.halted() {
                break End::Say(self.message(&halted_log_message(reason)));
            }
            let head = durable.borrow_and_update().0;
            if let Err(end) = self.catch_up(head, &mut stopping).await {
                break end;
            }
            tokio::select! {
                changed = durable.changed() => {
                    if changed.is_err() {
                        break End::Gone;
                    }
                }
                _ = self.tx.closed() => break End::Gone,
                stop = stopping.changed() => {
                    if stop.is_err() {
                        break End::Say(self.message("the server is shutting down"));
                    }
                }
            }
        };
        if let End::Say(message) = end {
            // The slot kept free for this message makes the send succeed.
            let _ = self.tx.try_send((
                Event::default()
                    .event("error")
                    .data(json!({ "error": message, "last_event_id": self.last_sent }).to_string()),
                None,
            ));
        }
    }

    fn message(&self, why: &str) -> String {
        match self.last_sent {
            Some(id) => {
                format!("{why}; reconnect with `Last-Event-ID: {id}` to resume after position {id}")
            }
            // Nothing sent yet: where this stream had got to (past events the filters
            // left out), whether or not it was opened with `from`.
            None => format!(
                "{why}; reconnect with `from={}` to resume where this stream was",
                self.next
            ),
        }
    }

    /// Sends every matching event up to `head`.
    async fn catch_up(
        &mut self,
        head: u64,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        while self.next <= head {
            let mut filter = self.filter.clone();
            filter.from = Some(Position(self.next));
            let chunk = self
                .state
                .blocking(move |store| {
                    let mut events = Vec::new();
                    let mut bytes = 0;
                    for event in store.read(&filter) {
                        let event = event?;
                        if event.position.0 > head {
                            break;
                        }
                        let data = serde_json::to_string(&event).map_err(|e| {
                            super::error::ApiError::internal(format!("encoding an event: {e}"))
                        })?;
                        bytes += data.len();
                        events.push((event.position.0, data));
                        if events.len() == CHUNK || bytes >= CHUNK_BYTES {
                            return Ok((events, false));
                        }
                    }
                    Ok((events, true))
                })
                .await
                .map_err(|_| End::Say(self.message("the server could not read the log")))?;
            let (events, complete) = chunk;
            for (position, data) in events {
                self.send(position, data, stopping).await?;
            }
            if complete {
                self.next = head + 1;
            }
        }
        Ok(())
    }

    /// Puts one encoded event into the buffer, waiting at most the grace period for
    /// room (in events and in bytes).
    async fn send(
        &mut self,
        position: u64,
        data: String,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        let grace = self.state.config.live_grace;
        // An event larger than the whole budget takes all of it, and so goes alone.
        let cost = u32::try_from(data.len().clamp(1, self.budget_size)).unwrap_or(u32::MAX);
        let budget = self.budget.clone();
        let tx = &self.tx;
        let room = async move {
            let bytes = budget.acquire_many_owned(cost).await;
            // Two free slots: one for this event, one kept for a last message.
            let slots = tx.reserve_many(2).await;
            (bytes, slots)
        };
        let room = tokio::select! {
            room = tokio::time::timeout(grace, room) => room,
            _ = stopping.changed() => {
                return Err(End::Say(self.message("the server is shutting down")));
            }
        };
        match room {
            Ok((Ok(bytes), Ok(mut slots))) => {
                if let Some(slot) = slots.next() {
                    slot.send((
                        Event::default().id(position.to_string()).data(data),
                        Some(bytes),
                    ));
                }
                self.last_sent = Some(position);
                self.next = position + 1;
                Ok(())
            }
            Ok(_) => Err(End::Gone),
            Err(_) => Err(End::Say(self.message(&format!(
                "this subscriber fell behind: its buffer ({} events or {} bytes) stayed full for {} ms",
                self.state.config.live_buffer,
                self.budget_size,
                grace.as_millis()
            )))),
        }
    }
}
