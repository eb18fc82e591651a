//! What can go wrong probing one endpoint: one variant per step, each message short enough to
//! follow the endpoint's address in a report line ("127.0.0.1:25 could not be checked (…)").

use std::io;
use std::time::Duration;

use crate::time::duration as fmt_duration;

/// A probe failed at one step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The host name did not resolve to any address.
    #[error("cannot resolve the address: {0}")]
    Resolve(String),
    /// No TCP connection could be made.
    #[error("connect: {0}")]
    Connect(String),
    /// The server's greeting was missing, cut short or negative.
    #[error("banner: {0}")]
    Banner(String),
    /// A command before the upgrade (e.g. `EHLO`) was answered with an error.
    #[error("{command}: {reason}")]
    Dialogue { command: &'static str, reason: String },
    /// The server would not upgrade the connection to TLS (STARTTLS, STLS, AUTH TLS).
    #[error("STARTTLS refused: {0}")]
    StartTlsRefused(String),
    /// The TLS handshake failed.
    #[error("TLS handshake: {0}")]
    Handshake(String),
    /// The handshake completed without a server certificate (an anonymous cipher suite).
    #[error("TLS handshake: the server sent no certificate")]
    NoCertificate,
    /// The whole probe took longer than its overall limit.
    #[error("{step}: gave up after {} in all", fmt_duration(*limit))]
    Overall { step: &'static str, limit: Duration },
}

/// A short text for an I/O error during `step` of a probe with per-step `timeout`.
pub(crate) fn describe_io(error: &io::Error, timeout: Duration) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {}", fmt_duration(timeout))
        }
        io::ErrorKind::ConnectionRefused => "connection refused (is the service running?)".into(),
        io::ErrorKind::ConnectionReset => "the server reset the connection".into(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => "the server closed the connection".into(),
        _ => {
            let text = error.to_string();
            // "Network is unreachable (os error 101)" reads well enough without the number.
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_step() {
        assert_eq!(
            ProbeError::Connect(describe_io(
                &io::Error::from(io::ErrorKind::ConnectionRefused),
                Duration::from_secs(5)
            ))
            .to_string(),
            "connect: connection refused (is the service running?)"
        );
        assert_eq!(
            ProbeError::Banner(describe_io(
                &io::Error::from(io::ErrorKind::WouldBlock),
                Duration::from_secs(5)
            ))
            .to_string(),
            "banner: no answer within 5s"
        );
        assert_eq!(
            ProbeError::StartTlsRefused("the server answered \"454 4.7.0 TLS not available\"".into())
                .to_string(),
            "STARTTLS refused: the server answered \"454 4.7.0 TLS not available\""
        );
        assert_eq!(
            ProbeError::Overall { step: "TLS handshake", limit: Duration::from_secs(15) }.to_string(),
            "TLS handshake: gave up after 15s in all"
        );
    }
}
