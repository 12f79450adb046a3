//! A connection to the endpoint through a SOCKS5 proxy, as restic's Go transport opens one
//! (Go 1.19, the toolchain of Debian's restic 0.14: `net/http/transport.go`, `dialConn`, and
//! `net/http/socks_bundle.go`, Go's copy of `golang.org/x/net/internal/socks`).
//!
//! Rules (Go's):
//! - only the scheme `socks5` (any case) means SOCKS; `socks5h://` is no scheme Go knows (see
//!   `proxy::parse_proxy`);
//! - the endpoint is named to the proxy as the repository URL names it: an IP address as an
//!   address, a host name as a name (address type DOMAINNAME), which the proxy resolves; the
//!   endpoint's name is never resolved here;
//! - with `user:password` in the proxy URL (percent-decoded), "no authentication" and
//!   "username/password" (RFC 1929) are offered, and the proxy picks; without, only "no
//!   authentication";
//! - an `https://` endpoint gets its TLS inside the SOCKS connection (the caller's part);
//! - whatever fails here, the proxy says so or is at fault: every error is
//!   [`ConnectError::Proxy`], never the storage's.
//!
//! The protocol itself is tokio-socks's (the SOCKS client reqwest uses), which sends the same
//! messages as Go's: the method offer above, the same CONNECT request and address types.

use percent_encoding::percent_decode_str;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_socks::Error as SocksError;
use tokio_socks::tcp::Socks5Stream;
use zeroize::Zeroizing;

use super::connect::{ConnectError, Target};
use super::proxy::Proxy;

/// The user name and password of the proxy URL, percent-decoded, when RFC 1929 can carry
/// them (each 1 to 255 bytes).
///
/// Go offers "username/password" for any user information in the URL and fails only when the
/// proxy picks it with an empty (or overlong) name or password ("invalid username/password").
/// tokio-socks refuses such values before it connects, so they are not offered here: the proxy
/// then picks "no authentication" (both work) or refuses (both fail, with code `proxy`).
fn credentials(proxy: &Proxy) -> Option<(Zeroizing<String>, Zeroizing<String>)> {
    let userinfo = proxy.userinfo.as_deref()?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| Zeroizing::new(percent_decode_str(s).decode_utf8_lossy().into_owned());
    let (user, password) = (decode(user), decode(password));
    let fits = |s: &str| (1..=255).contains(&s.len());
    (fits(&user) && fits(&password)).then_some((user, password))
}

/// Asks the SOCKS5 proxy at the other end of `stream` for a connection to `target`; the
/// stream then carries the endpoint's bytes.
pub(crate) async fn connect(
    stream: TcpStream,
    target: &Target,
    proxy: &Proxy,
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let refused = |why: String| ConnectError::Proxy {
        proxy: proxy.described(),
        why,
    };
    let destination = (target.host.as_str(), target.port);
    let credentials = credentials(proxy);
    let handshake = async {
        match &credentials {
            Some((user, password)) => {
                Socks5Stream::connect_with_password_and_socket(
                    stream,
                    destination,
                    user.as_str(),
                    password.as_str(),
                )
                .await
            }
            None => Socks5Stream::connect_with_socket(stream, destination).await,
        }
    };
    match timeout_at(deadline, handshake).await {
        Err(_) => Err(refused(format!(
            "it opened no connection to {} in time",
            target.address()
        ))),
        Ok(Err(e)) => Err(refused(words(&e, &target.address(), credentials.is_some()))),
        Ok(Ok(s)) => Ok(s.into_inner()),
    }
}

/// A SOCKS failure in an administrator's words, with the proxy's own reply in brackets as Go
/// (and so restic) words it. `target` is `host:port`; `offered_password` says whether the
/// proxy URL's user name and password were offered.
fn words(e: &SocksError, target: &str, offered_password: bool) -> String {
    match e {
        SocksError::NoAcceptableAuthMethods | SocksError::AuthorizationRequired
            if !offered_password =>
        {
            "it wants a user name and password, and the proxy URL gives none (no acceptable authentication methods); put them in the URL: socks5://USER:PASSWORD@HOST:PORT".into()
        }
        SocksError::NoAcceptableAuthMethods => {
            "it accepts neither the user name and password of the proxy URL nor no authentication (no acceptable authentication methods)".into()
        }
        SocksError::PasswordAuthFailure(_) => {
            "it refused the user name and password of the proxy URL (username/password authentication failed)".into()
        }
        SocksError::GeneralSocksServerFailure => format!(
            "it could not connect to {target} (general SOCKS server failure); check that the name resolves and the port is open where the proxy runs"
        ),
        SocksError::ConnectionNotAllowedByRuleset => {
            format!("its rules do not allow a connection to {target} (connection not allowed by ruleset)")
        }
        SocksError::NetworkUnreachable => {
            format!("it cannot reach {target} (network unreachable)")
        }
        SocksError::HostUnreachable => format!("it cannot reach {target} (host unreachable)"),
        SocksError::ConnectionRefused => format!(
            "it says nothing accepts connections on {target} (connection refused); check the host and port, and that the server runs"
        ),
        SocksError::TtlExpired => format!("it cannot reach {target} (TTL expired)"),
        SocksError::CommandNotSupported => {
            "it does not open connections for clients (command not supported)".into()
        }
        SocksError::AddressTypeNotSupported => {
            format!("it does not accept the address {target} (address type not supported)")
        }
        SocksError::InvalidTargetAddress(why) => {
            format!("{target} cannot be named to a SOCKS5 proxy ({why})")
        }
        SocksError::Io(io) => format!("the connection to it failed ({io})"),
        other => format!("it did not answer as a SOCKS5 proxy does ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(userinfo: Option<&str>) -> Proxy {
        Proxy {
            scheme: "socks5".into(),
            variable: "HTTP_PROXY",
            host: "127.0.0.1".into(),
            port: "1080".into(),
            userinfo: userinfo.map(str::to_string),
            host_may_be_secret: false,
        }
    }

    fn plain(c: Option<(Zeroizing<String>, Zeroizing<String>)>) -> Option<(String, String)> {
        c.map(|(u, p)| (u.to_string(), p.to_string()))
    }

    #[test]
    fn credentials_are_percent_decoded_and_split_at_the_first_colon() {
        assert_eq!(
            plain(credentials(&proxy(Some("al%40ice:pa:ss%2Fw")))),
            Some(("al@ice".into(), "pa:ss/w".into()))
        );
        assert_eq!(plain(credentials(&proxy(None))), None);
        // Nothing RFC 1929 can carry: offered as no authentication only.
        assert_eq!(plain(credentials(&proxy(Some("alice")))), None);
        assert_eq!(plain(credentials(&proxy(Some(":pw")))), None);
        let long = format!("alice:{}", "x".repeat(256));
        assert_eq!(plain(credentials(&proxy(Some(&long)))), None);
    }

    #[test]
    fn failures_name_the_proxy_reply() {
        let t = "minio.lan:9000";
        assert_eq!(
            words(&SocksError::ConnectionRefused, t, false),
            "it says nothing accepts connections on minio.lan:9000 (connection refused); check the host and port, and that the server runs"
        );
        assert_eq!(
            words(&SocksError::NoAcceptableAuthMethods, t, false),
            "it wants a user name and password, and the proxy URL gives none (no acceptable authentication methods); put them in the URL: socks5://USER:PASSWORD@HOST:PORT"
        );
        assert_eq!(
            words(&SocksError::NoAcceptableAuthMethods, t, true),
            "it accepts neither the user name and password of the proxy URL nor no authentication (no acceptable authentication methods)"
        );
        assert_eq!(
            words(&SocksError::PasswordAuthFailure(1), t, true),
            "it refused the user name and password of the proxy URL (username/password authentication failed)"
        );
        assert_eq!(
            words(&SocksError::HostUnreachable, t, false),
            "it cannot reach minio.lan:9000 (host unreachable)"
        );
        assert_eq!(
            words(&SocksError::InvalidResponseVersion, t, false),
            "it did not answer as a SOCKS5 proxy does (Invalid response version)"
        );
    }
}
