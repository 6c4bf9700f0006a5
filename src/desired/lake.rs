//! The lake component: the KMS key and alias, one bucket per zone with versioning, encryption,
//! public access block, TLS-only policy and lifecycle.

use serde_json::{Value, json};

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self, lake_key_alias};
use crate::plan::{Attributes, Component, Resource};

/// Days after which a replaced version of the worker's protocol objects (commit records,
/// under [`model::PROTOCOL_PREFIX`]) expires.
const PROTOCOL_NONCURRENT_DAYS: u32 = 1;

/// Days after which a log segment Redpanda deleted from the tiered bucket (past the topics'
/// retention) is gone for good: the versioned bucket keeps it that long.
const TIERED_NONCURRENT_DAYS: u32 = 7;

/// Addresses of the lake buckets that hold data (every zone but artifacts).
pub(super) fn data_buckets(environment: &Environment) -> Vec<String> {
    model::lake_zones(environment)
        .into_iter()
        .filter(|z| *z != "artifacts")
        .map(|z| format!("aws_s3_bucket.{z}"))
        .collect()
}

pub(super) fn lake(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Lake };
    let c = Component::Lake;
    let key_name = model::resource_name(environment, "lake");
    let alias = lake_key_alias(environment);
    b.add(
        address::LAKE_KEY.into(),
        key_name.clone(),
        attributes(&[
            ("description", json!(format!("indutech {}: lake buckets' default encryption", environment.name))),
            ("enable_key_rotation", json!(true)),
            ("policy", lake_key_policy(environment)),
            ("tags", tags(environment, c, Some(&key_name))),
        ]),
        &[],
        vec![],
    );
    b.protects(data_buckets(environment));
    b.add(
        "aws_kms_alias.lake".into(),
        alias.clone(),
        attributes(&[("name", json!(alias)), ("target_key", json!(key_name))]),
        &[],
        vec![address::LAKE_KEY.into()],
    );
    b.protects(data_buckets(environment));
    let lake = &environment.lake;
    for zone in &model::lake_zones(environment) {
        let bucket = model::bucket_name(environment, zone);
        // The artifacts zone holds binaries that are read at every deploy, the tiered zone
        // segments Redpanda reads back at any time: no cold tiers (GLACIER is not readable).
        let mut rules = vec![lifecycle_rule(environment, !matches!(*zone, "artifacts" | model::TIERED_ZONE))];
        // Redpanda deletes segments past the topics' retention: in a versioned bucket they
        // become noncurrent versions, kept a week for recovery, then expired.
        if *zone == model::TIERED_ZONE {
            rules[0]["noncurrent_version_expiration_days"] = json!(TIERED_NONCURRENT_DAYS);
        }
        // The worker's commit protocol rewrites its commit record at every flush in a
        // versioned bucket: the replaced versions are expired after a day, or they would
        // pile up (one per flush and partition). Staged objects are deleted by version id.
        if matches!(*zone, "curated" | "rejected") {
            rules.push(json!({
                "id": "indutech-protocol-versions",
                "status": "Enabled",
                "prefix": model::PROTOCOL_PREFIX,
                "abort_incomplete_multipart_upload_days": lake.abort_incomplete_multipart_upload_days,
                "noncurrent_version_expiration_days": PROTOCOL_NONCURRENT_DAYS,
                "transitions": [],
            }));
        }
        bucket_with_settings(
            &mut b,
            environment,
            BucketSpec {
                zone,
                // Only indutech's own objects (binaries) live in the artifacts zone.
                holds_data: *zone != "artifacts",
                encryption: attributes(&[
                    ("bucket_key_enabled", json!(true)),
                    ("kms_master_key_id", json!(alias)),
                    ("sse_algorithm", json!("aws:kms")),
                ]),
                needs: vec![address::LAKE_KEY.into()],
                encryption_needs: vec!["aws_kms_alias.lake".into()],
                policy: tls_only_policy(&bucket),
                rules,
            },
        );
    }
}

/// The whole-bucket lifecycle rule: multipart uploads aborted, and with `cold_tiers` objects
/// moved to STANDARD_IA then GLACIER after `lake.standard_ia_after_days` and
/// `lake.glacier_after_days`.
pub(super) fn lifecycle_rule(environment: &Environment, cold_tiers: bool) -> Value {
    let lake = &environment.lake;
    let transitions = if cold_tiers {
        json!([
            {"days": lake.standard_ia_after_days, "storage_class": "STANDARD_IA"},
            {"days": lake.glacier_after_days, "storage_class": "GLACIER"},
        ])
    } else {
        json!([])
    };
    json!({
        "id": "indutech-lifecycle",
        "status": "Enabled",
        "prefix": "",
        "abort_incomplete_multipart_upload_days": lake.abort_incomplete_multipart_upload_days,
        "noncurrent_version_expiration_days": null,
        "transitions": transitions,
    })
}

/// A bucket and its settings, as [`bucket_with_settings`] adds them.
pub(super) struct BucketSpec<'a> {
    /// `raw`, `curated`...: the addresses' key and the name's zone.
    pub zone: &'a str,
    /// Whether it holds data (destroy keeps it, and what protects it, unless forced).
    pub holds_data: bool,
    /// What the bucket goes after (the key that encrypts it: the key is deleted only after
    /// every bucket it encrypts).
    pub needs: Vec<String>,
    /// The default encryption's attributes, and the resources it needs (the key's alias).
    pub encryption: Attributes,
    pub encryption_needs: Vec<String>,
    /// The bucket policy.
    pub policy: Value,
    /// The lifecycle rules.
    pub rules: Vec<Value>,
}

/// Adds `aws_s3_bucket.<zone>` (named [`model::bucket_name`]) with its versioning, default
/// encryption, public access block, policy and lifecycle, each protecting the bucket when it
/// holds data.
pub(super) fn bucket_with_settings(b: &mut Builder<'_>, environment: &Environment, spec: BucketSpec<'_>) {
    let zone = spec.zone;
    let bucket = model::bucket_name(environment, zone);
    let bucket_address = format!("aws_s3_bucket.{zone}");
    let on_bucket = || vec![bucket_address.clone()];
    let protected = if spec.holds_data { vec![bucket_address.clone()] } else { Vec::new() };
    b.add(
        bucket_address.clone(),
        bucket.clone(),
        attributes(&[("bucket", json!(bucket)), ("tags", tags(environment, b.component, None))]),
        &[],
        spec.needs,
    );
    if spec.holds_data {
        b.holds_data();
    }
    b.add(
        format!("aws_s3_bucket_versioning.{zone}"),
        bucket.clone(),
        attributes(&[("status", json!("Enabled"))]),
        &[],
        on_bucket(),
    );
    b.protects(protected.clone());
    let mut needs = on_bucket();
    needs.extend(spec.encryption_needs);
    b.add(
        format!("aws_s3_bucket_server_side_encryption_configuration.{zone}"),
        bucket.clone(),
        spec.encryption,
        &[],
        needs,
    );
    b.protects(protected.clone());
    b.add(
        format!("aws_s3_bucket_public_access_block.{zone}"),
        bucket.clone(),
        attributes(&[
            ("block_public_acls", json!(true)),
            ("block_public_policy", json!(true)),
            ("ignore_public_acls", json!(true)),
            ("restrict_public_buckets", json!(true)),
        ]),
        &[],
        on_bucket(),
    );
    b.protects(protected.clone());
    b.add(
        format!("aws_s3_bucket_policy.{zone}"),
        bucket.clone(),
        attributes(&[("policy", spec.policy)]),
        &[],
        vec![bucket_address.clone(), format!("aws_s3_bucket_public_access_block.{zone}")],
    );
    b.protects(protected.clone());
    b.add(
        format!("aws_s3_bucket_lifecycle_configuration.{zone}"),
        bucket.clone(),
        attributes(&[("rules", Value::Array(spec.rules))]),
        &[],
        on_bucket(),
    );
    b.protects(protected);
}
