//! The `chronicle` command line. All the work is in `cli`; this only sets the exit code.

mod cli;

fn main() {
    one_malloc_arena();
    std::process::exit(cli::main());
}

/// glibc gives each thread that allocates a malloc arena of its own (up to 8 per core),
/// and memory freed in one arena serves only that arena: with sled's threads, the
/// writer's and the projector's, a large `import` held twice the memory it used. One
/// arena keeps the peak near what is in use; chronicle's threads spend little time in
/// malloc, and no slowdown of `import` showed (README, Performance).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of glibc's allocator, before any thread
    // is started.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
