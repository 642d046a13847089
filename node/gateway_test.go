package node

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gateway"
)

// TestGatewayFetchesFromNetwork: the gateway of a node that lacks the
// content serves it from a connected provider (ranges too), and the
// blocks stay cached afterwards.
func TestGatewayFetchesFromNetwork(t *testing.T) {
	prov, n := onlineNode(t), onlineNode(t)
	c, data := addRandom(t, prov, 6<<20+9, 11)
	connect(t, n, prov)
	gw := gateway.New(n, gateway.Options{})

	// A server ends each request's context when the handler returns: the
	// gateway stores what it fetched then.
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest("GET", "/ipfs/"+c.String(), nil).WithContext(ctx))
	cancel()
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), data) {
		t.Fatalf("gateway over the network: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	req := httptest.NewRequest("GET", "/ipfs/"+c.String(), nil)
	req.Header.Set("Range", "bytes=3000000-3000099")
	rec = httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	if rec.Code != 206 || !bytes.Equal(rec.Body.Bytes(), data[3000000:3000100]) {
		t.Fatalf("range over the network: %d %q", rec.Code, rec.Body.Bytes())
	}
	waitFor(t, 10*time.Second, func() bool {
		local, err := isLocal(n, c)
		if err != nil {
			t.Fatal(err)
		}
		return local
	}, func() string { return "blocks the gateway fetched were not cached" })
	// The gateway's fetches go through the one fetcher: they count.
	if got := n.Metrics().BlocksFetched.Value(); got < 8 {
		t.Fatalf("share_blocks_fetched_total %d after the gateway fetched a DAG of 8 blocks", got)
	}
}

// isLocal reports whether every block of the DAG under root is in n's
// store.
func isLocal(n *Node, root cid.Cid) (bool, error) {
	err := dag.Walk(context.Background(), n.local(), root, dag.WalkOptions{CheckLeaves: true}, func(cid.Cid) error { return nil })
	if errs.Is(errs.NotFound, err) {
		return false, nil
	}
	return err == nil, err
}
