//! The hostname's DNS records against the server's main IP address(es): `points-to-main-ip`,
//! `points-elsewhere` or `does-not-resolve` (the seed's "the hostname must resolve in DNS and
//! point to the server's main IP").
//!
//! Lookups go to the system's resolvers (`/etc/resolv.conf`) or to `[network] dns-servers`,
//! with hickory-resolver; `/etc/hosts` is never read, since the CA does not see it (Debian's
//! `127.0.1.1 host.example.com` line would otherwise answer). The main IPs are `main-ips`, or
//! else the addresses of the host's interfaces (not loopback, not link-local).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use super::model::DnsStatus;
use crate::config::network::NetworkConfig;

/// A resolver for the hostname and CAA lookups: `dns-servers` if configured, else the system's.
pub fn resolver(network: &NetworkConfig) -> Result<TokioResolver, String> {
    let mut builder = if network.dns_servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| format!("cannot read /etc/resolv.conf ({e})"))?
    } else {
        let servers = network
            .dns_servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.use_hosts_file = ResolveHosts::Never;
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.timeout = network.timeout;
    options.attempts = 2;
    // The hostname is looked up as written, never with a search domain appended.
    options.ndots = 0;
    builder.build().map_err(|e| format!("cannot set up the resolver ({e})"))
}

/// Whether the error means "no such name" or "no such record" (NXDOMAIN or NODATA).
pub fn is_no_records(error: &NetError) -> bool {
    error.is_no_records_found() || error.is_nx_domain()
}

/// The hostname's A and AAAA records; empty when it has none (NXDOMAIN or no data). An error
/// is a failed lookup (timeout, SERVFAIL, refused...).
pub async fn lookup_addresses(resolver: &TokioResolver, hostname: &str) -> Result<Vec<IpAddr>, String> {
    let absolute = format!("{}.", hostname.trim_end_matches('.'));
    match resolver.lookup_ip(absolute.as_str()).await {
        Ok(answer) => {
            let mut addresses: Vec<IpAddr> = answer.iter().collect();
            addresses.sort();
            addresses.dedup();
            Ok(addresses)
        }
        Err(e) if is_no_records(&e) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// The main IPs to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainIps {
    /// The addresses.
    pub ips: Vec<IpAddr>,
    /// `main-ips` was set (otherwise they were detected).
    pub configured: bool,
    /// Why detection failed, if it did.
    pub problem: Option<String>,
}

/// `main-ips` if configured, else the host's interface addresses.
pub fn main_ips(configured: &[IpAddr]) -> MainIps {
    if !configured.is_empty() {
        return MainIps { ips: configured.to_vec(), configured: true, problem: None };
    }
    match interface_addresses() {
        Ok(ips) => MainIps { ips, configured: false, problem: None },
        Err(e) => MainIps {
            ips: Vec::new(),
            configured: false,
            problem: Some(format!("The host's own addresses could not be read ({e}); set main-ips.")),
        },
    }
}

/// The addresses of the host's interfaces, without loopback, link-local and unspecified ones.
pub fn interface_addresses() -> Result<Vec<IpAddr>, String> {
    let mut ips = Vec::new();
    for interface in nix::ifaddrs::getifaddrs().map_err(|e| e.to_string())? {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if is_candidate(&ip) && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.sort();
    Ok(ips)
}

/// Whether an interface address could be a main IP: not loopback, link-local or unspecified.
fn is_candidate(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified() || is_v6_link_local(v6)),
    }
}

fn is_v6_link_local(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// Whether the address is reachable from the internet: not private (RFC 1918), shared
/// (RFC 6598), loopback, link-local, unique-local (RFC 4193) or documentation.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation()
                || shared
                || *v4 == Ipv4Addr::BROADCAST)
        }
        IpAddr::V6(v6) => {
            let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00;
            let documentation = v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8;
            !(v6.is_loopback()
                || v6.is_unspecified()
                || is_v6_link_local(v6)
                || unique_local
                || documentation)
        }
    }
}

/// The verdict on the hostname's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The fact.
    pub status: DnsStatus,
    /// A warning for the admin, if the verdict needs one.
    pub note: Option<String>,
}

/// Compares the hostname's addresses with the main IPs. Every address must be a main IP for
/// `points-to-main-ip`. When the main IPs were detected and are all private while the hostname
/// points to a public address, the server may be behind NAT: that is `not-checked` with a note
/// asking for `main-ips`, rather than a false `points-elsewhere` that would stop every order.
pub fn classify(addresses: &[IpAddr], main: &MainIps) -> Verdict {
    if addresses.is_empty() {
        return Verdict { status: DnsStatus::DoesNotResolve, note: None };
    }
    if addresses.iter().all(|a| main.ips.contains(a)) {
        return Verdict { status: DnsStatus::PointsToMainIp, note: None };
    }
    let behind_nat = !main.configured
        && !main.ips.iter().any(is_public)
        && addresses.iter().filter(|a| !main.ips.contains(a)).all(is_public);
    if behind_nat {
        return Verdict {
            status: DnsStatus::NotChecked,
            note: Some(format!(
                "The hostname resolves to {}, which is not an address of this host's interfaces ({}); \
                 the host may be behind NAT. Set main-ips to the public address(es) so the check can be made.",
                join(addresses),
                if main.ips.is_empty() { "none found".to_owned() } else { join(&main.ips) }
            )),
        };
    }
    Verdict { status: DnsStatus::PointsElsewhere, note: None }
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn configured(ips: &[&str]) -> MainIps {
        MainIps { ips: ips.iter().map(|s| ip(s)).collect(), configured: true, problem: None }
    }

    #[test]
    fn classification() {
        let main = configured(&["203.0.113.10", "2001:db8::10"]);
        assert_eq!(classify(&[], &main).status, DnsStatus::DoesNotResolve);
        assert_eq!(classify(&[ip("203.0.113.10")], &main).status, DnsStatus::PointsToMainIp);
        assert_eq!(
            classify(&[ip("203.0.113.10"), ip("2001:db8::10")], &main).status,
            DnsStatus::PointsToMainIp
        );
        // One record elsewhere is enough for points-elsewhere (the CA may pick that one).
        assert_eq!(
            classify(&[ip("203.0.113.10"), ip("198.51.100.1")], &main).status,
            DnsStatus::PointsElsewhere
        );
        assert_eq!(classify(&[ip("8.8.8.8")], &main).status, DnsStatus::PointsElsewhere);
    }

    #[test]
    fn detected_private_addresses_and_a_public_answer_may_be_nat() {
        let detected = MainIps { ips: vec![ip("10.0.0.5")], configured: false, problem: None };
        let verdict = classify(&[ip("8.8.8.8")], &detected);
        assert_eq!(verdict.status, DnsStatus::NotChecked);
        assert!(verdict.note.expect("note").contains("main-ips"));
        // Configured main IPs are taken at their word.
        let configured = MainIps { configured: true, ..detected.clone() };
        assert_eq!(classify(&[ip("8.8.8.8")], &configured).status, DnsStatus::PointsElsewhere);
        // A private answer that is not ours is elsewhere.
        assert_eq!(classify(&[ip("10.0.0.9")], &detected).status, DnsStatus::PointsElsewhere);
    }

    #[test]
    fn public_addresses() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.2.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(&ip(private)), "{private}");
        }
        for public in ["8.8.8.8", "100.128.0.1", "2a00:1450::1"] {
            assert!(is_public(&ip(public)), "{public}");
        }
    }

    #[test]
    fn interface_addresses_skip_loopback() {
        let ips = interface_addresses().expect("getifaddrs works");
        assert!(ips.iter().all(is_candidate), "{ips:?}");
        assert!(!ips.contains(&ip("127.0.0.1")) && !ips.contains(&ip("::1")));
        let main = main_ips(&[]);
        assert!(!main.configured);
        assert_eq!(main.ips, ips);
        let main = main_ips(&[ip("192.0.2.1")]);
        assert!(main.configured);
        assert_eq!(main.ips, [ip("192.0.2.1")]);
    }
}
