//! IAM: roles (found by name; the id is the role ARN), their inline policies and instance
//! profiles (named after their role; at most one role each, as AWS allows). Policy
//! documents are compared as JSON values; IAM returns them URL-encoded, which is undone here.

use anyhow::{Context as _, bail};
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use super::{Context, code, deleted, sdk_error, stale_tag_keys, str_attr, tags_attr, tags_value};
use crate::plan::kind::IamKind;
use crate::plan::{Attributes, Change, Observed, Resource};

const NOT_FOUND: &str = "NoSuchEntity";

/// A policy document as IAM returns it (URL-encoded JSON) -> JSON.
///
/// Errors: the text is not JSON once decoded.
fn document(text: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8().context("policy document is not UTF-8")?;
    serde_json::from_str(&decoded).with_context(|| format!("policy document is not JSON: {decoded}"))
}

fn iam_tags(resource: &Resource) -> Vec<Tag> {
    tags_attr(resource).into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

/// `(role, policy name)` of an inline policy resource.
fn policy_of(resource: &Resource) -> anyhow::Result<(&str, &str)> {
    Ok((str_attr(resource, "role")?, str_attr(resource, "name")?))
}

pub(super) async fn observe(ctx: &Context, kind: IamKind, resource: &Resource) -> anyhow::Result<Observed> {
    let iam = ctx.aws.iam();
    match kind {
        IamKind::Role => {
            let role = match iam.get_role().role_name(&resource.name).send().await {
                Ok(out) => out.role.context("GetRole returned no role")?,
                Err(err) if code(&err) == Some(NOT_FOUND) => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "iam", "GetRole", &resource.name, err)),
            };
            let trust = role.assume_role_policy_document().map(document).transpose()?;
            let attributes: Attributes = [
                ("assume_role_policy", json!(trust)),
                ("description", json!(role.description())),
                ("tags", tags_value(role.tags().iter().map(|t| (t.key(), t.value())))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            Ok(Observed::Present { id: role.arn().to_owned(), attributes })
        }
        IamKind::RolePolicy => {
            let (role, name) = policy_of(resource)?;
            let out = match iam.get_role_policy().role_name(role).policy_name(name).send().await {
                Ok(out) => out,
                Err(err) if code(&err) == Some(NOT_FOUND) => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "iam", "GetRolePolicy", &resource.name, err)),
            };
            let attributes: Attributes =
                [("name", json!(name)), ("policy", document(out.policy_document())?), ("role", json!(role))]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
            Ok(Observed::Present { id: resource.name.clone(), attributes })
        }
        IamKind::InstanceProfile => {
            let profile = match iam.get_instance_profile().instance_profile_name(&resource.name).send().await {
                Ok(out) => out.instance_profile.context("GetInstanceProfile returned no profile")?,
                Err(err) if code(&err) == Some(NOT_FOUND) => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "iam", "GetInstanceProfile", &resource.name, err)),
            };
            let role = profile.roles().first().map(|r| r.role_name().to_owned());
            let attributes: Attributes =
                [("role", json!(role)), ("tags", tags_value(profile.tags().iter().map(|t| (t.key(), t.value()))))]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
            Ok(Observed::Present { id: profile.arn().to_owned(), attributes })
        }
    }
}

/// The roles in the instance profile `name` (empty if it does not exist).
async fn profile_roles(ctx: &Context, name: &str) -> anyhow::Result<Vec<String>> {
    match ctx.aws.iam().get_instance_profile().instance_profile_name(name).send().await {
        Ok(out) => Ok(out
            .instance_profile
            .map(|p| p.roles().iter().map(|r| r.role_name().to_owned()).collect())
            .unwrap_or_default()),
        Err(err) if code(&err) == Some(NOT_FOUND) => Ok(Vec::new()),
        Err(err) => Err(sdk_error(ctx, "iam", "GetInstanceProfile", name, err)),
    }
}

/// Makes `role` the only role of the instance profile `name`.
async fn set_profile_role(ctx: &Context, name: &str, role: &str) -> anyhow::Result<()> {
    let iam = ctx.aws.iam();
    let roles = profile_roles(ctx, name).await?;
    for other in roles.iter().filter(|r| *r != role) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(other)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "iam", "RemoveRoleFromInstanceProfile", name, e))?;
    }
    if !roles.iter().any(|r| r == role) {
        iam.add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "iam", "AddRoleToInstanceProfile", name, e))?;
    }
    Ok(())
}

/// Whether the instance profile `name` exists.
///
/// Errors: the read failed.
pub(super) async fn instance_profile_exists(ctx: &Context, name: &str) -> anyhow::Result<bool> {
    match ctx.aws.iam().get_instance_profile().instance_profile_name(name).send().await {
        Ok(_) => Ok(true),
        Err(err) if code(&err) == Some(NOT_FOUND) => Ok(false),
        Err(err) => Err(sdk_error(ctx, "iam", "GetInstanceProfile", name, err)),
    }
}

/// The ARN of the role called `name`, if it exists.
///
/// Errors: the read failed.
pub(super) async fn role_arn(ctx: &Context, name: &str) -> anyhow::Result<Option<String>> {
    match ctx.aws.iam().get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role.map(|r| r.arn)),
        Err(err) if code(&err) == Some(NOT_FOUND) => Ok(None),
        Err(err) => Err(sdk_error(ctx, "iam", "GetRole", name, err)),
    }
}

/// The ARN of the IAM role called `name`, which must exist.
///
/// Errors: it does not exist (it is a dependency: apply it first), or the read failed.
pub(super) async fn existing_role_arn(ctx: &Context, name: &str) -> anyhow::Result<String> {
    role_arn(ctx, name)
        .await?
        .with_context(|| format!("IAM role {name} does not exist (it is a dependency; apply it first)"))
}

/// The role name of a role ARN (`arn:aws:iam::123456789012:role/path/NAME` -> `NAME`).
pub(super) fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

async fn put_policy(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let (role, name) = policy_of(resource)?;
    let policy = resource.attributes.get("policy").context("no `policy`")?.to_string();
    ctx.aws
        .iam()
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(policy)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "iam", "PutRolePolicy", &resource.name, e))?;
    ctx.set_id(&resource.address, &resource.name);
    Ok(())
}

pub(super) async fn create(ctx: &Context, kind: IamKind, resource: &Resource) -> anyhow::Result<()> {
    let iam = ctx.aws.iam();
    match kind {
        IamKind::Role => {
            let trust = resource.attributes.get("assume_role_policy").context("no `assume_role_policy`")?.to_string();
            let arn = match iam
                .create_role()
                .role_name(&resource.name)
                .assume_role_policy_document(trust)
                .description(str_attr(resource, "description")?)
                .set_tags(Some(iam_tags(resource)))
                .send()
                .await
            {
                Ok(out) => out.role.context("CreateRole returned no role")?.arn,
                // A killed apply may have created it: adopt it; the next plan shows any drift.
                Err(err) if code(&err) == Some("EntityAlreadyExists") => {
                    role_arn(ctx, &resource.name).await?.context("GetRole found no role after EntityAlreadyExists")?
                }
                Err(err) => return Err(sdk_error(ctx, "iam", "CreateRole", &resource.name, err)),
            };
            ctx.set_id(&resource.address, &arn);
            Ok(())
        }
        IamKind::RolePolicy => put_policy(ctx, resource).await,
        IamKind::InstanceProfile => {
            let name = resource.name.as_str();
            let arn = match iam
                .create_instance_profile()
                .instance_profile_name(name)
                .set_tags(Some(iam_tags(resource)))
                .send()
                .await
            {
                Ok(out) => out.instance_profile.map(|p| p.arn).unwrap_or_default(),
                // A killed apply may have created it: adopt it.
                Err(err) if code(&err) == Some("EntityAlreadyExists") => String::new(),
                Err(err) => return Err(sdk_error(ctx, "iam", "CreateInstanceProfile", name, err)),
            };
            set_profile_role(ctx, name, str_attr(resource, "role")?).await?;
            ctx.set_id(&resource.address, if arn.is_empty() { name } else { &arn });
            Ok(())
        }
    }
}

pub(super) async fn update(ctx: &Context, kind: IamKind, resource: &Resource, change: &Change) -> anyhow::Result<()> {
    let iam = ctx.aws.iam();
    match kind {
        IamKind::Role => {
            let name = resource.name.as_str();
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "assume_role_policy" => {
                        let trust = attribute.after.as_ref().context("no trust policy")?.to_string();
                        iam.update_assume_role_policy()
                            .role_name(name)
                            .policy_document(trust)
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "iam", "UpdateAssumeRolePolicy", name, e))?;
                    }
                    "description" => {
                        iam.update_role()
                            .role_name(name)
                            .description(str_attr(resource, "description")?)
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "iam", "UpdateRole", name, e))?;
                    }
                    "tags" => {
                        let stale = stale_tag_keys(attribute.before.as_ref(), resource);
                        if !stale.is_empty() {
                            iam.untag_role()
                                .role_name(name)
                                .set_tag_keys(Some(stale))
                                .send()
                                .await
                                .map_err(|e| sdk_error(ctx, "iam", "UntagRole", name, e))?;
                        }
                        iam.tag_role()
                            .role_name(name)
                            .set_tags(Some(iam_tags(resource)))
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "iam", "TagRole", name, e))?;
                    }
                    other => {
                        bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address)
                    }
                }
            }
            Ok(())
        }
        IamKind::RolePolicy => put_policy(ctx, resource).await,
        IamKind::InstanceProfile => {
            let name = resource.name.as_str();
            for attribute in &change.attributes {
                match attribute.name.as_str() {
                    "role" => set_profile_role(ctx, name, str_attr(resource, "role")?).await?,
                    "tags" => {
                        let stale = stale_tag_keys(attribute.before.as_ref(), resource);
                        if !stale.is_empty() {
                            iam.untag_instance_profile()
                                .instance_profile_name(name)
                                .set_tag_keys(Some(stale))
                                .send()
                                .await
                                .map_err(|e| sdk_error(ctx, "iam", "UntagInstanceProfile", name, e))?;
                        }
                        iam.tag_instance_profile()
                            .instance_profile_name(name)
                            .set_tags(Some(iam_tags(resource)))
                            .send()
                            .await
                            .map_err(|e| sdk_error(ctx, "iam", "TagInstanceProfile", name, e))?;
                    }
                    other => {
                        bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address)
                    }
                }
            }
            Ok(())
        }
    }
}

pub(super) async fn delete(ctx: &Context, kind: IamKind, change: &Change) -> anyhow::Result<()> {
    let iam = ctx.aws.iam();
    match kind {
        IamKind::Role => {
            // IAM refuses to delete a role that still has inline policies or instance profiles;
            // those of indutech are deleted first (they depend on the role), anything else is
            // reported by DeleteRole's own error.
            let result = iam.delete_role().role_name(&change.name).send().await;
            deleted(ctx, "iam", "DeleteRole", &change.name, result, |c| c == NOT_FOUND)
        }
        IamKind::RolePolicy => {
            let (role, name) = change.name.split_once('/').context("a role policy is named <role>/<policy>")?;
            let result = iam.delete_role_policy().role_name(role).policy_name(name).send().await;
            deleted(ctx, "iam", "DeleteRolePolicy", &change.name, result, |c| c == NOT_FOUND)
        }
        IamKind::InstanceProfile => {
            let name = change.name.as_str();
            for role in profile_roles(ctx, name).await? {
                let result =
                    iam.remove_role_from_instance_profile().instance_profile_name(name).role_name(&role).send().await;
                deleted(ctx, "iam", "RemoveRoleFromInstanceProfile", name, result, |c| c == NOT_FOUND)?;
            }
            let result = iam.delete_instance_profile().instance_profile_name(name).send().await;
            deleted(ctx, "iam", "DeleteInstanceProfile", name, result, |c| c == NOT_FOUND)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_come_from_arns() {
        assert_eq!(role_name("arn:aws:iam::123456789012:role/indutech-dev-spectrum"), "indutech-dev-spectrum");
        assert_eq!(role_name("arn:aws:iam::123456789012:role/service/x"), "x");
    }

    #[test]
    fn policy_documents_are_url_decoded() {
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        assert_eq!(document(encoded).unwrap(), json!({"Version": "2012-10-17", "Statement": []}));
        assert_eq!(document("{\"a\": 1}").unwrap(), json!({"a": 1}));
        assert!(document("%7Bnot json").is_err());
    }
}
