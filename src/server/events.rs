//! The log over HTTP: appending (`POST /events`, `POST /streams/{stream}/events`) and
//! reading in pages by position (`GET /events`, `GET /streams/{stream}`).
//!
//! A body is one event object or an array of them, in the format `chronicle append`
//! reads; all events of one request are appended atomically. On a stream's route an
//! event may leave `stream` out (the path's is used) but may not name another stream.
//! `If-Match: <version>` (or `*` for "the stream exists") is the concurrency check of
//! the request's first event, as its `expect` would be.

use super::AppState;
use super::auth::check_write;
use super::error::ApiError;
use super::params::{Params, Segment};
use crate::Error;
use crate::model::{
    Expect, Origin, ProposedEvent, RecordedEvent, StreamId, ValidationError, Version,
    parse_event_value,
};
use crate::query::Query;
use crate::store::{EventStore, ReadFilter, Store};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// What an append takes instead of query parameters: a write that ignored `?expect=1`
/// would be a write its sender thought was checked.
const NO_PARAMETERS: &str =
    "none: the events and each one's `expect` go in the body (or the stream's version in If-Match)";

/// `POST /events`: events that each name their stream.
pub async fn append(
    State(state): State<AppState>,
    params: Params,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_write(&headers, state.config.token.as_deref())?;
    params.finish(NO_PARAMETERS)?;
    if headers.contains_key(header::IF_MATCH) {
        return Err(ApiError::bad_request(
            "If-Match needs a stream: POST to /streams/{stream}/events, or give each event an `expect`",
        ));
    }
    let events = parse_body(&state, &headers, body, None, None).await?;
    store_events(&state, events, None).await
}

/// `POST /streams/{stream}/events`: events of one stream.
pub async fn append_to_stream(
    State(state): State<AppState>,
    stream: Segment,
    params: Params,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_write(&headers, state.config.token.as_deref())?;
    params.finish(NO_PARAMETERS)?;
    let stream = stream.stream()?;
    let if_match = if_match(&headers)?;
    let events = parse_body(&state, &headers, body, Some(&stream), if_match).await?;
    store_events(&state, events, Some(&stream)).await
}

async fn store_events(
    state: &AppState,
    events: Vec<ProposedEvent>,
    stream: Option<&StreamId>,
) -> Result<Response, ApiError> {
    let wait = state.config.views_wait;
    let appended = state
        .blocking(move |store| {
            store.append(events).map_err(|mut refusal| {
                add_entity_hint(store, &mut refusal, wait);
                ApiError::from(refusal)
            })
        })
        .await?;
    let mut response = (StatusCode::CREATED, Json(json!({ "events": appended }))).into_response();
    if let Some(stream) = stream
        && let Ok(location) = HeaderValue::from_str(&format!("/streams/{stream}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `If-Match: 7`, `If-Match: "7"` (an entity tag) or `If-Match: *`.
fn if_match(headers: &HeaderMap) -> Result<Option<Expect>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(Some(Expect::Exists));
    }
    let unquoted = text.trim_matches('"');
    super::params::digits(unquoted)
        .map(|v| Some(Expect::Version(Version(v))))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "If-Match must be the stream's current version (like 7) or *, not `{text}`"
            ))
        })
}

fn invalid(index: usize, field: Option<&str>, message: String) -> ApiError {
    Error::Invalid {
        index: Some(index),
        error: ValidationError {
            line: None,
            field: field.map(str::to_owned),
            message,
        },
    }
    .into()
}

/// A refused append's error, with what the views say an entity named in it was meant
/// to be ([`Query::add_entity_hint`]): the views once they reach the log's head, as a
/// query waits for them (views behind it could take a name the log registered just now
/// for a typo of another); none past the wait.
fn add_entity_hint(store: &Store, refusal: &mut Error, wait: Duration) {
    if !crate::query::may_hint(refusal) {
        return;
    }
    let Ok(head) = store.head() else { return };
    if let Ok(Some((views, _))) = store.views_at_least(head.position, wait) {
        Query::new(&views).add_entity_hint(refusal);
    }
}

/// Reads and validates a write's body: one event or an array of them.
async fn parse_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    path_stream: Option<&StreamId>,
    if_match: Option<Expect>,
) -> Result<Vec<ProposedEvent>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            super::error::too_large(state.config.max_body)
        } else if super::error::timed_out(&e) {
            super::error::body_too_slow(state.config.body_timeout)
        } else {
            ApiError::bad_request(format!("the request body could not be read ({e})"))
        }
    })?;
    let json_declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.to_ascii_lowercase().ends_with("+json")
        });
    if !json_declared {
        // Browsers send forms and text/plain across sites without asking first; JSON
        // they do not, so this also keeps other sites' pages from writing to the log.
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the events as JSON, with `Content-Type: application/json`",
        ));
    }
    // A byte order mark, as some editors and tools write: skipped, as the CLI skips it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    let value: Value = crate::model::event::parse_json_strict(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid JSON ({e}); send one event object or an array of them"
        ))
    })?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::bad_request(
                "the body must be one event object or an array of them",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "the body holds no events; nothing was written",
        ));
    }
    let mut events = Vec::with_capacity(items.len());
    for (index, mut item) in items.into_iter().enumerate() {
        if let (Some(path), Value::Object(fields)) = (path_stream, &mut item) {
            match fields.get("stream") {
                None => {
                    fields.insert("stream".into(), path.as_str().into());
                }
                Some(Value::String(s)) if s == path.as_str() => {}
                Some(other) => {
                    return Err(invalid(
                        index,
                        Some("stream"),
                        format!(
                            "{other} is not the stream in the path (`{path}`); leave `stream` out or make it the same"
                        ),
                    ));
                }
            }
        }
        // `"expect": null` is no check, as an absent one: only a value can disagree.
        let has_expect = item.get("expect").is_some_and(|v| !v.is_null());
        let mut event = match parse_event_value(item, Origin::New) {
            Ok(event) => event,
            Err(e) => {
                let mut refusal = Error::invalid(index, e);
                let wait = state.config.views_wait;
                return Err(state
                    .blocking(move |store| {
                        add_entity_hint(store, &mut refusal, wait);
                        Ok(refusal.into())
                    })
                    .await
                    .unwrap_or_else(|failed| failed));
            }
        };
        if index == 0
            && let Some(expect) = if_match
        {
            if has_expect && event.expect != expect {
                return Err(ApiError::bad_request(format!(
                    "If-Match says {expect} but the first event's `expect` says {}; give the check once",
                    event.expect
                )));
            }
            event.expect = expect;
        }
        events.push(event);
    }
    Ok(events)
}

/// A page of the log. Events keep their field order, as `chronicle log --json` prints
/// them.
#[derive(serde::Serialize)]
struct Page {
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<StreamId>,
    /// The stream's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
    events: Vec<RecordedEvent>,
    /// Where the next page starts (`from`, or `from_version` for a stream); `null`
    /// when this page reached the end of the log.
    next: Option<u64>,
}

/// Reads a page of events: up to `limit`, and the next page's start (by `next_of`)
/// when more follow.
fn page(
    store: &Store,
    filter: &ReadFilter,
    limit: usize,
    until: Option<Version>,
    next_of: fn(&RecordedEvent) -> u64,
) -> Result<(Vec<RecordedEvent>, Option<u64>), ApiError> {
    let mut events = Vec::new();
    for event in store.read(filter).take(limit + 1) {
        let event = event?;
        if until.is_some_and(|v| event.version > v) {
            break;
        }
        events.push(event);
    }
    let next = if events.len() > limit {
        events.pop().map(|e| next_of(&e))
    } else {
        None
    };
    Ok((events, next))
}

/// `GET /events?from=&limit=&type=&category=&stream=`: the log in position order.
pub async fn log(State(state): State<AppState>, mut params: Params) -> Result<Response, ApiError> {
    let filter = ReadFilter {
        from: params.position("from")?,
        stream: params.stream("stream")?,
        category: params.category("category")?,
        event_type: params.event_type("type")?,
        from_version: None,
    };
    let limit = params.limit()?;
    params.finish("from, limit, type, category and stream")?;
    let (events, next) = state
        .blocking(move |store| page(store, &filter, limit, None, |e| e.position.0))
        .await?;
    Ok(Json(Page {
        stream: None,
        version: None,
        events,
        next,
    })
    .into_response())
}

/// `GET /streams/{stream}?from_version=&limit=`: one stream in version order.
pub async fn read_stream(
    State(state): State<AppState>,
    stream: Segment,
    mut params: Params,
) -> Result<Response, ApiError> {
    let stream = stream.stream()?;
    let from_version = params.number("from_version")?.map(Version);
    let limit = params.limit()?;
    params.finish("from_version and limit")?;
    let filter = ReadFilter {
        stream: Some(stream.clone()),
        from_version,
        ..ReadFilter::default()
    };
    let lookup = stream.clone();
    let answer = state
        .blocking(move |store| {
            // The version first, and no event past it: the page agrees with it.
            let Some(version) = store.stream_version(&lookup)? else {
                return Ok(None);
            };
            let (events, next) = page(store, &filter, limit, Some(version), |e| e.version.0)?;
            Ok(Some((version, events, next)))
        })
        .await?;
    let Some((version, events, next)) = answer else {
        return Err(ApiError::not_found(format!(
            "no stream `{stream}`: it has no events yet"
        )));
    };
    let mut response = Json(Page {
        stream: Some(stream),
        version: Some(version),
        events,
        next,
    })
    .into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}
