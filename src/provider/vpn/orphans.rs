//! What the environment's VPN no longer needs.

use super::*;

/// What the environment's VPN no longer needs. Routes to on-premises networks it no longer
/// lists (a CIDR removed, or static routing given up for BGP): in the private route table
/// towards the environment's virtual private gateway or transit gateway, static routes of the
/// transit gateway towards the VPN connection, and the connection's own static routes; their
/// place in the CIDR list is gone, so they are addressed by CIDR
/// (`aws_route.onprem_172_21_0_0_16`). And the gateway of the other kind when `vpn.attachment`
/// was switched (with its VPC attachment and route propagation).
///
/// Errors: a Describe call failed.
pub(in crate::provider) async fn orphans(ctx: &Context, desired: &[Resource]) -> anyhow::Result<Vec<Orphan>> {
    let env = &ctx.environment;
    let wanted = |kind: Kind, cidr: &str| {
        desired.iter().any(|r| r.kind() == kind && r.attributes.get("destination_cidr_block") == Some(&json!(cidr)))
    };
    let gone = |address: &str, name: String, id: String, attrs: Vec<(&str, Value)>, needs: &[&str]| Orphan {
        address: address.to_owned(),
        component: Component::Vpn,
        name,
        id,
        attributes: attributes(attrs),
        depends_on: needs.iter().map(|n| (*n).to_owned()).collect(),
    };
    // A route to a CIDR: `<kind>.onprem_<CIDR>`, its destination and its target.
    let to_cidr = |kind: Kind, name: String, id: String, cidr: &str, target: (&str, String), needs: &[&str]| {
        let address = address::orphan_onprem_route(kind.as_str(), cidr);
        gone(&address, name, id, vec![("destination_cidr_block", json!(cidr)), (target.0, json!(target.1))], needs)
    };
    let mut out = Vec::new();
    let vgw_name = crate::model::vpn_gateway_name(env);
    let tgw_name = crate::model::transit_gateway_name(env);
    let connection_name = crate::model::vpn_connection_name(env);
    let vgw_found = vpn_gateway(ctx, &vgw_name).await?;
    let vgw = vgw_found.as_ref().and_then(|g| g.vpn_gateway_id().map(str::to_owned));
    let tgw = transit_gateway(ctx, &tgw_name).await?;
    let tgw_id = tgw.as_ref().and_then(|g| g.transit_gateway_id().map(str::to_owned));
    let table_name = crate::model::route_table_name(env);
    let rt = route_table(ctx, &table_name).await?;
    if let Some(rt) = &rt {
        let table = rt.route_table_id().unwrap_or_default();
        for route in rt.routes() {
            let Some(cidr) = route.destination_cidr_block() else { continue };
            let target = if vgw.is_some() && route.gateway_id() == vgw.as_deref() {
                ("gateway", vgw_name.clone(), address::VPN_GATEWAY_ATTACHMENT)
            } else if tgw_id.is_some() && route.transit_gateway_id() == tgw_id.as_deref() {
                ("transit_gateway", tgw_name.clone(), address::TRANSIT_GATEWAY_ATTACHMENT)
            } else {
                continue;
            };
            if !wanted(Kind::Route, cidr) {
                let needs = [address::ROUTE_TABLE, target.2];
                let (name, id) = (format!("{table_name}/{cidr}"), format!("{table}/{cidr}"));
                out.push(to_cidr(Kind::Route, name, id, cidr, (target.0, target.1), &needs));
            }
        }
    }
    let connection = vpn_connection(ctx, &connection_name).await?;
    let vpn_id = connection.as_ref().and_then(|c| c.vpn_connection_id().map(str::to_owned));
    if let (Some(tgw), Some(vpn_id)) = (&tgw, &vpn_id) {
        let table = default_route_table(tgw)?;
        for route in super::transit_gateway::static_routes(ctx, &table, &tgw_name).await? {
            let Some(cidr) = route.destination_cidr_block() else { continue };
            let to_vpn = route.transit_gateway_attachments().iter().any(|a| a.resource_id() == Some(vpn_id.as_str()));
            if to_vpn && !wanted(Kind::TransitGatewayRoute, cidr) {
                let (name, id) = (format!("{tgw_name}/{cidr}"), format!("{table}/{cidr}"));
                let target = ("vpn_connection", connection_name.clone());
                out.push(to_cidr(Kind::TransitGatewayRoute, name, id, cidr, target, &[address::VPN_CONNECTION]));
            }
        }
    }
    if let (Some(c), Some(vpn_id)) = (&connection, &vpn_id) {
        for route in c.routes().iter().filter(|r| live(r.state().map(|s| s.as_str()))) {
            let Some(cidr) = route.destination_cidr_block() else { continue };
            if !wanted(Kind::VpnConnectionRoute, cidr) {
                let (name, id) = (format!("{connection_name}/{cidr}"), format!("{vpn_id}/{cidr}"));
                let target = ("vpn_connection", connection_name.clone());
                out.push(to_cidr(Kind::VpnConnectionRoute, name, id, cidr, target, &[address::VPN_CONNECTION]));
            }
        }
    }
    // The gateway of the kind the environment no longer asks for (vpn.attachment switched, or
    // BGP given up), with its attachment and route propagation.
    let wants = |address: &str| desired.iter().any(|r| r.address == address);
    let vpc_name = crate::model::vpc_name(env);
    if let (Some(g), Some(vgw_id)) = (&vgw_found, &vgw) {
        let propagating = rt.as_ref().and_then(|rt| {
            let table = rt.route_table_id()?;
            rt.propagating_vgws().iter().any(|p| p.gateway_id() == Some(vgw_id.as_str())).then_some(table)
        });
        if let Some(table) = propagating.filter(|_| !wants(address::VPN_GATEWAY_ROUTE_PROPAGATION)) {
            out.push(gone(
                address::VPN_GATEWAY_ROUTE_PROPAGATION,
                format!("{vgw_name}/{table_name}"),
                format!("{table}/{vgw_id}"),
                vec![("route_table", json!(table_name)), ("vpn_gateway", json!(vgw_name))],
                &[address::ROUTE_TABLE, address::VPN_GATEWAY_ATTACHMENT],
            ));
        }
        if !wants(address::VPN_GATEWAY) {
            let vpc_id = vpc_id(ctx, &vpc_name).await?;
            let attached = g.vpc_attachments().iter().find(|a| {
                a.vpc_id().is_some()
                    && a.vpc_id() == vpc_id.as_deref()
                    && matches!(a.state().map(|s| s.as_str()), Some("attached" | "attaching"))
            });
            if let Some(a) = attached {
                out.push(gone(
                    address::VPN_GATEWAY_ATTACHMENT,
                    format!("{vgw_name}/{vpc_name}"),
                    format!("{vgw_id}/{}", a.vpc_id().unwrap_or_default()),
                    vec![("vpc", json!(vpc_name)), ("vpn_gateway", json!(vgw_name))],
                    &[address::VPN_GATEWAY, address::VPC],
                ));
            }
            let attrs = vec![("amazon_side_asn", json!(g.amazon_side_asn())), ("tags", ec2_tags(g.tags()))];
            out.push(gone(address::VPN_GATEWAY, vgw_name.clone(), vgw_id.clone(), attrs, &[]));
        }
    }
    if let (Some(t), Some(tgw_id)) = (&tgw, &tgw_id)
        && !wants(address::TRANSIT_GATEWAY)
    {
        let attachment_name = crate::model::transit_attachment_name(env);
        if let Some(a) = transit_gateway_vpc_attachment(ctx, &attachment_name).await? {
            out.push(gone(
                address::TRANSIT_GATEWAY_ATTACHMENT,
                attachment_name,
                a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                vec![("tags", ec2_tags(a.tags())), ("transit_gateway", json!(tgw_name))],
                &[address::TRANSIT_GATEWAY, address::VPC],
            ));
        }
        let attrs = vec![
            ("amazon_side_asn", json!(t.options().and_then(|o| o.amazon_side_asn()))),
            ("tags", ec2_tags(t.tags())),
        ];
        out.push(gone(address::TRANSIT_GATEWAY, tgw_name.clone(), tgw_id.clone(), attrs, &[]));
    }
    Ok(out)
}
