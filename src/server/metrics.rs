//! What an operator watches: `GET /metrics` in the Prometheus text format
//! (OpenMetrics 1.0), and the middleware that counts, times and logs every request.
//!
//! The store's own counters (appends, commits, their latency: [`StoreMetrics`]) are
//! registered as they are; the positions, the projector's lag and the live subscribers
//! are read when scraped, and so is the state of the PostgreSQL read pool on a server
//! over that log. Labels are bounded: a request is labelled by the route it
//! matched (`/trips/{stream}`, never the path it named), its method and its status.
//! Each request is logged as one `tracing` line (target `chronicle::http`, with the
//! client's IP address) once its answer starts; the writer logs one per commit (`chronicle::commit`).

use super::AppState;
use super::error::ApiError;
use crate::store::{EventStore, Store};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::time::Instant;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

fn request_histogram() -> Histogram {
    // 100 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// The server's metrics, and the registry that renders them with the store's.
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    head: Gauge,
    /// 1 when the last render read the log's head, 0 when the log could not be reached
    /// or takes no appends (halted).
    log_up: Gauge,
    projected: Gauge,
    lag: Gauge,
    live: Gauge,
    /// The PostgreSQL read pool's connections, open and in use (registered only then).
    pool: Option<(Gauge, Gauge)>,
}

impl ServerMetrics {
    pub fn new(log: &Store) -> ServerMetrics {
        let store = log.metrics();
        let mut registry = Registry::with_prefix("chronicle");
        registry.register(
            "appends",
            "Append calls answered as durable",
            store.appends.clone(),
        );
        registry.register(
            "appends_refused",
            "Append calls refused by the log's rules (a failed expect, an unknown entity, an id reused with other content); events refused before they reach the log (malformed, too large) are in chronicle_http_requests_total with status 4xx",
            store.appends_refused.clone(),
        );
        registry.register(
            "events_appended",
            "New events made durable",
            store.events_appended.clone(),
        );
        registry.register(
            "commits",
            "Group commits: one synced batch for the appends queued together",
            store.commits.clone(),
        );
        registry.register(
            "commit_seconds",
            "Seconds from a group commit's start to the end of its sync",
            store.commit_seconds.clone(),
        );
        registry.register(
            "commit_appends",
            "Appends per group commit",
            store.commit_appends.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                request_histogram,
            );
        registry.register(
            "http_request_seconds",
            "Seconds until an HTTP answer starts, by route and method",
            request_seconds.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let head = gauge(
            &mut registry,
            "log_head_position",
            "The log's last position",
        );
        let log_up = gauge(
            &mut registry,
            "log_up",
            "1 when the log's head could be read for this answer, 0 when the log cannot be reached (its PostgreSQL down or failing over; the head and the lag are then the last ones read) or takes no appends (a sled log since a write of it to disk failed: restart the server)",
        );
        let projected = gauge(
            &mut registry,
            "views_position",
            "The last position folded into this server's views",
        );
        let lag = gauge(
            &mut registry,
            "projector_lag_events",
            "Events in the log not yet folded into the views",
        );
        let live = gauge(
            &mut registry,
            "live_subscribers",
            "Clients following /events/live",
        );
        let pool = log.pool_state().map(|_| {
            let open = gauge(
                &mut registry,
                "pg_pool_connections",
                "Read connections to PostgreSQL open now, idle or in use (the writer has one more)",
            );
            let in_use = gauge(
                &mut registry,
                "pg_pool_connections_in_use",
                "Read connections to PostgreSQL in use now",
            );
            let max = gauge(
                &mut registry,
                "pg_pool_connections_max",
                "The most read connections to PostgreSQL this server opens",
            );
            max.set(i64::try_from(crate::store::PgStore::MAX_READ_CONNECTIONS).unwrap_or(i64::MAX));
            (open, in_use)
        });
        ServerMetrics {
            pool,
            registry,
            requests,
            request_seconds,
            head,
            log_up,
            projected,
            lag,
            live,
        }
    }
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Result<Response, ApiError> {
    // A log that cannot be reached is what the metrics should show, not a reason to
    // answer none: the counters are this server's own.
    let (head, projected, halted) = state
        .blocking(|store| {
            let halted = store.halted().is_some();
            // sled may fail reads too once a write failed: its durable head, unread.
            let head = if halted {
                Ok(store.subscribe().borrow().0)
            } else {
                store.head().map(|h| h.position.0)
            };
            Ok((head, store.projected().0, halted))
        })
        .await?;
    let m = &state.metrics;
    let gauge = |g: &Gauge, v: u64| {
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
    };
    gauge(&m.projected, projected);
    match head {
        Ok(head) => {
            gauge(&m.log_up, u64::from(!halted));
            gauge(&m.head, head);
            gauge(&m.lag, head.saturating_sub(projected));
        }
        Err(crate::Error::Unavailable(_)) => gauge(&m.log_up, 0),
        Err(e) => return Err(ApiError::from(e)),
    }
    if let (Some((open, in_use)), Some((now_open, now_in_use))) =
        (&m.pool, state.store.pool_state())
    {
        gauge(open, now_open as u64);
        gauge(in_use, now_in_use as u64);
    }
    gauge(
        &m.live,
        (state.config.max_live - state.live_slots.available_permits()) as u64,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .map_err(|e| ApiError::internal(format!("encoding the metrics: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts, times and logs every request (outermost, so it sees every answer).
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // With the query: a 400 or a 404 about a parameter is then told apart in the log.
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    // Set by the listener; absent when a test calls the router directly.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |c| c.0.ip().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    m.request_seconds
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route,
        })
        .observe(seconds);
    tracing::info!(
        target: "chronicle::http",
        client = %client,
        method = %method,
        path = %path,
        status,
        ms = %format_args!("{:.3}", seconds * 1000.0),
        "request"
    );
    response
}
