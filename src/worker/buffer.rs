//! One topic partition's records between two flushes, as the worker and `bench worker` both
//! hold them: valid rows as Arrow columns, built in arrival order whatever their partition
//! value (`dt`: the event time's hour, day or month, as the stream's granularity says), each
//! value keeping its rows' numbers; rejected records as JSON lines per partition value of the
//! time they were rejected (their own event time may be what is wrong).
//!
//! One set of column builders serves every value (finished into [`CHUNK_ROWS`]-row chunks):
//! an open value costs its rows and their numbers (8 bytes a row), not builders of its own, so
//! the Beijing replay's 1,461 days a partition fit the memory budget without a spill. A spill
//! or a flush gathers each value's rows out of the chunks ([`codec::Encoder::gather`]).
//!
//! Under memory pressure a buffer is spilled before it is flushed: each value's open rows are
//! encoded into a Parquet fragment held in memory ([`codec::Fragment`]: zstd pages, or
//! compressed whole when small), and a flush writes each value's fragments and its last rows
//! into one file without encoding the fragments again ([`codec::Encoder::write`]). A backlog
//! that touches the same old values again and again so writes one file per value and flush,
//! not one per value and spill.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;

use super::codec::{self, Codec, Rows};
use crate::config::stream::Granularity;

/// Rows per chunk: a buffer's open rows, whatever their partition values, are built in one set
/// of column builders and finished into a record batch of this many rows (then gathered per
/// value at a spill or a flush, [`codec::Encoder::gather`]).
///
/// One set of builders per value cost a fixed 20 x 256 bytes per value and left each column
/// up to half empty (they grow by doubling): a replay of history that opens 1,461 days per
/// partition spilled four times. Chunks cost one builder set's doubling at most.
pub const CHUNK_ROWS: usize = 8192;

/// The valid rows of one partition value since the last flush.
#[derive(Default)]
struct Value {
    /// The value's rows not encoded yet: their numbers among the buffer's open rows (chunk
    /// `n / CHUNK_ROWS`, row `n % CHUNK_ROWS`), in offset order.
    rows: Vec<usize>,
    /// Parquet fragments of the rows spilled so far ([`codec::Encoder::spill`]), in offset order.
    fragments: Vec<codec::Fragment>,
    /// Rows in the fragments.
    spilled_rows: usize,
    /// Payload bytes of every row of the value, spilled or not (uncompressed JSON).
    bytes: usize,
}

/// Records of one partition since its last flush.
#[derive(Default)]
pub struct Buffer {
    /// Valid rows per partition index ([`Granularity::index_of_micros`] of the event time).
    values: BTreeMap<i32, Value>,
    /// Open rows of every value, [`CHUNK_ROWS`] per batch, in arrival order.
    chunks: Vec<RecordBatch>,
    /// Open rows after the chunks (fewer than [`CHUNK_ROWS`]); None before the first row.
    rows: Option<Rows>,
    /// The stream's encoder (set by the first [`Buffer::add`]).
    encoder: Option<codec::Encoder>,
    /// Arrow memory of the chunks, bytes.
    chunks_memory: usize,
    /// Capacity of the values' row lists, bytes.
    picks_memory: usize,
    /// Rejected records as JSON lines per partition index of the rejection time.
    rejected: BTreeMap<i32, Vec<u8>>,
    /// Number of rejected records.
    pub rejected_count: u64,
    /// Payload bytes added (uncompressed JSON).
    pub bytes: usize,
    /// Payload bytes of the partition value that has the most (its file is the largest).
    largest: usize,
    /// Bytes of all fragments.
    spilled: usize,
    /// Capacity of all rejected-line buffers, bytes.
    rejected_memory: usize,
    /// The stream's granularity (set by the first [`Buffer::add`]).
    granularity: Granularity,
}

/// A file a flush writes.
pub struct File {
    /// Partition value (`2026-03-02` for a day, see [`Granularity::value`]).
    pub value: String,
    /// Parquet (curated zone) or JSON lines (rejected zone).
    pub rejected: bool,
    /// File content.
    pub body: Vec<u8>,
    /// Rows or records in it.
    pub records: usize,
}

impl Buffer {
    /// Decodes one record into the buffer: a row of its partition value, or a rejected-zone
    /// line with topic, partition, offset, reason, the field at fault and the raw payload
    /// (lossy UTF-8). `now` is the ingestion time, microseconds since the epoch (UTC).
    ///
    /// Errors: Arrow could not finish a chunk (not expected for rows built by the codec).
    pub fn add(
        &mut self,
        codec: &Codec,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        now: i64,
    ) -> anyhow::Result<()> {
        self.bytes += payload.len();
        self.granularity = codec.stream().granularity;
        if self.encoder.is_none() {
            self.encoder = Some(codec.encoder());
        }
        let mut row = codec::Row::new();
        match codec.decode_into(payload, now, &mut row) {
            Ok(index) => {
                let rows = self.rows.get_or_insert_with(|| codec.rows());
                let number = self.chunks.len() * CHUNK_ROWS + rows.len();
                rows.push(&row, payload.len(), partition, offset);
                let value = self.values.entry(index).or_default();
                let capacity = value.rows.capacity();
                value.rows.push(number);
                self.picks_memory += (value.rows.capacity() - capacity) * size_of::<usize>();
                value.bytes += payload.len();
                self.largest = self.largest.max(value.bytes);
                if rows.len() == CHUNK_ROWS {
                    let chunk = rows.finish()?;
                    self.chunks_memory += chunk.get_array_memory_size();
                    // The next chunk's builders at their full size at once (no doubling),
                    // text sized after this chunk's.
                    *rows = codec.rows_like(CHUNK_ROWS, &chunk);
                    self.chunks.push(chunk);
                }
            }
            Err(rejection) => {
                let line = serde_json::json!({
                    "topic": topic,
                    "partition": partition,
                    "offset": offset,
                    "reason": rejection.to_string(),
                    "field": rejection.field,
                    "payload": String::from_utf8_lossy(payload),
                    "rejected_at": chrono::DateTime::from_timestamp_micros(now)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                });
                let out = self.rejected.entry(self.granularity.index_of_micros(now)).or_default();
                let before = out.capacity();
                serde_json::to_writer(&mut *out, &line)?;
                out.push(b'\n');
                self.rejected_memory = self.rejected_memory + out.capacity() - before;
                self.rejected_count += 1;
            }
        }
        Ok(())
    }

    /// The open rows as chunks (the builders' rows finished into the last one); the builders
    /// are dropped and the open memory counts reset (the caller encodes every value's rows
    /// next).
    fn open_chunks(&mut self) -> anyhow::Result<Vec<RecordBatch>> {
        let mut chunks = std::mem::take(&mut self.chunks);
        if let Some(mut rows) = self.rows.take()
            && !rows.is_empty()
        {
            chunks.push(rows.finish()?);
        }
        self.chunks_memory = 0;
        self.picks_memory = 0;
        Ok(chunks)
    }

    /// The open rows of `value` gathered from `chunks` in offset order (its row list emptied);
    /// None if it has none.
    fn gather(
        value: &mut Value,
        chunks: &[RecordBatch],
        encoder: &codec::Encoder,
    ) -> anyhow::Result<Option<RecordBatch>> {
        if value.rows.is_empty() {
            return Ok(None);
        }
        let picks: Vec<(usize, usize)> = value.rows.iter().map(|n| (n / CHUNK_ROWS, n % CHUNK_ROWS)).collect();
        value.rows = Vec::new();
        encoder.gather(chunks, &picks).map(Some)
    }

    /// Number of distinct partition values (`dt`) the valid rows span.
    pub fn dates(&self) -> usize {
        self.values.len()
    }

    /// Whether the buffer should be flushed now: the file of one partition value would reach
    /// `target_file_size` payload bytes, or it spans [`super::MAX_OPEN_DATES`] partition values.
    /// (A buffer spanning many values is not flushed by its total size: each flush writes one
    /// file per value, so a replay of history would write many small files. The memory budget,
    /// checked by the caller, bounds it instead: [`Buffer::spill`] first, then a flush.)
    pub fn full(&self, target_file_size: usize) -> bool {
        self.largest >= target_file_size || self.dates() >= super::MAX_OPEN_DATES
    }

    /// Memory the buffer holds: its open rows (chunks, builders, each value's row numbers),
    /// the fragments and the rejected lines, bytes.
    pub fn memory(&self) -> usize {
        self.unspilled() + self.spilled + self.rejected_memory
    }

    /// Memory of the rows not encoded yet (what [`Buffer::spill`] would reclaim), bytes; 0
    /// after a spill, so a spilled buffer offers nothing more to spill. The builders' share is
    /// measured on each call (one set of columns; measuring them at every push was 1% of the
    /// replay's and the tickets' instructions), the chunks' and row numbers' is kept by each push.
    pub fn unspilled(&self) -> usize {
        self.chunks_memory + self.rows.as_ref().map_or(0, Rows::memory) + self.picks_memory
    }

    /// Encodes every value's open rows into a Parquet fragment (kept in memory until the next
    /// flush copies its row group into the value's file).
    ///
    /// Errors: Parquet encoding failed (not expected for rows built by the codec).
    pub fn spill(&mut self) -> anyhow::Result<()> {
        let chunks = self.open_chunks()?;
        let Some(encoder) = &self.encoder else { return Ok(()) };
        for value in self.values.values_mut() {
            let Some(batch) = Self::gather(value, &chunks, encoder)? else { continue };
            value.spilled_rows += batch.num_rows();
            let fragment = encoder.spill(&batch)?;
            self.spilled += fragment.len();
            value.fragments.push(fragment);
        }
        Ok(())
    }

    /// Number of valid rows buffered (spilled or not).
    pub fn row_count(&self) -> usize {
        self.values.values().map(|v| v.spilled_rows + v.rows.len()).sum()
    }

    /// Encodes every file of the buffer (Parquet per partition value, with its fragments;
    /// JSON lines per partition value) and empties it; `source` (`<topic>/<partition>`) goes
    /// into the Parquet footers.
    ///
    /// Errors: Parquet encoding failed (not expected for rows built by the codec).
    pub fn take_files(&mut self, source: &str) -> anyhow::Result<Vec<File>> {
        let mut files = Vec::new();
        let chunks = self.open_chunks()?;
        let values = std::mem::take(&mut self.values);
        if let Some(encoder) = &self.encoder {
            for (index, mut value) in values {
                let last = Self::gather(&mut value, &chunks, encoder)?;
                let records = value.spilled_rows + last.as_ref().map_or(0, RecordBatch::num_rows);
                files.push(File {
                    value: self.granularity.value(index),
                    rejected: false,
                    body: encoder.write(last.as_ref(), value.fragments, source)?,
                    records,
                });
            }
        }
        for (index, lines) in std::mem::take(&mut self.rejected) {
            let records = lines.iter().filter(|b| **b == b'\n').count();
            files.push(File { value: self.granularity.value(index), rejected: true, body: lines, records });
        }
        self.rejected_count = 0;
        self.bytes = 0;
        self.largest = 0;
        self.spilled = 0;
        self.rejected_memory = 0;
        Ok(files)
    }
}

/// What relieves buffers that together hold more than their memory budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relief<K> {
    /// Spill this buffer (its open rows are at least an eighth of the budget).
    Spill(K),
    /// Flush this buffer, the largest (what is left is mostly fragments or rejected lines).
    Flush(K),
}

/// What to do about `buffers` (each with its key) against `budget` bytes: None while they fit;
/// else spill the one with the most open rows if that reclaims at least an eighth of the
/// budget (smaller spills would make many small fragments), else flush the largest.
pub fn relief<'a, K: Clone + 'a>(buffers: impl Iterator<Item = (K, &'a Buffer)>, budget: usize) -> Option<Relief<K>> {
    let mut total = 0;
    let mut most_open: Option<(K, usize)> = None;
    let mut largest: Option<(K, usize)> = None;
    for (key, buffer) in buffers {
        let (open, memory) = (buffer.unspilled(), buffer.memory());
        total += memory;
        if most_open.as_ref().is_none_or(|(_, m)| open > *m) {
            most_open = Some((key.clone(), open));
        }
        if largest.as_ref().is_none_or(|(_, m)| memory > *m) {
            largest = Some((key, memory));
        }
    }
    if total <= budget {
        return None;
    }
    match (most_open, largest) {
        (Some((key, open)), _) if open > 0 && open >= budget / 8 => Some(Relief::Spill(key)),
        (_, Some((key, _))) => Some(Relief::Flush(key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn tickets_codec() -> Codec {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/dev.toml");
        let environment = crate::config::load(root.to_str().unwrap()).unwrap();
        let stream = environment.streams.into_iter().find(|s| s.name == "client_tickets").unwrap();
        Codec::new(Arc::new(stream))
    }

    fn ticket(day: &str, n: usize) -> String {
        format!(
            r#"{{"ticket_id":"0b7f2c1e-8d7a-4c1f-9a55-{n:012}","client_id":"c","created_at":"{day}T12:00:00Z","channel":"web","priority":"low","subject":"s"}}"#
        )
    }

    fn offsets(body: Vec<u8>) -> (Vec<i64>, usize) {
        use arrow_array::cast::AsArray as _;
        use arrow_array::types::Int64Type;
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body)).unwrap();
        let groups = reader.metadata().num_row_groups();
        let mut out = Vec::new();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            out.extend(batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>().values().iter());
        }
        (out, groups)
    }

    #[test]
    fn spilled_rows_join_their_value_s_file_in_offset_order() {
        let codec = tickets_codec();
        let mut buffer = Buffer::default();
        let days = ["2026-01-01", "2026-01-02", "2026-01-03"];
        let mut offset = 0;
        for round in 0..3 {
            for (d, day) in days.iter().enumerate() {
                // The third day only gets rows after the first spill.
                if d == 2 && round == 0 {
                    continue;
                }
                for _ in 0..10 {
                    buffer.add(&codec, "t", 0, offset, ticket(day, offset as usize).as_bytes(), 0).unwrap();
                    offset += 1;
                }
            }
            let open = buffer.unspilled();
            buffer.spill().unwrap();
            assert!(buffer.unspilled() < open, "spilling reclaims the open rows' memory");
        }
        // Rows after the last spill are encoded by the flush itself.
        buffer.add(&codec, "t", 0, offset, ticket(days[0], 999).as_bytes(), 0).unwrap();
        assert_eq!(buffer.row_count(), 81);
        let files = buffer.take_files("t/0").unwrap();
        assert_eq!(files.len(), 3, "one file per value, whatever the spills");
        let mut all = Vec::new();
        for file in files {
            let records = file.records;
            let (offsets, groups) = offsets(file.body);
            assert_eq!(offsets.len(), records, "{}", file.value);
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{}: offsets in order: {offsets:?}", file.value);
            let want = if file.value == "2026-01-01" {
                4
            } else if file.value == "2026-01-02" {
                3
            } else {
                2
            };
            assert_eq!(groups, want, "{}: one row group per fragment", file.value);
            all.extend(offsets);
        }
        all.sort_unstable();
        assert_eq!(all, (0..81).collect::<Vec<i64>>(), "every row once");
        assert_eq!((buffer.row_count(), buffer.memory() < 1024), (0, true), "the buffer is empty after a flush");
    }

    #[test]
    fn the_memory_kept_by_each_push_is_what_measuring_every_column_gives() {
        let codec = tickets_codec();
        let mut buffer = Buffer::default();
        // The chunks' Arrow memory, the builders' and the values' row numbers.
        let measured = |b: &Buffer| -> usize {
            b.chunks.iter().map(RecordBatch::get_array_memory_size).sum::<usize>()
                + b.rows.as_ref().map_or(0, Rows::memory)
                + b.values.values().map(|v| v.rows.capacity() * size_of::<usize>()).sum::<usize>()
        };
        let days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"];
        let mut chunked = false;
        for n in 0..20_000usize {
            let payload = if n % 97 == 0 { "not json".to_owned() } else { ticket(days[n * 7 % 4], n) };
            buffer.add(&codec, "t", 0, n as i64, payload.as_bytes(), 0).unwrap();
            assert_eq!(buffer.unspilled(), measured(&buffer), "after record {n}");
            chunked |= !buffer.chunks.is_empty();
            if n % 9000 == 8999 {
                buffer.spill().unwrap();
                assert_eq!(buffer.unspilled(), 0);
            }
        }
        assert!(chunked, "the rows filled a chunk between spills");
        let rejected: usize = buffer.rejected.values().map(Vec::capacity).sum();
        assert!(rejected > 0);
        assert_eq!(buffer.memory(), measured(&buffer) + buffer.spilled + rejected);
        buffer.take_files("t/0").unwrap();
        assert_eq!(buffer.memory(), 0, "a flush leaves nothing counted");
    }

    #[test]
    fn relief_spills_open_rows_first_then_flushes_the_largest() {
        let codec = tickets_codec();
        let filled = |partition: i32, rows: usize| {
            let mut buffer = Buffer::default();
            for n in 0..rows {
                buffer.add(&codec, "t", partition, n as i64, ticket("2026-01-01", n).as_bytes(), 0).unwrap();
            }
            buffer
        };
        let open = filled(0, 2000);
        // Spilled fragments are compact: many values (300 days of 100 rows) make enough of them
        // to outweigh a small buffer's open rows.
        let mut spilled = Buffer::default();
        for n in 0..30_000 {
            let v = n % 300;
            let day = format!("2025-{:02}-{:02}", 1 + v / 28, 1 + v % 28);
            spilled.add(&codec, "t", 1, n as i64, ticket(&day, n).as_bytes(), 0).unwrap();
        }
        spilled.spill().unwrap();
        let small = filled(2, 5);
        let total = open.memory() + spilled.memory();
        let both = || [(0, &open), (1, &spilled)].into_iter();
        assert_eq!(relief(both(), total), None, "within the budget");
        assert_eq!(relief(both(), total - 1), Some(Relief::Spill(0)), "the most open rows are spilled");
        // Once spilled, a buffer offers nothing more to spill, however many values it holds:
        // the next relief flushes (a spill that reclaims nothing would be asked for forever).
        assert_eq!(spilled.unspilled(), 0);
        assert_eq!(relief([(1, &spilled)].into_iter(), 1), Some(Relief::Flush(1)));
        // Spilling 5 rows would reclaim less than an eighth of the budget: the largest goes.
        let total = small.memory() + spilled.memory();
        assert!(small.unspilled() < (total - 1) / 8, "{} {total}", small.unspilled());
        assert_eq!(relief([(2, &small), (1, &spilled)].into_iter(), total - 1), Some(Relief::Flush(1)));
    }

    #[test]
    fn an_open_date_costs_its_row_numbers_not_a_set_of_builders() {
        let codec = tickets_codec();
        let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
        // 300 tickets on 300 dates, and the same tickets on one date.
        let filled = |spread: bool| {
            let mut buffer = Buffer::default();
            for i in 0..300u64 {
                let day = start + chrono::Days::new(if spread { i } else { 0 });
                buffer.add(&codec, "t", 0, i as i64, ticket(&day.to_string(), i as usize).as_bytes(), 0).unwrap();
            }
            buffer
        };
        let (spread, one) = (filled(true), filled(false));
        assert_eq!((spread.dates(), one.dates()), (300, 1));
        let per_date = (spread.memory() - one.memory()) / 299;
        assert!(per_date <= 64, "{per_date} bytes per open date");
        // The rows themselves are counted: more than their six text cells' bytes.
        assert!(one.memory() > 300 * 100, "{} bytes for 300 rows", one.memory());
    }

    #[test]
    fn a_buffer_of_one_value_flushes_its_rows_as_they_are() {
        let codec = tickets_codec();
        let mut buffer = Buffer::default();
        for n in 0..10 {
            buffer.add(&codec, "t", 0, n, ticket("2026-01-01", n as usize).as_bytes(), 0).unwrap();
        }
        let files = buffer.take_files("t/0").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].records, 10);
        let (offsets, groups) = offsets(files.into_iter().next().unwrap().body);
        assert_eq!((offsets, groups), ((0..10).collect::<Vec<i64>>(), 1));
    }

    #[test]
    fn consecutive_rows_are_a_slice_of_their_chunk_and_encode_as_a_copy_of_them_does() {
        let codec = tickets_codec();
        let mut buffer = Buffer::default();
        for n in 0..CHUNK_ROWS + 300 {
            buffer.add(&codec, "t", 0, n as i64, ticket("2026-01-01", n).as_bytes(), 0).unwrap();
        }
        let chunks = buffer.open_chunks().unwrap();
        let encoder = codec.encoder();
        let first_buffer = |b: &RecordBatch| b.column(0).to_data().buffers()[0].as_ptr() as usize;
        // Whether `part`'s first column lies in `whole`'s memory (a slice shares it).
        let within = |part: &RecordBatch, whole: &RecordBatch| {
            let memory = whole.column(0).to_data().buffers()[0].as_slice().as_ptr_range();
            memory.contains(&(first_buffer(part) as *const u8))
        };
        for picks in [(100..600).map(|r| (0, r)).collect::<Vec<_>>(), (0..300).map(|r| (1, r)).collect()] {
            let gathered = encoder.gather(&chunks, &picks).unwrap();
            assert!(within(&gathered, &chunks[picks[0].0]), "a slice, not a copy");
            let refs: Vec<&RecordBatch> = chunks.iter().collect();
            let copy = arrow_select::interleave::interleave_record_batch(&refs, &picks).unwrap();
            assert!(!within(&copy, &chunks[picks[0].0]));
            assert_eq!(gathered, copy);
            // The same settings (sizes measured on the slice's own rows) and so the same bytes.
            let write = |b: &RecordBatch| encoder.write(Some(b), Vec::new(), "t/0").unwrap();
            assert_eq!(write(&gathered), write(&copy));
            assert_eq!(encoder.spill(&gathered).unwrap().len(), encoder.spill(&copy).unwrap().len());
        }
        // Rows of two chunks, or with a gap, are copied out.
        for picks in [vec![(0, CHUNK_ROWS - 1), (1, 0)], vec![(0, 5), (0, 7)]] {
            let gathered = encoder.gather(&chunks, &picks).unwrap();
            assert_eq!(gathered.num_rows(), 2);
            assert!(!within(&gathered, &chunks[0]) && !within(&gathered, &chunks[1]));
        }
    }

    #[test]
    fn rows_of_many_chunks_land_once_each_in_their_value_s_file_in_offset_order() {
        let codec = tickets_codec();
        let days = ["2026-01-01", "2026-01-02", "2026-01-03"];
        let mut buffer = Buffer::default();
        let total = 2 * CHUNK_ROWS + 500;
        for n in 0..total {
            buffer.add(&codec, "t", 0, n as i64, ticket(days[n % 3], n).as_bytes(), 0).unwrap();
            if n == CHUNK_ROWS + 100 {
                buffer.spill().unwrap();
            }
        }
        assert_eq!((buffer.chunks.len(), buffer.row_count()), (1, total));
        let mut all = Vec::new();
        for file in buffer.take_files("t/0").unwrap() {
            let records = file.records;
            let (offsets, groups) = offsets(file.body);
            assert_eq!((offsets.len(), groups), (records, 2), "{}: a fragment and the last rows", file.value);
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{}: offsets in order", file.value);
            let day = days.iter().position(|d| *d == file.value).unwrap() as i64;
            assert!(offsets.iter().all(|o| o % 3 == day), "{}: only its own rows", file.value);
            all.extend(offsets);
        }
        all.sort_unstable();
        assert_eq!(all, (0..total as i64).collect::<Vec<_>>(), "every row once");
    }
}
