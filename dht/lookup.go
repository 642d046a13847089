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
	return d.run(ctx, typ, key, KeyOf(key), count, seeds, onResp)
}

func (d *DHT) run(ctx context.Context, typ MessageType, key []byte, target Key, count int, seeds []peer.AddrInfo, onResp func(peer.AddrInfo, *Message) bool) ([]peer.AddrInfo, error) {
	if d.mode == ModeOff {
		return nil, ErrOff
	}
	start := time.Now()
	st := LookupStats{Type: typ}
	defer func() {
		if d.cfg.OnLookup != nil {
			st.Duration = time.Since(start)
			d.cfg.OnLookup(st)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var cands []*candidate // sorted by distance to target
	seen := map[peer.ID]bool{d.self: true}
	add := func(ai peer.AddrInfo, hops int, from *candidate) {
		if seen[ai.ID] || len(ai.Addrs) == 0 {
			return
		}
		seen[ai.ID] = true
		c := &candidate{ai: ai, key: KeyOf([]byte(ai.ID)), hops: hops, from: from}
		i, _ := slices.BinarySearchFunc(cands, c, func(a, b *candidate) int {
			if closer(target, a.key, b.key) {
				return -1
			}
			return 1
		})
		cands = slices.Insert(cands, i, c)
	}
	for _, ai := range seeds {
		add(peer.AddrInfo{ID: ai.ID, Addrs: SaneAddrs(ai.Addrs)}, 1, nil)
	}
	for _, ai := range d.rt.closest(target, count) {
		add(ai, 1, nil)
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("lookup %s: %w", typ, ErrNoPeers)
	}

	req := &Message{Type: typ, Key: key}
	results := make(chan queryResult)
	inflight := 0
	launch := func(round int) {
		n := 0
		for _, c := range cands {
			if inflight >= d.cfg.Alpha || n >= count {
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
			inflight++
			st.Queries++
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := d.query(ctx, c.ai, req)
				select {
				case results <- queryResult{c: c, round: round + 1, resp: resp, err: err}:
				case <-ctx.Done():
				}
			}()
		}
	}
	// done reports whether the count closest live peers have all answered.
	done := func() bool {
		n := 0
		for _, c := range cands {
			if n >= count {
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

	launch(0)
	for inflight > 0 {
		var r queryResult
		select {
		case r = <-results:
		case <-ctx.Done():
			return d.result(cands, count, &st), ctx.Err()
		}
		inflight--
		if r.err != nil {
			r.c.state = failed
			st.Failures++
			if f := r.c.from; f != nil {
				if f.refBad++; f.refBad == badReferrals && f.refOK == 0 {
					d.rt.remove(f.ai.ID)
					d.log.Debug("dropping a peer whose referrals all fail", "peer", f.ai.ID, "failed", f.refBad)
				}
			}
		} else {
			r.c.state = answered
			if f := r.c.from; f != nil {
				f.refOK++
			}
			st.Rounds = max(st.Rounds, r.round)
			for i, p := range r.resp.CloserPeers {
				if i >= count {
					break
				}
				add(peer.AddrInfo{ID: p.ID, Addrs: SaneAddrs(p.Addrs)}, r.c.hops+1, r.c)
			}
			if onResp != nil && onResp(r.c.ai, r.resp) {
				break
			}
		}
		if done() {
			break
		}
		launch(r.round)
	}
	return d.result(cands, count, &st), nil
}

func (d *DHT) result(cands []*candidate, count int, st *LookupStats) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, c := range cands {
		if len(out) == count {
			break
		}
		if c.state == answered {
			out = append(out, c.ai)
			st.Hops = max(st.Hops, c.hops)
		}
	}
	st.Found = len(out)
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
