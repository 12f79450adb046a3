//! A region gate in front of s3s-fs: answers as an S3 service configured with one region (as
//! MinIO with `MINIO_REGION`, or a provider's `nl-ams`) answers, and passes every request
//! signed for that region to s3s-fs unchanged.
//!
//! This is a scripted responder, written because no local S3 server enforces a signing
//! region: s3s-fs checks signatures in whatever region they name, moto never checks it.
//! Its replies are MinIO's: a request signed for another region gets
//! `400 AuthorizationHeaderMalformed` naming the right `<Region>`; `GET /bucket?location`
//! answers the region.
//!
//! One request per connection: the answer is passed back and both connections are closed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

/// A running gate; it stops with the test process.
pub struct RegionGate {
    port: u16,
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn error(region: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region is wrong; expecting '{region}'.</Message><Region>{region}</Region><RequestId>17B5B9C2F5F2E5A1</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nServer: MinIO\r\nX-Amz-Request-Id: 17B5B9C2F5F2E5A1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn location(region: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{region}</LocationConstraint>"
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nServer: MinIO\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(mut client: TcpStream, backend: u16, region: &str) -> Option<()> {
    let head = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    let signed_region = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .and_then(|l| l.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .map(str::to_string);
    if signed_region.as_deref() != Some(region) {
        client.write_all(error(region).as_bytes()).ok()?;
        return Some(());
    }
    let target = first.split_whitespace().nth(1).unwrap_or_default();
    if first.starts_with("GET ")
        && (target.ends_with("?location") || target.ends_with("?location="))
    {
        client.write_all(location(region).as_bytes()).ok()?;
        return Some(());
    }
    let length: usize = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).ok()?;
    // The connection header is never signed: ask s3s-fs to close after its answer.
    let mut forwarded: String = text
        .trim_end_matches("\r\n")
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(("127.0.0.1", backend)).ok()?;
    server.write_all(forwarded.as_bytes()).ok()?;
    server.write_all(&body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    client.write_all(&answer).ok()?;
    let _ = client.shutdown(Shutdown::Both);
    Some(())
}

impl RegionGate {
    /// Starts the gate for `region` in front of s3s-fs on `backend`.
    pub fn start(backend: u16, region: &str) -> RegionGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the region gate");
        let port = listener.local_addr().expect("the gate's address").port();
        let region = region.to_string();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let region = region.clone();
                thread::spawn(move || serve(client, backend, &region));
            }
        });
        RegionGate { port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
