//! The VPN component: customer gateway, virtual private gateway or transit gateway, the connection
//! with its tunnel options and routes.

use serde_json::{Value, json};

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self};
use crate::plan::{Component, Resource};

/// Days the VPN tunnels' logs are kept.
const VPN_LOG_RETENTION_DAYS: u32 = 365;

/// The two tunnels' option sets, in the form the provider reports them (both explicit, or
/// AWS leaves tunnel 2 on weak defaults), logging to [`model::vpn_log_group_name`] as JSON.
pub fn tunnel_options(environment: &Environment) -> Value {
    let t = &environment.vpn.tunnel;
    let one = json!({
        "ike_versions": t.ike_versions,
        "log_group": model::vpn_log_group_name(environment),
        "log_output_format": "json",
        "phase1_dh_groups": t.phase1_dh_groups,
        "phase1_encryption": t.phase1_encryption,
        "phase1_integrity": t.phase1_integrity,
        "phase2_dh_groups": t.phase2_dh_groups,
        "phase2_encryption": t.phase2_encryption,
        "phase2_integrity": t.phase2_integrity,
    });
    json!([one.clone(), one])
}

pub(super) fn vpn(environment: &Environment, out: &mut Vec<Resource>) {
    use crate::config::environment::{Attachment, Routing};
    let mut b = Builder { out, component: Component::Vpn };
    let c = Component::Vpn;
    let vpn = &environment.vpn;
    let vpc = model::vpc_name(environment);
    let cgw = model::customer_gateway_name(environment);
    b.add(
        address::CUSTOMER_GATEWAY.into(),
        cgw.clone(),
        attributes(&[
            ("bgp_asn", json!(vpn.customer_gateway_asn)),
            ("ip_address", json!(vpn.customer_gateway_ip.to_string())),
            ("tags", tags(environment, c, Some(&cgw))),
            ("type", json!("ipsec.1")),
        ]),
        &["bgp_asn", "ip_address", "type"],
        vec![],
    );
    let transit = vpn.attachment == Attachment::TransitGateway;
    // The gateway on the AWS side, its attachment to the VPC, and what the VPC's routes and the
    // connection point at: a virtual private gateway, or a transit gateway.
    let (gateway, gateway_address, gateway_attribute, attachment_address) = if transit {
        let tgw = model::transit_gateway_name(environment);
        b.add(
            address::TRANSIT_GATEWAY.into(),
            tgw.clone(),
            attributes(&[
                ("amazon_side_asn", json!(vpn.amazon_side_asn)),
                ("description", json!(format!("indutech {}: the VPC and the factory VPN", environment.name))),
                ("tags", tags(environment, c, Some(&tgw))),
            ]),
            &["amazon_side_asn"],
            vec![],
        );
        let subnets: Vec<String> = model::private_subnets(environment)
            .into_iter()
            .map(|(zone, _)| model::private_subnet_name(environment, &zone))
            .collect();
        let mut needs = vec![address::TRANSIT_GATEWAY.to_owned(), address::VPC.to_owned()];
        needs.extend(environment.network.availability_zones.iter().map(|z| address::subnet(z)));
        let attachment = model::transit_attachment_name(environment);
        b.add(
            address::TRANSIT_GATEWAY_ATTACHMENT.into(),
            attachment.clone(),
            attributes(&[
                ("subnets", json!(subnets)),
                ("tags", tags(environment, c, Some(&attachment))),
                ("transit_gateway", json!(tgw)),
                ("vpc", json!(vpc)),
            ]),
            &["subnets", "transit_gateway", "vpc"],
            needs,
        );
        (tgw, address::TRANSIT_GATEWAY, "transit_gateway", address::TRANSIT_GATEWAY_ATTACHMENT)
    } else {
        let vgw = model::vpn_gateway_name(environment);
        b.add(
            address::VPN_GATEWAY.into(),
            vgw.clone(),
            attributes(&[("amazon_side_asn", json!(vpn.amazon_side_asn)), ("tags", tags(environment, c, Some(&vgw)))]),
            &["amazon_side_asn"],
            vec![],
        );
        b.add(
            address::VPN_GATEWAY_ATTACHMENT.into(),
            format!("{vgw}/{vpc}"),
            attributes(&[("vpc", json!(vpc)), ("vpn_gateway", json!(vgw))]),
            &[],
            vec![address::VPN_GATEWAY.into(), address::VPC.into()],
        );
        (vgw, address::VPN_GATEWAY, "vpn_gateway", address::VPN_GATEWAY_ATTACHMENT)
    };
    // The tunnels' IKE and state logs (VPN tunnel logging delivers only to CloudWatch Logs),
    // kept a year like the other audit logs.
    let log_group = model::vpn_log_group_name(environment);
    b.add(
        address::VPN_LOG_GROUP.into(),
        log_group.clone(),
        attributes(&[
            ("name", json!(log_group)),
            ("retention_in_days", json!(VPN_LOG_RETENTION_DAYS)),
            ("tags", tags(environment, c, None)),
        ]),
        &["name"],
        vec![],
    );
    let connection = model::vpn_connection_name(environment);
    let static_routes = vpn.routing == Routing::Static;
    b.add(
        address::VPN_CONNECTION.into(),
        connection.clone(),
        attributes(&[
            ("customer_gateway", json!(cgw)),
            (gateway_attribute, json!(gateway)),
            ("static_routes_only", json!(static_routes)),
            ("tags", tags(environment, c, Some(&connection))),
            ("tunnels", tunnel_options(environment)),
            ("type", json!("ipsec.1")),
        ]),
        &["customer_gateway", gateway_attribute, "static_routes_only", "type"],
        vec![address::CUSTOMER_GATEWAY.into(), gateway_address.into(), address::VPN_LOG_GROUP.into()],
    );
    let route_table = model::route_table_name(environment);
    for (i, cidr) in environment.on_premises.cidrs.iter().enumerate() {
        // The VPC's route to the factory: with a virtual private gateway, static routes are
        // written and BGP routes propagated into the route table; a transit gateway is always
        // the target of a static route (it learns the factory's routes itself).
        if static_routes || transit {
            b.add(
                address::onprem_route("aws_route", i),
                format!("{route_table}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    (if transit { "transit_gateway" } else { "gateway" }, json!(gateway)),
                    ("route_table", json!(route_table)),
                ]),
                &["destination_cidr_block"],
                // The gateway is the route's target; routing through it waits for its attachment.
                vec![address::ROUTE_TABLE.into(), gateway_address.into(), attachment_address.into()],
            );
        }
        if !static_routes {
            continue;
        }
        // The factory's networks behind the VPN connection: on the connection itself, or in
        // the transit gateway's route table towards the connection's attachment.
        if transit {
            b.add(
                address::onprem_route("aws_ec2_transit_gateway_route", i),
                format!("{gateway}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    ("transit_gateway", json!(gateway)),
                    ("vpn_connection", json!(connection)),
                ]),
                &["destination_cidr_block", "transit_gateway", "vpn_connection"],
                vec![address::VPN_CONNECTION.into()],
            );
        } else {
            b.add(
                address::onprem_route("aws_vpn_connection_route", i),
                format!("{connection}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    ("vpn_connection", json!(connection)),
                ]),
                &["destination_cidr_block"],
                vec![address::VPN_CONNECTION.into()],
            );
        }
    }
    if !static_routes && !transit {
        b.add(
            address::VPN_GATEWAY_ROUTE_PROPAGATION.into(),
            format!("{gateway}/{route_table}"),
            attributes(&[("route_table", json!(route_table)), ("vpn_gateway", json!(gateway))]),
            &[],
            vec![address::ROUTE_TABLE.into(), address::VPN_GATEWAY.into(), address::VPN_GATEWAY_ATTACHMENT.into()],
        );
    }
}
