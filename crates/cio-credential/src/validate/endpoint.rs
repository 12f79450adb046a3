//! Step 3: can the repository's endpoint be reached, and does it speak S3? The connection is
//! made as restic makes it (proxy, TLS trust of the set's CA certificate), then the first
//! request restic's S3 library sends is sent: the bucket's location. A failure of the name,
//! the connection, the proxy, TLS or HTTP, or an answer that is not S3's, fails this step with
//! its own code (`dns`, `unreachable`, `proxy`, `tls`, `timeout`, `not_http`, `not_s3`), and
//! so does an answer restic retries that is still given after the retries (`unavailable`).
//! TLS that restic's Go speaks and validate's rustls does not is `tls_unchecked`: a failure
//! that says what the server uses and how to check it with restic (validate could not check
//! the certificate, so it never passes it), never a `tls` failure that blames the CA.

use std::sync::Arc;

use tokio::time::Instant;

use super::failure::{Action, Place};
use super::net::connect::Target;
use super::net::http::Http;
use super::net::tls;
use super::net::words::tls_failure;
use super::offline::Values;
use super::region::{self, DEFAULT_REGION, RegionSource};
use super::s3::{S3, S3Failure};
use super::{Check, Options, Step};
use crate::catalog::{RepoUrl, Role, SetId};

/// What the endpoint step learnt, for the steps after it.
pub(super) struct Reached {
    pub s3: S3,
    pub place: Place,
    /// The region restic is configured with (credential or AWS host), if any.
    pub configured: bool,
    /// The answer to the location request.
    pub location: Result<String, S3Failure>,
}

/// Host name (without brackets for IPv6) and port of the repository's endpoint.
pub(super) fn target(repo: &RepoUrl) -> Target {
    let default = if repo.scheme == "https" { 443 } else { 80 };
    let host = repo.host.as_str();
    let (host, port) = if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        (addr.to_string(), port)
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(default)),
            None => (host.to_string(), default),
        }
    };
    Target {
        scheme: repo.scheme.clone(),
        host,
        port,
    }
}

/// The name of the set's CA certificate credential.
pub(super) fn cacert_name(set: SetId) -> String {
    let alt = if set.role == Role::Alternate {
        "_alt"
    } else {
        ""
    };
    format!("cio_{}{alt}_cacert", set.provider)
}

/// Runs the endpoint step.
pub(super) async fn run(
    set: SetId,
    values: &Values<'_>,
    opts: &Options,
    deadline: Instant,
) -> Result<(Reached, Check), Check> {
    let target = target(&values.repo);
    let configured = region::configured(values.region, values.repo.typed_host());
    let (region, source) = configured
        .clone()
        .unwrap_or_else(|| (DEFAULT_REGION.to_string(), RegionSource::Default));
    let place = Place {
        set,
        address: target.address(),
        host: target.host.clone(),
        typed_host: values.repo.typed_host().to_string(),
        bucket: values.repo.bucket.clone(),
        prefix: values.repo.prefix.clone(),
        secs: opts.timeout.as_secs_f64(),
        region: region.clone(),
        region_source: source,
        has_cacert: values.cacert.is_some(),
        new_keys: opts.new_keys,
    };
    let extra = match values
        .cacert
        .map(|pem| tls::parse_cacert(pem.expose()))
        .transpose()
    {
        Ok(certs) => certs.unwrap_or_default(),
        Err(e) => {
            return Err(Check::fail(
                Step::Endpoint,
                "tls",
                format!(
                    "{}: {e}; store the PEM certificate again with 'cio credential create {} --from-file PATH'",
                    cacert_name(set),
                    cacert_name(set)
                ),
            ));
        }
    };
    let proxy = opts
        .proxies
        .proxy_for(&target.scheme, &target.host, target.port)
        .ok()
        .flatten();
    let needs_tls = target.scheme == "https" || proxy.as_ref().is_some_and(|p| p.scheme == "https");
    let config = tls::client_config(&extra, needs_tls).map_err(|e| {
        let (why, _) = tls_failure(&e, &target.host);
        Check::fail(Step::Endpoint, "tls", format!("cannot set up TLS: {why}"))
    })?;
    let via = proxy.map(|p| p.address());
    let http = Http::new(target, Arc::new(config), opts.proxies.clone(), deadline);
    let s3 = S3::new(
        http,
        values.access_key,
        values.secret_key,
        &values.repo.bucket,
        &region,
    );
    let location = s3.location().await;
    if let Err(f) = &location
        && (matches!(f, S3Failure::Http(_) | S3Failure::NotS3 { .. }) || f.is_unavailable())
    {
        return Err(place.check(Step::Endpoint, Action::Location, f));
    }
    let detail = match via {
        Some(proxy) => format!(
            "{} answers the S3 API (through the proxy at {proxy})",
            place.address
        ),
        None => format!("{} answers the S3 API", place.address),
    };
    Ok((
        Reached {
            s3,
            place,
            configured: configured.is_some(),
            location,
        },
        Check::ok(Step::Endpoint, detail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RepoUrl {
        RepoUrl::parse(s).expect("a valid URL")
    }

    #[test]
    fn host_and_port() {
        let hp = |s: &str| {
            let t = target(&url(s));
            (t.host, t.port)
        };
        assert_eq!(
            hp("s3:s3.amazonaws.com/bucket"),
            ("s3.amazonaws.com".into(), 443)
        );
        assert_eq!(
            hp("s3:http://127.0.0.1:9000/bucket"),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(hp("s3:http://minio/bucket"), ("minio".into(), 80));
        assert_eq!(hp("s3:https://[::1]:9000/bucket"), ("::1".into(), 9000));
    }
}
