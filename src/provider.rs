//! Observed state and the calls that change it: one module per AWS service.
//!
//! Every provider finds resources by their deterministic name (and the environment's tags),
//! never by a remembered ID, so a run that was killed half-way is picked up by the next one.
//! Creates pass the tags in the create call itself (no untagged window) and use idempotency
//! tokens where the API has them.
//!
//! An API the target does not implement (HTTP 501 from an emulator) is reported as
//! [`NotImplemented`]: observations become [`Observed::Unverifiable`] and apply reports the
//! step as not performed; neither is ever silently skipped.

mod directory;
mod dms;
mod ec2;
mod glue;
mod iam;
mod instances;
pub mod kafka;
mod kms;
pub mod local_worker;
mod logs;
mod redshift;
mod s3;
pub mod secrets;
pub mod vpn;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::aws::Aws;
use crate::config::environment::Environment;
use crate::plan::kind::{Kind, Service};
use crate::plan::{Action, Change, Component, Observed, Orphan, Resource};

/// What the providers share during one plan or apply.
#[derive(Debug)]
pub struct Context {
    /// The environment being planned or applied.
    pub environment: Environment,
    /// Its SDK configuration.
    pub aws: Aws,
    ids: Mutex<HashMap<String, String>>,
    account: tokio::sync::OnceCell<String>,
    kafka: tokio::sync::OnceCell<crate::kafka::Connection>,
    partial_gaps: Mutex<BTreeMap<String, String>>,
}

impl Context {
    /// A context for `environment`.
    pub fn new(environment: Environment, aws: Aws) -> Self {
        Self {
            environment,
            aws,
            ids: Mutex::new(HashMap::new()),
            account: tokio::sync::OnceCell::new(),
            kafka: tokio::sync::OnceCell::new(),
            partial_gaps: Mutex::new(BTreeMap::new()),
        }
    }

    /// The admin principal's connection to the environment's brokers, its credentials read once
    /// per process ([`crate::kafka::connection`]).
    ///
    /// Errors: the credentials' secret cannot be read.
    pub async fn kafka(&self) -> anyhow::Result<&crate::kafka::Connection> {
        self.kafka
            .get_or_try_init(|| crate::kafka::connection(&self.environment, &self.aws, crate::kafka::Principal::Admin))
            .await
    }

    /// Records that a step done on `address` left out part of its work because the target lacks
    /// an API (`why`: a [`NotImplemented`]'s text): the resource exists, its dependents can go
    /// on, and the gaps record keeps the part left out so that plan shows it as a notice.
    pub(crate) fn record_partial_gap(&self, address: &str, why: String) {
        self.partial_gaps.lock().expect("partial gaps lock").insert(address.to_owned(), why);
    }

    /// What [`Context::record_partial_gap`] recorded: address -> what was left out and why.
    pub fn partial_gaps(&self) -> BTreeMap<String, String> {
        self.partial_gaps.lock().expect("partial gaps lock").clone()
    }

    /// The AWS account id of the credentials in use (STS `GetCallerIdentity`, asked once),
    /// for the ARNs some APIs want (Redshift tagging).
    ///
    /// Errors: STS refused the credentials.
    pub async fn account_id(&self) -> anyhow::Result<&str> {
        let account = self
            .account
            .get_or_try_init(|| async {
                let out = self
                    .aws
                    .sts()
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| sdk_error(self, "sts", "GetCallerIdentity", "of the credentials", e))?;
                out.account.context("GetCallerIdentity returned no account")
            })
            .await?;
        Ok(account)
    }

    /// SHA-256 of the running binary, the worker's artifact (hashed once per process).
    ///
    /// Errors: the running executable cannot be read.
    pub fn binary_sha256(&self) -> anyhow::Result<String> {
        Ok(crate::artifact::Artifact::current()?.sha256.clone())
    }

    /// Records the AWS id of the resource at `address` (observed or just created).
    pub fn set_id(&self, address: &str, id: &str) {
        self.ids.lock().expect("ids lock").insert(address.to_owned(), id.to_owned());
    }

    /// The AWS id of `resource`'s dependency of type `kind` (its VPC, its route table...): the
    /// address comes from the resource's `depends_on`, never from the provider.
    ///
    /// Errors: `resource` depends on no resource of that type, or on several (a bug in desired
    /// state), or the dependency does not exist (apply it first).
    pub fn dependency_id(&self, resource: &Resource, kind: Kind) -> anyhow::Result<String> {
        let mut found = resource.depends_on.iter().filter(|d| Kind::parse(crate::plan::kind_of(d)) == Some(kind));
        match (found.next(), found.next()) {
            (Some(address), None) => self.id(address),
            (None, _) => anyhow::bail!("{} does not depend on any {kind} (a bug in desired state)", resource.address),
            (Some(_), Some(_)) => {
                anyhow::bail!("{} depends on several {kind} resources (a bug in desired state)", resource.address)
            }
        }
    }

    /// The AWS id of `address`, which apply has created or observed before its dependents.
    ///
    /// Errors: the dependency is unknown (it does not exist and was not created in this run).
    pub fn id(&self, address: &str) -> anyhow::Result<String> {
        self.ids
            .lock()
            .expect("ids lock")
            .get(address)
            .cloned()
            .with_context(|| format!("{address} does not exist (it is a dependency; apply it first)"))
    }

    /// Checks that the credentials are for the environment's account (`account_id`), as the
    /// first call of a plan, apply or destroy.
    ///
    /// Errors: STS refused the credentials, or they are for another account (nothing was read
    /// or changed).
    pub async fn verify_account(&self) -> anyhow::Result<()> {
        let account = self.account_id().await?;
        if account != self.environment.account_id {
            bail!(
                "the AWS credentials in use are for account {account}, but environment {} lives in account {} \
                 (account_id in {}); nothing was read or changed. Use that account's credentials (AWS_PROFILE...)",
                self.environment.name,
                self.environment.account_id,
                self.environment.file.display()
            );
        }
        Ok(())
    }

    /// EC2's endpoint when `service` and EC2 are served by two different emulators (moto and
    /// LocalStack on the bed): `service` then cannot see the VPC's subnets and groups. None on
    /// AWS and when one emulator serves both.
    pub(crate) fn apart_from_ec2(&self, service: &str) -> Option<&str> {
        let (theirs, ec2) = (self.aws.endpoint(service)?, self.aws.endpoint("ec2")?);
        (theirs != ec2).then_some(ec2)
    }

    fn endpoint_label(&self, service: &str) -> String {
        self.aws.endpoint(service).map_or_else(|| format!("AWS {service}"), str::to_owned)
    }
}

/// A step the target cannot perform: an emulator's gap. An API answered with HTTP 501, an
/// emulated API that answered HTTP 500 without any AWS error (moto's "not implemented"), or an
/// emulator that accepts work it never does (moto's Redshift Data API statements stay
/// `STARTED`).
#[derive(Debug, thiserror::Error)]
#[error("{operation} is not implemented by {endpoint} ({detail})")]
pub struct NotImplemented {
    /// The API operation, such as `CreateVpnConnectionRoute`.
    pub operation: String,
    /// The endpoint that answered.
    pub endpoint: String,
    /// How the gap showed, such as `HTTP 501`.
    pub detail: String,
}

/// Turns an SDK error into an error that names the operation and the resource, or into
/// [`NotImplemented`] for HTTP 501.
fn sdk_error<E>(
    ctx: &Context,
    service: &str,
    operation: &str,
    what: &str,
    err: SdkError<E, HttpResponse>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let gap = |detail: &str| NotImplemented {
        operation: operation.to_owned(),
        endpoint: ctx.endpoint_label(service),
        detail: detail.to_owned(),
    };
    if status == Some(501) {
        return gap("HTTP 501").into();
    }
    // AWS itself always names its error; an emulator that lacks an operation may answer a bare
    // 500 page instead. Only an overridden endpoint gets this reading.
    let emulated = ctx.aws.endpoint(service).is_some();
    if status == Some(500) && code(&err).is_none() && emulated {
        return gap("HTTP 500 without an AWS error").into();
    }
    // An emulator's success answer that the SDK cannot decode (moto's Redshift Data API sends
    // timestamps as ISO strings where the AWS JSON protocol has epoch seconds).
    if status == Some(200) && emulated {
        let why = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err));
        let why = why.split(" (").next().unwrap_or_default().trim_start_matches("service error: unhandled error: ");
        return gap(&format!("it answered, but not in the AWS protocol: {why}")).into();
    }
    let detail = match err.as_service_error().filter(|e| e.code().is_some()) {
        Some(service_error) => {
            format!("{}: {}", service_error.code().unwrap_or("error"), service_error.message().unwrap_or("no message"))
        }
        None => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)),
    };
    anyhow::anyhow!("{operation} {what} failed: {detail}")
}

/// The result of a delete call: done, or already gone (an error code for which `gone` is
/// true), or an error from [`sdk_error`]. Deletes are idempotent so that an interrupted
/// destroy can simply run again.
fn deleted<T, E>(
    ctx: &Context,
    service: &str,
    operation: &str,
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
    gone: impl Fn(&str) -> bool,
) -> anyhow::Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if code(&err).is_some_and(&gone) => Ok(()),
        Err(err) => Err(sdk_error(ctx, service, operation, what, err)),
    }
}

/// The error code of an SDK service error (`NoSuchBucket`...), if it is one.
fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// Reads what AWS has for `resource`; records its id in `ctx` when present.
///
/// Errors: the read failed for another reason than "does not exist" or "not implemented".
pub async fn observe(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let result = match Kind::of(&resource.address)?.service() {
        Service::S3(kind) => s3::observe(ctx, kind, resource).await,
        Service::Kms(kind) => kms::observe(ctx, kind, resource).await,
        Service::Logs(kind) => logs::observe(ctx, kind, resource).await,
        Service::Glue(kind) => glue::observe(ctx, kind, resource).await,
        Service::Ec2(kind) => ec2::observe(ctx, kind, resource).await,
        Service::Vpn(kind) => vpn::observe(ctx, kind, resource).await,
        Service::Iam(kind) => iam::observe(ctx, kind, resource).await,
        Service::Redshift(kind) => redshift::observe(ctx, kind, resource).await,
        Service::Instances(kind) => instances::observe(ctx, kind, resource).await,
        Service::Kafka(kind) => kafka::observe(ctx, kind, resource).await,
        Service::LocalWorker(kind) => local_worker::observe(ctx, kind, resource).await,
        Service::Directory(kind) => directory::observe(ctx, kind, resource).await,
        Service::Dms(kind) => dms::observe(ctx, kind, resource).await,
    };
    match result {
        Ok(observed) => {
            if let Observed::Present { id, .. } = &observed {
                ctx.set_id(&resource.address, id);
            }
            Ok(observed)
        }
        Err(err) => match err.downcast_ref::<NotImplemented>() {
            Some(gap) => Ok(Observed::Unverifiable { reason: format!("cannot read it: {gap}") }),
            None => Err(err.context(format!("reading {}", resource.address))),
        },
    }
}

/// What data a present data holder ([`Resource::holds_data`]) holds, in words ("12 object
/// versions"), or None when it is empty. The Redshift cluster always counts as holding data:
/// indutech does not look inside it.
///
/// Errors: the listing failed.
pub async fn data_held(ctx: &Context, resource: &Resource) -> anyhow::Result<Option<String>> {
    match resource.kind() {
        Kind::S3Bucket => s3::data_held(ctx, &resource.name).await,
        Kind::KafkaTopic => kafka::records_held(ctx, str_attr(resource, "name")?).await,
        Kind::RedshiftCluster => Ok(Some("the warehouse's tables (indutech does not look inside a cluster)".into())),
        other => bail!("{}: indutech cannot tell what data a {other} holds (a bug in desired state)", resource.address),
    }
}

/// `SELECT count(*)` of Glue table `table` through Redshift Spectrum: the external schema of
/// `statement` (the desired `aws_redshiftdata_statement.external_schema`, which names the
/// cluster, database and user) run through the Data API and waited for like apply's statements.
///
/// Errors: the statement failed (Redshift's message: a column type Spectrum cannot read fails
/// here), did not finish within `warehouse.statement_timeout_secs`, or returned no count; an
/// emulator that never runs statements gives a [`NotImplemented`].
pub async fn spectrum_count(ctx: &Context, statement: &Resource, table: &str) -> anyhow::Result<u64> {
    redshift::spectrum_count(ctx, statement, table).await
}

/// Deletes every object version and delete marker of `bucket` under `prefix`; returns how
/// many (see `s3::delete_versions`).
///
/// Errors: S3 failed or refused a delete.
pub async fn delete_object_versions(ctx: &Context, bucket: &str, prefix: &str) -> anyhow::Result<usize> {
    s3::delete_versions(ctx, bucket, prefix).await
}

/// Resources of `components` that exist in AWS for this environment but are not in `desired`.
///
/// Errors: a listing call failed.
pub async fn orphans(ctx: &Context, desired: &[Resource], components: &[Component]) -> anyhow::Result<Vec<Orphan>> {
    let wanted = |c: Component| components.is_empty() || components.contains(&c);
    let mut out = Vec::new();
    if wanted(Component::Catalog) {
        out.extend(glue::orphans(ctx, desired).await?);
    }
    if wanted(Component::Network) {
        out.extend(ec2::orphans(ctx, desired).await?);
    }
    if wanted(Component::Vpn) {
        out.extend(vpn::orphans(ctx, desired).await?);
    }
    if wanted(Component::Redpanda) || wanted(Component::Worker) {
        out.extend(instances::orphans(ctx, desired, components).await?);
    }
    if wanted(Component::Migration) {
        out.extend(dms::orphans(ctx, desired).await?);
    }
    Ok(out)
}

/// The half of a change a step performs: replace is a delete (with the other deletes, dependents
/// first) followed by a put (with the creates, dependencies first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Delete the existing resource (delete, first half of replace).
    Delete,
    /// Create or update it (create, update, second half of replace).
    Put,
}

/// The steps a change needs, in order.
pub fn steps(action: Action) -> &'static [Step] {
    match action {
        Action::Create | Action::Update => &[Step::Put],
        Action::Replace => &[Step::Delete, Step::Put],
        Action::Delete => &[Step::Delete],
    }
}

/// Performs one step of a planned change. `delete_data` is the plan's `--force-delete-data`: a
/// data holder that received data since the plan is deleted only with it.
///
/// Errors: the AWS call failed ([`NotImplemented`] in the chain when the target lacks it).
pub async fn perform(ctx: &Context, change: &Change, step: Step, delete_data: bool) -> anyhow::Result<()> {
    let service = Kind::of(&change.address)?.service();
    if step == Step::Delete {
        return match service {
            Service::S3(kind) => s3::delete(ctx, kind, change, delete_data).await,
            Service::Kms(kind) => kms::delete(ctx, kind, change).await,
            Service::Logs(kind) => logs::delete(ctx, kind, change).await,
            Service::Glue(kind) => glue::delete(ctx, kind, change).await,
            Service::Ec2(kind) => ec2::delete(ctx, kind, change).await,
            Service::Vpn(kind) => vpn::delete(ctx, kind, change).await,
            Service::Iam(kind) => iam::delete(ctx, kind, change).await,
            Service::Redshift(kind) => redshift::delete(ctx, kind, change, delete_data).await,
            Service::Instances(kind) => instances::delete(ctx, kind, change).await,
            Service::Kafka(kind) => kafka::delete(ctx, kind, change, delete_data).await,
            Service::LocalWorker(kind) => local_worker::delete(ctx, kind, change).await,
            Service::Directory(kind) => directory::delete(ctx, kind, change).await,
            Service::Dms(kind) => dms::delete(ctx, kind, change).await,
        };
    }
    let resource = change.desired.as_ref().context("a create or update without a desired resource (a bug)")?;
    if change.action == Action::Update {
        match service {
            Service::S3(kind) => s3::update(ctx, kind, resource, change).await,
            Service::Kms(kind) => kms::update(ctx, kind, resource, change).await,
            Service::Logs(kind) => logs::update(ctx, kind, resource, change).await,
            Service::Glue(kind) => glue::update(ctx, kind, resource, change).await,
            Service::Ec2(kind) => ec2::update(ctx, kind, resource, change).await,
            Service::Vpn(kind) => vpn::update(ctx, kind, resource, change).await,
            Service::Iam(kind) => iam::update(ctx, kind, resource, change).await,
            Service::Redshift(kind) => redshift::update(ctx, kind, resource, change).await,
            Service::Instances(kind) => instances::update(ctx, kind, resource, change).await,
            Service::Kafka(kind) => kafka::update(ctx, kind, resource, change).await,
            Service::LocalWorker(kind) => local_worker::update(ctx, kind, resource, change).await,
            Service::Directory(kind) => directory::update(ctx, kind, resource, change).await,
            Service::Dms(kind) => dms::update(ctx, kind, resource, change).await,
        }
    } else {
        create(ctx, resource).await
    }
}

/// Creates `resource` as its provider does in an apply; also outside a plan (the smoke test's
/// sandbox topics and Glue tables).
///
/// Errors: the AWS or Kafka call failed ([`NotImplemented`] in the chain when the target lacks
/// it).
pub async fn create(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    match Kind::of(&resource.address)?.service() {
        Service::S3(kind) => s3::create(ctx, kind, resource).await,
        Service::Kms(kind) => kms::create(ctx, kind, resource).await,
        Service::Logs(kind) => logs::create(ctx, kind, resource).await,
        Service::Glue(kind) => glue::create(ctx, kind, resource).await,
        Service::Ec2(kind) => ec2::create(ctx, kind, resource).await,
        Service::Vpn(kind) => vpn::create(ctx, kind, resource).await,
        Service::Iam(kind) => iam::create(ctx, kind, resource).await,
        Service::Redshift(kind) => redshift::create(ctx, kind, resource).await,
        Service::Instances(kind) => instances::create(ctx, kind, resource).await,
        Service::Kafka(kind) => kafka::create(ctx, kind, resource).await,
        Service::LocalWorker(kind) => local_worker::create(ctx, kind, resource).await,
        Service::Directory(kind) => directory::create(ctx, kind, resource).await,
        Service::Dms(kind) => dms::create(ctx, kind, resource).await,
    }
}

/// Polls `check` until it yields a value: at once, then after 0.2 s, doubling up to every 15 s
/// (every 1 s against an emulator), for at most `bound`.
///
/// Errors: `check` failed, or `bound` passed: "`what` after <bound>: `next`" (what the user
/// should do next, since AWS usually goes on with the work).
async fn wait_until<T, F, Fut>(
    ctx: &Context,
    service: &str,
    bound: Duration,
    what: &str,
    next: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    let ceiling = if ctx.aws.endpoint(service).is_some() { Duration::from_secs(1) } else { Duration::from_secs(15) };
    let mut pause = Duration::from_millis(200).min(ceiling);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if started.elapsed() >= bound {
            bail!("{what} after {}s: {next}", bound.as_secs());
        }
        tokio::time::sleep(pause.min(bound.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(ceiling);
    }
}

/// `name = value` pairs as observed attributes.
fn attributes(pairs: Vec<(&str, serde_json::Value)>) -> crate::plan::Attributes {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The strings of a JSON list attribute (names of subnets, groups, roles...); empty if absent.
fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// The string attribute `name` of `resource`.
fn str_attr<'a>(resource: &'a Resource, name: &str) -> anyhow::Result<&'a str> {
    resource.attributes.get(name).and_then(|v| v.as_str()).with_context(|| format!("{}: no `{name}`", resource.address))
}

/// Tag keys that were there `before` (an observed `tags` attribute) and that `resource` no
/// longer wants: what a tag update must remove before it writes the wanted tags.
fn stale_tag_keys(before: Option<&serde_json::Value>, resource: &Resource) -> Vec<String> {
    let wanted = resource.attributes.get("tags").and_then(serde_json::Value::as_object);
    before
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| !wanted.is_some_and(|w| w.contains_key(*k)))
        .cloned()
        .collect()
}

/// The `tags` attribute of `resource` as pairs.
fn tags_attr(resource: &Resource) -> Vec<(String, String)> {
    resource
        .attributes
        .get("tags")
        .and_then(|t| t.as_object())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Tags as the JSON object the attributes hold, without AWS's own `aws:` tags.
fn tags_value<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> serde_json::Value {
    let map: std::collections::BTreeMap<&str, &str> =
        pairs.into_iter().filter(|(k, _)| !k.starts_with("aws:")).collect();
    serde_json::json!(map)
}
