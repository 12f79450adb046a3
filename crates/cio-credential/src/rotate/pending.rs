//! The record of a password rotation in progress, staged in the store before restic learns
//! the new password, so that whatever happens next, the next run knows the new password and
//! the key to retire.

use serde::{Deserialize, Serialize};

use crate::catalog::CredentialName;
use crate::credentials::CredentialStore;
use crate::error::Result;
use crate::secret::SecretValue;

use super::{Problem, RotateError, Stage};

/// The version of the staged record's JSON.
const FORMAT: u32 = 1;

/// A rotation of one repository password that has started and not finished.
pub(crate) struct Pending {
    /// The new password.
    pub password: SecretValue,
    /// restic's id of the key the old password opens (`None`: restic named none).
    pub old_key: Option<String>,
    /// The rotation was asked to keep the old key.
    pub keep_old_key: bool,
    /// When it was staged, in milliseconds since the Unix epoch (0 before it is); each stage
    /// staged again moves it.
    pub started_ms: i64,
    /// The node that staged it (`None` in records written before nodes were named, and in
    /// one made here: saving always names this node).
    pub host: Option<String>,
}

/// How long a rotation another node staged keeps this node from taking it over: a rotation
/// that is still running there is seconds from its next stage; one killed there can be
/// finished from here after this long (or there at once).
pub(crate) const TAKEOVER_AFTER_MS: i64 = 10 * 60 * 1000;

/// This node's name, as a staged record keeps it.
pub(crate) fn this_host() -> String {
    whoami::hostname().unwrap_or_else(|_| "?".into())
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("old_key", &self.old_key)
            .field("keep_old_key", &self.keep_old_key)
            .field("started_ms", &self.started_ms)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct RecordOut<'a> {
    format: u32,
    password: &'a str,
    old_key: Option<&'a str>,
    keep_old_key: bool,
    host: &'a str,
}

#[derive(Deserialize)]
struct RecordIn {
    format: u32,
    password: String,
    old_key: Option<String>,
    keep_old_key: bool,
    #[serde(default)]
    host: Option<String>,
}

/// The staged record's name: the password's name and `.rotation` (no catalog name has a dot).
fn record_name(name: CredentialName) -> String {
    format!("{name}.rotation")
}

impl Pending {
    /// The rotation of `name` in progress, if any.
    pub fn load(store: &CredentialStore, name: CredentialName) -> Result<Option<Pending>> {
        let Some(staged) = store.staged(&record_name(name))? else {
            return Ok(None);
        };
        let unreadable = |why: String| RotateError {
            name,
            stage: Stage::Checking,
            problem: Problem::PendingUnreadable(why),
        };
        let record: RecordIn = serde_json::from_str(staged.value.expose())
            .map_err(|e| unreadable(format!("it is not the JSON cio writes ({e})")))?;
        if record.format != FORMAT {
            return Err(unreadable(format!(
                "it has format {}, this cio reads format {FORMAT}",
                record.format
            ))
            .into());
        }
        Ok(Some(Pending {
            password: SecretValue::new(record.password),
            old_key: record.old_key,
            keep_old_key: record.keep_old_key,
            started_ms: staged.written_at_ms,
            host: record.host,
        }))
    }

    /// Stages this record for `name` (replacing an earlier one).
    pub fn save(&self, store: &CredentialStore, name: CredentialName) -> Result<()> {
        let json = serde_json::to_string(&RecordOut {
            format: FORMAT,
            password: self.password.expose(),
            old_key: self.old_key.as_deref(),
            keep_old_key: self.keep_old_key,
            host: &this_host(),
        })
        .map_err(|e| RotateError {
            name,
            stage: Stage::Checking,
            problem: Problem::PendingUnreadable(format!("it cannot be written as JSON ({e})")),
        })?;
        store.stage(&record_name(name), &SecretValue::new(json), "rotate", name)
    }

    /// Removes the record of `name`'s rotation: it is finished.
    pub fn clear(store: &CredentialStore, name: CredentialName) -> Result<()> {
        store.unstage(&record_name(name), "rotate", name)
    }
}
