//! A small S3 client for the requests restic's S3 backend (minio-go) makes: bucket location,
//! bucket check, object listing, and object read, write and delete. Path-style addressing,
//! header-signed (SigV4), every request bounded by the set's deadline.
//!
//! Answers that minio-go (v7.0.46, the one Debian's restic 0.14 is built with) retries are
//! retried as it does ([`retry_wait`]): its S3 error codes (`SlowDown`, `InternalError`,
//! `RequestTimeout`, the throttling codes...) and HTTP statuses (429, 499, 500, 502, 503,
//! 504), up to 10 attempts, waiting a random time up to `min(1 s, 200 ms * 2^n)` between
//! them, never past the deadline. An answer still of that kind after the retries is the
//! server's availability ([`S3Failure::is_unavailable`]), not the request's fault.
//! Not retried: minio-go's `ExpiredToken` (a set holds no session token to renew, so the
//! answer cannot change) and failures without an answer (refused connections, resets).
//!
//! An answer is an S3 answer only when it is what S3 sends: the expected XML document, or an
//! S3 error document (a `HEAD` carries none, so its status speaks). Anything else is
//! [`S3Failure::NotS3`]: a web page, a console, or a proxy's own answer.

pub(crate) mod sigv4;
pub(crate) mod xml;

use std::sync::Mutex;

use bytes::Bytes;

use super::net::http::{Http, HttpFailure, Reply};
use crate::secret::SecretValue;

/// Why an S3 request did not succeed, with nothing secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum S3Failure {
    /// No HTTP answer (connection, TLS, proxy, deadline).
    Http(HttpFailure),
    /// An HTTP answer that is not S3's. `proxy`: the forwarding proxy it came through.
    NotS3 { status: u16, proxy: Option<String> },
    /// An S3 error: its status, code (empty for `HEAD`) and the region it names.
    Service {
        status: u16,
        code: String,
        region: Option<String>,
    },
    /// A listing that says its keys are URL-encoded (`<EncodingType>url</EncodingType>`) holds
    /// a key that is not (`escape`: the first invalid escape, as Go's error quotes it):
    /// minio-go fails the listing, and so restic ("invalid URL escape").
    Undecodable { key: String, escape: String },
    /// A listing whose XML holds a character XML 1.0 cannot carry (a control character of a
    /// key sent raw, not URL-encoded as asked): Go's XML decoder fails on it, and so restic
    /// ("XML syntax error ... illegal character code U+001B").
    IllegalXml { character: char },
}

/// The S3 client of one set.
pub(crate) struct S3 {
    http: Http,
    access_key: SecretValue,
    secret_key: SecretValue,
    bucket: String,
    region: Mutex<String>,
}

/// The `ListObjectsV2` result: keys in the server's (lexicographic) order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub keys: Vec<String>,
    pub prefixes: Vec<String>,
    /// More keys exist than were read.
    pub truncated: bool,
}

/// The S3 error codes minio-go retries (`retryableS3Codes`), less `ExpiredToken`(`Exception`).
const RETRIED_CODES: &[&str] = &[
    "RequestError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "InternalError",
    "SlowDown",
];

/// The HTTP statuses minio-go retries (`retryableHTTPStatusCodes`).
const RETRIED_STATUSES: &[u16] = &[429, 499, 500, 502, 503, 504];

/// minio-go's `MaxRetry`: attempts in all.
const MAX_ATTEMPTS: u32 = 10;

impl S3Failure {
    /// An answer minio-go retries: a busy or failing server (or a gateway without one).
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            S3Failure::Service { status, code, .. } => {
                RETRIED_CODES.contains(&code.as_str()) || RETRIED_STATUSES.contains(status)
            }
            S3Failure::NotS3 { status, .. } => RETRIED_STATUSES.contains(status),
            S3Failure::Http(_) | S3Failure::Undecodable { .. } | S3Failure::IllegalXml { .. } => {
                false
            }
        }
    }
}

/// minio-go's wait before attempt `attempt + 1` (from 1): a random time up to
/// `min(1 s, 200 ms * 2^(attempt - 1))` ("full jitter"); `random` is in `0.0..1.0`.
pub(crate) fn retry_wait(attempt: u32, random: f64) -> std::time::Duration {
    let unit = std::time::Duration::from_millis(200);
    let cap = std::time::Duration::from_secs(1);
    let full = unit
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    full.mul_f64(1.0 - random.clamp(0.0, 1.0))
}

/// A random number in `0.0..1.0` for the jitter (0 when the system has none to give).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.0,
    }
}

impl S3 {
    pub(crate) fn new(
        http: Http,
        access_key: &SecretValue,
        secret_key: &SecretValue,
        bucket: &str,
        region: &str,
    ) -> S3 {
        S3 {
            http,
            access_key: SecretValue::new(access_key.expose().to_string()),
            secret_key: SecretValue::new(secret_key.expose().to_string()),
            bucket: bucket.to_string(),
            region: Mutex::new(region.to_string()),
        }
    }

    /// The region requests are signed for.
    pub(crate) fn region(&self) -> String {
        self.region
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Signs the following requests for `region`.
    pub(crate) fn set_region(&self, region: &str) {
        *self
            .region
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = region.to_string();
    }

    /// The same client for another host of the endpoint (Amazon's regional one).
    pub(crate) fn with_host(self, host: &str) -> S3 {
        let mut target = self.http.target.clone();
        target.host = host.to_string();
        S3 {
            http: self.http.retarget(target),
            ..self
        }
    }

    /// The set's deadline: no request runs past it.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        self.http.deadline
    }

    /// One request, retried as minio-go retries it (module rules).
    async fn call(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, S3Failure> {
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(method, key, query, body.clone()).await {
                Err(f) if f.is_unavailable() && attempt < MAX_ATTEMPTS => f,
                done => return done,
            };
            let wake = tokio::time::Instant::now() + retry_wait(attempt, jitter());
            if wake >= self.http.deadline {
                return Err(failure);
            }
            tokio::time::sleep_until(wake).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, S3Failure> {
        let path = match key {
            Some(k) => sigv4::encode_path(&format!("/{}/{k}", self.bucket)),
            None => sigv4::encode_path(&format!("/{}/", self.bucket)),
        };
        let payload_hash = sigv4::sha256_hex(&body);
        let amz_date = sigv4::amz_date(std::time::SystemTime::now());
        let mut headers = vec![
            ("x-amz-content-sha256", payload_hash.clone()),
            ("x-amz-date", amz_date.clone()),
        ];
        if method == "PUT" {
            use base64::Engine;
            use md5::Digest;
            let md5 = md5::Md5::digest(&body);
            headers.push((
                "content-md5",
                base64::engine::general_purpose::STANDARD.encode(md5),
            ));
        }
        let region = self.region();
        let host = self.http.target.host_header();
        let signer = sigv4::Signer {
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: &region,
        };
        let authorization = signer.authorization(
            &sigv4::Request {
                method,
                path: &path,
                query,
                headers: &headers,
                host: &host,
                payload_hash: &payload_hash,
            },
            &amz_date,
        );
        headers.push(("authorization", authorization));
        let query = sigv4::canonical_query(query);
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let reply = self
            .http
            .send(method, &target, &headers, body)
            .await
            .map_err(S3Failure::Http)?;
        if (200..300).contains(&reply.status) {
            return Ok(reply);
        }
        Err(failure(method, &reply))
    }

    /// `GET /bucket/?location`: the bucket's region.
    pub(crate) async fn location(&self) -> Result<String, S3Failure> {
        let reply = self
            .call("GET", None, &[("location", "")], Bytes::new())
            .await?;
        xml::location(&reply.body).ok_or_else(|| not_s3(&reply))
    }

    /// `HEAD /bucket/`: what `restic init` asks first (minio-go's `BucketExists`).
    pub(crate) async fn head_bucket(&self) -> Result<(), S3Failure> {
        self.call("HEAD", None, &[], Bytes::new()).await.map(|_| ())
    }

    /// The keys under `prefix`, at most `limit` (all when `None`); with `delimiter`, the
    /// "folders" one level down come back as `prefixes`.
    ///
    /// Asked as minio-go asks (`encoding-type=url`) and read as it reads the answer: keys and
    /// prefixes are URL-decoded (Go's `url.QueryUnescape`) when the answer says
    /// `<EncodingType>url</EncodingType>`, and one that does not decode fails the listing
    /// ([`S3Failure::Undecodable`]), as it fails restic's.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        delimiter: bool,
        limit: Option<usize>,
    ) -> Result<Listing, S3Failure> {
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let max = limit.map(|l| (l - listing.keys.len()).clamp(1, 1000).to_string());
            let mut query: Vec<(&str, &str)> = vec![
                ("list-type", "2"),
                ("prefix", prefix),
                ("encoding-type", "url"),
            ];
            if delimiter {
                query.push(("delimiter", "/"));
            }
            if let Some(m) = &max {
                query.push(("max-keys", m));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let reply = self.call("GET", None, &query, Bytes::new()).await?;
            let page = xml::list_page(&reply.body)
                .ok_or_else(|| match xml::illegal_in_listing(&reply.body) {
                    Some(character) => S3Failure::IllegalXml { character },
                    None => not_s3(&reply),
                })?
                .decoded()?;
            listing
                .keys
                .extend(page.keys.into_iter().filter(|k| !k.ends_with('/')));
            listing.prefixes.extend(page.prefixes);
            let full = limit.is_some_and(|l| listing.keys.len() >= l);
            match page.next {
                Some(next) if !full => token = Some(next),
                Some(_) => {
                    listing.truncated = true;
                    return Ok(listing);
                }
                None => return Ok(listing),
            }
        }
    }

    /// `GET` of an object; `Ok(None)` when it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, S3Failure> {
        match self.call("GET", Some(key), &[], Bytes::new()).await {
            Ok(reply) => Ok(Some(reply.body)),
            Err(S3Failure::Service { code, .. }) if code == "NoSuchKey" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT` of an object.
    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), S3Failure> {
        self.call("PUT", Some(key), &[], body).await.map(|_| ())
    }

    /// `DELETE` of an object.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Failure> {
        self.call("DELETE", Some(key), &[], Bytes::new())
            .await
            .map(|_| ())
    }
}

fn not_s3(reply: &Reply) -> S3Failure {
    S3Failure::NotS3 {
        status: reply.status,
        proxy: reply.via.as_ref().map(super::net::proxy::Proxy::address),
    }
}

/// The failure an error answer stands for.
fn failure(method: &str, reply: &Reply) -> S3Failure {
    let header_region = reply.header("x-amz-bucket-region").map(str::to_string);
    if let Some(doc) = xml::error_doc(&reply.body) {
        return S3Failure::Service {
            status: reply.status,
            code: doc.code,
            region: doc.region.or(header_region),
        };
    }
    // A HEAD answer has no body: S3 says it with the status (and its x-amz headers).
    let from_s3 = reply
        .headers
        .keys()
        .any(|k| k.as_str().starts_with("x-amz-"));
    if method == "HEAD" && (from_s3 || reply.via.is_none()) && reply.body.is_empty() {
        return S3Failure::Service {
            status: reply.status,
            code: String::new(),
            region: header_region,
        };
    }
    not_s3(reply)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_wait_between_attempts_is_minio_gos() {
        let ms = Duration::from_millis;
        let waits: Vec<_> = (1..MAX_ATTEMPTS).map(|a| retry_wait(a, 0.0)).collect();
        assert_eq!(
            waits,
            [200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000].map(ms)
        );
        assert_eq!(retry_wait(1, 0.5), ms(100));
        assert_eq!(retry_wait(3, 0.75), ms(200));
        assert!((0..100).all(|_| (0.0..1.0).contains(&jitter())));
    }

    #[test]
    fn what_is_retried() {
        let service = |status, code: &str| S3Failure::Service {
            status,
            code: code.into(),
            region: None,
        };
        assert!(service(503, "SlowDown").is_unavailable());
        assert!(service(400, "RequestTimeout").is_unavailable());
        assert!(service(429, "").is_unavailable());
        assert!(service(500, "InternalError").is_unavailable());
        assert!(!service(400, "ExpiredToken").is_unavailable());
        assert!(!service(403, "AccessDenied").is_unavailable());
        assert!(!service(501, "NotImplemented").is_unavailable());
        let page = |status| S3Failure::NotS3 {
            status,
            proxy: None,
        };
        assert!(page(502).is_unavailable());
        assert!(!page(200).is_unavailable());
    }
}
