//! `indutech produce --env NAME --stream NAME (--count N | --from FILE)`: publishes generated
//! tickets or a replayed CSV dataset to the stream's topic, with a progress bar.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// The stream whose topic receives the records.
    #[arg(long)]
    pub stream: String,
    /// Generate N support tickets (stream `client_tickets` only).
    #[arg(long, value_name = "N", conflicts_with = "from", required_unless_present = "from")]
    pub count: Option<u64>,
    /// Replay a CSV file, or every `*.csv` of a folder, one JSON object per row.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Replay at most N rows of `--from`.
    #[arg(long, value_name = "N", requires = "from")]
    pub limit: Option<u64>,
    /// At most R records per second (default: as fast as possible).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Seed of the ticket generator: the same seed gives the same tickets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of generated tickets that are malformed on purpose, 0.0-1.0.
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub malformed: f64,
}

/// Publishes and prints `produced N records (B bytes) to TOPIC in S s`.
///
/// Errors: unknown stream, `--count` for a stream other than client_tickets, unreadable CSV,
/// delivery failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let environment = &ctx.environment;
    let stream = super::worker::select_streams(environment, std::slice::from_ref(&args.stream))?.remove(0);
    if !(0.0..=1.0).contains(&args.malformed) {
        bail!("--malformed {}: must be between 0.0 and 1.0", args.malformed);
    }
    let connection = ctx.kafka().await?.clone();
    let (records, total): (Box<dyn Iterator<Item = anyhow::Result<crate::produce::Record>> + Send>, Option<u64>) =
        match (&args.from, args.count) {
            (Some(path), _) => {
                let files = crate::produce::csv_files(path)?;
                let mut replay = crate::produce::CsvReplay::new(files, stream.message_key.clone());
                let iter = std::iter::from_fn(move || replay.next_record().transpose());
                match args.limit {
                    Some(limit) => (Box::new(iter.take(usize::try_from(limit).unwrap_or(usize::MAX))), Some(limit)),
                    None => (Box::new(iter), None),
                }
            }
            (None, Some(count)) => {
                if stream.name != "client_tickets" {
                    bail!(
                        "--count generates support tickets: use it with --stream client_tickets, or replay a file with --from"
                    );
                }
                let generator = crate::produce::TicketGenerator::new(args.seed, args.malformed);
                (Box::new(generator.take(usize::try_from(count).unwrap_or(usize::MAX)).map(Ok)), Some(count))
            }
            (None, None) => bail!("give --count N or --from FILE"),
        };
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} records, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("producing to {}", stream.topic));
    let started = std::time::Instant::now();
    let sent =
        crate::produce::send(&connection, &stream.topic, records, args.rate, |s| bar.set_position(s.records)).await;
    bar.finish_and_clear();
    let sent = sent?;
    println!(
        "produced {} records ({} bytes) to {} in {:.1} s",
        sent.records,
        sent.bytes,
        stream.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
