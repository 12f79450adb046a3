//! `cio credential remove|delete|rm NAME [--purge]`: remove a credential, recoverably unless
//! purged.

use clap::Args;
use serde_json::json;

use crate::context::{Context, parse_name};
use crate::error::CommandError;

#[derive(Args)]
pub struct RemoveArgs {
    /// The credential's name, e.g. cio_aws_backup_repo
    #[arg(value_name = "CREDENTIALNAME")]
    pub name: String,
    /// Destroy the credential and every earlier version; this cannot be undone
    #[arg(long)]
    pub purge: bool,
}

pub fn run(ctx: &mut Context, args: RemoveArgs) -> Result<(), CommandError> {
    let action = if args.purge {
        "Purge credential"
    } else {
        "Remove credential"
    };
    let name = parse_name(action, &args.name)?;
    let store = ctx.open(action)?;
    if args.purge {
        let versions = store
            .purge(name)
            .map_err(|e| CommandError::library(action, e))?;
        if ctx.out.json {
            return Ok(ctx.out.json(
                &json!({"name": name, "action": "purge", "versions_destroyed": versions}),
            )?);
        }
        return Ok(ctx
            .out
            .succeed("Purge", format!("{name} ({versions} versions destroyed)"))?);
    }
    let version = store
        .remove(name)
        .map_err(|e| CommandError::library(action, e))?;
    if ctx.out.json {
        return Ok(ctx
            .out
            .json(&json!({"name": name, "action": "remove", "version": version}))?);
    }
    ctx.out.succeed(
        "Remove",
        format!("{name} (bring it back with: cio credential restore {name})"),
    )?;
    Ok(())
}
