//! EC2 networking: VPC, private subnets, the private route table and its associations,
//! security groups (ingress and egress rules as one attribute each), the VPC's default security
//! group, the S3 gateway and Glue interface endpoints, and the VPC's flow logs. Everything is
//! found by its `Name` tag and the environment tag, and tagged in the create call itself.

use anyhow::{Context as _, bail};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, FlowLogsResourceType, IpPermission, IpRange, LogDestinationType, ResourceType, Tag,
    TagSpecification, TrafficType, VpcAttributeName, VpcEndpointType,
};
use serde_json::{Value, json};

use super::{Context, attributes, code, deleted, sdk_error, str_attr, tags_attr, tags_value};
use crate::model::TAG_ENV;
use crate::model::address;
use crate::plan::kind::{Ec2Kind, Kind};
use crate::plan::{Attributes, Change, Component, Observed, Orphan, Resource};

pub(super) fn filters(ctx: &Context, name: Option<&str>) -> Vec<Filter> {
    let mut filters = vec![Filter::builder().name(format!("tag:{TAG_ENV}")).values(&ctx.environment.name).build()];
    if let Some(name) = name {
        filters.push(Filter::builder().name("tag:Name").values(name).build());
    }
    filters
}

/// Whether an EC2 error code says the resource is already gone (`InvalidVpcID.NotFound`, ...,
/// or a gateway that is no longer attached).
pub(super) fn not_found(code: &str) -> bool {
    code.contains("NotFound") || code == "Gateway.NotAttached"
}

/// Whether `tags` carry this environment's tag and, if given, the `Name`. Emulators do not
/// all apply `Describe*` filters (LocalStack ignores them for customer gateways), so every
/// lookup checks the tags itself instead of trusting the filter.
pub(super) fn is_ours(ctx: &Context, tags: &[Tag], name: Option<&str>) -> bool {
    let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
    has(TAG_ENV, &ctx.environment.name) && name.is_none_or(|n| has("Name", n))
}

pub(super) fn ec2_tags(tags: &[Tag]) -> Value {
    tags_value(tags.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
}

pub(super) fn tag_specification(resource: &Resource, resource_type: ResourceType) -> TagSpecification {
    let tags = tags_attr(resource).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    TagSpecification::builder().resource_type(resource_type).set_tags(Some(tags)).build()
}

/// The names of the subnets `ids`, in their order; an id that is not one of this environment's
/// subnets stays as it is (so a foreign subnet shows as a difference).
///
/// Errors: DescribeSubnets failed.
pub(super) async fn names_of_subnets(ctx: &Context, ids: &[String]) -> anyhow::Result<Vec<String>> {
    let known = subnet_names(ctx, Some(ids.to_vec())).await?;
    Ok(ids
        .iter()
        .map(|id| known.iter().find(|(i, _, _)| i == id).map_or_else(|| id.clone(), |(_, n, _)| n.clone()))
        .collect())
}

/// `(id, name, zone)` of this environment's subnets, optionally only those with these ids.
pub(super) async fn subnet_names(
    ctx: &Context,
    ids: Option<Vec<String>>,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let out = ctx
        .aws
        .ec2()
        .describe_subnets()
        .set_subnet_ids(ids)
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSubnets", "of the environment", e))?;
    Ok(out
        .subnets()
        .iter()
        .filter(|s| is_ours(ctx, s.tags(), None))
        .map(|s| {
            let name = name_tag(s.tags()).unwrap_or_default();
            (
                s.subnet_id().unwrap_or_default().to_owned(),
                name.to_owned(),
                s.availability_zone().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// The id of this environment's security group called `name`, if it exists.
pub(super) async fn security_group_id(ctx: &Context, name: &str) -> anyhow::Result<Option<String>> {
    let out = ctx
        .aws
        .ec2()
        .describe_security_groups()
        .set_filters(Some(filters(ctx, Some(name))))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSecurityGroups", name, e))?;
    Ok(out
        .security_groups()
        .iter()
        .find(|g| is_ours(ctx, g.tags(), Some(name)))
        .and_then(|g| g.group_id().map(str::to_owned)))
}

/// The names of the security groups `ids`, in their order; an id that is not one of this
/// environment's groups stays as it is (so a foreign group shows as a difference). One call.
///
/// Errors: DescribeSecurityGroups failed.
pub(super) async fn names_of_security_groups(ctx: &Context, ids: &[String]) -> anyhow::Result<Vec<String>> {
    let out = ctx
        .aws
        .ec2()
        .describe_security_groups()
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSecurityGroups", "of the environment", e))?;
    let groups = out.security_groups();
    Ok(ids
        .iter()
        .map(|id| {
            groups
                .iter()
                .find(|g| g.group_id() == Some(id.as_str()) && is_ours(ctx, g.tags(), None))
                .and_then(|g| name_tag(g.tags()))
                .map_or_else(|| id.clone(), str::to_owned)
        })
        .collect())
}

/// The `Name` tag's value among `tags`.
fn name_tag(tags: &[Tag]) -> Option<&str> {
    tags.iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value())
}

/// The private route table's id and associations `(association id, subnet id)`.
async fn route_table(ctx: &Context, name: &str) -> anyhow::Result<Option<(String, Vec<(String, String)>, Value)>> {
    let out = ctx
        .aws
        .ec2()
        .describe_route_tables()
        .set_filters(Some(filters(ctx, Some(name))))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeRouteTables", name, e))?;
    Ok(out.route_tables().iter().find(|rt| is_ours(ctx, rt.tags(), Some(name))).map(|rt| {
        let associations = rt
            .associations()
            .iter()
            .filter_map(|a| Some((a.route_table_association_id()?.to_owned(), a.subnet_id()?.to_owned())))
            .collect();
        (rt.route_table_id().unwrap_or_default().to_owned(), associations, ec2_tags(rt.tags()))
    }))
}

/// Every rule of `permissions` as `{protocol, from_port, to_port, <source>, description}`,
/// whatever its source (`cidr`, `ipv6_cidr`, `group`, `prefix_list`), sorted: so a rule that
/// another tool added with another source, or a changed description, is drift.
fn rules_value(permissions: &[IpPermission]) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    for p in permissions {
        let rule = |source: &str, value: Option<&str>, description: Option<&str>| json!({"protocol": p.ip_protocol(), "from_port": p.from_port(), "to_port": p.to_port(), source: value, "description": description});
        rules.extend(p.ip_ranges().iter().map(|r| rule("cidr", r.cidr_ip(), r.description())));
        rules.extend(p.ipv6_ranges().iter().map(|r| rule("ipv6_cidr", r.cidr_ipv6(), r.description())));
        rules.extend(p.user_id_group_pairs().iter().map(|g| rule("group", g.group_id(), g.description())));
        rules.extend(p.prefix_list_ids().iter().map(|l| rule("prefix_list", l.prefix_list_id(), l.description())));
    }
    rules.sort_by_key(|r| r.to_string());
    Value::Array(rules)
}

/// Subnet ids of the subnets called `names`.
///
/// Errors: one does not exist.
pub(super) async fn subnet_ids(ctx: &Context, names: &[String]) -> anyhow::Result<Vec<String>> {
    let known = subnet_names(ctx, None).await?;
    names
        .iter()
        .map(|name| {
            known
                .iter()
                .find(|(_, n, _)| n == name)
                .map(|(id, _, _)| id.clone())
                .with_context(|| format!("subnet {name} does not exist (apply the network component first)"))
        })
        .collect()
}

/// Security group ids of this environment's groups called `names`.
///
/// Errors: one does not exist.
pub(super) async fn security_group_ids(ctx: &Context, names: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in names {
        let id = security_group_id(ctx, name)
            .await?
            .with_context(|| format!("security group {name} does not exist (apply the network component first)"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// The id of this environment's VPC named `name` (None: there is none).
///
/// Errors: DescribeVpcs failed.
pub(super) async fn vpc_id(ctx: &Context, name: &str) -> anyhow::Result<Option<String>> {
    let out = ctx
        .aws
        .ec2()
        .describe_vpcs()
        .set_filters(Some(filters(ctx, Some(name))))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcs", name, e))?;
    Ok(out.vpcs().iter().find(|v| is_ours(ctx, v.tags(), Some(name))).and_then(|v| v.vpc_id()).map(str::to_owned))
}

/// The default security group of VPC `vpc_name` (None: no such VPC).
///
/// Errors: DescribeVpcs or DescribeSecurityGroups failed.
async fn default_security_group(
    ctx: &Context,
    vpc_name: &str,
) -> anyhow::Result<Option<aws_sdk_ec2::types::SecurityGroup>> {
    let Some(vpc) = vpc_id(ctx, vpc_name).await? else { return Ok(None) };
    let out = ctx
        .aws
        .ec2()
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSecurityGroups", vpc_name, e))?;
    Ok(out.security_groups().first().cloned())
}

/// Revokes every ingress and egress rule of the default security group of VPC `vpc_name`.
///
/// Errors: the VPC or its default group is not found, or a revoke failed.
async fn empty_default_security_group(ctx: &Context, vpc_name: &str) -> anyhow::Result<String> {
    let group = default_security_group(ctx, vpc_name)
        .await?
        .with_context(|| format!("VPC {vpc_name} or its default security group does not exist"))?;
    let id = group.group_id().unwrap_or_default().to_owned();
    change_rules(ctx, &id, Direction::Ingress, Verb::Revoke, group.ip_permissions().to_vec()).await?;
    change_rules(ctx, &id, Direction::Egress, Verb::Revoke, group.ip_permissions_egress().to_vec()).await?;
    Ok(id)
}

pub(super) async fn observe(ctx: &Context, kind: Ec2Kind, resource: &Resource) -> anyhow::Result<Observed> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    match kind {
        Ec2Kind::Vpc => {
            let out = ec2
                .describe_vpcs()
                .set_filters(Some(filters(ctx, Some(name))))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcs", name, e))?;
            let Some(vpc) = out.vpcs().iter().find(|v| is_ours(ctx, v.tags(), Some(name))) else {
                return Ok(Observed::Absent);
            };
            let id = vpc.vpc_id().unwrap_or_default().to_owned();
            let mut flags = Vec::new();
            for attribute in [VpcAttributeName::EnableDnsHostnames, VpcAttributeName::EnableDnsSupport] {
                let out = ec2
                    .describe_vpc_attribute()
                    .vpc_id(&id)
                    .attribute(attribute.clone())
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcAttribute", name, e))?;
                let value = match attribute {
                    VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
                    _ => out.enable_dns_support(),
                };
                flags.push(value.and_then(|v| v.value()).unwrap_or(false));
            }
            Ok(Observed::Present {
                id,
                attributes: attributes(vec![
                    ("cidr_block", json!(vpc.cidr_block())),
                    ("enable_dns_hostnames", json!(flags[0])),
                    ("enable_dns_support", json!(flags[1])),
                    ("tags", ec2_tags(vpc.tags())),
                ]),
            })
        }
        Ec2Kind::Subnet => {
            let out = ec2
                .describe_subnets()
                .set_filters(Some(filters(ctx, Some(name))))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "DescribeSubnets", name, e))?;
            let Some(subnet) = out.subnets().iter().find(|s| is_ours(ctx, s.tags(), Some(name))) else {
                return Ok(Observed::Absent);
            };
            Ok(Observed::Present {
                id: subnet.subnet_id().unwrap_or_default().to_owned(),
                attributes: subnet_attributes(subnet),
            })
        }
        Ec2Kind::RouteTable => match route_table(ctx, name).await? {
            None => Ok(Observed::Absent),
            Some((id, _, tags)) => Ok(Observed::Present { id, attributes: attributes(vec![("tags", tags)]) }),
        },
        Ec2Kind::RouteTableAssociation => {
            let table_name = str_attr(resource, "route_table")?;
            let subnet_name = str_attr(resource, "subnet")?;
            let Some((_, associations, _)) = route_table(ctx, table_name).await? else { return Ok(Observed::Absent) };
            let subnets = subnet_names(ctx, None).await?;
            let found = associations
                .iter()
                .find(|(_, subnet_id)| subnets.iter().any(|(id, name, _)| id == subnet_id && name == subnet_name));
            Ok(match found {
                None => Observed::Absent,
                Some((association, _)) => Observed::Present {
                    id: association.clone(),
                    attributes: attributes(vec![("route_table", json!(table_name)), ("subnet", json!(subnet_name))]),
                },
            })
        }
        Ec2Kind::SecurityGroup => {
            let out = ec2
                .describe_security_groups()
                .set_filters(Some(filters(ctx, Some(name))))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "DescribeSecurityGroups", name, e))?;
            let Some(group) = out.security_groups().iter().find(|g| is_ours(ctx, g.tags(), Some(name))) else {
                return Ok(Observed::Absent);
            };
            Ok(Observed::Present {
                id: group.group_id().unwrap_or_default().to_owned(),
                attributes: attributes(vec![
                    ("description", json!(group.description())),
                    ("egress", rules_value(group.ip_permissions_egress())),
                    ("ingress", rules_value(group.ip_permissions())),
                    ("tags", ec2_tags(group.tags())),
                ]),
            })
        }
        Ec2Kind::DefaultSecurityGroup => {
            let vpc = str_attr(resource, "vpc")?;
            let Some(group) = default_security_group(ctx, vpc).await? else { return Ok(Observed::Absent) };
            Ok(Observed::Present {
                id: group.group_id().unwrap_or_default().to_owned(),
                attributes: attributes(vec![
                    ("egress", rules_value(group.ip_permissions_egress())),
                    ("ingress", rules_value(group.ip_permissions())),
                    ("vpc", json!(vpc)),
                ]),
            })
        }
        Ec2Kind::FlowLog => {
            let out = ec2
                .describe_flow_logs()
                .set_filter(Some(filters(ctx, Some(name))))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "DescribeFlowLogs", name, e))?;
            let Some(log) = out.flow_logs().iter().find(|l| is_ours(ctx, l.tags(), Some(name))) else {
                return Ok(Observed::Absent);
            };
            let vpc = str_attr(resource, "vpc")?;
            let resource_id = log.resource_id().unwrap_or_default();
            let vpc = if vpc_id(ctx, vpc).await?.as_deref() == Some(resource_id) { vpc } else { resource_id };
            Ok(Observed::Present {
                id: log.flow_log_id().unwrap_or_default().to_owned(),
                attributes: attributes(vec![
                    ("log_destination", json!(log.log_destination())),
                    ("log_destination_type", json!(log.log_destination_type().map(|t| t.as_str()))),
                    ("max_aggregation_interval", json!(log.max_aggregation_interval())),
                    ("tags", ec2_tags(log.tags())),
                    ("traffic_type", json!(log.traffic_type().map(|t| t.as_str()))),
                    ("vpc", json!(vpc)),
                ]),
            })
        }
        Ec2Kind::VpcEndpoint => {
            let out = ec2
                .describe_vpc_endpoints()
                .set_filters(Some(filters(ctx, Some(name))))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcEndpoints", name, e))?;
            let Some(endpoint) = out.vpc_endpoints().iter().find(|e| {
                is_ours(ctx, e.tags(), Some(name))
                    && !matches!(
                        e.state().map(|s| s.as_str().to_ascii_lowercase()).as_deref(),
                        Some("deleted" | "deleting")
                    )
            }) else {
                return Ok(Observed::Absent);
            };
            let mut tables = Vec::new();
            if !endpoint.route_table_ids().is_empty() {
                let out = ec2
                    .describe_route_tables()
                    .set_route_table_ids(Some(endpoint.route_table_ids().to_vec()))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "DescribeRouteTables", name, e))?;
                for rt in out.route_tables() {
                    let rt_name = name_tag(rt.tags());
                    tables.push(rt_name.or(rt.route_table_id()).unwrap_or_default().to_owned());
                }
                tables.sort();
            }
            let mut subnets = names_of_subnets(ctx, endpoint.subnet_ids()).await?;
            subnets.sort();
            let mut groups: Vec<&str> = endpoint.groups().iter().filter_map(|g| g.group_name()).collect();
            groups.sort();
            Ok(Observed::Present {
                id: endpoint.vpc_endpoint_id().unwrap_or_default().to_owned(),
                attributes: attributes(vec![
                    ("private_dns_enabled", json!(endpoint.private_dns_enabled().unwrap_or(false))),
                    ("route_tables", json!(tables)),
                    ("security_groups", json!(groups)),
                    ("service_name", json!(endpoint.service_name())),
                    ("subnets", json!(subnets)),
                    ("tags", ec2_tags(endpoint.tags())),
                    ("vpc_endpoint_type", json!(endpoint.vpc_endpoint_type().map(|t| t.as_str()))),
                ]),
            })
        }
    }
}

fn subnet_attributes(subnet: &aws_sdk_ec2::types::Subnet) -> Attributes {
    attributes(vec![
        ("availability_zone", json!(subnet.availability_zone())),
        ("cidr_block", json!(subnet.cidr_block())),
        ("map_public_ip_on_launch", json!(subnet.map_public_ip_on_launch().unwrap_or(false))),
        ("tags", ec2_tags(subnet.tags())),
    ])
}

async fn set_dns(ctx: &Context, vpc_id: &str, resource: &Resource) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let flag = |name: &str| resource.attributes.get(name).and_then(Value::as_bool).unwrap_or(true);
    // One attribute per call, as the API requires; support before hostnames.
    ec2.modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_support(AttributeBooleanValue::builder().value(flag("enable_dns_support")).build())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "ModifyVpcAttribute", vpc_id, e))?;
    ec2.modify_vpc_attribute()
        .vpc_id(vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(flag("enable_dns_hostnames")).build())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "ModifyVpcAttribute", vpc_id, e))?;
    Ok(())
}

/// Which rules of a security group.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

/// The rule `{protocol, from_port, to_port, cidr, description}` as EC2 takes it; without its
/// description for a revoke, which matches on protocol, ports and source.
fn permission(rule: &Value, with_description: bool) -> IpPermission {
    let range = IpRange::builder().cidr_ip(rule["cidr"].as_str().unwrap_or_default());
    let range = match rule["description"].as_str() {
        Some(description) if with_description => range.description(description),
        _ => range,
    };
    IpPermission::builder()
        .ip_protocol(rule["protocol"].as_str().unwrap_or("tcp"))
        .set_from_port(rule["from_port"].as_i64().map(|p| p as i32))
        .set_to_port(rule["to_port"].as_i64().map(|p| p as i32))
        .ip_ranges(range.build())
        .build()
}

/// Whether rules are added or removed.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Authorize,
    Revoke,
}

/// Adds (`Authorize`) or removes (`Revoke`) `permissions` on group `group_id`; a rule already
/// there, or already gone, is not an error.
///
/// Errors: the call failed otherwise.
async fn change_rules(
    ctx: &Context,
    group_id: &str,
    direction: Direction,
    verb: Verb,
    permissions: Vec<IpPermission>,
) -> anyhow::Result<()> {
    if permissions.is_empty() {
        return Ok(());
    }
    let ec2 = ctx.aws.ec2();
    // Four operations of four request types that take the same arguments.
    macro_rules! call {
        ($method:ident, $operation:literal, $harmless:literal) => {
            match ec2.$method().group_id(group_id).set_ip_permissions(Some(permissions)).send().await {
                Ok(_) => Ok(()),
                Err(err) if code(&err) == Some($harmless) => Ok(()),
                Err(err) => Err(sdk_error(ctx, "ec2", $operation, group_id, err)),
            }
        };
    }
    match (verb, direction) {
        (Verb::Authorize, Direction::Ingress) => {
            call!(authorize_security_group_ingress, "AuthorizeSecurityGroupIngress", "InvalidPermission.Duplicate")
        }
        (Verb::Authorize, Direction::Egress) => {
            call!(authorize_security_group_egress, "AuthorizeSecurityGroupEgress", "InvalidPermission.Duplicate")
        }
        (Verb::Revoke, Direction::Ingress) => {
            call!(revoke_security_group_ingress, "RevokeSecurityGroupIngress", "InvalidPermission.NotFound")
        }
        (Verb::Revoke, Direction::Egress) => {
            call!(revoke_security_group_egress, "RevokeSecurityGroupEgress", "InvalidPermission.NotFound")
        }
    }
}

/// Makes the `direction` rules of group `group_id` what `resource` says, from `before` (as
/// observed): revokes the rules no longer wanted first (a rule whose description changed is
/// revoked and added again: EC2 refuses a second rule with the same source and ports).
async fn sync_rules(
    ctx: &Context,
    group_id: &str,
    direction: Direction,
    before: &[&Value],
    resource: &Resource,
) -> anyhow::Result<()> {
    let key = match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let after: Vec<&Value> = resource.attributes[key].as_array().into_iter().flatten().collect();
    let extra: Vec<IpPermission> = before.iter().filter(|r| !after.contains(r)).map(|r| permission(r, false)).collect();
    change_rules(ctx, group_id, direction, Verb::Revoke, extra).await?;
    let missing: Vec<IpPermission> =
        after.iter().filter(|r| !before.contains(r)).map(|r| permission(r, true)).collect();
    change_rules(ctx, group_id, direction, Verb::Authorize, missing).await
}

pub(super) async fn create(ctx: &Context, kind: Ec2Kind, resource: &Resource) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let id = match kind {
        Ec2Kind::Vpc => {
            let out = ec2
                .create_vpc()
                .cidr_block(str_attr(resource, "cidr_block")?)
                .tag_specifications(tag_specification(resource, ResourceType::Vpc))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateVpc", name, e))?;
            let id = out.vpc().and_then(|v| v.vpc_id()).context("CreateVpc returned no id")?.to_owned();
            ctx.set_id(&resource.address, &id);
            set_dns(ctx, &id, resource).await?;
            id
        }
        Ec2Kind::Subnet => {
            let out = ec2
                .create_subnet()
                .vpc_id(ctx.dependency_id(resource, Kind::Vpc)?)
                .cidr_block(str_attr(resource, "cidr_block")?)
                .availability_zone(str_attr(resource, "availability_zone")?)
                .tag_specifications(tag_specification(resource, ResourceType::Subnet))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateSubnet", name, e))?;
            out.subnet().and_then(|s| s.subnet_id()).context("CreateSubnet returned no id")?.to_owned()
        }
        Ec2Kind::RouteTable => {
            let out = ec2
                .create_route_table()
                .vpc_id(ctx.dependency_id(resource, Kind::Vpc)?)
                .tag_specifications(tag_specification(resource, ResourceType::RouteTable))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateRouteTable", name, e))?;
            out.route_table().and_then(|r| r.route_table_id()).context("CreateRouteTable returned no id")?.to_owned()
        }
        Ec2Kind::RouteTableAssociation => {
            let subnet = resource.depends_on.iter().find(|d| d.starts_with("aws_subnet.")).context("no subnet")?;
            let out = ec2
                .associate_route_table()
                .route_table_id(ctx.dependency_id(resource, Kind::RouteTable)?)
                .subnet_id(ctx.id(subnet)?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "AssociateRouteTable", name, e))?;
            out.association_id().context("AssociateRouteTable returned no id")?.to_owned()
        }
        Ec2Kind::SecurityGroup => {
            let out = ec2
                .create_security_group()
                .group_name(name)
                .description(str_attr(resource, "description")?)
                .vpc_id(ctx.dependency_id(resource, Kind::Vpc)?)
                .tag_specifications(tag_specification(resource, ResourceType::SecurityGroup))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateSecurityGroup", name, e))?;
            let id = out.group_id().context("CreateSecurityGroup returned no id")?.to_owned();
            // EC2 creates the group with one egress rule (everything to 0.0.0.0/0): replaced
            // by the declared ones.
            let default_egress = json!({"protocol": "-1", "from_port": null, "to_port": null, "cidr": "0.0.0.0/0"});
            sync_rules(ctx, &id, Direction::Egress, &[&default_egress], resource).await?;
            sync_rules(ctx, &id, Direction::Ingress, &[], resource).await?;
            id
        }
        // AWS creates it with the VPC: "creating" it takes it over and empties it.
        Ec2Kind::DefaultSecurityGroup => empty_default_security_group(ctx, str_attr(resource, "vpc")?).await?,
        Ec2Kind::FlowLog => {
            let a = &resource.attributes;
            let out = ec2
                .create_flow_logs()
                .resource_ids(ctx.dependency_id(resource, Kind::Vpc)?)
                .resource_type(FlowLogsResourceType::Vpc)
                .traffic_type(TrafficType::from(str_attr(resource, "traffic_type")?))
                .log_destination_type(LogDestinationType::from(str_attr(resource, "log_destination_type")?))
                .log_destination(str_attr(resource, "log_destination")?)
                .set_max_aggregation_interval(a["max_aggregation_interval"].as_i64().map(|s| s as i32))
                .tag_specifications(tag_specification(resource, ResourceType::VpcFlowLog))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateFlowLogs", name, e))?;
            // A refused destination (the bucket missing, its policy refusing delivery) comes back
            // as an unsuccessful item, not an error.
            if let Some(item) = out.unsuccessful().first() {
                let error = item.error();
                bail!(
                    "CreateFlowLogs {name}: {} ({})",
                    error.and_then(|e| e.message()).unwrap_or("refused"),
                    error.and_then(|e| e.code()).unwrap_or("no code")
                );
            }
            out.flow_log_ids().first().context("CreateFlowLogs returned no id")?.to_owned()
        }
        Ec2Kind::VpcEndpoint => {
            let kind = VpcEndpointType::from(str_attr(resource, "vpc_endpoint_type")?);
            let request = ec2
                .create_vpc_endpoint()
                .vpc_id(ctx.dependency_id(resource, Kind::Vpc)?)
                .service_name(str_attr(resource, "service_name")?)
                .vpc_endpoint_type(kind.clone());
            // A gateway endpoint is a route in the route table; an interface endpoint is a
            // network interface in each subnet, behind the security group.
            let request = if kind == VpcEndpointType::Interface {
                let a = &resource.attributes;
                request
                    .set_subnet_ids(Some(subnet_ids(ctx, &super::strings(&a["subnets"])).await?))
                    .set_security_group_ids(Some(
                        security_group_ids(ctx, &super::strings(&a["security_groups"])).await?,
                    ))
                    .private_dns_enabled(
                        resource.attributes.get("private_dns_enabled").and_then(Value::as_bool).unwrap_or(false),
                    )
            } else {
                request.route_table_ids(ctx.dependency_id(resource, Kind::RouteTable)?)
            };
            let out = request
                .client_token(format!("{name}-{}", ctx.dependency_id(resource, Kind::Vpc)?))
                .tag_specifications(tag_specification(resource, ResourceType::VpcEndpoint))
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "ec2", "CreateVpcEndpoint", name, e))?;
            out.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).context("CreateVpcEndpoint returned no id")?.to_owned()
        }
    };
    ctx.set_id(&resource.address, &id);
    Ok(())
}

pub(super) async fn retag(ctx: &Context, id: &str, resource: &Resource, before: Option<&Value>) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let want = tags_attr(resource);
    let extra: Vec<Tag> =
        super::stale_tag_keys(before, resource).into_iter().map(|k| Tag::builder().key(k).build()).collect();
    if !extra.is_empty() {
        ec2.delete_tags()
            .resources(id)
            .set_tags(Some(extra))
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "ec2", "DeleteTags", id, e))?;
    }
    let tags = want.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    ec2.create_tags()
        .resources(id)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateTags", id, e))?;
    Ok(())
}

pub(super) async fn update(ctx: &Context, kind: Ec2Kind, resource: &Resource, change: &Change) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let id = change.id.as_deref().context("update without an id")?;
    for attribute in &change.attributes {
        match (kind, attribute.name.as_str()) {
            (_, "tags") => retag(ctx, id, resource, attribute.before.as_ref()).await?,
            (Ec2Kind::Vpc, "enable_dns_hostnames" | "enable_dns_support") => set_dns(ctx, id, resource).await?,
            (Ec2Kind::Subnet, "map_public_ip_on_launch") => {
                let on = resource.attributes["map_public_ip_on_launch"].as_bool().unwrap_or(false);
                ec2.modify_subnet_attribute()
                    .subnet_id(id)
                    .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "ModifySubnetAttribute", id, e))?;
            }
            (Ec2Kind::SecurityGroup, direction @ ("ingress" | "egress")) => {
                let before: Vec<&Value> =
                    attribute.before.as_ref().and_then(Value::as_array).into_iter().flatten().collect();
                let direction = if direction == "ingress" { Direction::Ingress } else { Direction::Egress };
                sync_rules(ctx, id, direction, &before, resource).await?;
            }
            (Ec2Kind::DefaultSecurityGroup, "ingress" | "egress") => {
                empty_default_security_group(ctx, str_attr(resource, "vpc")?).await?;
            }
            (Ec2Kind::VpcEndpoint, "route_tables") => {
                let want = ctx.dependency_id(resource, Kind::RouteTable)?;
                let out = ec2
                    .describe_vpc_endpoints()
                    .vpc_endpoint_ids(id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcEndpoints", id, e))?;
                let have: Vec<String> =
                    out.vpc_endpoints().first().map(|e| e.route_table_ids().to_vec()).unwrap_or_default();
                let remove: Vec<String> = have.iter().filter(|t| **t != want).cloned().collect();
                ec2.modify_vpc_endpoint()
                    .vpc_endpoint_id(id)
                    .set_add_route_table_ids((!have.contains(&want)).then(|| vec![want.clone()]))
                    .set_remove_route_table_ids((!remove.is_empty()).then_some(remove))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "ec2", "ModifyVpcEndpoint", id, e))?;
            }
            (kind, name) => bail!("{kind}.{name} cannot change in place (a bug: it should force replacement)"),
        }
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Context, kind: Ec2Kind, change: &Change) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let id = change.id.as_deref().context("delete without an id")?;
    macro_rules! call {
        ($operation:literal, $request:expr) => {
            deleted(ctx, "ec2", $operation, &change.name, $request.send().await, not_found)
        };
    }
    match kind {
        Ec2Kind::Vpc => call!("DeleteVpc", ec2.delete_vpc().vpc_id(id)),
        Ec2Kind::Subnet => call!("DeleteSubnet", ec2.delete_subnet().subnet_id(id)),
        Ec2Kind::RouteTable => call!("DeleteRouteTable", ec2.delete_route_table().route_table_id(id)),
        Ec2Kind::RouteTableAssociation => {
            call!("DisassociateRouteTable", ec2.disassociate_route_table().association_id(id))
        }
        Ec2Kind::SecurityGroup => call!("DeleteSecurityGroup", ec2.delete_security_group().group_id(id)),
        // It cannot be deleted: it goes with the VPC (left empty until then).
        Ec2Kind::DefaultSecurityGroup => Ok(()),
        Ec2Kind::VpcEndpoint => call!("DeleteVpcEndpoints", ec2.delete_vpc_endpoints().vpc_endpoint_ids(id)),
        Ec2Kind::FlowLog => call!("DeleteFlowLogs", ec2.delete_flow_logs().flow_log_ids(id)),
    }
}

/// Subnets of this environment in zones the environment no longer lists, and its security
/// groups and VPC endpoints the environment no longer asks for (the DMS instance's group and
/// the Secrets Manager endpoint once `[erp]` is removed).
pub(super) async fn orphans(ctx: &Context, desired: &[Resource]) -> anyhow::Result<Vec<Orphan>> {
    let mut orphans = subnet_orphans(ctx, desired).await?;
    let prefix = format!("indutech-{}-", ctx.environment.name);
    let wanted = |kind: Kind, name: &str| desired.iter().any(|r| r.kind() == kind && r.name == name);
    let out = ctx
        .aws
        .ec2()
        .describe_security_groups()
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSecurityGroups", "of the environment", e))?;
    for group in out.security_groups().iter().filter(|g| is_ours(ctx, g.tags(), None)) {
        let name = name_tag(group.tags()).unwrap_or_default();
        let role = name.strip_prefix(&prefix).and_then(|n| n.strip_suffix("-sg"));
        let (Some(role), false) = (role, group.group_name() == Some("default") || wanted(Kind::SecurityGroup, name))
        else {
            continue;
        };
        orphans.push(Orphan {
            address: address::security_group(role),
            component: Component::Network,
            name: name.to_owned(),
            id: group.group_id().unwrap_or_default().to_owned(),
            attributes: Default::default(),
            depends_on: vec![address::VPC.into()],
        });
    }
    let out = ctx
        .aws
        .ec2()
        .describe_vpc_endpoints()
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeVpcEndpoints", "of the environment", e))?;
    for endpoint in out.vpc_endpoints().iter().filter(|e| is_ours(ctx, e.tags(), None)) {
        let gone = endpoint
            .state()
            .is_some_and(|s| matches!(s.as_str().to_ascii_lowercase().as_str(), "deleted" | "deleting"));
        let name = name_tag(endpoint.tags()).unwrap_or_default();
        let service = name.strip_prefix(&prefix).and_then(|n| n.strip_suffix("-endpoint"));
        let (Some(service), false) = (service, gone || wanted(Kind::VpcEndpoint, name)) else { continue };
        orphans.push(Orphan {
            address: format!("aws_vpc_endpoint.{service}"),
            component: Component::Network,
            name: name.to_owned(),
            id: endpoint.vpc_endpoint_id().unwrap_or_default().to_owned(),
            attributes: Default::default(),
            depends_on: vec![address::VPC.into(), address::security_group("endpoints")],
        });
    }
    Ok(orphans)
}

async fn subnet_orphans(ctx: &Context, desired: &[Resource]) -> anyhow::Result<Vec<Orphan>> {
    let out = ctx
        .aws
        .ec2()
        .describe_subnets()
        .set_filters(Some(filters(ctx, None)))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "DescribeSubnets", "of the environment", e))?;
    let mut orphans = Vec::new();
    for subnet in out.subnets().iter().filter(|s| is_ours(ctx, s.tags(), None)) {
        let name = name_tag(subnet.tags()).unwrap_or_default();
        if desired.iter().any(|r| r.kind() == Kind::Subnet && r.name == name) {
            continue;
        }
        let zone = subnet.availability_zone().unwrap_or_default();
        orphans.push(Orphan {
            address: address::subnet(zone),
            component: Component::Network,
            name: name.to_owned(),
            id: subnet.subnet_id().unwrap_or_default().to_owned(),
            attributes: subnet_attributes(subnet),
            depends_on: vec![address::VPC.into()],
        });
    }
    Ok(orphans)
}
