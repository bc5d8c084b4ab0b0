#!/bin/sh
# Switchyard's benchmark at 1, 2, 4 and 8 server cores, in one step, on a
# Linux machine with nothing installed: run it from the directory
# `make bench-bundle` made (static binaries, no Go, no PostgreSQL needed;
# benchrun pins the processes itself). Core counts the machine cannot give
# are skipped, and said so; so is the PostgreSQL row without initdb.
# Extra arguments go to benchrun (e.g. -rounds 5, -only getteam,getfeature).
# With the default 3 rounds of 4 s, each core count takes about 8 minutes.
set -eu
cd "$(dirname "$0")"
# Unpacked moments ago, the binaries may still be dirty in the page cache;
# write them back as a deployed binary is (see bundle.sh).
sync ./switchyard ./grpcteams ./grpcref ./routeguide-example ./loadgen ./benchrun 2>/dev/null || sync
echo "== $(uname -srm); $(grep -c ^processor /proc/cpuinfo) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
./benchrun -bin . -cores 1,2,4,8 -o scaling.md "$@"
echo "== the tables above are also in $(pwd)/scaling.md"
