//! Step 8: does the password open a key file, and the `config` with it? Searched exactly as
//! restic 0.14 searches (`repository.SearchKey`), since where restic stops is where it fails:
//! - with a key hint (`RESTIC_KEY_HINT`) that is the start of exactly one name listed in the
//!   key folder, that file is tried first; if it does not open, for any reason, restic goes on;
//! - then the names in listing order: every name counts towards the limit of 20
//!   ([`restic::MAX_KEY_FILES`]; at the 21st restic stops, "maximum number of keys
//!   reached"), a name that is not a key id (64 hex digits, [`restic::is_id`]) is skipped,
//!   a key the password does not open (its MAC) is passed over, and any other failure — a
//!   file that is not JSON, names no scrypt, has a bad salt or parameters, or cannot be read —
//!   stops the search: restic fails with it even when a later key is the right one;
//! - the `config` is then opened and checked with the key found ([`restic::MasterKey`]).
//!
//! The names restic lists are the key folder's objects, then its sub-folders (minio-go
//! returns a page's objects before its common prefixes; a listing of over 1000 names could
//! interleave them differently, and only the first 21 matter).
//!
//! Key files are read together; the key derivations run one after the other, each on all its
//! scrypt lanes at once, off the async threads, bounded by the set's deadline.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::timeout_at;

use super::failure::{Action, Place};
use super::s3::{Listing, S3};
use super::{Check, KEY_HINT_VARIABLE, Options, Step};
use crate::catalog::Field;
use crate::restic::{self, MasterKey, RepoConfig, ResticError};
use crate::secret::SecretValue;

/// The names restic's listing of a key folder gives, in its order: objects, then folders.
pub(crate) fn listed_names(listing: &Listing) -> Vec<String> {
    let base = |k: &str| {
        k.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(k)
            .to_string()
    };
    listing
        .keys
        .iter()
        .chain(&listing.prefixes)
        .map(|k| base(k))
        .collect()
}

/// What restic 0.14 will try, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The file the hint names, tried first.
    pub hinted: Option<String>,
    pub hint: HintUse,
    /// The key ids among the first [`restic::MAX_KEY_FILES`] names, in order.
    pub listed: Vec<String>,
    /// Names among those that are not key ids: restic skips them.
    pub skipped: Vec<String>,
    /// More names than restic looks at.
    pub limited: bool,
}

impl Plan {
    pub(crate) fn new(names: &[String], hint: Option<&str>) -> Plan {
        let mut plan = Plan {
            hinted: None,
            hint: HintUse::None,
            listed: Vec::new(),
            skipped: Vec::new(),
            limited: names.len() > restic::MAX_KEY_FILES,
        };
        if let Some(hint) = hint.filter(|h| !h.is_empty()) {
            // restic.Find: every listed name, a plain prefix match, stopped by a second match.
            let mut found = names.iter().filter(|n| n.starts_with(hint));
            plan.hint = match (found.next(), found.next()) {
                (Some(one), None) => {
                    plan.hinted = Some(one.clone());
                    HintUse::Found
                }
                (None, _) => HintUse::NoMatch,
                (Some(_), Some(_)) => HintUse::Ambiguous,
            };
        }
        for name in names.iter().take(restic::MAX_KEY_FILES) {
            if restic::is_id(name) {
                plan.listed.push(name.clone());
            } else {
                plan.skipped.push(name.clone());
            }
        }
        plan
    }

    /// The files to read: the hinted one and the listed ones, each once.
    pub(crate) fn files(&self) -> Vec<&String> {
        let mut files: Vec<&String> = self.hinted.iter().collect();
        files.extend(
            self.listed
                .iter()
                .filter(|n| Some(*n) != self.hinted.as_ref()),
        );
        files
    }
}

/// What became of the key hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HintUse {
    None,
    Found,
    NoMatch,
    Ambiguous,
}

/// How restic's key search ends.
#[derive(Debug)]
pub(crate) enum Search {
    Opened {
        id: String,
        master: MasterKey,
    },
    /// "wrong password or no key found".
    NotFound,
    /// "maximum number of keys reached".
    Limited,
    /// A listed key restic cannot use stopped the search.
    Stopped {
        id: String,
        error: ResticError,
    },
}

/// Runs the search of `plan` over the files read (`None`: listed but not readable as a
/// file). Each file is tried at most once; its outcome is the same the second time.
pub(crate) fn search(
    plan: &Plan,
    files: &HashMap<String, Option<Bytes>>,
    password: &SecretValue,
) -> Search {
    let mut tried: HashMap<String, Result<(), ResticError>> = HashMap::new();
    let mut attempt = |name: &str| -> Result<Option<MasterKey>, ResticError> {
        if let Some(earlier) = tried.get(name) {
            return earlier.clone().map(|()| None);
        }
        let outcome = match files.get(name) {
            Some(Some(bytes)) => restic::KeyFile::parse(bytes).and_then(|key| key.open(password)),
            _ => Err(ResticError::Malformed {
                what: "key file",
                why: "it is listed but cannot be read (a folder, or removed meanwhile)".into(),
            }),
        };
        match outcome {
            Ok(master) => Ok(Some(master)),
            Err(e) => {
                let kept = match &e {
                    ResticError::WrongPassword => Ok(()),
                    other => Err(other.clone()),
                };
                tried.insert(name.to_string(), kept);
                Err(e)
            }
        }
    };
    if let Some(hinted) = &plan.hinted
        && let Ok(Some(master)) = attempt(hinted)
    {
        return Search::Opened {
            id: hinted.clone(),
            master,
        };
    }
    for name in &plan.listed {
        match attempt(name) {
            Ok(Some(master)) => {
                return Search::Opened {
                    id: name.clone(),
                    master,
                };
            }
            Ok(None) | Err(ResticError::WrongPassword) => {}
            Err(error) => {
                return Search::Stopped {
                    id: name.clone(),
                    error,
                };
            }
        }
    }
    if plan.limited {
        Search::Limited
    } else {
        Search::NotFound
    }
}

/// What step 8 found: the master key and `config`, for the steps after it.
pub(super) struct Opened {
    pub master: MasterKey,
    pub config: RepoConfig,
}

/// Runs step 8. `folder` is the key folder of the repository's layout (`keys` or `key`).
pub(super) async fn check(
    s3: &S3,
    place: &Place,
    keys: &Listing,
    folder: &str,
    config: &Bytes,
    password: &SecretValue,
    opts: &Options,
) -> (Check, Option<Opened>) {
    let name = place.name(Field::BackupPassword);
    let names = listed_names(keys);
    let total = names.len();
    if total == 0 {
        let check = Check::fail(
            Step::Password,
            "no_keys",
            format!(
                "the repository has no key files under {folder}/; it is damaged or not a restic repository"
            ),
        );
        return (check, None);
    }
    let plan = Plan::new(&names, opts.key_hint.as_deref());
    let wanted = plan.files();
    let dir = super::steps::object_key(&place.prefix, folder);
    let objects: Vec<String> = wanted.iter().map(|n| format!("{dir}/{n}")).collect();
    let reads = futures_util::future::join_all(objects.iter().map(|k| s3.get(k))).await;
    let mut files = HashMap::new();
    for (n, read) in wanted.iter().zip(reads) {
        match read {
            Ok(bytes) => {
                files.insert((*n).clone(), bytes);
            }
            Err(f) => return (place.check(Step::Password, Action::Read, &f), None),
        }
    }
    let tried = files.len();
    let config_is_text = looks_like_text(config);
    let config = config.clone();
    // A copy the blocking task owns; zeroed when dropped like the original.
    let password = SecretValue::new(password.expose().to_string());
    let search_plan = plan.clone();
    let work = tokio::task::spawn_blocking(move || {
        let found = search(&search_plan, &files, &password);
        let config = match &found {
            Search::Opened { master, .. } => Some(master.open_config(&config)),
            _ => None,
        };
        (found, config)
    });
    let secs = opts.timeout.as_secs_f64();
    let (found, config) = match timeout_at(s3.deadline(), work).await {
        Err(_) => {
            let check = Check::fail(
                Step::Password,
                "timeout",
                format!(
                    "trying the password on {tried} key files took longer than {secs}s; validate again with a longer --timeout"
                ),
            );
            return (check, None);
        }
        Ok(Err(e)) => {
            let check = Check::fail(
                Step::Password,
                "internal",
                format!("the password check stopped: {e}"),
            );
            return (check, None);
        }
        Ok(Ok(outcome)) => outcome,
    };
    let hint_note = match plan.hint {
        HintUse::None | HintUse::Found => String::new(),
        HintUse::NoMatch => format!(" ({KEY_HINT_VARIABLE} names no key file)"),
        HintUse::Ambiguous => {
            format!(" ({KEY_HINT_VARIABLE} names several key files: give more digits)")
        }
    };
    let skipped_note = match plan.skipped.as_slice() {
        [] => String::new(),
        [one] => format!(
            " (restic does not read {folder}/{one}: a key file's name is its 64-digit id; if it is this password's key, rename it to its id)"
        ),
        more => format!(
            " (restic does not read {} names in {folder}/ that are not 64-digit key ids, such as {folder}/{}; if one is this password's key, rename it to its id)",
            more.len(),
            more[0]
        ),
    };
    let check = match (found, config) {
        (Search::Opened { id, master }, Some(Ok(config))) => {
            let check = Check::ok(
                Step::Password,
                format!(
                    "the password opens key {}; repository {}, format version {}",
                    short(&id),
                    short(&config.id),
                    config.version
                ),
            );
            return (check, Some(Opened { master, config }));
        }
        (Search::Opened { id, .. }, Some(Err(e))) => {
            let at = ConfigAt {
                key_object: format!("{}/{dir}/{id}", place.bucket),
                config_object: format!(
                    "{}/{}",
                    place.bucket,
                    super::steps::object_key(&place.prefix, "config")
                ),
                only_key: total == 1,
                text: config_is_text,
            };
            config_failure(&id, &e, &name.to_string(), &at)
        }
        (Search::Opened { .. }, None) => Check::fail(
            Step::Password,
            "internal",
            "the password check stopped before reading the config; run validate again",
        ),
        (Search::Limited, _) => Check::fail(
            Step::Password,
            "too_many_keys",
            format!(
                "the password in {name} opens none of the first {} of the repository's {total} key files, and restic tries no more{hint_note}{skipped_note}; if it belongs to a later key, set {KEY_HINT_VARIABLE} to that key's id ('restic key list' shows them) for validate and restic",
                restic::MAX_KEY_FILES
            ),
        ),
        (Search::NotFound, _) => Check::fail(
            Step::Password,
            "wrong_password",
            format!(
                "the password in {name} opens none of the repository's {total} key files{hint_note}{skipped_note}; store a password one of its keys opens with 'cio credential create {name} --force' (--force: the stored one already fails, so nothing is rotated)"
            ),
        ),
        (Search::Stopped { id, error }, _) => Check::fail(
            Step::Password,
            "bad_key_file",
            format!(
                "restic stops at the key file {folder}/{id} before it reaches a key this password opens, so every restic command fails: {error}; remove the object '{}/{dir}/{id}' with an S3 tool (restic cannot open the repository to remove it; keep a copy if in doubt), then check the keys left with '{}'",
                place.bucket,
                place.set.keys_command()
            ),
        ),
    };
    (check, None)
}

/// Where the key and the config that failed are, and what their bytes show.
struct ConfigAt {
    /// The key file's bucket and object key.
    key_object: String,
    /// The config's bucket and object key.
    config_object: String,
    /// The key file is the only one the repository lists.
    only_key: bool,
    /// The config's bytes are plain text ([`looks_like_text`]).
    text: bool,
}

/// Whether a config's bytes are plain printable ASCII text (a JSON config written
/// unencrypted, say): restic's sealed config starts with 16 random IV bytes and ends with a
/// 16-byte MAC, which are all printable only with a chance below 1 in 10^13.
fn looks_like_text(config: &[u8]) -> bool {
    config
        .iter()
        .all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r'))
}

/// The check when the key opened but `config` did not pass restic's `LoadConfig`. A config
/// the key's master key does not authenticate (restic: "config or key is damaged") is
/// either another repository's key file (copied into this one's key folder: a key file
/// opening with the password holds a master key its own MAC vouches for) or a damaged
/// config, and nothing in the bytes tells which: `foreign_key`, whose message says both and
/// what to do for each, since the password does not open the repository either way. Where
/// the bytes show damage (too short to be sealed, plain text), it is `config_damaged`.
/// `name` is the password's credential.
fn config_failure(id: &str, e: &ResticError, name: &str, at: &ConfigAt) -> Check {
    let ConfigAt {
        key_object,
        config_object,
        ..
    } = at;
    let short = short(id);
    let restic_says =
        format!("restic: \"config or key {short} is damaged: ciphertext verification failed\"");
    match e {
        ResticError::Unauthenticated(_) if at.text => Check::fail(
            Step::Password,
            "config_damaged",
            format!(
                "the repository's config is plain text, not restic's encrypted format ({restic_says}); the config is damaged or was replaced: restore '{config_object}' from a copy of the bucket"
            ),
        ),
        ResticError::Unauthenticated(_) if at.only_key => Check::fail(
            Step::Password,
            FOREIGN_KEY,
            format!(
                "the password in {name} opens key {short}, the repository's only key file, but that key's master key does not open the repository's config ({restic_says}); either the config is damaged, or '{key_object}' is another repository's key file and this repository's own keys are gone: in both cases restore the repository's config and keys/ from a copy of the bucket"
            ),
        ),
        ResticError::Unauthenticated(_) => Check::fail(
            Step::Password,
            FOREIGN_KEY,
            format!(
                "the password in {name} opens key {short}, but that key's master key does not open the repository's config ({restic_says}); either '{key_object}' is another repository's key file and the password is not this repository's: store a password one of its own keys opens with 'cio credential create {name} --force', and remove that key file with an S3 tool if nobody put it there on purpose; or the config is damaged (then no password opens it): restore '{config_object}' from a copy of the bucket"
            ),
        ),
        ResticError::UnsupportedVersion(v) => Check::fail(
            Step::Password,
            "repo_version",
            format!(
                "the repository's config says format version {v}, which restic 0.14 cannot open (\"unsupported repository version {v}\"; it knows versions 1 and 2); use the restic release that made the repository on this node, or restore the repository's config if it was changed"
            ),
        ),
        ResticError::InvalidPolynomial(_) => Check::fail(
            Step::Password,
            "config_damaged",
            "the repository's config names a chunker polynomial restic refuses (\"invalid chunker polynomial\"); the config is damaged: restore it from a copy",
        ),
        other => Check::fail(
            Step::Password,
            "config_damaged",
            format!(
                "restic cannot load the repository's config (\"config cannot be loaded\"): {other}; the config is damaged: restore it from a copy"
            ),
        ),
    }
}

/// The code of a password whose key file opens but holds another repository's master key
/// (the repository's config does not open with it): like `wrong_password`, the password
/// does not open this repository.
pub(crate) const FOREIGN_KEY: &str = "foreign_key";

/// The first 8 characters of an id, as restic shows them.
pub(super) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests;
