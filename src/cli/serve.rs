//! `chronicle serve`: the HTTP API over the store, until SIGINT or SIGTERM.
//!
//! The server owns the store while it runs (on PostgreSQL: its views' folder; the log
//! is shared). It writes `<store>.server.json` beside the store (beside the views'
//! folder) so that other commands on the same folder can find it and work through it,
//! and removes the file when it stops. It refuses to listen beyond loopback without a token, since anyone
//! who reaches it could then write to the log.

use super::remote::{ServerFile, server_file};
use super::{App, UsageError};
use anyhow::Context;
use chronicle::server::{Config, check_token};
use chronicle::store::StoreLocation;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  chronicle serve                                   http://127.0.0.1:7070, writes open to local users
  chronicle serve --addr 127.0.0.1:0                any free port (printed, and in <store>.server.json)
  CHRONICLE_TOKEN=s3cret chronicle serve --addr 0.0.0.0:7070
  curl -s localhost:7070/trips
  curl -s -X POST localhost:7070/streams/trip:t/events -H 'Content-Type: application/json' \\
      -H 'Authorization: Bearer s3cret' -d '{\"type\":\"trip.started\",\"occurred\":\"2025-01-05\",\"data\":{}}'

GET /openapi.json describes every endpoint. While the server runs, append, log, trip,
timeline, entity, sales and stats on the same --db work through it.
Ctrl-C or SIGTERM stops it after the requests in flight; the exit code is then 0.";

/// Serve the HTTP API: the log, the views, and live subscriptions.
#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "HOST:PORT")]
    addr: String,
    /// Writes must send `Authorization: Bearer <TOKEN>`. Needed to listen beyond loopback.
    #[arg(long, env = "CHRONICLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A host name clients use for this server (as in `Host`), besides its address and
    /// localhost; repeat for several. Requests naming any other host are refused (403).
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Connections served at once; more are answered 503. Keep it below `ulimit -n`.
    #[arg(long, default_value_t = default_u32(Config::default().max_connections), value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Connections served at once from one IP address (raise it behind a reverse proxy).
    #[arg(long, default_value_t = default_u32(Config::default().max_connections_per_client), value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections_per_client: u32,
    /// Live subscribers (`GET /events/live`) served at once; more are answered 503.
    #[arg(long, default_value_t = default_u32(Config::default().max_live), value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_live: u32,
    /// Bytes of events a live subscriber may have waiting to be sent.
    #[arg(long, default_value_t = default_u32(Config::default().live_buffer_bytes), value_parser = clap::value_parser!(u32).range(65_536..=1_073_741_824), value_name = "BYTES")]
    live_buffer_bytes: u32,
    /// Seconds a request's head may take, from the connection opening or the previous
    /// response ending (so also how long an idle keep-alive connection stays open).
    #[arg(long, default_value_t = Config::default().header_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    header_timeout: f64,
    /// Seconds a request's body may take after its head; then 408.
    #[arg(long, default_value_t = Config::default().body_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    body_timeout: f64,
    /// Seconds a client may leave what it is sent unread (a stalled live subscriber,
    /// a client that stopped reading) before it is dropped and its connection closed.
    #[arg(long, default_value_t = Config::default().send_timeout.as_secs_f64(), value_parser = seconds, value_name = "SECONDS")]
    send_timeout: f64,
}

/// A default that fits a flag's `u32`.
fn default_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A timeout in seconds: from 0.1 to a day.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.1..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds from 0.1 to 86400"
        )),
    }
}

impl Args {
    /// The server's configuration from the flags.
    fn config(&self) -> Config {
        Config {
            token: self.token.clone(),
            allowed_hosts: self.allow_hosts.clone(),
            max_connections: to_usize(self.max_connections),
            max_connections_per_client: to_usize(self.max_connections_per_client),
            max_live: to_usize(self.max_live),
            live_buffer_bytes: to_usize(self.live_buffer_bytes),
            header_timeout: Duration::from_secs_f64(self.header_timeout),
            body_timeout: Duration::from_secs_f64(self.body_timeout),
            send_timeout: Duration::from_secs_f64(self.send_timeout),
            live_grace: Duration::from_secs_f64(self.send_timeout),
            ..Config::default()
        }
    }
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    // A long-running server keeps the allocator that gives memory back (see
    // `chronicle::alloc`).
    chronicle::alloc::use_system_allocator();
    if let Some(token) = &args.token {
        check_token(token).map_err(|e| UsageError(format!("--token (or CHRONICLE_TOKEN) {e}")))?;
    }
    let addr = listen_address(&args)?;
    let config = args.config();
    init_logging()?;
    // Listen before opening the store: a server that cannot start leaves no new store.
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "cannot listen on {addr}: something (another `chronicle serve`?) already listens there; choose another address with --addr (port 0 picks a free one)"
            ),
            _ => anyhow::Error::new(e).context(format!("listening on {addr}")),
        })?;
    // A new store is made for a folder that holds none, as on a first write; the first
    // line says so, since a mistyped --db would otherwise serve an empty log unnoticed.
    let new = match &app.location {
        StoreLocation::Dir(dir) => !chronicle::store::holds_store(dir),
        StoreLocation::Postgres(_) => false,
    };
    let store = app.open_store()?;
    // Where the server file goes: beside the sled store, or beside the views of a
    // PostgreSQL log (each server has its own).
    let local = app.local_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("chronicle-http")
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .with_context(|| format!("listening on {addr}"))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let url = format!("http://{}", reachable(bound));
        let announced = announce(&local, &url, bound);
        // A closed stdout must not stop the server: the URL is in the server file too.
        let views = match store.sled() {
            Some(_) => String::new(),
            None => format!(" (views in {})", local.display()),
        };
        let _ = writeln!(
            std::io::stdout(),
            "chronicle serving {}{}{views} at {url}",
            if new { "a new, empty store at " } else { "" },
            app.describe()
        );
        let served = chronicle::server::run_with(listener, store, config, shutdown_signal()).await;
        if let Some(file) = announced {
            let _ = std::fs::remove_file(file);
        }
        served.context("serving HTTP")?;
        note!("chronicle serve: stopped; every acknowledged append is on disk");
        Ok(())
    })
}

/// Structured logs on stderr: one line per request (`chronicle::http`) and per commit
/// (`chronicle::commit`) at `info`; `RUST_LOG` picks the levels (e.g. `RUST_LOG=warn`
/// for errors only, `RUST_LOG=chronicle::http=info,chronicle::commit=off`).
fn init_logging() -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec).map_err(|e| {
            UsageError(format!(
                "RUST_LOG `{spec}` is not a log filter ({e}); use a level like `info` or `warn`, or `target=level` pairs"
            ))
        })?,
        _ => EnvFilter::new("info"),
    };
    // A second server in one process (tests) keeps the first one's subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A line that cannot be written (stderr on a full disk, a log pipe that died)
        // is dropped: the default would report it with `eprintln!`, which panics then,
        // in whichever request was logging.
        .log_internal_errors(false)
        .try_init();
    Ok(())
}

/// The address to bind, refusing a non-loopback one without a token.
fn listen_address(args: &Args) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = args
        .addr
        .to_socket_addrs()
        .map_err(|e| {
            UsageError(format!(
                "--addr `{}` is not an address to listen on ({e}); use HOST:PORT like 127.0.0.1:7070",
                args.addr
            ))
        })?
        .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(UsageError(format!("--addr `{}` names no address", args.addr)).into());
    };
    let token = args
        .token
        .as_deref()
        .is_some_and(|t| check_token(t).is_ok());
    if !token && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(UsageError(format!(
            "refusing to listen on {} without a token: anyone who can reach it could write to the log; pass --token (or set CHRONICLE_TOKEN), or listen on 127.0.0.1",
            args.addr
        ))
        .into());
    }
    Ok(first)
}

/// The address a local client reaches a listener on: loopback for a wildcard bind.
fn reachable(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if local.ip().is_unspecified() {
        addr.set_ip(match local {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Writes the server file beside the store; returns its path, or `None` (with a
/// warning) when it cannot be written: the server still runs, and clients can pass
/// `--server`.
fn announce(db: &Path, url: &str, listen: SocketAddr) -> Option<PathBuf> {
    let file = server_file(db);
    let body = serde_json::to_string(&ServerFile {
        url: url.to_owned(),
        pid: std::process::id(),
        listen: Some(listen.to_string()),
    })
    .ok()?;
    let temp = file.with_extension("json.tmp");
    let written = std::fs::write(&temp, body).and_then(|()| std::fs::rename(&temp, &file));
    match written {
        Ok(()) => Some(file),
        Err(e) => {
            note!(
                "chronicle serve: cannot write {} ({e}); other commands will need --server {url}",
                file.display()
            );
            None
        }
    }
}

/// Completes on SIGINT (Ctrl-C), SIGTERM or SIGHUP: a server started from a terminal
/// that closes (an ssh session that ends) stops cleanly, as on SIGTERM, instead of
/// being killed by the hangup with requests in flight and its server file left behind.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
