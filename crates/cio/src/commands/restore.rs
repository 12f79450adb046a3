//! `cio credential restore NAME [--version N]`: bring back a removed credential or an
//! earlier value, as a new version.

use serde_json::json;

use crate::cli::RestoreArgs;
use crate::commands::escrow;
use crate::context::{Context, parse_name};
use crate::error::CommandError;

pub fn run(ctx: &mut Context, args: RestoreArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Restore credential";
    let name = parse_name(ACTION, &args.name)?;
    let vault = ctx.vault(ACTION)?;
    let written = vault
        .restore(name, args.version)
        .map_err(|e| CommandError::library(ACTION, e))?;
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
    escrow::refresh_after_write(ctx, &vault, &[name]);
    Ok(())
}
