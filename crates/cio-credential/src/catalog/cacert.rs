//! `cacert` values: PEM text holding at least one certificate that TLS can trust.
//!
//! PEM is decoded by `rustls-pki-types` and each certificate is taken as a trust anchor by
//! rustls itself (`RootCertStore::add`), exactly what validate does with it later: a value
//! accepted here is one the TLS check can use. Text around the blocks (as `openssl s_client
//! -showcerts` prints) is ignored, as PEM readers ignore it. A private key is refused: this
//! value is not secret and is shown in listings.
//!
//! A certificate outside its validity dates is accepted with a warning
//! ([`Warning::CacertExpired`], [`Warning::CacertNotYetValid`]): restic (Go's crypto/x509) refuses a chain whose root is
//! expired or not yet valid, while the value may still be meant for a clock that is wrong.
//! The dates are read by `x509-cert` (RustCrypto), not by our own parsing.

use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{PemObject, SectionKind};
use x509_cert::der::Decode;

use super::violations::RuleViolation;
use super::warnings::Warning;

/// What a certificate says about itself that messages name: its subject and validity dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// The subject as RFC 4514 text (`CN=cio test CA`).
    pub subject: String,
    /// Validity, as durations since the Unix epoch.
    pub not_before: Duration,
    pub not_after: Duration,
}

/// Where `now` stands against a certificate's validity dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutOfDate {
    /// `not_after` has passed; the text is that date.
    Expired(String),
    /// `not_before` is still to come; the text is that date.
    NotYetValid(String),
}

impl CertInfo {
    /// Reads a DER certificate; `None` when `x509-cert` cannot (webpki decides such cases).
    pub(crate) fn read(der: &[u8]) -> Option<CertInfo> {
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let validity = &cert.tbs_certificate.validity;
        Some(CertInfo {
            subject: cert.tbs_certificate.subject.to_string(),
            not_before: validity.not_before.to_unix_duration(),
            not_after: validity.not_after.to_unix_duration(),
        })
    }

    /// `None` when `now` lies within the dates (both ends included, as Go and webpki have it).
    pub(crate) fn out_of_date(&self, now: Duration) -> Option<OutOfDate> {
        if now > self.not_after {
            Some(OutOfDate::Expired(date_text(self.not_after)))
        } else if now < self.not_before {
            Some(OutOfDate::NotYetValid(date_text(self.not_before)))
        } else {
            None
        }
    }
}

/// A time as `2026-01-31 23:59:59 UTC`.
pub(crate) fn date_text(since_epoch: Duration) -> String {
    match x509_cert::der::DateTime::from_unix_duration(since_epoch) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds()
        ),
        Err(_) => format!("{} s after 1970-01-01 UTC", since_epoch.as_secs()),
    }
}

/// The current time as a duration since the Unix epoch.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Checks PEM text; `Ok` carries the warnings (certificates out of their dates at `now`).
pub(super) fn check(pem: &str, now: Duration) -> Result<Vec<Warning>, RuleViolation> {
    let mut certificates = 0;
    let mut warnings = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = section.map_err(|_| RuleViolation::CacertBadPem)?;
        match kind {
            SectionKind::Certificate => {
                certificates += 1;
                match CertInfo::read(&der).and_then(|i| i.out_of_date(now)) {
                    Some(OutOfDate::Expired(on)) => warnings.push(Warning::CacertExpired {
                        certificate: certificates,
                        on,
                    }),
                    Some(OutOfDate::NotYetValid(from)) => {
                        warnings.push(Warning::CacertNotYetValid {
                            certificate: certificates,
                            from,
                        });
                    }
                    None => {}
                }
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
    Ok(warnings)
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

    /// A time within [`CERT`]'s dates (2026-11-29 18:54:58 to 2126-11-05 18:54:58 UTC).
    const WITHIN: Duration = Duration::from_secs(1_800_000_000);

    fn check_now(pem: &str) -> Result<Vec<Warning>, RuleViolation> {
        check(pem, WITHIN)
    }

    #[test]
    fn a_certificate_out_of_its_dates_is_accepted_with_the_date_said() {
        let before = Duration::from_secs(1_700_000_000);
        assert_eq!(
            check(CERT, before),
            Ok(vec![Warning::CacertNotYetValid {
                certificate: 1,
                from: "2026-11-29 18:54:58 UTC".into()
            }])
        );
        let after = Duration::from_secs(5_000_000_000);
        let chain = format!("{CERT}{CERT}");
        let expired = |certificate| Warning::CacertExpired {
            certificate,
            on: "2126-11-05 18:54:58 UTC".into(),
        };
        assert_eq!(check(&chain, after), Ok(vec![expired(1), expired(2)]));
        assert_eq!(expired(2).code(), "cacert_expired");
        assert!(
            expired(2)
                .to_string()
                .starts_with("certificate 2 expired on 2126-11-05 18:54:58 UTC: restic refuses"),
            "{}",
            expired(2)
        );
        // Both ends are still valid (Go and webpki include them).
        let info =
            CertInfo::read(&CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()).unwrap();
        assert_eq!(info.subject, "CN=cio-test");
        assert_eq!(info.out_of_date(info.not_before), None);
        assert_eq!(info.out_of_date(info.not_after), None);
    }

    #[test]
    fn certificates_are_read_and_text_around_them_ignored() {
        assert_eq!(check_now(CERT), Ok(vec![]));
        let chain = format!("subject=CN = cio-test\n{CERT}\n{CERT}");
        assert_eq!(check_now(&chain), Ok(vec![]));
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
        assert_eq!(check_now("hello"), Err(RuleViolation::CacertNoCertificate));
        let cut = &CERT[..CERT.len() - 30];
        assert_eq!(check_now(cut), Err(RuleViolation::CacertBadPem));
        let damaged = CERT.replace("MIIBfDCC", "MIIB!TCC");
        assert_eq!(check_now(&damaged), Err(RuleViolation::CacertBadPem));
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            check_now(&format!("{CERT}{not_x509}")),
            Err(RuleViolation::CacertBadCertificate(2))
        );
        let key = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            check_now(&format!("{CERT}{key}")),
            Err(RuleViolation::CacertPrivateKey)
        );
    }
}
