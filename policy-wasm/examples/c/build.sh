#!/usr/bin/env bash
# Builds the C port of the default policy (rules.c) into a policy component:
#   1. wit-bindgen generates the contract's C bindings (policy.h, policy.c, policy_component_type.o);
#   2. clang compiles them and rules.c for wasm32-wasi and links a core module with wasi-libc;
#   3. `checkallsslcerts policy componentize` wraps the core module into a component and checks it
#      loads and answers `metadata`.
# Usage: build.sh [OUTPUT]   (default: default-c.wasm beside this script)
# The tools are taken from PATH, or from WIT_BINDGEN, CLANG and CHECKALLSSLCERTS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/default-c.wasm}"
wit="$here/../../../wit/since_v0.2.0"
wit_bindgen="${WIT_BINDGEN:-wit-bindgen}"
clang="${CLANG:-clang-14}"
checkallsslcerts="${CHECKALLSSLCERTS:-checkallsslcerts}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$wit_bindgen" c --world policy --out-dir "$work" "$wit"
# The rules: C17, every warning an error. The generated bindings: as generated.
"$clang" --target=wasm32-wasi -std=c17 -O2 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror \
  -I "$work" -c "$here/rules.c" -o "$work/rules.o"
"$clang" --target=wasm32-wasi -std=c17 -O2 -c "$work/policy.c" -o "$work/policy.o"
# A reactor (a library: no main); wasi-libc's debug info is dropped, function names are kept.
"$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -Wl,--strip-debug \
  -o "$work/core.wasm" "$work/rules.o" "$work/policy.o" "$work/policy_component_type.o"
"$checkallsslcerts" policy componentize "$work/core.wasm" -o "$out"
