package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/share-p2p/share/bitswap"
	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// sampleEvery is how often the node samples its traffic: the rates'
// resolution and the throughput graph's.
const sampleEvery = time.Second

// PeerInfo describes one connected peer and the blocks exchanged with it
// since it connected (a reconnect starts from zero).
type PeerInfo struct {
	ID        string
	Addr      string // the remote multiaddr of its best connection
	Direction string
	Streams   int
	Since     time.Time // when that connection opened
	// Protocol is the block protocol blocks moved over ("share",
	// "bitswap", "share+bitswap"), or, before any did, the one the node
	// would use with the peer; left out when the peer speaks neither.
	Protocol string `json:",omitempty"`
	Relayed  bool   // the connection runs through a circuit relay
	// RateIn and RateOut are the current speeds in bytes per second (over
	// the last 5 s); BytesIn/BlocksIn what the peer sent this node (first
	// copies, verified), BytesOut/BlocksOut what this node served it.
	RateIn, RateOut     int64
	BytesIn, BytesOut   int64
	BlocksIn, BlocksOut int64
}

// startTraffic samples the traffic table every second and forgets the
// peers that disconnect, until the network closes.
func (nw *Network) startTraffic() {
	sub := nw.Host.Subscribe()
	nw.spawn(func() {
		defer sub.Close()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		nw.Traffic.Sample(time.Now())
		for {
			select {
			case <-nw.ctx.Done():
				return
			case now := <-tick.C:
				nw.Traffic.Sample(now)
			case e, ok := <-sub.Events():
				if !ok {
					return
				}
				if e.Kind == p2p.Disconnected {
					nw.Traffic.Forget(e.Peer)
				}
			}
		}
	})
}

// peerInfos describes the connected peers, one row each (its best
// connection), sorted by ID.
func (nw *Network) peerInfos(now time.Time) []PeerInfo {
	ids := nw.Host.Peers()
	out := make([]PeerInfo, 0, len(ids))
	for _, id := range ids {
		c := nw.Host.Conn(id)
		if c == nil {
			continue // gone meanwhile
		}
		out = append(out, nw.peerInfo(c, now))
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (nw *Network) peerInfo(c *p2p.Conn, now time.Time) PeerInfo {
	p := c.RemotePeer()
	st, _ := nw.Traffic.Stats(p, now)
	proto := st.Protocols.String()
	if proto == "" {
		proto = nw.blockProtocol(p).String()
	}
	return PeerInfo{
		ID: p.String(), Addr: c.RemoteMultiaddr().String(),
		Direction: c.Direction().String(), Streams: c.NumStreams(), Since: c.Opened(),
		Protocol: proto, Relayed: c.Relayed(),
		RateIn: st.RateIn, RateOut: st.RateOut,
		BytesIn: st.BytesIn, BytesOut: st.BytesOut,
		BlocksIn: st.BlocksIn, BlocksOut: st.BlocksOut,
	}
}

// blockProtocol is the block protocol a fetch would ask p over, as
// identify describes it: share's when p speaks it, else Bitswap.
func (nw *Network) blockProtocol(p peer.ID) traffic.Proto {
	s := nw.Host.Streams()
	if s.SupportsProtocol(p, nw.Host.Protocol("blocks")) {
		return traffic.Share
	}
	if nw.Bitswap != nil && slices.ContainsFunc(bitswap.Protocols, func(proto string) bool { return s.SupportsProtocol(p, proto) }) {
		return traffic.Bitswap
	}
	return 0
}

// Peers lists the connected peers with their traffic.
func (d *Daemon) Peers(ctx context.Context) []PeerInfo {
	d.netMu.Lock()
	nw := d.net
	d.netMu.Unlock()
	if nw == nil {
		return []PeerInfo{}
	}
	return nw.peerInfos(time.Now())
}
