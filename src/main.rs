//! The `indutech` binary: parse the command line, run the verb, print errors with their chain.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the worker allocates per record and per file (the
/// Parquet writer's buffers), and glibc's malloc took a quarter of a replay's time (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
