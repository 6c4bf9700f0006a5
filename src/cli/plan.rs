//! `indutech plan --env NAME`: what apply would change, resource by resource, attribute by
//! attribute. Read-only: takes no lock and changes nothing.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine;
use crate::plan::file::SavedPlan;
use crate::plan::{Component, Mode, render};

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Only these components (repeatable): network, vpn, lake, audit, catalog, warehouse,
    /// redpanda, directory, worker, migration. Default: all.
    #[arg(long = "component", value_name = "COMPONENT")]
    pub components: Vec<Component>,
    /// Plan the destruction of every resource instead (what holds data is kept, with what
    /// protects it, unless --force-delete-data).
    #[arg(long)]
    pub destroy: bool,
    /// With --destroy: plan to delete the lake buckets that hold data, the Redshift cluster and
    /// the topics too.
    #[arg(long, requires = "destroy")]
    pub force_delete_data: bool,
    /// Print the plan as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Save the plan to FILE, for `indutech apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// No colours, even on a terminal.
    #[arg(long)]
    pub no_color: bool,
}

/// Whether to colour output written to stdout.
pub fn color(no_color: bool) -> bool {
    !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Observes, diffs and prints the plan.
///
/// Errors: an invalid environment (before any AWS call), a failed read, an unwritable `--out`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let mode = if args.destroy { Mode::Destroy } else { Mode::Apply };
    let options = engine::Options { force_delete_data: args.force_delete_data, ..engine::Options::default() };
    let plan = engine::plan(&ctx, mode, &args.components, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render::text(&plan, color(args.no_color)));
        if let Some(why) = engine::brokers_replaced_at_once(&plan) {
            println!("\nWarning: apply will refuse this plan without --replace-brokers-at-once: {why}");
        }
        // How long the ERP's history takes to land, and whether another path would be faster.
        let migration = args.components.is_empty() || args.components.contains(&Component::Migration);
        if mode == Mode::Apply
            && migration
            && let Some(estimate) = ctx.environment.erp.as_ref().and_then(crate::model::transfer::estimate)
        {
            print!("\n{}", crate::model::transfer::render(&estimate));
        }
        // What the declared ingestion target asks of each broker (validation refused a
        // cluster that cannot carry it with one broker down).
        let redpanda = args.components.is_empty() || args.components.contains(&Component::Redpanda);
        if mode == Mode::Apply
            && redpanda
            && let Some(inputs) = ctx.environment.sizing_inputs()
        {
            print!("\n{}", crate::model::sizing::table(&inputs, &crate::model::sizing::size(&inputs)));
        }
    }
    if let Some(out) = &args.out {
        let saved = SavedPlan {
            environment_file: ctx.environment.file.clone(),
            components: args.components.clone(),
            plan: plan.clone(),
        };
        saved.save(out)?;
        if !args.json {
            println!(
                "\nSaved the plan to {}. To perform exactly these actions, run:\n    indutech apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
