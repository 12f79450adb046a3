//! Answers restic retries: a server that says `503 SlowDown` once to each request, then
//! answers. restic (minio-go) retries and works, so validate must retry too and say ok; a
//! server that keeps saying it is the server's availability (code `unavailable`, endpoint
//! step), not the credentials'.
//!
//! The S3 server is the real s3s-fs. In front of it is a scripted responder, [`SlowDown`]: no
//! local server can be told to answer `SlowDown`, so this small reverse proxy answers it
//! itself (for the first request of each method and path, or for every request) and passes
//! every other request to s3s-fs unchanged (one request per connection).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cio_credential::{Status, Step, ValidateOptions, validate_set};
use common::{restic, values};
use testkit::s3::S3Server;

const ACCESS: &str = "retryaccess";
const SECRET: &str = "retry-secret-key-1";
const PASSWORD: &str = "retry repository password";

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// The scripted front: answers `503 SlowDown` to the first request of each method and path
/// (`always`: to every request), passes the others to `127.0.0.1:backend`.
struct SlowDown {
    port: u16,
    /// How many `SlowDown` answers were given.
    refused: Arc<AtomicUsize>,
}

impl SlowDown {
    fn start(backend: u16, always: bool) -> SlowDown {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let refused = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let counter = refused.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, counter) = (seen.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, backend, always, &seen, &counter);
                });
            }
        });
        SlowDown { port, refused }
    }
}

/// One request from `client`: answered `SlowDown`, or passed on with `Connection: close` (so
/// s3s-fs ends its answer by closing, and says so to the client).
fn serve(
    client: TcpStream,
    backend: u16,
    always: bool,
    seen: &Mutex<HashSet<String>>,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        if !(line.to_ascii_lowercase().starts_with("connection:")) {
            head.push_str(&line);
        }
        if end {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let key: String = request_line
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let first = seen.lock().expect("the seen set").insert(key);
    let mut client = client;
    if always || first {
        refused.fetch_add(1, Ordering::SeqCst);
        let body = if request_line.starts_with("HEAD ") {
            ""
        } else {
            SLOW_DOWN
        };
        write!(
            client,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", backend))?;
    let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&body)?;
    std::io::copy(&mut upstream, &mut client)?;
    Ok(())
}

fn options(secs: u64) -> ValidateOptions {
    ValidateOptions {
        timeout: Duration::from_secs(secs),
        ..ValidateOptions::default()
    }
}

#[test]
fn a_slow_down_answered_once_per_request_is_retried_as_restic_does() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    s3.restic_init("backups", "c1", PASSWORD);
    let front = SlowDown::start(s3.port(), false);
    let url = format!("s3:http://127.0.0.1:{}/backups/c1", front.port);

    let (ok, err) = restic(&url, ACCESS, SECRET, PASSWORD, &[], &["cat", "config"]);
    assert!(ok, "restic retries SlowDown and works: {err}");
    let after_restic = front.refused.load(Ordering::SeqCst);
    assert!(after_restic >= 1, "restic met SlowDown");

    let report = validate_set(&values(&url, ACCESS, SECRET, PASSWORD), &options(20));
    assert!(report.passed(), "{report:#?}");
    // validate's requests met SlowDown too (each of its first requests), and were retried.
    assert!(
        front.refused.load(Ordering::SeqCst) > after_restic,
        "validate's requests were answered SlowDown first"
    );
}

#[test]
fn a_server_that_keeps_answering_slow_down_is_unavailable_not_a_credentials_fault() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    let front = SlowDown::start(s3.port(), true);
    let url = format!("s3:http://127.0.0.1:{}/backups/c1", front.port);
    // restic keeps retrying such a server for minutes (minio-go, then its own retries): only
    // validate's verdict is checked here.
    let report = validate_set(&values(&url, ACCESS, SECRET, PASSWORD), &options(10));
    let failed = report
        .checks
        .iter()
        .find(|c| c.status == Status::Fail)
        .expect("a failed check");
    assert_eq!((failed.step, failed.code), (Step::Endpoint, "unavailable"));
    assert_eq!(
        failed.detail,
        format!(
            "127.0.0.1:{} answered HTTP 503 SlowDown when trying to read the bucket's region, and again each time validate retried as restic does: the server is overloaded or failing, which is no fault of the credentials; check the S3 server's health and load, then validate again",
            front.port
        )
    );
    // minio-go's 10 attempts, not fewer.
    assert_eq!(front.refused.load(Ordering::SeqCst), 10);
}
