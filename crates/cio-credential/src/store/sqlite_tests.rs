//! The SQLite store against real files: what only a file can show (the shared suites run in
//! `crate::suite`).

use super::*;
use crate::store::suite;

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::new(dir.path().join("data/credentials.db"));
    (dir, store)
}

/// The shared suites run in `crate::suite`; this is what only a file can show.
#[test]
fn reading_creates_no_file() {
    let (_d, s) = fresh();
    suite::empty_store_has_nothing(&s);
    assert!(!s.path.exists(), "reading creates nothing");
    assert!(s.identity(false).unwrap().is_none());
}

/// cio never leaves an empty file at the store's path (a new store appears whole), so one
/// is a copy into the store under way (`cp` truncates first) or cut short: neither read as
/// an empty store nor written over, which would drop what the copy then writes.
#[test]
fn an_empty_store_file_is_refused_and_left_alone() {
    let (_d, s) = fresh();
    fs::create_dir_all(s.path.parent().unwrap()).unwrap();
    fs::write(&s.path, b"").unwrap();
    let changing = |e: StoreError| match e {
        StoreError::Changing { detail, .. } => detail,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        changing(s.identity(false).unwrap_err()),
        "it is an empty file, which cio never leaves"
    );
    assert_eq!(
        changing(s.list_latest().unwrap_err()),
        "it is an empty file, which cio never leaves"
    );
    assert_eq!(
        changing(s.identity(true).unwrap_err()),
        "it is an empty file, which cio never leaves"
    );
    assert_eq!(fs::read(&s.path).unwrap(), b"");
    let err = StoreError::Changing {
        location: "/x/credentials.db".into(),
        detail: "it is an empty file, which cio never leaves".into(),
    };
    assert_eq!(
        err.to_string(),
        "the credential store /x/credentials.db is being changed outside cio (it is an empty file, which cio never leaves); nothing was changed"
    );
    assert_eq!(
        err.hint(),
        "if a copy into /x/credentials.db is under way, wait for it and run the command again; to put a backup in place, copy it beside the store and rename it over the store (mv), which is never seen half-written; an empty file nobody is copying can be removed"
    );
}

/// A store file a copy is still writing into (`cp backup.db credentials.db` truncates, then
/// writes) does not read as a store until the copy ends; while it changes, that is said as
/// a change under way, not as damage. The same bytes left alone are an error of their own.
#[test]
fn a_store_file_still_being_copied_into_is_said_as_changing() {
    use std::io::Write;
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    let backup = fs::read(&s.path).unwrap();
    for cut in [1000, backup.len() / 2] {
        let (start, rest) = backup.split_at(cut);
        fs::write(&s.path, start).unwrap();
        let still = s.list_latest().unwrap_err();
        assert!(
            !matches!(still, StoreError::Changing { .. }),
            "a file nothing writes into is not changing: {still:?}"
        );
        fs::write(&s.path, start).unwrap();
        let path = s.path.clone();
        let rest = rest.to_vec();
        let copy = std::thread::spawn(move || {
            let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
            for chunk in rest.chunks(rest.len() / 40 + 1) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                file.write_all(chunk).unwrap();
            }
        });
        let during = s.list_latest().unwrap_err();
        copy.join().unwrap();
        match during {
            StoreError::Changing { detail, .. } => assert_eq!(
                detail,
                "it changed while being read and does not read as a store"
            ),
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert_eq!(fs::read(&s.path).unwrap(), backup);
        assert!(
            s.list_latest().unwrap().is_empty(),
            "the finished copy reads"
        );
    }
}

/// A write whose copy of the store is older than the file by the time it renames (something
/// wrote into the file meanwhile, as `cp` does) replaces nothing.
#[test]
fn a_store_file_changed_during_a_write_is_not_replaced() {
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    let mut locked = sqlite_file::lock(&s.path).unwrap().unwrap();
    let scratch = locked.scratch().unwrap();
    let copied_in = b"what a copy into the store wrote".to_vec();
    std::thread::sleep(std::time::Duration::from_millis(5));
    fs::OpenOptions::new()
        .append(true)
        .open(&s.path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &copied_in))
        .unwrap();
    let after = fs::read(&s.path).unwrap();
    let err = locked.commit(scratch, false).unwrap_err();
    assert!(matches!(err, sqlite_file::CommitError::Changed), "{err:?}");
    assert_eq!(
        fs::read(&s.path).unwrap(),
        after,
        "the file was left as the copy made it"
    );
    let dir = s.path.parent().unwrap();
    assert_eq!(
        fs::read_dir(dir).unwrap().count(),
        1,
        "no scratch file is left"
    );
}

/// A new store is put in place whole, never as an empty file first: of processes racing to
/// create it, each finds either nothing or a whole store.
#[test]
fn racing_creators_all_write_into_one_store() {
    let (_d, s) = fresh();
    let path = s.path.clone();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                scope.spawn(move || {
                    SqliteStore::new(path)
                        .identity(true)
                        .unwrap()
                        .unwrap()
                        .store_id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one store: {ids:?}");
    let dir = s.path.parent().unwrap();
    assert_eq!(
        fs::read_dir(dir).unwrap().count(),
        1,
        "no scratch file is left"
    );
}

#[test]
fn store_files_are_private() {
    use std::os::unix::fs::MetadataExt;
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    assert_eq!(fs::metadata(&s.path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::metadata(s.path.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn foreign_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    fs::write(
        &text,
        b"these are not credentials, just a text file of some length....",
    )
    .unwrap();
    let err = SqliteStore::new(text.clone()).identity(true).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    assert_eq!(
        fs::read(&text).unwrap(),
        b"these are not credentials, just a text file of some length...."
    );

    let other = dir.path().join("other.db");
    let conn = Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let err = SqliteStore::new(other).identity(true).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
}

fn record(name: &str, v: u64, tag: &[u8]) -> Record {
    let action = if v == 1 {
        super::super::Action::Create
    } else {
        super::super::Action::Update
    };
    suite::record(name, v, action, Some(tag))
}

/// The names of the files in the store's folder.
fn files_beside(s: &SqliteStore) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(s.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sealed_of(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let store = SqliteStore::new(path.to_path_buf());
    let latest = store.latest(name).unwrap()?;
    let sealed = latest.unwrap().sealed?;
    let end = sealed.iter().position(|b| *b == 0).unwrap_or(sealed.len());
    Some(sealed[..end].to_vec())
}

#[test]
fn between_writes_the_store_is_one_file() {
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"a"), "fp").unwrap();
    suite::append(&s, 1, &record("n", 2, b"b"), "fp").unwrap();
    // Even while the writer's connection is still open.
    assert_eq!(files_beside(&s), vec!["credentials.db"]);
    drop(s);
}

#[test]
fn scratch_files_of_dead_writers_are_zeroed_and_removed_by_the_next_write() {
    let (d, s) = fresh();
    s.identity(true).unwrap();
    let dir = s.path.parent().unwrap().to_path_buf();
    // A killed write's copy, under the id of a process that is gone; another under this
    // (running) process's id, an hour old: the id was given to another process since.
    let dead = dir.join("credentials.db.tmp-2147483646-0011223344556677");
    let reused = dir.join(format!(
        "credentials.db.tmp-{}-8899aabbccddeeff",
        std::process::id()
    ));
    let fresh_one = dir.join(format!(
        "credentials.db.tmp-{}-0123456789abcdef",
        std::process::id()
    ));
    for path in [&dead, &reused, &fresh_one] {
        fs::write(path, b"a sealed value").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&reused)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // Named like a dead writer's copy but not one: a symbolic link (what it points to must
    // not be opened), a FIFO (opening it for writing would wait for a reader), and a
    // user's file whose name only starts alike. All are left as they are.
    let elsewhere = d.path().join("someone's file");
    fs::write(&elsewhere, b"kept").unwrap();
    let link = dir.join("credentials.db.tmp-2147483646-8888888888888888");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let fifo = dir.join("credentials.db.tmp-2147483646-9999999999999999");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let notes = dir.join("credentials.db.tmp-notes");
    fs::write(&notes, b"my notes").unwrap();
    let held = [&dead, &reused].map(|p| fs::File::open(p).unwrap());
    suite::append(&s, 0, &record("n", 1, b"a"), "fp").unwrap();
    assert!(!dead.exists() && !reused.exists());
    assert!(fs::symlink_metadata(&link).is_ok());
    assert_eq!(fs::read(&elsewhere).unwrap(), b"kept");
    assert!(fs::symlink_metadata(&fifo).is_ok());
    assert_eq!(fs::read(&notes).unwrap(), b"my notes");
    for mut file in held {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).unwrap();
        assert_eq!(bytes, [0u8; 14], "zeroed before it was let go");
    }
    // A live writer's new scratch file is left alone.
    assert!(fresh_one.exists());
}

#[test]
fn a_reader_removes_a_dead_writers_scratch_file_unless_a_writer_holds_the_store() {
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"a"), "fp").unwrap();
    let dir = s.path.parent().unwrap().to_path_buf();
    // A killed write's whole copy of the store, under the id of a process that is gone.
    let dead = dir.join("credentials.db.tmp-2147483646-0011223344556677");
    fs::copy(&s.path, &dead).unwrap();
    // While a writer holds the store, its folder is the writer's: the reader leaves it.
    let held = fs::File::open(&s.path).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let reader = SqliteStore::new(s.path.clone());
    assert_eq!(reader.history("n").unwrap().len(), 1);
    assert!(
        dead.exists(),
        "a writer holds the store: its folder is left alone"
    );
    drop(held);
    // No writer: the next reader removes it, and reads as before.
    let reader = SqliteStore::new(s.path.clone());
    assert_eq!(reader.history("n").unwrap().len(), 1);
    assert_eq!(files_beside(&s), vec!["credentials.db"]);
}

#[test]
fn a_backup_copied_over_the_store_is_exactly_the_backup_whatever_lies_beside_it() {
    let (d, s) = fresh();
    let path = s.path.clone();
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"old"), "fp").unwrap();
    drop(s);
    let backup = d.path().join("backup.db");
    fs::copy(&path, &backup).unwrap();
    let s = SqliteStore::new(path.clone());
    suite::append(&s, 1, &record("n", 2, b"new"), "fp").unwrap();
    suite::append(&s, 0, &record("m", 1, b"other"), "fp").unwrap();
    drop(s);
    // A WAL holding the newer pages, as an earlier cio (or sqlite3 in WAL mode) leaves one.
    let wal_source = d.path().join("walsource.db");
    fs::copy(&path, &wal_source).unwrap();
    let conn = Connection::open(&wal_source).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute("UPDATE versions SET sealed = x'6e6577657374000000000000000000000000000000000000000000000000000000000000000000000000000000000000'", [])
        .unwrap();
    let mut wal = wal_source.as_os_str().to_owned();
    wal.push("-wal");
    let stale_wal = fs::read(&wal).unwrap();
    assert!(!stale_wal.is_empty());
    drop(conn);

    fs::copy(&backup, &path).unwrap();
    let mut beside = path.as_os_str().to_owned();
    beside.push("-wal");
    fs::write(&beside, &stale_wal).unwrap();
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    fs::write(&shm, vec![0u8; 32768]).unwrap();
    assert_eq!(sealed_of(&path, "n").as_deref(), Some(&b"old"[..]));
    assert_eq!(sealed_of(&path, "m"), None);
    // Reading changed nothing; the next write leaves the store alone in its folder.
    assert_eq!(fs::read(&path).unwrap(), fs::read(&backup).unwrap());
    let s = SqliteStore::new(path.clone());
    suite::append(&s, 0, &record("m", 1, b"after"), "fp").unwrap();
    assert_eq!(files_beside(&s), vec!["credentials.db"]);
    assert_eq!(sealed_of(&path, "n").as_deref(), Some(&b"old"[..]));
    let conn = Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_store_in_wal_mode_is_read_from_its_file_and_becomes_one_file() {
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"a"), "fp").unwrap();
    let path = s.path.clone();
    drop(s);
    let conn = Connection::open(&path).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    conn.file_control(
        Some(rusqlite::MAIN_DB),
        rusqlite::FileControl::PersistWal(&mut 1),
    )
    .unwrap();
    conn.execute("UPDATE versions SET sealed = x'620000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000'", [])
        .unwrap();
    drop(conn);
    // The WAL was checkpointed into the file when its connection closed: a reader sees the
    // file's content, and ignores the (persisted) WAL beside it.
    let s = SqliteStore::new(path.clone());
    assert_eq!(sealed_of(&path, "n").as_deref(), Some(&b"b"[..]));
    // The next write makes it one file again, in rollback mode.
    suite::append(&s, 1, &record("n", 2, b"c"), "fp").unwrap();
    assert_eq!(files_beside(&s), vec!["credentials.db"]);
    assert_eq!(sealed_of(&path, "n").as_deref(), Some(&b"c"[..]));
    let header = fs::read(&path).unwrap();
    assert_eq!((header[18], header[19]), (1, 1), "rollback-journal mode");
}

#[test]
fn a_store_that_cannot_be_written_is_read_as_it_is() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test makes the store immutable with chattr +i, which needs root"
    );
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"a"), "fp").unwrap();
    let path = s.path.clone();
    drop(s);
    // Something stale beside it, which cannot be removed either.
    let dir = path.parent().unwrap();
    fs::write(dir.join("credentials.db-wal"), b"stale").unwrap();
    let immutable = |on: bool| {
        for p in [path.clone(), dir.to_path_buf()] {
            let status = std::process::Command::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(&p)
                .status()
                .expect("chattr (e2fsprogs) is installed");
            assert!(status.success(), "chattr failed on {}", p.display());
        }
    };
    immutable(true);
    let s = SqliteStore::new(path.clone());
    let read = s.latest("n");
    let listed = s.list_latest();
    let written = suite::append(&s, 1, &record("n", 2, b"b"), "fp");
    immutable(false);
    assert_eq!(
        suite::tag(&read.unwrap().unwrap(), 1).as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(listed.unwrap().len(), 1);
    let err = written.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unusable {
                action: "written",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn processes_racing_to_create_a_store_all_succeed() {
    use crate::credentials::CredentialStore;
    let names = [
        "cio_aws_backup_repo",
        "cio_aws_access_key",
        "cio_minio_backup_repo",
        "cio_minio_access_key",
        "cio_minio_secret_key",
        "cio_aws_alt_backup_repo",
        "cio_minio_alt_backup_repo",
        "cio_minio_alt_access_key",
    ];
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("new{round}/credentials.db"));
        let key = dir.path().join(format!("keys{round}/credential.key"));
        std::thread::scope(|scope| {
            for name in names {
                let (path, key) = (path.clone(), key.clone());
                scope.spawn(move || {
                    let c = CredentialStore::new(Box::new(SqliteStore::new(path)), key);
                    let value = if name.contains("repo") {
                        "s3:host.example/bucket"
                    } else {
                        "AKIAYHD623GGZX7VDFMJ"
                    };
                    c.put(
                        name.parse().unwrap(),
                        &crate::SecretValue::new(value.into()),
                    )
                    .unwrap();
                });
            }
        });
        let c = CredentialStore::new(Box::new(SqliteStore::new(path)), key);
        assert_eq!(c.list().unwrap().entries.len(), 8);
    }
}

#[test]
fn a_full_disk_says_so_and_changes_nothing() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test mounts a small tmpfs, which needs root"
    );
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "mounting a tmpfs");
    let result = std::panic::catch_unwind(|| {
        let s = SqliteStore::new(mnt.join("credentials.db"));
        s.identity(true).unwrap();
        suite::append(&s, 0, &record("n", 1, b"kept"), "fp").unwrap();
        // Fill the device.
        let filler = mnt.join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
        drop(f);
        let before = fs::read(&s.path).unwrap();
        let mut big = record("n", 2, b"x");
        big.sealed = Some(vec![7u8; 200_000]);
        let err = suite::append(&s, 1, &big, "fp").unwrap_err();
        assert!(matches!(err, StoreError::NoSpace { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "no space left on the device of the credential store {}; nothing was changed",
                s.path.display()
            )
        );
        drop(s);
        fs::remove_file(&filler).unwrap();
        let s = SqliteStore::new(mnt.join("credentials.db"));
        assert_eq!(sealed_of(&s.path, "n").as_deref(), Some(&b"kept"[..]));
        assert_eq!(before, fs::read(&s.path).unwrap());
    });
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A FIFO, a device or a file of a kernel file system is no store, for a read or a write,
/// and nothing is written there. /proc/self/mem, a regular file that reads as empty, was
/// said to be "being changed outside cio", with the hint to wait or remove it.
#[test]
fn fifos_devices_and_kernel_files_are_not_stores() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.db");
    crate::files::make_fifo(&fifo);
    let cases = [
        (fifo, "a FIFO (named pipe)"),
        // A name only a folder can have: nothing is made there, and a read does not say the
        // store is empty.
        (
            dir.path().join("new/"),
            "a name that ends in '/', '/.' or '/..', which only a folder can have",
        ),
        (
            dir.path().join("new/."),
            "a name that ends in '/', '/.' or '/..', which only a folder can have",
        ),
        ("/dev/zero".into(), "a device"),
        (
            "/proc/self/mem".into(),
            "a file of the kernel's /proc file system, not one on a disk",
        ),
        (
            "/sys/kernel/notes".into(),
            "a file of the kernel's /sys file system, not one on a disk",
        ),
    ];
    for (path, what) in cases {
        let said = format!(
            "{} is not a cio credential store: it is {what}",
            path.display()
        );
        let store = SqliteStore::new(path.clone());
        assert_eq!(store.list_latest().unwrap_err().to_string(), said);
        assert_eq!(store.identity(true).unwrap_err().to_string(), said);
    }
}

/// A folder at the store's path (`--store /var/lib/cio` instead of the file in it)
/// is "not a cio credential store: it is a folder", whatever happens inside the folder; the
/// copy watch took a folder whose entries change (other cio writers' scratch files, a busy
/// /tmp) for a store file being copied into, and sent the administrator to wait for a copy.
#[test]
fn a_busy_folder_at_the_store_path_is_not_said_as_changing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cio");
    fs::create_dir(&folder).unwrap();
    let s = SqliteStore::new(folder.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, folder) = (stop.clone(), folder.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                fs::write(folder.join(format!("f{}", i % 8)), b"x").unwrap();
                let _ = fs::remove_file(folder.join(format!("f{}", (i + 4) % 8)));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let err = s.list_latest().unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    busy.join().unwrap();
    assert!(
        matches!(&err, StoreError::NotAFile { what, .. } if what == "a folder"),
        "{err:?}"
    );
}

/// A damaged store file whose mode or owner changes during the watch (a `chmod`, a backup
/// tool's `touch -a`) is still damaged: only its content (size, modification time) moving
/// says a copy is under way.
#[test]
fn a_damaged_file_whose_mode_changes_is_not_said_as_changing() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    let bytes = fs::read(&s.path).unwrap();
    fs::write(&s.path, &bytes[..1000]).unwrap();
    let path = s.path.clone();
    let chmod = std::thread::spawn(move || {
        for mode in [0o640, 0o600, 0o640, 0o600] {
            std::thread::sleep(std::time::Duration::from_millis(40));
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    });
    let err = s.list_latest().unwrap_err();
    chmod.join().unwrap();
    assert!(!matches!(err, StoreError::Changing { .. }), "{err:?}");
}

/// A write copies the store through the process in pieces: its memory does not grow with
/// the file (a store padded below cio to a size no store has). Memory is read from the test
/// process's own peak (nextest runs each test in a process of its own).
#[test]
fn a_write_to_a_padded_store_takes_memory_by_the_piece_not_by_the_file() {
    let (_d, s) = fresh();
    s.identity(true).unwrap();
    let padded: u64 = 256 * 1024 * 1024;
    fs::OpenOptions::new()
        .write(true)
        .open(&s.path)
        .unwrap()
        .set_len(padded)
        .unwrap();
    let peak_kib = || -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let before = peak_kib();
    s.put_note("k", b"sealed").unwrap();
    assert_eq!(fs::metadata(&s.path).unwrap().len(), padded);
    let grown = peak_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "the write's peak grew by {grown} KiB");
    assert_eq!(s.notes().unwrap(), [("k".to_string(), b"sealed".to_vec())]);
}

/// A store whose file name is not UTF-8: what a write tidies beside it (its `-wal` and
/// `-shm`, dead writers' scratch copies) is matched on the name's bytes. Read lossily, the
/// name matched another store's files, whose name has U+FFFD at that byte, and removed them.
#[test]
fn tidying_beside_a_store_whose_name_is_not_utf8_leaves_other_files_alone() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join(std::ffi::OsStr::from_bytes(b"s\xff.db"));
    let twin_files = [
        "s\u{FFFD}.db-wal",
        "s\u{FFFD}.db-shm",
        "s\u{FFFD}.db.tmp-1-00",
    ];
    for twin in twin_files {
        fs::write(d.path().join(twin), b"another store's").unwrap();
    }
    let mut own_wal = path.as_os_str().to_owned();
    own_wal.push("-wal");
    fs::write(&own_wal, b"").unwrap();
    let s = SqliteStore::new(path.clone());
    s.identity(true).unwrap();
    suite::append(&s, 0, &record("n", 1, b"v"), "fp").unwrap();
    for twin in twin_files {
        assert!(d.path().join(twin).exists(), "{twin} was removed");
    }
    assert!(
        !std::path::Path::new(&own_wal).exists(),
        "the store's own -wal stayed"
    );
    assert!(path.is_file());
}
