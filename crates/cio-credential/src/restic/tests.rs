//! restic.rs against real repositories made by the real restic.
use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::Path;
use std::process::Command;

/// Makes a real repository with `restic init` (password from the environment, never argv).
fn restic_init(dir: &Path, password: &str) {
    restic(dir, password, &["init"]);
}

/// Runs the real restic on the local repository `dir`; secrets in the environment only.
fn restic(dir: &Path, password: &str, args: &[&str]) {
    let restic = testkit::require_binary("restic");
    let out = Command::new(restic)
        .args(args)
        .arg("--repo")
        .arg(dir)
        .env_clear()
        .env("RESTIC_PASSWORD", password)
        .env("HOME", dir.parent().unwrap_or(dir))
        .output()
        .expect("running restic");
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_version_1_repository_with_two_keys_names_the_key_that_opened() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    restic(
        &repo,
        "first password",
        &["init", "--repository-version", "1"],
    );
    let second = tmp.path().join("second");
    std::fs::write(&second, "second password\n").expect("password file");
    let second = second.to_str().expect("UTF-8 path");
    restic(
        &repo,
        "first password",
        &["key", "add", "--new-password-file", second],
    );

    let mut keys: Vec<(String, Vec<u8>)> = std::fs::read_dir(repo.join("keys"))
        .expect("keys/")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("key file"),
            )
        })
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 2);
    let config = std::fs::read(repo.join("config")).expect("config");
    let try_password = |pw: &str| {
        let pw = SecretValue::new(pw.into());
        keys.iter().find_map(|(id, b)| {
            let key = KeyFile::parse(b).expect("a restic key file");
            match key.open(&pw) {
                Ok(master) => Some((id.clone(), master)),
                Err(ResticError::WrongPassword) => None,
                Err(e) => panic!("{e}"),
            }
        })
    };
    let (first_id, master) = try_password("first password").expect("opens");
    let (second_id, master2) = try_password("second password").expect("opens");
    assert_ne!(first_id, second_id);
    let c1 = master.open_config(&config).expect("config");
    let c2 = master2.open_config(&config).expect("config");
    assert_eq!(c1, c2);
    assert_eq!(c1.version, 1);
    assert!(try_password("third password").is_none());
}

fn only_key(repo: &Path) -> (String, Vec<u8>) {
    let entry = std::fs::read_dir(repo.join("keys"))
        .expect("keys/")
        .next()
        .expect("one key file")
        .expect("dir entry");
    (
        entry.file_name().to_string_lossy().into_owned(),
        std::fs::read(entry.path()).expect("reading the key file"),
    )
}

#[test]
fn opens_a_real_repository_with_the_right_password_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    restic_init(&repo, "correct horse battery staple");
    let (id, key_bytes) = only_key(&repo);
    let key = KeyFile::parse(&key_bytes).expect("a restic key file");
    assert_eq!(key.kdf, "scrypt");

    let master = key
        .open(&SecretValue::new("correct horse battery staple".into()))
        .expect("the right password opens the key");
    let config = master
        .open_config(&std::fs::read(repo.join("config")).expect("config"))
        .expect("config opens");
    assert_eq!(config.version, 2);
    assert_eq!(config.id.len(), 64);
    assert!(config.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!format!("{master:?}").contains(char::is_numeric));

    assert_eq!(
        key.open(&SecretValue::new("wrong password".into()))
            .map(|_| ()),
        Err(ResticError::WrongPassword)
    );
    assert!(is_id(&id));
}

#[test]
fn the_ca_handoff_is_readable_through_dev_fd_and_ends_with_the_set_certificate() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    let system = tempfile::NamedTempFile::new().expect("temp file");
    // Only the certificates of the other file are taken, never the rest of it.
    let cert = crate::catalog::cacert::tests::CERT;
    std::fs::write(system.path(), format!("SYSTEM BUNDLE\n{cert}\n")).expect("write");
    let taken = String::from_utf8(crate::restic::certificates::certificates(cert.as_bytes()))
        .expect("PEM is text");
    assert!(!taken.is_empty());
    let handoff = CaHandoff::new(pem, Some(system.path())).expect("memfd");
    assert_eq!(handoff.variable, "SSL_CERT_FILE");
    assert!(handoff.value.starts_with("/dev/fd/"));
    // A child reads it through /dev/fd/N as a new open file, from the start.
    let out = Command::new("cat")
        .arg(&handoff.value)
        .output()
        .expect("cat");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{taken}{pem}\n")
    );
}

#[test]
fn damaged_files_are_told_apart_from_a_wrong_password() {
    assert!(matches!(
        KeyFile::parse(b"not json"),
        Err(ResticError::Malformed { .. })
    ));
    let huge = br#"{"kdf":"scrypt","N":1099511627776,"r":8,"p":1,"salt":"","data":""}"#;
    let key = KeyFile::parse(huge).expect("parses");
    assert!(matches!(
        key.open(&SecretValue::new("x".into())),
        Err(ResticError::Malformed { .. })
    ));
    for damaged in [
        &b"[]"[..],
        b"",
        b"{}",
        b"null",
        br#"{"kdf":"scrypt","created":"garbage"}"#,
    ] {
        assert!(
            matches!(KeyFile::parse(damaged), Err(ResticError::Malformed { .. })),
            "{}",
            String::from_utf8_lossy(damaged)
        );
    }
    // Go's decoding: a member's name in another case, `null` for a string.
    let go =
        br#"{"KDF":"scrypt","created":null,"username":null,"n":2,"R":1,"P":1,"salt":"","data":""}"#;
    let key = KeyFile::parse(go).expect("restic reads it");
    assert_eq!((key.n, key.r, key.p), (2, 1, 1));
    // restic's checks before any MAC: the salt's length, the parameters, the IV.
    let refused = |json: String| {
        KeyFile::parse(json.as_bytes())
            .expect("parses")
            .open(&SecretValue::new("x".into()))
    };
    let salt = BASE64.encode([1u8; 64]);
    let data = BASE64.encode([0u8; 40]);
    assert!(matches!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"{}","data":"{data}"}}"#,
            BASE64.encode([1u8; 63])
        )),
        Err(ResticError::Malformed { .. })
    ));
    assert!(matches!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":1000,"r":8,"p":1,"salt":"{salt}","data":"{data}"}}"#
        )),
        Err(ResticError::Malformed { .. })
    ));
    assert!(matches!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"{salt}","data":"{data}"}}"#
        )),
        Err(ResticError::Malformed { .. })
    ));
    let data = BASE64.encode([1u8; 40]);
    assert_eq!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"{salt}","data":"{data}"}}"#
        ))
        .map(|_| ()),
        Err(ResticError::WrongPassword)
    );
    // simple-scrypt's limits, with its maxInt of 2^31 - 1: a p restic's calibration can
    // raise past 64 is tried (a wrong password here), 128·N·r of 2 GiB is refused.
    assert_eq!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":1024,"r":1,"p":65,"salt":"{salt}","data":"{data}"}}"#
        ))
        .map(|_| ()),
        Err(ResticError::WrongPassword)
    );
    assert!(matches!(
        refused(format!(
            r#"{{"kdf":"scrypt","N":16777216,"r":1,"p":1,"salt":"{salt}","data":"{data}"}}"#
        )),
        Err(ResticError::Malformed { .. })
    ));
}

/// A master key for tests (restic's JSON form).
pub(crate) const MASTER_JSON: &str = r#"{"mac":{"k":"AQEBAQEBAQEBAQEBAQEBAQ==","r":"AgICAgICAgICAgICAgICAg=="},"encrypt":"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="}"#;

/// `plain` sealed under `key` as restic seals (IV, AES-256-CTR, Poly1305-AES).
fn seal(key: &CryptoKey, plain: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).expect("randomness");
    let mut ciphertext = plain.to_vec();
    Aes256Ctr::new(&(*key.encrypt).into(), &iv.into()).apply_keystream(&mut ciphertext);
    let mac = key.mac(&iv, &ciphertext);
    [&iv[..], &ciphertext, &mac].concat()
}

/// A key file that `password` opens to `master_json`, with scrypt parameters cheap enough
/// for unit tests (N = 1024, r = 8, p = 1).
pub(crate) fn cheap_key_file(password: &str, master_json: &str) -> Vec<u8> {
    let salt = [7u8; 64];
    let params = scrypt::Params::new(10, 8, 1).expect("params");
    let mut derived = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived).expect("scrypt");
    let user = CryptoKey::from_parts(&derived[..32], &derived[32..48], &derived[48..64]);
    let data = seal(&user, master_json.as_bytes());
    format!(
        r#"{{"created":"2024-01-01T00:00:00Z","kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"{}","data":"{}"}}"#,
        BASE64.encode(salt),
        BASE64.encode(data)
    )
    .into_bytes()
}

/// `config` JSON sealed under [`MASTER_JSON`].
pub(crate) fn sealed_config(json: &str) -> Vec<u8> {
    let master = MasterKey::from_json(MASTER_JSON.as_bytes()).expect("master key");
    seal(&master.0, json.as_bytes())
}

#[test]
fn config_is_checked_as_restic_load_config_checks_it() {
    let master = MasterKey::from_json(MASTER_JSON.as_bytes()).expect("master key");
    let id = "a".repeat(64);
    let config = |version: &str, pol: &str| {
        master.open_config(&sealed_config(&format!(
            r#"{{"version":{version},"id":"{id}","chunker_polynomial":{pol}}}"#
        )))
    };
    assert_eq!(config("2", r#""357393e1460b7b""#).map(|c| c.version), Ok(2));
    assert_eq!(config("1", r#""357393e1460b7b""#).map(|c| c.version), Ok(1));
    assert_eq!(
        config("3", r#""357393e1460b7b""#),
        Err(ResticError::UnsupportedVersion(3))
    );
    assert_eq!(
        config("0", r#""357393e1460b7b""#),
        Err(ResticError::UnsupportedVersion(0))
    );
    assert_eq!(
        config("null", r#""357393e1460b7b""#),
        Err(ResticError::UnsupportedVersion(0))
    );
    assert_eq!(
        config("2", r#""357393e1460b7a""#),
        Err(ResticError::InvalidPolynomial(0x357393e1460b7a))
    );
    assert!(matches!(
        config("2", "null"),
        Err(ResticError::Malformed { .. })
    ));
    assert!(matches!(
        config("-1", r#""357393e1460b7b""#),
        Err(ResticError::Malformed { .. })
    ));
    // Chunker reads the text between the first and last byte, quoted or not.
    assert_eq!(config("2", "123").map(|c| c.version), Ok(2));
    // Go's zero value passes chunker's check.
    assert!(
        master
            .open_config(&sealed_config(r#"{"version":2}"#))
            .is_ok()
    );
    assert_eq!(
        master.open_config(&[1u8; 40]),
        Err(ResticError::Unauthenticated("config"))
    );
    assert!(matches!(
        master.open_config(&[0u8; 40]),
        Err(ResticError::Malformed { .. })
    ));
}
