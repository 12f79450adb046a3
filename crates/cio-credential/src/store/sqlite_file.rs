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
//! - a store that does not exist is made whole beside its path (an initialised scratch file,
//!   0600, folder 0700) and put in place only if the path is still free (`renameat2`
//!   `RENAME_NOREPLACE`, or `link` where the file system lacks it): processes racing to
//!   create it all succeed, each writing into the store the first one put there. So an
//!   empty file at the path is never cio's: it is refused ([`LockError::Empty`]), as a copy
//!   into the store under way (`cp` truncates first) or cut short;
//! - a write checks, just before its rename, that the store file is still as it was when
//!   the write copied it: a copy into it meanwhile refuses the write
//!   ([`CommitError::Changed`]) rather than let the rename drop what was copied;
//! - the new file keeps the old one's mode and owner;
//! - readers open the file `immutable`: since a file is never changed once it has its name,
//!   SQLite may read it without locks and must ignore anything beside it (a `-wal` or
//!   `-journal` left by another program or copied there): `cp backup.db credentials.db`
//!   restores exactly the backup, and read-only media (a mounted backup, `chattr +i`) reads;
//! - scratch files of writers that died (the process id in their name runs no more, or the
//!   file is over a minute old: the id may be another process's by now) are zeroed and
//!   removed by the next writer, or by the next reader while no writer holds the store,
//!   and `-wal`/`-shm` files removed. Only regular files named
//!   exactly as cio names them (`NAME.tmp-PID-` and 16 hex digits) are taken: a link, a
//!   FIFO or a user's file that merely starts alike is left alone;
//! - a purge also overwrites the replaced file's bytes with zeros before letting it go, as
//!   SQLite's `secure_delete` would in place.

use std::ffi::OsString;
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
    /// The file at the path is empty (see the module rules).
    Empty,
    Io(io::Error),
}

/// Why a write could not put its copy in the store's place.
#[derive(Debug)]
pub(super) enum CommitError {
    /// The store file changed after the write copied it, by something other than cio.
    Changed,
    Io(io::Error),
}

impl From<io::Error> for CommitError {
    fn from(e: io::Error) -> Self {
        CommitError::Io(e)
    }
}

/// What tells one state of a file at the store's path from a later one: a write renames a
/// new file over the store (another inode), and an in-place copy (`cp backup.db
/// credentials.db`) changes the size or the modification and change times (nanoseconds).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) struct Stamp {
    regular: bool,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            regular: meta.is_file(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// What a write into the file changes: its size and modification time.
    pub(super) fn content(self) -> (u64, (i64, i64)) {
        (self.size, self.mtime)
    }

    /// Whether it is a regular file.
    pub(super) fn is_file(self) -> bool {
        self.regular
    }

    /// The file itself (device and inode): another one when the path was renamed over.
    pub(super) fn file(self) -> (u64, u64) {
        (self.dev, self.ino)
    }
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
    /// The locked file as it was just before [`Locked::scratch`] copied it.
    copied: Option<Stamp>,
}

/// The real path of `path` when it exists, else `path` itself.
fn real(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Locks the store at `path` for writing. `Ok(None)`: there is no store there (a writer
/// that creates one makes it whole with [`new_scratch`] and [`place_new`], then locks it).
pub(super) fn lock(path: &Path) -> Result<Option<Locked>, LockError> {
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
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
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
        let locked = file.metadata()?;
        match fs::metadata(&path) {
            Ok(now) if same_file(&now, &locked) && locked.len() == 0 => {
                return Err(LockError::Empty);
            }
            Ok(now) if same_file(&now, &locked) => {
                return Ok(Some(Locked {
                    path,
                    file,
                    copied: None,
                }));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A new, empty scratch file beside the store at `path` (its folder created 0700 first),
/// for a new store to be made in; see [`place_new`].
pub(super) fn new_scratch(path: &Path) -> io::Result<Scratch> {
    let path = real(path);
    let dir = folder(&path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    scratch_beside(&path).map(|(scratch, _)| scratch)
}

/// Puts the new store made in `scratch` at `path`, flushed, unless something is there by
/// now (another process created the store first: `Ok(false)`, and `scratch` is dropped).
pub(super) fn place_new(mut scratch: Scratch, path: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let path = real(path);
    File::open(&scratch.path)?.sync_all()?;
    match renameat_with(CWD, &scratch.path, CWD, &path, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(false),
        // A file system without RENAME_NOREPLACE: a hard link is refused as well when the
        // name exists.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            match fs::hard_link(&scratch.path, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            // The scratch name goes with the drop below.
            File::open(folder(&path))?.sync_all()?;
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    }
    scratch.committed = true;
    File::open(folder(&path))?.sync_all()?;
    Ok(true)
}

/// How old a scratch file is when it is a dead writer's whatever its process id says (the
/// id may have been given to another process since): a write holds its scratch file for
/// milliseconds, a creator's too.
const STALE_SCRATCH: Duration = Duration::from_secs(60);

/// Whether `entry` was last modified more than `age` ago (false when that cannot be told).
fn older_than(entry: &fs::DirEntry, age: Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Whether `rest` is what [`scratch_beside`] puts after the prefix: a process id, `-`, and
/// 16 lower-case hex digits. Any other name is not cio's, whatever it starts with.
fn is_scratch_name(rest: &str) -> bool {
    rest.split_once('-').is_some_and(|(pid, unique)| {
        !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && unique.len() == 16
            && unique
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether the scratch file named `{prefix}{rest}` belongs to a process still running: its
/// name starts with the process id. A creator makes its new store without the lock (there is
/// no file to lock yet), so a writer holding the lock must not take its scratch file for a
/// dead writer's.
fn made_by_a_live_process(rest: &str) -> bool {
    let pid = rest
        .split('-')
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    match pid {
        None => false,
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
    }
}

/// A new scratch file beside the store at `path` (mode 0600), open for writing.
fn scratch_beside(path: &Path) -> io::Result<(Scratch, File)> {
    let mut unique = [0u8; 8];
    getrandom::fill(&mut unique).map_err(|_| io::Error::other("no random source"))?;
    let mut name = scratch_prefix(path);
    name.push(format!("{}-{}", std::process::id(), hex::encode(unique)));
    let scratch_path = folder(path).join(name);
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&scratch_path)?;
    Ok((
        Scratch {
            path: scratch_path,
            committed: false,
        },
        out,
    ))
}

/// The most a scratch copy reads at a time.
const COPY_PIECE: usize = 64 * 1024;

/// The piece a file of `len` bytes is copied in: the whole file (one page at least) when it
/// is smaller than [`COPY_PIECE`], else [`COPY_PIECE`]. A file that grows meanwhile is copied
/// whole all the same, in more pieces.
fn copy_piece(len: u64) -> usize {
    usize::try_from(len).map_or(COPY_PIECE, |len| len.clamp(4096, COPY_PIECE))
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

/// The store's file name with `suffix`, as its bytes are (read lossily, a name that is not
/// UTF-8 would match another file's).
fn beside_name(path: &Path, suffix: &str) -> OsString {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    name
}

/// The prefix of the store's scratch files.
fn scratch_prefix(path: &Path) -> OsString {
    beside_name(path, ".tmp-")
}

/// For a reader: removes what writers that died left beside the store at `path` (as
/// [`Locked::clean_beside`] does), while no writer holds the store: its lock is taken without
/// waiting and let go at once, and a store a writer holds is left to that writer. Best
/// effort, never an error: a reader on read-only media, or one that may not change the
/// folder, leaves them to the next writer.
pub(super) fn tidy_for_reader(path: &Path) {
    let path = real(path);
    let Ok(file) = File::open(&path) else {
        return;
    };
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
        clean_beside(&path);
    }
}

/// Removes what writers that died left beside the store at `path` (scratch files), and
/// `-wal` or `-shm` files (never the store's: it is never written in WAL mode). Best effort;
/// for a caller that holds the store's lock.
fn clean_beside(path: &Path) {
    let prefix = scratch_prefix(path);
    let (wal, shm) = (beside_name(path, "-wal"), beside_name(path, "-shm"));
    let Ok(entries) = fs::read_dir(folder(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let scratch = file
            .as_encoded_bytes()
            .strip_prefix(prefix.as_encoded_bytes())
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .is_some_and(|rest| {
                is_scratch_name(rest)
                    && (!made_by_a_live_process(rest) || older_than(&entry, STALE_SCRATCH))
            });
        if scratch {
            // A copy of the store as a dead write left it: it may hold a value purged or
            // re-sealed since.
            crate::wipe::remove_and_wipe(&entry.path());
        } else if file == wal || file == shm {
            let _ = fs::remove_file(entry.path());
        }
    }
}

impl Locked {
    /// Removes what writers that died left beside the store; see [`clean_beside`].
    pub(super) fn clean_beside(&self) {
        clean_beside(&self.path);
    }

    /// A copy of the store's current content in a new scratch file beside it (mode 0600).
    pub(super) fn scratch(&mut self) -> io::Result<Scratch> {
        let (scratch, mut out) = scratch_beside(&self.path)?;
        let meta = self.file.metadata()?;
        self.copied = Some(Stamp::of(&meta));
        self.file.seek(SeekFrom::Start(0))?;
        // Through this process, not `io::copy` file to file: that is copy_file_range, which on
        // a file system with reflinks (XFS's default) shares the store's blocks with the copy,
        // and a purge's zeroing of the replaced file then lands on new blocks and leaves the
        // purged value on the device (session 7's review). In pieces, so that the memory a
        // write takes does not grow with the file (a store padded to gigabytes); a piece no
        // larger than the file (a store of a few pages), as the allocator maps its memory in
        // populated: a 64 KiB piece made each write map and zero a 128 KiB segment.
        let mut piece = vec![0u8; copy_piece(meta.len())];
        loop {
            let n = match self.file.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&piece[..n])?;
        }
        Ok(scratch)
    }

    /// Puts `scratch` in the store's place: flushed, with the old file's mode and owner,
    /// renamed over it, the folder flushed. With `zero_old`, the replaced file's bytes are
    /// overwritten with zeros and flushed afterwards where it can be, and unless another name
    /// links to it.
    /// [`CommitError::Changed`] when the store file is no longer as [`Locked::scratch`] saw
    /// it (nothing is replaced then).
    pub(super) fn commit(&self, mut scratch: Scratch, zero_old: bool) -> Result<(), CommitError> {
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
        if self.copied != Some(Stamp::of(&self.file.metadata()?)) {
            return Err(CommitError::Changed);
        }
        fs::rename(&scratch.path, &self.path)?;
        scratch.committed = true;
        File::open(folder(&self.path))?.sync_all()?;
        if zero_old {
            // Best effort, after the fact: the store is already replaced, so a file that
            // cannot be overwritten (opened read-only) must not turn the write into a
            // failure. Never a file another name still links to (a backup made with `ln`).
            let _ = crate::wipe::wipe_unlinked(&self.file);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_copied_in_a_piece_no_larger_than_itself() {
        assert_eq!(copy_piece(0), 4096);
        assert_eq!(
            copy_piece(36 * 1024),
            36 * 1024,
            "the bench's store of 16 names"
        );
        assert_eq!(copy_piece(64 * 1024), COPY_PIECE);
        assert_eq!(
            copy_piece(1 << 40),
            COPY_PIECE,
            "a store padded to a terabyte"
        );
    }
}
