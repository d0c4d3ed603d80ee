#!/usr/bin/env bash
# Fuzz the sealed-object header parser (and, with TARGET=open_blob, the whole open path) with
# cargo-fuzz / libFuzzer. Needs the nightly toolchain; installs cargo-fuzz if missing.
#   SECONDS_TO_RUN=60 bash scripts/fuzz-seal-header.sh
# The fuzz crate lives in crates/seal/fuzz (its own workspace, not part of pixseal's).
set -euo pipefail
cd "$(dirname "$0")/../crates/seal/fuzz"
TARGET="${TARGET:-header}"
SECS="${SECONDS_TO_RUN:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pixseal-seal-fuzz-target}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
mkdir -p "corpus/$TARGET"
# Seed with real headers produced by the crate's own tests' format (a few valid shapes).
if [[ "$TARGET" == header && -z "$(ls -A "corpus/$TARGET")" ]]; then
    printf 'PXSL\x01\x00\x26\x01\x01\x01\x00\x01\x00\x00\x01\x02\x03\x04\x05\x06\x07\x0apixseal-us\x00\x00\x00\x00\x00\x00' >"corpus/$TARGET/detached-local"
fi
cargo +nightly fuzz run "$TARGET" "corpus/$TARGET" -- \
    -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 2>&1 | tee "/tmp/pixseal-fuzz-$TARGET.log" \
    | grep -E '^(#[0-9]+ +(DONE|pulse|NEW)|stat::|==|SUMMARY|Done|INFO: seed)' | tail -25
echo "log: /tmp/pixseal-fuzz-$TARGET.log"
