//! A real SOCKS5 proxy for tests: Debian's `microsocks`, on a free loopback port, optionally
//! asking for a user name and password (RFC 1929), its log in a temporary folder, killed when
//! dropped.
//!
//! microsocks resolves the names its clients send itself and logs each connection it opens
//! (`client[N] 127.0.0.1: connected to HOST:PORT`), so a test sees both that the proxy was used
//! and which name it was handed. As with [`crate::proxy`], restic (Go) never proxies
//! `localhost` or loopback addresses: name the server by [`crate::proxy::loopback_name`].

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_binary, wait_for_port};

/// A running microsocks.
pub struct Microsocks {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Microsocks {
    /// Starts microsocks on 127.0.0.1; with `login`, only that user name and password are let
    /// through.
    pub fn start(login: Option<(&str, &str)>) -> Microsocks {
        let binary = require_binary("microsocks");
        let dir = tempfile::tempdir().expect("a folder for microsocks");
        let port = free_port();
        let log = fs::File::create(dir.path().join("microsocks.log")).expect("microsocks.log");
        let mut cmd = Command::new(binary);
        cmd.arg("-i")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string());
        if let Some((user, password)) = login {
            cmd.arg("-u").arg(user).arg("-P").arg(password);
        }
        let child = crate::spawn_server(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log)),
        )
        .expect("starting microsocks");
        wait_for_port(port, Duration::from_secs(10));
        Microsocks { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `socks5://127.0.0.1:PORT`, the value for HTTP_PROXY / HTTPS_PROXY.
    pub fn url(&self) -> String {
        format!("socks5://127.0.0.1:{}", self.port)
    }

    /// `socks5://USER:PASSWORD@127.0.0.1:PORT` (both given as they go in a URL).
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("socks5://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// The proxy's log so far: one line per connection it opened for a client.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("microsocks.log")).unwrap_or_default()
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
