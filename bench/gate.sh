#!/usr/bin/env bash
# CI gate on what the start-up work protects (not a benchmark, and not a test: callgrind's counts
# are exact and repeatable, so they may fail a build where a time may not):
#   - the stripped static binary is at most 650,000 bytes;
#   - `shim --resolv-conf <Docker 25 file> -- /bin/true` runs at most 0.65x the instructions of
#     `tini-static -s -- /bin/true`, both counted by callgrind in this run;
#   - the link order (link-order/, build.rs) still names this build's symbols: a new toolchain or
#     dependency renames them, and the code shim runs after its start-up lies scattered again
#     (more RSS, nothing wrong otherwise). `scripts/link-order` makes it anew.
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
    # With the linker's map (the binary is the same with it or without).
    map=$(mktemp)
    (cd "$repo" && SHIM_LINK_MAP=$map cargo build --quiet --release --target x86_64-unknown-linux-musl --bin shim)
    python3 "$repo/scripts/link_order.py" --check "$map" "$repo/link-order/x86_64-unknown-linux-musl.txt"
    rm -f "$map"
    SHIM="${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/shim"
fi
exec python3 "$here/init-bench.py" --shim "$SHIM" --gate
