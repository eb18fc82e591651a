use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslMethod};

use super::*;
use crate::facts::testpki::{self, Pki, Spec};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("url")
}

fn via(proxies: &Proxies, target: &str) -> Option<String> {
    proxies.proxy_for(&url(target)).map(|u| u.to_string())
}

#[test]
fn http_and_https_proxies_come_from_their_variables_then_all_proxy() {
    let none = Proxies::from_lookup(env(&[])).expect("no variables");
    assert!(!none.any());
    assert_eq!(via(&none, "https://ca.example/dir"), None);

    let p = Proxies::from_lookup(env(&[
        ("HTTPS_PROXY", "http://secure.proxy:3128"),
        ("https_proxy", "http://lower.proxy:1"),
        ("http_proxy", "plain.proxy:8080"),
    ]))
    .expect("proxies");
    assert_eq!(via(&p, "https://ca.example/dir").as_deref(), Some("http://secure.proxy:3128/"));
    // No scheme: http:// (as curl and reqwest).
    assert_eq!(via(&p, "http://ocsp.example/").as_deref(), Some("http://plain.proxy:8080/"));
    assert_eq!(via(&p, "ftp://files.example/").as_deref(), None);

    // ALL_PROXY for whatever has no variable of its own; an empty variable counts as unset.
    let p = Proxies::from_lookup(env(&[
        ("ALL_PROXY", "https://all.proxy:8443"),
        ("HTTP_PROXY", ""),
        ("https_proxy", "http://only-https.proxy:3128"),
    ]))
    .expect("proxies");
    assert_eq!(via(&p, "http://ocsp.example/").as_deref(), Some("https://all.proxy:8443/"));
    assert_eq!(via(&p, "https://ca.example/").as_deref(), Some("http://only-https.proxy:3128/"));
    let p = Proxies::from_lookup(env(&[("all_proxy", "http://all.proxy:1")])).expect("proxies");
    assert_eq!(via(&p, "https://ca.example/").as_deref(), Some("http://all.proxy:1/"));
}

#[test]
fn loopback_is_never_proxied() {
    let p = Proxies::from_lookup(env(&[("ALL_PROXY", "http://proxy.example:3128")])).expect("proxies");
    for target in [
        "https://127.0.0.1:14000/dir",
        "http://127.8.9.10/ocsp",
        "https://[::1]:8443/",
        "https://[::ffff:127.0.0.1]/",
        "https://localhost:14000/dir",
        "https://LOCALHOST./dir",
        "http://pebble.localhost/",
    ] {
        assert_eq!(via(&p, target), None, "{target}");
    }
    for target in
        ["https://128.0.0.1/", "https://[::2]/", "https://localhost.example/", "https://ca.invalid/"]
    {
        assert!(via(&p, target).is_some(), "{target}");
    }
}

#[test]
fn no_proxy_follows_curls_rules() {
    let p = Proxies::from_lookup(env(&[
        ("HTTPS_PROXY", "http://proxy.example:3128"),
        ("NO_PROXY", "internal.example, .corp.example,10.0.0.0/8 , 192.0.2.7"),
        ("no_proxy", "ignored.example"),
    ]))
    .expect("proxies");
    for direct in [
        "https://internal.example/",
        "https://ca.internal.example/",
        "https://corp.example/",
        "https://x.corp.example/",
        "https://10.1.2.3/",
        "https://192.0.2.7/",
    ] {
        assert_eq!(via(&p, direct), None, "{direct}");
    }
    for proxied in ["https://notinternal.example/", "https://192.0.2.8/", "https://ignored.example/"] {
        assert!(via(&p, proxied).is_some(), "{proxied}");
    }
    let p = Proxies::from_lookup(env(&[("HTTPS_PROXY", "http://proxy.example:3128"), ("no_proxy", "*")]))
        .expect("proxies");
    assert_eq!(via(&p, "https://ca.example/"), None);
}

#[test]
fn a_cgi_environment_ignores_http_proxy_only() {
    let vars = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://from-a-header:1")];
    let p = Proxies::from_lookup(env(&vars)).expect("proxies");
    assert_eq!(via(&p, "http://ocsp.example/"), None);
    let p = Proxies::from_lookup(env(&[
        ("REQUEST_METHOD", "GET"),
        ("HTTP_PROXY", "http://from-a-header:1"),
        ("http_proxy", "http://admin.proxy:3128"),
        ("HTTPS_PROXY", "http://admin.proxy:3128"),
    ]))
    .expect("proxies");
    assert_eq!(via(&p, "http://ocsp.example/").as_deref(), Some("http://admin.proxy:3128/"));
    assert_eq!(via(&p, "https://ca.example/").as_deref(), Some("http://admin.proxy:3128/"));
}

#[test]
fn unusable_proxy_variables_are_errors_naming_the_variable_without_the_password() {
    for (variable, value, expected) in [
        ("HTTPS_PROXY", "socks5://user:secret@127.0.0.1:1080", "SOCKS proxies are not supported"),
        ("https_proxy", "ftp://proxy.example", "starts with http:// or https://, not ftp://"),
        ("ALL_PROXY", "http://user:secret@[::1", "is not a proxy URL"),
        ("HTTP_PROXY", "http://:3128", "is not a proxy URL"),
    ] {
        let e = Proxies::from_lookup(env(&[(variable, value)])).expect_err(value);
        let text = e.to_string();
        assert!(text.contains(&format!("environment variable {variable}")), "{text}");
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("secret"), "the password is not shown: {text}");
    }
    let p =
        Proxies::from_lookup(env(&[("HTTPS_PROXY", "http://user:secret@proxy.example:3128")])).expect("ok");
    assert!(!format!("{p:?}").contains("secret"), "{p:?}");
}

#[test]
fn retry_after_is_seconds_or_an_http_date() {
    let now = 1_735_689_600; // 2025-01-01 00:00:00 UTC
    assert_eq!(retry_after("120", now), Some(now + 120));
    assert_eq!(retry_after(" 0 ", now), Some(now));
    assert_eq!(retry_after("99999999999999999999999", now), Some(i64::MAX));
    // The three HTTP-date forms of RFC 9110.
    assert_eq!(retry_after("Wed, 01 Jan 2025 02:00:00 GMT", now), Some(now + 7200));
    assert_eq!(retry_after("Wednesday, 01-Jan-25 02:00:00 GMT", now), Some(now + 7200));
    assert_eq!(retry_after("Wed Jan  1 02:00:00 2025", now), Some(now + 7200));
    // In the past: now.
    assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(now));
    for garbage in ["", "soon", "-5", "1.5", "2025-01-01T02:00:00Z", "Wed, 32 Jan 2025 02:00:00 GMT"] {
        assert_eq!(retry_after(garbage, now), None, "{garbage:?}");
    }
}

#[test]
fn ca_bundle_problems_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let e = ca_bundle(&missing).expect_err("missing");
    assert_eq!(e.to_string(), format!("the CA bundle {}: does not exist", missing.display()));
    let junk = testpki::write(dir.path(), "junk.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n");
    let e = ca_bundle(&junk).expect_err("junk");
    assert!(e.to_string().contains("junk.pem: not a PEM certificate bundle"), "{e}");
    let empty = testpki::write(dir.path(), "empty.pem", b"# nothing here\n");
    let e = ca_bundle(&empty).expect_err("empty");
    assert!(e.to_string().contains("empty.pem: holds no PEM certificate"), "{e}");
    let e = ca_bundle(dir.path()).expect_err("directory");
    assert!(e.to_string().contains("is a directory"), "{e}");
    let pki = Pki::new("Bundle");
    let good =
        testpki::write(dir.path(), "good.pem", &testpki::pem(&[&pki.root.cert, &pki.intermediate.cert]));
    assert_eq!(ca_bundle(&good).expect("good").len(), 2);
}

// ---- a real proxy on loopback ----------------------------------------------------------------

#[path = "../../../tests/support/forward_proxy.rs"]
mod forward_proxy;
use forward_proxy::RecordingProxy;

/// An HTTPS server on loopback answering "hello" to everything; counts its connections.
struct HelloServer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl HelloServer {
    /// Serves a certificate for `ca.invalid` and 127.0.0.1 issued by `pki`.
    fn start(pki: &Pki) -> HelloServer {
        let now = crate::time::unix_now();
        let mut spec = Spec::leaf("ca.invalid", &["ca.invalid"]);
        spec.ips = vec!["127.0.0.1".into()];
        (spec.not_before, spec.not_after) = (now - 3600, now + 86_400);
        let leaf = pki.leaf(&spec);
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
        acceptor.set_certificate(&leaf.cert).expect("cert");
        acceptor.add_extra_chain_cert(pki.intermediate.cert.clone()).expect("chain");
        acceptor.set_private_key(&leaf.key).expect("key");
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        // Detached: it ends with the test process (each test is its own process under nextest).
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(mut tls) = acceptor.accept(stream) else { return };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf);
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
                    let _ = tls.shutdown();
                });
            }
        });
        HelloServer { port, connections }
    }
}

#[test]
fn a_proxy_from_the_environment_carries_remote_requests_and_loopback_goes_direct() {
    let pki = Pki::new("Proxy test");
    let server = HelloServer::start(&pki);
    let proxy = RecordingProxy::start(HashMap::from([("ca.invalid:443".to_owned(), server.port)]));
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = testpki::write(dir.path(), "bundle.pem", &testpki::pem(&[&pki.root.cert]));
    let proxies = Proxies::from_lookup(env(&[("HTTPS_PROXY", &proxy.url()), ("http_proxy", &proxy.url())]))
        .expect("proxies");

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .shared_settings(Some(&bundle), &proxies)
        .expect("settings")
        .build()
        .expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let get = |target: String| {
        runtime.block_on(async {
            let response = client.get(&target).send().await.map_err(|e| error_chain(&e))?;
            let agent_ok = response.status().is_success();
            response.text().await.map(|t| (agent_ok, t)).map_err(|e| error_chain(&e))
        })
    };

    // `ca.invalid` resolves nowhere but at the proxy: the answer came through the tunnel.
    assert_eq!(get("https://ca.invalid/dir".into()), Ok((true, "hello".to_owned())));
    assert_eq!(proxy.seen(), vec!["CONNECT ca.invalid:443"]);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // Plain HTTP (OCSP, CRLs) goes to the proxy in absolute form.
    assert_eq!(get("http://ocsp.invalid/check".into()), Ok((true, "via the proxy".to_owned())));
    assert_eq!(proxy.seen()[1], "GET http://ocsp.invalid/check");

    // Loopback: straight to the server, the proxy sees nothing more.
    assert_eq!(get(format!("https://127.0.0.1:{}/dir", server.port)), Ok((true, "hello".to_owned())));
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());

    // The blocking client (policy downloads) decides the same way.
    let blocking = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .shared_settings(Some(&bundle), &proxies)
        .expect("settings")
        .build()
        .expect("client");
    let body =
        blocking.get("https://ca.invalid/policy.wasm").send().and_then(|r| r.text()).expect("via proxy");
    assert_eq!(body, "hello");
    let body = blocking
        .get(format!("https://127.0.0.1:{}/policy.wasm", server.port))
        .send()
        .and_then(|r| r.text())
        .expect("direct");
    assert_eq!(body, "hello");
    assert_eq!(
        proxy.seen(),
        vec!["CONNECT ca.invalid:443", "GET http://ocsp.invalid/check", "CONNECT ca.invalid:443"]
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 4);
}
