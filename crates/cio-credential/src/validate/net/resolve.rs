//! A host turned into the addresses to dial the way restic's Go resolver turns it (pure Go,
//! as restic's builds resolve: Go 1.19 `net`), not the way the C library's `getaddrinfo`
//! does. The two differ on numbers (a review found validate passing `0x7f000001` that restic
//! cannot look up, and failing `[::]` that restic reaches):
//!
//! - An address is only what `net.ParseIP` reads: IPv4 as four decimal numbers from 0 to 255
//!   without leading zeros, or IPv6. The C library also reads `inet_aton`'s legacy forms
//!   (`0x7f000001`, `0177.0.0.1`, `127.1`, `2130706433`, `127.000.000.001`); Go reads them
//!   as names.
//! - An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is dialled as its IPv4 address.
//! - The unspecified IPv6 address `::` is dialled, then `0.0.0.0` (Go's fallback for machines
//!   whose IPv6 loopback does not answer, golang.org/issue/18806), the same when a name
//!   resolves to `::` alone. Linux takes either as this machine.
//! - A name is looked up in `/etc/hosts` as Go reads it: in lower case, and a name with a
//!   dot matched with a trailing dot added (so `localhost.` does not match `localhost`).
//! - A name the hosts file does not hold is asked of DNS only when it is a DNS name to Go:
//!   one with a letter, `-` or `_` (`127.1` and `0` are not). Such a name that the C library
//!   would read as a number is asked of DNS as an absolute name (`0x7f000001.`), so the C
//!   library looks it up instead of reading it.
//!
//! (A Go with cgo may hand names to the C library; restic's release builds and Debian's with
//! an `/etc/nsswitch.conf` of `files dns` resolve in Go.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::time::{Instant, timeout_at};

use super::connect::ConnectError;

/// The hosts file Go reads.
const HOSTS_FILE: &str = "/etc/hosts";

/// How Go reads a host (IPv6 without brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    /// An IP address: the addresses dialled, in order.
    Address(Vec<IpAddr>),
    /// A name, in lower case, to look up.
    Name(String),
}

/// Reads `host` as Go's `net.ParseIP` does, else as a name.
pub(crate) fn read(host: &str) -> Reading {
    // Rust reads exactly Go's forms: dotted decimal without leading zeros, and IPv6 (with
    // dotted IPv4 at its end); neither reads a zone or inet_aton's forms.
    match host.parse::<IpAddr>() {
        Ok(ip) => Reading::Address(with_fallback(vec![ip.to_canonical()])),
        Err(_) => Reading::Name(host.to_ascii_lowercase()),
    }
}

/// Go's fallback: `::` alone is dialled, then `0.0.0.0`.
fn with_fallback(mut addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    if addresses == [IpAddr::from([0u16; 8])] {
        addresses.push(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    addresses
}

/// The addresses `/etc/hosts` (its text) gives `name` (lower case) as Go reads the file:
/// `#` starts a comment, fields are split at spaces and tabs, a line whose first field is no
/// IP address is skipped, and names are compared in lower case with a trailing dot added to
/// any name with a dot in it (Go's `absDomainName`).
pub(crate) fn from_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    hosts_lines(text, name)
        .filter_map(|address| address.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect()
}

/// Whether the C library may answer `name` from `/etc/hosts` (its text) where Go found
/// nothing: the file holds the name anywhere, on a line Go skips (an address it cannot
/// read: `0177.0.0.1`, `127.1`) or splits otherwise (at `\v` or `\f`, which the C library
/// takes for spaces and Go does not). Looser than either reading, on purpose: such a name
/// is then asked as an absolute name, which no hosts file holds.
pub(crate) fn listed_unreadably(text: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.');
    !name.is_empty() && text.to_ascii_lowercase().contains(name)
}

/// The first field (the address, as written) of each line of `/etc/hosts` (its text) that
/// lists `name` (lower case), compared as Go compares it; see [`from_hosts`].
fn hosts_lines<'a>(text: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let key = absolute(name);
    text.lines().filter_map(move |line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line
            .split([' ', '\t', '\r'])
            .filter(|field| !field.is_empty());
        let address = fields.next()?;
        fields
            .any(|n| absolute(&n.to_ascii_lowercase()) == key)
            .then_some(address)
    })
}

/// Go's `absDomainName`: a name with a dot and no trailing dot gets one.
fn absolute(name: &str) -> String {
    if name.contains('.') && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_string()
    }
}

/// Go's `isDomainName` (RFC 1035 and RFC 3696 as Go checks them): ASCII letters, digits,
/// `_`, `-` and dots, labels of 1 to 63 bytes, no `-` before a dot, at most 253 bytes (254
/// with a trailing dot), and at least one letter, `_` or `-` (`127.1` is no name).
pub(crate) fn is_domain_name(s: &str) -> bool {
    if s == "." {
        return true;
    }
    let l = s.len();
    if l == 0 || l > 254 || (l == 254 && !s.ends_with('.')) {
        return false;
    }
    let mut last = b'.';
    let mut non_numeric = false;
    let mut part = 0;
    for c in s.bytes() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                non_numeric = true;
                part += 1;
            }
            b'0'..=b'9' => part += 1,
            b'-' => {
                if last == b'.' {
                    return false;
                }
                part += 1;
                non_numeric = true;
            }
            b'.' => {
                if last == b'.' || last == b'-' || part > 63 || part == 0 {
                    return false;
                }
                part = 0;
            }
            _ => return false,
        }
        last = c;
    }
    last != b'-' && part <= 63 && non_numeric
}

/// The IPv4 address the C library's `inet_aton` reads `s` as (one to four parts, each
/// decimal, octal with a leading `0` or hexadecimal with `0x`, the last filling the bytes
/// left), as musl and glibc read it; `None` when it reads no address.
pub(crate) fn c_numeric_ipv4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        values.push(u64::from_str_radix(digits, radix).ok()?);
    }
    let (last, leading) = values.split_last()?;
    if leading.iter().any(|v| *v > 255) {
        return None;
    }
    let spare_bytes = 4 - leading.len();
    if *last >= 1u64 << (8 * spare_bytes) {
        return None;
    }
    let mut n = *last;
    for (i, v) in leading.iter().enumerate() {
        n |= v << (8 * (3 - i));
    }
    u32::try_from(n).ok().map(Ipv4Addr::from)
}

/// What restic's reading of an IPv4 address is, said where a host the C library reads as
/// one is a name to restic.
const NOT_AN_ADDRESS: &str = "restic reads an IPv4 address only as four decimal numbers from 0 to 255 without leading zeros, and anything else as a name; write the address that way";

/// The addresses to dial for `host` (see the module rules), each with `port`.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let name = match read(host) {
        Reading::Address(ips) => return Ok(with_port(ips, port)),
        Reading::Name(name) => name,
    };
    let hosts = std::fs::read_to_string(HOSTS_FILE).unwrap_or_default();
    let listed = from_hosts(&hosts, &name);
    if !listed.is_empty() {
        return Ok(with_port(with_fallback(listed), port));
    }
    let looks_numeric = c_numeric_ipv4(name.trim_end_matches('.')).is_some();
    if !is_domain_name(&name) {
        let why = if looks_numeric {
            format!("no such host: {NOT_AN_ADDRESS}")
        } else {
            "no such host: it is not in /etc/hosts, and restic asks DNS only for names with a letter, '-' or '_'".to_string()
        };
        return Err(ConnectError::Dns { why });
    }
    // Asked as an absolute name, the C library cannot read it as a number, nor answer it
    // from a line of /etc/hosts whose address Go skips (the C library reads `0177.0.0.1`).
    let asked = if (looks_numeric || listed_unreadably(&hosts, &name)) && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name
    };
    let ips = match timeout_at(deadline, tokio::net::lookup_host((asked.as_str(), port))).await {
        Err(_) => {
            return Err(ConnectError::Timeout {
                stage: "resolving the name",
            });
        }
        Ok(Err(e)) if looks_numeric => {
            return Err(ConnectError::Dns {
                why: format!("{e}: {NOT_AN_ADDRESS}"),
            });
        }
        Ok(Err(e)) => return Err(ConnectError::Dns { why: e.to_string() }),
        Ok(Ok(found)) => found.map(|a| a.ip().to_canonical()).collect(),
    };
    Ok(with_port(with_fallback(ips), port))
}

fn with_port(ips: Vec<IpAddr>, port: u16) -> Vec<SocketAddr> {
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[cfg(test)]
mod tests;
