//! The data checks' sandbox: on a real account (`--write-test-data`) or when asked
//! (`--sandbox`), the smoke test writes only into things of its own and removes them all at
//! the end, so production's topics, consumer group, lake and catalog never see a synthetic
//! record:
//!
//! - topics `<topic>.smoke_<id>` (same partitions and replication as the stream's);
//! - the consumer group `<group>-smoke_<id>`, used by a worker that the smoke test runs
//!   in-process (this binary, the environment's settings) on those topics only;
//! - streams `<stream>_smoke_<id>`: the lake prefixes `<stream>_smoke_<id>/` in the curated and
//!   rejected buckets and Glue tables of that name in the environment's database (same
//!   columns, so the Spectrum/Athena rules still apply);
//! - the worker's protocol objects for those topics (`_indutech/commits/<topic>+N.json`,
//!   `_indutech/staging/<topic>+N/`).
//!
//! [`Sandbox::remove`] deletes every one of them, every object version included (the buckets
//! are versioned), and the Glue tables with their partitions; it runs whatever the checks
//! found, and reports what it could not remove. A sandbox left by a killed smoke test is found
//! by its id in the names ([`Sandbox::leftovers`]) and removed by the next sandboxed run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::error::RDKafkaErrorCode;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::stream::Stream;
use crate::plan::kind::Kind;
use crate::provider::Context;

/// The start of a sandbox's id, and after `_` the infix of its stream names.
const ID_PREFIX: &str = "smoke_";

/// The stream a sandbox stream stands for: `client_tickets` for `client_tickets_smoke_1a2b3c4d`,
/// the name itself for any other.
pub fn original_name(name: &str) -> &str {
    match name.rsplit_once(&format!("_{ID_PREFIX}")) {
        Some((original, id)) if is_id_suffix(id) => original,
        _ => name,
    }
}

/// The sandbox's own names, and its worker once started.
pub struct Sandbox {
    /// `smoke_<8 hex digits>`: the infix of every name.
    pub id: String,
    /// The environment's streams renamed into the sandbox (name and topic).
    pub streams: Vec<Arc<Stream>>,
    /// The sandbox worker's consumer group.
    pub group: String,
    worker: Option<(Arc<Notify>, JoinHandle<anyhow::Result<crate::worker::Summary>>)>,
}

impl Sandbox {
    /// The sandbox's names for `ctx`'s environment (nothing is created yet).
    pub fn new(ctx: &Context) -> Self {
        Self::with_id(ctx, format!("{ID_PREFIX}{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
    }

    /// The names of sandbox `id` (`smoke_<8 hex digits>`) for `ctx`'s environment.
    fn with_id(ctx: &Context, id: String) -> Self {
        let streams = ctx
            .environment
            .streams
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.name = format!("{}_{id}", s.name);
                s.topic = format!("{}.{id}", s.topic);
                Arc::new(s)
            })
            .collect();
        let group = format!("{}-{id}", crate::model::group_id(&ctx.environment));
        Self { id, streams, group, worker: None }
    }

    /// The sandboxes of this environment that earlier smoke tests left (killed before their
    /// removal), found by their ids in the Glue tables, the lake's top-level prefixes and the
    /// broker's topics.
    ///
    /// Errors: Glue, S3 or the broker could not be listed.
    pub async fn leftovers(ctx: &Context) -> anyhow::Result<Vec<Sandbox>> {
        let streams: Vec<&Stream> = ctx.environment.streams.iter().collect();
        let mut ids = std::collections::BTreeSet::new();
        let stream_id = |name: &str| -> Option<String> {
            let (original, id) = name.rsplit_once(&format!("_{ID_PREFIX}"))?;
            (streams.iter().any(|s| s.name == original) && is_id_suffix(id)).then(|| format!("{ID_PREFIX}{id}"))
        };
        let database = crate::model::glue_database_name(&ctx.environment);
        let mut pages = ctx.aws.glue().get_tables().database_name(&database).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing the Glue tables of {database}"))?;
            ids.extend(page.table_list().iter().filter_map(|t| stream_id(t.name())));
        }
        let lake = crate::worker::lake::Lake::new(&ctx.environment, &ctx.aws);
        for bucket in [&lake.curated, &lake.rejected] {
            let mut pages = ctx.aws.s3().list_objects_v2().bucket(bucket).delimiter("/").into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.with_context(|| format!("listing s3://{bucket}/"))?;
                ids.extend(
                    page.common_prefixes().iter().filter_map(|p| p.prefix()?.strip_suffix('/')).filter_map(stream_id),
                );
            }
        }
        for topic in crate::provider::kafka::topics(ctx).await? {
            if let Some((original, id)) = topic.rsplit_once(&format!(".{ID_PREFIX}"))
                && streams.iter().any(|s| s.topic == original)
                && is_id_suffix(id)
            {
                ids.insert(format!("{ID_PREFIX}{id}"));
            }
        }
        Ok(ids.into_iter().map(|id| Sandbox::with_id(ctx, id)).collect())
    }

    /// Creates the topics and the Glue tables, then starts the sandbox worker in this process.
    ///
    /// Errors: the broker refused a topic, Glue a table, or the worker could not start (its
    /// error is returned by [`Sandbox::remove`] otherwise).
    pub async fn start(&mut self, ctx: &Arc<Context>) -> anyhow::Result<()> {
        // The topics and Glue tables an apply would create for these streams.
        let mut sandboxed = ctx.environment.clone();
        sandboxed.streams = self.streams.iter().map(|s| (**s).clone()).collect();
        // The streams' only: the ERP tables are production's, never the sandbox's.
        sandboxed.erp = None;
        let components = [crate::plan::Component::Redpanda, crate::plan::Component::Catalog];
        let resources = crate::desired::resources(&sandboxed, &"0".repeat(64), &components);
        let ours = |r: &&crate::plan::Resource| matches!(r.kind(), Kind::KafkaTopic | Kind::GlueTable);
        for resource in resources.iter().filter(ours) {
            crate::provider::create(ctx, resource)
                .await
                .with_context(|| format!("creating the sandbox's {} {}", resource.kind(), resource.name))?;
        }
        let w = &ctx.environment.worker;
        let options = crate::worker::Options {
            streams: self.streams.clone(),
            group: self.group.clone(),
            // Short flushes: the smoke test waits for them.
            flush_interval: Duration::from_secs(w.flush_interval_secs.min(5)),
            target_file_size: usize::try_from(w.target_file_size_bytes).unwrap_or(usize::MAX),
            drain_timeout: Duration::from_millis(w.drain_timeout_ms),
            metrics_addr: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let shutdown = Arc::new(Notify::new());
        let handle = {
            let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
            tokio::spawn(async move { crate::worker::run_until(&ctx.environment, &ctx.aws, options, shutdown).await })
        };
        self.worker = Some((shutdown, handle));
        Ok(())
    }

    /// Stops the sandbox worker (drain) and deletes everything the sandbox wrote: its topics,
    /// its consumer group, every object version under its prefixes in the curated and rejected
    /// buckets, and its Glue tables with their partitions. Returns what was removed, one line
    /// per kind of thing.
    ///
    /// Errors: something could not be removed or is still there afterwards (all of them, each
    /// with its name); the worker's own failure is reported too.
    pub async fn remove(&mut self, ctx: &Arc<Context>) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut removed = Vec::new();
        if let Some((shutdown, handle)) = self.worker.take() {
            shutdown.notify_one();
            let deadline = Duration::from_millis(ctx.environment.worker.drain_timeout_ms) + Duration::from_secs(10);
            match tokio::time::timeout(deadline, handle).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(err))) => problems.push(format!("the sandbox worker failed: {err:#}")),
                Ok(Err(join)) => problems.push(format!("the sandbox worker panicked: {join}")),
                Err(_) => problems.push("the sandbox worker did not stop within its drain deadline".into()),
            }
        }
        let admin = crate::provider::kafka::admin(ctx).await?;
        let topics: Vec<&str> = self.streams.iter().map(|s| s.topic.as_str()).collect();
        // A topic already gone (an earlier, interrupted removal) is not an error.
        match admin.delete_topics(&topics, &crate::provider::kafka::options()).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                        Err((topic, code)) => problems.push(format!("topic {topic}: {code}")),
                    }
                }
            }
            Err(err) => problems.push(format!("deleting the sandbox topics: {err}")),
        }
        removed.push(format!("topics {}", topics.join(", ")));
        match admin.delete_groups(&[self.group.as_str()], &crate::provider::kafka::options()).await {
            Ok(results) => match results.into_iter().next() {
                // Never joined (a sandbox killed before its worker started), or already gone.
                Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => {}
                Some(Err((group, code))) => problems.push(format!("consumer group {group}: {code}")),
                _ => removed.push(format!("consumer group {}", self.group)),
            },
            Err(err) => problems.push(format!("deleting consumer group {}: {err}", self.group)),
        }
        let lake = crate::worker::lake::Lake::new(&ctx.environment, &ctx.aws);
        let mut prefixes: Vec<String> = Vec::new();
        for stream in &self.streams {
            prefixes.push(format!("{}/", stream.name));
            prefixes.push(format!("{}commits/{}+", crate::model::PROTOCOL_PREFIX, stream.topic));
            prefixes.push(format!("{}staging/{}+", crate::model::PROTOCOL_PREFIX, stream.topic));
        }
        let mut versions = 0usize;
        for bucket in [&lake.curated, &lake.rejected] {
            for prefix in &prefixes {
                match crate::provider::delete_object_versions(ctx, bucket, prefix).await {
                    Ok(n) => versions += n,
                    Err(err) => problems.push(format!("s3://{bucket}/{prefix}: {err:#}")),
                }
            }
        }
        removed.push(format!("{versions} object version(s) under {} prefixes", prefixes.len()));
        let database = crate::model::glue_database_name(&ctx.environment);
        for stream in &self.streams {
            match ctx.aws.glue().delete_table().database_name(&database).name(&stream.name).send().await {
                Ok(_) => {}
                Err(err) if err.as_service_error().is_some_and(|e| e.is_entity_not_found_exception()) => {}
                Err(err) => problems.push(format!("Glue table {database}.{}: {err}", stream.name)),
            }
        }
        removed.push(format!("Glue tables {} (their partitions with them)", self.names().join(", ")));
        // What is left, looked for again.
        for bucket in [&lake.curated, &lake.rejected] {
            for prefix in &prefixes {
                if let Ok(left) = lake.list_versions(bucket, prefix).await
                    && !left.is_empty()
                {
                    problems.push(format!("s3://{bucket}/{prefix}: {} object version(s) left", left.len()));
                }
            }
        }
        match topics_left(ctx, &topics).await {
            Ok(left) if left.is_empty() => {}
            Ok(left) => problems.push(format!("topics still there: {}", left.join(", "))),
            Err(err) => problems.push(format!("listing the broker's topics: {err:#}")),
        }
        for stream in &self.streams {
            if ctx.aws.glue().get_table().database_name(&database).name(&stream.name).send().await.is_ok() {
                problems.push(format!("Glue table {database}.{} is still there", stream.name));
            }
        }
        if problems.is_empty() {
            Ok(removed)
        } else {
            anyhow::bail!("the sandbox {} is not removed entirely: {}", self.id, problems.join("; "))
        }
    }

    fn names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.name.clone()).collect()
    }
}

/// Which of `topics` the broker's metadata still lists.
async fn topics_left(ctx: &Context, topics: &[&str]) -> anyhow::Result<Vec<String>> {
    Ok(crate::provider::kafka::topics(ctx).await?.into_iter().filter(|t| topics.contains(&t.as_str())).collect())
}

/// Whether `id` is the 8 hex digits after [`ID_PREFIX`] in a sandbox id.
fn is_id_suffix(id: &str) -> bool {
    id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
