//! The main run, step by step: config → facts → policy → plan → actions → report.
//!
//! Each step lives in its own module; this one only strings them together, decides the exit
//! code, and makes sure one failing service never stops the others.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::actions::install::{self, InstallTarget};
use crate::actions::reload::ReloadCommand;
use crate::actions::{self, lock, placeholder};
use crate::cli::exit;
use crate::config::{Config, ServiceConfig};
use crate::facts::{self, model::HostFacts};
use crate::plan::model::{Decision, Level, Metadata, Notice, Plan};
use crate::policy::{PolicyError, PolicyModule, PolicySource, Runtime};
use crate::report::{
    ActionKind, ActionReport, CertificateSummary, PolicyInfo, REPORT_VERSION, RunReport, ServiceReport,
};

/// How the main run was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Change nothing; no lock, no cache writes.
    pub dry_run: bool,
    /// A policy module given on the command line, over the configured one.
    pub policy: Option<PathBuf>,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
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
}

impl RunError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) => exit::USAGE,
            RunError::Lock(_) => exit::LOCKED,
            RunError::StateDir(_) | RunError::Policy(_) => exit::ERRORS,
        }
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs the whole job with the configuration at `config_path`.
pub fn run(config_path: &Path, options: &RunOptions) -> Result<RunReport, RunError> {
    let config = crate::config::load(config_path)?;
    run_with(&config, options)
}

/// Runs the whole job with a loaded configuration.
pub fn run_with(config: &Config, options: &RunOptions) -> Result<RunReport, RunError> {
    let now = unix_now();
    let mut host_notices: Vec<Notice> = config
        .warnings
        .iter()
        .map(|w| Notice { level: Level::Warning, service: None, message: w.to_string() })
        .collect();

    // Changing runs take the lock and finish what a killed run left half done.
    let mut recovered: Vec<(String, ActionReport)> = Vec::new();
    let _lock = if options.dry_run {
        None
    } else {
        actions::ensure_state_dir(&config.state_dir)?;
        let lock = lock::acquire(&config.state_dir, options.lock_wait)?;
        for report in install::recover(&config.state_dir) {
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

    let cache = (!options.dry_run).then(|| config.state_dir.join("cache"));
    let runtime = Runtime::new(cache)?;
    let gathered = facts::gather_with(config, &facts::FactsOptions { now });
    let facts = gathered.facts;
    host_notices.extend(gathered.notices.into_iter().map(|message| Notice {
        level: Level::Warning,
        service: None,
        message,
    }));
    let (module, metadata, plan, fallback_from) =
        decide(&runtime, config, options, &facts, &mut host_notices)?;

    let mut services = Vec::with_capacity(facts.services.len());
    for (service_facts, decision) in facts.services.iter().zip(&plan.services) {
        let service = config.service(&service_facts.name);
        let mut actions: Vec<ActionReport> = recovered
            .iter()
            .filter(|(name, _)| *name == service_facts.name)
            .map(|(_, a)| a.clone())
            .collect();
        if let Some(service) = service {
            actions.extend(act(config, service, decision.decision, options.dry_run, now));
        }
        services.push(ServiceReport {
            name: service_facts.name.clone(),
            certificate: CertificateSummary::of(&service_facts.certificate, now),
            decision: decision.decision,
            reasons: decision.reasons.clone(),
            actions,
            facts: service_facts.clone(),
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
    let failed = services.iter().flat_map(|s| &s.actions).any(ActionReport::failed);
    let errors = notices.iter().any(|n| n.level == Level::Error);
    let exit_code = if failed || errors || fallback_from.is_some() { exit::ERRORS } else { exit::OK };
    Ok(RunReport {
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
        },
        order_hostname_certificate: plan.order_hostname_certificate,
        services,
        notices,
        exit_code,
    })
}

/// Runs the chosen policy; if a module other than the embedded one fails, the embedded default
/// policy decides instead, and the failure is reported as an error.
fn decide(
    runtime: &Runtime,
    config: &Config,
    options: &RunOptions,
    facts: &HostFacts,
    notices: &mut Vec<Notice>,
) -> Result<(PolicyModule, Metadata, Plan, Option<String>), RunError> {
    let chosen = options.policy.as_ref().or(config.policy.module.as_ref());
    if let Some(path) = chosen {
        let attempt = runtime.load_file(path).and_then(|module| {
            let metadata = runtime.metadata(&module)?;
            let evaluation = runtime.evaluate(&module, facts)?;
            Ok((module, metadata, evaluation.plan))
        });
        match attempt {
            Ok((module, metadata, plan)) => return Ok((module, metadata, plan, None)),
            Err(error) => {
                notices.push(Notice {
                    level: Level::Error,
                    service: None,
                    message: format!(
                        "{error}; the embedded default policy decided instead. Fix or replace the module."
                    ),
                });
                let module = runtime.load_embedded()?;
                let metadata = runtime.metadata(&module)?;
                let plan = runtime.evaluate(&module, facts)?.plan;
                return Ok((module, metadata, plan, Some(error.to_string())));
            }
        }
    }
    let module = runtime.load_embedded()?;
    debug_assert_eq!(module.source, PolicySource::Embedded);
    let metadata = runtime.metadata(&module)?;
    let plan = runtime.evaluate(&module, facts)?.plan;
    Ok((module, metadata, plan, None))
}

/// Carries out one service's decision. No replacement can be issued yet (ACME comes with its
/// own step), so `replace-or-placeholder` installs the placeholder.
fn act(
    config: &Config,
    service: &ServiceConfig,
    decision: Decision,
    dry_run: bool,
    now: i64,
) -> Vec<ActionReport> {
    match decision {
        Decision::Keep => Vec::new(),
        Decision::Replace => vec![ActionReport {
            kind: ActionKind::ReplacementUnavailable,
            outcome: "skipped",
            message: "a replacement is wanted, but no certificate was issued in this run (no certificate authority is configured); the current certificate stays".into(),
        }],
        Decision::ReplaceOrPlaceholder | Decision::Placeholder => {
            vec![install_placeholder(config, service, dry_run, now)]
        }
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
    let target = install_target(service);
    let reload = service
        .reload
        .as_ref()
        .map(|argv| ReloadCommand { argv: argv.clone(), timeout: service.reload_timeout });
    match install::install(&config.state_dir, &target, &material, reload.as_ref()) {
        Ok(done) => report(
            "done",
            format!(
                "installed a self-signed placeholder valid for {} days{}; previous files kept in {}",
                config.placeholder.validity_days,
                if reload.is_some() { ", reloaded" } else { "" },
                done.backup_dir.display()
            ),
        ),
        Err(e) => report("failed", e.to_string()),
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
    }
}
