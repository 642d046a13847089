#!/usr/bin/env bash
# trees.sh [SIZES...]: add -r and get -o of trees of small files over the lab
# LAN, to see that memory stays bounded and the time per file flat as a tree
# grows. For each size N (default 2000 20000 200000, plus "flat10000": one
# folder of 10 000 files, which is HAMT-sharded) it generates a tree of N
# files of 1-8 KiB (random bytes from SEED; folders of 100 files, 100 such
# folders per top folder, so big trees are both wide and deep), then:
#   add -r on h1 in a fresh repository, no daemon (time, peak RSS);
#   h1's daemon serves it; h2's daemon, fresh repository, connected to h1,
#   runs get -o of the root (time, peak RSS of the get command, of h2's
#   daemon and of h1's daemon while serving);
#   checks the copy (a hash of every file's name and bytes).
# It prints one line of figures per size, then the time per file of each
# size against the smallest (flat means ratios near 1), net of the fixed
# cost of each command (measured on a tree of 10 files in the same run).
# Run as root, by hand, from a build: go build -o /tmp/share ./cmd/share
# Env: BIN, W (work dir, default /tmp/trees), RATE (lab link rate, default
# 1gbit; "none" for no limit), SEED, PROF=1 (heap profiles of both daemons
# every 5 s of the get and CPU profiles of add and of h2's daemon, in $W/prof),
# KEEP=1 keeps the generated trees (the
# default: re-generating 200 000 files right after deleting as many is slow
# on ext4, so trees are kept between runs; rm -rf $W/src-* to drop them).
set -eu
cd "$(dirname "$0")"
. ./common.sh
LAN=$(cd ../lab && pwd)/lan; BIN=${BIN:-/tmp/share}; W=${W:-/tmp/trees}
RATE=${RATE:-1gbit}; SEED=${SEED:-22}; KEEP=${KEEP:-1}
SIZES=${*:-2000 20000 200000}
export LAN_PREFIX=tr
now() { date +%s.%N; }
rss() { awk -F': ' '/Maximum resident/ {printf "%d", $2/1024}' "$1"; }

# gen N DIR: the tree of N files (or flatN: N files in one folder).
gen() {
  [[ -f $2/.done ]] && return
  rm -rf "$2"; mkdir -p "$2"
  python3 - "$1" "$2" "$SEED" <<'EOF'
import os, random, sys
spec, root, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(seed)
flat = spec.startswith("flat")
n = int(spec[4:] if flat else spec)
for i in range(n):
    d = os.path.join(root, "flat") if flat else os.path.join(root, "t%03d" % (i // 10000), "d%03d" % (i // 100 % 100))
    if i % 100 == 0 or (flat and i == 0):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
        f.write(r.randbytes(r.randint(1024, 8192)))
EOF
  sync; touch "$2/.done"
}

# treehash DIR: one hash of every regular file's path and bytes.
treehash() { (cd "$1" && find . -type f ! -name .done -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

# daemon HOST REPO NAME: starts a daemon under /usr/bin/time -v; sets DPID
# (the daemon's own pid, for SIGINT: time ignores it) and waits for ready.
daemon() {
  $LAN exec $1 /usr/bin/time -v -o $W/$3.time env SHARE_PATH=$2 $BIN daemon > $W/$3.log 2>&1 &
  local tp=$! i
  for i in $(seq 600); do grep -q "daemon ready" $W/$3.log && break; sleep 0.1; done
  grep -q 'daemon ready' $W/$3.log || { echo "daemon $3 not ready"; cat $W/$3.log; exit 1; }
  DPID=$(pgrep -P $tp)
}
# heaps REPO NAME: heap profiles of the daemon at REPO every 5 s, until killed.
heaps() {
  local k=0
  while sleep 5; do
    k=$((k + 1))
    curl -s --unix-socket $1/api.sock -o $W/prof/$2-heap-$k.pb.gz http://share/debug/pprof/heap || true
  done
}
stop() { kill -INT $1; while kill -0 $1 2>/dev/null; do sleep 0.1; done; }

lan_args=(); [[ $RATE == none ]] || lan_args=(--rate $RATE)
$LAN down >/dev/null 2>&1 || true
$LAN up 2 "${lan_args[@]}" >/dev/null
trap '$LAN down >/dev/null 2>&1 || true' EXIT
mkdir -p $W
# one N: add -r and get -o of the tree of N files; sets ADD, GET (seconds),
# LINE (the figures) and checks the copy.
one() {
  local n=$1 src=$W/src-$1 t0 t1 t2 t3 p hp=() prof=()
  gen $n $src
  rm -rf $W/h1 $W/h2 $W/out-$n
  for r in $W/h1 $W/h2; do
    init_repo $r
    SHARE_PATH=$r $BIN config set Addresses.Listen '["/ip4/0.0.0.0/tcp/4001"]'
  done
  sync
  [[ ${PROF:-} != 1 ]] || { mkdir -p $W/prof; prof=(SHARE_CPUPROFILE=$W/prof/add-cpu-$n.pb.gz); }
  t0=$(now)
  CID=$($LAN exec h1 /usr/bin/time -v -o $W/add.time env SHARE_PATH=$W/h1 "${prof[@]}" $BIN add -r -Q $src)
  t1=$(now)
  daemon h1 $W/h1 d1; P1=$DPID
  daemon h2 $W/h2 d2; P2=$DPID
  A1=$(awk '/listening on \/ip4\/10.77.0.1\// {print $3; exit}' $W/d1.log)
  $LAN exec h2 env SHARE_PATH=$W/h2 $BIN connect $A1 >/dev/null
  if [[ ${PROF:-} == 1 ]]; then
    heaps $W/h1 d1-$n & hp+=($!)
    heaps $W/h2 d2-$n & hp+=($!)
    curl -s --unix-socket $W/h2/api.sock -o $W/prof/d2-cpu-$n.pb.gz "http://share/debug/pprof/profile?seconds=${PROFSEC:-30}" & hp+=($!)
  fi
  t2=$(now)
  $LAN exec h2 /usr/bin/time -v -o $W/get.time env SHARE_PATH=$W/h2 $BIN get -o $W/out-$n $CID > $W/get.log 2>&1
  t3=$(now)
  for p in "${hp[@]}"; do kill $p 2>/dev/null || true; done
  stop $P2; stop $P1
  local ok; ok=$([[ $(treehash $src) == $(treehash $W/out-$n) ]] && echo identical || echo DIFFERENT)
  ADD=$(python3 -c "print(f'{$t1-$t0:.3f}')"); GET=$(python3 -c "print(f'{$t3-$t2:.3f}')")
  LINE="add -r $ADD s (RSS $(rss $W/add.time) MB)  get -o $GET s (get RSS $(rss $W/get.time) MB, h2 daemon $(rss $W/d2.time) MB, h1 daemon $(rss $W/d1.time) MB)  $ok"
  rm -rf $W/h1 $W/h2
}

# The fixed cost of a command (start, open the repository, connect) is
# measured on a tree of 10 files and taken off, so that the time per file
# of 2 000 files is not mostly start-up.
one 10
BADD=$ADD BGET=$GET
echo "trees base 10 files: $LINE  rate=$RATE"
declare -A perfile
first=""
for n in $SIZES; do
  one $n
  nf=${n#flat}
  addus=$(python3 -c "print(f'{($ADD-$BADD)/($nf-10)*1e6:.0f}')"); getus=$(python3 -c "print(f'{($GET-$BGET)/($nf-10)*1e6:.0f}')")
  perfile[$n]="$addus $getus"; [[ -n $first ]] || first=$n
  echo "trees $n files: $LINE  net per file: add $addus us, get $getus us  rate=$RATE"
done
for n in $SIZES; do
  set -- ${perfile[$n]} ${perfile[$first]}
  echo "trees ratio $n/$first per file: add $(python3 -c "print(f'{$1/$3:.2f}')")  get $(python3 -c "print(f'{$2/$4:.2f}')")"
done
# The copies go last, after every timed step (deleting many files slows the
# next creations on ext4).
rm -rf $W/out-*
[[ $KEEP == 1 ]] || rm -rf $W/src-*
