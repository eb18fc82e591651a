//! Live probes: what a service's endpoints actually serve.
//!
//! A probe connects to one endpoint (`host:port`), speaks the protocol's plain-text upgrade
//! where there is one ([`starttls`]: SMTP `EHLO` + `STARTTLS`, IMAP `STARTTLS`, POP3 `STLS`, FTP
//! `AUTH TLS`), runs the TLS handshake with OpenSSL ([`tls`]; SNI = the hostname, or the
//! endpoint's `server-name`) and returns the certificates the server presented. Every step has
//! the `[probe] timeout`, the whole probe three times that, and a failure names its step
//! ([`ProbeError`]: connect, banner, STARTTLS refused, handshake...).
//!
//! The results serve twice:
//! * as facts ([`observe`]): each service's `served` list — the fingerprint, whether it is the
//!   installed certificate, the served chain verified by the shared [`Verifier`] — so the
//!   policy can warn about a service that was never reloaded, and `--dry-run --verbose` shows it;
//! * after every install ([`AfterInstall`], an [`actions::install::PostReloadCheck`]): the
//!   endpoints are probed until each serves the new certificate on [`CONFIRMATIONS`] fresh
//!   connections in a row or `[probe] wait` runs out; if
//!   one never does, the install is rolled back (see [`actions::install::install_checked`]).
//!
//! Probes are blocking (std `TcpStream` with timeouts) and run in parallel, one thread per
//! endpoint, at most [`MAX_PARALLEL`] at a time.
//!
//! [`actions::install::PostReloadCheck`]: crate::actions::install::PostReloadCheck
//! [`actions::install::install_checked`]: crate::actions::install::install_checked

pub mod errors;
pub mod starttls;
pub mod tls;

use std::time::{Duration, Instant};

use openssl::x509::X509;

use crate::actions::install::PostReloadCheck;
pub use crate::config::probe::{ProbeConfig, ProbeEndpoint, Protocol};
use crate::config::{Config, ServiceConfig};
use crate::facts::Verifier;
use crate::facts::model::{CertificateState, ChainStatus, HostFacts, ServedEndpoint, Timestamp};
use crate::time::duration as fmt_duration;
pub use errors::ProbeError;

/// The most probes run at the same time.
pub const MAX_PARALLEL: usize = 16;
/// How long to pause between rounds while waiting for a new certificate to be served.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How many fresh connections in a row must get the new certificate before an install counts as
/// verified (see `AfterInstall::wait_for`).
pub const CONFIRMATIONS: u32 = 3;
/// The pause between those confirming probes.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(100);
/// The whole probe may take this many times the per-step timeout.
const OVERALL_FACTOR: u32 = 3;

/// What a probe needs besides the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// The limit for each step.
    pub timeout: Duration,
    /// The SNI name when the endpoint names none: the hostname.
    pub server_name: String,
    /// The name this host gives in SMTP's `EHLO`: the hostname.
    pub client_name: String,
}

impl ProbeSettings {
    /// The settings of a run with this configuration.
    pub fn of(config: &Config) -> ProbeSettings {
        ProbeSettings {
            timeout: config.probe.timeout,
            server_name: config.hostname.clone(),
            client_name: if config.hostname.is_empty() {
                "localhost".into()
            } else {
                config.hostname.clone()
            },
        }
    }
}

/// What an endpoint served.
#[derive(Debug, Clone)]
pub struct Served {
    pub leaf: X509,
    /// The other certificates the server sent, in its order.
    pub chain: Vec<X509>,
    /// SHA-256 of the leaf's DER, lowercase hex (as `certificate.sha256-fingerprint`).
    pub fingerprint: String,
}

/// Probes one endpoint.
pub fn probe(endpoint: &ProbeEndpoint, settings: &ProbeSettings) -> Result<Served, ProbeError> {
    let overall = settings.timeout * OVERALL_FACTOR;
    let mut conn = starttls::Conn::open(endpoint, settings.timeout, overall)?;
    starttls::upgrade(&mut conn, endpoint.protocol, &settings.client_name)?;
    let server_name = endpoint.server_name.as_deref().unwrap_or(&settings.server_name);
    let presented = tls::handshake(conn, server_name)?;
    let der = presented.leaf.to_der().map_err(|e| {
        ProbeError::Handshake(format!(
            "the served certificate cannot be encoded: {}",
            crate::facts::certificate::openssl_reason(&e)
        ))
    })?;
    Ok(Served {
        fingerprint: hex::encode(openssl::sha::sha256(&der)),
        leaf: presented.leaf,
        chain: presented.chain,
    })
}

/// Probes every endpoint, in parallel (at most [`MAX_PARALLEL`] at a time); the results are in
/// the endpoints' order.
pub fn probe_all(endpoints: &[&ProbeEndpoint], settings: &ProbeSettings) -> Vec<Result<Served, ProbeError>> {
    let mut results = Vec::with_capacity(endpoints.len());
    for batch in endpoints.chunks(MAX_PARALLEL) {
        if let [only] = batch {
            results.push(probe(only, settings));
            continue;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch.iter().map(|e| scope.spawn(move || probe(e, settings))).collect();
            for handle in handles {
                results.push(
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(ProbeError::Handshake("the probe thread panicked".into()))),
                );
            }
        });
    }
    results
}

/// The fact about one probe: `installed` is the fingerprint of the certificate in the service's
/// files, if it could be read; the served chain is verified at `now`.
pub fn served_endpoint(
    endpoint: &ProbeEndpoint,
    result: &Result<Served, ProbeError>,
    installed: Option<&str>,
    verifier: &Verifier,
    now: Timestamp,
) -> ServedEndpoint {
    match result {
        Ok(served) => ServedEndpoint {
            endpoint: endpoint.address(),
            sha256_fingerprint: Some(served.fingerprint.clone()),
            matches_installed: installed == Some(served.fingerprint.as_str()),
            chain_status: verifier.verify(&served.leaf, &served.chain, now),
            error: None,
        },
        Err(error) => ServedEndpoint {
            endpoint: endpoint.address(),
            sha256_fingerprint: None,
            matches_installed: false,
            chain_status: ChainStatus::NotChecked,
            error: Some(format!("{}: {error}", endpoint.protocol)),
        },
    }
}

/// Fills in `served` for every service that lists probe endpoints (nothing when `[probe]
/// enabled = false`). All endpoints of all services are probed in parallel.
pub fn observe(config: &Config, verifier: &Verifier, facts: &mut HostFacts) {
    if !config.probe.enabled {
        return;
    }
    let settings = ProbeSettings::of(config);
    let by_name = config.services_by_name();
    let mut jobs: Vec<(usize, &ProbeEndpoint)> = Vec::new();
    for (index, service_facts) in facts.services.iter().enumerate() {
        if let Some(service) = by_name.get(service_facts.name.as_str()) {
            jobs.extend(service.probe.iter().map(|e| (index, e)));
        }
    }
    if jobs.is_empty() {
        return;
    }
    let endpoints: Vec<&ProbeEndpoint> = jobs.iter().map(|(_, e)| *e).collect();
    let results = probe_all(&endpoints, &settings);
    let now = facts.now;
    for ((index, endpoint), result) in jobs.into_iter().zip(results) {
        let service_facts = &mut facts.services[index];
        let installed = installed_fingerprint(&service_facts.certificate);
        let fact = served_endpoint(endpoint, &result, installed.as_deref(), verifier, now);
        service_facts.served.push(fact);
    }
}

/// [`observe`] with a verifier built from the configured trust (only when some service lists
/// endpoints): the main run's hook.
pub fn observe_config(config: &Config, facts: &mut HostFacts) {
    if !config.probe.enabled || config.services.iter().all(|s| s.probe.is_empty()) {
        return;
    }
    let verifier = Verifier::new(&config.trust).unwrap_or_else(|e| Verifier::not_checking(&e.to_string()));
    observe(config, &verifier, facts);
}

/// The words every failed after-install check puts in its action's message.
pub const NOT_SERVED: &str = "the new certificate is not served";

/// An error notice for each of a service's actions that failed because the new certificate
/// was not served after the reload (the action itself says the rest).
pub fn notices_for(
    service: &str,
    actions: &[crate::report::ActionReport],
) -> Vec<crate::plan::model::Notice> {
    actions
        .iter()
        .filter(|a| a.failed() && a.message.contains(NOT_SERVED))
        .map(|a| crate::plan::model::Notice {
            level: crate::plan::model::Level::Error,
            service: Some(service.to_string()),
            message: format!(
                "Service {service}: the new certificate was installed but not served, so the install \
                 was rolled back: {} Check that the reload command really makes the service re-read \
                 its certificate.",
                a.message.strip_prefix(&format!("service {service}: ")).unwrap_or(&a.message)
            ),
        })
        .collect()
}

/// One served endpoint in words, for the verbose report: whether it serves what is on disk.
pub fn describe_served(e: &ServedEndpoint) -> String {
    let chain = match &e.chain_status {
        ChainStatus::Trusted => "chain trusted".to_string(),
        ChainStatus::Untrusted(why) => format!("chain untrusted: {why}"),
        ChainStatus::Incomplete(why) => format!("chain incomplete: {why}"),
        ChainStatus::NotChecked => "chain not checked".to_string(),
    };
    match (&e.sha256_fingerprint, &e.error) {
        (Some(fp), _) if e.matches_installed => {
            format!("the installed certificate ({}); {chain}", short_fingerprint(fp))
        }
        (Some(fp), _) => format!(
            "NOT the installed certificate: {} is served (stale: reload the service?); {chain}",
            short_fingerprint(fp)
        ),
        (None, Some(error)) => format!("could not be checked: {error}"),
        (None, None) => "could not be checked".to_string(),
    }
}

/// The fingerprint of the certificate in a service's files, if it was read.
pub fn installed_fingerprint(state: &CertificateState) -> Option<String> {
    state.certificate().map(|c| c.sha256_fingerprint.clone())
}

/// The fingerprint of the first certificate in a PEM file, if there is one.
fn file_fingerprint(path: &std::path::Path) -> Option<String> {
    let bytes = crate::facts::read_bounded(path, crate::facts::MAX_PEM_FILE_SIZE).ok()?;
    let der = X509::from_pem(&bytes).ok()?.to_der().ok()?;
    Some(hex::encode(openssl::sha::sha256(&der)))
}

/// "sha256 0123456789abcdef…": enough of a fingerprint to tell certificates apart in a message.
pub fn short_fingerprint(fingerprint: &str) -> String {
    if fingerprint.len() > 16 {
        format!("sha256 {}…", &fingerprint[..16])
    } else {
        format!("sha256 {fingerprint}")
    }
}

/// The check an install runs after its reload: every endpoint must serve the new certificate
/// within `[probe] wait`.
#[derive(Debug, Clone)]
pub struct AfterInstall {
    endpoints: Vec<ProbeEndpoint>,
    settings: ProbeSettings,
    wait: Duration,
    poll: Duration,
    /// The fingerprint of the certificate in the files before the install.
    previous: Option<String>,
}

/// How the endpoints stood when a wait ended.
struct WaitOutcome {
    /// Per endpoint: the last fingerprint served, or the last error.
    last: Vec<Result<String, ProbeError>>,
    all_match: bool,
    elapsed: Duration,
}

impl AfterInstall {
    /// The check for `service`, or `None` when it lists no endpoints or probes are disabled.
    /// Make it before the install: it notes the fingerprint of the certificate in place.
    pub fn for_service(config: &Config, service: &ServiceConfig) -> Option<AfterInstall> {
        (config.probe.enabled && !service.probe.is_empty()).then(|| AfterInstall {
            endpoints: service.probe.clone(),
            settings: ProbeSettings::of(config),
            wait: config.probe.wait,
            poll: POLL_INTERVAL,
            previous: file_fingerprint(&service.certificate),
        })
    }

    /// What a passed check adds to an install's message: "; verified: 127.0.0.1:443 (https)
    /// serves the new certificate (checked after 0.2s)".
    pub fn describe_success(verified: Option<&str>) -> String {
        verified.map(|v| format!("; verified: {v}")).unwrap_or_default()
    }

    /// A check of `endpoints` with explicit settings (for tests and other callers).
    pub fn new(
        endpoints: Vec<ProbeEndpoint>,
        settings: ProbeSettings,
        wait: Duration,
        previous: Option<String>,
    ) -> AfterInstall {
        AfterInstall { endpoints, settings, wait, poll: POLL_INTERVAL, previous }
    }

    /// Probes until every endpoint serves `expected` on [`CONFIRMATIONS`] fresh connections in
    /// a row, or the wait runs out. The streak guards against a daemon whose old workers still
    /// accept connections for a moment after a reload (nginx's do until they handle the signal
    /// to quit): one answer from a new worker is not yet proof. When the wait runs out, an
    /// endpoint whose last answer was `expected` counts as serving it.
    fn wait_for(&self, expected: &str, wait: Duration) -> WaitOutcome {
        let start = Instant::now();
        let mut last: Vec<Result<String, ProbeError>> =
            vec![Err(ProbeError::Connect("not probed yet".into())); self.endpoints.len()];
        let mut streak = vec![0u32; self.endpoints.len()];
        loop {
            let pending: Vec<usize> =
                (0..self.endpoints.len()).filter(|&i| streak[i] < CONFIRMATIONS).collect();
            let endpoints: Vec<&ProbeEndpoint> = pending.iter().map(|&i| &self.endpoints[i]).collect();
            for (&i, result) in pending.iter().zip(probe_all(&endpoints, &self.settings)) {
                last[i] = result.map(|served| served.fingerprint);
                streak[i] = if last[i].as_deref() == Ok(expected) { streak[i] + 1 } else { 0 };
            }
            if streak.iter().all(|&n| n >= CONFIRMATIONS) {
                return WaitOutcome { last, all_match: true, elapsed: start.elapsed() };
            }
            // Only confirmations left: probe again soon; otherwise wait a poll interval.
            let pause = if streak.iter().all(|&n| n > 0) { CONFIRM_INTERVAL } else { self.poll };
            if start.elapsed() + pause > wait {
                let all_match = last.iter().all(|r| r.as_deref() == Ok(expected));
                return WaitOutcome { last, all_match, elapsed: start.elapsed() };
            }
            std::thread::sleep(pause);
        }
    }

    /// What endpoint `i` served, in words: against the `new` certificate (after the install),
    /// or, with `new = None`, after the rollback.
    fn describe(&self, i: usize, result: &Result<String, ProbeError>, new: Option<&str>) -> String {
        let endpoint = &self.endpoints[i];
        let previous = self.previous.as_deref();
        match result {
            Ok(fp) if Some(fp.as_str()) == new => format!("{endpoint} serves the new certificate"),
            Ok(fp) if Some(fp.as_str()) == previous && new.is_some() => {
                format!("{endpoint} still serves the previous certificate ({})", short_fingerprint(fp))
            }
            Ok(fp) if Some(fp.as_str()) == previous => {
                format!("{endpoint} serves the previous certificate again")
            }
            Ok(fp) if previous.is_none() && new.is_none() => {
                format!("{endpoint} serves {}", short_fingerprint(fp))
            }
            Ok(fp) => format!(
                "{endpoint} serves a certificate that is neither the new nor the previous one ({})",
                short_fingerprint(fp)
            ),
            Err(e) => format!("{endpoint} could not be probed: {e}"),
        }
    }
}

impl PostReloadCheck for AfterInstall {
    fn new_certificate_served(&self, fingerprint: &str) -> Result<String, String> {
        let outcome = self.wait_for(fingerprint, self.wait);
        let when = fmt_duration(Duration::from_millis(outcome.elapsed.as_millis() as u64 / 100 * 100));
        if outcome.all_match {
            let names: Vec<String> = self.endpoints.iter().map(ToString::to_string).collect();
            return Ok(format!(
                "{} {} the new certificate (checked after {when})",
                names.join(", "),
                if names.len() == 1 { "serves" } else { "all serve" }
            ));
        }
        let problems: Vec<String> = outcome
            .last
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_deref() != Ok(fingerprint))
            .map(|(i, r)| self.describe(i, r, Some(fingerprint)))
            .collect();
        Err(format!("after waiting {}, {}", fmt_duration(self.wait), problems.join("; ")))
    }

    fn after_rollback(&self) -> String {
        let outcome = match &self.previous {
            Some(previous) => self.wait_for(previous, self.wait),
            None => self.wait_for("", Duration::ZERO),
        };
        if outcome.all_match {
            let names: Vec<String> = self.endpoints.iter().map(ToString::to_string).collect();
            return format!("after the rollback {} serve the previous certificate again", names.join(", "));
        }
        let parts: Vec<String> =
            outcome.last.iter().enumerate().map(|(i, r)| self.describe(i, r, None)).collect();
        format!("after the rollback {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests;
