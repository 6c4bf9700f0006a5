//! Files indutech renders from `templates/` (compiled into the binary, rendered with tera):
//! the Redpanda brokers' cloud-init. Pure: no I/O, no AWS call.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::environment::Environment;
use crate::desired::BROKER_PORTS;
use crate::model::{self, BrokerPlacement};

const BROKER_CLOUD_INIT: &str = include_str!("../templates/redpanda/cloud-init.yaml.tera");

fn render(name: &str, template: &str, context: &serde_json::Value) -> anyhow::Result<String> {
    let context = tera::Context::from_serialize(context)?;
    tera::Tera::one_off(template, &context, false).map_err(|e| anyhow::anyhow!("rendering {name}: {e:?}"))
}

/// The cloud-init user data of the broker at `placement`: `/etc/redpanda/redpanda.yaml` with
/// the same seed servers (every broker's fixed IP, in index order) on every broker, no
/// `node_id`, `rack` = the broker's availability zone; then production mode, `rpk redpanda
/// tune all`, the local NVMe disk as data directory, and rack awareness switched on.
///
/// Errors: the template does not render (a bug: the template is compiled in).
pub fn broker_cloud_init(environment: &Environment, placement: &BrokerPlacement) -> anyhow::Result<String> {
    let seeds: Vec<String> = model::broker_placements(environment).iter().map(|p| p.private_ip.to_string()).collect();
    let [kafka, rpc, admin, schema_registry, http_proxy] = BROKER_PORTS;
    render(
        "templates/redpanda/cloud-init.yaml.tera",
        BROKER_CLOUD_INIT,
        &json!({
            "environment": environment.name,
            "index": placement.index,
            "rack": placement.availability_zone,
            "private_ip": placement.private_ip.to_string(),
            "seed_servers": seeds,
            "ports": {
                "kafka": kafka, "rpc": rpc, "admin": admin,
                "schema_registry": schema_registry, "http_proxy": http_proxy,
            },
        }),
    )
}

/// Lower-case hex SHA-256 of `text`: how user data appears in plans (the text itself is long
/// and is shown by `indutech render`).
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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
}
