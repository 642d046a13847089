#!/usr/bin/env bash
# bench.sh: blockstore benchmarks, each quoted against the disk ceiling
# (write+fsync of 1 GiB) measured just before and after in the same run.
#   blockstore/bench.sh [GiB...]   (default: 1 4)
set -eu
cd "$(dirname "$0")"
bin=$(mktemp -d)/bs.test
go test -c -o "$bin" .
ceiling() { /work/shared/ceilings/run "${TMPDIR:-/tmp}" | head -1; }
ceiling
"$bin" -test.run '^$' -test.bench . -test.benchtime 1024x
ceiling
for g in "${@:-1 4}"; do
	BLOCKSTORE_MEASURE_GIB=$g "$bin" -test.run TestMeasureAdd -test.v | grep -v '^=== \|^---\|^PASS'
	ceiling
done
