package gateway

import (
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/storetest"
)

// TestTimeoutGetterConformance runs the share.Getter suite over the
// timeout wrapper, around a MemStore and around a getter that recycles
// buffers (whose releases the wrapper must pass through).
func TestTimeoutGetterConformance(t *testing.T) {
	t.Run("MemStore", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s := dag.NewMemStore()
			return storetest.Store{Getter: withTimeout(s, time.Minute), Put: s.Put}
		})
	})
	t.Run("Copying", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			n := newCopyNode(&fakeNode{store: dag.NewMemStore()})
			return storetest.Store{Getter: withTimeout(n.Getter(t.Context()), time.Minute), Put: n.store.Put}
		})
	})
}
