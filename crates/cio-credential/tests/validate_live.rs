//! `validate` against real servers: s3s-fs (a real S3 implementation that checks SigV4) and
//! real restic repositories, on loopback ports in temporary folders. No mocks.
//!
//! Two replies no local server can produce (a bucket in another AWS region, a clock the
//! server finds skewed) come from a scripted HTTP responder that sends the exact XML error
//! documents AWS S3 sends; see `scripted`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use cio_credential::{
    KeyFile, Provider, Role, SecretValue, SetId, SetReport, SetValues, Status, Step,
    ValidateOptions as Options, validate_set, validate_sets,
};
use common::values;
use testkit::s3::S3Server;

const ACCESS: &str = "cioaccesskey";
const SECRET: &str = "cio-secret-key-1234";
const PASSWORD: &str = "a long repository password";

const MINIO: SetId = SetId {
    provider: Provider::Minio,
    role: Role::Primary,
};
const MINIO_ALT: SetId = SetId {
    provider: Provider::Minio,
    role: Role::Alternate,
};

/// `v` as the values of `set`.
fn of(set: SetId, mut v: SetValues) -> SetValues {
    v.set = set;
    v
}

fn run(set: SetId, v: &SetValues, opts: &Options) -> SetReport {
    let copy =
        |x: &Option<SecretValue>| x.as_ref().map(|s| SecretValue::new(s.expose().to_string()));
    let values = SetValues {
        set,
        backup_repo: copy(&v.backup_repo),
        access_key: copy(&v.access_key),
        secret_key: copy(&v.secret_key),
        backup_password: copy(&v.backup_password),
        region: copy(&v.region),
        cacert: copy(&v.cacert),
    };
    validate_set(&values, opts)
}

/// `(step, status, code)` of every check, for exact comparison.
fn summary(report: &SetReport) -> Vec<(Step, Status, &'static str)> {
    report
        .checks
        .iter()
        .map(|c| (c.step, c.status, c.code))
        .collect()
}

fn detail(report: &SetReport, step: Step) -> &str {
    &report.check(step).expect("the step is reported").detail
}

/// The first steps all Ok (the rules warn about http://, which every loopback test uses),
/// then `at` with `status`/`code`, then the rest skipped.
fn expect(at: Step, status: Status, code: &'static str) -> Vec<(Step, Status, &'static str)> {
    Step::ALL
        .iter()
        .map(|&s| {
            if s == Step::Rules && s < at {
                (s, Status::Warn, "plain_http")
            } else if s < at {
                (s, Status::Ok, "ok")
            } else if s == at {
                (s, status, code)
            } else {
                (s, Status::Skipped, "skipped")
            }
        })
        .collect()
}

fn no_secret_in(report: &SetReport, secrets: &[&str]) {
    let json = serde_json::to_string(report).expect("a report serializes");
    for s in secrets {
        assert!(!json.contains(s), "a secret leaked into the report: {json}");
    }
}

/// Opens the repository on disk the way restic would, for the ids the report must name.
fn key_and_repo_ids(repo_dir: &std::path::Path) -> (String, String) {
    let entry = std::fs::read_dir(repo_dir.join("keys"))
        .expect("keys/")
        .next()
        .expect("a key")
        .expect("entry");
    let key = KeyFile::parse(&std::fs::read(entry.path()).expect("key file")).expect("parses");
    let master = key.open(&SecretValue::new(PASSWORD.into())).expect("opens");
    let config = master
        .open_config(&std::fs::read(repo_dir.join("config")).expect("config"))
        .expect("config opens");
    (
        entry.file_name().to_string_lossy()[..8].to_string(),
        config.id[..8].to_string(),
    )
}

#[test]
fn a_good_set_passes_every_step_and_the_write_probe_leaves_nothing() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.restic_init("backups", "cluster1", PASSWORD);
    let port = s3.port();
    let opts = Options {
        write_check: true,
        ..Options::default()
    };
    let report = run(MINIO, &values(&url, ACCESS, SECRET, PASSWORD), &opts);
    assert_eq!(
        summary(&report),
        expect(Step::Summary, Status::Ok, "ok"),
        "{report:#?}"
    );
    let (key_id, repo_id) = key_and_repo_ids(&s3.root().join("backups/cluster1"));
    assert_eq!(
        detail(&report, Step::Completeness),
        "all 4 credentials of the minio primary set exist"
    );
    assert_eq!(
        detail(&report, Step::Rules),
        "cio_minio_backup_repo: the repository uses http://: keys and backups cross the network unencrypted; use s3:https:// unless this is a trusted local network"
    );
    assert_eq!(
        detail(&report, Step::Endpoint),
        format!("127.0.0.1:{port} answers the S3 API")
    );
    assert_eq!(
        detail(&report, Step::Credentials),
        format!("127.0.0.1:{port} accepted the access key and its signature")
    );
    assert_eq!(
        detail(&report, Step::Bucket),
        "bucket 'backups' exists (region us-east-1, as the server says)"
    );
    assert_eq!(
        detail(&report, Step::Permissions),
        "the key may list, read, write and delete"
    );
    assert_eq!(
        detail(&report, Step::Repository),
        format!("restic repository found at {url}")
    );
    assert_eq!(
        detail(&report, Step::Password),
        format!("the password opens key {key_id}; repository {repo_id}, format version 2")
    );
    assert_eq!(detail(&report, Step::Summary), "no snapshots yet");
    assert!(report.passed());
    no_secret_in(&report, &[SECRET, PASSWORD, ACCESS]);

    let left: Vec<_> = std::fs::read_dir(s3.root().join("backups/cluster1"))
        .expect("repo dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cio-validate"))
        .collect();
    assert!(left.is_empty(), "the write probe was left behind: {left:?}");
}

#[test]
fn snapshots_are_counted_after_real_backups() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.restic_init("backups", "", PASSWORD);
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("volume.img"), b"some volume data").expect("write");
    s3.restic_backup(&url, PASSWORD, data.path());
    std::fs::write(data.path().join("volume.img"), b"changed data").expect("write");
    s3.restic_backup(&url, PASSWORD, data.path());
    let report = run(
        MINIO,
        &values(&url, ACCESS, SECRET, PASSWORD),
        &Options::default(),
    );
    assert!(report.passed(), "{report:#?}");
    assert_eq!(detail(&report, Step::Summary), "2 snapshots");
}

#[test]
fn a_wrong_secret_key_is_a_signature_mismatch() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.repo_url("backups", "");
    let report = run(
        MINIO,
        &values(&url, ACCESS, "not-the-secret-key", PASSWORD),
        &Options::default(),
    );
    assert_eq!(
        summary(&report),
        expect(Step::Credentials, Status::Fail, "signature_mismatch")
    );
    assert_eq!(
        detail(&report, Step::Credentials),
        "the secret key in cio_minio_secret_key does not belong to the access key in cio_minio_access_key; set the matching secret key"
    );
    no_secret_in(&report, &["not-the-secret-key", PASSWORD]);
}

#[test]
fn an_unknown_access_key_is_reported_as_such() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.repo_url("backups", "");
    let report = run(
        MINIO,
        &values(&url, "someoneelse", SECRET, PASSWORD),
        &Options::default(),
    );
    assert_eq!(
        summary(&report),
        expect(Step::Credentials, Status::Fail, "invalid_access_key"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Credentials),
        format!(
            "127.0.0.1:{} does not know the access key in cio_minio_access_key; check it, or create a key on the server",
            s3.port()
        )
    );
}

#[test]
fn a_missing_bucket_is_named() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let url = s3.repo_url("nobucket", "x");
    let report = run(
        MINIO,
        &values(&url, ACCESS, SECRET, PASSWORD),
        &Options::default(),
    );
    assert_eq!(
        summary(&report),
        expect(Step::Bucket, Status::Fail, "no_such_bucket"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Bucket),
        format!(
            "bucket 'nobucket' does not exist on 127.0.0.1:{}; create it, or correct the bucket in cio_minio_backup_repo",
            s3.port()
        )
    );
}

#[test]
fn an_uninitialized_repository_warns_for_primary_and_fails_for_alternate() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.repo_url("backups", "not/yet");
    let v = values(&url, ACCESS, SECRET, PASSWORD);

    let primary = run(MINIO, &v, &Options::default());
    assert_eq!(
        summary(&primary),
        expect(Step::Repository, Status::Warn, "repo_not_initialized"),
        "{primary:#?}"
    );
    assert_eq!(
        detail(&primary, Step::Repository),
        format!(
            "no restic repository at {url} yet; create it with 'cio credential exec --provider minio -- restic init'"
        )
    );
    assert!(primary.passed());
    assert_eq!(primary.status(), Status::Warn);

    let alternate = run(MINIO_ALT, &v, &Options::default());
    assert_eq!(
        summary(&alternate),
        expect(Step::Repository, Status::Fail, "repo_not_initialized")
    );
    assert_eq!(
        detail(&alternate, Step::Repository),
        format!(
            "no restic repository at {url}; the alternate set must point at another cluster's existing repository: check the bucket and prefix in cio_minio_alt_backup_repo"
        )
    );
    assert!(!alternate.passed());
}

#[test]
fn a_wrong_password_is_its_own_result() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.restic_init("backups", "c1", PASSWORD);
    let report = run(
        MINIO,
        &values(&url, ACCESS, SECRET, "the wrong password"),
        &Options::default(),
    );
    assert_eq!(
        summary(&report),
        expect(Step::Password, Status::Fail, "wrong_password"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Password),
        "the password in cio_minio_backup_password opens none of the repository's 1 key files; store a password one of its keys opens with 'cio credential create cio_minio_backup_password --force' (--force: the stored one already fails, so nothing is rotated)"
    );
    no_secret_in(&report, &["the wrong password"]);
}

#[test]
fn a_closed_port_fails_in_under_a_second() {
    let (_refusing, port) = testkit::refusing_port();
    let url = format!("s3:http://127.0.0.1:{port}/backups");
    let start = Instant::now();
    let report = run(
        MINIO,
        &values(&url, ACCESS, SECRET, PASSWORD),
        &Options::default(),
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        summary(&report),
        expect(Step::Endpoint, Status::Fail, "unreachable")
    );
    assert!(
        detail(&report, Step::Endpoint).starts_with(&format!(
            "nothing accepts connections on 127.0.0.1:{port} ("
        )),
        "{report:#?}"
    );
}

#[test]
fn a_server_that_never_answers_times_out_on_time() {
    // Accepts connections (the kernel completes the handshake) and never reads or writes.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let url = format!("s3:http://127.0.0.1:{port}/backups");
    let opts = Options {
        timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let start = Instant::now();
    let report = run(MINIO, &values(&url, ACCESS, SECRET, PASSWORD), &opts);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        summary(&report),
        expect(Step::Endpoint, Status::Fail, "timeout")
    );
    assert_eq!(
        detail(&report, Step::Endpoint),
        format!(
            "127.0.0.1:{port} accepted the connection but sent no answer within 2s; check that it is an S3 server and not overloaded"
        )
    );
    drop(listener);
}

/// An https URL to a server that answers in plain HTTP: no certificate is involved (restic:
/// "server gave HTTP response to HTTPS client"), with or without a CA certificate stored.
#[test]
fn https_to_a_plain_http_server_is_a_tls_failure_that_names_plain_http() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = format!("s3:https://127.0.0.1:{}/backups", s3.port());
    let ca = testkit::tls::TlsFront::start(s3.port(), testkit::tls::CertKind::PrivateCa);
    let pem = std::fs::read_to_string(&ca.trust_file).expect("the CA certificate");
    let without = values(&url, ACCESS, SECRET, PASSWORD);
    let with = SetValues {
        cacert: Some(SecretValue::new(pem)),
        ..values(&url, ACCESS, SECRET, PASSWORD)
    };
    for v in [without, with] {
        let report = run(MINIO, &v, &Options::default());
        let mut expected = expect(Step::Endpoint, Status::Fail, "tls");
        expected[1] = (Step::Rules, Status::Ok, "ok");
        assert_eq!(
            summary(&report)[..expected.len()],
            expected[..],
            "{report:#?}"
        );
        assert_eq!(
            detail(&report, Step::Endpoint),
            format!(
                "127.0.0.1:{} answers in plain HTTP, not TLS (restic: \"server gave HTTP response to HTTPS client\"); this is no certificate problem: write the repository URL with s3:http://, or enable TLS on the server",
                s3.port()
            )
        );
    }
}

#[test]
fn sets_are_checked_concurrently() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let url = s3.restic_init("backups", "", PASSWORD);
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!(
        "s3:http://127.0.0.1:{}/backups",
        silent.local_addr().expect("addr").port()
    );
    let silent2 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent2_url = format!(
        "s3:http://127.0.0.1:{}/backups",
        silent2.local_addr().expect("addr").port()
    );
    let opts = Options {
        timeout: Duration::from_secs(2),
        ..Options::default()
    };
    let start = Instant::now();
    let reports = validate_sets(
        vec![
            of(MINIO, values(&silent_url, ACCESS, SECRET, PASSWORD)),
            of(MINIO_ALT, values(&url, ACCESS, SECRET, PASSWORD)),
            of(
                SetId {
                    provider: Provider::Aws,
                    role: Role::Primary,
                },
                values(
                    &silent2_url,
                    "AKIAYHD623GGZX7VDFMJ",
                    "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
                    PASSWORD,
                ),
            ),
        ],
        &opts,
    );
    let took = start.elapsed();
    // Two silent servers one after the other would take 4 s.
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].set, MINIO);
    assert_eq!(
        reports[0].check(Step::Endpoint).map(|c| c.code),
        Some("timeout")
    );
    assert_eq!(reports[1].set, MINIO_ALT);
    assert!(reports[1].passed(), "{:#?}", reports[1]);
    assert_eq!(
        reports[2].check(Step::Endpoint).map(|c| c.code),
        Some("timeout")
    );
}

/// A scripted HTTP responder, for replies no local S3 server can give: `reply` chooses the
/// answer from the request's first line, one request per connection. The replies are the XML
/// error documents AWS S3 sends.
fn scripted(reply: impl Fn(&str) -> String + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let first = head.lines().next().unwrap_or_default().to_string();
            let _ = stream.write_all(reply(&first).as_bytes());
        }
    });
    port
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

fn aws_set() -> SetId {
    SetId {
        provider: Provider::Aws,
        role: Role::Primary,
    }
}

fn aws_values(port: u16) -> SetValues {
    values(
        &format!("s3:http://127.0.0.1:{port}/backups"),
        "AKIAYHD623GGZX7VDFMJ",
        "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd",
        PASSWORD,
    )
}

#[test]
fn a_skewed_clock_is_reported() {
    // AWS S3's reply when the request's date is more than 15 minutes off.
    let skewed = http(
        "403 Forbidden",
        "",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><RequestTime>20261128T100000Z</RequestTime><ServerTime>2026-11-28T14:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds><RequestId>4442587FB7D0A2F9</RequestId><HostId>abc</HostId></Error>"#,
    );
    let port = scripted(move |_| skewed.clone());
    let report = run(aws_set(), &aws_values(port), &Options::default());
    assert_eq!(
        summary(&report)[2..],
        expect(Step::Credentials, Status::Fail, "clock_skew")[2..],
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Credentials),
        format!(
            "this machine's clock differs from 127.0.0.1:{port}'s by more than 15 minutes; correct the time (NTP) and validate again"
        )
    );
}

#[test]
fn a_host_that_does_not_resolve_is_a_dns_failure() {
    // `.invalid` never resolves (RFC 2606).
    let url = "s3:http://no-such-host.invalid:9000/backups";
    let start = Instant::now();
    let report = run(
        MINIO,
        &values(url, ACCESS, SECRET, PASSWORD),
        &Options::default(),
    );
    assert!(start.elapsed() < Duration::from_secs(11));
    let endpoint = report.check(Step::Endpoint).expect("endpoint");
    assert_eq!(
        (endpoint.status, endpoint.code),
        (Status::Fail, "dns"),
        "{report:#?}"
    );
    assert!(
        endpoint
            .detail
            .starts_with("cannot resolve no-such-host.invalid (")
            && endpoint
                .detail
                .ends_with("); check the host name in the repository URL"),
        "{report:#?}"
    );
}

#[test]
fn a_web_page_is_not_s3() {
    // A web server's answer (as MinIO's console port gives): HTML, no S3 document. No S3
    // server sends this, so it is scripted.
    let page = "<!doctype html><html><head><title>MinIO Console</title></head><body></body></html>";
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let port = scripted(move |_| reply.clone());
    let report = run(
        MINIO,
        &values(
            &format!("s3:http://127.0.0.1:{port}/backups"),
            ACCESS,
            SECRET,
            PASSWORD,
        ),
        &Options::default(),
    );
    assert_eq!(
        summary(&report),
        expect(Step::Endpoint, Status::Fail, "not_s3"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Endpoint),
        format!(
            "127.0.0.1:{port} answers HTTP (200) but not the S3 API: it may be a web page or a console; use the port of the S3 API (MinIO: the API port, 9000 by default, not the console's 9001)"
        )
    );
}
