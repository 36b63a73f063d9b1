//! The HTTP API: the log and the views over JSON, and the log live over Server-Sent
//! Events; and the web page over them (`page`). Only this module knows HTTP (the
//! command line's client aside).
//!
//! It serves a `store::Store`: a sled store, or a PostgreSQL log with this server's own
//! views (several servers may share one database; each answers reads from its views
//! once they reach the head as of the request, or `min_position`, whoever appended it).
//!
//! [`run`] serves a listener until its shutdown future completes, in the manner of
//! mini-redis's `server::run`, so that tests bind port 0 and stop the server at will.
//!
//! Guarantees:
//! - a write is answered `201` only once its events are durable (the store's guarantee);
//!   it is all-or-nothing, and needs `Authorization: Bearer <token>` when a token is set;
//! - store calls block, so every one runs on tokio's blocking pool, never on the
//!   runtime's workers;
//! - request bodies are bounded ([`Config::max_body`]) and so is each event
//!   ([`crate::model::event::MAX_EVENT_BYTES`]); no user input makes a handler panic;
//! - answers are bounded too: the log and the timeline come in pages (at most
//!   [`TIMELINE_PAGE`] timeline entries, `next` naming the page after), and a `known_at`
//!   query, which folds the log in memory, runs one at a time per server (another waits
//!   its turn as long as a read waits for the views, then gets a `503` with `busy`);
//! - a live subscriber never slows writers: it reads the log on its own, into a bounded
//!   buffer, and is dropped with a final `event: error` when it stops reading;
//! - errors never carry internals: a storage failure answers a generic `500` and its
//!   detail goes to stderr;
//! - no client can take the server down: connections are capped in all and per client
//!   address, heads, bodies and stalled sends have deadlines (`listen`), live
//!   subscribers are capped and each holds a bounded number of bytes (`live`), and every
//!   request must name this server in `Host` (and, for a write, in `Origin` when sent),
//!   so that a web page cannot reach it by DNS rebinding (`auth`);
//! - on shutdown the server stops accepting, ends live streams, answers every request
//!   in flight, and [`run`] returns only after the store was dropped (flushed and its
//!   writer thread joined), so the directory can be opened again at once; a client that
//!   stalls the shutdown longer than [`Config::drain`] is given up on.

mod auth;
mod error;
mod events;
mod listen;
mod live;
mod metrics;
mod openapi;
mod page;
mod params;
mod types;
mod views;

pub use auth::check_token;
pub use views::TIMELINE_PAGE;

use crate::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use error::ApiError;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};

/// Largest request body accepted by default, in bytes (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the server behaves. [`Config::default`] is what `chronicle serve` uses; its
/// limits hold a newsroom's tools and a few hundred live dashboards on one machine.
#[derive(Debug, Clone)]
pub struct Config {
    /// When set, writes need `Authorization: Bearer <token>` (see [`check_token`]).
    pub token: Option<String>,
    /// Largest request body, in bytes; larger ones get `413`.
    pub max_body: usize,
    /// Events a live subscriber may have waiting before it counts as stalled.
    pub live_buffer: usize,
    /// Bytes of events a live subscriber may have waiting before it counts as stalled
    /// (an event larger than this still goes through, alone).
    pub live_buffer_bytes: usize,
    /// How long a live subscriber's full buffer may stay full before it is dropped.
    pub live_grace: Duration,
    /// Live subscribers served at once; more get `503`.
    pub max_live: usize,
    /// Connections served at once; more are answered `503` and closed.
    pub max_connections: usize,
    /// Connections served at once from one IP address; more are answered `503`.
    pub max_connections_per_client: usize,
    /// How long a request's head may take to arrive, counted from the connection opening
    /// or from the end of the previous response; so also how long an idle keep-alive
    /// connection is kept.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive after its head; then `408`.
    pub body_timeout: Duration,
    /// How long a connection's writes may wait for the client to read before the
    /// connection is closed.
    pub send_timeout: Duration,
    /// Host names clients may use for this server besides its address, `localhost` (on
    /// loopback) and IP literals of the bound address: a request whose `Host` (or, for a
    /// write, `Origin`) names anything else is refused with `403`.
    pub allowed_hosts: Vec<String>,
    /// How long a query waits for the views to reach the position it must reflect (the
    /// head as of the request, or its `min_position`) before it answers `503`.
    pub views_wait: Duration,
    /// How long a shutdown waits for requests in flight before it gives up on them.
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            token: None,
            max_body: MAX_BODY_BYTES,
            live_buffer: 1024,
            live_buffer_bytes: 1024 * 1024,
            live_grace: Duration::from_secs(5),
            max_live: 256,
            max_connections: 1000,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            allowed_hosts: Vec::new(),
            views_wait: Duration::from_secs(5),
            drain: Duration::from_secs(10),
        }
    }
}

/// What every handler shares: the store, the configuration, and the shutdown signal.
///
/// Every clone of the store that a request uses is reached through a clone of this, so
/// when the last clone is gone the store has been dropped (see [`run_with`]).
#[derive(Clone)]
pub struct AppState {
    // Declared first so that it drops before `_alive`: `run_with` waits for `_alive`.
    store: Store,
    config: Arc<Config>,
    stopping: watch::Receiver<bool>,
    live_slots: Arc<Semaphore>,
    /// Held while a `known_at` query folds the log and answers from the fold, which
    /// holds the log's events and their views in memory: one at a time.
    known_at_fold: Arc<std::sync::Mutex<()>>,
    /// The address the server listens on, when known: `Host` may name it.
    bound: Option<IpAddr>,
    metrics: Arc<metrics::ServerMetrics>,
    _alive: mpsc::Sender<()>,
}

impl AppState {
    /// State for a router over `store`. Returns the state, the sender that starts the
    /// shutdown of live streams (send `true`; dropping it does the same, so keep it
    /// while serving), and a receiver that yields `None` once every clone of the state,
    /// and so of the store, is gone.
    pub fn new(
        store: impl Into<Store>,
        config: Config,
    ) -> (AppState, watch::Sender<bool>, mpsc::Receiver<()>) {
        let store = store.into();
        let (stop, stopping) = watch::channel(false);
        let (alive, gone) = mpsc::channel(1);
        let state = AppState {
            metrics: Arc::new(metrics::ServerMetrics::new(&store)),
            store,
            live_slots: Arc::new(Semaphore::new(config.max_live)),
            known_at_fold: Arc::default(),
            config: Arc::new(config),
            stopping,
            bound: None,
            _alive: alive,
        };
        (state, stop, gone)
    }

    /// Runs a blocking store call on tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            f(&state.store).map_err(|e| e.or_halted(state.store.halted()))
        })
        .await
        .map_err(|e| ApiError::internal(format!("a store call did not finish: {e}")))?
    }
}

/// The API's routes over a state.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    let body_timeout = state.config.body_timeout;
    Router::new()
        .route("/", get(page::index))
        .route("/static/{*path}", get(page::file))
        .route("/healthz", get(views::healthz))
        .route("/openapi.json", get(openapi))
        .route("/events", post(events::append).get(events::log))
        .route("/events/live", get(live::subscribe))
        .route("/streams/{stream}/events", post(events::append_to_stream))
        .route("/streams/{stream}", get(events::read_stream))
        .route("/trips", get(views::trips))
        .route("/trips/{stream}", get(views::trip))
        .route("/timeline", get(views::timeline))
        .route("/entities", get(views::entities))
        .route("/entities/{entity}", get(views::entity))
        .route("/sales", get(views::sales))
        .route("/stats", get(views::stats))
        .route("/types", get(types::list))
        .route("/types/{name}", get(types::show))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        // Outside the body limits, so that it sees their plain-text 413s.
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            error::json_413,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::limit_declared_body,
        ))
        .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(
            body_timeout,
        ))
        .layer(axum::middleware::from_fn(params::refuse_repeated_headers))
        // Before anything else: a request for another host is not this server's.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check_host,
        ))
        // Outermost: every answer is counted and logged, refusals included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// The OpenAPI 3 description of this API: `openapi.json` with the schemas generated
/// from the model (see `server::openapi`).
pub fn openapi_document() -> &'static str {
    &openapi::DOCUMENT
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; GET /openapi.json lists them")
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    // The one a reader is likely to try: a stream's events are read at the stream.
    let read_instead = match path.strip_suffix("/events") {
        Some(stream) if method == axum::http::Method::GET && stream.starts_with("/streams/") => {
            format!("; to read the stream's events, GET {stream}")
        }
        _ => String::new(),
    };
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{path} does not take {method}{read_instead}; GET /openapi.json lists the endpoints and their methods"
        ),
    )
}

/// Serves the API on `listener` until `shutdown` completes, with the default
/// configuration and `token` (see [`run_with`]).
pub async fn run(
    listener: tokio::net::TcpListener,
    store: impl Into<Store>,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = Config {
        token,
        ..Config::default()
    };
    run_with(listener, store, config, shutdown).await
}

/// Serves the API on `listener` until `shutdown` completes.
///
/// Then it stops accepting connections, ends the live streams (each with a last
/// `event: error` that says to reconnect), lets every request in flight finish, and
/// returns once the store has been dropped: flushed, its writer thread joined and its
/// lock released. A client that stalls longer than [`Config::drain`] is given up on:
/// `run_with` returns without waiting for it (what it was sent is durable regardless).
pub async fn run_with(
    listener: tokio::net::TcpListener,
    store: impl Into<Store>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(token) = &config.token {
        check_token(token).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("the token {e}"))
        })?;
    }
    let drain = config.drain;
    let store = store.into();
    // Other servers append to a shared log: the live feed and the views follow them.
    store
        .follow_other_writers()
        .map_err(|e| std::io::Error::other(format!("following the log: {e}")))?;
    let (mut state, stop, mut gone) = AppState::new(store, config);
    state.bound = listen::bound_ip(&listener);
    let mut stopped = stop.subscribe();
    let stopping = stop.subscribe();
    let config = state.config.clone();
    let app = router(state);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        // Keep the sender until the server is done, so that "stopping" stays true.
        stop.closed().await;
    });
    let serve = listen::serve(listener, app, config, stopping);
    let deadline = async move {
        let _ = stopped.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(drain).await;
    };
    let finished = async {
        let served = serve.await;
        // Requests and live streams are over; wait for the blocking calls and live
        // readers they started to let go of the store.
        let _ = gone.recv().await;
        served
    };
    tokio::select! {
        served = finished => served,
        () = deadline => {
            tracing::warn!(
                target: "chronicle::http",
                "some requests were still open {} s after the shutdown began; closing without them",
                drain.as_secs()
            );
            Ok(())
        }
    }
}
