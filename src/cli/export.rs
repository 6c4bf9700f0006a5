//! `indutech export terraform --env NAME [--out DIR]`: writes the platform that `plan --env NAME`
//! would create from empty as a Terraform configuration (see [`crate::export`]). Reads the
//! environment files only: no AWS call, no credentials needed.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The format to export to.
    #[command(subcommand)]
    pub format: Format,
}

/// Export formats.
#[derive(Debug, clap::Subcommand)]
pub enum Format {
    /// A Terraform configuration (AWS and Kafka providers) with the same resources, names, tags,
    /// settings and dependencies; secrets and the worker binary are variables.
    Terraform(TerraformArgs),
}

/// Arguments of `export terraform`.
#[derive(Debug, clap::Args)]
pub struct TerraformArgs {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Folder to write into (created if missing; its `*.tf` files and `cloud-init/` are
    /// replaced, nothing else is touched). Default: `terraform/<env>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Renders and writes the export, printing each path, what was left out and why, and a summary.
///
/// Errors: the environment is invalid (every problem printed, nothing written), the environment
/// asks for what indutech cannot apply either, or a file cannot be written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Format::Terraform(args) = args.format;
    let environment = super::load(&args.env)?;
    let export = crate::export::terraform(&environment)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("terraform").join(&environment.name));
    for path in crate::export::write(&export, &out)? {
        println!("wrote {}", path.display());
    }
    for (address, why) in &export.omitted {
        eprintln!("warning: {address} is not exported: {why}");
    }
    println!(
        "{}: {} resources in {} files ({} left out); run `terraform init` there",
        out.display(),
        export.resources,
        export.files.len(),
        export.omitted.len()
    );
    Ok(ExitCode::SUCCESS)
}
