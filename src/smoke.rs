//! `smoke-test`: proves an applied platform works end to end, as a table of checks.
//!
//! Platform checks come from one observation of every resource (the same reads as `plan`):
//! every resource present, the plan empty, then one row per concern (lake bucket settings, VPN,
//! warehouse, catalog, topics, directory, worker), each failing with the attributes that differ
//! or saying what the target could not verify. Data checks then replay a sample of each real
//! dataset and a batch of generated tickets (with malformed ones) into the topics, wait
//! (bounded) until the lake's commit records are past them, read the lake back (the rows'
//! `kafka_offset` columns and schemas, rejected lines) and check that every produced offset
//! landed exactly once, the schemas, the Glue partitions and the rejection reasons, then audit
//! each whole stream ([`crate::worker::audit`]). Its records stay in the lake: deleting them
//! would leave holes that the audit reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::config::stream::Stream;
use crate::engine::Observation;
use crate::plan::kind::Kind;
use crate::plan::{Action, Component, Mode, Observed, Plan};
use crate::provider::Context;
use crate::worker::lake::{Lake, parse_key};

pub mod sandbox;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Holds.
    Pass,
    /// Does not hold; the detail says what and why.
    Fail,
    /// The target cannot report it (an emulator's gap); the detail says which API.
    NotVerifiable,
    /// Not run on purpose; the detail says why and how to run it.
    Skipped,
}

/// One row of the smoke test's table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// Why (what differs, what was counted, which API the target lacks).
    pub detail: String,
}

fn check(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
    Check { name: name.into(), status, detail: detail.into() }
}

/// What the data checks replay and how long they wait.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder of the real datasets (`shared/data`).
    pub data_dir: PathBuf,
    /// Rows replayed from each real dataset.
    pub sample_rows: u64,
    /// Generated tickets.
    pub tickets: u64,
    /// Share of the tickets made malformed on purpose (0.0-1.0).
    pub malformed_share: f64,
    /// Seed of the ticket generator.
    pub seed: u64,
    /// How long to wait for the worker to commit past the replayed records.
    pub wait: Duration,
    /// Run the data checks on an environment without `[endpoints]` too (a real account), in a
    /// sandbox ([`sandbox`]).
    pub write_test_data: bool,
    /// Run the data checks in a sandbox even where the environment has `[endpoints]` (the bed).
    pub sandbox: bool,
}

/// The row of the data checks when they do not run.
const DATA_ROW: &str = "data: replay, land, read back";

/// Why the data checks must not run on `environment` unless asked to (None: they may): one
/// without `[endpoints]` is a real account, whose topics, lake and catalog are production's,
/// and the synthetic records would stay there (they share files and offsets with real rows and
/// cannot be taken out).
pub fn data_checks_refused(
    environment: &crate::config::environment::Environment,
    write_test_data: bool,
) -> Option<String> {
    (is_real_account(environment) && !write_test_data).then(|| {
        format!(
            "not run: environment {} has no [endpoints], so its brokers, lake and catalog are a real account's. \
             Pass --write-test-data to run them in a sandbox: topics, a consumer group, lake prefixes and Glue \
             tables of their own (production's are never written), a worker of their own in this process, all \
             removed at the end",
            environment.name
        )
    })
}

/// Whether `environment` is a real account's (no `[endpoints]`): its data checks always run
/// in a sandbox.
fn is_real_account(environment: &crate::config::environment::Environment) -> bool {
    environment.endpoints.default.is_none() && environment.endpoints.services.is_empty()
}

/// Whether `streams` are a sandbox's (renamed by [`sandbox::Sandbox::new`]).
fn is_sandbox(streams: &[Arc<Stream>]) -> bool {
    streams.iter().all(|s| sandbox::original_name(&s.name) != s.name)
}

/// The platform row of the worker's deployment; the data checks run only when it passes.
pub const WORKER_ROW: &str = "worker: deployed, running this binary";

const NETWORK_ROW: &str = "network: VPC, subnets, routes, security groups, S3 and Glue endpoints";
const VPN_ROW: &str = "vpn: gateways, connection with two tunnel-option sets";
const VPN_ROUTES_ROW: &str = "vpn: routes to the on-premises CIDRs";
const WAREHOUSE_ROW: &str = "warehouse: cluster, subnet group, Spectrum role attached";
const DIRECTORY_ROW: &str = "directory: Managed AD, trust, secrets";
const MIGRATION_ROW: &str = "migration: DMS role, subnet group, private replication instance with the lake key";
const MIGRATION_TASK_ROW: &str = "migration: ERP source and lake target endpoints, replication task";

/// The platform rows, in the order they are printed: one label per concern.
pub const GROUPS: &[&str] = &[
    NETWORK_ROW,
    "lake: buckets and KMS key",
    "lake: versioning enabled",
    "lake: default encryption with the KMS key",
    "lake: public access blocked",
    "lake: TLS-only bucket policy",
    "lake: lifecycle rules",
    "audit: S3 access logging and VPC flow logs",
    VPN_ROW,
    VPN_ROUTES_ROW,
    "vpn: tunnel logs",
    WAREHOUSE_ROW,
    "warehouse: audit logging, TLS required",
    "warehouse: external schema statement",
    "catalog: database, tables match the stream schemas",
    "redpanda: broker instances",
    "redpanda: topics (partitions, replication)",
    DIRECTORY_ROW,
    WORKER_ROW,
    MIGRATION_ROW,
    MIGRATION_TASK_ROW,
];

/// The platform row (one of [`GROUPS`]) that reports a resource: the worker component's
/// resources under [`WORKER_ROW`] whatever their kind (the migration's IAM role under
/// [`MIGRATION_ROW`]), the others by kind. Exhaustive: a new
/// resource type does not compile until it has a row.
pub fn group(kind: Kind, component: Component) -> &'static str {
    if component == Component::Worker {
        return WORKER_ROW;
    }
    if component == Component::Migration && matches!(kind, Kind::IamRole | Kind::IamRolePolicy) {
        return MIGRATION_ROW;
    }
    match kind {
        Kind::Vpc
        | Kind::Subnet
        | Kind::RouteTable
        | Kind::RouteTableAssociation
        | Kind::SecurityGroup
        | Kind::DefaultSecurityGroup
        | Kind::VpcEndpoint => NETWORK_ROW,
        Kind::S3Bucket | Kind::KmsKey | Kind::KmsAlias => "lake: buckets and KMS key",
        Kind::S3BucketVersioning => "lake: versioning enabled",
        Kind::S3BucketEncryption => "lake: default encryption with the KMS key",
        Kind::S3BucketPublicAccessBlock => "lake: public access blocked",
        Kind::S3BucketPolicy => "lake: TLS-only bucket policy",
        Kind::S3BucketLifecycle => "lake: lifecycle rules",
        Kind::S3BucketLogging | Kind::FlowLog => "audit: S3 access logging and VPC flow logs",
        Kind::CustomerGateway
        | Kind::VpnGateway
        | Kind::TransitGateway
        | Kind::VpnGatewayAttachment
        | Kind::TransitGatewayVpcAttachment
        | Kind::VpnConnection => VPN_ROW,
        Kind::LogGroup => "vpn: tunnel logs",
        Kind::VpnConnectionRoute | Kind::Route | Kind::VpnGatewayRoutePropagation | Kind::TransitGatewayRoute => {
            VPN_ROUTES_ROW
        }
        Kind::RedshiftSubnetGroup | Kind::RedshiftCluster | Kind::IamRole | Kind::IamRolePolicy => WAREHOUSE_ROW,
        Kind::RedshiftDataStatement => "warehouse: external schema statement",
        Kind::RedshiftLogging | Kind::RedshiftParameterGroup => "warehouse: audit logging, TLS required",
        Kind::GlueDatabase | Kind::GlueTable => "catalog: database, tables match the stream schemas",
        Kind::Instance => "redpanda: broker instances",
        Kind::KafkaTopic => "redpanda: topics (partitions, replication)",
        Kind::Secret | Kind::Directory | Kind::DirectoryTrust => DIRECTORY_ROW,
        Kind::DmsSubnetGroup | Kind::DmsInstance => MIGRATION_ROW,
        Kind::DmsEndpoint | Kind::DmsS3Endpoint | Kind::DmsTask => MIGRATION_TASK_ROW,
        // Resources of the worker component only (handled above).
        Kind::LocalWorker | Kind::S3Object | Kind::IamInstanceProfile => WORKER_ROW,
    }
}

/// Runs every check on the applied environment of `ctx`.
///
/// Errors: a resource or the broker could not be read at all (checks that fail are rows, not
/// errors).
pub async fn run(ctx: &Arc<Context>, options: &Options) -> anyhow::Result<Vec<Check>> {
    let sandboxed = data_checks_refused(&ctx.environment, options.write_test_data).is_none()
        && (options.sandbox || is_real_account(&ctx.environment));
    // Sandboxes killed runs left go before anything is read: their Glue tables would be orphans
    // in the plan.
    let leftovers = if sandboxed { Some(remove_leftovers(ctx).await?) } else { None };
    eprintln!("smoke test: reading every resource of {}", ctx.environment.name);
    let planning = crate::engine::Options::default();
    let observation = crate::engine::observe(ctx, crate::plan::Mode::Apply, &[], &planning).await?;
    let plan = crate::engine::plan_from(ctx, Mode::Apply, &observation, &planning);
    let mut checks = platform_checks(&observation, &plan);
    cold_checks(ctx, &mut checks).await?;
    if let Some(why) = data_checks_refused(&ctx.environment, options.write_test_data) {
        checks.push(check(DATA_ROW, Status::Skipped, why));
        return Ok(checks);
    }
    match leftovers {
        Some(Ok(removed)) => {
            sandboxed_data_checks(ctx, options, &mut checks, removed).await?;
            return Ok(checks);
        }
        Some(Err(why)) => {
            checks.push(check(SANDBOX_ROW, Status::Fail, why));
            checks.push(check(DATA_ROW, Status::Fail, "not attempted: an earlier run's sandbox is still there"));
            return Ok(checks);
        }
        None => {}
    }
    let streams: Vec<Arc<Stream>> = ctx.environment.streams.iter().map(|s| Arc::new(s.clone())).collect();
    let group = crate::model::group_id(&ctx.environment);
    match checks.iter().find(|c| c.name == WORKER_ROW) {
        Some(row) if row.status == Status::Pass => data_checks(ctx, options, &mut checks, &streams, &group).await?,
        Some(row) => checks.push(check(
            DATA_ROW,
            Status::Fail,
            format!("not attempted: the worker is not deployed as planned ({})", row.detail),
        )),
        None => checks.push(check(DATA_ROW, Status::Fail, "not attempted: no worker resource")),
    }
    Ok(checks)
}

/// The platform rows of an observation and its plan (pure).
pub fn platform_checks(observation: &Observation, plan: &Plan) -> Vec<Check> {
    let mut out = Vec::new();
    let absent: Vec<&str> = observation
        .resources
        .iter()
        .filter(|r| matches!(observation.observed.get(&r.address), Some(Observed::Absent)))
        .map(|r| r.address.as_str())
        .collect();
    // Absent because the target lacks the API to create it (a recorded gap): not verifiable.
    let (gap, missing): (Vec<&str>, Vec<&str>) =
        absent.into_iter().partition(|a| plan.notices.iter().any(|n| n.address == *a));
    out.push(if !missing.is_empty() {
        check("every resource present", Status::Fail, format!("missing: {}", list(&missing)))
    } else if !gap.is_empty() {
        check(
            "every resource present",
            Status::NotVerifiable,
            format!(
                "{} present; not created because the target lacks the API: {}",
                observation.resources.len() - gap.len(),
                list(&gap)
            ),
        )
    } else {
        check("every resource present", Status::Pass, format!("{} resources", observation.resources.len()))
    });
    let summary = plan.summary();
    out.push(if plan.changes.is_empty() {
        check("plan is empty", Status::Pass, "no changes")
    } else {
        let changed: Vec<String> = plan.changes.iter().map(|c| format!("{} ({:?})", c.address, c.action)).collect();
        check(
            "plan is empty",
            Status::Fail,
            format!(
                "{} to add, {} to change, {} to replace, {} to destroy: {}",
                summary.add,
                summary.change,
                summary.replace,
                summary.destroy,
                list(&changed)
            ),
        )
    });
    for label in GROUPS {
        let addresses: Vec<&str> = observation
            .resources
            .iter()
            .filter(|r| group(r.kind(), r.component) == *label)
            .map(|r| r.address.as_str())
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let problems: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| addresses.contains(&c.address.as_str()))
            .map(|c| match c.action {
                Action::Create => format!("{} does not exist", c.address),
                _ => {
                    let diffs: Vec<String> = c
                        .attributes
                        .iter()
                        .map(|a| {
                            format!("{} is {} (want {})", a.name, short(a.before.as_ref()), short(a.after.as_ref()))
                        })
                        .collect();
                    format!("{}: {}", c.address, diffs.join(", "))
                }
            })
            .collect();
        let gaps: Vec<String> = plan
            .notices
            .iter()
            .filter(|n| addresses.contains(&n.address.as_str()))
            .map(|n| format!("{}: {}", n.address, n.message))
            .collect();
        out.push(if !problems.is_empty() {
            check(*label, Status::Fail, problems.join("; "))
        } else if !gaps.is_empty() {
            check(*label, Status::NotVerifiable, gaps.join("; "))
        } else {
            check(*label, Status::Pass, format!("{} resource(s) as planned", addresses.len()))
        });
    }
    out
}

fn list(items: &[impl AsRef<str>]) -> String {
    let shown: Vec<&str> = items.iter().take(6).map(AsRef::as_ref).collect();
    let more = items.len().saturating_sub(shown.len());
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

fn short(value: Option<&serde_json::Value>) -> String {
    let text = value.map_or_else(|| "absent".to_owned(), serde_json::Value::to_string);
    if text.chars().count() > 60 { format!("{}...", text.chars().take(57).collect::<String>()) } else { text }
}

/// Where a stream's sample comes from.
enum Sample {
    Tickets,
    Csv(PathBuf),
}

/// The sample for `stream`: generated tickets for `client_tickets`, the real dataset of
/// `shared/data` for the two replayed streams, none for other streams.
fn sample_for(stream: &Stream, data_dir: &std::path::Path) -> Option<Sample> {
    match sandbox::original_name(&stream.name) {
        "client_tickets" => Some(Sample::Tickets),
        "incident_events" => Some(Sample::Csv(data_dir.join("itsm_incident_event_log/incident_event_log.csv"))),
        "sensor_readings" => Some(Sample::Csv(data_dir.join("beijing_multisite_air_quality"))),
        _ => None,
    }
}

/// What one stream's replay produced: the offsets window per partition and the malformed count.
struct Produced {
    stream: Arc<Stream>,
    records: u64,
    malformed: u64,
    windows: BTreeMap<i32, (i64, i64)>,
}

/// Removes the sandboxes earlier runs left (killed before their removal): their ids, or why one
/// could not be removed.
async fn remove_leftovers(ctx: &Arc<Context>) -> anyhow::Result<Result<Vec<String>, String>> {
    let mut removed = Vec::new();
    for mut leftover in sandbox::Sandbox::leftovers(ctx).await? {
        eprintln!("smoke test: removing sandbox {} that an earlier run left", leftover.id);
        if let Err(err) = leftover.remove(ctx).await {
            return Ok(Err(format!("an earlier run's sandbox: {err:#}")));
        }
        removed.push(leftover.id.clone());
    }
    Ok(Ok(removed))
}

/// The data checks in a sandbox ([`sandbox`]): created, checked, then removed whatever the
/// checks found, with a row saying so (and naming the earlier runs' sandboxes removed first).
async fn sandboxed_data_checks(
    ctx: &Arc<Context>,
    options: &Options,
    checks: &mut Vec<Check>,
    leftovers_removed: Vec<String>,
) -> anyhow::Result<()> {
    let mut sandbox = sandbox::Sandbox::new(ctx);
    eprintln!(
        "smoke test: sandbox {id}: topics <topic>.{id}, consumer group {}, lake prefixes and Glue tables \
         <stream>_{id}, its own worker in this process; all removed at the end",
        sandbox.group,
        id = sandbox.id
    );
    let result = match sandbox.start(ctx).await {
        Ok(()) => data_checks(ctx, options, checks, &sandbox.streams, &sandbox.group).await,
        Err(err) => {
            checks.push(check(DATA_ROW, Status::Fail, format!("the sandbox could not be created: {err:#}")));
            Ok(())
        }
    };
    match sandbox.remove(ctx).await {
        Ok(removed) => checks.push(check(
            SANDBOX_ROW,
            Status::Pass,
            format!(
                "sandbox {} removed: {}{}",
                sandbox.id,
                removed.join("; "),
                if leftovers_removed.is_empty() {
                    String::new()
                } else {
                    format!("; and what earlier runs left: {}", leftovers_removed.join(", "))
                }
            ),
        )),
        Err(err) => checks.push(check(SANDBOX_ROW, Status::Fail, format!("{err:#}"))),
    }
    result
}

/// The row that says the sandbox is gone.
const SANDBOX_ROW: &str = "data: sandbox removed (topics, consumer group, lake prefixes, Glue tables)";

async fn data_checks(
    ctx: &Arc<Context>,
    options: &Options,
    checks: &mut Vec<Check>,
    streams: &[Arc<Stream>],
    group: &str,
) -> anyhow::Result<()> {
    let environment = &ctx.environment;
    let kafka = ctx.kafka().await?.clone();
    let lake = Lake::new(environment, &ctx.aws);
    let mut replayed: Vec<(Arc<Stream>, u64, u64)> = Vec::new();
    let streams: Vec<Arc<Stream>> = streams.to_vec();
    let group = group.to_owned();
    let before = crate::worker::status::read_offsets(&kafka, &group, &streams).await?;
    for stream in &streams {
        let name = format!("data {}: replay", stream.name);
        let (records, malformed): (Vec<crate::produce::Record>, u64) = match sample_for(stream, &options.data_dir) {
            None => {
                checks.push(check(name, Status::NotVerifiable, "no sample data for this stream"));
                continue;
            }
            Some(Sample::Tickets) => {
                let generator = crate::produce::TicketGenerator::new(options.seed, options.malformed_share);
                let records: Vec<_> = generator.take(usize::try_from(options.tickets).unwrap_or(usize::MAX)).collect();
                let malformed = records.iter().filter(|r| r.malformed.is_some()).count() as u64;
                (records, malformed)
            }
            Some(Sample::Csv(path)) => {
                if !path.exists() {
                    checks.push(check(
                        name,
                        Status::Fail,
                        format!("dataset {} not found (give --data DIR, the shared/data folder)", path.display()),
                    ));
                    continue;
                }
                let files = crate::produce::csv_files(&path)?;
                let mut replay = crate::produce::CsvReplay::new(files, stream.message_key.clone());
                let mut records = Vec::new();
                while records.len() < usize::try_from(options.sample_rows).unwrap_or(usize::MAX) {
                    match replay.next_record()? {
                        Some(record) => records.push(record),
                        None => break,
                    }
                }
                (records, 0)
            }
        };
        let count = records.len() as u64;
        eprintln!("smoke test: producing {count} records to {}", stream.topic);
        let sent = crate::produce::send(&kafka, &stream.topic, records.into_iter().map(Ok), None, |_| {}).await?;
        checks.push(check(
            name,
            if sent.records == count { Status::Pass } else { Status::Fail },
            format!(
                "{} of {count} records acknowledged by the broker ({malformed} malformed on purpose)",
                sent.records
            ),
        ));
        replayed.push((stream.clone(), count, malformed));
    }
    let after = crate::worker::status::read_offsets(&kafka, &group, &streams).await?;
    let mut produced = Vec::new();
    for (stream, records, malformed) in replayed {
        let start = before.iter().find(|s| s.stream == stream.name);
        let end = after.iter().find(|s| s.stream == stream.name).context("a stream vanished from the broker")?;
        let windows = end
            .partitions
            .iter()
            .map(|p| {
                let from = start
                    .and_then(|s| s.partitions.iter().find(|q| q.partition == p.partition))
                    .map_or(p.low, |q| q.high);
                (p.partition, (from, p.high))
            })
            .filter(|(_, (from, to))| to > from)
            .collect();
        produced.push(Produced { stream, records, malformed, windows });
    }
    if !wait_for_commits(&kafka, &group, &streams, &lake, &produced, options.wait, checks).await? {
        return Ok(());
    }
    for p in &produced {
        read_back(&lake, p, checks).await?;
    }
    let audits = crate::worker::audit::audit(&lake, &streams).await?;
    for audit in &audits {
        let name = format!("data {}: audit, every committed offset once", audit.stream);
        let (rows, rejected): (u64, u64) =
            audit.partitions.iter().fold((0, 0), |(r, j), p| (r + p.rows, j + p.rejected));
        let committed: i64 = audit.partitions.iter().filter_map(|p| Some(p.committed? - p.first?)).sum();
        checks.push(if audit.has_problems() {
            let problems: Vec<String> = audit
                .partitions
                .iter()
                .flat_map(|p| p.examples.iter().map(move |e| format!("{}/{}: {e}", audit.topic, p.partition)))
                .chain(audit.unreadable.iter().cloned())
                .collect();
            check(name, Status::Fail, format!("`indutech audit` fails: {}", list(&problems)))
        } else {
            check(
                name,
                Status::Pass,
                format!(
                    "{committed} committed offsets of {} partition(s): {rows} rows + {rejected} rejected, none missing, \
                     duplicated or uncommitted",
                    audit.partitions.len()
                ),
            )
        });
    }
    spectrum_counts(ctx, &audits, checks).await;
    if !is_sandbox(&streams) {
        eprintln!("smoke test: its records stay in the lake (deleting them would leave holes the audit reports)");
    }
    Ok(())
}

/// Per audited stream, `SELECT count(*)` of its Glue table through the external schema with the
/// Data API, against the audited rows: the lake answers SQL through the catalog (a Glue type
/// Spectrum cannot read, or a partition never registered, fails here). On an environment with
/// `[endpoints]` (the bed) the rows are n/a: LocalStack's Data API accepts statements and runs
/// none; DuckDB reads the same tables in the bed's tests instead.
async fn spectrum_counts(ctx: &Context, audits: &[crate::worker::audit::StreamAudit], checks: &mut Vec<Check>) {
    let statement = crate::desired::resources(&ctx.environment, "", &[Component::Warehouse])
        .into_iter()
        .find(|r| r.kind() == Kind::RedshiftDataStatement);
    for audit in audits {
        let name = format!("data {}: SELECT count(*) through Spectrum's external schema", audit.stream);
        let rows: u64 = audit.partitions.iter().map(|p| p.rows).sum();
        let Some(statement) = statement.as_ref().filter(|_| is_real_account(&ctx.environment)) else {
            checks.push(check(
                name,
                Status::NotVerifiable,
                "the bed's Redshift Data API accepts statements and runs no SQL (on an account without [endpoints] \
                 this row counts through it); DuckDB reads the Glue table in the bed's tests",
            ));
            continue;
        };
        let schema = statement.attributes["external_schema"].as_str().unwrap_or_default().to_owned();
        checks.push(match crate::provider::spectrum_count(ctx, statement, &audit.stream).await {
            Ok(count) if count == rows => check(
                name,
                Status::Pass,
                format!("{schema}.{} counts {count} rows, as many as the audit found in the lake", audit.stream),
            ),
            Ok(count) => check(
                name,
                Status::Fail,
                format!(
                    "{schema}.{} counts {count} rows, the audit {rows}: Spectrum reads the registered partitions of \
                     the Glue table (see `indutech status`, and the Glue partitions row)",
                    audit.stream
                ),
            ),
            Err(err) => check(name, Status::Fail, format!("{err:#}")),
        });
    }
}

/// Waits until the lake's commit records are past the end of every window; adds a failing row
/// and returns false at `bound`.
async fn wait_for_commits(
    kafka: &crate::kafka::Connection,
    group: &str,
    streams: &[Arc<Stream>],
    lake: &Lake,
    produced: &[Produced],
    bound: Duration,
    checks: &mut Vec<Check>,
) -> anyhow::Result<bool> {
    let total: i64 = produced.iter().flat_map(|p| p.windows.values()).map(|(from, to)| to - from).sum();
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let status = crate::worker::status::read(kafka, group, streams, lake).await?;
        let mut pending = 0i64;
        let mut behind = Vec::new();
        for p in produced {
            let Some(s) = status.iter().find(|s| s.stream == p.stream.name) else { continue };
            for (partition, (from, to)) in &p.windows {
                let committed = s.partitions.iter().find(|q| q.partition == *partition).and_then(|q| q.committed);
                let left = to - committed.unwrap_or(*from).clamp(*from, *to);
                if left > 0 {
                    pending += left;
                    behind.push(format!("{}/{partition} committed {committed:?}, needs {to}", p.stream.topic));
                }
            }
        }
        if pending == 0 {
            checks.push(check(
                "data: worker committed past the replay",
                Status::Pass,
                format!("{total} records in {:.1} s", started.elapsed().as_secs_f64()),
            ));
            return Ok(true);
        }
        if started.elapsed() >= bound {
            checks.push(check(
                "data: worker committed past the replay",
                Status::Fail,
                format!(
                    "{pending} of {total} records still not committed after {} s: {} (is the worker running? see `indutech status`)",
                    bound.as_secs(),
                    list(&behind)
                ),
            ));
            return Ok(false);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!("smoke test: waiting for the worker: {} of {total} records committed", total - pending);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The keys of `bucket` under `stream/` that may hold offsets of `windows`: per partition, the
/// files that start inside the window and the last one that starts before it.
fn candidates(keys: &[String], topic: &str, windows: &BTreeMap<i32, (i64, i64)>) -> Vec<String> {
    let mut by_partition: HashMap<i32, Vec<(i64, &String)>> = HashMap::new();
    for key in keys {
        if let Some((t, partition, first)) = parse_key(key)
            && t == topic
        {
            by_partition.entry(partition).or_default().push((first, key));
        }
    }
    let mut out = Vec::new();
    for (partition, (from, to)) in windows {
        let Some(files) = by_partition.get_mut(partition) else { continue };
        files.sort();
        let straddling = files.iter().rev().find(|(first, _)| first < from).map(|(_, k)| (*k).clone());
        out.extend(straddling);
        out.extend(files.iter().filter(|(first, _)| first >= from && first < to).map(|(_, k)| (*k).clone()));
    }
    out
}

/// The row of the ERP tables in the raw zone.
const COLD_ROW: &str = "cold: ERP tables in the raw zone, readable through their Glue columns";

/// Files of a table whose footers the cold row reads: all up to this many, else the first and
/// the last half of it in key order (a table of the 40 TB history has hundreds of thousands).
const COLD_FILES_CHECKED: usize = 10;

/// With `[erp]`: the Parquet files under each ERP table's prefix of the raw bucket (what DMS,
/// or `indutech load`, wrote; up to [`COLD_FILES_CHECKED`] of them) are read, their footers
/// only, and each Glue column of the table (`op` and the declared ones) must be one of their
/// columns of a type Spectrum and Athena read as that Glue type. Read-only, so it runs on every
/// target. A table without files yet is not verifiable.
///
/// Errors: the raw bucket cannot be listed or a file read.
async fn cold_checks(ctx: &Context, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    let Some(erp) = &ctx.environment.erp else { return Ok(()) };
    let lake = Lake::new(&ctx.environment, &ctx.aws);
    let raw = crate::model::bucket_name(&ctx.environment, "raw");
    let (mut found, mut empty, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for table in &erp.tables {
        let keys: Vec<String> =
            lake.list(&raw, &table.prefix()).await?.into_iter().filter(|k| k.ends_with(".parquet")).collect();
        if keys.is_empty() {
            empty.push(format!("{} (s3://{raw}/{})", table.name, table.prefix()));
            continue;
        }
        let checked = sampled(&keys);
        let mut rows = 0i64;
        for key in &checked {
            let metadata = footer(&lake, &raw, key).await?;
            rows += metadata.file_metadata().num_rows();
            let descriptor = metadata.file_metadata().schema_descr();
            for (name, ty) in table.columns() {
                match descriptor.columns().iter().find(|c| c.name() == name) {
                    None => problems.push(format!("{key}: no column `{name}`")),
                    Some(column) => {
                        if let Err(why) = crate::worker::sql_types::readable(ty.as_str(), column) {
                            problems.push(format!("{key}: `{name}`: {why}"));
                        }
                    }
                }
            }
        }
        found.push(if checked.len() == keys.len() {
            format!("{}: {rows} rows in {} file(s)", table.name, keys.len())
        } else {
            format!(
                "{}: {} of {} files checked (the first and last in key order), {rows} rows in them",
                table.name,
                checked.len(),
                keys.len()
            )
        });
    }
    let how = format!(
        "no files yet under {}: DMS has not written them (where nothing runs DMS, `indutech load --env {} \
         --table erp.<table> --from FILE.csv` writes a CSV export as its full load)",
        empty.join(", "),
        ctx.environment.name
    );
    checks.push(if !problems.is_empty() {
        check(COLD_ROW, Status::Fail, problems.join("; "))
    } else if found.is_empty() {
        check(COLD_ROW, Status::NotVerifiable, how)
    } else if !empty.is_empty() {
        check(COLD_ROW, Status::Pass, format!("{}; {how}", found.join(", ")))
    } else {
        check(COLD_ROW, Status::Pass, found.join(", "))
    });
    Ok(())
}

/// The files of a table the cold row reads: all of `keys` up to [`COLD_FILES_CHECKED`], else
/// the first and the last half of that many, in key order.
fn sampled(keys: &[String]) -> Vec<&String> {
    let half = COLD_FILES_CHECKED / 2;
    if keys.len() <= COLD_FILES_CHECKED {
        keys.iter().collect()
    } else {
        keys[..half].iter().chain(&keys[keys.len() - half..]).collect()
    }
}

/// The metadata of the Parquet file `bucket`/`key`, read from its end only: 64 KiB, then
/// what the footer says it needs.
///
/// Errors: the object cannot be read or is not Parquet.
async fn footer(lake: &Lake, bucket: &str, key: &str) -> anyhow::Result<parquet::file::metadata::ParquetMetaData> {
    use parquet::errors::ParquetError;
    use parquet::file::metadata::ParquetMetaDataReader;
    let (tail, size) = lake.get_tail(bucket, key, 64 * 1024).await?;
    let mut reader = ParquetMetaDataReader::new();
    match reader.try_parse_sized(&tail, size) {
        Ok(()) => {}
        Err(ParquetError::NeedMoreData(needed)) => {
            let (tail, size) = lake.get_tail(bucket, key, needed as u64).await?;
            reader.try_parse_sized(&tail, size).with_context(|| format!("{key}: not Parquet"))?;
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("{key}: not Parquet"))),
    }
    reader.finish().with_context(|| format!("{key}: not Parquet"))
}

async fn read_back(lake: &Lake, produced: &Produced, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    let stream = &produced.stream;
    let topic = &stream.topic;
    let in_window = |partition: i32, offset: i64| {
        produced.windows.get(&partition).is_some_and(|(from, to)| (*from..*to).contains(&offset))
    };
    let mut seen: HashMap<(i32, i64), u32> = HashMap::new();
    let mut rows = 0u64;
    let mut dates = BTreeSet::new();
    let mut schema_problems = Vec::new();
    // The Glue table's columns (generated from the same definition; the catalog row compares
    // the live table with it), as Spectrum and Athena will read them from these files.
    let glue_columns = stream.columns();
    let mut sql_problems = Vec::new();
    let want_schema = crate::worker::codec::arrow_schema(stream);
    let prefix = format!("{}/", stream.name);
    for key in candidates(&lake.list(&lake.curated, &prefix).await?, topic, &produced.windows) {
        let body = lake.get(&lake.curated, &key).await?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(body.clone()).with_context(|| format!("{key}: not Parquet"))?;
        let partition = parse_key(&key).map_or(-1, |(_, p, _)| p);
        let pairs = crate::worker::audit::offsets_of_parquet(body).with_context(|| format!("{key}: its rows"))?;
        if pairs.iter().any(|(p, _)| *p != partition) {
            schema_problems.push(format!("{key}: rows of another partition than the file's {partition}"));
        }
        let offsets: Vec<i64> = pairs.into_iter().map(|(_, o)| o).collect();
        let descriptor = builder.metadata().file_metadata().schema_descr();
        for (name, ty) in &glue_columns {
            match descriptor.columns().iter().find(|c| c.name() == name) {
                None => sql_problems.push(format!("{key}: no column `{name}`")),
                Some(column) => {
                    if let Err(why) = crate::worker::sql_types::readable(ty.as_str(), column) {
                        sql_problems.push(format!("{key}: `{name}`: {why}"));
                    }
                }
            }
        }
        let fields: Vec<(String, String)> =
            builder.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect();
        let want: Vec<(String, String)> =
            want_schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect();
        if fields != want {
            schema_problems.push(format!("{key}: columns {fields:?}, want {want:?}"));
        }
        let mut ours = 0;
        for offset in &offsets {
            if in_window(partition, *offset) {
                *seen.entry((partition, *offset)).or_default() += 1;
                rows += 1;
                ours += 1;
            }
        }
        if ours > 0
            && let Some(date) = key.split('/').nth(1).and_then(|d| d.split_once('=')).map(|(_, d)| d.to_owned())
        {
            dates.insert(date);
        }
    }
    let mut rejected = 0u64;
    let mut without_reason = Vec::new();
    for key in candidates(&lake.list(&lake.rejected, &prefix).await?, topic, &produced.windows) {
        let body = lake.get(&lake.rejected, &key).await?;
        let text = std::str::from_utf8(&body).with_context(|| format!("{key}: not UTF-8"))?;
        for (n, line) in text.lines().enumerate() {
            let record: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{key}:{}: not a JSON line", n + 1))?;
            let partition = record["partition"].as_i64().unwrap_or(-1) as i32;
            let offset = record["offset"].as_i64().unwrap_or(-1);
            if in_window(partition, offset) {
                rejected += 1;
                *seen.entry((partition, offset)).or_default() += 1;
                if record["reason"].as_str().is_none_or(str::is_empty) || record["payload"].is_null() {
                    without_reason.push(format!("{key}:{}", n + 1));
                }
            }
        }
    }
    let expected: i64 = produced.windows.values().map(|(from, to)| to - from).sum();
    let duplicates = seen.values().filter(|n| **n > 1).count();
    let missing = expected - seen.len() as i64;
    let name = format!("data {}: every record landed exactly once", stream.name);
    checks.push(if duplicates == 0 && missing == 0 {
        check(name, Status::Pass, format!("{rows} rows in Parquet + {rejected} rejected = {expected} produced"))
    } else {
        check(
            name,
            Status::Fail,
            format!(
                "{expected} produced: {missing} missing, {duplicates} duplicated ({rows} rows, {rejected} rejected)"
            ),
        )
    });
    let name = format!("data {}: Parquet schema is the stream's", stream.name);
    checks.push(if schema_problems.is_empty() {
        check(name, Status::Pass, format!("{} typed columns", want_schema.fields().len()))
    } else {
        check(name, Status::Fail, schema_problems.join("; "))
    });
    let name = format!("data {}: Spectrum and Athena read the files as the Glue columns", stream.name);
    sql_problems.dedup();
    checks.push(if sql_problems.is_empty() {
        check(name, Status::Pass, format!("{} columns, each of a Parquet type its Glue type reads", glue_columns.len()))
    } else {
        check(name, Status::Fail, sql_problems.join("; "))
    });
    let registered = lake.registered_partitions(&stream.name).await?;
    let unregistered: Vec<&String> = dates.iter().filter(|d| !registered.contains(*d)).collect();
    let name = format!("data {}: Glue partitions registered", stream.name);
    checks.push(if unregistered.is_empty() {
        check(name, Status::Pass, format!("{} {} partition(s)", dates.len(), stream.partition_key))
    } else {
        check(name, Status::Fail, format!("not in the Glue table: {}", list(&unregistered)))
    });
    let name = format!("data {}: rejected records with reasons", stream.name);
    checks.push(if !without_reason.is_empty() {
        check(name, Status::Fail, format!("without a reason or payload: {}", list(&without_reason)))
    } else if produced.malformed > 0 && rejected != produced.malformed {
        check(name, Status::Fail, format!("{rejected} rejected, but {} were malformed on purpose", produced.malformed))
    } else {
        check(
            name,
            Status::Pass,
            format!("{rejected} rejected, each with its reason and payload ({} records replayed)", produced.records),
        )
    });
    Ok(())
}

/// The checks as a table: `CHECK  STATUS  DETAIL`.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:<width$}  {:<7}  DETAIL\n", "CHECK", "STATUS");
    for c in checks {
        let status = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::NotVerifiable => "n/a",
            Status::Skipped => "skipped",
        };
        out.push_str(&format!("{:<width$}  {status:<7}  {}\n", c.name, c.detail));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cold_row_reads_every_file_of_a_small_table_and_both_ends_of_a_large_one() {
        let keys = |n: usize| (0..n).map(|i| format!("erp/dbo/t/LOAD{i:08X}.parquet")).collect::<Vec<_>>();
        assert_eq!(sampled(&keys(3)).len(), 3);
        assert_eq!(sampled(&keys(10)).len(), 10);
        let many = keys(120_000);
        let picked = sampled(&many);
        assert_eq!(picked.len(), COLD_FILES_CHECKED);
        assert_eq!(picked[0], &many[0]);
        assert_eq!(picked[4], &many[4]);
        assert_eq!(picked[5], &many[119_995]);
        assert_eq!(picked[9], &many[119_999]);
    }

    #[test]
    fn data_checks_write_into_a_real_account_only_when_asked() {
        let prod = crate::config::shipped("prod");
        let why = data_checks_refused(&prod, false).expect("prod has no [endpoints]: refused");
        assert!(why.contains("environment prod has no [endpoints]") && why.contains("--write-test-data"), "{why}");
        assert_eq!(data_checks_refused(&prod, true), None);
        assert_eq!(data_checks_refused(&crate::config::shipped("dev"), false), None, "dev runs on the bed");
        assert!(is_real_account(&prod), "a real account's data checks always run in the sandbox");
        assert!(!is_real_account(&crate::config::shipped("dev")));
    }

    #[test]
    fn sandbox_streams_stand_for_their_originals() {
        assert_eq!(sandbox::original_name("client_tickets_smoke_1a2b3c4d"), "client_tickets");
        assert_eq!(sandbox::original_name("client_tickets"), "client_tickets");
        // Not a sandbox id: left as it is.
        assert_eq!(sandbox::original_name("x_smoke_screen"), "x_smoke_screen");
        let sandboxed = |name: &str| {
            let mut stream = crate::config::shipped("dev").streams[0].clone();
            stream.name = name.into();
            Arc::new(stream)
        };
        assert!(is_sandbox(&[sandboxed("a_smoke_0000abcd"), sandboxed("b_smoke_ffff0000")]));
        assert!(!is_sandbox(&[sandboxed("a_smoke_0000abcd"), sandboxed("b")]));
    }

    #[test]
    fn every_resource_type_has_a_printed_row() {
        for kind in Kind::ALL {
            for component in [Component::Network, Component::Worker] {
                assert!(GROUPS.contains(&group(*kind, component)), "{kind}: its row is not printed");
            }
        }
    }

    fn lake_rows(edit: impl Fn(&mut BTreeMap<String, Observed>)) -> Vec<Check> {
        let environment = crate::config::shipped("dev");
        let resources = crate::desired::resources(&environment, "0", &[crate::plan::Component::Lake]);
        let mut observed: BTreeMap<String, Observed> = resources
            .iter()
            .map(|r| (r.address.clone(), Observed::Present { id: r.name.clone(), attributes: r.attributes.clone() }))
            .collect();
        edit(&mut observed);
        let gaps = BTreeMap::from([(
            "aws_s3_bucket_policy.rejected".to_owned(),
            "PutBucketPolicy is not implemented by the emulator".to_owned(),
        )])
        .into_iter()
        .filter(|(a, _)| matches!(observed.get(a), Some(Observed::Absent)))
        .collect();
        let plan = crate::plan::diff::apply_plan("dev", &resources, &observed, &gaps);
        let observation = Observation { resources, observed, orphans: vec![], gaps, data: Default::default() };
        platform_checks(&observation, &plan)
    }

    fn status_of(rows: &[Check], name: &str) -> (Status, String) {
        let row = rows.iter().find(|c| c.name == name).unwrap();
        (row.status, row.detail.clone())
    }

    #[test]
    fn a_converged_lake_passes_every_row() {
        let rows = lake_rows(|_| {});
        assert!(rows.iter().all(|c| c.status == Status::Pass), "{rows:#?}");
        assert_eq!(rows.len(), 2 + 6);
    }

    #[test]
    fn a_suspended_versioning_fails_its_row_and_the_plan_row_with_the_attribute() {
        let rows = lake_rows(|observed| {
            if let Some(Observed::Present { attributes, .. }) = observed.get_mut("aws_s3_bucket_versioning.raw") {
                attributes.insert("status".into(), serde_json::json!("Suspended"));
            }
        });
        let (status, detail) = status_of(&rows, "lake: versioning enabled");
        assert_eq!(status, Status::Fail);
        assert_eq!(detail, "aws_s3_bucket_versioning.raw: status is \"Suspended\" (want \"Enabled\")");
        assert_eq!(status_of(&rows, "plan is empty").0, Status::Fail);
        assert_eq!(status_of(&rows, "lake: lifecycle rules").0, Status::Pass);
    }

    #[test]
    fn missing_resources_fail_unless_the_target_could_not_create_them() {
        let rows = lake_rows(|observed| {
            observed.insert("aws_s3_bucket_lifecycle_configuration.raw".into(), Observed::Absent);
        });
        let (status, detail) = status_of(&rows, "every resource present");
        assert_eq!((status, detail.as_str()), (Status::Fail, "missing: aws_s3_bucket_lifecycle_configuration.raw"));
        let rows = lake_rows(|observed| {
            observed.insert("aws_s3_bucket_policy.rejected".into(), Observed::Absent);
        });
        assert_eq!(status_of(&rows, "every resource present").0, Status::NotVerifiable);
        let (status, detail) = status_of(&rows, "lake: TLS-only bucket policy");
        assert_eq!(status, Status::NotVerifiable);
        assert!(detail.contains("PutBucketPolicy is not implemented"), "{detail}");
        assert_eq!(status_of(&rows, "plan is empty").0, Status::Pass);
    }

    #[test]
    fn candidates_are_the_files_that_can_hold_window_offsets() {
        let keys: Vec<String> = [0, 100, 200, 300]
            .iter()
            .map(|first| format!("s/dt=2026-11-01/{}", crate::worker::lake::file_name("t", 0, *first, "parquet")))
            .chain(std::iter::once(format!("s/dt=2026-11-01/{}", crate::worker::lake::file_name("t", 1, 0, "parquet"))))
            .collect();
        let windows = BTreeMap::from([(0, (150, 300))]);
        let got = candidates(&keys, "t", &windows);
        assert_eq!(got, vec![keys[1].clone(), keys[2].clone()]);
    }
}
