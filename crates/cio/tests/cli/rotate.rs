//! `rotate` of a repository password end to end: the real cio, the real restic 0.14 and a
//! real S3 server (s3s-fs). The kill test SIGKILLs rotations at random moments.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testkit::s3::S3Server;

use crate::util::*;

pub const ACCESS: &str = "rotate-access";
pub const SECRET: &str = "rotate-secret-key-0123";
pub const OLD: &str = "the first repository password";
pub const PASSWORD: &str = "cio_minio_backup_password";

/// A repository in `bucket` made by `cio credential exec -- restic init`, with its set.
pub fn repository(s3: &S3Server, bucket: &str) -> TestEnv {
    s3.create_bucket(bucket);
    let env = TestEnv::new();
    env.minio_set("", &s3.repo_url(bucket, "repo"), ACCESS, SECRET, OLD);
    env.cio(&["credential", "exec", "--", "restic", "--no-cache", "init"])
        .success();
    env
}

/// A repository made by [`repository`] whose node's cio.toml names a recovery recipient, its
/// escrow bundle exported beside it.
pub struct Escrowed {
    pub env: TestEnv,
    /// The folder of the recovery identity (removed when dropped).
    pub safe: tempfile::TempDir,
    /// The recovery identity's file, and its recipient.
    pub identity: PathBuf,
    pub recipient: String,
    /// The file s3s-fs keeps the escrow bundle in.
    pub object: PathBuf,
}

pub fn escrowed_repository(s3: &S3Server, bucket: &str) -> Escrowed {
    let env = repository(s3, bucket);
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = crate::recovery::age_identity(safe.path(), "recovery-key.txt");
    std::fs::write(
        env.config(),
        format!("recovery_recipients = [\"{recipient}\"]\n"),
    )
    .unwrap();
    env.cio(&["credential", "export", "--to-repository"])
        .success();
    let object = s3.root().join(bucket).join("repo/cio-recovery.age");
    Escrowed {
        env,
        safe,
        identity,
        recipient,
        object,
    }
}

/// The key files in the repository (s3s-fs keeps objects as files).
pub fn key_files(s3: &S3Server, bucket: &str) -> Vec<String> {
    let mut keys: Vec<String> = std::fs::read_dir(s3.root().join(bucket).join("repo/keys"))
        .expect("the repository's keys/")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    keys.sort();
    keys
}

/// Whether `password` opens the repository, asked of restic directly.
pub fn opens(s3: &S3Server, bucket: &str, password: &str) -> bool {
    let restic = testkit::require_binary("restic");
    std::process::Command::new(restic)
        .args(["snapshots", "--no-cache", "--json"])
        .env_clear()
        .env("RESTIC_REPOSITORY", s3.repo_url(bucket, "repo"))
        .env("RESTIC_PASSWORD", password)
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("running restic")
        .status
        .success()
}

/// `restic snapshots` with the stored set, through `exec`.
pub fn snapshots_work(env: &TestEnv) -> Result<(), String> {
    let out = env
        .cmd()
        .args([
            "credential",
            "exec",
            "--",
            "restic",
            "snapshots",
            "--no-cache",
            "--json",
        ])
        .write_stdin("")
        .output()
        .expect("running cio exec");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_rotation_moves_the_repository_to_the_new_password() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "plain");
    let first_key = key_files(&s3, "plain");
    let new = "the second repository password";
    let out = env
        .cio_in(&["credential", "rotate", PASSWORD], format!("{new}\n"))
        .success();
    let text = stdout(&out);
    let re = regex_lite::Regex::new(
        r"^Succeed: Rotate credential: cio_minio_backup_password \(version 2; restic key ([0-9a-f]{8}) added, old key ([0-9a-f]{8}) removed\)\n$",
    )
    .unwrap();
    let caps = re.captures(&text).unwrap_or_else(|| panic!("{text}"));
    assert!(first_key[0].starts_with(&caps[2]));
    let keys = key_files(&s3, "plain");
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with(&caps[1]));
    assert_eq!(env.reveal(PASSWORD), new);
    assert!(!opens(&s3, "plain", OLD) && opens(&s3, "plain", new));
    snapshots_work(&env).unwrap();
    // The old password stays in the history.
    let history = stdout(&env.cio(&["credential", "history", PASSWORD]).success());
    assert!(history.contains("update"), "{history}");
    // The change log says a rotation wrote it: staged, stored, unstaged.
    let out = env
        .cio(&["credential", "log", PASSWORD, "--json"])
        .success();
    let log: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let commands: Vec<_> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(commands.last().map(String::as_str), Some("rotate"), "{log}");
    assert!(!commands.iter().any(|c| c == "update"), "{log}");
    // Bringing the old password back would break the backups: its key is gone. Refused,
    // nothing written; --force restores it anyway.
    let out = env
        .cio(&["credential", "restore", PASSWORD, "--version", "1"])
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Restore credential: cio_minio_backup_password: that version's password does not open the set's repository (a rotation removed its key): restoring it would break every backup\n\
         Hint: restore a version whose password the repository still has ('cio credential history cio_minio_backup_password'), or change the password with 'cio credential rotate cio_minio_backup_password'; if the repository's password was changed back elsewhere, add --force; nothing was changed\n"
    );
    assert_eq!(env.reveal(PASSWORD), new);
    env.cio(&[
        "credential",
        "restore",
        PASSWORD,
        "--version",
        "1",
        "--force",
    ])
    .success();
    assert_eq!(env.reveal(PASSWORD), OLD);
}

#[test]
fn generate_keep_old_key_and_json() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "json");
    let out = env
        .cio(&[
            "credential",
            "rotate",
            PASSWORD,
            "--generate",
            "--keep-old-key",
            "--json",
        ])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["action"], "rotate");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["old_key"]["outcome"], "kept");
    assert_eq!(doc["generated"], true);
    assert_eq!(doc["resumed"], false);
    let warning = stderr(&out);
    assert!(
        warning.contains("the old password still opens the repository"),
        "{warning}"
    );
    let generated = env.reveal(PASSWORD);
    assert_eq!(generated.len(), 43);
    assert!(!stdout(&out).contains(&generated));
    assert_eq!(key_files(&s3, "json").len(), 2);
    assert!(opens(&s3, "json", OLD) && opens(&s3, "json", &generated));
    // The old password's key was kept: restoring it is safe, and no --force is needed.
    env.cio(&["credential", "restore", PASSWORD, "--version", "1"])
        .success();
    assert_eq!(env.reveal(PASSWORD), OLD);
    snapshots_work(&env).unwrap();
}

#[test]
fn bad_rotations_are_refused_and_change_nothing() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "bad");
    env.minio_set("_alt", &s3.repo_url("bad", "repo"), ACCESS, SECRET, OLD);
    // The store's and key's files (the empty rotation lock beside the key aside), and the
    // repository's keys.
    let state = || {
        let files: Vec<_> = env
            .snapshot_files()
            .into_iter()
            .filter(|(path, _)| !path.to_string_lossy().ends_with(".lock"))
            .collect();
        (files, key_files(&s3, "bad"))
    };
    let before = state();

    let out = env
        .cio_in(
            &["credential", "rotate", "cio_minio_alt_backup_password"],
            "new password\n",
        )
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Rotate credential: cio_minio_alt_backup_password: the alternate set is restore-only: its repository belongs to another cluster, whose keys cio does not change\n\
         Hint: rotate the password on the cluster that owns the repository, then set it here with 'cio credential create cio_minio_alt_backup_password --force'; nothing was changed\n"
    );
    let out = env
        .cio_in(&["credential", "rotate", PASSWORD], format!("{OLD}\n"))
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Rotate credential: cio_minio_backup_password: the new password is the one already stored\n\
         Hint: choose another new password, or let cio make one with --generate; nothing was changed\n"
    );
    let out = env
        .cio_in(&["credential", "rotate", "cio_minio_secret_key"], "x\n")
        .code(2);
    assert!(stderr(&out).contains("only a repository password"));
    let out = env
        .cio_in(&["credential", "rotate", "cio_aws_backup_password"], "x\n")
        .code(1);
    assert!(
        stderr(&out).contains("the aws primary set is incomplete"),
        "{}",
        stderr(&out)
    );
    let out = env.cio_in(&["credential", "rotate", PASSWORD], "").code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Rotate credential: cio_minio_backup_password: the value is empty\n\
         Hint: nothing was changed; correct the value and run the command again\n"
    );
    // What create keeps with --allow-whitespace (or --allow-any-character) rotate cannot
    // hand to restic's key add, and it names no flag it does not take (session 12's review:
    // the hint sent the user to --allow-whitespace, a usage error here).
    for new in ["Zq7-rotate-value ", "Zq7\trotate-value"] {
        let out = env
            .cio_in(&["credential", "rotate", PASSWORD], format!("{new}\n"))
            .code(1);
        let said = stderr(&out);
        assert!(
            said.starts_with("Fail: Rotate credential: cio_minio_backup_password: the new password holds white space, a line break or an invisible character ("),
            "{said}"
        );
        assert!(
            said.ends_with("); rotate takes none: restic's key add trims white space from either end of the password it reads\n\
             Hint: choose a new password without white space at either end, tabs, line breaks or invisible characters, or let cio make one with --generate; nothing was changed\n"),
            "{said}"
        );
        assert!(!said.contains("--allow") && !said.contains(new), "{said}");
    }
    assert!(
        state() == before,
        "a refused rotation changed the store or the keys"
    );
}

/// Sends SIGKILL to cio (only: the restic it started runs on, as after `kill -9 PID`) after
/// `delay`, then waits until no process of its group is left.
fn kill_after(mut child: std::process::Child, delay: Duration) -> bool {
    let pgid = rustix::process::Pid::from_child(&child);
    let deadline = Instant::now() + delay;
    let finished = loop {
        if let Some(status) = child.try_wait().expect("waiting for cio") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if finished.is_none() {
        child.kill().expect("SIGKILL to cio");
        child.wait().expect("reaping cio");
    }
    // The restic children are orphans now; wait until they are gone.
    while rustix::process::test_kill_process_group(pgid).is_ok() {
        std::thread::sleep(Duration::from_millis(20));
    }
    finished.is_none()
}

fn spawn_rotate(env: &TestEnv, keep: bool) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
    cmd.env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .args(["credential", "rotate", PASSWORD, "--generate"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    if keep {
        cmd.arg("--keep-old-key");
    }
    cmd.spawn().expect("starting cio rotate")
}

/// How many versions the stored password has (one per finished rotation, and the first).
fn password_versions(env: &TestEnv) -> usize {
    let out = env
        .cio(&["credential", "history", PASSWORD, "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    doc["versions"].as_array().unwrap().len()
}

/// One repository's share of the kill test: rotations killed at random moments until
/// `kills` were. After each: the stored set opens the repository (`restic snapshots`
/// through `exec`), and no key leaked: at most the old and the new password's keys are
/// there (with `keep`, one per password ever stored, and the new one). A rotation that
/// ended before its kill, and the run at the end, finished: then the old key is gone (with
/// `keep`: one key per password ever stored). Returns the kills.
fn kill_chain(s3: &S3Server, bucket: &str, kills: usize, keep: bool, seed: u64) -> usize {
    let env = repository(s3, bucket);
    let mut rng = fastrand::Rng::with_seed(seed);
    let rotate = |env: &TestEnv| {
        let mut args = vec!["credential", "rotate", PASSWORD, "--generate"];
        if keep {
            args.push("--keep-old-key");
        }
        env.cio(&args).success();
    };
    // A whole rotation, to know how long one takes here.
    let start = Instant::now();
    rotate(&env);
    let whole = start.elapsed();
    let check_keys = |finished: bool| {
        let keys = key_files(s3, bucket).len();
        let expected = if keep { password_versions(&env) } else { 1 };
        if finished {
            assert_eq!(
                keys, expected,
                "{bucket}: a finished rotation left other keys"
            );
        } else {
            assert!(
                keys == expected || keys == expected + 1,
                "{bucket}: {keys} keys where {expected} or one more are expected: a key leaked"
            );
        }
    };
    let mut killed = 0;
    while killed < kills {
        let delay = whole.mul_f64(rng.f64() * 1.2);
        let was_killed = kill_after(spawn_rotate(&env, keep), delay);
        killed += usize::from(was_killed);
        if let Err(e) = snapshots_work(&env) {
            panic!(
                "{bucket}: after a kill {delay:?} into a rotation, restic cannot open the repository with the stored set: {e}"
            );
        }
        check_keys(!was_killed);
    }
    // Running it again finishes whatever was left (and rotates once more).
    rotate(&env);
    check_keys(true);
    snapshots_work(&env).unwrap();
    assert_eq!(opens(s3, bucket, OLD), keep, "{bucket}: the first password");
    eprintln!("{bucket}: {killed} kills; one rotation took {whole:?}");
    killed
}

#[test]
fn rotations_killed_at_random_moments_never_break_the_backups() {
    let seed = std::env::var("CIO_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill test seed: {seed} (CIO_KILL_SEED={seed} repeats it)");
    let s3 = S3Server::start(ACCESS, SECRET);
    let started = Instant::now();
    // Four repositories at once: much of a rotation is waiting (restic's lock check, S3
    // round trips, process starts), and restic calibrates its key derivation to the time
    // it takes, so parallel chains cost little more than one.
    let plan = [
        ("kill-a", 13, false),
        ("kill-b", 13, false),
        ("kill-c", 12, false),
        ("kill-d", 12, true),
    ];
    let killed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .iter()
            .enumerate()
            .map(|(i, (bucket, kills, keep))| {
                let s3 = &s3;
                s.spawn(move || kill_chain(s3, bucket, *kills, *keep, seed.wrapping_add(i as u64)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(killed >= 50);
    eprintln!("{killed} kills in {:?}", started.elapsed());
}

/// The time in the warning "finishing the rotation started at T ..." in `text`.
fn started_at(text: &str) -> String {
    let at = "cio_minio_backup_password: finishing the rotation started at ";
    let line = text
        .lines()
        .find(|l| l.contains(at))
        .unwrap_or_else(|| panic!("no 'finishing' warning: {text}"));
    line.split(at)
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// What the change log says of the rotations of the password: each entry's detail that
/// tells a rotation's start, takeover or finish.
fn rotation_log(env: &TestEnv) -> Vec<String> {
    let out = env
        .cio(&["credential", "log", PASSWORD, "--json"])
        .success();
    let log: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .filter(|d| {
            ["started", "resumed", "finished"]
                .iter()
                .any(|w| d.starts_with(w))
        })
        .map(str::to_string)
        .collect()
}

/// A rotation killed after it started (its new password staged): a different password piped
/// to the next run is refused, not silently dropped; a run without one finishes it.
#[test]
fn a_new_password_given_to_an_interrupted_rotation_is_refused() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "interrupted");
    let started = |env: &TestEnv| {
        let log: serde_json::Value = serde_json::from_slice(
            &env.cio(&["credential", "log", PASSWORD, "--json"])
                .success()
                .get_output()
                .stdout,
        )
        .unwrap();
        let entries = log["entries"].as_array().unwrap().clone();
        entries.last().is_some_and(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("started"))
        })
    };
    let mut interrupted = false;
    for _ in 0..20 {
        let child = spawn_rotate(&env, false);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started(&env) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if kill_after(child, Duration::ZERO) && started(&env) {
            interrupted = true;
            break;
        }
    }
    assert!(interrupted, "no rotation was killed after it started");
    let out = env
        .cio_in(
            &["credential", "rotate", PASSWORD],
            "another new password\n",
        )
        .code(1);
    let refusal = stderr(&out);
    let out = env
        .cio_in(&["credential", "rotate", PASSWORD], "")
        .success();
    // The refusal says when the interrupted rotation started, as the run that finishes it.
    assert_eq!(
        refusal,
        format!(
            "Fail: Rotate credential: cio_minio_backup_password: the rotation started at {} was interrupted and is not finished yet, and it has another new password\n\
             Hint: run 'cio credential rotate cio_minio_backup_password' without a new password to finish the interrupted rotation first; nothing was changed\n",
            started_at(&stderr(&out))
        )
    );
    snapshots_work(&env).unwrap();
    assert_ne!(env.reveal(PASSWORD), "another new password");
    assert_eq!(key_files(&s3, "interrupted").len(), 1);
}

/// The password in the escrow bundle at `object`, opened with the real age and `identity`.
fn escrowed_password(object: &std::path::Path, identity: &std::path::Path) -> String {
    let out = std::process::Command::new(testkit::require_binary("age"))
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(object)
        .output()
        .expect("running age");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == PASSWORD)
        .unwrap()["versions"][0]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The review's finding: the escrow bundle was refreshed after restic removed the old key, so
/// a rotation killed in between, or whose refresh failed, left in the bucket a bundle whose
/// password opens nothing, and said so only as a warning. Now the bundle is refreshed first;
/// when that fails the old key stays (the bundle there still opens the repository), the
/// rotation stops saying so, and the next run refreshes it and removes the old key.
#[test]
fn a_rotation_removes_the_old_key_only_once_the_escrow_bundle_holds_the_new_password() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let Escrowed {
        env,
        safe,
        identity,
        recipient,
        object,
    } = escrowed_repository(&s3, "esc");
    assert_eq!(escrowed_password(&object, &identity), OLD);
    // The bucket takes no new bundle: the object's place is a folder now (s3s-fs keeps
    // objects as files). The old bundle is kept aside, as a copy of the bucket would be.
    let old_bundle = safe.path().join("old-bundle.age");
    std::fs::rename(&object, &old_bundle).unwrap();
    std::fs::create_dir(&object).unwrap();
    let new = "the second repository password";
    let out = env
        .cio_in(&["credential", "rotate", PASSWORD], format!("{new}\n"))
        .code(1);
    let text = stderr(&out);
    assert!(
        text.starts_with("Fail: Rotate credential: cio_minio_backup_password: the set's recovery bundle could not be refreshed ("),
        "{text}"
    );
    assert!(
        text.contains("), so the old password's key is kept: a bundle in the bucket holds the old password\nHint: fix what the refresh needs"),
        "{text}"
    );
    assert_eq!(env.reveal(PASSWORD), new);
    assert!(opens(&s3, "esc", OLD) && opens(&s3, "esc", new));
    assert_eq!(escrowed_password(&old_bundle, &identity), OLD);

    // The bucket takes it again: the next run refreshes the bundle, then removes the key.
    std::fs::remove_dir(&object).unwrap();
    let out = env.cio(&["credential", "rotate", PASSWORD]).success();
    let text = stdout(&out);
    assert!(
        text.starts_with("Succeed: Refresh recovery bundle: the minio primary set, sealed to the recovery recipients, at "),
        "{text}"
    );
    assert!(
        text.contains("old key") && text.contains("removed; an interrupted rotation finished)"),
        "{text}"
    );
    assert_eq!(escrowed_password(&object, &identity), new);
    assert!(!opens(&s3, "esc", OLD) && opens(&s3, "esc", new));

    // The final review's findings. A node whose cio.toml names no recipients (another node,
    // or the line removed to get past the error) cannot refresh the bundle there: the old key
    // stays, as for a failed refresh.
    std::fs::write(env.config(), "").unwrap();
    let third = "the third repository password";
    let out = env
        .cio_in(&["credential", "rotate", PASSWORD], format!("{third}\n"))
        .code(1);
    let text = redact(&env, &stderr(&out));
    assert!(
        text.starts_with("Fail: Rotate credential: cio_minio_backup_password: the set's recovery bundle could not be refreshed (a recovery bundle is at s3:"),
        "{text}"
    );
    assert!(
        text.contains(
            "and this node's cio.toml names no recovery_recipients to seal a new one to)"
        ),
        "{text}"
    );
    assert!(opens(&s3, "esc", new) && opens(&s3, "esc", third));
    assert_eq!(escrowed_password(&object, &identity), new);
    std::fs::write(
        env.config(),
        format!("recovery_recipients = [\"{recipient}\"]\n"),
    )
    .unwrap();
    env.cio(&["credential", "rotate", PASSWORD]).success();
    assert_eq!(escrowed_password(&object, &identity), third);
    assert!(!opens(&s3, "esc", new));

    // Keeping the old key, a failed refresh lets the rotation finish, and the note on the
    // old key says to refresh the bundle before removing it.
    std::fs::remove_file(&object).unwrap();
    std::fs::create_dir(&object).unwrap();
    let fourth = "the fourth repository password";
    let out = env
        .cio_in(
            &["credential", "rotate", PASSWORD, "--keep-old-key"],
            format!("{fourth}\n"),
        )
        .success();
    let text = stderr(&out);
    assert!(
        text.contains("and the recovery bundle holds it: refresh the bundle first ('cio credential export --to-repository --provider minio'), then remove the key with: cio credential exec --provider minio -- restic key remove "),
        "{text}"
    );
    assert!(opens(&s3, "esc", third) && opens(&s3, "esc", fourth));
}

/// The re-review's finding: a repository that lost its `config` (its keys and data still
/// there) made `rotate` suggest `restic init`, which would write a new master key over them.
/// The hint now sends to `validate`, which tells that from a repository not created yet.
#[test]
fn a_repository_that_lost_its_config_is_not_offered_an_init() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let env = repository(&s3, "noconf");
    std::fs::remove_file(s3.root().join("noconf/repo/config")).unwrap();
    let out = env
        .cio(&["credential", "rotate", PASSWORD, "--generate"])
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Rotate credential: cio_minio_backup_password: restic finds no repository config at the set's URL\n\
         Hint: run 'cio credential validate cio_minio_backup_password': it tells a repository not created yet (which needs no rotation: create it with 'cio credential exec --provider minio -- restic init') from one that lost its config (restore the config from a backup of the bucket; never init over it), or a URL that points elsewhere; nothing was changed\n"
    );
    assert_eq!(env.reveal(PASSWORD), OLD);
    let out = env.cio(&["credential", "validate", "--json"]).code(1);
    assert!(
        stdout(&out).contains("\"config_missing\""),
        "{}",
        stdout(&out)
    );
}

/// The review's findings on finishing an interrupted rotation: each rerun's warning "finishing
/// the rotation started at T" showed when the previous rerun took it over, not when it
/// started; and the success line said "restic key X added" when the interrupted run had
/// added it. Here a rotation stops after adding the key (the bucket takes no recovery
/// bundle), a rerun stops the same way, and the last one finishes.
#[test]
fn finishing_an_interrupted_rotation_says_when_it_started_and_who_added_the_key() {
    let s3 = S3Server::start(ACCESS, SECRET);
    let Escrowed {
        env,
        safe: _safe,
        object,
        ..
    } = escrowed_repository(&s3, "resume");
    std::fs::remove_file(&object).unwrap();
    std::fs::create_dir(&object).unwrap();
    let new = "the second repository password";
    env.cio_in(&["credential", "rotate", PASSWORD], format!("{new}\n"))
        .code(1);
    std::thread::sleep(Duration::from_millis(1100));
    let out = env.cio(&["credential", "rotate", PASSWORD]).code(1);
    let first = started_at(&stderr(&out));
    // Another new password is refused, naming the same start, and changes nothing.
    let out = env
        .cio_in(
            &["credential", "rotate", PASSWORD],
            "a third repository password\n",
        )
        .code(1);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: Rotate credential: cio_minio_backup_password: the rotation started at {first} was interrupted and is not finished yet"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.reveal(PASSWORD), new);
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::remove_dir(&object).unwrap();
    let out = env.cio(&["credential", "rotate", PASSWORD]).success();
    assert_eq!(started_at(&stderr(&out)), first, "{}", stderr(&out));
    // The review's finding: each rerun wrote "started" to the change log again, so an
    // auditor read three rotations. It started once; each rerun took it over; it finished.
    let resumed = format!("resumed: the interrupted rotation started at {first} taken over");
    assert_eq!(
        rotation_log(&env),
        [
            "started: its new value staged",
            resumed.as_str(),
            resumed.as_str(),
            "finished: its staged value removed",
        ]
    );
    let text = stdout(&out);
    assert!(
        text.contains(" added by the interrupted run, old key ")
            && text.ends_with("removed; an interrupted rotation finished)\n"),
        "{text}"
    );
    assert!(!opens(&s3, "resume", OLD) && opens(&s3, "resume", new));
    assert_eq!(key_files(&s3, "resume").len(), 1);
}
