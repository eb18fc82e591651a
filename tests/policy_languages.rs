//! One policy, several languages, one answer: the default policy's rules ported to Python
//! (componentize-py), JavaScript (componentize-js) and C (wit-bindgen, clang and wasi-libc, then
//! `policy componentize`) in `policy-wasm/examples/<lang>/`, built from source by
//! `scripts/build-policy-examples.sh` into the directory named by
//! `CHECKALLSSLCERTS_LANGUAGE_POLICIES` (`scripts/test.sh` does both). Each must pass the
//! built-in suites the Rust default passes, and give the Rust default's decisions, reasons,
//! orders and notice levels on thousands of randomly generated facts.
//!
//! Without the variable the tests say so and pass, unless `CHECKALLSSLCERTS_REQUIRE_LANGUAGES`
//! is set (as `scripts/test.sh` sets it), when they fail.

use std::path::PathBuf;

use checkallsslcerts::conformance;
use checkallsslcerts::facts::model::HostFacts;
use checkallsslcerts::policy::{PolicyModule, PolicySource, Runtime};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const LANGUAGES: &[&str] = &["python", "javascript", "c"];

/// The built ports, or `None` (after saying why) when they are not built here.
fn built() -> Option<PathBuf> {
    match std::env::var_os("CHECKALLSSLCERTS_LANGUAGE_POLICIES") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("CHECKALLSSLCERTS_REQUIRE_LANGUAGES").is_some() => {
            panic!("CHECKALLSSLCERTS_LANGUAGE_POLICIES is not set: run scripts/build-policy-examples.sh")
        }
        None => {
            eprintln!("skipped: the language ports are not built (scripts/build-policy-examples.sh)");
            None
        }
    }
}

/// A runtime caching compiled modules beside the ports, where the command line run with
/// `XDG_CACHE_HOME=DIR` keeps them too: each port is compiled once per build of it.
fn runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(Some(dir.join("checkallsslcerts").join("policies"))).expect("runtime")
}

fn load(runtime: &Runtime, dir: &std::path::Path, language: &str) -> PolicyModule {
    let path = dir.join(format!("{language}.wasm"));
    runtime.load_file(&path).unwrap_or_else(|e| panic!("{language}: {e}"))
}

#[test]
fn every_language_passes_the_suites_the_rust_default_passes() {
    let Some(dir) = built() else { return };
    let runtime = runtime(&dir);
    for language in LANGUAGES {
        let module = load(&runtime, &dir, language);
        let metadata = runtime.metadata(&module).unwrap_or_else(|e| panic!("{language}: {e}"));
        assert_eq!(metadata.contract_version, "0.2.0", "{language}");
        let suites = conformance::builtin_suites(module.version, None).expect("suites");
        assert!(suites.iter().any(|s| s.name == "v0.2.0/contract"), "{language}");
        assert!(suites.iter().any(|s| s.name == "v0.2.0/default"), "{language}");
        let report = conformance::run(&runtime, &module, &suites);
        assert_eq!(report.failed(), 0, "{language}:\n{}", report.render());
        assert!(report.passed() > 90, "{language}: {} vectors", report.passed());
    }
}

/// `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

// ---- random facts ----

fn timestamp(now: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        (-400i64..400).prop_map(move |d| now + d * 86_400),
        (-3 * 86_400i64..3 * 86_400).prop_map(move |s| now + s),
        Just(now),
    ]
}

fn public_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![1024u32, 2047, 2048, 3072, 4096])
            .prop_map(|bits| json!({"kind": "rsa", "bits": bits, "curve": null})),
        prop::sample::select(vec![192u32, 224, 256, 384])
            .prop_map(|bits| json!({"kind": "ec", "bits": bits, "curve": "prime256v1"})),
        Just(json!({"kind": "ec", "bits": 255, "curve": null})),
        Just(json!({"kind": "ed25519", "bits": 256, "curve": null})),
        Just(json!({"kind": "dsa", "bits": 2048, "curve": null})),
        Just(json!({"kind": "other", "bits": 0, "curve": null})),
    ]
}

fn signature() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "sha256WithRSAEncryption",
        "ecdsa-with-SHA384",
        "sha1WithRSAEncryption",
        "md5WithRSAEncryption",
        "ED25519",
        "RSA-SHA1",
    ])
}

fn reason_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["unable to get local issuer certificate", "self-signed", "x"])
        .prop_map(String::from)
}

fn chain_status() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("trusted")),
        Just(json!("not-checked")),
        reason_text().prop_map(|r| json!({"untrusted": r})),
        reason_text().prop_map(|r| json!({"incomplete": r})),
    ]
}

fn path_status() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("valid")),
        Just(json!("not-checked")),
        reason_text().prop_map(|r| json!({"untrusted": r})),
        reason_text().prop_map(|r| json!({"incomplete": r})),
        reason_text().prop_map(|r| json!({"invalid": r})),
    ]
}

fn chain_element(now: i64) -> impl Strategy<Value = Value> {
    (timestamp(now), timestamp(now), public_key(), signature(), any::<bool>(), any::<bool>()).prop_map(
        |(not_before, not_after, key, signature, self_signed, file)| {
            json!({"subject": "CN=Example Issuing CA, O=Example CA", "issuer": "CN=Example Root CA",
                   "serial": "1001", "sha256-fingerprint": "aa".repeat(32), "not-before": not_before,
                   "not-after": not_after, "public-key": key, "signature-algorithm": signature,
                   "is-ca": true, "self-signed": self_signed,
                   "source": if file { "file" } else { "trust-store" }})
        },
    )
}

fn certificate(now: i64) -> impl Strategy<Value = Value> {
    let dates =
        (timestamp(now), 1i64..200).prop_map(|(not_after, days)| (not_after - days * 86_400, not_after));
    let window = prop::option::of((timestamp(now), -5i64..30, any::<bool>()));
    (
        dates,
        prop::sample::select(vec![Some("Let's Encrypt"), Some("(STAGING) LET'S ENCRYPT"), Some("Other CA"), None]),
        public_key(),
        signature(),
        any::<bool>(),
        chain_status(),
        path_status(),
        prop::collection::vec(chain_element(now), 0..3),
        prop_oneof![
            3 => Just(json!("good")),
            1 => Just(json!("not-checked")),
            1 => Just(json!({"unknown": "OCSP responder unreachable"})),
            1 => timestamp(now).prop_map(|at| json!({"revoked": {"revoked-at": at, "reason": "keyCompromise"}})),
        ],
        window,
        "[0-9a-f]{64}",
    )
        .prop_map(
            |((not_before, not_after), org, key, signature, self_signed, chain, path, elements, revocation, window, fp)| {
                json!({"subject-cn": "host.example.com", "dns-names": ["host.example.com"], "ip-addresses": [],
                       "issuer-cn": "R11", "issuer-org": org, "serial": "01", "sha256-fingerprint": fp,
                       "not-before": not_before, "not-after": not_after, "public-key": key,
                       "signature-algorithm": signature, "self-signed": self_signed, "chain-status": chain,
                       "path": path, "chain": elements, "revocation": revocation,
                       "renewal-window": window.map(|(start, days, url): (i64, i64, bool)| json!({
                           "start": start, "end": start + days * 86_400,
                           "explanation-url": if url { Some("https://ca.example/ari") } else { None }}))})
            },
        )
}

fn service(now: i64, index: usize) -> impl Strategy<Value = Value> {
    let state = prop_oneof![
        6 => certificate(now).prop_map(|c| json!({"ok": c})),
        1 => Just(json!({"missing": "/etc/ssl/x.pem"})),
        1 => Just(json!({"unreadable": "permission denied"})),
        1 => Just(json!({"malformed": "no PEM"})),
    ];
    let key = prop_oneof![
        6 => Just(json!("matches")),
        1 => Just(json!("mismatch")),
        1 => Just(json!({"missing": "/etc/ssl/x.key"})),
        1 => Just(json!({"unreadable": "denied"})),
        1 => Just(json!({"malformed": "garbage"})),
        1 => Just(json!("not-checked")),
    ];
    let served = prop::collection::vec(
        (any::<bool>(), any::<bool>()).prop_map(|(matches, fingerprint)| {
            json!({"endpoint": "127.0.0.1:443", "matches-installed": matches, "chain-status": "trusted",
                   "sha256-fingerprint": if fingerprint { Some("bb".repeat(32)) } else { None },
                   "error": if fingerprint { None } else { Some("connection refused") }})
        }),
        0..2,
    );
    let group = prop::sample::select(vec![None, Some("hostname"), Some("lan"), Some("www")]);
    (state, key, prop::bool::weighted(0.85), served, group, prop::bool::weighted(0.15)).prop_map(
        move |(certificate, key, covers, served, group, check_only)| {
            json!({"name": format!("svc{index}"), "certificate": certificate, "key": key,
                   "covers-hostname": covers, "served": served, "group": group, "check-only": check_only})
        },
    )
}

fn facts() -> impl Strategy<Value = Value> {
    (1_600_000_000i64..2_000_000_000).prop_flat_map(|now| {
        let services = (1usize..7).prop_flat_map(move |n| {
            (0..n).map(|i| service(now, i).boxed()).collect::<Vec<_>>()
        });
        let param = (
            prop::sample::select(vec![
                "letsencrypt-min-days",
                "other-min-days",
                "short-lifetime-percent",
                "min-rsa-bits",
                "unknown",
            ]),
            prop::sample::select(vec!["0", "1", "10", "30", "50", "99", "100", "3072", "99999999999", "x", ""]),
        );
        (
            Just(now),
            prop::sample::select(vec!["host.example.com", "host", "server.lan", "box.internal."]),
            any::<bool>(),
            prop::sample::select(vec!["points-to-main-ip", "points-elsewhere", "does-not-resolve", "not-checked"]),
            prop_oneof![Just(json!("allows")), Just(json!("not-checked")), Just(json!({"forbids": "ca.example"}))],
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.85),
            (any::<bool>(), any::<bool>()),
            prop::collection::vec(param, 0..3),
            services,
        )
    })
    .prop_map(
        |(now, hostname, fqdn, dns, caa, no_auto, no_management, acme, (lan, www), params, services)| {
            let mut groups = vec![json!({"name": "hostname", "names": [hostname], "orderable": fqdn})];
            groups.push(json!({"name": "lan", "names": ["intranet.lan"], "orderable": lan}));
            groups.push(json!({"name": "www", "names": ["www.example.com", "example.com"], "orderable": www}));
            json!({"now": now, "hostname": hostname, "hostname-is-fqdn": fqdn, "hostname-dns": dns, "caa": caa,
                   "disable-auto-hostname-certificate": no_auto,
                   "disable-service-certificate-management": no_management,
                   "acme": if acme { Some(json!({"directory-url": "https://acme.example/dir"})) } else { None },
                   "groups": groups, "params": params, "services": services})
        },
    )
}

/// What must be the same in every language: per service the decision and the reasons (in
/// order), the orders, and the notices' levels and services (their wording may differ).
fn answer(runtime: &Runtime, module: &PolicyModule, facts: &HostFacts) -> Value {
    let plan = runtime.evaluate(module, facts).map(|e| e.plan).map_err(|e| e.to_string());
    match plan {
        Ok(plan) => json!({
            "services": plan.services,
            "orders": plan.orders,
            "notices": plan.notices.iter().map(|n| json!([n.level, n.service])).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e}),
    }
}

#[test]
fn every_language_answers_random_facts_as_the_rust_default() {
    let Some(dir) = built() else { return };
    let runtime = runtime(&dir);
    let rust = runtime.load_embedded().expect("default policy");
    let ports: Vec<(&str, PolicyModule)> = LANGUAGES.iter().map(|l| (*l, load(&runtime, &dir, l))).collect();
    // Deterministic: the same cases on every run (a failure is reproduced by running again).
    let mut runner = TestRunner::new_with_rng(
        Config { cases: cases(2000), failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let result = runner.run(&facts(), |value| {
        let facts = conformance::vector::parse_facts(&value.to_string()).expect("generated facts parse");
        let expected = answer(&runtime, &rust, &facts);
        prop_assert!(expected.get("error").is_none(), "the Rust default failed: {expected}\nfacts: {value}");
        for (language, module) in &ports {
            let got = answer(&runtime, module, &facts);
            prop_assert_eq!(&got, &expected, "{} differs on facts {}", language, value);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The differential test can fail: a policy with other rules (the lifetime-fraction example,
/// which the suites show to differ from the default) is caught on the generated facts.
#[test]
fn the_differential_test_catches_a_policy_with_other_rules() {
    let runtime = Runtime::new(None).expect("runtime");
    let rust = runtime.load_embedded().expect("default policy");
    let other = runtime
        .load_bytes(
            &std::fs::read(env!("CHECKALLSSLCERTS_EXAMPLE_POLICY")).expect("example"),
            PolicySource::File("lifetime-fraction.wasm".into()),
        )
        .expect("example loads");
    let mut runner = TestRunner::new_with_rng(
        Config { cases: cases(200), failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let differed = std::cell::Cell::new(0);
    let _ = runner.run(&facts(), |value| {
        let facts = conformance::vector::parse_facts(&value.to_string()).expect("generated facts parse");
        // A 0.1.0 module answers in 0.1.0's terms: compare the decisions only.
        let decisions = |m: &PolicyModule| {
            runtime
                .evaluate(m, &facts)
                .map(|e| e.plan.services.iter().map(|s| (s.service.clone(), s.decision)).collect::<Vec<_>>())
        };
        if decisions(&rust).ok() != decisions(&other).ok() {
            differed.set(differed.get() + 1);
        }
        Ok(())
    });
    assert!(differed.get() > 0, "the generated facts never tell the two policies apart");
}

/// The Python, JavaScript and C policies, built with their toolchains' default options (WASI
/// imports and all, for Python and JavaScript), decide a real dry run.
#[test]
fn a_dry_run_uses_a_policy_in_each_language() {
    let Some(dir) = built() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n[network]\ndns = false\nrevocation = false\nari = false\n\n\
             [mail]\nenabled = false\n\n[[service]]\nname = \"web\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            tmp.path().join("state").display(),
            tmp.path().join("missing.pem").display(),
            tmp.path().join("missing.key").display()
        ),
    )
    .expect("config");
    for language in LANGUAGES {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_checkallsslcerts"))
            .env("XDG_CACHE_HOME", &dir)
            .env("CHECKALLSSLCERTS_NETWORK_FACTS", "off")
            .arg("--config")
            .arg(&config)
            .arg("--policy")
            .arg(dir.join(format!("{language}.wasm")))
            .args(["--dry-run", "--json"])
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{language}: {e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr))
        });
        assert_eq!(report["policy"]["name"], format!("default-{language}"), "{language}: {report}");
        assert!(report["policy"].get("fallback-from").is_none_or(Value::is_null), "{language}: {report}");
        let web = &report["services"][0];
        assert!(web.to_string().contains("missing"), "{language}: {web}");
    }
}

/// What a real componentize-py policy sees of WASI (`tests/policies/wasi_probe.py` prints it):
/// the facts' `now` as a clock that does not advance (a 5-second sleep takes no time), an empty
/// environment, no files and no network; and random bytes that are the same for the same facts
/// and differ for other facts.
#[test]
fn a_policy_sees_an_empty_deterministic_wasi() {
    let Some(dir) = built() else { return };
    let runtime = runtime(&dir);
    let module = load(&runtime, &dir, "wasi-probe");
    let facts = |now: i64| {
        conformance::vector::parse_facts(&format!(
            r#"{{"now": {now}, "hostname": "host.example.com", "services": [{{"name": "web", "certificate": {{"missing": "x"}}}}]}}"#
        ))
        .expect("facts")
    };
    let seen = |facts: &HostFacts| -> Vec<String> {
        let evaluation = runtime.evaluate(&module, facts).expect("the probe evaluates");
        evaluation.logs.into_iter().map(|line| line.message).collect()
    };
    let first = seen(&facts(1_800_000_000));
    assert_eq!(first, seen(&facts(1_800_000_000)), "the same facts, the same WASI");
    for expected in [
        "time 1800000000",
        "slept 0.0",
        "environ []",
        "file refused FileNotFoundError",
        "listdir refused FileNotFoundError",
    ] {
        assert!(first.iter().any(|line| line == expected), "{expected:?} in {first:?}");
    }
    assert!(first.iter().any(|line| line.starts_with("socket refused")), "{first:?}");
    let other = seen(&facts(1_900_000_000));
    assert!(other.iter().any(|line| line == "time 1900000000"), "{other:?}");
    let random = |lines: &[String]| lines.iter().find(|l| l.starts_with("random ")).cloned();
    assert!(random(&first).is_some(), "{first:?}");
    assert_ne!(random(&first), random(&other), "other facts, another seed");
}
