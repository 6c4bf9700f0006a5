//! What `indutech status` shows per stream: produced (high watermarks), committed offsets of
//! the worker group, lag, rows landed and rejected (cumulative counts the worker keeps in its
//! commit metadata) and the time of the last commit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{Landed, Progress};
use crate::config::stream::Stream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One partition of a stream's topic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionStatus {
    /// Partition number.
    pub partition: i32,
    /// Offset of the first record still in the log.
    pub low: i64,
    /// High watermark: offset of the next record produced.
    pub high: i64,
    /// Next offset the worker group will read (None: nothing committed yet).
    pub committed: Option<i64>,
    /// Counts at the committed offset (None: unknown, the progress document does not match).
    pub landed: Option<Landed>,
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

/// Reads the status of `streams` for consumer group `group` from the broker (watermarks,
/// commits) and the lake (progress documents).
///
/// Errors: the broker is unreachable, a topic does not exist, or a progress document cannot
/// be read.
pub async fn read(
    bootstrap: &str,
    group: &str,
    streams: &[Arc<Stream>],
    lake: &super::lake::Lake,
) -> anyhow::Result<Vec<StreamStatus>> {
    let mut statuses = read_offsets(bootstrap, group, streams).await?;
    for status in &mut statuses {
        for p in &mut status.partitions {
            let progress: Progress = lake.read_progress(group, &status.topic, p.partition).await?;
            p.landed = progress.at(p.committed);
        }
    }
    Ok(statuses)
}

/// The broker's half of [`read`]: watermarks and the group's committed offsets, without the
/// progress documents (`landed` stays None). No AWS call.
///
/// Errors: the broker is unreachable or a topic does not exist.
pub async fn read_offsets(bootstrap: &str, group: &str, streams: &[Arc<Stream>]) -> anyhow::Result<Vec<StreamStatus>> {
    let (bootstrap, group, streams) = (bootstrap.to_owned(), group.to_owned(), streams.to_vec());
    tokio::task::spawn_blocking(move || read_broker(&bootstrap, &group, &streams))
        .await
        .context("status reader panicked")?
}

fn read_broker(bootstrap: &str, group: &str, streams: &[Arc<Stream>]) -> anyhow::Result<Vec<StreamStatus>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the Kafka client")?;
    let mut out = Vec::new();
    for stream in streams {
        let metadata = consumer
            .fetch_metadata(Some(&stream.topic), TIMEOUT)
            .with_context(|| format!("reading the metadata of topic {} (is the broker up?)", stream.topic))?;
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
            rows.push(PartitionStatus { partition: p, low, high, committed: offset, landed: None });
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
    out
}
