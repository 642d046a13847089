package dht

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/share-p2p/share/p2p/peer"
)

// LookupStats are the figures of one lookup.
type LookupStats struct {
	Type MessageType
	// Queries is the number of requests sent, Failures those that got no
	// valid answer.
	Queries, Failures int
	// Rounds is the length of the longest chain of requests each sent
	// because of the previous one's answer: the lookup's duration in
	// round trips when all peers answer equally fast.
	Rounds int
	// Hops is the largest number of answers that led to a peer of the
	// result (1: the peer was in the routing table).
	Hops int
	// Found is the number of answered peers in the result.
	Found    int
	Duration time.Duration
}

type peerState uint8

const (
	unqueried peerState = iota
	waiting
	answered
	failed
)

type candidate struct {
	ai    peer.AddrInfo
	key   Key
	state peerState
	hops  int
	// from is the peer whose answer named this one (nil: the table or a
	// seed); refOK and refBad count how the peers it named answered.
	from          *candidate
	refOK, refBad int
}

// badReferrals is how many peers named by one answer must fail, with none
// of them answering, for the lookup to take the answer for lies (peers
// made up to waste the lookup's requests) and drop its sender from the
// table. An honest peer under churn names some dead peers, but rarely
// this many in a row with no live one.
const badReferrals = 5

type queryResult struct {
	c     *candidate
	round int
	resp  *Message
	err   error
}

// lookup runs an iterative lookup of key: alpha requests in flight to the
// closest peers not yet asked, until the count closest peers seen have all
// answered (or none is left to ask). onResp sees every valid answer and
// may end the lookup by returning true. It returns the answered peers
// closest to key, closest first, at most count.
func (d *DHT) lookup(ctx context.Context, typ MessageType, key []byte, count int, onResp func(peer.AddrInfo, *Message) bool) ([]peer.AddrInfo, error) {
	return d.lookupWith(ctx, typ, key, count, nil, onResp)
}

func (d *DHT) lookupWith(ctx context.Context, typ MessageType, key []byte, count int, seeds []peer.AddrInfo, onResp func(peer.AddrInfo, *Message) bool) ([]peer.AddrInfo, error) {
	peers, _, err := d.run(ctx, typ, key, KeyOf(key), count, seeds, onResp)
	return peers, err
}

// run is lookupWith of a key already hashed to target, returning its
// figures too: it sends the first requests and takes in their answers,
// sending more, until the lookup is done or ctx ends.
func (d *DHT) run(ctx context.Context, typ MessageType, key []byte, target Key, count int, seeds []peer.AddrInfo, onResp func(peer.AddrInfo, *Message) bool) (_ []peer.AddrInfo, _ LookupStats, err error) {
	if d.mode == ModeOff {
		return nil, LookupStats{}, ErrOff
	}
	start := time.Now()
	l := &lookupRun{
		d: d, req: &Message{Type: typ, Key: key}, target: target, count: count,
		seen:    map[peer.ID]bool{d.self: true},
		results: make(chan queryResult),
		st:      LookupStats{Type: typ},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		l.wg.Wait()
		l.st.Duration = time.Since(start)
		if d.cfg.OnLookup != nil {
			d.cfg.OnLookup(l.st)
		}
	}()
	l.seed(seeds)
	if len(l.cands) == 0 {
		return nil, l.st, fmt.Errorf("lookup %s: %w", typ, ErrNoPeers)
	}
	l.launch(ctx, 0)
	for l.inflight > 0 {
		var r queryResult
		select {
		case r = <-l.results:
		case <-ctx.Done():
			peers := l.result() // before l.st is read: it completes the figures
			return peers, l.st, ctx.Err()
		}
		l.inflight--
		if l.record(r, onResp) || l.done() {
			break
		}
		l.launch(ctx, r.round)
	}
	peers := l.result()
	return peers, l.st, nil
}

// lookupRun is the state of one lookup. Only run's goroutine changes it;
// the queries' goroutines read d, req and their candidate's ai, which do
// not change, and send their outcome on results.
type lookupRun struct {
	d      *DHT
	req    *Message
	target Key
	count  int

	cands    []*candidate // sorted by distance to target
	seen     map[peer.ID]bool
	results  chan queryResult
	inflight int
	wg       sync.WaitGroup // the queries
	st       LookupStats
}

// seed makes the first candidates: the given peers, then the routing
// table's closest to the target.
func (l *lookupRun) seed(seeds []peer.AddrInfo) {
	for _, ai := range seeds {
		l.add(peer.AddrInfo{ID: ai.ID, Addrs: l.d.cfg.Scope.Filter(ai.Addrs)}, 1, nil)
	}
	for _, ai := range l.d.rt.closest(l.target, l.count) {
		l.add(ai, 1, nil)
	}
}

// add makes ai a candidate, in its place by distance, unless it was seen
// or has no address.
func (l *lookupRun) add(ai peer.AddrInfo, hops int, from *candidate) {
	if l.seen[ai.ID] || len(ai.Addrs) == 0 {
		return
	}
	l.seen[ai.ID] = true
	c := &candidate{ai: ai, key: KeyOf([]byte(ai.ID)), hops: hops, from: from}
	i, _ := slices.BinarySearchFunc(l.cands, c, func(a, b *candidate) int {
		if closer(l.target, a.key, b.key) {
			return -1
		}
		return 1
	})
	l.cands = slices.Insert(l.cands, i, c)
}

// launch sends requests to the closest candidates not yet asked, among
// the count closest that have not failed, up to Alpha in flight. Their
// answers arrive on results, a round later than round.
func (l *lookupRun) launch(ctx context.Context, round int) {
	n := 0
	for _, c := range l.cands {
		if l.inflight >= l.d.cfg.Alpha || n >= l.count {
			return
		}
		if c.state == failed {
			continue
		}
		n++
		if c.state != unqueried {
			continue
		}
		c.state = waiting
		l.inflight++
		l.st.Queries++
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			resp, err := l.d.query(ctx, c.ai, l.req)
			select {
			case l.results <- queryResult{c: c, round: round + 1, resp: resp, err: err}:
			case <-ctx.Done():
			}
		}()
	}
}

// record takes in one query's outcome: an answer's closer peers become
// candidates and onResp sees it. It reports whether onResp ended the
// lookup.
func (l *lookupRun) record(r queryResult, onResp func(peer.AddrInfo, *Message) bool) bool {
	if r.err != nil {
		l.fail(r.c)
		return false
	}
	r.c.state = answered
	if f := r.c.from; f != nil {
		f.refOK++
	}
	l.st.Rounds = max(l.st.Rounds, r.round)
	for i, p := range r.resp.CloserPeers {
		if i >= l.count {
			break
		}
		l.add(peer.AddrInfo{ID: p.ID, Addrs: l.d.cfg.Scope.Filter(p.Addrs)}, r.c.hops+1, r.c)
	}
	return onResp != nil && onResp(r.c.ai, r.resp)
}

// fail marks a candidate failed. The peer that named it leaves the table
// once badReferrals of the peers it named failed and none answered.
func (l *lookupRun) fail(c *candidate) {
	c.state = failed
	l.st.Failures++
	f := c.from
	if f == nil {
		return
	}
	if f.refBad++; f.refBad == badReferrals && f.refOK == 0 {
		l.d.rt.remove(f.ai.ID)
		l.d.log.Debug("dropping a peer whose referrals all fail", "peer", f.ai.ID, "failed", f.refBad)
	}
}

// done reports whether the count closest live peers have all answered.
func (l *lookupRun) done() bool {
	n := 0
	for _, c := range l.cands {
		if n >= l.count {
			break
		}
		switch c.state {
		case failed:
			continue
		case answered:
			n++
		default:
			return false
		}
	}
	return true
}

// result returns the answered candidates closest to the target, at most
// count, and completes the figures.
func (l *lookupRun) result() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, c := range l.cands {
		if len(out) == l.count {
			break
		}
		if c.state == answered {
			out = append(out, c.ai)
			l.st.Hops = max(l.st.Hops, c.hops)
		}
	}
	l.st.Found = len(out)
	return out
}

// randomKeyAt returns random bytes whose key shares exactly cpl leading
// bits with k: the target of a bucket refresh. It draws about 2^(cpl+1)
// keys, so cpl should stay small (refreshes stop at 15).
func randomKeyAt(k Key, cpl int) []byte {
	b := make([]byte, 32)
	for {
		rand.Read(b)
		if KeyOf(b).CommonPrefixLen(k) == cpl {
			return b
		}
	}
}
