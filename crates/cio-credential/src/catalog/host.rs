//! The host of a repository URL, checked as restic's S3 library (minio-go, after Go's
//! `url.Parse`) reads it, and stricter where restic would only fail later at DNS: a DNS name,
//! an IPv4 address or an IPv6 address in brackets, then an optional `:PORT`.
//!
//! Written here rather than taken from a URL crate: the `url` crate follows the WHATWG URL
//! standard (it lowercases, maps IDNA, reads shorthand IPv4 such as `127.1`), which is not
//! what Go and restic do with the same text.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::violations::RuleViolation;

/// A checked host: the name (IPv6 without brackets) and the port, if one was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Host {
    pub name: String,
    pub is_ipv6: bool,
    pub port: Option<u16>,
}

impl Host {
    /// `name[:port]`, IPv6 in brackets: the endpoint restic connects to. An empty port
    /// (`host:`) means the scheme's default to restic (Go drops it), so it is dropped here too.
    pub fn endpoint(&self) -> String {
        let name = if self.is_ipv6 {
            format!("[{}]", self.name)
        } else {
            self.name.clone()
        };
        match self.port {
            Some(port) => format!("{name}:{port}"),
            None => name,
        }
    }

    /// The labels of a DNS name, lowercased; empty for an IP address.
    pub fn dns_labels(&self) -> Vec<String> {
        if self.is_ipv6 || self.name.parse::<Ipv4Addr>().is_ok() {
            return Vec::new();
        }
        self.name
            .trim_end_matches('.')
            .split('.')
            .map(str::to_ascii_lowercase)
            .collect()
    }
}

/// Parses the authority part of a repository URL (`host[:port]`).
pub(super) fn parse(authority: &str) -> Result<Host, RuleViolation> {
    if authority.is_empty() {
        return Err(RuleViolation::RepoNoHost);
    }
    if authority.contains('@') {
        return Err(RuleViolation::RepoUserInfo);
    }
    let (name, port, is_ipv6) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(RuleViolation::RepoBadHost)?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(RuleViolation::RepoBadHost);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(RuleViolation::RepoBadHost)?),
        };
        (inside, port, true)
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port), false),
            None => (authority, None, false),
        }
    };
    if name.is_empty() {
        return Err(RuleViolation::RepoNoHost);
    }
    if !is_ipv6 && name.parse::<Ipv4Addr>().is_err() && !is_dns_name(name) {
        return Err(RuleViolation::RepoBadHost);
    }
    let port = match port {
        None | Some("") => None,
        Some(digits) => Some(parse_port(digits)?),
    };
    Ok(Host {
        name: name.to_string(),
        is_ipv6,
        port,
    })
}

/// Digits only (Go's rule; leading zeros are fine), 1 to 65535 (what a connection can use).
fn parse_port(digits: &str) -> Result<u16, RuleViolation> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleViolation::RepoBadPort);
    }
    match digits.trim_start_matches('0').parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(RuleViolation::RepoBadPort),
    }
}

/// A DNS name (RFC 1035 and RFC 3696, with one trailing dot allowed): labels of 1 to 63 ASCII
/// letters, digits, `-` and `_`, not starting or ending with `-`, at most 253 characters, and
/// a last label that is not all digits (`127.1` or `10.0.0.256` would be an IPv4 address gone
/// wrong). `_` inside a label is accepted as minio-go accepts it (container host names use it),
/// but not at either end of the name (minio-go refuses that).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 || name.starts_with('_') || name.ends_with('_') {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(s: &str) -> Result<String, RuleViolation> {
        parse(s).map(|h| h.endpoint())
    }

    #[test]
    fn names_addresses_and_ports() {
        for (given, expected) in [
            ("s3.amazonaws.com", "s3.amazonaws.com"),
            ("minio", "minio"),
            ("MinIO.Example.COM", "MinIO.Example.COM"),
            ("minio.example.", "minio.example."),
            ("minio_1:9000", "minio_1:9000"),
            ("eu-west-1", "eu-west-1"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("127.0.0.1:09000", "127.0.0.1:9000"),
            ("127.0.0.1:", "127.0.0.1"),
            ("[::1]", "[::1]"),
            ("[::1]:9000", "[::1]:9000"),
            ("[2001:db8::7]:", "[2001:db8::7]"),
            ("[::ffff:10.0.0.1]:443", "[::ffff:10.0.0.1]:443"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ] {
            assert_eq!(endpoint(given).as_deref(), Ok(expected), "{given}");
        }
    }

    #[test]
    fn what_is_no_host_is_refused() {
        use RuleViolation::*;
        for (given, violation) in [
            ("", RepoNoHost),
            (":9000", RepoNoHost),
            ("[]:9000", RepoBadHost),
            ("user:pw@minio", RepoUserInfo),
            ("@minio", RepoUserInfo),
            ("mi nio", RepoBadHost),
            ("minio?x", RepoBadHost),
            ("minio#x", RepoBadHost),
            ("bücher.example", RepoBadHost),
            ("min\u{200B}io", RepoBadHost),
            ("-minio", RepoBadHost),
            ("minio-", RepoBadHost),
            ("minio.-x", RepoBadHost),
            ("_minio", RepoBadHost),
            ("mi..nio", RepoBadHost),
            (".minio", RepoBadHost),
            ("127.1", RepoBadHost),
            ("10.0.0.256", RepoBadHost),
            ("010.0.0.1", RepoBadHost),
            ("::1", RepoBadHost),
            ("2001:db8::1", RepoBadHost),
            ("[::1", RepoBadHost),
            ("[::1]9000", RepoBadHost),
            ("[fe80::1%25eth0]", RepoBadHost),
            ("[minio]", RepoBadHost),
            ("minio:port", RepoBadPort),
            ("minio:+9000", RepoBadPort),
            ("minio:0", RepoBadPort),
            ("minio:65536", RepoBadPort),
            ("minio:99999", RepoBadPort),
            ("[::1]:x", RepoBadPort),
        ] {
            assert_eq!(endpoint(given), Err(violation), "{given}");
        }
        assert_eq!(
            endpoint(&format!("{}.example", "a".repeat(64))),
            Err(RepoBadHost)
        );
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(endpoint(&long), Err(RepoBadHost));
    }

    #[test]
    fn dns_labels_are_lowercased_and_ip_addresses_have_none() {
        let labels = |s: &str| parse(s).expect("a host").dns_labels();
        assert_eq!(
            labels("Bucket.S3.example.com."),
            ["bucket", "s3", "example", "com"]
        );
        assert!(labels("10.0.0.1").is_empty());
        assert!(labels("[::1]").is_empty());
    }
}
