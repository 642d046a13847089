#!/usr/bin/env bash
# kubo-cids.sh CORPUS > kubo-cids.tsv: the CIDs kubo computes for the corpus
# of make-corpus.sh (in CORPUS) under each of kubo's add settings.
#
# Besides make-corpus.sh's files it adds two directories to CORPUS, around
# kubo's HAMT threshold for CIDv0 (name length 15 + CID length 34 = 49 bytes
# an entry; 256 KiB / 49 = 5349.9): flat-5349 and hamt-5350, holding files
# file-NNNNNN.txt (six digits, from 0) whose content is "N\n".
# Needs IPFS_PATH (a repository of its own) and IPFS (kubo's binary).
set -euo pipefail
corpus=${1:?usage: kubo-cids.sh CORPUS}
ipfs=${IPFS:-ipfs}
cd "$corpus"
for n in 5349 5350; do
  d=flat-$n; [ $n = 5350 ] && d=hamt-$n
  [ -d "$d" ] && continue
  mkdir "$d.tmp"
  for ((i = 0; i < n; i++)); do printf '%d\n' $i > "$d.tmp/$(printf 'file-%06d.txt' $i)"; done
  mv "$d.tmp" "$d"
done
settings=(
  "kubo-default|"
  "v0-raw|--cid-version=0 --raw-leaves"
  "v1-sha256|--cid-version=1"
  "v1-sha256-pb|--cid-version=1 --raw-leaves=false"
  "v1-blake3|--cid-version=1 --hash=blake3"
  "v1-blake3-pb|--cid-version=1 --hash=blake3 --raw-leaves=false"
)
files="hello.txt empty.bin one.bin small.bin c256k.bin c256k+1.bin m1.bin m1+1.bin m10.bin"
printf 'name\tsize\tchunker\tsetting\tflags\tcid\n'
for s in "${settings[@]}"; do
  name=${s%%|*} flags=${s#*|}
  for chunk in 262144 1048576; do
    for f in $files; do
      # shellcheck disable=SC2086
      printf '%s\t%s\tsize-%s\t%s\t%s\t%s\n' "$f" "$(stat -c %s "$f")" $chunk "$name" "$flags" \
        "$("$ipfs" add -n -Q --chunker=size-$chunk $flags "$f")"
    done
    for d in tree flat-5349 hamt-5350; do
      printf '%s\t-\tsize-%s\t%s\t%s\t%s\n' "$d" $chunk "$name" "$flags" \
        "$("$ipfs" add -n -Q -r --chunker=size-$chunk $flags "$d")"
    done
  done
done
# Deeper trees (more than 174 leaves) for the settings with dag-pb leaves.
for s in "${settings[@]:0:2}" "${settings[3]}"; do
  name=${s%%|*} flags=${s#*|}
  printf 'm200.bin\t%s\tsize-262144\t%s\t%s\t%s\n' "$(stat -c %s m200.bin)" "$name" "$flags" \
    "$("$ipfs" add -n -Q --chunker=size-262144 $flags m200.bin)"
done
