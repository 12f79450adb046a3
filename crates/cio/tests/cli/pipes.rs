//! Files named by an option that carry a secret or a bundle (`import --identity`, `import
//! FILE`, `create --from-file`, `export --recipients-file`) may be pipes: process
//! substitution (`--identity <(pass show recovery-key)`) or a named FIFO. A FIFO whose
//! writer has not come yet is waited for, said on stderr after two seconds, never read as
//! empty; a named FIFO others may read is refused as an identity file others may read is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::recovery::{PASSPHRASE, age_identity, cluster_a};
use crate::util::*;

/// A named FIFO at `path` with `mode`.
fn mkfifo(path: &Path, mode: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(mode),
        0,
    )
    .unwrap();
    // The umask may have taken bits away.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Writes `bytes` into the FIFO at `path` after `delay` (its writer comes late).
fn write_later(path: &Path, bytes: Vec<u8>, delay: Duration) -> std::thread::JoinHandle<()> {
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        w.write_all(&bytes).unwrap();
    })
}

fn bash(env: &TestEnv, args: &str) -> std::process::Output {
    let cio = assert_cmd::cargo::cargo_bin("cio");
    env.shell("bash", &format!("'{}' {args}", cio.display()))
}

#[test]
fn identities_bundles_values_and_recipients_are_read_from_pipes() {
    let a = cluster_a();
    let safe = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(safe.path(), "recovery-key.txt");
    let bundle = a.dir.path().join("sealed.age");
    a.cio(&[
        "credential",
        "export",
        "--recipient",
        &recipient,
        "--output",
        bundle.to_str().unwrap(),
    ])
    .success();
    let b = TestEnv::new();

    // The identity from a password manager: process substitution (an anonymous pipe, 0600).
    let out = bash(
        &b,
        &format!(
            "credential import --dry-run --identity <(cat '{}') '{}'",
            identity.display(),
            bundle.display()
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A named FIFO others may read is refused before its writer is waited for.
    let open_fifo = b.dir.path().join("open-fifo");
    mkfifo(&open_fifo, 0o644);
    let out = b
        .cio(&[
            "credential",
            "import",
            "--dry-run",
            "-i",
            open_fifo.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ])
        .code(1);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: Import credentials: identity file {} may be read by others (mode 644)\n",
            open_fifo.display()
        )),
        "{}",
        stderr(&out)
    );

    // A named FIFO of 0600 whose writer comes late: waited for, said, then read.
    let key_fifo = b.dir.path().join("key-fifo");
    mkfifo(&key_fifo, 0o600);
    let writer = write_later(
        &key_fifo,
        std::fs::read(&identity).unwrap(),
        Duration::from_secs(3),
    );
    let out = b
        .cio(&[
            "credential",
            "import",
            "-i",
            key_fifo.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ])
        .success();
    writer.join().unwrap();
    // (The repository at port 9 cannot be asked: a warning says so after the note.)
    assert!(
        stderr(&out).starts_with(&format!(
            "Warning: waiting for the identity from {}, whose writer has not ended it\n",
            key_fifo.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.reveal("cio_minio_secret_key"), crate::recovery::SECRET);

    // The bundle itself from a named FIFO, the same way.
    let passphrase_bundle = a.dir.path().join("paper.age");
    crate::recovery::export_passphrase(&a, &passphrase_bundle);
    let bundle_fifo = b.dir.path().join("bundle-fifo");
    mkfifo(&bundle_fifo, 0o600);
    let writer = write_later(
        &bundle_fifo,
        std::fs::read(&passphrase_bundle).unwrap(),
        Duration::from_secs(3),
    );
    let c = TestEnv::new();
    let out = c
        .cio_in(
            &["credential", "import", bundle_fifo.to_str().unwrap()],
            PASSPHRASE,
        )
        .success();
    writer.join().unwrap();
    // (The repository at port 9 cannot be asked: a warning says so after the note.)
    assert!(
        stderr(&out).starts_with(&format!(
            "Warning: waiting for the bundle from {}, whose writer has not ended it\n",
            bundle_fifo.display()
        )),
        "{}",
        stderr(&out)
    );

    // The recipients of an export from a named FIFO.
    let recipients_fifo = b.dir.path().join("recipients-fifo");
    mkfifo(&recipients_fifo, 0o644);
    let writer = write_later(
        &recipients_fifo,
        format!("{recipient}\n").into_bytes(),
        Duration::from_secs(3),
    );
    let out = a
        .cio(&[
            "credential",
            "export",
            "--recipients-file",
            recipients_fifo.to_str().unwrap(),
        ])
        .success();
    writer.join().unwrap();
    assert!(stdout(&out).starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(
        stderr(&out).starts_with(&format!(
            "Warning: waiting for the recipients from {}, whose writer has not ended it\nSucceed: Export credential: ",
            recipients_fifo.display()
        )),
        "{}",
        stderr(&out)
    );
}

/// The review's finding: `create NAME --from-file FIFO` with no writer yet said at once
/// "the value is empty" (exit 1), while `import FIFO` waited. It waits too, and says so.
#[test]
fn create_from_a_fifo_waits_for_its_writer() {
    let env = TestEnv::new();
    let fifo = env.dir.path().join("region-fifo");
    mkfifo(&fifo, 0o600);
    let writer = write_later(&fifo, b"nl-ams\n".to_vec(), Duration::from_secs(3));
    let out = env
        .cio(&[
            "credential",
            "create",
            "cio_minio_region",
            "--from-file",
            fifo.to_str().unwrap(),
        ])
        .success();
    writer.join().unwrap();
    assert_eq!(
        stderr(&out),
        "Warning: waiting for the value of cio_minio_region from the pipe given with --from-file, whose writer has not ended it\n"
    );
    assert_eq!(env.reveal("cio_minio_region"), "nl-ams");
}
