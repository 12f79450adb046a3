//! The node configuration file, `cio.toml`: where a node's store and key are, and the TLS
//! files for a cluster store, so that every `cio credential` command on the node uses the
//! same ones without flags.
//!
//! Rules:
//! - the file is `/etc/cio/cio.toml` as root, `$XDG_CONFIG_HOME/cio/cio.toml` (or
//!   `~/.config/cio/cio.toml`) otherwise; `CIO_CONFIG` names another file, which must then
//!   exist;
//! - a missing default file is an empty configuration; a file that cannot be read or parsed,
//!   or that holds a key cio does not know, is an error naming the file (a misspelt key must
//!   not be silently ignored);
//! - relative paths in the file are relative to the file's folder;
//! - precedence, for every setting: the flag, then the environment variable, then the file,
//!   then the built-in default ([`resolve`], a pure function);
//! - the file holds no secret: the etcd password comes from `CIO_ETCD_PASSWORD` only.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::CredentialStore;
use crate::paths::Defaults;
use crate::secret::SecretValue;
use crate::store::StoreSpec;
use crate::store::etcd::{EtcdAuth, EtcdOptions};

/// The configuration file of a node run as root.
pub const SYSTEM_CONFIG: &str = "/etc/cio/cio.toml";

/// The keys `cio.toml` may hold; all are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The store: a path, or `etcd://...` / `etcds://...`.
    pub store: Option<String>,
    /// The key file.
    pub key_file: Option<PathBuf>,
    /// PEM file of the CA of the etcd members (etcdctl's `--cacert`).
    pub etcd_cacert: Option<PathBuf>,
    /// PEM file of this node's etcd client certificate (etcdctl's `--cert`).
    pub etcd_cert: Option<PathBuf>,
    /// PEM file of that certificate's private key (etcdctl's `--key`).
    pub etcd_key: Option<PathBuf>,
}

/// What can go wrong with the configuration file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} cannot be read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

impl ConfigError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            ConfigError::Io { path, .. } => format!(
                "make {} readable by this user, or point CIO_CONFIG at another file",
                path.display()
            ),
            ConfigError::Invalid { path, .. } => format!(
                "fix {}: it may hold only store, key_file, etcd_cacert, etcd_cert and etcd_key, as TOML strings",
                path.display()
            ),
        }
    }
}

/// Where the configuration file is, and whether it must exist (it must when `CIO_CONFIG`
/// names it).
pub fn config_path(root: bool, env: impl Fn(&str) -> Option<OsString>) -> (PathBuf, bool) {
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

/// Parses the text of the file at `path`; relative paths become relative to its folder.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            detail: match line {
                Some(line) => format!("line {line}: {}", e.message().trim_end()),
                None => e.message().trim_end().to_string(),
            },
        }
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    for file in [
        &mut config.key_file,
        &mut config.etcd_cacert,
        &mut config.etcd_cert,
        &mut config.etcd_key,
    ] {
        if let Some(p) = file.as_mut()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
    }
    if let Some(store) = &config.store
        && !store.contains("://")
        && Path::new(store).is_relative()
    {
        config.store = Some(base.join(store).display().to_string());
    }
    Ok(config)
}

/// Reads the file at `path`. A missing file is an empty configuration unless `required`.
pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
    match fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Config::default()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Where a setting's value came from (for `--json` and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

/// The first of flag, environment, file; `None` when none is set.
pub fn choose<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Option<(T, Source)> {
    flag.map(|v| (v, Source::Flag))
        .or_else(|| env.map(|v| (v, Source::Env)))
        .or_else(|| file.map(|v| (v, Source::File)))
}

/// The values given on the command line (`None`: flag not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub store: Option<String>,
    pub key_file: Option<PathBuf>,
    pub etcd_cacert: Option<PathBuf>,
    pub etcd_cert: Option<PathBuf>,
    pub etcd_key: Option<PathBuf>,
}

/// The settings a command uses, each with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The store location text; parse it with [`crate::store::StoreSpec::parse`].
    pub store: (String, Source),
    pub key_file: (PathBuf, Source),
    pub etcd_cacert: Option<(PathBuf, Source)>,
    pub etcd_cert: Option<(PathBuf, Source)>,
    pub etcd_key: Option<(PathBuf, Source)>,
}

impl Settings {
    /// Connection options for an etcd store: these TLS files, the given user and the
    /// timeout (`None`: the default).
    pub fn etcd_options(
        &self,
        auth: Option<EtcdAuth>,
        timeout: Option<std::time::Duration>,
    ) -> EtcdOptions {
        EtcdOptions {
            cacert: self.etcd_cacert.as_ref().map(|(p, _)| p.clone()),
            cert: self.etcd_cert.as_ref().map(|(p, _)| p.clone()),
            key: self.etcd_key.as_ref().map(|(p, _)| p.clone()),
            auth,
            timeout,
        }
    }

    /// The credential store these settings name: parses the store location, opens the store with these
    /// TLS files, `auth` and `timeout`, and pairs it with the key file. Talks to no server.
    pub fn open_vault(
        &self,
        auth: Option<EtcdAuth>,
        timeout: Option<std::time::Duration>,
    ) -> crate::Result<CredentialStore> {
        let spec = StoreSpec::parse(&self.store.0)?;
        let store = spec.open_with(self.etcd_options(auth, timeout))?;
        Ok(CredentialStore::new(store, self.key_file.0.clone()))
    }
}

/// Applies the precedence flag > environment > file > default to every setting. The
/// environment variables are `CIO_STORE`, `CIO_KEY_FILE`, `CIO_ETCD_CACERT`,
/// `CIO_ETCD_CERT` and `CIO_ETCD_KEY`; empty ones count as unset.
pub fn resolve(
    flags: &Flags,
    env: impl Fn(&str) -> Option<OsString>,
    file: &Config,
    defaults: &Defaults,
) -> Settings {
    let env_text = |name: &str| {
        env(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string_lossy().into_owned())
    };
    let env_path = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let store = choose(
        flags.store.clone(),
        env_text("CIO_STORE"),
        file.store.clone(),
    )
    .unwrap_or_else(|| (defaults.store.display().to_string(), Source::Default));
    let key_file = choose(
        flags.key_file.clone(),
        env_path("CIO_KEY_FILE"),
        file.key_file.clone(),
    )
    .unwrap_or_else(|| (defaults.key_file.clone(), Source::Default));
    Settings {
        store,
        key_file,
        etcd_cacert: choose(
            flags.etcd_cacert.clone(),
            env_path("CIO_ETCD_CACERT"),
            file.etcd_cacert.clone(),
        ),
        etcd_cert: choose(
            flags.etcd_cert.clone(),
            env_path("CIO_ETCD_CERT"),
            file.etcd_cert.clone(),
        ),
        etcd_key: choose(
            flags.etcd_key.clone(),
            env_path("CIO_ETCD_KEY"),
            file.etcd_key.clone(),
        ),
    }
}

/// The etcd user from `CIO_ETCD_USER` and `CIO_ETCD_PASSWORD`, when both are set.
/// `Err(user)` when only the user is set (the caller may prompt for the password).
pub fn etcd_auth_from_env(
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<EtcdAuth>, String> {
    let user = env("CIO_ETCD_USER")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned());
    let password = env("CIO_ETCD_PASSWORD")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned());
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some(EtcdAuth {
            user,
            password: SecretValue::new(password),
        })),
        (Some(user), None) => Err(user),
        (None, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn defaults() -> Defaults {
        Defaults {
            store: PathBuf::from("/var/lib/cio/credentials.db"),
            key_file: PathBuf::from("/etc/cio/credential.key"),
        }
    }

    #[test]
    fn config_path_root_user_and_override() {
        assert_eq!(
            config_path(true, env_of(&[("HOME", "/root")])),
            (PathBuf::from("/etc/cio/cio.toml"), false)
        );
        assert_eq!(
            config_path(false, env_of(&[("HOME", "/home/ann")])),
            (PathBuf::from("/home/ann/.config/cio/cio.toml"), false)
        );
        assert_eq!(
            config_path(
                false,
                env_of(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/cfg")])
            ),
            (PathBuf::from("/cfg/cio/cio.toml"), false)
        );
        assert_eq!(
            config_path(true, env_of(&[("CIO_CONFIG", "/tmp/x.toml")])),
            (PathBuf::from("/tmp/x.toml"), true)
        );
    }

    #[test]
    fn parse_known_keys_and_relative_paths() {
        let path = Path::new("/etc/cio/cio.toml");
        let c = parse(
            path,
            "store = \"etcds://10.0.0.1:2379,10.0.0.2:2379\"\nkey_file = \"credential.key\"\n\
             etcd_cacert = \"/etc/etcd/ca.pem\"\netcd_cert = \"pki/node.pem\"\netcd_key = \"pki/node-key.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.store.as_deref(),
            Some("etcds://10.0.0.1:2379,10.0.0.2:2379")
        );
        assert_eq!(c.key_file, Some(PathBuf::from("/etc/cio/credential.key")));
        assert_eq!(c.etcd_cacert, Some(PathBuf::from("/etc/etcd/ca.pem")));
        assert_eq!(c.etcd_cert, Some(PathBuf::from("/etc/cio/pki/node.pem")));
        let c = parse(path, "store = \"data/credentials.db\"\n").unwrap();
        assert_eq!(c.store.as_deref(), Some("/etc/cio/data/credentials.db"));
        assert_eq!(parse(path, "").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_file() {
        let path = Path::new("/etc/cio/cio.toml");
        let err = parse(path, "key_file = \"/k\"\nstor = \"/x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("/etc/cio/cio.toml"), "{text}");
        assert!(text.contains("stor"), "{text}");
        assert!(err.hint().contains("key_file"));
        let err = parse(path, "key_file = 3\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }));
        let err = parse(path, "store = \n").unwrap_err();
        assert!(err.to_string().contains("/etc/cio/cio.toml"));
    }

    #[test]
    fn load_missing_default_is_empty_but_required_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cio.toml");
        assert_eq!(load(&path, false).unwrap(), Config::default());
        assert!(matches!(load(&path, true), Err(ConfigError::Io { .. })));
        fs::write(&path, "store = \"etcd://a:1\"\n").unwrap();
        assert_eq!(
            load(&path, true).unwrap().store.as_deref(),
            Some("etcd://a:1")
        );
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file = Config {
            store: Some("etcd://file:2379".into()),
            key_file: Some("/file/key".into()),
            etcd_cacert: Some("/file/ca.pem".into()),
            etcd_cert: None,
            etcd_key: None,
        };
        let s = resolve(
            &Flags::default(),
            env_of(&[]),
            &Config::default(),
            &defaults(),
        );
        assert_eq!(
            s.store,
            ("/var/lib/cio/credentials.db".to_string(), Source::Default)
        );
        assert_eq!(s.key_file.1, Source::Default);
        assert_eq!(s.etcd_cacert, None);

        let s = resolve(&Flags::default(), env_of(&[]), &file, &defaults());
        assert_eq!(s.store, ("etcd://file:2379".to_string(), Source::File));
        assert_eq!(s.key_file, (PathBuf::from("/file/key"), Source::File));
        assert_eq!(
            s.etcd_cacert,
            Some((PathBuf::from("/file/ca.pem"), Source::File))
        );

        let env = env_of(&[
            ("CIO_STORE", "/env/store.db"),
            ("CIO_KEY_FILE", ""),
            ("CIO_ETCD_CACERT", "/env/ca.pem"),
        ]);
        let s = resolve(&Flags::default(), &env, &file, &defaults());
        assert_eq!(s.store, ("/env/store.db".to_string(), Source::Env));
        assert_eq!(s.key_file.1, Source::File, "an empty variable is unset");
        assert_eq!(
            s.etcd_cacert,
            Some((PathBuf::from("/env/ca.pem"), Source::Env))
        );

        let flags = Flags {
            store: Some("etcds://flag:2379".into()),
            key_file: Some("/flag/key".into()),
            etcd_key: Some("/flag/k.pem".into()),
            ..Flags::default()
        };
        let s = resolve(&flags, &env, &file, &defaults());
        assert_eq!(s.store, ("etcds://flag:2379".to_string(), Source::Flag));
        assert_eq!(s.key_file, (PathBuf::from("/flag/key"), Source::Flag));
        assert_eq!(
            s.etcd_key,
            Some((PathBuf::from("/flag/k.pem"), Source::Flag))
        );
        let options = s.etcd_options(None, None);
        assert_eq!(options.cacert, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(options.cert, None);
        let vault = resolve(&Flags::default(), env_of(&[]), &file, &defaults())
            .open_vault(None, None)
            .unwrap();
        assert_eq!(vault.store().location(), "etcd://file:2379/cio/credentials");
        assert_eq!(vault.key_path(), Path::new("/file/key"));
    }

    #[test]
    fn etcd_auth_needs_both_and_hides_the_password() {
        assert!(etcd_auth_from_env(env_of(&[])).unwrap().is_none());
        assert_eq!(
            etcd_auth_from_env(env_of(&[("CIO_ETCD_USER", "cio")])).unwrap_err(),
            "cio"
        );
        let auth = etcd_auth_from_env(env_of(&[
            ("CIO_ETCD_USER", "cio"),
            ("CIO_ETCD_PASSWORD", "s3cret-pw"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(auth.user, "cio");
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
