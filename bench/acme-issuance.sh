#!/usr/bin/env bash
# End-to-end issuance time against a local Pebble (Debian's `pebble`), side by side with
# Debian's certbot and lego. Not a test: a measurement for docs/performance.md.
#
# Each client gets its own account first (not timed); then every timed run is one complete
# issuance with that account: new order, HTTP-01 answered by the client's own standalone
# listener, validation, CSR, finalize, download, certificate written. Pebble runs with
# PEBBLE_VA_NOSLEEP=1 (no artificial validation delay), PEBBLE_AUTHZREUSE=0 (every order is
# validated, none reuses an earlier authorisation) and PEBBLE_WFE_NONCEREJECT=0 (no random
# badNonce, which would add noise to every client alike).
#
# For checkallsslcerts a timed run is the whole tool: config, facts (including the hostname's
# DNS and CAA lookups, asked of Pebble's DNS server), policy, the order, the checks of the issued
# chain, the journalled install; before each run the service gets a self-signed certificate
# again (so the policy asks for a replacement).
#
# Usage: bench/acme-issuance.sh [RUNS]   (default 10; needs pebble, certbot, lego, hyperfine,
# curl, openssl, python3; run from the repository)
set -euo pipefail

RUNS="${1:-10}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/acme-bench.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in pebble pebble-challtestsrv certbot lego hyperfine curl openssl python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2; exit 1
}

cd "$REPO"
cargo build --release -p checkallsslcerts >/dev/null 2>&1 || cargo build --release -p checkallsslcerts
BIN="$REPO/target/release/checkallsslcerts"

API=$(free_port); MGMT=$(free_port); HTTP=$(free_port); TLS=$(free_port); DNS=$(free_port); DNSM=$(free_port)
HOST=bench.acme-test.com
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/api.key" \
    -out "$WORK/api.pem" -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
cat >"$WORK/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$API", "managementListenAddress": "127.0.0.1:$MGMT",
 "certificate": "$WORK/api.pem", "privateKey": "$WORK/api.key", "httpPort": $HTTP, "tlsPort": $TLS,
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
pebble-challtestsrv -http01 "" -https01 "" -tlsalpn01 "" -dns01 "127.0.0.1:$DNS" \
    -management "127.0.0.1:$DNSM" -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$WORK/dns.log" 2>&1 &
PIDS+=($!)
wait_port "$DNSM"
PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0 \
    pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$DNS" -strict=false >"$WORK/pebble.log" 2>&1 &
PIDS+=($!)
wait_port "$API"
wait_port "$MGMT"
curl -fsS --cacert "$WORK/api.pem" "https://127.0.0.1:$MGMT/roots/0" >"$WORK/root.pem"
DIR="https://127.0.0.1:$API/dir"

# --- checkallsslcerts: one service, HTTP-01 standalone on Pebble's validation port.
mkdir -p "$WORK/cas/srv"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/cas/self.key" \
    -out "$WORK/cas/self.pem" -days 30 -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" 2>/dev/null
cat >"$WORK/cas/config.toml" <<EOF
hostname = "$HOST"
main-ips = ["127.0.0.1"]
state-dir = "$WORK/cas/state"
[network]
# Pebble's DNS (every name is 127.0.0.1): the hostname and CAA checks run for real, on loopback.
dns-servers = ["127.0.0.1:$DNS"]
[trust]
extra-roots = ["$WORK/root.pem"]
[mail]
enabled = false
[acme]
directory = "$DIR"
ca-bundle = "$WORK/api.pem"
listen = "127.0.0.1:$HTTP"
max-orders-per-day = 50
[[service]]
name = "web"
certificate = "$WORK/cas/srv/cert.pem"
key = "$WORK/cas/srv/key.pem"
EOF
cas_prepare="cp $WORK/cas/self.pem $WORK/cas/srv/cert.pem && install -m 600 $WORK/cas/self.key $WORK/cas/srv/key.pem && rm -f $WORK/cas/state/acme/limits.json"
eval "$cas_prepare"
"$BIN" --config "$WORK/cas/config.toml" --quiet   # creates the account (not timed)

# --- certbot: standalone HTTP-01 on the same port.
CB="certbot certonly --standalone --http-01-port $HTTP --http-01-address 127.0.0.1 --server $DIR \
    --non-interactive --agree-tos -m admin@example.com --no-eff-email -d $HOST --force-renewal \
    --config-dir $WORK/certbot/cfg --work-dir $WORK/certbot/work --logs-dir $WORK/certbot/logs --quiet"
export REQUESTS_CA_BUNDLE="$WORK/api.pem"
$CB   # registers the account (not timed)

# --- lego: its own HTTP-01 server on the same port.
export LEGO_CA_CERTIFICATES="$WORK/api.pem"
LEGO="lego --server $DIR --accept-tos --email admin@example.com --domains $HOST --http \
    --http.port 127.0.0.1:$HTTP --path $WORK/lego run"
$LEGO >/dev/null 2>&1   # registers the account (not timed)

hyperfine --runs "$RUNS" --warmup 1 --export-markdown "$WORK/result.md" \
    --prepare "$cas_prepare" -n checkallsslcerts "$BIN --config $WORK/cas/config.toml --quiet" \
    --prepare "true" -n "certbot $(certbot --version 2>&1 | cut -d' ' -f2)" "$CB" \
    --prepare "true" -n "lego" "$LEGO"
cat "$WORK/result.md"

# Every timed run must have issued a certificate (hyperfine already fails on a non-zero exit).
expected=$((RUNS + 2))   # + the account run + the warmup
issued=$(grep -c '"event":"issued"' "$WORK/cas/state/acme/history.jsonl")
certbot_certs=$(ls "$WORK/certbot/cfg/archive/$HOST"/cert*.pem | wc -l)
echo "issued: checkallsslcerts $issued, certbot $certbot_certs (expected $expected each)"
[ "$issued" -eq "$expected" ] && [ "$certbot_certs" -eq "$expected" ] || { echo "a run did not issue" >&2; exit 1; }
