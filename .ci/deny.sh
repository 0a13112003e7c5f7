#!/usr/bin/env bash
# cargo-deny over ontab and load/: licenses on deny.toml's allow-list, only
# crates.io as a source, duplicate versions reported (as warnings).
#
#   bash .ci/deny.sh                    # bans licenses sources, offline-safe
#   DENY_ADVISORIES=1 bash .ci/deny.sh  # also RustSec advisories (fetches
#                                       # the advisory database: internet)
#
# cargo-deny is pinned and built once into $CARGO_HOME/ontab-ci-tools, outside
# the checkout, so that CI's clean clones on one machine find it: a cold
# `cargo install` of its 141 crates took 5m22s, 9m53s and 20m32s on our
# 2-core machine shared with other builds (3m31s and 3m57s of CPU); warm,
# the whole check takes about a second. One already on PATH at the pinned
# version is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.20.2
ROOT=${CARGO_HOME:-$HOME/.cargo}/ontab-ci-tools/cargo-deny

deny=""
for candidate in "$(command -v cargo-deny || true)" "$ROOT/bin/cargo-deny"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
        && [ "$("$candidate" --version 2>/dev/null)" = "cargo-deny $VERSION" ]; then
        deny=$candidate
        break
    fi
done
if [ -z "$deny" ]; then
    printf '==> deny: building cargo-deny %s into %s (once; several minutes)\n' "$VERSION" "$ROOT"
    started=$SECONDS
    cargo install cargo-deny --version "$VERSION" --locked --root "$ROOT"
    printf '==> deny: cargo-deny built in %ss\n' "$((SECONDS - started))"
    deny=$ROOT/bin/cargo-deny
fi

checks=(bans licenses sources)
network=(--offline)
if [ "${DENY_ADVISORIES:-}" = 1 ]; then
    checks+=(advisories)
    network=()
fi
# --offline: no advisory database, no crate downloads; cargo metadata reads
# the lock file and the local registry cache. A build caches only the crates
# of this platform, and metadata wants every target's (web-sys, android_*),
# so fetch them first from the registry (a no-op once cached).
cargo fetch --locked >/dev/null
"$deny" --workspace --locked "${network[@]}" check --hide-inclusion-graph "${checks[@]}"
