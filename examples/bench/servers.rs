//! W8: chronicle as servers (the release `chronicle serve`), driven over HTTP from
//! client threads in this process, and the PostgreSQL databases the runs with
//! `--postgres` make and drop.
//!
//! Reads (`GET /trips/{id}` and `GET /timeline?entity=…&limit=50`, alternating) run for
//! a fixed time from a fixed number of clients, each keeping its connection to one
//! server; appends (`POST /events`, one event each) are a fixed number per writer.
//! With several servers, client `i` talks to server `i mod servers`.

use crate::systems::Payload;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A database of its own on the PostgreSQL server `--postgres` names, dropped when
/// this is dropped (unless kept).
pub struct Database {
    /// The server's URL, as given.
    server: String,
    name: String,
    /// This database's URL.
    pub url: String,
    keep: bool,
}

impl Database {
    /// Makes database `chronicle_bench_<pid>_<label>`, dropping a leftover of that
    /// name first.
    pub fn create(server: &str, label: &str, keep: bool) -> Result<Database> {
        let name = format!("chronicle_bench_{}_{label}", std::process::id());
        let mut admin = admin(server)?;
        // Two statements: neither may run inside a transaction, which one batch is.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {name}")))
            .map_err(|e| {
                anyhow::anyhow!(
                    "creating database {name} on {} failed ({}); the URL's user must be allowed to CREATE DATABASE",
                    describe(server),
                    detail(&e)
                )
            })?;
        Ok(Database {
            url: chronicle::store::url_with_database(server, &name),
            server: server.to_owned(),
            name,
            keep,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Ok(mut admin) = admin(&self.server) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The server's URL without its password, for messages.
pub fn describe(url: &str) -> String {
    chronicle::store::describe_url(url).unwrap_or_else(|_| "the --postgres URL".into())
}

/// A connection to the server `--postgres` names, or a one-line error.
pub fn admin(server: &str) -> Result<postgres::Client> {
    postgres::Client::connect(server, postgres::NoTls).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the PostgreSQL server at {} ({}); check --postgres",
            describe(server),
            detail(&e)
        )
    })
}

/// A PostgreSQL error with its causes, on one line (its messages never carry the
/// password).
fn detail(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A running `chronicle serve`, stopped (SIGTERM, then SIGKILL after 20 s) when
/// dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts `chronicle --db DB [--views VIEWS] serve` on a free loopback port, its log
    /// lines to `log`, and returns once its views have caught up with the log (a
    /// query answers).
    pub fn start(chronicle: &Path, db: &str, views: Option<&Path>, log: &Path) -> Result<Server> {
        // The server announces its URL in `<folder>.server.json` beside the canonical
        // folder it holds: the store on sled, the views on PostgreSQL.
        let folder = PathBuf::from(views.map_or(db, |v| v.to_str().unwrap_or_default()));
        let parent = folder
            .parent()
            .context("the server's folder has a parent")?
            .canonicalize()?;
        let name = folder
            .file_name()
            .context("the server's folder has a name")?
            .to_string_lossy()
            .into_owned();
        let file = parent.join(format!("{name}.server.json"));
        let _ = std::fs::remove_file(&file);
        let mut cmd = Command::new(chronicle);
        cmd.arg("--db").arg(db);
        if let Some(views) = views {
            cmd.arg("--views").arg(views);
        }
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("CHRONICLE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", chronicle.display()))?;
        let mut server = Server {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        server.url = loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(found) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(url) = found["url"].as_str()
            {
                break url.to_owned();
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "chronicle serve exited ({status}) before it listened; see {}",
                    log.display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "chronicle serve did not start in 60 s; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // A query waits (up to 5 s, then 503) for the views to reach the head as of the
        // request: asked until it answers, it is the end of the catch-up.
        let agent = agent();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let mut response = agent
                .get(format!("{}/timeline?limit=1", server.url))
                .call()?;
            let _ = response.body_mut().read_to_vec()?;
            match response.status().as_u16() {
                200 => break,
                503 if Instant::now() < deadline => continue,
                status => bail!(
                    "{} answered {status} while its views caught up; see {}",
                    server.url,
                    log.display()
                ),
            }
        }
        Ok(server)
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signals a child of this process that has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// What a load measured: the answered requests, the wall time, and each request's
/// latency in ms, sorted.
pub struct Load {
    pub requests: usize,
    pub seconds: f64,
    pub latencies_ms: Vec<f64>,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// What readers ask: trips and entities that exist in the log.
pub struct Questions {
    pub trips: Vec<String>,
    pub entities: Vec<String>,
}

/// `clients` threads reading for `duration`, client `i` through server
/// `i mod servers.len()`: `GET /trips/{id}` and `GET /timeline?entity=…&limit=50` in
/// turn, on trips and entities picked at random. Every answer must be a 200.
pub fn read_load(
    servers: &[&Server],
    clients: usize,
    duration: Duration,
    questions: &Questions,
    seed: u64,
) -> Result<Load> {
    drive(servers, clients, |i, server, agent| {
        let mut rng = crate::payload::Rng(seed.wrapping_mul(31) + i as u64 + 1);
        let mut latencies = Vec::new();
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            let path = if latencies.len() % 2 == 0 {
                let t = &questions.trips;
                format!("/trips/{}", t[pick(&mut rng, t.len())])
            } else {
                let e = &questions.entities;
                format!("/timeline?entity={}&limit=50", e[pick(&mut rng, e.len())])
            };
            let t = Instant::now();
            let mut response = agent.get(format!("{}{path}", server.url)).call()?;
            let body = response.body_mut().read_to_vec()?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            let status = response.status().as_u16();
            anyhow::ensure!(
                status == 200,
                "GET {path} on {} answered {status}: {}",
                server.url,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(latencies)
    })
}

/// One writer thread per element of `per_writer`, writer `i` through server
/// `i mod servers.len()`, each appending its events `batch` at a time, one
/// `POST /events` per batch (one event object, or an array of them). Every answer must
/// be a 201. The load's requests are the batches.
pub fn append_load(servers: &[&Server], per_writer: &[&[Payload]], batch: usize) -> Result<Load> {
    drive(servers, per_writer.len(), |i, server, agent| {
        let url = format!("{}/events", server.url);
        let bodies: Vec<Vec<u8>> = per_writer[i]
            .chunks(batch)
            .map(|events| match events {
                [one] => one.json.clone(),
                many => {
                    let mut body = b"[".to_vec();
                    for (k, e) in many.iter().enumerate() {
                        if k > 0 {
                            body.push(b',');
                        }
                        body.extend_from_slice(&e.json);
                    }
                    body.push(b']');
                    body
                }
            })
            .collect();
        let mut latencies = Vec::with_capacity(bodies.len());
        for body in &bodies {
            let t = Instant::now();
            let mut response = agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(&body[..])?;
            let answer = response.body_mut().read_to_vec()?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            let status = response.status().as_u16();
            anyhow::ensure!(
                status == 201,
                "POST /events on {} answered {status}: {}",
                server.url,
                String::from_utf8_lossy(&answer)
            );
        }
        Ok(latencies)
    })
}

/// Runs `job` on `clients` threads that start together, client `i` with a connection
/// of its own to server `i mod servers.len()`; each returns its requests' latencies
/// in ms. The wall time runs from the start to the end of the last client.
fn drive(
    servers: &[&Server],
    clients: usize,
    job: impl Fn(usize, &Server, &ureq::Agent) -> Result<Vec<f64>> + Sync,
) -> Result<Load> {
    let barrier = std::sync::Barrier::new(clients + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (server, barrier, job) = (servers[i % servers.len()], &barrier, &job);
                scope.spawn(move || {
                    let agent = agent();
                    barrier.wait();
                    job(i, server, &agent)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut latencies = Vec::new();
        for h in handles {
            latencies.extend(h.join().expect("a client thread panicked")?);
        }
        Ok(finish(latencies, started))
    })
}

/// Where the CPU went while a load ran, in cores busy (CPU seconds ÷ wall seconds),
/// for each of [`Cpu::PARTS`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu(pub [f64; 3]);

impl Cpu {
    /// The `chronicle serve` processes, the PostgreSQL backends connected to the log's
    /// database, and this process (the clients).
    pub const PARTS: [&str; 3] = [
        "chronicle serve",
        "PostgreSQL's backends",
        "the clients (this process)",
    ];
}

/// Runs `load` and measures [`Cpu`] over it: `servers` are the server processes,
/// `backends` the PostgreSQL backends' process ids (on this machine: the benchmark
/// runs PostgreSQL on loopback).
pub fn with_cpu<T>(
    servers: &[&Server],
    backends: &[u32],
    load: impl FnOnce() -> Result<T>,
) -> Result<(T, Cpu)> {
    let server_pids: Vec<u32> = servers.iter().map(|s| s.pid()).collect();
    let total = |pids: &[u32]| pids.iter().map(|&p| cpu_seconds(p)).sum::<f64>();
    let before = [
        total(&server_pids),
        total(backends),
        total(&[std::process::id()]),
    ];
    let started = Instant::now();
    let out = load()?;
    let wall = started.elapsed().as_secs_f64();
    let after = [
        total(&server_pids),
        total(backends),
        total(&[std::process::id()]),
    ];
    Ok((out, Cpu([0, 1, 2].map(|i| (after[i] - before[i]) / wall))))
}

/// The process ids of the PostgreSQL backends connected to the database `url` names
/// (other than this query's own).
pub fn backends(url: &str) -> Result<Vec<u32>> {
    let mut client = admin(url)?;
    let rows = client.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| u32::try_from(r.get::<_, i32>(0)).ok())
        .collect())
}

/// CPU seconds (user + system) process `pid` has used so far, all its threads; 0 once
/// it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    (ticks(11) + ticks(12)) as f64 / hz as f64
}

fn pick(rng: &mut crate::payload::Rng, len: usize) -> usize {
    usize::try_from(rng.below(len as u64)).expect("an index below a length")
}

fn finish(mut latencies_ms: Vec<f64>, started: Instant) -> Load {
    let seconds = started.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    Load {
        requests: latencies_ms.len(),
        seconds,
        latencies_ms,
    }
}

/// Confines every thread of process `pid` to the CPUs `cpus` (`None`: every online
/// CPU again). Threads it starts later inherit the mask of the thread that starts
/// them, which is then confined too; two passes catch a thread started during the
/// first.
pub fn confine(pid: u32, cpus: Option<&[usize]>) -> Result<()> {
    // SAFETY: sysconf reads a constant of the system.
    let online = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1);
    let all: Vec<usize> = (0..online).collect();
    let cpus = cpus.unwrap_or(&all);
    // SAFETY: a cpu_set_t is plain bits; all zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `set` is a valid cpu_set_t and `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    for _pass in 0..2 {
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = entry?
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            // SAFETY: sets the mask of a thread of our child from a valid cpu_set_t.
            let done = unsafe {
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
            };
            if done != 0 {
                let e = std::io::Error::last_os_error();
                // A thread that ended since the listing.
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(e).with_context(|| format!("sched_setaffinity of thread {tid}"));
                }
            }
        }
    }
    Ok(())
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a cpu_set_t is plain bits; all zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: reads this thread's mask into a valid cpu_set_t.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return vec![0];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `set` is a valid cpu_set_t and the index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}
