//! `cio credential create|add NAME [VALUE]`: create or replace a credential.

use serde_json::json;

use crate::cli::CreateArgs;
use crate::commands::escrow;
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::input::read_value;
use crate::output::{warn_value, warnings_json};
use cio_credential::store::Action;

pub fn run(ctx: &mut Context, args: CreateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Create credential";
    let name = parse_name(ACTION, &args.name)?;
    let value = read_value(name, args.value).map_err(|problem| CommandError::Input {
        action: format!("{ACTION}: {name}"),
        problem,
    })?;
    let vault = ctx.vault(ACTION)?;
    let written = vault
        .put(name, &value)
        .map_err(|e| CommandError::library(ACTION, e))?;
    warn_value(name, &written.warnings);
    if ctx.out.json {
        ctx.out.json(&json!({
            "name": name,
            "action": written.action,
            "version": written.version,
            "warnings": warnings_json(&written.warnings),
        }))?;
    } else if written.action == Action::Update {
        ctx.out.succeed(
            "Update",
            format!(
                "{name} (version {}; earlier values: cio credential history {name})",
                written.version
            ),
        )?;
    } else {
        ctx.out.succeed("Create", name.to_string())?;
    }
    escrow::refresh_after_write(ctx, &vault, &[name]);
    Ok(())
}
