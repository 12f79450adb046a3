//! AWS Signature Version 4 in the `Authorization` header, for S3 requests.
//!
//! Written here (HMAC-SHA256 from RustCrypto's `hmac` and `sha2`) rather than taken from a
//! crate: `rusty-s3` signs presigned URLs only (query-string authentication), while restic
//! signs headers and moto enforces IAM policies only on header-signed requests; `aws-sigv4`
//! would bring back the AWS runtime crates that made the S3 SDK the slowest part of the build.
//! The algorithm is AWS's "Authenticating Requests: Using the Authorization Header"; the tests
//! check it against the signatures AWS publishes for its examples.
//!
//! Rules: the payload is always hashed (`x-amz-content-sha256` holds its SHA-256), as minio-go
//! does over plain HTTP; the signed headers are `host`, every `x-amz-*` header and
//! `content-md5`; the secret key is read only to derive the signing key.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::secret::SecretValue;

/// What SigV4 leaves unencoded: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The same, keeping `/` (for paths).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Percent-encodes a query name or value as SigV4 requires.
pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Percent-encodes a path (keeping `/`) as SigV4 and S3 require.
pub(crate) fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

/// Lowercase hex of SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Who signs, and for which region.
pub(crate) struct Signer<'a> {
    pub access_key: &'a SecretValue,
    pub secret_key: &'a SecretValue,
    pub region: &'a str,
}

/// One request to sign.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, already encoded with [`encode_path`].
    pub path: &'a str,
    /// Query pairs, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `host` (lowercase names); must include `x-amz-date` and
    /// `x-amz-content-sha256`.
    pub headers: &'a [(&'a str, String)],
    /// The `Host` header's value.
    pub host: &'a str,
    /// SHA-256 of the body, lowercase hex.
    pub payload_hash: &'a str,
}

/// The canonical query string: encoded pairs sorted by name, then value.
pub(crate) fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl Signer<'_> {
    /// The `Authorization` header's value for `req`, signed at `amz_date`
    /// (`YYYYMMDDTHHMMSSZ`, the value of its `x-amz-date` header).
    pub(crate) fn authorization(&self, req: &Request<'_>, amz_date: &str) -> String {
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        headers.push(("host".to_string(), req.host.to_string()));
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
            req.method,
            req.path,
            canonical_query(req.query),
            req.payload_hash
        );
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let secret = zeroize::Zeroizing::new(format!("AWS4{}", self.secret_key.expose()));
        let k_date = hmac(secret.as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let k_signing = zeroize::Zeroizing::new(hmac(&k_service, b"aws4_request"));
        let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key.expose()
        )
    }
}

/// `YYYYMMDDTHHMMSSZ` of `now` (UTC).
pub(crate) fn amz_date(now: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(now);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn aws_example_signer<'a>(access: &'a SecretValue, secret: &'a SecretValue) -> Signer<'a> {
        Signer {
            access_key: access,
            secret_key: secret,
            region: "us-east-1",
        }
    }

    fn example_keys() -> (SecretValue, SecretValue) {
        (
            SecretValue::new("AKIAIOSFODNN7EXAMPLE".into()),
            SecretValue::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        )
    }

    /// AWS's example "GET Object" (S3 API reference, "Examples: Signature Calculations").
    #[test]
    fn the_get_object_example_of_the_aws_documentation() {
        let (access, secret) = example_keys();
        let signer = aws_example_signer(&access, &secret);
        let auth = signer.authorization(
            &Request {
                method: "GET",
                path: "/test.txt",
                query: &[],
                headers: &[
                    ("range", "bytes=0-9".to_string()),
                    ("x-amz-content-sha256", EMPTY.to_string()),
                    ("x-amz-date", "20130524T000000Z".to_string()),
                ],
                host: "examplebucket.s3.amazonaws.com",
                payload_hash: EMPTY,
            },
            "20130524T000000Z",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's example "GET Bucket (List Objects)" with a query string.
    #[test]
    fn the_list_objects_example_of_the_aws_documentation() {
        let (access, secret) = example_keys();
        let signer = aws_example_signer(&access, &secret);
        let auth = signer.authorization(
            &Request {
                method: "GET",
                path: "/",
                query: &[("prefix", "J"), ("max-keys", "2")],
                headers: &[
                    ("x-amz-content-sha256", EMPTY.to_string()),
                    ("x-amz-date", "20130524T000000Z".to_string()),
                ],
                host: "examplebucket.s3.amazonaws.com",
                payload_hash: EMPTY,
            },
            "20130524T000000Z",
        );
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn encoding_and_dates() {
        assert_eq!(encode("a b/c~d"), "a%20b%2Fc~d");
        assert_eq!(encode_path("/bucket/my key+1"), "/bucket/my%20key%2B1");
        assert_eq!(canonical_query(&[("location", "")]), "location=");
        assert_eq!(
            canonical_query(&[("prefix", "a/"), ("list-type", "2")]),
            "list-type=2&prefix=a%2F"
        );
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600);
        assert_eq!(amz_date(t), "20130524T000000Z");
    }
}
