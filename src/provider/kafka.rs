//! Kafka topics, one per stream, through the Kafka admin API (rdkafka) of the bootstrap
//! servers: `redpanda.bootstrap_servers`, or the brokers' fixed IPs on port 9092. A topic is
//! observed in the cluster metadata (partitions, replicas of partition 0); partitions can only
//! grow; a topic is deleted only with `--force-delete-data` (it holds records).

use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::RDKafkaErrorCode;
use serde_json::json;

use super::{Context, str_attr};
use crate::plan::kind::KafkaKind;
use crate::plan::{Change, Observed, Resource};

/// How long a metadata request or an admin operation may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An admin client of the environment's bootstrap servers, as the admin principal
/// ([`Context::kafka`]).
///
/// Errors: the credentials cannot be read; librdkafka refused the configuration.
pub async fn admin(ctx: &Context) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ctx.kafka()
        .await?
        .config()
        .set("socket.timeout.ms", TIMEOUT.as_millis().to_string())
        .create()
        .context("creating the Kafka admin client")
}

/// Admin request options: [`TIMEOUT`] for the operation and the request.
pub fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT))
}

/// The names of every topic of the cluster.
///
/// Errors: the brokers did not answer the metadata request.
pub async fn topics(ctx: &Context) -> anyhow::Result<Vec<String>> {
    let connection = ctx.kafka().await?.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = connection.metadata(&connection.reader(None)?, None, TIMEOUT)?;
        Ok(metadata.topics().iter().map(|t| t.name().to_owned()).collect())
    })
    .await
    .context("the metadata read panicked")?
}

/// `(partitions, replication factor)` of `topic`, or None when the cluster has no such topic.
async fn describe(ctx: &Context, topic: &str) -> anyhow::Result<Option<(usize, usize)>> {
    let connection = ctx.kafka().await?.clone();
    let servers = connection.bootstrap.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let metadata = connection.metadata(&connection.reader(None)?, Some(&topic), TIMEOUT)?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
        match t.error() {
            None => {}
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => return Ok(None),
            Some(e) => bail!("topic {topic} on {servers}: {}", RDKafkaErrorCode::from(e)),
        }
        let replicas = t.partitions().first().map_or(0, |p| p.replicas().len());
        Ok(Some((t.partitions().len(), replicas)))
    })
    .await
    .context("the metadata request panicked")?
}

/// The result of one admin operation on one topic; `ok_if` codes count as success.
fn one(
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
    operation: &str,
    ok_if: &[RDKafkaErrorCode],
) -> anyhow::Result<()> {
    for result in results {
        if let Err((topic, code)) = result
            && !ok_if.contains(&code)
        {
            bail!("{operation} {topic} failed: {code}");
        }
    }
    Ok(())
}

pub(super) async fn observe(
    ctx: &Context,
    KafkaKind::Topic: KafkaKind,
    resource: &Resource,
) -> anyhow::Result<Observed> {
    let topic = str_attr(resource, "name")?;
    Ok(match describe(ctx, topic).await? {
        None => Observed::Absent,
        Some((partitions, replicas)) => Observed::Present {
            id: topic.to_owned(),
            attributes: [
                ("name", json!(topic)),
                ("partitions", json!(partitions)),
                ("replication_factor", json!(replicas)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        },
    })
}

pub(super) async fn create(ctx: &Context, KafkaKind::Topic: KafkaKind, resource: &Resource) -> anyhow::Result<()> {
    let topic = str_attr(resource, "name")?;
    let partitions = resource.attributes["partitions"].as_i64().context("partitions")? as i32;
    let replication = resource.attributes["replication_factor"].as_i64().context("replication_factor")? as i32;
    let results = admin(ctx)
        .await?
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(replication))], &options())
        .await
        .with_context(|| format!("CreateTopics {topic}"))?;
    // A killed apply may have created it already: the next plan compares it.
    one(results, "CreateTopics", &[RDKafkaErrorCode::TopicAlreadyExists])?;
    ctx.set_id(&resource.address, topic);
    Ok(())
}

pub(super) async fn update(
    ctx: &Context,
    KafkaKind::Topic: KafkaKind,
    resource: &Resource,
    change: &Change,
) -> anyhow::Result<()> {
    let topic = str_attr(resource, "name")?;
    for attribute in &change.attributes {
        if attribute.name != "partitions" {
            bail!("{}: `{}` cannot be updated in place (a bug in desired state)", resource.address, attribute.name);
        }
        let want = resource.attributes["partitions"].as_u64().context("partitions")? as usize;
        let have = attribute.before.as_ref().and_then(|v| v.as_u64()).unwrap_or_default() as usize;
        if want < have {
            bail!(
                "topic {topic} has {have} partitions and the environment asks for {want}: Kafka cannot remove \
                 partitions; raise the stream's partitions back, or destroy the redpanda component with \
                 --force-delete-data and apply again (its records are lost)"
            );
        }
        let results = admin(ctx)
            .await?
            .create_partitions(&[NewPartitions::new(topic, want)], &options())
            .await
            .with_context(|| format!("CreatePartitions {topic}"))?;
        one(results, "CreatePartitions", &[])?;
    }
    Ok(())
}

/// How many records `topic` holds (the sum over its partitions of high minus low watermark),
/// or None when it has none.
///
/// Errors: the cluster cannot be reached or does not answer for a partition.
pub(super) async fn records_held(ctx: &Context, topic: &str) -> anyhow::Result<Option<String>> {
    let Some((partitions, _)) = describe(ctx, topic).await? else { return Ok(None) };
    let consumer = ctx.kafka().await?.reader(None)?;
    let topic = topic.to_owned();
    let records = tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
        let mut records = 0;
        for partition in 0..partitions as i32 {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, TIMEOUT)
                .with_context(|| format!("reading the watermarks of {topic}/{partition}"))?;
            records += (high - low).max(0);
        }
        Ok(records)
    })
    .await
    .context("the watermark request panicked")??;
    Ok((records > 0).then(|| format!("{records} record(s) between the partitions' watermarks")))
}

pub(super) async fn delete(
    ctx: &Context,
    KafkaKind::Topic: KafkaKind,
    change: &Change,
    delete_data: bool,
) -> anyhow::Result<()> {
    // The plan kept topics that held records; one that received some since is kept too.
    if !delete_data && let Some(what) = records_held(ctx, &change.name).await? {
        bail!(
            "refusing to delete topic {}: it received records since the plan ({what}); nothing was deleted. Plan \
             again, or run with --force-delete-data",
            change.name
        );
    }
    // A broker that does not answer in time may still delete the topic: asked again (bounded),
    // a topic already gone counts as deleted.
    let admin = admin(ctx).await?;
    let timed_out = |code: RDKafkaErrorCode| {
        matches!(code, RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut)
    };
    super::wait_until(
        ctx,
        "kafka",
        DELETE_WAIT,
        &format!("topic {} is not deleted: the broker does not answer DeleteTopics in time", change.name),
        "run destroy again once the broker answers",
        || async {
            match admin.delete_topics(&[change.name.as_str()], &options()).await {
                Err(rdkafka::error::KafkaError::AdminOp(code)) if timed_out(code) => Ok(None),
                Err(error) => Err(anyhow::Error::new(error).context(format!("DeleteTopics {}", change.name))),
                Ok(results) if results.iter().any(|r| r.as_ref().is_err_and(|(_, code)| timed_out(*code))) => Ok(None),
                Ok(results) => one(results, "DeleteTopics", &[RDKafkaErrorCode::UnknownTopicOrPartition]).map(Some),
            }
        },
    )
    .await
}

/// How long a topic's deletion is retried while the broker times out.
const DELETE_WAIT: Duration = Duration::from_secs(120);
