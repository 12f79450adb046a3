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

use super::gourl;

/// The proxy settings read from an environment. `Debug` leaves the proxy URLs out: they may
/// hold a password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// The variable (`HTTP_PROXY` or `http_proxy`) and its value.
    http: Option<(&'static str, String)>,
    /// The variable (`HTTPS_PROXY` or `https_proxy`) and its value.
    https: Option<(&'static str, String)>,
    no_proxy: String,
    cgi: bool,
}

/// A proxy to send a request through. `Debug` shows neither the login nor a host that may
/// be part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http`, `https` or `socks5`.
    pub scheme: String,
    /// The variable that named it (`HTTPS_PROXY`, `http_proxy`, ...).
    pub variable: &'static str,
    /// Host name or address of the proxy (IPv6 without brackets).
    pub host: String,
    /// The port as the URL gives it (decimal digits; Go's `url.Parse` accepts any number of
    /// them), or the scheme's (`80`, `443`, `1080`); see [`Proxy::port_number`].
    pub port: String,
    /// `user:password` from the proxy URL (still percent-encoded): sent as
    /// `Proxy-Authorization: Basic` to an HTTP proxy, as RFC 1929 username/password to SOCKS5.
    pub userinfo: Option<String>,
    /// An `@` follows the host in the proxy URL: the host Go found may be part of a password
    /// holding `/`, `?` or `#` (`socks5://u:p/w@h` names the host `u`), so it is never shown.
    pub host_may_be_secret: bool,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("http", &self.http.as_ref().map(|_| "(set)"))
            .field("https", &self.https.as_ref().map(|_| "(set)"))
            .field("no_proxy", &self.no_proxy)
            .field("cgi", &self.cgi)
            .finish()
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("scheme", &self.scheme)
            .field("address", &self.address())
            .field("login", &self.userinfo.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl Proxy {
    /// The port to dial; `None` when it is no port number (above 65535, or none for a
    /// scheme Go knows no port of): Go's dial fails then, and so does ours.
    pub fn port_number(&self) -> Option<u16> {
        self.port.parse().ok()
    }

    /// `host:port (from VARIABLE)`, for messages.
    pub fn described(&self) -> String {
        format!("{} (from {})", self.address(), self.variable)
    }

    /// `host:port` of the proxy, for messages (never its user or password).
    pub fn address(&self) -> String {
        if self.host_may_be_secret {
            return "[host not shown: an '@' follows it in the proxy variable, so it may be part of a password; write '/', '?' and '#' in a password as %2F, %3F and %23]".into();
        }
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
    /// The settings from this process's environment. A value that is not UTF-8 is read with
    /// each invalid byte as U+FFFD: Go takes the bytes as they are, and a byte above 0x7F,
    /// like U+FFFD, is allowed neither in a login nor in a host that resolves, so the proxy
    /// fails (or is dropped) for both alike; it is not taken as unset.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// The settings from `lookup` (a variable's value, `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&'static str; 2]| {
            names
                .into_iter()
                .filter_map(|n| lookup(n).map(|v| (n, v)))
                .find(|(_, v)| !v.is_empty())
        };
        ProxyEnv {
            http: any(["HTTP_PROXY", "http_proxy"]),
            https: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"])
                .map(|(_, v)| v)
                .unwrap_or_default(),
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
        let Some(proxy) = value
            .as_ref()
            .and_then(|(variable, value)| parse_proxy(variable, value))
        else {
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

    /// The variable (`HTTPS_PROXY`, `https_proxy`, ...) that a request to `host:port` over
    /// `scheme` would go through, were its value a proxy URL Go can read; it is not, so
    /// restic ignores it and connects directly. `None` when no such variable is set, it is
    /// read, or the request would not be proxied anyway (localhost, `NO_PROXY`).
    pub fn ignored(&self, scheme: &str, host: &str, port: u16) -> Option<&'static str> {
        let value = match scheme {
            "https" => &self.https,
            _ => &self.http,
        };
        value
            .as_ref()
            .filter(|(variable, value)| parse_proxy(variable, value).is_none())
            .filter(|_| self.use_proxy(host, port))
            .map(|(variable, _)| *variable)
    }

    /// Go's `useProxy`: false for localhost, loopback and whatever `NO_PROXY` matches.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        // Go compares with "localhost" before lower-casing: `LOCALHOST` is proxied.
        if host == "localhost" {
            return false;
        }
        // net.ParseIP, compared as net.IP compares: an IPv4-mapped IPv6 address is the
        // IPv4 address (`::ffff:127.0.0.1` is loopback, and equals `127.0.0.1`).
        let ip: Option<IpAddr> = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        let host = host.trim().to_ascii_lowercase();
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
                if ip == Some(entry_ip.to_canonical()) && port_matches {
                    return false;
                }
                continue;
            }
            // Domains: only a leading "*." is cut to "." (`*vm` is a literal pattern);
            // ".x" matches sub-domains only; "x" also matches x itself.
            let entry_host = entry_host
                .strip_prefix("*.")
                .map_or(entry_host, |_| &entry_host[1..]);
            let (suffix, match_host) = if entry_host.starts_with('.') {
                (entry_host.to_string(), false)
            } else {
                (format!(".{entry_host}"), true)
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

/// An address range `ip/bits`, as Go's `net.IPNet.Contains` sees it: a range written as
/// IPv4-mapped IPv6 (`::ffff:192.0.2.0/120`) is the IPv4 range (`192.0.2.0/24`).
struct Cidr {
    network: IpAddr,
    bits: u32,
}

impl Cidr {
    /// `ip` is canonical (an IPv4-mapped address as IPv4), as Go's `Contains` makes it.
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

/// Go's `net.ParseCIDR`: the bits are decimal digits only (no sign).
fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, bits) = s.split_once('/')?;
    let network: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    match network {
        IpAddr::V4(_) => (bits <= 32).then_some(Cidr { network, bits }),
        IpAddr::V6(v6) if bits <= 128 => {
            // Go masks the address first; a masked network that is IPv4-mapped is compared
            // as IPv4 with the last 32 bits of the mask (`networkNumberAndMask`).
            let masked = if bits == 0 {
                0
            } else {
                u128::from(v6) & (u128::MAX << (128 - bits))
            };
            let masked = std::net::Ipv6Addr::from(masked);
            match masked.to_ipv4_mapped() {
                Some(v4) => Some(Cidr {
                    network: IpAddr::V4(v4),
                    bits: bits.saturating_sub(96),
                }),
                None => Some(Cidr {
                    network: IpAddr::V6(masked),
                    bits,
                }),
            }
        }
        IpAddr::V6(_) => None,
    }
}

/// The proxy schemes Go knows (httpproxy's `parseProxy`); `socks5h` is not one of them.
const KNOWN_SCHEMES: [&str; 3] = ["http", "https", "socks5"];

/// Go's `parseProxy` (x/net/http/httpproxy, proxy.go) as `config.init` uses it: the value
/// through Go's `url.Parse` ([`gourl`]); when that fails or the scheme is none Go knows, the
/// value behind `http://` (so `socks5h://host:1080` is an HTTP proxy on the host `socks5h`,
/// port 80); when that fails too, the first parse if it succeeded, else no proxy at all:
/// `init` drops the error and restic connects directly.
fn parse_proxy(variable: &'static str, value: &str) -> Option<Proxy> {
    if value.is_empty() {
        return None;
    }
    let first = gourl::parse(value);
    let url = match &first {
        Ok(u) if KNOWN_SCHEMES.contains(&u.scheme.as_str()) => first.ok(),
        _ => gourl::parse(&format!("http://{value}")).ok().or(first.ok()),
    }?;
    // Go's `canonicalAddr`: the scheme's port when none is given (none for other schemes).
    let port = if url.port.is_empty() {
        match url.scheme.as_str() {
            "http" => "80",
            "https" => "443",
            "socks5" => "1080",
            _ => "",
        }
        .to_string()
    } else {
        url.port
    };
    Some(Proxy {
        scheme: url.scheme,
        variable,
        host: url.hostname,
        port,
        userinfo: url.userinfo,
        host_may_be_secret: url.at_after_authority,
    })
}

#[cfg(test)]
mod tests;
