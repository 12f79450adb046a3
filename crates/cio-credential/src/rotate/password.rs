//! The password rotation itself: the steps of the module rules, and finishing an
//! interrupted one.

use crate::catalog::{Allow, CredentialName, Field, Role, Warning, check_value};
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};
use crate::handoff::variable;
use crate::secret::SecretValue;
use crate::sets::SetFilter;

use super::node_lock::{NodeLock, lock_path};
use super::pending::{Pending, Staging, TAKEOVER_AFTER_MS, staged_here};
use super::restic_cli::{KeyInfo, Restic, ResticFailure};
use super::{EscrowRefresh, OldKey, PasswordRotated, Problem, RotateError, Stage};

/// A password rotation, ready to run: the set checked, the node's rotation lock held, and
/// an interrupted rotation (if any) read.
pub struct PasswordRotation<'a> {
    store: &'a CredentialStore,
    name: CredentialName,
    restic: Restic,
    /// The password the store holds now.
    stored: SecretValue,
    pending: Option<Pending>,
    /// The staged record's version: as read when the rotation began, then as this rotation
    /// staged it. A stage must find it unchanged, and the finish removes only it.
    staged_version: u64,
    _lock: NodeLock,
}

impl std::fmt::Debug for PasswordRotation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordRotation")
            .field("name", &self.name)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<'a> PasswordRotation<'a> {
    /// The caller's certificate file that the runs of restic will not trust (the variable
    /// naming it, and why): the bundle each run is handed holds only the set's CA
    /// certificate then ([`crate::caller_ca_unread`]), for the caller to say before the
    /// rotation starts.
    pub fn caller_ca_unread(&self) -> Option<(&'static str, crate::CaFileUnread)> {
        self.restic.caller_ca_unread()
    }

    /// Prepares the rotation of `name`: refuses anything but a primary set's password and an
    /// incomplete set, then takes the node's rotation lock (reporting [`Stage::Waiting`]
    /// through `progress` while another holds it), then reads the set and any interrupted
    /// rotation.
    pub fn begin(
        store: &'a CredentialStore,
        name: CredentialName,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<PasswordRotation<'a>> {
        let refuse = |problem| RotateError {
            name,
            stage: Stage::Checking,
            problem,
        };
        if name.field != Field::BackupPassword {
            return Err(refuse(Problem::NotAPassword).into());
        }
        if name.role == Role::Alternate {
            return Err(refuse(Problem::Alternate).into());
        }
        let path = lock_path(store.key_file());
        let lock = NodeLock::acquire(&path, || progress(Stage::Waiting))
            .map_err(|source| refuse(Problem::Lock { path, source }))?;
        let handoff = store.handoff(&SetFilter {
            name: None,
            provider: Some(name.provider),
            role: Some(Role::Primary),
        })?;
        let stored = handoff
            .vars
            .iter()
            .find(|(var, _)| Some(*var) == variable(Field::BackupPassword))
            .map(|(_, v)| SecretValue::new(v.expose().to_string()))
            .ok_or(Error::NotFound { name })?;
        let read = Pending::load(store, name)?;
        // This node's lock is ours: a rotation staged here is no longer running. One staged
        // on another node (or by a run here with another key file, whose lock is another)
        // may be: it is left to that node for a while.
        if let Some(p) = &read.pending
            && p.host
                .as_ref()
                .is_some_and(|h| !staged_here(h, store.key_file()))
            && p.age_ms() < TAKEOVER_AFTER_MS
        {
            return Err(refuse(p.in_progress()).into());
        }
        Ok(PasswordRotation {
            store,
            name,
            restic: Restic::new(handoff),
            stored,
            pending: read.pending,
            staged_version: read.version,
            _lock: lock,
        })
    }

    /// When the interrupted rotation this run will finish was started (milliseconds since
    /// the Unix epoch); `None` when there is none and [`PasswordRotation::run`] needs a new
    /// password.
    pub fn interrupted_since(&self) -> Option<i64> {
        self.pending.as_ref().map(|p| p.started_ms)
    }

    /// Runs the rotation to `new` (`None`: finish the interrupted one), keeping the old key
    /// when `keep_old_key` (or when the interrupted run was asked to). `escrow` refreshes the
    /// set's recovery bundle once the new password is stored, before the old key goes.
    /// Reports each stage through `progress` as it starts.
    pub fn run(
        mut self,
        new: Option<&SecretValue>,
        keep_old_key: bool,
        escrow: EscrowRefresh<'_>,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<PasswordRotated> {
        match (self.pending.take(), new) {
            (Some(pending), Some(new)) if !new.ct_eq(&pending.password) => Err(self.error(
                Stage::Checking,
                Problem::Interrupted {
                    started_ms: pending.started_ms,
                },
            )),
            (Some(mut pending), _) => {
                pending.keep_old_key |= keep_old_key;
                self.resume(pending, escrow, progress)
            }
            (None, Some(new)) => {
                let pending = Pending {
                    password: SecretValue::new(new.expose().to_string()),
                    old_key: None,
                    keep_old_key,
                    started_ms: 0,
                    staged_ms: 0,
                    host: None,
                };
                self.start(pending, escrow, progress)
            }
            (None, None) => Err(self.error(Stage::Checking, Problem::NoNewPassword)),
        }
    }

    fn error(&self, stage: Stage, problem: Problem) -> Error {
        RotateError {
            name: self.name,
            stage,
            problem,
        }
        .into()
    }

    /// A restic failure at `stage`; `WrongPassword` means the stored password's.
    fn restic_error(&self, stage: Stage, failure: ResticFailure) -> Error {
        let problem = match failure {
            ResticFailure::NotInstalled => Problem::ResticMissing,
            ResticFailure::WrongPassword => self.moved_on().unwrap_or(Problem::StoredPasswordWrong),
            ResticFailure::Locked(detail) => Problem::Locked(detail),
            ResticFailure::NoRepository => Problem::NoRepository,
            ResticFailure::Unreachable(detail) => Problem::Unreachable(detail),
            ResticFailure::Failed { command, detail } => Problem::Restic { command, detail },
        };
        self.error(stage, problem)
    }

    /// Why the password this rotation read no longer opens the repository, when the store
    /// moved on since: another node's rotation staged meanwhile ([`Problem::InProgress`]) or
    /// finished meanwhile ([`Problem::RotatedMeanwhile`]). `None` when the store is as read
    /// (or cannot be read again): then the stored password is wrong.
    fn moved_on(&self) -> Option<Problem> {
        let read = Pending::load(self.store, self.name).ok()?;
        if read.version != self.staged_version
            && let Some(theirs) = read.pending
        {
            return Some(theirs.in_progress());
        }
        let now = self.store.get(self.name).ok()??;
        (!now.value.ct_eq(&self.stored)).then_some(Problem::RotatedMeanwhile)
    }

    /// The value rules' warnings for the new password, or why it cannot be used.
    fn check_new(&self, new: &SecretValue) -> Result<Vec<Warning>> {
        let name = self.name;
        // The default rules refuse white space at either end, which restic would strip
        // from the password file `key add` reads.
        let warnings = check_value(name, new.expose(), Allow::default()).map_err(|violation| {
            // What `create --allow-whitespace` (or `--allow-any-character`) would keep: a
            // rotation cannot, and says so rather than name a flag it does not take.
            let kept = [
                Allow {
                    whitespace: true,
                    any_character: false,
                },
                Allow {
                    whitespace: true,
                    any_character: true,
                },
            ]
            .into_iter()
            .any(|allow| check_value(name, new.expose(), allow).is_ok());
            if kept {
                self.error(Stage::Checking, Problem::NotForKeyAdd { violation })
            } else {
                Error::InvalidValue { name, violation }
            }
        })?;
        if new.ct_eq(&self.stored) {
            return Err(self.error(Stage::Checking, Problem::SamePassword));
        }
        Ok(warnings)
    }

    /// Steps (1) to (7) for a new rotation.
    fn start(
        mut self,
        mut pending: Pending,
        escrow: EscrowRefresh<'_>,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<PasswordRotated> {
        progress(Stage::Checking);
        let warnings = self.check_new(&pending.password)?;
        self.restic.scrub(&pending.password);
        self.identify_and_add(&mut pending, progress)?;
        let run = Run {
            resumed: false,
            added_now: true,
            warnings,
        };
        self.store_and_retire(pending, None, run, escrow, progress)
    }

    /// Steps (1) to (3): name the stored password's key, stage, add the new key.
    fn identify_and_add(
        &mut self,
        pending: &mut Pending,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<()> {
        progress(Stage::Identifying);
        let keys = self
            .restic
            .key_list(&self.stored, pending.old_key.as_deref())
            .map_err(|f| self.restic_error(Stage::Identifying, f))?;
        pending.old_key = current(&keys).map(str::to_string);
        // A rotation that was staged before (one this run took over) is not started again:
        // the change log says it started once.
        let staging = if pending.started_ms > 0 {
            Staging::Restaged
        } else {
            Staging::Started
        };
        // Staged only over the record as this rotation read it: of two rotations that read
        // it at once, the second is refused here, before restic learns its password.
        self.staged_version = pending.save(
            self.store,
            self.name,
            self.staged_version,
            Stage::Identifying,
            staging,
        )?;
        progress(Stage::Adding);
        self.restic
            .key_add(&self.stored, pending.old_key.as_deref(), &pending.password)
            .map_err(|f| self.restic_error(Stage::Adding, f))
    }

    /// Finishes an interrupted rotation from wherever it stopped.
    fn resume(
        mut self,
        mut pending: Pending,
        escrow: EscrowRefresh<'_>,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<PasswordRotated> {
        progress(Stage::Checking);
        // Claimed first, as a new rotation stages: of two nodes that take over one stopped
        // rotation at once, one finishes it and the other is told it is in progress.
        self.staged_version = pending.save(
            self.store,
            self.name,
            self.staged_version,
            Stage::Checking,
            Staging::TakenOver,
        )?;
        self.restic.scrub(&pending.password);
        let name = self.name;
        let warnings =
            check_value(name, pending.password.expose(), Allow::default()).unwrap_or_default();
        // Was the new key added before the run stopped? (When the new password is stored
        // already, it was: step (5) follows step (4).)
        progress(Stage::Verifying);
        let (keys, added_now) = match self.restic.key_list(&pending.password, None) {
            Ok(keys) => (Some(keys), false),
            Err(ResticFailure::WrongPassword) if !pending.password.ct_eq(&self.stored) => {
                // Not added: start again from (1) with the staged password, naming the key
                // the stored password opens now.
                pending.old_key = None;
                self.identify_and_add(&mut pending, progress)?;
                (None, true)
            }
            Err(ResticFailure::WrongPassword) => {
                return Err(self.error(Stage::Verifying, Problem::StoredPasswordWrong));
            }
            Err(f) => return Err(self.restic_error(Stage::Verifying, f)),
        };
        let run = Run {
            resumed: true,
            added_now,
            warnings,
        };
        self.store_and_retire(pending, keys, run, escrow, progress)
    }

    /// Steps (4) to (7): prove the new password (unless `keys` is what it opened just now),
    /// store it, refresh the escrow bundle, remove the old key, clear the staged record.
    fn store_and_retire(
        &self,
        pending: Pending,
        keys: Option<Vec<KeyInfo>>,
        run: Run,
        escrow: EscrowRefresh<'_>,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<PasswordRotated> {
        let name = self.name;
        let keys = match keys {
            Some(keys) => keys,
            None => {
                progress(Stage::Verifying);
                match self.restic.key_list(&pending.password, None) {
                    Ok(keys) => keys,
                    Err(ResticFailure::WrongPassword) => {
                        return Err(self.error(Stage::Verifying, Problem::NewPasswordDoesNotOpen));
                    }
                    Err(f) => return Err(self.restic_error(Stage::Verifying, f)),
                }
            }
        };
        let Some(new_key) = current(&keys).map(str::to_string) else {
            return Err(self.error(Stage::Verifying, Problem::NewPasswordDoesNotOpen));
        };
        progress(Stage::Storing);
        let version = if pending.password.ct_eq(&self.stored) {
            self.store.get(name)?.map_or(0, |entry| entry.version)
        } else {
            self.store.put_rotated(name, &pending.password)?.version
        };
        // The bundle follows the stored password before the old key goes: until then the
        // old bundle still opens the repository.
        progress(Stage::Escrowing);
        let refreshed = escrow();
        let old_key = match (retiring(&pending, &keys, &new_key), refreshed.clone()) {
            (Retire::Remove(_), Err(why)) => {
                return Err(self.error(Stage::Escrowing, Problem::EscrowNotRefreshed(why)));
            }
            (Retire::Remove(old), Ok(())) => {
                progress(Stage::RemovingOldKey);
                self.restic
                    .key_remove(&pending.password, Some(&new_key), &old)
                    .map_err(|f| self.restic_error(Stage::RemovingOldKey, f))?;
                OldKey::Removed { id: old }
            }
            (Retire::Not(outcome), _) => outcome,
        };
        progress(Stage::Finishing);
        Pending::clear(self.store, name, self.staged_version)?;
        Ok(PasswordRotated {
            name,
            version,
            new_key,
            new_key_added_now: run.added_now,
            old_key,
            resumed: run.resumed,
            warnings: run.warnings,
            escrow_not_refreshed: refreshed.err(),
        })
    }
}

/// What a run brings to steps (4) to (7): whether it finishes an interrupted rotation, and the
/// value rules' warnings for the new password.
struct Run {
    resumed: bool,
    /// This run added the new password's key (an interrupted run had not).
    added_now: bool,
    warnings: Vec<Warning>,
}

/// Step (6), decided: the old password's key to remove, or why none is.
enum Retire {
    Remove(String),
    Not(OldKey),
}

/// Which key step (6) removes: the old password's, when it is known and not to be kept.
fn retiring(pending: &Pending, keys: &[KeyInfo], new_key: &str) -> Retire {
    let others: Vec<&str> = keys
        .iter()
        .map(|k| k.id.as_str())
        .filter(|id| *id != new_key)
        .collect();
    let old = match &pending.old_key {
        Some(id) if id == new_key || !others.contains(&id.as_str()) => {
            return Retire::Not(OldKey::AlreadyGone { id: id.clone() });
        }
        Some(id) => id.clone(),
        None => match others.as_slice() {
            [only] => (*only).to_string(),
            [] => return Retire::Not(OldKey::NoneLeft),
            several => {
                return Retire::Not(OldKey::Unidentified {
                    other_keys: several.len(),
                });
            }
        },
    };
    if pending.keep_old_key {
        return Retire::Not(OldKey::Kept { id: old });
    }
    Retire::Remove(old)
}

/// The id of the key the run's password opened.
fn current(keys: &[KeyInfo]) -> Option<&str> {
    keys.iter().find(|k| k.current).map(|k| k.id.as_str())
}
