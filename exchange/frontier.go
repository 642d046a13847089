package exchange

import (
	"bytes"
	"container/heap"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
)

// frontierHigh is how many missing blocks a session's scheduler knows of
// before the children of further inner nodes wait (deferred), and
// frontierLow how few bring them back, in DAG order. The scheduler keeps
// an entry of some 250 bytes per missing block and fetches inner nodes
// first: without a bound, a tree of 200 000 small files put 200 000
// entries (50 MB) in it within the first second, and the heap that the
// garbage collector scanned grew with the tree. A deferred node costs its
// block's bytes, some 50 per child. Thousands of missing blocks keep
// every peer's window (at most MaxWindow, 64) full.
const (
	frontierHigh = 8192
	frontierLow  = frontierHigh / 2
)

// deferredNode is an inner node whose children are not in the scheduler
// yet: its block (a copy) and its position in DAG order.
type deferredNode struct {
	c    cid.Cid
	data []byte
	key  []uint32
}

// deferredHeap orders deferred nodes by DAG order, the order a reader
// consumes the DAG in.
type deferredHeap []deferredNode

func (h deferredHeap) Len() int           { return len(h) }
func (h deferredHeap) Less(i, j int) bool { return slices.Compare(h[i].key, h[j].key) < 0 }
func (h deferredHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deferredHeap) Push(x any)        { *h = append(*h, x.(deferredNode)) }
func (h *deferredHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = deferredNode{}
	*h = old[:len(old)-1]
	return n
}

// descend adds the children of the inner node c (block data, at key), or
// defers them while the scheduler knows of frontierHigh missing blocks.
func (s *Session) descend(c cid.Cid, data []byte, key []uint32) error {
	s.mu.Lock()
	if s.core.Counts().Missing >= frontierHigh {
		heap.Push(&s.deferred, deferredNode{c: c, data: bytes.Clone(data), key: key})
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return s.addNode(c, data, key)
}

func (s *Session) addNode(c cid.Cid, data []byte, key []uint32) error {
	n, err := dag.DecodePBNode(data)
	if err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	return s.addChildren(n.Links, key)
}

// expand adds the children of deferred nodes, in DAG order, while the
// scheduler knows of fewer than frontierLow missing blocks, and ends the
// session when that leaves nothing missing.
func (s *Session) expand() error {
	for {
		s.mu.Lock()
		missing := s.core.Counts().Missing
		if s.finished || len(s.deferred) == 0 || missing >= frontierLow {
			complete := !s.finished && s.completeLocked()
			s.mu.Unlock()
			if complete {
				s.finish(nil)
			}
			return nil
		}
		d := heap.Pop(&s.deferred).(deferredNode)
		s.expanding++
		s.mu.Unlock()
		err := s.addNode(d.c, d.data, d.key)
		s.mu.Lock()
		s.expanding--
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// completeLocked reports whether the whole DAG is here: nothing missing,
// deferred, or being added.
func (s *Session) completeLocked() bool {
	return s.core.Counts().Missing == 0 && len(s.deferred) == 0 && s.expanding == 0
}
