//! The policy runtime with real components: the embedded default policy, the example policy,
//! and the hostile set in `tests/hostile/` (each must end in bounded time with a clear error
//! naming the module, and never panic the host).

mod support;
mod tell_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkallsslcerts::conformance;
use checkallsslcerts::facts::model::HostFacts;
use checkallsslcerts::plan::{Decision, PlanError};
use checkallsslcerts::policy::{PolicyError, PolicySource, Runtime};
use serde_json::Value;
use support::Run;
use tell_support::{DAY, Scratch};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn facts() -> HostFacts {
    conformance::vector::parse_facts(
        r#"{"now": 1800000000, "hostname": "host.example.com", "acme": {"directory-url": "https://acme.test/dir"},
            "services": [
              {"name": "web", "certificate": {"ok": {"not-before": "now-80d", "not-after": "now+10d",
                 "issuer-org": "Let's Encrypt", "chain-status": "trusted", "dns-names": ["host.example.com"]}}},
              {"name": "mail", "certificate": {"missing": "/etc/ssl/mail.pem"}}]}"#,
    )
    .expect("facts parse")
}

/// A hostile module from `tests/hostile/NAME.wat`: a component as written, or a core module
/// given the contract's world and encoded as a component the way real policies are built.
fn hostile(name: &str) -> Vec<u8> {
    let dir = workspace().join("tests/hostile");
    let text = std::fs::read_to_string(dir.join(format!("{name}.wat"))).expect("hostile module exists");
    if text.contains("(module") {
        let prelude = std::fs::read_to_string(dir.join("_prelude.wat")).expect("prelude");
        // A module that exports 0.2.0's `evaluate` is built against that contract, prelude included.
        let version = if text.contains("@0.2.0#evaluate") { "0.2.0" } else { "0.1.0" };
        let text = text.replace(";; PRELUDE", &prelude.replace("0.1.0", version));
        let mut core = wat::parse_str(&text).expect("hostile core module parses");
        let mut resolve = wit_parser::Resolve::default();
        let (package, _) =
            resolve.push_dir(workspace().join(format!("wit/since_v{version}"))).expect("contract parses");
        let world = resolve.select_world(&[package], Some("policy")).expect("world");
        wit_component::embed_component_metadata(
            &mut core,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .expect("embed");
        wit_component::ComponentEncoder::default()
            .module(&core)
            .and_then(|e| e.validate(true).encode())
            .expect("hostile module encodes as a component")
    } else {
        wat::parse_str(&text).expect("hostile component parses")
    }
}

fn load_hostile(
    runtime: &Runtime,
    name: &str,
) -> Result<checkallsslcerts::policy::PolicyModule, PolicyError> {
    runtime.load_bytes(&hostile(name), PolicySource::File(PathBuf::from(format!("{name}.wasm"))))
}

fn evaluate_hostile(name: &str) -> PolicyError {
    let runtime = Runtime::new(None).expect("runtime");
    let module = load_hostile(&runtime, name).expect("hostile module loads");
    let started = Instant::now();
    let error = runtime.evaluate(&module, &facts()).expect_err("hostile module must fail");
    assert!(started.elapsed() < Duration::from_secs(20), "{name} took {:?}", started.elapsed());
    assert!(error.to_string().contains(&format!("{name}.wasm")), "error names the module: {error}");
    error
}

#[test]
fn embedded_policy_identifies_itself() {
    let runtime = Runtime::new(None).expect("runtime");
    let module = runtime.load_embedded().expect("embedded policy loads");
    let meta = runtime.metadata(&module).expect("metadata");
    assert_eq!(meta.name, "default");
    assert_eq!(meta.contract_version, "0.2.0");
    assert_eq!(module.sha256.len(), 64);
}

#[test]
fn embedded_policy_decides() {
    let runtime = Runtime::new(None).expect("runtime");
    let module = runtime.load_embedded().expect("embedded policy loads");
    let evaluation = runtime.evaluate(&module, &facts()).expect("evaluates");
    let plan = evaluation.plan;
    assert_eq!(plan.decision("web").expect("web").decision, Decision::Replace);
    assert_eq!(plan.decision("mail").expect("mail").decision, Decision::ReplaceOrPlaceholder);
    assert_eq!(plan.orders, [checkallsslcerts::plan::model::OrderRequest { group: "hostname".into() }]);
    assert!(evaluation.fuel_used > 0);
}

#[test]
fn embedded_policy_passes_every_builtin_suite() {
    let runtime = Runtime::new(None).expect("runtime");
    let module = runtime.load_embedded().expect("embedded policy loads");
    let suites = conformance::builtin_suites(module.version, None).expect("suites");
    assert!(suites.iter().any(|s| s.name.ends_with("/contract")));
    assert!(suites.iter().any(|s| s.name.ends_with("/default")));
    let report = conformance::run(&runtime, &module, &suites);
    assert_eq!(report.failed(), 0, "{}", report.render());
    assert!(report.passed() > 50);
}

#[test]
fn example_policy_passes_contract_and_differs_from_default() {
    let runtime = Runtime::new(None).expect("runtime");
    let module =
        runtime.load_file(Path::new(env!("CHECKALLSSLCERTS_EXAMPLE_POLICY"))).expect("example loads");
    assert_eq!(runtime.metadata(&module).expect("metadata").name, "lifetime-fraction");
    let contract = conformance::builtin_suites(module.version, Some("contract")).expect("contract suite");
    let report = conformance::run(&runtime, &module, &contract);
    assert_eq!(report.failed(), 0, "{}", report.render());
    let default = conformance::builtin_suites(module.version, Some("default")).expect("default suite");
    let report = conformance::run(&runtime, &module, &default);
    assert!(report.failed() > 0, "the example's rules differ from the default's on purpose");
    // A Let's Encrypt certificate with exactly 25 days left is kept by the default policy
    // (not < 25 days) but replaced by the example (less than a third of its lifetime is left).
    let lets_encrypt_25 =
        report.cases.iter().find(|c| c.name.contains("003-letsencrypt-exactly-25d")).expect("vector");
    assert!(!lets_encrypt_25.passed());
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    assert!(matches!(evaluate_hostile("endless-loop"), PolicyError::OutOfFuel { .. }));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    assert!(matches!(evaluate_hostile("memory-bomb"), PolicyError::OutOfMemory { .. }));
}

#[test]
fn trap_is_reported() {
    let error = evaluate_hostile("trap");
    assert!(matches!(error, PolicyError::Trap { .. }), "{error}");
}

/// A Rust policy that panics: its panic hook writes the message with `host.log` at level error,
/// then the module traps. The failure keeps that message and the trap's kind, not wasmtime's
/// backtrace of the module's functions.
#[test]
fn a_panicking_policy_keeps_its_panic_message_not_a_backtrace() {
    let runtime = Runtime::new(None).expect("runtime");
    let module = load_hostile(&runtime, "log-and-panic").expect("loads");
    let mut boom = facts();
    boom.services[0].name = "boom".into();
    let error = runtime.evaluate(&module, &boom).expect_err("traps");
    let text = error.to_string();
    assert!(matches!(error, PolicyError::Trap { .. }), "{text}");
    assert!(text.contains("log-and-panic.wasm"), "{text}");
    assert!(text.contains("wasm `unreachable` instruction executed"), "the trap's kind: {text}");
    assert!(
        text.contains("panicked at src/lib.rs:7:9:\nservice `boom` is not allowed"),
        "the panic message: {text}"
    );
    assert!(!text.contains("backtrace") && !text.contains("<unknown>!"), "no wasm backtrace: {text}");
    assert!(!text.contains("about to fail"), "only the error lines: {text}");

    // Without `boom` it decides, and its lines are kept with the plan.
    let evaluation = runtime.evaluate(&module, &facts()).expect("decides");
    let lines: Vec<(String, &str)> =
        evaluation.logs.iter().map(|l| (format!("{:?}", l.level), l.message.as_str())).collect();
    assert_eq!(
        lines,
        [
            ("Info".to_owned(), "the policy looked at every service"),
            ("Info".to_owned(), "a line with a newline\nerror: FORGED by the policy")
        ]
    );
}

/// A scratch host with one service named `service`, and `tests/hostile/log-and-panic.wat` as a
/// component file for `--policy`.
fn talking_policy_host(service: &str) -> (Scratch, PathBuf, PathBuf) {
    let s = Scratch::new();
    s.issue(service, 60 * DAY);
    let config = s.config(&s.service(service));
    let module = s.path("log-and-panic.wasm");
    std::fs::write(&module, hostile("log-and-panic")).expect("module");
    (s, config, module)
}

/// A dry run of `config` with `--policy module` and `args`, expecting exit `code`.
fn dry_run_with(config: &Path, module: &Path, args: &[&str], code: i32) -> support::Outcome {
    Run::new()
        .arg("--config")
        .arg(config)
        .arg("--policy")
        .arg(module)
        .arg("--dry-run")
        .args(args)
        .run()
        .code(code)
}

/// The policy's `host.log` lines reach the run's report: the JSON always (`policy.log`), the
/// text only with `--verbose`, escaped.
#[test]
fn a_policys_log_lines_are_in_the_report_and_shown_with_verbose() {
    let (_s, config, module) = talking_policy_host("web");
    let run = |args: &[&str]| dry_run_with(&config, &module, args, 0);
    let verbose = run(&["--verbose"]).stdout;
    assert!(verbose.contains("\npolicy log [info]: the policy looked at every service\n"), "{verbose}");
    assert!(
        verbose.contains("\npolicy log [info]: a line with a newline\\nerror: FORGED by the policy\n"),
        "escaped, on one line: {verbose}"
    );
    assert!(!verbose.lines().any(|l| l.starts_with("error: FORGED")), "a forged line: {verbose}");
    let quiet = run(&[]).stdout;
    assert!(!quiet.contains("policy log") && !quiet.contains("looked at every service"), "{quiet}");

    let report: Value = serde_json::from_str(&run(&["--json"]).stdout).expect("JSON");
    assert_eq!(
        report["policy"]["log"],
        serde_json::json!([
            {"level": "info", "message": "the policy looked at every service"},
            {"level": "info", "message": "a line with a newline\nerror: FORGED by the policy"}
        ])
    );
    assert_eq!(report["policy"]["log-dropped"], 0);
}

/// A policy that panics in a run: the embedded policy decides instead, and the failure the
/// administrator reads (report, notice) carries the panic message, not a wasm backtrace.
#[test]
fn a_panicking_policys_message_reaches_the_run_report() {
    let (_s, config, module) = talking_policy_host("boom");
    let run = |args: &[&str]| dry_run_with(&config, &module, args, 1);
    let report: Value = serde_json::from_str(&run(&["--json"]).stdout).expect("JSON");
    let failure = report["policy"]["fallback-from"].as_str().unwrap_or_default();
    assert!(failure.contains("wasm `unreachable` instruction executed"), "{report:#}");
    assert!(failure.contains("panicked at src/lib.rs:7:9:\nservice `boom` is not allowed"), "{report:#}");
    assert!(!failure.contains("backtrace") && !failure.contains("about to fail"), "{failure}");
    assert_eq!(report["policy"]["name"], "default", "the embedded policy decided");
    let notices = report["notices"].as_array().expect("notices");
    assert!(
        notices.iter().any(|n| n["level"] == "error"
            && n["message"].as_str().is_some_and(|m| m.contains("service `boom` is not allowed"))),
        "{report:#}"
    );
    let text = run(&["--verbose"]).stdout;
    assert!(!text.contains("backtrace"), "{text}");
    assert!(text.contains("panicked at src/lib.rs:7:9:\\nservice `boom` is not allowed"), "{text}");
}

#[test]
fn plan_naming_unknown_services_is_refused() {
    let error = evaluate_hostile("unknown-service");
    assert!(
        matches!(&error, PolicyError::InvalidPlan { source: PlanError::UnknownService(name), .. } if name == "nope"),
        "{error}"
    );
}

#[test]
fn oversized_plan_is_refused() {
    let error = evaluate_hostile("oversized-plan");
    assert!(
        matches!(
            &error,
            PolicyError::InvalidPlan { source: PlanError::TooManyNotices { count: 200_000, .. }, .. }
        ),
        "{error}"
    );
}

#[test]
fn out_of_bounds_plan_is_refused() {
    let error = evaluate_hostile("out-of-bounds-plan");
    assert!(matches!(error, PolicyError::Trap { .. }), "{error}");
}

#[test]
fn wrong_world_is_not_a_policy() {
    let runtime = Runtime::new(None).expect("runtime");
    let error = load_hostile(&runtime, "wrong-world").err().expect("refused");
    assert!(matches!(error, PolicyError::NotAPolicy { .. }), "{error}");
    assert!(error.to_string().contains("example:greeter/api@1.0.0"), "{error}");
}

#[test]
fn extra_import_is_refused_by_name() {
    let runtime = Runtime::new(None).expect("runtime");
    let error = load_hostile(&runtime, "extra-import").err().expect("refused");
    assert!(matches!(error, PolicyError::ForbiddenImport { .. }), "{error}");
    assert!(error.to_string().contains("imports `wasi:keyvalue/store@0.2.0-draft`"), "{error}");
    // The policy's WASI is 0.2: the same interface in another version is outside the list too.
    let error = load_hostile(&runtime, "sockets-0-3").err().expect("refused");
    assert!(error.to_string().contains("imports `wasi:sockets/tcp@0.3.0-rc-2025-09-16`"), "{error}");
}

/// The WASI interfaces standard toolchains import are offered (empty), so a component importing
/// them loads; the same component with one more import outside the list does not.
#[test]
fn the_policys_wasi_is_offered_and_nothing_else() {
    let runtime = Runtime::new(None).expect("runtime");
    let component = |extra: &str| {
        wat::parse_str(format!(
            r#"(component
                 (import "wasi:cli/stdout@0.2.0" (instance))
                 (import "wasi:clocks/wall-clock@0.2.6" (instance))
                 (import "wasi:random/random@0.2.9" (instance))
                 (import "wasi:sockets/tcp@0.2.0" (instance))
                 (import "wasi:filesystem/preopens@0.2.12" (instance))
                 {extra}
                 (instance $rules)
                 (export "checkallsslcerts:policy/rules@0.2.0" (instance $rules)))"#
        ))
        .expect("component")
    };
    runtime
        .load_bytes(&component(""), PolicySource::File("wasi.wasm".into()))
        .expect("the policy's WASI imports load");
    let error = runtime
        .load_bytes(
            &component(r#"(import "wasi:http/incoming-handler@0.2.0" (instance))"#),
            PolicySource::File("wasi-plus.wasm".into()),
        )
        .err()
        .expect("refused");
    assert!(error.to_string().contains("wasi-plus.wasm"), "{error}");
    assert!(error.to_string().contains("imports `wasi:http/incoming-handler@0.2.0`"), "{error}");
}

#[test]
fn future_contract_version_is_refused() {
    let runtime = Runtime::new(None).expect("runtime");
    let error = load_hostile(&runtime, "future-version").err().expect("refused");
    assert!(
        matches!(error, PolicyError::UnsupportedVersion { ref found, .. } if found == "9.0.0"),
        "{error}"
    );
    assert!(error.to_string().contains("supported: 0.1.0"), "{error}");
}

#[test]
fn interface_without_functions_fails_to_instantiate() {
    let runtime = Runtime::new(None).expect("runtime");
    let module = load_hostile(&runtime, "empty-rules").expect("loads: the check is at instantiation");
    let error = runtime.evaluate(&module, &facts()).expect_err("refused");
    assert!(matches!(error, PolicyError::Instantiate { .. }), "{error}");
}

#[test]
fn garbage_is_not_a_component() {
    let runtime = Runtime::new(None).expect("runtime");
    let error = runtime
        .load_bytes(b"\0asm garbage", PolicySource::File("garbage.wasm".into()))
        .err()
        .expect("refused");
    assert!(matches!(error, PolicyError::Invalid { .. }), "{error}");
    assert!(error.to_string().contains("garbage.wasm"), "{error}");
}

#[test]
fn compiled_components_are_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let first = Runtime::new(Some(cache.clone())).expect("runtime");
    let module = first.load_embedded().expect("compiles and stores");
    let entries: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
    assert_eq!(entries.len(), 1, "one compiled entry");
    let second = Runtime::new(Some(cache)).expect("runtime");
    let cached = second.load_embedded().expect("loads from the cache");
    assert_eq!(cached.sha256, module.sha256);
    let a = first.evaluate(&module, &facts()).expect("evaluates").plan;
    let b = second.evaluate(&cached, &facts()).expect("evaluates").plan;
    assert_eq!(a, b);
}

/// The promise of a versioned contract: a module built against 0.1.0 (the default policy as the
/// host of contract 0.1.0 embedded it, kept byte for byte) still passes its own suites on this
/// host, and answers every one of their vectors with exactly the plan it gave on that host
/// (recorded then with `policy eval`, in `tests/fixtures/policies/default-v0.1.0-plans/`).
#[test]
fn a_v0_1_0_module_runs_unchanged_beside_v0_2_0() {
    use checkallsslcerts::policy::ContractVersion;
    use checkallsslcerts::policy::contract::since_v0_1_0::PlanV0_1_0;
    let fixtures = workspace().join("tests/fixtures/policies");
    let runtime = Runtime::new(None).expect("runtime");
    let module = runtime.load_file(&fixtures.join("default-v0.1.0.wasm")).expect("the 0.1.0 module loads");
    assert_eq!(module.version, ContractVersion::V0_1_0);
    assert_eq!(runtime.metadata(&module).expect("metadata").contract_version, "0.1.0");
    let suites = conformance::builtin_suites(module.version, None).expect("0.1.0 suites");
    let report = conformance::run(&runtime, &module, &suites);
    assert_eq!(report.failed(), 0, "{}", report.render());
    let mut compared = 0;
    for suite in &suites {
        for vector in &suite.vectors {
            let (kind, file) = vector
                .name
                .rsplit_once('/')
                .map(|(dir, f)| (dir.rsplit('/').next().unwrap_or(dir), f))
                .expect("name");
            let recorded =
                std::fs::read_to_string(fixtures.join(format!("default-v0.1.0-plans/{kind}-{file}")))
                    .expect("a recorded plan for every vector");
            let plan = runtime.evaluate(&module, &vector.facts).expect("evaluates").plan;
            let now = serde_json::to_string_pretty(&PlanV0_1_0::from(&plan)).expect("json");
            assert_eq!(now.trim_end(), recorded.trim_end(), "{}", vector.name);
            compared += 1;
        }
    }
    assert_eq!(compared, 82, "every vector of the 0.1.0 suites");
}

/// Most contract vectors have no `expect`: the invariants are their only judge. One hostile
/// module per invariant shows each judges: `policy test` fails it with the invariant's words
/// (`tests/policy_install.rs` shows `policy install` refuses the same modules). Determinism
/// cannot be broken from inside this sandbox (no clock, randomness or state between calls), so
/// its check is shown to fail in `conformance::check`'s unit tests only.
#[test]
fn each_invariant_fails_its_hostile_module_in_policy_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, needles) in [
        ("keeps-web", &["keeps service `web` although its certificate is unreadable"][..]),
        (
            "orders-hostname",
            &[
                "FAIL v0.2.0/contract/021-disable-auto-nothing-to-decide.json",
                "orders a hostname certificate although disable-auto-hostname-certificate is set",
                "FAIL v0.2.0/contract/022-no-ca-nothing-to-decide.json",
                "orders a certificate although no certificate authority is configured",
            ][..],
        ),
        (
            "orders-lan",
            &[
                "FAIL v0.2.0/contract/023-unorderable-group-nothing-to-decide.json",
                "orders a certificate for group `lan`, whose names the certificate authority cannot issue for",
            ][..],
        ),
    ] {
        let file = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, hostile(name)).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_checkallsslcerts"))
            .args(["policy", "test", "--suite", "contract"])
            .arg(&file)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        for needle in needles {
            assert!(stdout.contains(needle), "{name}: {needle:?} in\n{stdout}");
        }
    }
}

/// A 0.1.0 module on a host with certificate groups: its `order-hostname-certificate` orders the
/// hostname group and the groups of the services it replaces, no other.
#[test]
fn a_v0_1_0_modules_order_covers_the_groups_it_replaces() {
    let runtime = Runtime::new(None).expect("runtime");
    let module =
        runtime.load_file(&workspace().join("tests/fixtures/policies/default-v0.1.0.wasm")).expect("loads");
    let facts = |shop_left: &str| {
        conformance::vector::parse_facts(&format!(
            r#"{{"now": 1800000000, "hostname": "host.example.com", "acme": {{"directory-url": "https://acme.test/dir"}},
                "groups": [{{"name": "hostname", "names": ["host.example.com"]}},
                           {{"name": "shop", "names": ["shop.example.com"]}},
                           {{"name": "blog", "names": ["blog.example.com"]}}],
                "services": [
                  {{"name": "mail", "certificate": {{"ok": {{"not-before": "now-80d", "not-after": "now-1d",
                     "issuer-org": "Let's Encrypt", "chain-status": "trusted", "dns-names": ["host.example.com"]}}}}}},
                  {{"name": "shop", "group": "shop", "certificate": {{"ok": {{"not-before": "now-80d",
                     "not-after": "{shop_left}", "issuer-org": "Let's Encrypt", "chain-status": "trusted",
                     "dns-names": ["host.example.com"]}}}}}},
                  {{"name": "blog", "group": "blog", "certificate": {{"ok": {{"not-before": "now-10d",
                     "not-after": "now+80d", "issuer-org": "Let's Encrypt", "chain-status": "trusted",
                     "dns-names": ["host.example.com"]}}}}}}]}}"#
        ))
        .expect("facts")
    };
    let orders = |shop_left: &str| -> Vec<String> {
        let plan = runtime.evaluate(&module, &facts(shop_left)).expect("evaluates").plan;
        plan.orders.into_iter().map(|o| o.group).collect()
    };
    assert_eq!(orders("now+1d"), ["hostname", "shop"], "shop is replaced, blog is not");
    assert_eq!(orders("now+80d"), ["hostname"], "only the hostname's service is replaced");
}
