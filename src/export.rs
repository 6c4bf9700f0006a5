//! Terraform export: the platform `plan` would create from empty, as a Terraform configuration
//! (AWS provider, plus the `Mongey/kafka` provider for the topics). Pure: it reads the model
//! ([`crate::desired::resources`]), never AWS.
//!
//! The `.tf` files are rendered with the tera templates of `templates/terraform/`, one per
//! component plus `providers.tf`, `variables.tf` and `outputs.tf`; the instances' cloud-init
//! files (`cloud-init/*.yaml`) are the ones `apply` sends, rendered from `templates/redpanda/`
//! and `templates/worker/`. Every resource keeps its address (`aws_s3_bucket.raw` is
//! `resource "aws_s3_bucket" "raw"`), name, tags and settings; a dependency of the model is
//! either a reference in the resource's arguments or listed in its `depends_on`.
//!
//! What differs, on purpose:
//! - secrets are variables (`sensitive = true`, no default), never values: the directory's admin
//!   password and the trust password, which `apply` generates into Secrets Manager;
//! - the worker binary is a variable (`worker_binary`, a path): its SHA-256 names the artifact
//!   object and fills the placeholder [`WORKER_BINARY_PLACEHOLDER`] of `cloud-init/worker.yaml`,
//!   so the export does not change with every build of indutech;
//! - the `local` worker runtime (`indutech_local_worker`, `dev` only) is a process on this
//!   machine, not a cloud resource: it is left out and reported in [`Export::omitted`].
//!
//! Why templates and not hcl-rs for writing: the export must be `terraform fmt`-clean
//! (checked by `tests/export.rs` and CI), and `terraform fmt` aligns the `=` of consecutive
//! single-line attributes. hcl-rs 0.20's formatter (`hcl::format::to_string`) writes one space
//! before every `=` and has no alignment option (tried on this export's blocks), so its output
//! would need a second, hand-written layout pass over every body: the templates already hold
//! that layout, and values go through [`hcl`] (HCL's escapes, the same layout rules). hcl-rs is
//! used where it fits, to read the export back in the tests (every block parsed, every literal
//! compared with the model).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::config::environment::Environment;
use crate::plan::kind::Kind;
use crate::plan::{Component, Resource, kind_of};

/// Stands for the worker binary's SHA-256 (64 hex digits) in the exported worker cloud-init;
/// `worker.tf` replaces it with `filesha256(var.worker_binary)`.
pub const WORKER_BINARY_PLACEHOLDER: &str = "@WORKER_BINARY_SHA256@";

/// Macros the templates import (`{% import "macros.tera" as macros %}`), not written as files.
const MACROS: &[(&str, &str)] = &[("macros.tera", include_str!("../templates/terraform/macros.tera"))];

/// The `.tf` files and their templates, in the order they are written.
const TEMPLATES: &[(&str, &str)] = &[
    ("providers.tf", include_str!("../templates/terraform/providers.tf.tera")),
    ("variables.tf", include_str!("../templates/terraform/variables.tf.tera")),
    ("network.tf", include_str!("../templates/terraform/network.tf.tera")),
    ("vpn.tf", include_str!("../templates/terraform/vpn.tf.tera")),
    ("lake.tf", include_str!("../templates/terraform/lake.tf.tera")),
    ("audit.tf", include_str!("../templates/terraform/audit.tf.tera")),
    ("catalog.tf", include_str!("../templates/terraform/catalog.tf.tera")),
    ("warehouse.tf", include_str!("../templates/terraform/warehouse.tf.tera")),
    ("redpanda.tf", include_str!("../templates/terraform/redpanda.tf.tera")),
    ("directory.tf", include_str!("../templates/terraform/directory.tf.tera")),
    ("worker.tf", include_str!("../templates/terraform/worker.tf.tera")),
    ("migration.tf", include_str!("../templates/terraform/migration.tf.tera")),
    ("outputs.tf", include_str!("../templates/terraform/outputs.tf.tera")),
];

/// Why a resource type has no Terraform counterpart, in words for the user (`{env}` stands for
/// the environment's name); None for a type the templates write. Exhaustive: a new type does
/// not compile until it is said here whether the export writes it.
fn not_exported(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::LocalWorker => Some(
            "the worker's `local` runtime is a process on this machine, not a cloud resource: run `indutech worker \
             --env {env}` beside Terraform",
        ),
        Kind::S3Bucket
        | Kind::S3BucketLifecycle
        | Kind::S3BucketPolicy
        | Kind::S3BucketPublicAccessBlock
        | Kind::S3BucketEncryption
        | Kind::S3BucketVersioning
        | Kind::S3BucketLogging
        | Kind::S3Object
        | Kind::KmsKey
        | Kind::KmsAlias
        | Kind::LogGroup
        | Kind::GlueDatabase
        | Kind::GlueTable
        | Kind::Vpc
        | Kind::Subnet
        | Kind::RouteTable
        | Kind::RouteTableAssociation
        | Kind::SecurityGroup
        | Kind::DefaultSecurityGroup
        | Kind::VpcEndpoint
        | Kind::FlowLog
        | Kind::CustomerGateway
        | Kind::VpnGateway
        | Kind::TransitGateway
        | Kind::TransitGatewayVpcAttachment
        | Kind::TransitGatewayRoute
        | Kind::VpnGatewayAttachment
        | Kind::VpnConnection
        | Kind::VpnConnectionRoute
        | Kind::Route
        | Kind::VpnGatewayRoutePropagation
        | Kind::IamRole
        | Kind::IamRolePolicy
        | Kind::IamInstanceProfile
        | Kind::RedshiftSubnetGroup
        | Kind::RedshiftCluster
        | Kind::RedshiftDataStatement
        | Kind::RedshiftLogging
        | Kind::RedshiftParameterGroup
        | Kind::Instance
        | Kind::DmsSubnetGroup
        | Kind::DmsInstance
        | Kind::DmsEndpoint
        | Kind::DmsS3Endpoint
        | Kind::DmsTask
        | Kind::Secret
        | Kind::Directory
        | Kind::DirectoryTrust
        | Kind::KafkaTopic => None,
    }
}

/// Terraform's names for the `[endpoints]` services (`provider "aws" { endpoints { ... } }`).
const ENDPOINT_NAMES: &[(&str, &str)] = &[
    ("directory_service", "ds"),
    ("dms", "dms"),
    ("ec2", "ec2"),
    ("glue", "glue"),
    ("iam", "iam"),
    ("kms", "kms"),
    ("redshift", "redshift"),
    ("redshift_data", "redshiftdata"),
    ("s3", "s3"),
    ("secrets_manager", "secretsmanager"),
    ("ssm", "ssm"),
    ("sts", "sts"),
];

/// One file of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// Path relative to the export folder, `/`-separated (`network.tf`, `cloud-init/worker.yaml`).
    pub path: String,
    /// UTF-8 text.
    pub text: String,
}

/// Terraform resources that make a secret's value (keys, certificates, passwords and the
/// secret's version), which indutech's provider generates inside the secret's own create
/// ([`crate::provider::secrets`]): the export writes them beside the secret, outside the
/// one-to-one mapping of the model's resources.
pub const COMPANION_TYPES: [&str; 6] = [
    "tls_private_key",
    "tls_self_signed_cert",
    "tls_cert_request",
    "tls_locally_signed_cert",
    "random_password",
    "aws_secretsmanager_secret_version",
];

/// A rendered Terraform configuration.
#[derive(Debug, Clone)]
pub struct Export {
    /// The files, `.tf` first, then `cloud-init/`.
    pub files: Vec<File>,
    /// Number of `resource` blocks written (= the model's resources minus `omitted`).
    pub resources: usize,
    /// Addresses of the model's resources that have no Terraform counterpart, with why.
    pub omitted: Vec<(String, String)>,
}

/// Renders `environment`'s platform as a Terraform configuration.
///
/// Errors: a template fails to render or leaves a resource out (a bug in `templates/terraform/`,
/// reported with the missing address).
pub fn terraform(environment: &Environment) -> anyhow::Result<Export> {
    let resources = crate::desired::resources(environment, WORKER_BINARY_PLACEHOLDER, &[]);
    let mut omitted = Vec::new();
    let mut exported = Vec::new();
    for r in &resources {
        match not_exported(r.kind()) {
            Some(why) => omitted.push((r.address.clone(), why.replace("{env}", &environment.name))),
            None => exported.push(r),
        }
    }
    let tera = engine()?;
    let context = tera::Context::from_serialize(context(environment, &exported, &omitted))?;
    let mut files = Vec::new();
    for (file, _) in TEMPLATES {
        let text = tera.render(file, &context).map_err(|e| render_error(file, e))?;
        let text = tidy(&text);
        if !text.is_empty() {
            files.push(File { path: (*file).to_owned(), text });
        }
    }
    for r in &exported {
        let header = format!("resource \"{}\" \"{}\" {{", r.kind(), label(r));
        let found = files.iter().map(|f| f.text.matches(&header).count()).sum::<usize>();
        if found != 1 {
            bail!(
                "templates/terraform/ render {} {found} times instead of once (an indutech bug: the model has a \
                 resource the templates do not handle)",
                r.address
            );
        }
    }
    let written = files
        .iter()
        .flat_map(|f| f.text.lines())
        .filter(|l| {
            l.starts_with("resource \"") && !COMPANION_TYPES.iter().any(|t| l.starts_with(&format!("resource \"{t}\"")))
        })
        .count();
    if written != exported.len() {
        bail!("templates/terraform/ render {written} resources, the model has {} (an indutech bug)", exported.len());
    }
    for placement in crate::model::broker_placements(environment) {
        let text = crate::desired::render::broker_cloud_init(environment, &placement)?;
        files.push(File { path: format!("cloud-init/broker-{}.yaml", placement.index), text });
    }
    if exported.iter().any(|r| r.kind() == Kind::S3Object) {
        let text = crate::desired::render::worker_cloud_init(environment, WORKER_BINARY_PLACEHOLDER)?;
        files.push(File { path: "cloud-init/worker.yaml".into(), text });
    }
    Ok(Export { files, resources: exported.len(), omitted })
}

fn render_error(file: &str, error: tera::Error) -> anyhow::Error {
    let mut message = format!("rendering templates/terraform/{file}.tera");
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
    }
    anyhow::anyhow!(message)
}

/// The resource's Terraform name, the part of the address after the type.
fn label(r: &Resource) -> &str {
    r.address.split_once('.').map_or("", |(_, label)| label)
}

/// At most one blank line in a row, none at the start, one newline at the end.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = true;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// What the templates see: `env` (name, region, provider settings), `resources` (address -> resource:
/// `type`, `label`, `name`, `attributes`, `depends_on`), `by_type` (component -> type -> resources
/// in model order), `omitted` (address, why), and a few values computed here rather than in tera.
fn context(environment: &Environment, resources: &[&Resource], omitted: &[(String, String)]) -> Value {
    let mut by_address = BTreeMap::new();
    let mut by_type: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> =
        Component::ALL.iter().map(|c| (c.as_str(), BTreeMap::new())).collect();
    for r in resources {
        let value = json!({
            "address": r.address,
            "type": r.kind().as_str(),
            "label": label(r),
            "name": r.name,
            "attributes": r.attributes,
            "depends_on": r.depends_on,
        });
        by_type.entry(r.component.as_str()).or_default().entry(r.kind().as_str()).or_default().push(value.clone());
        by_address.insert(r.address.clone(), value);
    }
    let endpoints: BTreeMap<&str, String> = ENDPOINT_NAMES
        .iter()
        .filter_map(|(ours, terraform)| Some((*terraform, environment.endpoints.for_service(ours)?.to_owned())))
        .collect();
    let w = &environment.warehouse;
    // The statement's IAM role is the role's ARN, known only once Terraform created it.
    let sql = resources
        .iter()
        .find(|r| r.kind() == Kind::RedshiftDataStatement)
        .and_then(|r| r.content.as_deref())
        .map(|sql| hcl(&json!(sql), 0).replace(crate::plan::ROLE_ARN_PLACEHOLDER, "${aws_iam_role.spectrum.arn}"));
    let bootstrap: Vec<String> = crate::model::bootstrap_servers(environment).split(',').map(str::to_owned).collect();
    let workers: Vec<String> = resources
        .iter()
        .filter(|r| r.component == Component::Worker && r.kind() == Kind::Instance)
        .filter_map(|r| Some(format!("{}:{}", r.attributes["private_ip"].as_str()?, environment.worker.metrics_port)))
        .collect();
    json!({
        "env": {
            "name": environment.name,
            "region": environment.region,
            "account_id": environment.account_id,
            "file": environment.file.file_name().map(|f| f.to_string_lossy()),
            "endpoints": endpoints,
            "test_credentials": environment.endpoints.test_credentials,
            "skip_final_snapshot": w.skip_final_snapshot,
            "final_snapshot": format!("{}-final", crate::model::cluster_identifier(environment)),
            "kafka_bootstrap_servers": bootstrap,
            "own_brokers": environment.redpanda.bootstrap_servers.is_empty(),
            "kafka_admin_secret": environment.redpanda.credentials.as_ref().map(|c| c.admin.clone()),
            "kafka_generated": resources.iter().any(|r| r.address == "aws_secretsmanager_secret.kafka_ca"),
            "worker_metrics": workers,
            "placeholder": WORKER_BINARY_PLACEHOLDER,
        },
        "resources": by_address,
        "by_type": by_type,
        "external_schema_sql": sql,
        "omitted": omitted.iter().map(|(address, why)| json!({"address": address, "why": why})).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

fn engine() -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_templates(MACROS.iter().chain(TEMPLATES).copied()).map_err(|e| render_error("*", e))?;
    tera.register_filter("hcl", |value: &Value, args: &HashMap<String, Value>| {
        let indent = args.get("indent").and_then(Value::as_u64).unwrap_or(1) as usize;
        Ok(Value::String(hcl(value, indent)))
    });
    tera.register_filter("depends_on", depends_on);
    tera.register_filter("pad", |value: &Value, args: &HashMap<String, Value>| {
        let width = args.get("width").and_then(Value::as_u64).unwrap_or(0) as usize;
        let text = value.as_str().ok_or_else(|| tera::Error::msg("pad: expects a string"))?;
        Ok(Value::String(format!("{text:<width$}")))
    });
    Ok(tera)
}

/// `{{ r | depends_on(except=[...]) }}`: a `depends_on = [...]` argument (after a blank line)
/// listing the resource's model dependencies that the template does not already reference (a
/// generated Kafka secret as its version: what needs it needs its value);
/// `except` holds the referenced types (`aws_vpc`) or addresses (`aws_vpc.main`). Empty when
/// every dependency is referenced.
fn depends_on(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let except: Vec<&str> =
        args.get("except").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let needs: Vec<String> = value
        .get("depends_on")
        .and_then(Value::as_array)
        .ok_or_else(|| tera::Error::msg("depends_on: expects a resource"))?
        .iter()
        .filter_map(Value::as_str)
        .filter(|address| !except.iter().any(|e| e == address || *e == kind_of(address)))
        // What needs a generated secret needs its value: in Terraform, the secret's version.
        .map(|address| match address.strip_prefix("aws_secretsmanager_secret.kafka_") {
            Some(label) => format!("aws_secretsmanager_secret_version.kafka_{label}"),
            None => address.to_owned(),
        })
        .collect();
    let needs: Vec<&str> = needs.iter().map(String::as_str).collect();
    Ok(Value::String(match needs.as_slice() {
        [] => String::new(),
        [one] => format!("\n\n  depends_on = [{one}]"),
        many => format!("\n\n  depends_on = [\n{}  ]", many.iter().map(|a| format!("    {a},\n")).collect::<String>()),
    }))
}

/// `value` as an HCL expression; nested lines are indented by `indent` + 1 levels of two spaces
/// (the value itself starts after `name = ` at level `indent`). Strings are quoted with HCL's
/// escapes, `${` and `%{` included (an IAM policy variable stays literal); object keys that are not
/// identifiers are quoted; keys of single-line entries are aligned like `terraform fmt` does.
pub fn hcl(value: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_hcl(value, indent, &mut out);
    out
}

/// Arrays of scalars longer than this (characters) are written one item per line.
const INLINE_ARRAY_WIDTH: usize = 80;

fn write_hcl(value: &Value, indent: usize, out: &mut String) {
    let pad = |level: usize| "  ".repeat(level);
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => quote(s, out),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let texts: Vec<String> = items.iter().map(|item| hcl(item, indent)).collect();
            let inline = texts.iter().map(|t| t.len() + 2).sum::<usize>();
            if inline <= INLINE_ARRAY_WIDTH {
                out.push('[');
                out.push_str(&texts.join(", "));
                out.push(']');
            } else {
                out.push_str("[\n");
                for text in texts {
                    out.push_str(&format!("{}{text},\n", pad(indent + 1)));
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for item in items {
                out.push_str(&pad(indent + 1));
                write_hcl(item, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let entries: Vec<(String, String)> = map
                .iter()
                .map(|(k, v)| {
                    let mut key = String::new();
                    if is_identifier(k) {
                        key.push_str(k);
                    } else {
                        quote(k, &mut key);
                    }
                    (key, hcl(v, indent + 1))
                })
                .collect();
            out.push_str("{\n");
            // Align the `=` of each run of single-line entries; a multi-line one ends the run.
            let mut i = 0;
            while i < entries.len() {
                let run_end =
                    (i..entries.len()).find(|&j| entries[j].1.contains('\n')).map_or(entries.len(), |j| j.max(i + 1));
                let width = entries[i..run_end].iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                for (key, text) in &entries[i..run_end] {
                    let spaces = if text.contains('\n') { 1 } else { width - key.chars().count() + 1 };
                    out.push_str(&format!("{}{key}{}= {text}\n", pad(indent + 1), " ".repeat(spaces)));
                }
                i = run_end;
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(s, "null" | "true" | "false")
}

/// A quoted HCL string: JSON-like escapes, plus `$${` and `%%{` so that nothing interpolates.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes `export` into `dir`: removes the `*.tf` files and the `cloud-init/` folder a previous
/// export left there (nothing else: `.terraform/`, state and READMEs stay), then writes every
/// file. Returns the paths written.
///
/// Errors: a file cannot be removed or written (the path is in the message).
pub fn write(export: &Export, dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tf") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let cloud_init = dir.join("cloud-init");
    if cloud_init.exists() {
        std::fs::remove_dir_all(&cloud_init).with_context(|| format!("removing {}", cloud_init.display()))?;
    }
    let mut written = Vec::new();
    for file in &export.files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use hcl::eval::Evaluate as _;
    use hcl::{Block, Body, Expression, ObjectKey, TemplateExpr, TraversalOperator};

    use super::*;
    use crate::config::shipped as environment;
    use crate::plan::{Action, Observed};

    const BINARY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// The shipped environments, and `dev` (static routes) and `prod` (BGP) on a transit gateway.
    fn environments() -> Vec<(String, Environment)> {
        let mut out: Vec<(String, Environment)> =
            ["dev", "staging", "prod"].into_iter().map(|n| (n.to_owned(), environment(n))).collect();
        for name in ["dev", "prod"] {
            let mut env = environment(name);
            env.vpn.attachment = crate::config::environment::Attachment::TransitGateway;
            out.push((format!("{name} on a transit gateway"), env));
        }
        // Tiered Storage: the lake's tiered bucket and the brokers' role, with and without the
        // SASL secrets that otherwise come with the role.
        let sized = environment("examples/throughput-100mbps");
        let mut plaintext = sized.clone();
        plaintext.redpanda.security = crate::config::environment::KafkaSecurity::Plaintext;
        out.push(("the 100 MB/s example".to_owned(), sized));
        out.push(("the 100 MB/s example on a plaintext listener".to_owned(), plaintext));
        out
    }

    /// The export's `resource` blocks by address, parsed by hcl-rs.
    fn resource_blocks(export: &Export) -> BTreeMap<String, Block> {
        let mut blocks = BTreeMap::new();
        for file in export.files.iter().filter(|f| f.path.ends_with(".tf")) {
            let body: Body = hcl::parse(&file.text).unwrap_or_else(|e| panic!("{} does not parse: {e}", file.path));
            for block in body.into_inner().into_iter().filter_map(|s| s.into_block()) {
                if block.identifier.as_str() == "resource" && !COMPANION_TYPES.contains(&block.labels[0].as_str()) {
                    let address = format!("{}.{}", block.labels[0].as_str(), block.labels[1].as_str());
                    assert!(blocks.insert(address.clone(), block).is_none(), "{address} twice");
                }
            }
        }
        blocks
    }

    /// `plan` against an account where nothing exists yet.
    fn plan_from_empty(environment: &Environment) -> crate::plan::Plan {
        let resources = crate::desired::resources(environment, BINARY, &[]);
        let observed = resources.iter().map(|r| (r.address.clone(), Observed::Absent)).collect();
        crate::plan::diff::apply_plan(&environment.name, &resources, &observed, &BTreeMap::new())
    }

    fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
        block.body.attributes().find(|a| a.key.as_str() == key).map(|a| &a.expr)
    }

    /// The first attribute named `key` in `body` or, depth first, its nested blocks.
    fn nested_attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
        body.attributes()
            .find(|a| a.key.as_str() == key)
            .map(|a| &a.expr)
            .or_else(|| body.blocks().find_map(|b| nested_attribute(&b.body, key)))
    }

    /// The value of a literal expression (no references), as JSON.
    fn literal(expr: &Expression) -> Option<Value> {
        let value = expr.evaluate(&hcl::eval::Context::new()).ok()?;
        Some(serde_json::to_value(value).unwrap())
    }

    /// `root.name` of every resource reference in `body` (arguments, nested blocks, templates,
    /// function arguments, `depends_on`); `var.`, `local.` and `path.` are left out.
    fn references(body: &Body) -> BTreeSet<String> {
        fn walk(expr: &Expression, out: &mut BTreeSet<String>) {
            match expr {
                Expression::Traversal(t) => {
                    if let (Expression::Variable(root), Some(TraversalOperator::GetAttr(name))) =
                        (&t.expr, t.operators.first())
                        // `data.*`: what the configuration reads and does not own (the ERP
                        // owners' secret).
                        && !matches!(root.as_str(), "var" | "local" | "path" | "data")
                    {
                        out.insert(format!("{}.{}", root.as_str(), name.as_str()));
                    }
                    walk(&t.expr, out);
                }
                Expression::Array(items) => items.iter().for_each(|e| walk(e, out)),
                Expression::Object(object) => {
                    for (key, value) in object {
                        if let ObjectKey::Expression(k) = key {
                            walk(k, out);
                        }
                        walk(value, out);
                    }
                }
                Expression::FuncCall(call) => call.args.iter().for_each(|e| walk(e, out)),
                Expression::TemplateExpr(template) => walk_template(template, out),
                Expression::Parenthesis(inner) => walk(inner, out),
                _ => {}
            }
        }
        fn walk_template(template: &TemplateExpr, out: &mut BTreeSet<String>) {
            let template = hcl::Template::from_expr(template).unwrap();
            for element in template.elements() {
                if let hcl::template::Element::Interpolation(i) = element {
                    walk(&i.expr, out);
                }
            }
        }
        fn body_refs(body: &Body, out: &mut BTreeSet<String>) {
            for a in body.attributes() {
                walk(&a.expr, out);
            }
            for b in body.blocks() {
                body_refs(&b.body, out);
            }
        }
        let mut out = BTreeSet::new();
        body_refs(body, &mut out);
        out
    }

    #[test]
    fn every_export_parses_and_maps_one_to_one_onto_the_plan_from_empty() {
        for (name, env) in environments() {
            let export = terraform(&env).unwrap();
            let blocks = resource_blocks(&export);
            let plan = plan_from_empty(&env);
            assert!(plan.changes.iter().all(|c| c.action == Action::Create), "{name}");
            let planned: BTreeSet<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
            let omitted: BTreeSet<&str> = export.omitted.iter().map(|(a, _)| a.as_str()).collect();
            let exported: BTreeSet<&str> = blocks.keys().map(String::as_str).collect();
            assert_eq!(
                exported,
                planned.difference(&omitted).copied().collect::<BTreeSet<_>>(),
                "{name}: resources differ"
            );
            assert_eq!(blocks.len(), export.resources, "{name}");
            let expected_omitted: &[&str] =
                if name.starts_with("dev") { &["indutech_local_worker.worker"] } else { &[] };
            assert_eq!(omitted.into_iter().collect::<Vec<_>>(), expected_omitted, "{name}");
            assert!(blocks.len() > 55, "{name}: {} resources", blocks.len());
        }
    }

    #[test]
    fn every_dependency_of_the_model_is_a_reference_or_a_depends_on_and_nothing_else_is() {
        for (name, env) in environments() {
            let export = terraform(&env).unwrap();
            let blocks = resource_blocks(&export);
            let model = crate::desired::resources(&env, BINARY, &[]);
            let needs: BTreeMap<&str, &Vec<String>> =
                model.iter().map(|r| (r.address.as_str(), &r.depends_on)).collect();
            // Everything a resource needs, directly or through what it needs.
            let closure = |address: &str| {
                let mut seen = HashSet::new();
                let mut todo = vec![address.to_owned()];
                while let Some(a) = todo.pop() {
                    for d in needs.get(a.as_str()).into_iter().flat_map(|v| v.iter()) {
                        if seen.insert(d.clone()) {
                            todo.push(d.clone());
                        }
                    }
                }
                seen
            };
            for (address, block) in &blocks {
                let mut refs = references(&block.body);
                // A secret's version stands for the secret (it references it).
                let versions: Vec<String> = refs
                    .iter()
                    .filter_map(|r| r.strip_prefix("aws_secretsmanager_secret_version."))
                    .map(|label| format!("aws_secretsmanager_secret.{label}"))
                    .collect();
                refs.extend(versions);
                for d in needs[address.as_str()] {
                    assert!(refs.contains(d), "{name}: {address} needs {d} but neither references nor depends on it");
                }
                let implied = closure(address);
                for r in refs.iter().filter(|r| !COMPANION_TYPES.iter().any(|t| r.starts_with(&format!("{t}.")))) {
                    assert!(blocks.contains_key(r), "{name}: {address} refers to {r}, which is not exported");
                    assert!(
                        implied.contains(r),
                        "{name}: {address} refers to {r}, which the model does not order before it"
                    );
                }
            }
        }
    }

    #[test]
    fn names_tags_and_settings_are_the_models() {
        for (name, env) in environments() {
            let export = terraform(&env).unwrap();
            let blocks = resource_blocks(&export);
            let model = crate::desired::resources(&env, BINARY, &[]);
            let mut compared = 0;
            for r in model.iter().filter(|r| blocks.contains_key(&r.address)) {
                let block = &blocks[&r.address];
                let at = |key: &str| attribute(block, key).and_then(literal);
                // Tags, exactly.
                if let Some(tags) = r.attributes.get("tags") {
                    assert_eq!(at("tags").as_ref(), Some(tags), "{name}: {} tags", r.address);
                    if r.kind() == Kind::Instance {
                        assert_eq!(at("volume_tags").as_ref(), Some(tags), "{name}: {} volume_tags", r.address);
                    }
                }
                // The deterministic AWS name, where the resource has one of its own.
                let own_name = at("name")
                    .or_else(|| at("bucket"))
                    .or_else(|| at("cluster_identifier"))
                    .or_else(|| at("tags").and_then(|t| t.get("Name").cloned()));
                if let Some(Value::String(own)) = own_name {
                    let want = match r.kind() {
                        Kind::IamRolePolicy => format!("{}/{own}", r.name.split('/').next().unwrap()),
                        _ => own,
                    };
                    assert_eq!(want, r.name, "{name}: {} name", r.address);
                }
                // Every attribute of the model written literally under the same name (in the
                // resource or one of its nested blocks) is equal;
                // policies are compared as JSON (jsonencode's argument).
                for (key, want) in &r.attributes {
                    let Some(expr) = nested_attribute(&block.body, key) else { continue };
                    let got = match expr {
                        Expression::FuncCall(call) if call.name.name.as_str() == "jsonencode" => literal(&call.args[0]),
                        other => literal(other),
                    };
                    if let Some(got) = got {
                        assert_eq!(&got, want, "{name}: {}.{key}", r.address);
                        compared += 1;
                    }
                }
                // Attributes written under Terraform's own shape.
                match r.kind() {
                    Kind::VpnConnection => {
                        for (i, tunnel) in r.attributes["tunnels"].as_array().unwrap().iter().enumerate() {
                            for (ours, theirs) in [
                                ("ike_versions", "ike_versions"),
                                ("phase1_encryption", "phase1_encryption_algorithms"),
                                ("phase1_integrity", "phase1_integrity_algorithms"),
                                ("phase1_dh_groups", "phase1_dh_group_numbers"),
                                ("phase2_encryption", "phase2_encryption_algorithms"),
                                ("phase2_integrity", "phase2_integrity_algorithms"),
                                ("phase2_dh_groups", "phase2_dh_group_numbers"),
                            ] {
                                let key = format!("tunnel{}_{theirs}", i + 1);
                                assert_eq!(at(&key).as_ref(), Some(&tunnel[ours]), "{name}: {key}");
                            }
                        }
                    }
                    Kind::Instance => {
                        let nested = |block_name: &str, key: &str| {
                            block
                                .body
                                .blocks()
                                .find(|b| b.identifier.as_str() == block_name)
                                .and_then(|b| attribute(b, key))
                                .and_then(literal)
                        };
                        assert_eq!(
                            nested("metadata_options", "http_tokens").as_ref(),
                            r.attributes.get("metadata_http_tokens"),
                            "{name}: {} IMDSv2",
                            r.address
                        );
                        assert_eq!(
                            nested("root_block_device", "encrypted").as_ref(),
                            r.attributes.get("root_volume_encrypted"),
                            "{name}: {} root volume encryption",
                            r.address
                        );
                    }
                    Kind::SecurityGroup => {
                        for direction in ["ingress", "egress"] {
                            let rules: Vec<Value> = block
                                .body
                                .blocks()
                                .filter(|b| b.identifier.as_str() == direction)
                                .map(|b| {
                                    let get = |k: &str| attribute(b, k).and_then(literal).unwrap();
                                    json!({"protocol": get("protocol"), "from_port": get("from_port"),
                                           "to_port": get("to_port"), "cidr": get("cidr_blocks")[0],
                                           "description": get("description")})
                                })
                                .collect();
                            assert_eq!(
                                Value::Array(rules),
                                r.attributes[direction],
                                "{name}: {} {direction}",
                                r.address
                            );
                        }
                    }
                    Kind::GlueTable => {
                        let storage =
                            block.body.blocks().find(|b| b.identifier.as_str() == "storage_descriptor").unwrap();
                        let columns: Vec<Value> = storage
                            .body
                            .blocks()
                            .filter(|b| b.identifier.as_str() == "columns")
                            .map(|b| json!({"name": attribute(b, "name").and_then(literal), "type": attribute(b, "type").and_then(literal)}))
                            .collect();
                        assert_eq!(Value::Array(columns), r.attributes["columns"], "{name}: {}", r.address);
                        for key in ["location", "input_format", "output_format"] {
                            assert_eq!(attribute(storage, key).and_then(literal).as_ref(), Some(&r.attributes[key]));
                        }
                    }
                    Kind::S3BucketLifecycle => {
                        let rules: Vec<&Block> =
                            block.body.blocks().filter(|b| b.identifier.as_str() == "rule").collect();
                        let want = r.attributes["rules"].as_array().unwrap();
                        assert_eq!(rules.len(), want.len(), "{name}: {}", r.address);
                        for (rule, want) in rules.iter().zip(want) {
                            let inner = |id: &str| rule.body.blocks().find(|b| b.identifier.as_str() == id);
                            let transitions: Vec<Value> = rule
                                .body
                                .blocks()
                                .filter(|b| b.identifier.as_str() == "transition")
                                .map(|b| json!({"days": attribute(b, "days").and_then(literal), "storage_class": attribute(b, "storage_class").and_then(literal)}))
                                .collect();
                            let have = json!({
                                "id": attribute(rule, "id").and_then(literal),
                                "status": attribute(rule, "status").and_then(literal),
                                "prefix": inner("filter").and_then(|f| attribute(f, "prefix")).and_then(literal),
                                "abort_incomplete_multipart_upload_days": inner("abort_incomplete_multipart_upload")
                                    .and_then(|b| attribute(b, "days_after_initiation")).and_then(literal),
                                "noncurrent_version_expiration_days": inner("noncurrent_version_expiration")
                                    .and_then(|b| attribute(b, "noncurrent_days")).and_then(literal),
                                "transitions": transitions,
                            });
                            assert_eq!(&have, want, "{name}: {}", r.address);
                        }
                    }
                    _ => {}
                }
            }
            assert!(compared > 100, "{name}: only {compared} attributes compared");
        }
    }

    #[test]
    fn user_data_is_what_apply_sends() {
        for (name, env) in environments() {
            let export = terraform(&env).unwrap();
            let file = |path: &str| &export.files.iter().find(|f| f.path == path).unwrap().text;
            for r in crate::desired::resources(&env, BINARY, &[]).iter().filter(|r| r.kind() == Kind::Instance) {
                let (role, index) = r.address.trim_start_matches("aws_instance.").rsplit_once('_').unwrap();
                let text = match role {
                    "broker" => file(&format!("cloud-init/broker-{index}.yaml")).clone(),
                    _ => file("cloud-init/worker.yaml").replace(WORKER_BINARY_PLACEHOLDER, BINARY),
                };
                assert_eq!(crate::digest::sha256_hex(&text), r.attributes["user_data_sha256"], "{name}: {}", r.address);
            }
        }
    }

    #[test]
    fn secrets_are_sensitive_variables_and_never_values() {
        for (name, env) in environments() {
            let export = terraform(&env).unwrap();
            let blocks = resource_blocks(&export);
            let variables = hcl::parse(&export.files.iter().find(|f| f.path == "variables.tf").unwrap().text).unwrap();
            for secret in ["directory_admin_password", "ad_trust_password"] {
                let block = variables.blocks().find(|b| b.labels[0].as_str() == secret).unwrap();
                assert_eq!(attribute(block, "sensitive").and_then(literal), Some(json!(true)), "{name}: {secret}");
                assert!(attribute(block, "default").is_none(), "{name}: {secret} has a default");
            }
            let var = |block: &Block, key: &str| match attribute(block, key) {
                Some(Expression::Traversal(t)) => matches!(&t.expr, Expression::Variable(v) if v.as_str() == "var"),
                _ => false,
            };
            assert!(var(&blocks["aws_directory_service_directory.main"], "password"), "{name}");
            assert!(var(&blocks["aws_directory_service_trust.factory"], "trust_password"), "{name}");
            // No argument that holds a secret is given a value anywhere.
            for (address, block) in &blocks {
                for a in block.body.attributes() {
                    let key = a.key.as_str();
                    if key.contains("password") || key.contains("preshared_key") || key == "secret_string" {
                        assert!(
                            var(block, key) || key == "manage_master_password",
                            "{name}: {address}.{key} is not a variable"
                        );
                    }
                }
            }
            let text: String = export.files.iter().map(|f| f.text.as_str()).collect();
            assert!(!text.contains("master_password ="), "{name}");
            // A generated secret's value is made by Terraform (tls_*, random_password) inside
            // the plan, never written: its version's `secret_string` is jsonencode() of those.
            for file in export.files.iter().filter(|f| f.path.ends_with(".tf")) {
                let body: Body = hcl::parse(&file.text).unwrap();
                for block in body.blocks().filter(|b| b.identifier.as_str() == "resource") {
                    if let Some(value) = attribute(block, "secret_string") {
                        assert_eq!(block.labels[0].as_str(), "aws_secretsmanager_secret_version", "{name}");
                        assert!(
                            matches!(value, Expression::FuncCall(f) if f.name.name.as_str() == "jsonencode"),
                            "{name}: {value:?}"
                        );
                        let shown = value.to_string();
                        assert!(!shown.contains("password = \""), "{name}: a literal password: {shown}");
                    }
                }
            }
        }
    }

    #[test]
    fn hcl_values_read_back_as_written() {
        let value = json!({
            "plain": "text",
            "quote \"and\" backslash \\": "tab\tnewline\nreturn\r",
            "template": "${aws:PrincipalAccount} and %{ if } and $$ and % and $",
            "unicode": "é ✓ \u{7}",
            "numbers": [1, -2, 3.5, 1e20],
            "flags": [true, false, null],
            "long": ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],
            "nested": [{"a:b": {"c": []}, "true": {}}],
        });
        let text = format!("x = {}\n", hcl(&value, 0));
        let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let read = literal(&body.attributes().next().unwrap().expr).unwrap();
        assert_eq!(read, value, "{text}");
        assert!(text.contains("    \"aaaa"), "a long array is one item per line:\n{text}");
    }

    #[test]
    fn single_line_entries_are_aligned_and_multi_line_ones_break_the_run() {
        let text = hcl(&json!({"a": 1, "bbb": 2, "cc": {"d": 3}, "eeee": 4}), 0);
        assert_eq!(text, "{\n  a   = 1\n  bbb = 2\n  cc = {\n    d = 3\n  }\n  eeee = 4\n}");
    }

    #[test]
    fn a_transit_gateway_replaces_the_virtual_private_gateway_in_the_export() {
        let mut env = environment("dev");
        env.vpn.attachment = crate::config::environment::Attachment::TransitGateway;
        let blocks = resource_blocks(&terraform(&env).unwrap());
        for address in [
            "aws_ec2_transit_gateway.main",
            "aws_ec2_transit_gateway_vpc_attachment.main",
            "aws_ec2_transit_gateway_route.onprem_0",
        ] {
            assert!(blocks.contains_key(address), "{address}");
        }
        assert!(!blocks.keys().any(|a| a.starts_with("aws_vpn_gateway")), "{:?}", blocks.keys());
        let refs = references(&blocks["aws_route.onprem_0"].body);
        assert!(refs.contains("aws_ec2_transit_gateway.main"), "{refs:?}");
    }
}
