//! Live endpoint probes: the `[probe]` section and each service's `probe = [...]` list.
//!
//! ```toml
//! [probe]
//! enabled = true   # probe the endpoints at all (facts and after-install verification)
//! timeout = 5      # seconds for each step of one probe (connect, each reply, the handshake)
//! wait = 10        # seconds an install waits for the new certificate to be served
//!
//! [[service]]
//! probe = [
//!     { address = "127.0.0.1:443", protocol = "https" },
//!     { address = "127.0.0.1:25", protocol = "smtp", server-name = "mail.example.com" },
//! ]
//! ```
//!
//! The raw structs are fields of the raw file (`raw.rs`); [`resolve_settings`] and
//! [`resolve_endpoints`] check them and report problems like every other configuration problem,
//! with the file, line:column, service and key.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::errors::{Problem, line_col};
use super::names::is_dns_name;

/// The default `[probe] timeout`.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default `[probe] wait`.
pub const DEFAULT_PROBE_WAIT: Duration = Duration::from_secs(10);
/// The longest `[probe] timeout`, in seconds.
const MAX_PROBE_TIMEOUT: i64 = 60;
/// The longest `[probe] wait`, in seconds.
const MAX_PROBE_WAIT: i64 = 600;
/// The most endpoints one service may list.
const MAX_ENDPOINTS: usize = 32;

/// How a client reaches TLS on an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TLS from the first byte (HTTPS, 443).
    Https,
    /// TLS from the first byte, any protocol inside.
    Tls,
    /// IMAP over TLS from the first byte (993).
    Imaps,
    /// POP3 over TLS from the first byte (995).
    Pop3s,
    /// SMTP over TLS from the first byte ("submissions", 465).
    Smtps,
    /// FTP over TLS from the first byte ("implicit FTPS", 990).
    Ftps,
    /// SMTP upgraded with `STARTTLS` after `EHLO` (25, 587).
    Smtp,
    /// IMAP upgraded with `STARTTLS` (143).
    Imap,
    /// POP3 upgraded with `STLS` (110).
    Pop3,
    /// FTP upgraded with `AUTH TLS` (21).
    Ftp,
}

impl Protocol {
    /// Every protocol, in documentation order.
    pub const ALL: [Protocol; 10] = [
        Protocol::Https,
        Protocol::Tls,
        Protocol::Imaps,
        Protocol::Pop3s,
        Protocol::Smtps,
        Protocol::Ftps,
        Protocol::Smtp,
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Ftp,
    ];

    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Https => "https",
            Protocol::Tls => "tls",
            Protocol::Imaps => "imaps",
            Protocol::Pop3s => "pop3s",
            Protocol::Smtps => "smtps",
            Protocol::Ftps => "ftps",
            Protocol::Smtp => "smtp",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Ftp => "ftp",
        }
    }

    /// Whether the connection starts in plain text and is upgraded (STARTTLS, STLS, AUTH TLS).
    pub fn is_starttls(self) -> bool {
        matches!(self, Protocol::Smtp | Protocol::Imap | Protocol::Pop3 | Protocol::Ftp)
    }

    /// The protocol's well-known port (`tls` has none).
    pub fn default_port(self) -> Option<u16> {
        Some(match self {
            Protocol::Https => 443,
            Protocol::Tls => return None,
            Protocol::Imaps => 993,
            Protocol::Pop3s => 995,
            Protocol::Smtps => 465,
            Protocol::Ftps => 990,
            Protocol::Smtp => 25,
            Protocol::Imap => 143,
            Protocol::Pop3 => 110,
            Protocol::Ftp => 21,
        })
    }

    /// The protocol usually spoken on a well-known `port` (587 is SMTP submission).
    pub fn for_port(port: u16) -> Option<Protocol> {
        if port == 587 {
            return Some(Protocol::Smtp);
        }
        Protocol::ALL.into_iter().find(|p| p.default_port() == Some(port))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeEndpoint {
    /// An IP address or a DNS name (without brackets).
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The name sent as SNI (and, for SMTP, nothing else); `None` = the configured hostname.
    pub server_name: Option<String>,
}

impl ProbeEndpoint {
    /// An endpoint with the default server name.
    pub fn new(host: &str, port: u16, protocol: Protocol) -> ProbeEndpoint {
        ProbeEndpoint { host: host.to_owned(), port, protocol, server_name: None }
    }

    /// `host:port`, with an IPv6 address in brackets: the `endpoint` of the served facts.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ProbeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address(), self.protocol)
    }
}

/// `[probe]`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// `enabled`: probe the configured endpoints (default true).
    pub enabled: bool,
    /// `timeout`: the limit for each step of one probe, 1..=60 s (default 5 s).
    pub timeout: Duration,
    /// `wait`: how long an install waits for the new certificate to be served, 0..=600 s
    /// (default 10 s; 0 = probe once).
    pub wait: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { enabled: true, timeout: DEFAULT_PROBE_TIMEOUT, wait: DEFAULT_PROBE_WAIT }
    }
}

/// `[probe]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawProbeSettings {
    pub enabled: Option<bool>,
    pub timeout: Option<Spanned<i64>>,
    pub wait: Option<Spanned<i64>>,
}

/// One `probe = [{ ... }]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawEndpoint {
    pub address: Option<Spanned<String>>,
    pub protocol: Option<Spanned<Protocol>>,
    pub server_name: Option<Spanned<String>>,
}

/// A service's `probe` value as written.
pub(super) type RawEndpoints = Spanned<Vec<Spanned<RawEndpoint>>>;

struct Sink<'a> {
    text: &'a str,
    path: &'a Path,
    service: Option<&'a str>,
    errors: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn error(&mut self, span: Range<usize>, key: &str, message: String) {
        self.errors.push(Problem {
            path: self.path.to_owned(),
            location: Some(line_col(self.text, span.start)),
            service: self.service.map(str::to_owned),
            key: key.to_owned(),
            message,
        });
    }
}

/// Checks `[probe]` and fills in the defaults.
pub(super) fn resolve_settings(
    raw: &RawProbeSettings,
    text: &str,
    path: &Path,
    errors: &mut Vec<Problem>,
) -> ProbeConfig {
    let mut sink = Sink { text, path, service: None, errors };
    let mut config = ProbeConfig::default();
    if let Some(enabled) = raw.enabled {
        config.enabled = enabled;
    }
    if let Some(t) = &raw.timeout {
        match u64::try_from(*t.get_ref()) {
            Ok(secs) if (1..=MAX_PROBE_TIMEOUT).contains(t.get_ref()) => {
                config.timeout = Duration::from_secs(secs)
            }
            _ => sink.error(
                t.span(),
                "probe.timeout",
                format!("{} is out of range: 1 to {MAX_PROBE_TIMEOUT} seconds", t.get_ref()),
            ),
        }
    }
    if let Some(w) = &raw.wait {
        match u64::try_from(*w.get_ref()) {
            Ok(secs) if *w.get_ref() <= MAX_PROBE_WAIT => config.wait = Duration::from_secs(secs),
            _ => sink.error(
                w.span(),
                "probe.wait",
                format!(
                    "{} is out of range: 0 to {MAX_PROBE_WAIT} seconds (0 = probe once, without waiting)",
                    w.get_ref()
                ),
            ),
        }
    }
    config
}

/// Checks one service's `probe` list. Problems name the service `label`.
pub(super) fn resolve_endpoints(
    raw: Option<&RawEndpoints>,
    label: &str,
    text: &str,
    path: &Path,
    errors: &mut Vec<Problem>,
) -> Vec<ProbeEndpoint> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let mut sink = Sink { text, path, service: Some(label), errors };
    if raw.get_ref().len() > MAX_ENDPOINTS {
        sink.error(
            raw.span(),
            "probe",
            format!("{} endpoints; at most {MAX_ENDPOINTS} are allowed", raw.get_ref().len()),
        );
        return Vec::new();
    }
    let mut endpoints: Vec<ProbeEndpoint> = Vec::new();
    for entry in raw.get_ref() {
        let Some(endpoint) = endpoint(&mut sink, entry) else {
            continue;
        };
        if endpoints.iter().any(|e| e.host == endpoint.host && e.port == endpoint.port) {
            sink.error(entry.span(), "probe", format!("{} is listed twice", endpoint.address()));
            continue;
        }
        endpoints.push(endpoint);
    }
    endpoints
}

fn endpoint(sink: &mut Sink<'_>, entry: &Spanned<RawEndpoint>) -> Option<ProbeEndpoint> {
    let raw = entry.get_ref();
    let Some(address) = &raw.address else {
        sink.error(
            entry.span(),
            "probe.address",
            "every probe needs an address such as \"127.0.0.1:443\"".into(),
        );
        return None;
    };
    let protocol = raw.protocol.as_ref().map(|p| *p.get_ref());
    let (host, port) = match split_address(address.get_ref()) {
        Ok(parts) => parts,
        Err(message) => {
            sink.error(address.span(), "probe.address", message);
            return None;
        }
    };
    let (port, protocol) = match (port, protocol) {
        (Some(port), Some(protocol)) => (port, protocol),
        (None, Some(protocol)) => match protocol.default_port() {
            Some(port) => (port, protocol),
            None => {
                sink.error(
                    address.span(),
                    "probe.address",
                    format!("{:?} needs a port: protocol \"tls\" has no default port", address.get_ref()),
                );
                return None;
            }
        },
        (Some(port), None) => match Protocol::for_port(port) {
            Some(protocol) => (port, protocol),
            None => {
                sink.error(
                    entry.span(),
                    "probe.protocol",
                    format!("port {port} has no usual protocol: say which, one of {}", protocol_names()),
                );
                return None;
            }
        },
        (None, None) => {
            sink.error(
                entry.span(),
                "probe.protocol",
                format!("give a port in the address or a protocol (one of {})", protocol_names()),
            );
            return None;
        }
    };
    let server_name = match &raw.server_name {
        None => None,
        Some(n) if is_dns_name(n.get_ref()) && n.get_ref().parse::<IpAddr>().is_err() => {
            Some(n.get_ref().trim_end_matches('.').to_owned())
        }
        Some(n) => {
            sink.error(
                n.span(),
                "probe.server-name",
                format!("{:?} is not a DNS name (it is sent as SNI)", n.get_ref()),
            );
            return None;
        }
    };
    Some(ProbeEndpoint { host, port, protocol, server_name })
}

fn protocol_names() -> String {
    Protocol::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// `host[:port]`, `[v6][:port]` → host (no brackets) and the port if given.
pub fn split_address(text: &str) -> Result<(String, Option<u16>), String> {
    let bad = |why: &str| {
        Err(format!(
            "{text:?} is not a valid endpoint address: {why} (e.g. \"127.0.0.1:443\", \"[::1]:993\", \"mail.example.com:25\")"
        ))
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return bad("it is empty");
    }
    let (host, port) = if let Some(rest) = text_trimmed.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return bad("a '[' without ']'");
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("only an IPv6 address goes in brackets");
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad("unexpected text after ']'"),
            },
        }
    } else if text_trimmed.matches(':').count() > 1 {
        if text_trimmed.parse::<std::net::Ipv6Addr>().is_ok() {
            return bad("write an IPv6 address in brackets, with the port after them");
        }
        return bad("too many ':'");
    } else {
        match text_trimmed.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text_trimmed, None),
        }
    };
    if host.parse::<IpAddr>().is_err() && !is_dns_name(host) {
        return bad("the host is neither an IP address nor a DNS name");
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return bad("the port must be a number from 1 to 65535"),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_address("127.0.0.1:443").unwrap(), ("127.0.0.1".into(), Some(443)));
        assert_eq!(split_address("[::1]:993").unwrap(), ("::1".into(), Some(993)));
        assert_eq!(split_address("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(split_address("mail.example.com").unwrap(), ("mail.example.com".into(), None));
        for bad in ["", "::1", "[::1", "[::1]x", "a:b:c", "1.2.3.4:0", "1.2.3.4:70000", "bad host:1", "[x]:1"]
        {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocols_know_their_ports() {
        assert_eq!(Protocol::for_port(587), Some(Protocol::Smtp));
        assert_eq!(Protocol::for_port(993), Some(Protocol::Imaps));
        assert_eq!(Protocol::for_port(8443), None);
        assert!(Protocol::Ftp.is_starttls() && !Protocol::Ftps.is_starttls());
        assert_eq!(ProbeEndpoint::new("::1", 993, Protocol::Imaps).address(), "[::1]:993");
    }
}
