//! `indutech audit --env NAME [--stream NAME]... [--json]`: proves, per partition, that every
//! offset of the lake's committed range is visible exactly once across the curated and rejected
//! zones, and that nothing uncommitted is visible ([`crate::worker::audit`]).

use std::process::ExitCode;

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Only these streams (repeatable). Default: every stream of the environment.
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Print JSON (per partition, with examples of each problem) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the audit; exits 1 when an offset is missing, duplicated or visible uncommitted, or
/// an object cannot be read.
///
/// Errors: the environment is invalid, an unknown stream, the lake cannot be read.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let streams = super::worker::select_streams(&ctx.environment, &args.streams)?;
    let lake = crate::worker::lake::Lake::new(&ctx.environment, &ctx.aws);
    let audits = crate::worker::audit::audit(&lake, &streams).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&audits)?);
    } else {
        print!("{}", crate::worker::audit::table(&audits));
    }
    let problems = audits.iter().any(crate::worker::audit::StreamAudit::has_problems);
    if !args.json {
        println!(
            "{}",
            if problems {
                "Audit FAILED: the lake does not hold every committed offset exactly once (see above)."
            } else {
                "Audit passed: every committed offset is in the lake exactly once, nothing uncommitted is visible."
            }
        );
    }
    Ok(if problems { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
