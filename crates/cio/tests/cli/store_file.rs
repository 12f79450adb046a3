//! The embedded store is one file a user can copy, restore and read anywhere; the files cio
//! trusts are read only when they are regular files of a sane size; a full disk and a kill
//! leave nothing half done (issue 9, items 4 and 5).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn listing(env: &TestEnv) -> String {
    stdout(&env.cio(&["credential", "list", "--json"]).success())
}

#[test]
fn between_commands_the_store_is_one_file_and_a_copied_backup_is_exactly_the_backup() {
    let env = TestEnv::new();
    env.create("cio_minio_backup_repo", "s3:http://127.0.0.1:9/bucket");
    env.create("cio_minio_access_key", "minio-before");
    let folder = env.store().parent().unwrap().to_path_buf();
    assert_eq!(files_in(&folder), ["credentials.db"]);
    let backup = env.dir.path().join("backup.db");
    std::fs::copy(env.store(), &backup).unwrap();
    let before = listing(&env);

    env.create("cio_minio_access_key", "minio-after");
    env.create("cio_minio_secret_key", "a-secret-made-after");
    env.cio(&["credential", "remove", "--purge", "cio_minio_backup_repo"])
        .success();
    for _ in 0..20 {
        env.create(
            "cio_minio_backup_password",
            "writes that must not grow anything",
        );
    }
    assert_eq!(
        files_in(&folder),
        ["credentials.db"],
        "nothing grows beside it"
    );
    // Whatever lies beside it: a WAL, a shared-memory index, from any time.
    std::fs::write(folder.join("credentials.db-wal"), vec![7u8; 40_000]).unwrap();
    std::fs::write(folder.join("credentials.db-shm"), vec![0u8; 32_768]).unwrap();
    std::fs::copy(&backup, env.store()).unwrap();
    assert_eq!(listing(&env), before);
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-before");
    assert_eq!(
        std::fs::read(env.store()).unwrap(),
        std::fs::read(&backup).unwrap()
    );
    // And it keeps working as that store; the next write clears what lay beside it.
    env.create("cio_minio_access_key", "minio-again");
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-again");
    assert_eq!(files_in(&folder), ["credentials.db"]);
}

/// An in-place copy of a backup (`cp backup.db credentials.db`) truncates the store first:
/// a write that came then used to start a new store and rename it over the path, and the
/// copy went on into the replaced file, lost. Now the empty file is refused, by reads and
/// writes alike, and the copy, once done, is exactly the backup.
#[test]
fn a_store_emptied_by_a_copy_under_way_is_neither_read_nor_written() {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio-in-the-backup");
    let backup = env.dir.path().join("backup.db");
    std::fs::copy(env.store(), &backup).unwrap();
    env.create("cio_minio_access_key", "minio-after-the-backup");
    // cp's first step: the store truncated.
    std::fs::File::create(env.store()).unwrap();
    let store = env.store().display().to_string();
    let expected = format!(
        "Fail: Create credential: the credential store {store} is being changed outside cio (it is an empty file, which cio never leaves); nothing was changed\n\
         Hint: if a copy into {store} is under way, wait for it and run the command again; to put a backup in place, copy it beside the store and rename it over the store (mv), which is never seen half-written; an empty file nobody is copying can be removed\n"
    );
    let failed = env
        .cio_in(&["credential", "create", "cio_minio_region"], "eu-west-9")
        .code(3);
    assert_eq!(stderr(&failed), expected);
    let listed = env.cio(&["credential", "list"]).code(3);
    assert!(
        stderr(&listed).contains("is being changed outside cio (it is an empty file"),
        "{}",
        stderr(&listed)
    );
    assert_eq!(
        std::fs::metadata(env.store()).unwrap().len(),
        0,
        "left alone"
    );
    // The copy finishes: the store is the backup.
    std::fs::copy(&backup, env.store()).unwrap();
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-in-the-backup");
    env.create("cio_minio_region", "eu-west-9");
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-in-the-backup");
}

/// `chattr +i` on the store, its folder and the key: a store on read-only media.
#[test]
fn a_store_on_read_only_media_is_listed_shown_and_handed_over() {
    assert!(
        is_root(),
        "this test makes files immutable with chattr +i, which needs root"
    );
    let env = TestEnv::new();
    env.minio_set(
        "",
        "s3:http://127.0.0.1:9/bucket",
        "minio",
        "minio-secret",
        "a long password",
    );
    let folder = env.store().parent().unwrap().to_path_buf();
    let chattr = |flag: &str| {
        for p in [env.store(), folder.clone()] {
            let ok = Command::new("chattr").arg(flag).arg(&p).status().unwrap();
            assert!(ok.success(), "chattr {flag} {}", p.display());
        }
    };
    chattr("+i");
    let listed = env.cio(&["credential", "list"]).assert_result();
    let shown = env
        .cio(&["credential", "show", "cio_minio_secret_key", "--reveal"])
        .assert_result();
    let handed = env
        .cio(&[
            "credential",
            "exec",
            "--",
            "sh",
            "-c",
            "printf %s \"$AWS_SECRET_ACCESS_KEY\"",
        ])
        .assert_result();
    let written = env.cio_in(&["credential", "create", "cio_aws_backup_repo"], REF_REPO);
    let written = (written.get_output().status.code(), stderr(&written));
    chattr("-i");
    assert!(listed.0, "list: {}", listed.1);
    assert_eq!(shown.2, "minio-secret\n", "{}", shown.1);
    assert_eq!(handed.2, "minio-secret", "{}", handed.1);
    assert_eq!(written.0, Some(3), "{}", written.1);
    assert!(written.1.contains("cannot be written"), "{}", written.1);
}

/// Whether the tests run as root (effective uid 0, from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

trait AssertResult {
    /// (success, stderr, stdout)
    fn assert_result(self) -> (bool, String, String);
}

impl AssertResult for assert_cmd::assert::Assert {
    fn assert_result(self) -> (bool, String, String) {
        (
            self.get_output().status.success(),
            stderr(&self),
            stdout(&self),
        )
    }
}

#[test]
fn many_processes_racing_to_create_a_new_store_all_succeed() {
    for _ in 0..3 {
        let env = TestEnv::new();
        let names = [
            ("cio_aws_backup_repo", REF_REPO.to_string()),
            ("cio_aws_access_key", REF_ACCESS.to_string()),
            ("cio_aws_secret_key", REF_SECRET.to_string()),
            ("cio_aws_backup_password", "a long password one".to_string()),
            (
                "cio_minio_backup_repo",
                "s3:http://127.0.0.1:9/bucket".to_string(),
            ),
            ("cio_minio_access_key", "minio".to_string()),
            ("cio_minio_secret_key", "minio-secret".to_string()),
            (
                "cio_minio_backup_password",
                "a long password two".to_string(),
            ),
        ];
        let children: Vec<_> = names
            .iter()
            .map(|(n, v)| env.spawn_create(n, v, true))
            .collect();
        wait_all(children);
        for (n, v) in &names {
            assert_eq!(&env.reveal(n), v);
        }
    }
}

/// Runs cio with a time limit; a hang is a failure.
fn within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("cio hung on a special file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cio_std(env: &TestEnv) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
    cmd.env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config());
    cmd
}

#[test]
fn a_fifo_or_device_as_key_file_or_configuration_fails_at_once() {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio");
    let fifo = env.dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let cases = [
        (
            "CIO_KEY_FILE",
            fifo.clone(),
            "is not a cio key file: it is a FIFO (named pipe)",
        ),
        (
            "CIO_KEY_FILE",
            "/dev/zero".into(),
            "is not a cio key file: it is a device",
        ),
        (
            "CIO_CONFIG",
            fifo.clone(),
            "cannot be read: it is a FIFO (named pipe), not a regular file",
        ),
        (
            "CIO_CONFIG",
            "/dev/zero".into(),
            "cannot be read: it is a device, not a regular file",
        ),
    ];
    for (var, path, message) in cases {
        let out = within(
            cio_std(&env)
                .env(var, &path)
                .args(["credential", "show", "cio_minio_access_key"]),
            Duration::from_secs(10),
        );
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(text.contains(message), "{var}={}: {text}", path.display());
    }
}

/// `create --from-file FIFO` with nobody writing into it waits for a writer, as `import
/// FIFO` does, and says so on standard error after a couple of seconds, never a silent hang
/// (it read such a pipe as an empty value before); killed while waiting, it wrote nothing.
/// (A writer that comes is read: `pipes.rs`.)
#[test]
fn a_fifo_given_with_from_file_waits_for_a_writer_and_says_so() {
    let env = TestEnv::new();
    let fifo = env.dir.path().join("value-fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut child = cio_std(&env)
        .args(["credential", "create", "cio_minio_cacert", "--from-file"])
        .arg(&fifo)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "it waits for a writer");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Warning: waiting for the value of cio_minio_cacert from the pipe given with --from-file, whose writer has not ended it\n"
    );
    assert!(!env.store().exists(), "nothing written");
}

#[test]
fn a_kill_during_key_creation_never_leaves_a_key_under_a_temporary_name() {
    for round in 0..30u64 {
        let env = TestEnv::new();
        let mut child = cio_std(&env)
            .args(["credential", "create", "cio_minio_access_key", "minio"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(500 * (round % 10)));
        let _ = child.kill();
        let _ = child.wait();
        let folder = env.key().parent().unwrap().to_path_buf();
        if folder.exists() {
            let left = files_in(&folder);
            assert!(
                left.is_empty() || left == ["credential.key"],
                "round {round}: {left:?}"
            );
        }
        // Whatever the kill left, the next command works.
        env.create("cio_minio_access_key", "minio");
        assert_eq!(env.reveal("cio_minio_access_key"), "minio");
    }
}

#[test]
fn a_full_disk_says_so_and_changes_nothing() {
    assert!(
        is_root(),
        "this test mounts a small tmpfs, which needs root"
    );
    let env = TestEnv::new();
    let small = env.dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success());
    let result = std::panic::catch_unwind(|| {
        let store = small.join("credentials.db");
        let key = small.join("credential.key");
        let cio = |args: &[&str], input: &str| {
            env.cmd()
                .env("CIO_STORE", &store)
                .env("CIO_KEY_FILE", &key)
                .args(args)
                .write_stdin(input)
                .assert()
        };
        cio(&["credential", "create", "cio_minio_access_key"], "minio").success();
        let filler = small.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        while std::io::Write::write_all(&mut f, &[0u8; 4096]).is_ok() {}
        drop(f);
        let before = std::fs::read(&store).unwrap();
        let out = cio(
            &["credential", "create", "cio_minio_secret_key"],
            &"s".repeat(4000),
        )
        .code(3);
        assert_eq!(
            stderr(&out).lines().next().unwrap(),
            format!(
                "Fail: Create credential: no space left on the device of the credential store {}; nothing was changed",
                store.display()
            )
        );
        assert_eq!(std::fs::read(&store).unwrap(), before);
        std::fs::remove_file(&filler).unwrap();
        cio(
            &["credential", "show", "cio_minio_access_key", "--reveal"],
            "",
        )
        .success()
        .stdout("minio\n");
    });
    let _ = Command::new("umount").arg(&small).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_standard_input_that_never_closes_is_announced() {
    use std::io::{BufRead, BufReader, Write};
    let env = TestEnv::new();
    let mut child = cio_std(&env)
        .args(["credential", "create", "cio_minio_access_key"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let start = Instant::now();
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let waited = start.elapsed();
    assert_eq!(
        line,
        "Warning: waiting for the value of cio_minio_access_key on standard input; end it (Ctrl-D) or give the value with --from-file\n"
    );
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    stdin.write_all(b"minio-typed-late\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(env.reveal("cio_minio_access_key"), "minio-typed-late");
    // A value that arrives at once: no notice.
    env.cio_in(&["credential", "create", "cio_minio_access_key"], "minio")
        .success()
        .stderr("");
}

#[test]
fn a_purge_leaves_no_copy_of_the_value_on_a_file_system_that_shares_blocks() {
    // XFS (mkfs.xfs makes it with reflink=1) lets a copy share the original's blocks, as
    // copy_file_range asks: a write's scratch copy made so left a purged value on the device
    // (session 7's review). The image is read back whole after the purge.
    assert!(is_root(), "this test mounts an XFS image, which needs root");
    let env = TestEnv::new();
    let image = env.dir.path().join("xfs.img");
    let mnt = env.dir.path().join("xfs");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::File::create(&image)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let made = Command::new("mkfs.xfs")
        .args(["-q", "-f"])
        .arg(&image)
        .status()
        .expect("mkfs.xfs is installed (scripts/install-test-deps)");
    assert!(made.success());
    let mount = || {
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(status.success(), "mount -o loop of the XFS image");
    };
    let umount = || Command::new("umount").arg(&mnt).status().unwrap().success();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .contains(&format!(" {} ", mnt.display()))
    };
    mount();
    let result = std::panic::catch_unwind(|| {
        let dir = mnt.join("store");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let store = dir.join("credentials.db");
        let cio = |args: &[&str], input: &str| {
            env.cmd()
                .env("CIO_STORE", &store)
                .env("CIO_KEY_FILE", dir.join("credential.key"))
                .args(args)
                .write_stdin(input)
                .assert()
        };
        cio(
            &["credential", "create", "cio_minio_region", "eu-west-1"],
            "",
        )
        .success();
        cio(
            &["credential", "create", "cio_minio_secret_key"],
            "SuperSecretValue-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLE",
        )
        .success();
        // From the disk from now on, not from the page cache.
        assert!(umount());
        mount();
        let sealed: Vec<u8> = rusqlite::Connection::open_with_flags(
            &store,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
        .query_row(
            "SELECT sealed FROM versions WHERE name = 'cio_minio_secret_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
        let out = cio(
            &["credential", "remove", "--purge", "cio_minio_secret_key"],
            "",
        )
        .success();
        // What this test cannot promise (copies of the file from writes before the last) is
        // said, with what to do.
        assert_eq!(
            stderr(&out),
            "Warning: the destroyed versions of cio_minio_secret_key may remain on the disk, in copies of the store file that earlier writes left in its free space (every write replaces the file whole; a purge overwrites only the file it replaces, and not when another name, such as a backup made with ln, links to it); they are sealed with this store's key: if that matters, rekey the store (cio credential rekey, with the same --store and --key-file) and make sure no copy of the old key survives, the old key file's freed blocks included\n"
        );
        assert!(umount());
        let middle = sealed.len() / 2;
        let probe: String = sealed[middle - 12..middle + 12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let count = Command::new("python3")
            .arg("-c")
            .arg("import sys; print(open(sys.argv[1], 'rb').read().count(bytes.fromhex(sys.argv[2])))")
            .arg(&image)
            .arg(&probe)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&count.stdout).trim(),
            "0",
            "copies of the purged value's bytes left on the device"
        );
    });
    if mounted() {
        umount();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_purge_overwrites_the_file_it_replaces_but_not_a_hard_linked_backup() {
    let env = TestEnv::new();
    env.create("cio_minio_access_key", "minio");
    env.create(
        "cio_minio_secret_key",
        "SuperSecretValue-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLE",
    );
    // The store as it was, held open: the purge replaces it and overwrites what it held.
    let replaced = std::fs::File::open(env.store()).unwrap();
    let length = replaced.metadata().unwrap().len();
    env.cio(&["credential", "remove", "--purge", "cio_minio_secret_key"])
        .success();
    let mut held = Vec::new();
    std::io::Read::read_to_end(&mut &replaced, &mut held).unwrap();
    assert_eq!(held, vec![0u8; usize::try_from(length).unwrap()]);

    // A hard link to the store (a backup made with `ln`) is someone's copy: kept whole.
    let backup = env.dir.path().join("backup.db");
    std::fs::hard_link(env.store(), &backup).unwrap();
    env.cio(&["credential", "remove", "--purge", "cio_minio_access_key"])
        .success();
    env.cmd()
        .env("CIO_STORE", &backup)
        .args(["credential", "show", "cio_minio_access_key", "--reveal"])
        .write_stdin("")
        .assert()
        .success()
        .stdout("minio\n");
}
