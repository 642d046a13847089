#!/usr/bin/env bash
# kubo-meta-cids.sh DIR >> kubo-cids.tsv: the CIDs kubo computes with
# --preserve-mode and --preserve-mtime (UnixFS 1.5 metadata), for inputs it
# writes in DIR: the tree meta (files, a symlink and directories of known
# modes and modification times) and the directories mflat-5349 and
# mhamt-5350 (as kubo-cids.sh's flat-5349 and hamt-5350, every file 0644 and
# every time 2000-01-01). dag/kubo_test.go writes the same inputs.
# Each CID is `ipfs add -r --hidden --pin=false` (share adds hidden files;
# kubo 0.43.1 fails with -n on directories with metadata, "ipld: could not
# find"), so the blocks stay in the repository until its gc. Needs IPFS_PATH
# (a repository of its own) and IPFS (kubo's binary).
set -euo pipefail
out=${1:?usage: kubo-meta-cids.sh DIR}
ipfs=${IPFS:-ipfs}
export TZ=UTC
mkdir -p "$out" && cd "$out"
rm -rf meta mflat-5349 mhamt-5350
mkdir -p meta/sub meta/tmp
printf '#!/bin/sh\necho hello\n' > meta/run.sh
seq 1 60000 > meta/data.txt
: > meta/empty
printf 's\n' > meta/suid
printf 'old\n' > meta/old.txt
printf 'x\n' > meta/sub/x.txt
: > meta/tmp/.keep
ln -s run.sh meta/link
chmod 0755 meta/run.sh; chmod 0644 meta/data.txt meta/tmp/.keep; chmod 0600 meta/empty
chmod 4755 meta/suid; chmod 0444 meta/old.txt; chmod 0640 meta/sub/x.txt
chmod 0750 meta/sub; chmod 1777 meta/tmp; chmod 0755 meta
touch -d '2020-01-02 03:04:05.123456789' meta/run.sh
touch -d '2021-06-07 08:09:10' meta/data.txt
touch -d '1999-12-31 23:59:59.5' meta/empty
touch -d '2001-01-01 00:00:00' meta/suid
touch -d '1960-01-01 00:00:00.25' meta/old.txt
touch -d '2011-01-01 00:00:00' meta/sub/x.txt
touch -d '2012-01-01 00:00:00' meta/tmp/.keep meta/tmp
touch -h -d '2019-01-01 00:00:00' meta/link
touch -d '2010-01-01 00:00:00.5' meta/sub
touch -d '2022-02-02 02:02:02' meta
for n in 5349 5350; do
  d=mflat-$n; [ $n = 5350 ] && d=mhamt-$n
  mkdir "$d"
  for ((i = 0; i < n; i++)); do printf '%d\n' $i > "$d/$(printf 'file-%06d.txt' $i)"; done
  chmod 0644 "$d"/*; chmod 0755 "$d"
  touch -d '2000-01-01 00:00:00' "$d"/* "$d"
done
settings=(
  "kubo-default|"
  "v1-sha256|--cid-version=1"
  "v1-blake3|--cid-version=1 --hash=blake3"
)
metas=("--preserve-mode" "--preserve-mtime" "--preserve-mode --preserve-mtime")
# root PATH ARGS...: the CID kubo gives PATH (the line of its own name:
# -Q sometimes printed a child's CID when a directory holds metadata).
root() {
  local p=$1; shift
  # shellcheck disable=SC2086
  "$ipfs" add -r --hidden --pin=false "$@" "$p" | awk -v n="$(basename "$p")" '$1 == "added" && $3 == n { print $2 }'
}
row() { # NAME CHUNK SETTING FLAGS
  # shellcheck disable=SC2086
  printf '%s\t-\tsize-%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(root "$1" --chunker=size-$2 $4)"
}
for s in "${settings[@]}"; do
  name=${s%%|*} flags=${s#*|}
  for m in "${metas[@]}"; do
    for chunk in 256 262144; do
      for p in meta/run.sh meta/data.txt meta/empty meta/suid meta/old.txt meta/link meta/sub meta; do
        row "$p" $chunk "$name" "${flags:+$flags }$m"
      done
    done
  done
done
for s in "${settings[0]}" "${settings[2]}"; do
  name=${s%%|*} flags=${s#*|}
  for d in mflat-5349 mhamt-5350; do
    row $d 262144 "$name" "${flags:+$flags }--preserve-mode --preserve-mtime"
  done
done
