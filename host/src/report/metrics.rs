//! The run as Prometheus metrics, in the text exposition format that node_exporter's textfile
//! collector reads (`--collector.textfile.directory`, files ending in `.prom`).
//!
//! Written by changing runs only (a dry run changes nothing, so it leaves the last real run's
//! metrics in place), atomically: a temporary file in the same folder, renamed over the old one,
//! so the collector never reads half a file.
//!
//! Label cardinality stays bounded: one series per service for each certificate metric, one per
//! service and decision (four decisions), and one per service and reason *present* from the
//! contract's fixed vocabulary; a policy's free-form `other(...)` reason is shown as
//! `reason="other"`.
//!
//! The days left are exported as `checkallsslcerts_certificate_remaining_seconds`, not in days:
//! `promtool check metrics` refuses a metric named in days ("use base unit seconds"). Divide by
//! 86400 in PromQL for days.

use std::fmt::Write as _;
use std::path::Path;

use super::model::RunReport;
use super::text::word;
use crate::exit;
use crate::plan::model::{Decision, Level, Reason};

/// Every decision, for the `checkallsslcerts_service_decision` series.
const DECISIONS: [Decision; 4] =
    [Decision::Keep, Decision::Replace, Decision::ReplaceOrPlaceholder, Decision::Placeholder];

/// A label value escaped for the exposition format: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text escaped: `\` → `\\`, newline → `\n`.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whether a run with this exit code succeeded: everything fine, or only waiting for the CA.
pub fn succeeded(exit_code: i32) -> bool {
    exit_code == exit::OK || exit_code == exit::RETRY_PENDING
}

/// The reason's label value: its contract name, or `other` for any `other(...)`.
pub fn reason_label(reason: &Reason) -> String {
    match reason {
        Reason::Other(_) => "other".to_string(),
        r => word(r),
    }
}

struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} gauge");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// The metrics of a run. `pending_orders` is the number of certificate orders still waiting at
/// the CA (0 while the run has no ACME step).
pub fn render(report: &RunReport, pending_orders: usize) -> String {
    let mut out = String::new();

    let name = "checkallsslcerts_certificate_not_after_seconds";
    let mut f =
        Family::new(&mut out, name, "When the service's installed certificate expires (Unix seconds).");
    for s in &report.services {
        if let Some(not_after) = s.certificate.not_after {
            f.sample(name, &[("service", &s.name)], not_after);
        }
    }

    let name = "checkallsslcerts_certificate_remaining_seconds";
    let mut f = Family::new(
        &mut out,
        name,
        "Seconds the service's certificate had left when the run started (negative once expired).",
    );
    for s in &report.services {
        if let Some(not_after) = s.certificate.not_after {
            f.sample(name, &[("service", &s.name)], not_after - report.started_at);
        }
    }

    let name = "checkallsslcerts_service_decision";
    let mut f = Family::new(
        &mut out,
        name,
        "The policy's decision for the service: 1 for the current decision, 0 for the others.",
    );
    for s in &report.services {
        for d in DECISIONS {
            f.sample(name, &[("service", &s.name), ("decision", &word(&d))], u8::from(s.decision == d));
        }
    }

    let name = "checkallsslcerts_service_reason";
    let mut f = Family::new(
        &mut out,
        name,
        "A reason the policy gave for the service (1 while present); other(...) reasons are reason=\"other\".",
    );
    for s in &report.services {
        let mut reasons: Vec<String> = s.reasons.iter().map(reason_label).collect();
        reasons.sort();
        reasons.dedup();
        for reason in reasons {
            f.sample(name, &[("service", &s.name), ("reason", &reason)], 1);
        }
    }

    let name = "checkallsslcerts_service_certificate_ok";
    let mut f = Family::new(
        &mut out,
        name,
        "1 if the service's certificate file holds a readable certificate, 0 if it is missing, unreadable or malformed.",
    );
    for s in &report.services {
        f.sample(name, &[("service", &s.name)], u8::from(s.certificate.state == "ok"));
    }

    let name = "checkallsslcerts_notices";
    let mut f = Family::new(&mut out, name, "Notices of the last run, by level.");
    for level in [Level::Info, Level::Warning, Level::Error] {
        let n = report.notices.iter().filter(|n| n.level == level).count();
        f.sample(name, &[("level", &word(&level))], n);
    }

    let name = "checkallsslcerts_last_run_timestamp_seconds";
    let mut f = Family::new(&mut out, name, "When the last changing run started (Unix seconds).");
    f.sample(name, &[], report.started_at);

    let name = "checkallsslcerts_last_run_success";
    let mut f = Family::new(
        &mut out,
        name,
        "1 if the last run found no errors (exit code 0, or 75: an order is still pending at the CA), else 0.",
    );
    f.sample(name, &[], u8::from(succeeded(report.exit_code)));

    let name = "checkallsslcerts_policy_info";
    let mut f = Family::new(&mut out, name, "The policy that made the plan (always 1).");
    let p = &report.policy;
    f.sample(
        name,
        &[
            ("name", &p.name),
            ("version", &p.version),
            ("sha256", &p.sha256),
            ("contract", &p.contract_version),
        ],
        1,
    );

    let name = "checkallsslcerts_pending_orders";
    let mut f = Family::new(&mut out, name, "Certificate orders still being processed by the CA.");
    f.sample(name, &[], pending_orders);

    out
}

/// Writes `text` to `path` atomically and link-safely, mode 0644 so the collector can read it
/// ([`crate::fs::write_atomic`]; a relative path is taken from the working directory).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let path = std::path::absolute(path)?;
    crate::fs::write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(())
}

/// Renders the report's metrics and writes them to `path`; the error names the file.
pub fn write(path: &Path, report: &RunReport, pending_orders: usize) -> Result<(), String> {
    write_atomically(path, &render(report, pending_orders))
        .map_err(|e| format!("cannot write the metrics file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("line\nbreak"), "line\\nbreak");
        assert_eq!(escape_label("plain-ünïcode"), "plain-ünïcode");
    }

    #[test]
    fn other_reasons_collapse_to_one_label() {
        assert_eq!(reason_label(&Reason::Other("anything at all".into())), "other");
        assert_eq!(reason_label(&Reason::ExpiringSoon), "expiring-soon");
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.prom");
        write_atomically(&path, "a 1\n").expect("first");
        write_atomically(&path, "b 2\n").expect("second");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "b 2\n");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o644);
        let missing = dir.path().join("no/such/dir/c.prom");
        let report_err = write_atomically(&missing, "x").expect_err("no folder");
        assert_eq!(report_err.kind(), std::io::ErrorKind::NotFound);
    }
}
