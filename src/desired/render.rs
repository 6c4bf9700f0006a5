//! Files indutech renders from `templates/` (compiled into the binary, rendered with tera):
//! the brokers' and the worker instances' cloud-init (desired state: an instance's user data)
//! and the factory-side strongSwan configuration. Pure: no I/O, no AWS call (the VPN tunnels'
//! addresses are read by the caller).

use serde_json::json;

use crate::config::environment::Environment;

use crate::model::{self, BROKER_PORTS, BrokerPlacement};

const BROKER_CLOUD_INIT: &str = include_str!("../../templates/redpanda/cloud-init.yaml.tera");
const SWANCTL: &str = include_str!("../../templates/vpn/swanctl.conf.tera");
const WORKER_CLOUD_INIT: &str = include_str!("../../templates/worker/cloud-init.yaml.tera");

/// Where a worker instance keeps the environment file.
pub const WORKER_CONFIG_DIR: &str = "/etc/indutech";

/// Every template, compiled once per process (no autoescaping: YAML and swanctl, not HTML).
static TEMPLATES: std::sync::LazyLock<Result<tera::Tera, String>> = std::sync::LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_templates([
        ("templates/redpanda/cloud-init.yaml.tera", BROKER_CLOUD_INIT),
        ("templates/vpn/swanctl.conf.tera", SWANCTL),
        ("templates/worker/cloud-init.yaml.tera", WORKER_CLOUD_INIT),
    ])
    .map_err(|e| format!("{e:?}"))?;
    Ok(tera)
});

fn render(name: &str, context: &serde_json::Value) -> anyhow::Result<String> {
    let tera = TEMPLATES.as_ref().map_err(|e| anyhow::anyhow!("compiling the templates (a bug): {e}"))?;
    let context = tera::Context::from_serialize(context)?;
    tera.render(name, &context).map_err(|e| anyhow::anyhow!("rendering {name}: {e:?}"))
}

/// The cloud-init user data of the broker at `placement`: `/etc/redpanda/redpanda.yaml` with
/// the same seed servers (every broker's fixed IP, in index order) on every broker, no
/// `node_id`, `rack` = the broker's availability zone; then a check that the AMI holds Redpanda
/// `redpanda.version` (nothing is installed from the internet: the VPC has no route to it),
/// production mode, `rpk redpanda tune all`, the local NVMe disk as data directory, and rack
/// awareness switched on. With `redpanda.security = "sasl_ssl"`: the Kafka listener takes only
/// SASL/SCRAM over TLS, the cluster starts with authorisation on and indutech's admin principal
/// as superuser (`.bootstrap.yaml`), a script reads the brokers' key, certificate, CA and the
/// principals' passwords from Secrets Manager (the AMI must hold the AWS CLI and Python 3,
/// checked), and once the cluster is healthy the SCRAM users and the worker's ACLs are created.
/// No secret is in the user data: only the secrets' names.
///
/// Errors: the template does not render (a bug: the template is compiled in).
pub fn broker_cloud_init(environment: &Environment, placement: &BrokerPlacement) -> anyhow::Result<String> {
    let seeds: Vec<String> = model::broker_placements(environment).iter().map(|p| p.private_ip.to_string()).collect();
    let [kafka, rpc, admin, schema_registry, http_proxy] = BROKER_PORTS;
    let sasl = environment.redpanda.security == crate::config::environment::KafkaSecurity::SaslSsl;
    render(
        "templates/redpanda/cloud-init.yaml.tera",
        &json!({
            "environment": environment.name,
            "index": placement.index,
            "rack": placement.availability_zone,
            "private_ip": placement.private_ip.to_string(),
            "seed_servers": seeds,
            "redpanda_version": environment.redpanda.version,
            "region": environment.region,
            "sasl": sasl,
            "cluster_properties": cluster_properties(environment),
            "admin_user": crate::kafka::KAFKA_ADMIN_USER,
            "worker_user": crate::kafka::KAFKA_WORKER_USER,
            "group": model::group_id(environment),
            "secrets": {
                "brokers_tls": model::kafka_secret_name(environment, "brokers-tls"),
                "admin": model::kafka_secret_name(environment, "admin"),
                "worker": model::kafka_secret_name(environment, "worker"),
            },
            "ports": {
                "kafka": kafka, "rpc": rpc, "admin": admin,
                "schema_registry": schema_registry, "http_proxy": http_proxy,
            },
        }),
    )
}

/// The cluster properties the brokers' cluster starts with (`/etc/redpanda/.bootstrap.yaml`,
/// one `key: value` YAML line each, a comment line before the retention and the Tiered Storage
/// groups): with `sasl_ssl`,
/// authorisation by ACLs and SCRAM with indutech's admin principal as superuser; with
/// `[redpanda.throughput]`, the retention (`log_retention_ms`; with Tiered Storage the local part
/// `retention_local_target_ms_default`); with Tiered Storage, the lake's tiered bucket through
/// the instance role, remote write and read on for every topic.
fn cluster_properties(environment: &Environment) -> Vec<String> {
    let r = &environment.redpanda;
    let mut lines = Vec::new();
    if r.security == crate::config::environment::KafkaSecurity::SaslSsl {
        lines.extend([
            "kafka_enable_authorization: true".to_owned(),
            "sasl_mechanisms: [SCRAM]".to_owned(),
            format!("superusers: [{}]", crate::kafka::KAFKA_ADMIN_USER),
        ]);
    }
    let hours_ms = |hours: u32| u64::from(hours) * 3_600_000;
    if let Some(t) = &r.throughput {
        lines.push(format!(
            "# Retention (redpanda.throughput): {} h in all, {} h of it on the brokers' NVMe.",
            t.retention_hours, t.local_retention_hours
        ));
        lines.push(format!("log_retention_ms: {}", hours_ms(t.retention_hours)));
        if r.tiered_storage {
            lines.push(format!("retention_local_target_ms_default: {}", hours_ms(t.local_retention_hours)));
        }
    }
    if r.tiered_storage {
        lines.extend([
            "# Tiered Storage: closed segments go to the lake's tiered bucket, with the instance role.".to_owned(),
            "cloud_storage_enabled: true".to_owned(),
            format!("cloud_storage_region: {}", environment.region),
            format!("cloud_storage_bucket: {}", model::bucket_name(environment, model::TIERED_ZONE)),
            "cloud_storage_credentials_source: aws_instance_metadata".to_owned(),
            "cloud_storage_enable_remote_write: true".to_owned(),
            "cloud_storage_enable_remote_read: true".to_owned(),
        ]);
    }
    lines
}

/// The cloud-init user data of every worker instance (ec2 runtime): a system user, the
/// environment file and the stream files exactly as [`crate::config::load`] read them (under
/// [`WORKER_CONFIG_DIR`], the streams where the file's `streams_dir` points from there), a
/// systemd unit running `indutech worker` (SIGTERM, stop timeout = drain deadline + 10 s,
/// restart always), and a script that fetches the binary `worker/indutech-<sha256>` from the
/// artifacts bucket and checks its digest before installing it.
///
/// Errors: the template does not render (a bug: the template is compiled in).
pub fn worker_cloud_init(environment: &Environment, binary_sha256: &str) -> anyhow::Result<String> {
    let sources = &environment.sources;
    let env_file = environment
        .file
        .file_name()
        .map_or_else(|| format!("{}.toml", environment.name), |n| n.to_string_lossy().into_owned());
    let streams_dir = std::path::Path::new(WORKER_CONFIG_DIR).join(&sources.streams_dir);
    let streams: Vec<serde_json::Value> =
        sources.streams.iter().map(|(file, text)| json!({"file": file, "text": text.trim_end()})).collect();
    render(
        "templates/worker/cloud-init.yaml.tera",
        &json!({
            "environment": environment.name,
            "region": environment.region,
            "config_dir": WORKER_CONFIG_DIR,
            "env_file": env_file,
            "environment_text": sources.environment.trim_end(),
            "streams_dir": streams_dir.to_string_lossy(),
            "streams": streams,
            "metrics_port": environment.worker.metrics_port,
            "stop_timeout_secs": environment.worker.drain_timeout_ms.div_ceil(1000) + 10,
            "bucket": model::bucket_name(environment, "artifacts"),
            "key": crate::model::worker_binary_key(binary_sha256),
            "sha256": binary_sha256,
        }),
    )
}

/// strongSwan's name of an AWS algorithm name or DH group (`AES256` -> `aes256`, `SHA2-256`
/// -> `sha256`, `14` -> `modp2048`).
///
/// Errors: a name AWS does not offer (validation keeps environments to AWS's lists).
fn strongswan(aws: &str) -> anyhow::Result<&'static str> {
    Ok(match aws {
        "AES128" => "aes128",
        "AES256" => "aes256",
        "AES128-GCM-16" => "aes128gcm16",
        "AES256-GCM-16" => "aes256gcm16",
        "SHA1" => "sha1",
        "SHA2-256" => "sha256",
        "SHA2-384" => "sha384",
        "SHA2-512" => "sha512",
        "2" => "modp1024",
        "5" => "modp1536",
        "14" => "modp2048",
        "15" => "modp3072",
        "16" => "modp4096",
        "17" => "modp6144",
        "18" => "modp8192",
        "19" => "ecp256",
        "20" => "ecp384",
        "21" => "ecp521",
        "22" => "modp1024s160",
        "23" => "modp2048s224",
        "24" => "modp2048s256",
        other => anyhow::bail!("no strongSwan name for the AWS algorithm `{other}`"),
    })
}

/// A strongSwan proposal list: one proposal per encryption x integrity x group, strongest
/// first as the environment lists them (`aes256-sha256-modp2048,...`). GCM needs no integrity.
fn proposals(encryption: &[String], integrity: &[String], groups: &[u32]) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for e in encryption {
        let e_name = strongswan(e)?;
        for g in groups {
            let g_name = strongswan(&g.to_string())?;
            if e_name.contains("gcm") {
                out.push(format!("{e_name}-{g_name}"));
            } else {
                for i in integrity {
                    out.push(format!("{e_name}-{}-{g_name}", strongswan(i)?));
                }
            }
        }
    }
    out.dedup();
    Ok(out.join(","))
}

/// The factory-side strongSwan `swanctl.conf` for VPN connection `connection_id` with
/// `tunnels` (AWS-side outside address, inside CIDR): one IKEv2 connection per tunnel with the
/// environment's phase 1 and phase 2 proposals; with static routing, traffic selectors
/// on-premises CIDRs <-> VPC; with BGP, route-based: 0.0.0.0/0 through one XFRM interface per
/// tunnel (`if_id`), with the interface, inside addresses and BGP neighbours in the comments.
/// Pre-shared keys are not rendered: the `secrets` section includes a file the operator fills
/// with the entries its comment shows.
///
/// Errors: an algorithm without a strongSwan name.
pub fn swanctl_conf(
    environment: &Environment,
    connection_id: &str,
    tunnels: &[crate::model::Tunnel],
) -> anyhow::Result<String> {
    let t = &environment.vpn.tunnel;
    let on_premises: Vec<String> = environment.on_premises.cidrs.iter().map(|c| c.to_string()).collect();
    // AWS gives a tunnel's inside /30 its first host and the customer gateway its second.
    let tunnels: Vec<serde_json::Value> = tunnels
        .iter()
        .map(|tunnel| {
            let inside = tunnel.inside_cidr.as_deref().and_then(|c| c.parse::<ipnet::Ipv4Net>().ok());
            let host = |n: u32| inside.map(|net| std::net::Ipv4Addr::from(u32::from(net.network()) + n).to_string());
            json!({
                "outside_ip": tunnel.outside_ip,
                "inside_cidr": tunnel.inside_cidr,
                "inside_remote": host(1),
                "inside_local": host(2),
            })
        })
        .collect();
    render(
        "templates/vpn/swanctl.conf.tera",
        &json!({
            "environment": environment.name,
            "connection_id": connection_id,
            "customer_gateway_ip": environment.vpn.customer_gateway_ip.to_string(),
            "tunnels": tunnels,
            "ike_proposals": proposals(&t.phase1_encryption, &t.phase1_integrity, &t.phase1_dh_groups)?,
            "esp_proposals": proposals(&t.phase2_encryption, &t.phase2_integrity, &t.phase2_dh_groups)?,
            "bgp": environment.vpn.routing == crate::config::environment::Routing::Bgp,
            "customer_gateway_asn": environment.vpn.customer_gateway_asn,
            "amazon_side_asn": environment.vpn.amazon_side_asn,
            "local_ts": on_premises.join(","),
            "remote_ts": environment.network.vpc_cidr.to_string(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::shipped as environment;

    /// Compares `text` with `tests/snapshots/<name>`; `INDUTECH_UPDATE_SNAPSHOTS=1` rewrites
    /// the file instead (review the diff before committing it).
    pub(crate) fn snapshot(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
        if std::env::var_os("INDUTECH_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text, want, "{} changed; if intended, rerun with INDUTECH_UPDATE_SNAPSHOTS=1", path.display());
    }

    #[test]
    fn broker_cloud_init_snapshot() {
        let dev = environment("dev");
        let placement = &model::broker_placements(&dev)[1];
        let text = broker_cloud_init(&dev, placement).unwrap();
        snapshot("broker-1-dev.cloud-init.yaml", &text);
        let prod = environment("prod");
        let text = broker_cloud_init(&prod, &model::broker_placements(&prod)[0]).unwrap();
        snapshot("broker-0-prod.cloud-init.yaml", &text);
        assert!(text.contains("authentication_method: sasl") && text.contains("kafka_enable_authorization: true"));
    }

    #[test]
    fn no_instance_fetches_anything_from_the_internet() {
        // The VPC has no internet route: Redpanda comes with the AMI, the worker binary from
        // the artifacts bucket through the S3 endpoint.
        for name in ["dev", "staging", "prod"] {
            let env = environment(name);
            let brokers: Vec<String> =
                model::broker_placements(&env).iter().map(|p| broker_cloud_init(&env, p).unwrap()).collect();
            for text in &brokers {
                for forbidden in ["curl", "wget", "http://", "https://", "| bash", "| sh ", "| sh\n"] {
                    assert!(!text.contains(forbidden), "{name}: `{forbidden}` in {text}");
                }
            }
            // The worker's carries the environment file, whose [endpoints] may hold URLs.
            let worker = worker_cloud_init(&env, &"0".repeat(64)).unwrap();
            for forbidden in ["curl", "wget", "| bash", "| sh ", "| sh\n"] {
                assert!(!worker.contains(forbidden), "{name}: `{forbidden}` in {worker}");
            }
            let broker = broker_cloud_init(&env, &model::broker_placements(&env)[0]).unwrap();
            assert!(broker.contains(&format!("$i == \"v{}\"", env.redpanda.version)), "{name}: the version is checked");
        }
    }

    #[test]
    fn swanctl_snapshot() {
        use crate::model::Tunnel;
        let dev = environment("dev");
        let tunnels = [
            Tunnel { outside_ip: "52.0.0.1".into(), inside_cidr: Some("169.254.10.0/30".into()) },
            Tunnel { outside_ip: "52.0.0.2".into(), inside_cidr: None },
        ];
        let text = swanctl_conf(&dev, "vpn-0123", &tunnels).unwrap();
        snapshot("swanctl-dev.conf", &text);
        assert!(text.contains("proposals = aes256-sha256-modp2048"), "{text}");
        assert!(text.contains("local_ts = ") && !text.contains("if_id_in"), "static routing is policy-based: {text}");
        // BGP (staging): route-based, one XFRM interface per tunnel, the inside addresses as AWS
        // assigns them (its side the /30's first host, the factory's the second).
        let staging = environment("staging");
        let text = swanctl_conf(&staging, "vpn-0456", &tunnels).unwrap();
        snapshot("swanctl-staging.conf", &text);
        for want in [
            "if_id_in = 1",
            "if_id_out = 2",
            "local_ts = 0.0.0.0/0",
            "ip addr add 169.254.10.2/30 dev aws-tunnel-1",
            "neighbour 169.254.10.1",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }

    #[test]
    fn every_broker_has_the_same_seeds_and_its_own_rack() {
        let prod = environment("prod");
        let texts: Vec<String> =
            model::broker_placements(&prod).iter().map(|p| broker_cloud_init(&prod, p).unwrap()).collect();
        let seeds = |t: &str| t.lines().filter(|l| l.contains("- host:")).map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(seeds(&texts[0]).len(), prod.redpanda.broker_count as usize);
        for (text, placement) in texts.iter().zip(model::broker_placements(&prod)) {
            assert_eq!(seeds(text), seeds(&texts[0]));
            assert!(text.contains(&format!("rack: {}", placement.availability_zone)), "{text}");
            assert!(!text.contains("node_id:"), "{text}");
        }
    }

    #[test]
    fn worker_cloud_init_snapshot() {
        let staging = environment("staging");
        let text = worker_cloud_init(&staging, &"ab".repeat(32)).unwrap();
        snapshot("worker-staging.cloud-init.yaml", &text);
        let key = format!("s3://{}/worker/indutech-{}", model::bucket_name(&staging, "artifacts"), "ab".repeat(32));
        assert!(text.contains(&key), "{text}");
        assert!(
            text.contains(&format!("echo \"{}  /usr/local/bin/indutech.download\" | sha256sum -c -", "ab".repeat(32)))
        );
        assert!(text.contains("ExecStart=/usr/local/bin/indutech worker --env /etc/indutech/staging.toml"), "{text}");
        assert!(text.contains("TimeoutStopSec=30"), "20 s drain + 10 s: {text}");
        // Every environment and stream file travels as written, indented into the YAML block.
        for (file, body) in &staging.sources.streams {
            assert!(text.contains(&format!("  - path: /etc/indutech/streams/{file}")), "{file}");
            let first = body.lines().find(|l| !l.is_empty()).unwrap();
            assert!(text.contains(&format!("      {first}")), "{file}: {first}");
        }
    }
}
