//! Step 3: can the repository's host be reached? DNS, TCP connect, TLS and a first HTTP answer
//! are tried one after the other, so each failure gets its own code:
//! `dns`, `unreachable`, `tls`, `timeout`, `not_http`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{Check, Step};
use crate::catalog::RepoUrl;

/// Host name (without brackets for IPv6) and port of the repository's endpoint.
pub(super) fn host_port(repo: &RepoUrl) -> (String, u16) {
    let default = if repo.scheme == "https" { 443 } else { 80 };
    let host = repo.host.as_str();
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port or [v6]
        let (addr, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (addr.to_string(), port);
    }
    match host.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(default)),
        None => (host.to_string(), default),
    }
}

/// Runs the endpoint step before `deadline`.
pub(super) async fn check(repo: &RepoUrl, deadline: Instant, budget: Duration) -> Check {
    let (host, port) = host_port(repo);
    let secs = budget.as_secs_f64();
    let fail = Check::fail;

    let addrs: Vec<SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((host.as_str(), port))).await {
            Err(_) => {
                return fail(
                    Step::Endpoint,
                    "timeout",
                    format!("resolving {host} took longer than {secs}s; check the DNS servers"),
                );
            }
            Ok(Err(e)) => {
                return fail(
                    Step::Endpoint,
                    "dns",
                    format!(
                        "cannot resolve {host} ({e}); check the host name in the repository URL"
                    ),
                );
            }
            Ok(Ok(addrs)) => addrs.collect(),
        };

    let mut last_error = None;
    let mut stream = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                return fail(
                    Step::Endpoint,
                    "timeout",
                    format!(
                        "connecting to {host}:{port} took longer than {secs}s; a firewall may drop the packets"
                    ),
                );
            }
            Ok(Err(e)) => last_error = Some(e),
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
        }
    }
    let Some(stream) = stream else {
        let why = last_error.map_or_else(|| "no address".to_string(), |e| e.to_string());
        return fail(
            Step::Endpoint,
            "unreachable",
            format!(
                "nothing accepts connections on {host}:{port} ({why}); check the host and port, and that the server runs"
            ),
        );
    };

    if repo.scheme == "https" {
        let connector = match tls_connector() {
            Ok(c) => c,
            Err(e) => {
                return fail(Step::Endpoint, "tls", format!("cannot set up TLS: {e}"));
            }
        };
        let server_name = match rustls::pki_types::ServerName::try_from(host.clone()) {
            Ok(n) => n,
            Err(e) => {
                return fail(
                    Step::Endpoint,
                    "tls",
                    format!("'{host}' is not a name TLS can check ({e})"),
                );
            }
        };
        let tls = match timeout_at(deadline, connector.connect(server_name, stream)).await {
            Err(_) => {
                return fail(
                    Step::Endpoint,
                    "timeout",
                    format!(
                        "{host}:{port} accepted the connection but did not complete TLS within {secs}s"
                    ),
                );
            }
            Ok(Err(e)) => {
                return fail(
                    Step::Endpoint,
                    "tls",
                    format!(
                        "TLS with {host}:{port} failed ({e}); check the server's certificate, or use s3:http:// if the endpoint speaks plain HTTP"
                    ),
                );
            }
            Ok(Ok(tls)) => tls,
        };
        http_answer(tls, &host, port, deadline, secs).await
    } else {
        http_answer(stream, &host, port, deadline, secs).await
    }
}

/// Sends one `HEAD /` and waits for the first bytes of an HTTP answer.
async fn http_answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    port: u16,
    deadline: Instant,
    secs: f64,
) -> Check {
    let request = format!("HEAD / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let mut first = [0u8; 5];
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        stream.read_exact(&mut first).await
    };
    match timeout_at(deadline, exchange).await {
        Err(_) => Check::fail(
            Step::Endpoint,
            "timeout",
            format!(
                "{host}:{port} accepted the connection but sent no answer within {secs}s; check that it is an S3 server and not overloaded"
            ),
        ),
        Ok(Err(e)) => Check::fail(
            Step::Endpoint,
            "not_http",
            format!(
                "{host}:{port} closed the connection without an HTTP answer ({e}); check the port and the scheme (http/https)"
            ),
        ),
        Ok(Ok(_)) if &first == b"HTTP/" => {
            Check::ok(Step::Endpoint, format!("{host}:{port} answers HTTP"))
        }
        Ok(Ok(_)) => Check::fail(
            Step::Endpoint,
            "not_http",
            format!(
                "{host}:{port} does not answer HTTP; check the port and the scheme (http/https)"
            ),
        ),
    }
}

/// A TLS client that trusts the system's certificate authorities.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RepoUrl {
        RepoUrl::parse(s).expect("a valid URL")
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            host_port(&url("s3:s3.amazonaws.com/bucket")),
            ("s3.amazonaws.com".into(), 443)
        );
        assert_eq!(
            host_port(&url("s3:http://127.0.0.1:9000/bucket")),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(
            host_port(&url("s3:http://minio/bucket")),
            ("minio".into(), 80)
        );
        assert_eq!(
            host_port(&url("s3:https://[::1]:9000/bucket")),
            ("::1".into(), 9000)
        );
    }
}
