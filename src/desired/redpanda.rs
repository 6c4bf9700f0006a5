//! The Redpanda component: the broker instances and the topics; with `redpanda.security =
//! "sasl_ssl"`, the secrets of SASL/SCRAM over TLS (a CA, the brokers' certificate, the admin and
//! worker principals' credentials); with it or `redpanda.tiered_storage`, the brokers' IAM role
//! (their secrets, the lake's tiered bucket).

use serde_json::json;

use super::secrets::Recipe;
use super::*;
use crate::config::environment::{Environment, KafkaSecurity};
use crate::kafka::{KAFKA_ADMIN_USER, KAFKA_WORKER_USER};
use crate::model::address;
use crate::model::{self, broker_name, security_group_name};
use crate::plan::{Component, Resource};

pub(super) fn redpanda(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Redpanda };
    let c = Component::Redpanda;
    let r = &environment.redpanda;
    let sasl = r.security == KafkaSecurity::SaslSsl;
    let placements = model::broker_placements(environment);
    // Before the brokers: the secrets they read at boot, and the role that lets them.
    let mut broker_needs: Vec<String> = Vec::new();
    if sasl {
        let ca = model::kafka_secret_name(environment, "ca");
        let ips: Vec<String> = placements.iter().map(|p| p.private_ip.to_string()).collect();
        let secrets = [
            (
                "kafka_ca",
                "ca",
                "the Kafka CA's certificate and key (only indutech reads it, to sign the brokers' certificate)"
                    .to_owned(),
                Recipe::KafkaCa { common_name: format!("indutech {} Kafka CA", environment.name) },
            ),
            (
                "kafka_brokers_tls",
                "brokers-tls",
                "the Redpanda brokers' TLS key and certificate".to_owned(),
                Recipe::KafkaBrokersTls { ca_secret: ca.clone(), ip_addresses: ips.clone() },
            ),
            (
                "kafka_admin",
                "admin",
                format!("SCRAM credentials of Kafka principal {} (superuser: topics, status)", KAFKA_ADMIN_USER),
                Recipe::KafkaScram { username: KAFKA_ADMIN_USER.into(), ca_secret: ca.clone() },
            ),
            (
                "kafka_worker",
                "worker",
                format!("SCRAM credentials of Kafka principal {} (the worker)", KAFKA_WORKER_USER),
                Recipe::KafkaScram { username: KAFKA_WORKER_USER.into(), ca_secret: ca.clone() },
            ),
        ];
        for (key, what, description, recipe) in secrets {
            let name = model::kafka_secret_name(environment, what);
            let mut attrs = vec![
                ("description", json!(format!("indutech {}: {description}", environment.name))),
                ("name", json!(name)),
                ("tags", tags(environment, c, None)),
            ];
            if let Recipe::KafkaBrokersTls { ip_addresses, .. } = &recipe {
                attrs.push(("ip_addresses", json!(ip_addresses)));
            }
            let address = format!("aws_secretsmanager_secret.{key}");
            // The CA signs or travels with every other secret; the brokers read all but the CA.
            let needs = if key == "kafka_ca" { vec![] } else { vec!["aws_secretsmanager_secret.kafka_ca".to_owned()] };
            if key != "kafka_ca" {
                broker_needs.push(address.clone());
            }
            b.add(address, name, attributes(&attrs), &["name"], needs);
            b.content(serde_json::to_string(&recipe).expect("a recipe serialises"));
        }
        broker_needs.push(address::SECRETS_ENDPOINT.to_owned());
    }
    // The role the brokers call AWS with: their secrets (SASL/SCRAM over TLS) and the tiered
    // bucket (Tiered Storage), whose encryption and endpoint must exist before they boot.
    if r.brokers_have_role() {
        b.instance_role(environment, "brokers", "the Redpanda brokers' instances", broker_policy(environment));
        broker_needs.extend([address::BROKER_ROLE_POLICY.to_owned(), address::BROKER_INSTANCE_PROFILE.to_owned()]);
    }
    if r.tiered_storage {
        let zone = model::TIERED_ZONE;
        broker_needs.extend([
            format!("aws_s3_bucket_server_side_encryption_configuration.{zone}"),
            format!("aws_s3_bucket_public_access_block.{zone}"),
            format!("aws_s3_bucket_policy.{zone}"),
            format!("aws_s3_bucket_versioning.{zone}"),
            address::S3_ENDPOINT.to_owned(),
        ]);
    }
    let mut brokers = Vec::new();
    for placement in placements {
        let name = broker_name(environment, placement.index);
        let user_data = render::broker_cloud_init(environment, &placement)
            .expect("the compiled-in broker template renders (unit-tested)");
        let mut tags = model::tags(environment, c.as_str());
        tags.insert("Name".into(), name.clone());
        tags.insert("indutech:rack".into(), placement.availability_zone.clone());
        let address = address::instance("broker", placement.index);
        let mut attrs = vec![
            ("ami", json!(r.ami)),
            ("availability_zone", json!(placement.availability_zone)),
            ("instance_type", json!(r.instance_type)),
            ("metadata_http_tokens", json!("required")),
            ("private_ip", json!(placement.private_ip.to_string())),
            // The root volume holds the OS and Redpanda's configuration; the data is on
            // the instance store, which AWS encrypts (NVMe instance store, hardware XTS-AES).
            ("root_volume_encrypted", json!(true)),
            ("subnet", json!(model::private_subnet_name(environment, &placement.availability_zone))),
            ("tags", json!(tags)),
            ("user_data_sha256", json!(crate::digest::sha256_hex(&user_data))),
            ("vpc_security_groups", json!([security_group_name(environment, "brokers")])),
        ];
        let mut replace_on = vec![
            "ami",
            "availability_zone",
            "instance_type",
            "private_ip",
            "root_volume_encrypted",
            "subnet",
            "user_data_sha256",
        ];
        if r.brokers_have_role() {
            attrs.push(("iam_instance_profile", json!(model::resource_name(environment, "brokers"))));
            replace_on.push("iam_instance_profile");
        }
        let mut needs = vec![address::subnet(&placement.availability_zone), address::security_group("brokers")];
        needs.extend(broker_needs.iter().cloned());
        b.add(address.clone(), name, attributes(&attrs), &replace_on, needs);
        b.content(user_data);
        brokers.push(address);
    }
    // Topics are created through the bootstrap servers: the brokers themselves unless the
    // environment names others (the local broker in `dev`).
    let mut topic_needs = if r.bootstrap_servers.is_empty() { brokers } else { Vec::new() };
    if sasl && r.credentials.is_none() {
        // Created as the admin principal, whose secret must exist first.
        topic_needs.push("aws_secretsmanager_secret.kafka_admin".into());
    }
    for stream in &environment.streams {
        b.add(
            address::topic(&stream.name),
            stream.topic.clone(),
            attributes(&[
                ("name", json!(stream.topic)),
                ("partitions", json!(stream.partitions)),
                ("replication_factor", json!(stream.replication)),
            ]),
            &["name", "replication_factor"],
            topic_needs.clone(),
        );
        // On brokers of its own, a topic cannot exist before them (nor be asked about).
        b.lives_on_dependencies();
        b.holds_data();
    }
}
