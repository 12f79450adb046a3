//! What every command gets: the output, the settings (resolved by the library once, on first
//! use), and the credential store they name.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cio_credential::{CredentialName, CredentialStore, Settings, StoreSpec};

use crate::cli::{CredentialNames, GlobalArgs};
use crate::error::CommandError;
use crate::output::Out;

pub struct Context {
    global: GlobalArgs,
    pub out: Out,
    settings: OnceLock<Settings>,
    /// The key file and the store file (of an embedded store) the store was opened with,
    /// each when it did not exist then: a first write that fails after making one says
    /// that it stays ([`Context::first_write_made`]).
    absent_at_open: OnceLock<Absent>,
}

/// The files a command's first write makes, as they were when the store was opened.
#[derive(Default)]
struct Absent {
    key_file: Option<PathBuf>,
    store_file: Option<PathBuf>,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Context {
        let out = Out::new(global.json).offering_flags(global.given_flags());
        Context {
            global,
            out,
            settings: OnceLock::new(),
            absent_at_open: OnceLock::new(),
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

    /// cio's own files, each with what it is ([`Settings::own_files`]): no file a command
    /// writes where the user says may be one of them.
    pub fn own_files(&self, action: &str) -> Result<Vec<(PathBuf, &'static str)>, CommandError> {
        Ok(self.settings(action)?.own_files())
    }

    /// Opens the credential store; `action` names what failed if it cannot be opened. For an
    /// etcd store the password may be asked for on the terminal (once per command).
    pub fn open(&self, action: &str) -> Result<CredentialStore, CommandError> {
        let settings = self.settings(action)?;
        let absent = |path: &Path| {
            std::fs::symlink_metadata(path)
                .is_err_and(|e| e.kind() == ErrorKind::NotFound)
                .then(|| path.to_path_buf())
        };
        let store_file = match settings.store.as_deref().map(StoreSpec::parse) {
            Some(Ok(StoreSpec::Sqlite(path))) => absent(&path),
            _ => None,
        };
        let _ = self.absent_at_open.set(Absent {
            key_file: settings.key_file.as_deref().and_then(absent),
            store_file,
        });
        settings
            .open(&|| self.out.ask_etcd_password())
            .map_err(|e| CommandError::library(action, e))
    }

    /// What a failed command says of the files its first write made (or another first write
    /// at the same time): the key file and the store file that did not exist when the store
    /// was opened and do now. Neither is taken back: another store may be sealed with the
    /// key by then, and another writer may have read the new store's id.
    pub fn first_write_made(&self) -> Vec<String> {
        let Some(absent) = self.absent_at_open.get() else {
            return Vec::new();
        };
        let exists = |path: &&PathBuf| std::fs::symlink_metadata(path).is_ok();
        let mut said = Vec::new();
        if let Some(key_file) = absent.key_file.as_ref().filter(exists) {
            said.push(format!(
                "the key file {} did not exist when this command began and stays: cio never removes a key file (another store may be sealed with it), and the next write uses it",
                cio_credential::shown_path(key_file)
            ));
        }
        if let Some(store_file) = absent.store_file.as_ref().filter(exists) {
            said.push(format!(
                "the store file {} did not exist when this command began and stays, a new store with its id; the next write uses it",
                cio_credential::shown_path(store_file)
            ));
        }
        said
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
    names: CredentialNames,
    text: &str,
) -> Result<CredentialName, CommandError> {
    CredentialName::parse_taking(text, names.takes).map_err(|source| CommandError::UnknownName {
        action: action.to_string(),
        command,
        names,
        source,
    })
}
