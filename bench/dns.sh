#!/usr/bin/env bash
# DNS benchmark: writes the "## DNS" section of BENCHMARKS.md (other sections stay as they are).
#
# In a network namespace made like a container (lo with Docker's 127.0.0.11, a veth end with
# 192.0.2.1 and 2001:db8::1, servers on 2001:db8::53, 192.0.2.53 and 127.0.0.2x; no route out),
# with a Docker <= 25 resolv.conf bind-mounted over /etc/resolv.conf and a silent 127.0.0.11:
#   - glibc `getent ahostsv6 v6only.test` and a static musl client, without and with shim;
#   - `shim --check-dns` with 1, 3 and 10 nameservers, one of them silent.
# Times are wall clock inside the namespace (bash's EPOCHREALTIME around the command), the file
# restored before each run. Needs root, iproute2, util-linux (mount) and musl-tools (musl-gcc).
#
#   bench/dns.sh            # RUNS=20 fast runs, SLOW_RUNS=3 runs of the 5 s case
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-20}
SLOW_RUNS=${SLOW_RUNS:-3}
TIMEOUT_MS=1000

[ "$(id -u)" = 0 ] || { echo "bench/dns.sh: needs root (network namespaces, mounts)" >&2; exit 1; }
command -v musl-gcc >/dev/null || { echo "bench/dns.sh: needs musl-gcc (apt-get install musl-tools)" >&2; exit 1; }

cargo build --quiet --release --target x86_64-unknown-linux-musl --bin shim
cargo build --quiet --release --example dns_responder
SHIM=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/shim
RESPONDER=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/examples/dns_responder

WORK=$(mktemp -d)
NS=shim-bench-$$
RESPONDER_PID=
cleanup() {
	set +e
	if [ -n "$RESPONDER_PID" ]; then
		kill "$RESPONDER_PID" 2>/dev/null
		wait "$RESPONDER_PID" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench/dns.sh: failed at line $LINENO" >&2' ERR

musl-gcc -static -Os -o "$WORK/musl-lookup" bench/musl_lookup.c

ip netns add "$NS"
nsip() { ip -n "$NS" "$@"; }
nsip link set lo up
nsip link add veth0 type veth peer name veth1
nsip addr add 192.0.2.1/24 dev veth0
nsip addr add 192.0.2.53/24 dev veth0
nsip -6 addr add 2001:db8::1/64 dev veth0 nodad
nsip -6 addr add 2001:db8::53/64 dev veth0 nodad
nsip link set veth1 up
nsip link set veth0 up

specs=(silent@127.0.0.11:53 'zone@[2001:db8::53]:53' zone@192.0.2.53:53)
for i in 21 22 23 24 25 26 27; do specs+=("zone@127.0.0.$i:53"); done
ip netns exec "$NS" "$RESPONDER" "${specs[@]}" >"$WORK/responder.out" &
RESPONDER_PID=$!
for _ in $(seq 100); do grep -q ready "$WORK/responder.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORK/responder.out" || { echo "bench/dns.sh: the responder did not start" >&2; exit 1; }

# The timing loop, run inside the namespace: bind a scratch file over /etc/resolv.conf, and for
# each run restore it from SOURCE (in place, as Docker's file) and time COMMAND. Prints one
# "milliseconds exit-status" line per run.
cat >"$WORK/inner.sh" <<'EOF'
set -u
source=$1 runs=$2
shift 2
scratch=$(mktemp -p "${source%/*}")
cp "$source" "$scratch"
mount --bind "$scratch" /etc/resolv.conf
for ((i = 0; i < runs; i++)); do
	cat "$source" >/etc/resolv.conf
	start=$EPOCHREALTIME
	"$@" >/dev/null 2>&1
	status=$?
	end=$EPOCHREALTIME
	echo "$(((${end/./} - ${start/./}))) $status"
done
EOF

# measure SOURCE RUNS EXPECTED_STATUS COMMAND...: prints "median min max" in ms.
measure() {
	local source=$1 runs=$2 expected=$3
	shift 3
	ip netns exec "$NS" bash "$WORK/inner.sh" "$source" "$runs" "$@" >"$WORK/times"
	if awk -v want="$expected" '$2 != want { bad = 1 } END { exit !bad }' "$WORK/times"; then
		echo "bench/dns.sh: '$*' exited $(awk '{print $2}' "$WORK/times" | sort -u | tr '\n' ' ')(expected $expected)" >&2
		exit 1
	fi
	awk '{ print $1 / 1000 }' "$WORK/times" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.2f %.2f %.2f\n", m, v[1], v[NR]
		}'
}

cat >"$WORK/docker25" <<'EOF'
nameserver 127.0.0.11
nameserver 2001:db8::53
options ndots:0
EOF
cat >"$WORK/fixed" <<'EOF'
nameserver 2001:db8::53
options ndots:0
EOF
printf 'nameserver 127.0.0.11\n' >"$WORK/ns1"
printf 'nameserver 127.0.0.11\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n' >"$WORK/ns3"
{
	printf 'nameserver 127.0.0.11\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n'
	for i in 21 22 23 24 25 26 27; do printf 'nameserver 127.0.0.%s\n' "$i"; done
} >"$WORK/ns10"

MUSL=$WORK/musl-lookup
rows=()
row() { # label runs file expected command...
	local label=$1 runs=$2 file=$3 expected=$4
	shift 4
	read -r median min max < <(measure "$file" "$runs" "$expected" "$@")
	rows+=("| $label | $runs | $median | $min | $max |")
	echo "$label: median $median ms (min $min, max $max)" >&2
}

row "glibc \`getent ahostsv6 v6only.test\`, no shim" "$SLOW_RUNS" "$WORK/docker25" 0 getent ahostsv6 v6only.test
row "glibc, under shim (\`shim -- getent ...\`)" "$RUNS" "$WORK/docker25" 0 "$SHIM" -- getent ahostsv6 v6only.test
row "glibc, file already without 127.0.0.11, no shim (reference)" "$RUNS" "$WORK/fixed" 0 getent ahostsv6 v6only.test
row "static musl client, no shim" "$RUNS" "$WORK/docker25" 0 "$MUSL" v6only.test
row "static musl client, under shim" "$RUNS" "$WORK/docker25" 0 "$SHIM" -- "$MUSL" v6only.test
check_rows_start=${#rows[@]}
row "\`shim --check-dns\`, 1 nameserver (silent)" 5 "$WORK/ns1" 1 "$SHIM" --check-dns --name v6only.test --probe-timeout "$TIMEOUT_MS"
row "\`shim --check-dns\`, 3 nameservers, 1 silent" 5 "$WORK/ns3" 0 "$SHIM" --check-dns --name v6only.test --probe-timeout "$TIMEOUT_MS"
row "\`shim --check-dns\`, 10 nameservers, 1 silent" 5 "$WORK/ns10" 0 "$SHIM" --check-dns --name v6only.test --probe-timeout "$TIMEOUT_MS"

glibc_version=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //' || echo unknown)
musl_version=$(dpkg-query -W -f '${Version}' musl 2>/dev/null || echo unknown)
size=$(stat -c %s "$SHIM")
section=$WORK/section.md
{
	echo "## DNS"
	echo
	echo "Measured by \`bench/dns.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), glibc $glibc_version, musl $musl_version;"
	echo "shim: the static musl release binary ($size bytes). In a network namespace imitating a container on"
	echo "a user-defined Docker <= 25 network on an IPv6-only host: /etc/resolv.conf is a bind-mounted file"
	echo "listing \`nameserver 127.0.0.11\` (silent: reads and drops every query), then \`nameserver 2001:db8::53\`"
	echo "(answers \`v6only.test\` AAAA only), \`options ndots:0\`. Wall time in ms inside the namespace, the file"
	echo "restored before each run (so shim really fixes it each time). \`--check-dns\` rows: probe timeout"
	echo "${TIMEOUT_MS} ms; the silent server is 127.0.0.11, the others answer at once."
	echo
	echo "| case | runs | median ms | min ms | max ms |"
	echo "|---|---|---|---|---|"
	for r in "${rows[@]}"; do echo "$r"; done
	echo
	echo "Targets (issue 5): the seed case (glibc, silent 127.0.0.11) from about 5 s to under 20 ms under"
	echo "shim; \`--check-dns\` within one timeout plus 50 ms (${TIMEOUT_MS} + 50 ms) however many servers."
	echo "musl asks all servers at once and takes the first answer, so it never waited for 127.0.0.11."
}>"$section"

# Replace the DNS section of BENCHMARKS.md (from "## DNS" to the next "## " heading), or append it.
bench=$ROOT/BENCHMARKS.md
[ -f "$bench" ] || printf '# Benchmarks\n\n' >"$bench"
awk -v section="$section" '
	function emit() { while ((getline line < section) > 0) print line; print ""; done = 1 }
	/^## DNS[[:space:]]*$/ { skipping = 1; emit(); next }
	skipping && /^## / { skipping = 0 }
	!skipping { print }
	END { if (!done) { print ""; emit() } }
' "$bench" | cat -s >"$WORK/bench.md"
cp "$WORK/bench.md" "$bench"
echo "bench/dns.sh: wrote the DNS section of $bench" >&2
