#!/usr/bin/env bash
# bigrepo.sh ROUNDS: a big repository against an empty one (issue 22).
# Builds once, in $BIGREPO (default /var/tmp/share-bigrepo; delete it to
# rebuild), a repository of 100 000 pinned files of 8-12 KiB in 1 KiB
# chunks (about 1 150 000 blocks, 1.2 GB), one of 10 000, a 1 GiB file and
# a tree of 20 000 files of 1-8 KiB in 200 folders (seeded). Then, with a
# daemon on each repository, medians of ROUNDS rounds of: add of the 1 GiB
# file, add -r of the tree, gc with nothing to free, pin ls > /dev/null,
# repo stat; the daemon's peak RSS (VmHWM) over it all; and the time of a
# small add (one new 4 KiB file) with 0, 10 000 and 100 000 pins. Each
# round unpins what it added and collects it, so rounds stay comparable.
# Run by hand, from a build: go build -o /tmp/share ./cmd/share
set -eu
. "$(dirname "$0")/common.sh"
R=${1:-3}; BIN=${BIN:-/tmp/share}; BIGREPO=${BIGREPO:-/var/tmp/share-bigrepo}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p $BIGREPO
now() { date +%s%N; }
# ms CMD...: runs CMD (stdout to /dev/null) and prints its wall time in ms.
ms() { local t0 t1; t0=$(now); "$@" > /dev/null; t1=$(now); echo $(( (t1 - t0) / 1000000 )); }
median() { python3 -c "import sys,statistics; print(int(statistics.median(int(x) for x in sys.argv[1:])))" "$@"; }
ratio() { python3 -c "print(f'{$2/$1:.2f}')"; }

build_inputs() {
  [ -f $BIGREPO/big1g ] || head -c $((1<<30)) /dev/urandom > $BIGREPO/big1g
  [ -d $BIGREPO/tree ] || python3 - $BIGREPO/tree <<'PY'
import os, random, sys
root = sys.argv[1]; rng = random.Random(1)
for d in range(200):
    os.makedirs(f"{root}.part/d{d:03}")
    for f in range(100):
        with open(f"{root}.part/d{d:03}/f{f:03}", "wb") as fh:
            fh.write(rng.randbytes(rng.randint(1024, 8192)))
os.rename(root + ".part", root)
PY
  local n
  for n in 100000 10000; do
    [ -f $BIGREPO/pins$n/built ] && continue
    rm -rf $BIGREPO/pins$n; init_repo $BIGREPO/pins$n
    (cd $SRC && go build -o $BIGREPO/bigrepo-build ./testdata/bench/bigrepo)
    $BIGREPO/bigrepo-build -repo $BIGREPO/pins$n -pins $n
    touch $BIGREPO/pins$n/built
  done
}

DPID=
start_daemon() { # start_daemon REPO: a daemon on REPO, DPID its pid
  SHARE_PATH=$1 $BIN daemon > $BIGREPO/daemon.log 2>&1 & DPID=$!
  for _ in $(seq 300); do grep -q 'daemon ready' $BIGREPO/daemon.log && return; sleep 0.1; done
  echo "bigrepo: the daemon on $1 did not start" >&2; cat $BIGREPO/daemon.log >&2; exit 1
}
stop_daemon() { # prints the daemon's peak RSS in MB
  local hwm; hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$DPID/status)
  kill $DPID; wait $DPID || true; echo $hwm
}

# small_add REPO: ms of adding one new 4 KiB file (median of ROUNDS),
# through REPO's daemon (running).
small_add() {
  local r t=()
  for r in $(seq $R); do
    head -c 4096 /dev/urandom > $BIGREPO/small
    t+=($(ms env SHARE_PATH=$1 $BIN add -Q $BIGREPO/small))
  done
  median "${t[@]}"
}

# measure REPO NAME: the rounds on REPO; sets the figures under NAME_*.
measure() {
  local d=$1 name=$2 r t0 c1 c2 a=() t=() g=() p=() s=()
  start_daemon $d
  for r in $(seq $R); do
    sync
    t0=$(now); c1=$(SHARE_PATH=$d $BIN add -Q $BIGREPO/big1g); a+=($(( ($(now) - t0) / 1000000 )))
    sync
    t0=$(now); c2=$(SHARE_PATH=$d $BIN add -r -Q $BIGREPO/tree); t+=($(( ($(now) - t0) / 1000000 )))
    g+=($(ms env SHARE_PATH=$d $BIN gc))
    p+=($(ms env SHARE_PATH=$d $BIN pin ls))
    s+=($(ms env SHARE_PATH=$d $BIN repo stat))
    SHARE_PATH=$d $BIN pin rm $c1 >/dev/null; SHARE_PATH=$d $BIN pin rm $c2 >/dev/null
    SHARE_PATH=$d $BIN gc >/dev/null
  done
  eval "${name}_add=$(median "${a[@]}") ${name}_tree=$(median "${t[@]}") ${name}_gc=$(median "${g[@]}")"
  eval "${name}_pinls=$(median "${p[@]}") ${name}_stat=$(median "${s[@]}") ${name}_small=$(small_add $d)"
  eval "${name}_rss=$(stop_daemon)"
}

build_inputs
cat $BIGREPO/big1g > /dev/null
rm -rf $BIGREPO/empty; init_repo $BIGREPO/empty
measure $BIGREPO/empty e
measure $BIGREPO/pins100000 b
start_daemon $BIGREPO/pins10000; small10k=$(small_add $BIGREPO/pins10000); stop_daemon > /dev/null
rm -rf $BIGREPO/empty
echo "bigrepo ($R rounds, ms; empty / 100k pins, ratio): add 1 GiB $e_add / $b_add ($(ratio $e_add $b_add))" \
  " add -r 20k files $e_tree / $b_tree ($(ratio $e_tree $b_tree))  gc $e_gc / $b_gc  pin ls $e_pinls / $b_pinls" \
  " repo stat $e_stat / $b_stat  daemon peak RSS MB $e_rss / $b_rss  small add with 0 / 10k / 100k pins $e_small / $small10k / $b_small"
