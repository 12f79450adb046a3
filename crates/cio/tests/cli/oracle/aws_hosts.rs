//! An AWS host as restic reads it: exactly as typed (minio-go compares `url.Host` case, port
//! and all). Seen through an HTTP proxy that records every request's absolute URL and the
//! region its signature names, and answers as S3 would (the bucket's location, then
//! AccessDenied): restic (under `cio credential exec`) and validate must ask the same hosts,
//! signing for the same regions.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::util::*;

/// `(host as the request URL names it, region its signature names)` of every request.
type Seen = Arc<Mutex<BTreeSet<(String, String)>>>;

/// Starts the recording proxy; returns its URL and what it saw.
fn recorder() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line);
            }
            let Some(target) = head.first().and_then(|l| l.split(' ').nth(1)) else {
                continue;
            };
            let host = target
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default()
                .to_string();
            let region = head
                .iter()
                .find_map(|h| h.split_once("Credential=")?.1.split('/').nth(2))
                .unwrap_or_default()
                .to_string();
            let location = target.contains("?location");
            record.lock().unwrap().insert((host, region));
            let (status, body) = if location {
                (
                    "200 OK",
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">eu-central-1</LocationConstraint>",
                )
            } else {
                (
                    "403 Forbidden",
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// Hosts that are not Amazon S3 to restic although cio, lowercasing them or dropping the
/// port, read them as AWS hosts (signing for the region the name gives, or moving requests
/// to a regional host): restic asks the bucket's location there and signs for it.
#[test]
fn an_aws_host_is_read_as_typed_by_validate_as_by_restic() {
    for repo in [
        "s3:http://S3.EU-WEST-1.AMAZONAWS.COM/bkt",
        "s3:http://s3.eu-west-1.amazonaws.com:80/bkt",
        "s3:http://S3.AMAZONAWS.COM/bkt",
    ] {
        let env = TestEnv::new();
        env.create("cio_aws_backup_repo", repo);
        env.create("cio_aws_access_key", REF_ACCESS);
        env.create("cio_aws_secret_key", REF_SECRET);
        env.create("cio_aws_backup_password", "a long repository password");
        let run = |args: &[&str]| {
            let (proxy, seen) = recorder();
            env.cmd()
                .args(args)
                .env("HTTP_PROXY", &proxy)
                .write_stdin("")
                .timeout(std::time::Duration::from_secs(60))
                .assert()
                .failure();
            seen.lock().unwrap().clone()
        };
        let restic = run(&[
            "credential",
            "exec",
            "--provider",
            "aws",
            "--",
            "restic",
            "--no-cache",
            "cat",
            "config",
        ]);
        let validate = run(&["credential", "validate", "--provider", "aws"]);
        assert!(!restic.is_empty(), "{repo}");
        assert_eq!(validate, restic, "{repo}");
    }
}
