//! The migration component (with `[erp]`): AWS DMS replicating the factory's ERP tables over
//! the VPN into the raw zone, full load then ongoing changes (CDC).
//!
//! A replication subnet group in the private subnets, a replication instance there (not
//! public, its storage encrypted with the lake key, the `erp` security group: out to the SQL
//! Server and HTTPS only), a SQL Server source endpoint whose login DMS reads itself from the
//! ERP's secret through the DMS role (the password never passes through indutech), an S3
//! target endpoint writing Parquet under `erp/` in the raw bucket (SSE-KMS with the lake key,
//! the operation column in every file), and the task with its table mappings generated from
//! the declared tables. The Glue tables over `erp/<schema>/<table>/` belong to the catalog.
//!
//! On AWS, DMS needs the account-wide role `dms-vpc-role` (AWS managed policy
//! `AmazonDMSVPCManagementRole`) before any subnet group can be created; it is shared by every
//! DMS user of the account, so indutech does not own it: its absence is a create error that
//! says how to make it.

use serde_json::json;

use super::*;
use crate::config::environment::Environment;
use crate::model::{self, address, security_group_name};
use crate::plan::{Component, Resource};

/// DMS's S3 target: Parquet 2.0, the lake key, the operation column in full-load files too.
const PARQUET_VERSION: &str = "parquet-2-0";

pub(super) fn migration(environment: &Environment, out: &mut Vec<Resource>) {
    let Some(erp) = &environment.erp else { return };
    let mut b = Builder { out, component: Component::Migration };
    let c = Component::Migration;
    let role = model::resource_name(environment, "dms");
    b.add(
        address::DMS_ROLE.into(),
        role.clone(),
        attributes(&[
            ("assume_role_policy", dms_trust_policy(environment)),
            (
                "description",
                json!(format!("indutech {}: DMS writes the ERP tables into the raw zone", environment.name)),
            ),
            ("tags", tags(environment, c, None)),
        ]),
        &[],
        vec![],
    );
    b.add(
        address::DMS_ROLE_POLICY.into(),
        format!("{role}/erp-to-lake"),
        attributes(&[("name", json!("erp-to-lake")), ("policy", dms_policy(environment)), ("role", json!(role))]),
        &[],
        vec![address::DMS_ROLE.into()],
    );

    let name = model::resource_name(environment, "erp");
    let subnets: Vec<String> = model::private_subnets(environment)
        .into_iter()
        .map(|(zone, _)| model::private_subnet_name(environment, &zone))
        .collect();
    let subnet_addresses: Vec<String> =
        environment.network.availability_zones.iter().map(|z| address::subnet(z)).collect();
    // Untagged: DMS reports a subnet group without its ARN, so its tags cannot be read back
    // (and moto drops them); it is found by its identifier, unique in the account and region.
    b.add(
        address::DMS_SUBNET_GROUP.into(),
        name.clone(),
        attributes(&[
            (
                "replication_subnet_group_description",
                json!(format!("indutech {}: the replication instance's private subnets", environment.name)),
            ),
            ("subnets", json!(subnets)),
        ]),
        &[],
        subnet_addresses,
    );
    b.add(
        address::DMS_INSTANCE.into(),
        name.clone(),
        attributes(&[
            ("allocated_storage", json!(erp.allocated_storage_gb)),
            // DMS's engine gets its minor (security) releases in the maintenance window.
            ("auto_minor_version_upgrade", json!(true)),
            ("kms_key", json!(model::lake_key_alias(environment))),
            ("multi_az", json!(erp.multi_az)),
            ("publicly_accessible", json!(false)),
            ("replication_instance_class", json!(erp.instance_class)),
            ("replication_subnet_group_id", json!(name)),
            ("tags", tags(environment, c, None)),
            ("vpc_security_groups", json!([security_group_name(environment, "erp")])),
        ]),
        &["kms_key", "publicly_accessible", "replication_subnet_group_id"],
        vec![
            address::DMS_SUBNET_GROUP.into(),
            address::security_group("erp"),
            address::LAKE_KEY.into(),
            address::S3_ENDPOINT.into(),
            address::SECRETS_ENDPOINT.into(),
        ],
    );
    // The source: SQL Server through the VPN. With a secret, DMS takes the server, port, user
    // and password from it (and refuses them as parameters); the database and TLS are ours.
    let source = model::resource_name(environment, "erp-source");
    b.add(
        address::DMS_SOURCE_ENDPOINT.into(),
        source.clone(),
        attributes(&[
            ("database_name", json!(erp.database)),
            ("endpoint_type", json!("source")),
            ("engine_name", json!("sqlserver")),
            // What DMS keeps of the endpoint's connection settings, encrypted with the lake key.
            ("kms_key", json!(model::lake_key_alias(environment))),
            ("secrets_manager_access_role", json!(role)),
            ("secrets_manager_secret", json!(erp.credentials_secret)),
            ("ssl_mode", json!(erp.ssl_mode.as_str())),
            ("tags", tags(environment, c, None)),
        ]),
        &["endpoint_type", "engine_name", "kms_key"],
        vec![address::DMS_ROLE.into(), address::DMS_ROLE_POLICY.into(), address::LAKE_KEY.into()],
    );
    let target = model::resource_name(environment, "erp-target");
    b.add(
        address::DMS_TARGET_ENDPOINT.into(),
        target.clone(),
        attributes(&[
            ("bucket_folder", json!(crate::config::erp::ERP_FOLDER)),
            ("bucket_name", json!(model::bucket_name(environment, "raw"))),
            ("data_format", json!("parquet")),
            ("encryption_mode", json!("SSE_KMS")),
            ("endpoint_type", json!("target")),
            ("include_op_for_full_load", json!(true)),
            ("kms_key", json!(model::lake_key_alias(environment))),
            ("parquet_version", json!(PARQUET_VERSION)),
            ("server_side_encryption_kms_key", json!(model::lake_key_alias(environment))),
            ("service_access_role", json!(role)),
            ("tags", tags(environment, c, None)),
        ]),
        &["endpoint_type", "kms_key"],
        vec![
            address::DMS_ROLE.into(),
            address::DMS_ROLE_POLICY.into(),
            "aws_s3_bucket.raw".into(),
            address::LAKE_KEY.into(),
        ],
    );
    b.add(
        address::DMS_TASK.into(),
        name.clone(),
        attributes(&[
            ("migration_type", json!("full-load-and-cdc")),
            ("replication_instance", json!(name)),
            ("source_endpoint", json!(source)),
            ("start_replication_task", json!(erp.start_replication)),
            ("table_mappings", dms_table_mappings(erp)),
            ("tags", tags(environment, c, None)),
            ("target_endpoint", json!(target)),
        ]),
        &["migration_type", "replication_instance", "source_endpoint", "target_endpoint"],
        vec![address::DMS_INSTANCE.into(), address::DMS_SOURCE_ENDPOINT.into(), address::DMS_TARGET_ENDPOINT.into()],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_replicates_its_declared_tables_privately_into_the_raw_zone_only() {
        let environment = crate::config::shipped("dev");
        let resources = crate::desired::resources(&environment, &"0".repeat(64), &[Component::Migration]);
        let get = |address: &str| resources.iter().find(|r| r.address == address).unwrap();
        let instance = get(address::DMS_INSTANCE);
        assert_eq!(instance.attributes["publicly_accessible"], json!(false));
        assert_eq!(instance.attributes["kms_key"], json!("alias/indutech-dev-lake"));
        assert_eq!(instance.attributes["vpc_security_groups"], json!(["indutech-dev-erp-sg"]));
        // The role writes only under erp/ of the raw bucket and reads only the ERP's secret.
        let policy = get(address::DMS_ROLE_POLICY).attributes["policy"].to_string();
        assert!(policy.contains("arn:aws:s3:::indutech-dev-raw/erp/*"), "{policy}");
        assert!(!policy.contains("curated") && !policy.contains("\"s3:*\""), "{policy}");
        assert!(policy.contains("secret:indutech/dev/erp-sqlserver-??????"), "{policy}");
        // The source endpoint names the secret; no password, user or server anywhere.
        let source = get(address::DMS_SOURCE_ENDPOINT);
        assert_eq!(source.attributes["secrets_manager_secret"], json!("indutech/dev/erp-sqlserver"));
        assert!(["password", "username", "server_name", "port"].iter().all(|k| !source.attributes.contains_key(*k)));
        // Table mappings: the declared table selected, renamed to its lake name, columns renamed.
        let rules = get(address::DMS_TASK).attributes["table_mappings"]["rules"].as_array().unwrap().clone();
        let actions: Vec<(&str, &str)> = rules
            .iter()
            .map(|r| (r["rule-target"].as_str().unwrap_or("-"), r["rule-action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [
                ("-", "include"),
                ("schema", "convert-lowercase"),
                ("table", "rename"),
                ("column", "rename"),
                ("column", "rename"),
                ("column", "rename"),
                ("column", "rename"),
                ("column", "rename"),
            ]
        );
        assert_eq!(rules[2]["value"], json!("stations"));
        assert_eq!(rules[3]["object-locator"]["column-name"], json!("StationName"));
        let ids: Vec<&str> = rules.iter().map(|r| r["rule-id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    }
}
