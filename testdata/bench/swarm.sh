#!/usr/bin/env bash
# swarm.sh: 4 providers (h1..h4, each 100 Mbit/s up) and a getter h5 with a
# fresh repo and no daemon; prints the getter's rate. Env: MB (default 256).
set -u
LAN=$(cd "$(dirname "$0")/../lab" && pwd)/lan; BIN=${BIN:-/tmp/share}; F=${F:-/tmp/big256m}
export LAN_PREFIX=sw
$LAN down >/dev/null 2>&1; $LAN up 5 --rate ${RATE:-100mbit} >/dev/null
rm -rf /tmp/sw-*
CID=""
for h in 1 2 3 4; do
  R=/tmp/sw-h$h
  SHARE_PATH=$R $BIN init >/dev/null
  SHARE_PATH=$R $BIN config set Addresses.Gateway '""'
  SHARE_PATH=$R $BIN config set Addresses.Listen '["/ip4/0.0.0.0/tcp/4001"]'
  CID=$(SHARE_PATH=$R $BIN add -Q $F)
  $LAN exec h$h env SHARE_PATH=$R $BIN daemon > /tmp/sw-h$h.log 2>&1 &
done
for h in 1 2 3 4; do for i in $(seq 100); do grep -q 'daemon ready' /tmp/sw-h$h.log && break; sleep 0.1; done; done
sleep 0.5
SHARE_PATH=/tmp/sw-h5 $BIN init >/dev/null
t0=$(date +%s.%N)
$LAN exec h5 env SHARE_PATH=/tmp/sw-h5 $BIN get $CID -o /tmp/sw-out 2>/tmp/sw-get.err
t1=$(date +%s.%N)
python3 -c "import sys; print(f'swarm get {$(stat -c %s $F)*8/1e6/(float(sys.argv[2])-float(sys.argv[1])):.0f} Mbit/s (incl. start and mDNS)')" $t0 $t1
cmp /tmp/sw-out $F && echo identical
pkill -INT -f "$BIN daemon"; sleep 1
$LAN down >/dev/null 2>&1; rm -rf /tmp/sw-*
