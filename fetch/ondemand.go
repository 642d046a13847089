package fetch

import (
	"context"
	"errors"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

// Getter returns blocks on demand: local ones, and the others from the
// network through a fetch of the DAG under the first missing block (the
// gateway's requests, ls); a block outside the DAGs fetched so far starts
// another fetch once the current one is complete. What it fetched is
// stored, unpinned, when ctx ends, Close is called or the Fetcher closes,
// whichever comes first; gc waits for that.
type Getter struct {
	f      *Fetcher
	opts   Options
	ctx    context.Context // ends with the request, Close or the Fetcher
	cancel context.CancelFunc

	mu     sync.Mutex
	r      *run   // the current fetch
	unlock func() // the hold of the gc lock, from the first fetch to Close
	err    error  // why no fetch can start (closed, offline)
}

// Getter returns an on-demand getter for one request that lives as long
// as ctx.
func (f *Fetcher) Getter(ctx context.Context, opts Options) *Getter {
	g := &Getter{f: f, opts: opts}
	g.ctx, g.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(f.closeCtx, g.cancel)
	context.AfterFunc(g.ctx, func() { stop() })
	return g
}

// Get returns block c, from the store or else from the network.
func (g *Getter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := g.f.Local().Get(ctx, c)
	if !errs.Is(errs.NotFound, err) {
		return b, err
	}
	var ended *run
	for attempt := 1; ; attempt++ {
		r, err := g.current(c, ended)
		if err != nil {
			return share.Block{}, err
		}
		if ended != nil {
			// current has committed what the ended fetch stored (or the
			// getter that replaced it had): c may be among it, taken
			// from that fetch by another reader.
			if b, err := g.f.Local().Get(ctx, c); !errs.Is(errs.NotFound, err) {
				return b, err
			}
		}
		b, err = r.sess.Get(ctx, c)
		if err == nil || !errs.Is(errs.NotFound, err) || r.sess.Wait() != nil || attempt == maxRefetches {
			return b, r.explain(err)
		}
		// The fetch ended with its DAG complete, and c was not part of
		// it: the next one is the DAG under c (unless another reader's
		// fetch has begun meanwhile).
		ended = r
	}
}

// maxRefetches bounds the fetches one Get goes through: each one it gives
// up on has ended without its block, and the next is usually its own.
const maxRefetches = 8

// Has reports whether c is here.
func (g *Getter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return g.f.Local().Has(ctx, c)
}

// Close ends the current fetch, if one runs, and returns once what the
// getter fetched is committed.
func (g *Getter) Close() {
	g.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.finish()
	if g.unlock != nil {
		g.unlock()
		g.unlock = nil
	}
	if g.err == nil {
		g.err = errs.E(errs.Canceled, errGetterClosed)
	}
}

// current returns the fetch that is running, or starts one at root if
// there is none or the one there is ended (which it commits first).
func (g *Getter) current(root cid.Cid, ended *run) (*run, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return nil, g.err
	}
	if g.r != nil && g.r != ended {
		return g.r, nil
	}
	g.finish()
	if g.unlock == nil {
		// The first fetch: from now on gc waits for the getter's end,
		// which comes with its context at the latest.
		if !g.f.goBackground(func() { <-g.ctx.Done(); g.Close() }) {
			g.err = notHere(root, errs.NotFound, errNodeClosing)
			return nil, g.err
		}
		g.unlock = g.f.cfg.Lock.Writer()
	}
	r, err := g.f.start(g.ctx, root, g.opts, true, nil)
	if err != nil {
		g.err = err
		return nil, err
	}
	g.r = r
	return r, nil
}

// finish ends the current fetch, if any, and commits what it fetched.
func (g *Getter) finish() {
	if g.r == nil {
		return
	}
	g.r.end()
	g.r.batch.Commit(context.Background()) // what arrived stays cached
	g.r.batch.Close()
	g.f.changed()
	g.r = nil
}

var (
	// errNodeClosing ends on-demand fetches asked for while the node
	// closes.
	errNodeClosing  = errors.New("the node is closing")
	errGetterClosed = errors.New("the request has ended")
)
