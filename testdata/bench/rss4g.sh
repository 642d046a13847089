#!/usr/bin/env bash
# rss4g.sh: peak RSS of provider and getter daemons over a 4 GiB get.
set -eu
. "$(dirname "$0")/common.sh"
BIN=${BIN:-/tmp/share}; P=/tmp/r4-prov; G=/tmp/r4-get
pkill -f "$BIN daemon" 2>/dev/null || true; sleep 0.3
rm -rf $P $G /tmp/r4-out
for d in $P $G; do init_repo $d; done
CID=$(SHARE_PATH=$P $BIN add -Q ${F:-/tmp/big4g})
sync
SHARE_PATH=$P /usr/bin/time -v -o /tmp/r4-prov.time $BIN daemon > /tmp/r4-prov.log 2>&1 &
SHARE_PATH=$G /usr/bin/time -v -o /tmp/r4-get.time $BIN daemon > /tmp/r4-get.log 2>&1 &
for i in $(seq 50); do grep -q 'daemon ready' /tmp/r4-prov.log && grep -q 'daemon ready' /tmp/r4-get.log && break; sleep 0.1; done
ADDR=$(grep -m1 'listening on' /tmp/r4-prov.log | awk '{print $3}')
SHARE_PATH=$G $BIN connect $ADDR >/dev/null
t0=$(date +%s.%N); SHARE_PATH=$G $BIN ${MODE:-get} $CID -o /tmp/r4-out >/dev/null 2>&1; t1=$(date +%s.%N)
echo "4 GiB ${MODE:-get} in $(echo "$t1 - $t0" | bc) s"
cmp /tmp/r4-out ${F:-/tmp/big4g} && echo identical
pkill -INT -f "$BIN daemon"; sleep 2
echo "provider $(grep 'Maximum resident' /tmp/r4-prov.time)"; echo "getter $(grep 'Maximum resident' /tmp/r4-get.time)"
rm -rf /tmp/r4-out $G
