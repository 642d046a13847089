package exchange

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

// ErrNoProgress ends a session in which no block arrived for
// Config.ProgressTimeout while blocks were missing.
var ErrNoProgress = errors.New("no progress")

// SessionOptions say where a session's blocks come from and go.
type SessionOptions struct {
	// Local holds the blocks already here (the blockstore). They are not
	// fetched; local inner nodes are read to find their children. Nil
	// means nothing is local.
	Local share.Getter
	// Putter receives every fetched block, verified, once (a blockstore
	// Batch: the caller commits it after Wait). Calls are serialised.
	// Nil means blocks are not stored (a Stream session feeding a reader).
	Putter share.Putter
	// Stream keeps fetched blocks in memory until Get has returned them,
	// for a reader that consumes the DAG while it is fetched. Fetching
	// then runs at most Config.MaxInFlightBytes ahead of the reader.
	Stream bool
	// Providers to fetch from; more can be added with AddProviders.
	Providers []peer.ID
	// Progress, if not nil, is called every ProgressInterval (default
	// 250 ms) while the session runs and once when it ends, from one
	// goroutine at a time.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a snapshot of a session.
type Progress struct {
	Blocks      int   // blocks fetched, verified and stored
	Bytes       int64 // their bytes
	LocalBlocks int   // blocks found in the local store
	Missing     int   // blocks known to be missing and not yet fetched
	Peers       int   // providers in use
	Duplicates  int   // blocks received more than once (endgame)
	Done        bool  // the session has ended
}

type entryState uint8

const (
	statePending     entryState = iota // in the heap, waiting for a peer
	stateOutstanding                   // requested from one or more peers
	stateVerifying                     // received, being verified
	stateStoring                       // verified, being stored
	stateDone
)

// entry is a block of the DAG that is not local.
type entry struct {
	c        cid.Cid
	key      []uint32 // position in DAG order: child indexes from the root
	inner    bool     // dag-pb: fetched before leaves, since it names more blocks
	est      int64    // expected size
	state    entryState
	prio     bool // a reader waits for it
	dupOK    bool // outstanding too long while a reader waits: may be duplicated
	heapIdx  int
	at       []*peerConn // peers it is outstanding at
	sentAt   time.Time   // when it was first requested
	dontHave []*peerConn
	arrived  bool   // a copy is being verified
	found    bool   // its children were added
	data     []byte // kept for Get in Stream mode
	wait     chan struct{}
}

func (e *entry) wake() {
	if e.wait != nil {
		close(e.wait)
		e.wait = nil
	}
}

// entryHeap orders pending entries: those a reader waits for, then inner
// nodes, then DAG order.
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.prio != b.prio {
		return a.prio
	}
	if a.inner != b.inner {
		return a.inner
	}
	return slices.Compare(a.key, b.key) < 0
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}

// Session fetches one DAG from many providers. Its methods are safe for
// concurrent use.
type Session struct {
	e    *Exchange
	cfg  *Config
	root cid.Cid
	opts SessionOptions
	ctx  context.Context
	stop context.CancelFunc

	mu           sync.Mutex
	entries      map[cid.Cid]*entry
	pending      entryHeap
	outstanding  map[*entry]struct{}
	waited       map[*entry]struct{} // entries a reader waits for
	unfinished   int
	peers        map[peer.ID]*peerConn
	excluded     map[peer.ID]bool
	inflight     int64 // estimated bytes requested and not yet received
	verifying    int64 // bytes received and not yet stored
	retained     int64 // leaf bytes kept for the reader
	peakUsed     int64 // the most of inflight+verifying+retained, for tests
	refetches    int
	avgBlock     float64
	prog         Progress
	lastProgress time.Time
	finished     bool
	err          error
	done         chan struct{}

	putMu   sync.Mutex
	verifyQ chan verifyJob
	wg      sync.WaitGroup // run loop and verifiers
}

type verifyJob struct {
	pc     *peerConn
	e      *entry
	data   []byte
	buf    *[]byte
	hasher *dag.BlockHasher // nil: hash data from scratch
}

// NewSession starts fetching the DAG under root. It runs until the whole
// DAG is local, ctx ends, Close is called or no progress is made for
// Config.ProgressTimeout; Wait returns the outcome.
func (e *Exchange) NewSession(ctx context.Context, root cid.Cid, opts SessionOptions) *Session {
	ctx, stop := context.WithCancel(ctx)
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 250 * time.Millisecond
	}
	s := &Session{
		e: e, cfg: &e.cfg, root: root, opts: opts, ctx: ctx, stop: stop,
		entries:      make(map[cid.Cid]*entry),
		outstanding:  make(map[*entry]struct{}),
		waited:       make(map[*entry]struct{}),
		peers:        make(map[peer.ID]*peerConn),
		excluded:     make(map[peer.ID]bool),
		avgBlock:     256 << 10,
		lastProgress: time.Now(),
		done:         make(chan struct{}),
		verifyQ:      make(chan verifyJob, runtime.GOMAXPROCS(0)),
	}
	context.AfterFunc(ctx, func() { s.finish(context.Cause(ctx)) })
	for range runtime.GOMAXPROCS(0) {
		s.wg.Add(1)
		go s.verifier()
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// AddProviders adds peers to fetch from. Peers already in use and peers
// this session caught misbehaving are ignored.
func (s *Session) AddProviders(ps ...peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	for _, p := range ps {
		if s.peers[p] != nil || s.excluded[p] {
			continue
		}
		pc := &peerConn{
			s: s, id: p,
			reqs:      make(map[cid.Cid]sentReq),
			cancelled: make(map[cid.Cid]struct{}),
			window:    s.cfg.MinWindow,
			wake:      make(chan struct{}, 1),
		}
		s.peers[p] = pc
		pc.signal()
		go pc.run()
	}
}

// Wait waits for the session to end and returns nil once every block of
// the DAG is local (stored through Putter or found in Local).
func (s *Session) Wait() error {
	<-s.done
	s.wg.Wait()
	return s.err
}

// Done is closed when the session ends.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends the session, if it still runs, and waits for it.
func (s *Session) Close() error {
	s.finish(context.Canceled)
	s.wg.Wait()
	return nil
}

// Progress returns a snapshot of the session.
func (s *Session) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progressLocked()
}

func (s *Session) progressLocked() Progress {
	p := s.prog
	p.Missing = s.unfinished
	p.Peers = len(s.peers)
	p.Done = s.finished
	return p
}

// finish ends the session with err (nil: complete).
func (s *Session) finish(err error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished, s.err = true, err
	if err != nil {
		s.err = fmt.Errorf("fetch %s: %w", s.root, err)
	}
	peers := make([]*peerConn, 0, len(s.peers))
	for _, pc := range s.peers {
		peers = append(peers, pc)
	}
	for _, en := range s.entries {
		en.wake()
	}
	close(s.done)
	s.mu.Unlock()
	s.stop()
	for _, pc := range peers {
		pc.close(err == nil)
	}
}

// run adds the root, then watches progress until the session ends.
func (s *Session) run() {
	defer s.wg.Done()
	if err := s.addRoot(); err != nil {
		s.finish(err)
	}
	s.AddProviders(s.opts.Providers...)
	tick := time.NewTicker(min(100*time.Millisecond, s.cfg.ProgressTimeout/4))
	defer tick.Stop()
	lastReport := time.Now()
	for {
		select {
		case <-s.done:
			if s.opts.Progress != nil {
				s.opts.Progress(s.Progress())
			}
			return
		case now := <-tick.C:
			s.watch(now)
			if s.opts.Progress != nil && now.Sub(lastReport) >= s.opts.ProgressInterval {
				lastReport = now
				s.opts.Progress(s.Progress())
			}
		}
	}
}

// watch ends a session that makes no progress and lets a block a reader
// waits for be requested again from another peer when its first peer is
// slow to send it.
func (s *Session) watch(now time.Time) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	if s.inflight == 0 && s.verifying == 0 && s.retained > 0 {
		s.lastProgress = now // waiting for the reader, not for the network
	}
	if now.Sub(s.lastProgress) > s.cfg.ProgressTimeout {
		n, peers := s.unfinished, len(s.peers)
		s.mu.Unlock()
		s.finish(fmt.Errorf("%w: %d blocks missing, nothing from %d providers for %v", ErrNoProgress, n, peers, s.cfg.ProgressTimeout))
		return
	}
	stale := false
	for en := range s.waited {
		if en.state != stateOutstanding || en.dupOK || len(en.at) == 0 {
			continue
		}
		if now.Sub(en.sentAt) > en.at[0].staleAfter(en.est) {
			en.dupOK, stale = true, true
		}
	}
	if stale {
		s.wakeAllLocked()
	}
	s.mu.Unlock()
}

// addRoot registers the root, or, when it is local, what it links to.
func (s *Session) addRoot() error {
	local, err := s.isLocal(s.root)
	if err != nil {
		return err
	}
	if !local {
		s.mu.Lock()
		s.addEntryLocked(s.root, nil, -1)
		s.wakeAllLocked()
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	s.prog.LocalBlocks++
	s.mu.Unlock()
	if s.root.Type() == dag.DagPB {
		if err := s.addLocalNode(s.root, nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	done := s.unfinished == 0
	s.mu.Unlock()
	if done {
		s.finish(nil)
	}
	return nil
}

func (s *Session) isLocal(c cid.Cid) (bool, error) {
	if s.opts.Local == nil {
		return false, nil
	}
	ok, err := s.opts.Local.Has(s.ctx, c)
	if err != nil {
		return false, fmt.Errorf("local %s: %w", c, err)
	}
	return ok, nil
}

// addLocalNode reads the local dag-pb node c at position key and adds its
// children, descending into the local inner nodes among them.
func (s *Session) addLocalNode(c cid.Cid, key []uint32) error {
	b, err := s.opts.Local.Get(s.ctx, c)
	if err != nil {
		return fmt.Errorf("local %s: %w", c, err)
	}
	n, err := dag.DecodePBNode(b.Data)
	b.Release() // the links are copies
	if err != nil {
		return fmt.Errorf("local %s: %w", c, err)
	}
	return s.addChildren(n.Links, key)
}

// addChildren adds the blocks linked from the node at key that are not
// local, in link order.
func (s *Session) addChildren(links []dag.PBLink, key []uint32) error {
	for i, l := range links {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		ck := append(key[:len(key):len(key)], uint32(i))
		s.mu.Lock()
		known := s.entries[l.Hash] != nil
		s.mu.Unlock()
		if known {
			continue
		}
		local, err := s.isLocal(l.Hash)
		if err != nil {
			return err
		}
		if !local {
			s.mu.Lock()
			s.addEntryLocked(l.Hash, ck, int64(l.Tsize))
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.prog.LocalBlocks++
		s.mu.Unlock()
		if l.Hash.Type() == dag.DagPB {
			if err := s.addLocalNode(l.Hash, ck); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.wakeAllLocked()
	s.mu.Unlock()
	return nil
}

// addEntryLocked registers a missing block; tsize is its link's Tsize, or
// -1 when unknown.
func (s *Session) addEntryLocked(c cid.Cid, key []uint32, tsize int64) *entry {
	if en := s.entries[c]; en != nil {
		return en
	}
	en := &entry{c: c, key: key, inner: c.Type() == dag.DagPB, heapIdx: -1}
	switch {
	case en.inner:
		en.est = 16 << 10 // a dag-pb node of 174 links is about 8 KiB
	case tsize > 0:
		en.est = min(tsize, MaxBlockSize)
	default:
		en.est = int64(s.avgBlock)
	}
	s.entries[c] = en
	s.unfinished++
	heap.Push(&s.pending, en)
	return en
}

func (s *Session) wakeAllLocked() {
	for _, pc := range s.peers {
		pc.signal()
	}
}

// requeueLocked puts an entry nobody is sending back in the heap.
func (s *Session) requeueLocked(en *entry) {
	if en.state >= stateStoring || len(en.at) > 0 || en.heapIdx >= 0 {
		return
	}
	en.state = statePending
	en.dupOK = false
	delete(s.outstanding, en)
	heap.Push(&s.pending, en)
	s.wakeAllLocked()
}

// overBudgetLocked reports whether requesting est more bytes would exceed
// the session's memory budget. The first request always fits.
func (s *Session) overBudgetLocked(est int64) bool {
	used := s.inflight + s.verifying + s.retained
	return used > 0 && used+est > s.cfg.MaxInFlightBytes
}

// assignLocked hands pc new requests up to its window and appends their
// WANT frames to bufs[lane], adding lanes as laneLocked opens them.
func (s *Session) assignLocked(pc *peerConn, bufs [][]byte) [][]byte {
	now := time.Now()
	for len(pc.reqs) < pc.window {
		en := s.pickDupLocked(pc, true)
		if en == nil {
			en = s.pickPendingLocked(pc)
		}
		if en == nil && s.pending.Len() == 0 {
			en = s.pickDupLocked(pc, false) // endgame
		}
		if en == nil {
			break
		}
		// A block a reader waits for is requested whatever the budget,
		// so that a reader never waits for blocks it has not read yet.
		if !(en.prio && en.state == statePending) && s.overBudgetLocked(en.est) {
			if en.state == statePending {
				heap.Push(&s.pending, en)
			}
			break
		}
		if len(pc.reqs) == 0 {
			pc.accStart, pc.accBytes = now, 0
		}
		if en.state == statePending {
			en.state, en.sentAt = stateOutstanding, now
			s.outstanding[en] = struct{}{}
		}
		en.at = append(en.at, pc)
		lane := pc.laneLocked(en.est)
		pc.reqs[en.c] = sentReq{en, now, lane}
		pc.lanes[lane].bytes += en.est
		pc.lanes[lane].reqs++
		s.inflight += en.est
		s.peakUsed = max(s.peakUsed, s.inflight+s.verifying+s.retained)
		bufs = growBufs(bufs, lane+1)
		bufs[lane] = appendMessage(bufs[lane], msgWantBlock, en.c)
	}
	return bufs
}

// pickPendingLocked pops the first pending entry pc has not said it lacks.
func (s *Session) pickPendingLocked(pc *peerConn) *entry {
	var skipped []*entry
	defer func() {
		for _, en := range skipped {
			heap.Push(&s.pending, en)
		}
	}()
	for s.pending.Len() > 0 {
		en := heap.Pop(&s.pending).(*entry)
		if slices.Contains(en.dontHave, pc) {
			skipped = append(skipped, en)
			continue
		}
		return en
	}
	return nil
}

// maxCopies is how many peers an entry may be outstanding at.
const maxCopies = 2

// pickDupLocked picks an outstanding entry for pc to request as well: the
// oldest one, among those a reader waits for too long if onlyWaited, among
// all otherwise (endgame).
func (s *Session) pickDupLocked(pc *peerConn, onlyWaited bool) *entry {
	set := s.outstanding
	if onlyWaited {
		set = s.waited
	}
	var best *entry
	for en := range set {
		if en.state != stateOutstanding || en.arrived || len(en.at) >= maxCopies || (onlyWaited && !en.dupOK) ||
			slices.Contains(en.at, pc) || slices.Contains(en.dontHave, pc) {
			continue
		}
		if best == nil || en.sentAt.Before(best.sentAt) {
			best = en
		}
	}
	return best
}

// dropPeer stops using pc and gives its requests to the others. bad says
// pc misbehaved: it is reported and never used again by this session.
func (s *Session) dropPeer(pc *peerConn, err error, bad bool) {
	s.mu.Lock()
	if pc.dead {
		s.mu.Unlock()
		return
	}
	pc.dead = true
	if s.peers[pc.id] == pc {
		delete(s.peers, pc.id)
	}
	if bad {
		s.excluded[pc.id] = true
	}
	for c, r := range pc.reqs {
		delete(pc.reqs, c)
		r.e.at = slices.DeleteFunc(r.e.at, func(x *peerConn) bool { return x == pc })
		s.inflight -= r.e.est
		s.requeueLocked(r.e)
	}
	finished := s.finished
	sts := pc.streamsLocked()
	s.wakeAllLocked()
	s.mu.Unlock()
	resetAll(sts)
	if finished {
		return
	}
	s.e.log.Debug("session drops peer", "root", s.root, "peer", pc.id, "bad", bad, "err", err)
	if bad {
		s.e.badPeer(pc.id, err)
	}
}

// received takes a BLOCK frame from pc. It returns false when pc must be
// dropped for sending a block it was not asked for.
func (s *Session) received(pc *peerConn, c cid.Cid, data []byte, buf *[]byte, h *dag.BlockHasher) bool {
	now := time.Now()
	s.mu.Lock()
	r, ok := pc.reqs[c]
	if !ok {
		_, late := pc.cancelled[c]
		delete(pc.cancelled, c)
		if late {
			s.prog.Duplicates++
		}
		s.mu.Unlock()
		putBuf(buf)
		return late
	}
	en := r.e
	pc.forgetLocked(c)
	en.at = slices.DeleteFunc(en.at, func(x *peerConn) bool { return x == pc })
	s.inflight -= en.est
	s.verifying += int64(len(data))
	en.arrived = true
	if len(en.at) == 0 && en.state == stateOutstanding {
		en.state = stateVerifying
		delete(s.outstanding, en)
	}
	pc.measure(now, r.sent, len(data))
	s.avgBlock = 0.9*s.avgBlock + 0.1*float64(len(data))
	s.mu.Unlock()
	select {
	case s.verifyQ <- verifyJob{pc, en, data, buf, h}:
	case <-s.done:
		putBuf(buf)
	}
	return true
}

// dontHave takes a DONT_HAVE from pc; false means it was not asked for.
func (s *Session) dontHave(pc *peerConn, c cid.Cid) bool {
	s.mu.Lock()
	r, ok := pc.reqs[c]
	if !ok {
		_, late := pc.cancelled[c]
		delete(pc.cancelled, c)
		s.mu.Unlock()
		return late
	}
	en := r.e
	pc.forgetLocked(c)
	en.at = slices.DeleteFunc(en.at, func(x *peerConn) bool { return x == pc })
	en.dontHave = append(en.dontHave, pc)
	s.inflight -= en.est
	s.requeueLocked(en)
	pc.dontHaveRun++
	lacks := pc.dontHaveRun > maxDontHaveRun
	s.wakeAllLocked()
	s.mu.Unlock()
	if lacks {
		s.dropPeer(pc, errors.New("does not have the DAG"), false)
	}
	return true
}

// maxDontHaveRun is how many DONT_HAVEs in a row make a session stop
// asking a peer.
const maxDontHaveRun = 16

func (s *Session) verifier() {
	defer s.wg.Done()
	for {
		select {
		case j := <-s.verifyQ:
			s.verify(j)
		case <-s.done:
			for {
				select {
				case j := <-s.verifyQ:
					putBuf(j.buf)
				default:
					return
				}
			}
		}
	}
}

// verify checks a received block and stores it, or drops its sender.
func (s *Session) verify(j verifyJob) {
	check := dag.Verify
	if j.hasher != nil {
		check = j.hasher.Verify
	}
	if err := check(j.e.c, j.data); err != nil {
		putBuf(j.buf)
		s.mu.Lock()
		s.verifying -= int64(len(j.data))
		j.e.arrived = false
		if j.e.state == stateVerifying {
			s.requeueLocked(j.e)
		}
		s.mu.Unlock()
		s.dropPeer(j.pc, err, true)
		return
	}
	if err := s.deliver(j.e, j.data, j.buf, j.pc); err != nil {
		s.finish(err)
	}
}

// deliver records the verified block of en, finds its children and
// stores it.
func (s *Session) deliver(en *entry, data []byte, buf *[]byte, from *peerConn) error {
	s.mu.Lock()
	s.verifying -= int64(len(data))
	from.dontHaveRun = 0
	if en.state >= stateStoring || s.finished {
		if !s.finished {
			s.prog.Duplicates++
		}
		s.mu.Unlock()
		putBuf(buf)
		return nil
	}
	en.state = stateStoring
	delete(s.outstanding, en)
	if en.heapIdx >= 0 {
		heap.Remove(&s.pending, en.heapIdx)
	}
	for _, other := range en.at { // endgame losers
		other.cancelLocked(en.c, other.reqs[en.c].lane)
		other.forgetLocked(en.c)
		other.cancelled[en.c] = struct{}{}
		s.inflight -= en.est
		other.signal()
	}
	en.at = nil
	s.prog.Blocks++
	s.prog.Bytes += int64(len(data))
	s.lastProgress = time.Now()
	findChildren := en.inner && !en.found
	en.found = true
	key := en.key
	s.mu.Unlock()

	if findChildren {
		n, err := dag.DecodePBNode(data)
		if err != nil {
			putBuf(buf)
			return fmt.Errorf("block %s: %w", en.c, err)
		}
		if err := s.addChildren(n.Links, key); err != nil {
			putBuf(buf)
			return err
		}
	}
	if s.opts.Putter != nil {
		s.putMu.Lock()
		var err error
		if !s.isFinished() {
			err = s.opts.Putter.Put(s.ctx, en.c, data)
		}
		s.putMu.Unlock()
		if err != nil {
			putBuf(buf)
			return fmt.Errorf("store %s: %w", en.c, err)
		}
	}

	s.mu.Lock()
	en.state = stateDone
	delete(s.waited, en)
	if s.opts.Stream {
		en.data = data // the buffer now belongs to the reader
		if !en.inner {
			s.retained += int64(len(data))
		}
	} else {
		putBuf(buf)
	}
	en.wake()
	s.unfinished--
	complete := s.unfinished == 0
	s.wakeAllLocked()
	s.mu.Unlock()
	if complete {
		s.finish(nil)
	}
	return nil
}

func (s *Session) isFinished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

// releaseBuf takes back the buffer of a leaf that Get gave away once its
// reader is done with it, so that it serves the next block.
func releaseBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	putBuf(&b)
}

// Get returns block c, waiting for the session to fetch it and moving it
// to the front of the queue. It makes the session a share.Getter for a
// reader that consumes the DAG while it arrives: with Stream set, each
// leaf is held until Get returns it once; blocks read again, or not part of
// the DAG, are read from Local or fetched anew while the session runs. A
// block from the session is Verified (checked against c as it arrived),
// and a leaf's Release hands its buffer back to the session; one from
// Local is as Local returned it. After the session has ended, a block it
// does not hold is of kind errs.NotFound, unless the session failed.
func (s *Session) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	for {
		s.mu.Lock()
		en := s.entries[c]
		if en != nil && en.data != nil {
			data := en.data
			if en.inner { // kept for other readers: nothing to release
				s.mu.Unlock()
				return share.NewBlock(data, true, nil), nil
			}
			en.data = nil
			s.retained -= int64(len(data))
			s.wakeAllLocked()
			s.mu.Unlock()
			return share.NewBlock(data, true, releaseBuf), nil
		}
		if s.finished || en == nil || en.state == stateDone {
			s.mu.Unlock()
			if s.opts.Local != nil {
				if b, err := s.opts.Local.Get(ctx, c); err == nil {
					return b, nil
				}
			}
			s.mu.Lock()
			if s.finished {
				err := s.err
				s.mu.Unlock()
				if err == nil {
					err = errs.E(errs.NotFound, c)
				}
				return share.Block{}, err
			}
			if cur := s.entries[c]; cur != en {
				s.mu.Unlock() // changed meanwhile; look again
				continue
			}
			if en == nil {
				en = s.addEntryLocked(c, nil, -1)
			} else { // fetched before and given away: fetch again
				s.refetches++
				en.state, en.dupOK, en.arrived = statePending, false, false
				en.found = true
				s.unfinished++
				heap.Push(&s.pending, en)
			}
		}
		if !en.prio {
			en.prio = true
			if en.heapIdx >= 0 {
				heap.Fix(&s.pending, en.heapIdx)
			}
			s.waited[en] = struct{}{}
			s.wakeAllLocked()
		}
		if en.wait == nil {
			en.wait = make(chan struct{})
		}
		w := en.wait
		s.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return share.Block{}, ctx.Err()
		}
	}
}

// Has reports whether Get returns c without waiting: the session holds it
// for its reader, or Local has it.
func (s *Session) Has(ctx context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	en := s.entries[c]
	held := en != nil && en.data != nil
	s.mu.Unlock()
	if held || s.opts.Local == nil {
		return held, nil
	}
	return s.opts.Local.Has(ctx, c)
}

var _ share.Getter = (*Session)(nil)

// staleAfter is how long pc may take to send a block of est bytes before
// another peer is asked for it too.
func (pc *peerConn) staleAfter(est int64) time.Duration {
	d := 500 * time.Millisecond
	if pc.rate > 0 {
		exp := pc.minRTT + time.Duration(float64(est)/pc.rate*float64(time.Second))
		d = max(d, 4*exp)
	}
	return d
}

// horizon is how far ahead a peer's window reaches beyond its round trip:
// enough requests to keep it busy for this long.
const horizon = 50 * time.Millisecond

// measure updates pc's throughput and window with a block of n bytes
// requested at sent.
func (pc *peerConn) measure(now, sent time.Time, n int) {
	if rtt := now.Sub(sent); pc.minRTT == 0 || rtt < pc.minRTT {
		pc.minRTT = rtt
	}
	pc.accBytes += int64(n)
	el := now.Sub(pc.accStart)
	if el < 10*time.Millisecond {
		return
	}
	sample := float64(pc.accBytes) / el.Seconds()
	if pc.rate == 0 {
		pc.rate = sample
	} else {
		pc.rate = 0.75*pc.rate + 0.25*sample
	}
	pc.accStart, pc.accBytes = now, 0
	w := math.Ceil(pc.rate * (pc.minRTT + horizon).Seconds() / pc.s.avgBlock)
	pc.window = int(min(max(w, float64(pc.s.cfg.MinWindow)), float64(pc.s.cfg.MaxWindow)))
}
