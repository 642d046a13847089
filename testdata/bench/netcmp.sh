#!/usr/bin/env bash
# Run by hand (as root for swarm.sh), from a build: go build -o /tmp/share ./cmd/share
# Inputs: head -c $((1<<30)) /dev/urandom > /tmp/big1g (big4g, big256m alike);
# the raw TLS ceiling: (cd ../shared/ceilings && go build -o /tmp/ceilings-tlscopy .)
# netcmp.sh ROUNDS: raw TLS vs share cat/get (1 GiB) between two loopback daemons.
set -eu
. "$(dirname "$0")/common.sh"
R=${1:-3}; BIN=${BIN:-/tmp/share}; F=${F:-/tmp/big1g}
P=/tmp/nc-prov; G=/tmp/nc-get
pkill -f "$BIN daemon" 2>/dev/null || true; sleep 0.3
rm -rf $P $G
for d in $P $G; do init_repo $d; done
CID=$(SHARE_PATH=$P $BIN add -Q $F)
SHARE_PATH=$P $BIN daemon > /tmp/nc-prov.log 2>&1 &
SHARE_PATH=$G /usr/bin/time -v -o /tmp/nc-get.time $BIN daemon > /tmp/nc-get.log 2>&1 &
for i in $(seq 50); do grep -q 'daemon ready' /tmp/nc-prov.log /dev/null 2>/dev/null && grep -q 'daemon ready' /tmp/nc-get.log && break; sleep 0.1; done
ADDR=$(grep -m1 'listening on' /tmp/nc-prov.log | awk '{print $3}')
SHARE_PATH=$G $BIN connect $ADDR >/dev/null
rate() { python3 -c "import sys; print(f'{(1<<30)/1e6/(float(sys.argv[2])-float(sys.argv[1])):.0f}')" $1 $2; }
rows=$(mktemp)
for r in $(seq $R); do
  tls=$(${TLSCOPY:-/tmp/ceilings-tlscopy} $((1<<30)))
  SHARE_PATH=$G $BIN gc >/dev/null; sync
  t0=$(date +%s.%N); SHARE_PATH=$G $BIN cat $CID > /dev/null; t1=$(date +%s.%N)
  SHARE_PATH=$G $BIN gc >/dev/null; rm -f /tmp/nc-out; sync
  t2=$(date +%s.%N); SHARE_PATH=$G $BIN get $CID -o /tmp/nc-out > /dev/null; t3=$(date +%s.%N)
  c=$(rate $t0 $t1); g=$(rate $t2 $t3); tl=$(python3 -c "print(round($tls*1.048576))")
  echo "round $r: tls $tl MB/s  cat $c MB/s ($(python3 -c "print(f'{$c/$tl:.2f}')"))  get $g MB/s ($(python3 -c "print(f'{$g/$tl:.2f}')"))"
  echo "$tl $c $g" >> $rows
done
# Medians: the machine is noisy, single rounds are not figures.
python3 - $rows <<'P'
import statistics as st, sys
t, c, g = zip(*([float(x) for x in l.split()] for l in open(sys.argv[1])))
med = st.median
print(f"median of {len(t)}: tls {med(t):.0f} MB/s  cat {med(c):.0f} MB/s  get {med(g):.0f} MB/s;"
      f"  ratio per round: cat {med([a/b for a, b in zip(c, t)]):.2f} get {med([a/b for a, b in zip(g, t)]):.2f}")
P
rm -f $rows
cmp /tmp/nc-out $F && echo "get output identical"
pkill -INT -f "$BIN daemon"; wait
grep 'Maximum resident' /tmp/nc-get.time
