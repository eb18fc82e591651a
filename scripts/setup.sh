#!/usr/bin/env bash
# Installs what checkallsslcerts needs to build, and with --test what its tests need.
# Idempotent: installs only what is missing. Run as root for the Debian packages.
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Building: the policy is compiled for WebAssembly and embedded in the binary.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# The host links OpenSSL.
debs=(pkg-config libssl-dev)
if [ "$want_test" = 1 ]; then
  # Real parts the tests run on loopback: an ACME CA, the at daemon, daemons to probe, promtool,
  # minisign, dnsmasq, systemd-analyze (checks the shipped units; no running systemd needed),
  # and the peers of the ACME benchmark.
  debs+=(openssl pebble at nginx-light dovecot-imapd dovecot-pop3d postfix prometheus minisign
         dnsmasq-base systemd certbot lego python3-pip
         # the policy examples in other languages (scripts/build-policy-examples.sh)
         python3-venv nodejs clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)
  command -v npm >/dev/null || debs+=(npm)
fi

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: please install these Debian packages (as root): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Postfix must not configure itself as the machine's mail system.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$want_test" = 1 ]; then
  command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
  python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet 'aiosmtpd==1.4.6'
  # The toolchains of the policy examples, from PyPI, npm and crates.io, in the user's cache
  # (kept between CI runs; installed once).
  tools="${CHECKALLSSLCERTS_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/checkallsslcerts/toolchains}"
  if [ ! -x "$tools/py/bin/componentize-py" ]; then
    python3 -m venv "$tools/py"
    "$tools/py/bin/pip" install --quiet 'componentize-py==0.25.*'
  fi
  if [ ! -x "$tools/js/node_modules/.bin/componentize-js" ]; then
    npm install --prefix "$tools/js" --no-audit --no-fund --silent \
      '@bytecodealliance/componentize-js@0.23' '@bytecodealliance/jco@1.35'
  fi
  # C: wit-bindgen's C generator from crates.io (clang-14 and wasi-libc are Debian packages
  # above), the version matching the Rust default's wit-bindgen crate.
  wit_bindgen_version=0.61.1
  if [ "$("$tools/c/bin/wit-bindgen" --version 2>/dev/null)" != "wit-bindgen-cli $wit_bindgen_version" ]; then
    cargo install --quiet --locked --root "$tools/c" --no-default-features --features c \
      wit-bindgen-cli --version "$wit_bindgen_version"
  fi
fi
