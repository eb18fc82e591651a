//! Contract `checkallsslcerts:policy@0.2.0` (`wit/since_v0.2.0/`), the latest, frozen.
//!
//! The generated bindings, and the conversions between them and the host's own model
//! (`facts::model`, `plan::model`), which mirrors this version field for field. When a newer
//! contract is released, this file stays as it is apart from the conversions, which then map the
//! newer model onto this version (as `since_v0_1_0` does for 0.1.0).

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::{HostState, Outcome};
use crate::facts::model as f;
use crate::plan::model as p;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "policy",
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
    let facts = w::HostFacts::from(facts);
    let answer = policy
        .checkallsslcerts_policy_rules()
        .call_evaluate(&mut *store, &facts)
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

impl From<&f::CaaStatus> for w::CaaStatus {
    fn from(v: &f::CaaStatus) -> Self {
        match v {
            f::CaaStatus::Allows => w::CaaStatus::Allows,
            f::CaaStatus::Forbids(s) => w::CaaStatus::Forbids(s.clone()),
            f::CaaStatus::NotChecked => w::CaaStatus::NotChecked,
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

impl From<&f::ChainStatus> for w::ChainStatus {
    fn from(v: &f::ChainStatus) -> Self {
        match v {
            f::ChainStatus::Trusted => w::ChainStatus::Trusted,
            f::ChainStatus::Untrusted(s) => w::ChainStatus::Untrusted(s.clone()),
            f::ChainStatus::Incomplete(s) => w::ChainStatus::Incomplete(s.clone()),
            f::ChainStatus::NotChecked => w::ChainStatus::NotChecked,
        }
    }
}

impl From<&f::PublicKey> for w::PublicKey {
    fn from(k: &f::PublicKey) -> Self {
        w::PublicKey { kind: k.kind.into(), bits: k.bits, curve: k.curve.clone() }
    }
}

impl From<&f::PathStatus> for w::PathStatus {
    fn from(v: &f::PathStatus) -> Self {
        match v {
            f::PathStatus::Valid => w::PathStatus::Valid,
            f::PathStatus::Incomplete(s) => w::PathStatus::Incomplete(s.clone()),
            f::PathStatus::Untrusted(s) => w::PathStatus::Untrusted(s.clone()),
            f::PathStatus::Invalid(s) => w::PathStatus::Invalid(s.clone()),
            f::PathStatus::NotChecked => w::PathStatus::NotChecked,
        }
    }
}

impl From<&f::ChainElement> for w::ChainElement {
    fn from(e: &f::ChainElement) -> Self {
        w::ChainElement {
            subject: e.subject.clone(),
            issuer: e.issuer.clone(),
            serial: e.serial.clone(),
            sha256_fingerprint: e.sha256_fingerprint.clone(),
            not_before: e.not_before,
            not_after: e.not_after,
            public_key: (&e.public_key).into(),
            signature_algorithm: e.signature_algorithm.clone(),
            is_ca: e.is_ca,
            self_signed: e.self_signed,
            source: match e.source {
                f::ChainSource::File => w::ChainSource::File,
                f::ChainSource::TrustStore => w::ChainSource::TrustStore,
            },
        }
    }
}

impl From<&f::Revocation> for w::Revocation {
    fn from(v: &f::Revocation) -> Self {
        match v {
            f::Revocation::Good => w::Revocation::Good,
            f::Revocation::Revoked(d) => w::Revocation::Revoked(w::RevokedDetails {
                revoked_at: d.revoked_at,
                reason: d.reason.clone(),
            }),
            f::Revocation::Unknown(s) => w::Revocation::Unknown(s.clone()),
            f::Revocation::NotChecked => w::Revocation::NotChecked,
        }
    }
}

impl From<&f::Certificate> for w::Certificate {
    fn from(c: &f::Certificate) -> Self {
        w::Certificate {
            subject_cn: c.subject_cn.clone(),
            dns_names: c.dns_names.clone(),
            ip_addresses: c.ip_addresses.clone(),
            issuer_cn: c.issuer_cn.clone(),
            issuer_org: c.issuer_org.clone(),
            serial: c.serial.clone(),
            sha256_fingerprint: c.sha256_fingerprint.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            public_key: (&c.public_key).into(),
            signature_algorithm: c.signature_algorithm.clone(),
            self_signed: c.self_signed,
            chain_status: (&c.chain_status).into(),
            path: (&c.path).into(),
            chain: c.chain.iter().map(Into::into).collect(),
            revocation: (&c.revocation).into(),
            renewal_window: c.renewal_window.as_ref().map(|r| w::RenewalWindow {
                start: r.start,
                end: r.end,
                explanation_url: r.explanation_url.clone(),
            }),
        }
    }
}

impl From<&f::CertificateState> for w::CertificateState {
    fn from(v: &f::CertificateState) -> Self {
        match v {
            f::CertificateState::Ok(c) => w::CertificateState::Ok(c.as_ref().into()),
            f::CertificateState::Missing(s) => w::CertificateState::Missing(s.clone()),
            f::CertificateState::Unreadable(s) => w::CertificateState::Unreadable(s.clone()),
            f::CertificateState::Malformed(s) => w::CertificateState::Malformed(s.clone()),
        }
    }
}

impl From<&f::KeyStatus> for w::KeyStatus {
    fn from(v: &f::KeyStatus) -> Self {
        match v {
            f::KeyStatus::Matches => w::KeyStatus::Matches,
            f::KeyStatus::Mismatch => w::KeyStatus::Mismatch,
            f::KeyStatus::Missing(s) => w::KeyStatus::Missing(s.clone()),
            f::KeyStatus::Unreadable(s) => w::KeyStatus::Unreadable(s.clone()),
            f::KeyStatus::Malformed(s) => w::KeyStatus::Malformed(s.clone()),
            f::KeyStatus::NotChecked => w::KeyStatus::NotChecked,
        }
    }
}

impl From<&f::ServiceFacts> for w::ServiceFacts {
    fn from(s: &f::ServiceFacts) -> Self {
        w::ServiceFacts {
            name: s.name.clone(),
            certificate: (&s.certificate).into(),
            key: (&s.key).into(),
            covers_hostname: s.covers_hostname,
            served: s
                .served
                .iter()
                .map(|e| w::ServedEndpoint {
                    endpoint: e.endpoint.clone(),
                    sha256_fingerprint: e.sha256_fingerprint.clone(),
                    matches_installed: e.matches_installed,
                    chain_status: (&e.chain_status).into(),
                    error: e.error.clone(),
                })
                .collect(),
            group: s.group.clone(),
            check_only: s.check_only,
        }
    }
}

impl From<&f::HostFacts> for w::HostFacts {
    fn from(h: &f::HostFacts) -> Self {
        w::HostFacts {
            now: h.now,
            hostname: h.hostname.clone(),
            hostname_is_fqdn: h.hostname_is_fqdn,
            hostname_dns: h.hostname_dns.into(),
            caa: (&h.caa).into(),
            disable_auto_hostname_certificate: h.disable_auto_hostname_certificate,
            disable_service_certificate_management: h.disable_service_certificate_management,
            acme: h.acme.as_ref().map(|a| w::AcmeFacts { directory_url: a.directory_url.clone() }),
            groups: h
                .groups
                .iter()
                .map(|g| w::GroupFacts {
                    name: g.name.clone(),
                    names: g.names.clone(),
                    orderable: g.orderable,
                    pending_order: g.pending_order.as_ref().map(|o| w::PendingOrder {
                        url: o.url.clone(),
                        created: o.created,
                        names: o.names.clone(),
                        status: o.status.clone(),
                    }),
                    next_order_not_before: g.next_order_not_before,
                })
                .collect(),
            params: h.params.clone(),
            services: h.services.iter().map(Into::into).collect(),
        }
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
