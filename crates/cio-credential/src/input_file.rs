//! Opening a file the administrator names to read a secret or a bundle from (an identity, a
//! recipients file, a bundle, a `--from-file` value): a regular file or a pipe, such as
//! `--identity <(pass show recovery-key)` or a named FIFO, never a device or a folder.
//!
//! Rules:
//! - the path is opened non-blocking first (opening a FIFO would wait before its kind could
//!   be checked) and checked with `fstat` on that open file;
//! - a pipe is then opened again, blocking: a named FIFO without a writer yet waits for one
//!   (as `cat` does) rather than reading an empty end at once. The second open must be the
//!   same pipe (device and inode), or the path was swapped between the two;
//! - saying that it waits is the caller's (the library prints nothing); a caller caps what it
//!   reads.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a named input file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    /// A folder, socket or device.
    #[error("it is {0}, neither a file nor a pipe")]
    Kind(&'static str),
    /// The path named another file when opened again.
    #[error("it was replaced while it was opened")]
    Replaced,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A regular file or a pipe, opened to be checked ([`InputFile::metadata`]) before anything
/// waits for a pipe's writer.
pub struct InputFile {
    probe: File,
    meta: Metadata,
}

impl InputFile {
    /// Opens `path` without waiting, and refuses what is neither a regular file nor a pipe.
    pub fn open(path: &Path) -> Result<InputFile, InputFileError> {
        let probe = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)?;
        let meta = probe.metadata()?;
        let kind = meta.file_type();
        if !kind.is_file() && !kind.is_fifo() {
            return Err(InputFileError::Kind(
                crate::files::kind_of(&meta).unwrap_or("a special file"),
            ));
        }
        Ok(InputFile { probe, meta })
    }

    /// The open file's metadata: a pipe's mode is its permission, 0600 for an anonymous one.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The file to read, blocking. A pipe is opened again at `path` (the path it was opened
    /// at), which waits for a named FIFO's writer.
    pub fn reader(self, path: &Path) -> Result<File, InputFileError> {
        if self.meta.file_type().is_file() {
            rustix::fs::fcntl_setfl(&self.probe, rustix::fs::OFlags::empty())
                .map_err(io::Error::from)?;
            return Ok(self.probe);
        }
        let file = File::open(path)?;
        let again = file.metadata()?;
        if (again.dev(), again.ino()) != (self.meta.dev(), self.meta.ino()) {
            return Err(InputFileError::Replaced);
        }
        Ok(file)
    }
}

/// The regular file or pipe at `path`, open for reading (blocking); a named FIFO waits for
/// its writer.
pub fn open_input(path: &Path) -> Result<File, InputFileError> {
    InputFile::open(path)?.reader(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_fifo_waits_for_its_writer_and_a_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::files::make_fifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                let mut w = OpenOptions::new().write(true).open(fifo).unwrap();
                w.write_all(b"late").unwrap();
            })
        };
        let input = InputFile::open(&fifo).unwrap();
        assert!(input.metadata().file_type().is_fifo());
        let mut file = input.reader(&fifo).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "late");
        writer.join().unwrap();
        assert!(matches!(
            open_input(dir.path()),
            Err(InputFileError::Kind("a folder"))
        ));
        assert!(matches!(
            open_input(Path::new("/dev/null")),
            Err(InputFileError::Kind("a device"))
        ));
    }
}
