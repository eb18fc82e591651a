//! Black-box tests of `checkallsslcerts policy ...`.

mod support;

use support::Run;

const EXAMPLE: &str = env!("CHECKALLSSLCERTS_EXAMPLE_POLICY");

#[test]
fn show_describes_the_embedded_policy() {
    let out = Run::new().args(["policy", "show"]).run().code(0);
    assert!(out.stdout.contains("name:             default"), "{}", out.stdout);
    assert!(out.stdout.contains("contract version: 0.2.0"), "{}", out.stdout);
    assert!(out.stdout.contains("(embedded default policy)"), "{}", out.stdout);
}

/// `policy show | head -1` and the like: a reader that stops early must not turn into a panic,
/// and the command's exit code stands.
#[test]
fn a_closed_stdout_ends_the_output_not_the_command() {
    for (args, code) in [(vec!["policy", "show"], 0), (vec!["policy", "test", EXAMPLE], 1)] {
        let out = Run::new().args(&args).run_with_stdout_closed().code(code);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("Broken pipe"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn show_describes_a_module_file() {
    let out = Run::new().args(["policy", "show", "--policy", EXAMPLE]).run().code(0);
    assert!(out.stdout.contains("name:             lifetime-fraction"), "{}", out.stdout);
}

#[test]
fn test_passes_the_default_policy_on_both_suites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let out = Run::new().args(["policy", "test", "--junit"]).arg(&junit).run().code(0);
    assert!(out.stdout.contains("v0.2.0/contract:"), "{}", out.stdout);
    assert!(out.stdout.contains("v0.2.0/default:"), "{}", out.stdout);
    assert!(out.stdout.contains(" 0 failed"), "{}", out.stdout);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<testsuite name=\"v0.2.0/default\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn test_shows_the_example_policy_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("junit.xml");
    let out = Run::new().args(["policy", "test", EXAMPLE, "--junit"]).arg(&junit).run().code(1);
    assert!(
        out.stdout.contains("v0.1.0/contract:") && out.stdout.contains("passed, 0 failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FAIL v0.1.0/default/003-letsencrypt-exactly-25d-left.json"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("decision expected keep, got replace"), "{}", out.stdout);
    assert!(std::fs::read_to_string(&junit).expect("junit").contains("<failure"));
    Run::new().args(["policy", "test", EXAMPLE, "--suite", "contract"]).run().code(0);
}

#[test]
fn eval_prints_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = dir.path().join("facts.json");
    std::fs::write(
        &facts,
        r#"{"now": 1800000000, "hostname": "host.example.com",
            "services": [{"name": "web", "certificate": {"ok": {"not-before": "now-10d", "not-after": "now-1d"}}}]}"#,
    )
    .expect("write");
    let out = Run::new().args(["policy", "eval", "--facts"]).arg(&facts).run().code(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(plan["services"][0]["service"], "web");
    assert_eq!(plan["services"][0]["decision"], "placeholder");
    assert!(plan["services"][0]["reasons"].as_array().expect("reasons").contains(&"expired".into()));
}

#[test]
fn eval_names_a_bad_facts_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = dir.path().join("broken.json");
    std::fs::write(&facts, r#"{"now": 1, "hostname": "h", "services": [{"name": 3}]}"#).expect("write");
    let out = Run::new().args(["policy", "eval", "--facts"]).arg(&facts).run().code(2);
    assert!(out.stderr.contains("broken.json"), "{}", out.stderr);
}

#[test]
fn a_module_that_is_not_a_component_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = dir.path().join("not-a-policy.wasm");
    std::fs::write(&module, b"hello").expect("write");
    let out = Run::new().args(["policy", "show", "--policy"]).arg(&module).run().code(1);
    assert!(out.stderr.contains("not-a-policy.wasm"), "{}", out.stderr);
    assert!(out.stderr.contains("not a valid WebAssembly component"), "{}", out.stderr);
}

/// `--version` names the commit the binary was built from and the embedded default policy's
/// SHA-256 (the bytes `policy show` reports as the embedded module's); `-V` the version alone.
#[test]
fn version_names_the_commit_and_the_default_policy() {
    let long = Run::new().arg("--version").run().code(0).stdout;
    assert!(long.starts_with(&format!("checkallsslcerts {}\n", env!("CARGO_PKG_VERSION"))), "{long}");
    let commit = env!("CHECKALLSSLCERTS_GIT_COMMIT");
    assert!(long.contains(&format!("commit:         {commit}\n")), "{long}");
    if let Ok(out) = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output()
        && out.status.success()
    {
        // Built from this checkout (an edit since the build does not change HEAD).
        let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(commit == head || commit == "unknown", "built from {commit}, HEAD is {head}");
    }
    let show = Run::new().args(["policy", "show"]).run().code(0).stdout;
    let sha = show
        .lines()
        .find_map(|l| l.strip_prefix("sha256:"))
        .map(str::trim)
        .expect("policy show names the sha256");
    assert!(long.contains(&format!("default policy: sha256 {sha}\n")), "{long}\n{show}");
    assert!(long.contains("contracts:      0.1.0, 0.2.0"), "{long}");
    let short = Run::new().arg("-V").run().code(0).stdout;
    assert_eq!(short.trim(), format!("checkallsslcerts {}", env!("CARGO_PKG_VERSION")));
}

/// `policy eval`, `policy test` and `policy show` keep compiled modules as a run does: in the
/// state dir when it exists (and is this user's), else in the user's cache; and load them from
/// there the next time (a damaged entry would be rebuilt, see `policy::cache`).
#[test]
fn policy_commands_cache_compiled_modules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, user_cache) = (dir.path().join("state"), dir.path().join("xdg"));
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("hostname = \"host.example.com\"\nstate-dir = \"{}\"\n", state.display()),
    )
    .expect("config");
    let entries = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let run = |args: &[&str]| {
        Run::new().env("XDG_CACHE_HOME", &user_cache).arg("--config").arg(&config).args(args).run()
    };
    // No state dir: the user's cache, and the state dir is not created.
    run(&["policy", "show", "--policy", EXAMPLE]).code(0);
    let cached = entries(&user_cache.join("checkallsslcerts/policies"));
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".cwasm"), "{cached:?}");
    assert!(!state.exists(), "a policy command does not create the state dir");
    run(&["policy", "test", EXAMPLE, "--suite", "contract"]).code(0);
    assert_eq!(entries(&user_cache.join("checkallsslcerts/policies")), cached, "loaded, not stored again");
    // With a state dir: its cache.
    std::fs::create_dir(&state).expect("state dir");
    run(&["policy", "show"]).code(0);
    assert_eq!(entries(&state.join("cache")).len(), 1, "the embedded policy, compiled once");
}

/// A core module where a component is expected: the error says how to make one.
#[test]
fn a_core_module_is_told_to_run_componentize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = dir.path().join("core.wasm");
    std::fs::write(&module, wat::parse_str("(module)").expect("core module")).expect("write");
    let out = Run::new().args(["policy", "show", "--policy"]).arg(&module).run().code(1);
    assert!(out.stderr.contains("core.wasm"), "{}", out.stderr);
    assert!(out.stderr.contains("is a core WebAssembly module, not a component"), "{}", out.stderr);
    assert!(out.stderr.contains("checkallsslcerts policy componentize"), "{}", out.stderr);
}

/// `policy facts` prints the facts a run hands the policy, in the form `policy eval --facts`
/// reads: a missing certificate file is there as `missing`, and the plan made from them replaces
/// it, as the run's own plan does.
#[test]
fn policy_facts_feed_policy_eval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n[network]\ndns = false\nrevocation = false\nari = false\n\n\
             [mail]\nenabled = false\n\n[[service]]\nname = \"web\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("missing.pem").display(),
            dir.path().join("missing.key").display()
        ),
    )
    .expect("config");
    let out =
        Run::new().arg("--config").arg(&config).args(["policy", "facts", "--at", "1800000000"]).run().code(0);
    let facts: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON facts");
    assert_eq!(facts["now"], 1800000000);
    assert_eq!(facts["services"][0]["name"], "web");
    assert!(facts["services"][0]["certificate"]["missing"].is_string(), "{}", out.stdout);
    assert!(!dir.path().join("state").exists(), "gathered as a dry run: nothing written");
    let file = dir.path().join("facts.json");
    std::fs::write(&file, &out.stdout).expect("write");
    let plan = Run::new().args(["policy", "eval", "--facts"]).arg(&file).run().code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON plan");
    assert_eq!(plan["services"][0]["service"], "web");
    assert!(
        plan["services"][0]["reasons"].as_array().expect("reasons").contains(&"missing".into()),
        "{plan}"
    );
}
