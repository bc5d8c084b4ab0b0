#!/usr/bin/env bash
# Builds every binary the benchmark runs — switchyard, the grpc-go peers
# (grpcteams, grpcref, grpc-go's route_guide example from its module),
# loadgen, benchrun and syprof — statically (CGO_ENABLED=0), into one
# directory, with multicore.sh and device.sh beside them. `make bench` runs
# benchrun from it; `make bench-bundle` packs it for a machine with nothing
# installed. (Switchyard's store is pure Go, so the static build serves
# calls exactly as the default one does.) The binaries carry no symbol
# table or DWARF (-s -w): neither is loaded into memory, so RSS and CPU
# are those of a default build (BENCHMARKS.md, "Measuring with more
# cores"), and the packed bundle is 37 MiB rather than 62, which a lent
# machine's 64 MiB of carried files can take.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bench/bundle.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
export CGO_ENABLED=0
flags=(-trimpath -ldflags=-s\ -w)
(cd "$root" && go build "${flags[@]}" -o "$out/switchyard" ./cmd/switchyard)
cd "$root/bench"
go build "${flags[@]}" -o "$out/" ./cmd/benchrun ./cmd/loadgen ./cmd/grpcteams ./cmd/grpcref ./cmd/syprof
# grpc-go's own example server, built from its module (bench/go.mod's
# tool line pins it), never copied.
go build "${flags[@]}" -o "$out/routeguide-example" google.golang.org/grpc/examples/route_guide/server
cp "$root/bench/multicore.sh" "$root/bench/device.sh" "$out/"
# Write the binaries back to disk now, as a deployed binary's are: a page
# still dirty in the page cache cannot be dropped from it, and Switchyard
# drops the pages of its read-only data it does not read once serving
# (-executable-pages trim), so the first rows would measure a binary no
# deployment runs.
sync "$out"/*
