//! The node configuration and the places cio is told to use: a `cio.toml` (or a TLS file)
//! others may change is refused, and a store location that is a mistyped URL never becomes
//! a file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::*;

/// `create` with `CIO_CONFIG` at `config`: it must be refused with exit `code` and exactly
/// `expected` on stderr (the test folder said as `[TMP]`), and write nothing.
fn create_refused(env: &TestEnv, config: &Path, code: i32, expected: &str) {
    let before = env.snapshot_files();
    let out = env
        .cmd()
        .env("CIO_CONFIG", config)
        .args(["credential", "create", "cio_aws_access_key"])
        .write_stdin(REF_ACCESS)
        .assert()
        .code(code);
    assert_eq!(redact(env, &stderr(&out)), expected);
    assert_eq!(stdout(&out), "");
    assert!(env.snapshot_files() == before, "the store or key changed");
    assert!(!env.store().exists(), "a store was made");
}

const WHY: &str =
    "its content decides where the credentials go, so only root or this user may change it";

/// The tester's report: a cio.toml others may write (here naming a store of theirs) was
/// trusted. Group- or world-writable, owned by another user, or in a folder others may write:
/// each is refused, naming the file and the commands that fix it.
#[test]
fn a_configuration_file_others_may_change_is_refused() {
    let env = TestEnv::new();
    let theirs = env.dir.path().join("theirs.db");
    let text = format!("store = \"{}\"\n", theirs.display());
    fs::write(env.config(), &text).unwrap();
    let set_mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };

    for (mode, who) in [(0o666, "anyone"), (0o620, "its group"), (0o646, "anyone")] {
        set_mode(&env.config(), mode);
        create_refused(
            &env,
            &env.config(),
            2,
            &format!(
                "Fail: Create credential: configuration file [TMP]/cio.toml is not safe to trust: it may be written by {who} (mode {mode:04o})\n\
                 Hint: run: chmod go-w [TMP]/cio.toml ({WHY})\n"
            ),
        );
    }
    assert!(!theirs.exists());

    // In a folder anyone may write (without the sticky bit /tmp has), the file can be
    // replaced whatever its own mode.
    let open = env.dir.path().join("open");
    fs::create_dir(&open).unwrap();
    let in_open = open.join("cio.toml");
    fs::write(&in_open, &text).unwrap();
    set_mode(&in_open, 0o644);
    set_mode(&open, 0o777);
    create_refused(
        &env,
        &in_open,
        2,
        &format!(
            "Fail: Create credential: configuration file [TMP]/open/cio.toml is not safe to trust: its folder [TMP]/open may be written by anyone (mode 0777)\n\
             Hint: run: chmod go-w [TMP]/open (or move [TMP]/open/cio.toml to a folder only root or this user may write; {WHY})\n"
        ),
    );
    assert!(!theirs.exists());

    // Readable by others is fine: the file holds no secret.
    set_mode(&env.config(), 0o644);
    env.cmd()
        .env_remove("CIO_STORE")
        .args(["credential", "create", "cio_aws_access_key"])
        .write_stdin(REF_ACCESS)
        .assert()
        .success();
    assert!(theirs.is_file(), "the file's store was used");
}

#[test]
fn a_configuration_file_of_another_user_is_refused() {
    let env = TestEnv::new();
    fs::write(env.config(), "max_key_age_days = 30\n").unwrap();
    if std::os::unix::fs::chown(env.config(), Some(65534), None).is_err() {
        // Only root can give a file away; as another user this case cannot be set up.
        assert_ne!(fs::metadata("/proc/self").unwrap().uid(), 0);
        return;
    }
    create_refused(
        &env,
        &env.config(),
        2,
        &format!(
            "Fail: Create credential: configuration file [TMP]/cio.toml is not safe to trust: it belongs to user id 65534, neither root nor this user (id 0)\n\
             Hint: check that [TMP]/cio.toml holds what you expect, then give it to root (or to this user) and keep others from writing it: chown root [TMP]/cio.toml; chmod go-w [TMP]/cio.toml ({WHY})\n"
        ),
    );
}

/// The etcd TLS files decide whom cio trusts with the login and the sealed values: a CA file
/// (or client certificate) others may change is refused before anything is sent.
#[test]
fn etcd_tls_files_others_may_change_are_refused() {
    let env = TestEnv::new();
    let pem = env.dir.path().join("ca.pem");
    fs::write(&pem, "not read\n").unwrap();
    fs::set_permissions(&pem, fs::Permissions::from_mode(0o666)).unwrap();
    for (variable, what) in [
        ("CIO_ETCD_CACERT", "etcd CA certificate file"),
        ("CIO_ETCD_CERT", "etcd client certificate file"),
    ] {
        let out = env
            .cmd()
            .env("CIO_STORE", "etcds://127.0.0.1:9/cio")
            .env(variable, &pem)
            .env("CIO_ETCD_KEY", &pem)
            .args(["credential", "list"])
            .write_stdin("")
            .assert()
            .code(3);
        assert_eq!(
            redact(&env, &stderr(&out)),
            format!(
                "Fail: List credentials: {what} [TMP]/ca.pem is not safe to trust: it may be written by anyone (mode 0666)\n\
                 Hint: run: chmod go-w [TMP]/ca.pem ({WHY})\n"
            ),
            "{variable}"
        );
    }
}

/// `CIO_ETCD_USER` without a password is a configuration error (exit 2, as the user with
/// a ':'), told apart from a password set but empty; neither sends anything to etcd.
#[test]
fn an_etcd_user_with_a_missing_or_empty_password_is_a_usage_error() {
    let env = TestEnv::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("etcd://{}/cio", listener.local_addr().unwrap());
    let cases = [
        (
            None,
            "Fail: Create credential: CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is not\n\
             Hint: export CIO_ETCD_PASSWORD with the etcd user's password too, or run the command on a terminal to be asked for it; nothing was sent to etcd\n",
        ),
        (
            Some(""),
            "Fail: Create credential: CIO_ETCD_USER is set but CIO_ETCD_PASSWORD is empty\n\
             Hint: put the etcd user's password in CIO_ETCD_PASSWORD, or unset CIO_ETCD_PASSWORD and run the command on a terminal to be asked for it; nothing was sent to etcd\n",
        ),
    ];
    for (password, expected) in cases {
        let mut cmd = env.cmd();
        cmd.env("CIO_STORE", &url).env("CIO_ETCD_USER", "backup");
        if let Some(password) = password {
            cmd.env("CIO_ETCD_PASSWORD", password);
        }
        let out = cmd
            .args(["credential", "create", "cio_aws_access_key"])
            .write_stdin(REF_ACCESS)
            .assert()
            .code(2);
        assert_eq!(stderr(&out), expected, "password {password:?}");
        assert_eq!(stdout(&out), "");
    }
    assert!(listener.accept().is_err(), "nothing connected to etcd");
}

/// The tester's report: `CIO_ETCD_USER=bob:S3cret` (etcdctl's `--user user:password` form)
/// was sent to etcd, quoted in its refusal (text and --json) and in the password prompt.
/// Now it is refused before anything is sent or asked, and never repeated.
#[test]
fn an_etcd_user_with_a_colon_is_refused_before_anything_is_sent() {
    let env = TestEnv::new();
    // A listener in etcd's place: nothing may connect to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("etcd://{}/cio", listener.local_addr().unwrap());
    let expected = "Fail: Create credential: the user in CIO_ETCD_USER holds a ':' (etcdctl's user:password form); cio takes the user name alone there\n\
         Hint: set CIO_ETCD_USER to the etcd user name alone, and put the password in CIO_ETCD_PASSWORD or give it at the prompt (run the command on a terminal); nothing was sent to etcd\n";
    for password in [None, Some("other-Canary")] {
        let mut cmd = env.cmd();
        cmd.env("CIO_STORE", &url)
            .env("CIO_ETCD_USER", "bob:S3cret-Canary");
        if let Some(password) = password {
            cmd.env("CIO_ETCD_PASSWORD", password);
        }
        let out = cmd
            .args(["credential", "create", "cio_aws_access_key"])
            .write_stdin(REF_ACCESS)
            .assert()
            .code(2);
        assert_eq!(stderr(&out), expected, "password {password:?}");
        assert_eq!(stdout(&out), "");

        let out = cmd
            .args(["--json"])
            .write_stdin(REF_ACCESS)
            .assert()
            .code(2);
        let json = format!("{}{}", stdout(&out), stderr(&out));
        assert!(json.contains("holds a ':'"), "{json}");
        assert!(!json.contains("Canary"), "{json}");
    }
    // On a terminal: no prompt, which would have named the user.
    let (screen, ok) = crate::terminal::on_terminal(
        &env,
        "credential list",
        &[("CIO_STORE", &url), ("CIO_ETCD_USER", "bob:S3cret-Canary")],
        &[],
    );
    assert!(!ok);
    assert!(!screen.contains("Canary"), "{screen}");
    assert!(!screen.contains("etcd password"), "{screen}");
    assert!(screen.contains("holds a ':'"), "{screen}");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "cio connected to the store"
    );
    assert!(!env.store().exists());
}

/// The tester's report: `CIO_STORE='http://u:CANARY@127.0.0.1:2379' cio credential create ...`
/// succeeded into a file `./http:/u:CANARY@127.0.0.1:2379`. A mistyped etcd URL, from the
/// environment, the flag, cio.toml or `migrate --to`, is refused without quoting it, and
/// makes no file.
#[test]
fn a_mistyped_etcd_url_is_refused_and_never_becomes_a_file() {
    let env = TestEnv::new();
    env.create("cio_aws_backup_repo", REF_REPO);
    let user_info = "the store location is not valid: it holds what looks like a user and password (a part with both '@' and ':'); an etcd store is written etcd://HOST:PORT/PREFIX, with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD, never in the location";
    let url = "the store location is not valid: it starts like a URL but is not an etcd one: write etcd://HOST:PORT/PREFIX (etcds:// for TLS), with the user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD; a file whose path starts so is written ./PATH";
    let hint = "Hint: give --store / CIO_STORE / `store` in cio.toml (or migrate --to) a file path, or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (etcds:// for TLS), with the etcd user and password in CIO_ETCD_USER and CIO_ETCD_PASSWORD\n";
    let here = tempfile::tempdir().unwrap();
    let config = here.path().join("cio.toml");
    let before = env.snapshot_files();
    for (location, reason) in [
        ("http://u:CANARY@127.0.0.1:2379", user_info),
        ("https://u:CANARY@127.0.0.1:2379", user_info),
        ("etcd:/u:CANARY@h:1", user_info),
        ("etcd:u:CANARY@h:2379", user_info),
        ("etcd//u:CANARY@h:1", user_info),
        ("etcds:/u:CANARY@h:1", user_info),
        ("ETCD:/CANARY-h:1", url),
        ("etcd//CANARY-h:1", url),
        ("http://CANARY-h:2379", url),
    ] {
        let create = format!("Fail: Create credential: {reason}\n{hint}");
        let migrate = format!("Fail: Migrate credentials: {reason}\n{hint}");
        fs::write(&config, format!("store = \"{location}\"\n")).unwrap();
        let create_args = ["credential", "create", "cio_aws_access_key"];
        let mut by_env = env.cmd();
        by_env.env("CIO_STORE", location).args(create_args);
        let mut by_flag = env.cmd();
        by_flag.args(create_args).args(["--store", location]);
        let mut by_file = env.cmd();
        by_file
            .env_remove("CIO_STORE")
            .env("CIO_CONFIG", &config)
            .args(create_args);
        let mut by_migrate = env.cmd();
        by_migrate.args(["credential", "migrate", "--to", location]);
        for (way, mut cmd, expected) in [
            ("CIO_STORE", by_env, &create),
            ("--store", by_flag, &create),
            ("cio.toml", by_file, &create),
            ("migrate --to", by_migrate, &migrate),
        ] {
            let out = cmd
                .current_dir(here.path())
                .write_stdin(REF_ACCESS)
                .assert()
                .code(2);
            assert_eq!(&stderr(&out), expected, "{location} by {way}");
            assert_eq!(stdout(&out), "", "{location} by {way}");
        }
    }
    // Only the cio.toml the test wrote is there: no store was made under any of the names.
    let made: Vec<_> = fs::read_dir(here.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, ["cio.toml"]);
    assert!(env.snapshot_files() == before, "the store or key changed");
    // A path with '@' that cannot be a URL is still a store.
    let at = here.path().join("cio@1/credentials.db");
    env.cmd()
        .env("CIO_STORE", &at)
        .args(["credential", "create", "cio_aws_access_key"])
        .write_stdin(REF_ACCESS)
        .assert()
        .success();
    assert!(at.is_file());
}

/// The session-9 note's gap: `CIO_KEY_FILE=~/k` (quoted, or from a systemd unit) made a key
/// in a folder named `~` under the current one, and the store then needed that folder. A key
/// file or etcd TLS path starting with `~`, from the flag, the environment or cio.toml, is
/// refused as the store's location is, and makes nothing.
#[test]
fn a_key_file_path_starting_with_a_tilde_is_refused_and_makes_nothing() {
    let env = TestEnv::new();
    let here = tempfile::tempdir().unwrap();
    let config = here.path().join("cio.toml");
    fs::write(&config, "key_file = \"~/credential.key\"\n").unwrap();
    let reason = "starts with ~, which only a shell turns into a home folder (a systemd unit, a quoted value or cio.toml does not)";
    let hint = "Hint: give the whole path, e.g. /root/credential.key instead of ~/credential.key\n";
    let create_args = ["credential", "create", "cio_aws_access_key"];
    let mut by_env = env.cmd();
    by_env
        .env("CIO_KEY_FILE", "~/credential.key")
        .args(create_args);
    let mut by_flag = env.cmd();
    by_flag
        .args(create_args)
        .args(["--key-file", "~/credential.key"]);
    let mut by_file = env.cmd();
    by_file
        .env_remove("CIO_KEY_FILE")
        .env("CIO_CONFIG", &config)
        .args(create_args);
    for (way, mut cmd, setting) in [
        (
            "CIO_KEY_FILE",
            by_env,
            "the key file (--key-file, --etcd-* or CIO_*)",
        ),
        (
            "--key-file",
            by_flag,
            "the key file (--key-file, --etcd-* or CIO_*)",
        ),
        ("cio.toml", by_file, "the key file (in cio.toml)"),
    ] {
        let out = cmd
            .current_dir(here.path())
            .write_stdin(REF_ACCESS)
            .assert()
            .code(2);
        assert_eq!(
            stderr(&out),
            format!("Fail: Create credential: {setting} {reason}\n{hint}"),
            "{way}"
        );
    }
    let made: Vec<_> = fs::read_dir(here.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, ["cio.toml"], "a folder named ~ was made");
    assert!(!env.store().exists() && !env.key().exists());
}

/// Session 12's finding: `CIO_KEY_FILE` was read lossily, so a key file whose name has a
/// byte that is not UTF-8 (0xff) became the file with U+FFFD at that spot: cio read (or
/// made) another key than the one named. The exact file is used; the twin is never touched.
#[test]
fn a_key_file_whose_name_is_not_utf8_is_that_file_never_its_lossy_twin() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let etc = env.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let exact = etc.join(OsStr::from_bytes(b"credential\xff.key"));
    let twin = etc.join("credential\u{FFFD}.key");
    // The twin seals a store first.
    env.cmd()
        .env("CIO_KEY_FILE", &twin)
        .args(["credential", "create", "cio_aws_access_key"])
        .write_stdin(REF_ACCESS)
        .assert()
        .success();
    let twin_key = fs::read(&twin).unwrap();
    // The named key file does not exist: the store cannot be opened (exit 3), and the twin's
    // key does not open it instead.
    let out = env
        .cmd()
        .env("CIO_KEY_FILE", &exact)
        .args(["credential", "show", "cio_aws_access_key", "--reveal"])
        .assert()
        .code(3);
    assert!(!stdout(&out).contains(REF_ACCESS));
    assert!(!exact.exists());
    // A first write to a store of its own makes the named file, and reads back through it.
    let other = env.dir.path().join("other.db");
    for cmd in [
        &["create", "cio_aws_secret_key"][..],
        &["show", "cio_aws_secret_key", "--reveal"],
    ] {
        let out = env
            .cmd()
            .env("CIO_KEY_FILE", &exact)
            .env("CIO_STORE", &other)
            .arg("credential")
            .args(cmd)
            .write_stdin(REF_SECRET)
            .assert()
            .success();
        if cmd[0] == "show" {
            assert_eq!(stdout(&out), format!("{REF_SECRET}\n"));
        }
    }
    assert!(exact.is_file());
    assert_eq!(fs::read(&twin).unwrap(), twin_key, "the twin key changed");
}

/// The review's finding: a message named a path that is not UTF-8 with U+FFFD at the byte,
/// another file than the one cio used (and a hint to `chmod` it). Every message names the
/// exact file: a byte that is not UTF-8 as `\xFF`, a backslash as `\\`.
#[test]
fn messages_name_a_path_that_is_not_utf8_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let dir = env.dir.path().display().to_string();
    let etc = env.dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let key = etc.join(OsStr::from_bytes(b"credential\xff.key"));
    let run = |key: &Path, args: &[&str]| {
        env.cmd()
            .env("CIO_KEY_FILE", key)
            .arg("credential")
            .args(args)
            .write_stdin(REF_ACCESS)
            .assert()
    };
    run(&key, &["create", "cio_aws_access_key"]).success();
    // A key file others may read: the hint's chmod names it.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&key, &["list"]).code(3);
    assert_eq!(
        stderr(&out),
        format!(
            "Fail: List credentials: key file {dir}/etc/credential\\xFF.key may be read or changed by group or others (mode 0644); a key must be private\n\
             Hint: run: chmod 600 {dir}/etc/credential\\xFF.key\n"
        )
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    // A key file that does not exist, with a backslash in its name (not the \xFF above).
    let other = etc.join(OsStr::from_bytes(b"a\\xFF\xfe.key"));
    let out = run(&other, &["list"]).code(3);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: List credentials: key file {dir}/etc/a\\\\xFF\\xFE.key does not exist, but the store holds values sealed by key "
        )),
        "{}",
        stderr(&out)
    );
    // A configuration file, and an etcd TLS file given by flag.
    let out = env
        .cmd()
        .env("CIO_CONFIG", etc.join(OsStr::from_bytes(b"cio\xff.toml")))
        .args(["credential", "list"])
        .assert()
        .code(2);
    assert!(
        stderr(&out).starts_with(&format!(
            "Fail: List credentials: configuration file {dir}/etc/cio\\xFF.toml does not exist\n"
        )),
        "{}",
        stderr(&out)
    );
    let out = env
        .cmd()
        .args([
            "credential",
            "list",
            "--store",
            "etcds://127.0.0.1:1",
            "--etcd-cacert",
        ])
        .arg(etc.join(OsStr::from_bytes(b"ca\xff.pem")))
        .assert()
        .code(3);
    assert!(
        stderr(&out).contains(&format!(
            "the etcd CA certificate file {dir}/etc/ca\\xFF.pem does not exist\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains('\u{FFFD}'));
}

/// The store location is text (it may be an etcd URL): one that is not UTF-8, from
/// `CIO_STORE` or `--store`, is refused (exit 2) naming where it is given, and nothing is
/// made, neither that file nor its lossy twin (U+FFFD at the byte).
#[test]
fn a_store_location_that_is_not_utf8_is_refused_and_makes_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let state = env.dir.path().join("state");
    let named = state.join(OsStr::from_bytes(b"credentials\xff.db"));
    let create = ["credential", "create", "cio_aws_access_key"];
    let out = env
        .cmd()
        .env("CIO_STORE", &named)
        .args(create)
        .write_stdin(REF_ACCESS)
        .assert()
        .code(2);
    assert_eq!(
        stderr(&out),
        "Fail: Create credential: CIO_STORE is not UTF-8 text, and cio does not guess which file or login it means\n\
         Hint: give it as UTF-8 text: rename the store file or a folder on its way, or point at it through a link whose path is UTF-8 (the key file and etcd TLS files may have any name)\n"
    );
    let out = env
        .cmd()
        .args(create)
        .arg("--store")
        .arg(&named)
        .write_stdin(REF_ACCESS)
        .assert()
        .code(2);
    assert_eq!(
        stderr(&out),
        "Fail: usage: invalid UTF-8 was detected in one or more arguments: --store <STORE>\n\
         Hint: give it as UTF-8 text: for a file whose path is not, rename it or point at it through a link whose path is UTF-8 (cio never reads such a value lossily: it would name another file)\n"
    );
    assert!(!state.exists() && !env.key().exists(), "something was made");
}
