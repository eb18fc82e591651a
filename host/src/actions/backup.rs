//! Backups of the files an install replaces: `<state_dir>/backups/<service>/<stamp>-<n>/`.
//!
//! A backup directory holds a copy of each target that existed, named after its role
//! (`certificate`, `key`, `chain`, `combined`), with the original's mode (and owner, where the
//! run may set it), and `manifest.json`, which says for every target where it lives, whether it
//! existed, and its mode and owner. `rejected/` holds new material that was taken back out after
//! a failed reload or an interrupted install, so that it is not lost either. Every directory
//! here is `0700`.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::errors::InstallError;
use super::journal::Role;
use super::{BACKUPS_DIR, create_private_dir, encode_service, fsync_dir, utc_stamp};
use crate::fs::{FsError, Target, limits};

/// How many backups are kept per service by default (`[backups] keep`); the newest are kept,
/// and the one an install just made is never deleted.
pub const BACKUPS_TO_KEEP: usize = 10;

/// Which backups of a service are kept: a backup is deleted only when it is beyond the newest
/// `keep` **and** older than `keep_days` (`[backups]`); the newest, and the one an install just
/// made, never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep: usize,
    pub keep_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { keep: BACKUPS_TO_KEEP, keep_days: 0 }
    }
}

const MANIFEST: &str = "manifest.json";
const REJECTED: &str = "rejected";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Manifest {
    pub version: u32,
    pub service: String,
    pub created_at: i64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct ManifestFile {
    pub role: Role,
    /// Where the file lives (symbolic links resolved).
    pub target: PathBuf,
    /// Whether it existed when the backup was made; if not, a restore removes it.
    pub existed: bool,
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

/// The directory that holds all backups of `service`.
pub(crate) fn service_dir(state_dir: &Path, service: &str) -> PathBuf {
    state_dir.join(BACKUPS_DIR).join(encode_service(service))
}

/// Copies each of `targets` that exists into a new backup directory and writes its manifest,
/// all fsynced. The targets are read through their link-safe handles, bounded
/// ([`limits::PEM_FILE`]): a huge file fails the install instead of filling memory and the
/// state directory. Returns the directory and the manifest.
pub(crate) fn create(
    state_dir: &Path,
    service: &str,
    targets: &[(Role, &Target)],
    now: i64,
) -> Result<(PathBuf, Manifest), InstallError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Io { service: service.to_string(), action, path, source }
    };
    let parent = service_dir(state_dir, service);
    create_private_dir(&state_dir.join(BACKUPS_DIR), true)
        .and_then(|()| create_private_dir(&parent, true))
        .map_err(|(p, e)| io("create the backup directory", &p)(e))?;

    let stamp = utc_stamp(now);
    // One past the highest counter of this second: a pruned number is never reused, so the
    // counter keeps sorting in creation order.
    let mut n = fs::read_dir(&parent)
        .map_err(io("list the backups in", &parent))?
        .filter_map(Result::ok)
        .filter_map(|e| parse_backup_name(&e.file_name().to_string_lossy()))
        .filter(|(s, _)| *s == stamp)
        .map(|(_, n)| n + 1)
        .max()
        .unwrap_or(1);
    let dir = loop {
        let candidate = parent.join(format!("{stamp}-{n}"));
        match fs::DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => break candidate,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(io("create the backup directory", &candidate)(e)),
        }
    };

    let mut manifest =
        Manifest { version: 1, service: service.to_string(), created_at: now, files: Vec::new() };
    for (role, target) in targets {
        let path = target.path();
        let entry = match target.read_existing(limits::PEM_FILE) {
            Ok(None) => {
                ManifestFile { role: *role, target: path, existed: false, mode: None, uid: None, gid: None }
            }
            Ok(Some((bytes, meta))) => {
                let mode = meta.mode & 0o777;
                let dest = dir.join(role.as_str());
                write_private(&dest, &bytes, mode, Some((meta.uid, meta.gid)))
                    .map_err(io("write the backup", &dest))?;
                ManifestFile {
                    role: *role,
                    target: path,
                    existed: true,
                    mode: Some(mode),
                    uid: Some(meta.uid),
                    gid: Some(meta.gid),
                }
            }
            Err(FsError::Io { action, path, source }) => {
                return Err(InstallError::Io { service: service.to_string(), action, path, source });
            }
            Err(e) => {
                return Err(InstallError::InvalidTarget {
                    service: service.to_string(),
                    path,
                    reason: format!("cannot be backed up: {e}"),
                });
            }
        };
        manifest.files.push(entry);
    }
    let manifest_path = dir.join(MANIFEST);
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other);
    json.and_then(|j| write_private(&manifest_path, &j, 0o600, None))
        .map_err(io("write the backup manifest", &manifest_path))?;
    fsync_dir(&dir).map_err(io("sync", &dir))?;
    fsync_dir(&parent).map_err(io("sync", &parent))?;
    Ok((dir, manifest))
}

/// Creates `dest` (which must not exist) with `mode` and, where this run may, `owner`, then
/// writes `bytes` and fsyncs (see [`crate::fs::write_new_private`]).
fn write_private(dest: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    crate::fs::write_new_private(dest, bytes, mode, owner).map_err(io::Error::from)
}

/// Reads the manifest of a backup directory.
pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let bytes = crate::fs::read_trusted(&dir.join(MANIFEST), limits::STATE_FILE)
        .map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde echoes the bad value (an unknown variant), which a damaged file can make huge.
        format!("{MANIFEST} is not a backup manifest: {}", crate::text::untrusted_max(&e.to_string(), 400))
    })
}

/// The copy of `role` in a backup directory.
pub(crate) fn file_in(dir: &Path, role: Role) -> PathBuf {
    dir.join(role.as_str())
}

/// Keeps new material that is being taken back out in `<backup>/rejected/<role>` (`0600`).
/// An existing copy is left as it is (a repeated recovery keeps the first).
pub(crate) fn preserve_rejected(dir: &Path, role: Role, bytes: &[u8]) -> io::Result<()> {
    let rejected = dir.join(REJECTED);
    create_private_dir(&rejected, true).map_err(|(_, e)| e)?;
    match write_private(&rejected.join(role.as_str()), bytes, 0o600, None) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other.and_then(|()| fsync_dir(&rejected)),
    }
}

/// The rejected copy of `role`, if one was kept.
#[cfg(test)]
pub(crate) fn rejected_file(dir: &Path, role: Role) -> PathBuf {
    dir.join(REJECTED).join(role.as_str())
}

/// Deletes the backups of `service` that `retention` does not keep (at `now`), never `current`
/// nor the newest. Returns the directories deleted and the warnings of those that could not be.
pub(crate) fn prune(
    state_dir: &Path,
    service: &str,
    current: &Path,
    retention: Retention,
    now: i64,
) -> (Vec<PathBuf>, Vec<String>) {
    let parent = service_dir(state_dir, service);
    let mut warnings = Vec::new();
    let entries = match fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) => {
            warnings.push(format!("service {service}: cannot list the backups in {}: {e}", parent.display()));
            return (Vec::new(), warnings);
        }
    };
    let mut backups: Vec<((String, u64), PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = parse_backup_name(&name)?;
            Some((key, entry.path()))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(retention.keep.max(1));
    let cutoff = now.saturating_sub(i64::from(retention.keep_days) * 86_400);
    let mut removed = Vec::new();
    for ((stamp, _), path) in backups.into_iter().take(excess) {
        let made = chrono::NaiveDateTime::parse_from_str(&stamp, "%Y%m%dT%H%M%SZ")
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(i64::MIN);
        if path == current || (retention.keep_days > 0 && made >= cutoff) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => removed.push(path),
            Err(e) => warnings
                .push(format!("service {service}: cannot delete the old backup {}: {e}", path.display())),
        }
    }
    (removed, warnings)
}

/// Whether `name` is the name of a backup directory (`YYYYmmddTHHMMSSZ-<n>`).
pub(crate) fn is_backup_name(name: &str) -> bool {
    parse_backup_name(name).is_some()
}

/// `YYYYmmddTHHMMSSZ-<n>` → (stamp, n).
fn parse_backup_name(name: &str) -> Option<(String, u64)> {
    let (stamp, n) = name.split_once('-')?;
    let ok = stamp.len() == 16
        && stamp.as_bytes()[8] == b'T'
        && stamp.as_bytes()[15] == b'Z'
        && stamp[..8].bytes().all(|b| b.is_ascii_digit())
        && stamp[9..15].bytes().all(|b| b.is_ascii_digit());
    let n = n.parse().ok()?;
    ok.then(|| (stamp.to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_sort_by_time_then_counter() {
        assert_eq!(parse_backup_name("20250101T000000Z-10"), Some(("20250101T000000Z".into(), 10)));
        assert_eq!(parse_backup_name("20250101T000000Z"), None);
        assert_eq!(parse_backup_name("rejected"), None);
        assert_eq!(parse_backup_name("2025010XT000000Z-1"), None);
        let mut v = [
            parse_backup_name("20250101T000000Z-10"),
            parse_backup_name("20250101T000000Z-9"),
            parse_backup_name("20241231T235959Z-1"),
        ];
        v.sort();
        assert_eq!(v[0], Some(("20241231T235959Z".into(), 1)));
        assert_eq!(v[2], Some(("20250101T000000Z".into(), 10)));
    }

    #[test]
    fn prune_keeps_the_newest_and_the_current() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let parent = service_dir(tmp.path(), "svc");
        fs::create_dir_all(&parent).expect("mkdir");
        for i in 0..13 {
            fs::create_dir(parent.join(format!("20250101T0000{i:02}Z-1"))).expect("mkdir");
        }
        fs::create_dir(parent.join("not-a-backup")).expect("mkdir");
        // Pretend the current one is the oldest (a clock that went backwards).
        let current = parent.join("20250101T000000Z-1");
        let (removed, warnings) = prune(tmp.path(), "svc", &current, Retention::default(), 1_767_225_600);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(removed.len(), 2);
        assert!(current.exists());
        assert!(!parent.join("20250101T000001Z-1").exists());
        assert!(!parent.join("20250101T000002Z-1").exists());
        assert!(parent.join("20250101T000003Z-1").exists());
        assert!(parent.join("not-a-backup").exists());
    }

    #[test]
    fn an_age_keeps_younger_backups_beyond_the_count() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let parent = service_dir(tmp.path(), "svc");
        fs::create_dir_all(&parent).expect("mkdir");
        // One backup a day, 2025-01-01 to 2025-01-05; "now" is 2025-01-06 00:00 UTC.
        for day in 1..=5 {
            fs::create_dir(parent.join(format!("202501{day:02}T000000Z-1"))).expect("mkdir");
        }
        let now = 1_735_689_600 + 5 * 86_400;
        let current = parent.join("20250105T000000Z-1");
        // keep 1, keep-days 3: beyond the newest, those older than 3 days (Jan 1 and 2) go.
        let (removed, _) = prune(tmp.path(), "svc", &current, Retention { keep: 1, keep_days: 3 }, now);
        let mut gone: Vec<String> =
            removed.iter().map(|p| p.file_name().expect("name").to_string_lossy().into_owned()).collect();
        gone.sort();
        assert_eq!(gone, ["20250101T000000Z-1", "20250102T000000Z-1"]);
        // keep 0 is read as 1: the newest always stays.
        let (removed, _) = prune(tmp.path(), "svc", &current, Retention { keep: 0, keep_days: 0 }, now);
        assert_eq!(removed.len(), 2);
        assert!(current.exists());
    }
}
