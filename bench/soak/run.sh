#!/usr/bin/env bash
# The soak of issue 12: simulated nights against a faulty CA (see soak.py). One command from a
# fresh clone: installs what it needs (idempotently), builds the binary, runs the nights.
#   bench/soak/run.sh [NIGHTS] [--seed N] [--results FILE] [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
nights="${1:-60}"
[ $# -gt 0 ] && shift
scripts/setup.sh --test
command -v faketime >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; }
cargo build --bin checkallsslcerts
exec python3 bench/soak/soak.py --nights "$nights" --binary target/debug/checkallsslcerts "$@"
