//! Answering the CA's challenges.
//!
//! * **HTTP-01, standalone** ([`Standalone`]): a small HTTP/1.1 server (hyper) bound to the
//!   configured address for the duration of one order. It answers `GET` and `HEAD` of
//!   `/.well-known/acme-challenge/<token>` for the current order's tokens only (everything
//!   else is 404, other methods 405), and it is bounded: at most [`MAX_CONNECTIONS`] connections
//!   at once and [`MAX_CONNECTIONS_TOTAL`] in its life, one request per connection, 8 KiB of
//!   request head, 10 s to send it and [`CONNECTION_TIMEOUT`] per connection. It closes (and
//!   drops every open connection) when the order is done.
//! * **HTTP-01, webroot** ([`write_webroot_token`]): the key authorisation goes into
//!   `<webroot>/.well-known/acme-challenge/<token>` (`0644`, directories created `0755`) for the
//!   web server that already runs; the file and the directories created for it are removed when
//!   the order ends ([`cleanup`]).
//! * **DNS-01, hook** ([`run_dns_hook`]): a user command publishes the TXT record. It runs as
//!   argv (no shell) with `ACME_DOMAIN`, `ACME_RECORD_NAME`, `ACME_VALIDATION` (and certbot's
//!   `CERTBOT_DOMAIN`, `CERTBOT_VALIDATION`, so certbot manual hooks work unchanged) in its
//!   environment, with a timeout; the cleanup hook gets the same when the order ends.
//!
//! Tokens are checked to be base64url before they are used in a path or served.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs;
use std::io::{self, Read, Seek};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use super::state::Artifact;
use crate::config::acme::ChallengeConfig;
use crate::fs::write_atomic;

/// The path prefix of HTTP-01 tokens.
pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";
/// Connections served at once by the standalone listener.
pub const MAX_CONNECTIONS: usize = 32;
/// Connections accepted in the standalone listener's whole life.
pub const MAX_CONNECTIONS_TOTAL: usize = 4096;
/// How long one connection may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a DNS hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of a hook's output an error quotes.
const HOOK_OUTPUT_TAIL: u64 = 2000;

/// Whether `token` is a base64url token (RFC 8555 §8.1), safe in a path.
pub fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 512
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The standalone HTTP-01 responder. Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct Standalone {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    served: Arc<AtomicUsize>,
}

impl Standalone {
    /// Binds `listen` and serves `responses` (token → key authorisation).
    pub async fn start(listen: SocketAddr, responses: HashMap<String, String>) -> io::Result<Standalone> {
        if let Some(bad) = responses.keys().find(|t| !is_token(t)) {
            return Err(io::Error::other(format!("the CA sent a token that is not base64url: {bad:?}")));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let served = Arc::new(AtomicUsize::new(0));
        let responses = Arc::new(responses);
        let counter = served.clone();
        let task = tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            let mut connections = JoinSet::new();
            let mut accepted = 0usize;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    next = listener.accept() => {
                        let Ok((stream, _)) = next else {
                            // EMFILE and the like: do not spin.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        accepted += 1;
                        if accepted > MAX_CONNECTIONS_TOTAL {
                            break;
                        }
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            continue; // too many at once: the connection is closed
                        };
                        let responses = responses.clone();
                        let counter = counter.clone();
                        connections.spawn(async move {
                            let _permit = permit;
                            let service = service_fn(move |req| respond(req, responses.clone(), counter.clone()));
                            let connection = http1::Builder::new()
                                .keep_alive(false)
                                .max_buf_size(8192)
                                .max_headers(64)
                                .timer(TokioTimer::new())
                                .header_read_timeout(Duration::from_secs(10))
                                .serve_connection(TokioIo::new(stream), service);
                            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                        });
                    }
                }
            }
            // Dropping the listener closes the port; dropping the set aborts open connections.
            drop(listener);
            connections.shutdown().await;
        });
        Ok(Standalone { addr, stop: Some(stop), task, served })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many token requests were answered with the key authorisation.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Closes the listener and every connection, and waits until the port is released.
    pub async fn stop(mut self) -> usize {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.served()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond(
    req: Request<Incoming>,
    responses: Arc<HashMap<String, String>>,
    served: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
        Ok(response)
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n".into());
    }
    match req.uri().path().strip_prefix(CHALLENGE_PATH).and_then(|token| responses.get(token)) {
        Some(key_authorization) => {
            served.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::OK, key_authorization.clone())
        }
        None => reply(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Writes the key authorisation for `token` under `webroot`; returns what to remove later.
pub fn write_webroot_token(webroot: &Path, token: &str, key_authorization: &str) -> Result<Artifact, String> {
    if !is_token(token) {
        return Err(format!("the CA sent a token that is not base64url: {token:?}"));
    }
    match fs::metadata(webroot) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{}: is not a directory", webroot.display())),
        Err(e) => return Err(format!("{}: {e}", webroot.display())),
    }
    let mut created_dirs = Vec::new();
    let mut dir = webroot.to_path_buf();
    for part in [".well-known", "acme-challenge"] {
        dir.push(part);
        match fs::DirBuilder::new().create(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                created_dirs.insert(0, dir.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    let path = dir.join(token);
    write_atomic(&path, key_authorization.as_bytes(), 0o644).map_err(|e| e.to_string())?;
    Ok(Artifact::WebrootFile { path, created_dirs })
}

/// The DNS name a TXT record is published at for `identifier` (a leading `*.` dropped).
pub fn dns_record_name(identifier: &str) -> String {
    format!("_acme-challenge.{}", identifier.strip_prefix("*.").unwrap_or(identifier))
}

/// Runs a DNS hook for one name: argv, no shell, with the record in its environment.
pub fn run_dns_hook(argv: &[String], identifier: &str, value: &str, timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("the hook is empty".into());
    };
    let domain = identifier.strip_prefix("*.").unwrap_or(identifier);
    let mut output =
        tempfile::tempfile().map_err(|e| format!("cannot make a file for the hook's output: {e}"))?;
    let mut child = Command::new(program)
        .args(args)
        .env("ACME_DOMAIN", domain)
        .env("ACME_RECORD_NAME", dns_record_name(identifier))
        .env("ACME_VALIDATION", value)
        .env("CERTBOT_DOMAIN", domain)
        .env("CERTBOT_VALIDATION", value)
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(output.try_clone().map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.wait();
                break Err(format!(
                    "{program:?} did not finish within {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for {program:?}: {e}")),
        }
    };
    let tail = {
        let len = output.seek(io::SeekFrom::End(0)).unwrap_or(0);
        let _ = output.seek(io::SeekFrom::Start(len.saturating_sub(HOOK_OUTPUT_TAIL)));
        let mut text = String::new();
        let _ = output.take(HOOK_OUTPUT_TAIL).read_to_string(&mut text);
        text.trim().to_owned()
    };
    match status? {
        status if status.success() => Ok(()),
        status => Err(format!(
            "{program:?} failed ({status}){}",
            if tail.is_empty() { String::new() } else { format!(": {tail}") }
        )),
    }
}

/// Removes the challenge responses an order left in place; returns a warning per failure.
pub fn cleanup(artifacts: &[Artifact], challenge: &ChallengeConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    for artifact in artifacts {
        match artifact {
            Artifact::WebrootFile { path, created_dirs } => {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        warnings.push(format!("cannot remove the challenge file {}: {e}", path.display()))
                    }
                }
                for dir in created_dirs {
                    // Only if empty: another order's or another tool's files stay.
                    let _ = fs::remove_dir(dir);
                }
            }
            Artifact::DnsRecord { domain, value } => {
                if let ChallengeConfig::Dns01Hook { cleanup: Some(hook), .. } = challenge
                    && let Err(e) = run_dns_hook(hook, domain, value, HOOK_TIMEOUT)
                {
                    warnings.push(format!("the DNS cleanup hook for {domain} failed: {e}"));
                }
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn standalone_serves_only_current_tokens_and_closes() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let responses = HashMap::from([("tok-EN_1".to_string(), "tok-EN_1.thumb".to_string())]);
            let server = Standalone::start("127.0.0.1:0".parse().expect("addr"), responses).await.expect("bind");
            let addr = server.local_addr();
            let answers = tokio::task::spawn_blocking(move || {
                [
                    get(addr, "GET /.well-known/acme-challenge/tok-EN_1 HTTP/1.1\r\nHost: h\r\n\r\n"),
                    get(addr, "GET /.well-known/acme-challenge/other HTTP/1.1\r\nHost: h\r\n\r\n"),
                    get(addr, "POST /.well-known/acme-challenge/tok-EN_1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
                    get(addr, &format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(20_000))),
                ]
            })
            .await
            .expect("client");
            assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
            assert!(answers[0].ends_with("tok-EN_1.thumb"), "{}", answers[0]);
            assert!(answers[1].starts_with("HTTP/1.1 404"), "{}", answers[1]);
            assert!(answers[2].starts_with("HTTP/1.1 405"), "{}", answers[2]);
            // An oversized request head is refused, not buffered.
            assert!(answers[3].is_empty() || answers[3].starts_with("HTTP/1.1 431"), "{}", answers[3]);
            assert_eq!(server.stop().await, 1);
            assert!(std::net::TcpStream::connect(addr).is_err(), "the port is closed after stop");
        });
    }

    #[test]
    fn standalone_refuses_bad_tokens_and_busy_ports() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let bad = HashMap::from([("../etc/passwd".to_string(), "x".to_string())]);
            assert!(Standalone::start("127.0.0.1:0".parse().expect("addr"), bad).await.is_err());
            let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let busy = holder.local_addr().expect("addr");
            let e = Standalone::start(busy, HashMap::new()).await.expect_err("busy");
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        });
    }

    #[test]
    fn webroot_token_is_written_and_cleaned_up_with_its_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let artifact = write_webroot_token(tmp.path(), "abc_DEF-1", "abc_DEF-1.thumb").expect("write");
        let file = tmp.path().join(".well-known/acme-challenge/abc_DEF-1");
        assert_eq!(fs::read_to_string(&file).expect("read"), "abc_DEF-1.thumb");
        assert_eq!(crate::actions::test_support::mode_of(&file), 0o644);
        let warnings = cleanup(&[artifact], &ChallengeConfig::Http01Webroot { webroot: tmp.path().into() });
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!tmp.path().join(".well-known").exists());
        // An existing .well-known stays.
        fs::create_dir(tmp.path().join(".well-known")).expect("mkdir");
        let artifact = write_webroot_token(tmp.path(), "t", "t.k").expect("write");
        cleanup(&[artifact], &ChallengeConfig::Http01Webroot { webroot: tmp.path().into() });
        assert!(tmp.path().join(".well-known").is_dir());
        assert!(!tmp.path().join(".well-known/acme-challenge").exists());
        assert!(write_webroot_token(tmp.path(), "../x", "k").is_err());
        assert!(write_webroot_token(&tmp.path().join("missing"), "t", "k").is_err());
    }

    #[test]
    fn dns_hook_gets_the_record_in_its_environment_and_failures_quote_output() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("env.txt");
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "printf '%s %s %s' \"$ACME_DOMAIN\" \"$ACME_RECORD_NAME\" \"$ACME_VALIDATION\" > \"$0\""
                .to_string(),
            out.display().to_string(),
        ];
        run_dns_hook(&argv, "*.example.com", "VALUE", HOOK_TIMEOUT).expect("hook");
        assert_eq!(fs::read_to_string(&out).expect("read"), "example.com _acme-challenge.example.com VALUE");
        let failing = vec!["/bin/sh".to_string(), "-c".to_string(), "echo no zone >&2; exit 3".to_string()];
        let e = run_dns_hook(&failing, "example.com", "V", HOOK_TIMEOUT).expect_err("fails");
        assert!(e.contains("exit status: 3") && e.contains("no zone"), "{e}");
        let slow = vec!["/bin/sleep".to_string(), "10".to_string()];
        let e = run_dns_hook(&slow, "example.com", "V", Duration::from_millis(200)).expect_err("slow");
        assert!(e.contains("did not finish"), "{e}");
    }
}
