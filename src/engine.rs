//! Plan and apply: observe every desired resource in parallel, diff, and execute a plan's
//! changes concurrently in dependency order.
//!
//! Execution has two phases: first every delete (and the delete half of each replace),
//! dependents before what they need; then every create and update (and the create half of each
//! replace), dependencies first. Within a phase a change starts as soon as the changes it
//! waits for are done, up to `parallelism` at a time. A failed change blocks only what depends
//! on it; independent changes go on. Apply performs exactly the plan's changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::environment::Environment;
use crate::desired;
use crate::plan::diff::{Input, diff};
use crate::plan::kind::Kind;
use crate::plan::{Action, Change, Component, Mode, Observed, Orphan, Plan, Resource};
use crate::provider::{self, Context, NotImplemented, Step};

/// A plan reads at most this many resources at once unless [`Options::read_concurrency`] says
/// otherwise.
pub const READ_CONCURRENCY: usize = 16;

/// Changes performed at once unless `--parallelism` says otherwise (Terraform's default).
pub const PARALLELISM: usize = 10;

/// How a plan is observed and executed, resolved once from the command line and passed to
/// [`observe`], [`plan_from`] and [`execute`] (the context holds no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Changes performed at once (`--parallelism`; 0 counts as 1).
    pub parallelism: usize,
    /// Resources read at once while planning (0 counts as 1).
    pub read_concurrency: usize,
    /// A destroy deletes what holds data too (`--force-delete-data`), instead of keeping it
    /// with everything that protects it.
    pub force_delete_data: bool,
    /// An apply may replace several Redpanda brokers at once (`--replace-brokers-at-once`).
    pub replace_brokers_at_once: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            parallelism: PARALLELISM,
            read_concurrency: READ_CONCURRENCY,
            force_delete_data: false,
            replace_brokers_at_once: false,
        }
    }
}

/// Why an apply of `plan` must not run without `--replace-brokers-at-once` (None: it may): it
/// replaces more than one Redpanda broker instance. A broker keeps its partitions on the
/// instance's local NVMe disk, so a replaced broker comes back empty; replacing several at
/// once can take every replica of a partition (with replication 3, any two brokers may hold
/// two of its three replicas). indutech does not roll brokers one at a time yet.
pub fn brokers_replaced_at_once(plan: &Plan) -> Option<String> {
    let brokers: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| {
            c.action == Action::Replace
                && c.component == Component::Redpanda
                && crate::plan::kind_of(&c.address) == "aws_instance"
        })
        .map(|c| c.address.as_str())
        .collect();
    (plan.mode == Mode::Apply && brokers.len() > 1).then(|| {
        format!(
            "this plan replaces {} Redpanda brokers at once ({}): a broker keeps its data on the instance's local \
             NVMe disk, so the replaced brokers come back empty and partitions whose replicas they all held are \
             lost. indutech cannot replace brokers one at a time yet: keep what forces the \
             replacement (AMI, instance type, redpanda.version, the rendered cloud-init) as it is deployed, or, \
             for a cluster that holds nothing to keep (a new or test environment), pass --replace-brokers-at-once",
            brokers.len(),
            brokers.join(", ")
        )
    })
}

/// SHA-256 (hex) of the validated environment: what a plan was computed from. Comments and
/// formatting of the files do not change it; any value does.
pub fn inputs_digest(environment: &Environment) -> String {
    let json = serde_json::to_vec(environment).expect("an environment serialises");
    crate::digest::sha256_hex(json)
}

/// Everything read from AWS for one plan.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Desired resources.
    pub resources: Vec<Resource>,
    /// Observed state per address.
    pub observed: BTreeMap<String, Observed>,
    /// Existing resources the environment no longer describes.
    pub orphans: Vec<Orphan>,
    /// Creates the target could not perform at the last apply ([`crate::gaps::read`]).
    pub gaps: BTreeMap<String, String>,
    /// Destroy only: present data holders ([`Resource::holds_data`]) -> what data they hold;
    /// an empty bucket has no entry. Empty for an apply plan, so that data landing in the
    /// lake never makes a saved apply plan stale.
    pub data: BTreeMap<String, String>,
}

impl Observation {
    /// SHA-256 (hex) of what was observed; a saved plan is stale when this changes.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(&(&self.observed, &self.orphans, &self.gaps, &self.data))
            .expect("observations serialise");
        crate::digest::sha256_hex(json)
    }
}

/// Reads every desired resource of `components` (all when empty) and the orphans, in parallel;
/// for a destroy also what data each present data holder holds.
///
/// Errors: the credentials are for another account than the environment's (before any other
/// call); a read failed (with the resource's address); emulator gaps are not errors but
/// [`Observed::Unverifiable`].
pub async fn observe(
    ctx: &Arc<Context>,
    mode: Mode,
    components: &[Component],
    options: &Options,
) -> anyhow::Result<Observation> {
    ctx.verify_account().await?;
    let resources = desired::resources(&ctx.environment, &ctx.binary_sha256()?, components);
    // Dependencies in components outside the selection are read too (their ids are needed to
    // create what depends on them) but are not part of the plan.
    let everything = desired::resources(&ctx.environment, &ctx.binary_sha256()?, &[]);
    let mut outside: Vec<Resource> = Vec::new();
    let mut frontier: Vec<&str> = resources.iter().flat_map(|r| r.depends_on.iter().map(String::as_str)).collect();
    while let Some(address) = frontier.pop() {
        let known = resources.iter().chain(outside.iter()).any(|r| r.address == address);
        if let Some(dependency) = everything.iter().find(|r| r.address == address).filter(|_| !known) {
            frontier.extend(dependency.depends_on.iter().map(String::as_str));
            outside.push(dependency.clone());
        }
    }
    let limit = Arc::new(Semaphore::new(options.read_concurrency.max(1)));
    let plan_addresses: HashSet<String> = resources.iter().map(|r| r.address.clone()).collect();
    let orphans = {
        let ctx = ctx.clone();
        let (resources, components) = (resources.clone(), components.to_vec());
        tokio::spawn(async move { provider::orphans(&ctx, &resources, &components).await })
    };
    // Everything in parallel, except what lives on its dependencies: that is read once they
    // are known, and not at all when none of the instances it lives on exists (a topic before
    // its brokers).
    let (later, first): (Vec<Resource>, Vec<Resource>) =
        resources.iter().chain(outside.iter()).cloned().partition(|r| r.lives_on_dependencies);
    let mut all = BTreeMap::new();
    let mut errors = Vec::new();
    read_all(ctx, &limit, first, &mut all, &mut errors).await?;
    // It lives on the instances it needs (a topic on its brokers), not on the secrets it reads.
    let (absent, readable): (Vec<Resource>, Vec<Resource>) = later.into_iter().partition(|r| {
        let mut hosts = r.depends_on.iter().filter(|d| matches!(Kind::of(d), Ok(Kind::Instance))).peekable();
        hosts.peek().is_some() && hosts.all(|d| matches!(all.get(d), Some(Observed::Absent)))
    });
    for resource in absent {
        all.insert(resource.address, Observed::Absent);
    }
    read_all(ctx, &limit, readable, &mut all, &mut errors).await?;
    let observed: BTreeMap<String, Observed> =
        all.into_iter().filter(|(address, _)| plan_addresses.contains(address)).collect();
    let orphans = orphans.await.context("the orphan listing panicked")??;
    let gaps = crate::gaps::read(ctx).await?;
    if !errors.is_empty() {
        errors.sort();
        anyhow::bail!("could not read {} resource(s):\n  {}", errors.len(), errors.join("\n  "));
    }
    let mut data = BTreeMap::new();
    if mode == Mode::Destroy {
        for resource in resources.iter().filter(|r| r.holds_data) {
            if matches!(observed.get(&resource.address), Some(Observed::Present { .. }))
                && let Some(what) = provider::data_held(ctx, resource)
                    .await
                    .with_context(|| format!("reading what {} holds", resource.address))?
            {
                data.insert(resource.address.clone(), what);
            }
        }
    }
    Ok(Observation { resources, observed, orphans, gaps, data })
}

/// Reads `resources` in parallel (at most `limit` at once) into `observed`; a failed read adds
/// its error (with the address) to `errors`.
///
/// Errors: a read task panicked.
async fn read_all(
    ctx: &Arc<Context>,
    limit: &Arc<Semaphore>,
    resources: Vec<Resource>,
    observed: &mut BTreeMap<String, Observed>,
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut reads = JoinSet::new();
    for resource in resources {
        let (ctx, limit) = (ctx.clone(), limit.clone());
        reads.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let observed = provider::observe(&ctx, &resource).await;
            (resource.address, observed)
        });
    }
    while let Some(joined) = reads.join_next().await {
        let (address, result) = joined.context("a read task panicked")?;
        match result {
            Ok(o) => {
                observed.insert(address, o);
            }
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    Ok(())
}

/// Observes and diffs: the plan for `mode`.
///
/// Errors: as [`observe`].
pub async fn plan(ctx: &Arc<Context>, mode: Mode, components: &[Component], options: &Options) -> anyhow::Result<Plan> {
    let observation = observe(ctx, mode, components, options).await?;
    Ok(plan_from(ctx, mode, &observation, options))
}

/// The diff of an observation; a destroy deletes data holders only with
/// `options.force_delete_data`.
pub fn plan_from(ctx: &Context, mode: Mode, observation: &Observation, options: &Options) -> Plan {
    diff(Input {
        mode,
        environment: &ctx.environment.name,
        inputs_digest: &inputs_digest(&ctx.environment),
        observed_digest: &observation.digest(),
        resources: &observation.resources,
        observed: &observation.observed,
        orphans: &observation.orphans,
        gaps: &observation.gaps,
        data: &observation.data,
        delete_data: options.force_delete_data,
    })
}

/// How one planned change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// The AWS call failed.
    Failed(String),
    /// The target does not implement a needed API (an emulator's gap): not performed.
    NotPerformed(String),
    /// Not attempted because a change it waits for did not succeed, or apply was interrupted.
    NotAttempted(String),
}

/// The result of executing a plan: one outcome per change, in plan order.
#[derive(Debug, Clone)]
pub struct Report {
    /// `(address, action, outcome)`.
    pub outcomes: Vec<(String, Action, Outcome)>,
    /// Whether an interrupt (SIGINT) stopped new changes from starting.
    pub interrupted: bool,
    /// Why the lock's lease was lost, if it was: no change started after that.
    pub lease_lost: Option<String>,
}

impl Report {
    /// Whether every change was done.
    pub fn complete(&self) -> bool {
        self.outcomes.iter().all(|(_, _, o)| *o == Outcome::Done)
    }
}

/// How often a running change says it is still running.
const STILL_EVERY: Duration = Duration::from_secs(10);

/// Progress lines on stderr while applying, Terraform style.
fn progress(line: &str) {
    eprintln!("{line}");
}

fn verb(action: Action, step: Step) -> (&'static str, &'static str) {
    match (action, step) {
        (Action::Create, _) | (Action::Replace, Step::Put) => ("Creating", "Creation"),
        (Action::Update, _) => ("Modifying", "Modifications"),
        (_, Step::Delete) => ("Destroying", "Destruction"),
        (Action::Delete, Step::Put) => ("Destroying", "Destruction"),
    }
}

/// A lease check that always holds, for runs without a lock.
pub fn no_lease() -> Result<(), String> {
    Ok(())
}

/// Executes `plan` (already observed, so `ctx` knows the ids of existing resources) against
/// AWS: [`schedule`] with [`provider::perform`], `options.parallelism` steps at once; data
/// holders are deleted only if the plan says so ([`Plan::delete_data`]).
///
/// `interrupt` set to true stops new changes from starting; running ones finish. `lease` is
/// asked before each change starts ([`crate::lock::Lease::check`]): once it fails, nothing
/// more starts and the report says why.
pub async fn execute(
    ctx: &Arc<Context>,
    plan: &Plan,
    options: &Options,
    interrupt: Arc<AtomicBool>,
    lease: &(dyn Fn() -> Result<(), String> + Sync),
) -> Report {
    let ctx = ctx.clone();
    let delete_data = plan.delete_data;
    let perform = move |change: Change, step: Step| {
        let ctx = ctx.clone();
        async move { provider::perform(&ctx, &change, step, delete_data).await }
    };
    schedule(plan, options.parallelism, interrupt, lease, perform).await
}

/// The scheduler behind [`execute`], with the target injected: `perform(change, step)` does
/// one step of one change (an AWS call in [`execute`], an in-memory target in the unit tests).
///
/// Deletes first (dependents before what they need), then creates and updates (dependencies
/// first); at most `parallelism` (at least 1) steps run at once; a change whose dependency did
/// not succeed is not attempted (reported `NotPerformed` when that dependency was, so a gap
/// spreads as a gap); an error carrying [`NotImplemented`] is a gap, any other a failure.
pub async fn schedule<P, F>(
    plan: &Plan,
    parallelism: usize,
    interrupt: Arc<AtomicBool>,
    lease: &(dyn Fn() -> Result<(), String> + Sync),
    perform: P,
) -> Report
where
    P: Fn(Change, Step) -> F,
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut outcomes: HashMap<String, Outcome> = HashMap::new();
    let mut lease_lost: Option<String> = None;
    for phase in [Step::Delete, Step::Put] {
        let in_phase: Vec<&Change> =
            plan.changes.iter().filter(|c| provider::steps(c.action).contains(&phase)).collect();
        let addresses: HashSet<&str> = in_phase.iter().map(|c| c.address.as_str()).collect();
        // For each change, the changes of this phase it must wait for.
        let waits: HashMap<&str, Vec<&str>> = in_phase
            .iter()
            .map(|c| {
                let waits: Vec<&str> = match phase {
                    Step::Put => c.depends_on.iter().map(String::as_str).filter(|d| addresses.contains(d)).collect(),
                    Step::Delete => in_phase
                        .iter()
                        .filter(|other| other.depends_on.contains(&c.address))
                        .map(|other| other.address.as_str())
                        .collect(),
                };
                (c.address.as_str(), waits)
            })
            .collect();
        let mut pending: Vec<&Change> = in_phase.clone();
        let mut finished: HashMap<String, bool> = HashMap::new(); // address -> succeeded
        let mut running: JoinSet<(String, anyhow::Result<()>, Duration)> = JoinSet::new();
        let limit = parallelism.max(1);
        loop {
            // Start (or give up on) what is ready.
            let mut i = 0;
            while i < pending.len() {
                let change = pending[i];
                let waits_for = &waits[change.address.as_str()];
                if let Some(blocker) = waits_for.iter().find(|w| finished.get(**w) == Some(&false)) {
                    // What needs a step the target cannot perform cannot be performed either.
                    let outcome = match outcomes.get(*blocker) {
                        Some(Outcome::NotPerformed(why)) => Outcome::NotPerformed(format!("it needs {blocker}: {why}")),
                        _ => Outcome::NotAttempted(format!("{blocker} did not succeed")),
                    };
                    outcomes.entry(change.address.clone()).or_insert(outcome);
                    finished.insert(change.address.clone(), false);
                    pending.remove(i);
                    continue;
                }
                if previous_failure(&outcomes, change) {
                    finished.insert(change.address.clone(), false);
                    pending.remove(i);
                    continue;
                }
                if interrupt.load(Ordering::SeqCst) {
                    outcomes.entry(change.address.clone()).or_insert(Outcome::NotAttempted("interrupted".into()));
                    finished.insert(change.address.clone(), false);
                    pending.remove(i);
                    continue;
                }
                let ready = waits_for.iter().all(|w| finished.get(*w) == Some(&true));
                if ready
                    && running.len() < limit
                    && lease_lost.is_none()
                    && let Err(why) = lease()
                {
                    progress(&format!("Stopping: {why}. No further change starts."));
                    lease_lost = Some(why);
                }
                if let Some(why) = &lease_lost {
                    outcomes
                        .entry(change.address.clone())
                        .or_insert(Outcome::NotAttempted(format!("not started: {why}")));
                    finished.insert(change.address.clone(), false);
                    pending.remove(i);
                    continue;
                }
                if ready && running.len() < limit {
                    let work = perform(change.clone(), phase);
                    let (doing, _) = verb(change.action, phase);
                    progress(&format!("{}: {doing}...", change.address));
                    let still = format!("{}: Still {}...", change.address, doing.to_lowercase());
                    let address = change.address.clone();
                    running.spawn(async move {
                        let started = Instant::now();
                        tokio::pin!(work);
                        // Terraform's heartbeat for long waits (cluster available, instances
                        // running): a line every STILL_EVERY while the change runs.
                        let mut ticks = tokio::time::interval_at(
                            tokio::time::Instant::from_std(started) + STILL_EVERY,
                            STILL_EVERY,
                        );
                        let result = loop {
                            tokio::select! {
                                result = &mut work => break result,
                                _ = ticks.tick() => {
                                    progress(&format!("{still} [{}s elapsed]", started.elapsed().as_secs()));
                                }
                            }
                        };
                        (address, result, started.elapsed())
                    });
                    pending.remove(i);
                    continue;
                }
                i += 1;
            }
            if running.is_empty() {
                break;
            }
            let Some(joined) = running.join_next().await else { break };
            let (address, result, elapsed) = match joined {
                Ok(done) => done,
                Err(err) => {
                    progress(&format!("a change panicked: {err}"));
                    continue;
                }
            };
            let change = in_phase.iter().find(|c| c.address == address).expect("a change of this phase");
            let (_, done) = verb(change.action, phase);
            match result {
                Ok(()) => {
                    let is_last_step = *provider::steps(change.action).last().expect("a step") == phase;
                    if is_last_step {
                        outcomes.insert(address.clone(), Outcome::Done);
                    }
                    progress(&format!("{address}: {done} complete after {:.1}s", elapsed.as_secs_f64()));
                    finished.insert(address, true);
                }
                Err(err) => {
                    let outcome = match err.downcast_ref::<NotImplemented>() {
                        Some(gap) => {
                            progress(&format!("{address}: NOT PERFORMED: {gap}"));
                            Outcome::NotPerformed(gap.to_string())
                        }
                        None => {
                            progress(&format!("{address}: FAILED: {err:#}"));
                            Outcome::Failed(format!("{err:#}"))
                        }
                    };
                    outcomes.insert(address.clone(), outcome);
                    finished.insert(address, false);
                }
            }
        }
    }
    let outcomes = plan
        .changes
        .iter()
        .map(|c| {
            let outcome = outcomes.remove(&c.address).unwrap_or(Outcome::NotAttempted("interrupted".into()));
            (c.address.clone(), c.action, outcome)
        })
        .collect();
    Report { outcomes, interrupted: interrupt.load(Ordering::SeqCst), lease_lost }
}

/// A replace whose delete half failed must not attempt its create half.
fn previous_failure(outcomes: &HashMap<String, Outcome>, change: &Change) -> bool {
    outcomes.get(&change.address).is_some_and(|o| *o != Outcome::Done)
}

/// After an apply: writes the gaps record (`_indutech/gaps.json`) when `report` changed it, so
/// the next plan shows what the target could not create as a notice, not as a change.
///
/// Errors: the record cannot be written to the artifacts bucket.
pub async fn record_gaps(ctx: &Context, observation: &Observation, report: &Report) -> anyhow::Result<()> {
    let mut gaps = updated_gaps(observation.gaps.clone(), report);
    for (address, why) in ctx.partial_gaps() {
        gaps.insert(address, format!("at the last apply, {why}"));
    }
    if gaps != observation.gaps {
        crate::gaps::write(ctx, &gaps).await?;
    }
    Ok(())
}

/// The gaps record after `report`: creates and updates the target did not implement are
/// added, done ones removed.
pub fn updated_gaps(mut gaps: BTreeMap<String, String>, report: &Report) -> BTreeMap<String, String> {
    for (address, action, outcome) in &report.outcomes {
        match outcome {
            Outcome::NotPerformed(why) if matches!(action, Action::Create | Action::Update) => {
                gaps.insert(address.clone(), format!("at the last apply, {why}"));
            }
            Outcome::Done => {
                gaps.remove(address);
            }
            _ => {}
        }
    }
    gaps
}

/// A Terraform-like closing line for a report.
pub fn report_text(report: &Report, mode: Mode) -> String {
    let count = |f: &dyn Fn(&Action, &Outcome) -> bool| report.outcomes.iter().filter(|(_, a, o)| f(a, o)).count();
    let done = |a: Action| count(&|action, o| *action == a && *o == Outcome::Done);
    let mut out = String::new();
    let word = if mode == Mode::Destroy { "Destroy" } else { "Apply" };
    let gaps = report.outcomes.iter().filter(|(_, _, o)| matches!(o, Outcome::NotPerformed(_))).count();
    let only_gaps = report.outcomes.iter().all(|(_, _, o)| matches!(o, Outcome::Done | Outcome::NotPerformed(_)));
    let headline = if let Some(why) = &report.lease_lost {
        format!("{word} stopped: {why}. Nothing was started after that; plan again before running it again.")
    } else if report.complete() {
        format!("{word} complete!")
    } else if only_gaps && !report.interrupted {
        format!(
            "{word} complete except {gaps} step(s) this target does not implement (listed below; plan will show them)."
        )
    } else if report.interrupted {
        format!("{word} interrupted: run it again to finish (nothing done so far is lost or duplicated).")
    } else {
        format!("{word} incomplete!")
    };
    out.push_str(&format!(
        "{headline} Resources: {} added, {} changed, {} replaced, {} destroyed.\n",
        done(Action::Create),
        done(Action::Update),
        done(Action::Replace),
        done(Action::Delete)
    ));
    for (address, _, outcome) in &report.outcomes {
        match outcome {
            Outcome::Done => {}
            Outcome::Failed(why) => out.push_str(&format!("  failed: {address}: {why}\n")),
            Outcome::NotPerformed(why) => {
                out.push_str(&format!("  not performed (the target lacks the API): {address}: {why}\n"))
            }
            Outcome::NotAttempted(why) => out.push_str(&format!("  not attempted: {address}: {why}\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The scheduler against an in-memory target: what apply promises, without AWS.

    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn the_gaps_record_keeps_creates_and_updates_not_performed_and_drops_what_was_done() {
        let before = BTreeMap::from([
            ("aws_a.done_now".to_owned(), "at the last apply, X".to_owned()),
            ("aws_a.still".to_owned(), "at the last apply, X".to_owned()),
        ]);
        let report = Report {
            outcomes: vec![
                ("aws_a.done_now".into(), Action::Create, Outcome::Done),
                ("aws_a.created".into(), Action::Create, Outcome::NotPerformed("C is not implemented".into())),
                ("aws_a.updated".into(), Action::Update, Outcome::NotPerformed("U is not implemented".into())),
                ("aws_a.deleted".into(), Action::Delete, Outcome::NotPerformed("D is not implemented".into())),
            ],
            interrupted: false,
            lease_lost: None,
        };
        let after = updated_gaps(before, &report);
        assert_eq!(
            after,
            BTreeMap::from([
                ("aws_a.created".to_owned(), "at the last apply, C is not implemented".to_owned()),
                ("aws_a.still".to_owned(), "at the last apply, X".to_owned()),
                ("aws_a.updated".to_owned(), "at the last apply, U is not implemented".to_owned()),
            ])
        );
    }

    #[test]
    fn replacing_more_than_one_broker_at_once_is_refused_unless_asked() {
        let environment = crate::config::shipped("prod");
        let brokers: Vec<Resource> = desired::resources(&environment, &"0".repeat(64), &[Component::Redpanda])
            .into_iter()
            .filter(|r| r.kind() == crate::plan::kind::Kind::Instance)
            .collect();
        assert_eq!(brokers.len(), 3);
        // Observed as desired, except the user data of the brokers in `changed`.
        let observed = |changed: &[usize]| -> BTreeMap<String, Observed> {
            brokers
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut attributes = r.attributes.clone();
                    if changed.contains(&i) {
                        attributes.insert("user_data_sha256".into(), serde_json::json!("old"));
                    }
                    (r.address.clone(), Observed::Present { id: format!("i-{i}"), attributes })
                })
                .collect()
        };
        let plan = |mode: Mode, changed: &[usize]| crate::plan::diff::testing::plan(mode, &brokers, &observed(changed));
        let why = brokers_replaced_at_once(&plan(Mode::Apply, &[0, 2])).expect("two brokers at once: refused");
        assert!(
            why.contains("replaces 2 Redpanda brokers at once (aws_instance.broker_0, aws_instance.broker_2)"),
            "{why}"
        );
        assert!(why.contains("--replace-brokers-at-once"), "{why}");
        assert_eq!(brokers_replaced_at_once(&plan(Mode::Apply, &[1])), None, "one broker at a time is allowed");
        assert_eq!(brokers_replaced_at_once(&plan(Mode::Destroy, &[0, 1, 2])), None, "destroy deletes, never replaces");
    }

    /// An in-memory target: address -> what exists, and every step in the order it ran.
    #[derive(Default)]
    struct Target {
        existing: Mutex<BTreeMap<String, Observed>>,
        /// Each planned resource's dependencies (recorded by [`Target::plan`]).
        depends: Mutex<BTreeMap<String, Vec<String>>>,
        log: Mutex<Vec<String>>,
        /// Addresses whose step fails with this error text ("gap": a NotImplemented).
        failing: BTreeMap<String, &'static str>,
        /// Addresses whose steps take 50 ms instead of 5.
        slow: Vec<&'static str>,
        /// A step does not finish before this many ran at once (or 2 s passed): so the
        /// concurrency the scheduler allows is reached whatever the machine's load.
        hold_until: usize,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
    }

    impl Target {
        /// The plan from what exists here now.
        fn plan(&self, mode: Mode, resources: &[Resource]) -> Plan {
            let mut depends = self.depends.lock().unwrap();
            depends.extend(resources.iter().map(|r| (r.address.clone(), r.depends_on.clone())));
            drop(depends);
            let observed = self.existing.lock().unwrap().clone();
            crate::plan::diff::testing::plan(mode, resources, &observed)
        }

        /// Performs one step: refuses one that breaks the order promise, then changes what
        /// exists.
        fn perform(self: &Arc<Self>, change: Change, step: Step) -> impl Future<Output = anyhow::Result<()>> + use<> {
            let target = self.clone();
            async move {
                let now = target.running.fetch_add(1, Ordering::SeqCst) + 1;
                target.most_at_once.fetch_max(now, Ordering::SeqCst);
                let slow = target.slow.contains(&change.address.as_str());
                tokio::time::sleep(Duration::from_millis(if slow { 50 } else { 5 })).await;
                let deadline = Instant::now() + Duration::from_secs(2);
                while target.most_at_once.load(Ordering::SeqCst) < target.hold_until && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                target.running.fetch_sub(1, Ordering::SeqCst);
                target.log.lock().unwrap().push(change.address.clone());
                match target.failing.get(&change.address) {
                    Some(&"gap") => {
                        let gap = NotImplemented {
                            operation: "CreateThing".into(),
                            endpoint: "memory".into(),
                            detail: "HTTP 501".into(),
                        };
                        return Err(gap.into());
                    }
                    Some(why) => anyhow::bail!("{why}"),
                    None => {}
                }
                let depends = target.depends.lock().unwrap().clone();
                let mut existing = target.existing.lock().unwrap();
                match step {
                    Step::Put => {
                        let desired = change.desired.as_ref().expect("a put has a desired resource");
                        if let Some(missing) = desired.depends_on.iter().find(|d| !existing.contains_key(*d)) {
                            anyhow::bail!("{} created before {missing}", change.address);
                        }
                        let id = format!("id-{}", change.name);
                        existing
                            .insert(change.address, Observed::Present { id, attributes: desired.attributes.clone() });
                    }
                    Step::Delete => {
                        let needs = |a: &&String| depends.get(*a).is_some_and(|d| d.contains(&change.address));
                        if let Some(dependent) = existing.keys().find(needs) {
                            anyhow::bail!("{} deleted before {dependent}, which needs it", change.address);
                        }
                        existing.remove(&change.address);
                    }
                }
                Ok(())
            }
        }

        async fn run(self: &Arc<Self>, plan: &Plan, parallelism: usize) -> Report {
            let target = self.clone();
            let perform = move |change, step| target.perform(change, step);
            schedule(plan, parallelism, Arc::new(AtomicBool::new(false)), &no_lease, perform).await
        }
    }

    fn resource(address: &str, depends_on: &[&str]) -> Resource {
        crate::plan::diff::testing::resource(address, serde_json::json!({"size": 1}), &[], depends_on)
    }

    fn outcome<'r>(report: &'r Report, address: &str) -> &'r Outcome {
        &report.outcomes.iter().find(|(a, _, _)| a == address).expect("a change of the plan").2
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_dev_model_applies_then_plans_empty_then_destroys_in_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/dev.toml");
        let environment = crate::config::load(root.to_str().unwrap()).unwrap();
        let resources = desired::resources(&environment, &"0".repeat(64), &crate::plan::Component::ALL);
        let target = Arc::new(Target::default());

        let plan = target.plan(Mode::Apply, &resources);
        assert_eq!(plan.changes.len(), resources.len(), "everything is created from nothing");
        let report = target.run(&plan, 8).await;
        assert!(report.complete(), "{}", report_text(&report, Mode::Apply));

        let again = target.plan(Mode::Apply, &resources);
        let left: Vec<&str> = again.changes.iter().map(|c| c.address.as_str()).collect();
        assert!(left.is_empty(), "apply then plan: {left:?}");

        let destroy = target.plan(Mode::Destroy, &resources);
        assert_eq!(destroy.changes.len(), resources.len(), "nothing holds data: everything goes");
        let report = target.run(&destroy, 8).await;
        assert!(report.complete(), "{}", report_text(&report, Mode::Destroy));
        assert!(target.existing.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failure_blocks_exactly_its_dependents_and_a_gap_spreads_as_a_gap() {
        let resources = [
            resource("t.a", &[]),
            resource("t.b", &["t.a"]),
            resource("t.c", &["t.b"]),
            resource("t.d", &[]),
            resource("t.e", &["t.d"]),
            resource("t.g", &[]),
            resource("t.h", &["t.g"]),
        ];
        let failing = [("t.b".to_owned(), "AccessDenied"), ("t.g".to_owned(), "gap")].into();
        let target = Arc::new(Target { failing, ..Target::default() });
        let report = target.run(&target.plan(Mode::Apply, &resources), 4).await;
        assert_eq!(outcome(&report, "t.a"), &Outcome::Done);
        assert_eq!(outcome(&report, "t.b"), &Outcome::Failed("AccessDenied".into()));
        assert_eq!(outcome(&report, "t.c"), &Outcome::NotAttempted("t.b did not succeed".into()));
        assert_eq!(outcome(&report, "t.d"), &Outcome::Done, "independent of the failure");
        assert_eq!(outcome(&report, "t.e"), &Outcome::Done, "independent of the failure");
        assert!(matches!(outcome(&report, "t.g"), Outcome::NotPerformed(_)));
        let h = outcome(&report, "t.h");
        assert!(matches!(h, Outcome::NotPerformed(why) if why.starts_with("it needs t.g: ")), "{h:?}");
        let started = target.log.lock().unwrap().clone();
        assert_eq!(started.len(), 5, "t.c and t.h never start: {started:?}");
    }

    #[tokio::test]
    async fn deletes_run_dependents_first() {
        let resources = [resource("t.a", &[]), resource("t.b", &["t.a"]), resource("t.c", &["t.b"])];
        // The dependents are slow: a delete that did not wait for them would finish first.
        let target = Arc::new(Target { slow: vec!["t.b", "t.c"], ..Target::default() });
        assert!(target.run(&target.plan(Mode::Apply, &resources), 4).await.complete());
        assert_eq!(*target.log.lock().unwrap(), ["t.a", "t.b", "t.c"]);
        target.log.lock().unwrap().clear();
        let report = target.run(&target.plan(Mode::Destroy, &resources), 4).await;
        assert!(report.complete(), "{}", report_text(&report, Mode::Destroy));
        assert_eq!(*target.log.lock().unwrap(), ["t.c", "t.b", "t.a"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallelism_is_respected() {
        let resources: Vec<Resource> = (0..12).map(|i| resource(&format!("t.r{i}"), &[])).collect();
        for parallelism in [1, 3, 12] {
            let target = Arc::new(Target { hold_until: parallelism, ..Target::default() });
            let report = target.run(&target.plan(Mode::Apply, &resources), parallelism).await;
            assert!(report.complete());
            assert_eq!(target.most_at_once.load(Ordering::SeqCst), parallelism, "--parallelism {parallelism}");
        }
    }
}
