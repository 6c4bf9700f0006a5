//! Capacity sizing of the Redpanda brokers over plain numbers: what a declared ingestion target
//! (`[redpanda.throughput]`) asks of each broker with every broker up and with one down, against
//! what the instance type has. Validation (`config`) and `plan`/`validate`'s table both call
//! [`size`], so they cannot disagree; it imports nothing of the crate. Pure.
//!
//! Rules (Redpanda's published sizing guidelines, docs.redpanda.com, "Sizing Guidelines",
//! self-managed 24.2 to 26.1; DESIGN.md quotes them):
//! - size for the degraded case: the cluster must carry the full throughput with one broker
//!   down, so the load of `N` brokers is spread over `N - 1`;
//! - network bandwidth = writes x replication factor + reads: a broker receives the producers'
//!   bytes and its followers' copies (`ingress x RF / brokers` in all) and sends the copies to
//!   the followers and every consumer's reads (`ingress x (RF - 1 + fan-out) / brokers`);
//! - about 100 MB/s per core ([`MB_PER_SEC_PER_CORE`]) of that traffic;
//! - at least 2 GB of memory per core, and about 2 MB per partition replica (24.2's page says
//!   4 MB for older releases; 2 MB is the current figure);
//! - local storage = ingress x RF x local retention / brokers; Tiered Storage keeps the rest in
//!   object storage when the retention exceeds the local NVMe.
//!
//! On top of the guidance, a broker is sized to at most [`HEADROOM`] of its network baseline,
//! its cores and its instance store: the rest is for catch-up reads after an outage, partition
//! moves and segment rolls.
//!
//! The instance figures ([`instance`]) are AWS's, from the Amazon EC2 Instance Types guide,
//! "Storage optimized instances" (docs.aws.amazon.com/ec2/latest/instancetypes/so.html: vCPUs,
//! memory, instance store volumes, and the network specifications' *baseline* bandwidth, since
//! "up to" figures are bursts that last minutes), as of 2026. AWS states an instance's
//! bandwidth for each direction: the in and out shares are each against it.

/// MB/s of broker traffic (in + out) one core carries (Redpanda's guidance: about 100 MB/s).
pub const MB_PER_SEC_PER_CORE: f64 = 100.0;

/// Memory a core needs at least, GiB (Redpanda: 2 GB per core).
pub const GIB_PER_CORE: f64 = 2.0;

/// Memory one partition replica needs, MiB (Redpanda: about 2 MB).
pub const MIB_PER_PARTITION_REPLICA: f64 = 2.0;

/// The share of a broker's bandwidth, cores and instance store a sized load may take.
pub const HEADROOM: f64 = 0.8;

/// An NVMe instance type's resources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instance {
    /// vCPUs (Redpanda runs one shard per vCPU).
    pub vcpus: u32,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// Instance store (local NVMe), GB (10^9 bytes), all volumes together.
    pub instance_store_gb: f64,
    /// Baseline network bandwidth, Gbps, in each direction.
    pub baseline_gbps: f64,
}

/// The resources of NVMe instance type `instance_type` (`i4i.2xlarge`); None for a type not in
/// the table (metal sizes and families without instance-store NVMe are not in it).
pub fn instance(instance_type: &str) -> Option<Instance> {
    let (family, size) = instance_type.split_once('.')?;
    // (vCPUs, memory GiB, instance store GB, baseline Gbps)
    let (vcpus, memory_gib, instance_store_gb, baseline_gbps) = match (family, size) {
        ("i4i", "large") => (2, 16.0, 468.0, 0.781),
        ("i4i", "xlarge") => (4, 32.0, 937.0, 1.875),
        ("i4i", "2xlarge") => (8, 64.0, 1875.0, 4.687),
        ("i4i", "4xlarge") => (16, 128.0, 3750.0, 9.375),
        ("i4i", "8xlarge") => (32, 256.0, 7500.0, 18.75),
        ("i4i", "12xlarge") => (48, 384.0, 11250.0, 28.125),
        ("i4i", "16xlarge") => (64, 512.0, 15000.0, 37.5),
        ("i4i", "24xlarge") => (96, 768.0, 22500.0, 56.25),
        ("i4i", "32xlarge") => (128, 1024.0, 30000.0, 75.0),
        ("i3en", "large") => (2, 16.0, 1250.0, 2.1),
        ("i3en", "xlarge") => (4, 32.0, 2500.0, 4.2),
        ("i3en", "2xlarge") => (8, 64.0, 5000.0, 8.4),
        ("i3en", "3xlarge") => (12, 96.0, 7500.0, 12.5),
        ("i3en", "6xlarge") => (24, 192.0, 15000.0, 25.0),
        ("i3en", "12xlarge") => (48, 384.0, 30000.0, 50.0),
        ("i3en", "24xlarge") => (96, 768.0, 60000.0, 100.0),
        ("i3", "large") => (2, 15.25, 475.0, 0.75),
        ("i3", "xlarge") => (4, 30.5, 950.0, 1.25),
        ("i3", "2xlarge") => (8, 61.0, 1900.0, 2.5),
        ("i3", "4xlarge") => (16, 122.0, 3800.0, 5.0),
        ("i3", "8xlarge") => (32, 244.0, 7600.0, 10.0),
        ("i3", "16xlarge") => (64, 488.0, 15200.0, 25.0),
        ("im4gn", "large") => (2, 8.0, 937.0, 3.125),
        ("im4gn", "xlarge") => (4, 16.0, 1875.0, 6.25),
        ("im4gn", "2xlarge") => (8, 32.0, 3750.0, 12.5),
        ("im4gn", "4xlarge") => (16, 64.0, 7500.0, 25.0),
        ("im4gn", "8xlarge") => (32, 128.0, 15000.0, 50.0),
        ("im4gn", "16xlarge") => (64, 256.0, 30000.0, 100.0),
        ("is4gen", "medium") => (1, 6.0, 937.0, 1.562),
        ("is4gen", "large") => (2, 12.0, 1875.0, 3.125),
        ("is4gen", "xlarge") => (4, 24.0, 3750.0, 6.25),
        ("is4gen", "2xlarge") => (8, 48.0, 7500.0, 12.5),
        ("is4gen", "4xlarge") => (16, 96.0, 15000.0, 25.0),
        ("is4gen", "8xlarge") => (32, 192.0, 30000.0, 50.0),
        _ => return None,
    };
    Some(Instance { vcpus, memory_gib, instance_store_gb, baseline_gbps })
}

/// The instance families [`instance`] knows, for error messages.
pub const SIZED_FAMILIES: &str = "i4i, i3en, i3, im4gn, is4gen";

/// One stream's part of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInput {
    /// The stream's name (`sensor_readings`).
    pub name: String,
    /// Its topic's partitions.
    pub partitions: u32,
    /// Its topic's replication factor.
    pub replication: u32,
    /// MB/s it receives, after compression (`[streams.NAME] ingress_mb_per_sec`); None: an
    /// equal part of what the declared streams leave of the total.
    pub ingress_mb_per_sec: Option<f64>,
}

/// What sizing takes: the brokers and the declared target.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// `redpanda.instance_type`.
    pub instance_type: String,
    /// `redpanda.broker_count`.
    pub brokers: u32,
    /// Total MB/s produced, after compression (10^6 bytes a second).
    pub ingress_mb_per_sec: f64,
    /// How many consumer groups read every byte (the worker is one).
    pub consumer_fan_out: u32,
    /// Hours of records kept on the brokers' NVMe.
    pub local_retention_hours: f64,
    /// Hours kept in all: beyond the local retention, in the lake's tiered bucket.
    pub retention_hours: f64,
    /// MB/s one partition carries end to end (the slowest of a Redpanda shard's part and the
    /// worker's one-thread rate on the stream).
    pub partition_mb_per_sec: f64,
    /// The streams.
    pub streams: Vec<StreamInput>,
}

/// One broker's load in one case.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerLoad {
    /// Brokers carrying the load (all, or all but one).
    pub brokers_up: u32,
    /// MB/s written to the broker's disk (its leaders' and followers' copies).
    pub disk_write_mb_per_sec: f64,
    /// MB/s received: producers and replication from other leaders.
    pub network_in_mb_per_sec: f64,
    /// MB/s sent: replication to followers and consumers' reads.
    pub network_out_mb_per_sec: f64,
    /// What comes in against the baseline bandwidth (0.5 = half); None without the instance's
    /// figures.
    pub network_in_share: Option<f64>,
    /// What goes out against the baseline bandwidth; None without the instance's figures.
    pub network_out_share: Option<f64>,
    /// GB of local storage the local retention takes (10^9 bytes).
    pub local_storage_gb: f64,
    /// Against the instance store; None without the instance's figures.
    pub storage_share: Option<f64>,
    /// Cores the traffic needs (in + out at [`MB_PER_SEC_PER_CORE`]).
    pub cores_needed: f64,
    /// Partition replicas the broker holds.
    pub partition_replicas: u32,
    /// GiB the cores and replicas need at least (2 GB a core, 2 MB a replica).
    pub memory_needed_gib: f64,
}

impl BrokerLoad {
    /// The larger of the in and out shares: AWS states the bandwidth for each direction.
    pub fn network_share(&self) -> Option<f64> {
        Some(self.network_in_share?.max(self.network_out_share?))
    }
}

/// One stream's partitions against what its part of the target needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSizing {
    /// The stream's name.
    pub name: String,
    /// MB/s it receives (declared, or its part of the rest).
    pub ingress_mb_per_sec: f64,
    /// Its partitions.
    pub partitions: u32,
    /// Partitions it needs: its MB/s over the per-partition rate, and one per core its traffic
    /// keeps busy (a partition is served by one core of each replica).
    pub partitions_needed: u32,
}

/// A limit the target exceeds: the field to change and what to do, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field the message is about (`redpanda.instance_type`, `streams.NAME.partitions`...).
    pub field: String,
    /// The limit, the figures, and what to change.
    pub message: String,
}

/// The sizing of a target on a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    /// The instance type's figures, None when it is not in the table.
    pub instance: Option<Instance>,
    /// Every broker up.
    pub normal: BrokerLoad,
    /// One broker down: what the cluster must carry.
    pub degraded: BrokerLoad,
    /// Each stream's partitions.
    pub streams: Vec<StreamSizing>,
    /// Every limit exceeded (empty: the brokers carry the target with one down).
    pub problems: Vec<Problem>,
}

/// MB/s in a Gbps (10^9 bits over 8 bits a byte over 10^6 bytes a MB).
const MB_PER_SEC_PER_GBPS: f64 = 125.0;

/// Sizes `inputs`: each broker's load with all up and with one down, each stream's partitions,
/// and every limit the degraded case exceeds.
pub fn size(inputs: &Inputs) -> Sizing {
    let instance = instance(&inputs.instance_type);
    // Each stream's MB/s: declared, or an equal part of the rest.
    let declared: f64 = inputs.streams.iter().filter_map(|s| s.ingress_mb_per_sec).sum();
    let undeclared = inputs.streams.iter().filter(|s| s.ingress_mb_per_sec.is_none()).count();
    let rest = (inputs.ingress_mb_per_sec - declared).max(0.0);
    let share = |s: &StreamInput| s.ingress_mb_per_sec.unwrap_or(rest / undeclared.max(1) as f64);
    let fan_out = f64::from(inputs.consumer_fan_out);
    // Cluster-wide MB/s: written (every replica), received and sent.
    let (mut written, mut received, mut sent, mut replicas) = (0.0, 0.0, 0.0, 0u64);
    let mut streams = Vec::new();
    for s in &inputs.streams {
        let mb = share(s);
        let rf = f64::from(s.replication);
        written += mb * rf;
        received += mb * rf;
        sent += mb * (rf - 1.0 + fan_out);
        replicas += u64::from(s.partitions) * u64::from(s.replication);
        let by_rate = (mb / inputs.partition_mb_per_sec).ceil();
        let by_cores = (mb * (2.0 * rf - 1.0 + fan_out) / MB_PER_SEC_PER_CORE).ceil();
        streams.push(StreamSizing {
            name: s.name.clone(),
            ingress_mb_per_sec: mb,
            partitions: s.partitions,
            partitions_needed: by_rate.max(by_cores).max(1.0) as u32,
        });
    }
    let retention_secs = inputs.local_retention_hours * 3600.0;
    let load = |up: u32| {
        let n = f64::from(up.max(1));
        let (disk, net_in, net_out) = (written / n, received / n, sent / n);
        let local_storage_gb = disk * retention_secs / 1000.0;
        let cores_needed = (net_in + net_out) / MB_PER_SEC_PER_CORE;
        let partition_replicas = replicas.div_ceil(u64::from(up.max(1))) as u32;
        let cores = instance.map_or(cores_needed, |i| f64::from(i.vcpus));
        BrokerLoad {
            brokers_up: up,
            disk_write_mb_per_sec: disk,
            network_in_mb_per_sec: net_in,
            network_out_mb_per_sec: net_out,
            network_in_share: instance.map(|i| net_in / (i.baseline_gbps * MB_PER_SEC_PER_GBPS)),
            network_out_share: instance.map(|i| net_out / (i.baseline_gbps * MB_PER_SEC_PER_GBPS)),
            local_storage_gb,
            storage_share: instance.map(|i| local_storage_gb / i.instance_store_gb),
            cores_needed,
            partition_replicas,
            memory_needed_gib: cores * GIB_PER_CORE
                + f64::from(partition_replicas) * MIB_PER_PARTITION_REPLICA / 1024.0,
        }
    };
    let normal = load(inputs.brokers);
    let degraded = load(inputs.brokers.saturating_sub(1));
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| problems.push(Problem { field: field.to_owned(), message });
    if declared > inputs.ingress_mb_per_sec + 1e-9 {
        problem(
            "redpanda.throughput.ingress_mb_per_sec",
            format!(
                "the streams declare {declared:.0} MB/s ([streams.NAME] ingress_mb_per_sec), more than the total {:.0} \
                 MB/s: raise the total or lower the streams' parts",
                inputs.ingress_mb_per_sec
            ),
        );
    }
    let bigger = "add brokers (redpanda.broker_count) or choose a larger instance type (redpanda.instance_type)";
    match instance {
        None => problem(
            "redpanda.instance_type",
            format!(
                "`{}` is not in indutech's sizing table ({SIZED_FAMILIES}, large to the largest non-metal size): \
                 sizing needs its vCPUs, memory, instance store and bandwidth; choose one of those types or remove \
                 [redpanda.throughput]",
                inputs.instance_type
            ),
        ),
        Some(i) => {
            let d = &degraded;
            let down = format!("with one of {} brokers down", inputs.brokers);
            let bandwidth = i.baseline_gbps * MB_PER_SEC_PER_GBPS;
            if d.network_share().unwrap_or(0.0) > HEADROOM {
                problem(
                    "redpanda.instance_type",
                    format!(
                        "network: {down} a broker receives {:.0} MB/s and sends {:.0} MB/s, {:.0}% of {}'s {:.0} \
                         MB/s baseline (at most {:.0}%): {bigger}",
                        d.network_in_mb_per_sec,
                        d.network_out_mb_per_sec,
                        d.network_share().unwrap_or(0.0) * 100.0,
                        inputs.instance_type,
                        bandwidth,
                        HEADROOM * 100.0
                    ),
                );
            }
            if d.cores_needed > f64::from(i.vcpus) * HEADROOM {
                problem(
                    "redpanda.instance_type",
                    format!(
                        "cores: {down} a broker's {:.0} MB/s of traffic needs {:.1} cores at {MB_PER_SEC_PER_CORE:.0} \
                         MB/s a core, more than {:.0}% of {}'s {} vCPUs: {bigger}",
                        d.network_in_mb_per_sec + d.network_out_mb_per_sec,
                        d.cores_needed,
                        HEADROOM * 100.0,
                        inputs.instance_type,
                        i.vcpus
                    ),
                );
            }
            if d.memory_needed_gib > i.memory_gib {
                problem(
                    "redpanda.instance_type",
                    format!(
                        "memory: {down} a broker needs {:.1} GiB ({} vCPUs at {GIB_PER_CORE:.0} GB and {} partition \
                         replicas at {MIB_PER_PARTITION_REPLICA:.0} MB), more than {}'s {:.0} GiB: fewer partitions, \
                         {bigger}",
                        d.memory_needed_gib, i.vcpus, d.partition_replicas, inputs.instance_type, i.memory_gib
                    ),
                );
            }
            if d.storage_share.unwrap_or(0.0) > HEADROOM {
                problem(
                    "redpanda.throughput.local_retention_hours",
                    format!(
                        "storage: {down} {:.0} h of local retention take {:.0} GB a broker, {:.0}% of {}'s {:.0} GB \
                         instance store (at most {:.0}%): shorten local_retention_hours (with redpanda.tiered_storage \
                         = true the rest of retention_hours stays readable from the lake), or {bigger}",
                        inputs.local_retention_hours,
                        d.local_storage_gb,
                        d.storage_share.unwrap_or(0.0) * 100.0,
                        inputs.instance_type,
                        i.instance_store_gb,
                        HEADROOM * 100.0
                    ),
                );
            }
        }
    }
    for s in &streams {
        if s.partitions < s.partitions_needed {
            problem(
                &format!("streams.{}.partitions", s.name),
                format!(
                    "{} partitions carry at most {:.0} MB/s at {:.0} MB/s a partition, and the stream's {:.0} MB/s \
                     needs {} (at least one per core its traffic keeps busy): set partitions = {} in [streams.{}]",
                    s.partitions,
                    f64::from(s.partitions) * inputs.partition_mb_per_sec,
                    inputs.partition_mb_per_sec,
                    s.ingress_mb_per_sec,
                    s.partitions_needed,
                    s.partitions_needed,
                    s.name
                ),
            );
        }
    }
    Sizing { instance, normal, degraded, streams, problems }
}

/// The sizing as the table `plan` and `validate` print: one row per measure, a column for all
/// brokers up and one for one down, then the streams' partitions.
pub fn table(inputs: &Inputs, sizing: &Sizing) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let (n, d) = (&sizing.normal, &sizing.degraded);
    let percent = |share: Option<f64>| share.map_or(String::new(), |s| format!(" ({:.0}%)", s * 100.0));
    let fan_out = inputs.consumer_fan_out;
    let _ = writeln!(
        out,
        "Broker sizing: {:.0} MB/s in after compression, {fan_out} consumer group{} reading it, {:.0} h local \
         retention{}, on {} x {}",
        inputs.ingress_mb_per_sec,
        if fan_out == 1 { "" } else { "s" },
        inputs.local_retention_hours,
        if inputs.retention_hours > inputs.local_retention_hours {
            format!(" ({:.0} h in all: the rest in the lake's tiered bucket)", inputs.retention_hours)
        } else {
            String::new()
        },
        inputs.brokers,
        inputs.instance_type
    );
    if let Some(i) = sizing.instance {
        let _ = writeln!(
            out,
            "  {}: {} vCPUs, {:.0} GiB, {:.0} GB NVMe instance store, {} Gbps baseline each way ({:.0} MB/s)",
            inputs.instance_type,
            i.vcpus,
            i.memory_gib,
            i.instance_store_gb,
            i.baseline_gbps,
            i.baseline_gbps * MB_PER_SEC_PER_GBPS
        );
    }
    let rows: Vec<(String, String, String)> = vec![
        ("per broker".into(), format!("{} up", n.brokers_up), format!("{} up (one down)", d.brokers_up)),
        (
            "disk write".into(),
            format!("{:.1} MB/s", n.disk_write_mb_per_sec),
            format!("{:.1} MB/s", d.disk_write_mb_per_sec),
        ),
        (
            "network in".into(),
            format!("{:.1} MB/s{}", n.network_in_mb_per_sec, percent(n.network_in_share)),
            format!("{:.1} MB/s{}", d.network_in_mb_per_sec, percent(d.network_in_share)),
        ),
        (
            "network out".into(),
            format!("{:.1} MB/s{}", n.network_out_mb_per_sec, percent(n.network_out_share)),
            format!("{:.1} MB/s{}", d.network_out_mb_per_sec, percent(d.network_out_share)),
        ),
        (
            "local storage".into(),
            format!("{:.0} GB{}", n.local_storage_gb, percent(n.storage_share)),
            format!("{:.0} GB{}", d.local_storage_gb, percent(d.storage_share)),
        ),
        ("cores needed".into(), cores(n.cores_needed, sizing.instance), cores(d.cores_needed, sizing.instance)),
        (
            "memory needed".into(),
            memory(n.memory_needed_gib, sizing.instance),
            memory(d.memory_needed_gib, sizing.instance),
        ),
        ("partition replicas".into(), n.partition_replicas.to_string(), d.partition_replicas.to_string()),
    ];
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (label, a, b) in &rows {
        let _ = writeln!(out, "  {label:<w0$}  {a:<w1$}  {b}");
    }
    let _ = writeln!(out, "  partitions per stream (needed at {:.0} MB/s a partition):", inputs.partition_mb_per_sec);
    for s in &sizing.streams {
        let verdict = if s.partitions >= s.partitions_needed { "ok" } else { "too few" };
        let _ = writeln!(
            out,
            "    {:<w0$}  {:.0} MB/s: {} partitions, {} needed, {verdict}",
            s.name, s.ingress_mb_per_sec, s.partitions, s.partitions_needed
        );
    }
    if sizing.problems.is_empty() {
        let _ =
            writeln!(out, "  the brokers carry the target with one down (each limit under {:.0}%)", HEADROOM * 100.0);
    }
    out
}

fn cores(needed: f64, instance: Option<Instance>) -> String {
    match instance {
        Some(i) => format!("{needed:.2} of {}", i.vcpus),
        None => format!("{needed:.2}"),
    }
}

fn memory(needed: f64, instance: Option<Instance>) -> String {
    match instance {
        Some(i) => format!("{needed:.1} of {:.0} GiB", i.memory_gib),
        None => format!("{needed:.1} GiB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, partitions: u32, mb: Option<f64>) -> StreamInput {
        StreamInput { name: name.into(), partitions, replication: 3, ingress_mb_per_sec: mb }
    }

    fn inputs(instance_type: &str, brokers: u32, streams: Vec<StreamInput>) -> Inputs {
        Inputs {
            instance_type: instance_type.into(),
            brokers,
            ingress_mb_per_sec: 100.0,
            consumer_fan_out: 2,
            local_retention_hours: 4.0,
            retention_hours: 4.0,
            partition_mb_per_sec: 20.0,
            streams,
        }
    }

    #[test]
    fn the_load_follows_the_guidance_and_the_degraded_case_spreads_it_over_one_broker_less() {
        // One stream of 100 MB/s, RF 3, read twice, on 5 brokers then 4.
        let sizing = size(&inputs("i4i.2xlarge", 5, vec![stream("s", 20, None)]));
        let (n, d) = (&sizing.normal, &sizing.degraded);
        assert_eq!((n.brokers_up, d.brokers_up), (5, 4));
        // writes x RF over the brokers; in = the same; out = copies to followers + reads.
        assert!((n.disk_write_mb_per_sec - 60.0).abs() < 1e-9);
        assert!((d.disk_write_mb_per_sec - 75.0).abs() < 1e-9);
        assert!((d.network_in_mb_per_sec - 75.0).abs() < 1e-9);
        assert!((d.network_out_mb_per_sec - 100.0).abs() < 1e-9, "(2 + 2) x 100 / 4");
        // 4.687 Gbps = 585.9 MB/s each way; the larger direction counts.
        assert!((d.network_share().unwrap() - 100.0 / 585.875).abs() < 1e-6);
        // 75 MB/s x 4 h = 1,080 GB of the 1,875 GB store.
        assert!((d.local_storage_gb - 1080.0).abs() < 1e-6);
        assert!((d.cores_needed - 1.75).abs() < 1e-9);
        // 60 replicas over 4 brokers; 8 vCPUs x 2 GB + 15 x 2 MB.
        assert_eq!(d.partition_replicas, 15);
        assert!((d.memory_needed_gib - (16.0 + 30.0 / 1024.0)).abs() < 1e-9);
        assert_eq!(sizing.problems, vec![]);
        assert_eq!(
            sizing.streams[0].partitions_needed, 7,
            "100 / 20 = 5 by rate; 100 x (2 x 3 - 1 + 2) / 100 = 7 by cores"
        );
    }

    #[test]
    fn partitions_needed_take_the_larger_of_the_rate_and_the_cores() {
        let sizing = size(&inputs("i4i.4xlarge", 5, vec![stream("hot", 4, Some(70.0)), stream("cold", 1, None)]));
        // hot: 70 / 20 = 4 by rate; 70 x (2 x 3 - 1 + 2) / 100 = 4.9 -> 5 cores.
        assert_eq!(sizing.streams[0].partitions_needed, 5);
        // cold: the remaining 30 MB/s: 2 by rate, 30 x 7 / 100 = 2.1 -> 3 by cores.
        assert_eq!(sizing.streams[1].ingress_mb_per_sec, 30.0);
        assert_eq!(sizing.streams[1].partitions_needed, 3);
        let fields: Vec<&str> = sizing.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["streams.hot.partitions", "streams.cold.partitions"]);
        assert!(sizing.problems[0].message.contains("set partitions = 5 in [streams.hot]"), "{:?}", sizing.problems);
    }

    #[test]
    fn a_cluster_too_small_for_the_degraded_case_names_each_limit_and_what_to_change() {
        // 3 x i4i.large for 100 MB/s: 2 brokers left carry 150 in and 200 out each.
        let mut small = inputs("i4i.large", 3, vec![stream("s", 64, None)]);
        small.local_retention_hours = 24.0;
        let sizing = size(&small);
        let messages: Vec<String> = sizing.problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(
            messages[0].starts_with("redpanda.instance_type: network: with one of 3 brokers down"),
            "{messages:#?}"
        );
        assert!(messages[0].contains("add brokers (redpanda.broker_count)"));
        assert!(messages[1].starts_with("redpanda.instance_type: cores:"), "{messages:#?}");
        assert!(messages[2].starts_with("redpanda.throughput.local_retention_hours: storage:"), "{messages:#?}");
        assert!(messages[2].contains("redpanda.tiered_storage = true"));
        // All up, the same cluster is still named in the table, with its shares.
        let text = table(&small, &sizing);
        assert!(text.contains("2 up (one down)"), "{text}");
        assert!(!text.contains("carry the target"), "{text}");
    }

    #[test]
    fn memory_counts_partition_replicas() {
        // 3 x is4gen.medium (1 vCPU, 6 GiB): 2 GB for the core leaves room for about 2,000 replicas.
        let mut many = inputs("is4gen.medium", 3, vec![stream("s", 1500, None)]);
        many.ingress_mb_per_sec = 1.0;
        let sizing = size(&many);
        assert_eq!(sizing.degraded.partition_replicas, 2250);
        assert!(
            sizing.problems.iter().any(|p| p.message.starts_with("memory:") && p.message.contains("2250 partition"))
        );
    }

    #[test]
    fn an_unknown_type_and_an_overdeclared_total_are_problems() {
        let sizing = size(&inputs("m6id.large", 3, vec![stream("a", 10, Some(80.0)), stream("b", 10, Some(40.0))]));
        let fields: Vec<&str> = sizing.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["redpanda.throughput.ingress_mb_per_sec", "redpanda.instance_type"]);
        assert!(sizing.problems[1].message.contains("not in indutech's sizing table"));
        assert_eq!(sizing.normal.network_share(), None);
        // Without a table entry the table still prints the loads.
        let text = table(&inputs("m6id.large", 3, vec![]), &sizing);
        assert!(text.contains("disk write"), "{text}");
    }

    #[test]
    fn the_table_knows_every_size_of_the_families_it_names() {
        for family in SIZED_FAMILIES.split(", ") {
            assert!(instance(&format!("{family}.xlarge")).is_some(), "{family}");
        }
        let i = instance("i3en.6xlarge").unwrap();
        assert_eq!((i.vcpus, i.instance_store_gb, i.baseline_gbps), (24, 15000.0, 25.0));
        assert_eq!(instance("i4i.metal"), None);
        assert_eq!(instance("i4i"), None);
    }
}
