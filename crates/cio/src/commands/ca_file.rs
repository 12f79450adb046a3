//! The sets' CA bundle files in this process's runtime folder (the library's [`CaFiles`]):
//! `env` writes one for its set; a bundle made for a CA certificate its set no longer has is
//! deleted by every write that can change a CA certificate, and by `env` and `exec`.

use std::os::unix::fs::DirBuilderExt;

use cio_credential::{CaFiles, CredentialStore, SetId, shown_path};

use crate::context::Context;
use crate::error::CommandError;

/// Deletes the stale bundles of this process's runtime folder (after a write that may have
/// removed or replaced a CA certificate, and in `env` and `exec`); one that cannot be
/// deleted is a warning (the command itself has succeeded).
pub fn sweep(ctx: &Context, store: &CredentialStore) {
    for stale in CaFiles::of_process().sweep(store) {
        ctx.out.warn(format!(
            "the CA bundle {} was made for a CA certificate the {} set no longer has, and could not be deleted ({}); delete it: a restic whose SSL_CERT_FILE names it still trusts that certificate",
            shown_path(&stale.path),
            stale.set,
            stale.error
        ));
    }
}

/// Writes the CA bundle of `set` ([`CaFiles::bundle`] of `pem` after the certificates of
/// `own`, the caller's own file) and returns its path, as text: the line printed must name
/// this file, so a path that is not UTF-8 (a folder from XDG_RUNTIME_DIR or HOME) is refused
/// before anything is written, never printed lossily.
pub fn write(
    action: &str,
    files: &CaFiles,
    set: SetId,
    pem: &str,
    own: Option<&std::path::Path>,
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
    if let Some(folder) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(failed)?;
    }
    let bundle = CaFiles::bundle(set, pem, own);
    let text = String::from_utf8_lossy(&bundle);
    crate::replace_file::write_atomically(&path, &text).map_err(|e| failed(e.into()))?;
    Ok(text_path)
}
