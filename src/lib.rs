//! `chronicle`: an event-sourced news-tracking backend.
//!
//! Facts reported in the news are appended as immutable events to a log kept in an
//! embedded sled database; nothing is edited, a wrong fact is corrected by a later event,
//! and a hash chain makes any rewrite of history detectable.
//!
//! # Layout
//!
//! - [`model`]: events, types and their data, extents, ids, validation (pure, no IO).
//! - [`store`]: the log on sled, and the same log in PostgreSQL (`store::PgStore`): append
//!   with positions, versions, concurrency checks, idempotency, the hash chain and group
//!   commit; reads; the projector that keeps the views; and `store::Store`, either log
//!   with this process's views, which the command line and the server use.
//! - [`projection`]: the facts layer and the projections (trips, timeline, entities,
//!   sales, counts) as pure folds over documents, the runner that feeds them, and the
//!   reported clock (`known`).
//! - [`query`]: the read API over the projections, at the head or as of any position.
//! - [`server`]: the HTTP API (axum): the log, the views and live subscriptions.
//! - [`error`]: the error type and its exit codes.
//!
//! The binary's command line lives in `src/cli/` and `src/main.rs`.

pub mod alloc;
pub mod error;
pub mod model;
pub mod projection;
pub mod query;
pub mod server;
pub mod store;

pub use error::{Error, Result};
