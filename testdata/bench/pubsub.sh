#!/usr/bin/env bash
# pubsub.sh: gossipsub throughput on the lab LAN. Three hosts h1..h3, each a
# daemon; h2 and h3 subscribe to one topic, h1 publishes N messages of SIZE
# bytes through its API (P in flight). Prints one line: h1's publish rate
# (the ceiling: what h1's API and signing accept) and the rate at which h2
# and h3 received, first message to last, with their counts.
# A second line gives each daemon's counters from /metrics: queue_drop (a
# peer's outbound queue was full), subscription_drop (a subscription's
# reader, the API stream to pubsubload, was behind) and publish_wait (an
# own message waited for room in a peer's queue: back-pressure).
# Env: BIN (share), LOAD (pubsubload, built from ./pubsubload), N (20000),
# SIZE (1024), P (4), RATE (link rate, default none), LAN_PREFIX (ps: the
# lab's namespaces, and /tmp/$LAN_PREFIX-h* the repositories).
set -u
here=$(cd "$(dirname "$0")" && pwd)
LAN=$here/../lab/lan; BIN=${BIN:-/tmp/share}; LOAD=${LOAD:-/tmp/pubsubload}
N=${N:-20000}; SIZE=${SIZE:-1024}; P=${P:-4}
export LAN_PREFIX=${LAN_PREFIX:-ps}
D=/tmp/$LAN_PREFIX
$LAN down >/dev/null 2>&1; $LAN up 3 ${RATE:+--rate $RATE} >/dev/null
rm -rf $D-h*
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  $LAN down >/dev/null 2>&1; rm -rf $D-h*
}
trap cleanup EXIT
for h in 1 2 3; do
  R=$D-h$h
  SHARE_PATH=$R $BIN init >/dev/null
  SHARE_PATH=$R $BIN config set Addresses.Gateway '"127.0.0.1:8080"' >/dev/null
  SHARE_PATH=$R $BIN config set Addresses.Listen '["/ip4/0.0.0.0/tcp/4001"]' >/dev/null
  SHARE_PATH=$R $BIN config set Routing.Mode off >/dev/null
  SHARE_PATH=$R $BIN config set Discovery.MDNS false >/dev/null
  $LAN exec h$h env SHARE_PATH=$R $BIN daemon > $R.log 2>&1 &
  pids+=($!)
done
for h in 1 2 3; do for i in $(seq 100); do grep -q 'daemon ready' $D-h$h.log && break; sleep 0.1; done; done
A1=$(grep -m1 'listening on /ip4/10.77' $D-h1.log | awk '{print $3}')
A2=$(grep -m1 'listening on /ip4/10.77' $D-h2.log | awk '{print $3}')
SHARE_PATH=$D-h2 $BIN connect $A1 >/dev/null
SHARE_PATH=$D-h3 $BIN connect $A1 >/dev/null
SHARE_PATH=$D-h3 $BIN connect $A2 >/dev/null
for h in 2 3; do
  SHARE_PATH=$D-h$h $LOAD sub -topic bench -n $N -timeout 120s > $D-h$h.sub 2>&1 &
  pids+=($!)
done
# Both subscriptions known to h1, and meshes formed (a heartbeat or two).
for i in $(seq 100); do
  [ "$(SHARE_PATH=$D-h1 $BIN pubsub peers bench | wc -l)" = 2 ] && break; sleep 0.1
done
sleep 2
publine=$(SHARE_PATH=$D-h1 $LOAD pub -topic bench -n $N -size $SIZE -p $P)
for h in 2 3; do
  for i in $(seq 300); do grep -q received $D-h$h.sub && break; sleep 0.1; done
  grep -q received $D-h$h.sub || kill -INT ${pids[$((h+1))]} 2>/dev/null
done
sleep 0.5
rate() { grep -o '[0-9]* msg/s, [0-9]* dropped' "$1" | head -1; }
count() { grep -o 'received [0-9]*/[0-9]*' "$1" | awk '{print $2}'; }
drops() { $LAN exec h$1 curl -s http://127.0.0.1:8080/metrics | awk '/^share_pubsub_(queue_drop|subscription_drop|publish_wait)/ {sub("share_pubsub_", ""); sub("_messages", ""); printf " %s=%s", $1, $2}'; }
echo "pubsub lan 3 hosts, ${SIZE} B x $N: h1 publishes $(echo "$publine" | grep -o '[0-9]* msg/s'); h2 got $(count $D-h2.sub) at $(rate $D-h2.sub), h3 got $(count $D-h3.sub) at $(rate $D-h3.sub)"
echo "drops: h1$(drops 1); h2$(drops 2); h3$(drops 3)"
