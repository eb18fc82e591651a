//! Fuzzing of the backup manifest parser (issue 11; see `docs/reliability.md`): mutations of a
//! manifest written by [`backup::create`] and random bytes. [`backup::read_manifest`] must never
//! panic, and its errors must stay bounded whatever the input. (Journals are fuzzed through the
//! public `journal::read` in `tests/fuzz_parsers.rs`; the manifest parser is crate-internal.)
//!
//! Cases: `PROPTEST_CASES` (default 1024); the seed is fixed when `CI` is set
//! (`PROPTEST_RNG_SEED` overrides it), random otherwise; failures are not persisted to files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;

use super::backup;
use super::journal::Role;

/// The longest line of an error, beyond the paths it names.
const MAX_MESSAGE: usize = 2048;

fn config() -> ProptestConfig {
    crate::fuzz_support::config(0x11_3a21)
}

struct Seeds {
    dir: tempfile::TempDir,
    manifest: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        super::ensure_state_dir(&state).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let (cert, key) =
            (crate::fs::resolve(&cert).unwrap(), crate::fs::resolve(&dir.path().join("absent.key")).unwrap());
        let targets = [(Role::Certificate, &cert), (Role::Key, &key)];
        let (backup_dir, _) = backup::create(&state, "web", &targets, 1_767_225_600).unwrap();
        let manifest = std::fs::read(backup_dir.join("manifest.json")).unwrap();
        Seeds { dir, manifest }
    })
}

/// A fresh backup directory holding `manifest.json` = `bytes`.
fn backup_with(bytes: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = seeds().dir.path().join(format!("b{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), bytes).unwrap();
    dir
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    Repeat(Index, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            &b"\""[..],
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"null",
            b"-1",
            b"4294967296",
            b"1e999",
            b"\"/\"",
            b"\\u0000",
            b"\"existed\": false",
            b"\"role\": \"combined\"",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), fragment).prop_map(|(i, f)| Edit::Insert(i, f)),
        (any::<Index>(), 1usize..32).prop_map(|(i, n)| Edit::Remove(i, n)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 1usize..40, 1usize..100).prop_map(|(i, n, t)| Edit::Repeat(i, n, t)),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let len = bytes.len();
    match e {
        Edit::Flip(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
        Edit::Insert(i, f) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, f.iter().copied());
        }
        Edit::Remove(i, n) if len > 0 => {
            let at = i.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Edit::Truncate(i) => bytes.truncate(i.index(len + 1)),
        Edit::Repeat(i, n, times) if len > 0 => {
            let at = i.index(len);
            let piece = bytes[at..(at + n).min(len)].to_vec();
            let copies: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
            bytes.splice(at..at, copies);
        }
        _ => {}
    }
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = backup_with(bytes);
    let result = backup::read_manifest(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        for line in e.lines() {
            prop_assert!(
                line.len() <= MAX_MESSAGE + 2 * dir.as_os_str().len(),
                "a message line of {} bytes: {}…",
                line.len(),
                line.chars().take(200).collect::<String>()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutations of a real manifest.
    #[test]
    fn mutated_manifests(edits in prop::collection::vec(edit(), 1..6)) {
        let mut bytes = seeds().manifest.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        check(&bytes)?;
    }

    /// Random bytes.
    #[test]
    fn random_manifests(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes)?;
    }
}

/// The unmutated seed parses (the harness itself is sound).
#[test]
fn the_seed_manifest_parses() {
    let dir = backup_with(&seeds().manifest);
    let manifest = backup::read_manifest(&dir).unwrap();
    assert_eq!(manifest.service, "web");
    assert_eq!(manifest.files.len(), 2);
}
