//! Chain verification and the hostname check, with OpenSSL.
//!
//! Performance (see shared/notes/performance.md): the trusted roots are decoded once in
//! [`Verifier::new`]; the `X509_STORE` for a verification time is built once and shared by every
//! thread; an intermediate shared by many certificates (every Let's Encrypt leaf has one of a
//! handful) is decoded once and kept by its SHA-256. The [`Verifier`] is `Sync`: the services
//! are checked on all cores with rayon.
//!
//! Leaves read by the fast path ([`super::fast`]) are verified by [`Verifier::verify_fast`]: the
//! first leaf under a given chain (its issuer name, authority key identifier, signature algorithm
//! and the untrusted certificates beside it) is verified in full by `X509_verify_cert`, and what
//! that taught about the chain *above* the leaf is kept: either "the chain is trusted" with the
//! issuer's decoded public key, or a failure that lies above the leaf. Every later leaf under the
//! same chain then costs one signature check with the cached key plus its validity dates, in the
//! order `X509_verify_cert` checks them. See [`Verifier::verify_fast`] for why this gives the same
//! answer.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags, X509VerifyParam};
use openssl::x509::{
    X509, X509Builder, X509Name, X509NameRef, X509PurposeId, X509Ref, X509StoreContext, X509VerifyResult,
};

use super::certificate::{chain_from_blocks, element_facts, openssl_reason};
use super::errors::FactsError;
use super::fast::{FastLeaf, LazyLeaf, VerifyKey};
use super::memo::Memo;
use super::model::{ChainElement, ChainSource, ChainStatus, PathStatus};
use super::pem;
use super::read::{ReadError, read_bounded};
use crate::config::TrustConfig;

/// The largest extra-roots file read, in bytes (a whole CA bundle is about 250 KB).
pub const MAX_TRUST_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// How many distinct intermediates are kept decoded.
const MAX_CACHED_INTERMEDIATES: usize = 4096;

/// How many chains (and names looked up in the trust store) the fast path remembers.
const MAX_MEMO_ENTRIES: usize = 1 << 16;

/// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT`
const ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
/// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`
const ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
/// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`
const ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
/// Failures `X509_verify_cert` reports after it has built a chain to a trust anchor, about one
/// certificate (at the depth reported): unable to decode the issuer's key (6), signature (7), not
/// yet valid / expired (9, 10), bad validity field (13, 14), not a CA (24), path length (25),
/// purpose (26), no certSign key usage (32), unhandled critical extension (34).
const ERR_AFTER_CHAIN_BUILT: [i32; 11] = [6, 7, 9, 10, 13, 14, 24, 25, 26, 32, 34];
/// Failures of the leaf's own checks that `X509_verify_cert` reports last, once the chain is
/// built, its extensions and trust are checked and every signature and validity period above the
/// leaf has passed (`internal_verify` goes top-down): the leaf's signature (7), not yet valid (9),
/// expired (10). Reported at depth 0, they say the chain above is sound (see [`learn`]).
const ERR_LEAF_ONLY: [i32; 3] = [7, ERR_CERT_NOT_YET_VALID, ERR_CERT_HAS_EXPIRED];
/// `X509_V_ERR_CERT_NOT_YET_VALID`
const ERR_CERT_NOT_YET_VALID: i32 = 9;
/// `X509_V_ERR_CERT_HAS_EXPIRED`
const ERR_CERT_HAS_EXPIRED: i32 = 10;

/// OpenSSL's messages (`X509_verify_cert_error_string`) for the failures the fast path reports
/// itself; `fast_tests.rs` checks them against OpenSSL's.
const MSG_SIGNATURE_FAILURE: &str = "certificate signature failure";
const MSG_NOT_YET_VALID: &str = "certificate is not yet valid";
const MSG_EXPIRED: &str = "certificate has expired";
const MSG_DEPTH_ZERO_SELF_SIGNED: &str = "self-signed certificate";

/// What verifying a leaf found: `chain-status`, `path` and `chain` in the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFacts {
    pub status: ChainStatus,
    pub path: PathStatus,
    pub chain: Arc<[ChainElement]>,
}

impl ChainFacts {
    /// Nothing verified.
    pub fn not_checked() -> ChainFacts {
        ChainFacts {
            status: ChainStatus::NotChecked,
            path: PathStatus::NotChecked,
            chain: Default::default(),
        }
    }

    /// A chain file that cannot be used: the chain is incomplete, whatever the leaf.
    pub fn incomplete(problem: String) -> ChainFacts {
        ChainFacts {
            status: ChainStatus::Incomplete(problem.clone()),
            path: PathStatus::Incomplete(problem),
            chain: Default::default(),
        }
    }
}

/// Verifies chains against the configured trust (system store and extra roots).
pub struct Verifier {
    /// `None` when the trust could not be loaded: every chain is then `NotChecked`.
    trust: Option<Trust>,
    /// The store for the last verification time asked for.
    store: Mutex<Option<(i64, Arc<X509Store>)>>,
    /// The store that checks no validity period, for the path verdict (built once).
    timeless: Mutex<Option<Arc<X509Store>>>,
    /// The facts of certificates above leaves, by the SHA-256 of their DER.
    elements: RwLock<HashMap<[u8; 32], ChainElement>>,
    /// Decoded intermediates by the SHA-256 of their DER.
    intermediates: RwLock<HashMap<[u8; 32], X509>>,
    /// What full verifications taught about chains above leaves (see [`Verifier::verify_fast`]).
    chains: RwLock<HashMap<[u8; 32], Arc<Above>>>,
    /// Names (DER) looked up in the trust store: whether no trusted certificate has that subject.
    absent_names: RwLock<HashMap<Vec<u8>, bool>>,
    /// How many leaves [`Verifier::verify_fast`] verified with `X509_verify_cert` (the tests
    /// check the memo serves the rest).
    full_verifications: AtomicUsize,
    /// What earlier runs proved about signatures and keys ([`super::memo`]).
    memo: Memo,
    notices: Vec<String>,
}

/// What a full verification of one leaf taught about the chain above it.
enum Above {
    /// The chain above verified; the issuer's public key, and the certificates above the leaf.
    /// `same_without_time`: a verification that checks no validity period (the path verdict, and
    /// what the full path reports for a leaf whose own verification failed) builds the same chain;
    /// when it does not (another candidate issuer, e.g. an expired copy of the intermediate, comes
    /// first without the time check), a leaf that fails its own checks takes the full path.
    Trusted { key: VerifyKey, above: Arc<[ChainElement]>, same_without_time: bool },
    /// It failed above the leaf: every leaf under it gets this status. `anchorless`: no trust
    /// anchor was found, so a leaf that is itself a trusted certificate would be trusted directly
    /// (`X509_verify_cert`'s last resort with `PARTIAL_CHAIN`); the status holds only for leaves
    /// whose subject no trusted certificate has. The path verdict and the chain of such a chain
    /// (which does not get built whatever the leaf) are kept too; a failure after the chain was
    /// built (`anchorless: false`) has its path verdict worked out per leaf.
    Failed { status: ChainStatus, anchorless: bool, path: Option<(PathStatus, Arc<[ChainElement]>)> },
}

struct Trust {
    /// Every trusted certificate, decoded.
    roots: Vec<X509>,
    /// Hashed certificate directories looked up lazily (the system store's `certs/`).
    hash_dirs: Vec<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("roots", &self.trust.as_ref().map(|t| t.roots.len()))
            .field("hash_dirs", &self.trust.as_ref().map(|t| &t.hash_dirs))
            .field("notices", &self.notices)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the trusted roots: the system trust store (when `system_roots`; OpenSSL's default
    /// locations, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) and every `extra_roots` file.
    /// Fails if an extra-roots file cannot be read or holds no certificate.
    pub fn new(trust: &TrustConfig) -> Result<Verifier, FactsError> {
        let mut roots = Vec::new();
        let mut hash_dirs = Vec::new();
        let mut notices = Vec::new();
        if trust.system_roots {
            let mut builder = X509StoreBuilder::new()?;
            builder
                .set_default_paths()
                .map_err(|e| FactsError::SystemRoots { reason: openssl_reason(&e) })?;
            roots.extend(builder.build().all_certificates());
            hash_dirs = system_hash_dirs();
            if roots.is_empty() && hash_dirs.is_empty() {
                notices.push(format!(
                    "The system trust store ({}) holds no certificates: chains can only be verified \
                     against [trust] extra-roots.",
                    openssl::version::dir()
                ));
            }
        }
        for path in &trust.extra_roots {
            roots.extend(load_extra_roots(path)?);
        }
        Ok(Verifier {
            trust: Some(Trust { roots, hash_dirs }),
            store: Mutex::new(None),
            timeless: Mutex::new(None),
            elements: RwLock::new(HashMap::new()),
            intermediates: RwLock::new(HashMap::new()),
            chains: RwLock::new(HashMap::new()),
            absent_names: RwLock::new(HashMap::new()),
            full_verifications: AtomicUsize::new(0),
            memo: Memo::empty(),
            notices,
        })
    }

    /// A verifier that verifies nothing: every chain is `NotChecked` (used when the trust store
    /// cannot be loaded, so that no certificate is called untrusted for the wrong reason).
    pub fn not_checking(reason: &str) -> Verifier {
        Verifier {
            trust: None,
            store: Mutex::new(None),
            timeless: Mutex::new(None),
            elements: RwLock::new(HashMap::new()),
            intermediates: RwLock::new(HashMap::new()),
            chains: RwLock::new(HashMap::new()),
            absent_names: RwLock::new(HashMap::new()),
            full_verifications: AtomicUsize::new(0),
            memo: Memo::empty(),
            notices: vec![format!("Certificate chains were not verified: {reason}")],
        }
    }

    /// This verifier, sparing the signature checks and key matches `memo` knows of.
    pub fn with_memo(mut self, memo: Memo) -> Verifier {
        self.memo = memo;
        self
    }

    /// The verification memo in use (the run saves it when done).
    pub fn memo(&self) -> &Memo {
        &self.memo
    }

    /// Messages for the admin about the trust store (e.g. an empty system store).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// How many trusted certificates were loaded (not counting lazily looked-up directories).
    pub fn root_count(&self) -> usize {
        self.trust.as_ref().map_or(0, |t| t.roots.len())
    }

    /// Decodes a DER certificate that is not a leaf (an intermediate), once per distinct DER.
    pub fn intermediate(&self, der: &[u8]) -> Result<X509, ErrorStack> {
        self.intermediate_with_digest(der).map(|(cert, _)| cert)
    }

    /// [`Verifier::intermediate`], with the SHA-256 of the DER.
    pub(crate) fn intermediate_with_digest(&self, der: &[u8]) -> Result<(X509, [u8; 32]), ErrorStack> {
        let digest = openssl::sha::sha256(der);
        if let Some(cert) = self.intermediates.read().ok().and_then(|m| m.get(&digest).cloned()) {
            return Ok((cert, digest));
        }
        let cert = X509::from_der(der)?;
        if let Ok(mut map) = self.intermediates.write()
            && map.len() < MAX_CACHED_INTERMEDIATES
        {
            map.insert(digest, cert.clone());
        }
        Ok((cert, digest))
    }

    /// How many chains the fast path has memoised.
    #[cfg(test)]
    pub(crate) fn memoised_chains(&self) -> usize {
        self.chains.read().map_or(0, |m| m.len())
    }

    /// How many leaves the fast path verified in full (the others were served by the memo).
    #[cfg(test)]
    pub(crate) fn full_verifications(&self) -> usize {
        self.full_verifications.load(AtomicOrdering::Relaxed)
    }

    /// How many distinct intermediates have been decoded and kept.
    pub fn cached_intermediates(&self) -> usize {
        self.intermediates.read().map_or(0, |m| m.len())
    }

    /// Verifies `leaf` at time `now` against the trusted roots, with `chain` as untrusted
    /// intermediates, for use as a TLS server certificate.
    ///
    /// "unable to get local issuer certificate" for the leaf itself (its issuer is neither in
    /// the files nor trusted), or anywhere when the files hold no intermediate, is
    /// `Incomplete`; every other failure (expired, self-signed, unknown root...) is
    /// `Untrusted`, with OpenSSL's message and, above the leaf, the certificate concerned.
    pub fn verify(&self, leaf: &X509Ref, chain: &[X509], now: i64) -> ChainStatus {
        let Some(trust) = &self.trust else {
            return ChainStatus::NotChecked;
        };
        match self.run_verify(trust, leaf, chain, now) {
            Ok(None) => ChainStatus::Trusted,
            Ok(Some(failure)) => failure.into_status(chain),
            Err(_) => ChainStatus::NotChecked,
        }
    }

    /// [`Verifier::verify`], and the path verdict and the certificates above the leaf
    /// (`file_digests`: the SHA-256 of the DER of the certificates that came from the service's
    /// files, to tell them from the trust store's).
    pub fn verify_facts(
        &self,
        leaf: &X509Ref,
        chain: &[X509],
        file_digests: &[[u8; 32]],
        now: i64,
    ) -> ChainFacts {
        let Some(trust) = &self.trust else {
            return ChainFacts::not_checked();
        };
        match self.run_verify_keeping(trust, leaf, chain, now, true) {
            Ok((failure, built)) => self.facts_from(trust, leaf, chain, file_digests, now, failure, &built),
            Err(_) => ChainFacts::not_checked(),
        }
    }

    /// The chain facts from a verification's outcome: a trusted chain is a valid path; any
    /// failure gets the path verified again without validity periods.
    #[allow(clippy::too_many_arguments)]
    fn facts_from(
        &self,
        trust: &Trust,
        leaf: &X509Ref,
        chain: &[X509],
        file_digests: &[[u8; 32]],
        now: i64,
        failure: Option<Failure>,
        built: &[X509],
    ) -> ChainFacts {
        match failure {
            None => ChainFacts {
                status: ChainStatus::Trusted,
                path: PathStatus::Valid,
                chain: self.elements(built, file_digests),
            },
            Some(failure) => {
                let status = failure.into_status(chain);
                let (path, chain) = self.path_verdict(trust, leaf, chain, file_digests, now);
                ChainFacts { status, path, chain }
            }
        }
    }

    /// The path verdict (`path-status`): the chain built and verified with no validity period
    /// checked, then the validity of every certificate above the leaf at `now`.
    fn path_verdict(
        &self,
        trust: &Trust,
        leaf: &X509Ref,
        chain: &[X509],
        file_digests: &[[u8; 32]],
        now: i64,
    ) -> (PathStatus, Arc<[ChainElement]>) {
        let Ok(store) = self.timeless_store(trust) else {
            return (PathStatus::NotChecked, Arc::default());
        };
        let Ok((failure, built)) = run_in_store(&store, leaf, chain, true) else {
            return (PathStatus::NotChecked, Arc::default());
        };
        let elements = self.elements(&built, file_digests);
        let path = match failure {
            Some(failure) => failure.into_path(chain),
            None => {
                let outside =
                    elements.iter().enumerate().find(|(_, e)| now < e.not_before || now >= e.not_after);
                match outside {
                    Some((i, e)) => PathStatus::Invalid(format!(
                        "{} (chain certificate \"{}\", depth {})",
                        if now >= e.not_after { MSG_EXPIRED } else { MSG_NOT_YET_VALID },
                        e.subject,
                        i + 1
                    )),
                    None => PathStatus::Valid,
                }
            }
        };
        (path, elements)
    }

    /// The facts of the certificates of `built` above the leaf, each decoded once per run.
    fn elements(&self, built: &[X509], file_digests: &[[u8; 32]]) -> Arc<[ChainElement]> {
        built
            .iter()
            .skip(1)
            .map(|cert| {
                let digest = cert.digest(openssl::hash::MessageDigest::sha256()).ok();
                let digest: Option<[u8; 32]> = digest.and_then(|d| d.as_ref().try_into().ok());
                let source = match digest {
                    Some(d) if file_digests.contains(&d) => ChainSource::File,
                    _ => ChainSource::TrustStore,
                };
                let known = digest.and_then(|d| self.elements.read().ok().and_then(|m| m.get(&d).cloned()));
                let mut element = known.unwrap_or_else(|| {
                    let element = element_facts(cert, source);
                    if let Some(d) = digest
                        && let Ok(mut map) = self.elements.write()
                        && map.len() < MAX_CACHED_INTERMEDIATES
                    {
                        map.insert(d, element.clone());
                    }
                    element
                });
                element.source = source;
                element
            })
            .collect::<Vec<_>>()
            .into()
    }

    /// The store that checks no validity period (`X509_V_FLAG_NO_CHECK_TIME`), built once.
    fn timeless_store(&self, trust: &Trust) -> Result<Arc<X509Store>, ErrorStack> {
        let mut cached = self.timeless.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = cached.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(build_store(trust, None)?);
        *cached = Some(Arc::clone(&store));
        Ok(store)
    }

    fn run_verify(
        &self,
        trust: &Trust,
        leaf: &X509Ref,
        chain: &[X509],
        now: i64,
    ) -> Result<Option<Failure>, ErrorStack> {
        self.run_verify_keeping(trust, leaf, chain, now, false).map(|(failure, _)| failure)
    }

    /// Runs `X509_verify_cert`; with `keep_chain`, also returns the chain it built.
    fn run_verify_keeping(
        &self,
        trust: &Trust,
        leaf: &X509Ref,
        chain: &[X509],
        now: i64,
        keep_chain: bool,
    ) -> Result<(Option<Failure>, Vec<X509>), ErrorStack> {
        let store = self.store_at(trust, now)?;
        run_in_store(&store, leaf, chain, keep_chain)
    }

    /// Verifies a leaf read by the fast path; the same status as [`Verifier::verify`] gives for
    /// the decoded leaf (`leaf` decodes it on demand). `chain_digests` are the SHA-256 of the
    /// `chain` certificates' DER. `None` only if the leaf cannot be decoded when needed.
    ///
    /// Why the memo is exact. `X509_verify_cert` (OpenSSL 3.0, no callback, no flags but
    /// `PARTIAL_CHAIN`, purpose sslserver) stops at the first failure, in this order: build the
    /// chain; check extensions bottom-up (critical, CA, purpose, path length); the leaf's key must
    /// decode; then signatures and validity top-down; then name constraints. For a leaf in the
    /// fast path's profile that is not self-issued, building the chain depends on the leaf only
    /// through its issuer name, authority key identifier and signature algorithm (issuer
    /// candidates are matched on those) and the untrusted certificates offered — the memo's key —
    /// except for the last resort of a chain without a trust anchor: the leaf itself found in the
    /// trust store (hence `anchorless`). The profile guarantees the leaf's own extension checks
    /// and key decoding pass, and that nothing but its signature and dates is checked at depth 0
    /// once the chain is built; chains with name or policy constraints are never memoised. So:
    /// a chain that verified for one leaf verifies for another up to that leaf's signature (with
    /// the same issuer key) and then its dates; a failure found above the leaf is found first for
    /// every leaf. A leaf that failed only its own signature or dates (reported last, at depth 0:
    /// everything above was checked first) teaches the same as one that verified, so a chain
    /// first met under an expired leaf is memoised too. For a leaf that fails its own checks, the
    /// full path reports the chain a verification without validity periods builds; the memo
    /// answers only when that chain is the one with them (`same_without_time`).
    ///
    /// A self-issued leaf with an empty chain, marked self-signed by OpenSSL's rules, whose name
    /// no trusted certificate has, always fails chain building with "self-signed certificate".
    /// Everything else is verified in full.
    pub(crate) fn verify_fast(
        &self,
        leaf: &FastLeaf<'_>,
        decoded: &LazyLeaf<'_>,
        chain: &[X509],
        chain_digests: &[[u8; 32]],
        now: i64,
    ) -> Option<ChainFacts> {
        let Some(trust) = &self.trust else {
            return Some(ChainFacts::not_checked());
        };
        let full = || {
            self.full_verifications.fetch_add(1, AtomicOrdering::Relaxed);
            Some(self.verify_facts(decoded.get()?, chain, chain_digests, now))
        };
        if chain_digests.contains(&leaf.digest) {
            return full();
        }
        if leaf.self_issued()? {
            if chain.is_empty() && leaf.marked_self_signed() && self.name_absent(trust, leaf.subject)? {
                // Chain building fails at the leaf, with or without validity periods.
                return Some(ChainFacts {
                    status: ChainStatus::Untrusted(MSG_DEPTH_ZERO_SELF_SIGNED.to_owned()),
                    path: PathStatus::Untrusted(MSG_DEPTH_ZERO_SELF_SIGNED.to_owned()),
                    chain: Default::default(),
                });
            }
            return full();
        }
        let key = memo_key(leaf, chain_digests, now);
        let known = self.chains.read().ok().and_then(|m| m.get(&key).cloned());
        match known.as_deref() {
            Some(Above::Trusted { key: issuer_key, above, same_without_time }) => {
                // The path above is valid at `now`; the leaf's signature decides the path, its
                // dates only the status.
                let signed = leaf.verify_with_memo(issuer_key, &self.memo);
                let status = if !signed {
                    ChainStatus::Untrusted(MSG_SIGNATURE_FAILURE.to_owned())
                } else if leaf.not_before > now {
                    ChainStatus::Untrusted(MSG_NOT_YET_VALID.to_owned())
                } else if leaf.not_after <= now {
                    ChainStatus::Untrusted(MSG_EXPIRED.to_owned())
                } else {
                    ChainStatus::Trusted
                };
                if status != ChainStatus::Trusted && !same_without_time {
                    return full();
                }
                let path = if signed {
                    PathStatus::Valid
                } else {
                    PathStatus::Invalid(MSG_SIGNATURE_FAILURE.to_owned())
                };
                return Some(ChainFacts { status, path, chain: above.clone() });
            }
            Some(Above::Failed { status, anchorless, path }) => {
                if *anchorless && !self.name_absent(trust, leaf.subject)? {
                    return full();
                }
                return match path {
                    Some((path, above)) => {
                        Some(ChainFacts { status: status.clone(), path: path.clone(), chain: above.clone() })
                    }
                    // The status is known; the path verdict depends on the leaf.
                    None => {
                        let (path, above) =
                            self.path_verdict(trust, decoded.get()?, chain, chain_digests, now);
                        Some(ChainFacts { status: status.clone(), path, chain: above })
                    }
                };
            }
            None => {}
        }
        let decoded = decoded.get()?;
        self.full_verifications.fetch_add(1, AtomicOrdering::Relaxed);
        let Ok((failure, built)) = self.run_verify_keeping(trust, decoded, chain, now, true) else {
            return Some(ChainFacts::not_checked());
        };
        let learned = learn(failure.as_ref(), &built);
        let verified = failure.is_none();
        // The leaf's own signature verified (it failed, if at all, on its dates only).
        let leaf_signed = failure.as_ref().is_none_or(|f| {
            f.depth == 0 && [ERR_CERT_NOT_YET_VALID, ERR_CERT_HAS_EXPIRED].contains(&f.error.as_raw())
        });
        let facts = self.facts_from(trust, decoded, chain, chain_digests, now, failure, &built);
        if let Some(above) = learned {
            let above = match above {
                Learned::Trusted(key) => {
                    // The chain with validity periods checked, and the one without (for a
                    // trusted leaf, worked out now, once per chain; for a leaf that failed its
                    // own checks, it is the path verdict's).
                    let timed =
                        if verified { facts.chain.clone() } else { self.elements(&built, chain_digests) };
                    let timeless = if verified {
                        self.path_verdict(trust, decoded, chain, chain_digests, now).1
                    } else {
                        facts.chain.clone()
                    };
                    let same_without_time = fingerprints(&timed) == fingerprints(&timeless);
                    if leaf_signed {
                        // So that the memo's entries do not depend on which leaf came first.
                        self.memo.signature_proved(&leaf.digest, &key.id);
                    }
                    Above::Trusted { key, above: timed, same_without_time }
                }
                Learned::Failed { anchorless } => Above::Failed {
                    status: facts.status.clone(),
                    anchorless,
                    path: anchorless.then(|| (facts.path.clone(), facts.chain.clone())),
                },
            };
            if let Ok(mut map) = self.chains.write()
                && map.len() < MAX_MEMO_ENTRIES
            {
                map.insert(key, Arc::new(above));
            }
        }
        Some(facts)
    }

    /// Whether no certificate in the trust store has the subject `name` (DER), as the store's
    /// lookups by name would find: the loaded roots (compared as OpenSSL compares names) and, in
    /// the hashed directories, a file named after the name's hash. `None` if OpenSSL cannot
    /// decode the name.
    fn name_absent(&self, trust: &Trust, name: &[u8]) -> Option<bool> {
        if let Some(known) = self.absent_names.read().ok().and_then(|m| m.get(name).copied()) {
            return Some(known);
        }
        let decoded = X509Name::from_der(name).ok()?;
        let mut absent = !trust
            .roots
            .iter()
            .any(|root| root.subject_name().try_cmp(&decoded).ok() == Some(Ordering::Equal));
        if absent && !trust.hash_dirs.is_empty() {
            // X509_NAME_hash_ex of the name, through a certificate that has it as its subject.
            let mut builder = X509Builder::new().ok()?;
            builder.set_subject_name(&decoded).ok()?;
            let hash = builder.build().subject_name_hash();
            absent = !trust.hash_dirs.iter().any(|dir| Path::new(&format!("{dir}/{hash:08x}.0")).exists());
        }
        if let Ok(mut map) = self.absent_names.write()
            && map.len() < MAX_MEMO_ENTRIES
        {
            map.insert(name.to_vec(), absent);
        }
        Some(absent)
    }

    /// The store for verification time `now`, built once per distinct time (a run has one).
    fn store_at(&self, trust: &Trust, now: i64) -> Result<Arc<X509Store>, ErrorStack> {
        let mut cached = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((time, store)) = cached.as_ref()
            && *time == now
        {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(build_store(trust, Some(now))?);
        *cached = Some((now, Arc::clone(&store)));
        Ok(store)
    }
}

/// A store of the trusted certificates that verifies at `time`, or checks no validity period at
/// all with `None`.
fn build_store(trust: &Trust, time: Option<i64>) -> Result<X509Store, ErrorStack> {
    let mut builder = X509StoreBuilder::new()?;
    for root in &trust.roots {
        // A certificate listed twice (system store and extra roots) is not an error.
        let _ = builder.add_cert(root.clone());
    }
    if !trust.hash_dirs.is_empty() {
        let lookup = builder.add_lookup(X509Lookup::hash_dir())?;
        for dir in &trust.hash_dirs {
            lookup.add_dir(dir, openssl::ssl::SslFiletype::PEM)?;
        }
    }
    let mut param = X509VerifyParam::new()?;
    // An extra root may be an intermediate the admin chose to trust.
    let mut flags = X509VerifyFlags::PARTIAL_CHAIN;
    match time {
        Some(now) => param.set_time(now),
        None => flags |= X509VerifyFlags::NO_CHECK_TIME,
    }
    param.set_flags(flags)?;
    param.set_purpose(X509PurposeId::SSL_SERVER)?;
    builder.set_param(&param)?;
    Ok(builder.build())
}

/// Runs `X509_verify_cert` in `store`; with `keep_chain`, also returns the chain it built (or as
/// far as it got).
fn run_in_store(
    store: &X509Store,
    leaf: &X509Ref,
    chain: &[X509],
    keep_chain: bool,
) -> Result<(Option<Failure>, Vec<X509>), ErrorStack> {
    let mut untrusted = Stack::new()?;
    for cert in chain {
        untrusted.push(cert.clone())?;
    }
    let mut context = X509StoreContext::new()?;
    context.init(store, leaf, &untrusted, |ctx| {
        let verified = ctx.verify_cert()?;
        let built = match ctx.chain() {
            Some(stack) if keep_chain => stack.iter().map(X509Ref::to_owned).collect(),
            _ => Vec::new(),
        };
        if verified {
            return Ok((None, built));
        }
        let depth = ctx.error_depth();
        let at = ctx.current_cert().map(|c| (name_text(c.subject_name()), name_text(c.issuer_name())));
        Ok((Some(Failure { error: ctx.error(), depth, at }), built))
    })
}

/// The memo's key: the verification time, the leaf's issuer name, authority key identifier and
/// signature algorithm, and the untrusted certificates offered with it.
fn memo_key(leaf: &FastLeaf<'_>, chain_digests: &[[u8; 32]], now: i64) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    part(&now.to_be_bytes());
    part(leaf.issuer);
    match leaf.akid {
        Some(akid) => {
            part(b"akid");
            part(akid);
        }
        None => part(b"no akid"),
    }
    part(leaf.sig_alg_der);
    for digest in chain_digests {
        part(digest);
    }
    h.finish()
}

enum Learned {
    Trusted(VerifyKey),
    Failed { anchorless: bool },
}

/// What a full verification's outcome says about the chain above the leaf (see
/// [`Verifier::verify_fast`]), if anything; `built` is the chain `X509_verify_cert` built.
fn learn(failure: Option<&Failure>, built: &[X509]) -> Option<Learned> {
    // Name or policy constraints anywhere above the leaf: the outcome may depend on the leaf.
    for cert in built.iter().skip(1) {
        if !plain_above_leaf(cert)? {
            return None;
        }
    }
    match failure {
        None => {
            let issuer = built.get(1)?;
            Some(Learned::Trusted(VerifyKey::from_pkey(issuer.public_key().ok()?)?))
        }
        Some(f) => {
            let code = f.error.as_raw();
            if f.depth == 0 && built.len() >= 2 && ERR_LEAF_ONLY.contains(&code) {
                // Everything above the leaf was checked before the leaf failed its own
                // signature or dates: the chain above is as good as for a leaf that verified.
                let issuer = built.get(1)?;
                return Some(Learned::Trusted(VerifyKey::from_pkey(issuer.public_key().ok()?)?));
            }
            if code == ERR_UNABLE_TO_GET_ISSUER_CERT
                || code == ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
                || code == ERR_SELF_SIGNED_CERT_IN_CHAIN
            {
                Some(Learned::Failed { anchorless: true })
            } else if f.depth >= 1 && built.len() >= 2 && ERR_AFTER_CHAIN_BUILT.contains(&code) {
                Some(Learned::Failed { anchorless: false })
            } else {
                None
            }
        }
    }
}

/// Whether a certificate above the leaf has none of the extensions that make a chain's outcome
/// depend on the leaf (name constraints, policy mappings/constraints, inhibitAnyPolicy, proxy
/// certificate info). `None` if it cannot be read.
fn plain_above_leaf(cert: &X509Ref) -> Option<bool> {
    use x509_parser::prelude::FromDer;
    // Name constraints, policy mappings, policy constraints, inhibitAnyPolicy, proxy
    // certificate info, and the RFC 3779 IP address and AS number blocks (checked after the
    // signatures and dates, so a leaf that fails those never reaches them).
    const LEAF_DEPENDENT: [&str; 7] = [
        "2.5.29.30",
        "2.5.29.33",
        "2.5.29.36",
        "2.5.29.54",
        "1.3.6.1.5.5.7.1.14",
        "1.3.6.1.5.5.7.1.7",
        "1.3.6.1.5.5.7.1.8",
    ];
    let der = cert.to_der().ok()?;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&der).ok()?;
    Some(parsed.extensions().iter().all(|e| !LEAF_DEPENDENT.contains(&e.oid.to_id_string().as_str())))
}

/// The SHA-256 fingerprints of chain elements, to compare two chains.
fn fingerprints(elements: &[ChainElement]) -> Vec<&str> {
    elements.iter().map(|e| e.sha256_fingerprint.as_str()).collect()
}

struct Failure {
    error: X509VerifyResult,
    depth: u32,
    /// Subject and issuer of the certificate concerned.
    at: Option<(String, String)>,
}

/// `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`
const ERR_DEPTH_ZERO_SELF_SIGNED: i32 = 18;

/// How a failure reads for the admin, by kind.
enum FailureKind {
    /// The issuer is nowhere to be found (a missing intermediate).
    MissingIssuer(String),
    /// A certificate with the issuer's name is in the files, but did not sign this one.
    WrongIssuer(String),
    /// Anything else, with the certificate concerned above the leaf.
    Other(String),
}

impl Failure {
    /// The message and its kind. `chain`: the certificates offered with the leaf.
    fn kind(&self, chain: &[X509]) -> FailureKind {
        let message = self.error.error_string();
        let code = self.error.as_raw();
        let missing_issuer =
            code == ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || code == ERR_UNABLE_TO_GET_ISSUER_CERT;
        if missing_issuer && (chain.is_empty() || self.depth == 0) {
            let Some((subject, issuer)) = &self.at else {
                return FailureKind::MissingIssuer(message.to_owned());
            };
            // The files hold a certificate of that name, which OpenSSL did not take for the
            // issuer (another key: its key identifier or signature does not match).
            if chain
                .iter()
                .any(|c| name_text(c.subject_name()) == *issuer && name_text(c.subject_name()) != *subject)
            {
                return FailureKind::WrongIssuer(format!(
                    "{message}: the certificate files hold a certificate named \"{issuer}\", but it is not the one \
                     that signed \"{subject}\" (another key: a wrong, outdated or damaged intermediate?)"
                ));
            }
            return FailureKind::MissingIssuer(format!(
                "{message}: the issuer \"{issuer}\" is neither in the certificate files nor a trusted root (missing intermediate?)"
            ));
        }
        FailureKind::Other(match (&self.at, self.depth) {
            (Some((subject, _)), depth) if depth > 0 => {
                format!("{message} (chain certificate \"{subject}\", depth {depth})")
            }
            _ => message.to_owned(),
        })
    }

    /// `chain-status`.
    fn into_status(self, chain: &[X509]) -> ChainStatus {
        match self.kind(chain) {
            FailureKind::MissingIssuer(m) => ChainStatus::Incomplete(m),
            FailureKind::WrongIssuer(m) | FailureKind::Other(m) => ChainStatus::Untrusted(m),
        }
    }

    /// `path-status` (of a verification that checked no validity period).
    fn into_path(self, chain: &[X509]) -> PathStatus {
        let code = self.error.as_raw();
        // A self-signed leaf or root nobody trusts, or an intermediate whose issuer (a root) is
        // not in the trust store.
        let untrusted = [
            ERR_DEPTH_ZERO_SELF_SIGNED,
            ERR_SELF_SIGNED_CERT_IN_CHAIN,
            ERR_UNABLE_TO_GET_ISSUER_CERT,
            ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        ]
        .contains(&code);
        match self.kind(chain) {
            FailureKind::MissingIssuer(m) => PathStatus::Incomplete(m),
            FailureKind::Other(m) if untrusted => PathStatus::Untrusted(m),
            FailureKind::WrongIssuer(m) | FailureKind::Other(m) => PathStatus::Invalid(m),
        }
    }
}

/// `O=..., CN=...`: the name's entries in the certificate's order (as OpenSSL's messages name
/// certificates; `chain-element.subject` uses RFC 4514 order instead).
fn name_text(name: &X509NameRef) -> String {
    super::certificate::name_entries(name).join(", ")
}

/// Whether the certificate covers `hostname`, by OpenSSL's host check (`X509_check_host` via
/// the verify parameters): subjectAltName DNS names only (never the subject CN), a wildcard only
/// as a whole leftmost label and matching exactly one label. An IP address is matched against
/// the IP SANs. One trailing dot is ignored.
pub fn covers_hostname(cert: &X509Ref, hostname: &str) -> bool {
    let name = hostname.strip_suffix('.').unwrap_or(hostname);
    if name.is_empty() {
        return false;
    }
    host_check(cert, name).unwrap_or(false)
}

/// Runs only the identity check: the certificate is its own trust anchor (partial chain), and
/// time, critical extensions and purpose are not checked, so the result is the host match alone.
fn host_check(cert: &X509Ref, name: &str) -> Result<bool, ErrorStack> {
    let mut builder = X509StoreBuilder::new()?;
    builder.add_cert(cert.to_owned())?;
    let mut param = X509VerifyParam::new()?;
    param.set_flags(
        X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::IGNORE_CRITICAL,
    )?;
    param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS | X509CheckFlags::NEVER_CHECK_SUBJECT);
    match name.parse::<IpAddr>() {
        Ok(ip) => param.set_ip(ip)?,
        Err(_) => param.set_host(name)?,
    }
    builder.set_param(&param)?;
    let store = builder.build();
    let empty = Stack::new()?;
    let mut context = X509StoreContext::new()?;
    context.init(&store, cert, &empty, |ctx| ctx.verify_cert())
}

/// The system's hashed certificate directories: `$SSL_CERT_DIR` (colon-separated), else
/// OpenSSL's `OPENSSLDIR/certs`; only those that exist.
fn system_hash_dirs() -> Vec<String> {
    let dirs: Vec<String> = match std::env::var("SSL_CERT_DIR") {
        Ok(list) if !list.is_empty() => {
            list.split(':').filter(|d| !d.is_empty()).map(str::to_owned).collect()
        }
        _ => openssl_dir().map(|d| vec![format!("{d}/certs")]).unwrap_or_default(),
    };
    dirs.into_iter().filter(|d| Path::new(d).is_dir()).collect()
}

/// `OPENSSLDIR`, from `OPENSSLDIR: "/usr/lib/ssl"`.
fn openssl_dir() -> Option<String> {
    let text = openssl::version::dir();
    let start = text.find('"')? + 1;
    let end = text.rfind('"')?;
    (end > start).then(|| text[start..end].to_owned())
}

fn load_extra_roots(path: &Path) -> Result<Vec<X509>, FactsError> {
    let error = |reason: String| FactsError::ExtraRoots { path: path.to_owned(), reason };
    let bytes = read_bounded(path, MAX_TRUST_FILE_SIZE).map_err(|e| match e {
        ReadError::Missing(_) => error("no such file".to_owned()),
        ReadError::Unreadable(message) => error(strip_path(&message, path)),
    })?;
    let blocks = pem::scan(&bytes).map_err(|e| error(e.to_string()))?;
    let roots = chain_from_blocks(&blocks, &|der| X509::from_der(der)).map_err(error)?;
    if roots.is_empty() {
        return Err(error("holds no certificate".to_owned()));
    }
    Ok(roots)
}

/// A read error's message without its leading `PATH: `.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}
