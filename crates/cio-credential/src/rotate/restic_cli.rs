//! Driving the real `restic` binary for a repository's keys: `key list --json`, `key add`,
//! `key remove`.
//!
//! Rules:
//! - restic gets the set's credentials the way `exec` hands them over (the same variables,
//!   the same cleared ones, the set's CA certificate as `SSL_CERT_FILE=/dev/fd/N`), so a
//!   repository URL means to the rotation exactly what it means to the backups; the
//!   password of each run goes into `RESTIC_PASSWORD`, never argv;
//! - a new password reaches `restic key add` through `--new-password-file /dev/fd/N`, where
//!   N is a memfd (memory only, never a file on disk) kept open only while that child runs;
//! - standard input is closed, so restic never prompts;
//! - keys are named by the ids `restic key list --json` prints (restic's short form, 8 hex
//!   digits, which every restic key command accepts as a prefix);
//! - restic's own messages are quoted in errors only after every secret of the set has been
//!   replaced by `****`, and only their last lines.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use crate::ca_file::hand_ca;
use crate::handoff::{Handoff, cleared};
use crate::secret::SecretValue;

/// Variables restic reads that a run sets itself or that would change which key it opens.
const OWN: &[&str] = &["RESTIC_PASSWORD", "RESTIC_KEY_HINT"];

/// The variables of a set whose values are secret (scrubbed out of restic's messages).
const SECRET_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "RESTIC_PASSWORD",
];

/// How many of restic's last lines of error output an error quotes.
const QUOTED_LINES: usize = 3;

/// One key of the repository, as `restic key list --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct KeyInfo {
    /// restic's short id of the key file (8 hex digits).
    pub id: String,
    /// Whether this run's password opened this key.
    pub current: bool,
}

/// Why a restic run did not succeed. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResticFailure {
    /// There is no `restic` on PATH.
    NotInstalled,
    /// The password opens none of the repository's keys.
    WrongPassword,
    /// Another restic holds a lock restic needs; restic's message (scrubbed).
    Locked(String),
    /// Nothing at the URL is a restic repository.
    NoRepository,
    /// The endpoint could not be reached (connection, DNS, TLS); restic's message (scrubbed).
    Unreachable(String),
    /// Anything else: what was run, and restic's last lines (scrubbed).
    Failed {
        command: &'static str,
        detail: String,
    },
}

/// The restic binary, bound to one set's repository and keys.
pub(crate) struct Restic {
    program: OsString,
    /// The set's variables for restic, without `RESTIC_PASSWORD` (each run sets its own).
    vars: Vec<(&'static str, SecretValue)>,
    /// The set's CA certificate (PEM), handed to each run as `SSL_CERT_FILE`.
    cacert: Option<SecretValue>,
    /// Every secret that could appear in restic's messages, to scrub them out.
    secrets: Vec<SecretValue>,
}

impl std::fmt::Debug for Restic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vars: Vec<_> = self.vars.iter().map(|(k, _)| *k).collect();
        write!(f, "Restic({:?}, {vars:?})", self.program)
    }
}

impl Restic {
    /// `restic` from PATH with the set's variables and CA certificate (the password variable
    /// is dropped: each run names the password it uses).
    pub fn new(handoff: Handoff) -> Restic {
        let mut kept = Vec::with_capacity(handoff.vars.len());
        let mut secrets = Vec::new();
        for (var, value) in handoff.vars {
            if SECRET_VARS.contains(&var) {
                secrets.push(SecretValue::new(value.expose().to_string()));
            }
            if !OWN.contains(&var) {
                kept.push((var, value));
            }
        }
        Restic {
            program: OsString::from("restic"),
            vars: kept,
            cacert: handoff.cacert,
            secrets,
        }
    }

    /// The caller's certificate file each run's CA bundle leaves out, and why.
    pub fn caller_ca_unread(&self) -> Option<(&'static str, crate::CaFileUnread)> {
        crate::ca_file::caller_ca_unread(self.cacert.as_ref().map(|pem| pem.expose()))
    }

    /// Adds a value to scrub out of restic's messages (the passwords of the rotation).
    pub fn scrub(&mut self, secret: &SecretValue) {
        self.secrets
            .push(SecretValue::new(secret.expose().to_string()));
    }

    /// The keys of the repository, opened with `password` (trying the key `hint` first).
    pub fn key_list(
        &self,
        password: &SecretValue,
        hint: Option<&str>,
    ) -> Result<Vec<KeyInfo>, ResticFailure> {
        let out = self.run("key list", &["key", "list", "--json"], password, hint, None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        // The JSON array is the whole output; restic 0.14 prints nothing else with --json.
        let json = text
            .lines()
            .find(|l| l.trim_start().starts_with('['))
            .unwrap_or("");
        serde_json::from_str(json).map_err(|e| ResticFailure::Failed {
            command: "key list",
            detail: format!("its output is not the JSON list of keys restic 0.14 prints ({e})"),
        })
    }

    /// Adds a key for `new_password`, opening the repository with `password`.
    pub fn key_add(
        &self,
        password: &SecretValue,
        hint: Option<&str>,
        new_password: &SecretValue,
    ) -> Result<(), ResticFailure> {
        let file = memfd_holding(new_password).map_err(|e| ResticFailure::Failed {
            command: "key add",
            detail: format!("the new password cannot be handed over in memory: {e}"),
        })?;
        let path = format!("/dev/fd/{}", file.as_raw_fd());
        let args = ["key", "add", "--new-password-file", path.as_str()];
        let result = self.run("key add", &args, password, hint, Some(&file));
        drop(file);
        result.map(|_| ())
    }

    /// Removes the key `id`, opening the repository with `password` (which must open
    /// another key: restic refuses to remove the key in use).
    pub fn key_remove(
        &self,
        password: &SecretValue,
        hint: Option<&str>,
        id: &str,
    ) -> Result<(), ResticFailure> {
        self.run("key remove", &["key", "remove", id], password, hint, None)
            .map(|_| ())
    }

    fn run(
        &self,
        command: &'static str,
        args: &[&str],
        password: &SecretValue,
        hint: Option<&str>,
        inherited: Option<&std::fs::File>,
    ) -> Result<Output, ResticFailure> {
        let started = |e: std::io::Error| ResticFailure::Failed {
            command,
            detail: format!("restic could not be started: {e}"),
        };
        // restic writes into memfds, not pipes: when cio is killed, a pipe would break and
        // kill restic (SIGPIPE) before it removes its lock from the repository.
        let stdout = Capture::new("cio-restic-stdout").map_err(started)?;
        let stderr = Capture::new("cio-restic-stderr").map_err(started)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .args(["--no-cache", "--quiet"])
            .stdin(Stdio::null())
            .stdout(stdout.stdio().map_err(started)?)
            .stderr(stderr.stdio().map_err(started)?);
        for var in cleared().chain(OWN.iter().copied()) {
            cmd.env_remove(var);
        }
        for (var, value) in &self.vars {
            cmd.env(var, value.expose());
        }
        cmd.env("RESTIC_PASSWORD", password.expose());
        // Kept open until restic has run: the child inherits it as /dev/fd/N.
        let _ca =
            hand_ca(&mut cmd, self.cacert.as_ref().map(|pem| pem.expose())).map_err(started)?;
        if let Some(hint) = hint {
            cmd.env("RESTIC_KEY_HINT", hint);
        }
        // The memfd stays open in this process until the child has read it; the child
        // inherits it (it was made without close-on-exec) under the same number.
        let _keep_open = inherited;
        let status = match cmd.status() {
            Ok(status) => status,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ResticFailure::NotInstalled);
            }
            Err(e) => return Err(started(e)),
        };
        let out = Output {
            status,
            stdout: stdout.read().map_err(started)?,
            stderr: stderr.read().map_err(started)?,
        };
        if out.status.success() {
            return Ok(out);
        }
        let stderr = self.scrubbed(&out.stderr);
        Err(classify(command, &stderr))
    }

    /// restic's error output with every secret of the set replaced by `****`.
    fn scrubbed(&self, bytes: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for secret in &self.secrets {
            let s = secret.expose();
            if !s.is_empty() {
                text = text.replace(s, "****");
            }
        }
        text
    }
}

/// What a failed run's (scrubbed) error output means.
fn classify(command: &'static str, stderr: &str) -> ResticFailure {
    if stderr.contains("wrong password or no key found") {
        return ResticFailure::WrongPassword;
    }
    let detail = last_lines(stderr);
    // restic asks "Is there a repository ...?" after any failure to read the config: only a
    // missing object means there is none; a refused connection or a DNS failure is the
    // endpoint's.
    if stderr.contains("Is there a repository at the following location?") {
        let missing = [
            "The specified key does not exist",
            "NoSuchKey",
            "no such file",
        ]
        .iter()
        .any(|m| stderr.contains(m));
        if missing {
            return ResticFailure::NoRepository;
        }
        let unreachable = [
            "dial tcp",
            "connection refused",
            "no such host",
            "i/o timeout",
            "context deadline exceeded",
            "certificate",
        ]
        .iter()
        .any(|m| stderr.contains(m));
        if unreachable {
            return ResticFailure::Unreachable(detail);
        }
    }
    if stderr.contains("unable to create lock in backend") {
        return ResticFailure::Locked(detail);
    }
    ResticFailure::Failed { command, detail }
}

/// The last few non-empty lines, joined with "; ", for a one-line error.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(QUOTED_LINES);
    let joined = lines[start..].join("; ");
    if joined.is_empty() {
        "restic printed no reason".to_string()
    } else {
        joined
    }
}

/// Where one of restic's outputs goes: a memfd, read back after restic exits.
struct Capture(std::fs::File);

impl Capture {
    fn new(name: &str) -> std::io::Result<Capture> {
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
        Ok(Capture(std::fs::File::from(fd)))
    }

    fn stdio(&self) -> std::io::Result<Stdio> {
        Ok(Stdio::from(self.0.try_clone()?))
    }

    fn read(mut self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        self.0.rewind()?;
        let mut bytes = Vec::new();
        self.0.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// A memfd holding `value` and nothing else, inheritable by children (no close-on-exec).
/// Written by hand rather than with a temporary file: a memfd never reaches a disk.
fn memfd_holding(value: &SecretValue) -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create("cio-new-password", rustix::fs::MemfdFlags::empty())?;
    let mut file = std::fs::File::from(fd);
    file.write_all(value.expose().as_bytes())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        assert_eq!(
            classify("key list", "Fatal: wrong password or no key found\n"),
            ResticFailure::WrongPassword
        );
        assert_eq!(
            classify(
                "key list",
                "Fatal: unable to open config file: Stat: The specified key does not exist.\nIs there a repository at the following location?\ns3:http://127.0.0.1:9/b\n"
            ),
            ResticFailure::NoRepository
        );
        // restic 0.14 asks the same question after a refused connection.
        assert_eq!(
            classify(
                "key list",
                "Fatal: unable to open config file: Stat: Get \"http://127.0.0.1:9/b/?location=\": dial tcp 127.0.0.1:9: connect: connection refused\nIs there a repository at the following location?\ns3:http://127.0.0.1:9/b\n"
            ),
            ResticFailure::Unreachable(
                "Fatal: unable to open config file: Stat: Get \"http://127.0.0.1:9/b/?location=\": dial tcp 127.0.0.1:9: connect: connection refused; Is there a repository at the following location?; s3:http://127.0.0.1:9/b".into()
            )
        );
        assert!(matches!(
            classify(
                "key remove",
                "unable to create lock in backend: repository is already locked by PID 7 on node1 by root (UID 0, GID 0)\nlock was created at 2026-11-29 19:00:00 (1s ago)\n"
            ),
            ResticFailure::Locked(_)
        ));
        assert_eq!(
            classify("key add", "a\nb\nc\nd\n"),
            ResticFailure::Failed {
                command: "key add",
                detail: "b; c; d".into()
            }
        );
        assert_eq!(last_lines("\n  \n"), "restic printed no reason");
    }

    #[test]
    fn secrets_are_scrubbed_from_restic_messages() {
        let mut restic = Restic::new(Handoff {
            set: crate::catalog::SetId {
                provider: crate::catalog::Provider::Minio,
                role: crate::catalog::Role::Primary,
            },
            vars: vec![
                (
                    "RESTIC_REPOSITORY",
                    SecretValue::new("s3:http://h/b".into()),
                ),
                (
                    "AWS_ACCESS_KEY_ID",
                    SecretValue::new("AKIAEXAMPLEKEY".into()),
                ),
                ("RESTIC_PASSWORD", SecretValue::new("old-password".into())),
            ],
            cacert: None,
        });
        restic.scrub(&SecretValue::new("new-password".into()));
        let text = restic.scrubbed(b"key AKIAEXAMPLEKEY said new-password at s3:http://h/b");
        assert_eq!(text, "key **** said **** at s3:http://h/b");
        assert_eq!(restic.scrubbed(b"old-password"), "****");
        assert!(!format!("{restic:?}").contains("AKIA"));
        // The set's own password variable is never kept: each run sets its own.
        assert!(restic.vars.iter().all(|(k, _)| *k != "RESTIC_PASSWORD"));
    }

    #[test]
    fn a_memfd_holds_exactly_the_value() {
        let file = memfd_holding(&SecretValue::new("pa ss\n".into())).unwrap();
        let path = format!("/dev/fd/{}", file.as_raw_fd());
        assert_eq!(std::fs::read(path).unwrap(), b"pa ss\n");
    }
}
