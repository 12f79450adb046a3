use std::cell::Cell;

use std::fs;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| OsString::from(v))
    }
}

/// Never called: the settings must not ask.
fn no_prompt() -> Option<std::io::Result<SecretValue>> {
    panic!("asked for a password")
}

#[test]
fn config_path_root_user_and_override() {
    assert_eq!(
        config_path(true, env_of(&[("HOME", "/root")])),
        (PathBuf::from("/etc/cio/cio.toml"), false)
    );
    assert_eq!(
        config_path(false, env_of(&[("HOME", "/home/ann")])),
        (PathBuf::from("/home/ann/.config/cio/cio.toml"), false)
    );
    assert_eq!(
        config_path(
            false,
            env_of(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/cfg")])
        ),
        (PathBuf::from("/cfg/cio/cio.toml"), false)
    );
    assert_eq!(
        config_path(true, env_of(&[("CIO_CONFIG", "/tmp/x.toml")])),
        (PathBuf::from("/tmp/x.toml"), true)
    );
}

#[test]
fn parse_known_keys_and_relative_paths() {
    let path = Path::new("/etc/cio/cio.toml");
    let c = parse(
        path,
        "store = \"etcds://10.0.0.1:2379,10.0.0.2:2379\"\nkey_file = \"credential.key\"\n\
         etcd_cacert = \"/etc/etcd/ca.pem\"\netcd_cert = \"pki/node.pem\"\netcd_key = \"pki/node-key.pem\"\n",
    )
    .unwrap();
    assert_eq!(
        c.store.as_deref(),
        Some("etcds://10.0.0.1:2379,10.0.0.2:2379")
    );
    assert_eq!(c.key_file, Some(PathBuf::from("/etc/cio/credential.key")));
    assert_eq!(c.etcd_cacert, Some(PathBuf::from("/etc/etcd/ca.pem")));
    assert_eq!(c.etcd_cert, Some(PathBuf::from("/etc/cio/pki/node.pem")));
    let c = parse(path, "store = \"data/credentials.db\"\n").unwrap();
    assert_eq!(c.store.as_deref(), Some("/etc/cio/data/credentials.db"));
    let empty = parse(path, "").unwrap();
    assert!(empty.store.is_none() && empty.key_file.is_none() && empty.etcd_key.is_none());
}

/// A mistyped URL in the file stays as written (and is refused when the store is opened):
/// made relative to the file's folder it would have become an absolute path, a file.
#[test]
fn a_mistyped_url_in_the_file_is_not_made_a_path() {
    let path = Path::new("/etc/cio/cio.toml");
    for text in [
        "http:/CANARY-host:2379",
        "etcd//CANARY-host",
        "etcd:CANARY-host",
    ] {
        let c = parse(path, &format!("store = \"{text}\"\n")).unwrap();
        assert_eq!(c.store.as_deref(), Some(text));
    }
    let c = parse(path, "store = \"./a:b.db\"\n").unwrap();
    assert_eq!(c.store.as_deref(), Some("/etc/cio/./a:b.db"));
}

#[test]
fn unknown_keys_and_bad_types_name_the_file() {
    let path = Path::new("/etc/cio/cio.toml");
    let err = parse(path, "key_file = \"/k\"\nstor = \"/x\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration file /etc/cio/cio.toml is not valid: line 2: a setting cio does not know"
    );
    assert!(err.hint().contains("key_file"));
    let err = parse(path, "key_file = 3\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "configuration file /etc/cio/cio.toml is not valid: line 1: a value of the wrong type for key_file"
    );
    // What the file holds is never quoted back: a value, or a key that is a pasted secret.
    for text in [
        "max_key_age_days = \"S3cret-Canary-1\"\n",
        "S3cret-Canary-1 = 1\n",
        "store = \"a\"\nstore = \"S3cret-Canary-1\"\n",
        "S3cret-Canary-1\n",
        "recovery_recipients = [\"age1\", 7, \"S3cret-Canary-1\"]\n",
    ] {
        let err = parse(path, text).unwrap_err();
        let said = format!("{err} {}", err.hint());
        assert!(!said.contains("Canary"), "{said}");
        assert!(said.contains("line "), "{said}");
    }
    let err = parse(path, "store = \n").unwrap_err();
    assert!(err.to_string().contains("/etc/cio/cio.toml"));
    // The login is never a key of the file.
    let err = parse(path, "login_env = \"x\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }));
}

#[test]
fn load_missing_default_is_empty_but_required_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cio.toml");
    assert!(load(&path, false).unwrap().store.is_none());
    let missing = load(&path, true).unwrap_err();
    assert!(matches!(missing, ConfigError::Missing { .. }));
    assert_eq!(
        missing.to_string(),
        format!("configuration file {} does not exist", path.display())
    );
    assert_eq!(
        missing.hint(),
        "check the path CIO_CONFIG names, or unset it: cio then reads its default file (/etc/cio/cio.toml as root) if there is one, and needs none"
    );
    fs::write(&path, "store = \"etcd://a:1\"\n").unwrap();
    assert_eq!(
        load(&path, true).unwrap().store.as_deref(),
        Some("etcd://a:1")
    );
}

#[test]
fn precedence_flag_env_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cio.toml");
    let config = file.to_str().unwrap();
    let resolve = |flags: Settings, env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("HOME", "/home/ann"));
        flags.resolve_with(env_of(&env), true).unwrap()
    };

    let s = resolve(Settings::default(), &[]);
    assert_eq!(s.store.as_deref(), Some("/var/lib/cio/credentials.db"));
    assert_eq!(s.key_file, Some(PathBuf::from("/etc/cio/credential.key")));
    assert_eq!(s.etcd_cacert, None);

    fs::write(
        &file,
        "store = \"etcd://file:2379\"\nkey_file = \"/file/key\"\netcd_cacert = \"/file/ca.pem\"\n",
    )
    .unwrap();
    let s = resolve(Settings::default(), &[("CIO_CONFIG", config)]);
    assert_eq!(s.store.as_deref(), Some("etcd://file:2379"));
    assert_eq!(s.key_file, Some(PathBuf::from("/file/key")));
    assert_eq!(s.etcd_cacert, Some(PathBuf::from("/file/ca.pem")));
    // A CA file with an etcd:// store would be ignored (and the login sent in clear).
    assert!(matches!(
        s.open(&no_prompt),
        Err(Error::Config(ConfigError::TlsFilesWithPlainEtcd { .. }))
    ));
    fs::write(
        &file,
        "store = \"etcd://file:2379\"\nkey_file = \"/file/key\"\n",
    )
    .unwrap();
    let s = resolve(Settings::default(), &[("CIO_CONFIG", config)]);
    let store = s.open(&no_prompt).unwrap();
    assert_eq!(store.location(), "etcd://file:2379/cio/credentials");
    assert_eq!(store.key_file(), Path::new("/file/key"));

    let env = [
        ("CIO_CONFIG", config),
        ("CIO_STORE", "/env/store.db"),
        ("CIO_KEY_FILE", ""),
        ("CIO_ETCD_CACERT", "/env/ca.pem"),
    ];
    let s = resolve(Settings::default(), &env);
    assert_eq!(s.store.as_deref(), Some("/env/store.db"));
    assert_eq!(
        s.key_file,
        Some(PathBuf::from("/file/key")),
        "an empty variable is unset"
    );
    assert_eq!(s.etcd_cacert, Some(PathBuf::from("/env/ca.pem")));

    let flags = Settings {
        store: Some("etcds://flag:2379".into()),
        key_file: Some("/flag/key".into()),
        etcd_key: Some("/flag/k.pem".into()),
        ..Settings::default()
    };
    let s = resolve(flags, &env);
    assert_eq!(s.store.as_deref(), Some("etcds://flag:2379"));
    assert_eq!(s.key_file, Some(PathBuf::from("/flag/key")));
    assert_eq!(s.etcd_key, Some(PathBuf::from("/flag/k.pem")));
    assert_eq!(s.etcd_cacert, Some(PathBuf::from("/env/ca.pem")));
}

#[test]
fn a_bad_configuration_file_is_an_error_of_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cio.toml");
    fs::write(&file, "stor = \"/x\"\n").unwrap();
    let env = env_of(&[("CIO_CONFIG", file.to_str().unwrap())]);
    let err = Settings::default().resolve_with(env, false).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn unresolved_settings_open_nothing() {
    let err = Settings::default().open(&no_prompt).unwrap_err();
    assert!(matches!(err, Error::Spec(_)), "{err:?}");
}

/// The bug this fixes: `CIO_ETCD_USER` made every command ask for an etcd password, even
/// one whose store is a file.
#[test]
fn a_file_store_never_needs_the_etcd_login() {
    let env = env_of(&[("HOME", "/home/ann"), ("CIO_ETCD_USER", "cio")]);
    let s = Settings {
        store: Some("/tmp/none/credentials.db".into()),
        ..Settings::default()
    }
    .resolve_with(env, false)
    .unwrap();
    let store = s.open(&no_prompt).unwrap();
    assert_eq!(store.location(), "/tmp/none/credentials.db");
}

/// The etcd password is asked for once, however many etcd stores are opened (a migration
/// opens two), and only when the environment lacks it.
#[test]
fn the_etcd_login_is_asked_for_once() {
    let env = env_of(&[("HOME", "/home/ann"), ("CIO_ETCD_USER", "cio")]);
    let s = Settings {
        store: Some("etcd://127.0.0.1:1".into()),
        ..Settings::default()
    }
    .resolve_with(env, false)
    .unwrap();
    let asked = Cell::new(0);
    let ask = || {
        asked.set(asked.get() + 1);
        Some(Ok(SecretValue::new("typed-password".into())))
    };
    s.open(&ask).unwrap();
    s.open_store("etcd://127.0.0.1:2/other", &ask, false)
        .unwrap();
    assert_eq!(asked.get(), 1);

    let with_password = env_of(&[
        ("HOME", "/home/ann"),
        ("CIO_ETCD_USER", "cio"),
        ("CIO_ETCD_PASSWORD", "s3cret-pw"),
    ]);
    let s = Settings {
        store: Some("etcd://127.0.0.1:1".into()),
        ..Settings::default()
    }
    .resolve_with(with_password, false)
    .unwrap();
    let login = s.etcd_login(&no_prompt).unwrap().unwrap();
    assert_eq!(login.user, "cio");
    assert_eq!(login.password.expose(), "s3cret-pw");
    assert!(!format!("{s:?}").contains("s3cret"));
}

#[test]
fn a_user_without_a_password_and_no_prompt_is_an_error() {
    let env = env_of(&[("HOME", "/home/ann"), ("CIO_ETCD_USER", "cio")]);
    let s = Settings {
        store: Some("etcd://127.0.0.1:1".into()),
        ..Settings::default()
    }
    .resolve_with(env, false)
    .unwrap();
    let err = s.open(&|| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is not"
    );
    assert_eq!(
        err.hint(),
        "export CIO_ETCD_PASSWORD with the etcd user's password too, or run the command on a terminal to be asked for it; nothing was sent to etcd"
    );
    assert_eq!(err.kind(), crate::ErrorKind::Usage);
}

#[test]
fn a_user_with_an_empty_password_is_told_apart_from_a_missing_one() {
    let env = env_of(&[
        ("HOME", "/home/ann"),
        ("CIO_ETCD_USER", "cio"),
        ("CIO_ETCD_PASSWORD", ""),
    ]);
    let s = Settings {
        store: Some("etcd://127.0.0.1:1".into()),
        ..Settings::default()
    }
    .resolve_with(env, false)
    .unwrap();
    // Not asked for either: the variable is set.
    let err = s.open(&|| panic!("asked for a password")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is empty"
    );
    assert_eq!(
        err.hint(),
        "put the etcd user's password in CIO_ETCD_PASSWORD, or unset CIO_ETCD_PASSWORD and run the command on a terminal to be asked for it; nothing was sent to etcd"
    );
    assert_eq!(err.kind(), crate::ErrorKind::Usage);
}

#[test]
fn recovery_recipients_are_a_list_of_strings_in_the_file() {
    let path = Path::new("/etc/cio/cio.toml");
    let s = parse(
        path,
        "recovery_recipients = [\"age1abc\", \"ssh-ed25519 AAAA x\"]\n",
    )
    .unwrap();
    assert_eq!(s.recovery_recipients.unwrap().len(), 2);
    let err = parse(path, "recovery_recipients = \"age1abc\"\n").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn a_path_starting_with_a_tilde_is_refused_in_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cio.toml");
    let config = file.to_str().unwrap();
    let refused = |flags: Settings, env: &[(&str, &str)]| {
        let err = flags.resolve_with(env_of(env), false).unwrap_err();
        match err {
            Error::Config(e @ ConfigError::HomeFolder { .. }) => {
                format!("{e}. Hint: {}", e.hint())
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        refused(Settings::default(), &[("CIO_KEY_FILE", "~/credential.key")]),
        "the key file (--key-file, --etcd-* or CIO_*) starts with ~, which only a shell turns into a home folder (a systemd unit, a quoted value or cio.toml does not). Hint: give the whole path, e.g. /root/credential.key instead of ~/credential.key"
    );
    let flags = Settings {
        etcd_cert: Some("~bob/node.pem".into()),
        ..Settings::default()
    };
    assert!(refused(flags, &[]).starts_with("the etcd certificate file (--key-file"));
    fs::write(&file, "etcd_cacert = \"~/ca.pem\"\n").unwrap();
    assert!(
        refused(Settings::default(), &[("CIO_CONFIG", config)])
            .starts_with("the etcd CA file (in cio.toml) starts with ~")
    );
    assert!(
        refused(Settings::default(), &[("CIO_CONFIG", "~/cio.toml")])
            .starts_with("CIO_CONFIG starts with ~")
    );
    // A ~ inside a path is a name like any other.
    fs::write(&file, "key_file = \"keys/~old\"\n").unwrap();
    let s = Settings::default()
        .resolve_with(env_of(&[("CIO_CONFIG", config)]), false)
        .unwrap();
    assert_eq!(s.key_file, Some(dir.path().join("keys/~old")));
}

/// An environment whose values are bytes, some not UTF-8.
fn env_of_bytes(pairs: &[(&str, &[u8])]) -> impl Fn(&str) -> Option<OsString> + use<> {
    use std::os::unix::ffi::OsStrExt;
    let pairs: Vec<(String, OsString)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), std::ffi::OsStr::from_bytes(v).to_os_string()))
        .collect();
    move |k| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    }
}

/// Session 12's finding: a path setting that is not UTF-8 was read lossily (U+FFFD for the
/// byte), so cio made or read another key file than the one named. The key file and the
/// etcd TLS files are now the exact bytes given.
#[test]
fn path_settings_that_are_not_utf8_are_taken_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let env = env_of_bytes(&[
        ("HOME", b"/home/ann"),
        ("CIO_STORE", b"/data/credentials.db"),
        ("CIO_KEY_FILE", b"/etc/cio/k\xff.key"),
        ("CIO_ETCD_CACERT", b"/pki/ca\xfe.pem"),
        ("CIO_ETCD_CERT", b"/pki/node\xff.pem"),
        ("CIO_ETCD_KEY", b"/pki/node\xff-key.pem"),
    ]);
    let s = Settings::default().resolve_with(env, false).unwrap();
    let bytes = |p: &Option<PathBuf>| p.as_ref().unwrap().as_os_str().as_bytes().to_vec();
    assert_eq!(bytes(&s.key_file), b"/etc/cio/k\xff.key");
    assert_eq!(bytes(&s.etcd_cacert), b"/pki/ca\xfe.pem");
    assert_eq!(bytes(&s.etcd_cert), b"/pki/node\xff.pem");
    assert_eq!(bytes(&s.etcd_key), b"/pki/node\xff-key.pem");
}

/// The store location is text (it may be an etcd URL): one that is not UTF-8, given or the
/// default under a HOME that is not, is refused naming where it comes from, never read
/// lossily as another file.
#[test]
fn a_store_location_that_is_not_utf8_is_refused() {
    let refused = |pairs: &[(&str, &[u8])]| match Settings::default()
        .resolve_with(env_of_bytes(pairs), false)
    {
        Err(Error::Config(ConfigError::NotUtf8 { setting })) => setting,
        other => panic!("{pairs:?}: {other:?}"),
    };
    assert_eq!(
        refused(&[("HOME", b"/h"), ("CIO_STORE", b"/data/s\xff.db")]),
        "CIO_STORE"
    );
    assert_eq!(
        refused(&[("HOME", b"/home/\xffnn")]),
        "the default store path (under XDG_DATA_HOME or HOME)"
    );
    // A store set elsewhere does not need the default.
    let env = env_of_bytes(&[("HOME", b"/home/\xffnn"), ("CIO_STORE", b"/s.db")]);
    assert!(Settings::default().resolve_with(env, false).is_ok());
    // cio.toml's relative store, in a folder whose path is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(std::ffi::OsStr::from_bytes(b"cio\xff"));
    fs::create_dir(&folder).unwrap();
    let err = parse(&folder.join("cio.toml"), "store = \"credentials.db\"\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::NotUtf8 { setting } if setting.starts_with("the store path in ")),
        "{err:?}"
    );
}

/// The etcd login is never read lossily (another user, another password): a variable that
/// is not UTF-8 is refused when an etcd store is opened, naming it; a file store needs no
/// login and is not refused for it.
#[test]
fn an_etcd_login_that_is_not_utf8_is_refused_for_an_etcd_store_only() {
    for (user, password, named) in [
        (&b"r\xffot"[..], &b"pw"[..], "CIO_ETCD_USER"),
        (b"root", b"p\xffw", "CIO_ETCD_PASSWORD"),
    ] {
        let pairs: [(&str, &[u8]); 3] = [
            ("HOME", b"/h"),
            ("CIO_ETCD_USER", user),
            ("CIO_ETCD_PASSWORD", password),
        ];
        let file = Settings::default()
            .resolve_with(env_of_bytes(&pairs), false)
            .unwrap();
        assert!(file.open(&no_prompt).is_ok());
        let etcd = Settings {
            store: Some("etcd://127.0.0.1:1".into()),
            ..Settings::default()
        }
        .resolve_with(env_of_bytes(&pairs), false)
        .unwrap();
        match etcd.open(&no_prompt) {
            Err(Error::Config(ConfigError::NotUtf8 { setting })) => assert_eq!(setting, named),
            Err(other) => panic!("{named}: {other:?}"),
            Ok(_) => panic!("{named}: opened"),
        }
    }
}
