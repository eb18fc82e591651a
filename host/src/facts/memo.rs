//! The verification memo: what earlier runs proved about signatures and keys, so that a nightly
//! run over unchanged files does not prove it again.
//!
//! A signature check is a pure function of the signed bytes and the key that should have signed
//! them; whether a private key file holds the private half of a certificate's key is a pure
//! function of the two files' bytes. The memo keeps, for each such check that **succeeded**, one
//! 32-byte entry: the SHA-256 of a domain string (this memo's format, this build's version, the
//! OpenSSL version — a build that checks differently never reads another's entries), the kind of
//! check, and the SHA-256 of each input:
//!
//! * a signature: the whole certificate's DER (which holds the signed part, the algorithm and
//!   the signature) and the DER of the key it was checked with;
//! * a key match: the certificate's DER and the key file's bytes (an entry cannot be turned back
//!   into the key: it is a hash of a hash of a file holding at least 256 secret bits).
//!
//! Nothing that depends on time or on the trust store is kept: validity periods, expiry,
//! revocation and the chain's trust are evaluated afresh on every run (the chain itself is built
//! once per distinct chain per run, see [`super::verify`]). A failed check is never kept, so a
//! memo can only spare work, never change a failure into a success for a file it has not seen
//! succeed — and a lookup that misses simply does the check.
//!
//! The file (`<state-dir>/cache/verified`) is written by real runs only, atomically and 0600
//! through [`crate::fs`], holding exactly the entries the run used (so it stays as large as the
//! host's certificates need, and forgets files that changed). It is read only when root (or the
//! running user) owns it and nobody else can write it or the directories above it, when its
//! header names this format, and when its bytes match the SHA-256 written with them; anything
//! else — a torn write, a flipped bit, another format, a foreign owner — is ignored (a notice
//! says so when it is not simply absent) and replaced by the next real run. Dry runs and
//! `policy facts` read it and never write it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fs::FsError;

/// The memo's file name in the state directory's `cache/`.
pub const FILE_NAME: &str = "verified";

/// The first line of the file (a change of format changes it).
const HEADER: &[u8] = b"checkallsslcerts verification memo v1\n";

/// At most this many entries are read or written (32 bytes each: 64 MiB, two checks for each
/// of a million services; the file's read limit, [`crate::fs::limits::VERIFICATION_MEMO`],
/// allows for them and the header).
pub const MAX_ENTRIES: usize = 1 << 21;

/// One kind of check.
#[derive(Debug, Clone, Copy)]
enum Check {
    Signature,
    KeyMatch,
}

/// The memo of a run: the entries read from the file, and those this run used or proved.
#[derive(Debug, Default)]
pub struct Memo {
    known: HashSet<[u8; 32]>,
    used: Mutex<Vec<[u8; 32]>>,
    /// Whether it was read from a file (to know whether a save would change anything).
    loaded_from_file: bool,
}

/// What went wrong with the memo, for the admin (the run goes on without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoProblem {
    /// The file could not be used (not trusted, unreadable, too large): a warning, since a file
    /// root does not control in root's state directory needs a look.
    Unusable(String),
    /// Its header or digest is wrong: damaged, or written by another format.
    Damaged,
    /// It could not be written (e.g. the disk is full).
    NotSaved(String),
}

impl MemoProblem {
    /// Whether the admin should look (a warning), rather than just be told (information).
    pub fn is_warning(&self) -> bool {
        matches!(self, MemoProblem::Unusable(_))
    }
}

impl std::fmt::Display for MemoProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoProblem::Unusable(reason) => write!(
                f,
                "The verification memo was not used ({reason}); every signature was checked again, and the \
                 next run replaces the file."
            ),
            MemoProblem::Damaged => f.write_str(
                "The verification memo was damaged or of another format and was ignored; every signature \
                 was checked again, and the next real run rebuilds it (cache/verified in the state \
                 directory).",
            ),
            MemoProblem::NotSaved(reason) => {
                write!(
                    f,
                    "The verification memo could not be saved ({reason}); the next run checks every signature again."
                )
            }
        }
    }
}

impl Memo {
    /// An empty memo (nothing known: every check is done).
    pub fn empty() -> Memo {
        Memo::default()
    }

    /// The memo file of a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("cache").join(FILE_NAME)
    }

    /// Reads the memo at `path`; an absent file is an empty memo, an unusable one an empty memo
    /// and the reason.
    pub fn load(path: &Path) -> (Memo, Option<MemoProblem>) {
        if std::fs::symlink_metadata(path).is_err() {
            return (Memo::empty(), None);
        }
        let bytes = match crate::fs::read_trusted(path, crate::fs::limits::VERIFICATION_MEMO) {
            Ok(bytes) => bytes,
            Err(e) => return (Memo::empty(), Some(MemoProblem::Unusable(e.to_string()))),
        };
        match parse(&bytes) {
            Some(known) => (Memo { known, used: Mutex::new(Vec::new()), loaded_from_file: true }, None),
            None => (Memo::empty(), Some(MemoProblem::Damaged)),
        }
    }

    /// Whether `key_der_digest`'s key is known to have made the signature in the certificate
    /// whose DER has the SHA-256 `cert_digest`; otherwise `check()` decides, and a success is
    /// kept.
    pub fn signature(
        &self,
        cert_digest: &[u8; 32],
        key_der_digest: &[u8; 32],
        check: impl FnOnce() -> bool,
    ) -> bool {
        self.remembered(entry(Check::Signature, cert_digest, key_der_digest), check)
    }

    /// Keeps that `key_der_digest`'s key made the signature in `cert_digest` (proved by a full
    /// verification).
    pub fn signature_proved(&self, cert_digest: &[u8; 32], key_der_digest: &[u8; 32]) {
        self.keep(entry(Check::Signature, cert_digest, key_der_digest));
    }

    /// Whether the key file whose bytes have the SHA-256 `key_file_digest` is known to hold the
    /// private key of the certificate `cert_digest`.
    pub fn key_match_known(&self, cert_digest: &[u8; 32], key_file_digest: &[u8; 32]) -> bool {
        let entry = entry(Check::KeyMatch, cert_digest, key_file_digest);
        let known = self.known.contains(&entry);
        if known {
            self.keep(entry);
        }
        known
    }

    /// Keeps that the key file `key_file_digest` holds the private key of `cert_digest`.
    pub fn key_match_proved(&self, cert_digest: &[u8; 32], key_file_digest: &[u8; 32]) {
        self.keep(entry(Check::KeyMatch, cert_digest, key_file_digest));
    }

    fn remembered(&self, entry: [u8; 32], check: impl FnOnce() -> bool) -> bool {
        let proved = self.known.contains(&entry) || check();
        if proved {
            self.keep(entry);
        }
        proved
    }

    fn keep(&self, entry: [u8; 32]) {
        if let Ok(mut used) = self.used.lock() {
            used.push(entry);
        }
    }

    /// The entries this run used or proved, sorted, at most [`MAX_ENTRIES`].
    fn entries(&self) -> Vec<[u8; 32]> {
        let mut entries = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        entries.sort_unstable();
        entries.dedup();
        entries.truncate(MAX_ENTRIES);
        entries
    }

    /// Writes the entries this run used or proved to `path` (atomically, 0600, its directory
    /// created 0700), unless the file already holds exactly those. Returns whether it wrote.
    pub fn save(&self, path: &Path) -> Result<bool, FsError> {
        let entries = self.entries();
        let unchanged = self.loaded_from_file
            && entries.len() == self.known.len()
            && entries.iter().all(|e| self.known.contains(e));
        if unchanged {
            return Ok(false);
        }
        if let Some(dir) = path.parent() {
            crate::fs::create_private_dir(dir, true)?;
        }
        crate::fs::write_atomic(path, &serialize(&entries), 0o600)?;
        Ok(true)
    }

    /// How many entries were read from the file.
    pub fn known_entries(&self) -> usize {
        self.known.len()
    }
}

/// One entry: the check's kind and inputs, under this build's domain string.
fn entry(check: Check, first: &[u8; 32], second: &[u8; 32]) -> [u8; 32] {
    static DOMAIN: std::sync::OnceLock<openssl::sha::Sha256> = std::sync::OnceLock::new();
    let mut h = DOMAIN
        .get_or_init(|| {
            let mut h = openssl::sha::Sha256::new();
            h.update(HEADER);
            h.update(env!("CARGO_PKG_VERSION").as_bytes());
            h.update(b"\0");
            h.update(openssl::version::version().as_bytes());
            h.update(b"\0");
            h
        })
        .clone();
    h.update(match check {
        Check::Signature => b"signature\0",
        Check::KeyMatch => b"key match\0",
    });
    h.update(first);
    h.update(second);
    h.finish()
}

/// The file: the header, the SHA-256 of the entries (hex) and a newline, then the entries.
fn serialize(entries: &[[u8; 32]]) -> Vec<u8> {
    let payload: Vec<u8> = entries.concat();
    let mut bytes = Vec::with_capacity(HEADER.len() + 65 + payload.len());
    bytes.extend_from_slice(HEADER);
    bytes.extend_from_slice(hex::encode(openssl::sha::sha256(&payload)).as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&payload);
    bytes
}

/// The entries of a file, if its header, digest and length are right.
fn parse(bytes: &[u8]) -> Option<HashSet<[u8; 32]>> {
    let rest = bytes.strip_prefix(HEADER)?;
    if rest.len() < 65 || rest[64] != b'\n' {
        return None;
    }
    let (digest, payload) = (&rest[..64], &rest[65..]);
    if payload.len() % 32 != 0
        || payload.len() / 32 > MAX_ENTRIES
        || hex::encode(openssl::sha::sha256(payload)).as_bytes() != digest
    {
        return None;
    }
    Some(payload.chunks_exact(32).filter_map(|c| <[u8; 32]>::try_from(c).ok()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const C: [u8; 32] = [3; 32];

    fn saved(dir: &Path) -> PathBuf {
        let memo = Memo::empty();
        assert!(memo.signature(&A, &B, || true));
        memo.key_match_proved(&A, &C);
        assert!(!memo.signature(&C, &B, || false), "a failure is not kept");
        let path = Memo::path_in(dir);
        assert!(memo.save(&path).unwrap());
        path
    }

    #[test]
    fn what_a_run_proved_is_known_to_the_next_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let path = saved(tmp.path());
        let (memo, problem) = Memo::load(&path);
        assert_eq!(problem, None);
        assert_eq!(memo.known_entries(), 2);
        assert!(memo.signature(&A, &B, || panic!("known: not checked again")));
        assert!(memo.key_match_known(&A, &C));
        // The kinds and the inputs' roles are kept apart.
        assert!(!memo.key_match_known(&A, &B));
        assert!(!memo.signature(&B, &A, || false));
        assert!(!memo.signature(&C, &B, || false), "the failure was not kept");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // The same entries used: the file is left alone.
        assert!(!memo.save(&path).unwrap());
    }

    #[test]
    fn a_run_keeps_only_what_it_used() {
        let tmp = tempfile::tempdir().unwrap();
        let path = saved(tmp.path());
        let (memo, _) = Memo::load(&path);
        assert!(memo.signature(&A, &B, || false));
        assert!(memo.save(&path).unwrap(), "one entry fewer: written");
        let (memo, _) = Memo::load(&path);
        assert_eq!(memo.known_entries(), 1);
        assert!(!memo.key_match_known(&A, &C), "forgotten");
    }

    #[test]
    fn a_damaged_or_foreign_file_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let path = saved(tmp.path());
        let good = std::fs::read(&path).unwrap();
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for position in [0, HEADER.len() + 5, good.len() - 1, good.len() - 40] {
            let mut bytes = good.clone();
            bytes[position] ^= 0x01;
            cases.push((format!("byte {position} flipped"), bytes));
        }
        cases.push(("truncated".into(), good[..good.len() - 1].to_vec()));
        cases.push(("an entry added without its digest".into(), [good.as_slice(), &[9; 32]].concat()));
        cases.push(("another format".into(), good.replacen(b"memo v1", b"memo v9")));
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let (memo, problem) = Memo::load(&path);
            assert_eq!(problem, Some(MemoProblem::Damaged), "{what}");
            assert!(!memo.signature(&A, &B, || false), "{what}: nothing known");
        }
    }

    #[test]
    fn a_file_others_can_write_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = saved(tmp.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (memo, problem) = Memo::load(&path);
        assert!(matches!(problem, Some(MemoProblem::Unusable(_))), "{problem:?}");
        assert!(!memo.signature(&A, &B, || false));
    }

    use std::os::unix::fs::PermissionsExt;

    trait Replace {
        fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
    }
    impl Replace for Vec<u8> {
        fn replacen(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
            let at = self.windows(from.len()).position(|w| w == from).unwrap();
            [&self[..at], to, &self[at + from.len()..]].concat()
        }
    }
}
