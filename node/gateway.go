package node

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/metrics"
)

// transfers tracks the fetches in progress, for the status page.
type transfers struct {
	mu sync.Mutex
	m  map[*gateway.Transfer]struct{}
}

func (t *transfers) start(c cid.Cid) *gateway.Transfer {
	tr := &gateway.Transfer{Cid: c.String(), Started: time.Now()}
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[*gateway.Transfer]struct{})
	}
	t.m[tr] = struct{}{}
	t.mu.Unlock()
	return tr
}

func (t *transfers) update(tr *gateway.Transfer, p exchange.Progress, total int64) {
	t.mu.Lock()
	tr.Bytes, tr.Peers, tr.Total = p.Bytes, p.Peers, total
	t.mu.Unlock()
}

func (t *transfers) end(tr *gateway.Transfer) {
	t.mu.Lock()
	delete(t.m, tr)
	t.mu.Unlock()
}

func (t *transfers) list() []gateway.Transfer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]gateway.Transfer, 0, len(t.m))
	for tr := range t.m {
		out = append(out, *tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

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
		Transfers:   n.transfers.list(),
	}
	n.netMu.Lock()
	nw := n.net
	n.netMu.Unlock()
	if nw != nil {
		s.Addresses = p2pAddrs(nw.Host.ID(), nw.Host.Addrs())
		for _, c := range nw.Host.Conns() {
			s.Peers = append(s.Peers, gateway.PeerStatus{ID: c.RemotePeer().String(), Addr: c.RemoteMultiaddr().String()})
		}
	}
	if pins, err := n.Pins.List(ctx); err == nil {
		for _, p := range pins {
			s.Pins = append(s.Pins, gateway.PinStatus{Cid: p.Cid.String(), Mode: string(p.Mode), Name: p.Name})
		}
	}
	return s
}

// Getter returns the blocks of one gateway request: local ones, and the
// others from the network through one session started at the first
// missing block, whose blocks are stored (unpinned) when the request ends.
func (n *Node) Getter(ctx context.Context) share.Getter {
	return &requestGetter{n: n, ctx: ctx}
}

type requestGetter struct {
	n    *Node
	ctx  context.Context
	mu   sync.Mutex
	sess *exchange.Session
	end  func() // ends the session and commits its blocks, once
}

// close ends the request's session, if any, now rather than when its
// context ends, and returns once what it fetched is committed.
func (g *requestGetter) close() {
	g.mu.Lock()
	end := g.end
	g.mu.Unlock()
	if end != nil {
		end()
	}
}

func (g *requestGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := g.n.getter().Get(ctx, c)
	if !errors.Is(err, ErrNotLocal) {
		return b, err
	}
	sess, err := g.session(c)
	if err != nil {
		return share.Block{}, err
	}
	b, err = sess.Get(ctx, c)
	if err != nil && errors.Is(err, ErrTimeout) {
		return share.Block{}, errs.E(errs.NotFound, err)
	}
	return b, err
}

// Has reports whether c is local: walks check leaves without fetching.
func (g *requestGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return g.n.Blocks.Has(ctx, c)
}

// session starts the request's fetch at root on first need.
func (g *requestGetter) session(root cid.Cid) (*exchange.Session, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sess != nil {
		return g.sess, nil
	}
	nw, err := g.n.network(g.ctx)
	if err != nil || nw == nil {
		return nil, errs.E(errs.NotFound, root)
	}
	// The session lives as long as the request, or until the node closes.
	g.n.bgMu.Lock()
	if g.n.closed {
		g.n.bgMu.Unlock()
		return nil, errs.E(errs.NotFound, root, errors.New("the node is closing"))
	}
	g.n.bg.Add(1)
	g.n.bgMu.Unlock()
	ctx, cancel := context.WithCancel(g.ctx)
	stop := context.AfterFunc(g.n.closeCtx, cancel)
	unlock := g.n.GCLock.Writer()
	batch := g.n.Blocks.NewBatch()
	tr := g.n.transfers.start(root)
	sess := nw.Exchange.NewSession(ctx, root, exchange.SessionOptions{
		Local: g.n.Blocks, Putter: batch, Stream: true,
		Progress: func(p exchange.Progress) { g.n.transfers.update(tr, p, 0) },
	})
	go nw.findProviders(ctx, root, sess)
	g.end = sync.OnceFunc(func() {
		defer g.n.bg.Done()
		stop()
		cancel()
		sess.Close()
		batch.Commit(context.Background()) // what arrived stays cached
		batch.Close()
		g.n.transfers.end(tr)
		g.n.invalidateStat()
		unlock()
	})
	context.AfterFunc(ctx, g.end)
	g.sess = sess
	return sess, nil
}

var (
	_ gateway.Node = (*Node)(nil)
)
