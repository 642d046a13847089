package sched

import (
	"math"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/p2p/peer"
)

// Peer is the scheduler's view of one provider: its requests outstanding,
// its window and the rate it is measured at. The shell holds it and names
// it in its events.
type Peer struct {
	ID   peer.ID
	dead bool

	reqs      map[cid.Cid]sentReq
	cancelled map[cid.Cid]struct{} // cancelled requests whose block may still come
	lanes     []lane

	window      int
	rate        float64 // bytes per second, smoothed
	minRTT      time.Duration
	accStart    time.Time // when the current sample period began
	accBytes    int64     // bytes received in it
	lastAnswer  time.Time // when p last sent a block
	dontHaveRun int
}

// sentReq is a request outstanding at a peer.
type sentReq struct {
	e    *entry
	sent time.Time
	lane int // the lane it was sent on
}

// lane is the scheduler's part of one of a peer's streams: what is
// outstanding on it and the CANCELs to send on it.
type lane struct {
	bytes   int64     // expected bytes outstanding
	reqs    int       // requests outstanding
	cancelQ []cid.Cid // CANCELs to send
}

// laneFill is how many bytes of requests a lane takes before the next
// lane is used: two stream windows (the host's default window is 2 MiB).
// A peer whose window of requests is smaller (any peer slower than about
// 80 MB/s: MinWindow 1 MiB blocks) is asked on one stream and answers in
// the order asked, so the block a reader waits for is not sent
// interleaved with others (two lanes per 100 Mbit/s peer, as a 2 MiB
// fill gave, cost the 4-provider swarm 2%: 368 instead of 376 Mbit/s).
const laneFill = 4 << 20

// laneReqs is how many requests a lane takes before the next lane is
// used, whatever their size. A stream's blocks are loaded by one
// goroutine on the server and received and verified by one here: with
// 1 KiB blocks (a window of 256 is 256 KiB, far from laneFill) one stream
// kept each side to one core, some 20 000 blocks/s between loopback
// daemons, where two lanes use two.
const laneReqs = 128

// pickLane picks the lane of a request of est bytes: the first with room,
// else a new one while there may be more, else the least loaded.
func (p *Peer) pickLane(est int64, maxLanes int) int {
	best := 0
	for i, l := range p.lanes {
		if l.bytes+est <= laneFill && l.reqs < laneReqs {
			return i
		}
		if l.bytes < p.lanes[best].bytes {
			best = i
		}
	}
	if n := len(p.lanes); n < maxLanes {
		p.lanes = append(p.lanes, lane{})
		return n
	}
	return best
}

// forget removes the request of c (answered, refused or cancelled).
func (p *Peer) forget(c cid.Cid) {
	if r, ok := p.reqs[c]; ok {
		p.lanes[r.lane].bytes -= r.e.est
		p.lanes[r.lane].reqs--
		delete(p.reqs, c)
	}
}

// cancel forgets the request of c and queues its CANCEL on the lane the
// request went out on; its block may still come.
func (p *Peer) cancel(c cid.Cid) {
	l := &p.lanes[p.reqs[c].lane]
	l.cancelQ = append(l.cancelQ, c)
	p.forget(c)
	p.cancelled[c] = struct{}{}
}

// late reports whether an answer about c that p was not asked for
// answers a cancelled request, and forgets that request.
func (p *Peer) late(c cid.Cid) bool {
	_, late := p.cancelled[c]
	delete(p.cancelled, c)
	return late
}

// staleAfter is how long p may take to send a block of est bytes before
// another peer is asked for it too.
func (p *Peer) staleAfter(est int64) time.Duration {
	d := 500 * time.Millisecond
	if p.rate > 0 {
		exp := p.minRTT + time.Duration(float64(est)/p.rate*float64(time.Second))
		d = max(d, 4*exp)
	}
	return d
}

// horizon is how far ahead a peer's window reaches beyond its round trip:
// enough requests to keep it busy for this long.
const horizon = 50 * time.Millisecond

// samplePeriod is how long a peer's bytes are counted before its rate
// and window are updated: long enough to span bursts (a window's answers
// come together; a rate limiter lets a first burst through).
const samplePeriod = 10 * time.Millisecond

// busy starts counting p's time again, at now, when p is asked for
// something after it had nothing to do: the time it waited to be asked is
// not in its rate, as if it had not passed.
func (p *Peer) busy(now time.Time) {
	if p.accStart.IsZero() {
		p.accStart = now
		return
	}
	if idle := now.Sub(p.lastAnswer); p.lastAnswer.After(p.accStart) && idle > 0 {
		p.accStart = p.accStart.Add(idle)
	}
}

// measure updates p's throughput and window with a block of n bytes that
// answers a request sent at sent; avgBlock is the session's mean block
// size.
//
// The rate is the bytes received over the time p had requests
// outstanding, counted over at least samplePeriod. A window is that rate
// over the round trip and the horizon, so that while the window limits
// the rate, each period's window is the last one times about
// (minRTT+horizon)/RTT: it grows until the link or MaxWindow limits it.
// Counting began anew each time the window emptied, and the window never
// grew: a window of 4 over a round trip of 4 ms was answered at once,
// emptied, and each count ended too soon to be taken. A window at most
// quadruples from one period to the next (TCP's slow start doubles it
// each round trip): a peer's first periods count the burst its link lets
// through first, and a window sized on one took most of a short fetch
// from equal peers (TestFetchManyProviders failed 4 times in 20; 0 in 30
// with the bound, 1 in 20 had it been twice).
func (p *Peer) measure(now, sent time.Time, n int, avgBlock float64, cfg *Config) {
	if rtt := now.Sub(sent); p.minRTT == 0 || rtt < p.minRTT {
		p.minRTT = rtt
	}
	p.lastAnswer = now
	p.accBytes += int64(n)
	el := now.Sub(p.accStart)
	if el < samplePeriod {
		return
	}
	sample := float64(p.accBytes) / el.Seconds()
	if p.rate == 0 {
		p.rate = sample
	} else {
		p.rate = 0.75*p.rate + 0.25*sample
	}
	p.accStart, p.accBytes = now, 0
	w := math.Ceil(p.rate * (p.minRTT + horizon).Seconds() / avgBlock)
	w = min(w, float64(4*p.window))
	p.window = int(min(max(w, float64(cfg.MinWindow)), float64(cfg.MaxWindow)))
}
