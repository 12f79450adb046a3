//! One object read or written with a set's keys outside a validate run: the escrow of a
//! recovery bundle uses it, so the bundle travels over the same connection, proxy, TLS and
//! SigV4 code that validate checks a set with (and restic's rules for each).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::endpoint::target;
use super::net::http::Http;
use super::net::proxy::ProxyEnv;
use super::net::tls;
use super::s3::{S3, S3Failure};
use crate::catalog::RepoUrl;
use crate::secret::SecretValue;

/// Why an object could not be read or written; nothing secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ObjectFailure {
    /// The object does not exist (`NoSuchKey`, or a 404).
    Missing,
    /// The keys may not do it: the S3 error code or the HTTP status.
    Denied(String),
    /// Anything else, in words.
    Failed(String),
}

/// The keys and the signing region of one set.
pub(crate) struct ObjectKeys<'a> {
    pub access_key: &'a SecretValue,
    pub secret_key: &'a SecretValue,
    pub region: &'a str,
    /// The set's CA certificate (PEM), trusted besides the system's.
    pub cacert: Option<&'a str>,
}

/// Puts `body` at `key` of `repo`'s bucket (returns no bytes), or with no body gets the
/// object at `key`. One attempt, bounded by `timeout`.
pub(crate) fn transfer(
    repo: &RepoUrl,
    keys: &ObjectKeys<'_>,
    key: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Vec<u8>, ObjectFailure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ObjectFailure::Failed(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(async {
        let target = target(repo);
        let proxies = ProxyEnv::from_env();
        let proxy = proxies
            .proxy_for(&target.scheme, &target.host, target.port)
            .ok()
            .flatten();
        let needs_tls =
            target.scheme == "https" || proxy.as_ref().is_some_and(|p| p.scheme == "https");
        let extra = match keys.cacert {
            Some(pem) => tls::parse_cacert(pem)
                .map_err(|e| ObjectFailure::Failed(format!("the CA certificate: {e}")))?,
            None => Vec::new(),
        };
        let config = tls::client_config(&extra, needs_tls).map_err(|e| {
            let (why, _) = super::net::words::tls_failure(&e, &target.host);
            ObjectFailure::Failed(format!("cannot set up TLS: {why}"))
        })?;
        let deadline = tokio::time::Instant::now() + timeout;
        let http = Http::new(target, Arc::new(config), proxies, deadline);
        let s3 = S3::new(
            http,
            keys.access_key,
            keys.secret_key,
            &repo.bucket,
            keys.region,
        );
        let result = match body {
            Some(body) => s3.put(key, Bytes::from(body)).await.map(|()| Vec::new()),
            None => match s3.get(key).await {
                Ok(Some(bytes)) => Ok(bytes.to_vec()),
                Ok(None) => return Err(ObjectFailure::Missing),
                Err(e) => Err(e),
            },
        };
        result.map_err(classify)
    })
}

/// An S3 failure as the escrow's caller needs it.
fn classify(failure: S3Failure) -> ObjectFailure {
    match failure {
        S3Failure::Service { code, .. } if code == "NoSuchKey" => ObjectFailure::Missing,
        S3Failure::Service {
            status: 404, code, ..
        } if code.is_empty() => ObjectFailure::Missing,
        S3Failure::Service { status, code, .. }
            if status == 403
                || matches!(
                    code.as_str(),
                    "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"
                ) =>
        {
            ObjectFailure::Denied(if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code
            })
        }
        S3Failure::Service { status, code, .. } => {
            ObjectFailure::Failed(format!("HTTP {status} {code}").trim_end().to_string())
        }
        S3Failure::NotS3 { status, .. } => ObjectFailure::Failed(format!(
            "the endpoint answered HTTP {status} but not as the S3 API"
        )),
        S3Failure::Http(e) => ObjectFailure::Failed(e.to_string()),
        S3Failure::Undecodable { escape, .. } => ObjectFailure::Failed(format!(
            "the endpoint's listing says its keys are URL-encoded, but one is not (invalid escape '{escape}')"
        )),
        S3Failure::IllegalXml { character } => ObjectFailure::Failed(format!(
            "the endpoint's listing holds a character XML cannot carry ({}) in a key it did not URL-encode",
            super::failure::code_point(character)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_as_the_escrow_needs() {
        let service = |status, code: &str| S3Failure::Service {
            status,
            code: code.to_string(),
            region: None,
        };
        assert_eq!(classify(service(404, "NoSuchKey")), ObjectFailure::Missing);
        assert_eq!(classify(service(404, "")), ObjectFailure::Missing);
        assert_eq!(
            classify(service(403, "AccessDenied")),
            ObjectFailure::Denied("AccessDenied".into())
        );
        assert_eq!(
            classify(service(403, "")),
            ObjectFailure::Denied("HTTP 403".into())
        );
        assert_eq!(
            classify(service(500, "InternalError")),
            ObjectFailure::Failed("HTTP 500 InternalError".into())
        );
        // A connection that fails is said in words, not as Rust's debug output.
        use crate::validate::net::connect::ConnectError;
        use crate::validate::net::http::HttpFailure;
        let refused = S3Failure::Http(HttpFailure::Connect(ConnectError::Unreachable {
            why: "Connection refused (os error 111)".into(),
        }));
        assert_eq!(
            classify(refused),
            ObjectFailure::Failed(
                "nothing accepts connections there (Connection refused (os error 111))".into()
            )
        );
        assert_eq!(
            classify(S3Failure::Http(HttpFailure::Timeout)),
            ObjectFailure::Failed("no answer in time".into())
        );
    }
}
