//! What every command gets: the output, the settings (resolved by the library once, on first
//! use), and the credential store they name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::io::ErrorKind;

use cio_credential::{CredentialName, CredentialStore, Settings};

use crate::cli::GlobalArgs;
use crate::error::CommandError;
use crate::output::Out;

pub struct Context {
    global: GlobalArgs,
    pub out: Out,
    settings: OnceLock<Settings>,
    /// The key file the store was opened with, when it did not exist then: a first write
    /// that fails after making it says that it stays ([`Context::key_file_made`]).
    key_file_absent: OnceLock<PathBuf>,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Context {
        let out = Out::new(global.json);
        Context {
            global,
            out,
            settings: OnceLock::new(),
            key_file_absent: OnceLock::new(),
        }
    }

    /// The settings in force; `action` names what failed if the configuration file is bad.
    fn settings(&self, action: &str) -> Result<&Settings, CommandError> {
        if let Some(settings) = self.settings.get() {
            return Ok(settings);
        }
        let settings = self
            .global
            .settings()
            .resolve()
            .map_err(|e| CommandError::library(action, e))?;
        Ok(self.settings.get_or_init(|| settings))
    }

    /// Opens the credential store; `action` names what failed if it cannot be opened. For an
    /// etcd store the password may be asked for on the terminal (once per command).
    pub fn open(&self, action: &str) -> Result<CredentialStore, CommandError> {
        let settings = self.settings(action)?;
        if let Some(key_file) = &settings.key_file
            && std::fs::symlink_metadata(key_file).is_err_and(|e| e.kind() == ErrorKind::NotFound)
        {
            let _ = self.key_file_absent.set(key_file.clone());
        }
        settings
            .open(&|| self.out.ask_etcd_password())
            .map_err(|e| CommandError::library(action, e))
    }

    /// The key file that did not exist when the store was opened and does now: made by this
    /// command's first write (or by another first write at the same time). A key file is
    /// never taken back once made: another store may be sealed with it by then.
    pub fn key_file_made(&self) -> Option<&Path> {
        self.key_file_absent
            .get()
            .map(PathBuf::as_path)
            .filter(|path| std::fs::symlink_metadata(path).is_ok())
    }

    /// `max_key_age_days` of the settings (`cio.toml`): when validate calls a key old.
    pub fn max_key_age_days(&self, action: &str) -> Result<u32, CommandError> {
        Ok(self.settings(action)?.max_key_age_days())
    }

    /// Whether the store is the cluster store (etcd), which every node shares.
    pub fn store_is_shared(&self, action: &str) -> Result<bool, CommandError> {
        let store = self.settings(action)?.store.as_deref().unwrap_or_default();
        Ok(matches!(
            cio_credential::StoreSpec::parse(store),
            Ok(cio_credential::StoreSpec::Etcd(_))
        ))
    }

    /// The recovery recipients named in `cio.toml` (empty when unset).
    pub fn recovery_recipients(&self, action: &str) -> Result<Vec<String>, CommandError> {
        Ok(self
            .settings(action)?
            .recovery_recipients
            .clone()
            .unwrap_or_default())
    }

    /// Copies the store's credentials into the store at `to`.
    pub fn migrate(
        &self,
        action: &str,
        to: &str,
    ) -> Result<cio_credential::MigrationReport, CommandError> {
        self.settings(action)?
            .migrate(to, &|| self.out.ask_etcd_password())
            .map_err(|e| CommandError::library(action, e))
    }
}

/// Parses a credential name given to `cio credential COMMAND`, or fails with the closest
/// name suggested, or else with the command's own form in the hint.
pub fn parse_name(
    action: &str,
    command: &'static str,
    text: &str,
) -> Result<CredentialName, CommandError> {
    text.parse().map_err(|source| CommandError::UnknownName {
        action: action.to_string(),
        command,
        source,
    })
}
