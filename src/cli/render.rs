//! `indutech render --env NAME [--out DIR]`: writes the files indutech renders from
//! `templates/` for people and machines outside AWS: the factory-side strongSwan configuration
//! of the VPN (read from the live connection; pre-shared keys excluded), each Redpanda broker's
//! cloud-init and, with `worker.runtime = "ec2"`, the worker instances' cloud-init for this
//! binary (the user data whose digests `plan` shows). Read-only on AWS.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// Folder to write into (created if missing). Default: `rendered/<env>`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Renders and writes the files, printing each path.
///
/// Errors: the environment is invalid, the VPN connection does not exist yet (apply the vpn
/// component first), or a file cannot be written.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = super::context(&args.env).await?;
    let environment = &ctx.environment;
    let out = args.out.unwrap_or_else(|| PathBuf::from("rendered").join(&environment.name));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    for placement in crate::model::broker_placements(environment) {
        let text = crate::desired::render::broker_cloud_init(environment, &placement)?;
        files.push((format!("broker-{}.cloud-init.yaml", placement.index), text));
    }
    if environment.worker.runtime == crate::config::environment::WorkerRuntime::Ec2 {
        let text = crate::desired::render::worker_cloud_init(environment, &ctx.binary_sha256()?)?;
        files.push(("worker.cloud-init.yaml".to_owned(), text));
    }
    let (connection, tunnels) = crate::provider::vpn::tunnels(&ctx).await?;
    files.push(("swanctl.conf".to_owned(), crate::desired::render::swanctl_conf(environment, &connection, &tunnels)?));
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
