//! plan / apply / destroy of the real binary against the test bed (LocalStack for S3, KMS and
//! EC2; the moto sidecar for Glue), per component: create -> plan is empty -> drift injected
//! with a plain SDK call -> plan shows it -> apply repairs it -> destroy leaves nothing tagged
//! for the environment. Each test uses its own environment (a copy of `dev` with a unique
//! name), so every name is unique and tests run in parallel on the shared bed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Tag};
use indutech::aws::Aws;
use indutech::config::environment::Environment;

mod common;

use common::{AWS_EMULATORS, bed_is_up, exited, write_env};

/// A throw-away environment: `dev` with a unique name, in a temporary folder.
struct TestEnv {
    path: PathBuf,
    name: String,
    environment: Environment,
    aws: Aws,
}

async fn test_env() -> TestEnv {
    test_env_with(|t| t).await
}

/// A throw-away environment whose file text `edit` changes.
async fn test_env_with(edit: impl Fn(String) -> String) -> TestEnv {
    bed_is_up(AWS_EMULATORS);
    let (_, path, name) = write_env("t", false, edit);
    let environment = indutech::config::load(path.to_str().unwrap()).expect("the test environment is valid");
    let aws = Aws::new(&environment).await;
    TestEnv { path, name, environment, aws }
}

impl TestEnv {
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_indutech"));
        command.args(args).arg("--env").arg(&self.path).env("NO_COLOR", "1").stdin(Stdio::null());
        command.output().expect("run indutech")
    }

    /// Runs and asserts the exit code, returning stdout.
    fn expect(&self, args: &[&str], code: i32) -> String {
        exited(args, &self.run(args), code)
    }

    fn plan_is_empty(&self, component: &str) {
        let out = self.expect(&["plan", "--component", component, "--detailed-exitcode"], 0);
        assert!(out.contains("No changes."), "{out}");
    }

    fn bucket(&self, zone: &str) -> String {
        indutech::model::bucket_name(&self.environment, zone)
    }

    /// Destroys everything and asserts nothing tagged or named for the environment remains.
    async fn destroy_all(&self) {
        self.expect(&["destroy", "--auto-approve", "--force-delete-data"], 0);
        let out = self.expect(&["plan", "--destroy", "--detailed-exitcode"], 0);
        assert!(out.contains("Nothing of environment"), "{out}");
        self.assert_nothing_left().await;
    }

    async fn assert_nothing_left(&self) {
        let buckets = self.aws.s3().list_buckets().send().await.unwrap();
        let prefix = format!("indutech-{}-", self.name);
        let left: Vec<&str> =
            buckets.buckets().iter().filter_map(|b| b.name()).filter(|n| n.starts_with(&prefix)).collect();
        assert!(left.is_empty(), "buckets left: {left:?}");
        let ec2 = self.aws.ec2();
        let tagged = Filter::builder().name("tag:indutech:env").values(&self.name).build();
        let vpcs = ec2.describe_vpcs().filters(tagged.clone()).send().await.unwrap();
        assert!(vpcs.vpcs().is_empty(), "VPCs left: {:?}", vpcs.vpcs());
        let subnets = ec2.describe_subnets().filters(tagged.clone()).send().await.unwrap();
        assert!(subnets.subnets().is_empty(), "subnets left");
        let groups = ec2.describe_security_groups().filters(tagged.clone()).send().await.unwrap();
        assert!(groups.security_groups().is_empty(), "security groups left");
        let groups = self.aws.logs().describe_log_groups().log_group_name_prefix(format!("/indutech/{}/", self.name));
        let groups = groups.send().await.unwrap();
        assert!(groups.log_groups().is_empty(), "log groups left: {:?}", groups.log_groups());
        let flow_logs = ec2.describe_flow_logs().filter(tagged.clone()).send().await.unwrap();
        assert!(flow_logs.flow_logs().is_empty(), "flow logs left: {:?}", flow_logs.flow_logs());
        let endpoints = ec2.describe_vpc_endpoints().filters(tagged).send().await.unwrap();
        assert!(
            endpoints
                .vpc_endpoints()
                .iter()
                .all(|e| e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"))),
            "VPC endpoints left"
        );
        let gateways = ec2.describe_customer_gateways().filters(tagged_again(&self.name)).send().await.unwrap();
        let ours = |tags: &[Tag]| tags.iter().any(|t| t.key() == Some("indutech:env") && t.value() == Some(&self.name));
        assert!(
            gateways.customer_gateways().iter().filter(|g| ours(g.tags())).all(|g| g.state() == Some("deleted")),
            "customer gateways left"
        );
        let vgws = ec2.describe_vpn_gateways().filters(tagged_again(&self.name)).send().await.unwrap();
        assert!(
            vgws.vpn_gateways()
                .iter()
                .filter(|g| ours(g.tags()))
                .all(|g| g.state().is_some_and(|s| s.as_str() == "deleted")),
            "VPN gateways left: {:?}",
            vgws.vpn_gateways()
        );
        let connections = ec2.describe_vpn_connections().filters(tagged_again(&self.name)).send().await.unwrap();
        assert!(
            connections
                .vpn_connections()
                .iter()
                .filter(|c| ours(c.tags()))
                .all(|c| c.state().is_some_and(|s| s.as_str() == "deleted")),
            "VPN connections left"
        );
        // No filters: LocalStack fails on tag filters for transit gateways.
        let tgws = ec2.describe_transit_gateways().send().await.unwrap();
        assert!(
            tgws.transit_gateways()
                .iter()
                .filter(|g| ours(g.tags()))
                .all(|g| g.state().is_some_and(|s| matches!(s.as_str(), "deleted" | "deleting"))),
            "transit gateways left: {:?}",
            tgws.transit_gateways()
        );
        let attachments = ec2.describe_transit_gateway_vpc_attachments().send().await.unwrap();
        assert!(
            attachments
                .transit_gateway_vpc_attachments()
                .iter()
                .filter(|a| ours(a.tags()))
                .all(|a| a.state().is_some_and(|s| matches!(s.as_str(), "deleted" | "deleting"))),
            "transit gateway attachments left"
        );
        let instances = ec2.describe_instances().filters(tagged_again(&self.name)).send().await.unwrap();
        let live: Vec<&str> = instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| ours(i.tags()))
            .filter(|i| i.state().and_then(|s| s.name()).is_none_or(|n| n.as_str() != "terminated"))
            .filter_map(|i| i.instance_id())
            .collect();
        assert!(live.is_empty(), "instances left: {live:?}");
        let cluster = indutech::model::cluster_identifier(&self.environment);
        let redshift = self.aws.redshift();
        assert!(
            redshift.describe_clusters().cluster_identifier(&cluster).send().await.is_err(),
            "cluster {cluster} left"
        );
        let groups = redshift.describe_cluster_subnet_groups().cluster_subnet_group_name(&cluster).send().await;
        assert!(groups.is_err(), "Redshift subnet group {cluster} left");
        let role = format!("indutech-{}-spectrum", self.name);
        assert!(self.aws.iam().get_role().role_name(&role).send().await.is_err(), "IAM role {role} left");
        let database = indutech::model::glue_database_name(&self.environment);
        assert!(self.aws.glue().get_database().name(&database).send().await.is_err(), "Glue database {database} left");
        // KMS cannot delete a key at once: the key must be pending deletion, its alias gone.
        let kms = self.aws.kms();
        let aliases = kms.list_aliases().send().await.unwrap();
        let alias = indutech::model::lake_key_alias(&self.environment);
        assert!(aliases.aliases().iter().all(|a| a.alias_name() != Some(alias.as_str())), "alias {alias} left");
        let keys = kms.list_keys().limit(1000).send().await.unwrap();
        for key in keys.keys().iter().filter_map(|k| k.key_id()) {
            let tags = kms.list_resource_tags().key_id(key).send().await.unwrap();
            if tags.tags().iter().any(|t| t.tag_key() == "indutech:env" && t.tag_value() == self.name) {
                let described = kms.describe_key().key_id(key).send().await.unwrap();
                let state = described.key_metadata().and_then(|m| m.key_state()).cloned();
                assert_eq!(state, Some(aws_sdk_kms::types::KeyState::PendingDeletion), "KMS key {key} left");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lake_apply_converges_drift_is_repaired_and_destroy_guards_data() {
    let t = test_env().await;
    let out = t.expect(&["apply", "--component", "lake", "--auto-approve"], 0);
    assert!(out.contains("Apply complete!"), "{out}");
    t.plan_is_empty("lake");

    // Drift, made outside indutech: versioning suspended, a lifecycle rule deleted, a tag removed.
    let s3 = t.aws.s3();
    let (raw, curated, rejected) = (t.bucket("raw"), t.bucket("curated"), t.bucket("rejected"));
    s3.put_bucket_versioning()
        .bucket(&raw)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_bucket_lifecycle().bucket(&curated).send().await.unwrap();
    let tag = |k: &str, v: &str| aws_sdk_s3::types::Tag::builder().key(k).value(v).build().unwrap();
    s3.put_bucket_tagging()
        .bucket(&rejected)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag("indutech:env", &t.name))
                .tag_set(tag("managed-by", "indutech"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let plan = t.expect(&["plan", "--component", "lake", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_s3_bucket_versioning.raw will be updated in place"), "{plan}");
    assert!(plan.contains(r#"~ status = "Suspended" -> "Enabled""#), "{plan}");
    assert!(plan.contains("# aws_s3_bucket_lifecycle_configuration.curated will be created"), "{plan}");
    assert!(plan.contains("# aws_s3_bucket.rejected will be updated in place"), "{plan}");
    assert!(plan.contains("Plan: 1 to add, 2 to change, 0 to replace, 0 to destroy."), "{plan}");
    t.expect(&["apply", "--component", "lake", "--auto-approve"], 0);
    t.plan_is_empty("lake");

    // The JSON plan says the same as the text, for machines.
    s3.delete_public_access_block().bucket(&raw).send().await.unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&t.expect(&["plan", "--component", "lake", "--json"], 0)).unwrap();
    let changes = json["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{json}");
    assert_eq!(changes[0]["address"], "aws_s3_bucket_public_access_block.raw");
    assert_eq!(changes[0]["action"], "create");
    t.expect(&["apply", "--component", "lake", "--auto-approve"], 0);

    // The key policy guards the key; a policy changed outside indutech is drift, repaired.
    let kms = t.aws.kms();
    let alias = indutech::model::lake_key_alias(&t.environment);
    let key_policy = || async {
        let policy = kms.get_key_policy().key_id(&alias).policy_name("default").send().await.unwrap();
        serde_json::from_str::<serde_json::Value>(policy.policy().unwrap()).unwrap()
    };
    let guard = key_policy().await;
    assert_eq!(guard, indutech::desired::lake_key_policy(&t.environment));
    assert_eq!(guard["Statement"][1]["Effect"], "Deny");
    assert_eq!(guard["Statement"][1]["Action"], serde_json::json!(["kms:DisableKey", "kms:ScheduleKeyDeletion"]));
    let open = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#;
    kms.put_key_policy().key_id(&alias).policy_name("default").policy(open).send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "lake", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_kms_key.lake will be updated in place"), "{plan}");
    assert!(plan.contains("GuardKeyDeletion"), "{plan}");
    t.expect(&["apply", "--component", "lake", "--auto-approve"], 0);
    assert_eq!(key_policy().await, guard);

    // Data in the curated bucket: destroy decides before deleting anything to keep it with
    // everything that protects it (key, alias, the bucket's six settings), and deletes the rest.
    s3.put_object()
        .bucket(&curated)
        .key("client_tickets/dt=2026-11-21/part-0.parquet")
        .body(b"PAR1".to_vec().into())
        .send()
        .await
        .unwrap();
    let plan = t.expect(&["plan", "--destroy", "--component", "lake"], 0);
    assert!(plan.contains(&format!("= aws_s3_bucket.curated ({curated}): holds data: 1 object version(s)")), "{plan}");
    for kept in [
        "aws_kms_key.lake",
        "aws_kms_alias.lake",
        "aws_s3_bucket_versioning.curated",
        "aws_s3_bucket_server_side_encryption_configuration.curated",
        "aws_s3_bucket_public_access_block.curated",
        "aws_s3_bucket_policy.curated",
        "aws_s3_bucket_lifecycle_configuration.curated",
    ] {
        assert!(plan.contains(&format!("= {kept} (")), "{kept} is not kept:\n{plan}");
        assert!(!plan.contains(&format!("# {kept} will be destroyed")), "{kept} would be destroyed:\n{plan}");
    }
    assert!(plan.contains("# aws_s3_bucket.raw will be destroyed"), "{plan}");
    assert!(plan.contains("to destroy, 8 to keep."), "{plan}");
    let out = t.expect(&["destroy", "--component", "lake", "--auto-approve"], 0);
    assert!(out.contains("Destroy complete!"), "{out}");
    assert!(out.contains("Kept 8 resource(s)"), "{out}");
    assert_lake_zone_intact(&t, "curated").await;
    for gone in [&raw, &rejected, &t.bucket("artifacts")] {
        assert!(s3.head_bucket().bucket(gone).send().await.is_err(), "{gone} should be gone");
    }
    // Nothing more to destroy without --force-delete-data; everything still intact.
    let again = t.expect(&["destroy", "--component", "lake", "--auto-approve"], 0);
    assert!(again.contains("can be destroyed without --force-delete-data: the 8 resource(s) left are kept"), "{again}");
    assert_lake_zone_intact(&t, "curated").await;

    // The key is never scheduled for deletion while a lake bucket exists, whatever asks.
    let ctx = indutech::provider::Context::new(t.environment.clone(), t.aws.clone());
    let key_id = kms.describe_key().key_id(&alias).send().await.unwrap().key_metadata.unwrap().key_id;
    let delete_key = indutech::plan::Change {
        address: "aws_kms_key.lake".into(),
        component: indutech::plan::Component::Lake,
        name: format!("indutech-{}-lake", t.name),
        action: indutech::plan::Action::Delete,
        id: Some(key_id),
        attributes: vec![],
        replace_reasons: vec![],
        desired: None,
        depends_on: vec![],
    };
    // Even with --force-delete-data.
    let refused = indutech::provider::perform(&ctx, &delete_key, indutech::provider::Step::Delete, true).await;
    let why = format!("{:#}", refused.unwrap_err());
    assert!(why.contains(&format!("bucket {curated} still exists")), "{why}");
    assert_lake_zone_intact(&t, "curated").await;
    t.destroy_all().await;
}

/// After a destroy that kept `zone`'s bucket: the bucket and its object, and everything that
/// protects it, as apply made them: versioning, KMS encryption with the lake key (Enabled, its
/// policy and alias in place), public access block, TLS-only policy, lifecycle.
async fn assert_lake_zone_intact(t: &TestEnv, zone: &str) {
    let s3 = t.aws.s3();
    let bucket = t.bucket(zone);
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(1), "{bucket}: its data");
    let versioning = s3.get_bucket_versioning().bucket(&bucket).send().await.unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"), "{bucket}: versioning");
    let encryption = s3.get_bucket_encryption().bucket(&bucket).send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration().unwrap().rules()[0];
    let default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(default.sse_algorithm().as_str(), "aws:kms", "{bucket}: encryption");
    let alias = indutech::model::lake_key_alias(&t.environment);
    assert_eq!(default.kms_master_key_id(), Some(alias.as_str()), "{bucket}: the lake key");
    let block = s3.get_public_access_block().bucket(&bucket).send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            block.block_public_acls(),
            block.block_public_policy(),
            block.ignore_public_acls(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4],
        "{bucket}: public access block"
    );
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy, indutech::desired::tls_only_policy(&bucket), "{bucket}: TLS-only policy");
    let lifecycle = s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.unwrap();
    // The zone's rule and the rule expiring the commit protocol's replaced versions.
    let ids: Vec<&str> = lifecycle.rules().iter().filter_map(|r| r.id()).collect();
    assert_eq!(ids, ["indutech-lifecycle", "indutech-protocol-versions"], "{bucket}: lifecycle");
    assert_eq!(lifecycle.rules()[0].transitions().len(), 2, "{bucket}: lifecycle transitions");
    let protocol = &lifecycle.rules()[1];
    assert_eq!(protocol.filter().and_then(|f| f.prefix()), Some("_indutech/"), "{bucket}: protocol rule");
    assert_eq!(
        protocol.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()),
        Some(1),
        "{bucket}: protocol rule"
    );
    let kms = t.aws.kms();
    let key = kms.describe_key().key_id(&alias).send().await.expect("the alias still points at the key");
    let state = key.key_metadata().and_then(|m| m.key_state()).cloned();
    assert_eq!(state, Some(aws_sdk_kms::types::KeyState::Enabled), "the lake key");
    let key_policy = kms.get_key_policy().key_id(&alias).policy_name("default").send().await.unwrap();
    let key_policy: serde_json::Value = serde_json::from_str(key_policy.policy().unwrap()).unwrap();
    assert_eq!(key_policy, indutech::desired::lake_key_policy(&t.environment), "the lake key's policy");
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_tables_follow_the_streams_and_orphans_are_removed() {
    let t = test_env().await;
    t.expect(&["apply", "--component", "catalog", "--auto-approve"], 0);
    t.plan_is_empty("catalog");
    let glue = t.aws.glue();
    let database = indutech::model::glue_database_name(&t.environment);

    // Drift: a column dropped from a table by hand, and a table no stream describes.
    let table = glue.get_table().database_name(&database).name("client_tickets").send().await.unwrap();
    let table = table.table().unwrap();
    let sd = table.storage_descriptor().unwrap();
    let columns: Vec<aws_sdk_glue::types::Column> =
        sd.columns().iter().filter(|c| c.name() != "category").cloned().collect();
    let input = aws_sdk_glue::types::TableInput::builder()
        .name("client_tickets")
        .table_type("EXTERNAL_TABLE")
        .set_partition_keys(Some(table.partition_keys().to_vec()))
        .set_parameters(table.parameters().cloned())
        .storage_descriptor(
            aws_sdk_glue::types::StorageDescriptor::builder()
                .set_columns(Some(columns))
                .set_location(sd.location().map(str::to_owned))
                .set_input_format(sd.input_format().map(str::to_owned))
                .set_output_format(sd.output_format().map(str::to_owned))
                .set_serde_info(sd.serde_info().cloned())
                .build(),
        )
        .build()
        .unwrap();
    glue.update_table().database_name(&database).table_input(input).send().await.unwrap();
    glue.create_table()
        .database_name(&database)
        .table_input(aws_sdk_glue::types::TableInput::builder().name("old_stream").build().unwrap())
        .send()
        .await
        .unwrap();

    let plan = t.expect(&["plan", "--component", "catalog", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_glue_catalog_table.client_tickets will be updated in place"), "{plan}");
    assert!(
        plan.contains("# aws_glue_catalog_table.old_stream will be destroyed (no longer in the environment)"),
        "{plan}"
    );
    assert!(plan.contains("Plan: 0 to add, 1 to change, 0 to replace, 1 to destroy."), "{plan}");
    t.expect(&["apply", "--component", "catalog", "--auto-approve"], 0);
    t.plan_is_empty("catalog");
    let repaired = glue.get_table().database_name(&database).name("client_tickets").send().await.unwrap();
    let names: Vec<&str> =
        repaired.table().unwrap().storage_descriptor().unwrap().columns().iter().map(|c| c.name()).collect();
    assert!(names.contains(&"category"), "{names:?}");
    assert!(glue.get_table().database_name(&database).name("old_stream").send().await.is_err());
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_drift_an_open_port_and_a_lost_tag_are_repaired() {
    let t = test_env().await;
    t.expect(&["apply", "--component", "network", "--auto-approve"], 0);
    t.plan_is_empty("network");
    let ec2 = t.aws.ec2();
    let by_name = |name: String| {
        vec![
            Filter::builder().name("tag:Name").values(name).build(),
            Filter::builder().name("tag:indutech:env").values(&t.name).build(),
        ]
    };
    let groups = ec2
        .describe_security_groups()
        .set_filters(Some(by_name(indutech::model::security_group_name(&t.environment, "brokers"))))
        .send()
        .await
        .unwrap();
    let group_id = groups.security_groups()[0].group_id().unwrap().to_owned();
    // Least privilege as applied: no group keeps EC2's everything-to-0.0.0.0/0 egress rule, every
    // rule says what it is for, the brokers' RPC is open to the brokers only.
    let workers = ec2
        .describe_security_groups()
        .set_filters(Some(by_name(indutech::model::security_group_name(&t.environment, "worker"))))
        .send()
        .await
        .unwrap();
    let worker_group = workers.security_groups()[0].clone();
    for group in [&groups.security_groups()[0], &worker_group] {
        let rules = group.ip_permissions().iter().chain(group.ip_permissions_egress());
        for p in rules.clone() {
            assert_ne!(p.ip_protocol(), Some("-1"), "an all-traffic rule in {:?}: {p:?}", group.group_name());
            assert!(p.ip_ranges().iter().all(|r| r.description().is_some_and(|d| !d.is_empty())), "{p:?}");
        }
        assert!(!group.ip_permissions_egress().is_empty(), "{group:?}");
    }
    let rpc_sources: Vec<&str> = groups.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter(|p| p.from_port() == Some(33145))
        .flat_map(|p| p.ip_ranges().iter().filter_map(|r| r.cidr_ip()))
        .collect();
    assert!(!rpc_sources.is_empty() && rpc_sources.iter().all(|c| c.ends_with("/32")), "{rpc_sources:?}");
    // Somebody opens the workers' egress to everything.
    ec2.authorize_security_group_egress()
        .group_id(worker_group.group_id().unwrap())
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&group_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpcs = ec2.describe_vpcs().set_filters(Some(by_name(format!("indutech-{}-vpc", t.name)))).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
    ec2.delete_tags().resources(&vpc_id).tags(Tag::builder().key("managed-by").build()).send().await.unwrap();
    // The VPC's default security group was emptied by apply; somebody opens it again.
    let default_group = |ec2: aws_sdk_ec2::Client, vpc_id: String| async move {
        ec2.describe_security_groups()
            .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
            .filters(Filter::builder().name("group-name").values("default").build())
            .send()
            .await
            .unwrap()
            .security_groups()[0]
            .clone()
    };
    let default = default_group(ec2.clone(), vpc_id.clone()).await;
    assert!(
        default.ip_permissions().is_empty() && default.ip_permissions_egress().is_empty(),
        "apply left rules in the default security group: {default:?}"
    );
    ec2.authorize_security_group_ingress()
        .group_id(default.group_id().unwrap())
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(3389)
                .to_port(3389)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = t.expect(&["plan", "--component", "network", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_default_security_group.main will be updated in place"), "{plan}");
    assert!(plan.contains("# aws_security_group.brokers will be updated in place"), "{plan}");
    assert!(plan.contains("# aws_security_group.worker will be updated in place"), "{plan}");
    assert!(plan.contains("0.0.0.0/0"), "{plan}");
    assert!(plan.contains("# aws_vpc.main will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "network", "--auto-approve"], 0);
    t.plan_is_empty("network");
    let group = ec2.describe_security_groups().group_ids(&group_id).send().await.unwrap();
    let open: Vec<&IpPermission> = group.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter(|p| p.ip_ranges().iter().any(|r| r.cidr_ip() == Some("0.0.0.0/0")))
        .collect();
    assert!(open.is_empty(), "the 0.0.0.0/0 rule is still there: {open:?}");
    let workers = ec2.describe_security_groups().group_ids(worker_group.group_id().unwrap()).send().await.unwrap();
    let egress = workers.security_groups()[0].ip_permissions_egress();
    assert!(egress.iter().all(|p| p.ip_protocol() != Some("-1")), "the all-traffic egress is still there: {egress:?}");
    let default = default_group(ec2.clone(), vpc_id.clone()).await;
    assert!(default.ip_permissions().is_empty(), "the default group is open again: {default:?}");
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_trail_access_logs_and_flow_logs_converge_and_drift_is_repaired() {
    let t = test_env().await;
    let components = ["--component", "network", "--component", "lake", "--component", "audit"];
    t.expect(&[&["apply", "--auto-approve"][..], &components].concat(), 0);
    t.plan_is_empty("audit");
    let s3 = t.aws.s3();
    let logs = t.bucket("logs");
    let flow_logs = || async {
        let tagged = Filter::builder().name("tag:indutech:env").values(&t.name).build();
        t.aws.ec2().describe_flow_logs().filter(tagged).send().await.unwrap().flow_logs().to_vec()
    };
    let check = || async {
        for zone in indutech::model::LAKE_ZONES {
            let logging = s3.get_bucket_logging().bucket(t.bucket(zone)).send().await.unwrap();
            let enabled = logging.logging_enabled().unwrap_or_else(|| panic!("{zone}: no access logging"));
            assert_eq!(enabled.target_bucket(), logs, "{zone}");
            assert_eq!(enabled.target_prefix(), format!("s3/{zone}/"), "{zone}");
        }
        let flow_logs = flow_logs().await;
        let [log] = &flow_logs[..] else { panic!("not one flow log: {flow_logs:?}") };
        assert_eq!(log.log_destination(), Some(format!("arn:aws:s3:::{logs}/vpc-flow-logs/").as_str()));
        assert_eq!(log.traffic_type().map(|t| t.as_str()), Some("ALL"));
        assert!(log.resource_id().is_some_and(|id| id.starts_with("vpc-")), "{log:?}");
    };
    check().await;
    // The logs bucket: SSE-S3 (log delivery cannot use a KMS key), versioned, closed, TLS only,
    // writable by the two log deliveries of this account only.
    let encryption = s3.get_bucket_encryption().bucket(&logs).send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(), "AES256");
    let versioning = s3.get_bucket_versioning().bucket(&logs).send().await.unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let block = s3.get_public_access_block().bucket(&logs).send().await.unwrap();
    assert_eq!(block.public_access_block_configuration().unwrap().restrict_public_buckets(), Some(true));
    let policy = s3.get_bucket_policy().bucket(&logs).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy, indutech::desired::logs_bucket_policy(&t.environment, &logs));

    // Drift: the raw bucket's access logging turned off, the flow log deleted.
    s3.put_bucket_logging()
        .bucket(t.bucket("raw"))
        .bucket_logging_status(aws_sdk_s3::types::BucketLoggingStatus::builder().build())
        .send()
        .await
        .unwrap();
    let id = flow_logs().await[0].flow_log_id().unwrap().to_owned();
    t.aws.ec2().delete_flow_logs().flow_log_ids(id).send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "audit", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_s3_bucket_logging.raw will be created"), "{plan}");
    assert!(plan.contains("# aws_flow_log.vpc will be created"), "{plan}");
    assert!(plan.contains("Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy."), "{plan}");
    t.expect(&[&["apply", "--auto-approve"][..], &components].concat(), 0);
    t.plan_is_empty("audit");
    check().await;
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn warehouse_cluster_role_and_schema_converge_drift_is_repaired_and_destroy_snapshots() {
    let t = test_env_with(|text| text.replace("skip_final_snapshot = true", "skip_final_snapshot = false")).await;
    let components = ["--component", "network", "--component", "catalog", "--component", "warehouse"];
    let out = t.expect(&[&["apply", "--auto-approve"][..], &components].concat(), 0);
    // The moto sidecar cannot run SQL: apply says the external schema was not performed.
    assert!(
        out.contains("not performed (the target lacks the API): aws_redshiftdata_statement.external_schema"),
        "{out}"
    );
    // LocalStack creates the parameter group but cannot set parameters: apply says so, the
    // cluster uses the group all the same, and plan shows the parameters as a notice.
    assert!(
        out.contains("aws_redshift_parameter_group.main: done in part, NOT PERFORMED: parameters not set: ModifyClusterParameterGroup is not implemented"),
        "{out}"
    );
    let plan = t.expect(&["plan", "--component", "warehouse", "--detailed-exitcode"], 0);
    assert!(plan.contains("No changes."), "{plan}");
    assert!(plan.contains("aws_redshiftdata_statement.external_schema: cannot read it: ListSchemas"), "{plan}");
    assert!(
        plan.contains(
            "aws_redshift_parameter_group.main: `parameters` not as declared: at the last apply, parameters not set"
        ),
        "{plan}"
    );

    let cluster_id = indutech::model::cluster_identifier(&t.environment);
    let redshift = t.aws.redshift();
    let described = redshift.describe_clusters().cluster_identifier(&cluster_id).send().await.unwrap();
    let cluster = &described.clusters()[0];
    assert_eq!(cluster.encrypted(), Some(true));
    assert_eq!(cluster.publicly_accessible(), Some(false));
    assert_eq!(cluster.cluster_parameter_groups()[0].parameter_group_name(), Some(cluster_id.as_str()));
    let group = redshift.describe_cluster_parameter_groups().parameter_group_name(&cluster_id).send().await.unwrap();
    assert_eq!(group.parameter_groups()[0].parameter_group_family(), Some("redshift-2.0"));
    let role = format!("indutech-{}-spectrum", t.name);
    let iam = t.aws.iam();
    let role_arn = iam.get_role().role_name(&role).send().await.unwrap().role.unwrap().arn;
    assert_eq!(cluster.iam_roles().iter().filter_map(|r| r.iam_role_arn()).collect::<Vec<_>>(), [role_arn.as_str()]);

    let logging = redshift.describe_logging_status().cluster_identifier(&cluster_id).send().await.unwrap();
    assert_eq!(logging.logging_enabled(), Some(true), "{logging:?}");
    assert_eq!(logging.log_destination_type().map(|t| t.as_str()), Some("cloudwatch"), "{logging:?}");
    assert_eq!(logging.log_exports().len(), 3, "{logging:?}");

    // Drift: the cluster made public, its audit logging turned off, the role's policy widened,
    // a tag removed from the role.
    redshift.modify_cluster().cluster_identifier(&cluster_id).publicly_accessible(true).send().await.unwrap();
    redshift.disable_logging().cluster_identifier(&cluster_id).send().await.unwrap();
    let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    iam.put_role_policy().role_name(&role).policy_name("lake-read").policy_document(wide).send().await.unwrap();
    iam.untag_role().role_name(&role).tag_keys("managed-by").send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "warehouse", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_redshift_cluster.main will be updated in place"), "{plan}");
    assert!(plan.contains("publicly_accessible"), "{plan}");
    assert!(plan.contains("# aws_iam_role_policy.spectrum_lake_read will be updated in place"), "{plan}");
    assert!(plan.contains("# aws_iam_role.spectrum will be updated in place"), "{plan}");
    assert!(plan.contains("# aws_redshift_logging.main will be created"), "{plan}");
    t.expect(&["apply", "--component", "warehouse", "--auto-approve"], 0);
    t.plan_is_empty("warehouse");
    let logging = redshift.describe_logging_status().cluster_identifier(&cluster_id).send().await.unwrap();
    assert_eq!(logging.logging_enabled(), Some(true), "audit logging is not back on: {logging:?}");

    // The warehouse holds data: destroy without --force-delete-data keeps the cluster and what
    // it needs or serves it (subnet group and its subnets, the VPC, its security group, the
    // Spectrum role and policy, the external schema's Glue database), and deletes the rest.
    let out = t.expect(&["destroy", "--auto-approve"], 0);
    for kept in [
        "aws_redshift_cluster.main",
        "aws_redshift_logging.main",
        "aws_redshift_parameter_group.main",
        "aws_redshift_subnet_group.main",
        "aws_security_group.warehouse",
        "aws_iam_role.spectrum",
        "aws_iam_role_policy.spectrum_lake_read",
        "aws_vpc.main",
        "aws_glue_catalog_database.main",
    ] {
        assert!(out.contains(&format!("= {kept} (")), "{kept} is not kept:\n{out}");
    }
    assert!(out.contains("# aws_glue_catalog_table.client_tickets will be destroyed"), "{out}");
    let cluster = redshift.describe_clusters().cluster_identifier(&cluster_id).send().await.unwrap();
    assert_eq!(cluster.clusters()[0].cluster_status(), Some("available"), "the cluster stays as it was");
    let logging = redshift.describe_logging_status().cluster_identifier(&cluster_id).send().await.unwrap();
    assert_eq!(logging.logging_enabled(), Some(true), "a kept cluster keeps its audit trail: {logging:?}");
    let groups = redshift.describe_cluster_subnet_groups().cluster_subnet_group_name(&cluster_id).send().await.unwrap();
    assert_eq!(groups.cluster_subnet_groups()[0].subnets().len(), 2, "the subnet group keeps its subnets");
    iam.get_role().role_name(&role).send().await.expect("the Spectrum role stays");
    let policy = iam.get_role_policy().role_name(&role).policy_name("lake-read").send().await.unwrap();
    let document = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8().unwrap();
    let policy: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(policy, indutech::desired::spectrum_policy(&t.environment), "the Spectrum role's policy stays");
    let sg = indutech::model::security_group_name(&t.environment, "warehouse");
    let groups = t
        .aws
        .ec2()
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(&sg).build())
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1, "the warehouse security group stays");
    t.destroy_all().await;
    let snapshots = redshift.describe_cluster_snapshots().cluster_identifier(&cluster_id).send().await.unwrap();
    assert!(
        snapshots
            .snapshots()
            .iter()
            .any(|s| s.snapshot_identifier().is_some_and(|i| i.starts_with(&format!("{cluster_id}-final-")))),
        "no final snapshot of {cluster_id}: {:?}",
        snapshots.snapshots()
    );
    assert!(
        redshift.describe_cluster_parameter_groups().parameter_group_name(&cluster_id).send().await.is_err(),
        "the parameter group is left"
    );
}

/// `(partitions, replicas)` of `topic` on the local broker, None when it does not exist.
fn topic_on_broker(topic: &str) -> Option<(usize, usize)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092").create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    Some((t.partitions().len(), t.partitions()[0].replicas().len()))
}

#[tokio::test(flavor = "multi_thread")]
async fn redpanda_brokers_and_topics_converge_drift_is_repaired_and_destroy_removes_them() {
    // Topic names are global on the shared broker: give this environment its own.
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let t = test_env_with(|text| {
        let mut text = text;
        for stream in ["client_tickets", "incident_events", "sensor_readings"] {
            let header = format!("[streams.{stream}]\n");
            text = text.replacen(&header, &format!("{header}topic = \"{prefix}_{stream}\"\n"), 1);
        }
        text
    })
    .await;
    t.expect(&["apply", "--component", "network", "--component", "redpanda", "--auto-approve"], 0);
    t.plan_is_empty("redpanda");
    assert_eq!(topic_on_broker(&format!("{prefix}_client_tickets")), Some((3, 1)));

    // Three brokers at their fixed addresses, spread over the two zones, rack tag = zone.
    let ec2 = t.aws.ec2();
    let running = ec2
        .describe_instances()
        .filters(tagged_again(&t.name))
        .filters(Filter::builder().name("instance-state-name").values("running").build())
        .send()
        .await
        .unwrap();
    let mut placed: Vec<(String, String)> = running
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.tags().iter().any(|tag| tag.key() == Some("indutech:env") && tag.value() == Some(&t.name)))
        .map(|i| {
            let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_owned();
            (i.private_ip_address().unwrap_or_default().to_owned(), zone)
        })
        .collect();
    placed.sort();
    let want = [("10.40.0.10", "us-east-1a"), ("10.40.0.11", "us-east-1a"), ("10.40.16.10", "us-east-1b")];
    assert_eq!(placed, want.map(|(ip, z)| (ip.to_owned(), z.to_owned())));
    // Every broker's root volume is encrypted.
    for instance in running.reservations().iter().flat_map(|r| r.instances()) {
        let id = instance.instance_id().unwrap();
        let volumes = ec2
            .describe_volumes()
            .filters(Filter::builder().name("attachment.instance-id").values(id).build())
            .send()
            .await
            .unwrap();
        assert!(!volumes.volumes().is_empty(), "{id}: no volume");
        assert!(volumes.volumes().iter().all(|v| v.encrypted() == Some(true)), "{id}: {volumes:?}");
    }

    // Drift: a broker loses a tag and is moved into the worker security group.
    let broker = indutech::model::broker_name(&t.environment, 0);
    let instances = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:Name").values(&broker).build())
        .filters(Filter::builder().name("instance-state-name").values("running").build())
        .send()
        .await
        .unwrap();
    let instance = instances.reservations()[0].instances()[0].instance_id().unwrap().to_owned();
    ec2.delete_tags().resources(&instance).tags(Tag::builder().key("indutech:rack").build()).send().await.unwrap();
    let worker_sg = indutech::model::security_group_name(&t.environment, "worker");
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(&worker_sg).build())
        .send()
        .await
        .unwrap();
    let worker_sg_id = groups.security_groups()[0].group_id().unwrap().to_owned();
    ec2.modify_instance_attribute().instance_id(&instance).groups(&worker_sg_id).send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "redpanda", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_instance.broker_0 will be updated in place"), "{plan}");
    assert!(plan.contains("indutech:rack"), "{plan}");
    assert!(plan.contains("vpc_security_groups"), "{plan}");
    t.expect(&["apply", "--component", "redpanda", "--auto-approve"], 0);
    t.plan_is_empty("redpanda");

    // A fourth broker, then back to three: the fourth is an orphan to terminate. The others'
    // seed lists change each time, so they are replaced with their new cloud-init; LocalStack
    // never frees a terminated instance's address, so relaunching them is a gap, said as such.
    let text = std::fs::read_to_string(&t.path).unwrap();
    std::fs::write(&t.path, text.replacen("broker_count = 3", "broker_count = 4", 1)).unwrap();
    let plan = t.expect(&["plan", "--component", "redpanda", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_instance.broker_0 must be replaced"), "{plan}");
    assert!(plan.contains("# aws_instance.broker_3 will be created"), "{plan}");
    // Replacing several brokers at once loses their local data: refused before any change
    // unless asked for (this cluster holds nothing to keep).
    assert!(plan.contains("apply will refuse this plan without --replace-brokers-at-once"), "{plan}");
    let before = ec2.describe_instances().filters(tagged_again(&t.name)).send().await.unwrap();
    let ids = |out: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput| {
        let mut ids: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "running"))
            .map(|i| i.instance_id().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let refused = t.run(&["apply", "--component", "redpanda", "--auto-approve"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("nothing was applied: this plan replaces 3 Redpanda brokers at once"), "{said}");
    let after = ec2.describe_instances().filters(tagged_again(&t.name)).send().await.unwrap();
    assert_eq!(ids(&after), ids(&before), "a refused apply changed the brokers");
    let out = t.expect(&["apply", "--component", "redpanda", "--auto-approve", "--replace-brokers-at-once"], 0);
    assert!(
        out.contains(
            "not performed (the target lacks the API): aws_instance.broker_0: RunInstances at 10.40.0.10, the \
                      address of a terminated instance"
        ),
        "{out}"
    );
    std::fs::write(&t.path, text).unwrap();
    let plan = t.expect(&["plan", "--component", "redpanda", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_instance.broker_3 will be destroyed (no longer in the environment)"), "{plan}");
    t.expect(&["apply", "--component", "redpanda", "--auto-approve"], 0);
    t.plan_is_empty("redpanda");
    let gone = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:Name").values(indutech::model::broker_name(&t.environment, 3)).build())
        .send()
        .await
        .unwrap();
    assert!(
        gone.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "terminated")),
        "broker 3 still runs"
    );

    // Topics with records are kept by a destroy without --force-delete-data (the brokers go:
    // in `dev` the topics live on the bed's broker, not on them). Every topic gets a record:
    // deleting one topic deletes them all on Tansu.
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092").create().unwrap();
        for stream in ["client_tickets", "incident_events", "sensor_readings"] {
            let topic = format!("{prefix}_{stream}");
            producer.send(BaseRecord::<str, str>::to(&topic).key("k").payload("{}")).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let out = t.expect(&["destroy", "--component", "redpanda", "--auto-approve"], 0);
    assert!(
        out.contains("= kafka_topic.client_tickets (") && out.contains("holds data: 1 record(s)"),
        "the topic is not kept:\n{out}"
    );
    assert_eq!(topic_on_broker(&format!("{prefix}_client_tickets")), Some((3, 1)), "the topic stays");
    t.destroy_all().await;
    assert_eq!(topic_on_broker(&format!("{prefix}_client_tickets")), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_secrets_are_generated_never_printed_and_the_directory_gap_is_said_out_loud() {
    let t = test_env().await;
    let out = t.expect(&["apply", "--component", "network", "--component", "directory", "--auto-approve"], 0);
    // moto's directory service cannot see LocalStack's VPC: said, not faked; the trust needs it.
    assert!(out.contains("not performed (the target lacks the API): aws_directory_service_directory.main"), "{out}");
    assert!(out.contains("not performed (the target lacks the API): aws_directory_service_trust.factory"), "{out}");
    let plan = t.expect(&["plan", "--component", "directory", "--detailed-exitcode"], 0);
    assert!(plan.contains("No changes."), "{plan}");
    assert!(plan.contains("aws_directory_service_trust.factory: not created"), "{plan}");

    let sm = t.aws.secrets_manager();
    let mut values = Vec::new();
    for what in ["directory-admin", "ad-trust"] {
        let name = indutech::model::secret_name(&t.environment, what);
        let value = sm.get_secret_value().secret_id(&name).send().await.unwrap().secret_string.unwrap();
        assert!(value.len() >= 32, "{name}: a generated password");
        values.push(value);
    }
    let json_plan = t.expect(&["plan", "--component", "directory", "--json"], 0);
    for value in &values {
        assert!(!out.contains(value.as_str()) && !plan.contains(value.as_str()) && !json_plan.contains(value.as_str()));
    }

    // Drift: a tag removed from a secret.
    let trust = indutech::model::secret_name(&t.environment, "ad-trust");
    sm.untag_resource().secret_id(&trust).tag_keys("managed-by").send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "directory", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_secretsmanager_secret.ad_trust will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "directory", "--auto-approve"], 0);
    t.plan_is_empty("directory");
    // Repairing tags keeps the generated value.
    let after = sm.get_secret_value().secret_id(&trust).send().await.unwrap().secret_string.unwrap();
    assert_eq!(after, values[1]);
    // Destroy never forces a secret's deletion: it stays recoverable for 30 days, and the next
    // apply restores it with its value (the factory's side of the trust may use it).
    t.destroy_all().await;
    let described = sm.describe_secret().secret_id(&trust).send().await.expect("the secret is recoverable");
    assert!(described.deleted_date().is_some(), "{trust} is scheduled for deletion");
    assert!(sm.get_secret_value().secret_id(&trust).send().await.is_err(), "a secret pending deletion cannot be read");
    t.expect(&["apply", "--component", "network", "--component", "directory", "--auto-approve"], 0);
    let restored = sm.get_secret_value().secret_id(&trust).send().await.unwrap().secret_string.unwrap();
    assert_eq!(restored, values[1], "the next apply restores the secret with its value");
    t.plan_is_empty("directory");
    t.destroy_all().await;
}

#[tokio::test]
async fn migration_dms_converges_drift_is_repaired_and_destroy_removes_it() {
    let t = test_env().await;
    let components = ["network", "lake", "catalog", "migration"];
    let mut args = vec!["apply", "--auto-approve"];
    for c in &components {
        args.extend(["--component", c]);
    }
    let out = t.expect(&args, 0);
    assert!(out.contains("Apply complete!") && !out.contains("not performed"), "{out}");
    let plan = t.expect(&["plan", "--component", "migration", "--detailed-exitcode"], 0);
    assert!(plan.contains("No changes."), "{plan}");
    // moto serves DMS apart from LocalStack's EC2: what it cannot see is said, not faked.
    assert!(plan.contains("aws_dms_replication_subnet_group.erp: `subnets` is not reported by the target"), "{plan}");

    let dms = t.aws.dms();
    let name = format!("indutech-{}-erp", t.name);
    let tasks = dms.describe_replication_tasks().send().await.unwrap();
    let task = tasks.replication_tasks().iter().find(|x| x.replication_task_identifier() == Some(&name)).unwrap();
    assert_eq!(task.migration_type().map(|m| m.as_str()), Some("full-load-and-cdc"));
    let mappings: serde_json::Value = serde_json::from_str(task.table_mappings().unwrap()).unwrap();
    let rules = mappings["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["rule-action"] == "include"
        && r["object-locator"]["table-name"] == "MonitoringStations"
        && r["object-locator"]["schema-name"] == "dbo"));
    assert!(rules.iter().any(|r| r["rule-action"] == "rename"
        && r["object-locator"]["column-name"] == "StationName"
        && r["value"] == "station"));
    // The source names the ERP owners' secret and DMS's role: no server, user or password.
    let endpoints = dms.describe_endpoints().send().await.unwrap();
    let source_name = format!("indutech-{}-erp-source", t.name);
    let source = endpoints.endpoints().iter().find(|e| e.endpoint_identifier() == Some(&source_name)).unwrap();
    let sql = source.microsoft_sql_server_settings().unwrap();
    assert_eq!(sql.secrets_manager_secret_id(), Some("indutech/dev/erp-sqlserver"));
    assert!(sql.secrets_manager_access_role_arn().unwrap().ends_with(&format!(":role/indutech-{}-dms", t.name)));
    assert!(sql.password().is_none() && sql.username().is_none() && sql.server_name().is_none());
    let target_name = format!("indutech-{}-erp-target", t.name);
    let target = endpoints.endpoints().iter().find(|e| e.endpoint_identifier() == Some(&target_name)).unwrap();
    let s3 = target.s3_settings().unwrap();
    assert_eq!(s3.bucket_name(), Some(t.bucket("raw").as_str()));
    assert_eq!(s3.bucket_folder(), Some("erp"));
    assert_eq!(s3.encryption_mode().map(|m| m.as_str()), Some("SSE_KMS"));
    assert!(s3.server_side_encryption_kms_key_id().unwrap().starts_with("arn:aws:kms:"));
    // The ERP table in Glue, next to the streams, where DMS writes it.
    let database = indutech::model::glue_database_name(&t.environment);
    let table = t.aws.glue().get_table().database_name(&database).name("stations").send().await.unwrap();
    let table = table.table().unwrap();
    let sd = table.storage_descriptor().unwrap();
    assert_eq!(sd.location(), Some(format!("s3://{}/erp/dbo/stations/", t.bucket("raw")).as_str()));
    let columns: Vec<&str> = sd.columns().iter().map(|c| c.name()).collect();
    assert_eq!(columns, ["op", "station", "first_reading_at", "last_reading_at", "hourly_rows", "pm2_5_missing_hours"]);

    // Drift: the instance resized and the task started by hand.
    let instances = dms.describe_replication_instances().send().await.unwrap();
    let instance =
        instances.replication_instances().iter().find(|i| i.replication_instance_identifier() == Some(&name)).unwrap();
    dms.modify_replication_instance()
        .replication_instance_arn(instance.replication_instance_arn().unwrap())
        .replication_instance_class("dms.t3.large")
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    dms.start_replication_task()
        .replication_task_arn(task.replication_task_arn().unwrap())
        .start_replication_task_type(aws_sdk_databasemigration::types::StartReplicationTaskTypeValue::StartReplication)
        .send()
        .await
        .unwrap();
    let plan = t.expect(&["plan", "--component", "migration", "--detailed-exitcode"], 2);
    assert!(plan.contains("replication_instance_class = \"dms.t3.large\" -> \"dms.t3.medium\""), "{plan}");
    assert!(plan.contains("start_replication_task = true -> false"), "{plan}");
    t.expect(&["apply", "--component", "migration", "--auto-approve"], 0);
    t.plan_is_empty("migration");
    let tasks = dms.describe_replication_tasks().send().await.unwrap();
    let task = tasks.replication_tasks().iter().find(|x| x.replication_task_identifier() == Some(&name)).unwrap();
    assert_eq!(task.status(), Some("stopped"), "apply stopped the task the environment wants stopped");

    // `[erp]` removed from the environment: everything it made is planned for deletion, and goes.
    let text = std::fs::read_to_string(&t.path).unwrap();
    let start = text.find("[erp]").unwrap();
    let end = start + text[start..].find("# One local broker").unwrap();
    std::fs::write(&t.path, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let mut args = vec!["plan", "--detailed-exitcode"];
    for c in &components {
        args.extend(["--component", c]);
    }
    let plan = t.expect(&args, 2);
    for orphan in [
        "aws_dms_replication_task.erp",
        "aws_dms_endpoint.erp_source",
        "aws_dms_s3_endpoint.erp_target",
        "aws_dms_replication_instance.erp",
        "aws_dms_replication_subnet_group.erp",
        "aws_iam_role_policy.dms",
        "aws_iam_role.dms",
        "aws_glue_catalog_table.stations",
        "aws_security_group.erp",
        "aws_vpc_endpoint.secretsmanager",
    ] {
        assert!(
            plan.contains(&format!("# {orphan} will be destroyed (no longer in the environment)")),
            "{orphan}\n{plan}"
        );
    }
    assert!(plan.contains("10 to destroy"), "{plan}");
    args[0] = "apply";
    args[1] = "--auto-approve";
    t.expect(&args, 0);
    args[0] = "plan";
    args[1] = "--detailed-exitcode";
    let plan = t.expect(&args, 0);
    assert!(plan.contains("No changes."), "{plan}");
    let tasks = dms.describe_replication_tasks().send().await.unwrap();
    assert!(tasks.replication_tasks().iter().all(|x| x.replication_task_identifier() != Some(&name)));
    assert!(t.aws.iam().get_role().role_name(format!("indutech-{}-dms", t.name)).send().await.is_err());

    t.destroy_all().await;
    let ours = format!("indutech-{}-", t.name);
    let tasks = dms.describe_replication_tasks().send().await.unwrap();
    assert!(
        tasks.replication_tasks().iter().all(|x| !x.replication_task_identifier().unwrap_or("").starts_with(&ours))
    );
    let endpoints = dms.describe_endpoints().send().await.unwrap();
    assert!(endpoints.endpoints().iter().all(|e| !e.endpoint_identifier().unwrap_or("").starts_with(&ours)));
    let instances = dms.describe_replication_instances().send().await.unwrap();
    assert!(instances.replication_instances().iter().all(|i| i.replication_instance_identifier() != Some(&name)));
    let groups = dms.describe_replication_subnet_groups().send().await.unwrap();
    assert!(groups.replication_subnet_groups().iter().all(|g| g.replication_subnet_group_identifier() != Some(&name)));
}

fn tagged_again(name: &str) -> Filter {
    Filter::builder().name("tag:indutech:env").values(name).build()
}

#[tokio::test(flavor = "multi_thread")]
async fn vpn_routes_and_tags_drift_are_repaired_and_gaps_are_said_out_loud() {
    let t = test_env().await;
    let out = t.expect(&["apply", "--component", "network", "--component", "vpn", "--auto-approve"], 0);
    // LocalStack lacks CreateVpnConnectionRoute: apply says so instead of claiming success.
    assert!(out.contains("not performed (the target lacks the API): aws_vpn_connection_route.onprem_0"), "{out}");
    let plan = t.expect(&["plan", "--component", "vpn", "--detailed-exitcode"], 0);
    assert!(
        plan.contains("aws_vpn_connection_route.onprem_0: not created: at the last apply, CreateVpnConnectionRoute"),
        "{plan}"
    );
    assert!(plan.contains("No changes."), "{plan}");

    // The factory side's strongSwan configuration comes from the live connection, keys excluded.
    let dir = t.path.parent().unwrap().join("rendered");
    t.expect(&["render", "--out", dir.to_str().unwrap()], 0);
    let swanctl = std::fs::read_to_string(dir.join("swanctl.conf")).unwrap();
    assert!(swanctl.contains("aws-tunnel-1 {") && swanctl.contains("aws-tunnel-2 {"), "{swanctl}");
    assert!(swanctl.contains("local_addrs = 203.0.113.10"), "{swanctl}");
    assert!(swanctl.contains("proposals = aes256-sha256-modp2048"), "{swanctl}");
    assert!(!swanctl.to_lowercase().contains("pre_shared_key"), "{swanctl}");
    // The brokers' cloud-init is the user data whose digest the plan shows.
    let cloud_init = std::fs::read_to_string(dir.join("broker-0.cloud-init.yaml")).unwrap();
    let broker = indutech::desired::resources(&t.environment, "", &[indutech::plan::Component::Redpanda])
        .into_iter()
        .find(|r| r.address == "aws_instance.broker_0")
        .unwrap();
    assert_eq!(broker.attributes["user_data_sha256"], indutech::digest::sha256_hex(&cloud_init));

    let ec2 = t.aws.ec2();
    let t_name = t.name.clone();
    let tables = ec2
        .describe_route_tables()
        .filters(tagged_again(&t.name))
        .filters(Filter::builder().name("tag:Name").values(format!("indutech-{}-private-rt", t.name)).build())
        .send()
        .await
        .unwrap();
    let table_id = tables.route_tables()[0].route_table_id().unwrap().to_owned();
    ec2.delete_route().route_table_id(&table_id).destination_cidr_block("192.168.0.0/16").send().await.unwrap();
    // LocalStack ignores the filter for customer gateways: pick ours by its tags.
    let gateways = ec2.describe_customer_gateways().filters(tagged_again(&t.name)).send().await.unwrap();
    let ours = |g: &&aws_sdk_ec2::types::CustomerGateway| {
        g.state() == Some("available")
            && g.tags().iter().any(|t| t.key() == Some("indutech:env") && t.value() == Some(&t_name))
    };
    let cgw = gateways.customer_gateways().iter().find(ours).unwrap().customer_gateway_id().unwrap().to_owned();
    ec2.delete_tags().resources(&cgw).tags(Tag::builder().key("indutech:component").build()).send().await.unwrap();
    // The tunnels' log group exists, kept a year; somebody shortens its retention.
    let log_group = indutech::model::vpn_log_group_name(&t.environment);
    let logs = t.aws.logs();
    let retention = || async {
        let out = logs.describe_log_groups().log_group_name_prefix(&log_group).send().await.unwrap();
        out.log_groups().iter().find(|g| g.log_group_name() == Some(log_group.as_str())).unwrap().retention_in_days()
    };
    assert_eq!(retention().await, Some(365));
    logs.put_retention_policy().log_group_name(&log_group).retention_in_days(1).send().await.unwrap();

    let plan = t.expect(&["plan", "--component", "vpn", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_route.onprem_0 will be created"), "{plan}");
    assert!(plan.contains("# aws_customer_gateway.factory will be updated in place"), "{plan}");
    assert!(plan.contains("# aws_cloudwatch_log_group.vpn will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "vpn", "--auto-approve"], 0);
    t.plan_is_empty("vpn");
    assert_eq!(retention().await, Some(365));

    // The environment moves the VPN to a transit gateway: the virtual private gateway and its
    // attachment are no longer wanted, the connection is replaced onto the transit gateway and
    // the route retargeted.
    let text = std::fs::read_to_string(&t.path).unwrap();
    let moved = text.replacen("routing = \"static\"", "routing = \"static\"\nattachment = \"transit_gateway\"", 1);
    std::fs::write(&t.path, moved).unwrap();
    let plan = t.expect(&["plan", "--component", "vpn", "--detailed-exitcode"], 2);
    for line in [
        "# aws_vpn_gateway.main will be destroyed (no longer in the environment)",
        "# aws_vpn_gateway_attachment.main will be destroyed (no longer in the environment)",
        "# aws_vpn_connection.factory must be replaced",
        "# aws_ec2_transit_gateway.main will be created",
        "# aws_route.onprem_0 will be updated in place",
    ] {
        assert!(plan.contains(line), "{line}\n{plan}");
    }
    t.expect(&["apply", "--component", "vpn", "--auto-approve"], 0);
    t.plan_is_empty("vpn");
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transit_gateway_carries_the_vpn_when_the_environment_asks() {
    let t = test_env_with(|text| {
        text.replacen("routing = \"static\"", "routing = \"static\"\nattachment = \"transit_gateway\"", 1)
    })
    .await;
    let out = t.expect(&["apply", "--component", "network", "--component", "vpn", "--auto-approve"], 0);
    for address in [
        "aws_ec2_transit_gateway.main",
        "aws_ec2_transit_gateway_vpc_attachment.main",
        "aws_ec2_transit_gateway_route.onprem_0",
        "aws_route.onprem_0",
    ] {
        assert!(out.contains(&format!("# {address} will be created")), "{address}\n{out}");
    }
    // 20, and with dev's `[erp]` the DMS instance's security group and the Secrets Manager
    // endpoint it reads the ERP's login through.
    assert!(out.contains("Apply complete! Resources: 22 added"), "{out}");
    assert!(!out.contains("aws_vpn_gateway"), "{out}");
    t.plan_is_empty("vpn");

    // The connection and the VPC's route point at the transit gateway.
    let ec2 = t.aws.ec2();
    let ours = |tags: &[Tag]| tags.iter().any(|x| x.key() == Some("indutech:env") && x.value() == Some(&t.name));
    let tgws = ec2.describe_transit_gateways().send().await.unwrap();
    let tgw = tgws
        .transit_gateways()
        .iter()
        .find(|g| ours(g.tags()) && g.state().is_some_and(|s| s.as_str() == "available"))
        .unwrap();
    let tgw_id = tgw.transit_gateway_id().unwrap().to_owned();
    let table = tgw.options().and_then(|o| o.association_default_route_table_id()).unwrap().to_owned();
    let connections = ec2.describe_vpn_connections().filters(tagged_again(&t.name)).send().await.unwrap();
    let connection = connections
        .vpn_connections()
        .iter()
        .find(|c| ours(c.tags()) && c.state().is_some_and(|s| s.as_str() != "deleted"))
        .unwrap();
    assert_eq!(connection.transit_gateway_id(), Some(tgw_id.as_str()));
    assert_eq!(connection.vpn_gateway_id().unwrap_or_default(), "", "LocalStack reports an empty id");

    // Drift: the transit gateway's static route to the factory deleted, a tag removed from the
    // transit gateway.
    ec2.delete_transit_gateway_route()
        .transit_gateway_route_table_id(&table)
        .destination_cidr_block("192.168.0.0/16")
        .send()
        .await
        .unwrap();
    ec2.delete_tags().resources(&tgw_id).tags(Tag::builder().key("indutech:component").build()).send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "vpn", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_ec2_transit_gateway_route.onprem_0 will be created"), "{plan}");
    assert!(plan.contains("# aws_ec2_transit_gateway.main will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "vpn", "--auto-approve"], 0);
    t.plan_is_empty("vpn");

    // The factory's network renumbered: the routes to the old CIDR are orphans, deleted; the
    // new ones are created.
    let text = std::fs::read_to_string(&t.path).unwrap();
    // (The ERP's SQL Server moves into the kept range, or validation refuses the file.)
    let renumbered = text
        .replacen("cidrs = [\"192.168.0.0/16\"]", "cidrs = [\"172.30.0.0/16\", \"192.168.10.0/24\"]", 1)
        .replacen("host = \"192.168.20.15\"", "host = \"192.168.10.15\"", 1);
    std::fs::write(&t.path, renumbered).unwrap();
    let plan = t.expect(&["plan", "--component", "vpn", "--detailed-exitcode"], 2);
    for orphan in ["aws_route.onprem_192_168_0_0_16", "aws_ec2_transit_gateway_route.onprem_192_168_0_0_16"] {
        assert!(plan.contains(&format!("# {orphan} will be destroyed (no longer in the environment)")), "{plan}");
    }
    assert!(plan.contains("# aws_ec2_transit_gateway_route.onprem_0 will be created"), "{plan}");
    t.expect(&["apply", "--component", "vpn", "--auto-approve"], 0);
    t.plan_is_empty("vpn");
    let routes = ec2
        .search_transit_gateway_routes()
        .transit_gateway_route_table_id(&table)
        .filters(Filter::builder().name("type").values("static").build())
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<&str> = routes
        .routes()
        .iter()
        .filter(|r| r.state().is_none_or(|s| s.as_str() != "deleted"))
        .filter_map(|r| r.destination_cidr_block())
        .collect();
    cidrs.sort();
    assert_eq!(cidrs, ["172.30.0.0/16", "192.168.10.0/24"]);
    t.destroy_all().await;
}

/// Every version of the lock object in the environment's state bucket.
async fn lock_versions(t: &TestEnv) -> Vec<String> {
    let bucket = indutech::model::state_bucket_name(&t.environment);
    let listed = t.aws.s3().list_object_versions().bucket(&bucket).prefix("lock.json").send().await.unwrap();
    listed.versions().iter().filter_map(|v| v.version_id().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_refuses_apply_and_force_unlock_needs_its_id() {
    let t = test_env().await;
    let ctx = indutech::provider::Context::new(t.environment.clone(), t.aws.clone());
    // Taking and releasing a lock creates the state bucket and leaves no lock behind.
    indutech::lock::acquire(&ctx, "apply").await.unwrap().release(&ctx).await.unwrap();
    let state = indutech::model::state_bucket_name(&t.environment);
    assert!(lock_versions(&t).await.is_empty());
    // A holder that died a while ago: its 1 s lease ran out.
    let lock = r#"{"id":"0123456789abcdef","operation":"apply","who":"alice@ci-runner-7 (pid 4242)","created":"2026-11-21T08:00:00Z","lease_secs":1}"#;
    t.aws
        .s3()
        .put_object()
        .bucket(&state)
        .key("lock.json")
        .metadata("lock-id", "0123456789abcdef")
        .body(lock.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let refused = t.run(&["apply", "--component", "catalog", "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr.contains("is locked: apply by alice@ci-runner-7 (pid 4242) since 2026-11-21T08:00:00Z, last renewed at"),
        "{stderr}"
    );
    assert!(stderr.contains("by S3's clock"), "{stderr}");
    assert!(stderr.contains("past its 1 s lease: the holder is probably dead"), "{stderr}");
    assert!(stderr.contains(&format!("indutech force-unlock --env {} 0123456789abcdef", t.name)), "{stderr}");
    let database = indutech::model::glue_database_name(&t.environment);
    assert!(t.aws.glue().get_database().name(&database).send().await.is_err(), "a refused apply changed something");

    let wrong = t.run(&["force-unlock", "ffffffffffffffff"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("nothing was removed"));
    t.expect(&["force-unlock", "0123456789abcdef"], 0);
    assert!(lock_versions(&t).await.is_empty(), "force-unlock removes every version of that lock");
    t.expect(&["apply", "--component", "catalog", "--auto-approve"], 0);
    // The lock is released after a successful apply: no version of it is left.
    assert!(lock_versions(&t).await.is_empty());
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_applies_one_proceeds_the_other_is_refused_naming_the_holder() {
    let t = test_env().await;
    let ctx = indutech::provider::Context::new(t.environment.clone(), t.aws.clone());
    // The conditional put lets exactly one of several concurrent takers win.
    let take = || indutech::lock::acquire(&ctx, "apply");
    let (a, b, c, d) = tokio::join!(take(), take(), take(), take());
    let held: Vec<indutech::lock::Lock> = [a, b, c, d].into_iter().filter_map(Result::ok).collect();
    assert_eq!(held.len(), 1, "exactly one concurrent taker gets the lock");
    held.into_iter().next().unwrap().release(&ctx).await.unwrap();

    // Two apply processes: the first takes the lock (frozen while it holds it, so that the
    // second surely runs meanwhile); the second is refused, naming the first; the first goes on.
    let first = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args(["apply", "--component", "lake", "--auto-approve", "--env"])
        .arg(&t.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while lock_versions(&t).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first apply never took the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signal = |name: &str| {
        let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill -{name} {pid}");
    };
    signal("STOP");
    let second = t.run(&["apply", "--component", "lake", "--auto-approve"]);
    signal("CONT");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is locked: apply by"), "{stderr}");
    assert!(stderr.contains(&format!("(pid {pid}) since")), "the refusal names the holder: {stderr}");
    assert!(stderr.contains("within its 60 s lease: the holder is alive"), "{stderr}");
    let first = first.wait_with_output().unwrap();
    let stdout = exited(&["apply (first)"], &first, 0);
    assert!(stdout.contains("Apply complete!"), "{stdout}");
    assert!(lock_versions(&t).await.is_empty(), "the first apply released its lock");
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_holder_renews_its_lease_and_stops_once_it_is_force_unlocked() {
    use indutech::plan::Mode;
    let t = test_env().await;
    let ctx = Arc::new(indutech::provider::Context::new(t.environment.clone(), t.aws.clone()));
    let first = indutech::lock::acquire_with_lease(&ctx, "apply", Duration::from_secs(4)).await.unwrap();
    let taken = indutech::lock::current(&ctx).await.unwrap().unwrap();
    // Renewed every second: S3's Last-Modified moves on, and at most two versions exist.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    first.lease().check().unwrap();
    let renewed = indutech::lock::current(&ctx).await.unwrap().unwrap();
    assert_eq!(renewed.info.id, first.info().id);
    assert!(renewed.last_renewed > taken.last_renewed, "{:?} then {:?}", taken.last_renewed, renewed.last_renewed);
    assert!(lock_versions(&t).await.len() <= 2, "{:?}", lock_versions(&t).await);

    // Someone force-unlocks it (a live holder may renew it during the removal, which is then
    // refused; the operator tries again).
    let mut removed = false;
    for _ in 0..5 {
        let out = t.run(&["force-unlock", &first.info().id]);
        if out.status.code() == Some(0) {
            removed = true;
            break;
        }
        assert!(String::from_utf8_lossy(&out.stderr).contains("renewed while it was being removed"));
    }
    assert!(removed, "force-unlock never removed the lock");
    // The holder learns it at its next renewal and its lease check fails from then on.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let why = loop {
        if let Err(why) = first.lease().check() {
            break why;
        }
        assert!(std::time::Instant::now() < deadline, "the lease still holds after force-unlock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(why.contains("removed or taken by another run"), "{why}");
    // An apply that lost its lease starts no change.
    let options = indutech::engine::Options::default();
    let plan =
        indutech::engine::plan(&ctx, Mode::Apply, &[indutech::plan::Component::Catalog], &options).await.unwrap();
    assert!(plan.has_changes());
    let lease = first.lease();
    let report = indutech::engine::execute(&ctx, &plan, &options, Arc::default(), &|| lease.check()).await;
    assert!(report.lease_lost.as_deref().is_some_and(|w| w.contains("removed or taken")), "{:?}", report.lease_lost);
    assert!(report.outcomes.iter().all(|(_, _, o)| matches!(o, indutech::engine::Outcome::NotAttempted(_))));
    let database = indutech::model::glue_database_name(&t.environment);
    assert!(t.aws.glue().get_database().name(&database).send().await.is_err(), "a change ran without the lease");

    // Another run takes the lock; the first one's release deletes only its own versions.
    let second = indutech::lock::acquire(&ctx, "apply").await.unwrap();
    first.release(&ctx).await.unwrap();
    let holder = indutech::lock::current(&ctx).await.unwrap().expect("the second lock is still held");
    assert_eq!(holder.info.id, second.info().id);
    second.release(&ctx).await.unwrap();
    assert!(lock_versions(&t).await.is_empty());
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_checked_not_trusted_and_names_its_environment() {
    let t = test_env().await;
    let dir = t.path.parent().unwrap();
    let saved = dir.join("catalog.plan");
    let saved = saved.to_str().unwrap();
    let apply_saved = |extra: &[&str]| {
        // No --env: the plan names its environment file.
        Command::new(env!("CARGO_BIN_EXE_indutech"))
            .arg("apply")
            .args(extra)
            .arg(saved)
            .env("NO_COLOR", "1")
            .env_remove("INDUTECH_ENV")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = t.expect(&["plan", "--component", "catalog", "--out", saved], 0);
    assert!(out.contains(&format!("indutech apply {saved}")), "{out}");

    // Hand-edited: the database's description changed in the file, digests untouched.
    let text = std::fs::read_to_string(saved).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    let changes = edited["plan"]["changes"].as_array_mut().unwrap();
    let database_change = changes.iter_mut().find(|c| c["address"] == "aws_glue_catalog_database.main").unwrap();
    for attribute in database_change["attributes"].as_array_mut().unwrap() {
        if attribute["name"] == "description" {
            attribute["after"] = serde_json::json!("edited by hand");
        }
    }
    std::fs::write(saved, serde_json::to_vec(&edited).unwrap()).unwrap();
    let refused = apply_saved(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the saved plan is not the plan computed now, so nothing was applied"), "{stderr}");
    assert!(
        stderr.contains("aws_glue_catalog_database.main: the create in the file differs in `description`"),
        "{stderr}"
    );
    let database = indutech::model::glue_database_name(&t.environment);
    assert!(t.aws.glue().get_database().name(&database).send().await.is_err(), "a refused plan changed something");

    // Stale: something changes in AWS after the plan was saved.
    std::fs::write(saved, &text).unwrap();
    t.aws
        .glue()
        .create_database()
        .database_input(aws_sdk_glue::types::DatabaseInput::builder().name(&database).build().unwrap())
        .send()
        .await
        .unwrap();
    let stale = apply_saved(&[]);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("what AWS reports changed since the plan was made"), "{stderr}");
    assert!(
        stderr.contains("aws_glue_catalog_database.main: the file would create it; now it needs update"),
        "{stderr}"
    );

    // A saved plan of this environment is refused under another one's --env.
    t.expect(&["plan", "--component", "catalog", "--out", saved], 0);
    let other = apply_saved(&["--env", "dev"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("but --env (or INDUTECH_ENV) names"));
    // A fresh saved plan is applied exactly, without --env: one update (the description) and
    // four tables (three streams, one ERP table).
    let out = apply_saved(&[]);
    let stdout = exited(&["apply", saved], &out, 0);
    assert!(stdout.contains("Apply complete! Resources: 4 added, 1 changed, 0 replaced, 0 destroyed."), "{stdout}");

    // INDUTECH_ENV stands for --env in every verb.
    for verb in [&["plan", "--component", "catalog", "--detailed-exitcode"][..], &["validate"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(verb)
            .env("INDUTECH_ENV", &t.path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        exited(verb, &out, 0);
    }
    t.destroy_all().await;
}

#[test]
fn shell_completions_load_in_their_shells() {
    let dir = std::env::temp_dir().join(format!("indutech-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (shell, check) in [
        ("bash", "source \"$1\" && complete -p indutech"),
        ("zsh", "autoload -Uz compinit && compinit -u && source \"$1\" && print -r -- ${_comps[indutech]}"),
        ("fish", "source $argv[1]; and complete -C 'indutech des'"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech")).args(["completions", shell]).output().unwrap();
        let script = dir.join(format!("indutech.{shell}"));
        std::fs::write(&script, exited(&["completions", shell], &out, 0)).unwrap();
        // bash and zsh take `$0` then `$1` after the command; fish takes `$argv` directly.
        let mut command = Command::new(shell);
        command.args(["-c", check]);
        if shell != "fish" {
            command.arg(shell);
        }
        let Ok(loaded) = command.arg(&script).output() else {
            assert!(std::env::var_os("CI").is_none(), "{shell} is missing: .ci/run installs it");
            eprintln!("{shell} is not installed here: its completions were not loaded");
            continue;
        };
        let stdout = String::from_utf8_lossy(&loaded.stdout);
        assert!(loaded.status.success(), "{shell}: {stdout}{}", String::from_utf8_lossy(&loaded.stderr));
        let want = match shell {
            "bash" => "_indutech",
            "zsh" => "_indutech",
            _ => "destroy",
        };
        assert!(stdout.contains(want), "{shell} did not register the completions: {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_environment_makes_no_aws_call() {
    // Every endpoint points at a listener that counts connections.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    {
        let connections = connections.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            loop {
                if listener.accept().is_ok() {
                    connections.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    let (_, path, _) = write_env("t", false, |text| {
        text.replace("http://127.0.0.1:4566", &format!("http://127.0.0.1:{port}"))
            .replace("http://127.0.0.1:5000", &format!("http://127.0.0.1:{port}"))
            .replace("vpc_cidr = \"10.40.0.0/16\"", "vpc_cidr = \"10.40.0.0/33\"")
    });
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["destroy", "--auto-approve"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(args)
            .arg("--env")
            .arg(&path)
            .output()
            .expect("run indutech");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("network.vpc_cidr"), "{args:?}: {stderr}");
        assert!(stderr.contains("nothing was sent to AWS"), "{args:?}: {stderr}");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "an invalid environment reached an endpoint");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_apply_leaves_nothing_the_next_apply_duplicates() {
    let t = test_env().await;
    // SIGKILL the apply as soon as it reports its first completed create.
    let mut child = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args([
            "apply",
            "--component",
            "network",
            "--component",
            "lake",
            "--auto-approve",
            "--parallelism",
            "2",
            "--env",
        ])
        .arg(&t.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(n > 0, "apply ended before creating anything");
        if line.contains("Creation complete") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The lock of the dead apply stays; the next apply says who holds it.
    let refused = t.run(&["apply", "--component", "network", "--component", "lake", "--auto-approve"]);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(stderr.contains("is locked: apply by"), "{stderr}");
    let id = stderr.split("(lock id ").nth(1).and_then(|s| s.split(')').next()).unwrap().to_owned();
    t.expect(&["force-unlock", &id], 0);

    let out = t.expect(&["apply", "--component", "network", "--component", "lake", "--auto-approve"], 0);
    assert!(out.contains("Apply complete!"), "{out}");
    t.plan_is_empty("network");
    t.plan_is_empty("lake");
    let vpcs = t
        .aws
        .ec2()
        .describe_vpcs()
        .filters(Filter::builder().name("tag:indutech:env").values(&t.name).build())
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1, "the VPC was duplicated");
    t.destroy_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ec2_worker_runtime_uploads_this_binary_and_says_the_instance_gap_out_loud() {
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let t = test_env_with(|text| {
        let mut text = text.replacen(
            "[worker]\nruntime = \"local\"\n",
            "[worker]\nruntime = \"ec2\"\nami = \"ami-df5de72bdb3b\"\ninstance_type = \"t3.small\"\ninstance_count = 2\n",
            1,
        );
        for stream in ["client_tickets", "incident_events", "sensor_readings"] {
            let header = format!("[streams.{stream}]\n");
            text = text.replacen(&header, &format!("{header}topic = \"{prefix}_{stream}\"\n"), 1);
        }
        text
    })
    .await;
    assert_eq!(t.environment.worker.runtime, indutech::config::environment::WorkerRuntime::Ec2);
    // Not the redpanda component: deleting a topic on Tansu deletes every topic, which would
    // pull the rug from the Redpanda test running alongside.
    let components = ["network", "lake", "catalog", "worker"].map(|c| ["--component", c]).concat();
    let mut apply = vec!["apply", "--auto-approve"];
    apply.extend(components.iter().copied());
    let out = t.expect(&apply, 0);
    // LocalStack's EC2 cannot see the instance profiles its IAM holds: said, not skipped.
    for index in 0..2 {
        let line = format!("aws_instance.worker_{index}: RunInstances with an IAM instance profile is not implemented");
        assert!(out.contains(&line), "{out}");
    }
    let plan = t.expect(&["plan", "--component", "worker", "--detailed-exitcode"], 0);
    assert!(plan.contains("Not verifiable on this target"), "{plan}");
    assert!(plan.contains("aws_instance.worker_1: not created"), "{plan}");

    // The binary that ran apply is in the artifacts bucket under its digest.
    let binary = indutech::artifact::Artifact::of_file(std::path::Path::new(env!("CARGO_BIN_EXE_indutech"))).unwrap();
    let artifacts = t.bucket("artifacts");
    let key = indutech::model::worker_binary_key(&binary.sha256);
    let head = t.aws.s3().head_object().bucket(&artifacts).key(&key).send().await.unwrap();
    assert_eq!(head.content_length(), Some(binary.size_bytes as i64));
    assert_eq!(head.metadata().and_then(|m| m.get("sha256")), Some(&binary.sha256));

    // The role is in the instance profile; drift: take it out, plan shows it, apply repairs it.
    let role = format!("indutech-{}-worker", t.name);
    let iam = t.aws.iam();
    let profile = iam.get_instance_profile().instance_profile_name(&role).send().await.unwrap();
    let roles: Vec<&str> = profile.instance_profile().unwrap().roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(roles, [role.as_str()]);
    iam.get_role_policy().role_name(&role).policy_name("worker").send().await.unwrap();
    iam.remove_role_from_instance_profile().instance_profile_name(&role).role_name(&role).send().await.unwrap();
    let plan = t.expect(&["plan", "--component", "worker", "--detailed-exitcode"], 2);
    assert!(plan.contains("# aws_iam_instance_profile.worker will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "worker", "--auto-approve"], 0);
    t.expect(&["plan", "--component", "worker", "--detailed-exitcode"], 0);

    t.destroy_all().await;
    assert!(iam.get_instance_profile().instance_profile_name(&role).send().await.is_err(), "profile {role} left");
    assert!(iam.get_role().role_name(&role).send().await.is_err(), "role {role} left");
}

/// `bench plan` times every AWS call through the SDK interceptor: a run reports the calls it
/// made, in both passes (parallel reads and one at a time). Nothing here asserts a duration.
#[tokio::test]
async fn bench_plan_reports_the_aws_calls_it_timed() {
    let env = test_env().await;
    let out = env.expect(&["bench", "plan", "--runs", "1"], 0);
    let line = out.lines().find(|l| l.starts_with("bench plan: ")).unwrap_or_else(|| panic!("{out}"));
    let calls: Vec<u64> =
        line.split(" AWS calls per run").filter_map(|part| part.rsplit('(').next()?.trim().parse().ok()).collect();
    assert_eq!(calls.len(), 2, "{line}");
    // From empty: at least one read per resource of the network, lake and catalog components.
    assert!(calls.iter().all(|&c| c >= 30), "{line}");
    assert!(line.contains("one read at a time"), "{line}");
}

/// The JSON value of `environment`'s generated Kafka secret `what` (`ca`, `brokers-tls`,
/// `admin`, `worker`).
async fn kafka_secret(t: &TestEnv, what: &str) -> serde_json::Value {
    let name = indutech::model::kafka_secret_name(&t.environment, what);
    let out = t.aws.secrets_manager().get_secret_value().secret_id(&name).send().await.unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

/// Whether OpenSSL (a verifier indutech did not write) accepts `certificate` for `ip`, signed by
/// `ca` (PEM both).
fn openssl_verifies(ca: &str, certificate: &str, ip: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("indutech-verify-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    std::fs::write(dir.join("cert.pem"), certificate).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-verify_ip", ip, "-CAfile"])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is installed");
    std::fs::remove_dir_all(&dir).unwrap();
    out.status.success()
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_ssl_secrets_are_generated_once_reissued_for_new_brokers_and_restored_after_destroy() {
    // indutech's own brokers with SASL/SCRAM over TLS (no bootstrap servers of the bed).
    let t = test_env_with(|text| {
        text.replace("bootstrap_servers = [\"127.0.0.1:9092\"]\n", "")
            .replace("security = \"plaintext\"", "security = \"sasl_ssl\"")
    })
    .await;
    let applied = t.expect(&["apply", "--component", "network", "--component", "redpanda", "--auto-approve"], 0);
    // The bed's EC2 cannot start an instance with a profile its IAM holds: the brokers (and
    // so their topics) are a recorded gap; everything else converges.
    assert!(applied.contains("aws_instance.broker_0: RunInstances with an IAM instance profile"), "{applied}");
    t.plan_is_empty("redpanda");

    let (ca, tls, admin, worker) = (
        kafka_secret(&t, "ca").await,
        kafka_secret(&t, "brokers-tls").await,
        kafka_secret(&t, "admin").await,
        kafka_secret(&t, "worker").await,
    );
    let ca_pem = ca["certificate"].as_str().unwrap();
    let ca_key = ca["private_key"].as_str().unwrap();
    for (principal, value) in [("indutech-admin", &admin), ("indutech-worker", &worker)] {
        assert_eq!(value["username"], principal);
        let password = value["password"].as_str().unwrap();
        assert!(password.len() == 40 && password.chars().all(|c| c.is_ascii_alphanumeric()), "{principal}");
        assert_eq!(value["ca_certificate"], ca_pem, "{principal}: the CA that signed the brokers");
        assert!(!applied.contains(password), "a password was printed");
    }
    assert_ne!(admin["password"], worker["password"]);
    let ips: Vec<String> =
        indutech::model::broker_placements(&t.environment).iter().map(|p| p.private_ip.to_string()).collect();
    assert_eq!(tls["ip_addresses"], serde_json::json!(ips));
    assert_eq!(tls["ca_certificate"], ca_pem);
    let certificate = tls["certificate"].as_str().unwrap();
    for ip in &ips {
        assert!(openssl_verifies(ca_pem, certificate, ip), "{ip}");
    }
    assert!(!openssl_verifies(ca_pem, certificate, "10.40.99.99"));
    // The CA's key is in the CA's secret only.
    for value in [&tls, &admin, &worker] {
        assert!(!value.to_string().contains(&ca_key.lines().nth(1).unwrap().to_owned()), "the CA key leaked");
    }
    // The brokers' role reads their three secrets, never the CA's.
    let role = indutech::model::resource_name(&t.environment, "brokers");
    let policy = t.aws.iam().get_role_policy().role_name(&role).policy_name("brokers").send().await.unwrap();
    let policy = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8().unwrap().into_owned();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let resources: Vec<&str> =
        policy["Statement"][0]["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(policy["Statement"][0]["Action"], serde_json::json!(["secretsmanager:GetSecretValue"]));
    assert_eq!(resources.len(), 3, "{resources:?}");
    for (what, readable) in [("brokers-tls", true), ("admin", true), ("worker", true), ("ca", false)] {
        let name = indutech::model::kafka_secret_name(&t.environment, what);
        assert_eq!(
            resources.iter().any(|r| r.contains(&format!(":secret:{name}-"))),
            readable,
            "{what}: {resources:?}"
        );
    }

    // A fourth broker: the same CA issues the brokers' certificate again for four addresses;
    // the passwords stay.
    let text = std::fs::read_to_string(&t.path).unwrap().replacen("broker_count = 3", "broker_count = 4", 1);
    std::fs::write(&t.path, text).unwrap();
    let t = TestEnv { environment: indutech::config::load(t.path.to_str().unwrap()).unwrap(), ..t };
    let plan = t.expect(&["plan", "--component", "redpanda", "--detailed-exitcode"], 2);
    assert!(plan.contains("aws_secretsmanager_secret.kafka_brokers_tls will be updated in place"), "{plan}");
    t.expect(&["apply", "--component", "redpanda", "--auto-approve"], 0);
    t.plan_is_empty("redpanda");
    let reissued = kafka_secret(&t, "brokers-tls").await;
    let ips: Vec<String> =
        indutech::model::broker_placements(&t.environment).iter().map(|p| p.private_ip.to_string()).collect();
    assert_eq!((ips.len(), &reissued["ip_addresses"]), (4, &serde_json::json!(ips)));
    assert!(openssl_verifies(ca_pem, reissued["certificate"].as_str().unwrap(), &ips[3]));
    assert_eq!(kafka_secret(&t, "ca").await["certificate"], ca_pem);
    assert_eq!(kafka_secret(&t, "admin").await["password"], admin["password"]);

    // Destroy leaves the secrets recoverable; the next apply restores them with their values.
    t.expect(&["destroy", "--component", "redpanda", "--auto-approve"], 0);
    let name = indutech::model::kafka_secret_name(&t.environment, "admin");
    let described = t.aws.secrets_manager().describe_secret().secret_id(&name).send().await.unwrap();
    assert!(described.deleted_date().is_some(), "{name} is not scheduled for deletion");
    t.expect(&["apply", "--component", "redpanda", "--auto-approve"], 0);
    assert_eq!(kafka_secret(&t, "admin").await["password"], admin["password"]);
    assert_eq!(kafka_secret(&t, "worker").await["password"], worker["password"]);
    assert_eq!(kafka_secret(&t, "ca").await["certificate"], ca_pem);
    t.destroy_all().await;
}
