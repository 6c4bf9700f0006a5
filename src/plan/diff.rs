//! The diff: desired resources + observations -> a [`Plan`]. Pure and synchronous.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Action, AttributeChange, Change, Kept, Mode, Notice, Observed, Orphan, Plan, Resource};

/// Everything the diff needs, already read.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Apply (converge) or destroy.
    pub mode: Mode,
    /// Environment name.
    pub environment: &'a str,
    /// Digest of the environment files ([`Plan::inputs_digest`]).
    pub inputs_digest: &'a str,
    /// Digest of the observations ([`Plan::observed_digest`]).
    pub observed_digest: &'a str,
    /// Desired resources; any order (sorted here by dependencies).
    pub resources: &'a [Resource],
    /// Observation per address; a missing entry counts as [`Observed::Absent`].
    pub observed: &'a BTreeMap<String, Observed>,
    /// Resources that exist but are not desired.
    pub orphans: &'a [Orphan],
    /// Address -> why the target could not create it at the last apply (recorded then); such
    /// a create becomes a notice instead of a change, so that `dev` converges honestly.
    pub gaps: &'a BTreeMap<String, String>,
    /// Destroy: address of a data holder ([`Resource::holds_data`]) -> what data it holds
    /// ("3 object versions"); a present holder without an entry is empty.
    pub data: &'a BTreeMap<String, String>,
    /// Destroy: delete the data holders too (`--force-delete-data`) instead of keeping them.
    pub delete_data: bool,
}

/// The change that creates `resource`.
fn create(resource: &Resource) -> Change {
    Change {
        address: resource.address.clone(),
        component: resource.component,
        name: resource.name.clone(),
        action: Action::Create,
        id: None,
        attributes: resource
            .attributes
            .iter()
            .map(|(name, value)| AttributeChange {
                name: name.clone(),
                before: None,
                after: Some(value.clone()),
                forces_replacement: false,
            })
            .collect(),
        replace_reasons: Vec::new(),
        desired: Some(resource.clone()),
        depends_on: resource.depends_on.clone(),
    }
}

/// Computes the plan.
///
/// Apply mode: absent -> create; present and different -> update, or replace when a
/// `replace_on` attribute differs or a dependency is replaced; unverifiable -> a notice, never
/// a silent skip; orphans -> delete. Destroy mode: every present resource and orphan -> delete.
/// Changes come out deletes first (dependents before what they need), then the rest in
/// dependency order.
///
/// Destroy without `delete_data` decides here, before anything is deleted, what stays: every
/// data holder that holds data (or cannot be read), everything that protects or serves one,
/// and everything those need (`kept`); they become [`Plan::kept`] entries, not deletes.
pub fn diff(input: Input<'_>) -> Plan {
    let resources = dependency_order(input.resources);
    let mut changes: Vec<Change> = Vec::new();
    let mut notices = Vec::new();
    let mut replaced: HashSet<&str> = HashSet::new();
    let keep = match input.mode {
        Mode::Destroy if !input.delete_data => kept(&resources, input.observed, input.data),
        _ => BTreeMap::new(),
    };
    let mut kept_list = Vec::new();

    for resource in &resources {
        let observed = input.observed.get(&resource.address).unwrap_or(&Observed::Absent);
        match (input.mode, observed) {
            (Mode::Apply, Observed::Unverifiable { reason })
                if resource.idempotent_create && !input.gaps.contains_key(&resource.address) =>
            {
                notices.push(Notice {
                    address: resource.address.clone(),
                    message: format!("{reason}; its create is idempotent, so apply runs it"),
                });
                changes.push(create(resource));
            }
            (Mode::Apply, Observed::Unverifiable { reason }) if input.gaps.contains_key(&resource.address) => notices
                .push(Notice {
                    address: resource.address.clone(),
                    message: format!("{reason}; {}", input.gaps[&resource.address]),
                }),
            (_, Observed::Unverifiable { reason }) => {
                notices.push(Notice { address: resource.address.clone(), message: reason.clone() })
            }
            (Mode::Destroy, Observed::Absent) => {}
            (Mode::Apply, Observed::Absent) if input.gaps.contains_key(&resource.address) => notices.push(Notice {
                address: resource.address.clone(),
                message: format!("not created: {}", input.gaps[&resource.address]),
            }),
            (Mode::Destroy, Observed::Present { id, .. }) if keep.contains_key(&resource.address) => {
                kept_list.push(Kept {
                    address: resource.address.clone(),
                    id: id.clone(),
                    reason: keep[&resource.address].clone(),
                })
            }
            (Mode::Destroy, Observed::Present { id, attributes }) => changes.push(Change {
                address: resource.address.clone(),
                component: resource.component,
                name: resource.name.clone(),
                action: Action::Delete,
                id: Some(id.clone()),
                attributes: removed(attributes),
                replace_reasons: Vec::new(),
                desired: None,
                depends_on: resource.depends_on.clone(),
            }),
            (Mode::Apply, Observed::Absent) => changes.push(create(resource)),
            (Mode::Apply, Observed::Present { id, attributes }) => {
                // An attribute the provider could not read from the target is missing from
                // the observation: say so instead of planning a change that never converges.
                for name in resource.attributes.keys().filter(|name| !attributes.contains_key(*name)) {
                    notices.push(Notice {
                        address: resource.address.clone(),
                        message: format!("`{name}` is not reported by the target, so it cannot be verified"),
                    });
                }
                let differences: Vec<AttributeChange> = resource
                    .attributes
                    .iter()
                    .filter(|(name, want)| attributes.get(*name).is_some_and(|have| have != *want))
                    .map(|(name, want)| AttributeChange {
                        name: name.clone(),
                        before: attributes.get(name).cloned(),
                        after: Some(want.clone()),
                        forces_replacement: resource.replace_on.contains(name),
                    })
                    .collect();
                let mut reasons: Vec<String> = differences
                    .iter()
                    .filter(|c| c.forces_replacement)
                    .map(|c| format!("`{}` cannot change in place", c.name))
                    .collect();
                for dependency in &resource.depends_on {
                    if replaced.contains(dependency.as_str()) {
                        reasons.push(format!("it depends on {dependency}, which is replaced"));
                    }
                }
                let action = if !reasons.is_empty() {
                    replaced.insert(resource.address.as_str());
                    Action::Replace
                } else if let Some(gap) = input.gaps.get(&resource.address).filter(|_| !differences.is_empty()) {
                    // The target could not perform this update (or this part of a create):
                    // a notice, not a change that would never converge.
                    let names: Vec<&str> = differences.iter().map(|c| c.name.as_str()).collect();
                    notices.push(Notice {
                        address: resource.address.clone(),
                        message: format!("`{}` not as declared: {gap}", names.join("`, `")),
                    });
                    continue;
                } else if !differences.is_empty() {
                    Action::Update
                } else {
                    continue;
                };
                changes.push(Change {
                    address: resource.address.clone(),
                    component: resource.component,
                    name: resource.name.clone(),
                    action,
                    id: Some(id.clone()),
                    attributes: differences,
                    replace_reasons: reasons,
                    desired: Some(resource.clone()),
                    depends_on: resource.depends_on.clone(),
                });
            }
        }
    }

    for orphan in input.orphans {
        changes.push(Change {
            address: orphan.address.clone(),
            component: orphan.component,
            name: orphan.name.clone(),
            action: Action::Delete,
            id: Some(orphan.id.clone()),
            attributes: removed(&orphan.attributes),
            replace_reasons: Vec::new(),
            desired: None,
            depends_on: orphan.depends_on.clone(),
        });
    }

    Plan {
        format_version: Plan::FORMAT_VERSION,
        mode: input.mode,
        environment: input.environment.to_owned(),
        inputs_digest: input.inputs_digest.to_owned(),
        observed_digest: input.observed_digest.to_owned(),
        resource_count: input.resources.len(),
        changes: apply_order(changes),
        notices,
        delete_data: input.mode == Mode::Destroy && input.delete_data,
        kept: kept_list,
    }
}

/// What a destroy without `--force-delete-data` keeps: address -> why.
///
/// 1. every data holder that holds data, or that cannot be read (its content is unknown);
/// 2. every resource that protects or serves one of those ([`Resource::protects`]);
/// 3. everything the resources of 1 and 2 need, transitively (a kept cluster keeps its subnet
///    group, whose subnets keep the VPC).
fn kept(
    resources: &[Resource],
    observed: &BTreeMap<String, Observed>,
    data: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for resource in resources.iter().filter(|r| r.holds_data) {
        let reason = match (observed.get(&resource.address), data.get(&resource.address)) {
            (Some(Observed::Present { .. }), Some(what)) => format!("holds data: {what}"),
            (Some(Observed::Unverifiable { reason }), _) => format!("may hold data ({reason})"),
            _ => continue,
        };
        kept.insert(resource.address.clone(), reason);
    }
    let holders: Vec<String> = kept.keys().cloned().collect();
    for resource in resources {
        if let Some(holder) = resource.protects.iter().find(|p| holders.contains(p)) {
            kept.entry(resource.address.clone()).or_insert_with(|| format!("protects {holder}, which is kept"));
        }
    }
    let by_address: HashMap<&str, &Resource> = resources.iter().map(|r| (r.address.as_str(), r)).collect();
    let mut frontier: Vec<String> = kept.keys().cloned().collect();
    while let Some(address) = frontier.pop() {
        let Some(resource) = by_address.get(address.as_str()) else { continue };
        for dependency in &resource.depends_on {
            if !kept.contains_key(dependency) && by_address.contains_key(dependency.as_str()) {
                kept.insert(dependency.clone(), format!("{address} needs it, which is kept"));
                frontier.push(dependency.clone());
            }
        }
    }
    kept
}

/// Every attribute of a resource that is deleted: before only.
fn removed(attributes: &crate::plan::Attributes) -> Vec<AttributeChange> {
    attributes
        .iter()
        .map(|(name, value)| AttributeChange {
            name: name.clone(),
            before: Some(value.clone()),
            after: None,
            forces_replacement: false,
        })
        .collect()
}

/// Stable topological sort: a resource comes after everything it depends on; otherwise the
/// given order is kept. Unknown dependencies are ignored; a cycle (a bug in
/// [`crate::desired`]) leaves the remaining resources in their given order.
fn dependency_order(resources: &[Resource]) -> Vec<Resource> {
    let known: BTreeSet<&str> = resources.iter().map(|r| r.address.as_str()).collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(resources.len());
    let mut remaining: Vec<&Resource> = resources.iter().collect();
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .position(|r| r.depends_on.iter().all(|d| !known.contains(d.as_str()) || placed.contains(d.as_str())));
        let next = remaining.remove(ready.unwrap_or(0));
        placed.insert(next.address.as_str());
        out.push(next.clone());
    }
    out
}

/// Deletes first, dependents before what they need (the reverse of dependency order); then
/// creates, updates and replaces in dependency order.
fn apply_order(changes: Vec<Change>) -> Vec<Change> {
    let (deletes, rest): (Vec<Change>, Vec<Change>) = changes.into_iter().partition(|c| c.action == Action::Delete);
    let as_resources = |changes: &[Change]| -> Vec<Resource> {
        changes
            .iter()
            .map(|c| Resource {
                address: c.address.clone(),
                component: c.component,
                name: c.name.clone(),
                attributes: Default::default(),
                replace_on: Vec::new(),
                depends_on: c.depends_on.clone(),
                idempotent_create: false,
                lives_on_dependencies: false,
                holds_data: false,
                protects: Vec::new(),
                content: None,
            })
            .collect()
    };
    let mut by_address: HashMap<String, Change> =
        deletes.iter().chain(rest.iter()).map(|c| (c.address.clone(), c.clone())).collect();
    let mut ordered: Vec<Change> = Vec::new();
    let mut delete_order = dependency_order(&as_resources(&deletes));
    delete_order.reverse();
    for r in delete_order.into_iter().chain(dependency_order(&as_resources(&rest))) {
        if let Some(change) = by_address.remove(&r.address) {
            ordered.push(change);
        }
    }
    ordered
}

/// The apply-mode plan of `resources` against `observed` and the recorded `gaps`, without
/// digests: for the unit tests of what builds on the diff (smoke rows, plan text, desired state).
#[cfg(test)]
pub(crate) fn apply_plan(
    environment: &str,
    resources: &[Resource],
    observed: &BTreeMap<String, Observed>,
    gaps: &BTreeMap<String, String>,
) -> Plan {
    diff(Input {
        mode: Mode::Apply,
        environment,
        inputs_digest: "",
        observed_digest: "",
        resources,
        observed,
        orphans: &[],
        gaps,
        data: &BTreeMap::new(),
        delete_data: false,
    })
}

/// Helpers for the tests of the diff and of what builds on it (the engine's scheduler).
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use crate::plan::{Attributes, Component, Mode, Observed, Plan, Resource};

    /// A network resource `address` with `attributes` (a JSON object).
    pub(crate) fn resource(
        address: &str,
        attributes: serde_json::Value,
        replace_on: &[&str],
        depends_on: &[&str],
    ) -> Resource {
        Resource {
            address: address.to_owned(),
            component: Component::Network,
            name: format!("indutech-t-{}", address.replace('.', "-")),
            attributes: serde_json::from_value::<Attributes>(attributes).unwrap(),
            replace_on: replace_on.iter().map(|s| s.to_string()).collect(),
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            idempotent_create: false,
            lives_on_dependencies: false,
            holds_data: false,
            protects: Vec::new(),
            content: None,
        }
    }

    /// The plan of `mode` for `resources` over `observed`: no orphans, gaps or data held.
    pub(crate) fn plan(mode: Mode, resources: &[Resource], observed: &BTreeMap<String, Observed>) -> Plan {
        super::diff(super::Input {
            mode,
            environment: "t",
            inputs_digest: "in",
            observed_digest: "obs",
            resources,
            observed,
            orphans: &[],
            gaps: &BTreeMap::new(),
            data: &BTreeMap::new(),
            delete_data: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Component;

    use super::testing::resource;

    fn present(id: &str, attributes: serde_json::Value) -> Observed {
        Observed::Present { id: id.to_owned(), attributes: serde_json::from_value(attributes).unwrap() }
    }

    fn run(mode: Mode, resources: &[Resource], observed: &[(&str, Observed)], orphans: &[Orphan]) -> Plan {
        let observed: BTreeMap<String, Observed> = observed.iter().map(|(a, o)| (a.to_string(), o.clone())).collect();
        diff(Input {
            mode,
            environment: "t",
            inputs_digest: "in",
            observed_digest: "obs",
            resources,
            observed: &observed,
            orphans,
            gaps: &BTreeMap::new(),
            data: &BTreeMap::new(),
            delete_data: false,
        })
    }

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes.iter().map(|c| (c.address.clone(), c.action)).collect()
    }

    #[test]
    fn a_delete_step_sees_the_resource_as_observed() {
        let want = resource("t.schema", json!({"name": "new", "db": "dev"}), &["name"], &[]);
        let plan = run(Mode::Apply, &[want], &[("t.schema", present("old", json!({"name": "old", "db": "dev"})))], &[]);
        assert_eq!(plan.changes[0].action, Action::Replace);
        let observed = plan.changes[0].observed_resource();
        assert_eq!(observed.attributes["name"], json!("old"), "the replaced value, not the desired one");
        assert_eq!(observed.attributes["db"], json!("dev"));
        let gone = run(
            Mode::Destroy,
            &[resource("t.schema", json!({"name": "x"}), &[], &[])],
            &[("t.schema", present("old", json!({"name": "old"})))],
            &[],
        );
        assert_eq!(gone.changes[0].observed_resource().attributes["name"], json!("old"));
    }

    #[test]
    fn absent_resources_are_created_in_dependency_order() {
        // Given out of order on purpose: the subnet needs the VPC.
        let resources = [
            resource("aws_subnet.a", json!({"cidr_block": "10.0.0.0/20"}), &["cidr_block"], &["aws_vpc.main"]),
            resource("aws_vpc.main", json!({"cidr_block": "10.0.0.0/16"}), &["cidr_block"], &[]),
        ];
        let plan = run(Mode::Apply, &resources, &[], &[]);
        assert_eq!(actions(&plan), [("aws_vpc.main".into(), Action::Create), ("aws_subnet.a".into(), Action::Create)]);
        let vpc = &plan.changes[0];
        assert_eq!(
            vpc.attributes,
            [AttributeChange {
                name: "cidr_block".into(),
                before: None,
                after: Some(json!("10.0.0.0/16")),
                forces_replacement: false
            }]
        );
        assert_eq!(plan.summary(), crate::plan::Summary { add: 2, change: 0, replace: 0, destroy: 0 });
    }

    #[test]
    fn equal_resources_make_no_change() {
        let resources = [resource("aws_s3_bucket_versioning.raw", json!({"status": "Enabled"}), &[], &[])];
        let plan = run(
            Mode::Apply,
            &resources,
            &[("aws_s3_bucket_versioning.raw", present("b", json!({"status": "Enabled"})))],
            &[],
        );
        assert!(!plan.has_changes());
        assert_eq!(plan.resource_count, 1);
    }

    #[test]
    fn drift_in_a_mutable_attribute_is_an_update_with_before_and_after() {
        let resources =
            [resource("aws_s3_bucket_versioning.raw", json!({"status": "Enabled", "mfa_delete": false}), &[], &[])];
        let observed = present("b", json!({"status": "Suspended", "mfa_delete": false}));
        let plan = run(Mode::Apply, &resources, &[("aws_s3_bucket_versioning.raw", observed)], &[]);
        assert_eq!(actions(&plan), [("aws_s3_bucket_versioning.raw".into(), Action::Update)]);
        assert_eq!(
            plan.changes[0].attributes,
            [AttributeChange {
                name: "status".into(),
                before: Some(json!("Suspended")),
                after: Some(json!("Enabled")),
                forces_replacement: false
            }]
        );
        assert_eq!(plan.changes[0].id.as_deref(), Some("b"));
    }

    #[test]
    fn an_immutable_difference_replaces_and_cascades_to_dependents() {
        let resources = [
            resource("aws_vpc.main", json!({"cidr_block": "10.1.0.0/16", "tags": {"a": "b"}}), &["cidr_block"], &[]),
            resource("aws_subnet.a", json!({"cidr_block": "10.1.0.0/20"}), &["cidr_block"], &["aws_vpc.main"]),
            resource("aws_security_group.x", json!({"ingress": []}), &[], &["aws_vpc.main"]),
        ];
        let observed = [
            ("aws_vpc.main", present("vpc-1", json!({"cidr_block": "10.0.0.0/16", "tags": {"a": "b"}}))),
            ("aws_subnet.a", present("subnet-1", json!({"cidr_block": "10.1.0.0/20"}))),
            ("aws_security_group.x", present("sg-1", json!({"ingress": []}))),
        ];
        let plan = run(Mode::Apply, &resources, &observed, &[]);
        assert_eq!(
            actions(&plan),
            [
                ("aws_vpc.main".into(), Action::Replace),
                ("aws_subnet.a".into(), Action::Replace),
                ("aws_security_group.x".into(), Action::Replace)
            ]
        );
        assert_eq!(plan.changes[0].replace_reasons, ["`cidr_block` cannot change in place"]);
        assert!(plan.changes[0].attributes[0].forces_replacement);
        assert_eq!(plan.changes[1].replace_reasons, ["it depends on aws_vpc.main, which is replaced"]);
        assert!(plan.changes[1].attributes.is_empty());
        assert_eq!(plan.summary().replace, 3);
    }

    #[test]
    fn an_idempotent_create_runs_when_unverifiable_until_a_gap_is_recorded() {
        let mut schema = resource("aws_redshiftdata_statement.s", json!({"external_schema": "lake"}), &[], &[]);
        schema.idempotent_create = true;
        let observed = [("aws_redshiftdata_statement.s", Observed::Unverifiable { reason: "cannot read it".into() })];
        let plan = run(Mode::Apply, std::slice::from_ref(&schema), &observed, &[]);
        assert_eq!(actions(&plan), [("aws_redshiftdata_statement.s".to_owned(), Action::Create)]);
        assert!(plan.notices[0].message.contains("idempotent"), "{:?}", plan.notices);

        let gaps = BTreeMap::from([("aws_redshiftdata_statement.s".to_owned(), "at the last apply, X".to_owned())]);
        let observed: BTreeMap<String, Observed> = observed.iter().map(|(a, o)| (a.to_string(), o.clone())).collect();
        let plan = diff(Input {
            mode: Mode::Apply,
            environment: "t",
            inputs_digest: "in",
            observed_digest: "obs",
            resources: std::slice::from_ref(&schema),
            observed: &observed,
            orphans: &[],
            gaps: &gaps,
            data: &BTreeMap::new(),
            delete_data: false,
        });
        assert!(!plan.has_changes());
        assert_eq!(plan.notices[0].message, "cannot read it; at the last apply, X");
        // Destroy never deletes what it cannot see.
        let plan = run(
            Mode::Destroy,
            &[schema],
            &[("aws_redshiftdata_statement.s", observed["aws_redshiftdata_statement.s"].clone())],
            &[],
        );
        assert!(!plan.has_changes());
    }

    #[test]
    fn unverifiable_resources_become_notices_not_changes() {
        let resources = [resource("aws_vpn_connection_route.a", json!({"cidr": "192.168.0.0/16"}), &[], &[])];
        let observed = Observed::Unverifiable { reason: "DescribeX is not implemented by http://x (501)".into() };
        let plan = run(Mode::Apply, &resources, &[("aws_vpn_connection_route.a", observed)], &[]);
        assert!(!plan.has_changes());
        assert_eq!(
            plan.notices,
            [Notice {
                address: "aws_vpn_connection_route.a".into(),
                message: "DescribeX is not implemented by http://x (501)".into()
            }]
        );
    }

    #[test]
    fn unreported_attributes_and_recorded_gaps_are_notices() {
        let resources = [
            resource("aws_vpn_connection.f", json!({"tunnels": [1, 2], "type": "ipsec.1"}), &[], &[]),
            resource("aws_vpn_connection_route.r", json!({"cidr": "192.168.0.0/16"}), &[], &[]),
        ];
        let observed =
            BTreeMap::from([("aws_vpn_connection.f".to_owned(), present("vpn-1", json!({"type": "ipsec.1"})))]);
        let gaps = BTreeMap::from([(
            "aws_vpn_connection_route.r".to_owned(),
            "CreateVpnConnectionRoute is not implemented by x (HTTP 501)".to_owned(),
        )]);
        let plan = diff(Input {
            mode: Mode::Apply,
            environment: "t",
            inputs_digest: "",
            observed_digest: "",
            resources: &resources,
            observed: &observed,
            orphans: &[],
            gaps: &gaps,
            data: &BTreeMap::new(),
            delete_data: false,
        });
        assert!(!plan.has_changes(), "{:?}", plan.changes);
        let messages: Vec<String> = plan.notices.iter().map(|n| format!("{}: {}", n.address, n.message)).collect();
        assert_eq!(
            messages,
            [
                "aws_vpn_connection.f: `tunnels` is not reported by the target, so it cannot be verified",
                "aws_vpn_connection_route.r: not created: CreateVpnConnectionRoute is not implemented by x (HTTP 501)"
            ]
        );
    }

    #[test]
    fn an_update_the_target_could_not_perform_is_a_notice_but_a_replacement_stays_a_change() {
        let resources = [
            resource(
                "aws_redshift_parameter_group.p",
                json!({"family": "f", "parameters": {"require_ssl": "true"}}),
                &["family"],
                &[],
            ),
            resource("aws_redshift_parameter_group.q", json!({"family": "g", "parameters": {}}), &["family"], &[]),
        ];
        let observed = BTreeMap::from([
            ("aws_redshift_parameter_group.p".to_owned(), present("p", json!({"family": "f", "parameters": {}}))),
            ("aws_redshift_parameter_group.q".to_owned(), present("q", json!({"family": "old", "parameters": {}}))),
        ]);
        let gaps = BTreeMap::from([
            ("aws_redshift_parameter_group.p".to_owned(), "at the last apply, parameters not set: X".to_owned()),
            ("aws_redshift_parameter_group.q".to_owned(), "at the last apply, parameters not set: X".to_owned()),
        ]);
        let plan = apply_plan("t", &resources, &observed, &gaps);
        let changes: Vec<(&str, Action)> = plan.changes.iter().map(|c| (c.address.as_str(), c.action)).collect();
        assert_eq!(changes, [("aws_redshift_parameter_group.q", Action::Replace)]);
        let messages: Vec<String> = plan.notices.iter().map(|n| format!("{}: {}", n.address, n.message)).collect();
        assert_eq!(
            messages,
            ["aws_redshift_parameter_group.p: `parameters` not as declared: at the last apply, parameters not set: X"]
        );
    }

    #[test]
    fn orphans_are_deleted_before_anything_else() {
        let resources = [resource("aws_glue_catalog_database.main", json!({"name": "d"}), &[], &[])];
        let orphan = Orphan {
            address: "aws_glue_catalog_table.old".into(),
            component: Component::Catalog,
            name: "old".into(),
            id: "d.old".into(),
            attributes: serde_json::from_value(json!({"columns": []})).unwrap(),
            depends_on: vec!["aws_glue_catalog_database.main".into()],
        };
        let plan = run(Mode::Apply, &resources, &[], &[orphan]);
        assert_eq!(
            actions(&plan),
            [
                ("aws_glue_catalog_table.old".into(), Action::Delete),
                ("aws_glue_catalog_database.main".into(), Action::Create)
            ]
        );
        assert_eq!(plan.changes[0].attributes[0].before, Some(json!([])));
    }

    #[test]
    fn destroy_deletes_present_resources_dependents_first() {
        let resources = [
            resource("aws_vpc.main", json!({"cidr_block": "10.0.0.0/16"}), &[], &[]),
            resource("aws_subnet.a", json!({"cidr_block": "10.0.0.0/20"}), &[], &["aws_vpc.main"]),
            resource("aws_subnet.b", json!({"cidr_block": "10.0.16.0/20"}), &[], &["aws_vpc.main"]),
        ];
        let observed = [
            ("aws_vpc.main", present("vpc-1", json!({"cidr_block": "10.0.0.0/16"}))),
            ("aws_subnet.a", present("subnet-1", json!({"cidr_block": "10.0.0.0/20"}))),
        ];
        let plan = run(Mode::Destroy, &resources, &observed, &[]);
        assert_eq!(actions(&plan), [("aws_subnet.a".into(), Action::Delete), ("aws_vpc.main".into(), Action::Delete)]);
        assert_eq!(plan.summary().destroy, 2);
        assert!(plan.changes.iter().all(|c| c.desired.is_none()));
    }

    fn destroy(
        resources: &[Resource],
        observed: &[(String, Observed)],
        data: &[(&str, &str)],
        delete_data: bool,
    ) -> Plan {
        let observed: BTreeMap<String, Observed> = observed.iter().cloned().collect();
        let data: BTreeMap<String, String> = data.iter().map(|(a, d)| (a.to_string(), d.to_string())).collect();
        diff(Input {
            mode: Mode::Destroy,
            environment: "t",
            inputs_digest: "in",
            observed_digest: "obs",
            resources,
            observed: &observed,
            orphans: &[],
            gaps: &BTreeMap::new(),
            data: &data,
            delete_data,
        })
    }

    /// The lake of one data zone and the artifacts zone, plus a VPC that has nothing to do with
    /// it; every resource present.
    fn lake() -> (Vec<Resource>, Vec<(String, Observed)>) {
        let protecting = |mut r: Resource, holder: &str| {
            r.protects = vec![holder.to_owned()];
            r
        };
        let mut raw = resource("aws_s3_bucket.raw", json!({}), &[], &["aws_kms_key.lake"]);
        raw.holds_data = true;
        let resources = vec![
            protecting(resource("aws_kms_key.lake", json!({}), &[], &[]), "aws_s3_bucket.raw"),
            protecting(resource("aws_kms_alias.lake", json!({}), &[], &["aws_kms_key.lake"]), "aws_s3_bucket.raw"),
            raw,
            protecting(
                resource("aws_s3_bucket_versioning.raw", json!({}), &[], &["aws_s3_bucket.raw"]),
                "aws_s3_bucket.raw",
            ),
            protecting(
                resource(
                    "aws_s3_bucket_server_side_encryption_configuration.raw",
                    json!({}),
                    &[],
                    &["aws_s3_bucket.raw", "aws_kms_alias.lake"],
                ),
                "aws_s3_bucket.raw",
            ),
            resource("aws_s3_bucket.artifacts", json!({}), &[], &["aws_kms_key.lake"]),
            resource(
                "aws_s3_bucket_server_side_encryption_configuration.artifacts",
                json!({}),
                &[],
                &["aws_s3_bucket.artifacts", "aws_kms_alias.lake"],
            ),
            resource("aws_vpc.main", json!({}), &[], &[]),
        ];
        let observed = all_present(&resources);
        (resources, observed)
    }

    fn all_present(resources: &[Resource]) -> Vec<(String, Observed)> {
        resources.iter().map(|r| (r.address.clone(), present(&format!("id-{}", r.address), json!({})))).collect()
    }

    fn kept_reasons(plan: &Plan) -> Vec<(String, String)> {
        plan.kept.iter().map(|k| (k.address.clone(), k.reason.clone())).collect()
    }

    #[test]
    fn a_destroy_keeps_a_bucket_that_holds_data_with_everything_that_protects_it() {
        let (resources, observed) = lake();
        let plan = destroy(&resources, &observed, &[("aws_s3_bucket.raw", "3 object version(s)")], false);
        assert_eq!(
            kept_reasons(&plan),
            [
                ("aws_kms_key.lake".to_owned(), "protects aws_s3_bucket.raw, which is kept".to_owned()),
                ("aws_kms_alias.lake".to_owned(), "protects aws_s3_bucket.raw, which is kept".to_owned()),
                ("aws_s3_bucket.raw".to_owned(), "holds data: 3 object version(s)".to_owned()),
                ("aws_s3_bucket_versioning.raw".to_owned(), "protects aws_s3_bucket.raw, which is kept".to_owned()),
                (
                    "aws_s3_bucket_server_side_encryption_configuration.raw".to_owned(),
                    "protects aws_s3_bucket.raw, which is kept".to_owned()
                ),
            ]
        );
        // The rest goes, dependents first; nothing that protects the kept bucket is deleted.
        assert_eq!(
            actions(&plan),
            [
                ("aws_vpc.main".to_owned(), Action::Delete),
                ("aws_s3_bucket_server_side_encryption_configuration.artifacts".to_owned(), Action::Delete),
                ("aws_s3_bucket.artifacts".to_owned(), Action::Delete),
            ]
        );
        assert!(!plan.delete_data);
    }

    #[test]
    fn a_destroy_that_forces_or_finds_the_bucket_empty_deletes_everything_key_last() {
        let (resources, observed) = lake();
        for (data, force) in [(vec![("aws_s3_bucket.raw", "3 object version(s)")], true), (vec![], false)] {
            let plan = destroy(&resources, &observed, &data, force);
            assert!(plan.kept.is_empty(), "{:?}", plan.kept);
            assert_eq!(plan.changes.len(), resources.len());
            assert_eq!(plan.delete_data, force);
            let position = |a: &str| plan.changes.iter().position(|c| c.address == a).unwrap();
            // The key is scheduled for deletion only after every bucket it encrypts is gone.
            assert!(position("aws_kms_key.lake") > position("aws_s3_bucket.raw"));
            assert!(position("aws_kms_key.lake") > position("aws_s3_bucket.artifacts"));
        }
    }

    #[test]
    fn a_kept_cluster_keeps_what_it_needs_transitively_and_what_serves_it() {
        let mut cluster = resource("aws_redshift_cluster.main", json!({}), &[], &["aws_redshift_subnet_group.main"]);
        cluster.holds_data = true;
        let mut schema =
            resource("aws_redshiftdata_statement.external_schema", json!({}), &[], &["aws_redshift_cluster.main"]);
        schema.protects = vec!["aws_redshift_cluster.main".into()];
        let resources = vec![
            resource("aws_vpc.main", json!({}), &[], &[]),
            resource("aws_subnet.a", json!({}), &[], &["aws_vpc.main"]),
            resource("aws_route_table.private", json!({}), &[], &["aws_vpc.main"]),
            resource("aws_redshift_subnet_group.main", json!({}), &[], &["aws_subnet.a"]),
            cluster,
            schema,
        ];
        let observed = all_present(&resources);
        let plan = destroy(&resources, &observed, &[("aws_redshift_cluster.main", "tables")], false);
        let kept: Vec<String> = plan.kept.iter().map(|k| k.address.clone()).collect();
        assert_eq!(
            kept,
            [
                "aws_vpc.main",
                "aws_subnet.a",
                "aws_redshift_subnet_group.main",
                "aws_redshift_cluster.main",
                "aws_redshiftdata_statement.external_schema"
            ]
        );
        assert_eq!(plan.kept[1].reason, "aws_redshift_subnet_group.main needs it, which is kept");
        assert_eq!(actions(&plan), [("aws_route_table.private".to_owned(), Action::Delete)]);
    }

    #[test]
    fn a_data_holder_that_cannot_be_read_keeps_what_protects_it() {
        let (resources, mut observed) = lake();
        for (address, o) in observed.iter_mut() {
            if *address == "aws_s3_bucket.raw" {
                *o = Observed::Unverifiable { reason: "cannot read it".into() };
            }
        }
        let plan = destroy(&resources, &observed, &[], false);
        let kept: Vec<String> = plan.kept.iter().map(|k| k.address.clone()).collect();
        assert!(kept.contains(&"aws_s3_bucket_versioning.raw".to_owned()), "{kept:?}");
        assert!(kept.contains(&"aws_kms_key.lake".to_owned()), "{kept:?}");
        assert!(!plan.changes.iter().any(|c| c.address.ends_with(".raw")), "{:?}", actions(&plan));
    }

    #[test]
    fn an_apply_plan_keeps_nothing() {
        let (resources, observed) = lake();
        let observed: BTreeMap<String, Observed> = observed.into_iter().collect();
        let plan = apply_plan("t", &resources, &observed, &BTreeMap::new());
        assert!(plan.kept.is_empty() && !plan.delete_data && !plan.has_changes());
    }
}
