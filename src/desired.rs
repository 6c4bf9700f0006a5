//! Desired state: an [`Environment`] -> the [`Resource`]s indutech manages, with their
//! attributes, the attributes that force replacement, and their dependencies. Pure.
//!
//! Attribute names follow the Terraform AWS provider where one exists, so that a plan reads
//! like Terraform's and the Terraform export maps one to one. Secrets are never attributes:
//! a resource that needs one refers to the Secrets Manager secret by name.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::environment::Environment;
use crate::model::{self, BROKER_PORTS, worker_binary_key, zone_key};
use crate::plan::{Attributes, Component, Resource};

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
        });
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

/// Name of a security group: `indutech-<env>-<role>` for `brokers`, `warehouse`, `worker`.
pub fn security_group_name(environment: &Environment, role: &str) -> String {
    model::resource_name(environment, &format!("{role}-sg"))
}

fn network(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Network };
    let c = Component::Network;
    let vpc = model::resource_name(environment, "vpc");
    b.add(
        "aws_vpc.main".into(),
        vpc.clone(),
        attributes(&[
            ("cidr_block", json!(environment.network.vpc_cidr.to_string())),
            ("enable_dns_hostnames", json!(true)),
            ("enable_dns_support", json!(true)),
            ("tags", tags(environment, c, Some(&vpc))),
        ]),
        &["cidr_block"],
        vec![],
    );
    let route_table = model::resource_name(environment, "private-rt");
    b.add(
        "aws_route_table.private".into(),
        route_table.clone(),
        attributes(&[("tags", tags(environment, c, Some(&route_table)))]),
        &[],
        vec!["aws_vpc.main".into()],
    );
    for (zone, cidr) in model::private_subnets(environment) {
        let key = zone_key(&zone);
        let name = model::resource_name(environment, &format!("private-{zone}"));
        b.add(
            format!("aws_subnet.{key}"),
            name.clone(),
            attributes(&[
                ("availability_zone", json!(zone)),
                ("cidr_block", json!(cidr.to_string())),
                ("map_public_ip_on_launch", json!(false)),
                ("tags", tags(environment, c, Some(&name))),
            ]),
            &["availability_zone", "cidr_block"],
            vec!["aws_vpc.main".into()],
        );
        b.add(
            format!("aws_route_table_association.{key}"),
            format!("{name}/{route_table}"),
            attributes(&[("route_table", json!(route_table)), ("subnet", json!(name))]),
            &[],
            vec![format!("aws_subnet.{key}"), "aws_route_table.private".into()],
        );
    }

    let mut sources: Vec<String> = vec![environment.network.vpc_cidr.to_string()];
    sources.extend(environment.on_premises.cidrs.iter().map(|c| c.to_string()));
    let rules = |ports: &[u16]| -> Value {
        let mut rules: Vec<Value> = ports
            .iter()
            .flat_map(|port| {
                sources
                    .iter()
                    .map(move |cidr| json!({"protocol": "tcp", "from_port": port, "to_port": port, "cidr": cidr}))
            })
            .collect();
        rules.sort_by_key(|r| r.to_string());
        Value::Array(rules)
    };
    let groups: [(&str, &str, Value); 3] = [
        ("brokers", "Redpanda brokers: Kafka, RPC, admin, schema registry, HTTP proxy", rules(&BROKER_PORTS)),
        ("warehouse", "Redshift warehouse", rules(&[WAREHOUSE_PORT])),
        ("worker", "indutech streaming workers (metrics)", rules(&[environment.worker.metrics_port])),
    ];
    for (role, description, ingress) in groups {
        let name = security_group_name(environment, role);
        b.add(
            format!("aws_security_group.{role}"),
            name.clone(),
            attributes(&[
                ("description", json!(description)),
                ("ingress", ingress),
                ("tags", tags(environment, c, Some(&name))),
            ]),
            &["description"],
            vec!["aws_vpc.main".into()],
        );
    }

    let endpoint = model::resource_name(environment, "s3-endpoint");
    b.add(
        "aws_vpc_endpoint.s3".into(),
        endpoint.clone(),
        attributes(&[
            ("route_tables", json!([route_table])),
            ("service_name", json!(format!("com.amazonaws.{}.s3", environment.region))),
            ("tags", tags(environment, c, Some(&endpoint))),
            ("vpc_endpoint_type", json!("Gateway")),
        ]),
        &["service_name", "vpc_endpoint_type"],
        vec!["aws_vpc.main".into(), "aws_route_table.private".into()],
    );
}

/// The two tunnels' option sets, in the form the provider reports them (both explicit, or
/// AWS leaves tunnel 2 on weak defaults).
pub fn tunnel_options(environment: &Environment) -> Value {
    let t = &environment.vpn.tunnel;
    let one = json!({
        "ike_versions": t.ike_versions,
        "phase1_dh_groups": t.phase1_dh_groups,
        "phase1_encryption": t.phase1_encryption,
        "phase1_integrity": t.phase1_integrity,
        "phase2_dh_groups": t.phase2_dh_groups,
        "phase2_encryption": t.phase2_encryption,
        "phase2_integrity": t.phase2_integrity,
    });
    json!([one.clone(), one])
}

fn vpn(environment: &Environment, out: &mut Vec<Resource>) {
    use crate::config::environment::{Attachment, Routing};
    let mut b = Builder { out, component: Component::Vpn };
    let c = Component::Vpn;
    let vpn = &environment.vpn;
    let vpc = model::resource_name(environment, "vpc");
    let cgw = model::resource_name(environment, "factory-cgw");
    b.add(
        "aws_customer_gateway.factory".into(),
        cgw.clone(),
        attributes(&[
            ("bgp_asn", json!(vpn.customer_gateway_asn)),
            ("ip_address", json!(vpn.customer_gateway_ip.to_string())),
            ("tags", tags(environment, c, Some(&cgw))),
            ("type", json!("ipsec.1")),
        ]),
        &["bgp_asn", "ip_address", "type"],
        vec![],
    );
    let transit = vpn.attachment == Attachment::TransitGateway;
    // The gateway on the AWS side, its attachment to the VPC, and what the VPC's routes and the
    // connection point at: a virtual private gateway, or a transit gateway.
    let (gateway, gateway_address, gateway_attribute, attachment_address) = if transit {
        let tgw = model::resource_name(environment, "tgw");
        b.add(
            "aws_ec2_transit_gateway.main".into(),
            tgw.clone(),
            attributes(&[
                ("amazon_side_asn", json!(vpn.amazon_side_asn)),
                ("description", json!(format!("indutech {}: the VPC and the factory VPN", environment.name))),
                ("tags", tags(environment, c, Some(&tgw))),
            ]),
            &["amazon_side_asn"],
            vec![],
        );
        let subnets: Vec<String> = model::private_subnets(environment)
            .into_iter()
            .map(|(zone, _)| model::resource_name(environment, &format!("private-{zone}")))
            .collect();
        let mut needs = vec!["aws_ec2_transit_gateway.main".to_owned(), "aws_vpc.main".to_owned()];
        needs.extend(environment.network.availability_zones.iter().map(|z| format!("aws_subnet.{}", zone_key(z))));
        let attachment = model::resource_name(environment, "tgw-vpc");
        b.add(
            "aws_ec2_transit_gateway_vpc_attachment.main".into(),
            attachment.clone(),
            attributes(&[
                ("subnets", json!(subnets)),
                ("tags", tags(environment, c, Some(&attachment))),
                ("transit_gateway", json!(tgw)),
                ("vpc", json!(vpc)),
            ]),
            &["subnets", "transit_gateway", "vpc"],
            needs,
        );
        (tgw, "aws_ec2_transit_gateway.main", "transit_gateway", "aws_ec2_transit_gateway_vpc_attachment.main")
    } else {
        let vgw = model::resource_name(environment, "vgw");
        b.add(
            "aws_vpn_gateway.main".into(),
            vgw.clone(),
            attributes(&[("amazon_side_asn", json!(vpn.amazon_side_asn)), ("tags", tags(environment, c, Some(&vgw)))]),
            &["amazon_side_asn"],
            vec![],
        );
        b.add(
            "aws_vpn_gateway_attachment.main".into(),
            format!("{vgw}/{vpc}"),
            attributes(&[("vpc", json!(vpc)), ("vpn_gateway", json!(vgw))]),
            &[],
            vec!["aws_vpn_gateway.main".into(), "aws_vpc.main".into()],
        );
        (vgw, "aws_vpn_gateway.main", "vpn_gateway", "aws_vpn_gateway_attachment.main")
    };
    let connection = model::resource_name(environment, "factory-vpn");
    let static_routes = vpn.routing == Routing::Static;
    b.add(
        "aws_vpn_connection.factory".into(),
        connection.clone(),
        attributes(&[
            ("customer_gateway", json!(cgw)),
            (gateway_attribute, json!(gateway)),
            ("static_routes_only", json!(static_routes)),
            ("tags", tags(environment, c, Some(&connection))),
            ("tunnels", tunnel_options(environment)),
            ("type", json!("ipsec.1")),
        ]),
        &["customer_gateway", gateway_attribute, "static_routes_only", "type"],
        vec!["aws_customer_gateway.factory".into(), gateway_address.into()],
    );
    let route_table = model::resource_name(environment, "private-rt");
    for (i, cidr) in environment.on_premises.cidrs.iter().enumerate() {
        // The VPC's route to the factory: with a virtual private gateway, static routes are
        // written and BGP routes propagated into the route table; a transit gateway is always
        // the target of a static route (it learns the factory's routes itself).
        if static_routes || transit {
            b.add(
                format!("aws_route.onprem_{i}"),
                format!("{route_table}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    (if transit { "transit_gateway" } else { "gateway" }, json!(gateway)),
                    ("route_table", json!(route_table)),
                ]),
                &["destination_cidr_block"],
                vec!["aws_route_table.private".into(), attachment_address.into()],
            );
        }
        if !static_routes {
            continue;
        }
        // The factory's networks behind the VPN connection: on the connection itself, or in
        // the transit gateway's route table towards the connection's attachment.
        if transit {
            b.add(
                format!("aws_ec2_transit_gateway_route.onprem_{i}"),
                format!("{gateway}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    ("transit_gateway", json!(gateway)),
                    ("vpn_connection", json!(connection)),
                ]),
                &["destination_cidr_block", "transit_gateway", "vpn_connection"],
                vec!["aws_vpn_connection.factory".into()],
            );
        } else {
            b.add(
                format!("aws_vpn_connection_route.onprem_{i}"),
                format!("{connection}/{cidr}"),
                attributes(&[
                    ("destination_cidr_block", json!(cidr.to_string())),
                    ("vpn_connection", json!(connection)),
                ]),
                &["destination_cidr_block"],
                vec!["aws_vpn_connection.factory".into()],
            );
        }
    }
    if !static_routes && !transit {
        b.add(
            "aws_vpn_gateway_route_propagation.private".into(),
            format!("{gateway}/{route_table}"),
            attributes(&[("route_table", json!(route_table)), ("vpn_gateway", json!(gateway))]),
            &[],
            vec!["aws_route_table.private".into(), "aws_vpn_gateway_attachment.main".into()],
        );
    }
}

/// The alias of the lake's KMS key: `alias/indutech-<env>-lake`.
pub fn lake_key_alias(environment: &Environment) -> String {
    format!("alias/{}", model::resource_name(environment, "lake"))
}

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

/// Addresses of the lake buckets that hold data (every zone but artifacts).
fn data_buckets() -> Vec<String> {
    model::LAKE_ZONES.iter().filter(|z| **z != "artifacts").map(|z| format!("aws_s3_bucket.{z}")).collect()
}

fn lake(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Lake };
    let c = Component::Lake;
    let key_name = model::resource_name(environment, "lake");
    let alias = lake_key_alias(environment);
    b.add(
        "aws_kms_key.lake".into(),
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
    b.protects(data_buckets());
    b.add(
        "aws_kms_alias.lake".into(),
        alias.clone(),
        attributes(&[("name", json!(alias)), ("target_key", json!(key_name))]),
        &[],
        vec!["aws_kms_key.lake".into()],
    );
    b.protects(data_buckets());
    let lake = &environment.lake;
    for zone in model::LAKE_ZONES {
        let bucket = model::bucket_name(environment, zone);
        let bucket_address = format!("aws_s3_bucket.{zone}");
        let on_bucket = || vec![bucket_address.clone()];
        // Only indutech's own objects (binaries) live in the artifacts zone.
        let holds_data = *zone != "artifacts";
        let protected = if holds_data { vec![bucket_address.clone()] } else { Vec::new() };
        // The key goes only after every bucket it encrypts (it is never scheduled for deletion
        // while one exists).
        b.add(
            bucket_address.clone(),
            bucket.clone(),
            attributes(&[("bucket", json!(bucket)), ("tags", tags(environment, c, None))]),
            &[],
            vec!["aws_kms_key.lake".into()],
        );
        if holds_data {
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
        b.add(
            format!("aws_s3_bucket_server_side_encryption_configuration.{zone}"),
            bucket.clone(),
            attributes(&[
                ("bucket_key_enabled", json!(true)),
                ("kms_master_key_id", json!(alias)),
                ("sse_algorithm", json!("aws:kms")),
            ]),
            &[],
            vec![bucket_address.clone(), "aws_kms_alias.lake".into()],
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
            attributes(&[("policy", tls_only_policy(&bucket))]),
            &[],
            vec![bucket_address.clone(), format!("aws_s3_bucket_public_access_block.{zone}")],
        );
        b.protects(protected.clone());
        let mut rule = BTreeMap::from([
            ("id", json!("indutech-lifecycle")),
            ("status", json!("Enabled")),
            ("abort_incomplete_multipart_upload_days", json!(lake.abort_incomplete_multipart_upload_days)),
        ]);
        // The artifacts zone holds binaries that are read at every deploy: no cold tiers.
        if *zone != "artifacts" {
            rule.insert(
                "transitions",
                json!([
                    {"days": lake.standard_ia_after_days, "storage_class": "STANDARD_IA"},
                    {"days": lake.glacier_after_days, "storage_class": "GLACIER"},
                ]),
            );
        } else {
            rule.insert("transitions", json!([]));
        }
        b.add(
            format!("aws_s3_bucket_lifecycle_configuration.{zone}"),
            bucket.clone(),
            attributes(&[("rules", json!([rule]))]),
            &[],
            on_bucket(),
        );
        b.protects(protected.clone());
    }
}

/// Glue's Parquet input format, output format and SerDe.
pub const PARQUET_INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
/// See [`PARQUET_INPUT_FORMAT`].
pub const PARQUET_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
/// See [`PARQUET_INPUT_FORMAT`].
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

fn catalog(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Catalog };
    let database = model::glue_database_name(environment);
    b.add(
        "aws_glue_catalog_database.main".into(),
        database.clone(),
        attributes(&[
            ("description", json!(format!("indutech {}: the lake's curated zone", environment.name))),
            ("name", json!(database)),
        ]),
        &[],
        vec![],
    );
    // The catalog serves the curated zone (Spectrum reads it through the tables; the worker's
    // registered partitions exist only in Glue).
    b.protects(vec!["aws_s3_bucket.curated".into()]);
    let curated = model::bucket_name(environment, "curated");
    for stream in &environment.streams {
        let columns: Vec<Value> =
            stream.columns().into_iter().map(|(name, ty)| json!({"name": name, "type": ty.as_str()})).collect();
        b.add(
            format!("aws_glue_catalog_table.{}", stream.name),
            stream.name.clone(),
            attributes(&[
                ("columns", Value::Array(columns)),
                ("input_format", json!(PARQUET_INPUT_FORMAT)),
                ("location", json!(format!("s3://{curated}/{}/", stream.name))),
                ("output_format", json!(PARQUET_OUTPUT_FORMAT)),
                ("parameters", json!({"classification": "parquet", "parquet.compression": "ZSTD"})),
                ("partition_keys", json!([{"name": stream.partition_key, "type": "string"}])),
                ("serialization_library", json!(PARQUET_SERDE)),
                ("table_type", json!("EXTERNAL_TABLE")),
            ]),
            &[],
            vec!["aws_glue_catalog_database.main".into()],
        );
        b.protects(vec!["aws_s3_bucket.curated".into()]);
    }
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
/// the curated bucket, read the environment's Glue database and its tables and partitions, and
/// decrypt with the lake key only through S3. ARNs name the account through the
/// `${aws:PrincipalAccount}` policy variable, so the desired state needs no account id.
pub fn spectrum_policy(environment: &Environment) -> Value {
    let curated = model::bucket_name(environment, "curated");
    let database = model::glue_database_name(environment);
    let region = &environment.region;
    let glue = |suffix: &str| format!("arn:aws:glue:{region}:${{aws:PrincipalAccount}}:{suffix}");
    let prefixes: Vec<String> = environment.streams.iter().map(|s| format!("{}/*", s.name)).collect();
    let objects: Vec<String> =
        environment.streams.iter().map(|s| format!("arn:aws:s3:::{curated}/{}/*", s.name)).collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListStreamPrefixes",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [format!("arn:aws:s3:::{curated}")],
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

/// The warehouse's cluster identifier (also its subnet group's name): `indutech-<env>-warehouse`.
pub fn cluster_identifier(environment: &Environment) -> String {
    model::resource_name(environment, "warehouse")
}

fn warehouse(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Warehouse };
    let c = Component::Warehouse;
    let w = &environment.warehouse;
    let role = model::resource_name(environment, "spectrum");
    b.add(
        "aws_iam_role.spectrum".into(),
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
        vec!["aws_iam_role.spectrum".into()],
    );
    let cluster = cluster_identifier(environment);
    let subnets: Vec<String> = model::private_subnets(environment)
        .into_iter()
        .map(|(zone, _)| model::resource_name(environment, &format!("private-{zone}")))
        .collect();
    let subnet_addresses: Vec<String> =
        environment.network.availability_zones.iter().map(|z| format!("aws_subnet.{}", zone_key(z))).collect();
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
    b.add(
        "aws_redshift_cluster.main".into(),
        cluster.clone(),
        attributes(&[
            ("cluster_subnet_group_name", json!(cluster)),
            ("database_name", json!(w.database)),
            ("encrypted", json!(true)),
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
            "aws_security_group.warehouse".into(),
            "aws_iam_role.spectrum".into(),
            "aws_iam_role_policy.spectrum_lake_read".into(),
        ],
    );
    b.holds_data();
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
        vec!["aws_redshift_cluster.main".into(), "aws_glue_catalog_database.main".into()],
    );
    b.idempotent(); // CREATE EXTERNAL SCHEMA IF NOT EXISTS
    b.protects(vec!["aws_redshift_cluster.main".into()]);
}

/// The name of broker `index`: `indutech-<env>-broker-<index>`.
pub fn broker_name(environment: &Environment, index: u32) -> String {
    model::resource_name(environment, &format!("broker-{index}"))
}

fn redpanda(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Redpanda };
    let c = Component::Redpanda;
    let r = &environment.redpanda;
    let mut brokers = Vec::new();
    for placement in model::broker_placements(environment) {
        let name = broker_name(environment, placement.index);
        let user_data = crate::render::broker_cloud_init(environment, &placement)
            .expect("the compiled-in broker template renders (unit-tested)");
        let mut tags = model::tags(environment, c.as_str());
        tags.insert("Name".into(), name.clone());
        tags.insert("indutech:rack".into(), placement.availability_zone.clone());
        let address = format!("aws_instance.broker_{}", placement.index);
        b.add(
            address.clone(),
            name,
            attributes(&[
                ("ami", json!(r.ami)),
                ("availability_zone", json!(placement.availability_zone)),
                ("instance_type", json!(r.instance_type)),
                ("metadata_http_tokens", json!("required")),
                ("private_ip", json!(placement.private_ip.to_string())),
                (
                    "subnet",
                    json!(model::resource_name(environment, &format!("private-{}", placement.availability_zone))),
                ),
                ("tags", json!(tags)),
                ("user_data_sha256", json!(crate::digest::sha256_hex(&user_data))),
                ("vpc_security_groups", json!([security_group_name(environment, "brokers")])),
            ]),
            &["ami", "availability_zone", "instance_type", "private_ip", "subnet", "user_data_sha256"],
            vec![format!("aws_subnet.{}", zone_key(&placement.availability_zone)), "aws_security_group.brokers".into()],
        );
        brokers.push(address);
    }
    // Topics are created through the bootstrap servers: the brokers themselves unless the
    // environment names others (the local broker in `dev`).
    let topic_needs = if r.bootstrap_servers.is_empty() { brokers } else { Vec::new() };
    for stream in &environment.streams {
        b.add(
            format!("kafka_topic.{}", stream.name),
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

/// The Secrets Manager secret holding `what` (`directory-admin`, `ad-trust`):
/// `indutech/<env>/<what>`. Its value is generated by Secrets Manager and never printed.
pub fn secret_name(environment: &Environment, what: &str) -> String {
    format!("indutech/{}/{what}", environment.name)
}

fn directory(environment: &Environment, out: &mut Vec<Resource>) {
    use crate::config::environment::TrustDirection;
    let mut b = Builder { out, component: Component::Directory };
    let c = Component::Directory;
    let d = &environment.directory;
    for (key, what, description) in [
        ("directory_admin", "directory-admin", "password of the Managed AD `Admin` user"),
        ("ad_trust", "ad-trust", "password of the trust with the factory forest (give it to the factory's AD admins)"),
    ] {
        let name = secret_name(environment, what);
        b.add(
            format!("aws_secretsmanager_secret.{key}"),
            name.clone(),
            attributes(&[
                ("description", json!(format!("indutech {}: {description}", environment.name))),
                ("name", json!(name)),
                ("tags", tags(environment, c, None)),
            ]),
            &["name"],
            vec![],
        );
    }
    let zones = &environment.network.availability_zones;
    let subnets: Vec<String> =
        zones.iter().take(2).map(|z| model::resource_name(environment, &format!("private-{z}"))).collect();
    let mut needs: Vec<String> = zones.iter().take(2).map(|z| format!("aws_subnet.{}", zone_key(z))).collect();
    needs.extend(["aws_vpc.main".to_owned(), "aws_secretsmanager_secret.directory_admin".to_owned()]);
    b.add(
        "aws_directory_service_directory.main".into(),
        d.domain.clone(),
        attributes(&[
            ("edition", json!(format!("{:?}", d.edition))),
            ("name", json!(d.domain)),
            ("password_secret", json!(secret_name(environment, "directory-admin"))),
            ("subnets", json!(subnets)),
            ("tags", tags(environment, c, None)),
            ("type", json!("MicrosoftAD")),
            ("vpc", json!(model::resource_name(environment, "vpc"))),
        ]),
        &["edition", "name", "password_secret", "subnets", "type", "vpc"],
        needs,
    );
    let direction = match d.trust_direction {
        TrustDirection::OneWayOutgoing => "One-Way: Outgoing",
        TrustDirection::OneWayIncoming => "One-Way: Incoming",
        TrustDirection::TwoWay => "Two-Way",
    };
    let forwarders: Vec<String> = environment.on_premises.ad_dns_ips.iter().map(|ip| ip.to_string()).collect();
    b.add(
        "aws_directory_service_trust.factory".into(),
        environment.on_premises.ad_domain.clone(),
        attributes(&[
            ("conditional_forwarder_ip_addrs", json!(forwarders)),
            ("directory", json!(d.domain)),
            ("password_secret", json!(secret_name(environment, "ad-trust"))),
            ("remote_domain_name", json!(environment.on_premises.ad_domain)),
            ("trust_direction", json!(direction)),
            ("trust_type", json!("Forest")),
        ]),
        &["directory", "password_secret", "remote_domain_name", "trust_direction", "trust_type"],
        vec!["aws_directory_service_directory.main".into(), "aws_secretsmanager_secret.ad_trust".into()],
    );
}

/// Digest of what the worker reads from the environment at start (name, region, endpoints,
/// lake, bootstrap servers, worker settings, streams): a change restarts (replaces) it.
pub fn worker_config_sha256(environment: &Environment) -> String {
    let relevant = json!({
        "name": environment.name,
        "region": environment.region,
        "endpoints": environment.endpoints,
        "lake": environment.lake,
        "bootstrap_servers": crate::model::bootstrap_servers(environment),
        "worker": environment.worker,
        "streams": environment.streams,
    });
    crate::digest::sha256_hex(relevant.to_string())
}

fn worker(environment: &Environment, binary_sha256: &str, out: &mut Vec<Resource>) {
    use crate::config::environment::WorkerRuntime;
    let mut b = Builder { out, component: Component::Worker };
    // It reads the topics and writes the curated and rejected buckets and the Glue tables.
    let mut needs: Vec<String> = vec!["aws_s3_bucket.curated".into(), "aws_s3_bucket.rejected".into()];
    for stream in &environment.streams {
        needs.push(format!("kafka_topic.{}", stream.name));
        needs.push(format!("aws_glue_catalog_table.{}", stream.name));
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
/// through S3.
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
    json!({
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
            {
                "Sid": "LakeKeyThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": ["*"],
                "Condition": {
                    "StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": [lake_key_alias(environment)]}
                }
            }
        ]
    })
}

/// The name of worker instance `index`: `indutech-<env>-worker-<index>`.
pub fn worker_instance_name(environment: &Environment, index: u32) -> String {
    model::resource_name(environment, &format!("worker-{index}"))
}

/// The `ec2` runtime: the running binary as a content-addressed object in the artifacts bucket,
/// an IAM role (with its inline policy) in an instance profile, and `instance_count` instances
/// spread over the zones, each booting cloud-init rendered from `templates/worker/` (systemd unit,
/// environment and stream files, the binary's key and digest). A new binary or configuration
/// changes the user data digest, which replaces the instances.
fn ec2_worker(environment: &Environment, binary_sha256: &str, needs: Vec<String>, b: &mut Builder<'_>) {
    let c = Component::Worker;
    let w = &environment.worker;
    let artifacts = model::bucket_name(environment, "artifacts");
    let key = worker_binary_key(binary_sha256);
    b.add(
        "aws_s3_object.worker_binary".into(),
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
    let role = model::resource_name(environment, "worker");
    b.add(
        "aws_iam_role.worker".into(),
        role.clone(),
        attributes(&[
            ("assume_role_policy", ec2_trust_policy()),
            ("description", json!(format!("indutech {}: the streaming worker's instances", environment.name))),
            ("tags", tags(environment, c, None)),
        ]),
        &[],
        vec![],
    );
    b.add(
        "aws_iam_role_policy.worker".into(),
        format!("{role}/worker"),
        attributes(&[("name", json!("worker")), ("policy", worker_policy(environment)), ("role", json!(role))]),
        &[],
        vec!["aws_iam_role.worker".into()],
    );
    b.add(
        "aws_iam_instance_profile.worker".into(),
        role.clone(),
        attributes(&[("role", json!(role)), ("tags", tags(environment, c, None))]),
        &[],
        vec!["aws_iam_role.worker".into()],
    );
    // Every instance boots the same cloud-init.
    let user_data = crate::render::worker_cloud_init(environment, binary_sha256)
        .expect("the compiled-in worker template renders (unit-tested)");
    let user_data_sha256 = crate::digest::sha256_hex(&user_data);
    for placement in model::worker_placements(environment) {
        let name = worker_instance_name(environment, placement.index);
        let mut instance_needs = needs.clone();
        instance_needs.extend([
            format!("aws_subnet.{}", zone_key(&placement.availability_zone)),
            "aws_security_group.worker".into(),
            "aws_s3_object.worker_binary".into(),
            "aws_iam_role_policy.worker".into(),
            "aws_iam_instance_profile.worker".into(),
        ]);
        b.add(
            format!("aws_instance.worker_{}", placement.index),
            name.clone(),
            attributes(&[
                ("ami", json!(w.ami)),
                ("availability_zone", json!(placement.availability_zone)),
                ("iam_instance_profile", json!(role)),
                ("instance_type", json!(w.instance_type)),
                ("metadata_http_tokens", json!("required")),
                ("private_ip", json!(placement.private_ip.to_string())),
                (
                    "subnet",
                    json!(model::resource_name(environment, &format!("private-{}", placement.availability_zone))),
                ),
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
                "subnet",
                "user_data_sha256",
            ],
            instance_needs,
        );
    }
}

/// The Spectrum DDL for `external_schema` over `glue_database`, assumed through `role_arn`:
/// one statement, never batched (Redshift refuses external DDL inside a transaction).
pub fn external_schema_sql(external_schema: &str, glue_database: &str, role_arn: &str) -> String {
    format!(
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS {external_schema} FROM DATA CATALOG DATABASE '{glue_database}' IAM_ROLE \
         '{role_arn}'"
    )
}

#[cfg(test)]
mod tests {
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
    fn no_ingress_from_anywhere_and_brokers_open_their_five_ports() {
        let dev = environment("dev");
        let resources = resources(&dev, BINARY, &[Component::Network]);
        let brokers = resources.iter().find(|r| r.address == "aws_security_group.brokers").unwrap();
        let ingress = brokers.attributes["ingress"].as_array().unwrap();
        // 5 ports x (VPC + one on-prem CIDR).
        assert_eq!(ingress.len(), 10);
        for r in resources.iter().filter(|r| r.kind() == "aws_security_group") {
            for rule in r.attributes["ingress"].as_array().unwrap() {
                assert_ne!(rule["cidr"], "0.0.0.0/0", "{}", r.address);
            }
        }
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
