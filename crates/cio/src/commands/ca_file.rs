//! The sets' CA bundle files in this process's runtime folder (the library's [`CaFiles`]):
//! `env` writes one for its set, only in a folder that is this user's alone and never over
//! a file cio did not write; a bundle made for a CA certificate its set no longer has is
//! deleted by every write that can change a CA certificate, and by `env` and `exec`.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use cio_credential::{
    BundleNotOurs, CaFileUnread, CaFiles, CredentialStore, MAX_CA_FILE, SetId, StaleBundle,
    UnsafeFolder, shown_path,
};

use crate::context::Context;
use crate::error::CommandError;

/// Deletes the stale bundles of this process's runtime folder (after a write that may have
/// removed or replaced a CA certificate, and in `env` and `exec`); one that cannot be
/// deleted, and a file of the user's under a bundle's name, is a warning (the command
/// itself has succeeded). `writing`: the set whose bundle the command writes next (env),
/// whose name taken by a file of the user's is that write's error, said once there.
pub fn sweep(ctx: &Context, store: &CredentialStore, writing: Option<SetId>) {
    for left in CaFiles::of_process().sweep(store) {
        if matches!(&left, StaleBundle::NotCios { set, .. } if Some(*set) == writing) {
            continue;
        }
        ctx.out.warn(match left {
            StaleBundle::Undeletable { set, path, error } => format!(
                "the CA bundle {} was made for a CA certificate the {set} set no longer has, and could not be deleted ({error}); delete it: a restic whose SSL_CERT_FILE names it still trusts that certificate",
                shown_path(&path),
            ),
            StaleBundle::NotCios { set, path } => format!(
                "{} has the name of the {set} set's CA bundle but is not one cio wrote (no '# cio-cacert-sha256:' line): cio leaves it alone; move it elsewhere if cio credential env should write the set's bundle there",
                shown_path(&path),
            ),
        });
    }
}

/// Says that the caller's certificate file (named by `variable`) could not be read, so the
/// bundle handed on holds only the set's CA certificate.
pub fn warn_unread(ctx: &Context, variable: &str, unread: &CaFileUnread) {
    ctx.out.warn(format!(
        "{variable} names {unread}: the CA bundle holds none of its certificates, only the set's CA certificate; point {variable} at a regular PEM file of certificates (at most {} MiB)",
        MAX_CA_FILE / (1024 * 1024)
    ));
}

/// Writes the CA bundle of `set` ([`CaFiles::bundle`] of `pem` after the certificates of
/// `own`, the caller's own file, which `own_variable` names) and returns its path, as text:
/// the line printed must name this file, so a path that is not UTF-8 (a folder from
/// XDG_RUNTIME_DIR or HOME) is refused before anything is written, never printed lossily.
/// A folder others may write or that is a link ([`CaFiles::check_folder`]), or a file under
/// the bundle's name that cio did not write, is refused before anything is written.
pub fn write(
    ctx: &Context,
    action: &str,
    files: &CaFiles,
    set: SetId,
    pem: &str,
    own: Option<(&Path, &str)>,
) -> Result<String, CommandError> {
    let path = files.path(set);
    let failed = |source| CommandError::WriteFile {
        action: action.into(),
        path: path.clone(),
        source,
        hint: "set XDG_RUNTIME_DIR to a folder this user may write whose path is UTF-8, or use 'cio credential exec', which needs no file",
    };
    let Some(text_path) = path.to_str().map(str::to_string) else {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "its path is not UTF-8, so no shell line or JSON could name it exactly",
        )));
    };
    check_folder(action, files, &path)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(files.folder())
        .map_err(failed)?;
    // Again on the folder as made (someone may have made it first).
    check_folder(action, files, &path)?;
    if let Err(why) = CaFiles::check_replaceable(&path) {
        return Err(CommandError::CaBundleRefused {
            action: action.into(),
            path: path.clone(),
            why: why.to_string(),
            hint: match why {
                BundleNotOurs::NotCios => "move that file elsewhere (cio never replaces a file it did not write), or use 'cio credential exec', which needs no file".to_string(),
                BundleNotOurs::NotRegular => format!(
                    "remove {} if it is not needed, or use 'cio credential exec', which needs no file",
                    shown_path(&path)
                ),
            },
        });
    }
    let bundle = CaFiles::bundle(set, pem, own.map(|(file, _)| file));
    if let (Some(unread), Some((_, variable))) = (&bundle.caller_unread, own) {
        warn_unread(ctx, variable, unread);
    }
    let text = String::from_utf8_lossy(&bundle.bytes);
    crate::replace_file::write_atomically(&path, &text).map_err(|e| failed(e.into()))?;
    Ok(text_path)
}

/// Refuses a bundle folder [`CaFiles::check_folder`] refuses.
fn check_folder(action: &str, files: &CaFiles, path: &Path) -> Result<(), CommandError> {
    let folder = shown_path(files.folder());
    let why = match files.check_folder() {
        Ok(()) => return Ok(()),
        Err(UnsafeFolder::Unsafe(reason)) => reason.to_string(),
        Err(other) => format!("its folder {folder} {other}"),
    };
    Err(CommandError::CaBundleRefused {
        action: action.into(),
        path: path.to_path_buf(),
        why,
        hint: format!(
            "whoever else may write there could put their own CA certificate in the bundle restic trusts: make {folder} a folder (not a link) of this user's that only this user may write (chmod 700 {folder}), with no folder above it others may write, or set XDG_RUNTIME_DIR to one, or use 'cio credential exec', which needs no file"
        ),
    })
}
