//! `--as-of`: which point of the log a query answers from.

use super::UsageError;
use chronicle::model::Position;
use chronicle::projection::{DocsRead, MemDocs};
use chronicle::store::{EventStore, LiveDocs, SledStore};

/// `--as-of POSITION` or `--as-of RFC3339-TIME`, shared by every query.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AsOfArgs {
    /// Answer as the log stood at this position, or at this time of the `recorded`
    /// clock (RFC 3339, e.g. 2026-11-30T10:00:00Z).
    #[arg(long, value_name = "POSITION|TIME")]
    pub as_of: Option<String>,
}

/// The documents a query reads: the live ones, or ones folded up to a past position.
pub enum Views {
    Live(LiveDocs),
    Past(MemDocs),
}

impl Views {
    pub fn docs(&self) -> &dyn DocsRead {
        match self {
            Views::Live(d) => d,
            Views::Past(d) => d,
        }
    }
}

impl AsOfArgs {
    /// The views this query should read.
    pub fn views(&self, store: &SledStore) -> anyhow::Result<Views> {
        let Some(text) = &self.as_of else {
            return Ok(Views::Live(store.live_views()));
        };
        let head = store.head()?.position;
        let position = if let Ok(n) = text.parse::<u64>() {
            if n > head.0 {
                return Err(UsageError(format!(
                    "--as-of {n} is past the end of the log (position {head}); use a position up to {head}"
                ))
                .into());
            }
            Position(n)
        } else {
            let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
                UsageError(format!(
                    "--as-of `{text}` is neither a position nor an RFC 3339 time with a time zone, like 2026-11-30T10:00:00Z"
                ))
            })?;
            store.position_at(time.with_timezone(&chrono::Utc))?
        };
        if position == head {
            return Ok(Views::Live(store.live_views()));
        }
        Ok(Views::Past(store.views_at(position)?))
    }
}
