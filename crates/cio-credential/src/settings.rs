//! The settings every command takes: where the store and its key file are, and the TLS files
//! of a cluster store. One type, [`Settings`], is each layer (the flags, the environment, the
//! node configuration file `cio.toml`, the defaults) and their result, and opens the store.
//!
//! Rules:
//! - precedence, for every setting: the flag, then the environment variable, then the file,
//!   then the built-in default; [`Settings::resolve`] applies it once;
//! - the file is `/etc/cio/cio.toml` as root, `$XDG_CONFIG_HOME/cio/cio.toml` (or
//!   `~/.config/cio/cio.toml`) otherwise; `CIO_CONFIG` names another file, which must then
//!   exist;
//! - a missing default file is an empty layer; a file that cannot be read or parsed, or that
//!   holds a key cio does not know, is an error naming the file (a misspelt key must not be
//!   silently ignored); relative paths in the file are relative to the file's folder;
//! - the file decides where credentials go (the store, the recovery recipients), so it is
//!   refused, naming it, when group or others may write it, when it belongs to neither root
//!   nor this user, or when a folder on its way may be written by others (OpenSSH's rules;
//!   [`crate::files::check_trusted_path`]); others may read it;
//! - the file holds no secret: the etcd login comes from `CIO_ETCD_USER` and
//!   `CIO_ETCD_PASSWORD`, or from the caller's password prompt;
//! - the etcd login is needed only to open an etcd store: it is settled then, at most once
//!   per [`Settings`] (a migration into the cluster asks once), and never for a file store;
//! - a path setting that starts with `~` is refused ([`ConfigError::HomeFolder`]): only a
//!   shell turns it into a home folder, and cio would make a folder named `~`;
//! - nothing is read lossily (U+FFFD for each byte that is not UTF-8 would name another
//!   file): the key file and the etcd TLS files are the exact paths given, whatever their
//!   bytes; the store location (text: it may be an etcd URL), the etcd user and password must
//!   be UTF-8 and are refused otherwise ([`ConfigError::NotUtf8`]; the login only when an
//!   etcd store is opened), as is a default store path that is not;
//! - the etcd user is never repeated (in an error or a prompt): `CIO_ETCD_USER=bob:pw`,
//!   etcdctl's `--user` form, is a likely slip, refused before anything is sent.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::credentials::CredentialStore;
use crate::error::{ConfigError, Error, Result};
use crate::migrate::MigrationReport;
use crate::paths;
use crate::secret::SecretValue;
use crate::store::etcd::{EtcdAuth, EtcdOptions};
use crate::store::{SpecError, Store, StoreSpec};

/// The configuration file of a node run as root.
pub const SYSTEM_CONFIG: &str = "/etc/cio/cio.toml";

/// How the caller asks for the etcd password of the user in `CIO_ETCD_USER` when
/// `CIO_ETCD_PASSWORD` is not set: `None` when it cannot ask (no terminal), else what was
/// typed. The user is not handed over: a prompt never shows it (it may be a mistyped secret).
pub type AskPassword<'a> = &'a dyn Fn() -> Option<std::io::Result<SecretValue>>;

/// The settings of a command: one layer (the flags, the environment, `cio.toml` or the
/// defaults) where `None` is "not set here", or, after [`Settings::resolve`], all layers
/// merged, with `store` and `key_file` always set. The field names are the keys of
/// `cio.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The store: a path, or `etcd://...` / `etcds://...` ([`StoreSpec::parse`]).
    /// Environment: `CIO_STORE`.
    pub store: Option<String>,
    /// The key file holding the store key. Environment: `CIO_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// PEM file of the CA of the etcd members (etcdctl's `--cacert`). Environment:
    /// `CIO_ETCD_CACERT`.
    pub etcd_cacert: Option<PathBuf>,
    /// PEM file of this node's etcd client certificate (etcdctl's `--cert`). Environment:
    /// `CIO_ETCD_CERT`.
    pub etcd_cert: Option<PathBuf>,
    /// PEM file of that certificate's private key (etcdctl's `--key`). Environment:
    /// `CIO_ETCD_KEY`.
    pub etcd_key: Option<PathBuf>,
    /// The age in days past which `validate` warns about an access key or repository
    /// password (code `key_old`); 0 switches the warning off. Default
    /// [`crate::rotate::DEFAULT_MAX_KEY_AGE_DAYS`]. `cio.toml` only.
    pub max_key_age_days: Option<u32>,
    /// The recovery recipients (`age1…` keys, SSH public keys): when set, every write that
    /// completes or changes a primary set refreshes that set's escrow bundle beside its
    /// repository. In `cio.toml` only (a list of strings).
    pub recovery_recipients: Option<Vec<String>>,

    /// `CIO_ETCD_USER` and `CIO_ETCD_PASSWORD`, as [`Settings::resolve`] read them.
    #[serde(skip)]
    login_env: LoginEnv,

    /// The etcd login, once an etcd store was opened.
    #[serde(skip)]
    login: OnceLock<Option<EtcdAuth>>,

    /// The configuration file these settings read (or would have: it need not exist).
    #[serde(skip)]
    config_file: Option<PathBuf>,
}

/// The etcd user and password as the environment gives them: an empty user counts as
/// unset; an empty password is kept, to be refused as set but empty (not as missing).
/// A variable that is not UTF-8 is kept as such, to be refused when an etcd store is opened
/// (a file store needs no login, so it is not refused for one).
#[derive(Debug, Default)]
struct LoginEnv {
    user: Option<String>,
    password: Option<SecretValue>,
    /// The first of the two variables that is set but not UTF-8.
    not_utf8: Option<&'static str>,
}

impl LoginEnv {
    /// `CIO_ETCD_USER` and `CIO_ETCD_PASSWORD` from `env`, never read lossily.
    fn from_env(env: impl Fn(&str) -> Option<OsString>) -> LoginEnv {
        let mut login = LoginEnv::default();
        match text(&env, "CIO_ETCD_USER") {
            Ok(user) => login.user = user,
            Err(_) => login.not_utf8 = Some("CIO_ETCD_USER"),
        }
        match env("CIO_ETCD_PASSWORD").map(OsString::into_string) {
            Some(Ok(password)) => login.password = Some(SecretValue::new(password)),
            Some(Err(_)) => login.not_utf8 = login.not_utf8.or(Some("CIO_ETCD_PASSWORD")),
            None => {}
        }
        login
    }
}

impl Settings {
    /// These settings (the flags) over the process's environment, over the node's `cio.toml`,
    /// over the defaults for this user.
    ///
    /// Errors: [`Error::Config`] when the configuration file cannot be read or parsed.
    pub fn resolve(self) -> Result<Settings> {
        self.resolve_with(|k| std::env::var_os(k), paths::running_as_root())
    }

    /// [`Settings::resolve`] with this environment lookup, for a user that is `root` or not.
    pub(crate) fn resolve_with(
        self,
        env: impl Fn(&str) -> Option<OsString>,
        root: bool,
    ) -> Result<Settings> {
        let (path, required) = config_path(root, &env);
        if required && starts_at_home(&path) {
            return Err(ConfigError::HomeFolder {
                setting: "CIO_CONFIG".into(),
            }
            .into());
        }
        let given = self.or(from_env(&env)?);
        given.refuse_home_paths("(--key-file, --etcd-* or CIO_*)")?;
        let file = load(&path, required)?;
        let defaults = paths::defaults(root, &env);
        let mut settings = given.or(file);
        if settings.store.is_none() {
            settings.store = Some(utf8(defaults.store.into_os_string(), || {
                "the default store path (under XDG_DATA_HOME or HOME)".into()
            })?);
        }
        settings.key_file.get_or_insert(defaults.key_file);
        settings.login_env = LoginEnv::from_env(&env);
        settings.config_file = Some(path);
        Ok(settings)
    }

    /// Each setting of `self`, or where `self` does not set it, of `lower`.
    fn or(self, lower: Settings) -> Settings {
        Settings {
            store: self.store.or(lower.store),
            key_file: self.key_file.or(lower.key_file),
            etcd_cacert: self.etcd_cacert.or(lower.etcd_cacert),
            etcd_cert: self.etcd_cert.or(lower.etcd_cert),
            etcd_key: self.etcd_key.or(lower.etcd_key),
            max_key_age_days: self.max_key_age_days.or(lower.max_key_age_days),
            recovery_recipients: self.recovery_recipients.or(lower.recovery_recipients),
            login_env: self.login_env,
            login: self.login,
            config_file: self.config_file.or(lower.config_file),
        }
    }

    /// The files cio itself works from, each with what it is: the configuration file, the
    /// key file, an embedded store, and the etcd CA, certificate and key files. A file a
    /// command writes where a user says (a recovery bundle's `--output`) must never be one
    /// of them ([`crate::write_bundle_file`]). Paths as set, whether they exist or not.
    pub fn own_files(&self) -> Vec<(PathBuf, &'static str)> {
        let store = match self.store.as_deref().map(StoreSpec::parse) {
            Some(Ok(StoreSpec::Sqlite(path))) => Some(path),
            _ => None,
        };
        [
            (self.config_file.clone(), "configuration file"),
            (self.key_file.clone(), "key file"),
            (store, "credential store"),
            (self.etcd_cacert.clone(), "etcd CA file"),
            (self.etcd_cert.clone(), "etcd certificate file"),
            (self.etcd_key.clone(), "etcd key file"),
        ]
        .into_iter()
        .filter_map(|(path, what)| Some((path?, what)))
        .collect()
    }

    /// Refuses a path setting of this layer that starts with `~` ([`ConfigError::HomeFolder`];
    /// the store's location is refused so by [`StoreSpec::parse`]); `layer` says where the
    /// layer's settings are given.
    fn refuse_home_paths(&self, layer: &'static str) -> Result<(), ConfigError> {
        let paths = [
            (&self.key_file, "the key file"),
            (&self.etcd_cacert, "the etcd CA file"),
            (&self.etcd_cert, "the etcd certificate file"),
            (&self.etcd_key, "the etcd key file"),
        ];
        match paths
            .into_iter()
            .find(|(path, _)| path.as_deref().is_some_and(starts_at_home))
        {
            Some((_, what)) => Err(ConfigError::HomeFolder {
                setting: format!("{what} {layer}"),
            }),
            None => Ok(()),
        }
    }

    /// The age in days past which `validate` warns about an access key or password (0: off).
    pub fn max_key_age_days(&self) -> u32 {
        self.max_key_age_days
            .unwrap_or(crate::rotate::DEFAULT_MAX_KEY_AGE_DAYS)
    }

    /// The credential store these settings name, with its key file. Talks to no server and
    /// touches no file; for an etcd store it settles the login (asking with `ask` if need be).
    ///
    /// Errors: [`Error::Spec`] for a store location that cannot be used (or settings that
    /// were not resolved), [`Error::Store`] for TLS files that cannot be read, and
    /// [`Error::EtcdPasswordMissing`] / [`Error::EtcdPasswordUnreadable`] for a login that
    /// cannot be completed.
    pub fn open(&self, ask: AskPassword<'_>) -> Result<CredentialStore> {
        self.open_beside(ask, false)
    }

    /// [`Settings::open`]; `tls_used_beside`: the command's other store (a migration's) is
    /// `etcds://`, so the TLS files set are used even when this one is `etcd://`.
    fn open_beside(&self, ask: AskPassword<'_>, tls_used_beside: bool) -> Result<CredentialStore> {
        let (Some(store), Some(key_file)) = (&self.store, &self.key_file) else {
            return Err(SpecError {
                reason: "no store or key file is set (Settings::resolve sets both)".into(),
            }
            .into());
        };
        Ok(CredentialStore::new(
            self.open_store(store, ask, tls_used_beside)?,
            key_file.clone(),
        ))
    }

    /// Copies every credential with its history from the store these settings name into
    /// the store at `to` (see [`crate::migrate`] for what is refused). The etcd login is
    /// settled once for both stores.
    pub fn migrate(&self, to: &str, ask: AskPassword<'_>) -> Result<MigrationReport> {
        // A target that cannot be used is refused before the source's login is asked for.
        let target_tls = matches!(StoreSpec::parse(to)?, StoreSpec::Etcd(etcd) if etcd.tls);
        // TLS files set for one of the two stores are used, the other may be etcd://.
        let source_tls = self.store.as_deref().is_some_and(
            |store| matches!(StoreSpec::parse(store), Ok(StoreSpec::Etcd(etcd)) if etcd.tls),
        );
        let source = self.open_beside(ask, target_tls)?;
        let target = self.open_store(to, ask, source_tls)?;
        source.migrate_to(target.as_ref())
    }

    /// The store at `location`, with these TLS files and, for etcd, the login.
    /// `tls_used_beside`: see [`Settings::open_beside`].
    fn open_store(
        &self,
        location: &str,
        ask: AskPassword<'_>,
        tls_used_beside: bool,
    ) -> Result<Box<dyn Store>> {
        let spec = StoreSpec::parse(location)?;
        let auth = match &spec {
            StoreSpec::Etcd(etcd) => {
                // Before the login is asked for: it would go out in clear.
                self.check_tls_files_used(etcd.tls || tls_used_beside)?;
                self.etcd_login(ask)?
            }
            StoreSpec::Sqlite(_) => None,
        };
        Ok(spec.open_with(EtcdOptions {
            cacert: self.etcd_cacert.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
            auth,
            timeout: None,
        })?)
    }

    /// The etcd TLS files set are used: an `etcd://` store (`tls` false) with any of them set
    /// is [`ConfigError::TlsFilesWithPlainEtcd`], never a silent plain connection.
    fn check_tls_files_used(&self, tls: bool) -> Result<(), ConfigError> {
        let set: Vec<&str> = [
            (&self.etcd_cacert, "the etcd CA file"),
            (&self.etcd_cert, "the etcd client certificate"),
            (&self.etcd_key, "the etcd client key"),
        ]
        .into_iter()
        .filter(|(path, _)| path.is_some())
        .map(|(_, what)| what)
        .collect();
        if tls || set.is_empty() {
            return Ok(());
        }
        Err(ConfigError::TlsFilesWithPlainEtcd {
            settings: set.join(", "),
        })
    }

    /// The etcd login: none without `CIO_ETCD_USER`; the password from `CIO_ETCD_PASSWORD`,
    /// else asked for once. A user with a ':' (etcdctl's `user:password`) is refused before
    /// anything is asked or sent, and never repeated.
    fn etcd_login(&self, ask: AskPassword<'_>) -> Result<Option<EtcdAuth>> {
        if let Some(login) = self.login.get() {
            return Ok(login.as_ref().map(copy_auth));
        }
        let LoginEnv {
            user,
            password,
            not_utf8,
        } = &self.login_env;
        if let Some(variable) = not_utf8 {
            return Err(ConfigError::NotUtf8 {
                setting: (*variable).to_string(),
            }
            .into());
        }
        if user.as_ref().is_some_and(|user| user.contains(':')) {
            return Err(Error::EtcdUserWithPassword);
        }
        let login = match (user, password) {
            (None, _) => None,
            (Some(_), Some(password)) if password.expose().is_empty() => {
                return Err(Error::EtcdPasswordEmpty);
            }
            (Some(user), Some(password)) => Some(EtcdAuth {
                user: user.clone(),
                password: SecretValue::new(password.expose().to_string()),
            }),
            (Some(user), None) => match ask() {
                None => return Err(Error::EtcdPasswordMissing),
                Some(Err(e)) => return Err(Error::EtcdPasswordUnreadable(e)),
                Some(Ok(password)) => Some(EtcdAuth {
                    user: user.clone(),
                    password,
                }),
            },
        };
        Ok(self.login.get_or_init(|| login).as_ref().map(copy_auth))
    }
}

/// A copy of a login, for one more store.
fn copy_auth(auth: &EtcdAuth) -> EtcdAuth {
    EtcdAuth {
        user: auth.user.clone(),
        password: SecretValue::new(auth.password.expose().to_string()),
    }
}

/// Whether `path` starts with `~` (`~`, `~/x`, `~bob/x`): a shell's home folder, which
/// nothing but a shell expands.
fn starts_at_home(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().first() == Some(&b'~')
}

/// `value` as text, or [`ConfigError::NotUtf8`] naming `setting`: never read lossily, which
/// would put U+FFFD for each invalid byte and so name another file, user or password.
fn utf8(value: OsString, setting: impl FnOnce() -> String) -> Result<String, ConfigError> {
    value
        .into_string()
        .map_err(|_| ConfigError::NotUtf8 { setting: setting() })
}

/// An environment variable as text (refused when it is not UTF-8); empty counts as unset.
fn text(env: impl Fn(&str) -> Option<OsString>, name: &str) -> Result<Option<String>, ConfigError> {
    env(name)
        .filter(|v| !v.is_empty())
        .map(|v| utf8(v, || name.to_string()))
        .transpose()
}

/// The environment's layer: `CIO_STORE` (text: it may be an etcd URL), and `CIO_KEY_FILE`,
/// `CIO_ETCD_CACERT`, `CIO_ETCD_CERT` and `CIO_ETCD_KEY` as the exact paths they hold.
fn from_env(env: impl Fn(&str) -> Option<OsString>) -> Result<Settings, ConfigError> {
    let path = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    Ok(Settings {
        store: text(&env, "CIO_STORE")?,
        key_file: path("CIO_KEY_FILE"),
        etcd_cacert: path("CIO_ETCD_CACERT"),
        etcd_cert: path("CIO_ETCD_CERT"),
        etcd_key: path("CIO_ETCD_KEY"),
        ..Settings::default()
    })
}

/// Where the configuration file is, and whether it must exist (it must when `CIO_CONFIG`
/// names it).
fn config_path(root: bool, env: impl Fn(&str) -> Option<OsString>) -> (PathBuf, bool) {
    if let Some(path) = env("CIO_CONFIG").filter(|p| !p.is_empty()) {
        return (PathBuf::from(path), true);
    }
    if root {
        return (PathBuf::from(SYSTEM_CONFIG), false);
    }
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            env("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".config")
        });
    (config_home.join("cio/cio.toml"), false)
}

/// The settings a file may hold (cio's own words, safe to show).
const KNOWN: [&str; 7] = [
    "store",
    "key_file",
    "etcd_cacert",
    "etcd_cert",
    "etcd_key",
    "max_key_age_days",
    "recovery_recipients",
];

/// What is wrong with the file, in cio's words: the TOML parser's message would quote the
/// file's text (a value, or a key that is a pasted secret), so only its kind is kept, with the
/// line and, when it is one of cio's, the setting.
fn describe(e: &toml::de::Error, line: Option<usize>, text: &str) -> String {
    let message = e.message();
    let kind = if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "a value of the wrong type"
    } else if message.starts_with("unknown field") {
        "a setting cio does not know"
    } else if message.contains("duplicate") {
        "a setting given twice"
    } else {
        "text that is not TOML"
    };
    let setting = line
        .and_then(|n| text.lines().nth(n - 1))
        .and_then(|l| l.split('=').next())
        .map(str::trim)
        .filter(|key| KNOWN.contains(key));
    match (line, setting) {
        (Some(n), Some(key)) => format!("line {n}: {kind} for {key}"),
        (Some(n), None) => format!("line {n}: {kind}"),
        (None, _) => kind.to_string(),
    }
}

/// Parses the text of the file at `path`; relative paths become relative to its folder.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    let mut file: Settings = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            detail: describe(&e, line, text),
        }
    })?;
    file.refuse_home_paths("(in cio.toml)")?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    for file in [
        &mut file.key_file,
        &mut file.etcd_cacert,
        &mut file.etcd_cert,
        &mut file.etcd_key,
    ] {
        if let Some(p) = file.as_mut()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }
    // Only a path is made relative to the folder: a location that is no path (a mistyped
    // URL) must stay as written, to be refused as such by `StoreSpec::parse`.
    if let Some(store) = &file.store
        && let Ok(StoreSpec::Sqlite(relative)) = StoreSpec::parse(store)
        && relative.is_relative()
    {
        file.store = Some(utf8(base.join(relative).into_os_string(), || {
            format!(
                "the store path in {} (its folder joined with the relative store)",
                crate::shown_path(path)
            )
        })?);
    }
    Ok(file)
}

/// Reads the file at `path`. A missing file is an empty layer unless `required`.
/// The longest `cio.toml` read: five short settings fit in a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Reads `cio.toml`: only a regular file (a FIFO would hang, `/dev/zero` never end), of at most
/// 64 KiB, that only root or this user may change ([`files::check_trusted_path`]: the file
/// decides where the store is and to whom recovery bundles are sealed, so a file others may
/// write would hand them the credentials).
fn load(path: &Path, required: bool) -> Result<Settings, ConfigError> {
    use crate::files::{self, ReadError, TrustedReadError};
    let invalid = |detail: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    match files::read_trusted("configuration file", path, MAX_CONFIG_BYTES) {
        Ok(Some((_, bytes))) => {
            let text =
                std::str::from_utf8(&bytes).map_err(|_| invalid("it is not UTF-8 text".into()))?;
            parse(path, text)
        }
        Ok(None) if !required => Ok(Settings::default()),
        Ok(None) => Err(ConfigError::Missing {
            path: path.to_path_buf(),
        }),
        Err(TrustedReadError::Untrusted(untrusted)) => Err(ConfigError::Untrusted(untrusted)),
        Err(TrustedReadError::Read(ReadError::Io(source))) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Err(TrustedReadError::Read(other)) => Err(ConfigError::NotAFile {
            path: path.to_path_buf(),
            detail: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
