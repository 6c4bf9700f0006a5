//! The validated environment: what to build in one AWS account and region.
//!
//! `decode_environment` reads an environment file's root table, checks every value and every
//! cross-field rule (CIDR overlap, ASNs, lifecycle days, AZs), and builds an [`Environment`]
//! only when nothing is wrong. Types here carry no spans and no AWS SDK types.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use toml_span::{Span, Spanned};

use crate::config::decode::{Reader, Table, decode_enum};
use crate::config::stream::Stream;

/// One environment (`dev`, `staging`, `prod`): the desired platform.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Environment {
    /// Environment name, used in every resource name (`indutech-<name>-...`).
    pub name: String,
    /// AWS region, such as `eu-west-3`.
    pub region: String,
    /// The 12-digit AWS account the environment lives in (required). Plan, apply and destroy
    /// refuse credentials of another account before any other call (Terraform's
    /// `allowed_account_ids`), and the lake key's policy names this account's root.
    pub account_id: String,
    /// Endpoint overrides per service; empty for real AWS.
    pub endpoints: Endpoints,
    /// VPC and subnets.
    pub network: Network,
    /// The factory network on the other side of the VPN.
    pub on_premises: OnPremises,
    /// Site-to-site VPN.
    pub vpn: Vpn,
    /// S3 data lake.
    pub lake: Lake,
    /// Redshift warehouse and Spectrum.
    pub warehouse: Warehouse,
    /// Redpanda broker nodes.
    pub redpanda: Redpanda,
    /// AWS Managed Microsoft AD.
    pub directory: Directory,
    /// The streaming worker's deployment and tuning.
    pub worker: Worker,
    /// The cold path: the factory's ERP database and the tables DMS replicates into the raw
    /// zone (`[erp]`, optional: without it the platform has no migration component).
    pub erp: Option<crate::config::erp::Erp>,
    /// Streams deployed in this environment, sorted by name.
    pub streams: Vec<Stream>,
    /// The environment file it was loaded from, absolute (empty until [`crate::config::load`]
    /// sets it). Not part of the desired state: moving the file changes nothing in AWS.
    #[serde(skip)]
    pub file: std::path::PathBuf,
    /// The texts it was loaded from, as the worker instances get them (empty until
    /// [`crate::config::load`] fills it).
    #[serde(skip)]
    pub sources: Sources,
}

/// The files an environment was loaded from: what a worker instance needs to load it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// The environment file's text.
    pub environment: String,
    /// `streams_dir` as written in it (relative to the environment file, or absolute).
    pub streams_dir: String,
    /// Each stream file's name (`client_tickets.toml`) and text, sorted by name.
    pub streams: Vec<(String, String)>,
}

/// Endpoint URLs: `default` applies to every service without its own entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Endpoints {
    /// Used for every service without its own entry (LocalStack, say).
    pub default: Option<String>,
    /// Per-service URLs, keyed by [`SERVICES`] names.
    pub services: BTreeMap<String, String>,
    /// Sign requests with fixed dummy credentials (`test`/`test`) instead of the standard
    /// credential chain: emulators accept any (default false).
    pub test_credentials: bool,
}

/// Service names accepted in `[endpoints]`.
pub const SERVICES: &[&str] = &[
    "directory_service",
    "dms",
    "ec2",
    "glue",
    "iam",
    "kms",
    "logs",
    "redshift",
    "redshift_data",
    "s3",
    "secrets_manager",
    "ssm",
    "sts",
];

impl Endpoints {
    /// The endpoint URL for `service` (one of [`SERVICES`]), if overridden.
    pub fn for_service(&self, service: &str) -> Option<&str> {
        self.services.get(service).or(self.default.as_ref()).map(String::as_str)
    }
}

/// VPC layout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Network {
    /// VPC CIDR block, /16 to /24.
    pub vpc_cidr: Ipv4Net,
    /// Availability zones for private subnets, 2 or 3, all in the region.
    pub availability_zones: Vec<String>,
    /// Where operators reach the brokers' admin API and the metrics endpoints from (a
    /// monitoring host, a bastion), private ranges in the VPC or the factory networks; empty
    /// (the default): no one outside the brokers themselves.
    pub operations_cidrs: Vec<Ipv4Net>,
}

/// The factory side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OnPremises {
    /// Factory networks routed through the VPN; none overlaps the VPC.
    pub cidrs: Vec<Ipv4Net>,
    /// DNS name of the factory's Active Directory forest.
    pub ad_domain: String,
    /// The factory's AD DNS servers, inside `cidrs`.
    pub ad_dns_ips: Vec<Ipv4Addr>,
}

/// Site-to-site VPN.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vpn {
    /// Public IP of the factory's VPN device.
    pub customer_gateway_ip: Ipv4Addr,
    /// BGP ASN of the factory's device; differs from `amazon_side_asn`.
    pub customer_gateway_asn: u32,
    /// ASN of the virtual private gateway or transit gateway (default 64512).
    pub amazon_side_asn: u32,
    /// Static routes or BGP.
    pub routing: Routing,
    /// Virtual private gateway or transit gateway.
    pub attachment: Attachment,
    /// Options applied to both tunnels.
    pub tunnel: TunnelOptions,
}

/// How routes to the factory are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Static routes to `on_premises.cidrs`.
    Static,
    /// Dynamic routing with BGP.
    Bgp,
}
decode_enum!(Routing { Static => "static", Bgp => "bgp" });

/// What the VPN attaches to on the AWS side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attachment {
    /// A virtual private gateway attached to the VPC.
    VirtualPrivateGateway,
    /// A transit gateway with a VPC attachment.
    TransitGateway,
}
decode_enum!(Attachment { VirtualPrivateGateway => "virtual_private_gateway", TransitGateway => "transit_gateway" });

/// IKE options for each tunnel (AWS names: `AES256`, `SHA2-256`, `ikev2`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TunnelOptions {
    /// IKE versions; only `ikev2` is accepted.
    pub ike_versions: Vec<String>,
    /// Phase 1 encryption algorithms (AES-256 family only).
    pub phase1_encryption: Vec<String>,
    /// Phase 1 integrity algorithms (SHA-2 family only).
    pub phase1_integrity: Vec<String>,
    /// Phase 1 Diffie-Hellman group numbers (14 to 21).
    pub phase1_dh_groups: Vec<u32>,
    /// Phase 2 encryption algorithms.
    pub phase2_encryption: Vec<String>,
    /// Phase 2 integrity algorithms.
    pub phase2_integrity: Vec<String>,
    /// Phase 2 Diffie-Hellman group numbers (14 to 21).
    pub phase2_dh_groups: Vec<u32>,
}

impl Default for TunnelOptions {
    fn default() -> Self {
        let s = |v: &str| vec![v.to_owned()];
        Self {
            ike_versions: s("ikev2"),
            phase1_encryption: s("AES256"),
            phase1_integrity: s("SHA2-256"),
            phase1_dh_groups: vec![14],
            phase2_encryption: s("AES256"),
            phase2_integrity: s("SHA2-256"),
            phase2_dh_groups: vec![14],
        }
    }
}

/// S3 data lake settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lake {
    /// Appended to bucket names to make them globally unique (`indutech-prod-raw-<suffix>`).
    pub bucket_suffix: Option<String>,
    /// Days before objects move to STANDARD_IA (> 30).
    pub standard_ia_after_days: u32,
    /// Days before objects move to GLACIER (> `standard_ia_after_days`).
    pub glacier_after_days: u32,
    /// Days after which incomplete multipart uploads are aborted (>= 1).
    pub abort_incomplete_multipart_upload_days: u32,
    /// IAM principal ARNs (`arn:aws:iam::<account>:role/NAME`, `:user/NAME` or `:root`) that
    /// may disable the lake key or schedule its deletion; the key policy denies both to everyone
    /// else. Default: none (changing the key policy first is then the only way).
    pub key_administrators: Vec<String>,
}

/// Redshift warehouse.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warehouse {
    /// Node type, such as `ra3.xlplus`.
    pub node_type: String,
    /// Number of nodes (1 = single-node).
    pub number_of_nodes: u32,
    /// Database name.
    pub database: String,
    /// Master user name; its password lives in Secrets Manager, managed by Redshift.
    pub master_username: String,
    /// Name of the Spectrum external schema over the Glue database.
    pub external_schema: String,
    /// Whether `destroy` skips the final snapshot (default false).
    pub skip_final_snapshot: bool,
    /// How long apply and plan wait for a Redshift Data API statement to reach a terminal
    /// state, seconds (default 120, 1 to 3600).
    pub statement_timeout_secs: u64,
}

/// Redpanda brokers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Redpanda {
    /// Number of brokers (>= 3), spread over the AZs.
    pub broker_count: u32,
    /// EC2 instance type with local NVMe storage (i4i, i3en, im4gn...).
    pub instance_type: String,
    /// AMI the brokers boot from: it must contain Redpanda `version` (the brokers have no
    /// internet access to install it; their cloud-init checks the version and stops otherwise).
    pub ami: String,
    /// The Redpanda version the AMI holds (`24.2.7`); default [`REDPANDA_VERSION`].
    pub version: String,
    /// Kafka bootstrap servers (`host:port`) used by indutech itself to create topics and by the
    /// worker; default: the brokers' private IPs on port 9092.
    pub bootstrap_servers: Vec<String>,
    /// How clients authenticate and encrypt on the Kafka listener (default
    /// [`KafkaSecurity::SaslSsl`]).
    pub security: KafkaSecurity,
    /// Secrets Manager secrets holding the SCRAM credentials of brokers indutech does not run
    /// (`bootstrap_servers` set, `security = "sasl_ssl"`): `[redpanda.credentials]`. None for
    /// indutech's own brokers, whose credentials it generates ([`crate::model::kafka_secret_name`]).
    pub credentials: Option<KafkaCredentials>,
    /// Redpanda Tiered Storage (`redpanda.tiered_storage`, default false): closed log segments
    /// go to the lake's `tiered` bucket ([`crate::model::TIERED_ZONE`]) and stay readable from
    /// there after the local retention; the brokers get an instance role with exactly that
    /// access. A Redpanda Enterprise feature: the cluster needs a license (`rpk cluster
    /// license set`), which indutech does not hold.
    pub tiered_storage: bool,
    /// The ingestion target the brokers are sized for (`[redpanda.throughput]`); None: no sizing.
    pub throughput: Option<Throughput>,
}

/// The ingestion target of `[redpanda.throughput]`: what `plan` and `validate` size the brokers
/// for ([`crate::model::sizing`]), and the brokers' retention. Each stream's replication is its
/// topic's (`[streams.NAME] replication`), its part of the target `[streams.NAME]
/// ingress_mb_per_sec` or an equal part of the rest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Throughput {
    /// MB/s produced into all the streams together, after compression (10^6 bytes a second).
    pub ingress_mb_per_sec: u32,
    /// How many consumer groups read every byte (default 1: the worker).
    pub consumer_fan_out: u32,
    /// Hours of records kept on the brokers' NVMe (the topics' local retention).
    pub local_retention_hours: u32,
    /// Hours records are kept in all (default: the local retention); beyond the local retention
    /// only with `redpanda.tiered_storage`.
    pub retention_hours: u32,
    /// MB/s one partition carries end to end (default 20: below the worker's slowest
    /// one-thread rate, 23.8 MB/s on the sensor replay by day: README, `bench worker` table).
    pub partition_mb_per_sec: u32,
}

impl Redpanda {
    /// Whether the brokers call AWS, so have an instance role and HTTPS out: for their secrets
    /// (`sasl_ssl`) or the tiered bucket (Tiered Storage).
    pub fn brokers_have_role(&self) -> bool {
        self.security == KafkaSecurity::SaslSsl || self.tiered_storage
    }
}

impl Environment {
    /// What [`crate::model::sizing::size`] takes from this environment; None without
    /// `[redpanda.throughput]` or with brokers indutech does not run.
    pub fn sizing_inputs(&self) -> Option<crate::model::sizing::Inputs> {
        let r = &self.redpanda;
        let t = r.throughput.as_ref().filter(|_| r.bootstrap_servers.is_empty())?;
        Some(crate::model::sizing::Inputs {
            instance_type: r.instance_type.clone(),
            brokers: r.broker_count,
            ingress_mb_per_sec: f64::from(t.ingress_mb_per_sec),
            consumer_fan_out: t.consumer_fan_out,
            local_retention_hours: f64::from(t.local_retention_hours),
            retention_hours: f64::from(t.retention_hours),
            partition_mb_per_sec: f64::from(t.partition_mb_per_sec),
            streams: self
                .streams
                .iter()
                .map(|s| crate::model::sizing::StreamInput {
                    name: s.name.clone(),
                    partitions: s.partitions,
                    replication: u32::from(s.replication),
                    ingress_mb_per_sec: s.ingress_mb_per_sec.map(f64::from),
                })
                .collect(),
        })
    }
}

/// Security of the Kafka listener (`redpanda.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurity {
    /// SASL/SCRAM-SHA-512 over TLS: every client authenticates, every byte is encrypted.
    SaslSsl,
    /// Neither authentication nor encryption: only for a local broker (the test bed's), declared
    /// explicitly.
    Plaintext,
}
decode_enum!(KafkaSecurity { SaslSsl => "sasl_ssl", Plaintext => "plaintext" });

/// The secrets of brokers indutech does not run, by the principal that uses them. Each holds
/// JSON `{"username": ..., "password": ..., "ca_certificate": PEM (optional: without it, the
/// system's trust store verifies the brokers)}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KafkaCredentials {
    /// Secret of the principal that creates topics and reads offsets (apply, `status`,
    /// `produce`, smoke-test).
    pub admin: String,
    /// Secret of the principal the worker consumes with.
    pub worker: String,
}

/// Managed Microsoft AD and its trust.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directory {
    /// DNS name of the AWS-side directory, such as `aws.indutech.example`.
    pub domain: String,
    /// `Standard` or `Enterprise`.
    pub edition: DirectoryEdition,
    /// Direction of the trust with the factory forest.
    pub trust_direction: TrustDirection,
}

/// Managed AD edition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DirectoryEdition {
    /// Up to about 30,000 objects.
    Standard,
    /// Up to about 500,000 objects.
    Enterprise,
}
decode_enum!(DirectoryEdition { Standard => "Standard", Enterprise => "Enterprise" });

/// Trust direction, as AWS Directory Service names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustDirection {
    /// The factory trusts AWS.
    OneWayOutgoing,
    /// AWS trusts the factory.
    OneWayIncoming,
    /// Both.
    TwoWay,
}
decode_enum!(TrustDirection { OneWayOutgoing => "one_way_outgoing", OneWayIncoming => "one_way_incoming", TwoWay => "two_way" });

/// Worker deployment and tuning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Worker {
    /// Where the worker runs.
    pub runtime: WorkerRuntime,
    /// EC2 instance type (ec2 runtime); its architecture must be this binary's (apply deploys
    /// the running binary).
    pub instance_type: String,
    /// AMI the worker instances boot (ec2 runtime; required there): a systemd distribution
    /// with the AWS CLI, such as Amazon Linux 2023.
    pub ami: Option<String>,
    /// Number of instances (ec2 runtime), >= 1.
    pub instance_count: u32,
    /// Flush a partition's open file at least this often, seconds (>= 1).
    pub flush_interval_secs: u64,
    /// Rotate a Parquet file at this size, bytes, uncompressed (>= 1 MiB).
    pub target_file_size_bytes: u64,
    /// Deadline for flush + upload + commit after SIGTERM, milliseconds.
    pub drain_timeout_ms: u64,
    /// Prometheus metrics port on 127.0.0.1 (local) or the instance (ec2).
    pub metrics_port: u16,
}

/// Where the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRuntime {
    /// A supervised background process on this machine (the test bed).
    Local,
    /// EC2 instances with a systemd unit.
    Ec2,
}
decode_enum!(WorkerRuntime { Local => "local", Ec2 => "ec2" });

/// Instance families with local NVMe storage, as Redpanda wants.
pub const NVME_FAMILIES: &[&str] = &[
    "c5ad", "c5d", "c6gd", "c6id", "c7gd", "i3", "i3en", "i4g", "i4i", "i7i", "i7ie", "i8g", "im4gn", "is4gen", "m5ad",
    "m5d", "m6gd", "m6id", "m7gd", "r5ad", "r5d", "r6gd", "r6id", "r7gd",
];

const STRONG_ENCRYPTION: &[&str] = &["AES256", "AES256-GCM-16"];
const STRONG_INTEGRITY: &[&str] = &["SHA2-256", "SHA2-384", "SHA2-512"];

/// Reads `[section]` as a required table, decodes it with `f`, then reports unknown keys.
fn section<T>(
    reader: &mut Reader<'_>,
    root: &mut Table<'_>,
    key: &'static str,
    f: impl FnOnce(&mut Reader<'_>, &mut Table<'_>) -> Option<T>,
) -> Option<T> {
    let mut table = reader.required_table(root, key)?;
    let value = f(reader, &mut table);
    reader.finish(table);
    value
}

/// The parts of an environment file's root table, before the streams are merged in.
pub(crate) struct EnvironmentFile {
    /// None when a required value is missing or unusable (the problems are in the reader).
    pub(crate) environment: Option<Environment>,
    /// Stream directory, relative to the environment file.
    pub(crate) streams_dir: String,
    /// `[streams.NAME]` overrides: partitions, replication, topic, partition granularity.
    pub(crate) stream_overrides: Vec<StreamOverride>,
    /// `[erp.tables.NAME]`: each ERP table's name where it is declared.
    pub(crate) erp_tables: Vec<Spanned<String>>,
    /// Where `[redpanda.throughput]` is, when declared: sizing's problems point there.
    pub(crate) throughput_span: Option<Span>,
}

/// Per-environment deployment knobs of a shared stream.
pub(crate) struct StreamOverride {
    pub(crate) name: Spanned<String>,
    pub(crate) partitions: Option<u32>,
    pub(crate) replication: Option<u16>,
    pub(crate) topic: Option<String>,
    pub(crate) granularity: Option<super::stream::Granularity>,
    pub(crate) ingress_mb_per_sec: Option<u32>,
}

/// Decodes and checks an environment file's root table; problems go to `reader`.
pub(crate) fn decode_environment(reader: &mut Reader<'_>, mut root: Table<'_>) -> EnvironmentFile {
    let name = reader.required::<String>(&mut root, "name");
    let region = reader.required::<String>(&mut root, "region");
    let account_id = reader.required::<String>(&mut root, "account_id");
    let streams_dir = reader.or_default(&mut root, "streams_dir", "streams".to_owned());
    let endpoints = match reader.optional_table(&mut root, "endpoints") {
        Some(table) => decode_endpoints(reader, table),
        None => Endpoints::default(),
    };
    let network = section(reader, &mut root, "network", decode_network);
    let on_premises = section(reader, &mut root, "on_premises", decode_on_premises);
    let vpn = section(reader, &mut root, "vpn", decode_vpn);
    let lake = section(reader, &mut root, "lake", decode_lake);
    let warehouse = section(reader, &mut root, "warehouse", decode_warehouse);
    let redpanda = section(reader, &mut root, "redpanda", decode_redpanda);
    let directory = section(reader, &mut root, "directory", decode_directory);
    let worker = section(reader, &mut root, "worker", decode_worker);
    let erp = reader.optional_table(&mut root, "erp").map(|mut table| {
        let erp = crate::config::erp::decode_erp(reader, &mut table);
        reader.finish(table);
        erp
    });
    let stream_overrides = match reader.optional_table(&mut root, "streams") {
        Some(table) => decode_stream_overrides(reader, table),
        None => Vec::new(),
    };
    reader.finish(root);

    if let Some(name) = &name {
        let ok = !name.value.is_empty()
            && name.value.len() <= 16
            && name.value.starts_with(|c: char| c.is_ascii_lowercase())
            && name.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            reader.error(name.span, "name", format!("`{}` is not a valid environment name (1-16 lower-case letters, digits and -, starting with a letter)", name.value));
        }
    }
    if let Some(region) = &region {
        let parts: Vec<&str> = region.value.split('-').collect();
        let ok = parts.len() >= 3
            && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        if !ok {
            reader.error(
                region.span,
                "region",
                format!("`{}` is not an AWS region name such as eu-west-3", region.value),
            );
        }
    }
    if let Some(account) = &account_id
        && !is_account_id(&account.value)
    {
        reader.error(account.span, "account_id", format!("`{}` is not an AWS account id (12 digits)", account.value));
    }
    // Cross-section rules.
    if let (Some(region), Some((network, az_spans))) = (&region, &network) {
        for (az, span) in network.availability_zones.iter().zip(az_spans) {
            let suffix = az.strip_prefix(region.value.as_str());
            if !suffix.is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase())) {
                reader.error(
                    *span,
                    "network.availability_zones",
                    format!("`{az}` is not an availability zone of region `{}`", region.value),
                );
            }
        }
    }
    if let (Some((network, _)), Some((on_premises, cidr_spans))) = (&network, &on_premises) {
        for (cidr, span) in on_premises.cidrs.iter().zip(cidr_spans) {
            if overlaps(cidr, &network.vpc_cidr) {
                reader.error(
                    *span,
                    "on_premises.cidrs",
                    format!(
                        "`{cidr}` overlaps the VPC CIDR `{}` (network.vpc_cidr); the VPN could not route it",
                        network.vpc_cidr
                    ),
                );
            }
        }
    }

    // Fixed addresses: the brokers from the subnet's address +10 in each zone, then the ec2
    // workers'; AWS keeps the subnet's first four addresses and its last one.
    if let (Some((network, _)), Some((redpanda, broker_span, _))) = (&network, &redpanda) {
        use crate::model::addressing::{FIRST_FIXED_HOST as first, FixedSlots, last_usable_offset, subnet_prefix};
        let worker = worker.as_ref().filter(|(w, _)| w.runtime == WorkerRuntime::Ec2);
        let workers = worker.map_or(0, |(w, _)| w.instance_count);
        let slots = FixedSlots::new(network.availability_zones.len(), redpanda.broker_count, workers);
        let zones = slots.zones;
        let prefix = subnet_prefix(network.vpc_cidr.prefix_len());
        let last = last_usable_offset(prefix);
        let brokers_top = slots.brokers_top();
        let capacity = |what: &str, top: u32| {
            format!(
                "{what} over {zones} zones need the subnet addresses +{first} to +{top} in a zone, but the zones' \
                 /{prefix} subnets (network.vpc_cidr `{}` split into 16) end at +{last}; give the VPC a shorter \
                 prefix or use fewer instances",
                network.vpc_cidr
            )
        };
        if brokers_top > last {
            let message = capacity(&format!("{} brokers", redpanda.broker_count), brokers_top);
            reader.error(*broker_span, "redpanda.broker_count", message);
        } else if let Some((w, span)) = worker {
            let top = slots.top();
            if top > last {
                let message = capacity(
                    &format!("{} brokers and {} worker instances", redpanda.broker_count, w.instance_count),
                    top,
                );
                reader.error(*span, "worker.instance_count", message);
            }
        }
    }

    if let (Some(Some(decoded)), Some((on_premises, _))) = (&erp, &on_premises)
        && !on_premises.cidrs.iter().any(|c| c.contains(&decoded.erp.host))
    {
        reader.error(
            decoded.host,
            "erp.host",
            format!(
                "`{}` is not inside any of on_premises.cidrs: the replication instance reaches the ERP through the VPN",
                decoded.erp.host
            ),
        );
    }
    let erp_tables = match &erp {
        Some(Some(decoded)) => decoded.tables.clone(),
        _ => Vec::new(),
    };
    // An `[erp]` section that failed to decode makes the environment invalid, not ERP-less.
    let erp_failed = matches!(erp, Some(None));
    let throughput_span = redpanda.as_ref().and_then(|(_, _, span)| *span);
    let environment = (|| {
        if erp_failed {
            return None;
        }
        Some(Environment {
            name: name?.value,
            region: region?.value,
            account_id: account_id?.value,
            endpoints,
            network: network?.0,
            on_premises: on_premises?.0,
            vpn: vpn?,
            lake: lake?,
            warehouse: warehouse?,
            redpanda: redpanda?.0,
            directory: directory?,
            worker: worker?.0,
            erp: erp.flatten().map(|decoded| decoded.erp),
            streams: Vec::new(),
            file: std::path::PathBuf::new(),
            sources: Sources::default(),
        })
    })();
    EnvironmentFile { environment, streams_dir: streams_dir.value, stream_overrides, erp_tables, throughput_span }
}

/// Whether `value` is an AWS account id: 12 decimal digits.
fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.chars().all(|c| c.is_ascii_digit())
}

/// Whether `value` is the ARN of an IAM principal: `arn:<partition>:iam::<account>:root`,
/// `...:role/PATH/NAME` or `...:user/PATH/NAME`.
fn is_principal_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else { return false };
    arn == "arn"
        && partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && (resource == "root"
            || resource.strip_prefix("role/").or_else(|| resource.strip_prefix("user/")).is_some_and(|n| !n.is_empty()))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether `net` lies within one of [`PRIVATE_RANGES`].
pub fn is_private(net: &Ipv4Net) -> bool {
    PRIVATE_RANGES.iter().any(|range| range.parse::<Ipv4Net>().is_ok_and(|r| r.contains(net)))
}

/// The address ranges on-premises and operations CIDRs must lie in: RFC 1918 and RFC 6598
/// (shared address space, used by carrier-grade NAT and some plant networks).
pub const PRIVATE_RANGES: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];

/// Whether `host` (as in a URL: a name, an IPv4 address or a bracketed IPv6 one, without the
/// port) is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| h == "::1")
}

fn decode_endpoints(reader: &mut Reader<'_>, mut table: Table<'_>) -> Endpoints {
    let mut endpoints = Endpoints::default();
    let check = |reader: &mut Reader<'_>, key: &str, url: Spanned<String>| {
        let (plain, rest) = match url.value.strip_prefix("http://") {
            Some(rest) => (true, Some(rest)),
            None => (false, url.value.strip_prefix("https://")),
        };
        let Some(rest) = rest.filter(|r| !r.is_empty() && !r.starts_with('/')) else {
            reader.error(
                url.span,
                &format!("endpoints.{key}"),
                format!("`{}` is not an http:// or https:// URL", url.value),
            );
            return None;
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
            _ => authority,
        };
        if plain && !is_loopback_host(host) {
            reader.error(
                url.span,
                &format!("endpoints.{key}"),
                format!(
                    "`{}` is plain HTTP to another machine: requests (signed with credentials) and data would cross \
                     the network unencrypted; use https:// (http:// is accepted for emulators on localhost or \
                     127.0.0.0/8 only)",
                    url.value
                ),
            );
            return None;
        }
        Some(url.value)
    };
    endpoints.test_credentials = reader.or_default(&mut table, "test_credentials", false).value;
    if let Some(url) = reader.optional::<String>(&mut table, "default") {
        endpoints.default = check(reader, "default", url);
    }
    for service in SERVICES {
        if let Some(url) = reader.optional::<String>(&mut table, service)
            && let Some(url) = check(reader, service, url)
        {
            endpoints.services.insert((*service).to_owned(), url);
        }
    }
    reader.finish(table);
    endpoints
}

fn decode_network(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<(Network, Vec<Span>)> {
    let vpc_cidr = reader.required::<Ipv4Net>(table, "vpc_cidr");
    let azs = reader.required::<Vec<Spanned<String>>>(table, "availability_zones");
    let operations = reader.or_default::<Vec<Spanned<Ipv4Net>>>(table, "operations_cidrs", Vec::new());
    for (i, cidr) in operations.value.iter().enumerate() {
        if !is_private(&cidr.value) {
            reader.error(
                cidr.span,
                "network.operations_cidrs",
                format!(
                    "`{}` is not a private range (RFC 1918 or RFC 6598): admin and metrics ports stay private",
                    cidr.value
                ),
            );
        }
        if operations.value[..i].iter().any(|earlier| earlier.value == cidr.value) {
            reader.error(cidr.span, "network.operations_cidrs", format!("`{}` is listed twice", cidr.value));
        }
    }
    if let Some(cidr) = &vpc_cidr
        && !(16..=24).contains(&cidr.value.prefix_len())
    {
        reader.error(
            cidr.span,
            "network.vpc_cidr",
            format!("`{}`: the VPC prefix length must be between /16 and /24", cidr.value),
        );
    }
    if let Some(azs) = &azs {
        if !(2..=3).contains(&azs.value.len()) {
            reader.error(
                azs.span,
                "network.availability_zones",
                format!("give 2 or 3 availability zones, found {}", azs.value.len()),
            );
        }
        for (i, az) in azs.value.iter().enumerate() {
            if azs.value[..i].iter().any(|earlier| earlier.value == az.value) {
                reader.error(az.span, "network.availability_zones", format!("`{}` is listed twice", az.value));
            }
        }
    }
    let azs = azs?.value;
    Some((
        Network {
            vpc_cidr: vpc_cidr?.value,
            availability_zones: azs.iter().map(|a| a.value.clone()).collect(),
            operations_cidrs: operations.value.iter().map(|c| c.value).collect(),
        },
        azs.iter().map(|a| a.span).collect(),
    ))
}

fn decode_on_premises(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<(OnPremises, Vec<Span>)> {
    let cidrs = reader.required::<Vec<Spanned<Ipv4Net>>>(table, "cidrs");
    let ad_domain = reader.required::<String>(table, "ad_domain");
    let ad_dns_ips = reader.required::<Vec<Spanned<Ipv4Addr>>>(table, "ad_dns_ips");
    if let Some(cidrs) = &cidrs {
        if cidrs.value.is_empty() {
            reader.error(cidrs.span, "on_premises.cidrs", "give at least one factory CIDR");
        }
        for (i, a) in cidrs.value.iter().enumerate() {
            if !is_private(&a.value) {
                reader.error(
                    a.span,
                    "on_premises.cidrs",
                    format!(
                        "`{}` is not a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16; or RFC \
                         6598: 100.64.0.0/10): the VPC would route public addresses into the tunnel",
                        a.value
                    ),
                );
            }
            for b in &cidrs.value[..i] {
                if overlaps(&a.value, &b.value) {
                    reader.error(a.span, "on_premises.cidrs", format!("`{}` overlaps `{}`", a.value, b.value));
                }
            }
        }
    }
    if let Some(domain) = &ad_domain {
        check_domain(reader, domain, "on_premises.ad_domain");
    }
    if let (Some(cidrs), Some(ips)) = (&cidrs, &ad_dns_ips) {
        for ip in &ips.value {
            if !cidrs.value.iter().any(|c| c.value.contains(&ip.value)) {
                reader.error(
                    ip.span,
                    "on_premises.ad_dns_ips",
                    format!("`{}` is not inside any of on_premises.cidrs", ip.value),
                );
            }
        }
    }
    let cidrs = cidrs?.value;
    Some((
        OnPremises {
            cidrs: cidrs.iter().map(|c| c.value).collect(),
            ad_domain: ad_domain?.value,
            ad_dns_ips: ad_dns_ips?.value.into_iter().map(|i| i.value).collect(),
        },
        cidrs.iter().map(|c| c.span).collect(),
    ))
}

fn check_domain(reader: &mut Reader<'_>, domain: &Spanned<String>, field: &str) {
    let labels: Vec<&str> = domain.value.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    if !ok {
        reader.error(
            domain.span,
            field,
            format!("`{}` is not a fully qualified domain name such as corp.example.com", domain.value),
        );
    }
}

fn decode_vpn(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<Vpn> {
    let customer_gateway_ip = reader.required::<Ipv4Addr>(table, "customer_gateway_ip");
    let customer_gateway_asn = reader.required::<u32>(table, "customer_gateway_asn");
    let amazon_side_asn = reader.or_default::<u32>(table, "amazon_side_asn", 64512);
    let routing = reader.required::<Routing>(table, "routing");
    let attachment = reader.or_default(table, "attachment", Attachment::VirtualPrivateGateway);
    let tunnel = match reader.optional_table(table, "tunnel") {
        Some(mut t) => {
            let tunnel = decode_tunnel(reader, &mut t);
            reader.finish(t);
            tunnel
        }
        None => Some(TunnelOptions::default()),
    };
    if let Some(ip) = &customer_gateway_ip {
        let v = ip.value;
        if v.is_private()
            || v.is_loopback()
            || v.is_unspecified()
            || v.is_link_local()
            || v.is_broadcast()
            || v.is_multicast()
        {
            reader.error(
                ip.span,
                "vpn.customer_gateway_ip",
                format!(
                    "`{v}` is not a public IPv4 address; the customer gateway needs the factory device's public IP"
                ),
            );
        }
    }
    if let Some(asn) = &customer_gateway_asn {
        if asn.value == amazon_side_asn.value {
            reader.error(asn.span, "vpn.customer_gateway_asn", format!("{} equals the Amazon-side ASN (vpn.amazon_side_asn = {}); the two sides of a BGP session need different ASNs", asn.value, amazon_side_asn.value));
        }
        if asn.value == 0 {
            reader.error(asn.span, "vpn.customer_gateway_asn", "must be between 1 and 4294967295");
        }
    }
    let asn_ok = |asn: u32| (64512..=65534).contains(&asn) || (4_200_000_000..=4_294_967_294).contains(&asn);
    if !asn_ok(amazon_side_asn.value) {
        reader.error(
            amazon_side_asn.span,
            "vpn.amazon_side_asn",
            format!("{} is not a private ASN (64512-65534 or 4200000000-4294967294)", amazon_side_asn.value),
        );
    }
    Some(Vpn {
        customer_gateway_ip: customer_gateway_ip?.value,
        customer_gateway_asn: customer_gateway_asn?.value,
        amazon_side_asn: amazon_side_asn.value,
        routing: routing?.value,
        attachment: attachment.value,
        tunnel: tunnel?,
    })
}

fn decode_tunnel(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<TunnelOptions> {
    let defaults = TunnelOptions::default();
    let mut strings =
        |reader: &mut Reader<'_>, key: &'static str, allowed: &[&str], default: Vec<String>, why: &str| {
            let value = reader.or_default::<Vec<String>>(table, key, default);
            if value.value.is_empty() {
                reader.error(value.span, &format!("vpn.tunnel.{key}"), "give at least one value");
            }
            for v in &value.value {
                if !allowed.contains(&v.as_str()) {
                    reader.error(
                        value.span,
                        &format!("vpn.tunnel.{key}"),
                        format!("`{v}` is not allowed ({why}); use {}", allowed.join(" or ")),
                    );
                }
            }
            value.value
        };
    let ike_versions = strings(reader, "ike_versions", &["ikev2"], defaults.ike_versions, "IKEv1 is weak");
    let phase1_encryption =
        strings(reader, "phase1_encryption", STRONG_ENCRYPTION, defaults.phase1_encryption, "AES-256 only");
    let phase1_integrity =
        strings(reader, "phase1_integrity", STRONG_INTEGRITY, defaults.phase1_integrity, "SHA-2 only");
    let phase2_encryption =
        strings(reader, "phase2_encryption", STRONG_ENCRYPTION, defaults.phase2_encryption, "AES-256 only");
    let phase2_integrity =
        strings(reader, "phase2_integrity", STRONG_INTEGRITY, defaults.phase2_integrity, "SHA-2 only");
    let mut groups = |reader: &mut Reader<'_>, key: &'static str| {
        let value = reader.or_default::<Vec<u32>>(table, key, vec![14]);
        if value.value.is_empty() {
            reader.error(value.span, &format!("vpn.tunnel.{key}"), "give at least one group");
        }
        for g in &value.value {
            if !(14..=21).contains(g) {
                reader.error(
                    value.span,
                    &format!("vpn.tunnel.{key}"),
                    format!(
                        "Diffie-Hellman group {g} is not allowed; use groups 14 to 21 (RFC 8247: 22 MUST NOT be used, \
                         23 and 24 SHOULD NOT, their prime-order subgroups being small)"
                    ),
                );
            }
        }
        value.value
    };
    let phase1_dh_groups = groups(reader, "phase1_dh_groups");
    let phase2_dh_groups = groups(reader, "phase2_dh_groups");
    Some(TunnelOptions {
        ike_versions,
        phase1_encryption,
        phase1_integrity,
        phase1_dh_groups,
        phase2_encryption,
        phase2_integrity,
        phase2_dh_groups,
    })
}

fn decode_lake(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<Lake> {
    let bucket_suffix = reader.optional::<String>(table, "bucket_suffix");
    let ia = reader.required::<u32>(table, "standard_ia_after_days");
    let glacier = reader.required::<u32>(table, "glacier_after_days");
    let abort = reader.or_default::<u32>(table, "abort_incomplete_multipart_upload_days", 7);
    let administrators = reader.or_default::<Vec<String>>(table, "key_administrators", Vec::new());
    for arn in administrators.value.iter().filter(|a| !is_principal_arn(a)) {
        reader.error(
            administrators.span,
            "lake.key_administrators",
            format!("`{arn}` is not an IAM principal ARN (arn:aws:iam::<account>:role/NAME, :user/NAME or :root)"),
        );
    }
    if let Some(suffix) = &bucket_suffix {
        let ok = !suffix.value.is_empty()
            && suffix.value.len() <= 20
            && suffix.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            reader.error(
                suffix.span,
                "lake.bucket_suffix",
                format!("`{}` must be 1-20 lower-case letters, digits or -", suffix.value),
            );
        }
    }
    if let Some(ia) = &ia
        && ia.value <= 30
    {
        reader.error(
            ia.span,
            "lake.standard_ia_after_days",
            format!("{} days: objects can move to STANDARD_IA only after more than 30 days", ia.value),
        );
    }
    if let (Some(ia), Some(glacier)) = (&ia, &glacier)
        && glacier.value <= ia.value
    {
        reader.error(
            glacier.span,
            "lake.glacier_after_days",
            format!("{} days: must be later than the STANDARD_IA transition ({} days)", glacier.value, ia.value),
        );
    }
    if abort.value == 0 {
        reader.error(abort.span, "lake.abort_incomplete_multipart_upload_days", "must be at least 1");
    }
    Some(Lake {
        bucket_suffix: bucket_suffix.map(|s| s.value),
        standard_ia_after_days: ia?.value,
        glacier_after_days: glacier?.value,
        abort_incomplete_multipart_upload_days: abort.value,
        key_administrators: administrators.value,
    })
}

fn check_identifier(reader: &mut Reader<'_>, value: &Spanned<String>, field: &str) {
    let mut chars = value.value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && value.value.len() <= 63;
    if !ok {
        reader.error(
            value.span,
            field,
            format!("`{}` is not a valid identifier (lower-case letters, digits and _, at most 63)", value.value),
        );
    }
}

fn decode_warehouse(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<Warehouse> {
    let node_type = reader.required::<String>(table, "node_type");
    let number_of_nodes = reader.required::<u32>(table, "number_of_nodes");
    let database = reader.or_default(table, "database", "indutech".to_owned());
    let master_username = reader.or_default(table, "master_username", "indutech_admin".to_owned());
    let external_schema = reader.or_default(table, "external_schema", "lake".to_owned());
    let skip_final_snapshot = reader.or_default(table, "skip_final_snapshot", false);
    let statement_timeout_secs = reader.or_default(table, "statement_timeout_secs", 120u64);
    if !(1..=3600).contains(&statement_timeout_secs.value) {
        reader.error(
            statement_timeout_secs.span,
            "warehouse.statement_timeout_secs",
            format!("{}: must be between 1 and 3600 seconds", statement_timeout_secs.value),
        );
    }
    if let Some(node_type) = &node_type
        && !["ra3.", "dc2."].iter().any(|p| node_type.value.starts_with(p))
    {
        reader.error(
            node_type.span,
            "warehouse.node_type",
            format!("`{}` is not a Redshift node type (ra3.* or dc2.*)", node_type.value),
        );
    }
    if let Some(n) = &number_of_nodes
        && !(1..=128).contains(&n.value)
    {
        reader.error(n.span, "warehouse.number_of_nodes", format!("{}: must be between 1 and 128", n.value));
    }
    check_identifier(reader, &database, "warehouse.database");
    check_identifier(reader, &master_username, "warehouse.master_username");
    check_identifier(reader, &external_schema, "warehouse.external_schema");
    Some(Warehouse {
        node_type: node_type?.value,
        number_of_nodes: number_of_nodes?.value,
        database: database.value,
        master_username: master_username.value,
        external_schema: external_schema.value,
        skip_final_snapshot: skip_final_snapshot.value,
        statement_timeout_secs: statement_timeout_secs.value,
    })
}

/// The Redpanda version brokers run unless `redpanda.version` says otherwise.
pub const REDPANDA_VERSION: &str = "24.2.7";

/// The Redpanda section, the position of `broker_count` and that of `[redpanda.throughput]`.
fn decode_redpanda(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<(Redpanda, Span, Option<Span>)> {
    let broker_count = reader.required::<u32>(table, "broker_count");
    let version = reader.or_default::<String>(table, "version", REDPANDA_VERSION.to_owned());
    let parts: Vec<&str> = version.value.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        reader.error(
            version.span,
            "redpanda.version",
            format!("`{}` is not a Redpanda release such as {REDPANDA_VERSION} (MAJOR.MINOR.PATCH)", version.value),
        );
    }
    let instance_type = reader.required::<String>(table, "instance_type");
    let ami = reader.required::<String>(table, "ami");
    let bootstrap_servers = reader.or_default::<Vec<String>>(table, "bootstrap_servers", Vec::new());
    let security = reader.or_default(table, "security", KafkaSecurity::SaslSsl);
    let tiered_storage = reader.or_default(table, "tiered_storage", false);
    let throughput = reader.optional_table(table, "throughput").map(|mut t| {
        let span = t.span;
        let value = decode_throughput(reader, &mut t, tiered_storage.value);
        reader.finish(t);
        (value, span)
    });
    if !bootstrap_servers.value.is_empty() {
        if let Some((_, span)) = &throughput {
            reader.error(
                *span,
                "redpanda.throughput",
                "sizing applies to the brokers indutech runs, and these are named in redpanda.bootstrap_servers: \
                 remove [redpanda.throughput] or redpanda.bootstrap_servers",
            );
        }
        if tiered_storage.value {
            reader.error(
                tiered_storage.span,
                "redpanda.tiered_storage",
                "Tiered Storage is configured on the brokers indutech runs, and these are named in \
                 redpanda.bootstrap_servers: turn it on where they run",
            );
        }
    }
    let credentials = match reader.optional_table(table, "credentials") {
        Some(mut t) => {
            let span = t.span;
            let admin = reader.required::<String>(&mut t, "admin");
            let worker = reader.required::<String>(&mut t, "worker");
            reader.finish(t);
            if bootstrap_servers.value.is_empty() {
                reader.error(
                    span,
                    "redpanda.credentials",
                    "indutech generates the credentials of the brokers it runs: remove [redpanda.credentials], \
                     or name the brokers in redpanda.bootstrap_servers"
                        .to_owned(),
                );
            } else if security.value == KafkaSecurity::Plaintext {
                reader.error(
                    span,
                    "redpanda.credentials",
                    "credentials need redpanda.security = \"sasl_ssl\" (a plaintext listener takes none)".to_owned(),
                );
            }
            Some((admin, worker))
        }
        None => {
            if !bootstrap_servers.value.is_empty() && security.value == KafkaSecurity::SaslSsl {
                reader.error(
                    security.span,
                    "redpanda.credentials",
                    "brokers named in redpanda.bootstrap_servers with security \"sasl_ssl\" need [redpanda.credentials] \
                     (admin, worker: Secrets Manager secrets with username and password), or declare \
                     security = \"plaintext\" for a local broker"
                        .to_owned(),
                );
            }
            None
        }
    };
    let loopback = |server: &String| {
        let host = server.rsplit_once(':').map_or(server.as_str(), |(host, _)| host);
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    if security.value == KafkaSecurity::Plaintext
        && (bootstrap_servers.value.is_empty() || !bootstrap_servers.value.iter().all(loopback))
    {
        reader.error(
            security.span,
            "redpanda.security",
            "\"plaintext\" is only for a broker on this machine (redpanda.bootstrap_servers on loopback): \
             anyone on the network could read, write or delete the topics; use \"sasl_ssl\""
                .to_owned(),
        );
    }
    if let Some(count) = &broker_count
        && count.value < 3
    {
        reader.error(
            count.span,
            "redpanda.broker_count",
            format!("{} brokers: Redpanda needs at least 3 for a fault-tolerant Raft quorum", count.value),
        );
    }
    if let Some(instance_type) = &instance_type {
        let family = instance_type.value.split('.').next().unwrap_or_default();
        if !NVME_FAMILIES.contains(&family) {
            reader.error(
                instance_type.span,
                "redpanda.instance_type",
                format!(
                    "`{}` has no local NVMe storage; use an NVMe family such as i4i, i3en or im4gn",
                    instance_type.value
                ),
            );
        }
    }
    if let Some(ami) = &ami
        && !ami.value.starts_with("ami-")
    {
        reader.error(ami.span, "redpanda.ami", format!("`{}` is not an AMI id (ami-...)", ami.value));
    }
    for server in &bootstrap_servers.value {
        let ok = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            reader.error(bootstrap_servers.span, "redpanda.bootstrap_servers", format!("`{server}` is not host:port"));
        }
    }
    let broker_count = broker_count?;
    let throughput_span = throughput.as_ref().map(|(_, span)| *span);
    let redpanda = Redpanda {
        broker_count: broker_count.value,
        instance_type: instance_type?.value,
        ami: ami?.value,
        version: version.value,
        bootstrap_servers: bootstrap_servers.value,
        security: security.value,
        credentials: match credentials {
            Some((admin, worker)) => Some(KafkaCredentials { admin: admin?.value, worker: worker?.value }),
            None => None,
        },
        tiered_storage: tiered_storage.value,
        throughput: match throughput {
            Some((t, _)) => Some(t?),
            None => None,
        },
    };
    Some((redpanda, broker_count.span, throughput_span))
}

/// `[redpanda.throughput]`; `tiered_storage`: whether `redpanda.tiered_storage` is on (a
/// retention beyond the local one needs it).
fn decode_throughput(reader: &mut Reader<'_>, table: &mut Table<'_>, tiered_storage: bool) -> Option<Throughput> {
    let ingress = reader.required::<u32>(table, "ingress_mb_per_sec");
    let fan_out = reader.or_default::<u32>(table, "consumer_fan_out", 1);
    let local = reader.required::<u32>(table, "local_retention_hours");
    let retention = reader.optional::<u32>(table, "retention_hours");
    let partition = reader.or_default::<u32>(table, "partition_mb_per_sec", 20);
    let path = table.path().to_owned();
    for (value, key) in [
        (ingress.as_ref(), "ingress_mb_per_sec"),
        (Some(&fan_out), "consumer_fan_out"),
        (local.as_ref(), "local_retention_hours"),
        (Some(&partition), "partition_mb_per_sec"),
    ] {
        if let Some(v) = value
            && v.value == 0
        {
            reader.error(v.span, &format!("{path}.{key}"), "must be at least 1");
        }
    }
    if let (Some(r), Some(l)) = (&retention, &local) {
        if r.value < l.value {
            reader.error(
                r.span,
                &format!("{path}.retention_hours"),
                format!(
                    "{} h is shorter than local_retention_hours ({} h): the local retention is part of it",
                    r.value, l.value
                ),
            );
        } else if r.value > l.value && !tiered_storage {
            reader.error(
                r.span,
                &format!("{path}.retention_hours"),
                format!(
                    "{} h beyond the {} h kept on the brokers' NVMe needs Tiered Storage: set redpanda.tiered_storage = \
                     true, or retention_hours = local_retention_hours",
                    r.value, l.value
                ),
            );
        }
    }
    let local = local?.value;
    Some(Throughput {
        ingress_mb_per_sec: ingress?.value,
        consumer_fan_out: fan_out.value,
        local_retention_hours: local,
        retention_hours: retention.map_or(local, |r| r.value),
        partition_mb_per_sec: partition.value,
    })
}

fn decode_directory(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<Directory> {
    let domain = reader.required::<String>(table, "domain");
    let edition = reader.or_default(table, "edition", DirectoryEdition::Standard);
    let trust_direction = reader.or_default(table, "trust_direction", TrustDirection::TwoWay);
    if let Some(domain) = &domain {
        check_domain(reader, domain, "directory.domain");
    }
    Some(Directory { domain: domain?.value, edition: edition.value, trust_direction: trust_direction.value })
}

/// The worker section and the position of `instance_count` (the section's when it is not given).
fn decode_worker(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<(Worker, Span)> {
    let runtime = reader.required::<WorkerRuntime>(table, "runtime");
    let instance_type = reader.or_default(table, "instance_type", "c7i.large".to_owned());
    let ami = reader.optional::<String>(table, "ami");
    let instance_count = reader.or_default::<u32>(table, "instance_count", 2);
    let flush_interval_secs = reader.or_default::<u64>(table, "flush_interval_secs", 60);
    let target_file_size_bytes = reader.or_default::<u64>(table, "target_file_size_bytes", 128 * 1024 * 1024);
    let drain_timeout_ms = reader.or_default::<u64>(table, "drain_timeout_ms", 20_000);
    let metrics_port = reader.or_default::<u16>(table, "metrics_port", 9464);
    if instance_count.value == 0 {
        reader.error(instance_count.span, "worker.instance_count", "must be at least 1");
    }
    if flush_interval_secs.value == 0 {
        reader.error(flush_interval_secs.span, "worker.flush_interval_secs", "must be at least 1");
    }
    if target_file_size_bytes.value < 1024 * 1024 {
        reader.error(
            target_file_size_bytes.span,
            "worker.target_file_size_bytes",
            format!("{} bytes: must be at least 1048576 (1 MiB)", target_file_size_bytes.value),
        );
    }
    if metrics_port.value == 0 {
        reader.error(metrics_port.span, "worker.metrics_port", "must be between 1 and 65535");
    }
    let runtime = runtime?;
    if runtime.value == WorkerRuntime::Ec2 {
        if ami.is_none() {
            reader.error(
                runtime.span,
                "worker.ami",
                "required when runtime = \"ec2\": the image the worker instances boot (a systemd \
                 distribution with the AWS CLI, such as Amazon Linux 2023)",
            );
        }
        let arch = instance_architecture(&instance_type.value);
        if arch != std::env::consts::ARCH {
            reader.error(
                instance_type.span,
                "worker.instance_type",
                format!(
                    "`{}` is an {arch} type, but this indutech binary is built for {} and apply deploys \
                     this very binary to the instances; choose an {} type (such as c7i.large) or run \
                     indutech built for {arch}",
                    instance_type.value,
                    std::env::consts::ARCH,
                    std::env::consts::ARCH
                ),
            );
        }
    }
    let worker = Worker {
        runtime: runtime.value,
        ami: ami.map(|a| a.value),
        instance_type: instance_type.value,
        instance_count: instance_count.value,
        flush_interval_secs: flush_interval_secs.value,
        target_file_size_bytes: target_file_size_bytes.value,
        drain_timeout_ms: drain_timeout_ms.value,
        metrics_port: metrics_port.value,
    };
    Some((worker, instance_count.span))
}

/// The CPU architecture of an EC2 instance type, named as Rust's `std::env::consts::ARCH`:
/// `aarch64` for Graviton families (`a1`, and a `g` after the generation digit: `c7g`, `m6gd`,
/// `im4gn`, `t4g`...), `x86_64` otherwise.
pub fn instance_architecture(instance_type: &str) -> &'static str {
    let family = instance_type.split('.').next().unwrap_or_default();
    let suffix = family
        .find(|c: char| c.is_ascii_digit())
        .map_or("", |i| family[i..].trim_start_matches(|c: char| c.is_ascii_digit()));
    if family == "a1" || suffix.contains('g') { "aarch64" } else { "x86_64" }
}

fn decode_stream_overrides(reader: &mut Reader<'_>, table: Table<'_>) -> Vec<StreamOverride> {
    let mut overrides = Vec::new();
    for (name, mut sub) in reader.entries(table) {
        let partitions = reader.optional::<u32>(&mut sub, "partitions");
        let replication = reader.optional::<u16>(&mut sub, "replication");
        let topic = reader.optional::<String>(&mut sub, "topic");
        let granularity = reader.optional::<super::stream::Granularity>(&mut sub, "partition_granularity");
        let ingress = reader.optional::<u32>(&mut sub, "ingress_mb_per_sec");
        let path = sub.path().to_owned();
        if let Some(t) = &topic
            && !super::stream::is_topic_name(&t.value)
        {
            reader.error(t.span, &format!("{path}.topic"), format!("`{}` is not a valid Kafka topic name", t.value));
        }
        reader.finish(sub);
        if let Some(p) = &partitions
            && p.value == 0
        {
            reader.error(p.span, &format!("{path}.partitions"), "must be at least 1");
        }
        if let Some(r) = &replication
            && r.value == 0
        {
            reader.error(r.span, &format!("{path}.replication"), "must be at least 1");
        }
        overrides.push(StreamOverride {
            name,
            partitions: partitions.map(|p| p.value),
            replication: replication.map(|r| r.value),
            topic: topic.map(|t| t.value),
            granularity: granularity.map(|g| g.value),
            ingress_mb_per_sec: ingress.map(|i| i.value),
        });
    }
    overrides
}
