//! indutech provisions a hybrid AWS IoT data platform, deploys its streaming worker and proves
//! it works.
//!
//! Map of the modules (see ARCHITECTURE.md for the invariants):
//! - [`cli`]: one file per verb, each parsing its arguments and calling into the modules below;
//! - [`config`]: environment and stream files -> a validated [`config::environment::Environment`],
//!   with every problem reported at once (file, line, column, field); pure, no AWS call;
//! - [`model`]: desired-state building blocks derived from an environment: deterministic names,
//!   tags, ports, the consumer group, subnet layout and fixed broker and worker addresses
//!   ([`model::addressing`], over plain numbers), the addresses several modules write
//!   ([`model::address`]); pure, no SDK types;
//! - [`desired`]: the environment -> every desired `Resource` (names, attributes, dependencies,
//!   content such as the instances' cloud-init); [`desired::render`] renders the files from
//!   `templates/` (cloud-init, the factory's swanctl.conf);
//! - [`graph`]: the platform as a picture (SVG laid out in-process, DOT, Mermaid), pure;
//! - [`plan`]: the plan's types, the pure diff, the plan's text, the saved plan's file, the
//!   resource types as enums ([`plan::kind`]);
//! - [`provider`]: observe, create, update and delete each resource type through the SDKs;
//! - [`engine`]: observe in parallel, diff, and execute a plan in dependency order
//!   ([`engine::schedule`] takes the step to perform as a function);
//! - [`lock`]: the environment's state bucket and the lock with its lease;
//! - [`gaps`]: the record of what the target could not create (in the state bucket);
//! - [`export`]: the environment as Terraform (`export terraform`);
//! - [`aws`]: the only place AWS SDK clients are configured (region, endpoints, retries);
//! - [`artifact`]: the running binary and its digest (what apply deploys as the worker);
//! - [`digest`]: SHA-256 as lower-case hex, the one way content is digested;
//! - [`worker`]: the streaming worker (topic -> typed Parquet in the lake, exactly once);
//! - [`smoke`]: the smoke test's checks (platform rows from one observation, data replayed
//!   through the worker and read back);
//! - [`produce`]: the ticket generator and the CSV replay that feed the topics.

pub mod artifact;
pub mod aws;
pub mod cli;
pub mod config;
pub mod desired;
pub mod digest;
pub mod engine;
pub mod export;
pub mod gaps;
pub mod graph;
pub mod kafka;
pub mod load;
pub mod lock;
pub mod model;
pub mod plan;
pub mod produce;
pub mod provider;
pub mod smoke;
pub mod worker;
