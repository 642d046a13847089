package autonat

import (
	"sync"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// limiter bounds the requests a server serves: per peer and overall in
// a sliding minute, those needing dial data overall, and one at a time
// per peer (two dial backs to one peer would share the dialer's
// connection).
type limiter struct {
	perPeer, global, data int
	now                   func() time.Time

	mu    sync.Mutex
	peers map[peer.ID][]time.Time
	busy  map[peer.ID]bool
	all   []time.Time
	dial  []time.Time
}

func newLimiter(perPeer, global, data int, now func() time.Time) *limiter {
	return &limiter{perPeer: perPeer, global: global, data: data, now: now,
		peers: map[peer.ID][]time.Time{}, busy: map[peer.ID]bool{}}
}

// recent drops the times more than a minute old.
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= time.Minute {
		i++
	}
	return ts[i:]
}

// acquire admits a request of p, or says no; release ends it.
func (l *limiter) acquire(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.all = recent(l.all, now)
	if len(l.peers) > 2*l.global {
		for q, ts := range l.peers {
			if len(recent(ts, now)) == 0 {
				delete(l.peers, q)
			}
		}
	}
	ts := recent(l.peers[p], now)
	if l.busy[p] || len(ts) >= l.perPeer || len(l.all) >= l.global {
		return false
	}
	l.peers[p] = append(ts, now)
	l.all = append(l.all, now)
	l.busy[p] = true
	return true
}

func (l *limiter) release(p peer.ID) {
	l.mu.Lock()
	delete(l.busy, p)
	l.mu.Unlock()
}

// acquireData admits one more request that needs dial data.
func (l *limiter) acquireData() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.dial = recent(l.dial, now)
	if len(l.dial) >= l.data {
		return false
	}
	l.dial = append(l.dial, now)
	return true
}
