//! Where the store and key file live by default.
//!
//! As root (the normal case on a cluster node): `/var/lib/cio/credentials.db` and
//! `/etc/cio/credential.key`. Otherwise the XDG data and config folders. Flags, environment
//! variables and `cio.toml` override these; [`crate::settings`] applies that precedence.

use std::ffi::OsString;
use std::path::PathBuf;

/// The default locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub store: PathBuf,
    pub key_file: PathBuf,
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The defaults for a user (`root` or not) with the given environment lookup.
pub fn defaults(root: bool, env: impl Fn(&str) -> Option<OsString>) -> Defaults {
    if root {
        return Defaults {
            store: PathBuf::from("/var/lib/cio/credentials.db"),
            key_file: PathBuf::from("/etc/cio/credential.key"),
        };
    }
    let home = env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    // XDG: a relative value is invalid and must be ignored.
    let xdg = |var: &str, fallback: &str| {
        env(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(fallback))
    };
    Defaults {
        store: xdg("XDG_DATA_HOME", ".local/share").join("cio/credentials.db"),
        key_file: xdg("XDG_CONFIG_HOME", ".config").join("cio/credential.key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_uses_system_paths() {
        let d = defaults(true, |_| Some("/home/x".into()));
        assert_eq!(d.store, PathBuf::from("/var/lib/cio/credentials.db"));
        assert_eq!(d.key_file, PathBuf::from("/etc/cio/credential.key"));
    }

    #[test]
    fn users_use_xdg_folders() {
        let d = defaults(false, |k| (k == "HOME").then(|| "/home/ann".into()));
        assert_eq!(
            d.store,
            PathBuf::from("/home/ann/.local/share/cio/credentials.db")
        );
        assert_eq!(
            d.key_file,
            PathBuf::from("/home/ann/.config/cio/credential.key")
        );
        let d = defaults(false, |k| match k {
            "HOME" => Some("/home/ann".into()),
            "XDG_DATA_HOME" => Some("/data".into()),
            "XDG_CONFIG_HOME" => Some("relative/ignored".into()),
            _ => None,
        });
        assert_eq!(d.store, PathBuf::from("/data/cio/credentials.db"));
        assert_eq!(
            d.key_file,
            PathBuf::from("/home/ann/.config/cio/credential.key")
        );
    }
}
