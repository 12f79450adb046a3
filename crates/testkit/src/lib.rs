//! Test support: starts the real servers the tests use (never mocks of them), each on a free
//! loopback port in a temporary folder, and stops them when dropped.
//!
//! A server binary that is missing is a loud failure naming the install step
//! (`scripts/test` installs them all).

pub mod etcd;
pub mod gate;
pub mod moto;
pub mod proxy;
pub mod s3;
pub mod socks;
pub mod tls;
pub mod web;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Starts `cmd` as a server child that dies with the thread that started it (the test), even
/// when the test process is killed before its servers are dropped (`PR_SET_PDEATHSIG`).
pub fn spawn_server(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
}

/// A port on 127.0.0.1 that refuses connections for as long as the returned socket lives: it
/// is bound and never listens, so no other test can take it (a port found free and let go
/// can be taken by a server another test starts).
pub fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use rustix::net::{AddressFamily, SocketType, bind, getsockname, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a TCP socket");
    bind(&fd, &std::net::SocketAddr::from(([127, 0, 0, 1], 0))).expect("binding 127.0.0.1:0");
    let port = getsockname(&fd)
        .ok()
        .and_then(|a| std::net::SocketAddr::try_from(a).ok())
        .map(|a| a.port())
        .expect("the bound port");
    (fd, port)
}

/// A free TCP port on 127.0.0.1 (the listener is closed before the port is returned).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 for a free port")
}

/// The path of a server binary the tests need, or a panic that says how to install it.
pub fn require_binary(name: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let cargo_bin = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin").join(name))
        .filter(|p| p.is_file());
    from_path.or(cargo_bin).unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run scripts/test, which installs every server the tests use"
        )
    })
}

/// Waits until `127.0.0.1:port` accepts connections, or panics after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "nothing listens on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
