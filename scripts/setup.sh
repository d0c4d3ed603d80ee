#!/usr/bin/env bash
# Install what the build and the tests need (idempotent; quick when everything is present).
# System: cmake + nasm (libjpeg-turbo is built from the vendored source with SIMD), exiftool
# (metadata checks in tests), strace (the proof that processing opens no network socket),
# minisign (release signatures; the self-check test checks ours against it), caddy (the TLS
# proxy of scripts/prod-shape.sh), libde265 + dav1d + pkg-config (libheif is built from the
# crate's embedded source and decodes HEVC and AV1 through them), chromium + chromium-driver
# (the browser tests of the pages drive Debian's Chromium through WebDriver), softhsm2 + opensc
# (a PKCS#11 token and the tool that makes keys on it, for the HSM signer tests), ffmpeg
# (the video tests make their clips with it, and keyframes are decoded by its binary), GNU time
# (the peak RSS of a benchmark's child, scripts/bench-video.py). Cargo:
# cargo-deny (supply-chain checks, scripts/deny.sh). Python: Pillow + numpy (shared test
# tools); c2pa-python (the reference C2PA implementation) and pdqhash (Meta's PDQ reference) for
# the provenance tests; schemathesis (the API fuzzer of scripts/api-fuzz.sh).
set -euo pipefail

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v nasm >/dev/null || need_apt+=(nasm)
command -v exiftool >/dev/null || need_apt+=(libimage-exiftool-perl)
command -v caddy >/dev/null || need_apt+=(caddy)
command -v strace >/dev/null || need_apt+=(strace)
command -v minisign >/dev/null || need_apt+=(minisign)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
pkg-config --exists libde265 2>/dev/null || need_apt+=(libde265-dev)
pkg-config --exists dav1d 2>/dev/null || need_apt+=(libdav1d-dev)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
[ -x /usr/bin/time ] || need_apt+=(time)
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null
  }
fi

# Pinned like the Python tools: its checks are part of CI's verdict.
if ! cargo deny --version 2>/dev/null | grep -q '^cargo-deny 0.20.2$'; then
  cargo install --locked --quiet cargo-deny@0.20.2
fi

if ! python3 -c 'import PIL, numpy' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check pillow numpy
fi

# The reference decoder for the corpus HEIC tests (libheif inside, as pixseal uses).
if ! python3 -c 'import pillow_heif' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'pillow-heif==1.9.0'
fi

# Pinned: the interop tests and the benchmark compare against these exact reference builds.
if ! python3 -c 'import c2pa, pdqhash' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'c2pa-python==0.38.1' 'pdqhash==0.2.8'
fi

# The third-party API fuzzer run by scripts/api-fuzz.sh against a real `pixseal serve`.
if ! python3 -c 'import schemathesis' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check 'schemathesis==4.32.5'
fi
