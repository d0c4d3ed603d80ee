#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml), offline: licences on the allow-list, every
# crate from crates.io, bans. Advisories too when a RustSec advisory database is on disk
# (docs/releases.md says how to bring one).
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo-deny reads every platform's crates, which a build on this machine never downloads: a
# cold cache fetches them first (from crates.io, the lock file's versions).
cargo fetch --locked --quiet
cargo deny --offline --locked check licenses sources bans
DB="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if [ -n "$(ls -A "$DB" 2>/dev/null)" ]; then
  cargo deny --offline --locked check --disable-fetch advisories
else
  echo "note: no RustSec advisory database under $DB; advisories not checked (docs/releases.md)"
fi
