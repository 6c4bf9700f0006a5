//! The gaps record: the creates the target could not perform at the last apply (an emulator's
//! missing API), kept as `gaps.json` in the environment's state bucket so that the next plan
//! shows them as notices, not as changes. Written only under the lock ([`crate::lock`]).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;

use crate::lock::{failed, status};
use crate::provider::Context;

/// Key of the gaps record in the state bucket.
pub const GAPS_KEY: &str = "gaps.json";

fn bucket(ctx: &Context) -> String {
    crate::model::state_bucket_name(&ctx.environment)
}

/// Address -> why the target could not create it, as recorded by the last apply (empty when
/// there is no record or no state bucket yet).
///
/// Errors: S3 failed, or the record is not JSON.
pub async fn read(ctx: &Context) -> anyhow::Result<BTreeMap<String, String>> {
    let bucket = bucket(ctx);
    match ctx.aws.s3().get_object().bucket(&bucket).key(GAPS_KEY).send().await {
        Ok(out) => {
            let bytes = out.body.collect().await.context("reading the gaps record")?.into_bytes();
            serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{GAPS_KEY} is not a gaps record"))
        }
        Err(err) => {
            let code = err.as_service_error().and_then(|e| e.code());
            if status(&err) == Some(404) || matches!(code, Some("NoSuchKey" | "NoSuchBucket")) {
                Ok(Default::default())
            } else {
                Err(failed(&format!("reading s3://{bucket}/{GAPS_KEY}"), &err))
            }
        }
    }
}

/// Writes the gaps record (deletes it when empty). Call it while holding the lock.
///
/// Errors: S3 failed.
pub async fn write(ctx: &Context, gaps: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    if gaps.is_empty() {
        s3.delete_object()
            .bucket(&bucket)
            .key(GAPS_KEY)
            .send()
            .await
            .map_err(|e| failed(&format!("deleting s3://{bucket}/{GAPS_KEY}"), &e))?;
    } else {
        s3.put_object()
            .bucket(&bucket)
            .key(GAPS_KEY)
            .content_type("application/json")
            .body(ByteStream::from(serde_json::to_vec_pretty(gaps)?))
            .send()
            .await
            .map_err(|e| failed(&format!("writing s3://{bucket}/{GAPS_KEY}"), &e))?;
    }
    Ok(())
}
