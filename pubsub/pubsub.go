package pubsub

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// Host is what pubsub needs of the network: streams, and word of the
// peers that speak a protocol. p2p.Host.Streams gives one.
type Host interface {
	share.StreamHost
	WatchProtocol(proto string, fn func(peer.AddrInfo)) (stop func())
}

// Result is a validator's verdict on a message.
type Result int

const (
	// Accept delivers and forwards the message.
	Accept Result = iota
	// Reject drops the message and scores down the peer that sent it.
	Reject
	// Ignore drops the message without blame (a stale update, say).
	Ignore
)

// Validator judges a message of a topic that arrived from peer from
// (this node itself for its own publications). It may block up to
// Config.ValidateTimeout; ctx ends then.
type Validator func(ctx context.Context, from peer.ID, m *Message) Result

var (
	// ErrClosed: the PubSub was closed.
	ErrClosed = errors.New("pubsub closed")
	// ErrCancelled: the Subscription was cancelled.
	ErrCancelled = errors.New("subscription cancelled")
	// ErrTooLarge: a message does not fit in MaxMessageSize.
	ErrTooLarge = errors.New("message too large")
	// ErrRejected: this node's own validator refused a message.
	ErrRejected = errors.New("message rejected by validator")
	// ErrBadTopic: a topic name is empty or too long.
	ErrBadTopic = errors.New("bad topic name")
)

// MaxTopicLength bounds a topic name.
const MaxTopicLength = 1024

// PubSub is a node's gossipsub router and its API.
type PubSub struct {
	h    Host
	cfg  Config
	self peer.ID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stops  []func()

	mu       sync.Mutex
	closed   bool
	peers    map[peer.ID]*peerConn
	stats    map[peer.ID]*peerStats
	topics   map[string]*topic
	seen     *seenCache
	mcache   *msgCache
	promises map[string]map[peer.ID]time.Time // IHAVE promises: deadline per message and peer
	tick     int
	seqno    uint64
	pxDials  int // peer-exchange dials under way

	counts counters
}

// counters count what happened to messages, for Stats.
type counters struct {
	published, delivered, duplicate, invalid, ignored atomic.Int64
	queueDrops, subscriptionDrops, publishWaits       atomic.Int64
}

// Stats counts messages since the PubSub started.
type Stats struct {
	// Published: this node's own messages; Delivered: new valid messages
	// from peers; Duplicate: copies of messages already seen; Invalid:
	// refused for their signature or by a validator (scored against the
	// sender); Ignored: dropped by a validator without blame.
	Published, Delivered, Duplicate, Invalid, Ignored int64
	// QueueDrops: RPCs not sent because a peer's queue was full;
	// SubscriptionDrops: messages a subscription's reader was too slow for;
	// PublishWaits: own messages that waited for room in a peer's queue
	// (the back-pressure that replaced their drop).
	QueueDrops, SubscriptionDrops, PublishWaits int64
}

// Stats returns the message counters.
func (ps *PubSub) Stats() Stats {
	c := &ps.counts
	return Stats{
		Published: c.published.Load(), Delivered: c.delivered.Load(), Duplicate: c.duplicate.Load(),
		Invalid: c.invalid.Load(), Ignored: c.ignored.Load(),
		QueueDrops: c.queueDrops.Load(), SubscriptionDrops: c.subscriptionDrops.Load(),
		PublishWaits: c.publishWaits.Load(),
	}
}

// topic is the router's state of one topic.
type topic struct {
	subs      map[*Subscription]struct{}
	peers     map[peer.ID]struct{} // that announced it
	mesh      map[peer.ID]struct{} // nil unless subscribed
	fanout    map[peer.ID]struct{}
	lastPub   time.Time
	backoff   map[peer.ID]time.Time
	validator Validator
}

func (t *topic) idle() bool {
	return t.mesh == nil && len(t.peers) == 0 && t.fanout == nil && t.validator == nil && len(t.backoff) == 0
}

// peerLister is a Host that lists its connected peers (p2p.Streams is
// one).
type peerLister interface{ Peers() []peer.ID }

// New starts pubsub on h: it serves cfg.Protocols and opens a stream to
// every peer identify finds speaking one, from then on and (if h is a
// peerLister) among the peers already connected. Close stops it.
func New(h Host, cfg Config) (*PubSub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	self, err := peer.IDFromPublicKey(cfg.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps := &PubSub{
		h: h, cfg: cfg, self: self, ctx: ctx, cancel: cancel,
		peers: make(map[peer.ID]*peerConn), stats: make(map[peer.ID]*peerStats),
		topics: make(map[string]*topic), promises: make(map[string]map[peer.ID]time.Time),
		seen:   newSeenCache(cfg.SeenTTL, cfg.MaxSeen),
		mcache: newMsgCache(cfg.Params.HistoryLength, cfg.Params.HistoryGossip),
		// kubo's BasicSeqnoValidator ignores a seqno at or below the last
		// one it saw of an author, even across restarts: start at the clock.
		seqno: uint64(time.Now().UnixNano()),
	}
	for _, proto := range cfg.Protocols {
		h.SetHandler(proto, ps.handleStream)
		ps.stops = append(ps.stops, h.WatchProtocol(proto, func(ai peer.AddrInfo) { ps.addPeer(ai.ID) }))
	}
	ps.meetConnected()
	ps.wg.Add(1)
	go ps.runHeartbeat()
	return ps, nil
}

// meetConnected tries a stream to every connected peer: identify told
// of them before the watchers started, so only their own stream would
// have made them known, and if they too started pubsub after identify
// (which is not pushed again) neither would ever open one. A peer that
// does not speak pubsub refuses the protocol and is forgotten; when it
// starts pubsub later, its own meetConnected reaches this node.
func (ps *PubSub) meetConnected() {
	if pl, ok := ps.h.(peerLister); ok {
		for _, p := range pl.Peers() {
			ps.addPeer(p)
		}
	}
}

// Close stops pubsub: its streams are reset, its subscriptions end.
func (ps *PubSub) Close() error {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return nil
	}
	ps.closed = true
	var subs []*Subscription
	for _, t := range ps.topics {
		for s := range t.subs {
			subs = append(subs, s)
		}
	}
	ps.mu.Unlock()
	for _, proto := range ps.cfg.Protocols {
		ps.h.RemoveHandler(proto)
	}
	for _, stop := range ps.stops {
		stop()
	}
	ps.cancel()
	for _, s := range subs {
		s.close()
	}
	ps.wg.Wait()
	return nil
}

// Self returns the peer ID messages are published under.
func (ps *PubSub) Self() peer.ID { return ps.self }

// Topic is a handle on one topic, to publish and subscribe. It holds
// nothing: Join twice gives two handles on the same topic.
type Topic struct {
	ps   *PubSub
	name string
}

// Join returns a handle on topic name.
func (ps *PubSub) Join(name string) (*Topic, error) {
	if name == "" || len(name) > MaxTopicLength {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadTopic, len(name))
	}
	return &Topic{ps: ps, name: name}, nil
}

// String returns the topic's name.
func (t *Topic) String() string { return t.name }

// ListPeers returns the peers that announced t.
func (t *Topic) ListPeers() []peer.ID { return t.ps.ListPeers(t.name) }

// MeshPeers returns the peers of this node's mesh of t (none unless
// subscribed).
func (t *Topic) MeshPeers() []peer.ID {
	t.ps.mu.Lock()
	defer t.ps.mu.Unlock()
	if tp := t.ps.topics[t.name]; tp != nil {
		return sortedIDs(tp.mesh)
	}
	return nil
}

// RegisterValidator makes v judge every message of topic, received or
// published, replacing any validator of topic.
func (ps *PubSub) RegisterValidator(topicName string, v Validator) error {
	if topicName == "" || len(topicName) > MaxTopicLength {
		return ErrBadTopic
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.topicLocked(topicName).validator = v
	return nil
}

// UnregisterValidator removes topic's validator.
func (ps *PubSub) UnregisterValidator(topicName string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if t := ps.topics[topicName]; t != nil {
		t.validator = nil
	}
}

// Topics returns the topics this node subscribes to, sorted.
func (ps *PubSub) Topics() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var names []string
	for name, t := range ps.topics {
		if t.mesh != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ListPeers returns the pubsub peers that announced topic, or all of
// them for "", sorted.
func (ps *PubSub) ListPeers(topicName string) []peer.ID {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if topicName == "" {
		ids := make([]peer.ID, 0, len(ps.peers))
		for id := range ps.peers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	if t := ps.topics[topicName]; t != nil {
		return sortedIDs(t.peers)
	}
	return nil
}

// Score returns p's current score.
func (ps *PubSub) Score(p peer.ID) float64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.scoreLocked(p, time.Now())
}

func sortedIDs(set map[peer.ID]struct{}) []peer.ID {
	ids := make([]peer.ID, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (ps *PubSub) topicLocked(name string) *topic {
	t := ps.topics[name]
	if t == nil {
		t = &topic{subs: map[*Subscription]struct{}{}, peers: map[peer.ID]struct{}{}, backoff: map[peer.ID]time.Time{}}
		ps.topics[name] = t
	}
	return t
}

func (ps *PubSub) scoreLocked(p peer.ID, now time.Time) float64 {
	return ps.cfg.Score.score(p, ps.stats[p], now)
}

func (ps *PubSub) statsLocked(p peer.ID) *peerStats {
	s := ps.stats[p]
	if s == nil {
		s = &peerStats{topics: make(map[string]*topicStats)}
		ps.stats[p] = s
	}
	return s
}

// Publish signs data as a message of t and sends it: to every peer of
// the topic (flood publishing, as kubo does), or to the mesh or fanout
// with Config.NoFloodPublish. This node's own subscribers get it too.
// A peer whose queue is full makes Publish wait for room (back-pressure,
// not a silent drop); if ctx ends first, the peers still waiting miss
// the message and Publish says how many.
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	ps := t.ps
	m := &Message{From: []byte(ps.self), Data: append([]byte{}, data...), Topic: t.name, Seqno: make([]byte, 8)}
	ps.mu.Lock()
	ps.seqno++
	binary.BigEndian.PutUint64(m.Seqno, ps.seqno)
	v := ps.topicLocked(t.name).validator
	ps.mu.Unlock()
	sign(m, ps.cfg.Key)
	m.id, m.received = messageID(m), ps.self
	fr := frame(&RPC{Publish: []*Message{m}})
	if len(fr) > ps.cfg.MaxMessageSize {
		return fmt.Errorf("publish on %q: %w: %d bytes, at most %d", t.name, ErrTooLarge, len(data), ps.cfg.MaxMessageSize-(len(fr)-len(data)))
	}
	if v != nil && ps.validate(ctx, v, ps.self, m) != Accept {
		return fmt.Errorf("publish on %q: %w", t.name, ErrRejected)
	}
	to, err := ps.publishLocal(t.name, m, fr)
	if err != nil {
		return err
	}
	if missed := ps.sendWait(ctx, to, fr); missed > 0 {
		return fmt.Errorf("publish on %q: %d of %d peers' queues stayed full: %w", t.name, missed, len(to), ctx.Err())
	}
	return nil
}

// publishLocal records an own message as seen and cached, delivers it
// to this node's subscribers and returns the peers it goes to.
func (ps *PubSub) publishLocal(name string, m *Message, fr []byte) ([]*peerConn, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	now := time.Now()
	ps.seen.add(m.id, now)
	ps.mcache.put(m.id, m, fr)
	tp := ps.topicLocked(name)
	ps.counts.published.Add(1)
	ps.counts.subscriptionDrops.Add(tp.deliver(m, &ps.cfg))
	ids := ps.publishPeersLocked(tp, now)
	to := make([]*peerConn, 0, len(ids))
	for _, p := range ids {
		if pc := ps.peers[p]; pc != nil {
			to = append(to, pc)
		}
	}
	return to, nil
}

// sendWait queues fr for each peer, waiting for room in full queues
// until ctx ends; it returns how many peers missed fr then.
func (ps *PubSub) sendWait(ctx context.Context, to []*peerConn, fr []byte) (missed int) {
	for _, pc := range to {
		if ctx.Err() != nil {
			missed++
			continue
		}
		waited, err := pc.out.pushWait(ctx, pc.ctx.Done(), fr)
		if waited {
			ps.counts.publishWaits.Add(1)
		}
		if err != nil && ctx.Err() != nil {
			missed++
		}
	}
	ps.counts.queueDrops.Add(int64(missed))
	return missed
}

// publishPeersLocked returns the peers an own message goes to.
func (ps *PubSub) publishPeersLocked(t *topic, now time.Time) []peer.ID {
	var to []peer.ID
	if !ps.cfg.NoFloodPublish {
		for p := range t.peers {
			if ps.scoreLocked(p, now) >= ps.cfg.Score.PublishThreshold {
				to = append(to, p)
			}
		}
		return to
	}
	for p := range t.peers {
		if pc := ps.peers[p]; pc != nil && pc.floodsub() {
			to = append(to, p)
		}
	}
	if t.mesh != nil {
		for p := range t.mesh {
			to = append(to, p)
		}
		return to
	}
	if t.fanout == nil {
		t.fanout = map[peer.ID]struct{}{}
		ps.fillLocked(t, t.fanout, ps.cfg.Params.D, now, ps.cfg.Score.PublishThreshold)
	}
	t.lastPub = now
	for p := range t.fanout {
		to = append(to, p)
	}
	return to
}

// validate runs v with the configured timeout.
func (ps *PubSub) validate(ctx context.Context, v Validator, from peer.ID, m *Message) Result {
	ctx, cancel := context.WithTimeout(ctx, ps.cfg.ValidateTimeout)
	defer cancel()
	return v(ctx, from, m)
}

// messageID is kubo's default: the author's peer ID bytes then the seqno.
func messageID(m *Message) string { return string(m.From) + string(m.Seqno) }

// frame returns r encoded with its varint length prefix.
func frame(r *RPC) []byte {
	n := r.Size()
	b := make([]byte, 0, binary.MaxVarintLen64+n)
	b = binary.AppendUvarint(b, uint64(n))
	return AppendRPC(b, r)
}
