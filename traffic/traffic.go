// Package traffic counts the blocks and bytes a node exchanges with each
// peer, over either block protocol, estimates their current rates, and
// keeps the node's throughput of the last minutes. Counting a block is a
// few atomic adds on a Counter looked up once per stream or peer, so the
// exchange and Bitswap count on their hot paths; a sampler (the node's,
// once a second) turns the totals into rates and history.
package traffic

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// Proto is a set of block protocols.
type Proto uint32

// The block protocols.
const (
	Share   Proto = 1 << iota // share's /<net>/blocks/1.0.0
	Bitswap                   // kubo's Bitswap
)

// ProtoOf is the block protocol of a protocol ID: Bitswap for
// /ipfs/bitswap/1.2.0 (any version), Share for /NET/blocks/1.0.0 on any
// network, 0 for any other.
func ProtoOf(id string) Proto {
	switch {
	case strings.Contains(id, "/bitswap"):
		return Bitswap
	case strings.Contains(id, "/blocks/"):
		return Share
	}
	return 0
}

// String names the protocols: "share", "bitswap", "share+bitswap" or "".
func (p Proto) String() string {
	var names []string
	if p&Share != 0 {
		names = append(names, "share")
	}
	if p&Bitswap != 0 {
		names = append(names, "bitswap")
	}
	return strings.Join(names, "+")
}

// Counter counts one peer's blocks and bytes in and out. A nil *Counter
// counts nothing, so that code without a Table need not check.
type Counter struct {
	total                                  *Counter // the node's; nil for the node's own
	blocksIn, bytesIn, blocksOut, bytesOut atomic.Int64
	protos                                 atomic.Uint32
	in, out                                Rate // guarded by Table.mu
}

// Received counts one verified block of n bytes that came over p.
func (c *Counter) Received(p Proto, n int) {
	if c == nil {
		return
	}
	c.blocksIn.Add(1)
	c.bytesIn.Add(int64(n))
	c.mark(p)
	if t := c.total; t != nil {
		t.blocksIn.Add(1)
		t.bytesIn.Add(int64(n))
	}
}

// Sent counts blocks of n bytes in all that were written over p.
func (c *Counter) Sent(p Proto, blocks int, n int64) {
	if c == nil {
		return
	}
	c.blocksOut.Add(int64(blocks))
	c.bytesOut.Add(n)
	c.mark(p)
	if t := c.total; t != nil {
		t.blocksOut.Add(int64(blocks))
		t.bytesOut.Add(n)
	}
}

// mark records that p was used; after the first block a load, not a write.
func (c *Counter) mark(p Proto) {
	if Proto(c.protos.Load())&p == 0 {
		c.protos.Or(uint32(p))
	}
}

// Stats are a peer's (or the node's) figures at one moment.
type Stats struct {
	BlocksIn, BlocksOut int64
	BytesIn, BytesOut   int64
	// RateIn and RateOut are bytes per second over the last Window.
	RateIn, RateOut int64
	// Protocols are those blocks moved over.
	Protocols Proto
}

// stats reads c; the caller holds Table.mu for the rates.
func (c *Counter) stats(now time.Time) Stats {
	return Stats{
		BlocksIn: c.blocksIn.Load(), BlocksOut: c.blocksOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		RateIn: c.in.PerSecond(now), RateOut: c.out.PerSecond(now),
		Protocols: Proto(c.protos.Load()),
	}
}

// observe samples c's totals into its rates.
func (c *Counter) observe(now time.Time) {
	c.in.Observe(now, c.bytesIn.Load())
	c.out.Observe(now, c.bytesOut.Load())
}

// Table holds a Counter per peer and the node's totals. A nil *Table
// counts nothing. It is safe for concurrent use.
type Table struct {
	mu    sync.Mutex
	peers map[peer.ID]*Counter
	total Counter
	hist  History
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{peers: make(map[peer.ID]*Counter)} }

// Peer returns p's counter, creating it at zero. Callers look it up once
// per stream or per peer, not per block.
func (t *Table) Peer(p peer.ID) *Counter {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.peers[p]
	if c == nil {
		c = &Counter{total: &t.total}
		t.peers[p] = c
	}
	return c
}

// Forget drops p's counter (the peer disconnected): a peer's figures are
// those since it connected. Counting on a forgotten counter still adds to
// the node's totals.
func (t *Table) Forget(p peer.ID) {
	t.mu.Lock()
	delete(t.peers, p)
	t.mu.Unlock()
}

// Sample takes the totals at now into the rates and the history; call it
// about once a second.
func (t *Table) Sample(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.peers {
		c.observe(now)
	}
	t.total.observe(now)
	t.hist.add(now, t.total.bytesIn.Load(), t.total.bytesOut.Load())
}

// Stats returns p's figures at now, and false when p has none.
func (t *Table) Stats(p peer.ID, now time.Time) (Stats, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.peers[p]
	if c == nil {
		return Stats{}, false
	}
	return c.stats(now), true
}

// Total returns the node's figures at now, every peer's together.
func (t *Table) Total(now time.Time) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total.stats(now)
}

// History returns the node's throughput in and out, bytes per second,
// one point a second, oldest first, up to HistoryLen points.
func (t *Table) History() (in, out []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hist.points()
}

// Peers lists the peers with a counter.
func (t *Table) Peers() []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]peer.ID, 0, len(t.peers))
	for p := range t.peers {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
