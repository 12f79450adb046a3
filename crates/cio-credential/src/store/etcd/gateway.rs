//! A client of etcd's v3 HTTP/JSON gateway over a list of members, with the blocking `ureq`
//! client (rustls).
//!
//! Rules:
//! - endpoints are tried in turn, starting with the last one that answered; a member that is
//!   down (connection refused or connect timeout) is skipped, so one member down is
//!   invisible. Each operation has one time budget (default [`DEFAULT_TIMEOUT`]); each
//!   attempt gets at most what is left of it and at most an equal share of it per member
//!   (but at least [`CONNECT_TIMEOUT`]), so a member that hangs is skipped too; connecting
//!   may take at most [`CONNECT_TIMEOUT`]. When every member failed, the round starts again
//!   after a short pause (an election takes a moment) until the budget runs out;
//! - a request that must not be applied twice (a transaction) is not sent again elsewhere
//!   once a member may have received it: it fails as Unreachable and the caller decides;
//! - with a user, a token is fetched from `/v3/auth/authenticate` per member (etcd's simple
//!   tokens are only valid on the member that issued them) and sent as `Authorization`;
//!   an expired token is renewed once;
//! - what each failure means is decided in [`super::classify`]; a member that ends the
//!   connection without an answer is probed for the other scheme or a refused handshake
//!   ([`super::handshake`]), so a mistyped scheme or TLS file is named, not "unreachable";
//! - a reading of several requests pinned at one revision (one consistent snapshot) whose
//!   revision etcd compacted meanwhile (another node's `remove --purge --compact`, or the
//!   members' auto-compaction) starts over at the newest revision, a few times, within its
//!   budget ([`at_one_revision`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::classify::{Context, Failure, GatewayError, transport};
use super::handshake::{Handshake, diagnose_dropped, dropped};
use super::location::EtcdSpec;
use super::tls::tls_config;
use super::wire::{AuthResponse, Kv, RangeResponse, TxnResponse, b64};
use crate::secret::SecretValue;
use crate::store::StoreError;

/// The time budget of one store operation, over all endpoints.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an attempt waits to connect to one member before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How many keys one range request returns at most (longer ranges are read in pages).
const PAGE: i64 = 500;
/// The largest response read from a member.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;
/// How often a reading pinned at one revision starts over after etcd compacted that revision.
const COMPACTED_RESTARTS: usize = 3;

/// What runs before each request pinned at a revision (for tests: a compaction between the
/// requests of one reading).
#[cfg(test)]
type PinnedReadHook = Box<dyn FnMut() + Send>;

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

/// The members of one cluster, spoken to through the JSON gateway.
pub(super) struct Gateway {
    endpoints: Vec<String>,
    agent: ureq::Agent,
    auth: Option<EtcdAuth>,
    /// What errors name, and how the connection is made.
    context: Context,
    /// Per endpoint: the auth token it issued; `Some("")` when auth is off.
    tokens: Mutex<Vec<Option<String>>>,
    /// The endpoint that answered last; tried first.
    preferred: AtomicUsize,
    #[cfg(test)]
    before_pinned_read: Mutex<Option<PinnedReadHook>>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("endpoints", &self.endpoints)
            .field("auth", &self.auth)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A client of the members of `spec`, connecting with `options`. Reads the TLS files;
    /// talks to no member yet.
    pub fn new(spec: &EtcdSpec, options: EtcdOptions) -> Result<Gateway, StoreError> {
        let location = spec.location();
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("cio-credential");
        if spec.tls {
            config = config.tls_config(tls_config(&location, &options)?);
        }
        if spec.endpoints.is_empty() {
            return Err(StoreError::Unusable {
                location,
                action: "used",
                detail: "no etcd endpoint is given".into(),
            });
        }
        Ok(Gateway {
            endpoints: spec.endpoints.clone(),
            agent: ureq::Agent::new_with_config(config.build()),
            tokens: Mutex::new(vec![None; spec.endpoints.len()]),
            preferred: AtomicUsize::new(0),
            context: Context {
                location,
                prefix: spec.prefix.clone(),
                user: options.auth.as_ref().map(|a| a.user.clone()),
                tls: spec.tls,
                cacert: options.cacert.clone(),
                client_cert: options.cert.is_some(),
                timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
            },
            auth: options.auth,
            #[cfg(test)]
            before_pinned_read: Mutex::new(None),
        })
    }

    /// For tests: runs `hook` before each range request pinned at a revision, that is
    /// between two requests of one reading.
    #[cfg(test)]
    pub fn before_pinned_reads(&self, hook: impl FnMut() + Send + 'static) {
        *self
            .before_pinned_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(hook));
    }

    #[cfg(test)]
    fn pinned_read(&self) {
        if let Some(hook) = self
            .before_pinned_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            hook();
        }
    }

    #[cfg(not(test))]
    fn pinned_read(&self) {}

    /// When an operation starting now must be done.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.context.timeout
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
        let members = u32::try_from(self.endpoints.len())
            .unwrap_or(u32::MAX)
            .max(1);
        let share = (self.context.timeout / members).max(CONNECT_TIMEOUT);
        let budget = remaining.min(share);
        let scheme = if self.context.tls { "https" } else { "http" };
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
        let mut response = response.map_err(|e| self.failed(endpoint, e, budget))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            // The request was sent: a failure now is never "not sent".
            .map_err(|e| match transport(endpoint, e, &self.context) {
                Failure::NotSent(d) => Failure::Unavailable(d),
                other => other,
            })?;
        Ok((status, text))
    }

    /// What a request to `endpoint` that got no answer met: when the member ended the
    /// connection, the probes may tell that it speaks the other scheme or refuses this node's
    /// TLS ([`diagnose_dropped`], within `budget`).
    fn failed(&self, endpoint: &str, e: ureq::Error, budget: Duration) -> Failure {
        if dropped(&e)
            && let Some(handshake) = diagnose_dropped(
                &self.agent,
                endpoint,
                self.context.tls,
                self.context.our_side(),
                budget.min(CONNECT_TIMEOUT),
            )
        {
            return Failure::Handshake(handshake);
        }
        transport(endpoint, e, &self.context)
    }

    /// Gets (or renews) the token of endpoint `i`; `""` when the cluster has auth disabled.
    fn token(&self, i: usize, renew: bool, deadline: Instant) -> Result<Option<String>, Failure> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        {
            let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
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
        let endpoint = &self.endpoints[i];
        let (status, text) =
            self.post_once(endpoint, "/v3/auth/authenticate", &body, None, deadline)?;
        let token = if status == 200 {
            serde_json::from_str::<AuthResponse>(&text)
                .map_err(|e| {
                    Failure::Final(self.context.unusable(format!(
                        "{endpoint} answered authentication with something that is not etcd's: {e}"
                    )))
                })?
                .token
        } else {
            // Ok: the cluster does not use authentication; go on without a token.
            self.context.authentication(endpoint, status, &text)?;
            String::new()
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = tokens.get_mut(i) {
            *slot = Some(token.clone());
        }
        Ok(Some(token))
    }

    /// One request to member `i`, with its token, renewing an expired token once. `Ok(None)`:
    /// the member answered with an error that `settled` accepts as the outcome.
    fn attempt(
        &self,
        i: usize,
        path: &str,
        body: &str,
        settled: &dyn Fn(&GatewayError) -> bool,
        deadline: Instant,
    ) -> Result<Option<String>, Failure> {
        let endpoint = &self.endpoints[i];
        let mut renew = false;
        loop {
            let token = self.token(i, renew, deadline)?;
            let (status, text) =
                self.post_once(endpoint, path, body, token.as_deref(), deadline)?;
            if status == 200 {
                return Ok(Some(text));
            }
            let e = GatewayError::parse(&text).unwrap_or_default();
            if settled(&e) {
                return Ok(None);
            }
            if e.is_unauthenticated() {
                if self.auth.is_none() {
                    return Err(self.context.no_user());
                }
                if !renew {
                    renew = true;
                    continue;
                }
            }
            return Err(self.context.answer(endpoint, status, &text));
        }
    }

    /// POSTs `body` to `path`, trying the members in turn until one answers or the budget
    /// runs out. `resend` says whether the request may be sent again after a member may
    /// have received it (true for reads, false for writes).
    pub fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        resend: bool,
        deadline: Instant,
    ) -> Result<T, StoreError> {
        self.call_settled(path, body, resend, &|_| false, deadline)
            .map(|answer| answer.expect("no error answer is accepted here, so Ok holds one"))
    }

    /// [`Gateway::call`], where an error answer that `settled` accepts ends the call with
    /// `Ok(None)` (e.g. "already compacted" for a compaction).
    pub fn call_settled<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        resend: bool,
        settled: &dyn Fn(&GatewayError) -> bool,
        deadline: Instant,
    ) -> Result<Option<T>, StoreError> {
        let body = body.to_string();
        let n = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut failures: Vec<String> = Vec::new();
        let mut handshakes: Vec<Handshake> = Vec::new();
        let mut round = 0;
        loop {
            for step in 0..n {
                let i = (first + step) % n;
                let endpoint = &self.endpoints[i];
                let failure = match self.attempt(i, path, &body, settled, deadline) {
                    Ok(None) => return Ok(None),
                    Ok(Some(text)) => {
                        self.preferred.store(i, Ordering::Relaxed);
                        return serde_json::from_str(&text).map(Some).map_err(|e| {
                            self.context.unusable(format!(
                                "{endpoint} answered {path} with something that is not etcd's: {e}"
                            ))
                        });
                    }
                    Err(failure) => failure,
                };
                match failure {
                    Failure::Final(e) => return Err(e),
                    Failure::Handshake(h) => {
                        failures.push(h.to_string());
                        handshakes.push(h);
                    }
                    Failure::NotSent(d) => failures.push(d),
                    Failure::Unavailable(d) => {
                        failures.push(d);
                        if !resend {
                            return Err(self.context.unreachable(&failures, false));
                        }
                    }
                }
                if Instant::now() >= deadline {
                    return Err(self.context.unreachable(&failures, true));
                }
            }
            if handshakes.len() == failures.len() {
                return Err(self.context.handshake_failed(&handshakes));
            }
            round += 1;
            // Every member failed: wait a little (an election takes a moment), then again.
            let pause = Duration::from_millis(100 * round.min(5));
            if Instant::now() + pause >= deadline {
                return Err(self.context.unreachable(&failures, true));
            }
            std::thread::sleep(pause);
            if Instant::now() >= deadline {
                return Err(self.context.unreachable(&failures, true));
            }
        }
    }

    /// Every key in `[start, end)`, read in pages at one revision (one consistent snapshot).
    pub fn range_all(
        &self,
        start: &[u8],
        end: &[u8],
        deadline: Instant,
    ) -> Result<Vec<Kv>, StoreError> {
        at_one_revision(deadline, || self.range_all_at(start, end, 0, deadline)).map(|(kvs, _)| kvs)
    }

    /// [`Gateway::range_all`] at `revision` (0: the newest), with the revision it read at:
    /// several ranges of one moment. A revision compacted meanwhile is
    /// [`StoreError::Compacted`]: the caller starts the whole reading over
    /// ([`at_one_revision`]).
    pub fn range_all_at(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        deadline: Instant,
    ) -> Result<(Vec<Kv>, i64), StoreError> {
        self.pages_at(start, end, revision, false, deadline)
    }

    /// The keys alone (no values) in `[start, end)`, as [`Gateway::range_all_at`] reads them.
    pub fn keys_all_at(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        deadline: Instant,
    ) -> Result<(Vec<Vec<u8>>, i64), StoreError> {
        let (kvs, revision) = self.pages_at(start, end, revision, true, deadline)?;
        Ok((kvs.into_iter().map(|kv| kv.key).collect(), revision))
    }

    fn pages_at(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        keys_only: bool,
        deadline: Instant,
    ) -> Result<(Vec<Kv>, i64), StoreError> {
        let mut kvs = Vec::new();
        let mut from = start.to_vec();
        let mut revision = revision;
        loop {
            let mut request = json!({
                "key": b64(&from),
                "range_end": b64(end),
                "limit": PAGE.to_string(),
            });
            if keys_only {
                request["keys_only"] = json!(true);
            }
            if revision != 0 {
                request["revision"] = json!(revision.to_string());
                self.pinned_read();
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
                _ => return Ok((kvs, revision)),
            }
        }
    }

    /// One transaction: `success` runs when every `compare` holds, else `failure`. Never
    /// sent twice.
    pub fn txn(
        &self,
        compare: Vec<Value>,
        success: Vec<Value>,
        failure: Vec<Value>,
        deadline: Instant,
    ) -> Result<TxnResponse, StoreError> {
        let body = json!({"compare": compare, "success": success, "failure": failure});
        self.call("/v3/kv/txn", &body, false, deadline)
    }
}

/// Runs `read` (requests pinned at one revision, [`Gateway::range_all_at`]) and starts it over,
/// at the newest revision, when etcd compacted the revision it was pinned at: at most
/// [`COMPACTED_RESTARTS`] times, and only before `deadline`. Then the reading fails as
/// [`StoreError::Compacted`], which says to run the command again.
pub(super) fn at_one_revision<T>(
    deadline: Instant,
    mut read: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut restarts = 0;
    loop {
        match read() {
            Err(StoreError::Compacted { .. })
                if restarts < COMPACTED_RESTARTS && Instant::now() < deadline =>
            {
                restarts += 1;
            }
            done => return done,
        }
    }
}
