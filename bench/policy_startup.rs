//! `cargo bench --bench policy_startup`: what loading the policy costs a run, with and without
//! the compiled-component cache (median of 10), and one evaluation over 1,000 services.

use std::time::{Duration, Instant};

use checkallsslcerts::conformance::vector::parse_facts;
use checkallsslcerts::policy::Runtime;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cold: Vec<Duration> = (0..10)
        .map(|_| {
            let started = Instant::now();
            let runtime = Runtime::new(None).expect("runtime");
            runtime.load_embedded().expect("load");
            started.elapsed()
        })
        .collect();
    Runtime::new(Some(cache.path().to_path_buf())).expect("runtime").load_embedded().expect("fill the cache");
    let warm: Vec<Duration> = (0..10)
        .map(|_| {
            let started = Instant::now();
            let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
            runtime.load_embedded().expect("load");
            started.elapsed()
        })
        .collect();
    let services: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"name": "s{i}", "certificate": {{"ok": {{"not-before": "now-30d", "not-after": "now+{}d", "issuer-org": "Let's Encrypt", "chain": "trusted"}}}}}}"#, i % 90))
        .collect();
    let facts = parse_facts(&format!(
        r#"{{"now": 1800000000, "hostname": "host.example.com", "acme": {{"directory-url": "https://acme.test/dir"}}, "services": [{}]}}"#,
        services.join(",")
    ))
    .expect("facts");
    let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
    let module = runtime.load_embedded().expect("load");
    let evals: Vec<Duration> = (0..10)
        .map(|_| {
            let started = Instant::now();
            runtime.evaluate(&module, &facts).expect("evaluate");
            started.elapsed()
        })
        .collect();
    println!("| step | median of 10 |");
    println!("|---|---|");
    println!(
        "| load the embedded policy, compiling (no cache) | {:.1} ms |",
        median(cold).as_secs_f64() * 1e3
    );
    println!("| load the embedded policy from the cache | {:.1} ms |", median(warm).as_secs_f64() * 1e3);
    println!("| evaluate 1,000 services | {:.1} ms |", median(evals).as_secs_f64() * 1e3);
}
