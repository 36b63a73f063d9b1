//! `chronicle serve`: the HTTP API over the store, until SIGINT or SIGTERM.
//!
//! The server owns the store while it runs. It writes `<store>.server.json` beside the
//! store so that other commands can find it and work through it, and removes the file
//! when it stops. It refuses to listen beyond loopback without a token, since anyone
//! who reaches it could then write to the log.

use super::remote::{ServerFile, server_file};
use super::{App, UsageError};
use anyhow::Context;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

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
}

pub fn run(args: Args, app: &App) -> anyhow::Result<()> {
    let addr = listen_address(&args)?;
    if args.token.as_deref() == Some("") {
        return Err(UsageError("--token is empty; give a token, or leave it out".into()).into());
    }
    let store = app.open_store()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("chronicle-http")
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        let url = format!("http://{}", reachable(local));
        let announced = announce(&app.db, &url);
        // A closed stdout must not stop the server: the URL is in the server file too.
        let _ = writeln!(
            std::io::stdout(),
            "chronicle serving {} at {url}",
            app.db.display()
        );
        let served = chronicle::server::run(listener, store, args.token, shutdown_signal()).await;
        if let Some(file) = announced {
            let _ = std::fs::remove_file(file);
        }
        served.context("serving HTTP")?;
        eprintln!("chronicle serve: stopped; every acknowledged append is on disk");
        Ok(())
    })
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
    let token = args.token.as_deref().is_some_and(|t| !t.is_empty());
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
fn announce(db: &Path, url: &str) -> Option<PathBuf> {
    let file = server_file(db);
    let body = serde_json::to_string(&ServerFile {
        url: url.to_owned(),
        pid: std::process::id(),
    })
    .ok()?;
    let temp = file.with_extension("json.tmp");
    let written = std::fs::write(&temp, body).and_then(|()| std::fs::rename(&temp, &file));
    match written {
        Ok(()) => Some(file),
        Err(e) => {
            eprintln!(
                "chronicle serve: cannot write {} ({e}); other commands will need --server {url}",
                file.display()
            );
            None
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
