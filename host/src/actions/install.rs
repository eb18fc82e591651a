//! Safe, crash-consistent installs of certificate material, and the recovery of interrupted ones.
//!
//! # How an install proceeds
//!
//! 1. **preparing** — the journal (`<state_dir>/journal/<service>.json`, see [`journal`]) is
//!    written first, naming the targets and the name prefix of their temporary files. Then each
//!    new file is written to a temporary file *in its target's own directory* (so the final
//!    rename is atomic): the owner, group and mode are set on the empty file **before** any
//!    byte is written (a key is never readable by anyone it should not be, not even briefly),
//!    then the bytes, then fsync.
//! 2. The targets that exist are copied into `<state_dir>/backups/<service>/<stamp>-<n>/`
//!    (mode preserved, directories `0700`, fsynced), with a manifest.
//! 3. **prepared** — the journal now records the temporary files and the backup. **swapping** —
//!    each temporary file is renamed over its target (key, then chain, then certificate: the
//!    certificate, which services and watchers look at, comes last), then the directories are
//!    fsynced. **swapped**.
//! 4. The reload command runs (argv, no shell, with a timeout; several commands run in order and
//!    the first failure stops them; see [`reload`](mod@super::reload)). **reloaded** on success; then the journal is deleted (**done**) and old backups beyond
//!    [`BACKUPS_TO_KEEP`] are deleted (never the one just made). If the reload fails (non-zero
//!    exit, timeout, spawn error), the new files are kept in `<backup>/rejected/`, the backed-up
//!    files are put back by the same journalled procedure (a *restore*: its own
//!    preparing → … → reloaded), the reload runs again, and the error says how both reloads went.
//! 5. With [`install_checked`], a [`PostReloadCheck`] then asks the service whether it really
//!    serves the new certificate (live probes, see `crate::probe`) — after the reload succeeded
//!    (or right after the swap when there is no reload command), before the journal says
//!    **reloaded**. If it does not, the install is undone exactly as after a failed reload
//!    (rejected files kept, restore, reload again), the check is asked what is served after the
//!    rollback, and [`InstallError::NotServed`] reports both.
//!
//! # Recovery rule
//!
//! [`recover`] runs at the start of every run that changes anything (under the run lock). For
//! each journal left by a killed run:
//!
//! * **`preparing` / `prepared` install** — the swap had not started, the targets are the
//!   previous files, untouched: the temporary files are deleted (complete ones are first kept
//!   in `<backup>/rejected/`).
//! * **`swapping` / `swapped` install** — the swap started but no reload confirmed the new
//!   files: **always roll back** to the backup, even if every new file is already in place. The
//!   new files are kept in `<backup>/rejected/`, and every target is rewritten from the backup
//!   (or removed, if it did not exist before) by a journalled restore. Rolling back is the one
//!   rule that needs no judgement of which files are new: the backup is a complete, consistent
//!   set taken before anything moved, so the result is never a new certificate with an old key
//!   or the other way round; the next run's checks see the previous certificate and plan again.
//! * **any restore not finished** — the restore is done again from the start.
//! * **`reloaded` / `done`** — the change was complete: only the journal is cleared.
//!
//! After each recovery the certificate and key in place are checked with OpenSSL to belong
//! together ([`Pairing`]). A journal that cannot be read, or whose recovery fails, is moved
//! aside to `<service>.json.failed-<stamp>` (kept for people, reported as failed), so that the
//! service is not blocked forever; its backup stays.
//!
//! # Failpoints (tests only)
//!
//! Built with `cfg(test)` or the `failpoints` cargo feature, an install calls
//! `std::process::abort()` at the step named by the environment variable
//! `CHECKALLSSLCERTS_FAILPOINT` ([`FAILPOINT_ENV`](super::FAILPOINT_ENV)), so that an
//! integration test can kill a real run and check that the next run's [`recover`] repairs it.
//! The steps, in order ([`FAILPOINTS`](super::FAILPOINTS)), and what recovery then does:
//!
//! | name | where | journal phase left | recovery |
//! |------|-------|--------------------|----------|
//! | `after-temp-write` | all temporary files written and fsynced | `preparing` | delete temps |
//! | `after-backup` | backup directory complete | `preparing` | delete temps |
//! | `after-journal` | journal says `prepared` | `prepared` | keep new in `rejected/`, delete temps |
//! | `between-renames` | after the first rename, before the second (only with more than one file: not for the combined layout) | `swapping` | roll back |
//! | `after-swap` | all renamed, journal says `swapped` | `swapped` | roll back |
//! | `before-reload` | just before the reload command runs (only with a reload command) | `swapped` | roll back |
//! | `after-reload` | reload succeeded, journal says `reloaded` (only with a reload command) | `reloaded` | clear journal, new files stay |
//!
//! Failpoints fire only in the install itself, not in the restore after a failed reload.
//!
//! # Decisions where the brief was silent
//!
//! * Owner/group `None` keeps the current file's owner/group (a new file gets the running
//!   user's). A configured owner/group must exist (names are looked up with NSS; a number is
//!   accepted as an id) and must be settable, otherwise the install fails; an inherited one is
//!   set where the run may (as root).
//! * A key mode with any bit for "others" (e.g. `0644`) is refused, as are bits beyond `0777`.
//!   The combined layout's single file holds the key and so gets `key_mode`.
//! * With the separate layout, the certificate file gets the leaf followed by the chain when no
//!   chain file is configured, and the leaf alone when one is; a chain file gets exactly the
//!   chain — empty for a self-signed placeholder.
//! * A target that is a symbolic link is followed: the file it points to is replaced (and
//!   backed up), the link stays. Targets must be absolute paths in existing directories.
//! * The material is checked before anything is written: leaf and chain must parse and the key
//!   must belong to the leaf.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, fchown};
use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::X509;
use tempfile::TempPath;
use zeroize::Zeroizing;

use super::backup;
pub use super::backup::BACKUPS_TO_KEEP;
use super::errors::{InstallError, ReloadError, RollbackOutcome};
use super::journal::{self, JOURNAL_VERSION, Journal, JournalFile, Operation, Phase, Role};
use super::placeholder::{Material, key_matches};
use super::reload::{self, ReloadCommand, ReloadOutput};
use super::{create_state_dirs, encode_service, failpoint, fsync_dir, unix_now, utc_stamp};
use crate::config::types::Layout;

/// Where and how one service's certificate material is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// The service, as named in the configuration (used in messages, journal and backups).
    pub service: String,
    pub layout: Layout,
    /// The certificate file; with [`Layout::Combined`] the one file that holds everything.
    pub certificate: PathBuf,
    /// The key file; required with [`Layout::Separate`], not allowed with [`Layout::Combined`].
    pub key: Option<PathBuf>,
    /// The chain file, if the service keeps the chain apart (separate layout only).
    pub chain: Option<PathBuf>,
    /// User that owns the installed files; `None` keeps the current owner.
    pub owner: Option<String>,
    /// Group of the installed files; `None` keeps the current group.
    pub group: Option<String>,
    /// Mode of the certificate and chain files.
    pub certificate_mode: u32,
    /// Mode of the key file, and of the combined file.
    pub key_mode: u32,
}

impl InstallTarget {
    /// The usual mode of a certificate or chain file.
    pub const DEFAULT_CERTIFICATE_MODE: u32 = 0o644;
    /// The usual mode of a key (or combined) file.
    pub const DEFAULT_KEY_MODE: u32 = 0o600;

    /// A separate-layout target with the default modes and owners kept.
    pub fn separate(service: &str, certificate: PathBuf, key: PathBuf) -> InstallTarget {
        InstallTarget {
            service: service.to_string(),
            layout: Layout::Separate,
            certificate,
            key: Some(key),
            chain: None,
            owner: None,
            group: None,
            certificate_mode: Self::DEFAULT_CERTIFICATE_MODE,
            key_mode: Self::DEFAULT_KEY_MODE,
        }
    }

    /// A combined-layout target with the default modes and owners kept.
    pub fn combined(service: &str, file: PathBuf) -> InstallTarget {
        InstallTarget {
            layout: Layout::Combined,
            key: None,
            ..InstallTarget::separate(service, file, PathBuf::new())
        }
    }
}

/// One file an install put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledFile {
    pub role: Role,
    /// Where it was written (symbolic links resolved).
    pub path: PathBuf,
    pub mode: u32,
    /// Whether a previous file was replaced (and backed up).
    pub replaced: bool,
}

/// What a successful install did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    pub service: String,
    pub files: Vec<InstalledFile>,
    /// The backup of the previous files.
    pub backup_dir: PathBuf,
    /// The reload's output, if there was a reload command.
    pub reload: Option<ReloadOutput>,
    /// Old backups deleted to keep [`BACKUPS_TO_KEEP`].
    pub pruned_backups: Vec<PathBuf>,
    /// Things that went wrong without failing the install (an old backup not deleted...).
    pub warnings: Vec<String>,
    /// What the post-reload check saw, if there was one (see [`install_checked`]).
    pub verified: Option<String>,
}

/// A check run once the new files are in place and the reload (if any) succeeded: does the
/// service really use them? (A reload command can exit 0 while the old certificate is still
/// served.) See [`install_checked`].
pub trait PostReloadCheck {
    /// `Ok(what was seen)` once the service serves the certificate whose SHA-256 fingerprint
    /// (lowercase hex) is `fingerprint`; `Err(what it serves instead)` if it does not within
    /// the check's own time limit. `Err` rolls the install back.
    fn new_certificate_served(&self, fingerprint: &str) -> Result<String, String>;
    /// Called after such a rollback and its reload: what the service serves now.
    fn after_rollback(&self) -> String;
}

/// Installs `material` for `target`, then runs `reload` (see the module documentation).
pub fn install(
    state_dir: &Path,
    target: &InstallTarget,
    material: &Material,
    reload: Option<&ReloadCommand>,
) -> Result<InstallReport, InstallError> {
    install_checked(state_dir, target, material, reload, None)
}

/// [`install`], then, if `check` is given, asks it whether the service serves the new
/// certificate. If it does not, the install is undone exactly as after a failed reload: the new
/// files are kept in `<backup>/rejected/`, the previous files are restored, the reload runs
/// again, and [`InstallError::NotServed`] says what was served before and after. The check runs
/// before the journal says `reloaded`, so a run killed during it is rolled back by recovery.
pub fn install_checked(
    state_dir: &Path,
    target: &InstallTarget,
    material: &Material,
    reload: Option<&ReloadCommand>,
    check: Option<&dyn PostReloadCheck>,
) -> Result<InstallReport, InstallError> {
    let service = target.service.as_str();
    let plan = plan_install(target, material)?;
    create_state_dirs(state_dir).map_err(|(path, source)| InstallError::Io {
        service: service.to_string(),
        action: "create the state directory",
        path,
        source,
    })?;
    let journal_path = journal::path(state_dir, service);
    if journal_path.exists() {
        return Err(InstallError::PendingJournal { service: service.to_string(), journal: journal_path });
    }

    let mut journal = new_journal(service, Operation::Install, &plan, None);
    save(state_dir, &journal)?;
    let temps = match stage(service, &plan) {
        Ok(t) => t,
        Err(e) => {
            let _ = journal::remove(state_dir, service);
            return Err(e);
        }
    };
    failpoint("after-temp-write");

    let targets: Vec<(Role, PathBuf)> = plan.iter().map(|p| (p.role, p.target.clone())).collect();
    let (backup_dir, manifest) = match backup::create(state_dir, service, &targets, unix_now()) {
        Ok(b) => b,
        Err(e) => {
            drop(temps);
            let _ = journal::remove(state_dir, service);
            return Err(e);
        }
    };
    failpoint("after-backup");

    journal.backup_dir = Some(backup_dir.clone());
    for (file, temp) in journal.files.iter_mut().zip(&temps) {
        file.temp = temp.as_ref().map(|t| t.to_path_buf());
    }
    journal.phase = Phase::Prepared;
    if let Err(e) = save(state_dir, &journal) {
        drop(temps);
        let _ = journal::remove(state_dir, service);
        return Err(e);
    }
    failpoint("after-journal");

    if let Err(e) = swap(state_dir, &mut journal, &plan, temps, true) {
        let rollback = rollback(state_dir, service, &backup_dir, None);
        return Err(InstallError::Swap { service: service.to_string(), source_error: Box::new(e), rollback });
    }
    failpoint("after-swap");

    let mut warnings = Vec::new();
    let mut reload_output = None;
    if let Some(cmd) = reload {
        failpoint("before-reload");
        match reload::run(cmd, service) {
            Ok(out) => reload_output = Some(out),
            Err(first) => {
                keep_rejected_plan(&plan, &backup_dir);
                let rollback = rollback(state_dir, service, &backup_dir, Some(cmd));
                return Err(InstallError::ReloadFailed {
                    service: service.to_string(),
                    first: Box::new(first),
                    rollback,
                });
            }
        }
    }
    let mut verified = None;
    if let Some(check) = check {
        let fingerprint = leaf_fingerprint(material);
        match check.new_certificate_served(&fingerprint) {
            Ok(seen) => verified = Some(seen),
            Err(reason) => {
                keep_rejected_plan(&plan, &backup_dir);
                let rollback = rollback(state_dir, service, &backup_dir, reload);
                let after_rollback = rollback.restored().then(|| check.after_rollback());
                return Err(InstallError::NotServed {
                    service: service.to_string(),
                    reason,
                    reloaded: reload.is_some(),
                    rollback,
                    after_rollback,
                });
            }
        }
    }
    if reload.is_some() {
        journal.phase = Phase::Reloaded;
        if let Err(e) = save(state_dir, &journal) {
            warnings.push(e.to_string());
        }
        failpoint("after-reload");
    }

    journal::remove(state_dir, service).map_err(|source| InstallError::Io {
        service: service.to_string(),
        action: "remove the journal",
        path: journal::path(state_dir, service),
        source,
    })?;
    let (pruned_backups, prune_warnings) = backup::prune(state_dir, service, &backup_dir);
    warnings.extend(prune_warnings);

    let files = plan
        .iter()
        .zip(&manifest.files)
        .map(|(p, m)| InstalledFile {
            role: p.role,
            path: p.target.clone(),
            mode: p.mode,
            replaced: m.existed,
        })
        .collect();
    Ok(InstallReport {
        service: service.to_string(),
        files,
        backup_dir,
        reload: reload_output,
        pruned_backups,
        warnings,
        verified,
    })
}

/// Best effort: the new files of an install being undone are kept in the backup's `rejected/`
/// (a failure there must not stop the rollback).
fn keep_rejected_plan(plan: &[Planned], backup_dir: &Path) {
    for p in plan {
        if let Some(content) = &p.content {
            let _ = backup::preserve_rejected(backup_dir, p.role, content);
        }
    }
}

/// The SHA-256 fingerprint (lowercase hex) of the material's leaf certificate, as the facts
/// spell it; empty if the leaf cannot be read (the material was verified before, so it can).
fn leaf_fingerprint(material: &Material) -> String {
    X509::from_pem(&material.certificate_pem)
        .and_then(|leaf| leaf.to_der())
        .map(|der| hex::encode(openssl::sha::sha256(&der)))
        .unwrap_or_default()
}

/// One file to put in place (or, in a restore, to remove).
struct Planned {
    role: Role,
    /// Resolved target path.
    target: PathBuf,
    /// The new bytes; `None` removes the target (a restore of a file that did not exist).
    content: Option<Zeroizing<Vec<u8>>>,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    /// Fail when the owner cannot be set (configured owner) rather than carry on (inherited).
    strict_owner: bool,
}

fn invalid(service: &str, path: &Path, reason: impl Into<String>) -> InstallError {
    InstallError::InvalidTarget {
        service: service.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn plan_install(target: &InstallTarget, material: &Material) -> Result<Vec<Planned>, InstallError> {
    let service = target.service.as_str();
    if service.is_empty() || service.contains('\0') {
        return Err(invalid(service, &target.certificate, "the service name is empty"));
    }
    for (what, mode) in [("certificate", target.certificate_mode), ("key", target.key_mode)] {
        if mode & !0o777 != 0 {
            return Err(invalid(
                service,
                &target.certificate,
                format!("{what} mode {mode:o} has bits beyond 0777"),
            ));
        }
    }
    let key_path_for_msgs = target.key.as_deref().unwrap_or(&target.certificate);
    if target.key_mode & 0o007 != 0 {
        return Err(invalid(
            service,
            key_path_for_msgs,
            format!("key mode {:04o} would let every user read or change the private key", target.key_mode),
        ));
    }
    material.verify().map_err(|reason| InstallError::InvalidMaterial {
        service: service.to_string(),
        path: target.certificate.clone(),
        reason,
    })?;

    let leaf_and_chain = || concat(&[&material.certificate_pem, &material.chain_pem]);
    let mut files: Vec<(Role, PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
    match target.layout {
        Layout::Combined => {
            if let Some(k) = &target.key {
                return Err(invalid(service, k, "the combined layout takes no separate key file"));
            }
            if let Some(c) = &target.chain {
                return Err(invalid(service, c, "the combined layout takes no separate chain file"));
            }
            let content = concat(&[&material.certificate_pem, &material.chain_pem, &material.key_pem]);
            files.push((Role::Combined, target.certificate.clone(), content, target.key_mode));
        }
        Layout::Separate => {
            let Some(key) = &target.key else {
                return Err(invalid(service, &target.certificate, "the separate layout needs a key file"));
            };
            files.push((Role::Key, key.clone(), concat(&[&material.key_pem]), target.key_mode));
            if let Some(chain) = &target.chain {
                files.push((
                    Role::Chain,
                    chain.clone(),
                    concat(&[&material.chain_pem]),
                    target.certificate_mode,
                ));
                files.push((
                    Role::Certificate,
                    target.certificate.clone(),
                    concat(&[&material.certificate_pem]),
                    target.certificate_mode,
                ));
            } else {
                files.push((
                    Role::Certificate,
                    target.certificate.clone(),
                    leaf_and_chain(),
                    target.certificate_mode,
                ));
            }
        }
    }

    let uid = match &target.owner {
        Some(name) => Some(lookup_user(name).map_err(|reason| InstallError::Owner {
            service: service.to_string(),
            path: target.certificate.clone(),
            reason,
        })?),
        None => None,
    };
    let gid = match &target.group {
        Some(name) => Some(lookup_group(name).map_err(|reason| InstallError::Owner {
            service: service.to_string(),
            path: target.certificate.clone(),
            reason,
        })?),
        None => None,
    };

    let mut seen = BTreeSet::new();
    let mut plan = Vec::new();
    for (role, path, content, mode) in files {
        let resolved = resolve_target(service, &path)?;
        if !seen.insert(resolved.clone()) {
            return Err(invalid(service, &path, "the same file is configured for two roles"));
        }
        let current = fs::metadata(&resolved).ok();
        plan.push(Planned {
            role,
            target: resolved,
            content: Some(content),
            uid: uid.or(current.as_ref().map(MetadataExt::uid)),
            gid: gid.or(current.as_ref().map(MetadataExt::gid)),
            mode,
            strict_owner: target.owner.is_some() || target.group.is_some(),
        });
    }
    Ok(plan)
}

/// Concatenates PEM parts, skipping empty ones and making each end with a newline.
fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    for part in parts {
        if part.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.extend_from_slice(part);
        if !part.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// An absolute path to a regular file (following a symbolic link) or to a new file in an
/// existing directory.
fn resolve_target(service: &str, path: &Path) -> Result<PathBuf, InstallError> {
    if !path.is_absolute() || path.file_name().is_none() {
        return Err(invalid(service, path, "the path must be absolute and name a file"));
    }
    let resolved = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            invalid(service, path, format!("is a symbolic link that cannot be followed: {e}"))
        })?,
        Ok(_) => path.to_path_buf(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            if !parent.is_dir() {
                return Err(invalid(
                    service,
                    path,
                    format!("the directory {} does not exist", parent.display()),
                ));
            }
            return Ok(path.to_path_buf());
        }
        Err(e) => {
            return Err(InstallError::Io {
                service: service.to_string(),
                action: "inspect",
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    match fs::metadata(&resolved) {
        Ok(m) if m.is_file() => Ok(resolved),
        Ok(_) => Err(invalid(service, path, "exists and is not a regular file")),
        Err(e) => Err(invalid(service, path, format!("cannot be inspected: {e}"))),
    }
}

fn lookup_user(name: &str) -> Result<u32, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => name.parse().map_err(|_| format!("there is no user {name:?}")),
        Err(e) => Err(format!("cannot look up the user {name:?}: {e}")),
    }
}

fn lookup_group(name: &str) -> Result<u32, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => name.parse().map_err(|_| format!("there is no group {name:?}")),
        Err(e) => Err(format!("cannot look up the group {name:?}: {e}")),
    }
}

fn temp_prefix(service: &str, role: Role) -> String {
    format!(".checkallsslcerts.{}.{}.", encode_service(service), role.as_str())
}

fn new_journal(
    service: &str,
    operation: Operation,
    plan: &[Planned],
    backup_dir: Option<PathBuf>,
) -> Journal {
    Journal {
        version: JOURNAL_VERSION,
        service: service.to_string(),
        operation,
        phase: Phase::Preparing,
        pid: std::process::id(),
        started_at: unix_now(),
        backup_dir,
        files: plan
            .iter()
            .map(|p| JournalFile {
                role: p.role,
                target: p.target.clone(),
                temp: None,
                temp_prefix: temp_prefix(service, p.role),
                remove: p.content.is_none(),
            })
            .collect(),
    }
}

fn save(state_dir: &Path, journal: &Journal) -> Result<(), InstallError> {
    journal.save(state_dir).map_err(|source| InstallError::Io {
        service: journal.service.clone(),
        action: "write the journal",
        path: journal::path(state_dir, &journal.service),
        source,
    })
}

/// Writes each planned file's bytes to a temporary file next to its target. The temporary
/// files are deleted when the returned paths are dropped (until they are renamed).
fn stage(service: &str, plan: &[Planned]) -> Result<Vec<Option<TempPath>>, InstallError> {
    let mut temps = Vec::with_capacity(plan.len());
    for p in plan {
        let Some(content) = &p.content else {
            temps.push(None);
            continue;
        };
        let dir = p.target.parent().unwrap_or(Path::new("/"));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| InstallError::Io { service: service.to_string(), action, path, source }
        };
        // Created 0600 by tempfile: nobody else can open it while owner and mode are set.
        let mut tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(service, p.role))
            .suffix(".tmp")
            .rand_bytes(8)
            .tempfile_in(dir)
            .map_err(io("create a temporary file in", dir))?;
        let tmp_path = tmp.path().to_path_buf();
        let file = tmp.as_file();
        let meta = file.metadata().map_err(io("inspect", &tmp_path))?;
        let uid = p.uid.filter(|u| *u != meta.uid());
        let gid = p.gid.filter(|g| *g != meta.gid());
        if uid.is_some() || gid.is_some() {
            // An inherited owner is set where this run may (as root); a configured one must be.
            match fchown(file, uid, gid) {
                Err(e) if p.strict_owner => {
                    return Err(InstallError::Owner {
                        service: service.to_string(),
                        path: p.target.clone(),
                        reason: format!("cannot chown {}: {e}", tmp_path.display()),
                    });
                }
                _ => {}
            }
        }
        file.set_permissions(fs::Permissions::from_mode(p.mode)).map_err(io("set the mode of", &tmp_path))?;
        tmp.write_all(content).map_err(io("write", &tmp_path))?;
        tmp.as_file().sync_all().map_err(io("sync", &tmp_path))?;
        temps.push(Some(tmp.into_temp_path()));
    }
    Ok(temps)
}

/// Renames the temporary files over their targets (removing the targets planned for removal)
/// under the journal: `swapping`, then `swapped` once the directories are fsynced.
fn swap(
    state_dir: &Path,
    journal: &mut Journal,
    plan: &[Planned],
    temps: Vec<Option<TempPath>>,
    failpoints: bool,
) -> Result<(), InstallError> {
    let service = journal.service.clone();
    journal.phase = Phase::Swapping;
    save(state_dir, journal)?;
    let mut dirs = BTreeSet::new();
    let mut remaining = temps.into_iter();
    for (i, (p, temp)) in plan.iter().zip(remaining.by_ref()).enumerate() {
        if i == 1 && failpoints {
            failpoint("between-renames");
        }
        let result = match temp {
            Some(temp) => temp.persist(&p.target).map_err(|e| e.error),
            None => match fs::remove_file(&p.target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        result.map_err(|source| InstallError::Io {
            service: service.clone(),
            action: if p.content.is_some() { "move the new file into place at" } else { "remove" },
            path: p.target.clone(),
            source,
        })?;
        dirs.insert(p.target.parent().unwrap_or(Path::new("/")).to_path_buf());
    }
    for dir in dirs {
        fsync_dir(&dir).map_err(|source| InstallError::Io {
            service: service.clone(),
            action: "sync the directory",
            path: dir.clone(),
            source,
        })?;
    }
    journal.phase = Phase::Swapped;
    save(state_dir, journal)
}

/// Puts the files of `backup_dir` back in place by a journalled restore, then runs `reload`
/// if given. `Ok(None)`: restored, no reload asked; `Ok(Some(result))`: restored, and how the
/// reload went. On error the restore journal is left for the next recovery.
fn restore_backup(
    state_dir: &Path,
    service: &str,
    backup_dir: &Path,
    reload: Option<&ReloadCommand>,
) -> Result<Option<Result<ReloadOutput, ReloadError>>, InstallError> {
    let manifest = backup::read_manifest(backup_dir).map_err(|reason| InstallError::Backup {
        service: service.to_string(),
        path: backup_dir.to_path_buf(),
        reason,
    })?;
    let mut plan = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        let content = if f.existed {
            let path = backup::file_in(backup_dir, f.role);
            let mut bytes = Zeroizing::new(Vec::new());
            File::open(&path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(|source| {
                InstallError::Io {
                    service: service.to_string(),
                    action: "read the backup",
                    path: path.clone(),
                    source,
                }
            })?;
            Some(bytes)
        } else {
            None
        };
        let default_mode = if f.role.is_secret() { 0o600 } else { 0o644 };
        plan.push(Planned {
            role: f.role,
            target: f.target.clone(),
            content,
            uid: f.uid,
            gid: f.gid,
            mode: f.mode.unwrap_or(default_mode) & 0o777,
            strict_owner: false,
        });
    }

    let mut journal = new_journal(service, Operation::Restore, &plan, Some(backup_dir.to_path_buf()));
    save(state_dir, &journal)?;
    let temps = stage(service, &plan)?;
    for (file, temp) in journal.files.iter_mut().zip(&temps) {
        file.temp = temp.as_ref().map(|t| t.to_path_buf());
    }
    journal.phase = Phase::Prepared;
    save(state_dir, &journal)?;
    swap(state_dir, &mut journal, &plan, temps, false)?;

    let reloaded = reload.map(|cmd| reload::run(cmd, service));
    if let Some(Ok(_)) = &reloaded {
        journal.phase = Phase::Reloaded;
        // The files are back either way; a journal that still says `swapped` would only make
        // the next recovery restore them once more.
        let _ = save(state_dir, &journal);
    }
    journal::remove(state_dir, service).map_err(|source| InstallError::Io {
        service: service.to_string(),
        action: "remove the journal",
        path: journal::path(state_dir, service),
        source,
    })?;
    Ok(reloaded)
}

fn rollback(
    state_dir: &Path,
    service: &str,
    backup_dir: &Path,
    reload: Option<&ReloadCommand>,
) -> RollbackOutcome {
    let backup_dir = backup_dir.to_path_buf();
    match restore_backup(state_dir, service, &backup_dir, reload) {
        Ok(None) => RollbackOutcome::Restored { backup_dir, reloaded: false },
        Ok(Some(Ok(_))) => RollbackOutcome::Restored { backup_dir, reloaded: true },
        Ok(Some(Err(e))) => RollbackOutcome::RestoredReloadFailed { backup_dir, error: Box::new(e) },
        Err(e) => RollbackOutcome::RestoreFailed { backup_dir, error: Box::new(e) },
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery

/// Whether the certificate and key in place belong together, checked after a recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// The key belongs to the certificate.
    Matched,
    /// They do not belong together, or one is missing or unreadable.
    Mismatched(String),
    /// Nothing to check: neither file is there (the install was into an empty place and was
    /// rolled back), or the recovery failed before the check.
    NotChecked(String),
}

/// What recovery did with one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryOutcome {
    /// The swap had not started: the new files were discarded, the previous ones were
    /// untouched.
    DiscardedNew,
    /// The previous files were restored from the backup.
    RolledBack,
    /// The change had completed (reloaded/done): only the journal was cleared.
    Completed,
    /// Recovery failed; the journal was moved aside to `kept_journal`.
    Failed { error: String, kept_journal: Option<PathBuf> },
}

/// What recovery found and did for one service.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    pub service: String,
    pub journal: PathBuf,
    pub operation: Option<Operation>,
    pub phase: Option<Phase>,
    pub backup_dir: Option<PathBuf>,
    pub outcome: RecoveryOutcome,
    pub pairing: Pairing,
}

impl RecoveryReport {
    /// Whether the service's files are known to be consistent again.
    pub fn is_ok(&self) -> bool {
        !matches!(self.outcome, RecoveryOutcome::Failed { .. })
            && !matches!(self.pairing, Pairing::Mismatched(_))
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.operation, self.phase) {
            (Some(op), Some(phase)) => format!(
                "an interrupted {} (phase {phase})",
                if op == Operation::Install { "install" } else { "restore" }
            ),
            _ => format!("an unreadable journal {}", self.journal.display()),
        };
        let backup =
            self.backup_dir.as_ref().map(|b| b.display().to_string()).unwrap_or_else(|| "(none)".into());
        write!(f, "service {}: {what} ", self.service)?;
        match &self.outcome {
            RecoveryOutcome::DiscardedNew => write!(f, "was discarded; the previous files were not touched")?,
            RecoveryOutcome::RolledBack => write!(f, "was rolled back to the backup {backup}")?,
            RecoveryOutcome::Completed => write!(f, "had completed; its journal was cleared")?,
            RecoveryOutcome::Failed { error, kept_journal } => {
                write!(f, "could not be recovered: {error}")?;
                if let Some(k) = kept_journal {
                    write!(f, " (journal kept as {})", k.display())?;
                }
            }
        }
        match &self.pairing {
            Pairing::Matched => write!(f, "; the certificate and key in place match"),
            Pairing::Mismatched(why) => write!(f, "; WARNING: {why}"),
            Pairing::NotChecked(_) => Ok(()),
        }
    }
}

/// Repairs whatever interrupted installs left behind (see the module documentation for the
/// rule). Call it at the start of every run that changes anything, holding the run lock.
pub fn recover(state_dir: &Path) -> Vec<RecoveryReport> {
    let journals = match journal::list(state_dir) {
        Ok(j) => j,
        Err(e) => {
            let dir = state_dir.join(super::JOURNAL_DIR);
            return vec![RecoveryReport {
                service: String::new(),
                journal: dir.clone(),
                operation: None,
                phase: None,
                backup_dir: None,
                outcome: RecoveryOutcome::Failed {
                    error: format!("cannot list the journals in {}: {e}", dir.display()),
                    kept_journal: None,
                },
                pairing: Pairing::NotChecked("recovery failed".into()),
            }];
        }
    };
    journals.iter().map(|path| recover_one(state_dir, path)).collect()
}

fn recover_one(state_dir: &Path, path: &Path) -> RecoveryReport {
    let j = match journal::read(path) {
        Ok(j) => j,
        Err(reason) => {
            let service = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            return RecoveryReport {
                service,
                journal: path.to_path_buf(),
                operation: None,
                phase: None,
                backup_dir: None,
                outcome: RecoveryOutcome::Failed {
                    error: format!("journal {}: {reason}", path.display()),
                    kept_journal: set_aside(path),
                },
                pairing: Pairing::NotChecked("recovery failed".into()),
            };
        }
    };
    let result = recover_journal(state_dir, &j).and_then(|outcome| {
        // A restore removes its own journal; this clears the others.
        match fs::remove_file(path) {
            Ok(()) => {
                let _ = fsync_dir(&state_dir.join(super::JOURNAL_DIR));
                Ok(outcome)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(outcome),
            Err(e) => Err(format!("cannot remove the journal {}: {e}", path.display())),
        }
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => RecoveryOutcome::Failed {
            error,
            kept_journal: if path.exists() { set_aside(path) } else { None },
        },
    };
    RecoveryReport {
        service: j.service.clone(),
        journal: path.to_path_buf(),
        operation: Some(j.operation),
        phase: Some(j.phase),
        backup_dir: j.backup_dir.clone(),
        outcome,
        pairing: check_pairing(&j.files),
    }
}

fn recover_journal(state_dir: &Path, j: &Journal) -> Result<RecoveryOutcome, String> {
    let backup_dir =
        || j.backup_dir.clone().ok_or_else(|| format!("the journal of {} names no backup", j.service));
    let restore = |dir: &Path| {
        restore_backup(state_dir, &j.service, dir, None)
            .map(|_| RecoveryOutcome::RolledBack)
            .map_err(|e| e.to_string())
    };
    match (j.operation, j.phase) {
        (_, Phase::Reloaded | Phase::Done) => {
            remove_temps(j)?;
            Ok(RecoveryOutcome::Completed)
        }
        (Operation::Install, Phase::Preparing) => {
            remove_temps(j)?;
            Ok(RecoveryOutcome::DiscardedNew)
        }
        (Operation::Install, Phase::Prepared) => {
            let dir = backup_dir()?;
            for f in &j.files {
                if let Some(temp) = &f.temp {
                    keep_rejected(&dir, f.role, temp);
                }
            }
            remove_temps(j)?;
            Ok(RecoveryOutcome::DiscardedNew)
        }
        (Operation::Install, Phase::Swapping | Phase::Swapped) => {
            let dir = backup_dir()?;
            for f in &j.files {
                // A temporary file still there was not renamed: it is the new file. Otherwise
                // the rename happened and the target is the new file.
                match &f.temp {
                    Some(temp) if temp.exists() => keep_rejected(&dir, f.role, temp),
                    _ => keep_rejected(&dir, f.role, &f.target),
                }
            }
            remove_temps(j)?;
            restore(&dir)
        }
        (Operation::Restore, _) => {
            let dir = backup_dir()?;
            remove_temps(j)?;
            restore(&dir)
        }
    }
}

/// Best effort: new material taken back out is kept in the backup's `rejected/`.
fn keep_rejected(backup_dir: &Path, role: Role, source: &Path) {
    let mut bytes = Zeroizing::new(Vec::new());
    if File::open(source).and_then(|mut f| f.read_to_end(&mut bytes)).is_ok() {
        let _ = backup::preserve_rejected(backup_dir, role, &bytes);
    }
}

/// Deletes the journal's temporary files: those it lists, and (for a run killed while
/// preparing, before it could list them) those in the targets' directories with its prefixes.
fn remove_temps(j: &Journal) -> Result<(), String> {
    let remove = |p: &Path| match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("service {}: cannot remove the temporary file {}: {e}", j.service, p.display()))
        }
        _ => Ok(()),
    };
    for f in &j.files {
        if let Some(temp) = &f.temp {
            remove(temp)?;
        }
        let Some(dir) = f.target.parent() else {
            continue;
        };
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&f.temp_prefix) && name.ends_with(".tmp") {
                remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// Moves an unrecoverable journal aside so that later runs are not blocked by it.
fn set_aside(path: &Path) -> Option<PathBuf> {
    let mut name = path.file_name()?.to_os_string();
    name.push(format!(".failed-{}", utc_stamp(unix_now())));
    let dest = path.with_file_name(name);
    fs::rename(path, &dest).ok().map(|()| dest)
}

/// Checks with OpenSSL that the key in place belongs to the certificate in place.
fn check_pairing(files: &[JournalFile]) -> Pairing {
    let find = |role| files.iter().find(|f| f.role == role).map(|f| f.target.as_path());
    let (cert_path, key_path) = match (find(Role::Combined), find(Role::Certificate), find(Role::Key)) {
        (Some(c), _, _) => (c, c),
        (None, Some(c), Some(k)) => (c, k),
        _ => return Pairing::NotChecked("no certificate and key to compare".into()),
    };
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => return Pairing::NotChecked("neither file is there".into()),
        (true, false) => {
            return Pairing::Mismatched(format!(
                "the certificate {} is there but the key {} is not",
                cert_path.display(),
                key_path.display()
            ));
        }
        (false, true) => {
            return Pairing::Mismatched(format!(
                "the key {} is there but the certificate {} is not",
                key_path.display(),
                cert_path.display()
            ));
        }
        (true, true) => {}
    }
    let cert = match fs::read(cert_path)
        .map_err(|e| e.to_string())
        .and_then(|b| X509::from_pem(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            return Pairing::Mismatched(format!(
                "the certificate {} is unreadable: {e}",
                cert_path.display()
            ));
        }
    };
    let key_bytes = match fs::read(key_path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) => {
            return Pairing::Mismatched(format!("the key {} is unreadable: {e}", key_path.display()));
        }
    };
    let key = match PKey::private_key_from_pem(&key_bytes) {
        Ok(k) => k,
        Err(_) => {
            return Pairing::Mismatched(format!(
                "the key {} is not a readable PEM private key",
                key_path.display()
            ));
        }
    };
    match key_matches(&cert, &key) {
        Ok(()) => Pairing::Matched,
        Err(why) => Pairing::Mismatched(format!("{} and {}: {why}", cert_path.display(), key_path.display())),
    }
}

#[cfg(test)]
mod tests;
