package p2p

import (
	"sync"

	"github.com/share-p2p/share/p2p/peer"
)

// EventKind says what happened to a peer.
type EventKind int

const (
	// Connected: the first connection to the peer opened.
	Connected EventKind = iota + 1
	// Identified: identify completed on a connection to the peer.
	Identified
	// Disconnected: the last connection to the peer closed.
	Disconnected
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Identified:
		return "identified"
	case Disconnected:
		return "disconnected"
	}
	return "unknown"
}

// Event is a change in the host's connectivity to a peer.
type Event struct {
	Kind EventKind
	Peer peer.ID
	Conn *Conn
}

// Subscription delivers events in order, without loss and without ever
// blocking the host: events queue until read.
type Subscription struct {
	c      chan Event
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
	exited chan struct{}
}

// Subscribe returns a subscription to connectivity events. Call Close when
// done with it; the host closes it when it closes.
func (h *Host) Subscribe() *Subscription {
	s := &Subscription{
		c:      make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.once.Do(func() { close(s.done) }) // a later Close must not close it again
		close(s.c)
		close(s.exited)
		return s
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go s.run()
	return s
}

// Events returns the channel of events; it is closed after Close.
func (s *Subscription) Events() <-chan Event { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() { s.close() }

func (s *Subscription) close() {
	s.once.Do(func() { close(s.done) })
	<-s.exited
}

func (s *Subscription) push(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) run() {
	defer close(s.exited)
	defer close(s.c)
	for {
		s.mu.Lock()
		var e Event
		have := len(s.queue) > 0
		if have {
			e = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.c <- e:
		case <-s.done:
			return
		}
	}
}

func (h *Host) emit(e Event) {
	h.mu.Lock()
	subs := make([]*Subscription, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		select {
		case <-s.done:
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		default:
			s.push(e)
		}
	}
}
