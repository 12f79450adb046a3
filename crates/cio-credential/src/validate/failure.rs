//! What a failed request means for the administrator: the pure mapping from an
//! [`S3Failure`] to the [`Check`] that names its cause and its fix. No I/O; unit-tested case by
//! case below.
//!
//! Rules: the stage of a connection failure, or the S3 error code, decides the step (a
//! signature error is the credentials' fault even when it answers a bucket request); a failure
//! is reported at the step being run or a later one, never an earlier one; a detail names the
//! credential to change, never its value.

use super::net::connect::ConnectError;
use super::net::http::HttpFailure;
use super::net::tls::{AnchorSource, StaleAnchor};
use super::net::words::TlsFault;
use super::region::{RegionSource, is_aws};
use super::s3::S3Failure;
use super::{Check, Status, Step};
use crate::catalog::cacert::OutOfDate;
use crate::catalog::{CredentialName, Field, SetId};

/// The code of a server whose TLS cio does not speak: a warning (validate cannot tell).
pub(crate) const UNCHECKED_TLS: &str = "tls_unchecked";

/// What the key tried when a request failed: its words and the IAM action it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Location,
    HeadBucket,
    List,
    Read,
    Write,
    Delete,
}

impl Action {
    fn words(self) -> &'static str {
        match self {
            Action::Location => "read the bucket's region",
            Action::HeadBucket => {
                "check that the bucket exists (HEAD bucket, which 'restic init' asks first)"
            }
            Action::List => "list objects",
            Action::Read => "read objects",
            Action::Write => "write objects",
            Action::Delete => "delete objects",
        }
    }

    /// The IAM action AWS checks for the request.
    pub(crate) fn iam(self) -> &'static str {
        match self {
            Action::Location => "s3:GetBucketLocation",
            Action::HeadBucket | Action::List => "s3:ListBucket",
            Action::Read => "s3:GetObject",
            Action::Write => "s3:PutObject",
            Action::Delete => "s3:DeleteObject",
        }
    }

    fn on_objects(self) -> bool {
        matches!(self, Action::Read | Action::Write | Action::Delete)
    }
}

/// Everything a detail may name.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub set: SetId,
    /// `host:port` of the endpoint.
    pub address: String,
    /// The endpoint's host name.
    pub host: String,
    /// The endpoint exactly as typed in the URL (`host[:port]`): what restic's S3 library
    /// reads, case and all, to tell Amazon S3 ([`super::region`]).
    pub typed_host: String,
    pub bucket: String,
    pub prefix: String,
    /// The set's deadline in seconds.
    pub secs: f64,
    /// The region requests were signed for, and where it came from.
    pub region: String,
    pub region_source: RegionSource,
    /// The set has a CA certificate credential.
    pub has_cacert: bool,
    /// The keys checked are a new pair, not the stored ones ([`super::Options::new_keys`]).
    pub new_keys: bool,
}

impl Place {
    pub(crate) fn name(&self, field: Field) -> CredentialName {
        CredentialName {
            provider: self.set.provider,
            role: self.set.role,
            field,
        }
    }

    /// The access key or the secret key (`field`) as a detail names it: the credential
    /// that holds it, or the new one a key rotation checks (which no credential holds yet).
    fn key(&self, field: Field) -> String {
        let what = match field {
            Field::SecretKey => "secret key",
            _ => "access key",
        };
        if self.new_keys {
            format!("the new {what}")
        } else {
            format!("the {what} in {}", self.name(field))
        }
    }

    /// `bucket 'b'` or `'b/prefix'`.
    pub(crate) fn place(&self) -> String {
        if self.prefix.is_empty() {
            format!("bucket '{}'", self.bucket)
        } else {
            format!("'{}/{}'", self.bucket, self.prefix)
        }
    }

    fn arn(&self, action: Action) -> String {
        match (action.on_objects(), self.prefix.is_empty()) {
            (false, _) => format!("arn:aws:s3:::{}", self.bucket),
            (true, true) => format!("arn:aws:s3:::{}/*", self.bucket),
            (true, false) => format!("arn:aws:s3:::{}/{}/*", self.bucket, self.prefix),
        }
    }

    /// The name of the set's region credential (`cio_minio_region`, ...).
    pub(crate) fn region_name(&self) -> String {
        let alt = if self.set.role == crate::catalog::Role::Alternate {
            "_alt"
        } else {
            ""
        };
        format!("cio_{}{alt}_region", self.set.provider)
    }

    /// The fix for a server that wants `wanted` (or an unknown region) instead of ours.
    pub(crate) fn region_detail(&self, wanted: Option<&str>) -> String {
        let ours = &self.region;
        let repo = self.name(Field::BackupRepo);
        let region_name = self.region_name();
        match (wanted, is_aws(&self.typed_host), &self.region_source) {
            (Some(r), true, RegionSource::Host) => {
                let mut url = format!("s3:https://s3.{r}.amazonaws.com/{}", self.bucket);
                if !self.prefix.is_empty() {
                    url.push('/');
                    url.push_str(&crate::catalog::url_path(&self.prefix));
                }
                format!(
                    "bucket '{}' is in region {r}, not {ours}; write {repo} as {url}",
                    self.bucket
                )
            }
            (Some(r), true, _) => format!(
                "bucket '{}' is in region {r}, not {ours}; set {region_name} to {r} (or remove it)",
                self.bucket
            ),
            (Some(r), false, _) => format!(
                "{} expects requests signed for region {r}, not {ours}; set {region_name} to {r}",
                self.address
            ),
            (None, _, _) => format!(
                "{} refuses requests signed for region {ours}; set {region_name} to the region the storage is configured with",
                self.address
            ),
        }
    }

    /// The check `failure` stands for while running `step` and trying `action`: a failure.
    /// TLS that restic may speak and cio does not (`tls_unchecked`) fails too: validate never
    /// passes a server it could not check (a forged certificate there would pass), and says
    /// how to check it with restic itself.
    pub(crate) fn check(&self, step: Step, action: Action, failure: &S3Failure) -> Check {
        let (at, code, detail) = self.classify(step, action, failure);
        Check::new(at.max(step), Status::Fail, code, detail)
    }

    fn classify(
        &self,
        step: Step,
        action: Action,
        failure: &S3Failure,
    ) -> (Step, &'static str, String) {
        let addr = &self.address;
        let secs = self.secs;
        let doing = action.words();
        match failure {
            S3Failure::Http(HttpFailure::Connect(c)) => self.connect(c),
            // A forwarding proxy's own 5xx is the proxy's (below).
            f if f.is_unavailable() && !matches!(f, S3Failure::NotS3 { proxy: Some(_), .. }) => {
                self.unavailable(action, f)
            }
            S3Failure::Http(HttpFailure::Timeout) if step == Step::Endpoint => (
                step,
                "timeout",
                format!(
                    "{addr} accepted the connection but sent no answer within {secs}s; check that it is an S3 server and not overloaded"
                ),
            ),
            S3Failure::Http(HttpFailure::Timeout) => (
                step,
                "timeout",
                format!(
                    "no answer from {addr} within {secs}s (while trying to {doing}); the server may be overloaded or the network slow: validate again with a longer --timeout"
                ),
            ),
            S3Failure::Http(HttpFailure::NotHttp(why)) => (
                Step::Endpoint,
                "not_http",
                format!(
                    "{addr} does not answer HTTP ({why}); check the port and the scheme (http/https)"
                ),
            ),
            S3Failure::Http(HttpFailure::Broken(why)) => (
                step,
                "unreachable",
                format!("the connection to {addr} failed while trying to {doing}: {why}"),
            ),
            S3Failure::NotS3 {
                status: 407,
                proxy: Some(proxy),
            } => (
                Step::Endpoint,
                "proxy",
                format!(
                    "the proxy at {proxy} asks for a login (HTTP 407), and the one in the proxy variable is missing or wrong; put the proxy's user and password in it (http://USER:PASSWORD@HOST:PORT, special characters percent-encoded)"
                ),
            ),
            S3Failure::NotS3 {
                status,
                proxy: Some(proxy),
            } => (
                Step::Endpoint,
                "proxy",
                format!(
                    "the proxy at {proxy} answered HTTP {status} itself instead of passing the request to {addr}; check the proxy's rules, or list {} in NO_PROXY",
                    self.host
                ),
            ),
            // An object request refused without an S3 error, after the listing proved the
            // server speaks S3: not a web page, but a refusal of these keys.
            S3Failure::NotS3 {
                status,
                proxy: None,
            } if matches!(action, Action::Read | Action::Write | Action::Delete) => {
                self.object_refused(step, action, *status)
            }
            S3Failure::NotS3 {
                status,
                proxy: None,
            } => (
                Step::Endpoint,
                "not_s3",
                format!(
                    "{addr} answers HTTP ({status}) but not the S3 API: it may be a web page or a console; use the port of the S3 API (MinIO: the API port, 9000 by default, not the console's 9001)"
                ),
            ),
            S3Failure::Service {
                status,
                code,
                region,
            } => self.service(step, action, *status, code, region.as_deref()),
            // The server answered the signed listing: the credentials and the bucket are fine.
            S3Failure::Undecodable { key, escape } => (
                Step::Bucket,
                "listing_undecodable",
                format!(
                    "{addr} answered a listing asked with encoding-type=url (as restic asks) saying its keys are URL-encoded, but the key '{key}' is not (invalid escape '{escape}'): restic decodes it and fails the same way (invalid URL escape \"{escape}\"); this is the server's fault: upgrade or fix the server, or use a repository path without '%'"
                ),
            ),
            S3Failure::IllegalXml { character } => (
                Step::Bucket,
                "listing_undecodable",
                format!(
                    "{addr} answered a listing asked with encoding-type=url (as restic asks) with a key that holds {} raw, which XML cannot carry: restic fails the same way (XML syntax error: illegal character code {}); this is the server's fault (AWS, MinIO and moto encode such keys): upgrade or fix the server, or use a repository path without control characters",
                    character.escape_unicode(),
                    code_point(*character)
                ),
            ),
        }
    }

    fn connect(&self, c: &ConnectError) -> (Step, &'static str, String) {
        let addr = &self.address;
        let host = &self.host;
        let secs = self.secs;
        match c {
            ConnectError::Dns { why } => (
                Step::Endpoint,
                "dns",
                format!("cannot resolve {host} ({why}); check the host name in the repository URL"),
            ),
            ConnectError::Unreachable { why } => (
                Step::Endpoint,
                "unreachable",
                format!(
                    "nothing accepts connections on {addr} ({why}); check the host and port, and that the server runs"
                ),
            ),
            ConnectError::Timeout { stage } => (
                Step::Endpoint,
                "timeout",
                format!(
                    "no progress with {addr} within {secs}s while {stage}; a firewall may drop the packets, or the server is overloaded"
                ),
            ),
            ConnectError::TlsUnspoken(unspoken) => (
                Step::Endpoint,
                UNCHECKED_TLS,
                format!(
                    "cannot check {addr}: it uses {}, which cio's TLS does not speak, so neither its certificate nor the credentials were checked; restic may speak it: 'cio credential exec {} -- restic cat config' checks all of it; to have validate check it, let the server offer TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or ChaCha20, with a P-256 or P-384 ECDSA key or an RSA key of 2048 bits or more",
                    unspoken.what,
                    self.set.options()
                ),
            ),
            ConnectError::Tls {
                why,
                fault: TlsFault::Trust,
            } => {
                let cacert = self.name(Field::Cacert);
                let fix = if self.has_cacert {
                    format!(
                        "the certificate in {cacert} is not the one the server's certificate comes from: store that CA's certificate (or the server's self-signed one) in it"
                    )
                } else {
                    format!(
                        "if the server's certificate comes from a private CA or is self-signed, store it in {cacert}"
                    )
                };
                (
                    Step::Endpoint,
                    "tls",
                    format!(
                        "TLS with {addr} failed ({why}); {fix}; or use s3:http:// if the endpoint speaks plain HTTP"
                    ),
                )
            }
            ConnectError::Tls {
                why,
                fault: TlsFault::Certificate,
            } => (
                Step::Endpoint,
                "tls",
                format!(
                    "TLS with {addr} failed ({why}); this is a fault of the server's certificate, which restic refuses too, whatever CA is trusted: have it replaced on the server"
                ),
            ),
            ConnectError::Tls {
                why,
                fault: TlsFault::Handshake,
            }
            | ConnectError::TlsAlert { why } => (
                Step::Endpoint,
                "tls",
                format!(
                    "TLS with {addr} failed ({why}); this is no certificate problem: check the server's TLS settings (restic offers TLS 1.2 and 1.3 with ECDHE over X25519, P-256, P-384 or P-521), or use s3:http:// if the endpoint speaks plain HTTP"
                ),
            ),
            ConnectError::TlsName(wrong) => (
                Step::Endpoint,
                "tls",
                format!(
                    "TLS with {addr} failed: {wrong}, not {host}, and restic refuses it too; write {} with a host name the certificate is valid for, or have the server's certificate issued for {host}",
                    self.name(Field::BackupRepo)
                ),
            ),
            ConnectError::TlsMissingIssuer(missing) => {
                let issuer = &missing.issuer;
                let cacert = self.name(Field::Cacert);
                (
                    Step::Endpoint,
                    "tls",
                    format!(
                        "TLS with {addr} failed: its certificate was issued by '{issuer}', whose certificate the server does not send and {cacert} does not hold (restic: x509: certificate signed by unknown authority); if '{issuer}' is an intermediate CA under the CA in {cacert}, the server does not send the intermediate certificate its certificate needs: have the server send its full chain (its certificate, then the intermediate's), or add the intermediate's certificate to {cacert}; if it is a root CA, store its certificate in {cacert}"
                    ),
                )
            }
            ConnectError::TlsStaleAnchor(stale) => {
                (Step::Endpoint, "tls", self.stale_anchor(stale))
            }
            ConnectError::TlsClosed { why } => (
                Step::Endpoint,
                "tls",
                format!(
                    "the connection to {addr} was closed during the TLS handshake ({why}); this is no certificate problem: check that {addr} serves TLS (or use s3:http:// if it speaks plain HTTP) and that nothing between cuts the connection"
                ),
            ),
            ConnectError::TlsClientCert => (
                Step::Endpoint,
                "tls",
                format!(
                    "TLS with {addr} failed: the server refused the handshake after asking for a client certificate: it may require one, and restic presents none (cio holds no client certificate to hand it); this is no CA or server certificate problem: have the server accept clients without a certificate (stunnel: verify below 2; nginx: ssl_verify_client optional or off)"
                ),
            ),
            ConnectError::TlsPort => (
                Step::Endpoint,
                "not_http",
                format!(
                    "{addr} speaks TLS, not plain HTTP: it reset or refused the plain HTTP request (restic: connection reset by peer); write {} with s3:https:// (and, if the server's certificate comes from a private CA or is self-signed, store it in {})",
                    self.name(Field::BackupRepo),
                    self.name(Field::Cacert)
                ),
            ),
            ConnectError::PlainHttp => (
                Step::Endpoint,
                "tls",
                format!(
                    "{addr} answers in plain HTTP, not TLS (restic: \"server gave HTTP response to HTTPS client\"); this is no certificate problem: write the repository URL with s3:http://, or enable TLS on the server"
                ),
            ),
            ConnectError::ProxyCgi => (
                Step::Endpoint,
                "proxy",
                "HTTP_PROXY is set and so is REQUEST_METHOD (a CGI environment), where restic refuses HTTP_PROXY for every http:// endpoint, whatever NO_PROXY says; unset REQUEST_METHOD or HTTP_PROXY where cio and restic run".to_string(),
            ),
            ConnectError::Proxy { proxy, why } => (
                Step::Endpoint,
                "proxy",
                format!(
                    "the proxy at {proxy} failed: {why}; fix the proxy variables, or list {host} in NO_PROXY"
                ),
            ),
        }
    }

    /// An answer restic retries, still given after validate retried it as restic does: the
    /// server is busy or failing (or a gateway has no server behind it). Said at the endpoint
    /// step (or the step being run, when later): it is no fault of the credentials.
    fn unavailable(&self, action: Action, failure: &S3Failure) -> (Step, &'static str, String) {
        let addr = &self.address;
        let doing = action.words();
        let answer = match failure {
            S3Failure::Service { status, code, .. } if code.is_empty() => format!("HTTP {status}"),
            S3Failure::Service { status, code, .. } => format!("HTTP {status} {code}"),
            S3Failure::NotS3 { status, .. } => {
                format!(
                    "HTTP {status} without an S3 error document (a gateway or load balancer with no S3 server behind it?)"
                )
            }
            S3Failure::Http(e) => e.to_string(),
            S3Failure::Undecodable { escape, .. } => {
                format!("a listing with an invalid URL escape '{escape}'")
            }
            S3Failure::IllegalXml { character } => {
                format!("a listing XML cannot carry ({})", code_point(*character))
            }
        };
        (
            Step::Endpoint,
            "unavailable",
            format!(
                "{addr} answered {answer} when trying to {doing}, and again each time validate retried as restic does: the server is overloaded or failing, which is no fault of the credentials; check the S3 server's health and load, then validate again"
            ),
        )
    }

    /// The words for a chain that ends only at trusted certificates out of their dates.
    fn stale_anchor(&self, stale: &StaleAnchor) -> String {
        let addr = &self.address;
        let subject = &stale.subject;
        let cacert = self.name(Field::Cacert);
        // Where the certificate is, and how one valid now is put there.
        let (held, put) = match &stale.source {
            AnchorSource::Credential => (
                format!("in {cacert}"),
                format!("store it with 'cio credential create {cacert} --from-file PATH'"),
            ),
            AnchorSource::System { named: Some(named) } => (
                format!("among the trusted certificates of {named}"),
                "put it there".to_string(),
            ),
            AnchorSource::System { named: None } => (
                "in the system's certificate bundle".to_string(),
                "update the system's CA certificates (Debian: the ca-certificates package)"
                    .to_string(),
            ),
        };
        match &stale.dates {
            OutOfDate::Expired(on) => format!(
                "TLS with {addr} failed: the CA certificate '{subject}' {held}, at which the server's certificate chain ends, expired on {on}, and restic refuses it (x509: certificate has expired or is not yet valid); get the CA's renewed certificate and {put}, or have the server's certificate issued by a CA that is valid now"
            ),
            OutOfDate::NotYetValid(from) => format!(
                "TLS with {addr} failed: the CA certificate '{subject}' {held}, at which the server's certificate chain ends, is valid only from {from} on, and restic refuses it (x509: certificate has expired or is not yet valid); check this machine's clock (NTP) first; if the clock is right, get a certificate of the CA that is valid now and {put}"
            ),
        }
    }

    fn service(
        &self,
        step: Step,
        action: Action,
        status: u16,
        code: &str,
        region: Option<&str>,
    ) -> (Step, &'static str, String) {
        let addr = &self.address;
        let doing = action.words();
        match code {
            // AWS and MinIO say InvalidAccessKeyId; s3s-based servers NotSignedUp; moto
            // InvalidClientTokenId outside S3.
            "InvalidAccessKeyId" | "NotSignedUp" | "InvalidClientTokenId" => (
                Step::Credentials,
                "invalid_access_key",
                format!(
                    "{addr} does not know {}; check it, or create a key on the server",
                    self.key(Field::AccessKey)
                ),
            ),
            "SignatureDoesNotMatch" => (
                Step::Credentials,
                "signature_mismatch",
                format!(
                    "{} does not belong to {}; {} the matching secret key",
                    self.key(Field::SecretKey),
                    self.key(Field::AccessKey),
                    if self.new_keys { "give" } else { "set" }
                ),
            ),
            "RequestTimeTooSkewed" => (
                Step::Credentials,
                "clock_skew",
                format!(
                    "this machine's clock differs from {addr}'s by more than 15 minutes; correct the time (NTP) and validate again"
                ),
            ),
            "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => (
                Step::Credentials,
                "expired_token",
                format!(
                    "{} is a temporary key that has expired; create a long-term access key",
                    self.key(Field::AccessKey)
                ),
            ),
            "NoSuchBucket" => self.no_such_bucket(),
            "" if status == 404 && action == Action::HeadBucket => self.no_such_bucket(),
            "AuthorizationHeaderMalformed"
            | "InvalidRegion"
            | "PermanentRedirect"
            | "IllegalLocationConstraintException" => {
                (Step::Bucket, "wrong_region", self.region_detail(region))
            }
            "" if status == 301 => (Step::Bucket, "wrong_region", self.region_detail(region)),
            "AccessDenied" | "AllAccessDisabled" => self.denied(action),
            "" if status == 403 => self.denied(action),
            "" => (
                step,
                "s3_error",
                format!("{addr} answered HTTP {status} when trying to {doing}"),
            ),
            other => (
                step,
                "s3_error",
                format!("{addr} answered HTTP {status} {other} when trying to {doing}"),
            ),
        }
    }

    /// An object request (read, write, delete) answered with `status` and no S3 error
    /// document. minio-go makes the error from the status alone (`httpRespToErrorResponse`:
    /// 404 on an object is `NoSuchKey`, 403 `AccessDenied`), and restic fails with it; moto,
    /// for one, answers 404 so for a key holding a line break (its router matches no such
    /// path).
    fn object_refused(
        &self,
        step: Step,
        action: Action,
        status: u16,
    ) -> (Step, &'static str, String) {
        if status == 403 {
            return self.denied(action);
        }
        let addr = &self.address;
        let doing = action.words();
        let restic = if status == 404 {
            " (restic fails there too: 'The specified key does not exist')"
        } else {
            " (restic fails there too)"
        };
        let hint = if self.prefix.chars().any(char::is_control) {
            "the server does not take keys holding the prefix's control character (a line break, a tab, ...): choose a prefix without one"
        } else {
            "check the server's log for why it refuses these keys"
        };
        (
            step,
            "s3_error",
            format!(
                "{addr} answered HTTP {status} without an S3 error when trying to {doing}{restic}; {hint}"
            ),
        )
    }

    fn no_such_bucket(&self) -> (Step, &'static str, String) {
        (
            Step::Bucket,
            "no_such_bucket",
            format!(
                "bucket '{}' does not exist on {}; create it, or correct the bucket in {}",
                self.bucket,
                self.address,
                self.name(Field::BackupRepo)
            ),
        )
    }

    fn denied(&self, action: Action) -> (Step, &'static str, String) {
        (
            Step::Permissions,
            "access_denied",
            format!(
                "the key may not {} in {} (IAM action {} on {}); grant it in the bucket or user policy",
                action.words(),
                self.place(),
                action.iam(),
                self.arn(action)
            ),
        )
    }
}

/// `U+001B`: a character as Go's XML errors name it.
pub(super) fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests;
