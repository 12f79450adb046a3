//! `cio credential exec [--provider P] [--alternate] -- COMMAND [ARGS...]`: replace cio with
//! COMMAND, a complete set in its environment (never in its argv, never in a file).

use std::os::unix::process::CommandExt;
use std::process::Command;

use clap::Args;

use cio_credential::{RepositoryAccess, cleared, hand_ca, restic_access, without_lock};

use crate::commands::ca_file;
use crate::commands::handoff::{SetArgs, chosen_set};
use crate::context::Context;
use crate::error::CommandError;

#[derive(Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub set: SetArgs,
    /// With --alternate: allow restic commands that write to or change the repository
    /// (backup, forget, prune, key add, ...), which the alternate set refuses: its
    /// repository belongs to another cluster
    #[arg(long)]
    pub allow_write: bool,
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
    cio credential exec --alternate -- restic restore latest --target /mnt/restore

The alternate set is restore-only: with --alternate, restic commands that write to or change
the repository (init, backup, forget, prune, key add|remove|passwd, tag, unlock, repair,
migrate, rebuild-index, recover, copy into it) are refused unless --allow-write is given, and
the commands that read it (snapshots, restore, ls, ...) run with restic's --no-lock: restic
would otherwise write a lock file into the repository, which a restore-only key may not do.
restic key list and migrate (even to list the migrations) lock it all the same, so they are
refused too (restic list keys lists the keys without a lock).
restic is recognised by its name, or as the file the restic on PATH is (a link to it), also
behind env, nice, timeout, nohup, stdbuf, ionice, chrt, taskset, setsid and flock, whose
options are read as they read them (a line of theirs cio cannot read, such as env -S, is
refused too). Behind any other program (sudo, xargs, watch, ...), a word restic followed by
one of those commands is refused, and so is a word restic whose command is not on the line
(xargs restic, with the command on its input or in a file) and a shell line that names
restic (sh -c, su -c): cio cannot tell what restic will run. Give restic and its command as
the words after --, or add --allow-write. Not checked: a script that runs restic (a file, or
the commands sh or parallel read from their input), and a copy of restic under another name.";

pub fn run(ctx: &mut Context, args: ExecArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Run with credentials";
    if args.set.alternate && !args.allow_write {
        match restic_access(&args.command) {
            RepositoryAccess::Writes { command, why } => {
                return Err(CommandError::RestoreOnly { command, why });
            }
            RepositoryAccess::Unseen { why } => {
                return Err(CommandError::RestoreOnlyUnseen { why });
            }
            RepositoryAccess::Reads | RepositoryAccess::NotRestic => {}
        }
    }
    let (store, handoff) = chosen_set(ctx, ACTION, &args.set)?;
    let suspected = store
        .rollback_suspected()
        .map_err(|e| CommandError::library(ACTION, e))?;
    ctx.out.warn_log_damage(suspected, false);
    ca_file::sweep(ctx, &store, None);
    drop(store);
    // A restore-only key may not write restic's lock file: restic reads the alternate
    // repository without one.
    let line = match args.set.alternate && !args.allow_write {
        true => without_lock(&args.command).unwrap_or(args.command),
        false => args.command,
    };
    let (program, rest) = line
        .split_first()
        .expect("clap requires at least one COMMAND word (required = true)");
    let mut command = Command::new(program);
    command.args(rest);
    for var in cleared() {
        command.env_remove(var);
    }
    for (var, value) in &handoff.vars {
        command.env(var, value.expose());
    }
    // The set's CA certificate: restic (Go) trusts the bundle SSL_CERT_FILE names; an
    // in-memory copy the command inherits, after the caller's own certificates. Without
    // one, no cio bundle (a removed CA's, another set's) reaches the command. Kept alive
    // until exec replaces this process.
    let (_ca, unread) = hand_ca(
        &mut command,
        handoff.cacert.as_ref().map(|pem| pem.expose()),
    )
    .map_err(|source| CommandError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    if let Some((variable, unread)) = &unread {
        ca_file::warn_unread(ctx, variable, unread);
    }
    // exec only returns on failure; on success COMMAND has replaced this process.
    let error = command.exec();
    Err(CommandError::Exec {
        program: program.to_string_lossy().into_owned(),
        source: error,
    })
}
