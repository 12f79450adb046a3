//! What every command gets: the global options resolved, the output, and the vault.

use std::path::PathBuf;

use cio_credential::catalog::CredentialName;
use cio_credential::paths;
use cio_credential::store::StoreSpec;
use cio_credential::vault::Vault;

use crate::cli::GlobalArgs;
use crate::error::CommandError;
use crate::output::Out;

pub struct Context {
    pub global: GlobalArgs,
    pub out: Out,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Context {
        let out = Out::new(global.json);
        Context { global, out }
    }

    /// The store and key in force: flag or environment (clap reads both), else the default.
    fn locations(&self) -> (String, PathBuf) {
        let defaults = paths::defaults(paths::running_as_root(), |k| std::env::var_os(k));
        let store = self
            .global
            .store
            .clone()
            .unwrap_or_else(|| defaults.store.display().to_string());
        let key = self.global.key_file.clone().unwrap_or(defaults.key_file);
        (store, key)
    }

    /// Opens the vault; `action` names what failed if it cannot be opened.
    pub fn vault(&self, action: &str) -> Result<Vault, CommandError> {
        let (store, key) = self.locations();
        let store = StoreSpec::parse(&store)
            .open()
            .map_err(|e| CommandError::library(action, e))?;
        Ok(Vault::new(store, key))
    }
}

/// Parses a credential name, or fails with the closest name suggested.
pub fn parse_name(action: &str, text: &str) -> Result<CredentialName, CommandError> {
    text.parse()
        .map_err(|e: cio_credential::catalog::UnknownName| CommandError::library(action, e))
}
