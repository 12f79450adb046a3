//! Whether an endpoint is Amazon S3, and which region its name gives, decided exactly as
//! restic 0.14's S3 library decides it (minio-go v7.0.34, `pkg/s3utils/utils.go`:
//! `GetRegionFromURL`, `IsAmazonEndpoint`).
//!
//! Rules:
//! - the input is the endpoint *exactly as typed* (Go's `url.URL.Host`: the host name with
//!   `:port` when the URL has one, even `:443` or an empty one), never lowercased or
//!   otherwise normalised: minio-go compares it byte for byte and with its regular
//!   expressions as written, unescaped dots included. `S3.AMAZONAWS.COM`, `s3.amazonaws.com.`
//!   and `s3.amazonaws.com:443` are not Amazon S3 to it (it asks them for the bucket's
//!   location and sends path-style requests to them as typed), and `s3.EU-WEST-1.amazonaws.com`
//!   is Amazon S3 with the region `EU-WEST-1` (which it signs for as it is);
//! - DNS is not part of this: the name is still looked up case-insensitively.

use std::sync::LazyLock;

use regex_lite::Regex;

/// minio-go's host patterns, in the order `GetRegionFromURL` tries them (v7.0.34).
struct Patterns {
    elb: Regex,
    elb_cn: Regex,
    dualstack: Regex,
    fips_dualstack: Regex,
    fips: Regex,
    hyphen: Regex,
    china: Regex,
    china_dualstack: Regex,
    dot: Regex,
    private_link: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    // The patterns are fixed text copied from minio-go; a test compiles every one of them.
    let re = |p: &str| Regex::new(p).expect("minio-go's fixed patterns compile");
    Patterns {
        elb: re(r"elb(.*?).amazonaws.com$"),
        elb_cn: re(r"elb(.*?).amazonaws.com.cn$"),
        dualstack: re(r"^s3.dualstack.(.*?).amazonaws.com$"),
        fips_dualstack: re(r"^s3-fips.dualstack.(.*?).amazonaws.com$"),
        fips: re(r"^s3-fips.(.*?).amazonaws.com$"),
        hyphen: re(r"^s3-(.*?).amazonaws.com$"),
        china: re(r"^s3.(cn.*?).amazonaws.com.cn$"),
        china_dualstack: re(r"^s3.dualstack.(cn.*?).amazonaws.com.cn$"),
        dot: re(r"^s3.(.*?).amazonaws.com$"),
        private_link: re(r"^(?:bucket|accesspoint).vpce-.*?.s3.(.*?).vpce.amazonaws.com$"),
    }
});

/// The first group of `re` in `host`, as Go's `FindStringSubmatch(host)[1]`.
fn group<'h>(re: &Regex, host: &'h str) -> Option<&'h str> {
    re.captures(host)?.get(1).map(|m| m.as_str())
}

/// minio-go's `IsAmazonFIPSUSEastWestEndpoint`.
fn is_fips_us_east_west(host: &str) -> bool {
    matches!(
        host,
        "s3-fips.us-east-2.amazonaws.com"
            | "s3-fips.dualstack.us-west-1.amazonaws.com"
            | "s3-fips.dualstack.us-west-2.amazonaws.com"
            | "s3-fips.dualstack.us-east-2.amazonaws.com"
            | "s3-fips.dualstack.us-east-1.amazonaws.com"
            | "s3-fips.us-west-1.amazonaws.com"
            | "s3-fips.us-west-2.amazonaws.com"
            | "s3-fips.us-east-1.amazonaws.com"
    )
}

/// minio-go's `IsAmazonFIPSGovCloudEndpoint`.
fn is_fips_gov_cloud(host: &str) -> bool {
    matches!(
        host,
        "s3-fips-us-gov-west-1.amazonaws.com"
            | "s3-fips.us-gov-west-1.amazonaws.com"
            | "s3-fips.dualstack.us-gov-west-1.amazonaws.com"
    )
}

/// minio-go's `GetRegionFromURL`: the region the endpoint `host` (as typed) names, as it is
/// written there; `None` where minio-go finds none (it then asks the bucket's location).
pub(crate) fn region_from_host(host: &str) -> Option<String> {
    let p = &*PATTERNS;
    if host == "s3-external-1.amazonaws.com" {
        return None;
    }
    if host == "s3-us-gov-west-1.amazonaws.com" || is_fips_gov_cloud(host) {
        return Some("us-gov-west-1".to_string());
    }
    if p.elb.is_match(host) || p.elb_cn.is_match(host) {
        return None;
    }
    let fips: &[&Regex] = if is_fips_us_east_west(host) {
        &[&p.fips_dualstack, &p.fips]
    } else {
        &[]
    };
    std::iter::once(&p.dualstack)
        .chain(fips.iter().copied())
        .chain([
            &p.hyphen,
            &p.china,
            &p.china_dualstack,
            &p.dot,
            &p.private_link,
        ])
        .find_map(|re| group(re, host))
        .filter(|region| !region.is_empty())
        .map(str::to_string)
}

/// minio-go's `IsAmazonEndpoint`: whether restic treats the endpoint `host` (as typed) as
/// Amazon S3 (signature V4, virtual-host-style requests, requests moved to the bucket's
/// regional endpoint).
pub(crate) fn is_amazon(host: &str) -> bool {
    host == "s3-external-1.amazonaws.com"
        || host == "s3.amazonaws.com"
        || region_from_host(host).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// minio-go v7.0.34's own table (`TestGetRegionFromURL`), Amazon hosts as typed.
    #[test]
    fn regions_as_minio_go_reads_them() {
        for (host, region) in [
            ("storage.googleapis.com", None),
            ("s3.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            (
                "s3.dualstack.cn-north-1.amazonaws.com.cn",
                Some("cn-north-1"),
            ),
            ("s3.cn-northwest-1.amazonaws.com.cn", Some("cn-northwest-1")),
            ("s3-fips-us-gov-west-1.amazonaws.com", Some("us-gov-west-1")),
            ("s3-fips.us-gov-west-1.amazonaws.com", Some("us-gov-west-1")),
            ("s3-us-gov-west-1.amazonaws.com", Some("us-gov-west-1")),
            ("192.168.1.1", None),
            ("s3-eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("s3.eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("s3.dualstack.eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("s3.amazonaws.com", None),
            ("s3-external-1.amazonaws.com", None),
            (
                "s3.kubernetesfrontendlb-caf78da2b1f7516c.elb.us-west-2.amazonaws.com",
                None,
            ),
            (
                "s3.kubernetesfrontendlb-caf78da2b1f7516c.elb.amazonaws.com",
                None,
            ),
            (
                "bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
                Some("us-east-1"),
            ),
            (
                "accesspoint.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
                Some("us-east-1"),
            ),
            ("s3-fips.us-east-1.amazonaws.com", Some("us-east-1")),
            (
                "s3-fips.dualstack.us-west-1.amazonaws.com",
                Some("us-west-1"),
            ),
        ] {
            assert_eq!(region_from_host(host).as_deref(), region, "{host}");
        }
    }

    /// The host exactly as typed: case, a trailing dot and a port all count, and the dots in
    /// minio-go's patterns match any character.
    #[test]
    fn the_host_is_read_as_typed() {
        for (host, region, amazon) in [
            ("S3.AMAZONAWS.COM", None, false),
            ("S3.amazonaws.com", None, false),
            ("s3.amazonaws.com.", None, false),
            ("s3.amazonaws.com:443", None, false),
            ("s3.eu-west-1.amazonaws.com:443", None, false),
            ("s3.EU-WEST-1.amazonaws.com", Some("EU-WEST-1"), true),
            ("S3.eu-west-1.amazonaws.com", None, false),
            ("s3.eu-west-1.AMAZONAWS.COM", None, false),
            ("s3-EU-WEST-1.amazonaws.com", Some("EU-WEST-1"), true),
            (
                "s3.dualstack.EU-WEST-1.amazonaws.com",
                Some("EU-WEST-1"),
                true,
            ),
            ("s3-eu-west-1-amazonaws-com", Some("eu-west-1"), true),
            ("s3.shelby.amazonaws.com", None, false),
            ("s3.amazonaws.com", None, true),
            ("s3-external-1.amazonaws.com", None, true),
            ("S3-EXTERNAL-1.AMAZONAWS.COM", None, false),
            ("minio.example.com", None, false),
            ("s3.nl-ams.scw.cloud", None, false),
        ] {
            assert_eq!(region_from_host(host).as_deref(), region, "{host}");
            assert_eq!(is_amazon(host), amazon, "{host}");
        }
    }
}
