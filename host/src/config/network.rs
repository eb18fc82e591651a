//! `[network]`: the facts gathered from outside the host — revocation (OCSP and CRL), the
//! hostname's DNS records, CAA and ACME Renewal Information (ARI) — and how to reach them.
//!
//! Every check is on by default; each can be switched off for a server without outbound access.
//! `dns-servers` replaces the system resolver (`/etc/resolv.conf`) for the DNS and CAA lookups,
//! for tests and unusual setups. `crl-files` and `crl-dir` name CRLs kept on this host (an
//! air-gapped host): they are read on every run, whatever the other keys say.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::names::is_dns_name;

/// The default `timeout-seconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `timeout-seconds`.
const MAX_TIMEOUT_SECONDS: i64 = 120;

/// `[network]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawNetwork {
    pub revocation: Option<bool>,
    pub dns: Option<bool>,
    pub ari: Option<bool>,
    pub timeout_seconds: Option<Spanned<i64>>,
    pub dns_servers: Option<Vec<Spanned<String>>>,
    pub caa_identities: Option<Vec<Spanned<String>>>,
    pub crl_files: Option<Vec<Spanned<String>>>,
    pub crl_dir: Option<Spanned<String>>,
}

/// `[network]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `revocation`: ask the CA (OCSP, else the CRL) whether certificates are revoked.
    pub revocation: bool,
    /// `dns`: resolve the hostname (A/AAAA, compared with the main IPs) and its CAA records.
    pub dns: bool,
    /// `ari`: fetch the ACME CA's suggested renewal windows (RFC 9773).
    pub ari: bool,
    /// `timeout-seconds`: the limit for one request (an OCSP query, a CRL or ARI download, a
    /// DNS lookup), 1..=120 s.
    pub timeout: Duration,
    /// `dns-servers`: resolvers to ask instead of the system's; empty = `/etc/resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
    /// `caa-identities`: the CA's CAA issuer domain names (e.g. "letsencrypt.org"), used when
    /// the ACME directory does not list `meta.caaIdentities`. Lowercase.
    pub caa_identities: Vec<String>,
    /// `crl-files`: CRL files on this host (PEM or DER, absolute paths), checked like fetched
    /// CRLs for the certificates of the CA that signed them, even with every network check off.
    pub crl_files: Vec<PathBuf>,
    /// `crl-dir`: a directory whose `*.crl`, `*.pem` and `*.der` files are such CRLs.
    pub crl_dir: Option<PathBuf>,
}

impl NetworkConfig {
    /// Whether CRL files on this host are configured (`crl-files` or `crl-dir`).
    pub fn has_local_crls(&self) -> bool {
        !self.crl_files.is_empty() || self.crl_dir.is_some()
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            revocation: true,
            dns: true,
            ari: true,
            timeout: DEFAULT_TIMEOUT,
            dns_servers: Vec::new(),
            caa_identities: Vec::new(),
            crl_files: Vec::new(),
            crl_dir: None,
        }
    }
}

/// Checks `[network]`; `error(span, key, message)` records a problem.
pub(super) fn resolve(
    raw: &RawNetwork,
    error: &mut dyn FnMut(Range<usize>, &'static str, String),
) -> NetworkConfig {
    let mut network = NetworkConfig::default();
    if let Some(v) = raw.revocation {
        network.revocation = v;
    }
    if let Some(v) = raw.dns {
        network.dns = v;
    }
    if let Some(v) = raw.ari {
        network.ari = v;
    }
    if let Some(t) = &raw.timeout_seconds {
        match u64::try_from(*t.get_ref()) {
            Ok(secs) if (1..=MAX_TIMEOUT_SECONDS).contains(t.get_ref()) => {
                network.timeout = Duration::from_secs(secs)
            }
            _ => error(
                t.span(),
                "network.timeout-seconds",
                format!("{} is out of range: 1 to {MAX_TIMEOUT_SECONDS} seconds", t.get_ref()),
            ),
        }
    }
    for server in raw.dns_servers.iter().flatten() {
        match parse_server(server.get_ref()) {
            Some(addr) => network.dns_servers.push(addr),
            None => error(
                server.span(),
                "network.dns-servers",
                format!(
                    "{:?} is not an address with an optional port, such as \"192.0.2.53\", \
                     \"192.0.2.53:5353\" or \"[2001:db8::53]:53\"",
                    server.get_ref()
                ),
            ),
        }
    }
    for identity in raw.caa_identities.iter().flatten() {
        let name = identity.get_ref().trim().to_ascii_lowercase();
        if is_dns_name(&name) {
            network.caa_identities.push(name);
        } else {
            error(
                identity.span(),
                "network.caa-identities",
                format!(
                    "{:?} is not a domain name; write the CA's CAA issuer domain, e.g. \"letsencrypt.org\"",
                    identity.get_ref()
                ),
            );
        }
    }
    for file in raw.crl_files.iter().flatten() {
        match super::resolve::check_absolute(file.get_ref()) {
            Ok(path) => network.crl_files.push(path),
            Err(message) => error(file.span(), "network.crl-files", message),
        }
    }
    if let Some(dir) = &raw.crl_dir {
        match super::resolve::check_absolute(dir.get_ref()) {
            Ok(path) => network.crl_dir = Some(path),
            Err(message) => error(dir.span(), "network.crl-dir", message),
        }
    }
    network
}

/// "ip", "ip:port" or "[ipv6]:port"; port 53 when none is given.
fn parse_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(addr);
    }
    text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, from_str};

    fn load(text: &str) -> Result<crate::config::Config, ConfigError> {
        from_str(&format!("hostname = \"host.example.com\"\n{text}"), Path::new("/etc/c.toml"))
    }

    #[test]
    fn defaults_when_absent() {
        let config = load("").expect("valid");
        assert_eq!(config.network, NetworkConfig::default());
        assert!(config.network.revocation && config.network.dns && config.network.ari);
        assert_eq!(config.network.timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_key() {
        let config = load(
            "[network]\nrevocation = false\ndns = false\nari = false\ntimeout-seconds = 3\n\
             dns-servers = [\"127.0.0.1:5353\", \"192.0.2.1\", \"[::1]:53\"]\n\
             caa-identities = [\"LetsEncrypt.org\", \"pki.goog\"]\n",
        )
        .expect("valid");
        let n = &config.network;
        assert!(!n.revocation && !n.dns && !n.ari);
        assert_eq!(n.timeout, Duration::from_secs(3));
        let servers: Vec<String> = n.dns_servers.iter().map(ToString::to_string).collect();
        assert_eq!(servers, ["127.0.0.1:5353", "192.0.2.1:53", "[::1]:53"]);
        assert_eq!(n.caa_identities, ["letsencrypt.org", "pki.goog"]);
        assert!(!n.has_local_crls());
    }

    #[test]
    fn crl_files_and_dir() {
        let config = load(
            "[network]\nrevocation = false\ncrl-files = [\"/etc/pki/a.crl\", \"/etc/pki/b.pem\"]\n\
             crl-dir = \"/etc/pki/crls\"\n",
        )
        .expect("valid");
        let n = &config.network;
        assert_eq!(n.crl_files, [Path::new("/etc/pki/a.crl"), Path::new("/etc/pki/b.pem")]);
        assert_eq!(n.crl_dir.as_deref(), Some(Path::new("/etc/pki/crls")));
        assert!(n.has_local_crls());
        let text =
            load("[network]\ncrl-files = [\"a.crl\"]\ncrl-dir = \"\"\n").expect_err("relative").to_string();
        assert!(
            text.contains(":3:") && text.contains("network.crl-files") && text.contains("\"a.crl\""),
            "{text}"
        );
        assert!(text.contains(":4:") && text.contains("network.crl-dir") && text.contains("empty"), "{text}");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let error = load(
            "[network]\ntimeout-seconds = 0\ndns-servers = [\"dns.example:53\", \"127.0.0.1:0\"]\n\
             caa-identities = [\"not a name\"]\n",
        )
        .expect_err("invalid");
        let text = error.to_string();
        assert!(text.contains("network.timeout-seconds") && text.contains(":3:"), "{text}");
        assert!(text.contains("network.dns-servers") && text.contains("dns.example:53"), "{text}");
        assert!(text.contains("127.0.0.1:0"), "{text}");
        assert!(text.contains("network.caa-identities") && text.contains(":5:"), "{text}");
        let ConfigError::Invalid { problems, .. } = error else { panic!("{text}") };
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let text = load("[network]\ntimeout = 3\n").expect_err("unknown key").to_string();
        assert!(text.contains("timeout"), "{text}");
    }
}
