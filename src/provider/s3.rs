//! S3: the lake buckets and their settings, one resource per setting as in Terraform
//! (`aws_s3_bucket`, `_versioning`, `_server_side_encryption_configuration`,
//! `_public_access_block`, `_policy`, `_lifecycle_configuration`, `_logging`). Every one is found by the
//! bucket's deterministic name, which is also its id. `aws_s3_object` is the worker binary in
//! the artifacts bucket, found by its content-addressed key.

use std::future::Future;

use anyhow::{Context as _, bail};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    LoggingEnabled, NoncurrentVersionExpiration, ObjectIdentifier, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, Transition, TransitionStorageClass, VersioningConfiguration,
};
use serde_json::{Value, json};

use super::{Context, code, deleted, sdk_error, str_attr, tags_attr, tags_value};
use crate::model;
use crate::plan::kind::S3Kind;
use crate::plan::{Attributes, Change, Observed, Resource};

/// Runs a read; `Ok(None)` when the answer is 404 or one of the `absent` error codes.
async fn read<T, E>(
    ctx: &Context,
    operation: &str,
    bucket: &str,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    absent: &[&str],
) -> anyhow::Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match call.await {
        Ok(out) => Ok(Some(out)),
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            if status == Some(404) || code(&err).is_some_and(|c| c == "NoSuchBucket" || absent.contains(&c)) {
                Ok(None)
            } else {
                Err(sdk_error(ctx, "s3", operation, bucket, err))
            }
        }
    }
}

fn present(bucket: &str, pairs: Vec<(&str, Value)>) -> Observed {
    let attributes: Attributes = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Observed::Present { id: bucket.to_owned(), attributes }
}

pub(super) async fn observe(ctx: &Context, kind: S3Kind, resource: &Resource) -> anyhow::Result<Observed> {
    if kind == S3Kind::Object {
        return observe_object(ctx, resource).await;
    }
    let s3 = ctx.aws.s3();
    let bucket = resource.name.as_str();
    Ok(match kind {
        S3Kind::Bucket => {
            if read(ctx, "HeadBucket", bucket, s3.head_bucket().bucket(bucket).send(), &[]).await?.is_none() {
                return Ok(Observed::Absent);
            }
            let tags =
                read(ctx, "GetBucketTagging", bucket, s3.get_bucket_tagging().bucket(bucket).send(), &["NoSuchTagSet"])
                    .await?;
            let tags = tags.as_ref().map(|t| t.tag_set()).unwrap_or_default();
            present(
                bucket,
                vec![("bucket", json!(bucket)), ("tags", tags_value(tags.iter().map(|t| (t.key(), t.value()))))],
            )
        }
        S3Kind::Versioning => {
            let out =
                read(ctx, "GetBucketVersioning", bucket, s3.get_bucket_versioning().bucket(bucket).send(), &[]).await?;
            match out.as_ref().and_then(|o| o.status()) {
                Some(status) => present(bucket, vec![("status", json!(status.as_str()))]),
                None => Observed::Absent,
            }
        }
        S3Kind::Encryption => {
            let out = read(
                ctx,
                "GetBucketEncryption",
                bucket,
                s3.get_bucket_encryption().bucket(bucket).send(),
                &["ServerSideEncryptionConfigurationNotFoundError"],
            )
            .await?;
            let Some(rule) =
                out.as_ref().and_then(|o| o.server_side_encryption_configuration()).and_then(|c| c.rules().first())
            else {
                return Ok(Observed::Absent);
            };
            let default = rule.apply_server_side_encryption_by_default();
            present(
                bucket,
                vec![
                    ("bucket_key_enabled", json!(rule.bucket_key_enabled().unwrap_or(false))),
                    (
                        "kms_master_key_id",
                        default.and_then(|d| d.kms_master_key_id()).map_or(Value::Null, |k| json!(k)),
                    ),
                    ("sse_algorithm", json!(default.map(|d| d.sse_algorithm().as_str()).unwrap_or_default())),
                ],
            )
        }
        S3Kind::PublicAccessBlock => {
            let out = read(
                ctx,
                "GetPublicAccessBlock",
                bucket,
                s3.get_public_access_block().bucket(bucket).send(),
                &["NoSuchPublicAccessBlockConfiguration"],
            )
            .await?;
            let Some(c) = out.as_ref().and_then(|o| o.public_access_block_configuration()) else {
                return Ok(Observed::Absent);
            };
            present(
                bucket,
                vec![
                    ("block_public_acls", json!(c.block_public_acls().unwrap_or(false))),
                    ("block_public_policy", json!(c.block_public_policy().unwrap_or(false))),
                    ("ignore_public_acls", json!(c.ignore_public_acls().unwrap_or(false))),
                    ("restrict_public_buckets", json!(c.restrict_public_buckets().unwrap_or(false))),
                ],
            )
        }
        S3Kind::Policy => {
            let out = read(
                ctx,
                "GetBucketPolicy",
                bucket,
                s3.get_bucket_policy().bucket(bucket).send(),
                &["NoSuchBucketPolicy"],
            )
            .await?;
            let Some(policy) = out.as_ref().and_then(|o| o.policy()) else { return Ok(Observed::Absent) };
            let policy: Value = serde_json::from_str(policy).unwrap_or_else(|_| json!(policy));
            present(bucket, vec![("policy", policy)])
        }
        S3Kind::Lifecycle => {
            let out = read(
                ctx,
                "GetBucketLifecycleConfiguration",
                bucket,
                s3.get_bucket_lifecycle_configuration().bucket(bucket).send(),
                &["NoSuchLifecycleConfiguration"],
            )
            .await?;
            let Some(out) = out else { return Ok(Observed::Absent) };
            let rules: Vec<Value> = out
                .rules()
                .iter()
                .map(|rule| {
                    let transitions: Vec<Value> = rule
                        .transitions()
                        .iter()
                        .map(|t| json!({"days": t.days(), "storage_class": t.storage_class().map(|c| c.as_str())}))
                        .collect();
                    // A rule without a filter, or with an empty prefix, covers the whole bucket.
                    let prefix = rule.filter().and_then(|f| f.prefix()).unwrap_or_default();
                    json!({
                        "abort_incomplete_multipart_upload_days":
                            rule.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
                        "id": rule.id(),
                        "noncurrent_version_expiration_days":
                            rule.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()),
                        "prefix": prefix,
                        "status": rule.status().as_str(),
                        "transitions": transitions,
                    })
                })
                .collect();
            present(bucket, vec![("rules", Value::Array(rules))])
        }
        S3Kind::Logging => {
            let out = read(ctx, "GetBucketLogging", bucket, s3.get_bucket_logging().bucket(bucket).send(), &[]).await?;
            let Some(enabled) = out.as_ref().and_then(|o| o.logging_enabled()) else { return Ok(Observed::Absent) };
            present(
                bucket,
                vec![
                    ("target_bucket", json!(enabled.target_bucket())),
                    ("target_prefix", json!(enabled.target_prefix())),
                ],
            )
        }
        other => bail!("s3 provider: unknown resource type {other}"),
    })
}

fn tagging(resource: &Resource) -> anyhow::Result<Tagging> {
    let tags = tags_attr(resource)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tagging::builder().set_tag_set(Some(tags)).build()?)
}

pub(super) async fn create(ctx: &Context, kind: S3Kind, resource: &Resource) -> anyhow::Result<()> {
    if kind == S3Kind::Object {
        return upload_binary(ctx, resource).await;
    }
    let s3 = ctx.aws.s3();
    let bucket = resource.name.as_str();
    if kind == S3Kind::Bucket {
        let mut request = s3.create_bucket().bucket(bucket);
        if ctx.environment.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(ctx.environment.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {}
            // A previous, interrupted apply created it: carry on.
            Err(err) if code(&err) == Some("BucketAlreadyOwnedByYou") => {}
            Err(err) if code(&err) == Some("BucketAlreadyExists") => {
                bail!(
                    "bucket {bucket} already exists in another AWS account; set lake.bucket_suffix to pick other names"
                )
            }
            Err(err) => return Err(sdk_error(ctx, "s3", "CreateBucket", bucket, err)),
        }
        ctx.set_id(&resource.address, bucket);
    }
    put(ctx, kind, resource).await
}

pub(super) async fn update(ctx: &Context, kind: S3Kind, resource: &Resource, _change: &Change) -> anyhow::Result<()> {
    if kind == S3Kind::Object {
        return upload_binary(ctx, resource).await;
    }
    put(ctx, kind, resource).await
}

/// Writes the desired setting; every S3 setting is a whole-document put.
async fn put(ctx: &Context, kind: S3Kind, resource: &Resource) -> anyhow::Result<()> {
    let s3 = ctx.aws.s3();
    let bucket = resource.name.as_str();
    let a = &resource.attributes;
    match kind {
        S3Kind::Bucket => {
            s3.put_bucket_tagging()
                .bucket(bucket)
                .tagging(tagging(resource)?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketTagging", bucket, e))?;
        }
        S3Kind::Versioning => {
            let status = BucketVersioningStatus::from(str_attr(resource, "status")?);
            s3.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketVersioning", bucket, e))?;
        }
        S3Kind::Encryption => {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(str_attr(resource, "sse_algorithm")?))
                .set_kms_master_key_id(a["kms_master_key_id"].as_str().map(str::to_owned))
                .build()?;
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default)
                .bucket_key_enabled(a["bucket_key_enabled"].as_bool().unwrap_or(true))
                .build();
            s3.put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(ServerSideEncryptionConfiguration::builder().rules(rule).build()?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketEncryption", bucket, e))?;
        }
        S3Kind::Logging => {
            let enabled = LoggingEnabled::builder()
                .target_bucket(str_attr(resource, "target_bucket")?)
                .target_prefix(str_attr(resource, "target_prefix")?)
                .build()?;
            s3.put_bucket_logging()
                .bucket(bucket)
                .bucket_logging_status(BucketLoggingStatus::builder().logging_enabled(enabled).build())
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketLogging", bucket, e))?;
        }
        S3Kind::PublicAccessBlock => {
            let flag = |name: &str| a.get(name).and_then(Value::as_bool).unwrap_or(true);
            let config = PublicAccessBlockConfiguration::builder()
                .block_public_acls(flag("block_public_acls"))
                .block_public_policy(flag("block_public_policy"))
                .ignore_public_acls(flag("ignore_public_acls"))
                .restrict_public_buckets(flag("restrict_public_buckets"))
                .build();
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(config)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutPublicAccessBlock", bucket, e))?;
        }
        S3Kind::Policy => {
            let policy = serde_json::to_string(&a["policy"])?;
            s3.put_bucket_policy()
                .bucket(bucket)
                .policy(policy)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketPolicy", bucket, e))?;
        }
        S3Kind::Lifecycle => {
            let mut rules = Vec::new();
            for rule in a["rules"].as_array().context("lifecycle rules")? {
                let mut builder = LifecycleRule::builder()
                    .id(rule["id"].as_str().unwrap_or("indutech-lifecycle"))
                    .status(ExpirationStatus::from(rule["status"].as_str().unwrap_or("Enabled")))
                    .filter(LifecycleRuleFilter::builder().prefix(rule["prefix"].as_str().unwrap_or_default()).build());
                if let Some(days) = rule["noncurrent_version_expiration_days"].as_i64() {
                    builder = builder.noncurrent_version_expiration(
                        NoncurrentVersionExpiration::builder().noncurrent_days(days as i32).build(),
                    );
                }
                if let Some(days) = rule["abort_incomplete_multipart_upload_days"].as_i64() {
                    builder = builder.abort_incomplete_multipart_upload(
                        AbortIncompleteMultipartUpload::builder().days_after_initiation(days as i32).build(),
                    );
                }
                for t in rule["transitions"].as_array().into_iter().flatten() {
                    builder = builder.transitions(
                        Transition::builder()
                            .days(t["days"].as_i64().unwrap_or_default() as i32)
                            .storage_class(TransitionStorageClass::from(
                                t["storage_class"].as_str().unwrap_or_default(),
                            ))
                            .build(),
                    );
                }
                rules.push(builder.build()?);
            }
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build()?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "s3", "PutBucketLifecycleConfiguration", bucket, e))?;
        }
        other => bail!("s3 provider: unknown resource type {other}"),
    }
    Ok(())
}

/// Whether `zone`'s objects are indutech's own (the artifacts zone: binaries and the lock),
/// which destroy may remove without `--force-delete-data`.
fn holds_only_indutech_objects(address: &str) -> bool {
    address.ends_with(".artifacts")
}

pub(super) async fn delete(ctx: &Context, kind: S3Kind, change: &Change, delete_data: bool) -> anyhow::Result<()> {
    let s3 = ctx.aws.s3();
    let bucket = change.name.as_str();
    // The plan keeps a bucket that holds data, with everything that protects it; one that
    // received data since the plan loses none of its protections either.
    if kind != S3Kind::Object
        && !delete_data
        && !holds_only_indutech_objects(&change.address)
        && let Some(what) = data_held(ctx, bucket).await?
    {
        bail!(
            "bucket {bucket} holds data ({what}), received since the plan; {} was not deleted. Plan again (destroy \
             keeps such a bucket and what protects it), or run with --force-delete-data to delete the data too",
            change.address
        );
    }
    match kind {
        S3Kind::Bucket => {
            delete_versions(ctx, bucket, "").await?;
            let result = s3.delete_bucket().bucket(bucket).send().await;
            deleted(ctx, "s3", "DeleteBucket", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Versioning => {
            // Versioning cannot be removed from a bucket, only suspended (as Terraform does).
            let result = s3
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build(),
                )
                .send()
                .await;
            deleted(ctx, "s3", "PutBucketVersioning", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Encryption => {
            let result = s3.delete_bucket_encryption().bucket(bucket).send().await;
            deleted(ctx, "s3", "DeleteBucketEncryption", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Logging => {
            // An empty status turns logging off.
            let result = s3
                .put_bucket_logging()
                .bucket(bucket)
                .bucket_logging_status(BucketLoggingStatus::builder().build())
                .send()
                .await;
            deleted(ctx, "s3", "PutBucketLogging", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::PublicAccessBlock => {
            let result = s3.delete_public_access_block().bucket(bucket).send().await;
            deleted(ctx, "s3", "DeletePublicAccessBlock", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Policy => {
            let result = s3.delete_bucket_policy().bucket(bucket).send().await;
            deleted(ctx, "s3", "DeleteBucketPolicy", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Lifecycle => {
            let result = s3.delete_bucket_lifecycle().bucket(bucket).send().await;
            deleted(ctx, "s3", "DeleteBucketLifecycle", bucket, result, |c| c == "NoSuchBucket")
        }
        S3Kind::Object => {
            // Every version of the key: the artifacts bucket is versioned.
            let key = change.name.as_str();
            let bucket = model::bucket_name(&ctx.environment, "artifacts");
            let out = match s3.list_object_versions().bucket(&bucket).prefix(key).send().await {
                Ok(out) => out,
                Err(err) if code(&err) == Some("NoSuchBucket") => return Ok(()),
                Err(err) => return Err(sdk_error(ctx, "s3", "ListObjectVersions", &bucket, err)),
            };
            let mut ids = Vec::new();
            for (k, version) in out
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(out.delete_markers().iter().map(|m| (m.key(), m.version_id())))
                .filter(|(k, _)| *k == Some(key))
            {
                ids.push(
                    ObjectIdentifier::builder()
                        .set_key(k.map(str::to_owned))
                        .set_version_id(version.map(str::to_owned))
                        .build()?,
                );
            }
            if ids.is_empty() {
                return Ok(());
            }
            let result = s3
                .delete_objects()
                .bucket(&bucket)
                .delete(Delete::builder().set_objects(Some(ids)).quiet(true).build()?)
                .send()
                .await;
            deleted(ctx, "s3", "DeleteObjects", key, result, |c| c == "NoSuchBucket")
        }
    }
}

/// The worker binary object: present with its recorded digest (`x-amz-meta-sha256`).
async fn observe_object(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let bucket = str_attr(resource, "bucket")?;
    let key = str_attr(resource, "key")?;
    let call = ctx.aws.s3().head_object().bucket(bucket).key(key).send();
    let Some(head) = read(ctx, "HeadObject", key, call, &["NoSuchKey", "NotFound"]).await? else {
        return Ok(Observed::Absent);
    };
    let sha256 = head.metadata().and_then(|m| m.get("sha256")).cloned();
    Ok(Observed::Present {
        id: format!("s3://{bucket}/{key}"),
        attributes: [("bucket", json!(bucket)), ("key", json!(key)), ("sha256", json!(sha256))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    })
}

/// Uploads the running binary (the worker's artifact) in one streamed PUT (S3 takes up to 5 GB
/// that way), its digest in the object's metadata.
///
/// Errors: the running binary is not the one the plan was made with, or the upload failed.
async fn upload_binary(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let bucket = str_attr(resource, "bucket")?;
    let key = str_attr(resource, "key")?;
    let artifact = crate::artifact::Artifact::current()?;
    let want = str_attr(resource, "sha256")?;
    if artifact.sha256 != want {
        bail!(
            "{}: this indutech binary (sha256 {}) is not the one the plan was made with ({want}); plan again",
            resource.address,
            artifact.sha256
        );
    }
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&artifact.path)
        .await
        .with_context(|| format!("reading {}", artifact.path.display()))?;
    ctx.aws
        .s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .content_type("application/octet-stream")
        .metadata("sha256", &artifact.sha256)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "s3", "PutObject", key, e))?;
    ctx.set_id(&resource.address, &format!("s3://{bucket}/{key}"));
    Ok(())
}

/// What `bucket` holds ("12 object versions", counting delete markers, which keep a deleted
/// object's older versions readable), or None when it is empty or gone.
///
/// Errors: the listing failed.
pub(super) async fn data_held(ctx: &Context, bucket: &str) -> anyhow::Result<Option<String>> {
    let versions = list_versions(ctx, bucket, "").await?;
    Ok(match versions.len() {
        0 => None,
        n @ 1..1000 => Some(format!("{n} object version(s)")),
        _ => Some("1000 or more object versions".to_owned()),
    })
}

/// Up to 1000 object versions and delete markers of `bucket` under `prefix` (`""`: all).
async fn list_versions(ctx: &Context, bucket: &str, prefix: &str) -> anyhow::Result<Vec<ObjectIdentifier>> {
    let s3 = ctx.aws.s3();
    let out = match s3.list_object_versions().bucket(bucket).prefix(prefix).max_keys(1000).send().await {
        Ok(out) => out,
        Err(err) if code(&err) == Some("NoSuchBucket") => return Ok(Vec::new()),
        Err(err) => return Err(sdk_error(ctx, "s3", "ListObjectVersions", bucket, err)),
    };
    let mut ids = Vec::new();
    for (key, version) in out
        .versions()
        .iter()
        .map(|v| (v.key(), v.version_id()))
        .chain(out.delete_markers().iter().map(|m| (m.key(), m.version_id())))
    {
        if let Some(key) = key {
            ids.push(ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_owned)).build()?);
        }
    }
    Ok(ids)
}

/// Deletes every object version and delete marker of `bucket` under `prefix` (`""`: the whole
/// bucket's); returns how many. A missing bucket has none.
///
/// Errors: a listing or a DeleteObjects call failed, or S3 refused one of the deletes.
pub(crate) async fn delete_versions(ctx: &Context, bucket: &str, prefix: &str) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut versions = list_versions(ctx, bucket, prefix).await?;
    while !versions.is_empty() {
        count += versions.len();
        let out = ctx
            .aws
            .s3()
            .delete_objects()
            .bucket(bucket)
            .delete(Delete::builder().set_objects(Some(versions)).quiet(true).build()?)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "s3", "DeleteObjects", bucket, e))?;
        if let Some(error) = out.errors().first() {
            bail!(
                "DeleteObjects s3://{bucket}/{}: {}",
                error.key().unwrap_or_default(),
                error.message().unwrap_or("refused")
            );
        }
        versions = list_versions(ctx, bucket, prefix).await?;
    }
    Ok(count)
}
