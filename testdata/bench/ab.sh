#!/usr/bin/env bash
# ab.sh ROUNDS BIN...: A/B of builds on the same machine at the same time.
# Each round, for each build in turn: fresh daemons of that build (its own
# provider and getter repositories, made once), the raw TLS ceiling, then
# one `share cat` (MODE=get ARGS="-o /tmp/ab-out" for get) of F (default
# /tmp/big1g). Prints one line per run and the medians per build; compare
# the builds' cat medians (the ratio to a ceiling measured seconds apart is
# noisier than the difference between builds).
set -eu
. "$(dirname "$0")/common.sh"
R=$1; shift
TLSCOPY=${TLSCOPY:-/tmp/ceilings-tlscopy}
declare -A CIDS
rows=$(mktemp)
for b in "$@"; do
  n=$(basename "$b"); BIN=$b
  pkill -f "$b daemon" 2>/dev/null || true
  rm -rf /tmp/ab-p-$n /tmp/ab-g-$n; init_repo /tmp/ab-p-$n; init_repo /tmp/ab-g-$n
  CIDS[$n]=$(SHARE_PATH=/tmp/ab-p-$n $b add -Q "${F:-/tmp/big1g}")
done
size=$(stat -c %s "${F:-/tmp/big1g}")
for r in $(seq "$R"); do for b in "$@"; do
  n=$(basename "$b"); P=/tmp/ab-p-$n; G=/tmp/ab-g-$n
  SHARE_PATH=$P $b daemon > /tmp/ab-prov.log 2>&1 &
  SHARE_PATH=$G $b daemon > /tmp/ab-get.log 2>&1 &
  for i in $(seq 50); do grep -q 'daemon ready' /tmp/ab-prov.log && grep -q 'daemon ready' /tmp/ab-get.log && break; sleep 0.1; done
  ADDR=$(grep -m1 'listening on' /tmp/ab-prov.log | awk '{print $3}')
  SHARE_PATH=$G $b connect "$ADDR" >/dev/null
  SHARE_PATH=$G $b gc >/dev/null; rm -rf /tmp/ab-out; sync
  tls=$($TLSCOPY $((1<<30)))
  t0=$(date +%s.%N); SHARE_PATH=$G $b ${MODE:-cat} ${CIDS[$n]} ${ARGS:-} > /dev/null; t1=$(date +%s.%N)
  python3 -c "t=$tls*1.048576; c=$size/1e6/($t1-$t0); print(f'$n tls {t:.0f} ${MODE:-cat} {c:.0f} ratio {c/t:.2f}')" | tee -a "$rows"
  pkill -INT -f "$b daemon"; wait
done; done
python3 - "$rows" <<'P'
import statistics as st, sys
d = {}
for l in open(sys.argv[1]):
    f = l.split(); d.setdefault(f[0], []).append((float(f[4]), float(f[6])))
for k, v in d.items():
    print(f"{k}: median of {len(v)}: {st.median(x for x, _ in v):.0f} MB/s, ratio {st.median(r for _, r in v):.2f}")
P
rm -f "$rows"
