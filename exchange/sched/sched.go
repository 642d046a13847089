// Package sched decides what a fetch session asks of which peer: it owns
// the frontier of missing blocks (inner nodes first, then DAG order, a
// block a reader waits for before all), every peer's window of requests
// and the rate it is measured at, the memory budget, endgame duplicates
// and the peers that misbehave or lack the DAG.
//
// A Sched is a deterministic state machine: it starts no goroutines, does
// no I/O, takes no locks and reads no clock. Its shell (exchange.Session
// for the share block protocol; another protocol may drive one too) feeds
// it events, with the time, from one goroutine at a time, and carries out
// its decisions: the requests and CANCELs Assign returns, the peers to
// drop, the end of the session. It knows CIDs, sizes and peers, not frames.
package sched

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/p2p/peer"
)

// Config tunes a Sched; the shell fills every field.
type Config struct {
	// MinWindow and MaxWindow bound the requests outstanding at a peer.
	MinWindow, MaxWindow int
	// Lanes is how many streams a peer's requests may spread over.
	Lanes int
	// MaxInFlightBytes bounds the bytes requested and not yet stored,
	// plus those retained for a reader.
	MaxInFlightBytes int64
	// ProgressTimeout is how long the session may go without a block
	// before Tick reports it stalled.
	ProgressTimeout time.Duration
	// MaxBlockSize caps the size expected of a block from its link's Tsize.
	MaxBlockSize int64
}

// Sched is the scheduler of one session. It is not safe for concurrent
// use: the shell serialises its calls.
type Sched struct {
	cfg Config

	entries map[cid.Cid]*entry // blocks missing or on their way
	// done holds the blocks stored or handed to the reader, with their
	// expected size (for a refetch). They leave entries, so that the
	// scheduler of a tree of a million files keeps a CID, not a whole
	// entry, for each block it has fetched.
	done        map[cid.Cid]int64
	pending     entryHeap
	outstanding map[*entry]struct{}
	waited      map[*entry]struct{} // entries a reader waits for
	unfinished  int
	excluded    map[peer.ID]bool
	inflight    int64 // estimated bytes requested and not yet received
	verifying   int64 // bytes received and not yet stored
	retained    int64 // leaf bytes kept for the reader
	peakUsed    int64 // the most of inflight+verifying+retained
	refetches   int
	avgBlock    float64 // the mean size of the blocks received, smoothed
	sized       int     // blocks in avgBlock, up to 10

	blocks       int
	bytes        int64
	duplicates   int
	lastProgress time.Time
	losers       []*Peer
}

// New returns a Sched with nothing to fetch, its progress clock started at
// now.
func New(cfg Config, now time.Time) *Sched {
	return &Sched{
		cfg:          cfg,
		entries:      make(map[cid.Cid]*entry),
		done:         make(map[cid.Cid]int64),
		outstanding:  make(map[*entry]struct{}),
		waited:       make(map[*entry]struct{}),
		excluded:     make(map[peer.ID]bool),
		avgBlock:     256 << 10,
		lastProgress: now,
	}
}

// AddPeer starts scheduling requests for the provider id; nil means id
// was caught misbehaving and is not to be asked again.
func (s *Sched) AddPeer(id peer.ID) *Peer {
	if s.excluded[id] {
		return nil
	}
	return &Peer{
		ID:        id,
		reqs:      make(map[cid.Cid]sentReq),
		cancelled: make(map[cid.Cid]struct{}),
		lanes:     make([]lane, 1, s.cfg.Lanes),
		window:    s.cfg.MinWindow,
	}
}

// DropPeer stops using p (its stream died, it lacks the DAG, or, if bad,
// it misbehaved: then it is never used again) and gives its requests back
// to the frontier for the others.
func (s *Sched) DropPeer(p *Peer, bad bool) {
	if p.dead {
		return
	}
	p.dead = true
	if bad {
		s.excluded[p.ID] = true
	}
	for c, r := range p.reqs {
		delete(p.reqs, c)
		r.e.unlink(p)
		s.inflight -= r.e.est
		s.requeue(r.e)
	}
}

// Known reports whether c is a block of the frontier (missing, fetched,
// or being fetched).
func (s *Sched) Known(c cid.Cid) bool {
	if s.entries[c] != nil {
		return true
	}
	_, ok := s.done[c]
	return ok
}

// Add registers the missing block c at position key in DAG order (the
// child indexes from the root); tsize is its link's Tsize, or -1 when
// unknown. A block already known is left as it is.
func (s *Sched) Add(c cid.Cid, key []uint32, tsize int64) {
	s.add(c, key, tsize)
}

func (s *Sched) add(c cid.Cid, key []uint32, tsize int64) *entry {
	if en := s.entries[c]; en != nil {
		return en
	}
	if _, ok := s.done[c]; ok {
		return nil
	}
	en := &entry{c: c, key: key, inner: c.Type() == dag.DagPB, heapIdx: -1}
	switch {
	case en.inner && (tsize <= 0 || tsize > s.cfg.MaxBlockSize):
		en.est = 16 << 10 // a dag-pb node of 174 links is about 8 KiB
	case tsize > 0:
		// A leaf, or a dag-pb node whose whole DAG fits in a block, as
		// kubo's dag-pb leaves do: the block is at most its Tsize.

		en.est = min(tsize, s.cfg.MaxBlockSize)
	default:
		en.est = int64(s.avgBlock)
	}
	s.entries[c] = en
	s.unfinished++
	heap.Push(&s.pending, en)
	return en
}

// Send is one message Assign asks the shell to send to a peer.
type Send struct {
	C      cid.Cid
	Lane   int  // the stream, 0 to Lanes-1
	Cancel bool // a CANCEL of an earlier request; else a request
}

// Assign returns what p is to be sent now, appended to out: the CANCELs
// queued for it, then new requests up to its window, as far as the memory
// budget allows. A request's lane may be one p has no stream for yet
// (see Lanes).
func (s *Sched) Assign(p *Peer, now time.Time, out []Send) []Send {
	for i := range p.lanes {
		l := &p.lanes[i]
		for _, c := range l.cancelQ {
			out = append(out, Send{C: c, Lane: i, Cancel: true})
		}
		l.cancelQ = l.cancelQ[:0]
	}
	if len(p.reqs) > 0 && p.window-len(p.reqs) < refillBatch(p.window) && !s.urgent() {
		return out
	}
	for len(p.reqs) < p.window {
		en := s.pick(p)
		if en == nil {
			break
		}
		// A block a reader waits for is requested whatever the budget,
		// so that a reader never waits for blocks it has not read yet.
		if !(en.prio && en.state == statePending) && s.overBudget(en.est) {
			if en.state == statePending {
				heap.Push(&s.pending, en)
			}
			break
		}
		out = append(out, Send{C: en.c, Lane: s.request(p, en, now)})
	}
	return out
}

// refillBatch is how much room a busy peer's window of w requests must
// have before Assign refills it: with small blocks a window drains one
// block at a time, and refilling it as often sends each WANT in a frame,
// a stream write and a TLS record of its own (a tenth of a fetching
// node's CPU with 1 KiB blocks). A sixteenth leaves the window at least
// 15/16 full; windows under 32 are refilled at once.
func refillBatch(w int) int { return max(1, w/16) }

// urgent reports whether a block is to be asked now: one a reader waits
// for, pending or outstanding too long at a slow peer, or a pending inner
// node, whose children are the work behind it (the pending heap has
// those first).
func (s *Sched) urgent() bool {
	if s.pending.Len() > 0 && (s.pending[0].prio || s.pending[0].inner) {
		return true
	}
	for en := range s.waited {
		if en.dupOK {
			return true
		}
	}
	return false
}

// request records that en is asked of p now and returns its lane.
func (s *Sched) request(p *Peer, en *entry, now time.Time) int {
	if len(p.reqs) == 0 {
		p.busy(now)
	}
	if en.state == statePending {
		en.state, en.sentAt = stateOutstanding, now
		s.outstanding[en] = struct{}{}
	}
	en.at = append(en.at, p)
	ln := p.pickLane(en.est, s.cfg.Lanes)
	p.reqs[en.c] = sentReq{en, now, ln}
	p.lanes[ln].bytes += en.est
	p.lanes[ln].reqs++
	s.inflight += en.est
	s.peakUsed = max(s.peakUsed, s.inflight+s.verifying+s.retained)
	return ln
}

// Lanes is how many lanes p's requests use so far.
func (s *Sched) Lanes(p *Peer) int { return len(p.lanes) }

// Outstanding is how many requests p has not answered.
func (s *Sched) Outstanding(p *Peer) int { return len(p.reqs) }

// LaneEnded reports whether the end of p's lane costs nothing (it has no
// requests outstanding: a provider closes streams that are idle for a
// while), and if so drops its queued CANCELs, whose requests were all
// answered. The shell reopens the lane when Assign next uses it.
func (s *Sched) LaneEnded(p *Peer, ln int) bool {
	if ln >= len(p.lanes) || p.lanes[ln].reqs > 0 {
		return false
	}
	p.lanes[ln].cancelQ = p.lanes[ln].cancelQ[:0]
	return true
}

// Answer says how an answer from a peer relates to its requests.
type Answer uint8

const (
	// Requested: the answer to an outstanding request.
	Requested Answer = iota
	// Late: the answer to a request cancelled since; ignore it.
	Late
	// Unrequested: nobody asked; the peer misbehaves.
	Unrequested
)

// Received records that p sent n bytes for c at now, to be verified by
// the shell (then Verified or Failed).
func (s *Sched) Received(p *Peer, c cid.Cid, n int, now time.Time) Answer {
	r, ok := p.reqs[c]
	if !ok {
		if p.late(c) {
			s.duplicates++
			return Late
		}
		return Unrequested
	}
	en := r.e
	p.forget(c)
	en.unlink(p)
	s.inflight -= en.est
	s.verifying += int64(n)
	en.arrived = true
	if len(en.at) == 0 && en.state == stateOutstanding {
		en.state = stateVerifying
		delete(s.outstanding, en)
	}
	s.sizeBlock(n)
	p.measure(now, r.sent, n, s.avgBlock, &s.cfg)
	return Requested
}

// sizeBlock counts a block of n bytes in the mean block size: the mean of
// the first ten blocks, then a moving average over about ten. New's guess
// of 256 KiB, decaying by a tenth a block from the first, kept a window
// of 1 KiB blocks at its minimum for 50 blocks (12 round trips at
// MinWindow 4).
func (s *Sched) sizeBlock(n int) {
	if s.sized < 10 {
		s.sized++
		s.avgBlock += (float64(n) - s.avgBlock) / float64(s.sized)
		return
	}
	s.avgBlock = 0.9*s.avgBlock + 0.1*float64(n)
}

// maxDontHaveRun is how many DONT_HAVEs in a row make a session stop
// asking a peer.
const maxDontHaveRun = 16

// DontHave records that p lacks c; drop says p has said so too often in
// a row and is to be dropped (DropPeer, not bad).
func (s *Sched) DontHave(p *Peer, c cid.Cid) (a Answer, drop bool) {
	r, ok := p.reqs[c]
	if !ok {
		if p.late(c) {
			return Late, false
		}
		return Unrequested, false
	}
	en := r.e
	p.forget(c)
	en.unlink(p)
	en.dontHave = append(en.dontHave, p)
	s.inflight -= en.est
	s.requeue(en)
	p.dontHaveRun++
	return Requested, p.dontHaveRun > maxDontHaveRun
}

// Failed records that the n bytes received for c did not verify. The
// shell drops their sender with DropPeer(p, true).
func (s *Sched) Failed(c cid.Cid, n int) {
	en := s.entries[c]
	s.verifying -= int64(n)
	if en == nil { // a copy of a block stored since
		return
	}
	en.arrived = false
	if en.state == stateVerifying {
		s.requeue(en)
	}
}

// Verdict is what Verified decides about a good block.
type Verdict struct {
	// Store: the first good copy; the shell stores it, then calls Stored.
	// Otherwise it is a duplicate, to be dropped.
	Store bool
	// Descend: an inner node seen the first time; the shell adds its
	// children (Add) at Key followed by their index.
	Descend bool
	Key     []uint32
	// Losers are the peers whose requests of the block were cancelled
	// (endgame), to be woken to send the CANCELs. Valid until the next
	// call.
	Losers []*Peer
}

// Verified records that the n bytes p sent for c hash to c, at now.
func (s *Sched) Verified(p *Peer, c cid.Cid, n int, now time.Time) Verdict {
	en := s.entries[c]
	s.verifying -= int64(n)
	p.dontHaveRun = 0
	if en == nil || en.state >= stateStoring { // nil: stored already
		s.duplicates++
		return Verdict{}
	}
	en.state = stateStoring
	delete(s.outstanding, en)
	if en.heapIdx >= 0 {
		heap.Remove(&s.pending, en.heapIdx)
	}
	s.losers = s.losers[:0]
	for _, other := range en.at { // endgame losers
		other.cancel(c)
		s.inflight -= en.est
		s.losers = append(s.losers, other)
	}
	en.at = nil
	s.blocks++
	s.bytes += int64(n)
	s.lastProgress = now
	v := Verdict{Store: true, Descend: en.inner && !en.found, Key: en.key, Losers: s.losers}
	en.found = true
	return v
}

// Stored records that c (n bytes) is stored; retain says the shell keeps
// it for the reader, counted against the budget until Took. It reports
// whether the DAG is complete.
func (s *Sched) Stored(c cid.Cid, n int, retain bool) (complete bool) {
	en := s.entries[c]
	en.state = stateDone
	delete(s.waited, en)
	delete(s.entries, c)
	s.done[c] = en.est
	if retain {
		s.retained += int64(n)
	}
	s.unfinished--
	return s.unfinished == 0
}

// Took records that the reader took a retained block of n bytes.
func (s *Sched) Took(n int) { s.retained -= int64(n) }

// Status says whether c is known and whether it is done (stored, or
// handed to the reader).
func (s *Sched) Status(c cid.Cid) (known, done bool) {
	if _, ok := s.done[c]; ok {
		return true, true
	}
	return s.entries[c] != nil, false
}

// Want records that a reader waits for c: c is added if unknown, fetched
// anew if done (the reader had it and reads it again), and goes before
// every other pending block. wake says peers may now have work.
func (s *Sched) Want(c cid.Cid) (wake bool) {
	en := s.entries[c]
	if est, ok := s.done[c]; ok { // fetched before and given away
		delete(s.done, c)
		s.refetches++
		en = s.add(c, nil, -1)
		en.est, en.found = est, true // its children, if any, are known
		wake = true
	}
	if en == nil {
		en = s.add(c, nil, -1)
	}
	if en.prio {
		return wake
	}
	en.prio = true
	if en.heapIdx >= 0 {
		heap.Fix(&s.pending, en.heapIdx)
	}
	s.waited[en] = struct{}{}
	return true
}

// Tick watches the session at now: stalled says no block came for
// ProgressTimeout while blocks were missing (the session is to end);
// wake says a block a reader waits for is outstanding at a peer too slow
// to send it and may now be asked of another.
func (s *Sched) Tick(now time.Time) (stalled, wake bool) {
	if s.inflight == 0 && s.verifying == 0 && s.retained > 0 && len(s.waited) == 0 {
		// Waiting for the reader, not for the network; a reader that
		// waits for a block is waiting for the network.
		s.lastProgress = now
	}
	if now.Sub(s.lastProgress) > s.cfg.ProgressTimeout {
		return true, false
	}
	for en := range s.waited {
		if en.state != stateOutstanding || en.dupOK || len(en.at) == 0 {
			continue
		}
		if now.Sub(en.sentAt) > en.at[0].staleAfter(en.est) {
			en.dupOK, wake = true, true
		}
	}
	return false, wake
}

// Counts are a session's totals.
type Counts struct {
	Blocks     int   // blocks verified (first copies)
	Bytes      int64 // their bytes
	Missing    int   // blocks known to be missing and not yet stored
	Duplicates int   // copies received after the first (endgame)
}

// Counts returns the totals so far.
func (s *Sched) Counts() Counts {
	return Counts{Blocks: s.blocks, Bytes: s.bytes, Missing: s.unfinished, Duplicates: s.duplicates}
}

// PeakBytes is the most memory the budget counted at once.
func (s *Sched) PeakBytes() int64 { return s.peakUsed }

// Describe tells the state of the frontier and of the peers given, for
// failing tests and debugging; ages are relative to now.
func (s *Sched) Describe(now time.Time, peers ...*Peer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unfinished %d pending %d outstanding %d inflight %d verifying %d retained %d refetches %d\n",
		s.unfinished, s.pending.Len(), len(s.outstanding), s.inflight, s.verifying, s.retained, s.refetches)
	for _, p := range peers {
		fmt.Fprintf(&b, "peer %s reqs %d window %d rate %.0f minRTT %v dead %v cancelled %d\n",
			p.ID, len(p.reqs), p.window, p.rate, p.minRTT, p.dead, len(p.cancelled))
	}
	states := map[entryState]int{}
	if len(s.done) > 0 {
		states[stateDone] = len(s.done)
	}
	for _, en := range s.entries {
		states[en.state]++
	}
	fmt.Fprintf(&b, "states %v\n", states)
	out := make([]*entry, 0, len(s.outstanding))
	for en := range s.outstanding {
		out = append(out, en)
	}
	slices.SortFunc(out, func(a, b *entry) int { return slices.Compare(a.key, b.key) })
	for _, en := range out {
		fmt.Fprintf(&b, "outstanding %s key %v prio %v dupOK %v at %d dontHave %d sent %v ago\n",
			en.c, en.key, en.prio, en.dupOK, len(en.at), len(en.dontHave), now.Sub(en.sentAt))
		for _, p := range en.at {
			_, c := p.cancelled[en.c]
			fmt.Fprintf(&b, "  at %s since %v cancelled %v\n", p.ID, now.Sub(p.reqs[en.c].sent), c)
		}
	}
	return b.String()
}
