//! What a failed connection to one member says about TLS: whose part is wrong in a failed
//! handshake ([`EtcdTlsFault`]), in `validate`'s words for TLS failures where they fit
//! ([`words::tls_failure`]); and, when a member ended a connection without an answer,
//! whether it speaks the other scheme, or refuses this node's TLS ([`diagnose_dropped`]).
//!
//! Rules:
//! - a fault is named only when the handshake says it (rustls's error or the member's
//!   alert); anything else is [`EtcdTlsFault::Files`], the general hint;
//! - the probes send `GET /version` and nothing else: no token, user or password; an answer
//!   to a probe is trusted for nothing but telling the schemes apart.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};

use crate::store::EtcdTlsFault;
use crate::validate::net::words::{self, TlsFault};

/// A member that failed the TLS handshake, or speaks the other scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Handshake {
    /// The handshake failed: a sentence naming the member, and whose part is wrong.
    Tls { detail: String, fault: EtcdTlsFault },
    /// The member speaks TLS (`member_tls`) where the location says `etcd://`, or plain
    /// HTTP where it says `etcds://`.
    Scheme { endpoint: String, member_tls: bool },
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handshake::Tls { detail, .. } => f.write_str(detail),
            Handshake::Scheme {
                endpoint,
                member_tls,
            } => write!(
                f,
                "{endpoint}: speaks {}",
                if *member_tls { "TLS" } else { "plain HTTP" }
            ),
        }
    }
}

/// What is known of this node's side of a TLS connection, for naming a fault.
#[derive(Debug, Clone, Copy)]
pub(super) struct OurSide<'a> {
    /// The etcd CA file, when one is given.
    pub ca_file: Option<&'a Path>,
    /// Whether a client certificate is given.
    pub client_cert: bool,
}

/// The rustls error inside `e`, when the failure is rustls's (a failed handshake, or the
/// member's alert): ureq passes it on inside an I/O error.
pub(super) fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// Whether `e` is a connection the member ended without an answer or an alert: what a
/// member of the other scheme does, and what a member that refused this node's client
/// certificate may seem to do while a request is still being written.
pub(super) fn dropped(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e, ureq::Error::Io(io) if rustls_error(e).is_none() && matches!(
        io.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    ))
}

/// `e`, met with `endpoint` (`HOST:PORT`), in words, and whose part it is.
pub(super) fn tls_failure(endpoint: &str, e: &rustls::Error, ours: OurSide<'_>) -> Handshake {
    let (words, fault) = words::tls_failure(e, host_of(endpoint));
    let (detail, fault) = match e {
        rustls::Error::InvalidCertificate(_) if fault == TlsFault::Trust => match ours.ca_file {
            Some(ca) => (
                format!(
                    "the member's certificate is not signed by the CA in the etcd CA file {}",
                    crate::shown_path(ca)
                ),
                EtcdTlsFault::Issuer { ca_file: true },
            ),
            None => (
                format!("{words}, and no etcd CA file is given"),
                EtcdTlsFault::Issuer { ca_file: false },
            ),
        },
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => {
            let names: Vec<&str> = presented.iter().filter_map(|n| name_in(n)).collect();
            if names.is_empty() {
                (words, EtcdTlsFault::Name)
            } else {
                (
                    format!("{words}, only for {}", names.join(", ")),
                    EtcdTlsFault::Name,
                )
            }
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
            (words, EtcdTlsFault::Name)
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => (words, EtcdTlsFault::Dates),
        rustls::Error::AlertReceived(alert) => client_refused(*alert, words, ours.client_cert),
        _ => (words, EtcdTlsFault::Files),
    };
    Handshake::Tls {
        detail: format!("{endpoint}: {detail}"),
        fault,
    }
}

/// A member's alert: which ones refuse a client certificate (Go's TLS sends "bad
/// certificate" both for none and for one it does not trust; TLS 1.3 has "certificate
/// required" for none).
fn client_refused(
    alert: AlertDescription,
    words: String,
    client_cert: bool,
) -> (String, EtcdTlsFault) {
    use AlertDescription as A;
    let about_ours = matches!(
        alert,
        A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::AccessDenied
    );
    match (about_ours, client_cert) {
        (true, false) => (
            format!("{words}: it requires a client certificate, and none is given"),
            EtcdTlsFault::ClientCertMissing,
        ),
        (true, true) => (
            format!("{words}: it refused the client certificate given"),
            EtcdTlsFault::ClientCertRefused,
        ),
        (false, _) => (words, EtcdTlsFault::Files),
    }
}

/// The name or address in a name webpki presents as its `Debug` text (`DnsName("n")`,
/// `IpAddress(a)`); `None` for the other kinds.
fn name_in(presented: &str) -> Option<&str> {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|a| a.strip_suffix(')'))
        })
}

/// The host of `HOST:PORT` (`[v6]:PORT` too), as a certificate must name it.
fn host_of(endpoint: &str) -> &str {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Why `endpoint` ended a connection without an answer, when the probes can tell: it speaks
/// the other scheme, or (`etcds://`) its handshake with `agent`, which carries this node's
/// TLS files, fails in a way [`tls_failure`] names. `None`: no probe could tell.
pub(super) fn diagnose_dropped(
    agent: &ureq::Agent,
    endpoint: &str,
    tls: bool,
    ours: OurSide<'_>,
    budget: Duration,
) -> Option<Handshake> {
    let mismatch = Handshake::Scheme {
        endpoint: endpoint.to_string(),
        member_tls: !tls,
    };
    if tls {
        if probe(&plain_agent(), "http", endpoint, budget).is_ok() {
            return Some(mismatch);
        }
        let e = probe(agent, "https", endpoint, budget).err()?;
        rustls_error(&e).map(|r| tls_failure(endpoint, r, ours))
    } else {
        let speaks_tls = match probe(&unverified_tls_agent(), "https", endpoint, budget) {
            Ok(()) => true,
            Err(e) => matches!(rustls_error(&e), Some(rustls::Error::AlertReceived(_))),
        };
        speaks_tls.then_some(mismatch)
    }
}

/// `GET /version` on `endpoint`: `Ok` for any HTTP answer.
fn probe(
    agent: &ureq::Agent,
    scheme: &str,
    endpoint: &str,
    budget: Duration,
) -> Result<(), ureq::Error> {
    agent
        .get(format!("{scheme}://{endpoint}/version"))
        .config()
        .timeout_global(Some(budget))
        .build()
        .call()
        .map(|_| ())
}

fn plain_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("cio-credential")
            .build(),
    )
}

/// An agent that completes a handshake with any certificate: it only learns whether the
/// member speaks TLS, and sends nothing but the probe.
fn unverified_tls_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("cio-credential")
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_presented_names_are_read_without_their_decoration() {
        assert_eq!(host_of("127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2379"), "::1");
        assert_eq!(host_of("etcd-1.lan:2379"), "etcd-1.lan");
        assert_eq!(name_in("DnsName(\"etcd-1.lan\")"), Some("etcd-1.lan"));
        assert_eq!(name_in("IpAddress(10.0.0.1)"), Some("10.0.0.1"));
        assert_eq!(name_in("DirectoryName"), None);
    }

    /// Each fault the handshake says is named; the words hold no type's name.
    #[test]
    fn faults_are_named_from_the_handshake() {
        let ca = Path::new("/etc/cio/etcd-ca.pem");
        let with = |client_cert| OurSide {
            ca_file: Some(ca),
            client_cert,
        };
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                with(true),
                "e:2379: the member's certificate is not signed by the CA in the etcd CA file /etc/cio/etcd-ca.pem",
                EtcdTlsFault::Issuer { ca_file: true },
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    expected: rustls::pki_types::ServerName::try_from("e").unwrap(),
                    presented: vec!["DnsName(\"a.lan\")".into(), "IpAddress(10.0.0.1)".into()],
                }),
                with(true),
                "e:2379: its certificate is not valid for the name e, only for a.lan, 10.0.0.1",
                EtcdTlsFault::Name,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                with(false),
                "e:2379: the server ended the handshake with the TLS alert 'certificate required': it requires a client certificate, and none is given",
                EtcdTlsFault::ClientCertMissing,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                with(true),
                "e:2379: the server ended the handshake with the TLS alert 'unknown certificate authority': it refused the client certificate given",
                EtcdTlsFault::ClientCertRefused,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                with(true),
                "e:2379: the server ended the handshake with the TLS alert 'protocol version not supported'",
                EtcdTlsFault::Files,
            ),
        ];
        for (e, ours, detail, fault) in cases {
            assert_eq!(
                tls_failure("e:2379", &e, ours),
                Handshake::Tls {
                    detail: detail.into(),
                    fault
                }
            );
        }
    }
}
