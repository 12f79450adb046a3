//! The terminal prompt: without echo, twice for passwords. A real pseudo-terminal from
//! util-linux's `script` stands in for the administrator's terminal.

use std::io::{Read, Write};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Reads from `out` into `seen` until `text` appears (or panics after 10 s).
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
    // The prompt is printed just before echo is turned off: give it a moment.
    std::thread::sleep(Duration::from_millis(150));
}

/// Runs `cio credential create NAME` on a terminal, typing each of `lines` at a prompt.
/// Returns everything the terminal showed, and whether cio succeeded.
fn type_at_prompts(env: &TestEnv, name: &str, lines: &[&str]) -> (String, bool) {
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("'{}' credential create {name}", cio.display()),
            "/dev/null",
        ])
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux's script (Debian package bsdutils) runs cio on a terminal");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for (i, line) in lines.iter().enumerate() {
        let prompt = if i == 0 {
            format!("Value for {name}: ")
        } else {
            format!("Value for {name} (again): ")
        };
        wait_for(&mut stdout, &mut seen, &prompt);
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    drop(stdin);
    let status = child.wait().unwrap();
    (seen, status.success())
}

#[test]
fn a_password_is_asked_twice_without_echo() {
    let env = TestEnv::new();
    let (screen, ok) = type_at_prompts(
        &env,
        "cio_minio_backup_password",
        &["typed secret 1234", "typed secret 1234"],
    );
    assert!(ok, "{screen}");
    assert!(
        screen.contains("Succeed: Create credential: cio_minio_backup_password"),
        "{screen}"
    );
    assert!(
        !screen.contains("typed secret"),
        "the value was echoed: {screen}"
    );
    assert_eq!(env.reveal("cio_minio_backup_password"), "typed secret 1234");
}

#[test]
fn two_different_passwords_change_nothing() {
    let env = TestEnv::new();
    let (screen, ok) = type_at_prompts(
        &env,
        "cio_minio_backup_password",
        &["first typing 12345", "second typing 1234"],
    );
    assert!(!ok);
    assert!(
        screen.contains("the two values typed do not match"),
        "{screen}"
    );
    assert!(!env.store().exists(), "nothing was written");
}

#[test]
fn a_key_is_asked_once() {
    let env = TestEnv::new();
    let (screen, ok) = type_at_prompts(&env, "cio_minio_secret_key", &["typed-minio-secret"]);
    assert!(ok, "{screen}");
    assert!(!screen.contains("typed-minio-secret"), "{screen}");
    assert_eq!(env.reveal("cio_minio_secret_key"), "typed-minio-secret");
}
