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
        CertKind::SelfSigned => {
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
            openssl(dir, &args);
            (
                dir.join("server.pem"),
                dir.join("server.key"),
                dir.join("server.pem"),
            )
        }
        CertKind::PrivateCa => {
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
            openssl(dir, &args);
            let mut args = vec!["req"];
            args.extend(ec);
            args.extend([
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ]);
            openssl(dir, &args);
            fs::write(
                dir.join("server.ext"),
                format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n{san}\n"),
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
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "server.pem",
                    "-days",
                    "2",
                    "-extfile",
                    "server.ext",
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

impl TlsFront {
    /// Starts stunnel on a free port, TLS outside, `127.0.0.1:backend` inside.
    pub fn start(backend: u16, kind: CertKind) -> TlsFront {
        let binary = require_binary("stunnel4");
        let dir = tempfile::tempdir().expect("a folder for stunnel");
        let (cert, key, trust) = make_certs(dir.path(), kind);
        let port = free_port();
        let conf = format!(
            "foreground = yes\npid =\noutput = {log}\n[s3]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {cert}\nkey = {key}\n",
            log = dir.path().join("stunnel.log").display(),
            cert = cert.display(),
            key = key.display(),
        );
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
