//! HTTP/1.1 exchanges with the endpoint over [`connect`](super::connect) connections, kept
//! open and reused (several at once when requests overlap), all bounded by the set's deadline.
//!
//! hyper's connection-level client is used (not a pooled client) because validate must choose
//! the request form itself: absolute form through a forwarding proxy, origin form otherwise.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, timeout_at};

use super::client_cert;
use super::connect::{ConnectError, Target, connect, proxy_authorization, speaks_tls};
use super::proxy::{Proxy, ProxyEnv};

/// The largest answer body read (a listing of 1,000 keys is about 300 KiB).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why an exchange did not produce an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpFailure {
    Connect(ConnectError),
    /// The deadline passed while waiting for the answer.
    Timeout,
    /// Bytes came back, but not HTTP.
    NotHttp(String),
    /// The connection broke during the exchange.
    Broken(String),
}

/// In words, for messages that name the endpoint themselves (the escrow object's): what went
/// wrong, with the system's reason. Nothing secret: a proxy is named as
/// [`super::proxy::Proxy::described`] gives it.
impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::Connect(ConnectError::Dns { why }) => {
                write!(f, "its host name does not resolve ({why})")
            }
            HttpFailure::Connect(ConnectError::Unreachable { why }) => {
                write!(f, "nothing accepts connections there ({why})")
            }
            HttpFailure::Connect(ConnectError::Timeout { stage }) => {
                write!(f, "no progress in time while {stage}")
            }
            HttpFailure::Connect(
                ConnectError::Tls { why, .. } | ConnectError::TlsAlert { why },
            ) => {
                write!(f, "TLS failed ({why})")
            }
            HttpFailure::Connect(ConnectError::TlsName(wrong)) => {
                write!(f, "TLS failed ({wrong})")
            }
            HttpFailure::Connect(ConnectError::TlsUnspoken(u)) => write!(f, "TLS failed ({u})"),
            HttpFailure::Connect(ConnectError::TlsMissingIssuer(missing)) => {
                write!(f, "TLS failed ({missing})")
            }
            HttpFailure::Connect(ConnectError::TlsStaleAnchor(stale)) => {
                write!(f, "TLS failed ({stale})")
            }
            HttpFailure::Connect(ConnectError::TlsClosed { why }) => {
                write!(
                    f,
                    "the connection was closed during the TLS handshake ({why})"
                )
            }
            HttpFailure::Connect(ConnectError::TlsClientCert) => write!(
                f,
                "TLS failed: the server refused the handshake after asking for a client certificate, and none is presented"
            ),
            HttpFailure::Connect(ConnectError::TlsPort) => {
                write!(f, "it speaks TLS, not plain HTTP (use https:// in the URL)")
            }
            HttpFailure::Connect(ConnectError::PlainHttp) => write!(
                f,
                "it answers in plain HTTP, not TLS (use http:// in the URL, or enable TLS on the server)"
            ),
            HttpFailure::Connect(ConnectError::ProxyCgi) => write!(
                f,
                "HTTP_PROXY is set in a CGI environment (REQUEST_METHOD is set), where it is refused"
            ),
            HttpFailure::Connect(ConnectError::Proxy { proxy, why }) => {
                write!(f, "the proxy at {proxy} failed: {why}")
            }
            HttpFailure::Timeout => write!(f, "no answer in time"),
            HttpFailure::NotHttp(why) => write!(f, "it does not answer HTTP ({why})"),
            HttpFailure::Broken(why) => write!(f, "the connection broke ({why})"),
        }
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The forwarding proxy the request went through, if any: a non-S3 answer may be its own.
    pub via: Option<Proxy>,
}

impl Reply {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why an exchange got no answer: `Closed` when the connection was closed before the request
/// was answered (a kept connection may be replaced), `Failed` otherwise.
enum Unanswered {
    Closed(HttpFailure),
    Failed(HttpFailure),
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    proxy: Option<Proxy>,
    /// The server asked for a client certificate in the TLS handshake.
    client_cert_asked: bool,
}

/// Connections to one endpoint.
pub(crate) struct Http {
    pub target: Target,
    tls: Arc<rustls::ClientConfig>,
    proxies: ProxyEnv,
    pub deadline: Instant,
    idle: Mutex<Vec<Idle>>,
}

impl Http {
    pub(crate) fn new(
        target: Target,
        tls: Arc<rustls::ClientConfig>,
        proxies: ProxyEnv,
        deadline: Instant,
    ) -> Http {
        Http {
            target,
            tls,
            proxies,
            deadline,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The same settings for another endpoint (no connection is shared).
    pub(crate) fn retarget(&self, target: Target) -> Http {
        Http::new(
            target,
            self.tls.clone(),
            self.proxies.clone(),
            self.deadline,
        )
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(conn) = idle.pop() {
            if !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    async fn open(&self) -> Result<Idle, HttpFailure> {
        let connected = connect(&self.target, &self.tls, &self.proxies, self.deadline)
            .await
            .map_err(HttpFailure::Connect)?;
        let handshake = hyper::client::conn::http1::handshake(TokioIo::new(connected.io));
        let (sender, connection) = match timeout_at(self.deadline, handshake).await {
            Err(_) => return Err(HttpFailure::Timeout),
            Ok(Err(e)) => return Err(HttpFailure::Broken(e.to_string())),
            Ok(Ok(pair)) => pair,
        };
        // Drives the connection; ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Idle {
            sender,
            proxy: connected.forward_proxy,
            client_cert_asked: connected.client_cert_asked,
        })
    }

    /// Sends `method path_and_query` with `headers` and `body`; the `Host` header and the
    /// request form are added here. A kept connection the server closed meanwhile is replaced
    /// once, as Go's transport does, before anything of the request was answered.
    pub(crate) async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, HttpFailure> {
        if let Some(conn) = self.take_idle() {
            match self
                .exchange(conn, method, path_and_query, headers, body.clone())
                .await
            {
                Err(Unanswered::Closed(_)) => {}
                Err(Unanswered::Failed(f)) => return Err(f),
                Ok(reply) => return Ok(reply),
            }
        }
        let conn = self.open().await?;
        let direct = conn.proxy.is_none();
        let failure = match self
            .exchange(conn, method, path_and_query, headers, body)
            .await
        {
            Ok(reply) => return Ok(reply),
            Err(Unanswered::Closed(f) | Unanswered::Failed(f)) => f,
        };
        // An http:// endpoint that reset the request or answered it with bytes that are no
        // HTTP (a TLS alert record) may be a TLS port: restic says only "connection reset".
        if direct
            && self.target.scheme == "http"
            && matches!(failure, HttpFailure::Broken(_) | HttpFailure::NotHttp(_))
            && speaks_tls(&self.target, &self.tls, &self.proxies, self.deadline).await
        {
            return Err(HttpFailure::Connect(ConnectError::TlsPort));
        }
        Err(failure)
    }

    async fn exchange(
        &self,
        mut conn: Idle,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Reply, Unanswered> {
        let uri = match &conn.proxy {
            Some(_) => format!("http://{}{path_and_query}", self.target.host_header()),
            None => path_and_query.to_string(),
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", self.target.host_header())
            .header(
                "user-agent",
                concat!("cio-credential/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(auth) = conn.proxy.as_ref().and_then(proxy_authorization) {
            builder = builder.header("proxy-authorization", auth);
        }
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let request = builder.body(Full::new(body)).map_err(|e| {
            Unanswered::Failed(HttpFailure::Broken(format!(
                "the request cannot be built: {e}"
            )))
        })?;
        let asked = conn.client_cert_asked;
        let exchange = async {
            conn.sender.ready().await.map_err(|e| {
                refused_client(&e, asked)
                    .unwrap_or_else(|| Unanswered::Closed(HttpFailure::Broken(e.to_string())))
            })?;
            let response = conn.sender.send_request(request).await.map_err(|e| {
                if let Some(refused) = refused_client(&e, asked) {
                    refused
                } else if e.is_parse() || e.is_parse_status() {
                    Unanswered::Failed(HttpFailure::NotHttp(e.to_string()))
                } else if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                    Unanswered::Closed(HttpFailure::Broken(e.to_string()))
                } else {
                    Unanswered::Failed(HttpFailure::Broken(e.to_string()))
                }
            })?;
            let (parts, body) = response.into_parts();
            let limited = http_body_util::Limited::new(body, MAX_BODY);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| Unanswered::Failed(HttpFailure::Broken(e.to_string())))?
                .to_bytes();
            Ok::<_, Unanswered>((parts, bytes))
        };
        let (parts, body) = match timeout_at(self.deadline, exchange).await {
            Err(_) => return Err(Unanswered::Failed(HttpFailure::Timeout)),
            Ok(r) => r.map_err(|e| blame_forward_proxy(conn.proxy.as_ref(), &self.target, e))?,
        };
        let via = conn.proxy.clone();
        // A connection the server announces it closes is not kept.
        let closing = parts
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.eq_ignore_ascii_case("close")));
        if !closing {
            let mut idle = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            idle.push(conn);
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            via,
        })
    }
}

/// A TLS 1.3 server's refusal of a client without a certificate, which comes after the
/// handshake, at the first read ([`super::client_cert`]): `asked` says whether the server
/// asked for one in the handshake.
fn refused_client(e: &hyper::Error, asked: bool) -> Option<Unanswered> {
    let refused = match client_cert::alert_in(e) {
        Some(alert) => client_cert::refused(alert, asked),
        // The alert unread: the connection closed under the request's write.
        None => asked && client_cert::closed_in(e),
    };
    refused.then_some(Unanswered::Failed(HttpFailure::Connect(
        ConnectError::TlsClientCert,
    )))
}

/// Through a forwarding proxy, the connection and the answer are the proxy's: a connection it
/// closes or an answer that is not HTTP is its failure (code `proxy`), never the storage's
/// (a proxy that cannot reach the storage answers with an HTTP error of its own).
fn blame_forward_proxy(proxy: Option<&Proxy>, target: &Target, e: Unanswered) -> Unanswered {
    let Some(proxy) = proxy else {
        return e;
    };
    let address = target.address();
    let blame = |f: HttpFailure| match f {
        HttpFailure::Broken(why) => HttpFailure::Connect(ConnectError::Proxy {
            proxy: proxy.described(),
            why: format!(
                "the connection to it broke before it answered the request for {address} ({why})"
            ),
        }),
        HttpFailure::NotHttp(why) => HttpFailure::Connect(ConnectError::Proxy {
            proxy: proxy.described(),
            why: format!(
                "it did not answer the request for {address} with HTTP ({why}); check that it is an HTTP proxy and its port"
            ),
        }),
        other => other,
    };
    match e {
        Unanswered::Closed(f) => Unanswered::Closed(blame(f)),
        Unanswered::Failed(f) => Unanswered::Failed(blame(f)),
    }
}
