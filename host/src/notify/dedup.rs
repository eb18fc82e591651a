//! Which problems a run has, and which of them were already mailed within the quiet period.
//!
//! A *problem* is one service that needs the administrator (a warning or error notice, a failed
//! action, or — unless service certificate management is disabled — an expired or expiring
//! certificate), or one host-wide warning or error. Its *fingerprint* is a SHA-256 over what
//! makes it this problem: the service, the level, the reasons and the notice texts with the
//! numbers that change every day ("expires in 12 days", dates, paths with digits) blanked out.
//! So the same problem keeps its fingerprint from run to run, and a new or worse one (another
//! reason, a higher level) gets a new one.
//!
//! The fingerprints mailed are kept in `<state-dir>/notify/sent.json` with the time they were
//! last mailed. A run mails when any of its problems is not there or was last mailed a full
//! quiet period ago; the mail then lists every current problem. Fingerprints of problems that
//! are gone are dropped, so a problem that comes back after being fixed is mailed again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::facts::model::Timestamp;
use crate::plan::model::{Level, Notice, Reason};
use crate::report::model::{ActionKind, RunReport, ServiceReport};
use crate::report::text::word;

/// The state file's folder, under the state directory.
pub const STATE_DIR: &str = "notify";

/// The state file's name.
pub const STATE_FILE: &str = "sent.json";

/// The largest state file read, in bytes.
const MAX_STATE_SIZE: u64 = 4 * 1024 * 1024;

/// The version of the state file's format.
const STATE_VERSION: u32 = 1;

/// One problem of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The service, or `None` for a host-wide notice.
    pub service: Option<String>,
    /// Warning or error.
    pub level: Level,
    /// For a host-wide problem: the notice's text.
    pub message: Option<String>,
    /// Hex SHA-256 of the problem's identity.
    pub fingerprint: String,
}

/// How a problem stands against the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Never mailed (or fixed and back again).
    New,
    /// Mailed, but a quiet period ago or longer.
    Due,
    /// Mailed within the quiet period.
    Quiet,
}

/// Whether a reason is about the certificate's age only.
pub fn is_about_expiry(reason: &Reason) -> bool {
    matches!(reason, Reason::Expired | Reason::ExpiringSoon | Reason::RenewalWindow)
}

/// `text` with the parts that change from run to run blanked: every word with a digit becomes
/// `#`, and time units (`day`, `hours`, ...) become `<unit>`, so "expires in 2 days (on
/// 2025-06-17 14:30 UTC)" and "expires in 47 hours (on 2025-06-17 14:30 UTC)" are the same.
pub fn normalise(text: &str) -> String {
    const UNITS: [&str; 8] = ["second", "seconds", "minute", "minutes", "hour", "hours", "day", "days"];
    text.split_whitespace()
        .map(|w| {
            let bare = w.trim_matches(|c: char| c.is_ascii_punctuation());
            if w.bytes().any(|b| b.is_ascii_digit()) {
                "#"
            } else if UNITS.contains(&bare) {
                "<unit>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fingerprint(parts: &[String]) -> String {
    hex::encode(openssl::sha::sha256(parts.join("\n").as_bytes()))
}

/// The problems of a run, services first (in report order), then host-wide notices.
/// With `management_disabled`, expired or expiring certificates are no problem by themselves
/// (the policy gives no notice for them either).
pub fn problems(report: &RunReport, management_disabled: bool) -> Vec<Problem> {
    // Grouped once: a run may have 10,000 services and as many notices.
    let mut notices_of: HashMap<&str, Vec<&Notice>> = HashMap::new();
    for notice in &report.notices {
        if let Some(name) = &notice.service {
            notices_of.entry(name.as_str()).or_default().push(notice);
        }
    }
    let mut problems: Vec<Problem> = report
        .services
        .iter()
        .filter_map(|s| {
            let notices = notices_of.get(s.name.as_str()).map_or(&[][..], Vec::as_slice);
            service_problem(notices, s, management_disabled)
        })
        .collect();
    let names: HashSet<&str> = report.services.iter().map(|s| s.name.as_str()).collect();
    let known = |name: &str| names.contains(name);
    for notice in &report.notices {
        if notice.level < Level::Warning || notice.service.as_deref().is_some_and(known) {
            continue;
        }
        let mut parts = vec!["host".to_string(), word(&notice.level)];
        if let Some(service) = &notice.service {
            parts.push(format!("about {service}"));
        }
        parts.push(normalise(&notice.message));
        problems.push(Problem {
            service: None,
            level: notice.level,
            message: Some(match &notice.service {
                Some(service) => format!("{service}: {}", notice.message),
                None => notice.message.clone(),
            }),
            fingerprint: fingerprint(&parts),
        });
    }
    problems
}

/// Whether a replacement certificate was installed for the service in this run (then its old
/// certificate's age is no longer a problem).
pub fn replaced(service: &ServiceReport) -> bool {
    service.actions.iter().any(|a| a.kind == ActionKind::InstallReplacement && a.outcome == "done")
}

/// The problem of one service, from its own `notices`.
fn service_problem(
    notices: &[&Notice],
    service: &ServiceReport,
    management_disabled: bool,
) -> Option<Problem> {
    let mut level: Option<Level> = None;
    let mut parts = Vec::new();
    for notice in notices {
        if notice.level >= Level::Warning {
            level = level.max(Some(notice.level));
            parts.push(format!("notice {} {}", word(&notice.level), normalise(&notice.message)));
        }
    }
    for action in service.actions.iter().filter(|a| a.failed()) {
        level = Some(Level::Error);
        parts.push(format!("failed {}", word(&action.kind)));
    }
    if !management_disabled && !replaced(service) {
        if service.reasons.contains(&Reason::Expired) {
            level = Some(Level::Error);
        } else if service.reasons.contains(&Reason::ExpiringSoon) {
            level = level.max(Some(Level::Warning));
        }
    }
    let level = level?;
    let mut reasons: Vec<String> = service
        .reasons
        .iter()
        .filter(|r| !(management_disabled && is_about_expiry(r)))
        .map(|r| match r {
            Reason::Other(_) => "other".to_string(),
            r => word(r),
        })
        .collect();
    reasons.sort();
    reasons.dedup();
    parts.sort();
    let mut identity = vec!["service".to_string(), service.name.clone(), word(&level), reasons.join(",")];
    identity.extend(parts);
    Some(Problem {
        service: Some(service.name.clone()),
        level,
        message: None,
        fingerprint: fingerprint(&identity),
    })
}

/// The state file: the fingerprints mailed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SentState {
    pub version: u32,
    /// By fingerprint.
    pub problems: BTreeMap<String, SentProblem>,
}

impl Default for SentState {
    fn default() -> Self {
        SentState { version: STATE_VERSION, problems: BTreeMap::new() }
    }
}

/// One mailed problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SentProblem {
    /// The service, for people reading the file.
    pub service: Option<String>,
    pub level: Level,
    /// When it was first and last mailed (Unix seconds).
    pub first_sent: Timestamp,
    pub last_sent: Timestamp,
}

/// The state file of a state directory.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_DIR).join(STATE_FILE)
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<SentState, String> {
    let bytes = match crate::facts::read_bounded(path, MAX_STATE_SIZE) {
        Ok(bytes) => bytes,
        Err(crate::facts::read::ReadError::Missing(_)) => return Ok(SentState::default()),
        Err(crate::facts::read::ReadError::Unreadable(why)) => return Err(why),
    };
    let state: SentState = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a valid state file: {e}", path.display()))?;
    if state.version != STATE_VERSION {
        return Err(format!(
            "{}: state file version {} is not {STATE_VERSION}",
            path.display(),
            state.version
        ));
    }
    Ok(state)
}

/// Writes the state file atomically and link-safely ([`crate::fs::write_atomic`]), the folder
/// 0700 and the file 0600.
pub fn save(path: &Path, state: &SentState) -> Result<(), String> {
    let dir = path.parent().ok_or_else(|| format!("{}: has no parent folder", path.display()))?;
    crate::fs::create_private_dir(dir, true).map_err(|e| e.to_string())?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    crate::fs::write_atomic(path, &json, 0o600).map_err(|e| e.to_string())
}

/// How each problem stands at time `now` with this quiet period (in seconds).
pub fn standings(
    state: &SentState,
    problems: &[Problem],
    now: Timestamp,
    quiet_period: i64,
) -> Vec<Standing> {
    problems
        .iter()
        .map(|p| match state.problems.get(&p.fingerprint) {
            None => Standing::New,
            Some(sent) if now.saturating_sub(sent.last_sent) >= quiet_period => Standing::Due,
            Some(_) => Standing::Quiet,
        })
        .collect()
}

/// Whether a mail is due: some problem is new, or was last mailed a quiet period ago.
pub fn mail_due(standings: &[Standing]) -> bool {
    standings.iter().any(|s| *s != Standing::Quiet)
}

/// Forgets the problems that are gone.
pub fn prune(state: &mut SentState, problems: &[Problem]) {
    state.problems.retain(|fingerprint, _| problems.iter().any(|p| &p.fingerprint == fingerprint));
}

/// Records that every current problem was mailed at `now`, and forgets the ones that are gone.
pub fn record_sent(state: &mut SentState, problems: &[Problem], now: Timestamp) {
    prune(state, problems);
    for p in problems {
        state
            .problems
            .entry(p.fingerprint.clone())
            .and_modify(|sent| {
                sent.last_sent = now;
                sent.level = p.level;
            })
            .or_insert(SentProblem {
                service: p.service.clone(),
                level: p.level,
                first_sent: now,
                last_sent: now,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::model::{CertificateState, KeyStatus, ServiceFacts};
    use crate::plan::model::{Decision, Notice};
    use crate::report::model::{ActionReport, CertificateSummary, PolicyInfo};

    fn service(name: &str, reasons: Vec<Reason>) -> ServiceReport {
        let state = CertificateState::Missing(format!("/etc/{name}.pem"));
        ServiceReport {
            name: name.into(),
            certificate: CertificateSummary::of(&state, 0),
            decision: Decision::Keep,
            reasons,
            actions: Vec::new(),
            facts: ServiceFacts {
                name: name.into(),
                certificate: state,
                key: KeyStatus::NotChecked,
                covers_hostname: true,
                served: Vec::new(),
                group: None,
                check_only: false,
            },
        }
    }

    fn report(services: Vec<ServiceReport>, notices: Vec<Notice>) -> RunReport {
        RunReport {
            report_version: 1,
            tool_version: "0".into(),
            hostname: "host.example.com".into(),
            started_at: 0,
            dry_run: false,
            policy: PolicyInfo {
                name: "p".into(),
                version: "1".into(),
                contract_version: "0.1.0".into(),
                sha256: "00".into(),
                source: "(embedded default policy)".into(),
                fallback_from: None,
                log: Vec::new(),
                log_dropped: 0,
            },
            order_hostname_certificate: false,
            orders: Vec::new(),
            network: Default::default(),
            services,
            notices,
            exit_code: 0,
        }
    }

    fn notice(level: Level, service: Option<&str>, message: &str) -> Notice {
        Notice { level, service: service.map(Into::into), message: message.into() }
    }

    #[test]
    fn normalise_blanks_numbers_and_time_units() {
        assert_eq!(
            normalise("Service a: the certificate expires in 2 days (on 2025-06-17 14:30 UTC)."),
            normalise("Service a: the certificate expires in 47 hours (on 2025-06-18 09:00 UTC).")
        );
        assert_ne!(
            normalise("the certificate expires in 2 days"),
            normalise("the certificate expired 2 days ago")
        );
    }

    #[test]
    fn the_same_problem_keeps_its_fingerprint_a_worse_one_changes_it() {
        let expiring = |days: &str| {
            report(
                vec![service("web", vec![Reason::ExpiringSoon])],
                vec![notice(Level::Warning, Some("web"), &format!("Service web: expires in {days} days."))],
            )
        };
        let a = problems(&expiring("2"), false);
        let b = problems(&expiring("1"), false);
        assert_eq!(a.len(), 1);
        assert_eq!(a, b);
        let expired = report(
            vec![service("web", vec![Reason::Expired])],
            vec![notice(Level::Error, Some("web"), "Service web: expired 1 day ago.")],
        );
        let c = problems(&expired, false);
        assert_eq!(c[0].level, Level::Error);
        assert_ne!(a[0].fingerprint, c[0].fingerprint);
    }

    #[test]
    fn expiry_alone_is_a_problem_unless_management_is_disabled() {
        // A routine renewal gives only an info notice; the expiring certificate is still a problem.
        let r = report(
            vec![service("web", vec![Reason::ExpiringSoon]), service("ok", vec![])],
            vec![notice(Level::Info, Some("web"), "Service web: a new certificate is requested.")],
        );
        let found = problems(&r, false);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].service.as_deref(), found[0].level), (Some("web"), Level::Warning));
        assert!(problems(&r, true).is_empty());
    }

    #[test]
    fn a_replacement_installed_in_this_run_ends_the_expiry_problem() {
        let mut web = service("web", vec![Reason::ExpiringSoon]);
        web.actions.push(ActionReport {
            kind: ActionKind::InstallReplacement,
            outcome: "done",
            message: "ok".into(),
        });
        assert!(problems(&report(vec![web], vec![]), false).is_empty());
    }

    #[test]
    fn failed_actions_and_host_notices_are_problems() {
        let mut web = service("web", vec![]);
        web.actions.push(ActionReport {
            kind: ActionKind::InstallPlaceholder,
            outcome: "failed",
            message: "disk full".into(),
        });
        let r = report(
            vec![web],
            vec![
                notice(Level::Warning, None, "extra roots unreadable"),
                notice(Level::Info, None, "fyi"),
                notice(Level::Error, Some("gone"), "journal of a service no longer configured"),
            ],
        );
        let found = problems(&r, false);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].level, Level::Error);
        assert_eq!(found[1].message.as_deref(), Some("extra roots unreadable"));
        assert_eq!(found[2].message.as_deref(), Some("gone: journal of a service no longer configured"));
    }

    #[test]
    fn quiet_period_new_and_due() {
        let r = report(
            vec![service("a", vec![Reason::Expired]), service("b", vec![Reason::ExpiringSoon])],
            vec![],
        );
        let found = problems(&r, false);
        let mut state = SentState::default();
        assert_eq!(standings(&state, &found, 100, 3600), [Standing::New, Standing::New]);
        record_sent(&mut state, &found[..1], 100);
        let now = standings(&state, &found, 200, 3600);
        assert_eq!(now, [Standing::Quiet, Standing::New]);
        assert!(mail_due(&now));
        record_sent(&mut state, &found, 200);
        assert!(!mail_due(&standings(&state, &found, 3000, 3600)));
        assert_eq!(standings(&state, &found, 3800, 3600), [Standing::Due, Standing::Due]);
        assert_eq!(state.problems[&found[0].fingerprint].first_sent, 100);
        // A fixed problem is forgotten, so it is new when it comes back.
        prune(&mut state, &found[1..]);
        assert_eq!(standings(&state, &found, 3000, 3600), [Standing::New, Standing::Quiet]);
        // A quiet period of 0 mails every run.
        assert!(mail_due(&standings(&state, &found[1..], 200, 0)));
    }

    #[test]
    fn state_round_trips_atomically_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_path(dir.path());
        assert_eq!(load(&path), Ok(SentState::default()));
        let r = report(vec![service("a", vec![Reason::Expired])], vec![]);
        let mut state = SentState::default();
        record_sent(&mut state, &problems(&r, false), 42);
        save(&path, &state).expect("saved");
        assert_eq!(load(&path), Ok(state));
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        std::fs::write(&path, "{not json").expect("write");
        assert!(load(&path).expect_err("corrupt").contains("not a valid state file"));
    }
}
