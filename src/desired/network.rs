//! The network component: VPC, one private subnet per zone, route table, security groups, S3
//! gateway endpoint, Glue and (`sasl_ssl`) Secrets Manager interface endpoints (private DNS) and their security group. The VPC has
//! no internet route: every AWS API the instances call is reached through an endpoint.

use serde_json::{Value, json};

use super::*;
use crate::config::environment::{Environment, KafkaSecurity};
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

    for (role, description, ingress, egress) in security_groups(environment) {
        let name = security_group_name(environment, role);
        b.add(
            address::security_group(role),
            name.clone(),
            attributes(&[
                ("description", json!(description)),
                ("egress", egress),
                ("ingress", ingress),
                ("tags", tags(environment, c, Some(&name))),
            ]),
            &["description"],
            vec![address::VPC.into()],
        );
    }

    // The AWS APIs the instances call from subnets without an internet route: Glue (the ec2
    // workers register partitions) and, with `sasl_ssl`, Secrets Manager (brokers and workers
    // read their Kafka secrets at start). An interface endpoint in every private subnet, with
    // private DNS so that the SDK's regional name resolves to it, reachable on 443 from the VPC.
    let name = security_group_name(environment, "endpoints");
    let zones: Vec<String> = model::private_subnets(environment).into_iter().map(|(zone, _)| zone).collect();
    let mut subnets: Vec<String> = zones.iter().map(|z| model::private_subnet_name(environment, z)).collect();
    subnets.sort();
    let mut services = vec![(address::GLUE_ENDPOINT, "glue")];
    // DMS reads the ERP's login from Secrets Manager from inside the VPC too.
    if environment.redpanda.security == KafkaSecurity::SaslSsl || environment.erp.is_some() {
        services.push((address::SECRETS_ENDPOINT, "secretsmanager"));
    }
    for (endpoint_address, service) in services {
        let endpoint = format!("indutech-{}-{service}-endpoint", environment.name);
        let mut needs = vec![address::VPC.to_owned(), address::security_group("endpoints")];
        needs.extend(zones.iter().map(|z| address::subnet(z)));
        b.add(
            endpoint_address.into(),
            endpoint.clone(),
            attributes(&[
                ("private_dns_enabled", json!(true)),
                ("security_groups", json!([name])),
                ("service_name", json!(format!("com.amazonaws.{}.{service}", environment.region))),
                ("subnets", json!(subnets)),
                ("tags", tags(environment, c, Some(&endpoint))),
                ("vpc_endpoint_type", json!("Interface")),
            ]),
            &["private_dns_enabled", "security_groups", "service_name", "subnets", "vpc_endpoint_type"],
            needs,
        );
    }

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

/// The security groups (role, description, ingress, egress): each rule is a JSON object
/// `{protocol, from_port, to_port, cidr, description}` and the lists are sorted, as
/// `provider::ec2` observes them. Least privilege per port: clients' ports (Kafka, schema
/// registry, HTTP proxy, Redshift) from the VPC and the factory; the brokers' internal RPC
/// from the brokers only; the admin API and metrics from the brokers and
/// `network.operations_cidrs` only. Egress is only what each role calls: brokers their peers
/// (and HTTPS when they have a role), workers the brokers and HTTPS, Redshift (Spectrum with
/// enhanced VPC routing) HTTPS; HTTPS to 0.0.0.0/0 reaches S3 through the gateway endpoint (S3's
/// public ranges) and the interface endpoints, since the VPC has no internet route.
pub(super) fn security_groups(environment: &Environment) -> Vec<(&'static str, &'static str, Value, Value)> {
    let [kafka, rpc, admin, registry, proxy] = BROKER_PORTS;
    let vpc = environment.network.vpc_cidr.to_string();
    let clients: Vec<(String, &str)> = std::iter::once((vpc.clone(), "the VPC"))
        .chain(environment.on_premises.cidrs.iter().map(|c| (c.to_string(), "the factory")))
        .collect();
    let brokers: Vec<(String, String)> = model::broker_placements(environment)
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{}/32", p.private_ip), format!("broker {i}")))
        .collect();
    let operations: Vec<String> = environment.network.operations_cidrs.iter().map(|c| c.to_string()).collect();
    let rule = |port: u16, cidr: &str, description: String| json!({"protocol": "tcp", "from_port": port, "to_port": port, "cidr": cidr, "description": description});
    let sorted = |mut rules: Vec<Value>| {
        rules.sort_by_key(|r| r.to_string());
        Value::Array(rules)
    };

    let mut broker_in = Vec::new();
    for (port, what) in [(kafka, "Kafka API"), (registry, "schema registry"), (proxy, "HTTP proxy")] {
        broker_in.extend(clients.iter().map(|(cidr, from)| rule(port, cidr, format!("{what} from {from}"))));
    }
    for (cidr, broker) in &brokers {
        broker_in.push(rule(rpc, cidr, format!("internal RPC from {broker}")));
        broker_in.push(rule(admin, cidr, format!("admin API from {broker}")));
    }
    broker_in.extend(operations.iter().map(|cidr| rule(admin, cidr, "admin API and metrics from operations".into())));
    let mut broker_out: Vec<Value> = [(kafka, "Kafka API"), (rpc, "internal RPC"), (admin, "admin API")]
        .into_iter()
        .map(|(port, what)| rule(port, &vpc, format!("{what} of the other brokers")))
        .collect();

    let warehouse_in: Vec<Value> =
        clients.iter().map(|(cidr, from)| rule(WAREHOUSE_PORT, cidr, format!("Redshift from {from}"))).collect();
    let https_out = || rule(443, "0.0.0.0/0", "HTTPS to S3 (gateway endpoint) and the interface endpoints".into());
    // The brokers call AWS with their role: Secrets Manager at boot (SASL/SCRAM over TLS), S3
    // for Tiered Storage.
    if environment.redpanda.brokers_have_role() {
        broker_out.push(https_out());
    }

    let worker_in: Vec<Value> = operations
        .iter()
        .map(|cidr| rule(environment.worker.metrics_port, cidr, "metrics from operations".into()))
        .collect();
    let worker_out = vec![rule(kafka, &vpc, "Kafka API of the brokers".into()), https_out()];

    let endpoints_in = vec![rule(443, &vpc, "HTTPS from the VPC".into())];
    let mut groups = vec![
        (
            "brokers",
            "Redpanda brokers: Kafka, RPC, admin, schema registry, HTTP proxy",
            sorted(broker_in),
            sorted(broker_out),
        ),
        ("warehouse", "Redshift warehouse", sorted(warehouse_in), sorted(vec![https_out()])),
        ("worker", "indutech streaming workers (metrics)", sorted(worker_in), sorted(worker_out)),
        ("endpoints", "interface endpoints of AWS APIs (HTTPS from the VPC)", sorted(endpoints_in), json!([])),
    ];
    // The DMS replication instance: nothing in; out to the ERP's SQL Server (through the VPN)
    // and HTTPS (S3 through the gateway endpoint, Secrets Manager through its interface one).
    if let Some(erp) = &environment.erp {
        let erp_out =
            vec![rule(erp.port, &format!("{}/32", erp.host), "SQL Server of the factory's ERP".into()), https_out()];
        groups.push(("erp", "AWS DMS replication instance (ERP to the lake)", json!([]), sorted(erp_out)));
    }
    groups
}
