//! KMS: the lake's key (`aws_kms_key`, found by its alias, or by its `Name` tag when a run was
//! interrupted between creating the key and its alias) with its key policy, and its alias
//! (`aws_kms_alias`). The key is never scheduled for deletion while a lake bucket exists (its
//! objects would become unreadable); its policy denies disabling and deletion to all but
//! `lake.key_administrators` ([`crate::desired::lake_key_policy`]).

use anyhow::{Context as _, bail};
use aws_sdk_kms::types::{KeyMetadata, KeyState, Tag};
use serde_json::json;

use super::{Context, code, deleted, sdk_error, str_attr, tags_attr, tags_value};
use crate::plan::kind::{Kind, KmsKind};
use crate::plan::{Attributes, Change, Observed, Resource};

/// The key id the alias `alias` points at, if the alias exists.
async fn alias_target(ctx: &Context, alias: &str) -> anyhow::Result<Option<String>> {
    let mut pages = ctx.aws.kms().list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "kms", "ListAliases", alias, e))?;
        if let Some(entry) = page.aliases().iter().find(|a| a.alias_name() == Some(alias)) {
            return Ok(entry.target_key_id().map(str::to_owned));
        }
    }
    Ok(None)
}

/// The ARN of the enabled key the alias `alias` points at, if there is one: what services that
/// take a key ARN (DMS) are given, and what their answers are compared with.
///
/// Errors: ListAliases or DescribeKey failed.
pub(super) async fn key_arn_of_alias(ctx: &Context, alias: &str) -> anyhow::Result<Option<String>> {
    let Some(key_id) = alias_target(ctx, alias).await? else { return Ok(None) };
    Ok(enabled(ctx, &key_id).await?.and_then(|m| m.arn().map(str::to_owned)))
}

async fn key_tags(ctx: &Context, key_id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = ctx
        .aws
        .kms()
        .list_resource_tags()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "kms", "ListResourceTags", key_id, e))?;
    Ok(out.tags().iter().map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned())).collect())
}

/// The key's metadata if it is enabled (not disabled or pending deletion).
async fn enabled(ctx: &Context, key_id: &str) -> anyhow::Result<Option<KeyMetadata>> {
    let out = ctx
        .aws
        .kms()
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "kms", "DescribeKey", key_id, e))?;
    Ok(out.key_metadata().filter(|m| m.key_state() == Some(&KeyState::Enabled)).cloned())
}

/// The enabled key of this environment named `name`: through `alias`, else by tags.
async fn find_key(ctx: &Context, name: &str, alias: &str) -> anyhow::Result<Option<KeyMetadata>> {
    if let Some(key_id) = alias_target(ctx, alias).await?
        && let Some(key) = enabled(ctx, &key_id).await?
    {
        return Ok(Some(key));
    }
    let mut pages = ctx.aws.kms().list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(ctx, "kms", "ListKeys", name, e))?;
        for key_id in page.keys().iter().filter_map(|k| k.key_id()) {
            let tags = key_tags(ctx, key_id).await?;
            let has = |k: &str, v: &str| tags.iter().any(|(tk, tv)| tk == k && tv == v);
            if has("Name", name)
                && has(crate::model::TAG_ENV, &ctx.environment.name)
                && let Some(key) = enabled(ctx, key_id).await?
            {
                return Ok(Some(key));
            }
        }
    }
    Ok(None)
}

fn alias_of(resource_name: &str) -> String {
    format!("alias/{resource_name}")
}

pub(super) async fn observe(ctx: &Context, kind: KmsKind, resource: &Resource) -> anyhow::Result<Observed> {
    let kms = ctx.aws.kms();
    match kind {
        KmsKind::Key => {
            let Some(key) = find_key(ctx, &resource.name, &alias_of(&resource.name)).await? else {
                return Ok(Observed::Absent);
            };
            let key_id = key.key_id().to_owned();
            let rotation = kms
                .get_key_rotation_status()
                .key_id(&key_id)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "kms", "GetKeyRotationStatus", &key_id, e))?;
            let tags = key_tags(ctx, &key_id).await?;
            let policy = kms
                .get_key_policy()
                .key_id(&key_id)
                .policy_name("default")
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "kms", "GetKeyPolicy", &key_id, e))?;
            let policy = policy.policy().map_or(serde_json::Value::Null, |p| {
                serde_json::from_str(p).unwrap_or_else(|_| serde_json::Value::String(p.to_owned()))
            });
            let attributes: Attributes = [
                ("description", json!(key.description().unwrap_or_default())),
                ("enable_key_rotation", json!(rotation.key_rotation_enabled())),
                ("policy", policy),
                ("tags", tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            Ok(Observed::Present { id: key_id, attributes })
        }
        KmsKind::Alias => {
            let Some(key_id) = alias_target(ctx, &resource.name).await? else { return Ok(Observed::Absent) };
            let tags = key_tags(ctx, &key_id).await?;
            let target = tags.iter().find(|(k, _)| k == "Name").map_or_else(|| key_id.clone(), |(_, v)| v.clone());
            let attributes: Attributes = [("name", json!(resource.name)), ("target_key", json!(target))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            Ok(Observed::Present { id: resource.name.clone(), attributes })
        }
    }
}

fn kms_tags(resource: &Resource) -> anyhow::Result<Vec<Tag>> {
    Ok(tags_attr(resource)
        .into_iter()
        .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) async fn create(ctx: &Context, kind: KmsKind, resource: &Resource) -> anyhow::Result<()> {
    let kms = ctx.aws.kms();
    match kind {
        KmsKind::Key => {
            // An interrupted run may have created the key but not its alias: adopt that key.
            let key_id = match find_key(ctx, &resource.name, &alias_of(&resource.name)).await? {
                Some(key) => {
                    put_policy(ctx, key.key_id(), resource).await?;
                    key.key_id().to_owned()
                }
                None => {
                    let out = kms
                        .create_key()
                        .description(str_attr(resource, "description")?)
                        .policy(serde_json::to_string(&resource.attributes["policy"])?)
                        .set_tags(Some(kms_tags(resource)?))
                        .send()
                        .await
                        .map_err(|e| sdk_error(ctx, "kms", "CreateKey", &resource.name, e))?;
                    out.key_metadata().map(|m| m.key_id().to_owned()).context("CreateKey returned no key id")?
                }
            };
            ctx.set_id(&resource.address, &key_id);
            set_rotation(ctx, &key_id, resource).await
        }
        KmsKind::Alias => {
            let key_id = ctx.dependency_id(resource, Kind::KmsKey)?;
            match kms.create_alias().alias_name(&resource.name).target_key_id(&key_id).send().await {
                Ok(_) => {}
                Err(err) if code(&err) == Some("AlreadyExistsException") => {
                    kms.update_alias()
                        .alias_name(&resource.name)
                        .target_key_id(&key_id)
                        .send()
                        .await
                        .map_err(|e| sdk_error(ctx, "kms", "UpdateAlias", &resource.name, e))?;
                }
                Err(err) => return Err(sdk_error(ctx, "kms", "CreateAlias", &resource.name, err)),
            }
            ctx.set_id(&resource.address, &resource.name);
            Ok(())
        }
    }
}

/// Writes the key policy `resource` wants.
async fn put_policy(ctx: &Context, key_id: &str, resource: &Resource) -> anyhow::Result<()> {
    ctx.aws
        .kms()
        .put_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .policy(serde_json::to_string(&resource.attributes["policy"])?)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "kms", "PutKeyPolicy", key_id, e))?;
    Ok(())
}

async fn set_rotation(ctx: &Context, key_id: &str, resource: &Resource) -> anyhow::Result<()> {
    let kms = ctx.aws.kms();
    if resource.attributes.get("enable_key_rotation").and_then(|v| v.as_bool()).unwrap_or(true) {
        kms.enable_key_rotation()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "kms", "EnableKeyRotation", key_id, e))?;
    } else {
        kms.disable_key_rotation()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "kms", "DisableKeyRotation", key_id, e))?;
    }
    Ok(())
}

pub(super) async fn update(ctx: &Context, kind: KmsKind, resource: &Resource, change: &Change) -> anyhow::Result<()> {
    let kms = ctx.aws.kms();
    let id = change.id.as_deref().context("update without an id")?;
    match kind {
        KmsKind::Key => {
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "description" => {
                        kms.update_key_description()
                            .key_id(id)
                            .description(str_attr(resource, "description")?)
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "kms", "UpdateKeyDescription", id, e))?;
                    }
                    "enable_key_rotation" => set_rotation(ctx, id, resource).await?,
                    "policy" => put_policy(ctx, id, resource).await?,
                    "tags" => {
                        let extra = super::stale_tag_keys(attribute.before.as_ref(), resource);
                        if !extra.is_empty() {
                            kms.untag_resource()
                                .key_id(id)
                                .set_tag_keys(Some(extra))
                                .send()
                                .await
                                .map_err(|e| sdk_error(ctx, "kms", "UntagResource", id, e))?;
                        }
                        kms.tag_resource()
                            .key_id(id)
                            .set_tags(Some(kms_tags(resource)?))
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "kms", "TagResource", id, e))?;
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        KmsKind::Alias => {
            let key_id = ctx.dependency_id(resource, Kind::KmsKey)?;
            kms.update_alias()
                .alias_name(&resource.name)
                .target_key_id(key_id)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "kms", "UpdateAlias", &resource.name, e))?;
            Ok(())
        }
    }
}

pub(super) async fn delete(ctx: &Context, kind: KmsKind, change: &Change) -> anyhow::Result<()> {
    let kms = ctx.aws.kms();
    let id = change.id.as_deref().context("delete without an id")?;
    match kind {
        // KMS never deletes a key at once: the shortest waiting period is 7 days, during which
        // the key is disabled (PendingDeletion) and plan no longer finds it.
        KmsKind::Key => {
            // Every zone a lake bucket may have, the tiered one even when no longer declared.
            for zone in crate::model::LAKE_ZONES.iter().chain([&crate::model::TIERED_ZONE]) {
                let bucket = crate::model::bucket_name(&ctx.environment, zone);
                let exists = match ctx.aws.s3().head_bucket().bucket(&bucket).send().await {
                    Ok(_) => true,
                    Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
                    Err(err) => return Err(sdk_error(ctx, "s3", "HeadBucket", &bucket, err)),
                };
                if exists {
                    bail!(
                        "refusing to schedule the lake key {id} for deletion: bucket {bucket} still exists and its \
                         objects are encrypted with it (the key goes after the last lake bucket)"
                    );
                }
            }
            let result = kms.schedule_key_deletion().key_id(id).pending_window_in_days(7).send().await;
            deleted(ctx, "kms", "ScheduleKeyDeletion", id, result, |c| c == "NotFoundException")
        }
        KmsKind::Alias => {
            let result = kms.delete_alias().alias_name(id).send().await;
            deleted(ctx, "kms", "DeleteAlias", id, result, |c| c == "NotFoundException")
        }
    }
}
