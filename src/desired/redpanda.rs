//! The Redpanda component: the broker instances and the topics.

use serde_json::json;

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, broker_name, security_group_name};
use crate::plan::{Component, Resource};

pub(super) fn redpanda(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Redpanda };
    let c = Component::Redpanda;
    let r = &environment.redpanda;
    let mut brokers = Vec::new();
    for placement in model::broker_placements(environment) {
        let name = broker_name(environment, placement.index);
        let user_data = render::broker_cloud_init(environment, &placement)
            .expect("the compiled-in broker template renders (unit-tested)");
        let mut tags = model::tags(environment, c.as_str());
        tags.insert("Name".into(), name.clone());
        tags.insert("indutech:rack".into(), placement.availability_zone.clone());
        let address = address::instance("broker", placement.index);
        b.add(
            address.clone(),
            name,
            attributes(&[
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
            ]),
            &[
                "ami",
                "availability_zone",
                "instance_type",
                "private_ip",
                "root_volume_encrypted",
                "subnet",
                "user_data_sha256",
            ],
            vec![address::subnet(&placement.availability_zone), address::security_group("brokers")],
        );
        b.content(user_data);
        brokers.push(address);
    }
    // Topics are created through the bootstrap servers: the brokers themselves unless the
    // environment names others (the local broker in `dev`).
    let topic_needs = if r.bootstrap_servers.is_empty() { brokers } else { Vec::new() };
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
