package sched

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// simLink is one provider behind a link with a round trip and a capacity,
// driving a Sched the way its shell does: each answer is recorded when it
// arrives, and the window is refilled after every arrival. The provider
// answers the requests sent together a round trip later (later if the
// link is still busy with earlier answers), together, as a server that
// batches its answers does, and they are recorded before the window is
// refilled (the shell's sender wakes once for them).
type simLink struct {
	rtt      time.Duration
	capacity float64 // bytes per second
	size     int     // bytes per block

	s       *Sched
	p       *Peer
	now     time.Time
	free    time.Time // when the link has sent every answer so far
	answers []simAnswer
	blocks  int
	maxWin  int
}

type simAnswer struct {
	at time.Time
	c  cid.Cid
}

// run fetches blocks over l until d of simulated time has passed or
// nothing is left, and returns the blocks fetched in the last half.
func (l *simLink) run(t *testing.T, d time.Duration) (lastHalf int) {
	t.Helper()
	end, half := l.now.Add(d), l.now.Add(d/2)
	var out []Send
	for {
		out = l.s.Assign(l.p, l.now, out[:0])
		l.send(out)
		l.maxWin = max(l.maxWin, l.p.window)
		if len(l.answers) == 0 || l.answers[0].at.After(end) {
			return lastHalf
		}
		n := l.arrive(t)
		if !l.now.Before(half) {
			lastHalf += n
		}
	}
}

// arrive records the answers that arrive next, together, and returns
// how many.
func (l *simLink) arrive(t *testing.T) int {
	t.Helper()
	l.now = l.answers[0].at
	n := 0
	for ; n < len(l.answers) && l.answers[n].at.Equal(l.now); n++ {
		c := l.answers[n].c
		if l.s.Received(l.p, c, l.size, l.now) != Requested {
			t.Fatalf("%s answered, not requested", c)
		}
		l.s.Verified(l.p, c, l.size, l.now)
		l.s.Stored(c, l.size, false)
	}
	l.answers = l.answers[n:]
	l.blocks += n
	return n
}

// send has the provider answer the requests of out, sent together, in
// one write once it has them all.
func (l *simLink) send(out []Send) {
	if len(out) == 0 {
		return
	}
	start := l.now.Add(l.rtt / 2) // the requests reach the provider
	if l.free.After(start) {
		start = l.free
	}
	bytes := float64(len(out) * l.size)
	l.free = start.Add(time.Duration(bytes / l.capacity * float64(time.Second)))
	at := l.free.Add(l.rtt / 2)
	for _, x := range out {
		l.answers = append(l.answers, simAnswer{at, x.C})
	}
}

func newSimLink(rtt time.Duration, capacity float64, size, blocks int) *simLink {
	s := New(Config{MinWindow: 4, MaxWindow: 256, Lanes: 1, MaxInFlightBytes: 64 << 20,
		ProgressTimeout: time.Minute, MaxBlockSize: 2 << 20}, epoch)
	for i, c := range leafCIDs(blocks) {
		s.Add(c, []uint32{uint32(i)}, int64(size))
	}
	return &simLink{rtt: rtt, capacity: capacity, size: size, s: s, p: s.AddPeer("p"), now: epoch, free: epoch}
}

// TestWindowGrowsWithLatency: with a round trip of 1 to 20 ms and a link
// that could carry far more, a peer's window grows to MaxWindow within half
// a second, and blocks then come at nearly MaxWindow per round trip. A
// window measured only while it limits the rate never grew: answers to a
// full window come together, the window empties, and each measurement
// began anew and ended too soon to count (4 blocks per round trip).
func TestWindowGrowsWithLatency(t *testing.T) {
	for _, rtt := range []time.Duration{time.Millisecond, 4 * time.Millisecond, 20 * time.Millisecond} {
		t.Run(fmt.Sprint(rtt), func(t *testing.T) {
			l := newSimLink(rtt, 1e9, 1<<10, 300_000)
			const d = time.Second
			last := l.run(t, d)
			rate := float64(last) / (d / 2).Seconds()
			// A window's worth a round trip, plus the time the link takes
			// to send it.
			ceiling := 256 / (rtt.Seconds() + 256*1024/1e9)
			t.Logf("max window %d, %.0f blocks/s in the second half, %.2f of the ceiling (window %d)",
				l.maxWin, rate, rate/ceiling, 256)
			if l.maxWin < 256 {
				t.Errorf("window reached %d, want 256", l.maxWin)
			}
			if rate < 0.8*ceiling {
				t.Errorf("%.0f blocks/s, want at least 0.8 of %.0f", rate, ceiling)
			}
		})
	}
}

// TestWindowFitsSlowLink: a link slower than the window's reach keeps the
// window near its rate times the round trip and horizon: 20 MB/s of
// 1 MiB blocks over 4 ms is one or two blocks, the minimum window.
func TestWindowFitsSlowLink(t *testing.T) {
	l := newSimLink(4*time.Millisecond, 20e6, 1<<20, 100)
	l.run(t, 2*time.Second)
	t.Logf("max window %d, %d blocks", l.maxWin, l.blocks)
	if l.maxWin > 8 {
		t.Errorf("window reached %d, want at most 8", l.maxWin)
	}
}
