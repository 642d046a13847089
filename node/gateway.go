package node

import (
	"context"
	"sync"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/fetch"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/metrics"
	"github.com/share-p2p/share/traffic"
)

// statCache keeps the blockstore's figures for the status page and the
// metrics, recounting (a scan of the index) at most every few seconds.
type statCache struct {
	mu    sync.Mutex
	at    time.Time
	stat  RepoStat
	dirty bool
}

func (n *Node) cachedStat(ctx context.Context) RepoStat {
	n.stats.mu.Lock()
	defer n.stats.mu.Unlock()
	if time.Since(n.stats.at) > 10*time.Second || n.stats.dirty && time.Since(n.stats.at) > time.Second {
		if st, err := n.Stat(ctx); err == nil {
			n.stats.stat, n.stats.at, n.stats.dirty = st, time.Now(), false
		}
	}
	return n.stats.stat
}

// invalidateStat marks the cached figures stale after adds, fetches, gc.
func (n *Node) invalidateStat() {
	n.stats.mu.Lock()
	n.stats.dirty = true
	n.stats.mu.Unlock()
}

// Metrics returns the node's metrics (created on first use).
func (n *Node) Metrics() *metrics.Node {
	n.metricsOnce.Do(func() {
		m := metrics.NewNode()
		m.StoreBytes.SetFunc(func() int64 { return n.cachedStat(context.Background()).Bytes })
		m.StoreBlocks.SetFunc(func() int64 { return n.cachedStat(context.Background()).Blocks })
		m.Peers.SetFunc(func() int64 {
			n.netMu.Lock()
			defer n.netMu.Unlock()
			if n.net == nil {
				return 0
			}
			return int64(len(n.net.Host.Peers()))
		})
		n.metrics = m
	})
	return n.metrics
}

// Status describes the node for the gateway's status page.
func (n *Node) Status(ctx context.Context) gateway.Status {
	st := n.cachedStat(ctx)
	s := gateway.Status{
		ID:          n.Repo.Identity.ID.String(),
		Addresses:   []string{},
		StorageUsed: st.DiskUsage,
		StorageMax:  st.StorageMax,
		Blocks:      st.Blocks,
		Transfers:   n.transfersNow(),
		// Empty lists, not null, in status.json (the JSON conventions).
		Peers:     []gateway.PeerStatus{},
		Pins:      []gateway.PinStatus{},
		Following: []gateway.FollowStatus{},
		Traffic:   gateway.Traffic{In: []int64{}, Out: []int64{}},
	}
	n.netMu.Lock()
	nw := n.net
	n.netMu.Unlock()
	if nw != nil {
		s.Addresses = p2pAddrs(nw.Host.ID(), nw.Host.Addrs())
		now := time.Now()
		s.Peers = peerStatuses(nw.peerInfos(now))
		s.Traffic = nodeTraffic(nw.Traffic, now)
	}
	s.Following = n.Following()
	if pins, err := n.Pins.List(ctx); err == nil {
		for _, p := range pins {
			s.Pins = append(s.Pins, gateway.PinStatus{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name})
		}
	}
	return s
}

// peerStatuses are the peers as the status page shows them.
func peerStatuses(ps []PeerInfo) []gateway.PeerStatus {
	out := make([]gateway.PeerStatus, len(ps))
	for i, p := range ps {
		out[i] = gateway.PeerStatus{
			ID: p.ID, Addr: p.Addr, Protocol: p.Protocol, Relayed: p.Relayed,
			RateIn: p.RateIn, RateOut: p.RateOut, BytesIn: p.BytesIn, BytesOut: p.BytesOut,
			BlocksIn: p.BlocksIn, BlocksOut: p.BlocksOut,
		}
	}
	return out
}

// nodeTraffic is the node's traffic at now, with its throughput history.
func nodeTraffic(t *traffic.Table, now time.Time) gateway.Traffic {
	tot := t.Total(now)
	in, out := t.History()
	return gateway.Traffic{RateIn: tot.RateIn, RateOut: tot.RateOut, BytesIn: tot.BytesIn, BytesOut: tot.BytesOut, In: in, Out: out}
}

// transfersNow lists the fetches in progress for the status page.
func (n *Node) transfersNow() []gateway.Transfer {
	trs := n.fetcher.Transfers()
	out := make([]gateway.Transfer, len(trs))
	for i, t := range trs {
		out[i] = gateway.Transfer{Cid: t.Cid.String(), Started: t.Started, Bytes: t.Bytes, Total: t.Total, Peers: t.Peers, Rate: t.Rate, From: transferPeers(t.From)}
	}
	return out
}

func transferPeers(from []exchange.PeerStat) []gateway.TransferPeer {
	out := make([]gateway.TransferPeer, len(from))
	for i, f := range from {
		out[i] = gateway.TransferPeer{Peer: f.Peer.String(), Protocol: traffic.ProtoOf(f.Protocol).String(), Blocks: f.Blocks, Bytes: f.Bytes}
	}
	return out
}

// Getter returns the blocks of one gateway request: local ones, and the
// others from the network through one fetch started at the first missing
// block, whose blocks are stored (unpinned) when the request ends.
func (n *Node) Getter(ctx context.Context) share.Getter {
	return n.fetcher.Getter(ctx, fetch.Options{})
}

var _ gateway.Node = (*Node)(nil)
