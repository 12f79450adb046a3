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

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::RecoveryError;
use super::bundle::Bundle;
pub use super::error::EscrowError;
use super::seal::{Recipient, SealTo, seal};
use crate::catalog::{RepoUrl, Role, SetId};
use crate::credentials::CredentialStore;
use crate::secret::SecretValue;
use crate::sets::{Purpose, SetFilter};

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
    };
    put_bundle(repo.expose(), &access, sealed.as_bytes()).map_err(RecoveryError::from)?;
    Ok(location(repo.expose()))
}

/// The one place this module speaks S3: puts `body` as the escrow object (and returns
/// nothing), or without a body gets the object. Path-style, one attempt, the set's static
/// keys only (never the environment or a profile).
fn transfer(
    repo_url: &str,
    access: &BucketKeys<'_>,
    body: Option<&[u8]>,
) -> Result<Vec<u8>, EscrowError> {
    let repo = RepoUrl::parse(repo_url).map_err(EscrowError::BadRepository)?;
    let location = location(repo_url);
    let action = if body.is_some() { "written" } else { "read" };
    let failed = |detail: String| EscrowError::Failed {
        location: location.clone(),
        action,
        detail,
    };
    let credentials =
        Credentials::from_keys(access.access_key.expose(), access.secret_key.expose(), None);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            access.region.unwrap_or(DEFAULT_REGION).to_string(),
        ))
        .endpoint_url(repo.endpoint())
        .force_path_style(true)
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(TIMEOUT)
                .operation_timeout(TIMEOUT)
                .build(),
        )
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    let client = Client::from_conf(config);
    let key = object_key(&repo);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the network runtime: {e}")))?;
    let classify = |code: Option<&str>, status: u16, detail: String| match code {
        Some("NoSuchKey") => EscrowError::Missing {
            location: location.clone(),
        },
        None if status == 404 => EscrowError::Missing {
            location: location.clone(),
        },
        Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "Forbidden") => {
            EscrowError::Denied {
                location: location.clone(),
                detail,
            }
        }
        None if status == 403 => EscrowError::Denied {
            location: location.clone(),
            detail,
        },
        _ => failed(detail),
    };
    runtime.block_on(async {
        match body {
            Some(body) => client
                .put_object()
                .bucket(&repo.bucket)
                .key(&key)
                .content_type("text/plain")
                .body(ByteStream::from(body.to_vec()))
                .send()
                .await
                .map(|_| Vec::new())
                .map_err(|e| sdk_error(e, classify)),
            None => {
                let out = client
                    .get_object()
                    .bucket(&repo.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, classify))?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .into_bytes();
                if bytes.len() > MAX_OBJECT {
                    return Err(failed(format!(
                        "it is {} bytes, more than a recovery bundle can be",
                        bytes.len()
                    )));
                }
                Ok(bytes.to_vec())
            }
        }
    })
}

/// An SDK error as (S3 error code, HTTP status, detail), given to `classify`.
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    classify: impl Fn(Option<&str>, u16, String) -> EscrowError,
) -> EscrowError {
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code();
            let detail = match (code, ctx.err().message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => format!("HTTP {status}"),
            };
            classify(code, status, detail)
        }
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            classify(None, status, format!("HTTP {status}"))
        }
        _ => classify(Some(""), 0, DisplayErrorContext(&err).to_string()),
    }
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
