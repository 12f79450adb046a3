//! What every command gets: the settings resolved (flag, environment, node configuration
//! file, default), the output, and the vault.

use std::io::IsTerminal;

use cio_credential::catalog::CredentialName;
use cio_credential::config::{self, Flags, Settings};
use cio_credential::credentials::CredentialStore;
use cio_credential::paths;
use cio_credential::secret::SecretValue;
use cio_credential::store::etcd::EtcdAuth;

use crate::cli::GlobalArgs;
use crate::error::{CommandError, InputError};
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

    /// The settings in force; `action` names what failed if the configuration file is bad.
    pub fn settings(&self, action: &str) -> Result<Settings, CommandError> {
        let env = |k: &str| std::env::var_os(k);
        let root = paths::running_as_root();
        let (path, required) = config::config_path(root, env);
        let file = config::load(&path, required).map_err(|e| CommandError::library(action, e))?;
        let flags = Flags {
            store: self.global.store.clone(),
            key_file: self.global.key_file.clone(),
            etcd_cacert: self.global.etcd_cacert.clone(),
            etcd_cert: self.global.etcd_cert.clone(),
            etcd_key: self.global.etcd_key.clone(),
        };
        Ok(config::resolve(
            &flags,
            env,
            &file,
            &paths::defaults(root, env),
        ))
    }

    /// The etcd user and password from CIO_ETCD_USER / CIO_ETCD_PASSWORD; the password is
    /// prompted for on a terminal when only the user is set.
    pub fn etcd_auth(&self, action: &str) -> Result<Option<EtcdAuth>, CommandError> {
        match config::etcd_auth_from_env(|k| std::env::var_os(k)) {
            Ok(auth) => Ok(auth),
            Err(user) => {
                let input_error = |problem| CommandError::Input {
                    action: action.to_string(),
                    problem,
                };
                if !std::io::stdin().is_terminal() {
                    return Err(input_error(InputError::EtcdPasswordMissing));
                }
                let password = rpassword::prompt_password(format!("etcd password for {user}: "))
                    .map_err(|e| input_error(InputError::Io(e)))?;
                Ok(Some(EtcdAuth {
                    user,
                    password: SecretValue::new(password),
                }))
            }
        }
    }

    /// Opens the credential store; `action` names what failed if it cannot be opened.
    pub fn vault(&self, action: &str) -> Result<CredentialStore, CommandError> {
        let settings = self.settings(action)?;
        settings
            .open_vault(self.etcd_auth(action)?, None)
            .map_err(|e| CommandError::library(action, e))
    }
}

/// Parses a credential name, or fails with the closest name suggested.
pub fn parse_name(action: &str, text: &str) -> Result<CredentialName, CommandError> {
    text.parse()
        .map_err(|e: cio_credential::catalog::UnknownName| CommandError::library(action, e))
}
