package exchange

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/exchange/sched"
	"github.com/share-p2p/share/p2p/peer"
	"github.com/share-p2p/share/traffic"
)

// peerConn is a session's streams to one provider (its lanes, see
// Config.StreamsPerPeer): a sender goroutine writes the WANT and CANCEL
// frames the scheduler assigns to the provider, on the lanes it picks, and
// a receiver per lane reads the answers. Fields are guarded by the
// session's mutex unless noted.
type peerConn struct {
	s     *Session
	id    peer.ID
	sp    *sched.Peer      // the scheduler's side of the provider
	proto string           // the block protocol spoken with it
	want  bool             // asked over the want wire (Config.Wire), not on lanes
	tc    *traffic.Counter // the peer's, for the blocks it sends
	lanes []lane
	dead  bool

	// lastFrame is when a lane last read a frame (unix nanoseconds); a
	// lane that waits while the others deliver is not a dead peer.
	lastFrame atomic.Int64

	wake chan struct{}
}

// lane is one stream of a peerConn.
type lane struct {
	st   share.Stream // nil until the sender opens it
	down bool         // st ended while it had no requests: reopen on use
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
	if pc.want {
		pc.runWant()
		return
	}
	s := pc.s
	st, ok := pc.openFirst()
	if !ok {
		return
	}
	ws := []deadlineWriter{{st, s.cfg.WriteTimeout}}
	var reopen []int
	var bufs [][]byte
	sends := make([]sched.Send, 0, s.cfg.MaxWindow) // a window's requests, as a rule
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
		sends = s.core.Assign(pc.sp, time.Now(), sends[:0])
		bufs = pc.encodeLocked(bufs, sends)
		reopen = reopen[:0]
		for i, l := range pc.lanes {
			if l.down && i < len(ws) && len(bufs[i]) > 0 {
				reopen = append(reopen, i)
			}
		}
		s.mu.Unlock()
		if ws, ok = pc.openLanes(ws, reopen, len(bufs)); !ok || !pc.write(ws, bufs) {
			return
		}
	}
}

// openFirst opens the first lane and starts its receiver; false means pc
// is done with.
func (pc *peerConn) openFirst() (share.Stream, bool) {
	s := pc.s
	st, err := s.e.host.NewStream(s.ctx, pc.id, s.e.proto)
	if err != nil {
		s.dropPeer(pc, fmt.Errorf("open stream: %w", err), false)
		return nil, false
	}
	s.mu.Lock()
	if pc.dead || s.finished {
		s.mu.Unlock()
		st.Reset()
		return nil, false
	}
	pc.lanes = []lane{{st: st}}
	s.mu.Unlock()
	pc.lastFrame.Store(time.Now().UnixNano())
	go pc.receive(st, 0)
	return st, true
}

// openLanes reopens the lanes in reopen, whose idle stream the peer
// closed, and opens the lanes the scheduler added, up to n in all; false
// means pc is done with.
func (pc *peerConn) openLanes(ws []deadlineWriter, reopen []int, n int) ([]deadlineWriter, bool) {
	for _, i := range reopen {
		st, ok := pc.openLane(i)
		if !ok {
			return ws, false
		}
		ws[i] = deadlineWriter{st, pc.s.cfg.WriteTimeout}
	}
	for len(ws) < n {
		st, ok := pc.openLane(len(ws))
		if !ok {
			return ws, false
		}
		ws = append(ws, deadlineWriter{st, pc.s.cfg.WriteTimeout})
	}
	return ws, true
}

// write sends each lane its frames; false means pc was dropped.
func (pc *peerConn) write(ws []deadlineWriter, bufs [][]byte) bool {
	for i, buf := range bufs {
		if len(buf) == 0 {
			continue
		}
		if _, err := ws[i].Write(buf); err != nil {
			if pc.laneLost(i, ws[i].s) {
				continue // it had only CANCELs for requests already answered
			}
			pc.s.dropPeer(pc, fmt.Errorf("write: %w", err), false)
			return false
		}
	}
	return true
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
	if pc.dead || s.finished || i >= len(pc.lanes) || pc.lanes[i].st != st || !s.core.LaneEnded(pc.sp, i) {
		return false
	}
	pc.lanes[i].down = true
	return true
}

// encodeLocked writes the frames of sends into bufs, one buffer per lane,
// adding the lanes the scheduler opened (the sender opens their streams).
func (pc *peerConn) encodeLocked(bufs [][]byte, sends []sched.Send) [][]byte {
	n := pc.s.core.Lanes(pc.sp)
	for len(pc.lanes) < n {
		pc.lanes = append(pc.lanes, lane{})
	}
	bufs = growBufs(bufs[:0], n)
	for _, x := range sends {
		typ := msgWantBlock
		if x.Cancel {
			typ = msgCancel
		}
		bufs[x.Lane] = appendMessage(bufs[x.Lane], typ, x.C)
	}
	return bufs
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
	return pc.s.core.Outstanding(pc.sp) == 0 && !pc.s.finished
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
	if pc.want {
		s.e.leaveWire(pc)
		return
	}
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
