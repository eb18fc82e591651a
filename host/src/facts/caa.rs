//! CAA (RFC 8659): may the configured CA issue for the hostname?
//!
//! The relevant record set is the CAA set of the hostname or, if it has none, of the closest
//! ancestor that has one (tree climbing up to the top-level domain; a CNAME is followed by the
//! resolver, as the RFC asks). The hostname certificate is not a wildcard, so only `issue`
//! properties count (`issuewild` applies to wildcard names only): if there is at least one,
//! one must name one of the CA's identities (`meta.caaIdentities` of the ACME directory, or
//! `[network] caa-identities`). An `issue` value of ";" allows no CA. A property flagged
//! critical whose tag is unknown forbids issuance altogether.
//!
//! Parameters such as `accounturi` or `validationmethods` are not checked: the CA checks them
//! when it validates the order.

use std::fmt;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::dns::is_no_records;
use super::model::CaaStatus;

/// The property tags RFC 8659 and its registry define.
const KNOWN_TAGS: [&str; 5] = ["issue", "issuewild", "iodef", "contactemail", "contactphone"];

/// One CAA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaRecord {
    /// The issuer-critical flag (bit 0, value 128).
    pub critical: bool,
    /// The property tag, as written.
    pub tag: String,
    /// The property value, as text (lossy for non-UTF-8 bytes).
    pub value: String,
}

impl fmt::Display for CaaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", if self.critical { 128 } else { 0 }, self.tag, self.value)
    }
}

/// The relevant record set and the name it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relevant {
    /// The name (without the final dot) whose CAA records decide.
    pub domain: String,
    /// Its CAA records.
    pub records: Vec<CaaRecord>,
}

/// The hostname, then each ancestor up to the top-level domain: `a.b.example.com`,
/// `b.example.com`, `example.com`, `com`.
pub fn ancestors(hostname: &str) -> Vec<String> {
    let name = hostname.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    (0..labels.len()).map(|i| labels[i..].join(".")).collect()
}

/// Finds the relevant CAA record set by climbing the tree; `None` when no name up to the
/// top-level domain has CAA records. An error is a failed lookup (the CA would refuse to issue
/// on one too, but that is not the records forbidding it).
pub async fn relevant_rrset(resolver: &TokioResolver, hostname: &str) -> Result<Option<Relevant>, String> {
    for domain in ancestors(hostname) {
        let absolute = format!("{domain}.");
        let answer = match resolver.lookup(absolute.as_str(), RecordType::CAA).await {
            Ok(answer) => answer,
            Err(e) if is_no_records(&e) => continue,
            Err(e) => return Err(format!("CAA lookup of {domain}: {e}")),
        };
        let records: Vec<CaaRecord> = answer
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::CAA(caa) => Some(CaaRecord {
                    critical: caa.issuer_critical,
                    tag: caa.tag.clone(),
                    value: String::from_utf8_lossy(&caa.value).into_owned(),
                }),
                _ => None,
            })
            .collect();
        if !records.is_empty() {
            return Ok(Some(Relevant { domain, records }));
        }
    }
    Ok(None)
}

/// The issuer domain name of an `issue` value ("letsencrypt.org; accounturi=..." →
/// "letsencrypt.org"); `None` for ";" (no CA may issue).
pub fn issuer_domain(value: &str) -> Option<String> {
    let domain = value.split(';').next().unwrap_or("").trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// What the relevant records say about a CA with these identities (lowercase), for a
/// non-wildcard name.
pub fn evaluate(relevant: Option<&Relevant>, identities: &[String]) -> CaaStatus {
    let Some(relevant) = relevant else {
        return CaaStatus::Allows;
    };
    if let Some(unknown) = relevant
        .records
        .iter()
        .find(|r| r.critical && !KNOWN_TAGS.contains(&r.tag.to_ascii_lowercase().as_str()))
    {
        return CaaStatus::Forbids(format!(
            "none: the critical CAA property {:?} at {} is not understood by any CA",
            unknown.tag, relevant.domain
        ));
    }
    let issue: Vec<&CaaRecord> =
        relevant.records.iter().filter(|r| r.tag.eq_ignore_ascii_case("issue")).collect();
    if issue.is_empty() {
        return CaaStatus::Allows;
    }
    let allowed: Vec<String> = issue.iter().filter_map(|r| issuer_domain(&r.value)).collect();
    if allowed.iter().any(|domain| identities.iter().any(|id| id.trim_end_matches('.') == domain)) {
        return CaaStatus::Allows;
    }
    let mut unique: Vec<String> = Vec::new();
    for domain in allowed {
        if !unique.contains(&domain) {
            unique.push(domain);
        }
    }
    CaaStatus::Forbids(if unique.is_empty() { "none".to_owned() } else { unique.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(critical: bool, tag: &str, value: &str) -> CaaRecord {
        CaaRecord { critical, tag: tag.to_owned(), value: value.to_owned() }
    }

    fn at(records: Vec<CaaRecord>) -> Relevant {
        Relevant { domain: "example.com".to_owned(), records }
    }

    fn ids() -> Vec<String> {
        vec!["letsencrypt.org".to_owned()]
    }

    #[test]
    fn tree() {
        assert_eq!(ancestors("A.b.Example.com."), ["a.b.example.com", "b.example.com", "example.com", "com"]);
        assert_eq!(ancestors("com"), ["com"]);
    }

    #[test]
    fn issuer_domains() {
        assert_eq!(issuer_domain("letsencrypt.org").as_deref(), Some("letsencrypt.org"));
        assert_eq!(
            issuer_domain(" LetsEncrypt.org ; accounturi=https://x/acct/1").as_deref(),
            Some("letsencrypt.org")
        );
        assert_eq!(issuer_domain(";"), None);
        assert_eq!(issuer_domain(""), None);
    }

    #[test]
    fn no_records_or_no_issue_property_allow() {
        assert_eq!(evaluate(None, &ids()), CaaStatus::Allows);
        let only_other =
            at(vec![record(false, "iodef", "mailto:x@example.com"), record(false, "issuewild", ";")]);
        assert_eq!(evaluate(Some(&only_other), &ids()), CaaStatus::Allows);
    }

    #[test]
    fn issue_properties_decide() {
        let ours = at(vec![
            record(false, "issue", "pki.goog"),
            record(false, "ISSUE", "letsencrypt.org; validationmethods=http-01"),
        ]);
        assert_eq!(evaluate(Some(&ours), &ids()), CaaStatus::Allows);
        let theirs = at(vec![
            record(false, "issue", "pki.goog"),
            record(false, "issue", "sectigo.com"),
            record(false, "issue", "pki.goog"),
        ]);
        assert_eq!(evaluate(Some(&theirs), &ids()), CaaStatus::Forbids("pki.goog, sectigo.com".to_owned()));
        let nobody = at(vec![record(false, "issue", ";")]);
        assert_eq!(evaluate(Some(&nobody), &ids()), CaaStatus::Forbids("none".to_owned()));
        // issuewild does not allow a non-wildcard name.
        let wild_only = at(vec![record(false, "issue", ";"), record(false, "issuewild", "letsencrypt.org")]);
        assert_eq!(evaluate(Some(&wild_only), &ids()), CaaStatus::Forbids("none".to_owned()));
    }

    #[test]
    fn unknown_critical_property_forbids() {
        let strange = at(vec![record(false, "issue", "letsencrypt.org"), record(true, "tbs", "x")]);
        let CaaStatus::Forbids(why) = evaluate(Some(&strange), &ids()) else { panic!("forbids expected") };
        assert!(why.contains("tbs") && why.contains("example.com"), "{why}");
        // Unknown but not critical: ignored.
        let benign = at(vec![record(false, "issue", "letsencrypt.org"), record(false, "tbs", "x")]);
        assert_eq!(evaluate(Some(&benign), &ids()), CaaStatus::Allows);
    }

    #[test]
    fn display() {
        assert_eq!(record(false, "issue", "ca.test").to_string(), "0 issue \"ca.test\"");
        assert_eq!(record(true, "tbs", "x").to_string(), "128 tbs \"x\"");
    }
}
