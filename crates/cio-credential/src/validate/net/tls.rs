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
//!   were checked by webpki before it refused) — wherever the trusted one comes from: the
//!   set's CA certificate, the system's bundle, or what `SSL_CERT_FILE` / `SSL_CERT_DIR` name;
//! - the handshake's signature is always verified with the server certificate's key;
//! - the trust anchor that completes the chain must be within its validity dates, as Go checks
//!   every certificate of the chain, its root included ("x509: certificate has expired or is
//!   not yet valid"); webpki takes an anchor as a name and a key only. When several trusted
//!   certificates have the anchor's subject and key, one within its dates is enough, and other
//!   chains are tried (Go tries every candidate root). A refusal is a [`StaleAnchor`] that
//!   names the certificate, where it came from and the date;
//! - what Go 1.19 accepts and ring (the crypto provider) cannot check — an ECDSA P-521 key,
//!   a certificate signed with ecdsa-with-SHA512, an RSA key shorter than 2048 bits — is an
//!   [`Unspoken`], never a bad signature: validate cannot check the certificate there
//!   (restic may work), which fails as `tls_unchecked`, never as a wrong CA. The P-521 signature scheme is offered in the
//!   hello for that reason (so the server goes on to show its certificate); a signature made
//!   with it is never accepted. Cipher suites are found out by [`super::probe`];
//! - Go checks the server's certificate's own dates, then its name, then the chain: a name the
//!   certificate is not valid for is a [`WrongName`] whatever else is wrong with the chain
//!   (webpki checks the chain first, and a CA not trusted or a signature ring cannot check
//!   would be said instead of the name restic names);
//! - a server certificate whose extended key usage is anyExtendedKeyUsage is good for server
//!   authentication, as Go's `checkChainForKeyUsage` has it (`ExtKeyUsageAny`: "the
//!   certificate is explicitly good for any usage"); webpki asks for serverAuth itself, so
//!   such a chain is verified again asking for any purpose.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme,
};

use crate::catalog::cacert::{CertInfo, OutOfDate};

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
        certs.push(cert.map_err(|e| CaCertError::Unreadable(pem_words(&e).into()))?);
    }
    if certs.is_empty() {
        return Err(CaCertError::NoCertificate);
    }
    Ok(certs)
}

/// What is wrong with PEM text, in words (the PEM reader's own text shows bytes as `Debug`).
fn pem_words(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as Pem;
    match e {
        Pem::MissingSectionEnd { .. } => "a BEGIN line has no END line",
        Pem::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        Pem::Base64Decode(_) => "its base64 text is damaged",
        _ => "its PEM text is malformed",
    }
}

/// Where a trusted certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnchorSource {
    /// The set's CA certificate credential.
    Credential,
    /// The system's trusted certificates; `named` says what `SSL_CERT_FILE` / `SSL_CERT_DIR`
    /// name, when set (they replace the system's bundle, for restic as for validate).
    System { named: Option<String> },
}

impl AnchorSource {
    /// Where the system's certificates are read from now.
    fn system() -> AnchorSource {
        let named: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .into_iter()
            .filter_map(|var| {
                let value = std::env::var_os(var)?;
                Some(format!("{var}={}", value.to_string_lossy()))
            })
            .collect();
        AnchorSource::System {
            named: (!named.is_empty()).then(|| named.join(", ")),
        }
    }
}

/// The server's chain verifies only up to trusted certificates outside their validity dates:
/// restic (Go) refuses it. Names the (first such) certificate; nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaleAnchor {
    /// Its subject (`CN=...`).
    pub subject: String,
    pub source: AnchorSource,
    pub dates: OutOfDate,
}

impl fmt::Display for StaleAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match &self.source {
            AnchorSource::Credential => "the set's CA certificate".to_string(),
            AnchorSource::System { named: Some(named) } => format!("the certificates of {named}"),
            AnchorSource::System { named: None } => "the system's certificate bundle".to_string(),
        };
        match &self.dates {
            OutOfDate::Expired(on) => write!(
                f,
                "the trusted certificate '{}' ({from}) that its certificate chain ends at expired on {on}",
                self.subject
            ),
            OutOfDate::NotYetValid(from_date) => write!(
                f,
                "the trusted certificate '{}' ({from}) that its certificate chain ends at is valid only from {from_date} on",
                self.subject
            ),
        }
    }
}

impl std::error::Error for StaleAnchor {}

/// What the server uses that Go 1.19 speaks and cio's TLS does not (`what`: "an ECDSA P-521
/// key", ...): validate cannot check the server, restic may work with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unspoken {
    pub what: String,
}

impl fmt::Display for Unspoken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server uses {}, which cio's TLS does not speak",
            self.what
        )
    }
}

impl std::error::Error for Unspoken {}

impl Unspoken {
    fn error(what: String) -> Error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Unspoken {
            what,
        }))))
    }
}

/// The server's certificate is not valid for the host name of the repository URL: restic
/// (Go) refuses it ("x509: certificate is valid for ..., not ..."). `names` are the DNS
/// names and IP addresses it is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WrongName {
    pub names: Vec<String>,
}

impl fmt::Display for WrongName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            write!(f, "its certificate is valid for no host name")
        } else {
            write!(f, "its certificate is valid for {}", self.names.join(", "))
        }
    }
}

impl std::error::Error for WrongName {}

/// The server's certificate was issued by a CA (`issuer`, its name) whose certificate the
/// server does not send and the set's CA certificate does not hold, while that credential
/// holds other CA certificates: most likely an intermediate CA the server leaves out of its
/// chain, under the stored root. Go refuses it ("certificate signed by unknown authority").
/// Told by names alone (the server certificate's issuer against the subjects of the sent and
/// stored certificates): cheap, and a signature cannot be checked without the missing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingIssuer {
    pub issuer: String,
}

impl fmt::Display for MissingIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its certificate was issued by '{}', whose certificate it does not send and the set's CA certificate does not hold",
            self.issuer
        )
    }
}

impl std::error::Error for MissingIssuer {}

/// The [`MissingIssuer`] a TLS error carries, if it is one.
pub(crate) fn missing_issuer(e: &Error) -> Option<&MissingIssuer> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<MissingIssuer>()
        }
        _ => None,
    }
}

/// A [`MissingIssuer`] for `end_entity` when no certificate sent (`intermediates`) nor
/// trusted (`trusted`) has its issuer's name as subject and the set's CA certificate holds
/// a plausible issuer of that issuer: a CA certificate ([`issuing_ca`]). A stored server
/// certificate (self-signed) is no such issuer: the stored certificate is then the wrong one.
fn issuer_missing(
    end_entity: &[u8],
    intermediates: &[CertificateDer<'_>],
    trusted: &[Trusted],
) -> Option<MissingIssuer> {
    use x509_cert::der::Decode;
    let read = |der: &[u8]| x509_cert::Certificate::from_der(der).ok();
    let issuer = read(end_entity)?.tbs_certificate.issuer;
    if !trusted
        .iter()
        .any(|t| t.source == AnchorSource::Credential && issuing_ca(&t.der))
    {
        return None;
    }
    let named = intermediates
        .iter()
        .map(|c| c.as_ref())
        .chain(trusted.iter().map(|t| t.der.as_ref()))
        .filter_map(read)
        .any(|c| c.tbs_certificate.subject == issuer);
    (!named).then(|| MissingIssuer {
        issuer: issuer.to_string(),
    })
}

/// Whether `cert` (DER) looks like a CA that issues CA certificates: marked CA (basic
/// constraints) and valid for no host name (no subject alternative names, which a
/// self-signed server certificate carries).
fn issuing_ca(cert: &[u8]) -> bool {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::BasicConstraints;
    const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    const SAN: &str = "2.5.29.17";
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else {
        return false;
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let marked_ca = extensions.iter().any(|e| {
        e.extn_id.to_string() == BASIC_CONSTRAINTS
            && BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca)
    });
    marked_ca && !extensions.iter().any(|e| e.extn_id.to_string() == SAN)
}

/// The [`WrongName`] a TLS error carries, if it is one.
pub(crate) fn wrong_name(e: &Error) -> Option<&WrongName> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<WrongName>()
        }
        _ => None,
    }
}

/// The DNS names and IP addresses of the subject alternative names of `cert` (DER), as
/// Go lists them.
fn names_of(cert: &[u8]) -> Vec<String> {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    const SAN: &str = "2.5.29.17";
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else {
        return Vec::new();
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let Some(san) = extensions.iter().find(|e| e.extn_id.to_string() == SAN) else {
        return Vec::new();
    };
    let Ok(SubjectAltName(names)) = SubjectAltName::from_der(san.extn_value.as_bytes()) else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.to_string()),
            GeneralName::IpAddress(ip) => {
                let bytes = ip.as_bytes();
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(bytes)
                        .ok()
                        .map(std::net::IpAddr::from)?,
                    16 => <[u8; 16]>::try_from(bytes)
                        .ok()
                        .map(std::net::IpAddr::from)?,
                    _ => return None,
                };
                Some(ip.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Go's first checks of the server's certificate, before the chain: its dates, then its name.
/// A certificate within its dates and not valid for `server_name` is a [`WrongName`].
fn name_refused(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Option<Error> {
    let at = Duration::from_secs(now.as_secs());
    CertInfo::read(end_entity)?
        .out_of_date(at)
        .is_none()
        .then_some(())?;
    let cert = webpki::EndEntityCert::try_from(end_entity).ok()?;
    cert.verify_is_valid_for_subject_name(server_name).err()?;
    Some(Error::InvalidCertificate(CertificateError::Other(
        OtherError(Arc::new(WrongName {
            names: names_of(end_entity),
        })),
    )))
}

/// The OID anyExtendedKeyUsage (2.5.29.37.0), as webpki takes a purpose: DER content bytes.
const ANY_PURPOSE_OID: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// Whether `cert` (DER) names anyExtendedKeyUsage among its purposes.
fn for_any_purpose(cert: &[u8]) -> bool {
    purposes(cert).is_some_and(|p| p.iter().any(|oid| oid == "2.5.29.37.0"))
}

/// The purposes (extended key usage OIDs) `cert` (DER) names; `None` without the extension.
/// An undecodable certificate or extension names none.
fn purposes(cert: &[u8]) -> Option<Vec<String>> {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    const EKU: &str = "2.5.29.37";
    let Ok(cert) = x509_cert::Certificate::from_der(cert) else {
        return Some(Vec::new());
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let eku = extensions.iter().find(|e| e.extn_id.to_string() == EKU)?;
    Some(
        ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
            .map(|usages| usages.0.iter().map(|oid| oid.to_string()).collect())
            .unwrap_or_default(),
    )
}

/// The [`Unspoken`] a TLS error carries, if it is one.
pub(crate) fn unspoken(e: &Error) -> Option<&Unspoken> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Unspoken>()
        }
        _ => None,
    }
}

/// A DER element: its tag, its content and what follows it.
fn der_element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Whether a trusted certificate shown as the server's may serve TLS, as Go 1.19 asks of it:
/// without an extended key usage it may; with one, it must name server authentication or any
/// purpose. An undecodable certificate may not.
fn for_servers(cert: &[u8]) -> bool {
    const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
    const ANY_PURPOSE: &str = "2.5.29.37.0";
    purposes(cert).is_none_or(|usages| {
        usages
            .iter()
            .any(|oid| matches!(oid.as_str(), SERVER_AUTH | ANY_PURPOSE))
    })
}

/// The key of `cert` (DER) when Go 1.19 accepts it and ring cannot check its signatures: an
/// ECDSA P-521 key, an RSA key under 2048 bits.
fn unspoken_key_of(cert: &[u8]) -> Option<String> {
    use x509_cert::der::{Decode, Encode};
    const EC_KEY: &str = "1.2.840.10045.2.1";
    const P521: &str = "1.3.132.0.35";
    const RSA_KEY: &str = "1.2.840.113549.1.1.1";
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key = spki.algorithm.oid.to_string();
    if key == EC_KEY {
        // The curve's OID, DER-encoded as the key's parameters.
        let curve = spki.algorithm.parameters.as_ref()?.to_der().ok()?;
        let p521 = x509_cert::der::asn1::ObjectIdentifier::new(P521)
            .ok()?
            .to_der()
            .ok()?;
        return (curve == p521).then(|| "an ECDSA P-521 key".into());
    }
    if key == RSA_KEY {
        let (_, rsa_key, _) = der_element(spki.subject_public_key.raw_bytes())?;
        let (_, modulus, _) = der_element(rsa_key)?;
        let modulus = match modulus.split_first() {
            Some((0, rest)) => rest,
            _ => modulus,
        };
        let bits = modulus.len() * 8;
        return (1..2048)
            .contains(&bits)
            .then(|| format!("a {bits}-bit RSA key"));
    }
    None
}

/// The signature algorithm of `cert` (DER) when Go 1.19 accepts it and ring cannot check it:
/// ecdsa-with-SHA512.
fn unspoken_signature_of(cert: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    (cert.signature_algorithm.oid.to_string() == ECDSA_SHA512)
        .then(|| "a certificate signed with ecdsa-with-SHA512".into())
}

/// The [`StaleAnchor`] a TLS error carries, if it is one.
pub(crate) fn stale_anchor(e: &Error) -> Option<&StaleAnchor> {
    match e {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<StaleAnchor>()
        }
        _ => None,
    }
}

/// A trusted certificate: the anchor webpki uses, and what it came from.
#[derive(Debug)]
struct Trusted {
    der: CertificateDer<'static>,
    source: AnchorSource,
}

/// The crypto provider: ring (the one ureq already brings, so only one is built), with
/// P-521 key exchange added after ring's groups, as Go 1.19 offers it ([`super::kx`]).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups.push(super::kx::SECP521R1);
    Arc::new(provider)
}

/// A client configuration trusting `extra` and, with `system`, the system's authorities
/// (reading them costs milliseconds: plain-HTTP endpoints skip it).
pub(crate) fn client_config(
    extra: &[CertificateDer<'static>],
    system: bool,
) -> Result<rustls::ClientConfig, Error> {
    let mut roots = RootCertStore::empty();
    let mut trusted = Vec::new();
    // Every trusted certificate, as Go's root pool holds it: a server showing one of them is
    // trusted (see the module rules), even one webpki cannot take as an anchor.
    let mut pinned = Vec::new();
    let mut add = |der: CertificateDer<'static>, source: AnchorSource| {
        pinned.push(der.clone());
        if let Ok(anchor) = webpki::anchor_from_trusted_cert(&der) {
            roots.roots.push(anchor.to_owned());
            trusted.push(Trusted { der, source });
        }
    };
    if system {
        let source = AnchorSource::system();
        for der in rustls_native_certs::load_native_certs().certs {
            add(der, source.clone());
        }
    }
    for cert in extra {
        add(cert.clone(), AnchorSource::Credential);
    }
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if roots.is_empty() {
        // Plain HTTP: no handshake will ask a verifier (and webpki's wants an anchor).
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let anchors = roots.roots.clone();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::General(e.to_string()))?;
    let verifier = PinnedOrWebPki {
        webpki,
        pinned,
        anchors,
        trusted,
        algorithms,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// webpki's verification, plus Go's acceptance of a trusted certificate used as the server's
/// and Go's check of the anchor's dates.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    /// The anchors webpki was given, in the order of `trusted`.
    anchors: Vec<TrustAnchor<'static>>,
    trusted: Vec<Trusted>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedOrWebPki {
    /// Is there a chain, for `usage`, whose anchor is within its dates and every certificate
    /// of which allows server authentication? Webpki's path building is run (again, after it
    /// accepted the chain for serverAuth), refusing each path that ends at an anchor all of
    /// whose certificates (same subject and key) are out of date, or that holds a certificate
    /// for other purposes, so other paths are tried.
    fn chain_as_go(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<(), Error> {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        };
        let at = Duration::from_secs(now.as_secs());
        let stale: RefCell<Option<StaleAnchor>> = RefCell::new(None);
        // Go 1.19 asks every certificate of the chain, its root too, to allow server
        // authentication (when it names purposes at all); webpki asks the server's alone.
        let wrong_purpose = std::cell::Cell::new(false);
        let in_dates = |path: &webpki::VerifiedPath<'_>| {
            if path
                .intermediate_certificates()
                .any(|c| !for_servers(c.der().as_ref()))
            {
                wrong_purpose.set(true);
                return Err(webpki::Error::UnknownIssuer);
            }
            let anchor = path.anchor();
            let mut first_stale = None;
            let mut for_clients_only = false;
            let same = self.anchors.iter().zip(&self.trusted).filter(|(a, _)| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            });
            for (_, trusted) in same {
                if !for_servers(&trusted.der) {
                    for_clients_only = true;
                    continue;
                }
                // Dates x509-cert cannot read: webpki's verdict stands.
                let Some(info) = CertInfo::read(&trusted.der) else {
                    return Ok(());
                };
                match info.out_of_date(at) {
                    None => return Ok(()),
                    Some(dates) => {
                        first_stale.get_or_insert(StaleAnchor {
                            subject: info.subject,
                            source: trusted.source.clone(),
                            dates,
                        });
                    }
                }
            }
            match first_stale {
                Some(s) => {
                    stale.borrow_mut().get_or_insert(s);
                    Err(webpki::Error::UnknownIssuer)
                }
                None if for_clients_only => {
                    wrong_purpose.set(true);
                    Err(webpki::Error::UnknownIssuer)
                }
                None => Ok(()),
            }
        };
        let verified = cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            intermediates,
            now,
            usage,
            None,
            Some(&in_dates),
        );
        match (verified, stale.into_inner()) {
            (Ok(_), _) => Ok(()),
            (Err(_), Some(stale)) => Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(stale)),
            ))),
            (Err(_), None) if wrong_purpose.get() => {
                Err(Error::InvalidCertificate(CertificateError::InvalidPurpose))
            }
            (Err(e), None) => Err(pki_error(e)),
        }
    }
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
        let mut refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => {
                self.chain_as_go(
                    end_entity,
                    intermediates,
                    now,
                    webpki::KeyUsage::server_auth(),
                )?;
                return Ok(verified);
            }
            Err(e) => e,
        };
        if let Some(wrong_name) = name_refused(end_entity, server_name, now) {
            return Err(wrong_name);
        }
        // A server certificate for any purpose: the chain asked again for that purpose (its
        // name was checked just above).
        #[allow(deprecated)]
        let purpose_refused = matches!(
            refused,
            Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            )
        );
        if purpose_refused && for_any_purpose(end_entity) {
            match self.chain_as_go(
                end_entity,
                intermediates,
                now,
                webpki::KeyUsage::required_if_present(ANY_PURPOSE_OID),
            ) {
                Ok(()) => return Ok(ServerCertVerified::assertion()),
                Err(e) => refused = e,
            }
        }
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
        // webpki's refusals without context still arrive as the deprecated variant.
        #[allow(deprecated)]
        let signature_refused = matches!(
            refused,
            Error::InvalidCertificate(
                CertificateError::BadSignature
                    | CertificateError::UnsupportedSignatureAlgorithm
                    | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
                    | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            )
        );
        // A chain's signatures are made by the issuers' keys: the server's own key plays no
        // part (it signs the handshake, below).
        if signature_refused
            && let Some(what) = std::iter::once(end_entity)
                .chain(intermediates)
                .find_map(|c| unspoken_signature_of(c))
                .or_else(|| intermediates.iter().find_map(|c| unspoken_key_of(c)))
        {
            return Err(Unspoken::error(what));
        }
        if matches!(
            refused,
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ) && let Some(missing) = issuer_missing(end_entity, intermediates, &self.trusted)
        {
            return Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(missing)),
            )));
        }
        if !pinned || dates_failed {
            return Err(refused);
        }
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))?;
        if !for_servers(end_entity) {
            return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        unspoken_signature(cert, dss)?;
        self.webpki
            .verify_tls12_signature(message, cert, dss)
            .map_err(|e| unspoken_key(cert, e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        unspoken_signature(cert, dss)?;
        self.webpki
            .verify_tls13_signature(message, cert, dss)
            .map_err(|e| unspoken_key(cert, e))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.webpki.supported_verify_schemes();
        // Offered so that a P-521 server shows its certificate (see the module rules).
        if !schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512) {
            schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        }
        schemes
    }
}

/// A webpki refusal as rustls says it (rustls's own mapping is private): the refusals
/// validate words apart get their variant, others travel as webpki's error.
fn pki_error(e: webpki::Error) -> Error {
    #[allow(deprecated)]
    let certificate = match e {
        webpki::Error::UnknownIssuer => CertificateError::UnknownIssuer,
        webpki::Error::CertExpired { time, not_after } => {
            CertificateError::ExpiredContext { time, not_after }
        }
        webpki::Error::CertNotValidYet { time, not_before } => {
            CertificateError::NotValidYetContext { time, not_before }
        }
        webpki::Error::InvalidCertValidity => CertificateError::Expired,
        webpki::Error::BadDer | webpki::Error::BadDerTime => CertificateError::BadEncoding,
        webpki::Error::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        webpki::Error::UnsupportedSignatureAlgorithm
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKey
        | webpki::Error::UnsupportedSignatureAlgorithmContext(_)
        | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertificateError::UnsupportedSignatureAlgorithm
        }
        webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
            CertificateError::InvalidPurpose
        }
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    Error::InvalidCertificate(certificate)
}

/// A handshake signature made with the P-521 scheme, which ring cannot check.
fn unspoken_signature(cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<(), Error> {
    if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
        return Err(Unspoken::error(
            unspoken_key_of(cert).unwrap_or_else(|| "an ECDSA P-521 key".into()),
        ));
    }
    Ok(())
}

/// A handshake signature refused because ring cannot check the key (an RSA key under 2048
/// bits) is an [`Unspoken`], not a bad signature.
fn unspoken_key(cert: &CertificateDer<'_>, refused: Error) -> Error {
    match unspoken_key_of(cert) {
        Some(what) => Unspoken::error(what),
        None => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_is_read_or_refused_with_a_reason() {
        assert_eq!(parse_cacert("hello"), Err(CaCertError::NoCertificate));
        assert_eq!(
            parse_cacert("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(CaCertError::Unreadable("its base64 text is damaged".into()))
        );
        assert_eq!(
            parse_cacert("-----BEGIN CERTIFICATE-----\nMIIB\n"),
            Err(CaCertError::Unreadable(
                "a BEGIN line has no END line".into()
            ))
        );
    }
}
