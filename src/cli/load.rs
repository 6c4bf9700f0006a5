//! `indutech load --env NAME --table erp.TABLE --from FILE.csv`: a CSV export of an ERP table
//! written into the raw zone as DMS's full-load files ([`crate::load`]).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// The ERP table, `erp.<name>` as declared under `[erp.tables]`.
    #[arg(long, value_name = "erp.TABLE")]
    pub table: String,
    /// The CSV export: a header naming each declared column once (its SQL Server name or its
    /// lake name), then one row per record; an empty cell is null.
    #[arg(long = "from", value_name = "FILE.csv")]
    pub from: PathBuf,
}

/// Checks the whole file, then writes it; prints each file written.
///
/// Errors: an invalid environment or CSV (nothing written), an undeclared table, S3 refused.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let loaded = crate::load::run(&ctx.environment, &ctx.aws, &args.table, &args.from).await?;
    for (url, rows) in &loaded.files {
        println!("wrote {url} ({rows} rows)");
    }
    for key in &loaded.removed {
        println!("removed {key} (an earlier load's file; its versions stay in the bucket)");
    }
    Ok(ExitCode::SUCCESS)
}
