//! The record of a password rotation in progress, staged in the store before restic learns
//! the new password, so that whatever happens next, the next run knows the new password and
//! the key to retire.

use serde::{Deserialize, Serialize};

use crate::catalog::CredentialName;
use crate::credentials::CredentialStore;
use crate::error::Result;
use crate::secret::SecretValue;
use crate::shown::shown_time;
use crate::store::now_ms;

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
    /// When the rotation was first staged, in milliseconds since the Unix epoch (0 before it
    /// is): kept by every later stage and by every run that takes it over.
    pub started_ms: i64,
    /// When it was last staged (0 before it is): each stage staged again moves it. A
    /// takeover waits on this one.
    pub staged_ms: i64,
    /// The node that staged it (`None` in records written before nodes were named, and in
    /// one made here: saving always names this node).
    pub host: Option<String>,
}

/// How long a rotation another node staged keeps this node from taking it over: a rotation
/// that is still running there is seconds from its next stage; one killed there can be
/// finished from here after this long (or there at once).
pub(crate) const TAKEOVER_AFTER_MS: i64 = 10 * 60 * 1000;

/// What a stage is to the rotation, for the change log: an auditor reads one rotation as
/// one start, then any runs that took it over, then its finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staging {
    /// The first stage of a new rotation.
    Started,
    /// A run claims an interrupted rotation to finish it.
    TakenOver,
    /// The run that took it over found the new key never added: it names the old key
    /// again before restic adds the new one.
    Restaged,
}

impl Staging {
    /// The change log's detail for a stage of the rotation started at `started_ms`.
    fn detail(self, started_ms: i64) -> String {
        match self {
            Staging::Started => "started: its new value staged".into(),
            Staging::TakenOver => format!(
                "resumed: the interrupted rotation started at {} taken over",
                shown_time(started_ms)
            ),
            Staging::Restaged => format!(
                "resumed: the rotation started at {} staged again, its new key was never added",
                shown_time(started_ms)
            ),
        }
    }
}

/// This host's name.
pub(crate) fn this_host() -> String {
    whoami::hostname().unwrap_or_else(|_| "?".into())
}

/// This node's name as a staged record keeps it: the host and the key file whose lock guards
/// its rotations (`HOST:/etc/cio/credential.key`). Two cio runs on one host with different key
/// files hold different locks, so each is another node to the other (a live rotation of one
/// was taken over at once by the other).
pub(crate) fn this_node(key_file: &std::path::Path) -> String {
    // The file itself, however it is spelled (`..`, a link): its lock is the same file.
    let path = std::fs::canonicalize(key_file)
        .or_else(|_| std::path::absolute(key_file))
        .unwrap_or_else(|_| key_file.to_path_buf());
    format!("{}:{}", this_host(), crate::shown_path(&path))
}

/// Whether a record staged by `node` was staged by this node (whose key file is `key_file`);
/// a record written before nodes named their key file (`HOST` alone) is this host's.
pub(crate) fn staged_here(node: &str, key_file: &std::path::Path) -> bool {
    node == this_node(key_file) || node == this_host()
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("old_key", &self.old_key)
            .field("keep_old_key", &self.keep_old_key)
            .field("started_ms", &self.started_ms)
            .field("staged_ms", &self.staged_ms)
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
    /// When the rotation started (the first stage's time).
    started_ms: i64,
}

#[derive(Deserialize)]
struct RecordIn {
    format: u32,
    password: String,
    old_key: Option<String>,
    keep_old_key: bool,
    #[serde(default)]
    host: Option<String>,
    /// Absent in records written before it was kept: then the record's own time.
    #[serde(default)]
    started_ms: Option<i64>,
}

/// The staged record's name: the password's name and `.rotation` (no catalog name has a dot).
fn record_name(name: CredentialName) -> String {
    format!("{name}.rotation")
}

/// The staged record of a rotation as one reading of the store found it.
#[derive(Debug)]
pub(crate) struct Read {
    /// The record's version (0: never staged): what a rotation stages over, and what its
    /// finish removes.
    pub version: u64,
    /// The rotation in progress, if any.
    pub pending: Option<Pending>,
}

impl Pending {
    /// The rotation of `name` in progress, if any, and the version a stage over it expects.
    pub fn load(store: &CredentialStore, name: CredentialName) -> Result<Read> {
        let slot = store.staged(&record_name(name))?;
        let Some(staged) = slot.live else {
            return Ok(Read {
                version: slot.version,
                pending: None,
            });
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
        Ok(Read {
            version: slot.version,
            pending: Some(Pending {
                password: SecretValue::new(record.password),
                old_key: record.old_key,
                keep_old_key: record.keep_old_key,
                started_ms: record.started_ms.unwrap_or(staged.written_at_ms),
                staged_ms: staged.written_at_ms,
                host: record.host,
            }),
        })
    }

    /// Stages this record for `name` over the version `expected` (as [`Pending::load`]
    /// read it, or as this rotation staged it last) and returns the version staged. When
    /// another run staged or finished a rotation of `name` since, nothing is staged and the
    /// rotation is refused at `stage` (nothing changed yet): that run's rotation is in
    /// progress, or it is done. The change log tells `staging`.
    pub fn save(
        &self,
        store: &CredentialStore,
        name: CredentialName,
        expected: u64,
        stage: Stage,
        staging: Staging,
    ) -> Result<u64> {
        let started_ms = if self.started_ms > 0 {
            self.started_ms
        } else {
            now_ms()
        };
        let json = serde_json::to_string(&RecordOut {
            format: FORMAT,
            password: self.password.expose(),
            old_key: self.old_key.as_deref(),
            keep_old_key: self.keep_old_key,
            host: &this_node(store.key_file()),
            started_ms,
        })
        .map_err(|e| RotateError {
            name,
            stage: Stage::Checking,
            problem: Problem::PendingUnreadable(format!("it cannot be written as JSON ({e})")),
        })?;
        let staged = store.stage(
            &record_name(name),
            &SecretValue::new(json),
            expected,
            "rotate",
            name,
            staging.detail(started_ms),
        )?;
        if let Some(version) = staged {
            return Ok(version);
        }
        let problem = match Pending::load(store, name)?.pending {
            Some(theirs) => theirs.in_progress(),
            None => Problem::RotatedMeanwhile,
        };
        Err(RotateError {
            name,
            stage,
            problem,
        }
        .into())
    }

    /// Why a rotation that finds this one staged leaves it alone: it is in progress on
    /// its node (this node too: a run of another cio here, with another key file's lock)
    /// for [`TAKEOVER_AFTER_MS`] after it was staged.
    pub fn in_progress(&self) -> Problem {
        Problem::InProgress {
            host: self.host.clone().unwrap_or_else(this_host),
            minutes_left: (TAKEOVER_AFTER_MS - self.age_ms() + 59_999).max(0) / 60_000,
        }
    }

    /// How long ago it was last staged, in milliseconds.
    pub fn age_ms(&self) -> i64 {
        now_ms().saturating_sub(self.staged_ms).max(0)
    }

    /// Removes the record of `name`'s rotation, the version `staged` (the one this rotation
    /// staged or took over): it is finished. A record another run staged since is kept.
    pub fn clear(store: &CredentialStore, name: CredentialName, staged: u64) -> Result<()> {
        store
            .unstage(&record_name(name), staged, "rotate", name)
            .map(drop)
    }
}

#[cfg(test)]
mod node_tests {
    use super::*;

    /// The final review's finding: the same key file spelled with `..` or through a link
    /// (the same lock) was another node, and a stopped rotation waited 10 minutes.
    #[test]
    fn a_key_file_is_one_node_however_it_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::create_dir(etc.join("sub")).unwrap();
        let key = etc.join("credential.key");
        std::fs::write(&key, "k").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&etc, &link).unwrap();
        let node = this_node(&key);
        assert_eq!(this_node(&etc.join("sub/../credential.key")), node);
        assert_eq!(this_node(&link.join("credential.key")), node);
        assert!(staged_here(&node, &link.join("credential.key")));
        assert!(!staged_here(&node, &dir.path().join("other.key")));
    }
}
