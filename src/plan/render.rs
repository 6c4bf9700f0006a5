//! A plan as Terraform-style text: one block per change with symbols (`+`, `~`, `-/+`, `-`),
//! attribute-level before/after, the notices, what a destroy keeps and why, and the summary line
//! `Plan: N to add, N to change, N to replace, N to destroy.` (`, N to keep.` when it keeps).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::{Action, AttributeChange, Change, Mode, Plan};

/// Renders `plan`; `color` adds ANSI colours (use it only on a terminal).
pub fn text(plan: &Plan, color: bool) -> String {
    let paint = |style: Style, text: &str| -> String {
        if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_owned() }
    };
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let bold = Style::new().bold();

    let mut out = String::new();
    if !plan.notices.is_empty() {
        let _ = writeln!(out, "{}", paint(yellow.bold(), "Not verifiable on this target:"));
        for notice in &plan.notices {
            let _ = writeln!(out, "  ! {}: {}", notice.address, notice.message);
        }
        out.push('\n');
    }
    if !plan.has_changes() {
        kept(&mut out, plan, &paint, yellow);
        let what = match plan.mode {
            Mode::Apply => {
                format!("No changes. AWS matches environment {} ({} resources).", plan.environment, plan.resource_count)
            }
            Mode::Destroy if !plan.kept.is_empty() => format!(
                "No changes. Nothing of environment {} can be destroyed without --force-delete-data: the {} \
                 resource(s) left are kept (listed above).",
                plan.environment,
                plan.kept.len()
            ),
            Mode::Destroy => format!("No changes. Nothing of environment {} exists.", plan.environment),
        };
        let _ = writeln!(out, "{}", paint(green.bold(), &what));
        return out;
    }
    let _ = writeln!(out, "indutech will perform the following actions on environment {}:\n", plan.environment);
    for change in &plan.changes {
        let (style, verb) = match change.action {
            Action::Create => (green, "will be created".to_owned()),
            Action::Update => (yellow, "will be updated in place (AWS differs from the environment)".to_owned()),
            Action::Replace => (red, format!("must be replaced ({})", change.replace_reasons.join("; "))),
            Action::Delete => (
                red,
                match plan.mode {
                    Mode::Destroy => "will be destroyed".to_owned(),
                    Mode::Apply => "will be destroyed (no longer in the environment)".to_owned(),
                },
            ),
        };
        let _ = writeln!(out, "  {} {verb}", paint(bold, &format!("# {}", change.address)));
        let (kind, key) = change.address.split_once('.').unwrap_or((&change.address, ""));
        let symbol = format!("{:>3}", change.action.symbol());
        let _ = writeln!(out, "{} resource \"{kind}\" \"{key}\" {{", paint(style, &symbol));
        if let Some(id) = &change.id {
            let _ = writeln!(out, "        id = {}", json_inline(&serde_json::Value::String(id.clone())));
        }
        let width = change.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for attribute in &change.attributes {
            render_attribute(&mut out, change, attribute, width, &paint, (green, yellow, red));
        }
        let _ = writeln!(out, "    }}\n");
    }
    kept(&mut out, plan, &paint, yellow);
    let summary = plan.summary();
    let kept = if plan.kept.is_empty() { String::new() } else { format!(", {} to keep", plan.kept.len()) };
    let line = format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy{kept}.",
        summary.add, summary.change, summary.replace, summary.destroy
    );
    let _ = writeln!(out, "{}", paint(bold, &line));
    out
}

/// What a destroy keeps, one line each, with why.
fn kept(out: &mut String, plan: &Plan, paint: &dyn Fn(Style, &str) -> String, yellow: Style) {
    if plan.kept.is_empty() {
        return;
    }
    let title =
        "Kept by destroy (they hold data, or protect or serve what does; --force-delete-data deletes them too):";
    let _ = writeln!(out, "{}", paint(yellow.bold(), title));
    for kept in &plan.kept {
        let _ = writeln!(out, "  = {} ({}): {}", kept.address, kept.id, kept.reason);
    }
    out.push('\n');
}

fn render_attribute(
    out: &mut String,
    change: &Change,
    attribute: &AttributeChange,
    width: usize,
    paint: &dyn Fn(Style, &str) -> String,
    (green, yellow, red): (Style, Style, Style),
) {
    let name = format!("{:<width$}", attribute.name);
    let indent = " ".repeat(width + 11);
    match (&attribute.before, &attribute.after) {
        (None, Some(after)) => {
            let _ = writeln!(out, "      {} {name} = {}", paint(green, "+"), json_block(after, &indent));
        }
        (Some(before), None) => {
            let _ = writeln!(out, "      {} {name} = {}", paint(red, "-"), json_block(before, &indent));
        }
        (before, Some(after)) => {
            let before = before.as_ref().map_or("(absent)".to_owned(), |b| json_block(b, &indent));
            let marker = if attribute.forces_replacement { " # forces replacement" } else { "" };
            let symbol = if change.action == Action::Replace && attribute.forces_replacement { red } else { yellow };
            let _ = writeln!(
                out,
                "      {} {name} = {before} -> {}{}",
                paint(symbol, "~"),
                json_block(after, &indent),
                paint(red, marker)
            );
        }
        (None, None) => {}
    }
}

/// Scalars and small values on one line; a longer list or object one element per line, each
/// element on one line.
fn json_block(value: &serde_json::Value, indent: &str) -> String {
    let inline = json_inline(value);
    if inline.len() <= 72 {
        return inline;
    }
    match value {
        serde_json::Value::Array(items) => {
            let lines: Vec<String> = items.iter().map(|item| format!("\n{indent}  {},", json_inline(item))).collect();
            format!("[{}\n{indent}]", lines.concat())
        }
        serde_json::Value::Object(map) => {
            let lines: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "\n{indent}  {}: {},",
                        json_inline(&serde_json::Value::String(k.clone())),
                        json_block(v, &format!("{indent}  "))
                    )
                })
                .collect();
            format!("{{{}\n{indent}}}", lines.concat())
        }
        _ => inline,
    }
}

fn json_inline(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::plan::{Attributes, Component, Notice, Observed, Resource};

    fn resource(address: &str, component: Component, attributes: serde_json::Value, replace_on: &[&str]) -> Resource {
        Resource {
            address: address.to_owned(),
            component,
            name: "n".into(),
            attributes: serde_json::from_value::<Attributes>(attributes).unwrap(),
            replace_on: replace_on.iter().map(|s| s.to_string()).collect(),
            depends_on: vec![],
            idempotent_create: false,
            lives_on_dependencies: false,
            holds_data: false,
            protects: vec![],
            content: None,
        }
    }

    #[test]
    fn plan_text_snapshot() {
        let resources = [
            resource(
                "aws_s3_bucket.raw",
                Component::Lake,
                json!({"bucket": "indutech-dev-raw", "tags": {"indutech:env": "dev"}}),
                &["bucket"],
            ),
            resource("aws_s3_bucket_versioning.curated", Component::Lake, json!({"status": "Enabled"}), &[]),
            resource("aws_vpc.main", Component::Network, json!({"cidr_block": "10.40.0.0/16"}), &["cidr_block"]),
        ];
        let observed = BTreeMap::from([
            (
                "aws_s3_bucket_versioning.curated".to_owned(),
                Observed::Present {
                    id: "indutech-dev-curated".into(),
                    attributes: serde_json::from_value(json!({"status": "Suspended"})).unwrap(),
                },
            ),
            (
                "aws_vpc.main".to_owned(),
                Observed::Present {
                    id: "vpc-1".into(),
                    attributes: serde_json::from_value(json!({"cidr_block": "10.9.0.0/16"})).unwrap(),
                },
            ),
        ]);
        let mut plan = crate::plan::diff::apply_plan("dev", &resources, &observed, &BTreeMap::new());
        plan.notices.push(Notice {
            address: "aws_vpn_connection_route.onprem_0".into(),
            message: "CreateVpnConnectionRoute is not implemented by http://127.0.0.1:4566 (501)".into(),
        });
        let want = r#"Not verifiable on this target:
  ! aws_vpn_connection_route.onprem_0: CreateVpnConnectionRoute is not implemented by http://127.0.0.1:4566 (501)

indutech will perform the following actions on environment dev:

  # aws_s3_bucket.raw will be created
  + resource "aws_s3_bucket" "raw" {
      + bucket = "indutech-dev-raw"
      + tags   = {"indutech:env":"dev"}
    }

  # aws_s3_bucket_versioning.curated will be updated in place (AWS differs from the environment)
  ~ resource "aws_s3_bucket_versioning" "curated" {
        id = "indutech-dev-curated"
      ~ status = "Suspended" -> "Enabled"
    }

  # aws_vpc.main must be replaced (`cidr_block` cannot change in place)
-/+ resource "aws_vpc" "main" {
        id = "vpc-1"
      ~ cidr_block = "10.9.0.0/16" -> "10.40.0.0/16" # forces replacement
    }

Plan: 1 to add, 1 to change, 1 to replace, 0 to destroy.
"#;
        assert_eq!(text(&plan, false), want);
    }

    #[test]
    fn an_empty_plan_says_no_changes() {
        let plan = crate::plan::diff::apply_plan("dev", &[], &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(text(&plan, false), "No changes. AWS matches environment dev (0 resources).\n");
    }

    #[test]
    fn a_destroy_plan_lists_what_it_keeps_and_why() {
        let mut plan = crate::plan::diff::apply_plan("dev", &[], &BTreeMap::new(), &BTreeMap::new());
        plan.mode = Mode::Destroy;
        plan.kept = vec![
            crate::plan::Kept {
                address: "aws_s3_bucket.raw".into(),
                id: "indutech-dev-raw".into(),
                reason: "holds data: 1 object version(s)".into(),
            },
            crate::plan::Kept {
                address: "aws_kms_key.lake".into(),
                id: "k-1".into(),
                reason: "protects aws_s3_bucket.raw, which is kept".into(),
            },
        ];
        let want = "Kept by destroy (they hold data, or protect or serve what does; --force-delete-data deletes them too):
  = aws_s3_bucket.raw (indutech-dev-raw): holds data: 1 object version(s)
  = aws_kms_key.lake (k-1): protects aws_s3_bucket.raw, which is kept

No changes. Nothing of environment dev can be destroyed without --force-delete-data: the 2 resource(s) left are kept (listed above).
";
        assert_eq!(text(&plan, false), want);
    }
}
