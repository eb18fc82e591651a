//! Contract `checkallsslcerts:policy@0.2.0` (`wit/since_v0.2.0/`), the latest, frozen.
//!
//! The generated bindings, and the conversions between them and the host's own model
//! (`facts::model`, `plan::model`), which mirrors this version field for field. When a newer
//! contract is released, this file stays as it is apart from the conversions, which then map the
//! newer model onto this version (as `since_v0_1_0` does for 0.1.0).

use std::collections::HashMap;

use bumpalo::Bump;
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::{HostState, Outcome};
use crate::facts::model as f;
use crate::plan::model as p;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "policy",
    ownership: Borrowing { duplicate_if_necessary: true },
});

use checkallsslcerts::policy::types as w;

/// The version string of this contract.
pub const VERSION: &str = "0.2.0";

/// The imports a module built against this contract may have.
pub const ALLOWED_IMPORTS: &[&str] =
    &["checkallsslcerts:policy/types@0.2.0", "checkallsslcerts:policy/host@0.2.0"];

/// The export that marks a policy of this contract.
pub const RULES_EXPORT: &str = "checkallsslcerts:policy/rules@0.2.0";

impl checkallsslcerts::policy::types::Host for HostState {}

impl checkallsslcerts::policy::host::Host for HostState {
    fn log(&mut self, level: w::Level, message: String) {
        self.log(level.into(), message);
    }
}

/// A linker offering this contract's imports.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    Policy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// Calls `metadata`.
pub fn metadata(store: &mut Store<HostState>, pre: &InstancePre<HostState>) -> Outcome<p::Metadata> {
    let policy = PolicyPre::new(pre.clone())
        .and_then(|pre| pre.instantiate(&mut *store))
        .map_err(super::Failure::Instantiate)?;
    let metadata =
        policy.checkallsslcerts_policy_rules().call_metadata(&mut *store).map_err(super::Failure::Call)?;
    Ok(metadata.into())
}

/// Calls `evaluate`.
pub fn evaluate(
    store: &mut Store<HostState>,
    pre: &InstancePre<HostState>,
    facts: &f::HostFacts,
) -> Outcome<Result<p::Plan, String>> {
    let policy = PolicyPre::new(pre.clone())
        .and_then(|pre| pre.instantiate(&mut *store))
        .map_err(super::Failure::Instantiate)?;
    let arena = Bump::new();
    let facts = Lower { arena: &arena, chains: HashMap::new() }.host(facts);
    let answer = policy
        .checkallsslcerts_policy_rules()
        .call_evaluate(&mut *store, facts)
        .map_err(super::Failure::Call)?;
    Ok(answer.map(p::Plan::from))
}

// ---- model → contract (facts) ----

impl From<f::DnsStatus> for w::DnsStatus {
    fn from(v: f::DnsStatus) -> Self {
        match v {
            f::DnsStatus::PointsToMainIp => w::DnsStatus::PointsToMainIp,
            f::DnsStatus::PointsElsewhere => w::DnsStatus::PointsElsewhere,
            f::DnsStatus::DoesNotResolve => w::DnsStatus::DoesNotResolve,
            f::DnsStatus::NotChecked => w::DnsStatus::NotChecked,
        }
    }
}

impl From<f::KeyKind> for w::KeyKind {
    fn from(v: f::KeyKind) -> Self {
        match v {
            f::KeyKind::Rsa => w::KeyKind::Rsa,
            f::KeyKind::Ec => w::KeyKind::Ec,
            f::KeyKind::Ed25519 => w::KeyKind::Ed25519,
            f::KeyKind::Ed448 => w::KeyKind::Ed448,
            f::KeyKind::Dsa => w::KeyKind::Dsa,
            f::KeyKind::Other => w::KeyKind::Other,
        }
    }
}

/// The facts as the contract's parameter types, borrowed (`bindgen!`'s `Borrowing` ownership): the
/// strings are the model's own and the lists live in `arena`, so lowering 10,000 services copies
/// no string twice; a chain shared by many certificates (`Arc`) is converted once.
struct Lower<'a> {
    arena: &'a Bump,
    chains: HashMap<*const f::ChainElement, &'a [w::ChainElement<'a>]>,
}

impl<'a> Lower<'a> {
    fn strs(&self, v: &'a [String]) -> &'a [&'a str] {
        self.arena.alloc_slice_fill_iter(v.iter().map(String::as_str))
    }

    fn host(&mut self, h: &'a f::HostFacts) -> w::HostFacts<'a> {
        let groups = self.arena.alloc_slice_fill_iter(h.groups.iter().map(|g| w::GroupFacts {
            name: &g.name,
            names: self.strs(&g.names),
            orderable: g.orderable,
            pending_order: g.pending_order.as_ref().map(|o| w::PendingOrder {
                url: &o.url,
                created: o.created,
                names: self.strs(&o.names),
                status: &o.status,
            }),
            next_order_not_before: g.next_order_not_before,
        }));
        let arena = self.arena;
        let services = arena.alloc_slice_fill_with(h.services.len(), |i| self.service(&h.services[i]));
        w::HostFacts {
            now: h.now,
            hostname: &h.hostname,
            hostname_is_fqdn: h.hostname_is_fqdn,
            hostname_dns: h.hostname_dns.into(),
            caa: caa(&h.caa),
            disable_auto_hostname_certificate: h.disable_auto_hostname_certificate,
            disable_service_certificate_management: h.disable_service_certificate_management,
            acme: h.acme.as_ref().map(|a| w::AcmeFacts { directory_url: &a.directory_url }),
            groups,
            params: self.arena.alloc_slice_fill_iter(h.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            services,
        }
    }

    fn service(&mut self, s: &'a f::ServiceFacts) -> w::ServiceFacts<'a> {
        w::ServiceFacts {
            name: &s.name,
            certificate: match &s.certificate {
                f::CertificateState::Ok(c) => w::CertificateState::Ok(self.certificate(c)),
                f::CertificateState::Missing(s) => w::CertificateState::Missing(s),
                f::CertificateState::Unreadable(s) => w::CertificateState::Unreadable(s),
                f::CertificateState::Malformed(s) => w::CertificateState::Malformed(s),
            },
            key: match &s.key {
                f::KeyStatus::Matches => w::KeyStatus::Matches,
                f::KeyStatus::Mismatch => w::KeyStatus::Mismatch,
                f::KeyStatus::Missing(s) => w::KeyStatus::Missing(s),
                f::KeyStatus::Unreadable(s) => w::KeyStatus::Unreadable(s),
                f::KeyStatus::Malformed(s) => w::KeyStatus::Malformed(s),
                f::KeyStatus::NotChecked => w::KeyStatus::NotChecked,
            },
            covers_hostname: s.covers_hostname,
            served: self.arena.alloc_slice_fill_iter(s.served.iter().map(|e| w::ServedEndpoint {
                endpoint: &e.endpoint,
                sha256_fingerprint: e.sha256_fingerprint.as_deref(),
                matches_installed: e.matches_installed,
                chain_status: chain_status(&e.chain_status),
                error: e.error.as_deref(),
            })),
            group: s.group.as_deref(),
            check_only: s.check_only,
        }
    }

    fn certificate(&mut self, c: &'a f::Certificate) -> w::Certificate<'a> {
        let arena = self.arena;
        let chain = *self
            .chains
            .entry(c.chain.as_ptr())
            .or_insert_with(|| arena.alloc_slice_fill_iter(c.chain.iter().map(chain_element)));
        w::Certificate {
            subject_cn: c.subject_cn.as_deref(),
            dns_names: self.strs(&c.dns_names),
            ip_addresses: self.strs(&c.ip_addresses),
            issuer_cn: c.issuer_cn.as_deref(),
            issuer_org: c.issuer_org.as_deref(),
            serial: &c.serial,
            sha256_fingerprint: &c.sha256_fingerprint,
            not_before: c.not_before,
            not_after: c.not_after,
            public_key: public_key(&c.public_key),
            signature_algorithm: &c.signature_algorithm,
            self_signed: c.self_signed,
            chain_status: chain_status(&c.chain_status),
            path: match &c.path {
                f::PathStatus::Valid => w::PathStatus::Valid,
                f::PathStatus::Incomplete(s) => w::PathStatus::Incomplete(s),
                f::PathStatus::Untrusted(s) => w::PathStatus::Untrusted(s),
                f::PathStatus::Invalid(s) => w::PathStatus::Invalid(s),
                f::PathStatus::NotChecked => w::PathStatus::NotChecked,
            },
            chain,
            revocation: match &c.revocation {
                f::Revocation::Good => w::Revocation::Good,
                f::Revocation::Revoked(d) => {
                    w::Revocation::Revoked(w::RevokedDetails { revoked_at: d.revoked_at, reason: &d.reason })
                }
                f::Revocation::Unknown(s) => w::Revocation::Unknown(s),
                f::Revocation::NotChecked => w::Revocation::NotChecked,
            },
            renewal_window: c.renewal_window.as_ref().map(|r| w::RenewalWindow {
                start: r.start,
                end: r.end,
                explanation_url: r.explanation_url.as_deref(),
            }),
        }
    }
}

fn caa(v: &f::CaaStatus) -> w::CaaStatus<'_> {
    match v {
        f::CaaStatus::Allows => w::CaaStatus::Allows,
        f::CaaStatus::Forbids(s) => w::CaaStatus::Forbids(s),
        f::CaaStatus::NotChecked => w::CaaStatus::NotChecked,
    }
}

fn chain_status(v: &f::ChainStatus) -> w::ChainStatus<'_> {
    match v {
        f::ChainStatus::Trusted => w::ChainStatus::Trusted,
        f::ChainStatus::Untrusted(s) => w::ChainStatus::Untrusted(s),
        f::ChainStatus::Incomplete(s) => w::ChainStatus::Incomplete(s),
        f::ChainStatus::NotChecked => w::ChainStatus::NotChecked,
    }
}

fn public_key(k: &f::PublicKey) -> w::PublicKey<'_> {
    w::PublicKey { kind: k.kind.into(), bits: k.bits, curve: k.curve.as_deref() }
}

fn chain_element(e: &f::ChainElement) -> w::ChainElement<'_> {
    w::ChainElement {
        subject: &e.subject,
        issuer: &e.issuer,
        serial: &e.serial,
        sha256_fingerprint: &e.sha256_fingerprint,
        not_before: e.not_before,
        not_after: e.not_after,
        public_key: public_key(&e.public_key),
        signature_algorithm: &e.signature_algorithm,
        is_ca: e.is_ca,
        self_signed: e.self_signed,
        source: match e.source {
            f::ChainSource::File => w::ChainSource::File,
            f::ChainSource::TrustStore => w::ChainSource::TrustStore,
        },
    }
}

// ---- contract → model (plan, metadata) ----

impl From<w::Level> for p::Level {
    fn from(v: w::Level) -> Self {
        match v {
            w::Level::Info => p::Level::Info,
            w::Level::Warning => p::Level::Warning,
            w::Level::Error => p::Level::Error,
        }
    }
}

impl From<w::Decision> for p::Decision {
    fn from(v: w::Decision) -> Self {
        match v {
            w::Decision::Keep => p::Decision::Keep,
            w::Decision::Replace => p::Decision::Replace,
            w::Decision::ReplaceOrPlaceholder => p::Decision::ReplaceOrPlaceholder,
            w::Decision::Placeholder => p::Decision::Placeholder,
        }
    }
}

impl From<w::Reason> for p::Reason {
    fn from(v: w::Reason) -> Self {
        match v {
            w::Reason::WeakSignature => p::Reason::WeakSignature,
            w::Reason::WeakKey => p::Reason::WeakKey,
            w::Reason::Revoked => p::Reason::Revoked,
            w::Reason::SelfSigned => p::Reason::SelfSigned,
            w::Reason::UntrustedChain => p::Reason::UntrustedChain,
            w::Reason::HostnameMismatch => p::Reason::HostnameMismatch,
            w::Reason::HostnameNotOnThisServer => p::Reason::HostnameNotOnThisServer,
            w::Reason::Expired => p::Reason::Expired,
            w::Reason::ExpiringSoon => p::Reason::ExpiringSoon,
            w::Reason::NotYetValid => p::Reason::NotYetValid,
            w::Reason::KeyMismatch => p::Reason::KeyMismatch,
            w::Reason::Missing => p::Reason::Missing,
            w::Reason::Unreadable => p::Reason::Unreadable,
            w::Reason::Malformed => p::Reason::Malformed,
            w::Reason::RenewalWindow => p::Reason::RenewalWindow,
            w::Reason::StaleEndpoint => p::Reason::StaleEndpoint,
            w::Reason::Other(s) => p::Reason::Other(s),
        }
    }
}

impl From<w::Plan> for p::Plan {
    fn from(v: w::Plan) -> Self {
        p::Plan {
            services: v
                .services
                .into_iter()
                .map(|s| p::ServicePlan {
                    service: s.service,
                    decision: s.decision.into(),
                    reasons: s.reasons.into_iter().map(Into::into).collect(),
                })
                .collect(),
            orders: v.orders.into_iter().map(|o| p::OrderRequest { group: o.group }).collect(),
            notices: v
                .notices
                .into_iter()
                .map(|n| p::Notice { level: n.level.into(), service: n.service, message: n.message })
                .collect(),
        }
    }
}

impl From<w::PolicyMetadata> for p::Metadata {
    fn from(v: w::PolicyMetadata) -> Self {
        p::Metadata {
            name: v.name,
            version: v.version,
            description: v.description,
            contract_version: v.contract_version,
        }
    }
}
