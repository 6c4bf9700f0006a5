//! Routes of the private route table to the on-premises networks (`aws_route`), through the
//! virtual private gateway or the transit gateway.

use super::*;

/// Reads `Route` (see [`VpnKind::Route`]).
pub(super) async fn observe_route(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let (table, cidr) = (str_attr(resource, "route_table")?, str_attr(resource, "destination_cidr_block")?);
    // The target is a virtual private gateway (`gateway`) or a transit gateway.
    let transit = resource.attributes.contains_key("transit_gateway");
    let (key, gateway) = if transit {
        ("transit_gateway", str_attr(resource, "transit_gateway")?)
    } else {
        ("gateway", str_attr(resource, "gateway")?)
    };
    let Some(rt) = route_table(ctx, table).await? else { return Ok(Observed::Absent) };
    let Some(route) = rt.routes().iter().find(|r| r.destination_cidr_block() == Some(cidr)) else {
        return Ok(Observed::Absent);
    };
    let (ours, theirs) = if transit {
        let id = transit_gateway(ctx, gateway).await?.and_then(|g| g.transit_gateway_id().map(str::to_owned));
        (id, route.transit_gateway_id())
    } else {
        (vpn_gateway(ctx, gateway).await?.and_then(|g| g.vpn_gateway_id().map(str::to_owned)), route.gateway_id())
    };
    let target = if theirs.is_some() && theirs == ours.as_deref() {
        json!(gateway)
    } else {
        json!(route.gateway_id().or(route.transit_gateway_id()).or(route.nat_gateway_id()))
    };
    Ok(Observed::Present {
        id: format!("{}/{cidr}", rt.route_table_id().unwrap_or_default()),
        attributes: attributes(vec![
            ("destination_cidr_block", json!(cidr)),
            (key, target),
            ("route_table", json!(table)),
        ]),
    })
}

/// Creates `Route`; returns its id.
pub(super) async fn create_route(ctx: &Context, resource: &Resource) -> anyhow::Result<String> {
    let ec2 = ctx.aws.ec2();
    let name = resource.name.as_str();
    let a = &resource.attributes;
    let table = ctx.dependency_id(resource, Kind::RouteTable)?;
    let cidr = str_attr(resource, "destination_cidr_block")?;
    let request = ec2.create_route().route_table_id(&table).destination_cidr_block(cidr);
    let request = if a.contains_key("transit_gateway") {
        request.transit_gateway_id(ctx.dependency_id(resource, Kind::TransitGateway)?)
    } else {
        request.gateway_id(ctx.dependency_id(resource, Kind::VpnGateway)?)
    };
    request.send().await.map_err(|e| sdk_error(ctx, "ec2", "CreateRoute", name, e))?;
    Ok(format!("{table}/{cidr}"))
}

/// Deletes `Route` (`id` as the plan observed it).
pub(super) async fn delete_route(ctx: &Context, change: &Change, id: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let (table, cidr) = id.split_once('/').unwrap_or((id, ""));
    call!(ctx, change, "DeleteRoute", ec2.delete_route().route_table_id(table).destination_cidr_block(cidr))
}

/// Points the route at the gateway the environment now asks for (`attribute`: `gateway` or
/// `transit_gateway`), in place (ReplaceRoute).
pub(super) async fn update_route(ctx: &Context, resource: &Resource, id: &str, attribute: &str) -> anyhow::Result<()> {
    let ec2 = ctx.aws.ec2();
    let (table, cidr) = id.split_once('/').context("route id")?;
    let request = ec2.replace_route().route_table_id(table).destination_cidr_block(cidr);
    let request = if attribute == "transit_gateway" {
        request.transit_gateway_id(ctx.dependency_id(resource, Kind::TransitGateway)?)
    } else {
        request.gateway_id(ctx.dependency_id(resource, Kind::VpnGateway)?)
    };
    request.send().await.map_err(|e| sdk_error(ctx, "ec2", "ReplaceRoute", &resource.name, e))?;
    Ok(())
}
