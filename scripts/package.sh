#!/usr/bin/env bash
# Builds the Debian package: target/debian/checkallsslcerts_<version>-1_<arch>.deb, and a
# SHA256SUMS beside it. One command from a fresh clone (it installs what it needs: the build
# dependencies via scripts/setup.sh, cargo-deb from crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb

# The release binary, from the locked dependency versions.
cargo build --release --locked -p checkallsslcerts
bin=target/release/checkallsslcerts

# Man pages and completions, generated from the binary's own command-line definitions.
docs=target/package-docs
rm -rf "$docs"
"$bin" generate-docs --out "$docs" >/dev/null
gzip -9n "$docs"/man/*.[0-9]

# The deb (its changelog is compressed by cargo-deb; the binary stripped by the release profile).
deb=$(cargo deb -p checkallsslcerts --no-build --locked 2>/dev/null | tail -n 1)
deb=${deb:-$(ls -t target/debian/checkallsslcerts_*.deb | head -n 1)}
(cd "$(dirname "$deb")" && sha256sum "$(basename "$deb")" > SHA256SUMS)
echo "$deb"
