//! How failures become HTTP answers: a status and a JSON body `{"error": "…"}` whose
//! message says what failed and what to do, never what the server's internals are.
//!
//! | status | when |
//! | --- | --- |
//! | 400 | malformed JSON, a bad query parameter or header |
//! | 401 | a write without the right bearer token |
//! | 403 | a `Host` (or a write's `Origin`) that is not this server's |
//! | 404 | no such stream, trip, entity or endpoint |
//! | 408 | a body that did not arrive in time (the connection is then closed) |
//! | 409 | a concurrency conflict (`expected`, `actual` in the body) |
//! | 413 | a body above the limit |
//! | 415 | a write whose body is not declared JSON |
//! | 422 | an event that is not valid, alone or against the log (`index`, `field`) |
//! | 500 | the store failed; the detail is on the server's stderr |
//! | 503 | the log's database cannot be reached (down, restarting, failing over); too many live subscribers, or connections (answered before the request is read); the views did not reach the position asked for in time (with `Retry-After`) |

use crate::Error;
use crate::model::{Expect, Position};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
    /// Close the connection after this answer.
    close: bool,
}

impl ApiError {
    /// An answer with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
            close: false,
        }
    }

    /// The same answer with one more field in its body.
    pub fn with(mut self, field: &str, value: Value) -> ApiError {
        self.body[field] = value;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A failure of the server itself: logged in full, answered without detail.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        static LOGGED: OncePerSecond = OncePerSecond::new();
        if let Some(left_out) = LOGGED.allow() {
            tracing::error!(target: "chronicle::http", "internal error: {detail}{}", more(left_out));
        }
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer; its operator can find the cause in its log",
        )
    }

    /// `/healthz` of a server whose store takes no more appends since a write of its
    /// log failed ([`Error::Halted`]): not healthy, and saying what to do.
    pub fn halted(reason: &str, head: Position, views: Position) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({
                "status": "halted",
                "head": head,
                "views": views,
                "error": halted_log_message(reason),
            }),
            close: false,
        }
    }

    /// A failure of the store, once its writer halted ([`Error::Halted`]): sled may
    /// then fail reads too, which is told as what it is, with what to do.
    pub fn or_halted(self, halted: Option<&str>) -> ApiError {
        match halted {
            Some(reason) if self.status == StatusCode::INTERNAL_SERVER_ERROR => {
                ApiError::halted_log(reason)
            }
            _ => self,
        }
    }

    /// What a server whose store halted answers a call that needs its log.
    pub fn halted_log(reason: &str) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, halted_log_message(reason))
    }

    /// The same error with another status: how a lookup by path reads "not found".
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// The HTTP status.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The JSON form of an expectation, as written in events: a number or a word.
pub fn expect_json(expect: &Expect) -> Value {
    match expect {
        Expect::Version(v) => json!(v.0),
        other => json!(other.to_string()),
    }
}

/// Why a server whose store halted serves nothing from its log, and what to do.
pub fn halted_log_message(reason: &str) -> String {
    format!(
        "this server's store reads and writes nothing more of its log since a write of it to disk failed ({reason}): {} and restart the server",
        crate::store::first_step_after_a_failed_write(reason)
    )
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match error {
            Error::Invalid { index, error: e } => {
                // The event named as `index` names it (from 0), not as the command line
                // counts (from 1).
                let at = index.map_or_else(String::new, |i| format!("event at index {i}: "));
                let mut body = json!({
                    "error": format!("{at}{e}"),
                    "message": e.message,
                });
                // `index` and `field` only when there is one to name.
                if let Some(index) = index {
                    body["index"] = json!(index);
                }
                if let Some(field) = e.field {
                    body["field"] = json!(field);
                }
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    body,
                    close: false,
                }
            }
            Error::Conflict {
                index,
                stream,
                expected,
                actual,
                written,
            } => {
                let mut body = json!({
                    "error": crate::error::conflict_message(&stream, &expected, actual, written, crate::error::ExpectGiven::Api),
                    "index": index,
                    "stream": stream,
                    "expected": expect_json(&expected),
                    "actual": actual,
                });
                if let Some(written) = written {
                    body["written"] = json!(written);
                }
                ApiError {
                    status: StatusCode::CONFLICT,
                    body,
                    close: false,
                }
            }
            // The log's server is down or failing over: worth retrying soon.
            Error::Unavailable(message) => {
                static LOGGED: OncePerSecond = OncePerSecond::new();
                if let Some(left_out) = LOGGED.allow() {
                    tracing::warn!(target: "chronicle::http", "{message}{}", more(left_out));
                }
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the log cannot be reached just now (its database is down, failing over or not answering): retry after a second (a write refused this way was not made)",
                )
            }
            // The log's server failed during the COMMIT: the append may be in the log.
            Error::Indeterminate { message, ids } => {
                tracing::error!(target: "chronicle::http", "{message}");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: json!({
                        "error": "the log's database failed or stopped answering during the append's commit, so it may or may not have been written: retry it with the same event ids, listed in `ids` (a retry by id is idempotent)",
                        "ids": ids,
                    }),
                    close: false,
                }
            }
            // A write of the sled log failed: no appends until the server is restarted.
            Error::Halted { message, ids } => {
                static LOGGED: OncePerSecond = OncePerSecond::new();
                if let Some(left_out) = LOGGED.allow() {
                    tracing::error!(target: "chronicle::http", "{message}{}", more(left_out));
                }
                let mut body = json!({ "error": message });
                if !ids.is_empty() {
                    body["ids"] = json!(ids);
                }
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body,
                    close: false,
                }
            }
            // A server owns its store: these mean the store itself is in trouble.
            other @ (Error::Integrity(_)
            | Error::Locked { .. }
            | Error::Incompatible(_)
            | Error::Storage(_)) => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Gives the body limit's `413` (from tower-http, in plain text) the API's JSON form.
pub async fn json_413(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    response: Response,
) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return too_large(state.config.max_body).into_response();
    }
    response
}

/// A log line written at most once a second, for a failure that every request meets
/// alike (a log that cannot be reached, a full disk): one line per request would be
/// tens of thousands while PostgreSQL restarts. The line written counts those left out.
struct OncePerSecond {
    last_second: std::sync::atomic::AtomicU64,
    left_out: std::sync::atomic::AtomicU64,
}

impl OncePerSecond {
    const fn new() -> OncePerSecond {
        OncePerSecond {
            last_second: std::sync::atomic::AtomicU64::new(0),
            left_out: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now.
    fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_second.load(Relaxed);
        if last == now
            || self
                .last_second
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.left_out.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.left_out.swap(0, Relaxed))
    }
}

/// `(and N more like it)`, for a line that stands for others left out.
fn more(left_out: u64) -> String {
    match left_out {
        0 => String::new(),
        n => format!(" (and {n} more since the last such line)"),
    }
}

/// Bodies declared larger than the limit are still read (and dropped) up to this size
/// before the `413`, so that a client that sends the whole body before reading the
/// answer gets it instead of a broken connection. Larger ones are cut off at once.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Refuses a body whose declared length is above the limit, before any handler runs.
/// (A body without a declared length is cut off by tower-http's limit as it is read.)
pub async fn limit_declared_body(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = state.config.max_body;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = declared.filter(|l| *l > u64::try_from(max).unwrap_or(u64::MAX)) else {
        return next.run(request).await;
    };
    // A client that asked to continue sends nothing more when refused at once.
    let continues = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !continues && length <= DRAIN_LIMIT {
        use futures_util::StreamExt;
        let mut body = request.into_body().into_data_stream();
        let drain = async { while let Some(Ok(_)) = body.next().await {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
    }
    too_large(max).into_response()
}

/// The answer to a body above the limit.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the limit of {limit} bytes; send the events in several requests"
        ),
    )
}

/// Whether reading a body failed because its deadline passed.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The answer to a body that did not arrive within the body timeout; the connection is
/// closed after it, since the rest of the body may still come.
pub fn body_too_slow(limit: std::time::Duration) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s; send it at once, and retry",
            limit.as_secs_f64()
        ),
    );
    error.close = true;
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_a_second_counting_those_left_out() {
        let logged = OncePerSecond::new();
        assert_eq!(logged.allow(), Some(0));
        assert_eq!(logged.allow(), None);
        assert_eq!(logged.allow(), None);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(logged.allow(), Some(2));
        assert_eq!(more(2), " (and 2 more since the last such line)");
    }
}
