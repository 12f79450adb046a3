//! Which proxy a request goes through, exactly as restic decides it: Go's
//! `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy, as vendored in Go 1.19, which
//! the Debian restic 0.14 is built with).
//!
//! Rules (Go's, kept here so that validate and restic take the same road):
//! - `HTTPS_PROXY` (else `https_proxy`) for `https://` endpoints, `HTTP_PROXY` (else
//!   `http_proxy`) for `http://` ones; `ALL_PROXY` is not read;
//! - a proxy value without a scheme means `http://`; `http`, `https` and `socks5` are known
//!   (in any case); any other value is read behind `http://`, so `socks5h://h:1080` names an
//!   HTTP proxy on the host `socks5h` (Go 1.19 has no `socks5h`); a value that is no URL even
//!   so is ignored (Go's `init` drops it without a word);
//! - `localhost` and loopback addresses are never proxied, whatever the variables say;
//! - `NO_PROXY` (else `no_proxy`) is a comma list of `*`, IP addresses, CIDR ranges and domain
//!   names, each optionally with `:port`; `example.com` matches itself and its sub-domains,
//!   `.example.com` and `*.example.com` only the sub-domains;
//! - with `REQUEST_METHOD` set (a CGI program), `HTTP_PROXY` is refused: the request fails.
//!
//! Written here rather than taken from ureq or reqwest because both read `ALL_PROXY` and match
//! `NO_PROXY` differently; this module is the one place the rules live, unit-tested case by case.

use std::net::IpAddr;

/// The proxy settings read from an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    http: Option<String>,
    https: Option<String>,
    no_proxy: String,
    cgi: bool,
}

/// A proxy to send a request through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http`, `https` or `socks5`.
    pub scheme: String,
    /// Host name or address of the proxy (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// `user:password` from the proxy URL (still percent-encoded): sent as
    /// `Proxy-Authorization: Basic` to an HTTP proxy, as RFC 1929 username/password to SOCKS5.
    pub userinfo: Option<String>,
}

impl Proxy {
    /// `host:port` of the proxy, for messages (never its user or password).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why no proxy could be chosen: the request fails, as Go's does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "HTTP_PROXY is set in a CGI environment (REQUEST_METHOD is set), where restic refuses it"
    )]
    Cgi,
}

impl ProxyEnv {
    /// The settings from this process's environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from `lookup` (a variable's value, `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .filter_map(|n| lookup(n))
                .find(|v| !v.is_empty())
        };
        ProxyEnv {
            http: any(["HTTP_PROXY", "http_proxy"]),
            https: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]).unwrap_or_default(),
            cgi: lookup("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        }
    }

    /// The proxy for a request to `host:port` over `scheme` (`http` or `https`); `Ok(None)`:
    /// connect directly. `host` is a name or an address (IPv6 without brackets).
    pub fn proxy_for(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<Option<Proxy>, ProxyError> {
        let value = match scheme {
            "https" => &self.https,
            _ => &self.http,
        };
        let Some(proxy) = value.as_deref().and_then(parse_proxy) else {
            return Ok(None);
        };
        if scheme != "https" && self.cgi {
            return Err(ProxyError::Cgi);
        }
        if !self.use_proxy(host, port) {
            return Ok(None);
        }
        Ok(Some(proxy))
    }

    /// Go's `useProxy`: false for localhost, loopback and whatever `NO_PROXY` matches.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host == "localhost" {
            return false;
        }
        let ip: Option<IpAddr> = host.parse().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        let port = port.to_string();
        for entry in self.no_proxy.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return false;
            }
            if let Some(cidr) = parse_cidr(&entry) {
                if ip.is_some_and(|ip| cidr.contains(ip)) {
                    return false;
                }
                continue;
            }
            let (entry_host, entry_port) = split_host_port(&entry).unwrap_or((entry.as_str(), ""));
            if entry_host.is_empty() {
                continue;
            }
            let port_matches = entry_port.is_empty() || entry_port == port;
            if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
                if ip == Some(entry_ip) && port_matches {
                    return false;
                }
                continue;
            }
            // Domains: "*.x" is ".x"; ".x" matches sub-domains only; "x" also matches x.
            let entry_host = entry_host.strip_prefix('*').unwrap_or(entry_host);
            let (suffix, match_host) = match entry_host.strip_prefix('.') {
                Some(_) => (entry_host.to_string(), false),
                None => (format!(".{entry_host}"), true),
            };
            if (host.ends_with(&suffix) || (match_host && host == suffix[1..])) && port_matches {
                return false;
            }
        }
        true
    }
}

/// Go's `net.SplitHostPort` for the forms NO_PROXY uses: `host:port`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    // More than one colon without brackets is an IPv6 address, not host:port.
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// An address range `ip/bits`.
struct Cidr {
    network: IpAddr,
    bits: u32,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        let mask = |len: u32, bits: u32| {
            if bits == 0 {
                0u128
            } else {
                u128::MAX << (len - bits)
            }
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask(32, self.bits);
                (u128::from(u32::from(n)) & m) == (u128::from(u32::from(a)) & m)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask(128, self.bits);
                (u128::from(n) & m) == (u128::from(a) & m)
            }
            _ => false,
        }
    }
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, bits) = s.split_once('/')?;
    let network: IpAddr = addr.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Cidr { network, bits })
}

/// The proxy schemes Go knows (httpproxy's `parseProxy`); `socks5h` is not one of them.
const KNOWN_SCHEMES: [&str; 3] = ["http", "https", "socks5"];

/// Go's `parseProxy`: the value as a URL when it is one with a scheme Go knows (compared
/// without case: `url.Parse` lowers it); otherwise the value behind `http://`, which reads
/// `socks5h://host:1080` as an HTTP proxy on the host `socks5h`, port 80 (restic then fails
/// to reach it, and so must validate); `None` when neither is a URL.
fn parse_proxy(value: &str) -> Option<Proxy> {
    parse_url(value)
        .filter(|p| KNOWN_SCHEMES.contains(&p.scheme.as_str()))
        .or_else(|| parse_url(&format!("http://{value}")))
}

/// The parts of `scheme://[userinfo@]host[:port][/...]` that `url.Parse` keeps and the
/// transport uses: a port is digits or nothing (`host:` means the scheme's default port).
fn parse_url(value: &str) -> Option<Proxy> {
    let (scheme, rest) = value.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    let default_port = match scheme.as_str() {
        "https" => 443,
        "socks5" => 1080,
        _ => 80,
    };
    let port = |p: &str| -> Option<u16> {
        if p.is_empty() {
            Some(default_port)
        } else if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => port(p)?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), port(p)?),
            None => (hostport.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(Proxy {
        scheme,
        host,
        port,
        userinfo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn via(e: &ProxyEnv, scheme: &str, host: &str, port: u16) -> Option<String> {
        e.proxy_for(scheme, host, port)
            .expect("a valid proxy")
            .map(|p| format!("{}://{}", p.scheme, p.address()))
    }

    #[test]
    fn the_scheme_chooses_the_variable_and_all_proxy_is_ignored() {
        let e = env(&[
            ("HTTP_PROXY", "proxy.example:3128"),
            ("HTTPS_PROXY", "http://secure.example:8080"),
            ("ALL_PROXY", "http://all.example:1"),
        ]);
        assert_eq!(
            via(&e, "http", "minio.lan", 9000).as_deref(),
            Some("http://proxy.example:3128")
        );
        assert_eq!(
            via(&e, "https", "s3.amazonaws.com", 443).as_deref(),
            Some("http://secure.example:8080")
        );
        let only_all = env(&[("ALL_PROXY", "http://all.example:1")]);
        assert_eq!(via(&only_all, "https", "s3.amazonaws.com", 443), None);
    }

    #[test]
    fn upper_case_wins_and_empty_values_fall_through() {
        let e = env(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:2"),
        ]);
        assert_eq!(
            via(&e, "https", "h", 443).as_deref(),
            Some("http://upper:1")
        );
        let e = env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:2")]);
        assert_eq!(
            via(&e, "https", "h", 443).as_deref(),
            Some("http://lower:2")
        );
    }

    #[test]
    fn loopback_and_localhost_are_never_proxied() {
        let e = env(&[("HTTP_PROXY", "http://p:1"), ("HTTPS_PROXY", "http://p:1")]);
        assert_eq!(via(&e, "http", "localhost", 9000), None);
        assert_eq!(via(&e, "http", "127.0.0.1", 9000), None);
        assert_eq!(via(&e, "http", "127.8.9.10", 9000), None);
        assert_eq!(via(&e, "https", "::1", 443), None);
        // Only the exact name: Go proxies sub-domains of localhost.
        assert_eq!(
            via(&e, "http", "s3.localhost", 80).as_deref(),
            Some("http://p:1")
        );
    }

    #[test]
    fn no_proxy_matches_as_go_does() {
        let e = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "no_proxy",
                " Example.com ,.sub.org,*.star.net,10.0.0.0/8,192.168.1.5,host.lan:9000,[2001:db8::1]:443",
            ),
        ]);
        let direct = |h: &str, port: u16| via(&e, "https", h, port).is_none();
        assert!(direct("example.com", 443));
        assert!(direct("s3.example.com", 443));
        assert!(!direct("notexample.com", 443));
        assert!(!direct("sub.org", 443));
        assert!(direct("a.sub.org", 443));
        assert!(!direct("star.net", 443));
        assert!(direct("x.star.net", 443));
        assert!(direct("10.1.2.3", 443));
        assert!(!direct("11.1.2.3", 443));
        assert!(direct("192.168.1.5", 443));
        assert!(direct("host.lan", 9000));
        assert!(!direct("host.lan", 9001));
        assert!(direct("2001:db8::1", 443));
        assert!(!direct("2001:db8::2", 443));
        let all = env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")]);
        assert_eq!(via(&all, "https", "s3.amazonaws.com", 443), None);
    }

    #[test]
    fn proxy_urls_parse_like_go() {
        let p = parse_proxy("http://user:pw@proxy.example:3128/").expect("parses");
        assert_eq!(
            p,
            Proxy {
                scheme: "http".into(),
                host: "proxy.example".into(),
                port: 3128,
                userinfo: Some("user:pw".into())
            }
        );
        assert_eq!(parse_proxy("proxy.example").expect("parses").port, 80);
        assert_eq!(
            parse_proxy("https://proxy.example").expect("parses").port,
            443
        );
        assert_eq!(
            parse_proxy("socks5://[::1]:1081")
                .expect("parses")
                .address(),
            "[::1]:1081"
        );
        // No host: read behind http:// too (a proxy on the host "http"); Go dials this
        // machine's port 80 instead. Neither goes direct: the request fails, as restic's does
        // unless a proxy listens there.
        assert_eq!(
            parse_proxy("http://").map(|p| p.address()).as_deref(),
            Some("http:80")
        );
        // Not a port: Go reads the whole value behind http://, a proxy on the host "http".
        let e = env(&[("HTTP_PROXY", "http://p:notaport")]);
        assert_eq!(
            via(&e, "http", "minio.lan", 80).as_deref(),
            Some("http://http:80")
        );
    }

    #[test]
    fn socks5_is_known_in_any_case_and_socks5h_is_not() {
        let p = parse_proxy("SOCKS5://alice:pw@127.0.0.1:1081").expect("parses");
        assert_eq!(
            p,
            Proxy {
                scheme: "socks5".into(),
                host: "127.0.0.1".into(),
                port: 1081,
                userinfo: Some("alice:pw".into())
            }
        );
        assert_eq!(
            parse_proxy("socks5://proxy.lan").expect("parses").port,
            1080
        );
        // Go 1.19: "socks5h" is no proxy scheme; behind http:// the host is "socks5h".
        let e = env(&[("HTTPS_PROXY", "socks5h://127.0.0.1:1080")]);
        assert_eq!(
            via(&e, "https", "minio.lan", 443).as_deref(),
            Some("http://socks5h:80")
        );
        // A value without a scheme Go knows, but with a port: still http.
        assert_eq!(
            parse_proxy("proxy.lan:3128").expect("parses").scheme,
            "http"
        );
    }

    #[test]
    fn cgi_refuses_http_proxy_only() {
        let e = env(&[
            ("HTTP_PROXY", "http://p:1"),
            ("HTTPS_PROXY", "http://p:1"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert_eq!(e.proxy_for("http", "minio.lan", 80), Err(ProxyError::Cgi));
        assert!(
            e.proxy_for("https", "minio.lan", 443)
                .expect("ok")
                .is_some()
        );
    }
}
