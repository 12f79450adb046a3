//! Issue 10, kind 6 for SOCKS5: validate goes through a `socks5://` proxy named in HTTP_PROXY /
//! HTTPS_PROXY as restic (Go's net/http) does, handing the proxy the endpoint's host name, with
//! the URL's user name and password (RFC 1929); every failure of the proxy is the proxy's
//! (code `proxy`). Against a real SOCKS5 server (Debian's microsocks) in front of s3s-fs, each
//! case checked against the real restic 0.14 with the same variables.

mod common;

use cio_credential::{SecretValue, SetReport, SetValues, Step};
use common::{failure, validate_with_proxies as validate};
use testkit::proxy::loopback_name;
use testkit::s3::S3Server;
use testkit::socks::Microsocks;
use testkit::tls::{CertKind, TlsFront};

const ACCESS: &str = "socksaccess";
const SECRET: &str = "socks-secret-key-1";
const PASSWORD: &str = "socks repository password";
const USER: &str = "backup";
const LOGIN: &str = "proxy-pass";

fn values(repo: &str) -> SetValues {
    common::values(repo, ACCESS, SECRET, PASSWORD)
}

/// restic with the set's values and `vars`; `(success, stderr)`.
fn restic(url: &str, vars: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    common::restic(url, ACCESS, SECRET, PASSWORD, vars, args)
}

fn endpoint(report: &SetReport) -> String {
    common::detail(report, Step::Endpoint)
}

#[test]
fn validate_and_restic_go_through_a_socks5_proxy_that_resolves_the_name() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let proxy = Microsocks::start(None);
    let host = loopback_name();
    let url = format!("s3:http://{host}:{}/backups/p", s3.port());
    let vars = [("HTTP_PROXY", proxy.url())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, err) = restic(&url, &vars, &["init"]);
    assert!(ok, "restic init through the SOCKS5 proxy: {err}");
    let handed = format!("connected to {host}:{}", s3.port());
    let by_restic = proxy.log().matches(&handed).count();
    assert!(by_restic > 0, "restic named the host: {}", proxy.log());

    let report = validate(&values(&url), &vars);
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        endpoint(&report),
        format!(
            "{host}:{} answers the S3 API (through the proxy at 127.0.0.1:{})",
            s3.port(),
            proxy.port()
        )
    );
    // validate's own connections went through it, handing it the name (not an address).
    assert!(
        proxy.log().matches(&handed).count() > by_restic,
        "{}",
        proxy.log()
    );
}

#[test]
fn https_through_a_socks5_proxy_with_a_login_as_restic_does() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let front = TlsFront::start(s3.port(), CertKind::SelfSigned);
    let proxy = Microsocks::start(Some((USER, LOGIN)));
    let host = loopback_name();
    let url = format!("s3:https://{host}:{}/backups/p", front.port());
    let cert = front.trust_file.to_str().expect("a UTF-8 path").to_string();
    let mut v = values(&url);
    v.cacert = Some(SecretValue::new(front.trust_pem.clone()));

    let good = proxy.url_with(USER, LOGIN);
    let (ok, err) = restic(
        &url,
        &[("HTTPS_PROXY", &good), ("SSL_CERT_FILE", &cert)],
        &["init"],
    );
    assert!(
        ok,
        "restic init through the SOCKS5 proxy with a login: {err}"
    );
    let report = validate(&v, &[("HTTPS_PROXY", &good)]);
    assert!(report.passed(), "{report:#?}");

    // A wrong password: both fail, and validate blames the proxy, not the storage.
    let wrong = proxy.url_with(USER, "wrong-pass");
    let (ok, err) = restic(
        &url,
        &[("HTTPS_PROXY", &wrong), ("SSL_CERT_FILE", &cert)],
        &["cat", "config"],
    );
    assert!(
        !ok && err.contains("username/password authentication failed"),
        "{err}"
    );
    let (step, code, detail) = failure(&validate(&v, &[("HTTPS_PROXY", &wrong)]));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"));
    assert_eq!(
        detail,
        format!(
            "the proxy at 127.0.0.1:{} (from HTTPS_PROXY) failed: it refused the user name and password of the proxy URL (username/password authentication failed); fix the proxy variables, or list {host} in NO_PROXY",
            proxy.port()
        )
    );
    assert!(!detail.contains("wrong-pass"));

    // No login in the URL.
    let none = proxy.url();
    let (ok, err) = restic(
        &url,
        &[("HTTPS_PROXY", &none), ("SSL_CERT_FILE", &cert)],
        &["cat", "config"],
    );
    assert!(
        !ok && err.contains("no acceptable authentication methods"),
        "{err}"
    );
    let (step, code, detail) = failure(&validate(&v, &[("HTTPS_PROXY", &none)]));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"));
    assert!(
        detail.contains("it wants a user name and password, and the proxy URL gives none"),
        "{detail}"
    );
}

#[test]
fn what_the_socks5_proxy_cannot_do_is_blamed_on_it() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let proxy = Microsocks::start(None);
    let host = loopback_name();
    let (_closed_guard, closed) = testkit::refusing_port();

    // The proxy reaches no server on the storage's port: it says "connection refused".
    let url = format!("s3:http://{host}:{closed}/backups/p");
    let vars = [("HTTP_PROXY", proxy.url())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, err) = restic(&url, &vars, &["cat", "config"]);
    assert!(!ok && err.contains("connection refused"), "{err}");
    let (step, code, detail) = failure(&validate(&values(&url), &vars));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"));
    assert_eq!(
        detail,
        format!(
            "the proxy at 127.0.0.1:{} (from HTTP_PROXY) failed: it says nothing accepts connections on {host}:{closed} (connection refused); check the host and port, and that the server runs; fix the proxy variables, or list {host} in NO_PROXY",
            proxy.port()
        )
    );

    // The proxy itself is down.
    let url = format!("s3:http://{host}:{}/backups/p", s3.port());
    let down = format!("socks5://127.0.0.1:{closed}");
    let (ok, err) = restic(&url, &[("HTTP_PROXY", &down)], &["init"]);
    assert!(!ok && err.contains("proxyconnect"), "{err}");
    let (step, code, detail) = failure(&validate(&values(&url), &[("HTTP_PROXY", &down)]));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
    assert!(
        detail.starts_with(&format!(
            "the proxy at 127.0.0.1:{closed} (from HTTP_PROXY) failed: it accepts no connection"
        )),
        "{detail}"
    );

    // ... and NO_PROXY still takes the storage past it, for both.
    let bypass = [("HTTP_PROXY", down.as_str()), ("NO_PROXY", host.as_str())];
    let (ok, err) = restic(&url, &bypass, &["init"]);
    assert!(ok, "restic init with NO_PROXY: {err}");
    let report = validate(&values(&url), &bypass);
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        endpoint(&report),
        format!("{host}:{} answers the S3 API", s3.port())
    );
}
