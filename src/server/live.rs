//! `GET /events/live`: the log as Server-Sent Events, caught up from a position and then
//! followed as new events become durable.
//!
//! Each event is sent with `id:` = its position, so a client that reconnects with
//! `Last-Event-ID` resumes right after the last event it received: nothing is lost and
//! nothing repeats. Without `from` or `Last-Event-ID` the stream starts after the
//! current end of the log.
//!
//! Each subscriber has its own reader task. It waits on the store's durable position
//! ([`crate::store::SledStore::subscribe`]), reads what is new straight from the store,
//! and puts it into the subscriber's bounded buffer. Writers never wait for it. A
//! subscriber whose buffer stays full for [`super::Config::live_grace`] is dropped: its
//! stream ends with `event: error`, whose data says to reconnect with `Last-Event-ID`.
//! A shutdown ends every stream the same way.

use super::AppState;
use super::error::ApiError;
use super::params::Params;
use crate::model::{Position, RecordedEvent};
use crate::store::{EventStore, ReadFilter};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

/// Events read from the store at a time.
const CHUNK: usize = 256;

/// `GET /events/live?from=&type=&category=&stream=`, with an optional `Last-Event-ID`.
pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut params: Params,
) -> Result<Response, ApiError> {
    let from = params.position("from")?;
    let filter = ReadFilter {
        stream: params.stream("stream")?,
        category: params.take("category")?,
        event_type: params.event_type("type")?,
        ..ReadFilter::default()
    };
    params.finish("from, type, category and stream")?;
    let last_seen = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
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
    // Watch before reading the head, so no commit can fall between the two.
    let mut durable = state.store.subscribe();
    let head = durable.borrow_and_update().0;
    let next = match (last_seen, from) {
        (Some(id), _) => id.saturating_add(1),
        (None, Some(p)) => p.0.max(1),
        (None, None) => head + 1,
    };
    let (tx, rx) = mpsc::channel(state.config.live_buffer.max(1) + 1);
    tokio::spawn(
        Reader {
            state: state.clone(),
            filter,
            next,
            last_sent: last_seen,
            tx,
            _permit: permit,
        }
        .run(durable),
    );
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
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
    tx: mpsc::Sender<Event>,
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
            let _ =
                self.tx.try_send(Event::default().event("error").data(
                    json!({ "error": message, "last_event_id": self.last_sent }).to_string(),
                ));
        }
    }

    fn message(&self, why: &str) -> String {
        match self.last_sent {
            Some(id) => {
                format!("{why}; reconnect with `Last-Event-ID: {id}` to resume after position {id}")
            }
            None => format!(
                "{why}; reconnect with the same `from` (or `Last-Event-ID` of the last event received) to resume"
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
                    for event in store.read(&filter) {
                        let event = event?;
                        if event.position.0 > head {
                            break;
                        }
                        events.push(event);
                        if events.len() == CHUNK {
                            break;
                        }
                    }
                    Ok(events)
                })
                .await
                .map_err(|_| End::Say(self.message("the server could not read the log")))?;
            let complete = chunk.len() < CHUNK;
            for event in chunk {
                self.send(event, stopping).await?;
            }
            if complete {
                self.next = head + 1;
            }
        }
        Ok(())
    }

    /// Puts one event into the buffer, waiting at most the grace period for room.
    async fn send(
        &mut self,
        event: RecordedEvent,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        let position = event.position.0;
        let data = serde_json::to_string(&event)
            .map_err(|_| End::Say(self.message("the server could not encode an event")))?;
        let grace = self.state.config.live_grace;
        // Two free slots: one for this event, one kept for a last message.
        let room = tokio::select! {
            room = tokio::time::timeout(grace, self.tx.reserve_many(2)) => room,
            _ = stopping.changed() => {
                return Err(End::Say(self.message("the server is shutting down")));
            }
        };
        match room {
            Ok(Ok(mut permits)) => {
                if let Some(permit) = permits.next() {
                    permit.send(Event::default().id(position.to_string()).data(data));
                }
                self.last_sent = Some(position);
                self.next = position + 1;
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Say(self.message(&format!(
                "this subscriber fell behind: {} events waited for it for {} ms",
                self.state.config.live_buffer,
                grace.as_millis()
            )))),
        }
    }
}
