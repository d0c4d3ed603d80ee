#!/usr/bin/env bash
# Run every cargo-fuzz / libFuzzer target in turn, SECONDS each, then print one line per target:
# executions, executions per second, corpus size, and the crash / timeout / OOM files it left.
#   scripts/fuzz-all.sh [SECONDS] [TARGET...]      (default 120 s each; all targets)
#   FUZZ_TIMEOUT=30 scripts/fuzz-all.sh 1800 admit verify detect   (the runs in docs/fuzzing.md;
#   libFuzzer's timeout is wall-clock, so a loaded machine needs a longer one)
# Targets: admit ingest (crates/media/fuzz), verify (crates/provenance/fuzz), detect
# (crates/watermark/fuzz), header open_blob (crates/seal/fuzz).
# Seeds: fixtures/ and crates/media/tests/fixtures/phone/; for verify, also files stamped by a
# pixseal binary (PIXSEAL_BIN, else target/release/pixseal, when present) with a development
# chain kept in crates/provenance/fuzz/devchain, whose root is the verifier's trust anchor.
# Logs: $FUZZ_LOG_DIR (default /tmp/pixseal-fuzz). Stable toolchain; installs cargo-fuzz if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-120}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(admit verify detect ingest header open_blob)
logs="${FUZZ_LOG_DIR:-/tmp/pixseal-fuzz}"
mkdir -p "$logs"
# One target directory for all the fuzz crates: they share pixseal-media and its C libraries.
target_dir="${CARGO_TARGET_DIR:-/var/tmp/pixseal-fuzz-target}"
# libFuzzer needs the sanitizer runtime; RUSTC_BOOTSTRAP lets the stable toolchain build it.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
nice_cmd=(nice -n "${NICE:-0}")

crate_of() {
    case "$1" in
        admit | ingest) echo media ;;
        verify) echo provenance ;;
        detect) echo watermark ;;
        header | open_blob) echo seal ;;
        *) echo "unknown target: $1" >&2 && exit 2 ;;
    esac
}

# detect reaches only safe Rust (no C library, no unsafe of ours), where AddressSanitizer finds
# nothing, and under it one unmarked 512x384 picture took 2.7 s of CPU, so the timeout measured
# the sanitizer. It is built without one, in its own target directory (other RUSTFLAGS).
sanitizer_of() {
    case "$1" in
        detect) echo none ;;
        *) echo address ;;
    esac
}

small_files() { find "$@" -type f -size -200k ! -name '*.md' 2>/dev/null || true; }

seed() {
    local target=$1 corpus=$2
    case "$target" in
        admit | ingest)
            small_files "$root/fixtures" "$root/crates/media/tests/fixtures/phone" |
                xargs -r cp -t "$corpus"
            ;;
        verify)
            small_files "$root/fixtures" | xargs -r cp -t "$corpus"
            local bin="${PIXSEAL_BIN:-$root/target/release/pixseal}"
            if [ -x "$bin" ]; then
                local tmp
                tmp=$(mktemp -d)
                for f in jpeg png webp; do
                    # Small pictures keep the manifest a large share of each seed's bytes.
                    (cd "$tmp" && "${nice_cmd[@]}" "$bin" stamp --data-dir "$dir/devchain" \
                        --jobs 1 --format "$f" --max-edge 160 -o "$tmp/$f" \
                        "$root/fixtures/photos/garden.jpg" "$root/fixtures/orientation/upright.png" \
                        "$root/fixtures/photos/alpha.png" >/dev/null 2>&1) || true
                done
                find "$tmp" -type f -exec sh -c 'cp "$1" "$2/stamped-$(basename "$(dirname "$1")")-$(basename "$1")"' _ {} "$corpus" \;
                rm -rf "$tmp"
            fi
            ;;
        detect)
            # flags (bit 0: embed first; bits 1..: channels mod 6), width, height (24-bit LE),
            # [proof id], pixel pattern.
            local id='\x11\x22\x33\x44\x55\x66\x77\x08'
            printf '\x07\x00\x01\x00\x00\x01\x00'"$id"'\x10\x80\xf0\x40\x20' >"$corpus/marked-256x256-rgb"
            printf '\x09\x40\x00\x00\x00\x40\x00'"$id"'\x00\xff' >"$corpus/marked-64x64-rgba"
            printf '\x07\x00\x40\x00\x40\x00\x00'"$id"'\x7f' >"$corpus/marked-16384x64-rgb"
            printf '\x06\x00\x02\x00\x80\x01\x00\x01\x02\x03\x05\x08\x0d\x15' >"$corpus/plain-512x384-rgb"
            printf '\x06\x01\x00\x00\x01\x00\x00\x80' >"$corpus/plain-1x1-rgb"
            printf '\x06\x00\x00\x00\x00\x00\x00' >"$corpus/plain-0x0-rgb"
            printf '\x08\x20\x00\x00\x00\x00\x01\xaa\x55' >"$corpus/plain-32x65536-rgba"
            ;;
        header)
            printf 'PXSL\x01\x00\x26\x01\x01\x01\x00\x01\x00\x00\x01\x02\x03\x04\x05\x06\x07\x0apixseal-us\x00\x00\x00\x00\x00\x00' >"$corpus/detached-local"
            ;;
    esac
}

summary=()
for target in "${targets[@]}"; do
    crate=$(crate_of "$target")
    dir="$root/crates/$crate/fuzz"
    corpus="$dir/corpus/$target"
    mkdir -p "$corpus" "$dir/artifacts/$target"
    # The workspace's lock file, so the fuzzed dependencies are the versions pixseal ships.
    [ -f "$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$dir/Cargo.lock"
    before=$(ls "$dir/artifacts/$target")
    seed "$target" "$corpus"
    env=()
    anchors="$dir/devchain/c2pa/root.pem"
    [ "$target" = verify ] && [ -f "$anchors" ] && env=(PIXSEAL_FUZZ_ANCHORS="$anchors")
    log="$logs/$target.log"
    echo "== $target: ${secs}s, log $log"
    san=$(sanitizer_of "$target")
    export CARGO_TARGET_DIR="$target_dir"
    [ "$san" = address ] || CARGO_TARGET_DIR="$target_dir-$san"
    (cd "$dir" && "${nice_cmd[@]}" cargo fuzz build -s "$san" "$target") 2>&1 | tail -n 3
    started=$(date -u +%FT%TZ)
    # A crash stops libFuzzer with a non-zero status; the summary says so, the next target runs.
    (cd "$dir" && env "${env[@]}" "${nice_cmd[@]}" cargo fuzz run -s "$san" "$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-10}" -max_len=1048576 \
        -print_final_stats=1) >"$log" 2>&1 || true
    fstat() { grep -m1 "^stat::$1:" "$log" | awk '{print $2}'; }
    # New files only: crash-*, timeout-*, oom-*, leak-*, slow-unit-*.
    new=$(comm -13 <(echo "$before") <(ls "$dir/artifacts/$target") | sed '/^$/d')
    found=$(echo "$new" | sed '/^$/d; s/-[0-9a-f]*$//' | sort | uniq -c | awk '{print $2 " " $1}' | paste -sd, -)
    summary+=("$(printf '%-10s start %s  execs %s  execs/s %s  corpus %s files  peak RSS %s MB  findings: %s' \
        "$target" "$started" "$(fstat number_of_executed_units)" "$(fstat average_exec_per_sec)" \
        "$(find "$corpus" -type f | wc -l)" "$(fstat peak_rss_mb)" "${found:-none}")")
    grep -E '^(==[0-9]+==|SUMMARY|.*panicked at)' "$log" | head -n 5 || true
done
echo
printf '%s\n' "${summary[@]}"
