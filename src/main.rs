//! The `chronicle` command line. All the work is in `cli`; this only sets the exit code.

mod cli;

/// mimalloc, but the system allocator in `chronicle serve`: see `chronicle::alloc`.
#[global_allocator]
static ALLOCATOR: chronicle::alloc::Allocator = chronicle::alloc::Allocator;

fn main() {
    std::process::exit(cli::main());
}
