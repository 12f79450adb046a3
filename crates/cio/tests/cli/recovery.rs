//! Recovery bundles through the CLI: `export` and `import`, and every bad input writing
//! nothing; the helpers the other recovery tests share. (`recovery_interop`: the real `age`
//! command both ways; `recovery_drill`: the worst day end to end.)

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

pub const PASSPHRASE: &str = "correct horse battery staple";
pub const REPO: &str = "s3:http://127.0.0.1:9/cluster-a/backups";
pub const ACCESS: &str = "cluster-a-access";
pub const SECRET: &str = "cluster-a-secret-key";
pub const PASSWORD: &str = "cluster a repository password";

pub fn cluster_a() -> TestEnv {
    let a = TestEnv::new();
    a.minio_set("", REPO, ACCESS, SECRET, PASSWORD);
    a
}

/// An age identity file (mode 0600, as age-keygen makes it) and its recipient.
pub fn age_identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new(testkit::require_binary("age-keygen"))
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (Debian package age)");
    assert!(out.status.success());
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (path, recipient)
}

/// Runs `line` (a shell command) on a pseudo-terminal, typing `answers` at each prompt
/// containing `prompt`. Returns the screen and whether it succeeded.
pub fn on_terminal(line: &str, prompt: &str, answers: &[&str]) -> (String, bool) {
    let mut child = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux's script (Debian package bsdutils)");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for (i, answer) in answers.iter().enumerate() {
        // Wait for the (i+1)-th prompt.
        let start = Instant::now();
        let mut buf = [0u8; 256];
        while seen.matches(prompt).count() <= i {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no prompt in {seen:?}"
            );
            let n = stdout.read(&mut buf).expect("reading the terminal");
            assert!(n > 0, "the terminal closed before a prompt: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        // The prompt is printed just before echo is turned off: give it a moment.
        std::thread::sleep(Duration::from_millis(150));
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    drop(stdin);
    (seen, child.wait().unwrap().success())
}

/// The cells of the table row of `name` in `text` (columns are separated by 2+ spaces).
pub fn row(text: &str, name: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row {name} in {text}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn export_passphrase(a: &TestEnv, path: &Path) {
    let out = a
        .cio_in(
            &["credential", "export", "--output", path.to_str().unwrap()],
            PASSPHRASE,
        )
        .success();
    assert_eq!(
        stdout(&out),
        format!(
            "Succeed: Export credential: 4 credentials of the minio primary set, sealed to a passphrase, to {}\n",
            path.display()
        )
    );
}

#[test]
fn damaged_bundles_wrong_passphrases_and_wrong_identities_write_nothing() {
    let a = cluster_a();
    let bundle = a.dir.path().join("a.age");
    export_passphrase(&a, &bundle);
    let text = std::fs::read_to_string(&bundle).unwrap();
    let b = TestEnv::new();
    b.create("cio_aws_backup_password", "something already here");
    let before = b.snapshot_files();
    let try_import = |bytes: &[u8], input: &str, extra: &[&str]| {
        let path = b.dir.path().join("try.age");
        std::fs::write(&path, bytes).unwrap();
        let mut args = vec!["credential", "import"];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        let out = b.cio_in(&args, input).code(1);
        assert_eq!(b.snapshot_files(), before, "nothing was written");
        stderr(&out)
    };

    // One byte of the payload changed (a base64 letter near the end of the armor).
    let mut changed = text.clone().into_bytes();
    let at = text.len() - 40;
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let err = try_import(&changed, PASSPHRASE, &[]);
    assert!(
        err.starts_with("Fail: Import credentials: the bundle is damaged or was changed: "),
        "{err}"
    );
    assert!(err.ends_with("Hint: nothing was written; use an intact copy of the bundle (a printed one can be typed in again and checked with --dry-run)\n"));

    // Cut short (every kind: a_bundle_cut_short_says_so_and_to_copy_it_again).
    let err = try_import(&text.as_bytes()[..text.len() / 2], PASSPHRASE, &[]);
    assert!(err.contains("the bundle is cut short"), "{err}");

    // A wrong passphrase.
    let err = try_import(text.as_bytes(), "not the right passphrase", &[]);
    assert_eq!(
        err,
        "Fail: Import credentials: the passphrase does not open this bundle\nHint: nothing was written; type the passphrase the bundle was made with (a bundle whose header was changed fails the same way)\n"
    );

    // A wrong identity for a bundle sealed to a recipient.
    let (_, recipient) = age_identity(a.dir.path(), "right.txt");
    let (wrong, _) = age_identity(b.dir.path(), "wrong.txt");
    let out = a
        .cio(&["credential", "export", "--recipient", &recipient])
        .success();
    let err = try_import(
        stdout(&out).as_bytes(),
        "",
        &["--identity", wrong.to_str().unwrap()],
    );
    assert_eq!(
        err,
        "Fail: Import credentials: none of the identities given opens this bundle\nHint: nothing was written; give the identity whose recipient the bundle was sealed to (one named in recovery_recipients)\n"
    );
}

/// The review's finding: an armored bundle whose end line is missing, or whose last 200
/// characters were cut, said `invalid armor (not wrapped at 64 characters)`. Each way a copy
/// is cut short (armored: end line, tail, header; binary: payload, header) says it is cut
/// short and to copy the whole file again (a binary one cut inside its last part cannot be
/// told from a changed byte, and says both); nothing is written.
#[test]
fn a_bundle_cut_short_says_so_and_to_copy_it_again() {
    let a = cluster_a();
    let bundle = a.dir.path().join("a.age");
    export_passphrase(&a, &bundle);
    let text = std::fs::read_to_string(&bundle).unwrap();
    let b = TestEnv::new();
    let try_import = |bytes: &[u8]| {
        let path = b.dir.path().join("try.age");
        std::fs::write(&path, bytes).unwrap();
        let out = b
            .cio_in(
                &["credential", "import", path.to_str().unwrap()],
                PASSPHRASE,
            )
            .code(1);
        assert!(!b.store().exists(), "nothing was written");
        stderr(&out)
    };
    let armored = "Fail: Import credentials: the bundle is cut short: its end line (-----END AGE ENCRYPTED FILE-----) is missing\n\
         Hint: nothing was written; copy the whole file again (its last line is -----END AGE ENCRYPTED FILE-----) and import that copy\n";
    let no_end = text
        .trim_end()
        .strip_suffix("-----END AGE ENCRYPTED FILE-----")
        .unwrap();
    assert_eq!(try_import(no_end.as_bytes()), armored);
    assert_eq!(try_import(&text.as_bytes()[..text.len() - 200]), armored);
    assert_eq!(try_import(&text.as_bytes()[..100]), armored);

    // The same bundle binary (the armor's base64 decoded), cut in its payload or header.
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(decoded.status.success());
    let binary = decoded.stdout;
    let binary_cut = "Fail: Import credentials: the bundle is cut short: it ends before its last part\n\
         Hint: nothing was written; copy the whole file again (as binary: its size must match the original's) and import that copy\n";
    assert_eq!(try_import(&binary[..60]), binary_cut);
    // Cut inside its last part it fails to decrypt, as a changed byte does: both are said.
    assert_eq!(
        try_import(&binary[..binary.len() - 20]),
        "Fail: Import credentials: the bundle is damaged or was changed: decryption error: a byte of it was changed, or the copy was cut short\n\
         Hint: nothing was written; use an intact copy of the bundle (a printed one can be typed in again and checked with --dry-run)\n"
    );
}

#[test]
fn bad_export_input_is_refused_and_writes_nothing() {
    let a = cluster_a();
    let path = a.dir.path().join("out.age");
    let p = path.to_str().unwrap();
    // A passphrase shorter than 8 characters.
    let out = a
        .cio_in(&["credential", "export", "--output", p], "seven77")
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Export credentials: the passphrase is 7 characters; a recovery bundle needs at least 8 (12 or more recommended)\nHint: nothing was written; choose a longer passphrase (a few random words; white space inside counts once) and run the command again\n"
    );
    assert!(!path.exists());
    // Shorter than 12: a warning, and the bundle.
    let out = a
        .cio_in(&["credential", "export", "--output", p], "elevenchars")
        .success();
    assert_eq!(
        stderr(&out),
        "Warning: the passphrase is 11 characters; 12 or more are much harder to guess, and this bundle holds every secret of its sets\n"
    );
    // An existing output: refused without --force, replaced with it.
    let before = std::fs::read(&path).unwrap();
    let out = a
        .cio_in(&["credential", "export", "--output", p], PASSPHRASE)
        .code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Export credentials: {p} exists\nHint: nothing was written; choose another --output, or add --force to replace {p}\n"
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    a.cio_in(
        &["credential", "export", "--output", p, "--force"],
        PASSPHRASE,
    )
    .success();
    assert_ne!(std::fs::read(&path).unwrap(), before);
    // An unknown recipient format: a usage error that does not repeat it.
    let out = a
        .cio(&[
            "credential",
            "export",
            "--recipient",
            "AKIAIOSFODNN7EXAMPLE",
        ])
        .code(2);
    assert_eq!(
        stderr(&out),
        "Fail: Export credentials: --recipient number 1 is not a recipient cio can seal to: a recipient is an age X25519 key (age1...) or an ssh-ed25519 / ssh-rsa public key\nHint: give age X25519 recipients (age1..., made by age-keygen) or ssh-ed25519 / ssh-rsa public keys (the .pub file's line)\n"
    );
    assert!(stdout(&out).is_empty());
    // The same in recovery_recipients: a write keeps its value, and the warning says once
    // what was not refreshed and why, without the text.
    let config = a.dir.path().join("bad-recipients.toml");
    std::fs::write(
        &config,
        "recovery_recipients = [\"AKIAIOSFODNN7EXAMPLE\"]\n",
    )
    .unwrap();
    let out = a
        .cmd()
        .env("CIO_CONFIG", &config)
        .args(["credential", "create", "cio_minio_region", "us-east-1"])
        .write_stdin("")
        .assert()
        .success();
    let not_refreshed = "Warning: the recovery bundles were not refreshed: recovery_recipients entry 1 is not a recipient cio can seal to: a recipient is an age X25519 key (age1...) or an ssh-ed25519 / ssh-rsa public key; fix recovery_recipients in cio.toml, then run 'cio credential export --to-repository'\n";
    assert_eq!(stderr(&out), not_refreshed);
    // A purge then: the bundle that was not written again may still hold what it destroyed.
    let out = a
        .cmd()
        .env("CIO_CONFIG", &config)
        .args(["credential", "remove", "--purge", "cio_minio_region"])
        .write_stdin("")
        .assert()
        .success();
    let text = stderr(&out);
    let stale = text
        .lines()
        .find(|l| l.starts_with("Warning: the recovery bundle at "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        stale.ends_with("/cio-recovery.age may still hold the destroyed value (it was not replaced); make the set complete again and the refresh that follows replaces it, or delete that object from the bucket"),
        "{text}"
    );
    assert!(text.contains(not_refreshed), "{text}");
    // A passphrase and a recipient at once.
    let (_, recipient) = age_identity(a.dir.path(), "id.txt");
    let out = a
        .cio(&[
            "credential",
            "export",
            "--passphrase",
            "--recipient",
            &recipient,
        ])
        .code(2);
    assert!(stderr(&out).contains("a bundle is sealed to a passphrase or to recipients, not both"));
    // Nothing to export.
    let empty = TestEnv::new();
    let out = empty.cio_in(&["credential", "export"], PASSPHRASE).code(1);
    assert!(stderr(&out).starts_with(
        "Fail: Export credentials: there is no complete set to export (of the provider and role asked)\n"
    ));
}

#[test]
fn identity_files_others_can_read_are_refused() {
    let a = cluster_a();
    let (identity, recipient) = age_identity(a.dir.path(), "id.txt");
    let out = a
        .cio(&["credential", "export", "--recipient", &recipient])
        .success();
    let bundle = a.dir.path().join("b.age");
    std::fs::write(&bundle, stdout(&out)).unwrap();
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o640)).unwrap();
    let b = TestEnv::new();
    let out = b
        .cio(&[
            "credential",
            "import",
            "-i",
            identity.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ])
        .code(1);
    let id = identity.display();
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Import credentials: identity file {id} may be read by others (mode 640)\nHint: nothing was read; run 'chmod 600 {id}' (as ssh demands of private keys), then try again\n"
        )
    );
    assert!(!b.store().exists());
    // A bundle sealed to recipients without --identity.
    let out = b
        .cio(&["credential", "import", bundle.to_str().unwrap()])
        .code(2);
    assert!(stderr(&out).contains("this bundle is sealed to recipients, not to a passphrase\nHint: give the matching private key with --identity FILE"));
}

#[test]
fn newer_different_values_are_named_and_kept_unless_forced() {
    let a = cluster_a();
    let bundle = a.dir.path().join("a.age");
    export_passphrase(&a, &bundle);
    let b = TestEnv::new();
    b.create("cio_minio_alt_secret_key", "b-changed-it-later");
    b.create("cio_minio_alt_access_key", ACCESS);
    let before = b.snapshot_files();
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
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Import credentials: the store holds newer, different values for cio_minio_alt_secret_key\nHint: nothing was written; compare with 'cio credential history cio_minio_alt_secret_key', then add --force to replace them (their values stay in the history)\n"
    );
    assert_eq!(
        row(&stdout(&out), "cio_minio_alt_access_key")[3],
        "unchanged"
    );
    assert_eq!(
        row(&stdout(&out), "cio_minio_alt_secret_key")[3],
        "newer in store"
    );
    assert_eq!(b.snapshot_files(), before);
    b.cio_in(
        &[
            "credential",
            "import",
            "--as-alternate",
            "--force",
            bundle.to_str().unwrap(),
        ],
        PASSPHRASE,
    )
    .success();
    assert_eq!(b.reveal("cio_minio_alt_secret_key"), SECRET);
    let out = b
        .cio(&["credential", "history", "cio_minio_alt_secret_key"])
        .success();
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
}

#[test]
fn history_bundles_carry_every_version() {
    let a = cluster_a();
    a.create("cio_minio_secret_key", "second-secret-value");
    a.create("cio_minio_secret_key", SECRET);
    let out = a
        .cio_in(&["credential", "export", "--history"], PASSPHRASE)
        .success();
    let bundle = a.dir.path().join("h.age");
    std::fs::write(&bundle, stdout(&out)).unwrap();
    let b = TestEnv::new();
    b.cio_in(
        &["credential", "import", bundle.to_str().unwrap()],
        PASSPHRASE,
    )
    .success();
    let out = b
        .cio(&["credential", "history", "cio_minio_secret_key", "--json"])
        .success();
    let history: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        3,
        "{history}"
    );
    assert_eq!(b.reveal("cio_minio_secret_key"), SECRET);
}

#[test]
fn the_alternate_set_is_restore_only() {
    let b = TestEnv::new();
    b.minio_set("_alt", REPO, ACCESS, SECRET, PASSWORD);
    let out = b
        .cio(&[
            "credential",
            "exec",
            "--alternate",
            "--",
            "restic",
            "--no-cache",
            "-o",
            "s3.region=x",
            "backup",
            "/etc/hostname",
        ])
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Run with credentials: 'restic backup' refused with the alternate set: it adds a snapshot and data, in a repository that belongs to another cluster\nHint: the alternate set is for restoring; nothing was run. If you mean to change the other cluster's repository, add --allow-write (cio credential exec --alternate --allow-write -- restic ...)\n"
    );
    for line in [
        &["restic", "key", "passwd"][..],
        &["restic", "prune"],
        &["restic", "unlock", "--remove-all"],
        &["restic", "forget", "--keep-last", "1"],
    ] {
        let mut args = vec!["credential", "exec", "--alternate", "--"];
        args.extend_from_slice(line);
        let out = b.cio(&args).code(1);
        assert!(stderr(&out).contains("refused with the alternate set"));
    }
    // Another program is not read: cio cannot see what a script runs.
    let out = b
        .cio(&[
            "credential",
            "exec",
            "--alternate",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .code(7);
    assert!(stderr(&out).is_empty());
}

/// A password stored with white space kept (`create --allow-whitespace`: another cluster's
/// may hold some) comes back from its own bundle, asked for the same way.
#[test]
fn a_password_kept_with_white_space_imports_from_its_bundle() {
    let a = TestEnv::new();
    a.minio_set("", REPO, ACCESS, SECRET, PASSWORD);
    let spaced = " other cluster password ";
    a.cio_in(
        &[
            "credential",
            "create",
            "cio_minio_backup_password",
            "--allow-whitespace",
        ],
        spaced,
    )
    .success();
    let (identity, recipient) = age_identity(a.dir.path(), "id.txt");
    let bundle = a.dir.path().join("spaced.age");
    a.cio(&[
        "credential",
        "export",
        "--recipient",
        &recipient,
        "-o",
        bundle.to_str().unwrap(),
    ])
    .success();
    let b = TestEnv::new();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "credential",
            "import",
            "--as-alternate",
            "--identity",
            identity.to_str().unwrap(),
            bundle.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        b.cio(&args)
    };
    let out = import(&[]).code(1);
    assert!(
        stderr(&out).contains("run the command again with --allow-whitespace"),
        "{}",
        stderr(&out)
    );
    assert!(!b.store().exists(), "a refused import wrote nothing");
    import(&["--allow-whitespace"]).success();
    assert_eq!(b.reveal("cio_minio_alt_backup_password"), spaced);
}

#[test]
fn export_force_replaces_only_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let a = cluster_a();
    let dir = a.dir.path();
    // A symbolic link (to a file that stays as it was), a FIFO and a device node (a copy
    // of /dev/full: what the rename replaced on a test machine).
    let kept = dir.join("kept.txt");
    std::fs::write(&kept, "kept\n").unwrap();
    let link = dir.join("link.age");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    let fifo = dir.join("fifo.age");
    let device = dir.join("odev");
    for (tool, args) in [
        ("mkfifo", vec![fifo.to_str().unwrap()]),
        (
            "mknod",
            vec!["-m", "666", device.to_str().unwrap(), "c", "1", "7"],
        ),
    ] {
        let status = Command::new(tool).args(&args).status().unwrap();
        assert!(status.success(), "{tool} (the tests run as root)");
    }
    for (path, kind) in [
        (&link, "a symbolic link"),
        (&fifo, "a FIFO (named pipe)"),
        (&device, "a device"),
    ] {
        let p = path.to_str().unwrap();
        let (_, recipient) = age_identity(dir, "id.txt");
        let out = a
            .cio(&[
                "credential",
                "export",
                "--recipient",
                &recipient,
                "-o",
                p,
                "--force",
            ])
            .code(1);
        assert_eq!(
            stderr(&out),
            format!(
                "Fail: Export credentials: {p} cannot be replaced: it is {kind}, not a regular file\nHint: nothing was written or changed; --force replaces only a regular file: give --output the path of a regular file, or of none yet (or leave --output out: standard output)\n"
            )
        );
        std::fs::remove_file(dir.join("id.txt")).unwrap();
    }
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "kept\n");
    assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
    assert!(
        device
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let left = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".cio-bundle-")
        })
        .count();
    assert_eq!(left, 0, "no temporary file is left behind");
}

/// A bundle never replaces a file cio works from: the key file (every value would be lost
/// with it), the store, cio.toml, nor another name of one of them; --force or not.
#[test]
fn export_never_replaces_cios_own_files() {
    let a = cluster_a();
    let (_, recipient) = age_identity(a.dir.path(), "id.txt");
    let linked = a.dir.path().join("key-link");
    std::fs::hard_link(a.key(), &linked).unwrap();
    let before = a.snapshot_files();
    let config_before = std::fs::read(a.config()).unwrap();
    for (path, what) in [
        (a.key(), "key file"),
        (a.store(), "credential store"),
        (a.config(), "configuration file"),
        (linked.clone(), "key file"),
    ] {
        let p = path.to_str().unwrap();
        for force in [&[][..], &["--force"]] {
            let mut args = vec!["credential", "export", "--recipient", &recipient, "-o", p];
            args.extend_from_slice(force);
            let out = a.cio(&args).code(1);
            assert_eq!(
                stderr(&out),
                format!(
                    "Fail: Export credentials: {p} is cio's {what}: a bundle never replaces it\nHint: nothing was written or changed; give --output a new file's path (or leave it out: standard output)\n"
                )
            );
        }
    }
    assert_eq!(a.snapshot_files(), before, "nothing was changed");
    assert_eq!(std::fs::read(a.config()).unwrap(), config_before);
    a.cio(&["credential", "list"]).success();
}

#[test]
fn a_passphrase_nobody_can_type_again_is_refused_on_export_and_import() {
    let a = cluster_a();
    let path = a.dir.path().join("out.age");
    let p = path.to_str().unwrap();
    let untypable = "Hint: nothing was written; type the passphrase at the prompt, or pipe it as one line with at most one newline after it (printf '%s\\n' \"$PASSPHRASE\"), without white space at either end\n";
    for (input, why) in [
        ("twelve-chars-ok\n\n", "holds a line break"),
        ("short12      \n", "starts or ends with white space"),
        ("            \n", "starts or ends with white space"),
        ("a bell \u{7} in it\n", "holds a control character"),
    ] {
        let out = a
            .cio_in(&["credential", "export", "--output", p], input)
            .code(1);
        assert_eq!(
            stderr(&out),
            format!(
                "Fail: Export credentials: the passphrase {why}; a passphrase is one line that can be typed again\n{untypable}"
            ),
            "{input:?}"
        );
        assert!(!path.exists());
    }
    // Runs of white space inside count once: "sh    12" is 5 characters typed.
    let out = a
        .cio_in(&["credential", "export", "--output", p], "sh    12\n")
        .code(1);
    assert!(
        stderr(&out).starts_with(
            "Fail: Export credentials: the passphrase is 5 characters; a recovery bundle needs at least 8"
        ),
        "{}",
        stderr(&out)
    );
    // On a terminal, a passphrase too short is refused at once, not asked for again.
    // (`timeout`: a second prompt, which would wait for an answer, ends the test.)
    let line = format!(
        "CIO_STORE={} CIO_KEY_FILE={} CIO_CONFIG={} timeout --foreground 20 {} credential export --output {p}",
        a.store().display(),
        a.key().display(),
        a.config().display(),
        assert_cmd::cargo::cargo_bin("cio").display(),
    );
    let (screen, ok) = on_terminal(&line, "Bundle passphrase", &["seven77"]);
    assert!(!ok, "{screen}");
    assert_eq!(screen.matches("Bundle passphrase").count(), 1, "{screen}");
    assert!(
        screen.contains("the passphrase is 7 characters; a recovery bundle needs at least 8"),
        "{screen}"
    );
    assert!(!path.exists());

    // Import: a piped passphrase with a line break left in is named as such, not as a wrong
    // passphrase, and nothing is written.
    export_passphrase(&a, &path);
    let b = TestEnv::new();
    let out = b
        .cio_in(&["credential", "import", p], format!("{PASSPHRASE}\n\n"))
        .code(1);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: Import credentials: the passphrase holds a line break; a passphrase is one line that can be typed again\n{untypable}"
        )
    );
    assert!(!b.store().exists(), "nothing was written");
    b.cio_in(&["credential", "import", p], format!("{PASSPHRASE}\n"))
        .success();
}

#[test]
fn export_to_dash_is_standard_output_and_recipients_files_must_be_readable() {
    let a = cluster_a();
    let (identity, recipient) = age_identity(a.dir.path(), "id.txt");
    let out = a
        .cio(&["credential", "export", "--recipient", &recipient, "-o", "-"])
        .success();
    let bundle = stdout(&out);
    assert!(
        bundle.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{bundle}"
    );
    assert!(!a.dir.path().join("-").exists(), "no file named -");
    // What stdout held opens with the real age command.
    let mut age = Command::new("age")
        .args(["-d", "-i", identity.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin
        .take()
        .unwrap()
        .write_all(bundle.as_bytes())
        .unwrap();
    let opened = age.wait_with_output().unwrap();
    assert!(opened.status.success());
    assert!(String::from_utf8_lossy(&opened.stdout).contains("cio_minio_backup_repo"));

    let out = a
        .cio(&["credential", "export", "--recipients-file", "/nonexistent"])
        .code(1);
    assert_eq!(
        stderr(&out),
        "Fail: Export credentials: recipients file /nonexistent cannot be read: No such file or directory (os error 2)\nHint: nothing was written; check the path given to --recipients-file: /nonexistent must exist and this user may read it (one recipient per line, as age -R reads)\n"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn an_empty_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(dir.path(), "id.txt");
    // Sealed by the real age command: a well-formed bundle that holds nothing.
    let plain = r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"someone","credentials":[]}"#;
    let sealed = dir.path().join("empty.age");
    let mut age = Command::new("age")
        .args(["-a", "-r", &recipient, "-o", sealed.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin
        .take()
        .unwrap()
        .write_all(plain.as_bytes())
        .unwrap();
    assert!(age.wait().unwrap().success());
    let b = TestEnv::new();
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["credential", "import", "-i", identity.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(sealed.to_str().unwrap());
        let out = b.cio(&args).code(1);
        assert_eq!(
            stderr(&out),
            "Fail: Import credentials: the bundle opens, but holds no credential\nHint: nothing was written; import a bundle 'cio credential export' made on the lost cluster (it holds every complete set)\n"
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(!b.store().exists(), "nothing was written");
}

/// A bundle whose credentials hold no value to import (the newest version a removal, in a
/// history bundle; or a version without its value) is refused as an empty one is: it
/// imported nothing, to no set ("to the  sets"), and said so as a success.
#[test]
fn a_bundle_with_nothing_to_import_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_identity(dir.path(), "id.txt");
    let removed = r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"someone","history":true,"credentials":[{"name":"cio_minio_backup_password","versions":[{"version":1,"action":"create","written_at_ms":1,"value":"a removed password"},{"version":2,"action":"remove","written_at_ms":2}]}]}"#;
    let no_value = r#"{"format":"cio-recovery-bundle","format_version":1,"created_at_ms":1,"created_by":"someone","credentials":[{"name":"cio_minio_secret_key","versions":[{"version":3,"action":"update","written_at_ms":1}]}]}"#;
    let b = TestEnv::new();
    for (i, plain) in [removed, no_value].into_iter().enumerate() {
        let sealed = dir.path().join(format!("nothing-{i}.age"));
        let mut age = Command::new("age")
            .args(["-a", "-r", &recipient, "-o", sealed.to_str().unwrap()])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        age.stdin
            .take()
            .unwrap()
            .write_all(plain.as_bytes())
            .unwrap();
        assert!(age.wait().unwrap().success());
        for extra in [&[][..], &["--as-alternate"][..], &["--dry-run"][..]] {
            let mut args = vec!["credential", "import", "-i", identity.to_str().unwrap()];
            args.extend_from_slice(extra);
            args.push(sealed.to_str().unwrap());
            let out = b.cio(&args).code(1);
            assert_eq!(
                stderr(&out),
                "Fail: Import credentials: the bundle opens, but holds no credential to import: the newest version of each is a removal or has no value\nHint: nothing was written; import a bundle 'cio credential export' made on the lost cluster (it holds every complete set)\n",
                "{plain} {extra:?}"
            );
            assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        }
    }
    assert!(!b.store().exists(), "nothing was written");
}

/// A `--json` document names a path that is not UTF-8 exactly, the byte as `\xFF` (as every
/// message and `rekey`'s key file do; U+FFFD would name another file), and the command that
/// wrote the file exits 0 with its document.
#[test]
fn export_json_names_an_output_path_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let a = cluster_a();
    let path = a.dir.path().join(std::ffi::OsStr::from_bytes(b"b\xff.age"));
    let out = a
        .cmd()
        .args(["credential", "export", "--json", "--output"])
        .arg(&path)
        .write_stdin(PASSPHRASE)
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let shown = format!("{}/b\\xFF.age", a.dir.path().display());
    assert_eq!(doc["output"], shown.as_str());
    assert_eq!(doc["credentials"], 4);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n")
    );
}

/// `export`, `import` and `import --dry-run` name sets in the shared vocabulary of
/// docs/JSON.md: `{"provider": ..., "role": ...}`.
#[test]
fn export_and_import_json_documents_name_sets_by_provider_and_role() {
    let a = cluster_a();
    let bundle = a.dir.path().join("a.age");
    let out = a
        .cio_in(
            &[
                "credential",
                "export",
                "--json",
                "-o",
                bundle.to_str().unwrap(),
            ],
            PASSPHRASE,
        )
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"output": bundle.to_str().unwrap(), "credentials": 4, "history": false,
                           "sets": [{"provider": "minio", "role": "primary"}]})
    );
    let out = a
        .cio_in(&["credential", "export", "--json"], PASSPHRASE)
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc["sets"],
        serde_json::json!([{"provider": "minio", "role": "primary"}])
    );

    let b = TestEnv::new();
    let p = bundle.to_str().unwrap();
    let out = b
        .cio_in(
            &[
                "credential",
                "import",
                "--dry-run",
                "--json",
                "--as-alternate",
                p,
            ],
            PASSPHRASE,
        )
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(
        doc["credentials"][0],
        serde_json::json!({"name": "cio_minio_alt_backup_repo", "from": "cio_minio_backup_repo",
                           "value": REPO, "versions": 1, "outcome": "create"})
    );
    let out = b
        .cio_in(
            &["credential", "import", "--json", "--as-alternate", p],
            PASSPHRASE,
        )
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"written": 4, "unchanged": 0,
                           "sets": [{"provider": "minio", "role": "alternate"}]})
    );
}

/// The review's finding: `printf '%s\n' "$PASSPHRASE" | cio credential import /dev/stdin`
/// said the bundle was damaged ("it is cut short") and sent to an intact copy; the bundle
/// and its passphrase shared standard input. A FILE that is standard input (`/dev/stdin`,
/// `/proc/self/fd/0`, `/dev/fd/0`, the very file redirected with `<`) is read as `-` is,
/// and what it carries when it is no bundle is said to be that. Nothing is written.
#[test]
fn a_bundle_file_that_is_standard_input_is_read_as_dash() {
    let a = cluster_a();
    let bundle = a.dir.path().join("paper.age");
    export_passphrase(&a, &bundle);
    let b = TestEnv::new();
    b.create(
        "cio_aws_backup_password",
        "an unrelated repository password",
    );
    let before = b.snapshot_files();
    let shared = "Fail: Import credentials: the bundle is read from standard input (FILE is standard input), and what it carries is not a bundle: standard input carries one thing, the bundle or its passphrase\n\
         Hint: nothing was written; give the bundle as a FILE of its own and pipe the passphrase (printf '%s\\n' \"$PASSPHRASE\" | cio credential import BUNDLE), or pipe the bundle and type the passphrase on a terminal\n";
    for file in ["/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"] {
        for dry in [&["--dry-run"][..], &[]] {
            let mut args = vec!["credential", "import"];
            args.extend_from_slice(dry);
            args.push(file);
            let out = b.cio_in(&args, format!("{PASSPHRASE}\n")).code(1);
            assert_eq!(stderr(&out), shared, "{args:?}");
            assert!(!stderr(&out).contains(PASSPHRASE));
        }
    }
    // The bundle itself on standard input, named by its path or /dev/stdin: it is read, and
    // needs a passphrase standard input cannot also carry.
    let needs = "Fail: Import credentials: the bundle needs its passphrase, and standard input already carries the bundle\n\
         Hint: nothing was written; give the bundle as a FILE and the passphrase on standard input, or run on a terminal\n";
    // Without a terminal to ask on (`setsid`: a session of its own, whatever runs the tests).
    for file in ["/dev/stdin", bundle.to_str().unwrap()] {
        let out = std::process::Command::new("setsid")
            .arg(assert_cmd::cargo::cargo_bin("cio"))
            .env_clear()
            .env("HOME", b.home())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CIO_STORE", b.store())
            .env("CIO_KEY_FILE", b.key())
            .env("CIO_CONFIG", b.config())
            .args(["credential", "import", file])
            .stdin(std::fs::File::open(&bundle).unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), needs, "{file}");
    }
    assert!(b.snapshot_files() == before, "a refused import wrote");
    // On a terminal, the passphrase is asked there (session 12's review: the hint said so,
    // but cio refused without asking).
    let line = format!(
        "CIO_STORE={} CIO_KEY_FILE={} CIO_CONFIG={} timeout --foreground 20 {} credential import --dry-run - < {}",
        b.store().display(),
        b.key().display(),
        b.config().display(),
        assert_cmd::cargo::cargo_bin("cio").display(),
        bundle.display(),
    );
    let (screen, ok) = on_terminal(&line, "Bundle passphrase", &[PASSPHRASE]);
    assert!(ok, "{screen}");
    assert!(screen.contains("dry run: the bundle opens"), "{screen}");
    assert!(!screen.contains(PASSPHRASE), "{screen}");
    assert!(b.snapshot_files() == before, "a dry run wrote");
    // A bundle file of its own still takes the passphrase from standard input.
    b.cio_in(
        &[
            "credential",
            "import",
            "--dry-run",
            bundle.to_str().unwrap(),
        ],
        format!("{PASSPHRASE}\n"),
    )
    .success();
}

/// An imported value keeps its time on the lost cluster: the paper bundle imported first
/// does not make the escrow bundle a later rotation refreshed look older (it was refused as
/// "newer in store", and only --force took it), and the list shows each value's own age.
#[test]
fn an_imported_value_keeps_its_time_on_the_cluster_that_wrote_it() {
    let a = cluster_a();
    let dir = a.dir.path();
    let (identity, recipient) = age_identity(dir, "recovery.key");
    let identity = identity.to_str().unwrap();
    let export = |file: &str| {
        let path = dir.join(file);
        a.cio(&[
            "credential",
            "export",
            "--recipient",
            &recipient,
            "--output",
            path.to_str().unwrap(),
        ])
        .success();
        path
    };
    let paper = export("paper.age");
    a.create("cio_minio_secret_key", "cluster-a-secret-key-rotated");
    let escrow = export("escrow.age");
    let updated = |env: &TestEnv, name: &str| {
        let listed: serde_json::Value = serde_json::from_str(&stdout(
            &env.cio(&["credential", "list", "--json"]).success(),
        ))
        .unwrap();
        listed["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["updated"].as_str().unwrap().to_string())
            .unwrap()
    };

    let b = TestEnv::new();
    let import = |bundle: &std::path::Path| {
        b.cio(&[
            "credential",
            "import",
            "--as-alternate",
            "-i",
            identity,
            bundle.to_str().unwrap(),
        ])
    };
    import(&paper).success();
    let out = import(&escrow).success();
    assert!(
        stdout(&out).ends_with(
            "Succeed: Import credential: 1 version written, 3 unchanged, to the minio alternate set (earlier values stay in each credential's history)\n"
        ),
        "{}",
        stdout(&out)
    );
    for field in ["backup_repo", "access_key", "secret_key", "backup_password"] {
        assert_eq!(
            updated(&b, &format!("cio_minio_alt_{field}")),
            updated(&a, &format!("cio_minio_{field}")),
            "{field}"
        );
    }
    assert_eq!(
        stdout(
            &b.cio(&["credential", "show", "cio_minio_alt_secret_key", "--reveal"])
                .success()
        ),
        "cluster-a-secret-key-rotated\n"
    );
    // The paper bundle is now the older one, and is refused as such.
    let before = b.snapshot_files();
    let out = import(&paper).code(1);
    assert!(
        stderr(&out).contains(
            "Fail: Import credentials: the store holds newer, different values for cio_minio_alt_secret_key\n"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.snapshot_files(), before, "nothing was written");
}
