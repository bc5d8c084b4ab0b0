#!/usr/bin/env bash
# CPU profile of Switchyard under one workload: bench/profile.sh getteam 64 cpu.pprof
# (needs .tmp/bench from `make bench` plus: cd bench && go build -o ../.tmp/bench/ ./cmd/syprof)
set -euo pipefail
P=$((50000 + RANDOM % 10000))
taskset -c 0 .tmp/bench/syprof -addr 127.0.0.1:$P -cpuprofile "$3" -after 1s -seconds 4s >/dev/null 2>&1 &
SP=$!
sleep 0.3
taskset -c 1 .tmp/bench/loadgen -addr 127.0.0.1:$P -workload "$1" -c "$2" -n 100 -seed $RANDOM -warmup 300ms -d 5s >/dev/null 2>&1 || true
wait $SP
go tool pprof -top -cum "$3" | head -40
