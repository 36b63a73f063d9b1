//! Test harness: the real binary in a temp dir.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
    fn from(output: Output) -> Run {
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
        let mut cmd = Command::new(bin());
        cmd.arg("--db")
            .arg(self.db())
            .args(args)
            .env_remove("CHRONICLE_DB")
            .env_remove("CHRONICLE_SERVER")
            .env_remove("CHRONICLE_TOKEN");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("the binary runs"))
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
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(stdin.as_bytes())
            .expect("stdin accepts");
        Run::from(child.wait_with_output().expect("the binary ends"))
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
