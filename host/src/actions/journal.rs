//! The install journal: `<state_dir>/journal/<service>.json`.
//!
//! A small JSON file that says how far an install (or the restore of a backup) for one service
//! got, so that a run killed half-way can be repaired by the next one
//! ([`recover`](super::install::recover)). It is always written atomically: a temporary file in
//! the journal directory, fsync, rename over the journal, fsync of the directory. It holds paths
//! only, never key material.
//!
//! Phases, in order ([`Phase`]): `preparing` (the journal exists, temporary files are being
//! written next to the targets) → `prepared` (temporary files complete and fsynced, the current
//! files backed up) → `swapping` (temporary files are being renamed over the targets) →
//! `swapped` (all renamed, directories fsynced) → `reloaded` (the reload command succeeded) →
//! `done`. At `done` the journal is deleted; a journal that says `done` is simply cleared.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{JOURNAL_DIR, encode_service, fsync_dir};

/// The format version written into every journal.
pub const JOURNAL_VERSION: u32 = 1;

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The private key (separate layout).
    Key,
    /// The intermediate chain (separate layout).
    Chain,
    /// The leaf certificate, followed by the chain when there is no chain file (separate
    /// layout).
    Certificate,
    /// Leaf, chain and key in one file (combined layout).
    Combined,
}

impl Role {
    /// The role's name; also the file name of its copy in a backup directory.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Key => "key",
            Role::Chain => "chain",
            Role::Certificate => "certificate",
            Role::Combined => "combined",
        }
    }

    /// Whether the file holds a private key.
    pub fn is_secret(self) -> bool {
        matches!(self, Role::Key | Role::Combined)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the journalled change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Put new material in place.
    Install,
    /// Put the files of a backup back in place (after a failed reload, or in recovery).
    Restore,
}

/// How far the journalled change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Preparing,
    Prepared,
    Swapping,
    Swapped,
    Reloaded,
    Done,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Preparing => "preparing",
            Phase::Prepared => "prepared",
            Phase::Swapping => "swapping",
            Phase::Swapped => "swapped",
            Phase::Reloaded => "reloaded",
            Phase::Done => "done",
        })
    }
}

/// One file of a journalled change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JournalFile {
    pub role: Role,
    /// The file being replaced (symbolic links already resolved).
    pub target: PathBuf,
    /// The temporary file that will be renamed over `target`; known from `prepared` on.
    #[serde(default)]
    pub temp: Option<PathBuf>,
    /// The name prefix of this file's temporary files in `target`'s directory, so that the
    /// temporary files of a run killed while `preparing` can be found.
    pub temp_prefix: String,
    /// For a restore: `target` did not exist before the install, so it is removed.
    #[serde(default)]
    pub remove: bool,
}

/// The journal of one service's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Journal {
    pub version: u32,
    pub service: String,
    pub operation: Operation,
    pub phase: Phase,
    /// The process that wrote it.
    pub pid: u32,
    /// When the change started, seconds since the Unix epoch.
    pub started_at: i64,
    /// The backup of the files as they were before the install; known from `prepared` on.
    #[serde(default)]
    pub backup_dir: Option<PathBuf>,
    pub files: Vec<JournalFile>,
}

impl Journal {
    /// Writes the journal atomically (and link-safely, `0600`) to its place in `state_dir`.
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        crate::fs::write_atomic(&path(state_dir, &self.service), &json, 0o600).map_err(io::Error::from)
    }
}

/// Where the journal of `service` lives.
pub fn path(state_dir: &Path, service: &str) -> PathBuf {
    state_dir.join(JOURNAL_DIR).join(format!("{}.json", encode_service(service)))
}

/// Reads a journal file.
pub fn read(path: &Path) -> Result<Journal, String> {
    let bytes = crate::fs::read_trusted(path, crate::fs::limits::STATE_FILE)
        .map_err(|e| format!("cannot read: {e}"))?;
    let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| format!("not a journal: {e}"))?;
    if journal.version != JOURNAL_VERSION {
        return Err(format!("journal version {} is not {JOURNAL_VERSION}", journal.version));
    }
    Ok(journal)
}

/// Deletes the journal of `service` (if any) and fsyncs the journal directory.
pub fn remove(state_dir: &Path, service: &str) -> io::Result<()> {
    match fs::remove_file(path(state_dir, service)) {
        Ok(()) => fsync_dir(&state_dir.join(JOURNAL_DIR)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The journals in `state_dir`, sorted; stray temporary files of interrupted journal writes are
/// deleted on the way.
pub fn list(state_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = state_dir.join(JOURNAL_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        } else if name.ends_with(".json") && !name.starts_with('.') {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Journal {
        Journal {
            version: JOURNAL_VERSION,
            service: "web/a.example".into(),
            operation: Operation::Install,
            phase: Phase::Swapping,
            pid: 7,
            started_at: 1,
            backup_dir: Some("/b".into()),
            files: vec![JournalFile {
                role: Role::Key,
                target: "/etc/k.pem".into(),
                temp: Some("/etc/.k.tmp".into()),
                temp_prefix: ".checkallsslcerts.x.key.".into(),
                remove: false,
            }],
        }
    }

    #[test]
    fn round_trip_and_listing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        crate::actions::ensure_state_dir(tmp.path()).expect("state");
        let j = sample();
        j.save(tmp.path()).expect("save");
        let p = path(tmp.path(), &j.service);
        assert!(p.ends_with("journal/web%2Fa%2Eexample.json"));
        let text = fs::read_to_string(&p).expect("read");
        assert!(text.contains("\"phase\": \"swapping\""), "{text}");
        assert!(text.contains("\"operation\": \"install\""), "{text}");
        assert_eq!(read(&p).expect("parse"), j);

        fs::write(tmp.path().join("journal/.tmp-abc.tmp"), b"{").expect("stray");
        assert_eq!(list(tmp.path()).expect("list"), vec![p.clone()]);
        assert!(!tmp.path().join("journal/.tmp-abc.tmp").exists());

        remove(tmp.path(), &j.service).expect("remove");
        remove(tmp.path(), &j.service).expect("remove twice");
        assert!(list(tmp.path()).expect("list").is_empty());
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("x.json");
        fs::write(&p, b"not json").expect("write");
        assert!(read(&p).expect_err("garbage").contains("not a journal"));
        let mut j = sample();
        j.version = 99;
        fs::write(&p, serde_json::to_vec(&j).expect("json")).expect("write");
        assert!(read(&p).expect_err("version").contains("version 99"));
    }
}
