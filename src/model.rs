//! Desired-state building blocks derived from an environment: names, tags and address layout.
//!
//! AWS is indutech's source of truth and there is no state file, so every resource must be
//! findable from the environment alone: names are deterministic (`indutech-<env>-<component>`),
//! every taggable resource carries the same three tags, and addresses (subnets, broker IPs) are
//! computed, never chosen at apply time. Everything here is pure and has no AWS SDK types.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::config::environment::Environment;

pub mod addressing;

/// Tag key holding the environment name.
pub const TAG_ENV: &str = "indutech:env";
/// Tag key holding the component (`network`, `lake`, `warehouse`...).
pub const TAG_COMPONENT: &str = "indutech:component";
/// Tag key marking resources indutech manages; its value is [`MANAGED_BY_VALUE`].
pub const TAG_MANAGED_BY: &str = "managed-by";
/// Value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "indutech";

/// The lake zones, one bucket each.
pub const LAKE_ZONES: &[&str] = &["raw", "curated", "rejected", "artifacts"];

/// Ports of a Redpanda broker: Kafka API, internal RPC, admin API and metrics, schema
/// registry, HTTP proxy.
pub const BROKER_PORTS: [u16; 5] = [9092, 33145, 9644, 8081, 8082];

/// The Terraform-style key of an availability zone: `us-east-1a` -> `us_east_1a`.
pub fn zone_key(zone: &str) -> String {
    zone.replace('-', "_")
}

/// Key of the worker binary in the artifacts bucket: `worker/indutech-<sha256>`
/// (content-addressed: a new binary is a new object, an old one is never overwritten).
pub fn worker_binary_key(binary_sha256: &str) -> String {
    format!("worker/indutech-{binary_sha256}")
}

/// The consumer group of `environment`'s workers: `indutech-<env>-worker`.
pub fn group_id(environment: &Environment) -> String {
    resource_name(environment, "worker")
}

/// `host:port,...` of the cluster indutech talks to for `environment`: its
/// `redpanda.bootstrap_servers` when set, else the brokers' fixed addresses on the Kafka port.
pub fn bootstrap_servers(environment: &Environment) -> String {
    if environment.redpanda.bootstrap_servers.is_empty() {
        broker_placements(environment)
            .iter()
            .map(|p| format!("{}:{}", p.private_ip, BROKER_PORTS[0]))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        environment.redpanda.bootstrap_servers.join(",")
    }
}

/// One tunnel of the VPN connection, as the factory side needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tunnel {
    /// AWS endpoint of the tunnel (public IPv4).
    pub outside_ip: String,
    /// Inside CIDR of the tunnel (a /30 in 169.254.0.0/16), when reported.
    pub inside_cidr: Option<String>,
}

/// `indutech-<env>-<component>`, the name of a resource of `environment`.
pub fn resource_name(environment: &Environment, component: &str) -> String {
    format!("indutech-{}-{component}", environment.name)
}

/// The bucket of a lake zone: `indutech-<env>-<zone>[-<bucket_suffix>]` (at most 63 characters:
/// environment names are at most 16, suffixes at most 20).
pub fn bucket_name(environment: &Environment, zone: &str) -> String {
    match &environment.lake.bucket_suffix {
        Some(suffix) => format!("indutech-{}-{zone}-{suffix}", environment.name),
        None => resource_name(environment, zone),
    }
}

/// The state bucket: `indutech-<env>-state[-<bucket_suffix>]`. It holds the environment's lock
/// and the record of the target's gaps; it is not a resource of the platform, so destroy never
/// deletes it while it runs (only once everything else is gone, after the lock is released).
pub fn state_bucket_name(environment: &Environment) -> String {
    bucket_name(environment, "state")
}

/// The Glue database: `indutech_<env>` with `-` as `_` (Spectrum and Athena want identifiers).
pub fn glue_database_name(environment: &Environment) -> String {
    format!("indutech_{}", environment.name.replace('-', "_"))
}

/// The tags every taggable resource of `component` carries, sorted by key.
pub fn tags(environment: &Environment, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_ENV.to_owned(), environment.name.clone()),
        (TAG_COMPONENT.to_owned(), component.to_owned()),
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
    ])
}

/// One private subnet per availability zone, in zone order: the VPC split into 16 equal
/// blocks (a /16 gives /20s), the first blocks used. Leaves room for more zones later.
pub fn private_subnets(environment: &Environment) -> Vec<(String, Ipv4Net)> {
    let vpc = environment.network.vpc_cidr;
    // Validation keeps the VPC between /16 and /24, so the subnets are /20 to /28.
    let blocks =
        vpc.subnets(addressing::subnet_prefix(vpc.prefix_len())).expect("a VPC of /16 to /24 splits into 16 blocks");
    environment.network.availability_zones.iter().cloned().zip(blocks).collect()
}

/// A Redpanda broker's placement: index `i` goes to zone `i mod n` (rack = that zone) at a
/// fixed address in the zone's subnet, from `.10` upwards (AWS reserves the first four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPlacement {
    /// 0-based broker index.
    pub index: u32,
    /// Availability zone, also the Redpanda rack.
    pub availability_zone: String,
    /// Fixed private IPv4 address.
    pub private_ip: Ipv4Addr,
}

/// The placement of every Redpanda broker of `environment`, in index order.
pub fn broker_placements(environment: &Environment) -> Vec<BrokerPlacement> {
    let subnets = private_subnets(environment);
    let slots = fixed_slots(environment);
    (0..environment.redpanda.broker_count).map(|index| placement(&subnets, index, slots.broker(index))).collect()
}

/// The fixed slots of `environment`'s brokers and ec2 workers ([`addressing::FixedSlots`]).
fn fixed_slots(environment: &Environment) -> addressing::FixedSlots {
    addressing::FixedSlots::new(
        environment.network.availability_zones.len(),
        environment.redpanda.broker_count,
        environment.worker.instance_count,
    )
}

fn placement(subnets: &[(String, Ipv4Net)], index: u32, (zone, offset): (usize, u32)) -> BrokerPlacement {
    let (zone, subnet) = &subnets[zone];
    BrokerPlacement {
        index,
        availability_zone: zone.clone(),
        private_ip: Ipv4Addr::from(u32::from(subnet.network()) + offset),
    }
}

/// The placement of every worker instance (ec2 runtime), in index order: spread over the
/// zones like the brokers, at fixed addresses right after the brokers' in each zone's subnet
/// (a fixed address is what makes a relaunch after an interrupted apply impossible to
/// duplicate: AWS refuses an address in use).
pub fn worker_placements(environment: &Environment) -> Vec<BrokerPlacement> {
    let subnets = private_subnets(environment);
    let slots = fixed_slots(environment);
    (0..environment.worker.instance_count).map(|index| placement(&subnets, index, slots.worker(index))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::shipped as environment;

    #[test]
    fn names_are_deterministic() {
        let dev = environment("dev");
        assert_eq!(resource_name(&dev, "vpc"), "indutech-dev-vpc");
        assert_eq!(bucket_name(&dev, "curated"), "indutech-dev-curated");
        assert_eq!(glue_database_name(&dev), "indutech_dev");
        let prod = environment("prod");
        assert_eq!(bucket_name(&prod, "raw"), "indutech-prod-raw-prd-4f2a");
    }

    #[test]
    fn every_resource_gets_the_three_tags() {
        let dev = environment("dev");
        let tags: Vec<(String, String)> = tags(&dev, "lake").into_iter().collect();
        let want = [("indutech:component", "lake"), ("indutech:env", "dev"), ("managed-by", "indutech")];
        assert_eq!(tags, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    #[test]
    fn subnets_split_the_vpc_per_zone() {
        let prod = environment("prod");
        let subnets: Vec<(String, String)> =
            private_subnets(&prod).into_iter().map(|(zone, net)| (zone, net.to_string())).collect();
        let want = [("eu-west-3a", "10.20.0.0/20"), ("eu-west-3b", "10.20.16.0/20"), ("eu-west-3c", "10.20.32.0/20")];
        assert_eq!(subnets, want.map(|(z, n)| (z.to_owned(), n.to_owned())));
    }

    #[test]
    fn brokers_spread_over_zones_with_fixed_addresses() {
        let dev = environment("dev"); // 3 brokers over 2 zones
        let placements: Vec<(String, String)> =
            broker_placements(&dev).into_iter().map(|p| (p.availability_zone, p.private_ip.to_string())).collect();
        let want = [("us-east-1a", "10.40.0.10"), ("us-east-1b", "10.40.16.10"), ("us-east-1a", "10.40.0.11")];
        assert_eq!(placements, want.map(|(z, ip)| (z.to_owned(), ip.to_owned())));
    }
}
