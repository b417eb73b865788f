#!/usr/bin/env bash
# Podman 4.3 (Debian bookworm's podman, netavark and aardvark-dns), rootful, inside a network and
# mount namespace of its own, for the end-to-end suite (tests/podman.rs):
#
#   scripts/engines/podman.sh install   apt-get install podman netavark aardvark-dns (once)
#   scripts/engines/podman.sh start     install, make the namespaces, print the path of a `podman`
#                                       command that runs in them with our storage and config
#   scripts/engines/podman.sh stop      remove its containers, end every process in its network
#                                       namespace, remove its storage: nothing is left behind
#
# Why the namespaces: rootful netavark makes bridges and iptables rules, and podman bind-mounts
# network namespaces under /run/netns. In a network namespace of our own, the bridges, rules and
# aardvark-dns live and die with it, and the host's (and the Docker daemon's) are never touched; a
# tmpfs over /run in a mount namespace of our own keeps podman's run files there too. Every packet
# stays between the containers of the networks the suite creates in it.
#
# In that mount namespace /etc/resolv.conf (the file podman and aardvark-dns read as the host's) is
# ours: it names $UPSTREAM, the address the suite gives its DNS server on the podman network it
# creates (subnet fd00:5348:494d:1::/64; no clash is possible in a network namespace of our own).
# So a container's file is what Podman writes on any host (`search dns.podman`, aardvark's
# gateway addresses, then the host's server) and every lookup, forwarded by aardvark-dns or sent
# straight to the host's server, gets a real answer from inside the networks the suite created.
#
# Storage (vfs) and run root are under $STATE, given by our own storage.conf and containers.conf.
# The ulimits: podman 4.3 asks for nofile 1048576 by default, more than this machine's hard limit,
# and crun then fails to start the container; 20000 and 1024 fit.
set -euo pipefail

NAME=shim-podman
STATE=/var/lib/$NAME
HOLDER_PID=$STATE/holder.pid
WRAPPER=$STATE/podman
UPSTREAM=fd00:5348:494d:1::53

log() { printf 'podman: %s\n' "$*" >&2; }

install() {
    if command -v podman >/dev/null && [ -x /usr/lib/podman/netavark ] && [ -x /usr/lib/podman/aardvark-dns ]; then
        return
    fi
    log "installing Debian's podman, netavark and aardvark-dns"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman netavark aardvark-dns >&2
}

holder() { [ -f "$HOLDER_PID" ] && kill -0 "$(cat "$HOLDER_PID")" 2>/dev/null && cat "$HOLDER_PID"; }

start() {
    install
    if holder >/dev/null && "$WRAPPER" info >/dev/null 2>&1; then
        echo "$WRAPPER"
        return
    fi
    trap 'log "start failed; cleaning up"; stop' ERR
    stop 2>/dev/null
    mkdir -p "$STATE"/{storage,run,networks,tmp}
    cat >"$STATE/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
    cat >"$STATE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$STATE/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$STATE/networks"
EOF
    printf '# The host file of shim'"'"'s podman namespaces (scripts/engines/podman.sh).\nnameserver %s\n' \
        "$UPSTREAM" >"$STATE/resolv.conf"
    # The holder: the first process of the namespaces, which live as long as it does.
    unshare --net --mount --propagation private --fork -- sh -c '
        mount -t tmpfs -o mode=0755 shim-podman-run /run
        mount --bind "$2" /etc/resolv.conf
        ip link set lo up
        echo $$ >"$1"
        exec sleep infinity' holder "$HOLDER_PID" "$STATE/resolv.conf" </dev/null >/dev/null 2>&1 &
    local deadline=$((SECONDS + 10))
    until [ -s "$HOLDER_PID" ] && [ "$(readlink "/proc/$(cat "$HOLDER_PID")/ns/net")" != "$(readlink /proc/self/ns/net)" ] \
        && grep -q shim-podman-run "/proc/$(cat "$HOLDER_PID")/mounts" 2>/dev/null; do
        ((SECONDS < deadline)) || { log "the namespaces did not come up"; false; }
        sleep 0.05
    done
    cat >"$WRAPPER" <<EOF
#!/bin/sh
# podman in shim's test namespaces (scripts/engines/podman.sh).
export CONTAINERS_CONF=$STATE/containers.conf CONTAINERS_STORAGE_CONF=$STATE/storage.conf
exec nsenter -t "\$(cat $HOLDER_PID)" -n -m -- podman "\$@"
EOF
    chmod +x "$WRAPPER"
    "$WRAPPER" info >/dev/null
    trap - ERR
    log "$("$WRAPPER" version --format 'Podman {{.Client.Version}}') in namespaces of pid $(cat "$HOLDER_PID")"
    echo "$WRAPPER"
}

stop() {
    local pid
    if pid=$(holder); then
        "$WRAPPER" rm -a -f -t 0 >/dev/null 2>&1 || true
        "$WRAPPER" network prune -f >/dev/null 2>&1 || true
        # What is left in its network namespace (aardvark-dns, conmon, a container after a crash),
        # found by that namespace, each by its pid; the holder last.
        local ns p
        ns=$(readlink "/proc/$pid/ns/net")
        for p in /proc/[0-9]*; do
            [ "${p#/proc/}" = "$pid" ] && continue
            [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && kill -KILL "${p#/proc/}" 2>/dev/null || true
        done
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    # conmon runs in the host's network namespace: found by its run root under $STATE.
    for p in $(pgrep -f -- "conmon .*$STATE/" || true); do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$STATE"
    return 0
}

case ${1:-} in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
