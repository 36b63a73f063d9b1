//! Who may write: with a token configured, a write needs `Authorization: Bearer <token>`.
//! Reads are open to whoever can reach the server.
//!
//! The token is compared in constant time: both sides are hashed first, so neither the
//! position of the first differing byte nor the token's length shows in the timing.

use super::error::ApiError;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// Whether `given` equals `expected`, in time that depends on neither.
pub fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Checks a write's credentials against the configured token, if any.
pub fn check_write(headers: &HeaderMap, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "writes need a token: send `Authorization: Bearer <token>`",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(given) if tokens_match(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "the bearer token is not the server's; check the token and send it again",
        )),
        None => Err(ApiError::unauthorized(
            "the Authorization header must read `Bearer <token>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(b"s3cret-token", b"s3cret-token"));
        assert!(!tokens_match(b"s3cret-tokem", b"s3cret-token"));
        assert!(!tokens_match(b"s3cret", b"s3cret-token"));
        assert!(!tokens_match(b"", b"s3cret-token"));
    }

    #[test]
    fn writes_need_the_bearer_token_when_one_is_set() {
        let mut headers = HeaderMap::new();
        assert!(check_write(&headers, None).is_ok());
        assert_eq!(
            check_write(&headers, Some("t0k")).unwrap_err().status(),
            401
        );
        headers.insert(header::AUTHORIZATION, "Basic dDBr".parse().unwrap());
        assert!(check_write(&headers, Some("t0k")).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert!(check_write(&headers, Some("t0k")).is_err());
        headers.insert(header::AUTHORIZATION, "bearer t0k".parse().unwrap());
        assert!(check_write(&headers, Some("t0k")).is_ok());
    }
}
