//! `indutech bench worker`: the worker's own pipeline in-process (decode -> validate -> enrich
//! -> Parquet encode, with the worker's flush rules), on JSON lines, without broker or S3.

use std::io::BufRead;
use std::time::{Duration, Instant};

use super::buffer::Buffer;
use super::codec::Codec;

/// What a bench run measured.
#[derive(Debug, Default, Clone, Copy)]
pub struct BenchResult {
    /// Records read (lines).
    pub records: u64,
    /// Payload bytes read (without newlines).
    pub bytes_in: u64,
    /// Valid rows encoded into Parquet.
    pub rows: u64,
    /// Records that went to the rejected zone.
    pub rejected: u64,
    /// Files produced and their total size, bytes.
    pub files: u64,
    /// Bytes of all files produced (Parquet, zstd; and JSON lines).
    pub bytes_out: u64,
    /// Wall-clock time of the pipeline.
    pub elapsed: Duration,
}

impl BenchResult {
    /// The one line `bench worker` ends with:
    /// `bench: <records> records, <MB> MB in, <MB/s> MB/s, <records/s> records/s, peak RSS <MB> MB`
    /// (MB = 10^6 bytes).
    pub fn line(&self, peak_rss_bytes: Option<u64>) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mb = self.bytes_in as f64 / 1e6;
        format!(
            "bench: {} records, {:.1} MB in, {:.1} MB/s, {:.0} records/s, peak RSS {} MB",
            self.records,
            mb,
            mb / secs,
            self.records as f64 / secs,
            peak_rss_bytes.map_or_else(|| "unknown".to_owned(), |b| format!("{:.0}", b as f64 / 1e6))
        )
    }
}

/// Runs the pipeline over JSON lines from `input` as one partition, flushing (encoding) as the
/// worker does: when the buffer reaches `target_file_size` payload bytes, holds
/// [`super::MAX_OPEN_DATES`] event dates, or its memory reaches [`super::MEMORY_BUDGET`].
///
/// Errors: `input` cannot be read, or encoding failed.
pub fn run(codec: &Codec, input: impl BufRead, target_file_size: usize) -> anyhow::Result<BenchResult> {
    let started = Instant::now();
    let mut result = BenchResult::default();
    let mut buffer = Buffer::default();
    let topic = codec.stream().topic.clone();
    let now = chrono::Utc::now().timestamp_micros();
    let flush = |buffer: &mut Buffer, result: &mut BenchResult| -> anyhow::Result<()> {
        result.rows += buffer.row_count() as u64;
        result.rejected += buffer.rejected_count;
        for file in buffer.take_files("bench/0")? {
            result.files += 1;
            result.bytes_out += file.body.len() as u64;
        }
        Ok(())
    };
    for (offset, line) in input.split(b'\n').enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        result.records += 1;
        result.bytes_in += line.len() as u64;
        buffer.add(codec, &topic, 0, offset as i64, &line, now)?;
        if buffer.bytes >= target_file_size
            || buffer.dates() >= super::MAX_OPEN_DATES
            || (offset.is_multiple_of(super::MEMORY_CHECK_EVERY as usize) && buffer.memory() >= super::MEMORY_BUDGET)
        {
            flush(&mut buffer, &mut result)?;
        }
    }
    flush(&mut buffer, &mut result)?;
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Peak resident set size of this process (`VmHWM` of /proc/self/status), bytes; None where
/// there is no /proc.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
