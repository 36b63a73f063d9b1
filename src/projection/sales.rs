//! Arms sales: one document per `arms-sale:` stream, and an entry per current fact of
//! it (the `arms_sale.announced` events and the statements about the stream). Views and
//! totals per currency, by buyer and by seller, are folded when read.
//!
//! Documents: `sales/<stream>` → [`SaleDoc`]; `sales-f/<stream>\0<position>` → the id of
//! a current fact ([`FactEntries`]); `sales-r/<stream>\0<position>` → the id of a fact
//! since retracted.

use super::facts::Correction;
use super::trips::Statement;
use super::{Change, Docs, DocsRead, Fact, FactEntries, Projection, get_json, key, put_json};
use crate::Result;
use crate::model::types::{EventData, Money};
use crate::model::{EntityId, Extent, StreamId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub struct Sales;

/// The prefix of every sale document.
pub const DOCS: &str = "sales/";

/// One `arms-sale:` stream's document: that it has facts (listed in [`FACTS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleDoc {
    pub stream: StreamId,
}

/// The sales' current facts.
pub const FACTS: FactEntries = FactEntries("sales-f/");

/// The sales' retracted facts: a retraction moves a fact from [`FACTS`] to here (a
/// change of the sale's parties moves their timeline entries too).
pub const RETRACTED: FactEntries = FactEntries("sales-r/");

fn doc_key(stream: &StreamId) -> Vec<u8> {
    key(DOCS, stream.as_str().as_bytes())
}

/// The sale document of a stream.
pub fn get(docs: &(impl DocsRead + ?Sized), stream: &StreamId) -> Result<Option<SaleDoc>> {
    get_json(docs, &doc_key(stream))
}

fn sales_of(fact: &Fact) -> Vec<StreamId> {
    match fact.typed() {
        Some(EventData::StatementIssued(s)) => {
            let mut about: Vec<_> = s
                .about
                .into_iter()
                .filter(|a| a.category() == "arms-sale")
                .collect();
            about.sort();
            about.dedup();
            about
        }
        Some(EventData::ArmsSaleAnnounced(_)) => vec![fact.stream.clone()],
        _ => Vec::new(),
    }
}

impl Projection for Sales {
    fn name(&self) -> &'static str {
        "sales"
    }

    fn version(&self) -> u32 {
        // 2: the facts are entries of their own, not a list in the document.
        // 3: the retracted facts are entries too.
        3
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        let before = change.before.map_or_else(Vec::new, sales_of);
        let after = change.after.map_or_else(Vec::new, sales_of);
        if let Some(fact) = change.before {
            for stream in before.iter().filter(|s| !after.contains(s)) {
                FACTS.remove(docs, stream, fact);
                if change.after.is_none() {
                    RETRACTED.add(docs, stream, fact, true);
                }
            }
        }
        if let Some(fact) = change.after {
            for stream in after.iter().filter(|s| !before.contains(s)) {
                if get(docs, stream)?.is_none() {
                    let doc = SaleDoc {
                        stream: stream.clone(),
                    };
                    put_json(docs, doc_key(stream), &doc);
                }
                FACTS.add(docs, stream, fact, change.before.is_none());
            }
        }
        Ok(())
    }
}

/// One arms sale as its current facts describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleView {
    pub stream: StreamId,
    pub id: Uuid,
    pub seller: EntityId,
    pub buyer: EntityId,
    pub value: Money,
    pub approximate: bool,
    pub items: Vec<String>,
    pub occurred: Option<Extent>,
    pub corrected: bool,
    /// Its corrections, oldest first: why, and each value before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    pub sources: usize,
    pub statements: Vec<Statement>,
}

/// Folds one stream's facts (in position order) into its sales. Pure.
pub fn view(facts: &[Fact]) -> Vec<SaleView> {
    let statements: Vec<Statement> = facts.iter().filter_map(Statement::from_fact).collect();
    facts
        .iter()
        .filter_map(|fact| match fact.typed()? {
            EventData::ArmsSaleAnnounced(s) => Some(SaleView {
                stream: fact.stream.clone(),
                id: fact.id,
                seller: s.seller,
                buyer: s.buyer,
                value: s.value,
                approximate: s.approximate.unwrap_or(false),
                items: s.items,
                occurred: fact.occurred,
                corrected: fact.corrected(),
                corrections: fact.corrections.clone(),
                sources: fact.sources(),
                statements: statements.clone(),
            }),
            _ => None,
        })
        .collect()
}
