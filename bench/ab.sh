#!/usr/bin/env bash
# A/B one workload on one Switchyard binary (or the grpcteams peer), pinned like benchrun, printing
# one line: calls/s, msgs/s, p99, server CPU per call, RSS. Run after `make
# bench` has built .tmp/bench; compare binaries by alternating calls, e.g.
#   for i in 1 2 3; do bench/ab.sh getteam 64 ./old; bench/ab.sh getteam 64 .tmp/bench/switchyard; done
# The server gets a fresh temporary -data-dir (never the user's) and an
# admin token; the getteam workloads run the benchmark's mix (10% unknown
# cities, PutTeam at 1% of the reads from a writer process; MIX=0 for
# reads of known cities only). ARGS= passes further server flags; extra
# arguments are environment settings for the server (GOGC=400 ...). TLS=1
# serves over TLS (the write path differs there) with a certificate made
# for the run by openssl. PROTO=grpcweb or PROTO=connect makes the unary
# workloads' calls in that protocol (the writer stays on gRPC). CONNS=N
# spreads the calls over N connections (C in flight on each), as benchrun
# does at N server cores; with GOMAXPROCS=N among the extra arguments it
# approximates an N-core run's memory on one server CPU (BENCHMARKS.md,
# "Memory with more cores": the OS then runs N threads on one CPU, which
# inflates it). The RSS printed is followed by its anonymous part; the
# mix's PutTeam latency (the writer's) ends the line.
# SCPU and LCPU are the server's and the load generator's CPUs (0 and 1;
# SCPU=0,1 LCPU=0,1 gives both all of this machine's two). COPY=1 runs
# the server from a copy of B dropped from the page cache, as benchrun
# runs its servers (a binary just built or run sits in the page cache in
# large folios, and the pages mapped around each fault come with them).
set -euo pipefail
W=$1 C=$2 B=$3
shift 3
LG=${LOADGEN:-.tmp/bench/loadgen}
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-ab-XXXXXX")
trap 'rm -rf "$tmp"' EXIT # until the server starts (below)
echo ab-token >"$tmp/token"
data=(-data-dir "$tmp/data")
[[ $(basename "$B") == grpcteams ]] && data=() # the peer keeps its teams in a map
tls=() lgtls=()
if [[ ${TLS:-0} == 1 ]]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
	tls=(-tls-cert "$tmp/cert.pem" -tls-key "$tmp/key.pem")
	lgtls=(-tls -cacert "$tmp/cert.pem")
fi
if [[ ${COPY:-0} == 1 ]]; then
	cp "$B" "$tmp/$(basename "$B")"
	B=$tmp/$(basename "$B")
	sync "$B"
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$B"
fi
# shellcheck disable=SC2086 # ARGS are words
env "$@" taskset -c "${SCPU:-0}" "$B" -addr 127.0.0.1:$P "${data[@]}" "${tls[@]}" -admin-token-file "$tmp/token" ${ARGS:-} >/dev/null 2>&1 &
SP=$!
trap 'kill $SP 2>/dev/null || true; wait $SP 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null && break
	kill -0 $SP 2>/dev/null || { echo "ab.sh: $B exited at start" >&2; exit 1; }
	sleep 0.05
done
mix=()
if [[ $W == *getteam && ${MIX:-1} == 1 ]]; then
	mix=(-unknown 0.1 -write-share 0.01 -admin-token-file "$tmp/token")
fi
t0=$(awk '{print $14+$15}' /proc/$SP/stat)
R=$(taskset -c "${LCPU:-1}" "$LG" -addr 127.0.0.1:$P -workload "$W" -conns "${CONNS:-1}" -c "$C" -n 100 -seed $RANDOM -warmup 300ms -d "${D:-3s}" -protocol "${PROTO:-grpc}" "${mix[@]}" "${lgtls[@]}")
t1=$(awk '{print $14+$15}' /proc/$SP/stat)
rss=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
anon=$(awk '/RssAnon/{print $2}' /proc/$SP/status)
echo "$R" | python3 -c "import json,sys; r=json.load(sys.stdin); w=r.get('writer') or {}; print('%-12s %-30s %8.0f calls/s %9.0f msgs/s p99 %6.2f ms cpu %6.1f us/call rss %5.1f MiB (anon %4.1f) errors %d' % (r['workload'], '$B $*'[-30:], r['calls']/r['seconds'], r['msgs']/r['seconds'], r['p99_ms'], ($t1-$t0)*1e4/(r['calls_all']+w.get('writes_all',0)), $rss/1024, $anon/1024, r['errors']) + (' puts p50 %.2f p99 %.2f ms' % (w['p50_ms'], w['p99_ms']) if w else ''))"
