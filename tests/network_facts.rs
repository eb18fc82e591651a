//! Facts from outside the host, each through a full `checkallsslcerts --dry-run` run (and a few
//! real runs for the caches), against real servers on loopback:
//!
//! - revocation by OCSP: `openssl ocsp` as the responder (good / revoked / unknown / down);
//! - revocation by CRL: CRLs signed here, served over HTTP by a small listener in this file;
//! - hostname DNS and CAA: `dnsmasq` (Debian `dnsmasq-base`) as the name server;
//! - ARI: Debian's Pebble 2.4 has no renewalInfo endpoint, so the ACME directory and its
//!   renewalInfo resource are a **test fixture**: the same small listener, over HTTPS, serving
//!   RFC 9773 answers with windows in the past, present and future.
//!
//! Every process is started on a free port and killed by a guard on drop; every wait is
//! bounded.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Extension, X509NameBuilder};
use serde_json::Value;
use support::Run;

const DAY: i64 = 86_400;
const HOST: &str = "host.example.com";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

// ---- processes and ports ------------------------------------------------------------------

/// Kills the process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Free on every address too: `openssl ocsp -port` binds them all.
use support::free_port;

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (at most 10 s).
fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server on port {port} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} after 10 s");
}

// ---- a PKI with the extensions the network checks read ------------------------------------

struct Issued {
    cert: X509,
    key: PKey<Private>,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// DER type-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn extension(oid: &str, der: &[u8]) -> X509Extension {
    let oid = Asn1Object::from_str(oid).unwrap();
    X509Extension::new_from_der(&oid, false, &Asn1OctetString::new_from_bytes(der).unwrap()).unwrap()
}

/// authorityInfoAccess with one OCSP responder.
fn aia_ocsp(url: &str) -> X509Extension {
    const ID_AD_OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let access = [ID_AD_OCSP.to_vec(), tlv(0x86, url.as_bytes())].concat();
    extension("1.3.6.1.5.5.7.1.1", &tlv(0x30, &tlv(0x30, &access)))
}

/// cRLDistributionPoints with one URI.
fn crl_dp(url: &str) -> X509Extension {
    let full_name = tlv(0xa0, &tlv(0xa0, &tlv(0x86, url.as_bytes())));
    extension("2.5.29.31", &tlv(0x30, &tlv(0x30, &full_name)))
}

struct Spec<'a> {
    cn: &'a str,
    serial: u32,
    ca: bool,
    ocsp: Option<&'a str>,
    crl: Option<&'a str>,
    not_after: i64,
    /// An OCSP responder certificate (extended key usage OCSPSigning) instead of a server's.
    ocsp_signing: bool,
}

fn leaf_spec(cn: &str, serial: u32) -> Spec<'_> {
    Spec { cn, serial, ca: false, ocsp: None, crl: None, not_after: now() + 60 * DAY, ocsp_signing: false }
}

fn issue(spec: &Spec<'_>, issuer: Option<&Issued>) -> Issued {
    let key = ec_key();
    let mut name = X509NameBuilder::new().unwrap();
    if spec.ca {
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Network Facts Test CA").unwrap();
    }
    name.append_entry_by_nid(Nid::COMMONNAME, spec.cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(spec.serial).unwrap()).unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name())).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now() - DAY).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap()).unwrap();
    let mut bc = BasicConstraints::new();
    bc.critical();
    if spec.ca {
        bc.ca();
    }
    b.append_extension(bc.build().unwrap()).unwrap();
    let mut ku = KeyUsage::new();
    ku.critical();
    if spec.ca {
        ku.key_cert_sign().crl_sign();
    } else {
        ku.digital_signature();
        let mut eku = ExtendedKeyUsage::new();
        if spec.ocsp_signing {
            eku.other("OCSPSigning")
        } else {
            eku.server_auth()
        };
        b.append_extension(eku.build().unwrap()).unwrap();
        let san = SubjectAlternativeName::new().dns(spec.cn).build(&b.x509v3_context(None, None)).unwrap();
        b.append_extension(san).unwrap();
    }
    b.append_extension(ku.build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(ski).unwrap();
    if let Some(i) = issuer {
        let aki =
            AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&i.cert), None)).unwrap();
        b.append_extension(aki).unwrap();
    }
    if let Some(url) = spec.ocsp {
        b.append_extension(aia_ocsp(url)).unwrap();
    }
    if let Some(url) = spec.crl {
        b.append_extension(crl_dp(url)).unwrap();
    }
    b.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256()).unwrap();
    Issued { cert: b.build(), key }
}

/// A root and an intermediate under it.
struct Pki {
    root: Issued,
    int: Issued,
}

fn pki() -> Pki {
    let root_spec = Spec {
        cn: "Network Facts Root",
        serial: 1,
        ca: true,
        ocsp: None,
        crl: None,
        not_after: now() + 3650 * DAY,
        ocsp_signing: false,
    };
    let root = issue(&root_spec, None);
    let int_spec = Spec { cn: "Network Facts Intermediate", serial: 2, ..root_spec };
    let int = issue(&int_spec, Some(&root));
    Pki { root, int }
}

/// A CRL by `issuer` listing `revoked` serials (revoked one hour ago, reason keyCompromise),
/// encoded here in DER and signed with the issuer's key (the openssl crate cannot add CRL entry
/// extensions such as the reason code).
fn crl_der(issuer: &Issued, revoked: &[u32]) -> Vec<u8> {
    crl_der_with(issuer, &issuer.key, now() - 3600, now() + 7 * DAY, revoked)
}

/// [`crl_der`] current from `this` to `next`, under `issuer`'s name but signed by `signer`
/// (another key than the issuer's makes a forgery).
fn crl_der_with(issuer: &Issued, signer: &PKey<Private>, this: i64, next: i64, revoked: &[u32]) -> Vec<u8> {
    const ECDSA_SHA256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let utc = |t: i64| {
        tlv(
            0x17,
            chrono::DateTime::from_timestamp(t, 0).unwrap().format("%y%m%d%H%M%SZ").to_string().as_bytes(),
        )
    };
    let integer = |v: u32| {
        let mut bytes: Vec<u8> = v.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        if bytes.first().is_none_or(|b| b & 0x80 != 0) {
            bytes.insert(0, 0);
        }
        tlv(0x02, &bytes)
    };
    let ext = |oid: [u8; 3], value: &[u8]| tlv(0x30, &[tlv(0x06, &oid), tlv(0x04, value)].concat());
    let alg = tlv(0x30, &ECDSA_SHA256);
    let entries: Vec<u8> = revoked
        .iter()
        .flat_map(|serial| {
            let reason = ext([0x55, 0x1d, 0x15], &[0x0a, 0x01, 0x01]); // keyCompromise
            tlv(0x30, &[integer(*serial), utc(this - 60), tlv(0x30, &reason)].concat())
        })
        .collect();
    let key_id = issuer.cert.subject_key_id().unwrap().as_slice().to_vec();
    let extensions = [
        ext([0x55, 0x1d, 0x23], &tlv(0x30, &tlv(0x80, &key_id))), // authorityKeyIdentifier
        ext([0x55, 0x1d, 0x14], &[0x02, 0x01, 0x01]),             // cRLNumber
    ]
    .concat();
    let mut tbs =
        [integer(1), alg.clone(), issuer.cert.subject_name().to_der().unwrap(), utc(this), utc(next)]
            .concat();
    if !entries.is_empty() {
        tbs.extend(tlv(0x30, &entries));
    }
    tbs.extend(tlv(0xa0, &tlv(0x30, &extensions)));
    let tbs = tlv(0x30, &tbs);
    let signature = openssl::sign::Signer::new(MessageDigest::sha256(), signer)
        .unwrap()
        .sign_oneshot_to_vec(&tbs)
        .unwrap();
    let der = tlv(0x30, &[tbs, alg, tlv(0x03, &[&[0u8][..], &signature].concat())].concat());
    // OpenSSL must read it back.
    openssl::x509::X509Crl::from_der(&der).unwrap();
    der
}

// ---- a small HTTP(S) listener: CRLs, and the ACME directory + renewalInfo fixture ----------

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: body.into() }
    }
}

type Routes = Arc<Mutex<HashMap<String, Reply>>>;

/// Serves fixed replies by path; counts the requests per path.
struct HttpServer {
    port: u16,
    routes: Routes,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Plain HTTP, or HTTPS with `tls` = (certificate, key) when given.
    fn start(tls: Option<&Issued>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.map(|issued| {
            let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
            a.set_certificate(&issued.cert).unwrap();
            a.set_private_key(&issued.key).unwrap();
            Arc::new(a.build())
        });
        let routes: Routes = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, h, s) = (routes.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let (r, h, acceptor) = (r.clone(), h.clone(), acceptor.clone());
                std::thread::spawn(move || match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream) {
                            serve(tls, &r, &h);
                        }
                    }
                    None => serve(stream, &r, &h),
                });
            }
        });
        HttpServer { port, routes, hits, stop, thread: Some(thread) }
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S: Read + Write>(stream: S, routes: &Routes, hits: &Mutex<HashMap<String, usize>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply {
        status: 404,
        headers: Vec::new(),
        body: b"not found".to_vec(),
    });
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let stream = reader.get_mut();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

// ---- openssl's OCSP responder and dnsmasq ---------------------------------------------------

/// `openssl ocsp` answering for certificates of `ca` from an index of (status line) entries,
/// its responses signed by `signer`.
fn ocsp_responder(dir: &Path, ca: &Issued, signer: &Issued, index: &[String]) -> (Guard, u16) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("index.txt"), index.join("")).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("signer.pem"), signer.cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("signer.key"), signer.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let port = free_port();
    let mut child = Command::new("openssl")
        .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
        .args(["-rsigner", "signer.pem", "-rkey", "signer.key", "-CA", "ca.pem", "-nmin", "5"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    // Ready when it says so. (A TCP probe would not do: `openssl ocsp` serves one connection at
    // a time and hangs on one that closes without a request.) The output is drained until exit.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for stream in out {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("waiting for OCSP client connections") => break,
            Ok(line) => said.push(line),
            Err(e) => panic!("openssl ocsp did not start on port {port} ({e}): {}", said.join("\n")),
        }
    }
    (Guard(child), port)
}

/// An index line: V(alid) or R(evoked, 2024-01-01 keyCompromise), for a serial.
fn index_line(serial: u32, cn: &str, revoked: bool) -> String {
    let (status, revocation) = if revoked { ("R", "240101000000Z,keyCompromise") } else { ("V", "") };
    format!("{status}\t491231235959Z\t{revocation}\t{serial:X}\tunknown\t/CN={cn}/serialNumber={serial:X}\n")
}

/// dnsmasq on 127.0.0.1, answering only from `args` (NXDOMAIN for everything else).
fn dnsmasq(args: &[String]) -> (Guard, u16) {
    for _ in 0..5 {
        // dnsmasq needs the port free for UDP and TCP: take one that is free for both.
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut child = Command::new("dnsmasq")
            .args(["--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file="])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--address=/#/"])
            .arg(format!("--port={port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq runs (Debian package dnsmasq-base)");
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = child.try_wait() {
            continue; // the port was taken meanwhile
        }
        wait_for_port(port, &mut child);
        return (Guard(child), port);
    }
    panic!("dnsmasq did not start");
}

// ---- the configuration and the runs ---------------------------------------------------------

/// A test directory with a PKI, services and a configuration.
struct Setup {
    dir: tempfile::TempDir,
    pki: Pki,
    hostname: String,
    extra: String,
    services: Vec<String>,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki();
        std::fs::write(dir.path().join("root.pem"), pki.root.cert.to_pem().unwrap()).unwrap();
        Setup { dir, pki, hostname: HOST.to_owned(), extra: String::new(), services: Vec::new() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A service whose files hold `leaf` (and `chain`).
    fn service(&mut self, name: &str, leaf: &Issued, chain: &[&X509]) {
        use std::os::unix::fs::PermissionsExt;
        let mut pem = leaf.cert.to_pem().unwrap();
        for c in chain {
            pem.extend(c.to_pem().unwrap());
        }
        let (cert, key) = (self.path(&format!("{name}.crt")), self.path(&format!("{name}.key")));
        std::fs::write(&cert, pem).unwrap();
        std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        self.services.push(format!(
            "[[service]]\nname = \"{name}\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ));
    }

    /// A leaf for the hostname under the intermediate, in a service with the chain.
    fn int_service(&mut self, name: &str, spec: &Spec<'_>) -> Issued {
        let leaf = issue(spec, Some(&self.pki.int));
        let int = self.pki.int.cert.clone();
        self.service(name, &leaf, &[&int]);
        leaf
    }

    fn config(&self) -> PathBuf {
        let text = format!(
            "hostname = \"{}\"\nstate-dir = \"{}\"\n{}\n[trust]\nsystem-roots = false\nextra-roots = [\"{}\"]\n\n{}",
            self.hostname,
            self.path("state").display(),
            self.extra,
            self.path("root.pem").display(),
            self.services.join("\n")
        );
        let path = self.path("config.toml");
        // Hermetic: no mail through this machine's sendmail (tests/notify.rs tests the mail).
        let text = if text.contains("[mail]") { text } else { text + "\n[mail]\nenabled = false\n" };
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `checkallsslcerts --json` (a dry run unless `real`), with network facts on.
    fn run_json(&self, real: bool) -> Value {
        let mut run =
            Run::new().env("CHECKALLSSLCERTS_NETWORK_FACTS", "on").arg("--config").arg(self.config());
        if !real {
            run = run.arg("--dry-run");
        }
        let out = run.arg("--json").run();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("JSON report ({e})\n--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr)
        })
    }

    /// `checkallsslcerts --dry-run --json` with every network fact off
    /// (`CHECKALLSSLCERTS_NETWORK_FACTS=off`), as on an air-gapped host.
    fn run_json_offline(&self) -> Value {
        let out = Run::new().arg("--config").arg(self.config()).args(["--dry-run", "--json"]).run();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("JSON report ({e})\n--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr)
        })
    }

    fn run_verbose(&self) -> String {
        let out = Run::new()
            .env("CHECKALLSSLCERTS_NETWORK_FACTS", "on")
            .arg("--config")
            .arg(self.config())
            .args(["--dry-run", "--verbose"])
            .run();
        format!("{}{}", out.stdout, out.stderr)
    }
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report:#}"))
}

fn cert_facts<'a>(report: &'a Value, name: &str) -> &'a Value {
    &service(report, name)["facts"]["certificate"]["ok"]
}

fn reasons(report: &Value, name: &str) -> Vec<String> {
    service(report, name)["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap_or("?").to_owned())
        .collect()
}

fn decision(report: &Value, name: &str) -> String {
    service(report, name)["decision"].as_str().unwrap().to_owned()
}

fn notices_about(report: &Value, name: &str) -> Vec<String> {
    report["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["service"] == name)
        .map(|n| format!("{}: {}", n["level"].as_str().unwrap(), n["message"].as_str().unwrap()))
        .collect()
}

fn host_notices(report: &Value) -> Vec<String> {
    report["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["service"].is_null())
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .collect()
}

// ---- the tests ------------------------------------------------------------------------------

#[test]
fn ocsp_good_revoked_unknown_and_responder_down() {
    let mut setup = Setup::new();
    setup.extra = "[network]\ndns = false\nari = false\ntimeout-seconds = 3\n".into();
    let index = [
        index_line(0x1001, HOST, false),
        index_line(0x1002, HOST, true),
        index_line(0x1006, HOST, false),
        index_line(0x1007, HOST, true),
    ];
    // The issuer signs its own responses.
    let (_responder, port) = ocsp_responder(&setup.path("ocsp"), &setup.pki.int, &setup.pki.int, &index);
    let url = format!("http://127.0.0.1:{port}");
    // A responder the issuer delegated to (a certificate with OCSPSigning, issued by it).
    let delegate =
        issue(&Spec { ocsp_signing: true, ..leaf_spec("OCSP responder", 0x1fff) }, Some(&setup.pki.int));
    let (_delegated, port) = ocsp_responder(&setup.path("delegated"), &setup.pki.int, &delegate, &index);
    let delegated = format!("http://127.0.0.1:{port}");
    // A responder signing with a key the issuer never vouched for (its own root's).
    let (_impostor, port) = ocsp_responder(&setup.path("impostor"), &setup.pki.int, &setup.pki.root, &index);
    let impostor = format!("http://127.0.0.1:{port}");
    let down = format!("http://127.0.0.1:{}", free_port());
    setup.int_service("good", &Spec { ocsp: Some(&url), ..leaf_spec(HOST, 0x1001) });
    setup.int_service("revoked", &Spec { ocsp: Some(&url), ..leaf_spec(HOST, 0x1002) });
    setup.int_service("unknown", &Spec { ocsp: Some(&url), ..leaf_spec(HOST, 0x1003) });
    setup.int_service("down", &Spec { ocsp: Some(&down), ..leaf_spec(HOST, 0x1004) });
    setup.int_service("none", &leaf_spec(HOST, 0x1005));
    setup.int_service("delegated", &Spec { ocsp: Some(&delegated), ..leaf_spec(HOST, 0x1006) });
    setup.int_service("impostor", &Spec { ocsp: Some(&impostor), ..leaf_spec(HOST, 0x1007) });

    let report = setup.run_json(false);
    assert_eq!(cert_facts(&report, "good")["revocation"], "good", "{report:#}");
    assert_eq!((decision(&report, "good").as_str(), reasons(&report, "good")), ("keep", vec![]));

    let revoked = &cert_facts(&report, "revoked")["revocation"]["revoked"];
    assert_eq!(revoked["reason"], "keyCompromise", "{report:#}");
    assert_eq!(revoked["revoked-at"], 1_704_067_200);
    // No CA configured: an unusable certificate gets a placeholder.
    assert_eq!(decision(&report, "revoked"), "placeholder");
    assert_eq!(reasons(&report, "revoked"), ["revoked"]);
    assert!(
        notices_about(&report, "revoked")
            .iter()
            .any(|n| n.starts_with("error:") && n.contains("revoked by its CA"))
    );

    let unknown = cert_facts(&report, "unknown")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(unknown.contains("does not know the certificate"), "{report:#}");
    assert_eq!((decision(&report, "unknown").as_str(), reasons(&report, "unknown")), ("keep", vec![]));
    assert!(
        notices_about(&report, "unknown")
            .iter()
            .any(|n| n.starts_with("warning:") && n.contains("could not be checked")),
        "{report:#}"
    );

    let down_why = cert_facts(&report, "down")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(down_why.contains(&format!("OCSP {down}")), "{report:#}");
    assert_eq!((decision(&report, "down").as_str(), reasons(&report, "down")), ("keep", vec![]));
    assert!(
        notices_about(&report, "down")
            .iter()
            .any(|n| n.starts_with("warning:") && n.contains("not treated as revoked"))
    );

    assert_eq!(cert_facts(&report, "none")["revocation"], "not-checked");

    assert_eq!(cert_facts(&report, "delegated")["revocation"], "good", "{report:#}");
    // The impostor says "revoked" (0x1007 is revoked in its index), but its signature is not the
    // issuer's: not trusted, so unknown — never revoked.
    let why = cert_facts(&report, "impostor")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("signature does not verify"), "{report:#}");
    assert_eq!((decision(&report, "impostor").as_str(), reasons(&report, "impostor")), ("keep", vec![]));

    let text = setup.run_verbose();
    assert!(text.contains("revocation: good"), "{text}");
    assert!(text.contains("revocation: REVOKED on 2024-01-01 00:00:00 UTC (keyCompromise)"), "{text}");
    assert!(text.contains("not checked: hostname DNS and CAA (dns = false in [network])"), "{text}");
}

#[test]
fn garbage_from_the_responder_is_unknown_never_revoked() {
    let mut setup = Setup::new();
    setup.extra = "[network]\ndns = false\nari = false\ntimeout-seconds = 3\n".into();
    let http = HttpServer::start(None);
    http.route("/ocsp", Reply::ok("<html>certainly not OCSP</html>"));
    http.route("/teapot", Reply { status: 418, headers: Vec::new(), body: Vec::new() });
    let garbage = http.url("http", "/ocsp");
    let teapot = http.url("http", "/teapot");
    setup.int_service("garbage", &Spec { ocsp: Some(&garbage), ..leaf_spec(HOST, 0x2001) });
    setup.int_service("teapot", &Spec { crl: Some(&teapot), ..leaf_spec(HOST, 0x2002) });
    let report = setup.run_json(false);
    let why = cert_facts(&report, "garbage")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("not an OCSP response"), "{report:#}");
    let why = cert_facts(&report, "teapot")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("HTTP status 418"), "{report:#}");
    for name in ["garbage", "teapot"] {
        assert_eq!((decision(&report, name).as_str(), reasons(&report, name)), ("keep", vec![]));
    }
}

#[test]
fn crl_good_and_revoked_one_download_per_url_and_cached() {
    let mut setup = Setup::new();
    setup.extra = "[network]\ndns = false\nari = false\ntimeout-seconds = 3\n".into();
    let http = HttpServer::start(None);
    http.route("/int.crl", Reply::ok(crl_der(&setup.pki.int, &[0x3002])));
    http.route("/root.crl", Reply::ok(crl_der(&setup.pki.root, &[])));
    http.route("/junk.crl", Reply::ok("<html>moved</html>"));
    let int_crl = http.url("http", "/int.crl");
    for (name, serial) in [("good", 0x3001), ("revoked", 0x3002), ("good2", 0x3003), ("good3", 0x3004)] {
        setup.int_service(name, &Spec { crl: Some(&int_crl), ..leaf_spec(HOST, serial) });
    }
    // Issued by the root itself, no chain in the file: the issuer comes from the trust store.
    let root_crl = http.url("http", "/root.crl");
    let direct = issue(&Spec { crl: Some(&root_crl), ..leaf_spec(HOST, 0x3005) }, Some(&setup.pki.root));
    setup.service("direct", &direct, &[]);
    let junk = http.url("http", "/junk.crl");
    setup.int_service("junk", &Spec { crl: Some(&junk), ..leaf_spec(HOST, 0x3006) });

    let report = setup.run_json(false);
    for name in ["good", "good2", "good3", "direct"] {
        assert_eq!(cert_facts(&report, name)["revocation"], "good", "{name}: {report:#}");
        assert_eq!(decision(&report, name), "keep");
    }
    let revoked = &cert_facts(&report, "revoked")["revocation"]["revoked"];
    assert_eq!(revoked["reason"], "keyCompromise", "{report:#}");
    assert_eq!(reasons(&report, "revoked"), ["revoked"]);
    assert_eq!(decision(&report, "revoked"), "placeholder");
    let why = cert_facts(&report, "junk")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("not a CRL"), "{report:#}");
    assert_eq!(decision(&report, "junk"), "keep");
    // Four services share one CRL URL: one download.
    assert_eq!(http.hits("/int.crl"), 1);
    // A dry run writes no cache.
    assert!(!setup.path("state/cache/crl").exists(), "a dry run wrote the CRL cache");

    // A real run caches the CRLs until their nextUpdate...
    let report = setup.run_json(true);
    assert_eq!(cert_facts(&report, "good")["revocation"], "good", "{report:#}");
    assert_eq!(http.hits("/int.crl"), 2);
    let cached = std::fs::read_dir(setup.path("state/cache/crl")).unwrap().count();
    assert_eq!(cached, 2, "the intermediate's and the root's CRLs (not the junk)");
    // ... so the next run does not download them again, and still finds the revoked one.
    drop(http);
    let report = setup.run_json(false);
    for name in ["good", "good2", "good3", "direct"] {
        assert_eq!(cert_facts(&report, name)["revocation"], "good", "{name}: {report:#}");
    }
    // The revoked service got its placeholder in the real run; the CRL still knows serial 0x3002.
    assert_eq!(cert_facts(&report, "revoked")["self-signed"], true, "{report:#}");
}

#[test]
fn local_crl_files_decide_revocation_without_the_network() {
    let mut setup = Setup::new();
    std::fs::write(setup.path("int.crl"), crl_der(&setup.pki.int, &[0x4002, 0x4003])).unwrap();
    // Certificates that name no OCSP responder and no CRL: only the file can say.
    setup.int_service("good", &leaf_spec(HOST, 0x4001));
    setup.int_service("revoked", &leaf_spec(HOST, 0x4002));
    // Its distribution point's CRL says good; the file's "revoked" wins, and nobody is asked.
    let http = HttpServer::start(None);
    http.route("/int.crl", Reply::ok(crl_der(&setup.pki.int, &[])));
    let url = http.url("http", "/int.crl");
    setup.int_service("both", &Spec { crl: Some(&url), ..leaf_spec(HOST, 0x4003) });
    setup.extra = format!("[network]\ncrl-files = [\"{}\"]\n", setup.path("int.crl").display());

    let check = |report: &Value, how: &str| {
        assert_eq!(cert_facts(report, "good")["revocation"], "good", "{how}: {report:#}");
        assert_eq!(decision(report, "good"), "keep", "{how}");
        for name in ["revoked", "both"] {
            let revoked = &cert_facts(report, name)["revocation"]["revoked"];
            assert_eq!(revoked["reason"], "keyCompromise", "{how}: {name}: {report:#}");
            assert_eq!(reasons(report, name), ["revoked"], "{how}: {name}");
            assert_eq!(decision(report, name), "placeholder", "{how}: {name}");
        }
        assert!(host_notices(report).is_empty(), "{how}: {:?}", host_notices(report));
    };
    // Air-gapped: every network fact off.
    check(&setup.run_json_offline(), "network facts off");
    setup.extra += "revocation = false\ndns = false\nari = false\n";
    check(&setup.run_json(false), "every [network] check off");
    // Online: the file is read too, and a certificate it lists as revoked is not asked about.
    setup.extra = setup.extra.replace("revocation = false\n", "");
    check(&setup.run_json(false), "online");
    assert_eq!(http.hits("/int.crl"), 0, "the file's revoked needs no download");
}

#[test]
fn a_crl_dir_uses_the_good_files_and_names_the_bad_ones() {
    let mut setup = Setup::new();
    let dir = setup.path("crls");
    std::fs::create_dir(&dir).unwrap();
    // A good CRL (PEM) of the intermediate, garbage, and a file that is not a CRL's name.
    let der = crl_der(&setup.pki.int, &[0x5002]);
    let pem = openssl::x509::X509Crl::from_der(&der).unwrap().to_pem().unwrap();
    std::fs::write(dir.join("intermediate.pem"), pem).unwrap();
    std::fs::write(dir.join("garbage.crl"), "<html>404 not found</html>").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a CRL and not read").unwrap();
    // The root's CRL, out of date for a week.
    let root = &setup.pki.root;
    let stale = crl_der_with(root, &root.key, now() - 30 * DAY, now() - 7 * DAY, &[]);
    std::fs::write(setup.path("root.crl"), stale).unwrap();
    // A second intermediate, whose "CRL" is signed by someone else and lists its certificate.
    let second_spec = Spec {
        cn: "Second Intermediate",
        serial: 3,
        ca: true,
        ocsp: None,
        crl: None,
        not_after: now() + 3650 * DAY,
        ocsp_signing: false,
    };
    let second = issue(&second_spec, Some(&setup.pki.root));
    let forged = crl_der_with(&second, &ec_key(), now() - 3600, now() + DAY, &[0x5004]);
    std::fs::write(setup.path("forged.der"), forged).unwrap();
    setup.extra = format!(
        "[network]\ncrl-dir = \"{}\"\ncrl-files = [\"{}\", \"{}\"]\n",
        dir.display(),
        setup.path("root.crl").display(),
        setup.path("forged.der").display()
    );
    setup.int_service("good", &leaf_spec(HOST, 0x5001));
    setup.int_service("revoked", &leaf_spec(HOST, 0x5002));
    let direct = issue(&leaf_spec(HOST, 0x5003), Some(&setup.pki.root));
    setup.service("direct", &direct, &[]);
    let other = issue(&leaf_spec(HOST, 0x5004), Some(&second));
    let second_cert = second.cert.clone();
    setup.service("other", &other, &[&second_cert]);

    let report = setup.run_json_offline();
    assert_eq!(cert_facts(&report, "good")["revocation"], "good", "{report:#}");
    assert_eq!(
        cert_facts(&report, "revoked")["revocation"]["revoked"]["reason"],
        "keyCompromise",
        "{report:#}"
    );
    assert_eq!(reasons(&report, "revoked"), ["revoked"]);
    // Stale: unknown, never good.
    let why = cert_facts(&report, "direct")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("root.crl") && why.contains("out of date"), "{report:#}");
    assert_eq!(decision(&report, "direct"), "keep");
    // Forged: not trusted, so unknown — never revoked.
    let why = cert_facts(&report, "other")["revocation"]["unknown"].as_str().unwrap_or_default();
    assert!(why.contains("forged.der") && why.contains("signature does not verify"), "{report:#}");
    assert_eq!((decision(&report, "other").as_str(), reasons(&report, "other")), ("keep", vec![]));

    let notices = host_notices(&report);
    let about = |file: &str, what: &str| {
        let path = if file == "garbage.crl" { dir.join(file) } else { setup.path(file) };
        let path = path.display().to_string();
        assert!(
            notices.iter().any(|n| n.contains(&path) && n.contains(what)),
            "a notice naming {path} ({what}): {notices:#?}"
        );
    };
    about("garbage.crl", "is not a CRL");
    about("root.crl", "out of date");
    about("forged.der", "not trusted");
    assert_eq!(notices.len(), 3, "{notices:#?}");
}

/// The ACME directory fixture over HTTPS (Pebble 2.4 has no ARI): `caaIdentities` and, when
/// `ari`, a `renewalInfo` URL.
fn acme_fixture(setup: &Setup, ari: bool) -> (HttpServer, String) {
    let tls = tls_certificate(&setup.pki.int);
    let server = HttpServer::start(Some(&tls));
    let mut directory = serde_json::json!({
        "newNonce": server.url("https", "/nonce"),
        "meta": {"caaIdentities": ["ca.test"]},
    });
    if ari {
        directory["renewalInfo"] = server.url("https", "/ari").into();
    }
    server.route("/dir", Reply::ok(directory.to_string()));
    let bundle = setup.path("acme-ca.pem");
    let mut pem = setup.pki.int.cert.to_pem().unwrap();
    pem.extend(setup.pki.root.cert.to_pem().unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let section = format!(
        "[acme]\ndirectory = \"{}\"\nca-bundle = \"{}\"\nemail = \"admin@example.com\"\n",
        server.url("https", "/dir"),
        bundle.display()
    );
    (server, section)
}

/// The fixture's HTTPS certificate, for the IP address 127.0.0.1.
fn tls_certificate(issuer: &Issued) -> Issued {
    let key = ec_key();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "127.0.0.1").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(9).unwrap()).unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now() - DAY).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now() + 30 * DAY).unwrap()).unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&b.x509v3_context(Some(&issuer.cert), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
    b.sign(&issuer.key, MessageDigest::sha256()).unwrap();
    Issued { cert: b.build(), key }
}

/// A self-signed certificate for `name`: a defect the policy would replace if it could order.
fn self_signed_service(setup: &mut Setup, name: &str, hostname: &str) {
    let leaf = issue(&Spec { cn: hostname, ..leaf_spec(hostname, 0x4000) }, None);
    setup.service(name, &leaf, &[]);
}

#[test]
fn hostname_dns_and_caa_decide_whether_an_order_is_possible() {
    let caa_forbids = {
        // CAA 0 issue "other-ca.example", RDATA in hex for dnsmasq's --dns-rr.
        let mut rdata = vec![0u8, 5];
        rdata.extend(b"issue");
        rdata.extend(b"other-ca.example");
        format!("--dns-rr=caa-forbids.example.org,257,{}", hex(&rdata))
    };
    let (_dns, dns_port) = dnsmasq(&[
        "--host-record=host.example.com,127.0.0.10".into(),
        "--host-record=elsewhere.example.com,127.0.0.99".into(),
        "--host-record=www.caa-forbids.example.org,127.0.0.10".into(),
        caa_forbids,
    ]);
    let cases = [
        (HOST, "points-to-main-ip", "allows", None),
        (
            "elsewhere.example.com",
            "points-elsewhere",
            "allows",
            Some("does not resolve to this server's main IP"),
        ),
        ("nx.example.com", "does-not-resolve", "allows", Some("does not resolve in DNS")),
        (
            "www.caa-forbids.example.org",
            "points-to-main-ip",
            "forbids",
            Some("CAA records for the hostname do not allow the configured CA (allowed: other-ca.example)"),
        ),
    ];
    for (hostname, dns, caa, why_not) in cases {
        let mut setup = Setup::new();
        setup.hostname = hostname.to_owned();
        let (_acme, acme_section) = acme_fixture(&setup, false);
        setup.extra = format!(
            "main-ips = [\"127.0.0.10\"]\n[network]\ndns-servers = [\"127.0.0.1:{dns_port}\"]\nrevocation = false\ntimeout-seconds = 3\n\n{acme_section}"
        );
        self_signed_service(&mut setup, "web", hostname);
        let report = setup.run_json(false);
        assert_eq!(report["network"]["hostname-dns"], dns, "{hostname}: {report:#}");
        assert_eq!(report["network"]["ca-identities"], serde_json::json!(["ca.test"]), "{report:#}");
        match why_not {
            None => {
                assert_eq!(report["network"]["caa"], caa, "{report:#}");
                assert_eq!(report["network"]["addresses"], serde_json::json!(["127.0.0.10"]));
                // The order is possible: the self-signed certificate is to be replaced.
                assert_eq!(decision(&report, "web"), "replace", "{report:#}");
                assert_eq!(reasons(&report, "web"), ["self-signed"]);
                assert_eq!(report["order-hostname-certificate"], true);
            }
            Some(why) => {
                if caa == "forbids" {
                    assert_eq!(report["network"]["caa"]["forbids"], "other-ca.example", "{report:#}");
                    assert_eq!(report["network"]["caa-domain"], "caa-forbids.example.org");
                }
                assert_eq!(decision(&report, "web"), "keep", "{hostname}: {report:#}");
                assert_eq!(
                    reasons(&report, "web"),
                    ["self-signed", "hostname-not-on-this-server"],
                    "{hostname}"
                );
                assert_eq!(report["order-hostname-certificate"], false);
                assert!(
                    notices_about(&report, "web").iter().any(|n| n.contains(why)),
                    "{hostname}: {report:#}"
                );
            }
        }
        if hostname == HOST {
            let text = setup.run_verbose();
            assert!(
                text.contains("hostname DNS: points-to-main-ip (resolves to: 127.0.0.10; main IPs, configured: 127.0.0.10)"),
                "{text}"
            );
            assert!(
                text.contains(
                    "CAA: allows (no CAA records up to the top-level domain); the CA's identities: ca.test"
                ),
                "{text}"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ARI identifier, computed here independently of the host.
fn ari_id(cert: &X509) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut serial = cert.serial_number().to_bn().unwrap().to_vec();
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    format!("{}.{}", b64(cert.authority_key_id().unwrap().as_slice()), b64(&serial))
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn window_reply(start: i64, end: i64) -> Reply {
    let body = serde_json::json!({
        "suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)},
        "explanationURL": "https://ca.test/why",
    });
    Reply {
        status: 200,
        headers: vec![("Retry-After".into(), "3600".into())],
        body: body.to_string().into_bytes(),
    }
}

/// The default policy's point in the window: start + FNV-1a-64(fingerprint) mod (end - start).
fn renewal_point(start: i64, end: i64, fingerprint: &str) -> i64 {
    let hash = fingerprint
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    start + (hash % (end - start) as u64) as i64
}

fn fingerprint(cert: &X509) -> String {
    hex(&openssl::sha::sha256(&cert.to_der().unwrap()))
}

#[test]
fn ari_windows_in_the_past_present_and_future() {
    let mut setup = Setup::new();
    let (acme, acme_section) = acme_fixture(&setup, true);
    setup.extra =
        format!("[network]\ndns = false\nrevocation = false\ntimeout-seconds = 3\n\n{acme_section}");
    let t = now();
    let past = setup.int_service("past", &leaf_spec(HOST, 0x5001));
    let present = setup.int_service("present", &leaf_spec(HOST, 0x5002));
    let future = setup.int_service("future", &leaf_spec(HOST, 0x5003));
    setup.int_service("unknown-to-ca", &leaf_spec(HOST, 0x5004));
    let windows =
        [(&past, t - 2 * DAY, t - DAY), (&present, t - DAY, t + DAY), (&future, t + 10 * DAY, t + 12 * DAY)];
    for (cert, start, end) in &windows {
        acme.route(&format!("/ari/{}", ari_id(&cert.cert)), window_reply(*start, *end));
    }

    let report = setup.run_json(false);
    for (name, (cert, start, end)) in ["past", "present", "future"].into_iter().zip(&windows) {
        let window = &cert_facts(&report, name)["renewal-window"];
        assert_eq!(window["start"], *start, "{name}: {report:#}");
        assert_eq!(window["end"], *end);
        assert_eq!(window["explanation-url"], "https://ca.test/why");
        let due =
            renewal_point(*start, *end, &fingerprint(&cert.cert)) <= report["started-at"].as_i64().unwrap();
        if due {
            // Due: replaced through a new order (the CA is configured; DNS is not checked here).
            assert_eq!(decision(&report, name), "replace", "{name}: {report:#}");
            assert_eq!(reasons(&report, name), ["renewal-window"]);
        } else {
            assert_eq!(
                (decision(&report, name).as_str(), reasons(&report, name)),
                ("keep", vec![]),
                "{name}"
            );
        }
    }
    assert_eq!(decision(&report, "past"), "replace");
    assert_eq!(decision(&report, "future"), "keep");
    assert_eq!(report["order-hostname-certificate"], true);
    // A certificate the CA does not know (404): no window, no warning.
    assert!(cert_facts(&report, "unknown-to-ca")["renewal-window"].is_null());
    assert!(host_notices(&report).iter().all(|n| !n.contains("ARI")), "{report:#}");
    assert_eq!(acme.hits("/dir"), 1);
    assert!(!setup.path("state/cache/ari").exists(), "a dry run wrote the ARI cache");

    let text = setup.run_verbose();
    let time = |t: i64| Asn1Time::from_unix(t).unwrap().to_string();
    let (start, end) = (time(windows[2].1), time(windows[2].2));
    assert!(
        text.contains(&format!("renewal window (ARI): {start} to {end}; explanation: https://ca.test/why")),
        "{text}"
    );
}

#[test]
fn ari_answers_are_kept_until_retry_after() {
    let mut setup = Setup::new();
    let (acme, acme_section) = acme_fixture(&setup, true);
    setup.extra =
        format!("[network]\ndns = false\nrevocation = false\ntimeout-seconds = 3\n\n{acme_section}");
    let t = now();
    let cert = setup.int_service("future", &leaf_spec(HOST, 0x6001));
    let path = format!("/ari/{}", ari_id(&cert.cert));
    acme.route(&path, window_reply(t + 10 * DAY, t + 12 * DAY));

    // A real run (nothing to do: the window is in the future) asks once and keeps the answer.
    let report = setup.run_json(true);
    assert_eq!(decision(&report, "future"), "keep", "{report:#}");
    assert_eq!(cert_facts(&report, "future")["renewal-window"]["start"], t + 10 * DAY);
    assert_eq!(acme.hits(&path), 1);
    assert_eq!(std::fs::read_dir(setup.path("state/cache/ari")).unwrap().count(), 1);
    // Within Retry-After (3600 s) neither a real nor a dry run asks again.
    let report = setup.run_json(true);
    assert_eq!(cert_facts(&report, "future")["renewal-window"]["end"], t + 12 * DAY, "{report:#}");
    let report = setup.run_json(false);
    assert_eq!(cert_facts(&report, "future")["renewal-window"]["end"], t + 12 * DAY, "{report:#}");
    assert_eq!(acme.hits(&path), 1);

    // An invalid window (end before start) is no answer: a warning, and no window.
    let other = setup.int_service("inverted", &leaf_spec(HOST, 0x6002));
    acme.route(&format!("/ari/{}", ari_id(&other.cert)), window_reply(t + 2 * DAY, t + DAY));
    let report = setup.run_json(false);
    assert!(cert_facts(&report, "inverted")["renewal-window"].is_null(), "{report:#}");
    assert!(
        host_notices(&report).iter().any(|n| n.contains("Renewal information (ARI)")
            && n.contains("inverted")
            && n.contains("not after its start")),
        "{report:#}"
    );
}
