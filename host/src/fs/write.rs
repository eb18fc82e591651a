//! Writes of the tool's own files (state, caches, records): atomic and link-safe, and the
//! private directories they live in.

use std::path::Path;

use rustix::fs::{FileType, Mode};

use super::errors::FsError;
use super::trust::{check_meta, is_trusted_owner};
use super::walk::{Ownership, resolve_dir};

/// Writes `bytes` to `path` atomically with `mode`: a temporary file in the same directory
/// (`O_EXCL|O_NOFOLLOW`, mode set before the bytes), fsync, `renameat` over `path` (a link there
/// is replaced, never written through), fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let target = resolve_plain(path)?;
    let temp = target.write_temp(".tmp-", bytes, Ownership::default(), mode)?;
    temp.persist(&target)?;
    target.sync_dir()
}

/// Creates `path`, which must not exist, with `mode` (and `owner` where this run may set it),
/// writes `bytes` and fsyncs — the bytes never sit in a file wider than `mode`.
pub fn write_new_private(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), FsError> {
    let target = resolve_plain(path)?;
    let owner = Ownership { uid: owner.map(|o| o.0), gid: owner.map(|o| o.1), strict: false };
    target.write_new(bytes, owner, mode)
}

/// Resolves a path for the tool's own files: the final name itself is never followed (the
/// rename replaces whatever is there).
fn resolve_plain(path: &Path) -> Result<super::walk::Target, FsError> {
    let parent = path
        .parent()
        .ok_or_else(|| FsError::Invalid { path: path.to_path_buf(), reason: "names no file".into() })?;
    let name = path
        .file_name()
        .ok_or_else(|| FsError::Invalid { path: path.to_path_buf(), reason: "names no file".into() })?;
    let (dir, dir_path) = resolve_dir(parent)?;
    super::walk::Target::in_dir(dir, dir_path, name)
}

/// Creates `dir` (and missing parents) `0700`. An existing directory must be owned by root or
/// the running user; with `tighten` it is also chmodded to `0700`. A link where the directory
/// should be is followed only if root owns it (see [`resolve_dir`]).
pub fn create_private_dir(dir: &Path, tighten: bool) -> Result<(), FsError> {
    match resolve_dir(dir) {
        Ok((file, resolved)) => {
            let st = rustix::fs::fstat(&file).map_err(|e| FsError::Io {
                action: "inspect",
                path: resolved.clone(),
                source: e.into(),
            })?;
            if !is_trusted_owner(st.st_uid) {
                return check_meta(&resolved, st.st_uid, st.st_mode & 0o7777, true);
            }
            if tighten && st.st_mode & 0o777 != 0o700 {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(0o700)).map_err(|e| FsError::Io {
                    action: "set the mode of",
                    path: resolved,
                    source: e.into(),
                })?;
            }
            Ok(())
        }
        Err(e) if e.is_not_found() => {
            let parent = dir.parent().ok_or_else(|| FsError::Invalid {
                path: dir.to_path_buf(),
                reason: "cannot be created".into(),
            })?;
            let name = dir.file_name().ok_or_else(|| FsError::Invalid {
                path: dir.to_path_buf(),
                reason: "cannot be created".into(),
            })?;
            create_private_dir(parent, false)?;
            let (parent_fd, parent_path) = resolve_dir(parent)?;
            match rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => {
                    return Err(FsError::Io {
                        action: "create the directory",
                        path: parent_path.join(name),
                        source: e.into(),
                    });
                }
            }
            match rustix::fs::statat(&parent_fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(()),
                Ok(_) => Err(FsError::Invalid {
                    path: dir.to_path_buf(),
                    reason: "exists and is not a directory".into(),
                }),
                Err(e) => Err(FsError::Io { action: "inspect", path: dir.to_path_buf(), source: e.into() }),
            }
        }
        Err(FsError::Invalid { path, .. }) => {
            Err(FsError::Invalid { path, reason: "exists and is not a directory".into() })
        }
        Err(e) => Err(e),
    }
}

/// fsyncs a directory, so that renames and creations in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), FsError> {
    let (file, resolved) = resolve_dir(dir)?;
    file.sync_all().map_err(FsError::io("sync the directory", resolved))
}
