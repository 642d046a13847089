package pubsub

import (
	"context"
	"sync"
)

// outQueue is a peer's outbound queue of frames, bounded by count and by
// bytes (a frame alone is always taken, whatever its size). The writer
// takes everything queued at once, so a burst goes out in few writes.
type outQueue struct {
	mu       sync.Mutex
	frames   [][]byte
	bytes    int
	maxN     int
	maxBytes int
	wake     chan struct{} // cap 1: frames are waiting for the writer
	room     chan struct{} // closed when the writer next takes; nil unless someone waits
}

func newOutQueue(maxN, maxBytes int) *outQueue {
	return &outQueue{maxN: maxN, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

// tryPushLocked queues fr if it fits.
func (q *outQueue) tryPushLocked(fr []byte) bool {
	n := len(q.frames)
	if n > 0 && (n >= q.maxN || q.bytes+len(fr) > q.maxBytes) {
		return false
	}
	q.frames = append(q.frames, fr)
	q.bytes += len(fr)
	return true
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues fr, or reports false if the queue is full.
func (q *outQueue) push(fr []byte) bool {
	q.mu.Lock()
	ok := q.tryPushLocked(fr)
	q.mu.Unlock()
	if ok {
		q.signal()
	}
	return ok
}

// pushWait queues fr, waiting for room until ctx ends or gone closes:
// the back-pressure a local publisher gets instead of a silent drop.
// waited reports whether the queue was full at first.
func (q *outQueue) pushWait(ctx context.Context, gone <-chan struct{}, fr []byte) (waited bool, err error) {
	for {
		q.mu.Lock()
		if q.tryPushLocked(fr) {
			q.mu.Unlock()
			q.signal()
			return waited, nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		waited = true
		select {
		case <-room:
		case <-ctx.Done():
			return waited, ctx.Err()
		case <-gone:
			return waited, errPeerGone
		}
	}
}

// take returns every queued frame, leaving dst (emptied) as the queue's
// next buffer, and wakes the publishers waiting for room.
func (q *outQueue) take(dst [][]byte) [][]byte {
	q.mu.Lock()
	batch := q.frames
	q.frames, q.bytes = dst[:0], 0
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return batch
}
