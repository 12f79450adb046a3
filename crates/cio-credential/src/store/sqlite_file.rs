//! The SQLite store's file as the filesystem sees it: a write replaces it whole, a read
//! never changes it.
//!
//! Why a write replaces the file instead of letting SQLite journal in place: SQLite's
//! rollback journal costs four flushes per commit (the journal twice, its folder, the file)
//! and its WAL leaves a `-wal` beside the store that a restored backup would be read
//! through. A store is a few kilobytes, so a write copies it to a scratch file beside it,
//! lets SQLite change the copy (no journal: a failed write just drops the copy), flushes the
//! copy, renames it over the store and flushes the folder: two flushes, and at every moment
//! the store's name holds a complete store, the old one or the new one.
//!
//! Rules:
//! - writers take an exclusive `flock` on the store file itself, then check that the name
//!   still points at the file they locked (a writer before them may have replaced it), so
//!   writers queue and each sees the store its predecessor left;
//! - a store that does not exist is created as an empty file (`create_new`, 0600, folder
//!   0700), then initialised by a write like any other: processes racing to create it all
//!   succeed, one after the other;
//! - the new file keeps the old one's mode and owner;
//! - readers open the file `immutable`: since a file is never changed once it has its name,
//!   SQLite may read it without locks and must ignore anything beside it (a `-wal` or
//!   `-journal` left by another program or copied there): `cp backup.db credentials.db`
//!   restores exactly the backup, and read-only media (a mounted backup, `chattr +i`) reads;
//! - scratch files of writers that died, and `-wal`/`-shm` files, are removed by the next
//!   writer (which holds the lock, so none of them is live);
//! - a purge also overwrites the replaced file's bytes with zeros before letting it go, as
//!   SQLite's `secure_delete` would in place.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

/// How long a writer waits for the writers before it.
pub(super) const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a write could not take the store.
#[derive(Debug)]
pub(super) enum LockError {
    /// Other writers held it for longer than [`LOCK_TIMEOUT`].
    TimedOut,
    Io(io::Error),
}

impl From<io::Error> for LockError {
    fn from(e: io::Error) -> Self {
        LockError::Io(e)
    }
}

/// The store file, locked for writing.
pub(super) struct Locked {
    /// The real path of the store (a symlink to it resolved: the new file replaces the
    /// target, never the link).
    path: PathBuf,
    /// The locked file (read-write where possible, to zero it after a purge).
    file: File,
}

/// The real path of `path` when it exists, else `path` itself.
fn real(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Locks the store at `path` for writing; creates it empty first when it does not exist and
/// `create`. `Ok(None)`: it does not exist and `create` is false.
pub(super) fn lock(path: &Path, create: bool) -> Result<Option<Locked>, LockError> {
    let start = Instant::now();
    loop {
        let path = real(path);
        let opened = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path));
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                create_empty(&path)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => return Err(LockError::TimedOut),
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
        // The writer before us may have replaced the file while we waited: lock the new one.
        match fs::metadata(&path) {
            Ok(now) if same_file(&now, &file.metadata()?) => {
                return Ok(Some(Locked { path, file }));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates the store's folder (0700) and an empty store file (0600) if none is there yet.
fn create_empty(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A scratch copy of the store, beside it; removed when dropped unless committed.
pub(super) struct Scratch {
    path: PathBuf,
    committed: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a scratch file left behind is removed by the next writer.
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Scratch {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// The folder of the store, for scratch files and the flush after a rename.
fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The prefix of the store's scratch files.
fn scratch_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!("{name}.tmp-")
}

impl Locked {
    /// Removes what writers that died left beside the store (scratch files), and `-wal` or
    /// `-shm` files (never the store's: it is never written in WAL mode). Best effort.
    pub(super) fn clean_beside(&self) {
        let prefix = scratch_prefix(&self.path);
        let name = self
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let Ok(entries) = fs::read_dir(folder(&self.path)) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let stale = file.starts_with(&prefix)
                || file == format!("{name}-wal")
                || file == format!("{name}-shm");
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// A copy of the store's current content in a new scratch file beside it (mode 0600).
    pub(super) fn scratch(&mut self) -> io::Result<Scratch> {
        let mut unique = [0u8; 8];
        getrandom::fill(&mut unique).map_err(|_| io::Error::other("no random source"))?;
        let path = folder(&self.path).join(format!(
            "{}{}-{}",
            scratch_prefix(&self.path),
            std::process::id(),
            hex::encode(unique)
        ));
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let scratch = Scratch {
            path,
            committed: false,
        };
        self.file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes)?;
        out.write_all(&bytes)?;
        Ok(scratch)
    }

    /// Puts `scratch` in the store's place: flushed, with the old file's mode and owner,
    /// renamed over it, the folder flushed. With `zero_old`, the replaced file's bytes are
    /// overwritten with zeros and flushed afterwards.
    pub(super) fn commit(&self, mut scratch: Scratch, zero_old: bool) -> io::Result<()> {
        let new = File::open(&scratch.path)?;
        let old = self.file.metadata()?;
        new.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
            old.mode() & 0o7777,
        ))?;
        if old.uid() != new.metadata()?.uid() || old.gid() != new.metadata()?.gid() {
            // Only root can give a file away; anyone else writes a store of their own.
            let _ = rustix::fs::fchown(
                &new,
                Some(rustix::fs::Uid::from_raw(old.uid())),
                Some(rustix::fs::Gid::from_raw(old.gid())),
            );
        }
        new.sync_all()?;
        fs::rename(&scratch.path, &self.path)?;
        scratch.committed = true;
        File::open(folder(&self.path))?.sync_all()?;
        if zero_old {
            let mut file = &self.file;
            let len = old.len();
            file.seek(SeekFrom::Start(0))?;
            let zeros = vec![0u8; 4096];
            let mut left = len;
            while left > 0 {
                let n = usize::try_from(left.min(4096)).unwrap_or(4096);
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
        }
        Ok(())
    }
}

/// A path as the file part of a SQLite URI: `%`, `?` and `#` (and every byte outside
/// printable ASCII) percent-encoded. Written here because SQLite's URI rule is this one
/// line, not worth a crate.
pub(super) fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
