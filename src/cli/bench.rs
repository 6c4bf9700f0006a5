//! `indutech bench worker --stream NAME [--records N] [--from FILE]`: the worker's pipeline
//! in-process on generated tickets or on a file of records; `indutech bench plan --env NAME`:
//! `plan` on the environment as it is, several runs; `indutech bench apply --env NAME`: `apply`
//! from empty and `destroy`, several runs. Each ends with one `bench:` line on stdout; plan and
//! apply also report how long the target (AWS or the emulators) took per call.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::aws::CallTime;
use crate::engine::Outcome;

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
    /// `plan` of every component, run after run, on the environment as it is (converged, say).
    Plan(PlanArgs),
    /// `apply` from empty then `destroy --force-delete-data`, run after run. Refuses an
    /// environment that has resources already.
    Apply(PlanArgs),
    /// A partition's resume (lake take-over and roll-forward) with `--objects` objects already in
    /// the stream's prefix, against the listing of that prefix that a resume used to need. Fills
    /// the prefix with placeholder objects: use a copy of an environment.
    Resume(ResumeArgs),
}

/// Arguments of `bench resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Environment name or path (its lake applied; a throw-away copy: the stream's prefix gets
    /// placeholder objects that `indutech audit` reports).
    #[arg(long, env = "INDUTECH_ENV")]
    pub env: String,
    /// The stream whose prefix holds the objects.
    #[arg(long, default_value = "client_tickets")]
    pub stream: String,
    /// Objects in the stream's prefix before timing (created once, kept for the next runs).
    #[arg(long, default_value_t = 200_000)]
    pub objects: u64,
    /// How many resumes are timed (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// Arguments of `bench plan` and `bench apply`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Environment name (`dev` means environments/dev.toml) or path to an environment file.
    #[arg(long, env = "INDUTECH_ENV", default_value = "dev")]
    pub env: String,
    /// How many runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Changes run at once by apply and destroy.
    #[arg(long, default_value_t = crate::engine::PARALLELISM)]
    pub parallelism: usize,
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
    /// Give every generated ticket its own event date (from 2000-01-01 on, one day apart): the
    /// worst input for the buffers, one `dt` per record.
    #[arg(long, requires = "records")]
    pub one_date_per_record: bool,
    /// Threads the pipeline runs on (each owns every N-th partition). Default: every core.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Topic partitions the records are spread over (runs of 1024, as a producer's sticky
    /// partitioner does). Default: the stream's.
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// Partition granularity instead of the stream's (`hour`, `day`, `month`).
    #[arg(long)]
    pub granularity: Option<crate::config::stream::Granularity>,
}

/// Runs the benchmark and prints the `bench:` line on stdout.
///
/// Errors: `worker`: unknown stream, unreadable input, `--records` for a stream that has no
/// generator; `plan`, `apply`: invalid environment, a failed read or change, `apply` on an
/// environment that is not empty.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.target {
        Target::Worker(args) => worker(args).await,
        Target::Plan(args) => plan(args).await,
        Target::Apply(args) => apply(args).await,
        Target::Resume(args) => resume(args).await,
    }
}

/// Fills the stream's prefix up to `args.objects` placeholder objects (1000 per `dt` folder,
/// 64 uploads at once; counted in a marker object so that the next run adds only what is
/// missing), then times `args.runs` resumes of a partition and one listing of the prefix.
async fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    use futures_util::StreamExt as _;
    let ctx = super::context(&args.env).await?;
    let stream = super::worker::select_streams(&ctx.environment, std::slice::from_ref(&args.stream))?.remove(0);
    let lake = crate::worker::lake::Lake::new(&ctx.environment, &ctx.aws);
    let marker = format!("_indutech/bench/resume-{}.json", stream.name);
    let have: u64 = lake.get_json::<u64>(&lake.curated, &marker).await?.map_or(0, |(n, _)| n);
    if have < args.objects {
        eprintln!(
            "bench resume: writing {} placeholder objects into {}/ (first run only)",
            args.objects - have,
            stream.name
        );
        let started = Instant::now();
        let puts = (have..args.objects).map(|i| {
            let lake = &lake;
            let key = format!(
                "{}/{}={}/bench-resume+0+{i:020}.parquet",
                stream.name,
                stream.partition_key,
                chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date") + chrono::Days::new(i / 1000)
            );
            let body = b"placeholder".to_vec();
            let sha = crate::digest::sha256_hex(&body);
            async move { lake.put(&lake.curated, &key, body, "application/octet-stream", &sha).await }
        });
        let mut pending = futures_util::stream::iter(puts).buffer_unordered(64);
        let mut done = have;
        while let Some(result) = pending.next().await {
            result?;
            done += 1;
            if done.is_multiple_of(10_000) {
                eprintln!("  {done} objects ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
        drop(pending);
        let count = serde_json::to_vec(&args.objects)?;
        let sha = crate::digest::sha256_hex(&count);
        lake.put(&lake.curated, &marker, count, "application/json", &sha).await?;
    }
    let topic = format!("bench-resume-{}", stream.topic);
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        let started = Instant::now();
        let owned = match crate::worker::commit::take_over(&lake, &stream.name, &topic, 0, "bench", 0).await? {
            crate::worker::commit::TakeOver::Owned(owned) => owned,
            crate::worker::commit::TakeOver::Contended => bail!("the bench's partition is contended"),
        };
        crate::worker::commit::roll_forward(&lake, &owned).await?;
        let elapsed = started.elapsed();
        eprintln!("run {run}: take-over and roll-forward {}", secs(elapsed));
        runs.push(elapsed);
    }
    let started = Instant::now();
    let listed = lake.list(&lake.curated, &format!("{}/", stream.name)).await?.len();
    let listing = started.elapsed();
    println!(
        "bench resume: {listed} objects in s3://{}/{}/; a partition's resume (take-over and roll-forward): median {} (min {}, max {}, {} runs); listing the prefix, as a resume used to: {}",
        lake.curated,
        stream.name,
        secs(median(&runs)),
        secs(*runs.iter().min().expect("one run at least")),
        secs(*runs.iter().max().expect("one run at least")),
        runs.len(),
        secs(listing)
    );
    Ok(ExitCode::SUCCESS)
}

async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let environment = match crate::config::load(&args.env) {
        Ok(environment) => environment,
        Err(error) => bail!("cannot load environment `{}`: {error}", args.env),
    };
    let mut stream = super::worker::select_streams(&environment, std::slice::from_ref(&args.stream))?.remove(0);
    if let Some(granularity) = args.granularity {
        std::sync::Arc::make_mut(&mut stream).granularity = granularity;
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let partitions = args.partitions.unwrap_or(stream.partitions as usize);
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
            let tickets = crate::produce::TicketGenerator::new(1, args.malformed).take(count);
            let spread = args.one_date_per_record;
            let start = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");
            write_json_lines(
                &temp,
                tickets.enumerate().map(move |(i, mut record)| {
                    if spread && let Ok(mut ticket) = serde_json::from_slice::<serde_json::Value>(&record.payload) {
                        let day = start + chrono::Days::new(i as u64);
                        ticket["created_at"] = serde_json::json!(format!("{day}T12:00:00Z"));
                        record.payload = serde_json::to_vec(&ticket)?;
                    }
                    Ok(record)
                }),
            )?;
            temp.clone()
        }
    };
    let granularity = stream.granularity;
    let codec = crate::worker::codec::Codec::new(stream);
    let target = usize::try_from(environment.worker.target_file_size_bytes).unwrap_or(usize::MAX);
    let file = std::fs::File::open(&input).with_context(|| format!("opening {}", input.display()))?;
    let result = tokio::task::spawn_blocking(move || {
        crate::worker::bench::run(&codec, std::io::BufReader::with_capacity(1 << 20, file), target, partitions, threads)
    })
    .await
    .context("bench panicked")?;
    if input == temp {
        let _ = std::fs::remove_file(&temp);
    }
    let result = result?;
    eprintln!(
        "{} rows, {} rejected ({} files), {:.1} MB out (Parquet zstd + rejected JSON lines), {} spills, {:.2} s; \
         {} thread(s), {} partition(s), {} granularity",
        result.rows,
        result.rejected,
        result.rejected_files,
        result.bytes_out as f64 / 1e6,
        result.spills,
        result.elapsed.as_secs_f64(),
        threads,
        partitions,
        granularity.as_str(),
    );
    if let Some(line) = result.threads_line() {
        eprintln!("{line}");
    }
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

/// Times `plan` of every component `args.runs` times, each with a fresh context (nothing cached
/// between runs but the binary's digest, taken once before timing).
async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    crate::aws::record_call_times(true);
    let (mut resources, mut changes, mut env) = (0, 0, String::new());
    // As plan runs (reads in parallel), then one read at a time: the target's own time per
    // call, without the queueing that parallel reads cause in a single-process emulator.
    let mut results = Vec::new();
    for concurrency in [crate::engine::READ_CONCURRENCY, 1] {
        let (mut runs, mut calls) = (Vec::new(), Vec::new());
        for run in 1..=args.runs.max(1) {
            let ctx = super::context(&args.env).await?;
            let options = crate::engine::Options { read_concurrency: concurrency, ..Default::default() };
            ctx.binary_sha256()?;
            crate::aws::take_call_times();
            let started = Instant::now();
            let plan = crate::engine::plan(&ctx, crate::plan::Mode::Apply, &[], &options).await?;
            let elapsed = started.elapsed();
            let run_calls = crate::aws::take_call_times();
            eprintln!("{concurrency} read(s) at once, run {run}: {}", run_line(elapsed, &run_calls));
            (resources, changes, env) = (plan.resource_count, plan.changes.len(), ctx.environment.name.clone());
            runs.push(elapsed);
            calls.push(run_calls);
        }
        results.push((runs, CallStats::of(&calls)));
    }
    let [(runs, parallel), (serial_runs, serial)] = <[_; 2]>::try_from(results).expect("two passes");
    println!(
        "bench plan: {env}, {resources} resources, {changes} changes, {} runs: median {} (min {}, max {}) with {} reads \
         at once ({parallel}); one read at a time: median {} ({serial})",
        runs.len(),
        secs(median(&runs)),
        secs(*runs.iter().min().expect("one run at least")),
        secs(*runs.iter().max().expect("one run at least")),
        crate::engine::READ_CONCURRENCY,
        secs(median(&serial_runs)),
    );
    Ok(ExitCode::SUCCESS)
}

/// Times `apply` from empty (lock, observe, plan, execute) and `destroy --force-delete-data`,
/// `args.runs` times.
async fn apply(args: PlanArgs) -> anyhow::Result<ExitCode> {
    use crate::plan::{Action, Mode};
    crate::aws::record_call_times(true);
    let (mut applies, mut destroys, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    let (mut resources, mut not_performed, mut env) = (0, 0, String::new());
    for run in 1..=args.runs.max(1) {
        let ctx = super::context(&args.env).await?;
        ctx.binary_sha256()?;
        let options = crate::engine::Options { parallelism: args.parallelism, ..Default::default() };
        // Checked before the lock, which creates the state bucket when it is missing.
        let before = crate::engine::plan(&ctx, Mode::Apply, &[], &options).await?;
        let existing = before.resource_count - before.changes.iter().filter(|c| c.action == Action::Create).count();
        if existing > 0 {
            bail!(
                "bench apply starts from nothing, but {existing} resource(s) of environment {} exist: destroy it first, \
                 or bench a copy of it under another name",
                ctx.environment.name
            );
        }
        crate::aws::take_call_times();
        let started = Instant::now();
        let held = crate::lock::acquire(&ctx, "bench apply").await?;
        let observation = crate::engine::observe(&ctx, Mode::Apply, &[], &options).await?;
        let plan = crate::engine::plan_from(&ctx, Mode::Apply, &observation, &options);
        let lease = held.lease();
        let report = crate::engine::execute(&ctx, &plan, &options, Arc::default(), &|| lease.check()).await;
        crate::engine::record_gaps(&ctx, &observation, &report).await?;
        held.release(&ctx).await?;
        let applied = started.elapsed();
        let run_calls = crate::aws::take_call_times();
        check(&report, Mode::Apply)?;
        (resources, env) = (before.resource_count, ctx.environment.name.clone());
        not_performed = report.outcomes.iter().filter(|(_, _, o)| matches!(o, Outcome::NotPerformed(_))).count();

        let options = crate::engine::Options { force_delete_data: true, ..options };
        let started = Instant::now();
        let held = crate::lock::acquire(&ctx, "bench destroy").await?;
        let plan = crate::engine::plan(&ctx, Mode::Destroy, &[], &options).await?;
        let lease = held.lease();
        let report = crate::engine::execute(&ctx, &plan, &options, Arc::default(), &|| lease.check()).await;
        held.release(&ctx).await?;
        crate::lock::remove_state_bucket(&ctx).await?;
        let destroyed = started.elapsed();
        crate::aws::take_call_times();
        check(&report, Mode::Destroy)?;
        eprintln!("run {run}: apply {}; destroy {}", run_line(applied, &run_calls), secs(destroyed));
        applies.push(applied);
        destroys.push(destroyed);
        calls.push(run_calls);
    }
    println!(
        "bench apply: {env}, {resources} resources from empty ({not_performed} not performable on this target), {} runs: \
         apply median {} (min {}, max {}), destroy median {}; apply's {}",
        applies.len(),
        secs(median(&applies)),
        secs(*applies.iter().min().expect("one run at least")),
        secs(*applies.iter().max().expect("one run at least")),
        secs(median(&destroys)),
        CallStats::of(&calls)
    );
    Ok(ExitCode::SUCCESS)
}

/// Errors with the report when a change failed or was not attempted.
fn check(report: &crate::engine::Report, mode: crate::plan::Mode) -> anyhow::Result<()> {
    let failed = report.outcomes.iter().any(|(_, _, o)| matches!(o, Outcome::Failed(_) | Outcome::NotAttempted(_)));
    if failed {
        bail!("the benchmarked run failed:\n{}", crate::engine::report_text(report, mode));
    }
    Ok(())
}

fn run_line(elapsed: Duration, calls: &[CallTime]) -> String {
    let target: Duration = calls.iter().map(|c| c.elapsed).sum();
    format!(
        "{}, {} AWS calls, {} in the target (summed over concurrent calls)",
        secs(elapsed),
        calls.len(),
        secs(target)
    )
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// How long the target took per call over several runs.
#[derive(Debug, Clone, PartialEq)]
struct CallStats {
    /// Calls per run (the median run).
    per_run: usize,
    /// Per call: median, 90th percentile and slowest, with the slowest's operation.
    median: Duration,
    p90: Duration,
    slowest: Duration,
    slowest_operation: String,
    /// Target time summed over a run's calls (median run).
    summed: Duration,
}

impl CallStats {
    fn of(runs: &[Vec<CallTime>]) -> Self {
        let mut all: Vec<&CallTime> = runs.iter().flatten().collect();
        all.sort_by_key(|c| c.elapsed);
        let at =
            |q: f64| all.get(((all.len() as f64 - 1.0) * q).round() as usize).map_or(Duration::ZERO, |c| c.elapsed);
        let mut counts: Vec<usize> = runs.iter().map(Vec::len).collect();
        counts.sort_unstable();
        let sums: Vec<Duration> = runs.iter().map(|r| r.iter().map(|c| c.elapsed).sum()).collect();
        CallStats {
            per_run: counts.get(counts.len() / 2).copied().unwrap_or(0),
            median: at(0.5),
            p90: at(0.9),
            slowest: at(1.0),
            slowest_operation: all.last().map_or_else(String::new, |c| format!("{} {}", c.service, c.operation)),
            summed: if sums.is_empty() { Duration::ZERO } else { median(&sums) },
        }
    }
}

impl std::fmt::Display for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} AWS calls per run, the target's time per call: median {:.1} ms, p90 {:.1} ms, slowest {:.1} ms ({}); {} \
             summed per run",
            self.per_run,
            ms(self.median),
            ms(self.p90),
            ms(self.slowest),
            self.slowest_operation,
            secs(self.summed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str, ms: u64) -> CallTime {
        CallTime { service: "EC2".into(), operation: operation.into(), elapsed: Duration::from_millis(ms) }
    }

    #[test]
    fn call_stats_take_quantiles_over_every_run_and_medians_per_run() {
        let runs = vec![
            (1..=10).map(|i| call("DescribeVpcs", i)).collect::<Vec<_>>(),
            vec![call("DescribeSubnets", 100), call("DescribeVpcs", 5)],
            vec![call("DescribeVpcs", 1)],
        ];
        let stats = CallStats::of(&runs);
        assert_eq!(stats.per_run, 2);
        assert_eq!(stats.median, Duration::from_millis(5));
        assert_eq!(stats.p90, Duration::from_millis(10));
        assert_eq!(stats.slowest, Duration::from_millis(100));
        assert_eq!(stats.slowest_operation, "EC2 DescribeSubnets");
        // Sums per run: 55, 105, 1 ms -> median 55 ms.
        assert_eq!(stats.summed, Duration::from_millis(55));
    }
}
