#!/usr/bin/env bash
# kubo-swarm.sh: share beside kubo 0.43.1 in one run, one line of figures
# (root: it runs everything inside a LAN of namespaces, testdata/lab/lan).
#
#   swarm   4 providers at 100 Mbit/s up each, one getter, 256 MiB (F):
#           2 kubo + 2 share -> share getter (share's format, the same CID
#           on both: kubo adds with --cid-version 1 --raw-leaves --hash
#           blake3 --chunker size-1048576), then 4 kubo -> kubo getter
#           (kubo's default CIDv0); Mbit/s from the get's start, peers
#           already connected (daemons on every host)
#   loop    1 GiB (G) on one host's loopback, kubo's default format:
#           kubo -> share daemon, kubo -> kubo, share -> kubo (a second
#           1 GiB file, G2, added by share with --cid-version 0)
#   net     share -> share on network ipfs, then on network share (1 GiB)
#
# Env: BIN (share, default /tmp/share), KUBO (ipfs, default /tmp/ipfs),
# F (256 MiB input, default /tmp/big256m), G and G2 (1 GiB inputs,
# default /tmp/big1g and /tmp/big1g-b; made from /dev/urandom if absent),
# RATE (default 100mbit), ONLY (swarm, loop or net: that part alone).
set -euo pipefail
LAN=$(cd "$(dirname "$0")/../lab" && pwd)/lan
BIN=${BIN:-/tmp/share} KUBO=${KUBO:-/tmp/ipfs}
F=${F:-/tmp/big256m} G=${G:-/tmp/big1g} G2=${G2:-/tmp/big1g-b}
W=/tmp/kubo-swarm
export LAN_PREFIX=ks
for f in "$F:256" "$G:1024" "$G2:1024"; do
  [[ -f ${f%:*} ]] || head -c "${f#*:}M" /dev/urandom > "${f%:*}"
done

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do timeout 10 tail --pid="$p" -f /dev/null || kill -KILL "$p" 2>/dev/null || true; done
  pids=()
  $LAN down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# waitlog FILE TEXT: wait (30 s at most) until FILE has a line with TEXT.
waitlog() {
  local i
  for ((i = 0; i < 300; i++)); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.1; done
  echo "kubo-swarm: no '$2' in $1" >&2; exit 1
}

# kubo HOST DIR ARGS...: run ipfs on HOST with repository DIR.
kubo() { local h=$1 d=$2; shift 2; $LAN exec "$h" env IPFS_PATH="$d" "$KUBO" "$@"; }
# share HOST DIR ARGS...: run share on HOST with repository DIR.
share() { local h=$1 d=$2; shift 2; $LAN exec "$h" env SHARE_PATH="$d" "$BIN" "$@"; }

# kinit HOST DIR ADDR MDNS: a kubo repository listening on ADDR (ip:port).
kinit() {
  kubo "$1" "$2" init --profile test >/dev/null
  kubo "$1" "$2" config --json Addresses.Swarm "[\"/ip4/${3%:*}/tcp/${3#*:}\"]"
  kubo "$1" "$2" config --json Bootstrap '[]'
  kubo "$1" "$2" config --json Discovery.MDNS.Enabled "$4"
}
# kstart HOST DIR: run kubo's daemon and wait until it is ready.
kstart() {
  # lan exec becomes the daemon (exec): $! is the daemon's PID.
  $LAN exec "$1" env IPFS_PATH="$2" "$KUBO" daemon > "$2.log" 2>&1 &
  pids+=($!)
  waitlog "$2.log" "Daemon is ready"
}
# sinit HOST DIR ADDR MDNS NETWORK: a share repository listening on ADDR.
sinit() {
  share "$1" "$2" init >/dev/null
  share "$1" "$2" config set Network "$5"
  share "$1" "$2" config set Addresses.Listen "[\"/ip4/${3%:*}/tcp/${3#*:}\"]"
  share "$1" "$2" config set Addresses.Gateway '""'
  share "$1" "$2" config set Discovery.MDNS "$4"
  share "$1" "$2" config set Datastore.StorageMax '"100GB"'
}
sstart() {
  $LAN exec "$1" env SHARE_PATH="$2" "$BIN" ${SV:-} daemon > "$2.log" 2>&1 &
  pids+=($!)
  waitlog "$2.log" "daemon ready"
}
kid() { kubo "$1" "$2" config Identity.PeerID; }
sid() { share "$1" "$2" id --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])'; }

# waitpeers N CMD...: wait (30 s at most) until CMD lists N peers.
waitpeers() {
  local n=$1 i; shift
  for ((i = 0; i < 300; i++)); do
    (( $("$@" 2>/dev/null | grep -c 12D3KooW || true) >= n )) && return
    sleep 0.1
  done
  echo "kubo-swarm: fewer than $n peers: $*" >&2; exit 1
}

# rate BYTES CMD...: run CMD; MBIT is then its rate in Mbit/s.
rate() {
  local n=$1 t0 t1; shift
  t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N)
  MBIT=$(python3 -c "import sys; print(f'{int(sys.argv[1])*8/1e6/(float(sys.argv[3])-float(sys.argv[2])):.0f}')" "$n" "$t0" "$t1")
}
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
# getjson HOST DIR CID: share get --json CID into $W/out, the report in $W/get.json.
getjson() { share "$1" "$2" get --json "$3" -o $W/out > $W/get.json; }

# same FILE CMD...: fail unless CMD writes FILE's bytes.
same() { local f=$1; shift; "$@" | cmp - "$f" >/dev/null || { echo "kubo-swarm: different bytes: $*" >&2; exit 1; }; }
sizeof() { stat -c %s "$1"; }

swarm() {
  rm -rf $W && mkdir -p $W
  $LAN up 5 --rate "${RATE:-100mbit}" >/dev/null
  local h c kc
  for h in h1 h2; do
    kinit $h $W/k$h "$($LAN ip $h):4001" true
    kc=$(kubo $h $W/k$h add -Q --cid-version 1 --raw-leaves --hash blake3 --chunker size-1048576 "$F")
    kubo $h $W/k$h add -Q "$F" >/dev/null # kubo's default CID, for the kubo swarm
    kstart $h $W/k$h
  done
  for h in h3 h4; do
    sinit $h $W/s$h "0.0.0.0:4001" true ipfs
    c=$(share $h $W/s$h add -Q "$F")
    [[ $c == "$kc" ]] || { echo "kubo-swarm: share's CID $c, kubo's $kc" >&2; exit 1; }
    sstart $h $W/s$h
  done
  sinit h5 $W/sh5 "0.0.0.0:4001" true ipfs
  sstart h5 $W/sh5
  waitpeers 4 share h5 $W/sh5 peers
  rate "$(sizeof "$F")" getjson h5 $W/sh5 "$c"; mixed=$MBIT
  cmp -s $W/out "$F" || { echo "kubo-swarm: mixed get: different bytes" >&2; exit 1; }
  # Bytes by protocol: bitswap (kubo) against share's own.
  fromkubo=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); k=sum(f["Bytes"] for f in r["From"] if "bitswap" in f["Protocol"]); print("%.2f" % (k/sum(f["Bytes"] for f in r["From"])))' $W/get.json)
  cleanup

  rm -rf $W && mkdir -p $W
  $LAN up 5 --rate "${RATE:-100mbit}" >/dev/null
  for h in h1 h2 h3 h4; do
    kinit $h $W/k$h "$($LAN ip $h):4001" true
    kc=$(kubo $h $W/k$h add -Q "$F")
    kstart $h $W/k$h
  done
  kinit h5 $W/kh5 "$($LAN ip h5):4001" true
  kstart h5 $W/kh5
  waitpeers 4 kubo h5 $W/kh5 swarm peers
  rate "$(sizeof "$F")" same "$F" kubo h5 $W/kh5 cat "$kc"; kuboswarm=$MBIT
  cleanup
  local r=${RATE:-100mbit} sum
  sum=$((4 * ${r%mbit}))
  out+=" swarm: mixed->share $mixed Mbit/s ($(ratio "$mixed" $sum) of sum, $fromkubo from kubo)"
  out+=" kubo->kubo $kuboswarm ($(ratio "$kuboswarm" $sum))"
}

loop() {
  rm -rf $W && mkdir -p $W
  $LAN up 1 >/dev/null
  kinit h1 $W/ka 127.0.0.1:4101 false
  kinit h1 $W/kc 127.0.0.1:4103 false
  sinit h1 $W/sb 127.0.0.1:4102 false ipfs
  share h1 $W/sb config set Routing.Mode off
  local kc sc ka sb
  kc=$(kubo h1 $W/ka add -Q "$G")
  sc=$(share h1 $W/sb add -Q --cid-version 0 "$G2")
  ka=$(kid h1 $W/ka) sb=$(sid h1 $W/sb)
  kstart h1 $W/ka
  kstart h1 $W/kc
  sstart h1 $W/sb
  share h1 $W/sb connect "/ip4/127.0.0.1/tcp/4101/p2p/$ka" >/dev/null
  kubo h1 $W/kc swarm connect "/ip4/127.0.0.1/tcp/4101/p2p/$ka" >/dev/null
  kubo h1 $W/kc swarm connect "/ip4/127.0.0.1/tcp/4102/p2p/$sb" >/dev/null
  # kubo -> share in a subshell: a failed cat must not end the run.
  (rate "$(sizeof "$G")" same "$G" share h1 $W/sb cat "$kc"; echo "$MBIT" > $W/ks) || echo failed > $W/ks
  ks=$(cat $W/ks)
  rate "$(sizeof "$G")" same "$G" kubo h1 $W/kc cat "$kc"; kk=$MBIT
  rate "$(sizeof "$G2")" same "$G2" kubo h1 $W/kc cat "$sc"; sk=$MBIT
  cleanup
  out+=" loop: kubo->share $ks Mbit/s ($( [[ $ks == failed ]] || ratio "$ks" "$kk") of kubo->kubo $kk) share->kubo $sk ($(ratio "$sk" "$kk"))"
}

net() {
  rm -rf $W && mkdir -p $W
  $LAN up 1 >/dev/null
  local n port c id r=()
  for n in ipfs share; do
    port=$((4200 + ${#r[@]} * 2))
    sinit h1 $W/p$n 127.0.0.1:$port false $n
    sinit h1 $W/g$n 127.0.0.1:$((port + 1)) false $n
    share h1 $W/p$n config set Routing.Mode off
    share h1 $W/g$n config set Routing.Mode off
    c=$(share h1 $W/p$n add -Q "$G")
    id=$(sid h1 $W/p$n)
    sstart h1 $W/p$n
    sstart h1 $W/g$n
    share h1 $W/g$n connect "/ip4/127.0.0.1/tcp/$port/p2p/$id" >/dev/null
    rate "$(sizeof "$G")" same "$G" share h1 $W/g$n cat "$c"; r+=("$MBIT")
    cleanup
    $LAN up 1 >/dev/null
  done
  out+=" net: share->share on ipfs ${r[0]} Mbit/s, on share ${r[1]} ($(ratio "${r[0]}" "${r[1]}"))"
}

out="load $(cut -d' ' -f1-3 /proc/loadavg):"
case ${ONLY:-} in
  swarm) swarm ;; loop) loop ;; net) net ;;
  "") swarm; loop; net ;;
  *) echo "kubo-swarm: ONLY is swarm, loop or net" >&2; exit 2 ;;
esac
echo "$out"
rm -rf $W
