//! `indutech export terraform` through the binary: the checked-in `terraform/` folders are what
//! the model exports today, an invalid environment writes nothing, `dev` says what it leaves
//! out and points the providers at the test bed, and (against the bed) the export of a
//! production-shaped environment has exactly the resources `plan` wants to create from empty.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn indutech(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("INDUTECH_ENV")
        .output()
        .unwrap()
}

/// Every file under `dir`, by path relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("indutech-export-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `resource` blocks of every `.tf` file in `dir`, as `type.name`.
fn resources(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in files(dir).into_iter().filter(|f| f.extension().is_some_and(|e| e == "tf")) {
        let text = std::fs::read_to_string(dir.join(&file)).unwrap();
        let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        for block in body.blocks().filter(|b| b.identifier.as_str() == "resource") {
            let address = format!("{}.{}", block.labels[0].as_str(), block.labels[1].as_str());
            assert!(out.insert(address.clone()), "{address} twice in {}", dir.display());
        }
    }
    out
}

#[test]
fn the_checked_in_exports_are_current() {
    for env in ["staging", "prod"] {
        let out = temp_dir(env);
        let args = ["export", "terraform", "--env", env, "--out", out.to_str().unwrap()];
        let stdout = common::exited(&args, &indutech(&args), 0);
        assert!(stdout.contains("resources in"), "{stdout}");
        let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform").join(env);
        let regenerate =
            format!("terraform/{env} is stale: regenerate it with `indutech export terraform --env {env}`");
        assert_eq!(files(&out), files(&checked_in), "{regenerate}");
        for file in files(&out) {
            let want = std::fs::read_to_string(out.join(&file)).unwrap();
            let have = std::fs::read_to_string(checked_in.join(&file)).unwrap();
            assert!(want == have, "{regenerate} ({} differs)", file.display());
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// The export is what `terraform fmt` would write: checked with Terraform's own formatter where
/// a `terraform` binary is installed (HashiCorp does not publish it to Debian, PyPI or npm, so
/// the bed cannot install it); without one the test says so on stderr and checks nothing.
#[test]
fn exports_are_terraform_fmt_clean() {
    let Ok(found) = Command::new("terraform").arg("version").output() else {
        eprintln!("SKIPPED: no `terraform` binary on PATH: the exports' formatting is not checked");
        return;
    };
    assert!(found.status.success(), "terraform version failed: {}", String::from_utf8_lossy(&found.stderr));
    for env in ["dev", "staging", "prod"] {
        let out = temp_dir(&format!("fmt-{env}"));
        let args = ["export", "terraform", "--env", env, "--out", out.to_str().unwrap()];
        common::exited(&args, &indutech(&args), 0);
        let fmt = Command::new("terraform")
            .args(["fmt", "-check", "-diff", "-recursive"])
            .arg(&out)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            fmt.status.success(),
            "`terraform fmt -check` rejects the {env} export:\n{}{}",
            String::from_utf8_lossy(&fmt.stdout),
            String::from_utf8_lossy(&fmt.stderr)
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}
/// checkov (`localstack/up.sh` installs it) on the checked-in exports and on a fresh export of
/// the 100 MB/s example (Tiered Storage's bucket and the brokers' role): no failed check, and
/// every skipped one is an inline skip with its reason in a template, listed in
/// terraform/README.md (check id and resource type).
#[test]
fn checkov_fails_no_check_and_every_skip_is_written_down() {
    let checkov = common::cache_dir().join("venv-checkov/bin/checkov");
    assert!(checkov.exists(), "{} is missing: run localstack/up.sh (it installs checkov)", checkov.display());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("terraform/README.md")).unwrap();
    let example = temp_dir("ingest100");
    let exported = indutech(&[
        "export",
        "terraform",
        "--env",
        root.join("environments/examples/throughput-100mbps.toml").to_str().unwrap(),
        "--out",
        example.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    for (env, dir) in [
        ("staging", root.join("terraform/staging")),
        ("prod", root.join("terraform/prod")),
        ("the 100 MB/s example", example.clone()),
    ] {
        let out = Command::new(&checkov)
            .args(["--framework", "terraform", "--output", "json", "--skip-download", "--directory"])
            .arg(&dir)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("checkov's output is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stderr))
        });
        let report = if report.is_array() { report[0].clone() } else { report };
        let failed: Vec<String> = report["results"]["failed_checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
            .collect();
        assert!(failed.is_empty(), "checkov fails {env}:\n{}", failed.join("\n"));
        assert!(report["summary"]["passed"].as_u64().unwrap() > 100, "{env}: {}", report["summary"]);
        for skip in report["results"]["skipped_checks"].as_array().unwrap() {
            let (id, resource) = (skip["check_id"].as_str().unwrap(), skip["resource"].as_str().unwrap());
            let reason = skip["check_result"]["suppress_comment"].as_str().unwrap_or_default();
            assert!(reason.len() > 20, "{env}: {id} on {resource} is skipped without a reason");
            let kind = resource.split('.').next().unwrap();
            assert!(
                readme.lines().any(|l| l.contains(id) && l.contains(kind)),
                "{env}: {id} ({kind}) is skipped but terraform/README.md does not list it"
            );
        }
    }
    std::fs::remove_dir_all(&example).unwrap();
}

#[test]
fn a_second_export_replaces_the_first_and_keeps_what_is_not_its_own() {
    let out = temp_dir("again");
    std::fs::create_dir_all(out.join("cloud-init")).unwrap();
    std::fs::write(out.join("cloud-init/broker-9.yaml"), "stale").unwrap();
    std::fs::write(out.join("old.tf"), "resource \"aws_vpc\" \"stale\" {}").unwrap();
    std::fs::write(out.join("terraform.tfstate"), "{}").unwrap();
    let args = ["export", "terraform", "--env", "prod", "--out", out.to_str().unwrap()];
    common::exited(&args, &indutech(&args), 0);
    let written = files(&out);
    assert!(!written.contains(Path::new("old.tf")) && !written.contains(Path::new("cloud-init/broker-9.yaml")));
    assert!(written.contains(Path::new("terraform.tfstate")), "{written:?}");
    assert_eq!(written.len(), 1 + files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/prod")).len());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn an_invalid_environment_exports_nothing() {
    let (dir, path, _) =
        common::write_env("xbad", false, |t| t.replace("vpc_cidr = \"10.40.0.0/16\"", "vpc_cidr = \"10.40.0.0/33\""));
    let out = dir.join("out");
    let args = ["export", "terraform", "--env", path.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let output = indutech(&args);
    common::exited(&args, &output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}:", path.display())) && stderr.contains("network.vpc_cidr"), "{stderr}");
    assert!(!out.exists(), "an invalid environment wrote {}", out.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dev_points_the_providers_at_the_test_bed_and_says_what_it_leaves_out() {
    let out = temp_dir("dev");
    let args = ["export", "terraform", "--env", "dev", "--out", out.to_str().unwrap()];
    let output = indutech(&args);
    let stdout = common::exited(&args, &output, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("indutech_local_worker.worker is not exported"), "{stderr}");
    assert!(stdout.contains("(1 left out)"), "{stdout}");
    let providers = hcl::parse(&std::fs::read_to_string(out.join("providers.tf")).unwrap()).unwrap();
    let aws =
        providers.blocks().find(|b| b.identifier.as_str() == "provider" && b.labels[0].as_str() == "aws").unwrap();
    let endpoints = aws.body.blocks().find(|b| b.identifier.as_str() == "endpoints").unwrap();
    let endpoint = |service: &str| {
        let attribute = endpoints.body.attributes().find(|a| a.key.as_str() == service).unwrap();
        match &attribute.expr {
            hcl::Expression::String(s) => s.clone(),
            other => panic!("{service}: {other:?}"),
        }
    };
    // As environments/dev.toml says: LocalStack by default, the moto sidecar for its gaps.
    assert_eq!(endpoint("s3"), "http://127.0.0.1:4566");
    assert_eq!(endpoint("glue"), "http://127.0.0.1:5000");
    assert_eq!(endpoint("redshiftdata"), "http://127.0.0.1:5000");
    assert_eq!(endpoint("ds"), "http://127.0.0.1:5000");
    assert_eq!(endpoint("dms"), "http://127.0.0.1:5000");
    let kafka = providers.blocks().find(|b| b.labels.first().is_some_and(|l| l.as_str() == "kafka")).unwrap();
    let servers = kafka.body.attributes().find(|a| a.key.as_str() == "bootstrap_servers").unwrap();
    assert_eq!(hcl::Value::from(servers.expr.clone()), hcl::Value::from(vec!["127.0.0.1:9092"]));
    std::fs::remove_dir_all(&out).unwrap();
}

/// A copy of `prod` (ec2 workers, BGP VPN, three zones) pointed at the bed: `plan --json` there
/// starts from empty, and every change it wants is a `resource` block of the export.
#[test]
fn a_production_export_has_exactly_the_resources_plan_creates_from_empty() {
    common::bed_is_up(common::AWS_EMULATORS);
    let (dir, path, name) = common::write_env_from("prod", "xp", false, |text| {
        // The bed's account, as its STS reports it.
        text.replace("111122223333", "000000000000")
            + "\n[endpoints]\ndefault = \"http://127.0.0.1:4566\"\nglue = \"http://127.0.0.1:5000\"\n\
                redshift_data = \"http://127.0.0.1:5000\"\ndirectory_service = \"http://127.0.0.1:5000\"\n\
                dms = \"http://127.0.0.1:5000\"\ntest_credentials = true\n"
    });
    let env = path.to_str().unwrap();
    let args = ["plan", "--env", env, "--json"];
    let plan: serde_json::Value = serde_json::from_str(&common::exited(&args, &indutech(&args), 0)).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    assert!(changes.iter().all(|c| c["action"] == "create"), "{name}: not from empty: {plan:#}");
    let planned: BTreeSet<String> = changes.iter().map(|c| c["address"].as_str().unwrap().to_owned()).collect();
    let out = dir.join("terraform");
    let args = ["export", "terraform", "--env", env, "--out", out.to_str().unwrap()];
    common::exited(&args, &indutech(&args), 0);
    // Besides them, what makes the generated secrets' values (keys, certificates, passwords).
    let (companions, exported): (BTreeSet<String>, BTreeSet<String>) = resources(&out)
        .into_iter()
        .partition(|a| indutech::export::COMPANION_TYPES.iter().any(|t| a.starts_with(&format!("{t}."))));
    assert_eq!(companions.len(), 11, "{companions:?}");
    assert_eq!(exported, planned);
    assert_eq!(exported.len(), plan["resource_count"].as_u64().unwrap() as usize);
    assert!(exported.iter().any(|a| a.starts_with("aws_instance.worker_")), "{exported:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
