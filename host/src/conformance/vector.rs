//! One conformance vector: facts in, expectations out (format: `tests/conformance/README.md`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::facts::model::{HOSTNAME_GROUP, HostFacts};
use crate::plan::model::{Decision, Level, Reason};
use crate::policy::ContractVersion;

/// A parsed vector.
#[derive(Debug, Clone)]
pub struct Vector {
    /// Where it came from, e.g. `v0.1.0/default/003-letsencrypt-24-days.json`.
    pub name: String,
    pub description: String,
    pub facts: HostFacts,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVector {
    #[serde(default)]
    description: String,
    facts: Value,
    #[serde(default)]
    expect: Expect,
}

/// What a plan must show. Every part is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Expect {
    /// Contract 0.1.0's flag: whether the plan orders anything.
    pub order_hostname_certificate: Option<bool>,
    /// Contract 0.2.0: the groups the plan orders, in the groups' order.
    pub orders: Option<Vec<String>>,
    #[serde(default)]
    pub services: BTreeMap<String, ExpectService>,
    #[serde(default)]
    pub notices: Vec<ExpectNotice>,
    #[serde(default)]
    pub no_notices_for: Vec<String>,
}

/// What one service's decision must show.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExpectService {
    pub decision: Option<Decision>,
    /// The exact set of reasons (order ignored).
    pub reasons: Option<Vec<Reason>>,
    #[serde(default)]
    pub reasons_include: Vec<Reason>,
    #[serde(default)]
    pub reasons_exclude: Vec<Reason>,
}

/// A notice that must be in the plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExpectNotice {
    pub level: Level,
    /// Absent: any service or none. `null`: a host-wide notice. A name: about that service.
    #[serde(default, deserialize_with = "some_value")]
    pub service: Option<Option<String>>,
    /// A substring of the message, compared case-insensitively.
    pub contains: Option<String>,
}

fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Parses a vector from its JSON text, written for contract `version` (a 0.1.0 vector's facts
/// are in 0.1.0's shape: see [`facts_v0_1_0`]); `name` is used in messages.
pub fn parse(name: &str, text: &str, version: ContractVersion) -> Result<Vector, String> {
    let raw: RawVector = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let facts = facts_from_value(raw.facts, version).map_err(|e| format!("{name}: facts: {e}"))?;
    Ok(Vector { name: name.to_string(), description: raw.description, facts, expect: raw.expect })
}

/// Parses host facts from JSON in the newest contract's shape, expanding relative times
/// (`"now+24d"`) against `now`.
pub fn parse_facts(text: &str) -> Result<HostFacts, String> {
    facts_from_value(serde_json::from_str(text).map_err(|e| e.to_string())?, ContractVersion::LATEST)
}

fn facts_from_value(mut facts: Value, version: ContractVersion) -> Result<HostFacts, String> {
    let now = facts.get("now").and_then(Value::as_i64).ok_or("`now` must be an integer (Unix seconds)")?;
    expand_relative_times(&mut facts, now)?;
    if version == ContractVersion::V0_1_0 {
        facts_v0_1_0(&mut facts);
    }
    let mut facts: HostFacts = serde_json::from_value(facts).map_err(|e| e.to_string())?;
    facts.complete_groups();
    Ok(facts)
}

/// Facts written in contract 0.1.0's shape, moved into 0.2.0's: a certificate's and a served
/// endpoint's `chain` (a status) is `chain-status`, and the pending order and back-off of
/// `acme` belong to the "hostname" group.
fn facts_v0_1_0(facts: &mut Value) {
    let rename = |object: &mut serde_json::Map<String, Value>| {
        if let Some(status) = object.remove("chain") {
            object.insert("chain-status".into(), status);
        }
    };
    for service in facts.get_mut("services").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(cert) = service.pointer_mut("/certificate/ok").and_then(Value::as_object_mut) {
            rename(cert);
        }
        for endpoint in service.get_mut("served").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(endpoint) = endpoint.as_object_mut() {
                rename(endpoint);
            }
        }
    }
    let hostname = facts.get("hostname").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    let orderable = facts.get("hostname-is-fqdn").and_then(Value::as_bool).unwrap_or(true);
    let mut group =
        serde_json::json!({ "name": HOSTNAME_GROUP, "names": [hostname], "orderable": orderable });
    if let Some(acme) = facts.get_mut("acme").and_then(Value::as_object_mut) {
        for key in ["pending-order", "next-order-not-before"] {
            if let Some(value) = acme.remove(key) {
                group[key] = value;
            }
        }
    }
    if let Some(object) = facts.as_object_mut() {
        object.insert("groups".into(), Value::Array(vec![group]));
    }
}

/// Replaces every string of the form `now`, `now+24d`, `now-1h+30m`... by `now` plus the terms
/// (units d, h, m, s), in seconds.
fn expand_relative_times(value: &mut Value, now: i64) -> Result<(), String> {
    match value {
        Value::String(s) if s.starts_with("now") => {
            *value = Value::from(relative_time(s, now)?);
        }
        Value::Array(items) => {
            for item in items {
                expand_relative_times(item, now)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                expand_relative_times(item, now)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn relative_time(text: &str, now: i64) -> Result<i64, String> {
    let mut rest = &text[3..];
    let mut total = now;
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(format!("bad relative time `{text}` (write e.g. now+24d-1s)")),
        };
        rest = &rest[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad relative time `{text}` (write e.g. now+24d-1s)"))?;
        let unit = match rest.as_bytes().get(digits) {
            Some(b'd') => 86_400,
            Some(b'h') => 3_600,
            Some(b'm') => 60,
            Some(b's') => 1,
            _ => return Err(format!("bad relative time `{text}`: units are d, h, m, s")),
        };
        total += sign * number * unit;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative_time("now", 100), Ok(100));
        assert_eq!(relative_time("now+1d-1s", 0), Ok(86_399));
        assert_eq!(relative_time("now-2h+30m", 10_000), Ok(10_000 - 7_200 + 1_800));
        assert!(relative_time("now+1y", 0).is_err());
        assert!(relative_time("now+", 0).is_err());
        assert!(relative_time("nowish", 0).is_err());
    }

    #[test]
    fn parses_a_vector_with_relative_times() {
        let v = parse(
            "t.json",
            r#"{"description": "d", "facts": {"now": 1000, "hostname": "h.example.com",
                "services": [{"name": "web", "certificate": {"ok": {"not-before": "now-1d", "not-after": "now+2d"}}}]},
                "expect": {"services": {"web": {"decision": "keep"}}, "notices": [{"level": "info", "service": null}]}}"#,
            ContractVersion::LATEST,
        )
        .expect("parses");
        let cert = v.facts.services[0].certificate.certificate().expect("ok");
        assert_eq!((cert.not_before, cert.not_after), (1000 - 86_400, 1000 + 2 * 86_400));
        assert_eq!(v.expect.notices[0].service, Some(None));
        // Without groups, the hostname group alone, for the hostname.
        assert_eq!(v.facts.groups.len(), 1);
        assert_eq!(
            (v.facts.groups[0].name.as_str(), v.facts.groups[0].names.as_slice()),
            ("hostname", ["h.example.com".to_string()].as_slice())
        );
        assert_eq!(v.facts.services[0].group.as_deref(), Some("hostname"));
    }

    #[test]
    fn a_v0_1_0_vector_is_read_in_0_1_0_terms() {
        let text = r#"{"facts": {"now": 1000, "hostname": "H.example.com", "hostname-is-fqdn": false,
            "acme": {"directory-url": "https://ca/dir", "pending-order": {"url": "https://ca/o/1", "created": 900},
                     "next-order-not-before": 2000},
            "services": [{"name": "web", "certificate": {"ok": {"chain": {"incomplete": "no issuer"}}},
                          "served": [{"endpoint": "127.0.0.1:443", "matches-installed": true, "chain": "trusted"}]}]}}"#;
        let v = parse("t.json", text, ContractVersion::V0_1_0).expect("a 0.1.0 vector parses as 0.1.0");
        let cert = v.facts.services[0].certificate.certificate().expect("ok");
        assert_eq!(cert.chain_status, crate::facts::model::ChainStatus::Incomplete("no issuer".into()));
        assert!(cert.chain.is_empty());
        assert_eq!(v.facts.services[0].served[0].chain_status, crate::facts::model::ChainStatus::Trusted);
        let group = &v.facts.groups[0];
        assert_eq!((group.name.as_str(), group.orderable), ("hostname", false));
        assert_eq!(group.pending_order.as_ref().map(|p| p.url.as_str()), Some("https://ca/o/1"));
        assert_eq!(group.next_order_not_before, Some(2000));
        // The same text is not 0.2.0: `chain` is the list of certificates there.
        assert!(parse("t.json", text, ContractVersion::V0_2_0).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(
            "t.json",
            r#"{"facts": {"now": 1, "hostname": "h"}, "expekt": {}}"#,
            ContractVersion::LATEST,
        )
        .expect_err("an unknown key is an error");
        assert!(err.contains("t.json") && err.contains("expekt"), "{err}");
    }
}
