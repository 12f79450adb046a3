//! The notes beside the credentials (each set's health record, the note of a broken change
//! log), read and written with the manifest that pins them.
//!
//! Rules (the pins themselves are [`crate::integrity`]'s):
//! - every note is sealed under the store key, bound to the store id and its own key, so a
//!   note moved to another key or store does not open;
//! - every note written replaces the manifest in the same write, pinning the note's sealed
//!   bytes: a note put back from an earlier moment, or deleted, is told from the one last
//!   written and reads as altered (that note alone), while a whole earlier copy of the store
//!   (notes and manifest together) reads as it was;
//! - writing a note is a write like a credential's: of two writers that read one manifest,
//!   one wins and the other reads again and retries; a note is never a change (not logged);
//! - a reading takes the manifest first, then the notes: a note that does not match its pin
//!   is checked once more against the manifest as it is now, so that a note written between
//!   the two reads is not taken for one put back.

use std::collections::BTreeSet;

use super::log::{LogChange, next_entry};
use super::{CredentialStore, MAX_RETRIES};
use crate::crypto::{Binding, Key};
use crate::error::Result;
use crate::integrity::{Manifest, note_digest};
use crate::ledger;
use crate::store::{Identity, StoreError};

/// How many times a reading is taken again when notes were written while it was taken.
const MAX_REREADS: usize = 8;

/// What a note is sealed to: the store and the note's key.
pub(crate) fn binding<'a>(store_id: &'a str, key: &'a str) -> Binding<'a> {
    Binding {
        store_id,
        name: key,
        version: 0,
    }
}

/// The notes of a store as read, with the manifest that pins them.
pub(crate) struct NoteReading {
    pub store_id: String,
    /// The verified manifest; `None` for a store never written (nothing pins its notes).
    manifest: Option<Manifest>,
    /// Every note, `(key, sealed)`, by key.
    pub notes: Vec<(String, Vec<u8>)>,
}

impl NoteReading {
    /// Whether the note `key`, as read (`None`: absent), is the one last written: a note put
    /// back from an earlier moment or deleted is not.
    pub fn vouched(&self, key: &str, sealed: Option<&[u8]>) -> bool {
        self.manifest
            .as_ref()
            .is_none_or(|m| m.vouches_for_note(key, sealed))
    }

    /// The keys of the notes the manifest pins that are no longer there (deleted below cio).
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        let present: BTreeSet<&str> = self.notes.iter().map(|(k, _)| k.as_str()).collect();
        self.manifest
            .iter()
            .flat_map(|m| m.notes.keys())
            .map(String::as_str)
            .filter(move |k| !present.contains(k))
    }

    /// Whether every note is the one last written and none is missing.
    fn all_vouched(&self) -> bool {
        self.missing().next().is_none()
            && self
                .notes
                .iter()
                .all(|(k, sealed)| self.vouched(k, Some(sealed)))
    }
}

impl CredentialStore {
    /// The store's notes with the manifest that pins them, and the key that opens them
    /// (`None` when no note can need one: a store never sealed). `None` when the store does
    /// not exist.
    pub(crate) fn read_notes(&self) -> Result<Option<(NoteReading, Option<&Key>)>> {
        let mut reread = 0;
        loop {
            let Some(identity) = self.store.identity(false)? else {
                return Ok(None);
            };
            let notes = self.store.notes()?;
            if identity.key_fingerprint.is_none() && notes.is_empty() {
                let reading = NoteReading {
                    store_id: identity.store_id,
                    manifest: None,
                    notes,
                };
                return Ok(Some((reading, None)));
            }
            let key = self.opening_key(&identity)?;
            let manifest = self.verified_manifest(&identity, key)?;
            let reading = NoteReading {
                store_id: identity.store_id.clone(),
                manifest,
                notes,
            };
            // A note written after the manifest was read carries a newer pin: read again.
            if reading.all_vouched()
                || reread == MAX_REREADS
                || self.store.identity(false)?.as_ref() == Some(&identity)
            {
                return Ok(Some((reading, Some(key))));
            }
            reread += 1;
        }
    }

    /// Writes the notes `seal` makes (sealed with the key of the store as read, for its id),
    /// pinned in the manifest, retrying when another writer got there first. The first note
    /// written under a manifest that pins none also pins every note that opens (written by an
    /// earlier cio: the notes as they are are all there is to trust).
    pub(crate) fn write_notes(
        &self,
        seal: impl Fn(&Key, &str) -> Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        for _ in 0..MAX_RETRIES {
            match self.write_notes_once(&seal, None) {
                Err(e) if self.worth_retrying(&e) => continue,
                other => return other.map(|_| ()).map_err(|e| self.writing_error(e)),
            }
        }
        Err(StoreError::Conflict {
            name: "the store's manifest".into(),
        }
        .into())
    }

    /// [`CredentialStore::write_notes`], once (a lost race is [`StoreError::Conflict`]); with
    /// `change`, its change-log entry goes in with the notes (a change of the log alone), and
    /// its number is returned.
    pub(crate) fn write_notes_once(
        &self,
        seal: &impl Fn(&Key, &str) -> Vec<(String, Vec<u8>)>,
        change: Option<&LogChange<'_>>,
    ) -> Result<Option<u64>> {
        let identity = self.existing_identity()?;
        let key = self.key(&identity, false)?;
        let store = self.store.as_ref();
        let mut manifest = self.verified_manifest(&identity, key)?;
        let notes = seal(key, &identity.store_id);
        if let Some(manifest) = &mut manifest {
            if manifest.notes.is_empty() {
                for (note, sealed) in store.notes()? {
                    if key
                        .open(&binding(&identity.store_id, &note), &sealed)
                        .is_ok()
                    {
                        manifest.notes.insert(note, note_digest(&sealed));
                    }
                }
            }
            for (note, sealed) in &notes {
                manifest.notes.insert(note.clone(), note_digest(sealed));
            }
        }
        let log = match (change, &mut manifest) {
            (Some(change), Some(manifest)) => {
                let (log, _) = next_entry(store, key, &identity.store_id, manifest, change)?;
                manifest.logging(&log);
                Some(log)
            }
            _ => None,
        };
        let written = log.as_ref().map(|l| l.entry.seq);
        ledger::put_notes(
            store,
            key,
            &identity,
            manifest.as_ref(),
            &notes,
            log.as_ref(),
        )?;
        Ok(written)
    }

    /// The identity of a store that must exist (a note is written only beside credentials).
    fn existing_identity(&self) -> Result<Identity> {
        self.store.identity(false)?.ok_or_else(|| {
            StoreError::Unusable {
                location: self.store.location(),
                action: "read",
                detail: "it disappeared while a note was being written".into(),
            }
            .into()
        })
    }
}
