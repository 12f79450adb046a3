//! A web server that is not S3: Python's `http.server` on a free loopback port, serving an
//! empty folder (it answers HTML, never an S3 document), killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_binary, spawn_server, wait_for_port};

/// A running `python3 -m http.server`.
pub struct WebServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl WebServer {
    pub fn start() -> WebServer {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a folder to serve");
        let child = spawn_server(
            Command::new(require_binary("python3"))
                .args([
                    "-m",
                    "http.server",
                    "--bind",
                    "127.0.0.1",
                    &port.to_string(),
                ])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("starting python3 -m http.server");
        wait_for_port(port, Duration::from_secs(10));
        WebServer {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        // Ignoring errors: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
