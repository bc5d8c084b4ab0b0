#!/usr/bin/env bash
# The one prepared command for a many-core machine lent for minutes (this
# workplace's `device` tool: 15 minutes in all, its start included, and
# 10 a command), where multicore.sh's full rows take about half an hour.
# Run from the directory `make bench-bundle` made (static binaries,
# nothing installed there); BENCHMARKS.md, "Measuring with more cores",
# has the call. In order, each step only if what it should take fits what
# is left of BUDGET seconds (the log names each step skipped):
#
#   1. the machine: kernel, CPUs, hyperthread siblings, load, and whether
#      pinning holds (two spinning processes pinned to one CPU must share
#      it; a sandbox that ignores affinity makes every row meaningless);
#   2. the scaling table's rows (ROWS) at each server core count (COUNTS,
#      largest first), ROUNDS interleaved rounds of WARMUP + D seconds,
#      one benchrun per count;
#   3. Switchyard (bench/cmd/syprof: the server as the binary serves it,
#      on the in-memory store) at the largest count that fits, under the
#      GetFeature and the GetTeam loads: a CPU profile with the runtime's
#      /sched and /sync metrics, then mutex and blocking profiles (every
#      event; a run of their own, as they slow what they watch).
#
# Everything lands in $OUT as soon as it is made, in four files (the tool
# returns at most eight): log.txt (all output), machine.txt, scaling.md
# (each count's tables, appended) and profiles.tar.gz (rewritten after
# each profile), so a command stopped at its limit still returns what it
# made. Extra arguments go to every benchrun.
set -uo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-$(pwd)/device-out}
BUDGET=${BUDGET:-450}
COUNTS=${COUNTS:-8 4 2 1}
ROWS=${ROWS:-getteam,legacygetteam,getfeature,listfeatures,recordroute,routechat}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-0.5}
D=${D:-1.5}
PROFILE_S=${PROFILE_S:-3}
PROFILES=${PROFILES:-getfeature getteam}
mkdir -p "$OUT"
start=$SECONDS
work= pids=()

# cleanup stops what main started and removes its work directory.
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -n "$work" ] && rm -rf "$work"
}

# fits NAME SECONDS: whether a step of about SECONDS fits what is left.
fits() {
	local left=$((BUDGET - (SECONDS - start)))
	if awk -v need="$2" -v left="$left" 'BEGIN { exit !(need <= left) }'; then
		return 0
	fi
	echo "== $1: skipped, it needs about $2 s and $left s of the budget ($BUDGET s) are left"
	return 1
}

# cputicks PID: the process's user + system time in clock ticks.
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

machine() {
	echo "== machine"
	echo "kernel: $(uname -srm) ($(uname -v))"
	echo "CPUs allowed: $(nproc) ($(grep -m1 Cpus_allowed_list /proc/self/status | cut -f2)); model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "CPU 0's hyperthread siblings: $(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null || echo unknown)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	# Two spinners pinned to the first CPU for 2 s: with pinning they
	# share it (about 2 CPU-seconds together), without it each has its own.
	local first hz a b t0 t1
	read -r _ first _ < <(./benchrun -layout -cores 1)
	hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
	./benchrun -pin "$first" -- /bin/sh -c 'while :; do :; done' &
	a=$!
	./benchrun -pin "$first" -- /bin/sh -c 'while :; do :; done' &
	b=$!
	pids+=("$a" "$b")
	sleep 0.2
	t0=$(($(cputicks "$a") + $(cputicks "$b")))
	sleep 2
	t1=$(($(cputicks "$a") + $(cputicks "$b")))
	kill "$a" "$b"
	wait "$a" "$b" 2>/dev/null
	awk -v t=$((t1 - t0)) -v hz="$hz" -v cpu="$first" 'BEGIN {
		s = t / hz
		printf "pinning: two spinners pinned to CPU %s used %.2f CPU-seconds in 2 s: %s\n", cpu, s,
			s < 2.6 ? "held (they shared one CPU)" : "NOT held (each ran on a CPU of its own): the core counts below are not what they say"
	}'
}

rows() {
	local nrows n est
	nrows=$(echo "$ROWS" | tr ',' '\n' | grep -c .)
	for n in $COUNTS; do
		# Each row runs both its servers each round, plus about 0.6 s to
		# start a run and see the other servers quiet, plus starting them.
		est=$(awk -v r="$nrows" -v k="$ROUNDS" -v w="$WARMUP" -v d="$D" 'BEGIN { printf "%.0f", r * k * 2 * (w + d + 0.6) + 8 }')
		fits "$n server core(s)" "$est" || continue
		echo "== $n server core(s), about $est s"
		local t=$SECONDS
		./benchrun -bin . -cores "$n" -rounds "$ROUNDS" -warmup "${WARMUP}s" -d "${D}s" -only "$ROWS" -o "$work/scaling-$n.md" "$@"
		local rc=$?
		echo "== $n server core(s) took $((SECONDS - t)) s (benchrun exit status $rc)"
		[ -f "$work/scaling-$n.md" ] && cat "$work/scaling-$n.md" >>"$OUT/scaling.md"
	done
}

# profile WORKLOAD MODE N SERVER_CPUS LOAD_CPUS: syprof on the server CPUs
# with GOMAXPROCS=N, the load generator on the others, N connections of
# 64 calls in flight.
profile() {
	local w=$1 mode=$2 n=$3 server=$4 client=$5 flags out=$work/profiles
	mkdir -p "$out"
	case $mode in
	cpu) flags=(-cpuprofile "$out/cpu-$w-$n.pprof" -metrics "$out/metrics-$w-$n.txt") ;;
	lock) flags=(-cpuprofile "$work/discard.pprof" -mutexprofile "$out/mutex-$w-$n.pprof" -blockprofile "$out/block-$w-$n.pprof") ;;
	esac
	GOMAXPROCS=$n ./benchrun -pin "$server" -- ./syprof -addr 127.0.0.1:0 -after 1s -seconds "${PROFILE_S}s" -wait "${flags[@]}" \
		>"$work/addr" 2>>"$work/syprof.log" &
	local sp=$!
	pids+=("$sp")
	local addr="" i
	for i in $(seq 100); do
		addr=$(head -1 "$work/addr" 2>/dev/null)
		[ -n "$addr" ] && break
		sleep 0.05
	done
	if [ -z "$addr" ]; then
		echo "profile $w $mode: syprof did not start:"
		tail -5 "$work/syprof.log"
		kill "$sp" 2>/dev/null
		return
	fi
	# The load outlasts the span (1 s in, PROFILE_S long) by a second.
	./benchrun -pin "$client" -- ./loadgen -addr "$addr" -workload "$w" -conns "$n" -c 64 -n 100 -seed 1 \
		-warmup 500ms -d "$(awk -v p="$PROFILE_S" 'BEGIN { print p + 1.5 }')s" >"$out/loadgen-$w-$mode-$n.json"
	echo "profile $w $mode at $n server core(s): $(cat "$out/loadgen-$w-$mode-$n.json")"
	kill "$sp"
	wait "$sp" 2>/dev/null
	rm -f "$work/addr"
	tar -czf "$OUT/profiles.tar.gz.new" -C "$work" profiles && mv "$OUT/profiles.tar.gz.new" "$OUT/profiles.tar.gz"
}

# profiles runs profile at the largest count of COUNTS that fits, pinned as
# benchrun pins (benchrun -layout).
profiles() {
	local layout n server client w mode
	# shellcheck disable=SC2086 # COUNTS are words
	if ! layout=$(./benchrun -layout -cores "$(echo $COUNTS | tr ' ' ,)"); then
		echo "== profiles: skipped (above: why)"
		return
	fi
	read -r n server client <<<"$layout"
	for w in $PROFILES; do
		for mode in cpu lock; do
			fits "profile $w $mode at $n server core(s)" "$(awk -v p="$PROFILE_S" 'BEGIN { print p + 3 }')" || continue
			profile "$w" "$mode" "$n" "$server" "$client"
		done
	done
}

main() {
	trap cleanup EXIT
	work=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-device-XXXXXX") || exit
	echo "== device.sh: budget $BUDGET s; counts $COUNTS; rows $ROWS; $ROUNDS rounds of ${WARMUP} s + ${D} s; profiles ${PROFILE_S} s of $PROFILES"
	sync ./switchyard ./grpcteams ./grpcref ./routeguide-example ./loadgen ./benchrun ./syprof 2>/dev/null || sync
	machine >"$work/machine.txt"
	cat "$work/machine.txt"
	cp "$work/machine.txt" "$OUT/"
	rows "$@"
	profiles
	echo "== device.sh done in $((SECONDS - start)) s of $BUDGET; results in $OUT"
}
# A pipeline, not a redirection to a process substitution: the script ends
# only once tee has written the log's last line to $OUT.
main "$@" 2>&1 | tee "$OUT/log.txt"
