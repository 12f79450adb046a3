//! Real etcd servers for tests: one member or a three-member cluster, each member on free
//! loopback ports with its data in a temporary folder, killed when the cluster is dropped.
//!
//! Rules:
//! - the servers are the Debian `etcd-server` binaries (`/usr/bin/etcd`, `etcdctl`), never a
//!   mock; a missing binary is a loud failure ([`crate::require_binary`]);
//! - a cluster is returned only once every member reports healthy;
//! - members can be stopped (killed, as a crash would) and restarted with the same data;
//! - with [`TestCerts`] the members serve clients over TLS and require a client certificate
//!   signed by the test CA (etcdctl's `--cacert/--cert/--key`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require_binary};

/// How long a cluster may take to become healthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with the
/// openssl command line in a temporary folder.
pub struct TestCerts {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA the servers do not trust, with a client certificate it signed.
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
    /// A server certificate of the CA for `elsewhere.example` only (not 127.0.0.1).
    pub wrong_name_cert: PathBuf,
    pub wrong_name_key: PathBuf,
    /// A server certificate of the CA for 127.0.0.1 that expired on 2 January 2025.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
}

/// Runs the openssl command line in `dir`; panics with its error output when it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let binary = require_binary("openssl");
    let out = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// The extensions of a server certificate for `names` (a subjectAltName value).
fn server_ext(names: &str) -> String {
    format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={names}\n"
    )
}

/// Makes the key and signing request of `name`, and its extension file.
fn make_request(dir: &Path, name: &str, ext: &str) {
    fs::write(dir.join(format!("{name}.ext")), ext).expect("writing an openssl extension file");
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
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

fn make_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    let ext_file = format!("{name}.ext");
    make_request(dir, name, ext);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}

/// A certificate of `ca` for `name` that was valid only on 1 January 2025 (`openssl ca`: the
/// one openssl 3.0 command that sets dates in the past).
fn make_expired_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    make_request(dir, name, ext);
    let db = dir.join(format!("{name}-db"));
    fs::create_dir_all(&db).expect("a folder for openssl ca's database");
    fs::write(db.join("index.txt"), "").expect("openssl ca's index");
    fs::write(db.join("serial"), "01\n").expect("openssl ca's serial");
    let config = crate::tls::openssl_ca_config(&db.display().to_string(), "");
    fs::write(dir.join(format!("{name}.cnf")), config).expect("openssl ca's configuration");
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            &format!("{name}.cnf"),
            "-cert",
            &format!("{ca}.pem"),
            "-keyfile",
            &format!("{ca}.key"),
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-startdate",
            "20250101000000Z",
            "-enddate",
            "20250102000000Z",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

impl TestCerts {
    /// Makes a fresh CA and the server and client certificates it signs.
    pub fn new() -> TestCerts {
        let dir = tempfile::tempdir().expect("a temporary folder for certificates");
        let d = dir.path();
        make_ca(d, "ca");
        make_leaf(d, "ca", "server", &server_ext("IP:127.0.0.1,DNS:localhost"));
        let client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n";
        make_leaf(d, "ca", "client", client_ext);
        make_ca(d, "other-ca");
        make_leaf(d, "other-ca", "other-client", client_ext);
        make_leaf(d, "ca", "wrong-name", &server_ext("DNS:elsewhere.example"));
        make_expired_leaf(d, "ca", "expired", &server_ext("IP:127.0.0.1"));
        TestCerts {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            other_client_cert: d.join("other-client.pem"),
            other_client_key: d.join("other-client.key"),
            wrong_name_cert: d.join("wrong-name.pem"),
            wrong_name_key: d.join("wrong-name.key"),
            expired_cert: d.join("expired.pem"),
            expired_key: d.join("expired.key"),
            _dir: dir,
        }
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}

struct Member {
    name: String,
    client_port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

/// Running etcd members; every member is killed on drop.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// `user:password` for etcdctl once authentication is enabled.
    etcdctl_user: Option<String>,
    /// etcdctl does not verify the members' certificates ([`EtcdCluster::serving`]).
    etcdctl_insecure: bool,
}

impl EtcdCluster {
    /// One member, plain HTTP.
    pub fn single() -> EtcdCluster {
        EtcdCluster::start(1, None)
    }

    /// Three members, plain HTTP.
    pub fn three() -> EtcdCluster {
        EtcdCluster::start(3, None)
    }

    /// `size` members; with `certs`, clients must use TLS and a client certificate.
    ///
    /// A port found free may be taken by another test before etcd binds it; a member that
    /// exits while starting makes the whole cluster start again on other ports (3 tries).
    pub fn start(size: usize, certs: Option<&TestCerts>) -> EtcdCluster {
        EtcdCluster::start_with_args(size, certs, &[])
    }

    /// Like [`EtcdCluster::start`], with more etcd flags for every member (e.g.
    /// `--auth-token-ttl=1`).
    pub fn start_with_args(size: usize, certs: Option<&TestCerts>, extra: &[&str]) -> EtcdCluster {
        EtcdCluster::start_checked(size, certs, extra, false)
    }

    /// One TLS member (clients need a certificate of `certs`' CA) that serves `cert` and its
    /// `key` instead of the test server certificate: one clients refuse (expired, for
    /// another name). etcdctl, for the health checks, skips verifying it.
    pub fn serving(certs: &TestCerts, cert: &Path, key: &Path) -> EtcdCluster {
        let cert = format!("--cert-file={}", cert.display());
        let key = format!("--key-file={}", key.display());
        // etcd's flags take the last of repeated values: these replace the test server's.
        EtcdCluster::start_checked(1, Some(certs), &[&cert, &key], true)
    }

    fn start_checked(
        size: usize,
        certs: Option<&TestCerts>,
        extra: &[&str],
        etcdctl_insecure: bool,
    ) -> EtcdCluster {
        let mut last = String::new();
        for _ in 0..3 {
            match EtcdCluster::try_start(size, certs, extra, etcdctl_insecure) {
                Ok(cluster) => return cluster,
                Err(why) => last = why,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start(
        size: usize,
        certs: Option<&TestCerts>,
        extra: &[&str],
        etcdctl_insecure: bool,
    ) -> Result<EtcdCluster, String> {
        let etcd = require_binary("etcd");
        let dir = tempfile::tempdir().expect("a temporary folder for etcd");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("cio-test-{}", dir.path().display());
        let scheme = if certs.is_some() { "https" } else { "http" };
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let mut args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.path().join(&name).display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster={initial_cluster}"),
                format!("--initial-cluster-token={token}"),
                "--initial-cluster-state=new".to_string(),
                "--heartbeat-interval=50".to_string(),
                "--election-timeout=500".to_string(),
                "--logger=zap".to_string(),
            ];
            if let Some(c) = certs {
                args.push(format!("--cert-file={}", c.server_cert.display()));
                args.push(format!("--key-file={}", c.server_key.display()));
                args.push(format!("--trusted-ca-file={}", c.ca.display()));
                args.push("--client-cert-auth".to_string());
            }
            args.extend(extra.iter().map(|a| a.to_string()));
            members.push(Member {
                log: dir.path().join(format!("{name}.log")),
                name,
                client_port: *client,
                args,
                child: None,
            });
        }
        let mut cluster = EtcdCluster {
            tls: certs.map(|c| (c.ca.clone(), c.client_cert.clone(), c.client_key.clone())),
            dir,
            members,
            etcdctl_user: None,
            etcdctl_insecure,
        };
        for i in 0..size {
            cluster.spawn(i, &etcd);
        }
        for i in 0..size {
            cluster.health(i)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize, etcd: &Path) {
        let member = &mut self.members[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .expect("opening an etcd log file");
        let child = Command::new(etcd)
            .args(&member.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating a log file handle"))
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        member.child = Some(child);
    }

    /// `127.0.0.1:PORT` of every member, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The store location for these members: `etcd://a,b,c{prefix}` (`etcds://` with TLS).
    pub fn url(&self, prefix: &str) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://{}{prefix}", self.endpoints().join(","))
    }

    /// Kills member `i`, as a crash would.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            // SIGKILL also ends a paused member.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes member `i` (SIGSTOP): it still accepts connections but answers nothing, as a
    /// hung or overloaded machine would.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// Lets a paused member run again (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.members[i]
            .child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("member {i} is not running"));
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts member `i` again with its data; waits for health only when `wait` (a member
    /// without quorum is never healthy).
    pub fn restart(&mut self, i: usize, wait: bool) {
        assert!(
            self.members[i].child.is_none(),
            "member {i} is still running"
        );
        let etcd = require_binary("etcd");
        self.spawn(i, &etcd);
        if wait {
            self.wait_healthy(i);
        }
    }

    /// Waits until member `i` answers a linearizable read.
    pub fn wait_healthy(&mut self, i: usize) {
        if let Err(why) = self.health(i) {
            panic!("{why}");
        }
    }

    fn health(&mut self, i: usize) -> Result<(), String> {
        let start = Instant::now();
        let endpoint = self.endpoints()[i].clone();
        loop {
            if let Some(child) = self.members[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "etcd member {} exited ({status}):\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                ));
            }
            let out = self.etcdctl_at(&endpoint, &["endpoint", "health"]);
            if out.status.success() {
                return Ok(());
            }
            if start.elapsed() > HEALTH_TIMEOUT {
                return Err(format!(
                    "etcd member {} is not healthy after {HEALTH_TIMEOUT:?}:\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self, i: usize) -> String {
        let text = fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn etcdctl_at(&self, endpoints: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(require_binary("etcdctl"));
        for proxy in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(proxy);
        }
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg("--command-timeout=3s")
            .arg("--dial-timeout=2s");
        if let Some(user) = &self.etcdctl_user {
            cmd.arg(format!("--user={user}"));
        }
        if let Some((ca, cert, key)) = &self.tls {
            cmd.arg(format!("--cacert={}", ca.display()))
                .arg(format!("--cert={}", cert.display()))
                .arg(format!("--key={}", key.display()));
        }
        if self.etcdctl_insecure {
            cmd.arg("--insecure-skip-tls-verify");
        }
        cmd.args(args).output().expect("running etcdctl")
    }

    /// Makes etcdctl (and the health checks) log in as `user_password` (`user:password`),
    /// for a cluster with authentication enabled.
    pub fn set_etcdctl_user(&mut self, user_password: Option<&str>) {
        self.etcdctl_user = user_password.map(str::to_string);
    }

    /// Runs etcdctl against every member with `args`; returns its output.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_at(&self.endpoints().join(","), args)
    }

    /// The folder holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
