//! The worst day, end to end: cluster A (a three-member etcd store, its key file, s3s-fs,
//! restic) backs up and keeps two recovery bundles, a passphrase bundle on paper and an escrow
//! object in its bucket; then A is destroyed. Cluster B, a fresh node with the embedded store
//! and nothing of A's, recovers twice: from the file with only the passphrase, and from the
//! bucket with only the recovery identity and a key that may read it. Each time it
//! validates, restores A's data byte for byte, and is refused a `restic backup` into A's
//! repository.
//!
//! s3s-fs accepts one key pair and has no per-key policies, so here the key that reads the
//! bucket is that one key; `escrow_with_a_read_only_key` shows the read-only key against
//! moto, which enforces IAM policies.

use std::path::Path;

use assert_cmd::assert::Assert;
use testkit::etcd::EtcdCluster;
use testkit::s3::S3Server;

use crate::drill::{assert_same_tree, make_files};
use crate::recovery::{PASSPHRASE, age_identity};
use crate::util::*;

const ACCESS: &str = "cluster-a-backup";
const SECRET: &str = "cluster-a-backup-secret";
const PASSWORD: &str = "cluster a repository password";

/// A node configured by its cio.toml alone.
fn node_cmd(env: &TestEnv, args: &[&str], input: &str) -> Assert {
    env.cmd()
        .env_remove("CIO_STORE")
        .env_remove("CIO_KEY_FILE")
        .args(args)
        .write_stdin(input)
        .assert()
}

/// B restores A's latest snapshot through its alternate set, and is refused a backup.
fn restore_and_be_refused(b: &TestEnv, files: &Path) {
    let target = b.dir.path().join("restored");
    b.cio(&[
        "credential",
        "exec",
        "--alternate",
        "--",
        "restic",
        "--no-cache",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ])
    .success();
    assert_same_tree(files, &target.join(files.strip_prefix("/").unwrap()));
    let out = b
        .cio(&[
            "credential",
            "exec",
            "--alternate",
            "--",
            "restic",
            "--no-cache",
            "backup",
            target.to_str().unwrap(),
        ])
        .code(1);
    assert!(
        stderr(&out).starts_with(
            "Fail: Run with credentials: 'restic backup' refused with the alternate set"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_worst_day() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.repo_url("cluster-a", "backups");
    let mut etcd = EtcdCluster::three();
    // What the administrator keeps away from the cluster: the recovery identity and a
    // printed bundle.
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");

    // Cluster A: the cluster store, its key, and the recovery recipient in cio.toml.
    let a = TestEnv::new();
    std::fs::write(
        a.config(),
        format!(
            "store = \"{}\"\nkey_file = \"{}\"\nrecovery_recipients = [\"{recipient}\"]\n",
            etcd.url("/cio/cluster-a"),
            a.key().display()
        ),
    )
    .unwrap();
    let names = ["backup_repo", "access_key", "secret_key", "backup_password"];
    for (field, value) in names.iter().zip([repo.as_str(), ACCESS, SECRET, PASSWORD]) {
        let out = node_cmd(
            &a,
            &["credential", "create", &format!("cio_minio_{field}")],
            value,
        )
        .success();
        // The fourth write completes the set: its escrow bundle is stored beside the
        // repository, and the write says so.
        let refreshed = stdout(&out).contains("Succeed: Refresh recovery bundle");
        assert_eq!(refreshed, *field == "backup_password", "{}", stdout(&out));
    }
    let escrow = s3.root().join("cluster-a/backups/cio-recovery.age");
    assert!(escrow.is_file());
    node_cmd(
        &a,
        &["credential", "exec", "--", "restic", "--no-cache", "init"],
        "",
    )
    .success();
    let files = a.dir.path().join("volumes");
    make_files(&files);
    node_cmd(
        &a,
        &[
            "credential",
            "exec",
            "--",
            "restic",
            "--no-cache",
            "backup",
            files.to_str().unwrap(),
        ],
        "",
    )
    .success();
    // The passphrase bundle, printed and kept in the safe; the escrow bundle refreshed.
    let paper = safe.path().join("cluster-a.recovery.age");
    node_cmd(
        &a,
        &["credential", "export", "--output", paper.to_str().unwrap()],
        PASSPHRASE,
    )
    .success();
    let out = node_cmd(&a, &["credential", "export", "--to-repository"], "").success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Export credential: the minio primary set, sealed to the recovery recipients, at {repo}/cio-recovery.age\n"
        )
    );
    // restic does not see the escrow object: the repository lists as before. (`restic
    // check` fails on s3s-fs 0.14.1 with or without it: s3s-fs lists `data/` incompletely.)
    let out = node_cmd(
        &a,
        &[
            "credential",
            "exec",
            "--",
            "restic",
            "--no-cache",
            "snapshots",
            "--json",
        ],
        "",
    )
    .success();
    let snapshots: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 1);

    // The worst day: A's etcd, key file and configuration are gone.
    for i in 0..3 {
        etcd.stop(i);
    }
    let etcd_data = etcd.dir().to_path_buf();
    drop(etcd);
    assert!(!etcd_data.exists());
    std::fs::remove_file(a.key()).unwrap();
    std::fs::remove_file(a.config()).unwrap();

    // Recovery 1: from the file, with only the passphrase.
    let b = TestEnv::new();
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                "--validate",
                paper.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    let shown = stdout(&out);
    assert!(shown.contains("ok    summary       1 snapshot"), "{shown}");
    assert!(
        shown.contains("Succeed: Import credential: 4 versions written"),
        "{shown}"
    );
    for secret in [SECRET, PASSWORD, PASSPHRASE] {
        assert!(!shown.contains(secret) && !stderr(&out).contains(secret));
    }
    restore_and_be_refused(&b, &files);

    // Recovery 2: from the bucket, with only the recovery identity and a key that reads it.
    let b2 = TestEnv::new();
    let out = b2
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                "--identity",
                identity.to_str().unwrap(),
                "--from-repository",
                &repo,
            ],
            format!("{ACCESS}\n{SECRET}\n"),
        )
        .success();
    assert!(
        stdout(&out).contains("4 versions written"),
        "{}",
        stdout(&out)
    );
    b2.cio(&["credential", "validate", "--alternate"]).success();
    restore_and_be_refused(&b2, &files);

    // What goes wrong writes nothing: a bundle with one byte changed, a wrong passphrase,
    // a wrong identity, an escrow URL with no bundle there.
    let b3 = TestEnv::new();
    let mut changed = std::fs::read(&paper).unwrap();
    let at = changed.len() / 2;
    changed[at] = if changed[at] == b'Q' { b'R' } else { b'Q' };
    let changed_path = b3.dir.path().join("changed.age");
    std::fs::write(&changed_path, changed).unwrap();
    let out = b3
        .cio_in(
            &["credential", "import", changed_path.to_str().unwrap()],
            PASSPHRASE,
        )
        .code(1);
    assert!(
        stderr(&out).contains("the bundle is damaged or was changed"),
        "{}",
        stderr(&out)
    );
    let out = b3
        .cio_in(
            &["credential", "import", paper.to_str().unwrap()],
            "not the passphrase",
        )
        .code(1);
    assert!(stderr(&out).contains("the passphrase does not open this bundle"));
    let (wrong, _) = age_identity(b3.dir.path(), "wrong.txt");
    let out = b3
        .cio_in(
            &[
                "credential",
                "import",
                "-i",
                wrong.to_str().unwrap(),
                "--from-repository",
                &repo,
            ],
            format!("{ACCESS}\n{SECRET}\n"),
        )
        .code(1);
    assert!(stderr(&out).contains("none of the identities given opens this bundle"));
    let elsewhere = s3.repo_url("cluster-a", "elsewhere");
    let out = b3
        .cio_in(
            &[
                "credential",
                "import",
                "-i",
                identity.to_str().unwrap(),
                "--from-repository",
                &elsewhere,
            ],
            format!("{ACCESS}\n{SECRET}\n"),
        )
        .code(1);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: Import credentials: no recovery bundle at {elsewhere}/cio-recovery.age\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!b3.store().exists(), "nothing was written");

    // Writing into A's repository on purpose needs --allow-write.
    b.cio(&[
        "credential",
        "exec",
        "--alternate",
        "--allow-write",
        "--",
        "restic",
        "--no-cache",
        "tag",
        "--add",
        "recovered",
        "latest",
    ])
    .success();
}

/// A real moto server (PyPI `moto[server]`) on a free loopback port that enforces IAM
/// policies after its first `free_actions` requests (moto's `INITIAL_NO_AUTH_ACTION_COUNT`),
/// killed when dropped.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start(free_actions: usize) -> Moto {
        let port = testkit::free_port();
        let child = std::process::Command::new(testkit::require_binary("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (PyPI moto[server])");
        testkit::wait_for_port(port, std::time::Duration::from_secs(30));
        Moto { child, port }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The process may already be gone; nothing else to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates bucket `cluster-a` and two IAM users with boto3 (moto's own client library): a
/// writer (every S3 action) and a reader (get and list only). Seven actions, all before
/// moto starts enforcing. Returns (writer, reader) as (access key, secret key).
fn moto_users(moto: &Moto) -> ((String, String), (String, String)) {
    let script = r#"
import boto3, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam, s3 = boto3.client("iam", **kw), boto3.client("s3", **kw)
s3.create_bucket(Bucket="cluster-a")
out = []
for user, actions in [("writer", ["s3:*"]),
                      ("reader", ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"])]:
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    out.append([key["AccessKeyId"], key["SecretAccessKey"]])
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &format!("http://127.0.0.1:{}", moto.port)])
        .output()
        .expect("python3 with boto3 (installed with moto)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    (keys[0].clone(), keys[1].clone())
}

/// A node whose cio.toml names `recipient` as its recovery recipient.
pub fn escrowing_node(recipient: &str) -> TestEnv {
    let env = TestEnv::new();
    std::fs::write(
        env.config(),
        format!("recovery_recipients = [\"{recipient}\"]\n"),
    )
    .unwrap();
    env
}

#[test]
fn escrow_with_a_read_only_key() {
    let moto = Moto::start(7);
    let ((writer, writer_secret), (reader, reader_secret)) = moto_users(&moto);
    let repo = format!("s3:http://127.0.0.1:{}/cluster-a/backups", moto.port);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");

    // Cluster A writes its escrow bundle with its own (writer) key.
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, &writer, &writer_secret, PASSWORD);
    // The escrow object is proven by a password that opens the repository beside it.
    a.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    let out = a
        .cio(&["credential", "export", "--to-repository"])
        .success();
    assert!(stdout(&out).contains("sealed to the recovery recipients"));

    // Cluster B reads it back with the read-only key and the recovery identity alone.
    // This moto answers every listing under a prefix with SignatureDoesNotMatch once it
    // enforces its IAM users' keys (boto3's own list_objects_v2 and `restic snapshots` fail
    // there alike; the whole-bucket listing works), so the object's password cannot be
    // checked: --force takes it, with a warning (escrow_proof.rs proves objects on s3s-fs).
    let b = TestEnv::new();
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                "--force",
                "-i",
                identity.to_str().unwrap(),
                "--from-repository",
                &repo,
            ],
            format!("{reader}\n{reader_secret}\n"),
        )
        .success();
    assert!(
        stderr(&out).contains("is not proven to be that repository's"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.reveal("cio_minio_alt_secret_key"), writer_secret);

    // The read-only key cannot write an escrow bundle: the refresh after a write is a
    // warning with the retry command, and the write itself is kept.
    let c = escrowing_node(&recipient);
    c.create("cio_minio_backup_repo", &repo);
    c.create("cio_minio_access_key", &reader);
    c.create("cio_minio_secret_key", &reader_secret);
    let out = c
        .cio_in(
            &["credential", "create", "cio_minio_backup_password"],
            PASSWORD,
        )
        .success();
    assert!(
        stderr(&out)
            .contains("Warning: the recovery bundle of the minio primary set was not refreshed: ")
            && stderr(&out).contains("refused the keys: AccessDenied")
            && stderr(&out)
                .contains("Retry with: cio credential export --to-repository --provider minio"),
        "{}",
        stderr(&out)
    );
    assert_eq!(c.reveal("cio_minio_backup_password"), PASSWORD);
}

#[test]
fn a_purge_refreshes_the_escrow_bundle_or_says_that_it_may_still_hold_the_value() {
    let moto = Moto::start(7);
    let ((writer, writer_secret), _) = moto_users(&moto);
    let repo = format!("s3:http://127.0.0.1:{}/cluster-a/backups", moto.port);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, &writer, &writer_secret, PASSWORD);
    // The escrow object is proven by a password that opens the repository beside it.
    a.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    a.create("cio_minio_region", "us-east-1");
    // Purging an optional credential leaves the set complete: the bundle is written again,
    // without it.
    let out = a
        .cio(&["credential", "remove", "--purge", "cio_minio_region"])
        .success();
    let text = stdout(&out);
    assert!(
        text.starts_with("Succeed: Purge credential: cio_minio_region (1 version destroyed)\n"),
        "{text}"
    );
    assert!(
        text.contains("Succeed: Refresh recovery bundle: the minio primary set, sealed to the recovery recipients, at "),
        "{text}"
    );
    let b = TestEnv::new();
    // --force: this moto refuses listings under a prefix (see escrow_with_a_read_only_key),
    // so the object cannot be proven here.
    b.cio_in(
        &[
            "credential",
            "import",
            "--force",
            "-i",
            identity.to_str().unwrap(),
            "--from-repository",
            &repo,
        ],
        format!("{writer}\n{writer_secret}\n"),
    )
    .success();
    let listed = stdout(&b.cio(&["credential", "list"]).success());
    assert!(listed.contains("cio_minio_secret_key"), "{listed}");
    assert!(!listed.contains("cio_minio_region"), "{listed}");
    // Purging one of the four leaves it incomplete: nothing can be written, and the
    // administrator is told where the earlier bundle is (the repository's URL was read
    // before it was destroyed) and that it may still hold the destroyed value.
    let out = a
        .cio(&[
            "credential",
            "remove",
            "--purge",
            "--json",
            "cio_minio_backup_repo",
        ])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["action"], "purge");
    assert!(
        stderr(&out).contains(&format!("Warning: the recovery bundle at {repo}/cio-recovery.age may still hold the destroyed value (the minio primary set is incomplete now, so it was not replaced); make the set complete again and the refresh that follows replaces it, or delete that object from the bucket")),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(PASSWORD) && !stderr(&out).contains(&writer_secret));
}

/// An endpoint behind a private CA (stunnel in front of s3s-fs): the escrow object is written
/// and read back with the set's own CA certificate (`_cacert`), as validate and exec reach it.
#[test]
fn escrow_behind_a_private_ca_uses_the_sets_ca_certificate() {
    use testkit::s3::S3Server;
    use testkit::tls::{CertKind, TlsFront};
    let (access, secret) = ("escrow-tls-access", "escrow-tls-secret-key");
    let s3 = S3Server::start(access, secret);
    s3.create_bucket("cluster-a");
    let front = TlsFront::start(s3.port(), CertKind::PrivateCa);
    let repo = format!("s3:https://127.0.0.1:{}/cluster-a/backups", front.port());
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");

    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, access, secret, PASSWORD);
    a.create("cio_minio_cacert", &front.trust_pem);
    let out = a
        .cio(&["credential", "export", "--to-repository"])
        .success();
    assert!(stdout(&out).contains("sealed to the recovery recipients"));

    // Cluster B: the CA and the keys of A's bucket as its alternate set, then the bundle.
    let b = TestEnv::new();
    b.create("cio_minio_alt_cacert", &front.trust_pem);
    b.create("cio_minio_alt_access_key", access);
    b.create("cio_minio_alt_secret_key", secret);
    b.cio(&[
        "credential",
        "import",
        "--as-alternate",
        "--force",
        "-i",
        identity.to_str().unwrap(),
        "--from-repository",
        &repo,
        "--provider",
        "minio",
    ])
    .success();
    assert_eq!(b.reveal("cio_minio_alt_backup_password"), PASSWORD);
    // Without the CA certificate the same read is refused by TLS.
    let c = TestEnv::new();
    c.create("cio_minio_alt_access_key", access);
    c.create("cio_minio_alt_secret_key", secret);
    let out = c
        .cio(&[
            "credential",
            "import",
            "--as-alternate",
            "-i",
            identity.to_str().unwrap(),
            "--from-repository",
            &repo,
            "--provider",
            "minio",
        ])
        .code(1);
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
}

/// The review's finding: a store holding a complete AWS alternate set for an unrelated
/// cluster signed the requests to A's MinIO endpoint with that set's keys (refused, and
/// blamed on "the access and secret key"), never reading the two lines given on standard
/// input. Stored keys are used only when named (--provider) or when their set's repository
/// is at the same endpoint, and then the output says so, and a refusal says how to give
/// other keys.
#[test]
fn stored_keys_read_an_escrow_object_only_when_they_belong_to_its_repository() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("bucket");
    let repo = s3.restic_init("bucket", "slash", PASSWORD);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "rk.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    a.cio(&["credential", "export", "--to-repository"])
        .success();
    let import = |env: &TestEnv, extra: &[&str], input: &str| {
        let mut args = vec![
            "credential",
            "import",
            "--as-alternate",
            "-i",
            identity.to_str().unwrap(),
            "--from-repository",
            &repo,
        ];
        args.extend_from_slice(extra);
        env.cio_in(&args, input)
    };
    let location = format!("{repo}/cio-recovery.age");

    // An unrelated cluster's complete AWS alternate set: its keys are never sent to A's
    // endpoint; the keys on standard input are.
    let b = TestEnv::new();
    b.create(
        "cio_aws_alt_backup_password",
        "the other cluster's password",
    );
    b.create("cio_aws_alt_access_key", "AKIAYHD623GGZX7VDFMJ");
    b.create(
        "cio_aws_alt_secret_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    b.create("cio_aws_alt_region", "eu-west-1");
    b.create(
        "cio_aws_alt_backup_repo",
        "s3:https://s3.amazonaws.com/other-cluster",
    );
    let out = import(&b, &[], &format!("{ACCESS}\n{SECRET}\n")).success();
    assert!(!stderr(&out).contains("Note:"), "{}", stderr(&out));
    assert_eq!(b.reveal("cio_minio_alt_backup_password"), PASSWORD);
    // Named, they are used, and a refusal says whose they were and how to give others.
    let out = import(&b, &["--provider", "aws", "--force"], "").code(1);
    let text = stderr(&out);
    assert!(
        text.starts_with(&format!(
            "Note: reading {location} with the stored keys of this store's aws alternate set (--provider aws)\n\
             Fail: Import credentials: {location} refused the stored keys of this store's aws alternate set (--provider aws): "
        )),
        "{text}"
    );
    assert!(
        text.contains("Hint: nothing was written; to read with other keys, leave out --provider and give them on standard input (two lines: access key, secret key) or at the prompt"),
        "{text}"
    );

    // A set whose repository is at the same endpoint (another bucket there): its keys.
    let c = TestEnv::new();
    c.minio_set(
        "_alt",
        &s3.repo_url("other", "repo"),
        ACCESS,
        SECRET,
        "its password",
    );
    let out = import(&c, &["--force"], "").success();
    assert_eq!(
        stderr(&out).lines().next().unwrap(),
        format!(
            "Note: reading {location} with the stored keys of this store's minio alternate set, whose repository is at the same endpoint"
        )
    );
    assert_eq!(c.reveal("cio_minio_alt_backup_password"), PASSWORD);
    // Stale keys there: refused, and the hint's way of giving others works.
    c.create("cio_minio_alt_secret_key", "a secret key that was revoked");
    let out = import(&c, &["--force"], "").code(1);
    let text = stderr(&out);
    assert!(
        text.contains("Hint: nothing was written; to read with other keys, add --no-stored-keys and give them on standard input (two lines: access key, secret key) or at the prompt"),
        "{text}"
    );
    import(
        &c,
        &["--force", "--no-stored-keys"],
        &format!("{ACCESS}\n{SECRET}\n"),
    )
    .success();
    // Keys typed wrong are said to be the keys given.
    let out = import(
        &b,
        &["--no-stored-keys"],
        &format!("{ACCESS}\nnot the secret\n"),
    )
    .code(1);
    assert!(
        stderr(&out).contains(&format!(
            "Fail: Import credentials: {location} refused the keys given: "
        )),
        "{}",
        stderr(&out)
    );
}

/// What the real `age` command finds in the escrow object at `object`, opened with `identity`.
fn escrow_plaintext(object: &Path, identity: &Path) -> String {
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(object)
        .output()
        .expect("age (Debian package age)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every write that changes a primary set refreshes its escrow bundle, a plain `remove`
/// too; a remove that leaves the set incomplete cannot, and says where the bundle that may
/// still hold the removed value is. (s3s-fs: the object is read back from its folder.)
#[test]
fn a_remove_refreshes_the_escrow_bundle_or_says_that_it_may_still_hold_the_value() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.repo_url("cluster-a", "backups");
    let object = s3.root().join("cluster-a/backups/cio-recovery.age");
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    a.create("cio_minio_region", "us-east-1");
    assert!(escrow_plaintext(&object, &identity).contains("cio_minio_region"));

    // An optional name removed: the set stays complete and its bundle is written again.
    let out = a
        .cio(&["credential", "remove", "cio_minio_region"])
        .success();
    assert!(
        stdout(&out).contains("Succeed: Refresh recovery bundle: the minio primary set, sealed to the recovery recipients, at "),
        "{}",
        stdout(&out)
    );
    let plain = escrow_plaintext(&object, &identity);
    assert!(!plain.contains("cio_minio_region"), "{plain}");
    assert!(plain.contains("cio_minio_access_key"), "{plain}");

    // A required name removed: the set is incomplete, the bundle stays, and the warning
    // names it (as after a purge), without a value.
    let before = std::fs::read(&object).unwrap();
    let out = a
        .cio(&["credential", "remove", "cio_minio_access_key"])
        .success();
    assert!(
        stderr(&out).contains(&format!("Warning: the recovery bundle at {repo}/cio-recovery.age may still hold the removed value (the minio primary set is incomplete now, so it was not replaced); make the set complete again and the refresh that follows replaces it, or delete that object from the bucket")),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(ACCESS) && !stderr(&out).contains(SECRET));
    assert_eq!(std::fs::read(&object).unwrap(), before);
    // Bringing it back completes the set: the bundle is written again.
    let out = a
        .cio(&["credential", "restore", "cio_minio_access_key"])
        .success();
    assert!(
        stdout(&out).contains("Succeed: Refresh recovery bundle"),
        "{}",
        stdout(&out)
    );
    assert_ne!(std::fs::read(&object).unwrap(), before);
}

/// Anyone who may write to the bucket can put a bundle there, sealed to the (public)
/// recovery recipient, whose repository is theirs: an import from the repository refuses a
/// bundle that does not name the repository it was read from, and writes nothing.
#[test]
fn an_escrow_bundle_naming_another_repository_is_refused() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    s3.create_bucket("attacker");
    let repo = s3.restic_init("cluster-a", "backups", PASSWORD);
    let theirs = s3.repo_url("attacker", "backups");
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let a = escrowing_node(&recipient);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let own = s3.root().join("cluster-a/backups/cio-recovery.age");
    assert!(own.is_file());

    // The attacker's set, escrowed beside their repository, then copied over A's object.
    let e = escrowing_node(&recipient);
    e.minio_set("", &theirs, ACCESS, SECRET, "the attacker's password");
    std::fs::copy(s3.root().join("attacker/backups/cio-recovery.age"), &own).unwrap();

    let b = TestEnv::new();
    let import = |url: &str| {
        b.cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                "-i",
                identity.to_str().unwrap(),
                "--from-repository",
                url,
            ],
            format!("{ACCESS}\n{SECRET}\n"),
        )
    };
    for dry_run in [false, true] {
        let out = if dry_run {
            b.cio_in(
                &[
                    "credential",
                    "import",
                    "--dry-run",
                    "-i",
                    identity.to_str().unwrap(),
                    "--from-repository",
                    &repo,
                ],
                format!("{ACCESS}\n{SECRET}\n"),
            )
        } else {
            import(&repo)
        }
        .code(1);
        assert_eq!(
            stderr(&out),
            format!(
                "Fail: Import credentials: the bundle at {repo}/cio-recovery.age is not that repository's: the URL given is {repo}, the bundle's minio primary set names {theirs}\n\
                 Hint: nothing was written; do not trust this object: anyone who may write to the bucket can replace it. Check the URL is the lost cluster's repository as it backed up to (cio compares them as restic reads them), or import the bundle kept off the cluster (the paper one)\n"
            )
        );
        assert!(!stderr(&out).contains("attacker's password"));
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        assert!(!b.store().exists(), "nothing was written");
    }

    // A's own bundle back in place: it imports, from the URL written as restic also reads it.
    // The escrow document names each set by provider and role (docs/JSON.md).
    let out = a
        .cio(&["credential", "export", "--to-repository", "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"escrow": [{"provider": "minio", "role": "primary",
                                       "location": format!("{repo}/cio-recovery.age")}]})
    );
    import(&format!("{repo}/")).success();
    assert_eq!(b.reveal("cio_minio_alt_backup_repo"), repo);
    assert_eq!(b.reveal("cio_minio_alt_backup_password"), PASSWORD);
}

/// The review's finding: an import whose --validate passed did not record the check, so
/// `list` still said CHECKED `never` for the sets just proven. Recorded now as `validate
/// --record` records it (the same record: `list` shows it as validate's); a dry run writes
/// nothing, so records nothing.
#[test]
fn an_import_that_validates_records_the_check() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.restic_init("cluster-a", "backups", PASSWORD);
    let a = TestEnv::new();
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let paper = a.dir.path().join("paper.age");
    crate::recovery::export_passphrase(&a, &paper);
    let b = TestEnv::new();
    let import = |extra: &[&str]| {
        let mut args = vec!["credential", "import", "--as-alternate", "--validate"];
        args.extend_from_slice(extra);
        args.push(paper.to_str().unwrap());
        b.cio_in(&args, PASSPHRASE)
    };
    import(&["--dry-run"]).success();
    assert!(!b.store().exists(), "a dry run wrote");
    let out = import(&[]).success();
    assert_eq!(stderr(&out), "");
    let checked = |env: &TestEnv| {
        let list = stdout(&env.cio(&["credential", "list"]).success());
        list.lines()
            .find(|l| l.starts_with("cio_minio_alt_access_key"))
            .unwrap_or_else(|| panic!("{list}"))
            .rsplit("  ")
            .next()
            .unwrap()
            .to_string()
    };
    let recorded = checked(&b);
    // Live and passing; its one finding is the warning about plain http:// (s3s-fs).
    assert_eq!(recorded, "warn <1m ago: plain_http");
    // What validate --record records for the same set.
    let c = TestEnv::new();
    c.minio_set("_alt", &repo, ACCESS, SECRET, PASSWORD);
    c.cio(&["credential", "validate", "--record", "--alternate"])
        .success();
    assert_eq!(checked(&c), recorded);
}
