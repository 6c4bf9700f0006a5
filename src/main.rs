//! The `indutech` binary: parse the command line, run the verb, print errors with their chain.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the worker allocates per record and per file (the
/// Parquet writer's buffers), and glibc's malloc took a quarter of a replay's time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages for this process: mimalloc returns freed memory to the kernel
    // and touches it again, and with huge pages each first touch zeroes 2 MiB (perf: the
    // kernel's clear_page took a sixth of `bench worker`'s time, 0.5 s of system time on the
    // Beijing replay; 0.1 s without). Best effort: an older kernel keeps its setting.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = indutech::cli::Cli::parse();
    indutech::cli::init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(indutech::cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
