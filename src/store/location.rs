//! Where a store lives: a folder (the sled log) or a PostgreSQL URL.
//!
//! Guarantees: a value that looks like a URL (`scheme://…`) is never taken for a
//! folder, so `--db postgres://…` cannot quietly create a directory named `postgres:`;
//! a URL of another scheme is refused with the schemes that are understood.

use crate::model::ValidationError;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A parsed store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder holding a sled store (created on first write).
    Dir(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl StoreLocation {
    /// Parses what `--db` (or `CHRONICLE_DB`) names. Anything with a `scheme://`
    /// prefix is a URL: PostgreSQL's are accepted, any other scheme is an
    /// [`Error::Invalid`] (exit 2). Everything else is a folder.
    pub fn parse(text: &Path) -> Result<StoreLocation> {
        let Some(s) = text.to_str() else {
            return Ok(StoreLocation::Dir(text.to_owned()));
        };
        let Some((scheme, _)) = s.split_once("://") else {
            return Ok(StoreLocation::Dir(text.to_owned()));
        };
        let is_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !is_scheme {
            return Ok(StoreLocation::Dir(text.to_owned()));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(StoreLocation::Postgres(s.to_owned())),
            other => Err(Error::Invalid {
                index: None,
                error: ValidationError {
                    line: None,
                    field: None,
                    message: format!(
                        "`{other}://` is not a store location chronicle knows; pass a folder (the sled log) or a postgres:// URL"
                    ),
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StoreLocation> {
        StoreLocation::parse(Path::new(s))
    }

    #[test]
    fn urls_are_never_folders() {
        let cases = [
            (
                "./chronicle.db",
                Some(StoreLocation::Dir("./chronicle.db".into())),
            ),
            (
                "/srv/news.db",
                Some(StoreLocation::Dir("/srv/news.db".into())),
            ),
            ("postgres:", Some(StoreLocation::Dir("postgres:".into()))),
            ("a/b://c", Some(StoreLocation::Dir("a/b://c".into()))),
            (
                "postgres://u@127.0.0.1:5432/news",
                Some(StoreLocation::Postgres(
                    "postgres://u@127.0.0.1:5432/news".into(),
                )),
            ),
            (
                "PostgreSQL://h/db?target_session_attrs=read-write",
                Some(StoreLocation::Postgres(
                    "PostgreSQL://h/db?target_session_attrs=read-write".into(),
                )),
            ),
            ("mysql://h/db", None),
            ("http://127.0.0.1:7070", None),
        ];
        for (input, expected) in cases {
            match (parse(input), expected) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{input}"),
                (Err(e), None) => assert_eq!(e.exit_code(), 2, "{input}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }
}
