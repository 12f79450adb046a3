//! The error → check mapping, case by case.

use super::*;
use crate::catalog::{Provider, Role};
use crate::validate::Status;

fn place(provider: Provider, host: &str, source: RegionSource) -> Place {
    Place {
        set: SetId {
            provider,
            role: Role::Primary,
        },
        address: format!("{host}:443"),
        host: host.to_string(),
        typed_host: host.to_string(),
        bucket: "backups".into(),
        prefix: "node1".into(),
        secs: 10.0,
        region: "us-east-1".into(),
        region_source: source,
        has_cacert: false,
        new_keys: false,
    }
}

fn minio() -> Place {
    place(Provider::Minio, "minio.lan", RegionSource::Default)
}

fn service(status: u16, code: &str, region: Option<&str>) -> S3Failure {
    S3Failure::Service {
        status,
        code: code.into(),
        region: region.map(str::to_string),
    }
}

fn at(p: &Place, step: Step, action: Action, f: S3Failure) -> (Step, Status, &'static str, String) {
    let c = p.check(step, action, &f);
    (c.step, c.status, c.code, c.detail)
}

#[test]
fn credentials_errors_are_the_credentials_fault_at_any_step() {
    let p = minio();
    for code in ["InvalidAccessKeyId", "NotSignedUp"] {
        let (step, _, c, d) = at(
            &p,
            Step::Credentials,
            Action::List,
            service(403, code, None),
        );
        assert_eq!((step, c), (Step::Credentials, "invalid_access_key"));
        assert_eq!(
            d,
            "minio.lan:443 does not know the access key in cio_minio_access_key; check it, or create a key on the server"
        );
    }
    let (step, _, c, _) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(403, "SignatureDoesNotMatch", None),
    );
    assert_eq!((step, c), (Step::Credentials, "signature_mismatch"));
    // Reported at the step being run when that is later.
    let (step, _, c, _) = at(
        &p,
        Step::Password,
        Action::Read,
        service(403, "SignatureDoesNotMatch", None),
    );
    assert_eq!((step, c), (Step::Password, "signature_mismatch"));
    let (_, _, c, _) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(403, "RequestTimeTooSkewed", None),
    );
    assert_eq!(c, "clock_skew");
    let (_, _, c, _) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(400, "ExpiredToken", None),
    );
    assert_eq!(c, "expired_token");
}

/// The review's finding: a key rotation whose new access key the server does not know said
/// "does not know the access key in cio_minio_access_key", the stored (old, working) key.
/// A new pair is named as the new keys, never as the credentials still holding the old.
#[test]
fn a_new_pair_is_named_as_the_new_keys() {
    let p = Place {
        new_keys: true,
        ..minio()
    };
    let detail = |code: &str| {
        at(
            &p,
            Step::Credentials,
            Action::List,
            service(403, code, None),
        )
        .3
    };
    assert_eq!(
        detail("InvalidAccessKeyId"),
        "minio.lan:443 does not know the new access key; check it, or create a key on the server"
    );
    assert_eq!(
        detail("SignatureDoesNotMatch"),
        "the new secret key does not belong to the new access key; give the matching secret key"
    );
    assert_eq!(
        detail("ExpiredToken"),
        "the new access key is a temporary key that has expired; create a long-term access key"
    );
    for code in [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    ] {
        assert!(!detail(code).contains("cio_minio_"), "{code}");
    }
}

#[test]
fn denials_name_the_action_and_the_resource() {
    let p = minio();
    let (step, status, c, d) = at(
        &p,
        Step::Permissions,
        Action::HeadBucket,
        service(403, "", None),
    );
    assert_eq!(
        (step, status, c),
        (Step::Permissions, Status::Fail, "access_denied")
    );
    assert_eq!(
        d,
        "the key may not check that the bucket exists (HEAD bucket, which 'restic init' asks first) in 'backups/node1' (IAM action s3:ListBucket on arn:aws:s3:::backups); grant it in the bucket or user policy"
    );
    let (_, _, _, d) = at(
        &p,
        Step::Permissions,
        Action::Write,
        service(403, "AccessDenied", None),
    );
    assert_eq!(
        d,
        "the key may not write objects in 'backups/node1' (IAM action s3:PutObject on arn:aws:s3:::backups/node1/*); grant it in the bucket or user policy"
    );
    let (_, _, _, d) = at(
        &p,
        Step::Permissions,
        Action::Delete,
        service(403, "AccessDenied", None),
    );
    assert!(d.contains("s3:DeleteObject"), "{d}");
    // A denial seen while listing is a permissions failure, after credentials and bucket.
    let (step, _, _, _) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(403, "AccessDenied", None),
    );
    assert_eq!(step, Step::Permissions);
}

#[test]
fn a_missing_bucket() {
    let p = minio();
    let (step, _, c, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(404, "NoSuchBucket", None),
    );
    assert_eq!((step, c), (Step::Bucket, "no_such_bucket"));
    assert_eq!(
        d,
        "bucket 'backups' does not exist on minio.lan:443; create it, or correct the bucket in cio_minio_backup_repo"
    );
    let (_, _, c, _) = at(
        &p,
        Step::Permissions,
        Action::HeadBucket,
        service(404, "", None),
    );
    assert_eq!(c, "no_such_bucket");
}

#[test]
fn region_errors_never_suggest_an_aws_host_for_other_storage() {
    let p = minio();
    let (step, _, c, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(400, "AuthorizationHeaderMalformed", Some("nl-ams")),
    );
    assert_eq!((step, c), (Step::Bucket, "wrong_region"));
    assert_eq!(
        d,
        "minio.lan:443 expects requests signed for region nl-ams, not us-east-1; set cio_minio_region to nl-ams"
    );
    assert!(!d.contains("amazonaws"));
    let (_, _, _, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(400, "InvalidRegion", None),
    );
    assert_eq!(
        d,
        "minio.lan:443 refuses requests signed for region us-east-1; set cio_minio_region to the region the storage is configured with"
    );
}

#[test]
fn region_errors_on_aws_name_the_regional_host_or_the_credential() {
    let mut p = place(
        Provider::Aws,
        "s3.us-east-2.amazonaws.com",
        RegionSource::Host,
    );
    p.region = "us-east-2".into();
    let (_, _, c, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(301, "PermanentRedirect", Some("eu-west-1")),
    );
    assert_eq!(c, "wrong_region");
    assert_eq!(
        d,
        "bucket 'backups' is in region eu-west-1, not us-east-2; write cio_aws_backup_repo as s3:https://s3.eu-west-1.amazonaws.com/backups/node1"
    );
    // The URL offered is read back as the same prefix, whatever it holds.
    p.prefix = "my backups/100%?\n".into();
    let (_, _, _, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(301, "PermanentRedirect", Some("eu-west-1")),
    );
    let url = d.rsplit(" as ").next().unwrap_or_default();
    assert_eq!(
        url,
        "s3:https://s3.eu-west-1.amazonaws.com/backups/my%20backups/100%25%3F%0A"
    );
    assert_eq!(
        crate::catalog::RepoUrl::parse(url).map(|u| u.prefix),
        Ok(p.prefix.clone())
    );
    let p = place(Provider::Aws, "s3.amazonaws.com", RegionSource::Credential);
    let (_, _, _, d) = at(
        &p,
        Step::Credentials,
        Action::List,
        service(301, "", Some("eu-west-1")),
    );
    assert_eq!(
        d,
        "bucket 'backups' is in region eu-west-1, not us-east-1; set cio_aws_region to eu-west-1 (or remove it)"
    );
}

#[test]
fn connection_stages_have_their_own_codes() {
    let p = minio();
    let conn = |c: ConnectError| S3Failure::Http(HttpFailure::Connect(c));
    let code = |f: S3Failure| at(&p, Step::Endpoint, Action::Location, f).2;
    assert_eq!(code(conn(ConnectError::Dns { why: "x".into() })), "dns");
    assert_eq!(
        code(conn(ConnectError::Unreachable { why: "x".into() })),
        "unreachable"
    );
    assert_eq!(
        code(conn(ConnectError::Timeout {
            stage: "connecting"
        })),
        "timeout"
    );
    assert_eq!(code(S3Failure::Http(HttpFailure::Timeout)), "timeout");
    assert_eq!(
        code(S3Failure::Http(HttpFailure::NotHttp("x".into()))),
        "not_http"
    );
    let (_, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        conn(ConnectError::Tls {
            why: "its certificate is signed by an authority this machine does not trust".into(),
            fault: crate::validate::net::words::TlsFault::Trust,
        }),
    );
    assert_eq!(c, "tls");
    assert!(d.contains("store it in cio_minio_cacert"), "{d}");
    // TLS restic may speak and cio cannot: a warning that blames no certificate.
    let check = p.check(
        Step::Endpoint,
        Action::Location,
        &conn(ConnectError::TlsUnspoken(
            crate::validate::net::tls::Unspoken {
                what: "an ECDSA P-521 key".into(),
            },
        )),
    );
    assert_eq!((check.status, check.code), (Status::Fail, "tls_unchecked"));
    assert!(
        check.detail.contains("it uses an ECDSA P-521 key"),
        "{}",
        check.detail
    );
    assert!(!check.detail.contains("cacert"), "{}", check.detail);
    let (_, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        conn(ConnectError::Proxy {
            proxy: "127.0.0.1:8888 (from HTTPS_PROXY)".into(),
            why: "it refused the tunnel to minio.lan:443: HTTP 403 Access violation".into(),
        }),
    );
    assert_eq!(c, "proxy");
    assert_eq!(
        d,
        "the proxy at 127.0.0.1:8888 (from HTTPS_PROXY) failed: it refused the tunnel to minio.lan:443: HTTP 403 Access violation; fix the proxy variables, or list minio.lan in NO_PROXY"
    );
}

#[test]
fn answers_that_are_not_s3() {
    let p = minio();
    let (step, _, c, d) = at(
        &p,
        Step::Credentials,
        Action::Location,
        S3Failure::NotS3 {
            status: 200,
            proxy: None,
        },
    );
    assert_eq!(
        (step, c),
        (Step::Credentials, "not_s3"),
        "never earlier than the step run"
    );
    assert_eq!(
        d,
        "minio.lan:443 answers HTTP (200) but not the S3 API: it may be a web page or a console; use the port of the S3 API (MinIO: the API port, 9000 by default, not the console's 9001)"
    );
    let (step, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        S3Failure::NotS3 {
            status: 403,
            proxy: Some("127.0.0.1:8888".into()),
        },
    );
    assert_eq!((step, c), (Step::Endpoint, "proxy"));
    assert_eq!(
        d,
        "the proxy at 127.0.0.1:8888 answered HTTP 403 itself instead of passing the request to minio.lan:443; check the proxy's rules, or list minio.lan in NO_PROXY"
    );
    let (step, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        S3Failure::NotS3 {
            status: 407,
            proxy: Some("127.0.0.1:8888".into()),
        },
    );
    assert_eq!((step, c), (Step::Endpoint, "proxy"));
    assert_eq!(
        d,
        "the proxy at 127.0.0.1:8888 asks for a login (HTTP 407), and the one in the proxy variable is missing or wrong; put the proxy's user and password in it (http://USER:PASSWORD@HOST:PORT, special characters percent-encoded)"
    );
}

#[test]
fn other_errors_keep_their_status_and_code() {
    let p = minio();
    let (_, _, c, d) = at(
        &p,
        Step::Summary,
        Action::List,
        service(501, "NotImplemented", None),
    );
    assert_eq!(c, "s3_error");
    assert_eq!(
        d,
        "minio.lan:443 answered HTTP 501 NotImplemented when trying to list objects"
    );
    // (A 500 is retried and then said to be the server's: see the test below.)
    let (_, _, _, d) = at(&p, Step::Summary, Action::Read, service(400, "", None));
    assert_eq!(
        d,
        "minio.lan:443 answered HTTP 400 when trying to read objects"
    );
}

#[test]
fn a_closed_handshake_gets_no_certificate_advice_and_cgi_no_no_proxy_hint() {
    let p = minio();
    let conn = |c: ConnectError| S3Failure::Http(HttpFailure::Connect(c));
    let (step, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        conn(ConnectError::TlsClosed {
            why: "Connection reset by peer (os error 104)".into(),
        }),
    );
    assert_eq!((step, c), (Step::Endpoint, "tls"));
    assert_eq!(
        d,
        "the connection to minio.lan:443 was closed during the TLS handshake (Connection reset by peer (os error 104)); this is no certificate problem: check that minio.lan:443 serves TLS (or use s3:http:// if it speaks plain HTTP) and that nothing between cuts the connection"
    );
    let (step, _, c, d) = at(
        &p,
        Step::Endpoint,
        Action::Location,
        conn(ConnectError::ProxyCgi),
    );
    assert_eq!((step, c), (Step::Endpoint, "proxy"));
    assert_eq!(
        d,
        "HTTP_PROXY is set and so is REQUEST_METHOD (a CGI environment), where restic refuses HTTP_PROXY for every http:// endpoint, whatever NO_PROXY says; unset REQUEST_METHOD or HTTP_PROXY where cio and restic run"
    );
}

#[test]
fn answers_restic_retries_are_the_servers_availability_never_the_credentials() {
    let p = minio();
    let (step, _, c, d) = at(
        &p,
        Step::Credentials,
        Action::Location,
        service(503, "SlowDown", None),
    );
    assert_eq!((step, c), (Step::Credentials, "unavailable"));
    assert!(d.starts_with("minio.lan:443 answered HTTP 503 SlowDown when trying to read the bucket's region, and again"), "{d}");
    assert!(d.contains("no fault of the credentials"), "{d}");
    // A later step keeps its place (never an earlier step), with the same code.
    let (step, _, c, _) = at(
        &p,
        Step::Repository,
        Action::Read,
        service(500, "InternalError", None),
    );
    assert_eq!((step, c), (Step::Repository, "unavailable"));
    let (_, _, c, d) = at(&p, Step::Bucket, Action::HeadBucket, service(502, "", None));
    assert_eq!(c, "unavailable");
    assert!(d.contains("answered HTTP 502 when"), "{d}");
    let gateway = S3Failure::NotS3 {
        status: 504,
        proxy: None,
    };
    assert_eq!(
        at(&p, Step::Endpoint, Action::Location, gateway).2,
        "unavailable"
    );
    // A forwarding proxy's own 503 stays the proxy's.
    let proxied = S3Failure::NotS3 {
        status: 503,
        proxy: Some("127.0.0.1:3128".into()),
    };
    assert_eq!(at(&p, Step::Endpoint, Action::Location, proxied).2, "proxy");
    // Not what minio-go retries: unchanged.
    assert_eq!(
        at(
            &p,
            Step::Credentials,
            Action::Location,
            service(501, "NotImplemented", None)
        )
        .2,
        "s3_error"
    );
}

/// Only a certificate from an authority not trusted is told to change the CA certificate: a
/// fault of the server's certificate, or of a handshake before any certificate, is not.
#[test]
fn only_a_trust_fault_blames_the_ca_certificate() {
    use crate::validate::net::words::TlsFault;
    let mut p = minio();
    p.has_cacert = true;
    let detail = |fault: TlsFault, why: &str| {
        let f = S3Failure::Http(HttpFailure::Connect(ConnectError::Tls {
            why: why.into(),
            fault,
        }));
        at(&p, Step::Endpoint, Action::Location, f).3
    };
    assert_eq!(
        detail(TlsFault::Certificate, "its certificate has expired"),
        "TLS with minio.lan:443 failed (its certificate has expired); this is a fault of the server's certificate, which restic refuses too, whatever CA is trusted: have it replaced on the server"
    );
    let handshake = detail(
        TlsFault::Handshake,
        "the server ended the handshake with the TLS alert 'protocol version not supported'",
    );
    assert!(
        handshake.contains("this is no certificate problem"),
        "{handshake}"
    );
    assert!(!handshake.contains("cacert"), "{handshake}");
    let trust = detail(
        TlsFault::Trust,
        "its certificate is signed by an authority this machine does not trust",
    );
    assert!(
        trust.contains("the certificate in cio_minio_cacert is not the one"),
        "{trust}"
    );
}

/// moto answers a write under a prefix holding a line break with HTTP 404 and an HTML page
/// (its router matches no such path): validate said "answers HTTP (404) but not the S3 API:
/// it may be a web page or a console", although its listing had just answered. restic reads
/// the 404 as NoSuchKey and fails; validate says that, at the write.
#[test]
fn an_object_request_refused_without_an_s3_error_is_no_web_page() {
    let mut p = minio();
    p.prefix = "a\nb".into();
    let not_s3 = |status| S3Failure::NotS3 {
        status,
        proxy: None,
    };
    let (step, _, code, detail) = at(&p, Step::Permissions, Action::Write, not_s3(404));
    assert_eq!((step, code), (Step::Permissions, "s3_error"));
    assert_eq!(
        detail,
        "minio.lan:443 answered HTTP 404 without an S3 error when trying to write objects (restic fails there too: 'The specified key does not exist'); the server does not take keys holding the prefix's control character (a line break, a tab, ...): choose a prefix without one"
    );
    let (_, _, code, _) = at(&p, Step::Permissions, Action::Write, not_s3(403));
    assert_eq!(
        code,
        at(
            &p,
            Step::Permissions,
            Action::Write,
            service(403, "AccessDenied", None)
        )
        .2
    );
    // Before any S3 answer, a page without an S3 error is still no S3 API.
    let (step, _, code, _) = at(&p, Step::Endpoint, Action::Location, not_s3(404));
    assert_eq!((step, code), (Step::Endpoint, "not_s3"));
}
