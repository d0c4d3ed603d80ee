#!/usr/bin/env bash
# Seal/open throughput of a 50 MiB object on one core next to `openssl speed` AES-256-GCM, plus
# transit datakey/decrypt latency (p50/p99 over 1000 calls) against the local OpenBao dev server
# (scripts/openbao.sh; skipped with PIXSEAL_SKIP_TRANSIT=1). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pixseal-seal-target}"

pin=()
if command -v taskset >/dev/null 2>&1; then pin=(taskset -c 0); fi

if [[ "${PIXSEAL_SKIP_TRANSIT:-}" != 1 ]]; then
    # shellcheck disable=SC1090
    source <(bash scripts/openbao.sh </dev/null)
fi

cargo bench -p pixseal-seal --bench seal --no-run >/dev/null 2>&1 || cargo bench -p pixseal-seal --bench seal --no-run
out="$("${pin[@]}" cargo bench -q -p pixseal-seal --bench seal 2>/dev/null)"
get() { sed -n "s/^$1=//p" <<<"$out"; }

ossl_line="$("${pin[@]}" openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null | grep -i '^aes-256-gcm' | tail -1)"
# "AES-256-GCM  1234567.89k" = thousands of bytes per second
ossl_k="$(awk '{print $NF}' <<<"$ossl_line" | tr -d 'k')"
ossl_mbps="$(awk -v k="$ossl_k" 'BEGIN { printf "%.0f", k / 1000 }')"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

seal="$(get seal_mbps)" open="$(get open_mbps)"
echo "| measurement (one core, $(nproc) cores on the machine) | MB/s | vs openssl |"
echo "|---|---:|---:|"
echo "| pixseal-seal seal, 50 MiB object, 64 KiB segments | $seal | $(ratio "$seal" "$ossl_mbps") |"
echo "| pixseal-seal open, 50 MiB object, 64 KiB segments | $open | $(ratio "$open" "$ossl_mbps") |"
echo "| openssl speed -evp aes-256-gcm -bytes 16384 -seconds 3 | $ossl_mbps | 1.00 |"
echo
echo "Sealed overhead for 50 MiB: $(get overhead_bytes) bytes (header + 16-byte tag per segment)."
if [[ -n "$(get transit_calls)" ]]; then
    echo
    echo "| transit call (OpenBao dev server on loopback, $(get transit_calls) calls) | p50 ms | p99 ms |"
    echo "|---|---:|---:|"
    echo "| datakey/plaintext | $(get transit_datakey_p50_ms) | $(get transit_datakey_p99_ms) |"
    echo "| decrypt (unwrap) | $(get transit_decrypt_p50_ms) | $(get transit_decrypt_p99_ms) |"
fi
echo
echo "openssl: $(openssl version)"
