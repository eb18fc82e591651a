//! Ordering replacement certificates from an ACME CA (RFC 8555): the step between the plan and
//! the installs.
//!
//! * [`facts`] tells the policy what the host knows about its CA (`host-facts.acme`): the
//!   directory, the pending order, and when the next new order may be opened.
//! * [`order`](fn@order) runs once per run when the plan says `order-hostname-certificate`: one
//!   order for the hostname plus `acme.extra-names` plus every service's `names`, shared by all
//!   services the plan marks `replace` / `replace-or-placeholder`. It resumes a pending order
//!   instead of opening another, respects the back-off and the daily cap ([`state::Limits`]),
//!   checks the issued certificate before handing it over ([`order::verify_issued`]), keeps
//!   it (and every earlier one) under `<state-dir>/acme/issued/`, and with `--allow-retry`
//!   queues one re-check in `at` when the CA is still processing ([`retry`]).
//! * [`replaces`]: a new order names the certificate it replaces (RFC 9773), when the CA offers
//!   ARI; a CA that refuses that gets the order again without it.
//!
//! The protocol is `instant-acme`; its HTTP is `reqwest` with OpenSSL ([`client`]); async code
//! runs on a current-thread tokio runtime that lives only for this step. A dry run never gets
//! here. Nothing outside `<state-dir>/acme/` (and the webroot / DNS hook while a challenge is
//! answered) is touched by this step: installing is the pipeline's job.

pub mod challenge;
pub mod client;
pub mod errors;
pub mod order;
pub mod replaces;
pub mod retry;
pub mod reuse;
pub mod state;

use std::path::PathBuf;

use crate::actions::placeholder::Material;
use crate::config::Config;
use crate::config::acme::AcmeConfig;
use crate::facts::model::{AcmeFacts, GroupFacts, PendingOrder};
use crate::plan::model::{Level, Notice};

pub use errors::{AcmeError, ProblemDocument};
use state::{HistoryEvent, IssuedRecord, StateDir};

pub(crate) use crate::time::unix_now;

/// How the ACME step was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// `--allow-retry`: queue a re-check if the order is still pending, an hour later or when
    /// the CA's `Retry-After` says, whichever is later ([`retry::delay`]).
    pub allow_retry: bool,
    /// `--no-retry`: never queue a re-check.
    pub no_retry: bool,
    /// The configuration file, for the re-check's command line.
    pub config_path: PathBuf,
    /// `--force`: this run opens an order whatever the back-off and the daily cap (not before a
    /// `Retry-After` the CA itself sent); recorded in the history as `forced`.
    pub force: bool,
}

/// What the ACME step came to.
#[derive(Debug)]
pub enum Outcome {
    /// A certificate was issued and passed the checks.
    Issued {
        material: Material,
        /// Where it is kept (`<state-dir>/acme/issued/...`).
        stored: PathBuf,
        order_url: String,
        names: Vec<String>,
        not_after: i64,
        /// A certificate issued in an earlier run and not installed then ([`reuse`]): when it
        /// was issued. No order was opened.
        reused: Option<i64>,
    },
    /// The CA is still processing; the order is saved and resumed by the next run.
    Pending { order_url: String, status: String, reason: String },
    /// No order was attempted (back-off, daily cap); the CA was not contacted. `retry_at`: an
    /// order was wanted and a later run opens it by itself, from then on (back-off, daily cap).
    NotOrdered { reason: String, retry_at: Option<i64> },
    /// The order failed; nothing was installed.
    Failed { error: AcmeError },
}

/// The outcome and the messages for the admin.
#[derive(Debug)]
pub struct StepReport {
    pub outcome: Outcome,
    pub notices: Vec<Notice>,
}

impl StepReport {
    /// A one-line description of the outcome for the services' actions.
    pub fn summary(&self) -> String {
        match &self.outcome {
            Outcome::Issued { order_url, reused: None, .. } => format!("issued by order {order_url}"),
            Outcome::Issued { order_url, reused: Some(at), .. } => {
                format!(
                    "reused the certificate issued at {} by order {order_url}",
                    crate::time::utc_seconds(*at)
                )
            }
            Outcome::Pending { order_url, reason, .. } => {
                format!("the order {order_url} is still pending ({reason})")
            }
            Outcome::NotOrdered { reason, .. } => format!("no order was opened: {reason}"),
            Outcome::Failed { error } => format!("the order failed: {error}"),
        }
    }
}

fn notice(level: Level, message: String) -> Notice {
    Notice { level, service: None, message }
}

/// The names one order is for: the hostname, then `acme.extra-names`, then every service's
/// `names`, lower case, without duplicates or IP addresses (ACME DNS identifiers only).
pub fn order_names(config: &Config, acme: &AcmeConfig) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let candidates = std::iter::once(&config.hostname)
        .chain(&acme.extra_names)
        .chain(config.services.iter().flat_map(|s| &s.names));
    for name in candidates {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.parse::<std::net::IpAddr>().is_ok() || names.contains(&name) {
            continue;
        }
        names.push(name);
    }
    names
}

/// Whether the configured CA can issue for `hostname` (`host-facts.hostname-is-fqdn` when a CA
/// is configured): a public CA (`acme.public`) only for a fully qualified name outside the names
/// reserved for internal use ([`crate::facts::hostname_is_fqdn`]); a private CA also for those
/// (`host.corp.internal`, `nas.lan`, `ci.test`): a valid DNS name of at least two labels whose
/// last label is not all digits.
pub fn hostname_orderable(acme: &AcmeConfig, hostname: &str) -> bool {
    let name = hostname.strip_suffix('.').unwrap_or(hostname).to_ascii_lowercase();
    if acme.public {
        // Besides the special-use names, the private TLDs in common use (not delegated: no
        // public CA issues for them).
        let private_tld = ["lan", "corp", "home", "intranet", "private"]
            .iter()
            .any(|tld| name.rsplit_once('.').is_some_and(|(_, last)| last == *tld));
        return crate::facts::hostname_is_fqdn(&name) && !private_tld;
    }
    crate::config::names::is_dns_name(&name)
        && name.rsplit_once('.').is_some_and(|(_, tld)| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// What the back-off is about: the CA, the account binding, the names, the challenge and the
/// key (a hash; see [`state::Limits::backoff_setup`]).
pub fn setup_fingerprint(acme: &AcmeConfig, names: &[String]) -> String {
    let text = format!(
        "{}|{:?}|{:?}|{:?}|{:?}",
        acme.directory_url,
        acme.eab.as_ref().map(|e| &e.key_id),
        names,
        acme.challenge,
        acme.key
    );
    hex::encode(&openssl::sha::sha256(text.as_bytes())[..8])
}

/// `host-facts.acme` (`None` without `[acme]`) and `host-facts.groups`, the "hostname" group
/// first. Reads the state directories only (never the CA), so it is the same in a dry run.
/// Problems reading the state become notices.
pub fn facts(config: &Config, now: i64) -> (Option<AcmeFacts>, Vec<GroupFacts>, Vec<String>) {
    let mut notices = Vec::new();
    let mut groups = Vec::with_capacity(config.groups.len());
    for group in &config.groups {
        let scoped = config.for_group(&group.name);
        let (names, orderable, pending, next) =
            match scoped.as_ref().and_then(|s| Some((s, s.acme.as_ref()?))) {
                Some((scoped, acme)) => {
                    let names = order_names(scoped, acme);
                    let orderable = names.iter().all(|n| hostname_orderable(acme, n));
                    let (pending, next, mut problems) = group_state(scoped, now);
                    notices
                        .extend(problems.drain(..).map(|p| format!("certificate group {}: {p}", group.name)));
                    (names, orderable, pending, next)
                }
                _ => {
                    let names: Vec<String> = if group.name == crate::config::HOSTNAME_GROUP {
                        std::iter::once(config.hostname.to_ascii_lowercase())
                            .chain(group.names.iter().cloned())
                            .collect()
                    } else {
                        group.names.clone()
                    };
                    let orderable = names.iter().all(|n| crate::facts::hostname_is_fqdn(n));
                    (names, orderable, None, None)
                }
            };
        groups.push(GroupFacts {
            name: group.name.clone(),
            names,
            orderable,
            pending_order: pending,
            next_order_not_before: next,
        });
    }
    let acme = config.acme.as_ref().map(|a| AcmeFacts { directory_url: a.directory_url.clone() });
    (acme, groups, notices)
}

/// The pending order and the next time a new order may be opened, of the group whose
/// configuration ([`Config::for_group`]) this is.
fn group_state(config: &Config, now: i64) -> (Option<PendingOrder>, Option<i64>, Vec<String>) {
    let Some(acme) = &config.acme else {
        return (None, None, Vec::new());
    };
    let mut notices = Vec::new();
    let state = StateDir::at(&config.state_dir).sharing_accounts(acme.accounts_dir.as_deref());
    let pending = match state.pending() {
        Ok(p) => p.filter(|p| p.directory_url == acme.directory_url),
        Err(e) => {
            notices.push(format!("the pending order cannot be read: {e}"));
            None
        }
    };
    let names = order_names(config, acme);
    let next_order_not_before = match state.limits() {
        Ok(limits) => limits
            .blocked(&names, &setup_fingerprint(acme, &names), now, acme.max_orders_per_day)
            .map(|b| b.until()),
        Err(e) => {
            notices.push(format!("the order limits cannot be read: {e}"));
            None
        }
    };
    let pending =
        pending.map(|p| PendingOrder { url: p.url, created: p.created, names: p.names, status: p.status });
    (pending, next_order_not_before, notices)
}

/// What a dry run says instead of ordering.
pub fn planned(config: &Config, now: i64) -> StepReport {
    let Some(acme) = &config.acme else {
        return StepReport {
            outcome: Outcome::NotOrdered {
                reason: "no certificate authority is configured".into(),
                retry_at: None,
            },
            notices: Vec::new(),
        };
    };
    let names = order_names(config, acme);
    let (pending_order, next_order_not_before, _) = group_state(config, now);
    let state = StateDir::at(&config.state_dir).sharing_accounts(acme.accounts_dir.as_deref());
    let reusable = match pending_order {
        None => reuse::find(config, acme, &state, &names, now),
        Some(_) => None,
    };
    let reason = match (&pending_order, next_order_not_before) {
        (None, _) if let Some(found) = &reusable => format!(
            "dry run: would install the certificate issued at {} (order {}), kept in {}, instead of ordering",
            crate::time::utc_seconds(found.record.issued_at),
            found.record.order_url,
            found.dir.display()
        ),
        (Some(p), _) => {
            format!("dry run: would resume the pending order {} at {}", p.url, acme.directory_url)
        }
        (None, Some(until)) => {
            format!(
                "dry run: no new order before {} (back-off or daily cap)",
                crate::time::utc_seconds(until)
            )
        }
        (None, None) => format!(
            "dry run: would order a certificate for {} from {} ({} challenge)",
            names.join(", "),
            acme.directory_url,
            acme.challenge.name()
        ),
    };
    StepReport {
        outcome: Outcome::NotOrdered { reason: reason.clone(), retry_at: None },
        notices: vec![notice(Level::Info, reason)],
    }
}

/// Runs the ACME step (see the module documentation). Never panics on a CA's answer; every
/// failure is an [`Outcome::Failed`] with the CA's problem document where there is one.
pub fn order(config: &Config, options: &StepOptions, now: i64) -> StepReport {
    let Some(acme) = &config.acme else {
        return StepReport {
            outcome: Outcome::NotOrdered {
                reason: "no certificate authority is configured".into(),
                retry_at: None,
            },
            notices: Vec::new(),
        };
    };
    let mut notices = Vec::new();
    let failed = |error: AcmeError, mut notices: Vec<Notice>| {
        notices.push(notice(Level::Error, format!("No certificate was issued: {error}")));
        StepReport { outcome: Outcome::Failed { error }, notices }
    };
    let state = match StateDir::open(&config.state_dir) {
        Ok(s) => s.sharing_accounts(acme.accounts_dir.as_deref()),
        Err(e) => return failed(e, notices),
    };
    let names = order_names(config, acme);

    let mut pending = match state.pending() {
        Ok(p) => p,
        Err(e) => return failed(e, notices),
    };
    if let Some(p) = &pending {
        let mut theirs = p.names.clone();
        let mut ours = names.clone();
        theirs.sort();
        ours.sort();
        let why = if p.directory_url != acme.directory_url {
            Some(format!("it was opened at another CA ({})", p.directory_url))
        } else if theirs != ours {
            Some(format!("it is for {:?}, the configuration now asks for {:?}", p.names, names))
        } else {
            None
        };
        if let Some(why) = why {
            for w in challenge::cleanup(&p.artifacts, &acme.challenge) {
                notices.push(notice(Level::Warning, w));
            }
            if let Err(e) = state.clear_pending() {
                return failed(e, notices);
            }
            let mut event = HistoryEvent::new("order-abandoned", now);
            event.order_url = Some(p.url.clone());
            event.detail = Some(why.clone());
            let _ = state.log(&event);
            notices
                .push(notice(Level::Warning, format!("The pending order {} was abandoned: {why}.", p.url)));
            pending = None;
        }
    }

    if let Some(p) = &pending {
        // A pending order is resumed whatever the back-off, but not before the CA's Retry-After:
        // a rate limit's or a 503's (limits.json), or the order's own (RFC 8555 §7.4, pending.json).
        match state.limits() {
            Ok(limits) => {
                let rate_limited = limits.ca_retry_after.filter(|until| *until > now);
                let polled = p.retry_after.filter(|until| *until > now);
                if let Some(until) = rate_limited.max(polled) {
                    let asked = if rate_limited == Some(until) {
                        "not to be sent another request before"
                    } else {
                        "to look at the order again at"
                    };
                    let reason = format!(
                        "the certificate authority asked {asked} {} (Retry-After); the pending order {} is \
                         resumed after that",
                        crate::time::utc_seconds(until),
                        p.url
                    );
                    notices.push(notice(
                        Level::Warning,
                        format!("Nothing was sent to {}: {reason}.", acme.directory_url),
                    ));
                    recheck_at_the_cas_time(&state, options, until, &mut notices);
                    // Still pending at the CA: the run says so (exit 75), as one that polled would.
                    let outcome =
                        Outcome::Pending { order_url: p.url.clone(), status: p.status.clone(), reason };
                    return StepReport { outcome, notices };
                }
            }
            Err(e) => return failed(e, notices),
        }
    }
    // Reuse before re-order: an earlier certificate that was never installed and still does.
    if pending.is_none()
        && let Some(found) = reuse::find(config, acme, &state, &names, unix_now())
    {
        let mut event = HistoryEvent::new("reused", now);
        event.directory_url = Some(found.record.directory_url.clone());
        event.order_url = Some(found.record.order_url.clone());
        event.names = names.clone();
        event.stored = Some(found.dir.clone());
        let _ = state.log(&event);
        notices.push(notice(
            Level::Warning,
            format!(
                "No certificate was ordered: reused the certificate issued at {} (order {}, valid until {}), kept \
                 in {}, which covers {} and was not installed yet.",
                crate::time::utc_seconds(found.record.issued_at),
                found.record.order_url,
                crate::time::utc_seconds(found.not_after),
                found.dir.display(),
                names.join(", ")
            ),
        ));
        let outcome = Outcome::Issued {
            material: found.material,
            stored: found.dir,
            order_url: found.record.order_url,
            names,
            not_after: found.not_after,
            reused: Some(found.record.issued_at),
        };
        return StepReport { outcome, notices };
    }
    if pending.is_none() {
        match state.limits() {
            Ok(limits) => {
                let setup = setup_fingerprint(acme, &names);
                if let Some(blocked) = limits.blocked(&names, &setup, now, acme.max_orders_per_day) {
                    // --force goes past our own back-off and the cap, never past the CA's Retry-After.
                    let ca_until = limits.ca_retry_after.filter(|until| *until > now);
                    if options.force && ca_until.is_none() {
                        let mut event = HistoryEvent::new("forced", now);
                        event.directory_url = Some(acme.directory_url.clone());
                        event.names = names.clone();
                        event.detail = Some(format!("--force: {blocked}"));
                        let _ = state.log(&event);
                        notices.push(notice(
                            Level::Warning,
                            format!("--force: an order is opened although {blocked}."),
                        ));
                    } else {
                        let until = blocked.until().max(ca_until.unwrap_or(0));
                        let reason = blocked.to_string();
                        let force = if ca_until.is_some() {
                            " (not even with --force: the certificate authority asked for that time)"
                        } else {
                            "; --force orders now"
                        };
                        notices.push(notice(
                            Level::Warning,
                            format!(
                                "No certificate was ordered from {}: {reason}. The next attempt is due at {}: a \
                                 later run orders then by itself{force}.",
                                acme.directory_url,
                                crate::time::utc_seconds(until)
                            ),
                        ));
                        return StepReport {
                            outcome: Outcome::NotOrdered { reason, retry_at: Some(until) },
                            notices,
                        };
                    }
                }
            }
            Err(e) => return failed(e, notices),
        }
    }

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return failed(
                AcmeError::Protocol { step: "start the ACME client", reason: e.to_string() },
                notices,
            );
        }
    };
    // The certificate a new order replaces (a resumed order already is what it is).
    let replaced = match pending {
        Some(_) => None,
        None => {
            let (replaced, notes) = runtime.block_on(replaces::choose(config, acme, &state, &names, now));
            notices.extend(notes.into_iter().map(|n| notice(Level::Info, n)));
            replaced
        }
    };
    // One HTTP client for the whole order: it remembers the CA's last Retry-After.
    let http = match client::ReqwestHttp::new(acme.ca_bundle.as_deref()) {
        Ok(http) => http,
        Err(e) => return failed(e, notices),
    };
    let ctx = order::Ctx {
        acme,
        names: &names,
        state: &state,
        now,
        replaces: replaced.as_ref(),
        http: http.clone(),
        notices: std::sync::Mutex::new(Vec::new()),
    };
    let driven = runtime.block_on(order::drive(&ctx, pending));
    notices.extend(ctx.notices.into_inner().unwrap_or_default());
    // Closes the challenge listener and every connection for good.
    drop(runtime);

    let report = match driven {
        Ok(order::Progress::Issued { chain_pem, key_pem, order_url, account, .. }) => finish_issued(
            config, acme, &state, &names, chain_pem, key_pem, &order_url, &account, now, notices,
        ),
        Ok(order::Progress::Pending { order_url, status, reason, resumed }) => {
            let mut event = HistoryEvent::new("order-pending", now);
            event.order_url = Some(order_url.clone());
            event.detail = Some(reason.clone());
            let _ = state.log(&event);
            // The CA's Retry-After on its last answer (RFC 8555 §7.4: look at a processing order
            // again after it): no run resumes the order before then; at most 7 days on.
            let answered = unix_now();
            let ca_until = http
                .last_answer()
                .and_then(|answer| answer.retry_after)
                .filter(|until| *until > answered)
                .map(|until| until.min(answered.saturating_add(client::MAX_CA_RETRY_AFTER_SECS)));
            match state.pending() {
                Ok(Some(mut p)) if p.retry_after != ca_until => {
                    p.retry_after = ca_until;
                    if let Err(e) = state.save_pending(&p) {
                        notices.push(notice(Level::Warning, e.to_string()));
                    }
                }
                Ok(_) => {}
                Err(e) => notices.push(notice(Level::Warning, e.to_string())),
            }
            let next = match ca_until {
                Some(until) => format!(
                    "No run resumes it before {} (the certificate authority's Retry-After).",
                    crate::time::utc_seconds(until)
                ),
                None => "The next run resumes it.".to_string(),
            };
            notices.push(notice(
                Level::Warning,
                format!(
                    "The certificate order {order_url} ({}) is still {status}: {reason}. {next}",
                    if resumed { "resumed" } else { "new" }
                ),
            ));
            if options.allow_retry && !options.no_retry {
                let scheduled = retry::schedule(&state, &options.config_path, unix_now(), ca_until);
                retry_notices(scheduled, &mut notices);
            }
            return StepReport { outcome: Outcome::Pending { order_url, status, reason }, notices };
        }
        Err(error) => {
            let still = state.pending().ok().flatten();
            let order_is_dead = matches!(error, AcmeError::Refused { .. } | AcmeError::OrderInvalid { .. });
            if let Some(p) = still.as_ref().filter(|_| order_is_dead) {
                for w in challenge::cleanup(&p.artifacts, &acme.challenge) {
                    notices.push(notice(Level::Warning, w));
                }
                let _ = state.clear_pending();
            }
            if error.counts_as_failed_order() {
                match state.limits() {
                    Ok(mut limits) => {
                        let setup = setup_fingerprint(acme, &names);
                        // No answer at all: a brief back-off that grows; a CA that answered keeps
                        // its own rules (an hour, doubling; its Retry-After below).
                        if matches!(error, AcmeError::Unreachable { .. }) {
                            limits.unreachable(&error.to_string(), &setup, now, state::jitter());
                        } else {
                            limits.failed(&error.to_string(), &setup, now);
                        }
                        // RFC 8555 §6.6: a rate-limited (or unavailable) CA says when to come back.
                        let asked = http.ca_asked_to_wait(&error, unix_now());
                        if let Some(wait) = &asked {
                            limits.ca_asked(wait.until);
                        }
                        let _ = state.save_limits(&limits);
                        if let Some(until) = limits.backoff_until {
                            notices
                                .push(notice(Level::Warning, next_attempt(&limits, asked.as_ref(), until)));
                        }
                    }
                    Err(e) => notices.push(notice(Level::Warning, e.to_string())),
                }
            }
            let mut event = HistoryEvent::new("order-failed", now);
            event.directory_url = Some(acme.directory_url.clone());
            event.order_url = still.map(|p| p.url);
            event.names = names.clone();
            event.detail = Some(error.to_string());
            event.problem = error.problem().cloned();
            let _ = state.log(&event);
            failed(error, notices)
        }
    };
    // The order is over (issued, or failed for good): a queued re-check has nothing left to do.
    // An order still pending after a failure (the CA unreachable, a 503) keeps its re-check.
    let mut report = report;
    if matches!(state.pending(), Ok(None))
        && let Some(message) = retry::cancel(&state, now)
    {
        report.notices.push(notice(Level::Info, message));
    }
    report
}

/// A pending order the CA asked not to look at before `until`, so this run did not: with
/// `--allow-retry` the re-check is queued for then (a waiting one that runs earlier is replaced);
/// and the queued re-check itself, woken before then, queues itself again for then — the one
/// re-check is not used up by a run that could not look at the order. Any other run (`--no-retry`
/// by hand, a plain run) queues nothing.
fn recheck_at_the_cas_time(state: &StateDir, options: &StepOptions, until: i64, notices: &mut Vec<Notice>) {
    if options.allow_retry && !options.no_retry {
        retry_notices(retry::schedule(state, &options.config_path, unix_now(), Some(until)), notices);
        return;
    }
    let token = std::env::var(retry::RETRY_JOB_ENV).ok();
    if let Some(job) = retry::recheck(state, token.as_deref()) {
        notices.push(notice(
            Level::Info,
            format!(
                "This run is the queued re-check ({} job {}), woken before the time the certificate authority \
                 asked for: it is queued again for that time.",
                job.scheduler, job.id
            ),
        ));
        retry_notices(retry::schedule(state, &options.config_path, unix_now(), Some(until)), notices);
    }
}

/// The notices of [`retry::schedule`]'s result.
fn retry_notices(scheduled: Result<retry::Scheduled, String>, notices: &mut Vec<Notice>) {
    match scheduled {
        Ok(retry::Scheduled::New { record, delay, replaced, warning }) => {
            if let Some(old) = replaced {
                notices.push(notice(
                    Level::Info,
                    format!(
                        "The queued re-check ({} job {}) would have run at {}, before the time the certificate \
                         authority asked for; it was removed.",
                        old.scheduler,
                        old.id,
                        crate::time::utc_seconds(old.runs_at)
                    ),
                ));
            }
            notices.push(notice(
                Level::Info,
                format!(
                    "A re-check runs at {} ({}; {} job {}: {}).",
                    crate::time::utc_seconds(record.runs_at),
                    delay.reason(),
                    record.scheduler,
                    record.id,
                    record.command.join(" ")
                ),
            ));
            if let Some(warning) = warning {
                notices.push(notice(Level::Warning, format!("--allow-retry: {warning}")));
            }
        }
        Ok(retry::Scheduled::Existing(record)) => notices.push(notice(
            Level::Info,
            format!(
                "A re-check is already queued ({} job {}, at {}); none was added.",
                record.scheduler,
                record.id,
                crate::time::utc_seconds(record.runs_at)
            ),
        )),
        Err(e) => notices.push(notice(Level::Warning, format!("--allow-retry: {e}"))),
    }
}

/// When the next new order may be opened, after a failure, and why then.
fn next_attempt(limits: &state::Limits, asked: Option<&client::CaWait>, until: i64) -> String {
    match asked {
        Some(wait) if wait.until >= until => format!(
            "The certificate authority asked not to be sent another request before {} ({wait}), so no new \
             order is opened before then.",
            crate::time::utc_seconds(wait.until)
        ),
        Some(wait) => format!(
            "The certificate authority asked not to be sent another request before {} ({wait}); after {} \
             failed order(s) in a row, no new order is opened before {} (back-off).",
            crate::time::utc_seconds(wait.until),
            limits.consecutive_failures,
            crate::time::utc_seconds(until)
        ),
        None => format!(
            "After {} failed order(s) in a row, no new order is opened before {} (back-off).",
            limits.consecutive_failures,
            crate::time::utc_seconds(until)
        ),
    }
}

/// The SHA-256 fingerprints (hex) of the leaf certificates the services hold now.
pub(crate) fn installed_fingerprints(config: &Config) -> Vec<String> {
    config
        .services
        .iter()
        .filter_map(|service| {
            let pem = crate::fs::read_bounded(&service.certificate, crate::fs::limits::PEM_FILE).ok()?;
            let leaf = openssl::x509::X509::stack_from_pem(&pem).ok()?.into_iter().next()?;
            let der = leaf.to_der().ok()?;
            Some(crate::facts::certificate_facts(&leaf, &der).sha256_fingerprint)
        })
        .collect()
}

/// Retention of `issued/` (`acme.keep-issued`, `acme.keep-issued-days`; see
/// [`StateDir::prune_issued`]): run after each certificate is stored, so the one just issued is
/// the newest and the one the services hold now is kept.
fn prune_issued(config: &Config, acme: &AcmeConfig, state: &StateDir, now: i64, notices: &mut Vec<Notice>) {
    let max_age = i64::try_from(acme.keep_issued_for.as_secs()).unwrap_or(i64::MAX);
    let (removed, problems) =
        state.prune_issued(acme.keep_issued, max_age, now, &installed_fingerprints(config));
    for dir in &removed {
        let mut event = HistoryEvent::new("issued-pruned", now);
        event.stored = Some(dir.clone());
        let _ = state.log(&event);
    }
    if !removed.is_empty() {
        notices.push(notice(
            Level::Info,
            format!(
                "Pruned {} issued certificate(s) and their keys from {} (acme.keep-issued = {}, \
                 acme.keep-issued-days = {}).",
                removed.len(),
                state.path().join("issued").display(),
                acme.keep_issued,
                acme.keep_issued_for.as_secs() / 86_400
            ),
        ));
    }
    for problem in problems {
        notices.push(notice(Level::Warning, problem));
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_issued(
    config: &Config,
    acme: &AcmeConfig,
    state: &StateDir,
    names: &[String],
    chain_pem: String,
    key_pem: zeroize::Zeroizing<Vec<u8>>,
    order_url: &str,
    account: &str,
    now: i64,
    mut notices: Vec<Notice>,
) -> StepReport {
    let pending = state.pending().ok().flatten();
    let material = match order::material_from(&chain_pem, key_pem) {
        Ok(m) => m,
        Err(reason) => {
            let _ = state.clear_pending();
            let error = AcmeError::Protocol { step: "download the certificate", reason };
            notices.push(notice(Level::Error, format!("No certificate was issued: {error}")));
            return StepReport { outcome: Outcome::Failed { error }, notices };
        }
    };
    // Checked at the current time: the certificate may be younger than this run.
    let check = order::verify_issued(&material, names, &config.trust, &acme.issuer_roots, unix_now());
    let leaf_facts = openssl::x509::X509::from_pem(&material.certificate_pem).ok().and_then(|leaf| {
        let der = leaf.to_der().ok()?;
        Some(crate::facts::certificate_facts(&leaf, &der))
    });
    let record = IssuedRecord {
        directory_url: acme.directory_url.clone(),
        account: account.to_owned(),
        order_url: order_url.to_owned(),
        names: names.to_vec(),
        issued_at: now,
        not_after: leaf_facts.as_ref().map_or(0, |f| f.not_after),
        sha256_fingerprint: leaf_facts.map(|f| f.sha256_fingerprint).unwrap_or_default(),
        accepted: check.is_ok(),
        rejected_because: check.as_ref().err().cloned(),
        replaces: pending.as_ref().and_then(|p| p.replaces.clone()),
    };
    let stored = match state.store_issued(&material, &record, now) {
        Ok(dir) => dir,
        Err(error) => {
            notices.push(notice(Level::Error, format!("No certificate was issued: {error}")));
            return StepReport { outcome: Outcome::Failed { error }, notices };
        }
    };
    if let Some(p) = &pending {
        for w in challenge::cleanup(&p.artifacts, &acme.challenge) {
            notices.push(notice(Level::Warning, w));
        }
    }
    let _ = state.clear_pending();
    prune_issued(config, acme, state, now, &mut notices);
    let mut limits = state.limits().unwrap_or_default();
    let mut event = HistoryEvent::new("issued", now);
    event.order_url = Some(order_url.to_owned());
    event.account = Some(account.to_owned());
    event.names = names.to_vec();
    event.stored = Some(stored.clone());
    event.replaces = record.replaces.clone();
    match check {
        Ok(issued) => {
            limits.succeeded();
            let _ = state.save_limits(&limits);
            let _ = state.log(&event);
            notices.push(notice(
                Level::Info,
                format!(
                    "{} issued a certificate for {} valid until {} (order {order_url}{}); kept in {}.",
                    acme.directory_url,
                    names.join(", "),
                    crate::time::utc_seconds(issued.not_after),
                    record.replaces.as_ref().map(|id| format!(", replacing {id}")).unwrap_or_default(),
                    stored.display()
                ),
            ));
            StepReport {
                outcome: Outcome::Issued {
                    material,
                    stored,
                    order_url: order_url.to_owned(),
                    names: names.to_vec(),
                    not_after: issued.not_after,
                    reused: None,
                },
                notices,
            }
        }
        Err(reason) => {
            limits.failed(&reason, &setup_fingerprint(acme, names), now);
            let _ = state.save_limits(&limits);
            event.event = "verification-failed".into();
            event.detail = Some(reason.clone());
            let _ = state.log(&event);
            let error = AcmeError::Verification { reason, kept: stored };
            notices.push(notice(Level::Error, format!("No certificate was installed: {error}")));
            StepReport { outcome: Outcome::Failed { error }, notices }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn internal_names_are_orderable_from_a_private_ca_only() {
        let load = |acme: &str| {
            crate::config::from_str(
                &format!("hostname = \"h.example.com\"\nstate-dir = \"/tmp/x\"\n[acme]\n{acme}\n"),
                Path::new("/etc/c.toml"),
            )
            .expect("config")
            .acme
            .expect("acme")
        };
        let lets_encrypt = load("");
        let pebble = load("directory = \"https://127.0.0.1:14000/dir\"");
        let explicit = load("directory = \"https://acme.zerossl.com/v2/DV90\"\npublic = false");
        for name in ["host.corp.internal", "nas.lan", "ci.test", "box.localdomain", "router.home.arpa"] {
            assert!(!hostname_orderable(&lets_encrypt, name), "{name}: not from a public CA");
            assert!(hostname_orderable(&pebble, name), "{name}: a directory on loopback is a private CA");
            assert!(hostname_orderable(&explicit, name), "{name}: public = false");
        }
        for name in ["www.example.org", "host.example.com."] {
            assert!(hostname_orderable(&lets_encrypt, name) && hostname_orderable(&pebble, name), "{name}");
        }
        for name in ["server1", "localhost", "10.0.0.1", "bad_name.internal", ""] {
            assert!(!hostname_orderable(&pebble, name), "{name}: not a qualified DNS name for any CA");
        }
    }

    #[test]
    fn order_names_are_the_hostname_extra_names_and_service_names_once() {
        let config = crate::config::from_str(
            "hostname = \"Host.Example.com\"\nstate-dir = \"/tmp/x\"\n[acme]\nextra-names = [\"www.example.com\"]\n\
             [[service]]\nname = \"a\"\ncertificate = \"/a.pem\"\nkey = \"/a.key\"\nnames = [\"mail.example.com\", \"www.example.com\", \"192.0.2.1\"]\n",
            Path::new("/etc/c.toml"),
        )
        .expect("config");
        let acme = config.acme.as_ref().expect("acme");
        assert_eq!(
            order_names(&config, acme),
            vec!["host.example.com", "www.example.com", "mail.example.com"]
        );
    }

    #[test]
    fn facts_read_the_pending_order_and_back_off_without_creating_anything() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n[acme]\ndirectory = \"https://ca.example.com/dir\"\n",
            tmp.path().join("state").display()
        );
        let config = crate::config::from_str(&text, Path::new("/etc/c.toml")).expect("config");
        let (acme, groups, notices) = super::facts(&config, 1_000);
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(acme.expect("acme facts").directory_url, "https://ca.example.com/dir");
        assert_eq!(groups.len(), 1, "the hostname group alone");
        let first = &groups[0];
        assert_eq!(
            (first.name.as_str(), first.names.as_slice()),
            ("hostname", ["host.example.com".to_string()].as_slice())
        );
        assert_eq!((&first.pending_order, first.next_order_not_before), (&None, None));
        assert!(!tmp.path().join("state").exists(), "reading facts creates nothing");

        let state = StateDir::open(&config.state_dir).expect("open");
        state
            .save_pending(&state::PendingState {
                directory_url: "https://ca.example.com/dir".into(),
                account: "https://ca.example.com/acct/1".into(),
                url: "https://ca.example.com/order/7".into(),
                created: 900,
                names: vec!["host.example.com".into()],
                status: "processing".into(),
                checked: 950,
                key_sent: true,
                artifacts: Vec::new(),
                replaces: None,
                retry_after: None,
            })
            .expect("save");
        let mut limits = state::Limits::default();
        let acme = config.acme.as_ref().expect("acme");
        limits.failed("rate limited", &setup_fingerprint(acme, &order_names(&config, acme)), 1_000);
        state.save_limits(&limits).expect("limits");
        let second = super::facts(&config, 1_000).1.remove(0);
        let pending = second.pending_order.expect("pending");
        assert_eq!(
            (pending.url.as_str(), pending.status.as_str(), pending.created),
            ("https://ca.example.com/order/7", "processing", 900)
        );
        assert_eq!(second.next_order_not_before, Some(1_000 + 3600));
    }

    #[test]
    fn a_pending_order_waits_for_the_cas_retry_after_without_contacting_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Nothing listens on port 1: contacting the CA would fail the step.
        let text = format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\n",
            tmp.path().join("state").display()
        );
        let config = crate::config::from_str(&text, Path::new("/etc/c.toml")).expect("config");
        let state = StateDir::open(&config.state_dir).expect("open");
        let now = unix_now();
        state
            .save_pending(&state::PendingState {
                directory_url: "https://127.0.0.1:1/dir".into(),
                account: "https://127.0.0.1:1/acct/1".into(),
                url: "https://127.0.0.1:1/order/7".into(),
                created: now - 60,
                names: vec!["host.example.com".into()],
                status: "processing".into(),
                checked: now - 60,
                key_sent: true,
                artifacts: Vec::new(),
                replaces: None,
                retry_after: None,
            })
            .expect("save");
        let mut limits = state::Limits::default();
        let acme = config.acme.as_ref().expect("acme");
        limits.failed("503", &setup_fingerprint(acme, &order_names(&config, acme)), now);
        limits.ca_asked(now + 600);
        state.save_limits(&limits).expect("limits");

        let report = super::order(&config, &StepOptions::default(), now);
        let Outcome::Pending { reason, order_url, .. } = &report.outcome else {
            panic!("{:?}", report.outcome)
        };
        assert_eq!(order_url, "https://127.0.0.1:1/order/7");
        assert!(
            reason.contains(&crate::time::utc_seconds(now + 600)) && reason.contains("Retry-After"),
            "{reason}"
        );
        assert!(reason.contains("https://127.0.0.1:1/order/7 is resumed after that"), "{reason}");
        assert!(state.pending().expect("pending").is_some(), "the order stays pending");

        // Once the time has passed, the order is resumed (here: the CA is unreachable).
        let report = super::order(&config, &StepOptions::default(), now + 601);
        assert!(
            matches!(report.outcome, Outcome::Failed { error: AcmeError::Unreachable { .. } }),
            "{:?}",
            report.outcome
        );
        // A failure the order survives (it is still pending) is not the end of the order.
        assert!(state.pending().expect("pending").is_some());

        // The order's own Retry-After (RFC 8555 §7.4: a processing order, pending.json) holds the
        // order back the same way, without a rate limit.
        state.save_limits(&state::Limits::default()).expect("limits");
        let mut pending = state.pending().expect("pending").expect("still pending");
        pending.retry_after = Some(now + 900);
        state.save_pending(&pending).expect("save");
        let report = super::order(&config, &StepOptions::default(), now);
        let Outcome::Pending { reason, .. } = &report.outcome else { panic!("{:?}", report.outcome) };
        assert!(
            reason.starts_with(&format!(
                "the certificate authority asked to look at the order again at {} (Retry-After)",
                crate::time::utc_seconds(now + 900)
            )),
            "{reason}"
        );
        // Neither --allow-retry nor the re-check's own run: nothing is queued.
        assert!(state.retry().expect("retry").is_none());
        assert_eq!(report.notices.len(), 1, "{:?}", report.notices);
        let report = super::order(&config, &StepOptions::default(), now + 901);
        assert!(matches!(report.outcome, Outcome::Failed { .. }), "{:?}", report.outcome);
    }
}
