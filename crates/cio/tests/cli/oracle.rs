//! The oracle: restic 0.14 decides. Each case of the table is run through the real restic
//! (with the values in its environment) and through cio (`create` the set, `validate --json`,
//! `exec -- restic ...`), and they must agree: all three work, or all three fail and
//! validate's first FAIL has the code that names what restic stumbled on.
//!
//! Real parts only: s3s-fs, a region gate in front of it (`testkit::gate`, MinIO's region
//! replies), moto with IAM policies, tinyproxy and microsocks (HTTP and SOCKS5 proxies,
//! `oracle/proxies.rs`), stunnel (private CA, self-signed), Python's http.server. Cases run
//! in parallel; a restic that keeps retrying a dead endpoint is stopped after [`RESTIC_LIMIT`]
//! and counts as failed.
//!
//! validate's verdicts (step, code, detail) are kept as a snapshot: the table doubles as the
//! snapshot test of the check details and codes.

use std::sync::Mutex;

use testkit::gate::RegionGate;
use testkit::moto::{Moto, policy};
use testkit::s3::S3Server;
use testkit::tls::{CertKind, TlsFront};

mod aws_hosts;
mod harness;
mod hosts;
mod proxies;
mod tls_refusals;

use harness::*;
use proxies::Proxies;

/// A proxy variable whose value is not UTF-8 (the table's values are text): restic takes
/// the bytes as they are, looks the proxy's host up and fails; validate fails at the proxy
/// too (it took such a value as unset, went direct and said ok).
#[test]
fn a_proxy_value_that_is_not_utf8_fails_both() {
    use std::os::unix::ffi::OsStrExt;
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    s3.restic_init("backups", "c1", PW);
    let host = testkit::proxy::loopback_name();
    let env = crate::util::TestEnv::new();
    env.minio_set(
        "",
        &format!("s3:http://{host}:{}/backups/c1", s3.port()),
        ACCESS,
        SECRET,
        PW,
    );
    let proxy = std::ffi::OsStr::from_bytes(b"http://127.0.0.1\xff:3128");
    let run = |args: &[&str]| {
        env.cmd()
            .args(args)
            .env("HTTP_PROXY", proxy)
            .env("HOME", env.home())
            .write_stdin("")
            .timeout(std::time::Duration::from_secs(60))
            .assert()
    };
    let restic = run(&[
        "credential",
        "exec",
        "--",
        "restic",
        "--no-cache",
        "cat",
        "config",
    ])
    .failure();
    assert!(
        crate::util::stderr(&restic).contains("proxyconnect"),
        "{}",
        crate::util::stderr(&restic)
    );
    let out = run(&["credential", "validate", "--json"]).code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let fail = v["sets"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "fail")
        .expect("a failed check");
    assert_eq!(
        (&fail["step"], &fail["code"]),
        (&"endpoint".into(), &"proxy".into()),
        "{v}"
    );
}

#[test]
fn restic_and_cio_agree_on_every_case() {
    let s3 = S3Server::start(ACCESS, SECRET);
    for b in ["backups", "rootrepo"] {
        s3.create_bucket(b);
    }
    let c1 = s3.restic_init("backups", "c1", PW);
    s3.restic_init("rootrepo", "", PW);
    s3.restic_init("backups", "nested/node1", PW);
    s3.restic_init("backups", "unicode", UNICODE_PW);
    s3.restic_init("backups", "emoji", EMOJI_PW);
    s3.restic_init("backups", "zwj", ZWJ_PW);
    // A repository that lost its config, and one whose 'restic init' stopped after its key.
    let lost = s3.restic_init("backups", "lostconfig", PW);
    let data = env_file("some data");
    s3.restic_backup(&lost, PW, data.path());
    std::fs::remove_file(s3.root().join("backups/lostconfig/config")).expect("config removed");
    s3.restic_init("backups", "halfinit", PW);
    std::fs::remove_file(s3.root().join("backups/halfinit/config")).expect("config removed");
    let loopback_upper = testkit::proxy::loopback_name().to_uppercase();
    let many = s3.restic_init("backups", "many", PW);
    let first = key_ids(&s3, "backups/many").remove(0);
    let pwfile = env_file(SECOND_PW);
    let pwfile = pwfile.path().to_str().expect("a UTF-8 path");
    s3.restic(&many, PW, &["key", "add", "--new-password-file", pwfile]);
    s3.restic(&c1, PW, &["key", "add", "--new-password-file", pwfile]);
    let second = key_ids(&s3, "backups/many")
        .into_iter()
        .find(|id| *id != first)
        .expect("the added key");
    twenty_more_keys(&s3, "backups/many", &first);
    let hint = second[..8].to_string();
    let p = s3.port();
    let url = |path: &str| format!("s3:http://127.0.0.1:{p}/{path}");

    let gate = RegionGate::start(p, "nl-ams");
    let proxies = Proxies::start();
    let ca = TlsFront::start(p, CertKind::PrivateCa);
    let self_signed = TlsFront::start(p, CertKind::SelfSigned);
    let expired_ca = TlsFront::start(p, CertKind::ExpiredCa);
    let future_ca = TlsFront::start(p, CertKind::NotYetValidCa);
    let renewed_ca = TlsFront::start(p, CertKind::ExpiredCaAndRenewed);
    let expired_ca_file = expired_ca
        .trust_file
        .to_str()
        .expect("a UTF-8 path")
        .to_string();
    let web = testkit::web::WebServer::start();
    let (_closed_guard, closed) = testkit::refusing_port();

    let moto = Moto::start();
    moto.create_bucket("mbackups", "us-east-1");
    moto.create_bucket("meu", "eu-west-1");
    let all = policy(&[(&["s3:*"], &["arn:aws:s3:::*"])]);
    let (full_a, full_s) = moto.user("full", &all);
    let objects_only = policy(&[
        (
            &["s3:ListBucket", "s3:GetBucketLocation"],
            &["arn:aws:s3:::mbackups"],
        ),
        (
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            &["arn:aws:s3:::mbackups/*"],
        ),
    ]);
    let (obj_a, obj_s) = moto.user("objects-only", &objects_only);
    let read_only = policy(&[
        (
            &["s3:ListBucket", "s3:GetBucketLocation"],
            &["arn:aws:s3:::mbackups"],
        ),
        (&["s3:GetObject"], &["arn:aws:s3:::mbackups/*"]),
    ]);
    let (ro_a, ro_s) = moto.user("read-only", &read_only);
    let no_list = policy(&[(
        &["s3:GetObject", "s3:GetBucketLocation"],
        &["arn:aws:s3:::mbackups", "arn:aws:s3:::mbackups/*"],
    )]);
    let (nl_a, nl_s) = moto.user("no-list", &no_list);
    let (none_a, none_s) = moto.user("nothing", &policy(&[(&["sqs:ListQueues"], &["*"])]));
    moto.enforce();
    let m = moto.port();
    let murl = |path: &str| format!("s3:http://127.0.0.1:{m}/{path}");
    testkit::s3::run_restic(
        &s3.root().join(".mhome"),
        &murl("mbackups/r1"),
        &full_a,
        &full_s,
        PW,
        &[],
        &["init"],
    );
    testkit::s3::run_restic(
        &s3.root().join(".mhome"),
        &murl("meu/r1"),
        &full_a,
        &full_s,
        PW,
        &[],
        &["init"],
    );
    let fresh = |tag: &str| format!("fresh-{tag}-{}", std::process::id());

    let mut cases = vec![
        // Repository URL shapes (s3s-fs).
        case("plain URL", &url("backups/c1"), CAT, Expect::Works),
        case(
            "trailing slash",
            &format!("{}/", url("backups/c1")),
            CAT,
            Expect::Works,
        ),
        case(
            "localhost",
            &format!("s3:http://localhost:{p}/backups/c1"),
            CAT,
            Expect::Works,
        ),
        case(
            "repository at the bucket root",
            &url("rootrepo"),
            CAT,
            Expect::Works,
        ),
        case(
            "two-level prefix",
            &url("backups/nested/node1"),
            SNAPSHOTS,
            Expect::Works,
        ),
        case(
            "no such bucket",
            &url("nobucket/c1"),
            CAT,
            fails("no_such_bucket", "bucket does not exist"),
        ),
        case(
            "IPv6 loopback, nothing listens",
            &format!("s3:http://[::1]:{p}/backups/c1"),
            CAT,
            fails("unreachable", "connection refused"),
        ),
        case(
            "primary without a repository: init",
            &url(&format!("backups/{}", fresh("init"))),
            INIT,
            Expect::Works,
        ),
        case(
            "alternate without a repository",
            &url("backups/none"),
            CAT,
            fails("repo_not_initialized", "unable to open config file"),
        )
        .alternate(),
        case(
            "repository one level below",
            &url("backups/nested"),
            CAT,
            fails("repo_elsewhere", "unable to open config file"),
        ),
        case(
            "repository at the parent",
            &url("backups/c1/data"),
            CAT,
            fails("repo_elsewhere", "unable to open config file"),
        ),
        case(
            "repository that lost its config",
            &url("backups/lostconfig"),
            SNAPSHOTS,
            fails("config_missing", "unable to open config file"),
        ),
        case(
            "repository that lost its config, alternate",
            &url("backups/lostconfig"),
            CAT,
            fails("config_missing", "unable to open config file"),
        )
        .alternate(),
        case(
            "half-initialised repository (keys, no config)",
            &url("backups/halfinit"),
            CAT,
            fails("config_missing", "unable to open config file"),
        ),
        // Host names in any case: Go looks them up ignoring case, as DNS does.
        case(
            "LOCALHOST",
            &format!("s3:http://LOCALHOST:{p}/backups/c1"),
            CAT,
            Expect::Works,
        ),
        case(
            "Localhost",
            &format!("s3:http://Localhost:{p}/backups/c1"),
            CAT,
            Expect::Works,
        ),
        case(
            "this machine's name in upper case",
            &format!("s3:http://{loopback_upper}:{p}/backups/c1"),
            CAT,
            Expect::Works,
        ),
        case(
            "alternate set, good",
            &url("backups/c1"),
            CAT,
            Expect::Works,
        )
        .alternate(),
        // Credentials and passwords.
        case(
            "wrong secret key",
            &url("backups/c1"),
            CAT,
            fails("signature_mismatch", "signature"),
        )
        .keys(ACCESS, "not-the-secret"),
        case(
            "unknown access key",
            &url("backups/c1"),
            CAT,
            fails("invalid_access_key", ""),
        )
        .keys("someone-else", SECRET),
        case(
            "wrong password",
            &url("backups/c1"),
            CAT,
            fails("wrong_password", "wrong password"),
        )
        .password("not the password"),
        case(
            "second key's password",
            &url("backups/c1"),
            CAT,
            Expect::Works,
        )
        .password(SECOND_PW),
        case(
            "password with inner spaces and unicode",
            &url("backups/unicode"),
            CAT,
            Expect::Works,
        )
        .password(UNICODE_PW),
        case(
            "password with an emoji presentation sequence",
            &url("backups/emoji"),
            CAT,
            Expect::Works,
        )
        .password(EMOJI_PW),
        case(
            "password with an emoji ZWJ sequence",
            &url("backups/zwj"),
            CAT,
            Expect::Works,
        )
        .password(ZWJ_PW),
        case(
            "22 keys, password of a later key",
            &url("backups/many"),
            CAT,
            fails("too_many_keys", "maximum number of keys reached"),
        )
        .password(SECOND_PW)
        .slow(),
        case(
            "22 keys, key hint",
            &url("backups/many"),
            CAT,
            Expect::Works,
        )
        .password(SECOND_PW)
        .env("RESTIC_KEY_HINT", &hint),
        case(
            "22 keys, first password",
            &url("backups/many"),
            CAT,
            Expect::Works,
        ),
        // Regions: a storage configured with nl-ams (MinIO's replies).
        case(
            "region nl-ams, none configured",
            &format!("s3:http://127.0.0.1:{}/backups/c1", gate.port()),
            CAT,
            Expect::Works,
        ),
        case(
            "region nl-ams, snapshots",
            &format!("s3:http://127.0.0.1:{}/backups/c1", gate.port()),
            SNAPSHOTS,
            Expect::Works,
        ),
        case(
            "region nl-ams, the region credential set",
            &format!("s3:http://127.0.0.1:{}/backups/c1", gate.port()),
            CAT,
            Expect::Works,
        )
        .region("nl-ams"),
        case(
            "region nl-ams, another region set",
            &format!("s3:http://127.0.0.1:{}/backups/c1", gate.port()),
            CAT,
            fails("wrong_region", "400 Bad Request"),
        )
        .region("us-west-1"),
        case(
            "s3s-fs, any region set",
            &url("backups/c1"),
            CAT,
            Expect::Works,
        )
        .region("eu-central-1"),
        case(
            "moto bucket in eu-west-1",
            &murl("meu/r1"),
            CAT,
            Expect::Works,
        )
        .keys(&full_a, &full_s),
        // Permissions (moto's IAM policies).
        case("full key reads", &murl("mbackups/r1"), CAT, Expect::Works).keys(&full_a, &full_s),
        case(
            "full key, init with the write check",
            &murl(&format!("mbackups/{}", fresh("full"))),
            INIT,
            Expect::Works,
        )
        .keys(&full_a, &full_s)
        .write_check(),
        case(
            "objects-only key, init",
            &murl(&format!("mbackups/{}", fresh("obj"))),
            INIT,
            fails("access_denied", "Access Denied"),
        )
        .keys(&obj_a, &obj_s)
        .write_check(),
        case(
            "read-only key reads without a lock",
            &murl("mbackups/r1"),
            CAT_NO_LOCK,
            Expect::Works,
        )
        .keys(&ro_a, &ro_s),
        case(
            "read-only key, init",
            &murl(&format!("mbackups/{}", fresh("ro"))),
            INIT,
            fails("access_denied", "Access Denied"),
        )
        .keys(&ro_a, &ro_s)
        .write_check(),
        // restic retries the refused listing until it is stopped.
        case(
            "key that may not list",
            &murl("mbackups/r1"),
            CAT_NO_LOCK,
            fails("access_denied", ""),
        )
        .keys(&nl_a, &nl_s),
        case(
            "key allowed nothing in S3",
            &murl("mbackups/r1"),
            CAT_NO_LOCK,
            fails("access_denied", "Access Denied"),
        )
        .keys(&none_a, &none_s),
        // TLS without the certificate to trust.
        case(
            "private CA, not trusted",
            &format!("s3:https://127.0.0.1:{}/backups/c1", ca.port()),
            CAT,
            fails("tls", "certificate signed by unknown authority"),
        ),
        case(
            "self-signed, not trusted",
            &format!("s3:https://127.0.0.1:{}/backups/c1", self_signed.port()),
            CAT,
            fails("tls", "certificate"),
        ),
        case(
            "private CA, trusted from the cacert credential",
            &format!("s3:https://127.0.0.1:{}/backups/c1", ca.port()),
            CAT,
            Expect::Works,
        )
        .cacert(&ca),
        case(
            "self-signed, trusted from the cacert credential",
            &format!("s3:https://127.0.0.1:{}/backups/c1", self_signed.port()),
            SNAPSHOTS,
            Expect::Works,
        )
        .cacert(&self_signed),
        case(
            "private CA, another certificate trusted",
            &format!("s3:https://127.0.0.1:{}/backups/c1", ca.port()),
            CAT,
            fails("tls", "certificate signed by unknown authority"),
        )
        .cacert(&self_signed),
        // The CA's own certificate out of its dates: Go checks the root's dates too.
        case(
            "private CA expired 10 days ago, in the cacert credential",
            &format!("s3:https://127.0.0.1:{}/backups/c1", expired_ca.port()),
            CAT,
            fails("tls", "certificate has expired or is not yet valid"),
        )
        .cacert(&expired_ca),
        case(
            "private CA valid only from 10 days on, in the cacert credential",
            &format!("s3:https://127.0.0.1:{}/backups/c1", future_ca.port()),
            CAT,
            fails("tls", "certificate has expired or is not yet valid"),
        )
        .cacert(&future_ca),
        case(
            "private CA expired, and its renewal (same key) trusted beside it",
            &format!("s3:https://127.0.0.1:{}/backups/c1", renewed_ca.port()),
            CAT,
            Expect::Works,
        )
        .cacert(&renewed_ca),
        case(
            "private CA expired, from SSL_CERT_FILE",
            &format!("s3:https://127.0.0.1:{}/backups/c1", expired_ca.port()),
            CAT,
            fails("tls", "certificate has expired or is not yet valid"),
        )
        .env("SSL_CERT_FILE", &expired_ca_file),
        case(
            "https to a plain HTTP port",
            &format!("s3:https://127.0.0.1:{p}/backups/c1"),
            CAT,
            fails("tls", "HTTP response to HTTPS client"),
        ),
        case(
            "https to a plain HTTP port, with a cacert",
            &format!("s3:https://127.0.0.1:{p}/backups/c1"),
            CAT,
            fails("tls", "HTTP response to HTTPS client"),
        )
        .cacert(&ca),
        case(
            "private CA trusted, host name in upper case",
            &format!("s3:https://LOCALHOST:{}/backups/c1", ca.port()),
            CAT,
            Expect::Works,
        )
        .cacert(&ca),
    ];
    cases.extend(proxies.cases(p, &self_signed));
    cases.extend([
        // Not S3, not there.
        case(
            "a web server",
            &format!("s3:http://127.0.0.1:{}/backups/c1", web.port()),
            CAT,
            fails("not_s3", ""),
        ),
        case(
            "closed port",
            &format!("s3:http://127.0.0.1:{closed}/backups/c1"),
            CAT,
            fails("unreachable", ""),
        ),
        case(
            "name that does not resolve",
            "s3:http://no-such-host.invalid:9000/backups/c1",
            CAT,
            fails("dns", ""),
        ),
    ]);
    assert!(
        cases.len() >= 40,
        "the oracle table has {} cases",
        cases.len()
    );

    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("lock");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(c) = cases.get(i) else { return };
                    let r = run_case(c);
                    results.lock().expect("lock").push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("lock");
    results.sort_by_key(|(i, _)| *i);
    // A run stopped while restic was still retrying (a busy machine: four cases at once share
    // one tinyproxy and one s3s-fs) is no verdict: such a case runs once more, alone.
    for (i, r) in &mut results {
        if r.as_ref()
            .is_err_and(|e| e.contains("(stopped: still retrying)"))
        {
            *r = run_case(&cases[*i]);
        }
    }
    let failures: Vec<&String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );

    let table: String = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|o| format!("{}: {}\n", o.name, o.line))
        .collect();
    let redact = |text: &str| {
        let mut t = text.to_string();
        for (port, name) in [
            (p, "[S3]"),
            (gate.port(), "[GATE]"),
            (ca.port(), "[CA-TLS]"),
            (self_signed.port(), "[SELF-TLS]"),
            (expired_ca.port(), "[EXPIRED-CA-TLS]"),
            (future_ca.port(), "[FUTURE-CA-TLS]"),
            (renewed_ca.port(), "[RENEWED-CA-TLS]"),
            (web.port(), "[WEB]"),
            (closed, "[CLOSED]"),
            (m, "[MOTO]"),
        ] {
            t = t.replace(&format!(":{port}"), &format!(":{name}"));
        }
        t = proxies.redact(&t);
        t = t.replace(&expired_ca_file, "[EXPIRED-CA-FILE]");
        let re = regex_lite::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").expect("regex");
        let t = re.replace_all(&t, "[DATE]").into_owned();
        let re = regex_lite::Regex::new(r"fresh-(\w+)-\d+").expect("regex");
        let t = re.replace_all(&t, "fresh-$1-[PID]").into_owned();
        let re =
            regex_lite::Regex::new(r"\(([a-z ]+) [^)]*(os error \d+|Connection refused)[^)]*\)")
                .expect("regex");
        re.replace_all(&t, "($1 [OS ERROR])").into_owned()
    };
    insta::assert_snapshot!("oracle_verdicts", redact(&table));
}

/// TLS that restic (Go 1.19) speaks and validate's rustls does not, a self-signed certificate
/// trusted through `SSL_CERT_FILE` / `SSL_CERT_DIR` (not the set's CA credential), and a
/// repository prefix with `%` that s3s-fs lists unencoded while saying `encoding-type=url`:
/// restic works on the first two kinds (validate: ok, or a `tls_unchecked` failure where it
/// cannot check: never passed, as a forged certificate would pass too) and fails on the
/// last, as validate does.
#[test]
fn restic_and_cio_agree_on_tls_validate_does_not_speak_and_on_undecodable_listings() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    s3.restic_init("backups", "c1", PW);
    s3.restic_init("backups", "pct%25", PW);
    s3.restic_init("backups", "esc%1B", PW);
    let p = s3.port();
    let rsa = TlsFront::start_tls12(p, CertKind::RsaServer, "AES256-GCM-SHA384");
    let cbc = TlsFront::start_tls12(p, CertKind::RsaServer, "ECDHE-RSA-AES128-SHA");
    let rsa1024 = TlsFront::start(p, CertKind::Rsa1024Server);
    let p521 = TlsFront::start(p, CertKind::P521Server);
    let sha512 = TlsFront::start(p, CertKind::Sha512Signed);
    let self_signed = TlsFront::start(p, CertKind::SelfSigned);
    let client_only = TlsFront::start(p, CertKind::SelfSignedClientOnly);
    let client_only_ca = TlsFront::start(p, CertKind::ClientOnlyCa);
    let cert_dir = tempfile::tempdir().expect("a certificate folder");
    std::fs::copy(&self_signed.trust_file, cert_dir.path().join("server.pem")).expect("copy");
    let tls = |front: &TlsFront| format!("s3:https://127.0.0.1:{}/backups/c1", front.port());
    let unchecked = "";
    let cannot_check = Expect::Unchecked {
        code: "tls_unchecked",
    };
    let cases = [
        (
            case(
                "TLS 1.2, RSA key exchange only",
                &tls(&rsa),
                CAT,
                cannot_check,
            )
            .cacert(&rsa),
            unchecked,
        ),
        (
            case("TLS 1.2, CBC suites only", &tls(&cbc), CAT, cannot_check).cacert(&cbc),
            unchecked,
        ),
        (
            case("RSA-1024 server key", &tls(&rsa1024), CAT, cannot_check).cacert(&rsa1024),
            unchecked,
        ),
        (
            case("ECDSA P-521 server key", &tls(&p521), CAT, cannot_check).cacert(&p521),
            unchecked,
        ),
        (
            case(
                "certificate signed with ecdsa-with-SHA512",
                &tls(&sha512),
                CAT,
                cannot_check,
            )
            .cacert(&sha512),
            unchecked,
        ),
        (
            case(
                "self-signed, trusted through SSL_CERT_FILE",
                &tls(&self_signed),
                CAT,
                Expect::Works,
            )
            .env(
                "SSL_CERT_FILE",
                self_signed.trust_file.to_str().expect("a UTF-8 path"),
            ),
            "ok",
        ),
        (
            case(
                "self-signed, trusted through SSL_CERT_DIR",
                &tls(&self_signed),
                CAT,
                Expect::Works,
            )
            .env(
                "SSL_CERT_DIR",
                cert_dir.path().to_str().expect("a UTF-8 path"),
            ),
            "ok",
        ),
        // The review's finding: a trusted certificate for clients only passed validate.
        (
            case(
                "self-signed for clients only, trusted through SSL_CERT_FILE",
                &tls(&client_only),
                CAT,
                fails("tls", "incompatible key usage"),
            )
            .env(
                "SSL_CERT_FILE",
                client_only.trust_file.to_str().expect("a UTF-8 path"),
            ),
            "",
        ),
        // The final review's finding: a private CA for clients only passed validate (webpki
        // asks the server's certificate alone; Go every certificate of the chain).
        (
            case(
                "a private CA for clients only, in cio_minio_cacert",
                &tls(&client_only_ca),
                CAT,
                fails("tls", "incompatible key usage"),
            )
            .cacert(&client_only_ca),
            "",
        ),
        (
            case(
                "prefix with %, listed unencoded",
                &format!("s3:http://127.0.0.1:{p}/backups/pct%25"),
                SNAPSHOTS,
                fails("listing_undecodable", "invalid URL escape \"%/k\""),
            )
            .slow(),
            "",
        ),
        // A control character restic stores under (moto and AWS list it URL-encoded as
        // asked); s3s-fs lists it raw, which XML cannot carry.
        (
            case(
                "prefix with ESC, listed raw",
                &format!("s3:http://127.0.0.1:{p}/backups/esc%1B"),
                SNAPSHOTS,
                fails("listing_undecodable", "illegal character code U+001B"),
            )
            .slow(),
            "",
        ),
    ];
    let results: Vec<Result<Outcome, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(c, _)| scope.spawn(|| run_case(c)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a case's thread"))
            .collect()
    });
    for ((c, line), result) in cases.iter().zip(results) {
        // A run stopped while restic was still retrying (a busy machine) is no verdict: the
        // case runs once more, alone, as in the main table.
        let result = match result {
            Err(e) if e.contains("(stopped: still retrying)") => run_case(c),
            other => other,
        };
        let outcome = result.unwrap_or_else(|e| panic!("{e}"));
        if !line.is_empty() {
            assert_eq!(outcome.line, *line, "{}", c.name);
        }
    }
}

/// TLS cases the last review found validate disagreeing with restic on, each with the exact
/// verdict: a server allowing only P-521 key exchange and a server certificate for any
/// purpose (anyExtendedKeyUsage) work for restic, so validate passes them; a certificate for
/// another name fails for restic with the name whatever else is wrong with it (a signature
/// cio cannot check, a CA not trusted), so validate names the name; a server refusing every
/// key-exchange group restic offers fails both, which validate says is no certificate
/// problem.
#[test]
fn restic_and_cio_agree_on_p521_key_exchange_any_purpose_and_wrong_names() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    s3.restic_init("backups", "c1", PW);
    let p = s3.port();
    let p521_kx = TlsFront::start_with_conf(p, CertKind::PrivateCa, "curves = secp521r1\n");
    let any_purpose = TlsFront::start(p, CertKind::AnyPurposeServer);
    let sha512_wrong_name = TlsFront::start(p, CertKind::Sha512SignedWrongName);
    let wrong_name = TlsFront::start(p, CertKind::WrongName);
    let ffdhe = TlsFront::start_with_conf(
        p,
        CertKind::PrivateCa,
        "sslVersionMin = TLSv1.3\ncurves = ffdhe2048\n",
    );
    let tls =
        |host: &str, front: &TlsFront| format!("s3:https://{host}:{}/backups/c1", front.port());
    let name_fault = |front: &TlsFront| {
        format!(
            "FAIL endpoint tls: TLS with localhost:{} failed: its certificate is valid for {}, not localhost, and restic refuses it too; write cio_minio_backup_repo with a host name the certificate is valid for, or have the server's certificate issued for localhost",
            front.port(),
            testkit::tls::WRONG_NAME
        )
    };
    let restic_names_it = "x509: certificate is valid for other.example, not localhost";
    let cases = [
        (
            case(
                "only P-521 key exchange",
                &tls("127.0.0.1", &p521_kx),
                CAT,
                Expect::Works,
            )
            .cacert(&p521_kx),
            "ok".to_string(),
        ),
        (
            case(
                "server certificate for any purpose (anyExtendedKeyUsage)",
                &tls("127.0.0.1", &any_purpose),
                CAT,
                Expect::Works,
            )
            .cacert(&any_purpose),
            "ok".to_string(),
        ),
        (
            case(
                "certificate for another name, signed with ecdsa-with-SHA512",
                &tls("localhost", &sha512_wrong_name),
                CAT,
                fails("tls", restic_names_it),
            )
            .cacert(&sha512_wrong_name),
            name_fault(&sha512_wrong_name),
        ),
        (
            case(
                "certificate for another name, its CA not trusted",
                &tls("localhost", &wrong_name),
                CAT,
                fails("tls", restic_names_it),
            ),
            name_fault(&wrong_name),
        ),
        (
            case(
                "TLS 1.3 with finite-field groups only",
                &tls("127.0.0.1", &ffdhe),
                CAT,
                fails("tls", "remote error: tls: handshake failure"),
            )
            .cacert(&ffdhe),
            format!(
                "FAIL endpoint tls: TLS with 127.0.0.1:{} failed (the server ended the handshake with the TLS alert 'handshake failure'); this is no certificate problem: check the server's TLS settings (restic offers TLS 1.2 and 1.3 with ECDHE over X25519, P-256, P-384 or P-521), or use s3:http:// if the endpoint speaks plain HTTP",
                ffdhe.port()
            ),
        ),
    ];
    let results: Vec<Result<Outcome, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(c, _)| scope.spawn(|| run_case(c)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a case's thread"))
            .collect()
    });
    let mut wrong = Vec::new();
    for ((c, line), result) in cases.iter().zip(results) {
        let result = match result {
            Err(e) if e.contains("(stopped: still retrying)") => run_case(c),
            other => other,
        };
        match result {
            Ok(outcome) if outcome.line == *line => {}
            Ok(outcome) => wrong.push(format!(
                "{}:\n  got:  {}\n  want: {line}",
                c.name, outcome.line
            )),
            Err(e) => wrong.push(e),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// A file holding `text` (restic's --new-password-file).
fn env_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), text).expect("write");
    f
}
