package pubsub

import (
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// seenCache remembers message IDs for a while, so that a message is
// delivered and forwarded once. It is bounded in time (ttl) and in size
// (max): past max the oldest IDs are forgotten early.
type seenCache struct {
	ttl   time.Duration
	max   int
	ids   map[string]time.Time // expiry
	order []seenEntry          // insertion order, oldest first
	head  int                  // order[head:] are live
}

type seenEntry struct {
	id     string
	expiry time.Time
}

func newSeenCache(ttl time.Duration, max int) *seenCache {
	return &seenCache{ttl: ttl, max: max, ids: make(map[string]time.Time)}
}

// add records id; false if it was already there.
func (c *seenCache) add(id string, now time.Time) bool {
	if _, ok := c.ids[id]; ok {
		return false
	}
	c.expire(now)
	for len(c.ids) >= c.max {
		c.pop()
	}
	exp := now.Add(c.ttl)
	c.ids[id] = exp
	c.order = append(c.order, seenEntry{id, exp})
	return true
}

func (c *seenCache) has(id string) bool {
	_, ok := c.ids[id]
	return ok
}

// expire forgets the IDs whose time is up.
func (c *seenCache) expire(now time.Time) {
	for c.head < len(c.order) && !c.order[c.head].expiry.After(now) {
		c.pop()
	}
}

func (c *seenCache) pop() {
	e := c.order[c.head]
	c.order[c.head] = seenEntry{}
	c.head++
	if exp, ok := c.ids[e.id]; ok && exp.Equal(e.expiry) {
		delete(c.ids, e.id)
	}
	// Compact once the dead prefix is half the slice, so that memory
	// follows the live entries.
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}

// msgCache holds the messages of the last HistoryLength heartbeats, for
// IWANT, and announces those of the last HistoryGossip in IHAVE
// (gossipsub-v1.0.md, "Message Cache").
type msgCache struct {
	msgs    map[string]*cached
	windows [][]string // message IDs, newest window first
	gossip  int
}

type cached struct {
	m     *Message
	frame []byte // the RPC carrying m alone, length-prefixed, shared
	sent  map[peer.ID]int
}

func newMsgCache(history, gossip int) *msgCache {
	return &msgCache{msgs: make(map[string]*cached), windows: make([][]string, history), gossip: gossip}
}

func (c *msgCache) put(id string, m *Message, frame []byte) {
	if _, ok := c.msgs[id]; ok {
		return
	}
	c.msgs[id] = &cached{m: m, frame: frame}
	c.windows[0] = append(c.windows[0], id)
}

// get returns the cached message id for p, counting p's requests of it.
func (c *msgCache) get(id string, p peer.ID) (*cached, int) {
	e := c.msgs[id]
	if e == nil {
		return nil, 0
	}
	if e.sent == nil {
		e.sent = make(map[peer.ID]int)
	}
	e.sent[p]++
	return e, e.sent[p]
}

// gossipIDs returns the IDs of topic's messages in the gossip windows.
func (c *msgCache) gossipIDs(topic string, max int) []string {
	var ids []string
	for _, w := range c.windows[:c.gossip] {
		for _, id := range w {
			if e := c.msgs[id]; e != nil && e.m.Topic == topic {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > max {
		ids = ids[len(ids)-max:]
	}
	return ids
}

// shift starts a new window, forgetting the oldest one's messages.
func (c *msgCache) shift() {
	last := c.windows[len(c.windows)-1]
	for _, id := range last {
		delete(c.msgs, id)
	}
	copy(c.windows[1:], c.windows)
	c.windows[0] = last[:0]
}
