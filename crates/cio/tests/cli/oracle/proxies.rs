//! The oracle's proxy cases and the proxies they go through, started once for the table:
//! tinyproxy (HTTP; CONNECT to 443 only, as Debian configures it, and one open to any port)
//! and microsocks (SOCKS5, open and with a login), plus a port where no proxy listens.
//!
//! restic never proxies loopback addresses, so these cases name the server by a host name
//! that resolves to one ([`loopback_name`]); through SOCKS5 the proxy resolves it.

use std::os::fd::OwnedFd;

use testkit::proxy::{Tinyproxy, loopback_name};
use testkit::socks::Microsocks;
use testkit::tls::TlsFront;

use super::harness::*;

const SOCKS_USER: &str = "oracle";
const SOCKS_PASSWORD: &str = "socks-password";

/// The proxies of the table.
pub(super) struct Proxies {
    host: String,
    proxy: Tinyproxy,
    open_proxy: Tinyproxy,
    socks: Microsocks,
    socks_login: Microsocks,
    _dead_guard: OwnedFd,
    dead_port: u16,
}

impl Proxies {
    pub(super) fn start() -> Proxies {
        let (dead_guard, dead_port) = testkit::refusing_port();
        Proxies {
            host: loopback_name(),
            proxy: Tinyproxy::start(&[443]),
            open_proxy: Tinyproxy::start(&[]),
            socks: Microsocks::start(None),
            socks_login: Microsocks::start(Some((SOCKS_USER, SOCKS_PASSWORD))),
            _dead_guard: dead_guard,
            dead_port,
        }
    }

    /// The cases, against the S3 server on port `p` and the self-signed TLS front before it.
    pub(super) fn cases(&self, p: u16, self_signed: &TlsFront) -> Vec<Case> {
        let host = &self.host;
        let http = format!("s3:http://{host}:{p}/backups/c1");
        let https = format!("s3:https://{host}:{}/backups/c1", self_signed.port());
        let dead_proxy = format!("http://127.0.0.1:{}", self.dead_port);
        let dead_socks = format!("socks5://127.0.0.1:{}", self.dead_port);
        vec![
            case("http through the proxy", &http, CAT, Expect::Works)
                .env("HTTP_PROXY", &self.proxy.url()),
            case(
                "http through the proxy, lower case",
                &http,
                CAT,
                Expect::Works,
            )
            .env("http_proxy", &self.proxy.url()),
            case(
                "https tunnel refused by the proxy",
                &https,
                CAT,
                fails("proxy", "Access violation"),
            )
            .env("HTTPS_PROXY", &self.proxy.url()),
            case(
                "https through a CONNECT tunnel, CA trusted",
                &https,
                CAT,
                Expect::Works,
            )
            .env("HTTPS_PROXY", &self.open_proxy.url())
            .cacert(self_signed),
            case("proxy down", &http, CAT, fails("proxy", "proxyconnect"))
                .env("HTTP_PROXY", &dead_proxy),
            case(
                "proxy down, loopback address never proxied",
                &format!("s3:http://127.0.0.1:{p}/backups/c1"),
                CAT,
                Expect::Works,
            )
            .env("HTTP_PROXY", &dead_proxy),
            case(
                "proxy down, NO_PROXY names the host",
                &http,
                CAT,
                Expect::Works,
            )
            .env("HTTP_PROXY", &dead_proxy)
            .env("NO_PROXY", host),
            case(
                "HTTPS_PROXY only: plain http goes direct",
                &http,
                CAT,
                Expect::Works,
            )
            .env("HTTPS_PROXY", &dead_proxy),
            case(
                "a proxy value restic cannot read is dropped: direct",
                &http,
                CAT,
                Expect::Works,
            )
            .env(
                "HTTP_PROXY",
                &format!("http://user:p%zz@127.0.0.1:{}", self.dead_port),
            ),
            // SOCKS5 (microsocks): the proxy is handed the host name and resolves it.
            case("http through a SOCKS5 proxy", &http, CAT, Expect::Works)
                .env("HTTP_PROXY", &self.socks.url()),
            case(
                "https through a SOCKS5 proxy, CA trusted",
                &https,
                CAT,
                Expect::Works,
            )
            .env("HTTPS_PROXY", &self.socks.url().replace("socks5", "SOCKS5"))
            .cacert(self_signed),
            case(
                "SOCKS5 proxy with its user and password",
                &http,
                CAT,
                Expect::Works,
            )
            .env(
                "HTTP_PROXY",
                &self.socks_login.url_with(SOCKS_USER, SOCKS_PASSWORD),
            ),
            case(
                "SOCKS5 proxy, wrong password",
                &http,
                CAT,
                fails("proxy", "username/password authentication failed"),
            )
            .env(
                "HTTP_PROXY",
                &self.socks_login.url_with(SOCKS_USER, "not-the-password"),
            ),
            case(
                "SOCKS5 proxy wants a login, the URL has none",
                &http,
                CAT,
                fails("proxy", "no acceptable authentication methods"),
            )
            .env("HTTP_PROXY", &self.socks_login.url()),
            case(
                "SOCKS5 proxy: nothing listens on the storage port",
                &format!("s3:http://{host}:{}/backups/c1", self.dead_port),
                CAT,
                fails("proxy", "connection refused"),
            )
            .env("HTTP_PROXY", &self.socks.url()),
            case(
                "SOCKS5 proxy down",
                &http,
                CAT,
                fails("proxy", "proxyconnect"),
            )
            .env("HTTP_PROXY", &dead_socks),
            case(
                "SOCKS5 proxy down, NO_PROXY names the host",
                &http,
                CAT,
                Expect::Works,
            )
            .env("HTTP_PROXY", &dead_socks)
            .env("NO_PROXY", host),
            case(
                "socks5h is no proxy scheme of restic's",
                &http,
                CAT,
                fails("proxy", "lookup socks5h"),
            )
            .env(
                "HTTP_PROXY",
                &self.socks.url().replace("socks5://", "socks5h://"),
            ),
        ]
    }

    /// `text` with the proxies' ports and the host name replaced by stable names.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (port, name) in [
            (self.proxy.port(), "[PROXY]"),
            (self.open_proxy.port(), "[OPEN-PROXY]"),
            (self.socks.port(), "[SOCKS]"),
            (self.socks_login.port(), "[SOCKS-LOGIN]"),
            (self.dead_port, "[DEAD]"),
        ] {
            t = t.replace(&format!(":{port}"), &format!(":{name}"));
        }
        t.replace(&self.host, "[HOST]")
    }
}
