package blockstore

import (
	"testing"

	"github.com/share-p2p/share/storetest"
)

// TestConformance runs the share.Getter suite over the store, with blocks
// put one by one (inline), through a small Batch (inline, through the WAL)
// and through a Batch that writes sstables (blocks above 256 KiB in parts),
// and with the miss filter built before the first Put.
func TestConformance(t *testing.T) {
	t.Run("Filtered", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s := openTest(t, t.TempDir(), &Options{SmallBatch: 1})
			t.Cleanup(func() { s.Close() })
			buildFilter(t, s)
			b := s.NewBatch()
			t.Cleanup(func() { b.Close() })
			return storetest.Store{Getter: s, Put: b.Put, Flush: b.Commit}
		})
	})
	t.Run("Put", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s := openTest(t, t.TempDir(), nil)
			t.Cleanup(func() { s.Close() })
			return storetest.Store{Getter: s, Put: s.Put}
		})
	})
	for _, tc := range []struct {
		name       string
		smallBatch int
	}{{"SmallBatch", 0}, {"Batch", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Store {
				s := openTest(t, t.TempDir(), &Options{SmallBatch: tc.smallBatch})
				b := s.NewBatch()
				t.Cleanup(func() {
					b.Close()
					s.Close()
				})
				return storetest.Store{Getter: s, Put: b.Put, Flush: b.Commit}
			})
		})
	}
}
