//! The terminal prompt: without echo, twice for passwords. A real pseudo-terminal from
//! util-linux's `script` stands in for the administrator's terminal.

use crate::terminal::on_terminal;
use crate::util::*;

/// Runs `cio credential create NAME` on a terminal, typing each of `lines` at a prompt.
/// Returns everything the terminal showed, and whether cio succeeded.
fn type_at_prompts(env: &TestEnv, name: &str, lines: &[&str]) -> (String, bool) {
    let prompts: Vec<String> = (0..lines.len())
        .map(|i| {
            if i == 0 {
                format!("Value for {name}: ")
            } else {
                format!("Value for {name} (again): ")
            }
        })
        .collect();
    let answers: Vec<(&str, &str)> = prompts
        .iter()
        .map(String::as_str)
        .zip(lines.iter().copied())
        .collect();
    on_terminal(env, &format!("credential create {name}"), &[], &answers)
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
