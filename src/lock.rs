//! The environment lock: one apply or destroy at a time per environment.
//!
//! The lock is the object `_indutech/lock.json` in the environment's artifacts bucket, written
//! with a conditional put (`If-None-Match: *`), so two writers cannot both succeed. It says
//! who holds it (user, host, process) and since when. A holder that died (SIGKILL, a lost
//! machine) leaves it behind: `indutech force-unlock --env NAME LOCK_ID` removes it.
//! The artifacts bucket is created here when missing (tagged like every lake bucket), since
//! the lock must exist before the first plan of the first apply.

use anyhow::{Context as _, bail};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::model;
use crate::plan::Component;
use crate::provider::Context;

/// Key of the lock object in the artifacts bucket (a leading `_`: readers of the lake skip it).
pub const LOCK_KEY: &str = "_indutech/lock.json";

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id; `force-unlock` asks for it.
    pub id: String,
    /// `apply` or `destroy`.
    pub operation: String,
    /// `user@host (pid N)`.
    pub who: String,
    /// When it was taken, RFC 3339 UTC.
    pub created: String,
}

/// A held lock; release it with [`Lock::release`].
#[derive(Debug)]
pub struct Lock {
    bucket: String,
    info: LockInfo,
}

fn who() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The artifacts bucket of the environment.
fn bucket(ctx: &Context) -> String {
    model::bucket_name(&ctx.environment, "artifacts")
}

/// Reads the current lock, if any.
///
/// Errors: S3 failed, or the lock object is not indutech's JSON.
pub async fn current(ctx: &Context) -> anyhow::Result<Option<LockInfo>> {
    let bucket = bucket(ctx);
    match ctx.aws.s3().get_object().bucket(&bucket).key(LOCK_KEY).send().await {
        Ok(out) => {
            let bytes = out.body.collect().await.context("reading the lock object")?.into_bytes();
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{LOCK_KEY} is not a lock"))?))
        }
        Err(err) => {
            let code = err.as_service_error().map(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e));
            if matches!(code, Some(Some("NoSuchKey" | "NoSuchBucket"))) {
                Ok(None)
            } else {
                Err(anyhow::anyhow!(
                    "reading s3://{bucket}/{LOCK_KEY}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&err)
                ))
            }
        }
    }
}

/// Takes the lock for `operation`, creating the artifacts bucket if needed.
///
/// Errors: someone else holds it (the message names who and since when, and the id to give
/// `force-unlock` if that holder is dead), or S3 failed.
pub async fn acquire(ctx: &Context, operation: &str) -> anyhow::Result<Lock> {
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    if s3.head_bucket().bucket(&bucket).send().await.is_err() {
        let resource = crate::desired::resources(&ctx.environment, "", &[Component::Lake])
            .into_iter()
            .find(|r| r.address == "aws_s3_bucket.artifacts")
            .context("the artifacts bucket is always desired")?;
        let change = crate::plan::Change {
            address: resource.address.clone(),
            component: resource.component,
            name: resource.name.clone(),
            action: crate::plan::Action::Create,
            id: None,
            attributes: Vec::new(),
            replace_reasons: Vec::new(),
            desired: Some(resource),
            depends_on: Vec::new(),
        };
        crate::provider::perform(ctx, &change, crate::provider::Step::Put)
            .await
            .with_context(|| format!("creating the artifacts bucket {bucket}, which holds the lock"))?;
    }
    let info = LockInfo {
        id: random_id(),
        operation: operation.to_owned(),
        who: who(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let body = serde_json::to_vec_pretty(&info)?;
    match s3
        .put_object()
        .bucket(&bucket)
        .key(LOCK_KEY)
        .if_none_match("*")
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
    {
        Ok(_) => Ok(Lock { bucket, info }),
        Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
            let holder = current(ctx).await?;
            match holder {
                Some(h) => bail!(
                    "environment {} is locked: {} by {} since {} (lock id {}). If that process is dead, run \
                     `indutech force-unlock --env {} {}`",
                    ctx.environment.name,
                    h.operation,
                    h.who,
                    h.created,
                    h.id,
                    ctx.environment.name,
                    h.id
                ),
                None => bail!("environment {} was locked a moment ago; try again", ctx.environment.name),
            }
        }
        Err(err) => Err(anyhow::anyhow!(
            "writing the lock s3://{bucket}/{LOCK_KEY}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&err)
        )),
    }
}

impl Lock {
    /// The lock's description.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Releases the lock if it is still ours (destroy may have deleted the bucket with it).
    ///
    /// Errors: S3 failed.
    pub async fn release(self, ctx: &Context) -> anyhow::Result<()> {
        match current(ctx).await? {
            Some(info) if info.id == self.info.id => {
                ctx.aws.s3().delete_object().bucket(&self.bucket).key(LOCK_KEY).send().await.map_err(|e| {
                    anyhow::anyhow!("releasing the lock: {}", aws_sdk_s3::error::DisplayErrorContext(&e))
                })?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Key of the record of steps the target could not perform at the last apply.
pub const GAPS_KEY: &str = "_indutech/gaps.json";

/// Address -> why the target could not create it, as recorded by the last apply (empty when
/// there is no record or no artifacts bucket yet).
///
/// Errors: S3 failed, or the record is not JSON.
pub async fn read_gaps(ctx: &Context) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let bucket = bucket(ctx);
    match ctx.aws.s3().get_object().bucket(&bucket).key(GAPS_KEY).send().await {
        Ok(out) => {
            let bytes = out.body.collect().await.context("reading the gaps record")?.into_bytes();
            serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{GAPS_KEY} is not a gaps record"))
        }
        Err(err) => {
            let code = err.as_service_error().map(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e));
            if matches!(code, Some(Some("NoSuchKey" | "NoSuchBucket"))) {
                Ok(Default::default())
            } else {
                Err(anyhow::anyhow!(
                    "reading s3://{bucket}/{GAPS_KEY}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&err)
                ))
            }
        }
    }
}

/// Writes the gaps record (deletes it when empty). Call it while holding the lock.
///
/// Errors: S3 failed.
pub async fn write_gaps(ctx: &Context, gaps: &std::collections::BTreeMap<String, String>) -> anyhow::Result<()> {
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("writing s3://{bucket}/{GAPS_KEY}: {e}");
    if gaps.is_empty() {
        if let Err(err) = s3.delete_object().bucket(&bucket).key(GAPS_KEY).send().await {
            return Err(failed(&aws_sdk_s3::error::DisplayErrorContext(&err)));
        }
    } else if let Err(err) = s3
        .put_object()
        .bucket(&bucket)
        .key(GAPS_KEY)
        .content_type("application/json")
        .body(ByteStream::from(serde_json::to_vec_pretty(gaps)?))
        .send()
        .await
    {
        return Err(failed(&aws_sdk_s3::error::DisplayErrorContext(&err)));
    }
    Ok(())
}

/// Removes the lock whose id is `id` (for a holder that died).
///
/// Errors: there is no lock, or it has another id (someone else took it since), or S3 failed.
pub async fn force_unlock(ctx: &Context, id: &str) -> anyhow::Result<LockInfo> {
    let Some(info) = current(ctx).await? else { bail!("environment {} is not locked", ctx.environment.name) };
    if info.id != id {
        bail!(
            "the lock of environment {} has id {}, not {id} ({} by {} since {}); nothing was removed",
            ctx.environment.name,
            info.id,
            info.operation,
            info.who,
            info.created
        );
    }
    ctx.aws
        .s3()
        .delete_object()
        .bucket(bucket(ctx))
        .key(LOCK_KEY)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("removing the lock: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    Ok(info)
}
