//! Contract `checkallsslcerts:policy@0.1.0` (`wit/since_v0.1.0/`), frozen; modules built against
//! it run unchanged beside 0.2.0 ones.
//!
//! The generated bindings, and the conversion between them and the host's model, which now
//! mirrors 0.2.0. Going down to 0.1.0 drops what 0.1.0 does not know: the chain's certificates
//! and the path verdict (0.1.0's `chain` is 0.2.0's `chain-status`, the same value), the
//! services' groups and check-only flag, and the groups other than "hostname" (0.1.0's pending
//! order and back-off are the "hostname" group's). Coming up, 0.1.0's single
//! `order-hostname-certificate` orders the "hostname" group and every group with a service the
//! plan replaces: in 0.1.0 every replaced service got the one ordered certificate, so with the
//! default configuration (one group) the plan is exactly what it was ([`plan_v0_1_0`] turns it
//! back).

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::{HostState, Outcome};
use crate::facts::model as f;
use crate::plan::model as p;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "policy",
});

use checkallsslcerts::policy::types as w;

/// The version string of this contract.
pub const VERSION: &str = "0.1.0";

/// The imports a module built against this contract may have.
pub const ALLOWED_IMPORTS: &[&str] =
    &["checkallsslcerts:policy/types@0.1.0", "checkallsslcerts:policy/host@0.1.0"];

/// The export that marks a policy of this contract.
pub const RULES_EXPORT: &str = "checkallsslcerts:policy/rules@0.1.0";

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
    let answer = policy
        .checkallsslcerts_policy_rules()
        .call_evaluate(&mut *store, &w::HostFacts::from(facts))
        .map_err(super::Failure::Call)?;
    Ok(answer.map(|plan| plan_from(plan, facts)))
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
            public_key: w::PublicKey {
                kind: c.public_key.kind.into(),
                bits: c.public_key.bits,
                curve: c.public_key.curve.clone(),
            },
            signature_algorithm: c.signature_algorithm.clone(),
            self_signed: c.self_signed,
            chain: (&c.chain_status).into(),
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
                    chain: (&e.chain_status).into(),
                    error: e.error.clone(),
                })
                .collect(),
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
            acme: h.acme.as_ref().map(|a| {
                let hostname = h.hostname_group();
                w::AcmeFacts {
                    directory_url: a.directory_url.clone(),
                    pending_order: hostname.and_then(|g| g.pending_order.as_ref()).map(|o| w::PendingOrder {
                        url: o.url.clone(),
                        created: o.created,
                        names: o.names.clone(),
                        status: o.status.clone(),
                    }),
                    next_order_not_before: hostname.and_then(|g| g.next_order_not_before),
                }
            }),
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

/// A 0.1.0 plan in the host's model: `order-hostname-certificate` orders the "hostname" group
/// and the group of every service the plan replaces (see the module documentation).
fn plan_from(v: w::Plan, facts: &f::HostFacts) -> p::Plan {
    let order = v.order_hostname_certificate;
    let mut plan = p::Plan::from(v);
    if order {
        // The groups of the services the plan replaces, in one pass over the plan (the plan's
        // services may come in any order; an unknown name is the validator's to refuse).
        let group_of: std::collections::HashMap<&str, Option<&str>> =
            facts.services.iter().map(|s| (s.name.as_str(), s.group.as_deref())).collect();
        let replaced: std::collections::HashSet<&str> = plan
            .services
            .iter()
            .filter(|d| matches!(d.decision, p::Decision::Replace | p::Decision::ReplaceOrPlaceholder))
            .filter_map(|d| group_of.get(d.service.as_str()).copied().flatten())
            .collect();
        let groups: Vec<p::OrderRequest> = facts
            .groups
            .iter()
            .filter(|g| g.name == f::HOSTNAME_GROUP || replaced.contains(g.name.as_str()))
            .map(|g| p::OrderRequest { group: g.name.clone() })
            .collect();
        plan.orders = groups;
    }
    plan
}

/// A plan in 0.1.0's terms (`services`, `order-hostname-certificate`, `notices`), as the hosts
/// before 0.2.0 printed it: what a 0.1.0 module answered, e.g. for `policy eval`.
#[derive(serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlanV0_1_0<'a> {
    services: &'a [p::ServicePlan],
    order_hostname_certificate: bool,
    notices: &'a [p::Notice],
}

impl<'a> From<&'a p::Plan> for PlanV0_1_0<'a> {
    fn from(plan: &'a p::Plan) -> Self {
        PlanV0_1_0 {
            services: &plan.services,
            order_hostname_certificate: !plan.orders.is_empty(),
            notices: &plan.notices,
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
            orders: Vec::new(),
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
