//! An example `checkallsslcerts` policy: renew a certificate when less than a third of its
//! lifetime is left, whoever issued it.
//!
//! A policy is a WebAssembly component that gets every fact the host gathered (`HostFacts`) and
//! answers with a `Plan`: one decision per service, whether to order a certificate for the
//! hostname, and messages for the administrator. It has no clock, files or network; `facts.now`
//! is the time. See README.md next to this file for what this policy checks.

// 1. Generate Rust types and traits from the contract. The generated glue uses `unsafe`, which
//    the workspace denies, so it is allowed for this module only.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit/since_v0.1.0",
        world: "policy",
        // Lets the tests compare plans with `assert_eq!`.
        additional_derives: [PartialEq, Eq],
    });
}

use bindings::checkallsslcerts::policy::types::{
    CaaStatus, CertificateState, ChainStatus, Decision, DnsStatus, HostFacts, KeyStatus, Level, Notice, Plan,
    PolicyMetadata, Reason, Revocation, ServiceFacts, ServicePlan,
};
use bindings::exports::checkallsslcerts::policy::rules::Guest;

// 2. Implement the two exported functions.
struct LifetimeFraction;

impl Guest for LifetimeFraction {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            name: "lifetime-fraction".to_string(),
            version: "0.1.0".to_string(),
            description: "Renew any certificate with less than a third of its lifetime left".to_string(),
            contract_version: "0.1.0".to_string(),
        }
    }

    fn evaluate(facts: HostFacts) -> Result<Plan, String> {
        Ok(plan(&facts))
    }
}

// 3. Export them (WebAssembly builds only: native builds exist just to run the unit tests).
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod export {
    use super::LifetimeFraction;
    crate::bindings::export!(LifetimeFraction with_types_in crate::bindings);
}

/// What is wrong with one service's certificate, if anything.
fn reasons(service: &ServiceFacts, now: i64) -> Vec<Reason> {
    let cert = match &service.certificate {
        CertificateState::Ok(cert) => cert,
        // Without a certificate there is nothing else to look at.
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
    // i128: no timestamp the host sends can overflow (a panic would fail the whole policy).
    let lifetime = i128::from(cert.not_after) - i128::from(cert.not_before);
    let left = i128::from(cert.not_after) - i128::from(now);
    if left <= 0 {
        reasons.push(Reason::Expired);
    } else if 3 * left < lifetime {
        // The one rule this example is about: less than a third of the lifetime is left.
        reasons.push(Reason::ExpiringSoon);
    }
    if now < cert.not_before {
        reasons.push(Reason::NotYetValid);
    }
    if matches!(cert.revocation, Revocation::Revoked(_)) {
        reasons.push(Reason::Revoked);
    }
    if cert.self_signed {
        reasons.push(Reason::SelfSigned);
    } else if matches!(cert.chain, ChainStatus::Untrusted(_) | ChainStatus::Incomplete(_)) {
        reasons.push(Reason::UntrustedChain);
    }
    if !service.covers_hostname {
        reasons.push(Reason::HostnameMismatch);
    }
    reasons
}

/// A certificate with one of these reasons must not stay installed.
fn is_unusable(reason: &Reason) -> bool {
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

/// A reason, as the admin reads it after "the certificate is".
fn in_words(reason: &Reason) -> &'static str {
    match reason {
        Reason::Missing => "missing (certificate or key file)",
        Reason::Unreadable => "unreadable (certificate or key file)",
        Reason::Malformed => "malformed (certificate or key file)",
        Reason::KeyMismatch => "not matching its private key",
        Reason::Expired => "expired",
        Reason::ExpiringSoon => "past two thirds of its lifetime",
        Reason::NotYetValid => "not valid yet",
        Reason::Revoked => "revoked by its CA",
        Reason::SelfSigned => "self-signed",
        Reason::UntrustedChain => "not trusted (chain does not verify)",
        Reason::HostnameMismatch => "not covering the hostname",
        _ => "flagged",
    }
}

/// `None` if a certificate for the hostname can be ordered, otherwise why not.
fn why_not_order(facts: &HostFacts) -> Option<String> {
    let why = if facts.disable_auto_hostname_certificate {
        "automatic hostname certificates are disabled (disable_auto_hostname_certificate)"
    } else if facts.acme.is_none() {
        "no certificate authority is configured"
    } else if !facts.hostname_is_fqdn {
        "the hostname is not a fully qualified domain name"
    } else if facts.hostname_dns == DnsStatus::PointsElsewhere {
        "the hostname does not resolve to this server's main IP"
    } else if facts.hostname_dns == DnsStatus::DoesNotResolve {
        "the hostname does not resolve in DNS"
    } else if let CaaStatus::Forbids(allowed) = &facts.caa {
        return Some(format!(
            "CAA records for the hostname do not allow the configured CA (allowed: {allowed})"
        ));
    } else {
        return None;
    };
    Some(why.to_string())
}

/// The whole policy: facts in, plan out. Deterministic, and one entry per service in order.
fn plan(facts: &HostFacts) -> Plan {
    let why_not = why_not_order(facts);
    let management_disabled = facts.disable_service_certificate_management;
    let mut notices = Vec::new();
    if management_disabled {
        notices.push(Notice {
            level: Level::Info,
            service: None,
            message: "Service certificate management is disabled \
                      (disable_service_certificate_management): nothing is replaced."
                .to_string(),
        });
    }
    let mut services = Vec::new();
    for service in &facts.services {
        let reasons = reasons(service, facts.now);
        let unusable = reasons.iter().any(is_unusable);
        let (decision, action) = match (&why_not, unusable) {
            _ if reasons.is_empty() => (Decision::Keep, String::new()),
            // The admin asked us to leave service certificates alone: keep everything.
            _ if management_disabled => {
                (Decision::Keep, "it is kept, because service certificate management is disabled".to_string())
            }
            (None, false) => (Decision::Replace, "a new certificate is ordered".to_string()),
            (None, true) => (
                Decision::ReplaceOrPlaceholder,
                "a new certificate is ordered, or a placeholder installed".to_string(),
            ),
            (Some(why), false) => (Decision::Keep, format!("it is kept, because {why}")),
            (Some(why), true) => {
                (Decision::Placeholder, format!("a self-signed placeholder is installed, because {why}"))
            }
        };
        // No notice for a healthy certificate, nor for an expiring one while management is off.
        let only_about_age = reasons.iter().all(|r| matches!(r, Reason::Expired | Reason::ExpiringSoon));
        let quiet = reasons.is_empty() || (management_disabled && only_about_age);
        if !quiet {
            let level = match (unusable, decision) {
                (true, _) => Level::Error,
                (false, Decision::Replace) if only_about_age => Level::Info,
                _ => Level::Warning,
            };
            let words: Vec<&str> = reasons.iter().map(in_words).collect();
            let left = match &service.certificate {
                CertificateState::Ok(c) if c.not_after > facts.now => {
                    let days = (i128::from(c.not_after) - i128::from(facts.now)) / 86_400;
                    format!(", {days} days left")
                }
                _ => String::new(),
            };
            notices.push(Notice {
                level,
                service: Some(service.name.clone()),
                message: format!(
                    "Service {}: the certificate is {}{left}; {action}.",
                    service.name,
                    words.join(", ")
                ),
            });
        }
        services.push(ServicePlan { service: service.name.clone(), decision, reasons });
    }
    let order_hostname_certificate = !management_disabled
        && why_not.is_none()
        && services.iter().any(|s| matches!(s.decision, Decision::Replace | Decision::ReplaceOrPlaceholder));
    Plan { services, order_hostname_certificate, notices }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindings::checkallsslcerts::policy::types::{AcmeFacts, Certificate, KeyKind, PublicKey};

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    /// A healthy, trusted certificate that lasts `lifetime_days` and has `left` seconds left.
    fn service(name: &str, lifetime_days: i64, left: i64) -> ServiceFacts {
        let not_after = NOW + left;
        let cert = Certificate {
            subject_cn: None,
            dns_names: vec!["host.example.com".to_string()],
            ip_addresses: vec![],
            issuer_cn: None,
            issuer_org: Some("Some CA".to_string()),
            serial: "01".to_string(),
            sha256_fingerprint: "ab".repeat(32),
            not_before: not_after - lifetime_days * DAY,
            not_after,
            public_key: PublicKey { kind: KeyKind::Ec, bits: 256, curve: None },
            signature_algorithm: "ecdsa-with-SHA256".to_string(),
            self_signed: false,
            chain: ChainStatus::Trusted,
            revocation: Revocation::Good,
            renewal_window: None,
        };
        ServiceFacts {
            name: name.to_string(),
            certificate: CertificateState::Ok(cert),
            key: KeyStatus::Matches,
            covers_hostname: true,
            served: vec![],
        }
    }

    fn facts(services: Vec<ServiceFacts>) -> HostFacts {
        HostFacts {
            now: NOW,
            hostname: "host.example.com".to_string(),
            hostname_is_fqdn: true,
            hostname_dns: DnsStatus::PointsToMainIp,
            caa: CaaStatus::Allows,
            disable_auto_hostname_certificate: false,
            disable_service_certificate_management: false,
            acme: Some(AcmeFacts {
                directory_url: "https://acme.example/directory".to_string(),
                pending_order: None,
                next_order_not_before: None,
            }),
            params: vec![],
            services,
        }
    }

    fn decisions(plan: &Plan) -> Vec<Decision> {
        plan.services.iter().map(|s| s.decision).collect()
    }

    #[test]
    fn renews_below_one_third_of_the_lifetime_for_any_lifetime() {
        for days in [6, 45, 90, 398] {
            let third = days * DAY / 3;
            let plan = plan(&facts(vec![service("below", days, third - 1), service("at", days, third)]));
            assert_eq!(decisions(&plan), [Decision::Replace, Decision::Keep], "{days}");
            assert!(plan.order_hostname_certificate);
            assert_eq!(plan.notices.len(), 1);
            assert_eq!(plan.notices[0].level, Level::Info);
        }
    }

    #[test]
    fn unusable_certificates_are_never_kept() {
        let mut mismatched = service("mismatch", 90, 60 * DAY);
        mismatched.key = KeyStatus::Mismatch;
        let missing = ServiceFacts {
            certificate: CertificateState::Missing("/etc/ssl/x.pem".to_string()),
            key: KeyStatus::NotChecked,
            covers_hostname: false,
            ..service("missing", 90, 0)
        };
        let services = vec![service("expired", 90, 0), mismatched, missing];
        let plan = plan(&facts(services.clone()));
        assert_eq!(decisions(&plan), [Decision::ReplaceOrPlaceholder; 3]);
        let mut disabled = facts(services);
        disabled.disable_auto_hostname_certificate = true;
        let plan = super::plan(&disabled);
        assert_eq!(decisions(&plan), [Decision::Placeholder; 3]);
        assert!(!plan.order_hostname_certificate);
        assert!(plan.notices.iter().all(|n| n.level == Level::Error));
    }

    #[test]
    fn management_disabled_keeps_everything_quietly() {
        let mut f = facts(vec![service("a", 90, 0), service("b", 90, DAY)]);
        f.disable_service_certificate_management = true;
        let plan = plan(&f);
        assert_eq!(decisions(&plan), [Decision::Keep; 2]);
        assert_eq!(plan.services[0].reasons, [Reason::Expired]);
        assert!(!plan.order_hostname_certificate);
        assert_eq!(plan.notices.len(), 1);
        assert_eq!(plan.notices[0].service, None);
    }

    #[test]
    fn metadata() {
        let metadata = LifetimeFraction::metadata();
        assert_eq!(metadata.name, "lifetime-fraction");
        assert_eq!(metadata.version, "0.1.0");
        assert_eq!(metadata.contract_version, "0.1.0");
    }

    #[test]
    fn deterministic_and_in_input_order() {
        let f = facts(vec![service("z", 90, DAY), service("a", 90, 80 * DAY)]);
        let plan = plan(&f);
        let names: Vec<_> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["z", "a"]);
        assert_eq!(plan, super::plan(&f));
    }
}
