//! `indutech status --env NAME [--watch] [--json]`: per stream, produced vs committed vs landed,
//! the lag and the last commit, from the broker (watermarks, the worker group's commits).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment, streams and consumer group.
    #[command(flatten)]
    pub selection: super::worker::Selection,
    /// Refresh every 2 seconds until interrupted.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Print JSON (per partition detail) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the status once, or repeatedly with `--watch`.
///
/// Errors: the environment is invalid, the broker is unreachable, or a topic is missing.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.selection.env).await?;
    let environment = ctx.environment.clone();
    let streams = super::worker::select_streams(&environment, &args.selection.streams)?;
    let group = args.selection.group.unwrap_or_else(|| crate::model::group_id(&environment));
    let connection = ctx.kafka().await?.clone();
    let lake = crate::worker::lake::Lake::new(&environment, &ctx.aws);
    loop {
        let statuses = crate::worker::status::read(&connection, &group, &streams, &lake).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&statuses)?);
            return Ok(ExitCode::SUCCESS);
        }
        let table = crate::worker::status::table(&statuses);
        if !args.watch {
            print!("{table}");
            return Ok(ExitCode::SUCCESS);
        }
        if std::io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        println!("{} (every 2 s, Ctrl-C to stop)", chrono::Utc::now().format("%H:%M:%S"));
        print!("{table}");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
