//! The views over HTTP: trips, the timeline, entities, sales and stats, each at the head
//! of the log or `as_of` an earlier point, with the same meaning as the command line's
//! `--as-of`: a position, or an RFC 3339 time of the `recorded` clock (the last position
//! recorded at or before it).
//!
//! Every answer carries `as_of` (the position it describes) and, except for stats,
//! `names`: the display name of every entity id it mentions, so that a client can show
//! people names without asking again.

use super::AppState;
use super::error::ApiError;
use super::params::{self, Params, Segment};
use crate::model::as_of::AsOf;
use crate::model::{EntityId, Extent, Position};
use crate::query::{Query, TimelineFilter};
use crate::store::{EventStore, Store, Views};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which point of the log a query answers from: `as_of`, or at least `min_position`
/// (read-your-writes: the position an append returned) and at least the head as of the
/// request.
pub struct At {
    as_of: Option<String>,
    min_position: Option<u64>,
    /// The reported clock: only what had been published by this date.
    known_at: Option<Extent>,
}

impl At {
    /// Takes `as_of`, `min_position` and `known_at` from the query parameters.
    pub fn take(params: &mut Params) -> Result<At, ApiError> {
        Ok(At {
            as_of: params.take("as_of")?,
            min_position: params.min_position()?,
            known_at: params
                .take("known_at")?
                .map(|t| {
                    Extent::known_at(&t).map_err(|e| {
                        let hint = plus_hint(&t, |t| Extent::known_at(t).is_ok());
                        ApiError::bad_request(format!("`known_at`: {}{hint}", e.0))
                    })
                })
                .transpose()?,
        })
    }
}

/// The hint for a date whose time zone's `+`, sent unescaped in a URL, arrived as a
/// space: when the text with a `+` in its place reads (`parses`).
fn plus_hint(text: &str, parses: impl Fn(&str) -> bool) -> &'static str {
    match text.contains(' ') && parses(&text.replace(' ', "+")) {
        true => "; in a URL, write the + of a time zone as %2B",
        false => "",
    }
}

/// The position `as_of` names (the head when absent), and whether the query reads the
/// live views: only without `as_of`. A position given, even the head's, is answered
/// from the views' history as of exactly that position, so that pages asked for at one
/// position make one answer while the log grows.
fn as_of_position(store: &Store, as_of: Option<&str>) -> Result<(Position, bool), ApiError> {
    let head = store.head()?.position;
    let Some(text) = as_of else {
        return Ok((head, true));
    };
    // Digits too many for a position are past the end of any log: 404, as past this one's.
    let refused: fn(String) -> ApiError = match params::all_digits(text) {
        true => ApiError::not_found,
        false => ApiError::bad_request,
    };
    let position = match AsOf::parse(text, "as_of", "known_at=").map_err(refused)? {
        AsOf::Position(n) if n > head => {
            return Err(ApiError::not_found(AsOf::past_end("as_of", n, head)));
        }
        AsOf::Position(n) => n,
        AsOf::Recorded(time) => store.position_at(time)?,
    };
    Ok((position, false))
}

/// The views a query reads, and the position they describe. A position past the end
/// of the log is refused at once: no append was acknowledged there, and waiting for it
/// would hold a thread of the blocking pool for nothing. Views that lag behind the log
/// are waited for up to `wait`, then refused with 503.
/// A `known_at` query also returns the hold on the server's one fold at a time
/// (`fold`), to keep while it answers.
fn views<'f>(
    store: &Store,
    at: &At,
    wait: Duration,
    fold: &'f std::sync::Mutex<()>,
) -> Result<(Views, Position, Option<std::sync::MutexGuard<'f, ()>>), ApiError> {
    let (position, at_head) = as_of_position(store, at.as_of.as_deref())?;
    if let Some(date) = &at.known_at {
        if at.min_position.is_some_and(|m| m > position.0) {
            return Err(ApiError::not_found(format!(
                "min_position {} is past the end of the log (position {position}); use a position an append returned",
                at.min_position.unwrap_or_default()
            )));
        }
        // The reported clock is folded from the durable log itself, up to the position:
        // no projector to wait for. The fold holds those events and their views in
        // memory, so a server folds one at a time.
        // Another waits its turn, as long as a query waits for the views (at least 1 s).
        let deadline = std::time::Instant::now() + wait.max(Duration::from_secs(1));
        let folding = loop {
            match fold.try_lock() {
                Ok(folding) => break folding,
                Err(std::sync::TryLockError::Poisoned(folding)) => break folding.into_inner(),
                Err(std::sync::TryLockError::WouldBlock)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "another known_at query is being answered: each folds the log in memory, so a server answers one at a time; retry in a moment",
                    )
                    .with("busy", json!(true)));
                }
            }
        };
        let known = Views::Known(store.known_views(position, date)?);
        return Ok((known, position, Some(folding)));
    }
    let wanted = if at_head {
        Position(position.0.max(at.min_position.unwrap_or(0)))
    } else {
        position
    };
    if wanted > position {
        // Past the durable head: no append this server acknowledged is there, so
        // waiting would only end in a 503.
        return Err(ApiError::not_found(format!(
            "min_position {wanted} is past the end of the log (position {position}); use a position an append returned"
        )));
    }
    // Live or past, the views must have folded the position first; the wait is bounded
    // so that a lagging projector never holds a server thread for long.
    let Some((live, reflects)) = store.views_at_least(wanted, wait)? else {
        let reflects = store.projected();
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the views have not reached position {wanted} yet (they reflect {reflects}); retry in a moment"
            ),
        )
        .with("wanted", json!(wanted))
        .with("reflects", json!(reflects)));
    };
    if at_head {
        Ok((Views::Live(live), reflects, None))
    } else {
        // Folded already: `views_at` does not wait.
        Ok((Views::Past(store.views_at(position)?), position, None))
    }
}

/// Every entity id among the strings of `value`, with its display name.
fn names(q: &Query, value: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    fn walk(value: &Value, found: &mut Vec<EntityId>) {
        match value {
            Value::String(s) => {
                if let Ok(id) = EntityId::parse(s) {
                    found.push(id);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            Value::Object(fields) => fields.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut ids = Vec::new();
    walk(value, &mut ids);
    let mut out = BTreeMap::new();
    for id in ids {
        if !out.contains_key(id.as_str()) {
            let name = q.name(&id)?;
            out.insert(id.to_string(), name);
        }
    }
    Ok(out)
}

/// A view's answer: where it stands, the view, and the names it mentions.
#[derive(serde::Serialize)]
struct Answer<T> {
    as_of: Position,
    #[serde(flatten)]
    view: T,
    names: BTreeMap<String, String>,
}

/// The answer `{"as_of": …, <the view's fields>, "names": {…}}`, serialized with the
/// view's fields in their declared order.
fn answer(q: &Query, at: Position, view: impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    let names = names(q, &to_json(&view)?)?;
    serde_json::to_vec(&Answer {
        as_of: at,
        view,
        names,
    })
    .map_err(ApiError::internal)
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// The most entries one timeline answer holds, and how many it holds when `limit` is
/// not given: a larger timeline comes in pages (`next`, then `after`).
pub const TIMELINE_PAGE: usize = 10_000;

/// A page of the timeline: `next` is the `after` of the page that follows, when this
/// one is full.
#[derive(serde::Serialize)]
struct TimelinePage {
    entries: Vec<crate::query::TimelineEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn timeline_limit(params: &mut Params) -> Result<usize, ApiError> {
    match params.number("limit")? {
        None => Ok(TIMELINE_PAGE),
        Some(n) if n >= 1 && n <= TIMELINE_PAGE as u64 => Ok(n as usize),
        Some(n) => Err(ApiError::bad_request(format!(
            "`limit` must be from 1 to {TIMELINE_PAGE}, not {n}; page with `next` (the `after` of the next page)"
        ))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `after` of a timeline page: the `next` of the page before it.
fn cursor(text: Option<String>) -> Result<Option<[u8; 24]>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bytes: Option<Vec<u8>> = (text.len() == 48 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            (0..48)
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes
        .and_then(|b| b.try_into().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`after` must be the `next` of a timeline answer (48 hex digits), not `{text}`"
            ))
        })
}

/// A view under one key, as in `{"trips": […]}`.
fn under<T>(key: &'static str, view: T) -> BTreeMap<&'static str, T> {
    BTreeMap::from([(key, view)])
}

/// Runs a query over the views as of `as_of`.
async fn query<F>(state: &AppState, at: At, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(&Query, Position, &Store) -> Result<Vec<u8>, ApiError> + Send + 'static,
{
    let wait = state.config.views_wait;
    let fold = state.known_at_fold.clone();
    let body = state
        .blocking(move |store| {
            let (views, position, _folding) = views(store, &at, wait, &fold)?;
            f(&Query::new(views.docs()), position, store)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /healthz`: the server answers and the store can be read.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (head, views, halted) = state
        .blocking(|store| {
            if let Some(reason) = store.halted() {
                // Read nothing: sled may fail reads too once a write failed.
                let durable = *store.subscribe().borrow();
                return Ok((Ok(durable), store.projected(), Some(reason.to_owned())));
            }
            Ok((store.head().map(|h| h.position), store.projected(), None))
        })
        .await?;
    if let Some(reason) = halted {
        return Err(ApiError::halted(&reason, head?, views));
    }
    let head = head?;
    Ok(Json(
        json!({ "status": "ok", "head": head, "views": views }),
    ))
}

/// `GET /trips?as_of=`
pub async fn trips(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let at = At::take(&mut params)?;
    params.finish("known_at, as_of and min_position")?;
    query(&state, at, |q, at, _| {
        answer(q, at, under("trips", q.trips()?))
    })
    .await
}

/// `GET /trips/{stream}?include_retracted=&as_of=`
pub async fn trip(
    State(state): State<AppState>,
    stream: Segment,
    mut params: Params,
) -> Result<Response, ApiError> {
    let include_retracted = params.flag("include_retracted")?;
    let at = At::take(&mut params)?;
    params.finish("include_retracted, known_at, as_of and min_position")?;
    let (past, known_at) = (at.as_of.is_some() || at.known_at.is_some(), at.known_at);
    query(&state, at, move |q, at, store| {
        let now = match past {
            true => Some(store.live_views()?),
            false => None,
        };
        let now = now.as_ref().map(|now| Query::new(now));
        let (stream, trip) = q
            .trip_named(&stream.0, now.as_ref(), at, known_at.as_ref(), store)
            .map_err(not_found)?;
        if include_retracted {
            let retracted = q.retracted(&stream)?;
            let mut view = BTreeMap::from([("trip", to_json(&trip)?)]);
            view.insert("retracted", to_json(&retracted)?);
            return answer(q, at, view);
        }
        answer(q, at, under("trip", trip))
    })
    .await
}

/// A lookup by path that finds nothing is a `404`; other failures keep their status.
fn not_found(error: crate::Error) -> ApiError {
    match error {
        crate::Error::Invalid { .. } => ApiError::from(error).with_status(StatusCode::NOT_FOUND),
        other => other.into(),
    }
}

fn extent(name: &str, text: Option<String>) -> Result<Option<Extent>, ApiError> {
    text.map(|t| {
        t.parse::<Extent>().map_err(|e| {
            let hint = plus_hint(&t, |t| t.parse::<Extent>().is_ok());
            ApiError::bad_request(format!("`{name}`: {}{hint}", e.0))
        })
    })
    .transpose()
}

/// Why the views as of `at` found no entity `text` (`missing`), from the current views
/// when they reach the head within the wait ([`Query::not_registered_yet`]).
fn why_missing(
    text: &str,
    missing: crate::Error,
    at: Position,
    store: &Store,
    wait: Duration,
) -> Result<crate::Error, ApiError> {
    Ok(match store.views_at_least(store.head()?.position, wait)? {
        Some((now, _)) => Query::new(&now).not_registered_yet(text, missing, at, store),
        None => missing,
    })
}

/// Resolves an entity parameter (id, name or alias); failing that (no entity, or
/// several, by that name), a `404`.
fn resolve(q: &Query, name: &str, text: Option<&str>) -> Result<Option<EntityId>, ApiError> {
    if text.is_some_and(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "`{name}` is empty; give an entity's id, name or alias, or leave `{name}` out"
        )));
    }
    text.map(|t| q.resolve_entity(name, t).map_err(not_found))
        .transpose()
}

/// `GET /timeline?entity=&stream=&category=&type=&tag=&from=&to=&limit=&include_retracted=&as_of=`
pub async fn timeline(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let entity = params.take("entity")?;
    let mut filter = TimelineFilter {
        stream: params.stream("stream")?,
        category: params.category("category")?,
        event_type: params.event_type("type")?,
        tag: params.tag("tag")?,
        from: extent("from", params.take("from")?)?,
        to: extent("to", params.take("to")?)?,
        limit: Some(timeline_limit(&mut params)?),
        after: cursor(params.take("after")?)?,
        entity: None,
        include_retracted: params.flag("include_retracted")?,
    };
    filter.check_window().map_err(ApiError::bad_request)?;
    filter
        .check_category()
        .map_err(|e| ApiError::bad_request(format!("`stream` and `category`: {e}")))?;
    filter
        .check_type()
        .map_err(|e| ApiError::bad_request(format!("`type`: {e}")))?;
    let at = At::take(&mut params)?;
    params.finish(
        "entity, stream, category, type, tag, from, to, limit, after, include_retracted, known_at, as_of and min_position",
    )?;
    let (past, wait) = (at.as_of.is_some(), state.config.views_wait);
    query(&state, at, move |q, at, store| {
        filter.entity = match entity.as_deref() {
            Some(text) if past && !text.is_empty() => match q.resolve_entity("entity", text) {
                Ok(id) => Some(id),
                Err(missing) => {
                    return Err(not_found(why_missing(text, missing, at, store, wait)?));
                }
            },
            text => resolve(q, "entity", text)?,
        };
        let entries = q.timeline(&filter)?;
        // A full page may have more after it.
        let next = (Some(entries.len()) == filter.limit)
            .then(|| entries.last().map(|e| hex(&e.cursor())))
            .flatten();
        answer(q, at, TimelinePage { entries, next })
    })
    .await
}

/// `GET /entities?as_of=`
pub async fn entities(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let at = At::take(&mut params)?;
    params.finish("known_at, as_of and min_position")?;
    query(&state, at, |q, at, _| {
        answer(q, at, under("entities", q.entities()?))
    })
    .await
}

/// `GET /entities/{id-or-alias}?as_of=`
pub async fn entity(
    State(state): State<AppState>,
    entity: Segment,
    mut params: Params,
) -> Result<Response, ApiError> {
    let at = At::take(&mut params)?;
    params.finish("known_at, as_of and min_position")?;
    let (past, wait) = (at.as_of.is_some(), state.config.views_wait);
    query(&state, at, move |q, at, store| {
        let view = match q.entity(&entity.0) {
            Ok(view) => view,
            Err(missing) if past => {
                return Err(not_found(why_missing(&entity.0, missing, at, store, wait)?));
            }
            Err(missing) => return Err(not_found(missing)),
        };
        answer(q, at, under("entity", view))
    })
    .await
}

/// `GET /sales?buyer=&seller=&include_retracted=&as_of=`
pub async fn sales(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let buyer = params.take("buyer")?;
    let seller = params.take("seller")?;
    let include_retracted = params.flag("include_retracted")?;
    let at = At::take(&mut params)?;
    params.finish("buyer, seller, include_retracted, known_at, as_of and min_position")?;
    query(&state, at, move |q, at, _| {
        let buyer = resolve(q, "buyer", buyer.as_deref())?;
        let seller = resolve(q, "seller", seller.as_deref())?;
        let report = q.sales(buyer.as_ref(), seller.as_ref(), include_retracted)?;
        answer(q, at, report)
    })
    .await
}

/// `GET /stats?as_of=`: what `chronicle stats --json` prints. As of a past position,
/// the counts and head are those of the log up to it (found by reading it), the size
/// on disk is today's, and the checkpoints are left out.
pub async fn stats(
    State(state): State<AppState>,
    mut params: Params,
) -> Result<Json<Value>, ApiError> {
    let as_of = params.take("as_of")?;
    params.finish("as_of")?;
    state
        .blocking(move |store| {
            let (at, at_head) = as_of_position(store, as_of.as_deref())?;
            let mut report = if at_head {
                let stats = store.stats()?;
                let mut report = to_json(&stats)?;
                let checkpoints: Vec<Value> = store
                    .checkpoints()?
                    .into_iter()
                    .map(|(projection, version, position)| {
                        json!({"projection": projection, "version": version, "position": position})
                    })
                    .collect();
                report["checkpoints"] = checkpoints.into();
                report
            } else {
                to_json(&store.stats_as_of(at)?)?
            };
            report["as_of"] = json!(at);
            Ok(Json(report))
        })
        .await
}
