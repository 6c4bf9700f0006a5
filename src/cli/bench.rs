//! `indutech bench worker --stream NAME [--records N] [--from FILE]`: the worker's pipeline
//! in-process on generated tickets or on a file of records, ending with one `bench:` line.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to measure.
    #[command(subcommand)]
    pub target: Target,
}

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Target {
    /// decode -> validate -> enrich -> Parquet encode, no broker and no S3.
    Worker(WorkerArgs),
}

/// Arguments of `bench worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Environment whose stream definitions and flush size are used.
    #[arg(long, env = "INDUTECH_ENV", default_value = "dev")]
    pub env: String,
    /// The stream whose pipeline runs.
    #[arg(long)]
    pub stream: String,
    /// Generated tickets (client_tickets only), written to a temporary file before timing.
    #[arg(long, value_name = "N", conflicts_with = "from")]
    pub records: Option<u64>,
    /// JSON lines (one record per line, as on the topic), or a CSV file or folder of CSV files
    /// (converted to JSON lines before timing, as `produce --from` would publish them).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Share of generated tickets that are malformed.
    #[arg(long, default_value_t = 0.01)]
    pub malformed: f64,
}

/// Runs the benchmark and prints the `bench:` line on stdout.
///
/// Errors: unknown stream, unreadable input, `--records` for a stream that has no generator.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Target::Worker(args) = args.target;
    let environment = match crate::config::load(&args.env) {
        Ok(environment) => environment,
        Err(error) => bail!("cannot load environment `{}`: {error}", args.env),
    };
    let stream = super::worker::select_streams(&environment, std::slice::from_ref(&args.stream))?.remove(0);
    let temp = std::env::temp_dir().join(format!("indutech-bench-{}.jsonl", std::process::id()));
    let input = match (&args.from, args.records) {
        (Some(path), _) if path.extension().is_some_and(|e| e == "json" || e == "jsonl") => path.clone(),
        (Some(path), _) => {
            let mut replay =
                crate::produce::CsvReplay::new(crate::produce::csv_files(path)?, stream.message_key.clone());
            write_json_lines(&temp, std::iter::from_fn(|| replay.next_record().transpose()))?;
            temp.clone()
        }
        (None, records) => {
            if stream.name != "client_tickets" {
                bail!("generated input exists for client_tickets only; give --from FILE for {}", stream.name);
            }
            let count = usize::try_from(records.unwrap_or(1_000_000)).unwrap_or(usize::MAX);
            write_json_lines(&temp, crate::produce::TicketGenerator::new(1, args.malformed).take(count).map(Ok))?;
            temp.clone()
        }
    };
    let codec = crate::worker::codec::Codec::new(stream);
    let target = usize::try_from(environment.worker.target_file_size_bytes).unwrap_or(usize::MAX);
    let file = std::fs::File::open(&input).with_context(|| format!("opening {}", input.display()))?;
    let result = tokio::task::spawn_blocking(move || {
        crate::worker::bench::run(&codec, std::io::BufReader::with_capacity(1 << 20, file), target)
    })
    .await
    .context("bench panicked")?;
    if input == temp {
        let _ = std::fs::remove_file(&temp);
    }
    let result = result?;
    eprintln!(
        "{} rows, {} rejected, {} files, {:.1} MB out (Parquet zstd + rejected JSON lines), {:.2} s",
        result.rows,
        result.rejected,
        result.files,
        result.bytes_out as f64 / 1e6,
        result.elapsed.as_secs_f64()
    );
    println!("{}", result.line(crate::worker::bench::peak_rss()));
    Ok(ExitCode::SUCCESS)
}

/// Writes each record's payload as one line of `path` (the bench's input, prepared untimed).
fn write_json_lines(
    path: &std::path::Path,
    records: impl Iterator<Item = anyhow::Result<crate::produce::Record>>,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for record in records {
        out.write_all(&record?.payload)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
