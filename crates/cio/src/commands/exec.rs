//! `cio credential exec [--provider P] [--alternate] -- COMMAND [ARGS...]`: replace cio with
//! COMMAND, a complete set in its environment (never in its argv, never in a file).

use std::os::unix::process::CommandExt;
use std::process::Command;

use cio_credential::engine::CLEARED;
use cio_credential::restic_argv::{Access, classify};

use crate::cli::ExecArgs;
use crate::commands::handoff::chosen_set;
use crate::context::Context;
use crate::error::CommandError;

pub fn run(ctx: &mut Context, args: ExecArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Run with credentials";
    if args.set.alternate
        && !args.allow_write
        && let Access::Writes { command, why } = classify(&args.command)
    {
        return Err(CommandError::RestoreOnly { command, why });
    }
    let handoff = chosen_set(ctx, ACTION, &args.set)?;
    let (program, rest) = args
        .command
        .split_first()
        .expect("clap requires at least one COMMAND word (required = true)");
    let mut command = Command::new(program);
    command.args(rest);
    for var in CLEARED {
        command.env_remove(var);
    }
    for (var, value) in &handoff.vars {
        command.env(var, value.expose());
    }
    // exec only returns on failure; on success COMMAND has replaced this process.
    let error = command.exec();
    Err(CommandError::Exec {
        program: program.to_string_lossy().into_owned(),
        source: error,
    })
}
