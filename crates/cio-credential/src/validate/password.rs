//! Step 8: does the password open a key file, and the `config` with it? Searched as restic
//! 0.14 searches (`repository.SearchKey`):
//! - with a key hint (`RESTIC_KEY_HINT`, the id of a key file or its first digits) that names
//!   exactly one key file, that file is tried first;
//! - then the key files in listing order, at most 20 ([`restic::MAX_KEY_FILES`]): with more,
//!   restic stops ("maximum number of keys reached"), and so does validate, saying so.
//!
//! Key files are read together; the key derivations run one after the other, each on all its
//! scrypt lanes at once, off the async threads, bounded by the set's deadline.

use bytes::Bytes;
use tokio::time::timeout_at;

use super::failure::{Action, Place};
use super::s3::{Listing, S3};
use super::{Check, KEY_HINT_VARIABLE, Options, Step};
use crate::catalog::Field;
use crate::restic::{self, ResticError};
use crate::secret::SecretValue;

/// The id of a key file (the last part of its object key).
fn id(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The key files to try, in restic's order: the hinted one first (when the hint names exactly
/// one), then the first [`restic::MAX_KEY_FILES`] of the listing.
pub(crate) fn search_order<'a>(
    keys: &'a [String],
    hint: Option<&str>,
) -> (Vec<&'a String>, HintUse) {
    let mut order = Vec::new();
    let mut hint_use = HintUse::None;
    if let Some(hint) = hint.filter(|h| !h.is_empty()) {
        let matches: Vec<&String> = keys.iter().filter(|k| id(k).starts_with(hint)).collect();
        hint_use = match matches.as_slice() {
            [one] => {
                order.push(*one);
                HintUse::Found
            }
            [] => HintUse::NoMatch,
            _ => HintUse::Ambiguous,
        };
    }
    let hinted = order.first().copied();
    order.extend(
        keys.iter()
            .take(restic::MAX_KEY_FILES)
            .filter(|k| Some(*k) != hinted),
    );
    (order, hint_use)
}

/// What became of the key hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HintUse {
    None,
    Found,
    NoMatch,
    Ambiguous,
}

/// Runs step 8.
pub(super) async fn check(
    s3: &S3,
    place: &Place,
    keys: &Listing,
    config: &Bytes,
    password: &SecretValue,
    opts: &Options,
) -> Check {
    let name = place.name(Field::BackupPassword);
    let total = keys.keys.len();
    if total == 0 {
        return Check::fail(
            Step::Password,
            "no_keys",
            "the repository has no key files under keys/; it is damaged or not a restic repository",
        );
    }
    let (order, hint_use) = search_order(&keys.keys, opts.key_hint.as_deref());
    let reads = futures_util::future::join_all(order.iter().map(|k| s3.get(k))).await;
    let mut files = Vec::with_capacity(order.len());
    for (key, read) in order.iter().zip(reads) {
        match read {
            Ok(Some(bytes)) => files.push((id(key).to_string(), bytes)),
            Ok(None) => {}
            Err(f) => return place.check(Step::Password, Action::Read, &f),
        }
    }
    let tried = files.len();
    let config = config.clone();
    // A copy the blocking task owns; zeroed when dropped like the original.
    let password = SecretValue::new(password.expose().to_string());
    let work = tokio::task::spawn_blocking(move || {
        let opened = restic::open_any(
            files.iter().map(|(id, b)| (id.as_str(), b.as_ref())),
            &password,
        )?;
        opened
            .map(|(id, master)| master.open_config(&config).map(|c| (id, c)))
            .transpose()
    });
    let secs = opts.timeout.as_secs_f64();
    let outcome = match timeout_at(s3.deadline(), work).await {
        Err(_) => {
            return Check::fail(
                Step::Password,
                "timeout",
                format!(
                    "trying the password on {tried} key files took longer than {secs}s; validate again with a longer --timeout"
                ),
            );
        }
        Ok(Err(e)) => {
            return Check::fail(
                Step::Password,
                "internal",
                format!("the password check stopped: {e}"),
            );
        }
        Ok(Ok(outcome)) => outcome,
    };
    let hint_note = match hint_use {
        HintUse::None | HintUse::Found => String::new(),
        HintUse::NoMatch => format!(" ({KEY_HINT_VARIABLE} names no key file)"),
        HintUse::Ambiguous => {
            format!(" ({KEY_HINT_VARIABLE} names several key files: give more digits)")
        }
    };
    match outcome {
        Ok(Some((id, config))) => Check::ok(
            Step::Password,
            format!(
                "the password opens key {}; repository {}, format version {}",
                short(&id),
                short(&config.id),
                config.version
            ),
        ),
        Ok(None) if total > restic::MAX_KEY_FILES => Check::fail(
            Step::Password,
            "too_many_keys",
            format!(
                "the password in {name} opens none of the first {} of the repository's {total} key files, and restic tries no more{hint_note}; if it belongs to a later key, set {KEY_HINT_VARIABLE} to that key's id ('restic key list' shows them) for validate and restic",
                restic::MAX_KEY_FILES
            ),
        ),
        Ok(None) => Check::fail(
            Step::Password,
            "wrong_password",
            format!(
                "the password in {name} opens none of the repository's {total} key files{hint_note}; store a password one of its keys opens with 'cio credential create {name} --force' (--force: the stored one already fails, so nothing is rotated)"
            ),
        ),
        Err(ResticError::Unauthenticated(what)) => Check::fail(
            Step::Password,
            "config_damaged",
            format!(
                "the password opens a key, but the repository's {what} does not open with it; the repository is damaged"
            ),
        ),
        Err(e) => Check::fail(
            Step::Password,
            "bad_key_file",
            format!("{e}; the repository's keys/ folder is damaged"),
        ),
    }
}

/// The first 8 characters of an id, as restic shows them.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("repo/keys/{i:02x}{}", "0".repeat(62)))
            .collect()
    }

    #[test]
    fn at_most_twenty_in_listing_order() {
        let all = keys(25);
        let (order, hint) = search_order(&all, None);
        assert_eq!(order.len(), 20);
        assert_eq!(order[0], &all[0]);
        assert_eq!(order[19], &all[19]);
        assert_eq!(hint, HintUse::None);
    }

    #[test]
    fn a_hint_that_names_one_key_goes_first() {
        let all = keys(25);
        let (order, hint) = search_order(&all, Some("18"));
        assert_eq!(hint, HintUse::Found);
        assert_eq!(order[0], &all[0x18]);
        assert_eq!(order.len(), 21);
        let (order, hint) = search_order(&all, Some("0"));
        assert_eq!(hint, HintUse::Ambiguous);
        assert_eq!(order.len(), 20);
        let (_, hint) = search_order(&all, Some("ff"));
        assert_eq!(hint, HintUse::NoMatch);
        // A hinted key among the first 20 is not tried twice.
        let (order, _) = search_order(&all, Some("03"));
        assert_eq!(order.len(), 20);
        assert_eq!(order[0], &all[3]);
    }
}
