package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange"
)

// DefaultTimeout is how long a fetch waits without progress.
const DefaultTimeout = 30 * time.Second

// ErrTimeout ends a fetch during which nothing arrived for the timeout.
var ErrTimeout = errors.New("nothing arrived in time")

// FetchOptions control Get, Cat and PinAdd when content must come from
// the network.
type FetchOptions struct {
	// Timeout gives up when nothing arrives for this long (default 30 s).
	Timeout time.Duration
	// Progress, if not nil, sees what is happening.
	Progress func(Progress)
}

// timeout is Timeout, or DefaultTimeout when unset.
func (o FetchOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// Progress is a snapshot of a get.
type Progress struct {
	Phase  string // "finding providers", "fetching", "writing", "done"
	Bytes  int64  // bytes fetched from the network (or written, when local)
	Total  int64  // bytes of the whole DAG, once its root is known (else 0)
	Blocks int
	Peers  int
}

// SetOnline tells the node how to join the network when it lacks content
// (the CLI starts a temporary node); without it, missing content is an
// error wrapping ErrNotLocal.
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
	n.net = nw
	return nw, nil
}

// isLocal reports whether every block of the DAG under root is here.
func (n *Node) isLocal(ctx context.Context, root cid.Cid) (bool, error) {
	n.settle()
	err := dag.Walk(ctx, n.getter(), root, dag.WalkOptions{CheckLeaves: true}, func(cid.Cid) error { return nil })
	if errs.Is(errs.NotFound, err) {
		return false, nil
	}
	return err == nil, err
}

// fetch makes the DAG under root complete locally, fetching what is
// missing from the network. The caller holds the gc writer lock. With a
// non-nil reader, the session streams blocks to it while it stores them.
// Callers with a reader may pass lk, their hold of that lock: fetch then
// returns once the reader is done and the last stored blocks are committed
// in the background (see finishLater). Without lk every block is durable
// on return.
func (n *Node) fetch(ctx context.Context, root cid.Cid, opts FetchOptions, read func(share.Getter) error, lk *writerHold) error {
	nw, err := n.network(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w, and the network could not start: %v", root, ErrNotLocal, err)
	}
	if nw == nil {
		return fmt.Errorf("%s: %w", root, ErrNotLocal)
	}
	timeout := opts.timeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The batch ingests each finished file of resumeEvery bytes in the
	// background while the next one is written: checkpoints for a resume
	// that never stall the transfer (a Commit every so often did, for the
	// length of an fsync).
	batch := n.Blocks.NewBatch()
	batch.SetFileSize(resumeEvery)
	batch.SetCheckpointEvery(checkpointEvery)
	batch.SetDropBehind(true)
	defer func() {
		if batch != nil {
			batch.Close()
		}
	}()

	tr := n.transfers.start(root)
	defer n.transfers.end(tr)
	defer n.invalidateStat()
	fetched := n.Metrics().BlocksFetched
	var total atomic.Int64 // the DAG's size, once its root has arrived
	var mu sync.Mutex
	last, lastBytes, lastBlocks := time.Now(), int64(-1), 0
	report := func(p exchange.Progress) {
		n.transfers.update(tr, p, total.Load())
		mu.Lock()
		if p.Bytes != lastBytes || p.LocalBlocks > 0 && lastBytes < 0 {
			last, lastBytes = time.Now(), p.Bytes
		}
		if p.Blocks > lastBlocks {
			fetched.Add(uint64(p.Blocks - lastBlocks))
			lastBlocks = p.Blocks
		}
		mu.Unlock()
		if opts.Progress != nil {
			phase := "fetching"
			if p.Peers == 0 && p.Blocks == 0 {
				phase = "finding providers"
			}
			opts.Progress(Progress{Phase: phase, Bytes: p.Bytes, Total: total.Load(), Blocks: p.Blocks, Peers: p.Peers})
		}
	}
	sess := nw.Exchange.NewSession(ctx, root, exchange.SessionOptions{
		Local:    n.Blocks,
		Putter:   batch,
		Stream:   read != nil,
		Progress: report,
	})
	defer sess.Close()
	go nw.findProviders(ctx, root, sess)
	statDone := make(chan struct{})
	if root.Type() == dag.DagPB {
		// The root says how big the DAG is: progress can show an ETA. (A
		// session keeps inner nodes, so reading the root takes nothing
		// from the reader.) It may read the blockstore, so fetch returns
		// only once it is done: the caller may close the store next.
		go func() {
			defer close(statDone)
			if info, err := dag.Stat(ctx, sess, root); err == nil {
				total.Store(int64(info.CumulativeSize))
			}
		}()
		defer func() {
			cancel(nil)
			<-statDone
		}()
	}
	go func() {
		t := time.NewTicker(timeout / 10)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sess.Done():
				return
			case <-t.C:
				mu.Lock()
				idle := time.Since(last)
				mu.Unlock()
				if idle > timeout {
					cancel(fmt.Errorf("%s: not found locally, and %w: no peer sent any of it for %s", root, ErrTimeout, timeout))
					return
				}
			}
		}
	}()

	if read != nil {
		err = read(&sessionGetter{sess: sess, batch: batch, local: n.Blocks})
		if err == nil {
			err = sess.Wait()
		}
	} else {
		err = sess.Wait()
	}
	if err != nil {
		// Keep what arrived (verified blocks): a later get resumes there.
		batch.Commit(context.WithoutCancel(ctx))
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		if errors.Is(err, exchange.ErrNoProgress) {
			if p := sess.Progress(); p.Blocks == 0 && p.Peers == 0 {
				return fmt.Errorf("%s: not found locally, and %w: no peer that has it was found", root, ErrTimeout)
			}
			return fmt.Errorf("%s: not found locally, and %w: the peers stopped sending it", root, ErrTimeout)
		}
		return err
	}
	if lk != nil {
		n.finishLater(batch, lk, root, nw)
		batch = nil
	} else if err := batch.Commit(ctx); err != nil {
		return err
	}
	if opts.Progress != nil {
		p := sess.Progress()
		t := total.Load()
		if info, err := dag.Stat(ctx, n.getter(), root); err == nil {
			t = int64(info.CumulativeSize)
		}
		opts.Progress(Progress{Phase: "done", Bytes: p.Bytes, Total: t, Blocks: p.Blocks, Peers: p.Peers})
	}
	return nil
}

// finishLater commits batch, the last blocks of a fetch whose reader has
// everything, in the background, holding the caller's gc writer lock
// (taken over from lk) until it is done: cat and get through a daemon
// return when their output is written, not after the fsyncs of the cache
// (a tenth of a GiB's transfer). The blocks are a cache: if the commit
// fails, or the daemon dies first, a later fetch fetches them again.
// Node methods that read blocks call settle first, so they never miss
// blocks that are still being committed.
func (n *Node) finishLater(batch *blockstore.Batch, lk *writerHold, root cid.Cid, nw *Network) {
	release := lk.take()
	n.finishing.RLock()
	go func() {
		defer n.finishing.RUnlock()
		defer release()
		defer batch.Close()
		if n.finishHook != nil {
			n.finishHook()
		}
		if err := batch.Commit(context.Background()); err != nil {
			nw.logger.Warn("fetched blocks not cached", "root", root, "err", err)
		}
		n.invalidateStat()
	}()
}

// settle waits for the fetches that are finishing in the background.
func (n *Node) settle() {
	n.finishing.Lock()
	n.finishing.Unlock()
}

// writerHold is a hold of the gc writer lock that a fetch can take over
// (take) to finish in the background; release frees it unless taken.
type writerHold struct{ unlock func() }

func (n *Node) holdWriter() *writerHold { return &writerHold{unlock: n.GCLock.Writer()} }

func (h *writerHold) release() {
	if h.unlock != nil {
		h.unlock()
		h.unlock = nil
	}
}

func (h *writerHold) take() func() {
	u := h.unlock
	h.unlock = nil
	return u
}

// A get stores what it fetched durably (in the background) every
// resumeEvery bytes or checkpointEvery, whichever comes first, so that a
// killed get resumes from there: on a fast link it loses at most 256 MiB
// (half a second at loopback speed), on a slow one about a second of
// transfer. Each checkpoint costs a few fsyncs, which the Go scheduler
// answers with thread hand-offs: fewer, larger files cost less CPU.
const (
	resumeEvery     = 256 << 20
	checkpointEvery = time.Second
)

// sessionGetter reads the DAG through the session: blocks it holds or
// fetches, and local ones (which it reads from the blockstore). A leaf the
// reader asks for a second time (a file that appears twice in a directory)
// after the session has finished is neither held by the session nor yet
// visible in the blockstore: the getter then commits the session's batch
// once and reads it from there.
type sessionGetter struct {
	sess  *exchange.Session
	batch *blockstore.Batch
	local *blockstore.Store

	mu        sync.Mutex
	committed bool
	commitErr error
}

// Get returns the session's blocks, which tell the reader that the session
// verified them as they arrived, so they are not hashed twice; blocks read
// from the disk are checked by the reader as always. The session is asked
// first: it holds each arriving leaf for the reader, and a leaf that was
// meanwhile ingested must still be taken from it, or the session would
// hold it (and count it against its memory) to the end.
func (g *sessionGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := g.sess.Get(ctx, c)
	if err == nil || !errs.Is(errs.NotFound, err) || g.sess.Wait() != nil {
		return b, err
	}
	if err := g.commit(ctx); err != nil {
		return share.Block{}, err
	}
	return g.local.Get(ctx, c)
}

func (g *sessionGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return g.sess.Has(ctx, c)
}

// commit makes the finished session's blocks visible in the blockstore,
// once.
func (g *sessionGetter) commit(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.committed {
		g.committed = true
		g.commitErr = g.batch.Commit(ctx)
	}
	return g.commitErr
}
