//! The virtual private gateway (`aws_vpn_gateway`), its VPC attachment and its route
//! propagation into the private route table (BGP).

use super::*;

/// Reads `VpnGateway` (see [`VpnKind::VpnGateway`]).
pub(super) async fn observe_vpn_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    let Some(g) = vpn_gateway(ctx, name).await? else { return Ok(Observed::Absent) };
    Ok(Observed::Present {
        id: g.vpn_gateway_id().unwrap_or_default().to_owned(),
        attributes: attributes(vec![("amazon_side_asn", json!(g.amazon_side_asn())), ("tags", ec2_tags(g.tags()))]),
    })
}

/// Creates `VpnGateway`; returns its id.
pub(super) async fn create_vpn_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let a = &resource.attributes;
    let out = ec2
        .create_vpn_gateway()
        .r#type(GatewayType::Ipsec1)
        .amazon_side_asn(a["amazon_side_asn"].as_i64().unwrap_or(64512))
        .tag_specifications(tag_specification(resource, ResourceType::VpnGateway))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateVpnGateway", name, e))?;
    Ok(out.vpn_gateway().and_then(|g| g.vpn_gateway_id()).context("no VPN gateway id")?.to_owned())
}

/// Deletes `VpnGateway` (`id` as the plan observed it).
pub(super) async fn delete_vpn_gateway(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    // AWS refuses while it is attached or a VPN connection on it is not deleted yet (a
    // connection takes minutes to go): retried, bounded.
    wait_until(
        ctx,
        "ec2",
        std::time::Duration::from_secs(15 * 60),
        &format!("virtual private gateway {id} is still attached or in use"),
        "its connection usually is gone within minutes: run apply again",
        || async {
            match ec2.delete_vpn_gateway().vpn_gateway_id(id).send().await {
                Err(e) if code(&e) == Some("IncorrectState") => Ok(None),
                result => deleted(ctx, "ec2", "DeleteVpnGateway", &change.name, result, not_found).map(Some),
            }
        },
    )
    .await
}

/// Reads `VpnGatewayAttachment` (see [`VpnKind::VpnGatewayAttachment`]).
pub(super) async fn observe_vpn_gateway_attachment(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let (gateway, vpc) = (str_attr(resource, "vpn_gateway")?, str_attr(resource, "vpc")?);
    let (Some(g), Some(vpc_id)) = (vpn_gateway(ctx, gateway).await?, vpc_id(ctx, vpc).await?) else {
        return Ok(Observed::Absent);
    };
    let attached = g.vpc_attachments().iter().any(|a| {
        a.vpc_id() == Some(vpc_id.as_str()) && matches!(a.state().map(|s| s.as_str()), Some("attached" | "attaching"))
    });
    if !attached {
        return Ok(Observed::Absent);
    }
    Ok(Observed::Present {
        id: format!("{}/{vpc_id}", g.vpn_gateway_id().unwrap_or_default()),
        attributes: attributes(vec![("vpc", json!(vpc)), ("vpn_gateway", json!(gateway))]),
    })
}

/// Creates `VpnGatewayAttachment`; returns its id.
pub(super) async fn create_vpn_gateway_attachment(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let (gateway, vpc) = (ctx.dependency_id(resource, Kind::VpnGateway)?, ctx.dependency_id(resource, Kind::Vpc)?);
    ec2.attach_vpn_gateway()
        .vpn_gateway_id(&gateway)
        .vpc_id(&vpc)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "AttachVpnGateway", name, e))?;
    Ok(format!("{gateway}/{vpc}"))
}

/// Deletes `VpnGatewayAttachment` (`id` as the plan observed it).
pub(super) async fn delete_vpn_gateway_attachment(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let (gateway, vpc) = id.split_once('/').unwrap_or((id, ""));
    call!(ctx, change, "DetachVpnGateway", ec2.detach_vpn_gateway().vpn_gateway_id(gateway).vpc_id(vpc))
}

/// Reads `VpnGatewayRoutePropagation` (see [`VpnKind::VpnGatewayRoutePropagation`]).
pub(super) async fn observe_vpn_gateway_route_propagation(
    ctx: &Context,
    resource: &Resource,
) -> anyhow::Result<Observed> {
    let (table, gateway) = (str_attr(resource, "route_table")?, str_attr(resource, "vpn_gateway")?);
    let (Some(rt), Some(g)) = (route_table(ctx, table).await?, vpn_gateway(ctx, gateway).await?) else {
        return Ok(Observed::Absent);
    };
    let propagating = rt.propagating_vgws().iter().any(|p| p.gateway_id() == g.vpn_gateway_id());
    Ok(if propagating {
        Observed::Present {
            id: format!("{}/{}", rt.route_table_id().unwrap_or_default(), g.vpn_gateway_id().unwrap_or_default()),
            attributes: attributes(vec![("route_table", json!(table)), ("vpn_gateway", json!(gateway))]),
        }
    } else {
        Observed::Absent
    })
}

/// Creates `VpnGatewayRoutePropagation`; returns its id.
pub(super) async fn create_vpn_gateway_route_propagation(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let (table, gateway) =
        (ctx.dependency_id(resource, Kind::RouteTable)?, ctx.dependency_id(resource, Kind::VpnGateway)?);
    ec2.enable_vgw_route_propagation()
        .route_table_id(&table)
        .gateway_id(&gateway)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "EnableVgwRoutePropagation", name, e))?;
    Ok(format!("{table}/{gateway}"))
}

/// Deletes `VpnGatewayRoutePropagation` (`id` as the plan observed it).
pub(super) async fn delete_vpn_gateway_route_propagation(
    ctx: &Context,
    change: &Change,
    id: &str,
) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let (table, gateway) = id.split_once('/').unwrap_or((id, ""));
    call!(
        ctx,
        change,
        "DisableVgwRoutePropagation",
        ec2.disable_vgw_route_propagation().route_table_id(table).gateway_id(gateway)
    )
}
