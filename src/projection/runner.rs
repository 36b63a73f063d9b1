//! The runner: feeds events through the facts layer into the projections.
//!
//! The store calls [`Runner::apply`] for every event it commits, inside the same atomic
//! batch, so a projection's checkpoint is the head of the log unless its code version
//! changed. [`Runner::fold`] builds the documents from scratch for replay and as-of.

use super::{Change, Docs, MemDocs, Projection, facts};
use crate::Result;
use crate::model::RecordedEvent;

/// The name under which the facts layer keeps its checkpoint.
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

    /// Applies one event to the facts layer and then to the projections whose index is
    /// in `selected` (every projection when `None`).
    pub fn apply(
        &self,
        event: &RecordedEvent,
        docs: &mut dyn Docs,
        selected: Option<&[usize]>,
    ) -> Result<()> {
        let (before, after) = facts::apply(event, docs)?.unwrap_or((None, None));
        let change = Change {
            event,
            before: before.as_ref(),
            after: after.as_ref(),
        };
        for (i, projection) in self.projections.iter().enumerate() {
            if selected.is_none_or(|s| s.contains(&i)) {
                projection.apply(change, docs)?;
            }
        }
        Ok(())
    }

    /// Folds events into fresh in-memory documents: the state as of the last event.
    pub fn fold(&self, events: impl Iterator<Item = Result<RecordedEvent>>) -> Result<MemDocs> {
        let mut docs = MemDocs::default();
        for event in events {
            self.apply(&event?, &mut docs, None)?;
        }
        Ok(docs)
    }
}
