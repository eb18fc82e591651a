//! The standard proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) in the
//! binary's three HTTP clients — the ACME client, the network facts, the policy download — set
//! on the child process only (never on this test process).
//!
//! The outbound proxy is a fixture (`support/forward_proxy.rs`: a recording forward proxy on
//! loopback standing in for an admin's proxy, which this machine does not have). The target is
//! `ca.invalid`, a name that no resolver knows: only the proxy "resolves" it (to Pebble, or to
//! nothing), so a request that reaches it went through the proxy. The CA is Debian's Pebble.

#[path = "support/forward_proxy.rs"]
mod forward_proxy;
#[path = "support/pebble.rs"]
mod pebble;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use forward_proxy::RecordingProxy;
use openssl::x509::X509;
use pebble::{Pebble, Settings};
use support::{Outcome, Run};

use checkallsslcerts::actions::placeholder;
use checkallsslcerts::config::KeyAlgorithm;

const ACME_FAILED: i32 = 69;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// A server with one service, `web`, holding a self-signed certificate.
struct Host {
    dir: tempfile::TempDir,
    hostname: String,
}

impl Host {
    fn new(hostname: &str) -> Host {
        let host = Host { dir: tempfile::tempdir().expect("tempdir"), hostname: hostname.to_owned() };
        std::fs::create_dir_all(host.path("web")).expect("web");
        host.self_signed();
        host
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn self_signed(&self) {
        let m =
            placeholder::generate(&self.hostname, &[], KeyAlgorithm::EcP256, 30, now()).expect("placeholder");
        std::fs::write(self.path("web/cert.pem"), &m.certificate_pem).expect("cert");
        std::fs::write(self.path("web/key.pem"), &*m.key_pem).expect("key");
    }

    /// `[acme]` at `directory` (trusting `ca_bundle`), `[trust]` with `root`, then `extra`.
    fn configure(&self, directory: &str, ca_bundle: &Path, root: &Path, http_port: u16, extra: &str) {
        let text = format!(
            "hostname = \"{host}\"\nstate-dir = \"{state}\"\n\n[trust]\nextra-roots = [\"{root}\"]\n\n\
             [acme]\ndirectory = \"{directory}\"\nca-bundle = \"{bundle}\"\nemail = \"admin@example.com\"\n\
             pending-wait-seconds = 20\nlisten = \"127.0.0.1:{http_port}\"\n\n{extra}\n\n\
             [[service]]\nname = \"web\"\ncertificate = \"{web}/cert.pem\"\nkey = \"{web}/key.pem\"\n",
            host = self.hostname,
            state = self.path("state").display(),
            root = root.display(),
            bundle = ca_bundle.display(),
            web = self.path("web").display(),
        );
        // Hermetic: no mail through this machine's sendmail (tests/notify.rs tests the mail).
        let text = if text.contains("[mail]") { text } else { text + "\n[mail]\nenabled = false\n" };
        std::fs::write(self.path("config.toml"), text).expect("config");
    }

    fn run(&self) -> Run {
        Run::new().arg("--config").arg(self.path("config.toml"))
    }

    fn issuer(&self) -> String {
        let leaf = X509::from_pem(&std::fs::read(self.path("web/cert.pem")).expect("cert")).expect("pem");
        format!("{:?}", leaf.issuer_name())
    }
}

fn text(out: &Outcome) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

#[test]
fn the_acme_client_orders_through_the_proxy_and_reaches_loopback_directly() {
    let pebble = Pebble::start(Settings::default());
    let proxy = RecordingProxy::start(HashMap::from([("ca.invalid:443".to_owned(), pebble.api_port)]));
    let host = Host::new("proxied.acme-test.com");

    // The CA by a name only the proxy knows: every request goes through it (Pebble builds its
    // URLs from the Host header, so they all name ca.invalid), and the certificate is issued.
    // HTTP-01 needs no proxy: Pebble's validator connects to this host's listener itself.
    host.configure("https://ca.invalid/dir", &pebble.api_cert, &pebble.root, pebble.http_port, "");
    let out = host.run().env("HTTPS_PROXY", proxy.url()).run();
    assert_eq!(out.code, 0, "{}\n{}", text(&out), pebble.log());
    assert!(host.issuer().contains("Pebble Intermediate"), "{}", host.issuer());
    let seen = proxy.seen();
    assert!(!seen.is_empty() && seen.iter().all(|s| s == "CONNECT ca.invalid:443"), "{seen:?}");

    // The same proxy variables, the CA on loopback: straight to it, the proxy sees nothing.
    host.self_signed();
    host.configure(&pebble.directory_url, &pebble.api_cert, &pebble.root, pebble.http_port, "");
    let out = host.run().env("HTTPS_PROXY", proxy.url()).env("ALL_PROXY", proxy.url()).run();
    assert_eq!(out.code, 0, "{}\n{}", text(&out), pebble.log());
    assert!(host.issuer().contains("Pebble Intermediate"), "{}", host.issuer());
    assert_eq!(proxy.seen(), seen, "loopback never goes through the proxy");
}

#[test]
fn the_network_facts_and_the_policy_download_use_the_proxy_and_a_bad_variable_is_named() {
    // No route: the proxy refuses every tunnel (502), after recording it.
    let proxy = RecordingProxy::start(HashMap::new());
    let host = Host::new("facts.acme-test.com");
    let unused = host.path("unused.pem");
    std::fs::write(&unused, placeholder_root()).expect("bundle");
    host.configure(
        "https://ca.invalid/dir",
        &unused,
        &unused,
        pebble::free_port(),
        "[network]\ndns = false\nrevocation = false\ntimeout-seconds = 5\n",
    );

    // Network facts (a dry run: the ACME step does not run) read the CA's directory.
    let out = host
        .run()
        .args(["--dry-run", "--verbose"])
        .env("CHECKALLSSLCERTS_NETWORK_FACTS", "on")
        .env("https_proxy", proxy.url())
        .run();
    assert_eq!(out.code, 0, "{}", text(&out));
    assert_eq!(proxy.seen(), vec!["CONNECT ca.invalid:443"]);
    assert!(text(&out).contains("ca.invalid"), "{}", text(&out));

    // The policy download goes through the proxy as well (`ALL_PROXY` when no `HTTPS_PROXY`).
    let out = host
        .run()
        .args(["policy", "install", "https://ca.invalid/policy.wasm", "--allow-unsigned"])
        .env("ALL_PROXY", proxy.url())
        .run();
    assert_ne!(out.code, 0, "{}", text(&out));
    assert!(text(&out).contains("https://ca.invalid/policy.wasm"), "{}", text(&out));
    assert_eq!(proxy.seen(), vec!["CONNECT ca.invalid:443", "CONNECT ca.invalid:443"]);

    // A variable that is not a usable proxy: an error naming it (never its password), from each
    // client, and nothing is sent anywhere.
    let socks = "socks5://admin:secret@127.0.0.1:1080";
    let out = host
        .run()
        .args(["policy", "install", "https://ca.invalid/policy.wasm", "--allow-unsigned"])
        .env("HTTPS_PROXY", socks)
        .run();
    assert_ne!(out.code, 0, "{}", text(&out));
    for needle in ["environment variable HTTPS_PROXY", "SOCKS proxies are not supported"] {
        assert!(text(&out).contains(needle), "{needle}: {}", text(&out));
    }
    assert!(!text(&out).contains("secret"), "{}", text(&out));
    let out = host.run().env("HTTPS_PROXY", socks).run();
    assert_eq!(out.code, ACME_FAILED, "{}", text(&out));
    assert!(text(&out).contains("environment variable HTTPS_PROXY"), "{}", text(&out));
    assert!(!text(&out).contains("secret"), "{}", text(&out));
    // A local setting is no failed order: no back-off.
    if let Ok(limits) = std::fs::read_to_string(host.path("state/acme/limits.json")) {
        let limits: serde_json::Value = serde_json::from_str(&limits).expect("json");
        assert!(limits["backoff-until"].is_null(), "{limits}");
    }
    assert_eq!(proxy.seen().len(), 2);
}

/// Some PEM certificate (for an `acme.ca-bundle` that must exist but is never used).
fn placeholder_root() -> Vec<u8> {
    placeholder::generate("unused.invalid", &[], KeyAlgorithm::EcP256, 30, now())
        .expect("placeholder")
        .certificate_pem
}
