//! Repository URLs, read exactly as restic 0.14 reads them (`internal/backend/s3/config.go`,
//! `ParseConfig`):
//!
//! - `s3:http...`: the text after `s3:` is a URL (Go's `url.Parse`): the host is the endpoint,
//!   the percent-decoded path's first element the bucket, the rest the prefix; `?query` and
//!   `#fragment` are dropped. `http` means plain HTTP, anything else HTTPS.
//! - `s3://HOST/BUCKET[/PREFIX]` (the older form) and `s3:HOST/BUCKET[/PREFIX]`: split at the
//!   first two `/`, HTTPS, no decoding.
//! - The prefix is cleaned with Go's `path.Clean`, and restic's keys are
//!   `path.Join(prefix, "config")` and so on.
//!
//! What restic then fails with, or reads as another place than the text suggests, is refused
//! with the fix: `//` that makes an empty bucket or a prefix starting with `/`, a prefix
//! climbing out of the bucket, a host that is no host, a user name or password in the URL.

use super::amazon;
use super::bucket::{self, BucketName};
use super::host::{self, Host};
use super::text::is_unwanted;
use super::violations::RuleViolation;
use super::warnings::Warning;

/// A restic S3 repository location: where restic connects and which keys it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// `https` or `http`.
    pub scheme: String,
    /// The endpoint: host, with `:port` when one was given (IPv6 in brackets).
    pub host: String,
    /// The endpoint exactly as typed (Go's `url.URL.Host`), which restic's S3 library reads
    /// to tell Amazon S3 and its region ([`RepoUrl::typed_host`]).
    typed_host: String,
    pub bucket: String,
    /// The path inside the bucket restic uses, cleaned as restic cleans it: no leading or
    /// trailing `/`, no `.` or `..` elements; empty for the bucket's root.
    pub prefix: String,
    /// What restic ignores or merely tolerates, for [`RepoUrl::warnings`].
    notes: Notes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Notes {
    legacy_bucket: bool,
    virtual_host: bool,
    ignored_part: bool,
}

impl RepoUrl {
    /// The endpoint exactly as typed, port (even an empty one) included: what minio-go
    /// compares, case and all, to tell Amazon S3 and the region its name gives
    /// (`catalog::amazon`). Use [`RepoUrl::host`] to connect.
    pub(crate) fn typed_host(&self) -> &str {
        &self.typed_host
    }

    /// The endpoint URL an S3 client is given: `scheme://host`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The URL of the repository at `prefix` in this URL's bucket, written so that restic
    /// reads it back as exactly that place: `s3:SCHEME://HOST/BUCKET[/PREFIX]`, with the
    /// characters Go's URL parser would read otherwise (`%`, `?`, `#`), white space, and the
    /// control, format and other invisible characters a value may not hold, percent-encoded. `text_at(&self.prefix)` is this URL as restic reads it.
    pub fn text_at(&self, prefix: &str) -> String {
        let mut url = format!("s3:{}/{}", self.endpoint(), self.bucket);
        if !prefix.is_empty() {
            url.push('/');
            url.push_str(&url_path(prefix));
        }
        url
    }

    /// Parses a repository URL as restic does; see the module documentation.
    pub fn parse(value: &str) -> Result<RepoUrl, RuleViolation> {
        // restic's test is this very prefix, so `s3:httpbin.example/b` is a URL to it too.
        if value.starts_with("s3:http") {
            return parse_url(&value["s3:".len()..]);
        }
        if let Some(rest) = value
            .strip_prefix("s3://")
            .or_else(|| value.strip_prefix("s3:"))
        {
            if rest.contains("://") {
                // `s3:HTTPS://...`, `s3:ftp://...`: restic reads an endpoint "HTTPS:".
                return Err(RuleViolation::RepoNotS3);
            }
            let mut parts = rest.splitn(3, '/');
            let authority = parts.next().unwrap_or_default();
            let host = host::parse(authority)?;
            let bucket = parts.next().ok_or(RuleViolation::RepoNoBucket)?;
            return build("https", (authority, &host), bucket, parts.next(), false);
        }
        let lowered = value.to_ascii_lowercase();
        if lowered.starts_with("https://") || lowered.starts_with("http://") {
            return Err(RuleViolation::RepoMissingS3Prefix);
        }
        Err(RuleViolation::RepoNotS3)
    }

    /// The warnings this location gets: plain HTTP, a legacy bucket name, a bucket that
    /// seems to be in the host name, a part restic ignores.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut warnings = Vec::new();
        if self.scheme == "http" {
            warnings.push(Warning::PlainHttp);
        }
        if self.notes.legacy_bucket {
            warnings.push(Warning::LegacyBucketName);
        }
        if self.notes.virtual_host {
            warnings.push(Warning::VirtualHostStyle);
        }
        if self.notes.ignored_part {
            warnings.push(Warning::IgnoredUrlPart);
        }
        warnings
    }
}

/// The `s3:http...` form: `url` is the text after `s3:`.
fn parse_url(url: &str) -> Result<RepoUrl, RuleViolation> {
    let (scheme, rest) = url.split_once("://").ok_or(RuleViolation::RepoNotHttpUrl)?;
    // Go lowercases the scheme; restic then asks only whether it is "http".
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return Err(RuleViolation::RepoNotHttpUrl),
    };
    let (rest, ignored_part) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = host::parse(authority)?;
    let path = path.strip_prefix('/').ok_or(RuleViolation::RepoNoBucket)?;
    let path = percent_decode(path)?;
    let mut parts = path.splitn(2, '/');
    let bucket = parts.next().unwrap_or_default();
    build(
        scheme,
        (authority, &host),
        bucket,
        parts.next(),
        ignored_part,
    )
}

/// `prefix` as the path of a URL that Go's parser reads back as it: `%`, `?`, `#`, white
/// space and the control, format and other invisible characters percent-encoded (as UTF-8
/// bytes, `%0A`), everything else as it is.
pub(crate) fn url_path(prefix: &str) -> String {
    let mut path = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '%' | '?' | '#') || c.is_whitespace() || is_unwanted(c) {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                path.push_str(&format!("%{b:02X}"));
            }
        } else {
            path.push(c);
        }
    }
    path
}

/// Go's `url.PathUnescape` for a path: `%XY` with two hex digits, decoding to UTF-8 text (the
/// only keys minio-go sends; it refuses the rest before any request). Any character may come
/// of an escape, a control character too: restic stores under such a prefix wherever the
/// server lists keys URL-encoded as asked (AWS, MinIO, moto); where a server lists them raw
/// and XML cannot hold them, validate fails as restic does. The `percent-encoding` crate
/// decodes; it leaves a bad escape as it is, so the escapes are checked first.
fn percent_decode(path: &str) -> Result<String, RuleViolation> {
    let bytes = path.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return Err(RuleViolation::RepoBadEscape);
    }
    percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| RuleViolation::RepoBadEscape)
}

/// restic's `createConfig`: the bucket as given, the prefix cleaned. `host` is the endpoint
/// as typed and as checked.
fn build(
    scheme: &str,
    (typed_host, host): (&str, &Host),
    bucket: &str,
    prefix: Option<&str>,
    ignored_part: bool,
) -> Result<RepoUrl, RuleViolation> {
    if bucket.is_empty() {
        // `s3:https://host//bucket`: restic's bucket is "" and it fails.
        return Err(match prefix {
            Some(p) if !p.is_empty() => RuleViolation::RepoDoubleSlash,
            _ => RuleViolation::RepoNoBucket,
        });
    }
    let legacy_bucket = bucket::check(bucket)? == BucketName::Legacy;
    let prefix = match prefix {
        Some(p) if !p.is_empty() => clean(p),
        _ => String::new(),
    };
    if prefix.starts_with('/') {
        // `bucket//prefix`: restic keeps the '/' and its keys start with it.
        return Err(RuleViolation::RepoDoubleSlash);
    }
    if prefix == ".." || prefix.starts_with("../") {
        return Err(RuleViolation::RepoPrefixAboveBucket);
    }
    // `path.Join(".", "config")` is "config": a prefix of "." is the bucket's root.
    let prefix = if prefix == "." { String::new() } else { prefix };
    // minio-go's `isValidEndpointURL`, on the host as typed (case and all): a bucket in an
    // Amazon or Google host name is refused (`Hostname()` is the name without the port,
    // `IsAmazonEndpoint` and `IsGoogleEndpoint` read the name with it).
    let hostname = typed_host
        .rsplit_once(':')
        .filter(|_| !host.is_ipv6)
        .map_or(typed_host, |(name, _)| name);
    if hostname.contains(".s3.amazonaws.com") && !amazon::is_amazon(typed_host) {
        // minio-go refuses it: "Amazon S3 endpoint should be 's3.amazonaws.com'".
        return Err(RuleViolation::RepoBucketInHost(
            "Amazon S3",
            "s3.REGION.amazonaws.com",
        ));
    }
    if hostname.contains(".googleapis.com") && typed_host != "storage.googleapis.com" {
        // minio-go: "Google Cloud Storage endpoint should be 'storage.googleapis.com'".
        return Err(RuleViolation::RepoBucketInHost(
            "Google Cloud Storage",
            "storage.googleapis.com",
        ));
    }
    let labels = host.dns_labels();
    Ok(RepoUrl {
        scheme: scheme.to_string(),
        host: host.endpoint(),
        typed_host: typed_host.to_string(),
        bucket: bucket.to_string(),
        prefix,
        notes: Notes {
            legacy_bucket,
            virtual_host: is_virtual_host(&labels),
            ignored_part,
        },
    })
}

/// A host whose first label is followed by an `s3` or `s3-...` label, as in
/// `mybucket.s3.eu-west-1.example.com`: the first label is most likely a bucket.
fn is_virtual_host(labels: &[String]) -> bool {
    let is_s3 = |label: &String| label == "s3" || label.starts_with("s3-");
    labels.len() > 2 && !is_s3(&labels[0]) && labels[1..labels.len() - 1].iter().any(is_s3)
}

/// Go's `path.Clean` (Rob Pike's lexical rules, as Go implements them): one `/` between
/// elements, `.` elements removed, `..` removing the element before it, `..` at the start of
/// a rooted path removed; `"."` for an empty result. Written here because restic's prefix is
/// exactly this function's result, and no crate promises Go's corner cases (`std::path`
/// keeps `..`, other crates resolve against a file system).
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut elements: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                if elements.last().is_some_and(|last| *last != "..") {
                    elements.pop();
                } else if !rooted {
                    elements.push("..");
                }
            }
            other => elements.push(other),
        }
    }
    let joined = elements.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's own table for `path.Clean` (src/path/path_test.go).
    #[test]
    fn clean_matches_go() {
        for (given, expected) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(given), expected, "{given}");
        }
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("node%31").as_deref(), Ok("node1"));
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Ok("a/b c"));
        assert_eq!(percent_decode("a+b").as_deref(), Ok("a+b"));
        assert_eq!(
            percent_decode("a%0Ab%09c%0D%7F%C2%85%1B%00").as_deref(),
            Ok("a\nb\tc\r\u{7f}\u{85}\u{1b}\0")
        );
        for bad in ["a%zz", "a%2", "a%", "a%ff", "a%C3"] {
            assert_eq!(
                percent_decode(bad),
                Err(RuleViolation::RepoBadEscape),
                "{bad}"
            );
        }
        assert_eq!(percent_decode("b%C3%BCck").as_deref(), Ok("bück"));
    }

    /// A URL written for a prefix is read back as that prefix, whatever it holds.
    #[test]
    fn a_url_written_for_a_prefix_is_read_back_as_that_prefix() {
        let base = RepoUrl::parse("s3:http://127.0.0.1:9000/bkt2/old").expect("a URL");
        for prefix in [
            "q?x",
            "a#b",
            "100%",
            "%41",
            "sp ace/x",
            "a?b#c%d/e f",
            "node1",
            "",
            "ünï/cödé",
            "line\nbreak/t\tab",
            "del\u{7f}/c1\u{9b}31m",
            "\u{202e}rtl\u{200b}",
        ] {
            let text = base.text_at(prefix);
            let back = RepoUrl::parse(&text).expect("the written URL parses");
            assert_eq!(back.prefix, prefix, "{text}");
            assert_eq!(
                (back.host, back.bucket),
                (base.host.clone(), base.bucket.clone())
            );
        }
        assert_eq!(base.text_at("q?x"), "s3:http://127.0.0.1:9000/bkt2/q%3Fx");
        assert_eq!(base.text_at("a\nb"), "s3:http://127.0.0.1:9000/bkt2/a%0Ab");
        // The s3:HOST/... form does not decode: its URL is written in the s3:https:// form.
        let plain = RepoUrl::parse("s3:minio.example/bkt/a%41").expect("a URL");
        assert_eq!(plain.prefix, "a%41");
        assert_eq!(
            plain.text_at(&plain.prefix),
            "s3:https://minio.example/bkt/a%2541"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_clean_prefix_survives_the_round_trip(
            parts in proptest::collection::vec("[a-zA-Z0-9 ?#%&=+;:@!$'()*,~ü❤_-]{1,8}", 1..4),
        ) {
            let prefix = parts.join("/");
            proptest::prop_assume!(parts.iter().all(|p| p != "." && p != ".."));
            proptest::prop_assume!(!prefix.starts_with(char::is_whitespace) && !prefix.ends_with(char::is_whitespace));
            let base = RepoUrl::parse("s3:https://h.example/bucket").map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e:?}")))?;
            let text = base.text_at(&prefix);
            let back = RepoUrl::parse(&text).map(|u| u.prefix);
            proptest::prop_assert_eq!(back, Ok(prefix), "{}", text);
        }
    }

    /// minio-go refuses a bucket in an Amazon or Google host name by the host as typed
    /// (case, trailing dot and port included); cio refused by the lowercased name, so it
    /// refused URLs restic accepts.
    #[test]
    fn a_bucket_in_the_host_is_refused_as_minio_go_refuses_it() {
        let amazon = Err(RuleViolation::RepoBucketInHost(
            "Amazon S3",
            "s3.REGION.amazonaws.com",
        ));
        let google = Err(RuleViolation::RepoBucketInHost(
            "Google Cloud Storage",
            "storage.googleapis.com",
        ));
        for (url, refused) in [
            ("s3:https://mybucket.s3.amazonaws.com/bkt", &amazon),
            ("s3:mybucket.s3.amazonaws.com/bkt", &amazon),
            ("s3:https://mybucket.s3.amazonaws.com./bkt", &amazon),
            ("s3:https://mybucket.s3.amazonaws.com:443/bkt", &amazon),
            ("s3:https://x.s3.amazonaws.com.cn/bkt", &amazon),
            ("s3:https://mybucket.storage.googleapis.com/bkt", &google),
            ("s3:https://storage.googleapis.com:443/bkt", &google),
        ] {
            assert_eq!(&RepoUrl::parse(url).map(|u| u.host), refused, "{url}");
        }
        for url in [
            "s3:https://MYBUCKET.S3.AMAZONAWS.COM/bkt",
            "s3:https://mybucket.S3.amazonaws.com/bkt",
            "s3:https://s3.s3.amazonaws.com/bkt",
            "s3:https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/bkt",
            "s3:https://storage.googleapis.com/bkt",
            "s3:https://X.STORAGE.GOOGLEAPIS.COM/bkt",
        ] {
            assert!(RepoUrl::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn the_endpoint_is_kept_as_typed() {
        for (url, typed, host) in [
            (
                "s3:https://S3.Amazonaws.COM/bkt",
                "S3.Amazonaws.COM",
                "S3.Amazonaws.COM",
            ),
            (
                "s3:https://s3.amazonaws.com:/bkt",
                "s3.amazonaws.com:",
                "s3.amazonaws.com",
            ),
            ("s3:minio:09000/bkt", "minio:09000", "minio:9000"),
            ("s3:http://[::1]:9000/bkt", "[::1]:9000", "[::1]:9000"),
        ] {
            let repo = RepoUrl::parse(url).expect("a URL");
            assert_eq!((repo.typed_host(), repo.host.as_str()), (typed, host));
        }
    }

    #[test]
    fn virtual_host_style_is_noticed() {
        let labels = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        for host in [
            "mybucket.s3.eu-west-1.example.com",
            "mybucket.s3.wasabisys.com",
            "mybucket.s3.us-west-002.backblazeb2.com",
            "mybucket.s3-eu-west-1.example.com",
        ] {
            assert!(is_virtual_host(&labels(host)), "{host}");
        }
        for host in [
            "s3.eu-west-1.amazonaws.com",
            "s3-eu-west-1.amazonaws.com",
            "s3.wasabisys.com",
            "minio.example.com",
            "minio.s3",
            "s3",
        ] {
            assert!(!is_virtual_host(&labels(host)), "{host}");
        }
    }
}
