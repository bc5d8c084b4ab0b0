#!/usr/bin/env bash
# Builds every binary the benchmark runs — switchyard, the grpc-go peers
# (grpcteams, grpcref, grpc-go's route_guide example from its module),
# loadgen and benchrun — statically (CGO_ENABLED=0), into one directory,
# with multicore.sh beside them. `make bench` runs benchrun from it;
# `make bench-bundle` packs it for a machine with nothing installed.
# (Switchyard's store is pure Go, so the static build serves calls exactly
# as the default one does.)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bench/bundle.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
export CGO_ENABLED=0
(cd "$root" && go build -trimpath -o "$out/switchyard" ./cmd/switchyard)
cd "$root/bench"
go build -trimpath -o "$out/" ./cmd/benchrun ./cmd/loadgen ./cmd/grpcteams ./cmd/grpcref
# grpc-go's own example server, built from its module (bench/go.mod's
# tool line pins it), never copied.
go build -trimpath -o "$out/routeguide-example" google.golang.org/grpc/examples/route_guide/server
cp "$root/bench/multicore.sh" "$out/"
# Write the binaries back to disk now, as a deployed binary's are: a page
# still dirty in the page cache cannot be dropped from it, and Switchyard
# drops the pages of its read-only data it does not read once serving
# (-executable-pages trim), so the first rows would measure a binary no
# deployment runs.
sync "$out"/*
