//! A failed TLS handshake in an administrator's words, and whose fault it is.
//!
//! Rules: every sentence is written here; no library error's `Debug` text (nor a `Display`
//! that embeds one: rustls prints alerts and webpki its errors with `{:?}`) reaches a detail.
//! What no sentence here names is said in general words, never as a type's name.

use rustls::{AlertDescription, CertificateError, Error};

/// Whose fault a TLS failure is: it decides the fix a detail proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsFault {
    /// The certificate comes from an authority this machine does not trust: the set's CA
    /// certificate (or the system's) is the fix.
    Trust,
    /// The server's certificate itself is refused (dates, purpose, encoding, signature):
    /// restic refuses it too, whatever CA is trusted.
    Certificate,
    /// No certificate was involved: the handshake itself failed.
    Handshake,
}

/// The sentence for `e` (a TLS failure with `host`) and whose fault it is.
pub(crate) fn tls_failure(e: &Error, host: &str) -> (String, TlsFault) {
    match e {
        Error::InvalidCertificate(c) => certificate(c, host),
        Error::AlertReceived(alert) => (
            format!(
                "the server ended the handshake with the TLS alert '{}'",
                alert_words(*alert)
            ),
            TlsFault::Handshake,
        ),
        Error::PeerIncompatible(_) => (
            "the server and cio share no TLS version, cipher suite, key-exchange group or signature scheme".into(),
            TlsFault::Handshake,
        ),
        Error::NoCertificatesPresented => (
            "the server showed no certificate".into(),
            TlsFault::Handshake,
        ),
        Error::DecryptError => (
            "a TLS record from the server could not be decrypted".into(),
            TlsFault::Handshake,
        ),
        Error::PeerMisbehaved(_)
        | Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::PeerSentOversizedRecord => (
            "the server broke the TLS protocol (a malformed or unexpected handshake message)".into(),
            TlsFault::Handshake,
        ),
        // Our own words (a configuration cio could not build).
        Error::General(why) => (why.clone(), TlsFault::Handshake),
        _ => (
            "the TLS handshake failed for a reason cio cannot name".into(),
            TlsFault::Handshake,
        ),
    }
}

fn certificate(c: &CertificateError, host: &str) -> (String, TlsFault) {
    use TlsFault::{Certificate, Trust};
    #[allow(deprecated)]
    let (words, fault) = match c {
        CertificateError::UnknownIssuer => (
            "its certificate is signed by an authority this machine does not trust".to_string(),
            Trust,
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            (format!("its certificate is not valid for the name {host}"), Certificate)
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            ("its certificate has expired".into(), Certificate)
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "its certificate is not valid yet (check this machine's clock)".into(),
            Certificate,
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            "a certificate of its chain names purposes and server authentication is not among them (restic: x509: certificate specifies an incompatible key usage)".into(),
            Certificate,
        ),
        CertificateError::Revoked => ("its certificate has been revoked".into(), Certificate),
        CertificateError::BadEncoding => (
            "its certificate cannot be decoded".into(),
            Certificate,
        ),
        CertificateError::BadSignature => (
            "a signature in its certificate chain does not verify".into(),
            Certificate,
        ),
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => (
            "its certificate chain is signed with an algorithm cio cannot check".into(),
            Certificate,
        ),
        CertificateError::UnhandledCriticalExtension => (
            "its certificate has a critical extension that cannot be checked".into(),
            Certificate,
        ),
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(e) => webpki_words(e),
            None => ("its certificate is refused".into(), Certificate),
        },
        _ => ("its certificate is refused".into(), Certificate),
    };
    (words, fault)
}

/// webpki's refusals that rustls passes on as they are (its `Display` is its `Debug`).
fn webpki_words(e: &webpki::Error) -> (String, TlsFault) {
    use TlsFault::{Certificate, Trust};
    match e {
        webpki::Error::CaUsedAsEndEntity => (
            "it shows a self-signed (CA) certificate that this machine does not trust".into(),
            Trust,
        ),
        webpki::Error::EndEntityUsedAsCa => (
            "its certificate chain has a certificate that is no CA signing another".into(),
            Certificate,
        ),
        webpki::Error::NameConstraintViolation => (
            "its certificate breaks the name constraints of a CA in its chain".into(),
            Certificate,
        ),
        webpki::Error::PathLenConstraintViolated => (
            "its certificate chain is longer than a CA in it allows".into(),
            Certificate,
        ),
        webpki::Error::MaximumPathDepthExceeded
        | webpki::Error::MaximumSignatureChecksExceeded
        | webpki::Error::MaximumPathBuildCallsExceeded
        | webpki::Error::MaximumNameConstraintComparisonsExceeded => (
            "its certificate chain is too long or too tangled to check".into(),
            Certificate,
        ),
        webpki::Error::UnsupportedCertVersion => (
            "its certificate has a version other than 3".into(),
            Certificate,
        ),
        webpki::Error::UnsupportedCriticalExtension => (
            "its certificate has a critical extension that cannot be checked".into(),
            Certificate,
        ),
        _ => ("its certificate is refused".into(), Certificate),
    }
}

/// An alert's name as the TLS standard (and Go) writes it.
pub(crate) fn alert_words(alert: AlertDescription) -> String {
    let words = match alert {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::RecordOverflow => "record overflow",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::InappropriateFallback => "inappropriate fallback",
        AlertDescription::UserCanceled => "user canceled",
        AlertDescription::NoRenegotiation => "no renegotiation",
        AlertDescription::MissingExtension => "missing extension",
        AlertDescription::UnsupportedExtension => "unsupported extension",
        AlertDescription::UnrecognisedName => "unrecognized name",
        AlertDescription::CertificateRequired => "certificate required",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        other => return format!("number {}", u8::from(other)),
    };
    words.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No sentence holds a type's or variant's name (a `Debug` text).
    #[test]
    fn every_sentence_is_words() {
        let errors = [
            Error::AlertReceived(AlertDescription::HandshakeFailure),
            Error::AlertReceived(AlertDescription::Unknown(200)),
            Error::InvalidCertificate(CertificateError::InvalidPurposeContext {
                required: rustls::ExtendedKeyPurpose::ServerAuth,
                presented: vec![rustls::ExtendedKeyPurpose::Other(vec![2, 5, 29, 37, 0])],
            }),
            Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity),
            ))),
            Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                std::sync::Arc::new(webpki::Error::UnknownIssuer),
            ))),
            Error::PeerMisbehaved(rustls::PeerMisbehaved::InvalidKeyShare),
            Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
            Error::DecryptError,
        ];
        for e in errors {
            let (words, _) = tls_failure(&e, "minio.lan");
            assert!(!words.contains(['{', '[', '_', '"']), "{words}");
            let camel = words
                .as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
            assert!(!camel, "{words}");
        }
        assert_eq!(
            tls_failure(
                &Error::AlertReceived(AlertDescription::Unknown(200)),
                "minio.lan"
            )
            .0,
            "the server ended the handshake with the TLS alert 'number 200'"
        );
    }
}
