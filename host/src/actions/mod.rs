//! Actions: what the host does once the plan is made — make placeholder certificates, install
//! certificate material safely, reload services, and keep one run at a time.
//!
//! * [`placeholder`] makes self-signed placeholder [`Material`] (leaf, chain, key).
//! * [`install`](mod@install) puts [`Material`] in place for one service, crash-consistently: new
//!   files are staged next to their targets, the current files are backed up, a [`journal`] records
//!   every step, and a failed reload puts the previous files back. [`recover`] repairs whatever a
//!   killed run left behind and must be called at the start of every run that changes anything.
//! * [`reload`] runs a service's reload command (argv, no shell, with a timeout).
//! * [`lock`] keeps two runs from working at the same time.
//!
//! The state directory (e.g. `/var/lib/checkallsslcerts`) holds, all created `0700`:
//!
//! ```text
//! <state_dir>/lock                                      the run lock (holds the holder's pid)
//! <state_dir>/journal/<service>.json                    an install in progress
//! <state_dir>/backups/<service>/<YYYYmmddTHHMMSSZ>-<n>/ the files an install replaced
//!     manifest.json  certificate  key  chain  combined   (only those that existed)
//!     rejected/                                         new files that were taken back out
//! ```
//!
//! Standards every submodule keeps: nothing is ever lost (the previous certificate and key stay
//! in a backup until the new ones are installed and the service reloaded, and new material that
//! is taken back out is kept under `rejected/`), private keys are written `0600` unless configured
//! otherwise (never world-accessible) and never appear in logs or `Debug` output, reload
//! commands run as argv with a timeout and never through a shell, and every error names the
//! service and the file.

pub mod errors;
pub mod install;
pub mod journal;
pub mod lock;
pub mod placeholder;
pub mod reload;

mod backup;
#[cfg(test)]
mod fuzz_tests;

use std::io;
use std::path::{Path, PathBuf};

pub use errors::{ActionError, InstallError, LockError, ReloadError, RollbackOutcome};
pub use install::{
    InstallReport, InstallTarget, InstalledFile, Pairing, RecoveryOutcome, RecoveryReport, install, recover,
};
pub use journal::{Operation, Phase, Role};
pub use lock::{RunLock, acquire};
pub use placeholder::{Material, generate};
pub use reload::{ReloadCommand, ReloadOutput};

/// Subdirectory of the state directory that holds the backups, one directory per service.
pub const BACKUPS_DIR: &str = "backups";
/// Subdirectory of the state directory that holds the install journals.
pub const JOURNAL_DIR: &str = "journal";
/// File name of the run lock inside the state directory.
pub const LOCK_FILE: &str = "lock";

/// Environment variable that names a failpoint (see [`FAILPOINTS`]); honoured only in builds
/// with `cfg(test)` or the `failpoints` cargo feature.
pub const FAILPOINT_ENV: &str = "CHECKALLSSLCERTS_FAILPOINT";

/// The names of the failpoints, in the order an install reaches them. See the
/// [`install`](mod@install) module documentation for where exactly each one is.
pub const FAILPOINTS: [&str; 7] = [
    "after-temp-write",
    "after-backup",
    "after-journal",
    "between-renames",
    "after-swap",
    "before-reload",
    "after-reload",
];

/// Aborts the process (`std::process::abort`, no destructors, no cleanup) when
/// [`FAILPOINT_ENV`] names this failpoint. Compiled in only for tests and the `failpoints`
/// feature; otherwise it does nothing.
#[cfg(any(test, feature = "failpoints"))]
pub(crate) fn failpoint(name: &'static str) {
    debug_assert!(FAILPOINTS.contains(&name), "unknown failpoint {name}");
    if std::env::var_os(FAILPOINT_ENV).is_some_and(|v| v == name) {
        eprintln!("checkallsslcerts: failpoint {name}: aborting");
        std::process::abort();
    }
}

#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub(crate) fn failpoint(_name: &'static str) {}

/// Creates the state directory and its `journal/` and `backups/` subdirectories, `0700`, if
/// they are missing; `journal/` and `backups/` are also tightened to `0700` if they exist with
/// wider permissions (they describe and hold private keys); an existing state directory itself
/// is left as it is. Then checks that the state directory, every directory above it and
/// everything in it is controlled by root (or the running user) only — its journals name files
/// a run rewrites as root — and refuses it otherwise, naming the file and the fix.
pub fn ensure_state_dir(state_dir: &Path) -> Result<(), ActionError> {
    create_state_dirs(state_dir).map_err(|(path, source)| ActionError::StateDir { path, source })?;
    crate::fs::check_trusted_tree(state_dir).map_err(|e| ActionError::StateDir {
        path: state_dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()),
    })
}

pub(crate) fn create_state_dirs(state_dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    create_private_dir(state_dir, false)?;
    create_private_dir(&state_dir.join(JOURNAL_DIR), true)?;
    create_private_dir(&state_dir.join(BACKUPS_DIR), true)?;
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700; with `tighten`, also chmods an existing
/// directory to 0700. A directory owned by another user is refused (see
/// [`crate::fs::create_private_dir`]).
pub(crate) fn create_private_dir(dir: &Path, tighten: bool) -> Result<(), (PathBuf, io::Error)> {
    crate::fs::create_private_dir(dir, tighten).map_err(|e| (dir.to_path_buf(), io::Error::from(e)))
}

/// fsyncs a directory, so that renames and creations in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    crate::fs::fsync_dir(dir).map_err(io::Error::from)
}

pub(crate) use crate::time::{stamp as utc_stamp, unix_now};

/// A service name as a file name: ASCII letters, digits, `_` and `-` stay, every other byte
/// becomes `%XX`. Reversible, so two services never share a journal or a backup directory,
/// and free of `.` and `/`.
pub(crate) fn encode_service(service: &str) -> String {
    let mut out = String::with_capacity(service.len());
    for b in service.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the unit tests of the submodules.

    use super::placeholder::{self, Material};
    use crate::config::types::KeyAlgorithm;

    pub fn material(host: &str) -> Material {
        placeholder::generate(host, &[], KeyAlgorithm::EcP256, 30, super::unix_now()).expect("placeholder")
    }

    pub fn mode_of(path: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_formats_known_instants() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
        assert_eq!(utc_stamp(4_102_444_799), "20991231T235959Z");
        assert_eq!(utc_stamp(-1), "19691231T235959Z");
    }

    #[test]
    fn service_names_encode_reversibly_without_dots_or_slashes() {
        assert_eq!(encode_service("nginx"), "nginx");
        assert_eq!(encode_service("web/example.com"), "web%2Fexample%2Ecom");
        assert_eq!(encode_service(".."), "%2E%2E");
        assert_ne!(encode_service("a_b"), encode_service("a/b"));
        assert_ne!(encode_service("a.b"), encode_service("a%2Eb"));
    }

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn state_dirs_are_created_private_and_tightened() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("state/nested");
        ensure_state_dir(&state).expect("create");
        for d in [state.clone(), state.join(JOURNAL_DIR), state.join(BACKUPS_DIR)] {
            assert_eq!(test_support::mode_of(&d), 0o700, "{}", d.display());
        }
        fs::set_permissions(state.join(BACKUPS_DIR), fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_state_dir(&state).expect("again");
        assert_eq!(test_support::mode_of(&state.join(BACKUPS_DIR)), 0o700);
    }

    #[test]
    fn failpoint_names_are_unique() {
        let mut names = FAILPOINTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAILPOINTS.len());
    }
}
