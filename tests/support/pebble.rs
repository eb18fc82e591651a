//! A real ACME CA for tests: Debian's `pebble` and `pebble-challtestsrv` (package `pebble`),
//! on loopback ports picked here, killed when the [`Pebble`] is dropped.
//!
//! `pebble-challtestsrv` is Pebble's DNS server: every A query is answered with 127.0.0.1 and
//! AAAA queries get nothing, so Pebble's validator connects to `127.0.0.1:<http_port>` for
//! HTTP-01; its management API publishes TXT records for DNS-01. Pebble's API certificate is
//! made here; its issuing root (new at every start) is fetched from the management port.
#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};

/// A child process killed (and reaped) on drop.
pub struct Guard {
    pub name: String,
    pub child: Child,
}

impl Guard {
    pub fn spawn(name: &str, command: &mut Command) -> Guard {
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e} (is it installed?)"));
        Guard { name: name.to_owned(), child }
    }

    /// Panics with `log` if the process has exited.
    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Free for TCP and UDP (see [`crate::support::free_port`]).
pub use crate::support::free_port;

/// Waits until something accepts connections on `port` (bounded).
pub fn wait_for_port(port: u16, guard: &mut Guard, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < deadline {
        guard.assert_running(log);
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{} did not listen on {port} within 20 s:\n{}",
        guard.name,
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// How to run Pebble.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `PEBBLE_WFE_NONCEREJECT` (Pebble's default is 5 %).
    pub nonce_reject: Option<u32>,
    /// `externalAccountBindingRequired`.
    pub eab_required: bool,
    /// `externalAccountMACKeys`: key id → base64url HMAC key.
    pub eab_keys: Vec<(String, String)>,
    /// `domainBlocklist`: names Pebble refuses (rejectedIdentifier).
    pub blocklist: Vec<String>,
    /// `PEBBLE_VA_SLEEPTIME`: the validator waits a random time below this many seconds before
    /// it checks a challenge (a slow CA); `None`: it checks at once (`PEBBLE_VA_NOSLEEP`).
    pub va_sleep_seconds: Option<u32>,
}

/// A running Pebble.
pub struct Pebble {
    pub dir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>/dir`
    pub directory_url: String,
    /// The certificate of Pebble's HTTPS API (for `acme.ca-bundle`).
    pub api_cert: PathBuf,
    /// The root that issues certificates (for `[trust] extra-roots`).
    pub root: PathBuf,
    /// Where Pebble's validator connects for HTTP-01.
    pub http_port: u16,
    /// pebble-challtestsrv's management API (TXT records for DNS-01).
    pub dns_management: u16,
    pub api_port: u16,
    pub management_port: u16,
    pebble_log: PathBuf,
    /// How Pebble was started (for [`Pebble::restart`]).
    config_path: PathBuf,
    dns_port: u16,
    /// The environment Pebble runs with (its fault and speed settings).
    env: Vec<(String, String)>,
    // Dropped in this order: Pebble first, then its DNS.
    pebble: Guard,
    challtestsrv: Guard,
}

/// A self-signed EC P-256 TLS certificate named `cn`, for the DNS names and IP addresses given,
/// valid for `days`, and its key (Pebble's API, the test fixtures in front of it).
pub fn self_signed_tls(cn: &str, dns: &[&str], ips: &[&str], days: u32) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time")).expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(days).expect("time")).expect("na");
    let mut san = SubjectAlternativeName::new();
    for name in dns {
        san.dns(name);
    }
    for ip in ips {
        san.ip(ip);
    }
    let san = san.build(&b.x509v3_context(None, None)).expect("san");
    b.append_extension(san).expect("san");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (b.build(), key)
}

fn self_signed_api_cert(dir: &Path) -> (PathBuf, PathBuf) {
    // `ca.invalid`: the name tests/http_proxy.rs reaches Pebble by, through an outbound proxy.
    let (cert, key) = self_signed_tls("localhost", &["localhost", "ca.invalid"], &["127.0.0.1"], 30);
    let cert_file = dir.join("pebble-api.pem");
    let key_file = dir.join("pebble-api.key");
    std::fs::write(&cert_file, cert.to_pem().expect("pem")).expect("write");
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    (cert_file, key_file)
}

/// GET over HTTPS trusting `ca` (reqwest with OpenSSL, as the tool itself).
pub fn https_get(url: &str, ca: &Path) -> String {
    let pem = std::fs::read(ca).expect("read ca");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let response = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.text().await.expect("body")
    })
}

impl Pebble {
    pub fn start(settings: Settings) -> Pebble {
        let dir = tempfile::tempdir().expect("tempdir");
        let (api_cert, api_key) = self_signed_api_cert(dir.path());
        let (api_port, management, http_port, tls_port) =
            (free_port(), free_port(), free_port(), free_port());
        let (dns_port, dns_management) = (free_port(), free_port());

        let dns_log = dir.path().join("challtestsrv.log");
        let mut challtestsrv = Guard::spawn(
            "pebble-challtestsrv",
            Command::new("pebble-challtestsrv")
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .stdin(Stdio::null())
                .stdout(File::create(&dns_log).expect("log"))
                .stderr(File::create(&dns_log).expect("log")),
        );
        wait_for_port(dns_management, &mut challtestsrv, &dns_log);

        let mac_keys: serde_json::Map<String, serde_json::Value> = settings
            .eab_keys
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{api_port}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": api_cert,
                "privateKey": api_key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": settings.eab_required,
                "externalAccountMACKeys": mac_keys,
                "domainBlocklist": settings.blocklist,
            }
        });
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");

        let pebble_log = dir.path().join("pebble.log");
        let mut env = Vec::new();
        match settings.va_sleep_seconds {
            Some(seconds) => env.push(("PEBBLE_VA_SLEEPTIME".to_string(), seconds.to_string())),
            None => env.push(("PEBBLE_VA_NOSLEEP".to_string(), "1".to_string())),
        }
        if let Some(percent) = settings.nonce_reject {
            env.push(("PEBBLE_WFE_NONCEREJECT".to_string(), percent.to_string()));
        }
        let pebble = spawn_pebble(&config_path, dns_port, &env, &pebble_log, api_port, management);
        let root = dir.path().join("pebble-root.pem");
        fetch_root(management, &api_cert, &root);

        Pebble {
            directory_url: format!("https://127.0.0.1:{api_port}/dir"),
            api_cert,
            root,
            http_port,
            dns_management,
            api_port,
            management_port: management,
            pebble_log,
            config_path,
            dns_port,
            env,
            pebble,
            challtestsrv,
            dir,
        }
    }

    /// Pebble's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.pebble_log).unwrap_or_default()
    }

    /// Starts Pebble again (a new process, the same ports and settings): it has forgotten every
    /// account and order, and issues from a new root (written to [`Pebble::root`] again).
    pub fn restart(&mut self) {
        self.stop();
        self.pebble = spawn_pebble(
            &self.config_path,
            self.dns_port,
            &self.env,
            &self.pebble_log,
            self.api_port,
            self.management_port,
        );
        fetch_root(self.management_port, &self.api_cert, &self.root);
    }

    /// Stops Pebble (the CA becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.pebble.child.kill();
        let _ = self.pebble.child.wait();
    }
}

fn spawn_pebble(
    config_path: &Path,
    dns_port: u16,
    env: &[(String, String)],
    pebble_log: &Path,
    api_port: u16,
    management: u16,
) -> Guard {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(pebble_log).expect("log");
    let mut command = Command::new("pebble");
    command
        .arg("-config")
        .arg(config_path)
        .args(["-dnsserver", &format!("127.0.0.1:{dns_port}"), "-strict=false"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    let mut pebble = Guard::spawn("pebble", &mut command);
    wait_for_port(api_port, &mut pebble, pebble_log);
    wait_for_port(management, &mut pebble, pebble_log);
    pebble
}

/// Pebble's issuing root (new at every start), written to `root`.
fn fetch_root(management: u16, api_cert: &Path, root: &Path) {
    let pem = https_get(&format!("https://127.0.0.1:{management}/roots/0"), api_cert);
    assert!(pem.contains("BEGIN CERTIFICATE"), "root: {pem}");
    std::fs::write(root, pem).expect("write root");
}
