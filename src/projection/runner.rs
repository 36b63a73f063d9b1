//! The runner: feeds events through the facts layer into every projection.
//!
//! The projector calls [`Runner::apply`] for every event of the log, in position order;
//! [`Runner::fold`] builds the documents from scratch in memory (`--known-at`, tests). All
//! projections are applied together, always: some read others' documents (see
//! [`super::involved`]), so folding or rebuilding one alone could leave them
//! inconsistent with each other.

use super::{Change, Docs, MemDocs, Projection, facts};
use crate::Result;
use crate::model::RecordedEvent;
use std::cell::OnceCell;

/// The name under which the facts layer's code version is recorded.
pub const FACTS: &str = "facts";

/// The projections a store keeps, applied in order after the facts layer.
pub struct Runner {
    projections: Vec<Box<dyn Projection>>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new(super::all())
    }
}

impl Runner {
    pub fn new(projections: Vec<Box<dyn Projection>>) -> Runner {
        Runner { projections }
    }

    /// The projections, in the order they are applied.
    pub fn projections(&self) -> &[Box<dyn Projection>] {
        &self.projections
    }

    /// The names of every projection, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// The code version of the facts layer and of each projection, as
    /// `facts=1,trips=2,…`: stored with the views, so that a store whose views were
    /// built by other code rebuilds them.
    pub fn versions(&self) -> String {
        std::iter::once(format!("{FACTS}={}", facts::VERSION))
            .chain(
                self.projections
                    .iter()
                    .map(|p| format!("{}={}", p.name(), p.version())),
            )
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Applies one event to the facts layer and then to every projection.
    pub fn apply(&self, event: &RecordedEvent, docs: &mut dyn Docs) -> Result<()> {
        let (before, after) = facts::apply(event, docs)?.unwrap_or((None, None));
        let change = Change {
            event,
            before: before.as_ref(),
            after: after.as_ref(),
            moves: &OnceCell::new(),
        };
        for projection in &self.projections {
            projection.apply(change, docs)?;
        }
        Ok(())
    }

    /// Folds events into fresh in-memory documents: the state as of the last event.
    pub fn fold(&self, events: impl Iterator<Item = Result<RecordedEvent>>) -> Result<MemDocs> {
        let mut docs = MemDocs::default();
        for event in events {
            self.apply(&event?, &mut docs)?;
        }
        Ok(docs)
    }
}
