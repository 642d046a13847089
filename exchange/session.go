package exchange

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/exchange/sched"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
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
	// ProgressTimeout, if positive, replaces Config.ProgressTimeout for
	// this session: the fetcher sets each fetch's idle timeout here, so
	// that one watchdog, the scheduler's, ends a fetch that stalls.
	ProgressTimeout time.Duration
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
	// From says what each provider sent (first copies), most bytes
	// first, including providers the session no longer uses.
	From []PeerStat `json:",omitempty"`
}

// PeerStat is what one provider sent a session.
type PeerStat struct {
	Peer     peer.ID
	Protocol string // the block protocol it used
	Blocks   int
	Bytes    int64
}

// Session fetches one DAG from many providers. Its methods are safe for
// concurrent use.
//
// A Session is the I/O shell around a sched.Sched, which decides what to
// ask of whom: the Session runs the goroutines (a sender and receivers per
// provider, verifiers, a watchdog), reads and writes frames, verifies and
// stores blocks and serves the reader, and under its mutex feeds the
// scheduler the events and carries out its decisions.
type Session struct {
	e    *Exchange
	cfg  *Config
	root cid.Cid
	opts SessionOptions
	ctx  context.Context
	stop context.CancelFunc

	mu          sync.Mutex
	core        *sched.Sched
	peers       map[peer.ID]*peerConn
	held        map[cid.Cid]heldBlock     // fetched blocks kept for Get (see keepLocked)
	waits       map[cid.Cid]chan struct{} // closed when the block is stored
	local       int                       // blocks found in Local
	pbLeaves    bool                      // a dag-pb leaf was fetched
	from        map[peer.ID]*PeerStat     // what each provider sent
	peakUsed    int64                     // the core's peak memory, for tests
	deferred    deferredHeap              // inner nodes whose children wait (frontier.go)
	expanding   int                       // deferred nodes being added
	peakMissing int                       // the most blocks the core knew missing, for tests
	finished    bool
	err         error
	done        chan struct{}

	putMu   sync.Mutex
	verifyQ chan verifyJob
	wg      sync.WaitGroup // run loop and verifiers
}

type verifyJob struct {
	pc     *peerConn
	c      cid.Cid
	data   []byte
	buf    *[]byte
	hasher *dag.BlockHasher // nil: hash data from scratch
}

// NewSession starts fetching the DAG under root. It runs until the whole
// DAG is local, ctx ends, Close is called or no progress is made for
// the progress timeout; Wait returns the outcome.
func (e *Exchange) NewSession(ctx context.Context, root cid.Cid, opts SessionOptions) *Session {
	ctx, stop := context.WithCancel(ctx)
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 250 * time.Millisecond
	}
	if opts.ProgressTimeout <= 0 {
		opts.ProgressTimeout = e.cfg.ProgressTimeout
	}
	s := &Session{
		e: e, cfg: &e.cfg, root: root, opts: opts, ctx: ctx, stop: stop,
		core:    sched.New(e.cfg.schedConfig(opts.ProgressTimeout), time.Now()),
		peers:   make(map[peer.ID]*peerConn),
		held:    make(map[cid.Cid]heldBlock),
		waits:   make(map[cid.Cid]chan struct{}),
		from:    make(map[peer.ID]*PeerStat),
		done:    make(chan struct{}),
		verifyQ: make(chan verifyJob, runtime.GOMAXPROCS(0)),
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

// schedConfig is the part of c that tunes a session's scheduler, with
// the session's progress timeout.
func (c *Config) schedConfig(progressTimeout time.Duration) sched.Config {
	return sched.Config{
		MinWindow: c.MinWindow, MaxWindow: c.MaxWindow,
		Lanes:            c.StreamsPerPeer,
		MaxInFlightBytes: c.MaxInFlightBytes,
		ProgressTimeout:  progressTimeout,
		MaxBlockSize:     MaxBlockSize,
	}
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
		if s.peers[p] != nil {
			continue
		}
		sp := s.core.AddPeer(p)
		if sp == nil {
			continue
		}
		pc := &peerConn{s: s, id: p, sp: sp, proto: s.e.proto, tc: s.cfg.Traffic.Peer(p), wake: make(chan struct{}, 1)}
		if s.e.useWire(p) {
			pc.want, pc.proto = true, s.e.cfg.Wire.Protocol()
		}
		s.e.log.Debug("session adds peer", "root", s.root, "peer", p, "protocol", pc.proto)
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
	n := s.core.Counts()
	p := Progress{
		Blocks: n.Blocks, Bytes: n.Bytes, LocalBlocks: s.local,
		Missing: n.Missing, Peers: len(s.peers), Duplicates: n.Duplicates,
		Done: s.finished,
	}
	if len(s.from) > 0 {
		p.From = make([]PeerStat, 0, len(s.from))
		for _, st := range s.from {
			p.From = append(p.From, *st)
		}
		slices.SortFunc(p.From, func(a, b PeerStat) int {
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(string(a.Peer), string(b.Peer)))
		})
	}
	return p
}

// countLocked records that pc sent the first copy of a block of n bytes.
func (s *Session) countLocked(pc *peerConn, n int) {
	st := s.from[pc.id]
	if st == nil {
		st = &PeerStat{Peer: pc.id, Protocol: pc.proto}
		s.from[pc.id] = st
	}
	st.Blocks++
	st.Bytes += int64(n)
	wire := traffic.Share
	if pc.want {
		wire = traffic.Bitswap
	}
	pc.tc.Received(wire, n)
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
	s.peakUsed = s.core.PeakBytes()
	peers := make([]*peerConn, 0, len(s.peers))
	for _, pc := range s.peers {
		peers = append(peers, pc)
	}
	for c, w := range s.waits {
		close(w)
		delete(s.waits, c)
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
	tick := time.NewTicker(min(100*time.Millisecond, s.opts.ProgressTimeout/4))
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

// watch ticks the scheduler: it ends a session that makes no progress and
// wakes the peers when a block a reader waits for may be asked of another
// peer, its first peer being slow to send it.
func (s *Session) watch(now time.Time) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	stalled, wake := s.core.Tick(now)
	if stalled {
		n, peers := s.core.Counts().Missing, len(s.peers)
		s.mu.Unlock()
		s.finish(fmt.Errorf("%w: %d blocks missing, nothing from %d providers for %v", ErrNoProgress, n, peers, s.opts.ProgressTimeout))
		return
	}
	if wake {
		s.wakeAllLocked()
	}
	silent := s.silentWirePeersLocked(now)
	s.mu.Unlock()
	for _, pc := range silent {
		s.dropPeer(pc, fmt.Errorf("nothing for %v", s.cfg.ReadTimeout), false)
	}
}

// addRoot registers the root, or, when it is local, what it links to.
func (s *Session) addRoot() error {
	local, err := s.isLocal(s.root)
	if err != nil {
		return err
	}
	if !local {
		s.mu.Lock()
		s.core.Add(s.root, nil, -1)
		s.wakeAllLocked()
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	s.local++
	s.mu.Unlock()
	if s.root.Type() == dag.DagPB {
		if err := s.addLocalNode(s.root, nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	done := s.completeLocked()
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
		known := s.core.Known(l.Hash)
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
			s.core.Add(l.Hash, ck, s.tsizeLocked(l))
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		s.local++
		s.mu.Unlock()
		if l.Hash.Type() == dag.DagPB {
			if err := s.addLocalNode(l.Hash, ck); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.peakMissing = max(s.peakMissing, s.core.Counts().Missing)
	s.wakeAllLocked()
	s.mu.Unlock()
	return nil
}

// tsizeLocked is the Tsize the scheduler is told of link l. A dag-pb
// link's Tsize is its whole DAG's, no estimate of its block, unless the
// DAG's dag-pb nodes have turned out to be leaves too (kubo's
// --raw-leaves=false), whose Tsize is the leaf's size.
func (s *Session) tsizeLocked(l dag.PBLink) int64 {
	if l.Hash.Type() == dag.DagPB && !s.pbLeaves {
		return -1
	}
	return int64(l.Tsize)
}

func (s *Session) wakeAllLocked() {
	for _, pc := range s.peers {
		pc.signal()
	}
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
	s.core.DropPeer(pc.sp, bad)
	finished := s.finished
	sts := pc.streamsLocked()
	s.wakeAllLocked()
	s.mu.Unlock()
	resetAll(sts)
	if pc.want {
		s.e.leaveWire(pc)
	}
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
	a := s.core.Received(pc.sp, c, len(data), now)
	s.mu.Unlock()
	if a != sched.Requested {
		putBuf(buf)
		return a == sched.Late
	}
	j := verifyJob{pc, c, data, buf, h}
	if c.Type() == dag.Raw && len(data) <= inlineVerify {
		s.verify(j)
		return true
	}
	select {
	case s.verifyQ <- j:
	case <-s.done:
		putBuf(buf)
	}
	return true
}

// inlineVerify is the largest raw leaf a receiver verifies and stores
// itself rather than through a verifier: hashing a small block takes
// less than handing it to another goroutine, and a raw leaf has no
// children to look up. Bigger blocks, and inner nodes (whose children
// are looked up in the store), go to the verifiers, so that the
// receiver goes on reading.
const inlineVerify = 16 << 10

// dontHave takes a DONT_HAVE from pc; false means it was not asked for.
func (s *Session) dontHave(pc *peerConn, c cid.Cid) bool {
	s.mu.Lock()
	a, lacks := s.core.DontHave(pc.sp, c)
	if a == sched.Requested {
		s.wakeAllLocked()
	}
	s.mu.Unlock()
	if lacks {
		s.dropPeer(pc, errors.New("does not have the DAG"), false)
	}
	return a != sched.Unrequested
}

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
	if err := check(j.c, j.data); err != nil {
		putBuf(j.buf)
		s.mu.Lock()
		s.core.Failed(j.c, len(j.data))
		s.mu.Unlock()
		s.dropPeer(j.pc, err, true)
		return
	}
	if err := s.deliver(j.c, j.data, j.buf, j.pc); err != nil {
		s.finish(err)
	}
}

// deliver records the verified block c, finds its children and stores it.
func (s *Session) deliver(c cid.Cid, data []byte, buf *[]byte, from *peerConn) error {
	s.mu.Lock()
	var v sched.Verdict
	if !s.finished {
		v = s.core.Verified(from.sp, c, len(data), time.Now())
	}
	if v.Store {
		s.countLocked(from, len(data))
	}
	for _, p := range v.Losers {
		if pc := s.peers[p.ID]; pc != nil {
			pc.signal() // to send its CANCEL
		}
	}
	s.mu.Unlock()
	if !v.Store {
		putBuf(buf)
		return nil
	}
	if v.Descend {
		if err := s.descend(c, data, v.Key); err != nil {
			putBuf(buf)
			return err
		}
	}
	if err := s.put(c, data); err != nil {
		putBuf(buf)
		return err
	}
	s.stored(c, data, buf)
	return s.expand()
}

// put hands a verified block to the Putter, if any.
func (s *Session) put(c cid.Cid, data []byte) error {
	if s.opts.Putter == nil {
		return nil
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if s.isFinished() {
		return nil
	}
	if err := s.opts.Putter.Put(s.ctx, c, data); err != nil {
		return fmt.Errorf("store %s: %w", c, err)
	}
	return nil
}

// stored records that block c is stored: a block kept for Get (see
// keepLocked) is held for the reader (its buffer then belongs to the
// reader), and whoever waits for it is woken.
func (s *Session) stored(c cid.Cid, data []byte, buf *[]byte) {
	s.mu.Lock()
	leaf := isLeaf(c, data)
	s.pbLeaves = s.pbLeaves || leaf && c.Type() == dag.DagPB
	// The root is kept, even a leaf (a one-chunk file of kubo's): the
	// fetcher reads it for the DAG's size before the reader does.
	leaf = leaf && c != s.root
	if s.keepLocked(c) {
		s.held[c] = heldBlock{data, leaf, buf != nil}
	} else {
		putBuf(buf)
		leaf = false // not retained
	}
	complete := s.core.Stored(c, len(data), leaf) && s.completeLocked()
	if w := s.waits[c]; w != nil {
		close(w)
		delete(s.waits, c)
	}
	s.wakeAllLocked()
	s.mu.Unlock()
	if complete {
		s.finish(nil)
	}
}

// keepLocked says whether stored block c is kept for Get: every block of
// a Stream session; without Stream, the root and the blocks a Get waits
// for. A session that stores for no reader (the fetcher's pin) is read
// for its root while its Putter, an uncommitted batch, is not visible in
// Local: a Get that found the block done and not local would fetch it
// again, and again until the session ended, and then fail.
func (s *Session) keepLocked(c cid.Cid) bool {
	return s.opts.Stream || c == s.root || s.waits[c] != nil
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
// the DAG, are read from Local or fetched anew while the session runs.
// Without Stream, the session holds the root, and a block Get waits for
// until Get returns it (a leaf once). A block from the session is Verified (checked against c as it arrived),
// and a leaf's Release hands its buffer back to the session; one from
// Local is as Local returned it. After the session has ended, a block it
// does not hold is of kind errs.NotFound, unless the session failed.
func (s *Session) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	for {
		s.mu.Lock()
		if h, ok := s.takeLocked(c); ok {
			s.mu.Unlock()
			var release func([]byte)
			if h.leaf && h.pooled {
				release = releaseBuf // an inner node is kept for other readers
			}
			return share.NewBlock(h.data, true, release), nil
		}
		if known, done := s.core.Status(c); s.finished || !known || done {
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
			if s.core.Known(c) != known {
				s.mu.Unlock() // changed meanwhile; look again
				continue
			}
		}
		// Unknown: not part of the DAG so far; done: fetched before and
		// given away. Either way, fetch it (again), before the rest.
		if s.core.Want(c) {
			s.wakeAllLocked()
		}
		w := s.waits[c]
		if w == nil {
			w = make(chan struct{})
			s.waits[c] = w
		}
		s.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return share.Block{}, ctx.Err()
		}
	}
}

// heldBlock is a block a Stream session keeps for its reader.
type heldBlock struct {
	data   []byte
	leaf   bool // handed over once; an inner node is kept for other readers
	pooled bool // data is a buffer of the pool, to go back once read
}

// takeLocked returns block c if the session holds it for the reader; a
// leaf is handed over (read once), an inner node is kept.
func (s *Session) takeLocked(c cid.Cid) (heldBlock, bool) {
	h, ok := s.held[c]
	if !ok {
		return heldBlock{}, false
	}
	if h.leaf {
		delete(s.held, c)
		s.core.Took(len(h.data))
		s.wakeAllLocked()
	}
	return h, true
}

// isLeaf reports whether block c holds file data and no links: a raw
// block, or a dag-pb node without links (kubo's leaves with
// --raw-leaves=false). A canonical dag-pb node encodes its links
// (field 2) before its data, so a node with links starts with field 2's
// tag; a non-canonical one is at worst kept in memory as inner nodes are.
func isLeaf(c cid.Cid, data []byte) bool {
	return c.Type() != dag.DagPB || len(data) == 0 || data[0] != pbLinksTag
}

// pbLinksTag is the tag of a dag-pb node's first link: field 2, bytes.
const pbLinksTag = 2<<3 | 2

// Has reports whether Get returns c without waiting: the session holds it
// for its reader, or Local has it.
func (s *Session) Has(ctx context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	_, held := s.held[c]
	s.mu.Unlock()
	if held || s.opts.Local == nil {
		return held, nil
	}
	return s.opts.Local.Has(ctx, c)
}

var _ share.Getter = (*Session)(nil)
