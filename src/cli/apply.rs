//! `indutech apply --env NAME [PLAN_FILE]` and `indutech destroy --env NAME`: take the lock,
//! plan (or check that a saved plan is still current), confirm, execute, report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;

use super::plan::color;
use crate::engine::{self, Outcome};
use crate::lock;
use crate::plan::file::SavedPlan;
use crate::plan::{Component, Mode, Plan, render};
use crate::provider::Context;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment name (`dev` means environments/dev.toml) or path to an environment file.
    /// Not needed with a PLAN_FILE, which names its environment file (when given, it must be
    /// the same file).
    #[arg(long, env = "INDUTECH_ENV")]
    pub env: Option<String>,
    /// A plan saved by `indutech plan --out FILE`: apply computes the plan again under the lock
    /// and performs it only if it is the same (the file was reviewed when saved), and refuses
    /// with the differences otherwise (a stale or hand-edited file).
    pub plan_file: Option<PathBuf>,
    /// Only these components (repeatable); ignored with a saved plan (it records its own).
    #[arg(long = "component", value_name = "COMPONENT")]
    pub components: Vec<Component>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes run at once.
    #[arg(long, default_value_t = engine::PARALLELISM)]
    pub parallelism: usize,
    /// Allow a plan that replaces several Redpanda brokers at once (their local data goes with
    /// them; without it, such an apply is refused before any change).
    #[arg(long)]
    pub replace_brokers_at_once: bool,
    /// No colours, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
}

/// Arguments of `destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Only these components (repeatable). Default: all.
    #[arg(long = "component", value_name = "COMPONENT")]
    pub components: Vec<Component>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete lake buckets that hold data (without it, destroy refuses to).
    #[arg(long)]
    pub force_delete_data: bool,
    /// How many changes run at once.
    #[arg(long, default_value_t = engine::PARALLELISM)]
    pub parallelism: usize,
    /// No colours, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
}

/// Arguments of `force-unlock`.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// The lock id that the refused apply printed.
    pub lock_id: String,
}

/// Runs `apply`.
///
/// Errors: no environment given, invalid environment (no AWS call), lock held, a saved plan
/// that differs from the plan computed now, refused confirmation, failed reads.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let saved = args.plan_file.as_deref().map(SavedPlan::load).transpose()?;
    let env = match (&saved, &args.env) {
        (Some(saved), None) => saved.environment_file.to_string_lossy().into_owned(),
        (_, Some(env)) => env.clone(),
        (None, None) => bail!("which environment? Give --env NAME (or set INDUTECH_ENV), or a saved plan file"),
    };
    let ctx = super::context(&env).await?;
    if let Some(saved) = &saved
        && saved.environment_file != ctx.environment.file
    {
        bail!(
            "the saved plan was made from {}, but --env (or INDUTECH_ENV) names {}; drop --env to apply the plan's \
             environment",
            saved.environment_file.display(),
            ctx.environment.file.display()
        );
    }
    let mode = saved.as_ref().map_or(Mode::Apply, |s| s.plan.mode);
    let components = saved.as_ref().map_or(args.components.clone(), |s| s.components.clone());
    // As in Terraform, applying a saved plan is the approval: it was reviewed when saved.
    let auto_approve = args.auto_approve || saved.is_some();
    let options = engine::Options {
        parallelism: args.parallelism,
        force_delete_data: saved.as_ref().is_some_and(|s| s.plan.delete_data),
        replace_brokers_at_once: args.replace_brokers_at_once,
        ..engine::Options::default()
    };
    let saved = saved.map(|s| s.plan);
    locked(&ctx, saved, mode, &components, auto_approve, &options, args.no_color).await
}

/// Runs `destroy`.
///
/// Errors: as [`run`].
pub async fn destroy(args: DestroyArgs) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let options = engine::Options {
        parallelism: args.parallelism,
        force_delete_data: args.force_delete_data,
        ..engine::Options::default()
    };
    locked(&ctx, None, Mode::Destroy, &args.components, args.auto_approve, &options, args.no_color).await
}

/// Runs `force-unlock`.
///
/// Errors: no lock, another lock id, S3 failed.
pub async fn force_unlock(args: UnlockArgs) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let info = lock::force_unlock(&ctx, &args.lock_id).await?;
    println!(
        "Removed the lock of environment {} ({} by {} since {}).",
        ctx.environment.name, info.operation, info.who, info.created
    );
    Ok(ExitCode::SUCCESS)
}

/// Takes the lock, runs [`under_lock`], releases the lock; after a destroy of every component
/// that left nothing (nothing kept, nothing failed), removes the state bucket too.
async fn locked(
    ctx: &Arc<Context>,
    saved: Option<Plan>,
    mode: Mode,
    components: &[Component],
    auto_approve: bool,
    options: &engine::Options,
    no_color: bool,
) -> anyhow::Result<ExitCode> {
    let operation = if mode == Mode::Destroy { "destroy" } else { "apply" };
    let held = lock::acquire(ctx, operation).await?;
    let lease = held.lease();
    let result = under_lock(ctx, &lease, saved, mode, components, auto_approve, options, no_color).await;
    held.release(ctx).await?;
    let (code, everything_gone) = result?;
    if everything_gone && components.is_empty() && lock::remove_state_bucket(ctx).await? {
        println!(
            "Removed the state bucket {} (nothing of the environment is left).",
            crate::model::state_bucket_name(&ctx.environment)
        );
    }
    Ok(code)
}

/// Observes, plans (or checks a saved plan against the plan computed now), confirms, executes
/// while the lease holds, records the gaps. Returns the exit code and whether a destroy left
/// nothing of the environment.
#[allow(clippy::too_many_arguments)]
async fn under_lock(
    ctx: &Arc<Context>,
    lease: &Arc<lock::Lease>,
    saved: Option<Plan>,
    mode: Mode,
    components: &[Component],
    auto_approve: bool,
    options: &engine::Options,
    no_color: bool,
) -> anyhow::Result<(ExitCode, bool)> {
    let observation = engine::observe(ctx, mode, components, options).await?;
    let plan = engine::plan_from(ctx, mode, &observation, options);
    if let Some(saved) = saved {
        let differences = crate::plan::file::differences(&saved, &plan);
        if !differences.is_empty() {
            bail!(
                "the saved plan is not the plan computed now, so nothing was applied. Run `indutech plan` again. \
                 Differences:\n  {}",
                differences.join("\n  ")
            );
        }
    }
    print!("{}", render::text(&plan, color(no_color)));
    if !plan.has_changes() {
        return Ok((ExitCode::SUCCESS, mode == Mode::Destroy && plan.kept.is_empty()));
    }
    if !options.replace_brokers_at_once
        && let Some(why) = engine::brokers_replaced_at_once(&plan)
    {
        bail!("nothing was applied: {why}");
    }
    if !auto_approve {
        confirm(mode, &ctx.environment.name)?;
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "Interrupt received: finishing the changes in progress, starting no new ones. Press Ctrl-C again to stop at once."
                );
                interrupt.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let report = engine::execute(ctx, &plan, options, interrupt, &|| lease.check()).await;
    if mode == Mode::Apply {
        engine::record_gaps(ctx, &observation, &report).await?;
    }
    print!("\n{}", engine::report_text(&report, mode));
    for (address, why) in ctx.partial_gaps() {
        println!("{address}: done in part, NOT PERFORMED: {why}");
    }
    if !plan.kept.is_empty() {
        println!(
            "Kept {} resource(s) that hold data or protect or serve what does (listed in the plan above); \
             `indutech destroy --force-delete-data` deletes them too.",
            plan.kept.len()
        );
    }
    let only_gaps = report.outcomes.iter().all(|(_, _, o)| matches!(o, Outcome::Done | Outcome::NotPerformed(_)));
    let ok = only_gaps && !report.interrupted && report.lease_lost.is_none();
    let everything_gone = mode == Mode::Destroy && report.complete() && plan.kept.is_empty();
    Ok((if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }, everything_gone))
}

fn confirm(mode: Mode, environment: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to {} without confirmation: stdin is not a terminal. Pass --auto-approve",
            if mode == Mode::Destroy { "destroy" } else { "apply" }
        );
    }
    let question = match mode {
        Mode::Apply => format!("Do you want to perform these actions on environment {environment}?"),
        Mode::Destroy => format!("Do you really want to destroy every resource of environment {environment}?"),
    };
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("cancelled: the answer was not 'yes'; nothing was changed");
    }
    Ok(())
}
