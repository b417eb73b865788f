#!/usr/bin/env bash
# Init start-up benchmark of issue 4: shim against tini-static, catatonit and dumb-init.
#
#   bench/init.sh [--runs N] [--pid1-runs N]      # from the repository root, as root
#
# Installs what is missing (Debian: tini, catatonit, dumb-init, valgrind, util-linux, python3),
# builds the shipped binary (`cargo build --release --target x86_64-unknown-linux-musl`) unless
# SHIM=/path/to/shim is set, then runs bench/init-bench.py, which prints a markdown report on stdout
# (progress on stderr). Not a test: it asserts nothing and never fails on a number.
# Takes about a minute; run it on an otherwise idle machine for steady wall times.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
target=x86_64-unknown-linux-musl

# --- anchors and tools, installed only when missing ----------------------------------------------
missing=()
[ -x /usr/bin/tini-static ] || missing+=(tini)
[ -x /usr/bin/catatonit ] || missing+=(catatonit)
[ -x /usr/bin/dumb-init ] || missing+=(dumb-init)
command -v valgrind >/dev/null || missing+=(valgrind)
[ -x /usr/bin/unshare ] || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3-minimal)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "init.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
        exit 1
    fi
    echo "init.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- the shim under test: the shipped static release build ----------------------------------------
if [ -z "${SHIM:-}" ]; then
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
    (cd "$repo" && cargo build --release --target "$target" >&2)
    SHIM="${CARGO_TARGET_DIR:-$repo/target}/$target/release/shim"
fi

exec python3 "$here/init-bench.py" --shim "$SHIM" --repo "$repo" \
    --command "bench/init.sh${*:+ $*}" "$@"
