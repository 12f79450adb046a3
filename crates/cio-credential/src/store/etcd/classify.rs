//! What a failed attempt at one member means: try the next member, give up, or report a
//! precise [`StoreError`] — unreachable, refused credentials, TLS, or not etcd at all.
//!
//! Two sources: the HTTP client's own errors ([`transport`]), and the member's error answers,
//! which etcd's gateway writes as `{"error": ..., "message": ..., "code": N}` with N a gRPC
//! status code ([`Context::answer`]). Conflicts and damaged records are not decided here:
//! they are successful answers that the store reads ([`super::codec`], `append`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::handshake::{Handshake, OurSide, rustls_error, tls_failure};
use crate::store::{EtcdTlsFault, StoreError};

/// Why one attempt at one member failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The member could not be asked (down, refused, no route), or refused before doing
    /// anything: the next member may be asked, even for a write.
    NotSent(String),
    /// The member was asked but did not answer in time, or said it cannot serve now (no
    /// quorum, request timed out): the next member may do better, but a write may have been
    /// applied.
    Unavailable(String),
    /// TLS failed (certificates do not match), or the member speaks the other scheme:
    /// the next member may do better, and nothing reached this one as a request.
    Handshake(Handshake),
    /// An answer that settles the matter: not worth asking another member.
    Final(StoreError),
}

const GRPC_INVALID_ARGUMENT: i64 = 3;
const GRPC_DEADLINE_EXCEEDED: i64 = 4;
const GRPC_PERMISSION_DENIED: i64 = 7;
const GRPC_FAILED_PRECONDITION: i64 = 9;
const GRPC_OUT_OF_RANGE: i64 = 11;
const GRPC_UNAVAILABLE: i64 = 14;
const GRPC_UNAUTHENTICATED: i64 = 16;

/// A gateway error body: `{"error": ..., "message": ..., "code": N}` (gRPC codes).
#[derive(Deserialize, Default, Debug)]
pub(super) struct GatewayError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    code: i64,
}

impl GatewayError {
    /// The body as an etcd error, or `None` when it is not one (a proxy's page, `{}`, ...).
    pub fn parse(text: &str) -> Option<GatewayError> {
        serde_json::from_str::<GatewayError>(text)
            .ok()
            .filter(|e| e.code != 0 || !e.message.is_empty() || !e.error.is_empty())
    }

    fn message(&self) -> &str {
        if self.message.is_empty() {
            &self.error
        } else {
            &self.message
        }
    }

    /// The token was missing, expired or unknown to this member.
    pub fn is_unauthenticated(&self) -> bool {
        self.code == GRPC_UNAUTHENTICATED
    }

    /// A compaction asked for a revision the cluster has already compacted; or a read, at a
    /// revision the cluster compacted meanwhile.
    pub fn is_already_compacted(&self) -> bool {
        self.code == GRPC_OUT_OF_RANGE && self.message().contains("has been compacted")
    }
}

/// What a failure of the HTTP client talking to `endpoint` means for the attempt.
pub(super) fn transport(endpoint: &str, e: ureq::Error, context: &Context) -> Failure {
    use std::io::ErrorKind;
    use ureq::Error as E;
    use ureq::Timeout;
    if context.tls
        && let Some(refused) = rustls_error(&e)
    {
        return Failure::Handshake(tls_failure(endpoint, refused, context.our_side()));
    }
    match e {
        E::ConnectionFailed | E::HostNotFound => Failure::NotSent(format!("{endpoint}: {e}")),
        E::Timeout(Timeout::Connect | Timeout::Resolve) => {
            Failure::NotSent(format!("{endpoint}: connecting timed out ({e})"))
        }
        E::Timeout(_) => Failure::Unavailable(format!("{endpoint}: no answer in time ({e})")),
        E::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::AddrNotAvailable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable => Failure::NotSent(format!("{endpoint}: {io}")),
            _ => Failure::Unavailable(format!("{endpoint}: {io}")),
        },
        E::Tls(_) | E::Pem(_) | E::Rustls(_) => Failure::Handshake(Handshake::Tls {
            detail: format!("{endpoint}: TLS: {e}"),
            fault: EtcdTlsFault::Files,
        }),
        other => Failure::Unavailable(format!("{endpoint}: {other}")),
    }
}

/// What classified failures name: the store, its key prefix and user, and how it connects.
#[derive(Debug)]
pub(super) struct Context {
    /// The store's location, without user or password.
    pub location: String,
    pub prefix: String,
    /// The etcd user, if one is given. Messages say only whether there is one ("the user in
    /// CIO_ETCD_USER"), never the text: it may be a mistyped secret.
    pub user: Option<String>,
    pub tls: bool,
    /// The etcd CA file, when one is given (named when it does not sign a member's
    /// certificate).
    pub cacert: Option<PathBuf>,
    /// Whether a client certificate is configured (to tell a member that requires one from
    /// one that refuses the one given).
    pub client_cert: bool,
    /// The time budget of one operation.
    pub timeout: Duration,
}

impl Context {
    /// This node's side of a TLS connection.
    pub fn our_side(&self) -> OurSide<'_> {
        OurSide {
            ca_file: self.cacert.as_deref(),
            client_cert: self.client_cert,
        }
    }

    pub fn unusable(&self, detail: String) -> StoreError {
        StoreError::Unusable {
            location: self.location.clone(),
            action: "used",
            detail,
        }
    }

    fn denied(&self, detail: String) -> StoreError {
        StoreError::Denied {
            location: self.location.clone(),
            detail,
        }
    }

    /// A cluster with authentication enabled, asked without a user.
    pub fn no_user(&self) -> Failure {
        Failure::Final(
            self.denied("the cluster requires authentication and no etcd user was given".into()),
        )
    }

    /// What a non-success answer of `endpoint` (HTTP `status`, body `text`) means.
    pub fn answer(&self, endpoint: &str, status: u16, text: &str) -> Failure {
        let Some(e) = GatewayError::parse(text) else {
            let excerpt: String = text.chars().take(120).collect();
            if status >= 500 {
                return Failure::Unavailable(format!("{endpoint}: HTTP {status}"));
            }
            return Failure::Final(self.unusable(format!(
                "{endpoint} answered HTTP {status}, not as an etcd v3 gateway would ({excerpt:?}); is it etcd 3.4 or later, and does the scheme (etcd:// or etcds://) match?"
            )));
        };
        let message = e.message();
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
                // Never the user itself: CIO_ETCD_USER may hold a mistyped secret.
                if self.user.is_some() {
                    " in CIO_ETCD_USER"
                } else {
                    ""
                },
                self.prefix
            ))),
            GRPC_UNAUTHENTICATED => Failure::Final(
                self.denied(format!("{message} (the token etcd gave could not be used)")),
            ),
            GRPC_INVALID_ARGUMENT if message.contains("user name is empty") => self.no_user(),
            // A read pinned at a revision compacted since: the caller reads again, at the
            // newest revision ([`super::gateway::at_one_revision`]).
            _ if e.is_already_compacted() => Failure::Final(StoreError::Compacted {
                location: self.location.clone(),
            }),
            _ if message.contains("timed out") || message.contains("leader changed") => {
                Failure::Unavailable(format!("{endpoint}: {message}"))
            }
            // etcd's "request is too large", or its gateway's "received message larger than
            // max": the write is refused whole, and no other member takes more.
            _ if message.contains("request is too large")
                || message.contains("larger than max") =>
            {
                Failure::Final(StoreError::TooLarge {
                    location: self.location.clone(),
                    detail: format!(
                        "{endpoint}: {message} (etcd takes 1.5 MiB in one request unless its members are started with a larger --max-request-bytes)"
                    ),
                    remedy: "a larger --max-request-bytes".into(),
                })
            }
            _ => Failure::Final(self.unusable(format!("{endpoint}: {message}"))),
        }
    }

    /// What an answer of `endpoint` to `/v3/auth/authenticate` other than HTTP 200 means:
    /// `Ok(())` when the cluster does not use authentication (go on without a token).
    pub fn authentication(&self, endpoint: &str, status: u16, text: &str) -> Result<(), Failure> {
        let e = GatewayError::parse(text).unwrap_or_default();
        if e.code == GRPC_FAILED_PRECONDITION && e.message().contains("not enabled") {
            Ok(())
        } else if e.code == GRPC_INVALID_ARGUMENT && e.message().contains("authentication failed") {
            Err(Failure::Final(self.denied(
                "etcd refused the user in CIO_ETCD_USER (wrong user name or password)".into(),
            )))
        } else {
            Err(self.answer(endpoint, status, text))
        }
    }

    /// No member answered: `failures` says what each attempt met; `timed_out`: the time budget
    /// ran out (else a write was not resent after a member may have received it).
    pub fn unreachable(&self, failures: &[String], timed_out: bool) -> StoreError {
        let mut seen: Vec<&String> = Vec::new();
        for f in failures {
            if !seen.contains(&f) {
                seen.push(f);
            }
        }
        let detail = seen
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        StoreError::Unreachable {
            location: self.location.clone(),
            detail: if timed_out {
                format!("no member answered within {:?} ({detail})", self.timeout)
            } else {
                format!(
                    "{detail}; the write may or may not have been applied as a whole, never in part"
                )
            },
        }
    }

    /// Every member failed the TLS handshake or speaks the other scheme: `failures` says
    /// how. A member of the other scheme is named first: no TLS file makes it answer.
    pub fn handshake_failed(&self, failures: &[Handshake]) -> StoreError {
        if let Some(Handshake::Scheme {
            endpoint,
            member_tls,
        }) = failures
            .iter()
            .find(|f| matches!(f, Handshake::Scheme { .. }))
        {
            return StoreError::SchemeMismatch {
                location: self.location.clone(),
                endpoint: endpoint.clone(),
                member_tls: *member_tls,
            };
        }
        let mut details: Vec<&str> = Vec::new();
        let mut faults: Vec<EtcdTlsFault> = Vec::new();
        for failure in failures {
            if let Handshake::Tls { detail, fault } = failure {
                if !details.contains(&detail.as_str()) {
                    details.push(detail);
                }
                if !faults.contains(fault) {
                    faults.push(*fault);
                }
            }
        }
        StoreError::Tls {
            location: self.location.clone(),
            detail: details.join("; "),
            // Members that fail in different ways get the general hint.
            fault: match faults[..] {
                [fault] => fault,
                _ => EtcdTlsFault::Files,
            },
        }
    }
}
