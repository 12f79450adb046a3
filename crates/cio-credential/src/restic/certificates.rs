//! The certificates a bundle takes from another file (the caller's `SSL_CERT_FILE`, the
//! system's bundle): only what Go's `CertPool.AppendCertsFromPEM` takes from it, which is
//! all restic trusts of `SSL_CERT_FILE`.
//!
//! Rules:
//! - the file is read as cio reads its other files ([`crate::files::read_regular`]): a
//!   regular file only (a FIFO or `/dev/zero` would never end), at most [`MAX_CA_FILE`]
//!   bytes; anything else is [`Unread`] and gives no certificate;
//! - only PEM blocks of type `CERTIFICATE` without headers whose bytes are one X.509
//!   certificate and nothing after it are taken (Go skips every other block, and one that
//!   `x509.ParseCertificate` refuses, trailing data included), and each is written out again
//!   from its decoded bytes: nothing else of the file (a private key, a secret line,
//!   comments, bytes hidden in a block) ever reaches a bundle.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_cert::der::Decode;

use crate::files::{ReadError, read_regular};

/// The largest certificate file a bundle takes certificates from (Debian's whole bundle is
/// about 200 KiB).
pub const MAX_CA_FILE: u64 = 16 * 1024 * 1024;

/// A certificate file whose certificates could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", crate::shown_path(.path))]
pub struct Unread {
    pub path: PathBuf,
    pub reason: ReadError,
}

/// The `CERTIFICATE` blocks of the file at `path`, as PEM written anew; empty when it does
/// not exist (Go then trusts nothing from it either).
pub fn certificates_of(path: &Path) -> Result<Vec<u8>, Unread> {
    match read_regular(path, MAX_CA_FILE) {
        Ok(Some((_, bytes))) => Ok(certificates(&bytes)),
        Ok(None) => Ok(Vec::new()),
        Err(reason) => Err(Unread {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// The `CERTIFICATE` blocks of `pem` (as Go's `pem.Decode` finds them: a `-----BEGIN
/// CERTIFICATE-----` line, base64 lines, `-----END CERTIFICATE-----`) that hold one
/// certificate, written anew; a block with headers, that is not base64, or whose bytes are
/// no certificate or more than one is skipped, as Go skips it.
pub fn certificates(pem: &[u8]) -> Vec<u8> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut body: Option<Vec<u8>> = None;
    for line in pem.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        match &mut body {
            None if line == BEGIN => body = Some(Vec::new()),
            None => {}
            Some(text) if line == END => {
                // `from_der` refuses trailing data, as Go's `ParseCertificate` does.
                if let Ok(der) = STANDARD.decode(&*text)
                    && x509_cert::Certificate::from_der(&der).is_ok()
                {
                    write_block(&mut out, &der);
                }
                body = None;
            }
            // A header ("Proc-Type: ...") or another block's start: Go skips the block.
            Some(_) if line.contains(&b':') || line.starts_with(b"-----") => {
                body = (line == BEGIN).then(Vec::new);
            }
            Some(text) => text.extend_from_slice(line),
        }
    }
    out
}

/// One certificate as PEM, 64 base64 characters a line.
fn write_block(out: &mut Vec<u8>, der: &[u8]) {
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    let text = STANDARD.encode(der);
    for chunk in text.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::catalog::cacert::tests::CERT;

    /// `CERT` as `certificates` writes it (64 base64 characters a line).
    fn written(cert: &str) -> String {
        String::from_utf8(certificates(cert.as_bytes())).unwrap()
    }

    #[test]
    fn only_certificate_blocks_are_taken() {
        let cert = written(CERT);
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"), "{cert}");
        let file = format!(
            "AWS_SECRET_ACCESS_KEY=canary-secret-line\n{CERT}\n-----BEGIN PRIVATE KEY-----\nY2FuYXJ5LWtleQ==\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nY2FuYXJ5\n-----END CERTIFICATE-----\n{CERT}\n"
        );
        let taken = String::from_utf8(certificates(file.as_bytes())).unwrap();
        assert_eq!(taken, format!("{cert}{cert}"));
    }

    /// A CERTIFICATE block that holds no certificate, or a certificate with bytes after it,
    /// is skipped as Go skips it: a secret hidden there never reaches a bundle (review).
    #[test]
    fn a_block_that_is_no_certificate_or_hides_bytes_after_one_is_skipped() {
        let block = |der: &[u8]| {
            let mut out = Vec::new();
            write_block(&mut out, der);
            String::from_utf8(out).unwrap()
        };
        let secret = block(b"SECRET-INSIDE-3");
        let body: String = CERT.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = STANDARD.decode(body).unwrap();
        der.extend_from_slice(b"SECRET-APPENDED-8");
        let appended = block(&der);
        let file = format!("{secret}{appended}{CERT}\n");
        assert_eq!(
            String::from_utf8(certificates(file.as_bytes())).unwrap(),
            written(CERT)
        );
    }

    #[test]
    fn a_file_that_never_ends_is_not_read() {
        let unread = certificates_of(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            unread.to_string(),
            "/dev/zero: it is a device, not a regular file"
        );
        assert!(
            certificates_of(Path::new("/nonexistent/ca.pem"))
                .unwrap()
                .is_empty()
        );
    }
}
