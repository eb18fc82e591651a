#!/usr/bin/env bash
# Figures for docs/performance.md, per policy language: module size, compile time (first load,
# empty cache), cached load time, evaluation time for 10 and 10,000 services, peak memory; and a
# dry run with each policy against the same run with the embedded Rust default.
#
#   cargo build --release && scripts/build-policy-examples.sh && bench/policy-languages.sh
#
# Wall times are medians of 3 (`policy show` = load + metadata; `policy eval` = load + evaluate).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release/checkallsslcerts}"
ports="${PORTS:-target/policy-languages}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"

python3 - "$work" <<'PY'
import json, sys
for n in (10, 10000):
    services = [{"name": f"svc{i}", "certificate": {"ok": {
        "not-before": "now-60d", "not-after": f"now+{5 + i % 60}d", "issuer-org": "Let's Encrypt",
        "chain-status": "trusted", "path": "valid", "dns-names": ["host.example.com"],
        "signature-algorithm": "sha256WithRSAEncryption",
        "public-key": {"kind": "rsa", "bits": 2048, "curve": None},
        "sha256-fingerprint": f"{i:064x}"}}, "key": "matches", "covers-hostname": True} for i in range(n)]
    facts = {"now": 1800000000, "hostname": "host.example.com", "hostname-is-fqdn": True,
             "acme": {"directory-url": "https://acme.test/dir"}, "services": services}
    json.dump(facts, open(f"{sys.argv[1]}/facts-{n}.json", "w"))
PY

# A small host (one service, network facts off): the config of every command below.
mkdir -p "$work/etc"
cat > "$work/config.toml" <<TOML
hostname = "host.example.com"
state-dir = "$work/state"

[network]
dns = false
revocation = false
ari = false

[mail]
enabled = false

[[service]]
name = "web"
certificate = "$work/etc/missing.pem"
key = "$work/etc/missing.key"
TOML
# median of 3 wall times (seconds) and the largest peak RSS (MB) of: "$@"
measure() {
  local times=() peak=0
  for _ in 1 2 3; do
    # A dry run of a host with a missing certificate exits 1: the time is what counts here.
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" > /dev/null 2>&1 || true
    read -r t m < <(tail -n 1 "$work/t")  # after "Command exited with non-zero status"
    times+=("$t")
    [ "$m" -gt "$peak" ] && peak=$m
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)" "$((peak / 1024))"
}

printf '| language | module | first load (compile) | cached load | eval 10 services | eval 10,000 services | peak memory (10,000) |\n'
printf '|---|---|---|---|---|---|---|\n'
for lang in rust python javascript c; do
  if [ "$lang" = rust ]; then policy=(); size="(embedded) 0.3 MB"; else
    policy=(--policy "$ports/$lang.wasm")
    size="$(awk '{ printf "%.2f MB", $1 / 1e6 }' < <(stat -c %s "$ports/$lang.wasm"))"; fi
  rm -rf "$XDG_CACHE_HOME"
  /usr/bin/time -f "%e" -o "$work/t" "$bin" policy show --config "$work/config.toml" "${policy[@]}" > /dev/null 2>&1
  first="$(cat "$work/t")"
  read -r load _ < <(measure "$bin" policy show --config "$work/config.toml" "${policy[@]}")
  read -r e10 _ < <(measure "$bin" policy eval --config "$work/config.toml" "${policy[@]}" --facts "$work/facts-10.json")
  read -r e10k m10k < <(measure "$bin" policy eval --config "$work/config.toml" "${policy[@]}" --facts "$work/facts-10000.json")
  printf '| %s | %s | %ss | %ss | %ss | %ss | %s MB |\n' "$lang" "$size" "$first" "$load" "$e10" "$e10k" "$m10k"
done

printf '\n| dry run with | wall (median of 3) |\n|---|---|\n'
for lang in rust python javascript c; do
  if [ "$lang" = rust ]; then policy=(); else policy=(--policy "$ports/$lang.wasm"); fi
  "$bin" --config "$work/config.toml" "${policy[@]}" --dry-run > /dev/null 2>&1 || true
  read -r t _ < <(CHECKALLSSLCERTS_NETWORK_FACTS=off measure "$bin" --config "$work/config.toml" "${policy[@]}" --dry-run)
  printf '| %s | %ss |\n' "$lang" "$t"
done
