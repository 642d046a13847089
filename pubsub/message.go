package pubsub

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/share-p2p/share/p2p/peer"
)

// ID returns the message's ID: its author's peer ID bytes then its seqno
// (kubo's default).
func (m *Message) ID() string { return m.id }

// Author returns the peer ID of the message's author.
func (m *Message) Author() peer.ID { return peer.ID(m.From) }

// ReceivedFrom returns the peer that sent the message to this node
// (itself for its own).
func (m *Message) ReceivedFrom() peer.ID { return m.received }

// SeqNo returns the message's sequence number (0 if it has none).
func (m *Message) SeqNo() uint64 {
	if len(m.Seqno) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(m.Seqno)
}

// Subscription receives the messages of one topic, in the order they
// arrive, until cancelled. A reader that falls SubscriptionBuffer
// messages behind misses the next ones (Dropped counts them).
type Subscription struct {
	ps      *PubSub
	topic   string
	ch      chan *Message
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

// Subscribe subscribes this node to t: it announces the topic, joins
// its mesh and delivers its messages to the subscription.
func (t *Topic) Subscribe() (*Subscription, error) {
	ps := t.ps
	s := &Subscription{ps: ps, topic: t.name, ch: make(chan *Message, ps.cfg.SubscriptionBuffer), done: make(chan struct{})}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	tp := ps.topicLocked(t.name)
	tp.subs[s] = struct{}{}
	if tp.mesh == nil {
		ps.joinLocked(t.name, tp)
	}
	return s, nil
}

// Topic returns the subscription's topic.
func (s *Subscription) Topic() string { return s.topic }

// Next returns the next message, waiting for one until ctx ends or the
// subscription is cancelled (ErrCancelled).
func (s *Subscription) Next(ctx context.Context) (*Message, error) {
	select {
	case m := <-s.ch:
		return m, nil
	default:
	}
	select {
	case m := <-s.ch:
		return m, nil
	case <-s.done:
		return nil, ErrCancelled
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Dropped returns how many messages the subscription missed because its
// reader was behind.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Cancel ends the subscription; the node leaves the topic when its last
// subscription ends.
func (s *Subscription) Cancel() {
	ps := s.ps
	ps.mu.Lock()
	if tp := ps.topics[s.topic]; tp != nil {
		if _, ok := tp.subs[s]; ok {
			delete(tp.subs, s)
			if len(tp.subs) == 0 && !ps.closed {
				ps.leaveLocked(s.topic, tp)
			}
		}
	}
	ps.mu.Unlock()
	s.close()
}

func (s *Subscription) close() { s.once.Do(func() { close(s.done) }) }

// deliver hands m to every subscription of t without waiting; it
// returns how many were too full to take it.
func (t *topic) deliver(m *Message) int64 {
	var drops int64
	for s := range t.subs {
		select {
		case s.ch <- m:
		default:
			s.dropped.Add(1)
			drops++
		}
	}
	return drops
}
