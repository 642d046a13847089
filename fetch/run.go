package fetch

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

// Options control a fetch.
type Options struct {
	// Timeout gives up when nothing arrives for this long (default 30 s).
	Timeout time.Duration
	// Progress, if not nil, sees what is happening.
	Progress func(Progress)
}

// IdleTimeout is Timeout, or DefaultTimeout when unset.
func (o Options) IdleTimeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// Progress is a snapshot of a fetch.
type Progress struct {
	Phase  string // "finding providers", "fetching", "writing", "done"
	Bytes  int64  // bytes fetched from the network (or written, when local)
	Total  int64  // bytes of the whole DAG, once its root is known (else 0)
	Blocks int
	Peers  int
	// From says how many bytes came from each peer, and over which
	// protocol, most first (peers no longer in use included).
	From []exchange.PeerStat `json:",omitempty"`
}

// A fetch stores what it fetched durably (in the background) every
// resumeEvery bytes or checkpointEvery, whichever comes first, so that a
// killed get resumes from there: on a fast link it loses at most 256 MiB
// (half a second at loopback speed), on a slow one about a second of
// transfer. Each checkpoint costs a few fsyncs, which the Go scheduler
// answers with thread hand-offs: fewer, larger files cost less CPU.
const (
	resumeEvery     = 256 << 20
	checkpointEvery = time.Second
)

// Read calls read with a getter of the DAG under root: the local blocks
// if the DAG is all here (local is then true), else a session that
// fetches it while read consumes it. Read returns once read is done and
// every block has arrived; the last blocks are committed in the background
// (reads through Local wait for them), holding off gc until they are.
func (f *Fetcher) Read(ctx context.Context, root cid.Cid, opts Options, read func(g share.Getter, local bool) error) error {
	unlock := f.cfg.Lock.Writer()
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	local, fl, err := f.localOrClaim(ctx, root, opts)
	if err != nil {
		return err
	}
	if local {
		return read(f.Local(), true)
	}
	r, err := f.start(ctx, root, opts, true, fl)
	if err != nil {
		f.land(root, fl)
		return err
	}
	err = read(&sessionGetter{r: r}, false)
	if err == nil {
		err = r.sess.Wait()
	}
	if err != nil {
		return r.fail(err)
	}
	r.reportDone(ctx, r.sess) // a streaming session keeps inner nodes
	r.end()
	f.commitLater(r.batch, unlock, root) // the hold of the gc lock goes with it
	unlock = nil
	f.land(root, fl) // its blocks are visible, or committing (Local waits)
	return nil
}

// Have makes the DAG under root complete and durable here, fetching what
// is missing, then calls then (if not nil) with the local blocks, while gc
// still cannot remove them (pin add pins them there).
func (f *Fetcher) Have(ctx context.Context, root cid.Cid, opts Options, then func(share.Getter) error) error {
	defer f.cfg.Lock.Writer()()
	local, fl, err := f.localOrClaim(ctx, root, opts)
	if err != nil {
		return err
	}
	if !local {
		err := f.fetchAll(ctx, root, opts, fl)
		f.land(root, fl)
		if err != nil {
			return err
		}
	}
	if then == nil {
		return nil
	}
	return then(f.Local())
}

// HaveBlock makes block c durable here, fetching it alone (not the DAG
// under it) when it is missing, then calls then (if not nil) with the
// local blocks while gc still cannot remove it (pin add --direct).
func (f *Fetcher) HaveBlock(ctx context.Context, c cid.Cid, opts Options, then func(share.Getter) error) error {
	defer f.cfg.Lock.Writer()()
	ok, err := f.Local().Has(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		if err := f.fetchBlock(ctx, c, opts); err != nil {
			return err
		}
	}
	if then == nil {
		return nil
	}
	return then(f.Local())
}

// fetchBlock fetches block c and commits it. The session stops as soon as
// c has come; what else it had fetched meanwhile stays cached, unpinned.
func (f *Fetcher) fetchBlock(ctx context.Context, c cid.Cid, opts Options) error {
	r, err := f.start(ctx, c, opts, true, nil)
	if err != nil {
		return err
	}
	b, err := r.sess.Get(ctx, c) // stored in the batch before Get returns
	if err != nil {
		return r.fail(err)
	}
	b.Release()
	r.end()
	defer r.batch.Close()
	if err := r.batch.Commit(ctx); err != nil {
		return err
	}
	f.changed()
	return nil
}

// fetchAll fetches the DAG under root and commits it.
func (f *Fetcher) fetchAll(ctx context.Context, root cid.Cid, opts Options, fl *flight) error {
	r, err := f.start(ctx, root, opts, false, fl)
	if err != nil {
		return err
	}
	if err := r.sess.Wait(); err != nil {
		return r.fail(err)
	}
	r.end()
	defer r.batch.Close()
	if err := r.batch.Commit(ctx); err != nil {
		return err
	}
	f.changed()
	r.reportDone(ctx, f.Local())
	return nil
}

// run is one DAG being fetched: the session and everything it owns.
type run struct {
	f      *Fetcher
	root   cid.Cid
	opts   Options
	nw     *Network
	ctx    context.Context
	cancel context.CancelFunc
	batch  *blockstore.Batch
	sess   Session
	tr     *transfer
	fl     *flight // others that fetch the same DAG wait for it (Read)
	forget func()  // ends the gc lock's record of the fetch
	src    sources
	total  atomic.Int64   // the DAG's size, once its root has arrived
	wg     sync.WaitGroup // the provider finder and the root's stat

	mu      sync.Mutex
	counted int // blocks reported to Config.Fetched
}

// start begins fetching the DAG under root into a new batch; stream
// keeps the blocks for a reader; fl, if not nil, is the flight the fetch
// is, whose waiters see its progress.
func (f *Fetcher) start(ctx context.Context, root cid.Cid, opts Options, stream bool, fl *flight) (*run, error) {
	nw, err := f.online(ctx, root)
	if err != nil {
		return nil, err
	}
	r := &run{f: f, root: root, opts: opts, nw: nw, fl: fl}
	r.ctx, r.cancel = context.WithCancel(ctx)
	// The batch ingests each finished file of resumeEvery bytes in the
	// background while the next one is written: checkpoints for a resume
	// that never stall the transfer (a Commit every so often did, for the
	// length of an fsync).
	r.batch = f.cfg.Store.NewBatch()
	r.batch.SetFileSize(resumeEvery)
	r.batch.SetCheckpointEvery(checkpointEvery)
	r.batch.SetDropBehind(true)
	r.batch.SetAssumeMissing(true) // the session asks the store first
	r.tr = f.transfers.start(root)
	r.forget = f.cfg.Lock.Fetching(root)
	r.sess = nw.Source.NewSession(r.ctx, root, exchange.SessionOptions{
		Local:           f.Local(),
		Putter:          r.batch,
		Stream:          stream,
		Progress:        r.report,
		ProgressTimeout: opts.IdleTimeout(),
	})
	r.wg.Go(r.findProviders)
	if root.Type() == dag.DagPB {
		r.wg.Go(r.stat)
	}
	return r, nil
}

// stat learns the DAG's size from its root, so progress can show an ETA.
// (Every session holds its root, with Stream or without, so reading it
// takes nothing from a reader and fetches nothing again.)
func (r *run) stat() {
	if info, err := dag.Stat(r.ctx, r.sess, r.root); err == nil {
		r.total.Store(int64(info.CumulativeSize))
	}
}

// report sees the session's progress: the transfer list, the metrics and
// the caller's progress.
func (r *run) report(p exchange.Progress) {
	total := r.total.Load()
	r.f.transfers.update(r.tr, p, total)
	r.mu.Lock()
	newBlocks := p.Blocks - r.counted
	r.counted = max(r.counted, p.Blocks)
	r.mu.Unlock()
	if newBlocks > 0 && r.f.cfg.Fetched != nil {
		r.f.cfg.Fetched(newBlocks)
	}
	if r.opts.Progress != nil || r.fl != nil {
		phase := "fetching"
		if p.Peers == 0 && p.Blocks == 0 {
			phase = "finding providers"
		}
		fp := Progress{Phase: phase, Bytes: p.Bytes, Total: total, Blocks: p.Blocks, Peers: p.Peers, From: p.From}
		if r.opts.Progress != nil {
			r.opts.Progress(fp)
		}
		if r.fl != nil {
			r.fl.notify(fp)
		}
	}
}

// reportDone tells the caller the fetch is complete, with the DAG's size
// as g says it.
func (r *run) reportDone(ctx context.Context, g share.Getter) {
	if r.opts.Progress == nil {
		return
	}
	p := r.sess.Progress()
	total := r.total.Load()
	if info, err := dag.Stat(ctx, g, r.root); err == nil {
		total = int64(info.CumulativeSize)
	}
	r.opts.Progress(Progress{Phase: "done", Bytes: p.Bytes, Total: total, Blocks: p.Blocks, Peers: p.Peers, From: p.From})
}

// end stops the session and the goroutines of the fetch and waits for
// them; the batch stays the caller's, who calls changed once it is
// committed. A gc that started meanwhile still keeps what it fetched.
func (r *run) end() {
	r.cancel()
	r.wg.Wait()
	r.sess.Close()
	r.f.transfers.end(r.tr)
	r.forget()
}

// fail ends a fetch that did not complete, keeping what arrived (verified
// blocks: a later fetch resumes there), and says why it failed.
func (r *run) fail(err error) error {
	err = r.explain(err)
	r.end()
	r.batch.Commit(context.WithoutCancel(r.ctx))
	r.batch.Close()
	r.f.changed()
	r.f.land(r.root, r.fl)
	return err
}

// explain turns the session's "no progress" into the fetch's timeout,
// saying whether providers were found at all, and the end of a fetch that
// no source could serve into the error that says so.
func (r *run) explain(err error) error {
	if why := r.src.exhausted(); err != nil && why != nil {
		return notHere(r.root, errs.KindOf(why), why) // NotFound, or Unreachable
	}
	if !errors.Is(err, exchange.ErrNoProgress) {
		return err
	}
	why := "the peers stopped sending it"
	if p := r.sess.Progress(); p.Blocks == 0 && p.Peers == 0 {
		why = "no peer that has it was found"
	}
	return notHere(r.root, errs.Timeout, fmt.Errorf("nothing arrived in time: %s", why))
}

func (f *Fetcher) changed() {
	if f.cfg.Changed != nil {
		f.cfg.Changed()
	}
}

// commitLater commits batch, the last blocks of a fetch whose reader has
// everything, in the background, and then calls release (the fetch's hold
// of the gc lock): cat and get through a daemon return when their output
// is written, not after the fsyncs of the cache (a tenth of a GiB's
// transfer). The blocks are a cache: if the commit fails, or the daemon
// dies first, a later fetch fetches them again. Reads through Local that
// miss a block wait for these commits.
func (f *Fetcher) commitLater(batch *blockstore.Batch, release func(), root cid.Cid) {
	f.pending.Add(1)
	f.finishing.RLock()
	commit := func() {
		defer f.pending.Add(-1)
		defer f.finishing.RUnlock()
		defer release()
		defer batch.Close()
		if f.cfg.BeforeCommit != nil {
			f.cfg.BeforeCommit()
		}
		if err := batch.Commit(context.Background()); err != nil {
			f.log.Warn("fetched blocks not cached", "root", root, "err", err)
		}
		f.changed()
	}
	if !f.goBackground(commit) {
		commit() // closing: commit now rather than lose the blocks
	}
}

// sessionGetter reads the DAG through the session: blocks it holds or
// fetches, and local ones (which it reads from the blockstore). A leaf the
// reader asks for a second time (a file that appears twice in a directory)
// after the session has finished is neither held by the session nor yet
// visible in the blockstore: the getter then commits the fetch's batch
// once and reads it from there.
type sessionGetter struct {
	r *run

	mu        sync.Mutex
	committed bool
	commitErr error
}

// Get asks the session first: it holds each arriving leaf for the reader,
// and a leaf that was meanwhile ingested must still be taken from it, or
// the session would hold it (and count it against its memory) to the end.
func (g *sessionGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	b, err := g.r.sess.Get(ctx, c)
	if err == nil || !errs.Is(errs.NotFound, err) || g.r.sess.Wait() != nil {
		return b, err
	}
	if err := g.commit(ctx); err != nil {
		return share.Block{}, err
	}
	return g.r.f.cfg.Store.Get(ctx, c)
}

// Has reports whether c can be read without waiting for the network.
func (g *sessionGetter) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return g.r.sess.Has(ctx, c)
}

// commit makes the finished session's blocks visible in the blockstore,
// once.
func (g *sessionGetter) commit(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.committed {
		g.committed = true
		g.commitErr = g.r.batch.Commit(ctx)
	}
	return g.commitErr
}
