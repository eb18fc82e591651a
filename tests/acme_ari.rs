//! The `replaces` field of a new order (RFC 9773 §5) against a real ACME CA: Debian's Pebble on
//! loopback (see `support/pebble.rs`) and the binary itself.
//!
//! **Test fixture:** Debian's Pebble 2.4 has no ARI (no `renewalInfo` in its directory, no
//! renewalInfo resource, no `replaces` of its own). So a small HTTPS reverse proxy
//! (`support/acme_proxy.rs`) stands between the binary and Pebble: it adds `renewalInfo` to the
//! directory, answers renewalInfo requests with the windows the test sets, echoes `replaces` in
//! the newOrder answer as an ARI CA must, and can refuse the next newOrder that carries
//! `replaces` with an `alreadyReplaced` problem, as a CA does for a certificate already
//! replaced. Everything else — accounts, orders, HTTP-01 validation, issuance — is Pebble's.
//! Pebble itself ignores the unknown `replaces` field: the order that carries it is forwarded to
//! Pebble as sent, and Pebble opens it.
//!
//! The ARI identifiers the tests expect are computed here with OpenSSL, independently of the
//! binary.

#[path = "support/acme_proxy.rs"]
mod acme_proxy;
#[path = "support/pebble.rs"]
mod pebble;
mod support;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::x509::X509;
use serde_json::Value;

use acme_proxy::{Host, Proxy, assert_installed};
use pebble::{Pebble, Settings};

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

// ---- the host under test ----------------------------------------------------------------------

/// The ARI identifier (RFC 9773 §4.1) of the leaf in a PEM file, computed here with OpenSSL:
/// base64url(AKI keyIdentifier) "." base64url(the serial's DER content).
fn ari_id(pem_file: &Path) -> String {
    let cert = X509::from_pem(&std::fs::read(pem_file).expect("read")).expect("pem");
    let aki = cert.authority_key_id().expect("Pebble's certificates carry an AKI");
    let mut serial = cert.serial_number().to_bn().expect("bn").to_vec();
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    format!("{}.{}", URL_SAFE_NO_PAD.encode(aki.as_slice()), URL_SAFE_NO_PAD.encode(serial))
}

fn replaces_of(payload: &Value) -> Option<&str> {
    payload.get("replaces").map(|r| r.as_str().expect("replaces is a string"))
}

/// Removes the keys of the certificates kept in `state/acme/issued/`: without its key a kept
/// certificate is not reused (reuse before re-order), so the next run orders — and names it as
/// the certificate replaced, which needs only its certificate.
fn forget_kept_keys(host: &Host) {
    for entry in std::fs::read_dir(host.path("state/acme/issued")).expect("issued") {
        let _ = std::fs::remove_file(entry.expect("entry").path().join("key.pem"));
    }
}

#[test]
fn ari_replaces_names_the_certificate_issued_before_and_is_dropped_when_the_ca_refuses_it() {
    let pebble = Pebble::start(Settings::default());
    let proxy = Proxy::start(&pebble, true);
    let host = Host::new("ari-replaces.acme-test.com");
    host.configure(&pebble, &proxy, "");

    // The first order replaces nothing: there is no earlier certificate, and the self-signed
    // one has no ARI identifier.
    let first = assert_installed(&host, &host.run().run(), &pebble);
    let orders = proxy.new_orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(replaces_of(&orders[0].0), None, "{orders:?}");
    let first_id = ari_id(&host.path("web/cert.pem"));

    // The certificate is broken again: the next order names the one issued before.
    host.self_signed();
    forget_kept_keys(&host);
    let out = host.run().arg("--verbose").run();
    let second = assert_installed(&host, &out, &pebble);
    assert_ne!(first, second);
    let orders = proxy.new_orders();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(replaces_of(&orders[1].0), Some(first_id.as_str()), "{orders:?}");
    assert_eq!(orders[1].1, 201, "Pebble (no ARI) accepts an order carrying the unknown field");
    let opened = host.events("order-opened");
    assert_eq!(opened[0].get("replaces"), None);
    assert_eq!(opened[1]["replaces"], first_id.as_str());
    let issued = host.events("issued");
    assert_eq!(issued[1]["replaces"], first_id.as_str());
    assert_eq!(issued[1]["order-url"], opened[1]["order-url"]);
    let stored = PathBuf::from(issued[1]["stored"].as_str().expect("stored"));
    let record: Value =
        serde_json::from_slice(&std::fs::read(stored.join("order.json")).expect("order.json")).expect("json");
    assert_eq!(record["replaces"], first_id.as_str());
    assert!(
        out.stdout.contains(&format!(
            "replaces the certificate {first_id} (RFC 9773 `replaces`): the certificate issued by this CA"
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!(", replacing {first_id}); kept in")), "{}", out.stdout);

    // The CA refuses the next `replaces` (alreadyReplaced): the order is opened again without
    // it, and the certificate is still issued and installed.
    let second_id = ari_id(&host.path("web/cert.pem"));
    proxy.with(|b| b.refuse_next_replaces = true);
    host.self_signed();
    forget_kept_keys(&host);
    let out = host.run().arg("--verbose").run();
    let third = assert_installed(&host, &out, &pebble);
    assert_ne!(third, second);
    let orders = proxy.new_orders();
    assert_eq!(orders.len(), 4, "{orders:?}");
    assert_eq!((replaces_of(&orders[2].0), orders[2].1), (Some(second_id.as_str()), 409), "{orders:?}");
    assert_eq!((replaces_of(&orders[3].0), orders[3].1), (None, 201), "{orders:?}");
    assert_eq!(orders[3].0["identifiers"], orders[2].0["identifiers"], "the same order otherwise");
    let refused = host.events("replaces-refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["replaces"], second_id.as_str());
    assert_eq!(refused[0]["problem"]["type"], "urn:ietf:params:acme:error:alreadyReplaced");
    let opened = host.events("order-opened");
    assert_eq!(opened.len(), 3);
    assert_eq!(opened[2].get("replaces"), None);
    assert_eq!(host.events("issued")[2].get("replaces"), None);
    assert!(host.events("order-failed").is_empty());
    assert!(
        out.stdout
            .contains(&format!("did not accept an order naming {second_id} as the certificate it replaces"))
            && out.stdout.contains("alreadyReplaced")
            && out.stdout.contains("opened again without `replaces`"),
        "{}",
        out.stdout
    );
}

#[test]
fn ari_replaces_an_installed_certificate_the_ca_knows_once_its_window_opens() {
    let pebble = Pebble::start(Settings::default());
    let proxy = Proxy::start(&pebble, true);
    // Another client (another state directory, another account) got the installed certificate.
    let earlier = Host::new("ari-installed.acme-test.com");
    earlier.configure(&pebble, &proxy, "");
    assert_installed(&earlier, &earlier.run().run(), &pebble);
    let host = Host::new("ari-installed.acme-test.com");
    for file in ["web/cert.pem", "web/key.pem"] {
        std::fs::copy(earlier.path(file), host.path(file)).expect("copy");
    }
    let installed_id = ari_id(&host.path("web/cert.pem"));
    host.configure(&pebble, &proxy, "[network]\ndns = false\nrevocation = false\ntimeout-seconds = 5\n");
    // The renewal facts need the network: this test asks for them (loopback only).
    let run = || host.run().env("CHECKALLSSLCERTS_NETWORK_FACTS", "on");

    // The CA's window is in the future: the trusted certificate is kept, nothing is ordered.
    let t = now();
    proxy.with(|b| b.windows.insert(installed_id.clone(), (t + 20 * DAY, t + 25 * DAY)));
    let out = run().arg("--json").run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["order-hostname-certificate"], false, "{report:#}");
    assert_eq!(proxy.new_orders().len(), 1, "only the earlier client's order");

    // The window has passed (answers are cached until Retry-After, so the cache goes): the
    // default policy replaces it, and the order names it.
    std::fs::remove_dir_all(host.path("state/cache/ari")).expect("the ARI cache was written");
    proxy.with(|b| b.windows.insert(installed_id.clone(), (t - 3 * DAY, t - DAY)));
    let out = run().arg("--verbose").run();
    assert_installed(&host, &out, &pebble);
    assert!(out.stdout.contains("renewal-window"), "{}", out.stdout);
    let orders = proxy.new_orders();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(replaces_of(&orders[1].0), Some(installed_id.as_str()), "{orders:?}");
    assert_eq!(host.events("order-opened")[0]["replaces"], installed_id.as_str());
    assert!(
        out.stdout.contains(&format!(
            "replaces the certificate {installed_id} (RFC 9773 `replaces`): the certificate installed for \
             ari-installed.acme-test.com (service web"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn ari_without_renewal_info_in_the_directory_no_replaces_is_sent() {
    let pebble = Pebble::start(Settings::default());
    // Pebble's own directory, passed through: no renewalInfo.
    let proxy = Proxy::start(&pebble, false);
    let host = Host::new("no-ari.acme-test.com");
    host.configure(&pebble, &proxy, "");
    let first = assert_installed(&host, &host.run().run(), &pebble);
    let first_id = ari_id(&host.path("web/cert.pem"));
    host.self_signed();
    forget_kept_keys(&host);
    let out = host.run().arg("--verbose").run();
    assert_ne!(assert_installed(&host, &out, &pebble), first);
    let orders = proxy.new_orders();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert!(orders.iter().all(|(payload, _)| payload.get("replaces").is_none()), "{orders:?}");
    assert!(host.events("order-opened").iter().all(|e| e.get("replaces").is_none()));
    assert!(
        out.stdout.contains(&format!(
            "offers no renewalInfo (RFC 9773 ARI), so the order does not name the certificate it replaces ({first_id})"
        )),
        "{}",
        out.stdout
    );
}
