#!/usr/bin/env bash
# A/B one workload on one server binary, pinned like benchrun, printing one
# line: calls/s, msgs/s, p99, server CPU per call, RSS. Run after `make bench`
# has built .tmp/bench; compare binaries by alternating calls, e.g.
#   for i in 1 2 3; do bench/ab.sh getteam 64 ./old; bench/ab.sh getteam 64 .tmp/bench/switchyard; done
# Extra arguments are environment settings for the server (GOGC=400 ...).
set -euo pipefail
W=$1 C=$2 B=$3
shift 3
LG=${LOADGEN:-.tmp/bench/loadgen}
P=$((50000 + RANDOM % 10000))
env "$@" taskset -c 0 "$B" -addr 127.0.0.1:$P >/dev/null 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
sleep 0.4
t0=$(awk '{print $14+$15}' /proc/$SP/stat)
R=$(taskset -c 1 "$LG" -addr 127.0.0.1:$P -workload "$W" -c "$C" -n 100 -seed $RANDOM -warmup 300ms -d "${D:-3s}")
t1=$(awk '{print $14+$15}' /proc/$SP/stat)
rss=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
echo "$R" | python3 -c "import json,sys; r=json.load(sys.stdin); print('%-12s %-30s %8.0f calls/s %9.0f msgs/s p99 %6.2f ms cpu %6.1f us/call rss %d MiB errors %d' % (r['workload'], '$B $*'[-30:], r['calls']/r['seconds'], r['msgs']/r['seconds'], r['p99_ms'], ($t1-$t0)*1e4/r['calls_all'], $rss/1024, r['errors']))"
