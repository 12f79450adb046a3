use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Each host form restic's Go reads as an address, with the addresses it dials; every other
/// form is a name (lower case) to look up.
#[test]
fn hosts_read_as_go_reads_them() {
    let address = |s: &[&str]| Reading::Address(s.iter().map(|a| ip(a)).collect());
    let name = |s: &str| Reading::Name(s.to_string());
    for (host, reading) in [
        ("127.0.0.1", address(&["127.0.0.1"])),
        ("0.0.0.0", address(&["0.0.0.0"])),
        ("::1", address(&["::1"])),
        // Go's fallback for the unspecified IPv6 address.
        ("::", address(&["::", "0.0.0.0"])),
        ("0:0:0:0:0:0:0:0", address(&["::", "0.0.0.0"])),
        // IPv4-mapped: dialled as IPv4; IPv4-compatible stays IPv6.
        ("::ffff:127.0.0.1", address(&["127.0.0.1"])),
        ("::ffff:7f00:1", address(&["127.0.0.1"])),
        ("::ffff:0.0.0.0", address(&["0.0.0.0"])),
        ("::127.0.0.1", address(&["::7f00:1"])),
        // inet_aton's forms are names to Go.
        ("0x7f000001", name("0x7f000001")),
        ("0x7F000001", name("0x7f000001")),
        ("0177.0.0.1", name("0177.0.0.1")),
        ("127.000.000.001", name("127.000.000.001")),
        ("127.1", name("127.1")),
        ("2130706433", name("2130706433")),
        ("0", name("0")),
        ("127.0.0.1.", name("127.0.0.1.")),
        ("fe80::1%lo", name("fe80::1%lo")),
        ("LOCALHOST", name("localhost")),
        ("localhost.", name("localhost.")),
        ("minio_1", name("minio_1")),
    ] {
        assert_eq!(read(host), reading, "{host}");
    }
}

#[test]
fn the_hosts_file_is_read_as_go_reads_it() {
    let hosts = "\
# comment 10.0.0.1 commented
127.0.0.1\tlocalhost Vm  # the machine
::1 localhost ip6-localhost
10.0.0.7 minio_1 minio.lan 2130706433
not-an-address ghost
10.0.0.8
10.0.0.9 trailing.dot.
:: anywhere
";
    let found = |name: &str| from_hosts(hosts, name);
    assert_eq!(found("localhost"), [ip("127.0.0.1"), ip("::1")]);
    assert_eq!(found("vm"), [ip("127.0.0.1")]);
    assert_eq!(found("minio_1"), [ip("10.0.0.7")]);
    assert_eq!(found("minio.lan"), [ip("10.0.0.7")]);
    // A name with a dot matches with or without its trailing dot; one without does not.
    assert_eq!(found("minio.lan."), [ip("10.0.0.7")]);
    assert_eq!(found("trailing.dot"), [ip("10.0.0.9")]);
    assert!(found("localhost.").is_empty());
    // An all-digit name in the file is a name like any other.
    assert_eq!(found("2130706433"), [ip("10.0.0.7")]);
    assert_eq!(found("::"), Vec::<IpAddr>::new());
    assert_eq!(found("anywhere"), [ip("::")]);
    for absent in ["ghost", "commented", "10.0.0.8", "local", "host"] {
        assert!(found(absent).is_empty(), "{absent}");
    }
}

/// A line whose address Go cannot read (or that it splits otherwise) is skipped by Go, which
/// then asks DNS; the C library would read it (`0177.0.0.1` is 127.0.0.1 to inet_aton) and
/// answer from it, so such a name is asked as an absolute name, which the C library's hosts file does not hold (review: an
/// /etc/hosts line `0177.0.0.1 octal.test` passed validate while restic found no such host).
#[test]
fn a_name_listed_only_with_an_address_go_skips_is_told() {
    let hosts = "\
0177.0.0.1 octal.test
127.0.0.01\tzeros.test
0x7f.0.0.1 hex.test
127.1 short.test
127.1 both.test
10.0.0.1 both.test
127.0.0.1\x0bvtab.test
127.0.0.1\x0cformfeed.test Other.test
";
    for name in [
        "octal.test",
        "zeros.test",
        "hex.test",
        "short.test",
        "both.test",
        "vtab.test",
        "other.test",
        "other.test.",
    ] {
        assert!(listed_unreadably(hosts, name), "{name}");
    }
    assert!(!listed_unreadably(hosts, "absent.test"));
    assert!(from_hosts(hosts, "octal.test").is_empty());
    // Go splits fields at spaces and tabs only: such a line is one field to it, and skipped.
    assert!(from_hosts(hosts, "vtab.test").is_empty());
    assert!(from_hosts(hosts, "other.test").is_empty());
    assert_eq!(from_hosts(hosts, "both.test"), [ip("10.0.0.1")]);
}

#[test]
fn domain_names_are_what_go_looks_up() {
    for name in [
        "minio",
        "minio_1",
        "minio.lan",
        "minio.lan.",
        "0x7f000001",
        "0x7f.1",
        "1.2.3.x",
        "a-b",
        ".",
    ] {
        assert!(is_domain_name(name), "{name}");
    }
    for not in [
        "",
        "127.1",
        "0",
        "2130706433",
        "127.000.000.001",
        "127.0.0.1.",
        "-minio",
        "minio-",
        "minio-.lan",
        "mi..nio",
        ".minio",
        "fe80::1%lo",
        "mi nio",
    ] {
        assert!(!is_domain_name(not), "{not}");
    }
    assert!(!is_domain_name(&format!("{}.lan", "a".repeat(64))));
    assert!(is_domain_name(&format!("{}.lan", "a".repeat(63))));
}

#[test]
fn the_c_library_reads_inet_aton_forms_as_addresses() {
    let v4 = |s: &str| c_numeric_ipv4(s).map(|a| a.to_string());
    for (given, read) in [
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.000.000.001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("10.0.0.1", "10.0.0.1"),
        ("1.2.65535", "1.2.255.255"),
    ] {
        assert_eq!(v4(given).as_deref(), Some(read), "{given}");
    }
    for not in [
        "",
        "0x",
        "08",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.65536",
        "4294967296",
        "127.0.0.1.",
        "x1",
        "1a",
        "minio",
        "1..2",
    ] {
        assert_eq!(v4(not), None, "{not}");
    }
}

/// Resolved without a name server: the numeric forms restic cannot look up fail as restic
/// fails, and the unspecified address is dialled with Go's fallback.
#[tokio::test]
async fn names_restic_never_asks_dns_for_fail_and_say_how_to_write_the_address() {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    for host in ["127.1", "2130706433", "127.000.000.001", "0", "127.0.0.1."] {
        match resolve(host, 9000, deadline).await {
            Err(ConnectError::Dns { why }) => {
                assert!(why.starts_with("no such host"), "{host}: {why}");
                // Never the host itself ("0" is in "0 to 255").
                assert!(host == "0" || !why.contains(host), "{host}: {why}");
            }
            other => panic!("{host}: {other:?}"),
        }
    }
    assert_eq!(
        resolve("::", 9000, deadline).await,
        Ok(vec![
            "[::]:9000".parse().expect("an address"),
            "0.0.0.0:9000".parse().expect("an address")
        ])
    );
    assert_eq!(
        resolve("::ffff:127.0.0.1", 9000, deadline).await,
        Ok(vec!["127.0.0.1:9000".parse().expect("an address")])
    );
}
