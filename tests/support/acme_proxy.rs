//! An HTTPS reverse proxy on loopback in front of Pebble (a test fixture, for what Debian's
//! Pebble 2.4 cannot do). It forwards every request unchanged (the `Host` header too, so Pebble
//! builds its URLs — and checks each JWS `url` — against the proxy's address), records every
//! request (time, method, path, status) and the decoded JWS payload of every newOrder, and, when
//! a test asks for it:
//!
//! * ARI (RFC 9773; Pebble 2.4 has none): adds `renewalInfo` to the directory, answers
//!   renewalInfo requests with the windows the test sets, echoes `replaces` in the newOrder
//!   answer as an ARI CA must, and can refuse the next newOrder that carries `replaces` with
//!   `alreadyReplaced`, as a CA does for a certificate already replaced;
//! * rate limits (RFC 8555 §6.6; Pebble has none): answers the next newOrder itself with
//!   HTTP 429, a `rateLimited` problem document and the `Retry-After` the test sets;
//! * polling hints (RFC 8555 §7.4): adds the `Retry-After` the test sets to the next finalize
//!   answer (Pebble sends none).
//!
//! Everything else — accounts, orders, HTTP-01 validation, issuance — is Pebble's.
//!
//! Include it with `#[path = "support/acme_proxy.rs"] mod acme_proxy;` beside `mod pebble;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::X509;
use serde_json::Value;

use crate::pebble::Pebble;
use crate::support::{Outcome, Run};
use checkallsslcerts::actions::placeholder;
use checkallsslcerts::config::KeyAlgorithm;

/// What the proxy does besides forwarding.
#[derive(Default)]
pub struct Behaviour {
    /// Offer ARI: `renewalInfo` in the directory, echo `replaces`.
    pub ari: bool,
    /// Refuse the next newOrder that carries `replaces` with `alreadyReplaced` (409).
    pub refuse_next_replaces: bool,
    /// renewalInfo answers by ARI identifier: (start, end).
    pub windows: HashMap<String, (i64, i64)>,
    /// Answer the next newOrder with 429 `rateLimited` and this `Retry-After`, once.
    pub rate_limit_next_order: Option<String>,
    /// Add this `Retry-After` to the next finalize answer, once.
    pub finalize_retry_after: Option<String>,
    /// The path of Pebble's newOrder resource (learnt from the directory).
    pub new_order_path: Option<String>,
    /// The decoded JWS payload of every newOrder request, and the status answered (not those
    /// Pebble answered `badNonce`: they are sent again).
    pub new_orders: Vec<(Value, u16)>,
    /// Every request, in the order answered.
    pub requests: Vec<Seen>,
}

/// One request the proxy answered.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When its answer was sent.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The answer's `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The `status` field of the JSON answer, if any (an order's or authorization's status).
    pub resource_status: Option<String>,
}

pub struct Proxy {
    pub port: u16,
    behaviour: Arc<Mutex<Behaviour>>,
    /// The proxy's own HTTPS certificate (for `acme.ca-bundle`).
    pub cert: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy in front of `pebble`, offering ARI if `ari`.
    pub fn start(pebble: &Pebble, ari: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (cert, key) = self_signed_for_loopback();
        let cert_file = pebble.dir.path().join(format!("proxy-{port}.pem"));
        std::fs::write(&cert_file, cert.to_pem().expect("pem")).expect("write");
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
        acceptor.set_certificate(&cert).expect("cert");
        acceptor.set_private_key(&key).expect("key");
        let acceptor = Arc::new(acceptor.build());
        let upstream = reqwest::blocking::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&pebble.api_cert).expect("api cert"))
                    .expect("pem"),
            )
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let upstream = Arc::new(upstream);
        let behaviour = Arc::new(Mutex::new(Behaviour { ari, ..Behaviour::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let context = Arc::new(Context {
            upstream,
            pebble_port: pebble.api_port,
            me: format!("https://127.0.0.1:{port}"),
            behaviour: behaviour.clone(),
        });
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let (acceptor, context) = (acceptor.clone(), context.clone());
                std::thread::spawn(move || {
                    if let Ok(tls) = acceptor.accept(stream) {
                        context.serve(tls);
                    }
                });
            }
        });
        Proxy { port, behaviour, cert: cert_file, stop, thread: Some(thread) }
    }

    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Behaviour) -> T) -> T {
        f(&mut self.behaviour.lock().expect("lock"))
    }

    /// The newOrder payloads so far, with the status each got.
    pub fn new_orders(&self) -> Vec<(Value, u16)> {
        self.with(|b| b.new_orders.clone())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.with(|b| b.requests.clone())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Context {
    upstream: Arc<reqwest::blocking::Client>,
    pebble_port: u16,
    me: String,
    behaviour: Arc<Mutex<Behaviour>>,
}

/// One answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

impl Context {
    /// Reads one request, answers it, closes.
    fn serve<S: Read + Write>(&self, stream: S) {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) =
            (parts.next().unwrap_or("GET").to_owned(), parts.next().unwrap_or("/").to_owned());
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.trim_end().split_once(':') {
                let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, headers, body) = self.answer(&method, &path, &headers, body);
        let retry_after =
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("retry-after")).map(|(_, v)| v.clone());
        let resource_status = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned));
        self.behaviour.lock().expect("lock").requests.push(Seen {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            status,
            retry_after,
            resource_status,
        });
        let mut head =
            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
        let _ = stream.flush();
    }

    fn answer(&self, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        if let Some(id) = path.strip_prefix("/renewal-info/") {
            let window = self.behaviour.lock().expect("lock").windows.get(id).copied();
            return match window {
                Some((start, end)) => {
                    let info = serde_json::json!({
                        "suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)},
                    });
                    (
                        200,
                        vec![
                            ("Content-Type".into(), "application/json".into()),
                            ("Retry-After".into(), "3600".into()),
                        ],
                        info.to_string().into_bytes(),
                    )
                }
                None => (404, Vec::new(), b"unknown certificate".to_vec()),
            };
        }
        let new_order =
            method == "POST" && self.behaviour.lock().expect("lock").new_order_path.as_deref() == Some(path);
        let payload = new_order.then(|| jws_payload(&body));
        let replaces = payload.as_ref().and_then(|p| p.get("replaces")).cloned();
        if let Some(payload) = &payload {
            let mut b = self.behaviour.lock().expect("lock");
            if let Some(retry_after) = b.rate_limit_next_order.take() {
                b.new_orders.push((payload.clone(), 429));
                let problem = serde_json::json!({
                    "type": "urn:ietf:params:acme:error:rateLimited",
                    "detail": "too many new orders for this account (test fixture)",
                    "status": 429,
                });
                return (
                    429,
                    vec![
                        ("Content-Type".into(), "application/problem+json".into()),
                        ("Retry-After".into(), retry_after),
                    ],
                    problem.to_string().into_bytes(),
                );
            }
            if replaces.is_some() && b.refuse_next_replaces {
                b.refuse_next_replaces = false;
                b.new_orders.push((payload.clone(), 409));
                let problem = serde_json::json!({
                    "type": "urn:ietf:params:acme:error:alreadyReplaced",
                    "detail": "the certificate was already replaced by another order (test fixture)",
                    "status": 409,
                });
                return (
                    409,
                    vec![("Content-Type".into(), "application/problem+json".into())],
                    problem.to_string().into_bytes(),
                );
            }
        }
        let (status, mut out_headers, mut out_body) = self.forward(method, path, headers, body);
        let mut b = self.behaviour.lock().expect("lock");
        if let Some(payload) = payload {
            // Pebble rejects 5 % of nonces on purpose; the client sends those requests again.
            let bad_nonce = status == 400
                && serde_json::from_slice::<Value>(&out_body)
                    .is_ok_and(|p| p["type"] == "urn:ietf:params:acme:error:badNonce");
            if !bad_nonce {
                b.new_orders.push((payload, status));
            }
            if let (true, 201, Some(replaces)) = (b.ari, status, replaces) {
                // An ARI CA echoes `replaces` in the order it accepted (RFC 9773 §5).
                let mut order: Value = serde_json::from_slice(&out_body).expect("order json");
                order["replaces"] = replaces;
                out_body = order.to_string().into_bytes();
            }
        }
        if method == "POST"
            && path.starts_with("/finalize-order/")
            && status == 200
            && let Some(retry_after) = b.finalize_retry_after.take()
        {
            out_headers.push(("Retry-After".into(), retry_after));
        }
        if method == "GET" && path == "/dir" && status == 200 {
            let mut directory: Value = serde_json::from_slice(&out_body).expect("directory json");
            let new_order_url = directory["newOrder"].as_str().expect("newOrder").to_owned();
            assert!(
                new_order_url.starts_with(&self.me),
                "Pebble builds its URLs from the Host header: {new_order_url}"
            );
            b.new_order_path = Some(new_order_url[self.me.len()..].to_owned());
            if b.ari {
                directory["renewalInfo"] = format!("{}/renewal-info", self.me).into();
            }
            out_body = directory.to_string().into_bytes();
            out_headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
        }
        (status, out_headers, out_body)
    }

    /// The request as it came, to Pebble.
    fn forward(&self, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let url = format!("https://127.0.0.1:{}{path}", self.pebble_port);
        let mut request = self.upstream.request(method.parse().expect("method"), &url);
        for (name, value) in headers {
            if !["content-length", "connection", "transfer-encoding"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                request = request.header(name, value);
            }
        }
        let response = match request.body(body).send() {
            Ok(r) => r,
            Err(e) => {
                return (502, Vec::new(), format!("the proxy could not reach Pebble: {e}").into_bytes());
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(n, _)| !["content-length", "connection", "transfer-encoding"].contains(&n.as_str()))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        (status, headers, response.bytes().map(|b| b.to_vec()).unwrap_or_default())
    }
}

/// The payload of a JWS in the flattened JSON serialization (RFC 7515 §7.2.2), as JSON.
pub fn jws_payload(body: &[u8]) -> Value {
    let jws: Value = serde_json::from_slice(body).expect("JWS json");
    let payload = URL_SAFE_NO_PAD.decode(jws["payload"].as_str().expect("payload")).expect("base64url");
    serde_json::from_slice(&payload).expect("payload json")
}

pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).expect("time").to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A self-signed certificate for 127.0.0.1 and its key.
pub fn self_signed_for_loopback() -> (X509, PKey<openssl::pkey::Private>) {
    crate::pebble::self_signed_tls("ACME proxy (test fixture)", &[], &["127.0.0.1"], 2)
}

// ---- a host configured against the proxy -----------------------------------------------------

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// A server with one service, `web`, and a configuration pointing at the proxy.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub hostname: String,
    pub config: PathBuf,
}

impl Host {
    pub fn new(hostname: &str) -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("web")).expect("web");
        let host = Host { config: dir.path().join("config.toml"), hostname: hostname.to_owned(), dir };
        host.self_signed();
        host
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A self-signed certificate in `web` (the policy replaces it).
    pub fn self_signed(&self) {
        let m =
            placeholder::generate(&self.hostname, &[], KeyAlgorithm::EcP256, 30, now()).expect("placeholder");
        std::fs::write(self.path("web/cert.pem"), &m.certificate_pem).expect("cert");
        std::fs::write(self.path("web/key.pem"), &*m.key_pem).expect("key");
    }

    /// `[trust]` Pebble's root, `[acme]` at the proxy with HTTP-01 on Pebble's validation port,
    /// and `extra` (top-level keys and tables) after them.
    pub fn configure(&self, pebble: &Pebble, proxy: &Proxy, extra: &str) {
        let bundle = self.path("ca-bundle.pem");
        let mut pem = std::fs::read(&proxy.cert).expect("proxy cert");
        pem.extend(std::fs::read(&pebble.api_cert).expect("api cert"));
        std::fs::write(&bundle, pem).expect("bundle");
        let text = format!(
            "hostname = \"{host}\"\nstate-dir = \"{state}\"\n\n[trust]\nextra-roots = [\"{root}\"]\n\n\
             [acme]\ndirectory = \"{dir}\"\nca-bundle = \"{bundle}\"\nemail = \"admin@example.com\"\n\
             pending-wait-seconds = 20\nlisten = \"127.0.0.1:{http}\"\n\n{extra}\n\n\
             [[service]]\nname = \"web\"\ncertificate = \"{web}/cert.pem\"\nkey = \"{web}/key.pem\"\n",
            host = self.hostname,
            state = self.path("state").display(),
            root = pebble.root.display(),
            dir = proxy.directory_url(),
            bundle = bundle.display(),
            http = pebble.http_port,
            web = self.path("web").display(),
        );
        // Hermetic: no mail through this machine's sendmail (tests/notify.rs tests the mail).
        let text = if text.contains("[mail]") { text } else { text + "\n[mail]\nenabled = false\n" };
        std::fs::write(&self.config, text).expect("config");
    }

    pub fn run(&self) -> Run {
        Run::new().arg("--config").arg(&self.config)
    }

    pub fn events(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path("state/acme/history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("history line"))
            .filter(|e| e["event"] == name)
            .collect()
    }
}

/// Asserts a successful run that installed a certificate issued by Pebble for the hostname;
/// returns its SHA-256.
pub fn assert_installed(host: &Host, out: &Outcome, pebble: &Pebble) -> String {
    assert_eq!(out.code, 0, "{}\n{}\n{}", out.stdout, out.stderr, pebble.log());
    let leaf = X509::from_pem(&std::fs::read(host.path("web/cert.pem")).expect("cert")).expect("pem");
    let issuer = format!("{:?}", leaf.issuer_name());
    assert!(issuer.contains("Pebble Intermediate"), "issuer {issuer}\n{}", out.stdout);
    let key =
        PKey::private_key_from_pem(&std::fs::read(host.path("web/key.pem")).expect("key")).expect("key");
    assert!(leaf.public_key().expect("public").public_eq(&key), "the key matches");
    hex::encode(leaf.digest(MessageDigest::sha256()).expect("digest"))
}
