package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/share-p2p/share/bitswap"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p/peer"
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

// connectKubo connects n to k.
func connectKubo(t *testing.T, n *Node, k *kubotest.Kubo) {
	t.Helper()
	ai, err := peer.AddrInfoFromString(k.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.net.Host.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
}

// catFrom cats c on n and returns the bytes and what came from whom.
func catFrom(t *testing.T, n *Node, c string) ([]byte, []exchange.PeerStat) {
	t.Helper()
	root, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var from []exchange.PeerStat
	_, err = n.Cat(context.Background(), root, &buf, FetchOptions{Timeout: 20 * time.Second, Progress: func(p Progress) {
		if p.Phase == "done" {
			from = p.From
		}
	}})
	if err != nil {
		t.Fatalf("cat %s: %v", c, err)
	}
	return buf.Bytes(), from
}

// share fetches over Bitswap what kubo added, in kubo's default format
// (CIDv0, sha2-256, dag-pb leaves) and with --cid-version 1 (raw
// leaves), byte for byte, and says the bytes came from kubo over Bitswap.
func TestShareGetsFromKubo(t *testing.T) {
	k := kubotest.Start(t)
	data := make([]byte, 3<<20+4321)
	rand.NewChaCha8([32]byte{23}).Read(data)
	for _, args := range [][]string{{"add", "-Q"}, {"add", "-Q", "--cid-version", "1"}} {
		out, err := k.Try(data, args...)
		if err != nil {
			t.Fatalf("kubo %v: %v", args, err)
		}
		c := strings.TrimSpace(string(out))
		n := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"Network": `"ipfs"`})
		connectKubo(t, n, k)
		got, from := catFrom(t, n, c)
		if !bytes.Equal(got, data) {
			t.Fatalf("cat %s (kubo %v): %d bytes, not the %d kubo added", c, args, len(got), len(data))
		}
		if len(from) != 1 || from[0].Peer.String() != k.ID || from[0].Protocol != bitswap.Protocol120 || from[0].Bytes < int64(len(data)) {
			t.Fatalf("cat %s: fetched from %+v, want all of it from kubo %s over Bitswap", c, from, k.ID)
		}
	}
}

// One file from a kubo and a share provider at once: the getter asks the
// share provider over the share protocol and kubo over Bitswap, and both
// send part of it (kubo adds it in share's format, so both have the
// same blocks).
func TestMixedKuboShareProviders(t *testing.T) {
	k := kubotest.Start(t)
	data := make([]byte, 48<<20)
	rand.NewChaCha8([32]byte{29}).Read(data)
	out, err := k.Try(data, "add", "-Q", "--cid-version", "1", "--raw-leaves", "--hash", "blake3", "--chunker", "size-1048576")
	if err != nil {
		t.Fatal(err)
	}
	c := strings.TrimSpace(string(out))
	ipfs := map[string]string{"Network": `"ipfs"`}
	opts := NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
	prov := startNode(t, opts, nil, ipfs)
	if root, err := prov.Add(context.Background(), "f", bytes.NewReader(data), AddOptions{}, nil); err != nil || root.String() != c {
		t.Fatalf("share added %v (%v), kubo %s", root, err, c)
	}
	getter := startNode(t, opts, nil, ipfs)
	connect(t, getter, prov)
	connectKubo(t, getter, k)
	got, from := catFrom(t, getter, c)
	if !bytes.Equal(got, data) {
		t.Fatalf("cat: %d bytes, not the %d added", len(got), len(data))
	}
	want := map[string]string{k.ID: bitswap.Protocol120, prov.net.Host.ID().String(): prov.net.Host.Protocol("blocks")}
	for _, f := range from {
		if want[f.Peer.String()] != f.Protocol || f.Bytes == 0 {
			t.Errorf("%s sent %d bytes over %s", f.Peer, f.Bytes, f.Protocol)
		}
		delete(want, f.Peer.String())
	}
	if len(want) > 0 {
		t.Fatalf("nothing came from %v: %+v", want, from)
	}
	t.Logf("from: %+v", from)
}

// kubo's DHT server takes many ADD_PROVIDER messages on one stream (the
// batches of dht.Provide), and finds every record: share's LAN DHT, whose
// only peer is kubo, sends 300 keys on one stream; kubo's findprovs
// finds share as the provider of the first, a middle and the last.
func TestKuboTakesBatchedProviders(t *testing.T) {
	k := kubotest.Start(t)
	n := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"Network": `"ipfs"`})
	connectKubo(t, n, k)
	lan := n.net.LAN
	deadline := time.Now().Add(20 * time.Second)
	for lan.RoutingTableSize() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("kubo not in share's LAN DHT table after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	keys := make([][]byte, 300)
	cids := make([]cid.Cid, len(keys))
	for i := range keys {
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}.Sum([]byte("batched provide " + strconv.Itoa(i) + t.Name()))
		if err != nil {
			t.Fatal(err)
		}
		keys[i], cids[i] = c.Hash(), c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := lan.ProvideStats(ctx, keys)
	if err != nil {
		t.Fatalf("provide to kubo: %v (%+v)", err, st)
	}
	if st.Requests != len(keys) || st.Streams != 1 || st.Failed != 0 {
		t.Fatalf("figures %+v: want %d ADD_PROVIDERs on one stream, none failed", st, len(keys))
	}
	for _, i := range []int{0, len(keys) / 2, len(keys) - 1} {
		out, err := k.Try(nil, "routing", "findprovs", "-n", "1", "--timeout", "10s", cids[i].String())
		if err != nil || !strings.Contains(string(out), n.net.Host.ID().String()) {
			t.Fatalf("kubo's findprovs of key %d: %q, %v; want share's %s", i, out, err, n.net.Host.ID())
		}
	}
	// A key share did not provide is not found: the finds above are the
	// records' doing.
	other, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}.Sum([]byte("not provided" + t.Name()))
	if out, _ := k.Try(nil, "routing", "findprovs", "-n", "1", "--timeout", "2s", other.String()); strings.Contains(string(out), n.net.Host.ID().String()) {
		t.Fatalf("kubo finds share as the provider of a key it never provided: %q", out)
	}
}
