package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/p2p/peer"
)

// DefaultTimeout is how long a fetch waits without progress.
const DefaultTimeout = 30 * time.Second

// Source is one block exchange protocol: it tells whether a peer has a
// block, and runs sessions that fetch a DAG from the providers given.
// exchange.Exchange is one (through the node's adapter).
type Source interface {
	// Has asks p whether it has c.
	Has(ctx context.Context, p peer.ID, c cid.Cid) (bool, error)
	// NewSession starts fetching the DAG under root; it ends with ctx.
	NewSession(ctx context.Context, root cid.Cid, opts exchange.SessionOptions) Session
}

// Session fetches one DAG. It is a getter of the DAG's blocks as they
// arrive (verified) for a reader that consumes them meanwhile.
type Session interface {
	share.Getter
	// AddProviders adds peers to fetch from.
	AddProviders(ps ...peer.ID)
	// Progress is a snapshot of the session.
	Progress() exchange.Progress
	// Wait returns once every block is stored or the session failed.
	Wait() error
	// Done is closed when the session has ended.
	Done() <-chan struct{}
	Close() error
}

// Peers is the host as the fetcher sees it: who is connected, who comes
// and goes, and dialling the providers that routing finds.
type Peers interface {
	Self() peer.ID
	Peers() []peer.ID
	// Watch calls fn, from one goroutine, for each peer that connects
	// (up), again when identify has run on it (up), and when it
	// disconnects (!up), until ctx ends, then returns.
	Watch(ctx context.Context, fn func(p peer.ID, up bool))
	// Connect returns once a connection to ai.ID that can carry data
	// is up: not one through a relay that limits data, for which it
	// fails with p2p.ErrLimitedConn once no hole punch gave a direct one.
	Connect(ctx context.Context, ai peer.AddrInfo) error
}

// Router finds providers beyond the connected peers (the DHT).
type Router interface {
	// FindProviders sends the providers of c it finds until ctx ends or
	// the lookup is over, then closes the channel.
	FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo
	// Ready reports whether the router knows any peers to ask.
	Ready() bool
}

// Network is what the fetcher needs of the node's network.
type Network struct {
	Source Source
	Peers  Peers
	Router Router // nil when routing is off
	// Since is when the node joined the network (zero: long ago). Until
	// a grace after it, peers that mDNS finds may still connect, and the
	// router may still be filling its table: a fetch waits for them
	// before it gives up for want of a provider.
	Since time.Time
}

// Config builds a Fetcher.
type Config struct {
	Store *blockstore.Store
	// Lock is the gc lock: a fetch holds its writer side until what it
	// fetched is stored, or until the caller's use of it (Have) is done.
	Lock *gc.Lock
	// Online returns the network, starting it on first need; a nil
	// Network (or nil Online) means the node is offline.
	Online func(ctx context.Context) (*Network, error)
	// Fetched, if not nil, is called with the number of blocks a fetch
	// stored since its last call (metrics).
	Fetched func(blocks int)
	// Changed, if not nil, is called when fetched blocks were stored
	// (cached store figures are stale).
	Changed func()
	// BeforeCommit, if not nil, runs before each background commit
	// (tests hold commits back with it).
	BeforeCommit func()
	Logger       *slog.Logger
}

// Fetcher gets DAGs for every surface of a node. It is safe for
// concurrent use.
type Fetcher struct {
	cfg       Config
	log       *slog.Logger
	transfers transfers

	// Background commits hold finishing for reading; settle takes it
	// for writing, when pending says there are any.
	finishing sync.RWMutex
	pending   atomic.Int32

	mu       sync.Mutex
	closed   bool
	closeCtx context.Context // ends on-demand fetches at Close
	cancel   context.CancelFunc
	bg       sync.WaitGroup // background commits and on-demand fetches
	flights  map[cid.Cid]*flight
}

// New returns a Fetcher.
func New(cfg Config) *Fetcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetcher{cfg: cfg, log: cfg.Logger}
	f.closeCtx, f.cancel = context.WithCancel(context.Background())
	return f
}

// Close ends the on-demand fetches still running and waits for every
// background commit. The store stays open (it is the node's).
func (f *Fetcher) Close() {
	f.mu.Lock()
	f.closed = true
	f.cancel()
	f.mu.Unlock()
	f.bg.Wait()
}

// goBackground runs fn in a goroutine that Close waits for, unless the
// fetcher is closing (then it reports false and does not run fn).
func (f *Fetcher) goBackground(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		fn()
	}()
	return true
}

// Local is the blockstore as readers see it.
func (f *Fetcher) Local() Local { return Local{f} }

// Transfers lists the fetches in progress, oldest first.
func (f *Fetcher) Transfers() []Transfer { return f.transfers.list() }

// settle waits for the background commits under way, if any, and reports
// whether there were any.
func (f *Fetcher) settle() bool {
	if f.pending.Load() == 0 {
		return false
	}
	f.finishing.Lock()
	f.finishing.Unlock()
	return true
}

// isLocal reports whether every block of the DAG under root is here.
func (f *Fetcher) isLocal(ctx context.Context, root cid.Cid) (bool, error) {
	err := dag.Walk(ctx, f.Local(), root, dag.WalkOptions{CheckLeaves: true}, func(cid.Cid) error { return nil })
	if errs.Is(errs.NotFound, err) {
		return false, nil
	}
	return err == nil, err
}

// online returns the network, or an error saying that root is not here
// and cannot come.
func (f *Fetcher) online(ctx context.Context, root cid.Cid) (*Network, error) {
	if f.cfg.Online == nil {
		return nil, notHere(root, errs.NotFound, nil)
	}
	nw, err := f.cfg.Online(ctx)
	if err != nil {
		return nil, notHere(root, errs.KindOf(err), errors.New("the network could not start: "+err.Error()))
	}
	if nw == nil {
		return nil, notHere(root, errs.NotFound, nil)
	}
	return nw, nil
}

// TimedOut is the error of an on-demand fetch of c bounded by d in all
// (ls) that found nothing in time.
func TimedOut(c cid.Cid, d time.Duration) error {
	return notHere(c, errs.Timeout, fmt.Errorf("nothing arrived in time: no peer sent it within %s", d))
}

// notHere is the one error of content that is not here and did not come:
// "CID: not found locally[, and WHY]".
// The error why stays in the chain: errs.Reason finds its text when it
// carries the kind ("peer *X is only reachable through a relay that
// limits data").
func notHere(c cid.Cid, kind errs.Kind, why error) error {
	if kind == errs.Other {
		kind = errs.NotFound
	}
	if why == nil {
		return errs.E(kind, c, errors.New("not found locally"))
	}
	return errs.E(kind, c, fmt.Errorf("not found locally, and %w", why))
}

// Local is the blockstore as the node's readers see it: a read that
// misses, and every scan, first waits for the fetches that are committing
// their last blocks in the background, so that no reader misses blocks a
// fetch that has returned already stored.
type Local struct{ f *Fetcher }

// Get returns block c from the store.
func (l Local) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := l.f.cfg.Store.Get(ctx, c)
	if err != nil && errs.Is(errs.NotFound, err) && l.f.settle() {
		b, err = l.f.cfg.Store.Get(ctx, c)
	}
	return b, err
}

// Has reports whether block c is in the store.
func (l Local) Has(ctx context.Context, c cid.Cid) (bool, error) {
	ok, err := l.f.cfg.Store.Has(ctx, c)
	if err == nil && !ok && l.f.settle() {
		ok, err = l.f.cfg.Store.Has(ctx, c)
	}
	return ok, err
}

// Store returns the blockstore once the background commits under way are
// done, for scans (stat, verify).
func (l Local) Store() *blockstore.Store {
	l.f.settle()
	return l.f.cfg.Store
}

var _ share.Getter = Local{}
