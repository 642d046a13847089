package sched

import (
	"container/heap"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
)

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
	at       []*Peer   // peers it is outstanding at
	sentAt   time.Time // when it was first requested
	dontHave []*Peer
	arrived  bool // a copy is being verified
	found    bool // its children were added
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

// requeue puts an entry nobody is sending back in the heap.
func (s *Sched) requeue(en *entry) {
	if en.state >= stateStoring || len(en.at) > 0 || en.heapIdx >= 0 {
		return
	}
	en.state = statePending
	en.dupOK = false
	delete(s.outstanding, en)
	heap.Push(&s.pending, en)
}

// overBudget reports whether requesting est more bytes would exceed the
// memory budget. The first request always fits.
func (s *Sched) overBudget(est int64) bool {
	used := s.inflight + s.verifying + s.retained
	return used > 0 && used+est > s.cfg.MaxInFlightBytes
}

// pickPending pops the first pending entry p has not said it lacks.
func (s *Sched) pickPending(p *Peer) *entry {
	var skipped []*entry
	defer func() {
		for _, en := range skipped {
			heap.Push(&s.pending, en)
		}
	}()
	for s.pending.Len() > 0 {
		en := heap.Pop(&s.pending).(*entry)
		if slices.Contains(en.dontHave, p) {
			skipped = append(skipped, en)
			continue
		}
		return en
	}
	return nil
}

// maxCopies is how many peers an entry may be outstanding at.
const maxCopies = 2

// pickDup picks an outstanding entry for p to request as well: the oldest
// one, among those a reader waits for too long if onlyWaited, among all
// otherwise (endgame).
func (s *Sched) pickDup(p *Peer, onlyWaited bool) *entry {
	set := s.outstanding
	if onlyWaited {
		set = s.waited
	}
	var best *entry
	for en := range set {
		if en.state != stateOutstanding || en.arrived || len(en.at) >= maxCopies || (onlyWaited && !en.dupOK) ||
			slices.Contains(en.at, p) || slices.Contains(en.dontHave, p) {
			continue
		}
		if best == nil || en.sentAt.Before(best.sentAt) ||
			(en.sentAt.Equal(best.sentAt) && slices.Compare(en.key, best.key) < 0) {
			best = en // ties (one Assign's requests) go in DAG order
		}
	}
	return best
}

// pick chooses the next entry for p: a block a reader waits for too long,
// else the first pending one, else (endgame, nothing pending) a duplicate
// of the oldest outstanding one. Nil means nothing for p.
func (s *Sched) pick(p *Peer) *entry {
	en := s.pickDup(p, true)
	if en == nil {
		en = s.pickPending(p)
	}
	if en == nil && s.pending.Len() == 0 {
		en = s.pickDup(p, false) // endgame
	}
	return en
}

// unlink removes p from the peers en is outstanding at.
func (en *entry) unlink(p *Peer) {
	en.at = slices.DeleteFunc(en.at, func(x *Peer) bool { return x == p })
}
