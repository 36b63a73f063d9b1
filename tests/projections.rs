//! Projections and queries through the real binary: the article's views with
//! hand-written expectations, a trip that changes, corrections and retractions as of
//! before and after, and replay.

mod common;

use common::{Chronicle, path_str, person, run_at};
use serde_json::{Value, json};

const TRIP: &str = "trip:blinken-final-tour-2025";
const SALE_ID: &str = "01942100-0000-7000-8000-000003000001";

fn json_of(c: &Chronicle, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    serde_json::from_str(c.run(&full).ok().trim()).expect("one JSON document")
}

/// The ids of a JSON list of events or entries.
fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// One field of every stop of a trip's JSON view, in order.
fn stop_fields<'a>(trip: &'a Value, field: &str) -> Vec<&'a str> {
    trip["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].as_str().unwrap())
        .collect()
}

fn demo() -> Chronicle {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    c
}

#[test]
fn the_article_trip_has_its_three_stops_in_order_with_agendas() {
    let c = demo();
    let trip = json_of(&c, &["trip", "show", TRIP]);
    let places = stop_fields(&trip, "place");
    assert_eq!(places, ["country:KR", "country:JP", "country:FR"]);
    let cities = stop_fields(&trip, "city");
    assert_eq!(cities, ["Seoul", "Tokyo", "Paris"]);
    for stop in trip["stops"].as_array().unwrap() {
        assert_eq!(stop["status"], "planned");
        assert!(stop["agenda"].as_array().unwrap().len() >= 2, "{stop}");
    }
    let topics = |i: usize| -> Vec<String> {
        trip["stops"][i]["agenda"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["topic"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        topics(1).iter().any(|t| t.contains("Arms sale")),
        "{:?}",
        topics(1)
    );
    assert!(
        topics(2).iter().any(|t| t.contains("Ukraine")),
        "{:?}",
        topics(2)
    );
    assert_eq!(trip["traveler"], "person:antony-blinken");
    assert_eq!(trip["status"], "announced");
    assert_eq!(trip["starts"], "2025-01-05");
    assert_eq!(trip["planned_return"]["to"], "place:washington");
    assert_eq!(trip["statements"].as_array().unwrap().len(), 1);
    let list = json_of(&c, &["trip", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn the_timeline_for_japan_has_the_sale_and_chinas_objection() {
    let c = demo();
    let entries = json_of(&c, &["timeline", "--entity", "Japan"]);
    let summaries: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.contains(
            &"An arms sale from the United States to Japan worth about $3.64 billion was announced"
        ),
        "{summaries:#?}"
    );
    // A statement shows the analyst's summary, not words generated for the speaker.
    assert!(
        summaries.contains(&"China expressed strong opposition to the arms sale, alleging it could destabilise the region"),
        "{summaries:#?}"
    );
    // The same by id, by the country's code alone, and in timeline order.
    assert_eq!(
        json_of(&c, &["timeline", "--entity", "country:JP"]),
        entries
    );
    assert_eq!(json_of(&c, &["timeline", "--entity", "jp"]), entries);
    // A country as the summaries name it.
    assert_eq!(
        json_of(&c, &["timeline", "--entity", "the United States"]),
        json_of(&c, &["timeline", "--entity", "country:US"])
    );
    let starts: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["occurred"].as_str().unwrap())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort_by_key(|s| s.parse::<chronicle::model::Extent>().unwrap().earliest());
    assert_eq!(starts, sorted);
    // The trip announcement reads as a person would write it, and names no announcer:
    // the article does not say who announced it.
    let trip = json_of(&c, &["timeline", "--type", "trip.announced"]);
    assert_eq!(
        trip[0]["summary"],
        "Antony Blinken's trip to Seoul (South Korea), Tokyo (Japan) and Paris (France) was announced"
    );
}

/// Issue 11's misreadings of the article, each as what the views say now.
#[test]
fn the_views_never_put_words_in_a_sources_mouth() {
    let c = demo();
    let timeline = json_of(&c, &["timeline"]);
    let entry = |id: &str| {
        timeline
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == format!("01942100-0000-7000-8000-{id}"))
            .unwrap_or_else(|| panic!("no entry {id}"))
            .clone()
    };
    // Generated lines name subject, predicate and object, with "the" for countries
    // that take it.
    for (id, headline) in [
        (
            "000003000001",
            "An arms sale from the United States to Japan worth about $3.64 billion was announced",
        ),
        (
            "000003000003",
            "China opposed the arms sale from the United States to Japan",
        ),
        (
            "000003000004",
            "Japan rejected China's objection to the arms sale from the United States to Japan",
        ),
        (
            "000003000005",
            "The United States rejected China's objection to the arms sale from the United States to Japan",
        ),
        (
            "000002000001",
            "Antony Blinken's trip to Seoul (South Korea), Tokyo (Japan) and Paris (France) was announced",
        ),
        ("000005000004", "Ongoing conflict between Israel and Hamas"),
    ] {
        assert_eq!(entry(id)["headline"], headline, "{id}");
    }
    // The analyst's summary is what the timeline shows, and the source's words come
    // with it: the State Department's "iron-clad" is not dropped.
    let alliance = entry("000004000004");
    assert_eq!(
        alliance["summary"],
        "The State Department reaffirmed the strength of the US–South Korea alliance despite the political crisis"
    );
    assert_eq!(alliance["quote"], "iron-clad");
    // A situation reported as going on is not an event of the report's day.
    assert_eq!(entry("000005000004")["ongoing"], true);
    assert_eq!(entry("000003000001").get("ongoing"), None);
    let table = c
        .run(&["timeline", "--stream", "conflict:israel-hamas"])
        .ok();
    assert!(table.contains("2025-01-04 (ongoing)"), "{table}");
    // The buyer and the seller reject China's objection, not their own sale.
    let sales = c.run(&["sales"]).ok();
    for line in [
        "China opposed the sale",
        "Japan rejected China's objection to the sale",
        "The United States rejected China's objection to the sale",
    ] {
        assert!(sales.contains(line), "{line}: {sales}");
    }
    assert!(!sales.contains("United States rejects"), "{sales}");
    // One article is one source, however many facts it gave.
    assert_eq!(json_of(&c, &["trip", "show", TRIP])["sources"], 1);
    assert!(
        c.run(&["trip", "show", TRIP])
            .ok()
            .contains("sources:   1\n")
    );
    // A country a statement is also about is not read as a party to the sale.
    c.append(&[
        json!({"stream": "arms-sale:us-saudi-2025", "type": "arms_sale.announced", "occurred": "2025-01-02",
            "data": {"seller": "country:US", "buyer": "country:SA", "value": {"amount": 1e9, "currency": "USD"}, "items": ["radars"]}}),
        json!({"stream": "arms-sale:us-saudi-2025", "type": "statement.issued", "occurred": "2025-01-03",
            "data": {"speaker": "country:GB", "stance": "supports", "about": ["arms-sale:us-saudi-2025", "country:IR"],
                     "summary": "London welcomed the sale as a check on Tehran"}}),
    ])
    .ok();
    let saudi = json_of(
        &c,
        &[
            "timeline",
            "--stream",
            "arms-sale:us-saudi-2025",
            "--type",
            "statement.issued",
        ],
    );
    assert_eq!(
        saudi[0]["headline"],
        "The United Kingdom backed the arms sale from the United States to Saudi Arabia (also about Iran)"
    );
    assert_eq!(
        saudi[0]["summary"],
        "London welcomed the sale as a check on Tehran"
    );
}

#[test]
fn timeline_filters() {
    let c = demo();
    let count = |args: &[&str]| json_of(&c, args).as_array().unwrap().len();
    let all = count(&["timeline"]);
    assert_eq!(count(&["timeline", "--limit", "5"]), 5);
    assert!(count(&["timeline", "--category", "arms-sale"]) >= 4);
    assert_eq!(
        count(&["timeline", "--stream", "funeral:jimmy-carter-2025"]),
        1
    );
    assert_eq!(count(&["timeline", "--tag", "no-such-tag"]), 0);
    // A tag matches in any case, as names do.
    let tagged = count(&["timeline", "--tag", "indo-pacific"]);
    assert!(tagged > 0);
    assert_eq!(count(&["timeline", "--tag", "Indo-Pacific"]), tagged);
    // 2022-02 overlaps only the facts that reach back to the invasion.
    let early = json_of(&c, &["timeline", "--to", "2022-12"]);
    assert!(
        early
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["occurred"].as_str().unwrap().starts_with("2022")),
        "{early}"
    );
    assert!(count(&["timeline", "--from", "2025-01-06"]) < all);
    c.run(&["timeline", "--from", "2025-02-30"])
        .fails(2, "--from");
    c.run(&["timeline", "--entity", "Nobody At All"])
        .fails(2, "no entity is named or aliased");
    // A well-formed id with a typo names no entity either: refused, not an empty answer.
    // Both name the entity the typo was probably meant for.
    c.run(&["timeline", "--entity", "person:antony-blinkn"])
        .fails(
            2,
            "no entity has the id `person:antony-blinkn` (did you mean `person:antony-blinken`?)",
        );
    c.run(&["sales", "--seller", "org:us-state-departmnt"])
        .fails(2, "no entity has the id `org:us-state-departmnt` (did you mean `org:us-state-department`?)");
    // With or without a leading "the", both ways.
    for text in ["US Secretary of State", "the Secretary Blinken"] {
        assert_eq!(
            json_of(&c, &["entity", "show", text])["id"],
            "person:antony-blinken",
            "{text}"
        );
    }
    c.run(&["entity", "show", "antony  BLINKN"]).fails(
        2,
        "no entity is named or aliased `antony  BLINKN` (did you mean `Antony Blinken`, person:antony-blinken?)",
    );
    // Nothing close: no guess.
    c.run(&["entity", "show", "Nobody At All"]).fails(
        2,
        "no entity is named or aliased `Nobody At All`; `chronicle entity list`",
    );
    // A built-in country with no facts is an entity all the same.
    assert!(
        json_of(&c, &["timeline", "--entity", "country:BR"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--type",
            "conflict.reported",
        ],
    );
    let first = &tl["events"][0];
    assert_eq!(
        first["start_date"],
        json!({"year": 2022, "month": 2}),
        "month precision, no invented day"
    );
    assert_eq!(first["group"], "conflict");
    assert!(
        first["text"]["headline"]
            .as_str()
            .unwrap()
            .contains("Russia")
    );
}

#[test]
fn entities_resolve_by_alias_and_count_their_facts() {
    let c = demo();
    let blinken = json_of(&c, &["entity", "show", "Blinken"]);
    assert_eq!(blinken["id"], "person:antony-blinken");
    assert_eq!(
        json_of(&c, &["entity", "show", "the us secretary of state"])["id"],
        "person:antony-blinken"
    );
    assert!(blinken["events"].as_u64().unwrap() >= 2);
    let yoon = json_of(&c, &["entity", "show", "person:yoon-suk-yeol"]);
    let status: Vec<&str> = yoon["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["summary"].as_str().unwrap())
        .collect();
    assert!(
        status.contains(&"Yoon Suk Yeol was impeached as President of South Korea"),
        "{status:?}"
    );
    let japan = json_of(&c, &["entity", "show", "Japan"]);
    assert_eq!(
        (japan["kind"].as_str(), japan["first"].is_string()),
        (Some("country"), true)
    );
    let list = json_of(&c, &["entity", "list"]);
    assert!(list.as_array().unwrap().len() >= 18);
    // A country's code that an entity took as an alias is not silently taken to be that
    // entity: both are offered.
    assert_eq!(
        json_of(&c, &["sales", "--buyer", "JP"])["sales"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    c.append(&[
        json!({"stream": "person:antony-blinken", "type": "entity.alias_added",
        "data": {"alias": "JP"}, "source": {"publisher": "x"}}),
    ])
    .ok();
    c.run(&["sales", "--buyer", "JP"]).fails(
        2,
        "`JP` could be country:JP, person:antony-blinken; pass one of these ids",
    );
    assert_eq!(
        json_of(&c, &["entity", "show", "country:JP"])["id"],
        "country:JP"
    );
    // A short alias that is not in capitals is not taken for a country's code (Albania).
    c.append(&[
        json!({"stream": "person:antony-blinken", "type": "entity.alias_added",
        "data": {"alias": "Al"}, "source": {"publisher": "x"}}),
    ])
    .ok();
    assert_eq!(
        json_of(&c, &["entity", "show", "Al"])["id"],
        "person:antony-blinken"
    );
    // As of a position before its registration, an entity is said to come later, not
    // to be unknown (which would send the reader looking for a typo).
    c.run(&["entity", "show", "Seoul", "--as-of", "5"]).fails(
        2,
        "`place:seoul` was not registered yet at position 5: its registration is at position 10; ask as of that position or later",
    );
    // So in its timeline, and a stop's city before the trip planned it.
    c.run(&["timeline", "--entity", "Seoul", "--as-of", "5"]).fails(
        2,
        "`place:seoul` was not registered yet at position 5: its registration is at position 10",
    );
    // A country no fact involves is found by its name, as by its id.
    c.run(&["entity", "show", "Brazil"])
        .fails(2, "no fact involves `country:BR`");
    assert_eq!(json_of(&c, &["timeline", "--entity", "Brazil"]), json!([]));
    // An entity cannot be unregistered: it would stay in the facts that name it, with
    // no name, and could not be registered again.
    c.append(&[json!({"stream": "place:seoul", "type": "event.retracted",
        "data": {"target": "01942100-0000-7000-8000-000001000010", "reason": "no such place"}})])
    .fails(
        2,
        "field `data.target`: the target 01942100-0000-7000-8000-000001000010 is the registration of `place:seoul`, which the log's references keep: an entity cannot be unregistered",
    );
    assert_eq!(
        json_of(&c, &["entity", "show", "Seoul"])["id"],
        "place:seoul"
    );
    c.append(&[
        json!({"stream": "trip:blinken-final-tour-2025", "type": "trip.stop_added",
        "occurred": "2025-01-09", "data": {"place": "country:JP", "city": "Osaka"}}),
    ])
    .ok();
    c.run(&["timeline", "--entity", "Osaka", "--as-of", "5"]).fails(
        2,
        "`Osaka` was not yet the city of a trip's stop at position 5 (it is now, as place:osaka); ask as of a later position",
    );
}

/// An append that names an entity by its name or alias, or by an id with a typo, is
/// refused naming the id meant, from the views; nothing is written either way.
#[test]
fn an_append_refused_for_an_entity_names_the_id_meant() {
    let c = demo();
    let head = c.log().len();
    let meeting = |with: &str| {
        json!({"stream": "trip:blinken-final-tour-2025", "type": "trip.meeting_held",
        "occurred": "2025-01-06", "data": {"place": "place:seoul", "with": [with], "topic": "x"}})
    };
    c.append(&[meeting("Blinken")]).fails(
        2,
        "field `data.with[0]`: `Blinken` is not an entity id: it names person:antony-blinken; give that id",
    );
    c.append(&[meeting("person:antony-blinkn")]).fails(
        2,
        "entity `person:antony-blinkn` is not registered: did you mean `person:antony-blinken`? If not, append an entity.registered event for it first",
    );
    c.append(&[meeting("Antony Blinkn")]).fails(
        2,
        "`Antony Blinkn` is not an entity id: did you mean `Antony Blinken`, whose id is person:antony-blinken?",
    );
    // A name two entities share: the guess names both.
    c.append(&[
        json!({"stream": "person:a-deputy", "type": "entity.registered",
        "data": {"name": "A Deputy", "aliases": ["the US Secretary of State"]}}),
    ])
    .ok();
    c.append(&[meeting("the US Secretary of Stae")]).fails(
        2,
        "`the US Secretary of Stae` is not an entity id: did you mean `the US Secretary of State`, which could be person:a-deputy or person:antony-blinken?",
    );
    c.run(&["timeline", "--entity", "the US Secretary of Stae"])
        .fails(
            2,
            "(did you mean `the US Secretary of State`, person:a-deputy or person:antony-blinken?)",
        );
    // A country's name says its id without the views; a name nothing is close to keeps
    // the error that shows the form of an id.
    c.append(&[meeting("Japan")]).fails(
        2,
        "`Japan` is not an entity id: a country is named by its id, here country:JP",
    );
    c.append(&[meeting("Nobody At All")])
        .fails(2, "such as place:nobody-at-all or person:nobody-at-all");
    // A name registered by the append just before is taken from views caught up with
    // the log, not for a typo of another name.
    c.append(&[
        json!({"stream": "person:jane-doe", "type": "entity.registered", "data": {"name": "Jane Doe", "aliases": []}}),
    ])
    .ok();
    c.run(&["entity", "show", "Jane Doe"]).ok();
    c.append(&[
        json!({"stream": "person:jane-roe", "type": "entity.registered", "data": {"name": "Jane Roe", "aliases": []}}),
    ])
    .ok();
    c.append(&[meeting("Jane Roe")]).fails(
        2,
        "`Jane Roe` is not an entity id: it names person:jane-roe; give that id",
    );
    // The same from a file given to import, with its line.
    let file = c.file("named.jsonl", &format!("{}\n", meeting("Blinken")));
    c.run(&["import", file.to_str().unwrap()]).fails(
        2,
        "named.jsonl: line 1: field `data.with[0]`: `Blinken` is not an entity id: it names person:antony-blinken",
    );
    assert_eq!(c.log().len(), head + 3);
}

#[test]
fn sales_total_three_point_six_four_billion_with_japan_as_buyer() {
    let c = demo();
    let report = json_of(&c, &["sales"]);
    assert_eq!(report["sales"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["by_buyer"],
        json!([{"party": "country:JP", "currency": "USD", "amount": 3_640_000_000_u64, "sales": 1, "approximate": true}])
    );
    assert_eq!(report["by_seller"][0]["party"], "country:US");
    // The article's "about $3.64 billion" stays approximate in the totals.
    let table = c.run(&["sales"]).ok();
    assert!(
        table.contains("Japan           ~$3.64 billion  1"),
        "{table}"
    );
    let stances: Vec<&str> = report["sales"][0]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stance"].as_str().unwrap())
        .collect();
    assert_eq!(stances, ["opposes", "rejects", "rejects"]);
    assert_eq!(
        json_of(&c, &["sales", "--buyer", "France"])["sales"],
        json!([])
    );
    assert_eq!(
        json_of(&c, &["sales", "--seller", "United States"])["sales"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// An amendment of a trip's plan is refused when an event at a stop would then be at
/// another stop, or at none: the trip's view folds each event onto a stop as the plan
/// stood when it came, with and without the amendment, and compares. A stop added after
/// an event does not take it; a correction its events follow is accepted; so is an
/// amendment once the events are retracted, in the same append too. A place's timeline
/// has the events the view put at its stop.
#[test]
fn a_plan_is_not_amended_from_under_its_events() {
    let c = Chronicle::new();
    let place = |slug: &str, name: &str| {
        json!({"stream": format!("place:{slug}"), "type": "entity.registered",
               "data": {"name": name, "aliases": [], "country": "country:KE"}})
    };
    c.append(&[
        person("minister"),
        place("nairobi", "Nairobi"),
        place("mombasa", "Mombasa"),
    ])
    .ok();
    // Events of `trip`, each with the id `0194…<n>` when `n` is given.
    let ev = |trip: &str, n: Option<u8>, ty: &str, data: Value| {
        let mut e = json!({"stream": trip, "type": ty, "occurred": "2025-04-04", "data": data});
        if let Some(n) = n {
            e["id"] = json!(format!("01942100-0000-7000-8000-0000000000{n:02x}"));
        }
        e
    };
    let id = |n: u8| format!("01942100-0000-7000-8000-0000000000{n:02x}");
    let announced = |trip: &str, n: u8| {
        ev(
            trip,
            Some(n),
            "trip.announced",
            json!({"traveler": "person:minister",
                   "stops": [{"place": "place:nairobi"}, {"place": "country:UG", "city": "Kampala"}]}),
        )
    };
    let amend = |trip: &str, ty: &str, target: u8, data: Value| {
        let mut data = data;
        data["target"] = json!(id(target));
        data["reason"] = json!("a later report");
        json!({"stream": trip, "type": ty, "data": data})
    };
    let agenda = |trip: &str, n: u8, at: &str, topic: &str| {
        ev(
            trip,
            Some(n),
            "trip.agenda_item_added",
            json!({"place": at, "topic": topic}),
        )
    };
    let t = "trip:coast";
    c.append(&[
        announced(t, 1),
        ev(
            t,
            Some(2),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa"}),
        ),
        agenda(t, 3, "country:KE", "Port"),
    ])
    .ok();
    let head = c.log().len();
    let moved = "field `data.target`: the trip.agenda_item_added 01942100-0000-7000-8000-000000000003 at position 6 is at the stop Mombasa (country:KE), and would move to the stop Nairobi (place:nairobi): retract or correct it first";
    c.append(&[amend(t, "event.retracted", 2, json!({}))])
        .fails(2, moved);
    c.append(&[amend(
        t,
        "event.corrected",
        2,
        json!({"data": {"place": "country:TZ", "city": "Moshi"}}),
    )])
    .fails(2, "would move to the stop Nairobi (place:nairobi)");
    // An announcement corrected to list another stop in Kenya first takes it too.
    c.append(&[amend(
        t,
        "event.corrected",
        1,
        json!({"data": {"stops": [{"place": "country:KE", "city": "Lamu"}, {"place": "place:nairobi"}]}}),
    )])
    .fails(2, "would move to the stop Lamu (country:KE)");
    assert_eq!(c.log().len(), head);
    // The events follow a correction of the stop's city.
    c.append(&[amend(
        t,
        "event.corrected",
        2,
        json!({"data": {"city": "Malindi"}}),
    )])
    .ok();
    let trip = json_of(&c, &["trip", "show", t]);
    assert_eq!(trip["stops"][2]["city"], "Malindi", "{trip}");
    assert_eq!(trip["stops"][2]["agenda"][0]["topic"], "Port", "{trip}");
    // Retracted with the event at it, in one append.
    c.append(&[
        amend(t, "event.retracted", 3, json!({})),
        amend(t, "event.retracted", 2, json!({})),
    ])
    .ok();

    // An event filed before a stop was added stays where it was: the stop may go.
    let t = "trip:inland";
    c.append(&[
        announced(t, 11),
        agenda(t, 12, "country:KE", "Early"),
        ev(
            t,
            Some(13),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa", "after": "place:nairobi"}),
        ),
    ])
    .ok();
    let trip = json_of(&c, &["trip", "show", t]);
    assert_eq!(trip["stops"][0]["agenda"][0]["topic"], "Early", "{trip}");
    let topics = |entity: &str| -> Vec<String> {
        json_of(&c, &["timeline", "--entity", entity])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "trip.agenda_item_added")
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(topics("place:nairobi"), [id(12)]);
    assert!(topics("place:mombasa").is_empty());
    c.append(&[amend(t, "event.retracted", 13, json!({}))]).ok();

    // A stop added after the event, and before the amendment, changes nothing.
    let t = "trip:later";
    c.append(&[
        announced(t, 21),
        ev(
            t,
            Some(22),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa"}),
        ),
        agenda(t, 23, "country:KE", "Port"),
        ev(
            t,
            Some(24),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Kisumu", "after": "place:nairobi"}),
        ),
    ])
    .ok();
    c.append(&[amend(t, "event.retracted", 22, json!({}))])
        .fails(
            2,
            "is at the stop Mombasa (country:KE), and would move to the stop Nairobi",
        );
    // An event whose stop would be gone, with nowhere else to be.
    let t = "trip:ferry";
    c.append(&[
        announced(t, 31),
        ev(
            t,
            Some(32),
            "trip.stop_added",
            json!({"place": "place:mombasa"}),
        ),
        agenda(t, 33, "place:mombasa", "Ferry"),
        agenda(t, 34, "place:mombasa", "Harbour"),
    ])
    .ok();
    c.append(&[amend(t, "event.retracted", 32, json!({}))])
        .fails(2, "is at the stop Mombasa (place:mombasa), and would be at no stop of the plan (and 1 more event): retract");

    // Events in the same append as the amendment count, and in the same import.
    let t = "trip:same-append";
    c.append(&[
        announced(t, 41),
        ev(
            t,
            Some(42),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa"}),
        ),
    ])
    .ok();
    let head = c.log().len();
    c.append(&[
        agenda(t, 43, "country:KE", "Port"),
        amend(t, "event.retracted", 42, json!({})),
    ])
    .fails(2, "would move to the stop Nairobi (place:nairobi)");
    let lines = [
        announced("trip:imported", 51),
        ev(
            "trip:imported",
            Some(52),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa"}),
        ),
        agenda("trip:imported", 53, "country:KE", "Port"),
        amend("trip:imported", "event.retracted", 52, json!({})),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = c.file("plan.jsonl", &text);
    c.run(&["import", path_str(&file)])
        .fails(2, "line 4: field `data.target`: this amends the plan of `trip:imported`, and the same input files events at its stops before it");
    assert_eq!(c.log().len(), head);
    // An import checked in batches of one weighs an amendment of an event in the log,
    // as the writing will: nothing is written when the plan's amendment is refused...
    let t = "trip:batched";
    c.append(&[
        announced(t, 101),
        ev(
            t,
            Some(102),
            "trip.stop_added",
            json!({"place": "country:KE", "city": "Mombasa"}),
        ),
        agenda(t, 103, "place:nairobi", "Water"),
        agenda(t, 104, "country:KE", "Port"),
    ])
    .ok();
    let head = c.log().len();
    let import = |name: &str, lines: &[Value]| {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let file = c.file(name, &text);
        c.run(&["import", "--batch", "1", path_str(&file)])
    };
    import(
        "moved.jsonl",
        &[
            amend(t, "event.retracted", 104, json!({})),
            amend(t, "event.corrected", 103, json!({"data": {"place": "country:KE"}})),
            amend(t, "event.retracted", 102, json!({})),
        ],
    )
    .fails(2, "line 3: field `data.target`: the trip.agenda_item_added 01942100-0000-7000-8000-000000000067");
    assert_eq!(c.log().len(), head);
    // ...and accepted when the events at the stop were retracted before it.
    import(
        "retracted.jsonl",
        &[
            amend(t, "event.retracted", 104, json!({})),
            amend(t, "event.retracted", 102, json!({})),
        ],
    )
    .ok();

    // A stop listed in another order is another stop, while the old one is planned.
    let t = "trip:reordered";
    c.append(&[
        ev(
            t,
            Some(61),
            "trip.announced",
            json!({"traveler": "person:minister",
                   "stops": [{"place": "country:KE", "city": "Mombasa"}, {"place": "country:UG", "city": "Kampala"}]}),
        ),
        agenda(t, 62, "country:KE", "Port"),
    ])
    .ok();
    c.append(&[amend(
        t,
        "event.corrected",
        61,
        json!({"data": {"stops": [{"place": "country:KE", "city": "Kisumu"}, {"place": "country:KE", "city": "Mombasa"}]}}),
    )])
    .fails(2, "is at the stop Mombasa (country:KE), and would move to the stop Kisumu (country:KE)");
    // A title changes no stop.
    c.append(&[amend(
        t,
        "event.corrected",
        61,
        json!({"data": {"title": "Coast"}}),
    )])
    .ok();

    // A stop a later announcement lists stays planned without its trip.stop_added.
    let t = "trip:re-announced";
    let kampala = json!({"place": "country:UG", "city": "Kampala"});
    let mombasa = json!({"place": "country:KE", "city": "Mombasa"});
    c.append(&[
        ev(
            t,
            Some(71),
            "trip.announced",
            json!({"traveler": "person:minister", "stops": [kampala]}),
        ),
        ev(t, Some(72), "trip.stop_added", mombasa.clone()),
        agenda(t, 73, "country:KE", "Port"),
        ev(
            t,
            Some(74),
            "trip.announced",
            json!({"traveler": "person:minister", "stops": [kampala, mombasa]}),
        ),
    ])
    .ok();
    c.append(&[amend(t, "event.retracted", 72, json!({}))]).ok();
    let trip = json_of(&c, &["trip", "show", t]);
    assert_eq!(trip["stops"][1]["city"], "Mombasa", "{trip}");
    assert_eq!(trip["stops"][1]["agenda"][0]["topic"], "Port", "{trip}");

    // A stop is added once: again, under its registered place's name, or without its
    // city beside it, it is refused (a second stop would get none of its events, or
    // split them); called off, added again by its place and city, it is back on.
    let t = "trip:once";
    c.append(&[
        ev(
            t,
            Some(81),
            "trip.announced",
            json!({"traveler": "person:minister", "stops": [{"place": "place:nairobi"}, mombasa]}),
        ),
        agenda(t, 82, "country:KE", "Port"),
    ])
    .ok();
    let head = c.log().len();
    let add = |data: Value| ev(t, None, "trip.stop_added", data);
    let one_stop = "another report of it is evidence.added, and new dates or a new place in the order a correction, each with `target` the event that planned the stop";
    for city in ["Mombasa", " mombasa "] {
        c.append(&[add(json!({"place": "country:KE", "city": city}))]).fails(
            2,
            &format!("field `data.place`: trip.stop_added of Mombasa (country:KE): `trip:once` already has this stop (stop 2 of 2), and a second would get none of its events; {one_stop}"),
        );
    }
    c.append(&[add(json!({"place": "place:mombasa", "after": "place:nairobi"}))]).fails(
        2,
        &format!("trip.stop_added of Mombasa (place:mombasa): `trip:once` already has this stop as Mombasa (country:KE) (stop 2 of 2), and a second would split its events; {one_stop}"),
    );
    c.append(&[add(json!({"place": "country:KE"}))]).fails(
        2,
        "trip.stop_added of Kenya (country:KE): `trip:once` already has a stop at country:KE, Mombasa (country:KE) (stop 2 of 2), which events that name country:KE go to, so this one would get none of them;",
    );
    assert_eq!(c.log().len(), head);
    // An unregistered place named for the city of a stop: the error says how the trip
    // names that stop.
    c.append(&[ev(
        "trip:lamu",
        None,
        "trip.announced",
        json!({"traveler": "person:minister", "stops": [{"place": "country:KE", "city": "Lamu"}]}),
    )])
    .ok();
    c.append(&[ev("trip:lamu", None, "trip.arrived", json!({"place": "place:lamu"}))]).fails(
        2,
        "entity `place:lamu` is not registered; append an entity.registered event for it first (countries are built in as country:XX); `trip:lamu` has the stop `country:KE`, \"Lamu\": name it so (`place` country:KE), or register `place:lamu` with `country` country:KE to name it by that id",
    );
    c.append(&[ev(
        t,
        None,
        "trip.stop_cancelled",
        json!({"place": "place:mombasa", "reason": "storm"}),
    )])
    .ok();
    c.append(&[add(json!({"place": "place:mombasa"}))]).fails(
        2,
        "`trip:once` has this stop as Mombasa (country:KE, called off) (stop 2 of 2); to put it back on the plan, add it as that: `place` country:KE, `city` \"Mombasa\"",
    );
    let back_on = add(json!({"place": "country:KE", "city": "Mombasa", "dates": "2025-04-09"}));
    c.append(&[back_on, agenda(t, 84, "place:mombasa", "Ferry")])
        .ok();
    let trip = json_of(&c, &["trip", "show", t]);
    assert_eq!(trip["stops"].as_array().unwrap().len(), 2, "{trip}");
    assert_eq!(
        (&trip["stops"][1]["status"], &trip["stops"][1]["dates"]),
        (&json!("planned"), &json!("2025-04-09")),
        "{trip}"
    );
    assert_eq!(trip["stops"][1]["cancel_reason"], Value::Null, "{trip}");
    assert_eq!(trip["stops"][1]["agenda"][1]["topic"], "Ferry", "{trip}");
    // Another city of the same country is another stop.
    let kisumu = json!({"place": "country:KE", "city": "Kisumu"});
    c.append(&[add(kisumu)]).ok();
    // A stop called off is not told to be called off.
    let t = "trip:called-off";
    c.append(&[
        announced(t, 91),
        ev(t, Some(92), "trip.stop_added", mombasa.clone()),
        ev(
            t,
            Some(93),
            "trip.stop_cancelled",
            json!({"place": "country:KE"}),
        ),
    ])
    .ok();
    let refused = c
        .append(&[amend(t, "event.retracted", 92, json!({}))])
        .fails(
            2,
            "the trip.stop_cancelled 01942100-0000-7000-8000-00000000005d at position",
        );
    assert!(!refused.stderr.contains("instead"), "{}", refused.stderr);
    let at_mombasa = topics("Mombasa");
    assert!(
        at_mombasa.contains(&id(82)) && at_mombasa.contains(&id(84)),
        "{at_mombasa:?}"
    );
    c.run(&["verify"]).ok();
}

#[test]
fn a_trip_that_changes() {
    let c = Chronicle::new();
    let t = "trip:tour";
    let ev = |ty: &str, occurred: &str, data: Value| json!({"stream": t, "type": ty, "occurred": occurred, "data": data});
    c.append(&[
        person("minister"),
        ev("trip.announced", "2025-03-01", json!({"traveler": "person:minister",
            "stops": [{"place": "country:DE", "city": "Berlin"}, {"place": "country:PL", "city": "Warsaw"}]})),
    ])
    .ok();
    let status = |c: &Chronicle| json_of(c, &["trip", "show", t]);
    assert_eq!(status(&c)["status"], "announced");
    c.append(&[
        ev(
            "trip.stop_added",
            "2025-03-02",
            json!({"place": "country:CZ", "city": "Prague", "after": "country:DE"}),
        ),
        ev(
            "trip.stop_cancelled",
            "2025-03-03",
            json!({"place": "country:PL", "reason": "strike"}),
        ),
        ev("trip.started", "2025-03-10", json!({})),
        ev("trip.arrived", "2025-03-10", json!({"place": "country:DE"})),
        ev(
            "trip.meeting_held",
            "2025-03-10",
            json!({"place": "country:DE", "with": ["person:minister"], "topic": "trade"}),
        ),
        ev(
            "trip.departed",
            "2025-03-11",
            json!({"place": "country:DE"}),
        ),
        ev("trip.arrived", "2025-03-11", json!({"place": "country:CZ"})),
    ])
    .ok();
    let trip = status(&c);
    let stops: Vec<(&str, &str)> = trip["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["place"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stops,
        [
            ("country:DE", "visited"),
            ("country:CZ", "visited"),
            ("country:PL", "cancelled")
        ]
    );
    assert_eq!(trip["status"], "underway");
    assert_eq!(trip["stops"][0]["departed"], "2025-03-11");
    assert_eq!(trip["stops"][0]["meetings"][0]["topic"], "trade");
    assert_eq!(trip["stops"][2]["cancel_reason"], "strike");
    c.append(&[ev("trip.completed", "2025-03-12", json!({}))])
        .ok();
    let trip = status(&c);
    assert_eq!(
        (trip["status"].as_str(), trip["version"].as_u64()),
        (Some("completed"), Some(9))
    );
    // As of the announcement, it was two planned stops.
    let then = json_of(&c, &["trip", "show", t, "--as-of", "2"]);
    assert_eq!(then["stops"].as_array().unwrap().len(), 2);
    assert_eq!(then["status"], "announced");
    // The route keeps the cancelled stop, marked; the trip starts when it started
    // (announced with no start date).
    let list = c.run(&["trip", "list"]).ok();
    assert!(
        list.contains(
            "2025-03-10  Berlin (Germany) → Prague (Czechia) → Warsaw (Poland) (cancelled)"
        ),
        "{list}"
    );
    assert_eq!(trip["started"], "2025-03-10");
    // Asked by the traveler's name as of before the trip: about the trip, not "no trip".
    c.run(&["trip", "show", "minister", "--as-of", "1"]).fails(
        2,
        "`trip:tour` had no events yet at position 1: its first is at position 2",
    );
    let early = c.run(&["trip", "list", "--as-of", "1"]).ok();
    assert!(early.starts_with("No trips then"), "{early}");
    c.run(&["trip", "show", " "])
        .fails(2, "no trip is named by a blank text");
    let early = c.run(&["sales", "--as-of", "1"]).ok();
    assert!(
        early.starts_with("No arms sales match then; without --as-of and --known-at"),
        "{early}"
    );
    // A stop's city that is no registered entity: its facts are on its timeline, and
    // `entity show` says so rather than "no fact involves it".
    assert!(
        c.run(&["timeline", "--entity", "Berlin"])
            .ok()
            .contains("trip:tour")
    );
    c.run(&["entity", "show", "Berlin"]).fails(
        2,
        "`place:berlin` is not a registered entity but the city of a trip's stop: `chronicle timeline --entity place:berlin`",
    );
}

/// A stop's status follows when its arrivals, departures and cancellations happened,
/// as a trip's does, not the order they were filed.
#[test]
fn a_stops_status_follows_when_things_happened() {
    let c = Chronicle::new();
    let t = "trip:tour";
    let ev = |ty: &str, occurred: &str, data: Value| json!({"stream": t, "type": ty, "occurred": occurred, "data": data});
    let cancel = |place: &str, occurred: &str| {
        ev(
            "trip.stop_cancelled",
            occurred,
            json!({"place": place, "reason": "called off"}),
        )
    };
    let arrive =
        |place: &str, occurred: &str| ev("trip.arrived", occurred, json!({"place": place}));
    let depart =
        |place: &str, occurred: &str| ev("trip.departed", occurred, json!({"place": place}));
    c.append(&[
        person("minister"),
        ev("trip.announced", "2025-03-01", json!({"traveler": "person:minister",
            "stops": (["SN", "GH", "NG", "CI", "KE", "ET"].map(|c| json!({"place": format!("country:{c}")})))})),
        // Senegal: visited on the 13th; a cancellation dated the 12th reported after.
        arrive("country:SN", "2025-03-13"),
        cancel("country:SN", "2025-03-12"),
        // Ghana: cancelled on the 11th, visited after all on the 12th.
        cancel("country:GH", "2025-03-11"),
        arrive("country:GH", "2025-03-12"),
        // Nigeria: visited on the 10th, then called off for the rest on the 14th.
        arrive("country:NG", "2025-03-10"),
        cancel("country:NG", "2025-03-14"),
        // Côte d'Ivoire: a cancellation dated only by its month keeps filing order.
        arrive("country:CI", "2025-03-15"),
        cancel("country:CI", "2025-03"),
        // Kenya: cancelled on the 12th; an arrival of the 11th reported after.
        cancel("country:KE", "2025-03-12"),
        arrive("country:KE", "2025-03-11"),
        // Ethiopia: a departure dated by its month does not hold back a late
        // cancellation of the 2nd, which goes before the arrival of the 15th.
        arrive("country:ET", "2025-03-15"),
        depart("country:ET", "2025-03"),
        cancel("country:ET", "2025-03-02"),
    ])
    .ok();
    let stops = |c: &Chronicle, at: &[&str]| -> Vec<(String, String, Value)> {
        let trip = json_of(c, &[&["trip", "show", t], at].concat());
        (trip["stops"].as_array().unwrap().iter())
            .map(|s| {
                (
                    s["place"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                    s["cancel_reason"].clone(),
                )
            })
            .collect()
    };
    let stop = |place: &str, status: &str, reason: Value| {
        (format!("country:{place}"), status.to_owned(), reason)
    };
    let off = || json!("called off");
    assert_eq!(
        stops(&c, &[]),
        [
            stop("SN", "visited", Value::Null),
            stop("GH", "visited", Value::Null),
            stop("NG", "cancelled", off()),
            stop("CI", "cancelled", off()),
            stop("KE", "cancelled", off()),
            stop("ET", "visited", Value::Null),
        ]
    );
    let shown = c.run(&["trip", "show", t]).ok();
    assert!(shown.contains("1. Senegal — visited"), "{shown}");
    assert!(!shown.contains("cancelled: called off\n    2."), "{shown}");
    // As of the arrival in Senegal (position 3), and of the late report (4): visited.
    for at in ["3", "4"] {
        assert_eq!(stops(&c, &["--as-of", at])[0].1, "visited", "as of {at}");
    }
    // The store's refusals go by the plan: Senegal, shown visited, is called off in it.
    c.append(&[arrive("country:FR", "2025-03-16")]).fails(
        2,
        "Senegal (country:SN, called off), Ghana (country:GH, called off), Nigeria (country:NG, called off)",
    );
    // Called off in the plan, Kenya (shown cancelled) and Senegal (shown visited, as
    // it was visited after) are put back on it by a `trip.stop_added` of them: the
    // same stops, planned from then on, not a second stop of either.
    let add = |place: &str| ev("trip.stop_added", "2025-03-16", json!({"place": place}));
    c.append(&[add("country:KE"), add("country:SN")]).ok();
    let now = stops(&c, &[]);
    assert_eq!(now.len(), 6, "{now:?}");
    assert_eq!(now[4], stop("KE", "planned", Value::Null));
    assert_eq!(now[0], stop("SN", "planned", Value::Null));
    // Once back on the plan, a second `trip.stop_added` of it is refused.
    c.append(&[add("country:KE")])
        .fails(2, "already has this stop");
}

/// A fact corrected, then retracted, is listed under `trip show --include-retracted`
/// with both marks, as the timeline lists it.
#[test]
fn a_corrected_then_retracted_fact_keeps_its_correction_mark() {
    let c = demo();
    const TRIP: &str = "trip:blinken-final-tour-2025";
    const ITEM: &str = "01942100-0000-7000-8000-000002000003";
    let amend = |ty: &str, data: Value| json!({"stream": TRIP, "type": ty, "occurred": "2025-01-05", "data": data});
    c.append(&[
        amend(
            "event.corrected",
            json!({"target": ITEM, "reason": "a later report", "data": {"topic": "Arms sales"}}),
        ),
        amend(
            "event.retracted",
            json!({"target": ITEM, "reason": "not on the agenda"}),
        ),
    ])
    .ok();
    // The marks of the retracted fact's line: from `[corrected` to its retraction.
    let line = |text: &str| {
        let end = "[retracted: not on the agenda]";
        let at = text.find(end)?;
        let from = text[..at].rfind("[corrected")?;
        Some(text[from..at + end.len()].to_owned())
    };
    let shown = c.run(&["trip", "show", TRIP, "--include-retracted"]).ok();
    let timeline = c
        .run(&["timeline", "--stream", TRIP, "--include-retracted"])
        .ok();
    let marks = line(&shown).unwrap_or_else(|| panic!("{shown}"));
    assert!(
        marks.starts_with("[corrected: a later report; topic: "),
        "{shown}"
    );
    assert_eq!(line(&timeline), Some(marks), "{timeline}");
}

#[test]
fn a_corrected_sale_value_shows_before_and_after() {
    let c = demo();
    let before = c.log().len().to_string();
    let fix = json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected", "occurred": "2025-01-05",
        "data": {"target": SALE_ID, "reason": "the value was 3.5 billion",
                 "data": {"seller": "country:US", "buyer": "country:JP", "value": {"amount": 3.5e9, "currency": "USD"},
                          "items": ["medium-range missiles", "training", "related equipment"]}}});
    c.append(&[fix]).ok();
    let now = json_of(&c, &["sales"]);
    assert_eq!(now["by_buyer"][0]["amount"], 3_500_000_000_u64);
    assert_eq!(now["sales"][0]["corrected"], true);
    let then = json_of(&c, &["sales", "--as-of", &before]);
    assert_eq!(then["by_buyer"][0]["amount"], 3_640_000_000_u64);
    assert_eq!(then["sales"][0]["corrected"], false);
    // The timeline shows the corrected data, marked.
    let sale = json_of(&c, &["timeline", "--type", "arms_sale.announced"]);
    assert_eq!(sale[0]["corrected"], true);
    assert!(
        sale[0]["summary"]
            .as_str()
            .unwrap()
            .contains("$3.5 billion")
    );
    // A time of the recorded clock works as well as a position.
    let now_time = chrono::Utc::now().to_rfc3339();
    assert_eq!(json_of(&c, &["sales", "--as-of", &now_time]), now);
    assert_eq!(
        json_of(&c, &["sales", "--as-of", "2000-01-01T00:00:00Z"])["sales"],
        json!([])
    );
    c.run(&["sales", "--as-of", "99999"])
        .fails(2, "past the end of the log");
}

#[test]
fn a_retracted_fact_leaves_every_current_view_but_not_the_past() {
    let c = demo();
    let before = c.log().len().to_string();
    c.append(&[json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.retracted", "occurred": "2025-01-06",
        "data": {"target": SALE_ID, "reason": "no such sale"}})]).ok();
    assert_eq!(json_of(&c, &["sales"])["by_buyer"], json!([]));
    // No empty tables: one line that says so and what to do.
    let text = c.run(&["sales"]).ok();
    assert!(
        text.starts_with("No arms sales match.") && text.lines().count() == 1,
        "{text}"
    );
    assert!(
        json_of(&c, &["timeline", "--type", "arms_sale.announced"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        json_of(&c, &["sales", "--as-of", &before])["sales"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Evidence adds a source.
    let sources = |c: &Chronicle| {
        json_of(c, &["trip", "show", TRIP])["sources"]
            .as_u64()
            .unwrap()
    };
    let n = sources(&c);
    c.append(&[json!({"stream": TRIP, "type": "evidence.added", "occurred": "2025-01-05",
        "data": {"target": "01942100-0000-7000-8000-000002000001", "source": {"publisher": "Another Wire"}}})]).ok();
    assert_eq!(sources(&c), n + 1);
}

#[test]
fn a_corrected_title_is_listed_under_corrections_not_marked_on_the_status() {
    let c = demo();
    c.append(&[json!({"stream": TRIP, "type": "event.corrected", "occurred": "2025-01-05",
        "data": {"target": "01942100-0000-7000-8000-000002000001", "reason": "the agency's headline",
                 "data": {"title": "Blinken's last tour"}}})])
        .ok();
    let shown = c.run(&["trip", "show", TRIP]).ok();
    assert!(shown.starts_with("Blinken's last tour\n"), "{shown}");
    assert!(shown.contains("\n  status:    announced\n"), "{shown}");
    assert!(
        shown.contains("  corrections:\n    - trip.announced: the agency's headline"),
        "{shown}"
    );
}

#[test]
fn two_entities_of_one_name_are_told_apart_in_summaries() {
    let c = demo();
    let register = |slug: &str, name: &str| {
        json!({"stream": format!("person:{slug}"), "type": "entity.registered",
               "data": {"name": name, "aliases": []}})
    };
    c.append(&[
        register("mohamed-ali-sd", "Mohamed Ali"),
        register("mohamed-ali-td", "Mohamed Ali"),
        json!({"stream": TRIP, "type": "trip.meeting_held", "occurred": "2025-01-06",
               "data": {"place": "country:KR", "with": ["person:mohamed-ali-sd", "person:mohamed-ali-td"], "topic": "truce terms"}}),
        // The same name in two Unicode forms (é as one character, and as e and an accent).
        register("jose-1", "Jos\u{e9} Ruiz"),
        register("jose-2", "Jose\u{301} Ruiz"),
        json!({"stream": TRIP, "type": "trip.meeting_held", "occurred": "2025-01-07",
               "data": {"place": "country:KR", "with": ["person:jose-1", "person:jose-2"]}}),
    ])
    .ok();
    let timeline = json_of(
        &c,
        &[
            "timeline",
            "--from",
            "2025-01-06",
            "--type",
            "trip.meeting_held",
        ],
    );
    assert_eq!(
        timeline[0]["summary"],
        "Antony Blinken met Mohamed Ali (person:mohamed-ali-sd) and Mohamed Ali (person:mohamed-ali-td) in South Korea (truce terms)"
    );
    assert_eq!(
        timeline[1]["summary"],
        "Antony Blinken met Jos\u{e9} Ruiz (person:jose-1) and Jose\u{301} Ruiz (person:jose-2) in South Korea"
    );
}

#[test]
fn control_characters_from_the_log_are_shown_not_sent_to_the_terminal() {
    let c = demo();
    let summary = "calm \u{1b}[2J\u{1b}]0;title\u{7} then\nmore";
    c.append(&[
        json!({"stream": TRIP, "type": "note.reported", "occurred": "2025-04-21",
        "data": {"summary": summary, "entities": ["person:antony-blinken"]}}),
    ])
    .ok();
    let table = c.run(&["timeline", "--from", "2025-04-21"]).ok();
    assert!(!table.bytes().any(|b| b < 0x20 && b != b'\n'), "{table:?}");
    assert!(
        table.contains("calm \u{241b}[2J\u{241b}]0;title\u{2407} then\u{240a}more"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    // JSON keeps the text exactly, escaped as JSON escapes it.
    let json = json_of(&c, &["timeline", "--from", "2025-04-21"]);
    assert_eq!(json[0]["summary"], summary);
    // So do errors and notes, on stderr.
    let missing = c.run(&["entity", "show", "no\u{1b}[31mone"]);
    assert!(
        missing.stderr.contains("no\u{241b}[31mone"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_trips_retracted_facts_are_those_its_view_had_in_timeline_order() {
    let c = demo();
    // A statement about the trip from another stream is the trip's, as it was while
    // current; one filed in the trip's stream about something else never was.
    let statement = |stream: &str, id: &str, about: &str| {
        json!({"id": id, "stream": stream, "type": "statement.issued", "occurred": "2025-01-07",
               "data": {"speaker": "country:KR", "stance": "supports", "about": [about],
                        "summary": format!("a statement about {about}")}})
    };
    const ABOUT_TRIP: &str = "01942100-0000-7000-8000-00000000a001";
    const IN_TRIP: &str = "01942100-0000-7000-8000-00000000a002";
    c.append(&[
        statement("person:antony-blinken", ABOUT_TRIP, TRIP),
        statement(TRIP, IN_TRIP, "country:KR"),
    ])
    .ok();
    let retract = |stream: &str, target: &str| {
        json!({"stream": stream, "type": "event.retracted", "occurred": "2025-01-10",
               "data": {"target": target, "reason": format!("not {target}")}})
    };
    // The later-dated fact retracted first: the list is in timeline order, not filing order.
    c.append(&[retract(TRIP, "01942100-0000-7000-8000-000002000007")])
        .ok();
    let between = c.log().len().to_string();
    c.append(&[
        retract(TRIP, "01942100-0000-7000-8000-000002000005"),
        retract(TRIP, "01942100-0000-7000-8000-000004000005"),
        retract("person:antony-blinken", ABOUT_TRIP),
        retract(TRIP, IN_TRIP),
    ])
    .ok();
    let ids = |entries: &Value| -> Vec<String> {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["retracted"].is_null())
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for as_of in [None, Some(between.as_str())] {
        let mut show = vec!["trip", "show", TRIP, "--include-retracted"];
        if let Some(at) = as_of {
            show.extend(["--as-of", at]);
        }
        let listed = ids(&json_of(&c, &show)["retracted"]);
        let expected = match as_of {
            None => vec![
                "01942100-0000-7000-8000-000002000005",
                "01942100-0000-7000-8000-000004000005",
                "01942100-0000-7000-8000-000002000007",
                ABOUT_TRIP,
            ],
            Some(_) => vec!["01942100-0000-7000-8000-000002000007"],
        };
        assert_eq!(listed, expected, "as of {as_of:?}");
    }
    // The stream's own timeline has what was filed in it, the trip's or not.
    let timeline = ids(&json_of(
        &c,
        &["timeline", "--stream", TRIP, "--include-retracted"],
    ));
    assert!(timeline.contains(&IN_TRIP.to_owned()), "{timeline:?}");
    assert!(!timeline.contains(&ABOUT_TRIP.to_owned()), "{timeline:?}");
}

#[test]
fn a_report_published_before_what_it_reports_happened_is_appended_with_a_note() {
    let c = demo();
    let arrived = |occurred: &str, published: &str| {
        json!({"stream": TRIP, "type": "trip.arrived", "occurred": occurred,
               "data": {"place": "country:KR"},
               "source": {"publisher": "Example Wire", "published": published}})
    };
    let early = c.append(&[arrived("2025-01-06", "2025-01-04")]);
    assert!(
        early
            .stderr
            .contains("its source was published 2025-01-04, before it happened (2025-01-06)"),
        "{}",
        early.stderr
    );
    early.ok();
    // Published the day it happened, or later: no note.
    for published in ["2025-01-06", "2025-01-07"] {
        let run = c.append(&[arrived("2025-01-06T09:00:00Z", published)]);
        assert!(!run.stderr.contains("note:"), "{}", run.stderr);
        run.ok();
    }
}

#[test]
fn a_trip_stream_begun_without_its_announcement_is_appended_with_a_note() {
    let c = demo();
    const STRAY: &str = "01942100-0000-7000-8000-00000000beef";
    let typo = json!({"id": STRAY, "stream": "trip:blinken-final-tuor", "type": "trip.started", "occurred": "2025-01-05", "data": {}});
    let run = c.append(&[typo]);
    assert!(
        run.stderr.contains("`trip:blinken-final-tuor` had no events, and a trip's stream begins with trip.announced"),
        "{}",
        run.stderr
    );
    run.ok();
    // The trip it names is in the log, with no traveler; its next event has no note.
    let completed = json!({"stream": "trip:blinken-final-tuor", "type": "trip.completed", "occurred": "2025-01-09", "data": {}});
    let run = c.append(&[completed]);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    run.ok();
    // Its row and `trip show` say what is not known rather than leave it blank.
    let list = c.run(&["trip", "list"]).ok();
    let row = list
        .lines()
        .find(|l| l.starts_with("trip:blinken-final-tuor "))
        .unwrap_or_else(|| panic!("{list}"));
    let cells: Vec<&str> = row.split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        [
            "trip:blinken-final-tuor",
            "-",
            "completed",
            "2025-01-05",
            "-",
            "0"
        ],
        "{list}"
    );
    let shown = c.run(&["trip", "show", "trip:blinken-final-tuor"]).ok();
    assert!(
        shown.contains("traveler:  not known until a trip.announced names one")
            && shown.contains("stops:     none yet (trip.announced lists them"),
        "{shown}"
    );
    // Started on the day it was to start: `trip show` has no `started:` line.
    c.append(&[json!({"stream": "trip:blinken-final-tour-2025", "type": "trip.started", "occurred": "2025-01-05", "data": {}})])
        .ok();
    let shown = c
        .run(&["trip", "show", "trip:blinken-final-tour-2025"])
        .ok();
    assert!(
        shown.contains("starts:    2025-01-05") && !shown.contains("started:"),
        "{shown}"
    );
    // Retracted, it leaves the list once no fact of it stands; `trip show` still finds it.
    let retract = |target: &str| {
        json!({"stream": "trip:blinken-final-tuor", "type": "event.retracted", "occurred": "2025-01-10",
               "data": {"target": target, "reason": "a mistyped stream"}})
    };
    c.append(&[retract(STRAY)]).ok();
    assert!(
        c.run(&["trip", "list"])
            .ok()
            .contains("trip:blinken-final-tuor")
    );
    let log = c.log();
    let completed = log
        .iter()
        .find(|e| e["type"] == "trip.completed" && e["stream"] == "trip:blinken-final-tuor")
        .unwrap();
    c.append(&[retract(completed["id"].as_str().unwrap())]).ok();
    let list = c.run(&["trip", "list"]).ok();
    assert!(!list.contains("trip:blinken-final-tuor"), "{list}");
    assert!(list.contains("trip:blinken-final-tour-2025"), "{list}");
    c.run(&["trip", "show", "trip:blinken-final-tuor"]).ok();
}

#[test]
fn an_amendment_of_a_retracted_fact_is_appended_with_a_note_that_it_changes_nothing() {
    let c = demo();
    let retract = json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.retracted", "occurred": "2025-01-06",
        "data": {"target": SALE_ID, "reason": "no such sale"}});
    let first = c.append(std::slice::from_ref(&retract));
    assert!(!first.stderr.contains("note:"), "{}", first.stderr);
    first.ok();
    // A second retraction, a correction, evidence: each is logged, and says it changes nothing.
    let fix = sale_fix(json!({"approximate": true}));
    let evidence = json!({"stream": "arms-sale:us-japan-2025-01", "type": "evidence.added", "occurred": "2025-01-07",
        "data": {"target": SALE_ID, "source": {"publisher": "Another Wire"}}});
    for amendment in [retract, fix, evidence] {
        let before = c.log().len();
        let run = c.append(&[amendment]);
        let note = format!("its target {SALE_ID} was retracted before");
        assert_eq!(run.stderr.matches(&note).count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("note: event "), "{}", run.stderr);
        run.ok();
        assert_eq!(c.log().len(), before + 1);
    }
    assert_eq!(json_of(&c, &["sales"])["by_buyer"], json!([]));
    // --json carries it on the event.
    let run = c.run_stdin(
        &["--json", "append", "-"],
        &format!("{}\n", sale_fix(json!({"approximate": false}))),
    );
    let out: Value = serde_json::from_str(run.ok().trim()).unwrap();
    let note = out["events"][0]["note"].as_str().unwrap();
    assert!(note.contains("changes no view"), "{note}");
    // An amendment of a fact that stands has no note.
    let stands = json!({"stream": TRIP, "type": "evidence.added", "occurred": "2025-01-05",
        "data": {"target": "01942100-0000-7000-8000-000002000001", "source": {"publisher": "Another Wire"}}});
    let run = c.run_stdin(&["--json", "append", "-"], &format!("{stands}\n"));
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    let out: Value = serde_json::from_str(run.ok().trim()).unwrap();
    assert!(out["events"][0].get("note").is_none(), "{out}");
    // An import counts them, and names the first.
    let file = c.dir.path().join("late.jsonl");
    let lines = [
        sale_fix(json!({"approximate": true})),
        sale_fix(json!({"approximate": false})),
    ];
    std::fs::write(&file, lines.map(|l| format!("{l}\n")).concat()).unwrap();
    let run = c.run(&["import", file.to_str().unwrap()]);
    assert!(
        run.stderr
            .contains("note: 2 events of the input were appended with a note; the first, event "),
        "{}",
        run.stderr
    );
    run.ok();
    // Restored from an export, they get no note again: they were noted when appended.
    let export = c.dir.path().join("backup.jsonl");
    c.run(&["export", "--out", export.to_str().unwrap()]).ok();
    let restored = c.dir.path().join("restored.db");
    let run = run_at(&restored, &["import", export.to_str().unwrap()]);
    assert!(!run.stderr.contains("note"), "{}", run.stderr);
    run.ok();
}

#[test]
fn amendments_must_name_an_event_of_their_own_stream() {
    let c = demo();
    let amend = |stream: &str, target: &str| {
        json!({"stream": stream, "type": "event.retracted", "occurred": "2025",
        "data": {"target": target, "reason": "x"}})
    };
    c.append(&[amend(
        "arms-sale:us-japan-2025-01",
        "01942100-0000-7000-8000-00000000ffff",
    )])
    .fails(2, "field `data.target`: no event with id");
    c.append(&[amend(TRIP, SALE_ID)])
        .fails(2, "is in stream `arms-sale:us-japan-2025-01`");
    let bad_fix = json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected", "occurred": "2025",
        "data": {"target": SALE_ID, "reason": "x", "data": {"buyer": null}}});
    c.append(&[bad_fix]).fails(2, "field `data.data.buyer`");
}

/// A correction of the demo's sale with this merge patch, dated by the store.
fn sale_fix(patch: Value) -> Value {
    json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
           "data": {"target": SALE_ID, "data": patch, "reason": "a later report"}})
}

#[test]
fn a_correction_names_only_the_fields_that_change() {
    let c = demo();
    // Issue 11: `{"approximate": false}` was refused with "seller is missing".
    c.append(&[sale_fix(json!({"approximate": false}))]).ok();
    let sale = &json_of(&c, &["sales"])["sales"][0];
    assert_eq!(sale["approximate"], false);
    assert_eq!(sale["corrected"], true);
    assert_eq!(sale["seller"], "country:US");
    assert_eq!(sale["buyer"], "country:JP");
    assert_eq!(
        sale["value"],
        json!({"amount": 3_640_000_000_u64, "currency": "USD"})
    );
    assert_eq!(
        sale["items"],
        json!(["medium-range missiles", "training", "related equipment"])
    );
    // Without `occurred`, the correction is dated the day the store recorded it.
    let log = c.log();
    let fix = log.last().unwrap();
    let recorded_day = &fix["recorded"].as_str().unwrap()[..10];
    assert_eq!(fix["occurred"], recorded_day);
    assert_eq!(recorded_day, chrono::Utc::now().date_naive().to_string());

    // The merged result must fit the type: exit 2 naming the field, nothing written.
    c.append(&[sale_fix(json!({"value": {"amount": -3.5e9}}))])
        .fails(2, "field `data.data.value.amount`");
    c.append(&[sale_fix(json!({"seller": null}))])
        .fails(2, "field `data.data.seller`: `seller` is missing");
    c.append(&[sale_fix(json!({"buyer": "person:nobody"}))])
        .fails(
            2,
            "field `data.data.buyer`: entity `person:nobody` is not registered",
        );
    // A correction that changes nothing is refused: the fact would show as corrected.
    for same in [
        json!({}),
        json!({"approximate": false, "seller": "country:US"}),
    ] {
        c.append(&[sale_fix(same)]).fails(
            2,
            "field `data.data`: the correction changes nothing: the target's data already has these values",
        );
    }
    // So is one that gives the date the fact already has, alone, with data that
    // changes nothing, or after a correction to that date in the same append.
    let redate = |day: &str, patch: Option<Value>| {
        let mut fix = sale_fix(patch.unwrap_or(Value::Null));
        fix["data"]["occurred"] = json!(day);
        if fix["data"]["data"].is_null() {
            fix["data"].as_object_mut().unwrap().remove("data");
        }
        fix
    };
    let same_day = "the correction changes nothing: the target's date is already this one";
    c.append(&[redate("2025-01-03", None)])
        .fails(2, &format!("field `data.occurred`: {same_day}"));
    c.append(&[redate("2025-01-03", Some(json!({"approximate": false})))]).fails(
        2,
        "the correction changes nothing: the target's data already has these values, and its date is already this one",
    );
    c.append(&[redate("2025-01-02", None), redate("2025-01-02", None)])
        .fails(2, &format!("line 2: field `data.occurred`: {same_day}"));
    assert_eq!(c.log().len(), log.len());

    // Successive patches compose, in the log and within one append.
    c.append(&[sale_fix(json!({"value": {"amount": 3.5e9}}))])
        .ok();
    c.append(&[
        sale_fix(json!({"value": {"currency": "EUR"}})),
        sale_fix(json!({"approximate": null, "items": ["missiles"]})),
    ])
    .ok();
    let sale = &json_of(&c, &["sales"])["sales"][0];
    assert_eq!(
        sale["value"],
        json!({"amount": 3_500_000_000_u64, "currency": "EUR"})
    );
    assert_eq!(sale["approximate"], false);
    assert_eq!(sale["items"], json!(["missiles"]));
    assert_eq!(sale["seller"], "country:US");
    // Each step stays visible as of its position.
    let as_of = |p: usize| json_of(&c, &["sales", "--as-of", &p.to_string()])["sales"][0].clone();
    assert_eq!(as_of(log.len() - 1)["approximate"], true);
    assert_eq!(as_of(log.len())["approximate"], false);
    assert_eq!(as_of(log.len() + 1)["value"]["currency"], "USD");
    assert_eq!(as_of(log.len() + 1)["value"]["amount"], 3_500_000_000_u64);
    // A correction is not amended itself: the refusal says how to undo it.
    let fix_id = fix["id"].as_str().unwrap();
    c.append(&[json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.retracted",
        "data": {"target": fix_id, "reason": "wrong"}})])
        .fails(
            2,
            "is itself an event.corrected; amend the original event instead (to undo this correction, correct the original back to what it said)",
        );
    c.run(&["verify"]).ok();
    assert_eq!(json_of(&c, &["sales"]), {
        c.run(&["replay"]).ok();
        json_of(&c, &["sales"])
    });
}

#[test]
fn amendments_dated_by_the_store_export_and_restore_with_the_same_hashes() {
    let c = demo();
    c.append(&[
        sale_fix(json!({"approximate": false})),
        json!({"stream": TRIP, "type": "evidence.added",
               "data": {"target": "01942100-0000-7000-8000-000002000001", "source": {"publisher": "Another Wire"}}}),
    ])
    .ok();
    let exported = c.run(&["export"]).ok();
    let restored = Chronicle::new();
    let file = restored.file("backup.jsonl", &exported);
    restored.run(&["import", common::path_str(&file)]).ok();
    assert_eq!(restored.run(&["export"]).ok(), exported);
    assert_eq!(
        restored.run(&["verify", "--head"]).ok(),
        c.run(&["verify", "--head"]).ok()
    );
    // Importing the export again, or retrying an amendment that left out its date on
    // another day, adds nothing.
    restored.run(&["import", common::path_str(&file)]).ok();
    let last: Value = serde_json::from_str(exported.lines().last().unwrap()).unwrap();
    let mut retry = json!({"id": last["id"], "stream": TRIP, "type": "evidence.added",
        "data": {"target": "01942100-0000-7000-8000-000002000001", "source": {"publisher": "Another Wire"}}});
    let out = restored.append(std::slice::from_ref(&retry)).ok();
    assert!(out.contains("(1 already present)"), "{out}");
    retry["occurred"] = json!("1999-01-01");
    restored.append(&[retry]).fails(2, "with different content");
    assert_eq!(restored.run(&["export"]).ok(), exported);
}

#[test]
fn replay_rebuilds_the_same_views() {
    let c = demo();
    let views = |c: &Chronicle| {
        (
            json_of(c, &["trip", "list"]),
            json_of(c, &["timeline"]),
            json_of(c, &["entity", "list"]),
            json_of(c, &["sales"]),
        )
    };
    let before = views(&c);
    let report = json_of(&c, &["replay"]);
    assert_eq!(report["events"], 43);
    assert_eq!(views(&c), before);
    json_of(&c, &["replay", "--projection", "timeline"]);
    assert_eq!(views(&c), before);
    // Every name `stats` lists is one `replay` takes, the facts layer's too.
    for checkpoint in json_of(&c, &["stats"])["checkpoints"].as_array().unwrap() {
        let name = checkpoint["projection"].as_str().expect("a name");
        json_of(&c, &["replay", "--projection", name]);
    }
    assert_eq!(views(&c), before);
    c.run(&["replay", "--projection", "nope"])
        .fails(2, "error: --projection: no projection is named `nope`");
    let stats = json_of(&c, &["stats"]);
    assert!(
        stats["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["position"] == 43),
        "{stats}"
    );
}

/// A corrected fact shows why and what changed, old and new value; a retracted one is
/// hidden unless asked for, and then shown with why.
#[test]
fn corrections_and_retractions_show_why() {
    let c = demo();
    let before = c.log().len().to_string();
    c.append(&[
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
            "data": {"target": SALE_ID, "reason": "a later report", "data": {"value": {"amount": 3_500_000_000_u64}}},
            "source": {"publisher": "Example Wire", "published": "2025-01-07"}}),
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
            "data": {"target": SALE_ID, "reason": "announced a day earlier", "occurred": "2025-01-02"}}),
        json!({"stream": TRIP, "type": "event.retracted",
            "data": {"target": "01942100-0000-7000-8000-000002000004", "reason": "not in the article"}}),
    ])
    .ok();
    let sale = &json_of(&c, &["timeline", "--type", "arms_sale.announced"])[0];
    assert_eq!(
        sale["corrections"],
        json!(["a later report", "announced a day earlier"])
    );
    assert_eq!(
        sale["changes"],
        json!([
            {"field": "value.amount", "before": 3_640_000_000_u64, "after": 3_500_000_000_u64},
            {"field": "occurred", "before": "2025-01-03", "after": "2025-01-02"},
            {"field": "occurred_text", "before": "announced on Friday", "after": null},
        ])
    );
    let table = c.run(&["timeline", "--type", "arms_sale.announced"]).ok();
    assert!(
        table.contains("[corrected: a later report; announced a day earlier; value.amount: 3640000000 → 3500000000; occurred: 2025-01-03 → 2025-01-02; occurred_text: announced on Friday → (none)]"),
        "{table}"
    );
    let report = json_of(&c, &["sales"]);
    assert_eq!(
        report["sales"][0]["corrections"][0]["reason"],
        "a later report"
    );
    // Each correction keeps who reported it, when it says.
    assert_eq!(
        report["sales"][0]["corrections"][0]["source"],
        json!({"publisher": "Example Wire", "published": "2025-01-07"})
    );
    assert!(report["sales"][0]["corrections"][1].get("source").is_none());
    let sales = c.run(&["sales"]).ok();
    assert!(
        sales.contains("  - a later report (Example Wire, 2025-01-07)\n")
            && sales.contains("  - announced a day earlier\n"),
        "{sales}"
    );
    assert!(
        sales.contains("Corrections of arms-sale:us-japan-2025-01:"),
        "{sales}"
    );
    // With a second sale in the stream, each list says which sale it corrects.
    let d = demo();
    d.append(&[json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
        "data": {"target": SALE_ID, "reason": "a later report", "data": {"value": {"amount": 3_500_000_000_u64}}}})])
        .ok();
    d.append(&[json!({"stream": "arms-sale:us-japan-2025-01", "type": "arms_sale.announced", "occurred": "2025-02-01",
        "data": {"seller": "country:US", "buyer": "country:JP", "value": {"amount": 1e9, "currency": "USD"}, "items": ["radars"]}})])
        .ok();
    let second = d.log().last().unwrap()["id"].as_str().unwrap().to_owned();
    d.append(&[
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
        "data": {"target": second, "reason": "two billion", "data": {"value": {"amount": 2e9}}}}),
    ])
    .ok();
    let sales = d.run(&["sales"]).ok();
    assert!(
        sales.contains(&format!(
            "Corrections of arms-sale:us-japan-2025-01 (the sale of 2025-02-01, {second}):\n  - two billion"
        )) && sales.contains("Corrections of arms-sale:us-japan-2025-01 (the sale of 2025-01-03, "),
        "{sales}"
    );
    assert!(
        sales.contains("value.amount: 3640000000 → 3500000000"),
        "{sales}"
    );
    let trip = c.run(&["trip", "show", TRIP]).ok();
    assert!(!trip.contains("corrections:"), "{trip}");
    // The TimelineJS export keeps the marks, the reasons, the source's words and link,
    // and does not make an approximate date exact.
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--type",
            "arms_sale.announced",
        ],
    );
    let text = &tl["events"][0]["text"];
    assert!(
        text["headline"].as_str().unwrap().ends_with(" [corrected]"),
        "{text}"
    );
    let body = text["text"].as_str().unwrap();
    assert!(body.contains("Corrected: a later report; announced a day earlier; value.amount: 3640000000 → 3500000000"), "{body}");
    assert!(
        body.contains("<blockquote>“a significant arms sale worth approximately $3.64 billion"),
        "{body}"
    );
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--type",
            "trip.return_planned",
        ],
    );
    assert_eq!(
        tl["events"][0]["display_date"],
        "about 2025-01-06 to 2025-01-11"
    );
    assert_eq!(
        tl["events"][0]["end_date"],
        json!({"year": 2025, "month": 1, "day": 11})
    );
    // An instant has its time, in UTC as the timeline orders it, and as written.
    c.append(&[json!({"stream": "note:timed", "type": "note.reported", "occurred": "2025-01-09T10:05:30.250+09:00",
        "data": {"summary": "A timed report", "entities": []}})])
        .ok();
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--stream",
            "note:timed",
        ],
    );
    assert_eq!(
        tl["events"][0]["start_date"],
        json!({"year": 2025, "month": 1, "day": 9, "hour": 1, "minute": 5, "second": 30, "millisecond": 250})
    );
    assert_eq!(
        tl["events"][0]["display_date"],
        "2025-01-09T10:05:30.250+09:00"
    );
    c.append(&[json!({"stream": "note:linked", "type": "note.reported", "occurred": "2025-01-05",
        "data": {"summary": "A <Linked> report", "entities": []},
        "source": {"publisher": "Example Wire", "title": "Seoul & Tokyo", "url": "https://example.org/a?b=1&c=2", "quote": "words"}})])
        .ok();
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--stream",
            "note:linked",
        ],
    );
    let event = &tl["events"][0];
    assert_eq!(event["text"]["headline"], "A &lt;Linked&gt; report");
    assert_eq!(
        event["text"]["text"],
        "<blockquote>“words”</blockquote><p>Source: <a href=\"https://example.org/a?b=1&amp;c=2\">Seoul &amp; Tokyo</a>, Example Wire</p>"
    );
    assert_eq!(event.get("display_date"), None);
    // A source that is no web address (which a new event may no longer have, but a log
    // written before that rule does) is named, not linked; a second source is there.
    let log = c.log();
    let linked = log.iter().find(|e| e["stream"] == "note:linked").unwrap();
    let c = c.restored_with(&[json!({"stream": "note:linked", "type": "evidence.added", "occurred": "2025-01-06",
        "data": {"target": linked["id"], "source": {"publisher": "Other <Wire>", "title": "Click", "url": "javascript:alert(1)"}}})]);
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--stream",
            "note:linked",
        ],
    );
    assert_eq!(
        tl["events"][0]["text"]["text"],
        "<blockquote>“words”</blockquote><p>Source: <a href=\"https://example.org/a?b=1&amp;c=2\">Seoul &amp; Tokyo</a>, Example Wire</p><p>Also reported by: Click, Other &lt;Wire&gt;</p>"
    );

    // The retracted agenda item is gone by default…
    let retracted_id = "01942100-0000-7000-8000-000002000004".to_owned();
    let current = json_of(&c, &["timeline", "--stream", TRIP]);
    assert!(!ids(&current).contains(&retracted_id));
    assert!(
        current
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("retracted").is_none())
    );
    assert_eq!(json_of(&c, &["trip", "show", TRIP]).get("retracted"), None);
    // …and shown, marked with why, when asked for, in the timeline and the trip.
    let all = json_of(&c, &["timeline", "--stream", TRIP, "--include-retracted"]);
    assert_eq!(
        all.as_array().unwrap().len(),
        current.as_array().unwrap().len() + 1
    );
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == retracted_id.as_str())
        .unwrap();
    assert_eq!(entry["retracted"], "not in the article");
    let table = c
        .run(&["timeline", "--stream", TRIP, "--include-retracted"])
        .ok();
    assert!(
        table.contains("Defence and economic collaboration [retracted: not in the article]"),
        "{table}"
    );
    // The stop's city (no entity of its own) has it too, as its country has.
    for at in ["Tokyo", "Japan"] {
        let timeline = |more: &[&str]| {
            let args = [&["timeline", "--entity", at][..], more].concat();
            ids(&json_of(&c, &args))
        };
        let (current, all) = (timeline(&[]), timeline(&["--include-retracted"]));
        assert!(!current.contains(&retracted_id), "{at}: {current:?}");
        assert!(all.contains(&retracted_id), "{at}: {all:?}");
        assert_eq!(all.len(), current.len() + 1, "{at}: {all:?}");
    }
    let trip = json_of(&c, &["trip", "show", TRIP, "--include-retracted"]);
    assert_eq!(trip["retracted"][0]["retracted"], "not in the article");
    // The trip's fields keep the order they have without the flag; `retracted` is last.
    let text = c
        .run(&["--json", "trip", "show", TRIP, "--include-retracted"])
        .ok();
    let plain = c.run(&["--json", "trip", "show", TRIP]).ok();
    assert_eq!(
        text.split_once(",\"retracted\":").map(|(trip, _)| trip),
        plain.trim_end().strip_suffix('}'),
        "{text}"
    );
    assert!(
        c.run(&["trip", "show", TRIP, "--include-retracted"])
            .ok()
            .contains("  retracted:\n    - 2024/2025-01-04: On Antony Blinken's agenda in Japan: Defence and economic collaboration [retracted: not in the article]")
    );
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--stream",
            TRIP,
            "--include-retracted",
        ],
    );
    let marked: Vec<&Value> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["text"]["headline"]
                .as_str()
                .unwrap()
                .ends_with(" [retracted]")
        })
        .collect();
    assert_eq!(marked.len(), 1);
    assert!(
        marked[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("<p>Retracted: not in the article.</p>")
    );
    // As of before the retraction, the fact is current and unmarked.
    let past = json_of(
        &c,
        &[
            "timeline",
            "--stream",
            TRIP,
            "--as-of",
            &before,
            "--include-retracted",
        ],
    );
    assert!(
        past.as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("retracted").is_none())
    );
    assert!(ids(&past).contains(&retracted_id));

    // A retracted sale is in no total, and listed apart on request.
    c.append(&[
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.retracted",
        "data": {"target": SALE_ID, "reason": "no such sale"}}),
    ])
    .ok();
    assert_eq!(json_of(&c, &["sales"]).get("retracted"), None);
    let report = json_of(&c, &["sales", "--include-retracted"]);
    assert_eq!(report["by_buyer"], json!([]));
    assert_eq!(report["retracted"][0]["retracted"], "no such sale");
    assert_eq!(
        json_of(&c, &["sales", "--include-retracted", "--buyer", "France"]).get("retracted"),
        None
    );
    let sales = c.run(&["sales", "--include-retracted"]).ok();
    assert!(sales.contains("Retracted sales (in no total):"), "{sales}");
    assert!(sales.contains("[retracted: no such sale]"), "{sales}");
    // Every sale retracted: said in a line, with no empty tables around the list.
    assert!(
        sales.starts_with("No current arms sales match; every one found was retracted.\n"),
        "{sales}"
    );
    assert!(
        !sales.contains("OCCURRED") && !sales.contains("TOTAL BY"),
        "{sales}"
    );
}

/// `trip show` takes what `timeline --entity` does: an id, or a name.
#[test]
fn trips_are_found_by_id_slug_or_traveler() {
    let c = demo();
    let by_id = json_of(&c, &["trip", "show", TRIP]);
    for text in [
        "blinken-final-tour-2025",
        "Blinken",
        "the US Secretary of State",
        "person:antony-blinken",
    ] {
        assert_eq!(json_of(&c, &["trip", "show", text]), by_id, "{text}");
    }
    c.run(&["trip", "show", "Nobody At All"])
        .fails(2, "no trip is `Nobody At All`");
    c.run(&["trip", "show", "Japan"])
        .fails(2, "Japan has no trip");
    c.append(&[
        json!({"stream": "trip:blinken-second", "type": "trip.announced", "occurred": "2025-01-10",
        "data": {"traveler": "person:antony-blinken", "stops": [{"place": "country:IT"}]}}),
    ])
    .ok();
    c.run(&["trip", "show", "Blinken"]).fails(
        2,
        "Antony Blinken has 2 trips: trip:blinken-final-tour-2025, trip:blinken-second",
    );
    // A name two entities have is ambiguous, not unknown.
    c.append(&[
        json!({"stream": "person:other", "type": "entity.registered",
        "data": {"name": "Another Person", "aliases": ["Blinken"]}}),
    ])
    .ok();
    c.run(&["trip", "show", "Blinken"]).fails(
        2,
        "`Blinken` could be person:antony-blinken, person:other; pass one of these ids",
    );
}

/// With `COLUMNS` set, tables and the trip fit it, wrapping rather than dropping
/// words; JSON is never fitted; to a pipe without `COLUMNS`, lines are whole.
#[test]
fn tables_fit_columns_and_json_does_not_change() {
    let c = demo();
    let narrow = |args: &[&str]| {
        let out = c.command(args).env("COLUMNS", "80").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let views: [&[&str]; 7] = [
        &["timeline"],
        &["sales"],
        &["trip", "list"],
        &["trip", "show", TRIP],
        &["entity", "list"],
        &["entity", "show", "Blinken"],
        &["types"],
    ];
    for args in views {
        for line in narrow(args).lines() {
            assert!(line.chars().count() <= 80, "{args:?}: {line}");
        }
    }
    let words: Vec<String> = narrow(&["timeline"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for w in "The US Indo-Pacific strategy, a key element of Joe Biden's foreign policy, aims to counter China's growing influence".split(' ') {
        assert!(words.iter().any(|x| x == w), "{w} is lost");
    }
    for args in [["--json", "timeline"], ["--json", "sales"]] {
        assert_eq!(narrow(&args), c.run(&args).ok());
    }
    assert!(
        c.run(&["timeline"])
            .ok()
            .lines()
            .any(|l| l.chars().count() > 80)
    );
}

/// `--known-at DATE` answers from what had been published by then: the reported
/// clock, beside `--as-of` on the log's.
#[test]
fn known_at_answers_from_what_was_published_by_then() {
    let c = demo();
    let count = |args: &[&str]| json_of(&c, args).as_array().unwrap().len();
    let all = count(&["timeline"]);
    // Every fact of the article was published on 2025-01-04.
    assert_eq!(count(&["timeline", "--known-at", "2025-01-04"]), all);
    assert_eq!(count(&["timeline", "--known-at", "2025-01-03"]), 0);
    assert_eq!(
        json_of(&c, &["sales", "--known-at", "2025-01-03"])["sales"],
        json!([])
    );
    // The registry is not news: entities are there on any date.
    assert!(
        !json_of(&c, &["entity", "list", "--known-at", "2025-01-03"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let later = |published: &str| json!({"publisher": "Example Wire", "published": published});
    c.append(&[
        json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-06",
            "data": {"place": "country:KR"}, "source": later("2025-01-06")}),
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
            "data": {"target": SALE_ID, "reason": "a later report", "data": {"value": {"amount": 3_500_000_000_u64}}},
            "source": later("2025-01-07")}),
        json!({"stream": "note:undated", "type": "note.reported", "occurred": "2025-01-02",
            "data": {"summary": "Reported without a date, confirmed later", "entities": []}}),
    ])
    .ok();
    let undated = c.log().last().unwrap()["id"].as_str().unwrap().to_owned();
    c.append(&[
        json!({"stream": "note:undated", "type": "evidence.added", "occurred": "2025-01-05",
        "data": {"target": undated, "source": later("2025-01-05")}}),
    ])
    .ok();
    let status =
        |date: &str| json_of(&c, &["trip", "show", TRIP, "--known-at", date])["status"].clone();
    assert_eq!(status("2025-01-05"), "announced");
    assert_eq!(status("2025-01-06"), "underway");
    let amount = |date: &str| {
        json_of(&c, &["sales", "--known-at", date])["sales"][0]["value"]["amount"].clone()
    };
    assert_eq!(amount("2025-01-06"), 3_640_000_000_u64);
    assert_eq!(amount("2025-01-07"), 3_500_000_000_u64);
    // A report published before that one but filed after it: the log's views take the
    // last filed, the reported clock the last published by the date.
    c.append(&[
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
            "data": {"target": SALE_ID, "reason": "an earlier report, filed late", "data": {"value": {"amount": 3_600_000_000_u64}}},
            "source": later("2025-01-05")}),
    ])
    .ok();
    assert_eq!(
        json_of(&c, &["sales"])["sales"][0]["value"]["amount"],
        3_600_000_000_u64
    );
    assert_eq!(amount("2025-01-04"), 3_640_000_000_u64);
    assert_eq!(amount("2025-01-05"), 3_600_000_000_u64);
    assert_eq!(amount("2025-01-07"), 3_500_000_000_u64);
    // Known by the evidence's date, not before.
    let notes = |date: &str| count(&["timeline", "--stream", "note:undated", "--known-at", date]);
    assert_eq!(notes("2025-01-04"), 0);
    assert_eq!(notes("2025-01-05"), 1);
    // A fact whose own source came out after evidence of it: on the dates between,
    // only the evidence's source had reported it.
    c.append(&[
        json!({"stream": "note:late", "type": "note.reported", "occurred": "2025-01-02",
            "data": {"summary": "Reported late", "entities": []},
            "source": {"publisher": "Late Wire", "published": "2025-01-10", "quote": "late words"}}),
    ])
    .ok();
    let late = c.log().last().unwrap()["id"].as_str().unwrap().to_owned();
    c.append(&[json!({"stream": "note:late", "type": "evidence.added",
        "data": {"target": late, "source": later("2025-01-05")}})])
        .ok();
    let entry = |date: &str| {
        json_of(
            &c,
            &["timeline", "--stream", "note:late", "--known-at", date],
        )[0]
        .clone()
    };
    let between = entry("2025-01-06");
    assert_eq!(
        (
            between["sources"].clone(),
            between.get("source"),
            between.get("quote")
        ),
        (json!(1), None, None),
        "{between}"
    );
    assert_eq!(between["evidence"][0]["publisher"], "Example Wire");
    let after = entry("2025-01-10");
    assert_eq!(
        (
            after["sources"].clone(),
            after["source"]["publisher"].clone()
        ),
        (json!(2), json!("Late Wire"))
    );
    // A month takes everything published in it.
    assert_eq!(
        count(&["timeline", "--known-at", "2025-01"]),
        count(&["timeline"])
    );
    // With --as-of, only the log up to that position.
    assert_eq!(status("2025-01-06"), "underway");
    assert_eq!(
        json_of(
            &c,
            &[
                "trip",
                "show",
                TRIP,
                "--known-at",
                "2025-01-06",
                "--as-of",
                "43"
            ]
        )["status"],
        "announced"
    );
    c.run(&["timeline", "--known-at", "soon"])
        .fails(2, "--known-at");
    c.run(&["timeline", "--as-of", "2025-01-04"])
        .fails(2, "use --known-at 2025-01-04");
    // A correction filed after a retraction changes no current view, but on the
    // reported clock it counts from its publication, before the retraction's.
    c.append(&[
        json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.retracted",
        "data": {"target": SALE_ID, "reason": "no such sale"}, "source": later("2025-01-09")}),
    ])
    .ok();
    c.append(&[json!({"stream": "arms-sale:us-japan-2025-01", "type": "event.corrected",
            "data": {"target": SALE_ID, "reason": "a report of the 8th", "data": {"value": {"amount": 3_700_000_000_u64}}},
            "source": later("2025-01-08")})])
        .ok();
    assert_eq!(json_of(&c, &["sales"])["sales"], json!([]));
    assert_eq!(amount("2025-01-07"), 3_500_000_000_u64);
    assert_eq!(amount("2025-01-08"), 3_700_000_000_u64);
    assert_eq!(amount("2025-01-09"), Value::Null);
    // A correction checked against one filed before it, but published after it: in
    // the order of publication the first would leave a value without its currency, so
    // they apply as filed; on a date when only it was out, it is left out.
    c.append(&[
        json!({"stream": "deal:m", "type": "agreement.reported", "occurred": "2025-01-02",
        "data": {"parties": ["country:JP"], "kind": "investment", "status": "signed"},
        "source": later("2025-01-05")}),
    ])
    .ok();
    let deal = c.log().last().unwrap()["id"].as_str().unwrap().to_owned();
    let fix = |reason: &str, value: Value, published: &str| {
        json!({"stream": "deal:m", "type": "event.corrected",
            "data": {"target": deal, "reason": reason, "data": {"value": value}},
            "source": later(published)})
    };
    c.append(&[
        fix(
            "valued",
            json!({"amount": 1e9, "currency": "USD"}),
            "2025-01-09",
        ),
        fix("revalued", json!({"amount": 2e9}), "2025-01-08"),
    ])
    .ok();
    let headline = |date: &str| {
        json_of(&c, &["timeline", "--stream", "deal:m", "--known-at", date])[0]["headline"].clone()
    };
    assert_eq!(headline("2025-01-08"), "An investment of Japan was signed");
    assert_eq!(
        headline("2025-01-10"),
        "An investment of Japan worth $2 billion was signed"
    );
    // A third, published first and filed last, fits in neither order on the 8th (the
    // revaluation is in both before the value it patches is out): the revaluation is
    // left out, the third kept.
    c.append(&[json!({"stream": "deal:m", "type": "event.corrected",
            "data": {"target": deal, "reason": "in force", "data": {"status": "in_force"}},
            "source": later("2025-01-07")})])
        .ok();
    assert_eq!(
        headline("2025-01-08"),
        "An investment of Japan was in force"
    );
    assert_eq!(
        headline("2025-01-10"),
        "An investment of Japan worth $2 billion was in force"
    );
}

/// Facts that did not fit before: deals other than arms sales, who announced a sale,
/// planned meetings and agenda items with people and dates, unnamed speakers.
#[test]
fn deals_planned_meetings_and_unnamed_sources_fit() {
    let c = demo();
    let wire = json!({"publisher": "Example Wire", "published": "2025-01-07", "speaker": "a White House official"});
    c.append(&[
        json!({"stream": "deal:us-japan-investment-2025", "type": "agreement.reported", "occurred": "2025-01-07",
            "data": {"parties": ["country:US", "country:JP"], "kind": "investment deal", "status": "letter_of_intent",
                     "value": {"amount": 1_000_000_000_u64, "currency": "USD"}, "approximate": true},
            "source": wire}),
        json!({"stream": "arms-sale:us-korea-2025", "type": "arms_sale.announced", "occurred": "2025-01-06",
            "data": {"seller": "country:US", "buyer": "country:KR", "value": {"amount": 5e8, "currency": "USD"},
                     "items": ["radars"], "announced_by": "org:us-state-department"}}),
        json!({"stream": TRIP, "type": "trip.meeting_planned", "occurred": "2025-01-04",
            "data": {"place": "country:KR", "with": ["person:yoon-suk-yeol"], "topic": "the alliance", "dates": "2025-01-06"}}),
        json!({"stream": TRIP, "type": "trip.agenda_item_added", "occurred": "2025-01-04",
            "data": {"place": "country:JP", "topic": "Shipbuilding", "participants": ["country:JP"], "dates": "2025-01-07"}}),
    ])
    .ok();
    let headline = |stream: &str| {
        json_of(&c, &["timeline", "--stream", stream])
            .as_array()
            .unwrap()
            .last()
            .unwrap()["headline"]
            .clone()
    };
    assert_eq!(
        headline("deal:us-japan-investment-2025"),
        "An investment deal between the United States and Japan worth about $1 billion was agreed in a letter of intent"
    );
    assert_eq!(
        headline("arms-sale:us-korea-2025"),
        "An arms sale from the United States to South Korea worth $500 million was announced by the United States Department of State"
    );
    let deal = &json_of(
        &c,
        &["timeline", "--stream", "deal:us-japan-investment-2025"],
    )[0];
    assert_eq!(deal["source"]["speaker"], "a White House official");
    let tl = json_of(
        &c,
        &[
            "timeline",
            "--format",
            "timelinejs",
            "--stream",
            "deal:us-japan-investment-2025",
        ],
    );
    assert!(
        tl["events"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Source: a White House official, in Example Wire")
    );
    let trip = json_of(&c, &["trip", "show", TRIP]);
    assert_eq!(
        trip["stops"][0]["planned_meetings"][0]["with"],
        json!(["person:yoon-suk-yeol"])
    );
    assert_eq!(
        trip["stops"][0]["planned_meetings"][0]["occurred"],
        "2025-01-06"
    );
    let agenda = trip["stops"][1]["agenda"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(agenda["participants"], json!(["country:JP"]));
    assert_eq!(agenda["dates"], "2025-01-07");
    let text = c.run(&["trip", "show", TRIP]).ok();
    assert!(
        text.contains("to meet Yoon Suk Yeol on the alliance, 2025-01-06"),
        "{text}"
    );
    assert!(
        text.contains("agenda: Shipbuilding, with Japan, 2025-01-07"),
        "{text}"
    );
    // Yoon's timeline has the planned meeting.
    let yoon = json_of(
        &c,
        &[
            "timeline",
            "--entity",
            "Yoon Suk Yeol",
            "--type",
            "trip.meeting_planned",
        ],
    );
    assert_eq!(yoon.as_array().unwrap().len(), 1);
    c.append(&[
        json!({"stream": "deal:x", "type": "agreement.reported", "occurred": "2025",
        "data": {"parties": ["country:US"], "kind": "deal", "status": "rumoured"}}),
    ])
    .fails(2, "data.status");
}

/// A registered place finds the stop it is, a country finds its one place stop, and
/// two stops in one country stay apart.
#[test]
fn places_find_their_stops() {
    let c = demo();
    // Seoul is the stop "Seoul" in South Korea, not a second stop beside it.
    c.append(&[
        json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-06",
        "data": {"place": "place:seoul"}}),
    ])
    .ok();
    let trip = json_of(&c, &["trip", "show", TRIP]);
    assert_eq!(trip["stops"].as_array().unwrap().len(), 3);
    assert_eq!(trip["stops"][0]["status"], "visited");
    assert_eq!(trip["stops"][0]["arrived"], "2025-01-06");
    // Two stops in Italy, by their places.
    let t = "trip:g7-2025";
    c.append(&[
        person("x"),
        json!({"stream": "place:rome", "type": "entity.registered", "data": {"name": "Rome", "aliases": [], "country": "country:IT"}}),
        json!({"stream": "place:taormina", "type": "entity.registered", "data": {"name": "Taormina", "aliases": ["Sicily"], "country": "country:IT"}}),
        json!({"stream": t, "type": "trip.announced", "occurred": "2025-01-10",
            "data": {"traveler": "person:x", "stops": [{"place": "place:rome"}, {"place": "place:taormina"}]}}),
        json!({"stream": t, "type": "trip.agenda_item_added", "occurred": "2025-01-10",
            "data": {"place": "place:taormina", "topic": "G7 summit"}}),
        json!({"stream": t, "type": "trip.arrived", "occurred": "2025-01-11", "data": {"place": "place:rome"}}),
    ])
    .ok();
    let trip = json_of(&c, &["trip", "show", t]);
    let stops = trip["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[0]["status"], "visited");
    assert_eq!(stops[0]["agenda"], json!([]));
    assert_eq!(stops[1]["agenda"][0]["topic"], "G7 summit");
    // A country stands for the trip's stop there when the trip has exactly one.
    let one = "trip:rome-only";
    c.append(&[
        json!({"stream": one, "type": "trip.announced", "occurred": "2025-01-10",
            "data": {"traveler": "person:x", "stops": [{"place": "place:rome"}]}}),
        json!({"stream": one, "type": "trip.arrived", "occurred": "2025-01-11", "data": {"place": "country:IT"}}),
    ])
    .ok();
    let trip = json_of(&c, &["trip", "show", one]);
    assert_eq!(trip["stops"].as_array().unwrap().len(), 1);
    assert_eq!(trip["stops"][0]["status"], "visited");
}

/// An event at a place that is not a stop of its trip is refused through `append` and
/// `import` alike (exit 2, the stops listed, nothing written); a `trip.stop_added`
/// before it, earlier or in the same input, makes the place a stop.
#[test]
fn events_at_a_place_that_is_no_stop_are_refused_until_it_is_added() {
    let c = demo();
    let log = c.log();
    let arrival = json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-08",
        "data": {"place": "country:IL"}});
    let refused = c.append(std::slice::from_ref(&arrival)).fails(
        2,
        "line 1: field `data.place`: trip.arrived at country:IL: not a stop of `trip:blinken-final-tour-2025` (stops: Seoul (country:KR), Tokyo (country:JP), Paris (country:FR)); name one of these, or add it first with trip.stop_added",
    );
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    // A whole import is refused, the lines before the bad one too.
    let note = json!({"stream": "note:n", "type": "note.reported", "occurred": "2025-01-08",
        "data": {"summary": "a detour", "entities": ["country:IL"]}});
    let file = c.file("detour.jsonl", &format!("{note}\n{arrival}\n"));
    c.run(&["import", file.to_str().unwrap()])
        .fails(2, "line 2: field `data.place`: trip.arrived at country:IL");
    assert_eq!(c.log(), log, "nothing written");
    // Also when the trip's stops come in an earlier batch of the same import.
    let t = "trip:batches";
    let lines: Vec<Value> = vec![
        json!({"stream": t, "type": "trip.announced", "occurred": "2025-01-08",
            "data": {"traveler": "person:antony-blinken", "stops": [{"place": "country:DE", "city": "Berlin"}]},
            "source": {"publisher": "Wire"}}),
        json!({"stream": t, "type": "trip.stop_added", "occurred": "2025-01-08",
            "data": {"place": "country:PL", "city": "Warsaw"}}),
        note.clone(),
        json!({"stream": t, "type": "trip.arrived", "occurred": "2025-01-09", "data": {"place": "country:DE"}}),
        json!({"stream": t, "type": "trip.arrived", "occurred": "2025-01-10", "data": {"place": "country:PL"}}),
        json!({"stream": t, "type": "trip.arrived", "occurred": "2025-01-11", "data": {"place": "country:CZ"}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = c.file("batches.jsonl", &text);
    c.run(&["import", "--batch", "2", file.to_str().unwrap()]).fails(
        2,
        "line 6: field `data.place`: trip.arrived at country:CZ: not a stop of `trip:batches` (stops: Berlin (country:DE), Warsaw (country:PL))",
    );
    assert_eq!(c.log(), log, "nothing written");
    // Added in the same input, the stop takes the arrival.
    let added = json!({"stream": TRIP, "type": "trip.stop_added", "occurred": "2025-01-08",
        "data": {"place": "country:IL", "city": "Jerusalem", "after": "country:JP"}});
    let file = c.file("detour.jsonl", &format!("{note}\n{added}\n{arrival}\n"));
    c.run(&["import", file.to_str().unwrap()]).ok();
    assert_eq!(c.log().len(), log.len() + 3);
    let trip = json_of(&c, &["trip", "show", TRIP]);
    let cities = stop_fields(&trip, "city");
    assert_eq!(cities, ["Seoul", "Tokyo", "Jerusalem", "Paris"]);
    assert_eq!(trip["stops"][2]["status"], "visited");
    // Once added, later events there are accepted on their own.
    c.append(&[
        json!({"stream": TRIP, "type": "trip.departed", "occurred": "2025-01-09",
        "data": {"place": "country:IL"}}),
    ])
    .ok();
}

/// Two stops in one country, named by their cities: a registered place is the stop of
/// its city, the announcement keeps both, and a correction of the announcement that
/// drops one makes an arrival there a refusal.
#[test]
fn two_cities_of_one_country_are_two_stops() {
    let c = Chronicle::new();
    let announced = "0194210c-0000-7000-8000-0000000000c1";
    c.append(&[
        person("x"),
        json!({"stream": "place:jerusalem", "type": "entity.registered",
            "data": {"name": "Jerusalem", "aliases": [], "country": "country:IL"}}),
        json!({"id": announced, "stream": "trip:mideast", "type": "trip.announced", "occurred": "2025-01-10",
            "data": {"traveler": "person:x", "stops": [{"place": "country:IL", "city": "Tel Aviv"},
                                                        {"place": "country:IL", "city": "Jerusalem"}]}}),
        json!({"stream": "trip:mideast", "type": "trip.arrived", "occurred": "2025-01-11",
            "data": {"place": "place:jerusalem"}}),
    ])
    .ok();
    let trip = json_of(&c, &["trip", "show", "trip:mideast"]);
    let stops = trip["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2, "{trip}");
    assert_eq!(
        (&stops[0]["city"], &stops[0]["status"]),
        (&json!("Tel Aviv"), &json!("planned"))
    );
    assert_eq!(
        (&stops[1]["city"], &stops[1]["status"]),
        (&json!("Jerusalem"), &json!("visited"))
    );
    c.append(
        &[json!({"stream": "trip:mideast", "type": "event.corrected",
            "data": {"target": announced, "reason": "Jerusalem only",
                     "data": {"stops": [{"place": "country:IL", "city": "Jerusalem"}]}}})],
    )
    .ok();
    let log = c.log();
    c.append(&[
        json!({"stream": "trip:mideast", "type": "trip.arrived", "occurred": "2025-01-12",
            "data": {"place": "place:tel-aviv"}}),
    ])
    .fails(2, "entity `place:tel-aviv` is not registered");
    c.append(&[
        json!({"stream": "place:tel-aviv", "type": "entity.registered",
            "data": {"name": "Tel Aviv", "aliases": [], "country": "country:IL"}}),
        json!({"stream": "trip:mideast", "type": "trip.arrived", "occurred": "2025-01-12",
            "data": {"place": "place:tel-aviv"}}),
    ])
    .fails(
        2,
        "line 2: field `data.place`: trip.arrived at place:tel-aviv: not a stop of `trip:mideast` (stops: Jerusalem (country:IL))",
    );
    assert_eq!(c.log(), log);
}

/// `timeline --entity Seoul`: the facts at the trip's stop in Seoul, which name it by its
/// country and city, for a registered place and for a city that is only a stop's text.
#[test]
fn a_city_has_the_timeline_of_its_stops() {
    let c = demo();
    c.append(&[
        json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-06", "data": {"place": "country:KR"}}),
        json!({"stream": TRIP, "type": "trip.arrived", "occurred": "2025-01-07", "data": {"place": "country:JP"}}),
    ])
    .ok();
    let lines = |entity: &str| -> Vec<(String, String)> {
        json_of(&c, &["timeline", "--entity", entity])
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().into(),
                    e["occurred"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    // Its own count is of the events that name it: said, with where the rest are.
    let shown = c.run(&["entity", "show", "Seoul"]).ok();
    assert!(
        shown.contains("events:      1 naming it; its timeline adds the trips' stops in it"),
        "{shown}"
    );
    let seoul = lines("Seoul");
    let expected = [
        ("trip.announced", "2024/2025-01-04"),
        ("trip.agenda_item_added", "2024/2025-01-04"),
        ("trip.arrived", "2025-01-06"),
    ];
    assert_eq!(
        seoul,
        expected.map(|(t, o)| (t.to_owned(), o.to_owned())),
        "{seoul:?}"
    );
    assert_eq!(lines("place:seoul"), seoul);
    // Each names its traveler among its entities, as the traveler's timeline has it.
    for entry in json_of(&c, &["timeline", "--entity", "Seoul"])
        .as_array()
        .unwrap()
    {
        let entities = entry["entities"].as_array().unwrap();
        assert!(
            entities.contains(&json!("person:antony-blinken")),
            "{entry}"
        );
    }
    let tokyo: Vec<String> = lines("Tokyo").into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        tokyo,
        [
            "trip.announced",
            "trip.agenda_item_added",
            "trip.agenda_item_added",
            "trip.arrived"
        ]
    );
    // A city no entity is named: the stops with that city, as `place:<its slug>`.
    c.append(&[
        json!({"stream": "trip:mideast", "type": "trip.announced", "occurred": "2025-01-10",
            "data": {"traveler": "person:antony-blinken", "stops": [{"place": "country:IL", "city": "Tel Aviv"},
                                                                   {"place": "country:IL", "city": "Jerusalem"}]}}),
        json!({"stream": "trip:mideast", "type": "trip.meeting_held", "occurred": "2025-01-11",
            "data": {"place": "country:IL", "with": ["person:antony-blinken"]}}),
        json!({"stream": "trip:mideast", "type": "trip.stop_added", "occurred": "2025-01-12",
            "data": {"place": "country:JO", "city": "Amman"}}),
    ])
    .ok();
    let tel_aviv = lines("tel aviv");
    assert_eq!(
        tel_aviv,
        [
            ("trip.announced".to_owned(), "2025-01-10".to_owned()),
            ("trip.meeting_held".to_owned(), "2025-01-11".to_owned())
        ]
    );
    assert_eq!(lines("place:tel-aviv"), tel_aviv);
    assert_eq!(
        lines("Amman"),
        [("trip.stop_added".to_owned(), "2025-01-12".to_owned())]
    );
    // The meeting at country:IL is at the first stop there, not at Jerusalem's.
    assert_eq!(lines("Jerusalem").len(), 1);
    c.run(&["timeline", "--entity", "Atlantis"])
        .fails(2, "no entity is named or aliased `Atlantis`");
}

#[test]
fn an_entitys_first_and_last_follow_corrections_and_skip_retractions() {
    let c = Chronicle::new();
    let note = |id: &str, occurred: &str| {
        json!({"id": id, "stream": "note:n", "type": "note.reported", "occurred": occurred,
            "data": {"summary": "a note", "entities": ["person:ends"]}})
    };
    let (early, middle, late) = (
        "01942100-0000-7000-8000-00000000e001",
        "01942100-0000-7000-8000-00000000e002",
        "01942100-0000-7000-8000-00000000e003",
    );
    c.append(&[
        person("ends"),
        note(middle, "2024-06"),
        note(early, "2024-01-10"),
        note(late, "2024-12-31"),
    ])
    .ok();
    let ends = |c: &Chronicle, extra: &[&str]| {
        let mut args = vec!["entity", "show", "person:ends"];
        args.extend_from_slice(extra);
        let e = json_of(c, &args);
        (e["first"].clone(), e["last"].clone(), e["events"].clone())
    };
    assert_eq!(
        ends(&c, &[]),
        (json!("2024-01-10"), json!("2024-12-31"), json!(4))
    );
    let as_of = c.log().len().to_string();
    c.append(&[
        json!({"stream": "note:n", "type": "event.retracted", "occurred": "2025-01",
            "data": {"target": early, "reason": "not so"}}),
        json!({"stream": "note:n", "type": "event.corrected", "occurred": "2025-01",
            "data": {"target": late, "reason": "a later date", "occurred": "2025-02-01"}}),
    ])
    .ok();
    assert_eq!(
        ends(&c, &[]),
        (json!("2024-06"), json!("2025-02-01"), json!(3))
    );
    assert_eq!(
        ends(&c, &["--as-of", &as_of]),
        (json!("2024-01-10"), json!("2024-12-31"), json!(4))
    );
    c.run(&["replay"]).ok();
    assert_eq!(
        ends(&c, &[]),
        (json!("2024-06"), json!("2025-02-01"), json!(3))
    );
    c.run(&["verify"]).ok();
}

/// A timeline entry's `entities` are exactly those whose timelines have it (a place's
/// also has the facts at the stops it stands for), retracted entries included: also for
/// a trip announced again with another traveler after some of its facts (those are on
/// both travelers' timelines, and a fact retracted after that stays on both), and for a
/// trip's fact filed before the trip was announced (on the traveler's, once announced).
#[test]
fn an_entrys_entities_are_those_whose_timelines_have_it() {
    let c = demo();
    let ev = |t: &str, ty: &str, occurred: &str, data: Value| json!({"stream": t, "type": ty, "occurred": occurred, "data": data});
    let berlin = json!([{"place": "country:DE", "city": "Berlin"}]);
    c.append(&[
        person("first"),
        person("second"),
        ev(
            "trip:swap",
            "trip.announced",
            "2025-03-01",
            json!({"traveler": "person:first", "stops": berlin}),
        ),
        ev(
            "trip:swap",
            "trip.arrived",
            "2025-03-02",
            json!({"place": "country:DE"}),
        ),
        ev(
            "trip:swap",
            "trip.meeting_held",
            "2025-03-02",
            json!({"place": "country:DE", "with": ["person:first"], "topic": "trade"}),
        ),
        ev(
            "trip:swap",
            "trip.announced",
            "2025-03-03",
            json!({"traveler": "person:second", "stops": berlin}),
        ),
        ev(
            "trip:swap",
            "trip.departed",
            "2025-03-04",
            json!({"place": "country:DE"}),
        ),
        ev("trip:early", "trip.started", "2025-04-01", json!({})),
        ev(
            "trip:early",
            "trip.announced",
            "2025-04-02",
            json!({"traveler": "person:second", "stops": berlin}),
        ),
    ])
    .ok();
    let log = c.log();
    let arrival = log
        .iter()
        .find(|e| e["stream"] == "trip:swap" && e["type"] == "trip.arrived")
        .unwrap();
    c.append(&[
        json!({"stream": "trip:swap", "type": "event.retracted", "occurred": "2025-03-05",
        "data": {"target": arrival["id"], "reason": "the source withdrew it"}}),
    ])
    .ok();
    let all = json_of(&c, &["timeline", "--include-retracted", "--limit", "10000"]);
    let entries = all.as_array().unwrap();
    let entities = json_of(&c, &["entity", "list"]);
    let mut wrong = Vec::new();
    for entity in entities.as_array().unwrap() {
        let entity = entity["id"].as_str().unwrap();
        let own = ids(&json_of(
            &c,
            &[
                "timeline",
                "--entity",
                entity,
                "--include-retracted",
                "--limit",
                "10000",
            ],
        ));
        for entry in entries {
            let id = entry["id"].as_str().unwrap().to_owned();
            let listed = entry["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == entity);
            let on_its_timeline = own.contains(&id);
            if listed && !on_its_timeline
                || on_its_timeline && !listed && !entity.starts_with("place:")
            {
                wrong.push(format!(
                    "{entity}: entry {id} ({}) listed {listed}, on its timeline {on_its_timeline}",
                    entry["type"]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let of = |stream: &str, ty: &str| {
        let entry = entries
            .iter()
            .find(|e| e["stream"] == stream && e["type"] == ty)
            .unwrap();
        entry["entities"].clone()
    };
    assert_eq!(
        of("trip:swap", "trip.arrived"),
        json!(["country:DE", "person:first", "person:second"])
    );
    assert_eq!(
        of("trip:swap", "trip.departed"),
        json!(["country:DE", "person:first", "person:second"])
    );
    assert_eq!(of("trip:early", "trip.started"), json!(["person:second"]));
}

/// A correction of a fact's date drops the words its source dated it with: they were
/// of the old date. Before the correction (`--as-of`) they are still there.
#[test]
fn a_corrected_date_drops_the_words_of_the_old_one() {
    let c = demo();
    let funeral = |args: &[&str]| {
        let mut all = vec!["timeline", "--stream", "funeral:jimmy-carter-2025"];
        all.extend_from_slice(args);
        json_of(&c, &all)[0].clone()
    };
    let before = funeral(&[]);
    assert_eq!(before["occurred_text"], "later in the week", "{before}");
    let head = c.log().len().to_string();
    c.run(&[
        "append",
        "--stream",
        "funeral:jimmy-carter-2025",
        "--type",
        "event.corrected",
        "--data",
        r#"{"target": "01942100-0000-7000-8000-000005000001", "reason": "the date was set", "occurred": "2025-01-09"}"#,
    ])
    .ok();
    let after = funeral(&[]);
    assert_eq!(after["occurred"], "2025-01-09", "{after}");
    assert!(after["occurred_text"].is_null(), "{after}");
    // The correction names the words it dropped among the values it changed.
    assert_eq!(
        after["changes"],
        json!([
            {"field": "occurred", "before": "2025-01-06/2025-01-11", "after": "2025-01-09"},
            {"field": "occurred_text", "before": "later in the week", "after": null}
        ]),
        "{after}"
    );
    assert_eq!(funeral(&["--as-of", &head]), before);
    c.run(&["verify"]).ok();
}

/// A log that took a tag with white space at its ends (before that was refused) keeps
/// it, and the tag filter finds it without the white space, in any case.
#[test]
fn a_tag_with_white_space_at_its_ends_from_an_older_log_is_found() {
    let restored =
        demo().restored_with(&[json!({"stream": "note:padded", "type": "note.reported",
        "occurred": "2025-02-01", "data": {"summary": "a note", "entities": ["country:JP"]},
        "tags": [" Padded "]})]);
    for tag in ["padded", " PADDED "] {
        let found = json_of(&restored, &["timeline", "--tag", tag]);
        assert_eq!(found.as_array().unwrap().len(), 1, "{tag:?}: {found}");
        assert_eq!(found[0]["tags"], json!([" Padded "]), "kept as written");
    }
    // A new event with one is refused, naming the tag to write.
    restored
        .append(&[
            json!({"stream": "note:new", "type": "note.reported", "occurred": "2025-02-02",
            "data": {"summary": "b", "entities": ["country:JP"]}, "tags": ["ok", " Padded "]}),
        ])
        .fails(
            2,
            "field `tags[1]`: a tag has no white space at its ends; write `Padded`",
        );
}

/// A log that took an entity's event with a date (before that was refused) keeps it,
/// off the timeline: registrations are not timeline entries, whatever they carry.
#[test]
fn an_entity_event_with_a_date_is_not_on_the_timeline() {
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let older = vec![
        json!({"stream": "person:jane-doe", "type": "entity.registered", "occurred": "2025-02-01",
               "occurred_text": "last week", "data": {"name": "Jane Doe", "aliases": []}}),
        json!({"stream": "person:jane-doe", "type": "entity.alias_added", "occurred": "2025-02-02",
               "data": {"alias": "J. Doe"}}),
    ];
    let restored = c.restored_with(&older);
    let entries = json_of(&restored, &["timeline", "--from", "2025-02-01"]);
    assert_eq!(entries, json!([]), "{entries}");
    let jane = json_of(&restored, &["entity", "show", "J. Doe"]);
    assert_eq!(jane["name"], "Jane Doe", "{jane}");
    restored.run(&["verify"]).ok();
}

/// The timeline page reads parts of documents (an entity's name, a trip's travelers)
/// and reads ids in them without checking them again: what it reads must be what the
/// whole documents hold, and a fact or an entity read that way must write back the
/// same bytes.
#[test]
fn documents_read_in_part_or_unchecked_agree_with_what_was_written() {
    use chronicle::model::{EntityId, StreamId};
    use chronicle::projection::{DocsRead, Fact, decode, entities, trips};
    let c = demo();
    let store = chronicle::store::SledStore::open(&c.db()).unwrap();
    let views = store.live_views().unwrap();
    let keys = |prefix: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        let found: Vec<_> = views
            .scan(prefix.as_bytes(), None, false)
            .map(Result::unwrap)
            .collect();
        assert!(!found.is_empty(), "no documents under {prefix}");
        found
    };
    for (k, v) in keys("facts/") {
        let fact: Fact = decode(&k, &v).unwrap();
        assert_eq!(serde_json::to_vec(&fact).unwrap(), v, "{fact:?}");
    }
    for (k, v) in keys(entities::DOCS) {
        let doc: entities::EntityDoc = decode(&k, &v).unwrap();
        assert_eq!(serde_json::to_vec(&doc).unwrap(), v, "{doc:?}");
        EntityId::parse(doc.id.as_str()).unwrap();
        let part = entities::name_doc(&views, &doc.id).unwrap().unwrap();
        assert_eq!((part.name, part.registered), (doc.name, doc.registered));
    }
    let mut travelers = 0;
    for (k, _) in keys(trips::DOCS) {
        let stream = StreamId::parse(std::str::from_utf8(&k[trips::DOCS.len()..]).unwrap());
        let stream = stream.unwrap();
        let whole = trips::get(&views, &stream).unwrap().unwrap();
        let part = trips::travelers(&views, &stream).unwrap().unwrap();
        travelers += part.len();
        assert_eq!(part, whole.travelers, "{stream}");
    }
    assert!(travelers > 0, "the demo's trips have travelers");
}

/// Who a trip's facts and the statements about a trip or sale involve follows the
/// trip's traveler and the sale's buyer as they stand, whatever the order they were
/// filed in: a correction of the traveler (or buyer) moves the trip's arrival and the
/// statements filed before it, and both stores end with the same timelines and counts.
#[test]
fn a_corrected_traveler_or_buyer_takes_the_facts_about_them_along() {
    let trip = |traveler: &str| {
        json!({"stream": "trip:t", "type": "trip.announced", "occurred": "2025-02-01",
               "data": {"traveler": traveler, "stops": [{"place": "country:JP"}]}})
    };
    let sale = |buyer: &str| {
        json!({"stream": "arms-sale:s", "type": "arms_sale.announced", "occurred": "2025-02-02",
               "data": {"seller": "country:US", "buyer": buyer, "value": {"amount": 1e9, "currency": "USD"}, "items": ["radars"]}})
    };
    let after_them = [
        json!({"stream": "trip:t", "type": "trip.arrived", "occurred": "2025-02-03", "data": {"place": "country:JP"}}),
        json!({"stream": "statement:cn", "type": "statement.issued", "occurred": "2025-02-04",
               "data": {"speaker": "country:CN", "stance": "opposes", "about": ["trip:t", "arms-sale:s"], "summary": "Beijing objected"}}),
    ];
    // Filed with the wrong traveler and buyer, then corrected.
    let corrected = Chronicle::new();
    corrected.append(&[person("a"), person("b")]).ok();
    corrected
        .append(&[trip("person:a"), sale("country:KR")])
        .ok();
    corrected.append(&after_them).ok();
    // A statement filed in the trip's stream about something else involves what it is
    // about, not the traveler; the departure is retracted before the correction.
    let aside = json!({"stream": "trip:t", "type": "statement.issued", "occurred": "2025-02-05",
        "data": {"speaker": "country:FR", "stance": "opposes", "about": ["country:CN"], "summary": "Paris objected to Beijing"}});
    let departed = json!({"stream": "trip:t", "type": "trip.departed", "occurred": "2025-02-06", "data": {"place": "country:JP"}});
    let retract = |c: &Chronicle| {
        let log = c.log();
        let departure = log.iter().find(|e| e["type"] == "trip.departed").unwrap();
        c.append(&[json!({"stream": "trip:t", "type": "event.retracted",
            "data": {"target": departure["id"], "reason": "did not happen"}})])
            .ok();
    };
    corrected.append(&[aside.clone(), departed.clone()]).ok();
    retract(&corrected);
    let log = corrected.log();
    let fix = |n: usize, field: &str, value: &str| {
        json!({"stream": log[n]["stream"], "type": "event.corrected",
               "data": {"target": log[n]["id"], "reason": "misreported", "data": {field: value}}})
    };
    corrected
        .append(&[
            fix(2, "traveler", "person:b"),
            fix(3, "buyer", "country:JP"),
        ])
        .ok();
    // Filed right the first time.
    let right = Chronicle::new();
    right.append(&[person("a"), person("b")]).ok();
    right.append(&[trip("person:b"), sale("country:JP")]).ok();
    right.append(&after_them).ok();
    right.append(&[aside, departed]).ok();
    retract(&right);

    let on_timeline = |c: &Chronicle, entity: &str| -> Vec<String> {
        let timeline = json_of(c, &["timeline", "--entity", entity]);
        let entries = timeline.as_array().unwrap().iter();
        entries
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let count =
        |c: &Chronicle, entity: &str| json_of(c, &["entity", "show", entity])["events"].clone();
    for c in [&corrected, &right] {
        assert_eq!(
            on_timeline(c, "person:b"),
            ["trip.announced", "trip.arrived", "statement.issued"]
        );
        assert_eq!(on_timeline(c, "person:a"), Vec::<String>::new());
        assert_eq!(
            on_timeline(c, "country:JP"),
            [
                "trip.announced",
                "arms_sale.announced",
                "trip.arrived",
                "statement.issued"
            ]
        );
        assert_eq!(on_timeline(c, "country:KR"), Vec::<String>::new());
        assert_eq!(
            count(c, "person:b"),
            4,
            "its registration and the three facts"
        );
        assert_eq!(count(c, "person:a"), 1, "its registration only");
        // A rebuild gives the same views, and verify finds nothing amiss.
        json_of(c, &["replay"]);
        assert_eq!(on_timeline(c, "person:b").len(), 3);
        c.run(&["verify"]).ok();
        // The retracted departure is on the timeline of the traveler its line names.
        let all = json_of(
            c,
            &["timeline", "--entity", "person:b", "--include-retracted"],
        );
        let departure = all
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "trip.departed");
        assert!(
            departure.is_some_and(|d| d["summary"].as_str().unwrap().starts_with("B left")),
            "{all}"
        );
        let all = json_of(
            c,
            &["timeline", "--entity", "person:a", "--include-retracted"],
        );
        assert_eq!(all, json!([]));
    }
    // The corrections name who they changed.
    let trip_shown = corrected.run(&["trip", "show", "trip:t"]).ok();
    assert!(
        trip_shown.contains("traveler: a (person:a) → b (person:b)"),
        "{trip_shown}"
    );
    let sales_shown = corrected.run(&["sales"]).ok();
    assert!(
        sales_shown.contains("buyer: South Korea (country:KR) → Japan (country:JP)"),
        "{sales_shown}"
    );
    // As of the position before the corrections, the corrected store shows the facts
    // where they were.
    let as_of = json_of(
        &corrected,
        &["timeline", "--entity", "person:a", "--as-of", "6"],
    );
    assert_eq!(as_of.as_array().unwrap().len(), 3, "{as_of}");
}

#[test]
fn entity_show_lists_the_corrections_of_its_own_current_facts() {
    let c = Chronicle::new();
    c.append(&[
        json!({"stream": "person:x", "type": "entity.registered",
               "data": {"name": "Jon Smith", "aliases": []}}),
        json!({"stream": "person:x", "type": "entity.alias_added", "data": {"alias": "Smithy"}}),
    ])
    .ok();
    let log = c.log();
    let fix = |n: usize, data: Value| {
        json!({"stream": "person:x", "type": "event.corrected",
               "data": {"target": log[n]["id"], "reason": "misspelled", "data": data}})
    };
    c.append(&[fix(0, json!({"name": "John Smith"}))]).ok();
    c.append(&[fix(1, json!({"alias": "Smitty"}))]).ok();
    let changed = |view: &Value| -> Vec<String> {
        let list = view["corrections"].as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|c| format!("{} {}", c["type"], c["changes"][0]["before"]))
            .collect()
    };
    let shown = json_of(&c, &["entity", "show", "person:x"]);
    assert_eq!(
        changed(&shown),
        [
            r#""entity.registered" "Jon Smith""#,
            r#""entity.alias_added" "Smithy""#
        ]
    );
    // As of before the second correction, only the first; a list carries none.
    let before = json_of(&c, &["entity", "show", "person:x", "--as-of", "3"]);
    assert_eq!(changed(&before), [r#""entity.registered" "Jon Smith""#]);
    let list = json_of(&c, &["entity", "list"]);
    assert!(list.to_string().contains("John Smith"), "{list}");
    assert!(!list.to_string().contains("corrections"), "{list}");
    // A retracted alias takes its corrections with it.
    c.append(&[json!({"stream": "person:x", "type": "event.retracted",
                      "data": {"target": log[1]["id"], "reason": "never used"}})])
        .ok();
    let shown = json_of(&c, &["entity", "show", "person:x"]);
    assert_eq!(changed(&shown), [r#""entity.registered" "Jon Smith""#]);
    assert!(
        c.run(&["entity", "show", "person:x"])
            .ok()
            .contains("name: Jon Smith → John Smith")
    );
}
