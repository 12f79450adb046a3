//! `cio credential remove|delete|rm NAME [--purge [--compact]]`: remove a credential,
//! recoverably unless purged; `--compact` also compacts etcd's history after a purge.

use serde_json::json;

use cio_credential::credentials::EarlierRevisions;

use crate::cli::RemoveArgs;
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::warn;

pub fn run(ctx: &mut Context, args: RemoveArgs) -> Result<(), CommandError> {
    let action = if args.purge {
        "Purge credential"
    } else {
        "Remove credential"
    };
    let name = parse_name(action, &args.name)?;
    let vault = ctx.vault(action)?;
    if args.purge {
        let purged = vault
            .purge(name, args.compact)
            .map_err(|e| CommandError::library(action, e))?;
        let compacted = match purged.earlier_revisions {
            EarlierRevisions::Compacted { revision } => Some(revision),
            EarlierRevisions::NotKept | EarlierRevisions::Kept => None,
        };
        if ctx.out.json {
            return Ok(ctx.out.json(&json!({
                "name": name,
                "action": "purge",
                "versions_destroyed": purged.versions,
                "earlier_revisions_kept": purged.earlier_revisions == EarlierRevisions::Kept,
                "compacted_revision": compacted,
                "note": purged.note(),
            }))?);
        }
        ctx.out.succeed(
            "Purge",
            format!("{name} ({} versions destroyed)", purged.versions),
        )?;
        if let Some(note) = purged.note() {
            warn(note);
        }
        return Ok(());
    }
    let version = vault
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
