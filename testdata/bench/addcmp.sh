#!/usr/bin/env bash
# addcmp.sh ROUNDS: the local core's figures for a 1 GiB file in the page
# cache, each round in one run so they can be quoted as ratios:
#   cp+sync vs share add (durable), add's peak RSS;
#   share cat of it to /dev/null (MB/s, peak RSS);
#   share gc of the 1 GiB once unpinned (time, disk before/after, and
#   after a second gc run, when Pebble has deleted the obsolete files).
# Input: head -c $((1<<30)) /dev/urandom > /tmp/big1g
set -eu
R=${1:-3}; BIN=${BIN:-/tmp/share}; F=${F:-/tmp/big1g}; REPO=${REPO:-/tmp/ac-repo}
cat $F > /dev/null
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{(1<<30)/1e6/(float(sys.argv[2])-float(sys.argv[1])):.0f}')" $1 $2; }
for r in $(seq $R); do
  rm -rf $REPO /tmp/ac-copy; sync
  t0=$(now); cp $F /tmp/ac-copy; sync; t1=$(now)
  rm -f /tmp/ac-copy; sync
  SHARE_PATH=$REPO $BIN init >/dev/null
  t2=$(now); CID=$(SHARE_PATH=$REPO /usr/bin/time -f %M -o /tmp/ac-rss $BIN add -Q $F); t3=$(now)
  addrss=$(( $(cat /tmp/ac-rss) / 1024 ))
  t4=$(now); SHARE_PATH=$REPO /usr/bin/time -f %M -o /tmp/ac-rss $BIN cat $CID > /dev/null; t5=$(now)
  catrss=$(( $(cat /tmp/ac-rss) / 1024 ))
  SHARE_PATH=$REPO $BIN pin rm $CID >/dev/null
  du0=$(du -sm $REPO | cut -f1)
  t6=$(now); SHARE_PATH=$REPO $BIN gc >/dev/null; t7=$(now)
  du1=$(du -sm $REPO | cut -f1)
  SHARE_PATH=$REPO $BIN gc >/dev/null; du2=$(du -sm $REPO | cut -f1)
  cp_=$(rate $t0 $t1); add=$(rate $t2 $t3); cat_=$(rate $t4 $t5)
  gct=$(python3 -c "print(f'{$t7-$t6:.2f}')")
  echo "round $r: cp+sync $cp_ MB/s  add $add MB/s (ratio $(python3 -c "print(f'{$add/$cp_:.2f}')"), peak RSS $addrss MB)  cat $cat_ MB/s (peak RSS $catrss MB)  gc ${gct} s, repo $du0 -> $du1 MB (-> $du2 MB after a second gc)"
done
rm -rf $REPO
