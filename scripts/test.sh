#!/usr/bin/env bash
# The test command: formatting, lints, every test (unit, conformance, integration with real
# services on loopback). Installs what it needs first. What CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

# The default policy's ports to Python, JavaScript and C, built from source once per run (rebuilt
# only when changed; C's last step runs the host's debug binary, which the script builds first);
# tests/policy_languages.rs runs the suites and a differential test on them.
scripts/build-policy-examples.sh target/policy-languages
export CHECKALLSSLCERTS_LANGUAGE_POLICIES="$PWD/target/policy-languages"
export CHECKALLSSLCERTS_REQUIRE_LANGUAGES=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features checkallsslcerts/failpoints -- -D warnings
# The failpoints feature lets the crash-recovery tests kill a real run at each install step; it
# is compiled out of normal builds.
cargo nextest run --workspace --features checkallsslcerts/failpoints --no-fail-fast
