#!/usr/bin/env bash
# pubsub-rss.sh: RSS of a daemon subscribed to T topics (default 1000) that
# two connected peers subscribe to as well (so every topic has a mesh), on
# loopback. Each daemon's T subscriptions are held by one pubsubload on one
# API stream, so the figure is the router's; PER_TOPIC=1 holds one API
# stream per topic instead (what T `share pubsub sub` cost the daemon).
# Prints one line: VmRSS before and after, and per topic.
# Env: BIN, LOAD, T, PER_TOPIC, PR (/tmp/pr: the repositories' prefix).
set -u
. "$(dirname "$0")/common.sh"
BIN=${BIN:-/tmp/share}; LOAD=${LOAD:-/tmp/pubsubload}; T=${T:-1000}
PR=${PR:-/tmp/pr}; how=one; [ -n "${PER_TOPIC:-}" ] && how=per-topic
rm -rf $PR-h*
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf $PR-h*
}
trap cleanup EXIT
for h in 1 2 3; do
  init_repo $PR-h$h >/dev/null
  SHARE_PATH=$PR-h$h $BIN daemon > $PR-h$h.log 2>&1 &
  pids+=($!)
done
for h in 1 2 3; do for i in $(seq 100); do grep -q 'daemon ready' $PR-h$h.log && break; sleep 0.1; done; done
A1=$(grep -m1 'listening on' $PR-h1.log | awk '{print $3}')
for h in 2 3; do SHARE_PATH=$PR-h$h $BIN connect $A1 >/dev/null; done
sleep 2
rss() { awk '/VmRSS/ {print $2}' /proc/${pids[0]}/status; }
before=$(rss)
for h in 1 2 3; do
  SHARE_PATH=$PR-h$h $LOAD topics -n $T ${PER_TOPIC:+-per-topic} -timeout 600s > /dev/null 2>&1 &
  pids+=($!)
done
for i in $(seq 300); do
  [ "$(SHARE_PATH=$PR-h1 $BIN pubsub ls | wc -l)" = "$T" ] && break; sleep 0.1
done
sleep 5 # heartbeats: meshes formed
after=$(rss)
echo "pubsub rss: $T topics subscribed (2 peers on each, $how API stream): ${before} KiB before, ${after} KiB after, $(( (after - before) * 1024 / T )) B per topic"
