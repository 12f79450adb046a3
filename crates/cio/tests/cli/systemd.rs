//! contrib/systemd: the timer and service that run `validate --record --prometheus` hourly,
//! checked by the real `systemd-analyze` (Debian package `systemd`) offline: `--root` points
//! it at a scratch root holding the units and this build's binary as /usr/bin/cio, and
//! `--recursive-errors=no` keeps it from requiring the rest of a system (sysinit.target, ...)
//! in that root; `--man=no` skips checking the Documentation= pages exist.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

const UNITS: [&str; 2] = [
    "cio-credential-validate.service",
    "cio-credential-validate.timer",
];

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd")
}

/// A scratch root: the units in /usr/lib/systemd/system and the cio binary in /usr/bin.
fn scratch_root(env: &TestEnv) -> PathBuf {
    let root = env.dir.path().join("root");
    let units = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::copy(
        assert_cmd::cargo::cargo_bin("cio"),
        root.join("usr/bin/cio"),
    )
    .unwrap();
    for unit in UNITS {
        std::fs::copy(contrib().join(unit), units.join(unit)).unwrap();
    }
    root
}

fn systemd_analyze(args: &[&str], root: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(format!("--root={}", root.display()))
        .args(UNITS.map(|u| root.join("usr/lib/systemd/system").join(u)))
        .output()
        .expect(
            "systemd-analyze must be installed (Debian package systemd; scripts/install-test-deps)",
        )
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let env = TestEnv::new();
    let root = scratch_root(&env);
    let out = systemd_analyze(&["verify", "--man=no", "--recursive-errors=no"], &root);
    let messages = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{messages}");
    assert_eq!(messages, "", "verify warns about nothing");

    // The check can fail: a unit without its binary is refused.
    std::fs::remove_file(root.join("usr/bin/cio")).unwrap();
    let out = systemd_analyze(&["verify", "--man=no", "--recursive-errors=no"], &root);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/usr/bin/cio is not executable"));
}

#[test]
fn service_is_hardened() {
    let env = TestEnv::new();
    let root = scratch_root(&env);
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(UNITS[0])
        .output()
        .expect("systemd-analyze is installed");
    let report = String::from_utf8_lossy(&out.stdout);
    // e.g. "→ Overall exposure level for cio-credential-validate.service: 1.8 OK 🙂"
    let level: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for cio-credential-validate.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level <= 2.0, "exposure {level}:\n{report}");

    let service = std::fs::read_to_string(contrib().join(UNITS[0])).unwrap();
    for line in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "StateDirectory=cio",
        "ReadWritePaths=-/var/lib/node_exporter/textfile_collector",
        "ExecStart=/usr/bin/cio credential validate --record --prometheus /var/lib/node_exporter/textfile_collector/cio.prom",
    ] {
        assert!(service.lines().any(|l| l == line), "missing {line}");
    }
    let timer = std::fs::read_to_string(contrib().join(UNITS[1])).unwrap();
    for line in [
        "OnCalendar=hourly",
        "RandomizedDelaySec=30min",
        "Persistent=true",
    ] {
        assert!(timer.lines().any(|l| l == line), "missing {line}");
    }
}
