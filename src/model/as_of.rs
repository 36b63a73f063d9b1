//! What an `--as-of` (CLI) or `as_of` (HTTP) value names: a position of the log, or a
//! time of its `recorded` clock. One parser, so that both paths accept and refuse the
//! same texts with the same advice.

use super::{Extent, Position};
use chrono::{DateTime, Utc};

/// A point of the log's own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// A position, written in digits only.
    Position(Position),
    /// The last position recorded at or before this time (RFC 3339, with a zone).
    Recorded(DateTime<Utc>),
}

impl AsOf {
    /// Reads `text`; `name` is how the caller spells the option (`--as-of`, `as_of`)
    /// and `known_at` how it spells the reported-clock question (`--known-at`,
    /// `known_at=`), which a bare date most likely meant.
    pub fn parse(text: &str, name: &str, known_at: &str) -> Result<AsOf, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // Digits only: a position, unless past what any log can hold.
            return text.parse().map(|n| AsOf::Position(Position(n))).map_err(|_| {
                format!(
                    "{name} `{text}` is past the end of any log; `chronicle stats` (or `GET /stats`) shows where this one ends"
                )
            });
        }
        match DateTime::parse_from_rfc3339(text) {
            Ok(time) => Ok(AsOf::Recorded(time.with_timezone(&Utc))),
            Err(_) => {
                let hint = if text.parse::<Extent>().is_ok() {
                    format!("; to ask what had been published by {text}, use {known_at}{text}")
                } else if text.contains(' ') && !name.starts_with("--") {
                    // A `+` of a time zone, sent unescaped in a URL, arrives as a space
                    // (the command line's options start with `--`).
                    "; in a URL, write the + of a time zone as %2B".to_owned()
                } else {
                    String::new()
                };
                Err(format!(
                    "{name} `{text}` is neither a position nor an RFC 3339 time with a time zone, like 2026-11-30T10:00:00Z{hint}"
                ))
            }
        }
    }

    /// The refusal of a position past the log's end.
    pub fn past_end(name: &str, n: Position, head: Position) -> String {
        format!(
            "{name} {n} is past the end of the log (position {head}); use a position up to {head}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_times_and_dates() {
        assert_eq!(
            AsOf::parse("30", "as_of", "known_at="),
            Ok(AsOf::Position(Position(30)))
        );
        assert!(matches!(
            AsOf::parse("2026-11-30T10:00:00+01:00", "as_of", "known_at="),
            Ok(AsOf::Recorded(_))
        ));
        let date = AsOf::parse("2025-01-04", "--as-of", "--known-at ").unwrap_err();
        assert!(date.ends_with("use --known-at 2025-01-04"), "{date}");
        let huge = AsOf::parse("99999999999999999999999", "as_of", "known_at=").unwrap_err();
        assert!(huge.contains("is past the end of any log"), "{huge}");
        let sign = AsOf::parse("+5", "as_of", "known_at=").unwrap_err();
        assert!(
            sign.starts_with("as_of `+5` is neither a position"),
            "{sign}"
        );
        assert!(!sign.contains("known_at"), "{sign}");
        let unescaped = AsOf::parse("2026-12-02T11:31:00 00:00", "as_of", "known_at=").unwrap_err();
        assert!(
            unescaped.ends_with("write the + of a time zone as %2B"),
            "{unescaped}"
        );
        let on_the_command_line =
            AsOf::parse("2026-12-02T11:31:00 00:00", "--as-of", "--known-at ").unwrap_err();
        assert!(
            !on_the_command_line.contains("URL"),
            "{on_the_command_line}"
        );
    }
}
