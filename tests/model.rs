//! Model test: random valid event sequences, with corrections, retractions and
//! evidence, appended one small batch at a time. At every head the views the projector
//! keeps must equal the in-memory fold of the log so far; the as-of views at every
//! position must equal the fold of the log up to it (history crosses several epochs);
//! and a rebuild by replay, and a reopen, must change nothing.

use chronicle::model::patch::merge_patch;
use chronicle::model::{Origin, ProposedEvent, parse_event_value};
use chronicle::projection::DocsRead;
use chronicle::projection::runner::Runner;
use chronicle::store::ReadFilter;
use chronicle::store::{EventStore, SledStore};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One step of a random history; numbers pick among what exists so far.
#[derive(Debug, Clone)]
enum Step {
    Register(u8),
    Announce {
        trip: u8,
        traveler: u8,
        stops: Vec<u8>,
    },
    AddStop {
        trip: u8,
        place: u8,
        after: Option<u8>,
    },
    CancelStop {
        trip: u8,
        place: u8,
    },
    Arrive {
        trip: u8,
        place: u8,
        day: u8,
    },
    Depart {
        trip: u8,
        place: u8,
        day: u8,
    },
    Meet {
        trip: u8,
        place: u8,
        with: u8,
    },
    Status {
        trip: u8,
        kind: u8,
    },
    Sale {
        sale: u8,
        amount: u32,
        buyer: u8,
    },
    Statement {
        speaker: u8,
        about_trip: Option<u8>,
        about_sale: Option<u8>,
    },
    Correct {
        pick: u16,
        amount: u32,
        day: u8,
    },
    Retract {
        pick: u16,
    },
    Evidence {
        pick: u16,
    },
}

const COUNTRIES: &[&str] = &[
    "country:KR",
    "country:JP",
    "country:FR",
    "country:DE",
    "country:US",
    "country:CN",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4).prop_map(Step::Register),
        (0u8..3, 0u8..4, prop::collection::vec(0u8..6, 1..4)).prop_map(
            |(trip, traveler, stops)| Step::Announce {
                trip,
                traveler,
                stops
            }
        ),
        (0u8..3, 0u8..6, prop::option::of(0u8..6)).prop_map(|(trip, place, after)| Step::AddStop {
            trip,
            place,
            after
        }),
        (0u8..3, 0u8..6).prop_map(|(trip, place)| Step::CancelStop { trip, place }),
        (0u8..3, 0u8..6, 1u8..28).prop_map(|(trip, place, day)| Step::Arrive { trip, place, day }),
        (0u8..3, 0u8..6, 1u8..28).prop_map(|(trip, place, day)| Step::Depart { trip, place, day }),
        (0u8..3, 0u8..6, 0u8..4).prop_map(|(trip, place, with)| Step::Meet { trip, place, with }),
        (0u8..3, 0u8..4).prop_map(|(trip, kind)| Step::Status { trip, kind }),
        (0u8..2, 1u32..10_000, 0u8..6).prop_map(|(sale, amount, buyer)| Step::Sale {
            sale,
            amount,
            buyer
        }),
        (0u8..6, prop::option::of(0u8..3), prop::option::of(0u8..2)).prop_map(
            |(speaker, about_trip, about_sale)| Step::Statement {
                speaker,
                about_trip,
                about_sale
            }
        ),
        (any::<u16>(), 1u32..10_000, 1u8..28).prop_map(|(pick, amount, day)| Step::Correct {
            pick,
            amount,
            day
        }),
        any::<u16>().prop_map(|pick| Step::Retract { pick }),
        any::<u16>().prop_map(|pick| Step::Evidence { pick }),
    ]
}

/// Turns steps into valid events, tracking what exists so that every reference holds.
#[derive(Default)]
struct History {
    registered: Vec<String>,
    /// Facts that can be amended: (id, stream, type, data).
    facts: Vec<(Uuid, String, String, Value)>,
    /// The facts retracted.
    retracted: Vec<Uuid>,
    /// Each fact's current date, as its event or its last correction gave it.
    dates: std::collections::HashMap<Uuid, String>,
}

impl History {
    fn has_stream(&self, stream: &str) -> bool {
        self.facts.iter().any(|(_, s, _, _)| s == stream)
    }

    fn person(&self, n: u8) -> Option<String> {
        let slug = format!("person:p{n}");
        self.registered.contains(&slug).then_some(slug)
    }

    fn event(&mut self, stream: &str, ty: &str, occurred: Option<String>, data: Value) -> Value {
        let id = Uuid::now_v7();
        let mut e = json!({"id": id, "stream": stream, "type": ty, "data": data,
            "source": {"publisher": "Wire"}});
        if let Some(o) = &occurred {
            e["occurred"] = o.clone().into();
        }
        if !ty.starts_with("event.") && ty != "evidence.added" {
            if let Some(o) = occurred {
                self.dates.insert(id, o);
            }
            self.facts
                .push((id, stream.into(), ty.into(), e["data"].clone()));
        }
        e
    }

    /// Whether a place is a stop of a trip: one of its current announcements' stops or
    /// added stops (the model's places are countries, which name their stops exactly).
    fn is_stop(&self, trip: &str, place: &str) -> bool {
        self.facts.iter().any(|(id, stream, ty, data)| {
            stream == trip
                && !self.retracted.contains(id)
                && match ty.as_str() {
                    "trip.announced" => data["stops"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["place"] == place)),
                    "trip.stop_added" => data["place"] == place,
                    _ => false,
                }
        })
    }

    /// Whether retracting `target` would leave an event at a place of its trip at no stop
    /// of the plan, which the store refuses: the trip's view puts an event on a stop as
    /// the plan stood when it came, and the model's places (countries) name their stops
    /// exactly, so an event keeps a stop when another current fact planned its place
    /// before it.
    fn strands_an_event(&self, target: Uuid) -> bool {
        let Some(t) = self.facts.iter().position(|f| f.0 == target) else {
            return false;
        };
        let trip = &self.facts[t].1;
        let current =
            |f: &(Uuid, String, String, Value)| &f.1 == trip && !self.retracted.contains(&f.0);
        let plans = |f: &(Uuid, String, String, Value), place: &Value| match f.2.as_str() {
            "trip.announced" => f.3["stops"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| &s["place"] == place)),
            "trip.stop_added" => &f.3["place"] == place,
            _ => false,
        };
        let at_place = [
            "trip.arrived",
            "trip.departed",
            "trip.meeting_held",
            "trip.stop_cancelled",
        ];
        self.facts.iter().enumerate().skip(t + 1).any(|(i, f)| {
            let place = &f.3["place"];
            current(f)
                && at_place.contains(&f.2.as_str())
                && plans(&self.facts[t], place)
                && !self.facts[..i]
                    .iter()
                    .any(|g| g.0 != target && current(g) && plans(g, place))
        })
    }

    /// The events of a step: an event at a place that is not a stop of its trip comes
    /// after a `trip.stop_added` of it, as the store requires.
    fn translate(&mut self, step: &Step) -> Vec<Value> {
        let at = match step {
            Step::CancelStop { trip, place }
            | Step::Arrive { trip, place, .. }
            | Step::Depart { trip, place, .. }
            | Step::Meet { trip, place, .. } => Some((format!("trip:t{trip}"), *place)),
            _ => None,
        };
        let mut events = Vec::new();
        if let Some((trip, p)) = at {
            let place = COUNTRIES[usize::from(p) % COUNTRIES.len()];
            if !self.is_stop(&trip, place)
                && !matches!(step, Step::Meet { with, .. } if self.person(*with).is_none())
            {
                events.push(self.event(
                    &trip,
                    "trip.stop_added",
                    Some("2025-03-02".into()),
                    json!({"place": place}),
                ));
            }
        }
        events.extend(self.translate_one(step));
        events
    }

    fn translate_one(&mut self, step: &Step) -> Option<Value> {
        let day = |d: u8| Some(format!("2025-03-{d:02}"));
        let trip = |t: u8| format!("trip:t{t}");
        let place = |p: u8| COUNTRIES[usize::from(p) % COUNTRIES.len()];
        Some(match step {
            Step::Register(n) => {
                let slug = format!("person:p{n}");
                if self.registered.contains(&slug) {
                    return None;
                }
                self.registered.push(slug.clone());
                self.event(&slug, "entity.registered", None, json!({"name": format!("Person {n}"), "aliases": [format!("P{n}")]}))
            }
            Step::Announce { trip: t, traveler, stops } => {
                let traveler = self.person(*traveler)?;
                let stops: Vec<Value> = stops.iter().map(|p| json!({"place": place(*p), "agenda": ["talks"]})).collect();
                self.event(&trip(*t), "trip.announced", day(1), json!({"traveler": traveler, "stops": stops}))
            }
            Step::AddStop { trip: t, place: p, after } => {
                // A stop the trip has is not added again: the store refuses it.
                if self.is_stop(&trip(*t), place(*p)) {
                    return None;
                }
                let mut data = json!({"place": place(*p)});
                // A new stop follows a stop of its trip, as the store requires.
                if let Some(a) = after
                    && self.is_stop(&trip(*t), place(*a))
                {
                    data["after"] = place(*a).into();
                }
                self.event(&trip(*t), "trip.stop_added", day(2), data)
            }
            Step::CancelStop { trip: t, place: p } => self.event(&trip(*t), "trip.stop_cancelled", day(3), json!({"place": place(*p)})),
            Step::Arrive { trip: t, place: p, day: d } => self.event(&trip(*t), "trip.arrived", day(*d), json!({"place": place(*p)})),
            Step::Depart { trip: t, place: p, day: d } => self.event(&trip(*t), "trip.departed", day(*d), json!({"place": place(*p)})),
            Step::Meet { trip: t, place: p, with } => {
                let with = self.person(*with)?;
                self.event(&trip(*t), "trip.meeting_held", day(5), json!({"place": place(*p), "with": [with]}))
            }
            Step::Status { trip: t, kind } => {
                let ty = ["trip.started", "trip.completed", "trip.postponed", "trip.cancelled"][usize::from(*kind)];
                // On several days, so that their order is not their filing order.
                self.event(&trip(*t), ty, day(6 + (3 * *kind + *t) % 7), json!({}))
            }
            Step::Sale { sale, amount, buyer } => self.event(
                &format!("arms-sale:s{sale}"),
                "arms_sale.announced",
                day(4),
                // A sale is between two parties.
                json!({"seller": if place(*buyer) == "country:US" { "country:CA" } else { "country:US" },
                       "buyer": place(*buyer), "value": {"amount": amount, "currency": "USD"}, "items": ["x"]}),
            ),
            Step::Statement { speaker, about_trip, about_sale } => {
                // About streams the log holds, as the store requires.
                let mut about = vec![place(*speaker).to_owned()];
                about.extend(about_trip.map(trip));
                about.extend(about_sale.map(|s| format!("arms-sale:s{s}")));
                about.retain(|a| a.starts_with("country:") || self.has_stream(a));
                // Some are filed in a trip's stream, about it or not.
                let stream = match speaker % 2 {
                    1 => trip(speaker % 3),
                    _ => "statement:s".to_owned(),
                };
                self.event(&stream, "statement.issued", day(6), json!({"speaker": place(*speaker), "stance": "opposes", "about": about, "summary": "no"}))
            }
            Step::Correct { pick, amount, day: d } => {
                // Corrections are merge patches: only the changed fields, null removes an
                // optional one; they compose with the corrections before them.
                let (target, stream, ty, _) = self.pick(*pick)?;
                let mut fix = json!({"target": target, "reason": "fixed"});
                let flag = if amount % 2 == 0 { json!(true) } else { Value::Null };
                match ty.as_str() {
                    // Some change the sale's buyer or the trip's traveler: the trip's and
                    // the sale's other facts then involve someone else.
                    "arms_sale.announced" if amount % 5 == 0 => {
                        let fact = self.facts.iter().find(|f| f.0 == target)?;
                        let buyer = (0..COUNTRIES.len())
                            .map(|i| COUNTRIES[(*amount as usize + i) % COUNTRIES.len()])
                            .find(|c| *c != fact.3["seller"] && *c != fact.3["buyer"])?;
                        fix["data"] = json!({"buyer": buyer});
                    }
                    "arms_sale.announced" => fix["data"] = json!({"value": {"amount": amount}, "approximate": flag}),
                    "trip.announced" if amount % 3 == 0 => fix["data"] = json!({"title": flag.as_bool().map(|_| format!("Tour {amount}"))}),
                    "trip.announced" if amount % 3 == 1 => fix["data"] = json!({"traveler": self.person((*amount / 3 % 4) as u8)?}),
                    "statement.issued" => fix["data"] = json!({"quote": flag.as_bool().map(|_| "we object")}),
                    t if t.starts_with("entity.") => return None,
                    _ => {
                        // A correction to the date the fact has is refused: it changes
                        // nothing. A retracted fact's date stays as it was.
                        let new = day(*d)?;
                        if !self.retracted.contains(&target) {
                            if self.dates.get(&target) == Some(&new) {
                                return None;
                            }
                            self.dates.insert(target, new.clone());
                        }
                        fix["occurred"] = new.into();
                    }
                }
                // A correction must change something: the store refuses one that leaves
                // the data as it is. The data of a retracted fact stays as it was.
                if let Some(patch) = fix.get("data") {
                    let fact = self.facts.iter_mut().find(|f| f.0 == target)?;
                    let mut patched = fact.3.clone();
                    merge_patch(&mut patched, patch);
                    if patched == fact.3 {
                        return None;
                    }
                    if !self.retracted.contains(&target) {
                        fact.3 = patched;
                    }
                }
                // Half of them leave their own date to the store.
                let when = (amount % 4 < 2).then(|| day(20)).flatten();
                self.event(&stream, "event.corrected", when, fix)
            }
            Step::Retract { pick } => {
                let (target, stream, ty, _) = self.pick(*pick)?;
                // An entity cannot be unregistered, nor a stop taken from under an event
                // at it: the store refuses both.
                if ty == "entity.registered" || self.strands_an_event(target) {
                    return None;
                }
                self.retracted.push(target);
                self.event(&stream, "event.retracted", day(21), json!({"target": target, "reason": "wrong"}))
            }
            Step::Evidence { pick } => {
                let (target, stream, _, _) = self.pick(*pick)?;
                self.event(&stream, "evidence.added", None, json!({"target": target, "source": {"publisher": "Other"}}))
            }
        })
    }

    fn pick(&self, n: u16) -> Option<(Uuid, String, String, Value)> {
        if self.facts.is_empty() {
            return None;
        }
        self.facts.get(usize::from(n) % self.facts.len()).cloned()
    }
}

/// The first key where two sets of documents differ, for a short failure message.
fn first_difference(
    a: &BTreeMap<Vec<u8>, Vec<u8>>,
    b: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Option<String> {
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    keys.into_iter().find(|k| a.get(*k) != b.get(*k)).map(|k| {
        let show = |v: Option<&Vec<u8>>| v.map(|v| String::from_utf8_lossy(v).into_owned());
        format!(
            "{}: {:?} vs {:?}",
            String::from_utf8_lossy(k),
            show(a.get(k)),
            show(b.get(k))
        )
    })
}

fn dump(docs: &dyn DocsRead) -> BTreeMap<Vec<u8>, Vec<u8>> {
    docs.scan(b"", None, false).map(|r| r.unwrap()).collect()
}

fn proposed(v: Value) -> ProposedEvent {
    parse_event_value(v, Origin::New).expect("the model writes valid events")
}

/// Every entity's list of few timeline entries equals its index, unless it has had many.
fn lists_match_indexes(docs: &chronicle::projection::MemDocs) -> Result<(), String> {
    use chronicle::projection::timeline;
    // Every entity with a list or an entry in an index.
    let named = |k: &Vec<u8>| {
        let rest = k.strip_prefix(b"timeline/n/".as_slice());
        let rest = rest.or_else(|| k.strip_prefix(b"timeline/x/".as_slice()))?;
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        Some(String::from_utf8(rest[..end].to_vec()).unwrap())
    };
    let entities: std::collections::BTreeSet<String> = docs.map.keys().filter_map(named).collect();
    for entity in entities {
        let entity = chronicle::model::EntityId::parse(&entity).unwrap();
        let Some(listed) = timeline::few_entries(docs, &entity).unwrap() else {
            continue;
        };
        let prefix = timeline::entity_prefix(&entity);
        let indexed: Vec<_> = docs
            .scan(&prefix, None, false)
            .map(|r| r.unwrap())
            .collect();
        if listed != indexed {
            return Err(format!(
                "{entity}: {} listed, {} indexed",
                listed.len(),
                indexed.len()
            ));
        }
    }
    Ok(())
}

/// Every fact is on the timelines of, and (unless retracted) counted for, the entities
/// it involves as the views stand now: not those its trip's traveler or its sale's
/// buyer was when it was filed or retracted.
fn involvement_is_current(docs: &chronicle::projection::MemDocs) -> Result<(), String> {
    use chronicle::model::EntityId;
    use chronicle::projection::{Fact, involved, sort_key};
    let as_set = |ids: &[EntityId]| {
        ids.iter()
            .map(|e| e.to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    // (entity, sort key) of every timeline entry the facts say there should be.
    let mut entries = std::collections::BTreeSet::new();
    // The parties of each sale's current announcements, by position.
    let mut parties: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for (k, v) in docs.scan(b"facts/", None, false).map(|r| r.unwrap()) {
        let fact: Fact = serde_json::from_slice(&v).unwrap();
        if let Some(chronicle::model::types::EventData::ArmsSaleAnnounced(sale)) = fact.typed()
            && !fact.retracted
        {
            let named = format!("{} {} {}", fact.id, sale.seller, sale.buyer);
            (parties.entry(fact.stream.to_string()).or_default()).insert(fact.position.0, named);
        }
        let now = involved(&fact, docs).unwrap();
        if as_set(&now) != as_set(&fact.counted_for) {
            return Err(format!(
                "{} ({}, {}, retracted: {}) is counted for {:?} but involves {:?}",
                String::from_utf8_lossy(&k),
                fact.stream,
                fact.event_type,
                fact.retracted,
                fact.counted_for,
                now
            ));
        }
        if !fact.retracted {
            for e in &now {
                *counts.entry(e.to_string()).or_default() += 1;
            }
        }
        if let Some(occurred) = fact
            .occurred
            .filter(|_| fact.event_type.is_timeline_entry())
        {
            for e in &fact.counted_for {
                entries.insert((e.to_string(), sort_key(&occurred, fact.position).to_vec()));
            }
        }
    }
    // The sale documents name the same parties, in position order.
    for (k, v) in docs.scan(b"sales/", None, false).map(|r| r.unwrap()) {
        let doc: chronicle::projection::sales::SaleDoc = serde_json::from_slice(&v).unwrap();
        let stored: Vec<String> = (doc.parties.iter())
            .map(|(_, id, seller, buyer)| format!("{id} {seller} {buyer}"))
            .collect();
        let found = parties.remove(doc.stream.as_str()).unwrap_or_default();
        if stored != found.into_values().collect::<Vec<_>>() {
            return Err(format!(
                "{} names the parties {stored:?}, its facts other ones",
                String::from_utf8_lossy(&k)
            ));
        }
    }
    if let Some((stream, _)) = parties.pop_first() {
        return Err(format!("{stream} has an announcement but no sale document"));
    }
    let stored_counts: BTreeMap<String, u64> = docs
        .scan(b"entities/n/", None, false)
        .map(|r| r.unwrap())
        .map(|(k, v)| {
            (
                String::from_utf8(k[11..].to_vec()).unwrap(),
                u64::from_be_bytes(v.try_into().unwrap()),
            )
        })
        .collect();
    if stored_counts != counts {
        return Err(format!(
            "entity counts {stored_counts:?}, but the facts give {counts:?}"
        ));
    }
    let stored_entries: std::collections::BTreeSet<(String, Vec<u8>)> = docs
        .scan(b"timeline/x/", None, false)
        .map(|r| r.unwrap().0[11..].to_vec())
        .map(|rest| {
            let end = rest.iter().position(|b| *b == 0).unwrap();
            (
                String::from_utf8(rest[..end].to_vec()).unwrap(),
                rest[end + 1..].to_vec(),
            )
        })
        .collect();
    if stored_entries != entries {
        let extra = stored_entries.difference(&entries).next();
        let missing = entries.difference(&stored_entries).next();
        return Err(format!(
            "timeline entries: extra {extra:?}, missing {missing:?}"
        ));
    }
    Ok(())
}

/// The in-memory fold of the log's first `n` events.
fn fold(store: &SledStore, n: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let events = store
        .read(&ReadFilter::default())
        .take_while(|e| e.as_ref().map_or(true, |e| e.position.0 <= n));
    Runner::default().fold(events).unwrap().map
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_replay_equals_as_of(steps in prop::collection::vec(step(), 1..240), batch in 1usize..5) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut history = History::default();
        // Everyone the steps may name as a traveler exists half the time.
        let events: Vec<Value> = steps.iter().flat_map(|s| history.translate(s)).collect();
        for (i, chunk) in events.chunks(batch).enumerate() {
            store.append(chunk.iter().cloned().map(proposed).collect()).unwrap();
            if i % 7 == 0 {
                let head = store.head().unwrap().position.0;
                prop_assert_eq!(dump(&store.live_views().unwrap()), fold(&store, head));
            }
        }
        let incremental = dump(&store.live_views().unwrap());
        let head = store.head().unwrap().position;
        prop_assert_eq!(&incremental, &fold(&store, head.0));
        // The fold grows one event at a time beside the as-of views.
        let runner = Runner::default();
        let mut model = chronicle::projection::MemDocs::default();
        let log: Vec<_> = store.read(&ReadFilter::default()).map(|e| e.unwrap()).collect();
        for p in 0..=head.0 {
            if p > 0 {
                runner.apply(&log[(p - 1) as usize], &mut model).unwrap();
            }
            // Every position near an epoch boundary (where history and the folded tail
            // meet) and a sample of the rest: each check scans every document.
            let near_boundary = matches!(p % 64, 0 | 1 | 63);
            if near_boundary || p % 9 == 0 || p == head.0 {
                let past = store.views_at(chronicle::model::Position(p)).unwrap();
                let diff = first_difference(&dump(&past), &model.map);
                prop_assert!(diff.is_none(), "as of position {}: {}", p, diff.unwrap_or_default());
                let lists = lists_match_indexes(&model);
                prop_assert!(lists.is_ok(), "as of position {}: {}", p, lists.unwrap_err());
                let involvement = involvement_is_current(&model);
                prop_assert!(involvement.is_ok(), "as of position {}: {}", p, involvement.unwrap_err());
            }
        }
        store.rebuild(&[], Box::new(|_, _| {})).unwrap();
        prop_assert_eq!(&incremental, &dump(&store.live_views().unwrap()));
        for p in [0, head.0 / 2, head.0] {
            let past = store.views_at(chronicle::model::Position(p)).unwrap();
            prop_assert_eq!(dump(&past), fold(&store, p), "as of position {} after a rebuild", p);
        }
        // Reopening catches up nothing and changes nothing.
        drop(store);
        let store = SledStore::open(dir.path()).unwrap();
        prop_assert_eq!(&incremental, &dump(&store.live_views().unwrap()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2, ..ProptestConfig::default() })]

    /// A rebuild applies each chunk's writes while it folds the next, which reads them
    /// from memory until they are in the tree: over many chunks (of some 300 events
    /// here), the rebuilt views, and what they say as of any position, equal the fold.
    #[test]
    fn a_rebuild_over_many_chunks_equals_the_fold(steps in prop::collection::vec(step(), 2000..2400)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut history = History::default();
        let events: Vec<Value> = steps.iter().flat_map(|s| history.translate(s)).collect();
        for chunk in events.chunks(200) {
            store.append(chunk.iter().cloned().map(proposed).collect()).unwrap();
        }
        let incremental = dump(&store.live_views().unwrap());
        store.rebuild(&[], Box::new(|_, _| {})).unwrap();
        let rebuilt = dump(&store.live_views().unwrap());
        let diff = first_difference(&rebuilt, &incremental);
        prop_assert!(diff.is_none(), "after the rebuild: {}", diff.unwrap_or_default());
        let head = store.head().unwrap().position.0;
        let runner = Runner::default();
        let mut model = chronicle::projection::MemDocs::default();
        let log: Vec<_> = store.read(&ReadFilter::default()).map(|e| e.unwrap()).collect();
        for p in 0..=head {
            if p > 0 {
                runner.apply(&log[(p - 1) as usize], &mut model).unwrap();
            }
            if p % 97 == 0 || matches!(p % 256, 0 | 1 | 255) || p == head {
                let past = store.views_at(chronicle::model::Position(p)).unwrap();
                let diff = first_difference(&dump(&past), &model.map);
                prop_assert!(diff.is_none(), "as of position {} after the rebuild: {}", p, diff.unwrap_or_default());
            }
        }
    }
}
