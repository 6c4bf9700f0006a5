//! `indutech graph`: the platform an environment describes, as a picture. Pure: the desired
//! resources ([`crate::desired::resources`]) and the environment, never AWS.
//!
//! What it draws ([`picture`]):
//! - every resource, in its component's group, and its dependencies (an arrow from what is
//!   needed to what needs it: the order apply creates them in);
//! - the factory side, which indutech does not create: the on-premises networks, the customer
//!   gateway device, the Active Directory forest and, with `[erp]`, the ERP's SQL Server; tied to
//!   the resources that face them (the customer gateway, the trust, the DMS source endpoint);
//! - the data path, in its own colour: producers -> topics -> worker -> curated and rejected
//!   zones -> Glue tables -> Spectrum's external schema in Redshift; with `[erp]` the SQL Server
//!   -> DMS -> raw zone -> the ERP tables' Glue tables; with Tiered Storage the brokers -> the
//!   tiered bucket.
//!
//! Three renderings: SVG laid out in-process by the `layout-rs` crate (a Sugiyama layout, no
//! Graphviz needed; it has no clusters, so a group is a fill colour, named in a legend, and each
//! box says its group), Graphviz DOT with one `cluster_` subgraph per group, and a Mermaid
//! flowchart with one subgraph per group.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::environment::{Environment, WorkerRuntime};
use crate::model::address;
use crate::plan::{Component, Resource};

/// The digest the picture gives the worker binary: a picture does not depend on the build.
const BINARY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an arrow means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `to` needs `from` (apply creates `from` first).
    Dependency,
    /// Records or rows flow from `from` to `to`.
    Data,
    /// The factory side meets AWS.
    Factory,
}

/// A box of the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A resource's address (`aws_vpc.main`), or `factory.<what>` for the factory side.
    pub id: String,
    /// What the box says (the address, or the factory thing with its address).
    pub label: String,
    /// The group: a component's name (`network`), or `factory`.
    pub group: String,
}

/// An arrow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The node it starts from.
    pub from: String,
    /// The node it points to.
    pub to: String,
    /// What it means.
    pub kind: EdgeKind,
}

/// The picture before it is drawn: nodes in group order, edges sorted and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// The environment's name.
    pub environment: String,
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every edge, both ends among the nodes.
    pub edges: Vec<Edge>,
}

/// The group of the factory side's nodes.
pub const FACTORY: &str = "factory";

/// The picture of `environment`.
pub fn picture(environment: &Environment) -> Picture {
    let resources = crate::desired::resources(environment, BINARY, &[]);
    picture_of(environment, &resources)
}

fn picture_of(environment: &Environment, resources: &[Resource]) -> Picture {
    let mut nodes: Vec<Node> = Vec::new();
    let factory = |id: &str, label: String| Node { id: format!("factory.{id}"), label, group: FACTORY.to_owned() };
    let on_premises = &environment.on_premises;
    let cidrs: Vec<String> = on_premises.cidrs.iter().map(|c| c.to_string()).collect();
    nodes.push(factory("producers", "producers (sensors, ITSM, tickets)".into()));
    nodes.push(factory("networks", format!("on-premises networks {}", cidrs.join(", "))));
    nodes.push(factory(
        "gateway",
        format!(
            "customer gateway device {} (ASN {})",
            environment.vpn.customer_gateway_ip, environment.vpn.customer_gateway_asn
        ),
    ));
    nodes.push(factory("forest", format!("AD forest {}", on_premises.ad_domain)));
    if let Some(erp) = &environment.erp {
        nodes.push(factory("erp", format!("ERP SQL Server {}:{} ({})", erp.host, erp.port, erp.database)));
    }
    for component in Component::ALL {
        for r in resources.iter().filter(|r| r.component == component) {
            nodes.push(Node { id: r.address.clone(), label: r.address.clone(), group: component.as_str().to_owned() });
        }
    }
    let exists = |id: &str| nodes.iter().any(|n| n.id == id);
    let mut edges = Vec::new();
    let mut edge = |from: &str, to: &str, kind: EdgeKind| {
        if exists(from) && exists(to) {
            edges.push(Edge { from: from.to_owned(), to: to.to_owned(), kind });
        }
    };
    // Dependencies, without those another path of dependencies already implies (a transitive
    // reduction: a broker needs its subnet, and its subnet the VPC, so no arrow from the VPC to
    // the broker).
    let by_address: BTreeMap<&str, &Resource> = resources.iter().map(|r| (r.address.as_str(), r)).collect();
    for r in resources {
        for needed in &r.depends_on {
            let implied = r.depends_on.iter().any(|other| other != needed && depends(&by_address, other, needed));
            if !implied {
                edge(needed, &r.address, EdgeKind::Dependency);
            }
        }
    }
    // The factory side.
    edge("factory.networks", "factory.gateway", EdgeKind::Factory);
    edge("factory.gateway", address::CUSTOMER_GATEWAY, EdgeKind::Factory);
    edge("factory.forest", "aws_directory_service_trust.factory", EdgeKind::Factory);
    edge("factory.producers", "factory.networks", EdgeKind::Factory);
    // The hot path.
    let workers: Vec<&str> = resources
        .iter()
        .filter(|r| match environment.worker.runtime {
            WorkerRuntime::Local => r.address.starts_with("indutech_local_worker."),
            WorkerRuntime::Ec2 => r.address.starts_with("aws_instance.worker_"),
        })
        .map(|r| r.address.as_str())
        .collect();
    let external_schema =
        resources.iter().find(|r| r.address.starts_with("aws_redshiftdata_statement.")).map(|r| r.address.as_str());
    for stream in &environment.streams {
        let topic = address::topic(&stream.name);
        edge("factory.producers", &topic, EdgeKind::Data);
        let table = format!("aws_glue_catalog_table.{}", stream.name);
        for worker in &workers {
            edge(&topic, worker, EdgeKind::Data);
        }
        edge("aws_s3_bucket.curated", &table, EdgeKind::Data);
        if let Some(schema) = external_schema {
            edge(&table, schema, EdgeKind::Data);
        }
    }
    for worker in &workers {
        edge(worker, "aws_s3_bucket.curated", EdgeKind::Data);
        edge(worker, "aws_s3_bucket.rejected", EdgeKind::Data);
    }
    // The cold path.
    if let Some(erp) = &environment.erp {
        edge("factory.erp", "aws_dms_endpoint.erp_source", EdgeKind::Factory);
        edge("factory.networks", "factory.erp", EdgeKind::Factory);
        edge("aws_dms_replication_task.erp", "aws_s3_bucket.raw", EdgeKind::Data);
        for erp_table in &erp.tables {
            let table = format!("aws_glue_catalog_table.{}", erp_table.name);
            edge("aws_s3_bucket.raw", &table, EdgeKind::Data);
            if let Some(schema) = external_schema {
                edge(&table, schema, EdgeKind::Data);
            }
        }
    }
    // Tiered Storage: the brokers' closed segments.
    for broker in resources.iter().filter(|r| r.address.starts_with("aws_instance.broker_")) {
        edge(&broker.address, &format!("aws_s3_bucket.{}", crate::model::TIERED_ZONE), EdgeKind::Data);
    }
    edges.sort();
    edges.dedup();
    Picture { environment: environment.name.clone(), nodes, edges }
}

/// Whether resource `address` needs `needed`, directly or through what it needs (resources by
/// address).
fn depends(by_address: &BTreeMap<&str, &Resource>, address: &str, needed: &str) -> bool {
    let mut stack = vec![address];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(current) = stack.pop() {
        if !seen.insert(current) {
            continue;
        }
        for next in by_address.get(current).map_or(&[][..], |r| r.depends_on.as_slice()) {
            if next == needed {
                return true;
            }
            stack.push(next);
        }
    }
    false
}

/// The groups in the order their nodes first appear, with their fill colours (RGB).
fn groups(picture: &Picture) -> Vec<(&str, u32)> {
    const PALETTE: [u32; 12] = [
        0xf2e6d9, 0xdbe9f6, 0xe2f0d9, 0xfbe5d6, 0xe8e1f3, 0xfff2cc, 0xd9f2ef, 0xf4dcdc, 0xe7e6e6, 0xdde8cb, 0xfce4ec,
        0xe0f7fa,
    ];
    let mut out: Vec<(&str, u32)> = Vec::new();
    for node in &picture.nodes {
        if !out.iter().any(|(g, _)| *g == node.group) {
            out.push((node.group.as_str(), PALETTE[out.len() % PALETTE.len()]));
        }
    }
    out
}

/// `"` and `\` escaped for a DOT or Mermaid string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT: one `cluster_<group>` subgraph per group, left to right; dependencies grey,
/// the data path blue and bold, the factory's links dashed.
pub fn dot(picture: &Picture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quoted(&format!("indutech {}", picture.environment)));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, style=filled, fontname=\"Helvetica\", fontsize=10];");
    for (group, colour) in groups(picture) {
        let _ = writeln!(out, "  subgraph {} {{", quoted(&format!("cluster_{group}")));
        let _ = writeln!(out, "    label={};", quoted(group));
        let _ = writeln!(out, "    style=filled; color=\"#{colour:06x}\";");
        for node in picture.nodes.iter().filter(|n| n.group == group) {
            let _ = writeln!(out, "    {} [label={}, fillcolor=white];", quoted(&node.id), quoted(&node.label));
        }
        let _ = writeln!(out, "  }}");
    }
    for e in &picture.edges {
        let style = match e.kind {
            EdgeKind::Dependency => "color=\"#9e9e9e\"",
            EdgeKind::Data => "color=\"#1565c0\", penwidth=2",
            EdgeKind::Factory => "style=dashed",
        };
        let _ = writeln!(out, "  {} -> {} [{style}];", quoted(&e.from), quoted(&e.to));
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart: one subgraph per group, nodes `n<i>` with their labels; dependencies
/// `-->`, the data path `==>`, the factory's links `-.->`.
pub fn mermaid(picture: &Picture) -> String {
    let ids: BTreeMap<&str, String> =
        picture.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), format!("n{i}"))).collect();
    let mut out = String::from("flowchart LR\n");
    for (group, colour) in groups(picture) {
        let _ = writeln!(out, "  subgraph {group}[{}]", quoted(group));
        for node in picture.nodes.iter().filter(|n| n.group == group) {
            let _ = writeln!(out, "    {}[{}]", ids[node.id.as_str()], quoted(&node.label.replace('"', "'")));
        }
        let _ = writeln!(out, "  end");
        let _ = writeln!(out, "  style {group} fill:#{colour:06x}");
    }
    for e in &picture.edges {
        let arrow = match e.kind {
            EdgeKind::Dependency => "-->",
            EdgeKind::Data => "==>",
            EdgeKind::Factory => "-.->",
        };
        let _ = writeln!(out, "  {} {arrow} {}", ids[e.from.as_str()], ids[e.to.as_str()]);
    }
    out
}

/// SVG, laid out left to right by `layout-rs`: a box per node filled with its group's colour and
/// saying `group: label`, a legend box per group, and the edges (dependencies grey, the data path
/// blue and wider, the factory's links dashed). One font size, so the output is the same on
/// every run.
pub fn svg(picture: &Picture) -> String {
    use layout::backends::svg::SVGWriter;
    use layout::core::base::Orientation;
    use layout::core::color::Color;
    use layout::core::style::{LineStyleKind, StyleAttr};
    use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
    use layout::topo::layout::VisualGraph;

    const FONT: usize = 14;
    let rgba = |rgb: u32| Color::new((rgb << 8) | 0xff);
    let colours: BTreeMap<&str, u32> = groups(picture).into_iter().collect();
    let mut graph = VisualGraph::new(Orientation::LeftToRight);
    let mut handles = BTreeMap::new();
    let boxed = |text: &str, fill: u32, width: usize| {
        let look = StyleAttr::new(rgba(0x424242), 1, Some(rgba(fill)), 4, FONT);
        let size = layout::core::geometry::get_size_for_str(text, FONT);
        let size = layout::core::geometry::Point::new(size.x * 0.62 + 20.0, size.y + 16.0 * width as f64);
        Element::create(ShapeKind::new_box(text), look, Orientation::LeftToRight, size)
    };
    for (group, colour) in &colours {
        // The legend: one box per group, unconnected.
        graph.add_node(boxed(&format!("group {group}"), *colour, 1));
    }
    for node in &picture.nodes {
        let text = format!("{}: {}", node.group, node.label);
        handles.insert(node.id.as_str(), graph.add_node(boxed(&text, colours[node.group.as_str()], 0)));
    }
    for e in &picture.edges {
        let (colour, width, style) = match e.kind {
            EdgeKind::Dependency => (0x9e9e9e, 1, LineStyleKind::Normal),
            EdgeKind::Data => (0x1565c0, 3, LineStyleKind::Normal),
            EdgeKind::Factory => (0x424242, 1, LineStyleKind::Dashed),
        };
        let look = StyleAttr::new(rgba(colour), width, None, 0, FONT);
        let arrow = Arrow::new(LineEndKind::None, LineEndKind::Arrow, style, "", &look, &None, &None);
        graph.add_edge(arrow, handles[e.from.as_str()], handles[e.to.as_str()]);
    }
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    writer.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::shipped as environment;

    #[test]
    fn every_resource_its_dependencies_the_factory_and_the_data_path_are_in_the_picture() {
        let prod = environment("prod");
        let resources = crate::desired::resources(&prod, BINARY, &[]);
        let picture = picture_of(&prod, &resources);
        for r in &resources {
            let node = picture.nodes.iter().find(|n| n.id == r.address).unwrap_or_else(|| panic!("{}", r.address));
            assert_eq!(node.group, r.component.as_str());
            // Every dependency is an arrow, or a path of arrows when another dependency implies it.
            for needed in &r.depends_on {
                assert!(reachable(&picture, needed, &r.address), "{needed} -> {}", r.address);
            }
        }
        let has = |from: &str, to: &str, kind: EdgeKind| {
            picture.edges.contains(&Edge { from: from.into(), to: to.into(), kind })
        };
        assert!(has("factory.gateway", "aws_customer_gateway.factory", EdgeKind::Factory));
        assert!(has("factory.forest", "aws_directory_service_trust.factory", EdgeKind::Factory));
        assert!(has("factory.erp", "aws_dms_endpoint.erp_source", EdgeKind::Factory));
        for (from, to) in [
            ("factory.producers", "kafka_topic.sensor_readings"),
            ("kafka_topic.sensor_readings", "aws_instance.worker_2"),
            ("aws_instance.worker_0", "aws_s3_bucket.curated"),
            ("aws_instance.worker_0", "aws_s3_bucket.rejected"),
            ("aws_s3_bucket.curated", "aws_glue_catalog_table.sensor_readings"),
            ("aws_glue_catalog_table.sensor_readings", "aws_redshiftdata_statement.external_schema"),
            ("aws_dms_replication_task.erp", "aws_s3_bucket.raw"),
            ("aws_s3_bucket.raw", "aws_glue_catalog_table.stations"),
        ] {
            assert!(has(from, to, EdgeKind::Data), "{from} -> {to}");
        }
        let labels: Vec<&str> = picture.nodes.iter().filter(|n| n.group == FACTORY).map(|n| n.label.as_str()).collect();
        assert!(labels.contains(&"on-premises networks 172.20.0.0/16, 172.21.0.0/16"), "{labels:?}");
        assert!(labels.contains(&"AD forest factory.indutech.local"), "{labels:?}");
        // Every edge's ends are nodes (Mermaid would otherwise invent them).
        for e in &picture.edges {
            assert!(
                picture.nodes.iter().any(|n| n.id == e.from) && picture.nodes.iter().any(|n| n.id == e.to),
                "{e:?}"
            );
        }
    }

    /// Whether a path of dependency arrows leads from `from` to `to`.
    fn reachable(picture: &Picture, from: &str, to: &str) -> bool {
        let mut stack = vec![from];
        while let Some(current) = stack.pop() {
            for e in picture.edges.iter().filter(|e| e.kind == EdgeKind::Dependency && e.from == current) {
                if e.to == to {
                    return true;
                }
                stack.push(&e.to);
            }
        }
        false
    }

    #[test]
    fn implied_dependencies_are_left_to_the_path_that_implies_them() {
        let prod = environment("prod");
        let picture = picture(&prod);
        let dependency = |from: &str, to: &str| {
            picture.edges.contains(&Edge { from: from.into(), to: to.into(), kind: EdgeKind::Dependency })
        };
        assert!(dependency("aws_vpc.main", "aws_subnet.eu_west_3a"));
        // The broker needs its subnet directly, and through the Secrets Manager endpoint (in
        // every subnet), which it also needs: one path is drawn, the direct arrow is not.
        let resources = crate::desired::resources(&prod, BINARY, &[]);
        let broker = resources.iter().find(|r| r.address == "aws_instance.broker_0").unwrap();
        assert!(broker.depends_on.iter().any(|d| d == "aws_subnet.eu_west_3a"));
        assert!(dependency("aws_subnet.eu_west_3a", "aws_vpc_endpoint.secretsmanager"));
        assert!(dependency("aws_vpc_endpoint.secretsmanager", "aws_instance.broker_0"));
        assert!(!dependency("aws_subnet.eu_west_3a", "aws_instance.broker_0"), "implied by the endpoint");
    }

    #[test]
    fn dev_s_local_worker_and_no_erp_side_without_erp() {
        let mut dev = environment("dev");
        dev.erp = None;
        let picture = picture(&dev);
        assert!(picture.edges.contains(&Edge {
            from: "kafka_topic.client_tickets".into(),
            to: "indutech_local_worker.worker".into(),
            kind: EdgeKind::Data
        }));
        assert!(!picture.nodes.iter().any(|n| n.id == "factory.erp"));
    }

    #[test]
    fn dot_is_read_back_by_a_dot_parser_and_mermaid_draws_the_data_path_bold() {
        let picture = picture(&environment("prod"));
        let text = dot(&picture);
        let mut parser = layout::gv::DotParser::new(&text);
        let graph = parser.process().unwrap_or_else(|e| panic!("the DOT does not parse: {e}\n{text}"));
        let mut builder = layout::gv::GraphBuilder::new();
        builder.visit_graph(&graph);
        assert_eq!(builder.get().num_nodes(), picture.nodes.len(), "the parser's graph has every node once");
        assert!(text.contains("subgraph \"cluster_network\""));
        assert!(text.contains("\"factory.gateway\" -> \"aws_customer_gateway.factory\" [style=dashed];"));
        // Each kind of edge with its arrow (the groups: tests/graph.rs).
        let flowchart = mermaid(&picture);
        assert_eq!(
            flowchart.matches(" ==> ").count(),
            picture.edges.iter().filter(|e| e.kind == EdgeKind::Data).count()
        );
    }
}
