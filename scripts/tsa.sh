#!/usr/bin/env bash
# Start (or reuse) a real RFC 3161 time-stamping authority for tests: OpenSSL's `ts -reply`
# behind a small HTTP handler (scripts/tsa_server.py) on loopback, a random free port. Its own
# root CA and a TSA certificate (EKU timeStamping, critical) are made on first start.
# Idempotent: a running instance recorded in the state file is reused. Bounded waits.
# Prints shell exports: PIXSEAL_TEST_TSA_URL, PIXSEAL_TEST_TSA_ROOT (PEM of the TSA's root).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE_DIR="${PIXSEAL_TSA_DIR:-/tmp/pixseal-tsa}"
STATE="$STATE_DIR/env"
mkdir -p "$STATE_DIR"

ready() { curl -s -o /dev/null -m 2 "$1/healthz"; }
reuse() {
  if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -n "${TSA_PID:-}" ] && kill -0 "$TSA_PID" 2>/dev/null && ready "$PIXSEAL_TEST_TSA_URL"; then
      cat "$STATE"; exit 0
    fi
  fi
}
reuse
command -v openssl >/dev/null || { echo "openssl is needed for the test TSA" >&2; exit 1; }
exec 9>"$STATE_DIR/lock"
flock -w 60 9
reuse

PKI="$STATE_DIR/pki"
if [ ! -f "$PKI/tsa.pem" ]; then
  rm -rf "$PKI"; mkdir -p "$PKI"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/O=pixseal tests/CN=pixseal test TSA root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$PKI/root.key" -out "$PKI/root.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=pixseal tests/CN=pixseal test TSA" -keyout "$PKI/tsa.key" -out "$PKI/tsa.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=critical,timeStamping" "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid" >"$PKI/tsa.ext"
  openssl x509 -req -in "$PKI/tsa.csr" -CA "$PKI/root.pem" -CAkey "$PKI/root.key" \
    -CAcreateserial -days 3000 -extfile "$PKI/tsa.ext" -out "$PKI/tsa.pem" 2>/dev/null
  echo 01 >"$PKI/serial"
  cat >"$PKI/ts.cnf" <<CNF
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = $PKI
serial = \$dir/serial
crypto_device = builtin
signer_cert = \$dir/tsa.pem
certs = \$dir/root.pem
signer_key = \$dir/tsa.key
signer_digest = sha256
default_policy = 2.999.1
other_policies = 2.999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
fi

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
nohup python3 "$HERE/tsa_server.py" --port "$PORT" --config "$PKI/ts.cnf" \
  >"$STATE_DIR/tsa.log" 2>&1 </dev/null &
PID=$!
for _ in $(seq 1 80); do
  ready "$URL" && break
  kill -0 "$PID" 2>/dev/null || { echo "tsa_server.py exited; log:" >&2; tail -20 "$STATE_DIR/tsa.log" >&2; exit 1; }
  sleep 0.25
done
ready "$URL" || { echo "TSA not ready after 20 s; log:" >&2; tail -20 "$STATE_DIR/tsa.log" >&2; exit 1; }
cat >"$STATE" <<ENV
export TSA_PID=$PID
export PIXSEAL_TEST_TSA_URL=$URL
export PIXSEAL_TEST_TSA_ROOT=$PKI/root.pem
ENV
cat "$STATE"
