//! `cio credential exec [--provider P] [--alternate] -- COMMAND [ARGS...]`: replace cio with
//! COMMAND, a complete set in its environment (never in its argv, never in a file).

use std::os::unix::process::CommandExt;
use std::process::Command;

use clap::Args;

use cio_credential::CLEARED;

use crate::commands::handoff::{SetArgs, chosen_set};
use crate::context::Context;
use crate::error::CommandError;

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  List the backups of this cluster's AWS repository
    cio credential exec --provider aws -- restic snapshots
  Restore another cluster's latest backup (disaster recovery)
    cio credential exec --alternate -- restic restore latest --target /mnt/restore";

pub fn run(ctx: &mut Context, args: ExecArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Run with credentials";
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
