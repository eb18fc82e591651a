//! Which policy module a run uses, and what happens when it fails.
//!
//! Precedence: `--policy FILE` > `[policy] module` > the installed active module (`policy
//! install`) > the embedded default policy.
//!
//! When the chosen module fails in any way (it cannot be read or loaded, its stored bytes do
//! not match their SHA-256, it traps, runs out of fuel or memory, refuses the facts, returns an
//! invalid plan, or claims another contract version than it implements), the run does not
//! stop: the last known good modules (those that made a valid plan in an earlier real run,
//! newest first, skipping the one that just failed) are tried, then the embedded default
//! policy, and whichever decides first makes the plan. The failure is an error notice naming the
//! module, what went wrong and what decided instead; the run exits 1. After a real (not dry)
//! run, the module that made the plan is recorded as the last known good one (the embedded
//! policy is not recorded: it is always there).

use std::path::{Path, PathBuf};

use super::{Installed, KnownGood, Store, short};
use crate::config::Config;
use crate::facts::model::HostFacts;
use crate::plan::model::{Level, Metadata, Notice, Plan};
use crate::policy::{PolicyError, PolicyLog, PolicyModule, PolicySource, Runtime};
use crate::time::utc_seconds as utc_time;

/// The module chosen for a run, before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `--policy FILE`.
    CommandLine(PathBuf),
    /// `[policy] module`.
    Configured(PathBuf),
    /// The active module of `policy install`.
    Installed(Installed),
    /// The default policy built into the binary.
    Embedded,
}

impl Choice {
    /// A phrase naming the module and where it comes from.
    pub fn describe(&self) -> String {
        match self {
            Choice::CommandLine(path) => {
                format!("the policy module given with --policy ({})", path.display())
            }
            Choice::Configured(path) => {
                format!("the policy module set by [policy] module ({})", path.display())
            }
            Choice::Installed(record) => format!(
                "the installed policy module `{}` {} (sha256 {}, installed from {})",
                record.name,
                record.version,
                short(&record.sha256),
                record.source
            ),
            Choice::Embedded => "the embedded default policy".to_owned(),
        }
    }
}

/// When `[policy] trusted-keys` are configured, an installed module that no trusted key signed
/// (installed before the keys were configured, or signed by a key since removed) still runs —
/// refusing it would leave the server without its policy — but never silently: this says so on
/// every run and in `policy show`.
pub fn unsigned_warning(config: &Config, record: &super::Installed) -> Option<String> {
    if !config.policy.trust.is_configured() {
        return None;
    }
    let what = format!(
        "The installed policy module `{}` {} (sha256 {})",
        record.name,
        record.version,
        short(&record.sha256)
    );
    let fix = "it still runs; install a module signed by a trusted key (policy install) or roll back (policy rollback)";
    match &record.signature_key_id {
        None => Some(format!("{what} is not signed, but [policy] trusted keys are configured: {fix}.")),
        Some(id) => {
            let keys = super::signature::trusted_keys(&config.policy.trust).ok()?;
            (!keys.iter().any(|k| &k.key_id == id)).then(|| {
                format!("{what} is signed by the key {id}, which is no longer a trusted key: {fix}.")
            })
        }
    }
}

/// The chosen module by precedence. An unreadable `active.json` is an error (the caller falls
/// back, loudly).
pub fn choose(config: &Config, cli_policy: Option<&Path>) -> Result<Choice, super::StoreError> {
    if let Some(path) = cli_policy {
        return Ok(Choice::CommandLine(path.to_path_buf()));
    }
    if let Some(path) = &config.policy.module {
        return Ok(Choice::Configured(path.clone()));
    }
    Ok(match Store::new(&config.state_dir).read_active()?.active {
        Some(record) => Choice::Installed(record),
        None => Choice::Embedded,
    })
}

/// The module that made the plan.
pub struct Decided {
    pub module: PolicyModule,
    pub metadata: Metadata,
    pub plan: Plan,
    /// Set when the chosen module failed and another one decided: the failure (with the last
    /// error lines a trapping module logged).
    pub fallback_from: Option<String>,
    /// What the module that made the plan logged while deciding (`host.log`), for the report.
    pub log: PolicyLog,
}

/// A module's failure before or while deciding, as a sentence naming it, and its SHA-256 if
/// known (so it is not tried again as a last known good module).
struct Failure {
    message: String,
    sha256: Option<String>,
}

/// Chooses the module, runs it, falls back if it fails (see the module documentation).
/// Fails only if the embedded default policy itself fails.
pub fn decide(
    runtime: &Runtime,
    config: &Config,
    cli_policy: Option<&Path>,
    facts: &HostFacts,
    notices: &mut Vec<Notice>,
    dry_run: bool,
) -> Result<Decided, PolicyError> {
    let store = Store::new(&config.state_dir);
    if let Ok(Choice::Installed(record)) = choose(config, cli_policy)
        && let Some(message) = unsigned_warning(config, &record)
    {
        notices.push(Notice { level: Level::Warning, service: None, message });
    }
    let (choice, failure) = match choose(config, cli_policy) {
        Ok(Choice::Embedded) => return run_embedded(runtime, facts, None),
        Ok(choice) => {
            let failure = match attempt(runtime, &store, &choice, facts) {
                Ok((decided, bytes, origin)) => {
                    if !dry_run {
                        record(&store, &bytes, &decided, origin, notices);
                    }
                    return Ok(decided);
                }
                Err(failure) => failure,
            };
            (choice.describe(), failure)
        }
        Err(e) => (
            "the installed policy module".to_owned(),
            Failure {
                message: format!("the record of the installed policy module is unusable: {e}"),
                sha256: None,
            },
        ),
    };
    let rollback_hint = if choice.starts_with("the installed") {
        ", or go back to the previous one with `checkallsslcerts policy rollback`"
    } else {
        ""
    };

    let mut also_failed = Vec::new();
    let known_good = store.read_known_good().unwrap_or_else(|e| {
        also_failed.push(format!("the last known good modules cannot be read: {e}"));
        Vec::new()
    });
    for good in known_good.iter().filter(|g| Some(&g.sha256) != failure.sha256.as_ref()) {
        let attempt = store
            .read_module(&good.sha256, runtime.limits().max_module_bytes)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                run(runtime, &bytes, PolicySource::File(store.module_path(&good.sha256)), facts)
                    .map_err(|e| e.to_string())
            });
        match attempt {
            Ok((module, metadata, plan, log)) => {
                let by = format!(
                    "the last known good policy module `{}` {} (sha256 {}, from {}, last good {})",
                    good.name,
                    good.version,
                    short(&good.sha256),
                    good.source,
                    utc_time(good.good_at)
                );
                notices.push(fallback_notice(&failure, &choice, &by, &also_failed, rollback_hint));
                return Ok(Decided { module, metadata, plan, fallback_from: Some(failure.message), log });
            }
            Err(e) => also_failed
                .push(format!("the last known good module {} also failed: {e}", short(&good.sha256))),
        }
    }
    notices.push(fallback_notice(
        &failure,
        &choice,
        "the embedded default policy",
        &also_failed,
        rollback_hint,
    ));
    run_embedded(runtime, facts, Some(failure.message))
}

fn fallback_notice(failure: &Failure, choice: &str, by: &str, also_failed: &[String], hint: &str) -> Notice {
    let mut chars = choice.chars();
    let choice: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    let mut message = format!("{}. {choice} failed, so {by} decided instead", failure.message);
    for other in also_failed {
        message.push_str(&format!(" ({other})"));
    }
    message.push_str(&format!(
        ". Every certificate was still checked and handled; fix or replace the failing module{hint}."
    ));
    Notice { level: Level::Error, service: None, message }
}

fn run_embedded(
    runtime: &Runtime,
    facts: &HostFacts,
    fallback_from: Option<String>,
) -> Result<Decided, PolicyError> {
    let module = runtime.load_embedded()?;
    let metadata = runtime.metadata(&module)?;
    let evaluation = runtime.evaluate(&module, facts)?;
    let log = evaluation.log();
    Ok(Decided { module, metadata, plan: evaluation.plan, fallback_from, log })
}

/// Reads and runs the chosen module; returns the decision, the module's bytes and where it
/// came from (for the last-known-good record).
fn attempt(
    runtime: &Runtime,
    store: &Store,
    choice: &Choice,
    facts: &HostFacts,
) -> Result<(Decided, Vec<u8>, String), Failure> {
    let limit = runtime.limits().max_module_bytes;
    let (bytes, source, origin) = match choice {
        Choice::CommandLine(path) | Choice::Configured(path) => {
            let bytes = read_module_file(path, limit)
                .map_err(|e| Failure { message: e.to_string(), sha256: None })?;
            (bytes, PolicySource::File(path.clone()), path.display().to_string())
        }
        Choice::Installed(record) => {
            let bytes = store.read_module(&record.sha256, limit).map_err(|e| Failure {
                message: format!("installed policy module: {e}"),
                sha256: Some(record.sha256.clone()),
            })?;
            (bytes, PolicySource::File(store.module_path(&record.sha256)), record.source.clone())
        }
        Choice::Embedded => unreachable!("the embedded policy is run directly"),
    };
    let sha = hex::encode(openssl::sha::sha256(&bytes));
    match run(runtime, &bytes, source, facts) {
        Ok((module, metadata, plan, log)) => {
            Ok((Decided { module, metadata, plan, fallback_from: None, log }, bytes, origin))
        }
        Err(e) => Err(Failure { message: e.to_string(), sha256: Some(sha) }),
    }
}

fn run(
    runtime: &Runtime,
    bytes: &[u8],
    source: PolicySource,
    facts: &HostFacts,
) -> Result<(PolicyModule, Metadata, Plan, PolicyLog), PolicyError> {
    let module = runtime.load_bytes(bytes, source)?;
    let metadata = runtime.metadata(&module)?;
    let evaluation = runtime.evaluate(&module, facts)?;
    let log = evaluation.log();
    Ok((module, metadata, evaluation.plan, log))
}

/// A module file, bounded like [`Runtime::load_file`].
fn read_module_file(path: &Path, limit: usize) -> Result<Vec<u8>, PolicyError> {
    let module = path.display().to_string();
    let size =
        std::fs::metadata(path).map_err(|source| PolicyError::Read { module: module.clone(), source })?.len();
    if size > limit as u64 {
        return Err(PolicyError::TooLarge { module, size, limit });
    }
    super::read_bounded(path, limit as u64).map_err(|e| PolicyError::Read {
        module,
        source: match e {
            super::StoreError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}

/// Remembers the module that made a valid plan in a real run. A failure to write is a warning:
/// the run itself went well.
fn record(store: &Store, bytes: &[u8], decided: &Decided, origin: String, notices: &mut Vec<Notice>) {
    let result = store.store_module(bytes, None).and_then(|sha| {
        store.record_known_good(KnownGood {
            sha256: sha,
            source: origin,
            name: decided.metadata.name.clone(),
            version: decided.metadata.version.clone(),
            good_at: crate::time::unix_now(),
        })
    });
    if let Err(e) = result {
        notices.push(Notice {
            level: Level::Warning,
            service: None,
            message: format!("cannot record the last known good policy module: {e}"),
        });
    }
}
