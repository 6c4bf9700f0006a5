//! Command-line interface: one module per verb.
//!
//! Each verb module has an `Args` struct (clap) and `run(args) -> anyhow::Result<ExitCode>`, and
//! does little more than call into the library modules. Exit codes follow Terraform: 0 success,
//! 1 error (an invalid environment included).

pub mod apply;
pub mod audit;
pub mod bench;
pub mod completions;
pub mod export;
pub mod graph;
pub mod load;
pub mod plan;
pub mod produce;
pub mod render;
pub mod smoke;
pub mod status;
pub mod validate;
pub mod worker;

use std::process::ExitCode;

use anyhow::Context as _;
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
    /// Show what apply would change, resource by resource, attribute by attribute.
    Plan(plan::Args),
    /// Make AWS match the environment (or perform a saved plan exactly).
    Apply(apply::Args),
    /// Delete every resource of the environment, dependents first.
    Destroy(apply::DestroyArgs),
    /// Remove the lock left by an apply or destroy that died.
    ForceUnlock(apply::UnlockArgs),
    /// Write the factory-side strongSwan configuration and the brokers' cloud-init.
    Render(render::Args),
    /// Write the platform as another tool's configuration (Terraform).
    Export(export::Args),
    /// Draw the platform: components, resources, dependencies, the factory side, the data path.
    Graph(graph::Args),
    /// Run the streaming worker: topics -> typed Parquet in the lake, exactly once.
    Worker(worker::Args),
    /// Publish generated tickets or a replayed CSV dataset to a stream's topic.
    Produce(produce::Args),
    /// Per stream: produced, committed, lag, rows landed and rejected.
    Status(status::Args),
    /// Prove that every committed offset is in the lake exactly once.
    Audit(audit::Args),
    /// Write a CSV export of an ERP table into the raw zone as DMS's full-load files.
    Load(load::Args),
    /// Measure the worker's pipeline in-process.
    Bench(bench::Args),
    /// Prove the applied platform works end to end: resources, settings, data through the worker.
    SmokeTest(smoke::Args),
    /// Print shell completions (bash, zsh, fish).
    Completions(completions::Args),
}

/// Runs the parsed command line.
///
/// Errors: whatever the verb returns; `main` prints the whole chain and exits 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Plan(args) => plan::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Destroy(args) => apply::destroy(args).await,
        Command::ForceUnlock(args) => apply::force_unlock(args).await,
        Command::Render(args) => render::run(args).await,
        Command::Export(args) => export::run(args),
        Command::Worker(args) => worker::run(args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::SmokeTest(args) => smoke::run(args).await,
        Command::Completions(args) => completions::run(args),
    }
}

/// `--env NAME|PATH` (or the `INDUTECH_ENV` variable): the one environment a verb works on.
/// Dereferences to the text given.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArg {
    /// Environment name (`dev` means environments/dev.toml) or path to an environment file.
    #[arg(long = "env", env = "INDUTECH_ENV", value_name = "ENV")]
    pub name: String,
}

impl std::ops::Deref for EnvArg {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

/// Loads the environment and builds the provider context. An invalid environment prints every
/// problem on stderr and fails before any AWS call.
///
/// Errors: the files cannot be read, or they are invalid.
pub async fn context(env: &str) -> anyhow::Result<std::sync::Arc<crate::provider::Context>> {
    let environment = load(env)?;
    let aws = crate::aws::Aws::new(&environment).await;
    Ok(std::sync::Arc::new(crate::provider::Context::new(environment, aws)))
}

/// Loads and validates the environment `env` (a name or a path); an invalid one prints every
/// problem on stderr.
///
/// Errors: the files cannot be read, or they are invalid (the message counts the problems).
pub fn load(env: &str) -> anyhow::Result<crate::config::environment::Environment> {
    match crate::config::load(env) {
        Ok(environment) => Ok(environment),
        Err(crate::config::LoadError::Invalid(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            let path = crate::config::resolve(env);
            anyhow::bail!("{}: invalid, {} problem(s); nothing was sent to AWS", path.display(), diagnostics.len());
        }
        Err(error) => Err(error).with_context(|| format!("cannot load environment `{env}`")),
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
