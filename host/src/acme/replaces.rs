//! Which certificate a new order replaces: the `replaces` field of newOrder (RFC 9773 §5).
//!
//! An order names at most one certificate it replaces, by its ARI identifier
//! (`base64url(AKI keyIdentifier) "." base64url(serial)`, [`crate::facts::ari::cert_id`]), and
//! only when the CA's directory offers `renewalInfo` (a CA without ARI does not know the field).
//! The candidate is, in this order:
//!
//! 1. the certificate this host got in an earlier run from the same CA (directory) with the same
//!    account for at least one of the names ordered now: the newest under
//!    `<state-dir>/acme/issued/` (accepted or not: it was issued, so it is what is replaced);
//! 2. otherwise a certificate installed for the hostname (the first service whose current
//!    certificate names it) that the CA knows: its renewalInfo answered with a window, the same
//!    answer the network facts fetched earlier in the run (read from the ARI cache; asked again
//!    only if the cache has none). Only when `[network] ari` is on and the network facts are not
//!    switched off (`CHECKALLSSLCERTS_NETWORK_FACTS=off`).
//!
//! Nothing here can make the certificate work fail: any problem means the order names no
//! certificate, and a CA that refuses the order because of `replaces` gets the same order again
//! without it ([`super::order::drive`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use instant_acme::CertificateIdentifier;
use openssl::asn1::Asn1Time;
use openssl::x509::X509;

use super::state::StateDir;
use crate::config::Config;
use crate::config::acme::AcmeConfig;
use crate::facts::ari::{AriClient, cert_id_parts};
use crate::facts::network::{Http, MAX_DIRECTORY_BYTES, NETWORK_FACTS_ENV, parse_directory};

/// The most installed certificates whose renewal information is looked at.
pub const MAX_INSTALLED_ASKED: usize = 4;

/// The certificate an order replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The ARI identifier: `aki "." serial`.
    pub id: String,
    /// base64url of the Authority Key Identifier's keyIdentifier.
    pub aki: String,
    /// base64url of the serial number's DER content.
    pub serial: String,
    /// Why this certificate, for the admin.
    pub why: String,
}

impl Replaced {
    /// From a certificate with an ARI identifier.
    pub fn of(cert: &X509, why: String) -> Option<Replaced> {
        let (aki, serial) = cert_id_parts(cert)?;
        Some(Replaced { id: format!("{aki}.{serial}"), aki, serial, why })
    }

    /// The value of `replaces` for instant-acme.
    pub fn identifier(&self) -> CertificateIdentifier<'_> {
        CertificateIdentifier {
            authority_key_identifier: self.aki.as_str().into(),
            serial: self.serial.as_str().into(),
        }
    }
}

/// The certificate the next new order replaces, or `None`, and notes for the admin (`--verbose`)
/// about why none is named. Asks the network at most for the CA's directory and, for installed
/// certificates, renewal information missing from the cache; bounded by `[network]
/// timeout-seconds`.
pub async fn choose(
    config: &Config,
    acme: &AcmeConfig,
    state: &StateDir,
    names: &[String],
    now: i64,
) -> (Option<Replaced>, Vec<String>) {
    let mut notes = Vec::new();
    let earlier = match state.account(&acme.directory_url) {
        Ok(Some(account)) => previously_issued(state, &acme.directory_url, &account.account_url, names),
        _ => None,
    };
    let network_facts_off = std::env::var_os(NETWORK_FACTS_ENV).is_some_and(|v| v == "off");
    let ask_installed = config.network.ari && !network_facts_off;
    if earlier.is_none() && !ask_installed {
        return (None, notes);
    }
    let timeout = config.network.timeout;
    let http = match Http::new(timeout, acme.ca_bundle.as_deref()) {
        Ok(http) => Arc::new(http),
        Err(e) => {
            notes.push(format!("The order names no certificate it replaces: {e}."));
            return (None, notes);
        }
    };
    let directory = tokio::time::timeout(timeout + Duration::from_secs(1), renewal_info(&http, acme)).await;
    let base = match directory {
        Ok(Ok(Some(base))) => base,
        Ok(Ok(None)) => {
            if let Some(earlier) = &earlier {
                notes.push(format!(
                    "{} offers no renewalInfo (RFC 9773 ARI), so the order does not name the certificate it \
                     replaces ({}).",
                    acme.directory_url, earlier.id
                ));
            }
            return (None, notes);
        }
        Ok(Err(e)) => {
            notes.push(format!(
                "The order names no certificate it replaces: the directory {} could not be read ({e}).",
                acme.directory_url
            ));
            return (None, notes);
        }
        Err(_) => {
            notes.push(format!(
                "The order names no certificate it replaces: the directory {} did not answer within {} s.",
                acme.directory_url,
                timeout.as_secs()
            ));
            return (None, notes);
        }
    };
    if earlier.is_some() {
        return (earlier, notes);
    }
    let cache = config.state_dir.join("cache/ari");
    let client = AriClient::new(http, now, cache, true);
    let deadline = (timeout + Duration::from_secs(1)) * MAX_INSTALLED_ASKED as u32;
    let found = tokio::time::timeout(deadline, installed(config, &client, &base, now)).await.ok().flatten();
    notes.extend(client.take_notices());
    (found, notes)
}

/// The directory's `renewalInfo` URL, if it offers one.
async fn renewal_info(http: &Http, acme: &AcmeConfig) -> Result<Option<String>, String> {
    let answer = http.get(&acme.directory_url, MAX_DIRECTORY_BYTES).await?;
    if answer.status != 200 {
        return Err(format!("HTTP status {}", answer.status));
    }
    Ok(parse_directory(&answer.body)?.renewal_info)
}

/// The newest certificate kept under `issued/` from `directory_url` for `account` naming one of
/// `names`, if it has an ARI identifier.
pub fn previously_issued(
    state: &StateDir,
    directory_url: &str,
    account: &str,
    names: &[String],
) -> Option<Replaced> {
    let (dir, record) = state
        .issued()
        .into_iter()
        .filter(|(_, r)| {
            r.directory_url == directory_url
                && r.account == account
                && r.names.iter().any(|n| names.iter().any(|m| m.eq_ignore_ascii_case(n)))
        })
        .max_by_key(|(dir, r)| (r.issued_at, dir_sequence(dir)))?;
    let pem =
        crate::facts::read_bounded(&dir.join("certificate.pem"), crate::facts::MAX_PEM_FILE_SIZE).ok()?;
    let leaf = crate::facts::parse_certificate(&pem).ok()?.leaf;
    Replaced::of(
        &leaf,
        format!(
            "the certificate issued by this CA to this account on {} for {} (kept in {})",
            crate::time::utc_seconds(record.issued_at),
            record.names.join(", "),
            dir.display()
        ),
    )
}

/// The `<n>` of `issued/<stamp>-<n>` (several certificates issued in the same second).
fn dir_sequence(dir: &Path) -> u32 {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('-'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// The first certificate installed for the hostname that the CA knows (its renewal information
/// has a window).
async fn installed(config: &Config, client: &AriClient, base: &str, now: i64) -> Option<Replaced> {
    let now_asn1 = Asn1Time::from_unix(now).ok()?;
    let mut seen = HashSet::new();
    let mut asked = 0;
    for service in &config.services {
        if asked >= MAX_INSTALLED_ASKED {
            break;
        }
        let Ok(pem) = crate::facts::read_bounded(&service.certificate, crate::facts::MAX_PEM_FILE_SIZE)
        else {
            continue;
        };
        let Ok(parsed) = crate::facts::parse_certificate(&pem) else { continue };
        let leaf = parsed.leaf;
        if !seen.insert(openssl::sha::sha256(&parsed.leaf_der))
            || !crate::facts::covers_hostname(&leaf, &config.hostname)
            || leaf.not_after() <= now_asn1
            || cert_id_parts(&leaf).is_none()
        {
            continue;
        }
        asked += 1;
        if let Ok(Some(window)) = client.window(base, &leaf).await {
            return Replaced::of(
                &leaf,
                format!(
                    "the certificate installed for {} (service {}, {}), which the CA knows (its renewal \
                     window: {} to {})",
                    config.hostname,
                    service.name,
                    service.certificate.display(),
                    crate::time::utc_seconds(window.start),
                    crate::time::utc_seconds(window.end)
                ),
            );
        }
    }
    None
}

/// Whether a failed newOrder that carried `replaces` is worth one more attempt without it: the
/// CA answered (a problem document such as `alreadyReplaced`, or an answer instant-acme did not
/// accept, e.g. one that does not echo `replaces`), as opposed to a CA that cannot be reached
/// or that said it is rate-limiting this account (`rateLimited`: another order now would only
/// make that worse).
pub fn retry_without(error: &super::AcmeError) -> bool {
    match error {
        super::AcmeError::Refused { problem, .. } => problem.acme_error() != Some("rateLimited"),
        super::AcmeError::Protocol { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::state::{IssuedRecord, StoredAccount};
    use crate::actions::placeholder::Material;
    use crate::facts::testpki::{Pki, Spec};

    const NOW: i64 = 1_750_000_000;

    fn record(directory: &str, account: &str, names: &[&str], at: i64) -> IssuedRecord {
        IssuedRecord {
            directory_url: directory.into(),
            account: account.into(),
            order_url: format!("{directory}/order/{at}"),
            names: names.iter().map(|n| n.to_string()).collect(),
            issued_at: at,
            not_after: at + 90 * 86_400,
            sha256_fingerprint: String::new(),
            accepted: true,
            rejected_because: None,
            replaces: None,
        }
    }

    fn material(pki: &Pki, serial: u64) -> (Material, X509) {
        let mut spec = Spec::leaf("host.example.com", &["host.example.com"]);
        spec.serial = serial;
        let leaf = pki.leaf(&spec);
        let material = Material {
            certificate_pem: leaf.cert.to_pem().expect("pem"),
            chain_pem: Vec::new(),
            key_pem: zeroize::Zeroizing::new(Vec::new()),
        };
        (material, leaf.cert)
    }

    #[test]
    fn the_newest_certificate_from_the_same_ca_and_account_for_these_names_is_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        let (dir, acct) = ("https://ca.test/dir", "https://ca.test/acct/1");
        let names = vec!["host.example.com".to_string(), "www.example.com".to_string()];
        assert_eq!(previously_issued(&state, dir, acct, &names), None, "nothing issued yet");
        let pki = Pki::new("Test CA");
        let (old, _) = material(&pki, 0x1001);
        let (newest, newest_cert) = material(&pki, 0x1002);
        let (other_ca, _) = material(&pki, 0x1003);
        let (other_account, _) = material(&pki, 0x1004);
        let (other_names, _) = material(&pki, 0x1005);
        let (same_second, same_second_cert) = material(&pki, 0x1006);
        state
            .store_issued(&old, &record(dir, acct, &["host.example.com"], NOW - 100), NOW - 100)
            .expect("old");
        state.store_issued(&newest, &record(dir, acct, &["host.example.com"], NOW), NOW).expect("newest");
        state
            .store_issued(
                &other_ca,
                &record("https://other.test/dir", acct, &["host.example.com"], NOW + 5),
                NOW + 5,
            )
            .expect("other ca");
        state
            .store_issued(
                &other_account,
                &record(dir, "https://ca.test/acct/2", &["host.example.com"], NOW + 6),
                NOW + 6,
            )
            .expect("other account");
        state
            .store_issued(&other_names, &record(dir, acct, &["mail.example.org"], NOW + 7), NOW + 7)
            .expect("other names");
        let found = previously_issued(&state, dir, acct, &names).expect("found");
        assert_eq!(Some(found.id.clone()), crate::facts::ari::cert_id(&newest_cert));
        assert_eq!(found.id, format!("{}.{}", found.aki, found.serial));
        assert!(found.why.contains("issued by this CA"), "{}", found.why);
        // Names are compared without case; the second certificate of the same second wins.
        state.store_issued(&same_second, &record(dir, acct, &["WWW.example.com"], NOW), NOW).expect("same");
        let found = previously_issued(&state, dir, acct, &names).expect("found");
        assert_eq!(Some(found.id), crate::facts::ari::cert_id(&same_second_cert));
        let identifier = Replaced::of(&same_second_cert, String::new()).expect("id");
        assert_eq!(identifier.identifier().to_string(), identifier.id);
    }

    #[test]
    fn without_an_account_or_renewal_info_no_certificate_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\n\
             [network]\nari = false\n",
            tmp.path().join("state").display()
        );
        let config = crate::config::from_str(&text, Path::new("/etc/c.toml")).expect("config");
        let acme = config.acme.as_ref().expect("acme");
        let state = StateDir::open(&config.state_dir).expect("open");
        let pki = Pki::new("Test CA");
        let (issued, _) = material(&pki, 0x2001);
        let acct = "https://127.0.0.1:1/acct/1";
        state
            .store_issued(&issued, &record(&acme.directory_url, acct, &["host.example.com"], NOW), NOW)
            .expect("store");
        let names = vec!["host.example.com".to_string()];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // No stored account (a new one will be created): the earlier certificate is another
        // account's, and installed certificates are not looked at with `ari = false`. Nothing is
        // asked, nothing is said.
        let (found, notes) = runtime.block_on(choose(&config, acme, &state, &names, NOW));
        assert_eq!((found, notes), (None, Vec::new()));
        // With the account, the directory must be read first; it cannot be (port 1): no
        // certificate is named, and the note says why.
        let credentials: instant_acme::AccountCredentials = serde_json::from_value(serde_json::json!({
            "id": acct, "key_pkcs8": "AA", "directory": acme.directory_url,
        }))
        .expect("credentials");
        state
            .save_account(&StoredAccount {
                directory_url: acme.directory_url.clone(),
                account_url: acct.into(),
                created: NOW,
                email: None,
                credentials,
            })
            .expect("account");
        let (found, notes) = runtime.block_on(choose(&config, acme, &state, &names, NOW));
        assert_eq!(found, None);
        assert!(notes.len() == 1 && notes[0].contains("could not be read"), "{notes:?}");
    }

    #[test]
    fn only_answers_from_the_ca_are_retried_without_replaces() {
        use crate::acme::{AcmeError, ProblemDocument};
        let refused = AcmeError::Refused {
            step: "open an order",
            problem: ProblemDocument {
                kind: Some("urn:ietf:params:acme:error:alreadyReplaced".into()),
                ..ProblemDocument::default()
            },
        };
        assert!(retry_without(&refused));
        assert!(retry_without(&AcmeError::Protocol { step: "open an order", reason: "mismatch".into() }));
        let down = AcmeError::Unreachable {
            step: "open an order",
            url: "https://127.0.0.1:1/new-order".into(),
            reason: "refused".into(),
        };
        assert!(!retry_without(&down));
        let rate_limited = AcmeError::Refused {
            step: "open an order",
            problem: ProblemDocument {
                kind: Some("urn:ietf:params:acme:error:rateLimited".into()),
                ..ProblemDocument::default()
            },
        };
        assert!(!retry_without(&rate_limited));
    }
}
