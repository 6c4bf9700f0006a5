//! The IAM documents and SQL the desired resources carry: bucket, key, trust and role policies, the
//! external schema's DDL.

use serde_json::{Value, json};

use crate::config::environment::{Environment, KafkaSecurity};
use crate::model::{self, lake_key_alias};

/// The TLS-only bucket policy of `bucket`, in the form S3 returns it.
pub fn tls_only_policy(bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

/// The lake key's policy: the account's IAM policies govern the key (AWS's default statement),
/// and disabling it or scheduling its deletion is denied to every principal except
/// `lake.key_administrators` (to everyone when there are none). `kms:PutKeyPolicy` is not
/// denied: AWS refuses a policy that locks its own writer out, and changing the policy is a
/// deliberate act that CloudTrail records.
pub fn lake_key_policy(environment: &Environment) -> Value {
    let mut guard = json!({
        "Sid": "GuardKeyDeletion",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion"],
        "Resource": "*",
    });
    if !environment.lake.key_administrators.is_empty() {
        guard["Condition"] = json!({"ArnNotEquals": {"aws:PrincipalArn": environment.lake.key_administrators}});
    }
    json!({
        "Version": "2012-10-17",
        "Id": "indutech-lake-key",
        "Statement": [
            {
                "Sid": "AccountIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{}:root", environment.account_id)},
                "Action": "kms:*",
                "Resource": "*",
            },
            guard,
        ]
    })
}

/// The Spectrum role's trust policy: only Redshift may assume it.
pub fn redshift_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "redshift.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The Spectrum role's inline policy, least privilege: list and read the streams' prefixes of
/// the curated bucket (and the ERP tables' prefixes of the raw bucket), read the environment's Glue database and its tables and partitions, and
/// decrypt with the lake key only through S3. ARNs name the account through the
/// `${aws:PrincipalAccount}` policy variable, so the desired state needs no account id.
pub fn spectrum_policy(environment: &Environment) -> Value {
    let curated = model::bucket_name(environment, "curated");
    let database = model::glue_database_name(environment);
    let region = &environment.region;
    let glue = |suffix: &str| format!("arn:aws:glue:{region}:${{aws:PrincipalAccount}}:{suffix}");
    let prefixes: Vec<String> = environment.streams.iter().map(|s| format!("{}/*", s.name)).collect();
    let mut objects: Vec<String> =
        environment.streams.iter().map(|s| format!("arn:aws:s3:::{curated}/{}/*", s.name)).collect();
    let mut buckets = vec![format!("arn:aws:s3:::{curated}")];
    let mut erp_prefixes = Vec::new();
    if let Some(erp) = &environment.erp {
        let raw = model::bucket_name(environment, "raw");
        buckets.push(format!("arn:aws:s3:::{raw}"));
        for table in &erp.tables {
            erp_prefixes.push(format!("{}*", table.prefix()));
            objects.push(format!("arn:aws:s3:::{raw}/{}*", table.prefix()));
        }
    }
    let mut prefixes = prefixes;
    prefixes.extend(erp_prefixes);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListStreamPrefixes",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": buckets,
                "Condition": {"StringLike": {"s3:prefix": prefixes}}
            },
            {
                "Sid": "ReadStreamObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": objects
            },
            {
                "Sid": "ReadCatalog",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition"
                ],
                "Resource": [glue("catalog"), glue(&format!("database/{database}")), glue(&format!("table/{database}/*"))]
            },
            {
                "Sid": "DecryptLakeThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": ["*"],
                "Condition": {
                    "StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": [lake_key_alias(environment)]}
                }
            }
        ]
    })
}

/// The worker role's trust policy: only EC2 may assume it (through the instance profile).
pub fn ec2_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The worker role's inline policy, least privilege: read the worker binaries of the artifacts
/// bucket; list, read, write and delete the streams' prefixes and the worker's progress
/// documents in the curated and rejected buckets (a resumed partition deletes what an
/// uncommitted attempt left); read the Glue tables and add partitions; use the lake key only
/// through S3; with `sasl_ssl`, read its Kafka credentials' secret.
pub fn worker_policy(environment: &Environment) -> Value {
    let artifacts = model::bucket_name(environment, "artifacts");
    let curated = model::bucket_name(environment, "curated");
    let rejected = model::bucket_name(environment, "rejected");
    let database = model::glue_database_name(environment);
    let region = &environment.region;
    let glue = |suffix: &str| format!("arn:aws:glue:{region}:${{aws:PrincipalAccount}}:{suffix}");
    let in_both = |prefix: &str| -> Vec<String> {
        [&curated, &rejected].iter().map(|bucket| format!("arn:aws:s3:::{bucket}/{prefix}")).collect()
    };
    // Visible objects are only ever created (published by a create-only copy), never deleted:
    // the worker may delete staged objects only.
    let visible: Vec<String> = environment.streams.iter().flat_map(|s| in_both(&format!("{}/*", s.name))).collect();
    let tables: Vec<String> =
        environment.streams.iter().map(|s| glue(&format!("table/{database}/{}", s.name))).collect();
    let mut catalog = vec![glue("catalog"), glue(&format!("database/{database}"))];
    catalog.extend(tables);
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadWorkerBinaries",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{artifacts}/worker/*")]
            },
            {
                "Sid": "ListCommitsAndStaging",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                "Resource": [format!("arn:aws:s3:::{curated}"), format!("arn:aws:s3:::{rejected}")],
                "Condition": {"StringLike": {"s3:prefix": ["_indutech/commits/*", "_indutech/staging/*"]}}
            },
            {
                "Sid": "CommitRecords",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [format!("arn:aws:s3:::{curated}/_indutech/commits/*")]
            },
            {
                "Sid": "StagedFiles",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:DeleteObjectVersion",
                    "s3:AbortMultipartUpload"
                ],
                "Resource": in_both("_indutech/staging/*")
            },
            {
                "Sid": "PublishStreamObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": visible
            },
            {
                "Sid": "RegisterPartitions",
                "Effect": "Allow",
                "Action": [
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetPartitions",
                    "glue:BatchCreatePartition"
                ],
                "Resource": catalog
            },
            lake_key_through_s3(environment)
        ]
    });
    if environment.redpanda.security == crate::config::environment::KafkaSecurity::SaslSsl
        && let Some(statements) = policy["Statement"].as_array_mut()
    {
        let secret = crate::kafka::secret_of(environment, crate::kafka::Principal::Worker);
        statements.push(json!({
            "Sid": "ReadKafkaCredentials",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [secret_arn(environment, &secret)]
        }));
    }
    policy
}

/// The statement that lets a role encrypt and decrypt with the lake key, only through S3 (for
/// writing and reading the lake's SSE-KMS objects).
fn lake_key_through_s3(environment: &Environment) -> Value {
    json!({
        "Sid": "LakeKeyThroughS3",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": ["*"],
        "Condition": {
            "StringEquals": {"kms:ViaService": format!("s3.{}.amazonaws.com", environment.region)},
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": [lake_key_alias(environment)]}
        }
    })
}

/// The ARN pattern of Secrets Manager secret `name` (AWS appends `-` and six random characters).
fn secret_arn(environment: &Environment, name: &str) -> String {
    format!("arn:aws:secretsmanager:{}:${{aws:PrincipalAccount}}:secret:{name}-??????", environment.region)
}

/// The DMS role's trust policy: DMS assumes it to write the S3 target (`dms.amazonaws.com`)
/// and to read the source endpoint's secret (the regional `dms.<region>.amazonaws.com`, as
/// AWS DMS's documentation for `SecretsManagerAccessRoleArn` requires).
pub fn dms_trust_policy(environment: &Environment) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["dms.amazonaws.com", format!("dms.{}.amazonaws.com", environment.region)]},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The DMS role's inline policy, least privilege: what DMS's S3 target needs on the raw
/// bucket's `erp/` folder only (list it, put and delete objects, tag them; AWS DMS User Guide,
/// "Prerequisites for using Amazon S3 as a target"), the lake key only through S3, and reading
/// the ERP credentials' secret (`erp.credentials_secret`) for the source endpoint.
pub fn dms_policy(environment: &Environment) -> Value {
    let raw = model::bucket_name(environment, "raw");
    let folder = crate::config::erp::ERP_FOLDER;
    let mut statements = vec![
        json!({
            "Sid": "ListErpFolder",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [format!("arn:aws:s3:::{raw}")],
            "Condition": {"StringLike": {"s3:prefix": [format!("{folder}/*")]}}
        }),
        json!({
            "Sid": "WriteErpFolder",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"],
            "Resource": [format!("arn:aws:s3:::{raw}/{folder}/*")]
        }),
        lake_key_through_s3(environment),
    ];
    if let Some(erp) = &environment.erp {
        statements.push(json!({
            "Sid": "ReadErpCredentials",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": [secret_arn(environment, &erp.credentials_secret)]
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// DMS table mappings for `erp`'s tables (the task's `TableMappings`, AWS DMS User Guide,
/// "Specifying table selection and transformations rules using JSON"): one selection rule per
/// table (`schema`, `source_table`), then transformations: the schema in lower case, the table
/// renamed to its lake name, and each column whose `source` differs renamed to its `name`.
/// Rule ids and names are positional, so the same declaration gives the same document.
pub fn dms_table_mappings(erp: &crate::config::erp::Erp) -> Value {
    let mut rules = Vec::new();
    let mut next = 0u32;
    let mut id = || {
        next += 1;
        next
    };
    for table in &erp.tables {
        let n = id();
        rules.push(json!({
            "rule-type": "selection",
            "rule-id": n.to_string(),
            "rule-name": format!("include-{}", table.name),
            "object-locator": {"schema-name": table.schema, "table-name": table.source_table},
            "rule-action": "include"
        }));
    }
    let schemas: std::collections::BTreeSet<&str> = erp.tables.iter().map(|t| t.schema.as_str()).collect();
    for schema in schemas {
        let n = id();
        rules.push(json!({
            "rule-type": "transformation",
            "rule-id": n.to_string(),
            "rule-name": format!("schema-lower-{}", schema.to_lowercase()),
            "rule-target": "schema",
            "object-locator": {"schema-name": schema},
            "rule-action": "convert-lowercase"
        }));
    }
    for table in &erp.tables {
        let locator = json!({"schema-name": table.schema, "table-name": table.source_table});
        let n = id();
        rules.push(json!({
            "rule-type": "transformation",
            "rule-id": n.to_string(),
            "rule-name": format!("table-{}", table.name),
            "rule-target": "table",
            "object-locator": locator,
            "rule-action": "rename",
            "value": table.name
        }));
        for column in table.columns.iter().filter(|c| c.source != c.name) {
            let n = id();
            rules.push(json!({
                "rule-type": "transformation",
                "rule-id": n.to_string(),
                "rule-name": format!("column-{}-{}", table.name, column.name),
                "rule-target": "column",
                "object-locator": {
                    "schema-name": table.schema,
                    "table-name": table.source_table,
                    "column-name": column.source
                },
                "rule-action": "rename",
                "value": column.name
            }));
        }
    }
    json!({"rules": rules})
}

/// The brokers' inline policy, least privilege: with `sasl_ssl`, read their TLS key and
/// certificate and the two principals' credentials (the brokers create the SCRAM users at boot),
/// never the CA's key; with Tiered Storage, the tiered bucket's objects and the lake key
/// through S3, nothing of the other lake buckets.
pub fn broker_policy(environment: &Environment) -> Value {
    let r = &environment.redpanda;
    let mut statements = Vec::new();
    if r.security == KafkaSecurity::SaslSsl {
        let secrets: Vec<String> = ["brokers-tls", "admin", "worker"]
            .iter()
            .map(|what| secret_arn(environment, &model::kafka_secret_name(environment, what)))
            .collect();
        statements.push(json!({
            "Sid": "ReadKafkaSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": secrets
        }));
    }
    // Tiered Storage: what Redpanda's documentation lists for its S3 client (list the bucket;
    // put, get and delete segments and manifests), on the tiered bucket only, and the lake key
    // through S3 (the bucket's default encryption).
    if r.tiered_storage {
        let bucket = model::bucket_name(environment, model::TIERED_ZONE);
        statements.push(json!({
            "Sid": "ListTieredBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [format!("arn:aws:s3:::{bucket}")]
        }));
        statements.push(json!({
            "Sid": "TieredSegments",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [format!("arn:aws:s3:::{bucket}/*")]
        }));
        statements.push(lake_key_through_s3(environment));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The Spectrum DDL for `external_schema` over `glue_database`, assumed through `role_arn`:
/// one statement, never batched (Redshift refuses external DDL inside a transaction).
pub fn external_schema_sql(external_schema: &str, glue_database: &str, role_arn: &str) -> String {
    format!(
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS {external_schema} FROM DATA CATALOG DATABASE '{glue_database}' IAM_ROLE \
         '{role_arn}'"
    )
}
