//! Accepting connections and keeping each one within its limits, so that no client, or
//! crowd of idle clients, can take the server down.
//!
//! - At most [`Config::max_connections`] connections are served at once, and at most
//!   [`Config::max_connections_per_client`] from one IP address; a connection beyond
//!   either is answered `503` at once (with `Retry-After`) and closed, before any of its
//!   request is read.
//! - A request's head must arrive within [`Config::header_timeout`] of the connection
//!   opening or of the previous response ending (hyper's `header_read_timeout`), so a
//!   slow or idle keep-alive connection is closed after it.
//! - A request's body must arrive within [`Config::body_timeout`] of its head
//!   (tower-http's `RequestBodyDeadlineLayer`, answered `408`: see `error.rs`).
//! - A connection whose writes make no progress for [`Config::send_timeout`] (a client
//!   that stopped reading, such as a stalled live subscriber) is closed: its socket,
//!   buffers and task go away.

use super::Config;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower_http::add_extension::AddExtension;

/// Refusals (`503` to a connection over a cap) answered at once; more are closed unanswered.
const MAX_REFUSING: usize = 64;

/// How long a refusal waits for the client to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `stopping` turns true, then stops accepting, asks
/// every connection to finish its request in flight and close, and returns once they
/// all have.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    config: Arc<Config>,
    mut stopping: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let clients = Arc::new(Clients::default());
    // Every connection task holds a clone; `recv` yields `None` once all are gone.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut accept_errors = 0u32;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => {
                accept_errors = 0;
                connection
            }
            Err(e) => {
                // Out of file descriptors and the like: the connections already open
                // go on, and accepting resumes once some close.
                if accept_errors == 0 {
                    tracing::error!(target: "chronicle::http", "accepting a connection failed: {e}");
                }
                accept_errors = accept_errors.saturating_add(1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = match slots.clone().try_acquire_owned() {
            Err(_) => Err(format!(
                "the server is serving as many connections as it takes ({}); retry in a moment",
                config.max_connections
            )),
            Ok(slot) => clients
                .admit(peer.ip(), config.max_connections_per_client)
                .map(|client| (slot, client))
                .ok_or_else(|| {
                    format!(
                        "this client has as many connections open as one may ({}); reuse them, or retry when one closes",
                        config.max_connections_per_client
                    )
                }),
        };
        match admitted {
            Ok((slot, client)) => {
                let connection = Connection {
                    app: app.clone(),
                    peer,
                    config: config.clone(),
                    stopping: stopping.clone(),
                    _slot: slot,
                    _client: client,
                    _open: open.clone(),
                };
                tokio::spawn(connection.run(stream));
            }
            Err(message) => {
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(refuse(stream, message, permit));
                }
            }
        }
    }
    drop(listener);
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Open connections per client address.
#[derive(Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection of a client; counted until dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Clients {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        crate::alloc::connection_closed();
        let mut open = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Answers a connection over a cap with `503` and closes it.
async fn refuse(mut stream: TcpStream, message: String, _permit: OwnedSemaphorePermit) {
    let body = serde_json::json!({ "error": message }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let mut sent = 0;
        while sent < answer.len() {
            stream.writable().await?;
            match stream.try_write(&answer.as_bytes()[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        std::future::poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx)).await?;
        // Read what the client sends until it closes, so that closing does not reset
        // the connection before the client has read the answer.
        let mut sink = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// One admitted connection and what it holds until it closes.
struct Connection {
    app: Router,
    /// The client's address, handed to each request (`ConnectInfo`) for the request log.
    peer: SocketAddr,
    config: Arc<Config>,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
    _client: ClientSlot,
    _open: mpsc::Sender<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let watched = Watched::new(stream);
        let writes = watched.writes.clone();
        let service = TowerToHyperService::new(AddExtension::new(
            self.app.clone(),
            axum::extract::ConnectInfo(self.peer),
        ));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(watched), service);
        tokio::pin!(connection);
        let send_timeout = self.config.send_timeout;
        let mut check = tokio::time::interval(check_interval(send_timeout));
        let mut closing = false;
        loop {
            tokio::select! {
                _ = connection.as_mut() => break,
                _ = self.stopping.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = check.tick() => {
                    if writes.stalled_for() > send_timeout {
                        // Dropping the connection closes the socket and frees its buffers.
                        break;
                    }
                }
            }
        }
    }
}

/// How often a connection's writes are checked: often enough to close a stalled one
/// within a quarter of its timeout past it.
fn check_interval(send_timeout: Duration) -> Duration {
    (send_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// When a connection's current write started waiting, if it is waiting.
struct Writes {
    base: Instant,
    /// Milliseconds after `base`, plus one, since when a write waits; 0 when none does.
    waiting_since: AtomicU64,
}

impl Writes {
    fn stalled_for(&self) -> Duration {
        match self.waiting_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => {
                let started = self.base + Duration::from_millis(since - 1);
                Instant::now().saturating_duration_since(started)
            }
        }
    }

    fn note<T>(&self, poll: &Poll<T>) {
        match poll {
            Poll::Ready(_) => self.waiting_since.store(0, Ordering::Relaxed),
            Poll::Pending => {
                if self.waiting_since.load(Ordering::Relaxed) == 0 {
                    let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.waiting_since
                        .store(now.saturating_add(1), Ordering::Relaxed);
                }
            }
        }
    }
}

/// A socket that records how long its writes have been waiting for the client.
struct Watched {
    stream: TcpStream,
    writes: Arc<Writes>,
}

impl Watched {
    fn new(stream: TcpStream) -> Watched {
        Watched {
            stream,
            writes: Arc::new(Writes {
                base: Instant::now(),
                waiting_since: AtomicU64::new(0),
            }),
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.writes.note(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.writes.note(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.writes.note(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.writes.note(&poll);
        poll
    }
}

/// The address clients reach a listener on, for the `Host` check: the bound address.
pub(super) fn bound_ip(listener: &TcpListener) -> Option<IpAddr> {
    listener.local_addr().ok().map(|a: SocketAddr| a.ip())
}
