#!/usr/bin/env bash
# install.sh [OUT]: builds kubo, the reference IPFS implementation, for the
# tests that check share against it (SHARE_KUBO), and prints its path.
#
# `go install github.com/ipfs/kubo/cmd/ipfs@VERSION` would be the one-liner,
# but kubo's go.mod replaces go-libp2p with a fork that the Go module proxy
# does not serve, and `go install pkg@version` refuses modules with replace
# directives. So this builds kubo's module from the proxy as a main module
# of its own: without the replace (upstream go-libp2p, the version kubo
# requires) and with the quic-go versions that go-libp2p builds with. kubo
# never enters share's go.mod. The binary is cached in OUT (default
# /var/cache/share-ci/ipfs-VERSION) and rebuilt only when missing.
set -euo pipefail
version=v0.43.1
out=${1:-/var/cache/share-ci/ipfs-$version}
if [[ -x $out ]] && "$out" version 2>/dev/null | grep -q "${version#v}"; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
dir=$(GOFLAGS= go mod download -json "github.com/ipfs/kubo@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r "$dir"/. "$src"
chmod -R u+w "$src"
cd "$src"
sed -i '/^replace github.com\/libp2p\/go-libp2p => /d' go.mod
go mod edit -require=github.com/quic-go/quic-go@v0.60.0 -require=github.com/quic-go/webtransport-go@v0.11.1
GOFLAGS=-mod=mod GOSUMDB=off go build -o "$out.tmp" ./cmd/ipfs >&2
mv "$out.tmp" "$out"
echo "$out"
