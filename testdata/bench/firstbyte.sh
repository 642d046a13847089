#!/usr/bin/env bash
# firstbyte.sh [ROUNDS]: first byte of a small file on the lab LAN, no daemon
# on the getter: h1's daemon has added a 100 KiB file; h2, with a fresh repo
# and no configuration, runs `share cat CID` (temporary node, mDNS). Run as
# root, by hand, from a build: go build -o /tmp/share ./cmd/share
set -u
cd "$(dirname "$0")"
LAN=$(cd ../lab && pwd)/lan; BIN=${BIN:-/tmp/share}; R=${1:-5}
go build -o /tmp/firstbyte ./firstbyte || exit 1
export LAN_PREFIX=fb
$LAN down >/dev/null 2>&1; $LAN up 2 >/dev/null
rm -rf /tmp/fb-*
head -c 102400 /dev/urandom > /tmp/fb-file
SHARE_PATH=/tmp/fb-h1 $BIN init >/dev/null
SHARE_PATH=/tmp/fb-h1 $BIN config set Addresses.Gateway '""'
SHARE_PATH=/tmp/fb-h1 $BIN config set Addresses.Listen '["/ip4/0.0.0.0/tcp/4001"]'
CID=$(SHARE_PATH=/tmp/fb-h1 $BIN add -Q /tmp/fb-file)
$LAN exec h1 env SHARE_PATH=/tmp/fb-h1 $BIN daemon > /tmp/fb-h1.log 2>&1 &
for i in $(seq 100); do grep -q 'daemon ready' /tmp/fb-h1.log && break; sleep 0.1; done
for r in $(seq $R); do
  rm -rf /tmp/fb-h2
  SHARE_PATH=/tmp/fb-h2 $BIN init >/dev/null
  $LAN exec h2 env SHARE_PATH=/tmp/fb-h2 /tmp/firstbyte $BIN cat $CID
done
pkill -INT -f "$BIN daemon"; sleep 1
$LAN down >/dev/null 2>&1; rm -rf /tmp/fb-*
