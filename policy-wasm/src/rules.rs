//! The default policy's rules, as pure functions over the contract's types.
//!
//! Everything here is specified in `policy-wasm/README.md`; this module implements that text and
//! nothing else. No function here touches the host (not even `host.log`), so every rule runs in
//! native unit tests exactly as it runs inside the WebAssembly component.
//!
//! All time arithmetic is done in `i128`, so no timestamp the host can send (the full `s64`
//! range) can overflow and trap the module.

use crate::types::{
    CaaStatus, Certificate, CertificateState, ChainElement, ChainSource, ChainStatus, Decision, DnsStatus,
    GroupFacts, HostFacts, KeyKind, KeyStatus, Level, Notice, OrderRequest, PathStatus, Plan, PublicKey,
    Reason, RenewalWindow, Revocation, ServiceFacts, ServicePlan, Timestamp,
};

/// The name of the certificate group of the server's hostname.
pub const HOSTNAME_GROUP: &str = "hostname";

/// One day, in seconds.
pub const DAY: i64 = 86_400;

/// The policy parameters (`[policy.params]` in the host's configuration), after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// `letsencrypt-min-days`: a Let's Encrypt certificate with less than this many days left is
    /// expiring soon.
    pub letsencrypt_min_days: u32,
    /// `other-min-days`: the same, for certificates from any other issuer.
    pub other_min_days: u32,
    /// `short-lifetime-percent`: for short-lived certificates, expiring soon means less than this
    /// percentage of the whole lifetime is left.
    pub short_lifetime_percent: u32,
    /// `min-rsa-bits`: an RSA key smaller than this is a weak key.
    pub min_rsa_bits: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params { letsencrypt_min_days: 25, other_min_days: 3, short_lifetime_percent: 33, min_rsa_bits: 2048 }
    }
}

/// A known parameter: its key, its valid range and where it goes.
struct ParamSpec {
    key: &'static str,
    min: u32,
    max: u32,
    field: fn(&mut Params) -> &mut u32,
}

const PARAM_SPECS: [ParamSpec; 4] = [
    ParamSpec { key: "letsencrypt-min-days", min: 0, max: 3650, field: |p| &mut p.letsencrypt_min_days },
    ParamSpec { key: "other-min-days", min: 0, max: 3650, field: |p| &mut p.other_min_days },
    ParamSpec { key: "short-lifetime-percent", min: 1, max: 99, field: |p| &mut p.short_lifetime_percent },
    ParamSpec { key: "min-rsa-bits", min: 512, max: 16384, field: |p| &mut p.min_rsa_bits },
];

/// Reads the policy parameters. Values are decimal integers (ASCII digits only); a value that
/// does not parse or is out of range gives a `warning` notice naming the key, and the default is
/// used. Unknown keys are ignored. Entries are read in order, so if a key is given twice the
/// last entry decides.
pub fn parse_params(params: &[(String, String)]) -> (Params, Vec<Notice>) {
    let mut parsed = Params::default();
    let mut notices = Vec::new();
    for (key, value) in params {
        let Some(spec) = PARAM_SPECS.iter().find(|spec| spec.key == key) else {
            continue;
        };
        let default = *(spec.field)(&mut Params::default());
        let problem = if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            Some("is not a decimal integer".to_string())
        } else {
            match value.parse::<u32>() {
                Ok(n) if (spec.min..=spec.max).contains(&n) => {
                    *(spec.field)(&mut parsed) = n;
                    None
                }
                // All digits but too large for a u32: out of range as well.
                _ => Some(format!("is out of range ({} to {})", spec.min, spec.max)),
            }
        };
        if let Some(problem) = problem {
            *(spec.field)(&mut parsed) = default;
            notices.push(Notice {
                level: Level::Warning,
                service: None,
                message: format!(
                    "Policy parameter {} = {:?} {problem}; the default {default} is used instead.",
                    spec.key, value
                ),
            });
        }
    }
    (parsed, notices)
}

/// Whether the certificate was issued by Let's Encrypt: its issuer organisation contains
/// "let's encrypt", case-insensitively (this includes the staging CA).
pub fn is_lets_encrypt(cert: &Certificate) -> bool {
    cert.issuer_org.as_deref().is_some_and(|org| org.to_lowercase().contains("let's encrypt"))
}

/// The *expiring soon* threshold for this certificate, in seconds: a certificate with less time
/// than this left is expiring soon.
///
/// The base threshold is `letsencrypt-min-days` or `other-min-days` days. When the whole lifetime
/// (`not-after − not-before`) is less than twice that, the threshold is instead
/// `lifetime × short-lifetime-percent / 100`, rounded down.
pub fn expiring_soon_threshold(cert: &Certificate, params: &Params) -> i128 {
    let days = if is_lets_encrypt(cert) { params.letsencrypt_min_days } else { params.other_min_days };
    let base = i128::from(days) * i128::from(DAY);
    let lifetime = i128::from(cert.not_after) - i128::from(cert.not_before);
    if lifetime < 2 * base {
        (lifetime * i128::from(params.short_lifetime_percent)).div_euclid(100)
    } else {
        base
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// The point in the CA's renewal window at or after which the certificate is renewed:
/// `start + (FNV-1a-64(sha256-fingerprint) mod (end − start))`, or `start` if `end <= start`.
/// The hash is taken over the fingerprint's text (its lowercase hexadecimal bytes).
pub fn renewal_point(window: &RenewalWindow, sha256_fingerprint: &str) -> Timestamp {
    let length = i128::from(window.end) - i128::from(window.start);
    if length <= 0 {
        return window.start;
    }
    let offset = i128::from(fnv1a_64(sha256_fingerprint.as_bytes())) % length;
    // start <= start + offset < end, so the result fits a timestamp.
    Timestamp::try_from(i128::from(window.start) + offset).unwrap_or(window.start)
}

/// Why no hostname certificate can be ordered: the first of the README's conditions that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyNotOrder {
    /// 1. `disable-auto-hostname-certificate` is set.
    AutoHostnameCertificateDisabled,
    /// 2. No ACME CA is configured.
    NoCertificateAuthority,
    /// 3. The hostname is not an FQDN.
    HostnameNotFqdn,
    /// 3. The hostname is fully qualified, but under a name reserved for internal use
    ///    (`.internal`, `.test`, `.lan`...), which a public CA cannot issue for.
    HostnameReservedForInternalUse(String),
    /// 4. The hostname resolves, but not (only) to this server's main IPs.
    DnsPointsElsewhere,
    /// 4. The hostname does not resolve.
    DnsDoesNotResolve,
    /// 5. CAA records forbid the configured CA; the payload lists the CAs they allow.
    CaaForbids(String),
    /// A group other than "hostname" whose names the CA cannot issue for; the payload is the
    /// group's names, comma-separated.
    GroupNotOrderable(String),
    /// The service names a group the facts do not have (a host bug); the payload is its name.
    UnknownGroup(String),
}

impl WhyNotOrder {
    /// The README's text for this cause.
    pub fn message(&self) -> String {
        match self {
            WhyNotOrder::AutoHostnameCertificateDisabled => {
                "automatic hostname certificates are disabled (disable_auto_hostname_certificate)".to_string()
            }
            WhyNotOrder::NoCertificateAuthority => "no certificate authority is configured".to_string(),
            WhyNotOrder::HostnameNotFqdn => "the hostname is not a fully qualified domain name".to_string(),
            WhyNotOrder::HostnameReservedForInternalUse(hostname) => format!(
                "the hostname {hostname} is a name reserved for internal use (RFC 6761/.internal); a public CA \
                 cannot issue for it; set [acme] public = false for a private CA"
            ),
            WhyNotOrder::DnsPointsElsewhere => {
                "the hostname does not resolve to this server's main IP".to_string()
            }
            WhyNotOrder::DnsDoesNotResolve => "the hostname does not resolve in DNS".to_string(),
            WhyNotOrder::CaaForbids(allowed) => {
                format!("CAA records for the hostname do not allow the configured CA (allowed: {allowed})")
            }
            WhyNotOrder::GroupNotOrderable(names) => {
                format!("the configured CA cannot issue for the group's names ({names})")
            }
            WhyNotOrder::UnknownGroup(group) => format!("the certificate group {group} is not known"),
        }
    }

    /// Failures 3–5 make the server ineligible for a free certificate.
    pub fn makes_server_ineligible(&self) -> bool {
        matches!(
            self,
            WhyNotOrder::HostnameNotFqdn
                | WhyNotOrder::HostnameReservedForInternalUse(_)
                | WhyNotOrder::DnsPointsElsewhere
                | WhyNotOrder::DnsDoesNotResolve
                | WhyNotOrder::CaaForbids(_)
        )
    }
}

/// Whether a certificate can be ordered for the group `group` (a service's `group`): `None` if
/// it can, otherwise why not. The "hostname" group is [`why_not_order`]; another group needs a
/// CA and names the CA can issue for (the hostname's DNS and CAA facts are not about it).
pub fn why_not_order_group(facts: &HostFacts, group: &str) -> Option<WhyNotOrder> {
    if group == HOSTNAME_GROUP {
        return why_not_order(facts);
    }
    let Some(found) = facts.groups.iter().find(|g| g.name == group) else {
        return Some(WhyNotOrder::UnknownGroup(group.to_string()));
    };
    if facts.acme.is_none() {
        Some(WhyNotOrder::NoCertificateAuthority)
    } else if !found.orderable {
        Some(WhyNotOrder::GroupNotOrderable(found.names.join(", ")))
    } else {
        None
    }
}

/// The name a group's certificate is for, in messages: its main name, or the hostname.
fn group_main_name<'a>(facts: &'a HostFacts, group: &str) -> &'a str {
    facts
        .groups
        .iter()
        .find(|g| g.name == group)
        .and_then(|g: &GroupFacts| g.names.first())
        .map_or(facts.hostname.as_str(), String::as_str)
}

/// Suffixes reserved for internal use (RFC 6761, 6762, 7686, 8375, 9476, ICANN's `.internal`)
/// and the usual private ones: a fully qualified name under them is not a public CA's to issue.
const INTERNAL_SUFFIXES: [&str; 15] = [
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
    "lan",
    "corp",
    "home",
    "intranet",
    "private",
];

/// Whether `hostname` has at least two labels and ends in a suffix reserved for internal use.
fn reserved_for_internal_use(hostname: &str) -> bool {
    let name = hostname.trim_end_matches('.').to_ascii_lowercase();
    name.contains('.')
        && !name.split('.').any(str::is_empty)
        && INTERNAL_SUFFIXES
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|rest| rest.ends_with('.')))
}

/// Whether a hostname certificate can be ordered: `None` if it can, otherwise the first
/// condition that fails. A `hostname-dns` of `not-checked` gets the benefit of the doubt.
pub fn why_not_order(facts: &HostFacts) -> Option<WhyNotOrder> {
    if facts.disable_auto_hostname_certificate {
        Some(WhyNotOrder::AutoHostnameCertificateDisabled)
    } else if facts.acme.is_none() {
        Some(WhyNotOrder::NoCertificateAuthority)
    } else if !facts.hostname_is_fqdn && reserved_for_internal_use(&facts.hostname) {
        Some(WhyNotOrder::HostnameReservedForInternalUse(facts.hostname.clone()))
    } else if !facts.hostname_is_fqdn {
        Some(WhyNotOrder::HostnameNotFqdn)
    } else if facts.hostname_dns == DnsStatus::PointsElsewhere {
        Some(WhyNotOrder::DnsPointsElsewhere)
    } else if facts.hostname_dns == DnsStatus::DoesNotResolve {
        Some(WhyNotOrder::DnsDoesNotResolve)
    } else if let CaaStatus::Forbids(allowed) = &facts.caa {
        Some(WhyNotOrder::CaaForbids(allowed.clone()))
    } else {
        None
    }
}

/// Whether the signature algorithm's name contains `md2`, `md4`, `md5` or `sha1`
/// (case-insensitive).
pub fn is_weak_signature(signature_algorithm: &str) -> bool {
    let name = signature_algorithm.to_ascii_lowercase();
    ["md2", "md4", "md5", "sha1"].iter().any(|weak| name.contains(weak))
}

/// Whether the key is weak: RSA below `min-rsa-bits`, any DSA key, or EC below 256 bits.
pub fn is_weak_key(cert: &Certificate, params: &Params) -> bool {
    is_weak_public_key(&cert.public_key, params)
}

/// [`is_weak_key`] for any public key.
pub fn is_weak_public_key(key: &PublicKey, params: &Params) -> bool {
    match key.kind {
        KeyKind::Rsa => key.bits < params.min_rsa_bits,
        KeyKind::Dsa => true,
        KeyKind::Ec => key.bits < 256,
        KeyKind::Ed25519 | KeyKind::Ed448 | KeyKind::Other => false,
    }
}

/// The certificate of the chain whose signature clients check and which is signed with a weak
/// algorithm: any certificate above the leaf but a root's self-signature.
pub fn weak_signature_in_chain(cert: &Certificate) -> Option<&ChainElement> {
    cert.chain.iter().find(|e| !e.self_signed && is_weak_signature(&e.signature_algorithm))
}

/// The first certificate of the chain with a weak key.
pub fn weak_key_in_chain<'a>(cert: &'a Certificate, params: &Params) -> Option<&'a ChainElement> {
    cert.chain.iter().find(|e| is_weak_public_key(&e.public_key, params))
}

/// The served intermediate (from the files, not the trust store) that expires first, if it
/// expires before the leaf: clients reject the chain from then on, so the certificate lives only
/// that long.
pub fn intermediate_expiring_first(cert: &Certificate) -> Option<&ChainElement> {
    cert.chain
        .iter()
        .filter(|e| e.source == ChainSource::File && !e.self_signed && e.not_after < cert.not_after)
        .min_by_key(|e| e.not_after)
}

/// When the certificate stops working: the leaf's `not-after`, or that of a served intermediate
/// that expires before it.
pub fn effective_not_after(cert: &Certificate) -> Timestamp {
    intermediate_expiring_first(cert).map_or(cert.not_after, |e| e.not_after)
}

/// Every reason that applies to one service, in the order of the README's table. When the
/// certificate is not `ok`, only its own reason (`missing`/`unreadable`/`malformed`) is given.
/// Never includes `hostname-not-on-this-server`, which [`evaluate`] adds.
pub fn service_reasons(service: &ServiceFacts, now: Timestamp, params: &Params) -> Vec<Reason> {
    let cert = match &service.certificate {
        CertificateState::Ok(cert) => cert,
        CertificateState::Missing(_) => return vec![Reason::Missing],
        CertificateState::Unreadable(_) => return vec![Reason::Unreadable],
        CertificateState::Malformed(_) => return vec![Reason::Malformed],
    };
    let mut reasons = Vec::new();
    match service.key {
        KeyStatus::Matches | KeyStatus::NotChecked => {}
        KeyStatus::Mismatch => reasons.push(Reason::KeyMismatch),
        KeyStatus::Missing(_) => reasons.push(Reason::Missing),
        KeyStatus::Unreadable(_) => reasons.push(Reason::Unreadable),
        KeyStatus::Malformed(_) => reasons.push(Reason::Malformed),
    }
    let leaf_expired = now >= cert.not_after;
    let not_after = effective_not_after(cert);
    let expired = now >= not_after;
    if expired {
        reasons.push(Reason::Expired);
    }
    if now < cert.not_before {
        reasons.push(Reason::NotYetValid);
    }
    if matches!(cert.revocation, Revocation::Revoked(_)) {
        reasons.push(Reason::Revoked);
    }
    if is_weak_signature(&cert.signature_algorithm) || weak_signature_in_chain(cert).is_some() {
        reasons.push(Reason::WeakSignature);
    }
    if is_weak_key(cert, params) || weak_key_in_chain(cert, params).is_some() {
        reasons.push(Reason::WeakKey);
    }
    if cert.self_signed {
        reasons.push(Reason::SelfSigned);
    }
    // The path verdict leaves the leaf's own dates out. Without one (facts that predate it), the
    // chain status is verified at `now`, so an expired or not-yet-valid leaf never verifies:
    // that failure is already said by `expired`/`not-yet-valid` (and must not turn a silenced
    // expiry into a notice when service certificate management is disabled). An intermediate
    // that has expired is said by `expired` too.
    let bad_chain = match &cert.path {
        PathStatus::Valid => false,
        PathStatus::Invalid(_) if expired && !leaf_expired => false,
        PathStatus::Incomplete(_) | PathStatus::Untrusted(_) | PathStatus::Invalid(_) => true,
        PathStatus::NotChecked => {
            let outside_validity = leaf_expired || now < cert.not_before;
            matches!(cert.chain_status, ChainStatus::Untrusted(_) | ChainStatus::Incomplete(_))
                && !outside_validity
        }
    };
    if bad_chain && !cert.self_signed {
        reasons.push(Reason::UntrustedChain);
    }
    if !service.covers_hostname {
        reasons.push(Reason::HostnameMismatch);
    }
    let left = i128::from(not_after) - i128::from(now);
    if !expired && left < expiring_soon_threshold(cert, params) {
        reasons.push(Reason::ExpiringSoon);
    }
    if let Some(window) = &cert.renewal_window
        && now >= renewal_point(window, &cert.sha256_fingerprint)
    {
        reasons.push(Reason::RenewalWindow);
    }
    reasons
}

/// Whether the reason makes the certificate unusable (it must not stay installed).
pub fn is_unusable(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::Missing
            | Reason::Unreadable
            | Reason::Malformed
            | Reason::KeyMismatch
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::Revoked
    )
}

/// Whether the reason is about the certificate's age only (`expired`, `expiring-soon`,
/// `renewal-window`): these give no notice while service certificate management is disabled.
pub fn is_about_expiry(reason: &Reason) -> bool {
    matches!(reason, Reason::Expired | Reason::ExpiringSoon | Reason::RenewalWindow)
}

/// Whether the reason is a routine renewal (`expiring-soon`, `renewal-window`).
pub fn is_routine(reason: &Reason) -> bool {
    matches!(reason, Reason::ExpiringSoon | Reason::RenewalWindow)
}

/// The decision table (service certificate management enabled).
pub fn decide(reasons: &[Reason], order_possible: bool) -> Decision {
    let unusable = reasons.iter().any(is_unusable);
    match (reasons.is_empty(), unusable, order_possible) {
        (true, _, _) => Decision::Keep,
        (false, false, true) => Decision::Replace,
        (false, true, true) => Decision::ReplaceOrPlaceholder,
        (false, false, false) => Decision::Keep,
        (false, true, false) => Decision::Placeholder,
    }
}

/// Computes the plan: one decision per service in input order, which groups to order a
/// certificate for, and the notices (host-wide first, then per service in input order).
pub fn evaluate(facts: &HostFacts) -> Plan {
    let (params, mut notices) = parse_params(&facts.params);
    let management_disabled = facts.disable_service_certificate_management;
    if management_disabled {
        notices.push(Notice {
            level: Level::Info,
            service: None,
            message: "Service certificate management is disabled \
                      (disable_service_certificate_management): no service certificate is \
                      replaced automatically, and expired or expiring ones are not reported."
                .to_string(),
        });
    }

    let mut services: Vec<ServicePlan> = Vec::with_capacity(facts.services.len());
    for service in &facts.services {
        let mut reasons = service_reasons(service, facts.now, &params);
        let level = if reasons.iter().any(is_unusable) { Level::Error } else { Level::Warning };
        let described = describe_reasons(service, &reasons, facts, &params);
        let group = service.group.as_deref().unwrap_or(HOSTNAME_GROUP);
        let why_not = why_not_order_group(facts, group);
        let (decision, notice) = if service.check_only {
            // The host installs nothing into a check-only service: the admin is told.
            let notice = (!reasons.is_empty()).then(|| {
                (
                    level,
                    format!(
                        "{described}. It is only checked here (check-only): replace it where its key \
                         lives."
                    ),
                )
            });
            (Decision::Keep, notice)
        } else if management_disabled {
            let notice = (!reasons.iter().all(is_about_expiry)).then(|| {
                (
                    level,
                    format!(
                        "{described}. It is kept, because service certificate management is \
                         disabled (disable_service_certificate_management)."
                    ),
                )
            });
            (Decision::Keep, notice)
        } else {
            let decision = decide(&reasons, why_not.is_none());
            let host = group_main_name(facts, group);
            let why = why_not.as_ref().map(WhyNotOrder::message).unwrap_or_default();
            let notice = match decision {
                Decision::Keep if reasons.is_empty() => None,
                Decision::Replace => Some((
                    if reasons.iter().all(is_routine) { Level::Info } else { Level::Warning },
                    format!(
                        "{described}. A new certificate for {host} is requested from the CA and \
                         will replace it once issued."
                    ),
                )),
                Decision::ReplaceOrPlaceholder => Some((
                    Level::Error,
                    format!(
                        "{described}. A new certificate for {host} is requested from the CA and \
                         will replace it if issued in this run; otherwise a self-signed \
                         placeholder is installed."
                    ),
                )),
                Decision::Placeholder => Some((
                    Level::Error,
                    format!(
                        "{described}. It is replaced by a self-signed placeholder, because no \
                         certificate for {host} can be ordered: {why}."
                    ),
                )),
                Decision::Keep => Some((
                    Level::Warning,
                    format!(
                        "{described}. It is kept, because no certificate for {host} can be \
                         ordered: {why}."
                    ),
                )),
            };
            let defect_kept = decision == Decision::Keep && !reasons.is_empty();
            if why_not.as_ref().is_some_and(WhyNotOrder::makes_server_ineligible)
                && (decision == Decision::Placeholder || defect_kept)
            {
                reasons.push(Reason::HostnameNotOnThisServer);
            }
            (decision, notice)
        };
        if let Some((level, message)) = notice {
            notices.push(service_notice(service, level, message));
        }
        notices.extend(side_notices(service));
        services.push(ServicePlan { service: service.name.clone(), decision, reasons });
    }

    // One order per group with a service to replace, in the groups' order.
    let orders = if management_disabled {
        Vec::new()
    } else {
        facts
            .groups
            .iter()
            .filter(|g| why_not_order_group(facts, &g.name).is_none())
            .filter(|g| {
                facts.services.iter().zip(&services).any(|(service, plan)| {
                    !service.check_only
                        && service.group.as_deref().unwrap_or(HOSTNAME_GROUP) == g.name
                        && matches!(plan.decision, Decision::Replace | Decision::ReplaceOrPlaceholder)
                })
            })
            .map(|g| OrderRequest { group: g.name.clone() })
            .collect()
    };
    Plan { services, orders, notices }
}

fn service_notice(service: &ServiceFacts, level: Level, message: String) -> Notice {
    Notice { level, service: Some(service.name.clone()), message }
}

/// Notices that do not depend on the decision: revocation status unknown, and endpoints that
/// do not serve the installed certificate.
fn side_notices(service: &ServiceFacts) -> Vec<Notice> {
    let name = &service.name;
    let mut notices = Vec::new();
    if let CertificateState::Ok(cert) = &service.certificate
        && let Revocation::Unknown(why) = &cert.revocation
    {
        notices.push(service_notice(
            service,
            Level::Warning,
            format!(
                "Service {name}: the revocation status of the certificate could not be checked \
                 ({why}). It is not treated as revoked."
            ),
        ));
    }
    for served in service.served.iter().filter(|s| !s.matches_installed) {
        let endpoint = &served.endpoint;
        let message = match (&served.sha256_fingerprint, &served.error) {
            (Some(_), _) => format!(
                "Service {name}: {endpoint} serves a different certificate than the installed \
                 one. Reload or restart the service so that it uses the installed certificate."
            ),
            (None, error) => format!(
                "Service {name}: {endpoint} could not be checked ({}), so it may not serve the \
                 installed certificate. Make sure the service is running and reload it.",
                error.as_deref().unwrap_or("no certificate was served")
            ),
        };
        notices.push(service_notice(service, Level::Warning, message));
    }
    notices
}

/// "Service nginx: the private key ...; the certificate has expired ... and is self-signed"
/// (no final full stop). `hostname-not-on-this-server` is not described: the why-not-order text
/// says it.
fn describe_reasons(
    service: &ServiceFacts,
    reasons: &[Reason],
    facts: &HostFacts,
    params: &Params,
) -> String {
    let mut clauses = Vec::new();
    let mut cert_predicates = Vec::new();
    let cert = match &service.certificate {
        CertificateState::Ok(cert) => cert,
        CertificateState::Missing(path) => {
            clauses.push(format!("the certificate file is missing ({path})"));
            return finish_description(&service.name, clauses);
        }
        CertificateState::Unreadable(why) => {
            clauses.push(format!("the certificate file cannot be read ({why})"));
            return finish_description(&service.name, clauses);
        }
        CertificateState::Malformed(why) => {
            clauses.push(format!("the certificate file holds no usable certificate ({why})"));
            return finish_description(&service.name, clauses);
        }
    };
    let now = i128::from(facts.now);
    for reason in reasons {
        match reason {
            Reason::Missing | Reason::Unreadable | Reason::Malformed => {
                clauses.push(match &service.key {
                    KeyStatus::Missing(path) => {
                        format!("the private key file is missing ({path})")
                    }
                    KeyStatus::Unreadable(why) => {
                        format!("the private key file cannot be read ({why})")
                    }
                    KeyStatus::Malformed(why) => {
                        format!("the private key file holds no usable private key ({why})")
                    }
                    _ => "the private key file is not usable".to_string(),
                });
            }
            Reason::KeyMismatch => {
                clauses.push("the private key does not belong to the certificate".to_string());
            }
            Reason::Expired => cert_predicates.push(match intermediate_expiring_first(cert) {
                Some(e) if now < i128::from(cert.not_after) => format!(
                    "is served with an intermediate certificate ({}) that expired {} ago (on {})",
                    e.subject,
                    format_duration(now - i128::from(e.not_after)),
                    format_time(e.not_after.into())
                ),
                _ => format!(
                    "expired {} ago (on {})",
                    format_duration(now - i128::from(cert.not_after)),
                    format_time(cert.not_after.into())
                ),
            }),
            Reason::NotYetValid => {
                cert_predicates.push(format!("is not valid before {}", format_time(cert.not_before.into())))
            }
            Reason::Revoked => cert_predicates.push(match &cert.revocation {
                Revocation::Revoked(details) => format!(
                    "was revoked by its CA on {} (reason: {})",
                    format_time(details.revoked_at.into()),
                    details.reason
                ),
                _ => "was revoked by its CA".to_string(),
            }),
            Reason::WeakSignature => cert_predicates.push(match weak_signature_in_chain(cert) {
                Some(e) if !is_weak_signature(&cert.signature_algorithm) => format!(
                    "has an intermediate certificate ({}) signed with a weak algorithm ({})",
                    e.subject, e.signature_algorithm
                ),
                _ => format!("is signed with a weak algorithm ({})", cert.signature_algorithm),
            }),
            Reason::WeakKey => {
                let in_chain = weak_key_in_chain(cert, params).filter(|_| !is_weak_key(cert, params));
                let key = in_chain.map_or(&cert.public_key, |e| &e.public_key);
                let whose =
                    in_chain.map(|e| format!("has an intermediate certificate ({}) that ", e.subject));
                let described = match key.kind {
                    KeyKind::Rsa => format!(
                        "has a weak key (RSA, {} bits; at least {} are required)",
                        key.bits, params.min_rsa_bits
                    ),
                    KeyKind::Dsa => "has a deprecated DSA key".to_string(),
                    _ => format!(
                        "has a weak key (EC, {} bits{}; at least 256 are required)",
                        key.bits,
                        key.curve.as_deref().map(|curve| format!(", {curve}")).unwrap_or_default()
                    ),
                };
                cert_predicates.push(match whose {
                    Some(whose) => format!("{whose}{described}"),
                    None => described,
                });
            }
            Reason::SelfSigned => cert_predicates.push("is self-signed".to_string()),
            Reason::UntrustedChain => cert_predicates.push(match (&cert.path, &cert.chain_status) {
                (PathStatus::Incomplete(why), _) | (_, ChainStatus::Incomplete(why)) => {
                    format!("has an incomplete chain ({why})")
                }
                (PathStatus::Untrusted(why) | PathStatus::Invalid(why), _)
                | (_, ChainStatus::Untrusted(why)) => {
                    format!("is not trusted ({why})")
                }
                _ => "is not trusted".to_string(),
            }),
            Reason::HostnameMismatch => {
                cert_predicates.push(format!("does not cover the hostname {}", facts.hostname))
            }
            Reason::ExpiringSoon => cert_predicates.push(match intermediate_expiring_first(cert) {
                Some(e) => format!(
                    "is served with an intermediate certificate ({}) that expires in {} (on {}), before the \
                     certificate itself",
                    e.subject,
                    format_duration(i128::from(e.not_after) - now),
                    format_time(e.not_after.into())
                ),
                None => format!(
                    "expires in {} (on {})",
                    format_duration(i128::from(cert.not_after) - now),
                    format_time(cert.not_after.into())
                ),
            }),
            Reason::RenewalWindow => cert_predicates.push(
                match cert.renewal_window.as_ref().and_then(|w| w.explanation_url.as_deref()) {
                    Some(url) => {
                        format!("is due for renewal according to its CA's renewal information (see {url})")
                    }
                    None => "is due for renewal according to its CA's renewal information".to_string(),
                },
            ),
            Reason::HostnameNotOnThisServer | Reason::StaleEndpoint => {}
            Reason::Other(word) => cert_predicates.push(format!("has a problem ({word})")),
        }
    }
    if !cert_predicates.is_empty() {
        clauses.push(format!("the certificate {}", join_and(&cert_predicates)));
    }
    finish_description(&service.name, clauses)
}

fn finish_description(name: &str, clauses: Vec<String>) -> String {
    format!("Service {name}: {}", clauses.join("; "))
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A duration for people: "24 days", "47 hours", "12 minutes", "30 seconds" (rounded down).
pub fn format_duration(seconds: i128) -> String {
    let seconds = seconds.max(0);
    let (n, unit) = if seconds >= 2 * i128::from(DAY) {
        (seconds / i128::from(DAY), "day")
    } else if seconds >= 2 * 3600 {
        (seconds / 3600, "hour")
    } else if seconds >= 2 * 60 {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

/// A timestamp as "2025-06-15 14:30 UTC" (proleptic Gregorian calendar).
pub fn format_time(timestamp: i128) -> String {
    let days = timestamp.div_euclid(i128::from(DAY));
    let second_of_day = timestamp.rem_euclid(i128::from(DAY));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", second_of_day / 3600, second_of_day % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AcmeFacts, PublicKey, RevokedDetails, ServedEndpoint};

    const NOW: Timestamp = 1_750_000_000; // 2025-06-15 15:06:40 UTC
    const HOST: &str = "host.example.com";
    const FINGERPRINT: &str = "abababababababababababababababababababababababababababababababab";

    /// A healthy certificate: `lifetime_days` long, `left` seconds left, from `issuer_org`.
    fn cert_from(issuer_org: &str, lifetime_days: i64, left: i64) -> Certificate {
        let not_after = NOW + left;
        Certificate {
            subject_cn: Some(HOST.to_string()),
            dns_names: vec![HOST.to_string()],
            ip_addresses: vec![],
            issuer_cn: Some("R11".to_string()),
            issuer_org: Some(issuer_org.to_string()),
            serial: "03a1".to_string(),
            sha256_fingerprint: FINGERPRINT.to_string(),
            not_before: not_after - lifetime_days * DAY,
            not_after,
            public_key: PublicKey { kind: KeyKind::Rsa, bits: 2048, curve: None },
            signature_algorithm: "sha256WithRSAEncryption".to_string(),
            self_signed: false,
            chain_status: ChainStatus::Trusted,
            path: PathStatus::NotChecked,
            chain: vec![],
            revocation: Revocation::Good,
            renewal_window: None,
        }
    }

    /// A healthy 90-day Let's Encrypt certificate with 60 days left.
    fn cert() -> Certificate {
        cert_from("Let's Encrypt", 90, 60 * DAY)
    }

    fn service(name: &str, cert: Certificate) -> ServiceFacts {
        ServiceFacts {
            name: name.to_string(),
            certificate: CertificateState::Ok(cert),
            key: KeyStatus::Matches,
            covers_hostname: true,
            served: vec![],
            group: Some(HOSTNAME_GROUP.to_string()),
            check_only: false,
        }
    }

    fn broken_service(name: &str, certificate: CertificateState) -> ServiceFacts {
        ServiceFacts {
            name: name.to_string(),
            certificate,
            key: KeyStatus::NotChecked,
            covers_hostname: false,
            served: vec![],
            group: Some(HOSTNAME_GROUP.to_string()),
            check_only: false,
        }
    }

    /// A server where an order is possible.
    fn facts(services: Vec<ServiceFacts>) -> HostFacts {
        HostFacts {
            now: NOW,
            hostname: HOST.to_string(),
            hostname_is_fqdn: true,
            hostname_dns: DnsStatus::PointsToMainIp,
            caa: CaaStatus::Allows,
            disable_auto_hostname_certificate: false,
            disable_service_certificate_management: false,
            acme: Some(AcmeFacts {
                directory_url: "https://acme-v02.api.letsencrypt.org/directory".to_string(),
            }),
            groups: vec![GroupFacts {
                name: HOSTNAME_GROUP.to_string(),
                names: vec![HOST.to_string()],
                orderable: true,
                pending_order: None,
                next_order_not_before: None,
            }],
            params: vec![],
            services,
        }
    }

    fn reasons(service: &ServiceFacts) -> Vec<Reason> {
        service_reasons(service, NOW, &Params::default())
    }

    fn reasons_of(cert: Certificate) -> Vec<Reason> {
        reasons(&service("nginx", cert))
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn only_plan(plan: &Plan) -> &ServicePlan {
        assert_eq!(plan.services.len(), 1, "{plan:?}");
        &plan.services[0]
    }

    fn service_notices<'a>(plan: &'a Plan, name: &str) -> Vec<&'a Notice> {
        plan.notices.iter().filter(|n| n.service.as_deref() == Some(name)).collect()
    }

    // ---- healthy ---------------------------------------------------------------------------

    #[test]
    fn healthy_certificate_is_kept_silently() {
        let plan = evaluate(&facts(vec![service("nginx", cert())]));
        assert_eq!(
            plan.services,
            vec![ServicePlan { service: "nginx".to_string(), decision: Decision::Keep, reasons: vec![] }]
        );
        assert!(plan.orders.is_empty());
        assert!(plan.notices.is_empty(), "{:?}", plan.notices);
    }

    // ---- expiring soon ---------------------------------------------------------------------

    #[test]
    fn lets_encrypt_expiring_soon_below_25_days() {
        let at = |left| reasons_of(cert_from("Let's Encrypt", 90, left));
        assert_eq!(at(24 * DAY), vec![Reason::ExpiringSoon]);
        assert_eq!(at(25 * DAY - 1), vec![Reason::ExpiringSoon]);
        assert_eq!(at(25 * DAY), vec![]);
        assert_eq!(at(26 * DAY), vec![]);
    }

    #[test]
    fn lets_encrypt_is_recognised_case_insensitively_including_staging() {
        for org in ["Let's Encrypt", "(STAGING) Let's Encrypt", "LET'S ENCRYPT"] {
            let cert = cert_from(org, 90, 24 * DAY);
            assert!(is_lets_encrypt(&cert), "{org}");
            assert_eq!(reasons_of(cert), vec![Reason::ExpiringSoon], "{org}");
        }
        let mut no_org = cert();
        no_org.issuer_org = None;
        assert!(!is_lets_encrypt(&no_org));
        assert!(!is_lets_encrypt(&cert_from("Lets Encrypt", 90, DAY)));
    }

    #[test]
    fn other_issuer_expiring_soon_below_3_days() {
        let at = |left| reasons_of(cert_from("DigiCert Inc", 365, left));
        assert_eq!(at(2 * DAY), vec![Reason::ExpiringSoon]);
        assert_eq!(at(3 * DAY - 1), vec![Reason::ExpiringSoon]);
        assert_eq!(at(3 * DAY), vec![]);
        assert_eq!(at(4 * DAY), vec![]);
        // 24 days left is fine for a non-Let's Encrypt certificate.
        assert_eq!(at(24 * DAY), vec![]);
    }

    #[test]
    fn six_day_certificate_uses_a_third_of_its_lifetime() {
        // 6 days × 33 % = 171,072 s (47.52 hours).
        let cert = cert_from("Let's Encrypt", 6, 0);
        assert_eq!(expiring_soon_threshold(&cert, &Params::default()), 171_072);
        let at = |left| reasons_of(cert_from("Let's Encrypt", 6, left));
        assert_eq!(at(171_071), vec![Reason::ExpiringSoon]);
        assert_eq!(at(171_072), vec![]);
        // A fresh 6-day certificate is not re-ordered on every run.
        assert_eq!(at(6 * DAY), vec![]);
        assert_eq!(at(3 * DAY), vec![]);
    }

    #[test]
    fn forty_five_day_certificate_uses_a_third_of_its_lifetime() {
        // 45 days × 33 % = 1,283,040 s (~14.85 days).
        let cert = cert_from("Let's Encrypt", 45, 0);
        assert_eq!(expiring_soon_threshold(&cert, &Params::default()), 1_283_040);
        let at = |left| reasons_of(cert_from("Let's Encrypt", 45, left));
        assert_eq!(at(1_283_039), vec![Reason::ExpiringSoon]);
        assert_eq!(at(1_283_040), vec![]);
        // 20 days into its life (25 days left) it is not replaced.
        assert_eq!(at(25 * DAY), vec![]);
        assert_eq!(at(24 * DAY), vec![]);
    }

    #[test]
    fn short_lifetime_rule_applies_only_below_twice_the_threshold() {
        // Let's Encrypt: 50 days is exactly twice 25 days, so the fixed threshold applies.
        let fifty = cert_from("Let's Encrypt", 50, 0);
        assert_eq!(expiring_soon_threshold(&fifty, &Params::default()), 25 * i128::from(DAY));
        let just_under = Certificate { not_before: fifty.not_before + 1, ..fifty };
        assert_eq!(
            expiring_soon_threshold(&just_under, &Params::default()),
            (50 * i128::from(DAY) - 1) * 33 / 100
        );
        // Other issuers: 6 days is twice 3 days, so the fixed 3 days apply.
        let six_other = cert_from("DigiCert Inc", 6, 0);
        assert_eq!(expiring_soon_threshold(&six_other, &Params::default()), 3 * i128::from(DAY));
        let five_other = cert_from("DigiCert Inc", 5, 0);
        assert_eq!(expiring_soon_threshold(&five_other, &Params::default()), 5 * i128::from(DAY) * 33 / 100);
    }

    #[test]
    fn expiring_soon_is_routine_renewal_with_info_notice() {
        let plan = evaluate(&facts(vec![service("nginx", cert_from("Let's Encrypt", 90, 24 * DAY))]));
        let sp = only_plan(&plan);
        assert_eq!(sp.decision, Decision::Replace);
        assert_eq!(sp.reasons, vec![Reason::ExpiringSoon]);
        assert!(!plan.orders.is_empty());
        let notices = service_notices(&plan, "nginx");
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].level, Level::Info);
        assert!(notices[0].message.contains("nginx"), "{}", notices[0].message);
        assert!(notices[0].message.contains("expires in 24 days"), "{}", notices[0].message);
        assert!(notices[0].message.contains(HOST), "{}", notices[0].message);
    }

    // ---- weak signature and key ------------------------------------------------------------

    #[test]
    fn weak_signature_algorithms() {
        for weak in [
            "sha1WithRSAEncryption",
            "ecdsa-with-SHA1",
            "dsaWithSHA1",
            "md5WithRSAEncryption",
            "md2WithRSAEncryption",
            "MD4withRSA",
        ] {
            assert!(is_weak_signature(weak), "{weak}");
            let mut c = cert();
            c.signature_algorithm = weak.to_string();
            assert_eq!(reasons_of(c), vec![Reason::WeakSignature], "{weak}");
        }
        for strong in [
            "sha256WithRSAEncryption",
            "ecdsa-with-SHA256",
            "sha384WithRSAEncryption",
            "ED25519",
            "RSASSA-PSS",
        ] {
            assert!(!is_weak_signature(strong), "{strong}");
        }
    }

    #[test]
    fn weak_signature_is_replaced_with_warning() {
        let mut c = cert();
        c.signature_algorithm = "sha1WithRSAEncryption".to_string();
        let plan = evaluate(&facts(vec![service("postfix", c)]));
        let sp = only_plan(&plan);
        assert_eq!(sp.decision, Decision::Replace);
        assert!(!plan.orders.is_empty());
        let notices = service_notices(&plan, "postfix");
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].level, Level::Warning);
        assert!(
            notices[0].message.contains("weak algorithm (sha1WithRSAEncryption)"),
            "{}",
            notices[0].message
        );
    }

    fn with_key(kind: KeyKind, bits: u32, curve: Option<&str>) -> Certificate {
        let mut c = cert();
        c.public_key = PublicKey { kind, bits, curve: curve.map(str::to_string) };
        c
    }

    #[test]
    fn weak_keys() {
        assert_eq!(reasons_of(with_key(KeyKind::Rsa, 1024, None)), vec![Reason::WeakKey]);
        assert_eq!(reasons_of(with_key(KeyKind::Rsa, 2047, None)), vec![Reason::WeakKey]);
        assert_eq!(reasons_of(with_key(KeyKind::Rsa, 2048, None)), vec![]);
        assert_eq!(reasons_of(with_key(KeyKind::Dsa, 2048, None)), vec![Reason::WeakKey]);
        assert_eq!(reasons_of(with_key(KeyKind::Ec, 224, Some("secp224r1"))), vec![Reason::WeakKey]);
        assert_eq!(reasons_of(with_key(KeyKind::Ec, 256, Some("prime256v1"))), vec![]);
        assert_eq!(reasons_of(with_key(KeyKind::Ed25519, 256, None)), vec![]);
        assert_eq!(reasons_of(with_key(KeyKind::Ed448, 456, None)), vec![]);
        assert_eq!(reasons_of(with_key(KeyKind::Other, 0, None)), vec![]);
    }

    #[test]
    fn min_rsa_bits_parameter() {
        let p = Params { min_rsa_bits: 4096, ..Params::default() };
        let svc = service("nginx", with_key(KeyKind::Rsa, 2048, None));
        assert_eq!(service_reasons(&svc, NOW, &p), vec![Reason::WeakKey]);
        let mut f = facts(vec![svc]);
        f.params = params(&[("min-rsa-bits", "4096")]);
        let plan = evaluate(&f);
        assert_eq!(only_plan(&plan).reasons, vec![Reason::WeakKey]);
        assert!(plan.notices[0].message.contains("RSA, 2048 bits; at least 4096"), "{:?}", plan.notices);
    }

    // ---- validity ----------------------------------------------------------------------------

    #[test]
    fn expired_at_and_after_not_after() {
        assert_eq!(reasons_of(cert_from("Let's Encrypt", 90, 0)), vec![Reason::Expired]);
        assert_eq!(reasons_of(cert_from("Let's Encrypt", 90, -3 * DAY)), vec![Reason::Expired]);
        // One second before: expiring soon, not expired.
        assert_eq!(reasons_of(cert_from("Let's Encrypt", 90, 1)), vec![Reason::ExpiringSoon]);
    }

    #[test]
    fn expired_is_replaced_or_placeholdered_with_error() {
        let plan = evaluate(&facts(vec![service("dovecot", cert_from("Let's Encrypt", 90, -3 * DAY))]));
        let sp = only_plan(&plan);
        assert_eq!(sp.decision, Decision::ReplaceOrPlaceholder);
        assert_eq!(sp.reasons, vec![Reason::Expired]);
        assert!(!plan.orders.is_empty());
        let notices = service_notices(&plan, "dovecot");
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].level, Level::Error);
        assert!(
            notices[0].message.contains("expired 3 days ago (on 2025-06-12 15:06 UTC)"),
            "{}",
            notices[0].message
        );
        assert!(notices[0].message.contains("3 days ago"), "{}", notices[0].message);
        assert!(notices[0].message.contains("placeholder"), "{}", notices[0].message);
    }

    #[test]
    fn not_yet_valid_before_not_before() {
        let mut c = cert();
        c.not_before = NOW + 1;
        assert_eq!(reasons_of(c.clone()), vec![Reason::NotYetValid]);
        c.not_before = NOW;
        assert_eq!(reasons_of(c), vec![]);
        let mut c = cert();
        c.not_before = NOW + DAY;
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        assert_eq!(only_plan(&plan).decision, Decision::ReplaceOrPlaceholder);
        assert_eq!(plan.notices[0].level, Level::Error);
        assert!(plan.notices[0].message.contains("not valid before 2025-06-16"));
    }

    // ---- trust ----------------------------------------------------------------------------

    #[test]
    fn expired_or_not_yet_valid_leaf_gives_no_untrusted_chain() {
        let mut c = cert();
        c.not_after = NOW - DAY;
        c.chain_status = ChainStatus::Untrusted("certificate has expired".into());
        assert_eq!(reasons_of(c), vec![Reason::Expired]);
        let mut c = cert();
        c.not_before = NOW + DAY;
        c.chain_status = ChainStatus::Untrusted("certificate is not yet valid".into());
        assert_eq!(reasons_of(c), vec![Reason::NotYetValid]);
    }

    #[test]
    fn self_signed_without_duplicate_untrusted_chain() {
        let mut c = cert();
        c.self_signed = true;
        c.chain_status = ChainStatus::Untrusted("self-signed certificate".to_string());
        assert_eq!(reasons_of(c.clone()), vec![Reason::SelfSigned]);
        let plan = evaluate(&facts(vec![service("exim", c)]));
        assert_eq!(only_plan(&plan).decision, Decision::Replace);
        assert_eq!(plan.notices[0].level, Level::Warning);
        assert!(plan.notices[0].message.contains("is self-signed"));
    }

    #[test]
    fn untrusted_or_incomplete_chain() {
        let mut c = cert();
        c.chain_status = ChainStatus::Untrusted("unable to get local issuer certificate".to_string());
        assert_eq!(reasons_of(c.clone()), vec![Reason::UntrustedChain]);
        c.chain_status = ChainStatus::Incomplete("missing intermediate R11".to_string());
        assert_eq!(reasons_of(c.clone()), vec![Reason::UntrustedChain]);
        c.chain_status = ChainStatus::NotChecked;
        assert_eq!(reasons_of(c), vec![]);
    }

    #[test]
    fn hostname_mismatch() {
        let mut svc = service("nginx", cert());
        svc.covers_hostname = false;
        assert_eq!(reasons(&svc), vec![Reason::HostnameMismatch]);
        let plan = evaluate(&facts(vec![svc]));
        assert_eq!(only_plan(&plan).decision, Decision::Replace);
        assert!(plan.notices[0].message.contains("does not cover the hostname host.example.com"));
    }

    // ---- revocation ---------------------------------------------------------------------------

    #[test]
    fn revoked_is_unusable() {
        let mut c = cert();
        c.revocation = Revocation::Revoked(RevokedDetails {
            revoked_at: NOW - DAY,
            reason: "keyCompromise".to_string(),
        });
        assert_eq!(reasons_of(c.clone()), vec![Reason::Revoked]);
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        assert_eq!(only_plan(&plan).decision, Decision::ReplaceOrPlaceholder);
        assert_eq!(plan.notices[0].level, Level::Error);
        assert!(plan.notices[0].message.contains("keyCompromise"));
    }

    #[test]
    fn revocation_unknown_gives_a_warning_only() {
        let mut c = cert();
        c.revocation = Revocation::Unknown("OCSP responder timed out".to_string());
        assert_eq!(reasons_of(c.clone()), vec![]);
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        let sp = only_plan(&plan);
        assert_eq!(sp.decision, Decision::Keep);
        assert!(sp.reasons.is_empty());
        assert!(plan.orders.is_empty());
        assert_eq!(plan.notices.len(), 1);
        assert_eq!(plan.notices[0].level, Level::Warning);
        assert_eq!(plan.notices[0].service.as_deref(), Some("nginx"));
        assert!(plan.notices[0].message.contains("OCSP responder timed out"));
        assert!(plan.notices[0].message.contains("not treated as revoked"));
    }

    #[test]
    fn revocation_not_checked_gives_nothing() {
        let mut c = cert();
        c.revocation = Revocation::NotChecked;
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        assert!(only_plan(&plan).reasons.is_empty());
        assert!(plan.notices.is_empty());
    }

    // ---- key and files ------------------------------------------------------------------------

    #[test]
    fn key_problems() {
        let cases = [
            (KeyStatus::Mismatch, Reason::KeyMismatch, "does not belong"),
            (
                KeyStatus::Missing("/etc/ssl/private/nginx.key".to_string()),
                Reason::Missing,
                "private key file is missing (/etc/ssl/private/nginx.key)",
            ),
            (
                KeyStatus::Unreadable("/k: permission denied".to_string()),
                Reason::Unreadable,
                "private key file cannot be read (/k: permission denied)",
            ),
            (
                KeyStatus::Malformed("/k: no PEM private key".to_string()),
                Reason::Malformed,
                "holds no usable private key (/k: no PEM private key)",
            ),
        ];
        for (key, reason, text) in cases {
            let mut svc = service("nginx", cert());
            svc.key = key;
            assert_eq!(reasons(&svc), vec![reason.clone()]);
            let plan = evaluate(&facts(vec![svc]));
            let sp = only_plan(&plan);
            assert_eq!(sp.decision, Decision::ReplaceOrPlaceholder, "{reason:?}");
            assert_eq!(plan.notices[0].level, Level::Error);
            assert!(plan.notices[0].message.contains(text), "{}", plan.notices[0].message);
        }
    }

    #[test]
    fn certificate_file_problems_give_only_their_own_reason() {
        let cases = [
            (
                CertificateState::Missing("/etc/ssl/certs/nginx.pem".to_string()),
                Reason::Missing,
                "certificate file is missing (/etc/ssl/certs/nginx.pem)",
            ),
            (
                CertificateState::Unreadable("/c: permission denied".to_string()),
                Reason::Unreadable,
                "cannot be read (/c: permission denied)",
            ),
            (
                CertificateState::Malformed("/c: no PEM certificate".to_string()),
                Reason::Malformed,
                "holds no usable certificate (/c: no PEM certificate)",
            ),
        ];
        for (state, reason, text) in cases {
            let svc = broken_service("nginx", state);
            assert_eq!(reasons(&svc), vec![reason.clone()]);
            let plan = evaluate(&facts(vec![svc]));
            let sp = only_plan(&plan);
            assert_eq!(sp.decision, Decision::ReplaceOrPlaceholder);
            assert_eq!(sp.reasons, vec![reason]);
            assert!(!plan.orders.is_empty());
            assert_eq!(plan.notices[0].level, Level::Error);
            assert!(plan.notices[0].message.contains(text), "{}", plan.notices[0].message);
        }
    }

    #[test]
    fn reasons_come_in_table_order() {
        let mut c = cert_from("Let's Encrypt", 90, 10 * DAY);
        c.signature_algorithm = "sha1WithRSAEncryption".to_string();
        c.public_key.bits = 1024;
        c.chain_status = ChainStatus::Incomplete("missing intermediate".to_string());
        c.renewal_window =
            Some(RenewalWindow { start: NOW - 2 * DAY, end: NOW - DAY, explanation_url: None });
        let mut svc = service("nginx", c);
        svc.key = KeyStatus::Mismatch;
        svc.covers_hostname = false;
        assert_eq!(
            reasons(&svc),
            vec![
                Reason::KeyMismatch,
                Reason::WeakSignature,
                Reason::WeakKey,
                Reason::UntrustedChain,
                Reason::HostnameMismatch,
                Reason::ExpiringSoon,
                Reason::RenewalWindow,
            ]
        );
    }

    // ---- why no order ---------------------------------------------------------------------

    /// (how to break the facts, expected cause, text the notices must contain, ineligible?)
    type Cause = (fn(&mut HostFacts), WhyNotOrder, &'static str, bool);

    fn causes() -> Vec<Cause> {
        vec![
            (
                |f| f.disable_auto_hostname_certificate = true,
                WhyNotOrder::AutoHostnameCertificateDisabled,
                "automatic hostname certificates are disabled (disable_auto_hostname_certificate)",
                false,
            ),
            (
                |f| f.acme = None,
                WhyNotOrder::NoCertificateAuthority,
                "no certificate authority is configured",
                false,
            ),
            (
                |f| f.hostname_is_fqdn = false,
                WhyNotOrder::HostnameNotFqdn,
                "the hostname is not a fully qualified domain name",
                true,
            ),
            (
                |f| f.hostname_dns = DnsStatus::PointsElsewhere,
                WhyNotOrder::DnsPointsElsewhere,
                "the hostname does not resolve to this server's main IP",
                true,
            ),
            (
                |f| f.hostname_dns = DnsStatus::DoesNotResolve,
                WhyNotOrder::DnsDoesNotResolve,
                "the hostname does not resolve in DNS",
                true,
            ),
            (
                |f| f.caa = CaaStatus::Forbids("digicert.com, sectigo.com".to_string()),
                WhyNotOrder::CaaForbids("digicert.com, sectigo.com".to_string()),
                "CAA records for the hostname do not allow the configured CA \
                 (allowed: digicert.com, sectigo.com)",
                true,
            ),
        ]
    }

    #[test]
    fn each_why_not_order_cause_with_a_usable_defect_keeps_with_warning() {
        for (breaks, cause, text, ineligible) in causes() {
            let mut c = cert_from("Let's Encrypt", 90, 10 * DAY);
            c.self_signed = true;
            let mut f = facts(vec![service("nginx", c)]);
            breaks(&mut f);
            assert_eq!(why_not_order(&f), Some(cause.clone()));
            assert_eq!(cause.message(), text);
            assert_eq!(cause.makes_server_ineligible(), ineligible);
            let plan = evaluate(&f);
            let sp = only_plan(&plan);
            assert_eq!(sp.decision, Decision::Keep, "{cause:?}");
            let mut expected = vec![Reason::SelfSigned, Reason::ExpiringSoon];
            if ineligible {
                expected.push(Reason::HostnameNotOnThisServer);
            }
            assert_eq!(sp.reasons, expected, "{cause:?}");
            assert!(plan.orders.is_empty());
            assert_eq!(plan.notices.len(), 1);
            assert_eq!(plan.notices[0].level, Level::Warning);
            let message = &plan.notices[0].message;
            assert!(message.contains(text), "{message}");
            assert!(message.contains("nginx"), "{message}");
            assert!(message.contains("expires in 10 days"), "{message}");
            assert!(message.contains("is kept"), "{message}");
        }
    }

    #[test]
    fn each_why_not_order_cause_with_an_unusable_certificate_gives_a_placeholder() {
        for (breaks, cause, text, ineligible) in causes() {
            let mut f = facts(vec![
                service("nginx", cert_from("Let's Encrypt", 90, -DAY)),
                service("dovecot", cert()),
            ]);
            breaks(&mut f);
            let plan = evaluate(&f);
            assert_eq!(plan.services[0].decision, Decision::Placeholder, "{cause:?}");
            let mut expected = vec![Reason::Expired];
            if ineligible {
                expected.push(Reason::HostnameNotOnThisServer);
            }
            assert_eq!(plan.services[0].reasons, expected);
            // A healthy certificate stays as it is, without the ineligibility reason.
            assert_eq!(plan.services[1].decision, Decision::Keep);
            assert!(plan.services[1].reasons.is_empty());
            assert!(plan.orders.is_empty());
            assert_eq!(plan.notices.len(), 1);
            assert_eq!(plan.notices[0].level, Level::Error);
            assert!(plan.notices[0].message.contains(text));
            assert!(plan.notices[0].message.contains("self-signed placeholder"));
        }
    }

    #[test]
    fn why_not_order_gives_the_first_failing_condition() {
        let mut f = facts(vec![]);
        f.disable_auto_hostname_certificate = true;
        f.acme = None;
        f.hostname_is_fqdn = false;
        f.hostname_dns = DnsStatus::DoesNotResolve;
        f.caa = CaaStatus::Forbids("x".to_string());
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::AutoHostnameCertificateDisabled));
        f.disable_auto_hostname_certificate = false;
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::NoCertificateAuthority));
        f.acme = facts(vec![]).acme;
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::HostnameNotFqdn));
        f.hostname = "host.corp.internal".to_string();
        assert_eq!(
            why_not_order(&f),
            Some(WhyNotOrder::HostnameReservedForInternalUse("host.corp.internal".to_string()))
        );
        assert!(why_not_order(&f).expect("why").message().starts_with(
            "the hostname host.corp.internal is a name reserved for internal use (RFC 6761/.internal)"
        ));
        f.hostname = "server1".to_string();
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::HostnameNotFqdn));
        f.hostname = HOST.to_string();
        f.hostname_is_fqdn = true;
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::DnsDoesNotResolve));
        f.hostname_dns = DnsStatus::PointsToMainIp;
        assert_eq!(why_not_order(&f), Some(WhyNotOrder::CaaForbids("x".to_string())));
        f.caa = CaaStatus::NotChecked;
        assert_eq!(why_not_order(&f), None);
    }

    #[test]
    fn dns_not_checked_gets_the_benefit_of_the_doubt() {
        let mut f = facts(vec![service("nginx", cert_from("Let's Encrypt", 90, DAY))]);
        f.hostname_dns = DnsStatus::NotChecked;
        assert_eq!(why_not_order(&f), None);
        let plan = evaluate(&f);
        assert_eq!(only_plan(&plan).decision, Decision::Replace);
        assert!(!plan.orders.is_empty());
    }

    #[test]
    fn disable_auto_hostname_certificate_never_orders() {
        let mut f = facts(vec![
            broken_service("a", CertificateState::Missing("/a".to_string())),
            service("b", cert_from("Let's Encrypt", 90, DAY)),
        ]);
        f.disable_auto_hostname_certificate = true;
        let plan = evaluate(&f);
        assert!(plan.orders.is_empty());
        assert_eq!(plan.services[0].decision, Decision::Placeholder);
        assert_eq!(plan.services[1].decision, Decision::Keep);
        assert_eq!(plan.services[1].reasons, vec![Reason::ExpiringSoon]);
    }

    #[test]
    fn pending_order_and_back_off_do_not_change_the_answer() {
        let base = facts(vec![service("nginx", cert_from("Let's Encrypt", 90, DAY))]);
        let mut f = base.clone();
        f.groups[0].pending_order = Some(crate::types::PendingOrder {
            url: "https://acme.example/order/1".to_string(),
            created: NOW - 3600,
            names: vec![HOST.to_string()],
            status: "processing".to_string(),
        });
        f.groups[0].next_order_not_before = Some(NOW + DAY);
        assert_eq!(evaluate(&f), evaluate(&base));
    }

    // ---- the chain (contract 0.2.0) -----------------------------------------------------------

    /// A served intermediate: RSA 2048, SHA-256-signed, valid long after the leaf.
    fn intermediate() -> ChainElement {
        ChainElement {
            subject: "CN=Intermediate, O=Example CA".to_string(),
            issuer: "CN=Root, O=Example CA".to_string(),
            serial: "01".to_string(),
            sha256_fingerprint: FINGERPRINT.to_string(),
            not_before: NOW - 400 * DAY,
            not_after: NOW + 1000 * DAY,
            public_key: PublicKey { kind: KeyKind::Rsa, bits: 2048, curve: None },
            signature_algorithm: "sha256WithRSAEncryption".to_string(),
            is_ca: true,
            self_signed: false,
            source: ChainSource::File,
        }
    }

    fn root() -> ChainElement {
        ChainElement {
            subject: "CN=Root, O=Example CA".to_string(),
            issuer: "CN=Root, O=Example CA".to_string(),
            self_signed: true,
            source: ChainSource::TrustStore,
            ..intermediate()
        }
    }

    fn with_chain(chain: Vec<ChainElement>) -> Certificate {
        let mut c = cert();
        c.path = PathStatus::Valid;
        c.chain = chain;
        c
    }

    #[test]
    fn a_sound_chain_adds_nothing() {
        assert_eq!(reasons_of(with_chain(vec![intermediate(), root()])), Vec::<Reason>::new());
    }

    #[test]
    fn an_intermediate_signed_with_sha1_or_md5_is_a_weak_signature() {
        for weak in ["sha1WithRSAEncryption", "md5WithRSAEncryption", "ecdsa-with-SHA1"] {
            let mut int = intermediate();
            int.signature_algorithm = weak.to_string();
            let plan = evaluate(&facts(vec![service("nginx", with_chain(vec![int, root()]))]));
            assert_eq!(only_plan(&plan).decision, Decision::Replace, "{weak}");
            assert_eq!(only_plan(&plan).reasons, vec![Reason::WeakSignature], "{weak}");
            assert!(
                service_notices(&plan, "nginx")[0].message.contains(&format!(
                    "has an intermediate certificate (CN=Intermediate, O=Example CA) signed with a weak \
                     algorithm ({weak})"
                )),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn a_roots_own_sha1_self_signature_is_not_weak() {
        let mut r = root();
        r.signature_algorithm = "sha1WithRSAEncryption".to_string();
        assert_eq!(reasons_of(with_chain(vec![intermediate(), r])), Vec::<Reason>::new());
    }

    #[test]
    fn a_weak_key_anywhere_in_the_chain_is_a_weak_key() {
        let mut int = intermediate();
        int.public_key.bits = 1024;
        assert_eq!(reasons_of(with_chain(vec![int, root()])), vec![Reason::WeakKey]);
        let mut r = root();
        r.public_key = PublicKey { kind: KeyKind::Dsa, bits: 2048, curve: None };
        assert_eq!(reasons_of(with_chain(vec![intermediate(), r])), vec![Reason::WeakKey]);
    }

    #[test]
    fn an_intermediate_expiring_before_the_leaf_sets_the_expiry() {
        // The leaf has 60 days left; its served intermediate 2 days: the certificate stops
        // working in 2 days.
        let mut int = intermediate();
        int.not_after = NOW + 2 * DAY;
        let c = with_chain(vec![int.clone(), root()]);
        assert_eq!(effective_not_after(&c), NOW + 2 * DAY);
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        assert_eq!(only_plan(&plan).reasons, vec![Reason::ExpiringSoon]);
        assert!(service_notices(&plan, "nginx")[0].message.contains("intermediate certificate"), "{plan:?}");
        // Expired: unusable.
        int.not_after = NOW - 1;
        let mut c = with_chain(vec![int, root()]);
        c.path = PathStatus::Invalid("certificate has expired (chain depth 1)".to_string());
        assert_eq!(reasons_of(c), vec![Reason::Expired]);
        // A root from the trust store that expires first is not served: the leaf's date counts.
        let mut r = root();
        r.not_after = NOW + DAY;
        assert_eq!(reasons_of(with_chain(vec![intermediate(), r])), Vec::<Reason>::new());
    }

    #[test]
    fn the_path_verdict_decides_the_chain_without_the_leafs_dates() {
        let mut c = with_chain(vec![]);
        c.path = PathStatus::Incomplete("the issuer of CN=host is missing".to_string());
        assert_eq!(reasons_of(c.clone()), vec![Reason::UntrustedChain]);
        // An expired leaf on a broken path: both are said (0.1.0 hid the second).
        c.not_after = NOW - 1;
        c.chain_status = ChainStatus::Untrusted("certificate has expired".to_string());
        assert_eq!(reasons_of(c.clone()), vec![Reason::Expired, Reason::UntrustedChain]);
        // An expired leaf on a valid path: only expired.
        c.path = PathStatus::Valid;
        assert_eq!(reasons_of(c), vec![Reason::Expired]);
    }

    // ---- certificate groups and check-only services (contract 0.2.0) ----------------------------

    fn in_group(mut s: ServiceFacts, group: &str) -> ServiceFacts {
        s.group = Some(group.to_string());
        s
    }

    fn shop_group(orderable: bool) -> GroupFacts {
        GroupFacts {
            name: "shop".to_string(),
            names: vec!["shop.example.com".to_string(), "www.shop.example.com".to_string()],
            orderable,
            pending_order: None,
            next_order_not_before: None,
        }
    }

    #[test]
    fn each_group_with_a_service_to_replace_is_ordered_once() {
        let expiring = || cert_from("Let's Encrypt", 90, DAY);
        let mut f = facts(vec![
            service("dovecot", cert()),
            in_group(service("shop-nginx", expiring()), "shop"),
            in_group(service("shop-apache", expiring()), "shop"),
        ]);
        f.groups.push(shop_group(true));
        let plan = evaluate(&f);
        assert_eq!(plan.orders, vec![OrderRequest { group: "shop".to_string() }]);
        assert!(
            service_notices(&plan, "shop-nginx")[0]
                .message
                .contains("A new certificate for shop.example.com")
        );
        f.services[0] = service("dovecot", expiring());
        let plan = evaluate(&f);
        let groups: Vec<&str> = plan.orders.iter().map(|o| o.group.as_str()).collect();
        assert_eq!(groups, ["hostname", "shop"]);
    }

    #[test]
    fn the_hostname_switch_only_stops_the_hostname_group() {
        let expired = || cert_from("Let's Encrypt", 90, -DAY);
        let mut f = facts(vec![service("dovecot", expired()), in_group(service("shop", expired()), "shop")]);
        f.groups.push(shop_group(true));
        f.disable_auto_hostname_certificate = true;
        let plan = evaluate(&f);
        assert_eq!(plan.orders, vec![OrderRequest { group: "shop".to_string() }]);
        assert_eq!(plan.services[0].decision, Decision::Placeholder);
        assert_eq!(plan.services[1].decision, Decision::ReplaceOrPlaceholder);
    }

    #[test]
    fn a_group_the_ca_cannot_issue_for_gets_no_order() {
        let mut f = facts(vec![in_group(service("intranet", cert_from("Let's Encrypt", 90, -DAY)), "shop")]);
        f.groups.push(shop_group(false));
        let plan = evaluate(&f);
        assert!(plan.orders.is_empty());
        assert_eq!(only_plan(&plan).decision, Decision::Placeholder);
        assert!(service_notices(&plan, "intranet")[0].message.contains("cannot issue for the group's names"));
    }

    #[test]
    fn a_check_only_service_is_kept_and_reported_never_ordered_for() {
        let mut s = service("balancer", cert_from("Let's Encrypt", 90, -DAY));
        s.check_only = true;
        s.group = None;
        s.key = KeyStatus::NotChecked;
        let plan = evaluate(&facts(vec![s]));
        assert_eq!(only_plan(&plan).decision, Decision::Keep);
        assert_eq!(only_plan(&plan).reasons, vec![Reason::Expired]);
        assert!(plan.orders.is_empty());
        let notices = service_notices(&plan, "balancer");
        assert_eq!(notices[0].level, Level::Error);
        assert!(notices[0].message.contains("check-only"), "{notices:?}");
    }

    // ---- management disabled ----------------------------------------------------------------

    #[test]
    fn disable_service_certificate_management() {
        let mut weak = cert();
        weak.signature_algorithm = "sha1WithRSAEncryption".to_string();
        let mut revocation_unknown = cert_from("Let's Encrypt", 90, 10 * DAY);
        revocation_unknown.revocation = Revocation::Unknown("no OCSP answer".to_string());
        let mut mismatched = service("mismatched", cert());
        mismatched.key = KeyStatus::Mismatch;
        let mut ari = cert();
        ari.renewal_window =
            Some(RenewalWindow { start: NOW - 2 * DAY, end: NOW - DAY, explanation_url: None });
        let mut f = facts(vec![
            service("expired", cert_from("Let's Encrypt", 90, -DAY)),
            service("expiring", cert_from("Let's Encrypt", 90, DAY)),
            service("ari", ari),
            service("weak", weak),
            mismatched,
            service("unknown", revocation_unknown),
            service("healthy", cert()),
        ]);
        f.disable_service_certificate_management = true;
        // Ineligible as well: that must not add hostname-not-on-this-server here.
        f.hostname_is_fqdn = false;
        let plan = evaluate(&f);
        assert!(plan.orders.is_empty());
        let decisions: Vec<_> = plan.services.iter().map(|s| s.decision).collect();
        assert_eq!(decisions, vec![Decision::Keep; 7]);
        let reasons: Vec<_> = plan.services.iter().map(|s| s.reasons.clone()).collect();
        assert_eq!(
            reasons,
            vec![
                vec![Reason::Expired],
                vec![Reason::ExpiringSoon],
                vec![Reason::RenewalWindow],
                vec![Reason::WeakSignature],
                vec![Reason::KeyMismatch],
                vec![Reason::ExpiringSoon],
                vec![],
            ]
        );
        let summary: Vec<_> = plan.notices.iter().map(|n| (n.level, n.service.as_deref())).collect();
        assert_eq!(
            summary,
            vec![
                (Level::Info, None),
                (Level::Warning, Some("weak")),
                (Level::Error, Some("mismatched")),
                // The revocation warning is not about expiry, so it is still given.
                (Level::Warning, Some("unknown")),
            ]
        );
        assert!(plan.notices[0].message.contains("disable_service_certificate_management"));
        assert!(plan.notices[1].message.contains("is kept"));
        assert!(plan.notices[3].message.contains("no OCSP answer"));
    }

    // ---- ARI ------------------------------------------------------------------------------

    #[test]
    fn fnv1a_64_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn renewal_point_is_derived_from_the_fingerprint() {
        let window = RenewalWindow { start: NOW, end: NOW + 7 * DAY, explanation_url: None };
        // FNV-1a-64("abab…ab") = 6074450870194414181; mod 604800 = 593381.
        assert_eq!(renewal_point(&window, FINGERPRINT), NOW + 593_381);
        // Another certificate gets another point; each stays the same across calls.
        let other = "cd".repeat(32);
        assert_ne!(renewal_point(&window, &other), renewal_point(&window, FINGERPRINT));
        assert_eq!(renewal_point(&window, &other), renewal_point(&window, &other));
    }

    #[test]
    fn renewal_window_before_and_after_the_point() {
        let window = RenewalWindow {
            start: NOW - 593_381,
            end: NOW - 593_381 + 7 * DAY,
            explanation_url: Some("https://letsencrypt.org/incident/1".to_string()),
        };
        assert_eq!(renewal_point(&window, FINGERPRINT), NOW);
        let mut c = cert();
        c.renewal_window = Some(window.clone());
        assert_eq!(reasons_of(c.clone()), vec![Reason::RenewalWindow]);
        let plan = evaluate(&facts(vec![service("nginx", c.clone())]));
        assert_eq!(only_plan(&plan).decision, Decision::Replace);
        assert!(!plan.orders.is_empty());
        assert_eq!(plan.notices[0].level, Level::Info);
        assert!(plan.notices[0].message.contains("https://letsencrypt.org/incident/1"));
        // One second before the point: nothing.
        c.renewal_window = Some(RenewalWindow { start: window.start + 1, end: window.end + 1, ..window });
        assert_eq!(reasons_of(c), vec![]);
    }

    #[test]
    fn renewal_window_with_end_not_after_start_uses_start() {
        let empty = RenewalWindow { start: NOW, end: NOW, explanation_url: None };
        assert_eq!(renewal_point(&empty, FINGERPRINT), NOW);
        let inverted = RenewalWindow { start: NOW + 1, end: NOW - DAY, explanation_url: None };
        assert_eq!(renewal_point(&inverted, FINGERPRINT), NOW + 1);
        let mut c = cert();
        c.renewal_window = Some(empty);
        assert_eq!(reasons_of(c.clone()), vec![Reason::RenewalWindow]);
        c.renewal_window = Some(inverted);
        assert_eq!(reasons_of(c), vec![]);
    }

    #[test]
    fn routine_and_other_reasons_together_give_a_warning() {
        let mut c = cert_from("Let's Encrypt", 90, DAY);
        c.self_signed = true;
        let plan = evaluate(&facts(vec![service("nginx", c)]));
        assert_eq!(only_plan(&plan).decision, Decision::Replace);
        assert_eq!(plan.notices[0].level, Level::Warning);
    }

    // ---- parameters ---------------------------------------------------------------------------

    #[test]
    fn params_default_and_valid_values() {
        assert_eq!(parse_params(&[]), (Params::default(), vec![]));
        let (p, notices) = parse_params(&params(&[
            ("letsencrypt-min-days", "30"),
            ("other-min-days", "0"),
            ("short-lifetime-percent", "50"),
            ("min-rsa-bits", "3072"),
            ("some-other-policy-key", "whatever"),
        ]));
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(
            p,
            Params {
                letsencrypt_min_days: 30,
                other_min_days: 0,
                short_lifetime_percent: 50,
                min_rsa_bits: 3072,
            }
        );
    }

    #[test]
    fn params_invalid_give_a_warning_and_the_default() {
        let cases = [
            ("letsencrypt-min-days", "abc", "not a decimal integer", "25"),
            ("letsencrypt-min-days", "3651", "out of range (0 to 3650)", "25"),
            ("letsencrypt-min-days", "-1", "not a decimal integer", "25"),
            ("other-min-days", "", "not a decimal integer", "3"),
            ("other-min-days", "2.5", "not a decimal integer", "3"),
            ("short-lifetime-percent", "0", "out of range (1 to 99)", "33"),
            ("short-lifetime-percent", "100", "out of range (1 to 99)", "33"),
            ("min-rsa-bits", "511", "out of range (512 to 16384)", "2048"),
            ("min-rsa-bits", "16385", "out of range (512 to 16384)", "2048"),
            ("min-rsa-bits", "99999999999999999999", "out of range (512 to 16384)", "2048"),
        ];
        for (key, value, problem, default) in cases {
            let (p, notices) = parse_params(&params(&[(key, value)]));
            assert_eq!(p, Params::default(), "{key}={value}");
            assert_eq!(notices.len(), 1, "{key}={value}");
            assert_eq!(notices[0].level, Level::Warning);
            assert_eq!(notices[0].service, None);
            let message = &notices[0].message;
            assert!(message.contains(key), "{message}");
            assert!(message.contains(problem), "{message}");
            assert!(message.contains(&format!("default {default}")), "{message}");
        }
        // Range limits themselves are valid.
        let (p, notices) = parse_params(&params(&[
            ("letsencrypt-min-days", "3650"),
            ("short-lifetime-percent", "1"),
            ("min-rsa-bits", "16384"),
        ]));
        assert!(notices.is_empty());
        assert_eq!(p.letsencrypt_min_days, 3650);
        assert_eq!(p.short_lifetime_percent, 1);
        assert_eq!(p.min_rsa_bits, 16384);
    }

    #[test]
    fn params_change_the_thresholds_and_warnings_come_first() {
        let mut f = facts(vec![service("nginx", cert_from("Let's Encrypt", 90, 29 * DAY))]);
        f.params = params(&[("letsencrypt-min-days", "30"), ("min-rsa-bits", "lots")]);
        let plan = evaluate(&f);
        assert_eq!(only_plan(&plan).reasons, vec![Reason::ExpiringSoon]);
        let summary: Vec<_> = plan.notices.iter().map(|n| (n.level, n.service.as_deref())).collect();
        assert_eq!(summary, vec![(Level::Warning, None), (Level::Info, Some("nginx"))]);
        assert!(plan.notices[0].message.contains("min-rsa-bits"));
        // other-min-days = 0: never expiring soon for another issuer.
        let p = Params { other_min_days: 0, ..Params::default() };
        let svc = service("x", cert_from("DigiCert Inc", 365, 1));
        assert_eq!(service_reasons(&svc, NOW, &p), vec![]);
    }

    // ---- served endpoints -----------------------------------------------------------------

    #[test]
    fn stale_endpoint_gives_a_reload_warning_without_changing_the_decision() {
        let mut svc = service("dovecot", cert());
        svc.served = vec![
            ServedEndpoint {
                endpoint: "127.0.0.1:993".to_string(),
                sha256_fingerprint: Some(FINGERPRINT.to_string()),
                matches_installed: true,
                chain_status: ChainStatus::Trusted,
                error: None,
            },
            ServedEndpoint {
                endpoint: "127.0.0.1:995".to_string(),
                sha256_fingerprint: Some("cd".repeat(32)),
                matches_installed: false,
                chain_status: ChainStatus::Trusted,
                error: None,
            },
            ServedEndpoint {
                endpoint: "127.0.0.1:143".to_string(),
                sha256_fingerprint: None,
                matches_installed: false,
                chain_status: ChainStatus::NotChecked,
                error: Some("STARTTLS refused".to_string()),
            },
        ];
        let plan = evaluate(&facts(vec![svc]));
        let sp = only_plan(&plan);
        assert_eq!(sp.decision, Decision::Keep);
        assert!(sp.reasons.is_empty());
        assert!(plan.orders.is_empty());
        assert_eq!(plan.notices.len(), 2);
        assert!(plan.notices.iter().all(|n| n.level == Level::Warning));
        assert!(plan.notices[0].message.contains("127.0.0.1:995"));
        assert!(plan.notices[0].message.contains("Reload"));
        assert!(plan.notices[1].message.contains("127.0.0.1:143"));
        assert!(plan.notices[1].message.contains("STARTTLS refused"));
        assert!(plan.notices[1].message.contains("reload"));
    }

    // ---- plan shape -----------------------------------------------------------------------

    fn mixed_facts() -> HostFacts {
        let mut weak = cert();
        weak.signature_algorithm = "md5WithRSAEncryption".to_string();
        facts(vec![
            service("zeta", cert()),
            broken_service("alpha", CertificateState::Malformed("/a: DER".to_string())),
            service("mu", cert_from("Let's Encrypt", 90, DAY)),
            service("beta", weak),
        ])
    }

    #[test]
    fn plan_lists_services_and_notices_in_input_order() {
        let plan = evaluate(&mixed_facts());
        let names: Vec<_> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, vec!["zeta", "alpha", "mu", "beta"]);
        let decisions: Vec<_> = plan.services.iter().map(|s| s.decision).collect();
        assert_eq!(
            decisions,
            vec![Decision::Keep, Decision::ReplaceOrPlaceholder, Decision::Replace, Decision::Replace]
        );
        let notice_services: Vec<_> = plan.notices.iter().map(|n| n.service.as_deref()).collect();
        assert_eq!(notice_services, vec![Some("alpha"), Some("mu"), Some("beta")]);
        assert!(!plan.orders.is_empty());
    }

    #[test]
    fn evaluation_is_deterministic() {
        let f = mixed_facts();
        let first = evaluate(&f);
        for _ in 0..10 {
            assert_eq!(evaluate(&f), first);
        }
        assert_eq!(evaluate(&f.clone()), first);
    }

    #[test]
    fn decision_table() {
        let usable = [Reason::SelfSigned];
        let unusable = [Reason::SelfSigned, Reason::Expired];
        assert_eq!(decide(&[], true), Decision::Keep);
        assert_eq!(decide(&[], false), Decision::Keep);
        assert_eq!(decide(&usable, true), Decision::Replace);
        assert_eq!(decide(&unusable, true), Decision::ReplaceOrPlaceholder);
        assert_eq!(decide(&usable, false), Decision::Keep);
        assert_eq!(decide(&unusable, false), Decision::Placeholder);
    }

    #[test]
    fn no_services_gives_an_empty_plan() {
        let plan = evaluate(&facts(vec![]));
        assert!(plan.services.is_empty());
        assert!(plan.orders.is_empty());
        assert!(plan.notices.is_empty());
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let mut c = cert();
        c.not_before = i64::MIN;
        c.not_after = i64::MAX;
        c.renewal_window = Some(RenewalWindow { start: i64::MIN, end: i64::MAX, explanation_url: None });
        let mut f = facts(vec![service("a", c.clone())]);
        f.now = i64::MIN;
        let _ = evaluate(&f);
        f.now = i64::MAX;
        let _ = evaluate(&f);
        c.not_before = i64::MAX;
        c.not_after = i64::MIN;
        f.services = vec![service("b", c)];
        let plan = evaluate(&f);
        assert!(plan.services[0].reasons.contains(&Reason::Expired));
    }

    // ---- message helpers ------------------------------------------------------------------

    #[test]
    fn time_and_duration_formatting() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(NOW.into()), "2025-06-15 15:06 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(-86_400), "1969-12-31 00:00 UTC");
        assert_eq!(format_duration(25 * i128::from(DAY) - 1), "24 days");
        assert_eq!(format_duration(2 * i128::from(DAY)), "2 days");
        assert_eq!(format_duration(171_071), "47 hours");
        assert_eq!(format_duration(7_200), "2 hours");
        assert_eq!(format_duration(7_199), "119 minutes");
        assert_eq!(format_duration(119), "119 seconds");
        assert_eq!(format_duration(1), "1 second");
        assert_eq!(format_duration(0), "0 seconds");
    }

    #[test]
    fn several_reasons_are_listed_in_words() {
        let mut c = cert_from("Let's Encrypt", 90, 5 * DAY);
        c.self_signed = true;
        c.public_key = PublicKey { kind: KeyKind::Ec, bits: 224, curve: Some("secp224r1".to_string()) };
        let mut svc = service("nginx", c);
        svc.key = KeyStatus::Mismatch;
        let plan = evaluate(&facts(vec![svc]));
        assert_eq!(
            plan.notices[0].message,
            "Service nginx: the private key does not belong to the certificate; the \
             certificate has a weak key (EC, 224 bits, secp224r1; at least 256 are required), \
             is self-signed and expires in 5 days (on 2025-06-20 15:06 UTC). A new certificate \
             for host.example.com is requested from the CA and will replace it if issued in \
             this run; otherwise a self-signed placeholder is installed."
        );
    }
}
