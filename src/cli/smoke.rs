//! `indutech smoke-test --env NAME`: checks the applied platform end to end and prints a table
//! of checks (see [`crate::smoke`]); exits 1 when any check fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use crate::smoke::{Options, Status};

/// Arguments of `smoke-test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Print the checks as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Folder of the real datasets (the repository's `../shared/data` by default).
    #[arg(long, value_name = "DIR", env = "INDUTECH_DATA_DIR", default_value = "../shared/data")]
    pub data: PathBuf,
    /// Rows replayed from each real dataset.
    #[arg(long, default_value_t = 2000)]
    pub sample_rows: u64,
    /// Generated tickets.
    #[arg(long, default_value_t = 1000)]
    pub tickets: u64,
    /// Share of the generated tickets that are malformed on purpose.
    #[arg(long, default_value_t = 0.02)]
    pub malformed: f64,
    /// Seed of the ticket generator (default: the current time).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds to wait for the worker to land the replayed records.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Run the data checks on an environment without `[endpoints]` (a real account) too, in a
    /// sandbox: topics, a consumer group, lake prefixes and Glue tables of their own and a
    /// worker in this process, all removed at the end; production's are never written. Without
    /// it they are skipped there, and only the platform is checked.
    #[arg(long)]
    pub write_test_data: bool,
    /// Run the data checks in that sandbox on an environment with `[endpoints]` too (the bed),
    /// instead of through the deployed worker and the streams' own topics.
    #[arg(long)]
    pub sandbox: bool,
}

/// Runs the checks and prints them.
///
/// Errors: the environment is invalid, or a resource or the broker cannot be read at all.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.malformed) {
        bail!("--malformed {}: must be between 0.0 and 1.0", args.malformed);
    }
    let ctx = super::context(&args.env).await?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    let options = Options {
        data_dir: args.data,
        sample_rows: args.sample_rows,
        tickets: args.tickets,
        malformed_share: args.malformed,
        seed,
        wait: Duration::from_secs(args.timeout),
        write_test_data: args.write_test_data,
        sandbox: args.sandbox,
    };
    let checks = crate::smoke::run(&ctx, &options).await?;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let unverifiable = checks.iter().filter(|c| c.status == Status::NotVerifiable).count();
    let skipped = checks.iter().filter(|c| c.status == Status::Skipped).count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", crate::smoke::table(&checks));
        println!();
        if failed == 0 {
            println!(
                "Smoke test passed: {} check(s) pass, {unverifiable} not verifiable on this target (n/a, reason given){}.",
                checks.len() - unverifiable - skipped,
                if skipped > 0 { format!(", {skipped} skipped (reason given)") } else { String::new() }
            );
        } else {
            println!("Smoke test FAILED: {failed} of {} check(s) failed.", checks.len());
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
