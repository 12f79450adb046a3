//! The change log of a [`CredentialStore`]: the entry each change writes with it, and the
//! log as read back and checked (see [`crate::audit`] for the entry format and the chain).

use std::sync::OnceLock;

use super::notes::{NoteReading, binding};
use super::{CredentialStore, MAX_RETRIES};
use crate::audit::{self, Actor, Broken, LogEntry, LogReading, Problem};
use crate::crypto::Key;
use crate::error::{Error, Result};
use crate::integrity::Manifest;
use crate::ledger::Verified;
use crate::secret::SecretValue;
use crate::store::{Identity, LogAppend, LogRecord, MAX_LOG_SEQ, Store, StoreError, now_ms};

/// The note that says a log was found broken, so that every node's next commands say so.
const DAMAGE_NOTE: &str = "log/damage";

/// What one change is, for its log entry.
pub(crate) struct LogChange<'a> {
    /// `create`, `update`, `remove`, `restore`, `purge`, `migrate`.
    pub command: &'a str,
    pub name: Option<&'a str>,
    /// Every credential a change of several names wrote (see [`LogEntry::names`]).
    pub names: Vec<String>,
    pub version: Option<u64>,
    pub detail: Option<String>,
    /// An acknowledgement of the log whose digest this is ([`LogReading::digest`]): the
    /// entry holds it ([`LogEntry::prefix_sha256`]), and goes in only while the log, read
    /// whole, still has it (else [`StoreError::Conflict`]).
    pub digest_log: Option<&'a str>,
}

/// The user and host of this process, looked up once.
fn actor() -> Actor {
    static ACTOR: OnceLock<Actor> = OnceLock::new();
    ACTOR.get_or_init(Actor::current).clone()
}

/// The next entry of `store`'s log for `change`, sealed after the log's newest entry, and
/// whether the log is damaged: its newest entry does not open, or it ends before `anchor`
/// (the entry the manifest says the newest logged change wrote: later ones were deleted).
/// The entry is numbered after `anchor` too: a deleted entry's number is not given again,
/// so the log keeps saying that entry is missing.
pub(crate) fn next_entry(
    store: &dyn Store,
    key: &Key,
    store_id: &str,
    manifest: &Manifest,
    change: &LogChange<'_>,
) -> Result<(LogAppend, Option<Broken>)> {
    let anchor = manifest.log_seq;
    // Read first in every case: it also puts right an etcd log head edited below cio.
    let tail = store.log_tail()?;
    // The whole log, for an acknowledgement's digest: the entry goes after its newest entry,
    // so a write in between makes the store refuse it (a conflict, read again).
    let (tail, digest) = match change.digest_log {
        Some(checked) => {
            let log = store.log()?;
            let digest = audit::prefix_digest(&log);
            if digest != checked {
                return Err(StoreError::Conflict {
                    name: "the change log".into(),
                }
                .into());
            }
            (log.last().cloned().or(tail), Some(digest))
        }
        None => (tail, None),
    };
    let tail_seq = tail.as_ref().map_or(0, |t| t.seq);
    let altered = tail
        .as_ref()
        .filter(|t| {
            audit::open(key, store_id, std::slice::from_ref(*t))
                .entries
                .is_empty()
        })
        .map(|t| Broken {
            seq: t.seq,
            // A store that names a newest entry it no longer holds (etcd's log head) hands
            // it over empty: it was deleted, as the whole log's check says.
            problem: if t.sealed.is_empty() {
                Problem::Truncated
            } else {
                Problem::Altered
            },
            through: None,
        });
    let truncated = (tail_seq < anchor).then_some(Broken {
        seq: tail_seq + 1,
        problem: Problem::Truncated,
        through: None,
    });
    // An entry that opens where the newest change's entry should be, but is not that one.
    let other_copy = tail
        .as_ref()
        .filter(|t| t.seq == anchor && !manifest.pins_log_entry(t))
        .map(|t| Broken {
            seq: t.seq,
            problem: Problem::OtherCopy,
            through: None,
        });
    let numbered = tail_seq.max(anchor).checked_add(1);
    let (seq, previous) = match numbered.filter(|s| *s <= MAX_LOG_SEQ) {
        Some(seq) => (seq, tail),
        None => after_newest_opening(store, key, store_id)?,
    };
    let mut entry = entry_for(seq, change);
    entry.prefix_sha256 = digest;
    let after = previous.as_ref().map_or(0, |p| p.seq);
    Ok((
        LogAppend {
            entry: audit::seal(key, store_id, &entry, previous.as_ref()),
            after,
        },
        truncated.or(altered).or(other_copy),
    ))
}

/// The number of a log entry after a newest entry numbered [`MAX_LOG_SEQ`], which leaves no
/// number after it: such an entry was written outside cio (a log of 2^63 changes is not
/// reached), so the entry is numbered after the newest entry that opens, with that entry as
/// its previous one. The forged entry stays, said by every check of the log. An error when
/// the number after the newest entry that opens is taken too.
fn after_newest_opening(
    store: &dyn Store,
    key: &Key,
    store_id: &str,
) -> Result<(u64, Option<LogRecord>)> {
    let log = store.log()?;
    let opens = |r: &LogRecord| {
        !audit::open(key, store_id, std::slice::from_ref(r))
            .entries
            .is_empty()
    };
    let newest = log.iter().rev().find(|r| opens(r));
    let seq = newest.map_or(1, |r| r.seq + 1);
    if log.iter().any(|r| r.seq == seq) {
        return Err(StoreError::Corrupt {
            location: store.location(),
            detail: format!(
                "its change log ends at entry {MAX_LOG_SEQ}, the highest number an entry can have, and that entry does not open (it was written outside cio), so no change can be logged after it"
            ),
        }
        .into());
    }
    Ok((seq, newest.cloned()))
}

/// The entry number `seq` of a log, for `change`, made now by this process's user.
pub(crate) fn entry_for(seq: u64, change: &LogChange<'_>) -> LogEntry {
    LogEntry {
        seq,
        at_ms: now_ms(),
        actor: actor(),
        command: change.command.to_string(),
        name: change.name.map(str::to_string),
        names: change.names.clone(),
        version: change.version,
        outcome: "ok".into(),
        detail: change.detail.clone(),
        prefix_sha256: None,
    }
}

impl CredentialStore {
    /// The change log, opened and checked: its entries, and the first broken one. A broken
    /// log is also noted in the store, so that the next changes on every node say so.
    pub fn change_log(&self) -> Result<LogReading> {
        for _ in 0..MAX_RETRIES {
            if let Some(reading) = self.change_log_once()? {
                return Ok(reading);
            }
        }
        Err(StoreError::Conflict {
            name: "the change log".into(),
        }
        .into())
    }

    /// [`CredentialStore::change_log`], once; `None` when it found a break while the store
    /// changed under the reading (the store's identity, its log and its records are read one
    /// after another: a write or a re-seal in between is no damage), to be read again.
    fn change_log_once(&self) -> Result<Option<LogReading>> {
        let Some(identity) = self.store.identity(false)? else {
            return Ok(Some(LogReading::default()));
        };
        let records = self.store.log()?;
        // The entry the manifest says the newest logged change wrote: the log must reach it
        // (a store whose records do not verify has no trusted anchor; its damage is said
        // by every read of the credentials).
        // `older`: the credentials end before the log does (put back from an earlier copy
        // while the log stayed): a log whole in itself that disagrees with them.
        let (anchor, pinned, older) = match self.verified() {
            Ok(Some(verified)) => {
                let pinned = records
                    .iter()
                    .find(|r| r.seq == verified.log_seq())
                    .is_none_or(|r| verified.manifest().pins_log_entry(r));
                // An entry past the manifest that no key opens stands where an entry showing
                // a rollback may have stood: said first, as credentials older than the log.
                let unanchored = verified.log_unopened.first().map(|r| Broken {
                    seq: r.seq,
                    problem: Problem::Unanchored,
                    through: None,
                });
                (verified.log_seq(), pinned, unanchored)
            }
            // A store a migration is still filling: its log is whole, the store is not, and
            // a log that checks out must not make it look so.
            Err(e @ Error::Store(StoreError::MigrationUnfinished { .. })) => return Err(e),
            Err(Error::Store(StoreError::RolledBack { entry, .. })) => (
                0,
                true,
                Some(Broken {
                    seq: entry,
                    problem: Problem::CredentialsOlder,
                    through: None,
                }),
            ),
            _ => (0, true, None),
        };
        if records.is_empty() && anchor == 0 {
            return Ok(Some(LogReading::default()));
        }
        let key = self.opening_key(&identity)?;
        let mut reading = audit::open(key, &identity.store_id, &records);
        let tail = records.last().map_or(0, |r| r.seq);
        if tail < anchor {
            let truncated = Broken {
                seq: tail + 1,
                problem: Problem::Truncated,
                through: None,
            };
            reading.add_break(truncated, false);
        }
        if !pinned {
            let other_copy = Broken {
                seq: anchor,
                problem: Problem::OtherCopy,
                through: None,
            };
            reading.add_break(other_copy, false);
        }
        if let Some(older) = older {
            // Said first, whatever breaks come before it in the log (the review's finding:
            // an entry deleted before the one the credentials lack hid them, and an
            // acknowledgement of that break then hid the rolled-back credentials).
            let refused = older.problem == Problem::CredentialsOlder;
            reading.add_break(older, true);
            // Not recorded when the store refuses every write until a whole copy is back.
            if refused {
                return Ok(Some(reading));
            }
        }
        if reading.broken.is_some() && !self.still_as_read(&identity)? {
            return Ok(None);
        }
        let recorded = self.damage_note()?;
        match (&reading.broken, recorded) {
            // Entries past the manifest that did not open, found before a write moved the
            // manifest past them: the note keeps them said while any is left (as one gone
            // once none is: [`gone`]), never replaced.
            // The note itself altered, deleted or put back (said as entry 0): what it said is
            // lost, and may have been the above; kept said first too, never replaced.
            (_, Some(recorded))
                if recorded.may_hide_a_rollback() && !reading.breaks.contains(&recorded) =>
            {
                let said = gone(&recorded, &reading.breaks).unwrap_or(recorded);
                reading.add_break(said, true);
            }
            (Some(broken), recorded) if recorded.as_ref() != Some(broken) => {
                self.record_damage(broken)?;
            }
            // A break found earlier stays said: a later entry may have taken the place of
            // deleted ones, so that the chain alone looks whole again.
            (None, Some(recorded)) => reading.add_break(recorded, true),
            _ => {}
        }
        Ok(Some(reading))
    }

    /// The change-log entry of `change`, a write on top of `verified`; a damaged log (its
    /// newest entry, its end, or a break an earlier check recorded) is noted for
    /// [`CredentialStore::log_damage`]. `None` when the store changed since `verified` was
    /// read (the write would lose its race anyway): read it again and retry.
    pub(super) fn next_log_entry(
        &self,
        key: &Key,
        verified: &Verified,
        change: &LogChange<'_>,
    ) -> Result<Option<LogAppend>> {
        self.check_damage_note()?;
        // Entries past the manifest that no key opens: recorded before this write moves the
        // manifest past them (see `change_log_once`).
        if let Some(first) = verified.log_unopened.first() {
            let unanchored = Broken {
                seq: first.seq,
                problem: Problem::Unanchored,
                through: None,
            };
            if self.damage_note()?.as_ref() != Some(&unanchored) {
                self.record_damage(&unanchored)?;
                return Ok(None);
            }
        }
        let (entry, damaged) = next_entry(
            self.store.as_ref(),
            key,
            &verified.identity.store_id,
            verified.manifest(),
            change,
        )?;
        // The log's tail is read after the records: a newest entry that does not open under
        // the key the records were read with, or a log shorter than they say, may be the
        // work of a writer in between (a re-seal under another key), not damage.
        if damaged.is_some() && !self.still_as_read(&verified.identity)? {
            return Ok(None);
        }
        // A break found by a write is recorded too: it is said by every later command, and
        // the chain alone says less of it (a deleted end reads as entries missing).
        if let Some(broken) = &damaged
            && self.log_damage().is_none()
        {
            self.record_damage(broken)?;
        }
        self.note_damage(damaged);
        Ok(Some(entry))
    }

    /// Whether the store is still as `identity` was read: the same key and manifest (every
    /// write, a re-seal too, replaces the manifest with one of a higher write number, so an
    /// unchanged manifest means no write in between).
    fn still_as_read(&self, identity: &Identity) -> Result<bool> {
        Ok(self.store.identity(false)?.as_ref() == Some(identity))
    }

    /// Records `broken` in the store's note of a broken log, for every later command on
    /// every node.
    fn record_damage(&self, broken: &Broken) -> Result<()> {
        let text = serde_json::to_string(broken)
            .expect("a break is a number and a word: it always serializes");
        self.write_notes(|key, store_id| damage_note(key, store_id, &text))
    }

    /// Accepts the change log as it is now, breaks and all: writes an `acknowledge` entry
    /// holding the digest of every entry before it ([`audit::prefix_digest`]) and sets the
    /// note of a broken log to none, in one write, if the log is still as checked (else it
    /// is checked again). From then on the breaks before it are not reported while those
    /// entries stay as they are. Refused for any break that may hide credentials put back
    /// from an earlier copy ([`Broken::may_hide_a_rollback`]); an entry past the manifest
    /// that did not open is accepted once it is gone ([`Problem::UnanchoredGone`]), as a
    /// whole earlier copy put back is. [`Acknowledged::Whole`] when there is no break.
    pub fn acknowledge_log(&self) -> Result<Acknowledged> {
        self.key_for_writing()?;
        let none = serde_json::to_string(&None::<Broken>).expect("no break serializes as null");
        for _ in 0..MAX_RETRIES {
            let reading = self.change_log()?;
            if reading.breaks.is_empty() {
                return Ok(Acknowledged::Whole {
                    since: reading.acknowledged,
                });
            }
            // What may hide credentials put back from an earlier copy is never accepted.
            if let Some(older) = reading.breaks.iter().find(|b| b.may_hide_a_rollback()) {
                return Err(Error::LogNotAcknowledgeable {
                    broken: older.clone(),
                });
            }
            let said: Vec<String> = reading.breaks.iter().map(ToString::to_string).collect();
            let change = LogChange {
                command: audit::ACKNOWLEDGE,
                name: None,
                names: Vec::new(),
                version: None,
                detail: Some(format!("accepted the log as it was: {}", said.join("; "))),
                digest_log: Some(&reading.digest),
            };
            match self.write_notes_once(
                &|key, store_id| damage_note(key, store_id, &none),
                Some(&change),
            ) {
                Ok(Some(seq)) => {
                    return Ok(Acknowledged::Accepted {
                        seq,
                        breaks: reading.breaks,
                    });
                }
                Ok(None) => {
                    return Err(StoreError::Unusable {
                        location: self.store.location(),
                        action: "read",
                        detail: "it has no manifest to pin the acknowledgement in".into(),
                    }
                    .into());
                }
                // Another writer, or the log changed since it was checked: check it again.
                Err(e) if self.worth_retrying(&e) => continue,
                Err(e) => return Err(self.writing_error(e)),
            }
        }
        Err(StoreError::Conflict {
            name: "the change log".into(),
        }
        .into())
    }

    /// A break that may hide credentials put back from an earlier copy
    /// ([`Broken::may_hide_a_rollback`]), as this command's reading found it or the store's
    /// note of an earlier break says it: for the commands that hand out values (show, env,
    /// exec), which check the log no further. One read of the notes.
    pub fn rollback_suspected(&self) -> Result<Option<Broken>> {
        if let Some(found) = self.log_damage().filter(Broken::may_hide_a_rollback) {
            return Ok(Some(found));
        }
        Ok(self.damage_note()?.filter(Broken::may_hide_a_rollback))
    }

    /// Whether this command found the change log damaged: its newest entry did not open when
    /// a change was logged, or an earlier check of the log found it broken. Say it once.
    pub fn log_damage(&self) -> Option<Broken> {
        self.log_damage.get().cloned()
    }

    /// Remembers a break this command found (the first one).
    pub(super) fn note_damage(&self, broken: Option<Broken>) {
        if let Some(broken) = broken {
            let _ = self.log_damage.set(broken);
        }
    }

    /// Reads the store's note of a broken log, once per command, into [`Self::log_damage`].
    pub(super) fn check_damage_note(&self) -> Result<()> {
        if self.log_damage.get().is_none() {
            let note = self.damage_note()?;
            self.note_damage(note);
        }
        Ok(())
    }

    pub(super) fn damage_note(&self) -> Result<Option<Broken>> {
        Ok(match self.read_notes()? {
            Some((reading, Some(key))) => damage_in(key, &reading),
            _ => None,
        })
    }
}

/// The store's note `recorded`, an entry past the manifest that did not open
/// ([`Problem::Unanchored`]), read as [`Problem::UnanchoredGone`] when the log as read now
/// (`breaks`) holds no entry that does not open, numbered past the manifest or not: the
/// entry the note names is gone, and so is every other one written outside cio (a write may
/// have moved the manifest past them, and the note names only the first). What they may
/// have stood in place of is gone as if deleted, and the log reads as a whole earlier copy's
/// would (cio cannot tell one put back, and accepts it), with at most the breaks of its own
/// that any check names and an acknowledgement accepts (the gap where they stood, say).
/// `None` for any other note, or while such an entry is left.
fn gone(recorded: &Broken, breaks: &[Broken]) -> Option<Broken> {
    let left = breaks.iter().any(|b| {
        matches!(
            b.problem,
            Problem::Altered
                | Problem::Unnumbered
                | Problem::Unanchored
                | Problem::CredentialsOlder
        )
    });
    (recorded.problem == Problem::Unanchored && !left).then_some(Broken {
        seq: recorded.seq,
        problem: Problem::UnanchoredGone,
        through: None,
    })
}

/// What [`CredentialStore::acknowledge_log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledged {
    /// The log had no break (`since`: after the acknowledgement of that number, which
    /// accepted those before it): nothing was written.
    Whole { since: Option<u64> },
    /// Entry `seq` accepted the log as it was, with `breaks`.
    Accepted { seq: u64, breaks: Vec<Broken> },
}

/// The note of a broken log, `text` (a [`Broken`] as JSON, or `null`: none), sealed.
fn damage_note(key: &Key, store_id: &str, text: &str) -> Vec<(String, Vec<u8>)> {
    let sealed = key.seal(
        &binding(store_id, DAMAGE_NOTE),
        &SecretValue::new(text.to_string()),
    );
    vec![(DAMAGE_NOTE.to_string(), sealed)]
}

/// The break recorded among the notes of `reading`, if any.
pub(super) fn damage_in(key: &Key, reading: &NoteReading) -> Option<Broken> {
    let found = reading.notes.iter().find(|(k, _)| k == DAMAGE_NOTE);
    let sealed = found.map(|(_, sealed)| sealed.as_slice());
    // A note of a break that does not open, that is not the one last written (an earlier
    // one put back) or that was deleted, was itself altered below cio: a break too (said as
    // entry 0), never a reason to stop every command.
    let altered = Some(Broken {
        seq: 0,
        problem: Problem::Altered,
        through: None,
    });
    if !reading.vouched(DAMAGE_NOTE, sealed) {
        return altered;
    }
    let sealed = sealed?;
    let Ok(text) = key.open(&binding(&reading.store_id, DAMAGE_NOTE), sealed) else {
        return altered;
    };
    // `null`: the breaks were acknowledged.
    serde_json::from_str::<Option<Broken>>(text.expose())
        .ok()
        .flatten()
}
