package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/internal/kubotest"
)

// kubo fetches over Bitswap what a share node on network ipfs serves:
// a file of our default CIDs (BLAKE3, CIDv1, raw leaves) and a raw block
// under SHA2-256, byte for byte.
func TestKuboCatsFromShare(t *testing.T) {
	k := kubotest.Start(t)
	n := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"Network": `"ipfs"`})
	if n.net.Bitswap == nil {
		t.Fatal("no Bitswap on network ipfs")
	}
	data := make([]byte, 5<<20+12345)
	rand.NewChaCha8([32]byte{19}).Read(data)
	root, err := n.Add(context.Background(), "f", bytes.NewReader(data), AddOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("a raw block under sha2-256")
	sha, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}.Sum(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Blocks.Put(context.Background(), sha, small); err != nil {
		t.Fatal(err)
	}
	addr := n.net.Host.Addrs()[0].String() + "/p2p/" + n.net.Host.ID().String()
	k.Run("swarm", "connect", addr)
	for _, tc := range []struct {
		c    cid.Cid
		want []byte
	}{{root, data}, {sha, small}} {
		got := k.Run("cat", tc.c.String())
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("kubo cat %s: %d bytes, want the %d added", tc.c, len(got), len(tc.want))
		}
	}
	if served := n.Metrics().BlocksServed.Value(); served < 6 {
		t.Fatalf("share_blocks_served_total %d, want the 6 blocks kubo fetched at least", served)
	}
}

// Loopback throughput of kubo's `ipfs cat` from a share node (our
// Bitswap server) against the same from another kubo, in one run. Set
// SHARE_KUBO_BENCH=1 (and SHARE_KUBO_BENCH_MIB for the size, default 256).
func TestKuboCatSpeed(t *testing.T) {
	if os.Getenv("SHARE_KUBO_BENCH") != "1" {
		t.Skip("SHARE_KUBO_BENCH=1 measures")
	}
	mib := 256
	if s := os.Getenv("SHARE_KUBO_BENCH_MIB"); s != "" {
		mib, _ = strconv.Atoi(s)
	}
	a, b := kubotest.Start(t), kubotest.Start(t)
	n := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"Network": `"ipfs"`})
	data := make([]byte, mib<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	root, err := n.Add(context.Background(), "f", bytes.NewReader(data), AddOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Run("swarm", "connect", n.net.Host.Addrs()[0].String()+"/p2p/"+n.net.Host.ID().String())
	cat := func(k *kubotest.Kubo) float64 {
		start := time.Now()
		got := k.Run("cat", root.String())
		d := time.Since(start)
		if !bytes.Equal(got, data) {
			t.Fatal("kubo cat: wrong bytes")
		}
		return float64(len(data)) / d.Seconds() / 1e6
	}
	fromShare := cat(a)
	b.Run("swarm", "connect", a.Addr)
	fromKubo := cat(b)
	t.Logf("%d MiB: share -> kubo %.0f MB/s, kubo -> kubo %.0f MB/s, ratio %.2f", mib, fromShare, fromKubo, fromShare/fromKubo)
}
