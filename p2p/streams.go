package p2p

import (
	"context"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// Streams is a host as the protocols see it: a share.RoutingHost (so a
// share.StreamHost too), whose streams are the host's *Stream. The block
// exchange and the DHT take it, not the Host, so that they depend only
// on the interfaces of package share.
type Streams struct{ h *Host }

var (
	_ share.RoutingHost = Streams{}
	_ share.Stream      = (*Stream)(nil)
)

// Streams returns h as a share.RoutingHost.
func (h *Host) Streams() Streams { return Streams{h} }

// NewStream implements share.StreamHost: Host.NewStream of one protocol.
func (s Streams) NewStream(ctx context.Context, p peer.ID, proto string) (share.Stream, error) {
	st, err := s.h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, err // not a nil *Stream in a non-nil interface
	}
	return st, nil
}

// SetHandler implements share.StreamHost.
func (s Streams) SetHandler(proto string, h func(share.Stream)) {
	s.h.SetHandler(proto, func(st *Stream) { h(st) })
}

// RemoveHandler implements share.StreamHost.
func (s Streams) RemoveHandler(proto string) { s.h.RemoveHandler(proto) }

// Connected implements share.RoutingHost.
func (s Streams) Connected(p peer.ID) bool { return s.h.Connected(p) }

// Peers returns the peers the host has a connection to.
func (s Streams) Peers() []peer.ID { return s.h.Peers() }

// Addrs implements share.RoutingHost: the peerstore's addresses of p.
func (s Streams) Addrs(p peer.ID) []ma.Multiaddr { return s.h.ps.Addrs(p) }

// AddTempAddrs implements share.RoutingHost: the addresses are kept for
// TempAddrTTL.
func (s Streams) AddTempAddrs(p peer.ID, addrs []ma.Multiaddr) {
	s.h.ps.AddAddrs(p, addrs, TempAddrTTL)
}

// SupportsProtocol implements share.RoutingHost.
func (s Streams) SupportsProtocol(p peer.ID, proto string) bool {
	return s.h.ps.SupportsProtocol(p, proto)
}

// WatchProtocol implements share.RoutingHost over a subscription to the
// host's events: each Identified event of a peer that lists proto.
func (s Streams) WatchProtocol(proto string, fn func(peer.AddrInfo)) (stop func()) {
	sub := s.h.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.Events() {
			if e.Kind == Identified && s.h.ps.SupportsProtocol(e.Peer, proto) {
				fn(peer.AddrInfo{ID: e.Peer, Addrs: s.h.ps.Addrs(e.Peer)})
			}
		}
	}()
	return func() {
		sub.Close()
		<-done
	}
}
