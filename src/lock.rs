//! The environment lock (one apply or destroy at a time, held under a lease) in the
//! environment's state bucket (which also holds the gaps record, [`crate::gaps`]).
//!
//! The state bucket (`indutech-<env>-state`, [`crate::model::state_bucket_name`]) is not a
//! resource of the platform: it is created here when missing (versioned, S3-managed encryption
//! independent of the lake key, public access blocked, TLS-only policy) and destroy never
//! deletes it while it runs; only a complete destroy removes it, after releasing the lock
//! ([`remove_state_bucket`]).
//!
//! Protocol, on a versioned bucket:
//! - **acquire**: put `lock.json` with `If-None-Match: *`; of two takers exactly one succeeds
//!   (S3 answers the other 412). The object names its holder, and its lock id is also in the
//!   object's metadata (`x-amz-meta-lock-id`).
//! - **lease**: the holder renews every quarter of [`LEASE`] by putting the object again with
//!   `If-Match: <its last ETag>` (so it can only overwrite its own lock), then deletes its
//!   previous version by version id. A 412 or 404 means the lock was removed or taken: the
//!   lease is lost, and [`Lease::check`], which apply calls before starting each change, fails
//!   from then on (also when no renewal succeeded for three quarters of the lease).
//!   The object's `Last-Modified` is when it was last renewed by the store's clock: a refused
//!   taker shows it, and a lock not renewed for longer than its lease is said to be stale.
//! - **release** and **force-unlock** delete exactly the object versions of that lock (by
//!   version id; never a plain delete, which on a versioned bucket would hide whatever lock is
//!   current, and never a version of another lock), older versions first, so no older version
//!   of it can become current again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde::{Deserialize, Serialize};

use crate::model;
use crate::provider::Context;

/// Key of the lock object in the state bucket.
pub const LOCK_KEY: &str = "lock.json";
/// How long a lock stays valid without renewal; the holder renews it every quarter of this.
pub const LEASE: Duration = Duration::from_secs(60);
/// Metadata key holding the lock id on every version of the lock object.
const ID_METADATA: &str = "lock-id";

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id; `force-unlock` asks for it.
    pub id: String,
    /// `apply`, `destroy`...
    pub operation: String,
    /// `user@host (pid N)`.
    pub who: String,
    /// When it was taken, RFC 3339 UTC, by the holder's clock.
    pub created: String,
    /// The holder's lease, seconds (0: a lock written without a lease).
    #[serde(default)]
    pub lease_secs: u64,
}

/// A lock as read from the state bucket.
#[derive(Debug, Clone)]
pub struct Holder {
    /// What it says.
    pub info: LockInfo,
    /// The version read.
    pub version_id: Option<String>,
    /// When it was last written (taken or renewed), by S3's clock (`Last-Modified`).
    pub last_renewed: Option<chrono::DateTime<chrono::Utc>>,
}

impl Holder {
    /// "since T, last renewed at T2 by S3's clock (N s ago by this machine's clock; ...)".
    fn describe(&self) -> String {
        let info = &self.info;
        let mut out = format!("{} by {} since {}", info.operation, info.who, info.created);
        if let Some(renewed) = self.last_renewed {
            let age = (chrono::Utc::now() - renewed).num_seconds().max(0);
            let when = renewed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let state = if info.lease_secs == 0 {
                "it has no lease".to_owned()
            } else if age as u64 > info.lease_secs {
                format!("past its {} s lease: the holder is probably dead", info.lease_secs)
            } else {
                format!("within its {} s lease: the holder is alive", info.lease_secs)
            };
            out.push_str(&format!(
                ", last renewed at {when} by S3's clock (about {age} s ago by this machine's clock; {state})"
            ));
        }
        out
    }
}

/// The lease of a held lock, shared with its renewal task.
#[derive(Debug)]
pub struct Lease {
    duration: Duration,
    state: Mutex<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    /// ETag of the last version written, for the next `If-Match`.
    etag: String,
    /// Version ids written and not yet deleted, oldest first.
    versions: Vec<String>,
    /// When the last write succeeded (this machine's monotonic clock).
    renewed: Instant,
    /// Why the lease was lost, once it is.
    lost: Option<String>,
}

impl Lease {
    /// Whether the lock is still ours: Err with the reason once it was removed or taken by
    /// someone else, or when no renewal succeeded for three quarters of the lease.
    pub fn check(&self) -> Result<(), String> {
        let state = self.state.lock().expect("lease lock");
        if let Some(why) = &state.lost {
            return Err(why.clone());
        }
        let silent = state.renewed.elapsed();
        if silent > self.duration * 3 / 4 {
            return Err(format!(
                "the lock could not be renewed for {} s (lease {} s); another run may take it",
                silent.as_secs(),
                self.duration.as_secs()
            ));
        }
        Ok(())
    }
}

/// A held lock; release it with [`Lock::release`]. Dropping it stops the renewals (the lock
/// then goes stale after its lease).
#[derive(Debug)]
pub struct Lock {
    bucket: String,
    info: LockInfo,
    lease: Arc<Lease>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
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
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// The state bucket of the environment.
fn bucket(ctx: &Context) -> String {
    model::state_bucket_name(&ctx.environment)
}

/// The HTTP status of a failed S3 call, when it got an answer.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// An S3 failure with what was being done and the whole SDK error.
pub(crate) fn failed<E: std::error::Error + 'static>(what: &str, err: &SdkError<E, HttpResponse>) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", DisplayErrorContext(err))
}

/// Creates the state bucket when it does not exist: versioned, encrypted with S3-managed keys
/// (not the lake key, which destroy may schedule for deletion), public access blocked, a
/// TLS-only policy, tagged like every indutech resource.
///
/// Errors: S3 refused a call (the bucket name taken by another account included).
async fn ensure_state_bucket(ctx: &Context) -> anyhow::Result<String> {
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    match s3.head_bucket().bucket(&bucket).send().await {
        Ok(_) => return Ok(bucket),
        Err(err) if status(&err) == Some(404) => {}
        Err(err) => return Err(failed(&format!("reading the state bucket {bucket}"), &err)),
    }
    let mut request = s3.create_bucket().bucket(&bucket);
    if ctx.environment.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.environment.region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().and_then(|e| e.code()) == Some("BucketAlreadyOwnedByYou") => {}
        Err(err) if err.as_service_error().and_then(|e| e.code()) == Some("BucketAlreadyExists") => bail!(
            "the state bucket {bucket} already exists in another AWS account; set lake.bucket_suffix to pick other names"
        ),
        Err(err) => return Err(failed(&format!("creating the state bucket {bucket}"), &err)),
    }
    let tags: Vec<Tag> = model::tags(&ctx.environment, "state")
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()?;
    s3.put_bucket_tagging()
        .bucket(&bucket)
        .tagging(Tagging::builder().set_tag_set(Some(tags)).build()?)
        .send()
        .await
        .map_err(|e| failed(&format!("tagging the state bucket {bucket}"), &e))?;
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(|e| failed(&format!("versioning the state bucket {bucket}"), &e))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build()?,
        )
        .build();
    s3.put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(ServerSideEncryptionConfiguration::builder().rules(rule).build()?)
        .send()
        .await
        .map_err(|e| failed(&format!("encrypting the state bucket {bucket}"), &e))?;
    s3.put_public_access_block()
        .bucket(&bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed(&format!("blocking public access to the state bucket {bucket}"), &e))?;
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(crate::desired::tls_only_policy(&bucket).to_string())
        .send()
        .await
        .map_err(|e| failed(&format!("setting the TLS-only policy of the state bucket {bucket}"), &e))?;
    Ok(bucket)
}

/// Reads the current lock, if any.
///
/// Errors: S3 failed, or the lock object is not indutech's JSON.
pub async fn current(ctx: &Context) -> anyhow::Result<Option<Holder>> {
    let bucket = bucket(ctx);
    match ctx.aws.s3().get_object().bucket(&bucket).key(LOCK_KEY).send().await {
        Ok(out) => {
            let version_id = out.version_id().map(str::to_owned);
            let last_renewed = out
                .last_modified()
                .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
            let bytes = out.body.collect().await.context("reading the lock object")?.into_bytes();
            let info =
                serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{LOCK_KEY} is not a lock"))?;
            Ok(Some(Holder { info, version_id, last_renewed }))
        }
        Err(err) => {
            let code = err.as_service_error().and_then(|e| e.code());
            if status(&err) == Some(404) || matches!(code, Some("NoSuchKey" | "NoSuchBucket")) {
                Ok(None)
            } else {
                Err(failed(&format!("reading s3://{bucket}/{LOCK_KEY}"), &err))
            }
        }
    }
}

/// Takes the lock for `operation` under the default [`LEASE`], creating the state bucket if
/// needed.
///
/// Errors: as [`acquire_with_lease`].
pub async fn acquire(ctx: &Context, operation: &str) -> anyhow::Result<Lock> {
    acquire_with_lease(ctx, operation, LEASE).await
}

/// Takes the lock for `operation`, held under a lease of `lease` that a background task renews
/// every quarter of it until [`Lock::release`].
///
/// Errors: someone else holds it (the message names who, since when, when it was last renewed
/// by S3's clock, and the id to give `force-unlock` if that holder is dead), or S3 failed.
pub async fn acquire_with_lease(ctx: &Context, operation: &str, lease: Duration) -> anyhow::Result<Lock> {
    let bucket = ensure_state_bucket(ctx).await?;
    let s3 = ctx.aws.s3();
    let info = LockInfo {
        id: random_id(),
        operation: operation.to_owned(),
        who: who(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        lease_secs: lease.as_secs().max(1),
    };
    let body = serde_json::to_vec_pretty(&info)?;
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(LOCK_KEY)
        .if_none_match("*")
        .metadata(ID_METADATA, &info.id)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await;
    let (etag, version) = match put {
        Ok(out) => (out.e_tag().unwrap_or_default().to_owned(), out.version_id().unwrap_or("null").to_owned()),
        // 412: someone holds it; 409: a concurrent conditional write is in progress.
        Err(err) if matches!(status(&err), Some(412 | 409)) => {
            match current(ctx).await? {
                // Our own write, whose answer was lost and retried by the SDK.
                Some(h) if h.info.id == info.id => {
                    let head = s3
                        .head_object()
                        .bucket(&bucket)
                        .key(LOCK_KEY)
                        .send()
                        .await
                        .map_err(|e| failed("reading the lock just taken", &e))?;
                    (head.e_tag().unwrap_or_default().to_owned(), h.version_id.unwrap_or_else(|| "null".to_owned()))
                }
                Some(h) => bail!(
                    "environment {} is locked: {} (lock id {}). If that process is dead, run \
                     `indutech force-unlock --env {} {}`",
                    ctx.environment.name,
                    h.describe(),
                    h.info.id,
                    ctx.environment.name,
                    h.info.id
                ),
                None => bail!("environment {} was locked a moment ago; try again", ctx.environment.name),
            }
        }
        Err(err) => return Err(failed(&format!("writing the lock s3://{bucket}/{LOCK_KEY}"), &err)),
    };
    let lease = Arc::new(Lease {
        duration: lease,
        state: Mutex::new(LeaseState { etag, versions: vec![version], renewed: Instant::now(), lost: None }),
    });
    let renewer = tokio::spawn(renew(s3, bucket.clone(), info.clone(), lease.clone()));
    Ok(Lock { bucket, info, lease, renewer })
}

/// Renews `lease` every quarter of its duration until the task is aborted or the lock is
/// found removed or taken.
async fn renew(s3: aws_sdk_s3::Client, bucket: String, info: LockInfo, lease: Arc<Lease>) {
    let every = lease.duration / 4;
    loop {
        tokio::time::sleep(every).await;
        let etag = lease.state.lock().expect("lease lock").etag.clone();
        let body = match serde_json::to_vec_pretty(&info) {
            Ok(body) => body,
            Err(_) => continue,
        };
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(LOCK_KEY)
            .if_match(&etag)
            .metadata(ID_METADATA, &info.id)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await;
        match put {
            Ok(out) => {
                let previous = {
                    let mut state = lease.state.lock().expect("lease lock");
                    state.etag = out.e_tag().unwrap_or_default().to_owned();
                    state.versions.push(out.version_id().unwrap_or("null").to_owned());
                    state.renewed = Instant::now();
                    (state.versions.len() > 1).then(|| state.versions[0].clone())
                };
                // The previous version is no longer current: delete it, so that at most two
                // versions of this lock ever exist.
                if let Some(version) = previous
                    && delete_version(&s3, &bucket, &version).await.is_ok()
                {
                    lease.state.lock().expect("lease lock").versions.retain(|v| *v != version);
                }
            }
            Err(err) if matches!(status(&err), Some(412 | 404)) => {
                // Our previous renewal may have landed with its answer lost: then the current
                // version is still ours.
                let current = s3.head_object().bucket(&bucket).key(LOCK_KEY).send().await;
                let ours = current
                    .as_ref()
                    .ok()
                    .filter(|h| h.metadata().and_then(|m| m.get(ID_METADATA)) == Some(&info.id))
                    .map(|h| (h.e_tag().unwrap_or_default().to_owned(), h.version_id().unwrap_or("null").to_owned()));
                let mut state = lease.state.lock().expect("lease lock");
                match ours {
                    Some((etag, version)) => {
                        state.etag = etag;
                        if !state.versions.contains(&version) {
                            state.versions.push(version);
                        }
                        state.renewed = Instant::now();
                    }
                    None => {
                        state.lost = Some(format!(
                            "lock {} was removed or taken by another run (force-unlock?) while this one held it",
                            info.id
                        ));
                        tracing::warn!(message = "Lost the environment lock.", lock = %info.id);
                        return;
                    }
                }
            }
            Err(err) => {
                tracing::warn!(message = "Could not renew the environment lock; retrying.", error = %DisplayErrorContext(&err));
            }
        }
    }
}

/// Deletes one version of the lock object; a version already gone counts as deleted.
async fn delete_version(s3: &aws_sdk_s3::Client, bucket: &str, version: &str) -> anyhow::Result<()> {
    match s3.delete_object().bucket(bucket).key(LOCK_KEY).version_id(version).send().await {
        Ok(_) => Ok(()),
        Err(err) if status(&err) == Some(404) => Ok(()),
        // A version that no longer exists: AWS and LocalStack answer "Invalid version id".
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.code() == Some("InvalidArgument") && e.message().is_some_and(|m| m.contains("version id"))
            }) =>
        {
            Ok(())
        }
        Err(err) => Err(failed(&format!("deleting version {version} of s3://{bucket}/{LOCK_KEY}"), &err)),
    }
}

impl Lock {
    /// The lock's description.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lease, for checks before each change ([`Lease::check`]).
    pub fn lease(&self) -> Arc<Lease> {
        self.lease.clone()
    }

    /// Stops the renewals and deletes exactly the versions this lock wrote, oldest first; then,
    /// since a renewal already sent when the renewals stopped can still land, the current
    /// version too while it is this lock's (its id in the metadata).
    ///
    /// Errors: S3 failed (the lock then stays until it goes stale or is force-unlocked).
    pub async fn release(mut self, ctx: &Context) -> anyhow::Result<()> {
        self.renewer.abort();
        // Wait until the renewal task is gone (cancelled at its next await point).
        let _ = (&mut self.renewer).await;
        let versions = self.lease.state.lock().expect("lease lock").versions.clone();
        let s3 = ctx.aws.s3();
        for version in versions {
            delete_version(&s3, &self.bucket, &version).await.context("releasing the lock")?;
        }
        for _ in 0..3 {
            let current = s3.head_object().bucket(&self.bucket).key(LOCK_KEY).send().await;
            let Ok(head) = current else { break };
            if head.metadata().and_then(|m| m.get(ID_METADATA)) != Some(&self.info.id) {
                break;
            }
            let version = head.version_id().unwrap_or("null").to_owned();
            delete_version(&s3, &self.bucket, &version).await.context("releasing the lock")?;
        }
        Ok(())
    }
}

/// Removes the lock whose id is `id` (for a holder that died): every version of the lock object
/// that carries that id, older ones first, then the one read.
///
/// Errors: there is no lock, or it has another id (someone else took it since), or its holder
/// renewed it while it was being removed (it is alive: nothing of its current lock is removed),
/// or S3 failed.
pub async fn force_unlock(ctx: &Context, id: &str) -> anyhow::Result<LockInfo> {
    let Some(holder) = current(ctx).await? else { bail!("environment {} is not locked", ctx.environment.name) };
    if holder.info.id != id {
        bail!(
            "the lock of environment {} has id {}, not {id} ({}); nothing was removed",
            ctx.environment.name,
            holder.info.id,
            holder.describe()
        );
    }
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    let listed = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix(LOCK_KEY)
        .send()
        .await
        .map_err(|e| failed(&format!("listing the versions of s3://{bucket}/{LOCK_KEY}"), &e))?;
    let read = holder.version_id.clone().unwrap_or_else(|| "null".to_owned());
    for version in listed.versions().iter().filter(|v| v.key() == Some(LOCK_KEY) && v.is_latest() != Some(true)) {
        let Some(version_id) = version.version_id() else { continue };
        let head = s3.head_object().bucket(&bucket).key(LOCK_KEY).version_id(version_id).send().await;
        let same_lock =
            head.as_ref().is_ok_and(|h| h.metadata().and_then(|m| m.get(ID_METADATA)).map(String::as_str) == Some(id));
        if same_lock && version_id != read {
            delete_version(&s3, &bucket, version_id).await?;
        }
    }
    delete_version(&s3, &bucket, &read).await?;
    if let Some(now) = current(ctx).await?
        && now.info.id == id
    {
        bail!(
            "lock {id} was renewed while it was being removed: its holder is alive ({}); nothing of its current \
             lock was removed",
            now.describe()
        );
    }
    Ok(holder.info)
}

/// After a complete destroy, with the lock released: deletes the state bucket unless a lock is
/// in it (another run started). Returns whether it was deleted.
///
/// Errors: S3 failed for another reason than the bucket being in use or gone.
pub async fn remove_state_bucket(ctx: &Context) -> anyhow::Result<bool> {
    let bucket = bucket(ctx);
    let s3 = ctx.aws.s3();
    let listed = match s3.list_object_versions().bucket(&bucket).send().await {
        Ok(listed) => listed,
        Err(err) if status(&err) == Some(404) => return Ok(false),
        Err(err) => return Err(failed(&format!("listing s3://{bucket}"), &err)),
    };
    let versions: Vec<(String, String)> = listed
        .versions()
        .iter()
        .map(|v| (v.key(), v.version_id()))
        .chain(listed.delete_markers().iter().map(|m| (m.key(), m.version_id())))
        .filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or("null").to_owned())))
        .collect();
    if versions.iter().any(|(key, _)| key == LOCK_KEY) {
        return Ok(false);
    }
    for (key, version) in versions {
        s3.delete_object()
            .bucket(&bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await
            .map_err(|e| failed(&format!("deleting s3://{bucket}/{key}"), &e))?;
    }
    match s3.delete_bucket().bucket(&bucket).send().await {
        Ok(_) => Ok(true),
        // A run took the lock meanwhile: the bucket stays, with its lock.
        Err(err) if matches!(status(&err), Some(404 | 409)) => Ok(false),
        Err(err) => Err(failed(&format!("deleting the state bucket {bucket}"), &err)),
    }
}
