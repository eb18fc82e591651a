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
//!    the target's [`Retention`] are deleted (never the newest, never the one just made). If the reload fails (non-zero
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
//! * **What the administrator set is kept.** Owner/group `None` keeps the current file's
//!   owner/group (a new file gets the running user's); a mode `None` keeps the current file's
//!   mode (a new file gets `0644`, or `0600` for a file that holds a key). A configured
//!   owner/group must exist (names are looked up with NSS; a number is accepted as an id) and
//!   must be settable, otherwise the install fails; an inherited one is set where the run may
//!   (as root).
//! * A file that holds a key never gets a bit for "others": a configured key mode with one
//!   (e.g. `0644`) is refused, an existing key's mode loses it (with a warning), as are bits
//!   beyond `0777`. The combined layout's single file holds the key: it gets `certificate-mode`,
//!   as the configuration documents.
//! * With the separate layout, the certificate file gets the leaf followed by the chain when no
//!   chain file is configured, and the leaf alone when one is; a chain file gets exactly the
//!   chain — empty for a self-signed placeholder.
//! * **Links.** Targets are reached link-safely ([`crate::fs::resolve`]): a symbolic link on the
//!   way (the target itself or a directory above it) is followed only when root (or the user
//!   running the tool) owns it — then the file it points to is replaced (and backed up) and the
//!   link stays, as certbot's `live/` links expect. A link owned by anyone else is refused: the
//!   service fails naming it and nothing is written anywhere, since its owner could point it at
//!   any file. Temporary files are created `O_EXCL|O_NOFOLLOW` in the target's directory, owner
//!   and mode set on the descriptor, and renamed over the target's name (a link planted there
//!   after the check is replaced, never written through). Targets must be absolute paths in
//!   existing directories.
//! * The material is checked before anything is written: leaf and chain must parse and the key
//!   must belong to the leaf.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::fs::{self as safe_fs, FileMeta, FsError, Ownership, Target, TempFile, limits};

use super::backup;
pub use super::backup::{BACKUPS_TO_KEEP, Retention};
use super::errors::{InstallError, ReloadError, RollbackOutcome};
use super::journal::{self, JOURNAL_VERSION, Journal, JournalFile, Operation, Phase, Role};
use super::placeholder::{Material, key_matches};
use super::reload::{self, ReloadCommand, ReloadOutput};
use super::{create_state_dirs, encode_service, failpoint, unix_now, utc_stamp};
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
    /// Mode of the certificate and chain files, and of the combined file; `None` keeps an
    /// existing file's mode (a new one gets [`Self::DEFAULT_CERTIFICATE_MODE`], the combined
    /// file [`Self::DEFAULT_KEY_MODE`]).
    pub certificate_mode: Option<u32>,
    /// Mode of the key file (separate layout); `None` keeps an existing key's mode less any bit
    /// for others (a new one gets [`Self::DEFAULT_KEY_MODE`]).
    pub key_mode: Option<u32>,
    /// Which backups of the service are kept after a successful install (`[backups]`).
    pub retention: Retention,
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
            certificate_mode: None,
            key_mode: None,
            retention: Retention::default(),
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
    /// Old backups deleted by the target's [`Retention`].
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
    let mut warnings = Vec::new();
    let plan = plan_install(target, material, &mut warnings)?;
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

    let targets: Vec<(Role, &Target)> = plan.iter().map(|p| (p.role, &p.target)).collect();
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
        file.temp = temp.as_ref().map(TempFile::path);
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
    let (pruned_backups, prune_warnings) =
        backup::prune(state_dir, service, &backup_dir, target.retention, unix_now());
    warnings.extend(prune_warnings);

    let files = plan
        .iter()
        .zip(&manifest.files)
        .map(|(p, m)| InstalledFile { role: p.role, path: p.path.clone(), mode: p.mode, replaced: m.existed })
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
    /// The target, reached link-safely: its directory is held open.
    target: Target,
    /// Resolved target path (for the journal and messages).
    path: PathBuf,
    /// The new bytes; `None` removes the target (a restore of a file that did not exist).
    content: Option<Zeroizing<Vec<u8>>>,
    owner: Ownership,
    mode: u32,
}

fn invalid(service: &str, path: &Path, reason: impl Into<String>) -> InstallError {
    InstallError::InvalidTarget {
        service: service.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A file-layer error as an install error of `service`.
fn fs_error(service: &str, e: FsError) -> InstallError {
    match e {
        FsError::Owner { path, source } => InstallError::Owner {
            service: service.to_string(),
            path,
            reason: format!("cannot chown: {source}"),
        },
        FsError::Io { action, path, source } => {
            InstallError::Io { service: service.to_string(), action, path, source }
        }
        FsError::UntrustedLink { ref path, .. }
        | FsError::Untrusted { ref path, .. }
        | FsError::Invalid { ref path, .. }
        | FsError::TooLarge { ref path, .. } => {
            let path = path.clone();
            let whole = e.to_string();
            let shown = path.display().to_string();
            let reason =
                whole.strip_prefix(&shown).map(|r| r.trim_start_matches([':', ' '])).unwrap_or(&whole);
            invalid(service, &path, reason.to_string())
        }
    }
}

/// The mode a file gets: the configured one; else the existing file's (less any bit for
/// others if it holds a key, with a warning); else the default.
fn choose_mode(
    configured: Option<u32>,
    existing: Option<FileMeta>,
    default: u32,
    secret: bool,
    path: &Path,
    warnings: &mut Vec<String>,
) -> u32 {
    if let Some(mode) = configured {
        return mode;
    }
    match existing {
        Some(meta) if secret && meta.mode & 0o007 != 0 => {
            let tightened = meta.mode & 0o770;
            warnings.push(format!(
                "{} held a private key readable by every user (mode {:04o}); the new one is {tightened:04o}",
                path.display(),
                meta.mode & 0o777
            ));
            tightened
        }
        Some(meta) => meta.mode & 0o777,
        None => default,
    }
}

fn plan_install(
    target: &InstallTarget,
    material: &Material,
    warnings: &mut Vec<String>,
) -> Result<Vec<Planned>, InstallError> {
    let service = target.service.as_str();
    if service.is_empty() || service.contains('\0') {
        return Err(invalid(service, &target.certificate, "the service name is empty"));
    }
    for (what, mode) in [("certificate", target.certificate_mode), ("key", target.key_mode)] {
        if let Some(mode) = mode
            && mode & !0o777 != 0
        {
            return Err(invalid(
                service,
                &target.certificate,
                format!("{what} mode {mode:o} has bits beyond 0777"),
            ));
        }
    }
    // The mode of the file that holds the key, if configured.
    let (key_file, key_file_mode) = match target.layout {
        Layout::Separate => (target.key.as_deref().unwrap_or(&target.certificate), target.key_mode),
        Layout::Combined => (target.certificate.as_path(), target.certificate_mode.or(target.key_mode)),
    };
    if let Some(mode) = key_file_mode
        && mode & 0o007 != 0
    {
        return Err(invalid(
            service,
            key_file,
            format!("key mode {mode:04o} would let every user read or change the private key"),
        ));
    }
    material.verify().map_err(|reason| InstallError::InvalidMaterial {
        service: service.to_string(),
        path: target.certificate.clone(),
        reason,
    })?;

    // (role, path, content, configured mode, default mode)
    type File = (Role, PathBuf, Zeroizing<Vec<u8>>, Option<u32>, u32);
    let leaf_and_chain = || concat(&[&material.certificate_pem, &material.chain_pem]);
    let mut files: Vec<File> = Vec::new();
    let (cert_mode, default_cert) = (target.certificate_mode, InstallTarget::DEFAULT_CERTIFICATE_MODE);
    match target.layout {
        Layout::Combined => {
            if let Some(k) = &target.key {
                return Err(invalid(service, k, "the combined layout takes no separate key file"));
            }
            if let Some(c) = &target.chain {
                return Err(invalid(service, c, "the combined layout takes no separate chain file"));
            }
            let content = concat(&[&material.certificate_pem, &material.chain_pem, &material.key_pem]);
            files.push((
                Role::Combined,
                target.certificate.clone(),
                content,
                key_file_mode,
                InstallTarget::DEFAULT_KEY_MODE,
            ));
        }
        Layout::Separate => {
            let Some(key) = &target.key else {
                return Err(invalid(service, &target.certificate, "the separate layout needs a key file"));
            };
            files.push((
                Role::Key,
                key.clone(),
                concat(&[&material.key_pem]),
                target.key_mode,
                InstallTarget::DEFAULT_KEY_MODE,
            ));
            if let Some(chain) = &target.chain {
                files.push((
                    Role::Chain,
                    chain.clone(),
                    concat(&[&material.chain_pem]),
                    cert_mode,
                    default_cert,
                ));
                files.push((
                    Role::Certificate,
                    target.certificate.clone(),
                    concat(&[&material.certificate_pem]),
                    cert_mode,
                    default_cert,
                ));
            } else {
                files.push((
                    Role::Certificate,
                    target.certificate.clone(),
                    leaf_and_chain(),
                    cert_mode,
                    default_cert,
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
    for (role, path, content, configured, default) in files {
        let resolved = resolve_target(service, &path)?;
        let resolved_path = resolved.path();
        if !seen.insert(resolved_path.clone()) {
            return Err(invalid(service, &path, "the same file is configured for two roles"));
        }
        let current = resolved.existing();
        let mode = choose_mode(configured, current, default, role.is_secret(), &resolved_path, warnings);
        plan.push(Planned {
            role,
            path: resolved_path,
            target: resolved,
            content: Some(content),
            owner: Ownership {
                uid: uid.or(current.map(|m| m.uid)),
                gid: gid.or(current.map(|m| m.gid)),
                strict: target.owner.is_some() || target.group.is_some(),
            },
            mode,
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

/// An absolute path to a regular file or to a new file in an existing directory, reached
/// link-safely (see the module documentation).
fn resolve_target(service: &str, path: &Path) -> Result<Target, InstallError> {
    if !path.is_absolute() || path.file_name().is_none() {
        return Err(invalid(service, path, "the path must be absolute and name a file"));
    }
    safe_fs::resolve(path).map_err(|e| {
        if e.is_not_found() {
            let parent = path.parent().unwrap_or(Path::new("/"));
            invalid(service, path, format!("the directory {} does not exist", parent.display()))
        } else {
            fs_error(service, e)
        }
    })
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
                target: p.path.clone(),
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

/// Writes each planned file's bytes to a temporary file next to its target (see
/// [`Target::write_temp`]). The temporary files are deleted when dropped (until renamed).
fn stage(service: &str, plan: &[Planned]) -> Result<Vec<Option<TempFile>>, InstallError> {
    let mut temps = Vec::with_capacity(plan.len());
    for p in plan {
        let Some(content) = &p.content else {
            temps.push(None);
            continue;
        };
        let temp =
            p.target.write_temp(&temp_prefix(service, p.role), content, p.owner, p.mode).map_err(|e| {
                match fs_error(service, e) {
                    InstallError::Owner { reason, .. } => {
                        InstallError::Owner { service: service.to_string(), path: p.path.clone(), reason }
                    }
                    other => other,
                }
            })?;
        temps.push(Some(temp));
    }
    Ok(temps)
}

/// Renames the temporary files over their targets (removing the targets planned for removal)
/// under the journal: `swapping`, then `swapped` once the directories are fsynced.
fn swap(
    state_dir: &Path,
    journal: &mut Journal,
    plan: &[Planned],
    temps: Vec<Option<TempFile>>,
    failpoints: bool,
) -> Result<(), InstallError> {
    let service = journal.service.clone();
    journal.phase = Phase::Swapping;
    save(state_dir, journal)?;
    let mut synced = BTreeSet::new();
    let mut remaining = temps.into_iter();
    for (i, (p, temp)) in plan.iter().zip(remaining.by_ref()).enumerate() {
        if i == 1 && failpoints {
            failpoint("between-renames");
        }
        match temp {
            Some(temp) => temp.persist(&p.target),
            None => p.target.remove(),
        }
        .map_err(|e| fs_error(&service, e))?;
    }
    for p in plan {
        if synced.insert(p.target.dir_path().to_path_buf()) {
            p.target.sync_dir().map_err(|e| fs_error(&service, e))?;
        }
    }
    journal.phase = Phase::Swapped;
    save(state_dir, journal)
}

/// Puts the files of `backup_dir` back in place by a journalled restore, then runs `reload`
/// if given. `Ok(None)`: restored, no reload asked; `Ok(Some(result))`: restored, and how the
/// reload went. On error the restore journal is left for the next recovery.
///
/// `allowed`, when given (recovery), lists the only targets the manifest may name: those the
/// configuration gives the service.
fn restore_backup(
    state_dir: &Path,
    service: &str,
    backup_dir: &Path,
    reload: Option<&ReloadCommand>,
    allowed: Option<&BTreeSet<PathBuf>>,
) -> Result<Option<Result<ReloadOutput, ReloadError>>, InstallError> {
    let manifest = backup::read_manifest(backup_dir).map_err(|reason| InstallError::Backup {
        service: service.to_string(),
        path: backup_dir.to_path_buf(),
        reason,
    })?;
    if manifest.service != service {
        return Err(InstallError::Backup {
            service: service.to_string(),
            path: backup_dir.to_path_buf(),
            reason: format!("the backup is of the service {:?}", manifest.service),
        });
    }
    let mut plan = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        if let Some(allowed) = allowed
            && !allowed.contains(&f.target)
        {
            return Err(InstallError::Backup {
                service: service.to_string(),
                path: backup_dir.to_path_buf(),
                reason: format!(
                    "its manifest names {}, which is not a file the configuration gives this service",
                    f.target.display()
                ),
            });
        }
        let content = if f.existed {
            let path = backup::file_in(backup_dir, f.role);
            let bytes = safe_fs::read_trusted(&path, limits::PEM_FILE).map_err(|e| fs_error(service, e))?;
            Some(bytes)
        } else {
            None
        };
        let default_mode = if f.role.is_secret() { 0o600 } else { 0o644 };
        let target = resolve_target(service, &f.target)?;
        plan.push(Planned {
            role: f.role,
            path: target.path(),
            target,
            content,
            owner: Ownership { uid: f.uid, gid: f.gid, strict: false },
            mode: f.mode.unwrap_or(default_mode) & 0o777,
        });
    }

    let mut journal = new_journal(service, Operation::Restore, &plan, Some(backup_dir.to_path_buf()));
    save(state_dir, &journal)?;
    let temps = stage(service, &plan)?;
    for (file, temp) in journal.files.iter_mut().zip(&temps) {
        file.temp = temp.as_ref().map(TempFile::path);
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
    match restore_backup(state_dir, service, &backup_dir, reload, None) {
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
///
/// `configured` is every service of the configuration: a journal is acted on only when it
/// belongs to one of them and names only the files that service's configuration gives it
/// (resolved as an install resolves them), and its backup lies in that service's backup
/// directory. Anything else — a journal planted by someone, or left by a service since removed
/// from the configuration — is set aside untouched and reported as failed, naming why.
pub fn recover(state_dir: &Path, configured: &[InstallTarget]) -> Vec<RecoveryReport> {
    let dir = state_dir.join(super::JOURNAL_DIR);
    let failed = |journal: PathBuf, error: String| RecoveryReport {
        service: String::new(),
        journal,
        operation: None,
        phase: None,
        backup_dir: None,
        outcome: RecoveryOutcome::Failed { error, kept_journal: None },
        pairing: Pairing::NotChecked("recovery failed".into()),
    };
    if let Err(e) = safe_fs::check_trusted_tree(&dir) {
        return vec![failed(dir, format!("the journals are not trusted, none was acted on: {e}"))];
    }
    let journals = match journal::list(state_dir) {
        Ok(j) => j,
        Err(e) => {
            return vec![failed(dir.clone(), format!("cannot list the journals in {}: {e}", dir.display()))];
        }
    };
    journals.iter().map(|path| recover_one(state_dir, path, configured)).collect()
}

/// The files the configuration gives `target`'s service, as written and as resolved.
fn configured_files(target: &InstallTarget) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for path in [Some(&target.certificate), target.key.as_ref(), target.chain.as_ref()].into_iter().flatten()
    {
        out.insert(path.clone());
        if let Ok(resolved) = safe_fs::resolve(path) {
            out.insert(resolved.path());
        }
    }
    out
}

/// Why a journal must not be acted on, if it must not.
fn refuse_journal(
    state_dir: &Path,
    path: &Path,
    j: &Journal,
    configured: &[InstallTarget],
) -> Option<String> {
    let Some(target) = configured.iter().find(|t| t.service == j.service) else {
        return Some(format!(
            "it is for the service {:?}, which is not configured; it was not acted on",
            j.service
        ));
    };
    if path != journal::path(state_dir, &j.service) {
        return Some(format!("it names the service {:?}, whose journal has another name", j.service));
    }
    let allowed = configured_files(target);
    if let Some(f) = j.files.iter().find(|f| !allowed.contains(&f.target)) {
        return Some(format!(
            "it names {}, which is not a file the configuration gives the service {}; it was not acted on",
            f.target.display(),
            j.service
        ));
    }
    if let Some(dir) = &j.backup_dir {
        let own = backup::service_dir(state_dir, &j.service);
        let inside = dir.parent() == Some(own.as_path())
            && dir.file_name().is_some_and(|n| backup::is_backup_name(&n.to_string_lossy()));
        if !inside {
            return Some(format!(
                "its backup {} is not one of the service's backups in {}; it was not acted on",
                dir.display(),
                own.display()
            ));
        }
    }
    None
}

fn recover_one(state_dir: &Path, path: &Path, configured: &[InstallTarget]) -> RecoveryReport {
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
    if let Some(why) = refuse_journal(state_dir, path, &j, configured) {
        return RecoveryReport {
            service: j.service.clone(),
            journal: path.to_path_buf(),
            operation: Some(j.operation),
            phase: Some(j.phase),
            backup_dir: j.backup_dir.clone(),
            outcome: RecoveryOutcome::Failed {
                error: format!("journal {}: {why}", path.display()),
                kept_journal: set_aside(path),
            },
            pairing: Pairing::NotChecked("not acted on".into()),
        };
    }
    let allowed =
        configured.iter().find(|t| t.service == j.service).map(configured_files).unwrap_or_default();
    let result = recover_journal(state_dir, &j, &allowed).and_then(|outcome| {
        // A restore removes its own journal; this clears the others.
        match std::fs::remove_file(path) {
            Ok(()) => {
                let _ = safe_fs::fsync_dir(&state_dir.join(super::JOURNAL_DIR));
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

fn recover_journal(
    state_dir: &Path,
    j: &Journal,
    allowed: &BTreeSet<PathBuf>,
) -> Result<RecoveryOutcome, String> {
    let backup_dir =
        || j.backup_dir.clone().ok_or_else(|| format!("the journal of {} names no backup", j.service));
    let restore = |dir: &Path| {
        restore_backup(state_dir, &j.service, dir, None, Some(allowed))
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

/// Best effort: new material taken back out is kept in the backup's `rejected/` (read bounded,
/// without following a link someone else made).
fn keep_rejected(backup_dir: &Path, role: Role, source: &Path) {
    if let Ok(Some((bytes, _))) = safe_fs::resolve(source).and_then(|t| t.read_existing(limits::PEM_FILE)) {
        let _ = backup::preserve_rejected(backup_dir, role, &bytes);
    }
}

/// Deletes the journal's temporary files: those it lists, and (for a run killed while
/// preparing, before it could list them) those in the targets' directories with its prefixes.
fn remove_temps(j: &Journal) -> Result<(), String> {
    for f in &j.files {
        let Ok(target) = safe_fs::resolve(&f.target) else {
            continue;
        };
        // A listed temporary file is in the target's directory and has the journal's prefix.
        target.remove_siblings(&f.temp_prefix, ".tmp").map_err(|e| {
            format!("service {}: cannot remove the temporary files of {}: {e}", j.service, f.target.display())
        })?;
    }
    Ok(())
}

/// Moves an unrecoverable journal aside so that later runs are not blocked by it; a name
/// already taken is never overwritten.
fn set_aside(path: &Path) -> Option<PathBuf> {
    let stamp = utc_stamp(unix_now());
    for n in 1..1000 {
        let mut name = path.file_name()?.to_os_string();
        name.push(if n == 1 { format!(".failed-{stamp}") } else { format!(".failed-{stamp}-{n}") });
        let dest = path.with_file_name(name);
        if std::fs::symlink_metadata(&dest).is_ok() {
            continue;
        }
        return std::fs::rename(path, &dest).ok().map(|()| dest);
    }
    None
}

/// Checks with OpenSSL that the key in place belongs to the certificate in place (both read
/// bounded; an encrypted key is reported, never asked a passphrase for).
fn check_pairing(files: &[JournalFile]) -> Pairing {
    let find = |role| files.iter().find(|f| f.role == role).map(|f| f.target.as_path());
    let (cert_path, key_path) = match (find(Role::Combined), find(Role::Certificate), find(Role::Key)) {
        (Some(c), _, _) => (c, c),
        (None, Some(c), Some(k)) => (c, k),
        _ => return Pairing::NotChecked("no certificate and key to compare".into()),
    };
    let read = |p: &Path| safe_fs::resolve(p).and_then(|t| t.read_existing(limits::PEM_FILE));
    let (cert_bytes, key_bytes) = match (read(cert_path), read(key_path)) {
        (Ok(None), Ok(None)) => return Pairing::NotChecked("neither file is there".into()),
        (Ok(Some(_)), Ok(None)) => {
            return Pairing::Mismatched(format!(
                "the certificate {} is there but the key {} is not",
                cert_path.display(),
                key_path.display()
            ));
        }
        (Ok(None), Ok(Some(_))) => {
            return Pairing::Mismatched(format!(
                "the key {} is there but the certificate {} is not",
                key_path.display(),
                cert_path.display()
            ));
        }
        (Err(e), _) | (_, Err(e)) => return Pairing::Mismatched(format!("cannot be read: {e}")),
        (Ok(Some((c, _))), Ok(Some((k, _)))) => (c, k),
    };
    let cert = match X509::from_pem(&cert_bytes) {
        Ok(c) => c,
        Err(e) => {
            return Pairing::Mismatched(format!(
                "the certificate {} is unreadable: {e}",
                cert_path.display()
            ));
        }
    };
    // The callback answers OpenSSL's passphrase prompt with nothing: a nightly run never waits
    // on a terminal.
    let key = match PKey::private_key_from_pem_callback(&key_bytes, |_| Ok(0)) {
        Ok(k) => k,
        Err(_) if key_bytes.windows(9).any(|w| w == b"ENCRYPTED") => {
            return Pairing::Mismatched(format!(
                "the key {} is encrypted: it cannot be checked (a nightly run has no passphrase), \
                 and a daemon reloaded unattended cannot use it either",
                key_path.display()
            ));
        }
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
