//! `--as-of`: which point of the log a query answers from.

use super::UsageError;
use super::output;
use super::remote::Api;
use chronicle::model::as_of::AsOf;
use chronicle::model::{Extent, Position};
use chronicle::store::{EventStore, LiveDocs, Store, Views};
use std::sync::atomic::{AtomicBool, Ordering};

/// `--as-of POSITION` or `--as-of RFC3339-TIME`, shared by every query.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AsOfArgs {
    /// Answer as the log stood at this position, or at this time of the `recorded`
    /// clock (RFC 3339, e.g. 2026-11-30T10:00:00Z).
    #[arg(long, value_name = "POSITION|TIME", allow_negative_numbers = true)]
    pub as_of: Option<String>,
    /// Answer from what had been published by this date (the `reported` clock): the
    /// facts whose source's `published` is over by its end, with the corrections and
    /// retractions published (or made) by then. Combines with --as-of.
    #[arg(long, value_name = "DATE")]
    pub known_at: Option<String>,
}

/// The views with every append acknowledged before this call folded in, with a
/// progress bar while the projector catches up (after a large import, say).
pub fn live_views(store: &Store) -> anyhow::Result<LiveDocs> {
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

/// The position an `--as-of` names (the head without one); past the end of the log is
/// a usage error. `known_at` is how to ask by publication date instead, for a date
/// given to `--as-of`.
pub fn position(store: &Store, as_of: Option<&str>, known_at: &str) -> anyhow::Result<Position> {
    let head = store.head()?.position;
    let Some(text) = as_of else {
        return Ok(head);
    };
    let as_of = AsOf::parse(text, "--as-of", known_at).map_err(UsageError)?;
    note_if_later(&as_of, text);
    match as_of {
        AsOf::Position(n) if n > head => Err(UsageError(AsOf::past_end("--as-of", n, head)).into()),
        AsOf::Position(n) => Ok(n),
        AsOf::Recorded(time) => {
            let at = store.position_at(time)?;
            if at.0 == 0
                && let Some(first) = store.log().get(Position(1))?
            {
                note_before_first(text, first.recorded);
            }
            Ok(at)
        }
    }
}

/// Whether the note that an `--as-of` time is before the first event was given.
static BEFORE_FIRST: AtomicBool = AtomicBool::new(false);

/// Says once that `--as-of` (`text`) is before the log's first event, recorded at
/// `first`: the answer is as of the empty log.
fn note_before_first(text: &str, first: chrono::DateTime<chrono::Utc>) {
    note_once(
        &BEFORE_FIRST,
        &format!(
            "note: --as-of {text} is before the log's first event (recorded {}), so the answer is as of position 0, the empty log",
            first.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    );
}

/// Whether the note that an `--as-of` time is later than now was given.
static LATER: AtomicBool = AtomicBool::new(false);

/// Prints `note` on stderr unless `said` says it was (a query may resolve its
/// `--as-of` more than once).
fn note_once(said: &AtomicBool, note: &str) {
    if !said.swap(true, Ordering::Relaxed) {
        note!("{note}");
    }
}

/// Says once that a time given to `--as-of` is later than now: the answer is then as of
/// the log's last event (a date of the news is `--known-at`'s).
fn note_if_later(as_of: &AsOf, text: &str) {
    if let AsOf::Recorded(time) = as_of
        && *time > chrono::Utc::now()
    {
        note_once(
            &LATER,
            &format!(
                "note: --as-of {text} is later than now, so the answer is as of the log's last event; a date of the news is --known-at's"
            ),
        );
    }
}

impl AsOfArgs {
    /// The views this query should read.
    pub fn views(&self, store: &Store) -> anyhow::Result<Views> {
        let Some(date) = self.known_at_date()? else {
            return self.log_views(store);
        };
        let upto = match &self.as_of {
            Some(_) => self.position(store)?,
            None => store.head()?.position,
        };
        Ok(Views::Known(store.known_views(upto, &date)?))
    }

    /// The position `--as-of` names (the head without one).
    pub fn position(&self, store: &Store) -> anyhow::Result<Position> {
        position(store, self.as_of.as_deref(), "--known-at ")
    }

    /// The stored views, live or as of a position: `--as-of` on the log's clock.
    fn log_views(&self, store: &Store) -> anyhow::Result<Views> {
        if self.as_of.is_none() {
            return Ok(Views::Live(live_views(store)?));
        }
        let head = store.head()?.position;
        let position = self.position(store)?;
        if position == head {
            return Ok(Views::Live(live_views(store)?));
        }
        Ok(Views::Past(store.views_at(position)?))
    }

    /// Whether the query is about an earlier point than now (`--as-of` or `--known-at`).
    pub fn is_past(&self) -> bool {
        self.as_of.is_some() || self.known_at.is_some()
    }

    /// `--known-at`, read.
    pub fn known_at_date(&self) -> anyhow::Result<Option<Extent>> {
        let Some(text) = &self.known_at else {
            return Ok(None);
        };
        let date =
            Extent::known_at(text).map_err(|e| UsageError(format!("--known-at: {}", e.0)))?;
        Ok(Some(date))
    }

    /// The query parameters that say the same to `api`, a server's API.
    pub fn params(&self, api: &Api) -> anyhow::Result<[(&'static str, Option<String>); 2]> {
        // Checked here, so that a mistake is told in the CLI's words, not the API's.
        if let Some(text) = &self.as_of {
            let as_of = AsOf::parse(text, "--as-of", "--known-at ").map_err(UsageError)?;
            note_if_later(&as_of, text);
            if let AsOf::Recorded(time) = as_of {
                // As a store of its own would: the log's first event says when it began.
                let first: serde_json::Value =
                    api.get("/events", &[("limit", Some("1".into()))])?;
                let recorded = first["events"][0]["recorded"].as_str();
                if let Some(first) =
                    recorded.and_then(|r| r.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    && time < first
                {
                    note_before_first(text, first);
                }
            }
        }
        self.known_at_date()?;
        Ok([
            ("as_of", self.as_of.clone()),
            ("known_at", self.known_at.clone()),
        ])
    }
}
