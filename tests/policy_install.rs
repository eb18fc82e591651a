//! `policy install`, `policy rollback`, `policy show`, `policy componentize`, and the
//! last-known-good fallback of the main run, black-box with the real binary.
//!
//! Real parts throughout: modules are signed with keys made in the test by the real `minisign`
//! CLI (Debian package `minisign`), downloads come from a small HTTPS server in the test
//! (OpenSSL, on 127.0.0.1, with a test CA handed over with `--ca-file`), and the fallback is
//! exercised by real runs over certificate files made in the test.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use checkallsslcerts::policy::embedded::DEFAULT_POLICY;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;
use support::{Outcome, Run};

const EXAMPLE: &str = env!("CHECKALLSSLCERTS_EXAMPLE_POLICY");
const DAY: i64 = 86_400;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

// ---- modules ----

/// The core module of `tests/hostile/NAME.wat` with the contract's world embedded, as
/// `cargo build --target wasm32-unknown-unknown` of a wit-bindgen guest leaves it.
fn hostile_core(name: &str) -> Vec<u8> {
    let dir = workspace().join("tests/hostile");
    let text = std::fs::read_to_string(dir.join(format!("{name}.wat"))).expect("hostile module exists");
    let prelude = std::fs::read_to_string(dir.join("_prelude.wat")).expect("prelude");
    // A module that exports 0.2.0's `evaluate` is built against that contract, prelude included.
    let version = if text.contains("@0.2.0#evaluate") { "0.2.0" } else { "0.1.0" };
    let prelude = prelude.replace("0.1.0", version);
    let mut core = wat::parse_str(text.replace(";; PRELUDE", &prelude)).expect("core module parses");
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) =
        resolve.push_dir(workspace().join(format!("wit/since_v{version}"))).expect("contract parses");
    let world = resolve.select_world(&[package], Some("policy")).expect("world");
    wit_component::embed_component_metadata(&mut core, &resolve, world, wit_component::StringEncoding::UTF8)
        .expect("embed");
    core
}

/// A hostile module as a component (core modules are encoded the way real policies are).
fn hostile(name: &str) -> Vec<u8> {
    let path = workspace().join("tests/hostile").join(format!("{name}.wat"));
    let text = std::fs::read_to_string(&path).expect("hostile module exists");
    if text.contains("(module") {
        wit_component::ComponentEncoder::default()
            .module(&hostile_core(name))
            .and_then(|e| e.validate(true).encode())
            .expect("encodes as a component")
    } else {
        wat::parse_str(&text).expect("hostile component parses")
    }
}

fn example() -> Vec<u8> {
    std::fs::read(EXAMPLE).expect("example policy built")
}

// ---- minisign ----

/// A minisign key pair made by the real `minisign` CLI, without a password.
struct Key {
    /// The public key's base64 line.
    public: String,
    /// Its key ID as minisign prints it.
    id: String,
    public_file: PathBuf,
    secret_file: PathBuf,
}

fn minisign(args: &[&std::ffi::OsStr]) {
    let output = Command::new("minisign")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the minisign CLI runs (Debian package `minisign`)");
    assert!(
        output.status.success(),
        "minisign {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn keypair(dir: &Path, name: &str) -> Key {
    let public_file = dir.join(format!("{name}.pub"));
    let secret_file = dir.join(format!("{name}.key"));
    minisign(&[
        "-G".as_ref(),
        "-W".as_ref(),
        "-p".as_ref(),
        public_file.as_ref(),
        "-s".as_ref(),
        secret_file.as_ref(),
    ]);
    let text = std::fs::read_to_string(&public_file).expect("public key written");
    let mut lines = text.lines();
    let id = lines.next().and_then(|l| l.rsplit(' ').next()).expect("key id").to_owned();
    let public = lines.next().expect("key line").trim().to_owned();
    Key { public, id, public_file, secret_file }
}

/// Signs `file` into `file.minisig` with a trusted comment.
fn sign(key: &Key, file: &Path, comment: &str) -> PathBuf {
    let signature = PathBuf::from(format!("{}.minisig", file.display()));
    minisign(&[
        "-S".as_ref(),
        "-s".as_ref(),
        key.secret_file.as_ref(),
        "-m".as_ref(),
        file.as_ref(),
        "-x".as_ref(),
        signature.as_ref(),
        "-t".as_ref(),
        comment.as_ref(),
    ]);
    signature
}

// ---- certificates ----

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
}

/// A certificate for `cn`, valid from `not_before` to `not_after`, signed by `issuer` (or by
/// itself), with DNS and IP subjectAltNames.
fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    (not_before, not_after): (i64, i64),
    ca: bool,
    (dns, ips): (&[&str], &[&str]),
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let mut serial = [0u8; 8];
    openssl::rand::rand_bytes(&mut serial).expect("rand");
    serial[0] &= 0x7f;
    let serial = BigNum::from_slice(&serial).and_then(|n| Asn1Integer::from_bn(&n)).expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.map_or(name.as_ref(), |(c, _)| c.subject_name())).expect("issuer");
    b.set_pubkey(key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(not_before).expect("time")).expect("nb");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("time")).expect("na");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("ext");
    }
    if !dns.is_empty() || !ips.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None)).expect("san");
        b.append_extension(ext).expect("ext");
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256()).expect("sign");
    b.build()
}

/// A service's certificate and key files, self-signed, `not_after` as given.
fn write_service_files(dir: &Path, not_after: i64) {
    std::fs::create_dir_all(dir).expect("dir");
    let key = ec_key();
    let cert = certificate(
        "host.example.com",
        &key,
        None,
        (now() - 90 * DAY, not_after),
        false,
        (&["host.example.com"], &[]),
    );
    std::fs::write(dir.join("cert.pem"), cert.to_pem().expect("pem")).expect("cert");
    std::fs::write(dir.join("key.pem"), key.private_key_to_pem_pkcs8().expect("pem")).expect("key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).expect("mode");
}

fn not_after(path: &Path) -> i64 {
    let cert = X509::from_pem(&std::fs::read(path).expect("certificate file")).expect("PEM certificate");
    let epoch = Asn1Time::from_unix(0).expect("epoch");
    let diff = epoch.diff(cert.not_after()).expect("diff");
    i64::from(diff.days) * DAY + i64::from(diff.secs)
}

// ---- a scratch server ----

/// A config, a state dir, module files, and (optionally) services with certificate files.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// `trusted`: keys for `[policy] trusted-keys`; `services`: names of services to manage.
    fn new(trusted: &[&Key], services: &[&str]) -> Host {
        let host = Host { dir: tempfile::tempdir().expect("tempdir") };
        host.configure(trusted, services, None);
        host
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    fn config(&self) -> PathBuf {
        self.root().join("config.toml")
    }

    fn service_dir(&self, name: &str) -> PathBuf {
        self.root().join("srv").join(name)
    }

    fn configure(&self, trusted: &[&Key], services: &[&str], module: Option<&Path>) {
        let mut config = format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n[policy]\n",
            self.state().display()
        );
        if let Some(module) = module {
            config.push_str(&format!("module = \"{}\"\n", module.display()));
        }
        if !trusted.is_empty() {
            let keys: Vec<String> = trusted.iter().map(|k| format!("\"{}\"", k.public)).collect();
            config.push_str(&format!("trusted-keys = [{}]\n", keys.join(", ")));
        }
        // Loopback only: no notification mail, no DNS, OCSP or ARI lookups.
        config.push_str(
            "\n[mail]\nenabled = false\n\n[network]\nrevocation = false\ndns = false\nari = false\n",
        );
        for name in services {
            let dir = self.service_dir(name);
            std::fs::create_dir_all(&dir).expect("service dir");
            config.push_str(&format!(
                "\n[[service]]\nname = \"{name}\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
                dir.join("cert.pem").display(),
                dir.join("key.pem").display()
            ));
        }
        std::fs::write(self.config(), config).expect("config");
    }

    /// Writes a module file to ship.
    fn module(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = self.root().join("dist");
        std::fs::create_dir_all(&dir).expect("dist");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("module");
        path
    }

    fn cli(&self) -> Run {
        Run::new().arg("--config").arg(self.config())
    }

    fn install(&self, args: &[&std::ffi::OsStr]) -> Outcome {
        self.cli().args(["policy", "install"]).args(args).run()
    }

    fn active(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.state().join("policy/active.json")).ok()?;
        Some(serde_json::from_str(&text).expect("active.json is JSON"))
    }

    fn active_sha(&self) -> Option<String> {
        self.active()?["active"]["sha256"].as_str().map(str::to_owned)
    }

    fn stored(&self, sha: &str) -> Vec<u8> {
        std::fs::read(self.state().join(format!("policy/modules/{sha}.wasm"))).expect("stored module")
    }

    /// A real run with `--json`; returns the outcome and the report.
    fn run_json(&self, extra: &[&str]) -> (Outcome, Value) {
        let out = self.cli().arg("--json").args(extra).run();
        let report = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!("JSON report: {e}\n--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr)
        });
        (out, report)
    }
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"].as_array().expect("services").iter().find(|s| s["name"] == name).expect("service")
}

fn error_notices(report: &Value) -> Vec<String> {
    report["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .filter(|n| n["level"] == "error")
        .map(|n| n["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn assert_refused(out: &Outcome, code: i32, needles: &[&str]) {
    assert_eq!(out.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr);
    for needle in needles {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }
}

// ---- an HTTPS server on loopback ----

/// What a path serves.
enum Body {
    /// These bytes, with their Content-Length.
    Bytes(Vec<u8>),
    /// A Content-Length of this many bytes, then zeros until the client goes away.
    Announced(u64),
    /// No Content-Length: zeros until this many were sent or the client goes away.
    Unannounced(u64),
    /// A Content-Length of 1000, then one byte every 500 ms, for at most 20 s.
    Drip,
}

/// A small HTTPS/1.1 server on 127.0.0.1 (OpenSSL), one connection at a time, for at most 60 s
/// and 200 connections; stopped on drop. Counts the body bytes it managed to send per path.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<HashMap<String, u64>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(cert: &X509, key: &PKey<Private>, routes: HashMap<String, Body>) -> Server {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        acceptor.set_private_key(key).expect("key");
        acceptor.set_certificate(cert).expect("cert");
        let acceptor = acceptor.build();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(HashMap::new()));
        let (thread_stop, thread_sent) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut connections = 0;
            while !thread_stop.load(Ordering::SeqCst) && Instant::now() < deadline && connections < 200 {
                match listener.accept() {
                    Ok((stream, _)) => {
                        connections += 1;
                        serve(&acceptor, stream, &routes, &thread_sent);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server { port, stop, sent, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn sent(&self, path: &str) -> u64 {
        self.sent.lock().expect("lock").get(path).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    acceptor: &SslAcceptor,
    stream: TcpStream,
    routes: &HashMap<String, Body>,
    sent: &Mutex<HashMap<String, u64>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(mut tls) = acceptor.accept(stream) else { return };
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 << 10 {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let zeros = vec![0u8; 64 << 10];
    let mut count = 0u64;
    let mut stream_zeros = |tls: &mut openssl::ssl::SslStream<TcpStream>, total: u64| {
        while count < total {
            let n = zeros.len().min((total - count) as usize);
            if tls.write_all(&zeros[..n]).is_err() {
                return;
            }
            count += n as u64;
        }
    };
    match routes.get(&path) {
        None => {
            let _ =
                tls.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Some(Body::Bytes(bytes)) => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len());
            if tls.write_all(head.as_bytes()).is_ok() && tls.write_all(bytes).is_ok() {
                count = bytes.len() as u64;
            }
        }
        Some(Body::Announced(total)) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n");
            if tls.write_all(head.as_bytes()).is_ok() {
                stream_zeros(&mut tls, *total);
            }
        }
        Some(Body::Unannounced(total)) => {
            if tls.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").is_ok() {
                stream_zeros(&mut tls, *total);
            }
        }
        Some(Body::Drip) => {
            if tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n").is_ok()
            {
                for _ in 0..40 {
                    if tls.write_all(b"x").and_then(|()| tls.flush()).is_err() {
                        break;
                    }
                    count += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
    let _ = tls.shutdown();
    *sent.lock().expect("lock").entry(path).or_default() += count;
}

/// A test CA and a server certificate for 127.0.0.1 signed by it; writes the CA to `dir/ca.pem`.
fn test_pki(dir: &Path) -> (PathBuf, X509, PKey<Private>) {
    let ca_key = ec_key();
    let ca = certificate(
        "checkallsslcerts test CA",
        &ca_key,
        None,
        (now() - DAY, now() + 30 * DAY),
        true,
        (&[], &[]),
    );
    let key = ec_key();
    let cert = certificate(
        "127.0.0.1",
        &key,
        Some((&ca, &ca_key)),
        (now() - DAY, now() + 30 * DAY),
        false,
        (&["localhost"], &["127.0.0.1"]),
    );
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.to_pem().expect("pem")).expect("ca");
    (ca_file, cert, key)
}

// ---- the tests ----

#[test]
fn a_signed_module_is_installed_shown_and_rolled_back_to_the_exact_bytes() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &[]);
    let default = host.module("default.wasm", DEFAULT_POLICY);
    sign(&author, &default, "default policy, release 1");
    let out = host.install(&[default.as_ref()]).code(0);
    assert!(out.stdout.contains("installed and activated policy `default`"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("key ID {}", author.id)), "{}", out.stdout);
    assert!(out.stdout.contains("contract conformance vectors passed"), "{}", out.stdout);
    let default_sha = sha256_hex(DEFAULT_POLICY);
    assert_eq!(host.active_sha().as_deref(), Some(default_sha.as_str()));
    let active = host.active().expect("active.json");
    assert_eq!(active["active"]["signature-key-id"], author.id.as_str());
    assert_eq!(active["active"]["trusted-comment"], "default policy, release 1");
    assert_eq!(active["active"]["source"], default.display().to_string());
    assert!(active["previous"].is_null());

    let example_file = host.module("lifetime-fraction.wasm", &example());
    sign(&author, &example_file, "lifetime-fraction 0.1.0");
    host.install(&[example_file.as_ref()]).code(0);
    let example_sha = sha256_hex(&example());
    assert_eq!(host.active_sha().as_deref(), Some(example_sha.as_str()));
    assert_eq!(host.active().expect("active")["previous"]["sha256"], default_sha.as_str());

    // `policy show` tells which module a run uses, where it came from, its hash and its key.
    let show = host.cli().args(["policy", "show"]).run().code(0);
    for needle in [
        "name:             lifetime-fraction",
        "selected:         the installed policy module `lifetime-fraction`",
        &format!("sha256:           {example_sha}"),
        &format!("installed from:  {}", example_file.display()),
        &format!("signature key:   {}", author.id),
        "trusted comment: lifetime-fraction 0.1.0",
        "previous:        `default`",
    ] {
        assert!(show.stdout.contains(needle), "show lacks {needle:?}:\n{}", show.stdout);
    }

    // The original files are gone; rollback restores the exact bytes of the previous module.
    std::fs::remove_file(&default).expect("rm");
    let out = host.cli().args(["policy", "rollback"]).run().code(0);
    assert!(out.stdout.contains("the active policy is now `default`"), "{}", out.stdout);
    assert_eq!(host.active_sha().as_deref(), Some(default_sha.as_str()));
    assert_eq!(host.stored(&default_sha), DEFAULT_POLICY, "exact bytes");
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(show.stdout.contains(&format!("sha256:           {default_sha}")), "{}", show.stdout);
    // A second rollback goes forward again; a third back.
    host.cli().args(["policy", "rollback"]).run().code(0);
    assert_eq!(host.active_sha().as_deref(), Some(example_sha.as_str()));
    assert_eq!(host.stored(&example_sha), example());
    host.cli().args(["policy", "rollback"]).run().code(0);
    assert_eq!(host.active_sha().as_deref(), Some(default_sha.as_str()));

    // Private state: the store is 0700 and its files 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: PathBuf| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(host.state().join("policy")), 0o700);
    assert_eq!(mode(host.state().join("policy/active.json")), 0o600);
    assert_eq!(mode(host.state().join(format!("policy/modules/{default_sha}.wasm"))), 0o600);
}

#[test]
fn bad_or_missing_signatures_are_refused_with_the_reason() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let stranger = keypair(keys.path(), "stranger");
    let host = Host::new(&[&author], &[]);

    // Signed by a key that is not trusted.
    let module = host.module("by-stranger.wasm", DEFAULT_POLICY);
    sign(&stranger, &module, "not ours");
    let out = host.install(&[module.as_ref()]);
    assert_refused(
        &out,
        1,
        &[
            &format!(
                "made by the key with ID {}, which is not a trusted key (trusted: {})",
                stranger.id, author.id
            ),
            "nothing was installed",
        ],
    );

    // Changed after signing.
    let module = host.module("tampered.wasm", &example());
    sign(&author, &module, "lifetime-fraction");
    let mut bytes = example();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&module, &bytes).expect("tamper");
    let out = host.install(&[module.as_ref()]);
    assert_refused(
        &out,
        1,
        &[&format!("policy module {} is not the file that was signed", module.display())],
    );

    // The trusted comment changed after signing.
    let module = host.module("comment.wasm", &example());
    let signature = sign(&author, &module, "release 1");
    let text = std::fs::read_to_string(&signature).expect("sig").replace("release 1", "release 2");
    std::fs::write(&signature, text).expect("tamper comment");
    let out = host.install(&[module.as_ref()]);
    assert_refused(&out, 1, &["its trusted comment does not verify", "altered after signing"]);

    // No signature at all.
    let module = host.module("unsigned.wasm", &example());
    let out = host.install(&[module.as_ref()]);
    assert_refused(
        &out,
        1,
        &[&format!("no signature: {}.minisig does not exist", module.display()), "minisign -Sm"],
    );

    // Not a signature.
    let garbage = host.module("garbage.minisig", b"untrusted comment: hello\nthis is not base64!\n");
    let out = host.install(&[module.as_ref(), "--signature".as_ref(), garbage.as_ref()]);
    assert_refused(&out, 1, &[&format!("signature {}: not a minisign signature", garbage.display())]);

    // A signature of another file, named with --signature.
    let other = host.module("other.wasm", DEFAULT_POLICY);
    let other_signature = sign(&author, &other, "default");
    let out = host.install(&[module.as_ref(), "--signature".as_ref(), other_signature.as_ref()]);
    assert_refused(&out, 1, &["is not the file that was signed"]);

    // --allow-unsigned does not override configured keys.
    let out = host.install(&[module.as_ref(), "--allow-unsigned".as_ref()]);
    assert_refused(&out, 2, &["--allow-unsigned is refused", "configures trusted signing keys"]);

    assert!(host.active().is_none(), "nothing was ever activated");
    // The trusted key may also come from a minisign.pub file.
    let host = Host::new(&[], &[]);
    let config = std::fs::read_to_string(host.config()).expect("config").replace(
        "[policy]\n",
        &format!("[policy]\ntrusted-key-files = [\"{}\"]\n", author.public_file.display()),
    );
    std::fs::write(host.config(), config).expect("config");
    let module = host.module("good.wasm", &example());
    sign(&author, &module, "lifetime-fraction");
    host.install(&[module.as_ref()]).code(0);
    let out = host.install(&[host.module("unsigned.wasm", DEFAULT_POLICY).as_os_str()]);
    assert_refused(&out, 1, &["no signature"]);
}

#[test]
fn without_trusted_keys_only_allow_unsigned_installs() {
    let host = Host::new(&[], &[]);
    let module = host.module("mine.wasm", &example());
    let out = host.install(&[module.as_ref()]);
    assert_refused(&out, 2, &["no trusted signing key is configured", "--allow-unsigned"]);
    assert!(host.active().is_none());
    // The file shipped need not be root's (a download in a user's home): its bytes are what is
    // checked and stored; the stored copy is root's.
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&module, Some(65534), Some(65534)).expect("chown");
    }
    let out = host.install(&[module.as_ref(), "--allow-unsigned".as_ref()]).code(0);
    assert!(out.stdout.contains("signed by:       nobody"), "{}", out.stdout);
    assert!(out.stderr.contains("WITHOUT a signature check"), "{}", out.stderr);
    let active = host.active().expect("active");
    assert!(active["active"]["signature-key-id"].is_null());
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(show.stdout.contains("none (installed with --allow-unsigned)"), "{}", show.stdout);
    assert!(!show.stderr.contains("is not signed"), "no keys, no warning: {}", show.stderr);

    // Issue 11: keys configured later — the unsigned module still runs, but never silently.
    let author = keypair(host.root(), "author");
    host.configure(&[&author], &[], None);
    let (_, report) = host.run_json(&["--dry-run"]);
    let warned = report["notices"].as_array().expect("notices").iter().any(|n| {
        n["level"] == "warning"
            && n["message"].as_str().unwrap_or("").contains("is not signed, but [policy] trusted keys")
    });
    assert!(warned, "{report}");
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(
        show.stderr.contains("is not signed, but [policy] trusted keys are configured"),
        "{}",
        show.stderr
    );
}

#[test]
fn modules_are_fetched_over_https_with_an_extra_ca() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &[]);
    let module = host.module("lifetime-fraction.wasm", &example());
    let signature = sign(&author, &module, "lifetime-fraction over https");
    let (ca_file, cert, key) = test_pki(host.root());
    let mut routes = HashMap::new();
    routes.insert("/p/lifetime-fraction.wasm".to_owned(), Body::Bytes(example()));
    routes.insert(
        "/p/lifetime-fraction.wasm.minisig".to_owned(),
        Body::Bytes(std::fs::read(&signature).expect("sig")),
    );
    routes.insert("/unsigned.wasm".to_owned(), Body::Bytes(example()));
    let server = Server::start(&cert, &key, routes);
    let url = server.url("/p/lifetime-fraction.wasm");

    // The test CA is not trusted unless given.
    let out = host.install(&[url.as_ref(), "--timeout".as_ref(), "20".as_ref()]);
    assert_refused(&out, 1, &[&url, "certificate verify failed"]);

    // Plain HTTP is never used.
    let http = url.replacen("https://", "http://", 1);
    let out = host.install(&[http.as_ref()]);
    assert_refused(&out, 1, &["only https:// URLs and local files are accepted"]);

    // No signature beside it.
    let unsigned = server.url("/unsigned.wasm");
    let out = host.install(&[unsigned.as_ref(), "--ca-file".as_ref(), ca_file.as_ref()]);
    assert_refused(&out, 1, &[&format!("no signature: {unsigned}.minisig does not exist")]);

    let out = host.install(&[url.as_ref(), "--ca-file".as_ref(), ca_file.as_ref()]).code(0);
    assert!(out.stdout.contains(&format!("source:          {url}")), "{}", out.stdout);
    let active = host.active().expect("active");
    assert_eq!(active["active"]["source"], url.as_str());
    assert_eq!(active["active"]["trusted-comment"], "lifetime-fraction over https");
    assert_eq!(host.stored(&sha256_hex(&example())), example());
    assert_eq!(server.sent("/p/lifetime-fraction.wasm"), example().len() as u64);

    // --signature may be a URL too.
    let host2 = Host::new(&[&author], &[]);
    let sig_url = server.url("/p/lifetime-fraction.wasm.minisig");
    let out = host2.install(&[
        unsigned.as_ref(),
        "--signature".as_ref(),
        sig_url.as_ref(),
        "--ca-file".as_ref(),
        ca_file.as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn oversized_downloads_are_refused_without_reading_them_all() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &[]);
    let (ca_file, cert, key) = test_pki(host.root());
    const TOTAL: u64 = 1 << 30;
    let mut routes = HashMap::new();
    routes.insert("/announced.wasm".to_owned(), Body::Announced(TOTAL));
    routes.insert("/unannounced.wasm".to_owned(), Body::Unannounced(TOTAL));
    routes.insert("/drip.wasm".to_owned(), Body::Drip);
    let server = Server::start(&cert, &key, routes);
    let limit = checkallsslcerts::policy::Limits::default().max_module_bytes as u64;

    let started = Instant::now();
    let url = server.url("/announced.wasm");
    let out = host.install(&[url.as_ref(), "--ca-file".as_ref(), ca_file.as_ref()]);
    assert_refused(
        &out,
        1,
        &[&url, &format!("its announced size of {TOTAL} bytes is larger than the limit of {limit} bytes")],
    );

    let url = server.url("/unannounced.wasm");
    let out = host.install(&[url.as_ref(), "--ca-file".as_ref(), ca_file.as_ref()]);
    assert_refused(&out, 1, &[&url, &format!("its body is larger than the limit of {limit} bytes")]);
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    let announced = server.sent("/announced.wasm");
    let unannounced = server.sent("/unannounced.wasm");
    assert!(
        announced < TOTAL / 16,
        "the client stopped the announced download early: {announced} bytes sent"
    );
    assert!(unannounced < TOTAL / 16, "the client stopped reading past the limit: {unannounced} bytes sent");

    // A server that sends a byte now and then is cut off by the overall timeout.
    let started = Instant::now();
    let url = server.url("/drip.wasm");
    let out = host.install(&[
        url.as_ref(),
        "--ca-file".as_ref(),
        ca_file.as_ref(),
        "--timeout".as_ref(),
        "2".as_ref(),
    ]);
    assert_refused(&out, 1, &[&url]);
    assert!(
        out.stderr.contains("took longer than 2 s") || out.stderr.contains("timed out"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(host.active().is_none());
}

#[test]
fn hostile_modules_are_refused_at_install() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &[]);
    let cases: &[(&str, &[&str])] = &[
        (
            "future-version",
            &["built for contract version 9.0.0, which this host does not support (supported: 0.1.0, 0.2.0)"],
        ),
        ("wrong-world", &["does not export `checkallsslcerts:policy/rules`", "example:greeter/api@1.0.0"]),
        ("extra-import", &["imports `wasi:keyvalue/store@0.2.0-draft`"]),
        ("sockets-0-3", &["imports `wasi:sockets/tcp@0.3.0-rc-2025-09-16`"]),
        ("empty-rules", &["cannot be instantiated"]),
        ("trap", &["fails the contract conformance suite", "trapped in `evaluate`"]),
        ("endless-loop", &["fails the contract conformance suite", "ran out of fuel"]),
        ("memory-bomb", &["fails the contract conformance suite", "exceeded its memory limit"]),
        ("unknown-service", &["fails the contract conformance suite", "invalid plan"]),
        ("oversized-plan", &["fails the contract conformance suite", "invalid plan"]),
        ("out-of-bounds-plan", &["fails the contract conformance suite"]),
        // One per invariant the contract vectors without `expect` rely on (contract 0.2.0): refused
        // at the first vector that fails (`policy test` names each invariant: policy_runtime.rs).
        ("keeps-web", &["fails the contract conformance suite"]),
        ("orders-hostname", &["fails the contract conformance suite"]),
        ("orders-lan", &["fails the contract conformance suite"]),
    ];
    for (name, needles) in cases {
        let started = Instant::now();
        let module = host.module(&format!("{name}.wasm"), &hostile(name));
        sign(&author, &module, name);
        let out = host.install(&[module.as_ref()]);
        let mut all = vec![module.to_str().expect("utf-8"), "nothing was installed"];
        all.extend_from_slice(needles);
        assert_refused(&out, 1, &all);
        assert!(started.elapsed() < Duration::from_secs(30), "{name} took {:?}", started.elapsed());
    }
    assert!(host.active().is_none(), "no hostile module was activated");
    assert!(
        std::fs::read_dir(host.state().join("policy/modules")).map(|d| d.count()).unwrap_or(0) == 0,
        "no hostile module was stored"
    );
}

/// Installs the `boom` module (signed): it passes the contract suite, then traps in a run
/// that has a service named `boom`.
fn install_boom(host: &Host, author: &Key) -> String {
    let boom = host.module("boom.wasm", &hostile("boom"));
    sign(author, &boom, "boom");
    let out = host.install(&[boom.as_ref()]).code(0);
    assert!(out.stdout.contains("contract conformance vectors passed"), "{}", out.stdout);
    sha256_hex(&hostile("boom"))
}

/// Services for the fallback runs: `web` healthy, `old` expired, `boom` missing its files.
fn unusable_services(host: &Host) {
    write_service_files(&host.service_dir("web"), now() + 60 * DAY);
    write_service_files(&host.service_dir("old"), now() - 2 * DAY);
    let _ = std::fs::remove_file(host.service_dir("boom").join("cert.pem"));
    let _ = std::fs::remove_file(host.service_dir("boom").join("key.pem"));
}

/// The certificate work was done despite the failing module: placeholders for `old` (expired)
/// and `boom` (missing), `web` left alone.
fn assert_certificates_handled(host: &Host, report: &Value, web_before: &[u8]) {
    for name in ["old", "boom"] {
        let actions = service(report, name)["actions"].as_array().expect("actions");
        assert!(
            actions.iter().any(|a| a["kind"] == "install-placeholder" && a["outcome"] == "done"),
            "{name}: {actions:?}"
        );
        let cert = host.service_dir(name).join("cert.pem");
        assert!(not_after(&cert) > now() + 20 * DAY, "{name} has a fresh placeholder");
    }
    assert_eq!(std::fs::read(host.service_dir("web").join("cert.pem")).expect("web"), web_before);
}

#[test]
fn a_module_failing_at_run_time_falls_back_to_the_last_known_good_one() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &["web", "old", "boom"]);
    // A good module (the default policy's bytes, shipped as a file) decides a real run: it is
    // recorded as the last known good one.
    let good = host.module("default.wasm", DEFAULT_POLICY);
    sign(&author, &good, "default");
    host.install(&[good.as_ref()]).code(0);
    unusable_services(&host);
    let (_, report) = host.run_json(&[]);
    let good_sha = sha256_hex(DEFAULT_POLICY);
    assert_eq!(report["policy"]["sha256"], good_sha.as_str());
    assert!(report["policy"]["fallback-from"].is_null(), "{}", report["policy"]);
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(show.stdout.contains("last known good:  `default` 0.2.0"), "{}", show.stdout);

    // Then the `boom` module is installed: it passes install, and fails in the next run.
    let boom_sha = install_boom(&host, &author);
    unusable_services(&host);
    let web_before = std::fs::read(host.service_dir("web").join("cert.pem")).expect("web");
    let (out, report) = host.run_json(&[]);
    assert_eq!(out.code, 1, "a fallback exits 1\n{}", out.stderr);
    assert_eq!(report["exit-code"], 1);
    assert_eq!(report["policy"]["sha256"], good_sha.as_str(), "the last known good module decided");
    let stored_good = host.state().join(format!("policy/modules/{good_sha}.wasm"));
    assert_eq!(report["policy"]["source"], stored_good.display().to_string(), "not the embedded one");
    let failure = report["policy"]["fallback-from"].as_str().expect("fallback-from says why");
    assert!(
        failure.contains(&format!("modules/{boom_sha}.wasm")) && failure.contains("trapped in `evaluate`"),
        "{failure}"
    );
    let errors = error_notices(&report);
    assert!(
        errors.iter().any(|e| e
            .contains(&format!("The installed policy module `hostile` 0.0.1 (sha256 {}", &boom_sha[..12]))
            && e.contains("trapped in `evaluate`")
            && e.contains(&format!(
                "the last known good policy module `default` 0.2.0 (sha256 {}",
                &good_sha[..12]
            ))
            && e.contains("policy rollback")),
        "{errors:?}"
    );
    assert_certificates_handled(&host, &report, &web_before);
    // The failing module never becomes last known good; the good one stays.
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(show.stdout.contains("last known good:  `default` 0.2.0"), "{}", show.stdout);

    // The text report (no --json) says it loudly too.
    unusable_services(&host);
    let out = host.cli().run();
    assert_eq!(out.code, 1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("trapped in `evaluate`") && all.contains("decided instead"), "{all}");

    // Rolling back to the good module ends the fallback.
    host.cli().args(["policy", "rollback"]).run().code(0);
    assert_eq!(host.active_sha().as_deref(), Some(good_sha.as_str()));
    let (_, report) = host.run_json(&[]);
    assert!(report["policy"]["fallback-from"].is_null());
}

#[test]
fn without_a_last_known_good_module_the_embedded_policy_decides() {
    let keys = tempfile::tempdir().expect("tempdir");
    let author = keypair(keys.path(), "author");
    let host = Host::new(&[&author], &["web", "old", "boom"]);
    let boom_sha = install_boom(&host, &author);
    unusable_services(&host);
    let web_before = std::fs::read(host.service_dir("web").join("cert.pem")).expect("web");
    // A dry run falls back the same way, but changes nothing.
    let (out, report) = host.run_json(&["--dry-run"]);
    assert_eq!(out.code, 1);
    assert_eq!(report["policy"]["source"], "(embedded default policy)");
    assert!(!host.service_dir("boom").join("cert.pem").exists(), "a dry run changes nothing");

    let (out, report) = host.run_json(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(report["policy"]["source"], "(embedded default policy)");
    assert!(report["policy"]["fallback-from"].as_str().expect("why").contains(&boom_sha));
    let errors = error_notices(&report);
    assert!(
        errors.iter().any(|e| e.contains("trapped in `evaluate`")
            && e.contains("so the embedded default policy decided instead")),
        "{errors:?}"
    );
    assert_certificates_handled(&host, &report, &web_before);
    let known = std::fs::read_to_string(host.state().join("policy/known-good.json")).unwrap_or_default();
    assert!(!known.contains(&boom_sha), "a failing module is never recorded as good: {known}");

    // Without a `boom` service the same module decides, and becomes the last known good one.
    host.configure(&[&author], &["web", "old"], None);
    let (out, report) = host.run_json(&[]);
    assert_eq!(report["policy"]["sha256"], boom_sha.as_str(), "{}", out.stderr);
    assert!(report["policy"]["fallback-from"].is_null());
    let known = std::fs::read_to_string(host.state().join("policy/known-good.json")).expect("recorded");
    assert!(known.contains(&boom_sha), "{known}");
}

#[test]
fn a_damaged_installed_module_is_not_run() {
    let host = Host::new(&[], &["old"]);
    let module = host.module("example.wasm", &example());
    host.install(&[module.as_ref(), "--allow-unsigned".as_ref()]).code(0);
    let sha = sha256_hex(&example());
    let stored = host.state().join(format!("policy/modules/{sha}.wasm"));
    let mut bytes = example();
    bytes[100] ^= 0xff;
    std::fs::write(&stored, bytes).expect("damage");
    write_service_files(&host.service_dir("old"), now() - DAY);
    let (out, report) = host.run_json(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(report["policy"]["source"], "(embedded default policy)");
    let errors = error_notices(&report);
    assert!(
        errors.iter().any(|e| e.contains("the stored module is damaged") && e.contains(&sha)),
        "{errors:?}"
    );
    assert!(not_after(&host.service_dir("old").join("cert.pem")) > now());
    // Rollback refuses to switch to damaged bytes, too.
    host.install(&[host.module("default.wasm", DEFAULT_POLICY).as_os_str(), "--allow-unsigned".as_ref()])
        .code(0);
    let out = host.cli().args(["policy", "rollback"]).run();
    assert_refused(&out, 1, &["the stored module is damaged"]);

    // An unreadable record: the run falls back and says so; `policy install` replaces it.
    let active = host.state().join("policy/active.json");
    std::fs::write(&active, "{ not json").expect("damage the record");
    write_service_files(&host.service_dir("old"), now() - DAY);
    let (out, report) = host.run_json(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(report["policy"]["name"], "default");
    let errors = error_notices(&report);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&format!("{}: not a valid installed-policy record", active.display()))),
        "{errors:?}"
    );
    assert!(not_after(&host.service_dir("old").join("cert.pem")) > now());
    assert_refused(&host.cli().args(["policy", "show"]).run(), 1, &["not a valid installed-policy record"]);
    let out = host
        .install(&[host.module("again.wasm", &example()).as_os_str(), "--allow-unsigned".as_ref()])
        .code(0);
    assert!(out.stderr.contains("it is replaced"), "{}", out.stderr);
    assert_eq!(host.active_sha().as_deref(), Some(sha.as_str()));
}

#[test]
fn precedence_is_command_line_then_config_then_installed_then_embedded() {
    let host = Host::new(&[], &["old"]);
    write_service_files(&host.service_dir("old"), now() + 200 * DAY);
    let (_, report) = host.run_json(&[]);
    assert_eq!(report["policy"]["source"], "(embedded default policy)");

    let example_file = host.module("example.wasm", &example());
    host.install(&[example_file.as_ref(), "--allow-unsigned".as_ref()]).code(0);
    let (_, report) = host.run_json(&[]);
    assert_eq!(report["policy"]["name"], "lifetime-fraction", "the installed module is used");
    let check = host.cli().args(["config", "check"]).run().code(0);
    assert!(
        check.stdout.contains("policy:    the installed policy module `lifetime-fraction` 0.1.0"),
        "{}",
        check.stdout
    );

    let default_file = host.module("default.wasm", DEFAULT_POLICY);
    let (_, report) = host.run_json(&["--policy", default_file.to_str().expect("utf-8")]);
    assert_eq!(report["policy"]["name"], "default", "--policy wins over the installed module");
    assert_eq!(report["policy"]["source"], default_file.display().to_string());

    host.configure(&[], &["old"], Some(&default_file));
    let (_, report) = host.run_json(&[]);
    assert_eq!(report["policy"]["source"], default_file.display().to_string(), "[policy] module wins");
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(
        show.stdout.contains("selected:         the policy module set by [policy] module"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("name:            lifetime-fraction"),
        "the installed one is still listed: {}",
        show.stdout
    );
    let out = host.install(&[example_file.as_ref(), "--allow-unsigned".as_ref()]).code(0);
    assert!(out.stderr.contains("takes precedence over the installed module"), "{}", out.stderr);
}

#[test]
fn rollback_with_nothing_installed_says_so() {
    let host = Host::new(&[], &[]);
    let out = host.cli().args(["policy", "rollback"]).run();
    assert_refused(&out, 1, &["nothing to roll back"]);
    // After a first install, rollback goes back to the embedded default policy.
    host.install(&[host.module("example.wasm", &example()).as_os_str(), "--allow-unsigned".as_ref()]).code(0);
    let out = host.cli().args(["policy", "rollback"]).run().code(0);
    assert!(out.stdout.contains("the embedded default policy decides"), "{}", out.stdout);
    let show = host.cli().args(["policy", "show"]).run().code(0);
    assert!(show.stdout.contains("selected:         the embedded default policy"), "{}", show.stdout);
}

#[test]
fn componentize_turns_a_core_module_into_a_policy_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let core = dir.path().join("boom-core.wasm");
    std::fs::write(&core, hostile_core("boom")).expect("core");
    let output = dir.path().join("boom.wasm");
    let out = Run::new().args(["policy", "componentize"]).arg(&core).arg("-o").arg(&output).run().code(0);
    assert!(out.stdout.contains("policy `hostile` 0.0.1 (contract 0.1.0)"), "{}", out.stdout);
    assert_eq!(
        std::fs::read(&output).expect("written"),
        hostile("boom"),
        "the same encoding as wit-component's"
    );
    Run::new().args(["policy", "test", "--suite", "contract"]).arg(&output).run().code(0);

    // A core module without the contract's world, and a component, are refused with the reason.
    let bare = dir.path().join("bare.wasm");
    std::fs::write(&bare, wat::parse_str("(module (memory (export \"memory\") 1))").expect("wat"))
        .expect("bare");
    let refused = dir.path().join("refused.wasm");
    let out = Run::new().args(["policy", "componentize"]).arg(&bare).arg("-o").arg(&refused).run();
    assert_refused(&out, 1, &["bare.wasm"]);
    assert!(!refused.exists());
    let out = Run::new().args(["policy", "componentize", EXAMPLE, "-o"]).arg(&refused).run();
    assert_refused(&out, 1, &["already a component"]);
}
