//! The streaming worker: Redpanda topic -> validate, type, enrich -> Parquet in the lake,
//! exactly once (`indutech worker --env NAME [--stream NAME]`).
//!
//! One consumer (rdkafka, group `indutech-<env>-worker` unless `--group`) reads every selected
//! stream's topic; more workers in the group share the partitions. The group only distributes
//! partitions: where each partition resumes, and which files are in the lake, is decided by the
//! partition's commit record in the lake ([`commit`], the protocol and its invariants).
//!
//! A partition the group assigns is paused at once, taken over in the lake (epoch + 1, which
//! fences every earlier owner, paused or not), rolled forward, then resumed at the record's
//! committed position. Per partition the worker keeps one buffer: valid rows as Arrow columns
//! per `dt` ([`codec::Rows`]) and rejected records as JSON lines.
//!
//! Cores: the consume loop takes records in batches (what the consumer holds, up to
//! [`BATCH_RECORDS`] or [`BATCH_BYTES`]), checks each record's offset against its partition's
//! position in order, then decodes the batch's partitions on up to `--threads` threads at once
//! (a partition's records stay on one thread, in order). A flush runs in the background
//! ([`flush_job`]: encoding on a blocking thread, uploads, the commit) while the loop goes on
//! fetching and decoding; a partition has at most one flush running (the next one commits on
//! top of its record), at most `--threads` run at once, and their buffers count against the
//! memory budget until they settle.
//!
//! A buffer is flushed when the rows of one `dt` reach `worker.target_file_size_bytes` of
//! payload, when it is `worker.flush_interval_secs` old, when it holds [`MAX_OPEN_DATES`] `dt`
//! values, when all buffers together exceed [`MEMORY_BUDGET`] of Arrow, Parquet and JSON memory
//! (first the buffer with the most open rows is spilled: encoded into in-memory Parquet
//! fragments that its flush joins into one file per `dt`; when spilling reclaims little, the
//! largest buffer is flushed), and on shutdown. A flush stages its files, commits them in the
//! record (refused if another worker took the partition over: the flush is dropped and the
//! partition stopped), publishes them to their visible keys, registers new `dt` partitions in
//! Glue, and commits the offset to the consumer group too (for the group's lag; the lake's
//! record stays the truth).
//!
//! Offsets the broker never delivers (transaction markers, records removed by retention or
//! compaction before they landed) are recorded as gaps in the commit record, counted in
//! `indutech_worker_offset_gaps_total` and logged; a partition whose log ends before its
//! committed position (a topic deleted and created again) is stopped with an error, as is one
//! whose next batch cannot be read. A stopped partition is said in its commit record (and by
//! `indutech status`), tried again every [`STOPPED_RETRY`], never skipped. A worker that holds
//! no partition while nobody commits its group's lag rejoins the group.
//!
//! Memory: the consumer's prefetch is capped (`queued.max.messages.kbytes`) and buffers are
//! flushed before [`MEMORY_BUDGET`], so a backlog of any size is processed in bounded memory.
//! SIGTERM/SIGINT: stop fetching, flush, commit, publish, exit 0 within
//! `worker.drain_timeout_ms`; a second signal exits at once with status 130 (what was not
//! committed is read again by the next owner; its staged files are deleted then).

pub mod audit;
pub mod bench;
pub mod buffer;
pub mod codec;
pub mod commit;
pub mod lake;
pub mod sql_types;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio::sync::Notify;

use crate::config::environment::Environment;
use crate::config::stream::Stream;
use buffer::Buffer;
use codec::Codec;
use commit::{FlushFile, Owned, TakeOver};
use lake::Lake;

/// Buffers of all partitions together are flushed before their memory (Arrow chunks and
/// builders, fragments and JSON lines, as allocated) exceeds this many bytes.
pub const MEMORY_BUDGET: usize = 96 * 1024 * 1024;

/// A partition's buffer is flushed once it holds rows of this many distinct partition values
/// (`dt`): it bounds the files (and uploads) of one flush and the commit record listing them.
/// Large enough that four years of daily partitions (a replay of history) fit in one flush,
/// so that each value gets one file, not one per flush; an open value costs its rows and their
/// numbers ([`buffer::CHUNK_ROWS`]), so input whose dates are garbage is bounded by
/// [`MEMORY_BUDGET`] before this.
pub const MAX_OPEN_DATES: usize = 2048;

/// The buffers' memory is checked against [`MEMORY_BUDGET`] again after this many records.
pub const MEMORY_CHECK_EVERY: u64 = 1024;

/// A stopped partition is tried again after this long.
pub const STOPPED_RETRY: Duration = Duration::from_secs(300);

/// A partition with records beyond its position that delivers nothing for this long while the
/// consumer reports errors cannot be read: it is stopped.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// A worker that holds no partition for this long (and at least two flush intervals), while
/// the group's committed positions do not move although its topics have records left, rejoins
/// the group.
pub const IDLE_REJOIN_AFTER: Duration = Duration::from_secs(30);

/// A worker to which the group assigned nothing at all (not even an empty assignment) this
/// long after it joined rejoins: the test bed's broker (Tansu 0.6) can hold a join for minutes
/// when a member was killed during the previous rebalance.
pub const JOIN_STALL: Duration = Duration::from_secs(30);

/// What a worker does, resolved from the environment and the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Streams to consume (default: all of the environment's).
    pub streams: Vec<Arc<Stream>>,
    /// Consumer group id.
    pub group: String,
    /// Flush a buffer at least this often.
    pub flush_interval: Duration,
    /// Flush a buffer when its payload reaches this many bytes (uncompressed JSON).
    pub target_file_size: usize,
    /// Deadline for flush + upload + commit after the first signal.
    pub drain_timeout: Duration,
    /// Serve Prometheus metrics here (None: no metrics endpoint).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Flushes that encode and upload at once in the background, besides the consume loop
    /// (at least 1); and the threads that decode a batch of records of several partitions.
    pub threads: usize,
}

/// What a worker run did, for its last log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Records consumed.
    pub records_in: u64,
    /// Rows written to Parquet files.
    pub written: u64,
    /// Records written to the rejected zone.
    pub rejected: u64,
    /// Files published (both zones).
    pub files: u64,
    /// Where the worker's time went.
    pub time: Phases,
}

/// Wall-clock time per phase. The consume loop waits for records, decodes and waits for
/// flushes; flushes encode, upload and commit in the background, several at once, so their
/// times overlap the loop's and each other's: the sum exceeds the run time when they overlap.
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    /// Waiting for the next record from the broker (idle time included).
    pub waiting: Duration,
    /// Decoding, validating, typing and enriching records into buffers.
    pub decoding: Duration,
    /// Encoding buffers as Parquet (zstd) and JSON lines.
    pub encoding: Duration,
    /// Staging and publishing files, registering partitions (S3, Glue).
    pub uploading: Duration,
    /// Committing (the lake's commit records, the group's offsets) and taking partitions over.
    pub committing: Duration,
    /// The consume loop waiting for a background flush (the partition's previous flush must
    /// commit before its next one, the memory budget, the drain).
    pub flush_wait: Duration,
}

impl Phases {
    /// Sets the `indutech_worker_phase_seconds{phase}` gauges (cumulative seconds).
    fn publish(&self) {
        for (phase, time) in [
            ("waiting", self.waiting),
            ("decoding", self.decoding),
            ("encoding", self.encoding),
            ("uploading", self.uploading),
            ("committing", self.committing),
            ("flush_wait", self.flush_wait),
        ] {
            metrics::gauge!("indutech_worker_phase_seconds", "phase" => phase).set(time.as_secs_f64());
        }
    }

    /// `consume loop: waiting for records 1.2 s, decoding 0.4 s, waiting for flushes 0.1 s;
    /// background flushes: encoding 0.3 s, uploading 2.0 s, committing 0.1 s`
    pub fn describe(&self) -> String {
        format!(
            "consume loop: waiting for records {:.1} s, decoding {:.1} s, waiting for flushes {:.1} s; \
             background flushes: encoding {:.1} s, uploading {:.1} s, committing {:.1} s",
            self.waiting.as_secs_f64(),
            self.decoding.as_secs_f64(),
            self.flush_wait.as_secs_f64(),
            self.encoding.as_secs_f64(),
            self.uploading.as_secs_f64(),
            self.committing.as_secs_f64()
        )
    }
}

/// Adds the time since `started` to `phase` (published as metrics after each flush, not per
/// record: [`Phases::publish`]).
fn spent(phase: &mut Duration, started: Instant) {
    *phase += started.elapsed();
}

/// What the consumer's callbacks hand to the loop.
#[derive(Default)]
struct Shared {
    /// Partitions the group assigned (already paused), in order.
    assigned: Vec<(String, i32)>,
    /// Partitions the group revoked.
    revoked: Vec<(String, i32)>,
    /// Per partition: the broker's high watermark, from the last statistics.
    high: HashMap<(String, i32), i64>,
    /// Assignments the group made to this worker, empty ones included (a spare worker gets an
    /// empty one; a worker stuck in the group's join gets none).
    assignments: u64,
}

/// Rebalance and statistics hooks: assignments are paused and queued for the loop (which takes
/// them over before resuming them), revocations queued, lag goes to metrics.
struct WorkerContext {
    shared: Arc<StdMutex<Shared>>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        let mut shared = self.shared.lock().ok();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 {
                    continue;
                }
                if p.consumer_lag >= 0 {
                    metrics::gauge!("indutech_worker_consumer_lag", "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
                if let Some(shared) = shared.as_mut()
                    && p.hi_offset >= 0
                {
                    shared.high.insert((topic.clone(), *partition), p.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance
            && let Ok(mut shared) = self.shared.lock()
        {
            shared.assignments += 1;
        }
        if let Rebalance::Assign(list) = rebalance
            && list.count() == 0
        {
            // A spare member (more workers than partitions), or a broker that still counts a
            // killed member: said, so that a worker waiting for partitions says why.
            tracing::info!("the group assigned this worker no partition (the idle check rejoins if nobody commits)");
        } else if let Rebalance::Assign(list) = rebalance {
            // Nothing is read before the lake's commit record says where to resume.
            if let Err(error) = consumer.pause(list) {
                tracing::error!(%error, "could not pause newly assigned partitions");
            }
            let partitions: Vec<(String, i32)> =
                list.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
            tracing::info!(partitions = ?partitions.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>(),
                "partitions assigned by the group");
            if let Ok(mut shared) = self.shared.lock() {
                shared.assigned.extend(partitions);
            }
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance
            && let Ok(mut shared) = self.shared.lock()
        {
            for e in list.elements() {
                shared.revoked.push((e.topic().to_owned(), e.partition()));
            }
        }
    }
}

/// A partition this worker owns in the lake and consumes.
struct Active {
    stream: usize,
    owned: Owned,
    /// The next offset expected from the broker.
    next: i64,
    /// First offset buffered since the last flush.
    first: Option<i64>,
    /// When the buffer got its first record.
    opened: Instant,
    buffer: Buffer,
    /// Gaps seen since the last flush.
    gaps: Vec<[i64; 2]>,
    /// No record received yet since the resume (a first offset beyond `next` may be a message
    /// fetched before the seek: checked before it counts as a gap).
    fresh: bool,
    /// Seeks back to `next` done for such stale messages.
    reseeks: u32,
    /// When a record was last received (or the partition resumed).
    last_record: Instant,
    /// When an idle partition's position was last checked for skipped offsets.
    last_position_check: Instant,
    /// The high watermark when the partition was taken over.
    high_at_resume: i64,
    /// The flush running in the background; while it runs, `owned` is the record before it.
    in_flight: Option<InFlight>,
}

/// A batch ends after this many records ([`Worker::receive`]).
pub const BATCH_RECORDS: usize = 8192;

/// A batch ends once its payloads reach this many bytes.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Records the consumer delivered together: their payloads one after another.
#[derive(Default)]
struct Batch {
    /// The partitions the records come from (few: records index into it).
    keys: Vec<(String, i32)>,
    records: Vec<Received>,
    payloads: Vec<u8>,
}

/// One record of a [`Batch`].
struct Received {
    /// Index into [`Batch::keys`].
    key: usize,
    offset: i64,
    /// Where its payload ends in [`Batch::payloads`] (it starts where the previous one ends).
    end: usize,
}

impl Batch {
    fn push(&mut self, topic: &str, partition: i32, offset: i64, payload: &[u8]) {
        let key = match self.records.last() {
            Some(last) if self.keys[last.key].1 == partition && self.keys[last.key].0 == topic => last.key,
            _ => match self.keys.iter().position(|(t, p)| *p == partition && t == topic) {
                Some(key) => key,
                None => {
                    self.keys.push((topic.to_owned(), partition));
                    self.keys.len() - 1
                }
            },
        };
        self.payloads.extend_from_slice(payload);
        self.records.push(Received { key, offset, end: self.payloads.len() });
    }

    fn key(&self, i: usize) -> &(String, i32) {
        &self.keys[self.records[i].key]
    }

    fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.records[i - 1].end };
        &self.payloads[start..self.records[i].end]
    }
}

/// A partition's share of a batch: its state and the indexes of its records.
type Share<'a> = (&'a mut Active, Vec<usize>);

/// Decodes each partition's records of `batch` (indexes) into its buffer, the partitions
/// spread over up to `threads` threads (the calling one included): the partition with the
/// most records first, each thread taking the next one when it is done with one, so a thread
/// that runs slower (a VM's vCPU the host is busy on) takes fewer instead of holding the
/// batch up. `now`: ingestion time, microseconds since the epoch.
///
/// Errors: as [`Buffer::add`].
fn decode_batch(
    codecs: &[Codec],
    batch: &Batch,
    mut work: Vec<Share<'_>>,
    threads: usize,
    now: i64,
) -> anyhow::Result<()> {
    let decode = |(active, records): Share<'_>| -> anyhow::Result<()> {
        let codec = &codecs[active.stream];
        for i in records {
            let (topic, partition) = batch.key(i);
            active.buffer.add(codec, topic, *partition, batch.records[i].offset, batch.payload(i), now)?;
        }
        Ok(())
    };
    let threads = threads.clamp(1, work.len().max(1));
    if threads == 1 {
        return work.into_iter().try_for_each(decode);
    }
    work.sort_by_key(|(_, records)| std::cmp::Reverse(records.len()));
    let queue = std::sync::Mutex::new(work.into_iter());
    // The lock is held only to take a share: a thread that panicked decoding left it sound.
    let next = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
    let drain = || std::iter::from_fn(next).try_for_each(decode);
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(drain)).collect();
        let result = drain();
        for other in others {
            other.join().map_err(|_| anyhow::anyhow!("a decoding thread panicked"))??;
        }
        result
    })
}

/// A partition's flush running in the background (one at a time per partition).
struct InFlight {
    handle: tokio::task::JoinHandle<anyhow::Result<Flushed>>,
    /// Memory of the buffer it encodes, bytes: counted against [`MEMORY_BUDGET`] until it
    /// settles.
    memory: usize,
    /// When it started (the oldest settles first when [`Options::threads`] run).
    started: Instant,
}

/// What a background flush takes: the partition's buffer and position, and its owner's
/// record as last committed.
struct FlushJob {
    lake: Arc<Lake>,
    stream: Arc<Stream>,
    /// First offset in the buffer (the position when the flush holds only gaps).
    first: i64,
    /// The position after the buffer: the commit record's next offset.
    next: i64,
    gaps: Vec<[i64; 2]>,
    buffer: Buffer,
    owned: Owned,
}

/// What a background flush did.
struct Flushed {
    /// The owner's record as committed (or as it was, when fenced).
    owned: Owned,
    /// False: another worker took the partition over in the lake; the staged files were
    /// deleted and nothing was published.
    committed: bool,
    first: i64,
    next: i64,
    /// Rows, rejected records, files published and their bytes.
    rows: u64,
    rejected: u64,
    files: u64,
    bytes: u64,
    /// Encoding, uploading and committing time of this flush.
    time: Phases,
}

/// One flush, off the consume loop: encodes the buffer on a blocking thread (one Parquet file
/// per `dt` and JSON lines per rejected `dt`), stages the files under the owner's epoch,
/// registers new `dt` partitions in Glue, commits the record with `If-Match` on the owner's
/// last write, then publishes (or, fenced, deletes what it staged).
///
/// Errors: encoding, an upload, the Glue registration or the commit failed (a commit whose
/// outcome is unknown is never followed by a publish).
async fn flush_job(job: FlushJob) -> anyhow::Result<Flushed> {
    let FlushJob { lake, stream, first, next, gaps, mut buffer, mut owned } = job;
    let (topic, partition) = (owned.record.topic.clone(), owned.record.partition);
    let mut time = Phases::default();
    let rows = buffer.row_count() as u64;
    let rejected = buffer.rejected_count;
    let encoding = Instant::now();
    let source = format!("{topic}/{partition}");
    let encoded = tokio::task::spawn_blocking(move || buffer.take_files(&source))
        .await
        .context("encoding a flush panicked")??;
    spent(&mut time.encoding, encoding);
    let uploading = Instant::now();
    let mut dates = Vec::new();
    let mut files = Vec::new();
    for file in encoded {
        let (bucket, extension, content_type) = if file.rejected {
            (lake.rejected.clone(), "jsonl", "application/x-ndjson")
        } else {
            dates.push(file.value.clone());
            (lake.curated.clone(), "parquet", "application/vnd.apache.parquet")
        };
        let name = lake::file_name(&topic, partition, first, extension);
        files.push(FlushFile {
            bucket,
            target: lake::object_key(&stream.name, &stream.partition_key, &file.value, &name),
            body: file.body,
            content_type,
            records: file.records as u64,
        });
    }
    let count = files.len() as u64;
    let bytes: usize = files.iter().map(|f| f.body.len()).sum();
    let staged = commit::stage(&lake, &owned, first, files).await?;
    lake.register_partitions(&stream.name, &stream.partition_key, &dates).await?;
    spent(&mut time.uploading, uploading);

    let committing = Instant::now();
    let mut record = owned.record.clone();
    record.next_offset = next;
    record.rows += rows;
    record.rejected += rejected;
    for gap in &gaps {
        commit::add_gap(&mut record.gaps, gap[0], gap[1]);
    }
    record.pending = staged.clone();
    record.stopped = None;
    let committed = commit::commit(&lake, &mut owned, record).await?;
    spent(&mut time.committing, committing);
    let publishing = Instant::now();
    if committed {
        commit::publish(&lake, &staged).await?;
    } else {
        commit::discard(&lake, &staged).await?;
    }
    spent(&mut time.uploading, publishing);
    Ok(Flushed { owned, committed, first, next, rows, rejected, files: count, bytes: bytes as u64, time })
}

/// Where one assigned partition stands.
enum State {
    /// Paused; the lake take-over is due at `retry_at`.
    Resuming { retry_at: Instant },
    /// Owned and consumed.
    Active(Box<Active>),
    /// Paused because it cannot go on (said in its commit record); tried again at `retry_at`.
    Stopped { retry_at: Instant },
    /// Another worker took it over in the lake: paused until the group revokes it.
    Fenced,
}

/// Consumer errors, logged once a minute per kind instead of at every poll.
#[derive(Default)]
struct ErrorLog {
    last: HashMap<String, (Instant, u64)>,
    /// When a consumer error was last seen.
    seen: Option<Instant>,
    /// The last one, for the reasons of stopped partitions.
    latest: String,
}

impl ErrorLog {
    fn record(&mut self, error: &str) {
        metrics::counter!("indutech_worker_consumer_errors_total").increment(1);
        self.seen = Some(Instant::now());
        self.latest = error.to_owned();
        let entry = self.last.entry(error.to_owned()).or_insert((Instant::now() - Duration::from_secs(3600), 0));
        entry.1 += 1;
        if entry.0.elapsed() >= Duration::from_secs(60) {
            tracing::warn!(%error, times = entry.1, "consumer error (said once a minute while it lasts)");
            *entry = (Instant::now(), 0);
        }
    }

    /// Whether a consumer error was seen after `instant`.
    fn since(&self, instant: Instant) -> bool {
        self.seen.is_some_and(|t| t > instant)
    }
}

/// What a record's offset means for its partition's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Before the expected offset: fetched before a seek, or again after one; ignored.
    Stale,
    /// The expected offset.
    Next,
    /// Beyond it right after a resume, while the log holds the expected offset: probably a
    /// message fetched before the seek; seek again (at most [`MAX_RESEEKS`] times).
    Reseek,
    /// Beyond it: the offsets between were never delivered (transaction markers, records
    /// removed by retention or compaction): a gap.
    Gap,
}

/// Seeks again after a resume before offsets beyond the expected one count as a gap.
const MAX_RESEEKS: u32 = 3;

/// Classifies a record at `offset` when `next` is expected; `fresh` means no record was taken
/// since the resume, `reseeks` how many seeks back to `next` were made for it, `log_start`
/// reads the partition's first offset (asked only when it matters).
///
/// Errors: `log_start` failed.
fn arrival<E>(
    next: i64,
    offset: i64,
    fresh: bool,
    reseeks: u32,
    log_start: impl FnOnce() -> Result<i64, E>,
) -> Result<Arrival, E> {
    Ok(if offset < next {
        Arrival::Stale
    } else if offset == next {
        Arrival::Next
    } else if fresh && reseeks < MAX_RESEEKS && log_start()? <= next {
        Arrival::Reseek
    } else {
        Arrival::Gap
    })
}

/// Whether an idle worker should rejoin its group: records are `left` on partitions nobody
/// stopped, and the lake's committed positions (summed) did not move since the `previous`
/// check, so no other member consumes them either.
fn should_rejoin(left: i64, previous: Option<i64>, position: i64) -> bool {
    left > 0 && previous == Some(position)
}

/// The worker: consumer, codecs, lake, partitions.
struct Worker {
    consumer: StreamConsumer<WorkerContext>,
    shared: Arc<StdMutex<Shared>>,
    codecs: Vec<Codec>,
    by_topic: HashMap<String, usize>,
    lake: Arc<Lake>,
    options: Options,
    /// The brokers, as the worker principal.
    kafka: crate::kafka::Connection,
    /// Who takes partitions over: `<group> <host> pid <pid> <run id>`.
    owner: String,
    partitions: HashMap<(String, i32), State>,
    errors: ErrorLog,
    /// Since when this worker holds no partition (None: it holds some).
    idle_since: Option<Instant>,
    /// The group's committed positions at the last idle check, and when it was made.
    idle_check: Option<(Instant, i64)>,
    /// When this worker (re)joined the group, and how many assignments it had seen then.
    joined: (Instant, u64),
    last_health: Instant,
    /// `summary.records_in` when the buffers' memory was last measured.
    memory_checked_at: u64,
    summary: Summary,
}

/// Upper bounds of the flush latency histogram's buckets (seconds), so that dashboards can
/// aggregate quantiles over workers (`histogram_quantile`).
const FLUSH_SECONDS_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Describes every metric (`# HELP`, unit) and exposes each counter at 0 from the start, per
/// stream or topic where it has that label: a series that appears only with its first event
/// makes `rate()` and alerts blind to it (localstack/grafana/dashboards/ queries them all).
fn register_metrics(streams: &[Arc<Stream>]) {
    use metrics::Unit;
    metrics::describe_counter!("indutech_worker_records_in_total", Unit::Count, "records consumed");
    metrics::describe_counter!("indutech_worker_bytes_in_total", Unit::Bytes, "payload bytes consumed, uncompressed");
    metrics::describe_counter!("indutech_worker_records_written_total", Unit::Count, "rows published as Parquet");
    metrics::describe_counter!(
        "indutech_worker_records_rejected_total",
        Unit::Count,
        "records published to the rejected zone"
    );
    metrics::describe_counter!("indutech_worker_bytes_written_total", Unit::Bytes, "file bytes published");
    metrics::describe_counter!("indutech_worker_files_written_total", Unit::Count, "files published");
    metrics::describe_histogram!("indutech_worker_flush_seconds", Unit::Seconds, "a flush: encode, upload, commit");
    metrics::describe_gauge!(
        "indutech_worker_last_commit_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last commit"
    );
    metrics::describe_gauge!("indutech_worker_consumer_lag", Unit::Count, "records on the broker not yet consumed");
    metrics::describe_gauge!("indutech_worker_partition_stopped", "1 while a partition is stopped (see the log)");
    metrics::describe_gauge!("indutech_worker_phase_seconds", Unit::Seconds, "cumulative time per phase");
    metrics::describe_counter!("indutech_worker_offset_gaps_total", Unit::Count, "offsets the broker did not deliver");
    metrics::describe_counter!("indutech_worker_consumer_errors_total", Unit::Count, "consumer errors");
    metrics::describe_counter!("indutech_worker_fenced_total", Unit::Count, "flushes discarded: another owner's epoch");
    metrics::describe_counter!("indutech_worker_rejoins_total", Unit::Count, "consumer group rejoins");
    for name in
        ["indutech_worker_consumer_errors_total", "indutech_worker_fenced_total", "indutech_worker_rejoins_total"]
    {
        metrics::counter!(name).increment(0);
    }
    for stream in streams {
        let labels = [("stream", stream.name.clone())];
        for name in [
            "indutech_worker_records_in_total",
            "indutech_worker_bytes_in_total",
            "indutech_worker_records_written_total",
            "indutech_worker_records_rejected_total",
            "indutech_worker_bytes_written_total",
            "indutech_worker_files_written_total",
        ] {
            metrics::counter!(name, &labels).increment(0);
        }
        metrics::counter!("indutech_worker_offset_gaps_total", "topic" => stream.topic.clone()).increment(0);
    }
}

/// Runs the worker until SIGTERM/SIGINT, then drains within the deadline.
///
/// Errors: the lake or the Glue tables are missing (apply first), the broker is unreachable,
/// a topic does not exist, an upload or a commit keeps failing, or the drain missed its
/// deadline (then nothing is lost: what was not committed is read again by the next owner).
pub async fn run(environment: &Environment, aws: &crate::aws::Aws, options: Options) -> anyhow::Result<Summary> {
    let shutdown = Arc::new(Notify::new());
    spawn_signal_handler(shutdown.clone())?;
    run_until(environment, aws, options, shutdown).await
}

/// Runs the worker until `shutdown` is notified, then drains within the deadline (what
/// [`run`] does on a signal; the smoke test's sandbox worker runs in-process this way).
///
/// Errors: as [`run`].
pub async fn run_until(
    environment: &Environment,
    aws: &crate::aws::Aws,
    options: Options,
    shutdown: Arc<Notify>,
) -> anyhow::Result<Summary> {
    let lake = Arc::new(Lake::new(environment, aws));
    let streams: Vec<&Stream> = options.streams.iter().map(AsRef::as_ref).collect();
    lake.check(&streams).await?;
    if let Some(addr) = options.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("indutech_worker_flush_seconds".into()),
                FLUSH_SECONDS_BUCKETS,
            )
            .context("the flush latency's buckets")?
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        register_metrics(&options.streams);
        tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    }
    let shared = Arc::new(StdMutex::new(Shared::default()));
    let kafka = crate::kafka::connection(environment, aws, crate::kafka::Principal::Worker).await?;
    let consumer: StreamConsumer<WorkerContext> = kafka
        .config()
        .set("group.id", &options.group)
        .set("client.id", format!("indutech-worker-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "45000")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.max.bytes", "8388608")
        .set("statistics.interval.ms", "5000")
        .create_with_context(WorkerContext { shared: shared.clone() })
        .context("creating the Kafka consumer")?;
    let topics: Vec<&str> = options.streams.iter().map(|s| s.topic.as_str()).collect();
    check_topics(&consumer, &topics)?;
    consumer.subscribe(&topics).context("subscribing to the stream topics")?;
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let owner = format!("{} {host} pid {} {}", options.group, std::process::id(), &run_id[..8]);
    tracing::info!(group = %options.group, topics = ?topics, %owner, "worker started");

    let codecs: Vec<Codec> = options.streams.iter().map(|s| Codec::new(s.clone())).collect();
    let by_topic = options.streams.iter().enumerate().map(|(i, s)| (s.topic.clone(), i)).collect();
    let mut worker = Worker {
        consumer,
        shared,
        codecs,
        by_topic,
        lake,
        options,
        kafka,
        owner,
        partitions: HashMap::new(),
        errors: ErrorLog::default(),
        idle_since: Some(Instant::now()),
        idle_check: None,
        joined: (Instant::now(), 0),
        last_health: Instant::now(),
        memory_checked_at: 0,
        summary: Summary::default(),
    };

    worker.consume(&shutdown).await?;
    tracing::info!(deadline_ms = worker.options.drain_timeout.as_millis() as u64, "draining: flush, commit, publish");
    let deadline = worker.options.drain_timeout;
    match tokio::time::timeout(deadline, worker.flush_all()).await {
        Ok(result) => result?,
        Err(_) => bail!(
            "the drain did not finish within {} ms (worker.drain_timeout_ms); nothing is lost: \
             records not committed are read again by the partition's next owner",
            deadline.as_millis()
        ),
    }
    worker.consumer.unsubscribe();
    Ok(worker.summary)
}

/// First signal: notify the loop; second: exit at once (130), leaving only staged files that
/// the partitions' next owners delete.
fn spawn_signal_handler(shutdown: Arc<Notify>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("signal received: stopping (a second signal exits at once)");
        shutdown.notify_one();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        eprintln!("second signal: exiting without draining; uncommitted records will be read again");
        std::process::exit(130);
    });
    Ok(())
}

/// Fails with the missing topics' names when the cluster does not have them.
fn check_topics(consumer: &StreamConsumer<WorkerContext>, topics: &[&str]) -> anyhow::Result<()> {
    let metadata = tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(15)))
        .context("reading the cluster metadata (is the broker up?)")?;
    let existing: Vec<&str> =
        metadata.topics().iter().filter(|t| !t.partitions().is_empty()).map(|t| t.name()).collect();
    let missing: Vec<&&str> = topics.iter().filter(|t| !existing.contains(t)).collect();
    if !missing.is_empty() {
        bail!("topic(s) {missing:?} do not exist; run `indutech apply` (it creates one topic per stream)");
    }
    Ok(())
}

fn one_partition(topic: &str, partition: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}

impl Worker {
    async fn consume(&mut self, shutdown: &Notify) -> anyhow::Result<()> {
        loop {
            self.apply_rebalances().await?;
            self.resume_due().await?;
            let waiting = Instant::now();
            let batch = tokio::select! {
                biased;
                () = shutdown.notified() => return Ok(()),
                batch = self.receive() => batch,
            };
            spent(&mut self.summary.time.waiting, waiting);
            self.apply_rebalances().await?;
            self.process(&batch).await?;
            self.settle_finished().await?;
            self.flush_due().await?;
            if self.last_health.elapsed() >= Duration::from_secs(5) {
                self.last_health = Instant::now();
                self.health().await?;
            }
        }
    }

    /// The next batch: waits up to 500 ms for a first record, then takes those the consumer
    /// already holds, up to [`BATCH_RECORDS`] records or [`BATCH_BYTES`] of payload. Consumer
    /// errors are logged (once a minute per kind) and end the batch.
    async fn receive(&mut self) -> Batch {
        use futures_util::FutureExt as _;
        let mut batch = Batch::default();
        let first = match tokio::time::timeout(Duration::from_millis(500), self.consumer.recv()).await {
            Err(_) => return batch,
            Ok(first) => first,
        };
        let mut next = Some(first);
        while let Some(received) = next.take() {
            match received {
                Err(error) => {
                    self.errors.record(&error.to_string());
                    break;
                }
                Ok(m) => batch.push(m.topic(), m.partition(), m.offset(), m.payload().unwrap_or_default()),
            }
            if batch.records.len() >= BATCH_RECORDS || batch.payloads.len() >= BATCH_BYTES {
                break;
            }
            next = self.consumer.recv().now_or_never();
        }
        batch
    }

    /// Takes the group's revocations and assignments from the callbacks. A revoked
    /// partition's background flush is settled first (its commit decides where the next owner
    /// resumes; fenced, it is dropped).
    async fn apply_rebalances(&mut self) -> anyhow::Result<()> {
        let (assigned, revoked) = match self.shared.lock() {
            Ok(mut shared) => (std::mem::take(&mut shared.assigned), std::mem::take(&mut shared.revoked)),
            Err(_) => return Ok(()),
        };
        for key in revoked {
            self.settle(&key).await?;
            if let Some(State::Active(active)) = self.partitions.remove(&key) {
                let records = active.next - active.first.unwrap_or(active.next);
                tracing::info!(topic = %key.0, partition = key.1, records,
                    "partition revoked: its records not committed will be read again by its next owner");
            } else {
                self.partitions.remove(&key);
            }
        }
        for key in assigned {
            if self.by_topic.contains_key(&key.0) {
                self.partitions.insert(key, State::Resuming { retry_at: Instant::now() });
            }
        }
        self.idle_since = match (self.partitions.is_empty(), self.idle_since) {
            (true, None) => Some(Instant::now()),
            (true, since) => since,
            (false, _) => None,
        };
        Ok(())
    }

    /// Takes over every assigned partition whose turn it is (new ones, retries of failed
    /// take-overs, stopped ones due for another try).
    async fn resume_due(&mut self) -> anyhow::Result<()> {
        let due: Vec<(String, i32)> = self
            .partitions
            .iter()
            .filter(|(_, s)| match s {
                State::Resuming { retry_at } | State::Stopped { retry_at } => *retry_at <= Instant::now(),
                _ => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let started = Instant::now();
            let state = match self.take_over(&key).await {
                Ok(state) => state,
                Err(error) => {
                    tracing::error!(topic = %key.0, partition = key.1, error = %format!("{error:#}"),
                        "could not take the partition over in the lake; trying again in 10 s");
                    State::Resuming { retry_at: Instant::now() + Duration::from_secs(10) }
                }
            };
            spent(&mut self.summary.time.committing, started);
            self.partitions.insert(key, state);
        }
        Ok(())
    }

    /// The lake take-over of one assigned, paused partition, then its resume at the committed
    /// position (or its stop when the log ends before that position).
    async fn take_over(&mut self, key: &(String, i32)) -> anyhow::Result<State> {
        let (topic, partition) = (key.0.as_str(), key.1);
        let stream = self.by_topic[topic];
        let stream_name = self.codecs[stream].stream().name.clone();
        let (low, high) =
            tokio::task::block_in_place(|| self.consumer.fetch_watermarks(topic, partition, Duration::from_secs(15)))
                .with_context(|| format!("reading the watermarks of {topic}/{partition}"))?;
        // A partition the lake never landed starts where the group is, else at the log's start.
        let start = match commit::read(&self.lake, topic, partition).await? {
            Some(_) => low,
            None => {
                let committed = tokio::task::block_in_place(|| {
                    self.consumer.committed_offsets(one_partition(topic, partition), Duration::from_secs(15))
                })
                .with_context(|| format!("reading the group's committed offset of {topic}/{partition}"))?;
                match committed.find_partition(topic, partition).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o.max(low),
                    _ => low,
                }
            }
        };
        let mut owned = match commit::take_over(&self.lake, &stream_name, topic, partition, &self.owner, start).await? {
            TakeOver::Owned(owned) => *owned,
            TakeOver::Contended => {
                tracing::warn!(topic, partition, "other workers keep taking the partition over; trying again in 10 s");
                return Ok(State::Resuming { retry_at: Instant::now() + Duration::from_secs(10) });
            }
        };
        let deleted = commit::roll_forward(&self.lake, &owned).await?;
        let record = &owned.record;
        if record.next_offset > high {
            let reason = format!(
                "the log of {topic}/{partition} ends at offset {high}, before the lake's committed position {}: was \
                 the topic deleted and created again? Nothing is skipped: move the partition's files out of the \
                 stream's prefixes if they must go, delete the commit record s3://{}/{} and restart the workers to \
                 land the topic from its start",
                record.next_offset,
                self.lake.curated,
                commit::record_key(topic, partition)
            );
            let at = record.next_offset;
            return self.stop(key, &mut owned, at, &reason).await;
        }
        let next = record.next_offset;
        tokio::task::block_in_place(|| {
            self.consumer.seek(topic, partition, Offset::Offset(next), Duration::from_secs(15))
        })
        .with_context(|| format!("seeking {topic}/{partition} to the lake's committed position {next}"))?;
        self.consumer
            .resume(&one_partition(topic, partition))
            .with_context(|| format!("resuming {topic}/{partition}"))?;
        metrics::gauge!("indutech_worker_partition_stopped", "topic" => topic.to_owned(), "partition" => partition.to_string())
            .set(0.0);
        tracing::info!(
            topic,
            partition,
            epoch = record.epoch,
            resume_from = next,
            rolled_forward = record.pending.len(),
            staged_deleted = deleted,
            "partition taken over and resumed"
        );
        Ok(State::Active(Box::new(Active {
            stream,
            owned,
            next,
            first: None,
            opened: Instant::now(),
            buffer: Buffer::default(),
            gaps: Vec::new(),
            fresh: true,
            reseeks: 0,
            last_record: Instant::now(),
            last_position_check: Instant::now(),
            high_at_resume: high,
            in_flight: None,
        })))
    }

    /// Pauses `key`, says why in its commit record and in the log and metrics.
    async fn stop(
        &mut self,
        key: &(String, i32),
        owned: &mut Owned,
        offset: i64,
        reason: &str,
    ) -> anyhow::Result<State> {
        let (topic, partition) = (key.0.as_str(), key.1);
        let _ = self.consumer.pause(&one_partition(topic, partition));
        tracing::error!(topic, partition, offset, reason, retry_in_secs = STOPPED_RETRY.as_secs(), "partition stopped");
        metrics::gauge!("indutech_worker_partition_stopped", "topic" => topic.to_owned(), "partition" => partition.to_string())
            .set(1.0);
        if !commit::stop(&self.lake, owned, offset, reason).await? {
            return Ok(State::Fenced);
        }
        Ok(State::Stopped { retry_at: Instant::now() + STOPPED_RETRY })
    }

    /// Takes a batch: per record, in order, where its offset stands for its partition (stale,
    /// expected, a seek back, a gap); then decodes the records of each partition into its
    /// buffer, partitions on up to [`Options::threads`] threads at once; then flushes the
    /// buffers that are full.
    async fn process(&mut self, batch: &Batch) -> anyhow::Result<()> {
        // Per partition: the records to decode (indexes into the batch).
        let mut taken: HashMap<&(String, i32), Vec<usize>> = HashMap::new();
        // Partitions sought back in this batch: their later records were fetched before the seek.
        let mut sought: Vec<&(String, i32)> = Vec::new();
        for (i, record) in batch.records.iter().enumerate() {
            let key = &batch.keys[record.key];
            let Some(State::Active(active)) = self.partitions.get_mut(key) else { continue };
            if sought.contains(&key) {
                continue;
            }
            let (topic, partition, offset) = (key.0.as_str(), key.1, record.offset);
            let consumer = &self.consumer;
            let log_start = || {
                tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, partition, Duration::from_secs(15)))
                    .map(|(low, _)| low)
            };
            match arrival(active.next, offset, active.fresh, active.reseeks, log_start)? {
                Arrival::Stale => continue,
                Arrival::Next => {}
                Arrival::Reseek => {
                    active.reseeks += 1;
                    let next = active.next;
                    tokio::task::block_in_place(|| {
                        self.consumer.seek(topic, partition, Offset::Offset(next), Duration::from_secs(15))
                    })?;
                    sought.push(key);
                    continue;
                }
                Arrival::Gap => {
                    let missing = offset - active.next;
                    tracing::warn!(
                        topic,
                        partition,
                        from = active.next,
                        to = offset,
                        missing,
                        "offsets the broker did not deliver (transaction markers, retention or compaction): recorded as a gap"
                    );
                    metrics::counter!("indutech_worker_offset_gaps_total", "topic" => topic.to_owned())
                        .increment(missing as u64);
                    commit::add_gap(&mut active.gaps, active.next, offset);
                }
            }
            active.fresh = false;
            active.last_record = Instant::now();
            if active.first.is_none() {
                active.first = Some(offset);
                active.opened = Instant::now();
            }
            active.next = offset + 1;
            taken.entry(key).or_default().push(i);
        }
        if taken.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let now = chrono::Utc::now().timestamp_micros();
        let mut work: Vec<Share<'_>> = Vec::new();
        for (key, state) in &mut self.partitions {
            if let (State::Active(active), Some(records)) = (state, taken.remove(key)) {
                work.push((active.as_mut(), records));
            }
        }
        let mut counts: Vec<(usize, u64, u64)> = Vec::new();
        for (active, records) in &work {
            let bytes = records.iter().map(|&i| batch.payload(i).len() as u64).sum();
            counts.push((active.stream, records.len() as u64, bytes));
        }
        let codecs = &self.codecs;
        let threads = self.options.threads;
        tokio::task::block_in_place(|| decode_batch(codecs, batch, work, threads, now))?;
        spent(&mut self.summary.time.decoding, started);
        for (stream, records, bytes) in counts {
            let labels = [("stream", self.options.streams[stream].name.clone())];
            metrics::counter!("indutech_worker_records_in_total", &labels).increment(records);
            metrics::counter!("indutech_worker_bytes_in_total", &labels).increment(bytes);
            self.summary.records_in += records;
        }
        let full: Vec<(String, i32)> = self
            .partitions
            .iter()
            .filter(|(_, s)| matches!(s, State::Active(a) if a.buffer.full(self.options.target_file_size)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in full {
            self.flush(&key).await?;
        }
        Ok(())
    }

    async fn flush_due(&mut self) -> anyhow::Result<()> {
        let interval = self.options.flush_interval;
        let mut due: Vec<(String, i32)> = Vec::new();
        for (key, state) in &mut self.partitions {
            let State::Active(active) = state else { continue };
            if active.first.is_some() && active.opened.elapsed() >= interval {
                due.push(key.clone());
            } else if active.first.is_none()
                && active.last_record.elapsed() >= interval
                && active.last_position_check.elapsed() >= interval
            {
                // Idle: offsets the consumer skipped past (control records) become a gap.
                if let Ok(position) = self.consumer.position()
                    && let Some(Offset::Offset(at)) = position.find_partition(&key.0, key.1).map(|e| e.offset())
                    && at > active.next
                    && !active.fresh
                {
                    commit::add_gap(&mut active.gaps, active.next, at);
                    metrics::counter!("indutech_worker_offset_gaps_total", "topic" => key.0.clone())
                        .increment((at - active.next) as u64);
                    active.next = at;
                    due.push(key.clone());
                }
                active.last_position_check = Instant::now();
            }
        }
        for key in due {
            self.flush(&key).await?;
        }
        // Each buffer keeps its memory up to date, but relief walks every partition: every
        // MEMORY_CHECK_EVERY records is often enough (they add at most a few MB between checks).
        if self.summary.records_in < self.memory_checked_at + MEMORY_CHECK_EVERY {
            return Ok(());
        }
        self.memory_checked_at = self.summary.records_in;
        loop {
            // Buffers being flushed count until their flush settles: over the budget with some
            // in flight, wait for those first (a flush frees its buffer's memory).
            let in_flight = self.in_flight_memory();
            if in_flight > 0 {
                let open: usize = self
                    .partitions
                    .values()
                    .filter_map(|s| match s {
                        State::Active(a) => Some(a.buffer.memory()),
                        _ => None,
                    })
                    .sum();
                if open + in_flight > MEMORY_BUDGET {
                    self.settle_all().await?;
                    continue;
                }
            }
            let buffers = self.partitions.iter().filter_map(|(k, s)| match s {
                State::Active(a) => Some((k.clone(), &a.buffer)),
                _ => None,
            });
            match buffer::relief(buffers, MEMORY_BUDGET) {
                None => break,
                Some(buffer::Relief::Spill(key)) => {
                    let Some(State::Active(active)) = self.partitions.get_mut(&key) else { break };
                    let started = Instant::now();
                    tokio::task::block_in_place(|| active.buffer.spill())?;
                    spent(&mut self.summary.time.encoding, started);
                }
                Some(buffer::Relief::Flush(key)) => self.flush(&key).await?,
            }
        }
        Ok(())
    }

    async fn flush_all(&mut self) -> anyhow::Result<()> {
        let keys: Vec<(String, i32)> = self.partitions.keys().cloned().collect();
        for key in keys {
            self.flush(&key).await?;
        }
        self.settle_all().await
    }

    /// Starts the flush of a partition's buffer in the background ([`flush_job`]: encode,
    /// stage, commit in the lake's record, publish, register new `dt` partitions), after the
    /// partition's previous flush settled (its commit is the one this one builds on) and, when
    /// [`Options::threads`] flushes run already, after the oldest of them settled.
    async fn flush(&mut self, key: &(String, i32)) -> anyhow::Result<()> {
        self.settle(key).await?;
        let Some(State::Active(active)) = self.partitions.get(key) else { return Ok(()) };
        if active.first.is_none() && active.gaps.is_empty() {
            return Ok(());
        }
        while self.in_flight() >= self.options.threads.max(1) {
            let Some(oldest) = self.oldest_in_flight() else { break };
            self.settle(&oldest).await?;
        }
        let Some(State::Active(active)) = self.partitions.get_mut(key) else { return Ok(()) };
        let job = FlushJob {
            lake: self.lake.clone(),
            stream: self.options.streams[active.stream].clone(),
            first: active.first.take().unwrap_or(active.next),
            next: active.next,
            gaps: std::mem::take(&mut active.gaps),
            buffer: std::mem::take(&mut active.buffer),
            owned: active.owned.clone(),
        };
        let memory = job.buffer.memory();
        active.in_flight = Some(InFlight { handle: tokio::spawn(flush_job(job)), memory, started: Instant::now() });
        Ok(())
    }

    /// Flushes running in the background.
    fn in_flight(&self) -> usize {
        self.partitions.values().filter(|s| matches!(s, State::Active(a) if a.in_flight.is_some())).count()
    }

    /// The partition whose background flush started first.
    fn oldest_in_flight(&self) -> Option<(String, i32)> {
        self.partitions
            .iter()
            .filter_map(|(key, s)| match s {
                State::Active(a) => a.in_flight.as_ref().map(|f| (f.started, key)),
                _ => None,
            })
            .min_by_key(|(started, _)| *started)
            .map(|(_, key)| key.clone())
    }

    /// Memory of the buffers being flushed in the background, bytes.
    fn in_flight_memory(&self) -> usize {
        self.partitions
            .values()
            .filter_map(|s| match s {
                State::Active(a) => a.in_flight.as_ref().map(|f| f.memory),
                _ => None,
            })
            .sum()
    }

    /// Settles the background flushes that finished, without waiting.
    async fn settle_finished(&mut self) -> anyhow::Result<()> {
        let finished: Vec<(String, i32)> = self
            .partitions
            .iter()
            .filter(
                |(_, s)| matches!(s, State::Active(a) if a.in_flight.as_ref().is_some_and(|f| f.handle.is_finished())),
            )
            .map(|(k, _)| k.clone())
            .collect();
        for key in finished {
            self.settle(&key).await?;
        }
        Ok(())
    }

    /// Settles every background flush, waiting for them.
    async fn settle_all(&mut self) -> anyhow::Result<()> {
        let keys: Vec<(String, i32)> = self.partitions.keys().cloned().collect();
        for key in keys {
            self.settle(&key).await?;
        }
        Ok(())
    }

    /// Waits for the partition's background flush, if one runs, and takes its outcome: the
    /// owner's record as committed, the group's offset, metrics and counts; or, when another
    /// worker took the partition over in the lake (nothing of the flush was published), the
    /// partition is paused and fenced, and what was buffered since is dropped.
    ///
    /// Errors: the flush failed (an upload or a commit kept failing: the worker stops, and
    /// what was not committed is read again by the partition's next owner).
    async fn settle(&mut self, key: &(String, i32)) -> anyhow::Result<()> {
        let Some(State::Active(active)) = self.partitions.get_mut(key) else { return Ok(()) };
        let Some(in_flight) = active.in_flight.take() else { return Ok(()) };
        let waited = Instant::now();
        let flushed = in_flight.handle.await.context("a background flush panicked")??;
        spent(&mut self.summary.time.flush_wait, waited);
        let time = &mut self.summary.time;
        time.encoding += flushed.time.encoding;
        time.uploading += flushed.time.uploading;
        time.committing += flushed.time.committing;
        active.owned = flushed.owned;
        let (topic, partition) = (key.0.as_str(), key.1);
        if !flushed.committed {
            let epoch = active.owned.record.epoch;
            tracing::warn!(
                topic,
                partition,
                epoch,
                first = flushed.first,
                next = flushed.next,
                "another worker took the partition over in the lake: this flush is dropped (nothing of it was \
                 published), and so is what was read since; the partition stops here"
            );
            let _ = self.consumer.pause(&one_partition(topic, partition));
            self.partitions.insert(key.clone(), State::Fenced);
            metrics::counter!("indutech_worker_fenced_total").increment(1);
            return Ok(());
        }
        let committing = Instant::now();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(flushed.next))?;
        // The group's offset is for its lag only: asynchronous, and a failure changes nothing.
        if let Err(error) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::debug!(topic, partition, %error, "group offset commit failed (the lake's record is the truth)");
        }
        spent(&mut self.summary.time.committing, committing);
        self.summary.time.publish();
        let labels = [("stream", self.options.streams[active.stream].name.clone())];
        metrics::counter!("indutech_worker_records_written_total", &labels).increment(flushed.rows);
        metrics::counter!("indutech_worker_records_rejected_total", &labels).increment(flushed.rejected);
        metrics::counter!("indutech_worker_bytes_written_total", &labels).increment(flushed.bytes);
        metrics::counter!("indutech_worker_files_written_total", &labels).increment(flushed.files);
        let took = flushed.time.encoding + flushed.time.uploading + flushed.time.committing;
        metrics::histogram!("indutech_worker_flush_seconds", &labels).record(took.as_secs_f64());
        metrics::gauge!("indutech_worker_last_commit_timestamp_seconds", &labels)
            .set(chrono::Utc::now().timestamp() as f64);
        self.summary.written += flushed.rows;
        self.summary.rejected += flushed.rejected;
        self.summary.files += flushed.files;
        tracing::debug!(
            topic,
            partition,
            first = flushed.first,
            next = flushed.next,
            rows = flushed.rows,
            rejected = flushed.rejected,
            files = flushed.files,
            epoch = active.owned.record.epoch,
            "flushed, committed and published"
        );
        Ok(())
    }

    /// Every few seconds: stops partitions that cannot be read, and rejoins the group when this
    /// worker holds nothing while nobody commits the group's lag.
    async fn health(&mut self) -> anyhow::Result<()> {
        let high = self.shared.lock().map(|s| s.high.clone()).unwrap_or_default();
        let stuck: Vec<((String, i32), i64)> = self
            .partitions
            .iter()
            .filter_map(|(key, state)| match state {
                State::Active(a)
                    if a.first.is_none()
                        && a.in_flight.is_none()
                        && a.last_record.elapsed() >= STUCK_AFTER
                        && high.get(key).copied().unwrap_or(a.high_at_resume).max(a.high_at_resume) > a.next
                        && self.errors.since(a.last_record) =>
                {
                    Some((key.clone(), a.next))
                }
                _ => None,
            })
            .collect();
        if !stuck.is_empty() {
            // Asked on a connection of its own: the consumer's connections are the ones the
            // failing fetches keep breaking (a broker that cannot serve a batch may drop the
            // connection), so its own metadata request could fail with them.
            let reachable = tokio::task::block_in_place(|| {
                self.kafka
                    .reader(None)
                    .and_then(|reader| self.kafka.metadata(&reader, Some(&stuck[0].0.0), Duration::from_secs(5)))
            })
            .is_ok();
            if reachable {
                for (key, offset) in stuck {
                    let reason = format!(
                        "the batch at offset {offset} of {}/{} cannot be read: the broker answers, but fetching it \
                         fails ({}) and nothing was delivered for {} s. Nothing is skipped: check the producer's \
                         compression and the broker's log; the partition is tried again every {} s and at the next \
                         start",
                        key.0,
                        key.1,
                        self.errors.latest,
                        STUCK_AFTER.as_secs(),
                        STOPPED_RETRY.as_secs()
                    );
                    let Some(State::Active(active)) = self.partitions.remove(&key) else { continue };
                    let mut owned = active.owned;
                    let state = self.stop(&key, &mut owned, offset, &reason).await?;
                    self.partitions.insert(key, state);
                }
            }
        }
        self.rejoin_if_stalled()?;
        self.rejoin_if_idle().await
    }

    /// Rejoins the group when it assigned this worker nothing at all for [`JOIN_STALL`] since
    /// it joined.
    fn rejoin_if_stalled(&mut self) -> anyhow::Result<()> {
        let assignments = self.shared.lock().map(|s| s.assignments).unwrap_or_default();
        let (since, seen) = self.joined;
        if assignments != seen || since.elapsed() < JOIN_STALL {
            return Ok(());
        }
        tracing::error!(group = %self.options.group, waited_secs = since.elapsed().as_secs(),
            "the group assigned this worker nothing since it joined (the broker holds its join): rejoining the group");
        self.rejoin()
    }

    /// Leaves the group and joins it again.
    fn rejoin(&mut self) -> anyhow::Result<()> {
        metrics::counter!("indutech_worker_rejoins_total").increment(1);
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.options.streams.iter().map(|s| s.topic.as_str()).collect();
        self.consumer.subscribe(&topics).context("subscribing to the stream topics again")?;
        let assignments = self.shared.lock().map(|s| s.assignments).unwrap_or_default();
        self.joined = (Instant::now(), assignments);
        self.idle_since = Some(Instant::now());
        self.idle_check = None;
        Ok(())
    }

    /// A worker that holds no partition for [`IDLE_REJOIN_AFTER`] while the group's topics
    /// have records left and the group's committed positions did not move since the last
    /// check (nobody else consumes them) says so and rejoins the group.
    async fn rejoin_if_idle(&mut self) -> anyhow::Result<()> {
        let Some(since) = self.idle_since else {
            self.idle_check = None;
            return Ok(());
        };
        // Another member may be committing only once a flush interval: watch two of them. The
        // first look is taken as soon as the worker is idle, the next one a window later.
        let window = IDLE_REJOIN_AFTER.max(self.options.flush_interval * 2);
        if self.idle_check.is_some_and(|(at, _)| at.elapsed() < window) {
            return Ok(());
        }
        let read = async {
            let commits = status::read_commits(&self.lake, &self.options.streams).await?;
            let offsets = status::read_offsets(&self.kafka, &self.options.group, &self.options.streams).await?;
            anyhow::Ok((commits, offsets))
        };
        let (lake_positions, offsets) = match read.await {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "idle check: could not read the group's positions");
                return Ok(());
            }
        };
        // Records left on partitions nobody stopped (a stopped partition says why it waits).
        let left: i64 = offsets
            .iter()
            .flat_map(|s| s.partitions.iter().map(move |p| (s.topic.clone(), p)))
            .map(|(topic, p)| match lake_positions.get(&(topic, p.partition)) {
                Some(record) if record.stopped.is_some() => 0,
                Some(record) => (p.high - record.next_offset).max(0),
                None => (p.high - p.low).max(0),
            })
            .sum();
        let position: i64 = lake_positions.values().map(|r| r.next_offset).sum();
        let previous = self.idle_check.replace((Instant::now(), position)).map(|(_, before)| before);
        if should_rejoin(left, previous, position) {
            tracing::error!(group = %self.options.group, records_left = left, idle_secs = since.elapsed().as_secs(),
                "this worker holds no partition while nobody commits the group's records: rejoining the group");
            self.rejoin()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stale_expected_a_reseek_or_a_gap() {
        let start = |low: i64| move || Ok::<i64, ()>(low);
        let never = || -> Result<i64, ()> { panic!("the log start is not needed") };
        assert_eq!(arrival(10, 9, false, 0, never), Ok(Arrival::Stale));
        assert_eq!(arrival(10, 10, true, 0, never), Ok(Arrival::Next));
        // Right after a resume, an offset beyond the expected one while the log still holds
        // the expected one is a message fetched before the seek: seek again, a few times.
        assert_eq!(arrival(10, 15, true, 0, start(0)), Ok(Arrival::Reseek));
        assert_eq!(arrival(10, 15, true, MAX_RESEEKS, never), Ok(Arrival::Gap), "a transaction marker");
        // Records removed by retention before they landed: the log starts after the position.
        assert_eq!(arrival(10, 60, true, 0, start(60)), Ok(Arrival::Gap));
        // Later in the stream, a jump is a gap (compaction, control records).
        assert_eq!(arrival(10, 12, false, 0, never), Ok(Arrival::Gap));
        assert_eq!(arrival(10, 12, true, 0, || Err(())), Err(()));
    }

    #[test]
    fn a_batch_keeps_each_record_s_partition_offset_and_payload() {
        let mut batch = Batch::default();
        batch.push("a", 0, 10, b"first");
        batch.push("a", 0, 11, b"");
        batch.push("b", 0, 5, b"other topic");
        batch.push("a", 1, 7, b"other partition");
        batch.push("a", 0, 12, b"back");
        assert_eq!(batch.keys.len(), 3, "one key per partition, however the records interleave");
        let seen: Vec<(&(String, i32), i64, &[u8])> =
            (0..batch.records.len()).map(|i| (batch.key(i), batch.records[i].offset, batch.payload(i))).collect();
        let key = |t: &str, p: i32| (t.to_owned(), p);
        assert_eq!(
            seen,
            vec![
                (&key("a", 0), 10, &b"first"[..]),
                (&key("a", 0), 11, &b""[..]),
                (&key("b", 0), 5, &b"other topic"[..]),
                (&key("a", 1), 7, &b"other partition"[..]),
                (&key("a", 0), 12, &b"back"[..]),
            ]
        );
    }

    #[test]
    fn an_idle_worker_rejoins_only_when_nobody_commits_the_records_left() {
        assert!(!should_rejoin(100, None, 50), "one check is not enough: others may be committing");
        assert!(!should_rejoin(100, Some(40), 50), "the group's positions move: another member consumes");
        assert!(!should_rejoin(0, Some(50), 50), "nothing left to consume");
        assert!(should_rejoin(100, Some(50), 50));
    }
}
