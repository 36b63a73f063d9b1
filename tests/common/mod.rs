//! Test harness: the real binary in a temp dir.

#![allow(dead_code)]

pub mod pg;
pub mod sse;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store in its own temp dir, driven through the `chronicle` binary.
pub struct Chronicle {
    pub dir: tempfile::TempDir,
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished run of the binary did.
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.stdout
    }

    /// Asserts the exit code and a one-line error naming `fragment`.
    pub fn fails(self, code: i32, fragment: &str) -> Run {
        assert_eq!(
            self.code, code,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(fragment),
            "stderr lacks `{fragment}`: {}",
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "not one line: {}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chronicle")
}

impl Chronicle {
    pub fn new() -> Chronicle {
        Chronicle {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        command_at(&self.db(), args)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("the binary runs"))
    }

    /// Runs with `stdin` piped in.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let written = child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin.as_bytes());
        // A command refused before it reads its input (a flag it does not take) may
        // exit before the input is written: its answer is still the one to check.
        if let Err(e) = written {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "stdin accepts: {e}"
            );
        }
        Run::from_output(child.wait_with_output().expect("the binary ends"))
    }

    /// Writes a file in the temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// Appends JSON Lines through `append -`.
    pub fn append(&self, lines: &[Value]) -> Run {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.run_stdin(&["append", "-"], &text)
    }

    /// A new store holding this store's log and then `older` (events without the fields
    /// the store sets), sealed onto the hash chain here and restored with `import`: a
    /// log written before a rule held new events, which an export still restores.
    pub fn restored_with(&self, older: &[Value]) -> Chronicle {
        let (restored, run) = self.restore_with(older);
        run.ok();
        restored
    }

    /// [`Chronicle::restored_with`], with what the import said. An event of `older`
    /// may give its own `recorded`.
    pub fn restore_with(&self, older: &[Value]) -> (Chronicle, Run) {
        use chronicle::model::event::{GENESIS_HASH, parse_hash};
        use chronicle::model::{EventType, RecordedEvent};
        let mut lines = self.log();
        let mut previous = lines.last().map_or(GENESIS_HASH, |e| {
            parse_hash(e["hash"].as_str().expect("a hash")).expect("a hash in hex")
        });
        for event in older {
            let mut event = event.clone();
            let stream = event["stream"].clone();
            let version = lines.iter().filter(|e| e["stream"] == stream).count() + 1;
            let event_type =
                EventType::parse(event["type"].as_str().expect("a type")).expect("a known type");
            event["position"] = (lines.len() + 1).into();
            event["version"] = version.into();
            if event.get("id").is_none() {
                event["id"] = uuid::Uuid::now_v7().to_string().into();
            }
            // The time of the event before: a log's times never go back.
            if event.get("recorded").is_none() {
                event["recorded"] = lines
                    .last()
                    .map_or("2025-06-01T00:00:00.000000Z".into(), |e| {
                        e["recorded"].clone()
                    });
            }
            event["schema"] = event_type.schema().into();
            let mut recorded: RecordedEvent =
                serde_json::from_value(event).expect("an event of the log's shape");
            previous = recorded.seal(&previous).1;
            lines.push(serde_json::to_value(&recorded).expect("an event serializes"));
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let restored = Chronicle::new();
        let file = restored.file("restore.jsonl", &text);
        let run = restored.run(&["import", path_str(&file)]);
        (restored, run)
    }

    /// The whole log as JSON values.
    pub fn log(&self) -> Vec<Value> {
        let out = self.run(&["--json", "log"]).ok();
        out.lines()
            .map(|l| serde_json::from_str(l).expect("log --json prints JSON Lines"))
            .collect()
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A registered person, for events that need one.
pub fn person(slug: &str) -> Value {
    serde_json::json!({
        "stream": format!("person:{slug}"), "type": "entity.registered",
        "data": {"name": slug, "aliases": []}
    })
}

/// A valid trip event.
pub fn trip_started(stream: &str) -> Value {
    serde_json::json!({"stream": stream, "type": "trip.started", "occurred": "2025-01-05", "data": {}})
}

/// A `chronicle serve` child process on a free port of 127.0.0.1.
pub struct Serve {
    pub child: std::process::Child,
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: std::net::SocketAddr,
    /// What the server wrote to stderr so far (its log lines), read by a thread so
    /// that a full pipe never blocks it.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    pub fn start(c: &Chronicle, args: &[&str]) -> Serve {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Serve::spawn(c.command(&all), &c.dir.path().join("store.server.json"))
    }

    /// Runs `command` (a `chronicle serve`) and waits for it to announce its URL in
    /// `file`.
    pub fn spawn(command: Command, file: &Path) -> Serve {
        Serve::spawn_logging_to(command, file, None)
    }

    /// [`Serve::spawn`] with the server's stderr sent to `log` instead of read here.
    pub fn spawn_logging_to(mut command: Command, file: &Path, log: Option<Stdio>) -> Serve {
        let read_here = log.is_none();
        let child = command
            .stdout(Stdio::piped())
            .stderr(log.unwrap_or_else(Stdio::piped))
            .spawn()
            .unwrap();
        let mut child = child;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if read_here {
            let (pipe, stderr) = (child.stderr.take().unwrap(), stderr.clone());
            std::thread::spawn(move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)) {
                    let Ok(line) = line else { break };
                    let mut text = stderr.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(file)
                && let Ok(found) = serde_json::from_str::<Value>(&text)
            {
                break found["url"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        let addr = url.trim_start_matches("http://").parse().unwrap();
        Serve {
            child,
            url,
            addr,
            stderr,
        }
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(self) -> i32 {
        self.stop_with("-TERM")
    }

    /// Sends `signal` (`-HUP`, say) and returns the exit code.
    pub fn stop_with(mut self, signal: &str) -> i32 {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }

    /// The server process's resident memory, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// Sends `request` (raw HTTP/1.1) on a new connection and returns the status and the
    /// body of the answer; the request should say `Connection: close`.
    pub fn raw(&self, request: &str) -> (u16, String) {
        raw_http(std::net::TcpStream::connect(self.addr).unwrap(), request)
    }
}

impl Serve {
    /// The server's process id, to kill it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw HTTP on a connection and reads the answer until the server closes it.
pub fn raw_http(mut stream: std::net::TcpStream, request: &str) -> (u16, String) {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// `chronicle --db DB ARGS`, with none of the user's environment that would change it.
pub fn command_at(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env_remove("CHRONICLE_DB")
        .env_remove("CHRONICLE_SERVER")
        .env_remove("CHRONICLE_TOKEN")
        // Tables fit COLUMNS when it is set: tests read them at full width.
        .env_remove("COLUMNS");
    cmd
}

/// Runs `chronicle --db DB ARGS`: for a --db other than a [`Chronicle`]'s own.
pub fn run_at(db: &Path, args: &[&str]) -> Run {
    Run::from_output(command_at(db, args).output().expect("the binary runs"))
}
