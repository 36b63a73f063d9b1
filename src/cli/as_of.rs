//! `--as-of`: which point of the log a query answers from.

use super::UsageError;
use super::output;
use chronicle::model::Position;
use chronicle::projection::DocsRead;
use chronicle::store::{EventStore, LiveDocs, PastDocs, SledStore};

/// `--as-of POSITION` or `--as-of RFC3339-TIME`, shared by every query.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AsOfArgs {
    /// Answer as the log stood at this position, or at this time of the `recorded`
    /// clock (RFC 3339, e.g. 2026-11-30T10:00:00Z).
    #[arg(long, value_name = "POSITION|TIME")]
    pub as_of: Option<String>,
}

/// The documents a query reads: the live ones, or those of a past position.
pub enum Views {
    Live(LiveDocs),
    Past(PastDocs),
}

/// The views with every append acknowledged before this call folded in, with a
/// progress bar while the projector catches up (after a large import, say).
pub fn live_views(store: &SledStore) -> anyhow::Result<LiveDocs> {
    let mut bar = None;
    let views = store.views_with_progress(&mut |done, total| {
        let bar = bar.get_or_insert_with(|| output::progress(total, "updating the views"));
        bar.set_length(total);
        bar.set_position(done);
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(views)
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
            return Ok(Views::Live(live_views(store)?));
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
            return Ok(Views::Live(live_views(store)?));
        }
        Ok(Views::Past(store.views_at(position)?))
    }
}
