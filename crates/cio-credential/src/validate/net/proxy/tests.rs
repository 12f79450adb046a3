//! Go's proxy rules, case by case (x/net/http/httpproxy and net/url, Go 1.19).

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
    let p = parse_proxy("HTTP_PROXY", "http://user:pw@proxy.example:3128/").expect("parses");
    assert_eq!(
        p,
        Proxy {
            scheme: "http".into(),
            variable: "HTTP_PROXY",
            host: "proxy.example".into(),
            port: "3128".into(),
            userinfo: Some("user:pw".into()),
            host_may_be_secret: false,
        }
    );
    assert_eq!(
        parse_proxy("HTTP_PROXY", "proxy.example")
            .expect("parses")
            .port,
        "80"
    );
    assert_eq!(
        parse_proxy("HTTP_PROXY", "https://proxy.example")
            .expect("parses")
            .port,
        "443"
    );
    assert_eq!(
        parse_proxy("HTTP_PROXY", "socks5://[::1]:1081")
            .expect("parses")
            .address(),
        "[::1]:1081"
    );
    // No host: Go keeps it (a proxy on this machine's port 80), it does not go direct.
    assert_eq!(
        parse_proxy("HTTP_PROXY", "http://")
            .map(|p| p.address())
            .as_deref(),
        Some(":80")
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
    let p = parse_proxy("HTTP_PROXY", "SOCKS5://alice:pw@127.0.0.1:1081").expect("parses");
    assert_eq!(
        p,
        Proxy {
            scheme: "socks5".into(),
            variable: "HTTP_PROXY",
            host: "127.0.0.1".into(),
            port: "1081".into(),
            userinfo: Some("alice:pw".into()),
            host_may_be_secret: false,
        }
    );
    assert_eq!(
        parse_proxy("HTTP_PROXY", "socks5://proxy.lan")
            .expect("parses")
            .port,
        "1080"
    );
    // Go 1.19: "socks5h" is no proxy scheme; behind http:// the host is "socks5h".
    let e = env(&[("HTTPS_PROXY", "socks5h://127.0.0.1:1080")]);
    assert_eq!(
        via(&e, "https", "minio.lan", 443).as_deref(),
        Some("http://socks5h:80")
    );
    // A value without a scheme Go knows, but with a port: still http.
    assert_eq!(
        parse_proxy("HTTP_PROXY", "proxy.lan:3128")
            .expect("parses")
            .scheme,
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

/// The proxy Go's rules choose for an `http://` endpoint on `host`, as `scheme://address`.
fn http_via(value: &str, host: &str) -> Option<String> {
    via(&env(&[("HTTP_PROXY", value)]), "http", host, 9000)
}

#[test]
fn a_userinfo_go_refuses_is_retried_behind_http() {
    // F1: '^', '|', '{', '}' are outside validUserinfo's set: url.Parse fails, and the value
    // behind "http://" names an HTTP proxy on the host "socks5" (restic fails there too).
    assert_eq!(
        http_via("socks5://sockuser:pa^ss|w{rd}@127.0.0.1:1081", "minio.lan").as_deref(),
        Some("http://socks5:80")
    );
    for bad in ["\"", " ", "`", "\\", "é"] {
        let value = format!("socks5://u:p{bad}w@127.0.0.1:1081");
        assert_eq!(
            http_via(&value, "minio.lan").as_deref(),
            Some("http://socks5:80"),
            "{bad:?}"
        );
    }
    // Go's set: unreserved, sub-delims, ':', '%XX' (and '@' before the last one).
    assert_eq!(
        http_via(
            "socks5://u:a-._~!$&'()*+,;=:%41@b@127.0.0.1:1081",
            "minio.lan"
        )
        .as_deref(),
        Some("socks5://127.0.0.1:1081")
    );
}

#[test]
fn a_value_go_cannot_parse_at_all_means_no_proxy() {
    // F1b: an invalid escape fails both parses: httpproxy's init keeps no proxy, restic
    // connects directly.
    assert_eq!(http_via("http://u:p%zz@127.0.0.1:3128", "minio.lan"), None);
    assert_eq!(http_via("http://127.0.0.1:3128/%zz", "minio.lan"), None);
    assert_eq!(http_via("http://127.0.0.1:3128/#%zz", "minio.lan"), None);
    // An ASCII escape in a host fails the first parse; behind http:// it is in the path.
    assert_eq!(
        http_via("http://127.0.0.%31:3128", "minio.lan").as_deref(),
        Some("http://http:80")
    );
    // A leading space or control character: no scheme, then an invalid host.
    assert_eq!(http_via(" http://127.0.0.1:3128", "minio.lan"), None);
    assert_eq!(http_via("\thttp://127.0.0.1:3128", "minio.lan"), None);
    assert_eq!(http_via(" 127.0.0.1:3128", "minio.lan"), None);
    assert_eq!(http_via("http://127.0.0.1:3128\n", "minio.lan"), None);
    // A trailing space: the port is invalid, the value behind http:// is not.
    assert_eq!(
        http_via("http://127.0.0.1:3128 ", "minio.lan").as_deref(),
        Some("http://http:80")
    );
}

#[test]
fn a_value_go_drops_is_named_by_its_variable_for_its_scheme_only() {
    let e = env(&[
        ("https_proxy", "http://u:p%zz@127.0.0.1:3128"),
        ("HTTP_PROXY", "http://127.0.0.1:3128"),
    ]);
    assert_eq!(e.ignored("https", "s3.example", 443), Some("https_proxy"));
    assert_eq!(
        e.ignored("http", "minio.lan", 9000),
        None,
        "read, so not ignored"
    );
    let e = env(&[("HTTP_PROXY", " 127.0.0.1:3128")]);
    assert_eq!(e.ignored("http", "minio.lan", 9000), Some("HTTP_PROXY"));
    assert_eq!(e.ignored("https", "minio.lan", 9000), None, "unset");
    // Where no proxy would be used anyway, there is nothing to say.
    assert_eq!(e.ignored("http", "127.0.0.1", 9000), None);
    assert_eq!(e.ignored("http", "localhost", 9000), None);
    let e = env(&[("HTTP_PROXY", " 127.0.0.1:3128"), ("NO_PROXY", "*")]);
    assert_eq!(e.ignored("http", "minio.lan", 9000), None);
    // Read (wrongly, as Go does) as a proxy on the host `socks5`: not ignored.
    let e = env(&[("HTTP_PROXY", "socks5://u:p^w@127.0.0.1:1081")]);
    assert_eq!(e.ignored("http", "minio.lan", 9000), None);
    assert_eq!(env(&[]).ignored("http", "minio.lan", 9000), None);
}

#[test]
fn a_value_that_is_not_utf8_is_a_proxy_on_a_host_that_cannot_resolve() {
    // from_env reads an invalid byte as U+FFFD: in the host, Go keeps the byte, restic
    // looks the name up and fails; the proxy is used, and fails, here too.
    let e = env(&[("HTTP_PROXY", "http://127.0.0.1\u{fffd}:3128")]);
    assert_eq!(
        via(&e, "http", "minio.lan", 9000).as_deref(),
        Some("http://127.0.0.1\u{fffd}:3128")
    );
    assert_eq!(e.ignored("http", "minio.lan", 9000), None);
}

#[test]
fn text_of_a_password_is_never_shown_as_the_proxy_host() {
    // A '/' in the password ends the authority; "%rd" then fails the path: no proxy.
    let e = env(&[("HTTPS_PROXY", "socks5://u:S0cks:p@ss/w%rd@host")]);
    assert_eq!(e.proxy_for("https", "minio.lan", 443), Ok(None));
    // Here Go finds the host "u" (the user name) and port 12; it is used, never shown.
    let e = env(&[("HTTPS_PROXY", "socks5://u:12/pw@proxy.lan:1080")]);
    let p = e
        .proxy_for("https", "minio.lan", 443)
        .expect("valid")
        .expect("a proxy");
    assert_eq!((p.host.as_str(), p.port.as_str()), ("u", "12"));
    assert!(!p.address().contains("u:") && !p.address().contains("12"));
    assert!(p.address().contains("not shown"), "{}", p.address());
}

#[test]
fn only_a_leading_star_dot_is_cut_from_no_proxy() {
    // F2: "*vm" is a literal pattern (".*vm"), not "vm".
    let e = env(&[("HTTP_PROXY", "http://p:1"), ("NO_PROXY", "*vm")]);
    assert!(via(&e, "http", "vm", 9000).is_some());
    assert!(via(&e, "http", "s3.vm", 9000).is_some());
    let e = env(&[("HTTP_PROXY", "http://p:1"), ("NO_PROXY", "*.vm")]);
    assert!(via(&e, "http", "s3.vm", 9000).is_none());
    assert!(via(&e, "http", "vm", 9000).is_some());
    let e = env(&[("HTTP_PROXY", "http://p:1"), ("NO_PROXY", " * ")]);
    assert!(via(&e, "http", "vm", 9000).is_none());
}

#[test]
fn localhost_and_addresses_compare_as_go_compares_them() {
    // F3: "localhost" is compared before lower-casing.
    let e = env(&[("HTTP_PROXY", "http://p:1")]);
    assert!(via(&e, "http", "LOCALHOST", 9000).is_some());
    assert!(via(&e, "http", "localhost", 9000).is_none());
    // IPv4-mapped loopback is loopback (net.IP.IsLoopback).
    assert!(via(&e, "http", "::ffff:127.0.0.1", 9000).is_none());
    // net.IP.Equal: an IPv4-mapped address is the IPv4 address, both ways.
    let no = |list: &str, host: &str| {
        let e = env(&[("HTTP_PROXY", "http://p:1"), ("NO_PROXY", list)]);
        via(&e, "http", host, 9000).is_none()
    };
    assert!(no("::ffff:192.0.2.2", "192.0.2.2"));
    assert!(no("192.0.2.2", "::ffff:192.0.2.2"));
    assert!(no("[::ffff:192.0.2.2]:9000", "192.0.2.2"));
    assert!(!no("::ffff:192.0.2.2", "192.0.2.3"));
    // IPNet.Contains: mapped ranges are IPv4 ranges.
    assert!(no("::ffff:192.0.2.0/120", "192.0.2.9"));
    assert!(!no("::ffff:192.0.2.0/120", "192.0.3.9"));
    assert!(no("192.0.2.0/24", "::ffff:192.0.2.9"));
    assert!(no("::ffff:0:0/96", "203.0.113.1"));
    assert!(!no("::/0", "203.0.113.1"));
    // ParseCIDR takes digits only.
    assert!(!no("192.0.2.0/+24", "192.0.2.9"));
}

#[test]
fn debug_shows_no_login() {
    let e = env(&[("HTTPS_PROXY", "socks5://user:Pr0xy-Secret@127.0.0.1:1080")]);
    let proxy = e
        .proxy_for("https", "storage.example", 443)
        .unwrap()
        .expect("a proxy for https");
    for text in [format!("{e:?}"), format!("{proxy:?}")] {
        assert!(!text.contains("Pr0xy-Secret"), "{text}");
        assert!(!text.contains("user"), "{text}");
    }
    assert!(format!("{proxy:?}").contains("127.0.0.1:1080"));
}

/// Messages name the one variable the proxy came from, in the case it was written.
#[test]
fn the_proxy_names_its_variable() {
    let env = ProxyEnv::from_lookup(|name| match name {
        "https_proxy" => Some("http://secure.proxy:3128".into()),
        "HTTP_PROXY" => Some("http://plain.proxy:3128".into()),
        _ => None,
    });
    let via = |scheme| {
        env.proxy_for(scheme, "minio.lan", 9000)
            .expect("a proxy is chosen")
            .expect("one is set")
            .described()
    };
    assert_eq!(via("https"), "secure.proxy:3128 (from https_proxy)");
    assert_eq!(via("http"), "plain.proxy:3128 (from HTTP_PROXY)");
}
