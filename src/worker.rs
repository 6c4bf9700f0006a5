//! The streaming worker: Redpanda topic -> validate, type, enrich -> Parquet in the lake,
//! exactly once (`indutech worker --env NAME [--stream NAME]`).
//!
//! One consumer (rdkafka, group `indutech-<env>-worker`) reads every selected stream's topic;
//! more workers in the group share the partitions. Per topic partition the worker keeps one
//! buffer: valid rows as Arrow columns per `dt` ([`codec::Rows`]) and rejected records as JSON
//! lines. A buffer is flushed when its payload bytes reach `worker.target_file_size_bytes`, when
//! it is `worker.flush_interval_secs` old, when all buffers together exceed
//! [`MEMORY_BUDGET`] (the largest goes first), and on shutdown. A flush uploads one file per
//! `dt` (Parquet, zstd; rejected records as JSON lines), registers new `dt` partitions in Glue,
//! writes the partition's progress document (cumulative counts, for `indutech status`),
//! then commits the next offset. Files are named after the flush's first offset ([`lake`]), so when a
//! partition is (re)assigned, everything at or after the committed offset was never committed
//! and is deleted before the first record is processed: exactly once among visible objects,
//! whatever crashed when.
//!
//! Rebalances: a revoked partition's buffer is dropped without commit (its next owner re-reads
//! from the committed offset). Memory: the consumer's prefetch is capped
//! (`queued.max.messages.kbytes`) and buffers are flushed before [`MEMORY_BUDGET`], so a
//! backlog of any size is processed in bounded memory. SIGTERM/SIGINT: stop fetching, flush,
//! upload, commit, exit 0 within `worker.drain_timeout_ms`; a second signal exits at once with
//! status 130 (uncommitted files are removed by the next start).
//!
//! Known limit (as for the Kafka Connect S3 sink): a worker that stalls longer than the
//! consumer's `max.poll.interval.ms` loses its partitions but may still finish an upload after
//! the new owner has cleaned up; such a zombie file would duplicate offsets. The interval is
//! 45 s: Tansu (the test bed's broker) holds a rebalance that long for a member killed during
//! it, and a flush must fit in it.

pub mod bench;
pub mod buffer;
pub mod codec;
pub mod lake;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio::sync::Notify;

use crate::config::environment::Environment;
use crate::config::stream::Stream;
use buffer::Buffer;
use codec::Codec;
use lake::Lake;

/// Buffers of all partitions together are flushed before they exceed this (payload bytes,
/// uncompressed JSON); Arrow holds them in about the same space.
pub const MEMORY_BUDGET: usize = 96 * 1024 * 1024;

/// The consumer group of `environment`'s workers: `indutech-<env>-worker`.
pub fn group_id(environment: &Environment) -> String {
    crate::model::resource_name(environment, "worker")
}

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
    /// Files uploaded (both zones).
    pub files: u64,
    /// Where the worker's time went.
    pub time: Phases,
}

/// Wall-clock time the worker's loop spent per phase (it does one thing at a time, so the
/// phases add up to its run time and the largest names what bounds the throughput).
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    /// Waiting for the next record from the broker (idle time included).
    pub waiting: Duration,
    /// Decoding, validating, typing and enriching records into buffers.
    pub decoding: Duration,
    /// Encoding buffers as Parquet (zstd) and JSON lines.
    pub encoding: Duration,
    /// Uploading files, registering partitions, writing progress documents (S3, Glue).
    pub uploading: Duration,
    /// Committing offsets and resuming partitions (broker; the lake clean-up on resume).
    pub committing: Duration,
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
        ] {
            metrics::gauge!("indutech_worker_phase_seconds", "phase" => phase).set(time.as_secs_f64());
        }
    }

    /// `waiting for records 1.2 s, decoding 0.4 s, encoding 0.3 s, uploading 2.0 s, committing 0.1 s`
    pub fn describe(&self) -> String {
        format!(
            "waiting for records {:.1} s, decoding {:.1} s, encoding {:.1} s, uploading {:.1} s, committing {:.1} s",
            self.waiting.as_secs_f64(),
            self.decoding.as_secs_f64(),
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

/// Cumulative counts of one partition up to an offset.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Landed {
    /// The next offset to read: every record before it has landed.
    pub offset: i64,
    /// Rows landed in the curated zone before `offset`.
    pub rows: u64,
    /// Records landed in the rejected zone before `offset`.
    pub rejected: u64,
    /// When these counts were written (Unix seconds; 0: never).
    pub at: i64,
}

/// A partition's progress document (`_indutech/worker/<group>/<topic>+<partition>.json` in the
/// curated bucket, a prefix Hive-style readers ignore), written after a flush's files and
/// before its commit. Kafka's commit metadata would be the natural place, but Tansu (the test
/// bed's broker) drops it. The counts at the committed offset are `current` when the commit
/// went through, else `previous`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Counts after the latest flush.
    pub current: Landed,
    /// Counts before it.
    pub previous: Landed,
}

impl Progress {
    /// The counts at `committed` (None: nothing committed, zeros), or None when neither
    /// document matches (the counts are then unknown).
    pub fn at(&self, committed: Option<i64>) -> Option<Landed> {
        match committed {
            None => Some(Landed::default()),
            Some(offset) if self.current.offset == offset => Some(self.current),
            Some(offset) if self.previous.offset == offset => Some(self.previous),
            Some(_) => None,
        }
    }
}

/// Rebalance and statistics hooks: revocations are queued for the loop, lag goes to metrics.
struct WorkerContext {
    revoked: Arc<StdMutex<Vec<(String, i32)>>>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!("indutech_worker_consumer_lag", "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance
            && list.count() > 0
        {
            let partitions: Vec<String> =
                list.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect();
            tracing::info!(?partitions, "partitions assigned by the group");
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance
            && let Ok(mut revoked) = self.revoked.lock()
        {
            for e in list.elements() {
                revoked.push((e.topic().to_owned(), e.partition()));
            }
        }
    }
}

/// One topic partition's open buffer.
struct PartitionBuffer {
    stream: usize,
    /// The offset the partition resumed from; messages before it are stale and skipped.
    expect: Option<i64>,
    first_offset: Option<i64>,
    next_offset: i64,
    opened: Instant,
    buffer: Buffer,
    totals: Landed,
}

/// The worker: consumer, codecs, lake, buffers.
struct Worker {
    consumer: StreamConsumer<WorkerContext>,
    revoked: Arc<StdMutex<Vec<(String, i32)>>>,
    codecs: Vec<Codec>,
    by_topic: HashMap<String, usize>,
    lake: Arc<Lake>,
    options: Options,
    buffers: HashMap<(String, i32), PartitionBuffer>,
    summary: Summary,
}

/// Runs the worker until SIGTERM/SIGINT, then drains within the deadline.
///
/// Errors: the lake or the Glue tables are missing (apply first), the broker is unreachable,
/// a topic does not exist, an upload keeps failing, or the drain missed its deadline (then
/// nothing is lost: uncommitted records are re-read by the next start).
pub async fn run(environment: &Environment, aws: &crate::aws::Aws, options: Options) -> anyhow::Result<Summary> {
    let lake = Arc::new(Lake::new(environment, aws));
    let streams: Vec<&Stream> = options.streams.iter().map(AsRef::as_ref).collect();
    lake.check(&streams).await?;
    if let Some(addr) = options.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    }
    let revoked = Arc::new(StdMutex::new(Vec::new()));
    let consumer: StreamConsumer<WorkerContext> = ClientConfig::new()
        .set("bootstrap.servers", crate::provider::kafka::bootstrap_servers(environment))
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
        .create_with_context(WorkerContext { revoked: revoked.clone() })
        .context("creating the Kafka consumer")?;
    let topics: Vec<&str> = options.streams.iter().map(|s| s.topic.as_str()).collect();
    check_topics(&consumer, &topics)?;
    consumer.subscribe(&topics).context("subscribing to the stream topics")?;
    tracing::info!(group = %options.group, topics = ?topics, "worker started");

    let codecs: Vec<Codec> = options.streams.iter().map(|s| Codec::new(s.clone())).collect();
    let by_topic = options.streams.iter().enumerate().map(|(i, s)| (s.topic.clone(), i)).collect();
    let mut worker = Worker {
        consumer,
        revoked,
        codecs,
        by_topic,
        lake,
        options,
        buffers: HashMap::new(),
        summary: Summary::default(),
    };

    let shutdown = Arc::new(Notify::new());
    spawn_signal_handler(shutdown.clone())?;
    worker.consume(&shutdown).await?;
    tracing::info!(deadline_ms = worker.options.drain_timeout.as_millis() as u64, "draining: flush, upload, commit");
    let deadline = worker.options.drain_timeout;
    match tokio::time::timeout(deadline, worker.flush_all()).await {
        Ok(result) => result?,
        Err(_) => bail!(
            "the drain did not finish within {} ms (worker.drain_timeout_ms); nothing is lost: \
             records not committed are read again and their files replaced by the next start",
            deadline.as_millis()
        ),
    }
    worker.consumer.unsubscribe();
    Ok(worker.summary)
}

/// First signal: notify the loop; second: exit at once (130), leaving only uncommitted files
/// that the next start removes.
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

impl Worker {
    async fn consume(&mut self, shutdown: &Notify) -> anyhow::Result<()> {
        loop {
            let waiting = Instant::now();
            let message = tokio::select! {
                biased;
                () = shutdown.notified() => return Ok(()),
                message = tokio::time::timeout(Duration::from_millis(500), self.consumer.recv()) => match message {
                    Err(_) => None,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "consumer error");
                        None
                    }
                    Ok(Ok(m)) => Some((m.topic().to_owned(), m.partition(), m.offset(), m.payload().unwrap_or_default().to_vec())),
                },
            };
            spent(&mut self.summary.time.waiting, waiting);
            self.apply_revocations();
            if let Some((topic, partition, offset, payload)) = message {
                self.process(topic, partition, offset, &payload).await?;
            }
            self.flush_due().await?;
        }
    }

    fn apply_revocations(&mut self) {
        let revoked: Vec<(String, i32)> = self.revoked.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
        for key in revoked {
            if let Some(buffer) = self.buffers.remove(&key) {
                tracing::info!(topic = %key.0, partition = key.1, records = buffer.next_offset - buffer.first_offset.unwrap_or(buffer.next_offset),
                    "partition revoked: its unflushed records will be read again by its next owner");
            }
        }
    }

    async fn process(&mut self, topic: String, partition: i32, offset: i64, payload: &[u8]) -> anyhow::Result<()> {
        let Some(&stream) = self.by_topic.get(&topic) else { return Ok(()) };
        let key = (topic, partition);
        if !self.buffers.contains_key(&key) {
            let started = Instant::now();
            let buffer = self.resume(stream, &key.0, partition, offset).await?;
            spent(&mut self.summary.time.committing, started);
            self.buffers.insert(key.clone(), buffer);
        }
        let Some(buffer) = self.buffers.get_mut(&key) else { return Ok(()) };
        if let Some(expected) = buffer.expect {
            if offset != expected {
                return Ok(());
            }
            buffer.expect = None;
        }
        if offset < buffer.next_offset {
            // Already in a flush of this partition (a message fetched again after a seek).
            return Ok(());
        }
        let codec = &self.codecs[stream];
        let labels = [("stream", codec.stream().name.clone())];
        metrics::counter!("indutech_worker_records_in_total", &labels).increment(1);
        metrics::counter!("indutech_worker_bytes_in_total", &labels).increment(payload.len() as u64);
        self.summary.records_in += 1;
        if buffer.first_offset.is_none() {
            buffer.first_offset = Some(offset);
            buffer.opened = Instant::now();
        }
        buffer.next_offset = offset + 1;
        let started = Instant::now();
        let now = chrono::Utc::now().timestamp_micros();
        buffer.buffer.add(codec, &key.0, partition, offset, payload, now)?;
        spent(&mut self.summary.time.decoding, started);
        if buffer.buffer.bytes >= self.options.target_file_size {
            self.flush(&key).await?;
        }
        Ok(())
    }

    /// Prepares a partition newly assigned to this worker: reads its committed offset and
    /// counts, deletes the files of attempts that were never committed, and seeks back to the
    /// committed offset if the consumer is elsewhere.
    async fn resume(
        &mut self,
        stream: usize,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> anyhow::Result<PartitionBuffer> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let committed = tokio::task::block_in_place(|| self.consumer.committed_offsets(list, Duration::from_secs(15)))
            .with_context(|| format!("reading the committed offset of {topic}/{partition}"))?;
        let element = committed.find_partition(topic, partition);
        let committed_offset = match element.map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        let progress = self.lake.read_progress(&self.options.group, topic, partition).await?;
        let totals = progress.at(committed_offset).unwrap_or_else(|| {
            tracing::warn!(
                topic,
                partition,
                "the progress document does not match the committed offset: landed counts restart from 0"
            );
            Landed { offset: committed_offset.unwrap_or(offset), ..Landed::default() }
        });
        let resume_from = committed_offset.unwrap_or(offset);
        let name = &self.codecs[stream].stream().name;
        let removed = self.lake.remove_uncommitted(name, topic, partition, resume_from).await?;
        tracing::info!(topic, partition, resume_from, removed, "partition resumed");
        let mut expect = None;
        if resume_from != offset {
            tokio::task::block_in_place(|| {
                self.consumer.seek(topic, partition, Offset::Offset(resume_from), Duration::from_secs(15))
            })
            .with_context(|| format!("seeking {topic}/{partition} to its committed offset {resume_from}"))?;
            expect = Some(resume_from);
        }
        Ok(PartitionBuffer {
            stream,
            expect,
            first_offset: None,
            next_offset: resume_from,
            opened: Instant::now(),
            buffer: Buffer::default(),
            totals,
        })
    }

    async fn flush_due(&mut self) -> anyhow::Result<()> {
        let interval = self.options.flush_interval;
        let due: Vec<(String, i32)> = self
            .buffers
            .iter()
            .filter(|(_, b)| b.first_offset.is_some() && b.opened.elapsed() >= interval)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.flush(&key).await?;
        }
        while self.buffers.values().map(|b| b.buffer.bytes).sum::<usize>() > MEMORY_BUDGET {
            let Some(largest) = self.buffers.iter().max_by_key(|(_, b)| b.buffer.bytes).map(|(k, _)| k.clone()) else {
                break;
            };
            self.flush(&largest).await?;
        }
        Ok(())
    }

    async fn flush_all(&mut self) -> anyhow::Result<()> {
        let keys: Vec<(String, i32)> = self.buffers.keys().cloned().collect();
        for key in keys {
            self.flush(&key).await?;
        }
        Ok(())
    }

    /// Uploads a partition's buffer (one file per `dt` and zone), registers new partitions,
    /// then commits the next offset with the cumulative counts.
    async fn flush(&mut self, key: &(String, i32)) -> anyhow::Result<()> {
        let Some(buffer) = self.buffers.get_mut(key) else { return Ok(()) };
        let Some(first) = buffer.first_offset else { return Ok(()) };
        let started = Instant::now();
        let codec = &self.codecs[buffer.stream];
        let stream = codec.stream();
        let (topic, partition) = (key.0.as_str(), key.1);
        let rows_written = buffer.buffer.row_count() as u64;
        let rejected_count = buffer.buffer.rejected_count;
        let source = format!("{topic}/{partition}");
        let encoding = Instant::now();
        let encoded = tokio::task::block_in_place(|| buffer.buffer.take_files(&source))?;
        spent(&mut self.summary.time.encoding, encoding);
        let uploading = Instant::now();
        let mut dates = Vec::new();
        let mut uploads = Vec::new();
        for file in encoded {
            let (bucket, extension, content_type) = if file.rejected {
                (self.lake.rejected.clone(), "jsonl", "application/x-ndjson")
            } else {
                dates.push(file.date.clone());
                (self.lake.curated.clone(), "parquet", "application/vnd.apache.parquet")
            };
            let name = lake::file_name(topic, partition, first, extension);
            uploads.push((
                bucket,
                lake::object_key(&stream.name, &stream.partition_key, &file.date, &name),
                file.body,
                content_type,
            ));
        }
        let files = uploads.len() as u64;
        let bytes_out: usize = uploads.iter().map(|u| u.2.len()).sum();
        let lake = &self.lake;
        let mut pending =
            futures_util::stream::iter(uploads.into_iter().map(|(bucket, key, body, content_type)| async move {
                lake.put(&bucket, &key, body, content_type).await
            }))
            .buffer_unordered(8);
        use futures_util::StreamExt as _;
        while let Some(result) = pending.next().await {
            result?;
        }
        drop(pending);
        lake.register_partitions(&stream.name, &stream.partition_key, &dates).await?;
        let totals = Landed {
            offset: buffer.next_offset,
            rows: buffer.totals.rows + rows_written,
            rejected: buffer.totals.rejected + rejected_count,
            at: chrono::Utc::now().timestamp(),
        };
        let progress = Progress { current: totals, previous: buffer.totals };
        lake.write_progress(&self.options.group, topic, partition, &progress).await?;
        spent(&mut self.summary.time.uploading, uploading);
        let committing = Instant::now();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(buffer.next_offset))?;
        let committed = tokio::task::block_in_place(|| self.consumer.commit(&list, CommitMode::Sync));
        spent(&mut self.summary.time.committing, committing);
        self.summary.time.publish();
        let labels = [("stream", stream.name.clone())];
        metrics::counter!("indutech_worker_records_written_total", &labels).increment(rows_written);
        metrics::counter!("indutech_worker_records_rejected_total", &labels).increment(rejected_count);
        metrics::counter!("indutech_worker_bytes_written_total", &labels).increment(bytes_out as u64);
        metrics::counter!("indutech_worker_files_written_total", &labels).increment(files);
        metrics::histogram!("indutech_worker_flush_seconds", &labels).record(started.elapsed().as_secs_f64());
        self.summary.written += rows_written;
        self.summary.rejected += rejected_count;
        self.summary.files += files;
        match committed {
            Ok(()) => {
                metrics::gauge!("indutech_worker_last_commit_timestamp_seconds", &labels).set(totals.at as f64);
                tracing::debug!(
                    topic,
                    partition,
                    first,
                    next = buffer.next_offset,
                    rows = rows_written,
                    rejected = rejected_count,
                    files,
                    "flushed and committed"
                );
                buffer.totals = totals;
            }
            Err(error) => {
                // The files exist; the next successful commit of this partition covers them,
                // and if none comes, its next owner deletes them and reads the records again.
                tracing::warn!(topic, partition, %error, "commit failed; it will be retried by the next flush");
                buffer.totals = totals;
            }
        }
        buffer.first_offset = None;
        Ok(())
    }
}
