//! Link-safe path resolution and the writes built on it.
//!
//! [`resolve`] walks a path from `/` one component at a time with `openat(O_NOFOLLOW)`, so no
//! component is ever looked up by the kernel's own (link-following) path walk. A symbolic link on
//! the way is opened itself (`O_PATH|O_NOFOLLOW`), its owner checked on that descriptor, and only
//! then read: a link is followed only when it is owned by root or by the user running the tool
//! (nobody else can create one), so certbot's `live/` links work and a link another user planted
//! in a directory they control is refused — the operation fails naming it, and nothing is
//! written. The [`Target`] it returns holds the directory open, so later operations act on the
//! directory that was checked even if a path component is renamed meanwhile.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::fchown;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use zeroize::Zeroizing;

use super::errors::FsError;
use super::trust;

/// The most symbolic links one resolution follows (as the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// A file's bytes (wiped when dropped) and what was known of it when they were read.
pub type Contents = (Zeroizing<Vec<u8>>, FileMeta);

/// What is known of a file that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub size: u64,
}

impl FileMeta {
    fn of(st: &Stat) -> FileMeta {
        FileMeta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            size: u64::try_from(st.st_size).unwrap_or(0),
        }
    }
}

/// A file reached link-safely: its directory, held open, and its name in it. The file may not
/// exist yet.
#[derive(Debug)]
pub struct Target {
    dir: File,
    dir_path: PathBuf,
    name: OsString,
    existing: Option<FileMeta>,
}

/// What a step of the walk does besides walking: nothing, or check that every directory and
/// entry on the way is one only root controls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    None,
    Trusted,
}

fn open_root() -> Result<File, FsError> {
    rustix::fs::openat(
        rustix::fs::CWD,
        "/",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| FsError::Io { action: "open", path: "/".into(), source: e.into() })
}

fn stat_of(file: &File, path: &Path) -> Result<Stat, FsError> {
    rustix::fs::fstat(file).map_err(|e| FsError::Io {
        action: "inspect",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

fn components(path: &Path) -> Result<VecDeque<OsString>, FsError> {
    if !path.is_absolute() {
        return Err(FsError::Invalid {
            path: path.to_path_buf(),
            reason: "the path must be absolute".into(),
        });
    }
    Ok(path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect())
}

/// The result of a walk: the last directory reached, its path, and the final name (with what is
/// there), or no name when the path named a directory and `want_dir` was set.
pub(super) struct Walked {
    pub dir: File,
    pub dir_path: PathBuf,
    pub dir_stat: Stat,
    pub last: Option<(OsString, Option<Stat>)>,
}

/// Walks `path` (see the module documentation). With `want_dir`, the final component must be a
/// directory and is opened; otherwise it must be a regular file or missing.
pub(super) fn walk(path: &Path, want_dir: bool, check: Check) -> Result<Walked, FsError> {
    let mut queue = components(path)?;
    let mut dir = open_root()?;
    let mut dir_path = PathBuf::from("/");
    let mut dir_stat = stat_of(&dir, &dir_path)?;
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        let last = queue.is_empty();
        if name == ".." {
            let parent = openat_dir(&dir, OsStr::new(".."), &dir_path)?;
            dir_path.pop();
            dir_stat = stat_of(&parent, &dir_path)?;
            dir = parent;
            if check == Check::Trusted {
                trust::check_dir_step(&dir_path, &dir_stat, None)?;
            }
            continue;
        }
        let here = dir_path.join(&name);
        let st = match rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if e == rustix::io::Errno::NOENT && last && !want_dir => {
                if check == Check::Trusted {
                    trust::check_dir_step(&dir_path, &dir_stat, None)?;
                }
                return Ok(Walked { dir, dir_path, dir_stat, last: Some((name, None)) });
            }
            Err(e) => return Err(FsError::Io { action: "inspect", path: here, source: e.into() }),
        };
        if check == Check::Trusted {
            trust::check_dir_step(&dir_path, &dir_stat, Some((&here, &st)))?;
        }
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(FsError::Invalid {
                        path: path.to_path_buf(),
                        reason: "too many levels of symbolic links".into(),
                    });
                }
                let target = read_trusted_link(&dir, &name, &here)?;
                let mut rest = components_relative(&target);
                if target.as_bytes().first() == Some(&b'/') {
                    dir = open_root()?;
                    dir_path = PathBuf::from("/");
                    dir_stat = stat_of(&dir, &dir_path)?;
                }
                while let Some(c) = rest.pop_back() {
                    queue.push_front(c);
                }
            }
            FileType::Directory => {
                if last && !want_dir {
                    return Err(FsError::Invalid { path: here, reason: "is a directory, not a file".into() });
                }
                let next = openat_dir(&dir, &name, &here)?;
                dir_stat = stat_of(&next, &here)?;
                dir = next;
                dir_path = here;
            }
            kind => {
                if !last || want_dir {
                    return Err(FsError::Invalid { path: here, reason: "is not a directory".into() });
                }
                // (A trust check only asks who controls the entry; what it is, its reader says.)
                if kind != FileType::RegularFile && check != Check::Trusted {
                    return Err(FsError::Invalid {
                        path: here,
                        reason: "exists and is not a regular file".into(),
                    });
                }
                return Ok(Walked { dir, dir_path, dir_stat, last: Some((name, Some(st))) });
            }
        }
    }
    if !want_dir {
        return Err(FsError::Invalid {
            path: path.to_path_buf(),
            reason: "names a directory, not a file".into(),
        });
    }
    Ok(Walked { dir, dir_path, dir_stat, last: None })
}

fn components_relative(target: &OsStr) -> VecDeque<OsString> {
    Path::new(target)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn openat_dir(dir: &File, name: &OsStr, shown: &Path) -> Result<File, FsError> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| FsError::Io {
        action: "open the directory",
        path: shown.to_path_buf(),
        source: e.into(),
    })
}

/// Opens the link itself, checks its owner on the descriptor, then reads it through that
/// descriptor: the link that is read is the link that was checked.
fn read_trusted_link(dir: &File, name: &OsStr, shown: &Path) -> Result<OsString, FsError> {
    let fd: OwnedFd =
        rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| FsError::Io {
                action: "open the link",
                path: shown.to_path_buf(),
                source: e.into(),
            })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| FsError::Io {
        action: "inspect",
        path: shown.to_path_buf(),
        source: e.into(),
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
        return Err(FsError::Invalid {
            path: shown.to_path_buf(),
            reason: "changed while being resolved".into(),
        });
    }
    if !trust::is_trusted_owner(st.st_uid) {
        return Err(FsError::UntrustedLink { path: shown.to_path_buf(), owner: st.st_uid });
    }
    let target = rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| FsError::Io {
        action: "read the link",
        path: shown.to_path_buf(),
        source: e.into(),
    })?;
    Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
}

/// Resolves `path` to a file that exists or may be created (see the module documentation).
pub fn resolve(path: &Path) -> Result<Target, FsError> {
    let w = walk(path, false, Check::None)?;
    let Some((name, st)) = w.last else {
        return Err(FsError::Invalid { path: path.to_path_buf(), reason: "names a directory".into() });
    };
    Ok(Target { dir: w.dir, dir_path: w.dir_path, name, existing: st.as_ref().map(FileMeta::of) })
}

/// Resolves `path` to a directory that exists, link-safely, and opens it.
pub fn resolve_dir(path: &Path) -> Result<(File, PathBuf), FsError> {
    let w = walk(path, true, Check::None)?;
    Ok((w.dir, w.dir_path))
}

/// A temporary file written next to its target; deleted when dropped unless [`persist`]ed.
///
/// [`persist`]: TempFile::persist
#[derive(Debug)]
pub struct TempFile {
    dir: File,
    dir_path: PathBuf,
    name: OsString,
    armed: bool,
}

impl TempFile {
    /// Where it is.
    pub fn path(&self) -> PathBuf {
        self.dir_path.join(&self.name)
    }

    /// Renames it over `target`'s name (in the same directory): a link there is replaced, never
    /// written through.
    pub fn persist(mut self, target: &Target) -> Result<(), FsError> {
        rustix::fs::renameat(&self.dir, self.name.as_os_str(), &target.dir, target.name.as_os_str())
            .map_err(|e| FsError::Io {
                action: "move the new file into place at",
                path: target.path(),
                source: e.into(),
            })?;
        self.armed = false;
        Ok(())
    }

    /// Leaves the file where it is (a journal names it; recovery deals with it).
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        self.path()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(&self.dir, self.name.as_os_str(), AtFlags::empty());
        }
    }
}

/// Who should own a file written, and how strictly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Fail when the owner cannot be set (a configured owner) rather than carry on (inherited).
    pub strict: bool,
}

impl Target {
    /// The entry `name` of an open directory, never followed: a link there is replaced by a
    /// write, not written through.
    pub(super) fn in_dir(dir: File, dir_path: PathBuf, name: &OsStr) -> Result<Target, FsError> {
        let shown = dir_path.join(name);
        let existing = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => Some(FileMeta::of(&st)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(FsError::Invalid { path: shown, reason: "is a directory, not a file".into() });
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => None,
            Err(e) => return Err(FsError::Io { action: "inspect", path: shown, source: e.into() }),
        };
        Ok(Target { dir, dir_path, name: name.to_os_string(), existing })
    }

    /// The resolved path (links followed), for messages and journals.
    pub fn path(&self) -> PathBuf {
        self.dir_path.join(&self.name)
    }

    /// The directory it is in (resolved).
    pub fn dir_path(&self) -> &Path {
        &self.dir_path
    }

    /// The file's name in its directory.
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// Owner, group, mode and size of the file when it was resolved; `None` if it did not exist.
    pub fn existing(&self) -> Option<FileMeta> {
        self.existing
    }

    /// Opens the file for reading without following a link; `None` if it does not exist.
    pub fn open_existing(&self) -> Result<Option<File>, FsError> {
        match rustix::fs::openat(
            &self.dir,
            self.name.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(rustix::io::Errno::LOOP) => Err(FsError::Invalid {
                path: self.path(),
                reason: "became a symbolic link while being read; it is not followed".into(),
            }),
            Err(e) => Err(FsError::Io { action: "open", path: self.path(), source: e.into() }),
        }
    }

    /// Reads the file (bounded, without following a link), with its owner and mode as read;
    /// `None` if it does not exist.
    pub fn read_existing(&self, cap: u64) -> Result<Option<Contents>, FsError> {
        let Some(file) = self.open_existing()? else { return Ok(None) };
        let st = rustix::fs::fstat(&file).map_err(|e| FsError::Io {
            action: "inspect",
            path: self.path(),
            source: e.into(),
        })?;
        let bytes = super::read::read_open_file(file, &self.path(), cap)?;
        Ok(Some((bytes, FileMeta::of(&st))))
    }

    /// Writes `content` to a new temporary file `<prefix><random>.tmp` in the target's directory:
    /// created `O_EXCL|O_NOFOLLOW` mode 0600, then owner and mode set on the descriptor, then the
    /// bytes, then fsync.
    pub fn write_temp(
        &self,
        prefix: &str,
        content: &[u8],
        owner: Ownership,
        mode: u32,
    ) -> Result<TempFile, FsError> {
        let (file, name) = self.create_unique(prefix)?;
        let temp = TempFile { dir: self.dup_dir()?, dir_path: self.dir_path.clone(), name, armed: true };
        fill(file, &temp.path(), content, owner, mode)?;
        Ok(temp)
    }

    /// Creates the file itself (it must not exist): `O_CREAT|O_EXCL|O_NOFOLLOW`, owner and mode
    /// set before the bytes, fsync. For backups and other new files in private directories.
    pub fn write_new(&self, content: &[u8], owner: Ownership, mode: u32) -> Result<(), FsError> {
        let fd = rustix::fs::openat(
            &self.dir,
            self.name.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| FsError::Io { action: "create", path: self.path(), source: e.into() })?;
        fill(File::from(fd), &self.path(), content, owner, mode)
    }

    /// Removes the file (not following a link); a file already gone is fine.
    pub fn remove(&self) -> Result<(), FsError> {
        match rustix::fs::unlinkat(&self.dir, self.name.as_os_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(FsError::Io { action: "remove", path: self.path(), source: e.into() }),
        }
    }

    /// Removes the entries of the directory whose names start with `prefix` and end with
    /// `suffix` (temporary files a killed run left).
    pub fn remove_siblings(&self, prefix: &str, suffix: &str) -> Result<Vec<PathBuf>, FsError> {
        let mut removed = Vec::new();
        let dir = rustix::fs::Dir::read_from(&self.dir).map_err(|e| FsError::Io {
            action: "list",
            path: self.dir_path.clone(),
            source: e.into(),
        })?;
        for entry in dir.flatten() {
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            let text = name.to_string_lossy();
            if text.starts_with(prefix) && text.ends_with(suffix) && name != self.name {
                match rustix::fs::unlinkat(&self.dir, name, AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => removed.push(self.dir_path.join(name)),
                    Err(e) => {
                        return Err(FsError::Io {
                            action: "remove",
                            path: self.dir_path.join(name),
                            source: e.into(),
                        });
                    }
                }
            }
        }
        Ok(removed)
    }

    /// fsyncs the directory, so that renames and creations in it are durable.
    pub fn sync_dir(&self) -> Result<(), FsError> {
        self.dir.sync_all().map_err(FsError::io("sync the directory", &self.dir_path))
    }

    fn dup_dir(&self) -> Result<File, FsError> {
        self.dir.try_clone().map_err(FsError::io("open the directory", &self.dir_path))
    }

    fn create_unique(&self, prefix: &str) -> Result<(File, OsString), FsError> {
        for _ in 0..100 {
            let mut random = [0u8; 6];
            openssl::rand::rand_bytes(&mut random).map_err(|e| FsError::Io {
                action: "make a temporary name in",
                path: self.dir_path.clone(),
                source: io::Error::other(e),
            })?;
            let name = OsString::from(format!("{prefix}{}.tmp", hex::encode(random)));
            match rustix::fs::openat(
                &self.dir,
                name.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((File::from(fd), name)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    return Err(FsError::Io {
                        action: "create a temporary file in",
                        path: self.dir_path.clone(),
                        source: e.into(),
                    });
                }
            }
        }
        Err(FsError::Io {
            action: "create a temporary file in",
            path: self.dir_path.clone(),
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        })
    }
}

/// Owner, then mode, then bytes, then fsync: the bytes never sit in a file wider than `mode`
/// or owned by someone they are not for.
fn fill(mut file: File, path: &Path, content: &[u8], owner: Ownership, mode: u32) -> Result<(), FsError> {
    let st = rustix::fs::fstat(&file).map_err(|e| FsError::Io {
        action: "inspect",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let uid = owner.uid.filter(|u| *u != st.st_uid);
    let gid = owner.gid.filter(|g| *g != st.st_gid);
    if (uid.is_some() || gid.is_some())
        && let Err(e) = fchown(&file, uid, gid)
        && owner.strict
    {
        return Err(FsError::Owner { path: path.to_path_buf(), source: e });
    }
    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| FsError::Io {
        action: "set the mode of",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    file.write_all(content).map_err(FsError::io("write", path))?;
    file.sync_all().map_err(FsError::io("sync", path))
}
