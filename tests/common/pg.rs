//! A fresh PostgreSQL database per test, on the server `CHRONICLE_TEST_PG` names.
//!
//! Without `CHRONICLE_TEST_PG`, [`Pg::fresh`] prints one line saying the PostgreSQL
//! tests are skipped and returns `None`; with `CHRONICLE_REQUIRE_PG=1` (which `.ci/run`
//! sets) it fails the test instead.

use super::{Serve, bin};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use uuid::Uuid;

/// A database made for one test on the `CHRONICLE_TEST_PG` server, dropped after it.
pub struct Pg {
    /// `CHRONICLE_TEST_PG`: the server, with a database an admin connection can use.
    pub server: String,
    /// This test's database.
    pub name: String,
    /// The URL of this test's database.
    pub url: String,
}

static SKIP_LINE: Once = Once::new();

impl Pg {
    /// A fresh database, or `None` (after saying so once) when no server is given.
    pub fn fresh() -> Option<Pg> {
        let Some(server) = std::env::var("CHRONICLE_TEST_PG")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            if std::env::var("CHRONICLE_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!(
                    "CHRONICLE_REQUIRE_PG=1 but CHRONICLE_TEST_PG is not set: the PostgreSQL tests cannot run (start a server with .ci/postgres)"
                );
            }
            SKIP_LINE.call_once(|| {
                // Straight to stderr, past the test harness's capture, so the skip is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: CHRONICLE_TEST_PG is not set (the PostgreSQL tests)"
                );
            });
            return None;
        };
        let name = format!("chronicle_test_{}", Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(&server, postgres::NoTls)
            .expect("CHRONICLE_TEST_PG names a server this test can reach");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CHRONICLE_TEST_PG's user may create databases");
        let url = chronicle::store::url_with_database(&server, &name);
        Some(Pg { server, name, url })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The binary on the log at `url`, with its views in `views`, and none of the
/// environment that could point it elsewhere.
pub fn chronicle(url: &str, views: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--db")
        .arg(url)
        .arg("--views")
        .arg(views)
        .args(args)
        .env_remove("CHRONICLE_DB")
        .env_remove("CHRONICLE_VIEWS")
        .env_remove("CHRONICLE_SERVER")
        .env_remove("CHRONICLE_TOKEN")
        .env_remove("COLUMNS");
    cmd
}

/// `chronicle serve` on the log at `url` with its views in `views`, on a free port.
pub fn serve(url: &str, views: &Path) -> Serve {
    let name = views.file_name().unwrap().to_str().unwrap();
    let file = views.with_file_name(format!("{name}.server.json"));
    Serve::spawn(
        chronicle(url, views, &["serve", "--addr", "127.0.0.1:0"]),
        &file,
    )
}
