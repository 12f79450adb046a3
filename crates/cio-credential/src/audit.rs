//! The change log (audit log): who changed which credential, when, on which node.
//!
//! Rules:
//! - every change (create, update, remove, restore, purge, migrate) appends one entry to the
//!   store it changed, in the same transaction as the change: a change is never without its
//!   entry, and a cluster store shares one log between its nodes; reads are never logged;
//! - an entry holds the time, the user (uid and name, and the sudo user), the host, the
//!   command, the credential's name and version and the outcome; never a value;
//! - entries are numbered from 1 without gaps; each is stored as its tag (hex) and its JSON
//!   text,
//!   the tag an HMAC-SHA256 (under a key derived from the store key) over the store id, the
//!   entry's number and its text, and the text holds the tag of the entry before it: an
//!   edited entry fails its tag, a deleted one leaves a gap, a replaced one breaks the chain.
//!   Deleting the newest entries is told by the store's manifest, which records the entry
//!   its newest logged change wrote ([`Problem::Truncated`]).
//! - a break can be accepted: an `acknowledge` entry holds the digest of every entry before
//!   it as they are then ([`prefix_digest`]); the breaks before it are no longer reported
//!   while those entries stay as they were, and any change to them afterwards is a break
//!   again ([`Problem::ChangedSinceAcknowledged`]);
//! - entries are authenticated, not encrypted: they hold no secret, and `log` checks
//!   thousands of them (an HMAC each is several times cheaper than opening an AEAD seal).

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::Key;
use crate::store::LogRecord;

/// What the change log's key is derived for, and what every tag starts with.
const DOMAIN: &[u8] = b"cio-credential/change-log/v1\0";
/// An HMAC-SHA256 tag in hex, first in every stored entry (text, so an entry is readable with
/// etcdctl or sqlite3 as it is).
const TAG_LEN: usize = 64;

/// Who makes a change, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The effective user id.
    pub uid: u32,
    /// That user's name (`?` when the system has no name for it).
    pub user: String,
    /// The user who ran `sudo`, when the change is made through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    /// The node's host name.
    pub host: String,
}

impl Actor {
    /// The user and host of this process.
    pub fn current() -> Actor {
        let uid = rustix::process::geteuid().as_raw();
        let sudo_user = sudo_user(
            std::env::var("SUDO_USER").ok(),
            std::env::var("SUDO_UID").ok().as_deref(),
        );
        Actor {
            uid,
            user: whoami::username().unwrap_or_else(|_| "?".into()),
            sudo_user,
            host: whoami::hostname().unwrap_or_else(|_| "?".into()),
        }
    }
}

/// The sudo user to record, from `SUDO_USER` and `SUDO_UID`: only a name that could be a
/// user's (1 to 32 of `[A-Za-z0-9._-]`, not starting with `-`, a `$` allowed last: the
/// portable user names useradd and Samba machine accounts use), and only when `SUDO_UID`,
/// which sudo sets beside it, is a number. Anything else is not recorded: the environment is
/// the caller's to set, and its text would be kept, signed, in every node's log. The name
/// is not checked against `SUDO_UID` in the user database: whoever can set one can set both
/// to agree, so it would prove nothing; the entry's `uid` is the one the kernel vouches for.
fn sudo_user(name: Option<String>, uid: Option<&str>) -> Option<String> {
    let name = name?;
    let uid = uid?;
    let plausible_name = (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .strip_suffix('$')
            .unwrap_or(&name)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let numeric_uid = !uid.is_empty() && uid.parse::<u32>().is_ok();
    (plausible_name && numeric_uid).then_some(name)
}

/// One change, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its place in the log: 1 for the first entry, then one more for each.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who made the change, and where. (Nested, not flattened into the entry: serde's
    /// flatten buffers every field, and `log` opens thousands of entries.)
    pub actor: Actor,
    /// What was done: `create`, `update`, `remove`, `restore`, `purge`, `rotate`, `import`,
    /// `rekey`, `migrate`.
    pub command: String,
    /// The credential changed; `None` for a change of the whole store (migrate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every credential a change of several names wrote (a key pair, an import), `name`
    /// first; empty for a change of one name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The credential's version the change wrote (for purge: the last one it destroyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `ok`, or what went wrong.
    pub outcome: String,
    /// More about the change, in the log's own words (e.g. how many records a migration
    /// copied); never a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For an `acknowledge` entry: [`prefix_digest`] of every entry before it, as the log was
    /// when its breaks were accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_sha256: Option<String>,
}

/// The way out of a log with an entry numbered past the store's newest change that does not
/// open ([`Problem::Unanchored`]) that keeps every change made since, for the hints that say
/// such a break: the entry removed, the log reads as a whole earlier copy's would
/// ([`Problem::UnanchoredGone`]), which an acknowledgement accepts.
pub const UNANCHORED_WAY_OUT: &str = "while an entry written outside cio stands where entries showing credentials put back from an earlier copy would be, the log cannot be acknowledged; to keep every change, delete each entry that does not open ('cio credential log --verify' names them: rows of the log table in credentials.db, or keys under log/ in the etcd prefix), check that the credentials hold the values they should ('cio credential validate'), then run 'cio credential log --acknowledge'";

/// The command of an entry that accepts the log's breaks before it.
pub const ACKNOWLEDGE: &str = "acknowledge";

/// The SHA-256 (hex) of `records` as stored, in order: each entry's number and its stored
/// bytes, length first. Any entry added, deleted, altered or moved changes it.
pub fn prefix_digest(records: &[LogRecord]) -> String {
    use sha2::Digest;
    let mut digest = Sha256::new();
    for record in records {
        digest.update(record.seq.to_be_bytes());
        digest.update((record.sealed.len() as u64).to_be_bytes());
        digest.update(&record.sealed);
    }
    hex::encode(digest.finalize())
}

/// What an entry's text holds: the entry and the tag of the entry before it.
#[derive(Serialize, Deserialize)]
struct Sealed {
    entry: LogEntry,
    /// Hex of the previous entry's tag; empty for the first entry.
    prev: String,
}

/// The key of a store's change log.
struct LogKey(Zeroizing<[u8; 32]>);

impl LogKey {
    fn of(key: &Key) -> LogKey {
        LogKey(key.derive(DOMAIN))
    }

    /// The HMAC state of one store's entries: keyed, with the domain and the store id
    /// already in (cloned for each entry rather than keyed again: `log` checks thousands).
    fn for_store(&self, store_id: &str) -> StoreMac {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(store_id.as_bytes());
        mac.update(&[0]);
        StoreMac(mac)
    }
}

/// [`LogKey::for_store`].
struct StoreMac(Hmac<Sha256>);

impl StoreMac {
    /// The HMAC over the store id, the entry's number and its text.
    fn mac(&self, seq: u64, text: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(&seq.to_be_bytes());
        mac.update(text);
        mac
    }
}

/// The hex tag that links the next entry to `record` (empty before the first entry).
fn link(record: Option<&LogRecord>) -> String {
    record.map_or_else(String::new, |r| {
        String::from_utf8_lossy(&r.sealed[..TAG_LEN.min(r.sealed.len())]).into_owned()
    })
}

/// The tag of `record`, as its text begins with it (32 bytes); `None` when it begins with
/// none. The store's manifest pins its newest entry by it.
pub(crate) fn tag_of(record: &LogRecord) -> Option<Vec<u8>> {
    hex::decode(record.sealed.get(..TAG_LEN)?).ok()
}

/// Makes `entry` the entry after `tail` (the log's newest entry; `None` for an empty log):
/// its tag and text. `entry.seq` must be one more than the tail's.
pub fn seal(key: &Key, store_id: &str, entry: &LogEntry, tail: Option<&LogRecord>) -> LogRecord {
    let sealed = Sealed {
        entry: entry.clone(),
        prev: link(tail),
    };
    let text = serde_json::to_vec(&sealed)
        .expect("a log entry is strings and numbers: it always serializes");
    let tag = LogKey::of(key)
        .for_store(store_id)
        .mac(entry.seq, &text)
        .finalize();
    let mut bytes = Vec::with_capacity(TAG_LEN + text.len());
    bytes.extend_from_slice(hex::encode(tag.into_bytes()).as_bytes());
    bytes.extend_from_slice(&text);
    LogRecord {
        seq: entry.seq,
        sealed: bytes,
    }
}

/// `records` (a whole log, oldest first) tagged again under `new_key` for a re-seal of the
/// store: each entry that checks under `old_key` before the log's first break gets a new tag
/// and link, in order; from the break on, entries are kept as they are, so that the break
/// (and any later one) still shows where it was under the new key. A re-seal never makes a
/// broken log look whole.
pub fn reseal(
    old_key: &Key,
    new_key: &Key,
    store_id: &str,
    records: &[LogRecord],
) -> Vec<LogRecord> {
    let reading = open(old_key, store_id, records);
    let first_break = reading.broken.as_ref().map_or(u64::MAX, |b| b.seq);
    let mut opened = reading.entries.iter().peekable();
    let mut out: Vec<LogRecord> = Vec::with_capacity(records.len());
    for (at, record) in records.iter().enumerate() {
        let entry = opened.next_if(|e| e.seq == record.seq && record.seq < first_break);
        out.push(match entry {
            Some(entry) => {
                // An acknowledgement that holds goes on holding over the entries re-sealed.
                let mut entry = entry.clone();
                // Hashed only for an acknowledgement: for every entry it would be quadratic.
                if entry
                    .prefix_sha256
                    .as_ref()
                    .is_some_and(|digest| *digest == prefix_digest(&records[..at]))
                {
                    entry.prefix_sha256 = Some(prefix_digest(&out));
                }
                seal(new_key, store_id, &entry, out.last())
            }
            None => record.clone(),
        });
    }
    out
}

/// The entry `record` holds, when its tag is the store's and its number its place.
fn verified(store_mac: &StoreMac, record: &LogRecord) -> Option<Sealed> {
    if record.sealed.len() < TAG_LEN {
        return None;
    }
    let (tag, text) = record.sealed.split_at(TAG_LEN);
    let tag = hex::decode(tag).ok()?;
    store_mac.mac(record.seq, text).verify_slice(&tag).ok()?;
    serde_json::from_slice::<Sealed>(text)
        .ok()
        .filter(|s| s.entry.seq == record.seq)
}

/// Where and how a log is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broken {
    /// The number of the first entry that is not as it was written; 0 when what was altered
    /// is the note of an earlier break, not an entry.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: Problem,
    /// For [`Problem::Missing`]: the last entry of a run of missing entries that starts at
    /// `seq`, when the run is longer than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<u64>,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Its tag does not match it under the store key: edited, or moved from another place or
    /// store.
    Altered,
    /// It is not there, but later entries are: it was deleted.
    Missing,
    /// It opens, but does not follow the entry before it: that one was replaced.
    ChainBroken,
    /// It and every entry after it are gone, though the store's newest change was logged
    /// with it or a later one: the end of the log was deleted.
    Truncated,
    /// A row whose number is no entry's (0, negative, not a number: a backend reads such a
    /// number as 0): put there outside cio.
    Unnumbered,
    /// It opens and chains, but it is not the entry the store's newest change wrote there
    /// (the manifest pins that one's tag): it, and perhaps entries before it, were put in
    /// from another copy of the store, whose changes they record.
    OtherCopy,
    /// An `acknowledge` entry accepted the log before it as it was, and entries before it
    /// were added, deleted or altered since.
    ChangedSinceAcknowledged,
    /// It is numbered after the entry of the store's newest change (the manifest's) and
    /// does not open: written outside cio, perhaps over entries that would show that the
    /// credentials were put back from an earlier copy.
    Unanchored,
    /// The store's note says entry N was [`Problem::Unanchored`], and it is gone: every
    /// entry left opens under the store key, and none is numbered past the store's newest
    /// change. The log can no longer tell whether the credentials were put back from an
    /// earlier copy while it stood, as it cannot for a whole earlier copy put back (which
    /// cio accepts): an acknowledgement accepts it, saying so.
    UnanchoredGone,
    /// It and every later entry record changes the credentials do not hold: the store's
    /// authenticated manifest says its newest logged change wrote an earlier entry, so the
    /// credentials were put back from an earlier copy and the log was not (the log is whole,
    /// and newer than the credentials it describes).
    CredentialsOlder,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seq = self.seq;
        match self.problem {
            Problem::Altered if seq == 0 => write!(
                f,
                "the note of an earlier break in it was altered, deleted or put back from an earlier copy (it is not the note cio last wrote under the store key)"
            ),
            Problem::Altered => write!(
                f,
                "entry {seq} was altered (its tag does not match it under the store key)"
            ),
            Problem::Missing => match self.through {
                Some(last) => write!(
                    f,
                    "entries {seq} to {last} are missing (deleted; later entries remain)"
                ),
                None => write!(f, "entry {seq} is missing (deleted; later entries remain)"),
            },
            Problem::Truncated => write!(
                f,
                "entry {seq} and every later one were deleted (the store's newest change was logged after them)"
            ),
            Problem::ChainBroken => write!(
                f,
                "entry {seq} does not follow entry {} (that entry was replaced)",
                seq.saturating_sub(1)
            ),
            Problem::OtherCopy => write!(
                f,
                "entry {seq} is not the entry the store's newest change wrote: it, and perhaps entries before it, were put there from another copy of the store (they record that copy's changes, not this store's)"
            ),
            Problem::ChangedSinceAcknowledged => write!(
                f,
                "entries before entry {seq}, which accepted the log's breaks as they were, were added, deleted or altered since"
            ),
            Problem::Unanchored => write!(
                f,
                "entry {seq} is numbered after the entry of the store's newest change and does not open (written outside cio): the credentials may have been put back from an earlier copy, and the entries that would show it altered"
            ),
            Problem::UnanchoredGone => write!(
                f,
                "entry {seq}, found numbered after the entry of the store's newest change and not opening (written outside cio), is gone, and every entry left opens under the store key: the log can no longer tell whether the credentials were put back from an earlier copy while it stood, as it cannot for a whole earlier copy put back"
            ),
            Problem::CredentialsOlder => write!(
                f,
                "the credentials are older than the log: entry {seq} and every later one record changes the credentials do not hold (the credentials were put back from an earlier copy, the log was not)"
            ),
            Problem::Unnumbered => write!(
                f,
                "it holds a row whose number is no entry number (0, negative or not a number), written outside cio"
            ),
        }
    }
}

/// A log as read: the entries that open, in order, and its breaks, if any.
#[derive(Debug, Default)]
pub struct LogReading {
    pub entries: Vec<LogEntry>,
    /// The break said first: `breaks[0]`.
    pub broken: Option<Broken>,
    /// Every break not acknowledged, the one said first first, then by number.
    pub breaks: Vec<Broken>,
    /// [`prefix_digest`] of the whole log as read: what an acknowledgement accepts.
    pub digest: String,
    /// The `acknowledge` entry whose acceptance holds (the newest, with every entry before
    /// it as it accepted them): breaks before it are not reported.
    pub acknowledged: Option<u64>,
}

impl Broken {
    /// Whether this break may hide credentials put back from an earlier copy: they are older
    /// than the log, an entry past the manifest does not open, or the store's note of an
    /// earlier break was altered, deleted or put back (it may have said either). No
    /// acknowledgement accepts it; a whole copy of the store must come back.
    pub fn may_hide_a_rollback(&self) -> bool {
        matches!(
            self.problem,
            Problem::CredentialsOlder | Problem::Unanchored
        ) || (self.seq == 0 && self.problem == Problem::Altered)
    }
}

impl LogReading {
    /// Adds `found` among the breaks (once): first of all with `first`, else in its place
    /// by number; [`LogReading::broken`] stays the first.
    pub(crate) fn add_break(&mut self, found: Broken, first: bool) {
        if self.breaks.contains(&found) {
            return;
        }
        let at = if first {
            0
        } else {
            self.breaks.partition_point(|b| b.seq <= found.seq)
        };
        self.breaks.insert(at, found);
        self.broken = self.breaks.first().cloned();
    }
}

/// Opens and checks `records` (every entry of a log, oldest first, as the store keeps them).
/// Entries after a break are still shown when they open; only the first break is reported.
pub fn open(key: &Key, store_id: &str, records: &[LogRecord]) -> LogReading {
    let store_mac = LogKey::of(key).for_store(store_id);
    let mut reading = LogReading {
        entries: Vec::with_capacity(records.len()),
        digest: prefix_digest(records),
        ..LogReading::default()
    };
    // Every break, in order; the first one not acknowledged is reported.
    let mut breaks: Vec<Broken> = Vec::new();
    // The newest `acknowledge` entry that opens: its place in `records`, number and digest.
    let mut acknowledgement: Option<(usize, u64, String)> = None;
    let mut previous: Option<&LogRecord> = None;
    // Whether the entry before opened: after one that did not (its bytes changed), the link
    // cannot match, and that is the same break, not another.
    let mut previous_opened = true;
    let mut expected = 1;
    for (at, record) in records.iter().enumerate() {
        if record.seq == 0 {
            breaks.push(Broken {
                seq: 0,
                problem: Problem::Unnumbered,
                through: None,
            });
            continue;
        }
        let opened = verified(&store_mac, record);
        let opened_now = opened.is_some();
        // A gap is said before an entry that opens, and before one that does not when later
        // entries follow it (the review's finding: entry 2 deleted before an altered entry 3
        // went unsaid); the log's last entry, not opening after a gap, is the break said
        // alone: written outside cio (an entry put far past the end, say).
        let followed = at + 1 < records.len();
        if record.seq != expected && (opened.is_some() || followed) {
            let last = record.seq.saturating_sub(1);
            breaks.push(Broken {
                seq: expected.min(record.seq),
                problem: Problem::Missing,
                through: (last > expected).then_some(last),
            });
        }
        match opened {
            None => breaks.push(Broken {
                seq: record.seq,
                problem: Problem::Altered,
                through: None,
            }),
            Some(sealed) => {
                // After a gap the link cannot be checked: the gap is the break reported.
                if record.seq == expected && previous_opened && sealed.prev != link(previous) {
                    breaks.push(Broken {
                        seq: record.seq,
                        problem: Problem::ChainBroken,
                        through: None,
                    });
                }
                if sealed.entry.command == ACKNOWLEDGE
                    && let Some(digest) = &sealed.entry.prefix_sha256
                {
                    acknowledgement = Some((at, record.seq, digest.clone()));
                }
                reading.entries.push(sealed.entry);
            }
        }
        previous_opened = opened_now;
        previous = Some(record);
        expected = record.seq.saturating_add(1);
    }
    if let Some((at, seq, digest)) = acknowledgement {
        if prefix_digest(&records[..at]) == digest {
            reading.acknowledged = Some(seq);
            breaks.retain(|b| b.seq >= seq);
        } else {
            breaks.insert(
                0,
                Broken {
                    seq,
                    problem: Problem::ChangedSinceAcknowledged,
                    through: None,
                },
            );
        }
    }
    reading.broken = breaks.first().cloned();
    reading.breaks = breaks;
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plausible_sudo_user_with_its_uid_is_recorded() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(sudo_user(some("alice"), Some("1000")), some("alice"));
        assert_eq!(
            sudo_user(some("svc.backup-1"), Some("0")),
            some("svc.backup-1")
        );
        assert_eq!(sudo_user(some("HOST01$"), Some("1000")), some("HOST01$"));
        for refused in [
            "\u{1b}[31mEVIL\u{1b}]0;title\u{7}",
            "alice\nbob",
            "",
            "-alice",
            "al ice",
            "al$ice",
            "élise",
            &"a".repeat(33),
        ] {
            assert_eq!(sudo_user(some(refused), Some("1000")), None, "{refused:?}");
        }
        // SUDO_USER without the SUDO_UID sudo sets beside it, or with another text there.
        assert_eq!(sudo_user(some("alice"), None), None);
        for uid in ["", "x", "-1", "1000 ", "99999999999"] {
            assert_eq!(sudo_user(some("alice"), Some(uid)), None, "{uid:?}");
        }
        assert_eq!(sudo_user(None, Some("1000")), None);
    }

    /// A store key, made in a temporary folder as `create` makes one.
    fn key() -> Key {
        let dir = tempfile::tempdir().unwrap();
        crate::crypto::create_key(&dir.path().join("credential.key")).unwrap()
    }

    fn entry(seq: u64, name: &str) -> LogEntry {
        LogEntry {
            seq,
            at_ms: 1_700_000_000_000 + seq as i64,
            actor: Actor {
                uid: 0,
                user: "root".into(),
                sudo_user: Some("alice".into()),
                host: "node1".into(),
            },
            command: "create".into(),
            name: Some(name.into()),
            names: Vec::new(),
            version: Some(seq),
            outcome: "ok".into(),
            detail: None,
            prefix_sha256: None,
        }
    }

    fn log(key: &Key, n: u64) -> Vec<LogRecord> {
        let mut records: Vec<LogRecord> = Vec::new();
        for seq in 1..=n {
            let record = seal(
                key,
                "store",
                &entry(seq, "cio_aws_access_key"),
                records.last(),
            );
            records.push(record);
        }
        records
    }

    #[test]
    fn a_whole_log_opens_without_a_break() {
        let key = key();
        let reading = open(&key, "store", &log(&key, 5));
        assert_eq!(reading.broken, None);
        assert_eq!(reading.entries.len(), 5);
        assert_eq!(reading.entries[4], entry(5, "cio_aws_access_key"));
        assert!(open(&key, "store", &[]).broken.is_none());
    }

    #[test]
    fn an_edited_entry_is_altered() {
        let key = key();
        let mut records = log(&key, 5);
        let last = records[2].sealed.len() - 1;
        records[2].sealed[last] ^= 1;
        let reading = open(&key, "store", &records);
        assert_eq!(
            reading.broken,
            Some(Broken {
                seq: 3,
                problem: Problem::Altered,
                through: None,
            })
        );
        assert_eq!(reading.entries.len(), 4, "the others still show");
        // Another store's log does not open here.
        assert_eq!(
            open(&key, "other store", &log(&key, 2))
                .broken
                .unwrap()
                .problem,
            Problem::Altered
        );
    }

    #[test]
    fn a_deleted_entry_is_missing() {
        let key = key();
        let mut records = log(&key, 5);
        records.remove(1);
        let broken = open(&key, "store", &records).broken.unwrap();
        assert_eq!(
            broken.to_string(),
            "entry 2 is missing (deleted; later entries remain)"
        );
        let mut first_gone = log(&key, 3);
        first_gone.remove(0);
        assert_eq!(open(&key, "store", &first_gone).broken.unwrap().seq, 1);
    }

    #[test]
    fn a_replaced_entry_breaks_the_chain() {
        let key = key();
        let mut records = log(&key, 5);
        // Entry 3 rewritten by someone holding the key, well formed and in place: entry 4
        // no longer follows it.
        records[2] = seal(
            &key,
            "store",
            &entry(3, "cio_aws_secret_key"),
            Some(&records[1]),
        );
        let broken = open(&key, "store", &records).broken.unwrap();
        assert_eq!(
            broken.to_string(),
            "entry 4 does not follow entry 3 (that entry was replaced)"
        );
        // A sealed entry moved to another place does not open there.
        let mut moved = log(&key, 5);
        moved[3].sealed = moved[2].sealed.clone();
        assert_eq!(
            open(&key, "store", &moved).broken.unwrap(),
            Broken {
                seq: 4,
                problem: Problem::Altered,
                through: None,
            }
        );
    }

    #[test]
    fn no_value_can_be_in_an_entry() {
        // The entry type has no field for a value: only names, numbers and our own words.
        let json = serde_json::to_value(entry(1, "cio_aws_access_key")).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let fields = "actor at_ms command name outcome seq version";
        assert_eq!(keys.join(" "), fields);
    }

    /// A re-seal under a new key keeps an acknowledgement holding: its digest is made again
    /// over the entries as re-sealed (they all change), and the break it accepted stays
    /// accepted; under the old digest it would read as a log changed since.
    #[test]
    fn a_reseal_keeps_an_acknowledgement() {
        let (old, new) = (key(), key());
        let mut records = log(&old, 4);
        records.remove(1);
        let mut ack = entry(5, "cio_aws_access_key");
        ack.command = ACKNOWLEDGE.into();
        ack.prefix_sha256 = Some(prefix_digest(&records));
        let sealed = seal(&old, "store", &ack, records.last());
        records.push(sealed);
        let before = open(&old, "store", &records);
        assert_eq!((before.broken, before.acknowledged), (None, Some(5)));
        let resealed = reseal(&old, &new, "store", &records);
        let after = open(&new, "store", &resealed);
        assert_eq!((after.broken, after.acknowledged), (None, Some(5)));
        assert_eq!(after.entries.len(), 4);
    }

    /// A run of deleted entries is one break naming the whole run (the review's finding: it
    /// named its first entry alone, and an acknowledgement accepted the rest unsaid).
    #[test]
    fn a_run_of_deleted_entries_is_named_whole() {
        let key = key();
        let mut records = log(&key, 6);
        records.drain(1..4);
        let broken = open(&key, "store", &records).broken.unwrap();
        assert_eq!(
            (broken.seq, broken.problem, broken.through),
            (2, Problem::Missing, Some(4))
        );
        assert_eq!(
            broken.to_string(),
            "entries 2 to 4 are missing (deleted; later entries remain)"
        );
        let one = log(&key, 3);
        let broken = open(&key, "store", &[one[0].clone(), one[2].clone()])
            .broken
            .unwrap();
        assert_eq!(broken.through, None);
    }

    /// A gap before an entry that does not open is said when later entries follow (the
    /// review's finding: entry 2 deleted before an altered entry 3 went unsaid, and an
    /// acknowledgement accepted it unlisted); the log's last entry alone, after a gap, is not.
    #[test]
    fn a_gap_before_an_altered_entry_is_said() {
        let key = key();
        let mut records = log(&key, 5);
        records.remove(1);
        let last = records[1].sealed.len() - 1;
        records[1].sealed[last] ^= 1;
        let breaks = open(&key, "store", &records).breaks;
        let found: Vec<(u64, Problem)> = breaks.iter().map(|b| (b.seq, b.problem)).collect();
        assert_eq!(found, [(2, Problem::Missing), (3, Problem::Altered)]);
        let mut forged = log(&key, 2);
        forged.push(LogRecord {
            seq: 1000,
            sealed: vec![0; 80],
        });
        let found: Vec<(u64, Problem)> = open(&key, "store", &forged)
            .breaks
            .iter()
            .map(|b| (b.seq, b.problem))
            .collect();
        assert_eq!(found, [(1000, Problem::Altered)]);
    }
}
