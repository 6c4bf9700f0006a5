//! `indutech validate`: the real binary on real files, one test per kind of problem, each
//! asserting the exact message and position.
//!
//! Every case starts from `tests/fixtures/environment/` (a valid environment and one stream),
//! breaks one line, and checks what `validate` prints. Replacements keep line numbers stable.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/environment");

/// A copy of the fixture in a fresh temporary folder, with edits applied.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("indutech-validate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("streams")).unwrap();
        std::fs::copy(Path::new(FIXTURE).join("valid.toml"), dir.join("env.toml")).unwrap();
        std::fs::copy(Path::new(FIXTURE).join("streams/readings.toml"), dir.join("streams/readings.toml")).unwrap();
        Self { dir }
    }

    /// Replaces `from` (which must occur exactly once) by `to` in `file` (relative to the copy).
    fn edit(self, file: &str, from: &str, to: &str) -> Self {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once in {file}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        self
    }

    fn env(self, from: &str, to: &str) -> Self {
        self.edit("env.toml", from, to)
    }

    fn stream(self, from: &str, to: &str) -> Self {
        self.edit("streams/readings.toml", from, to)
    }

    /// Runs `indutech validate --env <copy>/env.toml`; returns (exit code, stdout, stderr) with
    /// the temporary folder shortened to `DIR`.
    fn validate(&self) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(["validate", "--env"])
            .arg(self.dir.join("env.toml"))
            .env_remove("INDUTECH_ENV")
            .output()
            .unwrap();
        let shorten = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(self.dir.to_str().unwrap(), "DIR");
        (out.status.code().unwrap_or(-1), shorten(&out.stdout), shorten(&out.stderr))
    }

    /// Asserts that validation passes, silently.
    fn succeeds(&self) {
        let (code, _, stderr) = self.validate();
        assert_eq!((code, stderr.as_str()), (0, ""));
    }

    /// Asserts that validation fails with exactly these problem lines, in this order.
    fn fails_with(&self, expected: &[&str]) {
        let (code, _, stderr) = self.validate();
        let n = expected.len();
        let summary = format!("DIR/env.toml: invalid, {n} problem{}", if n == 1 { "" } else { "s" });
        let mut want: Vec<&str> = expected.to_vec();
        want.push(&summary);
        assert_eq!(stderr.lines().collect::<Vec<_>>(), want, "stderr:\n{stderr}");
        assert_eq!(code, 1);
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn fixture_is_valid() {
    let (code, stdout, stderr) = Case::new().validate();
    assert_eq!(stderr, "");
    assert_eq!(stdout, "DIR/env.toml: valid (environment test, region eu-west-3, 1 streams: readings)\n");
    assert_eq!(code, 0);
}

#[test]
fn shipped_environments_are_valid() {
    for env in ["dev", "staging", "prod"] {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(["validate", "--env", env])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{env}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            stdout.trim_end(),
            format!(
                "environments/{env}.toml: valid (environment {env}, region {}, 3 streams: client_tickets, incident_events, sensor_readings)",
                if env == "dev" { "us-east-1" } else { "eu-west-3" }
            )
        );
    }
}

#[test]
fn env_accepts_a_name_resolved_under_environments() {
    let case = Case::new();
    let root = case.dir.join("project");
    std::fs::create_dir_all(root.join("environments/streams")).unwrap();
    std::fs::copy(case.dir.join("env.toml"), root.join("environments/test.toml")).unwrap();
    std::fs::copy(case.dir.join("streams/readings.toml"), root.join("environments/streams/readings.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args(["validate", "--env", "test"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("environments/test.toml: valid"));
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args(["validate", "--env", "/nonexistent/env.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: cannot validate environment `/nonexistent/env.toml`: cannot read /nonexistent/env.toml: "
        ),
        "{stderr}"
    );
}

#[test]
fn syntax_error() {
    Case::new().env("name = \"test\"", "name = \"test").fails_with(&[
        "DIR/env.toml:1:13: invalid TOML: unterminated string (no closing quote before the end of the line)",
    ]);
}

#[test]
fn unknown_key() {
    Case::new().env("routing = \"static\"", "routing = \"static\"\nroute_tables = 2").fails_with(&[
        "DIR/env.toml:18:1: vpn.route_tables: unknown key `route_tables`; expected one of: amazon_side_asn, attachment, customer_gateway_asn, customer_gateway_ip, routing, tunnel",
    ]);
}

#[test]
fn misspelled_required_key_reports_both_sides() {
    Case::new().env("vpc_cidr = ", "vpc_cdir = ").fails_with(&[
        "DIR/env.toml:5:1: network: missing required key `vpc_cidr`",
        "DIR/env.toml:6:1: network.vpc_cdir: unknown key `vpc_cdir`; expected one of: availability_zones, operations_cidrs, vpc_cidr",
    ]);
}

#[test]
fn wrong_type() {
    Case::new()
        .env("broker_count = 3", "broker_count = \"three\"")
        .fails_with(&["DIR/env.toml:28:16: redpanda.broker_count: expected an integer, found a string"]);
}

#[test]
fn cidr_syntax() {
    Case::new().env("\"10.40.0.0/16\"", "\"10.40.0.0/33\"").fails_with(&[
        "DIR/env.toml:6:12: network.vpc_cidr: `10.40.0.0/33` is not an IPv4 CIDR block such as 10.0.0.0/16",
    ]);
}

#[test]
fn cidr_overlap_between_vpc_and_on_premises() {
    Case::new().env("cidrs = [\"192.168.0.0/16\"]", "cidrs = [\"10.40.128.0/17\"]").fails_with(&[
        "DIR/env.toml:10:10: on_premises.cidrs: `10.40.128.0/17` overlaps the VPC CIDR `10.40.0.0/16` (network.vpc_cidr); the VPN could not route it",
        "DIR/env.toml:12:15: on_premises.ad_dns_ips: `192.168.10.10` is not inside any of on_premises.cidrs",
    ]);
}

#[test]
fn availability_zone_count() {
    Case::new()
        .env("[\"eu-west-3a\", \"eu-west-3b\"]", "[\"eu-west-3a\"]")
        .fails_with(&["DIR/env.toml:7:22: network.availability_zones: give 2 or 3 availability zones, found 1"]);
}

#[test]
fn availability_zone_outside_the_region() {
    Case::new().env("\"eu-west-3b\"", "\"us-east-1b\"").fails_with(&[
        "DIR/env.toml:7:37: network.availability_zones: `us-east-1b` is not an availability zone of region `eu-west-3`",
    ]);
}

#[test]
fn customer_gateway_asn_equal_to_amazon_side_asn() {
    Case::new().env("customer_gateway_asn = 65010", "customer_gateway_asn = 64512").fails_with(&[
        "DIR/env.toml:16:24: vpn.customer_gateway_asn: 64512 equals the Amazon-side ASN (vpn.amazon_side_asn = 64512); the two sides of a BGP session need different ASNs",
    ]);
}

#[test]
fn standard_ia_needs_more_than_30_days() {
    Case::new().env("standard_ia_after_days = 45", "standard_ia_after_days = 30").fails_with(&[
        "DIR/env.toml:20:26: lake.standard_ia_after_days: 30 days: objects can move to STANDARD_IA only after more than 30 days",
    ]);
}

#[test]
fn glacier_before_standard_ia() {
    Case::new().env("glacier_after_days = 180", "glacier_after_days = 40").fails_with(&[
        "DIR/env.toml:21:22: lake.glacier_after_days: 40 days: must be later than the STANDARD_IA transition (45 days)",
    ]);
}

#[test]
fn weak_tunnel_options() {
    Case::new()
        .env("routing = \"static\"", "routing = \"static\"\ntunnel = { phase1_dh_groups = [2], ike_versions = [\"ikev1\"] }")
        .fails_with(&[
            "DIR/env.toml:18:31: vpn.tunnel.phase1_dh_groups: Diffie-Hellman group 2 is not allowed; use groups 14 to 21 (RFC 8247: 22 MUST NOT be used, 23 and 24 SHOULD NOT, their prime-order subgroups being small)",
            "DIR/env.toml:18:51: vpn.tunnel.ike_versions: `ikev1` is not allowed (IKEv1 is weak); use ikev2",
        ]);
}

#[test]
fn tunnel_groups_22_to_24_are_refused() {
    Case::new().env("routing = \"static\"", "routing = \"static\"\ntunnel = { phase2_dh_groups = [14, 24] }").fails_with(
        &["DIR/env.toml:18:31: vpn.tunnel.phase2_dh_groups: Diffie-Hellman group 24 is not allowed; use groups 14 to 21 (RFC 8247: 22 MUST NOT be used, 23 and 24 SHOULD NOT, their prime-order subgroups being small)"],
    );
}

#[test]
fn on_premises_cidrs_must_be_private() {
    Case::new().env("cidrs = [\"192.168.0.0/16\"]", "cidrs = [\"192.168.0.0/16\", \"8.8.8.0/24\"]").fails_with(&[
        "DIR/env.toml:10:28: on_premises.cidrs: `8.8.8.0/24` is not a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16; or RFC 6598: 100.64.0.0/10): the VPC would route public addresses into the tunnel",
    ]);
}

#[test]
fn plain_http_endpoints_only_on_loopback() {
    Case::new()
        .env("[on_premises]", "[endpoints]\ndefault = \"http://127.0.0.1:4566\"\nglue = \"http://[::1]:5000\"\ns3 = \"http://localhost:4566/\"\n\n[on_premises]")
        .succeeds();
    Case::new().env("[on_premises]", "[endpoints]\ndefault = \"https://10.0.0.5\"\n\n[on_premises]").succeeds();
    Case::new()
        .env("[on_premises]", "[endpoints]\ndefault = \"http://10.0.0.5:4566\"\nglue = \"https://glue.internal:443\"\n\n[on_premises]")
        .fails_with(&["DIR/env.toml:10:11: endpoints.default: `http://10.0.0.5:4566` is plain HTTP to another machine: requests (signed with credentials) and data would cross the network unencrypted; use https:// (http:// is accepted for emulators on localhost or 127.0.0.0/8 only)"]);
}

#[test]
fn redpanda_version_is_a_release_number() {
    Case::new().env("broker_count = 3", "broker_count = 3\nversion = \"latest\"").fails_with(&[
        "DIR/env.toml:29:11: redpanda.version: `latest` is not a Redpanda release such as 24.2.7 (MAJOR.MINOR.PATCH)",
    ]);
}

#[test]
fn broker_instance_without_nvme() {
    Case::new().env("\"i4i.large\"", "\"m5.large\"").fails_with(&[
        "DIR/env.toml:29:17: redpanda.instance_type: `m5.large` has no local NVMe storage; use an NVMe family such as i4i, i3en or im4gn",
    ]);
}

#[test]
fn stream_unknown_type() {
    Case::new().stream("type = \"double\"", "type = \"float\"").fails_with(&[
        "DIR/streams/readings.toml:19:8: fields[2].type: unknown value `float`; expected one of: string, int, bigint, double, boolean, timestamp, date",
    ]);
}

#[test]
fn stream_partition_key_that_is_also_a_column() {
    Case::new().stream("name = \"device\"", "name = \"dt\"").fails_with(&[
        "DIR/streams/readings.toml:9:8: fields[0].name: `dt` is the partition key; a partition key must not also be a column",
    ]);
}

#[test]
fn stream_duplicate_field() {
    Case::new()
        .stream("name = \"value\"", "name = \"device\"")
        .fails_with(&["DIR/streams/readings.toml:18:8: fields[2].name: duplicate field `device`"]);
}

#[test]
fn stream_two_fields_read_one_key() {
    Case::new().stream("nullable = true", "nullable = true\nsource = \"device\"").fails_with(&[
        "DIR/streams/readings.toml:18:8: fields[2].source: fields `device` and `value` both read the input key `device`: each key feeds one field",
    ]);
}

#[test]
fn stream_bad_timestamp_format() {
    Case::new().stream("format = \"rfc3339\"", "format = \"%Y-%m-%!\"").fails_with(&[
        "DIR/streams/readings.toml:15:10: fields[1].format: `%Y-%m-%!` is not a valid strftime pattern (or `rfc3339`)",
    ]);
}

#[test]
fn override_of_an_unknown_stream() {
    Case::new()
        .env("runtime = \"local\"", "runtime = \"local\"\n\n[streams.readngs]\npartitions = 2")
        .fails_with(&["DIR/env.toml:38:10: streams.readngs: no stream `readngs` in DIR/streams"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    Case::new()
        .env("customer_gateway_asn = 65010", "customer_gateway_asn = 64512")
        .env("standard_ia_after_days = 45", "standard_ia_after_days = 10")
        .env("broker_count = 3", "broker_count = 2")
        .stream("type = \"double\"", "type = \"real\"")
        .fails_with(&[
            "DIR/env.toml:16:24: vpn.customer_gateway_asn: 64512 equals the Amazon-side ASN (vpn.amazon_side_asn = 64512); the two sides of a BGP session need different ASNs",
            "DIR/env.toml:20:26: lake.standard_ia_after_days: 10 days: objects can move to STANDARD_IA only after more than 30 days",
            "DIR/env.toml:28:16: redpanda.broker_count: 2 brokers: Redpanda needs at least 3 for a fault-tolerant Raft quorum",
            "DIR/streams/readings.toml:19:8: fields[2].type: unknown value `real`; expected one of: string, int, bigint, double, boolean, timestamp, date",
        ]);
}

#[test]
fn stream_defined_twice() {
    let case = Case::new();
    std::fs::copy(case.dir.join("streams/readings.toml"), case.dir.join("streams/readings_copy.toml")).unwrap();
    case.fails_with(&[
        "DIR/streams/readings_copy.toml:1:1: name: stream `readings` is already defined by another file in DIR/streams",
    ]);
}

#[test]
fn ec2_worker_needs_an_ami() {
    Case::new().env("runtime = \"local\"", "runtime = \"ec2\"").fails_with(&[
        "DIR/env.toml:36:11: worker.ami: required when runtime = \"ec2\": the image the worker instances boot (a systemd distribution with the AWS CLI, such as Amazon Linux 2023)",
    ]);
}

#[test]
fn ec2_worker_type_must_run_this_binary() {
    let (graviton, other) = if std::env::consts::ARCH == "x86_64" {
        ("c7g.large", "an aarch64 type, but this indutech binary is built for x86_64")
    } else {
        ("c7i.large", "an x86_64 type, but this indutech binary is built for aarch64")
    };
    let message = format!(
        "DIR/env.toml:37:17: worker.instance_type: `{graviton}` is {other} and apply deploys this very binary to the instances; choose an {arch} type (such as c7i.large) or run indutech built for {theirs}",
        arch = std::env::consts::ARCH,
        theirs = if std::env::consts::ARCH == "x86_64" { "aarch64" } else { "x86_64" },
    );
    Case::new()
        .env("runtime = \"local\"", &format!("runtime = \"ec2\"\ninstance_type = \"{graviton}\"\nami = \"ami-1\""))
        .fails_with(&[&message]);
}

#[test]
fn brokers_that_do_not_fit_their_zones_subnets() {
    // A /24 VPC gives /28 subnets: addresses +10 to +14 per zone, 12 brokers over 2 zones need +15.
    Case::new().env("vpc_cidr = \"10.40.0.0/16\"", "vpc_cidr = \"10.40.0.0/24\"").env("broker_count = 3", "broker_count = 12").fails_with(&[
        "DIR/env.toml:28:16: redpanda.broker_count: 12 brokers over 2 zones need the subnet addresses +10 to +15 in a zone, but the zones' /28 subnets (network.vpc_cidr `10.40.0.0/24` split into 16) end at +14; give the VPC a shorter prefix or use fewer instances",
    ]);
}

#[test]
fn worker_instances_that_do_not_fit_after_the_brokers() {
    // 3 brokers take +10 and +11 of each zone; 8 workers over 2 zones need +12 to +15.
    Case::new()
        .env("vpc_cidr = \"10.40.0.0/16\"", "vpc_cidr = \"10.40.0.0/24\"")
        .env("runtime = \"local\"", "runtime = \"ec2\"\nami = \"ami-0123456789abcdef0\"\ninstance_count = 8")
        .fails_with(&[
            "DIR/env.toml:38:18: worker.instance_count: 3 brokers and 8 worker instances over 2 zones need the subnet addresses +10 to +15 in a zone, but the zones' /28 subnets (network.vpc_cidr `10.40.0.0/24` split into 16) end at +14; give the VPC a shorter prefix or use fewer instances",
        ]);
}

#[test]
fn account_id_and_key_administrators_must_be_aws_identifiers() {
    Case::new()
        .env("account_id = \"123456789012\"", "account_id = \"1234-5678\"")
        .env("glacier_after_days = 180", "glacier_after_days = 180\nkey_administrators = [\"platform-admin\"]")
        .fails_with(&[
            "DIR/env.toml:3:14: account_id: `1234-5678` is not an AWS account id (12 digits)",
            "DIR/env.toml:22:22: lake.key_administrators: `platform-admin` is not an IAM principal ARN (arn:aws:iam::<account>:role/NAME, :user/NAME or :root)",
        ]);
}

#[test]
fn account_id_is_required() {
    Case::new()
        .env("account_id = \"123456789012\"\n", "")
        .fails_with(&["DIR/env.toml:1:1: missing required key `account_id`"]);
}

#[test]
fn operations_cidrs_must_be_private_and_listed_once() {
    Case::new()
        .env(
            "vpc_cidr = \"10.40.0.0/16\"",
            "vpc_cidr = \"10.40.0.0/16\"\noperations_cidrs = [\"10.40.3.0/24\", \"203.0.113.0/24\", \"10.40.3.0/24\"]",
        )
        .fails_with(&[
            "DIR/env.toml:7:37: network.operations_cidrs: `203.0.113.0/24` is not a private range (RFC 1918 or RFC 6598): admin and metrics ports stay private",
            "DIR/env.toml:7:55: network.operations_cidrs: `10.40.3.0/24` is listed twice",
        ]);
}

#[test]
fn plaintext_kafka_only_on_loopback() {
    Case::new().env("broker_count = 3", "broker_count = 3\nsecurity = \"plaintext\"").fails_with(&[
        "DIR/env.toml:29:12: redpanda.security: \"plaintext\" is only for a broker on this machine (redpanda.bootstrap_servers on loopback): anyone on the network could read, write or delete the topics; use \"sasl_ssl\"",
    ]);
    Case::new()
        .env("broker_count = 3", "broker_count = 3\nsecurity = \"plaintext\"\nbootstrap_servers = [\"10.0.0.5:9092\"]")
        .fails_with(&[
            "DIR/env.toml:29:12: redpanda.security: \"plaintext\" is only for a broker on this machine (redpanda.bootstrap_servers on loopback): anyone on the network could read, write or delete the topics; use \"sasl_ssl\"",
        ]);
    Case::new()
        .env("broker_count = 3", "broker_count = 3\nsecurity = \"plaintext\"\nbootstrap_servers = [\"localhost:9092\"]")
        .succeeds();
}

#[test]
fn brokers_of_others_over_sasl_need_named_credentials_and_indutech_s_own_take_none() {
    Case::new().env("broker_count = 3", "broker_count = 3\nbootstrap_servers = [\"kafka.example:9093\"]").fails_with(&[
        "DIR/env.toml:27:1: redpanda.credentials: brokers named in redpanda.bootstrap_servers with security \"sasl_ssl\" need [redpanda.credentials] (admin, worker: Secrets Manager secrets with username and password), or declare security = \"plaintext\" for a local broker",
    ]);
    Case::new()
        .env(
            "ami = \"ami-0123456789abcdef0\"",
            "ami = \"ami-0123456789abcdef0\"\nbootstrap_servers = [\"kafka.example:9093\"]\n\n[redpanda.credentials]\nadmin = \"kafka/admin\"\nworker = \"kafka/worker\"",
        )
        .succeeds();
    Case::new()
        .env("ami = \"ami-0123456789abcdef0\"", "ami = \"ami-0123456789abcdef0\"\n\n[redpanda.credentials]\nadmin = \"a\"")
        .fails_with(&[
            "DIR/env.toml:32:1: redpanda.credentials: missing required key `worker`",
            "DIR/env.toml:32:1: redpanda.credentials: indutech generates the credentials of the brokers it runs: remove [redpanda.credentials], or name the brokers in redpanda.bootstrap_servers",
        ]);
}

/// A valid `[erp]` section appended to the fixture (line 40 on).
const ERP: &str = "runtime = \"local\"\n\n[erp]\nhost = \"192.168.20.15\"\ndatabase = \"erp\"\ncredentials_secret = \"erp/sql-login\"\n\n[erp.tables.stations]\nsource_table = \"MonitoringStations\"\ncolumns = [\n  { name = \"station\", source = \"StationName\", type = \"string\" },\n  { name = \"opened_on\", type = \"date\" },\n]";

#[test]
fn erp_tables_are_checked_like_streams() {
    Case::new().env("runtime = \"local\"", ERP).succeeds();
    Case::new()
        .env("runtime = \"local\"", ERP)
        .env("host = \"192.168.20.15\"", "host = \"10.9.0.5\"\ninstance_class = \"db.r6i.large\"")
        .env("{ name = \"opened_on\", type = \"date\" }", "{ name = \"op\", type = \"date\" }, { name = \"station\", type = \"int\" }")
        .fails_with(&[
            "DIR/env.toml:39:8: erp.host: `10.9.0.5` is not inside any of on_premises.cidrs: the replication instance reaches the ERP through the VPN",
            "DIR/env.toml:40:18: erp.instance_class: `db.r6i.large` is not a DMS replication instance class (dms.<family>.<size>, family one of: t3, c5, c6i, c7i, r5, r6i, r7i)",
            "DIR/env.toml:48:3: erp.tables.stations.columns[1].name: `op` is the column DMS writes first (the source operation); rename this one",
            "DIR/env.toml:48:35: erp.tables.stations.columns[2].name: column `station` is declared twice",
        ]);
}

#[test]
fn erp_tables_need_columns_and_names_of_their_own() {
    Case::new()
        .env("runtime = \"local\"", ERP)
        .env("[erp.tables.stations]", "[erp.tables.readings]")
        .fails_with(&[
            "DIR/env.toml:43:13: erp.tables.readings: `readings` is also a stream's name: the ERP tables and the streams share one Glue database; rename the ERP table",
        ]);
}

/// `[redpanda.throughput]` after the fixture's AMI line (line 31 on).
const THROUGHPUT: &str =
    "ami = \"ami-0123456789abcdef0\"\n\n[redpanda.throughput]\ningress_mb_per_sec = 10\nlocal_retention_hours = 6";

#[test]
fn a_declared_throughput_prints_the_brokers_sizing_with_one_down() {
    let case = Case::new().env("ami = \"ami-0123456789abcdef0\"", THROUGHPUT);
    case.succeeds();
    let (_, stdout, _) = case.validate();
    for line in [
        "Broker sizing: 10 MB/s in after compression, 1 consumer group reading it, 6 h local retention, on 3 x i4i.large",
        "  i4i.large: 2 vCPUs, 16 GiB, 468 GB NVMe instance store, 0.781 Gbps baseline each way (98 MB/s)",
        "  per broker          3 up           2 up (one down)",
        "  network out         3.3 MB/s (3%)  5.0 MB/s (5%)",
        "  local storage       72 GB (15%)    108 GB (23%)",
        "  partition replicas  1              2",
        "    readings            10 MB/s: 3 partitions, 1 needed, ok",
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn brokers_that_cannot_carry_the_target_with_one_down_fail_naming_the_limit_and_the_fix() {
    Case::new()
        .env("ami = \"ami-0123456789abcdef0\"", THROUGHPUT)
        .env("ingress_mb_per_sec = 10\nlocal_retention_hours = 6", "ingress_mb_per_sec = 200\nlocal_retention_hours = 24\nretention_hours = 48")
        .fails_with(&[
            "DIR/env.toml:32:1: redpanda.instance_type: network: with one of 3 brokers down a broker receives 100 MB/s and sends 100 MB/s, 102% of i4i.large's 98 MB/s baseline (at most 80%): add brokers (redpanda.broker_count) or choose a larger instance type (redpanda.instance_type)",
            "DIR/env.toml:32:1: redpanda.instance_type: cores: with one of 3 brokers down a broker's 200 MB/s of traffic needs 2.0 cores at 100 MB/s a core, more than 80% of i4i.large's 2 vCPUs: add brokers (redpanda.broker_count) or choose a larger instance type (redpanda.instance_type)",
            "DIR/env.toml:32:1: redpanda.throughput.local_retention_hours: storage: with one of 3 brokers down 24 h of local retention take 8640 GB a broker, 1846% of i4i.large's 468 GB instance store (at most 80%): shorten local_retention_hours (with redpanda.tiered_storage = true the rest of retention_hours stays readable from the lake), or add brokers (redpanda.broker_count) or choose a larger instance type (redpanda.instance_type)",
            "DIR/env.toml:32:1: streams.readings.partitions: 3 partitions carry at most 60 MB/s at 20 MB/s a partition, and the stream's 200 MB/s needs 10 (at least one per core its traffic keeps busy): set partitions = 10 in [streams.readings]",
            "DIR/env.toml:35:19: redpanda.throughput.retention_hours: 48 h beyond the 24 h kept on the brokers' NVMe needs Tiered Storage: set redpanda.tiered_storage = true, or retention_hours = local_retention_hours",
        ]);
}

#[test]
fn sizing_and_tiered_storage_belong_to_brokers_indutech_runs() {
    Case::new()
        .env("ami = \"ami-0123456789abcdef0\"", "ami = \"ami-0123456789abcdef0\"\nbootstrap_servers = [\"127.0.0.1:9092\"]\nsecurity = \"plaintext\"\ntiered_storage = true\n\n[redpanda.throughput]\ningress_mb_per_sec = 10\nlocal_retention_hours = 6")
        .fails_with(&[
            "DIR/env.toml:33:18: redpanda.tiered_storage: Tiered Storage is configured on the brokers indutech runs, and these are named in redpanda.bootstrap_servers: turn it on where they run",
            "DIR/env.toml:35:1: redpanda.throughput: sizing applies to the brokers indutech runs, and these are named in redpanda.bootstrap_servers: remove [redpanda.throughput] or redpanda.bootstrap_servers",
        ]);
}

#[test]
fn the_readme_shows_the_100_mbps_example_s_sizing_as_validate_prints_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .current_dir(root)
        .args(["validate", "--env", "environments/examples/throughput-100mbps.toml"])
        .env_remove("INDUTECH_ENV")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: String = String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("    {l}\n")).collect();
    let readme = std::fs::read_to_string(Path::new(root).join("README.md")).unwrap();
    assert!(readme.contains(&printed), "README.md's sizing table differs from what validate prints:\n{printed}");
    assert!(printed.contains("the brokers carry the target with one down"), "{printed}");
}

#[test]
fn a_stream_s_part_of_the_target_needs_the_target() {
    Case::new()
        .env("runtime = \"local\"", "runtime = \"local\"\n\n[streams.readings]\ningress_mb_per_sec = 5")
        .fails_with(&["DIR/env.toml:38:10: streams.readings.ingress_mb_per_sec: a stream's part of the ingestion target needs the target: declare [redpanda.throughput]"]);
}
