#!/usr/bin/env bash
# cpu.sh: start the two daemons as netcmp does, then one cat with per-process CPU seconds.
set -eu
BIN=${BIN:-/tmp/share}; P=/tmp/nc-prov; G=/tmp/nc-get
CID=$(SHARE_PATH=$P $BIN add -Q --pin=true ${F:-/tmp/big1g})
SHARE_PATH=$P $BIN daemon > /tmp/nc-prov.log 2>&1 &
SHARE_PATH=$G $BIN daemon > /tmp/nc-get.log 2>&1 &
for i in $(seq 50); do grep -q 'daemon ready' /tmp/nc-prov.log && grep -q 'daemon ready' /tmp/nc-get.log && break; sleep 0.1; done
ADDR=$(grep -m1 'listening on' /tmp/nc-prov.log | awk '{print $3}')
SHARE_PATH=$G $BIN connect $ADDR >/dev/null
pp=$(pgrep -f "$BIN daemon" | head -1); pg=$(pgrep -f "$BIN daemon" | tail -1)
cpu() { awk '{print ($14+$15)/100, $14/100, $15/100}' /proc/$1/stat; }
SHARE_PATH=$G $BIN gc >/dev/null; rm -f /tmp/nc-out; sync
a=$(cpu $pp); b=$(cpu $pg)
s0=$(head -1 /proc/stat); t0=$(date +%s.%N); SHARE_PATH=$G /usr/bin/time -f "cli %U user %S sys" $BIN ${MODE:-cat} $CID ${ARGS:-} > /dev/null; t1=$(date +%s.%N)
s1=$(head -1 /proc/stat); python3 -c "import sys; a=[int(x) for x in sys.argv[1].split()[1:8]]; b=[int(x) for x in sys.argv[2].split()[1:8]]; d=[(y-x)/100 for x,y in zip(a,b)]; print(\"system cpu-s: user %.2f nice %.2f sys %.2f idle %.2f iowait %.2f irq %.2f softirq %.2f\" % tuple(d))" "$s0" "$s1"
echo "wall $(echo "$t1 - $t0" | bc)"
echo "provider cpu before/after (tot usr sys): $a / $(cpu $pp)"
echo "getter   cpu before/after (tot usr sys): $b / $(cpu $pg)"
pkill -INT -f "$BIN daemon"; wait
