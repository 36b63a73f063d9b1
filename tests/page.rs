//! The web page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver) against a real `chronicle serve` on the demo store.
//!
//! On a machine without Chromium and chromedriver the test prints one line saying it
//! skipped; with `CHRONICLE_BROWSER_TESTS=1` (which `.ci/run` sets after installing
//! them) a missing browser fails it instead. Screenshots of every view are saved under
//! `target/tmp/page-screenshots/` (or `$CHRONICLE_SCREENSHOTS`); the README's come from
//! there.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{Chronicle, Serve};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use webdriver::{ARROW_LEFT, Browser, ENTER};

const SALE: &str = "arms-sale:us-japan-2025-01";
const TRIP: &str = "trip:blinken-final-tour-2025";
/// Sales whose amounts words would round, and a stream that is not a trip.
const SMALL_SALE: &str = "arms-sale:ug-ss-2025";
const LARGE_SALE: &str = "arms-sale:ug-ss-helicopters-2025";
const YUAN_SALE: &str = "arms-sale:cn-sd-2025";

/// How long a view may take to draw after a navigation (generous: debug build, two
/// shared cores).
const DRAW: Duration = Duration::from_secs(20);

/// Notes appended at the end: more than one page of the server's timeline answers.
const NOTES: usize = 10_050;

/// What the issue promises for live updates.
const LIVE: Duration = Duration::from_secs(2);

/// The browser and chromedriver, or `None` after printing why the test is skipped.
fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var("CHRONICLE_BROWSER_TESTS").is_ok_and(|v| v == "1");
    match webdriver::find_browser() {
        Ok(found) => Some(found),
        Err(why) if required => {
            panic!("CHRONICLE_BROWSER_TESTS=1 but the browser tests cannot run: {why}")
        }
        Err(why) => {
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "tests/page.rs: skipping the browser tests: {why}; install Debian's chromium and chromium-driver to run them (.ci/run does, and sets CHRONICLE_BROWSER_TESTS=1 to require them)"
            );
            None
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("CHRONICLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client of the server for the test's own writes (no browser, no `Origin`).
struct Api {
    agent: ureq::Agent,
    url: String,
}

impl Api {
    fn new(url: &str) -> Api {
        Api {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            url: url.to_owned(),
        }
    }

    fn get(&self, path: &str) -> Value {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.body_mut().read_json().unwrap()
    }

    /// Appends one event and returns its position once the server acknowledged it.
    fn append(&self, event: Value) -> u64 {
        let mut r = self
            .agent
            .post(format!("{}/events", self.url))
            .send_json(&event)
            .unwrap();
        let status = r.status();
        let body: Value = r.body_mut().read_json().unwrap();
        assert_eq!(status, 201, "{body}");
        body["events"][0]["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("a position in {body}"))
    }
}

/// Whether the view finished drawing (the page marks it on `<html>`).
const READY: &str = "return document.documentElement.dataset.state === 'ready'";

/// Waits until the page's text contains every one of `texts`; returns how long it took.
fn wait_text(browser: &Browser, what: &str, limit: Duration, texts: &[&str]) -> Duration {
    let script = format!(
        "return document.documentElement.dataset.state === 'ready' && {}.every(t => document.body.innerText.includes(t))",
        json!(texts)
    );
    browser.wait_for(what, limit, &script).1
}

/// Opens a view by its address, as a user following a link would, and waits for it.
fn open(browser: &Browser, url: &str, route: &str) {
    browser.eval(
        "document.documentElement.dataset.state = 'navigating'",
        json!([]),
    );
    browser.goto(&format!("{url}/#/{route}"));
    browser.wait_for(&format!("#/{route} to draw"), DRAW, READY);
}

/// Resizes the window to the page's height (within limits) and saves a screenshot.
fn shoot(browser: &Browser, dir: &std::path::Path, name: &str, width: u32) {
    let height = browser
        .eval(
            "return Math.ceil(document.documentElement.scrollHeight)",
            json!([]),
        )
        .as_u64()
        .unwrap_or(900);
    let height = u32::try_from(height).unwrap_or(900).clamp(600, 2200);
    browser.resize(width, height);
    browser.eval("window.scrollTo(0, 0)", json!([]));
    std::thread::sleep(Duration::from_millis(300));
    browser.screenshot(&dir.join(name));
}

fn sale(
    stream: &str,
    occurred: &str,
    seller: &str,
    buyer: &str,
    amount: Value,
    currency: &str,
    item: &str,
) -> Value {
    json!({
        "stream": stream, "type": "arms_sale.announced", "occurred": occurred,
        "data": {"seller": seller, "buyer": buyer, "value": {"amount": amount, "currency": currency},
                 "items": [item]}
    })
}

/// Facts of a log written before a new event's source had to have a web address: a
/// sale whose amount words would round, with a `javascript:` source, and a note on it
/// with an `ftp:` one.
fn older_facts() -> Vec<Value> {
    let mut small = sale(
        SMALL_SALE,
        "2025-04-16",
        "country:UG",
        "country:SS",
        json!(999.999),
        "USD",
        "spare parts",
    );
    small["source"] =
        json!({"publisher": "Wire", "title": "Spare parts notice", "url": "javascript:alert(2)"});
    vec![
        small,
        json!({
            "stream": SMALL_SALE, "type": "note.reported", "occurred": "2025-04-18",
            "data": {"summary": "Maintenance was agreed", "entities": ["country:SS"]},
            "source": {"publisher": "Wire", "title": "Maintenance note", "url": "ftp://x y"}
        }),
    ]
}

/// Facts added to the demo after those: sales whose amounts words would round, a
/// planned meeting, and the trip's start (a day after the one announced).
fn later_facts() -> Vec<Value> {
    let mut large = sale(
        LARGE_SALE,
        "2025-04-17",
        "country:UG",
        "country:SS",
        json!(11_437_250_000u64),
        "USD",
        "helicopters",
    );
    large["source"] = json!({"publisher": "Wire", "title": "Helicopter sale notice", "url": "https://example.org/helicopters"});
    vec![
        large,
        sale(
            YUAN_SALE,
            "2025-04",
            "country:CN",
            "country:SD",
            json!(1_250_000_000.5),
            "CNY",
            "drones",
        ),
        json!({
            "stream": TRIP, "type": "trip.meeting_planned", "occurred": "2025-01-05",
            "data": {"place": "country:KR", "with": ["person:yoon-suk-yeol", "person:joe-biden"],
                     "topic": "Alliance talks", "dates": "2025-01-06"}
        }),
        json!({"stream": TRIP, "type": "trip.started", "occurred": "2025-01-06", "data": {}}),
    ]
}

#[test]
fn the_page_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_or_skip() else {
        return;
    };
    let c = Chronicle::new();
    c.run(&["demo"]).ok();
    let serve = Serve::start(&c, &[]);
    let api = Api::new(&serve.url);
    let url = serve.url.clone();
    let shots = screenshots();
    let browser = Browser::start(&chromium, &chromedriver, 1280, 900);

    // The trip list: the demo trip with its route.
    open(&browser, &url, "trips");
    wait_text(
        &browser,
        "the trip list",
        DRAW,
        &["Seoul → Tokyo → Paris", "Antony Blinken"],
    );
    shoot(&browser, &shots, "trips.png", 1280);

    // The trip page, reached from the list with the keyboard (Enter on the link).
    let link = browser.find(&format!("a[data-key='trip:{TRIP}']"));
    browser.keys(&link, ENTER);
    wait_text(
        &browser,
        "the trip page",
        DRAW,
        &[
            "Seoul → Tokyo → Paris",
            "Itinerary",
            "US Indo-Pacific strategy",
            "Strength of the US–South Korea alliance",
            "Arms sale to Japan",
            "European security, with particular attention on Ukraine",
            "Planned return",
            "Washington, D.C.",
            "and sources (",
            "Beginning this Sunday, Blinken will visit South Korea, Japan, and France",
        ],
    );
    let stops = browser.eval(
        "return [...document.querySelectorAll('.stops h3')].map(h => h.textContent)",
        json!([]),
    );
    let stops: Vec<&str> = stops
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(stops.len(), 3, "{stops:?}");
    for (stop, city) in stops.iter().zip(["1. Seoul", "2. Tokyo", "3. Paris"]) {
        assert!(stop.starts_with(city), "{stops:?}");
        assert!(stop.contains("planned"), "{stops:?}");
    }
    assert!(
        browser
            .eval("return location.hash", json!([]))
            .as_str()
            .unwrap()
            .contains(TRIP)
    );
    shoot(&browser, &shots, "trip.png", 1280);
    // The same page on a phone-sized window: nothing wider than the screen.
    browser.resize(390, 844);
    std::thread::sleep(Duration::from_millis(300));
    let overflow = browser.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        json!([]),
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than a phone by {overflow}px"
    );
    shoot(&browser, &shots, "trip-phone.png", 390);
    browser.resize(1280, 900);

    // Japan's timeline: the sale and China's objection, drawn on the chart.
    open(&browser, &url, "timeline/entity/country:JP");
    let chart_has = |texts: &[&str]| {
        format!(
            "return document.documentElement.dataset.state === 'ready' && (() => {{ const t = [...document.querySelectorAll('#tl-chart .vis-item')].map(i => i.textContent).join('\\n'); return {}.every(x => t.includes(x)); }})()",
            json!(texts)
        )
    };
    browser.wait_for(
        "the sale and China's objection on Japan's timeline",
        DRAW,
        &chart_has(&[
            "An arms sale from the United States to Japan worth about $3.64 billion was announced",
            "China expressed strong opposition to the arms sale",
        ]),
    );
    // Uncertain and approximate dates are ranges, not points.
    let ranges = browser.eval(
        "return document.querySelectorAll('#tl-chart .vis-item.vis-range.uncertain').length",
        json!([]),
    );
    assert!(ranges.as_u64().unwrap() > 0, "no ranges drawn");

    // A fact appended through the HTTP API appears without a reload, within 2 s.
    let before_append = browser.eval("return performance.timeOrigin", json!([]));
    let sent = Instant::now();
    api.append(json!({
        "stream": SALE, "type": "note.reported", "occurred": "2025-01-05",
        "data": {"summary": "Tokyo welcomed the first delivery schedule", "entities": ["country:JP"]},
        "source": {"publisher": "Test wire", "title": "Delivery schedule", "published": "2025-01-05",
                   "url": "https://example.org/delivery", "quote": "the first deliveries are scheduled"}
    }));
    browser.wait_for(
        "the appended fact on the open timeline",
        LIVE,
        &chart_has(&["Tokyo welcomed the first delivery schedule"]),
    );
    let took = sent.elapsed();
    assert!(took <= LIVE, "took {took:?}");
    assert_eq!(
        browser.eval("return performance.timeOrigin", json!([])),
        before_append,
        "the page reloaded"
    );

    // And one appended through the command line, which goes through the server.
    let sent = Instant::now();
    c.run(&[
        "append",
        "--stream",
        SALE,
        "--type",
        "note.reported",
        "--occurred",
        "2025-01-05",
        "--data",
        r#"{"summary": "Seoul asked for a briefing on the sale", "entities": ["country:JP", "country:KR"]}"#,
    ])
    .ok();
    wait_text(
        &browser,
        "the fact appended by the CLI",
        LIVE,
        &["Seoul asked for a briefing on the sale"],
    );
    assert!(sent.elapsed() <= LIVE + Duration::from_millis(500));

    // A correction of the sale's amount, with its reason, shows live and marked.
    let log = api.get(&format!("/events?stream={SALE}"));
    let sale = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "arms_sale.announced")
        .expect("the demo's sale");
    // The store takes a correction's `data` as the whole corrected data.
    let mut data = sale["data"].clone();
    data["value"] = json!({"amount": 3800000000u64, "currency": "USD"});
    let corrected_at = api.append(json!({
        "stream": SALE, "type": "event.corrected", "occurred": "2025-01-06",
        "data": {"target": sale["id"], "data": data,
                 "reason": "The formal notification to Congress gives $3.8 billion"}
    }));
    browser.wait_for(
        "the corrected sale on the timeline",
        LIVE,
        &chart_has(&["worth about $3.8 billion"]),
    );
    let corrected = browser.eval(
        "const i = [...document.querySelectorAll('#tl-chart .vis-item.corrected')]; return i.map(x => x.textContent).join('|')",
        json!([]),
    );
    assert!(
        corrected.as_str().unwrap().contains("$3.8 billion"),
        "{corrected}"
    );
    // The reason is one click away: the details of the selected fact.
    let item = browser.find("#tl-chart .vis-item.vis-box.corrected");
    browser.click(&item);
    wait_text(
        &browser,
        "the correction's reason in the details",
        DRAW,
        &["The formal notification to Congress gives $3.8 billion"],
    );
    browser.eval("document.activeElement.blur()", json!([]));
    shoot(&browser, &shots, "timeline.png", 1280);

    // A retraction takes a fact off the timeline; on request it shows struck through.
    let delivery = api.get(&format!("/timeline?stream={SALE}&type=note.reported"));
    let delivery_id = delivery["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["summary"] == "Tokyo welcomed the first delivery schedule")
        .expect("the appended note")["id"]
        .clone();
    api.append(json!({
        "stream": SALE, "type": "event.retracted", "occurred": "2025-01-06",
        "data": {"target": delivery_id, "reason": "The wire withdrew the delivery story"}
    }));
    browser.wait_for(
        "the retracted fact to leave the timeline",
        LIVE,
        "return document.documentElement.dataset.state === 'ready' && !document.body.innerText.includes('Tokyo welcomed the first delivery schedule')",
    );
    let toggle = browser.find("#tl-retracted");
    browser.click(&toggle);
    browser.wait_for(
        "the retracted fact struck through",
        DRAW,
        "return [...document.querySelectorAll('#tl-chart .vis-item.retracted')].some(i => i.textContent.includes('Tokyo welcomed the first delivery schedule')) && document.body.innerText.includes('The wire withdrew the delivery story')",
    );
    let toggle = browser.find("#tl-retracted");
    browser.click(&toggle);

    // The other views.
    open(&browser, &url, "entities");
    wait_text(
        &browser,
        "the entity list",
        DRAW,
        &["Antony Blinken", "Yoon Suk Yeol"],
    );
    shoot(&browser, &shots, "entities.png", 1280);
    open(&browser, &url, "entity/person:antony-blinken");
    wait_text(
        &browser,
        "Blinken's page",
        DRAW,
        &[
            "Antony Blinken",
            "What and when",
            "trip to Seoul (South Korea)",
        ],
    );
    shoot(&browser, &shots, "entity.png", 1280);
    // A list's address with an id is that one's page.
    open(&browser, &url, &format!("trips/{TRIP}"));
    wait_text(
        &browser,
        "the trip page from #/trips/ID",
        DRAW,
        &["Itinerary"],
    );
    open(&browser, &url, "entities/person:antony-blinken");
    wait_text(
        &browser,
        "Blinken's page from #/entities/ID",
        DRAW,
        &["What and when"],
    );

    // The ledger, corrected, with its totals per currency.
    open(&browser, &url, "sales");
    wait_text(
        &browser,
        "the corrected ledger",
        DRAW,
        &[
            "about $3.8 billion",
            "corrected",
            "The formal notification to Congress gives $3.8 billion",
            "Totals by buyer",
            "Totals by seller",
            "USD",
        ],
    );
    shoot(&browser, &shots, "sales.png", 1280);

    // The as-of control, moved with the keyboard to before the correction, shows the
    // old value; every view redraws as it was.
    let slider = browser.find("#asof");
    let head = api.get("/stats")["head"]["position"].as_u64().unwrap();
    for _ in 0..(head - corrected_at + 1) {
        browser.keys(&slider, ARROW_LEFT);
    }
    let value = browser.eval(
        "return Number(document.querySelector('#asof').value)",
        json!([]),
    );
    assert_eq!(value.as_u64(), Some(corrected_at - 1));
    browser.wait_for(
        "the ledger as it was before the correction",
        DRAW,
        &format!(
            "return document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.asOf === '{}' && document.body.innerText.includes('about $3.64 billion') && !document.body.innerText.includes('$3.8 billion')",
            corrected_at - 1
        ),
    );
    shoot(&browser, &shots, "sales-as-of.png", 1280);
    open(&browser, &url, "timeline/entity/country:JP");
    browser.wait_for(
        "Japan's timeline as it was before the correction",
        DRAW,
        &chart_has(&["worth about $3.64 billion"]),
    );
    // Back to live.
    let live = browser.find("#asof-live");
    browser.click(&live);
    browser.wait_for(
        "Japan's timeline live again",
        DRAW,
        &chart_has(&["worth about $3.8 billion"]),
    );

    // The page shows what the command line shows (after the screenshots, which keep to
    // the demo); every difference is listed at once. The facts whose sources have no web
    // address come as a log written before that rule would: the demo's log and them,
    // restored from an export into a second store, served in place of the first.
    // The page leaves the first server (and its live subscription) before it stops.
    browser.goto("about:blank");
    let first_url = url.clone();
    drop(serve);
    let c = c.restored_with(&older_facts());
    let serve = Serve::start(&c, &[]);
    let api = Api::new(&serve.url);
    let url = serve.url.clone();
    for fact in later_facts() {
        api.append(fact);
    }
    let cli_sales = c.run(&["sales"]).ok();
    let cli_trip = c.run(&["trip", "show", TRIP]).ok();
    let mut wrong: Vec<String> = Vec::new();
    let mut expect = |what: &str, got: Value, want: Value| {
        if got != want {
            wrong.push(format!("{what}: the page has {got}, expected {want}"));
        }
    };

    // Amounts exactly as `chronicle sales` prints them: in words only when exact.
    open(&browser, &url, "sales");
    for (stream, figure) in [
        (SMALL_SALE, "$999.999"),
        (LARGE_SALE, "$11,437,250,000"),
        (YUAN_SALE, "1,250,000,000.5 CNY"),
    ] {
        let line = cli_sales
            .lines()
            .find(|l| l.contains(&format!("{stream} ")) || l.ends_with(stream))
            .unwrap_or_else(|| panic!("{stream} in `chronicle sales`:\n{cli_sales}"));
        assert!(line.contains(figure), "`chronicle sales` prints {line}");
        let shown = browser.eval(
            "return [...document.querySelectorAll('table.sales tr[data-id]')].filter(r => [...r.querySelectorAll('a')].some(a => a.textContent === arguments[0])).map(r => r.querySelector('.amount').textContent)",
            json!([stream]),
        );
        expect(&format!("the value of {stream}"), shown, json!([figure]));
    }
    for (party, figure) in [
        ("South Sudan", "$11,437,250,999.999"),
        ("Uganda", "$11,437,250,999.999"),
        ("Sudan", "1,250,000,000.5 CNY"),
    ] {
        assert!(
            cli_sales
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{party}  ")) && l.contains(figure)),
            "`chronicle sales` totals {party} as {figure}:\n{cli_sales}"
        );
        let shown = browser.eval(
            "return [...document.querySelectorAll('table:not(.sales) tbody tr')].filter(r => r.querySelector('th').textContent === arguments[0]).map(r => r.querySelectorAll('td')[1].textContent)",
            json!([party]),
        );
        expect(&format!("the total of {party}"), shown, json!([figure]));
    }

    // A planned meeting, on its stop, as `chronicle trip show` lists it.
    let meeting = "to meet Yoon Suk Yeol and Joe Biden on Alliance talks, 2025-01-06";
    assert!(cli_trip.contains(meeting), "{cli_trip}");
    open(&browser, &url, &format!("trip/{TRIP}"));
    let planned = browser.eval(
        "return [...document.querySelectorAll('.stops > li')].map(s => [...s.querySelectorAll('.planned-meetings li')].map(li => li.textContent))",
        json!([]),
    );
    expect(
        "the planned meetings at each stop",
        planned,
        json!([
            ["To meet Yoon Suk Yeol and Joe Biden on Alliance talks, 2025-01-06"],
            [],
            []
        ]),
    );

    // When the trip started, as `chronicle trip list` and `trip show` have it.
    let cli_list = c.run(&["trip", "list"]).ok();
    assert!(cli_list.contains("underway  2025-01-06"), "{cli_list}");
    assert!(cli_trip.contains("started:   2025-01-06"), "{cli_trip}");
    open(&browser, &url, "trips");
    let card = browser.eval(
        "return document.querySelector('.card .meta').textContent",
        json!([]),
    );
    expect(
        "when the trip started, on its card",
        json!(
            card.as_str()
                .map(|m| m.contains(" · started 2025-01-06 (was to start 2025-01-05)"))
        ),
        json!(true),
    );

    // A source's address is a link only when it is a web address.
    open(&browser, &url, "entity/country:SS");
    wait_text(
        &browser,
        "South Sudan's page",
        DRAW,
        &["Helicopter sale notice"],
    );
    let sources = browser.eval(
        "return [...document.querySelectorAll('.source-line')].map(l => { const a = l.querySelector('a'); return [l.firstChild.textContent, a ? a.getAttribute('href') : null]; }).sort()",
        json!([]),
    );
    expect(
        "the sources on South Sudan's page, with their links",
        sources,
        json!([
            ["Helicopter sale notice", "https://example.org/helicopters"],
            ["Maintenance note", null],
            ["Spare parts notice", null],
        ]),
    );
    let off_web = browser.eval(
        "return [...document.querySelectorAll('a[href]')].map(a => a.protocol).filter(p => p !== 'http:' && p !== 'https:')",
        json!([]),
    );
    expect("links that are not web addresses", off_web, json!([]));

    // The timeline of a stream that is not a trip says so in its filter, and a trip's
    // still shows as one trip.
    let filter = "const kind = document.querySelector('#tl-kind'), value = document.querySelector('#tl-value'); return [kind.selectedOptions[0].textContent, value.hidden, value.value, value.selectedOptions[0] ? value.selectedOptions[0].textContent : null]";
    open(&browser, &url, &format!("timeline/stream/{SMALL_SALE}"));
    wait_text(
        &browser,
        "the sale's timeline",
        DRAW,
        &[&format!("Timeline of {SMALL_SALE}")],
    );
    expect(
        "the filter on a sale's timeline",
        browser.eval(filter, json!([])),
        json!(["One stream", false, SMALL_SALE, SMALL_SALE]),
    );
    open(&browser, &url, &format!("timeline/stream/{TRIP}"));
    let title = api.get(&format!("/trips/{TRIP}"))["trip"]["title"].clone();
    expect(
        "the filter on a trip's timeline",
        browser.eval(filter, json!([])),
        json!(["One trip", false, TRIP, title]),
    );

    // Views past one page of the server's timeline (10,000 entries): an entity with
    // more facts lists the earliest 5,000 and says so, and the ledger still finds the
    // reason of a correction that the notes dated before it push past that page.
    for chunk in 0..NOTES.div_ceil(1_000) {
        let notes: Vec<Value> = (chunk * 1_000..NOTES.min((chunk + 1) * 1_000))
            .map(|n| {
                json!({
                    "stream": SMALL_SALE, "type": "note.reported", "occurred": "2024-12-01",
                    "data": {"summary": format!("Shipping note {n}"), "entities": ["country:SS"]}
                })
            })
            .collect();
        api.append(Value::Array(notes));
    }
    let cli_entries: Vec<Value> = serde_json::from_str(
        &c.run(&["timeline", "--entity", "country:SS", "--json"])
            .ok(),
    )
    .unwrap();
    assert!(cli_entries.len() > NOTES, "{} entries", cli_entries.len());
    open(&browser, &url, "entity/country:SS");
    expect(
        "the facts listed on South Sudan's page, and the note that there are more",
        browser.eval(
            "return [document.querySelectorAll('ol.entries > li').length, document.body.innerText.includes('Only the earliest 5000 of these facts are listed.')]",
            json!([]),
        ),
        json!([5_000, true]),
    );
    open(&browser, &url, "sales");
    expect(
        "the correction's reason on the ledger, past the first page",
        json!(
            browser
                .eval("return document.body.innerText", json!([]))
                .as_str()
                .is_some_and(
                    |t| t.contains("The formal notification to Congress gives $3.8 billion")
                )
        ),
        json!(true),
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // No console errors, and no request left loopback.
    let errors: Vec<Value> = browser
        .log("browser")
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let mut requests = Vec::new();
    for entry in browser.log("performance") {
        let message: Value =
            serde_json::from_str(entry["message"].as_str().unwrap_or("{}")).unwrap_or_default();
        if message["message"]["method"] == "Network.requestWillBeSent" {
            let request_url = message["message"]["params"]["request"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            requests.push(request_url);
        }
    }
    assert!(
        requests.len() > 10,
        "the network log is missing: {requests:?}"
    );
    let outside: Vec<&String> = requests
        .iter()
        // Browser-internal schemes (data:, chrome: for the first blank tab, about:) stay
        // in the process; anything else must go to the two servers.
        .filter(|u| {
            !(u.starts_with(&format!("{url}/"))
                || u.starts_with(&format!("{first_url}/"))
                || u.starts_with("about:")
                || u.starts_with("data:")
                || u.starts_with("chrome:"))
        })
        .collect();
    assert!(
        outside.is_empty(),
        "requests that left the server: {outside:?}"
    );
    for asset in [
        "/static/app.js",
        "/static/vendor/vis-timeline/vis-timeline-graph2d.min.js",
        "/events/live",
    ] {
        assert!(
            requests.iter().any(|u| u.contains(asset)),
            "{asset} was never requested"
        );
    }

    let _ = writeln!(
        std::io::stderr(),
        "tests/page.rs: screenshots in {}",
        shots.display()
    );
}
