#!/usr/bin/env bash
# Start (or reuse) ChromeDriver for the browser tests: Debian's chromium-driver on loopback, a
# free port, driving Debian's Chromium (both installed by scripts/setup.sh). Idempotent: a running
# instance recorded in the state file is reused. Bounded waits.
# Prints shell exports: PIXSEAL_TEST_WEBDRIVER (the WebDriver URL), PIXSEAL_TEST_CHROMIUM (the browser).
set -euo pipefail
STATE_DIR="${PIXSEAL_CHROMEDRIVER_DIR:-/tmp/pixseal-chromedriver}"
STATE="$STATE_DIR/env"
mkdir -p "$STATE_DIR"

ready() { curl -s -m 2 "$1/status" | grep -q '"ready": *true'; }
reuse() {
  if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -n "${CHROMEDRIVER_PID:-}" ] && kill -0 "$CHROMEDRIVER_PID" 2>/dev/null && ready "$PIXSEAL_TEST_WEBDRIVER"; then
      cat "$STATE"; exit 0
    fi
  fi
}
reuse
DRIVER="$(command -v chromedriver || true)"
BROWSER="$(command -v chromium || true)"
if [ -z "$DRIVER" ] || [ -z "$BROWSER" ]; then
  echo "chromium and chromedriver are needed for the browser tests: run scripts/setup.sh" >&2
  exit 1
fi
exec 9>"$STATE_DIR/lock"
flock -w 60 9
reuse

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setsid "$DRIVER" --port="$PORT" --allowed-ips=127.0.0.1 >"$STATE_DIR/log" 2>&1 < /dev/null &
PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  ready "$URL" && break
  kill -0 "$PID" 2>/dev/null || { cat "$STATE_DIR/log" >&2; exit 1; }
  sleep 0.1
done
ready "$URL" || { echo "chromedriver did not answer on $URL within 10 s" >&2; cat "$STATE_DIR/log" >&2; exit 1; }
{
  echo "CHROMEDRIVER_PID=$PID"
  echo "export PIXSEAL_TEST_WEBDRIVER=$URL"
  echo "export PIXSEAL_TEST_CHROMIUM=$BROWSER"
} >"$STATE"
cat "$STATE"
