//! The main run, step by step: config → facts → policy → plan → actions → report.
//!
//! Each step lives in its own module; this one only strings them together, decides the exit
//! code, and makes sure one failing service never stops the others.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::acme::Outcome as AcmeOutcome;
use crate::actions::install::{self, InstallTarget};
use crate::actions::reload::ReloadCommand;
use crate::actions::{self, lock, placeholder};
use crate::config::{Config, ServiceConfig};
use crate::exit;
use crate::facts::{self, model::HostFacts};
use crate::plan::model::{Decision, Level, Metadata, Notice, Plan};
use crate::policy::{PolicyError, PolicyModule, Runtime};
use crate::report::progress::Progress;
use crate::report::{
    ActionKind, ActionReport, CertificateSummary, PolicyInfo, REPORT_VERSION, RunReport, ServiceReport,
};
use crate::time::unix_now;

/// How the main run was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Change nothing: no lock, no install, no order, no cache written (network, compiled
    /// policy, verification memo: they are read), the state directory never created.
    pub dry_run: bool,
    /// A policy module given on the command line, over the configured one.
    pub policy: Option<PathBuf>,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
    /// `--allow-retry`: if the CA is still processing the order, queue a re-check in an hour.
    pub allow_retry: bool,
    /// `--no-retry`: never queue a re-check.
    pub no_retry: bool,
    /// `--force`: open an order in this run whatever the back-off and the daily cap.
    pub force: bool,
    /// Show a progress bar on the terminal (see `report::progress`).
    pub progress: bool,
    /// `--metrics-file`: where to write the Prometheus metrics, over `[metrics] textfile`.
    pub metrics_file: Option<PathBuf>,
    /// `--at`: evaluate as of this time (Unix seconds) instead of now; dry runs only.
    pub at: Option<i64>,
}

/// Why a run could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Lock(#[from] crate::actions::errors::LockError),
    #[error("cannot prepare the state directory: {0}")]
    StateDir(#[from] crate::actions::errors::ActionError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error(
        "--at evaluates the certificates at another time, which only a dry run may do: add --dry-run \
         (a real run acts on the certificates as they are now)"
    )]
    AtNeedsDryRun,
    /// A failure that kept the run from starting, and what became of the mail about it.
    #[error("{error}\n{mail}")]
    Mailed { error: Box<RunError>, mail: String },
}

impl RunError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) | RunError::AtNeedsDryRun => exit::USAGE,
            // 73 only when another run holds the lock: a lock file that cannot be used (a full
            // or read-only disk) is an error, which the nightly unit must not take for success.
            RunError::Lock(crate::actions::errors::LockError::Busy { .. }) => exit::LOCKED,
            RunError::Lock(_) | RunError::StateDir(_) | RunError::Policy(_) => exit::ERRORS,
            RunError::Mailed { error, .. } => error.exit_code(),
        }
    }
}

/// Runs the whole job with the configuration at `config_path`.
pub fn run(config_path: &Path, options: &RunOptions) -> Result<RunReport, RunError> {
    let config = crate::config::load(config_path)?;
    run_with(&config, options)
}

/// The facts a run hands the policy (`policy facts` prints them): the run's configuration (with
/// discovered services when none is configured), as of `at` (default now), gathered as a dry run
/// gathers them (no lock, no cache writes); and the host's warnings about them.
pub fn facts(config_path: &Path, at: Option<i64>) -> Result<(HostFacts, Vec<Notice>), RunError> {
    let config = crate::config::load(config_path)?;
    let (discovered, mut notices) = with_discovered(&config);
    let config = discovered.as_ref().unwrap_or(&config);
    let (facts, _) = gather_facts(config, at.unwrap_or_else(unix_now), true, &mut notices);
    Ok((facts, notices))
}

/// A warning of the host's own (about no one service).
fn host_warning(message: String) -> Notice {
    Notice { level: Level::Warning, service: None, message }
}

/// The configuration's warnings as notices; and, with no `[[service]]` configured, the
/// configuration with the services discovered from the daemons' configuration (what discovery
/// said joins the notices).
fn with_discovered(config: &Config) -> (Option<Config>, Vec<Notice>) {
    let mut notices: Vec<Notice> = config.warnings.iter().map(|w| host_warning(w.to_string())).collect();
    let discovered = crate::discovery::for_run(config).map(|(with, messages)| {
        notices.extend(messages.into_iter().map(host_warning));
        with
    });
    (discovered, notices)
}

/// Gathers every fact of a run: files, live probes, ACME groups, network facts.
fn gather_facts(
    config: &Config,
    now: i64,
    dry_run: bool,
    host_notices: &mut Vec<Notice>,
) -> (HostFacts, crate::facts::network::NetworkReport) {
    // A real run keeps what it proved about signatures and keys for the next; a dry run only
    // reads that memo.
    let memo = if dry_run { facts::MemoUse::Read } else { facts::MemoUse::ReadWrite };
    let gathered = facts::gather_with(config, &facts::FactsOptions { now, memo });
    host_notices.extend(gathered.memo_problems.iter().map(|problem| Notice {
        level: if problem.is_warning() { Level::Warning } else { Level::Info },
        service: None,
        message: problem.to_string(),
    }));
    let mut facts = gathered.facts;
    // What each service's endpoints serve (live probes), compared with its files.
    crate::probe::observe_config(config, &mut facts);
    host_notices.extend(gathered.notices.into_iter().map(host_warning));
    let (acme_facts, groups, acme_notices) = crate::acme::facts(config, now);
    facts.acme = acme_facts;
    facts.groups = groups;
    // A private CA (acme.public = false, or a directory not a public CA's) issues for internal names.
    if let Some(acme) = &config.acme {
        facts.hostname_is_fqdn = crate::acme::hostname_orderable(acme, &facts.hostname);
    }
    host_notices.extend(acme_notices.into_iter().map(host_warning));
    // Revocation, hostname DNS, CAA and ARI: facts from the network (a dry run writes no cache).
    let network = facts::network::enrich_with(config, &mut facts, dry_run, &gathered.network_free);
    host_notices.extend(network.notices.into_iter().map(host_warning));
    (facts, network.report)
}

/// Runs the whole job with a loaded configuration.
pub fn run_with(config: &Config, options: &RunOptions) -> Result<RunReport, RunError> {
    if options.at.is_some() && !options.dry_run {
        return Err(RunError::AtNeedsDryRun);
    }
    let now = options.at.unwrap_or_else(unix_now);
    let (discovered, mut host_notices) = with_discovered(config);
    let config = discovered.as_ref().unwrap_or(config);

    // Changing runs take the lock and finish what a killed run left half done.
    let mut recovered: Vec<(String, ActionReport)> = Vec::new();
    let _lock = if options.dry_run {
        None
    } else {
        let lock = actions::ensure_state_dir(&config.state_dir)
            .map_err(RunError::from)
            .and_then(|()| lock::acquire(&config.state_dir, options.lock_wait).map_err(RunError::from))
            .map_err(|error| mail_start_failure(config, error))?;
        let targets: Vec<InstallTarget> = config.services.iter().map(install_target).collect();
        for report in install::recover(&config.state_dir, &targets) {
            let ok = report.is_ok();
            recovered.push((
                report.service.clone(),
                ActionReport {
                    kind: ActionKind::Recover,
                    outcome: if ok { "done" } else { "failed" },
                    message: report.to_string(),
                },
            ));
        }
        Some(lock)
    };

    // A real run keeps compiled modules in the state dir; a dry run only reads them there (or in
    // the user's cache, where `policy test` keeps them when the state dir is not this user's).
    let runtime = if options.dry_run {
        Runtime::reading_cache(crate::policy::cache::dir_for(&config.state_dir))?
    } else {
        Runtime::new(Some(config.state_dir.join("cache")))?
    };
    let runtime = &runtime;
    let progress = Progress::new(options.progress);
    progress.stage(&format!("checking services: {}", config.services.len()), 0);
    let embedded_policy = matches!(
        crate::policy_store::select::choose(config, options.policy.as_deref()),
        Ok(crate::policy_store::select::Choice::Embedded)
    );
    let (mut facts, network_report) = std::thread::scope(|scope| {
        if embedded_policy {
            // Compiles the default policy on another thread while the facts are gathered.
            scope.spawn(|| runtime.load_embedded().is_ok());
        }
        gather_facts(config, now, options.dry_run, &mut host_notices)
    });
    let (module, metadata, plan, fallback_from, policy_log) =
        decide(runtime, config, options, &facts, &mut host_notices)?;
    let acme = acme_steps(config, options, &plan, now);
    host_notices.extend(acme.values().flat_map(|step| step.notices.iter().cloned()));

    let mut services = Vec::with_capacity(facts.services.len());
    progress.stage("acting on the plan", facts.services.len());
    let by_name = config.services_by_name();
    // The facts move into the report (10,000 services' facts are not worth copying).
    for (service_facts, decision) in std::mem::take(&mut facts.services).into_iter().zip(&plan.services) {
        progress.step();
        let service = by_name.get(service_facts.name.as_str()).copied();
        let mut actions: Vec<ActionReport> = recovered
            .iter()
            .filter(|(name, _)| *name == service_facts.name)
            .map(|(_, a)| a.clone())
            .collect();
        if let Some(service) = service {
            let issued = acme.get(service.certificate_group.as_str());
            actions.extend(act(config, service, decision.decision, options.dry_run, now, issued));
            host_notices.extend(crate::probe::notices_for(&service.name, &actions));
        }
        services.push(ServiceReport {
            name: service_facts.name.clone(),
            certificate: CertificateSummary::of(&service_facts.certificate, now),
            decision: decision.decision,
            reasons: decision.reasons.clone(),
            actions,
            facts: service_facts,
        });
    }
    for (name, action) in &recovered {
        if config.service(name).is_none() {
            host_notices.push(Notice {
                level: if action.failed() { Level::Error } else { Level::Warning },
                service: None,
                message: format!("journal of a service no longer configured: {}", action.message),
            });
        }
    }

    let mut notices = plan.notices.clone();
    notices.extend(host_notices);
    settle_fixed(&services, &mut notices);
    let failed = services.iter().flat_map(|s| &s.actions).any(ActionReport::failed);
    let errors = notices.iter().any(|n| n.level == Level::Error);
    let outcomes = || acme.values().map(|step| &step.outcome);
    let exit_code = if outcomes().any(|o| matches!(o, AcmeOutcome::Failed { .. })) {
        exit::ACME_FAILED
    } else if failed || errors || fallback_from.is_some() {
        exit::ERRORS
    } else if outcomes()
        .any(|o| matches!(o, AcmeOutcome::Pending { .. } | AcmeOutcome::NotOrdered { retry_at: Some(_), .. }))
    {
        // Pending at the CA, or held back (back-off, daily cap): a later run orders by itself.
        exit::RETRY_PENDING
    } else {
        exit::OK
    };
    let mut report = RunReport {
        report_version: REPORT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: facts.hostname.clone(),
        started_at: now,
        dry_run: options.dry_run,
        policy: PolicyInfo {
            name: metadata.name,
            version: metadata.version,
            contract_version: metadata.contract_version,
            sha256: module.sha256.clone(),
            source: module.label(),
            fallback_from,
            log: policy_log.lines,
            log_dropped: policy_log.dropped,
        },
        order_hostname_certificate: !plan.orders.is_empty(),
        orders: plan.orders.iter().map(|o| o.group.clone()).collect(),
        network: network_report,
        services,
        notices,
        exit_code,
    };
    tell(config, options, &mut report, &progress);
    Ok(report)
}

/// A run that cannot use its state directory checks and changes nothing: the administrator
/// hears of it by mail where mail is possible (another run holding the lock is not a failure).
fn mail_start_failure(config: &Config, error: RunError) -> RunError {
    if matches!(error, RunError::Lock(crate::actions::errors::LockError::Busy { .. })) || !config.mail.enabled
    {
        return error;
    }
    let mail = match crate::notify::mail_failure(config, &error.to_string()) {
        Ok(via) => format!("The administrator was told by mail ({}, via {via}).", config.mail.to.join(", ")),
        Err(why) => format!("The mail to the administrator could not be sent either: {why}"),
    };
    RunError::Mailed { error: Box::new(error), mail }
}

/// A problem found and fixed in the same run is reported, but is not an error: the exit code
/// describes the end state. A service whose replacement was installed (and verified where it
/// can be) and none of whose actions failed now holds a CA-issued certificate, so the errors
/// naming it become information, marked "fixed in this run". A placeholder fixes nothing: the
/// service then holds a self-signed certificate, and its errors stand.
fn settle_fixed(services: &[ServiceReport], notices: &mut [Notice]) {
    let fixed: std::collections::HashSet<&str> = services
        .iter()
        .filter(|s| {
            s.actions.iter().any(|a| a.kind == ActionKind::InstallReplacement && a.outcome == "done")
                && !s.actions.iter().any(ActionReport::failed)
        })
        .map(|s| s.name.as_str())
        .collect();
    for notice in notices.iter_mut() {
        if notice.level == Level::Error && notice.service.as_deref().is_some_and(|s| fixed.contains(s)) {
            notice.level = Level::Info;
            notice.message.push_str(" (fixed in this run: the certificate was replaced)");
        }
    }
}

/// Tells the world about a changing run (a dry run changes nothing and tells nothing): writes
/// the Prometheus metrics file, then mails the administrator if there are new problems. Neither
/// changes the exit code; a failure becomes a warning in the report.
fn tell(config: &Config, options: &RunOptions, report: &mut RunReport, progress: &Progress) {
    if options.dry_run {
        return;
    }
    if let Some(path) = options.metrics_file.as_ref().or(config.metrics.textfile.as_ref()) {
        progress.stage("writing metrics", 0);
        // The order the ACME step left pending, if any (read back from the state directory).
        let pending_orders =
            crate::acme::facts(config, unix_now()).1.iter().filter(|g| g.pending_order.is_some()).count();
        if let Err(message) = crate::report::metrics::write(path, report, pending_orders) {
            report.notices.push(Notice { level: Level::Warning, service: None, message });
        }
    }
    if config.mail.enabled {
        progress.stage("mailing the administrator", 0);
        crate::notify::notify(config, report);
    }
    progress.finish();
}

/// Runs the chosen policy (`--policy` > `[policy] module` > the installed module > the embedded
/// default); if it fails, the last known good module or else the embedded default policy decides
/// instead, and the failure is reported as an error. See `policy_store::select`.
fn decide(
    runtime: &Runtime,
    config: &Config,
    options: &RunOptions,
    facts: &HostFacts,
    notices: &mut Vec<Notice>,
) -> Result<(PolicyModule, Metadata, Plan, Option<String>, crate::policy::PolicyLog), RunError> {
    let decided = crate::policy_store::select::decide(
        runtime,
        config,
        options.policy.as_deref(),
        facts,
        notices,
        options.dry_run,
    )?;
    Ok((decided.module, decided.metadata, decided.plan, decided.fallback_from, decided.log))
}

/// The ACME step: one order per group the plan orders, when a CA is configured, each with the
/// group's own names, key and state ([`Config::for_group`]). A dry run only says what it would
/// do and never contacts the CA.
fn acme_steps(
    config: &Config,
    options: &RunOptions,
    plan: &Plan,
    now: i64,
) -> std::collections::BTreeMap<String, crate::acme::StepReport> {
    let mut steps = std::collections::BTreeMap::new();
    for order in &plan.orders {
        let Some(scoped) = config.for_group(&order.group) else { continue };
        let step = if options.dry_run {
            crate::acme::planned(&scoped, now)
        } else {
            let step = crate::acme::StepOptions {
                allow_retry: options.allow_retry,
                no_retry: options.no_retry,
                config_path: config.path.clone(),
                force: options.force,
            };
            crate::acme::order(&scoped, &step, now)
        };
        steps.insert(order.group.clone(), step);
    }
    steps
}

/// Carries out one service's decision. `replace` and `replace-or-placeholder` get the
/// certificate issued in this run (`acme`); without one, `replace` keeps the current
/// certificate and `replace-or-placeholder` gets the placeholder (so does a service whose
/// replacement could not be installed).
fn act(
    config: &Config,
    service: &ServiceConfig,
    decision: Decision,
    dry_run: bool,
    now: i64,
    acme: Option<&crate::acme::StepReport>,
) -> Vec<ActionReport> {
    let unavailable = |message: String| ActionReport {
        kind: ActionKind::ReplacementUnavailable,
        outcome: "skipped",
        message,
    };
    const KEPT: &str = "the current certificate stays";
    if service.check_only {
        return match decision {
            Decision::Keep => Vec::new(),
            _ => vec![unavailable(
                "the service is check-only: nothing is installed into it; replace its certificate where its key \
                 lives"
                    .into(),
            )],
        };
    }
    match (decision, acme.map(|step| (&step.outcome, step))) {
        (Decision::Keep, _) => Vec::new(),
        (Decision::Placeholder, _) => vec![install_placeholder(config, service, dry_run, now)],
        (
            Decision::Replace | Decision::ReplaceOrPlaceholder,
            Some((AcmeOutcome::Issued { material, order_url, reused, .. }, _)),
        ) => {
            let origin = match reused {
                Some(at) => format!(
                    "the certificate issued by order {order_url} (reused the certificate issued at {} instead of \
                     ordering again)",
                    crate::time::utc_seconds(*at)
                ),
                None => format!("the certificate issued by order {order_url}"),
            };
            let installed = install_replacement(config, service, material, &origin);
            if installed.failed() && decision == Decision::ReplaceOrPlaceholder {
                vec![installed, install_placeholder(config, service, dry_run, now)]
            } else {
                vec![installed]
            }
        }
        (Decision::Replace, Some((_, step))) if dry_run => vec![ActionReport {
            kind: ActionKind::InstallReplacement,
            outcome: "planned",
            message: format!(
                "would install the certificate ordered in this run into {} ({})",
                service.certificate.display(),
                step.summary()
            ),
        }],
        (Decision::Replace, Some((_, step))) => vec![unavailable(format!(
            "a replacement is wanted, but no certificate was issued in this run ({}); {KEPT}",
            step.summary()
        ))],
        (Decision::Replace, None) => vec![unavailable(format!(
            "a replacement is wanted, but no certificate was issued in this run (no certificate authority \
             is configured); {KEPT}"
        ))],
        (Decision::ReplaceOrPlaceholder, Some((_, step))) if !dry_run => vec![
            unavailable(format!("no certificate was issued in this run ({})", step.summary())),
            install_placeholder(config, service, dry_run, now),
        ],
        (Decision::ReplaceOrPlaceholder, _) => vec![install_placeholder(config, service, dry_run, now)],
    }
}

/// Installs the certificate issued in this run, or reused (safe path: journal, backup, reload,
/// rollback); `origin`: which certificate, for the message.
fn install_replacement(
    config: &Config,
    service: &ServiceConfig,
    material: &placeholder::Material,
    origin: &str,
) -> ActionReport {
    let report = |outcome, message| ActionReport { kind: ActionKind::InstallReplacement, outcome, message };
    let reload = ReloadCommand::for_service(service);
    let check = crate::probe::AfterInstall::for_service(config, service);
    let check = check.as_ref().map(|c| c as &dyn install::PostReloadCheck);
    match install::install_checked(
        &config.state_dir,
        &install_target_for(config, service),
        material,
        reload.as_ref(),
        check,
    ) {
        Ok(done) => report(
            "done",
            format!(
                "installed {origin}{}{}; previous files kept in {}",
                if reload.is_some() { ", reloaded" } else { "" },
                crate::probe::AfterInstall::describe_success(done.verified.as_deref()),
                done.backup_dir.display()
            ),
        ),
        Err(e) => report("failed", e.to_string()),
    }
}

fn install_placeholder(config: &Config, service: &ServiceConfig, dry_run: bool, now: i64) -> ActionReport {
    let report = |outcome, message| ActionReport { kind: ActionKind::InstallPlaceholder, outcome, message };
    if dry_run {
        return report(
            "planned",
            format!(
                "would install a self-signed placeholder for {} into {}",
                config.hostname,
                service.certificate.display()
            ),
        );
    }
    let material = match placeholder::generate(
        &config.hostname,
        &service.names,
        config.placeholder.key,
        config.placeholder.validity_days,
        now,
    ) {
        Ok(m) => m,
        Err(e) => return report("failed", format!("cannot make a placeholder: {e}")),
    };
    let target = install_target_for(config, service);
    let reload = ReloadCommand::for_service(service);
    let check = crate::probe::AfterInstall::for_service(config, service);
    let check = check.as_ref().map(|c| c as &dyn install::PostReloadCheck);
    match install::install_checked(&config.state_dir, &target, &material, reload.as_ref(), check) {
        Ok(done) => report(
            "done",
            format!(
                "installed a self-signed placeholder valid for {} days{}{}; previous files kept in {}",
                config.placeholder.validity_days,
                if reload.is_some() { ", reloaded" } else { "" },
                crate::probe::AfterInstall::describe_success(done.verified.as_deref()),
                done.backup_dir.display()
            ),
        ),
        Err(e) => report("failed", e.to_string()),
    }
}

/// [`install_target`] with the configuration's backup retention.
fn install_target_for(config: &Config, service: &ServiceConfig) -> InstallTarget {
    InstallTarget {
        retention: actions::install::Retention {
            keep: config.backups.keep as usize,
            keep_days: config.backups.keep_days,
        },
        ..install_target(service)
    }
}

/// Where a service's files go, from its configuration.
pub fn install_target(service: &ServiceConfig) -> InstallTarget {
    InstallTarget {
        service: service.name.clone(),
        layout: service.layout,
        certificate: service.certificate.clone(),
        key: service.key.clone(),
        chain: service.chain.clone(),
        owner: service.owner.clone(),
        group: service.group.clone(),
        certificate_mode: service.certificate_mode,
        key_mode: service.key_mode,
        retention: Default::default(),
    }
}
