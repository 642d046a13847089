#!/usr/bin/env bash
# provide.sh [KEYS]: providing at scale in the DHT simulation (1000 nodes,
# 25 ms one-way latency, simulated time): KEYS (default 1 000 000) keys
# from one node, then from four. Prints the figure line of each run:
# keys/s and the time against the 22 h reprovide interval, messages per
# key (lookups + ADD_PROVIDER), one Provide per key on a sample and the
# ratio, the share of sampled keys found, then after 20% of the nodes die
# and a 22 h reprovide sweep. Takes some minutes of CPU per run.
set -eu
cd "$(dirname "$0")/../../dht"
SHARE_SIM_PROVIDE=${1:-1000000} go test -count=1 -timeout 2h -run 'TestProvideAtScale' -v . |
  grep -o 'provide-sim: .*'
