//! Where the worker's output goes: object keys of the lake layout, the S3 operations the commit
//! protocol ([`super::commit`]) is built from (conditional puts, create-only copies, deletes of
//! exact versions), and Glue partition registration.
//!
//! Layout (shared/DESIGN.md): valid rows as Parquet under `<stream>/dt=YYYY-MM-DD/` in the
//! curated bucket, rejected records as JSON lines under the same prefix in the rejected bucket,
//! each named after the flush that wrote it: `<topic>+<partition>+<first offset, 20
//! digits>.parquet` (or `.jsonl`). A flush's files are first staged under
//! `_indutech/staging/` (outside every stream's prefix: no reader lists it) and become visible
//! only once the partition's commit record says they are committed.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::Mutex;

use crate::config::environment::Environment;
use crate::config::stream::Stream;

/// Objects larger than this are uploaded in parts (bytes).
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Part size of multipart uploads (bytes; S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Object metadata key holding the SHA-256 (hex) of the content (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";

/// What a key must be escaped of in a `CopySource` (everything but `/` and unreserved characters).
const KEY_ENCODING: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The condition of a conditional write.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    /// The object must not exist (`If-None-Match: *`).
    Absent,
    /// The object must still have this ETag (`If-Match`).
    Unchanged(&'a str),
}

/// The file name of a flush: `<topic>+<partition>+<first offset, 20 digits>.<extension>`.
pub fn file_name(topic: &str, partition: i32, first_offset: i64, extension: &str) -> String {
    format!("{topic}+{partition}+{first_offset:020}.{extension}")
}

/// The key of a flush's file in `stream`'s `dt` prefix.
pub fn object_key(stream: &str, partition_key: &str, date: &str, file_name: &str) -> String {
    format!("{stream}/{partition_key}={date}/{file_name}")
}

/// Parses a key written by [`object_key`]: `(topic, partition, first offset)`, or None for any
/// other object.
pub fn parse_key(key: &str) -> Option<(&str, i32, i64)> {
    let name = key.rsplit('/').next()?;
    let stem = name.strip_suffix(".parquet").or_else(|| name.strip_suffix(".jsonl"))?;
    let mut parts = stem.rsplitn(3, '+');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    Some((topic, partition, offset))
}

/// The lake as the worker sees it: the curated and rejected buckets and the Glue database.
pub struct Lake {
    s3: aws_sdk_s3::Client,
    glue: aws_sdk_glue::Client,
    /// Curated bucket name.
    pub curated: String,
    /// Rejected bucket name.
    pub rejected: String,
    /// Glue database name.
    pub database: String,
    catalog: Mutex<Catalog>,
}

impl Lake {
    /// The lake of `environment`, reached through `aws`.
    pub fn new(environment: &Environment, aws: &crate::aws::Aws) -> Self {
        Self {
            s3: aws.s3(),
            glue: aws.glue(),
            curated: crate::model::bucket_name(environment, "curated"),
            rejected: crate::model::bucket_name(environment, "rejected"),
            database: crate::model::glue_database_name(environment),
            catalog: Mutex::new(Catalog::default()),
        }
    }

    /// Checks that the buckets and each stream's Glue table exist.
    ///
    /// Errors: one of them is missing (the platform is not applied: run `indutech apply`), or
    /// the target cannot be reached.
    pub async fn check(&self, streams: &[&Stream]) -> anyhow::Result<()> {
        for bucket in [&self.curated, &self.rejected] {
            self.s3.head_bucket().bucket(bucket).send().await.with_context(|| {
                format!("bucket {bucket} is not reachable; is the platform applied (`indutech apply`)?")
            })?;
        }
        for stream in streams {
            self.glue.get_table().database_name(&self.database).name(&stream.name).send().await.with_context(|| {
                format!(
                    "Glue table {}.{} is not reachable; is the platform applied (`indutech apply`)?",
                    self.database, stream.name
                )
            })?;
        }
        Ok(())
    }

    /// Uploads `body` to `bucket`/`key` with its SHA-256 (hex) in the object's metadata
    /// (`x-amz-meta-sha256`): one PUT, or a multipart upload above [`MULTIPART_THRESHOLD`]
    /// (aborted on error, so no part stays behind). Returns the version id S3 gave it (None in
    /// an unversioned bucket).
    ///
    /// Errors: the upload failed after the SDK's retries.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        sha256: &str,
    ) -> anyhow::Result<Option<String>> {
        if body.len() <= MULTIPART_THRESHOLD {
            let out = self
                .s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .metadata(SHA256_METADATA, sha256)
                .body(ByteStream::from(body))
                .send()
                .await
                .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
            return Ok(out.version_id().map(str::to_owned));
        }
        let upload = self
            .s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .metadata(SHA256_METADATA, sha256)
            .send()
            .await
            .with_context(|| format!("starting a multipart upload of s3://{bucket}/{key}"))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let result = self.upload_parts(bucket, key, &upload_id, &body).await;
        if result.is_err() {
            let _ = self.s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
        }
        result
    }

    async fn upload_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        body: &[u8],
    ) -> anyhow::Result<Option<String>> {
        let mut parts = Vec::new();
        for (i, chunk) in body.chunks(PART_SIZE).enumerate() {
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let part = self
                .s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .with_context(|| format!("uploading part {number} of s3://{bucket}/{key}"))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_owned)).build());
        }
        let out = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .with_context(|| format!("completing the multipart upload of s3://{bucket}/{key}"))?;
        Ok(out.version_id().map(str::to_owned))
    }

    /// Reads a small JSON document and its ETag; None when it does not exist.
    ///
    /// Errors: S3 failed, or the object is not JSON of type `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> anyhow::Result<Option<(T, String)>> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => {
                let etag = object.e_tag().unwrap_or_default().to_owned();
                let body = object.body.collect().await.with_context(|| format!("reading s3://{bucket}/{key}"))?;
                let value = serde_json::from_slice(&body.into_bytes())
                    .with_context(|| format!("s3://{bucket}/{key} is not what indutech wrote there"))?;
                Ok(Some((value, etag)))
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("reading s3://{bucket}/{key}")),
        }
    }

    /// Writes a small JSON document only if `condition` holds on S3 (`If-None-Match: *` or
    /// `If-Match: <etag>`): the one atomic step of the commit protocol. Returns the new ETag,
    /// or `Ok(None)` when S3 refused the condition (412, or 409 for a concurrent conditional
    /// write): someone else wrote it since.
    ///
    /// Errors: any other S3 failure.
    pub async fn put_json_if(
        &self,
        bucket: &str,
        key: &str,
        value: &impl serde::Serialize,
        condition: Condition<'_>,
    ) -> anyhow::Result<Option<String>> {
        let mut request = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(serde_json::to_vec_pretty(value)?));
        request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Unchanged(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            Err(error) if error.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("writing s3://{bucket}/{key}")),
        }
    }

    /// The SHA-256 an object was written with (`x-amz-meta-sha256`), `Some(None)` when it has
    /// none, None when the object does not exist.
    ///
    /// Errors: S3 failed.
    pub async fn head_sha256(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Option<String>>> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(head) => Ok(Some(head.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned())),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("reading s3://{bucket}/{key}")),
        }
    }

    /// Copies `source` (at `version`, when given) to `target` in `bucket` only if `target`
    /// does not exist (`If-None-Match: *`), keeping its metadata. Returns false when `target`
    /// already existed (nothing was written).
    ///
    /// Errors: the source does not exist, or S3 failed.
    pub async fn copy_if_absent(
        &self,
        bucket: &str,
        source: &str,
        version: Option<&str>,
        target: &str,
    ) -> anyhow::Result<bool> {
        let mut copy_source = format!("{bucket}/{}", utf8_percent_encode(source, KEY_ENCODING));
        if let Some(version) = version {
            copy_source.push_str(&format!("?versionId={}", utf8_percent_encode(version, KEY_ENCODING)));
        }
        match self.s3.copy_object().bucket(bucket).key(target).copy_source(copy_source).if_none_match("*").send().await
        {
            Ok(_) => Ok(true),
            Err(error) if error.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) => Ok(false),
            Err(error) => Err(error).with_context(|| format!("copying s3://{bucket}/{source} to {target}")),
        }
    }

    /// Deletes the given versions of keys of `bucket` for good (no delete markers), 1000 per
    /// request; versions already gone count as deleted. A key given without a version id gets
    /// a delete marker instead (its versions stay recoverable).
    ///
    /// Errors: S3 failed, or refused one of them.
    pub async fn delete_versions(&self, bucket: &str, versions: &[(String, Option<String>)]) -> anyhow::Result<()> {
        for chunk in versions.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|(key, version)| {
                    ObjectIdentifier::builder().key(key).set_version_id(version.clone()).build().ok()
                })
                .collect();
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build()?;
            let answer = self
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .with_context(|| format!("deleting {} object version(s) in {bucket}", chunk.len()))?;
            if let Some(error) = answer.errors().iter().find(|e| e.code() != Some("NoSuchVersion")) {
                anyhow::bail!(
                    "deleting s3://{bucket}/{}: {}",
                    error.key().unwrap_or_default(),
                    error.message().unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    /// Every version and delete marker under `prefix` in `bucket`: `(key, version id)`.
    ///
    /// Errors: a listing call failed.
    pub async fn list_versions(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        // ListObjectVersions has no paginator in aws-sdk-s3 (two markers): the loop is ours.
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .with_context(|| format!("listing the versions under s3://{bucket}/{prefix}"))?;
            let version_of = |v: Option<&str>| v.filter(|v| *v != "null").map(str::to_owned);
            out.extend(page.versions().iter().filter_map(|v| Some((v.key()?.to_owned(), version_of(v.version_id())))));
            out.extend(
                page.delete_markers().iter().filter_map(|m| Some((m.key()?.to_owned(), version_of(m.version_id())))),
            );
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// Every key under `prefix` in `bucket`.
    ///
    /// Errors: a listing call failed.
    pub async fn list(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self.s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// The bytes of `bucket`/`key`.
    ///
    /// Errors: the object does not exist or cannot be read.
    pub async fn get(&self, bucket: &str, key: &str) -> anyhow::Result<bytes::Bytes> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("reading s3://{bucket}/{key}"))?;
        Ok(object.body.collect().await.with_context(|| format!("reading s3://{bucket}/{key}"))?.into_bytes())
    }

    /// The last `n` bytes of `bucket`/`key` (all of it when it is smaller) and the object's size,
    /// bytes: what a Parquet reader needs of a file to know its schema and row count.
    ///
    /// Errors: the object cannot be read, or S3 reported no size.
    pub async fn get_tail(&self, bucket: &str, key: &str, n: u64) -> anyhow::Result<(bytes::Bytes, u64)> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes=-{n}"))
            .send()
            .await
            .with_context(|| format!("reading the end of s3://{bucket}/{key}"))?;
        // `bytes FIRST-LAST/SIZE`; a whole small object may come without a range.
        let size = object
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|s| s.parse().ok())
            .or(object.content_length().and_then(|l| u64::try_from(l).ok()))
            .with_context(|| format!("s3://{bucket}/{key}: S3 reported no size"))?;
        let body = object.body.collect().await.with_context(|| format!("reading s3://{bucket}/{key}"))?.into_bytes();
        Ok((body, size))
    }

    /// The values of the partitions registered in `stream`'s Glue table (the dates of `dt`).
    ///
    /// Errors: the table cannot be read.
    pub async fn registered_partitions(&self, stream: &str) -> anyhow::Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut pages =
            self.glue.get_partitions().database_name(&self.database).table_name(stream).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.with_context(|| format!("listing the partitions of Glue table {}.{stream}", self.database))?;
            out.extend(page.partitions().iter().filter_map(|p| p.values().first().cloned()));
        }
        Ok(out)
    }

    /// Registers partitions `partition_key=<date>` of `stream`'s Glue table (location
    /// `s3://<curated>/<stream>/<partition_key>=<date>/`, the table's storage format) for the
    /// `dates` not registered yet by this process: the table is read once per process, and
    /// the new partitions are created in one BatchCreatePartition call per 100. A partition
    /// that already exists is fine.
    ///
    /// Errors: the table cannot be read or a partition cannot be created.
    pub async fn register_partitions(&self, stream: &str, partition_key: &str, dates: &[String]) -> anyhow::Result<()> {
        let mut catalog = self.catalog.lock().await;
        let new: Vec<&String> =
            dates.iter().filter(|d| !catalog.registered.contains(&(stream.to_owned(), (*d).clone()))).collect();
        if new.is_empty() {
            return Ok(());
        }
        if !catalog.descriptors.contains_key(stream) {
            let table = self
                .glue
                .get_table()
                .database_name(&self.database)
                .name(stream)
                .send()
                .await
                .with_context(|| format!("reading Glue table {}.{stream}", self.database))?;
            let descriptor = table
                .table()
                .and_then(|t| t.storage_descriptor())
                .cloned()
                .unwrap_or_else(|| aws_sdk_glue::types::StorageDescriptor::builder().build());
            catalog.descriptors.insert(stream.to_owned(), descriptor);
        }
        let descriptor = catalog.descriptors[stream].clone();
        for chunk in new.chunks(100) {
            let inputs: Vec<aws_sdk_glue::types::PartitionInput> = chunk
                .iter()
                .map(|date| {
                    let mut descriptor = descriptor.clone();
                    descriptor.location = Some(format!("s3://{}/{stream}/{partition_key}={date}/", self.curated));
                    aws_sdk_glue::types::PartitionInput::builder().values(*date).storage_descriptor(descriptor).build()
                })
                .collect();
            let answer = self
                .glue
                .batch_create_partition()
                .database_name(&self.database)
                .table_name(stream)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .with_context(|| format!("registering {} partition(s) of {stream}", chunk.len()))?;
            let failed = answer.errors().iter().find(|e| {
                e.error_detail().and_then(|d| d.error_code()).is_some_and(|code| code != "AlreadyExistsException")
            });
            if let Some(error) = failed {
                let detail = error.error_detail();
                anyhow::bail!(
                    "registering partition {partition_key}={} of {stream}: {}: {}",
                    error.partition_values().join("/"),
                    detail.and_then(|d| d.error_code()).unwrap_or_default(),
                    detail.and_then(|d| d.error_message()).unwrap_or_default()
                );
            }
        }
        catalog.registered.extend(new.into_iter().map(|d| (stream.to_owned(), d.clone())));
        Ok(())
    }
}

/// What the worker knows of the Glue catalog: each table's storage descriptor (read once) and
/// the partitions it has registered.
#[derive(Default)]
struct Catalog {
    descriptors: HashMap<String, aws_sdk_glue::types::StorageDescriptor>,
    registered: HashSet<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_foreign_objects_are_ignored() {
        let name = file_name("client_tickets", 2, 1234, "parquet");
        assert_eq!(name, "client_tickets+2+00000000000000001234.parquet");
        let key = object_key("client_tickets", "dt", "2026-03-02", &name);
        assert_eq!(key, "client_tickets/dt=2026-03-02/client_tickets+2+00000000000000001234.parquet");
        assert_eq!(parse_key(&key), Some(("client_tickets", 2, 1234)));
        assert_eq!(parse_key("s/dt=x/a+b+c+7+00000000000000000009.jsonl"), Some(("a+b+c", 7, 9)));
        assert_eq!(parse_key("s/dt=x/_tmp.parquet"), None);
        assert_eq!(parse_key("s/dt=x/part-0000.snappy.parquet"), None);
    }
}
