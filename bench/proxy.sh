#!/usr/bin/env bash
# DNS proxy benchmark (`--embedded proxy`, R8): writes the "## DNS proxy" section of BENCHMARKS.md
# (other sections stay as they are). A benchmark, not a test: it asserts nothing.
#
# In a network namespace made here (lo, and a veth pair, one end holding 2001:db8::1 and 2001:db8::53; no
# route out, no other traffic), side by side in one run:
#   (a) the upstream asked directly: examples/dns_responder, zone@[2001:db8::53]:53;
#   (b) dnsmasq (Debian's dnsmasq-base) as a forwarder on 127.0.0.2, cache off (--cache-size=0:
#       like the proxy, every query goes upstream), on 127.0.0.4 with its default cache (150
#       names), and on 127.0.0.3 asking 127.0.0.11 and the upstream (--all-servers, no cache);
#   (c) shim's proxy on 127.0.0.153: shim as PID 1 of a PID namespace (`unshare --pid --fork
#       --mount-proc`), `--embedded proxy -- sleep`, its /etc/resolv.conf a bind-mounted Docker 25
#       file (127.0.0.11, then 2001:db8::53, options ndots:0).
# Docker's embedded resolver stands in as dns_responder on 127.0.0.11:53: `silent` (an IPv6-only
# host: it never answers, so outside names come from the upstream), and for the "names" path
# `zone` (it answers, as 127.0.0.11 does for a container name).
#
# Figures: latency per lookup (bench/dns_latency.c: N sequential UDP queries, each timed from send
# to the matching answer; median and p99), queries per second (dnsperf, 100 queries outstanding,
# DURATION s, QROUNDS rounds with the servers in turns, the median), the server's CPU time per
# query while dnsperf sends a fixed RATE, VmRSS of shim with the proxy idle, at the end of a load
# and its peak (VmHWM), against shim without the proxy (`--embedded drop`), and wake-ups of shim
# (the sum of voluntary + involuntary context switches over all its threads) over IDLE s with no
# query. The servers compared run side by side, so that each round measures all of them under
# the same load from the rest of the machine.
#
#   bench/proxy.sh      # N=20000 queries, DURATION=5 s, QROUNDS=3, RATE=20000/s, IDLE=3 s
# Takes about four minutes.
# Needs root, iproute2, util-linux (unshare, mount), gcc, dnsmasq (dnsmasq-base), dnsperf.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-20000}
DURATION=${DURATION:-5}
IDLE=${IDLE:-3}

[ "$(id -u)" = 0 ] || { echo "bench/proxy.sh: needs root (network namespaces, mounts)" >&2; exit 1; }
for tool in gcc dnsperf unshare; do
	command -v "$tool" >/dev/null || { echo "bench/proxy.sh: needs $tool" >&2; exit 1; }
done
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || { echo "bench/proxy.sh: needs dnsmasq (apt-get install dnsmasq-base)" >&2; exit 1; }

cargo build --quiet --release --target x86_64-unknown-linux-musl --bin shim
cargo build --quiet --release --example dns_responder
SHIM=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/shim
RESPONDER=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/examples/dns_responder

LOAD=$(cut -d' ' -f1 /proc/loadavg)
WORK=$(mktemp -d)
NS=shim-proxy-bench-$$
PIDS=()
SHIMS=()
cleanup() {
	set +e
	# shim first: it forwards SIGTERM to its app and exits with it, which ends its PID namespace
	# and its unshare (unshare itself ignores SIGTERM while it waits).
	for pid in "${SHIMS[@]}"; do kill "$pid" 2>/dev/null; done
	sleep 0.2
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench/proxy.sh: failed at line $LINENO" >&2' ERR

gcc -O2 -o "$WORK/dns_latency" bench/dns_latency.c

ip netns add "$NS"
nsexec() { ip netns exec "$NS" "$@"; }
nsexec ip link set lo up
nsexec ip link add veth0 type veth peer name veth1
# An IPv4 address too: with none but loopback's, getaddrinfo (AI_ADDRCONFIG) turns dnsperf's
# "-s 127.0.0.153" into ::ffff:127.0.0.153, where it sends nothing.
nsexec ip addr add 192.0.2.1/24 dev veth0
nsexec ip -6 addr add 2001:db8::1/64 dev veth0 nodad
nsexec ip -6 addr add 2001:db8::53/64 dev veth0 nodad
nsexec ip link set veth1 up
nsexec ip link set veth0 up

UPSTREAM=2001:db8::53
DNSMASQ_AT=127.0.0.2        # forwarding to the upstream, no cache
CACHED_AT=127.0.0.4         # the same with dnsmasq's default cache
BOTH_AT=127.0.0.3           # asking 127.0.0.11 and the upstream (--all-servers), no cache
PROXY_AT=127.0.0.153

# start_bg NAME COMMAND...: run COMMAND in the namespace, in the background; its pid in $BG.
start_bg() {
	local name=$1
	shift
	# ip netns exec execs COMMAND: $! is its pid.
	ip netns exec "$NS" "$@" >"$WORK/$name.out" 2>&1 &
	BG=$!
	PIDS+=("$BG")
}

# stop_bg PID: end one process this script started.
stop_bg() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# The responders: the upstream, and 127.0.0.11 as BEHAVIOUR.
start_responders() {
	start_bg "responder-$1" "$RESPONDER" "zone@[$UPSTREAM]:53" "$1@127.0.0.11:53"
	RESPONDER_PID=$BG
	for _ in $(seq 100); do grep -q ready "$WORK/responder-$1.out" && return; sleep 0.05; done
	echo "bench/proxy.sh: the responder did not start" >&2
	exit 1
}

start_dnsmasq() { # ADDRESS CACHE_SIZE [OPTION...]: its pid in $BG
	local address=$1 cache=$2
	shift 2
	start_bg "dnsmasq-$address" "$DNSMASQ" --keep-in-foreground --log-facility=- \
		--no-resolv --no-hosts --no-poll --user=root --pid-file= \
		--listen-address="$address" --bind-interfaces --port=53 \
		--cache-size="$cache" "${@:---server=$UPSTREAM}"
	for _ in $(seq 100); do grep -q started "$WORK/dnsmasq-$address.out" && return; sleep 0.05; done
	echo "bench/proxy.sh: dnsmasq did not start" >&2
	exit 1
}

printf 'nameserver 127.0.0.11\nnameserver %s\noptions ndots:0\n' "$UPSTREAM" >"$WORK/docker25"

# start_shim EMBEDDED: shim as PID 1 of a new PID namespace in the network namespace, with the
# Docker 25 file bind-mounted on /etc/resolv.conf (in the mount namespace `ip netns exec` makes),
# `--embedded EMBEDDED -- sleep`. Its pid (seen from here) in $SHIM_PID.
start_shim() {
	cp "$WORK/docker25" "$WORK/resolv-$1"
	# --kill-child: when this script ends unshare, shim (PID 1) goes, and its namespace with it.
	start_bg "shim-$1" unshare --pid --fork --kill-child --mount-proc bash -c \
		'mount --bind "$1" /etc/resolv.conf && exec "$2" --embedded "$3" -- sleep 100000' \
		- "$WORK/resolv-$1" "$SHIM" "$1"
	local unshare=$BG
	SHIM_PID=
	for _ in $(seq 100); do
		SHIM_PID=$(cat /proc/"$unshare"/task/*/children 2>/dev/null | awk '{print $1}')
		if [ -n "$SHIM_PID" ] && [ "$(cat /proc/"$SHIM_PID"/comm 2>/dev/null)" = shim ] &&
			[ -n "$(cat /proc/"$SHIM_PID"/task/*/children 2>/dev/null)" ]; then
			SHIMS+=("$SHIM_PID")
			sleep 0.2
			return
		fi
		sleep 0.05
	done
	echo "bench/proxy.sh: shim did not start; it said:" >&2
	cat "$WORK/shim-$1.out" >&2
	exit 1
}

rss() { awk '/^VmRSS/ { print $2 }' /proc/"$1"/status; }
# "anon+file" kB: the heap, stacks and buffers; the pages of the binary.
split_rss() { awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { print a "+" f }' /proc/"$1"/status; }
hwm() { awk '/^VmHWM/ { print $2 }' /proc/"$1"/status; }
# Context switches of every thread of PID, voluntary and not.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
wakeups() { # PID: switches over IDLE seconds with no query
	local before after
	before=$(switches "$1")
	sleep "$IDLE"
	after=$(switches "$1")
	echo $((after - before))
}

# latency SERVER NAME TYPE: one round of N/ROUNDS queries, "median p99" in microseconds appended
# to $WORK/lat-SERVER.
ROUNDS=5
latency_round() {
	local out
	out=$(nsexec "$WORK/dns_latency" "$1" 53 "$2" "$3" "$((N / ROUNDS))")
	read -r median p99 _min _max lost <<<"$out"
	[ "$lost" = 0 ] || echo "bench/proxy.sh: $1: $lost queries lost" >&2
	echo "$median $p99" >>"$WORK/lat-$1"
}
# median: the middle one of the numbers on stdin, one a line (the upper middle of an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }

# latencies NAME TYPE SERVER...: the servers in turns (other work on the machine then weighs on
# each alike); per server, "median p99": the median over the rounds of each.
latencies() {
	local name=$1 type=$2 server
	shift 2
	for server in "$@"; do rm -f "$WORK/lat-$server"; done
	for _ in $(seq "$ROUNDS"); do
		for server in "$@"; do latency_round "$server" "$name" "$type"; done
	done
	for server in "$@"; do
		echo "$(cut -d' ' -f1 "$WORK/lat-$server" | median)" "$(cut -d' ' -f2 "$WORK/lat-$server" | median)"
	done
}

# qps SERVER QUERYFILE: queries per second answered by SERVER under dnsperf, and lost queries.
qps() {
	nsexec dnsperf -s "$1" -p 53 -d "$2" -l "$DURATION" -c 1 -q 100 -t 2 >"$WORK/dnsperf.out" 2>&1 || true
	local q lost
	q=$(awk '/Queries per second:/ { printf "%d", $4 }' "$WORK/dnsperf.out")
	lost=$(awk '/Queries lost:/ { print $3 }' "$WORK/dnsperf.out")
	echo "${q:-0} ${lost:-?}"
}

# cpu_per_query SERVER PID QUERYFILE: CPU time of process PID (all its threads, user and system)
# per query answered while dnsperf sends RATE queries/s for DURATION s: what a query costs a
# server that is not saturated (queries/s measures the saturated rate, where the machine's other
# work weighs in).
RATE=${RATE:-20000}
cpu_per_query() {
	local before after answered
	before=$(awk '{ print $14 + $15 }' /proc/"$2"/stat)
	answered=$(nsexec dnsperf -s "$1" -p 53 -d "$3" -l "$DURATION" -c 1 -q 100 -Q "$RATE" -t 2 2>&1 |
		awk '/Queries completed:/ { print $3 }')
	after=$(awk '{ print $14 + $15 }' /proc/"$2"/stat)
	awk -v t=$((after - before)) -v q="${answered:-0}" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { if (q > 0) printf "%.1f", t / hz * 1e6 / q; else print "n/a" }'
}

# rates QUERYFILE SERVER...: QROUNDS rounds of `qps`, the servers in turns (other work on the
# machine then weighs on each alike); per server "queries/s lost": the median rate over the
# rounds, the lost queries of all of them.
QROUNDS=${QROUNDS:-3}
rates() {
	local file=$1 server
	shift
	for server in "$@"; do rm -f "$WORK/qps-$server"; done
	for _ in $(seq "$QROUNDS"); do
		for server in "$@"; do qps "$server" "$file" >>"$WORK/qps-$server"; done
	done
	for server in "$@"; do
		echo "$(cut -d' ' -f1 "$WORK/qps-$server" | median)" \
			"$(awk '{ s += $2 } END { print s }' "$WORK/qps-$server")"
	done
}

# cpus SERVER:PID...: QROUNDS rounds of `cpu_per_query` on the outside name, the servers in
# turns; per server the median.
cpus() {
	local pair round
	for pair in "$@"; do rm -f "$WORK/cpu-${pair%%:*}"; done
	for round in $(seq "$QROUNDS"); do
		for pair in "$@"; do
			cpu_per_query "${pair%%:*}" "${pair##*:}" "$WORK/outside.q" >>"$WORK/cpu-${pair%%:*}"
			echo >>"$WORK/cpu-${pair%%:*}"
		done
	done
	for pair in "$@"; do
		median <"$WORK/cpu-${pair%%:*}"
	done
}

printf 'v6only.test AAAA\n' >"$WORK/outside.q"
printf 'dual.test A\n' >"$WORK/names.q"

# --- shim without the proxy: the reference for memory and wake-ups.
start_shim drop
DROP_PID=$SHIM_PID
drop_rss=$(rss "$DROP_PID")
drop_split=$(split_rss "$DROP_PID")
drop_wakeups=$(wakeups "$DROP_PID")
echo "shim --embedded drop: RSS $drop_rss kB, $drop_wakeups wake-ups in ${IDLE}s" >&2

# --- The outside-name path: 127.0.0.11 silent (Docker <= 25 on an IPv6-only host).
start_responders silent
start_dnsmasq "$DNSMASQ_AT" 0
DNSMASQ_PID=$BG
start_dnsmasq "$CACHED_AT" 150
# dnsmasq asking both servers, as the proxy does: --all-servers, 127.0.0.11 and the upstream.
start_dnsmasq "$BOTH_AT" 0 --all-servers --server=127.0.0.11 --server="$UPSTREAM"
BOTH_PID=$BG
start_shim proxy
PROXY_PID=$SHIM_PID
proxy_rss_idle=$(rss "$PROXY_PID")
proxy_split_idle=$(split_rss "$PROXY_PID")
proxy_wakeups=$(wakeups "$PROXY_PID")
echo "shim --embedded proxy, idle: RSS $proxy_rss_idle kB, $proxy_wakeups wake-ups in ${IDLE}s" >&2
nsexec "$WORK/dns_latency" "$PROXY_AT" 53 v6only.test AAAA 10 >/dev/null

SERVERS=("$UPSTREAM" "$DNSMASQ_AT" "$CACHED_AT" "$BOTH_AT" "$PROXY_AT")
latencies v6only.test AAAA "${SERVERS[@]}" >"$WORK/lat"
{
	read -r direct_med direct_p99; read -r dnsmasq_med dnsmasq_p99; read -r cached_med cached_p99
	read -r both_med both_p99; read -r proxy_med proxy_p99
} <"$WORK/lat"
echo "latency (us, median/p99): direct $direct_med/$direct_p99, dnsmasq $dnsmasq_med/$dnsmasq_p99, proxy $proxy_med/$proxy_p99" >&2

# Under load: the proxy's RSS sampled near the end of a dnsperf run, and its peak over the run:
# VmHWM is reset to the current RSS first (clear_refs 5), or it would be the peak of shim's
# start-up, before it dropped its start-up pages.
echo 5 >/proc/"$PROXY_PID"/clear_refs
( sleep "$((DURATION - 1))"; rss "$PROXY_PID" >"$WORK/rss-load"; split_rss "$PROXY_PID" >"$WORK/split-load" ) &
sampler=$!
qps "$PROXY_AT" "$WORK/outside.q" >/dev/null
wait "$sampler"

rates "$WORK/outside.q" "${SERVERS[@]}" >"$WORK/rates"
{
	read -r direct_qps direct_lost; read -r dnsmasq_qps dnsmasq_lost; read -r cached_qps cached_lost
	read -r both_qps both_lost; read -r proxy_qps proxy_lost
} <"$WORK/rates"
proxy_rss_load=$(cat "$WORK/rss-load")
proxy_split_load=$(cat "$WORK/split-load")
# VmHWM is brought up to date only now and then: the peak is the larger of it and the sample.
proxy_hwm=$(hwm "$PROXY_PID")
proxy_hwm=$((proxy_hwm > proxy_rss_load ? proxy_hwm : proxy_rss_load))
proxy_wakeups_after=$(wakeups "$PROXY_PID")
echo "qps: direct $direct_qps ($direct_lost lost), dnsmasq $dnsmasq_qps ($dnsmasq_lost lost), both $both_qps, proxy $proxy_qps ($proxy_lost lost); proxy RSS under load $proxy_rss_load kB, peak $proxy_hwm kB" >&2

cpus "$DNSMASQ_AT:$DNSMASQ_PID" "$BOTH_AT:$BOTH_PID" "$PROXY_AT:$PROXY_PID" >"$WORK/cpus"
{ read -r dnsmasq_cpu; read -r both_cpu; read -r proxy_cpu; } <"$WORK/cpus"
echo "CPU per query at $RATE/s (us): dnsmasq $dnsmasq_cpu, both $both_cpu, proxy $proxy_cpu" >&2
stop_bg "$RESPONDER_PID"

# --- The names path: 127.0.0.11 answers (a container name); the same proxy, new responders.
start_responders zone
latencies dual.test A 127.0.0.11 "$PROXY_AT" >"$WORK/lat"
{ read -r ndirect_med ndirect_p99; read -r nproxy_med nproxy_p99; } <"$WORK/lat"
rates "$WORK/names.q" 127.0.0.11 "$PROXY_AT" >"$WORK/rates"
{ read -r ndirect_qps ndirect_lost; read -r nproxy_qps nproxy_lost; } <"$WORK/rates"
echo "names path: latency direct $ndirect_med/$ndirect_p99, proxy $nproxy_med/$nproxy_p99; qps direct $ndirect_qps, proxy $nproxy_qps ($nproxy_lost lost)" >&2
stop_bg "$RESPONDER_PID"

# Profile the proxy under load when perf is there (a hint for where its time goes).
perf_top=
if command -v perf >/dev/null && [ "${PERF:-1}" = 1 ]; then
	start_responders silent
	ip netns exec "$NS" dnsperf -s "$PROXY_AT" -p 53 -d "$WORK/outside.q" -l "$DURATION" -c 1 -q 100 -t 2 >/dev/null 2>&1 &
	PIDS+=("$!")
	sleep 1
	if perf record -q -g -t "$(ls /proc/"$PROXY_PID"/task | sort -n | sed -n 2p)" -o "$WORK/perf.data" -- sleep 2 >/dev/null 2>&1; then
		{
			echo "user space and kernel:"
			perf report -i "$WORK/perf.data" --no-children --stdio --sort dso 2>/dev/null |
				awk '/^ +[0-9.]+%/ { print }' | head -3
			echo "system calls (time spent in each, children included):"
			perf report -i "$WORK/perf.data" --children --stdio --sort sym -g none 2>/dev/null |
				awk '/^ +[0-9.]+%/ && /__x64_sys_/ { print $1, $NF }' | head -10
		} >"$WORK/perf.top" || true
		perf_top=$(cat "$WORK/perf.top")
	fi
	wait "${PIDS[-1]}" 2>/dev/null || true
	stop_bg "$RESPONDER_PID"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
goal() { [ "$1" = 1 ] && echo met || echo MISSED; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? 1 : 0 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }

size=$(stat -c %s "$SHIM")
section=$WORK/section.md
{
	echo "## DNS proxy"
	echo
	echo "Measured by \`bench/proxy.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), load average $LOAD at the start),"
	echo "kernel $(uname -r), dnsmasq $("$DNSMASQ" --version | awk 'NR == 1 { print $3 }'), dnsperf $(dpkg-query -W -f '${Version}' dnsperf 2>/dev/null || echo unknown);"
	echo "shim: the static musl release binary ($size bytes). In a network namespace (lo, a veth pair, one end"
	echo "with 2001:db8::1 and 2001:db8::53, nothing else): the upstream is \`examples/dns_responder\` (\`zone\`) on"
	echo "[2001:db8::53]:53; Docker's embedded resolver is a stand-in on 127.0.0.11:53, \`silent\` for the"
	echo "outside-name path (Docker <= 25 on an IPv6-only host: the upstream answers) and \`zone\` for the"
	echo "names path (127.0.0.11 answers, as for a container name); three dnsmasq run side by side: forwarding"
	echo "to the upstream only from $DNSMASQ_AT, the same with its default cache from $CACHED_AT, and asking"
	echo "127.0.0.11 and the upstream from $BOTH_AT; shim is PID 1 of a PID namespace, \`--embedded proxy -- sleep\`,"
	echo "its /etc/resolv.conf a bind-mounted Docker 25 file, so it serves on 127.0.0.153. Latency: $N sequential"
	echo "UDP queries (\`bench/dns_latency.c\`, send to matching answer) in $ROUNDS rounds, the servers in turns;"
	echo "median and p99 are the medians over the rounds; queries per second: dnsperf, 100 outstanding,"
	echo "${DURATION} s, $QROUNDS rounds with the servers in turns, the median (lost: all rounds); server CPU per"
	echo "query: user + system time of the server's process while dnsperf sends $RATE queries/s for ${DURATION} s,"
	echo "divided by the queries answered, median of $QROUNDS rounds in turns; RSS: VmRSS (under load: sampled"
	echo "near the end of a dnsperf run of its own; peak: VmHWM over that run, reset before it); wake-ups:"
	echo "context switches of all of shim's threads over ${IDLE} s with no query."
	echo
	echo "Outside name (\`v6only.test AAAA\`, 127.0.0.11 silent):"
	echo
	echo "| path | median µs | p99 µs | added median µs | queries/s | lost | server CPU µs per query at $RATE/s |"
	echo "|---|---|---|---|---|---|---|"
	echo "| (a) upstream directly | $direct_med | $direct_p99 | | $direct_qps | $direct_lost | |"
	echo "| (b) dnsmasq, no cache | $dnsmasq_med | $dnsmasq_p99 | $(added "$dnsmasq_med" "$direct_med") | $dnsmasq_qps | $dnsmasq_lost | $dnsmasq_cpu |"
	echo "| (b') dnsmasq, default cache (answers from memory) | $cached_med | $cached_p99 | $(added "$cached_med" "$direct_med") | $cached_qps | $cached_lost | |"
	echo "| (b'') dnsmasq, no cache, \`--all-servers\` 127.0.0.11 and the upstream (asks both, as the proxy; takes the first answer, so musl's race for container names stays) | $both_med | $both_p99 | $(added "$both_med" "$direct_med") | $both_qps | $both_lost | $both_cpu |"
	echo "| (c) shim's proxy | $proxy_med | $proxy_p99 | $(added "$proxy_med" "$direct_med") | $proxy_qps | $proxy_lost | $proxy_cpu |"
	echo
	echo "Names path (\`dual.test A\`, 127.0.0.11 answers):"
	echo
	echo "| path | median µs | p99 µs | added median µs | queries/s | lost |"
	echo "|---|---|---|---|---|---|"
	echo "| 127.0.0.11 directly | $ndirect_med | $ndirect_p99 | | $ndirect_qps | $ndirect_lost |"
	echo "| shim's proxy | $nproxy_med | $nproxy_p99 | $(added "$nproxy_med" "$ndirect_med") | $nproxy_qps | $nproxy_lost |"
	echo
	echo "shim's memory and wake-ups:"
	echo
	echo "| shim | VmRSS kB | of which anon + file kB | wake-ups in ${IDLE} s idle |"
	echo "|---|---|---|---|"
	echo "| \`--embedded drop\` (no proxy) | $drop_rss | $drop_split | $drop_wakeups |"
	echo "| \`--embedded proxy\`, idle | $proxy_rss_idle | $proxy_split_idle | $proxy_wakeups |"
	echo "| \`--embedded proxy\`, under load (end of the dnsperf run / peak VmHWM) | $proxy_rss_load / $proxy_hwm | $proxy_split_load | $proxy_wakeups_after (idle again after the load) |"
	echo
	echo "Ratios: proxy against dnsmasq (no cache): added median latency $(ratio "$(added "$proxy_med" "$direct_med")" "$(added "$dnsmasq_med" "$direct_med")")x, queries/s $(ratio "$proxy_qps" "$dnsmasq_qps")x"
	echo "($(ratio "$proxy_qps" "$both_qps")x against dnsmasq asking both servers); CPU per query at $RATE/s $(ratio "$proxy_cpu" "$dnsmasq_cpu")x dnsmasq's"
	echo "($(ratio "$proxy_cpu" "$both_cpu")x against dnsmasq asking both servers);"
	echo "against the upstream directly: median $(ratio "$proxy_med" "$direct_med")x, queries/s $(ratio "$proxy_qps" "$direct_qps")x."
	echo
	echo "Goals (issue 12):"
	echo
	echo "| goal | measured | |"
	echo "|---|---|---|"
	echo "| added median latency under 100 µs | $(added "$proxy_med" "$direct_med") µs (names path $(added "$nproxy_med" "$ndirect_med") µs) | $(goal "$(( $(lt "$(added "$proxy_med" "$direct_med")" 100) * $(lt "$(added "$nproxy_med" "$ndirect_med")" 100) ))") |"
	echo "| throughput at least dnsmasq's | $proxy_qps against $dnsmasq_qps queries/s | $(goal "$(ge "$proxy_qps" "$dnsmasq_qps")") |"
	echo "| RSS at most 300 kB more than without the proxy | +$((proxy_rss_idle - drop_rss)) kB idle, +$((proxy_rss_load - drop_rss)) kB under load, +$((proxy_hwm - drop_rss)) kB peak | $(goal "$(le "$((proxy_hwm - drop_rss))" 300)") |"
	echo "| zero wake-ups while idle | $proxy_wakeups | $(goal "$([ "$proxy_wakeups" = 0 ] && echo 1)") |"
	if [ -n "$perf_top" ]; then
		echo
		echo "Where the proxy thread's time goes under load (\`perf record -g\` on its thread, 2 s of dnsperf):"
		echo
		echo '```'
		echo "$perf_top"
		echo '```'
	fi
} >"$section"
cat "$section"

# Replace the DNS proxy section of BENCHMARKS.md (from "## DNS proxy" to the next "## "), or append it.
bench=$ROOT/BENCHMARKS.md
[ -f "$bench" ] || printf '# Benchmarks\n\n' >"$bench"
awk -v section="$section" '
	function emit() { while ((getline line < section) > 0) print line; print ""; done = 1 }
	/^## DNS proxy[[:space:]]*$/ { skipping = 1; emit(); next }
	skipping && /^## / { skipping = 0 }
	!skipping { print }
	END { if (!done) { print ""; emit() } }
' "$bench" | cat -s >"$WORK/bench.md"
cp "$WORK/bench.md" "$bench"
echo "bench/proxy.sh: wrote the DNS proxy section of $bench" >&2
