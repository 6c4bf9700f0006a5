//! One topic partition's records between two flushes, as the worker and `bench worker` both
//! hold them: valid rows as Arrow columns per `dt`, rejected records as JSON lines per `dt`
//! (the UTC date they were rejected on: their own event time may be what is wrong).

use std::collections::BTreeMap;

use super::codec::{self, Codec, Rows};

/// Records of one partition since its last flush.
#[derive(Default)]
pub struct Buffer {
    /// Valid rows per day (days since the epoch of the event time's UTC date).
    pub rows: BTreeMap<i32, Rows>,
    /// Rejected records as JSON lines per day.
    pub rejected: BTreeMap<i32, Vec<u8>>,
    /// Number of rejected records.
    pub rejected_count: u64,
    /// Payload bytes added (uncompressed JSON).
    pub bytes: usize,
}

/// A file a flush writes.
pub struct File {
    /// `dt` value, `YYYY-MM-DD`.
    pub date: String,
    /// Parquet (curated zone) or JSON lines (rejected zone).
    pub rejected: bool,
    /// File content.
    pub body: Vec<u8>,
    /// Rows or records in it.
    pub records: usize,
}

impl Buffer {
    /// Decodes one record into the buffer: a row of its `dt`, or a rejected-zone line with
    /// topic, partition, offset, reason, the field at fault and the raw payload (lossy UTF-8).
    /// `now` is the ingestion time, microseconds since the epoch (UTC).
    ///
    /// Errors: none in practice (writing JSON into memory).
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
        match codec.decode(payload, now) {
            Ok((day, row)) => {
                self.rows.entry(day).or_insert_with(|| Rows::new(codec.schema().clone())).push(
                    &row,
                    payload.len(),
                    partition,
                    offset,
                );
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
                let out = self.rejected.entry(codec::days_of_micros(now)).or_default();
                serde_json::to_writer(&mut *out, &line)?;
                out.push(b'\n');
                self.rejected_count += 1;
            }
        }
        Ok(())
    }

    /// Number of distinct event dates (`dt` values) the valid rows span.
    pub fn dates(&self) -> usize {
        self.rows.len()
    }

    /// Memory the buffer holds: its Arrow builders' allocations and the rejected lines.
    pub fn memory(&self) -> usize {
        self.rows.values().map(Rows::memory).sum::<usize>() + self.rejected.values().map(Vec::capacity).sum::<usize>()
    }

    /// Number of valid rows buffered.
    pub fn row_count(&self) -> usize {
        self.rows.values().map(Rows::len).sum()
    }

    /// Encodes every file of the buffer (Parquet per `dt`, JSON lines per `dt`) and empties it;
    /// `source` (`<topic>/<partition>`) goes into the Parquet footers.
    ///
    /// Errors: Parquet encoding failed (not expected for rows built by the codec).
    pub fn take_files(&mut self, source: &str) -> anyhow::Result<Vec<File>> {
        let mut files = Vec::new();
        for (day, mut rows) in std::mem::take(&mut self.rows) {
            let records = rows.len();
            files.push(File {
                date: codec::date_text(day),
                rejected: false,
                body: codec::encode_parquet(&mut rows, source)?,
                records,
            });
        }
        for (day, lines) in std::mem::take(&mut self.rejected) {
            let records = lines.iter().filter(|b| **b == b'\n').count();
            files.push(File { date: codec::date_text(day), rejected: true, body: lines, records });
        }
        self.rejected_count = 0;
        self.bytes = 0;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn each_open_date_costs_little_memory_and_is_counted() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/dev.toml");
        let environment = crate::config::load(root.to_str().unwrap()).unwrap();
        let stream = environment.streams.into_iter().find(|s| s.name == "client_tickets").unwrap();
        let codec = Codec::new(Arc::new(stream));
        let mut buffer = Buffer::default();
        let start = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
        for i in 0..300u64 {
            let day = start + chrono::Days::new(i);
            let ticket = format!(
                r#"{{"ticket_id":"0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11","client_id":"c","created_at":"{day}T12:00:00Z","channel":"web","priority":"low","subject":"s"}}"#
            );
            buffer.add(&codec, "t", 0, i as i64, ticket.as_bytes(), 0).unwrap();
        }
        assert_eq!(buffer.dates(), 300);
        // Builders start small: an open date costs a few kB, not the default 1024 rows per column.
        let per_date = buffer.memory() / 300;
        assert!(per_date < 16 * 1024, "{per_date} bytes per open date");
        assert!(per_date > 1024, "{per_date} bytes per open date: the builders' memory is counted");
    }
}
