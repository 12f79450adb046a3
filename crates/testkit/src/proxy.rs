//! A real HTTP proxy for tests: Debian's `tinyproxy`, on a free loopback port with its own
//! configuration in a temporary folder, killed when dropped.
//!
//! restic (Go) never sends requests for `localhost` or loopback addresses through a proxy, so a
//! test that wants the proxy used names the server by [`loopback_name`]: a host name other than
//! `localhost` that resolves to a loopback address (the proxy resolves it and connects there).

use std::fs;
use std::net::ToSocketAddrs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_binary, wait_for_port};

/// A running tinyproxy.
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// A host name, not `localhost`, that resolves to a loopback address (the machine's own name
/// usually does); panics with the fix when there is none.
pub fn loopback_name() -> String {
    find_loopback_name().unwrap_or_else(|| {
        panic!(
            "no host name other than localhost resolves to a loopback address: add '127.0.0.1 <this machine's name>' to /etc/hosts"
        )
    })
}

/// [`loopback_name`], or `None`.
pub fn find_loopback_name() -> Option<String> {
    let hostname = fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let candidates = [hostname.as_str(), "localhost.localdomain", "ip6-localhost"];
    for name in candidates
        .iter()
        .filter(|n| !n.is_empty() && **n != "localhost")
    {
        let loopback = (*name, 80)
            .to_socket_addrs()
            .map(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
            .unwrap_or(false);
        if loopback {
            return Some(name.to_string());
        }
    }
    None
}

impl Tinyproxy {
    /// Starts tinyproxy; `connect_ports` restricts the CONNECT method to these ports (empty:
    /// any port), as Debian's default configuration restricts it to 443 and 563.
    pub fn start(connect_ports: &[u16]) -> Tinyproxy {
        let binary = require_binary("tinyproxy");
        let dir = tempfile::tempdir().expect("a folder for tinyproxy");
        let port = free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\nAllow ::1\n\
             LogLevel Info\nLogFile \"{log}\"\nPidFile \"{pid}\"\n",
            log = dir.path().join("tinyproxy.log").display(),
            pid = dir.path().join("tinyproxy.pid").display(),
        );
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        fs::write(&conf_path, conf).expect("writing tinyproxy.conf");
        let child = crate::spawn_server(
            Command::new(binary)
                .arg("-d")
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("starting tinyproxy");
        wait_for_port(port, Duration::from_secs(10));
        Tinyproxy { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, the value for HTTP_PROXY / HTTPS_PROXY.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's log so far (which requests it passed or refused).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
