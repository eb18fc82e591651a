//! The human report: one line per service and a summary; more with `--verbose`.

use std::fmt::Write as _;

use super::model::{RunReport, ServiceReport};
use crate::facts::model::{CertificateState, ChainStatus, KeyStatus, Revocation};
use crate::plan::model::{Decision, Level, Notice};

/// How to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub verbose: bool,
    pub colour: bool,
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

/// A value's JSON spelling without quotes.
pub fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn decision(style: Style, d: Decision) -> String {
    let text = format!("{:<22}", word(&d));
    match d {
        Decision::Keep => paint(style, "32", &text),
        Decision::Replace => paint(style, "33", &text),
        Decision::ReplaceOrPlaceholder | Decision::Placeholder => paint(style, "31", &text),
    }
}

/// The report as text.
pub fn render(report: &RunReport, style: Style) -> String {
    let mut out = String::new();
    if style.verbose {
        let p = &report.policy;
        let _ = writeln!(
            out,
            "policy: {} {} (contract {}) from {}, sha256 {}",
            p.name, p.version, p.contract_version, p.source, p.sha256
        );
        if let Some(failure) = &p.fallback_from {
            let _ = writeln!(out, "policy fallback: the selected policy failed: {}", safe(failure));
        }
        // The policy's own words (`host.log`), escaped: the module's text is not the host's.
        for log in &p.log {
            let _ = writeln!(out, "{}", log_line(log));
        }
        if p.log_dropped > 0 {
            let _ = writeln!(
                out,
                "policy log: {} more lines were dropped (a policy's log is bounded per call)",
                p.log_dropped
            );
        }
        let _ = writeln!(out, "hostname: {}", report.hostname);
        for network_line in report.network.lines() {
            let _ = writeln!(out, "{}", safe(&network_line));
        }
    }
    let width = report.services.iter().map(|s| s.name.len()).max().unwrap_or(7).max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:<28}  {:<24}  {:>9}  {:<22}  reasons",
        "SERVICE", "SUBJECT", "ISSUER", "DAYS LEFT", "DECISION"
    );
    for service in &report.services {
        line(&mut out, service, style, width);
        if style.verbose {
            details(&mut out, service);
        }
        for action in &service.actions {
            let mark =
                if action.failed() { paint(style, "31", "FAILED") } else { action.outcome.to_string() };
            let _ =
                writeln!(out, "{:width$}  -> {} {}: {}", "", word(&action.kind), mark, safe(&action.message));
        }
    }
    for notice in &report.notices {
        if !style.verbose && notice.level == Level::Info {
            continue;
        }
        let level = match notice.level {
            Level::Info => "info".to_string(),
            Level::Warning => paint(style, "33", "warning"),
            Level::Error => paint(style, "31", "error"),
        };
        let _ = writeln!(out, "{level}: {}", notice_text(notice));
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

fn line(out: &mut String, s: &ServiceReport, style: Style, width: usize) {
    let c = &s.certificate;
    let subject = c.subject.as_deref().map_or_else(|| format!("({})", c.state), |s| safe(s).into_owned());
    let issuer = c.issuer.as_deref().map_or_else(|| "-".into(), |s| safe(s).into_owned());
    let days = c.days_left.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    let reasons: Vec<String> = s.reasons.iter().map(word).collect();
    let _ = writeln!(
        out,
        "{:<width$}  {:<28}  {:<24}  {:>9}  {}  {}",
        s.name,
        clip(&subject, 28),
        clip(&issuer, 24),
        days,
        decision(style, s.decision),
        if reasons.is_empty() { "-".to_string() } else { reasons.join(", ") }
    );
}

/// Text from outside (certificates, CAs, error messages quoting them) made safe to print.
fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    crate::text::untrusted(text)
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('…');
    clipped
}

fn details(out: &mut String, s: &ServiceReport) {
    let pad = "    ";
    match &s.facts.certificate {
        CertificateState::Ok(c) => {
            let _ = writeln!(
                out,
                "{pad}names: {}",
                safe(&[c.dns_names.clone(), c.ip_addresses.clone()].concat().join(", "))
            );
            let _ = writeln!(
                out,
                "{pad}issuer: {} / {}",
                safe(c.issuer_org.as_deref().unwrap_or("-")),
                safe(c.issuer_cn.as_deref().unwrap_or("-"))
            );
            let _ = writeln!(out, "{pad}valid: {} to {}", utc(c.not_before), utc(c.not_after));
            let _ = writeln!(
                out,
                "{pad}key: {} {} bits{}; signature: {}; self-signed: {}",
                word(&c.public_key.kind),
                c.public_key.bits,
                c.public_key.curve.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
                c.signature_algorithm,
                c.self_signed
            );
            let _ = writeln!(
                out,
                "{pad}chain: {}; path: {}; revocation: {}",
                safe(&chain_text(&c.chain_status)),
                safe(&path_text(&c.path)),
                safe(&revocation_text(&c.revocation))
            );
            for (depth, e) in c.chain.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{pad}  {}. {} ({}): {} {} bits, signed {}, valid {} to {}",
                    depth + 1,
                    safe(&e.subject),
                    match e.source {
                        crate::facts::model::ChainSource::File => "served",
                        crate::facts::model::ChainSource::TrustStore => "trust store",
                    },
                    word(&e.public_key.kind),
                    e.public_key.bits,
                    safe(&e.signature_algorithm),
                    utc(e.not_before),
                    utc(e.not_after)
                );
            }
            let _ = writeln!(
                out,
                "{pad}renewal window (ARI): {}",
                c.renewal_window
                    .as_ref()
                    .map_or_else(|| "none".into(), crate::facts::network::window_summary)
            );
            let _ = writeln!(out, "{pad}sha256: {}; serial: {}", c.sha256_fingerprint, c.serial);
        }
        CertificateState::Missing(why) => {
            let _ = writeln!(out, "{pad}certificate: missing ({})", safe(why));
        }
        CertificateState::Unreadable(why) => {
            let _ = writeln!(out, "{pad}certificate: unreadable ({})", safe(why));
        }
        CertificateState::Malformed(why) => {
            let _ = writeln!(out, "{pad}certificate: malformed ({})", safe(why));
        }
    }
    let key = match &s.facts.key {
        KeyStatus::Matches => "matches the certificate".to_string(),
        KeyStatus::Mismatch => "does NOT belong to the certificate".to_string(),
        KeyStatus::Missing(why) => format!("missing ({why})"),
        KeyStatus::Unreadable(why) => format!("unreadable ({why})"),
        KeyStatus::Malformed(why) => format!("malformed ({why})"),
        KeyStatus::NotChecked => "not checked".to_string(),
    };
    let _ = writeln!(out, "{pad}private key: {}; covers hostname: {}", safe(&key), s.facts.covers_hostname);
    for e in &s.facts.served {
        let _ = writeln!(out, "{pad}served at {}: {}", e.endpoint, safe(&crate::probe::describe_served(e)));
    }
}

/// A Unix time as "2024-04-01 00:00:00 UTC".
fn utc(seconds: i64) -> String {
    crate::time::utc_seconds(seconds)
}

/// A chain status in words: "trusted", "untrusted (certificate has expired)".
fn chain_text(chain: &ChainStatus) -> String {
    match chain {
        ChainStatus::Trusted => "trusted".into(),
        ChainStatus::Untrusted(why) => format!("untrusted ({why})"),
        ChainStatus::Incomplete(why) => format!("incomplete ({why})"),
        ChainStatus::NotChecked => "not checked".into(),
    }
}

fn path_text(path: &crate::facts::model::PathStatus) -> String {
    use crate::facts::model::PathStatus;
    match path {
        PathStatus::Valid => "valid".into(),
        PathStatus::NotChecked => "not checked".into(),
        PathStatus::Incomplete(why) => format!("incomplete ({why})"),
        PathStatus::Untrusted(why) => format!("untrusted ({why})"),
        PathStatus::Invalid(why) => format!("invalid ({why})"),
    }
}

/// A revocation status in words: "good", "REVOKED on … (keyCompromise)", "unknown (why)".
fn revocation_text(revocation: &Revocation) -> String {
    match revocation {
        Revocation::Good => "good".into(),
        Revocation::Revoked(r) => format!("REVOKED on {} ({})", utc(r.revoked_at), r.reason),
        Revocation::Unknown(why) => format!("unknown ({why})"),
        Revocation::NotChecked => "not checked".into(),
    }
}

/// A line the policy wrote with `host.log`, as printed: `policy log [info]: message`, the
/// message escaped ([`crate::text::untrusted`]).
pub fn log_line(line: &crate::policy::LogLine) -> String {
    format!("policy log [{}]: {}", word(&line.level), safe(&line.message))
}

/// A notice's message with the service it is about, unless the message names it already (the
/// default policy's read "Service web: ...").
pub fn notice_text(notice: &Notice) -> String {
    let message = safe(&notice.message);
    match &notice.service {
        Some(s) if !notice.message.starts_with(&format!("Service {s}: ")) => format!("{s}: {message}"),
        _ => message.into_owned(),
    }
}

/// The closing line.
pub fn summary(report: &RunReport) -> String {
    let count = |d: Decision| report.services.iter().filter(|s| s.decision == d).count();
    let failed = report.services.iter().flat_map(|s| &s.actions).filter(|a| a.failed()).count();
    let errors = report.notices.iter().filter(|n| n.level == Level::Error).count();
    format!(
        "{} services: {} keep, {} replace, {} replace-or-placeholder, {} placeholder; {} failed actions, {} errors{}",
        report.services.len(),
        count(Decision::Keep),
        count(Decision::Replace),
        count(Decision::ReplaceOrPlaceholder),
        count(Decision::Placeholder),
        failed,
        errors,
        if report.dry_run { " (dry run: nothing changed)" } else { "" }
    )
}
