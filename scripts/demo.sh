#!/usr/bin/env bash
# Sets up, builds, and runs checkallsslcerts on a scratch directory with broken certificates,
# so a newcomer sees a real check and real placeholder installs. Touches only
# /tmp/checkallsslcerts-demo. Run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --quiet
bin=target/release/checkallsslcerts
demo=/tmp/checkallsslcerts-demo

rm -rf "$demo"
mkdir -p "$demo"/{ca,web,mail,ftp,panel}
cd "$demo/ca"

# A demo CA, and `openssl ca` to issue with chosen dates (an expired certificate needs them).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/O=Demo CA/CN=Demo Root" -keyout ca.key -out ca.pem 2>/dev/null
touch index.txt
cat > ca.cnf <<CNF
[ca]
default_ca = demo
[demo]
dir = $demo/ca
database = \$dir/index.txt
new_certs_dir = \$dir
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
rand_serial = yes
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
CNF
issue() { # name start end
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=demo.example.com" \
    -addext "subjectAltName=DNS:demo.example.com" -keyout "$demo/$1/key.pem" -out "$1.csr" 2>/dev/null
  openssl ca -batch -config ca.cnf -startdate "$2" -enddate "$3" -in "$1.csr" -out "$demo/$1/cert.pem" \
    -notext 2>/dev/null
}
issue web 20240101000000Z 20240401000000Z          # expired long ago
cp ca.pem "$demo/web/chain.pem"
issue panel "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" "$(date -u -d '+80 days' +%Y%m%d%H%M%SZ)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$demo/panel/key.pem" 2>/dev/null  # not its key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=demo.example.com" \
  -addext "subjectAltName=DNS:demo.example.com" -keyout "$demo/mail/key.pem" -out "$demo/mail/cert.pem" 2>/dev/null
chmod 600 "$demo"/*/key.pem
cd - >/dev/null

echo "== checkallsslcerts --dry-run: what would be done (nothing changes)"
"$bin" --config examples/demo/config.toml --dry-run || true
echo
echo "== checkallsslcerts --verbose: the real run"
"$bin" --config examples/demo/config.toml --verbose || true
echo
echo "== checkallsslcerts: the next night's run"
"$bin" --config examples/demo/config.toml || true
echo
echo "Backups of the replaced files: $demo/state/backups/"
echo
echo "== checkallsslcerts --dry-run --at +400d: what will need replacing in 400 days (everything: expired)"
"$bin" --config examples/demo/config.toml --dry-run --at +400d || true
