//! Facts: what the host finds on disk about itself and every service's certificate, in the
//! contract's terms ([`model`]).
//!
//! [`gather`] never fails as a whole: a missing, unreadable or malformed file, a key that does
//! not match, a chain that does not verify — each becomes a fact about its service. Files are
//! read bounded and non-blocking ([`read`]), PEM is scanned with precise messages ([`pem`]),
//! certificates and keys are decoded and compared with OpenSSL ([`certificate`], [`key`]), and
//! chains are verified by a shared [`Verifier`] ([`verify`]). Services are checked in parallel
//! on every core (rayon) and reported in configuration order.

pub mod ari;
pub mod caa;
pub mod certificate;
mod der;
pub mod dns;
pub mod errors;
pub mod key;
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

use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::config::names::is_dns_name;
use crate::config::{Config, ServiceConfig};
use model::{CaaStatus, CertificateState, DnsStatus, HostFacts, KeyStatus, ServiceFacts, Timestamp};
use read::ReadError;

pub use certificate::{ParsedCertificate, certificate_facts, parse_certificate, public_key_facts};
pub use errors::FactsError;
pub use key::{key_matches, parse_private_key};
pub use read::{MAX_PEM_FILE_SIZE, read_bounded};
pub use verify::{Verifier, covers_hostname};

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
}

/// The facts, and messages for the admin about the gathering itself (e.g. the extra roots could
/// not be loaded, so no chain was verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The facts for the policy.
    pub facts: HostFacts,
    /// Warnings for the admin that are not facts about one service.
    pub notices: Vec<String>,
}

/// Gathers the host's facts at time `now`. See [`gather_with`].
pub fn gather(config: &Config, now: Timestamp) -> HostFacts {
    gather_with(config, &FactsOptions { now }).facts
}

/// Gathers the host's facts. DNS, CAA, ACME, revocation, renewal windows and live endpoints
/// are left `NotChecked`/empty for the steps that check them. If the trust store cannot be
/// loaded (e.g. an extra-roots file is missing), chains are `NotChecked` and a notice says why.
pub fn gather_with(config: &Config, options: &FactsOptions) -> Gathered {
    let verifier = Verifier::new(&config.trust).unwrap_or_else(|e| Verifier::not_checking(&e.to_string()));
    gather_using(config, &verifier, options)
}

/// Like [`gather_with`], with a verifier built by the caller (to share it with other steps, e.g.
/// the live probes that verify served chains).
pub fn gather_using(config: &Config, verifier: &Verifier, options: &FactsOptions) -> Gathered {
    let now = options.now;
    let notices = verifier.notices().to_vec();
    let (disable_auto_hostname_certificate, disable_service_certificate_management) =
        read_disable_flags(&config.state_dir);
    let services: Vec<ServiceFacts> =
        config.services.par_iter().map(|svc| gather_service(svc, &config.hostname, verifier, now)).collect();
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
            params: config.policy.params.clone(),
            services,
        },
        notices,
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
    let unusable = |certificate: CertificateState| ServiceFacts {
        name: svc.name.clone(),
        certificate,
        key: KeyStatus::NotChecked,
        covers_hostname: false,
        served: Vec::new(),
    };
    let shown = svc.certificate.display();
    let bytes = match read_bounded(&svc.certificate, MAX_PEM_FILE_SIZE) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing(m)) => return unusable(CertificateState::Missing(m)),
        Err(ReadError::Unreadable(m)) => return unusable(CertificateState::Unreadable(m)),
    };
    let blocks = match pem::scan(&bytes) {
        Ok(blocks) => blocks,
        Err(e) => return unusable(CertificateState::Malformed(format!("{shown}: {e}"))),
    };
    let parse_chain = |der: &[u8]| verifier.intermediate(der);
    let parsed = match certificate::certificates_from_blocks(&blocks, &parse_chain) {
        Ok(parsed) => parsed,
        Err(e) => return unusable(CertificateState::Malformed(format!("{shown}: {e}"))),
    };

    let mut chain = parsed.chain;
    let chain_file_problem = match &svc.chain {
        Some(path) => match read_chain_file(path, verifier) {
            Ok(certs) => {
                chain.extend(certs);
                None
            }
            Err(problem) => Some(problem),
        },
        None => None,
    };
    let mut facts = parsed.facts;
    facts.chain = match chain_file_problem {
        Some(problem) => model::ChainStatus::Incomplete(problem),
        None => verifier.verify(&parsed.leaf, &chain, now),
    };

    let key = if svc.key_file() == svc.certificate.as_path() {
        key::match_key_blocks(&blocks, &parsed.leaf)
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
    }
}

/// The intermediates in a separate chain file (an empty file is no intermediates). The error
/// is a message for `ChainStatus::Incomplete`.
fn read_chain_file(path: &Path, verifier: &Verifier) -> Result<Vec<openssl::x509::X509>, String> {
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
    certificate::chain_from_blocks(&blocks, &|der| verifier.intermediate(der))
        .map_err(|e| format!("the chain file {shown}: {e}"))
}

/// Reads the key file and compares it with the certificate.
fn key_status(path: &Path, leaf: &openssl::x509::X509Ref) -> KeyStatus {
    let shown = path.display();
    let bytes = match read_bounded(path, MAX_PEM_FILE_SIZE) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing(m)) => return KeyStatus::Missing(m),
        Err(ReadError::Unreadable(m)) => return KeyStatus::Unreadable(m),
    };
    let blocks = match pem::scan(&bytes) {
        Ok(blocks) => blocks,
        Err(e) => return KeyStatus::Malformed(format!("{shown}: {e}")),
    };
    key::match_key_blocks(&blocks, leaf).unwrap_or_else(|e| KeyStatus::Malformed(format!("{shown}: {e}")))
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
