//! Differential fuzzing of the two certificate paths (issue 11; see `docs/reliability.md`):
//! real DER certificates are mutated — bytes flipped, set, inserted, truncated, validity dates
//! and signature-algorithm OIDs changed — and `gather_service` (fast path first) must give
//! exactly the same `ServiceFacts` as `gather_service_full` (OpenSSL only), with a fresh
//! verifier and with one shared by every case (its memo in use), and neither may panic.
//!
//! Cases: `PROPTEST_CASES` (default 1024 per property); the seed is fixed when `CI` is set
//! (`PROPTEST_RNG_SEED` overrides it), random otherwise. Failures are not persisted to files:
//! a minimised failing input becomes an explicit regression test below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use openssl::x509::X509;
use proptest::prelude::*;
use proptest::sample::Index;
use tempfile::TempDir;

use super::testpki::{self, DAY, Issued, NOW, Pki, Spec, key_pem, pem};
use super::*;
use crate::config::{ServiceConfig, TrustConfig};

const HOST: &str = "host.example.com";

/// One real certificate to mutate: its DER, the chain that follows it, its key.
struct Base {
    der: Vec<u8>,
    chain: Vec<u8>,
    key: Vec<u8>,
}

struct Seeds {
    dir: TempDir,
    roots: PathBuf,
    bases: Vec<Base>,
    shared: Verifier,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("Fuzz CA");
        let roots = testpki::write(dir.path(), "roots.pem", &pem(&[&pki.root.cert]));
        let int = &pki.intermediate;
        let base = |leaf: &Issued, chain: &[&X509]| Base {
            der: leaf.cert.to_der().unwrap(),
            chain: pem(chain),
            key: key_pem(&leaf.key),
        };
        let mut good = Spec::leaf(HOST, &[HOST, "www.example.com"]);
        good.ips = vec!["192.0.2.7".into()];
        let mut bases = vec![base(&pki.leaf(&good), &[&int.cert])];
        let rsa = testpki::rsa_key(2048);
        bases.push(base(&Issued { cert: testpki::issue(&good, &rsa, Some(int)), key: rsa }, &[&int.cert]));
        let self_signed = testpki::ec_key();
        bases.push(base(
            &Issued {
                cert: testpki::issue(&Spec::leaf(HOST, &[HOST]), &self_signed, None),
                key: self_signed,
            },
            &[],
        ));
        let mut expired = good.clone();
        expired.not_before = NOW - 100 * DAY;
        expired.not_after = NOW - DAY;
        bases.push(base(&pki.leaf(&expired), &[&int.cert]));
        let mut bare = good.clone();
        bare.bare = true;
        bases.push(base(&pki.leaf(&bare), &[]));
        let shared = verifier(&roots);
        Seeds { dir, roots, bases, shared }
    })
}

fn verifier(roots: &std::path::Path) -> Verifier {
    Verifier::new(&TrustConfig { extra_roots: vec![roots.to_owned()], system_roots: false }).unwrap()
}

/// The property-test configuration of this harness (see `crate::fuzz_support`).
fn config() -> ProptestConfig {
    crate::fuzz_support::config(0x11_5eed)
}

/// One change to a DER certificate.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
    /// A digit of the n-th UTCTime/GeneralizedTime (0: notBefore, 1: notAfter).
    Date(usize, Index, u8),
    /// The last arc of the n-th signature-algorithm OID (0: in the TBS, 1: outside).
    SignatureAlgorithm(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
        (0usize..2, any::<Index>(), prop_oneof![b'0'..=b'9', Just(b'Z'), Just(b'+'), any::<u8>()])
            .prop_map(|(n, i, d)| Mutation::Date(n, i, d)),
        (0usize..2, prop_oneof![1u8..=5, Just(0x0b), Just(0x0c), Just(0x0d), Just(0x0e), any::<u8>()])
            .prop_map(|(n, b)| Mutation::SignatureAlgorithm(n, b)),
    ]
}

/// Where the n-th match of `needle` starts.
fn find_nth(hay: &[u8], needle: &[u8], n: usize) -> Option<usize> {
    hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).nth(n)
}

fn apply(der: &mut Vec<u8>, m: &Mutation) {
    if der.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, bit) => {
            let i = i.index(der.len());
            der[i] ^= 1 << bit;
        }
        Mutation::Set(i, b) => {
            let i = i.index(der.len());
            der[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(der.len() + 1);
            der.insert(i, *b);
        }
        Mutation::Remove(i) => {
            let i = i.index(der.len());
            der.remove(i);
        }
        Mutation::Truncate(i) => der.truncate(i.index(der.len())),
        Mutation::Date(n, i, d) => {
            let times: Vec<(usize, usize)> = der
                .windows(2)
                .enumerate()
                .filter(|(_, w)| (w[0] == 0x17 && w[1] == 13) || (w[0] == 0x18 && w[1] == 15))
                .map(|(at, w)| (at + 2, usize::from(w[1])))
                .collect();
            if let Some(&(start, len)) = times.get(*n)
                && start + len <= der.len()
            {
                der[start + i.index(len)] = *d;
            }
        }
        Mutation::SignatureAlgorithm(n, b) => {
            // ecdsa-with-SHA* (1.2.840.10045.4.3.x) and PKCS#1 (1.2.840.113549.1.1.x).
            for prefix in [
                &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03][..],
                &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01],
            ] {
                if let Some(at) = find_nth(der, prefix, *n)
                    && at + prefix.len() < der.len()
                {
                    der[at + prefix.len()] = *b;
                    return;
                }
            }
        }
    }
}

/// PEM of one CERTIFICATE block holding `der` (whatever it is).
fn pem_block(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
    out
}

/// Writes the case's files, gathers its facts both ways, and compares.
fn differential(der: &[u8], base: &Base, now: i64, hostname: &str) -> Result<(), TestCaseError> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let s = seeds();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut cert = pem_block(der);
    cert.extend_from_slice(&base.chain);
    let cert = testpki::write(s.dir.path(), &format!("{n}.crt"), &cert);
    let key = testpki::write(s.dir.path(), &format!("{n}.key"), &base.key);
    let svc = ServiceConfig::separate("fuzz", &cert, &key);
    // Each path starts with an empty OpenSSL error queue on this thread: a path that leaves
    // errors behind (see `stale_openssl_errors_are_not_left_on_the_thread`) must not make the
    // other path's messages differ here.
    drain_openssl_errors();
    let full = gather_service_full(&svc, hostname, &verifier(&s.roots), now);
    drain_openssl_errors();
    let cold = gather_service(&svc, hostname, &verifier(&s.roots), now);
    drain_openssl_errors();
    let warm = gather_service(&svc, hostname, &s.shared, now);
    drain_openssl_errors();
    let _ = std::fs::remove_file(&cert);
    let _ = std::fs::remove_file(&key);
    prop_assert_eq!(&cold, &full, "fresh verifier, DER {}", hex::encode(der));
    prop_assert_eq!(&warm, &full, "shared verifier, DER {}", hex::encode(der));
    Ok(())
}

/// Empties this thread's OpenSSL error queue; returns the reasons that were on it.
fn drain_openssl_errors() -> Vec<String> {
    openssl::error::ErrorStack::get().errors().iter().filter_map(|e| e.reason()).map(str::to_owned).collect()
}

fn times() -> impl Strategy<Value = i64> {
    prop_oneof![Just(NOW), Just(NOW - 200 * DAY), Just(NOW + 400 * DAY), any::<i64>()]
}

proptest! {
    #![proptest_config(config())]

    /// Mutated real certificates: the fast path and the OpenSSL path agree.
    #[test]
    fn mutated_certificates_give_the_same_facts_on_both_paths(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        now in times(),
        ip in any::<bool>(),
    ) {
        let base = &seeds().bases[which.index(seeds().bases.len())];
        let mut der = base.der.clone();
        for m in &mutations {
            apply(&mut der, m);
        }
        differential(&der, base, now, if ip { "192.0.2.7" } else { HOST })?;
    }

    /// Arbitrary bytes in a CERTIFICATE block: both paths agree (and neither panics).
    #[test]
    fn arbitrary_der_gives_the_same_facts_on_both_paths(
        der in prop::collection::vec(any::<u8>(), 0..600),
        prefix in prop_oneof![Just(Vec::new()), Just(vec![0x30, 0x82]), Just(vec![0x30, 0x81])],
    ) {
        let mut bytes = prefix;
        bytes.extend(der);
        differential(&bytes, &seeds().bases[0], NOW, HOST)?;
    }
}

/// The unmutated bases agree too (the harness itself is sound).
#[test]
fn the_bases_give_the_same_facts_on_both_paths() {
    for base in &seeds().bases {
        differential(&base.der, base, NOW, HOST).unwrap();
        let facts = gather_service(
            &ServiceConfig::separate("x", seeds().dir.path().join("none.crt"), "/nonexistent"),
            HOST,
            &seeds().shared,
            NOW,
        );
        assert!(facts.certificate.certificate().is_none());
    }
}

/// Found by this harness: a certificate whose signature does not verify leaves OpenSSL errors
/// (`EVP lib`) on the thread's error queue, and the next certificate that fails to decode on the
/// same thread (another service, on rayon's shared threads) is reported with that stale reason —
/// "not a valid X.509 certificate (EVP lib)" for a truncated certificate whose own reason is
/// "(too long)" — so the message depends on what the thread did before. Ignored until facts
/// drains the queue (or words errors from the failing call's own errors only).
#[test]
fn stale_openssl_errors_are_not_left_on_the_thread() {
    let s = seeds();
    let base = &s.bases[0];
    let mut der = base.der.clone();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let mut cert = pem_block(&der);
    cert.extend_from_slice(&base.chain);
    let cert = testpki::write(s.dir.path(), "bad-signature.crt", &cert);
    let key = testpki::write(s.dir.path(), "bad-signature.key", &base.key);
    let svc = ServiceConfig::separate("bad-signature", &cert, &key);
    drain_openssl_errors();
    let full = gather_service_full(&svc, HOST, &verifier(&s.roots), NOW);
    assert_eq!(drain_openssl_errors(), Vec::<String>::new(), "after the full path: {full:?}");
    let fast = gather_service(&svc, HOST, &verifier(&s.roots), NOW);
    assert_eq!(drain_openssl_errors(), Vec::<String>::new(), "after the fast path: {fast:?}");
}
