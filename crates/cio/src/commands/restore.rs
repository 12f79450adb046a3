//! `cio credential restore NAME [--version N] [--force]`: bring back a removed credential or
//! an earlier value, as a new version.

use clap::Args;
use serde_json::json;

use cio_credential::{Field, PasswordChange, check_password_restore};

use crate::commands::{ca_file, escrow};
use crate::context::{Context, parse_name};
use crate::error::CommandError;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  Undo the last change (or a remove): the value before the current one comes back
    cio credential restore cio_aws_access_key

  Bring back version 2 (see cio credential history cio_aws_access_key)
    cio credential restore cio_aws_access_key --version 2";

#[derive(Args)]
pub struct RestoreArgs {
    /// The credential's name, e.g. cio_aws_access_key
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: String,
    /// The version to bring back (see `cio credential history NAME`); default: the value
    /// before the current one, or the last value of a removed credential
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Restore a repository password even when the repository does not open with it (its
    /// password was changed back elsewhere)
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &mut Context, args: RestoreArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Restore credential";
    let name = parse_name(
        ACTION,
        "restore",
        crate::cli::CredentialNames::ANY,
        &args.name,
    )?;
    let store = ctx.open(ACTION)?;
    // An earlier repository password must still open the repository: a rotation removes
    // the old password's key.
    if name.field == Field::BackupPassword && !args.force {
        let restored = store
            .restore_value(name, args.version)
            .map_err(|e| CommandError::library(ACTION, e))?;
        let change = check_password_restore(&store, name, &restored)
            .map_err(|e| CommandError::library(ACTION, e))?;
        if let PasswordChange::Unchecked(why) = change {
            ctx.out.warn(format!(
                "{name}: the repository could not be asked whether it still has a key for the restored password ({why}); check with 'cio credential validate {name}'"
            ));
        }
    }
    // A key written together with the other key of its pair brings the pair back.
    let written = store
        .restore_keys(name, args.version)
        .map_err(|e| CommandError::library(ACTION, e))?;
    ca_file::sweep(ctx, &store, None);
    ctx.out.warn_log_damage(store.log_damage(), true);
    let [first, rest @ ..] = written.as_slice() else {
        return Ok(());
    };
    if ctx.out.json {
        let mut doc = json!({
            "name": name,
            "action": "restore",
            "version": first.version,
            "restored_from": first.restored_from,
        });
        if let Some(pair) = rest.first() {
            doc["pair"] = json!({
                "name": pair.name,
                "version": pair.version,
                "restored_from": pair.restored_from,
            });
        }
        ctx.out.json(&doc)?;
    } else {
        let what = |w: &cio_credential::Written| {
            format!(
                "{} (version {}, the value of version {})",
                w.name,
                w.version,
                w.restored_from.unwrap_or_default()
            )
        };
        let mut text = what(first);
        for pair in rest {
            text.push_str(&format!(
                ", and with it the other key of its pair: {}",
                what(pair)
            ));
        }
        ctx.out.succeed("Restore", text)?;
    }
    let names: Vec<_> = written.iter().map(|w| w.name).collect();
    escrow::refresh_after_write(ctx, &store, &names);
    Ok(())
}
