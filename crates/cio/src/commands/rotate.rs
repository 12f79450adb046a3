//! `cio credential rotate cio_{aws|minio}_backup_password [--generate] [--keep-old-key]`:
//! change a repository password in step with the repository (restic's keys). With
//! `--provider P [--alternate] --access-key`: an access key pair (`rotate_keys.rs`).

use std::io::IsTerminal;

use clap::Args;
use serde_json::json;

use cio_credential::{
    CredentialName, OldKey, PasswordRotated, PasswordRotation, generate_password,
};

use super::{escrow, rotate_keys};
use crate::cli::ProviderArg;
use crate::context::{Context, parse_name};
use crate::error::CommandError;
use crate::input::{read_new_secret, read_stdin};
use crate::output::{time, warnings_json};

#[derive(Args)]
pub struct RotateArgs {
    /// The repository password to rotate: cio_aws_backup_password or cio_minio_backup_password
    #[arg(
        value_name = "CREDENTIALNAME",
        value_parser = crate::cli::CredentialNames::ROTATED,
        hide_possible_values = true,
        required_unless_present = "access_key",
        conflicts_with = "access_key"
    )]
    pub name: Option<String>,
    /// Make a strong random new password (256 bits) instead of reading one
    #[arg(long, conflicts_with = "access_key")]
    pub generate: bool,
    /// Keep the old password's restic key in the repository (by default it is removed)
    #[arg(long, conflicts_with = "access_key")]
    pub keep_old_key: bool,
    /// Rotate the access key pair of the set --provider names instead: the new access key
    /// and secret key are read from standard input (two lines) or asked for, checked live,
    /// and written together
    #[arg(long, requires = "provider")]
    pub access_key: bool,
    /// With --access-key: the set's provider
    #[arg(long, value_enum, requires = "access_key")]
    pub provider: Option<ProviderArg>,
    /// With --access-key: the alternate set
    #[arg(long, requires = "access_key")]
    pub alternate: bool,
}

/// The long help's end.
pub const EXAMPLES: &str = "\
What happens, in this order: restic names the key the stored password opens; the new
password is staged (sealed) in the store; restic adds a key for it and opens the repository
with it; it becomes the stored password (the old one stays in the history); restic removes
the old key. Stopped at any point, the stored password opens the repository, and running
the same command again finishes the rotation (it does not ask for a password then).
Two nodes sharing the store that start at once: one rotates, the other is refused with
nothing changed (a rotation another node started is left to it for 10 minutes).

An access key pair: the new pair must pass the live checks (endpoint, credentials, bucket,
permissions; a primary set's key must also write) before both names are written, in one
operation; 'cio credential restore' of either name brings back the previous pair.

Examples:
  cio credential rotate cio_aws_backup_password               (asks twice, without echo)
  cio credential rotate cio_aws_backup_password --generate
  vault read -field=pw kv/backup | cio credential rotate cio_minio_backup_password
  printf '%s\\n%s\\n' \"$ACCESS\" \"$SECRET\" | cio credential rotate --provider minio --access-key";

pub fn run(ctx: &mut Context, args: RotateArgs) -> Result<(), CommandError> {
    const ACTION: &str = "Rotate credential";
    let fail = |e| CommandError::library(ACTION, e);
    let Some(text) = args.name.as_deref() else {
        return rotate_keys::run(ctx, args.provider.map(Into::into), args.alternate);
    };
    let name = parse_name(ACTION, "rotate", crate::cli::CredentialNames::ROTATED, text)?;
    let store = ctx.open(ACTION)?;
    let out = &ctx.out;
    let rotation = PasswordRotation::begin(&store, name, &mut |stage| {
        out.warn(format!("{name}: {stage}"));
    })
    .map_err(fail)?;
    // Said once, before restic runs: it would fail later with a TLS error of its own.
    if let Some((variable, unread)) = rotation.caller_ca_unread() {
        crate::commands::ca_file::warn_unread(ctx, variable, &unread);
    }
    let new = match rotation.interrupted_since() {
        // A new password piped now is not silently dropped: if it is another one, the
        // rotation is refused until the interrupted one is finished. (--generate finishes
        // the interrupted run: its password was generated too.)
        Some(since) => {
            let piped = if args.generate || std::io::stdin().is_terminal() {
                None
            } else {
                Some(read_stdin(std::io::stdin().lock()).map_err(|problem| {
                    CommandError::Input {
                        action: format!("{ACTION}: {name}"),
                        problem,
                    }
                })?)
                .filter(|v| !v.expose().is_empty())
            };
            if piped.is_none() {
                out.warn(format!(
                    "{name}: finishing the rotation started at {} with the new password staged then",
                    time(since)
                ));
            }
            piped
        }
        None if args.generate => Some(generate_password()),
        None => Some(
            read_new_secret(out, &format!("New password for {name}")).map_err(|problem| {
                CommandError::Input {
                    action: format!("{ACTION}: {name}"),
                    problem,
                }
            })?,
        ),
    };
    // The set's escrow bundle follows the new password before the old key goes (when
    // recovery recipients are configured).
    let done = rotation
        .run(
            new.as_ref(),
            args.keep_old_key,
            &mut || escrow::refresh_in_rotation(ctx, &store, name),
            &mut |_| {},
        )
        .map_err(fail)?;
    ctx.out.warn_value(name, &done.warnings);
    if let Some(note) = old_key_note(name, &done.old_key, done.escrow_not_refreshed.is_some()) {
        ctx.out.warn(note);
    }
    if let Some(why) = &done.escrow_not_refreshed {
        ctx.out.warn(format!(
            "the recovery bundle of the {} set was not refreshed: {why}; it holds the old password, whose key was kept, so it still opens the repository. Refresh it with: cio credential export --to-repository --provider {}",
            name.set(),
            name.provider
        ));
    }
    if ctx.out.json {
        return Ok(ctx.out.json(&json!({
            "name": name,
            "action": "rotate",
            "version": done.version,
            "new_key": done.new_key,
            "new_key_added_now": done.new_key_added_now,
            "old_key": done.old_key,
            "resumed": done.resumed,
            "generated": args.generate && !done.resumed,
            "warnings": warnings_json(&done.warnings),
        }))?);
    }
    ctx.out
        .succeed("Rotate", summary(&done, args.generate && !done.resumed))?;
    Ok(())
}

/// `NAME (version N; restic key X added, old key Y removed)`.
fn summary(done: &PasswordRotated, generated: bool) -> String {
    let old = match &done.old_key {
        OldKey::Removed { id } => format!("old key {id} removed"),
        OldKey::Kept { id } => format!("old key {id} kept"),
        OldKey::AlreadyGone { id } => format!("old key {id} already removed"),
        OldKey::Unidentified { other_keys } => format!("{other_keys} other keys kept"),
        OldKey::NoneLeft => "no other key".to_string(),
    };
    let by = if done.new_key_added_now {
        ""
    } else {
        " by the interrupted run"
    };
    let mut text = format!(
        "{} (version {}; restic key {} added{by}, {old}",
        done.name, done.version, done.new_key
    );
    if done.resumed {
        text.push_str("; an interrupted rotation finished");
    }
    if generated {
        text.push_str(&format!(
            "; generated: 'cio credential show {} --reveal' prints it",
            done.name
        ));
    }
    text.push(')');
    text
}

/// What the administrator must know about the old key, when it is still there;
/// `stale_bundle`: the set's recovery bundle still holds the old password.
fn old_key_note(name: CredentialName, old: &OldKey, stale_bundle: bool) -> Option<String> {
    // exec with the set named: a bare exec picks the one complete set, maybe another.
    let exec = format!("cio credential exec {} --", name.set().options());
    match old {
        OldKey::Kept { id } if stale_bundle => Some(format!(
            "{name}: the old password still opens the repository (key {id}), and the recovery bundle holds it: refresh the bundle first ('cio credential export --to-repository --provider {}'), then remove the key with: {exec} restic key remove {id}",
            name.provider
        )),
        OldKey::Kept { id } => Some(format!(
            "{name}: the old password still opens the repository (key {id}); remove it later with: {exec} restic key remove {id}"
        )),
        OldKey::Unidentified { other_keys } => Some(format!(
            "{name}: restic did not say which key the old password opens, and the repository has {other_keys} other keys, so all are kept; find the old one with '{exec} restic key list' and remove it with '{exec} restic key remove ID'"
        )),
        _ => None,
    }
}
