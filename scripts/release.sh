#!/usr/bin/env bash
# A release of the pixseal binary (docs/releases.md): built reproducibly, SHA256SUMS, its
# minisign signature, and the release public key compiled in for `pixseal self-check`.
#
# usage: scripts/release.sh OUT_DIR            build, sum and sign into OUT_DIR
#        scripts/release.sh --reproducible DIR  build twice from scratch in two target
#                                              directories and compare the bytes
# env:   PIXSEAL_RELEASE_KEY  the minisign secret key file (never in the repository; a key
#                             made with `minisign -G -W` signs without a prompt)
#        PIXSEAL_RELEASE_PUBLIC_KEY  the public key to compile in (base64); by default
#                             recovered from PIXSEAL_RELEASE_KEY (`minisign -R`)
#        CARGO_TARGET_DIR     default /var/tmp/pixseal-release (its own: the flags differ from
#                             the development build's, so sharing would rebuild both ways)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# What makes two builds of one commit the same bytes: no path of this checkout or of the cargo
# home in the binary, no debug info, symbols stripped, the commit's time for anything that asks
# for "now" at build time; the toolchain (rust-toolchain.toml or the machine's one) and
# Cargo.lock fix the rest.
export SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"
export RUSTFLAGS="--remap-path-prefix=$ROOT=/build/pixseal --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_TERM_COLOR=never

build() { # build TARGET_DIR → prints the binary's path
  CARGO_TARGET_DIR="$1" cargo build --release --locked --bin pixseal >&2
  echo "$1/release/pixseal"
}

if [ "${1:-}" = "--reproducible" ]; then
  DIR="${2:?usage: scripts/release.sh --reproducible DIR}"
  rm -rf "$DIR/a" "$DIR/b"
  mkdir -p "$DIR"
  a="$(build "$DIR/a")"
  b="$(build "$DIR/b")"
  sha256sum "$a" "$b"
  cmp "$a" "$b" && echo "reproducible: two builds from scratch are the same $(stat -c %s "$a") bytes"
  exit
fi

OUT="${1:?usage: scripts/release.sh OUT_DIR}"
: "${PIXSEAL_RELEASE_KEY:?set PIXSEAL_RELEASE_KEY to the minisign secret key file}"
if [ -z "${PIXSEAL_RELEASE_PUBLIC_KEY:-}" ]; then
  pub="$(mktemp)"
  trap 'rm -f "$pub"' EXIT
  minisign -R -s "$PIXSEAL_RELEASE_KEY" -p "$pub" >/dev/null
  PIXSEAL_RELEASE_PUBLIC_KEY="$(tail -n 1 "$pub")"
fi
export PIXSEAL_RELEASE_PUBLIC_KEY
bin="$(build "${CARGO_TARGET_DIR:-/var/tmp/pixseal-release}")"
mkdir -p "$OUT"
cp "$bin" "$OUT/pixseal"
version="$("$OUT/pixseal" --version | awk '{print $2}')"
(cd "$OUT" && sha256sum pixseal > SHA256SUMS)
minisign -S -s "$PIXSEAL_RELEASE_KEY" -m "$OUT/SHA256SUMS" \
  -t "pixseal $version $(git rev-parse HEAD)" </dev/null
"$OUT/pixseal" self-check
echo "release in $OUT: pixseal $version, SHA256SUMS, SHA256SUMS.minisig"
