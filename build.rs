//! Embeds the bundled `events/*.jsonl` in the binary, in name order, so that
//! `chronicle demo` works from any directory; and the commit it was built from
//! (`CHRONICLE_COMMIT`, for `--version`), so that two builds can be told apart.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled (`env!`): a build script
    // compiled for one checkout may be run for another that shares the target folder.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    embed_commit(Path::new(&manifest));
    let dir = Path::new(&manifest).join("events");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the bundled events in {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(
        !files.is_empty(),
        "{} holds no .jsonl file: the demo would have no events",
        dir.display()
    );
    files.sort();
    let mut code = String::from("/// The bundled events: (file name, contents), in name order.\n");
    code.push_str("pub const BUNDLED_EVENTS: &[(&str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .expect("a file has a name")
            .to_string_lossy();
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundled_events.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}

/// The commit of the checkout being built, or `unknown` outside a git checkout (a
/// source archive) or without git.
fn embed_commit(manifest: &Path) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("--no-optional-locks") // never hold the index lock beside a `git commit`
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    // Only a checkout of this project itself, not one it was copied into.
    let own = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| Path::new(top.trim()).canonicalize().ok())
        .is_some_and(|top| manifest.canonicalize().is_ok_and(|m| m == top));
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .map(|s| s.trim().to_owned())
        .filter(|s| own && !s.is_empty());
    // A build of changed or new sources says so: its commit alone would not describe it.
    let dirty = commit.is_some()
        && git(&[&["status", "--porcelain", "--"], BUILT_FROM].concat())
            .is_some_and(|changed| !changed.is_empty());
    let commit = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=CHRONICLE_COMMIT={commit}");
    // A new commit moves HEAD or a branch (in a worktree, git says where those are), an
    // edit changes a source; a missing path would rerun every build.
    let git_paths = git(&[
        "rev-parse",
        "--git-path",
        "HEAD",
        "--git-path",
        "refs/heads",
        "--git-path",
        "packed-refs",
    ])
    .filter(|_| own)
    .unwrap_or_default();
    let git_paths = git_paths.lines().map(|p| manifest.join(p));
    for path in git_paths.chain(BUILT_FROM.iter().map(|p| manifest.join(p))) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// What the binary is built from: a change to any of them marks the build `-dirty`.
const BUILT_FROM: &[&str] = &[
    "src",
    "web",
    "events",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
];
