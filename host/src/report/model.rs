//! The report of one run, as printed by `--json`.

use serde::Serialize;

use crate::facts::model::{CertificateState, ServiceFacts, Timestamp};
use crate::plan::model::{Decision, Level, Notice, Reason};
use crate::policy::LogLine;

/// The version of the JSON report's schema.
pub const REPORT_VERSION: u32 = 2;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The `checkallsslcerts` version that wrote it.
    pub tool_version: String,
    /// The hostname the run checked for.
    pub hostname: String,
    /// When the run started (Unix seconds, UTC).
    pub started_at: Timestamp,
    /// True for `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// The policy that made the plan.
    pub policy: PolicyInfo,
    /// Whether the plan asked for any certificate order (contract 0.1.0's flag, kept for
    /// readers of report version 1).
    pub order_hostname_certificate: bool,
    /// The certificate groups the plan ordered a certificate for.
    #[serde(default)]
    pub orders: Vec<String>,
    /// The host-wide network facts (hostname DNS, CAA) and what they were based on.
    pub network: crate::facts::network::NetworkReport,
    /// One entry per service, in configuration order.
    pub services: Vec<ServiceReport>,
    /// The policy's notices, then the host's own.
    pub notices: Vec<Notice>,
    /// The exit code the run ends with.
    pub exit_code: i32,
}

/// The policy that made the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub contract_version: String,
    pub sha256: String,
    /// A file path, or "(embedded default policy)".
    pub source: String,
    /// Set when the configured module failed and this one was used instead: the failure.
    pub fallback_from: Option<String>,
    /// What this module wrote with `host.log` while deciding, in order (bounded: see
    /// `policy::Limits`). Shown with `--verbose`; never mailed.
    pub log: Vec<LogLine>,
    /// How many more lines it wrote, dropped by the limit.
    pub log_dropped: usize,
}

/// One service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceReport {
    pub name: String,
    pub certificate: CertificateSummary,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    /// What the run did for this service, in order.
    pub actions: Vec<ActionReport>,
    /// Everything gathered about the service, as the policy saw it.
    pub facts: ServiceFacts,
}

/// The certificate in a few words.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CertificateSummary {
    /// "ok", "missing", "unreadable" or "malformed".
    pub state: &'static str,
    /// For a state other than "ok": what is wrong, naming the file.
    pub problem: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_after: Option<Timestamp>,
    /// Whole days left (negative once expired), rounded down.
    pub days_left: Option<i64>,
    pub sha256_fingerprint: Option<String>,
}

impl CertificateSummary {
    /// The summary of a certificate state at time `now`.
    pub fn of(state: &CertificateState, now: Timestamp) -> CertificateSummary {
        let empty = |state, problem: &String| CertificateSummary {
            state,
            problem: Some(problem.clone()),
            subject: None,
            issuer: None,
            not_after: None,
            days_left: None,
            sha256_fingerprint: None,
        };
        match state {
            CertificateState::Ok(c) => CertificateSummary {
                state: "ok",
                problem: None,
                subject: c.subject_cn.clone().or_else(|| c.dns_names.first().cloned()),
                issuer: c.issuer_org.clone().or_else(|| c.issuer_cn.clone()),
                not_after: Some(c.not_after),
                days_left: Some((c.not_after - now).div_euclid(86_400)),
                sha256_fingerprint: Some(c.sha256_fingerprint.clone()),
            },
            CertificateState::Missing(p) => empty("missing", p),
            CertificateState::Unreadable(p) => empty("unreadable", p),
            CertificateState::Malformed(p) => empty("malformed", p),
        }
    }
}

/// The kind of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A self-signed placeholder was (or, in a dry run, would be) installed.
    InstallPlaceholder,
    /// A newly issued certificate was (or would be) installed.
    InstallReplacement,
    /// A replacement is wanted but none could be had in this run.
    ReplacementUnavailable,
    /// A journal left by an interrupted run was completed or rolled back.
    Recover,
}

/// One action and its result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ActionReport {
    pub kind: ActionKind,
    /// "done", "failed", "skipped" (not attempted: dry run or nothing to do) or "planned".
    pub outcome: &'static str,
    pub message: String,
}

impl ActionReport {
    pub fn failed(&self) -> bool {
        self.outcome == "failed"
    }
}

impl RunReport {
    /// The most serious level among the notices, if any.
    pub fn worst_level(&self) -> Option<Level> {
        self.notices.iter().map(|n| n.level).max()
    }
}
