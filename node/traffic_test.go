package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/pin"
)

// TestStatusIdleHasNoNull: an idle node with no network, pins or
// transfers describes itself with empty lists, never null.
func TestStatusIdleHasNoNull(t *testing.T) {
	n, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, err := json.Marshal(n.Status(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Fatalf("status of an idle node: %s", b)
	}
}

// TestStatusTraffic: after a fetch, each side's status (the page's and
// status.json's source) says what moved: the peer's protocol, bytes and
// blocks in on the getter and out on the provider, the node's totals, and
// the sampler's throughput history.
func TestStatusTraffic(t *testing.T) {
	mn := newMemNet(t)
	a, b := mn.node(), mn.node()
	const size = 3 << 20
	c, _ := addRandom(t, a, size, 7)
	connect(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.PinAdd(ctx, c, pin.Recursive, "", FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := a.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := b.Status(ctx)
	if len(got.Peers) != 1 {
		t.Fatalf("getter's peers: %+v", got.Peers)
	}
	if p := got.Peers[0]; p.ID != a.net.Host.ID().String() || p.Protocol != "share" || p.BytesIn < size || p.BlocksIn < int64(st.Blocks) || p.BytesOut != 0 || p.Relayed {
		t.Errorf("getter's view of the provider: %+v, want %d bytes and %d blocks in over share", p, size, st.Blocks)
	}
	if got.Traffic.BytesIn != got.Peers[0].BytesIn {
		t.Errorf("getter's total in %d, its one peer's %d", got.Traffic.BytesIn, got.Peers[0].BytesIn)
	}
	// The provider counts a block once written, maybe after the getter has it.
	var served gateway.Status
	waitFor(t, 10*time.Second, func() bool {
		served = a.Status(ctx)
		return len(served.Peers) == 1 && served.Peers[0].BlocksOut >= got.Peers[0].BlocksIn
	}, func() string { return fmt.Sprintf("provider's view of the getter: %+v", served.Peers) })
	if p := served.Peers[0]; p.BytesOut < size || p.Protocol != "share" || served.Traffic.BytesOut != p.BytesOut {
		t.Errorf("provider's view of the getter: %+v, total out %d", p, served.Traffic.BytesOut)
	}
	// The sampler adds a point a second; the fetch's bytes are in them.
	waitFor(t, 10*time.Second, func() bool {
		served = a.Status(ctx)
		return len(served.Traffic.Out) >= 1 && sum(served.Traffic.Out) >= size
	}, func() string { return fmt.Sprintf("provider's history out: %v", served.Traffic.Out) })
}

func sum(xs []int64) (s int64) {
	for _, x := range xs {
		s += x
	}
	return s
}
