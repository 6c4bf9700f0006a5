//! `indutech completions bash|zsh|fish`: shell completions for every verb and flag, written to
//! stdout by clap_complete from the same definitions clap parses.

use std::process::ExitCode;

use clap::CommandFactory as _;

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh or fish. Install with, for example,
    /// `indutech completions bash > ~/.local/share/bash-completion/completions/indutech`.
    pub shell: Shell,
}

/// The shells completions are written for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Prints the completion script of `args.shell`.
///
/// Errors: none (writing to stdout cannot fail in a way worth reporting).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "indutech", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
