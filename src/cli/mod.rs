//! The command line: argument parsing, one module per subcommand, and the mapping from
//! errors to exit codes. Only this module knows about terminals. Every subcommand works
//! on a `store::Store`, so the same code serves a sled folder and a PostgreSQL URL
//! (`--db`); what only sled has (`recover`) says so on a URL, with exit 2.

/// `eprintln!` that never panics: a note or an error that cannot be written (stderr on
/// a full disk, a pipe whose reader is gone) is dropped, and the command's work and
/// exit code stand.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", crate::cli::output::inert(&text));
    }};
}

mod append;
mod as_of;
mod demo;
mod entity;
mod export;
mod import;
mod input;
mod interrupt;
mod log;
mod out_file;
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
use chronicle::model::ValidationError;
use chronicle::query::Query;
use chronicle::store::{Opening, SledStore, Store, StoreLocation};
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

/// `--version`: the release, the commit it was built from, and the store format it
/// writes (a store written in a newer format is refused; an older one is upgraded).
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (commit {}, store format {})",
        env!("CARGO_PKG_VERSION"),
        env!("CHRONICLE_COMMIT"),
        chronicle::store::FORMAT_VERSION
    )
});

/// An event-sourced news-tracking backend: facts from the news as an immutable,
/// hash-chained log, with views that can answer as of any point of it.
#[derive(Parser)]
#[command(
    name = "chronicle",
    version = VERSION.as_str(),
    after_help = EXAMPLES,
    // Shown apart from each command's own options in every `--help`.
    next_help_heading = "Global options"
)]
pub struct Cli {
    /// The store: a directory for the sled log (created on first write), or a
    /// PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) for the shared log.
    #[arg(
        long,
        global = true,
        env = "CHRONICLE_DB",
        default_value = "./chronicle.db",
        hide_env_values = true
    )]
    pub db: PathBuf,
    /// With a PostgreSQL --db: the folder of this process's views of the log (created
    /// when missing; one process at a time). Default: chronicle-views/<hash of the
    /// URL without user and password> in the current folder. A sled store keeps its
    /// views inside its own folder.
    #[arg(
        long,
        global = true,
        env = "CHRONICLE_VIEWS",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub views: Option<PathBuf>,
    /// Machine-readable output: JSON (JSON Lines for `log`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Work through the HTTP API of this `chronicle serve` (http://HOST:PORT) instead of
    /// opening the store; a sled --db given beside it must be that server's store.
    /// Without it, a command that finds the store held by a server uses the server that
    /// the store's `.server.json` names.
    #[arg(
        long,
        global = true,
        env = "CHRONICLE_SERVER",
        value_name = "URL",
        hide_env_values = true
    )]
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
    /// `--db`, parsed. Never print a URL (it may hold a password): see [`App::describe`].
    pub location: StoreLocation,
    /// The folder of the views of a PostgreSQL log.
    pub views: Option<PathBuf>,
    /// Whether the command reads the views: only then are they opened (a sled store's
    /// views fold what was appended without them at their next open).
    pub needs_views: bool,
    pub json: bool,
    pub server: Option<String>,
    /// Whether `--db` was given on the command line: beside a server, it must name that
    /// server's store (`CHRONICLE_DB`, a setting, gives way to the server named).
    pub db_given: bool,
    /// Open even a store whose chain end is broken (see [`App::open_raw`]).
    pub inspect: bool,
}

/// Where a command does its work: in the store, or through a server that holds it.
pub enum Backend {
    Store(Store),
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
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
            Err(format!("`{text}` is too large; leave --limit out for all"))
        }
        _ => Err(format!(
            "`{text}` is not a whole number from 1; leave --limit out for all"
        )),
    }
}

/// A `--from` value: a position, a whole number (the log's first is 1).
fn position(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) => Ok(n),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Err(format!(
            "`{text}` is past the end of any log; `chronicle stats` shows where this one ends"
        )),
        Err(_) => Err(format!(
            "`{text}` is not a position: give a whole number (the log's first event is at 1)"
        )),
    }
}

/// What a command that works on the store's files says to `--server`.
const SERVER_REFUSED: &str = "this command works on the store itself, not through a server: leave out --server (and CHRONICLE_SERVER)";

/// A mistake in how the command was called: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl App {
    /// The folders that hold the store's own files (a sled store's folder, the views
    /// folder, given or PostgreSQL's default): nothing a command writes for the user
    /// goes there.
    pub fn own_folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = self.views.iter().cloned().collect();
        folders.extend(self.local_dir().ok());
        folders
    }

    /// Whether `--db` holds a store already (sled writes `conf` when it creates one; a
    /// PostgreSQL log is taken to exist: its tables are made on first open).
    pub fn store_exists(&self) -> bool {
        match &self.location {
            // A store that lost its `conf` too: opening it says to run `recover`.
            StoreLocation::Dir(dir) => chronicle::store::holds_store(dir),
            StoreLocation::Postgres(_) => true,
        }
    }

    /// The store for people: the folder, or the URL without user and password.
    pub fn describe(&self) -> String {
        match &self.location {
            StoreLocation::Dir(dir) => dir.display().to_string(),
            StoreLocation::Postgres(url) => {
                chronicle::store::describe_url(url).unwrap_or_else(|_| "the PostgreSQL log".into())
            }
        }
    }

    /// The folder this process works in and a server announces itself beside: the
    /// sled store's, or the views' of a PostgreSQL log.
    pub fn local_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.location {
            StoreLocation::Dir(dir) => Ok(dir.clone()),
            StoreLocation::Postgres(url) => match &self.views {
                Some(dir) => Ok(dir.clone()),
                None => Ok(chronicle::store::default_views_dir(url).context("--db")?),
            },
        }
    }

    /// The sled folder, or an exit-2 error saying that `what` needs one.
    pub fn sled_dir(&self, what: &str) -> anyhow::Result<&std::path::Path> {
        match &self.location {
            StoreLocation::Dir(dir) => Ok(dir),
            StoreLocation::Postgres(_) => Err(UsageError(what.to_owned()).into()),
        }
    }

    /// Refuses a `--db` that is a file or a folder of other files, so that chronicle
    /// never scatters a store among a user's files; with `must_exist`, also a path
    /// with no store yet.
    fn check_db_path(&self, must_exist: bool) -> anyhow::Result<()> {
        let StoreLocation::Dir(db) = &self.location else {
            return self.check_views_path();
        };
        if db.is_file() {
            return Err(UsageError(format!(
                "{} is a file; --db takes the store's folder (created when missing)",
                db.display()
            ))
            .into());
        }
        if let Some(file) = db.ancestors().skip(1).find(|a| a.is_file()) {
            return Err(UsageError(format!(
                "--db {} is inside {}, which is a file; pass --db a folder (created when missing)",
                db.display(),
                file.display()
            ))
            .into());
        }
        // A store's own views (`views`, or `views.<n>` after a replay) are a sled
        // database too, which sled would write to on open.
        if let Some(store) = db
            .parent()
            .filter(|p| p.join(chronicle::store::LOCK_FILE).is_file())
            && db
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "views" || n.starts_with("views."))
        {
            return Err(UsageError(format!(
                "{} is the views folder of the store at {}; pass --db {}",
                db.display(),
                store.display(),
                store.display()
            ))
            .into());
        }
        let is_store = self.store_exists();
        if must_exist && !is_store {
            // `--db news` for `--db news/chronicle.db`: name the store that is there.
            let inside = db.join("chronicle.db");
            if chronicle::store::holds_store(&inside) {
                return Err(UsageError(format!(
                    "no store at {}, but {} is one; pass --db {}",
                    db.display(),
                    inside.display(),
                    inside.display()
                ))
                .into());
            }
        }
        // chronicle writes its lock file before sled writes anything, so a folder a
        // killed first open left behind is still recognised as ours.
        let started_by_chronicle = db.join(chronicle::store::LOCK_FILE).is_file();
        let has_other_files =
            std::fs::read_dir(db).is_ok_and(|mut entries| entries.next().is_some());
        if !is_store && !started_by_chronicle && has_other_files {
            return Err(UsageError(format!(
                "{} is a folder of other files, not a chronicle store; pass --db {}",
                db.display(),
                match must_exist {
                    true => "an existing store",
                    false => "a new or empty folder",
                }
            ))
            .into());
        }
        if must_exist && !is_store {
            return Err(UsageError(format!(
                "no store at {}; create one with `chronicle demo` or `chronicle import FILE`, or point --db (or CHRONICLE_DB) at an existing store",
                db.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Refuses a views folder that is a file or a folder of other files (as `--db` is
    /// refused for a sled store), so that chronicle never scatters its views among a
    /// user's files.
    fn check_views_path(&self) -> anyhow::Result<()> {
        if !self.needs_views {
            return Ok(());
        }
        let dir = self.local_dir()?;
        if dir.is_file() {
            return Err(UsageError(format!(
                "--views {} is a file; pass the folder of this process's views (created when missing)",
                dir.display()
            ))
            .into());
        }
        let ours = dir.join(chronicle::store::LOCK_FILE).is_file();
        let has_files = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
        if has_files && !ours {
            return Err(UsageError(format!(
                "--views {} is a folder of other files, not chronicle's views; pass a new or empty folder",
                dir.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Opens the store without waiting: for inspecting commands even when the end of
    /// the hash chain is broken, so that they can show what is wrong. On PostgreSQL,
    /// the views are opened only for a command that reads them.
    pub fn open_raw(&self) -> chronicle::Result<Store> {
        self.open_as(self.needs_views)
    }

    /// [`App::open_raw`], with the views or without them.
    fn open_as(&self, needs_views: bool) -> chronicle::Result<Store> {
        let store = match &self.location {
            StoreLocation::Dir(dir) => SledStore::open_as(
                dir,
                Opening {
                    log_only: !needs_views,
                    inspect: self.inspect,
                },
            )
            .map(Into::into),
            StoreLocation::Postgres(url) => {
                let views = match (needs_views, &self.views) {
                    (false, _) => None,
                    (true, Some(dir)) => Some(dir.clone()),
                    (true, None) => Some(chronicle::store::default_views_dir(url)?),
                };
                Store::open_pg_as(url, views.as_deref(), self.inspect)
            }
        }?;
        self.forget_a_dead_server();
        Ok(store)
    }

    /// `error`, an append's or an import's refusal, with what the local store's views
    /// say an entity named in it was meant to be ([`Query::add_entity_hint`]).
    /// `store`, when the command has it open, is closed first: it may hold the log
    /// alone. Views not kept yet (PostgreSQL's folder for this process) are not made for
    /// a hint, and a store another process holds gives none.
    pub fn with_entity_hint(
        &self,
        mut error: anyhow::Error,
        store: Option<Store>,
    ) -> anyhow::Error {
        drop(store);
        if !error
            .downcast_ref::<Error>()
            .is_some_and(chronicle::query::may_hint)
        {
            return error;
        }
        let has_views = self.server.is_none()
            && self.store_exists()
            && self.local_dir().is_ok_and(|dir| dir.exists());
        let Some(store) = has_views.then(|| self.open_as(true).ok()).flatten() else {
            return error;
        };
        // Caught up with the log, as every query is: views behind it could take a name
        // the log registered just now for a typo of another.
        if let Ok(views) = store.live_views()
            && let Some(refusal) = error.downcast_mut::<Error>()
        {
            Query::new(&views).add_entity_hint(refusal);
        }
        error
    }

    /// Removes the `.server.json` a server killed before it could remove it left
    /// beside this process's folder. Called with the folder's lock held (a sled store,
    /// or PostgreSQL's views folder), which a running server would hold instead.
    fn forget_a_dead_server(&self) {
        let holds_the_folder = match self.location {
            StoreLocation::Dir(_) => true,
            StoreLocation::Postgres(_) => self.needs_views,
        };
        if let (true, Ok(dir)) = (holds_the_folder, self.local_dir()) {
            // Best effort: a file that stays is only seen through (nothing answers).
            let _ = std::fs::remove_file(remote::server_file(&dir));
        }
    }

    /// A sled store given with `--db` on the command line beside `--server` must be the
    /// one that server holds (its `.server.json` names it, and a process holds it: a
    /// file left by a server killed with -9 does not count): otherwise a write meant for
    /// the store would land in the server's, with nothing said. A PostgreSQL `--db` is
    /// not checked: any server of that log serves it, and its views folder may be
    /// anywhere.
    fn check_db_is_served_by(&self, api: &remote::Api) -> anyhow::Result<()> {
        let StoreLocation::Dir(dir) = &self.location else {
            return Ok(());
        };
        if !self.db_given {
            return Ok(());
        }
        let announced =
            remote::announced(dir).filter(|_| chronicle::store::is_held_by_a_process(dir));
        if announced
            .as_ref()
            .is_some_and(|file| file.serves(api.url()))
        {
            return Ok(());
        }
        let holder = match announced {
            Some(file) => format!("its server is the one at {}", file.url),
            None => "no server holds it".to_owned(),
        };
        Err(UsageError(format!(
            "--db {} is not the store of the server at {} ({holder}); leave out --db to work on the server's store, or leave out --server (and CHRONICLE_SERVER) to work on {}",
            self.describe(),
            api.url(),
            self.describe()
        ))
        .into())
    }

    /// The server announced beside this process's folder, if one answers.
    pub fn discover(&self) -> Option<remote::Api> {
        remote::discover(&self.local_dir().ok()?)
    }

    /// Opens (or creates) the store. When another process holds it, waits briefly for
    /// it to let go (a `log --follow` holds it only for a moment at a time).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        self.check_db_path(false)?;
        if self.server.is_some() {
            return Err(UsageError(SERVER_REFUSED.into()).into());
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.open_raw() {
                Err(Error::Locked {
                    path,
                    views,
                    holder,
                }) => {
                    // A server does not let go: say so at once instead of waiting.
                    if let Some(api) = self.discover() {
                        let (held, instead) = match self.location {
                            StoreLocation::Dir(_) => (
                                format!("the store at {}", self.describe()),
                                "stop the server to run it",
                            ),
                            StoreLocation::Postgres(_) => (
                                format!("the views folder {}", path.display()),
                                "stop the server, or pass --views with another folder",
                            ),
                        };
                        return Err(HeldByServer(format!(
                            "{held} is held by the `chronicle serve` at {}, and this command cannot work through its API: {instead}",
                            api.url()
                        ))
                        .into());
                    }
                    if Instant::now() >= deadline {
                        return Err(anyhow::Error::new(Error::Locked {
                            path,
                            views,
                            holder,
                        })
                        .context(format!("opening store at {}", self.describe())));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                result => {
                    return result.with_context(|| format!("opening store at {}", self.describe()));
                }
            }
        }
    }

    /// Opens a store that must already exist: reading commands never create one.
    pub fn open_existing_store(&self) -> anyhow::Result<Store> {
        self.check_db_path(true)?;
        self.open_store()
    }

    /// Opens the store, or, when a running server holds it (or `--server` names one),
    /// a client of that server's API. With `existing`, a missing store is an error.
    pub fn open_or_server(&self, existing: bool) -> anyhow::Result<Backend> {
        if let Some(url) = &self.server {
            let api = remote::Api::new(url)?;
            self.check_db_is_served_by(&api)?;
            return Ok(Backend::Server(api));
        }
        self.check_db_path(existing)?;
        match self.open_raw() {
            Ok(store) => return Ok(Backend::Store(store)),
            Err(Error::Locked { .. }) => {
                if let Some(api) = self.discover() {
                    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                        note!(
                            "note: a `chronicle serve` holds {}; working through its API at {}",
                            self.local_dir()
                                .map_or_else(|_| self.describe(), |d| d.display().to_string()),
                            api.url()
                        );
                    }
                    return Ok(Backend::Server(api));
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening store at {}", self.describe()));
            }
        }
        self.open_store().map(Backend::Store)
    }
}

/// What the store reports while a command runs (views sled cannot open, removed and
/// rebuilt; what a failed commit left, cleared) is shown on stderr as `warning: …` or
/// `error: …`, the way the command's own errors are. `RUST_LOG` picks other levels, as
/// for `serve` (which logs with times and targets instead: `serve::init_logging`); one
/// that does not parse is ignored here, since no command but `serve` is about logs.
fn show_warnings() {
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format};
    use tracing_subscriber::registry::LookupSpan;

    struct Plain;
    impl<S, N> FormatEvent<S, N> for Plain
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: format::Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> std::fmt::Result {
            let level = match *event.metadata().level() {
                tracing::Level::ERROR => "error",
                tracing::Level::WARN => "warning",
                _ => "note",
            };
            write!(writer, "{level}: ")?;
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        }
    }

    // Not the commit's own lines: a failed commit is the command's error, told once.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|spec| !spec.trim().is_empty())
        .and_then(|spec| tracing_subscriber::EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn,chronicle::commit=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A line that cannot be written is dropped (see `note!`).
        .log_internal_errors(false)
        .event_format(Plain)
        .try_init();
}

/// The command line, with an empty `CHRONICLE_DB`, `CHRONICLE_VIEWS`,
/// `CHRONICLE_SERVER` or `CHRONICLE_TOKEN` taken as unset (`CHRONICLE_DB= chronicle stats` uses
/// `./chronicle.db`), as a shell user means it, not as an empty value given; and whether
/// `--db` was given on the command line.
fn parse() -> Result<(Cli, bool), clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    for (arg, var) in [
        ("db", "CHRONICLE_DB"),
        ("views", "CHRONICLE_VIEWS"),
        ("server", "CHRONICLE_SERVER"),
    ] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            command = command.mut_arg(arg, |a| a.env(None::<&str>));
        }
    }
    // The client already sends no token for an empty one (`remote::Api::new`).
    if std::env::var_os("CHRONICLE_TOKEN").is_some_and(|v| v.is_empty()) {
        command = command.mut_subcommand("serve", |serve| {
            serve.mut_arg("token", |a| a.env(None::<&str>))
        });
    }
    let matches = command.try_get_matches()?;
    let db_given = matches.value_source("db") == Some(clap::parser::ValueSource::CommandLine);
    Ok((Cli::from_arg_matches(&matches)?, db_given))
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let (cli, db_given) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => return usage_error(&e),
    };
    if !matches!(cli.command, Command::Serve(_)) {
        show_warnings();
    }
    // Said before any work, so that an import's input is not checked against a store
    // the user did not mean.
    let on_files_only = matches!(
        cli.command,
        Command::Import(_)
            | Command::Demo(_)
            | Command::Replay(_)
            | Command::Verify(_)
            | Command::Recover(_)
    );
    if on_files_only && cli.server.is_some() {
        return report(&UsageError(SERVER_REFUSED.into()).into());
    }
    let location = match check_location(&cli.db, cli.views.as_deref()) {
        Ok(location) => location,
        Err(err) => return report(&err),
    };
    // Commands that show the views (or check them); the others need only the log.
    // An import into a sled store waits for its views to fold it (`import::settle`).
    let needs_views = match cli.command {
        Command::Import(_) => matches!(location, StoreLocation::Dir(_)),
        _ => !matches!(
            cli.command,
            Command::Append(_)
                | Command::Log(_)
                | Command::Export(_)
                | Command::Recover(_)
                | Command::Types(_)
        ),
    };
    let app = App {
        location,
        views: cli.views,
        needs_views,
        json: cli.json,
        server: cli.server,
        db_given,
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
        Command::Replay(args) => {
            replay::run(args, &app).map_err(|e| in_cli_words(e, &["projection"]))
        }
        Command::Trip(args) => trip::run(args, &app).map_err(|e| in_cli_words(e, &[])),
        Command::Timeline(args) => {
            timeline::run(args, &app).map_err(|e| in_cli_words(e, &["entity"]))
        }
        Command::Entity(args) => entity::run(args, &app).map_err(|e| in_cli_words(e, &[])),
        Command::Sales(args) => {
            sales::run(args, &app).map_err(|e| in_cli_words(e, &["buyer", "seller"]))
        }
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

/// Parses `--db` (a URL is never taken for a folder) and refuses `--views` beside a
/// sled store, which keeps its views in its own folder.
fn check_location(
    db: &std::path::Path,
    views: Option<&std::path::Path>,
) -> anyhow::Result<StoreLocation> {
    let location = StoreLocation::parse(db).context("--db")?;
    if let (StoreLocation::Dir(dir), Some(_)) = (&location, views) {
        return Err(UsageError(format!(
            "--views is for a PostgreSQL log (--db postgres://…); the sled store at {} keeps its views in its own folder: leave out --views (and CHRONICLE_VIEWS)",
            dir.display()
        ))
        .into());
    }
    Ok(location)
}

/// Prints the error as one line and picks the exit code (the README lists them, after "Limits").
/// A command line clap refused, as one line (clap's own is several: the error, a tip,
/// the usage, a pointer to `--help`), exit 2. Help and version print as clap prints
/// them.
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Help that cannot be written to stdout is an error like any other output's (a
        // closed pipe, `chronicle --help | head`, is not); help clap writes to stderr
        // (a command given without its subcommand) keeps its exit code.
        use std::io::Write;
        return match e.print().and_then(|()| std::io::stdout().flush()) {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe && !e.use_stderr() => {
                note!("error: writing to standard output: {error}");
                1
            }
            _ => e.exit_code(),
        };
    }
    note!("{}", one_line_usage_error(&e.render().to_string()));
    2
}

/// `error: … (tip); see `chronicle SUB --help`` from clap's rendered error; the
/// subcommand is the one named on the command line.
fn one_line_usage_error(rendered: &str) -> String {
    let mut error = Vec::new();
    let mut tips = Vec::new();
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(tip) = line.strip_prefix("tip: ") {
            // "to pass '--x' as a value, use '-- --x'": no argument of chronicle's is a
            // value that starts with `--`, so the tip only distracts from the help.
            if !tip.starts_with("to pass '") {
                tips.push(tip);
            }
        } else if !line.starts_with("Usage: ") && !line.starts_with("For more information") {
            error.push(line);
        }
    }
    let mut line = error.join(" ");
    if !tips.is_empty() {
        line = format!("{line} ({})", tips.join("; "));
    }
    format!("{line}; see `{} --help`", command_named())
}

/// `chronicle` and the subcommands named on the command line (`chronicle trip show`).
fn command_named() -> String {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut path = vec!["chronicle".to_owned()];
    for arg in std::env::args().skip(1) {
        match command.find_subcommand(&arg) {
            Some(sub) => {
                path.push(sub.get_name().to_owned());
                command = sub.clone();
            }
            None => continue,
        }
    }
    path.join(" ")
}

/// The store is held by a running server, and the command cannot go through its API:
/// exit 5, as for any store in use, with the one message that says which server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HeldByServer(String);

/// A query's lookup that found nothing (no such trip or entity), told in the CLI's
/// words: named by its flag (`--buyer: no entity is named …`) when it came from one of
/// `flags`, else (the command's own argument) by its message alone. The views and the
/// API name it as a field (`buyer`); through a server the answer is the same error.
fn in_cli_words(err: anyhow::Error, flags: &[&str]) -> anyhow::Error {
    match err.downcast_ref::<Error>() {
        Some(Error::Invalid {
            index: None,
            error:
                ValidationError {
                    line: None,
                    field: Some(field),
                    message,
                },
        }) => match flags.contains(&field.as_str()) {
            true => UsageError(format!("--{field}: {message}")).into(),
            false => UsageError(message.clone()).into(),
        },
        _ => err,
    }
}

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
    note!("error: {message}");
    err.chain()
        .find_map(|cause| {
            if let Some(e) = cause.downcast_ref::<Error>() {
                Some(e.exit_code())
            } else if cause.is::<HeldByServer>() {
                Some(5)
            } else if cause.is::<input::ConflictOnLine>() {
                Some(3)
            } else if let Some(stop) = cause.downcast_ref::<interrupt::Interrupted>() {
                Some(stop.exit())
            } else {
                cause.downcast_ref::<UsageError>().map(|_| 2)
            }
        })
        .unwrap_or(1)
}
