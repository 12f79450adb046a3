//! The part of Go's `net/url.Parse` (Go 1.19, `src/net/url/url.go`) that decides whether a
//! proxy variable names a proxy, and which: restic reads `HTTP_PROXY`/`HTTPS_PROXY` through it
//! (httpproxy's `parseProxy`), and when it fails, restic has no proxy for that variable.
//!
//! Written by hand, not taken from the `url` crate: that crate follows WHATWG's URL standard,
//! which accepts what Go refuses (`^`, `|`, `{` in a password, `%zz`, a leading space, which
//! WHATWG trims) and splits user information differently. Only Go's rules that change the
//! verdict are kept: which values fail, the scheme, the user information (still
//! percent-encoded), the host and port; the path, query and fragment are only checked.

/// A proxy URL as Go's `url.Parse` leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUrl {
    /// Lower-cased, as `url.Parse` leaves it; empty when the value has none.
    pub scheme: String,
    /// `user[:password]` as written (percent escapes checked, not decoded).
    pub userinfo: Option<String>,
    /// `u.Hostname()`: the host, unescaped, without brackets; empty when there is none.
    pub hostname: String,
    /// `u.Port()`: digits or empty.
    pub port: String,
    /// An `@` follows the authority (in the path, query or fragment): the value probably held
    /// a password with `/`, `?` or `#`, and the "host" Go found may be part of that password.
    pub at_after_authority: bool,
}

/// Why Go's `url.Parse` refuses a value (the value itself is never kept: it may hold a
/// password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParseError;

/// Go's `url.Parse` (`Parse` + `parse` with `viaRequest == false`).
pub(crate) fn parse(raw: &str) -> Result<GoUrl, ParseError> {
    // Parse: cut off "#frag" first; the fragment's escapes are checked (setFragment).
    let (u, frag) = raw.split_once('#').unwrap_or((raw, ""));
    // parse: any byte < 0x20 or 0x7f fails (stringContainsCTLByte).
    if u.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(ParseError);
    }
    let mut url = GoUrl {
        scheme: String::new(),
        userinfo: None,
        hostname: String::new(),
        port: String::new(),
        at_after_authority: false,
    };
    if u == "*" {
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(u)?;
    url.scheme = scheme.to_ascii_lowercase();
    // "?" ends the part parsed further; the query itself is not checked by Go 1.19.
    let (mut rest, query) = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        (&rest[..rest.len() - 1], "")
    } else {
        rest.split_once('?').unwrap_or((rest, ""))
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Opaque ("scheme:rest"): no host, nothing more checked.
            return check_fragment(url, frag);
        }
        // A relative path whose first segment holds ':' fails.
        if rest.split('/').next().is_some_and(|s| s.contains(':')) {
            return Err(ParseError);
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        let (userinfo, host) = parse_authority(authority)?;
        url.userinfo = userinfo;
        let (hostname, port) = split_host_port(&host);
        url.hostname = hostname;
        url.port = port;
        // The authority "scheme:" of a value read behind "http://" is no secret.
        let scheme_only = userinfo_free_scheme(authority) && path.starts_with("//");
        url.at_after_authority =
            !scheme_only && (path.contains('@') || query.contains('@') || frag.contains('@'));
        rest = path;
    }
    // setPath: the path's escapes are checked.
    unescape(rest, Mode::Path)?;
    check_fragment(url, frag)
}

/// `authority` is `scheme:` (what a value with a scheme becomes behind "http://").
fn userinfo_free_scheme(authority: &str) -> bool {
    authority
        .strip_suffix(':')
        .is_some_and(|s| matches!(get_scheme(&format!("{s}:")), Ok((scheme, "")) if scheme == s))
}

fn check_fragment(url: GoUrl, frag: &str) -> Result<GoUrl, ParseError> {
    unescape(frag, Mode::Fragment)?;
    Ok(url)
}

/// Go's `getScheme`: `[a-zA-Z][a-zA-Z0-9+-.]*:`, else no scheme; a leading ':' fails.
fn get_scheme(raw: &str) -> Result<(&str, &str), ParseError> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err(ParseError),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: the host after the last '@' is checked first, then the user
/// information before it (`validUserinfo`, then its escapes).
fn parse_authority(authority: &str) -> Result<(Option<String>, String), ParseError> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = parse_host(host)?;
    let Some(userinfo) = userinfo else {
        return Ok((None, host));
    };
    if !userinfo.chars().all(valid_userinfo_char) {
        return Err(ParseError);
    }
    // User name and password are unescaped separately (split at the first ':'); with
    // Mode::UserPassword only the escapes themselves can fail, so checking the whole is the
    // same.
    unescape(userinfo, Mode::UserPassword)?;
    Ok((Some(userinfo.to_string()), host))
}

/// Go's `validUserinfo`: unreserved, sub-delims, ':', '%' and '@' (non-ASCII fails).
fn valid_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | ':'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | '%'
                | '@'
        )
}

/// Go's `parseHost`: `[v6]` with an optional `:digits`, or anything with an optional
/// `:digits` after its last ':'; then the host's escapes (`%XX` only for bytes >= 0x80, or
/// `%25`) and characters. Returns `u.Host`, unescaped.
fn parse_host(host: &str) -> Result<String, ParseError> {
    if host.starts_with('[') {
        let i = host.rfind(']').ok_or(ParseError)?;
        if !valid_optional_port(&host[i + 1..]) {
            return Err(ParseError);
        }
        if let Some(zone) = host[..i].find("%25") {
            let a = unescape(&host[..zone], Mode::Host)?;
            let b = unescape(&host[zone..i], Mode::Zone)?;
            let c = unescape(&host[i..], Mode::Host)?;
            return Ok(a + &b + &c);
        }
    } else if let Some(i) = host.rfind(':')
        && !valid_optional_port(&host[i..])
    {
        return Err(ParseError);
    }
    unescape(host, Mode::Host)
}

/// Go's `validOptionalPort`: empty, or ':' and digits (any number of them).
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's unexported `splitHostPort` behind `u.Hostname()` and `u.Port()`.
fn split_host_port(host_port: &str) -> (String, String) {
    let (mut host, mut port) = (host_port, "");
    if let Some(colon) = host.rfind(':')
        && valid_optional_port(&host[colon..])
    {
        (host, port) = (&host[..colon], &host[colon + 1..]);
    }
    if host.len() >= 2 && host.starts_with('[') && host.ends_with(']') {
        host = &host[1..host.len() - 1];
    }
    (host.to_string(), port.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Zone,
    Path,
    UserPassword,
    Fragment,
}

/// Go's `unescape`: every '%' needs two hex digits; in a host, `%XX` only for bytes >= 0x80
/// (or `%25`), and ASCII that `shouldEscape` flags for hosts fails. Returns the unescaped
/// text (lossy for non-UTF-8 bytes, which only a host name could hold and no DNS resolves).
fn unescape(s: &str, mode: Mode) -> Result<String, ParseError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(ParseError);
            };
            let is_25 = h == 2 && l == 5;
            if mode == Mode::Host && h < 8 && !is_25 {
                return Err(ParseError);
            }
            let v = (h << 4) | l;
            if mode == Mode::Zone && !is_25 && v != b' ' && should_escape_in_host(v) {
                return Err(ParseError);
            }
            out.push(v);
            i += 3;
            continue;
        }
        if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape_in_host(c) {
            return Err(ParseError);
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.QueryUnescape` (minio-go decodes listed keys with it when the answer says
/// `<EncodingType>url</EncodingType>`): `%XX` to its byte, `+` to a space. `Err` holds the
/// first invalid escape as Go's error quotes it (`%/k`: the `%` and at most two bytes after).
pub(crate) fn query_unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    let end = (i + 3).min(bytes.len());
                    return Err(String::from_utf8_lossy(&bytes[i..end]).into_owned());
                };
                out.push((h << 4) | l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Go's `shouldEscape(c, encodeHost)` for ASCII: alphanumerics, `-_.~`, the sub-delims,
/// `:[]<>"` may stand in a host; everything else (space, `^`, `|`, `{`, `}`, `\`, `` ` ``,
/// `/`, `?`, `@`, `#`, `%`) may not.
fn should_escape_in_host(c: u8) -> bool {
    !(c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        ))
}
