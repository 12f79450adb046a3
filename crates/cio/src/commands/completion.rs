//! `cio completion bash|zsh|fish`: the shell completion script, generated from the one clap
//! definition (clap_complete), so it always matches the commands, flags and credential names.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, Shell};
use crate::error::CommandError;

pub fn run(args: CompletionArgs) -> Result<(), CommandError> {
    let mut script = Vec::new();
    let mut cmd = Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "cio", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
