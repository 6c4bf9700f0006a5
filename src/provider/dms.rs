//! AWS DMS: the ERP's replication subnet group, replication instance, source and target
//! endpoints and replication task (`desired::migration`).
//!
//! Everything is found by its identifier (unique per account and region), never by a
//! remembered ARN: AWS gives instances, endpoints and tasks ARNs with generated ids, so the
//! task's references are mapped back to identifiers when it is observed. Roles, keys and
//! security groups are named in the desired state and turned into ARNs and ids here.
//!
//! The source endpoint names the ERP's secret and the role DMS reads it with: the login goes
//! from Secrets Manager to DMS and never through indutech.
//!
//! On the test bed the moto sidecar serves DMS while LocalStack serves EC2: moto accepts any
//! subnet and security group ids and reports made-up subnets, so those two attributes are left
//! out of the observation there (shown as not verifiable); moto lacks `ModifyEndpoint`,
//! `ModifyReplicationTask`, `ModifyReplicationSubnetGroup` and the tag calls, so those updates
//! are recorded gaps on the bed and in-place modifications on AWS.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_databasemigration::types::{
    DataFormatValue, DmsSslModeValue, EncryptionModeValue, MicrosoftSqlServerSettings, MigrationTypeValue,
    ParquetVersionValue, ReplicationEndpointTypeValue, S3Settings, StartReplicationTaskTypeValue, Tag,
};
use serde_json::{Value, json};

use super::iam::{existing_role_arn as role_arn, role_name};
use super::{
    Context, NotImplemented, attributes, code, deleted, sdk_error, str_attr, strings, tags_attr, tags_value, wait_until,
};
use crate::model::{self, address};
use crate::plan::kind::DmsKind;
use crate::plan::{Change, Component, Observed, Orphan, Resource};

/// How long a replication instance may take to become available or to go (AWS: 5-15 min).
const INSTANCE_WAIT: Duration = Duration::from_secs(40 * 60);
/// How long a task may take to be ready, stopped or deleted.
const TASK_WAIT: Duration = Duration::from_secs(15 * 60);

fn dms_tags(resource: &Resource) -> Vec<Tag> {
    tags_attr(resource).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The tags of the DMS resource `arn`, as the attributes hold them.
async fn tags_of(ctx: &Context, arn: &str, what: &str) -> anyhow::Result<Value> {
    let out = ctx
        .aws
        .dms()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "dms", "ListTagsForResource", what, e))?;
    Ok(tags_value(out.tag_list().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))))
}

/// The secret's name as the desired state writes it: a full ARN
/// (`arn:aws:secretsmanager:...:secret:NAME-AbCdEf`) loses its prefix and random suffix.
fn secret_name(id: &str) -> &str {
    match id.split_once(":secret:") {
        Some((_, rest)) => rest.rsplit_once('-').map_or(rest, |(name, _)| name),
        None => id,
    }
}

/// A key as the desired state writes it: the lake key's alias when `reported` (an ARN or id) is
/// the key that alias points at, else what was reported.
async fn key_as_alias(ctx: &Context, reported: Option<&str>, alias: &str) -> anyhow::Result<Value> {
    let Some(reported) = reported else { return Ok(Value::Null) };
    let arn = super::kms::key_arn_of_alias(ctx, alias).await?;
    let matches = arn.as_deref().is_some_and(|arn| arn == reported || arn.ends_with(&format!("/{reported}")));
    Ok(json!(if matches { alias } else { reported }))
}

/// The ARN of the enabled key behind the lake key's alias `alias`.
///
/// Errors: the key does not exist (apply the lake component first).
async fn key_arn(ctx: &Context, alias: &str) -> anyhow::Result<String> {
    super::kms::key_arn_of_alias(ctx, alias)
        .await?
        .with_context(|| format!("the lake key {alias} does not exist (apply the lake component first)"))
}

async fn subnet_group(
    ctx: &Context,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_databasemigration::types::ReplicationSubnetGroup>> {
    let mut pages = ctx.aws.dms().describe_replication_subnet_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "dms", "DescribeReplicationSubnetGroups", name, e))?;
        if let Some(g) =
            page.replication_subnet_groups().iter().find(|g| g.replication_subnet_group_identifier() == Some(name))
        {
            return Ok(Some(g.clone()));
        }
    }
    Ok(None)
}

async fn instances(
    ctx: &Context,
    what: &str,
) -> anyhow::Result<Vec<aws_sdk_databasemigration::types::ReplicationInstance>> {
    let mut out = Vec::new();
    let mut pages = ctx.aws.dms().describe_replication_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "dms", "DescribeReplicationInstances", what, e))?;
        out.extend(page.replication_instances().iter().cloned());
    }
    Ok(out)
}

async fn instance(
    ctx: &Context,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_databasemigration::types::ReplicationInstance>> {
    Ok(instances(ctx, name).await?.into_iter().find(|i| {
        i.replication_instance_identifier() == Some(name) && i.replication_instance_status() != Some("deleting")
    }))
}

async fn endpoints(ctx: &Context, what: &str) -> anyhow::Result<Vec<aws_sdk_databasemigration::types::Endpoint>> {
    let mut out = Vec::new();
    let mut pages = ctx.aws.dms().describe_endpoints().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "dms", "DescribeEndpoints", what, e))?;
        out.extend(page.endpoints().iter().cloned());
    }
    Ok(out)
}

async fn endpoint(ctx: &Context, name: &str) -> anyhow::Result<Option<aws_sdk_databasemigration::types::Endpoint>> {
    Ok(endpoints(ctx, name)
        .await?
        .into_iter()
        .find(|e| e.endpoint_identifier() == Some(name) && e.status() != Some("deleting")))
}

async fn task(ctx: &Context, name: &str) -> anyhow::Result<Option<aws_sdk_databasemigration::types::ReplicationTask>> {
    let mut pages = ctx.aws.dms().describe_replication_tasks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "dms", "DescribeReplicationTasks", name, e))?;
        if let Some(t) = page
            .replication_tasks()
            .iter()
            .find(|t| t.replication_task_identifier() == Some(name) && t.status() != Some("deleting"))
        {
            return Ok(Some(t.clone()));
        }
    }
    Ok(None)
}

/// Whether a task in `status` counts as running (`start_replication_task = true`).
fn is_running(status: Option<&str>) -> bool {
    matches!(status, Some("running" | "starting"))
}

pub(super) async fn observe(ctx: &Context, kind: DmsKind, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    match kind {
        DmsKind::SubnetGroup => {
            let Some(g) = subnet_group(ctx, name).await? else { return Ok(Observed::Absent) };
            let mut attributes = attributes(vec![(
                "replication_subnet_group_description",
                json!(g.replication_subnet_group_description()),
            )]);
            // Apart from EC2 (the bed), DMS reports made-up subnets and groups.
            if ctx.apart_from_ec2("dms").is_none() {
                let ids: Vec<String> =
                    g.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_owned)).collect();
                let mut names = super::ec2::names_of_subnets(ctx, &ids).await?;
                names.sort();
                attributes.insert("subnets".into(), json!(names));
            }
            Ok(Observed::Present { id: name.to_owned(), attributes })
        }
        DmsKind::Instance => {
            let Some(i) = instance(ctx, name).await? else { return Ok(Observed::Absent) };
            let arn = i.replication_instance_arn().unwrap_or_default().to_owned();
            let alias = str_attr(resource, "kms_key")?;
            let mut attributes = attributes(vec![
                ("allocated_storage", json!(i.allocated_storage())),
                ("auto_minor_version_upgrade", json!(i.auto_minor_version_upgrade())),
                ("kms_key", key_as_alias(ctx, i.kms_key_id(), alias).await?),
                ("multi_az", json!(i.multi_az())),
                ("publicly_accessible", json!(i.publicly_accessible())),
                ("replication_instance_class", json!(i.replication_instance_class())),
                (
                    "replication_subnet_group_id",
                    json!(i.replication_subnet_group().and_then(|g| g.replication_subnet_group_identifier())),
                ),
                ("tags", tags_of(ctx, &arn, name).await?),
            ]);
            // Apart from EC2 (the bed), DMS reports made-up subnets and groups.
            if ctx.apart_from_ec2("dms").is_none() {
                let ids: Vec<String> = i
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|m| m.vpc_security_group_id().map(str::to_owned))
                    .collect();
                let mut groups = super::ec2::names_of_security_groups(ctx, &ids).await?;
                groups.sort();
                attributes.insert("vpc_security_groups".into(), json!(groups));
            }
            Ok(Observed::Present { id: arn, attributes })
        }
        DmsKind::Endpoint | DmsKind::S3Endpoint => {
            let Some(e) = endpoint(ctx, name).await? else { return Ok(Observed::Absent) };
            let arn = e.endpoint_arn().unwrap_or_default().to_owned();
            let alias = str_attr(resource, "kms_key")?;
            let mut attributes = attributes(vec![
                ("endpoint_type", json!(e.endpoint_type().map(|t| t.as_str().to_lowercase()))),
                ("kms_key", key_as_alias(ctx, e.kms_key_id(), alias).await?),
                ("tags", tags_of(ctx, &arn, name).await?),
            ]);
            if kind == DmsKind::Endpoint {
                attributes.insert("engine_name".into(), json!(e.engine_name()));
            }
            if let Some(sql) = e.microsoft_sql_server_settings() {
                attributes.insert("database_name".into(), json!(sql.database_name().or(e.database_name())));
                attributes.insert(
                    "secrets_manager_access_role".into(),
                    json!(sql.secrets_manager_access_role_arn().map(role_name)),
                );
                attributes
                    .insert("secrets_manager_secret".into(), json!(sql.secrets_manager_secret_id().map(secret_name)));
                attributes.insert("ssl_mode".into(), json!(e.ssl_mode().map(|m| m.as_str())));
            }
            if let Some(s3) = e.s3_settings().filter(|_| kind == DmsKind::S3Endpoint) {
                let alias = str_attr(resource, "server_side_encryption_kms_key")?;
                let key = key_as_alias(ctx, s3.server_side_encryption_kms_key_id(), alias).await?;
                attributes.extend([
                    ("bucket_folder".to_owned(), json!(s3.bucket_folder())),
                    ("bucket_name".to_owned(), json!(s3.bucket_name())),
                    ("data_format".to_owned(), json!(s3.data_format().map(|f| f.as_str()))),
                    ("encryption_mode".to_owned(), json!(s3.encryption_mode().map(|m| m.as_str()))),
                    ("include_op_for_full_load".to_owned(), json!(s3.include_op_for_full_load())),
                    ("parquet_version".to_owned(), json!(s3.parquet_version().map(|v| v.as_str()))),
                    ("server_side_encryption_kms_key".to_owned(), key),
                    ("service_access_role".to_owned(), json!(s3.service_access_role_arn().map(role_name))),
                ]);
            }
            Ok(Observed::Present { id: arn, attributes })
        }
        DmsKind::Task => {
            let Some(t) = task(ctx, name).await? else { return Ok(Observed::Absent) };
            let arn = t.replication_task_arn().unwrap_or_default().to_owned();
            let all_endpoints = endpoints(ctx, name).await?;
            let endpoint_name = |arn: Option<&str>| {
                all_endpoints
                    .iter()
                    .find(|e| e.endpoint_arn() == arn)
                    .and_then(|e| e.endpoint_identifier())
                    .map(str::to_owned)
            };
            let all_instances = instances(ctx, name).await?;
            let instance_name = all_instances
                .iter()
                .find(|i| i.replication_instance_arn() == t.replication_instance_arn())
                .and_then(|i| i.replication_instance_identifier());
            let mappings: Value = t.table_mappings().and_then(|m| serde_json::from_str(m).ok()).unwrap_or(Value::Null);
            Ok(Observed::Present {
                id: arn.clone(),
                attributes: attributes(vec![
                    ("migration_type", json!(t.migration_type().map(|m| m.as_str()))),
                    ("replication_instance", json!(instance_name)),
                    ("source_endpoint", json!(endpoint_name(t.source_endpoint_arn()))),
                    ("start_replication_task", json!(is_running(t.status()))),
                    ("table_mappings", mappings),
                    ("tags", tags_of(ctx, &arn, name).await?),
                    ("target_endpoint", json!(endpoint_name(t.target_endpoint_arn()))),
                ]),
            })
        }
    }
}

/// The source or target endpoint's settings, as CreateEndpoint and ModifyEndpoint take them.
struct EndpointSettings {
    sql_server: Option<MicrosoftSqlServerSettings>,
    s3: Option<S3Settings>,
    ssl_mode: Option<DmsSslModeValue>,
}

async fn endpoint_settings(ctx: &Context, kind: DmsKind, resource: &Resource) -> anyhow::Result<EndpointSettings> {
    let a = &resource.attributes;
    match kind {
        DmsKind::Endpoint => {
            let engine = str_attr(resource, "engine_name")?;
            if engine != "sqlserver" {
                bail!(
                    "{}: engine `{engine}` is not one indutech configures (a bug in desired state)",
                    resource.address
                );
            }
            let role = role_arn(ctx, str_attr(resource, "secrets_manager_access_role")?).await?;
            Ok(EndpointSettings {
                // With a secret DMS takes the server, port, user and password from it and
                // refuses them as parameters.
                sql_server: Some(
                    MicrosoftSqlServerSettings::builder()
                        .database_name(str_attr(resource, "database_name")?)
                        .secrets_manager_secret_id(str_attr(resource, "secrets_manager_secret")?)
                        .secrets_manager_access_role_arn(role)
                        .build(),
                ),
                s3: None,
                ssl_mode: Some(DmsSslModeValue::from(str_attr(resource, "ssl_mode")?)),
            })
        }
        DmsKind::S3Endpoint => Ok(EndpointSettings {
            sql_server: None,
            s3: Some(
                S3Settings::builder()
                    .bucket_name(str_attr(resource, "bucket_name")?)
                    .bucket_folder(str_attr(resource, "bucket_folder")?)
                    .service_access_role_arn(role_arn(ctx, str_attr(resource, "service_access_role")?).await?)
                    .data_format(DataFormatValue::from(str_attr(resource, "data_format")?))
                    .parquet_version(ParquetVersionValue::from(str_attr(resource, "parquet_version")?))
                    .encryption_mode(EncryptionModeValue::from(str_attr(resource, "encryption_mode")?))
                    .server_side_encryption_kms_key_id(
                        key_arn(ctx, str_attr(resource, "server_side_encryption_kms_key")?).await?,
                    )
                    .include_op_for_full_load(a["include_op_for_full_load"].as_bool().unwrap_or(false))
                    .build(),
            ),
            ssl_mode: None,
        }),
        other => bail!("{}: a {other} is not an endpoint (a bug)", resource.address),
    }
}

/// Waits until the replication instance `name` is `available`.
async fn instance_available(ctx: &Context, name: &str) -> anyhow::Result<String> {
    wait_until(
        ctx,
        "dms",
        INSTANCE_WAIT,
        &format!("replication instance {name} is not available"),
        "run apply again later",
        || async {
            let i = instance(ctx, name).await?.with_context(|| format!("replication instance {name} disappeared"))?;
            Ok((i.replication_instance_status() == Some("available"))
                .then(|| i.replication_instance_arn().unwrap_or_default().to_owned()))
        },
    )
    .await
}

/// Waits until task `name` is in one of `statuses`; returns its ARN.
async fn task_in(ctx: &Context, name: &str, statuses: &[&str]) -> anyhow::Result<String> {
    let what = format!("replication task {name} is not {}", statuses.join(" or "));
    wait_until(ctx, "dms", TASK_WAIT, &what, "run apply again later", || async {
        let t = task(ctx, name).await?.with_context(|| format!("replication task {name} disappeared"))?;
        if t.status() == Some("failed") {
            bail!("replication task {name} failed: {}", t.last_failure_message().unwrap_or("no message"));
        }
        Ok(statuses
            .contains(&t.status().unwrap_or_default())
            .then(|| t.replication_task_arn().unwrap_or_default().to_owned()))
    })
    .await
}

async fn start_task(ctx: &Context, name: &str) -> anyhow::Result<()> {
    let arn = task_in(ctx, name, &["ready", "stopped"]).await?;
    let t = task(ctx, name).await?.with_context(|| format!("replication task {name} disappeared"))?;
    // A task that ran before resumes its changes; a new one starts with the full load.
    let kind = if t.status() == Some("stopped") && t.replication_task_start_date().is_some() {
        StartReplicationTaskTypeValue::ResumeProcessing
    } else {
        StartReplicationTaskTypeValue::StartReplication
    };
    ctx.aws
        .dms()
        .start_replication_task()
        .replication_task_arn(arn)
        .start_replication_task_type(kind)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "dms", "StartReplicationTask", name, e))?;
    Ok(())
}

async fn stop_task(ctx: &Context, name: &str) -> anyhow::Result<()> {
    let Some(t) = task(ctx, name).await? else { return Ok(()) };
    if !is_running(t.status()) {
        return Ok(());
    }
    ctx.aws
        .dms()
        .stop_replication_task()
        .replication_task_arn(t.replication_task_arn().unwrap_or_default())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "dms", "StopReplicationTask", name, e))?;
    task_in(ctx, name, &["stopped", "failed", "ready"]).await.map(|_| ())
}

/// The ARN of endpoint `name`.
async fn endpoint_arn(ctx: &Context, name: &str) -> anyhow::Result<String> {
    endpoint(ctx, name)
        .await?
        .and_then(|e| e.endpoint_arn().map(str::to_owned))
        .with_context(|| format!("endpoint {name} does not exist (it is a dependency; apply it first)"))
}

pub(super) async fn create(ctx: &Context, kind: DmsKind, resource: &Resource) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let a = &resource.attributes;
    match kind {
        DmsKind::SubnetGroup => {
            let subnets = super::ec2::subnet_ids(ctx, &strings(&a["subnets"])).await?;
            let result = ctx
                .aws
                .dms()
                .create_replication_subnet_group()
                .replication_subnet_group_identifier(name)
                .replication_subnet_group_description(str_attr(resource, "replication_subnet_group_description")?)
                .set_subnet_ids(Some(subnets))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(err) if code(&err) == Some("AccessDeniedFault") => bail!(
                    "CreateReplicationSubnetGroup {name} was refused: DMS needs the account-wide IAM role \
                     `dms-vpc-role` (trusting dms.amazonaws.com, with the AWS managed policy \
                     AmazonDMSVPCManagementRole) before any subnet group exists; it is shared by every DMS user \
                     of the account, so indutech does not create it. Create it once \
                     (`aws iam create-role --role-name dms-vpc-role ...`), then apply again"
                ),
                Err(err) => return Err(sdk_error(ctx, "dms", "CreateReplicationSubnetGroup", name, err)),
            }
        }
        DmsKind::Instance => {
            let groups = super::ec2::security_group_ids(ctx, &strings(&a["vpc_security_groups"])).await?;
            ctx.aws
                .dms()
                .create_replication_instance()
                .replication_instance_identifier(name)
                .replication_instance_class(str_attr(resource, "replication_instance_class")?)
                .allocated_storage(a["allocated_storage"].as_i64().unwrap_or(100) as i32)
                .multi_az(a["multi_az"].as_bool().unwrap_or(false))
                .auto_minor_version_upgrade(a["auto_minor_version_upgrade"].as_bool().unwrap_or(true))
                .publicly_accessible(false)
                .kms_key_id(key_arn(ctx, str_attr(resource, "kms_key")?).await?)
                .replication_subnet_group_identifier(str_attr(resource, "replication_subnet_group_id")?)
                .set_vpc_security_group_ids(Some(groups))
                .set_tags(Some(dms_tags(resource)))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "CreateReplicationInstance", name, e))?;
            instance_available(ctx, name).await?;
        }
        DmsKind::Endpoint | DmsKind::S3Endpoint => {
            let settings = endpoint_settings(ctx, kind, resource).await?;
            let engine = if kind == DmsKind::S3Endpoint { "s3" } else { str_attr(resource, "engine_name")? };
            ctx.aws
                .dms()
                .create_endpoint()
                .endpoint_identifier(name)
                .endpoint_type(ReplicationEndpointTypeValue::from(str_attr(resource, "endpoint_type")?))
                .engine_name(engine)
                .kms_key_id(key_arn(ctx, str_attr(resource, "kms_key")?).await?)
                .set_microsoft_sql_server_settings(settings.sql_server)
                .set_s3_settings(settings.s3)
                .set_ssl_mode(settings.ssl_mode)
                .set_tags(Some(dms_tags(resource)))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "CreateEndpoint", name, e))?;
        }
        DmsKind::Task => {
            let instance_name = str_attr(resource, "replication_instance")?;
            let instance_arn = instance_available(ctx, instance_name).await?;
            ctx.aws
                .dms()
                .create_replication_task()
                .replication_task_identifier(name)
                .migration_type(MigrationTypeValue::from(str_attr(resource, "migration_type")?))
                .replication_instance_arn(instance_arn)
                .source_endpoint_arn(endpoint_arn(ctx, str_attr(resource, "source_endpoint")?).await?)
                .target_endpoint_arn(endpoint_arn(ctx, str_attr(resource, "target_endpoint")?).await?)
                .table_mappings(a["table_mappings"].to_string())
                .set_tags(Some(dms_tags(resource)))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "CreateReplicationTask", name, e))?;
            if a["start_replication_task"].as_bool() == Some(true) {
                start_task(ctx, name).await?;
            }
        }
    }
    Ok(())
}

pub(super) async fn update(ctx: &Context, kind: DmsKind, resource: &Resource, change: &Change) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let changed = |attribute: &str| change.attributes.iter().any(|c| c.name == attribute);
    let id = ctx.id(&resource.address)?;
    // The settings first, the tags last: a target without the tag calls (moto) still gets the
    // settings repaired.
    let rest: Vec<&str> = change.attributes.iter().map(|c| c.name.as_str()).filter(|n| *n != "tags").collect();
    if !rest.is_empty() {
        update_settings(ctx, kind, resource, change, &id).await?;
    }
    if changed("tags") {
        let before = change.attributes.iter().find(|c| c.name == "tags").and_then(|c| c.before.as_ref());
        let stale = super::stale_tag_keys(before, resource);
        if !stale.is_empty() {
            ctx.aws
                .dms()
                .remove_tags_from_resource()
                .resource_arn(&id)
                .set_tag_keys(Some(stale))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "RemoveTagsFromResource", name, e))?;
        }
        ctx.aws
            .dms()
            .add_tags_to_resource()
            .resource_arn(&id)
            .set_tags(Some(dms_tags(resource)))
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "dms", "AddTagsToResource", name, e))?;
    }
    Ok(())
}

async fn update_settings(
    ctx: &Context,
    kind: DmsKind,
    resource: &Resource,
    change: &Change,
    id: &str,
) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let a = &resource.attributes;
    let changed = |attribute: &str| change.attributes.iter().any(|c| c.name == attribute);
    match kind {
        DmsKind::SubnetGroup => {
            let subnets = super::ec2::subnet_ids(ctx, &strings(&a["subnets"])).await?;
            ctx.aws
                .dms()
                .modify_replication_subnet_group()
                .replication_subnet_group_identifier(name)
                .replication_subnet_group_description(str_attr(resource, "replication_subnet_group_description")?)
                .set_subnet_ids(Some(subnets))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "ModifyReplicationSubnetGroup", name, e))?;
        }
        DmsKind::Instance => {
            let groups = super::ec2::security_group_ids(ctx, &strings(&a["vpc_security_groups"])).await?;
            ctx.aws
                .dms()
                .modify_replication_instance()
                .replication_instance_arn(id)
                .apply_immediately(true)
                .replication_instance_class(str_attr(resource, "replication_instance_class")?)
                .allocated_storage(a["allocated_storage"].as_i64().unwrap_or(100) as i32)
                .multi_az(a["multi_az"].as_bool().unwrap_or(false))
                .auto_minor_version_upgrade(a["auto_minor_version_upgrade"].as_bool().unwrap_or(true))
                .set_vpc_security_group_ids(Some(groups))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "ModifyReplicationInstance", name, e))?;
            instance_available(ctx, name).await?;
        }
        DmsKind::Endpoint | DmsKind::S3Endpoint => {
            let settings = endpoint_settings(ctx, kind, resource).await?;
            ctx.aws
                .dms()
                .modify_endpoint()
                .endpoint_arn(id)
                .set_microsoft_sql_server_settings(settings.sql_server)
                .set_s3_settings(settings.s3)
                .set_ssl_mode(settings.ssl_mode)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "dms", "ModifyEndpoint", name, e))?;
        }
        DmsKind::Task => {
            if changed("table_mappings") {
                // A running task cannot be modified: stop it, modify, and let the start below
                // resume it when it should run.
                stop_task(ctx, name).await?;
                ctx.aws
                    .dms()
                    .modify_replication_task()
                    .replication_task_arn(id)
                    .table_mappings(a["table_mappings"].to_string())
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "dms", "ModifyReplicationTask", name, e))?;
            }
            let running = task(ctx, name).await?.is_some_and(|t| is_running(t.status()));
            match (a["start_replication_task"].as_bool() == Some(true), running) {
                (true, false) => start_task(ctx, name).await?,
                (false, true) => stop_task(ctx, name).await?,
                _ => {}
            }
        }
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Context, kind: DmsKind, change: &Change) -> anyhow::Result<()> {
    let name = change.name.as_str();
    let gone = |c: &str| c == "ResourceNotFoundFault";
    match kind {
        DmsKind::SubnetGroup => {
            let result =
                ctx.aws.dms().delete_replication_subnet_group().replication_subnet_group_identifier(name).send().await;
            deleted(ctx, "dms", "DeleteReplicationSubnetGroup", name, result, gone)
        }
        DmsKind::Instance => {
            let Some(i) = instance(ctx, name).await? else { return Ok(()) };
            let result = ctx
                .aws
                .dms()
                .delete_replication_instance()
                .replication_instance_arn(i.replication_instance_arn().unwrap_or_default())
                .send()
                .await;
            deleted(ctx, "dms", "DeleteReplicationInstance", name, result, gone)?;
            // Its subnet group cannot go before it has.
            wait_until(
                ctx,
                "dms",
                INSTANCE_WAIT,
                &format!("replication instance {name} is still deleting"),
                "run destroy again later",
                || async {
                    Ok(instances(ctx, name)
                        .await?
                        .iter()
                        .all(|i| i.replication_instance_identifier() != Some(name))
                        .then_some(()))
                },
            )
            .await
        }
        DmsKind::Endpoint | DmsKind::S3Endpoint => {
            let Some(e) = endpoint(ctx, name).await? else { return Ok(()) };
            let result =
                ctx.aws.dms().delete_endpoint().endpoint_arn(e.endpoint_arn().unwrap_or_default()).send().await;
            deleted(ctx, "dms", "DeleteEndpoint", name, result, gone)
        }
        DmsKind::Task => {
            stop_task(ctx, name).await?;
            let Some(t) = task(ctx, name).await? else { return Ok(()) };
            let result = ctx
                .aws
                .dms()
                .delete_replication_task()
                .replication_task_arn(t.replication_task_arn().unwrap_or_default())
                .send()
                .await;
            deleted(ctx, "dms", "DeleteReplicationTask", name, result, gone)?;
            // Its endpoints and instance cannot go before it has.
            wait_until(
                ctx,
                "dms",
                TASK_WAIT,
                &format!("replication task {name} is still deleting"),
                "run destroy again later",
                || async {
                    let mut pages = ctx.aws.dms().describe_replication_tasks().into_paginator().send();
                    while let Some(page) = pages.next().await {
                        let page = page.map_err(|e| sdk_error(ctx, "dms", "DescribeReplicationTasks", name, e))?;
                        if page.replication_tasks().iter().any(|t| t.replication_task_identifier() == Some(name)) {
                            return Ok(None);
                        }
                    }
                    Ok(Some(()))
                },
            )
            .await
        }
    }
}

/// The migration's resources that exist while the environment no longer declares `[erp]`
/// (found by their deterministic identifiers), with DMS's role and its policy. A target without
/// DMS (it answers [`NotImplemented`]) holds none.
///
/// Errors: a DMS or IAM read failed.
pub(super) async fn orphans(ctx: &Context, desired: &[Resource]) -> anyhow::Result<Vec<Orphan>> {
    if desired.iter().any(|r| r.address == address::DMS_TASK) {
        return Ok(Vec::new());
    }
    match find_orphans(ctx).await {
        Err(err) if err.downcast_ref::<NotImplemented>().is_some() => Ok(Vec::new()),
        other => other,
    }
}

async fn find_orphans(ctx: &Context) -> anyhow::Result<Vec<Orphan>> {
    let environment = &ctx.environment;
    let name = model::resource_name(environment, "erp");
    let source = model::resource_name(environment, "erp-source");
    let target = model::resource_name(environment, "erp-target");
    let role = model::resource_name(environment, "dms");
    let orphan = |address: &str, name: &str, id: &str, depends_on: &[&str]| Orphan {
        address: address.to_owned(),
        component: Component::Migration,
        name: name.to_owned(),
        id: id.to_owned(),
        attributes: Default::default(),
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
    };
    let mut out = Vec::new();
    if let Some(t) = task(ctx, &name).await? {
        let needs = [address::DMS_INSTANCE, address::DMS_SOURCE_ENDPOINT, address::DMS_TARGET_ENDPOINT];
        out.push(orphan(address::DMS_TASK, &name, t.replication_task_arn().unwrap_or_default(), &needs));
    }
    for (address, endpoint_name) in [(address::DMS_SOURCE_ENDPOINT, &source), (address::DMS_TARGET_ENDPOINT, &target)] {
        if let Some(e) = endpoint(ctx, endpoint_name).await? {
            out.push(orphan(address, endpoint_name, e.endpoint_arn().unwrap_or_default(), &[address::DMS_ROLE]));
        }
    }
    if let Some(i) = instance(ctx, &name).await? {
        let arn = i.replication_instance_arn().unwrap_or_default();
        out.push(orphan(address::DMS_INSTANCE, &name, arn, &[address::DMS_SUBNET_GROUP]));
    }
    if subnet_group(ctx, &name).await?.is_some() {
        out.push(orphan(address::DMS_SUBNET_GROUP, &name, &name, &[]));
    }
    if let Some(arn) = super::iam::role_arn(ctx, &role).await? {
        out.push(orphan(address::DMS_ROLE_POLICY, &format!("{role}/erp-to-lake"), &role, &[address::DMS_ROLE]));
        out.push(orphan(address::DMS_ROLE, &role, &arn, &[]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_arns_become_the_names_the_desired_state_uses() {
        assert_eq!(
            secret_name("arn:aws:secretsmanager:eu-west-3:123456789012:secret:erp/sql-login-AbC123"),
            "erp/sql-login"
        );
        assert_eq!(secret_name("erp/sql-login"), "erp/sql-login");
        assert!(is_running(Some("running")) && !is_running(Some("stopped")) && !is_running(None));
    }
}
