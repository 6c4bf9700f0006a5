//! The audit component: the logs bucket (SSE-S3, versioned, closed to the public, TLS-only,
//! written only by S3's log delivery and VPC Flow Logs), S3 server access logging of every lake
//! bucket into it (`s3/<zone>/`), and the VPC's flow logs (`vpc-flow-logs/`, every accepted and
//! rejected flow). It needs the network and lake components.

use serde_json::{Value, json};

use super::lake::{BucketSpec, bucket_with_settings, lifecycle_rule};
use super::*;
use crate::config::environment::Environment;
use crate::model::{self, address};
use crate::plan::{Component, Resource};

/// Key prefix of the VPC's flow logs in the logs bucket (AWS appends `AWSLogs/<account>/...`).
pub const FLOW_LOGS_PREFIX: &str = "vpc-flow-logs/";

/// Key prefix of zone `zone`'s S3 server access logs in the logs bucket.
pub fn access_logs_prefix(zone: &str) -> String {
    format!("s3/{zone}/")
}

pub(super) fn audit(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Audit };
    let logs = model::bucket_name(environment, "logs");
    bucket_with_settings(
        &mut b,
        environment,
        BucketSpec {
            zone: "logs",
            holds_data: true,
            // S3 server access logging cannot deliver into a bucket encrypted with a KMS key.
            encryption: attributes(&[
                ("bucket_key_enabled", json!(false)),
                ("kms_master_key_id", Value::Null),
                ("sse_algorithm", json!("AES256")),
            ]),
            needs: Vec::new(),
            encryption_needs: Vec::new(),
            policy: logs_bucket_policy(environment, &logs),
            rules: vec![lifecycle_rule(environment, true)],
        },
    );
    let policy = "aws_s3_bucket_policy.logs".to_owned();
    for zone in &model::lake_zones(environment) {
        let bucket = format!("aws_s3_bucket.{zone}");
        b.add(
            format!("aws_s3_bucket_logging.{zone}"),
            model::bucket_name(environment, zone),
            attributes(&[("target_bucket", json!(logs)), ("target_prefix", json!(access_logs_prefix(zone)))]),
            &[],
            vec![bucket.clone(), policy.clone()],
        );
        // A lake bucket that destroy keeps keeps its access logging.
        if *zone != "artifacts" {
            b.protects(vec![bucket]);
        }
    }
    let name = model::resource_name(environment, "vpc-flow-logs");
    b.add(
        address::FLOW_LOG.into(),
        name.clone(),
        attributes(&[
            ("log_destination", json!(format!("arn:aws:s3:::{logs}/{FLOW_LOGS_PREFIX}"))),
            ("log_destination_type", json!("s3")),
            ("max_aggregation_interval", json!(600)),
            ("tags", tags(environment, Component::Audit, Some(&name))),
            ("traffic_type", json!("ALL")),
            ("vpc", json!(model::vpc_name(environment))),
        ]),
        &["log_destination", "log_destination_type", "max_aggregation_interval", "traffic_type", "vpc"],
        vec![address::VPC.into(), policy],
    );
}

/// The logs bucket's policy: TLS only; S3's log delivery may write under `s3/`, VPC Flow Logs'
/// delivery under `vpc-flow-logs/AWSLogs/<account>/` (with the bucket-owner-full-control ACL
/// they send) and check the bucket's ACL, both only for this account's sources (AWS's
/// documented statements: "Permissions for S3 server access logging", "Flow logs to S3").
pub fn logs_bucket_policy(environment: &Environment, bucket: &str) -> Value {
    let account = &environment.account_id;
    let mut policy = tls_only_policy(bucket);
    let statements = policy["Statement"].as_array_mut().expect("tls_only_policy has statements");
    statements.push(json!({
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{bucket}/s3/*"),
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }));
    statements.push(json!({
        "Sid": "FlowLogsWrite",
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{bucket}/{FLOW_LOGS_PREFIX}AWSLogs/{account}/*"),
        "Condition": {"StringEquals": {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"}},
    }));
    statements.push(json!({
        "Sid": "FlowLogsAclCheck",
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
        "Resource": format!("arn:aws:s3:::{bucket}"),
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }));
    policy
}
