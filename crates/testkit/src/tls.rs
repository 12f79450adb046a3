//! TLS in front of a test server: Debian's `stunnel4` terminating TLS on a free loopback port
//! and passing the bytes to the server, with certificates the test makes (a private CA that
//! signs the server certificate, or a self-signed certificate used directly as the server's).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::etcd::openssl;
use crate::{free_port, require_binary, wait_for_port};

/// Which certificate the endpoint shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// A server certificate signed by a private CA; the CA's certificate is the one to trust.
    PrivateCa,
    /// One self-signed certificate (marked CA, as `openssl req -x509` makes it) used directly
    /// as the server's; it is also the one to trust.
    SelfSigned,
    /// [`CertKind::PrivateCa`] whose CA names client authentication as its only purpose
    /// (extended key usage clientAuth): Go refuses the chain, the server's own certificate
    /// being for servers.
    ClientOnlyCa,
    /// [`CertKind::SelfSigned`] for client authentication only (extended key usage
    /// clientAuth): Go refuses it as a server's.
    SelfSignedClientOnly,
    /// A private CA whose own certificate expired 10 days ago (valid from 40 days ago); the
    /// server certificate it signed is valid now.
    ExpiredCa,
    /// A private CA whose own certificate is valid only from 10 days on (a clock behind the
    /// CA's); the server certificate it signed is valid now.
    NotYetValidCa,
    /// [`CertKind::ExpiredCa`], with the trusted text holding the expired CA certificate first
    /// and then a renewed one (same subject and key, valid now).
    ExpiredCaAndRenewed,
    /// [`CertKind::PrivateCa`] with an RSA-2048 server key (for RSA cipher suites).
    RsaServer,
    /// [`CertKind::PrivateCa`] with an RSA-1024 server key (Go 1.19 accepts it; stunnel is
    /// started at OpenSSL security level 0 to use it).
    Rsa1024Server,
    /// [`CertKind::PrivateCa`] with an ECDSA P-521 server key.
    P521Server,
    /// [`CertKind::PrivateCa`] whose (P-256) CA signs the server certificate with
    /// ecdsa-with-SHA512.
    Sha512Signed,
    /// [`CertKind::PrivateCa`] with a server certificate whose extended key usage is
    /// anyExtendedKeyUsage (Go 1.19 takes it for any purpose, server authentication too).
    AnyPurposeServer,
    /// [`CertKind::PrivateCa`] with a server certificate for the name `other.example` only
    /// ([`WRONG_NAME`]): not for 127.0.0.1, nor localhost.
    WrongName,
    /// [`CertKind::WrongName`] signed with ecdsa-with-SHA512 (as [`CertKind::Sha512Signed`]).
    Sha512SignedWrongName,
    /// A server certificate signed by an intermediate CA (`CN=cio test intermediate CA`) that a
    /// root CA (`CN=cio test CA`) signed; the server sends only its own certificate, not the
    /// intermediate's. The root's certificate is the one to trust (Go still refuses: unknown
    /// authority).
    LeafWithoutIntermediate,
}

/// The only name the certificates of [`CertKind::WrongName`] are valid for.
pub const WRONG_NAME: &str = "other.example";

/// `YYYYMMDDHHMMSSZ` for now plus `days` (negative: in the past), as `openssl ca` takes it.
fn openssl_date(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    let secs = now + days * 86_400;
    let (day, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The configuration `openssl ca` needs to sign with explicit dates: its database, serial
/// and new certificates in the folder `db`, any subject, SHA-256; `extra` sections after it.
pub(crate) fn openssl_ca_config(db: &str, extra: &str) -> String {
    format!(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\n\
         serial = {db}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n\
         [p]\ncommonName = supplied\n{extra}"
    )
}

/// A CA certificate `ca.pem` (key `ca.key`, made when missing) valid from now + `from` to
/// now + `to` days, written to `out`, made by `openssl ca -selfsign` (the one openssl command
/// that takes explicit dates).
fn dated_ca(dir: &Path, out: &str, from: i64, to: i64) {
    if !dir.join("ca.key").exists() {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                "ca.key",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.csr",
                "-subj",
                "/CN=cio test CA",
            ],
        );
    }
    fs::write(
        dir.join("ca.cnf"),
        openssl_ca_config(
            ".",
            "[ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
        ),
    )
    .expect("writing ca.cnf");
    fs::write(dir.join("index.txt"), "").expect("writing index.txt");
    if !dir.join("serial").exists() {
        fs::write(dir.join("serial"), "01\n").expect("writing serial");
    }
    let (start, end) = (openssl_date(from), openssl_date(to));
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "ca.key",
            "-in",
            "ca.csr",
            "-out",
            out,
            "-startdate",
            &start,
            "-enddate",
            &end,
            "-extensions",
            "ext",
        ],
    );
}

/// A TLS endpoint in front of `127.0.0.1:backend`, killed when dropped.
pub struct TlsFront {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The PEM text a client must trust.
    pub trust_pem: String,
    /// The PEM file of the same.
    pub trust_file: PathBuf,
}

/// The names the server certificate is valid for: the loopback address, `localhost`, and the
/// loopback name the proxy tests use ([`crate::proxy::loopback_name`]).
fn san() -> String {
    let mut san = "subjectAltName=IP:127.0.0.1,DNS:localhost".to_string();
    if let Some(name) = crate::proxy::find_loopback_name() {
        san.push_str(&format!(",DNS:{name}"));
    }
    san
}

fn make_certs(dir: &Path, kind: CertKind) -> (PathBuf, PathBuf, PathBuf) {
    let san = san();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    match kind {
        CertKind::SelfSigned | CertKind::SelfSignedClientOnly => {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend([
                "-keyout",
                "server.key",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                &san,
            ]);
            if kind == CertKind::SelfSignedClientOnly {
                args.extend(["-addext", "extendedKeyUsage=clientAuth"]);
            }
            openssl(dir, &args);
            (
                dir.join("server.pem"),
                dir.join("server.key"),
                dir.join("server.pem"),
            )
        }
        CertKind::PrivateCa
        | CertKind::RsaServer
        | CertKind::Rsa1024Server
        | CertKind::P521Server
        | CertKind::Sha512Signed
        | CertKind::AnyPurposeServer
        | CertKind::WrongName
        | CertKind::Sha512SignedWrongName
        | CertKind::ExpiredCa
        | CertKind::NotYetValidCa
        | CertKind::ExpiredCaAndRenewed
        | CertKind::ClientOnlyCa
        | CertKind::LeafWithoutIntermediate => {
            match kind {
                CertKind::ExpiredCa => dated_ca(dir, "ca.pem", -40, -10),
                CertKind::NotYetValidCa => dated_ca(dir, "ca.pem", 10, 400),
                CertKind::ExpiredCaAndRenewed => {
                    dated_ca(dir, "expired.pem", -40, -10);
                    dated_ca(dir, "renewed.pem", -1, 400);
                    let both = fs::read_to_string(dir.join("expired.pem")).expect("expired.pem")
                        + &fs::read_to_string(dir.join("renewed.pem")).expect("renewed.pem");
                    fs::write(dir.join("ca.pem"), both).expect("writing ca.pem");
                }
                _ => {
                    let mut args = vec!["req", "-x509"];
                    args.extend(ec);
                    args.extend([
                        "-keyout",
                        "ca.key",
                        "-out",
                        "ca.pem",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=cio test CA",
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ]);
                    if kind == CertKind::ClientOnlyCa {
                        args.extend(["-addext", "extendedKeyUsage=clientAuth"]);
                    }
                    openssl(dir, &args);
                }
            }
            if kind == CertKind::LeafWithoutIntermediate {
                intermediate_ca(dir);
            }
            let mut args = vec!["req"];
            match kind {
                CertKind::RsaServer => args.extend(["-newkey", "rsa:2048", "-nodes"]),
                CertKind::Rsa1024Server => args.extend(["-newkey", "rsa:1024", "-nodes"]),
                CertKind::P521Server => args.extend([
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:secp521r1",
                    "-nodes",
                ]),
                _ => args.extend(ec),
            }
            args.extend([
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ]);
            openssl(dir, &args);
            let purpose = if kind == CertKind::AnyPurposeServer {
                "anyExtendedKeyUsage"
            } else {
                "serverAuth"
            };
            let names = if matches!(kind, CertKind::WrongName | CertKind::Sha512SignedWrongName) {
                format!("subjectAltName=DNS:{WRONG_NAME}")
            } else {
                san.clone()
            };
            fs::write(
                dir.join("server.ext"),
                format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={purpose}\n{names}\n"),
            )
            .expect("writing an extension file");
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    match kind {
                        CertKind::ExpiredCaAndRenewed => "renewed.pem",
                        CertKind::LeafWithoutIntermediate => "intermediate.pem",
                        _ => "ca.pem",
                    },
                    "-CAkey",
                    if kind == CertKind::LeafWithoutIntermediate {
                        "intermediate.key"
                    } else {
                        "ca.key"
                    },
                    "-CAcreateserial",
                    "-out",
                    "server.pem",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
                    if matches!(
                        kind,
                        CertKind::Sha512Signed | CertKind::Sha512SignedWrongName
                    ) {
                        "-sha512"
                    } else {
                        "-sha256"
                    },
                ],
            );
            (
                dir.join("server.pem"),
                dir.join("server.key"),
                dir.join("ca.pem"),
            )
        }
    }
}

/// An intermediate CA `intermediate.pem` (key `intermediate.key`) signed by the CA of `dir`
/// (`ca.pem`, `ca.key`).
fn intermediate_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "intermediate.key",
            "-out",
            "intermediate.csr",
            "-subj",
            "/CN=cio test intermediate CA",
        ],
    );
    fs::write(
        dir.join("intermediate.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .expect("writing an extension file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "intermediate.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "intermediate.pem",
            "-days",
            "2",
            "-extfile",
            "intermediate.ext",
            "-sha256",
        ],
    );
}

impl TlsFront {
    /// Starts stunnel on a free port, TLS outside, `127.0.0.1:backend` inside.
    pub fn start(backend: u16, kind: CertKind) -> TlsFront {
        TlsFront::start_with_conf(backend, kind, "")
    }

    /// [`TlsFront::start`] speaking TLS 1.2 only, with only the OpenSSL cipher suites
    /// `ciphers` (such as `AES256-GCM-SHA384`: RSA key exchange).
    pub fn start_tls12(backend: u16, kind: CertKind, ciphers: &str) -> TlsFront {
        TlsFront::start_with_conf(
            backend,
            kind,
            &format!("sslVersionMax = TLSv1.2\nciphers = {ciphers}\n"),
        )
    }

    /// [`TlsFront::start`] with `extra` lines of stunnel's service options in its
    /// configuration (`curves = secp521r1\n`: only P-521 key exchange, ...).
    pub fn start_with_conf(backend: u16, kind: CertKind, extra: &str) -> TlsFront {
        TlsFront::launch(backend, kind, extra, false)
    }

    /// Starts stunnel (see [`TlsFront::start_with_conf`]); with `client_cert`, a client must
    /// show a certificate signed by the CA of the folder (`ca.pem`).
    fn launch(backend: u16, kind: CertKind, extra: &str, client_cert: bool) -> TlsFront {
        let binary = require_binary("stunnel4");
        let dir = tempfile::tempdir().expect("a folder for stunnel");
        let (cert, key, trust) = make_certs(dir.path(), kind);
        let port = free_port();
        let mut conf = format!(
            "foreground = yes\npid =\noutput = {log}\n[s3]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {cert}\nkey = {key}\n",
            log = dir.path().join("stunnel.log").display(),
            cert = cert.display(),
            key = key.display(),
        );
        if kind == CertKind::Rsa1024Server {
            conf.push_str("securityLevel = 0\n");
        }
        if client_cert {
            conf.push_str(&format!(
                "verify = 2\nCAfile = {}\n",
                dir.path().join("ca.pem").display()
            ));
        }
        conf.push_str(extra);
        let conf_path = dir.path().join("stunnel.conf");
        fs::write(&conf_path, conf).expect("writing stunnel.conf");
        let child = crate::spawn_server(
            Command::new(binary)
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("starting stunnel4");
        wait_for_port(port, Duration::from_secs(10));
        let trust_pem = fs::read_to_string(&trust).expect("reading the certificate to trust");
        TlsFront {
            child,
            port,
            dir,
            trust_pem,
            trust_file: trust,
        }
    }

    /// [`TlsFront::start_with_conf`] asking every client for a certificate its CA (`ca.pem`)
    /// signed and refusing a client that shows none (stunnel `verify = 2`).
    pub fn start_requiring_client_cert(backend: u16, kind: CertKind, extra: &str) -> TlsFront {
        TlsFront::launch(backend, kind, extra, true)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder with the certificates and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
