//! Facts: what the host finds on disk about itself and every service's certificate, in the
//! contract's terms ([`model`]).
//!
//! [`gather`] never fails as a whole: a missing, unreadable or malformed file, a key that does
//! not match, a chain that does not verify — each becomes a fact about its service. Files are
//! read bounded and non-blocking ([`read`]), PEM is scanned with precise messages ([`pem`]),
//! certificates and keys are decoded and compared with OpenSSL ([`certificate`], [`key`]), and
//! chains are verified by a shared [`Verifier`] ([`verify`]). Services are checked in parallel
//! on every core (rayon) and reported in configuration order.
//!
//! Most certificates take a fast path ([`fast`]): their facts are read from the DER without
//! OpenSSL's slow generic decoders, the key is matched against the public key found there, and the
//! chain is verified once per distinct chain ([`Verifier::verify_fast`]). Anything outside the
//! fast path's profile takes the full OpenSSL path, which gives the same facts
//! ([`gather_service_full`] is kept as the reference for the tests).

pub mod ari;
pub mod caa;
pub mod certificate;
mod der;
pub mod dns;
pub mod errors;
mod fast;
#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod fuzz_tests;
mod hostmatch;
pub mod key;
pub mod local_crl;
#[cfg(test)]
mod local_crl_tests;
pub mod memo;
pub mod model;
pub mod network;
pub mod pem;
pub mod read;
pub mod revocation;
pub mod verify;

#[cfg(test)]
pub(crate) mod testpki;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::config::names::is_dns_name;
use crate::config::{Config, ServiceConfig};
use fast::{FastLeaf, LazyLeaf};
use memo::Memo;
use model::{CaaStatus, CertificateState, DnsStatus, HostFacts, KeyStatus, ServiceFacts, Timestamp};
use pem::PemBlock;
use read::ReadError;

pub use certificate::{ParsedCertificate, certificate_facts, parse_certificate, public_key_facts};
pub use errors::FactsError;
pub use key::{key_matches, parse_private_key};
pub use read::{MAX_PEM_FILE_SIZE, read_bounded};
pub use verify::{ChainFacts, Verifier, covers_hostname};

/// The switch file in the state directory that forbids ordering a hostname certificate.
pub const DISABLE_AUTO_HOSTNAME_CERTIFICATE: &str = "disable_auto_hostname_certificate";

/// The switch file in the state directory that stops automatic replacement of service
/// certificates and the notifications about expiring ones.
pub const DISABLE_SERVICE_CERTIFICATE_MANAGEMENT: &str = "disable_service_certificate_management";

/// How to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsOptions {
    /// The current time (Unix seconds): `host-facts.now`, and the time chains are verified at.
    pub now: Timestamp,
    /// The verification memo in the state directory ([`memo`]).
    pub memo: MemoUse,
}

impl FactsOptions {
    /// Gathering at `now` without the verification memo (every check done).
    pub fn at(now: Timestamp) -> FactsOptions {
        FactsOptions { now, memo: MemoUse::Off }
    }
}

/// What a gathering does with the verification memo (`<state-dir>/cache/verified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoUse {
    /// Neither reads nor writes it.
    Off,
    /// Reads it (a dry run, `policy facts`).
    Read,
    /// Reads it and writes what this run used and proved (a real run).
    ReadWrite,
}

/// The facts, and messages for the admin about the gathering itself (e.g. the extra roots could
/// not be loaded, so no chain was verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The facts for the policy.
    pub facts: HostFacts,
    /// Warnings for the admin that are not facts about one service.
    pub notices: Vec<String>,
    /// What went wrong with the verification memo, if anything (the facts are the same).
    pub memo_problems: Vec<memo::MemoProblem>,
    /// SHA-256 fingerprints (hex) of service certificates known to name no OCSP responder, CRL
    /// distribution point or authority key identifier: the network step
    /// ([`network::enrich_with`]) has nothing to ask about them and need not read them again.
    pub network_free: HashSet<String>,
}

/// Gathers the host's facts at time `now`. See [`gather_with`].
pub fn gather(config: &Config, now: Timestamp) -> HostFacts {
    gather_with(config, &FactsOptions::at(now)).facts
}

/// Gathers the host's facts. DNS, CAA, ACME, revocation, renewal windows and live endpoints
/// are left `NotChecked`/empty for the steps that check them. If the trust store cannot be
/// loaded (e.g. an extra-roots file is missing), chains are `NotChecked` and a notice says why.
/// With [`MemoUse::Read`] or [`MemoUse::ReadWrite`], checks the memo knows of are spared (the
/// facts are the same); with `ReadWrite`, the memo is then saved.
pub fn gather_with(config: &Config, options: &FactsOptions) -> Gathered {
    let verifier = Verifier::new(&config.trust).unwrap_or_else(|e| Verifier::not_checking(&e.to_string()));
    let memo_path = Memo::path_in(&config.state_dir);
    let mut memo_problems = Vec::new();
    let verifier = match options.memo {
        MemoUse::Off => verifier,
        MemoUse::Read | MemoUse::ReadWrite => {
            let (memo, problem) = Memo::load(&memo_path);
            memo_problems.extend(problem);
            verifier.with_memo(memo)
        }
    };
    let mut gathered = gather_using(config, &verifier, options);
    if options.memo == MemoUse::ReadWrite
        && let Err(e) = verifier.memo().save(&memo_path)
    {
        memo_problems.push(memo::MemoProblem::NotSaved(e.to_string()));
    }
    gathered.memo_problems = memo_problems;
    gathered
}

/// Like [`gather_with`], with a verifier built by the caller (to share it with other steps, e.g.
/// the live probes that verify served chains).
pub fn gather_using(config: &Config, verifier: &Verifier, options: &FactsOptions) -> Gathered {
    let now = options.now;
    let notices = verifier.notices().to_vec();
    let (disable_auto_hostname_certificate, disable_service_certificate_management) =
        read_disable_flags(&config.state_dir);
    let gathered: Vec<(ServiceFacts, bool)> = config
        .services
        .par_iter()
        .map(|svc| gather_one(svc, &config.hostname, verifier, now, true))
        .collect();
    let network_free = gathered
        .iter()
        .filter(|(_, network_free)| *network_free)
        .filter_map(|(facts, _)| facts.certificate.certificate().map(|c| c.sha256_fingerprint.clone()))
        .collect();
    let services: Vec<ServiceFacts> = gathered.into_iter().map(|(facts, _)| facts).collect();
    Gathered {
        facts: HostFacts {
            now,
            hostname: config.hostname.clone(),
            hostname_is_fqdn: hostname_is_fqdn(&config.hostname),
            hostname_dns: DnsStatus::NotChecked,
            caa: CaaStatus::NotChecked,
            disable_auto_hostname_certificate,
            disable_service_certificate_management,
            acme: None,
            groups: Vec::new(),
            params: config.policy.params.clone(),
            services,
        },
        notices,
        memo_problems: Vec::new(),
        network_free,
    }
}

/// The facts about one service's files: the certificate (leaf first, then the chain, plus the
/// `chain` file), its chain verified at `now`, the key compared, the hostname checked.
pub fn gather_service(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
) -> ServiceFacts {
    gather_one(svc, hostname, verifier, now, true).0
}

/// [`gather_service`] on the full OpenSSL path only: the reference the fast path is tested
/// against.
#[cfg(test)]
pub(crate) fn gather_service_full(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
) -> ServiceFacts {
    gather_one(svc, hostname, verifier, now, false).0
}

/// One service's facts, and whether its certificate is known to need nothing from the network
/// step (see [`Gathered::network_free`]). `try_fast`: try the fast path first.
/// [`gather_one_inner`] with this thread's OpenSSL error queue empty before and after: an error
/// one certificate left on it (rayon's threads are shared) must not reword the next one's
/// message, nor differ between the fast and the OpenSSL path.
fn gather_one(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
    try_fast: bool,
) -> (ServiceFacts, bool) {
    drop(openssl::error::ErrorStack::get());
    let gathered = gather_one_inner(svc, hostname, verifier, now, try_fast);
    drop(openssl::error::ErrorStack::get());
    gathered
}

fn gather_one_inner(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
    try_fast: bool,
) -> (ServiceFacts, bool) {
    let unusable = |certificate: CertificateState| unusable_facts(svc, certificate);
    let shown = svc.certificate.display();
    let bytes = match read_bounded(&svc.certificate, MAX_PEM_FILE_SIZE) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing(m)) => return (unusable(CertificateState::Missing(m)), false),
        Err(ReadError::Unreadable(m)) => return (unusable(CertificateState::Unreadable(m)), false),
    };
    let blocks = match pem::scan(&bytes) {
        Ok(blocks) => blocks,
        Err(e) => return (unusable(CertificateState::Malformed(format!("{shown}: {e}"))), false),
    };
    if try_fast && let Some(found) = gather_fast(svc, hostname, verifier, now, &bytes, &blocks) {
        return found;
    }
    (gather_full(svc, hostname, verifier, now, &blocks), false)
}

/// The fast path (see [`fast`]); `None` when the certificate is outside its profile, or anything
/// needs the full path (which then also words any error).
fn gather_fast(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
    bytes: &[u8],
    blocks: &[PemBlock],
) -> Option<(ServiceFacts, bool)> {
    let shown = svc.certificate.display();
    let memo = verifier.memo();
    let mut certs = blocks.iter().filter(|b| b.is_certificate());
    let first = certs.next()?;
    let leaf = FastLeaf::parse(&first.der)?;
    let decoded = LazyLeaf::new(&first.der);
    let mut chain = Vec::new();
    let mut digests = Vec::new();
    for block in certs {
        let (cert, digest) = verifier.intermediate_with_digest(&block.der).ok()?;
        chain.push(cert);
        digests.push(digest);
    }
    let chain_file_problem = match &svc.chain {
        Some(path) => match read_chain_file(path, verifier) {
            Ok(certs) => {
                for (cert, digest) in certs {
                    chain.push(cert);
                    digests.push(digest);
                }
                None
            }
            Err(problem) => Some(problem),
        },
        None => None,
    };
    let mut facts = leaf.facts(leaf.self_signed(memo)?)?;
    set_chain(
        &mut facts,
        match chain_file_problem {
            Some(problem) => ChainFacts::incomplete(problem),
            None => verifier.verify_fast(&leaf, &decoded, &chain, &digests, now)?,
        },
    );
    let matcher = |blocks: &[PemBlock]| key::match_key_blocks_fast(blocks, &leaf.key, &decoded);
    let key = if svc.check_only {
        // Its key lives elsewhere.
        KeyStatus::NotChecked
    } else if svc.key_file() == svc.certificate.as_path() {
        key_status_memo(memo, &leaf.digest, bytes, || {
            Some(matcher(blocks)?.unwrap_or_else(|e| KeyStatus::Malformed(format!("{shown}: {e}"))))
        })?
    } else {
        key_status_with(svc.key_file(), Some((memo, &leaf.digest)), matcher)?
    };
    let covers_hostname = match leaf.covers_hostname(hostname) {
        Some(covers) => covers,
        None => covers_hostname(decoded.get()?, hostname),
    };
    let facts = ServiceFacts {
        name: svc.name.clone(),
        covers_hostname,
        certificate: CertificateState::Ok(Box::new(facts)),
        key,
        served: Vec::new(),
        group: group_of(svc),
        check_only: svc.check_only,
    };
    Some((facts, !leaf.may_ask_network))
}

/// The facts of a service whose certificate cannot be used at all (its key is not looked at).
fn unusable_facts(svc: &ServiceConfig, certificate: CertificateState) -> ServiceFacts {
    ServiceFacts {
        name: svc.name.clone(),
        certificate,
        key: KeyStatus::NotChecked,
        covers_hostname: false,
        served: Vec::new(),
        group: group_of(svc),
        check_only: svc.check_only,
    }
}

/// `service-facts.group`: none for a check-only service.
fn group_of(svc: &ServiceConfig) -> Option<String> {
    (!svc.check_only).then(|| svc.certificate_group.clone())
}

/// Puts what chain verification found into the certificate's facts.
fn set_chain(facts: &mut model::Certificate, found: ChainFacts) {
    facts.chain_status = found.status;
    facts.path = found.path;
    facts.chain = found.chain;
}

/// The full OpenSSL path, from the certificate file's blocks.
fn gather_full(
    svc: &ServiceConfig,
    hostname: &str,
    verifier: &Verifier,
    now: Timestamp,
    blocks: &[PemBlock],
) -> ServiceFacts {
    let unusable = |certificate: CertificateState| unusable_facts(svc, certificate);
    let shown = svc.certificate.display();
    let parse_chain = |der: &[u8]| verifier.intermediate(der);
    let parsed = match certificate::certificates_from_blocks(blocks, &parse_chain) {
        Ok(parsed) => parsed,
        Err(e) => return unusable(CertificateState::Malformed(format!("{shown}: {e}"))),
    };

    let mut chain = parsed.chain;
    let chain_file_problem = match &svc.chain {
        Some(path) => match read_chain_file(path, verifier) {
            Ok(certs) => {
                chain.extend(certs.into_iter().map(|(cert, _)| cert));
                None
            }
            Err(problem) => Some(problem),
        },
        None => None,
    };
    let mut facts = parsed.facts;
    set_chain(
        &mut facts,
        match chain_file_problem {
            Some(problem) => ChainFacts::incomplete(problem),
            None => {
                let digests: Vec<[u8; 32]> = chain
                    .iter()
                    .filter_map(|c| c.to_der().ok())
                    .map(|der| openssl::sha::sha256(&der))
                    .collect();
                verifier.verify_facts(&parsed.leaf, &chain, &digests, now)
            }
        },
    );

    let key = if svc.check_only {
        KeyStatus::NotChecked
    } else if svc.key_file() == svc.certificate.as_path() {
        key::match_key_blocks(blocks, &parsed.leaf)
            .unwrap_or_else(|e| KeyStatus::Malformed(format!("{shown}: {e}")))
    } else {
        key_status(svc.key_file(), &parsed.leaf)
    };

    ServiceFacts {
        name: svc.name.clone(),
        covers_hostname: covers_hostname(&parsed.leaf, hostname),
        certificate: CertificateState::Ok(Box::new(facts)),
        key,
        served: Vec::new(),
        group: group_of(svc),
        check_only: svc.check_only,
    }
}

/// The intermediates in a separate chain file (an empty file is no intermediates), each with the
/// SHA-256 of its DER. The error is a message for `ChainStatus::Incomplete`.
fn read_chain_file(path: &Path, verifier: &Verifier) -> Result<Vec<(openssl::x509::X509, [u8; 32])>, String> {
    let shown = path.display();
    let bytes = read_bounded(path, MAX_PEM_FILE_SIZE).map_err(|e| match e {
        ReadError::Missing(m) => format!("the chain file {m} does not exist"),
        ReadError::Unreadable(m) => format!("the chain file {m}"),
    })?;
    let blocks = match pem::scan(&bytes) {
        Ok(blocks) => blocks,
        Err(pem::PemError::Empty) => return Ok(Vec::new()),
        Err(e) => return Err(format!("the chain file {shown}: {e}")),
    };
    let certs = certificate::chain_from_blocks(&blocks, &|der| verifier.intermediate(der))
        .map_err(|e| format!("the chain file {shown}: {e}"))?;
    let digests = blocks.iter().filter(|b| b.is_certificate()).map(|b| openssl::sha::sha256(&b.der));
    Ok(certs.into_iter().zip(digests).collect())
}

/// Reads the key file and compares it with the certificate.
fn key_status(path: &Path, leaf: &openssl::x509::X509Ref) -> KeyStatus {
    // The matcher always answers, so `None` does not happen.
    key_status_with(path, None, |blocks| Some(key::match_key_blocks(blocks, leaf)))
        .unwrap_or(KeyStatus::NotChecked)
}

/// Reads the key file and compares its blocks with `matcher` (`None` from the matcher is passed
/// on: the fast path gives up).
fn key_status_with(
    path: &Path,
    memo: Option<(&Memo, &[u8; 32])>,
    matcher: impl FnOnce(&[PemBlock]) -> Option<Result<KeyStatus, String>>,
) -> Option<KeyStatus> {
    let shown = path.display();
    let bytes = match read_bounded(path, MAX_PEM_FILE_SIZE) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing(m)) => return Some(KeyStatus::Missing(m)),
        Err(ReadError::Unreadable(m)) => return Some(KeyStatus::Unreadable(m)),
    };
    let status = || {
        let blocks = match pem::scan(&bytes) {
            Ok(blocks) => blocks,
            Err(e) => return Some(KeyStatus::Malformed(format!("{shown}: {e}"))),
        };
        Some(matcher(&blocks)?.unwrap_or_else(|e| KeyStatus::Malformed(format!("{shown}: {e}"))))
    };
    match memo {
        Some((memo, cert_digest)) => key_status_memo(memo, cert_digest, &bytes, status),
        None => status(),
    }
}

/// The key status of the key file `key_bytes` for the certificate `cert_digest`: `Matches` if
/// the memo knows it, else what `status` finds (a match is kept in the memo).
fn key_status_memo(
    memo: &Memo,
    cert_digest: &[u8; 32],
    key_bytes: &[u8],
    status: impl FnOnce() -> Option<KeyStatus>,
) -> Option<KeyStatus> {
    let file_digest = openssl::sha::sha256(key_bytes);
    if memo.key_match_known(cert_digest, &file_digest) {
        return Some(KeyStatus::Matches);
    }
    let status = status()?;
    if status == KeyStatus::Matches {
        memo.key_match_proved(cert_digest, &file_digest);
    }
    Some(status)
}

/// Whether the switch files exist in the state directory: (`disable_auto_hostname_certificate`,
/// `disable_service_certificate_management`). Any directory entry counts (as `touch` makes);
/// if the directory cannot be searched (permissions), the switch counts as set, the cautious
/// reading.
pub fn read_disable_flags(state_dir: &Path) -> (bool, bool) {
    let present = |name: &str| match std::fs::symlink_metadata(state_dir.join(name)) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory),
    };
    (present(DISABLE_AUTO_HOSTNAME_CERTIFICATE), present(DISABLE_SERVICE_CERTIFICATE_MANAGEMENT))
}

/// Names under which no public CA issues a certificate: special-use names (RFC 6761, 6762,
/// 7686, 8375, 9476), ICANN's private-use `.internal`, and the common `.localdomain`.
const NON_PUBLIC_SUFFIXES: [&str; 10] = [
    "localhost",
    "local",
    "invalid",
    "test",
    "example",
    "onion",
    "alt",
    "home.arpa",
    "internal",
    "localdomain",
];

/// Whether `hostname` is a fully qualified domain name a public CA could issue for: at least two
/// valid LDH labels (one trailing dot allowed), a non-numeric top-level label, and not
/// `localhost` or under a special-use or private-use suffix.
pub fn hostname_is_fqdn(hostname: &str) -> bool {
    let name = hostname.strip_suffix('.').unwrap_or(hostname).to_ascii_lowercase();
    if !is_dns_name(&name) {
        return false;
    }
    let Some((_, tld)) = name.rsplit_once('.') else {
        return false;
    };
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    !NON_PUBLIC_SUFFIXES
        .iter()
        .any(|suffix| name == *suffix || name.strip_suffix(suffix).is_some_and(|rest| rest.ends_with('.')))
}
