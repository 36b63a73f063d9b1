//! The library's error type. Each variant says how a caller should handle it, and maps
//! to one exit code of the command line ([`Error::exit_code`]).

use crate::model::{Expect, StreamId, ValidationError, Version};
use std::path::PathBuf;

/// What can go wrong. `Invalid` and `Conflict` are expected outcomes that wrote nothing;
/// the rest stop the operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a valid event, or not valid against the log (an unregistered
    /// entity, a reused id with other content). Nothing was written. Exit 2.
    #[error("{}{error}", index.map(|i| format!("event {}: ", i + 1)).unwrap_or_default())]
    Invalid {
        /// Which event of the append (0-based), when the append had several.
        index: Option<usize>,
        error: ValidationError,
    },
    /// The stream's version is not the one the writer expected. Nothing was written:
    /// read the stream again and retry with the new version. Exit 3.
    #[error("{}", conflict_message(stream, expected, *actual, *written, ExpectGiven::Flag))]
    Conflict {
        /// Which event of the append (0-based).
        index: usize,
        stream: StreamId,
        expected: Expect,
        /// The stream's current version (0 when it does not exist).
        actual: Version,
        /// When the event is one the log holds already (a retry by its id): the version
        /// it was written as, which does not follow `expected`, so this append is not a
        /// retry of the one that wrote it.
        written: Option<Version>,
    },
    /// The log or an index is not what it must be (a broken hash chain, a gap). Exit 4.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// Another process holds the store open, or (`views`) the folder of views this
    /// process would keep for a PostgreSQL log. Exit 5.
    #[error("{}", locked_message(path, *views, *holder))]
    Locked {
        path: PathBuf,
        views: bool,
        /// The process that holds it, when it said (a store's lock file names it).
        holder: Option<u32>,
    },
    /// The store was written by a newer chronicle. Exit 1.
    #[error("{0}")]
    Incompatible(String),
    /// The disk or the storage engine failed. Exit 1.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The log's server cannot be reached now (PostgreSQL down, restarting, failing
    /// over). Nothing was written; the same call may succeed later. Exit 1; HTTP 503.
    #[error("{0}")]
    Unavailable(String),
    /// The append may or may not have been written: the connection to the log's server
    /// broke, or stopped answering, during its `COMMIT`. Appending the same events again
    /// with the same ids is safe (a retry by id is idempotent) and settles it. `ids`
    /// are the append's event ids, including those the store generated. Exit 1;
    /// HTTP 503.
    #[error("{message}")]
    Indeterminate {
        message: String,
        ids: Vec<uuid::Uuid>,
    },
    /// A write of the sled log to disk failed, and the store takes no more appends
    /// until it is opened again: sled writes nothing after an IO error, and what the
    /// failed commit left in memory may or may not be on disk. `ids` are those of the
    /// append that met the failure, which may or may not be in the log once the store
    /// is reopened (a retry by id settles it); empty for the appends refused
    /// afterwards, of which nothing was written. Exit 1; HTTP 503.
    #[error("{message}{}", ids_named(ids))]
    Halted {
        message: String,
        ids: Vec<uuid::Uuid>,
    },
}

/// The ids of an append whose fate is unknown, for a message: the retry needs them.
fn ids_named(ids: &[uuid::Uuid]) -> String {
    const NAMED: usize = 5;
    match ids.len() {
        0 => String::new(),
        n if n <= NAMED => format!(
            " (its event ids: {})",
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        n => format!(" (its {n} event ids, the first {}, ...)", ids[0]),
    }
}

fn describe_expect(expected: &Expect) -> String {
    match expected {
        Expect::Any => "any version".into(),
        Expect::NoStream => "no stream (none)".into(),
        Expect::Exists => "an existing stream".into(),
        Expect::Version(v) => format!("version {v}"),
    }
}

/// Where the expected version of a conflicting append was given, which decides how the
/// message says to give it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectGiven {
    /// `--expect` on the command line.
    Flag,
    /// The `expect` field of a JSON line (`--file`, `-`, `import`).
    Line,
    /// The `expect` field of an event sent to the HTTP API.
    Api,
}

/// What [`Error::Conflict`] says, with the next step for the way the expectation was
/// given.
pub fn conflict_message(
    stream: &StreamId,
    expected: &Expect,
    actual: Version,
    written: Option<Version>,
    given: ExpectGiven,
) -> String {
    let category = stream.category();
    let log = format!("`chronicle log --category {category}`");
    let (list, exists, retry) = match given {
        ExpectGiven::Flag => (
            log,
            "--expect exists".to_owned(),
            format!("retry with --expect {actual}"),
        ),
        ExpectGiven::Line => (
            log,
            r#""expect": "exists" on that line"#.to_owned(),
            format!(r#"set "expect": {actual} on that line and retry"#),
        ),
        ExpectGiven::Api => (
            format!("GET /events?category={category}"),
            r#""expect": "exists" (or If-Match: *)"#.to_owned(),
            format!("retry with expect {actual} (or If-Match: {actual})"),
        ),
    };
    if let Some(written) = written {
        let leave_out = match given {
            ExpectGiven::Flag => "leave out --expect to confirm it".to_owned(),
            ExpectGiven::Line => format!(
                r#"leave out that line's "expect" (its event is written), and check the lines after it against version {actual}"#
            ),
            ExpectGiven::Api => format!(
                "leave that event out (it is written) and check the events after it against version {actual}"
            ),
        };
        return format!(
            "this event is in the log already, as version {written} of `{stream}`, which its expectation ({}) does not fit: this append, which also writes new events, is not a retry of the one that wrote it, and the stream is at version {actual} now; nothing was written: {leave_out}",
            describe_expect(expected)
        );
    }
    let next = match expected {
        // Most likely a mistyped name: retrying with version 0 would start a new stream.
        Expect::Exists => format!(
            "check the stream's name ({list} lists the events of its category), or leave out {exists} to start it"
        ),
        // The writer meant to start a stream: another name, not this one's version.
        Expect::NoStream => format!(
            "to start a new stream, give it another name ({list} lists those of its category); to add to this one, {retry}"
        ),
        _ => format!("read the stream and {retry}"),
    };
    format!(
        "stream `{stream}` is at version {actual}, but the append expected {}; nothing was written: {next}",
        describe_expect(expected)
    )
}

impl Error {
    /// The command-line exit code for this error (the README lists them, after "Limits").
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } => 2,
            Error::Conflict { .. } => 3,
            Error::Integrity(_) => 4,
            Error::Locked { .. } => 5,
            Error::Incompatible(_)
            | Error::Storage(_)
            | Error::Unavailable(_)
            | Error::Indeterminate { .. }
            | Error::Halted { .. } => 1,
        }
    }

    /// An invalid-input error about the event at `index` of an append.
    pub fn invalid(index: usize, error: ValidationError) -> Error {
        Error::Invalid {
            index: Some(index),
            error,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn locked_message(path: &std::path::Path, views: bool, holder: Option<u32>) -> String {
    let by = match holder {
        Some(pid) => format!("another process (pid {pid})"),
        None => "another process".into(),
    };
    if views {
        format!(
            "the views folder {} is in use by {by}; each process on a PostgreSQL log keeps its own views: pass --views with another folder, or wait for it to finish",
            path.display()
        )
    } else {
        format!(
            "the store at {} is in use by {by}; wait for it to finish, or stop it (a `chronicle serve` holds the store while it runs)",
            path.display()
        )
    }
}
