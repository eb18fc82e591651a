//! The facts the host hands to a policy, as the host models them.
//!
//! These types mirror the newest released contract (`wit/since_v0.2.0/policy.wit`); see that file
//! for the meaning of every field. They are the JSON format of `policy eval --facts` and of the
//! v0.2.0 conformance vectors (kebab-case names, variants as `"name"` or `{"name": payload}`), and
//! they stay independent of any one WIT version: `policy::contract` converts them into each
//! version's generated bindings (older versions drop what they do not know).

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// See `dns-status` in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DnsStatus {
    PointsToMainIp,
    PointsElsewhere,
    DoesNotResolve,
    #[default]
    NotChecked,
}

/// See `caa-status` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CaaStatus {
    Allows,
    Forbids(String),
    #[default]
    NotChecked,
}

/// See `key-kind` in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    Rsa,
    Ec,
    Ed25519,
    Ed448,
    Dsa,
    Other,
}

/// See `public-key` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PublicKey {
    pub kind: KeyKind,
    pub bits: u32,
    #[serde(default)]
    pub curve: Option<String>,
}

impl Default for PublicKey {
    fn default() -> Self {
        PublicKey { kind: KeyKind::Ec, bits: 256, curve: Some("prime256v1".into()) }
    }
}

/// See `chain-status` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ChainStatus {
    Trusted,
    Untrusted(String),
    Incomplete(String),
    #[default]
    NotChecked,
}

/// See `path-status` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PathStatus {
    Valid,
    Incomplete(String),
    Untrusted(String),
    Invalid(String),
    #[default]
    NotChecked,
}

impl PathStatus {
    /// The path verdict a chain status implies when it is the whole story: a trusted chain is a
    /// valid path; a chain not checked is a path not checked.
    pub fn from_trusted(status: &ChainStatus) -> Option<PathStatus> {
        match status {
            ChainStatus::Trusted => Some(PathStatus::Valid),
            ChainStatus::NotChecked => Some(PathStatus::NotChecked),
            _ => None,
        }
    }
}

/// See `chain-source` in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ChainSource {
    #[default]
    File,
    TrustStore,
}

/// See `chain-element` in the contract. Omitted fields in JSON take the defaults (an EC P-256,
/// SHA-256-signed CA certificate from the files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ChainElement {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub sha256_fingerprint: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub public_key: PublicKey,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub self_signed: bool,
    pub source: ChainSource,
}

impl Default for ChainElement {
    fn default() -> Self {
        ChainElement {
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            sha256_fingerprint: String::new(),
            not_before: Timestamp::MIN,
            not_after: Timestamp::MAX,
            public_key: PublicKey::default(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            is_ca: true,
            self_signed: false,
            source: ChainSource::File,
        }
    }
}

/// See `revoked-details` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RevokedDetails {
    pub revoked_at: Timestamp,
    pub reason: String,
}

/// See `revocation` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Revocation {
    Good,
    Revoked(RevokedDetails),
    Unknown(String),
    #[default]
    NotChecked,
}

/// See `renewal-window` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RenewalWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    pub explanation_url: Option<String>,
}

/// See `certificate` in the contract. Omitted fields in JSON take the defaults of
/// [`Certificate::default`] (an EC P-256, SHA-256-signed certificate with nothing checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Certificate {
    pub subject_cn: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub issuer_cn: Option<String>,
    pub issuer_org: Option<String>,
    pub serial: String,
    pub sha256_fingerprint: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub public_key: PublicKey,
    pub signature_algorithm: String,
    pub self_signed: bool,
    pub chain_status: ChainStatus,
    pub path: PathStatus,
    /// Shared between the certificates under the same chain (10,000 leaves under one
    /// intermediate hold one copy).
    pub chain: std::sync::Arc<[ChainElement]>,
    pub revocation: Revocation,
    pub renewal_window: Option<RenewalWindow>,
}

impl Default for Certificate {
    fn default() -> Self {
        Certificate {
            subject_cn: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            issuer_cn: None,
            issuer_org: None,
            serial: String::new(),
            sha256_fingerprint: String::new(),
            not_before: 0,
            not_after: 0,
            public_key: PublicKey::default(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            self_signed: false,
            chain_status: ChainStatus::NotChecked,
            path: PathStatus::NotChecked,
            chain: Default::default(),
            revocation: Revocation::NotChecked,
            renewal_window: None,
        }
    }
}

/// See `certificate-state` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateState {
    Ok(Box<Certificate>),
    Missing(String),
    Unreadable(String),
    Malformed(String),
}

impl CertificateState {
    /// The parsed certificate, if there is one.
    pub fn certificate(&self) -> Option<&Certificate> {
        match self {
            CertificateState::Ok(c) => Some(c),
            _ => None,
        }
    }
}

/// See `key-status` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    Matches,
    Mismatch,
    Missing(String),
    Unreadable(String),
    Malformed(String),
    NotChecked,
}

/// See `served-endpoint` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServedEndpoint {
    pub endpoint: String,
    #[serde(default)]
    pub sha256_fingerprint: Option<String>,
    pub matches_installed: bool,
    #[serde(default)]
    pub chain_status: ChainStatus,
    #[serde(default)]
    pub error: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_key() -> KeyStatus {
    KeyStatus::Matches
}

fn default_group() -> Option<String> {
    Some(HOSTNAME_GROUP.to_string())
}

/// The name of the certificate group of the server's hostname, which every configuration has.
pub const HOSTNAME_GROUP: &str = "hostname";

/// See `service-facts` in the contract. In JSON, `key` defaults to `"matches"`,
/// `covers-hostname` to `true` and `group` to `"hostname"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceFacts {
    pub name: String,
    pub certificate: CertificateState,
    #[serde(default = "default_key")]
    pub key: KeyStatus,
    #[serde(default = "default_true")]
    pub covers_hostname: bool,
    #[serde(default)]
    pub served: Vec<ServedEndpoint>,
    #[serde(default = "default_group")]
    pub group: Option<String>,
    #[serde(default)]
    pub check_only: bool,
}

/// See `pending-order` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingOrder {
    pub url: String,
    pub created: Timestamp,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub status: String,
}

/// See `acme-facts` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AcmeFacts {
    pub directory_url: String,
}

/// See `group-facts` in the contract. In JSON, `orderable` defaults to `true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GroupFacts {
    pub name: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default = "default_true")]
    pub orderable: bool,
    #[serde(default)]
    pub pending_order: Option<PendingOrder>,
    #[serde(default)]
    pub next_order_not_before: Option<Timestamp>,
}

/// See `host-facts` in the contract. In JSON, `hostname-is-fqdn` defaults to `true`, and without
/// `groups` the facts have the one "hostname" group of today's default configuration (see
/// [`HostFacts::complete_groups`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HostFacts {
    pub now: Timestamp,
    pub hostname: String,
    #[serde(default = "default_true")]
    pub hostname_is_fqdn: bool,
    #[serde(default)]
    pub hostname_dns: DnsStatus,
    #[serde(default)]
    pub caa: CaaStatus,
    #[serde(default)]
    pub disable_auto_hostname_certificate: bool,
    #[serde(default)]
    pub disable_service_certificate_management: bool,
    #[serde(default)]
    pub acme: Option<AcmeFacts>,
    #[serde(default)]
    pub groups: Vec<GroupFacts>,
    #[serde(default)]
    pub params: Vec<(String, String)>,
    #[serde(default)]
    pub services: Vec<ServiceFacts>,
}

impl HostFacts {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupFacts> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The "hostname" group, when the facts have it.
    pub fn hostname_group(&self) -> Option<&GroupFacts> {
        self.group(HOSTNAME_GROUP)
    }

    /// Facts written by hand (conformance vectors, `policy eval --facts`) may leave the groups
    /// out: then there is the "hostname" group alone, for the hostname, as a configuration
    /// without `[[certificate]]` has.
    pub fn complete_groups(&mut self) {
        if self.hostname_group().is_none() {
            self.groups.insert(
                0,
                GroupFacts {
                    name: HOSTNAME_GROUP.to_string(),
                    names: vec![self.hostname.to_ascii_lowercase()],
                    orderable: self.hostname_is_fqdn,
                    pending_order: None,
                    next_order_not_before: None,
                },
            );
        }
    }
}
