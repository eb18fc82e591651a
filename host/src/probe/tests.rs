#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Unit tests of the probe's dialogues and error steps against tiny loopback servers written
//! here (each answers one scripted way: a refusal, silence, garbage). Real daemons (nginx,
//! Dovecot, Postfix) are probed in `tests/probe.rs`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::X509;

use super::*;
use crate::actions::placeholder::{self, Material};
use crate::config::KeyAlgorithm;

fn material(name: &str) -> Material {
    placeholder::generate(name, &[], KeyAlgorithm::EcP256, 30, crate::time::unix_now()).unwrap()
}

fn fingerprint(m: &Material) -> String {
    hex::encode(openssl::sha::sha256(&X509::from_pem(&m.certificate_pem).unwrap().to_der().unwrap()))
}

fn acceptor(m: &Material) -> SslAcceptor {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&X509::from_pem(&m.certificate_pem).unwrap()).unwrap();
    b.set_private_key(&PKey::private_key_from_pem(&m.key_pem).unwrap()).unwrap();
    b.build()
}

/// A server on a free loopback port that runs `script` on each of `connections` connections.
fn serve(connections: usize, script: impl Fn(TcpStream) + Send + 'static) -> (ProbeEndpoint, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((stream, _)) = listener.accept() else { return };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            script(stream);
        }
    });
    (ProbeEndpoint::new("127.0.0.1", port, Protocol::Tls), handle)
}

fn settings(timeout: Duration) -> ProbeSettings {
    ProbeSettings { timeout, server_name: "probe.example".into(), client_name: "client.example".into() }
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    reader.read_line(&mut l).unwrap();
    l
}

fn say(stream: &mut TcpStream, text: &str) {
    stream.write_all(text.as_bytes()).unwrap();
}

#[test]
fn implicit_tls_returns_the_served_leaf_and_sends_sni() {
    let m = material("probe.example");
    let acceptor = acceptor(&m);
    let (sni_tx, sni_rx) = std::sync::mpsc::channel();
    let (endpoint, handle) = serve(1, move |stream| {
        let tls = acceptor.accept(stream).unwrap();
        sni_tx.send(tls.ssl().servername(openssl::ssl::NameType::HOST_NAME).map(str::to_owned)).unwrap();
    });
    let served = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap();
    handle.join().unwrap();
    assert_eq!(served.fingerprint, fingerprint(&m));
    assert!(served.chain.is_empty());
    assert_eq!(sni_rx.recv().unwrap().as_deref(), Some("probe.example"));
}

#[test]
fn smtp_says_ehlo_then_starttls_then_handshakes() {
    let m = material("mail.example");
    let acceptor = acceptor(&m);
    let (endpoint, handle) = serve(1, move |mut stream| {
        say(&mut stream, "220-mail.example ESMTP\r\n220 more greeting\r\n");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        assert_eq!(line(&mut reader), "EHLO client.example\r\n");
        say(&mut stream, "250-mail.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
        assert_eq!(line(&mut reader), "STARTTLS\r\n");
        say(&mut stream, "220 2.0.0 Ready to start TLS\r\n");
        acceptor.accept(stream).unwrap();
    });
    let endpoint = ProbeEndpoint { protocol: Protocol::Smtp, ..endpoint };
    let served = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap();
    handle.join().unwrap();
    assert_eq!(served.fingerprint, fingerprint(&m));
}

#[test]
fn imap_pop3_and_ftp_upgrade_with_their_own_commands() {
    for (protocol, greeting, command, go) in [
        (
            Protocol::Imap,
            "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
            "C1 STARTTLS\r\n",
            "* BYE not really\r\nC1 OK Begin TLS\r\n",
        ),
        (Protocol::Pop3, "+OK POP3 ready\r\n", "STLS\r\n", "+OK Begin TLS\r\n"),
        (Protocol::Ftp, "220-Welcome\r\n220 FTP ready\r\n", "AUTH TLS\r\n", "234 AUTH TLS OK.\r\n"),
    ] {
        let m = material("mail.example");
        let acceptor = acceptor(&m);
        let (endpoint, handle) = serve(1, move |mut stream| {
            say(&mut stream, greeting);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            assert_eq!(line(&mut reader), command);
            say(&mut stream, go);
            acceptor.accept(stream).unwrap();
        });
        let endpoint = ProbeEndpoint { protocol, ..endpoint };
        let served = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap();
        handle.join().unwrap();
        assert_eq!(served.fingerprint, fingerprint(&m), "{protocol}");
    }
}

#[test]
fn a_refused_upgrade_quotes_the_server() {
    for (protocol, greeting, answer, expected) in [
        (Protocol::Smtp, "220 x ESMTP\r\n", "250 x\r\n", "454 4.7.0 TLS not available"),
        (Protocol::Imap, "* OK ready\r\n", "", "C1 NO STARTTLS is disabled"),
        (Protocol::Pop3, "+OK ready\r\n", "", "-ERR TLS support isn't enabled"),
        (Protocol::Ftp, "220 ready\r\n", "", "530 TLS not configured"),
    ] {
        let (endpoint, handle) = serve(1, move |mut stream| {
            say(&mut stream, greeting);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if !answer.is_empty() {
                line(&mut reader);
                say(&mut stream, answer);
            }
            line(&mut reader);
            say(&mut stream, &format!("{expected}\r\n"));
        });
        let endpoint = ProbeEndpoint { protocol, ..endpoint };
        let error = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap_err();
        handle.join().unwrap();
        assert!(matches!(error, ProbeError::StartTlsRefused(_)), "{protocol}: {error}");
        let text = error.to_string();
        assert!(text.starts_with("STARTTLS refused: ") && text.contains(expected), "{protocol}: {text}");
        if protocol == Protocol::Smtp {
            assert!(text.contains("did not offer STARTTLS after EHLO"), "{text}");
        }
    }
}

#[test]
fn a_silent_server_times_out_at_the_banner() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (endpoint, handle) = serve(1, move |_stream| {
        let _ = rx.recv_timeout(Duration::from_secs(5));
    });
    let endpoint = ProbeEndpoint { protocol: Protocol::Pop3, ..endpoint };
    let started = std::time::Instant::now();
    let error = probe(&endpoint, &settings(Duration::from_secs(1))).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(tx);
    handle.join().unwrap();
    assert_eq!(error.to_string(), "banner: no answer within 1s");
}

#[test]
fn an_unexpected_greeting_is_a_banner_error() {
    let (endpoint, handle) = serve(1, |mut stream| say(&mut stream, "554 5.3.2 go away\r\n"));
    let endpoint = ProbeEndpoint { protocol: Protocol::Smtp, ..endpoint };
    let error = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap_err();
    handle.join().unwrap();
    assert_eq!(error.to_string(), "banner: the server greeted with \"554 5.3.2 go away\" instead of 220");
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = ProbeEndpoint::new("127.0.0.1", port, Protocol::Https);
    let error = probe(&endpoint, &settings(Duration::from_secs(2))).unwrap_err();
    assert_eq!(error.to_string(), "connect: connection refused (is the service running?)");
}

#[test]
fn plain_text_instead_of_tls_is_a_handshake_error() {
    let (endpoint, handle) = serve(1, |mut stream| {
        let mut buf = [0u8; 512];
        let _ = std::io::Read::read(&mut stream, &mut buf);
        say(&mut stream, "HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let error = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap_err();
    handle.join().unwrap();
    assert!(matches!(error, ProbeError::Handshake(_)), "{error}");
    assert!(error.to_string().starts_with("TLS handshake: "), "{error}");
}

#[test]
fn an_endless_reply_is_cut_off() {
    let (endpoint, handle) = serve(1, |mut stream| {
        let _ = stream.write_all(&vec![b'2'; starttls::MAX_LINE + 10]);
    });
    let endpoint = ProbeEndpoint { protocol: Protocol::Smtp, ..endpoint };
    let error = probe(&endpoint, &settings(Duration::from_secs(5))).unwrap_err();
    handle.join().unwrap();
    assert!(error.to_string().contains("longer than 8192 bytes"), "{error}");
}

#[test]
fn the_after_install_check_waits_then_reports_the_stale_certificate() {
    let old = material("probe.example");
    let new = material("probe.example");
    let acceptor = acceptor(&old);
    let (endpoint, _handle) = serve(10, move |stream| {
        let _ = acceptor.accept(stream);
    });
    let check = AfterInstall::new(
        vec![ProbeEndpoint { protocol: Protocol::Https, ..endpoint.clone() }],
        settings(Duration::from_secs(2)),
        Duration::from_secs(1),
        Some(fingerprint(&old)),
    );
    let started = std::time::Instant::now();
    let error = check.new_certificate_served(&fingerprint(&new)).unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(3), "{took:?}");
    assert!(error.starts_with("after waiting 1s, "), "{error}");
    assert!(error.contains("still serves the previous certificate (sha256 "), "{error}");
    assert!(error.contains(&endpoint.address()), "{error}");
    // After a rollback, the old certificate is the one wanted.
    assert_eq!(
        check.after_rollback(),
        format!("after the rollback {} (https) serve the previous certificate again", endpoint.address())
    );
    // And the same endpoint passes the check for the certificate it does serve.
    let seen = check.new_certificate_served(&fingerprint(&old)).unwrap();
    assert!(seen.contains("serves the new certificate"), "{seen}");
}

/// Like an nginx whose old worker still accepts for a moment after a reload: the first
/// connection gets the new certificate, the second the previous one, then only the new one.
#[test]
fn one_answer_with_the_new_certificate_is_not_yet_verified() {
    let old = material("probe.example");
    let new = material("probe.example");
    let (old_acceptor, new_acceptor) = (acceptor(&old), acceptor(&new));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let (endpoint, _handle) = serve(5, move |stream| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = if n == 1 { old_acceptor.accept(stream) } else { new_acceptor.accept(stream) };
    });
    let check = AfterInstall::new(
        vec![ProbeEndpoint { protocol: Protocol::Https, ..endpoint }],
        settings(Duration::from_secs(2)),
        Duration::from_secs(5),
        Some(fingerprint(&old)),
    );
    let seen = check.new_certificate_served(&fingerprint(&new)).unwrap();
    assert!(seen.contains("serves the new certificate"), "{seen}");
    // 1 new + 1 old (streak reset) + 3 confirming new answers: five connections.
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[test]
fn served_facts_compare_with_the_installed_certificate() {
    let m = material("probe.example");
    let served = Served {
        leaf: X509::from_pem(&m.certificate_pem).unwrap(),
        chain: Vec::new(),
        fingerprint: fingerprint(&m),
    };
    let verifier = Verifier::not_checking("test");
    let endpoint = ProbeEndpoint::new("::1", 993, Protocol::Imaps);
    let fact = served_endpoint(&endpoint, &Ok(served.clone()), Some(&fingerprint(&m)), &verifier, 0);
    assert_eq!(fact.endpoint, "[::1]:993");
    assert!(fact.matches_installed);
    assert_eq!(fact.error, None);
    let fact = served_endpoint(&endpoint, &Ok(served), Some("00"), &verifier, 0);
    assert!(!fact.matches_installed);
    let fact = served_endpoint(
        &endpoint,
        &Err(ProbeError::Connect("connection refused".into())),
        None,
        &verifier,
        0,
    );
    assert_eq!(fact.sha256_fingerprint, None);
    assert_eq!(fact.error.as_deref(), Some("imaps: connect: connection refused"));
}

/// A check that answers as told (the real probes are exercised above and in `tests/probe.rs`):
/// what `install_checked` does with the answer.
struct Scripted {
    served: Result<String, String>,
    asked: std::sync::Mutex<Vec<String>>,
}

impl crate::actions::install::PostReloadCheck for Scripted {
    fn new_certificate_served(&self, fingerprint: &str) -> Result<String, String> {
        self.asked.lock().unwrap().push(fingerprint.to_string());
        self.served.clone()
    }
    fn after_rollback(&self) -> String {
        "after the rollback: old one again".into()
    }
}

#[test]
fn install_checked_keeps_a_served_install_and_rolls_back_an_unserved_one() {
    use crate::actions::errors::{InstallError, RollbackOutcome};
    use crate::actions::install::{InstallTarget, install_checked};

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let old = material("old.example");
    std::fs::write(dir.path().join("cert.pem"), &old.certificate_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &old.key_pem).unwrap();
    let target = InstallTarget::separate("web", dir.path().join("cert.pem"), dir.path().join("key.pem"));

    let new = material("new.example");
    let refuse = Scripted { served: Err("still the old one".into()), asked: Default::default() };
    let error = install_checked(&state, &target, &new, None, Some(&refuse)).unwrap_err();
    assert_eq!(refuse.asked.lock().unwrap().as_slice(), [fingerprint(&new)]);
    match &error {
        InstallError::NotServed {
            reason,
            reloaded: false,
            rollback: RollbackOutcome::Restored { .. },
            after_rollback,
            ..
        } => {
            assert_eq!(reason, "still the old one");
            assert_eq!(after_rollback.as_deref(), Some("after the rollback: old one again"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().starts_with("service web: the new certificate is not served: still the old one; the previous files were restored from "), "{error}");
    assert!(error.to_string().contains(NOT_SERVED));
    assert_eq!(std::fs::read(dir.path().join("cert.pem")).unwrap(), old.certificate_pem);
    assert!(!crate::actions::journal::path(&state, "web").exists(), "no journal left behind");

    let accept = Scripted { served: Ok("seen".into()), asked: Default::default() };
    let done = install_checked(&state, &target, &new, None, Some(&accept)).unwrap();
    assert_eq!(done.verified.as_deref(), Some("seen"));
    assert_eq!(std::fs::read(dir.path().join("cert.pem")).unwrap(), new.certificate_pem);
}
