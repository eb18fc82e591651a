//! The JSON report (`--json`) stays stable: the real binary runs `--dry-run --json` on scratch
//! certificates, and the *shape* of its output — every field's path and JSON type, recursively —
//! must equal the committed golden file `tests/golden/json-report-v1.json`.
//!
//! A field that disappears, is renamed or changes type fails this test. Adding a field fails it
//! too, so that the golden file (and `docs/json-report.md`) are updated on purpose:
//! `UPDATE_GOLDEN=1 cargo test -p checkallsslcerts --test json_report` rewrites the golden file.
//! Removing a field or changing its meaning also needs `REPORT_VERSION` bumped (and a new
//! golden file `json-report-v<N>.json`).

mod support;
mod tell_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use support::Run;
use tell_support::{DAY, Scratch};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(format!("json-report-v{}.json", checkallsslcerts::report::REPORT_VERSION))
}

fn docs_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/json-report.md")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every path in `v` (`services[].certificate.not-after`) with the set of JSON types seen there.
fn shape(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    out.entry(if path.is_empty() { "$".to_string() } else { path.to_string() }).or_default().insert(kind(v));
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                shape(value, &child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

fn flatten(shape: &BTreeMap<String, BTreeSet<&'static str>>) -> BTreeMap<String, String> {
    shape.iter().map(|(k, v)| (k.clone(), v.iter().copied().collect::<Vec<_>>().join("|"))).collect()
}

/// A host with one service in each state the report describes differently.
fn fixture() -> (Scratch, PathBuf) {
    let s = Scratch::new();
    s.issue("good", 60 * DAY);
    s.issue("expiring", 2 * DAY + 3600);
    s.issue("expired", -2 * DAY);
    tell_support::self_signed(&s.path("selfsigned.pem"), &s.path("selfsigned.key"));
    // "missing" has no files at all; "mismatch" has good's certificate with another key.
    std::fs::copy(s.path("good.pem"), s.path("mismatch.pem")).expect("copy");
    tell_support::self_signed(&s.path("other.pem"), &s.path("mismatch.key"));
    let services: String = ["good", "expiring", "expired", "selfsigned", "missing", "mismatch"]
        .iter()
        .map(|n| s.service(n))
        .collect();
    let config = s.config(&services);
    (s, config)
}

#[test]
fn the_json_report_keeps_its_shape() {
    let (_s, config) = fixture();
    let out = Run::new().arg("--config").arg(&config).args(["--dry-run", "--json"]).run();
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr));
    assert_eq!(report["report-version"], checkallsslcerts::report::REPORT_VERSION);
    assert_eq!(report["dry-run"], true);

    let mut found = BTreeMap::new();
    shape(&report, "", &mut found);
    let found = flatten(&found);
    let golden = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().expect("dir")).expect("golden dir");
        let text = serde_json::to_string_pretty(&found).expect("json") + "\n";
        std::fs::write(&golden, text).expect("write golden");
        eprintln!("rewrote {}", golden.display());
        return;
    }
    let text = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", golden.display()));
    let expected: BTreeMap<String, String> = serde_json::from_str(&text).expect("golden is JSON");

    let mut problems = Vec::new();
    for (path, kinds) in &expected {
        match found.get(path) {
            None => problems.push(format!("removed or renamed: {path} ({kinds})")),
            Some(k) if k != kinds => problems.push(format!("type changed: {path}: {kinds} -> {k}")),
            Some(_) => {}
        }
    }
    for (path, kinds) in &found {
        if !expected.contains_key(path) {
            problems.push(format!("added: {path} ({kinds})"));
        }
    }
    assert!(
        problems.is_empty(),
        "the JSON report's shape differs from {}:\n  {}\n\nA removed field or a changed meaning needs REPORT_VERSION \
         bumped. If the change is deliberate, document it in docs/json-report.md and rewrite the golden file \
         with UPDATE_GOLDEN=1 cargo test -p checkallsslcerts --test json_report.",
        golden.display(),
        problems.join("\n  ")
    );
}

/// `checkallsslcerts --json | head`: the run's exit code stands, whatever the reader does.
#[test]
fn a_closed_stdout_does_not_change_the_exit_code() {
    let (_s, config) = fixture();
    let expected = Run::new().arg("--config").arg(&config).args(["--dry-run", "--json"]).run().code;
    for args in [["--dry-run", "--json"], ["--dry-run", "--verbose"]] {
        let out = Run::new().arg("--config").arg(&config).args(args).run_with_stdout_closed().code(expected);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("Broken pipe"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn every_field_of_the_golden_file_is_documented() {
    let golden: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).expect("golden")).expect("json");
    let docs = std::fs::read_to_string(docs_path()).expect("docs/json-report.md");
    let mut missing: Vec<&str> = golden
        .keys()
        .filter_map(|path| path.rsplit('.').next())
        .map(|key| key.trim_end_matches("[]"))
        .filter(|key| *key != "$" && !docs.contains(&format!("`{key}`")))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    assert!(missing.is_empty(), "fields not described in docs/json-report.md: {missing:?}");
}
