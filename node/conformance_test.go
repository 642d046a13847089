package node

import (
	"testing"

	"github.com/share-p2p/share/storetest"
)

// TestLocalGetterConformance runs the share.Getter suite over the node's
// local getter, with blocks put as an add and a fetch do: through a Batch.
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
		return storetest.Store{Getter: n.getter(), Put: b.Put, Flush: b.Commit}
	})
}
