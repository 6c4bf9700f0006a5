//! `indutech bench worker`: the worker's own pipeline in-process (decode -> validate -> enrich
//! -> Parquet encode, with the worker's flush rules), on JSON lines, without broker or S3.
//!
//! The codec, the buffers and their flush and memory rules are the worker's own code; how
//! work reaches the threads differs: here each thread owns every N-th partition and encodes its
//! own flushes, while the worker decodes each batch's partitions on N threads and encodes
//! flushes in the background. Both keep a partition's records in order on one thread.

use std::io::BufRead;
use std::time::{Duration, Instant};

use super::buffer::{Buffer, Relief, relief};
use super::codec::Codec;

/// What a bench run measured.
#[derive(Debug, Default, Clone)]
pub struct BenchResult {
    /// Records read (lines).
    pub records: u64,
    /// Payload bytes read (without newlines).
    pub bytes_in: u64,
    /// Valid rows encoded into Parquet.
    pub rows: u64,
    /// Records that went to the rejected zone.
    pub rejected: u64,
    /// Size of every Parquet file produced, bytes (rejected JSON lines not included).
    pub parquet_sizes: Vec<u64>,
    /// Rejected-zone files (JSON lines) produced.
    pub rejected_files: u64,
    /// Bytes of all files produced (Parquet, zstd; and JSON lines).
    pub bytes_out: u64,
    /// Buffers spilled into Parquet fragments to stay under the memory budget (each spill
    /// adds a row group to every file of a value it held rows of).
    pub spills: u64,
    /// Distinct (partition, partition value) pairs that got rows: the fewest Parquet files the
    /// input can make.
    pub minimum_files: u64,
    /// Wall-clock time of the pipeline.
    pub elapsed: Duration,
    /// Per thread that ran the pipeline (the lanes, in order; then the reader when it was a
    /// thread of its own): time on a CPU and time waiting for one, from the kernel's
    /// `/proc/thread-self/schedstat` (nanoseconds, but a running thread's own figure lags by up
    /// to a scheduler tick, a few ms); empty where there is no such file.
    pub threads: Vec<ThreadTime>,
}

/// CPU time of one bench thread ([`BenchResult::threads`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadTime {
    /// `lane 0`, `lane 1`..., or `reader`.
    pub name: String,
    /// Time the thread ran on a CPU.
    pub on_cpu: Duration,
    /// Time it was runnable but waited for a CPU (other threads or processes had them).
    pub waiting: Duration,
}

impl ThreadTime {
    /// The calling thread's times so far, named `name`; None where
    /// `/proc/thread-self/schedstat` cannot be read (not Linux, or no schedstats).
    fn of_this_thread(name: String) -> Option<Self> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        let on_cpu = Duration::from_nanos(fields.next()?.ok()?);
        let waiting = Duration::from_nanos(fields.next()?.ok()?);
        Some(Self { name, on_cpu, waiting })
    }

    /// The calling thread's times since `before` (taken on this thread), named `name`.
    fn of_this_thread_since(name: String, before: Option<&ThreadTime>) -> Option<Self> {
        let now = Self::of_this_thread(name)?;
        Some(match before {
            Some(b) => Self {
                on_cpu: now.on_cpu.saturating_sub(b.on_cpu),
                waiting: now.waiting.saturating_sub(b.waiting),
                ..now
            },
            None => now,
        })
    }
}

impl BenchResult {
    /// The one line `bench worker` ends with:
    /// `bench: <records> records, <MB> MB in, <MB/s> MB/s, <records/s> records/s, <files> files
    /// (minimum <m>), median <KB> KB, peak RSS <MB> MB` (MB = 10^6 bytes, KB = 10^3; files and
    /// the median are the Parquet files).
    pub fn line(&self, peak_rss_bytes: Option<u64>) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mb = self.bytes_in as f64 / 1e6;
        format!(
            "bench: {} records, {:.1} MB in, {:.1} MB/s, {:.0} records/s, {} files (minimum {}), median {:.0} KB, peak RSS {} MB",
            self.records,
            mb,
            mb / secs,
            self.records as f64 / secs,
            self.parquet_sizes.len(),
            self.minimum_files,
            self.median_file_size() as f64 / 1e3,
            peak_rss_bytes.map_or_else(|| "unknown".to_owned(), |b| format!("{:.0}", b as f64 / 1e6))
        )
    }

    /// The threads' CPU times, one line: `threads: lane 0 1.02 s on CPU (0.03 s waiting), ...,
    /// total 2.10 s on CPU` (seconds; with one thread, lane 0 also reads the input); None
    /// without [`BenchResult::threads`]. With several threads, the total against a 1-thread
    /// run's says whether they cost more CPU for the same records or only ran slower (a VM's
    /// cores vary in speed from minute to minute).
    pub fn threads_line(&self) -> Option<String> {
        if self.threads.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .threads
            .iter()
            .map(|t| {
                format!("{} {:.2} s on CPU ({:.2} s waiting)", t.name, t.on_cpu.as_secs_f64(), t.waiting.as_secs_f64())
            })
            .collect();
        let total: Duration = self.threads.iter().map(|t| t.on_cpu).sum();
        Some(format!("threads: {}, total {:.2} s on CPU", each.join(", "), total.as_secs_f64()))
    }

    /// Median size of the Parquet files, bytes (0 without files).
    pub fn median_file_size(&self) -> u64 {
        let mut sizes = self.parquet_sizes.clone();
        sizes.sort_unstable();
        sizes.get(sizes.len() / 2).copied().unwrap_or(0)
    }

    fn add(&mut self, other: BenchResult) {
        self.records += other.records;
        self.bytes_in += other.bytes_in;
        self.rows += other.rows;
        self.rejected += other.rejected;
        self.parquet_sizes.extend(other.parquet_sizes);
        self.rejected_files += other.rejected_files;
        self.spills += other.spills;
        self.bytes_out += other.bytes_out;
        self.minimum_files += other.minimum_files;
        self.threads.extend(other.threads);
    }
}

/// Records go to a partition in runs of this many, as a producer's sticky partitioner sends
/// records without a key (a batch to one partition, the next batch to another).
pub const RUN: usize = 1024;

/// Runs queued for each lane at most (about 8 MB of sensor readings or tickets): a lane that
/// spills or flushes thousands of files at once (a replay of history) takes tenths of a
/// second, and the reader, blocked on its full queue, would leave the other lanes without work
/// meanwhile.
const QUEUED_RUNS: usize = 32;

/// Bytes of runs (their buffers' capacity) out with the lanes, per lane, before the reader
/// waits for one to come back instead of allocating another: 32 runs of the incident log's
/// 900-byte lines are 28 MB a lane, and every fresh run's pages fault in (on that log with 2
/// threads: system time 0.10-0.13 -> 0.05-0.08 s, peak RSS 160 -> 123 MB), where the worker
/// reads into librdkafka's reused buffers.
const QUEUED_BYTES: usize = 8 << 20;

/// A run of input lines for one partition: the lines' bytes and where each ends.
#[derive(Default)]
struct Run {
    partition: usize,
    first_offset: i64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Run {
    /// An empty run with room for [`RUN`] lines of about 512 bytes.
    fn empty() -> Self {
        Self { partition: 0, first_offset: 0, bytes: Vec::with_capacity(RUN * 512), ends: Vec::with_capacity(RUN) }
    }
}

/// The partitions one thread owns: their buffers and what was flushed.
struct Lane<'a> {
    codec: &'a Codec,
    topic: String,
    target_file_size: usize,
    /// Memory each lane's buffers held at its last check, bytes (this lane at `lane`): the
    /// lanes share [`super::MEMORY_BUDGET`] as the worker's partitions share it.
    memory: &'a [std::sync::atomic::AtomicUsize],
    lane: usize,
    now: i64,
    buffers: std::collections::BTreeMap<usize, Buffer>,
    /// (partition, value) pairs that got rows, for [`BenchResult::minimum_files`].
    values: std::collections::BTreeSet<(usize, String)>,
    records_since_check: u64,
    result: BenchResult,
    /// This lane's thread's times when the lane started on it ([`ThreadTime`]).
    cpu_before: Option<ThreadTime>,
}

impl Lane<'_> {
    fn take(&mut self, run: &Run) -> anyhow::Result<()> {
        let mut start = 0;
        for (i, &end) in run.ends.iter().enumerate() {
            let line = &run.bytes[start..end];
            start = end;
            self.result.records += 1;
            self.result.bytes_in += line.len() as u64;
            let buffer = self.buffers.entry(run.partition).or_default();
            let offset = run.first_offset + i as i64;
            buffer.add(self.codec, &self.topic, run.partition as i32, offset, line, self.now)?;
            if buffer.full(self.target_file_size) {
                self.flush(run.partition)?;
            }
            self.records_since_check += 1;
            if self.records_since_check >= super::MEMORY_CHECK_EVERY {
                self.records_since_check = 0;
                // As the worker: while over the budget, spill, or flush the largest buffer.
                // The budget left by the other lanes (their memory at their last check).
                use std::sync::atomic::Ordering::Relaxed;
                let mine: usize = self.buffers.values().map(Buffer::memory).sum();
                self.memory[self.lane].store(mine, Relaxed);
                let others: usize =
                    self.memory.iter().enumerate().filter(|(i, _)| *i != self.lane).map(|(_, m)| m.load(Relaxed)).sum();
                let budget = super::MEMORY_BUDGET.saturating_sub(others);
                while let Some(relief) = relief(self.buffers.iter().map(|(k, b)| (*k, b)), budget) {
                    match relief {
                        Relief::Spill(partition) => {
                            if let Some(buffer) = self.buffers.get_mut(&partition) {
                                buffer.spill()?;
                                self.result.spills += 1;
                            }
                        }
                        Relief::Flush(partition) => self.flush(partition)?,
                    }
                }
                self.memory[self.lane].store(self.buffers.values().map(Buffer::memory).sum(), Relaxed);
            }
        }
        Ok(())
    }

    fn flush(&mut self, partition: usize) -> anyhow::Result<()> {
        let Some(buffer) = self.buffers.get_mut(&partition) else { return Ok(()) };
        self.result.rows += buffer.row_count() as u64;
        self.result.rejected += buffer.rejected_count;
        for file in buffer.take_files(&format!("bench/{partition}"))? {
            self.result.bytes_out += file.body.len() as u64;
            if file.rejected {
                self.result.rejected_files += 1;
            } else {
                self.result.parquet_sizes.push(file.body.len() as u64);
                self.values.insert((partition, file.value));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<BenchResult> {
        let partitions: Vec<usize> = self.buffers.keys().copied().collect();
        for partition in partitions {
            self.flush(partition)?;
        }
        self.result.minimum_files = self.values.len() as u64;
        let name = format!("lane {}", self.lane);
        self.result.threads.extend(ThreadTime::of_this_thread_since(name, self.cpu_before.as_ref()));
        Ok(self.result)
    }
}

/// Runs the worker's pipeline over JSON lines from `input`, spread over `partitions` topic
/// partitions in runs of [`RUN`] records, on `threads` threads (each owning every
/// `threads`-th partition; with 1 the calling thread does everything, with more the calling
/// thread only reads lines and hands runs out). Flushes (encodes) as the worker does: when one
/// partition value's rows reach `target_file_size` payload bytes, a buffer holds
/// [`super::MAX_OPEN_DATES`] values, or the buffers' memory exceeds [`super::MEMORY_BUDGET`]
/// (shared by the threads as the worker's partitions share it: a lane's budget is what the
/// others' memory at their last check leaves; spilling first, as the worker); and at the end.
///
/// Errors: `input` cannot be read, or encoding failed.
pub fn run(
    codec: &Codec,
    input: impl BufRead,
    target_file_size: usize,
    partitions: usize,
    threads: usize,
) -> anyhow::Result<BenchResult> {
    let started = Instant::now();
    let (partitions, threads) = (partitions.max(1), threads.max(1));
    let memory: Vec<std::sync::atomic::AtomicUsize> = (0..threads).map(|_| Default::default()).collect();
    let lane = |lane: usize| Lane {
        codec,
        topic: codec.stream().topic.clone(),
        target_file_size,
        memory: &memory,
        lane,
        now: chrono::Utc::now().timestamp_micros(),
        buffers: Default::default(),
        values: Default::default(),
        records_since_check: 0,
        result: BenchResult::default(),
        cpu_before: ThreadTime::of_this_thread(String::new()),
    };
    let mut result = if threads == 1 {
        let mut lane = lane(0);
        read_runs(input, partitions, |run| lane.take(&run).map(|()| Some(run)))?;
        lane.finish()?
    } else {
        std::thread::scope(|scope| -> anyhow::Result<BenchResult> {
            let reader_before = ThreadTime::of_this_thread(String::new());
            let mut senders = Vec::new();
            let mut handles = Vec::new();
            // Spent runs come back to the reader to be refilled.
            let (give_back, spent) = std::sync::mpsc::channel::<Run>();
            for index in 0..threads {
                let (send, receive) = std::sync::mpsc::sync_channel::<Run>(QUEUED_RUNS);
                senders.push(send);
                let mut lane = lane(index);
                let give_back = give_back.clone();
                handles.push(scope.spawn(move || -> anyhow::Result<BenchResult> {
                    lane.cpu_before = ThreadTime::of_this_thread(String::new());
                    // After an error every run still goes back (the reader may be waiting for
                    // one); the error is reported once the input is read.
                    let mut failed = None;
                    for run in receive {
                        if failed.is_none() {
                            failed = lane.take(&run).err();
                        }
                        let _ = give_back.send(run);
                    }
                    match failed {
                        Some(error) => Err(error),
                        None => lane.finish(),
                    }
                }));
            }
            drop(give_back);
            let (mut out, mut pool) = (0usize, Vec::new());
            let read = read_runs(input, partitions, |run| {
                out += run.bytes.capacity();
                let _ = senders[run.partition % threads].send(run);
                loop {
                    let back = if pool.is_empty() && out > threads * QUEUED_BYTES {
                        // Lanes give every run back; one that ended already panicked, and the
                        // runs it held will not come back.
                        match spent.recv_timeout(Duration::from_millis(100)) {
                            Ok(back) => Some(back),
                            Err(_) if handles.iter().any(|h: &std::thread::ScopedJoinHandle<_>| h.is_finished()) => {
                                None
                            }
                            Err(_) => continue,
                        }
                    } else {
                        spent.try_recv().ok()
                    };
                    let Some(back) = back else { break };
                    out -= back.bytes.capacity();
                    pool.push(back);
                }
                Ok(pool.pop())
            });
            drop(senders);
            let reader = ThreadTime::of_this_thread_since("reader".to_owned(), reader_before.as_ref());
            let mut total = BenchResult::default();
            for handle in handles {
                total.add(handle.join().map_err(|_| anyhow::anyhow!("a bench thread panicked"))??);
            }
            read?;
            total.threads.extend(reader);
            Ok(total)
        })?
    };
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Splits `input` into runs of [`RUN`] non-empty lines, the n-th run to partition
/// `n % partitions` (offsets count per partition), and gives each to `take`, which may give a
/// spent run back to be refilled (the buffers are reused: fresh pages would cost page faults
/// that the worker, reading into librdkafka's buffers, does not pay).
fn read_runs(
    mut input: impl BufRead,
    partitions: usize,
    mut take: impl FnMut(Run) -> anyhow::Result<Option<Run>>,
) -> anyhow::Result<()> {
    let mut next_offset = vec![0i64; partitions];
    let mut runs = 0usize;
    let mut hand_out = |mut run: Run| {
        run.partition = runs % partitions;
        runs += 1;
        run.first_offset = next_offset[run.partition];
        next_offset[run.partition] += run.ends.len() as i64;
        take(run)
    };
    let mut run = Run::empty();
    loop {
        let before = run.bytes.len();
        if input.read_until(b'\n', &mut run.bytes)? == 0 {
            break;
        }
        if run.bytes.last() == Some(&b'\n') {
            run.bytes.pop();
        }
        if run.bytes.len() == before {
            continue;
        }
        run.ends.push(run.bytes.len());
        if run.ends.len() == RUN {
            let full = std::mem::take(&mut run);
            run = hand_out(full)?.unwrap_or_else(Run::empty);
            run.bytes.clear();
            run.ends.clear();
        }
    }
    if !run.ends.is_empty() {
        hand_out(run)?;
    }
    Ok(())
}

/// Peak resident set size of this process (`VmHWM` of /proc/self/status), bytes; None where
/// there is no /proc.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn lanes_lose_nothing_and_threads_change_no_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/dev.toml");
        let environment = crate::config::load(root.to_str().unwrap()).unwrap();
        let stream = environment.streams.into_iter().find(|s| s.name == "client_tickets").unwrap();
        let codec = Codec::new(Arc::new(stream));
        let records: Vec<crate::produce::Record> =
            crate::produce::TicketGenerator::new(7, 0.05).take(5 * RUN + 100).collect();
        let mut input = Vec::new();
        for record in &records {
            input.extend_from_slice(&record.payload);
            input.extend_from_slice(b"\n\n");
        }
        let malformed = records.iter().filter(|r| r.malformed.is_some()).count() as u64;
        let one = run(&codec, &input[..], usize::MAX, 3, 1).unwrap();
        let two = run(&codec, &input[..], usize::MAX, 3, 2).unwrap();
        for result in [&one, &two] {
            assert_eq!(result.records, records.len() as u64, "empty lines are skipped, no record is");
            assert_eq!((result.rows + result.rejected, result.rejected), (result.records, malformed));
            // One flush at the end, nothing spilled: one file per partition and value, the minimum.
            assert_eq!(result.spills, 0, "5,220 tickets fit the memory budget");
            assert_eq!(result.parquet_sizes.len() as u64, result.minimum_files);
        }
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            let names = |r: &BenchResult| r.threads.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&one), ["lane 0"]);
            assert_eq!(names(&two), ["lane 0", "lane 1", "reader"]);
            assert!(two.threads.iter().map(|t| t.on_cpu).sum::<Duration>() > Duration::ZERO, "{:?}", two.threads);
            assert!(two.threads_line().unwrap().starts_with("threads: lane 0 "));
        }
        let mut sizes = (one.parquet_sizes.clone(), two.parquet_sizes.clone());
        sizes.0.sort_unstable();
        sizes.1.sort_unstable();
        assert_eq!(sizes.0, sizes.1, "the same files whatever the threads");
    }
}
