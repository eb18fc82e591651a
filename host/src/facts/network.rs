//! Facts from outside the host: revocation ([`revocation`](super::revocation)), the hostname's
//! DNS records against the main IPs ([`dns`](super::dns)), CAA ([`caa`](super::caa)) and the
//! ACME CA's renewal information ([`ari`](super::ari)).
//!
//! [`enrich`] runs after [`gather_with`](super::gather_with) and fills in what that left
//! `NotChecked`. Every lookup runs concurrently on one current-thread tokio runtime, each with
//! the `[network] timeout-seconds` limit; nothing here fails the run: a lookup that fails leaves
//! its fact `NotChecked` (or `Unknown` for revocation) and a warning says why. A dry run does the
//! same lookups but writes nothing (no CRL or ARI cache).
//!
//! The CRLs kept on this host (`[network] crl-files`, `crl-dir`: [`local_crl`](super::local_crl))
//! are read on every run, even with every network check off: they need no network.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509StoreContext};
use rayon::prelude::*;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::ari::AriClient;
use super::caa::{self, Relevant};
use super::certificate::{certificates_from_blocks, chain_from_blocks};
use super::dns;
use super::local_crl::{self, LocalAnswer, LocalCrls};
use super::model::{CaaStatus, CertificateState, DnsStatus, HostFacts, Revocation, Timestamp};
use super::pem;
use super::read::{MAX_PEM_FILE_SIZE, ReadError, read_bounded};
use super::revocation::{Checker, Subject, is_issuer_of};
use crate::config::network::NetworkConfig;
use crate::config::{Config, ServiceConfig, TrustConfig};
use crate::http::{ClientBuilderExt, Proxies, SetupError};

/// The largest ACME directory accepted, in bytes.
pub const MAX_DIRECTORY_BYTES: usize = 64 * 1024;
/// The environment variable that switches every network fact off when set to `off` (an
/// air-gapped host, or a test suite that must not leave loopback), whatever `[network]` says.
pub const NETWORK_FACTS_ENV: &str = "CHECKALLSSLCERTS_NETWORK_FACTS";

/// How many OCSP/CRL/ARI requests run at the same time.
const MAX_CONCURRENT_REQUESTS: usize = 16;

/// What [`enrich`] found besides the facts: host-wide details for the report, and warnings.
#[derive(Debug, Clone, Default)]
pub struct Enriched {
    /// Warnings for the admin (a lookup that failed, a cache that could not be written...).
    pub notices: Vec<String>,
    /// The host-wide network facts with their details, for the report.
    pub report: NetworkReport,
}

/// The host-wide network facts and what they were based on (the report's `network`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NetworkReport {
    /// Whether the hostname is a fully qualified domain name.
    pub hostname_is_fqdn: bool,
    /// The `hostname-dns` fact.
    pub hostname_dns: DnsStatus,
    /// The hostname's A/AAAA records, as resolved.
    pub addresses: Vec<String>,
    /// The main IPs they were compared with.
    pub main_ips: Vec<String>,
    /// Where the main IPs came from: "configured" (`main-ips`) or "detected" (the interfaces).
    pub main_ips_source: String,
    /// The `caa` fact.
    pub caa: CaaStatus,
    /// The name whose CAA records decided (RFC 8659 tree climbing), if any had records.
    pub caa_domain: Option<String>,
    /// Those records, as `flags tag "value"`.
    pub caa_records: Vec<String>,
    /// The CA's CAA identities compared with: the ACME directory's `meta.caaIdentities`, else
    /// `[network] caa-identities`.
    pub ca_identities: Vec<String>,
    /// The checks that were not made, and why.
    pub skipped: Vec<String>,
}

impl NetworkReport {
    /// Lines for the verbose text report.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut dns = format!("hostname DNS: {}", word(&self.hostname_dns));
        if !self.addresses.is_empty() || self.hostname_dns != DnsStatus::NotChecked {
            dns.push_str(&format!(
                " (resolves to: {}; main IPs, {}: {})",
                list_or_none(&self.addresses),
                if self.main_ips_source.is_empty() { "unknown" } else { &self.main_ips_source },
                list_or_none(&self.main_ips)
            ));
        }
        if !self.hostname_is_fqdn {
            dns.push_str("; the hostname is not a fully qualified domain name");
        }
        lines.push(dns);
        let mut caa = format!("CAA: {}", word(&self.caa));
        if let CaaStatus::Forbids(allowed) = &self.caa {
            caa = format!("CAA: forbids (allowed: {allowed})");
        }
        match &self.caa_domain {
            Some(domain) => caa.push_str(&format!(" (records at {domain}: {})", self.caa_records.join(", "))),
            None if self.caa != CaaStatus::NotChecked => {
                caa.push_str(" (no CAA records up to the top-level domain)")
            }
            None => {}
        }
        if !self.ca_identities.is_empty() {
            caa.push_str(&format!("; the CA's identities: {}", self.ca_identities.join(", ")));
        }
        lines.push(caa);
        for skipped in &self.skipped {
            lines.push(format!("not checked: {skipped}"));
        }
        lines
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// A value's JSON word: the kebab-case name of a variant, with or without payload.
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// The HTTP client for OCSP, CRLs, the ACME directory and ARI: OpenSSL (native-tls), a
/// timeout per request, at most three redirects, no idle connections kept, answers read up to a
/// limit; the user agent, the extra CA bundle and the proxy (from the environment, never for
/// loopback) as [`crate::http`] sets them for every client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// An HTTP answer, its body read in full (within the limit).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Http {
    /// A client with `timeout` per request that also trusts the PEM roots in `ca_bundle`, with
    /// the proxies of the environment.
    pub fn new(timeout: Duration, ca_bundle: Option<&Path>) -> Result<Http, SetupError> {
        Http::with_proxies(timeout, ca_bundle, &Proxies::from_env()?)
    }

    /// [`Http::new`] with explicit proxies.
    pub fn with_proxies(
        timeout: Duration,
        ca_bundle: Option<&Path>,
        proxies: &Proxies,
    ) -> Result<Http, SetupError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            // No idle keep-alive connections: a single-threaded responder (`openssl ocsp`) would
            // otherwise wait on an idle connection while the next request queues behind it.
            .pool_max_idle_per_host(0)
            .shared_settings(ca_bundle, proxies)?
            .build()
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        Ok(Http { client })
    }

    /// GETs `url`, reading at most `max` bytes of body.
    pub async fn get(&self, url: &str, max: usize) -> Result<HttpAnswer, String> {
        Self::read(self.client.get(url).send().await, max).await
    }

    /// POSTs `body` to `url`, reading at most `max` bytes of answer.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        max: usize,
    ) -> Result<HttpAnswer, String> {
        let request = self.client.post(url).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        Self::read(request.send().await, max).await
    }

    async fn read(response: reqwest::Result<reqwest::Response>, max: usize) -> Result<HttpAnswer, String> {
        let mut response = response.map_err(|e| error_chain(&e))?;
        if response.content_length().is_some_and(|len| len > max as u64) {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > max {
                return Err(format!("the answer is larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer { status, retry_after, body })
    }
}

/// An error and its sources joined with ": " (reqwest's own message alone says little).
pub use crate::http::error_chain;

/// What the ACME directory says that matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// `renewalInfo` (RFC 9773), if the CA offers ARI.
    pub renewal_info: Option<String>,
    /// `meta.caaIdentities` (RFC 8555 §7.1.1), lowercase.
    pub caa_identities: Vec<String>,
}

/// Parses an ACME directory.
pub fn parse_directory(body: &[u8]) -> Result<Directory, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the directory is not JSON ({e})"))?;
    let object = value.as_object().ok_or("the directory is not a JSON object")?;
    let renewal_info = object.get("renewalInfo").and_then(|v| v.as_str()).map(str::to_owned);
    let caa_identities = object
        .get("meta")
        .and_then(|m| m.get("caaIdentities"))
        .and_then(|c| c.as_array())
        .map(|ids| ids.iter().filter_map(|v| v.as_str()).map(|s| s.trim().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    Ok(Directory { renewal_info, caa_identities })
}

/// One distinct certificate among the services, with the services that use it.
struct Item {
    subject: Arc<Subject>,
    /// Indexes into `facts.services`.
    services: Vec<usize>,
    /// Whether to ask for ARI (the certificate has an Authority Key Identifier).
    ari: bool,
}

/// Fills in the network facts: every service certificate's revocation status and renewal
/// window, the hostname's DNS status and CAA. `dry_run`: change nothing on disk.
pub fn enrich(config: &Config, facts: &mut HostFacts, dry_run: bool) -> Enriched {
    enrich_with(config, facts, dry_run, &HashSet::new())
}

/// [`enrich`], knowing which certificates need nothing from the network
/// ([`Gathered::network_free`](super::Gathered::network_free)): those are not read again.
pub fn enrich_with(
    config: &Config,
    facts: &mut HostFacts,
    dry_run: bool,
    network_free: &HashSet<String>,
) -> Enriched {
    let net = &config.network;
    let mut enriched = Enriched::default();
    enriched.report.hostname_is_fqdn = facts.hostname_is_fqdn;
    // CRL files on this host: no network needed, so read whatever the switches below say.
    let local = LocalCrls::load(net, facts.now);
    enriched.notices.extend(local.take_notices());
    let local_note =
        if net.has_local_crls() { "; the CRL files of crl-files and crl-dir are read" } else { "" };
    let off = if std::env::var_os(NETWORK_FACTS_ENV).is_some_and(|v| v == "off") {
        Some(format!("{NETWORK_FACTS_ENV}=off"))
    } else if !net.revocation && !net.dns && !net.ari {
        Some("switched off in [network]".to_owned())
    } else {
        None
    };
    if let Some(why) = off {
        enriched.report.skipped.push(format!("revocation, DNS, CAA and ARI ({why}){local_note}"));
        if !local.is_empty() {
            local_only(config, facts, &local, &mut enriched);
        }
        return enriched;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            enriched
                .notices
                .push(format!("Revocation, DNS, CAA and ARI were not checked: no async runtime ({e})."));
            return enriched;
        }
    };
    runtime.block_on(run(config, facts, dry_run, network_free, &local, &mut enriched));
    enriched
}

/// Revocation from the local CRLs alone (every network check is off).
fn local_only(config: &Config, facts: &mut HostFacts, local: &LocalCrls, out: &mut Enriched) {
    for item in collect_items(config, facts, facts.now, &HashSet::new()) {
        if let Some(answer) = local_crl::decide(local.status(&item.subject), None) {
            set_revocation(facts, &item.services, &answer);
        }
    }
    out.notices.extend(local.take_notices());
}

/// Sets the revocation fact of these services' certificates.
fn set_revocation(facts: &mut HostFacts, services: &[usize], answer: &Revocation) {
    for &service in services {
        if let Some(CertificateState::Ok(cert)) = facts.services.get_mut(service).map(|s| &mut s.certificate)
        {
            cert.revocation = answer.clone();
        }
    }
}

async fn run(
    config: &Config,
    facts: &mut HostFacts,
    dry_run: bool,
    network_free: &HashSet<String>,
    local: &LocalCrls,
    out: &mut Enriched,
) {
    let net: &NetworkConfig = &config.network;
    let now = facts.now;
    let acme = config.acme.as_ref();
    // The certificates, once each. With local CRLs, every certificate may be in one: none is
    // left out for naming nothing to ask the network about.
    let no_network_free = HashSet::new();
    let network_free = if local.is_empty() { network_free } else { &no_network_free };
    let items = if net.revocation || net.ari || !local.is_empty() {
        collect_items(config, facts, now, network_free)
    } else {
        Vec::new()
    };
    // An HTTP client (with its TLS roots, tens of milliseconds to load) only if some request may
    // be made: revocation for the items, the ACME directory and ARI.
    let needs_http = acme.is_some() || (net.revocation && !items.is_empty());
    let http = if needs_http {
        let http = match Http::new(net.timeout, acme.and_then(|a| a.ca_bundle.as_deref())) {
            Ok(http) => http,
            Err(e @ SetupError::CaBundle { .. }) => {
                out.notices.push(format!(
                    "[acme] ca-bundle is not usable ({e}); the CA's own roots are not trusted."
                ));
                match Http::new(net.timeout, None) {
                    Ok(http) => http,
                    Err(e) => {
                        out.notices.push(format!("Revocation, CAA and ARI were not checked: {e}."));
                        return;
                    }
                }
            }
            Err(e) => {
                out.notices.push(format!("Revocation, CAA and ARI were not checked: {e}."));
                return;
            }
        };
        Some(Arc::new(http))
    } else {
        None
    };
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
    // One deadline for each task: a few requests' worth (redirects, OCSP then CRL, CAA climbing).
    let deadline = net.timeout * 4 + Duration::from_secs(1);

    // DNS: A/AAAA now; CAA once the CA's identities are known.
    let resolver = if net.dns && facts.hostname_is_fqdn {
        match dns::resolver(net) {
            Ok(r) => Some(r),
            Err(e) => {
                out.notices.push(format!("The hostname's DNS records were not looked up: {e}."));
                None
            }
        }
    } else {
        if !net.dns {
            out.report.skipped.push("hostname DNS and CAA (dns = false in [network])".into());
        } else {
            out.report
                .skipped
                .push("hostname DNS and CAA (the hostname is not a fully qualified domain name)".into());
        }
        None
    };
    let dns_task = resolver.clone().map(|resolver| {
        let hostname = facts.hostname.clone();
        tokio::spawn(async move {
            tokio::time::timeout(deadline, dns::lookup_addresses(&resolver, &hostname))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", deadline.as_secs())))
        })
    });

    if !net.revocation {
        let local_note =
            if net.has_local_crls() { "; the CRL files of crl-files and crl-dir are read" } else { "" };
        out.report.skipped.push(format!("revocation (revocation = false in [network]){local_note}"));
    }
    let checker = http
        .as_ref()
        .map(|http| Arc::new(Checker::new(http.clone(), now, config.state_dir.join("cache/crl"), !dry_run)));
    let mut revocation_tasks = Vec::new();
    // The local CRLs first: a certificate a current one lists as revoked needs no network.
    let mut local_answers: Vec<LocalAnswer> = items.iter().map(|item| local.status(&item.subject)).collect();
    for (index, item) in items.iter().enumerate() {
        let (true, Some(checker)) = (net.revocation, &checker) else {
            continue;
        };
        if matches!(local_answers[index].answer, Some(Revocation::Revoked(_))) {
            continue;
        }
        let (checker, subject, limit) = (checker.clone(), item.subject.clone(), limit.clone());
        revocation_tasks.push((
            index,
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                tokio::time::timeout(deadline, checker.check(&subject)).await.unwrap_or_else(|_| {
                    Revocation::Unknown(format!("no answer within {} s", deadline.as_secs()))
                })
            }),
        ));
    }

    // The ACME directory, for ARI and for the CA's CAA identities.
    let need_identities = resolver.is_some() && net.caa_identities.is_empty();
    let directory = match (acme, &http) {
        (Some(acme), Some(http)) if net.ari || resolver.is_some() => {
            match fetch_directory(http, &acme.directory_url).await {
                Ok(directory) => Some(directory),
                Err(e) => {
                    out.notices.push(format!(
                        "The ACME directory {} could not be read ({e}); renewal information (ARI){} was not checked.",
                        acme.directory_url,
                        if need_identities { " and CAA" } else { "" }
                    ));
                    None
                }
            }
        }
        _ => None,
    };

    // CAA against the CA's identities.
    let identities: Vec<String> = match directory.as_ref().filter(|d| !d.caa_identities.is_empty()) {
        Some(d) => d.caa_identities.clone(),
        None => net.caa_identities.clone(),
    };
    let caa_task = match (&resolver, identities.is_empty()) {
        (Some(resolver), false) => {
            let (resolver, hostname) = (resolver.clone(), facts.hostname.clone());
            Some(tokio::spawn(async move {
                tokio::time::timeout(deadline, caa::relevant_rrset(&resolver, &hostname))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {} s", deadline.as_secs())))
            }))
        }
        (Some(_), true) => {
            out.report.skipped.push(if acme.is_none() {
                "CAA (no [acme] CA is configured and [network] caa-identities is empty)".to_owned()
            } else {
                "CAA (the ACME directory lists no caaIdentities and [network] caa-identities is empty)"
                    .to_owned()
            });
            None
        }
        (None, _) => None,
    };

    // ARI for the certificates, from the configured CA.
    let mut ari_tasks = Vec::new();
    let renewal_info = directory.as_ref().and_then(|d| d.renewal_info.clone());
    match (&renewal_info, acme) {
        (_, None) => out.report.skipped.push("ARI (no [acme] CA is configured)".into()),
        _ if !net.ari => out.report.skipped.push("ARI (ari = false in [network])".into()),
        (None, Some(_)) if directory.is_some() => {
            out.report.skipped.push("ARI (the CA's directory offers no renewalInfo)".into())
        }
        _ => {}
    }
    let ari_client = http.as_ref().map(|http| {
        Arc::new(AriClient::new(http.clone(), now, config.state_dir.join("cache/ari"), !dry_run))
    });
    if let (Some(base), true, Some(ari_client)) = (&renewal_info, net.ari, &ari_client) {
        for (index, item) in items.iter().enumerate() {
            if !item.ari {
                continue;
            }
            let (client, subject, limit, base) =
                (ari_client.clone(), item.subject.clone(), limit.clone(), base.clone());
            ari_tasks.push((
                index,
                tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    tokio::time::timeout(deadline, client.window(&base, &subject.leaf))
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer within {} s", deadline.as_secs())))
                }),
            ));
        }
    }

    // Collect.
    if let Some(task) = dns_task {
        let main = dns::main_ips(&config.main_ips);
        out.report.main_ips = main.ips.iter().map(IpAddr::to_string).collect();
        out.report.main_ips_source = if main.configured { "configured" } else { "detected" }.to_owned();
        if let Some(problem) = &main.problem {
            out.notices.push(problem.clone());
        }
        match task.await.unwrap_or_else(|e| Err(format!("the lookup failed ({e})"))) {
            Ok(addresses) => {
                out.report.addresses = addresses.iter().map(IpAddr::to_string).collect();
                let verdict = dns::classify(&addresses, &main);
                facts.hostname_dns = verdict.status;
                if let Some(note) = verdict.note {
                    out.notices.push(note);
                }
            }
            Err(e) => out.notices.push(format!(
                "The A/AAAA records of {} could not be looked up ({e}); whether it points to this server is not known.",
                facts.hostname
            )),
        }
    }
    out.report.hostname_dns = facts.hostname_dns;
    if let Some(task) = caa_task {
        out.report.ca_identities = identities.clone();
        match task.await.unwrap_or_else(|e| Err(format!("the lookup failed ({e})"))) {
            Ok(relevant) => {
                facts.caa = caa::evaluate(relevant.as_ref(), &identities);
                if let Some(Relevant { domain, records }) = relevant {
                    out.report.caa_domain = Some(domain);
                    out.report.caa_records = records.iter().map(ToString::to_string).collect();
                }
            }
            Err(e) => out.notices.push(format!(
                "The CAA records of {} could not be looked up ({e}); whether they allow the CA is not known.",
                facts.hostname
            )),
        }
    }
    out.report.caa = facts.caa.clone();

    let mut network_answers: HashMap<usize, Revocation> = HashMap::new();
    for (index, task) in revocation_tasks {
        let answer = task.await.unwrap_or_else(|e| Revocation::Unknown(format!("the check failed ({e})")));
        network_answers.insert(index, answer);
    }
    let mut revocations: HashMap<usize, Revocation> = HashMap::new();
    for (index, local_answer) in local_answers.iter_mut().enumerate() {
        let answer = local_crl::decide(std::mem::take(local_answer), network_answers.remove(&index));
        if let Some(answer) = answer {
            revocations.insert(index, answer);
        }
    }
    out.notices.extend(local.take_notices());
    let mut windows = HashMap::new();
    for (index, task) in ari_tasks {
        match task.await.unwrap_or_else(|e| Err(format!("the request failed ({e})"))) {
            Ok(window) => {
                windows.insert(index, window);
            }
            Err(e) => {
                let names = service_names(facts, &items[index].services);
                out.notices.push(format!(
                    "Renewal information (ARI) for the certificate of {names} could not be fetched ({e}); \
                     the usual expiry rules apply."
                ));
            }
        }
    }
    out.notices.extend(checker.iter().flat_map(|c| c.take_notices()));
    out.notices.extend(ari_client.iter().flat_map(|c| c.take_notices()));

    for (index, item) in items.iter().enumerate() {
        for &service in &item.services {
            let Some(CertificateState::Ok(cert)) =
                facts.services.get_mut(service).map(|s| &mut s.certificate)
            else {
                continue;
            };
            if let Some(answer) = revocations.get(&index) {
                cert.revocation = answer.clone();
            }
            if let Some(window) = windows.get(&index) {
                cert.renewal_window = window.clone();
            }
        }
    }
}

fn service_names(facts: &HostFacts, indexes: &[usize]) -> String {
    let names: Vec<&str> =
        indexes.iter().filter_map(|&i| facts.services.get(i)).map(|s| s.name.as_str()).collect();
    names.join(", ")
}

async fn fetch_directory(http: &Http, url: &str) -> Result<Directory, String> {
    let answer = http.get(url, MAX_DIRECTORY_BYTES).await?;
    if answer.status != 200 {
        return Err(format!("HTTP status {}", answer.status));
    }
    parse_directory(&answer.body)
}

/// A service's index in the facts, and its configuration (if it still has one).
type ServiceRef<'a> = (usize, Option<&'a ServiceConfig>);

/// The distinct certificates of the services (by fingerprint), read again from their files with
/// their chains, and whether to ask about each: revocation and ARI are asked for certificates
/// that are not self-signed and not expired, and that may name an OCSP responder, a CRL or an
/// authority key (not in `network_free`). The files are read and decoded on every core.
fn collect_items(
    config: &Config,
    facts: &HostFacts,
    now: Timestamp,
    network_free: &HashSet<String>,
) -> Vec<Item> {
    let trust = TrustStore::new(&config.trust);
    // The services of each distinct certificate to ask about, in order of first use.
    let mut groups: Vec<(&str, Vec<ServiceRef<'_>>)> = Vec::new();
    let mut by_fingerprint: HashMap<&str, usize> = HashMap::new();
    // As `Config::service` finds them (the first of a name), without a scan per service.
    let mut by_name: HashMap<&str, &ServiceConfig> = HashMap::new();
    for service in &config.services {
        by_name.entry(service.name.as_str()).or_insert(service);
    }
    for (index, service) in facts.services.iter().enumerate() {
        let CertificateState::Ok(cert) = &service.certificate else {
            continue;
        };
        // Self-signed: no CA to ask. Expired: CAs drop expired certificates from their CRLs
        // and ARI, and the policy already treats them as unusable.
        if cert.self_signed || now >= cert.not_after || network_free.contains(&cert.sha256_fingerprint) {
            continue;
        }
        let fingerprint = cert.sha256_fingerprint.as_str();
        let group = *by_fingerprint.entry(fingerprint).or_insert_with(|| {
            groups.push((fingerprint, Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push((index, by_name.get(service.name.as_str()).copied()));
    }
    // Shared intermediates are decoded once.
    let decoded: RwLock<HashMap<[u8; 32], X509>> = RwLock::new(HashMap::new());
    let decode = |der: &[u8]| -> Result<X509, ErrorStack> {
        let digest = openssl::sha::sha256(der);
        if let Some(cert) = decoded.read().ok().and_then(|m| m.get(&digest).cloned()) {
            return Ok(cert);
        }
        let cert = X509::from_der(der)?;
        if let Ok(mut map) = decoded.write() {
            map.insert(digest, cert.clone());
        }
        Ok(cert)
    };
    // The first service whose files still hold the certificate provides it; it and the services
    // after it are asked about (the file changed since it was read: its facts stay as they are).
    let mut items: Vec<(usize, Item)> = groups
        .par_iter()
        .filter_map(|(fingerprint, services)| {
            let (position, (leaf, chain)) =
                services.iter().enumerate().find_map(|(position, (_, svc))| {
                    load_certificate((*svc)?, fingerprint, &decode).ok().map(|loaded| (position, loaded))
                })?;
            let issuer = find_issuer(&leaf, &chain, &trust);
            let has_aki = leaf.authority_key_id().is_some();
            let indexes: Vec<usize> = services[position..].iter().map(|(index, _)| *index).collect();
            let item = Item { subject: Arc::new(Subject { leaf, issuer }), services: indexes, ari: has_aki };
            Some((services[position].0, item))
        })
        .collect();
    items.sort_by_key(|(first, _)| *first);
    items.into_iter().map(|(_, item)| item).collect()
}

/// The service's leaf and chain (the certificate file's and the chain file's), read again; the
/// leaf must still be the certificate with `fingerprint`. `decode` decodes the chain's
/// certificates.
fn load_certificate(
    svc: &ServiceConfig,
    fingerprint: &str,
    decode: &(dyn Fn(&[u8]) -> Result<X509, ErrorStack> + Sync),
) -> Result<(X509, Vec<X509>), String> {
    let read = |path: &Path| {
        read_bounded(path, MAX_PEM_FILE_SIZE).map_err(|e| match e {
            ReadError::Missing(m) | ReadError::Unreadable(m) => m,
        })
    };
    let bytes = read(&svc.certificate)?;
    let blocks = pem::scan(&bytes).map_err(|e| e.to_string())?;
    let parsed = certificates_from_blocks(&blocks, decode)?;
    if hex::encode(openssl::sha::sha256(&parsed.leaf_der)) != fingerprint {
        return Err(format!("{} changed during the run", svc.certificate.display()));
    }
    let mut chain = parsed.chain;
    if let Some(path) = &svc.chain
        && let Ok(bytes) = read(path)
        && let Ok(blocks) = pem::scan(&bytes)
        && let Ok(certs) = chain_from_blocks(&blocks, decode)
    {
        chain.extend(certs);
    }
    Ok((parsed.leaf, chain))
}

/// The trusted roots, loaded only if a certificate's issuer is not in its own chain.
struct TrustStore {
    trust: TrustConfig,
    store: OnceLock<Option<X509Store>>,
}

impl TrustStore {
    fn new(trust: &TrustConfig) -> TrustStore {
        TrustStore { trust: trust.clone(), store: OnceLock::new() }
    }

    fn get(&self) -> Option<&X509Store> {
        self.store
            .get_or_init(|| {
                let mut builder = X509StoreBuilder::new().ok()?;
                if self.trust.system_roots {
                    let _ = builder.set_default_paths();
                }
                for path in &self.trust.extra_roots {
                    let Ok(bytes) = read_bounded(path, super::verify::MAX_TRUST_FILE_SIZE) else {
                        continue;
                    };
                    for cert in X509::stack_from_pem(&bytes).unwrap_or_default() {
                        let _ = builder.add_cert(cert);
                    }
                }
                Some(builder.build())
            })
            .as_ref()
    }
}

/// The leaf's issuer: the first certificate of its chain that issued it, else one found in the
/// trust store.
fn find_issuer(leaf: &X509, chain: &[X509], trust: &TrustStore) -> Result<X509, String> {
    if let Some(issuer) = chain.iter().find(|c| is_issuer_of(c, leaf)) {
        return Ok(issuer.clone());
    }
    let not_found = || {
        "the issuer's certificate is neither in the certificate's files nor in the trust store, \
         so the CA's answer cannot be verified"
            .to_owned()
    };
    let store = trust.get().ok_or_else(not_found)?;
    let build = || -> Result<Option<X509>, openssl::error::ErrorStack> {
        let mut untrusted = Stack::new()?;
        for cert in chain {
            untrusted.push(cert.clone())?;
        }
        let mut context = X509StoreContext::new()?;
        context.init(store, leaf, &untrusted, |ctx| {
            let _ = ctx.verify_cert()?;
            Ok(ctx.chain().and_then(|c| c.get(1)).map(|c| c.to_owned()))
        })
    };
    match build() {
        Ok(Some(issuer)) if is_issuer_of(&issuer, leaf) => Ok(issuer),
        _ => Err(not_found()),
    }
}

/// A renewal window in words, for the report: "start to end; explanation: URL", the times as
/// OpenSSL prints certificate times (as the report's `valid:` line).
pub fn window_summary(window: &super::model::RenewalWindow) -> String {
    let time = |t: Timestamp| {
        openssl::asn1::Asn1Time::from_unix(t).map(|t| t.to_string()).unwrap_or_else(|_| format!("{t} (Unix)"))
    };
    format!(
        "{} to {}{}",
        time(window.start),
        time(window.end),
        window.explanation_url.as_ref().map(|u| format!("; explanation: {u}")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_fields() {
        let d = parse_directory(
            br#"{"newNonce":"x","renewalInfo":"https://ca.test/ari","meta":{"caaIdentities":["LetsEncrypt.org"]}}"#,
        )
        .expect("parses");
        assert_eq!(d.renewal_info.as_deref(), Some("https://ca.test/ari"));
        assert_eq!(d.caa_identities, ["letsencrypt.org"]);
        assert_eq!(parse_directory(b"{}").expect("empty"), Directory::default());
        assert!(parse_directory(b"<html>").is_err());
        assert!(parse_directory(b"[1]").is_err());
    }

    #[test]
    fn report_lines() {
        let mut report = NetworkReport {
            hostname_is_fqdn: true,
            hostname_dns: DnsStatus::PointsElsewhere,
            addresses: vec!["192.0.2.7".into()],
            main_ips: vec!["192.0.2.1".into()],
            main_ips_source: "configured".into(),
            caa: CaaStatus::Forbids("ca.other".into()),
            caa_domain: Some("example.com".into()),
            caa_records: vec!["0 issue \"ca.other\"".into()],
            ca_identities: vec!["ca.test".into()],
            skipped: vec![],
        };
        let lines = report.lines();
        assert_eq!(
            lines[0],
            "hostname DNS: points-elsewhere (resolves to: 192.0.2.7; main IPs, configured: 192.0.2.1)"
        );
        assert_eq!(
            lines[1],
            "CAA: forbids (allowed: ca.other) (records at example.com: 0 issue \"ca.other\"); the CA's identities: ca.test"
        );
        report.caa = CaaStatus::NotChecked;
        report.caa_domain = None;
        report.skipped.push("ARI (ari = false in [network])".into());
        let lines = report.lines();
        assert!(lines[1].starts_with("CAA: not-checked"), "{lines:?}");
        assert_eq!(lines[2], "not checked: ARI (ari = false in [network])");
    }
}
