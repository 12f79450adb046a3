//! moto's server mode (PyPI `moto[server]`): an S3 (and IAM) server that enforces IAM
//! policies per action once its authentication is switched on. s3s-fs cannot: it grants its
//! one key everything.
//!
//! What moto enforces, checked against its source (moto 5.x, `moto/core/authorization.py`,
//! `moto/s3/responses.py`, `moto/iam/access_control.py`):
//! - after `POST /moto-api/reset-auth 0`, every request must be signed (SigV4 in the
//!   `Authorization` header; presigned URLs are not evaluated) by a key of an IAM user, and the
//!   user's policies must allow the action on the resource (`arn:aws:s3:::bucket` or
//!   `arn:aws:s3:::bucket/key`);
//! - actions are named after the request: `HEAD /bucket` is `s3:HeadBucket` (AWS checks
//!   `s3:ListBucket` for it), `GET /bucket` `s3:ListBucket`, `GET /bucket?location`
//!   `s3:GetBucketLocation`, objects `s3:GetObject` (also `HEAD`), `s3:PutObject`,
//!   `s3:DeleteObject`;
//! - policy conditions are not evaluated for S3 requests (a statement with a `Condition`
//!   denies): the tests' policies use resources only;
//! - the signing region is never enforced, and buckets may live in any AWS region;
//! - its signature check recomputes the signature from the *decoded* query string, so it
//!   refuses every correctly signed listing whose prefix holds a `/` (`prefix=a%2Fkeys%2F`):
//!   restic's, boto3's and validate's alike. The server is therefore started with that one
//!   check switched off (`IAMRequestBase.check_signature`); the key lookup
//!   (`InvalidAccessKeyId`) and the policy evaluation stay. Signatures are checked by s3s-fs in
//!   the other tests.
//!
//! Setup requests are sent before authentication is switched on, with a placeholder
//! `Authorization` header whose credential scope tells moto which service is meant.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_binary, wait_for_port};

/// A running `moto_server`, killed when dropped.
pub struct Moto {
    child: Child,
    port: u16,
    _log: tempfile::NamedTempFile,
}

/// `(status, body)` of one request to 127.0.0.1:`port`.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to moto");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("writing to moto");
    stream.write_all(body.as_bytes()).expect("writing to moto");
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .expect("reading moto's answer");
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("moto answers HTTP");
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A placeholder signature: moto reads only the service and region from it until
/// authentication is switched on.
fn placeholder_auth(service: &str, region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

/// Percent-encodes a form value.
fn form(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no {open} in {text}"));
    let end = text[start..]
        .find(close)
        .map(|i| i + start)
        .unwrap_or_else(|| panic!("no {close} in {text}"));
    &text[start..end]
}

impl Moto {
    /// Starts moto's server on a free loopback port, authentication off.
    pub fn start() -> Moto {
        // Fails loudly when moto is missing, with the install step.
        require_binary("moto_server");
        let python = require_binary("python3");
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("a log file for moto");
        let script = format!(
            "import moto.iam.access_control as a\n\
             a.IAMRequestBase.check_signature = lambda self: None\n\
             from moto.server import main\n\
             main(['-H', '127.0.0.1', '-p', '{port}'])\n"
        );
        let child = crate::spawn_server(
            Command::new(python)
                .arg("-c")
                .arg(script)
                .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
                .stdin(Stdio::null())
                .stdout(log.reopen().expect("moto log"))
                .stderr(log.reopen().expect("moto log")),
        )
        .expect("starting moto_server");
        wait_for_port(port, Duration::from_secs(30));
        Moto {
            child,
            port,
            _log: log,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn iam(&self, params: &[(&str, &str)]) -> String {
        let body = params
            .iter()
            .map(|(k, v)| format!("{k}={}", form(v)))
            .chain(["Version=2010-05-08".to_string()])
            .collect::<Vec<_>>()
            .join("&");
        let auth = placeholder_auth("iam", "us-east-1");
        let (status, reply) = request(
            self.port,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &auth),
            ],
            &body,
        );
        assert_eq!(status, 200, "moto IAM {params:?}: {reply}");
        reply
    }

    /// Creates an IAM user whose only (inline) policy is `policy` (JSON); returns its access
    /// key and secret key.
    pub fn user(&self, name: &str, policy: &str) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "restic"),
            ("PolicyDocument", policy),
        ]);
        let reply = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        (
            between(&reply, "<AccessKeyId>", "</AccessKeyId>").to_string(),
            between(&reply, "<SecretAccessKey>", "</SecretAccessKey>").to_string(),
        )
    }

    /// Creates `bucket` in `region` (AWS region names only).
    pub fn create_bucket(&self, bucket: &str, region: &str) {
        let auth = placeholder_auth("s3", region);
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        let (status, reply) = request(
            self.port,
            "PUT",
            &format!("/{bucket}"),
            &[("Authorization", &auth)],
            &body,
        );
        assert_eq!(status, 200, "moto create bucket {bucket}: {reply}");
    }

    /// Switches authentication on: from now on every request is checked.
    pub fn enforce(&self) {
        let (status, reply) = request(self.port, "POST", "/moto-api/reset-auth", &[], "0");
        assert_eq!(status, 200, "moto reset-auth: {reply}");
    }

    /// The restic repository URL of `bucket[/prefix]` on this server.
    pub fn repo_url(&self, bucket: &str, prefix: &str) -> String {
        crate::s3::loopback_repo_url(self.port, bucket, prefix)
    }
}

/// An IAM policy allowing `actions` on `resources`.
pub fn policy(statements: &[(&[&str], &[&str])]) -> String {
    let quote = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let statements: Vec<String> = statements
        .iter()
        .map(|(actions, resources)| {
            format!(
                r#"{{"Effect":"Allow","Action":[{}],"Resource":[{}]}}"#,
                quote(actions),
                quote(resources)
            )
        })
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
