//! Redshift: the cluster subnet group, the cluster (encrypted, private, enhanced VPC routing, master password
//! managed by Redshift in Secrets Manager, the Spectrum role attached at create), and the
//! Spectrum external schema, created through the Redshift Data API one statement per call and
//! polled to a terminal state with a bounded wait (`warehouse.statement_timeout_secs`).
//!
//! Cluster creation, changes and deletion take minutes on AWS: each waits (bounded) for the
//! cluster to settle and says what to do when the bound passes.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_redshift::types::{Parameter, Tag};
use aws_sdk_redshiftdata::types::{Field, SqlParameter, StatusString};
use serde_json::{Value, json};

use super::ec2::{names_of_subnets, security_group_id, security_group_ids, subnet_ids};
use super::iam::{existing_role_arn as role, role_name};
use super::{
    Context, NotImplemented, attributes, code, deleted, sdk_error, str_attr, strings, tags_attr, tags_value, wait_until,
};
use crate::plan::kind::RedshiftKind;
use crate::plan::{Change, Observed, Resource};

/// How long a cluster may take to become available, be modified or be deleted.
const CLUSTER_WAIT: Duration = Duration::from_secs(45 * 60);

fn redshift_tags(resource: &Resource) -> Vec<Tag> {
    tags_attr(resource).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn tag_value(tags: &[Tag]) -> Value {
    tags_value(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

/// The role name of an IAM role ARN (`arn:aws:iam::1:role/path/name` -> `name`).
async fn cluster(ctx: &Context, id: &str) -> anyhow::Result<Option<aws_sdk_redshift::types::Cluster>> {
    match ctx.aws.redshift().describe_clusters().cluster_identifier(id).send().await {
        Ok(out) => Ok(out.clusters().first().cloned()),
        Err(err) if code(&err) == Some("ClusterNotFound") => Ok(None),
        Err(err) => Err(sdk_error(ctx, "redshift", "DescribeClusters", id, err)),
    }
}

/// Waits until the cluster is `available` with no pending change.
async fn wait_available(ctx: &Context, id: &str) -> anyhow::Result<()> {
    let next = format!(
        "AWS goes on working on it; run `indutech plan --env {}` later to see when it is done",
        ctx.environment.name
    );
    wait_until(ctx, "redshift", CLUSTER_WAIT, &format!("cluster {id} is still not available"), &next, || async {
        let c = cluster(ctx, id).await?.with_context(|| format!("cluster {id} disappeared while waiting for it"))?;
        let settled = c.cluster_status() == Some("available")
            && c.pending_modified_values().is_none_or(|p| p.node_type().is_none() && p.number_of_nodes().is_none());
        Ok(settled.then_some(()))
    })
    .await
}

async fn arn(ctx: &Context, kind: &str, name: &str) -> anyhow::Result<String> {
    Ok(format!("arn:aws:redshift:{}:{}:{kind}:{name}", ctx.environment.region, ctx.account_id().await?))
}

/// Makes the tags of the Redshift resource `arn` those of `resource`.
async fn retag(ctx: &Context, arn: &str, resource: &Resource, before: Option<&Value>) -> anyhow::Result<()> {
    let redshift = ctx.aws.redshift();
    let stale = super::stale_tag_keys(before, resource);
    if !stale.is_empty() {
        redshift
            .delete_tags()
            .resource_name(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "redshift", "DeleteTags", &resource.name, e))?;
    }
    redshift
        .create_tags()
        .resource_name(arn)
        .set_tags(Some(redshift_tags(resource)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift", "CreateTags", &resource.name, e))?;
    Ok(())
}

/// ARNs of the cluster's IAM roles (attribute `iam_roles`, role names).
async fn role_arns(ctx: &Context, resource: &Resource) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::new();
    for name in strings(&resource.attributes["iam_roles"]) {
        arns.push(role(ctx, &name).await?);
    }
    Ok(arns)
}

pub(super) async fn observe(ctx: &Context, kind: RedshiftKind, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    match kind {
        RedshiftKind::SubnetGroup => {
            let out = match ctx
                .aws
                .redshift()
                .describe_cluster_subnet_groups()
                .cluster_subnet_group_name(name)
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) if code(&err) == Some("ClusterSubnetGroupNotFoundFault") => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "redshift", "DescribeClusterSubnetGroups", name, err)),
            };
            let Some(group) = out.cluster_subnet_groups().first() else { return Ok(Observed::Absent) };
            let ids: Vec<String> =
                group.subnets().iter().filter_map(|s| s.subnet_identifier().map(str::to_owned)).collect();
            let mut subnets = names_of_subnets(ctx, &ids).await?;
            subnets.sort();
            Ok(Observed::Present {
                id: name.to_owned(),
                attributes: attributes(vec![
                    ("description", json!(group.description())),
                    ("subnets", json!(subnets)),
                    ("tags", tag_value(group.tags())),
                ]),
            })
        }
        RedshiftKind::Cluster => {
            let Some(c) = cluster(ctx, name).await? else { return Ok(Observed::Absent) };
            if c.cluster_status() == Some("deleting") {
                return Ok(Observed::Absent);
            }
            let mut groups = Vec::new();
            for g in c.vpc_security_groups() {
                let id = g.vpc_security_group_id().unwrap_or_default();
                let wanted = strings(&resource.attributes["vpc_security_groups"]);
                let mut label = id.to_owned();
                for name in &wanted {
                    if security_group_id(ctx, name).await?.as_deref() == Some(id) {
                        label = name.clone();
                    }
                }
                groups.push(label);
            }
            groups.sort();
            let mut roles: Vec<&str> = c.iam_roles().iter().filter_map(|r| r.iam_role_arn()).map(role_name).collect();
            roles.sort();
            let mut attributes = attributes(vec![
                (
                    "cluster_parameter_group_name",
                    json!(c.cluster_parameter_groups().first().and_then(|g| g.parameter_group_name())),
                ),
                ("cluster_subnet_group_name", json!(c.cluster_subnet_group_name())),
                ("database_name", json!(c.db_name())),
                ("encrypted", json!(c.encrypted())),
                ("enhanced_vpc_routing", json!(c.enhanced_vpc_routing())),
                ("iam_roles", json!(roles)),
                ("master_username", json!(c.master_username())),
                ("node_type", json!(c.node_type())),
                ("number_of_nodes", json!(c.number_of_nodes())),
                ("publicly_accessible", json!(c.publicly_accessible())),
                ("tags", tag_value(c.tags())),
                ("vpc_security_groups", json!(groups)),
            ]);
            // AWS reports the secret of a managed master password; LocalStack accepts
            // ManageMasterPassword and reports nothing, so against an emulator "no secret"
            // means "not reported", not "false".
            match (c.master_password_secret_arn(), ctx.aws.endpoint("redshift")) {
                (Some(_), _) => {
                    attributes.insert("manage_master_password".into(), json!(true));
                }
                (None, None) => {
                    attributes.insert("manage_master_password".into(), json!(false));
                }
                (None, Some(_)) => {}
            }
            Ok(Observed::Present { id: name.to_owned(), attributes })
        }
        RedshiftKind::DataStatement => observe_schema(ctx, resource).await,
        RedshiftKind::ParameterGroup => {
            let redshift = ctx.aws.redshift();
            let groups = match redshift.describe_cluster_parameter_groups().parameter_group_name(name).send().await {
                Ok(out) => out,
                Err(err) if code(&err) == Some("ClusterParameterGroupNotFound") => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "redshift", "DescribeClusterParameterGroups", name, err)),
            };
            let Some(group) = groups.parameter_groups().iter().find(|g| g.parameter_group_name() == Some(name)) else {
                return Ok(Observed::Absent);
            };
            // The parameters set on the group (source "user"), the filter applied here too: an
            // emulator may ignore it.
            let mut parameters = serde_json::Map::new();
            let mut pages = redshift
                .describe_cluster_parameters()
                .parameter_group_name(name)
                .source("user")
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error(ctx, "redshift", "DescribeClusterParameters", name, e))?;
                for p in page.parameters().iter().filter(|p| p.source() == Some("user")) {
                    if let (Some(key), Some(value)) = (p.parameter_name(), p.parameter_value()) {
                        parameters.insert(key.to_owned(), json!(value));
                    }
                }
            }
            Ok(Observed::Present {
                id: name.to_owned(),
                attributes: attributes(vec![
                    ("description", json!(group.description())),
                    ("family", json!(group.parameter_group_family())),
                    ("parameters", Value::Object(parameters)),
                    ("tags", tag_value(group.tags())),
                ]),
            })
        }
        RedshiftKind::Logging => {
            let out = match ctx.aws.redshift().describe_logging_status().cluster_identifier(name).send().await {
                Ok(out) => out,
                Err(err) if code(&err) == Some("ClusterNotFound") => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "redshift", "DescribeLoggingStatus", name, err)),
            };
            if out.logging_enabled() != Some(true) {
                return Ok(Observed::Absent);
            }
            let mut exports: Vec<&str> = out.log_exports().iter().map(String::as_str).collect();
            exports.sort();
            Ok(Observed::Present {
                id: name.to_owned(),
                attributes: attributes(vec![
                    ("log_destination_type", json!(out.log_destination_type().map(|t| t.as_str()))),
                    ("log_exports", json!(exports)),
                ]),
            })
        }
    }
}

/// Sets the parameters `resource` declares on parameter group `resource.name` (the others keep
/// their engine defaults).
///
/// Errors: ModifyClusterParameterGroup failed ([`NotImplemented`] on an emulator that lacks it).
async fn set_parameters(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let parameters: Vec<Parameter> = resource.attributes["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            Parameter::builder().parameter_name(key).parameter_value(value.as_str().unwrap_or_default()).build()
        })
        .collect();
    ctx.aws
        .redshift()
        .modify_cluster_parameter_group()
        .parameter_group_name(name)
        .set_parameters(Some(parameters))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift", "ModifyClusterParameterGroup", name, e))?;
    Ok(())
}

/// Turns on the audit logging `resource` declares (`log_destination_type`, `log_exports`) on
/// cluster `resource.name`: create and update alike.
///
/// Errors: EnableLogging failed (the cluster does not exist, or is not available).
async fn enable_logging(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    ctx.aws
        .redshift()
        .enable_logging()
        .cluster_identifier(name)
        .log_destination_type(aws_sdk_redshift::types::LogDestinationType::from(str_attr(
            resource,
            "log_destination_type",
        )?))
        .set_log_exports(Some(strings(&resource.attributes["log_exports"])))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift", "EnableLogging", name, e))?;
    Ok(())
}

/// The external schema: listed by the Data API's `ListSchemas`, then its Glue database and IAM
/// role read from `svv_external_schemas`.
async fn observe_schema(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let (cluster_id, database, db_user, schema) = (
        str_attr(resource, "cluster_identifier")?,
        str_attr(resource, "database")?,
        str_attr(resource, "db_user")?,
        str_attr(resource, "external_schema")?,
    );
    if cluster(ctx, cluster_id).await?.is_none() {
        return Ok(Observed::Absent);
    }
    let listed = ctx
        .aws
        .redshift_data()
        .list_schemas()
        .cluster_identifier(cluster_id)
        .database(database)
        .db_user(db_user)
        .schema_pattern(schema)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift_data", "ListSchemas", schema, e))?;
    if !listed.schemas().iter().any(|s| s == schema) {
        return Ok(Observed::Absent);
    }
    let sql = "SELECT databasename, esoptions FROM svv_external_schemas WHERE schemaname = :schema";
    let parameter = SqlParameter::builder().name("schema").value(schema).build()?;
    let records = query(ctx, resource, sql, vec![parameter], schema).await?;
    let text = |f: &Field| f.as_string_value().ok().cloned().unwrap_or_default();
    let row = records.first().with_context(|| format!("schema {schema} is listed but not external"))?;
    let glue_database = row.first().map(text).unwrap_or_default();
    // esoptions is JSON such as {"IAM_ROLE":"arn:aws:iam::1:role/name"}.
    let options: Value = serde_json::from_str(&row.get(1).map(text).unwrap_or_default()).unwrap_or(Value::Null);
    let role = options["IAM_ROLE"].as_str().map(role_name).unwrap_or_default().to_owned();
    Ok(Observed::Present {
        id: schema.to_owned(),
        attributes: attributes(vec![
            ("cluster_identifier", json!(cluster_id)),
            ("database", json!(database)),
            ("db_user", json!(db_user)),
            ("external_schema", json!(schema)),
            ("glue_database", json!(glue_database)),
            ("iam_role", json!(role)),
        ]),
    })
}

/// `SELECT count(*) FROM "<external schema>"."<table>"` through the Data API (see
/// [`super::spectrum_count`]).
pub(super) async fn spectrum_count(ctx: &Context, statement: &Resource, table: &str) -> anyhow::Result<u64> {
    let schema = str_attr(statement, "external_schema")?;
    let identifier = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let sql = format!("SELECT count(*) FROM {}.{}", identifier(schema), identifier(table));
    let records = query(ctx, statement, &sql, Vec::new(), table).await?;
    let count = records.first().and_then(|row| row.first()).and_then(|f| f.as_long_value().ok().copied());
    let count = count.with_context(|| format!("{sql} returned no count"))?;
    u64::try_from(count).with_context(|| format!("{sql} returned {count}"))
}

/// Runs `sql` (see [`run_statement`]) and returns its result's rows (the first page: these
/// queries return one row); `what` names the object in errors.
async fn query(
    ctx: &Context,
    resource: &Resource,
    sql: &str,
    parameters: Vec<SqlParameter>,
    what: &str,
) -> anyhow::Result<Vec<Vec<Field>>> {
    let id = run_statement(ctx, resource, sql, parameters).await?;
    let result = ctx
        .aws
        .redshift_data()
        .get_statement_result()
        .id(&id)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift_data", "GetStatementResult", what, e))?;
    Ok(result.records().to_vec())
}

/// Runs one SQL statement through the Data API (never batched) and waits, at most
/// `warehouse.statement_timeout_secs`, for it to finish; returns the statement id.
///
/// Errors: the statement failed or was aborted (with Redshift's message), or did not finish in
/// time; against an emulator that never runs statements, a [`NotImplemented`].
async fn run_statement(
    ctx: &Context,
    resource: &Resource,
    sql: &str,
    parameters: Vec<SqlParameter>,
) -> anyhow::Result<String> {
    let data = ctx.aws.redshift_data();
    let (cluster_id, database, db_user) =
        (str_attr(resource, "cluster_identifier")?, str_attr(resource, "database")?, str_attr(resource, "db_user")?);
    let out = data
        .execute_statement()
        .cluster_identifier(cluster_id)
        .database(database)
        .db_user(db_user)
        .sql(sql)
        .set_parameters((!parameters.is_empty()).then_some(parameters))
        .statement_name(format!("indutech-{}", resource.address))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "redshift_data", "ExecuteStatement", &resource.name, e))?;
    let id = out.id().context("ExecuteStatement returned no id")?.to_owned();
    let bound = Duration::from_secs(ctx.environment.warehouse.statement_timeout_secs);
    let last = std::sync::Mutex::new(String::new());
    let waited = wait_until(ctx, "redshift_data", bound, "", "", || async {
        let d = data
            .describe_statement()
            .id(&id)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "redshift_data", "DescribeStatement", &id, e))?;
        let status = d.status().cloned().unwrap_or(StatusString::Submitted);
        *last.lock().expect("status lock") = status.as_str().to_owned();
        match status {
            StatusString::Finished => Ok(Some(())),
            StatusString::Failed | StatusString::Aborted => bail!(
                "statement {id} on {cluster_id} ended {}: {}",
                status.as_str(),
                d.error().unwrap_or("no error message")
            ),
            _ => Ok(None),
        }
    })
    .await;
    if waited.is_ok() {
        return Ok(id);
    }
    let status = last.lock().expect("status lock").clone();
    let err = waited.expect_err("checked above");
    if status.is_empty() || status == "FAILED" || status == "ABORTED" {
        return Err(err);
    }
    if ctx.aws.endpoint("redshift_data").is_some() {
        return Err(NotImplemented {
            operation: "ExecuteStatement".into(),
            endpoint: ctx.aws.endpoint("redshift_data").unwrap_or_default().to_owned(),
            detail: format!("statement {id} accepted but still {status} after {}s: it never runs SQL", bound.as_secs()),
        }
        .into());
    }
    bail!(
        "statement {id} on {cluster_id} still {status} after {}s: see `aws redshift-data describe-statement --id {id}`, \
         and raise warehouse.statement_timeout_secs if the cluster is busy",
        bound.as_secs()
    )
}

pub(super) async fn create(ctx: &Context, kind: RedshiftKind, resource: &Resource) -> anyhow::Result<()> {
    let redshift = ctx.aws.redshift();
    let name = resource.name.as_str();
    match kind {
        RedshiftKind::SubnetGroup => {
            let subnets = subnet_ids(ctx, &strings(&resource.attributes["subnets"])).await?;
            match redshift
                .create_cluster_subnet_group()
                .cluster_subnet_group_name(name)
                .description(str_attr(resource, "description")?)
                .set_subnet_ids(Some(subnets))
                .set_tags(Some(redshift_tags(resource)))
                .send()
                .await
            {
                Ok(_) => {}
                Err(err) if code(&err) == Some("ClusterSubnetGroupAlreadyExists") => {}
                Err(err) => return Err(sdk_error(ctx, "redshift", "CreateClusterSubnetGroup", name, err)),
            }
        }
        RedshiftKind::Cluster => {
            let a = &resource.attributes;
            let nodes = a["number_of_nodes"].as_u64().unwrap_or(1) as i32;
            let groups = security_group_ids(ctx, &strings(&a["vpc_security_groups"])).await?;
            let result = redshift
                .create_cluster()
                .cluster_identifier(name)
                .cluster_subnet_group_name(str_attr(resource, "cluster_subnet_group_name")?)
                .cluster_parameter_group_name(str_attr(resource, "cluster_parameter_group_name")?)
                .db_name(str_attr(resource, "database_name")?)
                .master_username(str_attr(resource, "master_username")?)
                .manage_master_password(a["manage_master_password"].as_bool().unwrap_or(true))
                .node_type(str_attr(resource, "node_type")?)
                .cluster_type(if nodes > 1 { "multi-node" } else { "single-node" })
                .set_number_of_nodes((nodes > 1).then_some(nodes))
                .encrypted(a["encrypted"].as_bool().unwrap_or(true))
                .publicly_accessible(a["publicly_accessible"].as_bool().unwrap_or(false))
                .enhanced_vpc_routing(a["enhanced_vpc_routing"].as_bool().unwrap_or(false))
                .set_vpc_security_group_ids(Some(groups))
                // Attached at create: attaching later needs ModifyClusterIamRoles.
                .set_iam_roles(Some(role_arns(ctx, resource).await?))
                .set_tags(Some(redshift_tags(resource)))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // A killed apply may have started it: wait for that one.
                Err(err) if code(&err) == Some("ClusterAlreadyExists") => {}
                Err(err) => return Err(sdk_error(ctx, "redshift", "CreateCluster", name, err)),
            }
            wait_available(ctx, name).await?;
        }
        RedshiftKind::DataStatement => {
            let role = role(ctx, str_attr(resource, "iam_role")?).await?;
            let sql = resource
                .content
                .as_deref()
                .with_context(|| format!("{}: the plan holds no SQL (a bug)", resource.address))?
                .replace(crate::plan::ROLE_ARN_PLACEHOLDER, &role);
            run_statement(ctx, resource, &sql, Vec::new()).await?;
        }
        RedshiftKind::Logging => enable_logging(ctx, resource).await?,
        RedshiftKind::ParameterGroup => {
            match redshift
                .create_cluster_parameter_group()
                .parameter_group_name(name)
                .parameter_group_family(str_attr(resource, "family")?)
                .description(str_attr(resource, "description")?)
                .set_tags(Some(redshift_tags(resource)))
                .send()
                .await
            {
                Ok(_) => {}
                Err(err) if code(&err) == Some("ClusterParameterGroupAlreadyExists") => {}
                Err(err) => return Err(sdk_error(ctx, "redshift", "CreateClusterParameterGroup", name, err)),
            }
            // The group exists: the cluster can use it even where the target cannot set its
            // parameters (the bed), which the gaps record then says.
            if let Err(err) = set_parameters(ctx, resource).await {
                match err.downcast_ref::<NotImplemented>() {
                    Some(gap) => ctx.record_partial_gap(&resource.address, format!("parameters not set: {gap}")),
                    None => return Err(err),
                }
            }
        }
    }
    ctx.set_id(&resource.address, name);
    Ok(())
}

pub(super) async fn update(
    ctx: &Context,
    kind: RedshiftKind,
    resource: &Resource,
    change: &Change,
) -> anyhow::Result<()> {
    let redshift = ctx.aws.redshift();
    let name = resource.name.as_str();
    let a = &resource.attributes;
    match kind {
        RedshiftKind::SubnetGroup => {
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "tags" => {
                        retag(ctx, &arn(ctx, "subnetgroup", name).await?, resource, attribute.before.as_ref()).await?
                    }
                    _ => {
                        let subnets = subnet_ids(ctx, &strings(&a["subnets"])).await?;
                        redshift
                            .modify_cluster_subnet_group()
                            .cluster_subnet_group_name(name)
                            .description(str_attr(resource, "description")?)
                            .set_subnet_ids(Some(subnets))
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "redshift", "ModifyClusterSubnetGroup", name, e))?;
                    }
                }
            }
        }
        RedshiftKind::Cluster => {
            let mut modify = redshift.modify_cluster().cluster_identifier(name);
            let mut modified = false;
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "node_type" | "number_of_nodes" => {
                        let nodes = a["number_of_nodes"].as_u64().unwrap_or(1) as i32;
                        modify = modify
                            .node_type(str_attr(resource, "node_type")?)
                            .cluster_type(if nodes > 1 { "multi-node" } else { "single-node" })
                            .set_number_of_nodes((nodes > 1).then_some(nodes));
                        modified = true;
                    }
                    "publicly_accessible" => {
                        modify = modify.publicly_accessible(a["publicly_accessible"].as_bool().unwrap_or(false));
                        modified = true;
                    }
                    // Its static parameters apply at the cluster's next reboot (README).
                    "cluster_parameter_group_name" => {
                        modify =
                            modify.cluster_parameter_group_name(str_attr(resource, "cluster_parameter_group_name")?);
                        modified = true;
                    }
                    "encrypted" => {
                        modify = modify.encrypted(a["encrypted"].as_bool().unwrap_or(true));
                        modified = true;
                    }
                    "enhanced_vpc_routing" => {
                        modify = modify.enhanced_vpc_routing(a["enhanced_vpc_routing"].as_bool().unwrap_or(false));
                        modified = true;
                    }
                    "manage_master_password" => {
                        modify = modify.manage_master_password(a["manage_master_password"].as_bool().unwrap_or(true));
                        modified = true;
                    }
                    "vpc_security_groups" => {
                        let groups = security_group_ids(ctx, &strings(&a["vpc_security_groups"])).await?;
                        modify = modify.set_vpc_security_group_ids(Some(groups));
                        modified = true;
                    }
                    "iam_roles" => {
                        let wanted = role_arns(ctx, resource).await?;
                        let current = cluster(ctx, name).await?.map(|c| c.iam_roles().to_vec()).unwrap_or_default();
                        let stale: Vec<String> = current
                            .iter()
                            .filter_map(|r| r.iam_role_arn())
                            .filter(|arn| !wanted.iter().any(|w| w == arn))
                            .map(str::to_owned)
                            .collect();
                        redshift
                            .modify_cluster_iam_roles()
                            .cluster_identifier(name)
                            .set_add_iam_roles(Some(wanted))
                            .set_remove_iam_roles((!stale.is_empty()).then_some(stale))
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "redshift", "ModifyClusterIamRoles", name, e))?;
                    }
                    "tags" => {
                        retag(ctx, &arn(ctx, "cluster", name).await?, resource, attribute.before.as_ref()).await?
                    }
                    other => {
                        bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address)
                    }
                }
            }
            if modified {
                modify.send().await.map_err(|e| sdk_error(ctx, "redshift", "ModifyCluster", name, e))?;
            }
            wait_available(ctx, name).await?;
        }
        RedshiftKind::Logging => enable_logging(ctx, resource).await?,
        RedshiftKind::ParameterGroup => {
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "parameters" => set_parameters(ctx, resource).await?,
                    "tags" => {
                        retag(ctx, &arn(ctx, "parametergroup", name).await?, resource, attribute.before.as_ref())
                            .await?
                    }
                    other => {
                        bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address)
                    }
                }
            }
        }
        RedshiftKind::DataStatement => {
            bail!(
                "{}: every attribute of the external schema forces replacement (a bug in desired state)",
                resource.address
            )
        }
    }
    Ok(())
}

pub(super) async fn delete(
    ctx: &Context,
    kind: RedshiftKind,
    change: &Change,
    delete_data: bool,
) -> anyhow::Result<()> {
    let redshift = ctx.aws.redshift();
    let name = change.name.as_str();
    match kind {
        RedshiftKind::ParameterGroup => {
            let result = redshift.delete_cluster_parameter_group().parameter_group_name(name).send().await;
            deleted(ctx, "redshift", "DeleteClusterParameterGroup", name, result, |c| {
                c == "ClusterParameterGroupNotFound"
            })
        }
        RedshiftKind::Logging => {
            let result = redshift.disable_logging().cluster_identifier(name).send().await;
            deleted(ctx, "redshift", "DisableLogging", name, result, |c| c == "ClusterNotFound")
        }
        RedshiftKind::SubnetGroup => {
            let result = redshift.delete_cluster_subnet_group().cluster_subnet_group_name(name).send().await;
            deleted(ctx, "redshift", "DeleteClusterSubnetGroup", name, result, |c| {
                c == "ClusterSubnetGroupNotFoundFault"
            })
        }
        RedshiftKind::Cluster => {
            if !delete_data {
                bail!(
                    "refusing to delete Redshift cluster {name}: it holds the warehouse's data; run again with \
                     --force-delete-data (a final snapshot is taken unless warehouse.skip_final_snapshot = true)"
                );
            }
            let mut request = redshift.delete_cluster().cluster_identifier(name);
            if ctx.environment.warehouse.skip_final_snapshot {
                request = request.skip_final_cluster_snapshot(true);
            } else {
                let snapshot = format!("{name}-final-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
                request = request.skip_final_cluster_snapshot(false).final_cluster_snapshot_identifier(snapshot);
            }
            deleted(ctx, "redshift", "DeleteCluster", name, request.send().await, |c| c == "ClusterNotFound")?;
            let next = "AWS goes on deleting it; run destroy again later";
            wait_until(
                ctx,
                "redshift",
                CLUSTER_WAIT,
                &format!("cluster {name} is still being deleted"),
                next,
                || async { Ok(cluster(ctx, name).await?.is_none().then_some(())) },
            )
            .await
        }
        RedshiftKind::DataStatement => {
            // The schema as the plan observed it: its cluster, database, user and name.
            let resource = change.observed_resource();
            if cluster(ctx, str_attr(&resource, "cluster_identifier")?).await?.is_none() {
                return Ok(()); // the schema went with its cluster
            }
            let sql = format!("DROP SCHEMA IF EXISTS {}", str_attr(&resource, "external_schema")?);
            run_statement(ctx, &resource, &sql, Vec::new()).await.map(|_| ())
        }
    }
}
