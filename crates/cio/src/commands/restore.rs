//! `cio credential restore NAME [--version N]`: bring back a removed credential or an
//! earlier value, as a new version.

use clap::Args;
use serde_json::json;

use crate::commands::escrow;
use crate::context::{Context, parse_name};
use crate::error::CommandError;

#[derive(Args)]
pub struct RestoreArgs {
    /// The credential's name, e.g. cio_aws_access_key
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames, hide_possible_values = true)]
    pub name: String,
    /// The version to bring back (see `cio credential history NAME`); default: the value
    /// before the current one, or the last value of a removed credential
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

pub fn run(ctx: &mut Context, args: RestoreArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Restore credential";
    let name = parse_name(ACTION, &args.name)?;
    let store = ctx.open(ACTION)?;
    let written = store
        .restore(name, args.version)
        .map_err(|e| CommandError::library(ACTION, e))?;
    ctx.out.warn_log_damage(store.log_damage(), true);
    if ctx.out.json {
        ctx.out.json(&json!({
            "name": name,
            "action": "restore",
            "version": written.version,
            "restored_from": written.restored_from,
        }))?;
    } else {
        ctx.out.succeed(
            "Restore",
            format!(
                "{name} (version {}, the value of version {})",
                written.version,
                written.restored_from.unwrap_or_default()
            ),
        )?;
    }
    escrow::refresh_after_write(ctx, &store, &[name]);
    Ok(())
}
