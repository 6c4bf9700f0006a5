//! The warehouse component: the Redshift cluster, its subnet group, the Spectrum role and the
//! external schema.

use serde_json::json;

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, cluster_identifier, security_group_name};
use crate::plan::{Component, Resource};

/// The parameter group family of Redshift's current engine.
const REDSHIFT_PARAMETER_FAMILY: &str = "redshift-2.0";

pub(super) fn warehouse(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Warehouse };
    let c = Component::Warehouse;
    let w = &environment.warehouse;
    let role = model::resource_name(environment, "spectrum");
    b.add(
        address::SPECTRUM_ROLE.into(),
        role.clone(),
        attributes(&[
            ("assume_role_policy", redshift_trust_policy()),
            ("description", json!(format!("indutech {}: Redshift Spectrum reads the lake", environment.name))),
            ("tags", tags(environment, c, None)),
        ]),
        &[],
        vec![],
    );
    b.add(
        "aws_iam_role_policy.spectrum_lake_read".into(),
        format!("{role}/lake-read"),
        attributes(&[("name", json!("lake-read")), ("policy", spectrum_policy(environment)), ("role", json!(role))]),
        &[],
        vec![address::SPECTRUM_ROLE.into()],
    );
    let cluster = cluster_identifier(environment);
    let subnets: Vec<String> = model::private_subnets(environment)
        .into_iter()
        .map(|(zone, _)| model::private_subnet_name(environment, &zone))
        .collect();
    let subnet_addresses: Vec<String> =
        environment.network.availability_zones.iter().map(|z| address::subnet(z)).collect();
    b.add(
        "aws_redshift_subnet_group.main".into(),
        cluster.clone(),
        attributes(&[
            ("description", json!(format!("indutech {}: the warehouse's private subnets", environment.name))),
            ("subnets", json!(subnets)),
            ("tags", tags(environment, c, None)),
        ]),
        &[],
        subnet_addresses,
    );
    // Connections must use TLS, and every query is logged (the user activity log of
    // `aws_redshift_logging.main`). Both are static parameters: a cluster created with the
    // group has them at once, an existing one at its next reboot.
    b.add(
        address::REDSHIFT_PARAMETER_GROUP.into(),
        cluster.clone(),
        attributes(&[
            ("description", json!(format!("indutech {}: TLS required, user activity logged", environment.name))),
            ("family", json!(REDSHIFT_PARAMETER_FAMILY)),
            ("parameters", json!({"enable_user_activity_logging": "true", "require_ssl": "true"})),
            ("tags", tags(environment, c, None)),
        ]),
        &["description", "family"],
        vec![],
    );
    b.protects(vec![address::REDSHIFT_CLUSTER.into()]);
    b.add(
        address::REDSHIFT_CLUSTER.into(),
        cluster.clone(),
        attributes(&[
            ("cluster_parameter_group_name", json!(cluster)),
            ("cluster_subnet_group_name", json!(cluster)),
            ("database_name", json!(w.database)),
            ("encrypted", json!(true)),
            // Spectrum's reads of S3 and Glue stay in the VPC (the S3 gateway and Glue
            // interface endpoints), as every other AWS call of the platform.
            ("enhanced_vpc_routing", json!(true)),
            ("iam_roles", json!([role])),
            ("manage_master_password", json!(true)),
            ("master_username", json!(w.master_username)),
            ("node_type", json!(w.node_type)),
            ("number_of_nodes", json!(w.number_of_nodes)),
            ("publicly_accessible", json!(false)),
            ("tags", tags(environment, c, None)),
            ("vpc_security_groups", json!([security_group_name(environment, "warehouse")])),
        ]),
        &["cluster_subnet_group_name", "database_name", "master_username"],
        vec![
            "aws_redshift_subnet_group.main".into(),
            address::REDSHIFT_PARAMETER_GROUP.into(),
            address::security_group("warehouse"),
            address::SPECTRUM_ROLE.into(),
            "aws_iam_role_policy.spectrum_lake_read".into(),
            address::GLUE_ENDPOINT.into(),
        ],
    );
    b.holds_data();
    // Audit logging (connections, users, and the queries once `enable_user_activity_logging`
    // is on in a parameter group) into CloudWatch Logs, where Redshift creates the groups
    // `/aws/redshift/cluster/<cluster>/<log>`: no bucket and bucket policy to keep. Kept as long
    // as the cluster is.
    b.add(
        "aws_redshift_logging.main".into(),
        cluster.clone(),
        attributes(&[
            ("log_destination_type", json!("cloudwatch")),
            ("log_exports", json!(["connectionlog", "useractivitylog", "userlog"])),
        ]),
        &[],
        vec![address::REDSHIFT_CLUSTER.into()],
    );
    b.protects(vec![address::REDSHIFT_CLUSTER.into()]);
    b.add(
        "aws_redshiftdata_statement.external_schema".into(),
        w.external_schema.clone(),
        attributes(&[
            ("cluster_identifier", json!(cluster)),
            ("database", json!(w.database)),
            ("db_user", json!(w.master_username)),
            ("external_schema", json!(w.external_schema)),
            ("glue_database", json!(model::glue_database_name(environment))),
            ("iam_role", json!(role)),
        ]),
        &["cluster_identifier", "database", "db_user", "external_schema", "glue_database", "iam_role"],
        vec![address::REDSHIFT_CLUSTER.into(), address::GLUE_DATABASE.into()],
    );
    b.content(external_schema_sql(
        &w.external_schema,
        &model::glue_database_name(environment),
        crate::plan::ROLE_ARN_PLACEHOLDER,
    ));
    b.idempotent(); // CREATE EXTERNAL SCHEMA IF NOT EXISTS
    b.protects(vec![address::REDSHIFT_CLUSTER.into()]);
}
