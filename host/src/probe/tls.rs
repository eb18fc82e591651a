//! The TLS handshake of a probe, with OpenSSL.
//!
//! The probe only looks: it accepts whatever the server offers (any protocol version OpenSSL
//! still speaks, security level 0, no certificate verification during the handshake), so that
//! an old or weak configuration is seen and judged by the policy rather than hidden behind a
//! handshake failure. The served chain is verified afterwards by the shared
//! [`Verifier`](crate::facts::Verifier). SNI is sent for a DNS name, never for an IP address.

use std::io;
use std::net::{IpAddr, TcpStream};
use std::sync::OnceLock;

use openssl::ssl::{ErrorCode, HandshakeError, Ssl, SslContext, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;

use super::errors::{ProbeError, describe_io};
use super::starttls::{Conn, Fail};
use crate::facts::certificate::openssl_reason;

/// The client context, built once: no verification, every version and cipher OpenSSL allows.
fn context() -> Result<&'static SslContext, String> {
    static CONTEXT: OnceLock<Result<SslContext, String>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let mut builder = SslContext::builder(SslMethod::tls_client()).map_err(|e| openssl_reason(&e))?;
            builder.set_verify(SslVerifyMode::NONE);
            // Debian's openssl.cnf asks for TLS 1.2 and security level 2; a probe wants to see
            // even an old server's certificate.
            let _ = builder.set_min_proto_version(Some(SslVersion::TLS1));
            let _ = builder.set_cipher_list("ALL:@SECLEVEL=0");
            builder.set_security_level(0);
            Ok(builder.build())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The certificates a server presented: its leaf and the rest of the chain it sent.
pub struct Presented {
    pub leaf: X509,
    pub chain: Vec<X509>,
}

/// Runs the TLS handshake on `conn`, sending `server_name` as SNI unless it is an IP address.
pub(crate) fn handshake(conn: Conn, server_name: &str) -> Result<Presented, ProbeError> {
    let context = context().map_err(|e| ProbeError::Handshake(format!("cannot set up OpenSSL: {e}")))?;
    let mut ssl = Ssl::new(context).map_err(|e| ProbeError::Handshake(openssl_reason(&e)))?;
    if !server_name.is_empty() && server_name.parse::<IpAddr>().is_err() {
        ssl.set_hostname(server_name).map_err(|e| ProbeError::Handshake(openssl_reason(&e)))?;
    }
    let step = conn.overall();
    let limit = match conn.arm() {
        Ok(limit) => limit,
        Err(Fail::Overall) => return Err(ProbeError::Overall { step: "TLS handshake", limit: step }),
        Err(Fail::Message(m)) => return Err(ProbeError::Handshake(m)),
    };
    let stream: TcpStream = conn.stream;
    let tls = match ssl.connect(stream) {
        Ok(tls) => tls,
        Err(HandshakeError::WouldBlock(_)) => {
            return Err(ProbeError::Handshake(describe_io(
                &io::Error::from(io::ErrorKind::WouldBlock),
                limit,
            )));
        }
        Err(HandshakeError::SetupFailure(e)) => return Err(ProbeError::Handshake(openssl_reason(&e))),
        Err(HandshakeError::Failure(mid)) => {
            let error = mid.error();
            let reason = match (error.code(), error.io_error(), error.ssl_error()) {
                (_, Some(io), _) => describe_io(io, limit),
                (ErrorCode::SYSCALL, None, None) => "the server closed the connection".to_string(),
                (_, None, Some(stack)) => openssl_reason(stack),
                (code, None, None) => format!("OpenSSL error code {code:?}"),
            };
            return Err(ProbeError::Handshake(reason));
        }
    };
    let ssl = tls.ssl();
    let Some(leaf) = ssl.peer_certificate() else {
        return Err(ProbeError::NoCertificate);
    };
    let leaf_der = leaf.to_der().unwrap_or_default();
    let chain = ssl
        .peer_cert_chain()
        .map(|stack| {
            stack
                .iter()
                .filter(|c| c.to_der().map(|d| d != leaf_der).unwrap_or(true))
                .map(|c| c.to_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(Presented { leaf, chain })
}
