//! The key file and the AEAD against real files.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn binding(version: u64) -> Binding<'static> {
    Binding {
        store_id: "store-a",
        name: "cio_aws_secret_key",
        version,
    }
}

#[test]
fn seal_open_round_trip_and_binding() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(&dir.path().join("k")).unwrap();
    let value = SecretValue::new("0aC91tg8AVlJoqVqH1vag4YX9NOjcT9hGSWq8vZd".into());
    let sealed = key.seal(&binding(1), &value);
    assert!(!sealed.windows(8).any(|w| w == b"0aC91tg8"));
    assert_eq!(
        key.open(&binding(1), &sealed).unwrap().expose(),
        value.expose()
    );
    assert!(key.open(&binding(2), &sealed).is_err(), "other version");
    let other_name = Binding {
        name: "cio_aws_access_key",
        ..binding(1)
    };
    assert!(key.open(&other_name, &sealed).is_err(), "other name");
    let other_store = Binding {
        store_id: "store-b",
        ..binding(1)
    };
    assert!(key.open(&other_store, &sealed).is_err(), "other store");
    let other_key = create_key(&dir.path().join("k2")).unwrap();
    assert!(other_key.open(&binding(1), &sealed).is_err(), "other key");
    assert_ne!(key.fingerprint(), other_key.fingerprint());
}

#[test]
fn key_files_are_private_and_reload_to_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/credential.key");
    let key = create_key(&path).unwrap();
    let mode = fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let again = load_key(&path).unwrap().unwrap();
    assert_eq!(again.fingerprint(), key.fingerprint());
    // Creating again keeps the existing key.
    assert_eq!(create_key(&path).unwrap().fingerprint(), key.fingerprint());
    assert!(format!("{key:?}").starts_with("Key("));
}

#[test]
fn threads_creating_one_key_at_once_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credential.key");
    let fingerprints: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| create_key(&path).unwrap().fingerprint().to_string()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(fingerprints.iter().all(|f| *f == fingerprints[0]));
    let leftovers = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
}

#[test]
fn special_long_foreign_and_exposed_key_files_are_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.key");
    crate::files::make_fifo(&fifo);
    let err = load_key(&fifo).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "key file {} is not a cio key file: it is a FIFO (named pipe)",
            fifo.display()
        )
    );
    let zero = dir.path().join("zero.key");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    assert!(matches!(load_key(&zero), Err(KeyError::NotAFile { .. })));
    // A kernel file: /proc/version is readable by all (it was told to chmod 600), and
    // /proc/self/mem does not read at all.
    let slash = dir.path().join("new/");
    assert_eq!(
        load_key(&slash).unwrap_err().to_string(),
        format!(
            "key file {} is not a cio key file: it is a name that ends in '/', '/.' or '/..', which only a folder can have",
            slash.display()
        )
    );
    for kernel in ["/proc/version", "/proc/self/mem", "/sys/kernel/notes"] {
        let err = load_key(std::path::Path::new(kernel)).unwrap_err();
        let system = if kernel.starts_with("/sys") {
            "/sys"
        } else {
            "/proc"
        };
        assert_eq!(
            err.to_string(),
            format!(
                "key file {kernel} is not a cio key file: it is a file of the kernel's {system} file system, not one on a disk"
            )
        );
    }
    let long = dir.path().join("long.key");
    fs::write(&long, vec![b'a'; 5000]).unwrap();
    fs::set_permissions(&long, fs::Permissions::from_mode(0o600)).unwrap();
    let err = load_key(&long).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("it is far longer than a key (over 4 KiB)")
    );

    let open = dir.path().join("open");
    let key_path = open.join("credential.key");
    create_key(&key_path).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let err = load_key(&key_path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "key file {} is not safe to use: its folder {} may be written by anyone (mode 0777)",
            key_path.display(),
            open.display()
        )
    );
    assert_eq!(
        err.hint(),
        format!(
            "run: chmod go-w {} (or move the key to a private folder)",
            open.display()
        )
    );
    // Nor is a new key made in such a folder.
    let err = create_key(&open.join("other.key")).unwrap_err();
    assert!(matches!(err, KeyError::Unsafe { .. }), "{err:?}");
    assert!(!open.join("other.key").exists());
    // A folder every user shares (sticky, as /tmp and /dev/shm) is never to be closed: the
    // hint said "run: chmod go-w /dev/shm", which breaks every other user's programs.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = create_key(&open.join("other.key")).unwrap_err();
    assert_eq!(
        err.hint(),
        format!(
            "keep the key in a folder only root or this user may write, not in {}, which every user shares (leave that folder's mode as it is: others need it)",
            open.display()
        )
    );
    fs::set_permissions(&open, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(load_key(&key_path).unwrap().is_some());

    if rustix::process::geteuid().is_root() {
        rustix::fs::chown(&key_path, Some(rustix::fs::Uid::from_raw(4242)), None).unwrap();
        let err = load_key(&key_path).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "is not safe to use: it belongs to user id 4242, neither root nor this user (id 0)"
            ),
            "{err}"
        );
    }
}

#[test]
fn the_temporary_name_fallback_never_holds_a_usable_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credential.key");
    let line = format!("{KEY_FILE_TAG} {}\n", STANDARD.encode([7u8; 32]));
    link_via_temporary_name(&path, line.as_bytes()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the key is left"
    );
    assert!(load_key(&path).unwrap().is_some());
    // What a kill before the last write leaves: refused with a precise reason.
    fs::write(&path, line.replacen('c', "x", 1)).unwrap();
    let err = load_key(&path).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "its creation was interrupted (it never sealed anything): delete it and run the command again"
        ),
        "{err}"
    );
    // A second creator never replaces the first one's key.
    let err = link_via_temporary_name(&path, line.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn readable_or_corrupt_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    create_key(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        load_key(&path),
        Err(KeyError::Permissions { mode: 0o640, .. })
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&path, "nonsense\n").unwrap();
    assert!(matches!(load_key(&path), Err(KeyError::Corrupt { .. })));
    assert!(load_key(&dir.path().join("absent")).unwrap().is_none());
}
