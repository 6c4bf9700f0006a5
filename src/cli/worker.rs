//! `indutech worker --env NAME [--stream NAME]...`: runs the streaming worker in the foreground
//! until SIGTERM/SIGINT (see [`crate::worker`] for its guarantees).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

/// Arguments of `worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment, streams and consumer group.
    #[command(flatten)]
    pub selection: Selection,
    /// Serve Prometheus metrics on ADDR (default: 127.0.0.1:<worker.metrics_port>).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_metrics")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Threads that decode records (a batch's partitions spread over them) and flushes that
    /// encode and upload at once in the background. Default: every core.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The environment, streams and consumer group a worker or `status` works on.
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Only these streams (repeatable). Default: every stream of the environment.
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Consumer group. Default: `indutech-<env>-worker`.
    #[arg(long)]
    pub group: Option<String>,
}

/// Runs the worker and prints its summary line on exit.
///
/// Errors: an unknown stream, and whatever [`crate::worker::run`] returns.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.selection.env).await?;
    let environment = &ctx.environment;
    let streams = select_streams(environment, &args.selection.streams)?;
    let settings = &environment.worker;
    let options = crate::worker::Options {
        streams,
        group: args.selection.group.unwrap_or_else(|| crate::model::group_id(environment)),
        flush_interval: Duration::from_secs(settings.flush_interval_secs),
        target_file_size: usize::try_from(settings.target_file_size_bytes).unwrap_or(usize::MAX),
        drain_timeout: Duration::from_millis(settings.drain_timeout_ms),
        threads: args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        metrics_addr: if args.no_metrics {
            None
        } else {
            Some(args.metrics_addr.unwrap_or_else(|| ([127, 0, 0, 1], settings.metrics_port).into()))
        },
    };
    let summary = crate::worker::run(environment, &ctx.aws, options).await?;
    eprintln!(
        "worker stopped: {} records in, {} rows written, {} rejected, {} files; everything committed\n\
         time: {}",
        summary.records_in,
        summary.written,
        summary.rejected,
        summary.files,
        summary.time.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// The streams named in `names` (all when empty).
///
/// Errors: a name is not a stream of the environment (the known ones are listed).
pub fn select_streams(
    environment: &crate::config::environment::Environment,
    names: &[String],
) -> anyhow::Result<Vec<Arc<crate::config::stream::Stream>>> {
    let known: Vec<&str> = environment.streams.iter().map(|s| s.name.as_str()).collect();
    for name in names {
        if !known.contains(&name.as_str()) {
            bail!("no stream `{name}` in environment {}; known: {}", environment.name, known.join(", "));
        }
    }
    Ok(environment
        .streams
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .map(|s| Arc::new(s.clone()))
        .collect())
}
