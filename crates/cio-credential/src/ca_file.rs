//! The CA bundle files `env` keeps for the sets with a CA certificate, and what an inherited
//! `SSL_CERT_FILE` is to cio: nothing cio put in place for a set's CA certificate (a bundle
//! file, a variable naming it) outlives that certificate.
//!
//! Rules:
//! - a file is cio's bundle of a set when it has that set's bundle name in the runtime folder
//!   ([`CaFiles::path`]); anything else `SSL_CERT_FILE` names is the caller's own, never
//!   unset, replaced in a child or deleted by cio;
//! - a bundle says which CA certificate it was made for (its SHA-256, on a comment line before
//!   the certificates, which PEM readers skip); one made for a certificate the set no longer
//!   has (removed, purged, replaced, or a file without that line) is stale, and deleted by
//!   [`CaFiles::sweep`] (after every write that can change a CA certificate, and by `env` and
//!   `exec`). restic then finds no file there and trusts the system's certificate folders only;
//! - `env` puts a bundle in place of the caller's own `SSL_CERT_FILE` (whose certificates the
//!   bundle holds first) and keeps that file's name in [`CALLER_CA_FILE_VARIABLE`]: a set
//!   without a CA certificate gives the caller their own file back, or none
//!   ([`ca_variables`]); a bundle of one set is never where another set's bundle or a child's
//!   certificates start from.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::catalog::{Field, SetId};
use crate::credentials::CredentialStore;
use crate::restic::{CA_FILE_VARIABLE, CaHandoff};

/// The variable in which `env` keeps the caller's own `SSL_CERT_FILE` while `SSL_CERT_FILE`
/// names cio's bundle (which holds that file's certificates, then the set's CA).
pub const CALLER_CA_FILE_VARIABLE: &str = "CIO_CALLER_SSL_CERT_FILE";

/// The line of a bundle that names the CA certificate it was made for.
const MADE_FOR: &str = "# cio-cacert-sha256: ";

/// Where cio keeps the sets' CA bundles: one folder, one name per set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    folder: PathBuf,
}

/// What the caller's `SSL_CERT_FILE` is to cio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InheritedCa {
    /// Not set (or empty, which Go reads as not set).
    None,
    /// The caller's own file.
    Own(PathBuf),
    /// cio's bundle of `set`; `own`: the caller's own file it took the place of, if any.
    Cio { set: SetId, own: Option<PathBuf> },
}

impl InheritedCa {
    /// The caller's own certificate file: what a bundle or a child starts from (`None`: the
    /// system's certificates).
    pub fn own(&self) -> Option<&Path> {
        match self {
            InheritedCa::None => None,
            InheritedCa::Own(path) => Some(path),
            InheritedCa::Cio { own, .. } => own.as_deref(),
        }
    }

    /// The variable that names [`InheritedCa::own`]: `SSL_CERT_FILE`, or
    /// [`CALLER_CA_FILE_VARIABLE`] while `SSL_CERT_FILE` names a cio bundle.
    pub fn own_variable(&self) -> &'static str {
        match self {
            InheritedCa::Cio { .. } => CALLER_CA_FILE_VARIABLE,
            InheritedCa::None | InheritedCa::Own(_) => CA_FILE_VARIABLE,
        }
    }
}

/// What to do with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarChange {
    /// Leave it as it is (it is the caller's).
    Keep,
    /// Set it to this value.
    Set(OsString),
    /// Remove it.
    Unset,
}

/// The changes to [`crate::CA_FILE_VARIABLE`] and [`CALLER_CA_FILE_VARIABLE`] a set's
/// hand-over makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaVariables {
    pub ssl_cert_file: VarChange,
    pub caller: VarChange,
}

/// The variables for a hand-over that sets `SSL_CERT_FILE` to `handed` (a bundle or
/// `/dev/fd/N`), or, with `None` (the set has no CA certificate), that must leave no cio
/// bundle behind: an inherited cio bundle gives way to the caller's own file, or to none.
pub fn ca_variables(inherited: &InheritedCa, handed: Option<&OsStr>) -> CaVariables {
    let own = || match inherited.own() {
        Some(path) => VarChange::Set(path.as_os_str().to_owned()),
        None => VarChange::Unset,
    };
    match (handed, inherited) {
        (Some(value), _) => CaVariables {
            ssl_cert_file: VarChange::Set(value.to_owned()),
            caller: own(),
        },
        (None, InheritedCa::Cio { .. }) => CaVariables {
            ssl_cert_file: own(),
            caller: VarChange::Unset,
        },
        (None, InheritedCa::None | InheritedCa::Own(_)) => CaVariables {
            ssl_cert_file: VarChange::Keep,
            caller: VarChange::Unset,
        },
    }
}

/// Hands `cmd` (a child cio starts: `exec`'s command, restic) the CA certificate of its set,
/// or no cio bundle: `SSL_CERT_FILE` names an in-memory bundle ([`CaHandoff`]) of
/// `cacert_pem` after the caller's own certificates (never after a cio bundle's); without a
/// certificate, an inherited cio bundle gives way to the caller's own file, or to none. The
/// child never gets [`CALLER_CA_FILE_VARIABLE`], cio's own note. Keep the returned value
/// alive until the child has started (dropping it closes the in-memory file). Also returned:
/// the caller's certificate file that could not be read, and the variable that names it.
pub fn hand_ca(cmd: &mut Command, cacert_pem: Option<&str>) -> std::io::Result<HandedCa> {
    let inherited = inherited_ca();
    let mut ca = match cacert_pem {
        Some(pem) => Some(CaHandoff::new(pem, inherited.own())?),
        None => None,
    };
    let unread = ca
        .as_mut()
        .and_then(|ca| ca.caller_unread.take())
        .map(|unread| (inherited.own_variable(), unread));
    let handed = ca.as_ref().map(|ca| OsStr::new(&ca.value));
    match ca_variables(&inherited, handed).ssl_cert_file {
        VarChange::Keep => {}
        VarChange::Set(value) => {
            cmd.env(CA_FILE_VARIABLE, value);
        }
        VarChange::Unset => {
            cmd.env_remove(CA_FILE_VARIABLE);
        }
    }
    cmd.env_remove(CALLER_CA_FILE_VARIABLE);
    Ok((ca, unread))
}

/// The caller's certificate file that [`hand_ca`] leaves out of the bundle it hands on for
/// `cacert_pem` (the variable naming it, and why), asked without handing anything: for a
/// command that runs restic several times (rotate), to say so once, before restic fails
/// with a TLS error it cannot explain. `None` without a CA certificate (nothing is added to
/// the caller's file then) or when the file reads.
pub fn caller_ca_unread(cacert_pem: Option<&str>) -> Option<(&'static str, crate::CaFileUnread)> {
    let pem = cacert_pem?;
    let inherited = inherited_ca();
    let unread = crate::restic::ca_bundle(pem, inherited.own()).caller_unread?;
    Some((inherited.own_variable(), unread))
}

/// What this process inherited of `SSL_CERT_FILE` and cio's note of the caller's own file.
fn inherited_ca() -> InheritedCa {
    CaFiles::of_process().inherited(
        std::env::var_os(CA_FILE_VARIABLE),
        std::env::var_os(CALLER_CA_FILE_VARIABLE),
    )
}

/// What [`hand_ca`] returns: the in-memory bundle to keep alive, and the caller's
/// certificate file it holds no certificate of (the variable naming it, and why).
pub type HandedCa = (
    Option<CaHandoff>,
    Option<(&'static str, crate::CaFileUnread)>,
);

/// A file under a bundle's name that [`CaFiles::sweep`] left in place.
#[derive(Debug)]
pub enum StaleBundle {
    /// A stale bundle that could not be deleted.
    Undeletable {
        set: SetId,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file without cio's header line: not cio's, so never deleted nor replaced.
    NotCios { set: SetId, path: PathBuf },
}

/// Why the bundle folder is not one cio may write a bundle in (the first two read after
/// the folder's name).
#[derive(Debug, thiserror::Error)]
pub enum UnsafeFolder {
    /// A symbolic link (to a folder someone else may have chosen).
    #[error("is a symbolic link, not a folder")]
    Link,
    /// Something other than a folder.
    #[error("is not a folder")]
    NotFolder,
    /// Reached through a symbolic link (above it) owned by another user, who may point it
    /// elsewhere at any time.
    #[error("is reached through {}, a symbolic link of another user", crate::shown_path(.0))]
    ForeignLink(PathBuf),
    /// Owned by another user, or writable by others (or a folder above it is).
    #[error(transparent)]
    Unsafe(#[from] crate::files::Unsafe),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A file under a bundle's name that `env` must not replace: not cio's.
#[derive(Debug, thiserror::Error)]
pub enum BundleNotOurs {
    /// A file without cio's header line (the user's own).
    #[error("it has no '# cio-cacert-sha256:' line, so it is not a bundle cio wrote")]
    NotCios,
    /// A folder, link, FIFO, ...
    #[error("it is not a regular file")]
    NotRegular,
}

impl CaFiles {
    /// The folder for a user (`root` or not) with the environment lookup `env`: the user's
    /// runtime folder (`$XDG_RUNTIME_DIR/cio`, a tmpfs the system empties at logout or boot),
    /// else `/run/cio` for root, else `$HOME/.cache/cio`.
    pub fn new(root: bool, env: impl Fn(&str) -> Option<OsString>) -> CaFiles {
        let folder = match env("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => dir.join("cio"),
            _ if root => PathBuf::from("/run/cio"),
            _ => env("HOME")
                .map_or_else(std::env::temp_dir, PathBuf::from)
                .join(".cache/cio"),
        };
        CaFiles { folder }
    }

    /// The folder for this process's user and environment.
    pub fn of_process() -> CaFiles {
        CaFiles::new(crate::paths::running_as_root(), |k| std::env::var_os(k))
    }

    /// The folder the bundles are kept in.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Checks the bundle folder as cio's key-file rules check a key's folder
    /// ([`crate::files::check_private_folder`]): owned by this user or root, not writable by
    /// group or others, every folder above it owned by this user or root and not writable
    /// by others unless sticky (as `/tmp` is: others cannot replace the folder there). The
    /// folder itself must be a real folder, not a symbolic link: a link may lead anywhere,
    /// also to a folder another user chose; nor may a link above it be another user's. Anyone who may write the folder could put their
    /// own CA in a bundle restic trusts. A missing folder is checked by what is above it.
    pub fn check_folder(&self) -> Result<(), UnsafeFolder> {
        match std::fs::symlink_metadata(&self.folder) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(UnsafeFolder::Link),
            Ok(meta) if !meta.is_dir() => return Err(UnsafeFolder::NotFolder),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // A link above the folder that another user owns may be pointed elsewhere by that
        // user after `env` printed a path through it (review: `XDG_RUNTIME_DIR` a link in
        // /tmp owned by nobody).
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        for above in self.folder.ancestors().skip(1) {
            if let Ok(meta) = std::fs::symlink_metadata(above)
                && meta.file_type().is_symlink()
                && meta.uid() != me
                && meta.uid() != 0
            {
                return Err(UnsafeFolder::ForeignLink(above.to_path_buf()));
            }
        }
        crate::files::check_private_folder(&self.folder)?;
        Ok(())
    }

    /// Whether the file at `path` (a bundle's name) may be replaced by a new bundle: it does
    /// not exist, or it is a regular file with cio's header line.
    pub fn check_replaceable(path: &Path) -> Result<(), BundleNotOurs> {
        match std::fs::symlink_metadata(path) {
            Err(_) => Ok(()),
            Ok(meta) if !meta.file_type().is_file() => Err(BundleNotOurs::NotRegular),
            Ok(_) if made_for(path).is_none() => Err(BundleNotOurs::NotCios),
            Ok(_) => Ok(()),
        }
    }

    /// The bundle file of `set`.
    pub fn path(&self, set: SetId) -> PathBuf {
        self.folder
            .join(format!("{}-{}-ca.pem", set.provider, set.role))
    }

    /// The set whose bundle `path` names, if it names one.
    fn set_of(&self, path: &Path) -> Option<SetId> {
        SetId::all().find(|set| self.path(*set) == path)
    }

    /// What `ssl_cert_file` (the caller's `SSL_CERT_FILE`) is, with `caller` the caller's
    /// [`CALLER_CA_FILE_VARIABLE`] (read only when `ssl_cert_file` is a cio bundle).
    pub fn inherited(
        &self,
        ssl_cert_file: Option<OsString>,
        caller: Option<OsString>,
    ) -> InheritedCa {
        let given = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        let Some(path) = given(ssl_cert_file) else {
            return InheritedCa::None;
        };
        match self.set_of(&path) {
            Some(set) => InheritedCa::Cio {
                set,
                own: given(caller).filter(|own| self.set_of(own).is_none()),
            },
            None => InheritedCa::Own(path),
        }
    }

    /// The bundle file's content for `set` with the CA certificate `cacert_pem`, after the
    /// certificates of `own` (else the system's): [`crate::ca_bundle`], after two comment
    /// lines that say what it is and which certificate it was made for.
    pub fn bundle(set: SetId, cacert_pem: &str, own: Option<&Path>) -> crate::CaBundle {
        let mut text = format!(
            "# The CA bundle cio credential env wrote for the {set} set: the caller's or the system's certificates, then the set's CA certificate. cio deletes it when that certificate is removed or replaced.\n{MADE_FOR}{}\n",
            digest(cacert_pem)
        )
        .into_bytes();
        let mut bundle = crate::ca_bundle(cacert_pem, own);
        text.append(&mut bundle.bytes);
        bundle.bytes = text;
        bundle
    }

    /// Deletes each set's bundle that is stale: made for another CA certificate than the one
    /// `store` holds for the set now, or none. A bundle whose set's certificate cannot be
    /// read is deleted too (`env` writes it again). Returns the stale bundles that could not
    /// be deleted, and the files under a bundle's name without cio's header line (the
    /// user's, left alone); something other than a regular file under a bundle's name is
    /// left alone (`env` refuses to replace it). Nothing is deleted in a folder
    /// [`CaFiles::check_folder`] refuses (a link may lead to anyone's folder).
    pub fn sweep(&self, store: &CredentialStore) -> Vec<StaleBundle> {
        let mut failed = Vec::new();
        if self.check_folder().is_err() {
            return failed;
        }
        for set in SetId::all() {
            let path = self.path(set);
            let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
            if !is_file {
                continue;
            }
            let current = match store.get(set.name(Field::Cacert)) {
                Ok(Some(entry)) => Some(digest(entry.value.expose())),
                Ok(None) | Err(_) => None,
            };
            let made = made_for(&path);
            if made.is_none() {
                failed.push(StaleBundle::NotCios { set, path });
                continue;
            }
            if current.is_some() && made == current {
                continue;
            }
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    failed.push(StaleBundle::Undeletable { set, path, error });
                }
                _ => {}
            }
        }
        failed
    }
}

/// The SHA-256 of a CA certificate's PEM text, in hex.
fn digest(cacert_pem: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(cacert_pem.as_bytes()))
}

/// The digest a bundle file's comment lines name, if it has them (they are its first lines:
/// only its start is read).
fn made_for(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.take(4096).read_to_end(&mut text).ok()?;
    text.split(|b| *b == b'\n')
        .take_while(|line| line.starts_with(b"#"))
        .find_map(|line| line.strip_prefix(MADE_FOR.as_bytes()))
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
