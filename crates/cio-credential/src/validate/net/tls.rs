//! The TLS client validate uses: the system's certificate authorities plus the set's optional
//! CA certificate (`cio_<provider>[_alt]_cacert`), trusted the way restic trusts `--cacert` or
//! `SSL_CERT_FILE` (Go's crypto/x509).
//!
//! Rules:
//! - every certificate in the PEM text is a trust anchor, next to the system's;
//! - Go also trusts a server whose certificate is itself one of the trusted certificates
//!   (`x509.Certificate.Verify` returns the one-certificate chain when the root pool holds the
//!   leaf), which is how a self-signed server certificate is used; webpki refuses such a
//!   certificate when it is marked as a CA (`CaUsedAsEndEntity`), so [`PinnedOrWebPki`] accepts
//!   an end-entity certificate byte-equal to a trusted one, after checking its name (its dates
//!   were checked by webpki before it refused);
//! - the handshake's signature is always verified with the server certificate's key.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// Why a CA certificate text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaCertError {
    #[error(
        "it holds no PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
    )]
    NoCertificate,
    #[error("a certificate in it cannot be read ({0})")]
    Unreadable(String),
}

/// The certificates of a PEM text, in order.
pub fn parse_cacert(pem: &str) -> Result<Vec<CertificateDer<'static>>, CaCertError> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certs.push(cert.map_err(|e| CaCertError::Unreadable(e.to_string()))?);
    }
    if certs.is_empty() {
        return Err(CaCertError::NoCertificate);
    }
    Ok(certs)
}

/// The crypto provider (ring: the one ureq already brings, so only one is built).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `extra` and, with `system`, the system's authorities
/// (reading them costs milliseconds: plain-HTTP endpoints skip it).
pub(crate) fn client_config(
    extra: &[CertificateDer<'static>],
    system: bool,
) -> Result<rustls::ClientConfig, Error> {
    let mut roots = RootCertStore::empty();
    if system {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    for cert in extra {
        // A certificate webpki cannot take as an anchor may still be pinned below.
        let _ = roots.add(cert.clone());
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if roots.is_empty() {
        // Plain HTTP: no handshake will ask a verifier (and webpki's wants an anchor).
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::General(e.to_string()))?;
    let verifier = PinnedOrWebPki {
        webpki,
        pinned: extra.to_vec(),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// webpki's verification, plus Go's acceptance of a trusted certificate used as the server's.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let pinned = self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref());
        let dates_failed = matches!(
            refused,
            Error::InvalidCertificate(
                CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. }
            )
        );
        if !pinned || dates_failed {
            return Err(refused);
        }
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_is_read_or_refused_with_a_reason() {
        assert_eq!(parse_cacert("hello"), Err(CaCertError::NoCertificate));
        assert!(matches!(
            parse_cacert("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(CaCertError::Unreadable(_))
        ));
    }
}
