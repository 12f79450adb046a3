//! `cio credential migrate --to STORE`: copy every credential with its history into another
//! store (the embedded store into the cluster store when a node grows into a cluster).

use cio_credential::StoreSpec;
use clap::Args;
use serde_json::json;

use crate::context::Context;
use crate::error::CommandError;
use crate::output::counted;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  Copy this node's embedded store into the cluster store (etcd)
    cio credential migrate --to etcd://10.0.0.1:2379,10.0.0.2:2379/cio/credentials

  Check the copy there, before naming it as store in each node's /etc/cio/cio.toml
    cio credential --store etcd://10.0.0.1:2379,10.0.0.2:2379/cio/credentials list";

#[derive(Args)]
pub struct MigrateArgs {
    /// The store to copy into, e.g. etcd://10.0.0.1:2379,10.0.0.2:2379
    #[arg(long, value_name = "STORE", value_parser = crate::cli::Utf8Text)]
    pub to: String,
}

pub fn run(ctx: &mut Context, args: MigrateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Migrate credentials";
    // A mistyped URL (`--to http://...`, `--to etcd:/HOST`, `--to etcd`) is refused by the
    // rule every store location follows (`StoreSpec::parse`). Beyond it, a file must be
    // said as one, with a '/' (`./NAME` in this folder): a bare word (`--to cluster`) is a
    // slip that would copy every credential into a new file under the current folder.
    let target = StoreSpec::parse(&args.to).map_err(|e| CommandError::library(ACTION, e))?;
    if matches!(target, StoreSpec::Sqlite(_)) && !args.to.contains('/') {
        return Err(CommandError::BareTarget);
    }
    let report = ctx.migrate(ACTION, &args.to)?;
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "to": report.target,
            "copied": report.copied(),
            "names": report.names,
        }))?);
    }
    ctx.out.succeed(
        "Migrate",
        format!(
            "{} of {} copied to {} ({} already there)",
            counted(report.copied(), "version"),
            counted(report.names.len(), "name"),
            report.target,
            report.names.iter().map(|m| m.already_there).sum::<usize>()
        ),
    )?;
    // The change log is not copied: an auditor reading the target's log must know where the
    // earlier entries are (said when this run copied something).
    if report.copied() > 0 {
        ctx.out.note(
        "the change log stays in this store: the target's log records the migration, not the changes before it ('cio credential log' here shows those; keep this store, or what 'cio credential log --json' prints, for them)",
        );
    }
    Ok(())
}
