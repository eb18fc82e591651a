//! The HTTP side of the ACME client: `instant_acme`'s [`HttpClient`] over `reqwest`, whose TLS
//! is OpenSSL (native-tls) — the one TLS stack of this program. What it shares with the other
//! HTTP clients comes from [`crate::http`]: the user agent, an extra CA bundle for private ACME
//! servers (Pebble, an internal step-ca...) and the proxy from the environment (never for
//! loopback). Every request has a connect and a total timeout, redirects are not followed, and
//! answers are read up to [`MAX_RESPONSE_BYTES`].
//!
//! The client remembers the status and `Retry-After` of the last answer ([`ReqwestHttp::last_answer`]):
//! instant-acme's errors do not carry headers, and the ACME step needs the CA's `Retry-After`
//! after a `rateLimited` (RFC 8555 §6.6) or 503 answer, and while it polls an order (§7.4).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use super::errors::{AcmeError, TransportError};
use crate::http::{ClientBuilderExt, Proxies, SetupError};

/// The largest answer accepted from the CA (a certificate chain is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How long to wait for a TCP + TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take in all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the CA's `Retry-After` holds back new orders (RFC 8555 leaves it to the client).
pub const MAX_CA_RETRY_AFTER_SECS: i64 = 7 * 86_400;

/// An [`HttpClient`] on `reqwest`. Clones share the client and the last answer.
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
    last: Arc<Mutex<Option<Answered>>>,
}

/// The last answer the CA gave (any request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// Its HTTP status.
    pub status: u16,
    /// Its `Retry-After` header as sent, if any.
    pub retry_after_header: Option<String>,
    /// That header as a Unix time (reckoned when the answer came); `None` when absent or not
    /// a valid `Retry-After`.
    pub retry_after: Option<i64>,
    /// The same moment on the monotonic clock (for polling: sub-second exact).
    pub retry_at: Option<Instant>,
}

/// The CA asked not to be asked again before a time (RFC 8555 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaWait {
    /// Until when, capped at [`MAX_CA_RETRY_AFTER_SECS`] from when it was asked.
    pub until: i64,
    /// Whether the CA asked for longer than that cap.
    pub capped: bool,
    /// The status of the answer (429, 503...).
    pub status: u16,
    /// `Retry-After` as the CA sent it.
    pub header: String,
}

impl std::fmt::Display for CaWait {
    /// `Retry-After: 7200 with HTTP 429`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Retry-After: {} with HTTP {}", self.header, self.status)?;
        if self.capped {
            write!(f, "; held to at most {} days", MAX_CA_RETRY_AFTER_SECS / 86_400)?;
        }
        Ok(())
    }
}

impl ReqwestHttp {
    /// A client that trusts the system roots plus, if given, every certificate in `ca_bundle`,
    /// with the proxies of the environment.
    pub fn new(ca_bundle: Option<&Path>) -> Result<ReqwestHttp, AcmeError> {
        let proxies = Proxies::from_env().map_err(setup_error)?;
        ReqwestHttp::with_proxies(ca_bundle, &proxies)
    }

    /// [`ReqwestHttp::new`] with explicit proxies.
    pub fn with_proxies(ca_bundle: Option<&Path>, proxies: &Proxies) -> Result<ReqwestHttp, AcmeError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .shared_settings(ca_bundle, proxies)
            .map_err(setup_error)?
            .build()
            .map_err(|e| AcmeError::Http(format!("cannot set up HTTPS: {}", chain_of(&e))))?;
        Ok(ReqwestHttp { client, last: Arc::default() })
    }

    /// The status and `Retry-After` of the last answer, if any came.
    pub fn last_answer(&self) -> Option<Answered> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    /// The `Retry-After` of the last answer, once (a later call gives `None` until another
    /// answer with one comes): as a Unix time, and as an instant.
    pub fn take_retry_after(&self) -> Option<(i64, Instant)> {
        let mut last = self.last.lock().ok()?;
        let answer = last.as_mut()?;
        answer.retry_after.zip(answer.retry_at.take())
    }

    /// When the CA asked not to be asked again, if the last answer (the one `error` came from)
    /// was a 429, a 503 or a `rateLimited` problem with a `Retry-After`; at most
    /// [`MAX_CA_RETRY_AFTER_SECS`] after `now`.
    pub fn ca_asked_to_wait(&self, error: &AcmeError, now: i64) -> Option<CaWait> {
        let last = self.last_answer()?;
        let rate_limited = error.problem().and_then(|p| p.acme_error()) == Some("rateLimited");
        if !(rate_limited || last.status == 429 || last.status == 503) {
            return None;
        }
        let (asked, header) = (last.retry_after?, last.retry_after_header?);
        let cap = now.saturating_add(MAX_CA_RETRY_AFTER_SECS);
        Some(CaWait { until: asked.min(cap), capped: asked > cap, status: last.status, header })
    }

    fn record(&self, status: u16, headers: &http::HeaderMap) {
        let header = headers
            .get(http::header::RETRY_AFTER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
        let (now, instant) = (super::unix_now(), Instant::now());
        let retry_after = header.as_deref().and_then(|h| crate::http::retry_after(h, now));
        let retry_at =
            retry_after.map(|at| instant + Duration::from_secs(u64::try_from(at - now).unwrap_or(0)));
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Answered { status, retry_after_header: header, retry_after, retry_at });
        }
    }
}

/// The ACME error for a client that could not be set up.
fn setup_error(error: SetupError) -> AcmeError {
    match error {
        SetupError::CaBundle { path, reason } => AcmeError::File { key: "ca-bundle", path, reason },
        other => AcmeError::Http(other.to_string()),
    }
}

/// The message of a bounded read's failure.
pub fn read_error(error: crate::facts::read::ReadError) -> String {
    match error {
        crate::facts::read::ReadError::Missing(what) => format!("{what} does not exist"),
        crate::facts::read::ReadError::Unreadable(why) => why,
    }
}

/// An error and its sources, joined with ": " (one helper for every HTTP client here).
pub use crate::http::error_chain as chain_of;

impl HttpClient for ReqwestHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.client.clone();
        let this = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let url = parts.uri.to_string();
            let transport = |reason: String| {
                instant_acme::Error::Other(Box::new(TransportError { url: url.clone(), reason }))
            };
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let mut response = client
                .request(parts.method, url.as_str())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| transport(chain_of(&e)))?;
            this.record(response.status().as_u16(), response.headers());
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(chain_of(&e)))? {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(transport(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes")));
                }
                bytes.extend_from_slice(&chunk);
            }
            let (parts, ()) = answer.body(())?.into_parts();
            Ok(BytesResponse { parts, body: Box::new(Bytes::from(bytes)) })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::errors::ProblemDocument;

    #[test]
    fn ca_bundle_problems_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = ReqwestHttp::with_proxies(Some(&missing), &Proxies::none()).expect_err("missing file");
        assert!(e.to_string().contains("missing.pem") && e.to_string().contains("acme.ca-bundle"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let e = ReqwestHttp::with_proxies(Some(&junk), &Proxies::none()).expect_err("junk");
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        // A port nobody listens on: bind, note the port, close.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let http = ReqwestHttp::with_proxies(None, &Proxies::none()).expect("client");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let request = http::Request::builder()
            .uri(format!("https://127.0.0.1:{port}/dir"))
            .body(BodyWrapper::default())
            .expect("request");
        let result = runtime.block_on(http.request(request));
        let Err(instant_acme::Error::Other(inner)) = result else { panic!("expected a transport error") };
        let transport = inner.downcast::<TransportError>().expect("a TransportError");
        assert!(transport.reason.contains("refused"), "{}", transport.reason);
    }

    /// A loopback HTTP server answering each connection with the next of `answers` (raw).
    fn answering(answers: Vec<String>) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else { return };
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        port
    }

    fn answer(status: &str, retry_after: Option<&str>, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/problem+json\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            retry_after.map(|r| format!("Retry-After: {r}\r\n")).unwrap_or_default(),
            body.len()
        )
    }

    #[test]
    fn the_last_answers_retry_after_is_kept_for_the_step() {
        let port = answering(vec![
            answer("429 Too Many Requests", Some("120"), "{}"),
            answer("503 Service Unavailable", Some("99999999"), "busy"),
            answer("400 Bad Request", Some("60"), "{}"),
            answer("200 OK", None, "{}"),
        ]);
        let http = ReqwestHttp::with_proxies(None, &Proxies::none()).expect("client");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let get = || {
            let request = http::Request::builder()
                .uri(format!("http://127.0.0.1:{port}/new-order"))
                .body(BodyWrapper::default())
                .expect("request");
            runtime.block_on(http.request(request)).expect("an answer");
        };
        let rate_limited = AcmeError::Refused {
            step: "open an order",
            problem: ProblemDocument {
                kind: Some("urn:ietf:params:acme:error:rateLimited".into()),
                ..ProblemDocument::default()
            },
        };
        let other = AcmeError::Protocol { step: "open an order", reason: "no JSON".into() };
        assert_eq!(http.last_answer(), None);

        get();
        let now = super::super::unix_now();
        let last = http.last_answer().expect("answered");
        assert_eq!((last.status, last.retry_after_header.as_deref()), (429, Some("120")));
        let wait = http.ca_asked_to_wait(&other, now).expect("a 429 with Retry-After");
        assert!((now + 118..=now + 121).contains(&wait.until), "{wait:?}");
        assert_eq!(wait.to_string(), "Retry-After: 120 with HTTP 429");
        // Polling takes the hint once.
        assert!(http.take_retry_after().is_some());
        assert_eq!(http.take_retry_after(), None);

        get();
        let wait = http.ca_asked_to_wait(&other, now).expect("a 503 with Retry-After");
        assert_eq!(wait.until, now + MAX_CA_RETRY_AFTER_SECS);
        assert!(wait.capped && wait.to_string().ends_with("held to at most 7 days"), "{wait}");

        // A 400 with Retry-After is only a wait when it is a rateLimited problem.
        get();
        assert_eq!(http.ca_asked_to_wait(&other, now), None);
        assert!(http.ca_asked_to_wait(&rate_limited, now).is_some());

        get();
        assert_eq!(
            http.last_answer().map(|a| (a.status, a.retry_after, a.retry_at)),
            Some((200, None, None))
        );
        assert_eq!(http.ca_asked_to_wait(&rate_limited, now), None);
    }
}
