#!/usr/bin/env bash
# Builds the default policy's ports in other languages (policy-wasm/examples/<lang>/) from their
# sources, with the toolchains `scripts/setup.sh --test` installs, into DIR (default
# target/policy-languages): python.wasm, javascript.wasm, c.wasm (and wasi-probe.wasm, a test
# policy). A port is rebuilt only when its source, the contract or the toolchain changed (a stamp
# of their SHA-256 beside the output), so a CI run builds each once. The tests find them through
# CHECKALLSSLCERTS_LANGUAGE_POLICIES=DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/policy-languages}"
tools="${CHECKALLSSLCERTS_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/checkallsslcerts/toolchains}"
wit=wit/since_v0.2.0
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# build NAME STAMP-INPUTS... -- COMMAND...: runs COMMAND unless the stamp matches.
build() {
  local name="$1"; shift
  local inputs=()
  while [ "$1" != "--" ]; do inputs+=("$1"); shift; done
  shift
  local stamp
  stamp="$(cat "${inputs[@]}" "$wit"/*.wit | sha256sum | cut -d' ' -f1)"
  if [ -f "$out/$name.wasm" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "policy examples: $name.wasm is up to date"
    return
  fi
  echo "policy examples: building $name.wasm"
  "$@"
  echo "$stamp" > "$out/$name.stamp"
}

build python policy-wasm/examples/python/app.py "$tools/py/pyvenv.cfg" -- \
  bash -c "cd policy-wasm/examples/python && '$tools/py/bin/componentize-py' -d ../../../$wit -w policy componentize app -o '$out/python.wasm'"
build javascript policy-wasm/examples/javascript/policy.js "$tools/js/package-lock.json" -- \
  "$tools/js/node_modules/.bin/componentize-js" --wit "$wit" -n policy -o "$out/javascript.wasm" \
  policy-wasm/examples/javascript/policy.js
# C: wit-bindgen's bindings, clang-14 and wasi-libc, then `checkallsslcerts policy componentize`
# with the binary CHECKALLSSLCERTS names, else this tree's debug build (built if needed).
build_c() {
  local bin="${CHECKALLSSLCERTS:-}"
  if [ -z "$bin" ]; then
    cargo build --quiet -p checkallsslcerts --bin checkallsslcerts
    bin="${CARGO_TARGET_DIR:-target}/debug/checkallsslcerts"
  fi
  WIT_BINDGEN="$tools/c/bin/wit-bindgen" CLANG=clang-14 CHECKALLSSLCERTS="$bin" \
    policy-wasm/examples/c/build.sh "$out/c.wasm"
}
build c policy-wasm/examples/c/rules.c policy-wasm/examples/c/build.sh "$tools/c/.crates.toml" -- build_c
# A test policy that prints what WASI gives it (tests/policy_languages.rs).
build wasi-probe tests/policies/wasi_probe.py "$tools/py/pyvenv.cfg" -- \
  bash -c "cd tests/policies && '$tools/py/bin/componentize-py' -d ../../$wit -w policy componentize wasi_probe -o '$out/wasi-probe.wasm'"
