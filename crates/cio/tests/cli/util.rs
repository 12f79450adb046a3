//! The isolated test environment.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

/// A temporary HOME with a store and key of its own; nothing of the host's configuration.
pub struct TestEnv {
    pub dir: TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let env = TestEnv {
            dir: tempfile::tempdir().expect("a temporary folder"),
        };
        // An empty node configuration: the host's /etc/cio/cio.toml must not leak in.
        std::fs::write(env.config(), "").expect("writing the test's cio.toml");
        // Others may not change a cio.toml cio trusts, whatever the umask of the test run.
        std::fs::set_permissions(
            env.config(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("setting the mode of the test's cio.toml");
        env
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("cio.toml")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("state/credentials.db")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("etc/credential.key")
    }

    /// `cio` with a cleared environment: HOME, PATH, and this env's store and key.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("cio").expect("the cio binary is built");
        cmd.env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CIO_STORE", self.store())
            .env("CIO_KEY_FILE", self.key())
            .env("CIO_CONFIG", self.config())
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs `cio ARGS` with empty standard input.
    pub fn cio(&self, args: &[&str]) -> Assert {
        self.cmd().args(args).write_stdin("").assert()
    }

    /// Runs `cio ARGS` with `input` on standard input.
    pub fn cio_in(&self, args: &[&str], input: impl Into<Vec<u8>>) -> Assert {
        self.cmd().args(args).write_stdin(input.into()).assert()
    }

    /// `cio credential create NAME` with the value on standard input (no warning, no argv).
    pub fn create(&self, name: &str, value: &str) {
        self.cio_in(&["credential", "create", name], value)
            .success();
    }

    /// The value of NAME as `show --reveal` prints it.
    pub fn reveal(&self, name: &str) -> String {
        let out = self
            .cio(&["credential", "show", name, "--reveal"])
            .success();
        let text = stdout(&out);
        text.strip_suffix('\n').unwrap_or(&text).to_string()
    }

    /// Every file under the store's and key's folders with its bytes: to prove that a
    /// refused command changed nothing.
    pub fn snapshot_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        for dir in [self.dir.path().join("state"), self.dir.path().join("etc")] {
            collect(&dir, &mut files);
        }
        files.sort();
        files
    }

    /// A complete MinIO set (`alt` is "" or "_alt") pointing at `repo`.
    pub fn minio_set(&self, alt: &str, repo: &str, access: &str, secret: &str, password: &str) {
        self.create(&format!("cio_minio{alt}_backup_repo"), repo);
        self.create(&format!("cio_minio{alt}_access_key"), access);
        self.create(&format!("cio_minio{alt}_secret_key"), secret);
        self.create(&format!("cio_minio{alt}_backup_password"), password);
    }

    /// Starts `cio credential create NAME VALUE` in the background, for the concurrency tests.
    /// `own_store`: with this env's CIO_STORE / CIO_KEY_FILE; else cio.toml decides.
    pub fn spawn_create(&self, name: &str, value: &str, own_store: bool) -> std::process::Child {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cio"));
        cmd.env_clear()
            .env("HOME", self.home())
            .env("CIO_CONFIG", self.config())
            .args(["credential", "create", name, value])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if own_store {
            cmd.env("CIO_STORE", self.store())
                .env("CIO_KEY_FILE", self.key());
        }
        cmd.spawn().expect("starting cio")
    }

    /// Runs `script` with `shell` (`sh`, `bash`) in this environment.
    pub fn shell(&self, shell: &str, script: &str) -> std::process::Output {
        std::process::Command::new(shell)
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CIO_STORE", self.store())
            .env("CIO_KEY_FILE", self.key())
            .env("CIO_CONFIG", self.config())
            .output()
            .expect("the shell runs")
    }

    /// Runs a sh script in this environment and returns its standard output.
    pub fn cmd_sh(&self, script: &str) -> String {
        let out = self.shell("sh", script);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.to_string_lossy().ends_with("-shm") {
            // SQLite's shared-memory index of the WAL: every reader rewrites it, and it holds
            // no data (it is rebuilt from the WAL when lost).
            continue;
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

/// Waits for every child and asserts that each succeeded.
pub fn wait_all(children: Vec<std::process::Child>) {
    for child in children {
        let out = child.wait_with_output().expect("waiting for cio");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn stdout(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

pub fn stderr(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Replaces the test's temporary folder and timestamps, for snapshots.
pub fn redact(env: &TestEnv, text: &str) -> String {
    let tmp = env.dir.path().display().to_string();
    let text = text.replace(&tmp, "[TMP]");
    let re = regex_lite::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").expect("a valid regex");
    re.replace_all(&text, "[TIME]").into_owned()
}

/// The reference page's AWS example values.
pub const REF_REPO: &str = "s3:https://s3.amazonaws.com/backup-123";
pub const REF_ACCESS: &str = "AKIAYHD623GGZX7VDFMJ";
pub const REF_SECRET: &str = "0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd";
