//! `indutech graph --env NAME [--format svg|dot|mermaid] [--out FILE]`: the platform the
//! environment describes as a picture (see [`crate::graph`]). Reads the environment files only:
//! no AWS call, no credentials needed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment (`--env`, [`super::EnvArg`]).
    #[command(flatten)]
    pub env: super::EnvArg,
    /// What to write: SVG (laid out in-process, no Graphviz needed), Graphviz DOT or a Mermaid
    /// flowchart.
    #[arg(long, value_enum, default_value_t = Format::Svg)]
    pub format: Format,
    /// File to write (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The picture's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SVG, laid out by the layout-rs crate.
    Svg,
    /// Graphviz DOT, one cluster per component.
    Dot,
    /// A Mermaid flowchart, one subgraph per component.
    Mermaid,
}

/// Writes the picture to `--out` or standard output.
///
/// Errors: the environment is invalid (every problem printed, nothing written), or the file
/// cannot be written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let environment = super::load(&args.env)?;
    let picture = crate::graph::picture(&environment);
    let text = match args.format {
        Format::Svg => crate::graph::svg(&picture),
        Format::Dot => crate::graph::dot(&picture),
        Format::Mermaid => crate::graph::mermaid(&picture),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{}: {} nodes, {} edges of environment {}",
                path.display(),
                picture.nodes.len(),
                picture.edges.len(),
                environment.name
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
