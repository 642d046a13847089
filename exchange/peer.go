package exchange

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/p2p/peer"
)

// sentReq is a request outstanding at a peer.
type sentReq struct {
	e    *entry
	sent time.Time
	lane int // the stream it was sent on
}

// peerConn is a session's streams to one provider (its lanes, see
// Config.StreamsPerPeer): a sender goroutine writes WANT and CANCEL frames
// as the window allows, spreading WANTs over the lanes, and a receiver per
// lane reads the answers. Fields are guarded by the session's mutex unless
// noted.
type peerConn struct {
	s     *Session
	id    peer.ID
	lanes []lane
	dead  bool

	reqs      map[cid.Cid]sentReq
	cancelled map[cid.Cid]struct{} // cancelled requests whose block may still come

	// lastFrame is when a lane last read a frame (unix nanoseconds); a
	// lane that waits while the others deliver is not a dead peer.
	lastFrame atomic.Int64

	window      int
	rate        float64 // bytes per second, smoothed
	minRTT      time.Duration
	accStart    time.Time
	accBytes    int64
	dontHaveRun int

	wake chan struct{}
}

// lane is one stream of a peerConn.
type lane struct {
	st      share.Stream // nil until the sender opens it
	bytes   int64        // expected bytes outstanding
	reqs    int          // requests outstanding
	down    bool         // st ended while it had no requests: reopen on use
	cancelQ []cid.Cid    // CANCELs to send
}

// streamsLocked returns the lanes' open streams.
func (pc *peerConn) streamsLocked() []share.Stream {
	sts := make([]share.Stream, 0, len(pc.lanes))
	for _, l := range pc.lanes {
		if l.st != nil {
			sts = append(sts, l.st)
		}
	}
	return sts
}

func (pc *peerConn) signal() {
	select {
	case pc.wake <- struct{}{}:
	default:
	}
}

// run opens the first lane and sends requests until the session or the
// streams end; further lanes open when the first ones fill up.
func (pc *peerConn) run() {
	s := pc.s
	st, err := s.e.host.NewStream(s.ctx, pc.id, s.e.proto)
	if err != nil {
		s.dropPeer(pc, fmt.Errorf("open stream: %w", err), false)
		return
	}
	s.mu.Lock()
	if pc.dead || s.finished {
		s.mu.Unlock()
		st.Reset()
		return
	}
	pc.lanes = []lane{{st: st}}
	s.mu.Unlock()
	pc.lastFrame.Store(time.Now().UnixNano())
	ws := []deadlineWriter{{st, s.cfg.WriteTimeout}}
	go pc.receive(st, 0)
	var reopen []int

	var bufs [][]byte
	for {
		select {
		case <-pc.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		if pc.dead || s.finished {
			s.mu.Unlock()
			return
		}
		bufs = growBufs(bufs[:0], len(pc.lanes))
		for i := range pc.lanes {
			l := &pc.lanes[i]
			for _, c := range l.cancelQ {
				bufs[i] = appendMessage(bufs[i], msgCancel, c)
			}
			l.cancelQ = l.cancelQ[:0]
		}
		bufs = s.assignLocked(pc, bufs)
		reopen = reopen[:0]
		for i, l := range pc.lanes {
			if l.down && i < len(ws) && len(bufs[i]) > 0 {
				reopen = append(reopen, i)
			}
		}
		s.mu.Unlock()
		for _, i := range reopen { // lanes whose idle stream the peer closed
			st, ok := pc.openLane(i)
			if !ok {
				return
			}
			ws[i] = deadlineWriter{st, s.cfg.WriteTimeout}
		}
		for len(ws) < len(bufs) { // assignLocked added a lane
			st, ok := pc.openLane(len(ws))
			if !ok {
				return
			}
			ws = append(ws, deadlineWriter{st, s.cfg.WriteTimeout})
		}
		for i, buf := range bufs {
			if len(buf) == 0 {
				continue
			}
			if _, err := ws[i].Write(buf); err != nil {
				if pc.laneLost(i, ws[i].s) {
					continue // it had only CANCELs for requests already answered
				}
				s.dropPeer(pc, fmt.Errorf("write: %w", err), false)
				return
			}
		}
	}
}

// openLane opens the stream of lane i (a new one, or one whose stream
// ended idle) and starts its receiver; false means pc is done with.
func (pc *peerConn) openLane(i int) (share.Stream, bool) {
	s := pc.s
	st, err := s.e.host.NewStream(s.ctx, pc.id, s.e.proto)
	if err != nil {
		s.dropPeer(pc, fmt.Errorf("open stream: %w", err), false)
		return nil, false
	}
	s.mu.Lock()
	dead := pc.dead || s.finished
	if !dead {
		pc.lanes[i].st, pc.lanes[i].down = st, false
	}
	s.mu.Unlock()
	if dead {
		st.Reset()
		return nil, false
	}
	go pc.receive(st, i)
	return st, true
}

// laneLost reports whether the end of lane i's stream st costs nothing:
// the lane had no requests outstanding (a provider closes streams that
// are idle for its IdleTimeout, as when a reader stops for a while). The
// lane is then marked down, to be reopened when it is given requests, and
// the peer stays in the session.
func (pc *peerConn) laneLost(i int, st share.Stream) bool {
	s := pc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if pc.dead || s.finished || i >= len(pc.lanes) || pc.lanes[i].st != st || pc.lanes[i].reqs > 0 {
		return false
	}
	l := &pc.lanes[i]
	l.down = true
	l.cancelQ = l.cancelQ[:0] // its requests were all answered
	return true
}

// laneFill is how many bytes of requests a lane takes before the next
// lane is used: two stream windows (net's default window is 2 MiB). A
// peer whose window of requests is smaller (any peer slower than about
// 80 MB/s: MinWindow 1 MiB blocks) is asked on one stream and answers in
// the order asked, so the block a reader waits for is not sent
// interleaved with others (two lanes per 100 Mbit/s peer, as a 2 MiB
// fill gave, cost the 4-provider swarm 2%: 368 instead of 376 Mbit/s).
const laneFill = 4 << 20

// laneLocked picks the lane of a request of est bytes: the first with
// room, else a new one while there may be more, else the least loaded.
// A new lane gets its queues here; the sender opens its stream.
func (pc *peerConn) laneLocked(est int64) int {
	best := 0
	for i, l := range pc.lanes {
		if l.bytes+est <= laneFill {
			return i
		}
		if l.bytes < pc.lanes[best].bytes {
			best = i
		}
	}
	if n := len(pc.lanes); n < pc.s.cfg.StreamsPerPeer {
		pc.lanes = append(pc.lanes, lane{})
		return n
	}
	return best
}

// forgetLocked removes the request of c (answered, refused or cancelled).
func (pc *peerConn) forgetLocked(c cid.Cid) {
	if r, ok := pc.reqs[c]; ok {
		if r.lane < len(pc.lanes) {
			pc.lanes[r.lane].bytes -= r.e.est
			pc.lanes[r.lane].reqs--
		}
		delete(pc.reqs, c)
	}
}

// cancelLocked queues a CANCEL of c on the lane its request went out on.
func (pc *peerConn) cancelLocked(c cid.Cid, lane int) {
	if lane < len(pc.lanes) {
		pc.lanes[lane].cancelQ = append(pc.lanes[lane].cancelQ, c)
	}
}

// growBufs extends bufs to n empty buffers, keeping the memory of those
// it had.
func growBufs(bufs [][]byte, n int) [][]byte {
	for len(bufs) < n {
		if len(bufs) < cap(bufs) {
			bufs = bufs[:len(bufs)+1]
			bufs[len(bufs)-1] = bufs[len(bufs)-1][:0]
		} else {
			bufs = append(bufs, nil)
		}
	}
	return bufs
}

// resetAll resets the lanes.
func resetAll(sts []share.Stream) {
	for _, st := range sts {
		st.Reset()
	}
}

// idle reports whether pc has nothing outstanding, so that silence is fine.
func (pc *peerConn) idle() bool {
	pc.s.mu.Lock()
	defer pc.s.mu.Unlock()
	return len(pc.reqs) == 0 && !pc.s.finished
}

// receive reads the answers on st until it fails or the session ends.
func (pc *peerConn) receive(st share.Stream, lane int) {
	s := pc.s
	fr := newFrameReaderMax(st, s.cfg.MaxBlockSize)
	fr.hash = true
	for {
		st.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		if _, err := fr.br.Peek(1); err != nil {
			if isTimeout(err) && (pc.idle() || time.Since(time.Unix(0, pc.lastFrame.Load())) < s.cfg.ReadTimeout) {
				continue
			}
			if !isTimeout(err) && pc.laneLost(lane, st) {
				st.Reset()
				return
			}
			pc.fail(st, err, false)
			return
		}
		m, buf, err := fr.next()
		if err != nil {
			pc.fail(st, err, errors.Is(err, ErrBadMessage) || errors.Is(err, ErrFrameTooLarge))
			return
		}
		pc.lastFrame.Store(time.Now().UnixNano())
		ok := false
		switch m.typ {
		case msgBlock:
			ok = s.received(pc, m.cid, m.data, buf, m.hasher)
		case msgDontHave:
			ok = s.dontHave(pc, m.cid)
		}
		if !ok {
			s.dropPeer(pc, fmt.Errorf("%w: unrequested %s %s", ErrProtocol, m.typ, m.cid), true)
			return
		}
	}
}

// fail ends the receiver after a read error.
func (pc *peerConn) fail(st share.Stream, err error, bad bool) {
	pc.s.dropPeer(pc, fmt.Errorf("read: %w", err), bad)
	if err != io.EOF {
		st.Reset() // after a graceful close, the server did not finish in time
	}
}

// close ends pc when the session ends: gracefully after a complete fetch
// (the receivers drain late answers until the server closes), with a reset
// otherwise.
func (pc *peerConn) close(graceful bool) {
	s := pc.s
	s.mu.Lock()
	sts := pc.streamsLocked()
	pc.dead = true
	s.mu.Unlock()
	pc.signal()
	if !graceful {
		resetAll(sts)
		return
	}
	for _, st := range sts {
		st.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		st.Close()
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
