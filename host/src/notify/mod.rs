//! Telling the administrator: one mail per run when it found problems.
//!
//! After a changing run (never a dry run), [`notify`] collects the run's problems from its
//! report ([`dedup::problems`]: warning and error notices, failed actions, and expired or
//! expiring certificates unless `disable_service_certificate_management` is set), checks them
//! against the problems mailed within the quiet period (`<state-dir>/notify/sent.json`), and if
//! any is new or due, sends one plain-text message listing them all ([`mail::compose`]) through
//! the local `sendmail` or an SMTP relay ([`mail::send`]). A failure to send never fails the
//! run: it becomes a warning in the report, and the exit code stays what the certificates made
//! it.

pub mod dedup;
pub mod errors;
pub mod mail;

pub use errors::NotifyError;

use crate::config::Config;
use crate::plan::model::{Level, Notice};
use crate::report::RunReport;
use dedup::Standing;

/// What became of the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A dry run: nothing is mailed and no state is kept.
    DryRun,
    /// `[mail] enabled = false`.
    Disabled,
    /// The run found nothing to tell.
    NothingToReport,
    /// Every problem was already mailed within the quiet period.
    Quiet { problems: usize },
    /// Mailed, through the named route.
    Sent { via: String, problems: usize },
    /// Could not be mailed; a warning notice says why.
    Failed(String),
}

/// The mail settings in one line, for `config check`: "to root@h via /usr/sbin/sendmail (quiet
/// period 24 hours)", or why no mail can be sent.
pub fn describe(mail: &crate::config::mail::MailConfig) -> String {
    if !mail.enabled {
        return "disabled ([mail] enabled = false)".into();
    }
    let via = match mail::route(mail) {
        Ok(route) => route.describe(),
        Err(e) => return format!("to {}, but it cannot be sent: {e}", mail.to.join(", ")),
    };
    format!(
        "to {} via {via}, from {} (quiet period {} hours)",
        mail.to.join(", "),
        mail.from,
        mail.quiet_period.as_secs() / 3600
    )
}

fn warn(report: &mut RunReport, message: String) {
    report.notices.push(Notice { level: Level::Warning, service: None, message });
}

fn info(report: &mut RunReport, message: String) {
    report.notices.push(Notice { level: Level::Info, service: None, message });
}

/// Mails the run's problems to the administrator if they are new or due, and keeps the record
/// of what was mailed. Problems doing so are added to `report` as warnings; the exit code is
/// not changed.
pub fn notify(config: &Config, report: &mut RunReport) -> Outcome {
    if report.dry_run {
        return Outcome::DryRun;
    }
    if !config.mail.enabled {
        return Outcome::Disabled;
    }
    let now = crate::time::unix_now();
    let (_, management_disabled) = crate::facts::read_disable_flags(&config.state_dir);
    let problems = dedup::problems(report, management_disabled);
    let state_path = dedup::state_path(&config.state_dir);
    let loaded = dedup::load(&state_path);
    let before = loaded.as_ref().ok().cloned();
    let mut state = match loaded {
        Ok(state) => state,
        Err(why) => {
            warn(
                report,
                format!(
                    "The record of mailed problems could not be read ({why}); it is started afresh, \
                     so problems mailed recently may be mailed again."
                ),
            );
            dedup::SentState::default()
        }
    };
    let quiet = i64::try_from(config.mail.quiet_period.as_secs()).unwrap_or(i64::MAX);
    let standings = dedup::standings(&state, &problems, now, quiet);
    let outcome = if problems.is_empty() {
        dedup::prune(&mut state, &problems);
        Outcome::NothingToReport
    } else if !dedup::mail_due(&standings) {
        dedup::prune(&mut state, &problems);
        info(
            report,
            format!(
                "No notification mail: {} already mailed within the quiet period.",
                mail::tally(&problems).replace(", ", " and ")
                    + if problems.len() == 1 { " was" } else { " were" }
            ),
        );
        Outcome::Quiet { problems: problems.len() }
    } else {
        match send(config, report, &problems, &standings, management_disabled, now) {
            Ok(via) => {
                dedup::record_sent(&mut state, &problems, now);
                info(
                    report,
                    format!(
                        "The notification mail about {} was sent to {} via {via}.",
                        mail::tally(&problems),
                        config.mail.to.join(", ")
                    ),
                );
                Outcome::Sent { via, problems: problems.len() }
            }
            Err(error) => {
                let message = format!(
                    "The notification mail about {} could not be sent to {}: {error}. The certificate \
                     work is not affected; the next run tries again.",
                    mail::tally(&problems),
                    config.mail.to.join(", ")
                );
                warn(report, message.clone());
                dedup::prune(&mut state, &problems);
                Outcome::Failed(message)
            }
        }
    };
    if before.as_ref() != Some(&state)
        && let Err(why) = dedup::save(&state_path, &state)
    {
        warn(
            report,
            format!(
                "The record of mailed problems could not be written ({why}); the same problems may be \
                 mailed again by the next run."
            ),
        );
    }
    outcome
}

fn send(
    config: &Config,
    report: &mut RunReport,
    problems: &[dedup::Problem],
    standings: &[Standing],
    management_disabled: bool,
    now: i64,
) -> Result<String, NotifyError> {
    let route = mail::route(&config.mail)?;
    if let mail::Route::Smtp(smtp) = &route
        && let Some(auth) = &smtp.auth
    {
        password_file_mode_warning(report, &auth.password_file);
    }
    let composed = mail::compose(config, report, problems, standings, management_disabled);
    let message = mail::build(&config.mail, &config.hostname, &composed, now)?;
    mail::send(&route, &config.trust, &config.hostname, &message)
}

/// Warns when the SMTP password file can be read by other users than its owner and group.
fn password_file_mode_warning(report: &mut RunReport, path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        warn(
            report,
            format!(
                "The SMTP password file {} can be read by every user (mode {:04o}); chmod 0600 it.",
                path.display(),
                meta.permissions().mode() & 0o7777
            ),
        );
    }
}

/// Mails the administrator that a run could not start (the state directory or its lock could
/// not be used, or was refused as untrusted): nothing was checked or changed, and every night
/// until it is fixed is the same, so each one says so. Returns the route it went through, or
/// why it could not be sent.
pub fn mail_failure(config: &Config, error: &str) -> Result<String, String> {
    let now = crate::time::unix_now();
    let composed = mail::Composed {
        subject: format!("[checkallsslcerts] {}: the run could not start", config.hostname),
        body: format!(
            "checkallsslcerts could not start its run on {host} at {when}:\n\n    {error}\n\n\
             No certificate was checked, ordered or installed. Every service keeps what it has, but \
             nothing watches their certificates until this is fixed; each nightly run says so again.\n",
            host = config.hostname,
            when = crate::time::utc_minutes(now),
        ),
    };
    let route = mail::route(&config.mail).map_err(|e| e.to_string())?;
    let message = mail::build(&config.mail, &config.hostname, &composed, now).map_err(|e| e.to_string())?;
    mail::send(&route, &config.trust, &config.hostname, &message).map_err(|e| e.to_string())
}
