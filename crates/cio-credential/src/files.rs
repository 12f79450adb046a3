//! Reading the small files cio trusts (the key file, `cio.toml`): only regular files, only up
//! to a size cap, and checked on the file that was actually opened.
//!
//! Rules:
//! - the file is opened first (non-blocking, so a FIFO does not hang the open) and checked
//!   with `fstat` on that open file, never by path beforehand, so it cannot be swapped
//!   between the check and the read;
//! - a FIFO, socket, device or folder is refused (a FIFO would hang the read; `/dev/zero`
//!   would never end);
//! - at most `max` bytes are read; a longer file is refused, not cut short;
//! - [`check_private_path`] applies OpenSSH's rules for a private key (its `safe_path`):
//!   owned by root or the user, and no folder on the way to it writable by anyone else;
//! - [`check_trusted_path`] adds, for a file whose content decides where secrets go
//!   (`cio.toml`, the etcd CA and client certificate files), that group and others may not
//!   write it; they may read it (it holds no secret of its own), as OpenSSH reads
//!   `authorized_keys`.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A folder, FIFO, socket or device.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Longer than the cap.
    #[error("it is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What kind of file the metadata describes, in words, when it is not a regular file.
pub(crate) fn kind_of(meta: &Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_block_device() || t.is_char_device() {
        Some("a device")
    } else {
        Some("a special file")
    }
}

/// Lets a process waiting to write into the named FIFO at `path` go, when cio will not read
/// it (the command stopped before, or refused it): otherwise that writer (`age -d ... >
/// fifo &`, `printf SECRET > fifo &`) would wait forever after cio ends, since a FIFO's
/// writer waits in `open` until a reader comes.
///
/// The FIFO is opened for reading without waiting (`O_NONBLOCK`: this open never blocks)
/// and closed at once, nothing read: a writer waiting in `open` is let through and its first
/// `write` then fails (`EPIPE`, or killed by `SIGPIPE`: there is no reader); one already
/// blocked in `write` (a reader of cio's went away) fails the same way. A writer that wakes
/// and writes in the instant the FIFO is open puts its bytes in the pipe, which the kernel
/// drops when it is closed: never read either way. What is not a FIFO is left alone, never
/// opened. Best effort: nothing to report if it cannot be done.
pub fn release_fifo(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if !fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return;
    }
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    // Dropped at once: the open alone wakes the writer.
    let _ = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path);
}

/// The kernel file system `path` is on, by its mount point's usual name (`/proc`, `/sys`,
/// ...); `None` for any other file system, or when it cannot be told.
pub(crate) fn kernel_file_system(path: &std::path::Path) -> Option<&'static str> {
    let found = rustix::fs::statfs(path).ok()?.f_type;
    // linux/magic.h; the libc crate gives them in the type of `f_type` on each target.
    #[allow(clippy::unnecessary_cast)]
    let known = [
        (libc::PROC_SUPER_MAGIC as i64, "/proc"),
        (libc::SYSFS_MAGIC as i64, "/sys"),
        (libc::DEBUGFS_MAGIC as i64, "debugfs"),
        (libc::TRACEFS_MAGIC as i64, "tracefs"),
        (libc::SECURITYFS_MAGIC as i64, "securityfs"),
        (libc::CGROUP2_SUPER_MAGIC as i64, "cgroup"),
        (libc::BPF_FS_MAGIC as i64, "bpf"),
    ];
    #[allow(clippy::unnecessary_cast)]
    let found = found as i64;
    known
        .iter()
        .find(|(magic, _)| *magic == found)
        .map(|(_, name)| *name)
}

/// A file read whole: its metadata (of the open file) and its bytes, zeroed when dropped.
pub type Read = (Metadata, Zeroizing<Vec<u8>>);

/// Reads the regular file at `path`, at most `max` bytes. `Ok(None)` when it does not exist.
/// The bytes are zeroed when dropped (the file may hold a key).
pub fn read_regular(path: &Path, max: u64) -> Result<Option<Read>, ReadError> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Opening a folder read-only works on Linux; other errors are real.
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if let Some(kind) = kind_of(&meta) {
        return Err(ReadError::NotRegular(kind));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge { max });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    // The file may grow between fstat and read: never read past the cap.
    read_capped(file, max, &mut bytes)?;
    Ok(Some((meta, bytes)))
}

fn read_capped(file: File, max: u64, into: &mut Vec<u8>) -> Result<(), ReadError> {
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max.saturating_add(1)), into)?;
    if u64::try_from(into.len()).unwrap_or(u64::MAX) > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(())
}

/// Why a private file is not safe to trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    /// The file belongs to another user than root or this process's user.
    #[error("it belongs to user id {owner}, neither root nor this user (id {me})")]
    Owner { owner: u32, me: u32 },
    /// A folder on the way to the file may be written by others, who could replace it.
    #[error("its folder {} may be written by {who} (mode {mode:04o})", crate::shown_path(.folder))]
    Folder {
        folder: PathBuf,
        who: &'static str,
        mode: u32,
    },
    /// A folder on the way belongs to another user than root or this user.
    #[error("its folder {} belongs to user id {owner}, neither root nor this user", crate::shown_path(.folder))]
    FolderOwner { folder: PathBuf, owner: u32 },
    /// The file itself may be written by group or others ([`check_trusted_path`]).
    #[error("it may be written by {who} (mode {mode:04o})")]
    Writable { who: &'static str, mode: u32 },
    /// A private key others than its owner may read or use ([`read_private_key`]).
    #[error("it is a private key that others than its owner may read (mode {mode:04o})")]
    Readable { mode: u32 },
}

/// What a path that ends in `/`, `/.` or `/..` is, in words: only a folder can have such a
/// name, so no file (a store, a key) is read or made there.
pub(crate) const FOLDER_NAME: &str =
    "a name that ends in '/', '/.' or '/..', which only a folder can have";

/// Whether `path` ends in `/`, `/.` or `/..`, or is `.` or `..` (see [`FOLDER_NAME`]).
pub(crate) fn names_a_folder(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let last = bytes.rsplit(|b| *b == b'/').next().unwrap_or_default();
    bytes.ends_with(b"/") || last == b"." || last == b".."
}

/// The sticky bit of a folder's mode: others may add files, but not remove or rename ours
/// (/tmp, /dev/shm).
pub(crate) const STICKY: u32 = 0o1000;

/// Who may write a file or folder of this mode besides its owner: `None` for nobody.
fn writers(mode: u32) -> Option<&'static str> {
    if mode & 0o002 != 0 {
        Some("anyone")
    } else if mode & 0o020 != 0 {
        Some("its group")
    } else {
        None
    }
}

/// Whether this process has a file-size limit (`RLIMIT_FSIZE`, `ulimit -f`): a write that
/// reaches it fails with EFBIG, or short.
pub(crate) fn file_size_limited() -> bool {
    rustix::process::getrlimit(rustix::process::Resource::Fsize)
        .current
        .is_some()
}

/// A file cio trusts that is not safe to trust: which file (`what`, in words), where, and why.
/// Its [`hint`](Untrusted::hint) says the commands that make it safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {} is not safe to trust: {reason}", crate::shown_path(.path))]
pub struct Untrusted {
    /// The kind of file: "configuration file", "etcd CA certificate file", ...
    pub what: &'static str,
    pub path: PathBuf,
    pub reason: Unsafe,
}

impl Untrusted {
    /// What the administrator should do next: the commands that make the file safe.
    pub fn hint(&self) -> String {
        let path = crate::shown_path(&self.path);
        let why =
            "its content decides where the credentials go, so only root or this user may change it";
        match &self.reason {
            Unsafe::Owner { .. } => format!(
                "check that {path} holds what you expect, then give it to root (or to this user) and keep others from writing it: chown root {path}; chmod go-w {path} ({why})"
            ),
            Unsafe::Writable { .. } => format!("run: chmod go-w {path} ({why})"),
            Unsafe::Readable { .. } => format!(
                "run: chmod 600 {path} (a private key is for its owner's eyes only, as ssh demands of its keys)"
            ),
            Unsafe::Folder { folder, mode, .. } if mode & STICKY != 0 => format!(
                "move {path} to a folder only root or this user may write, not in {}, which every user shares (leave that folder's mode as it is: others need it; {why})",
                crate::shown_path(folder)
            ),
            Unsafe::Folder { folder, .. } => format!(
                "run: chmod go-w {} (or move {path} to a folder only root or this user may write; {why})",
                crate::shown_path(folder)
            ),
            Unsafe::FolderOwner { folder, .. } => format!(
                "move {path} to a folder that belongs to root or to this user, not in {} ({why})",
                crate::shown_path(folder)
            ),
        }
    }
}

/// Checks a file whose content decides where secrets go (`meta` of the opened file): as
/// [`check_private_path`], and the file itself not writable by group or others. Readable by
/// others is fine: such a file holds no secret.
pub fn check_trusted_path(path: &Path, meta: &Metadata) -> Result<(), Unsafe> {
    check_private_path(path, meta)?;
    let mode = meta.mode() & 0o7777;
    match writers(mode) {
        Some(who) => Err(Unsafe::Writable { who, mode }),
        None => Ok(()),
    }
}

/// Reads a file cio trusts, `what` in words, under [`read_regular`]'s rules (at most `max`
/// bytes), then [`check_trusted_path`]s it: `Ok(None)` when it does not exist.
pub fn read_trusted(
    what: &'static str,
    path: &Path,
    max: u64,
) -> Result<Option<Read>, TrustedReadError> {
    let Some((meta, bytes)) = read_regular(path, max)? else {
        return Ok(None);
    };
    check_trusted_path(path, &meta).map_err(|reason| Untrusted {
        what,
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(Some((meta, bytes)))
}

/// Reads a private key cio is given (`what` in words) as [`read_trusted`] does, and refuses it
/// ([`Unsafe::Readable`]) when group or others have any right to it, as OpenSSH refuses
/// such a key: whoever may read it may pose as this node.
pub fn read_private_key(
    what: &'static str,
    path: &Path,
    max: u64,
) -> Result<Option<Read>, TrustedReadError> {
    let Some((meta, bytes)) = read_trusted(what, path, max)? else {
        return Ok(None);
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Untrusted {
            what,
            path: path.to_path_buf(),
            reason: Unsafe::Readable { mode },
        }
        .into());
    }
    Ok(Some((meta, bytes)))
}

/// Why [`read_trusted`] did not return a file's bytes.
#[derive(Debug, thiserror::Error)]
pub enum TrustedReadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
}

/// Checks a private file as OpenSSH checks a private key: `meta` (of the opened file) owned
/// by root or the current user, and every folder from the file's real location up to `/`
/// owned by root or the user and not writable by group or others. A folder above the file's
/// own may have the sticky bit instead (as `/tmp` does: others cannot replace what they do
/// not own there); the file's own folder may not, as others could put files beside it under
/// the names cio gives its own (a key being made, a scratch copy).
pub fn check_private_path(path: &Path, meta: &Metadata) -> Result<(), Unsafe> {
    let me = rustix::process::geteuid().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == me;
    if !trusted(meta.uid()) {
        return Err(Unsafe::Owner {
            owner: meta.uid(),
            me,
        });
    }
    // The real location: a symlinked key is checked where it lives.
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(own) = real.parent() {
        check_folders(own, true, &trusted)?;
    }
    // A path named through `..` goes through folders its real location does not: whoever
    // may write one of them may swap what the `..` climbs out of (`sub` for a link
    // elsewhere) before the next command reads it. Each folder as named is checked too.
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        for dir in path.ancestors().skip(1) {
            if let Ok(m) = fs::metadata(dir) {
                check_folder(dir, &m, &trusted, false)?;
            }
        }
    }
    Ok(())
}

/// Checks `start` and every folder above it (see [`check_private_path`]); `own`: `start` is
/// the private file's own folder. A folder that cannot be examined is left to what follows.
fn check_folders(start: &Path, own: bool, trusted: &impl Fn(u32) -> bool) -> Result<(), Unsafe> {
    let mut folder = Some(start);
    while let Some(dir) = folder {
        if let Ok(m) = fs::metadata(dir) {
            check_folder(dir, &m, trusted, own && dir == start)?;
        }
        folder = dir.parent();
    }
    Ok(())
}

/// The folder rule alone, for a folder cio is about to create a private file in. When that
/// folder does not exist yet, the nearest one that does is checked as a folder above the
/// file's own: a path that would be refused is refused before any folder of it is made.
pub fn check_private_folder(dir: &Path) -> Result<(), Unsafe> {
    let me = rustix::process::geteuid().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == me;
    let Some(existing) = dir.ancestors().find(|d| d.exists()) else {
        return Ok(());
    };
    let real = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    check_folders(&real, existing == dir, &trusted)
}

/// One folder's rule; `own`: the private file's own folder, where the sticky bit does not
/// stand in for write access kept to its owner.
fn check_folder(
    dir: &Path,
    m: &Metadata,
    trusted: &impl Fn(u32) -> bool,
    own: bool,
) -> Result<(), Unsafe> {
    let mode = m.mode() & 0o7777;
    if !trusted(m.uid()) {
        return Err(Unsafe::FolderOwner {
            folder: dir.to_path_buf(),
            owner: m.uid(),
        });
    }
    match writers(mode) {
        Some(who) if own || mode & STICKY == 0 => Err(Unsafe::Folder {
            folder: dir.to_path_buf(),
            who,
            mode,
        }),
        _ => Ok(()),
    }
}

/// Makes a FIFO (mode 0600) at `path`, for the tests of what cio does with one.
#[cfg(test)]
pub(crate) fn make_fifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("a FIFO can be made in a temporary folder");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"hello").unwrap();
        let (_, bytes) = read_regular(&path, 5).unwrap().unwrap();
        assert_eq!(&bytes[..], b"hello");
        assert!(matches!(
            read_regular(&path, 4),
            Err(ReadError::TooLarge { max: 4 })
        ));
        assert!(
            read_regular(&dir.path().join("absent"), 5)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn fifos_devices_and_folders_are_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::files::make_fifo(&fifo);
        let err = read_regular(&fifo, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a FIFO (named pipe), not a regular file"
        );
        let err = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert_eq!(err.to_string(), "it is a device, not a regular file");
        let err = read_regular(dir.path(), 100).unwrap_err();
        assert_eq!(err.to_string(), "it is a folder, not a regular file");
    }

    #[test]
    fn a_writer_waiting_on_a_fifo_cio_lets_go_fails_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::files::make_fifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut w = fs::OpenOptions::new().write(true).open(fifo)?;
                std::thread::sleep(std::time::Duration::from_millis(200));
                std::io::Write::write_all(&mut w, b"secret")
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        release_fifo(&fifo);
        let err = writer.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        // Without a writer it returns at once; what is not a FIFO is not opened.
        release_fifo(&fifo);
        release_fifo(dir.path());
        release_fifo(&dir.path().join("absent"));
    }

    #[test]
    fn folders_writable_by_others_are_unsafe_unless_sticky_above_the_files_own() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("open");
        fs::create_dir(&sub).unwrap();
        let file = sub.join("key");
        fs::write(&file, b"k").unwrap();
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(check_private_path(&file, &meta), Ok(()));
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_path(&file, &meta).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("may be written by anyone (mode 0777)"),
            "{err}"
        );
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o770)).unwrap();
        let err = check_private_path(&file, &meta).unwrap_err();
        assert!(err.to_string().contains("by its group"), "{err}");
        assert!(check_private_folder(&sub).is_err());
        // Sticky, as /tmp: not for the file's own folder (others could put files beside it
        // under the names cio gives its own), only for the folders above it.
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = check_private_path(&file, &meta).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("may be written by anyone (mode 1777)"),
            "{err}"
        );
        assert!(check_private_folder(&sub).is_err());
        let inner = sub.join("private");
        fs::create_dir(&inner).unwrap();
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o700)).unwrap();
        let key = inner.join("key");
        fs::write(&key, b"k").unwrap();
        assert_eq!(
            check_private_path(&key, &fs::metadata(&key).unwrap()),
            Ok(())
        );
        assert_eq!(check_private_folder(&inner), Ok(()));
        // A folder to be made under the sticky one is checked as one above the file's own.
        assert_eq!(check_private_folder(&sub.join("new/deeper")), Ok(()));
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_folder(&sub.join("new/deeper")).is_err());
        assert!(!sub.join("new").exists());
    }

    /// A file that decides where secrets go (cio.toml, a CA file) may be read by others, but
    /// written only by its owner, who is root or this user.
    #[test]
    fn trusted_files_may_be_read_but_not_written_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cio.toml");
        fs::write(&file, b"store = \"/x\"\n").unwrap();
        let mode = |m: u32| {
            fs::set_permissions(&file, fs::Permissions::from_mode(m)).unwrap();
            check_trusted_path(&file, &fs::metadata(&file).unwrap())
        };
        assert_eq!(mode(0o644), Ok(()));
        assert_eq!(mode(0o444), Ok(()));
        assert_eq!(
            mode(0o666),
            Err(Unsafe::Writable {
                who: "anyone",
                mode: 0o666
            })
        );
        assert_eq!(
            mode(0o664),
            Err(Unsafe::Writable {
                who: "its group",
                mode: 0o664
            })
        );
        assert_eq!(
            mode(0o602),
            Err(Unsafe::Writable {
                who: "anyone",
                mode: 0o602
            })
        );
        let err = read_trusted("configuration file", &file, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "configuration file {} is not safe to trust: it may be written by anyone (mode 0602)",
                crate::shown_path(&file)
            )
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            read_trusted("configuration file", &file, 100)
                .unwrap()
                .is_some()
        );
        // The folder rule of a private key applies too.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_trusted_path(&file, &fs::metadata(&file).unwrap()),
            Err(Unsafe::Folder { who: "anyone", .. })
        ));
    }

    /// A path named through `..` is checked the way it was named too: a folder others may
    /// write on the way is refused even when the real location is private.
    #[test]
    fn a_path_through_a_folder_others_may_write_is_unsafe_even_when_it_climbs_out() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir_all(open.join("sub")).unwrap();
        fs::create_dir(dir.path().join("private")).unwrap();
        let file = dir.path().join("private/cio.toml");
        fs::write(&file, b"").unwrap();
        let meta = fs::metadata(&file).unwrap();
        let named = open.join("sub/../../private/cio.toml");
        assert_eq!(check_private_path(&named, &meta), Ok(()));
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_path(&named, &meta).is_err());
        assert_eq!(check_private_path(&file, &meta), Ok(()));
    }

    #[test]
    fn files_of_other_users_are_unsafe() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        fs::write(&file, b"k").unwrap();
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 0 { 4242 } else { me };
        if rustix::fs::chown(&file, Some(rustix::fs::Uid::from_raw(other)), None).is_err() {
            // Only root can give a file away; as another user this case cannot be set up.
            assert_ne!(me, 0);
            return;
        }
        let meta = fs::metadata(&file).unwrap();
        let expected = if me == 0 {
            Err(Unsafe::Owner { owner: 4242, me: 0 })
        } else {
            Ok(())
        };
        assert_eq!(check_private_path(&file, &meta), expected);
    }
}
