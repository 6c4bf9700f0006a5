//! `indutech validate --env NAME`: load an environment and its streams, report every problem.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, LoadError};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Print the validated environment (or the problems) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Prints a one-line summary (and with `[redpanda.throughput]` the brokers' sizing table) and
/// exits 0 when valid; prints every problem as
/// `FILE:LINE:COLUMN: FIELD: MESSAGE` on stderr and exits 1 otherwise. Makes no AWS call.
///
/// Errors: the environment file or its streams folder cannot be read.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = config::resolve(&args.env);
    match config::load(&args.env) {
        Ok(environment) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&environment)?);
            } else {
                let streams: Vec<&str> = environment.streams.iter().map(|s| s.name.as_str()).collect();
                println!(
                    "{}: valid (environment {}, region {}, {} streams: {})",
                    path.display(),
                    environment.name,
                    environment.region,
                    streams.len(),
                    streams.join(", ")
                );
                if let Some(inputs) = environment.sizing_inputs() {
                    let sizing = crate::model::sizing::size(&inputs);
                    print!("{}", crate::model::sizing::table(&inputs, &sizing));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(diagnostics)) => {
            if args.json {
                println!("{}", serde_json::json!({ "valid": false, "problems": diagnostics }));
            }
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            let n = diagnostics.len();
            eprintln!("{}: invalid, {n} problem{}", path.display(), if n == 1 { "" } else { "s" });
            Ok(ExitCode::from(1))
        }
        Err(error @ LoadError::Read { .. }) => {
            Err(error).with_context(|| format!("cannot validate environment `{}`", args.env.name))
        }
    }
}
