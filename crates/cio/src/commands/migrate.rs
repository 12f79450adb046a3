//! `cio credential migrate --to STORE`: copy every credential with its history into another
//! store (the embedded store into the cluster store when a node grows into a cluster).

use serde_json::json;

use cio_credential::migrate::migrate;
use cio_credential::store::StoreSpec;

use crate::cli::MigrateArgs;
use crate::context::Context;
use crate::error::CommandError;

pub fn run(ctx: &mut Context, args: MigrateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Migrate credentials";
    let fail = |e: cio_credential::Error| CommandError::library(ACTION, e);
    let settings = ctx.settings(ACTION)?;
    let auth = ctx.etcd_auth(ACTION)?;
    let source = ctx.vault(ACTION)?;
    let spec = StoreSpec::parse(&args.to).map_err(|e| fail(e.into()))?;
    let target = spec
        .open_with(settings.etcd_options(auth, None))
        .map_err(|e| fail(e.into()))?;
    let report = migrate(&source, target.as_ref()).map_err(fail)?;
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "to": spec.location(),
            "copied": report.copied(),
            "names": report.names,
        }))?);
    }
    ctx.out.succeed(
        "Migrate",
        format!(
            "{} versions of {} names copied to {} ({} already there)",
            report.copied(),
            report.names.len(),
            spec.location(),
            report.names.iter().map(|m| m.already_there).sum::<usize>()
        ),
    )?;
    Ok(())
}
