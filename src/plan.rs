//! The plan: desired resources, what AWS reports for them, and the changes between the two.
//!
//! Three layers are kept apart:
//! - desired state: [`Resource`]s computed from an environment by [`crate::desired`] (pure, no
//!   SDK types);
//! - observed state: one [`Observed`] per resource, read by [`crate::provider`];
//! - the diff ([`diff::diff`]): pure and synchronous, it yields a fully specified [`Plan`]
//!   (create, update in place, replace with the attributes that force it, delete), each
//!   change with attribute-level before/after. Apply makes no decision the plan did not record.
//!
//! Attribute values are JSON values so that plans can be saved (`--out`) and read by machines
//! (`--json`); sets are sorted by whoever builds them so that equal means equal.

pub mod diff;
pub mod file;
pub mod kind;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Attribute name -> value, sorted by name.
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// The platform's components; every resource belongs to one (tag `indutech:component`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// VPC, subnets, route table, security groups, S3 gateway endpoint.
    Network,
    /// Customer gateway, VPN gateway or transit gateway, VPN connection, routes.
    Vpn,
    /// KMS key and the raw, curated, rejected and artifacts buckets with their settings.
    Lake,
    /// The audit trail: the logs bucket, the lake buckets' S3 server access logging into it,
    /// and the VPC's flow logs.
    Audit,
    /// Glue database and one table per stream.
    Catalog,
    /// Redshift cluster, subnet group, Spectrum role, external schema.
    Warehouse,
    /// Redpanda broker instances and the streams' topics.
    Redpanda,
    /// AWS Managed Microsoft AD and its trust to the on-premises forest.
    Directory,
    /// The streaming worker's deployment: a local supervised process (`local` runtime), or the
    /// binary in the artifacts bucket, its IAM role and instance profile and the instances (`ec2`).
    Worker,
    /// The cold path (with `[erp]`): AWS DMS replicating the factory's ERP tables into the raw
    /// zone: subnet group, replication instance, source and target endpoints, replication task
    /// and DMS's IAM role.
    Migration,
}

impl Component {
    /// Every component, in the order plans list them.
    pub const ALL: [Component; 10] = [
        Component::Network,
        Component::Vpn,
        Component::Lake,
        Component::Audit,
        Component::Catalog,
        Component::Warehouse,
        Component::Redpanda,
        Component::Directory,
        Component::Worker,
        Component::Migration,
    ];

    /// The name used in tags, addresses and `--component`.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Network => "network",
            Component::Vpn => "vpn",
            Component::Lake => "lake",
            Component::Audit => "audit",
            Component::Catalog => "catalog",
            Component::Warehouse => "warehouse",
            Component::Redpanda => "redpanda",
            Component::Directory => "directory",
            Component::Worker => "worker",
            Component::Migration => "migration",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Component {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Component::ALL.iter().map(|c| c.as_str()).collect();
            format!("unknown component `{s}`, expected one of: {}", names.join(", "))
        })
    }
}

/// One resource indutech manages, as the environment wants it.
///
/// `address` is `<type>.<key>` with Terraform's resource type names (`aws_s3_bucket.raw`), so
/// that the Terraform export maps one to one. `name` is the deterministic AWS name (bucket
/// name, `Name` tag, role name...) by which the provider finds it: there is no state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `<type>.<key>`, unique in a plan.
    pub address: String,
    /// The component it belongs to.
    pub component: Component,
    /// Deterministic AWS name.
    pub name: String,
    /// Desired attributes, compared with what the provider reports.
    pub attributes: Attributes,
    /// Attributes that cannot change in place: a difference in one of them means replace.
    pub replace_on: Vec<String>,
    /// Addresses of the resources this one needs (created before it, deleted after it).
    pub depends_on: Vec<String>,
    /// Whether creating it again when it exists changes nothing (`CREATE ... IF NOT EXISTS`):
    /// such a resource is created even when the target cannot report whether it exists.
    #[serde(default)]
    pub idempotent_create: bool,
    /// Whether it can exist only on one of its dependencies (a topic on the broker instances):
    /// when every instance it needs is absent it is absent, and is not read (there is nothing
    /// to ask); the other dependencies (the admin principal's secret) do not count.
    #[serde(default)]
    pub lives_on_dependencies: bool,
    /// Whether it holds data that only `--force-delete-data` may delete (a lake bucket other
    /// than artifacts, the Redshift cluster, a topic): destroy keeps it, with what protects it,
    /// when it holds any ([`crate::plan::diff`] decides before the first deletion).
    #[serde(default)]
    pub holds_data: bool,
    /// Addresses of the data holders this resource protects or serves (a bucket's encryption,
    /// versioning, public access block, policy and lifecycle; the lake key; the Glue tables of
    /// the curated zone; the cluster's external schema): kept while any of them is kept.
    #[serde(default)]
    pub protects: Vec<String>,
    /// What the provider sends besides the attributes and the plan neither shows nor saves,
    /// computed with the desired state: an instance's user data (UTF-8 cloud-init, before
    /// compression; the attribute `user_data_sha256` is its digest), the external schema's
    /// SQL (with [`ROLE_ARN_PLACEHOLDER`] where the role's ARN goes). A saved plan has none:
    /// `apply PLAN_FILE` performs the plan computed again, which has it.
    #[serde(skip)]
    pub content: Option<String>,
}

/// Where a resource's [`Resource::content`] takes the ARN of the IAM role named by its
/// `iam_role` attribute, known only once the role exists (the provider and the Terraform export
/// put it in).
pub const ROLE_ARN_PLACEHOLDER: &str = "@ROLE_ARN@";

impl Resource {
    /// The resource type, the part of the address before the first dot.
    ///
    /// Panics on a type indutech does not manage: addresses come from desired state, which
    /// names only types of [`kind::Kind`] (unit-tested for every shipped environment), and a
    /// saved plan is only compared, never performed.
    pub fn kind(&self) -> kind::Kind {
        kind::Kind::of(&self.address).unwrap_or_else(|e| panic!("{e:#} (a bug)"))
    }
}

/// The resource type of an address (`aws_s3_bucket.raw` -> `aws_s3_bucket`).
pub fn kind_of(address: &str) -> &str {
    address.split_once('.').map_or(address, |(kind, _)| kind)
}

/// What a provider reports for one desired resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Observed {
    /// Nothing with the resource's name exists.
    Absent,
    /// It exists; `attributes` has the same keys as the desired resource.
    Present {
        /// AWS identifier (bucket name, `vpc-...`, ARN...).
        id: String,
        /// What AWS reports, normalised like the desired attributes.
        attributes: Attributes,
    },
    /// The target does not implement the API needed to read it (an emulator's gap).
    Unverifiable {
        /// Which operation failed where, and why.
        reason: String,
    },
}

/// What apply will do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Does not exist: create it.
    Create,
    /// Exists and differs in attributes that can change in place.
    Update,
    /// Exists and differs in an attribute that forces a new resource: delete, then create.
    Replace,
    /// Exists and is no longer wanted (or `destroy`).
    Delete,
}

impl Action {
    /// The action in lower case: `create`, `update`, `replace`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One attribute's before and after; `None` where the resource does not exist on that side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Attribute name.
    pub name: String,
    /// What AWS has now.
    pub before: Option<serde_json::Value>,
    /// What the environment wants.
    pub after: Option<serde_json::Value>,
    /// Whether this difference is why the resource is replaced.
    pub forces_replacement: bool,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The resource's address.
    pub address: String,
    /// Its component.
    pub component: Component,
    /// Its deterministic AWS name.
    pub name: String,
    /// What apply does.
    pub action: Action,
    /// AWS identifier of the existing resource (update, replace, delete).
    pub id: Option<String>,
    /// Attribute-level before/after; for create every desired attribute, for delete every
    /// observed one, otherwise only those that differ.
    pub attributes: Vec<AttributeChange>,
    /// For replace: why (attributes that force it, or a replaced dependency).
    pub replace_reasons: Vec<String>,
    /// The desired resource (absent for delete).
    pub desired: Option<Resource>,
    /// Addresses of the resources this one needs: apply creates them first and deletes them
    /// after this one.
    pub depends_on: Vec<String>,
}

impl Change {
    /// The existing resource as the plan observed it, for the delete step of a delete or a
    /// replace: the observed (`before`) value of every attribute the change lists (a delete
    /// lists all), the desired value of the others; address, component and name; no
    /// dependencies or flags.
    pub fn observed_resource(&self) -> Resource {
        let mut attributes = self.desired.as_ref().map(|d| d.attributes.clone()).unwrap_or_default();
        for change in &self.attributes {
            match &change.before {
                Some(before) => attributes.insert(change.name.clone(), before.clone()),
                None => attributes.remove(&change.name),
            };
        }
        Resource {
            address: self.address.clone(),
            component: self.component,
            name: self.name.clone(),
            attributes,
            replace_on: Vec::new(),
            depends_on: Vec::new(),
            idempotent_create: false,
            lives_on_dependencies: false,
            holds_data: false,
            protects: Vec::new(),
            content: None,
        }
    }
}

/// A step the plan could not verify or that the target cannot perform, said out loud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The resource concerned.
    pub address: String,
    /// What could not be done and why.
    pub message: String,
}

/// A fully specified plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Saved-plan format version, [`Plan::FORMAT_VERSION`].
    pub format_version: u32,
    /// `plan` or `destroy`.
    pub mode: Mode,
    /// Environment name.
    pub environment: String,
    /// SHA-256 (hex) of the environment and stream files the plan was computed from.
    pub inputs_digest: String,
    /// SHA-256 (hex) of everything observed in AWS; a saved plan is stale when it changes.
    pub observed_digest: String,
    /// Number of desired resources considered.
    pub resource_count: usize,
    /// The changes, in apply order (dependencies first; deletes of dependents first).
    pub changes: Vec<Change>,
    /// Steps the target could not verify or perform.
    pub notices: Vec<Notice>,
    /// Destroy only: whether data holders are deleted too (`--force-delete-data`).
    #[serde(default)]
    pub delete_data: bool,
    /// Destroy only: existing resources destroy keeps, and why (they hold data, protect or
    /// serve what does, or are needed by what is kept). Empty with `--force-delete-data`.
    #[serde(default)]
    pub kept: Vec<Kept>,
}

/// A resource a destroy plan keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Its address.
    pub address: String,
    /// Its AWS identifier.
    pub id: String,
    /// Why it is kept, as a sentence fragment ("holds data: ...", "protects aws_s3_bucket.raw").
    pub reason: String,
}

/// A resource that exists in AWS with the environment's tags or names but that the environment
/// no longer describes (a removed stream's table, a broker beyond `broker_count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    /// Address it would have (`aws_glue_catalog_table.old_stream`).
    pub address: String,
    /// Its component.
    pub component: Component,
    /// Its AWS name.
    pub name: String,
    /// Its AWS identifier.
    pub id: String,
    /// What AWS reports.
    pub attributes: Attributes,
    /// Addresses it needs (deleted after it).
    pub depends_on: Vec<String>,
}

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Converge AWS on the environment.
    Apply,
    /// Delete every resource of the environment.
    Destroy,
}

/// Counts per action: (add, change, replace, destroy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources to create.
    pub add: usize,
    /// Resources to update in place.
    pub change: usize,
    /// Resources to replace.
    pub replace: usize,
    /// Resources to delete.
    pub destroy: usize,
}

impl Plan {
    /// Version written in saved plans; a saved plan of another version is refused.
    pub const FORMAT_VERSION: u32 = 2;

    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => summary.add += 1,
                Action::Update => summary.change += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.destroy += 1,
            }
        }
        summary
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}
