//! The transit gateway (`aws_ec2_transit_gateway`), its VPC attachment and its static routes
//! towards the VPN connection.

use super::*;

/// Reads `TransitGateway` (see [`VpnKind::TransitGateway`]).
pub(super) async fn observe_transit_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    let Some(g) = transit_gateway(ctx, name).await? else { return Ok(Observed::Absent) };
    Ok(Observed::Present {
        id: g.transit_gateway_id().unwrap_or_default().to_owned(),
        attributes: attributes(vec![
            ("amazon_side_asn", json!(g.options().and_then(|o| o.amazon_side_asn()))),
            ("description", json!(g.description().unwrap_or_default())),
            ("tags", ec2_tags(g.tags())),
        ]),
    })
}

/// Creates `TransitGateway`; returns its id.
pub(super) async fn create_transit_gateway(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let a = &resource.attributes;
    let out = ec2
        .create_transit_gateway()
        .description(str_attr(resource, "description")?)
        .options(
            aws_sdk_ec2::types::TransitGatewayRequestOptions::builder()
                .amazon_side_asn(a["amazon_side_asn"].as_i64().unwrap_or(64512))
                .build(),
        )
        .tag_specifications(tag_specification(resource, ResourceType::TransitGateway))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateTransitGateway", name, e))?;
    let id = out.transit_gateway().and_then(|g| g.transit_gateway_id()).context("no transit gateway id")?;
    wait_available(ctx, "transit gateway", name).await?;
    Ok(id.to_owned())
}

/// Deletes `TransitGateway` (`id` as the plan observed it).
pub(super) async fn delete_transit_gateway(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    // AWS refuses while an attachment (the VPN connection's goes away on its own, a
    // few minutes after the connection) is not deleted yet.
    wait_until(
        ctx,
        "ec2",
        std::time::Duration::from_secs(15 * 60),
        &format!("transit gateway {id} still has attachments"),
        "they usually are gone within minutes: run destroy again",
        || async {
            match ec2.delete_transit_gateway().transit_gateway_id(id).send().await {
                Err(e) if code(&e) == Some("IncorrectState") => Ok(None),
                result => deleted(ctx, "ec2", "DeleteTransitGateway", &change.name, result, not_found).map(Some),
            }
        },
    )
    .await
}

/// Reads `TransitGatewayVpcAttachment` (see [`VpnKind::TransitGatewayVpcAttachment`]).
pub(super) async fn observe_transit_gateway_vpc_attachment(
    ctx: &Context,
    resource: &Resource,
) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    let Some(a) = transit_gateway_vpc_attachment(ctx, name).await? else { return Ok(Observed::Absent) };
    let (tgw, vpc) = (str_attr(resource, "transit_gateway")?, str_attr(resource, "vpc")?);
    let tgw_id = transit_gateway(ctx, tgw).await?.and_then(|g| g.transit_gateway_id().map(str::to_owned));
    let vpc_id = vpc_id(ctx, vpc).await?;
    let named = |id: Option<&str>, known: &Option<String>, name: &str| -> Value {
        if id.is_some() && id == known.as_deref() { json!(name) } else { json!(id) }
    };
    let mut subnets = crate::provider::ec2::names_of_subnets(ctx, a.subnet_ids()).await?;
    subnets.sort();
    Ok(Observed::Present {
        id: a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
        attributes: attributes(vec![
            ("subnets", json!(subnets)),
            ("tags", ec2_tags(a.tags())),
            ("transit_gateway", named(a.transit_gateway_id(), &tgw_id, tgw)),
            ("vpc", named(a.vpc_id(), &vpc_id, vpc)),
        ]),
    })
}

/// Creates `TransitGatewayVpcAttachment`; returns its id.
pub(super) async fn create_transit_gateway_vpc_attachment(
    ctx: &Context,
    resource: &Resource,
) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let mut subnets = Vec::new();
    for zone in &ctx.environment.network.availability_zones {
        subnets.push(ctx.id(&address::subnet(zone))?);
    }
    let out = ec2
        .create_transit_gateway_vpc_attachment()
        .transit_gateway_id(ctx.dependency_id(resource, Kind::TransitGateway)?)
        .vpc_id(ctx.dependency_id(resource, Kind::Vpc)?)
        .set_subnet_ids(Some(subnets))
        .tag_specifications(tag_specification(resource, ResourceType::TransitGatewayAttachment))
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateTransitGatewayVpcAttachment", name, e))?;
    let id = out
        .transit_gateway_vpc_attachment()
        .and_then(|a| a.transit_gateway_attachment_id())
        .context("no transit gateway attachment id")?;
    wait_available(ctx, "transit gateway attachment", name).await?;
    Ok(id.to_owned())
}

/// Deletes `TransitGatewayVpcAttachment` (`id` as the plan observed it).
pub(super) async fn delete_transit_gateway_vpc_attachment(
    ctx: &Context,
    change: &Change,
    id: &str,
) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    call!(
        ctx,
        change,
        "DeleteTransitGatewayVpcAttachment",
        ec2.delete_transit_gateway_vpc_attachment().transit_gateway_attachment_id(id)
    )?;
    wait_until(
        ctx,
        "ec2",
        std::time::Duration::from_secs(15 * 60),
        &format!("transit gateway attachment {id} is not deleted"),
        "it usually is within minutes: run destroy again",
        || async { Ok(transit_gateway_vpc_attachment(ctx, &change.name).await?.is_none().then_some(())) },
    )
    .await
}

/// The live (not deleted or being deleted) static routes of the transit gateway route table
/// `table`; `name` names the gateway in errors.
///
/// Errors: SearchTransitGatewayRoutes failed.
pub(super) async fn static_routes(
    ctx: &Context,
    table: &str,
    name: &str,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::TransitGatewayRoute>> {
    let out = ctx
        .aws
        .ec2()
        .search_transit_gateway_routes()
        .transit_gateway_route_table_id(table)
        .filters(aws_sdk_ec2::types::Filter::builder().name("type").values("static").build())
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "SearchTransitGatewayRoutes", name, e))?;
    Ok(out.routes().iter().filter(|r| live(r.state().map(|s| s.as_str()))).cloned().collect())
}

/// Reads `TransitGatewayRoute` (see [`VpnKind::TransitGatewayRoute`]).
pub(super) async fn observe_transit_gateway_route(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let name = resource.name.as_str();
    let (tgw, cidr, connection) = (
        str_attr(resource, "transit_gateway")?,
        str_attr(resource, "destination_cidr_block")?,
        str_attr(resource, "vpn_connection")?,
    );
    let Some(g) = transit_gateway(ctx, tgw).await? else { return Ok(Observed::Absent) };
    let table = default_route_table(&g)?;
    let routes = static_routes(ctx, &table, name).await?;
    let Some(route) = routes.iter().find(|r| r.destination_cidr_block() == Some(cidr)) else {
        return Ok(Observed::Absent);
    };
    let vpn_id = vpn_connection(ctx, connection).await?.and_then(|c| c.vpn_connection_id().map(str::to_owned));
    let target = route.transit_gateway_attachments().iter().find_map(|a| a.resource_id());
    let target = if target.is_some() && target == vpn_id.as_deref() { json!(connection) } else { json!(target) };
    Ok(Observed::Present {
        id: format!("{table}/{cidr}"),
        attributes: attributes(vec![
            ("destination_cidr_block", json!(cidr)),
            ("transit_gateway", json!(tgw)),
            ("vpn_connection", target),
        ]),
    })
}

/// Creates `TransitGatewayRoute`; returns its id.
pub(super) async fn create_transit_gateway_route(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let tgw = transit_gateway(ctx, str_attr(resource, "transit_gateway")?)
        .await?
        .context("the transit gateway does not exist")?;
    let table = default_route_table(&tgw)?;
    let vpn_id = ctx.dependency_id(resource, Kind::VpnConnection)?;
    // AWS attaches a new VPN connection to the transit gateway by itself, shortly after.
    let attachment = wait_until(
        ctx,
        "ec2",
        std::time::Duration::from_secs(10 * 60),
        &format!("VPN connection {vpn_id} has no transit gateway attachment"),
        "it usually has one within minutes: run apply again",
        || vpn_attachment_id(ctx, &vpn_id),
    )
    .await?;
    let cidr = str_attr(resource, "destination_cidr_block")?;
    ec2.create_transit_gateway_route()
        .transit_gateway_route_table_id(&table)
        .destination_cidr_block(cidr)
        .transit_gateway_attachment_id(attachment)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "CreateTransitGatewayRoute", name, e))?;
    Ok(format!("{table}/{cidr}"))
}

/// Deletes `TransitGatewayRoute` (`id` as the plan observed it).
pub(super) async fn delete_transit_gateway_route(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let (table, cidr) = id.split_once('/').unwrap_or((id, ""));
    call!(
        ctx,
        change,
        "DeleteTransitGatewayRoute",
        ec2.delete_transit_gateway_route().transit_gateway_route_table_id(table).destination_cidr_block(cidr)
    )
}

/// Sets the transit gateway's description.
pub(super) async fn update_transit_gateway_description(
    ctx: &Context,
    resource: &Resource,
    id: &str,
) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    ec2.modify_transit_gateway()
        .transit_gateway_id(id)
        .description(str_attr(resource, "description")?)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "ec2", "ModifyTransitGateway", &resource.name, e))?;
    Ok(())
}
