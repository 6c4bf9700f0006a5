//! Rendered files checked by their real consumers: every instance's cloud-init (brokers and
//! ec2 workers, in every shipped environment) by cloud-init's own schema validation (Debian's
//! `cloud-init`), and the factory-side strongSwan configuration loaded by a real charon
//! (Debian's `strongswan-charon` and `strongswan-swanctl`) in a network namespace of its own,
//! with the secrets file written exactly as the configuration's comment tells operators to.
//! `localstack/up.sh` installs both packages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indutech::config::environment::Environment;
use indutech::model::Tunnel;

/// The shipped environments and the example sized for 100 MB/s (Tiered Storage's cluster properties).
const ENVIRONMENTS: [&str; 4] = ["dev", "staging", "prod", "examples/throughput-100mbps"];

fn environment(name: &str) -> Environment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments").join(format!("{name}.toml"));
    indutech::config::load(path.to_str().unwrap()).unwrap()
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("indutech-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn require(program: &str, package: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().unwrap().status.success();
    assert!(found, "{program} is missing: run localstack/up.sh, which installs Debian's {package}");
}

/// `cloud-init schema --config-file <file>`: (success, what it printed).
fn cloud_init_schema(file: &Path) -> (bool, String) {
    let out = Command::new("cloud-init").args(["schema", "--config-file"]).arg(file).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every shell script of a cloud-config (`write_files` starting with `#!/bin/sh`, every
/// `runcmd` string) through `sh -n` (Debian's dash, the AMIs' /bin/sh kind): (all parse, what
/// the shell said). The YAML is read by Python's yaml, which cloud-init itself uses.
fn shell_syntax(file: &Path) -> (bool, String) {
    let script = r##"
import subprocess, sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
scripts = [f["content"] for f in config.get("write_files", []) if f.get("content", "").startswith("#!/bin/sh")]
scripts += [c for c in config.get("runcmd", []) if isinstance(c, str)]
failed = 0
for text in scripts:
    out = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True)
    if out.returncode != 0:
        failed += 1
        print(out.stderr, text[:200])
print(f"{len(scripts)} scripts, {failed} do not parse")
sys.exit(1 if failed or not scripts else 0)
"##;
    let out = Command::new("python3").args(["-c", script]).arg(file).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_instance_s_cloud_init_passes_cloud_init_s_own_schema_validation() {
    require("cloud-init", "cloud-init");
    let dir = temp_dir("cloud-init");
    let mut checked = Vec::new();
    for name in ENVIRONMENTS {
        let environment = environment(name);
        for resource in indutech::desired::resources(&environment, &"0".repeat(64), &[]) {
            if resource.kind() != indutech::plan::kind::Kind::Instance {
                continue;
            }
            let text = resource.content.as_deref().unwrap_or_else(|| panic!("{} has no user data", resource.address));
            let file = dir.join(format!("{}-{}.yaml", name.replace('/', "-"), resource.address));
            std::fs::write(&file, text).unwrap();
            let (valid, said) = cloud_init_schema(&file);
            assert!(valid && said.contains("Valid cloud-config"), "{name} {}: {said}", resource.address);
            let (parsed, said) = shell_syntax(&file);
            assert!(parsed, "{name} {}: a script does not parse: {said}", resource.address);
            checked.push(format!("{name} {}", resource.address));
        }
    }
    // Brokers everywhere, ec2 workers where the environment runs them there.
    for want in [
        "dev aws_instance.broker_0",
        "prod aws_instance.broker_2",
        "staging aws_instance.worker_0",
        "examples/throughput-100mbps aws_instance.broker_4",
    ] {
        assert!(checked.iter().any(|c| c == want), "{want} not among {checked:?}");
    }
    // The validator does reject: a module key with the wrong type.
    let file = dir.join("broken.yaml");
    std::fs::write(&file, "#cloud-config\nruncmd: 5\nwrite_files: yes\n").unwrap();
    let (valid, said) = cloud_init_schema(&file);
    assert!(!valid, "cloud-init accepted a broken file: {said}");
    // And the shell rejects a script that does not parse.
    let file = dir.join("broken-script.yaml");
    std::fs::write(&file, "#cloud-config\nruncmd:\n  - |\n    if true; then echo unfinished\n").unwrap();
    let (parsed, said) = shell_syntax(&file);
    assert!(!parsed && said.contains("1 do not parse"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A charon of its own: its own strongswan.conf and vici socket under `dir`, in a new network
/// namespace (so `start_action = start` reaches nobody), killed on drop.
struct Charon {
    child: std::process::Child,
    uri: String,
}

impl Charon {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("charon.vici");
        let conf = dir.join("strongswan.conf");
        std::fs::write(
            &conf,
            format!(
                "charon {{\n  load_modular = yes\n  install_routes = no\n  plugins {{\n    include /etc/strongswan.d/charon/*.conf\n    vici {{\n      socket = unix://{}\n    }}\n  }}\n}}\n",
                socket.display()
            ),
        )
        .unwrap();
        // Root makes the namespace itself; anyone else maps to root in a user namespace.
        let root = Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0\n");
        let log = std::fs::File::create(dir.join("charon.log")).unwrap();
        let child = Command::new("unshare")
            .args(if root { vec!["--net"] } else { vec!["--net", "--map-root-user"] })
            .arg("/usr/lib/ipsec/charon")
            .env("STRONGSWAN_CONF", &conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "charon did not open its vici socket: {}",
                dir.join("charon.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, uri: format!("unix://{}", socket.display()) }
    }

    /// `swanctl <args> --uri <this charon>`: (success, stdout).
    fn swanctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("swanctl").args(args).args(["--uri", &self.uri]).stderr(Stdio::null()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The secrets file as the configuration's comment says to write it: the commented lines
/// from `ike-tunnel-N {` to their `}`, with keys filled in.
fn secrets_from_comment(conf: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in conf.lines() {
        let Some(text) = line.strip_prefix("#   ") else {
            inside = false;
            continue;
        };
        inside |= text.starts_with("ike-tunnel-") && text.ends_with('{');
        if inside {
            out.push_str(
                &text.replace("<tunnel 1 key>", "factory-key-one").replace("<tunnel 2 key>", "factory-key-two"),
            );
            out.push('\n');
            inside = text != "}";
        }
    }
    out
}

#[test]
fn the_factory_s_strongswan_configuration_and_its_secrets_load_into_a_real_charon() {
    require("swanctl", "strongswan-swanctl");
    assert!(
        Path::new("/usr/lib/ipsec/charon").exists(),
        "no charon: run localstack/up.sh (Debian's strongswan-charon)"
    );
    let tunnels = [
        Tunnel { outside_ip: "192.0.2.1".into(), inside_cidr: Some("169.254.10.0/30".into()) },
        Tunnel { outside_ip: "192.0.2.2".into(), inside_cidr: Some("169.254.11.0/30".into()) },
    ];
    // One charon at a time (its PID file is fixed): the environments in turn.
    for name in ENVIRONMENTS {
        let environment = environment(name);
        let dir = temp_dir(&format!("swanctl-{}", name.replace('/', "-")));
        let conf = indutech::desired::render::swanctl_conf(&environment, "vpn-0123", &tunnels).unwrap();
        std::fs::write(dir.join("swanctl.conf"), &conf).unwrap();
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        let secrets = secrets_from_comment(&conf);
        assert_eq!(secrets.matches("secret = ").count(), 2, "{name}: the comment shows both tunnels' entries: {conf}");
        std::fs::write(dir.join(format!("conf.d/indutech-{}.secrets", environment.name)), &secrets).unwrap();

        let charon = Charon::start(&dir);
        let file = dir.join("swanctl.conf");
        let (loaded, said) = charon.swanctl(&["--load-all", "--file", file.to_str().unwrap()]);
        assert!(loaded, "{name}: swanctl --load-all failed: {said}");
        for want in [
            "loaded ike secret 'ike-tunnel-1'",
            "loaded ike secret 'ike-tunnel-2'",
            "successfully loaded 2 connections",
        ] {
            assert!(said.contains(want), "{name}: `{want}` missing from: {said}");
        }
        let (_, conns) = charon.swanctl(&["--list-conns"]);
        assert!(conns.contains("remote: 192.0.2.1") && conns.contains("remote: 192.0.2.2"), "{name}: {conns}");
        if environment.vpn.routing == indutech::config::environment::Routing::Bgp {
            // Route-based: everything through the tunnel's XFRM interface, BGP picks routes.
            // (charon discards a connection with an option it does not know, so the load above
            // accepted the if_id settings; 5.9's listing does not show them.)
            assert!(conns.contains("local:  0.0.0.0/0") && conns.contains("remote: 0.0.0.0/0"), "{name}: {conns}");
            assert!(conf.contains("if_id_in = 1") && conf.contains("if_id_out = 2"), "{name}: {conf}");
        } else {
            let vpc = environment.network.vpc_cidr.to_string();
            assert!(conns.contains(&format!("remote: {vpc}")), "{name}: policy-based, to the VPC: {conns}");
        }
        // The keys stay in the secrets file: swanctl says which secrets it loaded, never their values.
        assert!(!said.contains("factory-key-one") && !conns.contains("factory-key"), "{name}");
        if name == "dev" {
            // The check bites: charon refuses an option it does not know.
            let bogus = dir.join("bogus.conf");
            std::fs::write(&bogus, conf.replace("dpd_delay = 10s", "dpd_delay = 10s\n    if_idd_in = 1")).unwrap();
            let (loaded, said) = charon.swanctl(&["--load-conns", "--file", bogus.to_str().unwrap()]);
            assert!(!loaded || !said.contains("successfully loaded"), "a bogus option was accepted: {said}");
        }
        drop(charon);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
