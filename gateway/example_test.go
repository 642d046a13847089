package gateway_test

import (
	"context"
	"net/http"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/metrics"
)

// node is what the daemon's node would be: the blockstore (and the
// exchange, for blocks that are not local) behind Getter.
type node struct{ blocks share.Getter }

func (n node) Getter(ctx context.Context) share.Getter { return n.blocks }

func (n node) Status(ctx context.Context) gateway.Status {
	return gateway.Status{ID: "12D3KooW..."}
}

func Example() {
	m := metrics.NewNode()
	h := gateway.New(node{blocks: dag.NewMemStore()}, gateway.Options{Metrics: m.Registry})
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h, ReadHeaderTimeout: 10 * time.Second}
	_ = srv // the daemon runs srv.ListenAndServe and Shutdown
}
