//! The JSON report as `--json` prints it: exactly `serde_json::to_writer_pretty`'s bytes, with the
//! services (nearly all of a large report) rendered on every core.
//!
//! 10,000 services make ~15 MB of JSON; rendered on one core that is ~50 ms at the end of every
//! run. Here the report is rendered without its services (a few hundred bytes), and the services
//! are rendered in batches of [`BATCH`] in parallel, each with the pretty formatter at depth 0 and
//! re-indented to their depth in the report, then written in order between the two halves. A
//! batch at a time bounds the memory (a 100,000-service report is never held whole).

use std::io::{self, Write};

use rayon::prelude::*;

use super::model::{RunReport, ServiceReport};

/// Services rendered at once.
const BATCH: usize = 512;

/// The line serde_json writes for the report's `services` key with an empty list: a key at depth
/// 1 is the only line indented by exactly two spaces, and JSON strings hold no raw newline, so
/// this text occurs once.
const EMPTY_SERVICES: &[u8] = b"\n  \"services\": []";

/// The indentation of a service's lines: inside the report's object and its `services` list.
const SERVICE_INDENT: &[u8] = b"\n    ";

/// Writes `report` as pretty JSON (no trailing newline), byte for byte what
/// `serde_json::to_writer_pretty` writes. The services are moved out while the rest is rendered
/// and put back before returning.
pub fn write_pretty(report: &mut RunReport, out: &mut impl Write) -> io::Result<()> {
    let services = std::mem::take(&mut report.services);
    let shell = serde_json::to_vec_pretty(&*report);
    report.services = services;
    let shell = shell?;
    let at = shell.windows(EMPTY_SERVICES.len()).position(|w| w == EMPTY_SERVICES).ok_or_else(|| {
        io::Error::other("the report's services key was not where serde_json writes it (a bug)")
    })?;
    let (before, after) = shell.split_at(at + EMPTY_SERVICES.len() - 1);
    out.write_all(before)?;
    let mut first = true;
    for batch in report.services.chunks(BATCH) {
        let rendered: Vec<Vec<u8>> = batch.par_iter().map(render).collect::<Result<_, _>>()?;
        for service in rendered {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(SERVICE_INDENT)?;
            out.write_all(&service)?;
        }
    }
    if !first {
        out.write_all(b"\n  ")?;
    }
    out.write_all(after)
}

/// One service as pretty JSON, its lines after the first indented to the service's depth in the
/// report (done here, on the batch's threads, so that writing is one copy per service).
fn render(service: &ServiceReport) -> io::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(2048);
    serde_json::to_writer_pretty(&mut text, service)?;
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let mut indented = Vec::with_capacity(text.len() + lines * (SERVICE_INDENT.len() - 1));
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            indented.extend_from_slice(SERVICE_INDENT);
        }
        indented.extend_from_slice(line);
    }
    Ok(indented)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::facts::model::{CertificateState, KeyStatus, ServiceFacts};
    use crate::plan::model::{Decision, Level, Notice};
    use crate::report::model::{ActionKind, ActionReport, CertificateSummary, PolicyInfo};

    fn service(i: usize) -> ServiceReport {
        // Text a report must escape: quotes, a newline, a control character, non-ASCII.
        let name = format!("s{i} \"quoted\"\nline\u{7} é");
        let state = CertificateState::Missing(format!("/etc/{i}.pem"));
        ServiceReport {
            name: name.clone(),
            certificate: CertificateSummary::of(&state, 0),
            decision: if i.is_multiple_of(2) { Decision::Keep } else { Decision::Placeholder },
            reasons: Vec::new(),
            actions: (0..i % 3)
                .map(|_| ActionReport {
                    kind: ActionKind::Recover,
                    outcome: "done",
                    message: "  \"services\": []".into(),
                })
                .collect(),
            facts: ServiceFacts {
                name,
                certificate: state,
                key: KeyStatus::NotChecked,
                covers_hostname: i.is_multiple_of(2),
                served: Vec::new(),
                group: None,
                check_only: false,
            },
        }
    }

    fn report(services: usize) -> RunReport {
        RunReport {
            report_version: 2,
            tool_version: "0".into(),
            hostname: "host.example.com".into(),
            started_at: 0,
            dry_run: true,
            policy: PolicyInfo {
                name: "p".into(),
                version: "1".into(),
                contract_version: "0.2.0".into(),
                sha256: "00".into(),
                source: "(embedded default policy)".into(),
                fallback_from: None,
                log: vec![crate::policy::contract::LogLine {
                    level: Level::Info,
                    message: "\n  \"services\": []".into(),
                }],
                log_dropped: 0,
            },
            order_hostname_certificate: false,
            orders: vec!["hostname".into()],
            network: Default::default(),
            services: (0..services).map(service).collect(),
            notices: vec![Notice { level: Level::Warning, service: None, message: "a\nb".into() }],
            exit_code: 0,
        }
    }

    #[test]
    fn the_same_bytes_as_serde_json() {
        // None, one, a partial batch, and several batches with a partial last one.
        for n in [0, 1, 7, BATCH, 2 * BATCH + 3] {
            let mut report = report(n);
            let expected = serde_json::to_vec_pretty(&report).unwrap();
            let mut written = Vec::new();
            write_pretty(&mut report, &mut written).unwrap();
            assert!(written == expected, "{n} services:\n{}", String::from_utf8_lossy(&written));
            assert_eq!(report.services.len(), n, "the services are put back");
        }
    }
}
