//! `cacert` values: PEM text holding at least one certificate that TLS can trust.
//!
//! PEM is decoded by `rustls-pki-types` and each certificate is taken as a trust anchor by
//! rustls itself (`RootCertStore::add`), exactly what validate does with it later: a value
//! accepted here is one the TLS check can use. Text around the blocks (as `openssl s_client
//! -showcerts` prints) is ignored, as PEM readers ignore it. A private key is refused: this
//! value is not secret and is shown in listings.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{PemObject, SectionKind};

use super::violations::RuleViolation;

/// Checks PEM text; `Ok` carries the number of certificates.
pub(super) fn check(pem: &str) -> Result<usize, RuleViolation> {
    let mut certificates = 0;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = section.map_err(|_| RuleViolation::CacertBadPem)?;
        match kind {
            SectionKind::Certificate => {
                certificates += 1;
                RootCertStore::empty()
                    .add(CertificateDer::from(der))
                    .map_err(|_| RuleViolation::CacertBadCertificate(certificates))?;
            }
            SectionKind::PrivateKey
            | SectionKind::RsaPrivateKey
            | SectionKind::EcPrivateKey
            | SectionKind::EchConfigList => return Err(RuleViolation::CacertPrivateKey),
            _ => {}
        }
    }
    if certificates == 0 {
        return Err(RuleViolation::CacertNoCertificate);
    }
    Ok(certificates)
}

/// How a `cacert` value is shown in listings: how many certificates and how long, on one
/// line (the PEM text itself is many lines and says nothing at a glance).
pub(super) fn summary(pem: &str) -> String {
    let certificates = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes())
        .filter(|s| matches!(s, Ok((SectionKind::Certificate, _))))
        .count();
    let plural = if certificates == 1 { "" } else { "s" };
    format!(
        "PEM, {certificates} certificate{plural}, {} bytes",
        pem.len()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate (`openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:P-256 -nodes -subj /CN=cio-test -days 36500`), kept as text: the
    /// catalog only needs one that parses.
    pub(crate) const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUSEfYJW35O36G0g/y0fT2ZWuiCIcwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIY2lvLXRlc3QwIBcNMjYxMTI5MTg1NDU4WhgPMjEyNjExMDUx
ODU0NThaMBMxETAPBgNVBAMMCGNpby10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEqZr1UsktseK9p+2R17HGbVcxRdwVdh8IPiFYeK/isxHRnJwlX6oIvE8Z
hTyY0hnhfchx8fdWv6rNm0HEStRqB6NTMFEwHQYDVR0OBBYEFGw/8wzyXMde7jbR
dbDR4R+i4K5hMB8GA1UdIwQYMBaAFGw/8wzyXMde7jbRdbDR4R+i4K5hMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgeGHsm7LtdJgRrDDMaFAGCGhF
IkAwqdICR4ghgtjfn7ECIBsnZqR5ZxjnsLdejnYVgMGkV//d5lNn1A+KflpUKACB
-----END CERTIFICATE-----
";

    #[test]
    fn certificates_are_counted_and_text_around_them_ignored() {
        assert_eq!(check(CERT), Ok(1));
        let chain = format!("subject=CN = cio-test\n{CERT}\n{CERT}");
        assert_eq!(check(&chain), Ok(2));
        assert_eq!(
            summary(&chain),
            format!("PEM, 2 certificates, {} bytes", chain.len())
        );
        assert_eq!(
            summary(CERT),
            format!("PEM, 1 certificate, {} bytes", CERT.len())
        );
    }

    #[test]
    fn what_is_no_usable_certificate_is_refused() {
        assert_eq!(check("hello"), Err(RuleViolation::CacertNoCertificate));
        let cut = &CERT[..CERT.len() - 30];
        assert_eq!(check(cut), Err(RuleViolation::CacertBadPem));
        let damaged = CERT.replace("MIIBfDCC", "MIIB!TCC");
        assert_eq!(check(&damaged), Err(RuleViolation::CacertBadPem));
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            check(&format!("{CERT}{not_x509}")),
            Err(RuleViolation::CacertBadCertificate(2))
        );
        let key = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            check(&format!("{CERT}{key}")),
            Err(RuleViolation::CacertPrivateKey)
        );
    }
}
