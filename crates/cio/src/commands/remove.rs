//! `cio credential remove|delete|rm NAME [--purge [--compact]]`: remove a credential,
//! recoverably unless purged; `--compact` also compacts etcd's history after a purge.

use clap::Args;
use serde_json::json;

use cio_credential::EarlierRevisions;

use crate::commands::ca_file;
use crate::commands::escrow::{self, Removal};
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::output::counted;

/// The long help's end.
pub const EXAMPLES: &str = "\
Examples:
  Remove a credential; cio credential restore brings it back
    cio credential remove cio_aws_region

  Destroy every version of it, beyond restore
    cio credential remove cio_aws_region --purge";

#[derive(Args)]
pub struct RemoveArgs {
    /// The credential's name, e.g. cio_aws_backup_repo
    #[arg(value_name = "CREDENTIALNAME", value_parser = crate::cli::CredentialNames::ANY, hide_possible_values = true)]
    pub name: String,
    /// Destroy the credential and every earlier version; this cannot be undone
    #[arg(long)]
    pub purge: bool,
    /// With --purge on an etcd store: also compact etcd's history, which otherwise keeps the
    /// destroyed versions readable at earlier revisions (drops every key's earlier revisions)
    #[arg(long, requires = "purge")]
    pub compact: bool,
}

pub fn run(ctx: &mut Context, args: RemoveArgs) -> Result<(), CommandError> {
    let action = if args.purge {
        "Purge credential"
    } else {
        "Remove credential"
    };
    let name = parse_name(
        action,
        "remove",
        crate::cli::CredentialNames::ANY,
        &args.name,
    )?;
    let store = ctx.open(action)?;
    // Where the set's escrow bundle is, read before the remove may take the repository's URL.
    let bundle_at = escrow::bundle_of(ctx, &store, name);
    let beside_repository = escrow::names_repository(&store, name);
    if args.purge {
        let purged = store
            .purge(name, args.compact)
            .map_err(|e| CommandError::library(action, e))?;
        ca_file::sweep(ctx, &store, None);
        ctx.out.warn_log_damage(store.log_damage(), true);
        let compacted = match purged.earlier_revisions {
            EarlierRevisions::Compacted { revision } => Some(revision),
            EarlierRevisions::NotKept | EarlierRevisions::Kept => None,
        };
        if ctx.out.json {
            ctx.out.json(&json!({
                "name": name,
                "action": "purge",
                "versions_destroyed": purged.versions,
                "earlier_revisions_kept": purged.earlier_revisions == EarlierRevisions::Kept,
                "compacted_revision": compacted,
                "note": purged.note(),
            }))?;
        } else {
            ctx.out.succeed(
                "Purge",
                format!("{name} ({} destroyed)", counted(purged.versions, "version")),
            )?;
            ctx.out.warn(purged.note());
        }
        // A purge that destroyed nothing changed nothing a bundle holds.
        if beside_repository && purged.versions > 0 {
            escrow::refresh_after_removal(ctx, &store, name, Removal::Purged, bundle_at);
        }
        return Ok(());
    }
    let version = store
        .remove(name)
        .map_err(|e| CommandError::library(action, e))?;
    ca_file::sweep(ctx, &store, None);
    ctx.out.warn_log_damage(store.log_damage(), true);
    if ctx.out.json {
        ctx.out
            .json(&json!({"name": name, "action": "remove", "version": version}))?;
    } else {
        ctx.out.succeed(
            "Remove",
            format!("{name} (bring it back with: cio credential restore {name})"),
        )?;
    }
    // The set changed: its escrow bundle too, or a warning that it still holds the value.
    if beside_repository {
        escrow::refresh_after_removal(ctx, &store, name, Removal::Removed, bundle_at);
    }
    Ok(())
}
