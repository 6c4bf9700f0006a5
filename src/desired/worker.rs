//! The worker component: the local worker process (`dev`) or ec2 worker instances with their role,
//! instance profile and binary.

use serde_json::json;

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, security_group_name, worker_binary_key, worker_instance_name};
use crate::plan::{Component, Resource};

/// Digest of what the worker reads from the environment at start (name, region, endpoints,
/// lake, bootstrap servers and Kafka security, worker settings, streams): a change restarts (replaces) it.
pub fn worker_config_sha256(environment: &Environment) -> String {
    let relevant = json!({
        "name": environment.name,
        "region": environment.region,
        "endpoints": environment.endpoints,
        "lake": environment.lake,
        "bootstrap_servers": crate::model::bootstrap_servers(environment),
        "kafka_security": environment.redpanda.security,
        "kafka_credentials": environment.redpanda.credentials,
        "worker": environment.worker,
        "streams": environment.streams,
    });
    crate::digest::sha256_hex(relevant.to_string())
}

pub(super) fn worker(environment: &Environment, binary_sha256: &str, out: &mut Vec<Resource>) {
    use crate::config::environment::WorkerRuntime;
    let mut b = Builder { out, component: Component::Worker };
    // It reads the topics and writes the curated and rejected buckets and the Glue tables.
    let mut needs: Vec<String> = vec!["aws_s3_bucket.curated".into(), "aws_s3_bucket.rejected".into()];
    for stream in &environment.streams {
        needs.push(address::topic(&stream.name));
        needs.push(address::glue_table(&stream.name));
    }
    match environment.worker.runtime {
        WorkerRuntime::Local => {
            let streams: Vec<&str> = environment.streams.iter().map(|s| s.name.as_str()).collect();
            b.add(
                "indutech_local_worker.worker".into(),
                model::resource_name(environment, "worker"),
                attributes(&[
                    ("binary_sha256", json!(binary_sha256)),
                    ("config_sha256", json!(worker_config_sha256(environment))),
                    ("consumer_group", json!(crate::model::group_id(environment))),
                    ("metrics_port", json!(environment.worker.metrics_port)),
                    ("running", json!(true)),
                    ("streams", json!(streams)),
                ]),
                &["binary_sha256", "config_sha256", "consumer_group", "metrics_port", "streams"],
                needs,
            );
        }
        WorkerRuntime::Ec2 => ec2_worker(environment, binary_sha256, needs, &mut b),
    }
}

/// The `ec2` runtime: the running binary as a content-addressed object in the artifacts bucket,
/// an IAM role (with its inline policy) in an instance profile, and `instance_count` instances
/// spread over the zones, each booting cloud-init rendered from `templates/worker/` (systemd unit,
/// environment and stream files, the binary's key and digest). A new binary or configuration
/// changes the user data digest, which replaces the instances.
pub(super) fn ec2_worker(environment: &Environment, binary_sha256: &str, needs: Vec<String>, b: &mut Builder<'_>) {
    let c = Component::Worker;
    let w = &environment.worker;
    let artifacts = model::bucket_name(environment, "artifacts");
    let key = worker_binary_key(binary_sha256);
    b.add(
        address::WORKER_BINARY.into(),
        key.clone(),
        attributes(&[("bucket", json!(artifacts)), ("key", json!(key)), ("sha256", json!(binary_sha256))]),
        &["bucket", "key", "sha256"],
        // Uploaded once the bucket versions and encrypts (with the lake key) what it holds.
        vec![
            "aws_s3_bucket.artifacts".into(),
            "aws_s3_bucket_versioning.artifacts".into(),
            "aws_s3_bucket_server_side_encryption_configuration.artifacts".into(),
        ],
    );
    let role = b.instance_role(environment, "worker", "the streaming worker's instances", worker_policy(environment));
    // Every instance boots the same cloud-init.
    let user_data = render::worker_cloud_init(environment, binary_sha256)
        .expect("the compiled-in worker template renders (unit-tested)");
    let user_data_sha256 = crate::digest::sha256_hex(&user_data);
    for placement in model::worker_placements(environment) {
        let name = worker_instance_name(environment, placement.index);
        let mut instance_needs = needs.clone();
        instance_needs.extend([
            address::subnet(&placement.availability_zone),
            address::security_group("worker"),
            address::WORKER_BINARY.into(),
            address::WORKER_ROLE_POLICY.into(),
            address::WORKER_INSTANCE_PROFILE.into(),
        ]);
        b.add(
            address::instance("worker", placement.index),
            name.clone(),
            attributes(&[
                ("ami", json!(w.ami)),
                ("availability_zone", json!(placement.availability_zone)),
                ("iam_instance_profile", json!(role)),
                ("instance_type", json!(w.instance_type)),
                ("metadata_http_tokens", json!("required")),
                ("private_ip", json!(placement.private_ip.to_string())),
                ("root_volume_encrypted", json!(true)),
                ("subnet", json!(model::private_subnet_name(environment, &placement.availability_zone))),
                ("tags", tags(environment, c, Some(&name))),
                ("user_data_sha256", json!(user_data_sha256)),
                ("vpc_security_groups", json!([security_group_name(environment, "worker")])),
            ]),
            &[
                "ami",
                "availability_zone",
                "iam_instance_profile",
                "instance_type",
                "private_ip",
                "root_volume_encrypted",
                "subnet",
                "user_data_sha256",
            ],
            instance_needs,
        );
        b.content(user_data.clone());
    }
}
