package dht

import (
	"context"
	"fmt"

	"github.com/share-p2p/share/p2p/peer"
)

// handle answers an inbound request (server mode).
func (d *DHT) handle(ctx context.Context, req Request) (*Message, error) {
	from := peer.AddrInfo{ID: req.From.ID, Addrs: d.cfg.Scope.Filter(req.From.Addrs)}
	if req.FromServer {
		// The sender serves the DHT too: it may enter the table.
		d.see(from)
	}
	m := req.Msg
	switch m.Type {
	case Ping:
		return &Message{Type: Ping}, nil
	case FindNode:
		if len(m.Key) == 0 {
			return nil, fmt.Errorf("%w: FIND_NODE without key", ErrBadMessage)
		}
		resp := &Message{Type: FindNode, Key: m.Key}
		if peer.ID(m.Key) == d.self {
			resp.CloserPeers = append(resp.CloserPeers, PeerOf(d.selfInfo()))
		}
		resp.CloserPeers = append(resp.CloserPeers, d.closerPeers(KeyOf(m.Key), from.ID)...)
		return resp, nil
	case GetProviders:
		if !ValidKey(m.Key) {
			return nil, fmt.Errorf("%w: GET_PROVIDERS key is not a multihash", ErrBadMessage)
		}
		resp := &Message{Type: GetProviders, Key: m.Key}
		for _, ai := range d.cfg.Store.Providers(m.Key, d.cfg.MaxProviders) {
			// The store may be shared with a DHT of another scope.
			ai.Addrs = d.cfg.Scope.Filter(ai.Addrs)
			resp.ProviderPeers = append(resp.ProviderPeers, PeerOf(ai))
		}
		resp.CloserPeers = d.closerPeers(KeyOf(m.Key), from.ID)
		return resp, nil
	case AddProvider:
		if !ValidKey(m.Key) {
			return nil, fmt.Errorf("%w: ADD_PROVIDER key is not a multihash", ErrBadMessage)
		}
		for _, p := range m.ProviderPeers {
			// A record is accepted only from the peer it names: one for
			// somebody else is an attempt to redirect their traffic, so
			// the whole message is refused and the sender leaves the
			// table.
			if p.ID != from.ID {
				d.rt.remove(from.ID)
				return nil, fmt.Errorf("%w: ADD_PROVIDER from %s names %s", ErrBadMessage, from.ID, p.ID)
			}
		}
		for _, p := range m.ProviderPeers {
			addrs := d.cfg.Scope.Filter(p.Addrs)
			if len(addrs) == 0 {
				addrs = from.Addrs
			}
			if err := d.cfg.Store.AddProvider(m.Key, peer.AddrInfo{ID: p.ID, Addrs: addrs}); err != nil {
				d.log.Debug("provider record refused", "from", from.ID, "err", err)
			}
		}
		// kad-dht sends no answer to ADD_PROVIDER; ours acknowledges, so
		// that providing knows which peers took the record.
		return &Message{Type: AddProvider, Key: m.Key}, nil
	case PutValue, GetValue:
		if d.cfg.Values == nil {
			break
		}
		if m.Type == PutValue {
			return d.handlePutValue(from.ID, m)
		}
		return d.handleGetValue(from.ID, m)
	}
	return nil, fmt.Errorf("%w: %s not served", ErrBadMessage, m.Type)
}

// closerPeers returns the K peers of the table closest to target, but
// never the requester itself.
func (d *DHT) closerPeers(target Key, requester peer.ID) []Peer {
	ais := d.rt.closest(target, d.cfg.K+1)
	out := make([]Peer, 0, len(ais))
	for _, ai := range ais {
		if ai.ID != requester && len(out) < d.cfg.K {
			out = append(out, PeerOf(ai))
		}
	}
	return out
}

func (d *DHT) selfInfo() peer.AddrInfo {
	ai := d.cfg.Self()
	ai.Addrs = d.cfg.Scope.Filter(ai.Addrs)
	return ai
}
