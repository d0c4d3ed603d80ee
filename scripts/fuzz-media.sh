#!/usr/bin/env bash
# Fuzz the ingest pipeline (sniff + decode + the rest) with cargo-fuzz / libFuzzer.
#   scripts/fuzz-media.sh [SECONDS]   (default 120)
# Seeds: the repo's fixtures, plus ../shared/tools/make_bad_inputs.py cases when present.
set -euo pipefail
cd "$(dirname "$0")/../crates/media/fuzz"
secs="${1:-120}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
corpus=corpus/ingest
mkdir -p "$corpus"
find ../../../fixtures -type f -size -200k -exec cp {} "$corpus/" \;
if [ -f ../../../../shared/tools/make_bad_inputs.py ]; then
  tmp=$(mktemp -d); python3 ../../../../shared/tools/make_bad_inputs.py generate "$tmp" >/dev/null
  find "$tmp" -type f -size -200k ! -name manifest.json -exec cp {} "$corpus/" \;
  rm -rf "$tmp"
fi
# libFuzzer needs the sanitizer runtime; RUSTC_BOOTSTRAP lets the stable toolchain build it.
export RUSTC_BOOTSTRAP=1
cargo fuzz run ingest "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 -print_final_stats=1 2>&1 | grep -v "^  \"" | tail -n 40
