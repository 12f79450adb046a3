//! Where an etcd store is: `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`, or `etcds://...`
//! for TLS (the scheme in any letter case, as RFC 3986 has it).
//!
//! An error here never quotes the location: a location can hold a password someone pasted
//! into it (`etcd://root:pw@host`, or `etcd://root:pa/ss@host`, where the `/` ends the host
//! list early), so errors say which part is wrong (endpoint 2, its port, the prefix) instead.
//! An `@` anywhere is refused as user-info: the user and password come from the environment.

use crate::store::SpecError;

/// The key prefix when the location names none.
pub const DEFAULT_PREFIX: &str = "/cio/credentials";
/// The client port etcd listens on when the location names none.
pub const DEFAULT_PORT: u16 = 2379;

/// Where an etcd store is: endpoints, TLS or not, and the key prefix. Parsed from
/// `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]` or `etcds://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSpec {
    /// `host:port` of each member, in the order given.
    pub endpoints: Vec<String>,
    /// Whether clients speak TLS (`etcds://`).
    pub tls: bool,
    /// The key prefix, starting with `/` and without a trailing `/`.
    pub prefix: String,
}

/// `text` without its scheme when it starts with `scheme` in any letter case.
fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &text[scheme.len()..])
}

impl EtcdSpec {
    /// Parses an `etcd://` or `etcds://` location; `Ok(None)` for any other text.
    ///
    /// A user or password in the location is refused (they come from the environment, so
    /// that a password never lands in a configuration file, a flag or a message). The error
    /// never repeats any part of `text`.
    pub fn parse(text: &str) -> Result<Option<EtcdSpec>, SpecError> {
        let (tls, rest) = if let Some(rest) = strip_scheme(text, "etcd://") {
            (false, rest)
        } else if let Some(rest) = strip_scheme(text, "etcds://") {
            (true, rest)
        } else {
            return Ok(None);
        };
        let err = |reason: String| SpecError { reason };
        if rest.contains('@') {
            return Err(err(
                "a user or password does not belong in the location (an etcd location holds no '@'); set CIO_ETCD_USER and CIO_ETCD_PASSWORD instead".into(),
            ));
        }
        let (hosts, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if hosts.is_empty() {
            return Err(err(
                "no etcd endpoint: write etcd://HOST:PORT[,HOST:PORT...][/PREFIX]".into(),
            ));
        }
        let endpoints = hosts
            .split(',')
            .enumerate()
            .map(|(i, host)| parse_endpoint(i + 1, host))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let prefix = prefix_of(prefix).map_err(err)?;
        Ok(Some(EtcdSpec {
            endpoints,
            tls,
            prefix,
        }))
    }

    /// The location as written in messages: `etcd://a:2379,b:2379/prefix`.
    pub fn location(&self) -> String {
        self.location_at(&self.prefix)
    }

    /// The location of the store at `prefix` in the same cluster, for messages (`prefix`
    /// must pass [`is_clean_prefix`]).
    pub fn location_at(&self, prefix: &str) -> String {
        let scheme = if self.tls { "etcds" } else { "etcd" };
        format!("{scheme}://{}{prefix}", self.endpoints.join(","))
    }
}

/// The key prefix a location's path names. The one rule, wherever a location comes from:
/// - no path, or `/` alone: [`DEFAULT_PREFIX`] (as in any URL, an empty path and `/` are one);
/// - one trailing `/` is dropped (`/a/` is `/a`);
/// - an empty segment anywhere is refused (`//a`, `/a//b`, `/a//`, `//`): etcd keys are raw
///   bytes, so `/a//v` and `/a/v` are other keys, and which ones were meant cannot be told;
/// - a space or a control character is refused.
///
/// The error never quotes the path.
fn prefix_of(path: &str) -> Result<String, String> {
    if path.is_empty() || path == "/" {
        return Ok(DEFAULT_PREFIX.to_string());
    }
    let prefix = path.strip_suffix('/').unwrap_or(path);
    // `path` starts with the '/' that ends the endpoints: every segment after it is named.
    if prefix
        .get(1..)
        .is_none_or(|segments| segments.split('/').any(str::is_empty))
    {
        return Err("the key prefix has an empty segment (two '/' in a row): write each '/' once, as in etcd://HOST:PORT/cio/cluster-a".into());
    }
    if !is_clean_prefix(prefix) {
        return Err("the key prefix holds a space or a control character: name a prefix without them, as in etcd://HOST:PORT/cio/cluster-a".into());
    }
    Ok(prefix.to_string())
}

/// Whether a location may name `prefix`: no empty segment (`//`), space or control
/// character.
pub(super) fn is_clean_prefix(prefix: &str) -> bool {
    !(prefix.contains("//") || prefix.chars().any(|c| c.is_control() || c == ' '))
}

/// Checks endpoint number `n`, `HOST[:PORT]` (IPv6 as `[::1]:2379`), and adds the default
/// port. The error names the endpoint by its number, never by its text.
fn parse_endpoint(n: usize, text: &str) -> Result<String, String> {
    let bad = || {
        format!("endpoint {n} is not HOST or HOST:PORT (an IPv6 address in brackets: [::1]:2379)")
    };
    if text.is_empty() {
        return Err(format!("endpoint {n} is empty (two commas in a row?)"));
    }
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(bad)?;
        let host = &text[..end + 2];
        match &v6[end + 1..] {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !host_ok {
        return Err(bad());
    }
    let port =
        match port {
            None => DEFAULT_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                format!("the port of endpoint {n} must be a number from 1 to 65535")
            })?,
        };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> EtcdSpec {
        match EtcdSpec::parse(text) {
            Ok(Some(spec)) => spec,
            other => panic!("{text} should be an etcd location: {other:?}"),
        }
    }

    fn refused(text: &str) -> String {
        match EtcdSpec::parse(text) {
            Err(e) => e.to_string(),
            Ok(other) => panic!("{text} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn endpoints_get_the_default_port_and_keep_their_order() {
        assert_eq!(
            parse("etcd://10.0.0.1:2379,10.0.0.2:2380"),
            EtcdSpec {
                endpoints: vec!["10.0.0.1:2379".into(), "10.0.0.2:2380".into()],
                tls: false,
                prefix: DEFAULT_PREFIX.into(),
            }
        );
        assert_eq!(parse("etcd://node-a").endpoints, ["node-a:2379"]);
        assert_eq!(parse("etcd://etcd_1.lan:1").endpoints, ["etcd_1.lan:1"]);
        assert_eq!(parse("etcd://h:65535").endpoints, ["h:65535"]);
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        let s = parse("etcds://node-a,[::1]:2379,[fe80::1]/cio/prod/");
        assert!(s.tls);
        assert_eq!(s.endpoints, ["node-a:2379", "[::1]:2379", "[fe80::1]:2379"]);
        assert_eq!(s.prefix, "/cio/prod");
        assert_eq!(
            s.location(),
            "etcds://node-a:2379,[::1]:2379,[fe80::1]:2379/cio/prod"
        );
    }

    #[test]
    fn the_prefix_defaults_and_loses_one_trailing_slash() {
        assert_eq!(parse("etcd://h:1/").prefix, DEFAULT_PREFIX);
        assert_eq!(parse("etcd://h:1").prefix, DEFAULT_PREFIX);
        assert_eq!(parse("etcd://h:1/a/b/").prefix, "/a/b");
        assert_eq!(parse("etcd://h:1/a/b").prefix, "/a/b");
        assert_eq!(parse("etcd://h/a").location(), "etcd://h:2379/a");
    }

    /// An empty segment is refused wherever it is: a trailing one (`/a//`) was dropped while
    /// a leading or inner one was refused, and `//` alone meant the default prefix.
    #[test]
    fn an_empty_segment_is_refused_wherever_it_is() {
        let empty = "the store location is not valid: the key prefix has an empty segment (two '/' in a row): write each '/' once, as in etcd://HOST:PORT/cio/cluster-a";
        for text in [
            "etcd://h:1//",
            "etcd://h:1///",
            "etcd://h:1//a",
            "etcd://h:1/a//b",
            "etcd://h:1/a//",
            "etcd://h:1/a/b///",
            "etcds://h:1,g:2/a//",
        ] {
            assert_eq!(refused(text), empty, "{text}");
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_other_text_is_not_etcd() {
        assert!(!parse("ETCD://h").tls);
        assert!(parse("Etcds://h").tls);
        assert_eq!(parse("ETCDS://h/p").location(), "etcds://h:2379/p");
        for other in [
            "/var/lib/cio/credentials.db",
            "etcd2://x",
            "etcd:/x",
            "etcd",
            "",
            "é",
            "https://h:2379",
        ] {
            assert_eq!(EtcdSpec::parse(other), Ok(None), "{other}");
        }
    }

    #[test]
    fn each_mistake_has_its_own_message() {
        let cases = [
            (
                "etcd://",
                "no etcd endpoint: write etcd://HOST:PORT[,HOST:PORT...][/PREFIX]",
            ),
            (
                "etcd:///prefix",
                "no etcd endpoint: write etcd://HOST:PORT[,HOST:PORT...][/PREFIX]",
            ),
            (
                "etcd://a:2379,,b:2379",
                "endpoint 2 is empty (two commas in a row?)",
            ),
            (
                "etcd://a:2379,b:notaport",
                "the port of endpoint 2 must be a number from 1 to 65535",
            ),
            (
                "etcd://a:0",
                "the port of endpoint 1 must be a number from 1 to 65535",
            ),
            (
                "etcd://a:65536",
                "the port of endpoint 1 must be a number from 1 to 65535",
            ),
            (
                "etcd://a b:1",
                "endpoint 1 is not HOST or HOST:PORT (an IPv6 address in brackets: [::1]:2379)",
            ),
            (
                "etcd://[::1",
                "endpoint 1 is not HOST or HOST:PORT (an IPv6 address in brackets: [::1]:2379)",
            ),
            (
                "etcd://[::1]2379",
                "endpoint 1 is not HOST or HOST:PORT (an IPv6 address in brackets: [::1]:2379)",
            ),
            (
                "etcd://a:1//x",
                "the key prefix has an empty segment (two '/' in a row): write each '/' once, as in etcd://HOST:PORT/cio/cluster-a",
            ),
            (
                "etcd://a:1/x y",
                "the key prefix holds a space or a control character: name a prefix without them, as in etcd://HOST:PORT/cio/cluster-a",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                refused(text),
                format!("the store location is not valid: {reason}"),
                "{text}"
            );
        }
    }

    /// Issue 9: an etcd location's user-info, or anything after it, is never echoed, however
    /// the URL is broken around it.
    #[test]
    fn user_info_and_what_follows_are_never_echoed() {
        let user_info = "the store location is not valid: a user or password does not belong in the location (an etcd location holds no '@'); set CIO_ETCD_USER and CIO_ETCD_PASSWORD instead";
        for text in [
            "etcd://root:Canary-Pw-1@node-a:2379/cio/Canary-Prefix",
            "etcds://root:Canary-Pw-1@node-a",
            "ETCD://root@node-a",
            "etcd://node-b,root:Canary-Pw-1@node-a",
            "etcd://root:Canary/Pw-1@node-a:2379",
            "etcd://root:Canary-Pw-1@",
            "etcd://node-a:2379/cio@Canary-Pw-1",
        ] {
            let message = refused(text);
            assert_eq!(message, user_info, "{text}");
        }
        // No message quotes any part of a location, so a secret pasted in place of a host,
        // a port or a prefix stays out of it too.
        for text in [
            "etcd://Canary-Pw-1:Canary-Pw-2",
            "etcd://root:Canary-Pw-1?node-a",
            "etcd://node-a:2379,Canary Pw 1",
            "etcd://node-a/Canary Pw 1",
            "etcd://node-a/Canary//Pw-1",
            "etcd://node-a:Canary#Pw-1",
        ] {
            let message = refused(text);
            assert!(!message.contains("Canary"), "{text}: {message}");
            assert!(!message.contains("Pw"), "{text}: {message}");
            assert!(!message.contains("node-a"), "{text}: {message}");
        }
    }
}
