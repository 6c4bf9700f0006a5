//! CloudWatch Logs: the log group the VPN tunnels write their IKE and tunnel state logs into
//! (VPN tunnel logging delivers only there). Found by its name, which is also its id; its
//! retention and tags are attributes.

use anyhow::bail;
use serde_json::json;

use super::{Context, attributes, code, deleted, sdk_error, str_attr, tags_attr, tags_value};
use crate::plan::kind::LogsKind;
use crate::plan::{Change, Observed, Resource};

/// `arn:aws:logs:<region>:<account>:log-group:<name>`: what the VPN tunnel options and the
/// tagging calls take.
///
/// Errors: STS did not say which account the credentials are for.
pub(super) async fn log_group_arn(ctx: &Context, name: &str) -> anyhow::Result<String> {
    Ok(format!("arn:aws:logs:{}:{}:log-group:{name}", ctx.environment.region, ctx.account_id().await?))
}

pub(super) async fn observe(
    ctx: &Context,
    LogsKind::LogGroup: LogsKind,
    resource: &Resource,
) -> anyhow::Result<Observed> {
    let logs = ctx.aws.logs();
    let name = resource.name.as_str();
    let out = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "logs", "DescribeLogGroups", name, e))?;
    let Some(group) = out.log_groups().iter().find(|g| g.log_group_name() == Some(name)) else {
        return Ok(Observed::Absent);
    };
    let arn = log_group_arn(ctx, name).await?;
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "logs", "ListTagsForResource", name, e))?;
    let tags = tags.tags().map(|t| tags_value(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    Ok(Observed::Present {
        id: name.to_owned(),
        attributes: attributes(vec![
            ("name", json!(name)),
            ("retention_in_days", json!(group.retention_in_days())),
            ("tags", tags.unwrap_or_else(|| json!({}))),
        ]),
    })
}

async fn put_retention(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let Some(days) = resource.attributes["retention_in_days"].as_i64() else {
        bail!("{}: no retention_in_days (a bug in desired state)", resource.address)
    };
    ctx.aws
        .logs()
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days as i32)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "logs", "PutRetentionPolicy", name, e))?;
    Ok(())
}

pub(super) async fn create(ctx: &Context, LogsKind::LogGroup: LogsKind, resource: &Resource) -> anyhow::Result<()> {
    let name = str_attr(resource, "name")?;
    match ctx
        .aws
        .logs()
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags_attr(resource).into_iter().collect()))
        .send()
        .await
    {
        Ok(_) => {}
        // An interrupted apply created it: carry on.
        Err(err) if code(&err) == Some("ResourceAlreadyExistsException") => {}
        Err(err) => return Err(sdk_error(ctx, "logs", "CreateLogGroup", name, err)),
    }
    put_retention(ctx, resource).await?;
    ctx.set_id(&resource.address, name);
    Ok(())
}

pub(super) async fn update(
    ctx: &Context,
    LogsKind::LogGroup: LogsKind,
    resource: &Resource,
    change: &Change,
) -> anyhow::Result<()> {
    let logs = ctx.aws.logs();
    let name = resource.name.as_str();
    for attribute in &change.attributes {
        match attribute.name.as_str() {
            "retention_in_days" => put_retention(ctx, resource).await?,
            "tags" => {
                let arn = log_group_arn(ctx, name).await?;
                let stale = super::stale_tag_keys(attribute.before.as_ref(), resource);
                if !stale.is_empty() {
                    logs.untag_resource()
                        .resource_arn(&arn)
                        .set_tag_keys(Some(stale))
                        .send()
                        .await
                        .map_err(|e| sdk_error(ctx, "logs", "UntagResource", name, e))?;
                }
                logs.tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags_attr(resource).into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "logs", "TagResource", name, e))?;
            }
            other => bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address),
        }
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Context, LogsKind::LogGroup: LogsKind, change: &Change) -> anyhow::Result<()> {
    let result = ctx.aws.logs().delete_log_group().log_group_name(&change.name).send().await;
    deleted(ctx, "logs", "DeleteLogGroup", &change.name, result, |c| c == "ResourceNotFoundException")
}
