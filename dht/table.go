package dht

import (
	"slices"
	"sync"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// entry is a routing-table peer.
type entry struct {
	ai       peer.AddrInfo
	key      Key
	lastSeen time.Time
	fails    int
}

// bucket holds the live peers at one common-prefix length with the table's
// owner, least recently seen first, and a replacement cache of peers that
// arrived while it was full, most recent last.
type bucket struct {
	live []*entry
	repl []*entry
}

// table is a Kademlia routing table: 256 buckets indexed by the common
// prefix length with the owner's key, k peers each. Only peers known to
// serve the DHT enter it (see Config.Mode).
type table struct {
	mu       sync.Mutex
	self     Key
	k        int
	maxFails int
	now      func() time.Time
	buckets  [257]bucket // 256 is only ever the owner's own key: unused
	byID     map[peer.ID]*entry
}

func newTable(self Key, k, maxFails int, now func() time.Time) *table {
	return &table{self: self, k: k, maxFails: maxFails, now: now, byID: map[peer.ID]*entry{}}
}

func (t *table) bucketOf(key Key) *bucket { return &t.buckets[t.self.CommonPrefixLen(key)] }

// seen records that ai answered or reached us as a DHT server: it is added
// (or moved to the tail of its bucket) if there is room, or goes to the
// replacement cache. It reports whether ai is in the live table.
func (t *table) seen(ai peer.AddrInfo) bool {
	if len(ai.Addrs) == 0 {
		return false
	}
	key := KeyOf([]byte(ai.ID))
	if key == t.self {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if e, ok := t.byID[ai.ID]; ok {
		e.ai.Addrs, e.lastSeen, e.fails = ai.Addrs, now, 0
		b := t.bucketOf(key)
		if i := slices.Index(b.live, e); i >= 0 {
			b.live = append(append(b.live[:i], b.live[i+1:]...), e)
		}
		return true
	}
	b := t.bucketOf(key)
	e := &entry{ai: ai, key: key, lastSeen: now}
	if len(b.live) < t.k {
		b.live = append(b.live, e)
		t.byID[ai.ID] = e
		return true
	}
	// Full: keep the old peers (long-lived peers tend to stay) and remember
	// the new one as a replacement, dropping it from the cache if present.
	for i, r := range b.repl {
		if r.ai.ID == ai.ID {
			b.repl = append(b.repl[:i], b.repl[i+1:]...)
			break
		}
	}
	if len(b.repl) >= t.k {
		b.repl = b.repl[1:]
	}
	b.repl = append(b.repl, e)
	return false
}

// failed records that id did not answer or answered garbage; after
// maxFails failures in a row it leaves the table and the most recent
// replacement takes its place.
func (t *table) failed(id peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byID[id]
	if !ok {
		return
	}
	if e.fails++; e.fails < t.maxFails {
		return
	}
	t.removeLocked(e)
}

// remove drops id from the table at once.
func (t *table) remove(id peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byID[id]; ok {
		t.removeLocked(e)
	}
}

func (t *table) removeLocked(e *entry) {
	b := t.bucketOf(e.key)
	if i := slices.Index(b.live, e); i >= 0 {
		b.live = append(b.live[:i], b.live[i+1:]...)
	}
	delete(t.byID, e.ai.ID)
	if n := len(b.repl); n > 0 {
		r := b.repl[n-1]
		b.repl = b.repl[:n-1]
		b.live = append(b.live, r)
		t.byID[r.ai.ID] = r
	}
}

// closest returns up to n peers of the table closest to key, closest
// first.
func (t *table) closest(key Key, n int) []peer.AddrInfo {
	type kv struct {
		ai  peer.AddrInfo
		key Key
	}
	t.mu.Lock()
	es := make([]kv, 0, len(t.byID))
	for _, e := range t.byID {
		es = append(es, kv{e.ai, e.key})
	}
	t.mu.Unlock()
	slices.SortFunc(es, func(a, b kv) int {
		if closer(key, a.key, b.key) {
			return -1
		}
		if closer(key, b.key, a.key) {
			return 1
		}
		return 0
	})
	if len(es) > n {
		es = es[:n]
	}
	out := make([]peer.AddrInfo, len(es))
	for i, e := range es {
		out[i] = e.ai
	}
	return out
}

// find returns the table's record of id.
func (t *table) find(id peer.ID) (peer.AddrInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byID[id]; ok {
		return e.ai, true
	}
	return peer.AddrInfo{}, false
}

// size returns the number of live peers.
func (t *table) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// stale returns the peers not seen since before, least recently seen
// first: candidates for a liveness check.
func (t *table) stale(before time.Time) []peer.AddrInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []peer.AddrInfo
	for _, e := range t.byID {
		if e.lastSeen.Before(before) {
			out = append(out, e.ai)
		}
	}
	return out
}

// fullestBucket returns the highest bucket index that holds peers: buckets
// above it are empty, those below are refreshed by random lookups.
func (t *table) fullestBucket() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 255; i >= 0; i-- {
		if len(t.buckets[i].live) > 0 {
			return i
		}
	}
	return -1
}
