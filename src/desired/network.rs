//! The network component: VPC, one private subnet per zone, route table, security groups, S3
//! gateway endpoint, Glue interface endpoint (private DNS) and its security group. The VPC has
//! no internet route: every AWS API the instances call is reached through an endpoint.

use serde_json::{Value, json};

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, BROKER_PORTS, security_group_name, zone_key};
use crate::plan::{Component, Resource};

pub(super) fn network(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Network };
    let c = Component::Network;
    let vpc = model::vpc_name(environment);
    b.add(
        address::VPC.into(),
        vpc.clone(),
        attributes(&[
            ("cidr_block", json!(environment.network.vpc_cidr.to_string())),
            ("enable_dns_hostnames", json!(true)),
            ("enable_dns_support", json!(true)),
            ("tags", tags(environment, c, Some(&vpc))),
        ]),
        &["cidr_block"],
        vec![],
    );
    // The VPC's default security group, which AWS creates open (all traffic between its members,
    // all egress): emptied, so that nothing launched into it by mistake can talk.
    b.add(
        address::DEFAULT_SECURITY_GROUP.into(),
        format!("{vpc}/default"),
        attributes(&[("egress", json!([])), ("ingress", json!([])), ("vpc", json!(vpc))]),
        &["vpc"],
        vec![address::VPC.into()],
    );
    let route_table = model::route_table_name(environment);
    b.add(
        address::ROUTE_TABLE.into(),
        route_table.clone(),
        attributes(&[("tags", tags(environment, c, Some(&route_table)))]),
        &[],
        vec![address::VPC.into()],
    );
    for (zone, cidr) in model::private_subnets(environment) {
        let key = zone_key(&zone);
        let name = model::private_subnet_name(environment, &zone);
        b.add(
            format!("aws_subnet.{key}"),
            name.clone(),
            attributes(&[
                ("availability_zone", json!(zone)),
                ("cidr_block", json!(cidr.to_string())),
                ("map_public_ip_on_launch", json!(false)),
                ("tags", tags(environment, c, Some(&name))),
            ]),
            &["availability_zone", "cidr_block"],
            vec![address::VPC.into()],
        );
        b.add(
            format!("aws_route_table_association.{key}"),
            format!("{name}/{route_table}"),
            attributes(&[("route_table", json!(route_table)), ("subnet", json!(name))]),
            &[],
            vec![format!("aws_subnet.{key}"), address::ROUTE_TABLE.into()],
        );
    }

    let mut sources: Vec<String> = vec![environment.network.vpc_cidr.to_string()];
    sources.extend(environment.on_premises.cidrs.iter().map(|c| c.to_string()));
    let rules = |ports: &[u16]| -> Value {
        let mut rules: Vec<Value> = ports
            .iter()
            .flat_map(|port| {
                sources
                    .iter()
                    .map(move |cidr| json!({"protocol": "tcp", "from_port": port, "to_port": port, "cidr": cidr}))
            })
            .collect();
        rules.sort_by_key(|r| r.to_string());
        Value::Array(rules)
    };
    let groups: [(&str, &str, Value); 3] = [
        ("brokers", "Redpanda brokers: Kafka, RPC, admin, schema registry, HTTP proxy", rules(&BROKER_PORTS)),
        ("warehouse", "Redshift warehouse", rules(&[WAREHOUSE_PORT])),
        ("worker", "indutech streaming workers (metrics)", rules(&[environment.worker.metrics_port])),
    ];
    for (role, description, ingress) in groups {
        let name = security_group_name(environment, role);
        b.add(
            address::security_group(role),
            name.clone(),
            attributes(&[
                ("description", json!(description)),
                ("ingress", ingress),
                ("tags", tags(environment, c, Some(&name))),
            ]),
            &["description"],
            vec![address::VPC.into()],
        );
    }

    // Glue, which the ec2 workers call (partition registration) from subnets without an
    // internet route: an interface endpoint in every private subnet, with private DNS so that
    // the SDK's regional name resolves to it, reachable on 443 from the VPC only.
    let name = security_group_name(environment, "endpoints");
    let https = json!([{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": environment.network.vpc_cidr.to_string()}]);
    b.add(
        address::security_group("endpoints"),
        name.clone(),
        attributes(&[
            ("description", json!("interface endpoints of AWS APIs (HTTPS from the VPC)")),
            ("ingress", https),
            ("tags", tags(environment, c, Some(&name))),
        ]),
        &["description"],
        vec![address::VPC.into()],
    );
    let zones: Vec<String> = model::private_subnets(environment).into_iter().map(|(zone, _)| zone).collect();
    let mut subnets: Vec<String> = zones.iter().map(|z| model::private_subnet_name(environment, z)).collect();
    subnets.sort();
    let endpoint = format!("indutech-{}-glue-endpoint", environment.name);
    let mut needs = vec![address::VPC.to_owned(), address::security_group("endpoints")];
    needs.extend(zones.iter().map(|z| address::subnet(z)));
    b.add(
        address::GLUE_ENDPOINT.into(),
        endpoint.clone(),
        attributes(&[
            ("private_dns_enabled", json!(true)),
            ("security_groups", json!([name])),
            ("service_name", json!(format!("com.amazonaws.{}.glue", environment.region))),
            ("subnets", json!(subnets)),
            ("tags", tags(environment, c, Some(&endpoint))),
            ("vpc_endpoint_type", json!("Interface")),
        ]),
        &["private_dns_enabled", "security_groups", "service_name", "subnets", "vpc_endpoint_type"],
        needs,
    );

    let endpoint = model::s3_endpoint_name(environment);
    b.add(
        address::S3_ENDPOINT.into(),
        endpoint.clone(),
        attributes(&[
            ("route_tables", json!([route_table])),
            ("service_name", json!(format!("com.amazonaws.{}.s3", environment.region))),
            ("tags", tags(environment, c, Some(&endpoint))),
            ("vpc_endpoint_type", json!("Gateway")),
        ]),
        &["service_name", "vpc_endpoint_type"],
        vec![address::VPC.into(), address::ROUTE_TABLE.into()],
    );
}
