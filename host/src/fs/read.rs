//! Bounded, non-blocking reads.
//!
//! A file is opened with `O_NONBLOCK` (so a FIFO does not block the open), checked with
//! `fstat` (only regular files are read: not a directory, FIFO, socket or device such as a
//! symlink to `/dev/zero`), refused if larger than the cap, and read at most cap + 1 bytes (a
//! file that grows while being read is refused too). A 1 GB file is refused without reading it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::errors::{FsError, ReadError};

/// Reads the whole regular file at `path` (following links, as a daemon reading it would),
/// refusing more than `cap` bytes. The buffer is wiped when dropped (it may hold a private key).
pub fn read_bounded(path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let shown = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| open_error(path, &e))?;
    read_open_file(file, path, cap).map_err(|e| match e {
        FsError::Io { source, .. } => ReadError::Unreadable(format!("{shown}: {}", describe(&source))),
        FsError::Invalid { reason, .. } => ReadError::Unreadable(format!("{shown}: {reason}")),
        FsError::TooLarge { size, limit, .. } if size > limit => ReadError::Unreadable(format!(
            "{shown}: is too large ({size} bytes; the limit is {limit} bytes for this kind of file)"
        )),
        FsError::TooLarge { limit, .. } => ReadError::Unreadable(format!(
            "{shown}: is too large (it grew beyond the limit of {limit} bytes while being read)"
        )),
        other => ReadError::Unreadable(other.to_string()),
    })
}

/// Reads a file only root (or the running user) controls: [`check_trusted`](super::check_trusted)
/// on the path, then a bounded read without following a final link, and the open file's owner
/// and mode checked again (no race between check and open).
pub fn read_trusted(path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, FsError> {
    super::check_trusted(path)?;
    let target = super::resolve(path)?;
    let file = target.open_existing()?.ok_or_else(|| FsError::Io {
        action: "read",
        path: path.to_path_buf(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    let meta = file.metadata().map_err(FsError::io("inspect", path))?;
    super::trust::check_meta(path, meta.uid(), meta.mode(), false)?;
    read_open_file(file, path, cap)
}

/// Checks that `file` is regular and at most `cap` bytes, then reads it.
pub(super) fn read_open_file(file: File, path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, FsError> {
    let meta = file.metadata().map_err(FsError::io("inspect", path))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe (FIFO)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(FsError::Invalid {
            path: path.to_path_buf(),
            reason: format!("is {what}, not a regular file"),
        });
    }
    if meta.len() > cap {
        return Err(FsError::TooLarge { path: path.to_path_buf(), size: meta.len(), limit: cap });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len().min(cap) + 1).unwrap_or(0)));
    file.take(cap + 1).read_to_end(&mut bytes).map_err(FsError::io("read", path))?;
    if bytes.len() as u64 > cap {
        // Grew while being read: `size` equals `limit` marks that case.
        return Err(FsError::TooLarge { path: path.to_path_buf(), size: cap, limit: cap });
    }
    Ok(bytes)
}

fn open_error(path: &Path, e: &io::Error) -> ReadError {
    let shown = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => match std::fs::read_link(path) {
            Ok(target) => ReadError::Missing(format!(
                "{shown} (a symbolic link to {}, which does not exist)",
                target.display()
            )),
            Err(_) => ReadError::Missing(shown.to_string()),
        },
        io::ErrorKind::NotADirectory => {
            ReadError::Missing(format!("{shown} (a component of the path is not a directory)"))
        }
        _ => ReadError::Unreadable(format!("{shown}: {}", describe(e))),
    }
}

/// An I/O error as a short sentence fragment (no "(os error N)").
pub(crate) fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory, not a regular file".to_owned(),
        _ => match e.raw_os_error() {
            Some(libc::ELOOP) => "too many levels of symbolic links".to_owned(),
            Some(libc::ENXIO) => {
                "is a socket or device without a reader (no such device or address)".to_owned()
            }
            _ => {
                let text = e.to_string();
                match text.find(" (os error") {
                    Some(i) => text[..i].to_lowercase(),
                    None => text,
                }
            }
        },
    }
}
