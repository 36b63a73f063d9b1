//! The log's tables in PostgreSQL, created and versioned by chronicle itself.
//!
//! Guarantees: every migration runs in one transaction under a transaction-level
//! advisory lock, so servers opening the same database at once apply each migration
//! exactly once; a database whose `chronicle_migrations` names a version newer than
//! this binary knows is refused with [`Error::Incompatible`], before anything is read
//! or written.
//!
//! Layout (version 1):
//! - `chronicle_events`: one row per event, keyed by `position`; `id` and
//!   `(stream, version)` are unique; `body` is the stored event, the exact bytes the
//!   chain hash covers (the same serde_json bytes as the sled log keeps); `digest` is
//!   the content digest idempotency compares; `category` and `event_type` serve reads.
//! - `chronicle_head`: one row, the end of the log (position, hash, `recorded` in
//!   microseconds). Every append transaction locks it (`SELECT … FOR UPDATE`) first,
//!   which is how writers on several hosts take turns.

use super::client::{Client, Session};
use super::pg_error;
use crate::{Error, Result};

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i32 = 1;

/// A key of `pg_advisory_xact_lock` for migrations ("chronicl" in ASCII).
const MIGRATION_LOCK: i64 = 0x6368_726f_6e69_636c;

/// The migrations in order: version, what it does, its statements.
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "the log: events and the head",
    "CREATE TABLE chronicle_events (
         position   bigint PRIMARY KEY CHECK (position > 0),
         id         uuid   NOT NULL UNIQUE,
         stream     text   NOT NULL,
         version    bigint NOT NULL CHECK (version > 0),
         category   text   NOT NULL,
         event_type text   NOT NULL,
         digest     bytea  NOT NULL,
         body       text   NOT NULL,
         UNIQUE (stream, version)
     );
     CREATE INDEX chronicle_events_category ON chronicle_events (category, position);
     CREATE INDEX chronicle_events_type ON chronicle_events (event_type, position);
     CREATE TABLE chronicle_head (
         one             boolean PRIMARY KEY DEFAULT true CHECK (one),
         position        bigint  NOT NULL,
         hash            bytea   NOT NULL,
         recorded_micros bigint
     );
     INSERT INTO chronicle_head (position, hash, recorded_micros)
         VALUES (0, decode(repeat('00', 32), 'hex'), NULL);",
)];

/// Brings the database's schema up to [`SCHEMA_VERSION`], or refuses a newer one.
pub fn migrate(client: &mut Client, what: &str) -> Result<()> {
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS chronicle_migrations (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(pg_error)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM chronicle_migrations",
            &[],
        )
        .map_err(pg_error)?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        return Err(Error::Incompatible(format!(
            "the PostgreSQL log at {what} has schema version {found}, newer than this chronicle reads ({SCHEMA_VERSION}); upgrade chronicle, or restore an export of it"
        )));
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).map_err(pg_error)?;
        tx.execute(
            "INSERT INTO chronicle_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .map_err(pg_error)?;
    }
    tx.commit().map_err(pg_error)
}
