//! `indutech graph`: the real binary's pictures read back by parsers indutech did not write:
//! the SVG by roxmltree (an XML parser), which must find every resource's address in its text;
//! the DOT laid out by Graphviz's own `dot` (Debian's graphviz, which `localstack/up.sh`
//! installs); and the committed picture of `prod` (`docs/architecture-prod.svg`, shown by the
//! README) is what the binary draws today.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `indutech graph --env ENV --format FORMAT` on standard output.
fn graph(env: &str, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .current_dir(ROOT)
        .args(["graph", "--env", env, "--format", format])
        .env_remove("INDUTECH_ENV")
        .output()
        .unwrap();
    assert!(out.status.success(), "graph --env {env}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every text of an SVG, each `<text>` element's `<tspan>` lines joined.
fn texts(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("the SVG does not parse as XML: {e}"));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect::<Vec<_>>().join("\n"))
        .collect()
}

#[test]
fn the_svg_parses_and_names_every_resource_in_its_group_and_the_factory_side() {
    for env in ["dev", "prod", "environments/examples/throughput-100mbps.toml"] {
        let svg = graph(env, "svg");
        let texts = texts(&svg);
        let path =
            if env.ends_with(".toml") { format!("{ROOT}/{env}") } else { format!("{ROOT}/environments/{env}.toml") };
        let environment = indutech::config::load(&path).unwrap();
        let resources = indutech::desired::resources(&environment, &"0".repeat(64), &[]);
        assert!(resources.len() > 50, "{env}");
        for r in &resources {
            let want = format!("{}: {}", r.component.as_str(), r.address);
            assert!(texts.contains(&want), "{env}: no box says `{want}`");
        }
        for want in ["group factory", "group network", "group redpanda"] {
            assert!(texts.iter().any(|t| t == want), "{env}: no legend `{want}`");
        }
        let gateway = format!(
            "factory: customer gateway device {} (ASN {})",
            environment.vpn.customer_gateway_ip, environment.vpn.customer_gateway_asn
        );
        assert!(texts.contains(&gateway), "{env}: {gateway}");
        assert!(texts.iter().any(|t| t.starts_with("factory: AD forest ")), "{env}");
    }
}

#[test]
fn graphviz_lays_out_the_dot_with_every_resource_in_its_component_s_cluster() {
    let found = Command::new("sh").args(["-c", "command -v dot"]).output().unwrap().status.success();
    assert!(found, "Graphviz's dot is missing: run localstack/up.sh, which installs Debian's graphviz");
    let dot = graph("prod", "dot");
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dot refuses the DOT: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "dot warns: {}", String::from_utf8_lossy(&out.stderr));
    let svg = String::from_utf8(out.stdout).unwrap();
    // Graphviz writes each cluster as a group titled `cluster_<component>` holding its label.
    // Graphviz's SVG starts with its DOCTYPE.
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let document = roxmltree::Document::parse_with_options(&svg, options).unwrap();
    let title = |n: roxmltree::Node<'_, '_>| {
        n.children().find(|c| c.has_tag_name("title")).and_then(|t| t.text()).unwrap_or_default().to_owned()
    };
    let clusters: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("cluster"))
        .map(title)
        .collect();
    assert_eq!(clusters.len(), 11, "{clusters:?}");
    let environment = indutech::config::load(&format!("{ROOT}/environments/prod.toml")).unwrap();
    let resources = indutech::desired::resources(&environment, &"0".repeat(64), &[]);
    let nodes: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("node"))
        .map(title)
        .collect();
    for r in &resources {
        assert!(nodes.contains(&r.address), "Graphviz drew no node {}", r.address);
    }
    assert!(clusters.contains(&"cluster_migration".to_owned()) && clusters.contains(&"cluster_factory".to_owned()));
}

#[test]
fn the_committed_picture_of_prod_is_current() {
    let committed = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture-prod.svg")).unwrap();
    assert!(
        committed == graph("prod", "svg"),
        "docs/architecture-prod.svg is stale: run `cargo run -- graph --env prod --out docs/architecture-prod.svg`"
    );
}

#[test]
fn dot_and_mermaid_name_every_group_and_an_invalid_environment_writes_nothing() {
    let dot = graph("prod", "dot");
    assert!(dot.starts_with("digraph \"indutech prod\" {\n  rankdir=LR;"));
    let mermaid = graph("prod", "mermaid");
    assert!(mermaid.starts_with("flowchart LR\n"));
    for group in [
        "factory",
        "network",
        "vpn",
        "lake",
        "audit",
        "catalog",
        "warehouse",
        "redpanda",
        "directory",
        "worker",
        "migration",
    ] {
        assert!(dot.contains(&format!("subgraph \"cluster_{group}\"")), "{group}");
        assert!(mermaid.contains(&format!("subgraph {group}[\"{group}\"]")), "{group}");
    }
    let dir = std::env::temp_dir().join(format!("indutech-graph-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "name = \"BAD\"\n").unwrap();
    let out_file = dir.join("picture.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
        .args(["graph", "--env"])
        .arg(&broken)
        .arg("--out")
        .arg(&out_file)
        .env_remove("INDUTECH_ENV")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out_file.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
