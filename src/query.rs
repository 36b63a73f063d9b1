//! The read API over the projections: trips, the timeline, entities and sales, as
//! plain view structs, with entity names resolved and one-line summaries written.
//!
//! A [`Query`] reads any [`DocsRead`]: the live documents of a store (the head of the
//! log), the documents as of a position (the views' stored history), or documents
//! folded in memory (`--known-at`), so every question is answered the same way at every
//! point of the log. [`Query::trip_at`] also reads the log, to say when a trip began.

use crate::model::types::{EventData, Money, Stance};
use crate::model::{EntityId, EventType, Extent, Position, Source, StreamId, ValidationError};
use crate::model::{countries, ids};
use crate::projection::entities::{self, EntityDoc};
use crate::projection::facts::{Correction, FactCorrection, FieldChange};
use crate::projection::sales::{self, SaleView};
use crate::projection::timeline;
use crate::projection::trips::{self, TripView};
use crate::projection::{DocIter, DocsRead, Fact, decode, facts};
use crate::store::{EventStore, ReadFilter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Questions about the views, answered from one set of documents.
pub struct Query<'a> {
    docs: &'a dyn DocsRead,
    /// Entity names and trip travelers this query has already looked up: a page of the
    /// timeline names the same few entities and trips again and again.
    names: RefCell<HashMap<EntityId, String>>,
    travelers: RefCell<HashMap<StreamId, Option<EntityId>>>,
    /// The positions taken on a trip or a sale ([`Query::positions_on`]).
    positions: RefCell<HashMap<StreamId, std::rc::Rc<Positions>>>,
}

/// Which timeline entries to return. Filters combine with "and".
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    pub entity: Option<EntityId>,
    pub stream: Option<StreamId>,
    pub category: Option<String>,
    pub event_type: Option<EventType>,
    pub tag: Option<String>,
    /// Entries whose extent overlaps `[from.earliest, to.latest)`.
    pub from: Option<Extent>,
    pub to: Option<Extent>,
    pub limit: Option<usize>,
    /// Only the entries after this one in timeline order (a page's last entry's
    /// [`TimelineEntry::cursor`]).
    pub after: Option<[u8; 24]>,
    /// Also retracted facts, marked with the reason.
    pub include_retracted: bool,
}

impl TimelineFilter {
    /// Refuses a type whose events are no timeline entries, which would silently match
    /// nothing: the message says where such events show instead.
    pub fn check_type(&self) -> std::result::Result<(), String> {
        match self.event_type {
            Some(t) if t.is_amendment() => Err(format!(
                "{t} is an amendment, not a timeline entry: the fact it amends shows it (a correction's changes, a retraction's reason with `include_retracted`, a source added among its `evidence`); `chronicle log --type {t}` (or `GET /events?type={t}`) lists the amendments themselves"
            )),
            Some(t) if !t.is_timeline_entry() => Err(format!(
                "{t} events are undated registrations, not timeline entries; `chronicle entity list` (or `GET /entities`) lists the entities"
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a stream of another category than the one given beside it
    /// (`--stream trip:x --category arms-sale`), which nothing could be in.
    pub fn check_category(&self) -> std::result::Result<(), String> {
        match (&self.stream, &self.category) {
            (Some(stream), Some(category)) if stream.category() != category => Err(format!(
                "{stream} is of category `{}`, not `{category}`: nothing could match both; give one of them",
                stream.category()
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a window that ends before it starts (`from` after `to`), which nothing
    /// could be in: a mistake, such as the two dates swapped, rather than a question.
    pub fn check_window(&self) -> std::result::Result<(), String> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from.earliest() >= to.latest() => Err(format!(
                "the window ends before it starts (to {to} is before from {from}); give a `to` on or after `from`"
            )),
            _ => Ok(()),
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub position: Position,
    pub id: Uuid,
    pub occurred: Extent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_text: Option<String>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub stream: StreamId,
    /// The analyst's own `summary` where the event has one, else [`TimelineEntry::headline`].
    pub summary: String,
    /// A line generated from the data alone, naming who did what to what.
    #[serde(default)]
    pub headline: String,
    /// The words of the source: the statement's `quote`, else the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// A situation that goes on (a conflict), reported as of `occurred`, rather than
    /// an event of that date.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ongoing: bool,
    /// The entities whose timelines have the fact: those it names, a trip's traveler for
    /// a fact of the trip, the travelers and parties of what a statement is about.
    pub entities: Vec<EntityId>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The sources added later by `evidence.added`, oldest first (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Source>,
    pub sources: usize,
    pub corrected: bool,
    /// The reasons of the corrections applied, oldest first (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<String>,
    /// What the corrections changed, oldest first: each value before and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Why it was retracted: present only for a retracted fact, which a timeline shows
    /// only when asked to (`include_retracted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retracted: Option<String>,
}

impl TimelineEntry {
    /// Where it stands in timeline order: [`TimelineFilter::after`] this is the page
    /// after it.
    pub fn cursor(&self) -> [u8; 24] {
        crate::projection::sort_key(&self.occurred, self.position)
    }
}

/// A status fact about an entity, with its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStatus {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred: Option<Extent>,
    pub summary: String,
}

/// An entity of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityView {
    pub id: EntityId,
    pub kind: String,
    pub name: String,
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<EntityId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wikidata: Option<String>,
    pub registered: bool,
    /// Current facts that involve it.
    pub events: u64,
    pub first: Option<Extent>,
    pub last: Option<Extent>,
    pub status: Vec<EntityStatus>,
    /// The corrections of its own current facts (its registration, its aliases), oldest
    /// fact first: what a name or an alias was before. Only [`Query::entity`] fills it
    /// (absent when none, and in lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<FactCorrection>,
}

/// A total value of sales in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Total {
    pub party: EntityId,
    pub currency: String,
    #[serde(serialize_with = "crate::model::types::serialize_amount")]
    pub amount: f64,
    pub sales: usize,
    /// Whether any amount in it is approximate, which makes the total so too.
    #[serde(default)]
    pub approximate: bool,
}

/// The arms-sale ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesReport {
    pub sales: Vec<SaleView>,
    pub by_buyer: Vec<Total>,
    pub by_seller: Vec<Total>,
    /// Retracted sales, each with its reason: only when asked for, and in no total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retracted: Vec<TimelineEntry>,
}

/// Ids as a choice: `a`, `a or b`, `a, b or c`.
fn or_list(ids: &[EntityId]) -> String {
    let ids: Vec<String> = ids.iter().map(EntityId::to_string).collect();
    match ids.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Text from a request as an error quotes it: at most 100 characters, so that a long
/// value does not make a long message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// How many keys a search for a typo's intended name reads at most.
const TYPO_SCAN: usize = 10_000;

/// The longest text a search for a typo's intended name is made for: names and ids are
/// shorter, and the search's cost grows with the text's length.
const TYPO_TEXT: usize = 100;

/// Whether `candidate` is close enough to `text` to be what a typo in it meant: at most
/// one edit in four characters (and at least one edit allowed), a swap of two
/// neighbours counting as one.
fn typo_of(text: &str, candidate: &str) -> Option<usize> {
    let distance = strsim::osa_distance(text, candidate);
    (distance <= (text.chars().count() / 4).max(1)).then_some(distance)
}

/// The rest of the key under `prefix` closest to `text` ([`closest`]).
fn closest_key(docs: &dyn DocsRead, prefix: &str, text: &str) -> Result<Option<String>> {
    let keys = docs.scan(prefix.as_bytes(), None, false);
    closest(
        text,
        keys.map(|item| {
            item.map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
        }),
    )
}

/// The candidate closest to `text` ([`typo_of`]), among the first [`TYPO_SCAN`]; none
/// for a text longer than [`TYPO_TEXT`].
pub fn closest(
    text: &str,
    candidates: impl IntoIterator<Item = Result<String>>,
) -> Result<Option<String>> {
    if text.chars().nth(TYPO_TEXT).is_some() {
        return Ok(None);
    }
    let mut best: Option<(usize, String)> = None;
    for candidate in candidates.into_iter().take(TYPO_SCAN) {
        let candidate = candidate?;
        if let Some(d) = typo_of(text, &candidate)
            && best.as_ref().is_none_or(|(b, _)| d < *b)
        {
            best = Some((d, candidate));
        }
    }
    Ok(best.map(|(_, c)| c))
}

/// Whether [`Query::add_entity_hint`] could say more of `error`: a refusal for an
/// entity named by its name, or by an id no registration has. Callers check it before
/// they read views for a hint.
pub fn may_hint(error: &Error) -> bool {
    match error {
        Error::Invalid { error, .. } => {
            ids::name_given_for_id(&error.message).is_some()
                || crate::store::unregistered_entity(&error.message).is_some()
        }
        _ => false,
    }
}

fn not_found(field: &str, message: String) -> Error {
    Error::Invalid {
        index: None,
        error: ValidationError::field(field, message),
    }
}

/// The place id a city's name would have: `Tel Aviv` → `place:tel-aviv`.
fn city_place(city: &str) -> Option<EntityId> {
    EntityId::parse(&format!("place:{}", crate::model::ids::slug_of(city)?)).ok()
}

/// A corrected value for people: `value.amount: 3640000000 → 3500000000`, with
/// "(none)" for a value that was or became absent, and a long list as its length
/// (`stops: [3 items] → [1 item]`).
pub fn describe_change(change: &FieldChange) -> String {
    // A long list or object is summed up, on both sides: the values are in the JSON.
    let long = |v: &serde_json::Value| {
        (v.is_array() || v.is_object()) && v.to_string().chars().count() > 60
    };
    let sum_up = long(&change.before) || long(&change.after);
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "(none)".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if sum_up => match items.len() {
            1 => "[1 item]".to_owned(),
            n => format!("[{n} items]"),
        },
        serde_json::Value::Object(_) if sum_up => "{…}".to_owned(),
        other => other.to_string(),
    };
    format!(
        "{}: {} → {}",
        change.field,
        show(&change.before),
        show(&change.after)
    )
}

/// A correction's reason for people, with who reported it when it says:
/// `a later report gives 3.5 billion (Example Wire, 2025-01-07)`.
pub fn describe_correction(correction: &Correction) -> String {
    match &correction.source {
        None => correction.reason.clone(),
        Some(s) => match s.published {
            Some(published) => format!("{} ({}, {published})", correction.reason, s.publisher),
            None => format!("{} ({})", correction.reason, s.publisher),
        },
    }
}

/// "A", "A and B", "A, B and C".
pub fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "$3.64 billion", "12.5 million EUR": in words when that is the exact amount to two
/// decimals, else in full, so that a table never rounds an exact figure
/// ("$11,437,250,000", "$999.999").
pub fn format_money(value: &Money) -> String {
    let amount = value.amount;
    let (unit, word) = match amount {
        a if a >= 1e15 => (1e15, " quadrillion"),
        a if a >= 1e12 => (1e12, " trillion"),
        a if a >= 1e9 => (1e9, " billion"),
        a if a >= 1e6 => (1e6, " million"),
        _ => (1.0, ""),
    };
    // (A total past a thousand quadrillion is written in full, with its separators.)
    let number = if unit > 1.0 && amount / unit < 1000.0 && in_units_to_cents(amount, unit) {
        let number = format!("{:.2}", amount / unit);
        format!(
            "{}{word}",
            number.trim_end_matches('0').trim_end_matches('.')
        )
    } else {
        // The decimals it was given with; a figure whose last bits are off (a total
        // of amounts too far apart for `decimal_sum` to add exactly) is held to the
        // decimals it is within a rounding error of.
        let decimals = shortest_decimal(amount)
            .map(|(_, exponent)| (-exponent).max(0))
            .filter(|&d| d <= 6)
            .or_else(|| (0..=6).find(|&d| exact_to(amount, 1.0, d, EXACT)))
            .or_else(|| (0..=6).find(|&d| exact_to(amount, 1.0, d, SUMMED)))
            .unwrap_or(6);
        in_full(amount, decimals as usize)
    };
    match value.currency.as_str() {
        "USD" => format!("${number}"),
        other => format!("{number} {other}"),
    }
}

/// The sum of amounts as the decimals they were given as (each double's shortest
/// decimal), rounded once to the nearest double: 200.2 + 0.1 + 0.2 is 200.5 in any order,
/// where adding the doubles gives 200.49999999999997 or 200.5 depending on the order.
/// Past what an `i128` holds at a common scale (amounts some 30 digits apart), the
/// doubles are added.
pub fn decimal_sum(amounts: &[f64]) -> f64 {
    let exact = || -> Option<f64> {
        let parts = amounts
            .iter()
            .map(|&a| shortest_decimal(a))
            .collect::<Option<Vec<_>>>()?;
        let scale = parts.iter().map(|&(_, e)| e).min().unwrap_or(0);
        let mut sum: i128 = 0;
        for (digits, exponent) in parts {
            let shift = 10i128.checked_pow(u32::try_from(exponent - scale).ok()?)?;
            sum = sum.checked_add(digits.checked_mul(shift)?)?;
        }
        format!("{sum}e{scale}").parse().ok()
    };
    exact().unwrap_or_else(|| amounts.iter().sum())
}

/// `amount` as digits × 10^exponent, from its shortest form: 200.2 is (2002, -1).
fn shortest_decimal(amount: f64) -> Option<(i128, i32)> {
    let text = format!("{amount:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
    let digits: i128 = mantissa.replace('.', "").parse().ok()?;
    Some((
        digits,
        exponent.parse::<i32>().ok()? - i32::try_from(fraction).ok()?,
    ))
}

/// Whether `amount`, as the decimal it was given as, is a whole number of hundredths of
/// `unit` (a power of ten): 3,640,000,000 is 3.64 billion, 49,999,999,999,999.99 is not
/// 50 trillion (a relative error would take it for that).
fn in_units_to_cents(amount: f64, unit: f64) -> bool {
    let unit_exponent = unit.log10().round() as i32;
    shortest_decimal(amount).is_some_and(|(_, exponent)| exponent >= unit_exponent - 2)
}

/// The relative error of a double that holds the figure as given ...
const EXACT: f64 = 4e-16;
/// ... and of a sum of many of them (whose last bits may be off).
const SUMMED: f64 = 1e-12;

/// Whether `x` is a whole number of `unit`s to `decimals` decimals (3,640,000,000 is
/// 3.64 billions), within the relative `error`.
fn exact_to(x: f64, unit: f64, decimals: i32, error: f64) -> bool {
    let scale = 10f64.powi(decimals);
    ((x / unit * scale).round() * unit / scale - x).abs() <= x.abs() * error
}

/// `x` with `decimals` decimals and its thousands separated: 11,437,250,000.
fn in_full(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    let (whole, fraction) = text.split_at(text.find('.').unwrap_or(text.len()));
    let mut out = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out + fraction
}

/// An entity's name as a noun in a sentence: "the United States", "Japan", "the
/// President of South Korea", "the Biden administration", "Hamas". Countries take the
/// article where English does; offices are titles and always do; an organisation does
/// when its name is a description rather than a proper name ([`org_takes_article`]);
/// people and places are named as registered.
pub fn noun(id: &EntityId, name: &str) -> String {
    // An entity with no name known is shown by its id, which takes no article.
    let the = match id.kind() {
        _ if name == id.as_str() => false,
        "country" => countries::takes_article(id.stream().slug()),
        "office" => true,
        "org" => org_takes_article(name),
        _ => false,
    };
    if the && !name.starts_with("the ") && !name.starts_with("The ") {
        format!("the {name}")
    } else {
        name.to_owned()
    }
}

/// Whether an organisation's name reads as a description that takes "the": it names
/// what it is "of" ("Department of State"), ends in a common noun ("Biden
/// administration", "US–Japan alliance"), or ends in a word that names a body
/// ("European Union", "Foreign Ministry"). Acronyms and proper names ("NATO", "Hamas",
/// "Lockheed Martin") do not.
pub fn org_takes_article(name: &str) -> bool {
    const BODIES: &[&str] = &[
        "Agency",
        "Alliance",
        "Army",
        "Assembly",
        "Bank",
        "Cabinet",
        "Command",
        "Commission",
        "Committee",
        "Council",
        "Court",
        "Department",
        "Government",
        "Kremlin",
        "Ministry",
        "Navy",
        "Office",
        "Organisation",
        "Organization",
        "Parliament",
        "Pentagon",
        "Secretariat",
        "Senate",
        "Union",
    ];
    let last = name.split_whitespace().last().unwrap_or("");
    name.contains(" of ") || last.starts_with(|c: char| c.is_lowercase()) || BODIES.contains(&last)
}

/// The possessive of a noun: "China's", "the United States'".
pub fn possessive(noun: &str) -> String {
    if noun.ends_with('s') {
        format!("{noun}'")
    } else {
        format!("{noun}'s")
    }
}

/// The text with its first letter in capitals, to start a sentence.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    let mut out = String::with_capacity(text.len() + 2);
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    out
}

/// The words of the source of a fact: a statement's own `quote`, else its source's.
pub fn quote(fact: &Fact) -> Option<String> {
    fact.data
        .get("quote")
        .and_then(|q| q.as_str())
        .map(str::to_owned)
        .or_else(|| fact.source.as_ref().and_then(|s| s.quote.clone()))
}

/// What a stance does: "backed", "opposed", "rejected", "commented on".
fn stance_verb(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "backed",
        Stance::Opposes => "opposed",
        Stance::Rejects => "rejected",
        Stance::Neutral => "commented on",
    }
}

/// A stance as a noun before its object: "China's objection to the sale".
fn stance_noun(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "support for",
        Stance::Opposes => "objection to",
        Stance::Rejects => "rejection of",
        Stance::Neutral => "comment on",
    }
}

/// The position each speaker took on an object: the stance of its first statement
/// about it that is not a rejection (what a rejection of its position rejects).
pub type Positions = HashMap<EntityId, Stance>;

/// [`Positions`] of statements' speakers and stances, in filing order.
pub fn positions(statements: impl IntoIterator<Item = (EntityId, Stance)>) -> Positions {
    let mut found = Positions::new();
    for (speaker, stance) in statements {
        if stance != Stance::Rejects {
            found.entry(speaker).or_insert(stance);
        }
    }
    found
}

/// What a statement is about, for [`statement_sentence`].
pub struct Subject<'s> {
    /// The stream it is about, as a noun ("the arms sale from the United States to
    /// Japan", "the sale"); `None` when it is about entities only.
    pub object: Option<String>,
    /// The entities party to the object (a sale's seller and buyer, a trip's
    /// traveler): naming them again says nothing new.
    pub parties: Vec<EntityId>,
    /// The positions taken on the object by those who spoke of it: what a rejection
    /// rejects. Looked up only for a rejection that names another entity.
    pub positions: &'s dyn Fn(&EntityId) -> Result<Option<Stance>>,
}

/// A statement as a sentence from its fields alone: who (the speaker), what (the
/// stance, as a verb) and about what (the object, or the entities), never more than
/// the fields say. A rejection about an object that names another entity rejects that
/// entity's position on the object ("Japan rejected China's objection to the sale"),
/// since one rejects what others said, not the sale; other entities are named apart
/// ("(also about Iran)") so that they are never read as parties.
pub fn statement_sentence(
    name: &dyn Fn(&EntityId) -> Result<String>,
    speaker: &EntityId,
    stance: Stance,
    about: &[StreamId],
    subject: &Subject<'_>,
) -> Result<String> {
    let noun_of = |id: &EntityId| -> Result<String> { Ok(noun(id, &name(id)?)) };
    let mut extra = Vec::new();
    for a in about.iter().filter(|a| a.is_entity()) {
        let id = EntityId::parse(a.as_str()).expect("is_entity was checked");
        if &id != speaker && !subject.parties.contains(&id) && !extra.contains(&id) {
            extra.push(id);
        }
    }
    let who = noun_of(speaker)?;
    let sentence = match &subject.object {
        Some(object) if stance == Stance::Rejects && !extra.is_empty() => {
            let mut rejected = Vec::new();
            for e in &extra {
                let their = possessive(&noun_of(e)?);
                let position = (subject.positions)(e)?.map_or("position on", stance_noun);
                rejected.push(format!("{their} {position} {object}"));
            }
            format!("{who} rejected {}", join_names(&rejected))
        }
        Some(object) => {
            let also = if extra.is_empty() {
                String::new()
            } else {
                let names = extra.iter().map(noun_of).collect::<Result<Vec<_>>>()?;
                format!(" (also about {})", join_names(&names))
            };
            format!("{who} {} {object}{also}", stance_verb(stance))
        }
        None if stance == Stance::Rejects => {
            let names = extra.iter().map(noun_of).collect::<Result<Vec<_>>>()?;
            let their: Vec<String> = names.iter().map(|n| possessive(n)).collect();
            if their.is_empty() {
                format!("{who} rejected a claim")
            } else {
                format!("{who} rejected {} position", join_names(&their))
            }
        }
        None => {
            let names = extra.iter().map(noun_of).collect::<Result<Vec<_>>>()?;
            match names.split_first() {
                None => format!("{who} made a statement"),
                Some((first, [])) => format!("{who} {} {first}", stance_verb(stance)),
                Some((first, rest)) => format!(
                    "{who} {} {first} (also about {})",
                    stance_verb(stance),
                    join_names(rest)
                ),
            }
        }
    };
    Ok(capitalized(&sentence))
}

/// A statement of a trip or a sale view as a sentence about `object` ("the sale"),
/// with `parties` the sale's or trip's own entities and `positions` those of the
/// view's statements ([`positions`]: what a rejection rejects).
pub fn statement_line(
    name: &dyn Fn(&EntityId) -> Result<String>,
    statement: &trips::Statement,
    object: &str,
    parties: &[EntityId],
    positions: &Positions,
) -> Result<String> {
    let subject = Subject {
        object: Some(object.to_owned()),
        parties: parties.to_vec(),
        positions: &|e| Ok(positions.get(e).copied()),
    };
    statement_sentence(
        name,
        &statement.speaker,
        statement.stance,
        &statement.about,
        &subject,
    )
}

impl<'a> Query<'a> {
    pub fn new(docs: &'a dyn DocsRead) -> Query<'a> {
        Query {
            docs,
            names: RefCell::default(),
            travelers: RefCell::default(),
            positions: RefCell::default(),
        }
    }

    /// The current version of a fact, unless retracted.
    pub fn fact(&self, id: &Uuid) -> Result<Option<Fact>> {
        Ok(facts::get(self.docs, id)?.filter(|f| !f.retracted))
    }

    fn facts(&self, ids: &[(Position, Uuid)]) -> Result<Vec<Fact>> {
        let mut found = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            found.extend(self.fact(id)?);
        }
        Ok(found)
    }

    /// The display name of an entity: its registered name, a country's built-in name,
    /// or its id.
    pub fn name(&self, id: &EntityId) -> Result<String> {
        if let Some(name) = self.names.borrow().get(id) {
            return Ok(name.clone());
        }
        let name = match entities::name_doc(self.docs, id)? {
            // Two people both named "Mohamed Ali" are told apart by their ids.
            Some(doc) if self.shares_name(id, &doc.name)? => format!("{} ({id})", doc.name),
            Some(doc) => doc.name,
            None => id
                .country_name()
                .map_or_else(|| id.to_string(), str::to_owned),
        };
        self.names.borrow_mut().insert(id.clone(), name.clone());
        Ok(name)
    }

    /// Whether another registered entity has `name` as its own name (not merely as an
    /// alias), as names are compared ([`entities::normalize`]).
    fn shares_name(&self, id: &EntityId, name: &str) -> Result<bool> {
        let name = entities::normalize(name);
        for other in entities::by_name(self.docs, &name)? {
            if &other != id
                && entities::name_doc(self.docs, &other)?
                    .is_some_and(|d| d.registered && entities::normalize(&d.name) == name)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The traveler of a trip: that of its last current announcement.
    fn trip_traveler(&self, stream: &StreamId) -> Result<Option<EntityId>> {
        if let Some(traveler) = self.travelers.borrow().get(stream) {
            return Ok(traveler.clone());
        }
        let traveler = trips::travelers(self.docs, stream)?
            .and_then(|mut t| t.pop())
            .map(|(_, _, traveler)| traveler);
        self.travelers
            .borrow_mut()
            .insert(stream.clone(), traveler.clone());
        Ok(traveler)
    }

    /// Resolves an entity id, a name or an alias (case-insensitive, with or without a
    /// leading "the"), a trip's stop city, or a country's code (`JP`) to one entity;
    /// `field` names the parameter it came from in the error when none or several do,
    /// and the error names an entity within a typo of `text` when there is one.
    pub fn resolve_entity(&self, field: &str, text: &str) -> Result<EntityId> {
        self.find_entity(field, text, true)
    }

    /// An append's error about an entity, with what these views say was meant: the
    /// entity a name given where an id belongs names (`Addis` for place:addis-ababa),
    /// or the registered id closest to an unregistered one. Any other error, or one the
    /// views cannot help with, is left as it was.
    pub fn add_entity_hint(&self, error: &mut Error) {
        if !may_hint(error) {
            return;
        }
        let Error::Invalid { error, .. } = error else {
            return;
        };
        let better = if let Some(name) = ids::name_given_for_id(&error.message) {
            self.meant_by_name(name)
        } else if let Some(id) = crate::store::unregistered_entity(&error.message) {
            self.closest_id(&id).map(|close| {
                close.map(|c| format!("entity `{id}` is not registered: did you mean `{c}`? If not, append an entity.registered event for it first"))
            })
        } else {
            Ok(None)
        };
        if let Ok(Some(message)) = better {
            error.message = message;
        }
    }

    /// What to say of a name given where an id belongs: the id of the one entity it
    /// stands for, the ids it could be, or else the closest name's.
    fn meant_by_name(&self, name: &str) -> Result<Option<String>> {
        let mut ids = Vec::new();
        // Not as a stop's city: that reads every trip, for a place no registration has.
        for id in self.named(name, false)? {
            if id.country_name().is_some() || entities::get(self.docs, &id)?.is_some() {
                ids.push(id.to_string());
            }
        }
        Ok(match ids.as_slice() {
            [] => self.closest_name(name)?.map(|(shown, ids)| {
                let whose = match &ids[..] {
                    [id] => format!("whose id is {id}"),
                    many => format!("which could be {}", or_list(many)),
                };
                format!("`{name}` is not an entity id: did you mean `{shown}`, {whose}? `chronicle entity list` lists the ids")
            }),
            [id] => Some(format!(
                "`{name}` is not an entity id: it names {id}; give that id"
            )),
            many => Some(format!(
                "`{name}` is not an entity id: it could name {}; give one of these ids",
                many.join(", ")
            )),
        })
    }

    /// [`Query::resolve_entity`], with the search for what a typo meant when `suggest`.
    fn find_entity(&self, field: &str, text: &str, suggest: bool) -> Result<EntityId> {
        if text.trim().is_empty() {
            // No name or alias is blank (the log refuses one), so nothing is meant.
            return Err(not_found(
                field,
                "no entity is named by a blank text; give an entity's id, name or alias".into(),
            ));
        }
        if let Ok(id) = EntityId::parse(text) {
            // A country is built in, and an unregistered `place:` id stands for the
            // stops whose city it is the slug of; any other id must be one an entity
            // has (a typo in an id would otherwise match nothing, silently).
            if id.country_name().is_some()
                || entities::get(self.docs, &id)?.is_some()
                || self.is_stop_city(&id)?
            {
                return Ok(id);
            }
            let close = match suggest {
                true => self.closest_id(&id)?,
                false => None,
            };
            return Err(not_found(
                field,
                format!(
                    "no entity has the id `{id}`{}; `chronicle entity list` (or `GET /entities`) lists them",
                    close.map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
                ),
            ));
        }
        let mut ids = self.named(text, true)?;
        match ids.len() {
            0 => Err(not_found(
                field,
                format!(
                    "no entity is named or aliased `{}`{}; `chronicle entity list` (or `GET /entities`) lists them",
                    shown(text),
                    match suggest {
                        true => self.closest_name(text)?,
                        false => None,
                    }
                    .map_or_else(String::new, |(name, ids)| format!(
                        " (did you mean `{name}`, {}?)",
                        or_list(&ids)
                    ))
                ),
            )),
            1 => Ok(ids.remove(0)),
            _ => Err(not_found(
                field,
                format!(
                    "`{text}` could be {}; pass one of these ids",
                    ids.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The entities `text` names: by a name or an alias (with or without a leading
    /// "the"), as a country's name, as a stop's city (with `stop_cities`), or as a
    /// country's code.
    fn named(&self, text: &str, stop_cities: bool) -> Result<Vec<EntityId>> {
        let mut ids = entities::by_name(self.docs, text)?;
        // "the United States", as the summaries write a country's name; "German
        // foreign minister" for the alias "the German foreign minister".
        if ids.is_empty() {
            ids = match text
                .get(4..)
                .filter(|_| text[..4].eq_ignore_ascii_case("the "))
            {
                Some(name) => entities::by_name(self.docs, name)?,
                None => entities::by_name(self.docs, &format!("the {}", text.trim_start()))?,
            };
        }
        // A country's own name, when no fact involves the country yet.
        if ids.is_empty()
            && let Some(code) = countries::code_of(text)
            && let Ok(country) = EntityId::parse(&format!("country:{code}"))
        {
            return Ok(vec![country]);
        }
        if ids.is_empty()
            && stop_cities
            && let Some(place) = self.stop_city(text)?
        {
            return Ok(vec![place]);
        }
        // A country's code alone: `JP` for country:JP, `jp` too when nothing else is
        // named so; when an entity also has the code in capitals as a name or an alias,
        // both are offered rather than one picked silently (but "Jo" is not Jordan's).
        if text.len() == 2
            && (ids.is_empty() || text.bytes().all(|b| b.is_ascii_uppercase()))
            && let Ok(country) = EntityId::parse(&format!("country:{}", text.to_ascii_uppercase()))
            && country.country_name().is_some()
            && !ids.contains(&country)
        {
            ids.insert(0, country);
        }
        Ok(ids)
    }

    /// The name or alias closest to `text`, with the entities it names (a name two
    /// share names both), when it is close enough to be a typo of it ([`typo_of`]).
    fn closest_name(&self, text: &str) -> Result<Option<(String, Vec<EntityId>)>> {
        let wanted = entities::normalize(text);
        let Some(name) = closest_key(self.docs, entities::ALIASES, &wanted)? else {
            return Ok(None);
        };
        let ids = entities::by_name(self.docs, &name)?;
        let Some(id) = ids.first().cloned() else {
            return Ok(None);
        };
        // The alias index keeps names normalized; show the entity's own spelling.
        let shown = entities::get(self.docs, &id)?
            .and_then(|doc| {
                doc.names()
                    .into_iter()
                    .find(|n| entities::normalize(n) == name)
            })
            .unwrap_or(name);
        Ok(Some((shown, ids)))
    }

    /// The id of an entity of `id`'s kind closest to it, when it is close enough to
    /// be a typo of it ([`typo_of`]).
    fn closest_id(&self, id: &EntityId) -> Result<Option<String>> {
        let kind = format!("{}{}:", entities::DOCS, id.kind());
        let slug = &id.as_str()[id.kind().len() + 1..];
        Ok(closest_key(self.docs, &kind, slug)?.map(|close| format!("{}:{close}", id.kind())))
    }

    /// Resolves a trip: its stream id (`trip:blinken-final-tour-2025`), its slug alone,
    /// or its traveler's id, name or alias when that traveler has one trip (else the
    /// error lists the trips to choose from).
    pub fn resolve_trip(&self, text: &str) -> Result<StreamId> {
        if text.trim().is_empty() {
            return Err(not_found(
                "trip",
                "no trip is named by a blank text; give a trip's stream id (`trip:…`), its slug, or its traveler's name; `chronicle trip list` (or `GET /trips`) lists them".into(),
            ));
        }
        if let Ok(stream) = StreamId::parse(text) {
            if stream.category() == "trip" || !stream.is_entity() {
                return Ok(stream);
            }
        } else if let Ok(stream) = StreamId::parse(&format!("trip:{text}"))
            && trips::get(self.docs, &stream)?.is_some()
        {
            return Ok(stream);
        }
        let traveler = match self.find_entity("trip", text, false) {
            Ok(traveler) => traveler,
            // A name that two travelers (or entities) have: that is the answer.
            Err(ambiguous @ Error::Invalid { .. })
                if EntityId::parse(text).is_err() && self.named(text, true)?.len() > 1 =>
            {
                return Err(ambiguous);
            }
            Err(Error::Invalid { .. }) => {
                let close = self.closest_trip(text)?;
                return Err(not_found(
                    "stream",
                    format!(
                        "no trip is `{}`{}, and no traveler is named or aliased so; `chronicle trip list` (or `GET /trips`) lists them",
                        shown(text),
                        close.map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
                    ),
                ));
            }
            Err(other) => return Err(other),
        };
        let mut found = Vec::new();
        for item in self.docs.scan(trips::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: trips::TripDoc = decode(&k, &v)?;
            if doc.traveler() == Some(&traveler) {
                found.push(doc.stream);
            }
        }
        match found.len() {
            0 => Err(not_found(
                "stream",
                format!(
                    "{} has no trip; `chronicle trip list` (or `GET /trips`) lists them",
                    self.name(&traveler)?
                ),
            )),
            1 => Ok(found.remove(0)),
            _ => Err(not_found(
                "stream",
                format!(
                    "{} has {} trips: {}; pass one of these ids",
                    self.name(&traveler)?,
                    found.len(),
                    found
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// What a trip's fold needs of the registered places its facts name: their names
    /// and countries (see `trips::view`).
    fn places(&self, facts: &[Fact]) -> Result<HashMap<EntityId, trips::PlaceInfo>> {
        let mut found = HashMap::new();
        for e in facts.iter().flat_map(Fact::entities) {
            if e.kind() != "place" || found.contains_key(&e) {
                continue;
            }
            if let Some(doc) = entities::get(self.docs, &e)? {
                let mut names = vec![doc.name];
                names.extend(doc.aliases);
                found.insert(
                    e,
                    trips::PlaceInfo {
                        names,
                        country: doc.country,
                    },
                );
            }
        }
        Ok(found)
    }

    /// A trip's view from its document.
    fn trip_view(&self, doc: &trips::TripDoc) -> Result<TripView> {
        let facts = self.facts(&trips::FACTS.list(self.docs, &doc.stream)?)?;
        let places = self.places(&facts)?;
        Ok(trips::view(doc, &facts, &|p| places.get(p).cloned()))
    }

    /// A city that is no registered entity's name but a stop's city in some trip, as the
    /// place id it would have (`Seoul` → `place:seoul`), which the timeline takes for
    /// those stops (see [`Query::stop_facts`]). Reads every trip.
    fn stop_city(&self, text: &str) -> Result<Option<EntityId>> {
        let Some(place) = city_place(text) else {
            return Ok(None);
        };
        let named = |s: &trips::Stop| {
            s.city
                .as_deref()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case(text.trim()))
        };
        Ok(self.any_stop(named)?.then_some(place))
    }

    /// Whether `place` is the id a stop's city would have (`place:tel-aviv` for a stop
    /// in "Tel Aviv"). Reads every trip.
    fn is_stop_city(&self, place: &EntityId) -> Result<bool> {
        if !place.as_str().starts_with("place:") {
            return Ok(false);
        }
        self.any_stop(|s| s.city.as_deref().and_then(city_place).as_ref() == Some(place))
    }

    /// Whether a stop of some trip is one `matches` accepts. Reads every trip.
    fn any_stop(&self, matches: impl Fn(&trips::Stop) -> bool) -> Result<bool> {
        for item in self.docs.scan(trips::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: trips::TripDoc = decode(&k, &v)?;
            if self.trip_view(&doc)?.stops.iter().any(&matches) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The facts of every trip at the stops a place stands for, with their timeline
    /// keys under `prefix`: a registered place stands for the stop it names in each trip
    /// ([`trips::stop_index`]: its own stop, or the stop in its country whose city is
    /// its name or an alias); an unregistered `place:` id for the stops whose city it is
    /// the slug of (`place:seoul`, "Seoul"). The facts are the announcements and added
    /// stops that plan the stop and the events the trip's view put at it
    /// ([`trips::fold`]). With `retracted`, also the retracted facts of the trip that
    /// planned such a stop or named a place matched to it now. Reads every trip.
    fn stop_facts(
        &self,
        place: &EntityId,
        prefix: &[u8],
        retracted: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let registered = entities::get(self.docs, place)?.filter(|d| d.registered);
        let mut found = Vec::new();
        for item in self.docs.scan(trips::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: trips::TripDoc = decode(&k, &v)?;
            let facts = self.facts(&trips::FACTS.list(self.docs, &doc.stream)?)?;
            let mut places = self.places(&facts)?;
            if let Some(d) = &registered {
                let mut names = vec![d.name.clone()];
                names.extend(d.aliases.iter().cloned());
                let country = d.country.clone();
                places.insert(place.clone(), trips::PlaceInfo { names, country });
            }
            let places = |p: &EntityId| places.get(p).cloned();
            let folded = trips::fold(&doc, &facts, &places);
            let stops = folded.view.stops;
            let landed: HashMap<Uuid, usize> = folded.landed.into_iter().collect();
            let at: Vec<usize> = match &registered {
                // Every stop it stands for: a stop may be listed twice.
                Some(_) => (0..stops.len())
                    .filter(|i| trips::stop_index(&stops[*i..=*i], place, &places).is_some())
                    .collect(),
                None => (0..stops.len())
                    .filter(|i| {
                        stops[*i].city.as_deref().and_then(city_place).as_ref() == Some(place)
                    })
                    .collect(),
            };
            if at.is_empty() {
                continue;
            }
            let planned = |p: &EntityId, city: Option<&str>| {
                at.iter().any(|i| {
                    let stop = &stops[*i];
                    &stop.place == p
                        && city.is_none_or(|c| {
                            stop.city
                                .as_deref()
                                .is_none_or(|s| s.trim().eq_ignore_ascii_case(c.trim()))
                        })
                })
            };
            let mut gone = Vec::new();
            if retracted {
                for (_, id) in trips::RETRACTED.list(self.docs, &doc.stream)? {
                    gone.extend(facts::get(self.docs, &id)?.filter(|f| f.stream == doc.stream));
                }
            }
            for fact in facts.iter().chain(&gone) {
                let Some(occurred) = &fact.occurred else {
                    continue;
                };
                let here = match fact.typed() {
                    Some(EventData::TripAnnounced(a)) => {
                        a.stops.iter().any(|s| planned(&s.place, s.city.as_deref()))
                    }
                    Some(EventData::TripStopAdded(s)) => planned(&s.place, s.city.as_deref()),
                    // A retracted event, at the stop its place names now.
                    Some(typed) if fact.retracted => trips::at_stop(&typed)
                        .and_then(|p| trips::stop_index(&stops, p, &places))
                        .is_some_and(|i| at.contains(&i)),
                    // At the stop the view put it on, as the plan stood when it came.
                    Some(_) => landed.get(&fact.id).is_some_and(|i| at.contains(i)),
                    None => false,
                };
                if here {
                    let mut key = prefix.to_vec();
                    key.extend_from_slice(&crate::projection::sort_key(occurred, fact.position));
                    found.push((key, fact.id.as_bytes().to_vec()));
                }
            }
        }
        Ok(found)
    }

    /// Every trip, by stream id.
    pub fn trips(&self) -> Result<Vec<TripView>> {
        let mut out = Vec::new();
        for item in self.docs.scan(trips::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: trips::TripDoc = decode(&k, &v)?;
            // A trip whose every fact was retracted (a stray event on a mistyped stream,
            // say) leaves the list, as a retracted fact leaves every current view;
            // `trip show` still finds it.
            if !trips::FACTS.any(self.docs, &doc.stream)? {
                continue;
            }
            out.push(self.trip_view(&doc)?);
        }
        Ok(out)
    }

    /// One trip.
    pub fn trip(&self, stream: &StreamId) -> Result<TripView> {
        let Some(doc) = trips::get(self.docs, stream)? else {
            let close = self.closest_trip(stream.as_str())?;
            return Err(not_found(
                "stream",
                format!(
                    "no trip `{stream}`{}; `chronicle trip list` (or `GET /trips`) lists them",
                    close.map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
                ),
            ));
        };
        self.trip_view(&doc)
    }

    /// The trip or sale stream whose id is closest to `stream`'s ([`typo_of`]), for a
    /// stream the log does not hold; `None` for other categories.
    pub fn closest_stream(&self, stream: &StreamId) -> Result<Option<String>> {
        match stream.category() {
            "trip" => self.closest_trip(stream.as_str()),
            "arms-sale" => {
                let slug = &stream.as_str()["arms-sale:".len()..];
                let prefix = format!("{}arms-sale:", sales::DOCS);
                Ok(closest_key(self.docs, &prefix, slug)?.map(|s| format!("arms-sale:{s}")))
            }
            _ => Ok(None),
        }
    }

    /// The trip whose slug is closest to that of `text` ([`typo_of`]), a trip id or
    /// its slug alone; as a trip id.
    fn closest_trip(&self, text: &str) -> Result<Option<String>> {
        let slug = text.strip_prefix("trip:").unwrap_or(text);
        let prefix = format!("{}trip:", trips::DOCS);
        Ok(closest_key(self.docs, &prefix, slug)?.map(|s| format!("trip:{s}")))
    }

    /// `trip show`: the trip `text` names ([`Query::resolve_trip`]) and its view as
    /// these views stand at `at` (see [`Query::trip_at`]). A query of the past (as of a
    /// position, or known at a date) gives `now`, the current views: a trip or traveler
    /// the past views do not know yet is resolved with them, so that the answer is about
    /// that trip, not "no trip".
    pub fn trip_named(
        &self,
        text: &str,
        now: Option<&Query>,
        at: Position,
        known_at: Option<&Extent>,
        log: &dyn EventStore,
    ) -> Result<(StreamId, TripView)> {
        let stream = match now {
            Some(now) => self
                .resolve_trip(text)
                .or_else(|missing| now.resolve_trip(text).map_err(|_| missing))?,
            None => self.resolve_trip(text)?,
        };
        let trip = self.trip_at(&stream, at, known_at, log)?;
        Ok((stream, trip))
    }

    /// One trip as the views stand at `at` (and, on the reported clock, `known_at`). For
    /// a trip whose first event in `log` comes after `at`, or that had no fact published
    /// by `known_at`, says so, rather than "no trip", which would send the reader
    /// looking for a typo.
    fn trip_at(
        &self,
        stream: &StreamId,
        at: Position,
        known_at: Option<&Extent>,
        log: &dyn EventStore,
    ) -> Result<TripView> {
        self.trip(stream).or_else(|missing| {
            let filter = ReadFilter {
                stream: Some(stream.clone()),
                ..ReadFilter::default()
            };
            match (log.read(&filter).next().transpose()?, known_at) {
                (Some(first), _) if first.position > at => Err(not_found(
                    "stream",
                    format!(
                        "`{stream}` had no events yet at position {at}: its first is at position {}; ask as of that position or later",
                        first.position
                    ),
                )),
                (Some(_), Some(date)) => Err(not_found(
                    "stream",
                    format!(
                        "`{stream}` had no fact published by {date} (the `published` date of its sources); ask with a later date"
                    ),
                )),
                _ => Err(missing),
            }
        })
    }

    /// Timeline entries in timeline order.
    pub fn timeline(&self, filter: &TimelineFilter) -> Result<Vec<TimelineEntry>> {
        let prefix = match &filter.entity {
            Some(e) => timeline::entity_prefix(e),
            None => timeline::ENTRIES.as_bytes().to_vec(),
        };
        // An entity that had few entries (as of the position asked for) lists them.
        let few = match &filter.entity {
            Some(e) => timeline::few_entries(self.docs, e)?,
            None => None,
        };
        let start = filter
            .after
            .map(|after| [prefix.as_slice(), &after].concat());
        let mut entries: DocIter<'_> = match few {
            Some(listed) => Box::new(listed.into_iter().map(Ok)),
            None => self.docs.scan(&prefix, start.as_deref(), false),
        };
        if let Some(place) = filter.entity.as_ref().filter(|e| e.kind() == "place") {
            // A place's timeline also has the facts at the trips' stops it stands for,
            // most of which name the stop by its country and city.
            let at_stops = self.stop_facts(place, &prefix, filter.include_retracted)?;
            if !at_stops.is_empty() {
                let mut all = entries.collect::<Result<Vec<_>>>()?;
                all.extend(at_stops);
                all.sort();
                all.dedup();
                entries = Box::new(all.into_iter().map(Ok));
            }
        }
        if let Some(start) = start {
            // Past the cursor: the scan starts at it, the lists and stops anywhere.
            entries = Box::new(entries.filter(move |item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.as_slice() > start.as_slice())
            }));
        }
        self.entries(entries, filter)
    }

    /// The timeline entries of `entries` (timeline keys and fact ids, in timeline
    /// order) that `filter` keeps, up to its limit.
    fn entries(&self, entries: DocIter<'_>, filter: &TimelineFilter) -> Result<Vec<TimelineEntry>> {
        let window_start = filter.from.map(|f| f.earliest());
        let window_end = filter.to.map(|t| t.latest());
        // Tags match in any case, as names and aliases do, and without white space at
        // their ends (which a log written before it was refused may hold): the filter
        // lowered once.
        let tag = filter.tag.as_ref().map(|t| t.trim().to_lowercase());
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for item in entries {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let id = Uuid::from_slice(&v)
                .map_err(|_| Error::Integrity(format!("timeline entry {k:?} is malformed")))?;
            let Some(fact) = facts::get(self.docs, &id)? else {
                continue;
            };
            if fact.retracted && !filter.include_retracted {
                continue;
            }
            let Some(occurred) = fact.occurred else {
                continue;
            };
            if window_end.is_some_and(|end| occurred.earliest() >= end) {
                break; // Entries are sorted by earliest instant: none later can overlap.
            }
            if window_start.is_some_and(|start| occurred.latest() <= start)
                || filter.stream.as_ref().is_some_and(|s| &fact.stream != s)
                || filter
                    .category
                    .as_deref()
                    .is_some_and(|c| fact.stream.category() != c)
                || filter.event_type.is_some_and(|t| fact.event_type != t)
                || tag
                    .as_ref()
                    .is_some_and(|t| !fact.tags.iter().any(|f| f.trim().to_lowercase() == *t))
            {
                continue;
            }
            let headline = self.headline_of(&fact, fact.typed())?;
            // What is computed from the whole fact first, then its fields moved out.
            let summary = own_summary(&fact).map_or_else(|| headline.clone(), str::to_owned);
            let (quote, sources, changes) = (quote(&fact), fact.sources(), fact.changes());
            let (corrected, corrections) = (fact.corrected(), fact.correction_reasons());
            out.push(TimelineEntry {
                position: fact.position,
                id: fact.id,
                occurred,
                occurred_text: fact.occurred_text,
                event_type: fact.event_type,
                stream: fact.stream,
                summary,
                headline,
                quote,
                ongoing: fact.event_type == EventType::ConflictReported,
                // Those whose timelines have it (a trip's fact is its traveler's too):
                // the entities the registry counted it for, kept in its document.
                entities: fact.counted_for,
                tags: fact.tags,
                source: fact.source,
                evidence: fact.evidence,
                sources,
                corrected,
                corrections,
                changes,
                retracted: fact.retraction.filter(|_| fact.retracted),
            });
        }
        Ok(out)
    }

    fn entity_view(&self, doc: EntityDoc, events: u64) -> Result<EntityView> {
        // The ends of the entity's timeline, past the retracted facts it keeps.
        let prefix = timeline::entity_prefix(&doc.id);
        let extent_at = |reverse: bool| -> Result<Option<Extent>> {
            for item in self.docs.scan(&prefix, None, reverse) {
                let (k, v) = item?;
                let id = Uuid::from_slice(&v)
                    .map_err(|_| Error::Integrity(format!("timeline entry {k:?} is malformed")))?;
                if let Some(fact) = facts::get(self.docs, &id)?
                    && !fact.retracted
                    && fact.occurred.is_some()
                {
                    return Ok(fact.occurred);
                }
            }
            Ok(None)
        };
        let mut status = Vec::new();
        for s in &doc.status {
            let fact = self.fact(&s.id)?;
            status.push(EntityStatus {
                event_type: s.event_type,
                occurred: s.occurred,
                summary: match fact {
                    Some(f) => self.summary(&f)?,
                    None => s.event_type.to_string(),
                },
            });
        }
        Ok(EntityView {
            kind: doc.id.kind().to_owned(),
            first: extent_at(false)?,
            last: extent_at(true)?,
            id: doc.id,
            name: doc.name,
            aliases: doc.aliases,
            description: doc.description,
            country: doc.country,
            wikidata: doc.wikidata,
            registered: doc.registered,
            events,
            status,
            corrections: Vec::new(),
        })
    }

    /// How many current facts involve an entity the registry shows (registered, or
    /// involved in a current fact); `None` for one it does not show.
    fn listed(&self, doc: &EntityDoc) -> Result<Option<u64>> {
        let events = entities::events(self.docs, &doc.id)?;
        Ok((doc.registered || events > 0).then_some(events))
    }

    /// Every entity that is registered or involved in a current fact, by id.
    pub fn entities(&self) -> Result<Vec<EntityView>> {
        let mut out = Vec::new();
        for item in self.docs.scan(entities::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: EntityDoc = decode(&k, &v)?;
            if let Some(events) = self.listed(&doc)? {
                out.push(self.entity_view(doc, events)?);
            }
        }
        Ok(out)
    }

    /// One entity, by id, name or alias.
    pub fn entity(&self, text: &str) -> Result<EntityView> {
        let id = self.resolve_entity("entity", text)?;
        let doc = match entities::get(self.docs, &id)? {
            Some(doc) => self.listed(&doc)?.map(|events| (doc, events)),
            None => None,
        };
        if doc.is_none() && self.is_stop_city(&id)? {
            return Err(not_found(
                "entity",
                format!(
                    "`{id}` is not a registered entity but the city of a trip's stop: `chronicle timeline --entity {id}` (or `GET /timeline?entity={id}`) lists the facts at it; an entity.registered event for {id} gives it an entry here"
                ),
            ));
        }
        let (doc, events) = doc
            .ok_or_else(|| {
                not_found(
                    "entity",
                    format!("no fact involves `{id}`; `chronicle entity list` (or `GET /entities`) lists them"),
                )
            })?;
        let own = doc.own_facts().to_vec();
        let mut view = self.entity_view(doc, events)?;
        // Its own facts are current ones: a retraction takes a fact out of the list.
        view.corrections = (self.facts(&own)?.into_iter())
            .flat_map(|fact| {
                let (id, event_type) = (fact.id, fact.event_type);
                (fact.corrections.into_iter()).map(move |correction| FactCorrection {
                    id,
                    event_type,
                    correction,
                })
            })
            .collect();
        Ok(view)
    }

    /// Why past views found no entity `text` (`missing`), asked of `self`, the current
    /// views: an entity registered after `at`, or a city that became a trip's stop
    /// after it, is said to be so, rather than "no entity", which would send the reader
    /// looking for a typo.
    pub fn not_registered_yet(
        &self,
        text: &str,
        missing: Error,
        at: Position,
        log: &dyn EventStore,
    ) -> Error {
        let Error::Invalid { .. } = missing else {
            return missing;
        };
        // Countries are built in: never registered, never "not yet".
        let Ok(id) = self.find_entity("entity", text, false) else {
            return missing;
        };
        if id.is_country() {
            return missing;
        }
        if matches!(entities::get(self.docs, &id), Ok(None))
            && self.is_stop_city(&id).unwrap_or(false)
        {
            return not_found(
                "entity",
                format!(
                    "`{text}` was not yet the city of a trip's stop at position {at} (it is now, as {id}); ask as of a later position"
                ),
            );
        }
        let filter = ReadFilter {
            stream: Some(id.stream().clone()),
            ..ReadFilter::default()
        };
        match log.read(&filter).next() {
            Some(Ok(first))
                if first.position > at && first.event_type == EventType::EntityRegistered =>
            {
                not_found(
                    "entity",
                    format!(
                        "`{id}` was not registered yet at position {at}: its registration is at position {}; ask as of that position or later",
                        first.position
                    ),
                )
            }
            _ => missing,
        }
    }

    /// The retracted facts of a stream, in timeline order, each with its reason. A
    /// trip's are those its view had before they were retracted, listed apart
    /// ([`trips::RETRACTED`]): its own events and the statements about it, from any
    /// stream. Any other stream's are its own events, found by passing over the whole
    /// timeline.
    pub fn retracted(&self, stream: &StreamId) -> Result<Vec<TimelineEntry>> {
        let mut filter = TimelineFilter {
            include_retracted: true,
            ..TimelineFilter::default()
        };
        let mut entries = match stream.category() {
            "trip" => {
                let mut listed = Vec::new();
                for (_, id) in trips::RETRACTED.list(self.docs, stream)? {
                    if let Some(Fact {
                        occurred: Some(occurred),
                        position,
                        ..
                    }) = facts::get(self.docs, &id)?
                    {
                        let key = crate::projection::sort_key(&occurred, position);
                        listed.push((key.to_vec(), id.as_bytes().to_vec()));
                    }
                }
                listed.sort();
                self.entries(Box::new(listed.into_iter().map(Ok)), &filter)?
            }
            _ => {
                filter.stream = Some(stream.clone());
                self.timeline(&filter)?
            }
        };
        entries.retain(|e| e.retracted.is_some());
        Ok(entries)
    }

    /// The arms sales, optionally only those with this buyer and/or seller, with totals;
    /// with `include_retracted`, also the retracted sales, apart.
    pub fn sales(
        &self,
        buyer: Option<&EntityId>,
        seller: Option<&EntityId>,
        include_retracted: bool,
    ) -> Result<SalesReport> {
        let mut retracted = Vec::new();
        if include_retracted {
            let filter = TimelineFilter {
                event_type: Some(EventType::ArmsSaleAnnounced),
                include_retracted: true,
                ..TimelineFilter::default()
            };
            for entry in self.timeline(&filter)? {
                let Some(fact) = facts::get(self.docs, &entry.id)? else {
                    continue;
                };
                if let (Some(_), Some(EventData::ArmsSaleAnnounced(s))) =
                    (&entry.retracted, fact.typed())
                    && buyer.is_none_or(|b| &s.buyer == b)
                    && seller.is_none_or(|x| &s.seller == x)
                {
                    retracted.push(entry);
                }
            }
        }
        let mut all = Vec::new();
        for item in self.docs.scan(sales::DOCS.as_bytes(), None, false) {
            let (k, v) = item?;
            let doc: sales::SaleDoc = decode(&k, &v)?;
            all.extend(sales::view(
                &self.facts(&sales::FACTS.list(self.docs, &doc.stream)?)?,
            ));
        }
        all.retain(|s| {
            buyer.is_none_or(|b| &s.buyer == b) && seller.is_none_or(|x| &s.seller == x)
        });
        let totals = |party: fn(&SaleView) -> &EntityId| {
            let mut sums: BTreeMap<(EntityId, String), (Vec<f64>, bool)> = BTreeMap::new();
            for s in &all {
                let entry = sums
                    .entry((party(s).clone(), s.value.currency.clone()))
                    .or_default();
                entry.0.push(s.value.amount);
                entry.1 |= s.approximate;
            }
            sums.into_iter()
                .map(|((party, currency), (amounts, approximate))| Total {
                    party,
                    currency,
                    amount: decimal_sum(&amounts),
                    sales: amounts.len(),
                    approximate,
                })
                .collect()
        };
        Ok(SalesReport {
            by_buyer: totals(|s| &s.buyer),
            by_seller: totals(|s| &s.seller),
            sales: all,
            retracted,
        })
    }

    /// An entity's name as a noun in a sentence ("the United States").
    pub fn noun(&self, id: &EntityId) -> Result<String> {
        Ok(noun(id, &self.name(id)?))
    }

    /// What a statement's `about` stream is, for [`statement_sentence`]: a trip or a
    /// sale described with its parties (read from its document, not its facts).
    fn subject(&self, stream: &StreamId) -> Result<(String, Vec<EntityId>)> {
        if stream.category() == "trip" {
            return Ok(match self.trip_traveler(stream)? {
                Some(t) => (format!("{} trip", possessive(&self.noun(&t)?)), vec![t]),
                None => (format!("the trip {stream}"), Vec::new()),
            });
        }
        if stream.category() == "arms-sale" {
            let parties = sales::get(self.docs, stream)?.and_then(|d| d.parties.into_iter().next());
            return Ok(match parties {
                Some((_, _, seller, buyer)) => (
                    format!(
                        "the arms sale from {} to {}",
                        self.noun(&seller)?,
                        self.noun(&buyer)?
                    ),
                    vec![seller, buyer],
                ),
                None => (format!("the arms sale {stream}"), Vec::new()),
            });
        }
        Ok((stream.to_string(), Vec::new()))
    }

    /// The positions taken on a trip or a sale by the statements about it
    /// ([`positions`]), read once per query.
    fn positions_on(&self, stream: &StreamId) -> Result<std::rc::Rc<Positions>> {
        if let Some(found) = self.positions.borrow().get(stream) {
            return Ok(found.clone());
        }
        let listed = match stream.category() {
            "trip" => trips::FACTS.list(self.docs, stream)?,
            "arms-sale" => sales::FACTS.list(self.docs, stream)?,
            _ => Vec::new(),
        };
        let facts = self.facts(&listed)?;
        let found = std::rc::Rc::new(positions(
            (facts.iter().filter_map(trips::Statement::from_fact)).map(|s| (s.speaker, s.stance)),
        ));
        self.positions
            .borrow_mut()
            .insert(stream.clone(), found.clone());
        Ok(found)
    }

    /// A statement as a sentence (see [`statement_sentence`]): about its first stream,
    /// if it names one, with any further streams named apart.
    fn statement(&self, st: &crate::model::types::StatementIssued) -> Result<String> {
        let mut streams = st.about.iter().filter(|a| !a.is_entity());
        let first = streams.next();
        let (object, parties) = match first {
            Some(stream) => {
                let (object, parties) = self.subject(stream)?;
                (Some(object), parties)
            }
            None => (None, Vec::new()),
        };
        let subject = Subject {
            object,
            parties,
            positions: &|e| match first {
                Some(stream) => Ok(self.positions_on(stream)?.get(e).copied()),
                None => Ok(None),
            },
        };
        let mut line = statement_sentence(
            &|id| self.name(id),
            &st.speaker,
            st.stance,
            &st.about,
            &subject,
        )?;
        let rest: Vec<String> = streams
            .map(|s| Ok(self.subject(s)?.0))
            .collect::<Result<_>>()?;
        if !rest.is_empty() {
            line.push_str(&format!("; also about {}", join_names(&rest)));
        }
        Ok(line)
    }

    fn place(&self, place: &EntityId, city: Option<&String>) -> Result<String> {
        let name = self.name(place)?;
        Ok(match city {
            Some(city) if place.is_country() => format!("{city} ({name})"),
            Some(city) => city.clone(),
            None => noun(place, &name),
        })
    }

    /// The line a view shows for a fact: the analyst's own `summary` where the event
    /// has one (statements, conflicts, notes), else [`Query::headline`].
    pub fn summary(&self, fact: &Fact) -> Result<String> {
        match own_summary(fact) {
            Some(summary) => Ok(summary.to_owned()),
            None => self.headline(fact),
        }
    }

    /// A one-line sentence about a fact generated from its data alone, naming the
    /// subject, what was done and to what, and never someone the data does not name:
    /// an announcement says what was announced, not by whom.
    pub fn headline(&self, fact: &Fact) -> Result<String> {
        self.headline_of(fact, fact.typed())
    }

    /// [`Query::headline`] given the fact's typed data, parsed once by the caller.
    fn headline_of(&self, fact: &Fact, data: Option<EventData>) -> Result<String> {
        let Some(data) = data else {
            return Ok(fact.event_type.to_string());
        };
        let traveler = || -> Result<String> {
            Ok(match self.trip_traveler(&fact.stream)? {
                Some(t) => self.noun(&t)?,
                None => "the traveler".into(),
            })
        };
        let s = match data {
            EventData::EntityRegistered(r) => format!("{} registered", r.name),
            EventData::EntityAliasAdded(a) => {
                format!("{} is also known as {}", fact.stream, a.alias)
            }
            EventData::TripAnnounced(a) => {
                let places = a
                    .stops
                    .iter()
                    .map(|s| self.place(&s.place, s.city.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
                format!(
                    "{} trip to {} was announced",
                    possessive(&self.noun(&a.traveler)?),
                    join_names(&places)
                )
            }
            EventData::TripStopAdded(s) => format!(
                "A stop in {} was added to {} trip",
                self.place(&s.place, s.city.as_ref())?,
                possessive(&traveler()?)
            ),
            EventData::TripStopCancelled(s) => format!(
                "The stop in {} was dropped from {} trip{}",
                self.noun(&s.place)?,
                possessive(&traveler()?),
                s.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            EventData::TripAgendaItemAdded(a) => format!(
                "On {} agenda in {}: {}",
                possessive(&traveler()?),
                self.noun(&a.place)?,
                a.topic
            ),
            EventData::TripMeetingPlanned(m) => {
                let with = m
                    .with
                    .iter()
                    .map(|w| self.noun(w))
                    .collect::<Result<Vec<_>>>()?;
                let topic = m.topic.map(|t| format!(" ({t})")).unwrap_or_default();
                format!(
                    "{} is to meet {} in {}{topic}",
                    traveler()?,
                    join_names(&with),
                    self.noun(&m.place)?
                )
            }
            EventData::TripMeetingHeld(m) => {
                let with = m
                    .with
                    .iter()
                    .map(|w| self.noun(w))
                    .collect::<Result<Vec<_>>>()?;
                let topic = m.topic.map(|t| format!(" ({t})")).unwrap_or_default();
                format!(
                    "{} met {} in {}{topic}",
                    traveler()?,
                    join_names(&with),
                    self.noun(&m.place)?
                )
            }
            EventData::TripStarted(_) => format!("{} set off", traveler()?),
            EventData::TripCompleted(_) => format!("{} completed the trip", traveler()?),
            EventData::TripArrived(a) => {
                format!("{} arrived in {}", traveler()?, self.noun(&a.place)?)
            }
            EventData::TripDeparted(d) => format!("{} left {}", traveler()?, self.noun(&d.place)?),
            EventData::TripPostponed(_) => {
                format!("{} trip was postponed", possessive(&traveler()?))
            }
            EventData::TripCancelled(_) => {
                format!("{} trip was called off", possessive(&traveler()?))
            }
            EventData::TripReturnPlanned(r) => {
                let reason = r.reason.map(|r| format!(" ({r})")).unwrap_or_default();
                format!(
                    "{} is to return to {}{reason}",
                    traveler()?,
                    self.noun(&r.to)?
                )
            }
            EventData::ArmsSaleAnnounced(a) => format!(
                "An arms sale from {} to {} worth {}{} was announced{}",
                self.noun(&a.seller)?,
                self.noun(&a.buyer)?,
                if a.approximate == Some(true) {
                    "about "
                } else {
                    ""
                },
                format_money(&a.value),
                match &a.announced_by {
                    Some(by) => format!(" by {}", self.noun(by)?),
                    None => String::new(),
                }
            ),
            EventData::AgreementReported(a) => {
                let parties = a
                    .parties
                    .iter()
                    .map(|p| self.noun(p))
                    .collect::<Result<Vec<_>>>()?;
                let value = match &a.value {
                    Some(v) => format!(
                        " worth {}{}",
                        if a.approximate == Some(true) {
                            "about "
                        } else {
                            ""
                        },
                        format_money(v)
                    ),
                    None => String::new(),
                };
                let by = match &a.announced_by {
                    Some(by) => format!(", announced by {}", self.noun(by)?),
                    None => String::new(),
                };
                let between = match parties.as_slice() {
                    [one] => format!("of {one}"),
                    _ => format!("between {}", join_names(&parties)),
                };
                let article = if a
                    .kind
                    .trim_start()
                    .starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U'])
                {
                    "An"
                } else {
                    "A"
                };
                format!(
                    "{article} {} {between}{value} was {}{by}",
                    a.kind.trim(),
                    a.status.words()
                )
            }
            EventData::StatementIssued(st) => self.statement(&st)?,
            EventData::MartialLawDeclared(m) => format!(
                "{} declared martial law in {}",
                self.noun(&m.by)?,
                self.noun(&m.country)?
            ),
            EventData::OfficialImpeached(i) => format!(
                "{} was impeached as {}",
                self.noun(&i.official)?,
                self.name(&i.office)?
            ),
            EventData::FuneralScheduled(f) => {
                let place = match &f.place {
                    Some(p) => format!(" in {}", self.noun(p)?),
                    None => String::new(),
                };
                format!(
                    "The funeral of {} was scheduled{place}",
                    self.noun(&f.person)?
                )
            }
            EventData::ConflictReported(c) => {
                let parties = c
                    .parties
                    .iter()
                    .map(|p| self.noun(p))
                    .collect::<Result<Vec<_>>>()?;
                match parties.as_slice() {
                    [one] => format!("Ongoing conflict involving {one}"),
                    _ => format!("Ongoing conflict between {}", join_names(&parties)),
                }
            }
            EventData::NoteReported(n) => n.summary,
            EventData::EventCorrected(_)
            | EventData::EventRetracted(_)
            | EventData::EvidenceAdded(_) => fact.event_type.to_string(),
        };
        Ok(capitalized(&s))
    }
}

/// The analyst's own one-line `summary` of a fact, where its type has one and it is
/// not blank.
fn own_summary(fact: &Fact) -> Option<&str> {
    fact.data
        .get("summary")
        .and_then(|s| s.as_str())
        .filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_is_the_sum_of_the_decimals_in_any_order() {
        for amounts in [[200.2, 0.1, 0.2], [0.1, 0.2, 200.2], [0.2, 200.2, 0.1]] {
            assert_eq!(decimal_sum(&amounts), 200.5, "{amounts:?}");
        }
        assert_eq!(decimal_sum(&[0.1; 10]), 1.0);
        // The exact sum's nearest double.
        assert_eq!(
            decimal_sum(&[3.64e9, 0.001, 102_151_093_291_115.61]),
            "102154733291115.611".parse::<f64>().unwrap()
        );
        assert_eq!(decimal_sum(&[]), 0.0);
        // 600 digits apart, past an i128 at one scale: the doubles are added, and the
        // smaller is lost, as it is from the exact sum rounded to a double.
        assert_eq!(decimal_sum(&[1e300, 1e-300]), 1e300);
    }

    /// Checks the sentence of a statement by `speaker` with `stance` about `about`,
    /// where the object (if any) is "the sale" between the US and `buyer`, and the other
    /// statements are `others`.
    fn check(
        speaker: &str,
        stance: Stance,
        about: &[&str],
        others: &[(&str, Stance)],
        expected: &str,
    ) {
        let id = |s: &str| EntityId::parse(s).unwrap();
        let name = |e: &EntityId| -> Result<String> {
            Ok(e.country_name()
                .map_or_else(|| e.to_string(), str::to_owned))
        };
        let about: Vec<StreamId> = about.iter().map(|a| StreamId::parse(a).unwrap()).collect();
        let others = positions(others.iter().map(|(e, s)| (id(e), *s)));
        let has_object = about.iter().any(|a| !a.is_entity());
        let subject = Subject {
            object: has_object.then(|| "the sale".to_owned()),
            parties: if has_object {
                vec![id("country:US"), id("country:JP")]
            } else {
                Vec::new()
            },
            positions: &|e| Ok(others.get(e).copied()),
        };
        let line = statement_sentence(&name, &id(speaker), stance, &about, &subject).unwrap();
        assert_eq!(line, expected);
    }

    const SALE: &str = "arms-sale:us-japan-2025-01";

    /// The misreadings of issue 11, each as the sentence it should have been.
    #[test]
    fn statements_name_who_said_what_about_what() {
        use Stance::*;
        let china = [("country:CN", Opposes)];
        check(
            "country:CN",
            Opposes,
            &[SALE],
            &[],
            "China opposed the sale",
        );
        // Not "Japan rejected claims about the arms sale … and China".
        check(
            "country:JP",
            Rejects,
            &[SALE, "country:CN"],
            &china,
            "Japan rejected China's objection to the sale",
        );
        // Not "United States rejects", as if the seller rejected its own sale.
        check(
            "country:US",
            Rejects,
            &[SALE, "country:CN"],
            &china,
            "The United States rejected China's objection to the sale",
        );
        // With no statement of China's known, the rejection is of its position.
        check(
            "country:JP",
            Rejects,
            &[SALE, "country:CN"],
            &[],
            "Japan rejected China's position on the sale",
        );
        // Not "backed the arms sale … to Saudi Arabia and Iran": Iran is no party.
        check(
            "country:GB",
            Supports,
            &[SALE, "country:IR"],
            &[],
            "The United Kingdom backed the sale (also about Iran)",
        );
        // A party named again is not named apart.
        check(
            "country:KR",
            Supports,
            &[SALE, "country:JP"],
            &[],
            "South Korea backed the sale",
        );
        check(
            "country:US",
            Supports,
            &["org:us-south-korea-alliance", "country:KR"],
            &[],
            "The United States backed org:us-south-korea-alliance (also about South Korea)",
        );
        check(
            "country:CN",
            Rejects,
            &["country:US"],
            &[],
            "China rejected the United States' position",
        );
    }

    #[test]
    fn descriptive_organisations_and_offices_take_the_article() {
        let org = |slug: &str| EntityId::parse(&format!("org:{slug}")).unwrap();
        for (name, want) in [
            (
                "United States Department of State",
                "the United States Department of State",
            ),
            ("Biden administration", "the Biden administration"),
            ("US–Japan alliance", "the US–Japan alliance"),
            ("European Union", "the European Union"),
            ("The Pentagon", "The Pentagon"),
            ("Hamas", "Hamas"),
            ("NATO", "NATO"),
            ("Lockheed Martin", "Lockheed Martin"),
        ] {
            assert_eq!(noun(&org("x"), name), want);
        }
        let office = EntityId::parse("office:president-kr").unwrap();
        assert_eq!(
            noun(&office, "President of South Korea"),
            "the President of South Korea"
        );
        let person = EntityId::parse("person:a").unwrap();
        assert_eq!(noun(&person, "Joe Biden"), "Joe Biden");
    }

    #[test]
    fn countries_take_the_article_where_english_does() {
        let id = |s: &str| EntityId::parse(s).unwrap();
        assert_eq!(
            noun(&id("country:US"), "United States"),
            "the United States"
        );
        assert_eq!(noun(&id("country:NL"), "Netherlands"), "the Netherlands");
        assert_eq!(
            noun(&id("country:KY"), "Cayman Islands"),
            "the Cayman Islands"
        );
        assert_eq!(noun(&id("country:JP"), "Japan"), "Japan");
        assert_eq!(noun(&id("person:united-x"), "United X"), "United X");
        assert_eq!(
            capitalized(&noun(&id("country:US"), "United States")),
            "The United States"
        );
        assert_eq!(possessive("the United States"), "the United States'");
    }

    #[test]
    fn names_and_money_read_naturally() {
        let names = |n: &[&str]| join_names(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            names(&["South Korea", "Japan", "France"]),
            "South Korea, Japan and France"
        );
        assert_eq!(names(&["Japan"]), "Japan");
        let usd = Money {
            amount: 3.64e9,
            currency: "USD".into(),
        };
        assert_eq!(format_money(&usd), "$3.64 billion");
        let eur = Money {
            amount: 12_500_000.0,
            currency: "EUR".into(),
        };
        assert_eq!(format_money(&eur), "12.5 million EUR");
        // An exact figure that words would round is written in full.
        let usd = |amount: f64| {
            format_money(&Money {
                amount,
                currency: "USD".into(),
            })
        };
        assert_eq!(usd(11_437_250_000.0), "$11,437,250,000");
        assert_eq!(usd(999.999), "$999.999");
        assert_eq!(usd(1_000.5), "$1,000.5");
        assert_eq!(usd(999_999.99), "$999,999.99");
        // Totals summed from cents, whose last bits are off, are shown to the cent.
        assert_eq!(usd(111_937_728.820_000_05), "$111,937,728.82");
        assert_eq!(usd((0..100).map(|_| 0.07).sum()), "$7");
        assert_eq!(usd(0.012_345_678_9), "$0.012346");
        assert_eq!(usd(1e15), "$1 quadrillion");
        assert_eq!(usd(999_999_999_999_999.0), "$999,999,999,999,999");
        assert_eq!(usd(0.01), "$0.01");
        // Words that would round a large figure by a cent are not used.
        assert_eq!(usd(49_999_999_999_999.99), "$49,999,999,999,999.99");
        assert_eq!(usd(99_999_999_999_999.97), "$99,999,999,999,999.97");
        assert_eq!(usd(999_999_999_999_999.8), "$999,999,999,999,999.8");
        assert_eq!(usd(12_340_000_000_000.0), "$12.34 trillion");
        // More decimals than six: the six it is within a double's error of.
        assert_eq!(usd(724_217_064.244_066_2), "$724,217,064.244066");
        // A total past a thousand quadrillion, in full.
        assert_eq!(usd(1.5e18), "$1,500,000,000,000,000,000");
    }

    #[test]
    fn a_long_list_in_a_change_is_summed_up() {
        let stop = serde_json::json!({"place": "place:vilnius", "dates": "2025-04-07/2025-04-08"});
        let change = FieldChange {
            field: "stops".into(),
            before: serde_json::json!([stop, stop, stop]),
            after: serde_json::json!([stop]),
        };
        assert_eq!(describe_change(&change), "stops: [3 items] → [1 item]");
        let short = FieldChange {
            field: "items".into(),
            before: serde_json::json!(["x"]),
            after: serde_json::json!(["x", "y"]),
        };
        assert_eq!(describe_change(&short), r#"items: ["x"] → ["x","y"]"#);
    }
}
