//! What `indutech status` shows per stream: produced (high watermarks), the lake's committed
//! positions and cumulative counts (the partitions' commit records, [`super::commit`]), lag,
//! the time of the last commit, and the partitions that stopped and why. The consumer group's
//! own offsets are reported too (`group_committed`), for comparison only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::commit::{CommitRecord, Stopped};
use crate::config::stream::Stream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Cumulative counts of one partition up to its committed position.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Landed {
    /// The committed position: every record before it has landed.
    pub offset: i64,
    /// Rows landed in the curated zone.
    pub rows: u64,
    /// Records landed in the rejected zone.
    pub rejected: u64,
    /// When the commit record was last written (Unix seconds; 0: never).
    pub at: i64,
}

/// One partition of a stream's topic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: i32,
    /// Offset of the first record still in the log.
    pub low: i64,
    /// High watermark: offset of the next record produced.
    pub high: i64,
    /// The lake's committed position (None: the lake never landed this partition).
    pub committed: Option<i64>,
    /// The consumer group's committed offset (for its lag; the lake's position is the truth).
    pub group_committed: Option<i64>,
    /// Counts at the committed position (None before the lake's records are read).
    pub landed: Option<Landed>,
    /// The owner's epoch in the lake.
    pub epoch: Option<u64>,
    /// Why the partition stopped, if it did.
    pub stopped: Option<Stopped>,
    /// Offsets the broker never delivered, recorded as gaps.
    pub gap_records: i64,
}

impl PartitionStatus {
    /// Records produced but not yet committed.
    pub fn lag(&self) -> i64 {
        (self.high - self.committed.unwrap_or(self.low)).max(0)
    }
}

/// One stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamStatus {
    /// Stream name.
    pub stream: String,
    /// Its topic.
    pub topic: String,
    /// Per partition, in order.
    pub partitions: Vec<PartitionStatus>,
}

impl StreamStatus {
    /// Sum of the high watermarks.
    pub fn produced(&self) -> i64 {
        self.partitions.iter().map(|p| p.high).sum()
    }
    /// Sum of the committed offsets (partitions without a commit count 0).
    pub fn committed(&self) -> i64 {
        self.partitions.iter().map(|p| p.committed.unwrap_or(0)).sum()
    }
    /// Sum of the partitions' lag.
    pub fn lag(&self) -> i64 {
        self.partitions.iter().map(PartitionStatus::lag).sum()
    }
    /// Rows landed in the curated zone.
    pub fn rows(&self) -> u64 {
        self.partitions.iter().filter_map(|p| p.landed).map(|l| l.rows).sum()
    }
    /// Records landed in the rejected zone.
    pub fn rejected(&self) -> u64 {
        self.partitions.iter().filter_map(|p| p.landed).map(|l| l.rejected).sum()
    }
    /// Latest commit time (Unix seconds), if any.
    pub fn last_commit(&self) -> Option<i64> {
        self.partitions.iter().filter_map(|p| p.landed).map(|l| l.at).filter(|t| *t > 0).max()
    }
}

/// Reads the status of `streams` from the broker (watermarks, the group's offsets) and the
/// lake (the partitions' commit records).
///
/// Errors: the broker is unreachable, a topic does not exist, or a commit record cannot be
/// read.
pub async fn read(
    connection: &crate::kafka::Connection,
    group: &str,
    streams: &[Arc<Stream>],
    lake: &super::lake::Lake,
) -> anyhow::Result<Vec<StreamStatus>> {
    let mut statuses = read_offsets(connection, group, streams).await?;
    let records = read_commits(lake, streams).await?;
    for status in &mut statuses {
        for p in &mut status.partitions {
            if let Some(record) = records.get(&(status.topic.clone(), p.partition)) {
                p.committed = Some(record.next_offset);
                let at = chrono::DateTime::parse_from_rfc3339(&record.updated_at).map_or(0, |t| t.timestamp());
                p.landed =
                    Some(Landed { offset: record.next_offset, rows: record.rows, rejected: record.rejected, at });
                p.epoch = Some(record.epoch);
                p.stopped = record.stopped.clone();
                p.gap_records = record.gaps.iter().map(|g| g[1] - g[0]).sum();
            } else {
                p.landed = Some(Landed::default());
            }
        }
    }
    Ok(statuses)
}

/// The commit record of every partition of `streams` that has one, by (topic, partition).
/// Partitions are found by listing the records' prefix once.
///
/// Errors: the listing failed or a record cannot be read.
pub async fn read_commits(
    lake: &super::lake::Lake,
    streams: &[Arc<Stream>],
) -> anyhow::Result<std::collections::HashMap<(String, i32), CommitRecord>> {
    let mut out = std::collections::HashMap::new();
    for key in lake.list(&lake.curated, "_indutech/commits/").await? {
        let Some(name) = key.strip_prefix("_indutech/commits/").and_then(|n| n.strip_suffix(".json")) else { continue };
        let Some((topic, partition)) = name.rsplit_once('+') else { continue };
        let Ok(partition) = partition.parse::<i32>() else { continue };
        if !streams.iter().any(|s| s.topic == topic) {
            continue;
        }
        if let Some(record) = super::commit::read(lake, topic, partition).await? {
            out.insert((topic.to_owned(), partition), record);
        }
    }
    Ok(out)
}

/// The broker's half of [`read`]: watermarks and the group's committed offsets, without the
/// lake's records (`committed` and `landed` stay None). No AWS call.
///
/// Errors: the broker is unreachable or a topic does not exist.
pub async fn read_offsets(
    connection: &crate::kafka::Connection,
    group: &str,
    streams: &[Arc<Stream>],
) -> anyhow::Result<Vec<StreamStatus>> {
    let (connection, group, streams) = (connection.clone(), group.to_owned(), streams.to_vec());
    tokio::task::spawn_blocking(move || read_broker(&connection, &group, &streams))
        .await
        .context("status reader panicked")?
}

fn read_broker(
    connection: &crate::kafka::Connection,
    group: &str,
    streams: &[Arc<Stream>],
) -> anyhow::Result<Vec<StreamStatus>> {
    let consumer = connection.reader(Some(group))?;
    let mut out = Vec::new();
    for stream in streams {
        let metadata = connection.metadata(&consumer, Some(&stream.topic), TIMEOUT)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == stream.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            anyhow::bail!("topic {} does not exist; run `indutech apply`", stream.topic);
        }
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            list.add_partition(&stream.topic, *p);
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .with_context(|| format!("reading the committed offsets of group {group}"))?;
        let mut rows = Vec::new();
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&stream.topic, p, TIMEOUT)
                .with_context(|| format!("reading the watermarks of {}/{p}", stream.topic))?;
            let offset = match committed.find_partition(&stream.topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            rows.push(PartitionStatus {
                partition: p,
                low,
                high,
                committed: None,
                group_committed: offset,
                landed: None,
                epoch: None,
                stopped: None,
                gap_records: 0,
            });
        }
        rows.sort_by_key(|r| r.partition);
        out.push(StreamStatus { stream: stream.name.clone(), topic: stream.topic.clone(), partitions: rows });
    }
    Ok(out)
}

/// The status as a table: one line per stream, like the proof of concept's dashboard.
pub fn table(statuses: &[StreamStatus]) -> String {
    let mut out = format!(
        "{:<18} {:>10} {:>10} {:>8} {:>10} {:>9}  {}\n",
        "STREAM", "PRODUCED", "COMMITTED", "LAG", "LANDED", "REJECTED", "LAST COMMIT (UTC)"
    );
    for s in statuses {
        let last = s
            .last_commit()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        out.push_str(&format!(
            "{:<18} {:>10} {:>10} {:>8} {:>10} {:>9}  {}\n",
            s.stream,
            s.produced(),
            s.committed(),
            s.lag(),
            s.rows(),
            s.rejected(),
            last
        ));
    }
    for s in statuses {
        for p in &s.partitions {
            if let Some(stopped) = &p.stopped {
                out.push_str(&format!(
                    "STOPPED {}/{} at offset {} since {}: {}\n",
                    s.topic, p.partition, stopped.offset, stopped.at, stopped.reason
                ));
            }
        }
    }
    out
}
