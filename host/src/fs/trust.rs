//! Trust: only what root (or the user running the tool) controls is believed.
//!
//! A file is trusted when it, and every directory on the way to it, is owned by root or the
//! running user and is not writable by group or others. A directory writable by others is
//! accepted on the way only when it is sticky (`/tmp`) and the entry in it is trusted, since
//! then nobody else can rename or remove that entry. Links on the way must be trusted too
//! (see [`walk`](super::walk)). This is sshd's `StrictModes`, for the configuration (whose
//! reload commands run as root), the state directory (whose journals name files to restore),
//! trusted keys and policy modules.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::errors::FsError;
use super::walk::{Check, walk};

/// The most entries [`check_trusted_tree`] looks at (a state directory has a few hundred).
const MAX_TREE_ENTRIES: usize = 200_000;
/// How deep [`check_trusted_tree`] goes.
const MAX_TREE_DEPTH: usize = 12;

/// Whether `uid` is root or the user running the tool.
pub fn is_trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

fn owner_fix(path: &Path) -> String {
    let me = rustix::process::geteuid().as_raw();
    if me == 0 {
        format!("fix: chown root {}", path.display())
    } else {
        format!("fix: chown {me} {} (root or the user running checkallsslcerts)", path.display())
    }
}

/// Checks an entry's owner and mode: trusted owner, no write for group or others.
pub(super) fn check_meta(path: &Path, uid: u32, mode: u32, _is_dir: bool) -> Result<(), FsError> {
    if !is_trusted_owner(uid) {
        return Err(FsError::Untrusted {
            path: path.to_path_buf(),
            problem: format!("is owned by uid {uid}, so that user could change what root trusts"),
            fix: owner_fix(path),
        });
    }
    if mode & 0o022 != 0 {
        return Err(FsError::Untrusted {
            path: path.to_path_buf(),
            problem: format!(
                "is writable by {} (mode {:04o})",
                if mode & 0o002 != 0 { "everyone" } else { "its group" },
                mode & 0o7777
            ),
            fix: format!("fix: chmod go-w {}", path.display()),
        });
    }
    Ok(())
}

/// One step of a trusted walk: the directory `dir_path` is trusted for the entry `child`
/// (`None`: the walk ends there with a missing entry, which is then created by a trusted run).
pub(super) fn check_dir_step(
    dir_path: &Path,
    dir: &Stat,
    child: Option<(&Path, &Stat)>,
) -> Result<(), FsError> {
    let dir_mode = dir.st_mode & 0o7777;
    if !is_trusted_owner(dir.st_uid) {
        return check_meta(dir_path, dir.st_uid, dir_mode, true);
    }
    let sticky = dir_mode & 0o1000 != 0;
    let child_trusted = child.is_some_and(|(_, st)| is_trusted_owner(st.st_uid));
    if dir_mode & 0o022 != 0 && !(sticky && child_trusted) {
        check_meta(dir_path, dir.st_uid, dir_mode, true)?;
    }
    if let Some((path, st)) = child
        && FileType::from_raw_mode(st.st_mode) != FileType::Symlink
    {
        // Directories are checked again as the parent of the next step; files here.
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            check_meta(path, st.st_uid, st.st_mode & 0o7777, false)?;
        } else if !is_trusted_owner(st.st_uid) {
            check_meta(path, st.st_uid, st.st_mode & 0o7777, true)?;
        }
    }
    Ok(())
}

/// Checks that `path` (a file or a directory) and every directory above it are controlled by
/// root or the running user (see the module documentation). A missing final entry is fine
/// (it will be created); its directory must then be trusted.
pub fn check_trusted(path: &Path) -> Result<(), FsError> {
    match walk(path, false, Check::Trusted) {
        Ok(_) => Ok(()),
        Err(FsError::Invalid { .. }) => {
            // It names a directory: walk again wanting one, and check that directory itself.
            let w = walk(path, true, Check::Trusted)?;
            check_meta(&w.dir_path, w.dir_stat.st_uid, w.dir_stat.st_mode & 0o7777, true)
        }
        Err(e) => Err(e),
    }
}

/// [`check_trusted`] on the directory `dir`, then on everything inside it (bounded): the state
/// directory, whose journals and backups name files that a run rewrites as root. A missing
/// directory is fine.
pub fn check_trusted_tree(dir: &Path) -> Result<(), FsError> {
    let w = match walk(dir, true, Check::Trusted) {
        Ok(w) => w,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    check_meta(&w.dir_path, w.dir_stat.st_uid, w.dir_stat.st_mode & 0o7777, true)?;
    let mut seen = 0;
    check_below(&w.dir, &w.dir_path, 0, &mut seen)
}

fn check_below(dir: &std::fs::File, dir_path: &Path, depth: usize, seen: &mut usize) -> Result<(), FsError> {
    if depth > MAX_TREE_DEPTH {
        return Err(FsError::Untrusted {
            path: dir_path.to_path_buf(),
            problem: format!("is nested more than {MAX_TREE_DEPTH} levels deep, which the tool never does"),
            fix: "fix: remove what the tool did not create".into(),
        });
    }
    let entries = rustix::fs::Dir::read_from(dir).map_err(|e| FsError::Io {
        action: "list",
        path: dir_path.to_path_buf(),
        source: e.into(),
    })?;
    let mut subdirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::Io {
            action: "list",
            path: dir_path.to_path_buf(),
            source: e.into(),
        })?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        *seen += 1;
        if *seen > MAX_TREE_ENTRIES {
            return Err(FsError::Untrusted {
                path: dir_path.to_path_buf(),
                problem: format!("holds more than {MAX_TREE_ENTRIES} entries, which the tool never makes"),
                fix: "fix: remove what the tool did not create".into(),
            });
        }
        let path = dir_path.join(name);
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(FsError::Io { action: "inspect", path, source: e.into() }),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::Symlink {
            if !is_trusted_owner(st.st_uid) {
                return Err(FsError::UntrustedLink { path, owner: st.st_uid });
            }
            continue;
        }
        check_meta(&path, st.st_uid, st.st_mode & 0o7777, kind == FileType::Directory)?;
        if kind == FileType::Directory {
            subdirs.push(path);
        }
    }
    for sub in subdirs {
        let Some(name) = sub.file_name() else { continue };
        let fd = match rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(FsError::Io { action: "open the directory", path: sub, source: e.into() }),
        };
        check_below(&std::fs::File::from(fd), &sub, depth + 1, seen)?;
    }
    Ok(())
}
