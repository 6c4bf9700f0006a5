//! A plan saved by `indutech plan --out FILE` and performed by `indutech apply FILE`: the file's
//! format (JSON: the environment file, the components, the plan) and the check that the plan
//! computed under the lock is the saved one ([`differences`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::{AttributeChange, Change, Component, Plan};

/// A plan saved with `--out`: the environment file, the plan and the components it covers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The environment file the plan was made from, absolute: `apply PLAN_FILE` loads it.
    pub environment_file: PathBuf,
    /// Components planned (empty: all).
    pub components: Vec<Component>,
    /// The plan itself.
    pub plan: Plan,
}

impl SavedPlan {
    /// Writes the file (pretty JSON).
    ///
    /// Errors: `path` cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot save the plan to {}", path.display()))
    }

    /// Reads the file at `path`.
    ///
    /// Errors: unreadable; not a saved plan; saved in another plan format
    /// ([`Plan::FORMAT_VERSION`]) than this indutech reads.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
        let version: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a plan saved by `indutech plan --out`", path.display()))?;
        let format = version["plan"]["format_version"].as_u64().unwrap_or_default();
        if format != u64::from(Plan::FORMAT_VERSION) {
            bail!(
                "{} has plan format {format}, this indutech reads {}: plan again",
                path.display(),
                Plan::FORMAT_VERSION
            );
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a plan saved by `indutech plan --out`", path.display()))
    }
}

/// How a saved plan differs from the plan computed now, one line per difference (empty when
/// they are equal): what changed in the inputs or in AWS, and every change that is only in one
/// of them or differs (action, attributes, replacement reasons, dependencies).
pub fn differences(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if saved.format_version != fresh.format_version {
        out.push(format!("plan format {} in the file, {} now", saved.format_version, fresh.format_version));
    }
    if saved.environment != fresh.environment {
        out.push(format!("the file is for environment {}, not {}", saved.environment, fresh.environment));
    }
    if saved.mode != fresh.mode {
        out.push(format!("the file is a {:?} plan, not a {:?} plan", saved.mode, fresh.mode).to_lowercase());
    }
    if saved.inputs_digest != fresh.inputs_digest {
        out.push("the environment or stream files changed since the plan was made".to_owned());
    }
    if saved.observed_digest != fresh.observed_digest {
        out.push("what AWS reports changed since the plan was made".to_owned());
    }
    if saved.delete_data != fresh.delete_data {
        out.push(format!("delete_data is {} in the file, {} now", saved.delete_data, fresh.delete_data));
    }
    let by_address = |plan: &Plan| -> BTreeMap<String, Change> {
        plan.changes.iter().map(|c| (c.address.clone(), c.clone())).collect()
    };
    let (old, new) = (by_address(saved), by_address(fresh));
    for (address, change) in &old {
        match new.get(address) {
            None => {
                out.push(format!("{address}: the file would {} it; now nothing is to be done", change.action.as_str()))
            }
            Some(now) if now.action != change.action => out.push(format!(
                "{address}: the file would {} it; now it needs {}",
                change.action.as_str(),
                now.action.as_str()
            )),
            Some(now) if now != change => {
                let named = |c: &Change| -> BTreeMap<String, AttributeChange> {
                    c.attributes.iter().map(|a| (a.name.clone(), a.clone())).collect()
                };
                let (was, is) = (named(change), named(now));
                let differing: Vec<String> = was
                    .keys()
                    .chain(is.keys())
                    .filter(|name| was.get(*name) != is.get(*name))
                    .map(|name| format!("`{name}`"))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let what = if differing.is_empty() {
                    "its replacement reasons or dependencies".to_owned()
                } else {
                    differing.join(", ")
                };
                out.push(format!(
                    "{address}: the {} in the file differs in {what} from the one computed now",
                    change.action.as_str()
                ));
            }
            Some(_) => {}
        }
    }
    for (address, change) in &new {
        if !old.contains_key(address) {
            out.push(format!("{address}: not in the file; now it needs {}", change.action.as_str()));
        }
    }
    let order = |plan: &Plan| plan.changes.iter().map(|c| c.address.clone()).collect::<Vec<_>>();
    if out.is_empty() && order(saved) != order(fresh) {
        out.push("the changes are in another order than the one computed now".to_owned());
    }
    let kept = |plan: &Plan| plan.kept.iter().map(|k| k.address.clone()).collect::<std::collections::BTreeSet<_>>();
    for address in kept(saved).difference(&kept(fresh)) {
        out.push(format!("{address}: kept in the file, not now"));
    }
    for address in kept(fresh).difference(&kept(saved)) {
        out.push(format!("{address}: kept now, not in the file"));
    }
    if out.is_empty() && saved != fresh {
        out.push("the file differs from the plan computed now (notices, counts or kept reasons)".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::plan::{Action, Component, Observed, Resource, diff};

    fn plan_of(observed_status: &str) -> Plan {
        let resource = Resource {
            address: "aws_s3_bucket_versioning.raw".into(),
            component: Component::Lake,
            name: "indutech-t-raw".into(),
            attributes: BTreeMap::from([("status".to_owned(), json!("Enabled"))]),
            replace_on: vec![],
            depends_on: vec![],
            idempotent_create: false,
            lives_on_dependencies: false,
            holds_data: false,
            protects: vec![],
            content: None,
        };
        let observed = BTreeMap::from([(
            resource.address.clone(),
            Observed::Present {
                id: "indutech-t-raw".into(),
                attributes: BTreeMap::from([("status".to_owned(), json!(observed_status))]),
            },
        )]);
        diff::apply_plan("t", &[resource], &observed, &BTreeMap::new())
    }

    #[test]
    fn a_plan_equal_to_the_one_computed_now_has_no_differences() {
        assert!(differences(&plan_of("Suspended"), &plan_of("Suspended")).is_empty());
    }

    #[test]
    fn a_stale_or_hand_edited_plan_names_its_differences() {
        // Converged since: the file's update is no longer needed.
        assert_eq!(
            differences(&plan_of("Suspended"), &plan_of("Enabled")),
            ["aws_s3_bucket_versioning.raw: the file would update it; now nothing is to be done"]
        );
        // Hand-edited: the update writes another value than the one computed now.
        let mut edited = plan_of("Suspended");
        edited.changes[0].attributes[0].after = Some(json!("Suspended"));
        assert_eq!(
            differences(&edited, &plan_of("Suspended")),
            ["aws_s3_bucket_versioning.raw: the update in the file differs in `status` from the one computed now"]
        );
        // Hand-edited into a delete, with the digests left as they were.
        let mut edited = plan_of("Suspended");
        edited.changes[0].action = Action::Delete;
        assert_eq!(
            differences(&edited, &plan_of("Suspended")),
            ["aws_s3_bucket_versioning.raw: the file would delete it; now it needs update"]
        );
        // A change the file does not have, and changed inputs.
        let mut fresh = plan_of("Suspended");
        fresh.inputs_digest = "other".into();
        let mut old = plan_of("Suspended");
        old.changes.clear();
        assert_eq!(
            differences(&old, &fresh),
            [
                "the environment or stream files changed since the plan was made",
                "aws_s3_bucket_versioning.raw: not in the file; now it needs update"
            ]
        );
    }
}
