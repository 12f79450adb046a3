//! Record authentication: every byte of a store that a reader trusts is bound to the store
//! key, so a store changed record by record is refused, never answered from.
//!
//! Rules:
//! - every record carries an HMAC-SHA256 (`mac`) over all its fields — name, version,
//!   action, `restored_from`, time, sealed value, store write number (`seq`) — and over the
//!   store id and the key fingerprint, under a key derived from the store key (never the
//!   store key itself: [`MacKey`]);
//! - each record also carries the `mac` of its name's previous version (`prev_mac`), so a
//!   name's versions form a chain: a version deleted, duplicated, reordered or replaced by
//!   another (even one that verifies, from another time) breaks it;
//! - the store's manifest is the authenticated list of every name's newest version and its
//!   `mac`, with the store's write number, replaced by every write in the same transaction
//!   as the write's records. Deleting a name's newest version (to bring back a rotated-out
//!   secret), or all of its versions, no longer matches it;
//! - every read checks every name's whole chain ([`check_store`]), so a name with any damaged
//!   version is refused as a whole, and every other name still answers;
//! - a manifest older than the records (a manifest copied back from an earlier copy of the
//!   store while the records stayed) shows as a record whose `seq` is above the manifest's:
//!   the whole store is refused, since any name could have been rolled back;
//! - a whole earlier copy of the store (records and manifest together, as a backup holds
//!   them) is consistent, and is read as what it is;
//! - damage confined to a name is reported for that name only ([`Damage`]); everything else
//!   still reads. Damage to the manifest, store id or key fingerprint refuses the store;
//! - the notes beside the records (the sets' health records, the note of a broken change
//!   log) are sealed, and the manifest pins each by the SHA-256 of its sealed bytes
//!   ([`Manifest::notes`]): writing a note is a manifest swap like any write. A note put back
//!   from an earlier moment (it opens: it is genuine, only old), or deleted while pinned, no
//!   longer matches its pin and reads as altered, that note alone. A manifest that pins no
//!   note (written before pins, or before any note) vouches for none: its store's notes
//!   read as they are until the first note is written, which pins every note that opens.
//!
//! - the change log stays beside them: every logged write sets the manifest's `log_seq` to
//!   its entry in the same transaction, so a log entry that opens under a key of the store and is
//!   numbered past `log_seq` shows a manifest put back while the log stayed, and the whole
//!   store is refused too (`ledger::check_log_past`), whichever key of the keyring sealed it
//!   (a copy put back across a rekey).
//!
//! Limits: an earlier copy of one name restored together with an earlier manifest and the
//! log cut back to match, nothing else written since, reads as that earlier store: it is what
//! restoring a whole backup is. Likewise an earlier note put back with the manifest of its
//! time, when only notes were written since (recording a check is not a logged change).

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::store::{MAC_LEN, ReadRecord, Record};

type HmacSha256 = Hmac<Sha256>;

/// The version of the manifest format.
const MANIFEST_FORMAT: u32 = 1;
/// The longest manifest read (a few thousand names; cio has 24).
pub(crate) const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The key that authenticates records and manifests, derived from the store key with
/// HMAC-SHA256 under a label of its own (the store key itself only seals values).
pub(crate) struct MacKey(Zeroizing<[u8; 32]>);

impl MacKey {
    pub(crate) fn derive(store_key: &[u8; 32]) -> MacKey {
        let mut mac = new_mac(store_key);
        mac.update(b"cio-credential/record-mac-key/v1");
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        MacKey(out)
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .expect("HMAC accepts a key of any length; this one is 32 bytes")
}

/// What binds records to one store and one key.
pub(crate) struct Authenticator<'a> {
    key: &'a MacKey,
    store_id: &'a str,
    fingerprint: &'a str,
    /// The MAC keyed and fed the record domain, store id and fingerprint: every record's
    /// MAC starts from a copy of it (keying HMAC costs as much as a short record).
    record_prefix: HmacSha256,
}

/// Feeds one field: its length (8 bytes) then its bytes, so no two field lists collide.
fn field(mac: &mut HmacSha256, bytes: &[u8]) {
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

/// An HMAC keyed with `key` and fed `domain`, the store id and the key fingerprint.
fn start(key: &MacKey, store_id: &str, fingerprint: &str, domain: &[u8]) -> HmacSha256 {
    let mut mac = new_mac(key.0.as_slice());
    field(&mut mac, domain);
    field(&mut mac, store_id.as_bytes());
    field(&mut mac, fingerprint.as_bytes());
    mac
}

impl<'a> Authenticator<'a> {
    pub(crate) fn new(key: &'a MacKey, store_id: &'a str, fingerprint: &'a str) -> Self {
        Authenticator {
            key,
            store_id,
            fingerprint,
            record_prefix: start(key, store_id, fingerprint, b"cio-credential/record/v1"),
        }
    }

    fn record_mac(&self, r: &Record) -> HmacSha256 {
        let mut mac = self.record_prefix.clone();
        field(&mut mac, r.name.as_bytes());
        field(&mut mac, &r.version.to_be_bytes());
        field(&mut mac, r.action.as_str().as_bytes());
        match r.restored_from {
            Some(v) => field(&mut mac, &v.to_be_bytes()),
            None => field(&mut mac, b""),
        }
        field(&mut mac, &r.written_at_ms.to_be_bytes());
        match &r.sealed {
            Some(sealed) => {
                field(&mut mac, b"sealed");
                field(&mut mac, sealed);
            }
            None => field(&mut mac, b"removed"),
        }
        field(&mut mac, &r.seq.to_be_bytes());
        field(&mut mac, &r.prev_mac);
        mac
    }

    /// Sets `record.mac` for its fields (its `prev_mac` and `seq` already set).
    pub(crate) fn sign(&self, record: &mut Record) {
        record.mac = self.record_mac(record).finalize().into_bytes().to_vec();
    }

    /// Whether `record.mac` is the MAC of its fields (compared in constant time).
    pub(crate) fn verifies(&self, record: &Record) -> bool {
        self.record_mac(record).verify_slice(&record.mac).is_ok()
    }

    fn manifest_mac(&self, m: &Manifest) -> HmacSha256 {
        let mut mac = start(
            self.key,
            self.store_id,
            self.fingerprint,
            b"cio-credential/manifest/v1",
        );
        field(&mut mac, &m.seq.to_be_bytes());
        field(&mut mac, &(m.heads.len() as u64).to_be_bytes());
        for (name, head) in &m.heads {
            field(&mut mac, name.as_bytes());
            field(&mut mac, &head.version.to_be_bytes());
            field(&mut mac, &head.mac);
        }
        // Only when set, so the manifests written before `key_home` existed still verify.
        if let Some(home) = &m.key_home {
            field(&mut mac, b"key_home");
            field(&mut mac, home.as_bytes());
        }
        // Likewise, for the manifests written before the change log.
        if m.log_seq != 0 {
            field(&mut mac, b"log_seq");
            field(&mut mac, &m.log_seq.to_be_bytes());
        }
        // And for those written before the entry itself was pinned.
        if !m.log_tag.is_empty() {
            field(&mut mac, b"log_tag");
            field(&mut mac, &m.log_tag);
        }
        // And for those written before re-seals recorded the keys they replaced.
        if !m.sealed_before.is_empty() {
            field(&mut mac, b"sealed_before");
            field(&mut mac, &(m.sealed_before.len() as u64).to_be_bytes());
            for fingerprint in &m.sealed_before {
                field(&mut mac, fingerprint.as_bytes());
            }
        }
        // And for those written before notes were pinned.
        if !m.notes.is_empty() {
            field(&mut mac, b"notes");
            field(&mut mac, &(m.notes.len() as u64).to_be_bytes());
            for (key, digest) in &m.notes {
                field(&mut mac, key.as_bytes());
                field(&mut mac, digest);
            }
        }
        // Only while a migration is under way (every other manifest has none).
        if let Some(source) = &m.migrating_from {
            field(&mut mac, b"migrating_from");
            field(&mut mac, source.as_bytes());
        }
        mac
    }

    /// The manifest as stored: JSON with its MAC.
    pub(crate) fn seal_manifest(&self, m: &Manifest) -> Vec<u8> {
        let mac = self.manifest_mac(m).finalize().into_bytes();
        let json = ManifestJson {
            format: MANIFEST_FORMAT,
            seq: m.seq,
            heads: m
                .heads
                .iter()
                .map(|(name, h)| {
                    (
                        name.clone(),
                        HeadJson {
                            version: h.version,
                            mac: hex::encode(&h.mac),
                        },
                    )
                })
                .collect(),
            key_home: m.key_home.clone(),
            log_seq: m.log_seq,
            log_tag: hex::encode(&m.log_tag),
            sealed_before: m.sealed_before.clone(),
            notes: m
                .notes
                .iter()
                .map(|(key, digest)| (key.clone(), hex::encode(digest)))
                .collect(),
            migrating_from: m.migrating_from.clone(),
            mac: hex::encode(mac),
        };
        serde_json::to_vec(&json).expect("a manifest of strings and numbers serializes to JSON")
    }

    /// Reads a stored manifest and checks its MAC; the error says what is wrong.
    pub(crate) fn open_manifest(&self, bytes: &[u8]) -> Result<Manifest, &'static str> {
        let (manifest, mac) = decode_manifest(bytes)?;
        self.manifest_mac(&manifest).verify_slice(&mac).map_err(
            |_| "its manifest does not verify under this key (it was altered or replaced)",
        )?;
        Ok(manifest)
    }
}

/// The newest version of one name, as the manifest pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub version: u64,
    pub mac: Vec<u8>,
}

/// The store's manifest: its write number and every name's newest version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// How many writes the store has had (the `seq` of its newest record or purge).
    pub seq: u64,
    pub heads: BTreeMap<String, Head>,
    /// Where the key that re-sealed the store lives (`host:path` of its key file), set by
    /// `rekey`; a node without that key names it in its error.
    pub key_home: Option<String>,
    /// The number of the change-log entry written with the newest logged change (0: none
    /// yet): the log must reach it, so that entries deleted from its end are told.
    pub log_seq: u64,
    /// The tag of that entry ([`crate::audit::tag_of`]; it chains every entry before it):
    /// the log must hold that very entry there, so that entries put in from another copy
    /// of the store (which open, and chain) are told. Empty: a manifest written before the
    /// entry was pinned, which vouches for any.
    pub log_tag: Vec<u8>,
    /// The fingerprints of the keys that sealed the store before its current key, oldest
    /// first, at most [`MAX_SEALED_BEFORE`]; set by `rekey`. A node whose current key is one
    /// of them is behind the rotation: a re-seal from it would go back to a retired key.
    pub sealed_before: Vec<String>,
    /// Each note's key and the SHA-256 of its sealed bytes as last written ([`note_digest`]):
    /// a note that does not match, or is missing, was put back or deleted below cio. Empty:
    /// no note pinned yet, every note reads as it is.
    pub notes: BTreeMap<String, Vec<u8>>,
    /// Set while a migration copies another store into this one, in several writes: where
    /// it copies from. Each write but the last sets it, the last clears it, so a store
    /// copied in part (the newest access key beside an old secret key) is never read as
    /// whole: every reading but the migration's refuses it ([`crate::migrate`]).
    pub migrating_from: Option<String>,
}

impl Manifest {
    /// Whether `record`, found numbered `log_seq`, is the entry the newest logged change
    /// wrote: this manifest pins its tag (one written before the pin vouches for any).
    pub(crate) fn pins_log_entry(&self, record: &crate::store::LogRecord) -> bool {
        self.log_tag.is_empty()
            || crate::audit::tag_of(record).is_some_and(|tag| tag == self.log_tag)
    }

    /// This manifest with `log` as the entry of the newest logged change.
    pub(crate) fn logging(&mut self, log: &crate::store::LogAppend) {
        self.log_seq = log.entry.seq;
        self.log_tag = crate::audit::tag_of(&log.entry).unwrap_or_default();
    }

    /// Whether `sealed`, found as note `key` (`None`: no such note), is the note this
    /// manifest pins: the one last written, or any note when the manifest pins none.
    pub(crate) fn vouches_for_note(&self, key: &str, sealed: Option<&[u8]>) -> bool {
        if self.notes.is_empty() {
            return true;
        }
        match (self.notes.get(key), sealed) {
            (None, None) => true,
            (Some(pin), Some(sealed)) => *pin == note_digest(sealed),
            _ => false,
        }
    }
}

/// What the manifest pins a note by: the SHA-256 of its sealed bytes (nonce, ciphertext and
/// tag: a note sealed again differs in its random nonce, so every write has its own).
pub(crate) fn note_digest(sealed: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    Sha256::digest(sealed).to_vec()
}

/// How many earlier store keys a manifest remembers (the oldest are dropped).
pub(crate) const MAX_SEALED_BEFORE: usize = 16;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestJson {
    format: u32,
    seq: u64,
    heads: BTreeMap<String, HeadJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_home: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    log_seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    log_tag: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sealed_before: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    notes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migrating_from: Option<String>,
    mac: String,
}

/// A manifest as any cio writes it: the fields every version has, anything else allowed.
#[derive(Deserialize)]
struct AnyManifestJson {
    #[serde(rename = "format")]
    _format: u32,
    #[serde(rename = "mac")]
    _mac: String,
}

/// Why a manifest is not read: a newer cio wrote it. Said as such (see
/// [`crate::store::StoreError::Newer`]), never as damage, whose hint is a backup.
pub(crate) const NEWER_MANIFEST: &str = "its manifest has a format or fields this cio does not know: written by a newer cio, or altered below cio (this cio cannot check which)";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadJson {
    version: u64,
    mac: String,
}

/// The `log_seq` a stored manifest claims, read without checking its MAC (0 when it claims
/// none or is not readable): which change-log entries a store's reading hands over with it
/// ([`crate::store::Snapshot::log_past`]), to be checked once the manifest is.
pub(crate) fn claimed_log_seq(bytes: &[u8]) -> u64 {
    #[derive(Deserialize)]
    struct Claimed {
        #[serde(default)]
        log_seq: u64,
    }
    serde_json::from_slice::<Claimed>(bytes).map_or(0, |c| c.log_seq)
}

/// Parses a stored manifest without checking its MAC: the manifest and the MAC it claims.
/// For [`Authenticator::open_manifest`], and the fuzz target.
pub(crate) fn decode_manifest(bytes: &[u8]) -> Result<(Manifest, Vec<u8>), &'static str> {
    const UNREADABLE: &str = "its manifest is not readable (it was damaged or replaced)";
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(UNREADABLE);
    }
    let json: ManifestJson = match serde_json::from_slice(bytes) {
        Ok(json) => json,
        // Fields this cio does not know, in an otherwise well-formed manifest: a newer cio
        // wrote it (each addition is written only once it is used, as `key_home`).
        Err(_) if serde_json::from_slice::<AnyManifestJson>(bytes).is_ok() => {
            return Err(NEWER_MANIFEST);
        }
        Err(_) => return Err(UNREADABLE),
    };
    if json.format != MANIFEST_FORMAT {
        return Err(NEWER_MANIFEST);
    }
    let mac_of = |text: &str| {
        hex::decode(text)
            .ok()
            .filter(|m| m.len() == MAC_LEN)
            .ok_or(UNREADABLE)
    };
    let mut heads = BTreeMap::new();
    for (name, head) in json.heads {
        if head.version == 0 {
            return Err(UNREADABLE);
        }
        heads.insert(
            name,
            Head {
                version: head.version,
                mac: mac_of(&head.mac)?,
            },
        );
    }
    let mut notes = BTreeMap::new();
    for (key, digest) in json.notes {
        notes.insert(key, mac_of(&digest)?);
    }
    let log_tag = if json.log_tag.is_empty() {
        Vec::new()
    } else {
        mac_of(&json.log_tag)?
    };
    let manifest = Manifest {
        seq: json.seq,
        heads,
        key_home: json.key_home,
        log_seq: json.log_seq,
        log_tag,
        sealed_before: json.sealed_before,
        notes,
        migrating_from: json.migrating_from,
    };
    Ok((manifest, mac_of(&json.mac)?))
}

/// Why one name cannot be answered from. The text never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// A record that cannot be read at all.
    #[error("a record of it cannot be read ({0})")]
    Unreadable(String),
    /// A record whose MAC does not match its fields.
    #[error("version {0} does not verify under the store key (it was altered)")]
    Altered(u64),
    /// The manifest names the name; the store has none of its versions.
    #[error("its versions were deleted from the store")]
    Deleted,
    /// The newest version is not the one the manifest pins.
    #[error(
        "its newest version {expected} is missing or was replaced (the store holds version {found} as its newest)"
    )]
    NotNewest { expected: u64, found: u64 },
    /// Versions exist for a name the manifest does not know (put back after a purge).
    #[error("version {0} was put back after the name was purged")]
    PutBack(u64),
    /// The versions are not the chain 1, 2, ... n.
    #[error(
        "its history is broken at version {0} (a version was deleted, duplicated, reordered or replaced)"
    )]
    Broken(u64),
}

/// The whole store is refused: a record is newer than the manifest, so the manifest was put
/// back from an earlier copy while records stayed, and any name may have been rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestOutrun {
    pub name: String,
    pub seq: u64,
    pub manifest_seq: u64,
}

impl std::fmt::Display for ManifestOutrun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a record of {} was written after its manifest (write {} of {}): the manifest was put back from an earlier copy",
            self.name, self.seq, self.manifest_seq
        )
    }
}

/// Every name's whole history, checked: per name, its versions oldest first, or the damage
/// that keeps it from being answered from. `records` are every record of the store, by name
/// then version. Err when the manifest is older than a record that verifies.
pub(crate) fn check_store(
    auth: &Authenticator<'_>,
    manifest: &Manifest,
    records: Vec<ReadRecord>,
) -> Result<BTreeMap<String, Result<Vec<Record>, Damage>>, ManifestOutrun> {
    if let Some(r) = records
        .iter()
        .flatten()
        .find(|r| r.seq > manifest.seq && auth.verifies(r))
    {
        return Err(ManifestOutrun {
            name: r.name.clone(),
            seq: r.seq,
            manifest_seq: manifest.seq,
        });
    }
    fn name_of(read: &ReadRecord) -> &str {
        match read {
            Ok(r) => &r.name,
            Err(u) => &u.name,
        }
    }
    // Grouped by name, each name's records in the order given (a stable sort; the SQLite
    // store reads them sorted already): no name is copied per record.
    let mut records = records;
    records.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut checked = BTreeMap::new();
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let name = name_of(&first).to_string();
        let mut reads = vec![first];
        while let Some(read) = rest.next_if(|r| name_of(r) == name) {
            reads.push(read);
        }
        let history = check_history(auth, manifest, &name, reads);
        checked.insert(name, history);
    }
    for name in manifest.heads.keys() {
        if !checked.contains_key(name) {
            checked.insert(
                name.clone(),
                check_history(auth, manifest, name, Vec::new()),
            );
        }
    }
    Ok(checked)
}

/// A name's whole history, checked: versions 1 to n, each verifying, each chained to the one
/// before, the newest the manifest's. `records` are the store's, oldest first.
pub(crate) fn check_history(
    auth: &Authenticator<'_>,
    manifest: &Manifest,
    name: &str,
    records: Vec<ReadRecord>,
) -> Result<Vec<Record>, Damage> {
    let mut chain: Vec<Record> = Vec::with_capacity(records.len());
    for read in records {
        let r = read.map_err(|u| Damage::Unreadable(u.detail))?;
        if !auth.verifies(&r) {
            return Err(Damage::Altered(r.version));
        }
        let expected_prev: &[u8] = chain.last().map_or(&[], |p| &p.mac);
        let in_order = r.name == name
            && r.version == chain.len() as u64 + 1
            && r.prev_mac == expected_prev
            && chain.last().is_none_or(|p| p.seq < r.seq);
        if !in_order {
            return Err(Damage::Broken(chain.len() as u64 + 1));
        }
        chain.push(r);
    }
    match (manifest.heads.get(name), chain.last()) {
        (None, None) => Ok(chain),
        (Some(_), None) => Err(Damage::Deleted),
        (None, Some(last)) => Err(Damage::PutBack(last.version)),
        (Some(h), Some(last)) if h.version == last.version && h.mac == last.mac => Ok(chain),
        (Some(h), Some(last)) => Err(Damage::NotNewest {
            expected: h.version,
            found: last.version,
        }),
    }
}

#[cfg(test)]
#[path = "integrity_tests.rs"]
mod tests;
