//! Issue 10, kind 6: a proxy that fails in the middle of an exchange is blamed on the proxy
//! (code `proxy`, naming its host:port), never on the storage, and a connection closed during
//! the TLS handshake gets no certificate advice. Real proxies (Debian's microsocks, tinyproxy)
//! and s3s-fs; each case is checked against the real restic 0.14. Debian's microsocks also
//! stands in for an HTTP proxy that answers garbage (it answers an HTTP request with a SOCKS5
//! refusal). A peer that reads and then closes without a byte, which no real server here can
//! be made to do on demand, is scripted ([`closing_peer`]).

mod common;

use cio_credential::{SetValues, Step};
use common::{failure, validate_with_proxies as validate};
use testkit::proxy::{Tinyproxy, loopback_name};
use testkit::s3::{S3Server, run_restic};
use testkit::socks::Microsocks;

const ACCESS: &str = "diesaccess";
const SECRET: &str = "dies-secret-key-1";
const PASSWORD: &str = "dies repository password";

fn values(repo: &str) -> SetValues {
    common::values(repo, ACCESS, SECRET, PASSWORD)
}

/// `restic cat config` with the set's values and `vars`; `(success, stderr)`.
fn restic(url: &str, vars: &[(&str, &str)]) -> (bool, String) {
    common::restic(url, ACCESS, SECRET, PASSWORD, vars, &["cat", "config"])
}

/// SCRIPTED (see the module note): a port that accepts, reads what comes and closes the
/// connection without answering, as a proxy that dies mid-exchange does.
fn closing_peer() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
        }
    });
    port
}

#[test]
fn an_http_proxy_that_closes_the_connection_is_blamed_not_the_storage() {
    // F4a: the proxy reads the absolute-form request and closes the connection.
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let not_http = Microsocks::start(None);
    let dying = closing_peer();
    let host = loopback_name();
    let url = format!("s3:http://{host}:{}/backups/p", s3.port());
    let value = format!("http://proxyuser:proxy-pw@127.0.0.1:{dying}");
    let vars = [("HTTP_PROXY", value.as_str())];
    let (ok, err) = restic(&url, &vars);
    assert!(!ok, "restic through a broken proxy: {err}");
    let (step, code, detail) = failure(&validate(&values(&url), &vars));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
    let head = format!(
        "the proxy at 127.0.0.1:{dying} (from HTTP_PROXY) failed: the connection to it broke before it answered the request for {host}:{} (",
        s3.port()
    );
    assert!(detail.starts_with(&head), "{detail}");
    assert!(
        !detail.contains("proxy-pw") && !detail.contains("proxyuser"),
        "{detail}"
    );

    // A proxy that answers garbage (a real SOCKS5 server's refusal to an HTTP request).
    let value = format!("http://127.0.0.1:{}", not_http.port());
    let vars = [("HTTP_PROXY", value.as_str())];
    let (ok, err) = restic(&url, &vars);
    assert!(!ok, "restic through a SOCKS5 server as HTTP proxy: {err}");
    let (step, code, detail) = failure(&validate(&values(&url), &vars));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
    assert_eq!(
        detail,
        format!(
            "the proxy at 127.0.0.1:{} (from HTTP_PROXY) failed: it did not answer the request for {host}:{} with HTTP (invalid HTTP version parsed); check that it is an HTTP proxy and its port; fix the proxy variables, or list {host} in NO_PROXY",
            not_http.port(),
            s3.port()
        )
    );
}

#[test]
fn a_tunnel_closed_during_tls_is_the_proxys_and_no_certificate_problem() {
    // F4b: the real proxy says yes (SOCKS5 success, CONNECT 200), then the far end closes
    // the connection mid-handshake.
    let far_end = closing_peer();
    let host = loopback_name();
    let url = format!("s3:https://{host}:{far_end}/backups/p");
    let socks = Microsocks::start(None);
    let tiny = Tinyproxy::start(&[far_end]);
    for (value, carried) in [(socks.url(), socks.port()), (tiny.url(), tiny.port())] {
        let vars = [("HTTPS_PROXY", value.as_str())];
        let (ok, err) = restic(&url, &vars);
        assert!(!ok, "restic through {value}: {err}");
        let (step, code, detail) = failure(&validate(&values(&url), &vars));
        assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
        let head = format!(
            "the proxy at 127.0.0.1:{carried} (from HTTPS_PROXY) failed: the connection it opened to {host}:{far_end} was closed during the TLS handshake ("
        );
        assert!(detail.starts_with(&head), "{detail}");
        assert!(!detail.contains("cacert"), "{detail}");
    }

    // Directly: still no certificate advice.
    let url = format!("s3:https://127.0.0.1:{far_end}/backups/p");
    let (ok, err) = restic(&url, &[]);
    assert!(!ok, "restic directly: {err}");
    let (step, code, detail) = failure(&validate(&values(&url), &[]));
    assert_eq!((step, code), (Some(Step::Endpoint), "tls"), "{detail}");
    assert!(
        detail.starts_with(&format!(
            "the connection to 127.0.0.1:{far_end} was closed during the TLS handshake ("
        )),
        "{detail}"
    );
    assert!(!detail.contains("cacert"), "{detail}");
}

#[test]
fn proxy_values_go_cannot_parse_are_read_as_restic_reads_them() {
    // F1/F1b against restic: a value url.Parse refuses twice means no proxy (direct); one it
    // refuses once is read behind http:// (an HTTP proxy on the host "socks5").
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let host = loopback_name();
    let url = format!("s3:http://{host}:{}/backups/p", s3.port());
    let (ok, err) = restic(&url, &[]);
    assert!(!ok && err.contains("config"), "no repository yet: {err}");
    let home = tempfile::tempdir().expect("a HOME for restic");
    let init = run_restic(home.path(), &url, ACCESS, SECRET, PASSWORD, &[], &["init"]);
    assert!(init.status.success());
    let socks = Microsocks::start(None);
    for direct in [
        format!("http://u:p%zz@127.0.0.1:{}", socks.port()),
        format!(" http://127.0.0.1:{}", socks.port()),
    ] {
        let vars = [("HTTP_PROXY", direct.as_str())];
        let (ok, err) = restic(&url, &vars);
        assert!(ok, "restic goes direct: {err}");
        let report = validate(&values(&url), &vars);
        assert!(report.passed(), "{report:#?}");
    }
    let refused = format!("socks5://sockuser:pa^ss|w{{rd}}@127.0.0.1:{}", socks.port());
    let vars = [("HTTP_PROXY", refused.as_str())];
    let (ok, err) = restic(&url, &vars);
    assert!(!ok, "restic tries the host socks5: {err}");
    let (step, code, detail) = failure(&validate(&values(&url), &vars));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
    assert!(
        detail.starts_with(
            "the proxy at socks5:80 (from HTTP_PROXY) failed: its name does not resolve"
        ),
        "{detail}"
    );
    assert!(
        !detail.contains("sockuser") && !detail.contains("pa^ss"),
        "{detail}"
    );
}

/// A proxy port Go's url.Parse takes but nothing can dial (above 65535): restic fails on it,
/// and validate blames the proxy with the port as written (it said `:0` before).
#[test]
fn a_proxy_port_above_65535_is_the_proxys_failure() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = format!("s3:http://{}:{}/backups/p", loopback_name(), s3.port());
    let vars = [("HTTP_PROXY", "http://127.0.0.1:70000")];
    let (ok, err) = restic(&url, &vars);
    assert!(!ok, "restic cannot dial port 70000: {err}");
    let (step, code, detail) = failure(&validate(&values(&url), &vars));
    assert_eq!((step, code), (Some(Step::Endpoint), "proxy"), "{detail}");
    assert!(
        detail.starts_with(
            "the proxy at 127.0.0.1:70000 (from HTTP_PROXY) failed: its port is not a number from 0 to 65535, so it cannot be dialed (restic fails on it too); fix the proxy variables"
        ),
        "{detail}"
    );
}
