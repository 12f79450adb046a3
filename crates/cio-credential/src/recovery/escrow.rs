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
//! - all S3 traffic of this module goes through [`transfer`], one small function, so it can
//!   be pointed at another S3 client without touching the rest.

use std::time::Duration;

use super::RecoveryError;
use super::bundle::Bundle;
pub use super::error::EscrowError;
use super::seal::{Recipient, SealTo, seal};
use crate::catalog::{RepoUrl, Role, SetId};
use crate::credentials::CredentialStore;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};
use crate::validate::object::{self, ObjectFailure, ObjectKeys};

/// The escrow object's name, at the repository's root.
pub const OBJECT_NAME: &str = "cio-recovery.age";

/// The longest one escrow request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The region requests are signed for when the set names none.
const DEFAULT_REGION: &str = "us-east-1";

/// The largest escrow object read back: a bundle of every set with a long history is far
/// smaller.
const MAX_OBJECT: usize = 16 * 1024 * 1024;

/// Where the escrow object of `repo` is: its bucket and key.
pub fn object_key(repo: &RepoUrl) -> String {
    if repo.prefix.is_empty() {
        OBJECT_NAME.to_string()
    } else {
        format!("{}/{OBJECT_NAME}", repo.prefix)
    }
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

/// Stores `sealed` as the escrow object of the repository `repo_url`, replacing any earlier
/// one.
pub fn put_bundle(
    repo_url: &str,
    access: &BucketKeys<'_>,
    sealed: &[u8],
) -> Result<(), EscrowError> {
    transfer(repo_url, access, Some(sealed)).map(drop)
}

/// Reads the escrow object of the repository `repo_url`.
pub fn get_bundle(repo_url: &str, access: &BucketKeys<'_>) -> Result<Vec<u8>, EscrowError> {
    transfer(repo_url, access, None)
}

/// Seals the live credentials of the primary set `set` to `recipients` and stores them as
/// the escrow object beside the set's repository, with the set's own keys. Returns the
/// object's location.
pub fn escrow_set(
    credentials: &CredentialStore,
    set: SetId,
    recipients: Vec<Recipient>,
) -> crate::Result<String> {
    if set.role != Role::Primary {
        return Err(RecoveryError::from(EscrowError::AlternateSet).into());
    }
    let filter = SetFilter {
        name: None,
        provider: Some(set.provider),
        role: Some(set.role),
    };
    // The one set, complete, or `IncompleteSet` naming what it lacks.
    let values = credentials
        .sets(&filter, Purpose::Use)?
        .pop()
        .ok_or_else(|| crate::Error::NoSuchSet(format!("there is no {set} set")))?;
    let (Some(repo), Some(access_key), Some(secret_key)) =
        (&values.backup_repo, &values.access_key, &values.secret_key)
    else {
        return Err(crate::Error::IncompleteSet {
            set,
            missing: values.status().missing,
        });
    };
    let bundle = Bundle::from_store(credentials, &[set], false)?;
    let sealed = seal(&bundle, &SealTo::Recipients(recipients))?;
    let access = BucketKeys {
        access_key,
        secret_key,
        region: values.region.as_ref().map(SecretValue::expose),
        cacert: values.cacert.as_ref().map(SecretValue::expose),
    };
    put_bundle(repo.expose(), &access, sealed.as_bytes()).map_err(RecoveryError::from)?;
    Ok(location(repo.expose()))
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
    let repo = RepoUrl::parse(repo_url).map_err(EscrowError::BadRepository)?;
    let location = location(repo_url);
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
        &object_key(&repo),
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

    #[test]
    fn the_object_sits_at_the_repository_root() {
        let at = |url: &str| object_key(&RepoUrl::parse(url).unwrap());
        assert_eq!(at("s3:http://h:9000/bucket"), "cio-recovery.age");
        assert_eq!(at("s3:http://h:9000/bucket/"), "cio-recovery.age");
        assert_eq!(at("s3:https://h/bucket/a/b"), "a/b/cio-recovery.age");
        assert_eq!(
            location("s3:http://h:9000/bucket/backups/"),
            "s3:http://h:9000/bucket/backups/cio-recovery.age"
        );
    }
}
