//! EC2 instances (the Redpanda brokers and the worker's instances): found by `Name` and
//! environment tags among instances
//! that are not terminated; created with their fixed private IP (an IP already in use makes
//! AWS refuse a duplicate), IMDSv2 required, the root volume encrypted (the account's EBS key),
//! tags in the launch call, and the rendered cloud-init as user data; apply waits (bounded)
//! until they run, destroy until they are terminated.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_ec2::error::ProvideErrorMetadata as _;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification, Instance,
    InstanceMetadataOptionsRequest, InstanceStateName, InstanceType, ResourceType,
};
use serde_json::{Value, json};

use super::ec2::{ec2_tags, filters, is_ours, security_group_ids, subnet_ids, subnet_names, tag_specification};
use super::{Context, attributes, deleted, sdk_error, str_attr, strings, wait_until};
use crate::model::address;
use crate::plan::kind::InstanceKind;
use crate::plan::{Change, Component, Observed, Orphan, Resource};

/// How long RunInstances is retried while EC2 does not see a new instance profile yet.
const PROFILE_PROPAGATION: Duration = Duration::from_secs(90);

/// How long RunInstances is retried while a terminated instance's address is not free yet.
const IP_RELEASE: Duration = Duration::from_secs(120);

/// How long an instance may take to run or to terminate.
const INSTANCE_WAIT: Duration = Duration::from_secs(10 * 60);

/// EC2's limit on user data, bytes (before base64; for indutech's instances, gzip-compressed).
const USER_DATA_LIMIT: usize = 16 * 1024;

/// `text` gzip-compressed (best compression, no timestamp, so the same text gives the same
/// bytes), as indutech sends user data: cloud-init recognises the gzip header and decompresses
/// it, and EC2's [`USER_DATA_LIMIT`] applies to these bytes.
fn gzip_user_data(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes()).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// The text of user data as EC2 reports it (base64-decoded): decompressed when it starts with the
/// gzip header, else taken as it is (user data written by hand or by another tool).
///
/// Errors: a gzip header followed by a corrupt stream.
fn user_data_text(bytes: &[u8]) -> anyhow::Result<String> {
    use std::io::Read as _;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(String::from_utf8_lossy(bytes).into_owned());
    }
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut text).map_err(|e| anyhow::anyhow!("gzip user data: {e}"))?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn gone(state: Option<&InstanceStateName>) -> bool {
    matches!(state, Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown))
}

/// This environment's live instance called `name`, if any.
async fn instance(ctx: &Context, name: &str) -> anyhow::Result<Option<Instance>> {
    let out = ctx
        .aws
        .ec2()
        .describe_instances()
        .set_filters(Some(filters(ctx, Some(name))))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeInstances", name, e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| is_ours(ctx, i.tags(), Some(name)) && !gone(i.state().and_then(|s| s.name())))
        .cloned())
}

/// The id of a live (not terminated) instance in subnet `subnet` whose private address is `ip`.
async fn live_holder(ctx: &Context, subnet: &str, ip: &str) -> anyhow::Result<Option<String>> {
    let out = ctx
        .aws
        .ec2()
        .describe_instances()
        .filters(aws_sdk_ec2::types::Filter::builder().name("subnet-id").values(subnet).build())
        .filters(aws_sdk_ec2::types::Filter::builder().name("private-ip-address").values(ip).build())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeInstances", ip, e))?;
    // Checked here too: an emulator may ignore the filters.
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| {
            i.subnet_id() == Some(subnet)
                && i.private_ip_address() == Some(ip)
                && !gone(i.state().and_then(|s| s.name()))
        })
        .and_then(|i| i.instance_id().map(str::to_owned)))
}

/// The user data of `resource` as it is sent: its content (the cloud-init the desired state
/// rendered) gzip-compressed.
///
/// Errors: no content, or content whose digest is not the `user_data_sha256` attribute (bugs);
/// more than EC2's 16 KiB once compressed.
fn user_data(resource: &Resource) -> anyhow::Result<Vec<u8>> {
    let text = resource
        .content
        .as_deref()
        .with_context(|| format!("{}: the plan holds no user data (a bug)", resource.address))?;
    if crate::digest::sha256_hex(text) != str_attr(resource, "user_data_sha256")? {
        bail!("{}: the user data does not match its digest in the plan (a bug)", resource.address);
    }
    let compressed = gzip_user_data(text);
    if compressed.len() > USER_DATA_LIMIT {
        bail!(
            "{}: the rendered cloud-init is {} bytes gzip-compressed ({} plain); EC2 takes at most {} (the \
             environment and stream files travel in it: split the streams over environments)",
            resource.address,
            compressed.len(),
            text.len(),
            USER_DATA_LIMIT
        );
    }
    Ok(compressed)
}

pub(super) async fn observe(
    ctx: &Context,
    InstanceKind::Instance: InstanceKind,
    resource: &Resource,
) -> anyhow::Result<Observed> {
    let Some(i) = instance(ctx, &resource.name).await? else { return Ok(Observed::Absent) };
    let id = i.instance_id().unwrap_or_default().to_owned();
    let subnets = subnet_names(ctx, i.subnet_id().map(|s| vec![s.to_owned()])).await?;
    let subnet = subnets.first().map_or_else(|| json!(i.subnet_id()), |(_, name, _)| json!(name));
    let mut groups: Vec<&str> = i.security_groups().iter().filter_map(|g| g.group_name()).collect();
    groups.sort();
    let mut attrs = attributes(vec![
        ("ami", json!(i.image_id())),
        ("availability_zone", json!(i.placement().and_then(|p| p.availability_zone()))),
        ("instance_type", json!(i.instance_type().map(|t| t.as_str()))),
        ("private_ip", json!(i.private_ip_address())),
        ("subnet", subnet),
        ("tags", ec2_tags(i.tags())),
        ("vpc_security_groups", json!(groups)),
    ]);
    if let Some(profile) = i.iam_instance_profile().and_then(|p| p.arn()) {
        // arn:aws:iam::<account>:instance-profile[/path]/<name>
        attrs.insert("iam_instance_profile".into(), json!(profile.rsplit('/').next()));
    }
    if let Some(tokens) = i.metadata_options().and_then(|m| m.http_tokens()) {
        attrs.insert("metadata_http_tokens".into(), json!(tokens.as_str()));
    }
    // One more call per instance: only for those whose root volume encryption is desired.
    if resource.attributes.contains_key("root_volume_encrypted")
        && let Some(encrypted) = root_volume_encrypted(ctx, &i, &resource.name).await?
    {
        attrs.insert("root_volume_encrypted".into(), json!(encrypted));
    }
    let user_data = ctx
        .aws
        .ec2()
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeInstanceAttribute", &resource.name, e))?;
    if let Some(encoded) = user_data.user_data().and_then(|u| u.value()) {
        let bytes = aws_smithy_types::base64::decode(encoded).context("user data is not base64")?;
        let text = user_data_text(&bytes).with_context(|| format!("{}: user data", resource.name))?;
        attrs.insert("user_data_sha256".into(), json!(crate::digest::sha256_hex(&text)));
    }
    Ok(Observed::Present { id, attributes: attrs })
}

/// Whether the instance's root volume is encrypted (None: it has no EBS root volume listed).
///
/// Errors: DescribeVolumes failed.
async fn root_volume_encrypted(ctx: &Context, i: &Instance, name: &str) -> anyhow::Result<Option<bool>> {
    let root = i.root_device_name().unwrap_or_default();
    let Some(volume) =
        i.block_device_mappings().iter().find(|m| m.device_name() == Some(root)).and_then(|m| m.ebs()?.volume_id())
    else {
        return Ok(None);
    };
    let out = ctx
        .aws
        .ec2()
        .describe_volumes()
        .volume_ids(volume)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeVolumes", name, e))?;
    Ok(out.volumes().first().and_then(|v| v.encrypted()))
}

/// The device name and size (GiB) of `ami`'s root volume, which the launch's block device
/// mapping names to encrypt it (the size is the AMI's own, given explicitly).
///
/// Errors: the AMI does not exist in the region (on AWS; an emulator that launches any AMI id
/// without describing it gets `/dev/sda1` and 8 GiB: LocalStack names root volumes so and
/// refuses a mapping without a size), or DescribeImages failed.
async fn root_device(ctx: &Context, ami: &str, name: &str) -> anyhow::Result<(String, Option<i32>)> {
    let out = ctx.aws.ec2().describe_images().image_ids(ami).send().await;
    let found = match out {
        Ok(out) => out.images().first().and_then(|image| {
            let device = image.root_device_name()?.to_owned();
            let size = image
                .block_device_mappings()
                .iter()
                .find(|m| m.device_name() == Some(device.as_str()))
                .and_then(|m| m.ebs()?.volume_size());
            Some((device, size))
        }),
        Err(e) if e.as_service_error().and_then(|e| e.code()).is_some_and(|c| c.starts_with("InvalidAMIID")) => None,
        Err(e) => return Err(sdk_error(ctx, "ec2", "DescribeImages", name, e)),
    };
    match (found, ctx.aws.endpoint("ec2")) {
        (Some(root), _) => Ok(root),
        (None, Some(_)) => Ok(("/dev/sda1".to_owned(), Some(8))),
        (None, None) => bail!("{name}: AMI {ami} does not exist in this region (or is not shared with this account)"),
    }
}

async fn wait_state(ctx: &Context, name: &str, id: &str, want: InstanceStateName) -> anyhow::Result<()> {
    let what = format!("instance {name} ({id}) is not {} yet", want.as_str());
    let next = format!("check it with `aws ec2 describe-instances --instance-ids {id}`, then run apply again");
    wait_until(ctx, "ec2", INSTANCE_WAIT, &what, &next, || async {
        let out = ctx
            .aws
            .ec2()
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "ec2", "DescribeInstances", name, e))?;
        let state = out.reservations().iter().flat_map(|r| r.instances()).find_map(|i| i.state()?.name().cloned());
        if want == InstanceStateName::Running && gone(state.as_ref()) {
            bail!("instance {name} ({id}) stopped by itself ({:?}): see its console output", state);
        }
        Ok((state.as_ref() == Some(&want)).then_some(()))
    })
    .await
}

pub(super) async fn create(
    ctx: &Context,
    InstanceKind::Instance: InstanceKind,
    resource: &Resource,
) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let subnet = subnet_ids(ctx, &[str_attr(resource, "subnet")?.to_owned()]).await?.remove(0);
    let groups = security_group_ids(ctx, &strings(&resource.attributes["vpc_security_groups"])).await?;
    let user_data = aws_smithy_types::base64::encode(user_data(resource)?);
    let profile_name = resource.attributes.get("iam_instance_profile").and_then(Value::as_str);
    let ami = str_attr(resource, "ami")?;
    let encrypted = resource.attributes.get("root_volume_encrypted").and_then(Value::as_bool).unwrap_or(false);
    let root_volume = if encrypted {
        let (device, size) = root_device(ctx, ami, name).await?;
        Some(vec![
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(
                    EbsBlockDevice::builder().encrypted(true).delete_on_termination(true).set_volume_size(size).build(),
                )
                .build(),
        ])
    } else {
        None
    };
    let request = ctx
        .aws
        .ec2()
        .run_instances()
        .set_iam_instance_profile(profile_name.map(|p| IamInstanceProfileSpecification::builder().name(p).build()))
        .image_id(ami)
        .set_block_device_mappings(root_volume)
        .instance_type(InstanceType::from(str_attr(resource, "instance_type")?))
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .private_ip_address(str_attr(resource, "private_ip")?)
        .set_security_group_ids(Some(groups))
        .user_data(user_data)
        .metadata_options(InstanceMetadataOptionsRequest::builder().http_tokens(HttpTokensState::Required).build())
        .tag_specifications(tag_specification(resource, ResourceType::Instance))
        .tag_specifications(tag_specification(resource, ResourceType::Volume));
    let started = std::time::Instant::now();
    let out = loop {
        let err = match request.clone().send().await {
            Ok(out) => break out,
            Err(err) => err,
        };
        let unseen_profile = match (profile_name, err.as_service_error()) {
            (Some(_), Some(e)) => {
                e.code() == Some("NoSuchEntity")
                    || (e.code() == Some("InvalidParameterValue")
                        && e.message().is_some_and(|m| m.contains("iamInstanceProfile")))
            }
            _ => false,
        };
        let ip = str_attr(resource, "private_ip")?;
        let ip_in_use = err.as_service_error().is_some_and(|e| {
            e.code() == Some("InvalidIPAddress.InUse") || e.message().is_some_and(|m| m.contains("IP already in use"))
        });
        if ip_in_use {
            if let Some(holder) = live_holder(ctx, &subnet, ip).await? {
                bail!("RunInstances {name}: its address {ip} is held by instance {holder}, which is running");
            }
            // No live instance holds it: a terminated one did (a replaced broker or worker).
            if let Some(endpoint) = ctx.aws.endpoint("ec2") {
                return Err(super::NotImplemented {
                    operation: format!("RunInstances at {ip}, the address of a terminated instance"),
                    endpoint: endpoint.to_owned(),
                    detail: "it never releases the private addresses of terminated instances".into(),
                }
                .into());
            }
            // AWS: the terminated instance's network interface goes away shortly after.
            if started.elapsed() > IP_RELEASE {
                return Err(sdk_error(ctx, "ec2", "RunInstances", name, err));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        if !unseen_profile {
            return Err(sdk_error(ctx, "ec2", "RunInstances", name, err));
        }
        let profile = profile_name.unwrap_or_default();
        if ctx.aws.endpoint("ec2").is_some() && super::iam::instance_profile_exists(ctx, profile).await? {
            return Err(super::NotImplemented {
                operation: "RunInstances with an IAM instance profile".into(),
                endpoint: ctx.aws.endpoint("ec2").unwrap_or_default().to_owned(),
                detail: format!("its EC2 cannot see the instance profile {profile} that its IAM holds"),
            }
            .into());
        }
        // AWS: a new instance profile takes a few seconds to become visible to EC2.
        if started.elapsed() > PROFILE_PROPAGATION {
            return Err(sdk_error(ctx, "ec2", "RunInstances", name, err));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    let id = out.instances().first().and_then(|i| i.instance_id()).context("RunInstances returned no instance")?;
    ctx.set_id(&resource.address, id);
    wait_state(ctx, name, id, InstanceStateName::Running).await
}

pub(super) async fn update(
    ctx: &Context,
    InstanceKind::Instance: InstanceKind,
    resource: &Resource,
    change: &Change,
) -> anyhow::Result<()> {
    let id = ctx.id(&resource.address)?;
    for attribute in &change.attributes {
        match attribute.name.as_str() {
            "tags" => super::ec2::retag(ctx, &id, resource, attribute.before.as_ref()).await?,
            "vpc_security_groups" => {
                let groups = security_group_ids(ctx, &strings(&resource.attributes["vpc_security_groups"])).await?;
                ctx.aws
                    .ec2()
                    .modify_instance_attribute()
                    .instance_id(&id)
                    .set_groups(Some(groups))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "ModifyInstanceAttribute", &resource.name, e))?;
            }
            "metadata_http_tokens" => {
                ctx.aws
                    .ec2()
                    .modify_instance_metadata_options()
                    .instance_id(&id)
                    .http_tokens(HttpTokensState::from(str_attr(resource, "metadata_http_tokens")?))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "ModifyInstanceMetadataOptions", &resource.name, e))?;
            }
            other => bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address),
        }
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Context, InstanceKind::Instance: InstanceKind, change: &Change) -> anyhow::Result<()> {
    let Some(i) = instance(ctx, &change.name).await? else { return Ok(()) };
    let id = i.instance_id().unwrap_or_default().to_owned();
    let result = ctx.aws.ec2().terminate_instances().instance_ids(&id).send().await;
    deleted(ctx, "ec2", "TerminateInstances", &change.name, result, super::ec2::not_found)?;
    wait_state(ctx, &change.name, &id, InstanceStateName::Terminated).await
}

/// This environment's live instances that no desired resource names: brokers above
/// `redpanda.broker_count`, workers above `worker.instance_count` (or all of them once the worker
/// runs `local`). Only instances named like indutech's (`indutech-<env>-broker-N`,
/// `indutech-<env>-worker-N`) and tagged for one of `components` (all when empty) are listed.
///
/// Errors: DescribeInstances failed.
pub(super) async fn orphans(
    ctx: &Context,
    desired: &[Resource],
    components: &[Component],
) -> anyhow::Result<Vec<Orphan>> {
    let out = ctx
        .aws
        .ec2()
        .describe_instances()
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeInstances", "of the environment", e))?;
    let prefix = crate::model::resource_name(&ctx.environment, "");
    let mut orphans = Vec::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        if !is_ours(ctx, i.tags(), None) || gone(i.state().and_then(|s| s.name())) {
            continue;
        }
        let tag = |key: &str| i.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value());
        let name = tag("Name").unwrap_or_default();
        if desired.iter().any(|r| r.kind() == crate::plan::kind::Kind::Instance && r.name == name) {
            continue;
        }
        let Some((role, index)) = name.strip_prefix(&prefix).and_then(|rest| rest.split_once('-')) else { continue };
        let (component, group) = match role {
            "broker" => (Component::Redpanda, "brokers"),
            "worker" => (Component::Worker, "worker"),
            _ => continue,
        };
        let Ok(index) = index.parse::<u32>() else { continue };
        if tag(crate::model::TAG_COMPONENT) != Some(component.as_str())
            || !(components.is_empty() || components.contains(&component))
        {
            continue;
        }
        let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default();
        orphans.push(Orphan {
            address: address::instance(role, index),
            component,
            name: name.to_owned(),
            id: i.instance_id().unwrap_or_default().to_owned(),
            attributes: attributes(vec![
                ("ami", json!(i.image_id())),
                ("availability_zone", json!(zone)),
                ("instance_type", json!(i.instance_type().map(|t| t.as_str()))),
                ("private_ip", json!(i.private_ip_address())),
                ("tags", ec2_tags(i.tags())),
            ]),
            depends_on: vec![address::subnet(zone), address::security_group(group)],
        });
    }
    Ok(orphans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_user_data_is_sent_compressed_well_under_the_limit() {
        let staging = crate::config::shipped("staging");
        let text = crate::desired::render::worker_cloud_init(&staging, &"ab".repeat(32)).unwrap();
        // 12 KB of YAML take about a third of EC2's 16 KiB once compressed.
        let sent = gzip_user_data(&text);
        assert!(sent.len() <= USER_DATA_LIMIT / 3, "{} bytes compressed, {} plain", sent.len(), text.len());
        assert_eq!(user_data_text(&sent).unwrap(), text);
        assert_eq!(gzip_user_data(&text), sent, "the same text compresses to the same bytes");
        assert_eq!(user_data_text(b"#cloud-config\n").unwrap(), "#cloud-config\n", "plain user data as it is");
    }
}
