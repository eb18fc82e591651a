//! The policy conformance suite: runs a policy module against vectors (facts in, expectations
//! out) and checks the contract's invariants on every one of them.
//!
//! The suites are data under `tests/conformance/vX.Y.Z/<suite>/*.json`, versioned with the
//! contract, and built into the binary; `policy test --vectors DIR` runs others. `contract` is
//! what every policy must pass; `default` holds the default policy's rules.

pub mod check;
pub mod junit;
pub mod vector;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::policy::{ContractVersion, PolicyModule, Runtime};
pub use vector::Vector;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/conformance_vectors.rs"));
}

/// A named set of vectors, e.g. `v0.1.0/contract`.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub vectors: Vec<Vector>,
}

/// The built-in suites for a contract version (`v0.1.0/contract`, `v0.1.0/default`, ...),
/// optionally only the one named `only` (e.g. "contract").
pub fn builtin_suites(version: ContractVersion, only: Option<&str>) -> Result<Vec<Suite>, String> {
    let prefix = format!("v{}/", version.as_str());
    let mut suites: Vec<Suite> = Vec::new();
    for (path, text) in builtin::VECTORS {
        let Some(rest) = path.strip_prefix(&prefix) else { continue };
        let Some((suite, _file)) = rest.split_once('/') else { continue };
        if only.is_some_and(|o| o != suite) {
            continue;
        }
        let vector = vector::parse(path, text, version)?;
        let name = format!("v{}/{suite}", version.as_str());
        match suites.iter_mut().find(|s| s.name == name) {
            Some(s) => s.vectors.push(vector),
            None => suites.push(Suite { name, vectors: vec![vector] }),
        }
    }
    if suites.is_empty() {
        return Err(match only {
            Some(o) => format!("no built-in suite `{o}` for contract version {version}"),
            None => format!("no built-in suites for contract version {version}"),
        });
    }
    Ok(suites)
}

/// Suites from a directory: either one suite (a folder of `*.json`) or a folder of suites, written
/// for contract `version` (the module's).
pub fn load_dir(dir: &Path, version: ContractVersion) -> Result<Vec<Suite>, String> {
    let mut suites = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let files: Vec<_> = paths.iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    if !files.is_empty() {
        let mut vectors = Vec::new();
        for file in files {
            let text = crate::fs::read_bounded(file, crate::fs::limits::JSON_INPUT)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    String::from_utf8(b.to_vec())
                        .map_err(|_| format!("{}: is not UTF-8 text", file.display()))
                })?;
            vectors.push(vector::parse(&file.display().to_string(), &text, version)?);
        }
        suites.push(Suite { name: dir.display().to_string(), vectors });
    }
    for sub in paths.iter().filter(|p| p.is_dir()) {
        suites.extend(load_dir(sub, version)?);
    }
    if suites.is_empty() {
        return Err(format!("{}: no conformance vectors (*.json) here", dir.display()));
    }
    Ok(suites)
}

/// The result of one vector.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub suite: String,
    pub name: String,
    pub description: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    pub duration: Duration,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The results of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub module: String,
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// A readable summary: one line per suite, then every failure with its differences.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut suites: Vec<&str> = self.cases.iter().map(|c| c.suite.as_str()).collect();
        suites.dedup();
        for suite in &suites {
            let cases: Vec<&CaseResult> = self.cases.iter().filter(|c| c.suite == *suite).collect();
            let failed = cases.iter().filter(|c| !c.passed()).count();
            out.push_str(&format!("{suite}: {} passed, {failed} failed\n", cases.len() - failed));
            for case in cases.iter().filter(|c| !c.passed()) {
                out.push_str(&format!("  FAIL {}\n", case.name));
                if !case.description.is_empty() {
                    out.push_str(&format!("       {}\n", case.description));
                }
                for failure in &case.failures {
                    out.push_str(&format!("       - {}\n", failure.replace('\n', "\n         ")));
                }
            }
        }
        out.push_str(&format!("{} passed, {} failed\n", self.passed(), self.failed()));
        out
    }
}

/// Runs every vector of every suite through the module: evaluates twice, checks the
/// invariants and the vector's expectations.
pub fn run(runtime: &Runtime, module: &PolicyModule, suites: &[Suite]) -> Report {
    let mut cases = Vec::new();
    for suite in suites {
        for vector in &suite.vectors {
            let started = Instant::now();
            let failures = run_one(runtime, module, vector);
            cases.push(CaseResult {
                suite: suite.name.clone(),
                name: vector.name.clone(),
                description: vector.description.clone(),
                failures,
                duration: started.elapsed(),
            });
        }
    }
    Report { module: module.label(), cases }
}

fn run_one(runtime: &Runtime, module: &PolicyModule, vector: &Vector) -> Vec<String> {
    let first = match runtime.evaluate(module, &vector.facts) {
        Ok(e) => e.plan,
        Err(e) => return vec![e.to_string()],
    };
    let second = match runtime.evaluate(module, &vector.facts) {
        Ok(e) => e.plan,
        Err(e) => return vec![format!("second evaluation failed: {e}")],
    };
    let mut failures = check::invariants(&vector.facts, &first, &second);
    failures.extend(check::expectations(&vector.expect, &first));
    failures
}
