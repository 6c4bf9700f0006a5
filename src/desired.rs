//! Desired state: an [`Environment`] -> the [`Resource`]s indutech manages, with their
//! attributes, the attributes that force replacement, and their dependencies. Pure.
//!
//! Attribute names follow the Terraform AWS provider where one exists, so that a plan reads
//! like Terraform's and the Terraform export maps one to one. Secrets are never attributes:
//! a resource that needs one refers to the Secrets Manager secret by name.

use serde_json::{Value, json};

use crate::config::environment::Environment;
use crate::model;
use crate::plan::{Attributes, Component, Resource};

mod audit;
mod catalog;
mod directory;
mod lake;
mod migration;
mod network;
pub mod policies;
mod redpanda;
pub mod render;
pub mod secrets;
mod vpn;
mod warehouse;
mod worker;

pub use audit::{FLOW_LOGS_PREFIX, access_logs_prefix, logs_bucket_policy};
pub use catalog::{PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE};
pub use policies::*;
pub use vpn::tunnel_options;
pub use worker::worker_config_sha256;
use {
    audit::audit, catalog::catalog, directory::directory, lake::lake, migration::migration, network::network,
    redpanda::redpanda, vpn::vpn, warehouse::warehouse, worker::worker,
};

/// Redshift's port.
pub const WAREHOUSE_PORT: u16 = 5439;

/// Every resource of `environment`'s platform (or only `components`' when not empty), in
/// dependency order. `binary_sha256` is the digest of the binary the worker is deployed with
/// (the running one, [`crate::artifact::Artifact::current`]): a new binary replaces the worker.
pub fn resources(environment: &Environment, binary_sha256: &str, components: &[Component]) -> Vec<Resource> {
    let wanted = |c: Component| components.is_empty() || components.contains(&c);
    let mut out = Vec::new();
    if wanted(Component::Network) {
        network(environment, &mut out);
    }
    if wanted(Component::Vpn) {
        vpn(environment, &mut out);
    }
    if wanted(Component::Lake) {
        lake(environment, &mut out);
    }
    if wanted(Component::Audit) {
        audit(environment, &mut out);
    }
    if wanted(Component::Catalog) {
        catalog(environment, &mut out);
    }
    if wanted(Component::Warehouse) {
        warehouse(environment, &mut out);
    }
    if wanted(Component::Redpanda) {
        redpanda(environment, &mut out);
    }
    if wanted(Component::Directory) {
        directory(environment, &mut out);
    }
    if wanted(Component::Worker) {
        worker(environment, binary_sha256, &mut out);
    }
    if wanted(Component::Migration) {
        migration(environment, &mut out);
    }
    out
}

/// `name = value` pairs to a JSON object.
fn attributes(pairs: &[(&str, Value)]) -> Attributes {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn tags(environment: &Environment, component: Component, name: Option<&str>) -> Value {
    let mut tags = model::tags(environment, component.as_str());
    if let Some(name) = name {
        tags.insert("Name".to_owned(), name.to_owned());
    }
    json!(tags)
}

struct Builder<'a> {
    out: &'a mut Vec<Resource>,
    component: Component,
}

impl Builder<'_> {
    fn add(&mut self, address: String, name: String, attrs: Attributes, replace_on: &[&str], depends_on: Vec<String>) {
        self.out.push(Resource {
            address,
            component: self.component,
            name,
            attributes: attrs,
            replace_on: replace_on.iter().map(|s| (*s).to_owned()).collect(),
            depends_on,
            idempotent_create: false,
            lives_on_dependencies: false,
            holds_data: false,
            protects: Vec::new(),
            content: None,
        });
    }

    /// An EC2 instances' IAM role `indutech-<env>-<key>` (EC2 trust, `description`), its inline
    /// policy named `key` and its instance profile, at `aws_iam_role.<key>`,
    /// `aws_iam_role_policy.<key>` and `aws_iam_instance_profile.<key>`. Returns the role's name
    /// (the profile's too).
    fn instance_role(&mut self, environment: &Environment, key: &str, description: &str, policy: Value) -> String {
        let role = model::resource_name(environment, key);
        let role_address = format!("aws_iam_role.{key}");
        let tags = tags(environment, self.component, None);
        self.add(
            role_address.clone(),
            role.clone(),
            attributes(&[
                ("assume_role_policy", ec2_trust_policy()),
                ("description", json!(format!("indutech {}: {description}", environment.name))),
                ("tags", tags.clone()),
            ]),
            &[],
            vec![],
        );
        self.add(
            format!("aws_iam_role_policy.{key}"),
            format!("{role}/{key}"),
            attributes(&[("name", json!(key)), ("policy", policy), ("role", json!(role))]),
            &[],
            vec![role_address.clone()],
        );
        self.add(
            format!("aws_iam_instance_profile.{key}"),
            role.clone(),
            attributes(&[("role", json!(role)), ("tags", tags)]),
            &[],
            vec![role_address],
        );
        role
    }

    /// Sets the content of the resource added last (see `Resource::content`).
    fn content(&mut self, text: String) {
        if let Some(last) = self.out.last_mut() {
            last.content = Some(text);
        }
    }

    /// Marks the resource added last as holding data (see `Resource::holds_data`).
    fn holds_data(&mut self) {
        if let Some(last) = self.out.last_mut() {
            last.holds_data = true;
        }
    }

    /// Marks the resource added last as protecting or serving `holders` (see
    /// `Resource::protects`).
    fn protects(&mut self, holders: Vec<String>) {
        if let Some(last) = self.out.last_mut() {
            last.protects = holders;
        }
    }

    /// Marks the resource added last as living on its dependencies (see
    /// `Resource::lives_on_dependencies`).
    fn lives_on_dependencies(&mut self) {
        if let Some(last) = self.out.last_mut() {
            last.lives_on_dependencies = !last.depends_on.is_empty();
        }
    }

    /// Marks the resource added last as safe to create again (see `Resource::idempotent_create`).
    fn idempotent(&mut self) {
        if let Some(last) = self.out.last_mut() {
            last.idempotent_create = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use crate::config::shipped as environment;

    const BINARY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn addresses_are_unique_and_dependencies_exist() {
        for name in ["dev", "staging", "prod"] {
            let resources = resources(&environment(name), BINARY, &[]);
            let mut addresses: Vec<&str> = resources.iter().map(|r| r.address.as_str()).collect();
            for r in &resources {
                for d in &r.depends_on {
                    assert!(addresses.contains(&d.as_str()), "{name}: {} needs unknown {d}", r.address);
                }
                for a in &r.replace_on {
                    assert!(r.attributes.contains_key(a), "{name}: {} replace_on unknown {a}", r.address);
                }
            }
            let count = addresses.len();
            addresses.sort();
            addresses.dedup();
            assert_eq!(addresses.len(), count, "{name}: duplicate addresses");
        }
    }

    #[test]
    fn security_groups_open_each_port_to_whom_needs_it_only() {
        let mut dev = environment("dev");
        let resources = resources(&dev, BINARY, &[Component::Network]);
        let group = |role: &str| resources.iter().find(|r| r.address == format!("aws_security_group.{role}")).unwrap();
        let sources = |role: &str, direction: &str, port: u16| -> Vec<String> {
            group(role).attributes[direction]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["from_port"] == port)
                .map(|r| r["cidr"].as_str().unwrap().to_owned())
                .collect()
        };
        let mut brokers: Vec<String> =
            crate::model::broker_placements(&dev).iter().map(|p| format!("{}/32", p.private_ip)).collect();
        brokers.sort();
        // Clients' ports: the VPC and the factory; RPC: the brokers; admin: the brokers (no
        // operations CIDR declared in dev); worker metrics: nobody.
        assert_eq!(sources("brokers", "ingress", 9092), ["10.40.0.0/16", "192.168.0.0/16"]);
        assert_eq!(sources("brokers", "ingress", 8081), ["10.40.0.0/16", "192.168.0.0/16"]);
        assert_eq!(sources("brokers", "ingress", 33145), brokers);
        assert_eq!(sources("brokers", "ingress", 9644), brokers);
        assert!(group("worker").attributes["ingress"].as_array().unwrap().is_empty());
        assert_eq!(sources("warehouse", "ingress", 5439), ["10.40.0.0/16", "192.168.0.0/16"]);
        assert!(group("endpoints").attributes["egress"].as_array().unwrap().is_empty());
        assert_eq!(sources("worker", "egress", 9092), ["10.40.0.0/16"]);
        for r in resources.iter().filter(|r| r.kind() == crate::plan::kind::Kind::SecurityGroup) {
            for rule in r.attributes["ingress"].as_array().unwrap() {
                assert_ne!(rule["cidr"], "0.0.0.0/0", "{}", r.address);
                assert!(rule["description"].as_str().is_some_and(|d| !d.is_empty()), "{rule}");
            }
            for rule in r.attributes["egress"].as_array().unwrap() {
                assert_eq!(rule["protocol"], "tcp", "{}: {rule}", r.address);
                assert!(rule["cidr"] != "0.0.0.0/0" || rule["from_port"] == 443, "{}: {rule}", r.address);
            }
        }
        // An operations network gets the admin API and the workers' metrics.
        dev.network.operations_cidrs = vec!["10.40.200.0/24".parse().unwrap()];
        let resources = super::resources(&dev, BINARY, &[Component::Network]);
        let worker = resources.iter().find(|r| r.address == "aws_security_group.worker").unwrap();
        assert_eq!(worker.attributes["ingress"][0]["cidr"], "10.40.200.0/24");
        let brokers = resources.iter().find(|r| r.address == "aws_security_group.brokers").unwrap();
        assert!(
            brokers.attributes["ingress"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["from_port"] == 9644 && r["cidr"] == "10.40.200.0/24")
        );
    }

    #[test]
    fn glue_tables_come_from_the_stream_schema_without_the_partition_key() {
        let dev = environment("dev");
        let resources = resources(&dev, BINARY, &[Component::Catalog]);
        let tickets = resources.iter().find(|r| r.address == "aws_glue_catalog_table.client_tickets").unwrap();
        let columns: Vec<&str> =
            tickets.attributes["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        let stream = dev.streams.iter().find(|s| s.name == "client_tickets").unwrap();
        let want: Vec<String> = stream.columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(columns, want);
        assert!(!columns.contains(&"dt"));
        assert_eq!(tickets.attributes["partition_keys"], json!([{"name": "dt", "type": "string"}]));
    }

    #[test]
    fn a_new_binary_replaces_the_local_worker_and_a_stopped_one_is_started_in_place() {
        use crate::plan::{Action, Observed};
        let dev = environment("dev");
        let running = resources(&dev, BINARY, &[Component::Worker]);
        let plan_for = |wanted: &[Resource], is_running: bool| {
            let mut attributes = running[0].attributes.clone();
            attributes.insert("running".into(), json!(is_running));
            let observed = BTreeMap::from([(
                "indutech_local_worker.worker".to_owned(),
                Observed::Present { id: "4242".into(), attributes },
            )]);
            crate::plan::diff::apply_plan("dev", wanted, &observed, &BTreeMap::new())
        };
        assert!(plan_for(&running, true).changes.is_empty());
        let stopped = plan_for(&running, false);
        assert_eq!(stopped.changes[0].action, Action::Update, "{stopped:?}");
        let rebuilt = resources(&dev, &"f".repeat(64), &[Component::Worker]);
        let plan = plan_for(&rebuilt, true);
        assert_eq!(plan.changes[0].action, Action::Replace);
        assert_eq!(plan.changes[0].replace_reasons.len(), 1, "{:?}", plan.changes[0]);
        assert!(plan.changes[0].attributes.iter().any(|a| a.name == "binary_sha256" && a.forces_replacement));
    }

    #[test]
    fn a_new_binary_replaces_the_artifact_and_every_worker_instance() {
        let staging = environment("staging");
        let deployed = resources(&staging, BINARY, &[Component::Worker]);
        let addresses: Vec<&str> = deployed.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "aws_s3_object.worker_binary",
                "aws_iam_role.worker",
                "aws_iam_role_policy.worker",
                "aws_iam_instance_profile.worker",
                "aws_instance.worker_0",
                "aws_instance.worker_1",
            ]
        );
        use crate::plan::{Action, Observed};
        let observed: BTreeMap<String, Observed> = deployed
            .iter()
            .map(|r| (r.address.clone(), Observed::Present { id: r.name.clone(), attributes: r.attributes.clone() }))
            .collect();
        let plan = |wanted: &[Resource]| crate::plan::diff::apply_plan("staging", wanted, &observed, &BTreeMap::new());
        assert!(plan(&deployed).changes.is_empty());
        let rebuilt = resources(&staging, &"f".repeat(64), &[Component::Worker]);
        let replan = plan(&rebuilt);
        let changes: Vec<(&str, Action, Vec<&str>)> = replan
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c.action, c.attributes.iter().map(|a| a.name.as_str()).collect()))
            .collect();
        assert_eq!(
            changes,
            [
                ("aws_s3_object.worker_binary", Action::Replace, vec!["key", "sha256"]),
                ("aws_instance.worker_0", Action::Replace, vec!["user_data_sha256"]),
                ("aws_instance.worker_1", Action::Replace, vec!["user_data_sha256"]),
            ]
        );
        // The instances sit in the worker security group, spread over the zones after the
        // brokers' addresses, and run this architecture.
        let first = &deployed[4].attributes;
        assert_eq!(first["vpc_security_groups"], json!(["indutech-staging-worker-sg"]));
        assert_eq!(first["iam_instance_profile"], json!("indutech-staging-worker"));
        assert_eq!(
            crate::config::environment::instance_architecture(first["instance_type"].as_str().unwrap()),
            std::env::consts::ARCH
        );
    }

    #[test]
    fn instance_types_name_their_architecture() {
        use crate::config::environment::instance_architecture as arch;
        for t in ["c7g.large", "m6gd.xlarge", "im4gn.large", "t4g.micro", "a1.medium", "is4gen.large"] {
            assert_eq!(arch(t), "aarch64", "{t}");
        }
        for t in ["c7i.large", "i4i.xlarge", "m5d.large", "g4dn.xlarge", "t3.small", "c7i-flex.large"] {
            assert_eq!(arch(t), "x86_64", "{t}");
        }
    }

    #[test]
    fn tiered_storage_puts_segments_in_a_lake_bucket_that_only_the_brokers_write() {
        let sized = environment("examples/throughput-100mbps");
        assert!(sized.redpanda.tiered_storage);
        let all = resources(&sized, BINARY, &[]);
        let find = |address: &str| all.iter().find(|r| r.address == address).unwrap_or_else(|| panic!("{address}"));
        // A lake bucket with every setting, kept by destroy, its key protecting it.
        let bucket = find("aws_s3_bucket.tiered");
        assert_eq!(bucket.name, "indutech-ingest100-tiered-i100-4f2a");
        assert!(bucket.holds_data);
        for kind in ["versioning", "server_side_encryption_configuration", "public_access_block", "policy"] {
            assert!(find(&format!("aws_s3_bucket_{kind}.tiered")).protects.contains(&bucket.address), "{kind}");
        }
        assert!(find("aws_kms_key.lake").protects.contains(&bucket.address));
        assert!(find("aws_s3_bucket_logging.tiered").protects.contains(&bucket.address));
        assert_eq!(
            find("aws_s3_bucket_server_side_encryption_configuration.tiered").attributes["kms_master_key_id"],
            json!(model::lake_key_alias(&sized))
        );
        // Redpanda reads segments back at any time: no GLACIER; deleted ones expire after a week.
        let rule = &find("aws_s3_bucket_lifecycle_configuration.tiered").attributes["rules"][0];
        assert_eq!(
            (rule["transitions"].clone(), rule["noncurrent_version_expiration_days"].clone()),
            (json!([]), json!(7))
        );
        // The brokers' role: their secrets, and of the lake only the tiered bucket.
        let policy = &find("aws_iam_role_policy.brokers").attributes["policy"];
        let statements: Vec<(String, Value, Value)> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["Sid"].as_str().unwrap().to_owned(), s["Action"].clone(), s["Resource"].clone()))
            .collect();
        let tiered = "arn:aws:s3:::indutech-ingest100-tiered-i100-4f2a";
        assert_eq!(
            statements[1],
            ("ListTieredBucket".into(), json!(["s3:ListBucket", "s3:GetBucketLocation"]), json!([tiered]))
        );
        assert_eq!(
            statements[2],
            (
                "TieredSegments".into(),
                json!(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
                json!([format!("{tiered}/*")])
            )
        );
        assert_eq!(statements[3].0, "LakeKeyThroughS3");
        assert_eq!(statements.len(), 4, "ReadKafkaSecrets, the two S3 statements, the key: {statements:?}");
        // No other principal's policy names the bucket.
        for r in all
            .iter()
            .filter(|r| r.address.starts_with("aws_iam_role_policy.") && r.address != "aws_iam_role_policy.brokers")
        {
            assert!(!r.attributes["policy"].to_string().contains("tiered"), "{}", r.address);
        }
        // Each broker boots after the bucket's protections and the endpoint, with the role,
        // HTTPS out, and the cluster properties that point Redpanda at the bucket.
        let broker = find("aws_instance.broker_4");
        for need in [
            "aws_s3_bucket_server_side_encryption_configuration.tiered",
            "aws_vpc_endpoint.s3",
            "aws_iam_instance_profile.brokers",
        ] {
            assert!(broker.depends_on.iter().any(|d| d == need), "{need}");
        }
        let egress = find("aws_security_group.brokers").attributes["egress"].to_string();
        assert!(egress.contains("\"to_port\":443"), "{egress}");
        let user_data = broker.content.as_deref().unwrap();
        for line in [
            "      log_retention_ms: 604800000",
            "      retention_local_target_ms_default: 14400000",
            "      cloud_storage_enabled: true",
            "      cloud_storage_bucket: indutech-ingest100-tiered-i100-4f2a",
            "      cloud_storage_region: eu-west-3",
            "      cloud_storage_credentials_source: aws_instance_metadata",
            "      cloud_storage_enable_remote_write: true",
            "      cloud_storage_enable_remote_read: true",
        ] {
            assert!(user_data.lines().any(|l| l == line), "missing `{line}`");
        }
        // Without Tiered Storage (prod), no tiered bucket and no S3 statement for the brokers.
        let prod = resources(&environment("prod"), BINARY, &[]);
        assert!(!prod.iter().any(|r| r.address.ends_with(".tiered")));
        let brokers = prod.iter().find(|r| r.address == "aws_iam_role_policy.brokers").unwrap();
        assert!(!brokers.attributes["policy"].to_string().contains("s3:"));
    }

    #[test]
    fn lake_buckets_get_every_setting() {
        let dev = environment("dev");
        let resources = resources(&dev, BINARY, &[Component::Lake]);
        for zone in model::LAKE_ZONES {
            for kind in [
                "aws_s3_bucket",
                "aws_s3_bucket_versioning",
                "aws_s3_bucket_server_side_encryption_configuration",
                "aws_s3_bucket_public_access_block",
                "aws_s3_bucket_policy",
                "aws_s3_bucket_lifecycle_configuration",
            ] {
                assert!(resources.iter().any(|r| r.address == format!("{kind}.{zone}")), "{kind}.{zone}");
            }
        }
        let raw = resources.iter().find(|r| r.address == "aws_s3_bucket_lifecycle_configuration.raw").unwrap();
        assert_eq!(raw.attributes["rules"][0]["transitions"][0], json!({"days": 45, "storage_class": "STANDARD_IA"}));
    }
}
