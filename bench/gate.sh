#!/usr/bin/env bash
# CI gate on what the start-up work protects (not a benchmark, and not a test: callgrind's counts
# are exact and repeatable, so they may fail a build where a time may not):
#   - the stripped static binary is at most 650,000 bytes;
#   - `shim --resolv-conf <Docker 25 file> -- /bin/true` runs at most 0.65x the instructions of
#     `tini-static -s -- /bin/true`, both counted by callgrind in this run.
# Installs Debian's tini and valgrind when missing; builds the shipped binary unless SHIM is set.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
missing=()
[ -x /usr/bin/tini-static ] || missing+=(tini)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [ -z "${SHIM:-}" ]; then
    (cd "$repo" && cargo build --quiet --release --target x86_64-unknown-linux-musl --bin shim)
    SHIM="${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/shim"
fi
exec python3 "$here/init-bench.py" --shim "$SHIM" --gate
