//! Escrow: a sealed bundle kept as one object beside the set's repository, because the
//! bucket is what survives a lost cluster.
//!
//! Rules:
//! - the object is `<bucket>/<prefix>/cio-recovery.age` ([`OBJECT_NAME`] at the repository's
//!   root). restic 0.14 never lists the repository's root: it reads `config` by name and
//!   lists only `data/`, `keys/`, `locks/`, `snapshots/` and `index/` (its S3 backend's
//!   layout), so `check`, `prune` and `copy` neither see nor remove the object;
//! - an escrow bundle is sealed to recipients only (automation has no one to type a
//!   passphrase);
//! - it is written with the set's own keys and read back with any key that may read the
//!   bucket; one attempt per request, each bounded by [`TIMEOUT`];
//! - beside it, [`MARKER_NAME`] holds the public fingerprint of the recipients the bundle
//!   was sealed to ([`fingerprint`]: `sha256:` and the hex SHA-256 of the sorted public
//!   keys, one a line). A write replaces an object only when its marker names this node's
//!   recipients, or there is no object: an object sealed to others (another cluster's, whose
//!   set was imported here as a primary one) or without a marker (an older cio's) is left as
//!   it is ([`EscrowError::SealedToOthers`], [`EscrowError::Unmarked`]) unless replaced
//!   deliberately. The bundle is written first and its marker second: a marker that failed
//!   to follow leaves a mismatch, refused next time, never a marker vouching for an object
//!   it does not describe;
//! - all S3 traffic of this module goes through [`transfer`], one small function, so it can
//!   be pointed at another S3 client without touching the rest;
//! - a bundle read back is that repository's only if every set it holds names the same
//!   repository as the URL it was read from ([`check_origin`]), compared as restic reads
//!   both: anyone who may write to the bucket can put there a bundle sealed to the public
//!   recovery recipient whose repository is theirs, and a restore would then read their
//!   data.

use std::time::Duration;

use super::RecoveryError;
use super::bundle::Bundle;
pub use super::error::EscrowError;
use super::seal::{Recipient, SealTo, seal};
use crate::catalog::{Field, RepoUrl, Role, SetId};
use crate::credentials::CredentialStore;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter, SetValues};
use crate::validate::object::{self, ObjectFailure, ObjectKeys};

/// The escrow object's name, at the repository's root.
pub const OBJECT_NAME: &str = "cio-recovery.age";

/// The marker beside the escrow object: the fingerprint of the recipients it was sealed to.
pub const MARKER_NAME: &str = "cio-recovery.recipients";

/// The longest one escrow request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The region requests are signed for when the set names none.
const DEFAULT_REGION: &str = "us-east-1";

/// The largest escrow object read back: a bundle of every set with a long history is far
/// smaller.
const MAX_OBJECT: usize = 16 * 1024 * 1024;

/// The key of the object `name` at the root of the repository `repo`.
fn key_at_root(repo: &RepoUrl, name: &str) -> String {
    if repo.prefix.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", repo.prefix)
    }
}

/// The public fingerprint of `recipients`: `sha256:` and the hex SHA-256 of their public
/// keys ([`Recipient::key_text`]), sorted, without duplicates, one a line.
pub fn fingerprint(recipients: &[Recipient]) -> String {
    use sha2::Digest;
    let mut keys: Vec<String> = recipients.iter().map(Recipient::key_text).collect();
    keys.sort();
    keys.dedup();
    let mut hash = sha2::Sha256::new();
    for key in &keys {
        hash.update(key.as_bytes());
        hash.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// What is beside a repository, compared with this node's recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escrowed {
    /// No escrow object.
    Absent,
    /// An object whose marker names this node's recipients.
    Ours,
    /// An object whose marker names other recipients.
    Others,
    /// An object without a marker (an older cio's, or another tool's).
    Unmarked,
}

/// What is beside the repository `repo_url`, read with `access`, compared with `recipients`.
/// The marker is read first: when it names them, the object is not read at all.
fn escrowed(
    repo_url: &str,
    access: &BucketKeys<'_>,
    recipients: &[Recipient],
) -> Result<Escrowed, EscrowError> {
    let marker = match transfer_at(repo_url, access, MARKER_NAME, None) {
        Ok(text) => Some(text),
        Err(EscrowError::Missing { .. }) => None,
        Err(e) => return Err(e),
    };
    let ours = fingerprint(recipients);
    if marker
        .as_deref()
        .is_some_and(|m| String::from_utf8_lossy(m).trim() == ours)
    {
        return Ok(Escrowed::Ours);
    }
    match get_bundle(repo_url, access) {
        Err(EscrowError::Missing { .. }) => Ok(Escrowed::Absent),
        Err(e) => Err(e),
        Ok(_) if marker.is_some() => Ok(Escrowed::Others),
        Ok(_) => Ok(Escrowed::Unmarked),
    }
}

/// What is beside the repository of `values` (a set as an import would leave it, read with
/// its keys), compared with `recipients`: an import of another cluster's set as a primary
/// one finds that cluster's object ([`Escrowed::Others`]).
pub fn escrowed_beside(
    values: SetValues,
    recipients: &[Recipient],
) -> crate::Result<(String, Escrowed)> {
    let (repo, access) = bucket_of(values)?;
    let found = escrowed(repo.expose(), &access.keys(), recipients).map_err(RecoveryError::from)?;
    Ok((location(repo.expose()), found))
}

/// The escrow object of the repository `repo_url`, as restic would write its URL (for
/// messages).
pub fn location(repo_url: &str) -> String {
    format!("{}/{OBJECT_NAME}", repo_url.trim_end_matches('/'))
}

/// The keys and region a request is signed with.
pub struct BucketKeys<'a> {
    pub access_key: &'a SecretValue,
    pub secret_key: &'a SecretValue,
    /// The signing region (the set's optional region credential); `None`: us-east-1.
    pub region: Option<&'a str>,
    /// The set's CA certificate (PEM, its optional `_cacert` credential), trusted besides the
    /// system's: an endpoint with a private CA is reached as validate and exec reach it.
    pub cacert: Option<&'a str>,
}

/// Stores `sealed`, sealed to `recipients`, as the escrow object of the repository
/// `repo_url`, and its marker after it. An earlier object is replaced only if it is
/// [`Escrowed::Ours`], or with `replace`; else [`EscrowError::SealedToOthers`] or
/// [`EscrowError::Unmarked`] (for `set`), and nothing is written.
fn put_bundle(
    repo_url: &str,
    access: &BucketKeys<'_>,
    sealed: &[u8],
    recipients: &[Recipient],
    (set, replace): (SetId, bool),
) -> Result<(), EscrowError> {
    if !replace {
        let location = location(repo_url);
        match escrowed(repo_url, access, recipients)? {
            Escrowed::Absent | Escrowed::Ours => {}
            Escrowed::Others => return Err(EscrowError::SealedToOthers { location, set }),
            Escrowed::Unmarked => return Err(EscrowError::Unmarked { location, set }),
        }
    }
    transfer(repo_url, access, Some(sealed))?;
    let marker = format!("{}\n", fingerprint(recipients));
    transfer_at(repo_url, access, MARKER_NAME, Some(marker.as_bytes())).map(drop)
}

/// Reads the escrow object of the repository `repo_url`.
pub fn get_bundle(repo_url: &str, access: &BucketKeys<'_>) -> Result<Vec<u8>, EscrowError> {
    transfer(repo_url, access, None)
}

/// Whose keys an import reads an escrow object with, for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadWith {
    /// Keys given on standard input or at the prompt.
    Given,
    /// This store's keys of the alternate set `set`: named with `--provider` (`named`), or
    /// because its repository is at the same endpoint as the one read.
    Stored { set: SetId, named: bool },
}

impl std::fmt::Display for ReadWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadWith::Given => f.write_str("the keys given"),
            ReadWith::Stored { set, named: true } => write!(
                f,
                "the stored keys of this store's {set} set (--provider {})",
                set.provider
            ),
            ReadWith::Stored { set, named: false } => write!(
                f,
                "the stored keys of this store's {set} set, whose repository is at the same endpoint"
            ),
        }
    }
}

/// The keys of this store that read the bucket of the repository `repo_url`, for an import
/// of its escrow object: the alternate set of `provider` when it is given, else an
/// alternate set whose repository is at the same endpoint (scheme, host and port, as
/// restic reads both URLs). Only a set that holds both keys counts; its region and CA
/// certificate go with them. `None`: this store holds no keys for that repository, and the
/// caller asks for them. Keys of an unrelated cluster (another endpoint) are never sent.
pub fn stored_keys(
    credentials: &CredentialStore,
    repo_url: &str,
    provider: Option<crate::catalog::Provider>,
) -> Result<Option<(ReadWith, StoredKeys)>, EscrowError> {
    let given = RepoUrl::parse(repo_url).map_err(EscrowError::BadRepository)?;
    let filter = SetFilter {
        name: None,
        provider,
        role: Some(Role::Alternate),
    };
    let sets = credentials
        .sets(&filter, Purpose::Check)
        .unwrap_or_default();
    let belongs = |values: &crate::sets::SetValues| {
        provider.is_some()
            || values
                .backup_repo
                .as_ref()
                .and_then(|repo| RepoUrl::parse(repo.expose()).ok())
                .is_some_and(|theirs| same_endpoint(&theirs, &given))
    };
    Ok(sets
        .into_iter()
        .filter(|values| belongs(values))
        .find_map(|values| {
            let (access_key, secret_key) = values.access_key.zip(values.secret_key)?;
            let with = ReadWith::Stored {
                set: values.set,
                named: provider.is_some(),
            };
            let keys = StoredKeys(SetBucket {
                access_key,
                secret_key,
                region: values.region,
                cacert: values.cacert,
            });
            Some((with, keys))
        }))
}

/// Whether two repositories are at the same endpoint: the scheme, and the host with its
/// port (a default port written out or not), the host in any case.
fn same_endpoint(a: &RepoUrl, b: &RepoUrl) -> bool {
    let with_port = |url: &RepoUrl| {
        let host = url.host.to_ascii_lowercase();
        // `[v6]:port` or `name:port`; an IPv6 address alone holds `:` only in brackets.
        let has_port = match host.rfind(']') {
            Some(end) => host[end + 1..].starts_with(':'),
            None => host.contains(':'),
        };
        if has_port {
            host
        } else {
            let port = if url.scheme == "https" { 443 } else { 80 };
            format!("{host}:{port}")
        }
    };
    a.scheme == b.scheme && with_port(a) == with_port(b)
}

/// A stored set's keys, region and CA certificate, owned ([`StoredKeys::keys`] lends them).
pub struct StoredKeys(SetBucket);

impl StoredKeys {
    /// The keys a request is signed with.
    pub fn keys(&self) -> BucketKeys<'_> {
        self.0.keys()
    }
}

/// [`get_bundle`] for an import: a refusal of the keys says whose they were
/// ([`EscrowError::ImportDenied`]), and how to give others.
pub fn read_bundle(
    repo_url: &str,
    access: &BucketKeys<'_>,
    with: ReadWith,
) -> Result<Vec<u8>, EscrowError> {
    get_bundle(repo_url, access).map_err(|e| match e {
        EscrowError::Denied { location, detail } => EscrowError::ImportDenied {
            location,
            detail,
            with,
        },
        other => other,
    })
}

/// Checks that `bundle`, read from the escrow object beside the repository `repo_url`, is
/// that repository's: each set it holds names a repository, and restic would read it as
/// `repo_url` (scheme, host, bucket and prefix as restic parses them, the host in any
/// case). A bundle's URL cio would not store is never repeated.
pub fn check_origin(bundle: &Bundle, repo_url: &str) -> Result<(), EscrowError> {
    let given = RepoUrl::parse(repo_url).map_err(EscrowError::BadRepository)?;
    let location = location(repo_url);
    for set in bundle.sets() {
        let theirs = bundle
            .credentials
            .iter()
            .find(|c| c.name == set.name(Field::BackupRepo))
            .and_then(|c| c.latest())
            .and_then(|v| v.value.as_ref());
        let Some(theirs) = theirs else {
            return Err(EscrowError::NoRepository { location, set });
        };
        let theirs = theirs.expose();
        // Only a URL cio would store is shown (the bundle's text is anyone's).
        let shown = crate::catalog::check_line(theirs)
            .ok()
            .and_then(|()| RepoUrl::parse(theirs).ok().map(|parsed| (parsed, theirs)));
        let same = shown.as_ref().is_some_and(|(parsed, _)| {
            parsed.scheme == given.scheme
                && parsed.host.eq_ignore_ascii_case(&given.host)
                && parsed.bucket == given.bucket
                && parsed.prefix == given.prefix
        });
        if !same {
            return Err(EscrowError::OtherRepository {
                location,
                set,
                given: repo_url.to_string(),
                theirs: shown.map(|(_, text)| text.to_string()),
            });
        }
    }
    Ok(())
}

/// Seals the live credentials of the primary set `set` to `recipients` and stores them as
/// the escrow object beside the set's repository, with the set's own keys. Returns the
/// object's location. A stored password the repository refuses is not sealed
/// ([`EscrowError::StoredPasswordRefused`]; the object in the bucket is left as it was), and
/// an object this node did not seal to these recipients is replaced only with `replace`
/// (see [`put_bundle`]).
pub fn escrow_set(
    credentials: &CredentialStore,
    set: SetId,
    recipients: Vec<Recipient>,
    replace: bool,
) -> crate::Result<String> {
    let values = primary_set(credentials, set)?;
    // A bundle whose password the repository refuses could not restore from it; it would
    // also replace one that can.
    super::proof::check_stored(&values).map_err(RecoveryError::from)?;
    let (repo, access) = bucket_of(values)?;
    let bundle = Bundle::from_store(credentials, &[set], false)?;
    let fingerprinted = recipients.clone();
    let sealed = seal(&bundle, &SealTo::Recipients(recipients))?;
    put_bundle(
        repo.expose(),
        &access.keys(),
        sealed.as_bytes(),
        &fingerprinted,
        (set, replace),
    )
    .map_err(RecoveryError::from)?;
    Ok(location(repo.expose()))
}

/// Whether an escrow object is beside the repository of the primary set `set` (read with
/// the set's own keys): a node without recovery recipients must not let it go stale.
pub fn escrow_present(credentials: &CredentialStore, set: SetId) -> crate::Result<bool> {
    let (repo, access) = set_bucket(credentials, set)?;
    match get_bundle(repo.expose(), &access.keys()) {
        Ok(_) => Ok(true),
        Err(EscrowError::Missing { .. }) => Ok(false),
        Err(e) => Err(RecoveryError::from(e).into()),
    }
}

/// The set's values that reach its bucket, owned ([`BucketKeys`] borrows them).
struct SetBucket {
    access_key: SecretValue,
    secret_key: SecretValue,
    region: Option<SecretValue>,
    cacert: Option<SecretValue>,
}

impl SetBucket {
    fn keys(&self) -> BucketKeys<'_> {
        BucketKeys {
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: self.region.as_ref().map(SecretValue::expose),
            cacert: self.cacert.as_ref().map(SecretValue::expose),
        }
    }
}

/// The repository URL of the primary set `set` and what reaches its bucket; the set must
/// be complete enough for that.
fn set_bucket(
    credentials: &CredentialStore,
    set: SetId,
) -> crate::Result<(SecretValue, SetBucket)> {
    bucket_of(primary_set(credentials, set)?)
}

/// The stored values of the primary set `set`.
fn primary_set(credentials: &CredentialStore, set: SetId) -> crate::Result<SetValues> {
    if set.role != Role::Primary {
        return Err(RecoveryError::from(EscrowError::AlternateSet).into());
    }
    let filter = SetFilter {
        name: None,
        provider: Some(set.provider),
        role: Some(set.role),
    };
    // The one set, complete, or `IncompleteSet` naming what it lacks.
    credentials
        .sets(&filter, Purpose::Use)?
        .pop()
        .ok_or_else(|| crate::Error::NoSuchSet(format!("there is no {set} set")))
}

/// The repository URL of a set's `values` and what reaches its bucket; the set must be
/// complete enough for that.
fn bucket_of(values: SetValues) -> crate::Result<(SecretValue, SetBucket)> {
    let set = values.set;
    let missing = values.status().missing;
    let (Some(repo), Some(access_key), Some(secret_key)) =
        (values.backup_repo, values.access_key, values.secret_key)
    else {
        return Err(crate::Error::IncompleteSet { set, missing });
    };
    Ok((
        repo,
        SetBucket {
            access_key,
            secret_key,
            region: values.region,
            cacert: values.cacert,
        },
    ))
}

/// The one place this module speaks S3: puts `body` as the escrow object (and returns
/// nothing), or without a body gets the object. Path-style, one attempt, the set's static
/// keys only (never the environment or a profile), through validate's S3 client (its proxy,
/// TLS and signing rules are restic's).
fn transfer(
    repo_url: &str,
    access: &BucketKeys<'_>,
    body: Option<&[u8]>,
) -> Result<Vec<u8>, EscrowError> {
    transfer_at(repo_url, access, OBJECT_NAME, body)
}

/// [`transfer`] of the object `name` at the repository's root (the escrow object or its
/// marker); messages name that object's location.
fn transfer_at(
    repo_url: &str,
    access: &BucketKeys<'_>,
    name: &str,
    body: Option<&[u8]>,
) -> Result<Vec<u8>, EscrowError> {
    let repo = RepoUrl::parse(repo_url).map_err(EscrowError::BadRepository)?;
    let location = format!("{}/{name}", repo_url.trim_end_matches('/'));
    let action = if body.is_some() { "written" } else { "read" };
    let keys = ObjectKeys {
        access_key: access.access_key,
        secret_key: access.secret_key,
        region: access.region.unwrap_or(DEFAULT_REGION),
        cacert: access.cacert,
    };
    let bytes = object::transfer(
        &repo,
        &keys,
        &key_at_root(&repo, name),
        body.map(<[u8]>::to_vec),
        TIMEOUT,
    )
    .map_err(|failure| match failure {
        ObjectFailure::Missing => EscrowError::Missing {
            location: location.clone(),
        },
        ObjectFailure::Denied(detail) => EscrowError::Denied {
            location: location.clone(),
            detail,
        },
        ObjectFailure::Failed(detail) => EscrowError::Failed {
            location: location.clone(),
            action,
            detail,
        },
    })?;
    if bytes.len() > MAX_OBJECT {
        return Err(EscrowError::Failed {
            location,
            action,
            detail: format!(
                "it is {} bytes, more than a recovery bundle can be",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::bundle::{BundledCredential, BundledVersion};
    use crate::store::Action;

    /// A bundle of the given names and values.
    fn bundle(values: &[(&str, &str)]) -> Bundle {
        Bundle {
            created_at_ms: 1,
            created_by: "cio test".into(),
            history: false,
            credentials: values
                .iter()
                .map(|(name, value)| BundledCredential {
                    name: name.parse().unwrap(),
                    versions: vec![BundledVersion {
                        version: 1,
                        action: Action::Create,
                        written_at_ms: 1,
                        value: Some(SecretValue::new((*value).into())),
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn a_bundle_read_back_must_name_the_repository_it_was_read_from() {
        let url = "s3:http://127.0.0.1:9000/cluster-a/backups";
        let own = bundle(&[
            ("cio_minio_backup_repo", url),
            ("cio_minio_backup_password", "the password"),
        ]);
        // The same repository, however restic would be given it.
        for given in [
            url,
            "s3:http://127.0.0.1:9000/cluster-a/backups/",
            "s3:http://127.0.0.1:9000/cluster-a/./backups",
            "s3:http://127.0.0.1:9000/cluster-a/other/../backups",
        ] {
            assert!(check_origin(&own, given).is_ok(), "{given}");
        }
        // Another bucket, prefix, host or scheme.
        for given in [
            "s3:http://127.0.0.1:9000/cluster-b/backups",
            "s3:http://127.0.0.1:9000/cluster-a",
            "s3:http://127.0.0.1:9001/cluster-a/backups",
            "s3:https://127.0.0.1:9000/cluster-a/backups",
        ] {
            let err = check_origin(&own, given).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the bundle at {given}/cio-recovery.age is not that repository's: the URL given is {given}, the bundle's minio primary set names {url}"
                )
            );
        }
        // A second set pointing elsewhere is refused too.
        let two = bundle(&[
            ("cio_minio_backup_repo", url),
            (
                "cio_aws_backup_repo",
                "s3:https://s3.amazonaws.com/attacker",
            ),
        ]);
        let err = check_origin(&two, url).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "the bundle's aws primary set names s3:https://s3.amazonaws.com/attacker"
            ),
            "{err}"
        );
        // A set that names no repository cannot be checked; a URL cio would not store is
        // not repeated (it is anyone's text, a terminal escape for one).
        let none = bundle(&[("cio_minio_backup_password", "the password")]);
        assert_eq!(
            check_origin(&none, url).unwrap_err().to_string(),
            format!(
                "the bundle at {url}/cio-recovery.age is not that repository's: the bundle's minio primary set names no repository"
            )
        );
        let odd = bundle(&[(
            "cio_minio_backup_repo",
            "s3:http://127.0.0.1:9000/\u{1b}[2J",
        )]);
        let err = check_origin(&odd, url).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "the bundle's minio primary set names a repository URL cio would not store"
            ),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'));
    }

    #[test]
    fn stored_keys_belong_to_repositories_at_the_same_endpoint() {
        let same = |a: &str, b: &str| {
            same_endpoint(&RepoUrl::parse(a).unwrap(), &RepoUrl::parse(b).unwrap())
        };
        assert!(same(
            "s3:http://127.0.0.1:9000/aaa",
            "s3:http://127.0.0.1:9000/bbb/c"
        ));
        assert!(same(
            "s3:https://MinIO.site-a/aaa",
            "s3:https://minio.site-a:443/bbb"
        ));
        assert!(same("s3:minio.site-a/aaa", "s3:https://minio.site-a/bbb"));
        assert!(same("s3:http://[::1]:9000/aaa", "s3:http://[::1]:9000/bbb"));
        assert!(same("s3:http://[::1]/aaa", "s3:http://[::1]:80/bbb"));
        assert!(!same(
            "s3:http://127.0.0.1:9000/aaa",
            "s3:http://127.0.0.1:9001/aaa"
        ));
        assert!(!same(
            "s3:http://minio.site-a/aaa",
            "s3:https://minio.site-a/aaa"
        ));
        assert!(!same(
            "s3:https://s3.amazonaws.com/aaa",
            "s3:https://minio.site-a/aaa"
        ));
    }

    #[test]
    fn the_fingerprint_is_of_the_sorted_public_keys() {
        let age = "age1ckdw3k8fl93xjwuc9y9la80wmuxpsfu4hwkgtyjuv4g8ftlggcgsj937ps";
        let ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPgR+Gi9ZKiubIGjeEV5OIhYKz2fFcZDVHyn4F1Bj5TO";
        let parse = |text: &str| Recipient::parse(text, crate::RecipientSource::Flag(1)).unwrap();
        let one = fingerprint(&[parse(age), parse(ssh)]);
        // Order, duplicates and an SSH key's comment do not count.
        let commented = format!("{ssh} admin@site-a");
        assert_eq!(
            fingerprint(&[parse(&commented), parse(age), parse(age)]),
            one
        );
        assert_ne!(fingerprint(&[parse(age)]), one);
        use sha2::Digest;
        let expected = sha2::Sha256::digest(format!("{age}\n{ssh}\n").as_bytes());
        assert_eq!(one, format!("sha256:{}", hex::encode(expected)));
    }

    #[test]
    fn the_object_sits_at_the_repository_root() {
        let at = |url: &str| key_at_root(&RepoUrl::parse(url).unwrap(), OBJECT_NAME);
        assert_eq!(at("s3:http://h:9000/bucket"), "cio-recovery.age");
        assert_eq!(at("s3:http://h:9000/bucket/"), "cio-recovery.age");
        assert_eq!(at("s3:https://h/bucket/a/b"), "a/b/cio-recovery.age");
        assert_eq!(
            location("s3:http://h:9000/bucket/backups/"),
            "s3:http://h:9000/bucket/backups/cio-recovery.age"
        );
    }
}
