//! Whether a server asked for a client certificate, so that a handshake it then refuses is
//! said as a client certificate it requires, not as TLS settings cio lacks.
//!
//! Rules:
//! - validate presents no client certificate, as restic under cio presents none (cio holds
//!   none to hand it): the server's request is answered with an empty certificate message;
//! - a server requiring one refuses the handshake: TLS 1.2 servers with an alert during it
//!   (OpenSSL: `handshake failure`), TLS 1.3 servers after it, at the client's first read
//!   (OpenSSL: `certificate required`); either is a [`super::connect::ConnectError::TlsClientCert`]
//!   when the server asked, and `certificate required` is one whenever it comes;
//! - the server closes the connection with its alert, which may reach cio while it still
//!   writes (a broken pipe, a reset) and so go unread: a connection closed after the server
//!   asked is its refusal too. The alert is never named, as it is not always read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::ResolvesClientCert;
use rustls::{AlertDescription, SignatureScheme};

/// A client "certificate store" holding none, that records whether the server asked for one.
/// One per connection (see [`asking`]).
#[derive(Debug, Default)]
pub(crate) struct Asked(AtomicBool);

impl Asked {
    /// Whether the server asked for a client certificate during the handshake.
    pub(crate) fn was_asked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl ResolvesClientCert for Asked {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// `tls` for one connection, recording in the returned [`Asked`] whether the server asks for a
/// client certificate.
pub(crate) fn asking(tls: &rustls::ClientConfig) -> (Arc<rustls::ClientConfig>, Arc<Asked>) {
    let asked = Arc::new(Asked::default());
    let mut config = tls.clone();
    config.client_auth_cert_resolver = asked.clone();
    (Arc::new(config), asked)
}

/// Whether `alert`, received from a server that asked for a client certificate or not
/// (`asked`), is its refusal of a client without one.
pub(crate) fn refused(alert: AlertDescription, asked: bool) -> bool {
    asked || alert == AlertDescription::CertificateRequired
}

/// Whether `e` is an I/O error of a connection the peer closed (a broken pipe, a reset, an
/// early end).
pub(crate) fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

/// Whether `e`'s chain of sources holds an I/O error of a closed connection ([`closed`]).
pub(crate) fn closed_in(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>().is_some_and(closed) {
            return true;
        }
        next = e.source();
    }
    false
}

/// The alert a failed read or write carries (an I/O error with a rustls error inside,
/// anywhere in `e`'s chain of sources).
pub(crate) fn alert_in(e: &(dyn std::error::Error + 'static)) -> Option<AlertDescription> {
    let mut next = Some(e);
    while let Some(e) = next {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = tls {
            return Some(*alert);
        }
        next = e.source();
    }
    None
}
