//! Query parameters and path segments, read with messages that say which parameter is
//! wrong and what it takes. An unknown parameter is refused, so that a typo (`asof`)
//! does not silently answer another question.

use super::error::ApiError;
use crate::model::ids::check_category;
use crate::model::{EventType, Position, StreamId};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;

/// The query string's parameters, taken one by one.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the query string is malformed ({e})")))?;
        // Bytes that are not UTF-8 are read as U+FFFD, which no name, id or tag holds:
        // refused, as in a path, rather than answered about `�`.
        if let Some((key, _)) =
            (pairs.iter()).find(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
        {
            return Err(ApiError::bad_request(format!(
                "the query string is malformed (`{key}` is not UTF-8 once its %-escapes are decoded)"
            )));
        }
        Ok(Params(pairs))
    }
}

/// Largest page of events.
pub const MAX_LIMIT: usize = 1000;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

impl Params {
    /// Takes a parameter's value; a parameter given twice is an error.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found = None;
        let mut rest = Vec::with_capacity(self.0.len());
        for (k, v) in self.0.drain(..) {
            if k == name {
                if found.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "`{name}` is given twice; give it once"
                    )));
                }
                found = Some(v);
            } else {
                rest.push((k, v));
            }
        }
        self.0 = rest;
        Ok(found)
    }

    /// A non-negative integer parameter, written in digits only (no sign, no spaces).
    pub fn number(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.whole_number(name, |v| {
            ApiError::bad_request(format!("`{name}` `{v}` is too large"))
        })
    }

    /// `min_position`: a number too large for any log is past the end of this one too,
    /// `404` as a position past its head is.
    pub fn min_position(&mut self) -> Result<Option<u64>, ApiError> {
        self.whole_number("min_position", |v| {
            ApiError::not_found(format!(
                "min_position `{v}` is past the end of any log; `GET /stats` shows where this one ends"
            ))
        })
    }

    /// A parameter written in digits only; `too_large` answers one that no u64 holds.
    fn whole_number(
        &mut self,
        name: &str,
        too_large: impl Fn(&str) -> ApiError,
    ) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        if let Some(n) = digits(&v) {
            return Ok(Some(n));
        }
        if all_digits(&v) {
            return Err(too_large(&v));
        }
        // `+5` arrives as ` 5`: a `+` in a query string is a space.
        let hint = match v.starts_with(' ') && all_digits(v.trim_start()) {
            true => " (a `+` in a URL is a space: leave the sign out)",
            false => "",
        };
        Err(ApiError::bad_request(format!(
            "`{name}` must be a whole number written in digits, not `{v}`{hint}"
        )))
    }

    /// A yes-or-no parameter: `true` or `false`, `false` when absent.
    pub fn flag(&mut self, name: &str) -> Result<bool, ApiError> {
        match self.take(name)?.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "`{name}` must be true or false, not `{other}`"
            ))),
        }
    }

    /// A stream category parameter (`trip`, `arms-sale`).
    pub fn category(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.take(name)?
            .map(|c| match check_category(&c) {
                Ok(()) => Ok(c),
                Err(e) => Err(ApiError::bad_request(format!("`{name}`: {e}"))),
            })
            .transpose()
    }

    /// A tag parameter: 1 to 64 characters, not all white space, as an event's tags are
    /// (an empty one would match no fact, silently).
    pub fn tag(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        self.take(name)?
            .map(|t| match crate::model::event::check_tag(&t) {
                Ok(()) => Ok(t),
                Err(e) => Err(ApiError::bad_request(format!(
                    "`{name}`: {e}; give one, or leave `{name}` out"
                ))),
            })
            .transpose()
    }

    /// A page size: `DEFAULT_LIMIT` when absent, at most `MAX_LIMIT`.
    pub fn limit(&mut self) -> Result<usize, ApiError> {
        match self.number("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if n >= 1 && n <= MAX_LIMIT as u64 => {
                Ok(usize::try_from(n).expect("at most MAX_LIMIT"))
            }
            Some(n) => Err(ApiError::bad_request(format!(
                "`limit` must be from 1 to {MAX_LIMIT}, not {n}; page with `next`"
            ))),
        }
    }

    /// A position parameter.
    pub fn position(&mut self, name: &str) -> Result<Option<Position>, ApiError> {
        Ok(self.number(name)?.map(Position))
    }

    /// A stream id parameter.
    pub fn stream(&mut self, name: &str) -> Result<Option<StreamId>, ApiError> {
        self.take(name)?
            .map(|s| {
                StreamId::parse(&s).map_err(|e| ApiError::bad_request(format!("`{name}`: {e}")))
            })
            .transpose()
    }

    /// An event type parameter.
    pub fn event_type(&mut self, name: &str) -> Result<Option<EventType>, ApiError> {
        self.take(name)?
            .map(|t| {
                EventType::parse(&t).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`{name}`: unknown event type `{t}`; {}GET /types lists them",
                        EventType::did_you_mean(&t)
                    ))
                })
            })
            .transpose()
    }

    /// Refuses parameters this endpoint does not take.
    pub fn finish(self, takes: &str) -> Result<(), ApiError> {
        match self.0.first() {
            None => Ok(()),
            Some((k, _)) => Err(ApiError::bad_request(format!(
                "unknown parameter `{k}`; this endpoint takes {takes}"
            ))),
        }
    }
}

/// A number written in ASCII digits only: `u64::from_str` also takes a leading `+`.
pub fn digits(text: &str) -> Option<u64> {
    all_digits(text).then(|| text.parse().ok()).flatten()
}

/// Whether `text` is one or more ASCII digits (and nothing else).
pub fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The one path segment of a route, with a JSON error when it cannot be read.
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segment) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the path is malformed ({e})")))?;
        Ok(Segment(segment))
    }
}

impl Segment {
    /// The segment as a stream id.
    pub fn stream(&self) -> Result<StreamId, ApiError> {
        StreamId::parse(&self.0)
            .map_err(|e| ApiError::bad_request(format!("the stream in the path: {e}")))
    }
}

/// Headers whose one value decides what a request does: given twice, which one counts
/// would be a guess (`If-Match: 0` and `If-Match: 5`), so the request is refused.
const SINGLE_HEADERS: [axum::http::HeaderName; 5] = [
    axum::http::header::AUTHORIZATION,
    axum::http::header::IF_MATCH,
    axum::http::header::CONTENT_TYPE,
    axum::http::header::ORIGIN,
    axum::http::HeaderName::from_static("last-event-id"),
];

/// Refuses a request that gives one of [`SINGLE_HEADERS`] more than once (`400`).
pub async fn refuse_repeated_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = request.headers();
    if let Some(name) = SINGLE_HEADERS
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return ApiError::bad_request(format!("the `{name}` header is given twice; give it once"))
            .into_response();
    }
    next.run(request).await
}
