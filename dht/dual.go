package dht

import (
	"context"
	"errors"
	"sync"

	"github.com/share-p2p/share/p2p/peer"
)

// LANProtocol returns the protocol ID of kubo's LAN DHT on a network:
// "/ipfs/lan/kad/1.0.0".
func LANProtocol(network string) string { return "/" + network + "/lan/kad/1.0.0" }

// Dual is the DHTs of a node taken together: WAN alone on share's
// networks, and on network ipfs kubo's pair, WAN (ScopeWAN,
// /ipfs/kad/1.0.0) and LAN (ScopeLAN, /ipfs/lan/kad/1.0.0), so that a node
// meets kubo in whichever DHT kubo admits it to. Provide goes to both
// (kubo's sweeping provider does the same), FindProviders merges both,
// Bootstrap fills both. LAN is nil on share's networks.
type Dual struct {
	WAN, LAN *DHT
}

// each returns the DHTs that are there.
func (d *Dual) each() []*DHT {
	if d.LAN == nil {
		return []*DHT{d.WAN}
	}
	return []*DHT{d.WAN, d.LAN}
}

// all runs f on each DHT at once and succeeds if one did: a DHT whose
// table is empty (the WAN one on a LAN) fails every time and must not
// fail the other. Errors are joined when all failed.
func (d *Dual) all(f func(*DHT) error) error {
	dhts := d.each()
	if len(dhts) == 1 {
		return f(dhts[0])
	}
	errs := make([]error, len(dhts))
	var wg sync.WaitGroup
	for i, x := range dhts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(x) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// Provide announces keys in each DHT; it fails only if all failed.
func (d *Dual) Provide(ctx context.Context, keys [][]byte) error {
	return d.all(func(x *DHT) error { return x.Provide(ctx, keys) })
}

// Bootstrap bootstraps each DHT from peers (each keeps those its scope
// admits); it fails only if all failed.
func (d *Dual) Bootstrap(ctx context.Context, peers []peer.AddrInfo) error {
	return d.all(func(x *DHT) error { return x.Bootstrap(ctx, peers) })
}

// RoutingTableSize returns the number of peers in the routing tables.
func (d *Dual) RoutingTableSize() int {
	n := 0
	for _, x := range d.each() {
		n += x.RoutingTableSize()
	}
	return n
}

// FindProviders streams the providers of key that either DHT finds, each
// peer once, as DHT.FindProviders does; the channel closes when both
// lookups ended, max providers were sent (max <= 0: no limit), or ctx
// ended.
func (d *Dual) FindProviders(ctx context.Context, key []byte, max int) <-chan peer.AddrInfo {
	if d.LAN == nil {
		return d.WAN.FindProviders(ctx, key, max)
	}
	ctx, cancel := context.WithCancel(ctx)
	in := []<-chan peer.AddrInfo{d.WAN.FindProviders(ctx, key, max), d.LAN.FindProviders(ctx, key, max)}
	out := make(chan peer.AddrInfo, 16)
	go func() {
		defer close(out)
		defer cancel() // ends the lookups; they close their channels
		merge(ctx, in, out, max)
	}()
	return out
}

// merge forwards what the channels in send, each peer once, until they
// closed or max were sent.
func merge(ctx context.Context, in []<-chan peer.AddrInfo, out chan<- peer.AddrInfo, max int) {
	sent := map[peer.ID]bool{}
	for open := len(in); open > 0; {
		var ai peer.AddrInfo
		var ok bool
		select {
		case ai, ok = <-in[0]:
			if !ok {
				in[0] = nil
				open--
				continue
			}
		case ai, ok = <-in[1]:
			if !ok {
				in[1] = nil
				open--
				continue
			}
		}
		if sent[ai.ID] {
			continue
		}
		sent[ai.ID] = true
		select {
		case out <- ai:
		case <-ctx.Done():
			return
		}
		if max > 0 && len(sent) >= max {
			return
		}
	}
}

// Close stops both DHTs.
func (d *Dual) Close() error {
	for _, x := range d.each() {
		x.Close()
	}
	return nil
}
