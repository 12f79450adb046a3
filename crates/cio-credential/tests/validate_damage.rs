//! A repository restic reads differently from how validate read it: damaged or unusual files
//! written straight into s3s-fs's folder, as a hostile tester did, each checked against the
//! real restic 0.14 first (restic is the oracle): a key file restic stops at, a key renamed
//! off its id, the old `s3legacy` layout, a snapshot restic cannot load, a config version
//! restic does not know, an empty config, locks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use cio_credential::{SetReport, Status, Step, ValidateOptions as Options, validate_set};
use common::{detail, restic, values};
use sha2::Digest;
use testkit::s3::S3Server;

const ACCESS: &str = "damageaccess";
const SECRET: &str = "damage-secret-key-1";
const PASSWORD: &str = "damage repository password";

fn options() -> Options {
    Options {
        timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

/// A check past the repository step that fails or warns (the loopback `http://` URL warns
/// at the rules step in every test here).
fn flagged(c: &&cio_credential::Check) -> bool {
    c.step >= Step::Password && matches!(c.status, Status::Fail | Status::Warn)
}

/// The first such check: its step, status and code.
fn verdict(report: &SetReport) -> (Step, Status, &'static str) {
    report
        .checks
        .iter()
        .find(flagged)
        .map_or((Step::Summary, Status::Ok, "ok"), |c| {
            (c.step, c.status, c.code)
        })
}

fn warning_or_failure(report: &SetReport) -> String {
    report
        .checks
        .iter()
        .find(flagged)
        .map(|c| c.detail.clone())
        .unwrap_or_default()
}

/// A repository made by `restic init` (with `init_args`) at `bucket/krepo`: the server, the
/// URL and the repository's folder on disk.
fn repository(init_args: &[&str]) -> (S3Server, String, PathBuf) {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("bucket");
    let url = s3.repo_url("bucket", "krepo");
    let mut args = init_args.to_vec();
    args.push("init");
    s3.restic(&url, PASSWORD, &args);
    let dir = s3.root().join("bucket/krepo");
    (s3, url, dir)
}

fn validate(url: &str) -> SetReport {
    validate_set(&values(url, ACCESS, SECRET, PASSWORD), &options())
}

fn restic_run(url: &str, args: &[&str]) -> (bool, String) {
    restic(url, ACCESS, SECRET, PASSWORD, &[], args)
}

fn only_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("folder")
        .next()
        .expect("one file")
        .expect("entry")
        .path()
}

// ---- key files restic stops at, and names restic does not read ----

#[test]
fn a_damaged_key_file_listed_before_the_right_key_fails_validate_as_it_fails_restic() {
    let (_s3, url, dir) = repository(&[]);
    let right = std::fs::read(only_file(&dir.join("keys"))).expect("the key");
    let mut bad_salt: serde_json::Value = serde_json::from_slice(&right).expect("JSON");
    bad_salt["salt"] = BASE64.encode([1u8; 10]).into();
    let mut bad_time = bad_salt.clone();
    bad_time["salt"] =
        serde_json::from_slice::<serde_json::Value>(&right).expect("JSON")["salt"].clone();
    bad_time["created"] = "garbage".into();
    let zeros = "0".repeat(64);
    let first = dir.join("keys").join(&zeros);
    for (what, bytes, says) in [
        ("{}", b"{}".to_vec(), "only supported KDF is scrypt()"),
        ("an empty file", Vec::new(), "Unmarshal"),
        ("not JSON", b"not json".to_vec(), "Unmarshal"),
        (
            "a 10-byte salt",
            bad_salt.to_string().into_bytes(),
            "invalid salt",
        ),
        (
            "a bad created time",
            bad_time.to_string().into_bytes(),
            "parsing time",
        ),
    ] {
        std::fs::write(&first, &bytes).expect("write");
        let (ok, err) = restic_run(&url, &["cat", "config"]);
        assert!(!ok && err.contains(says), "{what}: restic says {err}");
        let report = validate(&url);
        assert_eq!(
            verdict(&report),
            (Step::Password, Status::Fail, "bad_key_file"),
            "{what}: {report:#?}"
        );
        let d = detail(&report, Step::Password);
        assert!(
            d.starts_with(&format!("restic stops at the key file keys/{zeros} before it reaches a key this password opens, so every restic command fails: key file is not a restic key file: ")),
            "{what}: {d}"
        );
        assert!(
            d.ends_with(&format!("; remove the object 'bucket/krepo/keys/{zeros}' with an S3 tool (restic cannot open the repository to remove it; keep a copy if in doubt), then check the keys left with 'cio credential exec --provider minio -- restic key list'")),
            "{what}: {d}"
        );
        assert!(!d.contains(PASSWORD));
    }
    std::fs::remove_file(&first).expect("remove");
    assert!(restic_run(&url, &["cat", "config"]).0);
    assert!(validate(&url).passed());
}

#[test]
fn a_key_renamed_off_its_id_is_not_read_by_validate_as_restic_does_not_read_it() {
    let (_s3, url, dir) = repository(&[]);
    let key = only_file(&dir.join("keys"));
    let id = key
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    std::fs::rename(&key, key.with_file_name(format!("{id}.bak"))).expect("rename");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(
        !ok && err.contains("wrong password or no key found"),
        "{err}"
    );
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Password, Status::Fail, "wrong_password"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Password),
        format!(
            "the password in cio_minio_backup_password opens none of the repository's 1 key files (restic does not read keys/{id}.bak: a key file's name is its 64-digit id; if it is this password's key, rename it to its id); store a password one of its keys opens with 'cio credential create cio_minio_backup_password --force' (--force: the stored one already fails, so nothing is rotated)"
        )
    );
}

// ---- the s3legacy layout ----

#[test]
fn a_repository_in_the_s3legacy_layout_validates_as_restic_opens_it() {
    let (s3, url, dir) = repository(&["-o", "s3.layout=s3legacy"]);
    assert!(dir.join("key").is_dir() && !dir.join("keys").exists());
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("f"), "x").expect("write");
    s3.restic(
        &url,
        PASSWORD,
        &["backup", "--no-cache", data.path().to_str().expect("utf-8")],
    );
    let (ok, err) = restic_run(&url, &["snapshots"]);
    assert!(ok, "restic detects the layout: {err}");
    let report = validate(&url);
    assert!(report.passed(), "{report:#?}");
    assert_eq!(verdict(&report).1, Status::Ok, "{report:#?}");
    assert_eq!(detail(&report, Step::Summary), "1 snapshot");
}

// ---- snapshots restic cannot load ----

#[test]
fn a_snapshot_restic_cannot_load_fails_validate_as_it_fails_restic_backup() {
    let (s3, url, dir) = repository(&[]);
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("f"), "x").expect("write");
    let path = data.path().to_str().expect("utf-8");
    s3.restic(&url, PASSWORD, &["backup", "--no-cache", path]);
    let bad = "2".repeat(64);
    std::fs::write(dir.join("snapshots").join(&bad), "garbage\n").expect("write");
    let (ok, err) = restic_run(&url, &["backup", "--no-cache", path]);
    assert!(
        !ok && err.contains("Error loading snapshot 22222222"),
        "{err}"
    );
    // restic 0.14 cannot forget what it cannot load: the advice is to delete the object.
    let (_, err) = restic_run(&url, &["forget", &bad]);
    assert!(err.contains("could not load snapshot"), "{err}");
    assert!(dir.join("snapshots").join(&bad).exists());

    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Summary, Status::Fail, "snapshot_damaged"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Summary),
        format!(
            "restic cannot load snapshot 22222222: snapshot is not a restic snapshot: its content does not match its id (invalid data returned); 'restic backup' reads every snapshot to find its parent and fails on it ('restic snapshots' only warns); restic 0.14 cannot forget a snapshot it cannot load: delete the object 'bucket/krepo/snapshots/{bad}' with an S3 tool (restic 0.16 or later: 'restic repair snapshots --forget')"
        )
    );
    std::fs::remove_file(dir.join("snapshots").join(&bad)).expect("remove");
    assert!(restic_run(&url, &["backup", "--no-cache", path]).0);
    let report = validate(&url);
    assert!(report.passed(), "{report:#?}");
    assert_eq!(detail(&report, Step::Summary), "2 snapshots");
}

// ---- files sealed with the repository's master key, as restic seals them ----

struct Master {
    encrypt: [u8; 32],
    k: [u8; 16],
    r: [u8; 16],
}

/// The master key, from `restic cat masterkey`.
fn master_key(url: &str) -> Master {
    let home = tempfile::tempdir().expect("home");
    let out = testkit::s3::run_restic(
        home.path(),
        url,
        ACCESS,
        SECRET,
        PASSWORD,
        &[],
        &["cat", "masterkey"],
    );
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let bytes = |v: &serde_json::Value| BASE64.decode(v.as_str().expect("base64")).expect("b64");
    Master {
        encrypt: bytes(&json["encrypt"]).try_into().expect("32 bytes"),
        k: bytes(&json["mac"]["k"]).try_into().expect("16 bytes"),
        r: bytes(&json["mac"]["r"]).try_into().expect("16 bytes"),
    }
}

/// `plain` sealed as restic seals: IV, AES-256-CTR, Poly1305-AES of the ciphertext.
fn seal(m: &Master, plain: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).expect("random");
    let mut ct = plain.to_vec();
    ctr::Ctr128BE::<aes::Aes256>::new(&m.encrypt.into(), &iv.into()).apply_keystream(&mut ct);
    const MASK: [u8; 16] = [
        0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff,
        0x0f,
    ];
    let mut key = [0u8; 32];
    for i in 0..16 {
        key[i] = m.r[i] & MASK[i];
    }
    let mut s = aes::Block::from(iv);
    aes::Aes128::new(&m.k.into()).encrypt_block(&mut s);
    key[16..].copy_from_slice(s.as_slice());
    let tag = poly1305::Poly1305::new(&key.into()).compute_unpadded(&ct);
    [&iv[..], &ct, tag.as_slice()].concat()
}

#[test]
fn a_config_version_restic_does_not_know_fails_validate_as_it_fails_restic() {
    let (_s3, url, dir) = repository(&[]);
    let m = master_key(&url);
    let home = tempfile::tempdir().expect("home");
    let out = testkit::s3::run_restic(
        home.path(),
        &url,
        ACCESS,
        SECRET,
        PASSWORD,
        &[],
        &["cat", "config"],
    );
    let mut config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config");
    config["version"] = 3.into();
    std::fs::write(dir.join("config"), seal(&m, config.to_string().as_bytes())).expect("write");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(
        !ok && err.contains("unsupported repository version 3"),
        "{err}"
    );
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Password, Status::Fail, "repo_version"),
        "{report:#?}"
    );
    assert_eq!(
        detail(&report, Step::Password),
        "the repository's config says format version 3, which restic 0.14 cannot open (\"unsupported repository version 3\"; it knows versions 1 and 2); use the restic release that made the repository on this node, or restore the repository's config if it was changed"
    );

    // A polynomial chunker refuses: x^53 + 1 is divisible by x + 1.
    config["version"] = 2.into();
    config["chunker_polynomial"] = "20000000000001".into();
    std::fs::write(dir.join("config"), seal(&m, config.to_string().as_bytes())).expect("write");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(!ok && err.contains("invalid chunker polynomial"), "{err}");
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Password, Status::Fail, "config_damaged"),
        "{report:#?}"
    );
}

/// RFC 3339 (UTC) of `secs` seconds before now.
fn rfc3339_ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", now - secs),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .expect("date");
    String::from_utf8(out.stdout)
        .expect("text")
        .trim()
        .to_string()
}

/// Writes a lock file as restic names it (the SHA-256 of its content).
fn write_lock(dir: &Path, m: &Master, json: &str) -> PathBuf {
    let sealed = seal(m, json.as_bytes());
    let path = dir
        .join("locks")
        .join(hex::encode(sha2::Sha256::digest(&sealed)));
    std::fs::create_dir_all(dir.join("locks")).expect("locks/");
    std::fs::write(&path, sealed).expect("write");
    path
}

#[test]
fn an_exclusive_lock_of_another_host_is_reported_with_its_holder() {
    let (_s3, url, dir) = repository(&[]);
    let m = master_key(&url);
    let lock = write_lock(
        &dir,
        &m,
        &format!(
            r#"{{"time":"{}","exclusive":true,"hostname":"other-node","username":"backup","pid":4242}}"#,
            rfc3339_ago(120)
        ),
    );
    let (ok, err) = restic_run(&url, &["snapshots"]);
    assert!(!ok && err.contains("locked exclusively"), "{err}");
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Summary, Status::Warn, "repo_locked"),
        "{report:#?}"
    );
    let id = lock.file_name().expect("name").to_string_lossy()[..8].to_string();
    assert_eq!(
        warning_or_failure(&report),
        format!(
            "the repository is locked exclusively by lock {id} by PID 4242 on host 'other-node' (user 'backup'), made 2 minutes ago (a prune, check or key change): restic backup and snapshots fail until it ends; if no restic runs there any more, remove it with 'cio credential exec --provider minio -- restic unlock --remove-all' (or 'cio credential exec --provider minio -- restic unlock' once it is 30 minutes old)"
        )
    );
    // 'restic unlock' leaves a fresh lock of another host alone: not stale.
    assert!(restic_run(&url, &["unlock"]).0);
    assert!(lock.exists());

    // Older than 30 minutes: stale, and every restic command still fails until 'unlock'.
    std::fs::remove_file(&lock).expect("remove");
    let lock = write_lock(
        &dir,
        &m,
        &format!(
            r#"{{"time":"{}","exclusive":true,"hostname":"other-node","username":"backup","pid":4242}}"#,
            rfc3339_ago(7200)
        ),
    );
    assert!(!restic_run(&url, &["snapshots"]).0);
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Summary, Status::Fail, "repo_locked"),
        "{report:#?}"
    );
    assert!(
        warning_or_failure(&report).ends_with(
            "made 2 hours ago: every restic command fails ('repository is already locked exclusively') until it is removed; remove it with 'cio credential exec --provider minio -- restic unlock'"
        ),
        "{report:#?}"
    );
    // The alternate set (the review's finding): exec --alternate reads with --no-lock, so
    // the lock stops no restore; a warning, and the import's --validate passes.
    assert!(restic_run(&url, &["--no-lock", "snapshots"]).0);
    let mut alternate = values(&url, ACCESS, SECRET, PASSWORD);
    alternate.set.role = cio_credential::Role::Alternate;
    let report = validate_set(&alternate, &options());
    assert_eq!(
        verdict(&report),
        (Step::Summary, Status::Warn, "repo_locked"),
        "{report:#?}"
    );
    assert!(report.passed(), "{report:#?}");
    assert!(
        warning_or_failure(&report).ends_with(
            "made 2 hours ago: restores through 'cio credential exec --provider minio --alternate -- restic ...' work (cio runs restic's reading commands there with --no-lock), but 'restic key list' and the owning cluster's restic commands fail until it is removed; the repository is another cluster's: its administrators remove it with 'restic unlock' (if that cluster is lost: 'cio credential exec --provider minio --alternate --allow-write -- restic unlock')"
        ),
        "{report:#?}"
    );
    assert!(restic_run(&url, &["unlock"]).0);
    assert!(!lock.exists());
    assert!(restic_run(&url, &["snapshots"]).0);
    let report = validate(&url);
    assert_eq!(verdict(&report).1, Status::Ok, "{report:#?}");
}

#[test]
fn a_lock_left_by_a_killed_restic_is_stale_and_named() {
    let (s3, url, dir) = repository(&[]);
    // A real lock, written (compressed) by restic: a backup from a standard input that never
    // ends, killed.
    let home = s3.root().join(".home2");
    let mut child = Command::new(testkit::require_binary("restic"))
        .args(["backup", "--stdin", "--no-cache"])
        .env_clear()
        .env("HOME", &home)
        .env("RESTIC_REPOSITORY", &url)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restic");
    let locks = dir.join("locks");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&locks).map_or(true, |mut d| d.next().is_none()) {
        assert!(std::time::Instant::now() < deadline, "restic made no lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id();
    child.kill().expect("kill");
    child.wait().expect("wait");
    // (restic compressed it: repository version 2.)
    let report = validate(&url);
    assert_eq!(
        verdict(&report),
        (Step::Summary, Status::Warn, "stale_lock"),
        "{report:#?}"
    );
    let d = warning_or_failure(&report);
    assert!(
        d.starts_with("a stale lock ") && d.contains(&format!("by PID {pid} on host '")),
        "{d}"
    );
    assert!(d.ends_with("backups work, but restic prune, forget and check fail until it is removed; remove it with 'cio credential exec --provider minio -- restic unlock'"), "{d}");
    assert!(
        restic_run(&url, &["snapshots"]).0,
        "a shared lock does not stop snapshots"
    );
    let (ok, err) = restic_run(&url, &["forget", "--keep-last", "1"]);
    assert!(
        !ok && err.contains("locked"),
        "an exclusive command fails: {err}"
    );
    assert!(restic_run(&url, &["unlock"]).0);
    assert_eq!(verdict(&validate(&url)).1, Status::Ok);
}

// ---- a repository without its config ----

/// The detail of a repository at `url` whose `config` is gone while `folders` remain.
fn config_missing(url: &str, folders: &str) -> String {
    format!(
        "the restic repository at {url} has no config (it has {folders}): restic cannot open it (\"unable to open config file\"); restore the object 'config' from a backup of the bucket, or correct cio_minio_backup_repo if the repository is elsewhere; do not run 'restic init' there, which writes a new config and key over the old files"
    )
}

/// A repository that lost its `config` (keys, data, index and snapshots still there) fails
/// every restic command; validate said "no repository yet; restic init", and init would
/// write a new master key over the old data. Both layouts, primary and alternate.
#[test]
fn a_repository_that_lost_its_config_fails_as_restic_fails_and_never_suggests_init() {
    for init_args in [&[][..], &["-o", "s3.layout=s3legacy"][..]] {
        let (s3, url, dir) = repository(init_args);
        let data = tempfile::tempdir().expect("data");
        std::fs::write(data.path().join("f"), "x").expect("write");
        s3.restic(
            &url,
            PASSWORD,
            &["backup", "--no-cache", data.path().to_str().expect("utf-8")],
        );
        std::fs::remove_file(dir.join("config")).expect("config removed");
        let (ok, err) = restic_run(&url, &["snapshots"]);
        assert!(!ok && err.contains("unable to open config file"), "{err}");
        let report = validate(&url);
        assert_eq!(
            common::failure(&report),
            (
                Some(Step::Repository),
                "config_missing",
                config_missing(
                    &url,
                    if init_args.is_empty() {
                        "keys/, data/, index/, snapshots/"
                    } else {
                        "key/, data/, index/, snapshot/"
                    }
                )
            ),
            "{report:#?}"
        );
        assert!(!report.passed());
        let mut alternate = values(&url, ACCESS, SECRET, PASSWORD);
        alternate.set.role = cio_credential::Role::Alternate;
        let report = validate_set(&alternate, &options());
        assert_eq!(common::failure(&report).1, "config_missing", "{report:#?}");
    }
}

/// The review's empty config: validate said "shorter than its IV (restic crashes on it)",
/// a damaged config found after the key search. restic looks at the config's size before
/// any key, and stops: a failure of the repository step, told apart from a missing config
/// (`config_missing`) and from one of 1 to 15 bytes, which restic reads with the key and
/// crashes on (`config_damaged`).
#[test]
fn an_empty_config_fails_before_the_keys_as_restic_fails() {
    let (_s3, url, dir) = repository(&[]);
    let config = dir.join("config");
    std::fs::write(&config, b"").expect("config emptied");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(
        !ok && err.contains("config file has zero size, invalid repository?"),
        "{err}"
    );
    let report = validate(&url);
    assert_eq!(
        common::failure(&report),
        (
            Some(Step::Repository),
            "config_empty",
            format!(
                "the restic repository at {url} has an empty config (0 bytes): restic cannot open it (\"config file has zero size, invalid repository?\"); restore 'bucket/krepo/config' from a copy of the bucket; do not remove it to run 'restic init' there, which writes a new config and key over the old files"
            )
        ),
        "{report:#?}"
    );
    assert_eq!(
        report.check(Step::Password).map(|c| c.status),
        Some(Status::Skipped),
        "{report:#?}"
    );

    std::fs::write(&config, b"12345").expect("config of 5 bytes");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(!ok && err.contains("slice bounds out of range"), "{err}");
    let report = validate(&url);
    assert_eq!(
        common::failure(&report),
        (
            Some(Step::Password),
            "config_damaged",
            "restic cannot load the repository's config (\"config cannot be loaded\"): config is not a restic config: shorter than its IV (restic crashes on it); the config is damaged: restore it from a copy".to_string()
        ),
        "{report:#?}"
    );

    std::fs::remove_file(&config).expect("config removed");
    let report = validate(&url);
    assert_eq!(
        common::failure(&report),
        (
            Some(Step::Repository),
            "config_missing",
            config_missing(&url, "keys/")
        ),
        "{report:#?}"
    );
}

/// `restic init` stopped after writing its key (keys/ without config), and a folder with
/// only a lock left: restic cannot open either; validate fails them too.
#[test]
fn a_half_initialised_repository_fails_validate_as_it_fails_restic() {
    let (_s3, url, dir) = repository(&[]);
    std::fs::remove_file(dir.join("config")).expect("config removed");
    let (ok, err) = restic_run(&url, &["cat", "config"]);
    assert!(!ok && err.contains("unable to open config file"), "{err}");
    let report = validate(&url);
    assert_eq!(
        common::failure(&report),
        (
            Some(Step::Repository),
            "config_missing",
            config_missing(&url, "keys/")
        ),
        "{report:#?}"
    );
    // Only a lock file named by an id.
    std::fs::remove_dir_all(dir.join("keys")).expect("keys removed");
    std::fs::create_dir_all(dir.join("locks")).expect("locks/");
    std::fs::write(dir.join("locks").join("b".repeat(64)), b"x").expect("a lock");
    let report = validate(&url);
    assert_eq!(
        common::failure(&report),
        (
            Some(Step::Repository),
            "config_missing",
            config_missing(&url, "locks/")
        ),
        "{report:#?}"
    );
    // Files not named as restic names them are no repository: nothing there yet.
    std::fs::remove_dir_all(dir.join("locks")).expect("locks removed");
    std::fs::create_dir_all(dir.join("data")).expect("data/");
    std::fs::write(dir.join("data").join("notes.txt"), b"x").expect("a file");
    let report = validate(&url);
    assert_eq!(
        report.check(Step::Repository).map(|c| c.code),
        Some("repo_not_initialized"),
        "{report:#?}"
    );
}

/// The review's damaged config in a repository with one key: every kind of damage was
/// "another repository's key file". Each is checked against restic first. Too short to be
/// sealed, or plain text: damage. A MAC that fails (bytes flipped, or cut above IV and MAC):
/// restic cannot tell the config's damage from a foreign key, nor can cio, so the message
/// says both and what to do (with one key, the same: restore from a copy).
#[test]
fn a_damaged_config_reads_as_damage_where_its_bytes_show_it() {
    let (_s3, url, dir) = repository(&[]);
    let key = only_file(&dir.join("keys"));
    let id = key.file_name().unwrap().to_str().unwrap().to_string();
    let short = &id[..8];
    let sealed = std::fs::read(dir.join("config")).expect("config");
    let mut flipped = sealed.clone();
    flipped[20] ^= 1;
    let text =
        br#"{"version":2,"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#;
    let ambiguous = format!(
        "the password in cio_minio_backup_password opens key {short}, the repository's only key file, but that key's master key does not open the repository's config (restic: \"config or key {short} is damaged: ciphertext verification failed\"); either the config is damaged, or 'bucket/krepo/keys/{id}' is another repository's key file and this repository's own keys are gone: in both cases restore the repository's config and keys/ from a copy of the bucket"
    );
    let cases: [(&str, Vec<u8>, &str, &str, String); 4] = [
        (
            "bytes flipped",
            flipped,
            "is damaged: ciphertext verification failed",
            "foreign_key",
            ambiguous.clone(),
        ),
        (
            "cut to 40 bytes",
            sealed[..40].to_vec(),
            "is damaged: ciphertext verification failed",
            "foreign_key",
            ambiguous,
        ),
        (
            "cut below IV and MAC",
            sealed[..20].to_vec(),
            "ciphertext too small",
            "config_damaged",
            "restic cannot load the repository's config (\"config cannot be loaded\"): config is not a restic config: ciphertext too small; the config is damaged: restore it from a copy".into(),
        ),
        (
            "plain text",
            text.to_vec(),
            "is damaged: ciphertext verification failed",
            "config_damaged",
            format!(
                "the repository's config is plain text, not restic's encrypted format (restic: \"config or key {short} is damaged: ciphertext verification failed\"); the config is damaged or was replaced: restore 'bucket/krepo/config' from a copy of the bucket"
            ),
        ),
    ];
    for (what, bytes, restic_says, code, text) in cases {
        let path = dir.join("config");
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &bytes).expect("write");
        let (ok, err) = restic_run(&url, &["cat", "config"]);
        assert!(
            !ok && err.contains(restic_says),
            "{what}: restic says {err}"
        );
        let report = validate(&url);
        assert_eq!(
            verdict(&report),
            (Step::Password, Status::Fail, code),
            "{what}: {report:#?}"
        );
        assert_eq!(detail(&report, Step::Password), text, "{what}");
    }
}
