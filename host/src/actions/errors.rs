//! The errors of the actions. Every one names the service (or, for a placeholder, the host
//! name) and the file or program it is about; none ever carries private-key bytes.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::time::duration as fmt_duration;
use openssl::error::ErrorStack;

/// Any error of the actions module.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The arguments of a placeholder were unusable (empty host name, zero validity...).
    #[error("placeholder certificate for {hostname}: {reason}")]
    InvalidPlaceholder { hostname: String, reason: String },
    /// OpenSSL failed while making a placeholder.
    #[error("placeholder certificate for {hostname}: OpenSSL failed to {step}: {source}")]
    OpenSsl {
        hostname: String,
        step: &'static str,
        #[source]
        source: ErrorStack,
    },
    /// The state directory (or one of its subdirectories) could not be created.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Reload(#[from] ReloadError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// An install (or the restore of a backup) failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The install target is inconsistent (layout, missing paths, unsafe modes...).
    #[error("service {service}: invalid install target {}: {reason}", path.display())]
    InvalidTarget { service: String, path: PathBuf, reason: String },
    /// The material to install is unusable (unparsable, or the key does not match the leaf).
    #[error("service {service}: refusing to install into {}: {reason}", path.display())]
    InvalidMaterial { service: String, path: PathBuf, reason: String },
    /// A configured owner or group does not exist.
    #[error("service {service}: cannot set the owner of {}: {reason}", path.display())]
    Owner { service: String, path: PathBuf, reason: String },
    /// A journal from an earlier, interrupted run is still there: `recover` must run first.
    #[error(
        "service {service}: an earlier install was interrupted and not yet recovered \
         (journal {}); run recovery first",
        journal.display()
    )]
    PendingJournal { service: String, journal: PathBuf },
    /// A file operation failed.
    #[error("service {service}: cannot {action} {}: {source}", path.display())]
    Io {
        service: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Moving the new files into place failed; what happened to the previous files is said.
    #[error("service {service}: {}; {rollback}", source_error.without_service())]
    Swap {
        service: String,
        /// The failure that stopped the swap (an [`InstallError::Io`]).
        source_error: Box<InstallError>,
        rollback: RollbackOutcome,
    },
    /// The reload with the new files failed; the previous files were put back and the service
    /// reloaded again — `rollback` says how that went.
    #[error(
        "service {service}: reload with the new certificate failed: {}; {rollback}",
        first.without_service()
    )]
    ReloadFailed { service: String, first: Box<ReloadError>, rollback: RollbackOutcome },
    /// The new files were installed (and the reload succeeded), but the service's endpoints
    /// did not serve the new certificate; the previous files were put back and the service
    /// reloaded again — `rollback` says how that went, `after_rollback` what was served then.
    #[error(
        "service {service}: {}the new certificate is not served: {reason}; {rollback}{}",
        if *reloaded { "the reload succeeded, but " } else { "" },
        after_rollback.as_ref().map(|a| format!("; {a}")).unwrap_or_default()
    )]
    NotServed {
        service: String,
        reason: String,
        /// Whether a reload command ran (and exited successfully) before the check.
        reloaded: bool,
        rollback: RollbackOutcome,
        after_rollback: Option<String>,
    },
    /// A backup directory needed for a restore is missing or unreadable.
    #[error("service {service}: backup {} is unusable: {reason}", path.display())]
    Backup { service: String, path: PathBuf, reason: String },
}

/// What happened when the previous files were put back after a failure.
#[derive(Debug)]
pub enum RollbackOutcome {
    /// The previous files are back, and (if there is a reload command) the reload with them
    /// succeeded.
    Restored { backup_dir: PathBuf, reloaded: bool },
    /// The previous files are back, but the reload with them failed too.
    RestoredReloadFailed { backup_dir: PathBuf, error: Box<ReloadError> },
    /// Putting the previous files back failed; the journal is left for the next run's recovery.
    RestoreFailed { backup_dir: PathBuf, error: Box<InstallError> },
}

impl RollbackOutcome {
    /// Whether the previous files are back in place.
    pub fn restored(&self) -> bool {
        !matches!(self, RollbackOutcome::RestoreFailed { .. })
    }
}

impl fmt::Display for RollbackOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackOutcome::Restored { backup_dir, reloaded: true } => write!(
                f,
                "the previous files were restored from {} and the reload with them succeeded",
                backup_dir.display()
            ),
            RollbackOutcome::Restored { backup_dir, reloaded: false } => {
                write!(f, "the previous files were restored from {}", backup_dir.display())
            }
            RollbackOutcome::RestoredReloadFailed { backup_dir, error } => write!(
                f,
                "the previous files were restored from {} but the reload with them failed too: {}",
                backup_dir.display(),
                error.without_service()
            ),
            RollbackOutcome::RestoreFailed { backup_dir, error } => write!(
                f,
                "restoring the previous files from {} failed as well ({}); the next run \
                 will retry the restore from its journal",
                backup_dir.display(),
                error.without_service()
            ),
        }
    }
}

/// A reload command failed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("service {service}: the reload command is empty")]
    EmptyArgv { service: String },
    #[error("service {service}: cannot start reload command {program}: {source}")]
    Spawn {
        service: String,
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("service {service}: cannot wait for reload command {program}: {source}")]
    Wait {
        service: String,
        program: String,
        #[source]
        source: io::Error,
    },
    /// The command exited unsuccessfully (non-zero status or killed by a signal).
    #[error("service {service}: reload command {program} {status}{}", stderr_suffix(stderr_tail))]
    Failed {
        service: String,
        program: String,
        /// "exited with status 1", "was killed by signal 9".
        status: String,
        stderr_tail: String,
    },
    /// The command ran past its timeout and was killed with its process group.
    #[error(
        "service {service}: reload command {program} timed out after {} and was killed{}",
        fmt_duration(*timeout),
        stderr_suffix(stderr_tail)
    )]
    TimedOut { service: String, program: String, timeout: std::time::Duration, stderr_tail: String },
}

impl InstallError {
    /// The service the error is about.
    pub fn service(&self) -> &str {
        match self {
            InstallError::InvalidTarget { service, .. }
            | InstallError::InvalidMaterial { service, .. }
            | InstallError::Owner { service, .. }
            | InstallError::PendingJournal { service, .. }
            | InstallError::Io { service, .. }
            | InstallError::Swap { service, .. }
            | InstallError::ReloadFailed { service, .. }
            | InstallError::NotServed { service, .. }
            | InstallError::Backup { service, .. } => service,
        }
    }

    /// The message without its leading `service <name>: `, for nesting in another message
    /// about the same service.
    pub(crate) fn without_service(&self) -> String {
        strip_service(self.to_string(), self.service())
    }
}

impl ReloadError {
    /// The service the error is about.
    pub fn service(&self) -> &str {
        match self {
            ReloadError::EmptyArgv { service }
            | ReloadError::Spawn { service, .. }
            | ReloadError::Wait { service, .. }
            | ReloadError::Failed { service, .. }
            | ReloadError::TimedOut { service, .. } => service,
        }
    }

    /// The message without its leading `service <name>: `.
    pub(crate) fn without_service(&self) -> String {
        strip_service(self.to_string(), self.service())
    }
}

fn strip_service(message: String, service: &str) -> String {
    match message.strip_prefix(&format!("service {service}: ")) {
        Some(rest) => rest.to_string(),
        None => message,
    }
}

fn stderr_suffix(tail: &str) -> String {
    if tail.trim().is_empty() { String::new() } else { format!("; stderr: {}", tail.trim()) }
}

/// The run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "another checkallsslcerts run holds the lock {}{}; gave up after waiting {}",
        path.display(),
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        fmt_duration(*waited)
    )]
    Busy { path: PathBuf, holder: Option<u32>, waited: std::time::Duration },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reload_failure_messages_name_everything() {
        let e = ReloadError::TimedOut {
            service: "nginx".into(),
            program: "/usr/sbin/nginx".into(),
            timeout: Duration::from_secs(30),
            stderr_tail: "still working\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "service nginx: reload command /usr/sbin/nginx timed out after 30s and was killed; \
             stderr: still working"
        );
        let e = InstallError::Swap {
            service: "exim".into(),
            source_error: Box::new(InstallError::Io {
                service: "exim".into(),
                action: "move the new file into place at",
                path: "/etc/exim/cert.pem".into(),
                source: io::Error::other("disk on fire"),
            }),
            rollback: RollbackOutcome::Restored {
                backup_dir: "/var/lib/c/backups/exim/x-1".into(),
                reloaded: false,
            },
        };
        assert_eq!(
            e.to_string(),
            "service exim: cannot move the new file into place at /etc/exim/cert.pem: disk on \
             fire; the previous files were restored from /var/lib/c/backups/exim/x-1"
        );
        let e = LockError::Busy {
            path: "/var/lib/x/lock".into(),
            holder: Some(42),
            waited: Duration::from_secs(2),
        };
        assert_eq!(
            e.to_string(),
            "another checkallsslcerts run holds the lock /var/lib/x/lock (pid 42); gave up \
             after waiting 2s"
        );
    }
}
