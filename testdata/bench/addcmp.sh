#!/usr/bin/env bash
# addcmp.sh ROUNDS: cp+sync vs share add (durable) of a 1 GiB file in the page cache.
set -eu
R=${1:-3}; BIN=${BIN:-/tmp/share}; F=${F:-/tmp/big1g}
cat $F > /dev/null
for r in $(seq $R); do
  rm -rf /tmp/ac-repo /tmp/ac-copy; sync
  t0=$(date +%s.%N); cp $F /tmp/ac-copy; sync; t1=$(date +%s.%N)
  rm -f /tmp/ac-copy; sync
  SHARE_PATH=/tmp/ac-repo $BIN init >/dev/null
  t2=$(date +%s.%N); SHARE_PATH=/tmp/ac-repo /usr/bin/time -f %M -o /tmp/ac-rss $BIN add -Q $F >/dev/null; t3=$(date +%s.%N)
  python3 -c "import sys; a=(1<<30)/1e6/($t1-$t0); b=(1<<30)/1e6/($t3-$t2); print(f'round $r: cp+sync {a:.0f} MB/s  add {b:.0f} MB/s  ratio {b/a:.2f}  add peak RSS {int(open(\"/tmp/ac-rss\").read())//1024} MB')"
done
rm -rf /tmp/ac-repo
