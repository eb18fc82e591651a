//! The checks: the contract's invariants (every policy, every vector) and a vector's own
//! expectations.

use std::collections::BTreeSet;

use super::vector::Expect;
use crate::facts::model::{CertificateState, HostFacts, KeyStatus};
use crate::plan::model::{Decision, Plan, Reason};

/// The invariants every policy must keep, whatever its rules. Returns one line per breach.
pub fn invariants(facts: &HostFacts, plan: &Plan, again: &Plan) -> Vec<String> {
    let mut failures = Vec::new();
    if plan != again {
        failures.push(format!(
            "not deterministic: the same facts gave two different plans:\n  first:  {}\n  second: {}",
            compact(plan),
            compact(again)
        ));
    }
    if facts.disable_auto_hostname_certificate && plan.orders_group(crate::facts::model::HOSTNAME_GROUP) {
        failures
            .push("orders a hostname certificate although disable-auto-hostname-certificate is set".into());
    }
    if facts.acme.is_none() && !plan.orders.is_empty() {
        failures.push("orders a certificate although no certificate authority is configured".into());
    }
    for order in &plan.orders {
        if facts.group(&order.group).is_some_and(|g| !g.orderable) {
            failures.push(format!(
                "orders a certificate for group `{}`, whose names the certificate authority cannot issue for",
                order.group
            ));
        }
    }
    if !facts.disable_service_certificate_management {
        for service in &facts.services {
            let Some(decision) = plan.decision(&service.name) else { continue };
            if decision.decision != Decision::Keep || service.check_only {
                continue;
            }
            if let Some(why) = unusable(facts, service) {
                failures.push(format!(
                    "keeps service `{}` although its {why}, while service certificate management is enabled",
                    service.name
                ));
            }
        }
    }
    failures
}

fn unusable(facts: &HostFacts, service: &crate::facts::model::ServiceFacts) -> Option<&'static str> {
    match &service.certificate {
        CertificateState::Missing(_) => return Some("certificate is missing"),
        CertificateState::Unreadable(_) => return Some("certificate is unreadable"),
        CertificateState::Malformed(_) => return Some("certificate is malformed"),
        CertificateState::Ok(cert) if facts.now >= cert.not_after => return Some("certificate has expired"),
        CertificateState::Ok(_) => {}
    }
    match service.key {
        KeyStatus::Mismatch => Some("key does not match the certificate"),
        KeyStatus::Missing(_) => Some("key is missing"),
        KeyStatus::Unreadable(_) => Some("key is unreadable"),
        KeyStatus::Malformed(_) => Some("key is malformed"),
        KeyStatus::Matches | KeyStatus::NotChecked => None,
    }
}

/// Compares a plan with a vector's expectations. Returns one line per difference.
pub fn expectations(expect: &Expect, plan: &Plan) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(order) = expect.order_hostname_certificate
        && order == plan.orders.is_empty()
    {
        failures.push(format!("order-hostname-certificate: expected {order}, got {}", !order));
    }
    if let Some(groups) = &expect.orders {
        let got: Vec<&str> = plan.orders.iter().map(|o| o.group.as_str()).collect();
        if *groups != got {
            failures.push(format!("orders: expected {groups:?}, got {got:?}"));
        }
    }
    for (name, want) in &expect.services {
        let Some(got) = plan.decision(name) else {
            failures.push(format!(
                "{name}: expected a decision, the plan has none (is the vector's service name right?)"
            ));
            continue;
        };
        if let Some(decision) = want.decision
            && decision != got.decision
        {
            failures.push(format!(
                "{name}: decision expected {}, got {}",
                word(&decision),
                word(&got.decision)
            ));
        }
        let reasons: BTreeSet<&Reason> = got.reasons.iter().collect();
        if let Some(exact) = &want.reasons {
            let exact: BTreeSet<&Reason> = exact.iter().collect();
            if exact != reasons {
                failures.push(format!(
                    "{name}: reasons expected {}, got {}",
                    list(exact.iter().copied()),
                    list(reasons.iter().copied())
                ));
            }
        }
        let missing: Vec<&Reason> = want.reasons_include.iter().filter(|r| !reasons.contains(r)).collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{name}: reasons should include {}, got {}",
                list(missing.into_iter()),
                list(reasons.iter().copied())
            ));
        }
        let present: Vec<&Reason> = want.reasons_exclude.iter().filter(|r| reasons.contains(r)).collect();
        if !present.is_empty() {
            failures.push(format!(
                "{name}: reasons should not include {}, got {}",
                list(present.into_iter()),
                list(reasons.iter().copied())
            ));
        }
    }
    for want in &expect.notices {
        let found = plan.notices.iter().any(|n| {
            n.level == want.level
                && want.service.as_ref().is_none_or(|s| *s == n.service)
                && want.contains.as_ref().is_none_or(|c| n.message.to_lowercase().contains(&c.to_lowercase()))
        });
        if !found {
            let about = match &want.service {
                None => String::new(),
                Some(None) => " (host-wide)".into(),
                Some(Some(s)) => format!(" about `{s}`"),
            };
            let text = want.contains.as_ref().map(|c| format!(" containing \"{c}\"")).unwrap_or_default();
            failures.push(format!(
                "expected a {} notice{about}{text}; the notices were:{}",
                word(&want.level),
                notices(plan)
            ));
        }
    }
    for name in &expect.no_notices_for {
        if plan.notices.iter().any(|n| n.service.as_deref() == Some(name.as_str())) {
            failures.push(format!("{name}: expected no notice about it; the notices were:{}", notices(plan)));
        }
    }
    failures
}

fn notices(plan: &Plan) -> String {
    if plan.notices.is_empty() {
        return " (none)".into();
    }
    plan.notices
        .iter()
        .map(|n| {
            format!(
                "\n    [{}] {}{}",
                word(&n.level),
                n.service.as_ref().map(|s| format!("{s}: ")).unwrap_or_default(),
                n.message
            )
        })
        .collect()
}

/// A value's JSON spelling without quotes (`replace-or-placeholder`, `expiring-soon`).
fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn list<'a>(reasons: impl Iterator<Item = &'a Reason>) -> String {
    let words: Vec<String> = reasons.map(word).collect();
    format!("[{}]", words.join(", "))
}

fn compact(plan: &Plan) -> String {
    serde_json::to_string(plan).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::vector::parse_facts;
    use crate::plan::model::{OrderRequest, ServicePlan};

    /// One expired service in the hostname group and one in an unorderable group, a CA.
    fn facts(extra: &str) -> HostFacts {
        parse_facts(&format!(
            r#"{{"now": 1000, "hostname": "h.example.com", "acme": {{"directory-url": "https://ca/dir"}} {extra},
                "groups": [{{"name": "hostname", "names": ["h.example.com"]}},
                           {{"name": "lan", "names": ["nas.lan"], "orderable": false}}],
                "services": [{{"name": "web", "certificate": {{"ok": {{"not-after": 1000}}}}}},
                             {{"name": "nas", "group": "lan", "certificate": {{"ok": {{"not-after": 5000}}}}}}]}}"#
        ))
        .expect("facts")
    }

    fn plan(web: Decision, orders: &[&str]) -> Plan {
        Plan {
            services: vec![
                ServicePlan { service: "web".into(), decision: web, reasons: vec![] },
                ServicePlan { service: "nas".into(), decision: Decision::Keep, reasons: vec![] },
            ],
            orders: orders.iter().map(|g| OrderRequest { group: (*g).into() }).collect(),
            notices: vec![],
        }
    }

    /// Every invariant passes the right plan and fails its bad one, so that the contract suite's
    /// vectors without `expect` do test something.
    #[test]
    fn each_invariant_refuses_its_bad_plan() {
        let good = plan(Decision::ReplaceOrPlaceholder, &["hostname"]);
        assert_eq!(invariants(&facts(""), &good, &good), Vec::<String>::new());

        let cases: Vec<(HostFacts, Plan, Plan, &str)> = vec![
            (facts(""), good.clone(), plan(Decision::Placeholder, &[]), "not deterministic"),
            (
                facts(""),
                plan(Decision::Keep, &[]),
                plan(Decision::Keep, &[]),
                "keeps service `web` although its certificate has expired",
            ),
            (
                facts(r#", "disable-auto-hostname-certificate": true"#),
                good.clone(),
                good.clone(),
                "although disable-auto-hostname-certificate is set",
            ),
            (
                facts(""),
                plan(Decision::ReplaceOrPlaceholder, &["hostname", "lan"]),
                plan(Decision::ReplaceOrPlaceholder, &["hostname", "lan"]),
                "group `lan`, whose names",
            ),
        ];
        for (facts, first, again, expected) in cases {
            let failures = invariants(&facts, &first, &again);
            assert!(failures.iter().any(|f| f.contains(expected)), "{expected}: {failures:?}");
        }
        let mut no_ca = facts("");
        no_ca.acme = None;
        let failures = invariants(&no_ca, &good, &good);
        assert!(failures.iter().any(|f| f.contains("no certificate authority")), "{failures:?}");
        // Service certificate management off: keeping is allowed.
        let off = facts(r#", "disable-service-certificate-management": true"#);
        let keep = plan(Decision::Keep, &[]);
        assert_eq!(invariants(&off, &keep, &keep), Vec::<String>::new());
    }
}
