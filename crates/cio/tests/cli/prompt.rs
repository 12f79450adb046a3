//! The terminal prompt: without echo, twice for passwords. A real pseudo-terminal from
//! util-linux's `script` stands in for the administrator's terminal.

use crate::terminal::{on_terminal, shell_on_terminal};
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

/// The terminal's settings as `stty -a` prints them after cio ended: whether echo, line
/// editing and the signal keys are on.
fn terminal_restored(screen: &str) -> bool {
    let settings = screen
        .rsplit_once("stty:")
        .map_or("", |(_, after)| after)
        .split_whitespace()
        .collect::<Vec<_>>();
    ["echo", "icanon", "isig"]
        .iter()
        .all(|flag| settings.contains(flag))
}

/// Ctrl-C at the prompt ends cio as Ctrl-C does (status 130), with the terminal as it was:
/// before, rpassword raised SIGINT with echo still off and the shell showed nothing typed.
#[test]
fn ctrl_c_at_the_prompt_leaves_the_terminal_as_it_was() {
    let env = TestEnv::new();
    let (screen, _) = on_terminal(
        &env,
        "credential create cio_minio_backup_password; echo \"cio ended: $?\"; echo stty:; stty -a",
        &[],
        &[("Value for cio_minio_backup_password: ", "\u{3}")],
    );
    assert!(screen.contains("cio ended: 130"), "{screen}");
    assert!(terminal_restored(&screen), "{screen}");
    assert!(!env.store().exists(), "nothing was written");
}

/// A kill from elsewhere (SIGTERM; `timeout --foreground` sends it, with cio still on the
/// terminal) while a secret is being typed: cio ends by that signal, terminal restored.
#[test]
fn a_kill_during_the_prompt_leaves_the_terminal_as_it_was() {
    let env = TestEnv::new();
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let (screen, _) = shell_on_terminal(
        &env,
        &format!(
            "timeout --foreground -s TERM 2 '{}' credential create cio_minio_backup_password; echo \"cio ended: $?\"; echo stty:; stty -a",
            cio.display()
        ),
        &[],
        &[],
    );
    assert!(
        screen.contains("Value for cio_minio_backup_password: "),
        "{screen}"
    );
    // timeout says 124 when the command it ran was ended by the signal it sent.
    assert!(screen.contains("cio ended: 124"), "{screen}");
    assert!(terminal_restored(&screen), "{screen}");
    assert!(!env.store().exists(), "nothing was written");
}

/// A cio put in the background at its prompt (`cio ... &` under job control) is stopped by
/// SIGTTOU when rpassword turns echo off. `kill` (SIGTERM) plus SIGCONT, what bash's
/// `kill %1` sends a stopped job, must end it: the handler leaves the terminal alone when
/// cio is not in its foreground (a tcsetattr from the background would stop it again, and
/// the terminal is the foreground job's).
#[test]
fn a_kill_ends_a_cio_stopped_in_the_background_at_its_prompt() {
    let env = TestEnv::new();
    let cio = assert_cmd::cargo::cargo_bin("cio");
    let (screen, _) = shell_on_terminal(
        &env,
        &format!(
            "set -m; '{}' credential create cio_minio_backup_password & sleep 1; \
             kill $!; kill -CONT $!; sleep 1; \
             if kill -0 $! 2>/dev/null; then echo \"cio still runs: $(ps -o stat= -p $!)\"; kill -9 $!; \
             else echo 'cio ended'; fi",
            cio.display()
        ),
        &[],
        &[],
    );
    assert!(screen.contains("cio ended"), "{screen}");
    assert!(!env.store().exists(), "nothing was written");
}
