package pubsub

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
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

// Subscription receives the messages of one topic (or several, with
// SubscribeTopics), in the order they arrive, until cancelled. A reader
// that falls SubscriptionBuffer messages (or SubscriptionBytes of data)
// behind misses the next ones; Dropped counts them.
type Subscription struct {
	ps     *PubSub
	topics []string
	done   chan struct{}
	once   sync.Once
	// The queue: a slice that grows with a burst and is let go once
	// drained, so that an idle subscription holds no buffer.
	mu      sync.Mutex
	queue   []*Message
	head    int
	bytes   int
	notify  chan struct{} // cap 1: a message was queued
	dropped atomic.Int64
}

// Subscribe subscribes this node to t: it announces the topic, joins
// its mesh and delivers its messages to the subscription.
func (t *Topic) Subscribe() (*Subscription, error) {
	return t.ps.SubscribeTopics(t.name)
}

// SubscribeTopics is one subscription to several topics (a message's
// Topic says which): for a reader of many topics, one queue and one
// Next instead of one per topic.
func (ps *PubSub) SubscribeTopics(names ...string) (*Subscription, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no topic", ErrBadTopic)
	}
	for _, name := range names {
		if name == "" || len(name) > MaxTopicLength {
			return nil, fmt.Errorf("%w: %d bytes", ErrBadTopic, len(name))
		}
	}
	s := &Subscription{ps: ps, topics: slices.Clone(names), done: make(chan struct{}), notify: make(chan struct{}, 1)}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	for _, name := range s.topics {
		tp := ps.topicLocked(name)
		tp.subs[s] = struct{}{}
		if tp.mesh == nil {
			ps.joinLocked(name, tp)
		}
	}
	return s, nil
}

// Topic returns the subscription's (first) topic.
func (s *Subscription) Topic() string { return s.topics[0] }

// Next returns the next message, waiting for one until ctx ends or the
// subscription is cancelled (ErrCancelled).
func (s *Subscription) Next(ctx context.Context) (*Message, error) {
	for {
		if m := s.pop(); m != nil {
			return m, nil
		}
		select {
		case <-s.notify:
		case <-s.done:
			return nil, ErrCancelled
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pop takes the oldest queued message, or returns nil.
func (s *Subscription) pop() *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		return nil
	}
	m := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	s.bytes -= msgCost(m)
	if s.head == len(s.queue) {
		s.head = 0
		if cap(s.queue) > 64 {
			s.queue = nil // a burst's buffer goes with it
		} else {
			s.queue = s.queue[:0]
		}
	} else {
		s.wake() // another reader may be waiting
	}
	return m
}

// msgCost is what a queued message counts against SubscriptionBytes.
func msgCost(m *Message) int { return len(m.Data) + 128 }

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push queues m, or counts it dropped if the queue is full.
func (s *Subscription) push(m *Message, maxN, maxBytes int) bool {
	s.mu.Lock()
	n, c := len(s.queue)-s.head, msgCost(m)
	if n > 0 && (n >= maxN || s.bytes+c > maxBytes) {
		s.mu.Unlock()
		s.dropped.Add(1)
		return false
	}
	s.queue = append(s.queue, m)
	s.bytes += c
	s.mu.Unlock()
	s.wake()
	return true
}

// Dropped returns how many messages the subscription missed because its
// reader was behind.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Cancel ends the subscription; the node leaves the topic when its last
// subscription ends.
func (s *Subscription) Cancel() {
	ps := s.ps
	ps.mu.Lock()
	for _, name := range s.topics {
		if tp := ps.topics[name]; tp != nil {
			if _, ok := tp.subs[s]; ok {
				delete(tp.subs, s)
				if len(tp.subs) == 0 && !ps.closed {
					ps.leaveLocked(name, tp)
				}
			}
		}
	}
	ps.mu.Unlock()
	s.close()
}

func (s *Subscription) close() { s.once.Do(func() { close(s.done) }) }

// deliver hands m to every subscription of t without waiting; it
// returns how many were too full to take it.
func (t *topic) deliver(m *Message, cfg *Config) int64 {
	var drops int64
	for s := range t.subs {
		if !s.push(m, cfg.SubscriptionBuffer, cfg.SubscriptionBytes) {
			drops++
		}
	}
	return drops
}
