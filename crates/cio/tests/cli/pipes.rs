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

/// A process writing `source`'s bytes into the FIFO at `fifo`, which waits in `open` for a
/// reader, then writes a moment later (as `age -d ... > fifo` decrypts first): a writer let go
/// has no reader left when it writes. (One that writes at once may put its bytes in the pipe
/// in the instant cio has it open, and end with success: its bytes are dropped, never read.)
fn blocked_writer(source: &Path, fifo: &Path) -> std::process::Child {
    let child = std::process::Command::new("sh")
        .args(["-c", "exec 3> \"$2\"; sleep 0.3; cat \"$1\" >&3", "sh"])
        .arg(source)
        .arg(fifo)
        .spawn()
        .unwrap();
    // Let it reach its open of the FIFO.
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Whether `writer` ended within five seconds (cio has ended), and how.
fn ended(mut writer: std::process::Child) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(status) = writer.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    None
}

/// The review's finding: a named FIFO cio does not read (refused, as an identity others may
/// read, or never reached, as a second identity after a refused first, a `--from-file` of a
/// command refused for its name, a recipients file after a refused `--recipient`) left its
/// writer (`age -d ... > fifo &`) waiting forever after cio ended. Each writer is let go,
/// with a failed write (no secret read), and cio's message is as it was.
#[test]
fn writers_of_fifos_cio_does_not_read_are_let_go() {
    let env = cluster_a();
    let dir = env.dir.path();
    let (identity, _) = age_identity(dir, "id.txt");
    let bundle = dir.join("b.age");
    std::fs::write(&bundle, "not a bundle\n").unwrap();
    let fifo = dir.join("fifo");
    let shown = fifo.display().to_string();
    let fifo_arg = fifo.to_str().unwrap();
    let exposed = dir.join("exposed.txt");
    std::fs::write(&exposed, "AGE-SECRET-KEY-1\n").unwrap();
    std::fs::set_permissions(
        &exposed,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let exposed_arg = exposed.to_str().unwrap();
    let b = bundle.to_str().unwrap();
    let from_file = format!("--from-file={fifo_arg}");
    let cases: [(u32, Vec<&str>, i32, String); 8] = [
        (
            0o644,
            vec!["credential", "import", "-i", fifo_arg, b],
            1,
            format!(
                "Fail: Import credentials: identity file {shown} may be read by others (mode 644)\nHint: nothing was read; run 'chmod 600 {shown}' (as ssh demands of private keys), then try again\n"
            ),
        ),
        (
            0o600,
            vec!["credential", "import", "-i", exposed_arg, "-i", fifo_arg, b],
            1,
            format!(
                "Fail: Import credentials: identity file {} may be read by others (mode 644)\n",
                exposed.display()
            ),
        ),
        (
            0o600,
            vec!["credential", "create", "not-a-name", "--from-file", fifo_arg],
            2,
            "Fail: Create credential: the text given as CREDENTIALNAME is not one of the 24 credential names\n".to_string(),
        ),
        (
            0o600,
            vec![
                "credential",
                "export",
                "--recipient",
                "nonsense",
                "--recipients-file",
                fifo_arg,
            ],
            2,
            "Fail: Export credentials: --recipient number 1 is not a recipient cio can seal to: ".to_string(),
        ),
        // A line the parser refuses (the third review's finding: never read into a command,
        // its input files were not let go), in both forms of the option.
        (
            0o600,
            vec![
                "credential",
                "create",
                "cio_minio_access_key",
                "--from-file",
                fifo_arg,
                "--bogus",
            ],
            2,
            "Fail: usage: ".to_string(),
        ),
        (
            0o600,
            vec!["credential", "create", "cio_minio_access_key", "VALUE", &from_file],
            2,
            "Fail: usage: ".to_string(),
        ),
        // import's FILE on a refused line: told from the options and their values.
        (
            0o600,
            vec!["credential", "--json", "import", "-i", b, fifo_arg, "--bogus"],
            2,
            "Fail: usage: ".to_string(),
        ),
        (
            0o600,
            vec!["credential", "import", "--provider", "nonsense", "--", fifo_arg],
            2,
            "Fail: usage: ".to_string(),
        ),
    ];
    for (mode, args, code, said) in cases {
        mkfifo(&fifo, mode);
        let writer = blocked_writer(&identity, &fifo);
        let out = env.cio(&args).code(code);
        assert!(stderr(&out).starts_with(&said), "{}", stderr(&out));
        let status = ended(writer).unwrap_or_else(|| panic!("{args:?}: the writer still waits"));
        assert!(!status.success(), "{args:?}: {status:?}");
        std::fs::remove_file(&fifo).unwrap();
    }

    // A key file given as a FIFO: refused as before, its writer let go.
    mkfifo(&fifo, 0o600);
    let writer = blocked_writer(&identity, &fifo);
    let out = env
        .cmd()
        .env("CIO_KEY_FILE", &fifo)
        .args(["credential", "list"])
        .assert()
        .code(3);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: List credentials: key file {shown} is not a cio key file: it is a FIFO (named pipe)\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!ended(writer).expect("the key file's writer ends").success());
}
