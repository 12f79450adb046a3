//! `cio credential migrate --to STORE`: copy every credential with its history into another
//! store (the embedded store into the cluster store when a node grows into a cluster).

use clap::Args;
use serde_json::json;

use crate::context::Context;
use crate::error::CommandError;
use crate::output::counted;

#[derive(Args)]
pub struct MigrateArgs {
    /// The store to copy into, e.g. etcd://10.0.0.1:2379,10.0.0.2:2379
    #[arg(long, value_name = "STORE")]
    pub to: String,
}

pub fn run(ctx: &mut Context, args: MigrateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Migrate credentials";
    // An etcd URL has "://", a path to a file has a '/' (`./NAME` in this folder): a bare word
    // (`--to etcd`), another scheme (`--to http://10.0.0.1:2379`), a half-written etcd URL
    // (`--to etcd:/10.0.0.1:2379`) or one without its scheme is a slip that would copy every
    // credential into a new file under the current folder.
    // A path's first part never holds a ':' (`10.0.0.1:2379/p`, `http:/h`: an address or a
    // scheme) nor is it `etcd` (`etcd//h`).
    let to = args.to.to_ascii_lowercase();
    let etcd = to.starts_with("etcd://") || to.starts_with("etcds://");
    let first = to.split('/').next().unwrap_or_default();
    let url_like = first.contains(':') || first == "etcd" || first == "etcds";
    if !etcd && (!to.contains('/') || url_like) {
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
    Ok(())
}
