//! An escrow object this node did not seal to its recovery recipients is never replaced
//! silently. The review's case: a rescuing cluster B (its own recovery recipient) imports
//! lost cluster A's bundle without --as-alternate; A's set becomes B's primary set, and the
//! refresh after the write replaced A's escrow object with one sealed to B's recipient: A's
//! recovery identity no longer opened the only copy that survived. Against s3s-fs and a real
//! restic repository.

use testkit::s3::S3Server;

use crate::recovery::{PASSPHRASE, age_identity, export_passphrase};
use crate::recovery_drill::escrowing_node;
use crate::util::*;

const ACCESS: &str = "cluster-a-backup";
const SECRET: &str = "cluster-a-backup-secret";
const PASSWORD: &str = "cluster a repository password";

/// Whether the real `age` opens the escrow object at `object` with `identity`.
fn opens_with(object: &std::path::Path, identity: &std::path::Path) -> bool {
    std::process::Command::new(testkit::require_binary("age"))
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(object)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn an_escrow_object_sealed_to_other_recipients_is_never_replaced_silently() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("cluster-a");
    let repo = s3.restic_init("cluster-a", "backups", PASSWORD);
    let safe = tempfile::tempdir().unwrap();
    let (identity_a, recipient_a) = age_identity(safe.path(), "a-key.txt");
    let (identity_b, recipient_b) = age_identity(safe.path(), "b-key.txt");
    let a = escrowing_node(&recipient_a);
    a.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let object = s3.root().join("cluster-a/backups/cio-recovery.age");
    let marker = s3.root().join("cluster-a/backups/cio-recovery.recipients");
    let genuine = std::fs::read(&object).unwrap();
    let genuine_marker = std::fs::read_to_string(&marker).unwrap();
    assert!(
        genuine_marker.starts_with("sha256:") && genuine_marker.len() == 7 + 64 + 1,
        "{genuine_marker}"
    );
    assert!(opens_with(&object, &identity_a));
    let paper = a.dir.path().join("paper.age");
    export_passphrase(&a, &paper);

    let location = format!("{repo}/cio-recovery.age");
    let replace = "If it is this cluster's own and should be replaced, run 'cio credential export --to-repository --force --provider minio'; if it is another cluster's (its set imported here without --as-alternate), it is the only copy of that cluster's set: leave it";
    let looks_foreign = format!(
        "Warning: the minio primary set's repository holds a recovery bundle sealed to other recipients than this node's recovery_recipients ({location}): this looks like another cluster's set. To keep it as this cluster's disaster-recovery set, import with --as-alternate; imported as this cluster's own, that bundle is left as it is\n"
    );
    let sealed_to_others = format!(
        "the recovery bundle at {location} is sealed to other recipients than this node's recovery_recipients (another cluster's bundle, or one sealed before they changed)"
    );

    // Cluster B's dry run warns; nothing is written anywhere.
    let b = escrowing_node(&recipient_b);
    let import = |extra: &[&str]| {
        let mut args = vec!["credential", "import"];
        args.extend_from_slice(extra);
        args.push(paper.to_str().unwrap());
        b.cio_in(&args, PASSPHRASE)
    };
    let out = import(&["--dry-run"]).success();
    assert_eq!(stderr(&out), looks_foreign);
    assert!(!b.store().exists(), "a dry run wrote");

    // The import writes (as asked) and warns; the refresh leaves A's object alone and says
    // what replaces it deliberately.
    let out = import(&[]).success();
    assert_eq!(
        stderr(&out),
        format!(
            "{looks_foreign}Warning: the recovery bundle of the minio primary set was not refreshed: {sealed_to_others}; it was left as it is. {replace}; the write above is kept\n"
        )
    );
    assert!(
        !stdout(&out).contains("Refresh recovery bundle"),
        "{}",
        stdout(&out)
    );
    assert_eq!(b.reveal("cio_minio_backup_password"), PASSWORD);
    assert_eq!(std::fs::read(&object).unwrap(), genuine);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), genuine_marker);

    // Any later write of the set: the same.
    let out = b
        .cio(&["credential", "create", "cio_minio_region", "us-east-1"])
        .success();
    assert!(
        stderr(&out).starts_with(&format!(
            "Warning: the recovery bundle of the minio primary set was not refreshed: {sealed_to_others}; it was left as it is."
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&object).unwrap(), genuine);

    // A rotation, which refreshes the bundle before removing the old key, stops there and
    // says what replaces it.
    let out = b
        .cio_in(
            &["credential", "rotate", "cio_minio_backup_password"],
            "the new password\n",
        )
        .code(1);
    assert!(
        stderr(&out).contains(&format!(
            "{sealed_to_others}; it was left as it is. {replace}"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&object).unwrap(), genuine);
    assert!(opens_with(&object, &identity_a));

    // export --to-repository refuses, naming the location and never a value.
    let out = b.cio(&["credential", "export", "--to-repository"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Export credentials: {sealed_to_others}\n\
             Hint: nothing was written there: the bundle is as it was. {replace}\n"
        )
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(std::fs::read(&object).unwrap(), genuine);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), genuine_marker);

    // An object without a marker (an older cio's) is left alone too, and said honestly.
    std::fs::remove_file(&marker).unwrap();
    let out = b.cio(&["credential", "export", "--to-repository"]).code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Export credentials: the recovery bundle at {location} does not say whom it is sealed to (an older cio wrote it, or another tool): it may be another cluster's\n\
             Hint: nothing was written there: the bundle is as it was. {replace}\n"
        )
    );
    assert_eq!(std::fs::read(&object).unwrap(), genuine);
    assert!(!marker.exists());
    // Cluster A, which wrote it before markers, replaces it deliberately; its own refreshes
    // follow from then on.
    let out = a
        .cio(&["credential", "export", "--to-repository", "--force"])
        .success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Export credential: the minio primary set, sealed to the recovery recipients, at {location}\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), genuine_marker);
    let out = a
        .cio(&["credential", "create", "cio_minio_region", "us-east-1"])
        .success();
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Refresh recovery bundle"),
        "{}",
        stdout(&out)
    );

    // Cluster A importing its own bundle into a new store: same recipients, no warning.
    let a2 = escrowing_node(&recipient_a);
    let out = a2
        .cio_in(
            &["credential", "import", paper.to_str().unwrap()],
            PASSPHRASE,
        )
        .success();
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Refresh recovery bundle"),
        "{}",
        stdout(&out)
    );
    assert!(opens_with(&object, &identity_a));

    // --force replaces it deliberately.
    b.cio(&["credential", "export", "--to-repository", "--force"])
        .success();
    assert!(opens_with(&object, &identity_b));
    assert!(!opens_with(&object, &identity_a));
    assert_ne!(std::fs::read_to_string(&marker).unwrap(), genuine_marker);
}
