//! [`Client`]: a synchronous connection to PostgreSQL on which no wait is unbounded.
//!
//! The `postgres` crate's client waits for an answer as long as the operating system
//! keeps the connection open, and a connection whose peer silently stops answering
//! (a network stall, a proxy or NAT box that stops forwarding while its kernel keeps
//! acknowledging) stays open: TCP keepalives and `tcp_user_timeout` are answered by
//! whatever sits in between, so they never fire. This client drives `tokio-postgres` on
//! a small runtime of its own, as that crate does, but bounds every wait:
//!
//! - opening a connection (every host of the URL, the startup and the check of
//!   `target_session_attrs`) and every statement wait at most the connection's bound
//!   ([`STALL_BOUND`], or [`SLOW_BOUND`] for statements whose work grows with the log);
//! - a statement that did not answer in time leaves the connection in an unknown
//!   state (the statement may still run, a `COMMIT` may still commit), so the
//!   connection is dropped at once: its socket is closed, [`Client::is_closed`] is
//!   true, and every later call fails without waiting. The caller reports
//!   [`Failure::Stalled`] and opens another one;
//! - closing a connection waits at most [`CLOSE_BOUND`], and not at all after a stall.
//!
//! What a timed-out statement did is not known, so callers say so: the writer answers
//! an append whose `COMMIT` did not answer as possibly written (see `writer`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::types::ToSql;
use tokio_postgres::{
    AsyncMessage, GenericClient, IsolationLevel, NoTls, Notification, Row, Socket, Statement,
    ToStatement,
};

/// The longest chronicle waits for PostgreSQL to answer one statement, or to open a
/// connection, before it takes the connection for stalled: long beside what a
/// statement of the writer or a page of a read takes (milliseconds), short beside what
/// a client waiting for an append accepts.
pub const STALL_BOUND: Duration = Duration::from_secs(5);

/// The bound for statements whose work grows with the log (`stats` counts every row;
/// a migration may build an index): they may legitimately take longer.
pub const SLOW_BOUND: Duration = Duration::from_secs(60);

/// The longest closing a connection waits for the server to take the goodbye.
const CLOSE_BOUND: Duration = Duration::from_millis(500);

/// Why a call on a [`Client`] failed.
#[derive(Debug)]
pub enum Failure {
    /// PostgreSQL answered with an error, or the connection failed.
    Pg(tokio_postgres::Error),
    /// No answer within the bound: the connection was dropped.
    Stalled(Duration),
    /// The connection was already closed (after a stall, or by the server).
    Closed,
    /// The client's own runtime could not be made.
    Runtime(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        Failure::Pg(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Pg(e) => match std::error::Error::source(e) {
                Some(cause) if e.as_db_error().is_none() => write!(f, "{e}: {cause}"),
                _ => write!(f, "{e}"),
            },
            Failure::Stalled(bound) => write!(
                f,
                "no answer within {} s; the connection was dropped",
                bound.as_secs_f64()
            ),
            Failure::Closed => write!(f, "connection closed"),
            Failure::Runtime(e) => write!(f, "cannot start the client's runtime: {e}"),
        }
    }
}

impl Failure {
    /// Whether the connection is gone (closed by the server, broken, or dropped after a
    /// stall), as opposed to a statement refused on a working connection.
    pub fn lost_connection(&self) -> bool {
        match self {
            Failure::Pg(e) => e.is_closed(),
            Failure::Stalled(_) | Failure::Closed => true,
            Failure::Runtime(_) => false,
        }
    }

    pub fn stalled(&self) -> bool {
        matches!(self, Failure::Stalled(_))
    }
}

/// One connection, used from one thread at a time.
pub struct Client {
    // Dropped first, so that the connection sees that no request will come and says
    // goodbye to the server when `conn` closes it.
    client: tokio_postgres::Client,
    conn: Conn,
}

/// The connection's side of a [`Client`]: the runtime that drives it, and the bound.
pub struct Conn {
    /// `None` once dropped (after a stall).
    connection: Option<tokio_postgres::Connection<Socket, NoTlsStream>>,
    /// The connection ended (the server closed it, or it failed).
    done: bool,
    stalled: bool,
    bound: Duration,
    notifications: VecDeque<Notification>,
    // Last: the connection's socket belongs to it.
    runtime: tokio::runtime::Runtime,
}

/// Opens a connection as `config` says, waiting at most `bound` in all.
pub fn connect(config: &tokio_postgres::Config, bound: Duration) -> Result<Client, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let opened =
        runtime.block_on(async { tokio::time::timeout(bound, config.connect(NoTls)).await });
    match opened {
        Err(_) => Err(Failure::Stalled(bound)),
        Ok(Err(e)) => Err(Failure::Pg(e)),
        Ok(Ok((client, connection))) => Ok(Client {
            client,
            conn: Conn {
                connection: Some(connection),
                done: false,
                stalled: false,
                bound,
                notifications: VecDeque::new(),
                runtime,
            },
        }),
    }
}

impl Conn {
    /// Polls the connection (taking notifications as they come) and `f` until `f` is
    /// ready or `limit` passes (`None` then).
    fn run<T>(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(
            &mut Context<'_>,
            &mut VecDeque<Notification>,
            bool,
        ) -> Poll<Result<T, Failure>>,
    ) -> Option<Result<T, Failure>> {
        let Some(connection) = self.connection.as_mut() else {
            return Some(Err(Failure::Closed));
        };
        let (done, notifications) = (&mut self.done, &mut self.notifications);
        self.runtime.block_on(async {
            let mut sleep = pin!(tokio::time::sleep(limit));
            std::future::poll_fn(|cx| {
                while !*done {
                    match connection.poll_message(cx) {
                        Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                            notifications.push_back(n)
                        }
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(e))) => {
                            *done = true;
                            return Poll::Ready(Some(Err(Failure::Pg(e))));
                        }
                        Poll::Ready(None) => *done = true,
                        Poll::Pending => break,
                    }
                }
                if let Poll::Ready(outcome) = f(cx, notifications, *done) {
                    return Poll::Ready(Some(outcome));
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await
        })
    }

    /// Runs `future` (a request on this connection) within the bound; past it, drops
    /// the connection and fails with [`Failure::Stalled`].
    fn block_on<T>(
        &mut self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Failure> {
        let mut future = pin!(future);
        let bound = self.bound;
        match self.run(bound, |cx, _, _| {
            future.as_mut().poll(cx).map_err(Failure::Pg)
        }) {
            Some(outcome) => outcome,
            None => {
                self.drop_connection();
                Err(Failure::Stalled(bound))
            }
        }
    }

    /// Sends every request at once, in order (PostgreSQL runs them one after the
    /// other), and waits within the bound for all their answers: one round trip for
    /// all of them. Each request gets its own answer; `Err` only when the bound passed
    /// (the connection is then dropped) or the connection was already closed.
    fn pipeline(
        &mut self,
        client: &tokio_postgres::Client,
        requests: &[Request<'_>],
    ) -> Result<Vec<Reply>, Failure> {
        let mut futures: Vec<Pin<Box<dyn Future<Output = Reply> + '_>>> = requests
            .iter()
            .map(|request| -> Pin<Box<dyn Future<Output = Reply> + '_>> {
                match request {
                    Request::Query(statement, params) => Box::pin(client.query(*statement, params)),
                    Request::Simple(sql) => {
                        Box::pin(
                            async move { client.batch_execute(sql).await.map(|()| Vec::new()) },
                        )
                    }
                }
            })
            .collect();
        let mut replies: Vec<Option<Reply>> = requests.iter().map(|_| None).collect();
        // Each future sends its request when first polled: polling them in order, all in
        // the same pass, sends them in order before any answer is awaited.
        let all = std::future::poll_fn(|cx| {
            let mut waiting = false;
            for (future, reply) in futures.iter_mut().zip(replies.iter_mut()) {
                if reply.is_none() {
                    match future.as_mut().poll(cx) {
                        Poll::Ready(r) => *reply = Some(r),
                        Poll::Pending => waiting = true,
                    }
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(Ok::<_, tokio_postgres::Error>(
                    replies
                        .iter_mut()
                        .map(|r| r.take().expect("every request answered"))
                        .collect(),
                ))
            }
        });
        self.block_on(all)
    }

    /// Closes the socket now, without a goodbye: the connection is in an unknown state.
    fn drop_connection(&mut self) {
        self.stalled = true;
        let _runtime = self.runtime.enter();
        self.connection = None;
    }

    fn usable(&self) -> bool {
        self.connection.is_some() && !self.done
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.usable() {
            // The client is gone: the connection sends `Terminate` and ends.
            let _ = self.run(CLOSE_BOUND, |_, _, done| {
                if done {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            });
        }
        self.drop_connection();
    }
}

/// A request of a [`Client::pipeline`].
pub enum Request<'a> {
    /// A prepared statement with its parameters (its rows are the answer).
    Query(&'a Statement, Vec<&'a (dyn ToSql + Sync)>),
    /// A statement without parameters or rows (`BEGIN`, `COMMIT`), in the simple
    /// protocol.
    Simple(&'static str),
}

/// The answer to one request of a [`Client::pipeline`]: its rows (none for a
/// [`Request::Simple`]), or what PostgreSQL or the connection answered.
pub type Reply = Result<Vec<Row>, tokio_postgres::Error>;

/// The statements a [`Client`] and a [`Transaction`] both run.
pub trait Session {
    type Inner: GenericClient + Sync;

    fn parts(&mut self) -> (&mut Conn, &Self::Inner);

    fn query<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Failure>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        let (conn, inner) = self.parts();
        conn.block_on(inner.query(statement, params))
    }

    fn query_one<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Failure>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        let (conn, inner) = self.parts();
        conn.block_on(inner.query_one(statement, params))
    }

    fn query_opt<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Failure>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        let (conn, inner) = self.parts();
        conn.block_on(inner.query_opt(statement, params))
    }

    fn execute<T>(&mut self, statement: &T, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Failure>
    where
        T: ?Sized + ToStatement + Sync + Send,
    {
        let (conn, inner) = self.parts();
        conn.block_on(inner.execute(statement, params))
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), Failure> {
        let (conn, inner) = self.parts();
        conn.block_on(inner.batch_execute(sql))
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, Failure> {
        let (conn, inner) = self.parts();
        conn.block_on(inner.prepare(sql))
    }
}

impl Session for Client {
    type Inner = tokio_postgres::Client;

    fn parts(&mut self) -> (&mut Conn, &tokio_postgres::Client) {
        (&mut self.conn, &self.client)
    }
}

impl Client {
    /// Whether the connection is gone: closed by the server, failed, or dropped after a
    /// stall. A closed client fails every call at once.
    pub fn is_closed(&self) -> bool {
        !self.conn.usable() || self.client.is_closed()
    }

    /// Whether the connection was dropped because a call did not answer in time.
    pub fn stalled(&self) -> bool {
        self.conn.stalled
    }

    /// Runs `f` with another bound for each of its statements (see [`SLOW_BOUND`]).
    pub fn with_bound<T>(&mut self, bound: Duration, f: impl FnOnce(&mut Client) -> T) -> T {
        let usual = std::mem::replace(&mut self.conn.bound, bound);
        let result = f(self);
        self.conn.bound = usual;
        result
    }

    /// Sends `requests` at once, in order, and waits (within the bound, for all of
    /// them together) for their answers, one per request: a round trip for all of
    /// them. PostgreSQL runs them one after the other, each to its end; after one
    /// fails inside a transaction, the ones after it fail too (the transaction is
    /// aborted) and a `COMMIT` among them rolls back. `Err` when no answer came within
    /// the bound (the connection is dropped: what was run is unknown) or the
    /// connection was closed.
    pub fn pipeline(&mut self, requests: &[Request<'_>]) -> Result<Vec<Reply>, Failure> {
        self.conn.pipeline(&self.client, requests)
    }

    /// Closes the connection at once (its server rolls back an open transaction).
    pub fn discard(&mut self) {
        let stalled = self.conn.stalled;
        self.conn.drop_connection();
        self.conn.stalled = stalled;
    }

    /// Starts a transaction (`BEGIN`); it rolls back when dropped uncommitted.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, Failure> {
        let tx = self.conn.block_on(self.client.transaction())?;
        Ok(Transaction {
            conn: &mut self.conn,
            tx: Some(tx),
        })
    }

    /// Starts a read-only transaction that sees one snapshot of the database for all
    /// its statements (`REPEATABLE READ`).
    pub fn snapshot(&mut self) -> Result<Transaction<'_>, Failure> {
        let start = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start();
        let tx = self.conn.block_on(start)?;
        Ok(Transaction {
            conn: &mut self.conn,
            tx: Some(tx),
        })
    }

    /// Waits up to `wait` for a notification (after `LISTEN`), and takes every one that
    /// came. Returns whether one did; fails when the connection is gone.
    pub fn notified(&mut self, wait: Duration) -> Result<bool, Failure> {
        let waited = self.conn.run(wait, |_, notifications, done| {
            if !notifications.is_empty() {
                Poll::Ready(Ok(()))
            } else if done {
                Poll::Ready(Err(Failure::Closed))
            } else {
                Poll::Pending
            }
        });
        match waited {
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                self.conn.notifications.clear();
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A transaction on a [`Client`]: committed by [`Transaction::commit`], rolled back
/// when dropped otherwise (within the bound, and not at all on a stalled connection,
/// whose server rolls it back when the connection ends).
pub struct Transaction<'a> {
    conn: &'a mut Conn,
    tx: Option<tokio_postgres::Transaction<'a>>,
}

impl<'a> Session for Transaction<'a> {
    type Inner = tokio_postgres::Transaction<'a>;

    fn parts(&mut self) -> (&mut Conn, &tokio_postgres::Transaction<'a>) {
        let tx = self
            .tx
            .as_ref()
            .expect("present until the transaction ends, which takes it by value");
        (&mut *self.conn, tx)
    }
}

impl Transaction<'_> {
    /// `COMMIT`. A [`Failure::Stalled`] means the outcome is unknown: the `COMMIT` was
    /// sent and may have been carried out.
    pub fn commit(mut self) -> Result<(), Failure> {
        match self.tx.take() {
            Some(tx) => self.conn.block_on(tx.commit()),
            None => Err(Failure::Closed),
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take()
            && self.conn.usable()
        {
            let _ = self.conn.block_on(tx.rollback());
        }
    }
}
