//! The `chronicle` command line. All the work is in `cli`; this only sets the exit code.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
