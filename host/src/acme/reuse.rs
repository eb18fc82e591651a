//! Reuse before re-order: a certificate this host was issued earlier (kept in
//! `<state-dir>/acme/issued/`) that could not be installed then — a reload that failed, a run
//! killed before the install — is installed instead of ordering another, when it still does the
//! job: it names every name needed, matches its stored key, its chain verifies (the same checks
//! as a certificate just issued, [`super::order::verify_issued`], which use the facts' own
//! verifier), and it has enough life left by the default policy's rule ([`enough_life_left`]).
//! A certificate every service already holds is not reused (that is the one the policy wants
//! replaced). So a failed install never costs an order, and the daily cap never leads to a placeholder
//! while such a certificate is on disk.

use std::path::{Path, PathBuf};

use openssl::x509::X509;

use super::state::{IssuedRecord, StateDir};
use crate::actions::placeholder::Material;
use crate::config::Config;
use crate::config::acme::AcmeConfig;

/// The default policy's thresholds (`[policy.params]`: `letsencrypt-min-days`,
/// `other-min-days`, `short-lifetime-percent`), with its defaults.
const DEFAULTS: [(&str, i64); 3] =
    [("letsencrypt-min-days", 25), ("other-min-days", 3), ("short-lifetime-percent", 33)];

/// An issued certificate found fit to install.
#[derive(Debug)]
pub struct Reusable {
    pub material: Material,
    /// Its directory under `issued/`.
    pub dir: PathBuf,
    pub record: IssuedRecord,
    pub not_after: i64,
}

fn param(params: &[(String, String)], key: &str) -> i64 {
    let default = DEFAULTS.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v);
    params.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.trim().parse().ok()).unwrap_or(default)
}

/// Whether a certificate valid from `not_before` to `not_after`, from a Let's Encrypt issuer
/// (`lets_encrypt`) or not, has more life left at `now` than the default policy's *expiring
/// soon* threshold: `letsencrypt-min-days` (25) or `other-min-days` (3) days, or, for a
/// lifetime shorter than twice that, `short-lifetime-percent` (33 %) of the lifetime. One with
/// less would be replaced again at once.
pub fn enough_life_left(
    not_before: i64,
    not_after: i64,
    lets_encrypt: bool,
    params: &[(String, String)],
    now: i64,
) -> bool {
    let days = param(params, if lets_encrypt { "letsencrypt-min-days" } else { "other-min-days" });
    let base = i128::from(days) * 86_400;
    let lifetime = i128::from(not_after) - i128::from(not_before);
    let threshold = if lifetime < 2 * base {
        (lifetime * i128::from(param(params, "short-lifetime-percent"))).div_euclid(100)
    } else {
        base
    };
    i128::from(not_after) - i128::from(now) >= threshold
}

fn read(dir: &Path, name: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    crate::fs::read_bounded(&dir.join(name), crate::fs::limits::PEM_FILE).ok()
}

/// The issued certificate to install instead of ordering, if one fits (see the module
/// documentation): of those that do, the one that lasts longest.
pub fn find(
    config: &Config,
    acme: &AcmeConfig,
    state: &StateDir,
    names: &[String],
    now: i64,
) -> Option<Reusable> {
    let mut found: Option<Reusable> = None;
    // A certificate every service already holds is the one the policy wants replaced.
    let installed = super::installed_fingerprints(config);
    let held_by_all = |fingerprint: &str| {
        !config.services.is_empty()
            && installed.len() == config.services.len()
            && installed.iter().all(|f| f.eq_ignore_ascii_case(fingerprint))
    };
    for (dir, record) in state.issued() {
        let (Some(certificate), Some(chain), Some(key)) =
            (read(&dir, "certificate.pem"), read(&dir, "chain.pem"), read(&dir, "key.pem"))
        else {
            continue;
        };
        let material =
            Material { certificate_pem: certificate.to_vec(), chain_pem: chain.to_vec(), key_pem: key };
        let Ok(checked) =
            super::order::verify_issued(&material, names, &config.trust, &acme.issuer_roots, now)
        else {
            continue;
        };
        if held_by_all(&checked.sha256_fingerprint) {
            continue;
        }
        let Some(leaf) = X509::from_pem(&material.certificate_pem).ok() else { continue };
        let Ok(der) = leaf.to_der() else { continue };
        let facts = crate::facts::certificate_facts(&leaf, &der);
        let lets_encrypt =
            facts.issuer_org.as_deref().is_some_and(|org| org.to_lowercase().contains("let's encrypt"));
        if !enough_life_left(facts.not_before, facts.not_after, lets_encrypt, &config.policy.params, now) {
            continue;
        }
        if found.as_ref().is_none_or(|f| checked.not_after > f.not_after) {
            found = Some(Reusable { material, dir, record, not_after: checked.not_after });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_750_000_000;

    #[test]
    fn enough_life_is_the_default_policys_expiring_soon_rule() {
        let none: Vec<(String, String)> = Vec::new();
        // A 90-day Let's Encrypt certificate: 25 days.
        assert!(enough_life_left(NOW - 60 * DAY, NOW + 26 * DAY, true, &none, NOW));
        assert!(!enough_life_left(NOW - 66 * DAY, NOW + 24 * DAY, true, &none, NOW));
        // Another issuer: 3 days.
        assert!(enough_life_left(NOW - 80 * DAY, NOW + 4 * DAY, false, &none, NOW));
        assert!(!enough_life_left(NOW - 88 * DAY, NOW + 2 * DAY, false, &none, NOW));
        // A 6-day certificate (shorter than twice 25 days): 33 % of its life, about 2 days.
        assert!(enough_life_left(NOW - DAY, NOW + 5 * DAY, true, &none, NOW));
        assert!(!enough_life_left(NOW - 5 * DAY, NOW + DAY, true, &none, NOW));
        // [policy.params] are honoured.
        let params = vec![("other-min-days".to_string(), "10".to_string())];
        assert!(!enough_life_left(NOW - 80 * DAY, NOW + 4 * DAY, false, &params, NOW));
    }
}
