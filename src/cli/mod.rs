//! The command line: argument parsing, one module per subcommand, and the mapping from
//! errors to exit codes. Only this module knows about terminals.

mod append;
mod as_of;
mod demo;
mod entity;
mod export;
mod import;
mod input;
mod log;
mod output;
mod recover;
mod remote;
mod replay;
mod sales;
mod serve;
mod stats;
mod timeline;
mod trip;
mod types;
mod verify;

use anyhow::Context;
use chronicle::Error;
use chronicle::store::SledStore;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EXAMPLES: &str = "\
Examples:
  chronicle demo                                   import the bundled article and show it
  chronicle types show statement.issued            a type's fields and a template to fill in
  chronicle import events/                         import every .jsonl file of a folder
  chronicle append --file new-facts.jsonl          append JSON Lines atomically
  chronicle log --stream trip:blinken-final-tour-2025
  chronicle trip show trip:blinken-final-tour-2025
  chronicle timeline --entity Japan --as-of 30
  chronicle --db /srv/news.db stats --json
  chronicle serve --addr 127.0.0.1:7070            the HTTP API (other commands then go through it)
  chronicle recover --out rescued.jsonl            a store that will not open: make it open again";

/// An event-sourced news-tracking backend: facts from the news as an immutable,
/// hash-chained log, with views that can answer as of any point of it.
#[derive(Parser)]
#[command(name = "chronicle", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The store directory (created on first write).
    #[arg(
        long,
        global = true,
        env = "CHRONICLE_DB",
        default_value = "./chronicle.db"
    )]
    pub db: PathBuf,
    /// Machine-readable output: JSON (JSON Lines for `log`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Work through the HTTP API of this `chronicle serve` (http://HOST:PORT) instead of
    /// opening the store. Without it, a command that finds the store held by a server
    /// uses the server that the store's `.server.json` names.
    #[arg(long, global = true, env = "CHRONICLE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    Demo(demo::Args),
    Append(append::Args),
    Import(import::Args),
    Log(log::Args),
    Replay(replay::Args),
    Trip(trip::Args),
    Timeline(timeline::Args),
    Entity(entity::Args),
    Sales(sales::Args),
    Stats(stats::Args),
    Export(export::Args),
    Verify(verify::Args),
    Recover(recover::Args),
    Serve(serve::Args),
    Types(types::Args),
}

/// Global options every subcommand gets.
pub struct App {
    pub db: PathBuf,
    pub json: bool,
    pub server: Option<String>,
    /// Open even a store whose chain end is broken (see [`App::open_raw`]).
    pub inspect: bool,
}

/// Where a command does its work: in the store, or through a server that holds it.
pub enum Backend {
    Store(SledStore),
    Server(remote::Api),
}

/// A `--category` value: lowercase letters, digits and `-`, so that `TRIP` is an error
/// rather than a filter that matches nothing.
fn category(text: &str) -> Result<String, String> {
    chronicle::model::ids::check_category(text).map(|()| text.to_owned())
}

/// A `--limit` value: a whole number from 1, as the API's `limit` (a limit of 0 would
/// answer nothing and say nothing about why).
fn limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a whole number from 1; leave --limit out for all"
        )),
    }
}

/// A mistake in how the command was called: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl App {
    /// Whether `--db` holds a store already (sled writes `conf` when it creates one).
    pub fn store_exists(&self) -> bool {
        self.db.join("conf").is_file()
    }

    /// Refuses a `--db` that is a file or a folder of other files, so that chronicle
    /// never scatters a store among a user's files; with `must_exist`, also a path
    /// with no store yet.
    fn check_db_path(&self, must_exist: bool) -> anyhow::Result<()> {
        let db = &self.db;
        if db.is_file() {
            return Err(UsageError(format!(
                "{} is a file; --db takes the store's folder (created when missing)",
                db.display()
            ))
            .into());
        }
        let is_store = self.store_exists();
        if must_exist && !is_store {
            return Err(UsageError(format!(
                "no store at {}; create one with `chronicle demo` or `chronicle import FILE`, or pass --db",
                db.display()
            ))
            .into());
        }
        // chronicle writes its lock file before sled writes anything, so a folder a
        // killed first open left behind is still recognised as ours.
        let started_by_chronicle = db.join(chronicle::store::LOCK_FILE).is_file();
        let has_other_files =
            std::fs::read_dir(db).is_ok_and(|mut entries| entries.next().is_some());
        if !is_store && !started_by_chronicle && has_other_files {
            return Err(UsageError(format!(
                "{} is a folder of other files, not a chronicle store; pass --db a new or empty folder",
                db.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Opens the store without waiting: for inspecting commands even when the end of
    /// the hash chain is broken, so that they can show what is wrong.
    pub fn open_raw(&self) -> chronicle::Result<SledStore> {
        if self.inspect {
            SledStore::open_to_inspect(&self.db)
        } else {
            SledStore::open(&self.db)
        }
    }

    /// Opens (or creates) the store. When another process holds it, waits briefly for
    /// it to let go (a `log --follow` holds it only for a moment at a time).
    pub fn open_store(&self) -> anyhow::Result<SledStore> {
        self.check_db_path(false)?;
        if self.server.is_some() {
            return Err(UsageError(
                "this command works on the store itself, not through a server: leave out --server (and CHRONICLE_SERVER)".into(),
            )
            .into());
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.open_raw() {
                Err(e @ Error::Locked { .. }) => {
                    // A server does not let go: say so at once instead of waiting.
                    if let Some(api) = remote::discover(&self.db) {
                        return Err(anyhow::Error::new(e).context(format!(
                            "opening store at {} (a `chronicle serve` at {} holds it, and this command cannot work through its API: stop the server to run it)",
                            self.db.display(),
                            api.url()
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Err(anyhow::Error::new(e)
                            .context(format!("opening store at {}", self.db.display())));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                result => {
                    return result
                        .with_context(|| format!("opening store at {}", self.db.display()));
                }
            }
        }
    }

    /// Opens a store that must already exist: reading commands never create one.
    pub fn open_existing_store(&self) -> anyhow::Result<SledStore> {
        self.check_db_path(true)?;
        self.open_store()
    }

    /// Opens the store, or, when a running server holds it (or `--server` names one),
    /// a client of that server's API. With `existing`, a missing store is an error.
    pub fn open_or_server(&self, existing: bool) -> anyhow::Result<Backend> {
        if let Some(url) = &self.server {
            return Ok(Backend::Server(remote::Api::new(url)?));
        }
        self.check_db_path(existing)?;
        match self.open_raw() {
            Ok(store) => return Ok(Backend::Store(store)),
            Err(Error::Locked { .. }) => {
                if let Some(api) = remote::discover(&self.db) {
                    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                        eprintln!(
                            "note: a `chronicle serve` holds {}; working through its API at {}",
                            self.db.display(),
                            api.url()
                        );
                    }
                    return Ok(Backend::Server(api));
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening store at {}", self.db.display()));
            }
        }
        self.open_store().map(Backend::Store)
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Err(err) = check_location(&cli.db) {
        return report(&err);
    }
    let app = App {
        db: cli.db,
        json: cli.json,
        server: cli.server,
        // These only read the log, and are how a damaged log is looked into.
        inspect: matches!(
            cli.command,
            Command::Log(_) | Command::Verify(_) | Command::Export(_)
        ),
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(args, &app),
        Command::Append(args) => append::run(args, &app),
        Command::Import(args) => import::run(args, &app),
        Command::Log(args) => log::run(args, &app),
        Command::Replay(args) => replay::run(args, &app),
        Command::Trip(args) => trip::run(args, &app),
        Command::Timeline(args) => timeline::run(args, &app),
        Command::Entity(args) => entity::run(args, &app),
        Command::Sales(args) => sales::run(args, &app),
        Command::Stats(args) => stats::run(args, &app),
        Command::Export(args) => export::run(args, &app),
        Command::Verify(args) => verify::run(args, &app),
        Command::Recover(args) => recover::run(args, &app),
        Command::Serve(args) => serve::run(args, &app),
        Command::Types(args) => types::run(args, &app),
    };
    match result {
        Ok(()) => 0,
        Err(err) => report(&err),
    }
}

/// Refuses a `--db` that is a URL: every command here works on a sled folder, and a
/// URL must never be taken for one (it used to create a folder named `postgres:`).
/// The PostgreSQL log exists in the library (`store::PgStore`); the commands are
/// wired to it separately.
fn check_location(db: &std::path::Path) -> anyhow::Result<()> {
    use chronicle::store::StoreLocation;
    match StoreLocation::parse(db).context("--db")? {
        StoreLocation::Dir(_) => Ok(()),
        StoreLocation::Postgres(_) => Err(UsageError(
            "--db names a PostgreSQL log, which the command line cannot open yet (only the library and its tests use it so far); pass --db a folder for the sled log".into(),
        )
        .into()),
    }
}

/// Prints the error as one line and picks the exit code (SPEC.md "Exit codes").
fn report(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            // `chronicle log | head`: the reader has all it wanted.
            return 0;
        }
    }
    // One line, always: a value quoted from the input may hold a line break.
    let message = format!("{err:#}").replace('\r', "\\r").replace('\n', "\\n");
    eprintln!("error: {message}");
    err.chain()
        .find_map(|cause| {
            if let Some(e) = cause.downcast_ref::<Error>() {
                Some(e.exit_code())
            } else {
                cause.downcast_ref::<UsageError>().map(|_| 2)
            }
        })
        .unwrap_or(1)
}
