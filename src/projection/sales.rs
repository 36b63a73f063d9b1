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
use crate::model::{EntityId, Extent, Position, StreamId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub struct Sales;

/// The prefix of every sale document.
pub const DOCS: &str = "sales/";

/// One `arms-sale:` stream's document: that it has facts (listed in [`FACTS`]), and
/// the parties of its current announcements, so that who a statement about it involves
/// is read from one document, not from every fact listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleDoc {
    pub stream: StreamId,
    /// Each current announcement's position, id, seller and buyer, in position order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<(Position, Uuid, EntityId, EntityId)>,
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
        // 4: the document has the parties of the current announcements.
        4
    }

    fn apply(&self, change: Change<'_>, docs: &mut dyn Docs) -> Result<()> {
        let before = change.before.map_or_else(Vec::new, sales_of);
        let after = change.after.map_or_else(Vec::new, sales_of);
        let announced = |fact: &Fact| match fact.typed() {
            Some(EventData::ArmsSaleAnnounced(s)) => Some((s.seller, s.buyer)),
            _ => None,
        };
        let (was, is) = (
            change.before.and_then(announced),
            change.after.and_then(announced),
        );
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
                        parties: Vec::new(),
                    };
                    put_json(docs, doc_key(stream), &doc);
                }
                FACTS.add(docs, stream, fact, change.before.is_none());
            }
        }
        // An announcement came, went or changed: its parties in the document.
        if was != is
            && let Some(fact) = change.after.or(change.before)
            && let Some(mut doc) = get(docs, &fact.stream)?
        {
            doc.parties.retain(|(_, id, _, _)| *id != fact.id);
            if let Some((seller, buyer)) = is {
                let at = doc.parties.partition_point(|(p, ..)| *p < fact.position);
                (doc.parties).insert(at, (fact.position, fact.id, seller, buyer));
            }
            put_json(docs, doc_key(&fact.stream), &doc);
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

#[cfg(test)]
mod tests {
    use crate::model::{EventType, Origin, Position, Version, parse_event_value};
    use crate::projection::runner::Runner;
    use crate::projection::{DocIter, Docs, DocsRead, MemDocs};
    use crate::query::{Query, TimelineFilter};
    use serde_json::json;
    use std::cell::Cell;

    /// Documents that count the facts read from them.
    #[derive(Default)]
    struct Counted {
        docs: MemDocs,
        facts_read: Cell<usize>,
    }

    impl DocsRead for Counted {
        fn get(&self, key: &[u8]) -> crate::Result<Option<Vec<u8>>> {
            if key.starts_with(b"facts/") {
                self.facts_read.set(self.facts_read.get() + 1);
            }
            self.docs.get(key)
        }

        fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>, reverse: bool) -> DocIter<'a> {
            self.docs.scan(prefix, start, reverse)
        }
    }

    impl Docs for Counted {
        fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
            self.docs.put(key, value);
        }

        fn delete(&mut self, key: Vec<u8>) {
            self.docs.delete(key);
        }
    }

    /// Facts read to fold one more statement about a sale, and to show the first
    /// timeline entry, after `earlier` statements about it.
    fn reads_after(earlier: usize) -> (usize, usize) {
        let mut docs = Counted::default();
        let runner = Runner::default();
        let apply = |docs: &mut Counted, position: u64, event: serde_json::Value| {
            let recorded = parse_event_value(event, Origin::New)
                .unwrap()
                .into_recorded(
                    uuid::Uuid::now_v7(),
                    Position(position),
                    Version(position),
                    chrono::Utc::now(),
                );
            runner.apply(&recorded, docs).unwrap();
        };
        apply(
            &mut docs,
            1,
            json!({"stream": "arms-sale:s", "type": "arms_sale.announced", "occurred": "2025-02-02",
                   "data": {"seller": "country:US", "buyer": "country:JP",
                            "value": {"amount": 1e9, "currency": "USD"}, "items": ["radars"]}}),
        );
        let statement = json!({"stream": "statement:cn", "type": "statement.issued", "occurred": "2025-02-04",
            "data": {"speaker": "country:CN", "stance": "opposes", "about": ["arms-sale:s"], "summary": "objection"}});
        for n in 0..=earlier as u64 {
            docs.facts_read.set(0);
            apply(&mut docs, n + 2, statement.clone());
        }
        let folded = docs.facts_read.replace(0);
        let filter = TimelineFilter {
            event_type: Some(EventType::StatementIssued),
            limit: Some(1),
            ..TimelineFilter::default()
        };
        let page = Query::new(&docs).timeline(&filter).unwrap();
        assert_eq!(
            page[0].headline,
            "China opposed the arms sale from the United States to Japan"
        );
        (folded, docs.facts_read.get())
    }

    /// Who a statement about a sale involves, and its timeline line, are read from the
    /// sale's document: what they cost does not grow with the statements before it.
    #[test]
    fn a_statement_about_a_sale_costs_the_same_after_many() {
        assert_eq!(reads_after(1), reads_after(300));
    }
}
