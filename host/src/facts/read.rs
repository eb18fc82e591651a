//! Bounded, non-blocking reads of certificate and key files.
//!
//! A file is opened with `O_NONBLOCK` (so a FIFO does not block the open), checked with
//! `fstat` (only regular files are read: not a directory, FIFO, socket or device such as a
//! symlink to `/dev/zero`), refused if larger than the cap, and read at most cap + 1 bytes (a
//! file that grows while being read is refused too). A 1 GB file is refused without reading it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// The largest certificate, chain or key file read, in bytes (1 MiB).
pub const MAX_PEM_FILE_SIZE: u64 = 1024 * 1024;

/// Why a file could not be read. Each payload is a complete message for the admin that names
/// the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// There is no file at the path (the payload is the path, plus a note for a dangling
    /// symbolic link).
    Missing(String),
    /// The file exists but could not be read: `"PATH: reason"`.
    Unreadable(String),
}

/// Reads the whole regular file at `path`, refusing more than `cap` bytes. The buffer is wiped
/// when dropped (it may hold a private key).
pub fn read_bounded(path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let shown = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| open_error(path, &e))?;
    let meta = file.metadata().map_err(|e| ReadError::Unreadable(format!("{shown}: {}", describe(&e))))?;
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
        return Err(ReadError::Unreadable(format!("{shown}: is {what}, not a regular file")));
    }
    if meta.len() > cap {
        return Err(too_large(path, meta.len(), cap));
    }
    read_capped(file, meta.len(), cap).map_err(|e| match e {
        CappedError::TooLarge => ReadError::Unreadable(format!(
            "{shown}: is too large (it grew beyond the limit of {cap} bytes while being read)"
        )),
        CappedError::Io(e) => ReadError::Unreadable(format!("{shown}: {}", describe(&e))),
    })
}

enum CappedError {
    TooLarge,
    Io(io::Error),
}

fn read_capped(file: File, len: u64, cap: u64) -> Result<Zeroizing<Vec<u8>>, CappedError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(len.min(cap) + 1).unwrap_or(0)));
    file.take(cap + 1).read_to_end(&mut bytes).map_err(CappedError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(CappedError::TooLarge);
    }
    Ok(bytes)
}

fn too_large(path: &Path, len: u64, cap: u64) -> ReadError {
    ReadError::Unreadable(format!(
        "{}: is too large ({len} bytes; the limit is {cap} bytes for a certificate or key file)",
        path.display()
    ))
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
fn describe(e: &io::Error) -> String {
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
