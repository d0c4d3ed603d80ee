#!/usr/bin/env bash
# The production shape on one machine, loopback only: two `pixseal serve` instances sharing
# PostgreSQL (a fresh database), SeaweedFS (S3, a fresh prefix), Redis (shared rate limits) and
# OpenBao (transit data keys and the receipt-signing key), behind Caddy terminating TLS with its
# internal CA and naming the client in X-Forwarded-For (pixseal trusts only 127.0.0.1).
#
#   scripts/prod-shape.sh start [PIXSEAL_BINARY]   prints shell exports (also in $DIR/env):
#     PIXSEAL_PROD_URL     https://localhost:P0   both instances, round robin
#     PIXSEAL_PROD_URL_A   https://localhost:P1   instance A only (runs the purge worker)
#     PIXSEAL_PROD_URL_B   https://localhost:P2   instance B only
#     PIXSEAL_PROD_CA      Caddy's root certificate (PEM)
#     PIXSEAL_PROD_KEY     an API key (tenant "prod", region us, every artifact scope)
#     PIXSEAL_PROD_DIR     the state directory
#   scripts/prod-shape.sh stop
#
# Needs: caddy (Debian), psql, redis on 127.0.0.1:6379, and what scripts/openbao.sh and
# scripts/seaweedfs.sh install. Every wait is bounded; works with CI=true and no stdin.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="${PIXSEAL_PROD_DIR:-/tmp/pixseal-prod}"
log() { echo "prod-shape.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

stop() {
  [ -d "$DIR" ] || return 0
  for f in "$DIR"/*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  [ -f "$DIR/bao/state.env" ] && { . "$DIR/bao/state.env"; [ -n "${STATE_PID:-}" ] && kill "$STATE_PID" 2>/dev/null || true; }
  [ -f "$DIR/database" ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $(cat "$DIR/database") WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() { # url, seconds, [curl args]
  local url="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 5))); do
    curl -fsS -m 2 "$@" "$url" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

start() {
  local bin="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/pixseal}"
  [ -x "$bin" ] || die "no pixseal binary at $bin"
  command -v caddy >/dev/null || {
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q caddy >/dev/null 2>&1 \
      || die "caddy is not installed and apt-get could not install it"
  }
  stop
  mkdir -p "$DIR/data" "$DIR/caddy"
  chmod 700 "$DIR"
  local tag; tag="prod$(date +%s)$$"

  # Key service, object store, database.
  PIXSEAL_BAO_STATE_DIR="$DIR/bao" PIXSEAL_BAO_REGIONS="us eu ca" bash scripts/openbao.sh >"$DIR/bao.env"
  . "$DIR/bao.env"
  . <(bash scripts/seaweedfs.sh)
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $tag" >/dev/null
  echo "$tag" >"$DIR/database"

  cat >"$DIR/pixseal.toml" <<EOF
data_dir = "$DIR/data"
regions = ["us", "eu", "ca"]

[keys]
provider = "transit"
receipt_provider = "transit"
transit_addr = "$BAO_ADDR"
transit_token = "$BAO_TOKEN"

[storage]
backend = "s3"
endpoint = "$PIXSEAL_TEST_S3_ENDPOINT"
access_key_id = "$PIXSEAL_TEST_S3_ACCESS_KEY"
secret_access_key = "$PIXSEAL_TEST_S3_SECRET_KEY"
allow_http = true
bucket = "pixseal"

[storage.regions.us]
prefix = "$tag/us"
[storage.regions.eu]
prefix = "$tag/eu"
[storage.regions.ca]
prefix = "$tag/ca"

[server]
database_url = "postgres://postgres@127.0.0.1:5432/$tag"
rate_limit_backend = "redis"
rate_limit_prefix = "pixseal:$tag:"
rate_limit_per_ip = 60
rate_limit_per_key = 600
trusted_proxies = ["127.0.0.1/32"]
purge_interval_secs = 0
EOF
  chmod 600 "$DIR/pixseal.toml"
  local cfg=(--config "$DIR/pixseal.toml")

  "$bin" "${cfg[@]}" tenant create prod --region us >/dev/null
  local key
  key="$("$bin" "${cfg[@]}" --json apikey create --tenant prod \
    --scope artifacts:write --scope artifacts:read --scope artifacts:delete \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"

  # Two instances; A also runs the purge worker every second. A first, so the development
  # signing identity is made once.
  local pa pb p0 p1 p2
  pa="$(free_port)"; pb="$(free_port)"
  PIXSEAL_SERVER_PURGE_INTERVAL_SECS=1 PIXSEAL_SERVER_PUBLIC_URL="https://localhost" \
    "$bin" "${cfg[@]}" serve --listen "127.0.0.1:$pa" >"$DIR/a.log" 2>&1 &
  echo $! >"$DIR/a.pid"
  wait_for "http://127.0.0.1:$pa/readyz" 60 || { tail -20 "$DIR/a.log" >&2; die "instance A not ready"; }
  PIXSEAL_SERVER_PUBLIC_URL="https://localhost" \
    "$bin" "${cfg[@]}" serve --listen "127.0.0.1:$pb" >"$DIR/b.log" 2>&1 &
  echo $! >"$DIR/b.pid"
  wait_for "http://127.0.0.1:$pb/readyz" 60 || { tail -20 "$DIR/b.log" >&2; die "instance B not ready"; }

  p0="$(free_port)"; p1="$(free_port)"; p2="$(free_port)"
  cat >"$DIR/Caddyfile" <<EOF
{
  admin off
  auto_https disable_redirects
  skip_install_trust
  storage file_system $DIR/caddy
  log {
    output file $DIR/caddy.log
  }
}
https://localhost:$p0 {
  bind 127.0.0.1
  tls internal
  reverse_proxy 127.0.0.1:$pa 127.0.0.1:$pb {
    lb_policy round_robin
  }
}
https://localhost:$p1 {
  bind 127.0.0.1
  tls internal
  reverse_proxy 127.0.0.1:$pa
}
https://localhost:$p2 {
  bind 127.0.0.1
  tls internal
  reverse_proxy 127.0.0.1:$pb
}
EOF
  XDG_DATA_HOME="$DIR/caddy" XDG_CONFIG_HOME="$DIR/caddy" \
    caddy run --config "$DIR/Caddyfile" --adapter caddyfile >"$DIR/caddy.out" 2>&1 &
  echo $! >"$DIR/caddy.pid"
  local ca="$DIR/caddy/pki/authorities/local/root.crt"
  for _ in $(seq 1 100); do [ -s "$ca" ] && break; sleep 0.2; done
  [ -s "$ca" ] || { tail -20 "$DIR/caddy.out" >&2; die "caddy made no CA"; }
  for p in $p0 $p1 $p2; do
    wait_for "https://localhost:$p/healthz" 30 --cacert "$ca" || { tail -20 "$DIR/caddy.out" >&2; die "caddy :$p not serving"; }
  done

  cat >"$DIR/env" <<EOF
export PIXSEAL_PROD_URL=https://localhost:$p0
export PIXSEAL_PROD_URL_A=https://localhost:$p1
export PIXSEAL_PROD_URL_B=https://localhost:$p2
export PIXSEAL_PROD_CA=$ca
export PIXSEAL_PROD_KEY=$key
export PIXSEAL_PROD_DIR=$DIR
EOF
  cat "$DIR/env"
}

case "${1:-start}" in
  start) shift || true; start "$@" ;;
  stop) stop ;;
  *) die "usage: prod-shape.sh start [PIXSEAL_BINARY] | stop" ;;
esac
