//! The errors of the file layer. Each one names the path, and for a trust problem the fix.

use std::io;
use std::path::PathBuf;

/// Why a read of a certificate or key file failed. Each payload is a complete message for the
/// admin that names the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// There is no file at the path (the payload is the path, plus a note for a dangling
    /// symbolic link).
    Missing(String),
    /// The file exists but could not be read: `"PATH: reason"`.
    Unreadable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Missing(m) => write!(f, "{m} does not exist"),
            ReadError::Unreadable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReadError {}

/// A failure of a link-safe or trust-checked file operation.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call failed.
    #[error("cannot {action} {}: {}", path.display(), super::read::describe(source))]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// A configured owner could not be set on a new file (`Ownership::strict`).
    #[error("cannot set the owner of {}: {}", path.display(), super::read::describe(source))]
    Owner { path: PathBuf, source: io::Error },
    /// A symbolic link on the way to a file is owned by someone other than root (or the running
    /// user): it is not followed, and nothing is written.
    #[error(
        "{} is a symbolic link owned by uid {owner}, not by root: it is not followed (another \
         user could point it at any file); replace it by the file itself, or have root own the link",
        path.display()
    )]
    UntrustedLink { path: PathBuf, owner: u32 },
    /// Something other users could change, where only root's files are trusted.
    #[error("{} {problem}; {fix}", path.display())]
    Untrusted { path: PathBuf, problem: String, fix: String },
    /// The path has the wrong shape: not absolute, a directory where a file is expected...
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A file larger than the limit for its kind.
    #[error("{} is too large ({size} bytes; the limit is {limit} bytes)", path.display())]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
}

impl FsError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FsError {
        let path = path.into();
        move |source| FsError::Io { action, path, source }
    }

    /// Whether this is "no such file or directory".
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        match e {
            FsError::Io { ref source, .. } => {
                let kind = source.kind();
                io::Error::new(kind, e.to_string())
            }
            other => io::Error::new(io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
}
