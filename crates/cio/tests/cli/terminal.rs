//! Running cio on a terminal: a real pseudo-terminal from util-linux's `script` stands in
//! for the administrator's.

use std::io::{Read, Write};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::TestEnv;

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

/// Runs `cio ARGS` (`args` as one shell-quoted line) on a terminal in `env`, with the extra
/// environment `vars`, typing each answer after its prompt appears. Returns everything the
/// terminal showed, and whether cio succeeded.
pub fn on_terminal(
    env: &TestEnv,
    args: &str,
    vars: &[(&str, &str)],
    answers: &[(&str, &str)],
) -> (String, bool) {
    let cio = assert_cmd::cargo::cargo_bin("cio");
    shell_on_terminal(env, &format!("'{}' {args}", cio.display()), vars, answers)
}

/// [`on_terminal`] for a whole `sh -c` line (`script` runs its command so), which may run
/// cio and other commands; success is the line's.
pub fn shell_on_terminal(
    env: &TestEnv,
    line: &str,
    vars: &[(&str, &str)],
    answers: &[(&str, &str)],
) -> (String, bool) {
    let mut child = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CIO_STORE", env.store())
        .env("CIO_KEY_FILE", env.key())
        .env("CIO_CONFIG", env.config())
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux's script (Debian package bsdutils) runs cio on a terminal");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for (prompt, line) in answers {
        wait_for(&mut stdout, &mut seen, prompt);
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    // The rest of the session, unless cio waits for more input than was given (a prompt
    // too many): then it is stopped and the test fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        let _ = tx.send(rest);
    });
    let Ok(rest) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("cio still runs 30 s after the last answer; it showed: {seen:?}");
    };
    seen.push_str(&rest);
    drop(stdin);
    let status = child.wait().unwrap();
    (seen, status.success())
}
