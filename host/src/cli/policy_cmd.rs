//! `checkallsslcerts policy ...`

use std::path::Path;

use super::{PolicyCommand, RunArgs, exit};
use crate::conformance;
use crate::facts::model::HostFacts;
use crate::policy::{PolicyModule, Runtime};

pub fn run(command: PolicyCommand, args: &RunArgs) -> i32 {
    // Compiled modules are cached as for a run: in the state dir when it exists, else the user's.
    let state_dir = crate::config::load(&args.config.clone().unwrap_or_else(crate::config::default_path))
        .map(|config| config.state_dir)
        .unwrap_or_else(|_| crate::config::DEFAULT_STATE_DIR.into());
    let runtime = match Runtime::new(crate::policy::cache::dir_for(&state_dir)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            return exit::ERRORS;
        }
    };
    match command {
        PolicyCommand::Show if args.policy.is_none() => super::policy_store_cmd::show(&runtime, args),
        PolicyCommand::Show => show(&runtime, args.policy.as_deref()),
        PolicyCommand::Install(install) => super::policy_store_cmd::install(&install, args),
        PolicyCommand::Rollback => super::policy_store_cmd::rollback(args),
        PolicyCommand::Componentize { core, output } => {
            super::policy_store_cmd::componentize(&runtime, &core, &output)
        }
        PolicyCommand::Eval { facts } => eval(&runtime, args.policy.as_deref(), &facts),
        PolicyCommand::Facts { at } => {
            // The same times a dry run's --at takes (one parser: `time::parse_at`).
            match at.as_deref().map(|t| crate::time::parse_at(t, crate::time::unix_now())).transpose() {
                Ok(at) => facts(args, at),
                Err(message) => {
                    eprintln!("checkallsslcerts: --at: {message}");
                    exit::USAGE
                }
            }
        }
        PolicyCommand::Test { module, vectors, suite, junit } => test(
            &runtime,
            module.as_deref().or(args.policy.as_deref()),
            vectors.as_deref(),
            suite.as_deref(),
            junit.as_deref(),
        ),
    }
}

fn load(runtime: &Runtime, path: Option<&Path>) -> Result<PolicyModule, i32> {
    match path {
        Some(path) => runtime.load_file(path),
        None => runtime.load_embedded(),
    }
    .map_err(|e| {
        eprintln!("checkallsslcerts: {e}");
        exit::ERRORS
    })
}

/// `policy facts`: the facts a (dry) run would hand the policy, as `policy eval --facts` reads
/// them; the host's warnings about them on stderr.
fn facts(args: &RunArgs, at: Option<i64>) -> i32 {
    let config = args.config.clone().unwrap_or_else(crate::config::default_path);
    match crate::pipeline::facts(&config, at) {
        Ok((facts, notices)) => {
            for notice in &notices {
                let level = match notice.level {
                    crate::plan::model::Level::Info => "note",
                    crate::plan::model::Level::Warning => "warning",
                    crate::plan::model::Level::Error => "error",
                };
                eprintln!("checkallsslcerts: {level}: {}", notice.message);
            }
            match serde_json::to_string_pretty(&facts) {
                Ok(json) => {
                    say!("{json}");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("checkallsslcerts: cannot print the facts: {e}");
                    exit::ERRORS
                }
            }
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            e.exit_code()
        }
    }
}

fn show(runtime: &Runtime, path: Option<&Path>) -> i32 {
    let module = match load(runtime, path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    match runtime.metadata(&module) {
        Ok(meta) => {
            say!("name:             {}", meta.name);
            say!("version:          {}", meta.version);
            say!("description:      {}", meta.description);
            say!("contract version: {}", meta.contract_version);
            say!("sha256:           {}", module.sha256);
            say!("source:           {}", module.source);
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            exit::ERRORS
        }
    }
}

fn eval(runtime: &Runtime, path: Option<&Path>, facts_path: &Path) -> i32 {
    let facts: HostFacts = match crate::fs::read_bounded(facts_path, crate::fs::limits::JSON_INPUT)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).map_err(|_| "is not UTF-8 text".to_string()))
        .and_then(|text| conformance::vector::parse_facts(&text).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("checkallsslcerts: {}: {e}", facts_path.display());
            return exit::USAGE;
        }
    };
    let module = match load(runtime, path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    match runtime.evaluate(&module, &facts) {
        Ok(evaluation) => {
            for line in &evaluation.logs {
                eprintln!("{}", crate::report::text::log_line(line));
            }
            // In the module's own contract's terms: a 0.1.0 module's plan as 0.1.0 spells it.
            let json = match module.version {
                crate::policy::ContractVersion::V0_1_0 => serde_json::to_string_pretty(
                    &crate::policy::contract::since_v0_1_0::PlanV0_1_0::from(&evaluation.plan),
                ),
                _ => serde_json::to_string_pretty(&evaluation.plan),
            };
            match json {
                Ok(json) => {
                    say!("{json}");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("checkallsslcerts: cannot print the plan: {e}");
                    exit::ERRORS
                }
            }
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            exit::ERRORS
        }
    }
}

fn test(
    runtime: &Runtime,
    path: Option<&Path>,
    vectors: Option<&Path>,
    suite: Option<&str>,
    junit: Option<&Path>,
) -> i32 {
    let module = match load(runtime, path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let metadata = match runtime.metadata(&module) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            return exit::ERRORS;
        }
    };
    let suites = match vectors {
        Some(dir) => conformance::load_dir(dir, module.version),
        None => conformance::builtin_suites(module.version, suite),
    };
    let suites = match suites {
        Ok(s) => s,
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            return exit::USAGE;
        }
    };
    say!(
        "testing policy `{}` {} (contract {}) from {}",
        metadata.name,
        metadata.version,
        metadata.contract_version,
        module.source
    );
    let report = conformance::run(runtime, &module, &suites);
    crate::cli::out(format_args!("{}", report.render()));
    if let Some(junit) = junit {
        let written = conformance::junit::to_xml(&report)
            .and_then(|xml| std::fs::write(junit, xml).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("checkallsslcerts: cannot write {}: {e}", junit.display());
            return exit::ERRORS;
        }
    }
    if report.failed() == 0 { exit::OK } else { exit::ERRORS }
}
