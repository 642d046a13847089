#!/usr/bin/env bash
# holepunch.sh: hole punching figures in the NAT lab (needs root, iproute2,
# nftables): punches that succeed out of N tries (default 20) with the
# endpoint-independent NAT of `nat up 1 2`, the time from the relayed
# connection to the direct one, and the throughput of a 256 MiB get across
# the two sites at --rate 100mbit after the punch. Each try is a fresh lab
# (TestNATHolePunch): relay on p1, s2h1 connects to s1h1 through it.
# Prints one line of figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-20}
log=$(mktemp); trap 'rm -f "$log"' EXIT
go test -c -o /tmp/share-holepunch.test ./cmd/share >/dev/null
ok=0
for ((i = 1; i <= N; i++)); do
  if (cd cmd/share && /tmp/share-holepunch.test -test.run 'TestNATHolePunch$' -test.v -test.count=1) >>"$log" 2>&1; then
    ok=$((ok + 1))
  fi
done
# "direct at ADDR after D (from the connect's return)"
times=$(grep -o 'after [0-9.]*m\?s (from' "$log" | awk '{print $2}' | sed 's/(from//' | tr '\n' ' ')
tput=$( (cd cmd/share && SHARE_HOLEPUNCH_MIB=256 SHARE_NAT_RATE=100mbit /tmp/share-holepunch.test -test.run 'TestNATHolePunch$' -test.v -test.count=1 2>&1) |
  grep -o 'get of 256 MiB: [0-9.]* Mbit/s' | awk '{print $5}')
echo "holepunch: $ok/$N direct; relayed->direct: $times; 256 MiB get at 100mbit after the punch: ${tput:-?} Mbit/s"
