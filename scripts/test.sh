#!/usr/bin/env bash
# The one test command (README, CI): unit + integration tests of every crate, schemathesis against
# a running server, then the hostile input check of ../shared/tools against the release binary
# when the shared tools are present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked --bin pixseal
cargo test --release --locked --workspace

BIN="$CARGO_TARGET_DIR/release/pixseal"
# The API as a third-party fuzzer sees it: no 5xx, every answer as /openapi.json documents.
bash scripts/api-fuzz.sh "$BIN"
# The production shape: two instances behind Caddy (TLS) on PostgreSQL, SeaweedFS, Redis and
# OpenBao; an upload through one is read, verified and deleted through the other.
PROD_DIR="$(mktemp -d /tmp/pixseal-prod.XXXXXX)"
export PIXSEAL_PROD_DIR="$PROD_DIR/run"
trap 'bash scripts/prod-shape.sh stop' EXIT
PROD_ENV="$(bash scripts/prod-shape.sh start "$BIN")"
eval "$PROD_ENV"
python3 scripts/prod-shape-test.py
bash scripts/prod-shape.sh stop
trap - EXIT
rm -rf "$PROD_DIR"

TOOLS="$(cd .. && pwd)/shared/tools"
if [ -f "$TOOLS/make_bad_inputs.py" ]; then
  BAD="$(mktemp -d /tmp/pixseal-bad.XXXXXX)"
  trap 'rm -rf "$BAD"' EXIT
  python3 "$TOOLS/make_bad_inputs.py" generate "$BAD" >/dev/null
  python3 "$TOOLS/make_bad_inputs.py" check "$BAD" --batch -- "$BIN" sanitize '{in}' -o '{out}' --json
else
  echo "note: ../shared/tools not found; hostile-input check skipped (fixtures-based tests ran)"
fi
