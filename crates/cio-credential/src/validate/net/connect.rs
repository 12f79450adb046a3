//! Opening a connection to the repository's endpoint the way restic's Go transport does:
//! directly, or through the proxy the environment names ([`ProxyEnv`]); over TLS for
//! `https://`. Each stage fails with its own [`ConnectError`], so the endpoint step can say
//! which one to fix.
//!
//! Rules (Go's `net/http.Transport`):
//! - an `https://` endpoint behind a proxy is reached through a `CONNECT host:port` tunnel;
//!   a plain `http://` endpoint is not tunnelled: requests go to the proxy in absolute form
//!   (`GET http://host:port/path`), which proxies allow on any port;
//! - a `Proxy-Authorization: Basic` header is sent when the proxy URL holds `user:password`;
//! - a `socks5://` proxy is asked for a connection to the endpoint ([`super::socks`]), for
//!   `http://` and `https://` endpoints alike; requests then go in origin form, as directly;
//! - every stage ends by the one deadline of the set.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::client_cert::{self, Asked};
use super::proxy::{Proxy, ProxyEnv, ProxyError};
use super::socks;
use super::tls::{MissingIssuer, StaleAnchor, Unspoken, WrongName};
use super::words::TlsFault;

/// A byte stream to the endpoint (plain, TLS, or tunnelled).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https` or `http`.
    pub scheme: String,
    /// Name or address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `host:port` as an administrator writes it.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    pub(crate) fn host_header(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            }
        } else {
            self.address()
        }
    }
}

/// The stage a connection failed at. Never holds a secret (proxy passwords are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The endpoint's name does not resolve.
    Dns { why: String },
    /// No address of the endpoint accepts a connection.
    Unreachable { why: String },
    /// The deadline passed; `stage` says during what.
    Timeout { stage: &'static str },
    /// The TLS handshake with the endpoint failed; `fault` says whose fault it is.
    Tls { why: String, fault: TlsFault },
    /// The endpoint's certificate is not valid for its host name.
    TlsName(WrongName),
    /// The server ended the TLS handshake with an alert before showing a certificate (no
    /// common cipher suite or version, or another refusal of the hello).
    TlsAlert { why: String },
    /// The server uses TLS that Go speaks and cio's TLS does not: validate cannot check it.
    TlsUnspoken(Unspoken),
    /// The server's certificate's issuer is neither sent nor stored (an intermediate CA the
    /// server leaves out, most likely).
    TlsMissingIssuer(MissingIssuer),
    /// The endpoint's chain ends only at trusted certificates out of their dates.
    TlsStaleAnchor(StaleAnchor),
    /// The server refused the TLS handshake (with an alert, or by closing the connection)
    /// after asking for a client certificate, or said it requires one: restic presents none.
    TlsClientCert,
    /// The connection was reset or closed during the TLS handshake: no certificate problem.
    TlsClosed { why: String },
    /// The server answered the TLS hello in plain HTTP (Go's test: a first record header of
    /// `HTTP/`, "server gave HTTP response to HTTPS client"): no certificate is involved.
    PlainHttp,
    /// An `http://` endpoint did not answer HTTP and answers a TLS hello: it speaks TLS.
    TlsPort,
    /// `HTTP_PROXY` is set in a CGI environment (`REQUEST_METHOD` set): Go refuses it
    /// whatever `NO_PROXY` says.
    ProxyCgi,
    /// The proxy could not be reached, or refused to open the tunnel.
    Proxy { proxy: String, why: String },
}

/// An open connection; `proxy` is set when requests must go in absolute form through it.
pub(crate) struct Connected {
    pub io: Box<dyn Io>,
    pub forward_proxy: Option<Proxy>,
    /// The endpoint asked for a client certificate in the TLS handshake (none was shown): a
    /// TLS 1.3 server that requires one refuses at the first read ([`super::client_cert`]).
    pub client_cert_asked: bool,
}

/// The `Proxy-Authorization` header for `proxy`, when its URL holds credentials.
pub(crate) fn proxy_authorization(proxy: &Proxy) -> Option<String> {
    let userinfo = proxy.userinfo.as_deref()?;
    // Go sends `username + ":" + password`, each unescaped; a user without a password still
    // gets the ':'.
    // The bytes as unescaped, UTF-8 or not (`%FF` is the byte 0xFF, as Go sends it).
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut pair = zeroize::Zeroizing::new(Vec::with_capacity(userinfo.len()));
    pair.extend(percent_encoding::percent_decode_str(user));
    pair.push(b':');
    pair.extend(percent_encoding::percent_decode_str(password));
    Some(format!("Basic {}", BASE64.encode(pair.as_slice())))
}

/// Opens a connection to `target` (see the module rules). A server that refuses the TLS
/// hello is asked what it speaks ([`super::probe`]), so that TLS cio does not speak is said
/// as such ([`ConnectError::TlsUnspoken`]).
pub(crate) async fn connect(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    proxies: &ProxyEnv,
    deadline: Instant,
) -> Result<Connected, ConnectError> {
    match open(target, tls, true, proxies, deadline).await {
        Err(ConnectError::TlsAlert { why }) => {
            let unspoken = match open(target, tls, false, proxies, deadline).await {
                Ok(raw) => super::probe::unspoken_suite(raw.io, &target.host, deadline).await,
                Err(_) => None,
            };
            Err(match unspoken {
                Some(u) => ConnectError::TlsUnspoken(u),
                // Refused by restic's hello too, or no answer: the handshake, not a certificate.
                None => ConnectError::Tls {
                    why,
                    fault: TlsFault::Handshake,
                },
            })
        }
        other => other,
    }
}

/// Whether the `http://` endpoint `target` speaks TLS: asked on a fresh connection with a TLS
/// hello ([`super::probe::answers_tls`]), directly or through a SOCKS proxy (a forwarding
/// HTTP proxy is not asked).
pub(crate) async fn speaks_tls(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    proxies: &ProxyEnv,
    deadline: Instant,
) -> bool {
    match open(target, tls, false, proxies, deadline).await {
        Ok(Connected {
            io,
            forward_proxy: None,
            ..
        }) => super::probe::answers_tls(io, &target.host, deadline).await,
        _ => false,
    }
}

/// [`connect`], with TLS to the target itself only with `target_tls` (a proxy's own TLS is
/// always made).
async fn open(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    target_tls: bool,
    proxies: &ProxyEnv,
    deadline: Instant,
) -> Result<Connected, ConnectError> {
    let proxy = proxies
        .proxy_for(&target.scheme, &target.host, target.port)
        .map_err(|e| match e {
            ProxyError::Cgi => ConnectError::ProxyCgi,
        })?;
    // The target's TLS records whether the server asks for a client certificate.
    let (target_config, asked) = client_cert::asking(tls);
    let to_target = |on, stream| to_target(on, stream, target, &target_config, &asked, deadline);
    let Some(proxy) = proxy else {
        let tcp = tcp(&target.host, target.port, deadline).await?;
        return Ok(Connected {
            io: to_target(target_tls, Box::new(tcp)).await?,
            forward_proxy: None,
            client_cert_asked: asked.was_asked(),
        });
    };
    let to_proxy = |e: ConnectError| {
        ConnectError::Proxy {
        proxy: proxy.described(),
        why: match e {
            // Go reads `socks5h://h:p` behind http://: an HTTP proxy on the host "socks5h".
            ConnectError::Dns { why } if proxy.host.eq_ignore_ascii_case("socks5h") => format!(
                "its name does not resolve ({why}): restic knows no socks5h:// proxies and reads the value as an HTTP proxy on the host 'socks5h'; use socks5://, with which the proxy resolves names too"
            ),
            ConnectError::Dns { why } => format!("its name does not resolve ({why})"),
            ConnectError::Unreachable { why } => format!("it accepts no connection ({why})"),
            ConnectError::Timeout { stage } => format!("no answer while {stage}"),
            ConnectError::Tls { why, .. } | ConnectError::TlsAlert { why } => {
                format!("TLS with it failed ({why})")
            }
            ConnectError::TlsName(wrong) => format!("TLS with it failed ({wrong})"),
            ConnectError::TlsUnspoken(u) => format!("TLS with it failed ({u})"),
            ConnectError::TlsStaleAnchor(stale) => format!("TLS with it failed ({stale})"),
            ConnectError::TlsMissingIssuer(missing) => format!("TLS with it failed ({missing})"),
            ConnectError::TlsPort => "it speaks TLS, not plain HTTP".to_string(),
            ConnectError::PlainHttp => {
                "it answers in plain HTTP, not TLS: write the proxy variable with http://"
                    .to_string()
            }
            ConnectError::TlsClosed { why } => {
                format!("it closed the connection during the TLS handshake with it ({why})")
            }
            ConnectError::TlsClientCert => "TLS with it failed (it refused the handshake after asking for a client certificate, and cio presents none)".to_string(),
            ConnectError::Proxy { why, .. } => why,
            ConnectError::ProxyCgi => ProxyError::Cgi.to_string(),
        },
    }
    };
    // The proxy said yes, then the connection it carries broke before TLS was up: the
    // proxy's doing (or the way beyond it), not a certificate problem.
    let carried = |e: ConnectError| match e {
        ConnectError::TlsClosed { why } => ConnectError::Proxy {
            proxy: proxy.described(),
            why: format!(
                "the connection it opened to {} was closed during the TLS handshake ({why})",
                target.address()
            ),
        },
        other => other,
    };
    let Some(port) = proxy.port_number() else {
        return Err(ConnectError::Proxy {
            proxy: proxy.described(),
            why: "its port is not a number from 0 to 65535, so it cannot be dialed (restic fails on it too)".into(),
        });
    };
    let tcp = tcp(&proxy.host, port, deadline).await.map_err(to_proxy)?;
    if proxy.scheme == "socks5" {
        let stream = socks::connect(tcp, target, &proxy, deadline).await?;
        return Ok(Connected {
            io: to_target(target_tls, Box::new(stream))
                .await
                .map_err(carried)?,
            forward_proxy: None,
            client_cert_asked: asked.was_asked(),
        });
    }
    let proxy_target = Target {
        scheme: proxy.scheme.clone(),
        host: proxy.host.clone(),
        port,
    };
    let stream = maybe_tls(tcp, &proxy_target, tls, None, deadline)
        .await
        .map_err(to_proxy)?;
    if target.scheme != "https" {
        return Ok(Connected {
            io: stream,
            forward_proxy: Some(proxy),
            client_cert_asked: false,
        });
    }
    let tunnel = tunnel(stream, target, &proxy, deadline).await?;
    Ok(Connected {
        io: to_target(target_tls, tunnel).await.map_err(carried)?,
        forward_proxy: None,
        client_cert_asked: asked.was_asked(),
    })
}

/// Resolves `host` as restic's Go resolver does ([`super::resolve`]) and connects to the first
/// address that accepts.
async fn tcp(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, ConnectError> {
    // Go dials an empty host (a proxy URL without one) on this machine.
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let addrs = super::resolve::resolve(host, port, deadline).await?;
    let mut last = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ConnectError::Timeout {
                    stage: "connecting",
                });
            }
            Ok(Err(e)) => last = Some(e),
            Ok(Ok(s)) => {
                // Requests are small and answered at once: send them without delay.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
        }
    }
    Err(ConnectError::Unreachable {
        why: last.map_or_else(|| "no address".to_string(), |e| e.to_string()),
    })
}

/// [`maybe_tls`] when `on`, else `stream` as it is.
async fn to_target(
    on: bool,
    stream: Box<dyn Io>,
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    asked: &Asked,
    deadline: Instant,
) -> Result<Box<dyn Io>, ConnectError> {
    if on {
        maybe_tls(stream, target, tls, Some(asked), deadline).await
    } else {
        Ok(Box::new(stream))
    }
}

/// Wraps `stream` in TLS when `target` is `https`; `asked`, when given, is the one `tls`
/// records a server's request for a client certificate in ([`client_cert::asking`]).
async fn maybe_tls<S: Io + 'static>(
    stream: S,
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    asked: Option<&Asked>,
    deadline: Instant,
) -> Result<Box<dyn Io>, ConnectError> {
    if target.scheme != "https" {
        return Ok(Box::new(stream));
    }
    let name = ServerName::try_from(target.host.clone()).map_err(|_| ConnectError::Tls {
        why: format!("'{}' is not a host name TLS can check", target.host),
        fault: TlsFault::Handshake,
    })?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let first = Arc::new(std::sync::Mutex::new(Vec::with_capacity(5)));
    let stream = Sniffed {
        inner: stream,
        first: first.clone(),
    };
    let answered_http = || first.lock().is_ok_and(|bytes| bytes.as_slice() == b"HTTP/");
    match timeout_at(deadline, connector.connect(name, stream)).await {
        Err(_) => Err(ConnectError::Timeout {
            stage: "completing TLS",
        }),
        Ok(Err(_)) if answered_http() => Err(ConnectError::PlainHttp),
        // Closed after asking for a client certificate: a TLS 1.2 server's refusal that came
        // while cio was still writing its last handshake messages (the alert unread).
        Ok(Err(e)) if asked.is_some_and(Asked::was_asked) && client_cert::closed(&e) => {
            Err(ConnectError::TlsClientCert)
        }
        // No rustls error inside: the connection itself was reset or closed.
        Ok(Err(e)) if e.get_ref().is_none_or(|i| !i.is::<rustls::Error>()) => {
            Err(ConnectError::TlsClosed { why: e.to_string() })
        }
        Ok(Err(e)) => {
            let rustls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            if let Some(stale) = rustls_error.and_then(super::tls::stale_anchor) {
                return Err(ConnectError::TlsStaleAnchor(stale.clone()));
            }
            if let Some(unspoken) = rustls_error.and_then(super::tls::unspoken) {
                return Err(ConnectError::TlsUnspoken(unspoken.clone()));
            }
            if let Some(missing) = rustls_error.and_then(super::tls::missing_issuer) {
                return Err(ConnectError::TlsMissingIssuer(missing.clone()));
            }
            if let Some(wrong) = rustls_error.and_then(super::tls::wrong_name) {
                return Err(ConnectError::TlsName(wrong.clone()));
            }
            let Some(rustls_error) = rustls_error else {
                return Err(ConnectError::TlsClosed { why: e.to_string() });
            };
            if let rustls::Error::AlertReceived(alert) = rustls_error
                && client_cert::refused(*alert, asked.is_some_and(Asked::was_asked))
            {
                return Err(ConnectError::TlsClientCert);
            }
            let (why, fault) = super::words::tls_failure(rustls_error, &target.host);
            Err(match rustls_error {
                rustls::Error::AlertReceived(
                    rustls::AlertDescription::HandshakeFailure
                    | rustls::AlertDescription::ProtocolVersion
                    | rustls::AlertDescription::InsufficientSecurity,
                ) => ConnectError::TlsAlert { why },
                _ => ConnectError::Tls { why, fault },
            })
        }
        Ok(Ok(s)) => Ok(Box::new(s)),
    }
}

/// A stream that keeps the first five bytes the server sends: the record header Go looks at
/// to tell a plain HTTP answer from a TLS one.
struct Sniffed<S> {
    inner: S,
    first: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && let Ok(mut first) = this.first.lock()
        {
            let wanted = 5usize.saturating_sub(first.len());
            first.extend(buf.filled()[before..].iter().take(wanted));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The longest proxy answer to a CONNECT that is read.
const MAX_CONNECT_REPLY: usize = 16 * 1024;

/// Asks the proxy for a tunnel to `target` (`CONNECT host:port`).
async fn tunnel(
    mut stream: Box<dyn Io>,
    target: &Target,
    proxy: &Proxy,
    deadline: Instant,
) -> Result<Box<dyn Io>, ConnectError> {
    let refused = |why: String| ConnectError::Proxy {
        proxy: proxy.described(),
        why,
    };
    let address = target.address();
    let mut request = format!("CONNECT {address} HTTP/1.1\r\nHost: {address}\r\n");
    if let Some(auth) = proxy_authorization(proxy) {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        // Read byte by byte up to the end of the answer's head: nothing of the tunnelled
        // stream may be consumed here.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < MAX_CONNECT_REPLY {
            if stream.read(&mut byte).await? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        Ok::<_, std::io::Error>(head)
    };
    let head = match timeout_at(deadline, exchange).await {
        Err(_) => return Err(refused("it opened no tunnel in time".into())),
        Ok(Err(e)) => return Err(refused(format!("the connection to it failed ({e})"))),
        Ok(Ok(h)) => h,
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(refused(
                "it did not answer the CONNECT request with HTTP".into(),
            ));
        }
    }
    match response.code {
        Some(200..=299) => Ok(stream),
        Some(code) => Err(refused(format!(
            "it refused the tunnel to {address}: HTTP {code} {}",
            response.reason.unwrap_or_default()
        ))),
        None => Err(refused("its answer has no status".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(proxy_url: &str) -> Option<Vec<u8>> {
        let env = ProxyEnv::from_lookup(|n| (n == "HTTP_PROXY").then(|| proxy_url.to_string()));
        let proxy = env.proxy_for("http", "minio.lan", 9000).unwrap().unwrap();
        let header = proxy_authorization(&proxy)?;
        Some(
            BASE64
                .decode(header.strip_prefix("Basic ").unwrap())
                .unwrap(),
        )
    }

    #[test]
    fn the_login_is_sent_as_the_bytes_it_unescapes_to() {
        assert_eq!(
            authorization("http://user:pa%20ss@127.0.0.1:3128").as_deref(),
            Some(&b"user:pa ss"[..])
        );
        // Not UTF-8: sent as the byte, as Go sends it (not as U+FFFD).
        assert_eq!(
            authorization("http://user:PaSs%FFW0rd@127.0.0.1:3128").as_deref(),
            Some(&b"user:PaSs\xffW0rd"[..])
        );
        assert_eq!(
            authorization("http://user@127.0.0.1:3128").as_deref(),
            Some(&b"user:"[..])
        );
        assert_eq!(authorization("http://127.0.0.1:3128"), None);
    }
}
