//! [`CredentialStore::history`] and [`CredentialStore::restore`]: earlier versions, read and
//! brought back as a new version.

use super::{CredentialStore, HistoryEntry, Written};
use crate::catalog::CredentialName;
use crate::error::{Error, Result};
use crate::secret::SecretValue;
use crate::store::{Action, Identity, Record};

impl CredentialStore {
    /// Every version of `name`, oldest first, opened.
    pub fn history(&self, name: CredentialName) -> Result<Vec<HistoryEntry>> {
        let Some(verified) = self.verified()? else {
            return Ok(Vec::new());
        };
        verified
            .history(&name.to_string())?
            .iter()
            .map(|v| {
                Ok(HistoryEntry {
                    version: v.version,
                    action: v.action,
                    restored_from: v.restored_from,
                    written_at_ms: v.written_at_ms,
                    value: self.open_version(&verified.identity, v)?,
                })
            })
            .collect()
    }

    /// Brings back the value of `version`, or without one: a removed credential's last value,
    /// or a live credential's previous value.
    pub fn restore(&self, name: CredentialName, version: Option<u64>) -> Result<Written> {
        let Some(verified) = self.verified()? else {
            return Err(Error::NotFound { name });
        };
        let history = verified.history(&name.to_string())?;
        if history.is_empty() {
            return Err(Error::NotFound { name });
        }
        let identity = &verified.identity;
        let (from, value) = match version {
            Some(n) => {
                let source = history
                    .iter()
                    .find(|v| v.version == n)
                    .ok_or(Error::NoSuchVersion { name, version: n })?;
                let value =
                    self.open_version(identity, source)?
                        .ok_or(Error::NothingToRestore {
                            name,
                            removal: Some(n),
                        })?;
                (n, value)
            }
            None => self.previous_value(identity, name, history)?,
        };
        let (version, action) = self.write(name, None, |_| {
            Ok((Action::Restore, Some(from), Some(&value)))
        })?;
        Ok(Written {
            name,
            version,
            action,
            restored_from: Some(from),
            warnings: Vec::new(),
        })
    }

    /// The newest earlier value that differs from the live one (any value, when removed).
    pub(super) fn previous_value(
        &self,
        identity: &Identity,
        name: CredentialName,
        history: &[Record],
    ) -> Result<(u64, SecretValue)> {
        let current = match history.last() {
            Some(v) => self.open_version(identity, v)?,
            None => None,
        };
        for v in history.iter().rev() {
            if let Some(value) = self.open_version(identity, v)?
                && !current.as_ref().is_some_and(|c| c.ct_eq(&value))
            {
                return Ok((v.version, value));
            }
        }
        Err(Error::NothingToRestore {
            name,
            removal: None,
        })
    }
}
