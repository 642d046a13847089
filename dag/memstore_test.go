package dag_test

import (
	"testing"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := dag.NewMemStore()
		return storetest.Store{Getter: s, Put: s.Put}
	})
}
