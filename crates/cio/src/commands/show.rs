//! `cio credential show NAME [--reveal]`: one credential's metadata and masked value;
//! `--reveal` prints the value alone, for scripts.

use clap::Args;
use serde_json::json;

use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::time;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  A credential's version, time and masked value
    cio credential show cio_aws_access_key

  The value itself, for a script (on a terminal it warns first)
    cio credential show cio_minio_backup_repo --reveal";

#[derive(Args)]
pub struct ShowArgs {
    /// The credential's name, e.g. cio_aws_access_key
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: String,
    /// Print the value alone, unmasked, for scripts
    #[arg(long)]
    pub reveal: bool,
}

pub fn run(ctx: &mut Context, args: ShowArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Show credential";
    let name = parse_name(ACTION, "show", crate::cli::CredentialNames::ANY, &args.name)?;
    let store = ctx.open(ACTION)?;
    let entry = store
        .get(name)
        .map_err(|e| CommandError::library(ACTION, e))?
        .ok_or_else(|| CommandError::library(ACTION, store.absent(name)))?;
    let suspected = store
        .rollback_suspected()
        .map_err(|e| CommandError::library(ACTION, e))?;
    ctx.out.warn_log_damage(suspected, false);
    let value = if args.reveal {
        ctx.out.warn_if_secrets_shown();
        entry.value.expose().to_string()
    } else {
        name.field.mask(entry.value.expose())
    };
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "name": name,
            "provider": name.provider,
            "role": name.role,
            "value": value,
            "version": entry.version,
            "updated": time(entry.updated_ms),
        }))?);
    }
    if args.reveal {
        return Ok(ctx.out.data(value)?);
    }
    let rows = [
        ["name:", &name.to_string()],
        ["provider:", name.provider.as_str()],
        ["set:", name.role.as_str()],
        ["value:", &value],
        ["version:", &entry.version.to_string()],
        ["updated:", &time(entry.updated_ms)],
    ]
    .map(|r| r.map(str::to_string).to_vec());
    Ok(ctx.out.table(&rows)?)
}
