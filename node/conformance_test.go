package node

import (
	"testing"
	"time"

	"github.com/share-p2p/share/storetest"
)

// TestLocalGetterConformance runs the share.Getter suite over the node's
// local view of the blockstore (fetch.Local), with blocks put as an add and a fetch do: through a Batch.
func TestLocalGetterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		n, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b := n.Blocks.NewBatch()
		t.Cleanup(func() {
			b.Close()
			n.Close()
		})
		return storetest.Store{Getter: n.local(), Put: b.Put, Flush: b.Commit}
	})
}

// TestNetworkGetterConformance runs the suite over the getters that fetch
// from the network (fetch.Getter: the gateway's and ls's): the blocks are
// put on a provider, connected on an in-memory network, and each Get of a
// missing one fetches it (and keeps it).
func TestNetworkGetterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		mn := newMemNet(t)
		getter, prov := mn.node(), mn.node()
		connect(t, getter, prov)
		g := getter.fetcher.Getter(t.Context(), FetchOptions{Timeout: 2 * time.Second})
		t.Cleanup(g.Close)
		return storetest.Store{Getter: g, Put: prov.Blocks.Put, Fetches: true}
	})
}
