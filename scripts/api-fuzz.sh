#!/usr/bin/env bash
# schemathesis (a third-party API fuzzer) against a real `pixseal serve` on embedded defaults:
# a throwaway data directory, loopback only, rate limits raised so the fuzzer is not throttled.
# Two runs, anonymous and with an API key holding every scope, a bounded number of examples per
# operation and a fixed seed. Fails on any 5xx, and on any answer that the served
# /openapi.json does not describe (status code, content type, body schema).
#
# Usage: scripts/api-fuzz.sh [PIXSEAL_BINARY]   (needs `pip install schemathesis==4.32.5`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${CARGO_TARGET_DIR:-$PWD/target}/release/pixseal}"
EXAMPLES="${PIXSEAL_FUZZ_EXAMPLES:-30}"

DATA="$(mktemp -d /tmp/pixseal-api-fuzz.XXXXXX)"
LOG="$DATA/serve.log"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
export PIXSEAL_DATA_DIR="$DATA/data"
export PIXSEAL_SERVER_PUBLIC_URL="$URL"
export PIXSEAL_SERVER_RATE_LIMIT_PER_IP=0
export PIXSEAL_SERVER_RATE_LIMIT_PER_KEY=0
export PIXSEAL_SERVER_RATE_LIMIT_VERIFY_PER_IP=0
export PIXSEAL_SERVER_RATE_LIMIT_AUTH_FAILURES_PER_IP=0
export PIXSEAL_SERVER_PURGE_INTERVAL_SECS=0

"$BIN" tenant create fuzz --region us >/dev/null
KEY="$("$BIN" --json apikey create --tenant fuzz \
  --scope artifacts:write --scope artifacts:read --scope artifacts:delete --scope codes --scope stamp \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"

"$BIN" serve --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "pixseal serve exited" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$URL/healthz" >/dev/null

# One worker: CPython 3.11 keeps the AST constructor's recursion counter per interpreter, so two
# threads parsing at once (hypothesis describes lambdas by parsing their source) can fail with
# "AST constructor recursion depth mismatch", an error of the fuzzer, not of the server.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
run() {
  schemathesis run "$URL/openapi.json" \
    --checks "$CHECKS" \
    --max-examples "$EXAMPLES" \
    --seed 20261204 \
    --workers 1 \
    --request-timeout 60 \
    --no-color \
    "$@"
}
echo "== schemathesis: anonymous"
run
echo "== schemathesis: with an API key (every scope)"
run -H "Authorization: Bearer $KEY"
if grep -q '"level":"ERROR"\|panicked' "$LOG"; then
  echo "the server logged errors during the run:" >&2
  grep '"level":"ERROR"\|panicked' "$LOG" | head -20 >&2
  exit 1
fi
echo "api-fuzz: no 5xx, every answer as documented"
