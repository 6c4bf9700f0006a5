//! Command-line interface: one module per verb.
//!
//! Each verb module has an `Args` struct (clap) and `run(args) -> anyhow::Result<ExitCode>`, and
//! does little more than call into the library modules. Exit codes follow Terraform: 0 success,
//! 1 error (an invalid environment included).

pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// indutech: provision the IoT data platform, deploy its streaming worker, prove it works.
#[derive(Debug, Parser)]
#[command(name = "indutech", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace); RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The verb to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an environment file and its streams; report every problem with its position.
    Validate(validate::Args),
}

/// Runs the parsed command line.
///
/// Errors: whatever the verb returns; `main` prints the whole chain and exits 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
    }
}

/// Logs to stderr; `RUST_LOG` wins over `-v`.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,indutech=info",
        1 => "info,indutech=debug",
        _ => "debug,indutech=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
