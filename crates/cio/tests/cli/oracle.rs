//! The oracle: restic 0.14 decides. Each case of the table is run through the real restic
//! (with the values in its environment) and through cio (`create` the set, `validate --json`,
//! `exec -- restic ...`), and they must agree: all three work, or all three fail and
//! validate's first FAIL has the code that names what restic stumbled on.
//!
//! Real parts only: s3s-fs, a region gate in front of it (`testkit::gate`, MinIO's region
//! replies), moto with IAM policies, tinyproxy, stunnel (private CA, self-signed), Python's
//! http.server. Cases run in parallel; a restic that keeps retrying a dead endpoint is stopped
//! after [`RESTIC_LIMIT`] and counts as failed.
//!
//! validate's verdicts (step, code, detail) are kept as a snapshot: the table doubles as the
//! snapshot test of the check details and codes.

use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use testkit::gate::RegionGate;
use testkit::moto::{Moto, policy};
use testkit::proxy::{Tinyproxy, loopback_name};
use testkit::s3::S3Server;
use testkit::tls::{CertKind, TlsFront};

use crate::util::*;

const ACCESS: &str = "oracle-access";
const SECRET: &str = "oracle-secret-key";
const PW: &str = "oracle repository password";
const SECOND_PW: &str = "the second key's password";
const UNICODE_PW: &str = "päss wörd  with spaces";

/// The longest a restic run may take before it counts as failed (it retries dead endpoints).
const RESTIC_LIMIT: Duration = Duration::from_secs(20);

/// What restic and cio must both do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Works,
    /// Both fail; validate's first FAIL has `code`, and restic's error output holds `says`.
    Fails {
        code: &'static str,
        says: &'static str,
    },
}

struct Case {
    name: &'static str,
    alternate: bool,
    url: String,
    access: String,
    secret: String,
    password: String,
    /// Variables for restic, validate and exec alike (proxies, key hint).
    env: Vec<(&'static str, String)>,
    write_check: bool,
    /// The optional credentials: region, CA certificate (PEM) and, for restic run directly,
    /// the same certificate's file.
    region: Option<String>,
    cacert: Option<(String, std::path::PathBuf)>,
    /// Tries 20 key derivations: more time for restic and validate.
    slow: bool,
    /// The restic command compared.
    restic: Vec<&'static str>,
    expect: Expect,
}

fn case(name: &'static str, url: &str, restic: &[&'static str], expect: Expect) -> Case {
    Case {
        name,
        alternate: false,
        url: url.to_string(),
        access: ACCESS.into(),
        secret: SECRET.into(),
        password: PW.into(),
        env: Vec::new(),
        write_check: false,
        region: None,
        cacert: None,
        slow: false,
        restic: restic.to_vec(),
        expect,
    }
}

impl Case {
    fn keys(mut self, access: &str, secret: &str) -> Case {
        self.access = access.into();
        self.secret = secret.into();
        self
    }
    fn password(mut self, pw: &str) -> Case {
        self.password = pw.into();
        self
    }
    fn env(mut self, k: &'static str, v: &str) -> Case {
        self.env.push((k, v.to_string()));
        self
    }
    fn write_check(mut self) -> Case {
        self.write_check = true;
        self
    }
    fn region(mut self, region: &str) -> Case {
        self.region = Some(region.into());
        self
    }
    fn cacert(mut self, front: &TlsFront) -> Case {
        self.cacert = Some((front.trust_pem.clone(), front.trust_file.clone()));
        self
    }
    fn slow(mut self) -> Case {
        self.slow = true;
        self
    }
    fn alternate(mut self) -> Case {
        self.alternate = true;
        self
    }
}

const CAT: &[&str] = &["cat", "config"];
const SNAPSHOTS: &[&str] = &["snapshots"];
const INIT: &[&str] = &["init"];
const CAT_NO_LOCK: &[&str] = &["--no-lock", "cat", "config"];

fn fails(code: &'static str, says: &'static str) -> Expect {
    Expect::Fails { code, says }
}

/// Runs `cmd` to its end or for at most `limit`; `None` when it was stopped.
fn run_limited(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a command");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("waiting").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(worked, error output)` of a run stopped or finished.
fn verdict(out: Option<Output>) -> (bool, String) {
    match out {
        Some(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        None => (false, "(stopped: still retrying)".to_string()),
    }
}

impl Case {
    fn limit(&self) -> Duration {
        if self.slow {
            RESTIC_LIMIT * 6
        } else {
            RESTIC_LIMIT
        }
    }
}

/// restic with the case's values. `restic init` runs on a sibling prefix, so that the one
/// under `exec` still finds nothing there.
fn restic_direct(c: &Case, home: &std::path::Path) -> (bool, String) {
    let url = if c.restic == INIT {
        format!("{}-direct", c.url)
    } else {
        c.url.clone()
    };
    let mut cmd = Command::new(testkit::require_binary("restic"));
    cmd.args(&c.restic)
        .env_clear()
        .env("HOME", home)
        .env("RESTIC_CACHE_DIR", home.join("cache"))
        .env("RESTIC_REPOSITORY", url)
        .env("RESTIC_PASSWORD", &c.password)
        .env("AWS_ACCESS_KEY_ID", &c.access)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret)
        .envs(c.env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(region) = &c.region {
        cmd.env("AWS_DEFAULT_REGION", region);
    }
    if let Some((_, file)) = &c.cacert {
        cmd.env("SSL_CERT_FILE", file);
    }
    verdict(run_limited(cmd, c.limit()))
}

/// `cio` in `env`'s isolated environment, as a plain command (run with a time limit).
fn cio(env: &TestEnv) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cio"));
    cmd.env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .current_dir(env.dir.path());
    cmd
}

/// One case's outcome, for the snapshot.
struct Outcome {
    name: &'static str,
    line: String,
}

fn run_case(c: &Case) -> Result<Outcome, String> {
    let env = TestEnv::new();
    let alt = if c.alternate { "_alt" } else { "" };
    env.minio_set(alt, &c.url, &c.access, &c.secret, &c.password);
    if let Some(region) = &c.region {
        env.create(&format!("cio_minio{alt}_region"), region);
    }
    if let Some((pem, _)) = &c.cacert {
        env.create(&format!("cio_minio{alt}_cacert"), pem);
    }
    let (restic_ok, restic_err) = restic_direct(c, &env.dir.path().join("restic-home"));

    let mut validate = cio(&env);
    validate.args(["credential", "validate", "--json", "--provider", "minio"]);
    if c.alternate {
        validate.arg("--alternate");
    }
    if c.write_check {
        validate.arg("--write-check");
    }
    if c.slow {
        validate.args(["--timeout", "120"]);
    }
    validate.envs(c.env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = run_limited(validate, c.limit()).ok_or("validate did not finish")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "validate --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let checks = json["sets"][0]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed = checks.iter().find(|c| c["status"] == "fail");
    let validate_ok = json["passed"] == true;

    let mut exec = cio(&env);
    exec.args(["credential", "exec", "--provider", "minio"]);
    if c.alternate {
        exec.arg("--alternate");
    }
    exec.arg("--").arg("restic").args(&c.restic);
    exec.envs(c.env.iter().map(|(k, v)| (*k, v.as_str())));
    let (exec_ok, exec_err) = verdict(run_limited(exec, c.limit()));

    let summary = format!(
        "restic {}: {}; validate: {}; exec: {}",
        c.restic.join(" "),
        if restic_ok { "works" } else { "fails" },
        if validate_ok { "ok" } else { "FAIL" },
        if exec_ok { "works" } else { "fails" },
    );
    let agree = |why: &str| {
        format!(
            "{}: {why}\n  {summary}\n  restic: {restic_err}\n  exec: {exec_err}\n  validate: {json}",
            c.name
        )
    };
    match c.expect {
        Expect::Works => {
            if !(restic_ok && validate_ok && exec_ok) {
                return Err(agree("expected all to work"));
            }
        }
        Expect::Fails { code, says } => {
            if restic_ok || validate_ok || exec_ok {
                return Err(agree("expected all to fail"));
            }
            let got = failed.and_then(|f| f["code"].as_str()).unwrap_or("none");
            if got != code {
                return Err(agree(&format!("validate's code is {got}, not {code}")));
            }
            if !restic_err.contains(says) {
                return Err(agree(&format!("restic does not say '{says}'")));
            }
        }
    }
    let line = match failed {
        Some(f) => format!(
            "FAIL {} {}: {}",
            f["step"].as_str().unwrap_or("?"),
            f["code"].as_str().unwrap_or("?"),
            f["detail"].as_str().unwrap_or("?")
        ),
        None => {
            let warn = checks
                .iter()
                .find(|c| c["status"] == "warn" && c["step"] != "rules");
            match warn {
                Some(w) => format!(
                    "ok, warn {} {}",
                    w["step"].as_str().unwrap_or("?"),
                    w["code"].as_str().unwrap_or("?")
                ),
                None => "ok".to_string(),
            }
        }
    };
    Ok(Outcome { name: c.name, line })
}

/// A web server that is not S3: Python's http.server in an empty folder.
/// (The folder is kept for the server's lifetime.)
struct Web(
    std::process::Child,
    u16,
    #[allow(dead_code)] tempfile::TempDir,
);

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn web() -> Web {
    let port = testkit::free_port();
    let dir = tempfile::tempdir().expect("a folder");
    let child = Command::new(testkit::require_binary("python3"))
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting http.server");
    testkit::wait_for_port(port, Duration::from_secs(10));
    Web(child, port, dir)
}

/// The key files of `repo` on `s3`, sorted.
fn key_ids(s3: &S3Server, repo: &str) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(s3.root().join(repo).join("keys"))
        .expect("keys/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Copies `repo`'s key file `first` 20 times under names that sort first: the listing then
/// starts with 20 keys of the first password.
fn twenty_more_keys(s3: &S3Server, repo: &str, first: &str) {
    let dir = s3.root().join(repo).join("keys");
    let bytes = std::fs::read(dir.join(first)).expect("a key file");
    for i in 0..20 {
        std::fs::write(dir.join(format!("{i:02x}{}", "0".repeat(62))), &bytes).expect("copy");
    }
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
    let proxy = Tinyproxy::start(&[443]);
    let open_proxy = Tinyproxy::start(&[]);
    let host = loopback_name();
    let ca = TlsFront::start(p, CertKind::PrivateCa);
    let self_signed = TlsFront::start(p, CertKind::SelfSigned);
    let web = web();
    let closed = testkit::free_port();
    let dead_proxy = format!("http://127.0.0.1:{}", testkit::free_port());

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

    let cases = vec![
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
        case(
            "https to a plain HTTP port",
            &format!("s3:https://127.0.0.1:{p}/backups/c1"),
            CAT,
            fails("tls", "HTTP response to HTTPS client"),
        ),
        // Proxies (tinyproxy; CONNECT to 443 only, as Debian configures it).
        case(
            "http through the proxy",
            &format!("s3:http://{host}:{p}/backups/c1"),
            CAT,
            Expect::Works,
        )
        .env("HTTP_PROXY", &proxy.url()),
        case(
            "http through the proxy, lower case",
            &format!("s3:http://{host}:{p}/backups/c1"),
            CAT,
            Expect::Works,
        )
        .env("http_proxy", &proxy.url()),
        case(
            "https tunnel refused by the proxy",
            &format!("s3:https://{host}:{}/backups/c1", self_signed.port()),
            CAT,
            fails("proxy", "Access violation"),
        )
        .env("HTTPS_PROXY", &proxy.url()),
        case(
            "https through a CONNECT tunnel, CA trusted",
            &format!("s3:https://{host}:{}/backups/c1", self_signed.port()),
            CAT,
            Expect::Works,
        )
        .env("HTTPS_PROXY", &open_proxy.url())
        .cacert(&self_signed),
        case(
            "proxy down",
            &format!("s3:http://{host}:{p}/backups/c1"),
            CAT,
            fails("proxy", "proxyconnect"),
        )
        .env("HTTP_PROXY", &dead_proxy),
        case(
            "proxy down, loopback address never proxied",
            &url("backups/c1"),
            CAT,
            Expect::Works,
        )
        .env("HTTP_PROXY", &dead_proxy),
        case(
            "proxy down, NO_PROXY names the host",
            &format!("s3:http://{host}:{p}/backups/c1"),
            CAT,
            Expect::Works,
        )
        .env("HTTP_PROXY", &dead_proxy)
        .env("NO_PROXY", &host),
        case(
            "HTTPS_PROXY only: plain http goes direct",
            &format!("s3:http://{host}:{p}/backups/c1"),
            CAT,
            Expect::Works,
        )
        .env("HTTPS_PROXY", &dead_proxy),
        // Not S3, not there.
        case(
            "a web server",
            &format!("s3:http://127.0.0.1:{}/backups/c1", web.1),
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
    ];
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
            (proxy.port(), "[PROXY]"),
            (open_proxy.port(), "[OPEN-PROXY]"),
            (ca.port(), "[CA-TLS]"),
            (self_signed.port(), "[SELF-TLS]"),
            (web.1, "[WEB]"),
            (closed, "[CLOSED]"),
            (m, "[MOTO]"),
        ] {
            t = t.replace(&format!(":{port}"), &format!(":{name}"));
        }
        t = t.replace(dead_proxy.trim_start_matches("http://"), "127.0.0.1:[DEAD]");
        t = t.replace(&host, "[HOST]");
        let re = regex_lite::Regex::new(r"fresh-(\w+)-\d+").expect("regex");
        let t = re.replace_all(&t, "fresh-$1-[PID]").into_owned();
        let re =
            regex_lite::Regex::new(r"\(([a-z ]+) [^)]*(os error \d+|Connection refused)[^)]*\)")
                .expect("regex");
        re.replace_all(&t, "($1 [OS ERROR])").into_owned()
    };
    insta::assert_snapshot!("oracle_verdicts", redact(&table));
}

/// A file holding `text` (restic's --new-password-file).
fn env_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), text).expect("write");
    f
}
