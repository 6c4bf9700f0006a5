//! `indutech apply --env NAME [PLAN_FILE]` and `indutech destroy --env NAME`: take the lock,
//! plan (or check that a saved plan is still current), confirm, execute, report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};

use super::plan::{SavedPlan, color};
use crate::engine::{self, Outcome};
use crate::lock;
use crate::plan::{Component, Mode, Plan, render};
use crate::provider::Context;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment name (`dev` means environments/dev.toml) or path to an environment file.
    #[arg(long, env = "INDUTECH_ENV")]
    pub env: String,
    /// A plan saved by `indutech plan --out FILE`: applied exactly, without asking again (it
    /// was reviewed when saved), and refused when stale.
    pub plan_file: Option<PathBuf>,
    /// Only these components (repeatable); ignored with a saved plan (it records its own).
    #[arg(long = "component", value_name = "COMPONENT")]
    pub components: Vec<Component>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many changes run at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// No colours, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
}

/// Arguments of `destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Environment name (`dev` means environments/dev.toml) or path to an environment file.
    #[arg(long, env = "INDUTECH_ENV")]
    pub env: String,
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
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// No colours, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
}

/// Arguments of `force-unlock`.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// Environment name or path to an environment file.
    #[arg(long, env = "INDUTECH_ENV")]
    pub env: String,
    /// The lock id that the refused apply printed.
    pub lock_id: String,
}

/// Runs `apply`.
///
/// Errors: invalid environment (no AWS call), lock held, stale saved plan, refused
/// confirmation, failed reads.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let saved = match &args.plan_file {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
            let saved: SavedPlan = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a plan saved by `indutech plan --out`", path.display()))?;
            if saved.plan.format_version != Plan::FORMAT_VERSION {
                bail!(
                    "{} has plan format {}, this indutech reads {}",
                    path.display(),
                    saved.plan.format_version,
                    Plan::FORMAT_VERSION
                );
            }
            Some(saved)
        }
        None => None,
    };
    let ctx = super::context(&args.env).await?;
    let mode = saved.as_ref().map_or(Mode::Apply, |s| s.plan.mode);
    let components = saved.as_ref().map_or(args.components.clone(), |s| s.components.clone());
    let operation = if mode == Mode::Destroy { "destroy" } else { "apply" };
    // As in Terraform, applying a saved plan is the approval: it was reviewed when saved.
    let auto_approve = args.auto_approve || saved.is_some();
    let held = lock::acquire(&ctx, operation).await?;
    let result = locked(&ctx, saved, mode, &components, auto_approve, args.parallelism, args.no_color).await;
    held.release(&ctx).await?;
    result
}

/// Runs `destroy`.
///
/// Errors: as [`run`].
pub async fn destroy(args: DestroyArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = super::context(&args.env).await?;
    Arc::get_mut(&mut ctx).expect("not shared yet").force_delete_data = args.force_delete_data;
    let held = lock::acquire(&ctx, "destroy").await?;
    let result =
        locked(&ctx, None, Mode::Destroy, &args.components, args.auto_approve, args.parallelism, args.no_color).await;
    held.release(&ctx).await?;
    result
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

async fn locked(
    ctx: &Arc<Context>,
    saved: Option<SavedPlan>,
    mode: Mode,
    components: &[Component],
    auto_approve: bool,
    parallelism: usize,
    no_color: bool,
) -> anyhow::Result<ExitCode> {
    let observation = engine::observe(ctx, components).await?;
    let plan = match saved {
        Some(saved) => {
            if saved.plan.environment != ctx.environment.name {
                bail!("the saved plan is for environment {}, not {}", saved.plan.environment, ctx.environment.name);
            }
            if saved.plan.inputs_digest != engine::inputs_digest(&ctx.environment) {
                bail!(
                    "the saved plan is stale: the environment or stream files changed since it was made. Run `indutech plan` again"
                );
            }
            if saved.plan.observed_digest != observation.digest() {
                let fresh = engine::plan_from(ctx, mode, &observation);
                bail!(
                    "the saved plan is stale: AWS changed since it was made (a fresh plan has {} change(s) instead of {}). \
                     Run `indutech plan` again",
                    fresh.changes.len(),
                    saved.plan.changes.len()
                );
            }
            saved.plan
        }
        None => engine::plan_from(ctx, mode, &observation),
    };
    print!("{}", render::text(&plan, color(no_color)));
    if !plan.has_changes() {
        return Ok(ExitCode::SUCCESS);
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
    let report = engine::execute(ctx, &plan, parallelism, interrupt).await;
    if mode == Mode::Apply {
        engine::record_gaps(ctx, &observation, &report).await?;
    }
    print!("\n{}", engine::report_text(&report, mode));
    let only_gaps = report.outcomes.iter().all(|(_, _, o)| matches!(o, Outcome::Done | Outcome::NotPerformed(_)));
    Ok(if only_gaps && !report.interrupted { ExitCode::SUCCESS } else { ExitCode::from(1) })
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
