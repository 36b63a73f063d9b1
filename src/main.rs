//! The `chronicle` command line. All the work is in `cli`; this only sets the exit code.

mod cli;

/// mimalloc: the views' folds and queries allocate many small short-lived values, and
/// measured against the system allocator it made queries and replays markedly faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
