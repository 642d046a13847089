#!/usr/bin/env bash
# smallget.sh ROUNDS [BIN...]: small blocks over the network, beside their
# ceiling in the same run. Run by hand from builds (default BIN /tmp/share:
# go build -o /tmp/share ./cmd/share); with several builds, each round
# measures each in turn, so that they are compared side by side:
#   tree: 20 000 files of 1-8 KiB in 200 folders (generated here, once);
#   cp -r + sync of it (once a round, the ceiling); `share get -o` + sync
#   from the own repository; `share get -o` + sync through a getter daemon
#   from a loopback provider daemon; the ratio cp / network get (the target
#   is >= 0.5);
#   1 KiB blocks: `share cat` of a 64 MiB file added with --chunker
#   size-1024 (65 536 leaves), in blocks/s, and each daemon's CPU time
#   (from /proc/PID/stat) per block.
# Each round adds a fresh tree and a fresh 64 MiB file to the providers
# (untimed), so the getters fetch blocks they never had; REFETCH=1 fetches
# the same content every round after a gc of the getter instead (which
# measures the miss filter's tombstones as well).
# Prints one line of medians per build (and, with VERBOSE=1, every round).
set -eu
. "$(dirname "$0")/common.sh"
R=${1:-3}; shift || true
BINS=("$@"); [ ${#BINS[@]} -gt 0 ] || BINS=(${BIN:-/tmp/share})
W=${W:-/tmp/sg}; T=${T:-$W/tree}; OUT=$W/out
mkdir -p $W
# gentree DIR SEED: the tree of 20 000 files, the same for the same seed.
gentree() {
  [ -d $1 ] && return
  python3 - $1 $2 <<'PY'
import os, random, sys
r = random.Random(int(sys.argv[2])); root = sys.argv[1]
for d in range(200):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}", "wb") as w:
            w.write(r.randbytes(r.randint(1024, 8192)))
PY
}
gentree $T 22
[ -f $W/small64m ] || head -c $((64 << 20)) /dev/urandom > $W/small64m
now() { date +%s.%N; }
cputicks() { awk '{print $14 + $15}' /proc/$1/stat; }
HZ=$(getconf CLK_TCK)
NBLK=$(( (64 << 20) / 1024 ))

# Each build: a provider and a getter repository and their daemons.
PIDS=()
trap 'kill -INT ${PIDS[@]} 2>/dev/null; wait' EXIT
declare -A PP PG TREE SMALL
for k in ${!BINS[@]}; do
  BIN=${BINS[$k]}; P=$W/prov$k; G=$W/get$k
  rm -rf $P $G
  for d in $P $G; do init_repo $d; done
  TREE[$k]=$(SHARE_PATH=$P $BIN add -Q -r $T)
  SMALL[$k]=$(SHARE_PATH=$P $BIN add -Q --chunker size-1024 $W/small64m)
  SHARE_PATH=$P $BIN daemon > $W/prov$k.log 2>&1 & PP[$k]=$!; PIDS+=($!)
  SHARE_PATH=$G $BIN daemon > $W/get$k.log 2>&1 & PG[$k]=$!; PIDS+=($!)
  for i in $(seq 100); do
    grep -q 'daemon ready' $W/prov$k.log && grep -q 'daemon ready' $W/get$k.log && break; sleep 0.1
  done
  ADDR=$(grep -m1 'listening on' $W/prov$k.log | awk '{print $3}')
  SHARE_PATH=$G $BIN connect $ADDR > /dev/null
done

# Nothing is deleted during the rounds: on ext4 without a journal, files
# created after thousands were deleted scan those (recently_deleted in
# perf: cp -r took 13 s instead of 0.9 s), a toll that would fall on
# whichever measurement came first. Untimed copies take the toll of the
# last run's outputs, until a copy is no faster than the one before.
rm -rf $OUT; mkdir -p $OUT; prev=1000
for i in $(seq 10); do
  t0=$(now); cp -r $T $OUT/warm$i; t1=$(now)
  python3 -c "import sys; sys.exit(0 if $t1 - $t0 > 0.8 * $prev else 1)" && break
  prev=$(python3 -c "print($t1 - $t0)")
done
sync
rows=$W/rows; : > $rows
# fresh R: a new tree and 64 MiB file for round R, added to each provider
# (as TREE and SMALL) while no daemon is timed.
fresh() {
  RT=$W/tree.$1; gentree $RT $((22 + $1))
  head -c $((64 << 20)) /dev/urandom > $W/small.$1
  for k in ${!BINS[@]}; do
    TREE[$k]=$(SHARE_PATH=$W/prov$k ${BINS[$k]} add -Q -r $RT)
    SMALL[$k]=$(SHARE_PATH=$W/prov$k ${BINS[$k]} add -Q --chunker size-1024 $W/small.$1)
  done
  rm $W/small.$1; sync
}
# regc DIR: the getter forgets what it fetched, in REFETCH mode.
regc() { [ -z "${REFETCH:-}" ] || { SHARE_PATH=$1 $BIN gc > /dev/null; sync; }; }
RT=$T
for r in $(seq $R); do
  [ -n "${REFETCH:-}" ] || fresh $r
  t0=$(now); cp -r $RT $OUT/cp$r; sync; t1=$(now)
  for k in ${!BINS[@]}; do
    BIN=${BINS[$k]}; P=$W/prov$k; G=$W/get$k; o=$OUT/$k.$r
    t2=$(now); SHARE_PATH=$P $BIN get ${TREE[$k]} -o $o.local > /dev/null 2>> $W/cli.log; sync; t3=$(now)
    regc $G
    t4=$(now); SHARE_PATH=$G $BIN get ${TREE[$k]} -o $o.net > /dev/null 2>> $W/cli.log; sync; t5=$(now)
    diff -r -q $RT $o.net > /dev/null || { echo "round $r, $BIN: the fetched tree differs" >&2; exit 1; }
    regc $G
    a0=$(cputicks ${PP[$k]}); b0=$(cputicks ${PG[$k]})
    t6=$(now); SHARE_PATH=$G $BIN cat ${SMALL[$k]} > /dev/null; t7=$(now)
    a1=$(cputicks ${PP[$k]}); b1=$(cputicks ${PG[$k]})
    echo $k $r $t0 $t1 $t2 $t3 $t4 $t5 $t6 $t7 $((a1 - a0)) $((b1 - b0)) $HZ $NBLK >> $rows
  done
done
python3 - $rows "${VERBOSE:-}" "${BINS[@]}" <<'PY'
import statistics as st, sys
bins = sys.argv[3:]
def fig(f):
    t = [float(x) for x in f[2:10]]
    prov, getr, hz, n = (int(x) for x in f[10:14])
    cp, loc, net, cat = t[1] - t[0], t[3] - t[2], t[5] - t[4], t[7] - t[6]
    return [cp, loc, net, cp / net, n / cat, prov / hz / n * 1e6, getr / hz / n * 1e6]
def line(head, v):
    return (f"{head}: cp+sync {v[0]:.2f} s  local get {v[1]:.2f} s  net get {v[2]:.2f} s"
            f"  ratio {v[3]:.2f}  1KiB blocks {v[4]:.0f}/s  cpu/block prov {v[5]:.1f} us get {v[6]:.1f} us")
rows = [l.split() for l in open(sys.argv[1])]
for k, b in enumerate(bins):
    mine = [fig(f) for f in rows if f[0] == str(k)]
    if sys.argv[2]:
        for i, v in enumerate(mine):
            print(line(f"{b} round {i + 1}", v))
    print(line(f"{b} median of {len(mine)}", [st.median(c) for c in zip(*mine)]))
PY
