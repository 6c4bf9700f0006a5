//! `indutech audit`: proves from what readers see that every offset landed exactly once.
//!
//! For each partition of each stream it reads the partition's commit record (the committed
//! range `first_offset..next_offset` and the gaps the broker never delivered) and every
//! visible object of the stream's prefixes: the `kafka_partition` and `kafka_offset` columns
//! of the Parquet files in the curated zone, the `partition` and `offset` of each JSON line in
//! the rejected zone. It then counts, per partition: offsets of the committed range found
//! nowhere (missing), offsets found more than once (duplicated) and visible offsets outside the
//! committed range (uncommitted: a reader sees something the lake never committed). Objects
//! readers ignore (a name segment starting with `_` or `.`) are ignored here too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{Array as _, Int32Array, Int64Array};
use futures_util::StreamExt as _;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::lake::Lake;
use crate::config::stream::{OFFSET_COLUMN, PARTITION_COLUMN, Stream};

/// At most this many example offsets are listed per kind of problem and partition.
const EXAMPLES: usize = 5;

/// The audit of one partition.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PartitionAudit {
    /// Partition number.
    pub partition: i32,
    /// First offset of the committed range (None: no commit record).
    pub first: Option<i64>,
    /// The committed position (None: no commit record).
    pub committed: Option<i64>,
    /// Rows found in the curated zone.
    pub rows: u64,
    /// Records found in the rejected zone.
    pub rejected: u64,
    /// Offsets the broker never delivered (recorded gaps inside the committed range).
    pub gaps: u64,
    /// Offsets of the committed range found nowhere.
    pub missing: u64,
    /// Offsets found more than once (each extra copy counts).
    pub duplicated: u64,
    /// Visible offsets outside the committed range.
    pub uncommitted: u64,
    /// Examples of the problems: `missing 12`, `duplicated 40 in KEY and KEY`...
    pub examples: Vec<String>,
}

impl PartitionAudit {
    /// Whether anything is wrong.
    pub fn has_problems(&self) -> bool {
        self.missing + self.duplicated + self.uncommitted > 0
    }
}

/// The audit of one stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamAudit {
    /// Stream name.
    pub stream: String,
    /// Its topic.
    pub topic: String,
    /// Partitions with a commit record or visible records, in order.
    pub partitions: Vec<PartitionAudit>,
    /// Objects that could not be read as the stream's files (no offset columns...).
    pub unreadable: Vec<String>,
}

impl StreamAudit {
    /// Whether anything is wrong.
    pub fn has_problems(&self) -> bool {
        !self.unreadable.is_empty() || self.partitions.iter().any(PartitionAudit::has_problems)
    }
}

/// Whether readers skip `key` (a segment of its name starts with `_` or `.`).
fn hidden(key: &str) -> bool {
    key.split('/').any(|segment| segment.starts_with('_') || segment.starts_with('.'))
}

/// Every visible record of `stream` in the lake: (partition, offset) -> the keys holding it,
/// and how many rows and rejected records each partition has.
async fn visible(
    lake: &Lake,
    stream: &Stream,
    unreadable: &mut Vec<String>,
) -> anyhow::Result<(HashMap<(i32, i64), Vec<Arc<str>>>, BTreeMap<i32, (u64, u64)>)> {
    let prefix = format!("{}/", stream.name);
    let mut seen: HashMap<(i32, i64), Vec<Arc<str>>> = HashMap::new();
    let mut counts: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    // Read 16 objects at once: an audit reads every visible object of the stream.
    let keys: Vec<String> = lake
        .list(&lake.curated, &prefix)
        .await?
        .into_iter()
        .filter(|k| !hidden(k) && k.ends_with(".parquet"))
        .collect();
    let reads = keys.into_iter().map(|key| async move {
        let body = lake.get(&lake.curated, &key).await?;
        anyhow::Ok((key, tokio::task::spawn_blocking(move || offsets_of_parquet(body)).await?))
    });
    let mut pending = futures_util::stream::iter(reads).buffer_unordered(16);
    while let Some(read) = pending.next().await {
        let (key, offsets) = read?;
        let shared: Arc<str> = Arc::from(key.as_str());
        match offsets {
            Ok(pairs) => {
                for (partition, offset) in pairs {
                    counts.entry(partition).or_default().0 += 1;
                    seen.entry((partition, offset)).or_default().push(shared.clone());
                }
            }
            Err(error) => unreadable.push(format!("s3://{}/{key}: {error:#}", lake.curated)),
        }
    }
    drop(pending);
    for key in lake.list(&lake.rejected, &prefix).await? {
        if hidden(&key) || !key.ends_with(".jsonl") {
            continue;
        }
        let body = lake.get(&lake.rejected, &key).await?;
        let shared: Arc<str> = Arc::from(key.as_str());
        for (n, line) in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let record: serde_json::Value = match serde_json::from_slice(line) {
                Ok(record) => record,
                Err(error) => {
                    unreadable.push(format!("s3://{}/{key}:{}: not a JSON line: {error}", lake.rejected, n + 1));
                    continue;
                }
            };
            match (record["partition"].as_i64(), record["offset"].as_i64()) {
                (Some(partition), Some(offset)) => {
                    let partition = partition as i32;
                    counts.entry(partition).or_default().1 += 1;
                    seen.entry((partition, offset)).or_default().push(shared.clone());
                }
                _ => unreadable.push(format!("s3://{}/{key}:{}: no partition or offset", lake.rejected, n + 1)),
            }
        }
    }
    Ok((seen, counts))
}

/// `(kafka_partition, kafka_offset)` of every row of a Parquet file.
///
/// Errors: not Parquet, or without the two columns.
pub fn offsets_of_parquet(body: bytes::Bytes) -> anyhow::Result<Vec<(i32, i64)>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(body).context("not a Parquet file")?;
    let schema = builder.parquet_schema();
    let index = |name: &str| {
        (0..schema.num_columns())
            .find(|i| schema.column(*i).name() == name)
            .with_context(|| format!("no `{name}` column (written before indutech recorded offsets in rows?)"))
    };
    let (p, o) = (index(PARTITION_COLUMN)?, index(OFFSET_COLUMN)?);
    let mask = ProjectionMask::leaves(schema, [p, o]);
    let mut out = Vec::new();
    for batch in builder.with_projection(mask).build()? {
        let batch = batch?;
        let partitions = batch
            .column_by_name(PARTITION_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned())
            .context("`kafka_partition` is not int")?;
        let offsets = batch
            .column_by_name(OFFSET_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
            .context("`kafka_offset` is not bigint")?;
        for i in 0..batch.num_rows() {
            if partitions.is_null(i) || offsets.is_null(i) {
                anyhow::bail!("row {i} has no partition or offset");
            }
            out.push((partitions.value(i), offsets.value(i)));
        }
    }
    Ok(out)
}

/// Audits `streams` of the lake.
///
/// Errors: the lake cannot be listed or read.
pub async fn audit(lake: &Lake, streams: &[Arc<Stream>]) -> anyhow::Result<Vec<StreamAudit>> {
    let records = super::status::read_commits(lake, streams).await?;
    let mut out = Vec::new();
    for stream in streams {
        let mut unreadable = Vec::new();
        let (seen, counts) = visible(lake, stream, &mut unreadable).await?;
        let mut partitions: BTreeMap<i32, PartitionAudit> = BTreeMap::new();
        for ((topic, partition), record) in &records {
            if *topic == stream.topic {
                let audit = partitions.entry(*partition).or_default();
                audit.first = Some(record.first_offset);
                audit.committed = Some(record.next_offset);
            }
        }
        for partition in counts.keys() {
            partitions.entry(*partition).or_default();
        }
        for (partition, audit) in &mut partitions {
            audit.partition = *partition;
            let (rows, rejected) = counts.get(partition).copied().unwrap_or_default();
            (audit.rows, audit.rejected) = (rows, rejected);
            let record = records.get(&(stream.topic.clone(), *partition));
            let (first, committed) = (audit.first.unwrap_or(0), audit.committed.unwrap_or(0));
            let gaps: &[[i64; 2]] = record.map_or(&[], |r| &r.gaps);
            let in_gap = |offset: i64| gaps.iter().any(|g| (g[0]..g[1]).contains(&offset));
            audit.gaps = gaps.iter().map(|g| (g[1].min(committed) - g[0].max(first)).max(0) as u64).sum();
            let mut examples: HashMap<&str, Vec<String>> = HashMap::new();
            for offset in first..committed {
                if in_gap(offset) {
                    continue;
                }
                match seen.get(&(*partition, offset)) {
                    None => {
                        audit.missing += 1;
                        examples.entry("missing").or_default().push(offset.to_string());
                    }
                    Some(keys) if keys.len() > 1 => {
                        audit.duplicated += keys.len() as u64 - 1;
                        examples.entry("duplicated").or_default().push(format!("{offset} in {}", keys.join(" and ")));
                    }
                    Some(_) => {}
                }
            }
            let mut outside: Vec<(i64, usize)> = seen
                .iter()
                .filter(|((p, offset), _)| p == partition && !(first..committed).contains(offset))
                .map(|((_, offset), keys)| (*offset, keys.len()))
                .collect();
            outside.sort_unstable();
            for (offset, copies) in outside {
                audit.uncommitted += copies as u64;
                examples.entry("uncommitted").or_default().push(offset.to_string());
            }
            for kind in ["missing", "duplicated", "uncommitted"] {
                if let Some(list) = examples.get(kind) {
                    let more = list.len().saturating_sub(EXAMPLES);
                    let mut text = format!("{kind}: {}", list[..list.len().min(EXAMPLES)].join(", "));
                    if more > 0 {
                        text.push_str(&format!(" and {more} more"));
                    }
                    audit.examples.push(text);
                }
            }
        }
        out.push(StreamAudit {
            stream: stream.name.clone(),
            topic: stream.topic.clone(),
            partitions: partitions.into_values().collect(),
            unreadable,
        });
    }
    Ok(out)
}

/// The audit as a table, with the problems' examples under it.
pub fn table(audits: &[StreamAudit]) -> String {
    let mut out = format!(
        "{:<18} {:>9} {:>10} {:>10} {:>9} {:>9} {:>6} {:>8} {:>10} {:>11}\n",
        "STREAM", "PARTITION", "FIRST", "COMMITTED", "ROWS", "REJECTED", "GAPS", "MISSING", "DUPLICATED", "UNCOMMITTED"
    );
    let text = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for s in audits {
        for p in &s.partitions {
            out.push_str(&format!(
                "{:<18} {:>9} {:>10} {:>10} {:>9} {:>9} {:>6} {:>8} {:>10} {:>11}\n",
                s.stream,
                p.partition,
                text(p.first),
                text(p.committed),
                p.rows,
                p.rejected,
                p.gaps,
                p.missing,
                p.duplicated,
                p.uncommitted
            ));
        }
    }
    for s in audits {
        for p in &s.partitions {
            for example in &p.examples {
                out.push_str(&format!("{}/{}: {example}\n", s.topic, p.partition));
            }
        }
        for problem in &s.unreadable {
            out.push_str(&format!("{}: unreadable: {problem}\n", s.stream));
        }
    }
    out
}
