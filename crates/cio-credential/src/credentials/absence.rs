//! [`CredentialStore::absent`]: why a name holds no value, as far as the store can tell: its
//! newest version is a removal, or it has none, because it was purged (its change log records
//! the purge) or never written (the log, whole from the store's first change, records nothing
//! of it); when the log cannot say (it begins with a migration, which left the earlier log in
//! the source store, or it is damaged), both are possible.

use super::CredentialStore;
use crate::audit;
use crate::catalog::CredentialName;
use crate::error::Error;

/// Why a name holds no value ([`Error::Absent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// Its newest version is a removal: `restore` brings it back.
    Removed,
    /// The change log records its purge: every version was destroyed.
    Purged,
    /// It has no version, and the change log, whole from the store's first change, records
    /// none of it.
    NeverWritten,
    /// It has no version, and the change log cannot tell a purge from a name never written.
    PurgedOrNeverWritten,
}

impl CredentialStore {
    /// The error for `name` holding no value, saying why ([`Absence`]). Read only: a change
    /// log found damaged here is not recorded (the command that asks has failed, and changes
    /// nothing); any read that fails makes the answer [`Absence::PurgedOrNeverWritten`].
    pub fn absent(&self, name: CredentialName) -> Error {
        let why = self.absence(name).unwrap_or(Absence::PurgedOrNeverWritten);
        Error::Absent { name, why }
    }

    fn absence(&self, name: CredentialName) -> Option<Absence> {
        let text = name.to_string();
        // A store without an id (none made yet) holds nothing and never did.
        let Some(verified) = self.verified().ok()? else {
            return Some(Absence::NeverWritten);
        };
        if verified.newest(&text).ok()?.is_some() {
            return Some(Absence::Removed);
        }
        let identity = &verified.identity;
        let records = self.store.log().ok()?;
        let reading = audit::open(
            self.opening_key(identity).ok()?,
            &identity.store_id,
            &records,
        );
        let reaches_anchor = records.last().map_or(0, |r| r.seq) >= verified.log_seq();
        // A log with a break, or one whose breaks were accepted (`log --acknowledge`: entries
        // may be missing before it), cannot tell.
        if reading.broken.is_some()
            || reading.acknowledged.is_some()
            || !reaches_anchor
            || self.damage_note().ok()?.is_some()
        {
            return None;
        }
        let about_name = |e: &&audit::LogEntry| {
            e.name.as_deref() == Some(text.as_str()) || e.names.contains(&text)
        };
        if reading
            .entries
            .iter()
            .rev()
            .find(about_name)
            .is_some_and(|e| e.command == "purge")
        {
            return Some(Absence::Purged);
        }
        let from_the_first_change = reading
            .entries
            .first()
            .is_none_or(|e| e.seq == 1 && e.command != "migrate");
        Some(if from_the_first_change {
            Absence::NeverWritten
        } else {
            Absence::PurgedOrNeverWritten
        })
    }
}
