//! How long the ERP's history takes to reach the lake, by path: the declared size
//! (`erp.history_gb`) over the site-to-site VPN and through the replication instance's network,
//! against shipping it on AWS Snowball devices or a dedicated Direct Connect link. Pure.
//!
//! Sources (AWS documentation, as of 2026):
//! - Site-to-Site VPN quotas: "maximum bandwidth per VPN tunnel: up to 1.25 Gbps".
//! - EC2 instance network bandwidth: the *baseline* bandwidth of each size (the "up to"
//!   figures are bursts that last minutes); DMS replication instances are EC2 instances of
//!   the same families. Below, Gbps per class size.
//! - AWS Snowball FAQ: when moving the data over the network would take more than a week,
//!   consider Snowball; a job takes about a week end to end (ordering, shipping both ways,
//!   copying, import).
//! - Direct Connect: dedicated connections of 1, 10 or 100 Gbps, weeks to provision.
//!
//! These are upper bounds: DMS's own throughput depends on the source, the tables' shapes and
//! the task's settings, and the factory's uplink may be slower than a tunnel.

use crate::config::erp::Erp;

/// Bandwidth of one VPN tunnel, bits per second (AWS Site-to-Site VPN quotas). DMS's traffic
/// to one SQL Server is one flow, which AWS hashes onto one tunnel.
pub const VPN_TUNNEL_BPS: f64 = 1.25e9;

/// When the network path takes longer than this, AWS recommends Snowball (seconds: one week).
pub const SNOWBALL_THRESHOLD_SECS: f64 = 7.0 * 86_400.0;

/// A dedicated Direct Connect link's bandwidth considered, bits per second (10 Gbps).
pub const DIRECT_CONNECT_BPS: f64 = 10e9;

/// Baseline network bandwidth of a DMS replication instance class, bits per second; None for
/// a class not in the table (EC2's documented baselines of the same family and size).
pub fn instance_class_bps(class: &str) -> Option<f64> {
    let (family, size) = class.strip_prefix("dms.")?.split_once('.')?;
    let gbps = match (family, size) {
        ("t3", "micro") => 0.064,
        ("t3", "small") => 0.128,
        ("t3", "medium") => 0.256,
        ("t3", "large") => 0.512,
        ("t3", "xlarge") => 1.024,
        ("t3", "2xlarge") => 2.048,
        ("c5" | "r5", "large") => 0.75,
        ("c5" | "r5", "xlarge") => 1.25,
        ("c5" | "r5", "2xlarge") => 2.5,
        ("c5" | "r5", "4xlarge") => 5.0,
        ("c5", "9xlarge") | ("r5", "8xlarge") => 10.0,
        ("c5" | "r5", "12xlarge") => 12.0,
        ("r5", "16xlarge") => 20.0,
        ("c5" | "r5", "24xlarge") => 25.0,
        ("c6i" | "r6i" | "c7i" | "r7i", "large") => 0.781,
        ("c6i" | "r6i" | "c7i" | "r7i", "xlarge") => 1.562,
        ("c6i" | "r6i" | "c7i" | "r7i", "2xlarge") => 3.125,
        ("c6i" | "r6i" | "c7i" | "r7i", "4xlarge") => 6.25,
        ("c6i" | "r6i" | "c7i" | "r7i", "8xlarge") => 12.5,
        ("c6i" | "r6i" | "c7i" | "r7i", "12xlarge") => 18.75,
        ("c6i" | "r6i" | "c7i" | "r7i", "16xlarge") => 25.0,
        ("c6i" | "r6i" | "c7i" | "r7i", "24xlarge") => 37.5,
        ("c6i" | "r6i" | "c7i" | "r7i", "32xlarge") => 50.0,
        _ => return None,
    };
    Some(gbps * 1e9)
}

/// One way to move the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// What it is, in words ("the VPN, one tunnel at 1.25 Gbps").
    pub label: String,
    /// Seconds at that bandwidth (None: unknown, the class is not in the table).
    pub seconds: Option<f64>,
}

/// The transfer estimate of `erp`'s history; None when no size is declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Bytes to move (`history_gb` x 10^9).
    pub bytes: f64,
    /// The network paths DMS uses, each a bound: the VPN tunnel, the instance's baseline.
    pub paths: Vec<Path>,
    /// The network transfer's time: the slowest of the paths (seconds), when all are known.
    pub network_seconds: Option<f64>,
    /// What would be faster, in words, when the network takes longer than a week.
    pub advice: Option<String>,
}

/// The estimate for `erp` (pure).
pub fn estimate(erp: &Erp) -> Option<Estimate> {
    if erp.history_gb == 0 {
        return None;
    }
    let bytes = erp.history_gb as f64 * 1e9;
    let seconds = |bps: f64| bytes * 8.0 / bps;
    let class = instance_class_bps(&erp.instance_class);
    let paths = vec![
        Path { label: "over the VPN (one tunnel, 1.25 Gbps)".into(), seconds: Some(seconds(VPN_TUNNEL_BPS)) },
        Path {
            label: match class {
                Some(bps) => format!("through {} (baseline {} Gbps)", erp.instance_class, bps / 1e9),
                None => format!("through {} (bandwidth not in indutech's table)", erp.instance_class),
            },
            seconds: class.map(seconds),
        },
    ];
    let network_seconds =
        paths.iter().map(|p| p.seconds).collect::<Option<Vec<f64>>>().map(|s| s.into_iter().fold(0.0, f64::max));
    let advice = network_seconds.filter(|s| *s > SNOWBALL_THRESHOLD_SECS).map(|_| {
        format!(
            "more than a week over the network: ship it with AWS Snowball (about a week end to end, AWS's advice \
             beyond one week), or use a {} Gbps Direct Connect link ({}), then let DMS replicate the changes",
            DIRECT_CONNECT_BPS / 1e9,
            duration(seconds(DIRECT_CONNECT_BPS))
        )
    });
    Some(Estimate { bytes, paths, network_seconds, advice })
}

/// `seconds` in words: "2 d 23 h", "8 h 53 min", "12 min".
pub fn duration(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as u64;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, _) => format!("{hours} h {mins} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// The estimate as the lines `plan` prints after the plan.
pub fn render(estimate: &Estimate) -> String {
    let mut out =
        format!("ERP history transfer: {:.0} GB (erp.history_gb), full load at best:\n", estimate.bytes / 1e9);
    for path in &estimate.paths {
        let time = path.seconds.map_or_else(|| "unknown".to_owned(), duration);
        out.push_str(&format!("  {:<52} {time}\n", path.label));
    }
    if let Some(seconds) = estimate.network_seconds {
        out.push_str(&format!("  {:<52} {}\n", "network transfer (the slower bound)", duration(seconds)));
    }
    if let Some(advice) = &estimate.advice {
        out.push_str(&format!("  Advice: {advice}.\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erp(class: &str, history_gb: u64) -> Erp {
        let mut erp = crate::config::shipped("dev").erp.expect("dev declares [erp]");
        erp.instance_class = class.into();
        erp.history_gb = history_gb;
        erp
    }

    #[test]
    fn forty_terabytes_take_weeks_through_a_small_instance_and_snowball_is_advised() {
        let e = estimate(&erp("dms.t3.medium", 40_000)).unwrap();
        // 40 TB x 8 / 1.25 Gbps = 256,000 s; / 0.256 Gbps = 1,250,000 s.
        assert_eq!(e.paths[0].seconds, Some(256_000.0));
        assert_eq!(e.paths[1].seconds, Some(1_250_000.0));
        assert_eq!(e.network_seconds, Some(1_250_000.0));
        assert_eq!(duration(256_000.0), "2 d 23 h");
        assert_eq!(duration(1_250_000.0), "14 d 11 h");
        assert!(e.advice.as_deref().unwrap().contains("Snowball"));
        // 40 TB over 10 Gbps: 32,000 s.
        assert!(e.advice.as_deref().unwrap().contains("8 h 53 min"), "{:?}", e.advice);
        let text = render(&e);
        assert!(text.contains("40000 GB") && text.contains("14 d 11 h"), "{text}");
    }

    #[test]
    fn a_week_or_less_needs_no_advice_and_unknown_classes_say_so() {
        let e = estimate(&erp("dms.r6i.xlarge", 40_000)).unwrap();
        // The VPN is the bound: 1.25 < 1.562 Gbps.
        assert_eq!(e.network_seconds, Some(256_000.0));
        assert!(e.advice.is_none());
        assert!(estimate(&erp("dms.r6i.large", 0)).is_none());
        let e = estimate(&erp("dms.r7i.48xlarge", 100)).unwrap();
        assert_eq!(e.paths[1].seconds, None);
        assert_eq!(e.network_seconds, None);
        assert!(render(&e).contains("unknown"));
        assert_eq!(duration(90.0), "2 min");
    }
}
