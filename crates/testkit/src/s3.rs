//! A real S3 server for tests: `s3s-fs` on a free loopback port, in a temporary folder, with
//! one access key pair (it checks SigV4 signatures against it), killed when dropped. Plus the
//! real `restic` run against it, credentials in the environment only (never argv).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{free_port, require_binary, wait_for_port};

/// One run of the real `restic`: the repository and credentials in the environment (never
/// argv), plus `env` (proxy variables, `AWS_DEFAULT_REGION`, `RESTIC_KEY_HINT`, ...). `home` is
/// its HOME and cache folder.
pub fn run_restic(
    home: &Path,
    repo_url: &str,
    access_key: &str,
    secret_key: &str,
    password: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let restic = require_binary("restic");
    std::fs::create_dir_all(home).expect("a HOME for restic");
    Command::new(restic)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("RESTIC_CACHE_DIR", home.join("cache"))
        .env("RESTIC_REPOSITORY", repo_url)
        .env("RESTIC_PASSWORD", password)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running restic")
}

/// The restic repository URL of `bucket[/prefix]` on an S3 server at 127.0.0.1:`port`.
pub fn loopback_repo_url(port: u16, bucket: &str, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("s3:http://127.0.0.1:{port}/{bucket}")
    } else {
        format!("s3:http://127.0.0.1:{port}/{bucket}/{prefix}")
    }
}

/// A running `s3s-fs`.
pub struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
    access_key: String,
    secret_key: String,
}

impl S3Server {
    /// Starts `s3s-fs` that accepts only `access_key`/`secret_key`.
    pub fn start(access_key: &str, secret_key: &str) -> S3Server {
        let binary = require_binary("s3s-fs");
        let root = tempfile::tempdir().expect("a temporary folder for s3s-fs");
        let port = free_port();
        // s3s-fs takes its keys as flags only; these are throwaway test keys.
        let child = crate::spawn_server(
            Command::new(binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", access_key, "--secret-key", secret_key])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("starting s3s-fs");
        let server = S3Server {
            child,
            root,
            port,
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
        };
        wait_for_port(port, Duration::from_secs(10));
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The folder s3s-fs serves: one sub-folder per bucket.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates a bucket (s3s-fs maps a bucket to a folder under its root).
    pub fn create_bucket(&self, bucket: &str) -> PathBuf {
        let dir = self.root.path().join(bucket);
        std::fs::create_dir_all(&dir).expect("creating the bucket folder");
        dir
    }

    /// The restic repository URL of `bucket[/prefix]` on this server.
    pub fn repo_url(&self, bucket: &str, prefix: &str) -> String {
        loopback_repo_url(self.port, bucket, prefix)
    }

    /// Runs the real `restic` with `args` against `repo_url`, keys and password passed in the
    /// environment. Panics with restic's stderr when it fails.
    pub fn restic(&self, repo_url: &str, password: &str, args: &[&str]) -> Output {
        let home = self.root.path().join(".home");
        let out = run_restic(
            &home,
            repo_url,
            &self.access_key,
            &self.secret_key,
            password,
            &[],
            args,
        );
        assert!(
            out.status.success(),
            "restic {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `restic init` of `bucket[/prefix]`; returns the repository URL.
    pub fn restic_init(&self, bucket: &str, prefix: &str, password: &str) -> String {
        let url = self.repo_url(bucket, prefix);
        self.restic(&url, password, &["init"]);
        url
    }

    /// `restic backup` of `path` into `repo_url` (one new snapshot).
    pub fn restic_backup(&self, repo_url: &str, password: &str, path: &Path) {
        let path = path.to_str().expect("a UTF-8 test path");
        self.restic(repo_url, password, &["backup", "--no-cache", path]);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone; nothing else to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
