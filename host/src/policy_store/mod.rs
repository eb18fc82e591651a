//! Installed policy modules: `policy install`, `policy rollback`, and which module a run uses.
//!
//! A module is shipped as a WebAssembly component with a detached minisign signature. `policy
//! install` fetches both ([`fetch`]), checks the signature against the trusted keys of the
//! configuration ([`signature`]), loads the component (valid, a supported contract version,
//! only the contract's imports), runs the built-in `contract` conformance suite on it, and only
//! then activates it ([`install`]). The main run picks its module and falls back to the last
//! known good one when it fails ([`select`]).
//!
//! Everything lives in `<state-dir>/policy/` (mode 0700):
//!
//! ```text
//! modules/<sha256>.wasm      the exact bytes of every module still referenced (0600)
//! modules/<sha256>.minisig   its signature, as installed
//! active.json                {"format": 1, "active": {...} | null, "previous": {...} | null}
//! known-good.json            {"format": 1, "modules": [...]}: modules that made a valid plan
//!                            in a real run, newest first (at most three)
//! ```
//!
//! `active.json` and `known-good.json` are replaced atomically (temporary file, fsync, rename,
//! fsync of the directory), so a crash leaves either the old or the new state, never a mix; a
//! module file is written (the same way) before the record that names it. Records name modules
//! by SHA-256 and the bytes are checked against it every time they are read.

pub mod errors;
pub mod fetch;
pub mod install;
pub mod select;
pub mod signature;

use std::fs;
use std::path::{Path, PathBuf};

use openssl::sha::sha256;
use serde::{Deserialize, Serialize};

pub use errors::{FetchError, InstallError, SignatureError, StoreError};

/// `<state-dir>/policy`.
pub const POLICY_DIR: &str = "policy";
/// `<state-dir>/policy/modules`.
pub const MODULES_DIR: &str = "modules";
/// `<state-dir>/policy/active.json`.
pub const ACTIVE_FILE: &str = "active.json";
/// `<state-dir>/policy/known-good.json`.
pub const KNOWN_GOOD_FILE: &str = "known-good.json";
/// How many last-known-good modules are remembered.
pub const KNOWN_GOOD_KEPT: usize = 3;
/// The format of the two JSON files.
const FORMAT: u32 = 1;
/// The largest record file read.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// An installed module, as `active.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Installed {
    /// SHA-256 of the component's bytes, lowercase hex: `modules/<sha256>.wasm`.
    pub sha256: String,
    /// Where it was installed from: the URL or the file's absolute path.
    pub source: String,
    /// The minisign key ID that signed it (16 hex digits, as minisign prints it); none when it
    /// was installed with `--allow-unsigned`.
    pub signature_key_id: Option<String>,
    /// The signature's trusted comment (signed together with the module).
    pub trusted_comment: Option<String>,
    /// When it was installed (Unix seconds, UTC).
    pub installed_at: i64,
    /// The module's own metadata.
    pub name: String,
    pub version: String,
    pub contract_version: String,
}

/// `active.json`: the active module and the one before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ActiveState {
    pub format: u32,
    /// The module the main run uses (unless `--policy` or `[policy] module` says otherwise);
    /// none = the embedded default policy.
    pub active: Option<Installed>,
    /// What was active before; `policy rollback` swaps the two. None = the embedded default.
    pub previous: Option<Installed>,
}

/// A module that made a valid plan in a real (not dry) run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KnownGood {
    pub sha256: String,
    /// Where the run took it from (the installed module's source, or the file it was given).
    pub source: String,
    pub name: String,
    pub version: String,
    /// The last time it made a valid plan (Unix seconds, UTC).
    pub good_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct KnownGoodFile {
    format: u32,
    modules: Vec<KnownGood>,
}

/// The installed-policy store of one state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `<state_dir>/policy`. Nothing is created until something is written.
    pub fn new(state_dir: &Path) -> Store {
        Store { dir: state_dir.join(POLICY_DIR) }
    }

    /// `<state-dir>/policy`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the module with this SHA-256 is kept.
    pub fn module_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(MODULES_DIR).join(format!("{sha256}.wasm"))
    }

    /// Where the signature of the module with this SHA-256 is kept.
    pub fn signature_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(MODULES_DIR).join(format!("{sha256}.minisig"))
    }

    /// `active.json`.
    pub fn active_path(&self) -> PathBuf {
        self.dir.join(ACTIVE_FILE)
    }

    /// `known-good.json`.
    pub fn known_good_path(&self) -> PathBuf {
        self.dir.join(KNOWN_GOOD_FILE)
    }

    /// The active and previous modules; both none when nothing was ever installed.
    pub fn read_active(&self) -> Result<ActiveState, StoreError> {
        let path = self.active_path();
        let Some(text) = read_record(&path)? else { return Ok(ActiveState::default()) };
        let state: ActiveState = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
        check_format(&path, state.format)?;
        for record in state.active.iter().chain(&state.previous) {
            check_sha(&path, &record.sha256)?;
        }
        Ok(state)
    }

    /// Replaces `active.json` atomically.
    pub fn write_active(&self, state: &ActiveState) -> Result<(), StoreError> {
        let state = ActiveState { format: FORMAT, ..state.clone() };
        self.write_json(&self.active_path(), &state)
    }

    /// The last known good modules, newest first.
    pub fn read_known_good(&self) -> Result<Vec<KnownGood>, StoreError> {
        let path = self.known_good_path();
        let Some(text) = read_record(&path)? else { return Ok(Vec::new()) };
        let file: KnownGoodFile = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
        check_format(&path, file.format)?;
        for entry in &file.modules {
            check_sha(&path, &entry.sha256)?;
        }
        Ok(file.modules)
    }

    /// Records `entry` as the newest last-known-good module (its bytes must be stored already),
    /// keeps at most [`KNOWN_GOOD_KEPT`], and drops module files nothing refers to any more.
    /// An unreadable `known-good.json` is replaced.
    pub fn record_known_good(&self, entry: KnownGood) -> Result<(), StoreError> {
        let mut modules = self.read_known_good().unwrap_or_default();
        modules.retain(|m| m.sha256 != entry.sha256);
        modules.insert(0, entry);
        modules.truncate(KNOWN_GOOD_KEPT);
        self.write_json(&self.known_good_path(), &KnownGoodFile { format: FORMAT, modules })?;
        self.prune()
    }

    /// Keeps a module's bytes (and its signature) under `modules/`; returns its SHA-256.
    /// A module already stored intact is not written again.
    pub fn store_module(&self, bytes: &[u8], signature: Option<&[u8]>) -> Result<String, StoreError> {
        let sha = hex::encode(sha256(bytes));
        self.ensure_dirs()?;
        let path = self.module_path(&sha);
        let intact = read_bounded(&path, bytes.len() as u64).map(|stored| stored == bytes).unwrap_or(false);
        if !intact {
            write_atomic(&path, bytes)?;
        }
        if let Some(signature) = signature {
            write_atomic(&self.signature_path(&sha), signature)?;
        }
        Ok(sha)
    }

    /// The exact bytes of a stored module, checked against its SHA-256.
    pub fn read_module(&self, sha256_hex: &str, limit: usize) -> Result<Vec<u8>, StoreError> {
        let path = self.module_path(sha256_hex);
        check_sha(&path, sha256_hex)?;
        let bytes = read_bounded(&path, limit as u64)?;
        let actual = hex::encode(sha256(&bytes));
        if actual != sha256_hex {
            return Err(StoreError::Damaged { path, expected: sha256_hex.to_owned(), actual });
        }
        Ok(bytes)
    }

    /// The stored signature of a module, if there is one.
    pub fn read_signature(&self, sha256_hex: &str) -> Option<String> {
        let path = self.signature_path(sha256_hex);
        read_bounded(&path, signature::MAX_SIGNATURE_BYTES).ok().and_then(|b| String::from_utf8(b).ok())
    }

    /// Removes module files that neither `active.json` nor `known-good.json` refers to. Does
    /// nothing when either record is unreadable (nothing is removed that might still be needed).
    pub fn prune(&self) -> Result<(), StoreError> {
        let (Ok(active), Ok(known)) = (self.read_active(), self.read_known_good()) else { return Ok(()) };
        let keep: Vec<&str> = active
            .active
            .iter()
            .chain(&active.previous)
            .map(|r| r.sha256.as_str())
            .chain(known.iter().map(|k| k.sha256.as_str()))
            .collect();
        let dir = self.dir.join(MODULES_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".wasm").or_else(|| name.strip_suffix(".minisig")) else {
                continue;
            };
            if is_sha256_hex(stem) && !keep.contains(&stem) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
            }
        }
        crate::actions::fsync_dir(&dir).map_err(|source| StoreError::Io { path: dir, source })
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        crate::actions::create_private_dir(&self.dir, true)
            .and_then(|()| crate::actions::create_private_dir(&self.dir.join(MODULES_DIR), true))
            .map_err(|(path, source)| StoreError::Io { path, source })
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StoreError> {
        self.ensure_dirs()?;
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| StoreError::Corrupt { path: path.to_owned(), message: e.to_string() })?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }
}

/// Whether `s` is a SHA-256 in lowercase hex (so it is safe as a file name, too).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_sha(path: &Path, sha: &str) -> Result<(), StoreError> {
    if is_sha256_hex(sha) {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_owned(),
            message: format!("{sha:?} is not a SHA-256 in lowercase hex"),
        })
    }
}

fn check_format(path: &Path, format: u32) -> Result<(), StoreError> {
    if format == FORMAT {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            path: path.to_owned(),
            message: format!("format {format}, this version of checkallsslcerts reads format {FORMAT}"),
        })
    }
}

/// A record file's text; `None` if it does not exist.
fn read_record(path: &Path) -> Result<Option<String>, StoreError> {
    match read_bounded(path, MAX_RECORD_BYTES) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt { path: path.to_owned(), message: "not UTF-8 text".into() }),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a file only root (or the running user) controls, of at most `limit` bytes (see
/// [`crate::fs::read_trusted`]): policy modules, their signatures and records, trusted keys. A
/// module someone else could replace would run as the policy of a root tool.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, StoreError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    crate::fs::read_trusted(&absolute, limit)
        .map(|bytes| bytes.to_vec())
        .map_err(|e| StoreError::Io { path: path.to_owned(), source: std::io::Error::from(e) })
}

/// Writes `bytes` to `path` atomically and link-safely, mode 0600 (see [`crate::fs::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::fs::write_atomic(path, bytes, 0o600)
        .map_err(|e| StoreError::Io { path: path.to_owned(), source: std::io::Error::from(e) })
}

/// The first 12 hex digits of a SHA-256, for messages.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(sha: &str) -> Installed {
        Installed {
            sha256: sha.to_owned(),
            source: "/tmp/x.wasm".into(),
            signature_key_id: Some("81DFC88F84A55400".into()),
            trusted_comment: Some("policy v1".into()),
            installed_at: 1_800_000_000,
            name: "x".into(),
            version: "1.0.0".into(),
            contract_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_module_others_could_replace_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let sha = store.store_module(b"module bytes", None).expect("stored");
        fs::set_permissions(store.module_path(&sha), fs::Permissions::from_mode(0o666)).expect("chmod");
        let error = store.read_module(&sha, 1000).expect_err("untrusted");
        assert!(error.to_string().contains("chmod go-w"), "{error}");
    }

    #[test]
    fn modules_are_stored_by_hash_and_checked_when_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let sha = store.store_module(b"module bytes", Some(b"sig")).expect("stored");
        assert_eq!(sha, hex::encode(sha256(b"module bytes")));
        assert_eq!(store.read_module(&sha, 1000).expect("read"), b"module bytes");
        let mode = fs::metadata(store.module_path(&sha)).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(store.module_path(&sha), b"module bytez").expect("tamper");
        let error = store.read_module(&sha, 1000).expect_err("damaged");
        assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains(&sha), "{error}");
        // Storing again repairs it.
        store.store_module(b"module bytes", None).expect("stored");
        assert_eq!(store.read_module(&sha, 1000).expect("read"), b"module bytes");
        assert!(store.read_module(&sha, 5).is_err(), "the limit holds");
    }

    #[test]
    fn active_state_round_trips_and_refuses_bad_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        assert_eq!(store.read_active().expect("empty"), ActiveState::default());
        let state = ActiveState { format: 0, active: Some(record(&"a".repeat(64))), previous: None };
        store.write_active(&state).expect("written");
        let read = store.read_active().expect("read");
        assert_eq!(read.active, state.active);
        assert_eq!(read.format, FORMAT);
        fs::write(store.active_path(), r#"{"format":1,"active":{"sha256":"../../etc/passwd","source":"x","signature-key-id":null,"trusted-comment":null,"installed-at":0,"name":"","version":"","contract-version":""},"previous":null}"#).expect("write");
        let error = store.read_active().expect_err("refused");
        assert!(error.to_string().contains("not a SHA-256"), "{error}");
        fs::write(store.active_path(), "{").expect("write");
        assert!(matches!(store.read_active(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn known_good_keeps_the_newest_three_and_prunes_unreferenced_modules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let mut shas = Vec::new();
        for i in 0..5u8 {
            let sha = store.store_module(&[i; 10], None).expect("stored");
            store
                .record_known_good(KnownGood {
                    sha256: sha.clone(),
                    source: format!("m{i}"),
                    name: "m".into(),
                    version: "1".into(),
                    good_at: i64::from(i),
                })
                .expect("recorded");
            shas.push(sha);
        }
        let known: Vec<String> =
            store.read_known_good().expect("read").into_iter().map(|k| k.sha256).collect();
        assert_eq!(known, vec![shas[4].clone(), shas[3].clone(), shas[2].clone()]);
        assert!(!store.module_path(&shas[0]).exists(), "pruned");
        assert!(store.module_path(&shas[2]).exists());
        // The same module again moves to the front, once.
        store
            .record_known_good(KnownGood {
                sha256: shas[2].clone(),
                source: "m2".into(),
                name: "m".into(),
                version: "1".into(),
                good_at: 9,
            })
            .expect("recorded");
        let known = store.read_known_good().expect("read");
        assert_eq!(known.len(), 3);
        assert_eq!(known[0].sha256, shas[2]);
        assert_eq!(known[0].good_at, 9);
    }
}
