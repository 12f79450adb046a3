//! Keeping the escrow bundles beside the repositories current: when the node configuration
//! names `recovery_recipients`, every write that changes a primary set stores that set's
//! bundle again. A refresh that fails is a warning with the command that retries it; the
//! write itself has already succeeded and stays. A set that is not complete is skipped,
//! except after a remove or a purge that left it incomplete: its earlier bundle stays in the
//! bucket with the value taken away, and a warning says where and what replaces it. A
//! bundle this node did not seal to its recipients (another cluster's, whose set was
//! imported here as a primary one, or an older cio's without a marker) is never replaced by
//! a refresh: a warning says what was found and the command that replaces it deliberately.

use cio_credential::{
    CredentialName, CredentialStore, EscrowError, Field, Recipient, RecipientSource, RecoveryError,
    Role, SetId, escrow_location, escrow_present, escrow_set, replace_escrow,
};

use crate::context::Context;
use crate::error::CommandError;

/// The recovery recipients of the node configuration (empty when unset).
pub fn configured_recipients(ctx: &Context, action: &str) -> Result<Vec<Recipient>, CommandError> {
    ctx.recovery_recipients(action)?
        .iter()
        .enumerate()
        .map(|(i, text)| Recipient::parse(text, RecipientSource::Config(i + 1)))
        .collect::<Result<Vec<_>, RecoveryError>>()
        .map_err(|e| CommandError::library(action, e))
}

/// After a write of `names`: refreshes the escrow bundle of each primary set among them,
/// when recovery recipients are configured. Never fails: problems are warnings.
pub fn refresh_after_write(ctx: &mut Context, store: &CredentialStore, names: &[CredentialName]) {
    refresh(ctx, store, names, None);
}

/// During a password rotation, once the new password is stored and before the old key is
/// removed: refreshes the escrow bundle of `name`'s set, when recovery recipients are
/// configured. `Err` says why it was not refreshed (the rotation then keeps the old key,
/// which the bundle in the bucket still opens). Without recipients, a bundle already beside
/// the repository (written by a node that has them) cannot be refreshed from here: that is
/// an `Err` too, or it would be left holding a password the repository no longer has.
pub fn refresh_in_rotation(
    ctx: &mut Context,
    store: &CredentialStore,
    name: CredentialName,
) -> Result<(), String> {
    let recipients =
        configured_recipients(ctx, "Refresh recovery bundle").map_err(|e| match e {
            CommandError::Library { source, .. } => source.to_string(),
            other => other.to_string(),
        })?;
    let set = name.set();
    if recipients.is_empty() {
        return match escrow_present(store, set) {
            Ok(false) => Ok(()),
            Ok(true) => Err(format!(
                "a recovery bundle is at {}, and this node's cio.toml names no recovery_recipients to seal a new one to",
                bundle_of_set(store, set).unwrap_or_else(|| "the repository".into())
            )),
            Err(e) => Err(format!(
                "whether a recovery bundle is beside the repository cannot be told ({e})"
            )),
        };
    }
    let location = escrow_set(store, set, recipients, false).map_err(|e| not_refreshed(&e, set))?;
    said_refreshed(ctx, set, &location);
    Ok(())
}

/// Why `set`'s bundle was not refreshed, from `e`: a bundle this node did not seal is left
/// as it is, and the words say how to replace it deliberately.
fn not_refreshed(e: &cio_credential::Error, set: SetId) -> String {
    match e {
        cio_credential::Error::Recovery(RecoveryError::Escrow(
            EscrowError::SealedToOthers { .. } | EscrowError::Unmarked { .. },
        )) => format!("{e}; it was left as it is. {}", replace_escrow(set)),
        _ => e.to_string(),
    }
}

/// Says that `set`'s bundle was stored at `location`: on standard output, or on standard
/// error with --json (standard output holds the command's one document).
fn said_refreshed(ctx: &mut Context, set: SetId, location: &str) {
    let line = format!(
        "Succeed: Refresh recovery bundle: the {set} set, sealed to the recovery recipients, at {location}"
    );
    if ctx.out.json {
        crate::output::stderr_line(&line);
    } else {
        let _ = ctx.out.line(line);
    }
}

/// Where the escrow bundle of `set` is (its repository's), when the repository is stored.
fn bundle_of_set(store: &CredentialStore, set: SetId) -> Option<String> {
    let repo = store.get(set.name(Field::BackupRepo)).ok()??;
    Some(escrow_location(repo.value.expose()))
}

/// Whether a remove or purge of `name` may leave an escrow bundle holding what it takes:
/// only when the set names a repository (the bundle is beside it; `name` may be that URL
/// itself), asked before the removal. A set without one has no bundle to refresh or warn of.
pub fn names_repository(store: &CredentialStore, name: CredentialName) -> bool {
    name.field == Field::BackupRepo
        || matches!(store.get(name.set().name(Field::BackupRepo)), Ok(Some(_)))
}

/// How a value left its set, for [`refresh_after_removal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `remove`: a version without a value; `restore` brings it back.
    Removed,
    /// `remove --purge`: every version destroyed.
    Purged,
}

/// Where the escrow bundle of `name`'s set is, if recovery recipients are configured and
/// `name` is of a primary set whose repository is stored: for [`refresh_after_removal`],
/// asked before the remove or purge (which may take the repository's URL itself).
pub fn bundle_of(ctx: &Context, store: &CredentialStore, name: CredentialName) -> Option<String> {
    let configured = ctx
        .recovery_recipients("Remove credential")
        .is_ok_and(|r| !r.is_empty());
    if name.role != Role::Primary || !configured {
        return None;
    }
    bundle_of_set(store, name.set())
}

/// After a remove or purge of `name`: as [`refresh_after_write`]; and a primary set it
/// left incomplete keeps its earlier bundle (at `bundle_at`, from [`bundle_of`]), which may
/// hold the value taken away: a warning says so and what replaces it.
pub fn refresh_after_removal(
    ctx: &mut Context,
    store: &CredentialStore,
    name: CredentialName,
    how: Removal,
    bundle_at: Option<String>,
) {
    refresh(ctx, store, &[name], Some((how, bundle_at)));
}

/// `removed`: `None` after a write; after a remove or purge, how, and where the set's
/// bundle was (if known).
fn refresh(
    ctx: &mut Context,
    store: &CredentialStore,
    names: &[CredentialName],
    removed: Option<(Removal, Option<String>)>,
) {
    let mut sets: Vec<SetId> = names
        .iter()
        .map(|n| n.set())
        .filter(|s| s.role == Role::Primary)
        .collect();
    sets.sort();
    sets.dedup();
    if sets.is_empty() {
        return;
    }
    let recipients = match configured_recipients(ctx, "Refresh recovery bundle") {
        Ok(r) => r,
        Err(e) => {
            // The library's words alone: the warning says what was not done.
            let why = match &e {
                CommandError::Library { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            ctx.out.warn(format!(
                "the recovery bundles were not refreshed: {why}; fix recovery_recipients in cio.toml, then run 'cio credential export --to-repository'"
            ));
            if let Some((how, bundle_at)) = &removed {
                for set in sets {
                    ctx.out
                        .warn(stale_bundle(set, *how, bundle_at.as_deref(), false));
                }
            }
            return;
        }
    };
    if recipients.is_empty() {
        return;
    }
    for set in sets {
        match escrow_set(store, set, recipients.clone(), false) {
            Ok(location) => said_refreshed(ctx, set, &location),
            // An incomplete set has nothing to escrow yet (its earlier bundle, if any, stays).
            Err(cio_credential::Error::IncompleteSet { .. }) if removed.is_some() => {
                if let Some((how, bundle_at)) = &removed {
                    ctx.out
                        .warn(stale_bundle(set, *how, bundle_at.as_deref(), true));
                }
            }
            Err(cio_credential::Error::IncompleteSet { .. }) => {}
            Err(
                e @ cio_credential::Error::Recovery(RecoveryError::Escrow(
                    EscrowError::SealedToOthers { .. } | EscrowError::Unmarked { .. },
                )),
            ) => ctx.out.warn(format!(
                "the recovery bundle of the {set} set was not refreshed: {}; the write above is kept",
                not_refreshed(&e, set)
            )),
            Err(e) => ctx.out.warn(format!(
                "the recovery bundle of the {set} set was not refreshed: {e}; the write above is kept. Retry with: cio credential export --to-repository --provider {}",
                set.provider
            )),
        }
    }
}

/// The warning after a remove or purge whose set's escrow bundle (at `bundle_at`, when
/// known) was not written again: it may still hold the value taken away. `incomplete`:
/// because the set is incomplete now (else: because the recipients could not be read).
fn stale_bundle(set: SetId, how: Removal, bundle_at: Option<&str>, incomplete: bool) -> String {
    let bundle = match bundle_at {
        Some(at) => format!("the recovery bundle at {at}"),
        None => format!("the recovery bundle beside the {set} set's repository"),
    };
    let why = if incomplete {
        format!("the {set} set is incomplete now, so it was not replaced")
    } else {
        "it was not replaced".to_string()
    };
    let value = match how {
        Removal::Removed => "removed",
        Removal::Purged => "destroyed",
    };
    format!(
        "{bundle} may still hold the {value} value ({why}); make the set complete again and the refresh that follows replaces it, or delete that object from the bucket"
    )
}
