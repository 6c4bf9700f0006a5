//! The lake's commit protocol: which records of a topic partition are in the lake, and who may
//! add more. The record in the lake, not the consumer group, is the source of truth.
//!
//! Each topic partition has one **commit record**, `_indutech/commits/<topic>+<partition>.json`
//! in the curated bucket (outside every stream's prefix), written only with conditional puts:
//!
//! 1. **Take-over** (when the group assigns the partition): read the record and write it back
//!    with `epoch + 1` and this worker as owner, `If-Match` the ETag read (`If-None-Match: *`
//!    for the first). From then on every write of an older owner is refused by S3: an owner's
//!    ETag changes with its own writes only, and a take-over changes it under everybody else.
//!    Then roll forward what the previous owner committed but did not publish, and delete every
//!    staged object of older epochs (their owners never committed them).
//! 2. **Stage**: a flush uploads its files under
//!    `_indutech/staging/<topic>+<partition>/<epoch>/<first offset>/<final key>`, a prefix no
//!    reader lists, each with its SHA-256 in its metadata.
//! 3. **Commit**: write the record with the new committed position (`next_offset`), the
//!    cumulative counts and the staged files as `pending`, `If-Match` the owner's ETag. A 412
//!    means another worker took the partition over: the flush is dropped, its staged objects
//!    deleted, the partition stopped; nothing of it ever becomes visible.
//! 4. **Publish**: copy each pending file to its final key with `If-None-Match: *` (a key, once
//!    visible, never changes), then delete the staged object by its version id. A copy refused
//!    because the key exists is fine only when the existing object has the same SHA-256 (the
//!    new owner's roll-forward, or a paused owner waking up, published the same bytes).
//!
//! Invariants that follow: a visible file is always a committed one (published after its
//! commit), so a reader never sees a row past the committed position; committed ranges are
//! contiguous and disjoint (each commit starts at the previous `next_offset`), so no offset is
//! visible twice; nothing ever deletes a visible file. A worker paused at any step can, on
//! waking, at most repeat a publish of bytes that are already committed; its next commit is
//! refused. Resuming costs a few requests on the partition's own keys, whatever the history.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::lake::{Condition, Lake};

/// Version of the commit record's format.
pub const FORMAT: u32 = 1;

/// The commit record of one topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The stream whose prefixes hold the files.
    pub stream: String,
    /// Incremented by every take-over; the owner's writes carry it.
    pub epoch: u64,
    /// Who took the partition over last: `<group> <host> pid <pid> <run id>`.
    pub owner: String,
    /// The first offset this lake landed for the partition (where landing started).
    pub first_offset: i64,
    /// The committed position: every offset in `first_offset..next_offset` is in the lake
    /// exactly once (a row or a rejected record), except the `gaps`.
    pub next_offset: i64,
    /// Rows in the curated zone, cumulative.
    pub rows: u64,
    /// Records in the rejected zone, cumulative.
    pub rejected: u64,
    /// Offset ranges `[from, to)` the broker never delivered (transaction markers, records
    /// removed by retention or compaction before they landed), merged and sorted.
    #[serde(default)]
    pub gaps: Vec<[i64; 2]>,
    /// Files of the last commit that may not be published yet.
    #[serde(default)]
    pub pending: Vec<StagedFile>,
    /// Set when the partition was stopped because it cannot go on (unreadable batch, log that
    /// ends before the committed position): why, and where.
    #[serde(default)]
    pub stopped: Option<Stopped>,
    /// When it was last written, RFC 3339 UTC (the writer's clock).
    pub updated_at: String,
}

/// A committed file waiting for (or done with) its publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Bucket of both keys (curated or rejected).
    pub bucket: String,
    /// The staged key.
    pub staged: String,
    /// The staged object's version id (None in an unversioned bucket).
    pub version: Option<String>,
    /// The final, visible key.
    pub target: String,
    /// SHA-256 (hex) of the content.
    pub sha256: String,
    /// Rows (curated) or records (rejected) in it.
    pub records: u64,
}

/// Why a partition stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The offset it stopped at.
    pub offset: i64,
    /// What happened and what to do.
    pub reason: String,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// A partition this worker owns: its record as last written and the ETag of that write.
#[derive(Debug, Clone)]
pub struct Owned {
    /// The record as this worker last wrote it.
    pub record: CommitRecord,
    etag: String,
}

/// Key of the commit record of `topic`/`partition` in the curated bucket.
pub fn record_key(topic: &str, partition: i32) -> String {
    format!("{}commits/{topic}+{partition}.json", crate::model::PROTOCOL_PREFIX)
}

/// Prefix of every staged object of `topic`/`partition` (in the curated and rejected buckets).
pub fn staging_prefix(topic: &str, partition: i32) -> String {
    format!("{}staging/{topic}+{partition}/", crate::model::PROTOCOL_PREFIX)
}

/// The staged key of a flush's file: `<staging prefix><epoch, 10 digits>/<first offset, 20
/// digits>/<final key>`.
pub fn staged_key(topic: &str, partition: i32, epoch: u64, first_offset: i64, target: &str) -> String {
    format!("{}{epoch:010}/{first_offset:020}/{target}", staging_prefix(topic, partition))
}

/// The epoch in a staged key, None for any other key.
pub fn staged_epoch(key: &str, topic: &str, partition: i32) -> Option<u64> {
    key.strip_prefix(&staging_prefix(topic, partition))?.split('/').next()?.parse().ok()
}

/// Adds `[from, to)` to sorted, merged `gaps`.
pub fn add_gap(gaps: &mut Vec<[i64; 2]>, from: i64, to: i64) {
    if to <= from {
        return;
    }
    gaps.push([from, to]);
    gaps.sort_unstable();
    let mut merged: Vec<[i64; 2]> = Vec::with_capacity(gaps.len());
    for gap in gaps.drain(..) {
        match merged.last_mut() {
            Some(last) if gap[0] <= last[1] => last[1] = last[1].max(gap[1]),
            _ => merged.push(gap),
        }
    }
    *gaps = merged;
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads the commit record of `topic`/`partition` (None: the lake never landed it).
///
/// Errors: S3 failed, or the object is not a commit record.
pub async fn read(lake: &Lake, topic: &str, partition: i32) -> anyhow::Result<Option<CommitRecord>> {
    Ok(lake.get_json(&lake.curated, &record_key(topic, partition)).await?.map(|(record, _)| record))
}

/// How a take-over ended.
#[derive(Debug)]
pub enum TakeOver {
    /// This worker owns the partition at the record's epoch.
    Owned(Box<Owned>),
    /// Other workers kept taking it over at the same time (a rebalance in progress): this
    /// worker does not own it.
    Contended,
}

/// Takes `topic`/`partition` over: the record's epoch + 1 with `owner` as owner, written
/// conditionally; a new record starts at `start` (the group's committed offset, or the log's
/// first offset).
///
/// Errors: S3 failed, or the record is not a commit record.
pub async fn take_over(
    lake: &Lake,
    stream: &str,
    topic: &str,
    partition: i32,
    owner: &str,
    start: i64,
) -> anyhow::Result<TakeOver> {
    let key = record_key(topic, partition);
    for _ in 0..5 {
        let read: Option<(CommitRecord, String)> = lake.get_json(&lake.curated, &key).await?;
        let (mut record, condition) = match &read {
            Some((record, etag)) => {
                if record.format != FORMAT {
                    bail!("s3://{}/{key} has format {}, this indutech writes {FORMAT}", lake.curated, record.format);
                }
                (record.clone(), Condition::Unchanged(etag))
            }
            None => (
                CommitRecord {
                    format: FORMAT,
                    topic: topic.to_owned(),
                    partition,
                    stream: stream.to_owned(),
                    epoch: 0,
                    owner: String::new(),
                    first_offset: start,
                    next_offset: start,
                    rows: 0,
                    rejected: 0,
                    gaps: Vec::new(),
                    pending: Vec::new(),
                    stopped: None,
                    updated_at: String::new(),
                },
                Condition::Absent,
            ),
        };
        record.epoch += 1;
        record.owner = owner.to_owned();
        record.stopped = None;
        record.updated_at = now();
        if let Some(etag) = lake.put_json_if(&lake.curated, &key, &record, condition).await? {
            return Ok(TakeOver::Owned(Box::new(Owned { record, etag })));
        }
    }
    Ok(TakeOver::Contended)
}

/// After a take-over: publishes what the previous owner committed and may not have published,
/// and deletes every staged object of an older epoch (never committed, or published). Returns
/// how many staged objects were deleted.
///
/// Errors: a committed file can be published neither from its staged object nor found
/// published (data of the lake would be lost: said, never ignored), or S3 failed.
pub async fn roll_forward(lake: &Lake, owned: &Owned) -> anyhow::Result<usize> {
    publish(lake, &owned.record.pending).await?;
    let (topic, partition, epoch) = (&owned.record.topic, owned.record.partition, owned.record.epoch);
    let mut deleted = 0;
    for bucket in [&lake.curated, &lake.rejected] {
        let older: Vec<(String, Option<String>)> = lake
            .list_versions(bucket, &staging_prefix(topic, partition))
            .await?
            .into_iter()
            .filter(|(key, _)| staged_epoch(key, topic, partition).is_some_and(|e| e < epoch))
            .collect();
        lake.delete_versions(bucket, &older).await?;
        deleted += older.len();
    }
    Ok(deleted)
}

/// A file of a flush, encoded, before staging.
pub struct FlushFile {
    /// Curated or rejected bucket.
    pub bucket: String,
    /// The final key.
    pub target: String,
    /// Content.
    pub body: Vec<u8>,
    /// MIME type.
    pub content_type: &'static str,
    /// Rows or records in it.
    pub records: u64,
}

/// Stages `files` of the flush starting at `first_offset` under the owner's epoch (at most 8
/// uploads at once).
///
/// Errors: an upload failed.
pub async fn stage(
    lake: &Lake,
    owned: &Owned,
    first_offset: i64,
    files: Vec<FlushFile>,
) -> anyhow::Result<Vec<StagedFile>> {
    use futures_util::StreamExt as _;
    let (topic, partition, epoch) = (owned.record.topic.clone(), owned.record.partition, owned.record.epoch);
    let uploads = files.into_iter().map(|file| {
        let staged = staged_key(&topic, partition, epoch, first_offset, &file.target);
        async move {
            let sha256 = crate::digest::sha256_hex(&file.body);
            let version = lake.put(&file.bucket, &staged, file.body, file.content_type, &sha256).await?;
            anyhow::Ok(StagedFile {
                bucket: file.bucket,
                staged,
                version,
                target: file.target,
                sha256,
                records: file.records,
            })
        }
    });
    let mut staged = Vec::new();
    let mut pending = futures_util::stream::iter(uploads).buffer_unordered(8);
    while let Some(result) = pending.next().await {
        staged.push(result?);
    }
    Ok(staged)
}

/// Commits `next` (the owner's record with the new position, counts, gaps and pending files)
/// with `If-Match` on the owner's last write. Returns false when another worker took the
/// partition over since: nothing was written.
///
/// Errors: S3 failed (the outcome is then unknown: the caller must not publish).
pub async fn commit(lake: &Lake, owned: &mut Owned, mut next: CommitRecord) -> anyhow::Result<bool> {
    next.updated_at = now();
    let key = record_key(&next.topic, next.partition);
    match lake.put_json_if(&lake.curated, &key, &next, Condition::Unchanged(&owned.etag)).await? {
        Some(etag) => {
            owned.etag = etag;
            owned.record = next;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Publishes committed `files` (at most 8 at once): create-only copies to their final keys,
/// then deletion of the staged objects (one request per bucket and 1000 objects).
///
/// Errors: a final key holds other content than the committed file (never overwritten), a
/// committed file is neither staged nor published, or S3 failed.
pub async fn publish(lake: &Lake, files: &[StagedFile]) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    // Collected first: a lazy `map` here makes the future not provably `Send` for
    // `tokio::spawn` (rustc's higher-ranked lifetime limitation with closures).
    let publishes: Vec<_> = files.iter().map(|file| publish_one(lake, file)).collect();
    let mut pending = futures_util::stream::iter(publishes).buffer_unordered(8);
    while let Some(result) = pending.next().await {
        result?;
    }
    drop(pending);
    discard(lake, files).await
}

async fn publish_one(lake: &Lake, file: &StagedFile) -> anyhow::Result<()> {
    let (bucket, target) = (&file.bucket, &file.target);
    let copied = match lake.copy_if_absent(bucket, &file.staged, file.version.as_deref(), target).await {
        Ok(copied) => Some(copied),
        // The staged object may be gone because someone published it already: checked below.
        Err(error) => {
            tracing::debug!(%bucket, staged = %file.staged, error = %format!("{error:#}"), "staged file not copied");
            None
        }
    };
    if copied != Some(true) {
        // Published already (by a take-over's roll-forward, or before a pause), or the key is
        // taken by other bytes.
        match lake.head_sha256(bucket, target).await? {
            Some(Some(sha)) if sha == file.sha256 => {}
            Some(other) => bail!(
                "s3://{bucket}/{target} exists with other content (sha256 {}) than the committed file (sha256 {}); \
                 it was not overwritten",
                other.as_deref().unwrap_or("unknown"),
                file.sha256
            ),
            None => bail!(
                "committed file s3://{bucket}/{target} is neither published nor staged (s3://{bucket}/{} is gone): \
                 its records are missing from the lake; `indutech audit` lists them",
                file.staged
            ),
        }
    }
    Ok(())
}

/// Deletes the staged objects of `files` for good: after their publication, or for a flush
/// whose commit was refused.
///
/// Errors: S3 failed.
pub async fn discard(lake: &Lake, files: &[StagedFile]) -> anyhow::Result<()> {
    let mut by_bucket: std::collections::BTreeMap<&str, Vec<(String, Option<String>)>> = Default::default();
    for file in files {
        by_bucket.entry(&file.bucket).or_default().push((file.staged.clone(), file.version.clone()));
    }
    for (bucket, versions) in by_bucket {
        lake.delete_versions(bucket, &versions).await?;
    }
    Ok(())
}

/// Marks the owned partition stopped at `offset` with `reason` (kept in its record, shown by
/// `indutech status`). Returns false when another worker took it over since.
///
/// Errors: S3 failed.
pub async fn stop(lake: &Lake, owned: &mut Owned, offset: i64, reason: &str) -> anyhow::Result<bool> {
    let mut next = owned.record.clone();
    next.stopped = Some(Stopped { offset, reason: reason.to_owned(), at: now() });
    commit(lake, owned, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_merge_and_stay_sorted() {
        let mut gaps = Vec::new();
        add_gap(&mut gaps, 10, 12);
        add_gap(&mut gaps, 3, 4);
        add_gap(&mut gaps, 12, 15);
        add_gap(&mut gaps, 7, 7);
        add_gap(&mut gaps, 4, 5);
        assert_eq!(gaps, [[3, 5], [10, 15]]);
    }

    #[test]
    fn staged_keys_carry_their_epoch_and_stay_out_of_stream_prefixes() {
        let key =
            staged_key("client_tickets", 2, 7, 1234, "client_tickets/dt=2026-11-20/client_tickets+2+1234.parquet");
        assert_eq!(
            key,
            "_indutech/staging/client_tickets+2/0000000007/00000000000000001234/client_tickets/dt=2026-11-20/client_tickets+2+1234.parquet"
        );
        assert!(key.starts_with('_'));
        assert_eq!(staged_epoch(&key, "client_tickets", 2), Some(7));
        assert_eq!(staged_epoch(&key, "client_tickets", 1), None);
        assert_eq!(record_key("client_tickets", 2), "_indutech/commits/client_tickets+2.json");
    }
}
