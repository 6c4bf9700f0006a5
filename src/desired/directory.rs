//! The directory component: Managed AD, its trust and their Secrets Manager secrets.

use serde_json::json;

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, secret_name};
use crate::plan::{Component, Resource};

pub(super) fn directory(environment: &Environment, out: &mut Vec<Resource>) {
    use crate::config::environment::TrustDirection;
    let mut b = Builder { out, component: Component::Directory };
    let c = Component::Directory;
    let d = &environment.directory;
    for (key, what, description) in [
        ("directory_admin", "directory-admin", "password of the Managed AD `Admin` user"),
        ("ad_trust", "ad-trust", "password of the trust with the factory forest (give it to the factory's AD admins)"),
    ] {
        let name = secret_name(environment, what);
        b.add(
            format!("aws_secretsmanager_secret.{key}"),
            name.clone(),
            attributes(&[
                ("description", json!(format!("indutech {}: {description}", environment.name))),
                ("name", json!(name)),
                ("tags", tags(environment, c, None)),
            ]),
            &["name"],
            vec![],
        );
    }
    let zones = &environment.network.availability_zones;
    let subnets: Vec<String> = zones.iter().take(2).map(|z| model::private_subnet_name(environment, z)).collect();
    let mut needs: Vec<String> = zones.iter().take(2).map(|z| address::subnet(z)).collect();
    needs.extend([address::VPC.to_owned(), "aws_secretsmanager_secret.directory_admin".to_owned()]);
    b.add(
        address::DIRECTORY.into(),
        d.domain.clone(),
        attributes(&[
            ("edition", json!(format!("{:?}", d.edition))),
            ("name", json!(d.domain)),
            ("password_secret", json!(secret_name(environment, "directory-admin"))),
            ("subnets", json!(subnets)),
            ("tags", tags(environment, c, None)),
            ("type", json!("MicrosoftAD")),
            ("vpc", json!(model::vpc_name(environment))),
        ]),
        &["edition", "name", "password_secret", "subnets", "type", "vpc"],
        needs,
    );
    let direction = match d.trust_direction {
        TrustDirection::OneWayOutgoing => "One-Way: Outgoing",
        TrustDirection::OneWayIncoming => "One-Way: Incoming",
        TrustDirection::TwoWay => "Two-Way",
    };
    let forwarders: Vec<String> = environment.on_premises.ad_dns_ips.iter().map(|ip| ip.to_string()).collect();
    b.add(
        "aws_directory_service_trust.factory".into(),
        environment.on_premises.ad_domain.clone(),
        attributes(&[
            ("conditional_forwarder_ip_addrs", json!(forwarders)),
            ("directory", json!(d.domain)),
            ("password_secret", json!(secret_name(environment, "ad-trust"))),
            ("remote_domain_name", json!(environment.on_premises.ad_domain)),
            ("trust_direction", json!(direction)),
            ("trust_type", json!("Forest")),
        ]),
        &["directory", "password_secret", "remote_domain_name", "trust_direction", "trust_type"],
        vec![address::DIRECTORY.into(), "aws_secretsmanager_secret.ad_trust".into()],
    );
}
