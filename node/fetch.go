package node

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dht"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/fetch"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/provide"
)

// DefaultTimeout is how long a fetch waits without progress.
const DefaultTimeout = fetch.DefaultTimeout

// FetchOptions control Get, Cat, PinAdd, Export and Ls when content must
// come from the network.
type FetchOptions = fetch.Options

// Progress is a snapshot of a get.
type Progress = fetch.Progress

// SetOnline tells the node how to join the network when it lacks content
// (the CLI starts a temporary node); without it, missing content is an
// error of kind errs.NotFound.
func (n *Node) SetOnline(start func(ctx context.Context) (*Network, error)) {
	n.startNet = start
}

// network returns the node's network, starting it on first use.
func (n *Node) network(ctx context.Context) (*Network, error) {
	n.netMu.Lock()
	defer n.netMu.Unlock()
	if n.net != nil || n.startNet == nil {
		return n.net, nil
	}
	nw, err := n.startNet(ctx)
	if err != nil {
		return nil, err
	}
	n.net, n.netSince = nw, time.Now()
	return nw, nil
}

// online is network as the fetcher sees it.
func (n *Node) online(ctx context.Context) (*fetch.Network, error) {
	nw, err := n.network(ctx)
	if err != nil || nw == nil {
		return nil, err
	}
	fn := nw.fetchNetwork()
	n.netMu.Lock()
	fn.Since = n.netSince
	n.netMu.Unlock()
	return fn, nil
}

// fetchNetwork is what the fetcher needs of the network: the block
// exchange as its source, the host's peers and the DHT.
func (nw *Network) fetchNetwork() *fetch.Network {
	fn := &fetch.Network{Source: exchangeSource{nw.Exchange}, Peers: hostPeers{nw.Host}}
	if nw.Provider != nil {
		fn.Router = dhtRouter{nw.Routing, nw.Provider}
	}
	return fn
}

// exchangeSource is the block exchange as a fetch.Source.
type exchangeSource struct{ e *exchange.Exchange }

func (s exchangeSource) Has(ctx context.Context, p peer.ID, c cid.Cid) (bool, error) {
	has, err := s.e.Has(ctx, p, []cid.Cid{c})
	return err == nil && len(has) == 1 && has[0], err
}

func (s exchangeSource) NewSession(ctx context.Context, root cid.Cid, opts exchange.SessionOptions) fetch.Session {
	return s.e.NewSession(ctx, root, opts)
}

// hostPeers is the host as the fetcher sees it.
type hostPeers struct{ h *p2p.Host }

func (p hostPeers) Self() peer.ID    { return p.h.ID() }
func (p hostPeers) Peers() []peer.ID { return p.h.Peers() }

// Connect connects to ai and waits for a connection that carries data
// (not a limited relayed one).
func (p hostPeers) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := p.h.Connect(ctx, ai); err != nil {
		return err
	}
	_, err := p.h.DataConn(ctx, ai.ID)
	return err
}

// Watch reports the peers connected now, then those that come and go.
func (p hostPeers) Watch(ctx context.Context, fn func(peer.ID, bool)) {
	sub := p.h.Subscribe()
	defer sub.Close()
	for _, id := range p.h.Peers() {
		fn(id, true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Events():
			if !ok {
				return
			}
			switch e.Kind {
			case p2p.Connected, p2p.Identified:
				fn(e.Peer, true)
			case p2p.Disconnected:
				fn(e.Peer, false)
			}
		}
	}
}

// dhtRouter finds providers in the DHT.
type dhtRouter struct {
	d *dht.Dual
	p *provide.Provider
}

func (r dhtRouter) Ready() bool { return r.d.RoutingTableSize() > 0 }

func (r dhtRouter) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	return r.p.FindProviders(ctx, c, 0)
}
