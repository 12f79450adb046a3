//! TLS for `etcds://`: the CA that signed the members' certificates (or the built-in web roots
//! when none is given) and an optional client certificate and key — etcdctl's `--cacert`,
//! `--cert` and `--key`, read from PEM files when the store is opened.
//!
//! The files decide whom cio trusts with the etcd login and the sealed credentials (a CA
//! others may replace lets them stand in for the cluster), so each is read only as a regular
//! file that only root or this user may change ([`files::read_trusted`]); the client key is
//! refused, as OpenSSH refuses its keys, when others than its owner may read it
//! ([`files::read_private_key`]).

use std::path::Path;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use super::gateway::EtcdOptions;
use crate::files::{self, TrustedReadError};
use crate::store::{EtcdTlsFault, StoreError};

/// The longest PEM file read: a CA bundle of a few hundred certificates fits.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a PEM file for TLS, naming it in the error (`what`, e.g. "etcd CA certificate
/// file"); `private` for the client key. Zeroized when dropped: it may be a key.
fn read_pem(
    location: &str,
    what: &'static str,
    path: &Path,
    private: bool,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let unreadable = |detail: String| StoreError::Tls {
        location: location.to_string(),
        detail: format!("the {what} {} {detail}", crate::shown_path(path)),
        fault: EtcdTlsFault::Files,
    };
    let read = if private {
        files::read_private_key
    } else {
        files::read_trusted
    };
    match read(what, path, MAX_PEM_BYTES) {
        Ok(Some((_, bytes))) => Ok(bytes),
        Ok(None) => Err(unreadable("does not exist".into())),
        Err(TrustedReadError::Untrusted(untrusted)) => Err(untrusted.into()),
        Err(TrustedReadError::Read(e)) => Err(unreadable(format!("cannot be read: {e}"))),
    }
}

/// The TLS configuration for the store at `location` from the files in `options`, or [`StoreError::Tls`] naming the file
/// that cannot be read or holds no certificate or key.
pub(super) fn tls_config(location: &str, options: &EtcdOptions) -> Result<TlsConfig, StoreError> {
    let tls_err = |detail: String| StoreError::Tls {
        location: location.to_string(),
        detail,
        fault: EtcdTlsFault::Files,
    };
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &options.cacert {
        let pem = read_pem(location, "etcd CA certificate file", ca, false)?;
        let mut certs: Vec<Certificate<'static>> = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(tls_err(format!(
                        "the CA certificate file {} is not PEM: {e}",
                        crate::shown_path(ca)
                    )));
                }
            }
        }
        if certs.is_empty() {
            return Err(tls_err(format!(
                "the CA certificate file {} holds no certificate",
                crate::shown_path(ca)
            )));
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&certs));
    }
    match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let pem = read_pem(location, "etcd client certificate file", cert, false)?;
            let chain = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if chain.is_empty() {
                return Err(tls_err(format!(
                    "the client certificate file {} holds no certificate",
                    crate::shown_path(cert)
                )));
            }
            let key_pem = read_pem(location, "etcd client key file", key, true)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|_| {
                tls_err(format!(
                    "the client key file {} holds no PEM private key",
                    crate::shown_path(key)
                ))
            })?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => {
            return Err(tls_err(
                "a client certificate needs its key, and a key its certificate: give both or neither".into(),
            ));
        }
    }
    Ok(builder.build())
}
