//! A bounded fuzz harness for the parsers of everything the tool reads (issue 11; see
//! `docs/reliability.md`): certificate, key and chain files (through `facts::gather_service`,
//! separate and combined layouts), the configuration (`config::from_str` and `config::load`),
//! and install journals (`actions::journal::read`). Inputs are random bytes and mutations of
//! real files (certificates made here, `examples/config.toml`, a journal written by the tool's
//! own `Journal::save`). Each parser must never panic, must report garbage as an error or an
//! unusable state (never as a usable certificate), and its messages must stay bounded whatever
//! the input's size. The differential check of the two certificate paths is a unit test
//! (`host/src/facts/fuzz_tests.rs`), since the OpenSSL-only path is crate-internal.
//!
//! Cases per property: `PROPTEST_CASES` (default 1024). The seed is fixed when `CI` is set
//! (`PROPTEST_RNG_SEED` overrides it), random otherwise; failures are not persisted to files —
//! a minimised failing input becomes an explicit regression test at the end of this file.
//! Run longer: `PROPTEST_CASES=100000 cargo nextest run --test fuzz_parsers`.

#[path = "support/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use checkallsslcerts::actions::journal::{self, Journal, JournalFile};
use checkallsslcerts::actions::{Operation, Phase, Role};
use checkallsslcerts::config::{self, ServiceConfig};
use checkallsslcerts::facts::Verifier;
use checkallsslcerts::facts::model::{CertificateState, KeyStatus, ServiceFacts};
use pki::{Ca, Leaf, now};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

const HOST: &str = "host.example.com";
/// The longest line of a message a parser may return, beyond the paths it names: errors never
/// echo unbounded input. (A message may list many problems, one a line.)
const MAX_MESSAGE: usize = 2048;

/// Cases per property when `PROPTEST_CASES` is not set: the whole harness stays within a few
/// seconds of one core (`docs/reliability.md`).
const DEFAULT_CASES: u32 = 1024;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    if std::env::var_os("CI").is_some() && std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x11_f022);
    }
    config
}

/// Real files to mutate, and a scratch directory.
struct Seeds {
    dir: tempfile::TempDir,
    cert: Vec<u8>,
    chain: Vec<u8>,
    key: Vec<u8>,
    rsa_key: Vec<u8>,
    config: String,
    journal: Vec<u8>,
    verifier: Verifier,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("Fuzz CA");
        let names = [HOST];
        let leaf = Leaf::valid(&names, 60);
        let cert = ca.issue(&leaf);
        let config =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config.toml"))
                .expect("examples/config.toml");
        let state = dir.path().join("state");
        checkallsslcerts::actions::ensure_state_dir(&state).expect("state dir");
        let sample = Journal {
            version: journal::JOURNAL_VERSION,
            service: "web".into(),
            operation: Operation::Restore,
            phase: Phase::Swapping,
            pid: 7,
            started_at: 1_700_000_000,
            backup_dir: Some(state.join("backups/web/x")),
            files: vec![JournalFile {
                role: Role::Certificate,
                target: dir.path().join("cert.pem"),
                temp: Some(dir.path().join(".cert.tmp")),
                temp_prefix: ".checkallsslcerts.web.certificate.".into(),
                remove: false,
            }],
        };
        sample.save(&state).expect("journal");
        let journal = std::fs::read(journal::path(&state, "web")).expect("journal bytes");
        Seeds {
            cert: pki::pem(&cert),
            chain: pki::pem(&ca.cert),
            key: pki::key_pem(&leaf.key),
            rsa_key: pki::key_pem(&pki::rsa_key(2048)),
            config,
            journal,
            verifier: Verifier::not_checking("fuzz"),
            dir,
        }
    })
}

/// A fresh file name in the scratch directory.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    seeds().dir.path().join(format!("{}-{name}", N.fetch_add(1, Ordering::Relaxed)))
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    /// Repeats a slice of the input (long lines, many blocks).
    Repeat(Index, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), interesting()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Remove(i, n)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 1usize..80, 1usize..200).prop_map(|(i, len, times)| Edit::Repeat(i, len, times)),
    ]
}

/// Fragments that parsers treat specially.
fn interesting() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        prop::sample::select(vec![
            &b"-----BEGIN CERTIFICATE-----\n"[..],
            b"-----END CERTIFICATE-----\n",
            b"-----BEGIN PRIVATE KEY-----\n",
            b"-----END PRIVATE KEY-----\n",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
            b"-----BEGIN TRUSTED CERTIFICATE-----\n",
            b"Proc-Type: 4,ENCRYPTED\n",
            b"\n",
            b"\r\n",
            b"\0",
            b"=",
            b"\x1b[31m",
            b"\"",
            b"[[service]]\n",
            b"[",
            b"]",
            b" = ",
            b"\"\"\"",
            b"'",
            b"#",
            b"-1",
            b"99999999999999999999",
            b"{",
            b"}",
            b"null",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let len = bytes.len();
    match e {
        Edit::Flip(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
        Edit::Set(i, b) if len > 0 => bytes[i.index(len)] = *b,
        Edit::Insert(i, b) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, b.iter().copied());
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

fn mutated(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for e in edits {
        apply(&mut bytes, e);
    }
    bytes
}

/// A file's content: a mutation of one of `seeds`, or random bytes.
fn content(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        4 => (0..n, prop::collection::vec(edit(), 1..6)).prop_map(move |(i, e)| mutated(&seeds[i], &e)),
        1 => prop::collection::vec(any::<u8>(), 0..2048),
    ]
}

fn pem_seeds() -> Vec<Vec<u8>> {
    let s = seeds();
    let concat = |parts: &[&[u8]]| parts.concat();
    vec![
        s.cert.clone(),
        concat(&[&s.cert, &s.chain]),
        concat(&[&s.cert, &s.chain, &s.key]),
        s.key.clone(),
        s.rsa_key.clone(),
        s.chain.clone(),
    ]
}

/// The messages in a service's facts, each of which must stay bounded.
fn messages(facts: &ServiceFacts) -> Vec<&str> {
    let mut out = Vec::new();
    match &facts.certificate {
        CertificateState::Missing(m) | CertificateState::Unreadable(m) | CertificateState::Malformed(m) => {
            out.push(m.as_str());
        }
        CertificateState::Ok(_) => {}
    }
    match &facts.key {
        KeyStatus::Missing(m) | KeyStatus::Unreadable(m) | KeyStatus::Malformed(m) => out.push(m.as_str()),
        _ => {}
    }
    out
}

fn check_bounded(what: &str, message: &str, path_len: usize) -> Result<(), TestCaseError> {
    for line in message.lines() {
        prop_assert!(
            line.len() <= MAX_MESSAGE + 2 * path_len,
            "{what}: a message line of {} bytes: {}…",
            line.len(),
            line.chars().take(200).collect::<String>()
        );
    }
    Ok(())
}

fn gather(cert: &[u8], key: Option<&[u8]>, chain: Option<&[u8]>) -> Result<ServiceFacts, TestCaseError> {
    let cert_path = scratch("cert.pem");
    std::fs::write(&cert_path, cert).expect("cert");
    let mut svc = match key {
        Some(key) => {
            let key_path = scratch("key.pem");
            std::fs::write(&key_path, key).expect("key");
            ServiceConfig::separate("fuzz", &cert_path, &key_path)
        }
        None => ServiceConfig::combined("fuzz", &cert_path),
    };
    if let Some(chain) = chain {
        let chain_path = scratch("chain.pem");
        std::fs::write(&chain_path, chain).expect("chain");
        svc.chain = Some(chain_path);
    }
    let facts = checkallsslcerts::facts::gather_service(&svc, HOST, &seeds().verifier, now());
    for m in messages(&facts) {
        check_bounded("facts", m, cert_path.as_os_str().len())?;
    }
    for p in [Some(&cert_path), svc.key.as_ref(), svc.chain.as_ref()].into_iter().flatten() {
        let _ = std::fs::remove_file(p);
    }
    Ok(facts)
}

/// Whether `bytes` hold a PEM certificate block at all.
fn has_certificate_block(bytes: &[u8]) -> bool {
    bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----")
        || bytes.windows(19).any(|w| w == b"-----BEGIN X509 CER")
        || bytes.windows(25).any(|w| w == b"-----BEGIN TRUSTED CERTIF")
}

proptest! {
    #![proptest_config(config())]

    /// Certificate, key and chain files (separate layout): never a panic, garbage is never a
    /// usable certificate, messages are bounded.
    #[test]
    fn certificate_key_and_chain_files(
        cert in content(pem_seeds()),
        key in content(pem_seeds()),
        chain in prop::option::of(content(pem_seeds())),
    ) {
        let facts = gather(&cert, Some(&key), chain.as_deref())?;
        if !has_certificate_block(&cert) {
            prop_assert!(facts.certificate.certificate().is_none(), "{:?}", facts.certificate);
        }
        if facts.key == KeyStatus::Matches {
            prop_assert!(facts.certificate.certificate().is_some());
        }
    }

    /// One combined file (leaf, chain and key).
    #[test]
    fn combined_files(file in content(pem_seeds())) {
        let facts = gather(&file, None, None)?;
        if !has_certificate_block(&file) {
            prop_assert!(facts.certificate.certificate().is_none(), "{:?}", facts.certificate);
        }
    }

    /// The private-key decoder on its own (what the install step uses on new material).
    #[test]
    fn private_keys(key in content(pem_seeds())) {
        match checkallsslcerts::facts::parse_private_key(&key) {
            Ok(_) => prop_assert!(key.windows(11).any(|w| w == b"PRIVATE KEY")),
            Err(e) => check_bounded("key", &e, 0)?,
        }
    }

    /// The configuration text: mutations of examples/config.toml and random text.
    #[test]
    fn configuration_text(
        text in prop_oneof![
            4 => prop::collection::vec(edit(), 1..8)
                .prop_map(|e| String::from_utf8_lossy(&mutated(seeds().config.as_bytes(), &e)).into_owned()),
            1 => ".{0,400}",
        ]
    ) {
        let path = Path::new("/etc/checkallsslcerts/config.toml");
        if let Err(e) = config::from_str(&text, path) {
            check_bounded("config", &e.to_string(), path.as_os_str().len())?;
        }
    }

    /// The configuration file as bytes (not UTF-8, NULs, truncated) through `config::load`.
    #[test]
    fn configuration_files(bytes in content(vec![seeds().config.as_bytes().to_vec()])) {
        let path = scratch("config.toml");
        std::fs::write(&path, &bytes).expect("config");
        let result = config::load(&path);
        let _ = std::fs::remove_file(&path);
        if let Err(e) = result {
            check_bounded("config", &e.to_string(), path.as_os_str().len())?;
        }
    }

    /// Install journals: mutations of a real one and random bytes.
    #[test]
    fn journals(bytes in content(vec![seeds().journal.clone(), b"{}".to_vec()])) {
        let path = scratch("journal.json");
        std::fs::write(&path, &bytes).expect("journal");
        let result = journal::read(&path);
        let _ = std::fs::remove_file(&path);
        match result {
            Ok(j) => prop_assert_eq!(j.version, journal::JOURNAL_VERSION),
            Err(e) => check_bounded("journal", &e, path.as_os_str().len())?,
        }
    }
}

/// A long value anywhere in the configuration is never echoed whole (issue 11: "a 15 MB config
/// value is echoed whole").
#[test]
fn a_long_configuration_value_is_not_echoed_whole() {
    let long = "x".repeat(200_000);
    let path = Path::new("/etc/checkallsslcerts/config.toml");
    let cases = [
        seeds().config.replace("host.example.com", &long),
        seeds().config.replace("ec-p256", &long),
        format!("{}\n{long} = 1\n", seeds().config),
        format!("hostname = \"{long}\n"),
    ];
    for (i, text) in cases.iter().enumerate() {
        if let Err(e) = config::from_str(text, path) {
            check_bounded(&format!("case {i}"), &e.to_string(), path.as_os_str().len()).expect("bounded");
        }
    }
}

/// A PEM label as long as a line can be is not echoed whole.
#[test]
fn a_long_pem_label_is_not_echoed_whole() {
    let label = "A".repeat(100_000);
    let cert = format!("-----BEGIN {label}-----\nAAAA\n-----END CERTIFICATE-----\n");
    let facts = gather(cert.as_bytes(), Some(&seeds().key), None).expect("bounded");
    assert!(facts.certificate.certificate().is_none());
}

/// The unmutated seeds parse (the harness itself is sound).
#[test]
fn the_seeds_are_valid() {
    let s = seeds();
    let facts = gather(&[&s.cert[..], &s.chain[..]].concat(), Some(&s.key), None).expect("facts");
    assert!(facts.certificate.certificate().is_some(), "{:?}", facts.certificate);
    assert_eq!(facts.key, KeyStatus::Matches);
    let text = s.config.clone();
    if let Err(e) = config::from_str(&text, Path::new("/etc/checkallsslcerts/config.toml")) {
        panic!("examples/config.toml: {e}");
    }
    let path = scratch("journal.json");
    std::fs::write(&path, &s.journal).expect("journal");
    assert_eq!(journal::read(&path).expect("journal").service, "web");
}
