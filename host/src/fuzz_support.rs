//! The property-test configuration shared by the crate's fuzz harnesses (`facts::fuzz_tests`,
//! `actions::fuzz_tests`; `tests/fuzz_parsers.rs` is another crate and keeps its own): bounded
//! cases, no persistence files, a fixed seed under CI (see `docs/reliability.md`).

use proptest::prelude::ProptestConfig;
use proptest::test_runner::RngSeed;

/// Cases per property when `PROPTEST_CASES` is not set: each harness stays within a few seconds
/// of one core.
pub const DEFAULT_CASES: u32 = 1024;

/// The configuration, with `seed` as the harness's fixed seed under CI.
pub fn config(seed: u64) -> ProptestConfig {
    let mut config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    if std::env::var_os("CI").is_some() && std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(seed);
    }
    config
}
