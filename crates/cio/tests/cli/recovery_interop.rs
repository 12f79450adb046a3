//! Recovery bundles and the real `age` command (Debian package `age`), both ways: `age -d`
//! opens what cio seals (passphrase, X25519 and SSH recipients), and cio imports what `age`
//! seals. `age` reads a passphrase from the terminal only, so those runs go through a real
//! pseudo-terminal (util-linux's `script`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::recovery::{ACCESS, PASSWORD, REPO, SECRET};
use crate::recovery::{PASSPHRASE, age_identity, cluster_a, export_passphrase, on_terminal, row};
use crate::util::*;

#[test]
fn a_passphrase_bundle_opens_with_age_and_imports_as_the_alternate_set() {
    let a = cluster_a();
    let bundle = a.dir.path().join("cluster-a.age");
    export_passphrase(&a, &bundle);
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    assert!(text.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
    for secret in [ACCESS, SECRET, PASSWORD, "cluster-a"] {
        assert!(!text.contains(secret));
    }
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The real age opens it with the passphrase.
    let plain = a.dir.path().join("plain.json");
    let (screen, ok) = on_terminal(
        &format!("age -d -o '{}' '{}'", plain.display(), bundle.display()),
        "passphrase",
        &[PASSPHRASE],
    );
    assert!(ok, "{screen}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&plain).unwrap()).unwrap();
    assert_eq!(doc["format"], "cio-recovery-bundle");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["credentials"][3]["name"], "cio_minio_backup_password");
    assert_eq!(doc["credentials"][3]["versions"][0]["value"], PASSWORD);

    // Another cluster imports it as its alternate set, the passphrase on standard input.
    let b = TestEnv::new();
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                bundle.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    let shown = stdout(&out);
    for secret in [ACCESS, SECRET, PASSWORD] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert_eq!(
        row(&shown, "cio_minio_alt_secret_key"),
        [
            "cio_minio_alt_secret_key",
            "****************-key",
            "cio_minio_secret_key",
            "create"
        ]
    );
    assert!(shown.ends_with("Succeed: Import credential: 4 versions written, 0 unchanged, to the minio alternate set (earlier values stay in each credential's history)\n"), "{shown}");
    assert_eq!(b.reveal("cio_minio_alt_backup_repo"), REPO);
    assert_eq!(b.reveal("cio_minio_alt_backup_password"), PASSWORD);

    // The same bundle again: identical values are no conflict, and nothing is written.
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                bundle.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    assert!(stdout(&out).contains("0 versions written, 4 unchanged"));
}

#[test]
fn recipient_bundles_open_with_age_and_ssh_keys() {
    let a = cluster_a();
    let dir = a.dir.path();
    let (identity, recipient) = age_identity(dir, "recovery-key.txt");
    let ssh_key = dir.join("admin_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "admin@test", "-f"])
        .arg(&ssh_key)
        .output()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(out.status.success());
    let recipients_file = dir.join("admins.pub");
    std::fs::write(
        &recipients_file,
        format!(
            "# the administrators\n{}",
            std::fs::read_to_string(ssh_key.with_extension("pub")).unwrap()
        ),
    )
    .unwrap();
    // To standard output, sealed to both: no passphrase asked.
    let out = a
        .cio(&[
            "credential",
            "export",
            "--recipient",
            &recipient,
            "--recipients-file",
            recipients_file.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        stderr(&out),
        "Succeed: Export credential: 4 credentials of the minio primary set, sealed to 2 recipients\n"
    );
    let bundle = dir.join("b.age");
    std::fs::write(&bundle, stdout(&out)).unwrap();
    for key in [&identity, &ssh_key] {
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(key)
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(SECRET));
    }
    for key in [&identity, &ssh_key] {
        let b = TestEnv::new();
        b.cio(&[
            "credential",
            "import",
            "--identity",
            key.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ])
        .success();
        assert_eq!(b.reveal("cio_minio_secret_key"), SECRET);
    }
}

#[test]
fn bundles_sealed_by_age_import() {
    let b = TestEnv::new();
    let dir = b.dir.path();
    let (identity, recipient) = age_identity(dir, "id.txt");
    let plain = dir.join("plain.json");
    std::fs::write(
        &plain,
        r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1790000000000,"created_by":"by hand","credentials":[{"name":"cio_aws_access_key","versions":[{"version":1,"action":"create","written_at_ms":1790000000000,"value":"AKIAIOSFODNN7EXAMPLE"}]}]}"#,
    )
    .unwrap();
    // To a recipient, binary (not armored).
    let sealed = dir.join("to-recipient.age");
    let out = Command::new("age")
        .args(["-r", &recipient, "-o"])
        .arg(&sealed)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    b.cio(&[
        "credential",
        "import",
        "-i",
        identity.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ])
    .success();
    assert_eq!(b.reveal("cio_aws_access_key"), "AKIAIOSFODNN7EXAMPLE");

    // To a passphrase, armored, typed into age on a terminal.
    let sealed = dir.join("to-passphrase.age");
    let (screen, ok) = on_terminal(
        &format!("age -p -a -o '{}' '{}'", sealed.display(), plain.display()),
        "assphrase",
        &[PASSPHRASE, PASSPHRASE],
    );
    assert!(ok, "{screen}");
    let c = TestEnv::new();
    let out = c
        .cio_in(
            &[
                "credential",
                "import",
                "--dry-run",
                sealed.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    assert_eq!(
        row(&stdout(&out), "cio_aws_access_key"),
        ["cio_aws_access_key", "****************MPLE", "create"]
    );
    assert!(!c.store().exists(), "a dry run writes nothing");
}

#[test]
fn the_bundle_printed_in_the_readme_opens() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme.find("-----BEGIN AGE ENCRYPTED FILE-----").unwrap();
    let end = readme.find("-----END AGE ENCRYPTED FILE-----").unwrap()
        + "-----END AGE ENCRYPTED FILE-----".len();
    let b = TestEnv::new();
    let bundle = b.dir.path().join("readme.age");
    std::fs::write(&bundle, format!("{}\n", &readme[start..end])).unwrap();
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--as-alternate",
                "--dry-run",
                bundle.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    let shown = stdout(&out);
    let table_start = readme.find("Bundle made ").unwrap();
    let printed = &readme[table_start..];
    for name in [
        "cio_minio_alt_backup_repo",
        "cio_minio_alt_secret_key",
        "cio_minio_alt_backup_password",
    ] {
        assert_eq!(row(&shown, name), row(printed, name), "{shown}");
    }
}
