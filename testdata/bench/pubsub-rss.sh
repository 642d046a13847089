#!/usr/bin/env bash
# pubsub-rss.sh: RSS of a daemon subscribed to T topics (default 1000) that
# two connected peers subscribe to as well (so every topic has a mesh), on
# loopback. Prints one line: VmRSS before and after, and per topic.
set -u
. "$(dirname "$0")/common.sh"
BIN=${BIN:-/tmp/share}; LOAD=${LOAD:-/tmp/pubsubload}; T=${T:-1000}
rm -rf /tmp/pr-h*
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf /tmp/pr-h*
}
trap cleanup EXIT
for h in 1 2 3; do
  init_repo /tmp/pr-h$h >/dev/null
  SHARE_PATH=/tmp/pr-h$h $BIN daemon > /tmp/pr-h$h.log 2>&1 &
  pids+=($!)
done
for h in 1 2 3; do for i in $(seq 100); do grep -q 'daemon ready' /tmp/pr-h$h.log && break; sleep 0.1; done; done
A1=$(grep -m1 'listening on' /tmp/pr-h1.log | awk '{print $3}')
for h in 2 3; do SHARE_PATH=/tmp/pr-h$h $BIN connect $A1 >/dev/null; done
sleep 2
rss() { awk '/VmRSS/ {print $2}' /proc/${pids[0]}/status; }
before=$(rss)
for h in 1 2 3; do
  SHARE_PATH=/tmp/pr-h$h $LOAD topics -n $T -timeout 600s > /dev/null 2>&1 &
  pids+=($!)
done
for i in $(seq 300); do
  [ "$(SHARE_PATH=/tmp/pr-h1 $BIN pubsub ls | wc -l)" = "$T" ] && break; sleep 0.1
done
sleep 5 # heartbeats: meshes formed
after=$(rss)
echo "pubsub rss: $T topics subscribed (2 peers on each): ${before} KiB before, ${after} KiB after, $(( (after - before) / T )) KiB per topic"
