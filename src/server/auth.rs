//! Who may read and write.
//!
//! - Every request must name this server in `Host`: its bound address (any IP literal
//!   when it listens on every address), `localhost` when it listens on loopback, or a
//!   name from [`super::Config::allowed_hosts`]. A write that sends `Origin` must name
//!   one of those too. A web page that an attacker's DNS name points at this server (DNS
//!   rebinding) sends the attacker's name, so it can neither read nor write. Refused
//!   with `403`.
//! - With a token configured, a write needs `Authorization: Bearer <token>`. Reads are
//!   open to whoever can reach the server.
//!
//! The token is compared in constant time: both sides are hashed first, so neither the
//! position of the first differing byte nor the token's length shows in the timing.

use super::AppState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Checks a token before a server takes it: visible ASCII, no spaces, at least one
/// character. A token with spaces could never be sent back in `Authorization` as it is.
/// The error reads after the token's name ("--token is empty or blank; …").
pub fn check_token(token: &str) -> Result<(), String> {
    if token.trim().is_empty() {
        return Err(
            "is empty or blank; give a token of visible characters, or leave it out".into(),
        );
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be visible ASCII characters without spaces, since it is sent in an HTTP header"
                .into(),
        );
    }
    Ok(())
}

/// Whether `host` (a `Host` header's value, or an origin's host and port) names this
/// server: see the module's documentation.
pub fn host_allowed(host: &str, bound: Option<IpAddr>, names: &[String]) -> bool {
    let name = strip_port(host.trim());
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return match bound {
            None => true,
            Some(b) if b.is_unspecified() => true,
            Some(b) => ip == b || (ip.is_loopback() && b.is_loopback()),
        };
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    // Browsers resolve `localhost` themselves, to loopback (RFC 6761).
    if (name == "localhost" || name.ends_with(".localhost"))
        && bound.is_none_or(|b| b.is_loopback() || b.is_unspecified())
    {
        return true;
    }
    names
        .iter()
        .any(|allowed| strip_port(allowed.trim()).eq_ignore_ascii_case(&name))
}

/// `host:port`, `[v6]:port` or `host` without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Refuses a request whose `Host`, or a write whose `Origin`, is not this server's.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let names = &state.config.allowed_hosts;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or_default())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let refused = |message: String| ApiError::new(StatusCode::FORBIDDEN, message).into_response();
    match host {
        None => {
            return refused("the request has no Host header; send one naming this server".into());
        }
        Some(host) if !host_allowed(host, state.bound, names) => {
            return refused(format!(
                "`{}` is not a name of this server; use its address, or ask its operator to allow the name (chronicle serve --allow-host)",
                host.chars().take(100).collect::<String>()
            ));
        }
        Some(_) => {}
    }
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if !reads.contains(request.method())
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let text = origin.to_str().unwrap_or_default();
        let origin_host = text
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
        if !origin_host.is_some_and(|h| host_allowed(h, state.bound, names)) {
            return refused(format!(
                "writes from pages of origin `{}` are not allowed; write from a page served by this server's own address, or without a browser",
                text.chars().take(100).collect::<String>()
            ));
        }
    }
    next.run(request).await
}

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
    fn hosts_are_the_servers_own() {
        let lo = Some("127.0.0.1".parse().unwrap());
        let any = Some("0.0.0.0".parse().unwrap());
        let names = vec!["news.example.org".to_owned()];
        for (host, bound, ok) in [
            ("127.0.0.1:7070", lo, true),
            ("localhost:7070", lo, true),
            ("LOCALHOST", lo, true),
            ("[::1]:7070", lo, true),
            ("news.example.org", lo, true),
            ("News.Example.Org:443", lo, true),
            ("evil.example", lo, false),
            ("127.0.0.1.evil.example", lo, false),
            ("10.0.0.5:7070", lo, false),
            ("10.0.0.5:7070", any, true),
            ("localhost", Some("10.0.0.5".parse().unwrap()), false),
            ("", lo, false),
        ] {
            assert_eq!(host_allowed(host, bound, &names), ok, "{host}");
        }
    }

    #[test]
    fn blank_tokens_are_refused() {
        assert!(check_token("s3cret").is_ok());
        for bad in ["", " ", "\t", "two words", "tökén"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }

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
