//! Which region requests are signed for, decided as restic 0.14's S3 library (minio-go
//! v7.0.34) decides it.
//!
//! Rules:
//! - an endpoint is Amazon S3, and names a region, as minio-go reads the endpoint exactly as
//!   typed, case, trailing dot and port included (`catalog::amazon`): `S3.AMAZONAWS.COM` is
//!   not Amazon S3 to restic and is asked for the bucket's location like any other server;
//! - a region handed to restic (`AWS_DEFAULT_REGION`, from the set's `_region` credential)
//!   wins; else the region an AWS host names (`s3.<region>.amazonaws.com`,
//!   `s3-<region>.amazonaws.com`, `s3.dualstack.<region>.amazonaws.com`); then the region is
//!   *configured* and never changed by a server's answer;
//! - otherwise the bucket's location is asked (`GET /bucket/?location`, signed for
//!   `us-east-1`); a refusal that names a region (`AuthorizationHeaderMalformed`,
//!   `InvalidRegion`, `AccessDenied`) gives that region, one naming none gives `us-east-1`;
//!   and a request refused later with another region is asked once more in that region.

use crate::catalog;

/// The region requests are signed for when nothing names one.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// The error codes with which a server names the region it wants.
pub(crate) const REGION_CODES: [&str; 3] = [
    "AuthorizationHeaderMalformed",
    "InvalidRegion",
    "AccessDenied",
];

/// Whether the endpoint `typed_host` (as typed, `host[:port]`) is Amazon S3 to restic.
pub(crate) fn is_aws(typed_host: &str) -> bool {
    catalog::is_amazon(typed_host)
}

/// The region an AWS endpoint names, as minio-go's `GetRegionFromURL` reads the endpoint as
/// typed (`S3.EU-WEST-1.amazonaws.com` names none, `s3.EU-WEST-1.amazonaws.com` names
/// `EU-WEST-1`); `None` for other hosts and for `s3.amazonaws.com` /
/// `s3-external-1.amazonaws.com`.
pub(crate) fn host_region(typed_host: &str) -> Option<String> {
    catalog::region_from_host(typed_host)
}

/// The host requests go to once the bucket's region is known: minio-go sends requests for a
/// bucket outside `us-east-1` found through `s3.amazonaws.com` (exactly so typed) to that
/// region's endpoint.
pub(crate) fn regional_host(typed_host: &str, region: &str) -> Option<String> {
    let generic = typed_host == "s3.amazonaws.com";
    (generic && region != DEFAULT_REGION).then(|| format!("s3.{region}.amazonaws.com"))
}

/// Where the region came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegionSource {
    /// The set's `_region` credential.
    Credential,
    /// The AWS host name of the repository URL.
    Host,
    /// The server's answer (bucket location or a region error).
    Server,
    /// Nothing named one.
    Default,
}

/// The configured region of a set: its credential, else its AWS endpoint's (as typed).
pub(crate) fn configured(
    credential: Option<&str>,
    typed_host: &str,
) -> Option<(String, RegionSource)> {
    if let Some(r) = credential.map(str::trim).filter(|r| !r.is_empty()) {
        return Some((r.to_string(), RegionSource::Credential));
    }
    host_region(typed_host).map(|r| (r, RegionSource::Host))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// minio-go reads the endpoint as typed: case, a trailing dot and a port make another
    /// endpoint, whose region the server is asked for (before, cio lowercased and trimmed).
    #[test]
    fn the_endpoint_is_read_as_typed() {
        for host in [
            "S3.AMAZONAWS.COM",
            "S3.Amazonaws.com",
            "s3.amazonaws.com.",
            "s3.amazonaws.com:443",
        ] {
            assert!(!is_aws(host), "{host}");
            assert_eq!(regional_host(host, "eu-west-1"), None, "{host}");
        }
        for host in [
            "S3.EU-WEST-1.AMAZONAWS.COM",
            "s3.eu-west-1.amazonaws.com.",
            "s3.eu-west-1.amazonaws.com:443",
            "s3.kubernetesfrontendlb-caf78da2b1f7516c.elb.us-west-2.amazonaws.com",
        ] {
            assert_eq!(configured(None, host), None, "{host}");
        }
        assert_eq!(
            configured(None, "s3.EU-WEST-1.amazonaws.com"),
            Some(("EU-WEST-1".into(), RegionSource::Host))
        );
        assert_eq!(
            configured(None, "s3.cn-north-1.amazonaws.com.cn"),
            Some(("cn-north-1".into(), RegionSource::Host))
        );
        assert!(is_aws("s3.cn-north-1.amazonaws.com.cn"));
    }

    #[test]
    fn regions_from_aws_hosts() {
        assert_eq!(host_region("s3.amazonaws.com"), None);
        assert_eq!(
            host_region("s3.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            host_region("s3-us-west-2.amazonaws.com").as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            host_region("s3.dualstack.ap-south-1.amazonaws.com").as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(host_region("s3-external-1.amazonaws.com"), None);
        assert_eq!(host_region("minio.example.com"), None);
        assert!(is_aws("s3.amazonaws.com"));
        assert!(!is_aws("s3.nl-ams.scw.cloud"));
    }

    #[test]
    fn a_bucket_found_through_the_global_host_is_asked_at_its_region() {
        assert_eq!(
            regional_host("s3.amazonaws.com", "eu-west-1").as_deref(),
            Some("s3.eu-west-1.amazonaws.com")
        );
        assert_eq!(regional_host("s3.amazonaws.com", "us-east-1"), None);
        assert_eq!(
            regional_host("s3.eu-west-1.amazonaws.com", "eu-west-1"),
            None
        );
        assert_eq!(regional_host("minio.lan", "nl-ams"), None);
    }

    #[test]
    fn the_credential_wins_over_the_host() {
        assert_eq!(
            configured(Some("nl-ams"), "s3.eu-west-1.amazonaws.com"),
            Some(("nl-ams".into(), RegionSource::Credential))
        );
        assert_eq!(
            configured(None, "s3.eu-west-1.amazonaws.com"),
            Some(("eu-west-1".into(), RegionSource::Host))
        );
        assert_eq!(configured(Some(" "), "minio:9000"), None);
    }
}
