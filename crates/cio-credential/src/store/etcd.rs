//! The cluster store: etcd v3, spoken through its HTTP/JSON gateway (`/v3/kv/range`,
//! `/v3/kv/txn`, `/v3/auth/authenticate`) with the blocking `ureq` client (rustls).
//!
//! Why not the `etcd-client` crate: it speaks gRPC through `tonic`/`prost`, whose build
//! script needs the `protoc` compiler, and the binary must build with the Rust toolchain
//! alone (DESIGN.md). The JSON gateway is served by every etcd 3.4+ member on its client
//! port, under `/v3/` (3.4 also serves the older `/v3beta/`; we use `/v3/`).
//!
//! Key layout under the prefix `P` (default [`DEFAULT_PREFIX`]):
//! - `P/meta/store_id`: the store's random id (bound into every sealed value);
//! - `P/meta/key_fingerprint`: the fingerprint of the key that seals the store;
//! - `P/v/{name}/{version:020}`: one version, a JSON record
//!   `{"format":1,"action":"update","restored_from":N,"written_at_ms":T,"sealed":"<base64>"}`
//!   (`restored_from` and `sealed` only when set; the sealed bytes are nonce || ciphertext,
//!   never plaintext); zero-padded so that key order is version order;
//! - `P/head/{name}`: the latest version number of `name`, in decimal.
//!
//! (`/` and `%` in a name are written `%2F` and `%25`, so a name is always one key segment.)
//!
//! Rules:
//! - every write is ONE etcd transaction, so a write is either wholly there or not at all,
//!   even when the cluster loses quorum in the middle of it:
//!   - append compares the head (its value, or its absence for a first version) and the key
//!     fingerprint (its value, or its absence, in which case the same transaction records
//!     it), then puts the version and the head; when the comparison fails, the failure
//!     branch reads the head and fingerprint so the error is precisely
//!     [`StoreError::Conflict`] or [`StoreError::KeyMismatch`];
//!   - the store id is created by a transaction that requires that nothing exists under the
//!     prefix yet, so two nodes creating the store at once agree on one id, and keys of
//!     another program under the prefix are refused ([`StoreError::Foreign`]);
//!   - purge deletes every version and the head in one transaction;
//! - reads are linearizable (etcd's default): a member without quorum does not answer with
//!   stale data, it makes the operation fail as [`StoreError::Unreachable`]; long ranges
//!   are read in pages at one revision, so a listing is one consistent snapshot;
//! - endpoints are tried in turn, starting with the last one that answered; a member that is
//!   down (connection refused or connect timeout) is skipped, so one member down is
//!   invisible. Each operation has one time budget (default [`DEFAULT_TIMEOUT`]); each
//!   attempt gets at most what is left of it and at most an equal share of it per member
//!   (but at least [`CONNECT_TIMEOUT`]), so a member that hangs is skipped too; connecting
//!   may take at most [`CONNECT_TIMEOUT`];
//! - a transaction whose request may have reached a member is not sent again elsewhere
//!   (it could have been applied): it fails as Unreachable and the caller decides;
//! - with a user, a token is fetched from `/v3/auth/authenticate` per member (etcd's simple
//!   tokens are only valid on the member that issued them) and sent as `Authorization`;
//!   an expired token is renewed once;
//! - `etcds://` uses TLS with the given CA (or the built-in web roots) and an optional client
//!   certificate and key (etcdctl's `--cacert`, `--cert`, `--key`);
//! - the location shown in messages never holds a user or password; the password is a
//!   [`SecretValue`], never in `Debug` output or an error.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{Action, Identity, Record, SpecError, Store, StoreError, new_store_id};
use crate::secret::SecretValue;

/// The key prefix when the location names none.
pub const DEFAULT_PREFIX: &str = "/cio/credentials";
/// The client port etcd listens on when the location names none.
pub const DEFAULT_PORT: u16 = 2379;
/// The time budget of one store operation, over all endpoints.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an attempt waits to connect to one member before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How many keys one range request returns at most (longer ranges are read in pages).
const PAGE: i64 = 500;
/// The largest response read from a member.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;
/// The version of the record format written under `P/v/`.
const RECORD_FORMAT: u32 = 1;

/// Where an etcd store is: endpoints, TLS or not, and the key prefix. Parsed from
/// `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]` or `etcds://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSpec {
    /// `host:port` of each member, in the order given.
    pub endpoints: Vec<String>,
    /// Whether clients speak TLS (`etcds://`).
    pub tls: bool,
    /// The key prefix, starting with `/` and without a trailing `/`.
    pub prefix: String,
}

impl EtcdSpec {
    /// Parses an `etcd://` or `etcds://` location; `Ok(None)` for any other text.
    ///
    /// A user or password in the location is refused (they come from the environment, so
    /// that a password never lands in a configuration file, a flag or a message).
    pub fn parse(text: &str) -> Result<Option<EtcdSpec>, SpecError> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("etcd://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("etcds://") {
            (true, rest)
        } else {
            return Ok(None);
        };
        let err = |reason: String| SpecError { reason };
        let (hosts, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if hosts.contains('@') {
            return Err(err(
                "a user or password does not belong in the location; set CIO_ETCD_USER and CIO_ETCD_PASSWORD instead".into(),
            ));
        }
        if hosts.is_empty() {
            return Err(err(
                "no etcd endpoint: write etcd://HOST:PORT[,HOST:PORT...][/PREFIX]".into(),
            ));
        }
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            endpoints.push(parse_endpoint(host).map_err(err)?);
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            DEFAULT_PREFIX.to_string()
        } else {
            if prefix.contains("//") || prefix.chars().any(|c| c.is_control() || c == ' ') {
                return Err(err(format!(
                    "the key prefix {prefix:?} has an empty segment, a space or a control character"
                )));
            }
            prefix.to_string()
        };
        Ok(Some(EtcdSpec {
            endpoints,
            tls,
            prefix,
        }))
    }

    /// The location as written in messages: `etcd://a:2379,b:2379/prefix`.
    pub fn location(&self) -> String {
        let scheme = if self.tls { "etcds" } else { "etcd" };
        format!("{scheme}://{}{}", self.endpoints.join(","), self.prefix)
    }
}

/// Checks one `HOST[:PORT]` (IPv6 as `[::1]:2379`) and adds the default port.
fn parse_endpoint(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not HOST:PORT");
    if text.is_empty() {
        return Err("an empty endpoint (two commas in a row?)".into());
    }
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(bad)?;
        let host = &text[..end + 2];
        match &v6[end + 1..] {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !host_ok {
        return Err(bad());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{text:?}: the port must be a number from 1 to 65535"))?,
    };
    Ok(format!("{host}:{port}"))
}

/// An etcd user and its password (from `CIO_ETCD_USER` / `CIO_ETCD_PASSWORD`).
pub struct EtcdAuth {
    pub user: String,
    pub password: SecretValue,
}

impl fmt::Debug for EtcdAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdAuth")
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// How to connect to an etcd store, beyond its location.
#[derive(Debug, Default)]
pub struct EtcdOptions {
    /// PEM file of the CA that signed the members' certificates (`etcds://` only; without
    /// it the built-in web roots are trusted). The TLS files are ignored for `etcd://`.
    pub cacert: Option<PathBuf>,
    /// PEM file of the client certificate (`etcds://` only; needs `key`).
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
    /// The etcd user, when the cluster has authentication enabled.
    pub auth: Option<EtcdAuth>,
    /// The time budget of one operation; [`DEFAULT_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
}

/// One record as written under `P/v/{name}/{version:020}` (its JSON form).
#[derive(Serialize, Deserialize)]
struct RecordJson {
    format: u32,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restored_from: Option<u64>,
    written_at_ms: i64,
    /// nonce || ciphertext in base64; absent for a remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// A store in an etcd cluster.
pub struct EtcdStore {
    spec: EtcdSpec,
    agent: ureq::Agent,
    auth: Option<EtcdAuth>,
    timeout: Duration,
    /// Per endpoint: the auth token it issued; `Some("")` when auth is off.
    tokens: Mutex<Vec<Option<String>>>,
    /// The endpoint that answered last; tried first.
    preferred: AtomicUsize,
    /// Whether a client certificate is configured (for a better message when a member
    /// drops the connection during the handshake).
    client_cert: bool,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("spec", &self.spec)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Reads a PEM file for TLS, naming it in the error.
fn read_pem(location: &str, what: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| StoreError::Tls {
            location: location.to_string(),
            detail: format!("the {what} {} cannot be read: {e}", path.display()),
        })
}

fn tls_config(spec: &EtcdSpec, options: &EtcdOptions) -> Result<ureq::tls::TlsConfig, StoreError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let location = spec.location();
    let tls_err = |detail: String| StoreError::Tls {
        location: location.clone(),
        detail,
    };
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &options.cacert {
        let pem = read_pem(&location, "CA certificate file", ca)?;
        let mut certs: Vec<Certificate<'static>> = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(tls_err(format!(
                        "the CA certificate file {} is not PEM: {e}",
                        ca.display()
                    )));
                }
            }
        }
        if certs.is_empty() {
            return Err(tls_err(format!(
                "the CA certificate file {} holds no certificate",
                ca.display()
            )));
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&certs));
    }
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let pem = read_pem(&location, "client certificate file", cert)?;
            let chain = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if chain.is_empty() {
                return Err(tls_err(format!(
                    "the client certificate file {} holds no certificate",
                    cert.display()
                )));
            }
            let key_pem = read_pem(&location, "client key file", key)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|_| {
                tls_err(format!(
                    "the client key file {} holds no PEM private key",
                    key.display()
                ))
            })?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => {
            return Err(tls_err(
                "a client certificate needs its key, and a key its certificate: give both or neither".into(),
            ));
        }
    }
    Ok(builder.build())
}

/// Why one attempt at one member failed.
enum Failure {
    /// The member could not be asked (down, refused, no route): try the next one.
    NotSent(String),
    /// The member was asked but did not answer in time, or said it cannot serve now (no
    /// leader, no quorum): the next member may do better.
    Unavailable(String),
    /// TLS failed: certificates do not match.
    Tls(String),
    /// An answer that settles the matter: not worth asking another member.
    Final(StoreError),
}

/// A gateway error body: `{"error": ..., "message": ..., "code": N}` (gRPC codes).
#[derive(Deserialize, Default)]
struct GatewayError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    code: i64,
}

const GRPC_INVALID_ARGUMENT: i64 = 3;
const GRPC_DEADLINE_EXCEEDED: i64 = 4;
const GRPC_PERMISSION_DENIED: i64 = 7;
const GRPC_FAILED_PRECONDITION: i64 = 9;
const GRPC_UNAVAILABLE: i64 = 14;
const GRPC_UNAUTHENTICATED: i64 = 16;

fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Text(String),
        Number(i64),
    }
    match Num::deserialize(d)? {
        Num::Number(n) => Ok(n),
        Num::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default, deserialize_with = "de_i64")]
    revision: i64,
}

#[derive(Deserialize)]
struct Kv {
    #[serde(default, deserialize_with = "de_b64")]
    key: Vec<u8>,
    #[serde(default, deserialize_with = "de_b64")]
    value: Vec<u8>,
}

#[derive(Deserialize, Default)]
struct RangeResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<Kv>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize, Default)]
struct DeleteRangeResponse {
    #[serde(default, deserialize_with = "de_i64")]
    deleted: i64,
}

#[derive(Deserialize, Default)]
struct ResponseOp {
    #[serde(default)]
    response_range: Option<RangeResponse>,
    #[serde(default)]
    response_delete_range: Option<DeleteRangeResponse>,
}

#[derive(Deserialize)]
struct TxnResponse {
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<ResponseOp>,
}

#[derive(Deserialize)]
struct AuthResponse {
    #[serde(default)]
    token: String,
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The key right after every key starting with `prefix` (etcd's `range_end` for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // A prefix of only 0xff bytes: the range runs to the end of the key space.
    vec![0]
}

/// A name as one key segment.
fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

fn decode_name(segment: &str) -> String {
    segment.replace("%2F", "/").replace("%25", "%")
}

fn range_op(key: &[u8]) -> Value {
    json!({"request_range": {"key": b64(key)}})
}

fn put_op(key: &[u8], value: &[u8]) -> Value {
    json!({"request_put": {"key": b64(key), "value": b64(value)}})
}

/// A compare that holds when `key` does not exist.
fn absent(key: &[u8]) -> Value {
    json!({"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
}

fn value_is(key: &[u8], value: &[u8]) -> Value {
    json!({"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)})
}

impl EtcdStore {
    /// A store at `spec`, connecting with `options`. Reads the TLS files; talks to no member
    /// yet.
    pub fn new(spec: EtcdSpec, options: EtcdOptions) -> Result<EtcdStore, StoreError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("cio-credential");
        if spec.tls {
            config = config.tls_config(tls_config(&spec, &options)?);
        }
        if spec.endpoints.is_empty() {
            return Err(StoreError::Unusable {
                location: spec.location(),
                action: "used",
                detail: "no etcd endpoint is given".into(),
            });
        }
        let tokens = vec![None; spec.endpoints.len()];
        Ok(EtcdStore {
            client_cert: options.cert.is_some(),
            agent: ureq::Agent::new_with_config(config.build()),
            auth: options.auth,
            timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
            tokens: Mutex::new(tokens),
            preferred: AtomicUsize::new(0),
            spec,
        })
    }

    /// The key prefix this store lives under.
    pub fn prefix(&self) -> &str {
        &self.spec.prefix
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}/{rest}", self.spec.prefix).into_bytes()
    }

    fn store_id_key(&self) -> Vec<u8> {
        self.key("meta/store_id")
    }

    fn fingerprint_key(&self) -> Vec<u8> {
        self.key("meta/key_fingerprint")
    }

    fn head_key(&self, name: &str) -> Vec<u8> {
        self.key(&format!("head/{}", encode_name(name)))
    }

    fn versions_prefix(&self, name: Option<&str>) -> Vec<u8> {
        match name {
            Some(name) => self.key(&format!("v/{}/", encode_name(name))),
            None => self.key("v/"),
        }
    }

    fn version_key(&self, name: &str, version: u64) -> Vec<u8> {
        self.key(&format!("v/{}/{version:020}", encode_name(name)))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            location: self.location(),
            detail,
        }
    }

    fn unusable(&self, detail: String) -> StoreError {
        StoreError::Unusable {
            location: self.location(),
            action: "used",
            detail,
        }
    }

    fn denied(&self, detail: String) -> StoreError {
        StoreError::Denied {
            location: self.location(),
            detail,
        }
    }

    /// One POST to one member: the status and body of whatever it answered.
    fn post_once(
        &self,
        endpoint: &str,
        path: &str,
        body: &str,
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<(u16, String), Failure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::NotSent("the time budget ran out".into()));
        }
        // One member that accepts connections but does not answer (hung, or cut off from
        // the others) must not use up the whole budget: each attempt gets a share of it.
        let members = u32::try_from(self.spec.endpoints.len())
            .unwrap_or(u32::MAX)
            .max(1);
        let share = (self.timeout / members).max(CONNECT_TIMEOUT);
        let budget = remaining.min(share);
        let scheme = if self.spec.tls { "https" } else { "http" };
        let mut request = self
            .agent
            .post(format!("{scheme}://{endpoint}{path}"))
            .header("Content-Type", "application/json");
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            request = request.header("Authorization", token);
        }
        let response = request
            .config()
            .timeout_global(Some(budget))
            .timeout_connect(Some(budget.min(CONNECT_TIMEOUT)))
            .build()
            .send(body);
        let mut response = response.map_err(|e| classify(e, self.spec.tls))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .map_err(|e| match classify(e, self.spec.tls) {
                Failure::NotSent(d) => Failure::Unavailable(d),
                other => other,
            })?;
        Ok((status, text))
    }

    /// Gets (or renews) the token of endpoint `i`; `""` when the cluster has auth disabled.
    fn token(&self, i: usize, renew: bool, deadline: Instant) -> Result<Option<String>, Failure> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        {
            let tokens = self
                .tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(Some(token)) = tokens.get(i)
                && !renew
            {
                return Ok(Some(token.clone()));
            }
        }
        #[derive(Serialize)]
        struct Authenticate<'a> {
            name: &'a str,
            password: &'a str,
        }
        let body = Zeroizing::new(
            serde_json::to_string(&Authenticate {
                name: &auth.user,
                password: auth.password.expose(),
            })
            .expect("two strings always serialize to JSON"),
        );
        let endpoint = &self.spec.endpoints[i];
        let (status, text) =
            self.post_once(endpoint, "/v3/auth/authenticate", &body, None, deadline)?;
        let token = if status == 200 {
            serde_json::from_str::<AuthResponse>(&text)
                .map_err(|e| {
                    Failure::Final(self.unusable(format!(
                        "{endpoint} answered authentication with something that is not etcd's: {e}"
                    )))
                })?
                .token
        } else {
            let e = serde_json::from_str::<GatewayError>(&text).unwrap_or_default();
            if e.code == GRPC_FAILED_PRECONDITION && e.message.contains("not enabled") {
                // The cluster does not use authentication: go on without a token.
                String::new()
            } else if e.code == GRPC_INVALID_ARGUMENT && e.message.contains("authentication failed")
            {
                return Err(Failure::Final(self.denied(format!(
                    "etcd refused user {:?} (wrong user name or password)",
                    auth.user
                ))));
            } else {
                return Err(self.gateway_failure(endpoint, status, &text));
            }
        };
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = tokens.get_mut(i) {
            *slot = Some(token.clone());
        }
        Ok(Some(token))
    }

    /// What a non-success answer means.
    fn gateway_failure(&self, endpoint: &str, status: u16, text: &str) -> Failure {
        let Ok(e) = serde_json::from_str::<GatewayError>(text) else {
            let excerpt: String = text.chars().take(120).collect();
            if status >= 500 {
                return Failure::Unavailable(format!("{endpoint}: HTTP {status}"));
            }
            return Failure::Final(self.unusable(format!(
                "{endpoint} answered HTTP {status}, not as an etcd v3 gateway would ({excerpt:?}); is it etcd 3.4 or later, and does the scheme (etcd:// or etcds://) match?"
            )));
        };
        let message = if e.message.is_empty() {
            e.error
        } else {
            e.message
        };
        // The member refused before doing anything (no leader, shutting down): asking another
        // is safe even for a write.
        let refused_before = [
            "no leader",
            "not capable",
            "server stopped",
            "too many requests",
        ]
        .iter()
        .any(|m| message.contains(m));
        match e.code {
            _ if refused_before => Failure::NotSent(format!("{endpoint}: {message}")),
            GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED => {
                Failure::Unavailable(format!("{endpoint}: {message}"))
            }
            GRPC_PERMISSION_DENIED => Failure::Final(self.denied(format!(
                "{message}: the etcd user{} may not read and write {}",
                self.auth
                    .as_ref()
                    .map(|a| format!(" {:?}", a.user))
                    .unwrap_or_default(),
                self.spec.prefix
            ))),
            GRPC_UNAUTHENTICATED => Failure::Final(
                self.denied(format!("{message} (the token etcd gave could not be used)")),
            ),
            GRPC_INVALID_ARGUMENT if message.contains("user name is empty") => {
                Failure::Final(self.denied(
                    "the cluster requires authentication and no etcd user was given".into(),
                ))
            }
            _ if message.contains("timed out") || message.contains("leader changed") => {
                Failure::Unavailable(format!("{endpoint}: {message}"))
            }
            _ => Failure::Final(self.unusable(format!("{endpoint}: {message}"))),
        }
    }

    /// POSTs `body` to `path`, trying the members in turn until one answers or the budget
    /// runs out. `resend` says whether the request may be sent again after a member may
    /// have received it (true for reads, false for writes).
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        resend: bool,
        deadline: Instant,
    ) -> Result<T, StoreError> {
        let body = body.to_string();
        let n = self.spec.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut failures: Vec<String> = Vec::new();
        let mut all_tls = true;
        let mut round = 0;
        loop {
            for step in 0..n {
                let i = (first + step) % n;
                let endpoint = &self.spec.endpoints[i];
                let outcome = self.attempt(i, path, &body, deadline);
                let failure = match outcome {
                    Ok(text) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return serde_json::from_str(&text).map_err(|e| {
                            self.unusable(format!(
                                "{endpoint} answered {path} with something that is not etcd's: {e}"
                            ))
                        });
                    }
                    Err(failure) => failure,
                };
                match failure {
                    Failure::Final(e) => return Err(e),
                    Failure::Tls(d) => failures.push(d),
                    Failure::NotSent(d) => {
                        all_tls = false;
                        failures.push(d);
                    }
                    Failure::Unavailable(d) => {
                        all_tls = false;
                        failures.push(d);
                        if !resend {
                            return Err(self.unreachable(&failures, false));
                        }
                    }
                }
                if Instant::now() >= deadline {
                    return Err(self.unreachable(&failures, true));
                }
            }
            if all_tls {
                return Err(StoreError::Tls {
                    location: self.location(),
                    detail: failures.join("; "),
                });
            }
            round += 1;
            // Every member failed: wait a little (an election takes a moment), then again.
            let pause = Duration::from_millis(100 * round.min(5));
            if Instant::now() + pause >= deadline {
                return Err(self.unreachable(&failures, true));
            }
            std::thread::sleep(pause);
        }
    }

    fn unreachable(&self, failures: &[String], timed_out: bool) -> StoreError {
        let mut seen: Vec<&String> = Vec::new();
        for f in failures {
            if !seen.contains(&f) {
                seen.push(f);
            }
        }
        let mut detail = seen
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if self.spec.tls && !self.client_cert {
            detail.push_str(
                "; no client certificate was given, and etcd members usually require one",
            );
        }
        StoreError::Unreachable {
            location: self.location(),
            detail: if timed_out {
                format!("no member answered within {:?} ({detail})", self.timeout)
            } else {
                format!(
                    "{detail}; the write may or may not have been applied as a whole, never in part"
                )
            },
        }
    }

    /// One request to member `i`, with its token, renewing an expired token once.
    fn attempt(
        &self,
        i: usize,
        path: &str,
        body: &str,
        deadline: Instant,
    ) -> Result<String, Failure> {
        let endpoint = &self.spec.endpoints[i];
        let mut renew = false;
        loop {
            let token = self.token(i, renew, deadline)?;
            let (status, text) =
                self.post_once(endpoint, path, body, token.as_deref(), deadline)?;
            if status == 200 {
                return Ok(text);
            }
            let e = serde_json::from_str::<GatewayError>(&text).unwrap_or_default();
            if e.code == GRPC_UNAUTHENTICATED {
                if self.auth.is_none() {
                    return Err(Failure::Final(self.denied(
                        "the cluster requires authentication and no etcd user was given".into(),
                    )));
                }
                if !renew {
                    renew = true;
                    continue;
                }
            }
            return Err(self.gateway_failure(endpoint, status, &text));
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Every key in `[start, end)`, read in pages at one revision (one consistent snapshot).
    fn range_all(
        &self,
        start: &[u8],
        end: &[u8],
        deadline: Instant,
    ) -> Result<Vec<Kv>, StoreError> {
        let mut kvs = Vec::new();
        let mut from = start.to_vec();
        let mut revision = 0i64;
        loop {
            let mut request = json!({
                "key": b64(&from),
                "range_end": b64(end),
                "limit": PAGE.to_string(),
            });
            if revision != 0 {
                request["revision"] = json!(revision.to_string());
            }
            let page: RangeResponse = self.call("/v3/kv/range", &request, true, deadline)?;
            if revision == 0 {
                revision = page.header.revision;
            }
            let more = page.more;
            kvs.extend(page.kvs);
            match kvs.last() {
                Some(last) if more => {
                    from = last.key.clone();
                    from.push(0);
                }
                _ => return Ok(kvs),
            }
        }
    }

    fn txn(
        &self,
        compare: Vec<Value>,
        success: Vec<Value>,
        failure: Vec<Value>,
        deadline: Instant,
    ) -> Result<TxnResponse, StoreError> {
        let body = json!({"compare": compare, "success": success, "failure": failure});
        self.call("/v3/kv/txn", &body, false, deadline)
    }

    /// Decodes a version from its key and record.
    fn to_version(&self, kv: &Kv) -> Result<Record, StoreError> {
        let key = String::from_utf8_lossy(&kv.key);
        let bad = |why: &str| self.corrupt(format!("the record {key:?} {why}"));
        let base = String::from_utf8_lossy(&self.versions_prefix(None)).into_owned();
        let rest = key
            .strip_prefix(&base)
            .ok_or_else(|| bad("is outside the store"))?;
        let (name, number) = rest
            .rsplit_once('/')
            .ok_or_else(|| bad("has no version number"))?;
        let version: u64 = number.parse().map_err(|_| bad("has no version number"))?;
        let record: RecordJson =
            serde_json::from_slice(&kv.value).map_err(|_| bad("is not a cio record"))?;
        if record.format != RECORD_FORMAT {
            return Err(StoreError::Foreign {
                location: self.location(),
                detail: format!(
                    "record format {}, this cio reads format {RECORD_FORMAT}: use a cio that matches",
                    record.format
                ),
            });
        }
        let action = Action::parse(&record.action).ok_or_else(|| bad("has an unknown action"))?;
        let sealed = match record.sealed {
            Some(text) => Some(
                STANDARD
                    .decode(text)
                    .map_err(|_| bad("has a damaged value"))?,
            ),
            None => None,
        };
        Ok(Record {
            name: decode_name(name),
            version,
            action,
            restored_from: record.restored_from,
            written_at_ms: record.written_at_ms,
            sealed,
        })
    }

    fn versions(&self, name: Option<&str>, deadline: Instant) -> Result<Vec<Record>, StoreError> {
        let start = self.versions_prefix(name);
        let kvs = self.range_all(&start, &prefix_end(&start), deadline)?;
        let mut versions = kvs
            .iter()
            .map(|kv| self.to_version(kv))
            .collect::<Result<Vec<_>, _>>()?;
        versions.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
        Ok(versions)
    }

    fn record_bytes(version: &Record) -> Vec<u8> {
        let record = RecordJson {
            format: RECORD_FORMAT,
            action: version.action.as_str().to_string(),
            restored_from: version.restored_from,
            written_at_ms: version.written_at_ms,
            sealed: version.sealed.as_deref().map(b64),
        };
        serde_json::to_vec(&record)
            .expect("a record of strings and numbers always serializes to JSON")
    }

    /// The value of the first key of a range response in a txn's responses, if any.
    fn response_value(response: &TxnResponse, index: usize) -> Option<Vec<u8>> {
        response
            .responses
            .get(index)
            .and_then(|r| r.response_range.as_ref())
            .and_then(|r| r.kvs.first())
            .map(|kv| kv.value.clone())
    }
}

/// What a ureq error means for the attempt; `tls`: the connection uses TLS.
fn classify(e: ureq::Error, tls: bool) -> Failure {
    use ureq::Error as E;
    use ureq::Timeout;
    match e {
        E::ConnectionFailed | E::HostNotFound => Failure::NotSent(e.to_string()),
        E::Timeout(Timeout::Connect | Timeout::Resolve) => {
            Failure::NotSent(format!("connecting timed out ({e})"))
        }
        E::Timeout(_) => Failure::Unavailable(format!("no answer in time ({e})")),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::NetworkUnreachable
            | std::io::ErrorKind::HostUnreachable => Failure::NotSent(io.to_string()),
            // rustls reports a failed handshake (unknown issuer, refused certificate) as
            // invalid data on the stream.
            std::io::ErrorKind::InvalidData if tls => Failure::Tls(format!("TLS: {io}")),
            _ => Failure::Unavailable(io.to_string()),
        },
        E::Tls(_) | E::Pem(_) | E::Rustls(_) => Failure::Tls(format!("TLS: {e}")),
        other => Failure::Unavailable(other.to_string()),
    }
}

impl Store for EtcdStore {
    fn location(&self) -> String {
        self.spec.location()
    }

    fn identity(&self, create: bool) -> Result<Option<Identity>, StoreError> {
        let deadline = self.deadline();
        let meta = self.key("meta/");
        let kvs = self.range_all(&meta, &prefix_end(&meta), deadline)?;
        let text = |kv: &Kv| String::from_utf8_lossy(&kv.value).into_owned();
        let mut store_id = kvs
            .iter()
            .find(|kv| kv.key == self.store_id_key())
            .map(text);
        let key_fingerprint = kvs
            .iter()
            .find(|kv| kv.key == self.fingerprint_key())
            .map(text);
        if store_id.is_none() && create {
            // Create the id only if nothing at all is under the prefix: a race between two
            // creators leaves exactly one id, and another program's keys are never adopted.
            let all = format!("{}/", self.spec.prefix).into_bytes();
            let mut nothing = absent(&all);
            nothing["range_end"] = json!(b64(&prefix_end(&all)));
            let id_key = self.store_id_key();
            let id = new_store_id();
            let response = self.txn(
                vec![nothing],
                vec![put_op(&id_key, id.as_bytes())],
                vec![range_op(&id_key)],
                deadline,
            )?;
            store_id = if response.succeeded {
                Some(id)
            } else {
                match Self::response_value(&response, 0) {
                    Some(v) => Some(String::from_utf8_lossy(&v).into_owned()),
                    None => {
                        return Err(StoreError::Foreign {
                            location: self.location(),
                            detail: format!(
                                "keys that cio did not write exist under {}/",
                                self.spec.prefix
                            ),
                        });
                    }
                }
            };
        }
        Ok(store_id.map(|store_id| Identity {
            store_id,
            key_fingerprint,
        }))
    }

    fn latest(&self, name: &str) -> Result<Option<Record>, StoreError> {
        let start = self.versions_prefix(Some(name));
        let request = json!({
            "key": b64(&start),
            "range_end": b64(&prefix_end(&start)),
            "limit": "1",
            "sort_order": "DESCEND",
            "sort_target": "KEY",
        });
        let response: RangeResponse = self.call("/v3/kv/range", &request, true, self.deadline())?;
        response
            .kvs
            .first()
            .map(|kv| self.to_version(kv))
            .transpose()
    }

    fn list_latest(&self) -> Result<Vec<Record>, StoreError> {
        let mut latest: Vec<Record> = Vec::new();
        for v in self.versions(None, self.deadline())? {
            match latest.last_mut() {
                Some(last) if last.name == v.name => *last = v,
                _ => latest.push(v),
            }
        }
        Ok(latest)
    }

    fn history(&self, name: &str) -> Result<Vec<Record>, StoreError> {
        self.versions(Some(name), self.deadline())
    }

    fn all_versions(&self) -> Result<Vec<Record>, StoreError> {
        self.versions(None, self.deadline())
    }

    fn append(
        &self,
        expected: u64,
        version: &Record,
        key_fingerprint: &str,
    ) -> Result<(), StoreError> {
        let conflict = || StoreError::Conflict {
            name: version.name.clone(),
        };
        if version.version != expected + 1 {
            return Err(conflict());
        }
        let deadline = self.deadline();
        let head = self.head_key(&version.name);
        let vkey = self.version_key(&version.name, version.version);
        let fp_key = self.fingerprint_key();
        let head_cmp = if expected == 0 {
            absent(&head)
        } else {
            value_is(&head, expected.to_string().as_bytes())
        };
        let record = Self::record_bytes(version);
        let puts = [
            put_op(&vkey, &record),
            put_op(&head, version.version.to_string().as_bytes()),
        ];
        // First assume the fingerprint is recorded; when it turns out not to be, record it in
        // the same transaction. Two rounds suffice unless another writer keeps racing us.
        let mut fingerprint_recorded = true;
        for _ in 0..4 {
            let (fp_cmp, mut success) = if fingerprint_recorded {
                (value_is(&fp_key, key_fingerprint.as_bytes()), Vec::new())
            } else {
                (
                    absent(&fp_key),
                    vec![put_op(&fp_key, key_fingerprint.as_bytes())],
                )
            };
            success.extend(puts.iter().cloned());
            let response = self.txn(
                vec![head_cmp.clone(), fp_cmp, absent(&vkey)],
                success,
                vec![range_op(&head), range_op(&fp_key)],
                deadline,
            )?;
            if response.succeeded {
                return Ok(());
            }
            match Self::response_value(&response, 1) {
                None => {
                    fingerprint_recorded = false;
                    continue;
                }
                Some(fp) if fp != key_fingerprint.as_bytes() => {
                    return Err(StoreError::KeyMismatch {
                        location: self.location(),
                        key_fingerprint: key_fingerprint.to_string(),
                        store_fingerprint: String::from_utf8_lossy(&fp).into_owned(),
                    });
                }
                Some(_) if !fingerprint_recorded => {
                    // Another writer recorded the same key meanwhile: compare with it.
                    fingerprint_recorded = true;
                    continue;
                }
                Some(_) => return Err(conflict()),
            }
        }
        Err(conflict())
    }

    fn purge(&self, name: &str) -> Result<usize, StoreError> {
        let start = self.versions_prefix(Some(name));
        let delete_versions = json!({"request_delete_range": {
            "key": b64(&start),
            "range_end": b64(&prefix_end(&start)),
        }});
        let delete_head = json!({"request_delete_range": {"key": b64(&self.head_key(name))}});
        let response = self.txn(
            Vec::new(),
            vec![delete_versions, delete_head],
            Vec::new(),
            self.deadline(),
        )?;
        let deleted = response
            .responses
            .first()
            .and_then(|r| r.response_delete_range.as_ref())
            .map_or(0, |d| d.deleted);
        Ok(usize::try_from(deleted).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite;
    use testkit::etcd::EtcdCluster;

    fn store(cluster: &EtcdCluster, prefix: &str) -> EtcdStore {
        let Some(spec) = EtcdSpec::parse(&cluster.url(prefix)).unwrap() else {
            panic!("not an etcd location");
        };
        EtcdStore::new(spec, EtcdOptions::default()).unwrap()
    }

    #[test]
    fn parse_locations() {
        let p = |t: &str| EtcdSpec::parse(t).unwrap().unwrap();
        assert_eq!(
            p("etcd://10.0.0.1:2379,10.0.0.2:2380"),
            EtcdSpec {
                endpoints: vec!["10.0.0.1:2379".into(), "10.0.0.2:2380".into()],
                tls: false,
                prefix: DEFAULT_PREFIX.into(),
            }
        );
        let s = p("etcds://node-a,[::1]:2379,[fe80::1]/cio/prod/");
        assert!(s.tls);
        assert_eq!(s.endpoints, ["node-a:2379", "[::1]:2379", "[fe80::1]:2379"]);
        assert_eq!(s.prefix, "/cio/prod");
        assert_eq!(
            s.location(),
            "etcds://node-a:2379,[::1]:2379,[fe80::1]:2379/cio/prod"
        );
        assert_eq!(p("etcd://h:1/").prefix, DEFAULT_PREFIX);
        assert!(
            EtcdSpec::parse("/var/lib/cio/credentials.db")
                .unwrap()
                .is_none()
        );
        assert!(EtcdSpec::parse("etcd2://x").unwrap().is_none());
        for bad in [
            "etcd://",
            "etcd:///prefix",
            "etcd://a:2379,,b:2379",
            "etcd://a:notaport",
            "etcd://a:0",
            "etcd://a b:1",
            "etcd://a:1//x",
        ] {
            assert!(EtcdSpec::parse(bad).is_err(), "{bad} should be refused");
        }
        let err = EtcdSpec::parse("etcd://root:hunter2@a:2379").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn names_are_one_key_segment() {
        for name in ["plain", "a/b", "100%", "%2F"] {
            assert_eq!(decode_name(&encode_name(name)), name);
            assert!(!encode_name(name).contains('/'));
        }
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
    }

    /// The shared suite against one real etcd member, each case under its own prefix.
    #[test]
    fn suite_against_a_single_member() {
        let cluster = EtcdCluster::single();
        let empty = store(&cluster, "/t/empty");
        suite::empty_store_has_nothing(&empty);
        assert!(empty.identity(false).unwrap().is_none());
        let out = cluster.etcdctl(&["get", "--prefix", "/t/empty", "--keys-only"]);
        assert!(out.stdout.is_empty(), "reading creates nothing");

        suite::identity_is_stable(&store(&cluster, "/t/identity"));
        suite::append_is_conditional(&store(&cluster, "/t/append"));
        suite::other_keys_are_refused(&store(&cluster, "/t/keys"));
        suite::removes_are_versions_and_purge_destroys(&store(&cluster, "/t/purge"));
        suite::concurrent_appends_lose_nothing(|| Box::new(store(&cluster, "/t/concurrent")));

        // The layout is the documented one.
        let s = store(&cluster, "/t/layout");
        let id = s.identity(true).unwrap().unwrap();
        s.append(
            0,
            &Record {
                name: "cio_aws_access_key".into(),
                version: 1,
                action: Action::Create,
                restored_from: None,
                written_at_ms: 7,
                sealed: Some(vec![1, 2, 3]),
            },
            "fp",
        )
        .unwrap();
        let out = cluster.etcdctl(&["get", "--prefix", "/t/layout/"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "/t/layout/head/cio_aws_access_key",
                "1",
                "/t/layout/meta/key_fingerprint",
                "fp",
                "/t/layout/meta/store_id",
                id.store_id.as_str(),
                "/t/layout/v/cio_aws_access_key/00000000000000000001",
                r#"{"format":1,"action":"create","written_at_ms":7,"sealed":"AQID"}"#,
            ]
        );
    }

    #[test]
    fn foreign_keys_under_the_prefix_are_refused() {
        let cluster = EtcdCluster::single();
        let out = cluster.etcdctl(&["put", "/other/app/config", "x"]);
        assert!(out.status.success());
        let err = store(&cluster, "/other").identity(true).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
        let out = cluster.etcdctl(&["get", "--prefix", "/other", "--keys-only"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "/other/app/config"
        );
    }

    #[test]
    fn nothing_listening_is_unreachable_quickly() {
        let spec = EtcdSpec::parse(&format!("etcd://127.0.0.1:{}", testkit::free_port()))
            .unwrap()
            .unwrap();
        let s = EtcdStore::new(
            spec,
            EtcdOptions {
                timeout: Some(Duration::from_secs(1)),
                ..EtcdOptions::default()
            },
        )
        .unwrap();
        let start = Instant::now();
        let err = s.latest("x").unwrap_err();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
