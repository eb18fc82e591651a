//! The HTTP side of the ACME client: `instant_acme`'s [`HttpClient`] over `reqwest`, whose TLS
//! is OpenSSL (native-tls) — the one TLS stack of this program. An extra CA bundle can be
//! trusted for private ACME servers (Pebble, an internal step-ca...). No proxy is used, every
//! request has a connect and a total timeout, and answers are read up to [`MAX_RESPONSE_BYTES`].

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use super::errors::{AcmeError, TransportError};
use crate::facts::read_bounded;

/// The largest answer accepted from the CA (a certificate chain is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How long to wait for a TCP + TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take in all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An [`HttpClient`] on `reqwest`.
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// A client that trusts the system roots plus, if given, every certificate in `ca_bundle`.
    pub fn new(ca_bundle: Option<&Path>) -> Result<ReqwestHttp, AcmeError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("checkallsslcerts/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_bundle {
            let file = |reason: String| AcmeError::File { key: "ca-bundle", path: path.to_owned(), reason };
            let pem = read_bounded(path, MAX_RESPONSE_BYTES as u64).map_err(|e| file(read_error(e)))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| file(format!("not a PEM certificate bundle: {}", chain_of(&e))))?;
            if certs.is_empty() {
                return Err(file("holds no PEM certificate".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| AcmeError::Protocol { step: "set up HTTPS", reason: chain_of(&e) })?;
        Ok(ReqwestHttp { client })
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
pub use crate::facts::network::error_chain as chain_of;

impl HttpClient for ReqwestHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.client.clone();
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

    #[test]
    fn ca_bundle_problems_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let e = ReqwestHttp::new(Some(&missing)).expect_err("missing file");
        assert!(e.to_string().contains("missing.pem") && e.to_string().contains("acme.ca-bundle"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let e = ReqwestHttp::new(Some(&junk)).expect_err("junk");
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        // A port nobody listens on: bind, note the port, close.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let http = ReqwestHttp::new(None).expect("client");
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
}
