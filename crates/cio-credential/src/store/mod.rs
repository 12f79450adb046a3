//! Where sealed credentials live: one [`Store`] trait, and its backends.
//!
//! Rules:
//! - a backend holds only ciphertext and metadata; sealing happens above it (in
//!   [`crate::credentials`]), so every backend gets encryption for free;
//! - every write appends a new version of a name; nothing but [`Store::purge`] destroys a
//!   version, so a replaced or removed value can always be brought back;
//! - an append is conditioned on the latest version the writer saw: of two writers racing,
//!   one gets [`StoreError::Conflict`] and retries from a fresh read, so no update is lost;
//! - the store records the fingerprint of the key that sealed it, and refuses an append
//!   sealed by another key, so a store never mixes keys;
//! - every write also replaces the store's manifest, conditioned on the manifest the writer
//!   read, in the same transaction; what the fields and the manifest mean, and their
//!   authentication, is [`crate::integrity`]'s: a backend only keeps bytes;
//! - a record a backend cannot decode is returned as [`Undecodable`], naming it, so that one
//!   damaged record affects only its credential.

pub mod etcd;
#[cfg(test)]
pub(crate) mod interleaved;
#[cfg(test)]
pub mod memory;
pub mod sqlite;
mod sqlite_file;
pub(crate) mod sqlite_row;
#[cfg(test)]
pub(crate) mod suite;

use std::path::PathBuf;

use serde::Serialize;

/// What a version records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The first value of a name (or the first after a remove).
    Create,
    /// A new value replacing a live one.
    Update,
    /// The name was removed; the version holds no value.
    Remove,
    /// An earlier value was brought back.
    Restore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Remove => "remove",
            Action::Restore => "restore",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        [
            Action::Create,
            Action::Update,
            Action::Remove,
            Action::Restore,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One record: one version of one credential, as a backend keeps it. Every field is bound
/// to the store key by `mac` ([`crate::integrity`]); a backend stores and returns the fields
/// as they are and checks none of them beyond its own format.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    /// 1 for the first write of a name, then one more for each write.
    pub version: u64,
    pub action: Action,
    /// For [`Action::Restore`]: the version whose value was brought back.
    pub restored_from: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub written_at_ms: i64,
    /// nonce || ciphertext; `None` for [`Action::Remove`].
    pub sealed: Option<Vec<u8>>,
    /// The store's write number at this record: one more than the manifest's before it.
    pub seq: u64,
    /// The `mac` of the name's previous version (empty for version 1): the name's chain.
    pub prev_mac: Vec<u8>,
    /// HMAC-SHA256 over every field above, the store id and the key fingerprint.
    pub mac: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("action", &self.action)
            .field("restored_from", &self.restored_from)
            .field("written_at_ms", &self.written_at_ms)
            .field("sealed", &self.sealed.as_ref().map(|s| s.len()))
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// Whether the name holds a value at this version (it was not removed).
    pub fn is_live(&self) -> bool {
        self.sealed.is_some()
    }
}

/// What to do about a write past the file-size limit, for the store and the key file alike.
pub(crate) const FILE_SIZE_LIMIT_HINT: &str = "raise the file-size limit (ulimit -f unlimited; LimitFSIZE= in a systemd unit), then run the command again";

/// The highest number a change-log entry can have on every backend (SQLite's integers are
/// signed 64-bit).
pub(crate) const MAX_LOG_SEQ: u64 = i64::MAX as u64;

/// One entry of a store's change log, as a backend keeps it: its number (1, 2, ...; a gap
/// only where entries were deleted below cio, see [`LogAppend`]) and its sealed bytes (see [`crate::audit`]).
#[derive(Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub sealed: Vec<u8>,
}

/// A change-log entry to write, and the entry it goes after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppend {
    pub entry: LogRecord,
    /// The number of the log's newest entry as read, which `entry` follows (0: the log was
    /// empty): `entry.seq - 1`, or less when the entries after it were deleted below cio.
    /// Their numbers are not given again, so the log keeps saying they are missing.
    pub after: u64,
}

impl LogAppend {
    /// `entry`, written right after the entry numbered before it.
    pub fn next(entry: LogRecord) -> LogAppend {
        let after = entry.seq.saturating_sub(1);
        LogAppend { entry, after }
    }
}

impl std::fmt::Debug for LogRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRecord")
            .field("seq", &self.seq)
            .field("sealed", &self.sealed.len())
            .finish()
    }
}

/// The length of a record's MAC (HMAC-SHA256).
pub(crate) const MAC_LEN: usize = 32;

/// Checks the fields a backend decoded, for the limits every reader relies on (so nothing
/// downstream can overflow or panic on stored bytes): the error says which field is wrong.
pub(crate) fn check_fields(r: &Record) -> Result<(), &'static str> {
    /// The last millisecond of the year 9999: times past it cannot be shown as dates.
    const MAX_TIME_MS: i64 = 253_402_300_799_999;
    /// The largest sealed value: nonce, tag, and the largest value (64 KiB of PEM) with room.
    const MAX_SEALED: usize = 24 + 16 + 128 * 1024;
    if r.version == 0 || r.version >= i64::MAX as u64 {
        return Err("its version number is out of range");
    }
    if r.seq == 0 || r.seq >= i64::MAX as u64 {
        return Err("its write number is out of range");
    }
    if !(0..=MAX_TIME_MS).contains(&r.written_at_ms) {
        return Err("its time is out of range");
    }
    if r.restored_from.is_some_and(|v| v == 0 || v >= r.version) {
        return Err("it restores a version that cannot exist");
    }
    if r.restored_from.is_some() != (r.action == Action::Restore) {
        return Err("its action and origin disagree");
    }
    match &r.sealed {
        None if r.action != Action::Remove => return Err("it has no value"),
        Some(_) if r.action == Action::Remove => return Err("a removal holds a value"),
        Some(s) if s.len() < 24 + 16 || s.len() > MAX_SEALED => {
            return Err("its sealed value has an impossible length");
        }
        _ => {}
    }
    if r.mac.len() != MAC_LEN || !(r.prev_mac.is_empty() || r.prev_mac.len() == MAC_LEN) {
        return Err("its authentication code has an impossible length");
    }
    Ok(())
}

/// A record a backend holds but cannot decode (a field of the wrong type, out of range, an
/// unknown action): the name it is stored under, and what is wrong, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub name: String,
    pub detail: String,
}

/// A record as a backend reads it back: decoded, or why not. One damaged record never keeps
/// the others from being read.
pub type ReadRecord = Result<Record, Undecodable>;

/// A store's identity (with its manifest) and records, read at one moment: what a reader
/// verifies together, so that a concurrent writer can never make them disagree.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub identity: Identity,
    pub records: Vec<ReadRecord>,
    /// The change-log entries numbered past the `log_seq` the manifest claims, at the same
    /// moment (read by [`crate::integrity::claimed_log_seq`], before the manifest is checked;
    /// none when it claims none). One that opens under the store's key shows a manifest put
    /// back from an earlier copy; normally there is none.
    pub log_past: Vec<LogRecord>,
}

/// The manifest a write replaces: written only if the store's id is still `store_id` and
/// its manifest still `expected` (`None`: the store has none yet), atomically with the
/// write's records. The id is compared too: a write is sealed for one store, and a store
/// whose id changed since it was read (another store's file or keys put in its place, or its
/// id edited) would otherwise take records it can never open when it has no manifest either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSwap {
    pub store_id: String,
    pub expected: Option<Vec<u8>>,
    pub new: Vec<u8>,
}

/// What a store is: its random id (bound into every sealed value) and the fingerprint of
/// the key that seals it, once something was written, and its manifest (the authenticated
/// list of every name's newest record, [`crate::integrity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub store_id: String,
    pub key_fingerprint: Option<String>,
    pub manifest: Option<Vec<u8>>,
}

/// How a location names an etcd key prefix, for hints.
const ETCD_FORM: &str = "etcd://HOST:PORT/PREFIX";

/// What can go wrong with a store. Every message names the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{location} is not a cio credential store: {detail}")]
    Foreign { location: String, detail: String },
    /// The path of an embedded store names what can never be one: a folder, a FIFO, socket
    /// or device, or a file of a kernel file system (/proc, /sys). `what`: which, in words
    /// ("a device", "a file of the kernel's /proc file system, not one on a disk").
    #[error("{location} is not a cio credential store: it is {what}")]
    NotAFile { location: String, what: String },
    #[error("the credential store {location} is damaged: {detail}")]
    Corrupt { location: String, detail: String },
    /// The change log holds entry `entry`, which opens, past the entry `log_seq` the
    /// manifest's newest logged change wrote: the credentials (manifest and records) were put
    /// back from an earlier copy while the log stayed, so any credential may be older than
    /// the log says.
    #[error(
        "the credential store {location} is damaged: its change log has entry {entry}, written after its manifest (which ends at entry {log_seq}): the manifest was put back from an earlier copy, so any credential may have been rolled back"
    )]
    RolledBack {
        location: String,
        entry: u64,
        log_seq: u64,
    },
    /// An etcd key prefix inside another cio store's, or with one below it: a command on one
    /// store would change the other's keys.
    #[error(
        "the credential store {location} shares its keys with another cio credential store: {detail}; nothing was changed"
    )]
    Overlap { location: String, detail: String },
    /// Written by a newer cio than this one, or altered below cio: this cio cannot tell.
    #[error("the credential store {location} cannot be read by this cio: {detail}")]
    Newer { location: String, detail: String },
    #[error("the credential store {location} cannot be {action}: {detail}")]
    Unusable {
        location: String,
        action: &'static str,
        detail: String,
    },
    #[error("no space left on the device of the credential store {location}; nothing was changed")]
    NoSpace { location: String },
    /// A write past this process's file-size limit (`RLIMIT_FSIZE`, `ulimit -f`): EFBIG.
    #[error(
        "the credential store {location} cannot grow past this process's file-size limit (ulimit -f); nothing was changed"
    )]
    FileSizeLimit { location: String },
    /// The file is being changed by something other than cio: it is empty (cio never leaves
    /// an empty store file: a new store appears whole), or it changed while a write copied
    /// it. An in-place copy (`cp backup.db credentials.db`) does both while it runs.
    #[error(
        "the credential store {location} is being changed outside cio ({detail}); nothing was changed"
    )]
    Changing { location: String, detail: String },
    #[error("the credential store {location} cannot be reached: {detail}")]
    Unreachable { location: String, detail: String },
    #[error(
        "the credential store {location} is sealed with key {store_fingerprint}, not with key {key_fingerprint}"
    )]
    KeyMismatch {
        location: String,
        key_fingerprint: String,
        store_fingerprint: String,
    },
    #[error("{name} changed while it was being written (another writer got there first)")]
    Conflict { name: String },
    /// etcd compacted its history past the revision a reading was pinned at (several
    /// requests of one moment), each time the reading started over: nothing is wrong with
    /// the store.
    #[error(
        "the credential store {location} could not be read at one moment: etcd compacted its history while it was being read, each time the reading started over"
    )]
    Compacted { location: String },
    /// A migration into the store copies in several writes and has not made the last: the
    /// store may hold a name's newest version beside another's old one (an access key with
    /// a secret key it does not go with), so it is read by nothing but the migration.
    #[error(
        "the credential store {location} is not complete: a migration into it from {from} did not finish (it stopped, or is still running)"
    )]
    MigrationUnfinished { location: String, from: String },
    #[error("the credential store {location} refused this user: {detail}")]
    Denied { location: String, detail: String },
    /// The TLS files cannot be used, or the handshake with every member failed: `fault`
    /// says whose part is wrong, for the hint.
    #[error("the credential store {location} cannot be reached over TLS: {detail}")]
    Tls {
        location: String,
        detail: String,
        fault: EtcdTlsFault,
    },
    /// The location's scheme and a member's disagree: an `etcds://` store whose member
    /// answered plain HTTP, or an `etcd://` store whose member speaks TLS. Nothing reached
    /// etcd as a request.
    #[error(
        "the credential store {location} cannot be reached{}: the member {endpoint} speaks {}",
        if *member_tls { "" } else { " over TLS" },
        if *member_tls { "TLS, not plain HTTP" } else { "plain HTTP (it answered an http:// request), not TLS" }
    )]
    SchemeMismatch {
        location: String,
        endpoint: String,
        /// The member speaks TLS (and the location says `etcd://`).
        member_tls: bool,
    },
    /// A TLS file (the etcd CA, client certificate or key) others may change: refused before
    /// anything is sent ([`crate::files::check_trusted_path`]).
    #[error(transparent)]
    Untrusted(#[from] crate::files::Untrusted),
    /// One write larger than etcd takes at once: more operations than one transaction may
    /// hold (`--max-txn-ops`), or more bytes than one request (`--max-request-bytes`).
    #[error(
        "the credential store {location} cannot take this write at once: {detail}; nothing was changed"
    )]
    TooLarge {
        location: String,
        detail: String,
        /// The member option that would let it through, e.g. `--max-txn-ops 129 or more`.
        remedy: String,
    },
}

impl StoreError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        match self {
            StoreError::Foreign { location, .. } if location.starts_with("etcd") => format!(
                "name a key prefix of its own in the location ({ETCD_FORM}): one no other program writes under; cio never writes among another program's keys"
            ),
            StoreError::Overlap { .. } => format!(
                "name a key prefix of its own in the location ({ETCD_FORM}): one that is neither inside another cio store's prefix nor holds one below it, so that no command on one store can change the other's keys"
            ),
            StoreError::Foreign { location, .. } => format!(
                "point --store / CIO_STORE at a cio credential store, or move {location} away to start a new one"
            ),
            StoreError::NotAFile { .. } => "point --store / CIO_STORE at a cio credential store: a regular file on a disk, or a path where no file is yet, where cio makes a new store; cio never writes over what is there".into(),
            StoreError::Corrupt { location, .. } => format!(
                "restore a whole earlier copy of {location} from a backup; until then, what the damage touches is refused"
            ),
            StoreError::RolledBack { location, log_seq, .. } => format!(
                "the credentials were put back from an earlier copy (one that ends at change-log entry {log_seq}) and the change log was not: put back a whole copy of {location} taken after the log's newest entry, its credentials and its log together ('cio credential log' lists the changes the credentials lack); until then every command but 'log' refuses the store"
            ),
            StoreError::Newer { .. } => "nothing was changed; if other nodes run a newer cio, install it on this node; if none does, treat the store as damaged and put back a copy from a backup".into(),
            StoreError::Unusable { location, .. } if location.starts_with("etcd") => format!(
                "check that {location} names etcd members' client ports (etcd 3.4 or later, /v3 API), or choose another store with --store / CIO_STORE"
            ),
            StoreError::Unusable { location, .. } => format!(
                "check that {location} and its folder exist and are writable by this user (cio runs as root on cluster nodes), or choose another with --store / CIO_STORE"
            ),
            StoreError::Changing { location, .. } => format!(
                "if a copy into {location} is under way, wait for it and run the command again; to put a backup in place, copy it beside the store and rename it over the store (mv), which is never seen half-written; an empty file nobody is copying can be removed"
            ),
            StoreError::NoSpace { location } => format!(
                "free some space on the device that holds {location} (df -h shows it), then run the command again"
            ),
            StoreError::FileSizeLimit { .. } => FILE_SIZE_LIMIT_HINT.to_string(),
            StoreError::Unreachable { .. } => {
                "check that the cluster store is running and reachable from this node, then try again".to_string()
            }
            StoreError::KeyMismatch { .. } => "use the key file this store was sealed with (--key-file / CIO_KEY_FILE)".to_string(),
            StoreError::Conflict { .. } => "try again; nothing was changed".to_string(),
            StoreError::Compacted { .. } => "run the command again: the store is fine, only its reading met a compaction of etcd's history (cio credential remove --purge --compact on another node, or the members' --auto-compaction)".to_string(),
            StoreError::MigrationUnfinished { location, from } => format!(
                "if no migration is running, run the migrate again (cio credential migrate --store {from} --to {location}, on the node that ran it): it keeps what was copied and completes the rest; if that store is lost, this one holds only part of it: import a recovery bundle into a new store instead (cio credential import BUNDLE, with CIO_STORE naming a new location)"
            ),
            StoreError::Denied { .. } => {
                "check CIO_ETCD_USER and CIO_ETCD_PASSWORD, and that the user's etcd role may read and write the store's key prefix".to_string()
            }
            StoreError::TooLarge { remedy, .. } => format!(
                "start the etcd members with {remedy}, or write less at once: an import without --history writes one version per credential, and purging long histories of large CA certificates makes a re-seal smaller"
            ),
            StoreError::Untrusted(untrusted) => untrusted.hint(),
            StoreError::Tls { fault, .. } => fault.hint(),
            StoreError::SchemeMismatch { location, member_tls: true, .. } => format!(
                "name the store {}, with the certificate of the CA that signed the members' certificates in {CA_SETTING}, and this node's client certificate and key in {CLIENT_SETTING} if the members require one (etcd --client-cert-auth)",
                location.replacen("etcd://", "etcds://", 1)
            ),
            StoreError::SchemeMismatch { location, member_tls: false, .. } => format!(
                "name the store {} for members that speak plain HTTP (everything goes in clear then, the etcd password too, and no TLS file is used: unset cio.toml's etcd_cacert, etcd_cert, etcd_key and CIO_ETCD_CACERT, CIO_ETCD_CERT, CIO_ETCD_KEY), or serve the members' client URLs over TLS (etcd --cert-file, --key-file and https:// in --listen-client-urls)",
                location.replacen("etcds://", "etcd://", 1)
            ),
        }
    }
}

/// Where the etcd CA file is named, for hints.
const CA_SETTING: &str = "CIO_ETCD_CACERT (or --etcd-cacert, or cio.toml's etcd_cacert)";
/// Where the etcd client certificate and key are named, for hints.
const CLIENT_SETTING: &str = "CIO_ETCD_CERT and CIO_ETCD_KEY (or --etcd-cert and --etcd-key, or cio.toml's etcd_cert and etcd_key)";

/// Whose part a failed TLS connection to the etcd members is, for the hint of
/// [`StoreError::Tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdTlsFault {
    /// A TLS file cannot be read or used (nothing was sent), or the handshake failed for a
    /// reason no other fault names.
    Files,
    /// The members' certificates are not signed by the CA in the etcd CA file (`ca_file`), or
    /// by one this machine trusts (no CA file given).
    Issuer { ca_file: bool },
    /// A member's certificate does not hold the host name or address the location uses.
    Name,
    /// A member's certificate has expired or is not valid yet.
    Dates,
    /// The members require a client certificate (etcd --client-cert-auth) and none is given.
    ClientCertMissing,
    /// The members refused the client certificate given.
    ClientCertRefused,
}

impl EtcdTlsFault {
    /// What the administrator should do next.
    pub fn hint(self) -> String {
        match self {
            EtcdTlsFault::Files => "check the etcd CA certificate, client certificate and key (etcd_cacert, etcd_cert, etcd_key in cio.toml, or their flags): they must match the cluster's".to_string(),
            EtcdTlsFault::Issuer { ca_file: true } => format!(
                "name in {CA_SETTING} the certificate of the CA that signed the members' certificates (the issuer of etcd's --cert-file; openssl x509 -noout -issuer -in FILE shows it)"
            ),
            EtcdTlsFault::Issuer { ca_file: false } => format!(
                "no etcd CA file is given, so only the system's authorities are trusted: name in {CA_SETTING} the certificate of the CA that signed the members' certificates"
            ),
            EtcdTlsFault::Name => "name the members in the store location by a host name or address their certificates hold (openssl x509 -noout -ext subjectAltName -in FILE lists them, FILE being etcd's --cert-file), or give the members certificates for the names the location uses".to_string(),
            EtcdTlsFault::Dates => "give the members current certificates (etcd --cert-file; openssl x509 -noout -dates -in FILE shows their dates), and check this machine's clock".to_string(),
            EtcdTlsFault::ClientCertMissing => format!(
                "the members require a client certificate (etcd --client-cert-auth): name this node's certificate and key in {CLIENT_SETTING}, signed by a CA the members trust (etcd --trusted-ca-file)"
            ),
            EtcdTlsFault::ClientCertRefused => format!(
                "the client certificate in {CLIENT_SETTING} must be signed by a CA the members trust (etcd --trusted-ca-file), be current, and be meant for client authentication"
            ),
        }
    }
}

/// A place sealed credentials are kept. Implementations must be safe for several processes
/// (and, for a cluster store, several nodes) writing at once.
pub trait Store: Send + Sync {
    /// Where the store is, for messages (a path or a URL without credentials).
    fn location(&self) -> String;

    /// The store's identity, creating its id when the store is new and `create` is true.
    /// `None` when the store does not exist and `create` is false.
    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError>;

    /// The identity and every record (by name, then version), read in one transaction
    /// (SQLite) or at one revision (etcd). `None` when the store does not exist.
    fn read(&self) -> Result<Option<Snapshot>, StoreError>;

    /// The latest version of `name`, live or removed.
    fn latest(&self, name: &str) -> Result<Option<ReadRecord>, StoreError>;

    /// The latest version of every name the store has ever held, sorted by name.
    fn list_latest(&self) -> Result<Vec<ReadRecord>, StoreError>;

    /// Every version of `name` the store keeps, oldest first.
    fn history(&self, name: &str) -> Result<Vec<ReadRecord>, StoreError>;

    /// Every version of every name, by name then version (for migration).
    fn all_versions(&self) -> Result<Vec<ReadRecord>, StoreError>;

    /// Appends `record` if the latest version of its name is still `expected` (0: the name
    /// has no version), `record.version == expected + 1` and the manifest is still
    /// `manifest.expected`, replacing the manifest in the same transaction; records
    /// `key_fingerprint` as the store's key on its first write and refuses any other key
    /// afterwards. A lost race is [`StoreError::Conflict`], and nothing is written.
    fn append(
        &self,
        expected: u64,
        record: &Record,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.append_all(&[(expected, record)], key_fingerprint, manifest)
    }

    /// Appends several records, of one or more names, and replaces the manifest, all or
    /// nothing: each `(expected, record)` as [`Store::append`] would, where a name's later
    /// entries expect the version its earlier entry appends. When any condition fails nothing
    /// is written ([`StoreError::Conflict`] names a name). An empty batch does nothing.
    fn append_all(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError> {
        self.append_all_logged(batch, key_fingerprint, manifest, None)
    }

    /// Replaces every record of the store, its change log, its notes, its key fingerprint
    /// and its manifest, in one write, if the manifest is still `manifest.expected` and the
    /// log's newest entry is still `whole.log_tail` (else [`StoreError::Conflict`]): a
    /// re-seal under another key (`rekey`), which keeps every name and version (`records`
    /// holds them all) and every log entry (same numbers, new tags, one more entry for the
    /// re-seal). Readers see the old store or the new one.
    fn replace_all(
        &self,
        whole: &Resealed<'_>,
        key_fingerprint: &str,
        manifest: &ManifestSwap,
    ) -> Result<(), StoreError>;

    /// Destroys every version of `name` and replaces the manifest, in one transaction, if
    /// the manifest is still `manifest.expected` (else [`StoreError::Conflict`]); returns how
    /// many versions there were.
    fn purge(&self, name: &str, manifest: &ManifestSwap) -> Result<usize, StoreError> {
        self.purge_logged(name, manifest, None)
    }

    /// [`Store::append_all`] with a change-log entry written in the same transaction (both or
    /// neither), and only if the log holds entry `log.after` (nothing to hold when 0) and
    /// none numbered after it up to `log.entry.seq`; else [`StoreError::Conflict`]. `None`: no entry (migration copies records).
    fn append_all_logged(
        &self,
        batch: &[(u64, &Record)],
        key_fingerprint: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError>;

    /// [`Store::purge`] with a change-log entry, as for [`Store::append_all_logged`].
    fn purge_logged(
        &self,
        name: &str,
        manifest: &ManifestSwap,
        log: Option<&LogAppend>,
    ) -> Result<usize, StoreError>;

    /// Appends a change-log entry alone (a change of the whole store, e.g. a migration into
    /// it), on the same condition as [`Store::append_all_logged`].
    fn append_log(&self, log: &LogAppend) -> Result<(), StoreError>;

    /// The change log's newest entry; `None` when the log is empty.
    fn log_tail(&self) -> Result<Option<LogRecord>, StoreError>;

    /// Every entry of the change log, by number.
    fn log(&self) -> Result<Vec<LogRecord>, StoreError>;

    /// Every note (small sealed records beside the credentials: the sets' health records),
    /// as `(key, sealed)`, sorted by key.
    fn notes(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Writes each note `(key, sealed)`, replacing the one of the same key (a note is a latest
    /// state, not a history), and with `manifest` replaces the manifest in the same
    /// transaction if it is still `manifest.expected` (else [`StoreError::Conflict`], and
    /// nothing is written): the manifest pins the notes ([`crate::integrity`]). The store
    /// must exist.
    fn put_notes(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
    ) -> Result<(), StoreError> {
        self.put_notes_logged(notes, manifest, None)
    }

    /// [`Store::put_notes`] with a change-log entry written in the same transaction, on the
    /// condition [`Store::append_all_logged`] sets (a change of the log alone: an
    /// acknowledgement of its breaks).
    fn put_notes_logged(
        &self,
        notes: &[(String, Vec<u8>)],
        manifest: Option<&ManifestSwap>,
        log: Option<&LogAppend>,
    ) -> Result<(), StoreError>;

    /// Writes the note `key` alone, whatever the manifest pins (a store never sealed has no
    /// manifest to pin it in).
    fn put_note(&self, key: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.put_notes(&[(key.to_string(), sealed.to_vec())], None)
    }

    /// Removes (and zeroes) the copies of the store that writers killed mid-write left beside
    /// it, as the next write would. For `rekey`'s retire, which writes no store but says the
    /// old key opens nothing any more. Best effort; a store with no such copies (etcd) does
    /// nothing.
    fn tidy(&self) {}

    /// Whether the store keeps what [`Store::purge`] destroyed readable in earlier revisions
    /// of itself until [`Store::compact`] (etcd keeps every key's history until the cluster
    /// compacts it). `false`: purged versions are gone at once (SQLite zeroes their pages).
    fn keeps_revisions(&self) -> bool {
        false
    }

    /// Discards the store's earlier revisions, so that purged versions are gone from them too.
    /// `Ok(None)` when the store keeps none; for etcd, the revision the cluster was compacted
    /// at — the whole cluster's history before it, not only this store's keys.
    fn compact(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}

/// Everything a re-seal writes again ([`Store::replace_all`]).
pub struct Resealed<'a> {
    /// Every version of every name.
    pub records: &'a [Record],
    /// The whole change log, oldest first, numbered from 1.
    pub log: &'a [LogRecord],
    /// The number of the log's newest entry when it was read (0: it was empty); the write is
    /// refused when another entry was added since.
    pub log_tail: u64,
    /// Every note, `(key, sealed)`, written over the notes of the same keys.
    pub notes: &'a [(String, Vec<u8>)],
}

/// A store location that cannot be used. The message never repeats the location text (it
/// could hold a password someone put in a URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the store location is not valid: {reason}")]
pub struct SpecError {
    pub reason: String,
}

impl SpecError {
    /// What the administrator should do next.
    pub fn hint(&self) -> String {
        "give --store / CIO_STORE / `store` in cio.toml (or migrate --to) a file path, or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (etcds:// for TLS), with the etcd user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD".to_string()
    }
}

/// Which store a command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded SQLite store at this path.
    Sqlite(PathBuf),
    /// A store in an etcd cluster.
    Etcd(etcd::EtcdSpec),
}

impl StoreSpec {
    /// Where a store location (`--store`, `CIO_STORE`, `store` in `cio.toml`, `migrate --to`)
    /// points. The one rule:
    ///
    /// - `etcd://` and `etcds://` (in any letter case) name a cluster store (see
    ///   [`etcd::EtcdSpec::parse`]; default prefix `/cio/credentials`);
    /// - a mistyped URL is refused, so that it never silently becomes a file named after it
    ///   (with a pasted password in the name): text whose first `/`-separated part holds a
    ///   `:` (a scheme such as `http:` or `etcd:`, or a `HOST:PORT`), text that starts with
    ///   `etcd` or `etcds` followed by anything but a letter, digit, `.`, `-` or `_`
    ///   (`etcd`, `etcd//HOST`), and text with a part holding both `@` and `:` (a
    ///   `user:password@` or `user@host:port`, as in `//user:pw@HOST:2379`);
    /// - a path starting with `~` is refused: only a shell expands it, and a location from a
    ///   systemd unit or a quoted variable would otherwise become a folder named `~`;
    /// - anything else is a path, `:` and `@` included (`/var/lib/cio@1/credentials.db`,
    ///   `/srv/a:b/credentials.db`, `etcd-backup.db`); a relative path whose first part holds
    ///   a `:` or is `etcd` is written `./a:b.db`, `./etcd/credentials.db`.
    ///
    /// The error never repeats the text: it may hold a password.
    pub fn parse(text: &str) -> Result<StoreSpec, SpecError> {
        if let Some(spec) = etcd::EtcdSpec::parse(text)? {
            return Ok(StoreSpec::Etcd(spec));
        }
        if text.is_empty() {
            return Err(SpecError {
                reason: "it is empty".into(),
            });
        }
        if text
            .split('/')
            .any(|part| part.contains('@') && part.contains(':'))
        {
            return Err(SpecError {
                reason: "it holds what looks like a user and password (a part with both '@' and ':'); an etcd store is written etcd://HOST:PORT/PREFIX, with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD, never in the location".into(),
            });
        }
        if text == "~" || text.starts_with("~/") {
            return Err(SpecError {
                reason: "it starts with ~, which only a shell turns into a home folder (a systemd unit or a quoted value does not): give the whole path, e.g. /root/credentials.db".into(),
            });
        }
        if looks_like_a_url(text) {
            return Err(SpecError {
                reason: "it starts like a URL but is not an etcd one: write etcd://HOST:PORT/PREFIX (etcds:// for TLS), with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD; a file whose path starts so is written ./PATH".into(),
            });
        }
        Ok(StoreSpec::Sqlite(PathBuf::from(text)))
    }

    /// Where the store is, for messages (never with a user or password).
    pub fn location(&self) -> String {
        match self {
            StoreSpec::Sqlite(path) => crate::shown_path(path).to_string(),
            StoreSpec::Etcd(spec) => spec.location(),
        }
    }

    /// Opens the store with default connection options (no TLS files, no user, the
    /// default timeout). Opening does no I/O that could change anything.
    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        self.open_with(etcd::EtcdOptions::default())
    }

    /// Opens the store; `etcd` says how to connect to a cluster store (ignored for a file).
    /// Opening reads the TLS files but talks to no server and changes nothing.
    pub fn open_with(&self, etcd: etcd::EtcdOptions) -> Result<Box<dyn Store>, StoreError> {
        match self {
            StoreSpec::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::new(path.clone()))),
            StoreSpec::Etcd(spec) => Ok(Box::new(etcd::EtcdStore::new(spec.clone(), etcd)?)),
        }
    }
}

/// Whether a store location that is not `etcd://` or `etcds://` starts like a URL: its first
/// `/`-separated part holds a `:`, or it starts with `etcd` or `etcds` followed by the end or
/// by a character no file name word goes on with ([`StoreSpec::parse`]).
fn looks_like_a_url(text: &str) -> bool {
    let first = text.split('/').next().unwrap_or_default();
    let etcd_then_other = ["etcd", "etcds"].iter().any(|scheme| {
        text.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && !text[scheme.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    });
    first.contains(':') || etcd_then_other
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random 128-bit id in hex, for a new store.
pub fn new_store_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .expect("the operating system's random source (getrandom) is always available on Linux");
    hex::encode(bytes)
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn paths_are_sqlite_and_urls_are_etcd() {
        assert_eq!(
            StoreSpec::parse("/var/lib/cio/credentials.db").unwrap(),
            StoreSpec::Sqlite(PathBuf::from("/var/lib/cio/credentials.db"))
        );
        assert_eq!(
            StoreSpec::parse("relative.db").unwrap(),
            StoreSpec::Sqlite(PathBuf::from("relative.db"))
        );
        let spec = StoreSpec::parse("etcd://10.0.0.1:2379,10.0.0.2:2379").unwrap();
        assert_eq!(
            spec.location(),
            "etcd://10.0.0.1:2379,10.0.0.2:2379/cio/credentials"
        );
        let StoreSpec::Etcd(etcd) = StoreSpec::parse("etcds://n1/cio/site-b").unwrap() else {
            panic!("an etcds:// location is an etcd store");
        };
        assert!(etcd.tls);
        assert_eq!(etcd.prefix, "/cio/site-b");
        assert!(StoreSpec::parse("").is_err());
        let err = StoreSpec::parse("etcd://admin:pw-123@n1:2379").unwrap_err();
        assert!(!err.to_string().contains("pw-123"));
        assert!(err.hint().contains("etcd://"));
    }

    /// The tester's report: a mistyped etcd URL became a SQLite file named after it, the
    /// user and password in its name. Each is refused, without repeating any of it; paths
    /// with ':' or '@' that cannot be URLs stay paths.
    #[test]
    fn mistyped_urls_are_refused_and_never_become_paths() {
        let url = "the store location is not valid: it starts like a URL but is not an etcd one: write etcd://HOST:PORT/PREFIX (etcds:// for TLS), with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD; a file whose path starts so is written ./PATH";
        let user_info = "the store location is not valid: it holds what looks like a user and password (a part with both '@' and ':'); an etcd store is written etcd://HOST:PORT/PREFIX, with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD, never in the location";
        for (text, expected) in [
            ("http://u:CANARY@127.0.0.1:2379", user_info),
            ("https://u:CANARY@127.0.0.1:2379/cio", user_info),
            ("etcd:/u:CANARY@h:1", user_info),
            ("etcd:u:CANARY@h:2379", user_info),
            ("etcd//u:CANARY@h:1", user_info),
            ("etcds:/u:CANARY@h:1", user_info),
            ("//u:CANARY@h:2379/cio", user_info),
            ("/var/lib/u:CANARY@h", user_info),
            ("http://CANARY-host:2379", url),
            ("https://CANARY-host", url),
            ("etcd:/CANARY-host:1", url),
            ("ETCDS:/CANARY-host:1", url),
            ("etcd:CANARY-host", url),
            ("etcd//CANARY-host:1", url),
            ("etcd/CANARY-host", url),
            ("etcd", url),
            ("ETCDS", url),
            ("etcd ://CANARY-host", url),
            ("Etcd;//CANARY-host", url),
            ("CANARY-host:2379/cio", url),
            ("localhost:2379", url),
            ("unix:CANARY", url),
        ] {
            let err = StoreSpec::parse(text).unwrap_err();
            assert_eq!(err.to_string(), expected, "{text}");
            assert!(!err.hint().contains("CANARY"), "{text}");
        }
        for path in [
            "/var/lib/cio@1/credentials.db",
            "/srv/a:b/credentials.db",
            "/srv/x@y/a:b.db",
            "./a:b.db",
            "./etcd/credentials.db",
            "./etcd:/x",
            "etcd-backup.db",
            "etcd.db",
            "etcds_1/credentials.db",
            "credentials.db",
            "backups/a@b.db",
        ] {
            assert_eq!(
                StoreSpec::parse(path),
                Ok(StoreSpec::Sqlite(PathBuf::from(path))),
                "{path}"
            );
        }
    }

    /// A `~` no shell expanded (a systemd unit's Environment=, a quoted value) would become a
    /// folder named `~` in the current folder.
    #[test]
    fn a_tilde_no_shell_expanded_is_refused() {
        for text in ["~", "~/credentials.db", "~/.local/cio.db"] {
            let err = StoreSpec::parse(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                "the store location is not valid: it starts with ~, which only a shell turns into a home folder (a systemd unit or a quoted value does not): give the whole path, e.g. /root/credentials.db",
                "{text}"
            );
        }
        for path in ["./~/x.db", "/srv/~backup/x.db", "a~b.db"] {
            assert_eq!(
                StoreSpec::parse(path),
                Ok(StoreSpec::Sqlite(PathBuf::from(path)))
            );
        }
    }

    #[test]
    fn opening_talks_to_nothing() {
        let spec = StoreSpec::parse("etcd://127.0.0.1:1").unwrap();
        let store = spec.open().unwrap();
        assert_eq!(store.location(), "etcd://127.0.0.1:1/cio/credentials");
    }
}
