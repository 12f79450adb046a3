//! Concurrent writers lose nothing; a killed writer leaves a store that opens with the old or
//! the new value, never neither.

use std::time::Duration;

use crate::util::*;

#[test]
fn eight_concurrent_writers_lose_nothing() {
    let env = TestEnv::new();
    env.create("cio_minio_backup_password", "initial password value");
    let mut children = Vec::new();
    // 8 writers of the same name, 8 writers of 8 different names, all at once.
    let names = [
        "cio_aws_backup_repo",
        "cio_aws_backup_password",
        "cio_aws_alt_backup_password",
        "cio_minio_secret_key",
        "cio_minio_alt_secret_key",
        "cio_minio_backup_repo",
        "cio_minio_alt_backup_repo",
        "cio_minio_access_key",
    ];
    for (i, own_name) in names.iter().enumerate() {
        for (name, value) in [
            (
                "cio_minio_backup_password".to_string(),
                format!("concurrent password {i}"),
            ),
            (own_name.to_string(), value_for(own_name, i)),
        ] {
            children.push(env.spawn_create(&name, &value, true));
        }
    }
    wait_all(children);
    let out = env
        .cio(&[
            "credential",
            "history",
            "cio_minio_backup_password",
            "--json",
        ])
        .success();
    let history: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        9,
        "1 initial + 8 concurrent"
    );
    for (i, name) in names.iter().enumerate() {
        assert_eq!(env.reveal(name), value_for(name, i));
    }
    // The same name's 8 values are all in the history (checked through restore).
    let mut seen = Vec::new();
    for v in 2..=9 {
        env.cio(&[
            "credential",
            "restore",
            "cio_minio_backup_password",
            "--version",
            &v.to_string(),
        ])
        .success();
        seen.push(env.reveal("cio_minio_backup_password"));
    }
    seen.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("concurrent password {i}")).collect();
    assert_eq!(seen, expected);
}

fn value_for(name: &str, i: usize) -> String {
    if name.ends_with("_repo") {
        format!("s3:http://127.0.0.1:9000/bucket-{i}")
    } else {
        format!("value-number-{i}-for-{name}")
    }
}

#[test]
fn a_writer_killed_at_random_moments_never_loses_both_values() {
    let env = TestEnv::new();
    env.create("cio_minio_secret_key", "value-0000");
    let mut current = "value-0000".to_string();
    let mut killed_mid_write = 0;
    for i in 1..=100u64 {
        let next = format!("value-{i:04}");
        let mut child = env.spawn_create("cio_minio_secret_key", &next, true);
        // A pseudo-random moment within the few milliseconds a create takes.
        let delay = (i * 7919 + i * i * 104_729) % 6000;
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_write += 1;
        }
        let now = env.reveal("cio_minio_secret_key");
        assert!(
            now == current || now == next,
            "after kill {i}: {now} is neither {current} nor {next}"
        );
        current = now;
        env.cio(&["credential", "list"]).success();
    }
    assert!(
        killed_mid_write > 10,
        "the kills landed mid-write only {killed_mid_write} times"
    );
}

#[test]
fn a_first_create_killed_at_random_moments_leaves_a_usable_store() {
    // The first write also creates the key file and the store: a kill anywhere in it must
    // leave either nothing, or a key and store that the next command uses.
    let mut landed = 0;
    for i in 1..=40u64 {
        let env = TestEnv::new();
        let mut child = env.spawn_create("cio_minio_secret_key", "first-value", true);
        std::thread::sleep(Duration::from_micros((i * 7919 * 13) % 8000));
        let _ = child.kill();
        let _ = child.wait();
        env.cio(&["credential", "list"]).success();
        let out = env.cio(&["credential", "show", "cio_minio_secret_key", "--reveal"]);
        if out.get_output().status.success() {
            landed += 1;
            assert_eq!(stdout(&out), "first-value\n");
        }
        env.create("cio_minio_secret_key", "second-value");
        assert_eq!(env.reveal("cio_minio_secret_key"), "second-value");
    }
    assert!(landed < 40, "no kill landed before the write finished");
}

#[test]
fn between_commands_the_store_file_alone_holds_every_value() {
    // An administrator backs the store up with cp: the -wal file must not be needed.
    let env = TestEnv::new();
    env.create("cio_minio_secret_key", "first-value");
    env.create("cio_minio_secret_key", "second-value");
    let copy = TestEnv::new();
    std::fs::create_dir_all(copy.store().parent().unwrap()).unwrap();
    std::fs::create_dir_all(copy.key().parent().unwrap()).unwrap();
    std::fs::copy(env.store(), copy.store()).unwrap();
    std::fs::copy(env.key(), copy.key()).unwrap();
    assert_eq!(copy.reveal("cio_minio_secret_key"), "second-value");
}

/// The review's finding: writers racing a `rekey` on the same node were told, 13 to 16 times
/// in 20, that their key file was not the store's key (with a hint to copy another one over
/// it). Each writer reads the key file again when the store turns out re-sealed.
#[test]
fn writers_racing_a_rekey_all_succeed() {
    let env = TestEnv::new();
    env.create("cio_minio_backup_password", "initial password value");
    for round in 0..2 {
        let children: Vec<_> = (0..12)
            .map(|i| {
                env.spawn_create(
                    "cio_minio_secret_key",
                    &format!("secret-{round}-{i}-xxxxxxxx"),
                    true,
                )
            })
            .collect();
        env.cio(&["credential", "rekey"]).success();
        wait_all(children);
    }
    let out = env.cio(&["credential", "log", "--verify"]).success();
    assert!(
        stdout(&out).starts_with("Succeed: Verify credential: change log whole: 27 entries"),
        "{}",
        stdout(&out)
    );
}

/// The review's finding: under a file-size limit (`ulimit -f`), the kernel killed `create`
/// with SIGXFSZ in the middle of its write: no word, exit 153, and a scratch copy of the
/// store (sealed secrets) left beside it. The write now fails as such, and nothing changes.
#[test]
fn a_file_size_limit_is_said_and_changes_nothing() {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio-access-key-1");
    std::fs::create_dir_all(env.home()).unwrap();
    let value = env.home().join("value");
    std::fs::write(&value, "s".repeat(4000)).unwrap();
    let before = std::fs::read(env.store()).unwrap();
    let store_size = before.len();
    // sh's ulimit -f counts 512-byte blocks: the store as it is fits, a grown one does not.
    let out = env.shell(
        "sh",
        &format!(
            "ulimit -f {}; exec {} credential create cio_minio_secret_key --from-file {}",
            store_size / 512,
            assert_cmd::cargo::cargo_bin("cio").display(),
            value.display()
        ),
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Fail: Create credential: the credential store {} cannot grow past this process's file-size limit (ulimit -f); nothing was changed\nHint: raise the file-size limit (ulimit -f unlimited; LimitFSIZE= in a systemd unit), then run the command again\n",
            env.store().display()
        )
    );
    assert_eq!(std::fs::read(env.store()).unwrap(), before);
    let beside: Vec<_> = std::fs::read_dir(env.store().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(beside, ["credentials.db"]);
}

/// `cio credential create cio_minio_secret_key` of a `len`-byte value, under `ulimit -f
/// blocks` (512-byte blocks).
fn create_under_file_limit(env: &TestEnv, blocks: u32, len: usize) -> std::process::Output {
    let value = env.dir.path().join("value");
    std::fs::write(&value, "s".repeat(len)).unwrap();
    env.shell(
        "sh",
        &format!(
            "ulimit -f {blocks}; exec {} credential create cio_minio_secret_key --from-file {}",
            assert_cmd::cargo::cargo_bin("cio").display(),
            value.display()
        ),
    )
}

const FILE_SIZE_LIMIT_FAIL: &str = "Fail: Create credential: the credential store {} cannot grow past this process's file-size limit (ulimit -f); nothing was changed\nHint: raise the file-size limit (ulimit -f unlimited; LimitFSIZE= in a systemd unit), then run the command again\n";

fn key_file_stays(env: &TestEnv) -> String {
    format!(
        "Warning: the key file {} did not exist when this command began and stays: cio never removes a key file (another store may be sealed with it), and the next write uses it\n",
        env.key().display()
    )
}

/// A first `create` makes the key file, then fails to make the store (here under
/// `ulimit -f`): the credentials are unchanged, as the error says, but the key file stays (a
/// key file is never taken back: between its making and the failure another store may have
/// been sealed with it, and taking it back lost that store in session 12's review). The
/// command says so; the next create uses the key.
#[test]
fn a_first_create_that_fails_says_the_key_file_it_made_stays() {
    let env = TestEnv::new();
    // 16 blocks: the key file fits, a new store does not.
    let out = create_under_file_limit(&env, 16, 4000);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        key_file_stays(&env)
            + &FILE_SIZE_LIMIT_FAIL.replace("{}", &env.store().display().to_string())
    );
    assert!(!env.store().exists());
    let key = std::fs::read(env.key()).unwrap();
    env.create("cio_minio_secret_key", "minio-secret-1");
    assert_eq!(env.reveal("cio_minio_secret_key"), "minio-secret-1");
    assert_eq!(
        std::fs::read(env.key()).unwrap(),
        key,
        "the next write used it"
    );
    // A failure with the key file there from the start says nothing of it.
    let out = env.cio_in(&["credential", "create", "cio_aws_secret_key"], "short");
    let said = stderr(&out.code(1));
    assert!(!said.contains("key file"), "{said}");
}

/// The store file too: made (schema and id, 40 blocks), then the value does not fit (43
/// blocks; the 4096-byte value needs 48). The review's full disk did the same. The new
/// store, holding no credential, stays and is said; the next write uses it.
#[test]
fn a_first_create_that_fails_says_the_store_file_it_made_stays() {
    let env = TestEnv::new();
    let out = create_under_file_limit(&env, 43, 4096);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        key_file_stays(&env)
            + &format!(
                "Warning: the store file {} did not exist when this command began and stays, a new store with its id; the next write uses it\n",
                env.store().display()
            )
            + &FILE_SIZE_LIMIT_FAIL.replace("{}", &env.store().display().to_string())
    );
    let out = env.cio(&["credential", "list", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["credentials"], serde_json::json!([]));
    env.create("cio_minio_secret_key", "minio-secret-1");
    assert_eq!(env.reveal("cio_minio_secret_key"), "minio-secret-1");
}
