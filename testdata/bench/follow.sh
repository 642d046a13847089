#!/usr/bin/env bash
# follow.sh: update propagation to followers in the in-memory network
# (node TestFollowPropagation): a publisher and N followers (default 50),
# each follower linked to three random nodes before it, links of 5 ms one
# way. Prints one line per round (ROUNDS, default 3): the time until all
# followers hold the new record and the median follower's, the copies of
# the record the followers received (first copies and duplicates), and how
# many folders were written within 10 s.
# Env: N (50), ROUNDS (3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
for _ in $(seq "${ROUNDS:-3}"); do
  SHARE_FOLLOWERS=${N:-50} go test ./node -run '^TestFollowPropagation$' -count=1 -v 2>&1 |
    sed -n 's/.*follow_net_test.go:[0-9]*: //p' | grep followers
done
