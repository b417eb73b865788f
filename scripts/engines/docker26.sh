#!/usr/bin/env bash
# A second Docker Engine, 26.1 (Debian trixie's docker.io), beside the machine's own daemon and
# isolated from it, for the end-to-end suite (tests/docker.rs):
#
#   scripts/engines/docker26.sh install   unpack dockerd 26 under $SHIM_ENGINES_DIR (once; fast after)
#   scripts/engines/docker26.sh start     install, start it, print its socket (unix:///run/...sock)
#   scripts/engines/docker26.sh stop      stop it; remove its containers, networks, bridges, data,
#                                         exec root, containerd state and cgroups
#
# SHIM_D26_INIT_PATH=/path/to/static/shim ... start: the daemon's `init-path` (what `docker run
# --init` bind-mounts as /sbin/docker-init) is that binary instead of the machine's tini, set through
# the daemon's config file as a user's daemon.json would (tests/docker_init.rs). Unset: tini.
#
# The machine's daemon (Docker 20.10, /var/lib/docker, docker0, the DOCKER iptables chains) is never
# stopped, reconfigured or touched. Each option below exists because the default would touch it:
#   --config-file      the default /etc/docker/daemon.json names the other daemon's data-root
#   --data-root, --exec-root, --pidfile, -H, --containerd-namespace: its own state; it starts its
#                      own containerd under its exec root
#   --bridge           a bridge made here first: `--bridge=none` makes dockerd delete docker0, and
#                      the default would share docker0 with the other daemon
#   --iptables=false --ip6tables=false: otherwise it flushes and rewrites the DOCKER chains the
#                      other daemon owns. The embedded DNS resolver still works: its NAT rules are
#                      set inside each container's network namespace, not the host's
#   --default-address-pool: 10.126.0.0/16, a range the other daemon never picks (172.17-31/16,
#                      192.168/16), so two networks made at the same moment by both never clash;
#                      it also names this daemon's bridges for the clean-up after a crash
#   --storage-driver vfs: works on any file system, needs no fuse-overlayfs
#
# Only Debian's registry is used: the .deb is fetched with apt-get download through an apt
# configuration of our own (its own sources, lists and cache under $SHIM_ENGINES_DIR), so the
# machine's apt sources, pins and installed packages are untouched. dockerd 26 runs on bookworm's
# libraries, containerd 1.6, runc and tini (docker-init).
set -euo pipefail

ENGINES_DIR=${SHIM_ENGINES_DIR:-/var/cache/shim-engines}
INSTALL=$ENGINES_DIR/docker26
DOCKERD=$INSTALL/root/usr/sbin/dockerd
NAME=shim-d26
DATA=/var/lib/$NAME
EXEC_ROOT=/run/$NAME
PIDFILE=/run/$NAME.pid
SOCK=/run/$NAME.sock
CONFIG=/run/$NAME.json
LOG=$ENGINES_DIR/$NAME.log
BRIDGE=shimd26br0
BRIDGE_ADDR=10.125.0.1/24
POOL=10.126.0.0/16
CGROUP=$NAME

log() { printf 'docker26: %s\n' "$*" >&2; }

install() {
    if [ -x "$DOCKERD" ] && "$DOCKERD" --version 2>/dev/null | grep -q 'version 26\.'; then
        return
    fi
    log "installing dockerd 26 from Debian trixie's docker.io into $INSTALL"
    local apt=$INSTALL/apt
    mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial"
    cat >"$apt/sources/trixie.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local opts=(
        -o "Dir::Etc::SourceList=$apt/none.list" -o "Dir::Etc::SourceParts=$apt/sources"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "APT::Sandbox::User=root" -qq
    )
    apt-get "${opts[@]}" update
    (cd "$apt" && rm -f docker.io_*.deb && apt-get "${opts[@]}" download docker.io/trixie)
    rm -rf "$INSTALL/root"
    dpkg-deb -x "$apt"/docker.io_*.deb "$INSTALL/root"
    rm -rf "$apt/lists" "$apt/cache" "$apt"/docker.io_*.deb
    "$DOCKERD" --version >&2
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
    install
    if running && docker -H "unix://$SOCK" version >/dev/null 2>&1; then
        echo "unix://$SOCK"
        return
    fi
    # A failure from here on leaves nothing behind.
    trap 'log "start failed; cleaning up"; tail -n 30 "$LOG" >&2 || true; stop' ERR
    stop 2>/dev/null
    mkdir -p "$DATA" "$EXEC_ROOT" "$ENGINES_DIR"
    if [ -n "${SHIM_D26_INIT_PATH:-}" ]; then
        [ -x "$SHIM_D26_INIT_PATH" ] || { log "SHIM_D26_INIT_PATH: $SHIM_D26_INIT_PATH is no executable"; false; }
        printf '{"init-path": "%s"}\n' "$(realpath "$SHIM_D26_INIT_PATH")" >"$CONFIG"
    else
        echo '{}' >"$CONFIG"
    fi
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    # Its own sbin first: docker-proxy 26; containerd, runc and docker-init are the machine's.
    PATH=$INSTALL/root/usr/sbin:$PATH setsid "$DOCKERD" \
        --config-file "$CONFIG" \
        --data-root "$DATA" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
        -H "unix://$SOCK" \
        --containerd-namespace "$NAME" --containerd-plugins-namespace "$NAME-plugins" \
        --cgroup-parent "/$CGROUP" \
        --bridge "$BRIDGE" --iptables=false --ip6tables=false --ip-masq=false \
        --default-address-pool "base=$POOL,size=24" \
        --storage-driver vfs \
        </dev/null >"$LOG" 2>&1 &
    local deadline=$((SECONDS + 60))
    until docker -H "unix://$SOCK" version >/dev/null 2>&1; do
        if ! kill -0 $! 2>/dev/null || ((SECONDS > deadline)); then
            log "dockerd did not come up"
            false
        fi
        sleep 0.1
    done
    trap - ERR
    log "$(docker -H "unix://$SOCK" version --format 'Docker Engine {{.Server.Version}}') on unix://$SOCK"
    echo "unix://$SOCK"
}

# Unmounts whatever is still mounted under $1 (deepest first), so that rm -rf cannot cross into it.
unmount_under() {
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

stop() {
    local d="docker -H unix://$SOCK"
    if running; then
        # Containers and networks first, through the daemon, so that it removes the bridges and
        # veths it made (dockerd keeps user-defined bridges across its own restarts).
        local ids
        ids=$($d ps -aq 2>/dev/null) && [ -n "$ids" ] && $d rm -f -v $ids >/dev/null 2>&1
        $d network prune -f >/dev/null 2>&1 || true
        local pid
        pid=$(cat "$PIDFILE")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # After a crash: its containerd (pid file in its exec root), then the containerd shims that
    # still serve its containers, known by that containerd's socket under its exec root.
    local pid
    if [ -f "$EXEC_ROOT/containerd/containerd.pid" ]; then
        kill -KILL "$(cat "$EXEC_ROOT/containerd/containerd.pid")" 2>/dev/null || true
    fi
    for pid in $(pgrep -f -- "-address $EXEC_ROOT/containerd/" || true); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    # After a crash: the bridges of its networks, known by an address from its own pool.
    local link
    for link in $(ip -o -4 addr show type bridge 2>/dev/null | awk '$4 ~ /^10\.126\./ { print $2 }' | sort -u); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    unmount_under "$DATA"
    unmount_under "$EXEC_ROOT"
    rm -rf "$DATA" "$EXEC_ROOT" "$PIDFILE" "$SOCK" "$CONFIG"
    local c
    for c in /sys/fs/cgroup/*/"$CGROUP" /sys/fs/cgroup/"$CGROUP"; do
        [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    return 0
}

case ${1:-} in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
