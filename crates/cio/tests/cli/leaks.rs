//! The process does not leak what it holds (issue 9, item 2) and the child sees exactly the
//! set (issue 10, kind 4): no core file, none of cio's own secrets or the caller's AWS and
//! restic settings in the child's environment, and the terminal warning for a revealed value.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::s3::S3Server;

use crate::util::*;

/// Runs `sh -c SCRIPT` on a terminal (util-linux's `script`, which runs its command with
/// `/bin/sh -c` and waits for it), in `dir`, with this env's settings.
fn on_terminal(env: &TestEnv, dir: &Path, script: &str) -> Child {
    Command::new("script")
        .args(["-qec", script, "/dev/null"])
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux's script (Debian package bsdutils) runs cio on a terminal")
}

/// Reads the terminal until `text` appears (or panics after 10 s).
fn wait_for(out: &mut ChildStdout, seen: &mut String, text: &str) {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while !seen.contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no '{text}' in {seen:?}"
        );
        let n = out.read(&mut buf).expect("reading the terminal");
        assert!(n > 0, "the terminal closed before '{text}': {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::sleep(Duration::from_millis(150));
}

fn core_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("core"))
        .collect()
}

/// The process whose parent is `parent` (the command `script` runs).
fn child_of(parent: u32) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        if after.split(' ').nth(1) == Some(&parent.to_string()) {
            return pid;
        }
    }
    panic!("no child of process {parent}");
}

/// Sends SIGQUIT (as `kill -QUIT` from another terminal would: rpassword reads the password
/// in raw mode, so Ctrl-\ is a typed character there) to the command running on the
/// terminal, and waits for the session to end. Returns the terminal's last output and how
/// the session ended.
fn quit(mut child: Child) -> String {
    let target = child_of(child.id());
    let status = Command::new("kill")
        .args(["-QUIT", &target.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut rest);
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    format!("{rest} ({status})")
}

#[test]
fn a_quit_at_the_second_password_prompt_leaves_no_core_file() {
    let env = TestEnv::new();
    // The control: on this machine, with `ulimit -c unlimited`, a process that receives
    // SIGQUIT on the terminal does leave a core file in its folder. Without that, this test
    // could not tell anything apart.
    let control = tempfile::tempdir().unwrap();
    let mut child = on_terminal(
        &env,
        control.path(),
        "ulimit -c unlimited; echo ready; exec sleep 30",
    );
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    wait_for(&mut out, &mut seen, "ready");
    child.stdout = Some(out);
    seen.push_str(&quit(child));
    assert!(
        !core_files(control.path()).is_empty(),
        "this machine writes no core files in the working folder (see /proc/sys/kernel/core_pattern): the test cannot check anything: {seen}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let mut child = on_terminal(
        &env,
        dir.path(),
        &format!(
            "ulimit -c unlimited; exec {} credential create cio_minio_backup_password",
            cio.display()
        ),
    );
    let mut out = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    wait_for(&mut out, &mut seen, "Value for cio_minio_backup_password: ");
    stdin.write_all(b"core canary password 77\n").unwrap();
    stdin.flush().unwrap();
    wait_for(&mut out, &mut seen, "(again): ");
    child.stdin = Some(stdin);
    child.stdout = Some(out);
    quit(child);
    assert_eq!(
        core_files(dir.path()),
        Vec::<String>::new(),
        "a core file holds the typed password"
    );
    assert!(!env.store().exists(), "nothing was written");
}

/// Every variable a caller may have that must not reach the child, with a value.
const CALLERS: &[(&str, &str)] = &[
    ("CIO_ETCD_USER", "etcd-user-canary"),
    ("CIO_ETCD_PASSWORD", "etcd-password-canary"),
    ("AWS_DEFAULT_REGION", "eu-central-1"),
    ("AWS_REGION", "eu-central-1"),
    ("AWS_PROFILE", "other-profile"),
    ("AWS_CONFIG_FILE", "/tmp/other-aws-config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/tmp/other-aws-credentials"),
    ("AWS_CA_BUNDLE", "/tmp/other-ca.pem"),
    ("AWS_SESSION_TOKEN", "stale-session-token"),
    ("RESTIC_REPOSITORY_FILE", "/tmp/other-repository"),
    ("RESTIC_PASSWORD_FILE", "/tmp/other-password"),
    ("RESTIC_PASSWORD_COMMAND", "echo other-password"),
    ("RESTIC_FROM_REPOSITORY", "s3:other-host/other-bucket"),
    ("RESTIC_FROM_PASSWORD", "other-from-password"),
];

#[test]
fn exec_and_env_hand_over_exactly_the_set() {
    let env = TestEnv::new();
    env.minio_set(
        "",
        "s3:http://127.0.0.1:9/bucket",
        "minio-access",
        "minio-secret-key",
        "a repository password",
    );
    let mut cmd = env.cmd();
    for (var, value) in CALLERS {
        cmd.env(var, value);
    }
    let out = cmd
        .env("KEPT_SETTING", "kept")
        .env("RESTIC_KEY_HINT", "0123abcd")
        .args(["credential", "exec", "--", "env"])
        .assert()
        .success();
    let child_env = stdout(&out);
    for (var, value) in CALLERS {
        assert!(
            !child_env.contains(&format!("{var}=")),
            "{var} reached the child"
        );
        assert!(
            !child_env.contains(value),
            "the value of {var} reached the child"
        );
    }
    assert!(child_env.contains("KEPT_SETTING=kept\n"));
    assert!(
        child_env.contains("RESTIC_KEY_HINT=0123abcd\n"),
        "a key hint is the caller's choice"
    );
    assert!(child_env.contains("RESTIC_PASSWORD=a repository password\n"));

    let mut cmd = env.cmd();
    for (var, value) in CALLERS {
        cmd.env(var, value);
    }
    let out = cmd.args(["credential", "env"]).assert().success();
    let text = stdout(&out);
    let unset = text.lines().next().unwrap();
    // `env` unsets what would override the set in the caller's shell, but not cio's own
    // etcd login: that is the caller's, in that shell already, and its next cio needs it.
    let help = stdout(&env.cio(&["credential", "env", "--help"]).success()).replace('\n', " ");
    for (var, value) in CALLERS {
        let own = var.starts_with("CIO_ETCD_");
        assert_eq!(
            unset.split(' ').any(|w| w == *var),
            !own,
            "env unsets {var} (or not) wrongly: {unset}"
        );
        assert!(!text.contains(value), "env printed the value of {var}");
    }
    // The help names every variable it unsets.
    for var in unset.split(' ').skip(1) {
        assert!(help.contains(var), "env --help does not name {var}");
    }
    assert!(help.contains(
        "cio's own CIO_ETCD_USER and CIO_ETCD_PASSWORD are left as they are: they were in that shell already, and the next cio command needs them (exec removes them from its command's environment)."
    ), "{help}");
}

/// `eval "$(cio credential env)"` keeps the shell's etcd login: the next cio command in that
/// shell still logs in (here: still sees CIO_ETCD_USER and CIO_ETCD_PASSWORD).
#[test]
fn env_in_a_shell_keeps_the_callers_etcd_login() {
    let env = TestEnv::new();
    env.minio_set(
        "",
        "s3:http://127.0.0.1:9/bucket",
        "minio-access",
        "minio-secret-key",
        "a repository password",
    );
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let out = env.shell(
        "sh",
        &format!(
            "export CIO_ETCD_USER=backup CIO_ETCD_PASSWORD=etcd-pass AWS_PROFILE=other\n\
             eval \"$('{}' credential env)\" || exit 9\n\
             echo \"user=${{CIO_ETCD_USER-unset}} password=${{CIO_ETCD_PASSWORD-unset}} profile=${{AWS_PROFILE-unset}}\"",
            cio.display()
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "user=backup password=etcd-pass profile=unset\n"
    );
}

#[test]
fn show_reveal_on_a_terminal_warns_as_env_does() {
    let env = TestEnv::new();
    env.minio_set(
        "",
        "s3:http://127.0.0.1:9/bucket",
        "minio-access",
        "minio-secret-key",
        "a repository password",
    );
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let screen = |args: &str| {
        let mut child = on_terminal(
            &env,
            env.dir.path(),
            &format!("{} credential {args}", cio.display()),
        );
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(child.wait().unwrap().success(), "{text}");
        text
    };
    let warning = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Warning: "))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no warning on the terminal: {text}"))
    };
    let shown = screen("show cio_minio_secret_key --reveal");
    assert!(shown.contains("minio-secret-key"));
    let env_warning = warning(&screen("env"));
    assert_eq!(warning(&shown), env_warning);
    assert_eq!(
        env_warning.trim_end(),
        "Warning: these are secrets in plain text on your terminal; use eval \"$(cio credential env ...)\" or cio credential exec -- COMMAND instead"
    );
    // Into a pipe (a script), no warning.
    env.cio(&["credential", "show", "cio_minio_secret_key", "--reveal"])
        .success()
        .stdout("minio-secret-key\n")
        .stderr("");
}

#[test]
fn a_callers_region_does_not_reach_restic_and_validate_agrees() {
    const ACCESS: &str = "region-access";
    const SECRET: &str = "region-secret-key-0123";
    const PASSWORD: &str = "region repository password";
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("regions");
    let repo = s3.restic_init("regions", "node1", PASSWORD);
    let env = TestEnv::new();
    env.minio_set("", &repo, ACCESS, SECRET, PASSWORD);
    let in_caller = |args: &[&str]| {
        env.cmd()
            .env("AWS_DEFAULT_REGION", "eu-central-1")
            .env("AWS_REGION", "eu-central-1")
            .args(args)
            .assert()
    };
    in_caller(&["credential", "validate"]).success();
    let out = in_caller(&[
        "credential",
        "exec",
        "--",
        "sh",
        "-c",
        "echo ${AWS_DEFAULT_REGION-none} ${AWS_REGION-none}",
    ])
    .success();
    assert_eq!(stdout(&out), "none none\n");
    let cache = env.dir.path().join("restic-cache");
    in_caller(&[
        "credential",
        "exec",
        "--",
        "restic",
        "--cache-dir",
        cache.to_str().unwrap(),
        "snapshots",
    ])
    .success();
}
