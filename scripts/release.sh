#!/usr/bin/env bash
# A release of the pixseal binary (docs/releases.md): built reproducibly, a CycloneDX SBOM of
# its crate and dependencies, SHA256SUMS of both, its minisign signature, and the release public
# key compiled in for `pixseal self-check`.
#
# usage: scripts/release.sh OUT_DIR            build, SBOM, sum and sign into OUT_DIR
#        scripts/release.sh --reproducible DIR  build twice from scratch in two target
#                                              directories and compare the bytes
# env:   PIXSEAL_RELEASE_KEY  the minisign secret key file (never in the repository; a key
#                             made with `minisign -G -W` signs without a prompt)
#        PIXSEAL_RELEASE_PUBLIC_KEY  the public key to compile in (base64); by default
#                             recovered from PIXSEAL_RELEASE_KEY (`minisign -R`)
#        CARGO_TARGET_DIR     default /var/tmp/pixseal-release (its own: the flags differ from
#                             the development build's, so sharing would rebuild both ways)
# needs: minisign, and cargo-cyclonedx for the SBOM (`cargo install --locked cargo-cyclonedx`;
#        0.5.9 made the documented one)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# What makes two builds of one commit the same bytes: no path of this checkout, of the cargo
# home or of the target directory in the binary, no debug info, symbols stripped, the commit's
# time for anything that asks for "now" at build time; the toolchain (rust-toolchain.toml or the
# machine's one) and Cargo.lock fix the rest. The paths are mapped for rustc and for the C and
# C++ compilers alike (libheif, libjpeg-turbo, libwebp, SQLite… are built by cc/cmake from
# sources in the cargo home into the target directory): today's binary holds no path of the
# target directory nor of a C source (measured), the mappings keep it so when a `file!()` in
# generated code or a `__FILE__` in an assert comes along. CFLAGS/CXXFLAGS/RUSTFLAGS from the
# caller's environment are replaced, not extended, so that they cannot make two builds differ.
export SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_TERM_COLOR=never
# LLVM's loop unroller is off for two crates (scripts/release-rustc.sh, the RUSTC_WRAPPER below).
# Measured: pixseal-media's f32 convolution code (from fast_image_resize) came out different from
# one rustc run to the next, same command, same unoptimized IR, the optimized IR differing in what
# LICM promoted; with the unroller off, 5 runs of that crate were identical. Likely cause: the
# unroller of LLVM 22 (rustc 1.95) updates the dominator tree in pointer order (llvm-project PR
# 188821, fixed in LLVM 23 only). Off for the whole build it cost `stamp` 6-20 % and a PNG
# `sanitize` 14-16 %; off for these two crates only, the same speed as the ordinary build but for
# a downscale (+8 % instructions), and two builds from scratch were identical (docs/releases.md).
# Drop the wrapper on a toolchain with LLVM 23.

build() { # build TARGET_DIR → prints the binary's path
  local target="$1"
  case "$target" in /*) ;; *) target="$ROOT/$target" ;; esac
  # The target directory's mapping comes last: rustc and gcc apply the last matching one, and
  # a target directory inside the checkout must map to /target, not into /build/pixseal.
  # (--remap-path-prefix is left out of cargo's -C metadata, so the two builds of
  # --reproducible, with two target directories, still get the same symbol hashes.)
  local cmap="-ffile-prefix-map=$ROOT=/build/pixseal -ffile-prefix-map=$CARGO_HOME_DIR=/cargo -ffile-prefix-map=$target=/target"
  RUSTFLAGS="--remap-path-prefix=$ROOT=/build/pixseal --remap-path-prefix=$CARGO_HOME_DIR=/cargo --remap-path-prefix=$target=/target" \
    RUSTC_WRAPPER="$ROOT/scripts/release-rustc.sh" \
    CFLAGS="$cmap" CXXFLAGS="$cmap" CARGO_TARGET_DIR="$target" \
    cargo build --release --locked --bin pixseal >&2
  echo "$target/release/pixseal"
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
# Checked before the build, not after twenty minutes of it.
if ! cyclonedx="$(cargo cyclonedx --version 2>/dev/null)"; then
  echo "release.sh: cargo-cyclonedx is missing (it writes the SBOM); install it with" >&2
  echo "  cargo install --locked cargo-cyclonedx" >&2
  exit 1
fi
# The tool has no output option: it writes NAME.json beside the Cargo.toml of every workspace
# member. A name of our own, removed on any exit, so no stray SBOM is left in the checkout.
SBOM_NAME=.pixseal-release-sbom.cdx
sbom_files() { git ls-files -- Cargo.toml '*/Cargo.toml' | sed "s|Cargo\.toml\$|$SBOM_NAME.json|"; }
tmp="$(mktemp -d)"
cleanup() {
  rm -rf "$tmp"
  sbom_files | while read -r f; do rm -f "$f"; done
}
trap cleanup EXIT
if [ -z "${PIXSEAL_RELEASE_PUBLIC_KEY:-}" ]; then
  # A name that does not exist yet: `minisign -R` refuses to overwrite a file (mktemp's).
  minisign -R -s "$PIXSEAL_RELEASE_KEY" -p "$tmp/release.pub" >/dev/null
  PIXSEAL_RELEASE_PUBLIC_KEY="$(tail -n 1 "$tmp/release.pub")"
fi
export PIXSEAL_RELEASE_PUBLIC_KEY
bin="$(build "${CARGO_TARGET_DIR:-/var/tmp/pixseal-release}")"
mkdir -p "$OUT"
cp "$bin" "$OUT/pixseal"
version="$("$OUT/pixseal" --version | awk '{print $2}')"

# The SBOM: the crate of the binary (pixseal-cli) and every crate it depends on, transitively,
# build-time ones (build scripts, proc macros) included, dev-dependencies not; resolved for the
# platform the binary is built for (the host: the build passes no --target). It runs after the
# build on purpose: `cargo build --locked` has refused a Cargo.lock that needs changing, and the
# tool's own `cargo metadata` takes no --locked. SOURCE_DATE_EPOCH (exported above) makes it
# drop the random serialNumber and stamp the commit's time instead of now; the one path left,
# the checkout's in the workspace crates' bom-refs (path+file://…), is mapped like the
# binary's, to /build/pixseal.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo cyclonedx --manifest-path crates/cli/Cargo.toml --format json --spec-version 1.5 \
  --target "$host" --all --override-filename "$SBOM_NAME" -q
root_re="$(printf '%s' "$ROOT" | sed 's/[][\.*^$|]/\\&/g')" # the path as a sed pattern
sed "s|path+file://$root_re/|path+file:///build/pixseal/|g" "crates/cli/$SBOM_NAME.json" \
  > "$OUT/pixseal.cdx.json"
if grep -qF "$ROOT" "$OUT/pixseal.cdx.json"; then
  echo "release.sh: the SBOM still names the checkout's path $ROOT" >&2
  exit 1
fi

# One sums file for both, so the one signature covers the SBOM too; self-check looks up the
# line of its own file name and ignores the others.
(cd "$OUT" && sha256sum pixseal pixseal.cdx.json > SHA256SUMS)
minisign -S -s "$PIXSEAL_RELEASE_KEY" -m "$OUT/SHA256SUMS" \
  -t "pixseal $version $(git rev-parse HEAD)" </dev/null
"$OUT/pixseal" self-check
echo "release in $OUT: pixseal $version, pixseal.cdx.json ($cyclonedx), SHA256SUMS, SHA256SUMS.minisig"
