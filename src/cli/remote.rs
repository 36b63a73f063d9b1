//! The command line as a client of a running `chronicle serve`.
//!
//! A server holds its store's lock, so while it runs a command cannot open the store.
//! The server writes `<store>.server.json` beside the store with its URL; a command that
//! finds the store locked reads it and does the same work through the HTTP API
//! (`--server URL` picks a server outright). Answers are rendered by the same table
//! functions as local ones, so the output is the same either way. Errors keep their
//! exit codes: the server's `409` is a conflict (3), `400`/`404`/`422` invalid input (2).

use super::UsageError;
use chronicle::Error;
use chronicle::model::{EntityId, Expect, ProposedEvent, StreamId, ValidationError, Version};
use chronicle::projection::facts::{FactCorrection, FieldChange};
use chronicle::query::Query;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a command through a server waits for views that make no progress.
const VIEWS_STALLED: Duration = Duration::from_secs(30);

/// What the server writes beside its store.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ServerFile {
    /// The URL the API answers at, such as `http://127.0.0.1:7070`.
    pub url: String,
    /// The server's process id.
    pub pid: u32,
    /// The address it listens on (`0.0.0.0:7070` for every address of the machine);
    /// absent in the files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl ServerFile {
    /// Whether `url` reaches this server: its own URL (but for a final `/` and the
    /// case), the same address under another spelling (`localhost` for `127.0.0.1`),
    /// or, for a server listening on every address (`0.0.0.0`, `[::]`), its port at
    /// another address of this machine. Only IP addresses and `localhost` are resolved:
    /// another host name counts only as the URL written the same way.
    pub fn serves(&self, url: &str) -> bool {
        let plain = |url: &str| url.trim_end_matches('/').to_ascii_lowercase();
        if plain(&self.url) == plain(url) {
            return true;
        }
        let (Some(given), Some(own)) = (endpoints(url), endpoints(&self.url)) else {
            return false;
        };
        let listen = self
            .listen
            .as_deref()
            .and_then(|l| l.parse::<SocketAddr>().ok());
        given.iter().any(|g| match listen {
            Some(every) if every.ip().is_unspecified() => {
                g.port() == every.port() && (every.is_ipv6() || g.is_ipv4()) && is_this_machine(*g)
            }
            _ => own.contains(g),
        })
    }
}

/// The file a server of the store at `db` announces itself in: beside the store, since
/// the store's directory belongs to sled.
pub fn server_file(db: &Path) -> PathBuf {
    let db = db.canonicalize().unwrap_or_else(|_| db.to_owned());
    let name = db.file_name().map_or_else(
        || "chronicle.db".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    db.with_file_name(format!("{name}.server.json"))
}

/// The server announced for the store at `db`, answering or not.
pub fn announced(db: &Path) -> Option<ServerFile> {
    let text = std::fs::read_to_string(server_file(db)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The URL of the server announced for the store at `db`, answering or not.
pub fn announced_url(db: &Path) -> Option<String> {
    announced(db).map(|file| file.url)
}

/// The addresses a plain `http://HOST:PORT` URL reaches, when its host is an IP
/// address or `localhost` (no name server is asked).
fn endpoints(url: &str) -> Option<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    let authority = url.strip_prefix("http://")?.trim_end_matches('/');
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return Some(vec![addr]);
    }
    let (host, _) = authority.rsplit_once(':')?;
    if !host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    Some(authority.to_socket_addrs().ok()?.collect())
}

/// Whether an address is one of this machine's: a socket can be bound to it.
fn is_this_machine(addr: SocketAddr) -> bool {
    addr.ip().is_loopback() || std::net::UdpSocket::bind((addr.ip(), 0)).is_ok()
}

/// The server announced for the store at `db`, if one answers.
pub fn discover(db: &Path) -> Option<Api> {
    let api = Api::new(&announced_url(db)?).ok()?;
    // A file left by a server that died is no server.
    api.get::<Value>("/healthz", &[]).ok()?;
    Some(api)
}

/// A client of the HTTP API. Writes send `CHRONICLE_TOKEN` as the bearer token.
pub struct Api {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// Percent-encodes a path segment or a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Api {
    /// A client of the server at `url` (`http://host:port`).
    pub fn new(url: &str) -> anyhow::Result<Api> {
        let base = url.trim_end_matches('/').to_owned();
        // The API answers at the server's root: a path, query or fragment after the
        // host would only end in "no such endpoint".
        let after_host = base.strip_prefix("http://").unwrap_or_default();
        let wrong = if base.starts_with("https://") {
            // `chronicle serve` speaks plain HTTP; TLS is a proxy's job in front of it.
            Some(
                "the CLI speaks plain http only: give the server's own http://HOST:PORT, not a TLS proxy's https address",
            )
        } else if !base.starts_with("http://") || after_host.is_empty() {
            Some("give the server's URL as http://HOST:PORT")
        } else if after_host.contains(['/', '?', '#']) {
            Some("give the server's URL as http://HOST:PORT, with no path after it")
        } else {
            None
        };
        if let Some(wrong) = wrong {
            return Err(UsageError(format!("--server `{url}`: {wrong}")).into());
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Ok(Api {
            base,
            agent: config.new_agent(),
            token: std::env::var("CHRONICLE_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn url_for(&self, path: &str, query: &[(&str, Option<String>)]) -> String {
        let mut url = format!("{}{path}", self.base);
        let mut separator = '?';
        for (key, value) in query {
            if let Some(value) = value {
                url.push(separator);
                url.push_str(key);
                url.push('=');
                url.push_str(&encode(value));
                separator = '&';
            }
        }
        url
    }

    /// `GET path?query`; parameters whose value is `None` are left out.
    ///
    /// The server answers a query once its views reflect every append acknowledged
    /// before it, and waits only a few seconds for that (then `503`, with `wanted` and
    /// `reflects`). Like a command on a store of its own, which catches its views up
    /// before answering, this asks again as long as the views make progress, and gives
    /// up only when they have not moved for [`VIEWS_STALLED`]. A `known_at` query the
    /// server is too busy for (`503` with `busy`) is asked again for as long.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, Option<String>)],
    ) -> anyhow::Result<T> {
        let url = self.url_for(path, query);
        let mut progress = (Instant::now(), 0);
        let mut told = false;
        loop {
            let (status, body) = self.read(self.agent.get(&url).call())?;
            // A server answers one `known_at` query at a time: this one waits its turn.
            if status == 503 && body["busy"] == true && progress.0.elapsed() < VIEWS_STALLED {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let lag = (status == 503)
                .then(|| Some((body["wanted"].as_u64()?, body["reflects"].as_u64()?)))
                .flatten();
            let Some((wanted, reflects)) = lag else {
                return self.answer(status, body);
            };
            if reflects > progress.1 {
                progress = (Instant::now(), reflects);
            }
            if progress.0.elapsed() >= VIEWS_STALLED {
                return self.answer(status, body);
            }
            if !told && std::io::stderr().is_terminal() {
                eprintln!(
                    "waiting for the server's views to reach position {wanted} (they reflect {reflects})…"
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `POST path` with a JSON body.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        let url = self.url_for(path, &[]);
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let (status, body) = self.read(request.send_json(body))?;
        self.answer(status, body)
    }

    /// The status and JSON body of an answer.
    fn read(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut response = response.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the chronicle server at {} ({e}); is `chronicle serve` running?",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_json()
            .map_err(|e| {
                anyhow::anyhow!(
                    "the server at {} answered {status} without JSON ({e})",
                    self.base
                )
            })?;
        Ok((status, body))
    }

    /// What an answer means: its body as `T`, or the error it says.
    fn answer<T: DeserializeOwned>(&self, status: u16, body: Value) -> anyhow::Result<T> {
        if (200..300).contains(&status) {
            return serde_json::from_value(body).map_err(|e| {
                anyhow::anyhow!(
                    "the server at {} answered in an unknown form ({e})",
                    self.base
                )
            });
        }
        Err(self.error(status, &body))
    }

    /// The error a failed answer means, with the exit code the local command would have.
    fn error(&self, status: u16, body: &Value) -> anyhow::Error {
        let message = body["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned();
        let index = body["index"].as_u64().and_then(|i| usize::try_from(i).ok());
        // The API names its parameter where the CLI names its flag.
        let message = match message.strip_prefix("as_of ") {
            Some(rest) => format!("--as-of {rest}"),
            None => message,
        };
        let invalid = |index| -> anyhow::Error {
            Error::Invalid {
                index,
                error: ValidationError {
                    line: None,
                    field: body["field"].as_str().map(str::to_owned),
                    message: body["message"].as_str().unwrap_or(&message).to_owned(),
                },
            }
            .into()
        };
        match status {
            409 => {
                let expected = match &body["expected"] {
                    Value::Number(n) => n.as_u64().map(|v| Expect::Version(Version(v))),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                let stream = body["stream"]
                    .as_str()
                    .and_then(|s| StreamId::parse(s).ok());
                match (expected, stream, body["actual"].as_u64()) {
                    (Some(expected), Some(stream), Some(actual)) => Error::Conflict {
                        index: index.unwrap_or(0),
                        stream,
                        expected,
                        actual: Version(actual),
                        written: body["written"].as_u64().map(Version),
                    }
                    .into(),
                    _ => UsageError(message).into(),
                }
            }
            422 => invalid(index),
            // A lookup that found nothing, about one parameter: the same error as
            // without a server, for the command to tell in its words.
            404 if body["field"].is_string() => invalid(None),
            // Only an append sends a body: its events are more than one request holds.
            413 => UsageError(format!(
                "these events are more than the server at {} takes in one request ({message}): append them as several smaller files (each one atomic), or stop the server and use `chronicle import`, which takes a file of any size",
                self.base,
            ))
            .into(),
            401 => UsageError(format!(
                "the server at {} refused the write ({message}); set CHRONICLE_TOKEN to its token",
                self.base
            ))
            .into(),
            400..=499 => UsageError(message).into(),
            // An append that may or may not have been written names its ids: the
            // retry that settles it needs them.
            503 if body["ids"].is_array() => anyhow::anyhow!(
                "the server at {} failed: {message}: {}",
                self.base,
                body["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => anyhow::anyhow!("the server at {} failed: {message}", self.base),
        }
    }
}

/// Display names of entities: from a store's views, or from an API answer's `names`.
pub trait Names {
    /// The display name of an entity.
    fn name(&self, id: &EntityId) -> chronicle::Result<String>;
}

impl Names for Query<'_> {
    fn name(&self, id: &EntityId) -> chronicle::Result<String> {
        Query::name(self, id)
    }
}

/// A view's `corrections:` block, as `trip show` and `entity show` print it: each
/// correction's fact type and why, then each value it changed (nothing when none).
pub fn print_corrections(
    q: &dyn Names,
    corrections: &[FactCorrection],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !corrections.is_empty() {
        writeln!(out, "  corrections:")?;
    }
    for c in corrections {
        let why = chronicle::query::describe_correction(&c.correction);
        writeln!(out, "    - {}: {why}", c.event_type)?;
        for change in &c.correction.changes {
            writeln!(out, "        {}", describe_change(q, change)?)?;
        }
    }
    Ok(())
}

/// A corrected value for people ([`chronicle::query::describe_change`]), with an entity
/// among the values named: `traveler: Lena Vogt (person:lena-vogt) → Jonas Brandt
/// (person:jonas-brandt)`.
pub fn describe_change(q: &dyn Names, change: &FieldChange) -> chronicle::Result<String> {
    let named = |value: &Value| -> chronicle::Result<Value> {
        let Some(id) = entity_in(value) else {
            return Ok(value.clone());
        };
        // A name shared with another entity comes with its id already.
        let name = q.name(&id)?;
        Ok(
            match name == id.as_str() || name.ends_with(&format!(" ({id})")) {
                true => Value::from(name),
                false => Value::from(format!("{name} ({id})")),
            },
        )
    };
    Ok(chronicle::query::describe_change(&FieldChange {
        field: change.field.clone(),
        before: named(&change.before)?,
        after: named(&change.after)?,
    }))
}

/// The entity a corrected value is, if it is an id (no other text is parsed as one).
fn entity_in(value: &Value) -> Option<EntityId> {
    let text = value.as_str().filter(|s| s.contains(':'))?;
    EntityId::parse(text).ok()
}

/// How a corrected or retracted fact is marked in a table: `[corrected: why; buyer:
/// South Korea (country:KR) → Japan (country:JP)]`, `[retracted: why]`; empty otherwise.
pub fn marks(
    q: &dyn Names,
    corrections: &[String],
    changes: &[FieldChange],
    retracted: Option<&str>,
) -> chronicle::Result<String> {
    let mut out = String::new();
    if !corrections.is_empty() {
        let mut parts: Vec<String> = corrections.to_vec();
        for change in changes {
            parts.push(describe_change(q, change)?);
        }
        out.push_str(&format!(" [corrected: {}]", parts.join("; ")));
    }
    if let Some(why) = retracted {
        out.push_str(&format!(" [retracted: {why}]"));
    }
    Ok(out)
}

/// The `names` of an API answer.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct NameMap(BTreeMap<String, String>);

impl NameMap {
    /// The names of the entities among the values that `changes` changed.
    pub fn of_changes<'a>(
        q: &dyn Names,
        changes: impl IntoIterator<Item = &'a FieldChange>,
    ) -> chronicle::Result<NameMap> {
        let mut names = BTreeMap::new();
        for change in changes {
            for value in [&change.before, &change.after] {
                if let Some(id) = entity_in(value)
                    && !names.contains_key(id.as_str())
                {
                    names.insert(id.to_string(), q.name(&id)?);
                }
            }
        }
        Ok(NameMap(names))
    }

    /// Adds the names of another answer.
    pub fn extend(&mut self, other: NameMap) {
        self.0.extend(other.0);
    }
}

impl Names for NameMap {
    fn name(&self, id: &EntityId) -> chronicle::Result<String> {
        // The same fallbacks as `Query::name`, for ids the answer did not name.
        Ok(self.0.get(id.as_str()).cloned().unwrap_or_else(|| {
            id.country_name()
                .map_or_else(|| id.to_string(), str::to_owned)
        }))
    }
}

/// Whether the server's log holds `stream` (`GET /streams/{stream}` is a 404 when not).
pub fn stream_exists(api: &Api, stream: &StreamId) -> anyhow::Result<bool> {
    let path = format!("/streams/{}", encode(&stream.to_string()));
    match api.get::<Value>(&path, &[("limit", Some("1".into()))]) {
        Ok(_) => Ok(true),
        Err(e) if e.is::<UsageError>() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The trip or sale of the server's views whose id is closest to that of `stream`, a
/// stream its log does not hold (as [`Query::closest_stream`] finds it in a store's).
pub fn closest_stream(api: &Api, stream: &StreamId) -> anyhow::Result<Option<String>> {
    let (path, list, category) = match stream.category() {
        "trip" => ("/trips", "trips", "trip:"),
        "arms-sale" => ("/sales", "sales", "arms-sale:"),
        _ => return Ok(None),
    };
    let answer: Value = api.get(path, &[])?;
    let slugs = answer[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|view| {
            let stream = view["stream"].as_str()?;
            Some(Ok(stream.strip_prefix(category)?.to_owned()))
        });
    let slug = &stream.as_str()[category.len()..];
    let found = chronicle::query::closest(slug, slugs)?;
    Ok(found.map(|s| format!("{category}{s}")))
}

/// Whether the server's log has an event of a stream of `category`.
pub fn category_exists(api: &Api, category: &str) -> anyhow::Result<bool> {
    let query = [
        ("category", Some(category.to_owned())),
        ("limit", Some("1".into())),
    ];
    let mut answer: Value = api.get("/events", &query)?;
    let events: Vec<Value> = part(&mut answer, "events")?;
    Ok(!events.is_empty())
}

/// Takes the part `key` of an API answer, as a `T`.
pub fn part<T: DeserializeOwned>(answer: &mut Value, key: &str) -> anyhow::Result<T> {
    serde_json::from_value(answer[key].take())
        .map_err(|e| anyhow::anyhow!("the server's answer has no readable `{key}` ({e})"))
}

/// The `names` of an API answer.
pub fn names(answer: &mut Value) -> NameMap {
    serde_json::from_value(answer["names"].take()).unwrap_or_default()
}

/// An event as the API reads it: the input format, from its parsed form.
pub fn event_json(event: &ProposedEvent) -> Value {
    let mut fields = Map::new();
    if let Some(id) = event.id {
        fields.insert("id".into(), json!(id));
    }
    fields.insert("stream".into(), json!(event.stream));
    fields.insert("type".into(), json!(event.event_type));
    if let Some(occurred) = event.occurred {
        fields.insert("occurred".into(), json!(occurred));
    }
    if let Some(text) = &event.occurred_text {
        fields.insert("occurred_text".into(), json!(text));
    }
    fields.insert("data".into(), event.data.clone());
    if let Some(source) = &event.source {
        fields.insert("source".into(), json!(source));
    }
    if !event.tags.is_empty() {
        fields.insert("tags".into(), json!(event.tags));
    }
    if let Some(meta) = &event.meta {
        fields.insert("meta".into(), json!(meta));
    }
    match event.expect {
        Expect::Any => {}
        Expect::Version(v) => {
            fields.insert("expect".into(), json!(v.0));
        }
        other => {
            fields.insert("expect".into(), json!(other.to_string()));
        }
    }
    Value::Object(fields)
}
