//! Host forms where the C library's `getaddrinfo` and restic's Go resolver part ways (a
//! black-box review found validate passing `0x7f000001`, which restic cannot look up, and
//! failing `[::]`, which restic reaches): each through restic, `validate` and `exec` on one
//! s3s-fs, which must agree. Forms `create` refuses (`127.1`, `2130706433`,
//! `127.000.000.001`) are in the rules' tables; the reading of each form and of the hosts
//! file is in cio-credential's resolver tables.

use testkit::proxy::{Tinyproxy, loopback_name};
use testkit::s3::S3Server;

use super::harness::*;

/// Runs the cases four at a time, then once more alone for a case stopped while restic was
/// still retrying (a busy machine); returns every disagreement and each verdict line.
fn run_all(cases: &[Case]) -> (Vec<String>, Vec<String>) {
    let results: Vec<Result<Outcome, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| scope.spawn(move || chunk.iter().map(run_case).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case thread"))
            .collect()
    });
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    for (c, r) in cases.iter().zip(results) {
        let r = match r {
            Err(e) if e.contains("(stopped: still retrying)") => run_case(c),
            other => other,
        };
        match r {
            Ok(o) => lines.push(format!("{}: {}", o.name, o.line)),
            Err(e) => failures.push(e),
        }
    }
    (failures, lines)
}

#[test]
fn restic_and_cio_agree_on_numeric_and_unspecified_hosts() {
    let s3 = S3Server::start(ACCESS, SECRET);
    s3.create_bucket("backups");
    s3.restic_init("backups", "c1", PW);
    let p = s3.port();
    let at = |host: &str| format!("s3:http://{host}:{p}/backups/c1");
    let proxy = Tinyproxy::start(&[]);
    let behind_proxy = at(&loopback_name());
    let proxy_at = |host: &str| format!("http://{host}:{}", proxy.port());
    let no_such_host = || fails("dns", "no such host");
    let cases = vec![
        // The C library reads inet_aton's forms as 127.0.0.1; restic looks them up as names.
        case("hexadecimal IPv4", &at("0x7f000001"), CAT, no_such_host()),
        case(
            "hexadecimal IPv4, upper case",
            &at("0x7F000001"),
            CAT,
            no_such_host(),
        ),
        case(
            "dotted IPv4, last part hexadecimal",
            &at("127.0.0.0x1"),
            CAT,
            no_such_host(),
        ),
        // Go dials [::], then 0.0.0.0: both are this machine to Linux.
        case("unspecified IPv6", &at("[::]"), CAT, Expect::Works),
        case(
            "unspecified IPv6, long form",
            &at("[0:0:0:0:0:0:0:0]"),
            CAT,
            Expect::Works,
        ),
        case("unspecified IPv4", &at("0.0.0.0"), CAT, Expect::Works),
        case(
            "IPv4-mapped unspecified",
            &at("[::ffff:0.0.0.0]"),
            CAT,
            Expect::Works,
        ),
        case(
            "IPv4-mapped loopback",
            &at("[::ffff:127.0.0.1]"),
            CAT,
            Expect::Works,
        ),
        case(
            "IPv4-mapped loopback, hex",
            &at("[::ffff:7f00:1]"),
            CAT,
            Expect::Works,
        ),
        // IPv4-compatible: an IPv6 address (::7f00:1) nothing routes.
        case(
            "IPv4-compatible loopback",
            &at("[::127.0.0.1]"),
            CAT,
            fails("unreachable", "dial tcp [::7f00:1]"),
        ),
        // The proxy's host is resolved the same way.
        case(
            "proxy at a hexadecimal IPv4",
            &behind_proxy,
            CAT,
            fails("proxy", "no such host"),
        )
        .env("HTTP_PROXY", &proxy_at("0x7f000001")),
        case(
            "proxy at the unspecified IPv6",
            &behind_proxy,
            CAT,
            Expect::Works,
        )
        .env("HTTP_PROXY", &proxy_at("[::]")),
    ];
    let (failures, lines) = run_all(&cases);
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    // A host the C library reads as an address says how restic reads one, never repeating
    // more of the URL than its host.
    for line in lines.iter().filter(|l| l.contains("FAIL endpoint dns")) {
        assert!(
            line.contains("restic reads an IPv4 address only as four decimal numbers"),
            "{line}"
        );
        assert!(!line.contains("backups/c1"), "{line}");
    }
}
