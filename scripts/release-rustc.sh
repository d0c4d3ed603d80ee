#!/bin/sh
# The RUSTC_WRAPPER of scripts/release.sh: cargo runs it as `release-rustc.sh RUSTC ARGS...`.
# Turns LLVM's loop unroller off for the crates whose optimized code came out different from one
# rustc run to the next (pixseal_media, where fast_image_resize's f32 convolution is compiled, and
# fast_image_resize itself), and only for them: the unroller off everywhere made `stamp` 6-20 %
# slower (docs/releases.md). Override the list with PIXSEAL_NO_UNROLL_CRATES (space-separated).
rustc="$1"; shift
crates="${PIXSEAL_NO_UNROLL_CRATES:-pixseal_media fast_image_resize}"
prev=""
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then
    for c in $crates; do
      if [ "$a" = "$c" ]; then
        exec "$rustc" "$@" -C llvm-args=-unroll-threshold=0 -C llvm-args=-unroll-full-max-count=0 \
          -C llvm-args=-unroll-runtime=false -C llvm-args=-unroll-allow-partial=false
      fi
    done
    break
  fi
  prev="$a"
done
exec "$rustc" "$@"
