package fetch

import (
	"context"
	"sync"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// Finding providers: the connected peers are asked at once and peers as
// they connect (and again when identified); routing (the DHT) only when
// none of them has provided the root within routingDelay, and then each
// provider it finds is dialled and handed to the session while the lookup
// goes on.
const (
	askTimeout     = 10 * time.Second
	connectTimeout = 10 * time.Second
	routingDelay   = 300 * time.Millisecond
	// A temporary node (the CLI without a daemon) may still be filling
	// its routing table: routing waits for it this long.
	routingReadyWait = 5 * time.Second
)

// findProviders feeds the session the providers of the root until the
// fetch ends, and returns once every goroutine it started has.
func (r *run) findProviders() {
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.nw.Router != nil {
		wg.Go(r.findByRouting)
	}
	// A peer is asked when it connects and once more when identify has
	// said what it speaks: before that a kubo peer is asked over the
	// share protocol, which it refuses, and not over Bitswap.
	asked := make(map[peer.ID]int)
	r.nw.Peers.Watch(r.ctx, func(p peer.ID, up bool) {
		if !up {
			delete(asked, p) // ask again if it comes back
			return
		}
		if asked[p] == 2 {
			return
		}
		asked[p]++
		wg.Go(func() { r.ask(p) })
	})
}

// ask hands p to the session if it has the root.
func (r *run) ask(p peer.ID) {
	ctx, cancel := context.WithTimeout(r.ctx, askTimeout)
	defer cancel()
	if has, err := r.nw.Source.Has(ctx, p, r.root); err == nil && has {
		r.sess.AddProviders(p)
	}
}

// findByRouting looks the root up with the router unless connected peers
// have provided it within routingDelay.
func (r *run) findByRouting() {
	if !wait(r.ctx, routingDelay) || r.sess.Progress().Peers > 0 {
		return
	}
	ready := time.Now().Add(routingReadyWait)
	for !r.nw.Router.Ready() && time.Now().Before(ready) {
		if !wait(r.ctx, 100*time.Millisecond) {
			return
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	self := r.nw.Peers.Self()
	for ai := range r.nw.Router.FindProviders(r.ctx, r.root) {
		if ai.ID == self {
			continue
		}
		wg.Go(func() { r.connect(ai) })
	}
}

// connect dials a provider that routing found and hands it to the session.
func (r *run) connect(ai peer.AddrInfo) {
	ctx, cancel := context.WithTimeout(r.ctx, connectTimeout)
	defer cancel()
	if err := r.nw.Peers.Connect(ctx, ai); err != nil {
		r.f.log.Debug("provider unreachable", "peer", ai.ID, "err", err)
		return
	}
	r.sess.AddProviders(ai.ID)
}

// wait waits for d, or less if ctx ends; it reports whether ctx is alive.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
